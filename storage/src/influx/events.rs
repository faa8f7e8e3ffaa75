//! The writer's internal events and counters.
//!
//! Every noteworthy thing the writer does is a typed event (a struct below) whose
//! `emit` logs it once and counts it once, with bounded labels (the retry cause, never
//! a URL or a series as a label). Repeated failures of the same kind are logged at
//! `warn` the first time and at `debug` afterwards until a delivery succeeds (which
//! logs the recovery with the number of retries), except the causes that need a
//! person (401/403, 404 and other unexpected answers): those are an `error` at every
//! attempt, naming the URL and the server's reason, since they never heal alone.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use super::policy::RetryCause;

/// The writer's counters, since it started. Read them with
/// [`InfluxWriter::stats`](super::InfluxWriter::stats).
#[derive(Debug, Default)]
pub struct WriterStats {
    pub(crate) points_accepted: AtomicU64,
    pub(crate) points_invalid: AtomicU64,
    pub(crate) values_dropped: AtomicU64,
    pub(crate) batches_spooled: AtomicU64,
    pub(crate) spool_full_episodes: AtomicU64,
    pub(crate) requests_sent: AtomicU64,
    pub(crate) requests_delivered: AtomicU64,
    pub(crate) points_delivered: AtomicU64,
    pub(crate) batches_acked: AtomicU64,
    pub(crate) acks_written: AtomicU64,
    pub(crate) retries: [AtomicU64; 6],
    pub(crate) splits: AtomicU64,
    pub(crate) bisections: AtomicU64,
    pub(crate) points_dead_lettered: AtomicU64,
    /// Whether a retry was logged at `warn` since the last delivery.
    pub(crate) failing: AtomicBool,
    pub(crate) retries_since_delivery: AtomicU64,
}

/// A copy of the counters, with the spool's levels.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriterStatsSnapshot {
    /// Points accepted: their batch is in the spool (synced).
    pub points_accepted: u64,
    /// Points refused by the encoder (NaN, empty names, ...), never spooled; each
    /// write call reports its own in [`Accepted::invalid`](super::Accepted::invalid).
    pub points_invalid: u64,
    /// Field values superseded by a newer value of the same series while the spool was
    /// full (see [`LatestBySeries`](super::LatestBySeries)): the only data the writer
    /// ever drops, counted and logged.
    pub values_dropped: u64,
    /// Batches appended to the spool.
    pub batches_spooled: u64,
    /// Times the spool was found full (backpressure switched on).
    pub spool_full_episodes: u64,
    /// HTTP requests sent (every attempt, split and bisection part).
    pub requests_sent: u64,
    /// Requests the server confirmed (2xx).
    pub requests_delivered: u64,
    /// Points the server confirmed.
    pub points_delivered: u64,
    /// Spooled batches acknowledged (delivered or dead-lettered, then removed).
    pub batches_acked: u64,
    /// Acknowledgements written to the spool (each covers every batch delivered since
    /// the last, and costs two syncs): at most about one a second while a stream of
    /// batches lasts, one more when it pauses.
    pub acks_written: u64,
    /// Retries, by cause.
    pub retries: RetryCounts,
    /// Parts split in half after a 413.
    pub splits: u64,
    /// Parts cut in half after a 400/422 to isolate refused lines.
    pub bisections: u64,
    /// Points written to the dead-letter file.
    pub points_dead_lettered: u64,
    /// Bytes of spool segment files on disk now.
    pub spool_bytes: u64,
    /// Spooled batches not yet acknowledged.
    pub spool_pending_batches: u64,
}

/// Retries by cause; see [`RetryCause`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetryCounts {
    /// Connection errors.
    pub network: u64,
    /// Request timeouts.
    pub timeout: u64,
    /// 429.
    pub throttled: u64,
    /// 5xx.
    pub server_error: u64,
    /// 401 / 403.
    pub auth: u64,
    /// 404 and other unexpected statuses.
    pub unexpected: u64,
}

impl RetryCounts {
    /// All retries.
    pub fn total(&self) -> u64 {
        self.network
            + self.timeout
            + self.throttled
            + self.server_error
            + self.auth
            + self.unexpected
    }
}

