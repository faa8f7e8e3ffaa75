//! The embedded store: points kept on the local disk in Parquet files, the default sink
//! when no InfluxDB is configured, read back as polars frames.
//!
//! ```text
//! write(points) --validate--> WAL append (synced) --> memory (visible to scans)
//!     ^ returns here: accepted                          |
//!                                                       v  every flush_interval, or flush_max_points
//!       WAL ack <-- files synced and renamed <-- one Parquet file per (measurement, UTC day)
//!                                                       |
//!                         closed day: compaction to one file per partition; retention drops old days
//! ```
//!
//! # Writing
//!
//! [`EmbeddedStore::write`] checks each point (the line protocol encoder's rules, so
//! the embedded store accepts what InfluxDB would, and the
//! [frame conventions](crate::frame): `time` is reserved, a name is a tag or a field
//! of one type per measurement), refuses the points that break them (reported in
//! [`Accepted::refused`], logged and counted, never silently dropped), and appends the
//! others as one record to the write-ahead log, a [`Spool`](crate::spool::Spool). The
//! points are **accepted** once that append has returned, which happens after the
//! record is synced: from then on they survive a crash. Writes are serialised; batch
//! points into few calls for throughput (each call costs one `fdatasync`). Many
//! concurrent writers (the collectors' sink) share calls through a [`GroupWriter`]:
//! a burst of writes becomes one call, one record and one sync.
//!
//! # Flushing, compaction, retention
//!
//! A background thread flushes what waits in the WAL to Parquet every
//! `flush_interval` (or once `flush_max_points` wait, or half the WAL's `max_bytes`):
//! one file per measurement and
//! UTC day touched, written to a temporary name, synced, renamed; only then is the WAL
//! acknowledged. If the files cannot be written (disk full, a broken directory), the
//! points stay in the WAL and in memory, the flush is retried with a capped backoff,
//! and writes go on being accepted until the WAL is full ([`StoreError::Full`]:
//! backpressure, nothing dropped). Nothing accepted is lost to a crash at any point:
//! the recovery rules are in the [`layout`] docs.
//!
//! Why the WAL is the [`Spool`](crate::spool::Spool) of the InfluxDB writer: it already
//! is what a write-ahead log needs (a record accepted only once synced, CRC-checked
//! records, a torn tail cut on open, ordered replay of what is not acknowledged, a
//! bound in bytes with a typed "full" error, one process per directory), and is tested
//! for it, crash tests included. The only addition is the
//! [record payload](layout#wal-point-format) and the rule that makes replay idempotent
//! (a row is skipped if a Parquet file of its partition covers its record).
//!
//! Once a UTC day has ended (plus `compact_after`), each of its partitions with more
//! than one file is compacted into one file (and an open day's partition once it has
//! more than `compact_max_files`), atomically: the merged file is written and renamed
//! into place before its inputs are deleted, and a crash between the two leaves inputs
//! that the next open recognises and removes. With `retention_days`, day partitions
//! older than that are deleted. [`EmbeddedStore::flush`] and
//! [`EmbeddedStore::maintain`] run these steps on demand (tests, shutdown, tools).
//!
//! # Reading
//!
//! [`EmbeddedStore::scan`] returns a polars `LazyFrame` of one measurement for a time
//! range, tag filters and an optional field selection, in the frame conventions. It
//! opens only the day partitions that overlap the range, as one Parquet scan whose
//! filter (time range, tags) polars pushes into the reader (row groups whose
//! statistics exclude the filter are skipped), concatenated with the rows still
//! waiting in memory: **what was accepted is visible at once**, flushed or not. The
//! files are opened when `scan` is called, so a frame stays readable even if a
//! compaction or the retention replaces its files before it is collected (the frame
//! is a snapshot of the files; the in-memory rows are copied into it).
//!
//! # Example
//!
//! ```
//! use polars::prelude::*;
//! use tidewatch_model::Point;
//! use tidewatch_storage::embedded::{EmbeddedConfig, EmbeddedStore};
//! use tidewatch_storage::store::Scan;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let store = EmbeddedStore::open(EmbeddedConfig::in_dir(dir.path()))?;
//! let t0 = 1_767_225_600_000_000_000; // 2026-01-01T00:00:00Z
//! let accepted = store.write(&[
//!     Point::new("cdu", t0).tag("device", "cdu-01").field("supply_temp_c", 18.5),
//!     Point::new("cdu", t0).tag("device", "cdu-02").field("supply_temp_c", 19.0),
//! ])?;
//! assert_eq!(accepted.points, 2);
//!
//! // Visible before any flush; the filter is pushed down to the Parquet reader.
//! let scan = Scan::new("cdu", t0..t0 + 1).tag("device", "cdu-02");
//! let df = store.scan(&scan)?.collect()?;
//! assert_eq!(df.height(), 1);
//! assert_eq!(df.column("supply_temp_c")?.f64()?.get(0), Some(19.0));
//!
//! store.flush()?; // now in data/cdu/2026-01-01/part-...parquet
//! assert_eq!(store.scan(&scan)?.collect()?.height(), 1);
//! store.shutdown()?;
//! # Ok(())
//! # }
//! ```

mod config;
mod group;
pub mod layout;

use std::collections::{BTreeMap, HashSet};
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use polars::prelude::*;
use tidewatch_model::{line_protocol, Point};

pub use crate::error::StoreError;
pub use config::{
    default_compact_after, default_compact_max_files, default_dir, default_flush_interval,
    default_flush_max_points, default_wal, EmbeddedConfig,
};
pub use group::{GroupWriteError, GroupWriter, DEFAULT_GROUP_MAX_POINTS};

