//! The spool's on-disk layout: the one module that knows file names and byte formats.
//!
//! A spool directory holds:
//!
//! | file | content |
//! |---|---|
//! | `segment-<first seq, 20 digits>.spool` | a segment header, then records back to back |
//! | `acked` | the highest acknowledged sequence number (written atomically) |
//! | `acked.tmp` | an `acked` being written; a leftover one is removed on open |
//! | `lock` | empty; an exclusive `flock` on it keeps a second process out |
//!
//! Every integer is little-endian. The sequence number in a segment's name is the
//! sequence number of its first record, zero-padded to 20 digits so that the names sort
//! in sequence order and the order survives restarts without an extra index file.
//!
//! Segment header, 16 bytes, written and synced when the segment is created:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 6 | magic `TWSPOL` |
//! | 6 | 1 | format version, [`VERSION`] |
//! | 7 | 1 | reserved, 0 |
//! | 8 | 8 | first sequence number (u64), equal to the one in the file name |
//!
//! Record, a 20-byte header then the payload:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | magic `9E 54 57 52` (`\x9eTWR`) |
//! | 4 | 4 | payload length (u32) |
//! | 8 | 8 | sequence number (u64), strictly increasing through the spool |
//! | 16 | 4 | CRC-32 (IEEE, as `crc32fast`) of bytes 4..16 of the header, then the payload |
//! | 20 | length | payload: one batch, opaque bytes |
//!
//! The CRC covers the length and the sequence number as well as the payload, so a
//! damaged header is caught like a damaged payload. Sequence numbers start at 1 and are
//! never reused, but may have gaps (a batch whose write failed keeps its number).
//!
//! Ack file, 20 bytes: magic `TWACK` (5), version (1), reserved 0 (2), the acknowledged
//! sequence number (u64), CRC-32 of the first 16 bytes (u32). It is written to
//! `acked.tmp`, synced, renamed over `acked`, and the directory is synced.

use super::error::Damage;

/// Version of the segment, record and ack formats; bumped on any incompatible change.
pub const VERSION: u8 = 1;

pub(crate) const SEGMENT_MAGIC: [u8; 6] = *b"TWSPOL";
pub(crate) const SEGMENT_HEADER_LEN: u64 = 16;
pub(crate) const RECORD_MAGIC: [u8; 4] = [0x9e, b'T', b'W', b'R'];
pub(crate) const RECORD_HEADER_LEN: u64 = 20;
/// The largest payload one record can carry (its length field is a u32).
pub(crate) const MAX_PAYLOAD: u64 = u32::MAX as u64;

pub(crate) const ACK_FILE: &str = "acked";
pub(crate) const ACK_TMP_FILE: &str = "acked.tmp";
pub(crate) const LOCK_FILE: &str = "lock";
const ACK_MAGIC: [u8; 5] = *b"TWACK";
const ACK_LEN: usize = 20;

const SEGMENT_PREFIX: &str = "segment-";
const SEGMENT_SUFFIX: &str = ".spool";
const SEQ_DIGITS: usize = 20;

/// The file name of the segment whose first record has sequence number `first_seq`.
pub(crate) fn segment_file_name(first_seq: u64) -> String {
    format!("{SEGMENT_PREFIX}{first_seq:0SEQ_DIGITS$}{SEGMENT_SUFFIX}")
}

/// The first sequence number encoded in a segment file name; `None` for any other file.
pub(crate) fn parse_segment_file_name(name: &str) -> Option<u64> {
    let digits = name
        .strip_prefix(SEGMENT_PREFIX)?
        .strip_suffix(SEGMENT_SUFFIX)?;
    if digits.len() != SEQ_DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

pub(crate) fn encode_segment_header(first_seq: u64) -> [u8; SEGMENT_HEADER_LEN as usize] {
    let mut header = [0u8; SEGMENT_HEADER_LEN as usize];
    header[..6].copy_from_slice(&SEGMENT_MAGIC);
    header[6] = VERSION;
    header[8..16].copy_from_slice(&first_seq.to_le_bytes());
    header
}

/// Why a segment header could not be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SegmentHeaderError {
    Damaged(Damage),
    /// A well-formed header of a format this build does not know.
    UnsupportedVersion(u8),
}

