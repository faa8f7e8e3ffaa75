//! The zero-loss disk spool in front of every remote sink.
//!
//! Facility data that is lost cannot be collected again, so a sink never holds a batch
//! only in memory: it appends the batch (opaque bytes, typically encoded line protocol)
//! to the spool, and the batch counts as **accepted** only when [`Spool::append`] (or
//! [`Spool::append_many`]) has returned `Ok`, which happens after the record is written
//! to a CRC-checked segment file and synced (`fdatasync`). The sender task takes records
//! in order ([`Spool::next_unacked`]), sends them, and once the server confirmed them
//! calls [`Spool::ack`]; a segment file is deleted only when every record in it is
//! acknowledged.
//!
//! # Guarantees
//!
//! - **Nothing accepted is lost** to a crash, a kill or a power cut (given a disk that
//!   honours `fsync`): on [`Spool::open`] every unacknowledged record is replayed in
//!   sequence order, byte-identical.
//! - **At-least-once delivery.** [`Spool::ack`] returns after the acknowledgement is
//!   persisted (an `acked` file replaced atomically: write temporary, sync, rename, sync
//!   the directory). A record acknowledged before a crash is delivered again only if the
//!   crash came before its `ack` returned. A batch whose append returned an error may
//!   still be delivered (part of it may have reached the disk).
//! - **Bounded**: the segment files never exceed [`SpoolConfig::max_bytes`]; an append
//!   that would pass it returns [`SpoolError::Full`] and writes nothing. The spool never
//!   drops a batch to make room: the sink above applies backpressure.
//! - **Crash recovery**: a torn record at the end of the last segment (a crash during an
//!   append: short header, short payload, CRC mismatch at the tail, or a zero-filled
//!   page of an unsynced write with later pages of that write intact) is logged with
//!   `tracing::warn!` naming the file and offset, counted in
//!   [`SpoolStats::torn_records_skipped`], and truncated away; every record before it is
//!   kept. Damage elsewhere is corruption, not a crash: [`SpoolError::Corrupt`] names the
//!   file and offset, unless [`SpoolConfig::skip_corrupt`] is set. The rules are in
//!   the `recovery` module's source; the byte formats in [`layout`].
//! - Sequence numbers start at 1, increase strictly and are never reused, even across
//!   restarts; they may have gaps (a failed append keeps its numbers).
//!
//! # Concurrency
//!
//! [`Spool`] is a cheap handle (`Clone + Send + Sync`, an `Arc` inside): the collectors
//! append from one task while the sender reads and acknowledges from another. The API
//! is blocking (it does file I/O and `fsync`): async code calls it through
//! `tokio::task::spawn_blocking` or from a dedicated thread. The sender waits for new
//! records without spinning with [`Spool::wait_for_data`]. One process at a time owns a
//! spool directory (an exclusive `flock` on its `lock` file).
//!
//! Memory: the spool keeps a 32-byte index entry per unacknowledged record and no
//! payload; reading returns payloads from the files (mostly the page cache). Opening
//! reads every segment once, one at a time, to check every CRC: a full 1 GiB spool
//! takes as long to open as reading 1 GiB.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use tidewatch_storage::spool::{Spool, SpoolConfig};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let spool = Spool::open(dir.path(), SpoolConfig::default())?;
//!
//! // Collector side: once append returns Ok, the batch is on disk.
//! let seq = spool.append(b"cdu,cdu=cdu-01 supply_temp_c=18.5 1700000000000000000\n")?;
//! spool.append_many(&[b"pdu,pdu=pdu-01 power_w=4200 1700000000000000000\n".as_slice()])?;
//!
//! // Sender side (another thread, with its own clone of the handle).
//! let sender = spool.clone();
//! assert!(sender.wait_for_data(Duration::from_secs(1)));
//! let batch = sender.next_unacked(100, 4 << 20)?;
//! assert_eq!(batch.len(), 2);
//! assert_eq!(batch[0].seq, seq);
//! // ... post batch[..] to InfluxDB; once the server confirmed it:
//! sender.ack(batch[1].seq)?;
//! assert_eq!(sender.stats().records_pending, 0);
//!
//! // After a restart, unacknowledged records come back in order.
//! spool.append(b"rack,rack=r01 inlet_temp_c=24.1 1700000010000000000\n")?;
//! drop((spool, sender));
//! let spool = Spool::open(dir.path(), SpoolConfig::default())?;
//! assert_eq!(spool.next_unacked(100, 4 << 20)?[0].seq, seq + 2);
//! # Ok(())
//! # }
//! ```

