//! The writer's front half: points -> line protocol -> batches closed by size or age
//! -> appended to the spool (accepted). The committer thread owns the appends; callers
//! wait for their batch's append. The back half (spool -> server) is in `sender`.

use std::collections::VecDeque;
use std::io::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use tidewatch_model::line_protocol::{self, EncodeError};
use tidewatch_model::Point;
use tokio::sync::{watch, Notify};

use super::config::{ConfigError, InfluxConfig, Precision, Target};
use super::disk::{frame_batch, DeadLetterFile};
use super::events::{
    BatchSpooled, InternalEvent, PointsInvalid, SpoolFull, SpoolFullCleared, ValuesDropped,
    WriterStats, WriterStatsSnapshot,
};
use super::latest::LatestBySeries;
use super::sender;
use crate::spool::{Spool, SpoolError};

/// How often the committer tries again to append to a full spool.
const FULL_RETRY: Duration = Duration::from_millis(100);

/// Why the writer could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The configuration cannot work, or a secret cannot be read.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The spool directory cannot be opened (in use by another process, damaged, ...).
    #[error(transparent)]
    Spool(#[from] SpoolError),
    /// The HTTP client cannot be built.
    #[error("influx writer: cannot build the HTTP client: {0}")]
    Client(#[source] reqwest::Error),
}

/// Why a write was not accepted. Nothing of the call is accepted then; the points are
/// still the caller's.
#[derive(Debug, Clone, thiserror::Error)]
pub enum WriteError {
    /// The writer is shutting down (or stopped before the batch could be spooled).
    #[error("influx writer is shut down; points not accepted")]
    ShutDown,
    /// The spool could not store the batch (a disk error).
    #[error("influx writer: spool append failed; points not accepted: {0}")]
    Spool(Arc<SpoolError>),
}

/// What a [`InfluxWriter::write`] call accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Accepted {
    /// Points accepted: in the spool, synced, to be delivered. (While the spool was
    /// full, some of them may have been superseded by newer values of the same series
    /// before they could be spooled; those are counted in
    /// [`WriterStatsSnapshot::values_dropped`] and logged.)
    pub points: usize,
    /// Points refused because they cannot be written as line protocol (NaN or
    /// infinite floats, empty names, line breaks in names); logged and counted.
    pub invalid: usize,
}

/// What [`InfluxWriter::shutdown`] achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Whether every accepted batch reached the server (or the dead-letter file).
    pub delivered_all: bool,
    /// Batches left in the spool for the next start.
    pub pending_batches: u64,
    /// The counters at the end.
    pub stats: WriterStatsSnapshot,
}

type CommitResult = Option<Result<(), WriteError>>;

/// The InfluxDB writer; see the [module documentation](super).
///
/// A cheap handle (`Clone`): every collector task can hold one. Started with
/// [`InfluxWriter::start`] inside a tokio runtime; stopped with
/// [`InfluxWriter::shutdown`]. When the last handle is dropped without a shutdown,
/// the writer stops at once, and what is spooled stays there for the next start.
#[derive(Clone)]
pub struct InfluxWriter {
    handle: Arc<Handle>,
}

/// Stops the background work when the last [`InfluxWriter`] goes away.
struct Handle {
    shared: Arc<Shared>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.shared.abort_now();
    }
}

pub(crate) struct Shared {
    pub(crate) config: InfluxConfig,
    pub(crate) target: Target,
    pub(crate) spool: Spool,
    pub(crate) stats: WriterStats,
    pub(crate) client: reqwest::Client,
    pub(crate) dead_letter: DeadLetterFile,
    /// Wakes the sender when a batch was spooled.
    pub(crate) sender_wake: Notify,
    /// Set once every accepted batch is in the spool and no more will come: the
    /// sender stops when the spool is empty.
    pub(crate) drain: AtomicBool,
    /// `true`: stop now, wherever you are (what is spooled stays spooled).
    pub(crate) abort: watch::Sender<bool>,
    batches: Mutex<BatchState>,
    committer_wake: Condvar,
    /// No more writes are taken.
    closing: AtomicBool,
    tasks: Mutex<Tasks>,
}

#[derive(Default)]
struct Tasks {
    committer: Option<thread::JoinHandle<()>>,
    sender: Option<tokio::task::JoinHandle<()>>,
}