/// The first sequence number stored in a segment header at the start of `buf`.
pub(crate) fn decode_segment_header(buf: &[u8]) -> Result<u64, SegmentHeaderError> {
    if buf.len() < SEGMENT_HEADER_LEN as usize {
        return Err(SegmentHeaderError::Damaged(Damage::ShortSegmentHeader));
    }
    if buf[..6] != SEGMENT_MAGIC {
        return Err(SegmentHeaderError::Damaged(Damage::BadSegmentMagic));
    }
    if buf[6] != VERSION {
        return Err(SegmentHeaderError::UnsupportedVersion(buf[6]));
    }
    Ok(u64_at(buf, 8))
}

/// Total bytes a record with a payload of `payload_len` bytes takes on disk.
pub(crate) fn record_len(payload_len: u64) -> u64 {
    RECORD_HEADER_LEN + payload_len
}

fn record_crc(len: u32, seq: u64, payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&len.to_le_bytes());
    hasher.update(&seq.to_le_bytes());
    hasher.update(payload);
    hasher.finalize()
}

/// Appends one record to `out`. The payload must be at most [`MAX_PAYLOAD`] bytes.
pub(crate) fn encode_record(seq: u64, payload: &[u8], out: &mut Vec<u8>) {
    let len = u32::try_from(payload.len()).expect("caller checks MAX_PAYLOAD");
    out.reserve(record_len(payload.len() as u64) as usize);
    out.extend_from_slice(&RECORD_MAGIC);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&record_crc(len, seq, payload).to_le_bytes());
    out.extend_from_slice(payload);
}

/// A record decoded and checked at the start of a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DecodedRecord<'a> {
    pub seq: u64,
    pub payload: &'a [u8],
}

impl DecodedRecord<'_> {
    /// Bytes the record takes on disk, header included.
    pub fn disk_len(&self) -> u64 {
        record_len(self.payload.len() as u64)
    }
}

/// Decodes the record at the start of `buf` and checks its magic, length and CRC.
pub(crate) fn decode_record(buf: &[u8]) -> Result<DecodedRecord<'_>, Damage> {
    if buf.len() < RECORD_HEADER_LEN as usize {
        return Err(Damage::ShortHeader {
            available: buf.len() as u64,
        });
    }
    if buf[..4] != RECORD_MAGIC {
        return Err(Damage::BadRecordMagic);
    }
    let len = u32::from_le_bytes(buf[4..8].try_into().expect("4 bytes"));
    let seq = u64_at(buf, 8);
    let stored = u32::from_le_bytes(buf[16..20].try_into().expect("4 bytes"));
    let body = &buf[RECORD_HEADER_LEN as usize..];
    if (body.len() as u64) < u64::from(len) {
        return Err(Damage::ShortPayload {
            len,
            available: body.len() as u64,
        });
    }
    let payload = &body[..len as usize];
    let computed = record_crc(len, seq, payload);
    if computed != stored {
        return Err(Damage::CrcMismatch { stored, computed });
    }
    Ok(DecodedRecord { seq, payload })
}

/// The offset, at or after `from`, of the first intact record in `buf` whose sequence
/// number is above `after_seq`: how recovery tells a torn tail (nothing intact follows)
/// from damage in the middle (intact records follow), and where it resumes after damage.
pub(crate) fn find_next_record(buf: &[u8], from: usize, after_seq: u64) -> Option<usize> {
    let last_start = buf.len().checked_sub(RECORD_HEADER_LEN as usize)?;
    (from..=last_start).find(|&at| {
        buf[at..at + 4] == RECORD_MAGIC
            && decode_record(&buf[at..]).is_ok_and(|record| record.seq > after_seq)
    })
}