use crate::frame::{self, MeasurementSchema, TIME};
use crate::spool::Spool;
use crate::store::Scan;
use layout::{Day, SeqRange};

/// What [`EmbeddedStore::write`] did with a call's points.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Accepted {
    /// Points accepted: synced to the write-ahead log.
    pub points: usize,
    /// Points refused, with why; they are not stored.
    pub refused: Vec<Refused>,
}

/// A point the store refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// Its position in the call's points.
    pub index: usize,
    /// Why.
    pub reason: String,
}

/// Levels and counters of an [`EmbeddedStore`].
///
/// Levels describe the store now; counters count since it was opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Rows in Parquet files.
    pub rows_in_files: u64,
    /// Parquet files.
    pub files: u64,
    /// Day partitions (measurement and day) with at least one file.
    pub partitions: u64,
    /// Bytes of the Parquet files.
    pub file_bytes: u64,
    /// Bytes of the write-ahead log's segment files.
    pub wal_bytes: u64,
    /// Points accepted and not yet in Parquet files (in the WAL and in memory).
    pub pending_points: u64,
    /// Points accepted since open.
    pub points_accepted: u64,
    /// Points refused since open.
    pub points_refused: u64,
    /// Points replayed from the WAL on open (not yet in Parquet when the store was
    /// closed or killed).
    pub points_replayed: u64,
    /// Flushes that wrote files.
    pub flushes: u64,
    /// Flushes that failed (and were retried).
    pub flush_failures: u64,
    /// Partitions compacted.
    pub compactions: u64,
    /// Partitions deleted by the retention.
    pub partitions_expired: u64,
}

impl StoreStats {
    /// Rows stored: in Parquet files and waiting in the WAL.
    pub fn rows(&self) -> u64 {
        self.rows_in_files + self.pending_points
    }

    /// Bytes on disk: Parquet files and WAL.
    pub fn bytes_on_disk(&self) -> u64 {
        self.file_bytes + self.wal_bytes
    }
}

/// What one maintenance pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MaintenanceReport {
    /// Partitions compacted into one file.
    pub compacted: u64,
    /// Files those partitions had before.
    pub files_merged: u64,
    /// Day partitions deleted by the retention.
    pub expired: u64,
}

/// A handle on an embedded store; see the [module documentation](self).
///
/// `Clone + Send + Sync`: clones share the store. The API is blocking (file I/O and
/// `fsync`); async code calls it through `spawn_blocking` (as
/// [`Store`](crate::store::Store) does). One process at a time owns a store directory.
/// The background thread stops when the last handle is dropped; call
/// [`shutdown`](Self::shutdown) to also flush before that.
#[derive(Clone)]
pub struct EmbeddedStore {
    shared: Arc<Shared>,
    background: Arc<Background>,
}

struct Shared {
    config: EmbeddedConfig,
    data: PathBuf,
    wal: Spool,
    /// Serialises writers, so that the rows in memory are always a prefix of the WAL.
    write: Mutex<Vec<u8>>,
    state: Mutex<State>,
    /// Wakes the background thread (early flush, stop).
    wake: Condvar,
    /// One flush, compaction or retention pass at a time.
    maintenance: Mutex<()>,
    /// Set when a flush panicked: no more flushes (nor WAL acknowledgements).
    flush_stopped: AtomicBool,
    counters: Counters,
}

#[derive(Default)]
struct Counters {
    accepted: AtomicU64,
    refused: AtomicU64,
    replayed: AtomicU64,
    flushes: AtomicU64,
    flush_failures: AtomicU64,
    compactions: AtomicU64,
    expired: AtomicU64,
}

/// One WAL record's accepted points.
struct Batch {
    seq: u64,
    points: Vec<Point>,
}

#[derive(Debug, Clone)]
struct FileEntry {
    path: PathBuf,
    range: SeqRange,
    rows: u64,
    bytes: u64,
    schema: MeasurementSchema,
}

#[derive(Default)]
struct State {
    schemas: BTreeMap<String, MeasurementSchema>,
    /// Measurement -> day -> files, sorted by range.
    files: BTreeMap<String, BTreeMap<Day, Vec<FileEntry>>>,
    /// Accepted batches not in Parquet yet, in WAL order.
    pending: Vec<Batch>,
    pending_points: usize,
    /// WAL payload bytes of the pending batches (approximate after a failed flush).
    pending_bytes: u64,
    /// When the oldest pending batch arrived.
    pending_since: Option<Instant>,
    /// Batches being flushed: still visible to scans until their files are indexed.
    flushing: Option<Arc<Vec<Batch>>>,
    stop: bool,
}

struct Background {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for Background {
    fn drop(&mut self) {
        self.shared.stop_background(&self.thread);
    }
}

impl EmbeddedStore {
    /// Opens (creating it if needed) the store in `config.dir`: recovers what a
    /// previous process left (the rules are in the [`layout`] docs), replays the WAL
    /// into memory and starts the background thread. Fails if another process has the
    /// store open.
    pub fn open(config: EmbeddedConfig) -> Result<EmbeddedStore, StoreError> {
        config.validate().map_err(StoreError::Config)?;
        let dir = config.dir.clone();
        fs::create_dir_all(&dir).map_err(|e| StoreError::io("create directory", &dir, e))?;
        // The WAL's lock keeps a second process out: take it before touching files.
        let wal = Spool::open(layout::wal_dir(&dir), config.wal.clone())
            .map_err(StoreError::from_spool)?;
        let data = layout::data_dir(&dir);
        if !data.is_dir() {
            fs::create_dir_all(&data).map_err(|e| StoreError::io("create directory", &data, e))?;
            sync_dir(&dir)?;
        }
        let mut state = State::default();
        recover_files(&data, &mut state)?;
        let shared = Arc::new(Shared {
            config,
            data,
            wal,
            write: Mutex::new(Vec::new()),
            state: Mutex::new(state),
            wake: Condvar::new(),
            maintenance: Mutex::new(()),
            flush_stopped: AtomicBool::new(false),
            counters: Counters::default(),
        });
        shared.replay_wal()?;
        let thread = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("embedded-store".into())
                .spawn(move || shared.background_loop())
                .map_err(|e| StoreError::io("start the background thread of", &dir, e))?
        };
        let stats = shared.stats();
        tracing::info!(
            dir = %dir.display(),
            files = stats.files,
            rows_in_files = stats.rows_in_files,
            replayed_points = stats.points_replayed,
            "embedded store: opened"
        );
        Ok(EmbeddedStore {
            background: Arc::new(Background {
                shared: shared.clone(),
                thread: Mutex::new(Some(thread)),
            }),
            shared,
        })
    }

