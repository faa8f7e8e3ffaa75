//! The embedded store's "outage": its Parquet directory cannot be written for a while
//! (here the `data` directory is moved away and a plain file put in its place, so
//! every flush fails with "not a directory"; permissions would not stop root, which
//! the tests run as). Writes go on at a steady rate meanwhile and keep being accepted
//! (into the write-ahead log). When the directory comes back,
//! the background flush catches up: every accepted point is in Parquet exactly once.

mod store_common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use store_common::*;
use tidewatch_model::Point;
use tidewatch_storage::embedded::{EmbeddedConfig, EmbeddedStore};

const RATE: u64 = 5_000; // points per second
const BATCH: u64 = 250;

fn point(id: u64) -> Point {
    Point::new("pdu", DAY0 + id as i64 * 1_000_000)
        .tag("device", format!("pdu-{:02}", id % 16))
        .field("id", id as i64)
        .field("kw", id as f64 / 4.0)
}

#[test]
fn nothing_accepted_is_lost_while_the_parquet_directory_is_unwritable() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("tidewatch_storage=info")
        .with_test_writer()
        .try_init();
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(EmbeddedConfig {
        flush_interval: Duration::from_millis(50),
        ..EmbeddedConfig::in_dir(dir.path())
    })
    .unwrap();

    // The writer: RATE points per second in batches, recording what was accepted.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let store = store.clone();
        let stop = stop.clone();
        std::thread::spawn(move || {
            let started = Instant::now();
            let mut next = 0u64;
            let mut accepted = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let points: Vec<Point> = (next..next + BATCH).map(point).collect();
                let result = store.write(&points).expect("writes keep being accepted");
                assert_eq!(result.points as u64, BATCH);
                accepted.extend(next..next + BATCH);
                next += BATCH;
                let due = Duration::from_secs_f64(next as f64 / RATE as f64);
                if let Some(wait) = due.checked_sub(started.elapsed()) {
                    std::thread::sleep(wait);
                }
            }
            accepted
        })
    };

    let data = dir.path().join("data");
    let away = dir.path().join("data.away");
    std::thread::sleep(Duration::from_secs(1));
    let flushed_before = store.stats().rows_in_files;
    assert!(flushed_before > 0, "flushes work before the outage");

    // The outage: 4 s of failing flushes.
    std::fs::rename(&data, &away).unwrap();
    std::fs::write(&data, b"not a directory").unwrap();
    let outage = Instant::now();
    std::thread::sleep(Duration::from_secs(4));
    let during = store.stats();
    assert!(
        during.flush_failures > 0,
        "flushes fail during the outage: {during:?}"
    );
    assert!(
        during.pending_points >= 3 * RATE,
        "points keep being accepted into the WAL: {during:?}"
    );
    println!(
        "outage: {} flush failures, {} points pending",
        during.flush_failures, during.pending_points
    );

    // Recovery.
    std::fs::remove_file(&data).unwrap();
    std::fs::rename(&away, &data).unwrap();
    println!("outage lasted {:?}", outage.elapsed());
    std::thread::sleep(Duration::from_secs(1));
    stop.store(true, Ordering::Relaxed);
    let accepted = writer.join().unwrap();

    // The background flush catches up by itself.
    let deadline = Instant::now() + Duration::from_secs(30);
    while store.stats().pending_points > 0 {
        assert!(
            Instant::now() < deadline,
            "not caught up: {:?}",
            store.stats()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let stats = store.stats();
    println!("after: {stats:?}");
    assert_eq!(stats.rows_in_files, accepted.len() as u64);

    let df = scan_all(&store, "pdu");
    let mut seen: BTreeMap<u64, u32> = BTreeMap::new();
    let ids = df.column("id").unwrap().i64().unwrap();
    let kw = df.column("kw").unwrap().f64().unwrap();
    for i in 0..df.height() {
        let id = ids.get(i).unwrap() as u64;
        assert_eq!(kw.get(i), Some(id as f64 / 4.0), "value of {id}");
        *seen.entry(id).or_default() += 1;
    }
    assert_eq!(seen.len(), accepted.len(), "every accepted point is stored");
    assert!(seen.values().all(|n| *n == 1), "none twice");
    assert!(accepted.iter().all(|id| seen.contains_key(id)));

    // And the same after a restart, from the files alone.
    drop(store);
    let store = EmbeddedStore::open(manual(dir.path())).unwrap();
    assert_eq!(store.stats().points_replayed, 0);
    assert_eq!(scan_all(&store, "pdu").height(), accepted.len());
}
