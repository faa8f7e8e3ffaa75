//! Outage: `influxd` is killed (SIGKILL) for 60 s while 5,000 points per second are
//! written, then started again on the same port and data directory; afterwards every
//! point is in InfluxDB, none changed.
//!
//! This test takes about 80 s by design (the 60 s outage is the requirement) and runs
//! in the normal `cargo test`. The timeline: 5 s of writing with the server up, 60 s
//! with it down, 5 s with it up again, then the backlog is delivered. Checked with
//! `count`, `sum` of the point numbers and `sum` of a hash of each point number (a
//! checksum over the values: a lost, duplicated-with-another-value or changed point
//! changes it), per field.

mod servers;

use std::time::Duration;

use servers::{init_logging, v1_config, Influxd, InfluxdOptions};
use tidewatch_model::Point;
use tidewatch_storage::influx::InfluxWriter;

const RATE: u64 = 5_000; // points per second
const TICK: Duration = Duration::from_millis(100);
const BEFORE: Duration = Duration::from_secs(5);
const OUTAGE: Duration = Duration::from_secs(60);
const AFTER: Duration = Duration::from_secs(5);
const T0: i64 = 1_700_000_000_000_000_000;

/// A value that depends on every bit of `id` (splitmix64), kept below 2^40 so that the
/// sum over the test's points cannot overflow an i64.
fn checksum_value(id: u64) -> i64 {
    let mut z = id.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    ((z ^ (z >> 31)) >> 24) as i64
}

fn point(id: u64) -> Point {
    Point::new("outage", T0 + id as i64)
        .tag("unit", format!("cdu-{:02}", id % 10))
        .field("id", id as i64)
        .field("x", checksum_value(id))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn influxd_killed_for_60_s_under_5000_points_per_second_loses_nothing() {
    init_logging();
    let mut server = Influxd::start(InfluxdOptions::default()).await;
    server.create_database("tw").await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = v1_config(&server.url(), "tw", dir.path());
    config.batch_max_age = Duration::from_millis(250);
    let writer = InfluxWriter::start(config).await.unwrap();

    // The generator: 500 points every 100 ms, each chunk written by its own task (a
    // collector per device); every write must be accepted.
    let total_ticks = (BEFORE + OUTAGE + AFTER).as_millis() / TICK.as_millis();
    let per_tick = RATE * TICK.as_millis() as u64 / 1_000;
    let generator = {
        let writer = writer.clone();
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(TICK);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            let mut writes = Vec::new();
            for tick in 0..total_ticks as u64 {
                interval.tick().await;
                let points: Vec<Point> = (tick * per_tick..(tick + 1) * per_tick)
                    .map(point)
                    .collect();
                let writer = writer.clone();
                writes.push(tokio::spawn(async move { writer.write(&points).await }));
            }
            let mut accepted = 0;
            for write in writes {
                accepted += write.await.unwrap().expect("every write accepted").points as u64;
            }
            accepted
        })
    };

    tokio::time::sleep(BEFORE).await;
    let delivered_before = writer.stats().points_delivered;
    server.kill();
    tokio::time::sleep(OUTAGE).await;
    let during = writer.stats();
    server.restart().await;
    let accepted = generator.await.unwrap();
    let n = total_ticks as u64 * per_tick;
    assert_eq!(accepted, n);
    writer.flush().await.unwrap();
    assert!(
        writer.wait_delivered(Duration::from_secs(120)).await,
        "backlog delivered: {:?}",
        writer.stats()
    );

    assert!(delivered_before > 0, "delivering before the outage");
    assert!(
        during.retries.network + during.retries.timeout > 0,
        "{during:?}"
    );
    assert!(
        during.spool_pending_batches > 10,
        "the outage backlog is spooled: {during:?}"
    );
    let stats = writer.stats();
    assert_eq!(stats.values_dropped, 0);
    assert_eq!(stats.points_dead_lettered, 0);
    assert_eq!(stats.points_accepted, n);

    let (columns, rows) = server
        .rows(
            "tw",
            "SELECT count(\"id\"), count(\"x\"), sum(\"id\"), sum(\"x\") FROM \"outage\"",
        )
        .await;
    assert_eq!(columns, ["time", "count", "count_1", "sum", "sum_1"]);
    let row = &rows[0];
    assert_eq!(row[1].as_u64(), Some(n), "every point is there");
    assert_eq!(row[2].as_u64(), Some(n));
    assert_eq!(row[3].as_i64(), Some((0..n as i64).sum::<i64>()));
    assert_eq!(
        row[4].as_i64(),
        Some((0..n).map(checksum_value).sum::<i64>()),
        "no value changed"
    );
    println!(
        "outage: {n} points, {} requests, retries {:?}, spool peak {} batches",
        stats.requests_sent, stats.retries, during.spool_pending_batches
    );
    assert!(writer.shutdown().await.delivered_all);
}