    /// Checks the points, appends the valid ones to the WAL and syncs it; returns once
    /// they are accepted. Points that break the rules are refused (see
    /// [`Accepted::refused`]); the others are accepted all together or, on an error,
    /// none of them ([`StoreError::Full`] when the WAL is full: retry later).
    pub fn write(&self, points: &[Point]) -> Result<Accepted, StoreError> {
        self.shared.write(points)
    }

    /// The frame of one measurement for `scan`'s time range, tag filters and field
    /// selection, with the filters pushed down; see the [module docs](self#reading).
    pub fn scan(&self, scan: &Scan) -> Result<LazyFrame, StoreError> {
        self.shared.scan(scan)
    }

    /// The columns of a measurement, as far as the store knows it (`None` if it has
    /// never seen it, or the retention removed all of it before this process opened).
    pub fn schema(&self, measurement: &str) -> Option<MeasurementSchema> {
        self.shared.lock_state().schemas.get(measurement).cloned()
    }

    /// The measurements the store holds, sorted.
    pub fn measurements(&self) -> Vec<String> {
        self.shared.lock_state().schemas.keys().cloned().collect()
    }

    /// Writes every accepted point that waits in the WAL to Parquet now, then
    /// acknowledges it in the WAL. Returns the number of points flushed.
    pub fn flush(&self) -> Result<u64, StoreError> {
        self.shared.flush()
    }

    /// One maintenance pass as of `now_ns` (Unix ns): compacts the partitions of closed
    /// days (and open ones past `compact_max_files`) and applies the retention. The
    /// background thread runs it with the clock after each flush.
    pub fn maintain(&self, now_ns: i64) -> Result<MaintenanceReport, StoreError> {
        self.shared.maintain(now_ns)
    }

    /// Levels and counters, for status lines and metrics.
    pub fn stats(&self) -> StoreStats {
        self.shared.stats()
    }

    /// The store's directory.
    pub fn dir(&self) -> &Path {
        &self.shared.config.dir
    }

    /// Stops the background thread and flushes what waits. The handle still works
    /// afterwards (reads, writes, explicit flushes), without background flushing.
    pub fn shutdown(&self) -> Result<(), StoreError> {
        self.shared.stop_background(&self.background.thread);
        self.shared.flush().map(drop)
    }
}

impl std::fmt::Debug for EmbeddedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedStore")
            .field("dir", &self.shared.config.dir)
            .field("stats", &self.stats())
            .finish()
    }
}

/// The message of a caught panic.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".into())
}

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

impl Shared {
    fn lock_state(&self) -> MutexGuard<'_, State> {
        // No code path panics while holding the lock in a way that leaves the state
        // half-changed; carry on after a poisoned lock.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn lock_maintenance(&self) -> MutexGuard<'_, ()> {
        self.maintenance
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn stop_background(&self, thread: &Mutex<Option<JoinHandle<()>>>) {
        let handle = thread.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(handle) = handle {
            self.lock_state().stop = true;
            self.wake.notify_all();
            if handle.join().is_err() {
                tracing::error!("embedded store: the background thread panicked");
            }
        }
    }

    // ---------------------------------------------------------------- writing

    fn write(&self, points: &[Point]) -> Result<Accepted, StoreError> {
        let mut scratch = self.write.lock().unwrap_or_else(PoisonError::into_inner);
        let mut accepted: Vec<&Point> = Vec::with_capacity(points.len());
        let mut refused = Vec::new();
        // Schemas as they will be once the accepted points are in: checked against
        // the store's and against the earlier points of this call.
        let mut changed: BTreeMap<String, MeasurementSchema> = BTreeMap::new();
        {
            let state = self.lock_state();
            for (index, point) in points.iter().enumerate() {
                // What line protocol cannot carry is refused, as InfluxDB would; the
                // WAL record is binary, so nothing is encoded here.
                let verdict = line_protocol::check(point)
                    .map_err(|e| e.to_string())
                    .and_then(|()| {
                        let dir = layout::measurement_dir_name(point.measurement());
                        if dir.len() > layout::MAX_MEASUREMENT_DIR_LEN {
                            return Err(format!(
                                "measurement name too long ({} bytes encoded as a directory \
                                 name, at most {})",
                                dir.len(),
                                layout::MAX_MEASUREMENT_DIR_LEN
                            ));
                        }
                        let m = point.measurement();
                        if !changed.contains_key(m) {
                            let base = state.schemas.get(m).cloned().unwrap_or_default();
                            changed.insert(m.to_owned(), base);
                        }
                        let schema = changed.get_mut(m).expect("inserted above");
                        schema
                            .add_point(point)
                            .map_err(|e| format!("measurement {m:?}: {e}"))
                    });
                match verdict {
                    Ok(()) => accepted.push(point),
                    Err(reason) => refused.push(Refused { index, reason }),
                }
            }
        }
        if !refused.is_empty() {
            self.counters
                .refused
                .fetch_add(refused.len() as u64, Ordering::Relaxed);
            tracing::warn!(
                refused = refused.len(),
                first_index = refused[0].index,
                first_reason = %refused[0].reason,
                "embedded store: points refused"
            );
        }
        if accepted.is_empty() {
            return Ok(Accepted { points: 0, refused });
        }
        scratch.clear();
        layout::encode_wal(&accepted, &mut scratch);
        let seq = self.wal.append(&scratch).map_err(StoreError::from_spool)?;
        let scratch_len = scratch.len() as u64;
        if scratch.capacity() > 16 << 20 {
            *scratch = Vec::new();
        }
        let n = accepted.len();
        let batch = Batch {
            seq,
            points: accepted.into_iter().cloned().collect(),
        };
        let wake = {
            let mut state = self.lock_state();
            for (m, schema) in changed {
                state.schemas.insert(m, schema);
            }
            state.pending.push(batch);
            state.pending_points += n;
            state.pending_bytes += scratch_len;
            state.pending_since.get_or_insert_with(Instant::now);
            self.flush_due(&state)
        };
        if wake {
            self.wake.notify_all();
        }
        self.counters
            .accepted
            .fetch_add(n as u64, Ordering::Relaxed);
        Ok(Accepted { points: n, refused })
    }

