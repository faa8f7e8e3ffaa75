//! The InfluxDB writer against a real InfluxDB 1.x (`influxd`, Debian package
//! `influxdb`), over the v1 API (`/write`): every escaping case and field type read
//! back equal, and the server's own 413, 400 (partial write) and 401 handled without
//! losing a point.

mod servers;

use std::collections::HashMap;
use std::time::Duration;

use servers::{dead_letters, init_logging, v1_config, Influxd, InfluxdOptions, ADMIN_PASSWORD};
use tidewatch_model::{FieldValue, Point};
use tidewatch_storage::influx::{Gzip, InfluxWriter};

const T0: i64 = 1_700_000_000_000_000_000;

/// Points with every escaping case of the line protocol reference, in measurements,
/// tag keys, tag values, field keys and string fields, and every field type InfluxDB
/// 1.x stores.
fn tricky_points() -> Vec<Point> {
    vec![
        Point::new("cdu,hall A", T0)
            .tag("rack id", "r=1,2 x")
            .tag("k=v", "a,b")
            .tag("path", "C:\\dir")
            .field("temp,c=x y", 18.5)
            .field("pump rpm", 2400_i64)
            .field("ok=1", true)
            .field("note", "say \"hi\" \\ back\\slash, a=b c"),
        Point::new("冷却液_μ", T0 + 1)
            .tag("位置", "机房 A")
            .tag("ünit", "ä,ö=ü")
            .field("温度", -273.15)
            .field("状态", "液冷 ✓ \"引号\"")
            .field("leak", false),
        Point::new("types", T0 + 2)
            .tag("case", "extremes")
            .field("f_big", 1e21)
            .field("f_small", 0.1)
            .field("f_neg", -2.5e-7)
            .field("i_max", i64::MAX)
            .field("i_min", i64::MIN)
            .field("i_zero", 0_i64)
            .field("s_empty", "")
            .field("s_newline", "line one\nline two")
            .field("b_true", true),
        Point::new("a=b\\c", T0 + 3)
            .tag("t", "v")
            .field("f\\g", 1.0),
    ]
}

/// An InfluxQL identifier, double-quoted.
fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('\\', "\\\\").replace('"', "\\\""))
}

fn field_type(value: &FieldValue) -> &'static str {
    match value {
        FieldValue::Float(_) => "float",
        FieldValue::Integer(_) => "integer",
        FieldValue::Unsigned(_) => "unsigned",
        FieldValue::Boolean(_) => "boolean",
        FieldValue::String(_) => "string",
    }
}