mod config;
mod error;
mod fsutil;
pub mod layout;
mod recovery;

const _: () = assert!(
    std::mem::size_of::<Loc>() == 32,
    "documented index entry size"
);

use std::collections::VecDeque;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

pub use config::{default_max_bytes, default_segment_bytes, SpoolConfig};
pub use error::{Damage, SpoolError};

use layout::{record_len, MAX_PAYLOAD, RECORD_HEADER_LEN, SEGMENT_HEADER_LEN};
use recovery::{Loc, Segment};

/// One spooled batch, as the sender reads it back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Its sequence number: pass the last one of a delivered run to [`Spool::ack`].
    pub seq: u64,
    /// The batch, byte-identical to what was appended.
    pub payload: Vec<u8>,
}

/// Counters and levels for the sink above (backpressure) and for metrics.
///
/// Levels describe the spool now; counters count since this process opened it, except
/// that records recovered on open are part of `records_pending`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SpoolStats {
    /// Bytes of segment files on disk: what [`SpoolConfig::max_bytes`] bounds.
    pub bytes: u64,
    /// The configured bound.
    pub max_bytes: u64,
    /// Segment files on disk.
    pub segments: u64,
    /// Records appended (or recovered) and not yet acknowledged.
    pub records_pending: u64,
    /// Payload bytes of those records.
    pub pending_payload_bytes: u64,
    /// Records appended since open.
    pub records_appended: u64,
    /// Records acknowledged since open.
    pub records_acked: u64,
    /// Torn records cut from the end of the last segment on open (0 or 1).
    pub torn_records_skipped: u64,
    /// Damaged regions skipped on open with [`SpoolConfig::skip_corrupt`].
    pub corrupt_regions_skipped: u64,
    /// Batches refused with [`SpoolError::Full`] since open.
    pub full_rejections: u64,
    /// The highest acknowledged sequence number (0 if none).
    pub acked_seq: u64,
    /// The sequence number the next appended batch gets.
    pub next_seq: u64,
}

/// A handle on a spool directory; see the [module documentation](self).
#[derive(Clone)]
pub struct Spool {
    shared: Arc<Shared>,
}

struct Shared {
    dir: PathBuf,
    config: SpoolConfig,
    inner: Mutex<Inner>,
    /// Signalled when records are appended.
    data_ready: Condvar,
    /// Serialises writes of the ack file, outside `inner` so that appends do not wait
    /// for an acknowledgement's two syncs; holds the persisted value.
    ack_file: Mutex<u64>,
    /// Holds the directory's `flock` for as long as any handle lives.
    _lock: File,
}

struct Inner {
    dir: PathBuf,
    /// Segment files in sequence order; the writer, if any, appends to the last one.
    segments: VecDeque<Segment>,
    writer: Option<File>,
    /// Unacknowledged records in sequence order.
    index: VecDeque<Loc>,
    next_seq: u64,
    acked: u64,
    /// The last sequence number handed out by `next_unacked`.
    handed_out: u64,
    bytes: u64,
    pending_payload_bytes: u64,
    /// A read handle on the segment being read, by its first sequence number.
    reader: Option<(u64, File)>,
    /// Reused encoding buffer.
    scratch: Vec<u8>,
    records_appended: u64,
    records_acked: u64,
    torn_records: u64,
    corrupt_regions: u64,
    full_rejections: u64,
    /// Whether the last append was refused as full (to log the transitions only).
    full: bool,
}

/// Encoding buffers larger than this are not kept between appends.
const SCRATCH_KEEP: usize = 8 << 20;

impl Spool {
    /// Opens (creating it if needed) the spool in `dir`, recovering what a previous
    /// process left: torn tails are cut, and unacknowledged records are queued for
    /// reading in order. Fails if another process has the directory open.
    pub fn open(dir: impl AsRef<Path>, config: SpoolConfig) -> Result<Spool, SpoolError> {
        config.validate()?;
        let dir = dir.as_ref().to_path_buf();
        let existed = dir.is_dir();
        fs::create_dir_all(&dir).map_err(|e| SpoolError::io("create directory", &dir, e))?;
        if !existed {
            if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                fsutil::sync_dir(parent)?;
            }
        }
        let lock = fsutil::lock_dir(&dir)?;
        fsutil::remove_stale_ack_tmp(&dir)?;
        let acked = fsutil::read_ack(&dir)?;
        let recovered = recovery::recover(&dir, acked, config.skip_corrupt)?;