    /// On open: every unacknowledged WAL record back into memory, without the rows a
    /// Parquet file already holds (recovery rule 3).
    fn replay_wal(&self) -> Result<(), StoreError> {
        let mut state = self.lock_state();
        let mut replayed = 0u64;
        loop {
            let records = self
                .wal
                .next_unacked(1024, 64 << 20)
                .map_err(StoreError::from_spool)?;
            if records.is_empty() {
                break;
            }
            for record in records {
                let points =
                    layout::decode_wal(&record.payload).map_err(|e| StoreError::Corrupt {
                        path: self.wal.dir().to_path_buf(),
                        reason: format!("record {}: {e}", record.seq),
                    })?;
                let mut kept = Vec::with_capacity(points.len());
                for point in points {
                    let covered = state
                        .files
                        .get(point.measurement())
                        .and_then(|days| days.get(&Day::of(point.timestamp_ns())))
                        .is_some_and(|files| files.iter().any(|f| f.range.covers(record.seq)));
                    if covered {
                        continue;
                    }
                    let schema = state
                        .schemas
                        .entry(point.measurement().to_owned())
                        .or_default();
                    if let Err(e) = schema.add_point(&point) {
                        // Cannot happen: the point was checked against the same schema
                        // when it was accepted. Keep it in the WAL rather than lose it.
                        return Err(StoreError::Corrupt {
                            path: self.wal.dir().to_path_buf(),
                            reason: format!(
                                "record {}: a point of {:?} no longer fits the stored files: {e}",
                                record.seq,
                                point.measurement()
                            ),
                        });
                    }
                    kept.push(point);
                }
                replayed += kept.len() as u64;
                state.pending_points += kept.len();
                state.pending_bytes += record.payload.len() as u64;
                state.pending.push(Batch {
                    seq: record.seq,
                    points: kept,
                });
            }
        }
        if !state.pending.is_empty() {
            state.pending_since = Some(Instant::now());
        }
        self.counters.replayed.store(replayed, Ordering::Relaxed);
        Ok(())
    }

    // ---------------------------------------------------------------- flushing

    /// Whether enough waits to flush before the interval: `flush_max_points` points,
    /// or half of the WAL's `max_bytes` (so that the WAL never fills while the files
    /// can be written).
    fn flush_due(&self, state: &State) -> bool {
        state.pending_points >= self.config.flush_max_points
            || state.pending_bytes >= self.config.wal.max_bytes / 2
    }