#[derive(Default)]
struct BatchState {
    /// The batch being filled.
    open: Option<OpenBatch>,
    /// Closed batches waiting for their append, oldest first.
    closed: VecDeque<ClosedBatch>,
    /// The spool refused an append as full and has not taken everything since.
    full: bool,
    /// While full: the newest value per series of what was written meanwhile.
    latest: Option<LatestGeneration>,
    values_dropped_while_full: u64,
    /// Close the open batch now (a flush).
    flush: bool,
    /// Append what is left, then exit (shutdown).
    stop: bool,
    /// Exit now; fail the batches not yet appended (shutdown deadline passed).
    abort: bool,
}

struct OpenBatch {
    lines: Vec<u8>,
    points: usize,
    opened: Instant,
    done: watch::Sender<CommitResult>,
}

struct ClosedBatch {
    payload: Vec<u8>,
    points: usize,
    done: watch::Sender<CommitResult>,
}

struct LatestGeneration {
    buffer: LatestBySeries,
    done: watch::Sender<CommitResult>,
}

impl OpenBatch {
    fn new() -> OpenBatch {
        OpenBatch {
            lines: Vec::new(),
            points: 0,
            opened: Instant::now(),
            done: watch::channel(None).0,
        }
    }

    fn close(self, precision: Precision) -> ClosedBatch {
        ClosedBatch {
            payload: frame_batch(precision, self.points, &self.lines),
            points: self.points,
            done: self.done,
        }
    }
}

impl InfluxWriter {
    /// Checks the configuration, reads the secrets, opens (and recovers) the spool,
    /// and starts the committer thread and the sender task. Batches left in the spool
    /// by a previous run are sent first, in order. Must be called inside a tokio
    /// runtime.
    pub async fn start(config: InfluxConfig) -> Result<InfluxWriter, StartError> {
        let target = config.resolve()?;
        let client = reqwest::Client::builder()
            .timeout(config.request_timeout)
            .connect_timeout(config.request_timeout)
            .build()
            .map_err(StartError::Client)?;
        let spool_dir = config.spool_dir.clone();
        let spool_config = config.spool.clone();
        let spool = tokio::task::spawn_blocking(move || Spool::open(spool_dir, spool_config))
            .await
            .expect("spool open does not panic")?;
        let pending = spool.stats().records_pending;
        tracing::info!(
            url = %target.display,
            spool = %config.spool_dir.display(),
            pending_batches = pending,
            "influx writer: started"
        );
        let shared = Arc::new(Shared {
            dead_letter: DeadLetterFile::new(config.dead_letter_file.clone()),
            config,
            target,
            spool,
            stats: WriterStats::default(),
            client,
            sender_wake: Notify::new(),
            drain: AtomicBool::new(false),
            abort: watch::channel(false).0,
            batches: Mutex::new(BatchState::default()),
            committer_wake: Condvar::new(),
            closing: AtomicBool::new(false),
            tasks: Mutex::new(Tasks::default()),
        });
        let committer = {
            let shared = Arc::clone(&shared);
            thread::Builder::new()
                .name("influx-committer".into())
                .spawn(move || committer(&shared))
                .expect("spawn the committer thread")
        };
        let sender = tokio::spawn(sender::run(Arc::clone(&shared)));
        *shared.tasks.lock().unwrap_or_else(PoisonError::into_inner) = Tasks {
            committer: Some(committer),
            sender: Some(sender),
        };
        Ok(InfluxWriter {
            handle: Arc::new(Handle { shared }),
        })
    }

    fn shared(&self) -> &Arc<Shared> {
        &self.handle.shared
    }

    /// Encodes the points and adds them to the open batch; returns once the batch (or
    /// batches: a large call fills several) holding them is appended to the spool and
    /// synced. That is when they are accepted: from then on they survive a crash and
    /// are delivered.
    ///
    /// Waits at most about `batch_max_age` when the spool has room (the batch closes
    /// then, if it did not fill up earlier): gather a poll round's points into one
    /// call, or write from several tasks at once, rather than calling once per point
    /// from one task. When the spool is full, the call waits until there is room again
    /// (backpressure), and meanwhile the writer keeps only the newest value per series
    /// of what is written (see [`LatestBySeries`]).
    ///
    /// Points that cannot be encoded are refused, logged and counted
    /// ([`Accepted::invalid`]); the others are still accepted.
    pub async fn write(&self, points: &[Point]) -> Result<Accepted, WriteError> {
        let shared = self.shared();
        if shared.closing.load(Ordering::SeqCst) {
            return Err(WriteError::ShutDown);
        }
        let encoded = encode_points(points, shared.config.precision);
        if encoded.invalid > 0 {
            PointsInvalid {
                count: encoded.invalid,
                first_error: encoded.first_error.as_ref().expect("set with invalid"),
            }
            .emit(&shared.stats);
        }
        let accepted = Accepted {
            points: encoded.ends.len(),
            invalid: encoded.invalid,
        };
        if encoded.ends.is_empty() {
            return Ok(accepted);
        }
        let receivers = shared.add_to_batches(points, &encoded)?;
        for mut receiver in receivers {
            wait_commit(&mut receiver).await?;
        }
        Ok(accepted)
    }