        let mut inner = Inner {
            dir: dir.clone(),
            bytes: recovered.segments.iter().map(|s| s.len).sum(),
            pending_payload_bytes: recovered.index.iter().map(|l| u64::from(l.len)).sum(),
            segments: recovered.segments,
            writer: None,
            index: recovered.index,
            next_seq: recovered.last_seq.max(acked) + 1,
            acked,
            handed_out: acked,
            reader: None,
            scratch: Vec::new(),
            records_appended: 0,
            records_acked: 0,
            torn_records: recovered.torn_records,
            corrupt_regions: recovered.corrupt_regions,
            full_rejections: 0,
            full: false,
        };
        inner.delete_acked_segments(false);
        tracing::info!(
            dir = %dir.display(),
            segments = inner.segments.len(),
            bytes = inner.bytes,
            pending_records = inner.index.len(),
            acked_seq = acked,
            next_seq = inner.next_seq,
            torn_records = inner.torn_records,
            corrupt_regions = inner.corrupt_regions,
            "spool: opened"
        );
        Ok(Spool {
            shared: Arc::new(Shared {
                dir,
                config,
                inner: Mutex::new(inner),
                data_ready: Condvar::new(),
                ack_file: Mutex::new(acked),
                _lock: lock,
            }),
        })
    }

    /// Appends one batch and syncs it; returns its sequence number. Once this returns
    /// `Ok`, the batch is accepted: it survives a crash and is delivered.
    pub fn append(&self, batch: &[u8]) -> Result<u64, SpoolError> {
        self.append_many(&[batch]).map(|seqs| seqs.start)
    }

    /// Appends several batches with one sync at the end (group commit, for
    /// throughput); returns their sequence numbers, consecutive, in the order given.
    ///
    /// All or nothing for admission: if the batches do not all fit under `max_bytes`,
    /// none is written and the error is [`SpoolError::Full`]. On an I/O error, none
    /// counts as accepted, though some may have reached the disk and be delivered.
    pub fn append_many(&self, batches: &[&[u8]]) -> Result<Range<u64>, SpoolError> {
        let result = self.inner().append(&self.shared.config, batches);
        if !batches.is_empty() {
            self.shared.data_ready.notify_all();
        }
        result
    }

    /// Reads up to `max_records` records after the last one this method handed out
    /// (or after the acknowledged ones, if further), in order, and moves past them.
    /// `max_bytes` bounds the payload bytes returned, except that one record is always
    /// returned if there is one, however large. Empty when there is nothing new.
    pub fn next_unacked(
        &self,
        max_records: usize,
        max_bytes: usize,
    ) -> Result<Vec<Record>, SpoolError> {
        let mut inner = self.inner();
        let after = inner.handed_out.max(inner.acked);
        let records = inner.read_after(after, max_records, max_bytes)?;
        if let Some(last) = records.last() {
            inner.handed_out = last.seq;
        }
        Ok(records)
    }

    /// Reads like [`next_unacked`](Self::next_unacked), but from the oldest
    /// unacknowledged record, and without moving anything.
    pub fn peek(&self, max_records: usize, max_bytes: usize) -> Result<Vec<Record>, SpoolError> {
        let mut inner = self.inner();
        let after = inner.acked;
        inner.read_after(after, max_records, max_bytes)
    }

    /// Reads like [`peek`](Self::peek), but from the first record after `after` (or
    /// after the acknowledged ones, if further), without moving anything: a sender
    /// reads the next batch while the one before it is still in flight.
    pub fn peek_after(
        &self,
        after: u64,
        max_records: usize,
        max_bytes: usize,
    ) -> Result<Vec<Record>, SpoolError> {
        let mut inner = self.inner();
        let after = after.max(inner.acked);
        inner.read_after(after, max_records, max_bytes)
    }

    /// Makes [`next_unacked`](Self::next_unacked) start again from the oldest
    /// unacknowledged record (after a failed delivery that the sender gave up on).
    pub fn rewind(&self) {
        let mut inner = self.inner();
        inner.handed_out = inner.acked;
    }

    /// Acknowledges every record up to and including `seq` (the server confirmed
    /// them): persists the acknowledgement, then deletes the segment files whose
    /// records are all acknowledged. Acknowledging an already acknowledged sequence
    /// number does nothing.
    pub fn ack(&self, seq: u64) -> Result<(), SpoolError> {
        {
            let inner = self.inner();
            if seq <= inner.acked {
                return Ok(());
            }
            let last = inner.next_seq - 1;
            if seq > last {
                return Err(SpoolError::AckBeyondEnd { seq, last });
            }
        }
        {
            let mut persisted = self
                .shared
                .ack_file
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if seq > *persisted {
                fsutil::write_ack(&self.shared.dir, seq)?;
                *persisted = seq;
            }
        }
        self.inner().apply_ack(seq);
        Ok(())
    }

    /// Blocks until there are records that [`next_unacked`](Self::next_unacked) has
    /// not handed out yet, or `timeout` passed; returns whether there are.
    pub fn wait_for_data(&self, timeout: Duration) -> bool {
        let inner = self.inner();
        let (inner, _) = self
            .shared
            .data_ready
            .wait_timeout_while(inner, timeout, |inner| !inner.has_unread())
            .unwrap_or_else(PoisonError::into_inner);
        inner.has_unread()
    }

    /// Levels and counters, for backpressure and metrics.
    pub fn stats(&self) -> SpoolStats {
        let inner = self.inner();
        SpoolStats {
            bytes: inner.bytes,
            max_bytes: self.shared.config.max_bytes,
            segments: inner.segments.len() as u64,
            records_pending: inner.index.len() as u64,
            pending_payload_bytes: inner.pending_payload_bytes,
            records_appended: inner.records_appended,
            records_acked: inner.records_acked,
            torn_records_skipped: inner.torn_records,
            corrupt_regions_skipped: inner.corrupt_regions,
            full_rejections: inner.full_rejections,
            acked_seq: inner.acked,
            next_seq: inner.next_seq,
        }
    }

    /// The spool directory.
    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    /// The settings it was opened with.
    pub fn config(&self) -> &SpoolConfig {
        &self.shared.config
    }

    fn inner(&self) -> MutexGuard<'_, Inner> {
        // No code path panics while holding the lock; if one ever did, the state is
        // still consistent between statements that matter, so carry on.
        self.shared
            .inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl fmt::Debug for Spool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Spool")
            .field("dir", &self.shared.dir)
            .field("stats", &self.stats())
            .finish()
    }
}