    /// A flush, guarded: if it panics (a bug), flushing stops for good in this
    /// process, so that nothing is acknowledged in the WAL that might not be in a file;
    /// writes are still accepted into the WAL, and the next open replays them.
    fn flush(&self) -> Result<u64, StoreError> {
        if self.flush_stopped.load(Ordering::Relaxed) {
            return Err(StoreError::FlushStopped);
        }
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.flush_inner())) {
            Ok(result) => result,
            Err(panic) => {
                self.flush_stopped.store(true, Ordering::Relaxed);
                let message = panic_message(&*panic);
                tracing::error!(
                    panic = %message,
                    "embedded store: a flush panicked; flushing stops until the store is \
                     opened again (accepted points are safe in the write-ahead log)"
                );
                Err(StoreError::FlushStopped)
            }
        }
    }

    fn flush_inner(&self) -> Result<u64, StoreError> {
        let _maintenance = self.lock_maintenance();
        let batches = {
            let mut state = self.lock_state();
            if state.pending.is_empty() {
                return Ok(0);
            }
            let batches = Arc::new(std::mem::take(&mut state.pending));
            state.pending_points = 0;
            state.pending_bytes = 0;
            state.pending_since = None;
            state.flushing = Some(batches.clone());
            batches
        };
        let last_seq = batches.last().map_or(0, |b| b.seq);
        let mut partitions: BTreeMap<(&str, Day), Vec<(u64, &Point)>> = BTreeMap::new();
        for batch in batches.iter() {
            for point in &batch.points {
                partitions
                    .entry((point.measurement(), Day::of(point.timestamp_ns())))
                    .or_default()
                    .push((batch.seq, point));
            }
        }
        let mut written: Vec<(String, Day, FileEntry)> = Vec::new();
        let mut failure = None;
        for ((measurement, day), rows) in &partitions {
            match self.write_partition(measurement, *day, rows) {
                Ok(entry) => written.push(((*measurement).to_owned(), *day, entry)),
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        drop(partitions);
        let flushed: u64 = written.iter().map(|(_, _, f)| f.rows).sum();
        let mut state = self.lock_state();
        let done: HashSet<(String, Day)> =
            written.iter().map(|(m, d, _)| (m.clone(), *d)).collect();
        for (m, d, entry) in written {
            let files = state.files.entry(m).or_default().entry(d).or_default();
            files.push(entry);
            files.sort_by_key(|f| f.range);
        }
        state.flushing = None;
        if let Some(error) = failure {
            // Put back what is not in a file yet, ahead of what came meanwhile.
            let batches = Arc::try_unwrap(batches).unwrap_or_else(|shared| {
                shared
                    .iter()
                    .map(|b| Batch {
                        seq: b.seq,
                        points: b.points.clone(),
                    })
                    .collect()
            });
            let mut back: Vec<Batch> = batches
                .into_iter()
                .map(|mut b| {
                    b.points.retain(|p| {
                        !done.contains(&(p.measurement().to_owned(), Day::of(p.timestamp_ns())))
                    });
                    b
                })
                .collect();
            let back_points: usize = back.iter().map(|b| b.points.len()).sum();
            back.append(&mut state.pending);
            state.pending = back;
            state.pending_points += back_points;
            // Everything unacknowledged in the WAL is pending again (an upper bound: some
            // rows of these batches are in files now).
            state.pending_bytes = self.wal.stats().pending_payload_bytes;
            state.pending_since = Some(Instant::now());
            drop(state);
            self.counters.flush_failures.fetch_add(1, Ordering::Relaxed);
            return Err(error);
        }
        drop(state);
        self.wal.ack(last_seq).map_err(StoreError::from_spool)?;
        self.counters.flushes.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(points = flushed, last_seq, "embedded store: flushed");
        Ok(flushed)
    }

    /// Writes one partition's rows of a flush as a new file.
    fn write_partition(
        &self,
        measurement: &str,
        day: Day,
        rows: &[(u64, &Point)],
    ) -> Result<FileEntry, StoreError> {
        let mut schema = MeasurementSchema::new();
        for (_, p) in rows {
            // Checked when accepted; the points of one partition cannot conflict.
            schema.add_point(p).map_err(|e| StoreError::Corrupt {
                path: self.wal.dir().to_path_buf(),
                reason: format!("pending points of {measurement:?} conflict: {e}"),
            })?;
        }
        let range = SeqRange {
            first: rows
                .iter()
                .map(|(s, _)| *s)
                .min()
                .expect("a partition has rows"),
            last: rows
                .iter()
                .map(|(s, _)| *s)
                .max()
                .expect("a partition has rows"),
        };
        let df = frame::points_frame(rows.iter().map(|(_, p)| *p), &schema.polars_schema(None))
            .map_err(StoreError::polars(format!(
                "embedded store: building the frame of {measurement:?} {day}"
            )))?;
        self.write_file(measurement, day, range, df, schema)
    }

    /// Sorts `df` (tags, then time) and writes it as the file of `range` in the
    /// partition: temporary name, sync, rename, sync the directory.
    fn write_file(
        &self,
        measurement: &str,
        day: Day,
        range: SeqRange,
        df: DataFrame,
        schema: MeasurementSchema,
    ) -> Result<FileEntry, StoreError> {
        let dir = layout::partition_dir(&self.data, measurement, day);
        create_dirs(&self.data, &dir)?;
        let name = layout::part_file_name(range);
        let path = dir.join(&name);
        let tmp = dir.join(layout::tmp_file_name(&name));
        let context = || format!("embedded store: writing {}", path.display());
        let mut by: Vec<String> = schema.tags().map(str::to_owned).collect();
        by.push(TIME.to_owned());
        let mut df = df
            .sort(
                &by,
                SortMultipleOptions::default()
                    .with_nulls_last(true)
                    .with_maintain_order(true),
            )
            .map_err(StoreError::polars(context()))?;
        let tags: Vec<&str> = schema.tags().collect();
        let metadata = KeyValueMetadata::from_static(vec![
            (
                layout::META_LAYOUT.to_owned(),
                layout::LAYOUT_VERSION.to_owned(),
            ),
            (
                layout::META_TAGS.to_owned(),
                serde_json::to_string(&tags).expect("strings serialise"),
            ),
        ]);
        let result = (|| {
            let mut file = File::create(&tmp).map_err(|e| StoreError::io("create", &tmp, e))?;
            ParquetWriter::new(&mut file)
                .with_compression(ParquetCompression::Zstd(None))
                .with_statistics(StatisticsOptions::default())
                .with_key_value_metadata(Some(metadata))
                .finish(&mut df)
                .map_err(StoreError::polars(context()))?;
            file.sync_all()
                .map_err(|e| StoreError::io("sync", &tmp, e))?;
            fs::rename(&tmp, &path).map_err(|e| StoreError::io("rename", &tmp, e))?;
            sync_dir(&dir)
        })();
        if let Err(e) = result {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        let bytes = fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        Ok(FileEntry {
            path,
            range,
            rows: df.height() as u64,
            bytes,
            schema,
        })
    }

    // ---------------------------------------------------------------- maintenance

    /// A maintenance pass, guarded: a panic (a bug) is reported as an error. Nothing
    /// is lost to it: compaction deletes inputs only after its output is in place, and
    /// the next open finishes an interrupted one.
    fn maintain(&self, now_ns: i64) -> Result<MaintenanceReport, StoreError> {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.maintain_inner(now_ns)))
            .unwrap_or_else(|panic| {
                let message = panic_message(&*panic);
                tracing::error!(panic = %message, "embedded store: a maintenance pass panicked");
                Err(StoreError::Internal(format!(
                    "maintenance panicked: {message}"
                )))
            })
    }

    fn maintain_inner(&self, now_ns: i64) -> Result<MaintenanceReport, StoreError> {
        let _maintenance = self.lock_maintenance();
        let mut report = MaintenanceReport::default();
        if let Some(days) = self.config.retention_days {
            let cutoff = Day(Day::of(now_ns).0 - i64::from(days));
            report.expired = self.expire_before(cutoff)?;
        }
        let closed_before = Day::of(
            now_ns
                .saturating_sub(self.config.compact_after.as_nanos().min(i64::MAX as u128) as i64),
        );
        let candidates: Vec<(String, Day)> = {
            let state = self.lock_state();
            state
                .files
                .iter()
                .flat_map(|(m, days)| {
                    days.iter()
                        .filter(|(day, files)| {
                            files.len() > 1
                                && (**day < closed_before
                                    || files.len() > self.config.compact_max_files)
                        })
                        .map(move |(day, _)| (m.clone(), *day))
                })
                .collect()
        };
        for (m, day) in candidates {
            report.files_merged += self.compact_partition(&m, day)?;
            report.compacted += 1;
        }
        Ok(report)
    }

    /// Deletes every day partition before `cutoff`.
    fn expire_before(&self, cutoff: Day) -> Result<u64, StoreError> {
        let expired: Vec<(String, Day)> = {
            let mut state = self.lock_state();
            let mut out = Vec::new();
            for (m, days) in state.files.iter_mut() {
                let keep = days.split_off(&cutoff);
                for day in std::mem::replace(days, keep).into_keys() {
                    out.push((m.clone(), day));
                }
            }
            state.files.retain(|_, days| !days.is_empty());
            out
        };
        for (m, day) in &expired {
            let dir = layout::partition_dir(&self.data, m, *day);
            match fs::remove_dir_all(&dir) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(StoreError::io("remove expired partition", dir, e)),
            }
            tracing::info!(measurement = %m, %day, "embedded store: day partition expired");
        }
        if !expired.is_empty() {
            sync_dir(&self.data)?;
        }
        self.counters
            .expired
            .fetch_add(expired.len() as u64, Ordering::Relaxed);
        Ok(expired.len() as u64)
    }

    /// Merges the files of a partition into one; returns how many there were.
    fn compact_partition(&self, measurement: &str, day: Day) -> Result<u64, StoreError> {
        let inputs: Vec<FileEntry> = {
            let state = self.lock_state();
            state
                .files
                .get(measurement)
                .and_then(|days| days.get(&day))
                .cloned()
                .unwrap_or_default()
        };
        if inputs.len() < 2 {
            return Ok(0);
        }
        let mut schema = MeasurementSchema::new();
        let mut range = inputs[0].range;
        let mut handles = Vec::with_capacity(inputs.len());
        for f in &inputs {
            schema.merge(&f.schema).map_err(|e| StoreError::Corrupt {
                path: f.path.clone(),
                reason: format!("its columns conflict with the other files of its partition: {e}"),
            })?;
            range = range.span(f.range);
            handles.push(File::open(&f.path).map_err(|e| StoreError::io("open", &f.path, e))?);
        }
        let context = format!("embedded store: compacting {measurement:?} {day}");
        let df = scan_files(handles, &schema.polars_schema(None))
            .map_err(StoreError::polars(context.clone()))?
            .collect()
            .map_err(StoreError::polars(context))?;
        let rows_in: u64 = inputs.iter().map(|f| f.rows).sum();
        if df.height() as u64 != rows_in {
            return Err(StoreError::Corrupt {
                path: layout::partition_dir(&self.data, measurement, day),
                reason: format!(
                    "compaction read {} rows, the files' metadata says {rows_in}",
                    df.height()
                ),
            });
        }
        let merged = self.write_file(measurement, day, range, df, schema)?;
        {
            let mut state = self.lock_state();
            if let Some(files) = state
                .files
                .get_mut(measurement)
                .and_then(|days| days.get_mut(&day))
            {
                files.retain(|f| !f.range.strictly_inside(range) && f.range != range);
                files.push(merged);
                files.sort_by_key(|f| f.range);
            }
        }
        for f in &inputs {
            if let Err(e) = fs::remove_file(&f.path) {
                // The next open removes it (recovery rule 2); reads no longer see it.
                tracing::warn!(file = %f.path.display(), error = %e, "embedded store: cannot remove a compacted file");
            }
        }
        sync_dir(&layout::partition_dir(&self.data, measurement, day))?;
        self.counters.compactions.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(measurement, %day, files = inputs.len(), rows = rows_in, "embedded store: compacted");
        Ok(inputs.len() as u64)
    }

    fn background_loop(&self) {
        let mut backoff = Duration::ZERO;
        let mut failing = false;
        let mut last_maintenance: Option<Instant> = None;
        loop {
            {
                let mut state = self.lock_state();
                loop {
                    if state.stop {
                        return;
                    }
                    let due = match state.pending_since {
                        Some(since) => {
                            let wait = if failing {
                                backoff
                            } else {
                                self.config.flush_interval
                            };
                            if self.flush_due(&state) && !failing {
                                Duration::ZERO
                            } else {
                                wait.saturating_sub(since.elapsed())
                            }
                        }
                        None => self.config.flush_interval,
                    };
                    if due.is_zero() {
                        break;
                    }
                    let (next, timeout) = self
                        .wake
                        .wait_timeout(state, due)
                        .unwrap_or_else(PoisonError::into_inner);
                    state = next;
                    if timeout.timed_out() && state.pending_since.is_none() {
                        break; // a quiet interval: still run the maintenance
                    }
                }
            }
            match self.flush() {
                Ok(_) => {
                    if failing {
                        tracing::info!("embedded store: flushing works again");
                    }
                    failing = false;
                    backoff = Duration::ZERO;
                }
                Err(e) => {
                    let floor = Duration::from_millis(100).min(self.config.flush_interval);
                    let cap = self
                        .config
                        .flush_interval
                        .min(Duration::from_secs(30))
                        .max(floor);
                    backoff = (backoff * 2).clamp(floor, cap);
                    if !failing {
                        tracing::error!(error = %e, "embedded store: flush failed; points stay in the write-ahead log, retrying");
                    } else {
                        tracing::debug!(error = %e, "embedded store: flush failed again");
                    }
                    failing = true;
                    continue;
                }
            }
            if last_maintenance.is_none_or(|t| t.elapsed() >= self.config.flush_interval) {
                last_maintenance = Some(Instant::now());
                if let Err(e) = self.maintain(now_ns()) {
                    tracing::error!(error = %e, "embedded store: compaction or retention failed; retrying later");
                }
            }
        }
    }

    // ---------------------------------------------------------------- reading

    fn scan(&self, scan: &Scan) -> Result<LazyFrame, StoreError> {
        let Scan {
            measurement, time, ..
        } = scan;
        if time.start >= time.end {
            return Err(StoreError::InvalidScan(format!(
                "empty time range {}..{}",
                time.start, time.end
            )));
        }
        // Under the lock: the schema, the files (opened, so that a later compaction or
        // retention cannot take them away) and a copy of the rows in memory. A flush
        // moves rows from memory to a file under this lock, so each row is seen once.
        let (schema, handles, in_memory) = {
            let state = self.lock_state();
            let Some(schema) = state.schemas.get(measurement.as_str()).cloned() else {
                return Ok(DataFrame::empty_with_schema(&frame::time_only_schema()).lazy());
            };
            let mut handles = Vec::new();
            if let Some(days) = state.files.get(measurement.as_str()) {
                let first = Day::of(time.start);
                let last = Day::of(time.end - 1);
                for files in days.range(first..=last).map(|(_, f)| f) {
                    for f in files {
                        handles.push(
                            File::open(&f.path).map_err(|e| StoreError::io("open", &f.path, e))?,
                        );
                    }
                }
            }
            let wanted = |p: &Point| {
                p.measurement() == measurement.as_str() && time.contains(&p.timestamp_ns())
            };
            let in_memory: Vec<Point> = state
                .flushing
                .iter()
                .flat_map(|b| b.iter())
                .chain(state.pending.iter())
                .flat_map(|b| b.points.iter())
                .filter(|p| wanted(p))
                .cloned()
                .collect();
            (schema, handles, in_memory)
        };
        let full = schema.polars_schema(None);
        let context = || format!("embedded store: scanning {measurement:?}");
        let mut inputs = Vec::with_capacity(2);
        if !handles.is_empty() {
            inputs.push(scan_files(handles, &full).map_err(StoreError::polars(context()))?);
        }
        if !in_memory.is_empty() || inputs.is_empty() {
            let df =
                frame::points_frame(&in_memory, &full).map_err(StoreError::polars(context()))?;
            inputs.push(df.lazy());
        }
        let lf = if inputs.len() == 1 {
            inputs.pop().expect("one input")
        } else {
            concat(inputs, UnionArgs::default()).map_err(StoreError::polars(context()))?
        };
        let predicate = scan.predicate(&schema)?;
        let columns: Vec<Expr> = schema
            .polars_schema(scan.fields.as_deref())
            .iter_names()
            .map(|n| col(n.clone()))
            .collect();
        Ok(lf.filter(predicate).select(columns))
    }

    fn stats(&self) -> StoreStats {
        let mut stats = StoreStats::default();
        {
            let state = self.lock_state();
            for days in state.files.values() {
                for files in days.values() {
                    stats.partitions += 1;
                    for f in files {
                        stats.files += 1;
                        stats.rows_in_files += f.rows;
                        stats.file_bytes += f.bytes;
                    }
                }
            }
            stats.pending_points = state.pending_points as u64
                + state
                    .flushing
                    .as_ref()
                    .map_or(0, |b| b.iter().map(|b| b.points.len() as u64).sum());
        }
        stats.wal_bytes = self.wal.stats().bytes;
        let c = &self.counters;
        stats.points_accepted = c.accepted.load(Ordering::Relaxed);
        stats.points_refused = c.refused.load(Ordering::Relaxed);
        stats.points_replayed = c.replayed.load(Ordering::Relaxed);
        stats.flushes = c.flushes.load(Ordering::Relaxed);
        stats.flush_failures = c.flush_failures.load(Ordering::Relaxed);
        stats.compactions = c.compactions.load(Ordering::Relaxed);
        stats.partitions_expired = c.expired.load(Ordering::Relaxed);
        stats
    }
}