pub(crate) fn encode_ack(seq: u64) -> [u8; ACK_LEN] {
    let mut out = [0u8; ACK_LEN];
    out[..5].copy_from_slice(&ACK_MAGIC);
    out[5] = VERSION;
    out[8..16].copy_from_slice(&seq.to_le_bytes());
    let crc = crc32fast::hash(&out[..16]);
    out[16..20].copy_from_slice(&crc.to_le_bytes());
    out
}

/// The acknowledged sequence number in an ack file's content; `None` if it is damaged
/// or of another version.
pub(crate) fn decode_ack(buf: &[u8]) -> Option<u64> {
    if buf.len() != ACK_LEN || buf[..5] != ACK_MAGIC || buf[5] != VERSION {
        return None;
    }
    let stored = u32::from_le_bytes(buf[16..20].try_into().expect("4 bytes"));
    (crc32fast::hash(&buf[..16]) == stored).then(|| u64_at(buf, 8))
}

fn u64_at(buf: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(buf[at..at + 8].try_into().expect("8 bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_names_sort_in_sequence_order_and_parse_back() {
        let names: Vec<String> = [1, 9, 10, 100_000, u64::MAX]
            .iter()
            .map(|&seq| segment_file_name(seq))
            .collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
        assert_eq!(names[0], "segment-00000000000000000001.spool");
        for (name, seq) in names.iter().zip([1, 9, 10, 100_000, u64::MAX]) {
            assert_eq!(parse_segment_file_name(name), Some(seq));
        }
        for other in [
            "segment-1.spool",
            "segment-0000000000000000000a.spool",
            "segment-00000000000000000001.spool.tmp",
            "acked",
            "lock",
            "segment-+0000000000000000001.spool",
        ] {
            assert_eq!(parse_segment_file_name(other), None, "{other}");
        }
    }

    #[test]
    fn segment_header_round_trips_and_rejects_other_versions() {
        let header = encode_segment_header(42);
        assert_eq!(decode_segment_header(&header), Ok(42));
        let mut future = header;
        future[6] = VERSION + 1;
        assert_eq!(
            decode_segment_header(&future),
            Err(SegmentHeaderError::UnsupportedVersion(VERSION + 1))
        );
        assert_eq!(
            decode_segment_header(&header[..10]),
            Err(SegmentHeaderError::Damaged(Damage::ShortSegmentHeader))
        );
    }

    #[test]
    fn record_round_trips_and_every_flipped_bit_is_caught() {
        let mut buf = Vec::new();
        encode_record(7, b"cdu supply_temp_c=18.5", &mut buf);
        assert_eq!(buf.len() as u64, record_len(22));
        let record = decode_record(&buf).unwrap();
        assert_eq!(
            (record.seq, record.payload),
            (7, &b"cdu supply_temp_c=18.5"[..])
        );
        for byte in 0..buf.len() {
            for bit in 0..8 {
                let mut damaged = buf.clone();
                damaged[byte] ^= 1 << bit;
                assert!(decode_record(&damaged).is_err(), "byte {byte} bit {bit}");
            }
        }
    }

    #[test]
    fn finds_the_next_intact_record_after_damage() {
        let mut buf = Vec::new();
        encode_record(1, b"first", &mut buf);
        let second = buf.len();
        encode_record(2, b"second", &mut buf);
        buf[3] ^= 0xff;
        assert_eq!(find_next_record(&buf, 1, 1), Some(second));
        assert_eq!(find_next_record(&buf, 1, 2), None);
        assert_eq!(find_next_record(&buf[..5], 0, 0), None);
    }

    #[test]
    fn ack_round_trips_and_damage_is_detected() {
        let ack = encode_ack(123_456);
        assert_eq!(decode_ack(&ack), Some(123_456));
        let mut damaged = ack;
        damaged[9] ^= 1;
        assert_eq!(decode_ack(&damaged), None);
        assert_eq!(decode_ack(&ack[..19]), None);
    }
}