/// Whether a record of `record_len` bytes goes into a new segment, given the length of
/// the segment being written (`None` if there is none).
fn roll_needed(current: Option<u64>, record_len: u64, segment_bytes: u64) -> bool {
    match current {
        None => true,
        Some(len) => len > SEGMENT_HEADER_LEN && len + record_len > segment_bytes,
    }
}

impl Inner {
    fn append(
        &mut self,
        config: &SpoolConfig,
        batches: &[&[u8]],
    ) -> Result<Range<u64>, SpoolError> {
        let limit = (config.max_bytes - SEGMENT_HEADER_LEN - RECORD_HEADER_LEN).min(MAX_PAYLOAD);
        if let Some(batch) = batches.iter().find(|b| b.len() as u64 > limit) {
            return Err(SpoolError::TooLarge {
                len: batch.len() as u64,
                limit,
            });
        }
        if batches.is_empty() {
            return Ok(self.next_seq..self.next_seq);
        }
        let mut needed = self.bytes_needed(batches, config.segment_bytes);
        if self.bytes + needed > config.max_bytes && self.delete_acked_segments(true) {
            needed = self.bytes_needed(batches, config.segment_bytes);
        }
        if self.bytes + needed > config.max_bytes {
            self.full_rejections += batches.len() as u64;
            if !self.full {
                self.full = true;
                tracing::warn!(
                    dir = %self.dir.display(),
                    used = self.bytes,
                    max_bytes = config.max_bytes,
                    pending_records = self.index.len(),
                    "spool: full, refusing new batches until the sender catches up"
                );
            }
            return Err(SpoolError::Full {
                used: self.bytes,
                needed,
                max_bytes: config.max_bytes,
            });
        }

        let first = self.next_seq;
        // Numbers are taken for good now, even if the write fails: a record that
        // reached the disk before the failure must never share its number.
        self.next_seq += batches.len() as u64;
        let mut buf = std::mem::take(&mut self.scratch);
        let mut staged = Vec::with_capacity(batches.len());
        let result = self.write(config, first, batches, &mut buf, &mut staged);
        if buf.capacity() <= SCRATCH_KEEP {
            buf.clear();
            self.scratch = buf;
        }
        if result.is_ok() && self.full {
            self.full = false;
            tracing::info!(
                dir = %self.dir.display(),
                refused_since_open = self.full_rejections,
                "spool: accepting batches again"
            );
        }
        result.map(|()| first..self.next_seq)
    }

