//! 429 with `Retry-After`: the writer waits as long as the server asks, then delivers.
//!
//! influxd cannot be made to answer 429 reliably (InfluxDB 1.x only throttles through
//! `max-concurrent-write-limit` with a queue timeout, which depends on timing), so this
//! test uses a tiny axum server of its own that answers `429 Too Many Requests` with
//! `Retry-After: 1` twice, then `204`, and records when each request came and what it
//! carried (the v2 path, parameters, token and gzip body are checked on the way).

mod servers;

use std::io::Read as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;
use axum::Router;
use servers::init_logging;
use tidewatch_model::Point;
use tidewatch_storage::influx::{Api, Gzip, InfluxConfig, InfluxWriter};

#[derive(Default)]
struct Seen {
    /// When each request came, its query, its Authorization header, its decoded body.
    requests: Vec<(Instant, String, String, String)>,
}

async fn write(
    State(seen): State<Arc<Mutex<Seen>>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    assert_eq!(headers["content-encoding"], "gzip");
    let mut text = String::new();
    flate2::read::GzDecoder::new(&body[..])
        .read_to_string(&mut text)
        .expect("a gzip body");
    let auth = headers
        .get("authorization")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let mut seen = seen.lock().unwrap();
    seen.requests
        .push((Instant::now(), query.unwrap_or_default(), auth, text));
    if seen.requests.len() <= 2 {
        (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", "1")],
            "{\"code\":\"too many requests\",\"message\":\"slow down\"}",
        )
            .into_response()
    } else {
        StatusCode::NO_CONTENT.into_response()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_is_retried_after_the_servers_retry_after() {
    init_logging();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let app = Router::new()
        .route("/api/v2/write", post(write))
        .with_state(Arc::clone(&seen));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let dir = tempfile::tempdir().unwrap();
    let mut config = InfluxConfig::new(url, Api::V2);
    config.org = Some("facility".into());
    config.bucket = Some("telemetry".into());
    config.token = Some("s3cret-token".into());
    // The server is on loopback, where "auto" would not compress: this test reads gzip bodies.
    config.gzip = Gzip::On;
    config.spool_dir = dir.path().join("spool");
    config.dead_letter_file = dir.path().join("dead-letter.jsonl");
    config.batch_max_age = Duration::from_millis(50);
    // Far below the server's 1 s: a wait of about 1 s can only be its Retry-After.
    config.retry_initial_backoff = Duration::from_millis(50);
    let writer = InfluxWriter::start(config).await.unwrap();

    let points: Vec<Point> = (0..10_i64)
        .map(|i| Point::new("cdu", 1_700_000_000_000_000_000 + i).field("id", i))
        .collect();
    writer.write(&points).await.unwrap();
    assert!(writer.wait_delivered(Duration::from_secs(20)).await);

    let seen = std::mem::take(&mut *seen.lock().unwrap());
    assert_eq!(seen.requests.len(), 3, "two 429s, then the 204");
    for pair in seen.requests.windows(2) {
        let waited = pair[1].0 - pair[0].0;
        assert!(
            waited >= Duration::from_millis(990) && waited < Duration::from_secs(3),
            "waited {waited:?} after a 429 with Retry-After: 1"
        );
    }
    let expected: String = (0..10_i64)
        .map(|i| format!("cdu id={i}i {}\n", 1_700_000_000_000_000_000 + i))
        .collect();
    for (_, query, auth, body) in &seen.requests {
        assert_eq!(query, "org=facility&bucket=telemetry&precision=ns");
        assert_eq!(auth, "Token s3cret-token");
        assert_eq!(body, &expected, "the same batch, resent whole");
    }
    let stats = writer.stats();
    assert_eq!(stats.retries.throttled, 2);
    assert_eq!(stats.retries.total(), 2);
    assert_eq!(stats.points_delivered, 10);
    assert!(writer.shutdown().await.delivered_all);
}