/// One Parquet scan over already opened files, with the union schema: columns a file
/// lacks come back as nulls.
fn scan_files(handles: Vec<File>, schema: &Schema) -> PolarsResult<LazyFrame> {
    let args = ScanArgsParquet {
        schema: Some(Arc::new(schema.clone())),
        allow_missing_columns: true,
        // The partition is in the directory names, not in `key=value` form, and the
        // `time` column says the day anyway.
        hive_options: HiveOptions::new_disabled(),
        ..ScanArgsParquet::default()
    };
    LazyFrame::scan_parquet_sources(ScanSources::Files(handles.into()), args)
}

/// Syncs a directory, so that a rename or a new entry in it survives a crash.
fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StoreError::io("sync directory", dir, e))
}

/// Creates `dir` (a partition) and its missing parents under `data`, syncing each
/// parent whose entries changed.
fn create_dirs(data: &Path, dir: &Path) -> Result<(), StoreError> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut missing = Vec::new();
    let mut at = dir;
    while !at.is_dir() && at != data {
        missing.push(at);
        match at.parent() {
            Some(parent) => at = parent,
            None => break,
        }
    }
    for d in missing.iter().rev() {
        match fs::create_dir(d) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && d.is_dir() => {}
            Err(e) => return Err(StoreError::io("create partition directory", *d, e)),
        }
        if let Some(parent) = d.parent() {
            sync_dir(parent)?;
        }
    }
    Ok(())
}