    fn write(
        &mut self,
        config: &SpoolConfig,
        first: u64,
        batches: &[&[u8]],
        buf: &mut Vec<u8>,
        staged: &mut Vec<Loc>,
    ) -> Result<(), SpoolError> {
        buf.clear();
        for (seq, batch) in (first..).zip(batches) {
            let len = record_len(batch.len() as u64);
            let current = self.active_len().map(|l| l + buf.len() as u64);
            if roll_needed(current, len, config.segment_bytes) {
                self.commit(buf, staged)?;
                self.roll(seq)?;
            }
            let segment = self.segments.back().expect("a writer has a segment");
            staged.push(Loc {
                seq,
                segment: segment.first_seq,
                offset: segment.len + buf.len() as u64,
                len: batch.len() as u32,
            });
            layout::encode_record(seq, batch, buf);
        }
        self.commit(buf, staged)
    }

    /// Writes and syncs the staged records, then makes them readable.
    fn commit(&mut self, buf: &mut Vec<u8>, staged: &mut Vec<Loc>) -> Result<(), SpoolError> {
        if buf.is_empty() {
            return Ok(());
        }
        let segment = self.segments.back_mut().expect("a writer has a segment");
        let writer = self.writer.as_mut().expect("commit after roll");
        let start = segment.len;
        let result = match writer.write_all(buf) {
            Ok(()) => writer.sync_data().map_err(|e| ("sync", e)),
            Err(e) => Err(("write to", e)),
        };
        if let Err((op, source)) = result {
            // Cut the file back to what was accepted. A file whose sync failed is not
            // trusted with more data: the next append starts a new segment.
            let undone = writer
                .set_len(start)
                .and_then(|()| writer.seek(SeekFrom::Start(start)).map(drop));
            if op == "sync" || undone.is_err() {
                self.writer = None;
            }
            tracing::error!(
                path = %segment.path.display(),
                error = %source,
                "spool: append failed; the batches are not accepted"
            );
            buf.clear();
            staged.clear();
            return Err(SpoolError::io(op, &segment.path, source));
        }
        segment.len += buf.len() as u64;
        segment.last_seq = staged.last().map(|loc| loc.seq);
        self.bytes += buf.len() as u64;
        self.records_appended += staged.len() as u64;
        for loc in staged.drain(..) {
            self.pending_payload_bytes += u64::from(loc.len);
            self.index.push_back(loc);
        }
        buf.clear();
        Ok(())
    }