impl WriterStats {
    pub(crate) fn snapshot(&self) -> WriterStatsSnapshot {
        let r = |c: RetryCause| self.retries[c.index()].load(Relaxed);
        WriterStatsSnapshot {
            points_accepted: self.points_accepted.load(Relaxed),
            points_invalid: self.points_invalid.load(Relaxed),
            values_dropped: self.values_dropped.load(Relaxed),
            batches_spooled: self.batches_spooled.load(Relaxed),
            spool_full_episodes: self.spool_full_episodes.load(Relaxed),
            requests_sent: self.requests_sent.load(Relaxed),
            requests_delivered: self.requests_delivered.load(Relaxed),
            points_delivered: self.points_delivered.load(Relaxed),
            batches_acked: self.batches_acked.load(Relaxed),
            acks_written: self.acks_written.load(Relaxed),
            retries: RetryCounts {
                network: r(RetryCause::Network),
                timeout: r(RetryCause::Timeout),
                throttled: r(RetryCause::Throttled),
                server_error: r(RetryCause::ServerError),
                auth: r(RetryCause::Auth),
                unexpected: r(RetryCause::Unexpected),
            },
            splits: self.splits.load(Relaxed),
            bisections: self.bisections.load(Relaxed),
            points_dead_lettered: self.points_dead_lettered.load(Relaxed),
            spool_bytes: 0,
            spool_pending_batches: 0,
        }
    }
}

/// An internal event: logs once and counts once.
pub(crate) trait InternalEvent {
    fn emit(self, stats: &WriterStats);
}

/// Points the encoder refused in one write call.
pub(crate) struct PointsInvalid<'a> {
    pub count: usize,
    pub first_error: &'a tidewatch_model::line_protocol::EncodeError,
}

impl InternalEvent for PointsInvalid<'_> {
    fn emit(self, stats: &WriterStats) {
        tracing::error!(
            count = self.count,
            first_error = %self.first_error,
            "influx writer: points cannot be written as line protocol; refused (not spooled)"
        );
        stats.points_invalid.fetch_add(self.count as u64, Relaxed);
    }
}

/// A batch appended to the spool: its points are accepted.
pub(crate) struct BatchSpooled {
    pub points: usize,
    pub bytes: usize,
    pub seq: u64,
}

impl InternalEvent for BatchSpooled {
    fn emit(self, stats: &WriterStats) {
        tracing::trace!(
            points = self.points,
            bytes = self.bytes,
            seq = self.seq,
            "influx writer: batch spooled"
        );
        stats.batches_spooled.fetch_add(1, Relaxed);
        stats.points_accepted.fetch_add(self.points as u64, Relaxed);
    }
}

/// The spool refused a batch as full: backpressure on.
pub(crate) struct SpoolFull<'a> {
    pub error: &'a crate::spool::SpoolError,
}

impl InternalEvent for SpoolFull<'_> {
    fn emit(self, stats: &WriterStats) {
        tracing::warn!(
            error = %self.error,
            "influx writer: spool is full; writes wait (backpressure) and only the newest value \
             per series is kept in memory until the server takes the backlog"
        );
        stats.spool_full_episodes.fetch_add(1, Relaxed);
    }
}

/// The spool has room again.
pub(crate) struct SpoolFullCleared {
    pub values_dropped: u64,
}

impl InternalEvent for SpoolFullCleared {
    fn emit(self, _stats: &WriterStats) {
        tracing::warn!(
            values_dropped = self.values_dropped,
            "influx writer: spool has room again; backpressure off (values dropped while full: \
             superseded by newer values of the same series)"
        );
    }
}

/// Values superseded in the in-memory buffer while the spool was full.
pub(crate) struct ValuesDropped {
    pub count: usize,
}

impl InternalEvent for ValuesDropped {
    fn emit(self, stats: &WriterStats) {
        if self.count > 0 {
            tracing::debug!(
                count = self.count,
                "influx writer: older values superseded while the spool is full"
            );
            stats.values_dropped.fetch_add(self.count as u64, Relaxed);
        }
    }
}

/// A request is about to be sent.
pub(crate) struct RequestSent;

impl InternalEvent for RequestSent {
    fn emit(self, stats: &WriterStats) {
        stats.requests_sent.fetch_add(1, Relaxed);
    }
}