/// Lists the data directory into the index, applying recovery rules 1 and 2.
fn recover_files(data: &Path, state: &mut State) -> Result<(), StoreError> {
    for m_entry in read_dir(data)? {
        let m_path = m_entry.path();
        let m_name = m_entry.file_name().to_string_lossy().into_owned();
        let Some(measurement) =
            layout::parse_measurement_dir_name(&m_name).filter(|_| m_path.is_dir())
        else {
            tracing::warn!(path = %m_path.display(), "embedded store: not a measurement directory; ignored");
            continue;
        };
        for d_entry in read_dir(&m_path)? {
            let d_path = d_entry.path();
            let Some(day) =
                Day::parse(&d_entry.file_name().to_string_lossy()).filter(|_| d_path.is_dir())
            else {
                tracing::warn!(path = %d_path.display(), "embedded store: not a day partition; ignored");
                continue;
            };
            let mut parts: Vec<(SeqRange, PathBuf)> = Vec::new();
            let mut removed = false;
            for f_entry in read_dir(&d_path)? {
                let name = f_entry.file_name().to_string_lossy().into_owned();
                let path = f_entry.path();
                if layout::is_tmp_file_name(&name) {
                    tracing::warn!(file = %path.display(), "embedded store: removing an unfinished file");
                    fs::remove_file(&path).map_err(|e| StoreError::io("remove", &path, e))?;
                    removed = true;
                } else if let Some(range) = layout::parse_part_file_name(&name) {
                    parts.push((range, path));
                } else {
                    tracing::warn!(file = %path.display(), "embedded store: unknown file; ignored");
                }
            }
            let ranges: Vec<SeqRange> = parts.iter().map(|(r, _)| *r).collect();
            let mut files = Vec::new();
            for (range, path) in parts {
                if ranges.iter().any(|other| range.strictly_inside(*other)) {
                    tracing::warn!(file = %path.display(), "embedded store: removing the input of an interrupted compaction");
                    fs::remove_file(&path).map_err(|e| StoreError::io("remove", &path, e))?;
                    removed = true;
                    continue;
                }
                files.push(read_file_entry(path, range)?);
            }
            if removed {
                sync_dir(&d_path)?;
            }
            if files.is_empty() {
                continue;
            }
            files.sort_by_key(|f| f.range);
            let schema = state.schemas.entry(measurement.clone()).or_default();
            for f in &files {
                schema.merge(&f.schema).map_err(|e| StoreError::Corrupt {
                    path: f.path.clone(),
                    reason: format!(
                        "its columns conflict with other files of {measurement:?}: {e}"
                    ),
                })?;
            }
            state
                .files
                .entry(measurement.clone())
                .or_default()
                .insert(day, files);
        }
    }
    Ok(())
}

