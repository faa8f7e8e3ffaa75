//! Opening a spool directory: scan every segment, check every record, cut a torn tail,
//! and build the in-memory index of unacknowledged records.
//!
//! How damage is judged. Appends are sequential and each one is synced before it
//! returns, so the bytes that were synced are always a prefix of the last segment, and
//! every segment before the last was complete and synced when the next one began. A
//! crash can therefore only damage the end of the last segment, and only bytes that
//! were never accepted. Damage at offset `p` of the last segment is taken for a torn
//! write, and the segment is truncated at `p`, when either
//!
//! - no intact record follows `p` (a short header, a short payload, or a CRC mismatch
//!   at the tail), or
//! - the damaged record has a zero-filled stretch (its header, or a whole 512-byte
//!   sector): the shape of a page that never reached the disk while later pages of the
//!   same unsynced write did. Intact records after it belong to that same unsynced
//!   write, so they were never accepted either (the same rule etcd's WAL applies).
//!
//! Anything else is corruption (a bad disk, not a crash): an error naming the file and
//! offset, or, with `skip_corrupt`, the damaged bytes are skipped up to the next intact
//! record and counted.

use std::collections::VecDeque;
use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};

use super::error::{Damage, SpoolError};
use super::layout::{self, SegmentHeaderError, RECORD_HEADER_LEN, SEGMENT_HEADER_LEN};

/// A segment file as the spool tracks it.
#[derive(Debug)]
pub(crate) struct Segment {
    /// The sequence number in its name (its first record's, if it has any).
    pub first_seq: u64,
    pub path: PathBuf,
    /// Bytes of the file that belong to the spool (its whole length after recovery).
    pub len: u64,
    /// The highest sequence number it holds, `None` while it holds no record.
    pub last_seq: Option<u64>,
}

/// Where one unacknowledged record lives.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Loc {
    pub seq: u64,
    /// `first_seq` of its segment.
    pub segment: u64,
    /// Offset of the record header in the segment file.
    pub offset: u64,
    /// Payload length.
    pub len: u32,
}

/// What recovery found.
#[derive(Debug, Default)]
pub(crate) struct Recovered {
    pub segments: VecDeque<Segment>,
    /// Records above the acknowledged sequence number, in order.
    pub index: VecDeque<Loc>,
    /// The highest sequence number found in any segment (0 if none).
    pub last_seq: u64,
    pub torn_records: u64,
    pub corrupt_regions: u64,
}

pub(crate) fn recover(dir: &Path, acked: u64, skip_corrupt: bool) -> Result<Recovered, SpoolError> {
    let mut files = Vec::new();
    let entries = fs::read_dir(dir).map_err(|e| SpoolError::io("list", dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| SpoolError::io("list", dir, e))?;
        let name = entry.file_name();
        if let Some(first_seq) = name.to_str().and_then(layout::parse_segment_file_name) {
            files.push((first_seq, entry.path()));
        }
    }
    files.sort_unstable_by_key(|&(first_seq, _)| first_seq);

    let mut out = Recovered::default();
    let count = files.len();
    for (i, (first_seq, path)) in files.into_iter().enumerate() {
        let scan = SegmentScan {
            path,
            name_seq: first_seq,
            is_last: i + 1 == count,
            acked,
            skip_corrupt,
        };
        scan.run(&mut out)?;
    }
    Ok(out)
}

struct SegmentScan {
    path: PathBuf,
    name_seq: u64,
    is_last: bool,
    acked: u64,
    skip_corrupt: bool,
}

impl SegmentScan {
    fn run(self, out: &mut Recovered) -> Result<(), SpoolError> {
        let buf = fs::read(&self.path).map_err(|e| SpoolError::io("read", &self.path, e))?;
        let mut prev = out.last_seq;

        let header = match layout::decode_segment_header(&buf) {
            Ok(seq) if seq == self.name_seq => Ok(()),
            Ok(seq) => Err(Damage::SegmentNameMismatch {
                header: seq,
                name: self.name_seq,
            }),
            Err(SegmentHeaderError::UnsupportedVersion(version)) => {
                return Err(SpoolError::UnsupportedVersion {
                    path: self.path,
                    version,
                    supported: layout::VERSION,
                });
            }
            Err(SegmentHeaderError::Damaged(damage)) => Err(damage),
        };
        let mut pos = match header {
            Ok(()) => SEGMENT_HEADER_LEN as usize,
            Err(damage) => {
                let next = layout::find_next_record(&buf, 0, prev);
                if self.is_last && next.is_none() {
                    // A crash while a new segment was being started: it holds nothing.
                    tracing::warn!(
                        path = %self.path.display(),
                        %damage,
                        "spool: last segment has no usable header and no record \
                         (crash while starting it); removing it"
                    );
                    return fs::remove_file(&self.path)
                        .map_err(|e| SpoolError::io("remove", &self.path, e));
                }
                self.skip_or_fail(out, &buf, 0, next, damage)?
            }
        };

        let mut segment = Segment {
            first_seq: self.name_seq,
            path: self.path.clone(),
            len: buf.len() as u64,
            last_seq: None,
        };
        while pos < buf.len() {
            let decoded = layout::decode_record(&buf[pos..]).and_then(|record| {
                if record.seq > prev && record.seq >= self.name_seq {
                    Ok(record)
                } else {
                    Err(Damage::SequenceOutOfOrder {
                        seq: record.seq,
                        previous: prev,
                    })
                }
            });
            match decoded {
                Ok(record) => {
                    if record.seq > self.acked {
                        out.index.push_back(Loc {
                            seq: record.seq,
                            segment: self.name_seq,
                            offset: pos as u64,
                            len: record.payload.len() as u32,
                        });
                    }
                    prev = record.seq;
                    segment.last_seq = Some(record.seq);
                    pos += record.disk_len() as usize;
                }
                Err(damage) => {
                    let next = layout::find_next_record(&buf, pos + 1, prev);
                    let damaged_end = next.unwrap_or(buf.len());
                    if self.is_last && (next.is_none() || zero_filled(&buf, pos, damaged_end)) {
                        self.truncate_torn_tail(&buf, pos, prev, damage)?;
                        segment.len = pos as u64;
                        out.torn_records += 1;
                        break;
                    }
                    pos = self.skip_or_fail(out, &buf, pos, next, damage)?;
                }
            }
        }
        out.last_seq = prev;
        out.segments.push_back(segment);
        Ok(())
    }