/// The server confirmed a part.
pub(crate) struct PartDelivered {
    pub points: usize,
}

impl InternalEvent for PartDelivered {
    fn emit(self, stats: &WriterStats) {
        stats.requests_delivered.fetch_add(1, Relaxed);
        stats
            .points_delivered
            .fetch_add(self.points as u64, Relaxed);
        if stats.failing.swap(false, Relaxed) {
            tracing::info!(
                retries = stats.retries_since_delivery.swap(0, Relaxed),
                "influx writer: server takes writes again"
            );
        } else {
            stats.retries_since_delivery.store(0, Relaxed);
        }
    }
}

/// A request failed in a way that is retried.
pub(crate) struct RequestRetried<'a> {
    pub cause: RetryCause,
    pub url: &'a str,
    pub status: Option<u16>,
    pub reason: &'a str,
    pub wait: Duration,
    pub retry_after: bool,
}

impl InternalEvent for RequestRetried<'_> {
    fn emit(self, stats: &WriterStats) {
        stats.retries[self.cause.index()].fetch_add(1, Relaxed);
        stats.retries_since_delivery.fetch_add(1, Relaxed);
        let first = !stats.failing.swap(true, Relaxed);
        let status = self
            .status
            .map_or_else(|| "none".to_owned(), |s| s.to_string());
        if self.cause.needs_attention() {
            tracing::error!(
                url = self.url,
                status,
                reason = self.reason,
                cause = self.cause.as_str(),
                wait_ms = self.wait.as_millis() as u64,
                "influx writer: the server refuses the writer itself (credentials, permissions, \
                 database/bucket or URL); nothing is dropped, the batch is kept and retried; \
                 fix the configuration"
            );
        } else if first {
            tracing::warn!(
                url = self.url,
                status,
                reason = self.reason,
                cause = self.cause.as_str(),
                wait_ms = self.wait.as_millis() as u64,
                retry_after = self.retry_after,
                "influx writer: write failed; retrying with backoff (further retries at debug level \
                 until the server takes writes again)"
            );
        } else {
            tracing::debug!(
                url = self.url,
                status,
                reason = self.reason,
                cause = self.cause.as_str(),
                wait_ms = self.wait.as_millis() as u64,
                "influx writer: retrying"
            );
        }
    }
}

/// A 413: a part split in half.
pub(crate) struct PartSplit {
    pub lines: usize,
    pub bytes: usize,
}

impl InternalEvent for PartSplit {
    fn emit(self, stats: &WriterStats) {
        tracing::debug!(
            lines = self.lines,
            bytes = self.bytes,
            "influx writer: 413 request too large; sending the part in two halves \
             (lower batch_max_bytes below the server's body limit to avoid this)"
        );
        stats.splits.fetch_add(1, Relaxed);
    }
}

/// A 400/422: a part cut in half to isolate the refused lines.
pub(crate) struct PartBisected<'a> {
    pub lines: usize,
    pub status: u16,
    pub reason: &'a str,
}

impl InternalEvent for PartBisected<'_> {
    fn emit(self, stats: &WriterStats) {
        tracing::debug!(
            lines = self.lines,
            status = self.status,
            reason = self.reason,
            "influx writer: server refuses some lines; bisecting to isolate them"
        );
        stats.bisections.fetch_add(1, Relaxed);
    }
}

/// Lines written to the dead-letter file.
pub(crate) struct LinesDeadLettered<'a> {
    pub count: usize,
    pub status: u16,
    pub reason: &'a str,
    pub file: &'a std::path::Path,
}

impl InternalEvent for LinesDeadLettered<'_> {
    fn emit(self, stats: &WriterStats) {
        tracing::error!(
            count = self.count,
            status = self.status,
            reason = self.reason,
            file = %self.file.display(),
            "influx writer: server refused points; written to the dead-letter file"
        );
        stats
            .points_dead_lettered
            .fetch_add(self.count as u64, Relaxed);
    }
}

/// A spooled run of batches acknowledged.
pub(crate) struct BatchesAcked {
    pub count: usize,
}

impl InternalEvent for BatchesAcked {
    fn emit(self, stats: &WriterStats) {
        stats.batches_acked.fetch_add(self.count as u64, Relaxed);
        stats.acks_written.fetch_add(1, Relaxed);
    }
}