    /// Closes the open batch now and waits until everything written before this call
    /// is in the spool (accepted). Delivery goes on in the background.
    pub async fn flush(&self) -> Result<(), WriteError> {
        let receiver = {
            let shared = self.shared();
            let mut state = shared.state();
            let receiver = if let Some(open) = &state.open {
                let receiver = open.done.subscribe();
                state.flush = true;
                Some(receiver)
            } else if let Some(latest) = &state.latest {
                Some(latest.done.subscribe())
            } else {
                state.closed.back().map(|b| b.done.subscribe())
            };
            shared.committer_wake.notify_all();
            receiver
        };
        match receiver {
            Some(mut receiver) => wait_commit(&mut receiver).await,
            None => Ok(()),
        }
    }

    /// Waits until every batch in the spool is delivered (acknowledged), at most
    /// `timeout`; returns whether it is. Points still in the open batch are not in the
    /// spool yet: [`flush`](Self::flush) first.
    pub async fn wait_delivered(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if self.shared().spool.stats().records_pending == 0 {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Shuts down within the configured `shutdown_timeout`; see
    /// [`shutdown_within`](Self::shutdown_within).
    pub async fn shutdown(&self) -> ShutdownReport {
        self.shutdown_within(self.shared().config.shutdown_timeout)
            .await
    }

    /// Stops taking writes, spools what is buffered (flush), and keeps sending until
    /// the spool is empty or `timeout` passed; then stops. What the server did not
    /// take stays in the spool for the next start. Writes still waiting when the
    /// timeout passes (a full spool) fail with [`WriteError::ShutDown`]: those points
    /// were never accepted.
    pub async fn shutdown_within(&self, timeout: Duration) -> ShutdownReport {
        let shared = Arc::clone(self.shared());
        let deadline = tokio::time::Instant::now() + timeout;
        shared.closing.store(true, Ordering::SeqCst);
        {
            let mut state = shared.state();
            state.stop = true;
            shared.committer_wake.notify_all();
        }
        let (committer, sender) = {
            let mut tasks = shared.tasks.lock().unwrap_or_else(PoisonError::into_inner);
            (tasks.committer.take(), tasks.sender.take())
        };
        if let Some(committer) = committer {
            let mut join = tokio::task::spawn_blocking(move || committer.join());
            if tokio::time::timeout_at(deadline, &mut join).await.is_err() {
                shared.abort_now();
                let _ = join.await;
            }
        }
        shared.drain.store(true, Ordering::SeqCst);
        shared.sender_wake.notify_one();
        if let Some(mut sender) = sender {
            if tokio::time::timeout_at(deadline, &mut sender)
                .await
                .is_err()
            {
                shared.abort_now();
                let _ = sender.await;
            }
        }
        let pending = shared.spool.stats().records_pending;
        let report = ShutdownReport {
            delivered_all: pending == 0,
            pending_batches: pending,
            stats: self.stats(),
        };
        if pending == 0 {
            tracing::info!("influx writer: stopped; everything accepted was delivered");
        } else {
            tracing::warn!(
                pending_batches = pending,
                spool = %shared.config.spool_dir.display(),
                "influx writer: stopped before the server took everything; the rest stays \
                 in the spool and is sent at the next start"
            );
        }
        report
    }

    /// The counters, with the spool's levels.
    pub fn stats(&self) -> WriterStatsSnapshot {
        let shared = self.shared();
        let spool = shared.spool.stats();
        WriterStatsSnapshot {
            spool_bytes: spool.bytes,
            spool_pending_batches: spool.records_pending,
            ..shared.stats.snapshot()
        }
    }

    /// The dead-letter file's path.
    pub fn dead_letter_file(&self) -> &std::path::Path {
        self.shared().dead_letter.path()
    }
}

async fn wait_commit(receiver: &mut watch::Receiver<CommitResult>) -> Result<(), WriteError> {
    match receiver.wait_for(Option::is_some).await {
        Ok(result) => result.clone().expect("waited for Some"),
        // The committer went away without an answer: the batch was not spooled.
        Err(_) => Err(WriteError::ShutDown),
    }
}

/// A write call's points as line protocol.
struct Encoded {
    lines: Vec<u8>,
    /// End offset in `lines` of each encoded point's line.
    ends: Vec<usize>,
    /// Index in the call's points of each encoded point.
    valid: Vec<usize>,
    invalid: usize,
    first_error: Option<EncodeError>,
}

fn encode_points(points: &[Point], precision: Precision) -> Encoded {
    let mut out = Encoded {
        lines: Vec::with_capacity(points.len() * 96),
        ends: Vec::with_capacity(points.len()),
        valid: Vec::with_capacity(points.len()),
        invalid: 0,
        first_error: None,
    };
    let mut encoder = line_protocol::Encoder::default();
    for (i, point) in points.iter().enumerate() {
        let start = out.lines.len();
        match encoder.encode(point, &mut out.lines) {
            Ok(()) => {
                if precision != Precision::Ns {
                    rescale_timestamp(&mut out.lines, start, point.timestamp_ns(), precision);
                }
                out.ends.push(out.lines.len());
                out.valid.push(i);
            }
            Err(error) => {
                out.invalid += 1;
                out.first_error.get_or_insert(error);
            }
        }
    }
    out
}

/// Rewrites the timestamp of the line that starts at `start` (the last one in `lines`,
/// as the encoder wrote it in nanoseconds) in `precision`, rounded towards the past.
fn rescale_timestamp(lines: &mut Vec<u8>, start: usize, timestamp_ns: i64, precision: Precision) {
    let end = lines.len() - 1; // the line's '\n'
    let space = lines[start..end]
        .iter()
        .rposition(|&b| b == b' ')
        .expect("the encoder always writes a timestamp")
        + start;
    lines.truncate(space + 1);
    let scaled = timestamp_ns.div_euclid(precision.nanos());
    writeln!(lines, "{scaled}").expect("writing to a Vec cannot fail");
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, BatchState> {
        self.batches.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Stops everything now: the committer fails what it has not appended, the sender
    /// returns between two steps. What is spooled stays spooled.
    pub(crate) fn abort_now(&self) {
        self.closing.store(true, Ordering::SeqCst);
        {
            let mut state = self.state();
            state.stop = true;
            state.abort = true;
        }
        self.committer_wake.notify_all();
        self.abort.send_replace(true);
    }

    /// Puts a call's encoded points into batches (or, while the spool is full, its
    /// points into the newest-value buffer); returns what to wait for.
    fn add_to_batches(
        &self,
        points: &[Point],
        encoded: &Encoded,
    ) -> Result<Vec<watch::Receiver<CommitResult>>, WriteError> {
        let max_points = self.config.batch_max_points;
        let max_bytes = self.config.batch_max_bytes;
        let mut state = self.state();
        if state.stop {
            return Err(WriteError::ShutDown);
        }
        if state.full {
            let generation = state.latest.get_or_insert_with(|| LatestGeneration {
                buffer: LatestBySeries::default(),
                done: watch::channel(None).0,
            });
            let superseded: usize = encoded
                .valid
                .iter()
                .map(|&i| generation.buffer.insert(&points[i]))
                .sum();
            let receiver = generation.done.subscribe();
            state.values_dropped_while_full += superseded as u64;
            ValuesDropped { count: superseded }.emit(&self.stats);
            return Ok(vec![receiver]);
        }

        let mut receivers = Vec::new();
        let mut wake = false;
        let mut next = 0; // index into encoded.ends
        let mut from = 0; // byte offset of line `next`
        while next < encoded.ends.len() {
            let open = state.open.get_or_insert_with(|| {
                wake = true;
                OpenBatch::new()
            });
            let mut take = 0;
            let mut to = from;
            while next + take < encoded.ends.len() && open.points + take < max_points {
                let end = encoded.ends[next + take];
                let fits = open.lines.len() + (end - from) <= max_bytes;
                if !fits && open.points + take > 0 {
                    break;
                }
                to = end;
                take += 1;
            }
            if take > 0 {
                open.lines.extend_from_slice(&encoded.lines[from..to]);
                open.points += take;
                receivers.push(open.done.subscribe());
            }
            next += take;
            from = to;
            let closing = open.points >= max_points || open.lines.len() >= max_bytes || take == 0;
            if closing || (next < encoded.ends.len()) {
                let batch = state.open.take().expect("open above");
                state.closed.push_back(batch.close(self.config.precision));
                wake = true;
            }
        }
        if wake {
            self.committer_wake.notify_all();
        }
        Ok(receivers)
    }
}

/// The committer thread: appends closed batches to the spool in order, closes the open
/// batch when it is old enough, and handles a full spool.
fn committer(shared: &Shared) {
    let max_age = shared.config.batch_max_age;
    let precision = shared.config.precision;
    let mut state = shared.state();
    loop {
        // Pick the next batch to append, or wait for one.
        let batch = loop {
            if state.abort {
                fail_unspooled(&mut state);
                return;
            }
            if let Some(batch) = state.closed.pop_front() {
                break batch;
            }
            if state.full {
                if let Some(generation) = state.latest.take() {
                    let mut buffer = generation.buffer;
                    let points = buffer.drain();
                    let encoded = encode_points(&points, precision);
                    let batch = ClosedBatch {
                        payload: frame_batch(precision, encoded.ends.len(), &encoded.lines),
                        points: encoded.ends.len(),
                        done: generation.done,
                    };
                    break batch;
                }
                state.full = false;
                SpoolFullCleared {
                    values_dropped: std::mem::take(&mut state.values_dropped_while_full),
                }
                .emit(&shared.stats);
                continue;
            }
            let now = Instant::now();
            if let Some(open) = &state.open {
                if state.flush || state.stop || now >= open.opened + max_age {
                    state.flush = false;
                    break state.open.take().expect("checked").close(precision);
                }
            }
            if state.stop {
                return;
            }
            let timeout = state
                .open
                .as_ref()
                .map_or(Duration::from_secs(3600), |open| {
                    (open.opened + max_age).saturating_duration_since(now)
                });
            state = shared
                .committer_wake
                .wait_timeout(state, timeout)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        };
        drop(state);

        let result = if batch.points == 0 {
            Ok(None)
        } else {
            shared.spool.append(&batch.payload).map(Some)
        };
        state = shared.state();
        match result {
            Ok(seq) => {
                if let Some(seq) = seq {
                    BatchSpooled {
                        points: batch.points,
                        bytes: batch.payload.len(),
                        seq,
                    }
                    .emit(&shared.stats);
                    shared.sender_wake.notify_one();
                }
                batch.done.send_replace(Some(Ok(())));
            }
            Err(error @ SpoolError::Full { .. }) => {
                if !state.full {
                    state.full = true;
                    SpoolFull { error: &error }.emit(&shared.stats);
                    // The open batch is closed as it is; what is written from now on
                    // goes to the newest-value buffer.
                    if let Some(open) = state.open.take() {
                        state.closed.push_back(open.close(precision));
                    }
                }
                state.closed.push_front(batch);
                if !state.abort {
                    state = shared
                        .committer_wake
                        .wait_timeout(state, FULL_RETRY)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0;
                }
            }
            Err(error) => {
                tracing::error!(
                    %error,
                    points = batch.points,
                    "influx writer: cannot append a batch to the spool; the writes waiting for it \
                     fail (their points are not accepted)"
                );
                batch
                    .done
                    .send_replace(Some(Err(WriteError::Spool(Arc::new(error)))));
            }
        }
    }
}

/// At an abort: every batch not appended fails, so its writers know their points were
/// not accepted.
fn fail_unspooled(state: &mut BatchState) {
    let mut failed = 0;
    for batch in state.closed.drain(..) {
        failed += batch.points;
        batch.done.send_replace(Some(Err(WriteError::ShutDown)));
    }
    if let Some(open) = state.open.take() {
        failed += open.points;
        open.done.send_replace(Some(Err(WriteError::ShutDown)));
    }
    if let Some(latest) = state.latest.take() {
        failed += latest.buffer.len();
        latest.done.send_replace(Some(Err(WriteError::ShutDown)));
    }
    if failed > 0 {
        tracing::warn!(
            points = failed,
            "influx writer: stopped with points not yet spooled; their writes fail (not accepted)"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rescaled_towards_the_past() {
        let point = Point::new("m", 1_700_000_000_123_456_789).field("s", "a b 1");
        let encoded = encode_points(&[point], Precision::Ms);
        assert_eq!(encoded.lines, b"m s=\"a b 1\" 1700000000123\n");
        let point = Point::new("m", -1).field("f", 1.0);
        let encoded = encode_points(&[point], Precision::S);
        assert_eq!(encoded.lines, b"m f=1.0 -1\n");
    }

    #[test]
    fn invalid_points_are_counted_not_encoded() {
        let points = [
            Point::new("m", 1).field("f", 1.0),
            Point::new("m", 2).field("f", f64::NAN),
            Point::new("m", 3).field("f", 3.0),
        ];
        let encoded = encode_points(&points, Precision::Ns);
        assert_eq!(encoded.valid, [0, 2]);
        assert_eq!(encoded.invalid, 1);
        assert_eq!(encoded.lines, b"m f=1.0 1\nm f=3.0 3\n");
        assert_eq!(encoded.ends, [10, 20]);
    }
}