    /// Damage that is not a torn tail: an error, or with `skip_corrupt` the offset to
    /// resume at (the next intact record, or the end of the file).
    fn skip_or_fail(
        &self,
        out: &mut Recovered,
        buf: &[u8],
        at: usize,
        next: Option<usize>,
        damage: Damage,
    ) -> Result<usize, SpoolError> {
        if !self.skip_corrupt {
            return Err(SpoolError::Corrupt {
                path: self.path.clone(),
                offset: at as u64,
                damage,
            });
        }
        let resume = next.unwrap_or(buf.len());
        tracing::error!(
            path = %self.path.display(),
            offset = at,
            skipped_bytes = resume - at,
            %damage,
            "spool: segment is damaged (corruption, not a crash); skipping to the next intact record"
        );
        out.corrupt_regions += 1;
        Ok(resume)
    }

    fn truncate_torn_tail(
        &self,
        buf: &[u8],
        at: usize,
        last_good: u64,
        damage: Damage,
    ) -> Result<(), SpoolError> {
        let mut discarded = 0;
        let mut next = layout::find_next_record(buf, at + 1, last_good);
        while let Some(offset) = next {
            discarded += 1;
            let record = layout::decode_record(&buf[offset..]).expect("found intact");
            next = layout::find_next_record(buf, offset + record.disk_len() as usize, record.seq);
        }
        tracing::warn!(
            path = %self.path.display(),
            offset = at,
            %damage,
            cut_bytes = buf.len() - at,
            unsynced_records_after_it = discarded,
            "spool: torn record at the end of the last segment (crash during an append); \
             truncating it away, every record before it is kept"
        );
        let file = OpenOptions::new()
            .write(true)
            .open(&self.path)
            .map_err(|e| SpoolError::io("open for truncation", &self.path, e))?;
        file.set_len(at as u64)
            .and_then(|()| file.sync_all())
            .map_err(|e| SpoolError::io("truncate torn tail of", &self.path, e))
    }
}

/// Whether the damaged bytes `buf[at..end]` (up to the next intact record) have a
/// zero-filled stretch: the whole record header at `at`, or a complete 512-byte sector
/// (aligned in the file).
fn zero_filled(buf: &[u8], at: usize, end: usize) -> bool {
    const SECTOR: usize = 512;
    let header_end = (at + RECORD_HEADER_LEN as usize).min(end);
    if buf[at..header_end].iter().all(|&b| b == 0) {
        return true;
    }
    let mut sector = at.div_ceil(SECTOR) * SECTOR;
    while sector + SECTOR <= end {
        if buf[sector..sector + SECTOR].iter().all(|&b| b == 0) {
            return true;
        }
        sector += SECTOR;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_filled_sees_a_zeroed_header_or_sector_only() {
        let mut buf = Vec::new();
        layout::encode_record(1, &[7u8; 2000], &mut buf);
        let end = buf.len();
        assert!(!zero_filled(&buf, 0, end));
        let mut sector_lost = buf.clone();
        sector_lost[512..1024].fill(0);
        assert!(zero_filled(&sector_lost, 0, end));
        assert!(
            !zero_filled(&sector_lost, 0, 1000),
            "only up to the next intact record"
        );
        let mut partial = buf.clone();
        partial[600..1000].fill(0);
        assert!(!zero_filled(&partial, 0, end));
        let mut header_lost = buf.clone();
        header_lost[..20].fill(0);
        assert!(zero_filled(&header_lost, 0, end));
        assert!(zero_filled(&[0u8; 5], 0, 5));
    }
}