    /// Starts a new segment whose first record will be `first_seq`.
    fn roll(&mut self, first_seq: u64) -> Result<(), SpoolError> {
        self.writer = None;
        let path = self.dir.join(layout::segment_file_name(first_seq));
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| SpoolError::io("create segment", &path, e))?;
        let created = file
            .write_all(&layout::encode_segment_header(first_seq))
            .and_then(|()| file.sync_all())
            .map_err(|e| SpoolError::io("write segment header to", &path, e))
            .and_then(|()| fsutil::sync_dir(&self.dir));
        if let Err(e) = created {
            drop(file);
            if let Err(remove) = fs::remove_file(&path) {
                tracing::warn!(path = %path.display(), error = %remove, "spool: cannot remove a segment it failed to create");
            }
            return Err(e);
        }
        self.segments.push_back(Segment {
            first_seq,
            path,
            len: SEGMENT_HEADER_LEN,
            last_seq: None,
        });
        self.bytes += SEGMENT_HEADER_LEN;
        self.writer = Some(file);
        Ok(())
    }

    /// Length of the segment being written, if any.
    fn active_len(&self) -> Option<u64> {
        self.writer
            .as_ref()
            .map(|_| self.segments.back().expect("a writer has a segment").len)
    }

    /// Bytes that appending `batches` would add, segment headers of rolls included.
    fn bytes_needed(&self, batches: &[&[u8]], segment_bytes: u64) -> u64 {
        let mut current = self.active_len();
        let mut total = 0;
        for batch in batches {
            let len = record_len(batch.len() as u64);
            if roll_needed(current, len, segment_bytes) {
                total += SEGMENT_HEADER_LEN;
                current = Some(SEGMENT_HEADER_LEN);
            }
            total += len;
            current = current.map(|c| c + len);
        }
        total
    }

    fn apply_ack(&mut self, seq: u64) {
        if seq <= self.acked {
            return;
        }
        self.acked = seq;
        self.handed_out = self.handed_out.max(seq);
        while let Some(front) = self.index.front() {
            if front.seq > seq {
                break;
            }
            self.pending_payload_bytes -= u64::from(front.len);
            self.records_acked += 1;
            self.index.pop_front();
        }
        self.delete_acked_segments(false);
    }

    /// Deletes segment files, oldest first, whose records are all acknowledged. The
    /// segment being written is kept (it is reused until it rolls) unless
    /// `include_active`, when space is needed. Returns whether any was deleted.
    fn delete_acked_segments(&mut self, include_active: bool) -> bool {
        let mut deleted = false;
        while let Some(front) = self.segments.front() {
            if front.last_seq.is_some_and(|last| last > self.acked) {
                break;
            }
            let active = self.writer.is_some() && self.segments.len() == 1;
            if active && !include_active {
                break;
            }
            match fs::remove_file(&front.path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => {
                    // Retried at the next acknowledgement; the bytes stay counted.
                    tracing::warn!(path = %front.path.display(), error = %e, "spool: cannot delete an acknowledged segment");
                    break;
                }
            }
            if active {
                self.writer = None;
            }
            if self
                .reader
                .as_ref()
                .is_some_and(|(id, _)| *id == front.first_seq)
            {
                self.reader = None;
            }
            self.bytes -= front.len;
            self.segments.pop_front();
            deleted = true;
        }
        deleted
    }

    fn has_unread(&self) -> bool {
        let after = self.handed_out.max(self.acked);
        self.index.back().is_some_and(|loc| loc.seq > after)
    }

    fn read_after(
        &mut self,
        after: u64,
        max_records: usize,
        max_bytes: usize,
    ) -> Result<Vec<Record>, SpoolError> {
        let start = self.index.partition_point(|loc| loc.seq <= after);
        let mut records = Vec::new();
        let mut total = 0usize;
        for i in start..self.index.len() {
            let loc = self.index[i];
            if records.len() >= max_records
                || (!records.is_empty() && total + loc.len as usize > max_bytes)
            {
                break;
            }
            let payload = self.read_record(loc)?;
            total += payload.len();
            records.push(Record {
                seq: loc.seq,
                payload,
            });
        }
        Ok(records)
    }

    /// Reads one record back from its segment and checks it again (the disk may have
    /// changed since it was written).
    fn read_record(&mut self, loc: Loc) -> Result<Vec<u8>, SpoolError> {
        let Ok(at) = self
            .segments
            .binary_search_by_key(&loc.segment, |s| s.first_seq)
        else {
            let path = self.dir.join(layout::segment_file_name(loc.segment));
            let gone = io::Error::new(io::ErrorKind::NotFound, "segment no longer tracked");
            return Err(SpoolError::io("read", path, gone));
        };
        let path = &self.segments[at].path;
        if self
            .reader
            .as_ref()
            .is_none_or(|(id, _)| *id != loc.segment)
        {
            let file = File::open(path).map_err(|e| SpoolError::io("open", path, e))?;
            self.reader = Some((loc.segment, file));
        }
        let (_, file) = self.reader.as_mut().expect("opened above");
        let mut buf = vec![0u8; record_len(u64::from(loc.len)) as usize];
        file.seek(SeekFrom::Start(loc.offset))
            .and_then(|_| file.read_exact(&mut buf))
            .map_err(|e| SpoolError::io("read", path, e))?;
        let damage = match layout::decode_record(&buf) {
            Ok(record) if record.seq == loc.seq => None,
            Ok(record) => Some(Damage::SequenceOutOfOrder {
                seq: record.seq,
                previous: loc.seq - 1,
            }),
            Err(damage) => Some(damage),
        };
        if let Some(damage) = damage {
            return Err(SpoolError::Corrupt {
                path: path.clone(),
                offset: loc.offset,
                damage,
            });
        }
        buf.drain(..RECORD_HEADER_LEN as usize);
        Ok(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handle_is_clone_send_sync() {
        fn assert_traits<T: Clone + Send + Sync + 'static>() {}
        assert_traits::<Spool>();
    }

    #[test]
    fn roll_rules() {
        // No segment yet: always start one.
        assert!(roll_needed(None, 10, 1000));
        // An empty segment takes any record, however large.
        assert!(!roll_needed(Some(SEGMENT_HEADER_LEN), 5000, 1000));
        // Otherwise roll when the record would pass the size.
        assert!(!roll_needed(Some(500), 500, 1000));
        assert!(roll_needed(Some(500), 501, 1000));
    }
}
