//! The InfluxDB writer: points from the collectors and the analytics job, written to
//! InfluxDB over HTTP behind the zero-loss [`spool`](crate::spool).
//!
//! It speaks the two write APIs of the design: `/write` (InfluxDB 1.x: database,
//! retention policy, basic authentication) and `/api/v2/write` (InfluxDB 2.x and 3.x,
//! and VictoriaMetrics: org, bucket, `Authorization: Token`). The configuration, with a
//! sample, is [`InfluxConfig`].
//!
//! # The chain
//!
//! ```text
//! write(points) --encode--> open batch --closed by size or age--> spool.append (synced)
//!     ^ returns here: accepted                                         |
//!                                                                      v
//!            ack the spool <-- 2xx <-- POST, retry policy <-- request <-- sender: oldest batches, in order
//! ```
//!
//! 1. **Batch.** [`InfluxWriter::write`] encodes points as line protocol (the model's
//!    encoder, in the configured precision) and adds them to the open batch, which is
//!    closed when it holds `batch_max_points` points or `batch_max_bytes` bytes, or
//!    when its first point is `batch_max_age` old.
//! 2. **Accept.** The committer thread appends the closed batch to the spool; the
//!    append syncs it to disk. Only then do the write calls waiting for that batch
//!    return: their points are **accepted**. When the spool is full, the calls wait
//!    (this is how backpressure reaches the collectors), and until the spool has room
//!    the writer keeps only the newest value per series and field of what is written
//!    meanwhile ([`LatestBySeries`]); every value superseded that way is counted
//!    ([`WriterStatsSnapshot::values_dropped`]) and logged. Nothing else is ever
//!    dropped.
//! 3. **Build the request.** The sender task reads the oldest spooled batches, merges
//!    consecutive ones up to `batch_max_points` / `batch_max_bytes`, gzips the body and
//!    posts it with the API's parameters and credentials.
//! 4. **Send with the retry policy**, one request at a time (ordered delivery), by the
//!    table below.
//! 5. **Acknowledge.** Once every line of the merged batches was confirmed by the
//!    server or written to the dead-letter file, the sender acknowledges them in the
//!    spool, which deletes them from disk: at most once a second while batches stream
//!    out (an acknowledgement syncs the spool's disk twice), and as soon as the stream
//!    pauses.
//!
//! # Response table
//!
//! | answer | action |
//! |---|---|
//! | 2xx (204, 200) | delivered; acknowledge |
//! | 429, 5xx | retry the same part after the capped exponential backoff (`retry_initial_backoff` doubling to `retry_max_backoff`, jittered), or after the server's `Retry-After` (seconds or an HTTP date, up to 5 min) when it sends one |
//! | no answer: connection refused or reset, timeout | retry, like 5xx |
//! | 413 Request Entity Too Large | split the part in half by lines and send the halves, recursively; a single line too large goes to the dead-letter file |
//! | 400, 422 (a parse error, a field type conflict, a point outside the retention policy) | the server refuses some lines; writes are idempotent, so bisect the part by lines and send the halves until the refused lines are isolated; each refused line goes to the dead-letter file with the server's message, the rest is delivered |
//! | 401, 403 | keep the batch and retry with backoff, logging an error naming the URL and the server's reason at every attempt: a configuration problem must not drop data |
//! | 404 (database or bucket missing) and any other status | like 401: kept, retried, logged as an error |
//!
//! The dead-letter file's format is in the `disk` module's docs: one JSON object per
//! refused line, with the time, the status, the server's message and the line. Its
//! count is [`WriterStatsSnapshot::points_dead_lettered`].
//!
//! InfluxDB 1.x refuses unsigned integer fields (`7u`, behind a flag that release
//! builds leave off): such points end in the dead-letter file with the server's
//! `invalid number`. Use integer fields for 1.x.
//!
//! # Delivery semantics: at least once
//!
//! A batch leaves the spool only after the server confirmed it, so every accepted
//! point is delivered, across outages, restarts and crashes. It may be delivered more
//! than once: after a crash between the server's answer and the acknowledgement (up to
//! a second of batches while streaming), after
//! a shutdown whose deadline cut a batch's delivery short, and for the parts of a
//! bisected or split batch that the server had already taken. That is harmless in
//! InfluxDB: a point is identified by its series (measurement and tag set) and its
//! timestamp, and writing the same point again overwrites it with the same field
//! values. (A refused line may likewise appear twice in the dead-letter file.)
//!
//! # Shutdown
//!
//! [`InfluxWriter::shutdown`] stops taking writes, spools what is buffered, and goes on
//! sending until the spool is empty or `shutdown_timeout` passed; what the server did
//! not take stays in the spool and is sent first at the next start.
//!
//! # Counters and logs
//!
//! [`InfluxWriter::stats`] returns [`WriterStatsSnapshot`]: points accepted, batches
//! spooled and delivered, retries by cause, splits, bisections, dead-lettered points,
//! dropped values, spool bytes. Each is counted by a typed internal event that also
//! logs it once (the `events` module).
//!
//! # Example
//!
//! ```no_run
//! use tidewatch_model::Point;
//! use tidewatch_storage::influx::{Api, InfluxConfig, InfluxWriter};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let mut config = InfluxConfig::new("http://127.0.0.1:8086", Api::V1);
//! config.database = Some("tidewatch".into());
//! config.spool_dir = "/var/lib/tidewatch/spool/influx".into();
//! let writer = InfluxWriter::start(config).await?;
//!
//! let points = [Point::new("cdu", 1_700_000_000_000_000_000)
//!     .tag("unit", "cdu-01")
//!     .field("supply_temp_c", 18.5)];
//! let accepted = writer.write(&points).await?; // returns once spooled and synced
//! assert_eq!(accepted.points, 1);
//!
//! let report = writer.shutdown().await;
//! println!("delivered everything: {}", report.delivered_all);
//! # Ok(())
//! # }
//! ```

mod config;
mod disk;
mod events;
mod latest;
mod policy;
mod query;
mod sender;
mod writer;

pub use config::{
    default_batch_max_age, default_batch_max_bytes, default_batch_max_points,
    default_dead_letter_file, default_precision, default_request_timeout,
    default_retry_initial_backoff, default_retry_max_backoff, default_shutdown_timeout,
    default_spool_dir, duration_text, Api, ConfigError, Gzip, InfluxConfig, Precision, Secret,
};
pub use events::{RetryCounts, WriterStats, WriterStatsSnapshot};
pub use latest::LatestBySeries;
pub use policy::{parse_retry_after, Action, Backoff, RetryCause, MAX_RETRY_AFTER};
pub use query::{
    chunks, quote_ident, quote_string, select_statement, InfluxReader, DEFAULT_CHUNK,
    DEFAULT_QUERY_TIMEOUT,
};
pub use writer::{Accepted, InfluxWriter, ShutdownReport, StartError, WriteError};
