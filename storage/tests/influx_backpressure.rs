//! A full spool: writes wait (backpressure) instead of anything being dropped, except
//! values superseded by a newer value of the same series while they wait, which are
//! counted; when the server comes back, every write returns and every value is either
//! delivered or counted as dropped, and the newest value of every series is delivered.
//!
//! The server is a small axum stand-in that accepts every write and records the lines
//! (this test is about the writer's memory and accounting, not a server's answers);
//! it is started only after the spool filled up, on the port the writer was pointed at.

mod servers;

use std::collections::BTreeMap;
use std::io::Read as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;
use servers::{free_port, init_logging};
use tidewatch_model::Point;
use tidewatch_storage::influx::{Api, Gzip, InfluxConfig, InfluxWriter};
use tidewatch_storage::spool::SpoolConfig;

async fn write(State(lines): State<Arc<Mutex<Vec<String>>>>, body: Bytes) -> StatusCode {
    let mut text = String::new();
    flate2::read::GzDecoder::new(&body[..])
        .read_to_string(&mut text)
        .expect("gzip body");
    lines
        .lock()
        .unwrap()
        .extend(text.lines().map(str::to_owned));
    StatusCode::NO_CONTENT
}

fn point(series: u64, seq: i64) -> Point {
    Point::new("cdu", 1_700_000_000_000_000_000 + seq)
        .tag("unit", format!("u{series}"))
        .field("seq", seq)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_spool_applies_backpressure_and_keeps_the_newest_value_per_series() {
    init_logging();
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let mut config = InfluxConfig::new(format!("http://127.0.0.1:{port}"), Api::V1);
    config.database = Some("tw".into());
    // The server is on loopback, where "auto" would not compress: this test reads gzip bodies.
    config.gzip = Gzip::On;
    config.spool_dir = dir.path().join("spool");
    config.dead_letter_file = dir.path().join("dead-letter.jsonl");
    config.batch_max_age = Duration::from_millis(20);
    config.retry_max_backoff = Duration::from_millis(200);
    config.spool = SpoolConfig {
        segment_bytes: 1024,
        max_bytes: 4096,
        skip_corrupt: false,
    };
    let writer = InfluxWriter::start(config).await.unwrap();

    // Fill the spool: nothing listens on the port, so nothing leaves it.
    let mut seq = 0_i64;
    let mut written = 0_u64;
    let mut stalled = None;
    for _ in 0..100 {
        let points: Vec<Point> = (0..10).map(|s| point(s, seq)).collect();
        seq += 1;
        written += 10;
        let w = writer.clone();
        let mut write = tokio::spawn(async move { w.write(&points).await });
        if tokio::time::timeout(Duration::from_millis(500), &mut write)
            .await
            .is_err()
        {
            stalled = Some(write);
            break;
        }
    }
    let stalled = stalled.expect("the spool fills up and a write waits");
    assert_eq!(writer.stats().spool_full_episodes, 1);

    // Meanwhile 20 collectors keep writing the same 10 series: their calls wait too,
    // and only the newest value of each series is kept.
    let mut waiting = vec![stalled];
    for _ in 0..20 {
        let points: Vec<Point> = (0..10).map(|s| point(s, seq)).collect();
        seq += 1;
        written += 10;
        let w = writer.clone();
        waiting.push(tokio::spawn(async move { w.write(&points).await }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        waiting.iter().all(|w| !w.is_finished()),
        "backpressure: the writes wait"
    );
    assert!(writer.stats().values_dropped > 0);

    // The server comes up: everything drains, every write returns.
    let lines = Arc::new(Mutex::new(Vec::new()));
    let app = Router::new()
        .route("/write", post(write))
        .with_state(Arc::clone(&lines));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    for w in waiting {
        tokio::time::timeout(Duration::from_secs(30), w)
            .await
            .expect("the write returns once there is room")
            .unwrap()
            .expect("accepted");
    }
    writer.flush().await.unwrap();
    assert!(writer.wait_delivered(Duration::from_secs(30)).await);

    let stats = writer.stats();
    let lines = lines.lock().unwrap().clone();
    // Nothing silent: each value written is delivered or counted as dropped.
    assert_eq!(
        lines.len() as u64 + stats.values_dropped,
        written,
        "{stats:?}"
    );
    // The newest value of every series arrived.
    let mut newest: BTreeMap<String, i64> = BTreeMap::new();
    for line in lines.iter() {
        let (series, rest) = line.split_once(' ').unwrap();
        let v: i64 = rest
            .split(' ')
            .next()
            .unwrap()
            .trim_start_matches("seq=")
            .trim_end_matches('i')
            .parse()
            .unwrap();
        let e = newest.entry(series.to_owned()).or_insert(v);
        *e = (*e).max(v);
    }
    assert_eq!(newest.len(), 10);
    assert!(newest.values().all(|&v| v == seq - 1), "{newest:?}");
    assert!(writer.shutdown().await.delivered_all);
}