fn read_dir(dir: &Path) -> Result<Vec<fs::DirEntry>, StoreError> {
    let mut entries = fs::read_dir(dir)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| StoreError::io("list", dir, e))?;
    entries.sort_by_key(|e| e.file_name());
    Ok(entries)
}

/// Reads a Parquet file's footer: rows, columns (with the tag list from its metadata).
fn read_file_entry(path: PathBuf, range: SeqRange) -> Result<FileEntry, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt {
        path: path.clone(),
        reason,
    };
    let file = File::open(&path).map_err(|e| StoreError::io("open", &path, e))?;
    let bytes = file.metadata().map(|m| m.len()).unwrap_or(0);
    let mut reader = ParquetReader::new(file);
    let metadata = reader
        .get_metadata()
        .map_err(|e| corrupt(format!("unreadable Parquet footer: {e}")))?
        .clone();
    let arrow = reader
        .schema()
        .map_err(|e| corrupt(format!("unreadable Parquet schema: {e}")))?;
    let kv = |key: &str| {
        metadata
            .key_value_metadata
            .as_ref()
            .and_then(|kv| kv.iter().find(|e| e.key == key))
            .and_then(|e| e.value.clone())
    };
    if kv(layout::META_LAYOUT).as_deref() != Some(layout::LAYOUT_VERSION) {
        return Err(corrupt(format!(
            "layout version {:?}, this build reads {:?}",
            kv(layout::META_LAYOUT),
            layout::LAYOUT_VERSION
        )));
    }
    let tags: Vec<String> = kv(layout::META_TAGS)
        .and_then(|t| serde_json::from_str(&t).ok())
        .ok_or_else(|| corrupt("no readable tag list in its metadata".into()))?;
    let polars_schema = Schema::from_arrow_schema(&arrow);
    let string_fields: Vec<String> = polars_schema
        .iter()
        .filter(|(n, t)| **t == DataType::String && !tags.iter().any(|tag| tag == n.as_str()))
        .map(|(n, _)| n.to_string())
        .collect();
    let schema = MeasurementSchema::from_polars(&polars_schema, &string_fields).map_err(corrupt)?;
    Ok(FileEntry {
        path: path.clone(),
        range,
        rows: metadata.num_rows as u64,
        bytes,
        schema,
    })
}