fn assert_value(expected: &FieldValue, got: &serde_json::Value, what: &str) {
    match expected {
        // Numeric equality: InfluxDB's JSON writes 2.0 as 2; -0.0 is not used.
        FieldValue::Float(f) => assert_eq!(got.as_f64(), Some(*f), "{what}"),
        FieldValue::Integer(i) => assert_eq!(got.as_i64(), Some(*i), "{what}"),
        FieldValue::Unsigned(u) => assert_eq!(got.as_u64(), Some(*u), "{what}"),
        FieldValue::Boolean(b) => assert_eq!(got.as_bool(), Some(*b), "{what}"),
        FieldValue::String(s) => assert_eq!(got.as_str(), Some(s.as_str()), "{what}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_escaping_case_and_field_type_round_trips_and_unsigned_is_dead_lettered() {
    init_logging();
    let server = Influxd::start(InfluxdOptions::default()).await;
    server.create_database("tw").await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = v1_config(&server.url(), "tw", dir.path());
    // Gzipped bodies, as a server on another host gets them ("auto" sends loopback
    // servers plain ones, which the other tests here and the v2 test cover).
    config.gzip = Gzip::On;
    let dead_letter_file = config.dead_letter_file.clone();
    let writer = InfluxWriter::start(config).await.unwrap();

    let points = tricky_points();
    // InfluxDB 1.x refuses unsigned integers (`7u`: "invalid number"); the writer puts
    // such a line in the dead-letter file with the server's reason and delivers the
    // rest of the batch. And a NaN never leaves the encoder.
    let unsigned = Point::new("unsigned_1x", T0).field("u", 7_u64);
    let nan = Point::new("nan", T0).field("f", f64::NAN);
    let mut all = points.clone();
    all.insert(1, unsigned);
    all.push(nan);
    let accepted = writer.write(&all).await.unwrap();
    assert_eq!((accepted.points, accepted.invalid), (5, 1));
    assert!(writer.wait_delivered(Duration::from_secs(30)).await);

    let json = server.query("tw", "SHOW MEASUREMENTS").await;
    let measurements: Vec<&str> = json["results"][0]["series"][0]["values"]
        .as_array()
        .expect("measurements")
        .iter()
        .map(|row| row[0].as_str().unwrap())
        .collect();
    assert!(!measurements.contains(&"unsigned_1x"), "refused by 1.x");
    assert_eq!(measurements.len(), points.len(), "{measurements:?}");
    for point in &points {
        let (columns, rows) = server
            .rows(
                "tw",
                &format!("SELECT * FROM {}", quote(point.measurement())),
            )
            .await;
        assert_eq!(rows.len(), 1, "{:?}: {rows:?}", point.measurement());
        let row = &rows[0];
        let col = |name: &str| {
            let i = columns
                .iter()
                .position(|c| c == name)
                .unwrap_or_else(|| panic!("column {name:?} missing in {columns:?}"));
            &row[i]
        };
        assert_eq!(col("time").as_i64(), Some(point.timestamp_ns()));
        for (key, value) in point.tags() {
            assert_eq!(col(key).as_str(), Some(value.as_str()), "tag {key:?}");
        }
        for (key, value) in point.fields() {
            assert_value(
                value,
                col(key),
                &format!("field {key:?} of {:?}", point.measurement()),
            );
        }
        // Nothing but these columns: no key was split or renamed by a bad escape.
        assert_eq!(
            columns.len(),
            1 + point.tags().len() + point.fields().len(),
            "{columns:?}"
        );
    }

    // The field types as InfluxDB stored them.
    for point in &points {
        let (_, rows) = server
            .rows(
                "tw",
                &format!("SHOW FIELD KEYS FROM {}", quote(point.measurement())),
            )
            .await;
        let types: HashMap<&str, &str> = rows
            .iter()
            .map(|r| (r[0].as_str().unwrap(), r[1].as_str().unwrap()))
            .collect();
        for (key, value) in point.fields() {
            assert_eq!(
                types.get(key.as_str()),
                Some(&field_type(value)),
                "type of {key:?}"
            );
        }
    }

    let dead = dead_letters(&dead_letter_file);
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0]["line"], "unsigned_1x u=7u 1700000000000000000");
    assert_eq!(dead[0]["status"], 400);
    assert!(
        dead[0]["error"]
            .as_str()
            .unwrap()
            .contains("invalid number"),
        "the server's reason: {}",
        dead[0]
    );
    let stats = writer.stats();
    assert_eq!(stats.points_dead_lettered, 1);
    assert_eq!(stats.points_invalid, 1);
    assert!(stats.bisections >= 1, "{stats:?}");
    let report = writer.shutdown().await;
    assert!(report.delivered_all);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_413_splits_the_batch_until_everything_arrives() {
    init_logging();
    // influxd refuses bodies over max-body-size with 413 (for gzip, its Content-Length).
    let server = Influxd::start(InfluxdOptions {
        max_body_size: Some(2_000),
        ..InfluxdOptions::default()
    })
    .await;
    server.create_database("tw").await;
    let dir = tempfile::tempdir().unwrap();
    let config = v1_config(&server.url(), "tw", dir.path());
    let writer = InfluxWriter::start(config).await.unwrap();

    let points: Vec<Point> = (0..1_000_i64)
        .map(|i| {
            Point::new("big", T0 + i)
                .tag("unit", format!("u{}", i % 7))
                .field("id", i)
                .field(
                    "x",
                    (i.wrapping_mul(2_654_435_761) % 1_000_003) as f64 / 7.0,
                )
        })
        .collect();
    writer.write(&points).await.unwrap();
    writer.flush().await.unwrap();
    assert!(writer.wait_delivered(Duration::from_secs(60)).await);
    let stats = writer.stats();
    assert!(
        stats.splits >= 2,
        "the server's 413 made the writer split: {stats:?}"
    );
    assert_eq!(stats.points_dead_lettered, 0);
    assert_eq!(server.count("tw", "big", "id").await, 1_000);
    let (_, rows) = server.rows("tw", "SELECT sum(\"id\") FROM \"big\"").await;
    assert_eq!(rows[0][1].as_i64(), Some((0..1_000).sum::<i64>()));
    writer.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_400_partial_write_delivers_the_rest_and_dead_letters_the_conflict() {
    init_logging();
    let server = Influxd::start(InfluxdOptions::default()).await;
    server.create_database("tw").await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = v1_config(&server.url(), "tw", dir.path());
    // Gzipped bodies, as a server on another host gets them ("auto" sends loopback
    // servers plain ones, which the other tests here and the v2 test cover).
    config.gzip = Gzip::On;
    let dead_letter_file = config.dead_letter_file.clone();
    let writer = InfluxWriter::start(config).await.unwrap();

    // `f` is a float field once this is stored.
    writer
        .write(&[Point::new("conflict", T0).tag("unit", "a").field("f", 1.5)])
        .await
        .unwrap();
    writer.flush().await.unwrap();
    assert!(writer.wait_delivered(Duration::from_secs(30)).await);

    // One point of the next batch writes `f` as a string: a field type conflict, which
    // influxd answers with 400 "partial write: field type conflict".
    let points: Vec<Point> = (1..=50_i64)
        .map(|i| {
            let point = Point::new("conflict", T0 + i).tag("unit", "a");
            if i == 17 {
                point.field("f", "not a number")
            } else {
                point.field("f", i as f64)
            }
        })
        .collect();
    writer.write(&points).await.unwrap();
    writer.flush().await.unwrap();
    assert!(writer.wait_delivered(Duration::from_secs(30)).await);

    assert_eq!(server.count("tw", "conflict", "f").await, 50);
    let (_, rows) = server
        .rows("tw", "SELECT sum(\"f\") FROM \"conflict\"")
        .await;
    let expected: f64 = 1.5 + (1..=50).filter(|&i| i != 17).map(|i| i as f64).sum::<f64>();
    assert_eq!(rows[0][1].as_f64(), Some(expected));
    let dead = dead_letters(&dead_letter_file);
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(
        dead[0]["line"],
        format!("conflict,unit=a f=\"not a number\" {}", T0 + 17)
    );
    assert_eq!(dead[0]["status"], 400);
    let reason = dead[0]["error"].as_str().unwrap();
    assert!(
        reason.contains("field type conflict"),
        "the server's reason: {reason}"
    );
    let stats = writer.stats();
    assert_eq!(stats.points_dead_lettered, 1);
    assert!(stats.bisections >= 5, "isolated by bisection: {stats:?}");
    writer.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_401_keeps_everything_until_the_credentials_are_fixed() {
    init_logging();
    let server = Influxd::start(InfluxdOptions {
        auth: true,
        ..InfluxdOptions::default()
    })
    .await;
    server.create_database("tw").await;
    let dir = tempfile::tempdir().unwrap();
    let points: Vec<Point> = (0..300_i64)
        .map(|i| Point::new("auth", T0 + i).field("id", i))
        .collect();

    // Wrong password: influxd answers 401; the writer keeps the batches and retries.
    let mut config = v1_config(&server.url(), "tw", dir.path());
    config.username = Some("admin".into());
    config.password = Some("wrong password".into());
    let writer = InfluxWriter::start(config.clone()).await.unwrap();
    let accepted = writer.write(&points).await.unwrap();
    assert_eq!(accepted.points, 300);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while writer.stats().retries.auth < 3 {
        assert!(std::time::Instant::now() < deadline, "{:?}", writer.stats());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let report = writer.shutdown_within(Duration::from_millis(500)).await;
    assert!(!report.delivered_all);
    assert!(report.pending_batches >= 1);
    assert_eq!(report.stats.points_dead_lettered, 0);
    assert_eq!(report.stats.values_dropped, 0);
    assert_eq!(report.stats.retries.total(), report.stats.retries.auth);
    drop(writer);
    assert_eq!(server.count("tw", "auth", "id").await, 0);

    // Fixed: a second writer on the same spool, the password from a file.
    let password_file = dir.path().join("password");
    std::fs::write(&password_file, format!("{ADMIN_PASSWORD}\n")).unwrap();
    config.password = None;
    config.password_file = Some(password_file);
    let writer = InfluxWriter::start(config).await.unwrap();
    assert!(writer.wait_delivered(Duration::from_secs(30)).await);
    assert_eq!(server.count("tw", "auth", "id").await, 300);
    let (_, rows) = server.rows("tw", "SELECT sum(\"id\") FROM \"auth\"").await;
    assert_eq!(rows[0][1].as_i64(), Some((0..300).sum::<i64>()));
    assert!(writer.shutdown().await.delivered_all);
    assert!(dead_letters(&dir.path().join("dead-letter.jsonl")).is_empty());
}

/// A backlog streams out with the spool's acknowledgement (two syncs each, on the disk
/// the server also writes to) written at most about once a second, not after every
/// request; when the stream ends, the last one covers every batch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streaming_backlog_is_acknowledged_about_once_a_second() {
    init_logging();
    const BATCHES: i64 = 3000;
    const PER_BATCH: i64 = 25;
    let mut server = Influxd::start(InfluxdOptions::default()).await;
    server.create_database("tw").await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = v1_config(&server.url(), "tw", dir.path());
    // One spooled batch per write call, one batch per request: 3000 requests.
    config.batch_max_points = PER_BATCH as usize;
    let writer = InfluxWriter::start(config).await.unwrap();

    // The backlog, spooled while the server is down.
    server.kill();
    for b in 0..BATCHES {
        let points: Vec<Point> = (b * PER_BATCH..(b + 1) * PER_BATCH)
            .map(|id| {
                Point::new("ack", T0 + id)
                    .tag("unit", format!("u{}", id % 8))
                    .field("id", id)
            })
            .collect();
        writer.write(&points).await.unwrap();
    }
    writer.flush().await.unwrap();
    let before = writer.stats();
    assert_eq!(before.spool_pending_batches, BATCHES as u64, "{before:?}");

    let started = std::time::Instant::now();
    server.restart().await;
    assert!(
        writer.wait_delivered(Duration::from_secs(120)).await,
        "{:?}",
        writer.stats()
    );
    let seconds = started.elapsed().as_secs_f64();
    let after = writer.stats();
    let requests = after.requests_delivered - before.requests_delivered;
    let acks = after.acks_written - before.acks_written;
    assert!(requests >= BATCHES as u64, "{after:?}");
    // One a second while streaming, one when the stream ends, one for a second
    // started before the restart: an ack per request would be 3000.
    assert!(
        (acks as f64) <= seconds.ceil() + 2.0,
        "{acks} acknowledgements for {requests} requests in {seconds:.1} s"
    );
    assert_eq!(after.batches_acked, BATCHES as u64);
    assert_eq!(after.spool_pending_batches, 0);
    assert_eq!(
        server.count("tw", "ack", "id").await,
        (BATCHES * PER_BATCH) as u64
    );
    println!("{acks} acknowledgements for {requests} requests in {seconds:.1} s");
    assert!(writer.shutdown().await.delivered_all);
}
