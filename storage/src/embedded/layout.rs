//! The embedded store's on-disk layout: the one module that knows its paths, file
//! names, the write-ahead record format and how Parquet files carry the
//! [frame conventions](crate::frame).
//!
//! # Directory
//!
//! ```text
//! <dir>/
//!   wal/                                       the write-ahead log: a spool (crate::spool::layout)
//!   data/
//!     <measurement, percent-encoded>/
//!       <YYYY-MM-DD>/                          a day partition: rows whose timestamp falls in that UTC day
//!         part-<first seq>-<last seq>.parquet  rows of the WAL records first..=last (20 digits each)
//!         .part-<first seq>-<last seq>.parquet.tmp    being written; removed on open
//! ```
//!
//! **Write-ahead log.** `wal/` is a [`Spool`](crate::spool::Spool): one record per
//! accepted write call, whose payload is the call's points in the
//! [WAL point format](#wal-point-format). A write counts as accepted once that record
//! is synced. Records are acknowledged (and their segments deleted) once every row
//! they hold is in a synced, renamed Parquet file.
//!
//! **Measurement directories.** The name is kept as is for the bytes `A-Z a-z 0-9 _ -`
//! and percent-encoded otherwise (`%` and two upper-case hex digits per UTF-8 byte), so
//! any measurement name maps to one safe directory name (no `/`, no `.` or `..`, no
//! case folding surprises) and back. An encoded name longer than
//! [`MAX_MEASUREMENT_DIR_LEN`] bytes is refused at write time.
//!
//! **Day partitions** are UTC days (`2026-01-31` holds `2026-01-31T00:00:00Z` up to,
//! not including, `2026-02-01T00:00:00Z`). UTC and not the site's local day: the store
//! is shared by sites in any time zone, a day boundary must not move with a
//! configuration change, and InfluxDB's shard groups are UTC-aligned too. A scan of a
//! local day (UTC+8) opens two partitions and the time predicate keeps the right rows.
//!
//! **Parquet files.** A file `part-A-B.parquet` holds rows of the WAL records with
//! sequence numbers A to B (A and B each hold at least one of its rows), and every row
//! of this partition that those records held, except rows already in another file of
//! the partition (after a crash during a flush, see below). The ranges of the files of
//! one partition never overlap. A flush writes one file per partition it touches;
//! compaction replaces several files of a partition by one whose range spans theirs.
//! Files are written to `.NAME.tmp`, synced, renamed to `NAME`, and the directory is
//! synced.
//!
//! Each file follows the frame conventions (a `time` column `Datetime(ns)` in UTC,
//! `String` tag columns, typed field columns), with only the columns its rows use,
//! sorted by the tag columns then `time` (similar values side by side: smaller files,
//! and row-group statistics that prune by series). Zstd compression, statistics on.
//! Two key-value metadata entries make a file self-describing:
//!
//! | key | value |
//! |---|---|
//! | `tidewatch.layout` | [`LAYOUT_VERSION`] |
//! | `tidewatch.tags` | the tag columns, a JSON array of strings (a `String` column not listed is a string field) |
//!
//! # Recovery rules (on open)
//!
//! 1. `.*.tmp` files are removed (a write that did not finish).
//! 2. A file whose range lies strictly inside another file's range in the same
//!    partition is removed: a compaction renamed its output into place and was stopped
//!    before it deleted its inputs.
//! 3. Every unacknowledged WAL record is replayed; a row is skipped if a file of its
//!    partition has a range that covers the record's sequence number (the flush that
//!    wrote it was stopped before the acknowledgement). So every accepted row ends up
//!    in Parquet exactly once.
//!
//! # WAL point format
//!
//! The payload of one WAL record, little-endian:
//!
//! | size | field |
//! |---|---|
//! | 4 | magic `TWPB` |
//! | 1 | format version, [`WAL_VERSION`] |
//! | 4 | number of points (u32) |
//! | ... | the points |
//!
//! A point: measurement (str), timestamp (i64, ns), tag count (u32), each tag as key
//! (str) and value (str), field count (u32), each field as key (str), type (u8: 0
//! float, 1 integer, 2 unsigned, 3 boolean, 4 string) and value (f64 bits, i64, u64, one
//! byte 0/1, or str). A str is its length in bytes (u32) then its UTF-8 bytes. The
//! spool's CRC covers the payload.

use std::fmt;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use tidewatch_model::{FieldValue, Point};

/// Version of this layout (file names, metadata), written into every Parquet file.
pub const LAYOUT_VERSION: &str = "1";
/// Version of the WAL point format.
pub const WAL_VERSION: u8 = 1;
/// The longest measurement directory name, percent-encoded.
pub const MAX_MEASUREMENT_DIR_LEN: usize = 200;

pub(crate) const WAL_DIR: &str = "wal";
pub(crate) const DATA_DIR: &str = "data";
pub(crate) const META_LAYOUT: &str = "tidewatch.layout";
pub(crate) const META_TAGS: &str = "tidewatch.tags";

const WAL_MAGIC: [u8; 4] = *b"TWPB";
const PART_PREFIX: &str = "part-";
const PART_SUFFIX: &str = ".parquet";
const TMP_SUFFIX: &str = ".tmp";
const SEQ_DIGITS: usize = 20;
const NS_PER_DAY: i64 = 86_400_000_000_000;

/// The WAL directory of a store in `dir`.
pub(crate) fn wal_dir(dir: &Path) -> PathBuf {
    dir.join(WAL_DIR)
}

/// The data directory of a store in `dir`.
pub(crate) fn data_dir(dir: &Path) -> PathBuf {
    dir.join(DATA_DIR)
}

/// A UTC day, as days since 1970-01-01.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Day(pub i64);

impl Day {
    /// The day holding timestamp `ns`.
    pub fn of(ns: i64) -> Day {
        Day(ns.div_euclid(NS_PER_DAY))
    }

    /// Its first nanosecond.
    pub fn start_ns(self) -> i64 {
        self.0.saturating_mul(NS_PER_DAY)
    }

    /// The first nanosecond of the next day.
    pub fn end_ns(self) -> i64 {
        (self.0 + 1).saturating_mul(NS_PER_DAY)
    }

    /// The partition directory name, `YYYY-MM-DD`.
    pub fn dir_name(self) -> String {
        self.to_string()
    }

    /// Parses a partition directory name.
    pub fn parse(name: &str) -> Option<Day> {
        if name.len() != 10 {
            return None;
        }
        let date = NaiveDate::parse_from_str(name, "%Y-%m-%d").ok()?;
        let epoch = NaiveDate::from_ymd_opt(1970, 1, 1)?;
        let day = Day((date - epoch).num_days());
        (day.dir_name() == name).then_some(day)
    }
}

impl fmt::Display for Day {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid date");
        match epoch.checked_add_signed(chrono::TimeDelta::days(self.0)) {
            Some(date) => write!(f, "{}", date.format("%Y-%m-%d")),
            None => write!(f, "day{}", self.0),
        }
    }
}

/// The directory name of a measurement (percent-encoded; see the module docs).
pub fn measurement_dir_name(measurement: &str) -> String {
    let mut out = String::with_capacity(measurement.len());
    for b in measurement.bytes() {
        if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The measurement a directory name stands for; `None` if it is not one this module
/// wrote.
pub fn parse_measurement_dir_name(name: &str) -> Option<String> {
    let bytes = name.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let hex = name.get(i + 1..i + 3)?;
            if hex.bytes().any(|h| h.is_ascii_lowercase()) {
                return None;
            }
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' {
            out.push(b);
            i += 1;
        } else {
            return None;
        }
    }
    let measurement = String::from_utf8(out).ok()?;
    (!measurement.is_empty() && measurement_dir_name(&measurement) == name).then_some(measurement)
}

/// The directory of a partition.
pub(crate) fn partition_dir(data: &Path, measurement: &str, day: Day) -> PathBuf {
    data.join(measurement_dir_name(measurement))
        .join(day.dir_name())
}

/// The WAL sequence range of a Parquet file, as in its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SeqRange {
    /// The first WAL record with rows in the file.
    pub first: u64,
    /// The last one.
    pub last: u64,
}

impl SeqRange {
    /// Whether `seq` is in the range.
    pub fn covers(self, seq: u64) -> bool {
        self.first <= seq && seq <= self.last
    }

    /// Whether this range lies inside `other` and is not equal to it.
    pub fn strictly_inside(self, other: SeqRange) -> bool {
        other.first <= self.first && self.last <= other.last && self != other
    }

    /// The smallest range covering both.
    pub fn span(self, other: SeqRange) -> SeqRange {
        SeqRange {
            first: self.first.min(other.first),
            last: self.last.max(other.last),
        }
    }
}

/// The file name of a Parquet file with rows of WAL records `range`.
pub(crate) fn part_file_name(range: SeqRange) -> String {
    format!(
        "{PART_PREFIX}{:0SEQ_DIGITS$}-{:0SEQ_DIGITS$}{PART_SUFFIX}",
        range.first, range.last
    )
}

/// The temporary name a Parquet file is written under.
pub(crate) fn tmp_file_name(final_name: &str) -> String {
    format!(".{final_name}{TMP_SUFFIX}")
}

/// Whether a file name is a leftover temporary file.
pub(crate) fn is_tmp_file_name(name: &str) -> bool {
    name.starts_with('.') && name.ends_with(TMP_SUFFIX)
}

/// The range in a Parquet file name; `None` for any other name.
pub(crate) fn parse_part_file_name(name: &str) -> Option<SeqRange> {
    let digits = name.strip_prefix(PART_PREFIX)?.strip_suffix(PART_SUFFIX)?;
    let (first, last) = digits.split_once('-')?;
    let ok = |d: &str| d.len() == SEQ_DIGITS && d.bytes().all(|b| b.is_ascii_digit());
    if !ok(first) || !ok(last) {
        return None;
    }
    let range = SeqRange {
        first: first.parse().ok()?,
        last: last.parse().ok()?,
    };
    (range.first <= range.last).then_some(range)
}

/// Why a WAL payload could not be decoded (the spool's CRC matched, so this is a bug
/// or a newer format, never a torn write).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("WAL record: {0}")]
pub struct WalDecodeError(pub String);

/// Appends the WAL payload of `points` to `out`.
pub(crate) fn encode_wal(points: &[&Point], out: &mut Vec<u8>) {
    fn put_str(out: &mut Vec<u8>, s: &str) {
        out.extend_from_slice(&(s.len() as u32).to_le_bytes());
        out.extend_from_slice(s.as_bytes());
    }
    out.extend_from_slice(&WAL_MAGIC);
    out.push(WAL_VERSION);
    out.extend_from_slice(&(points.len() as u32).to_le_bytes());
    for p in points {
        put_str(out, p.measurement());
        out.extend_from_slice(&p.timestamp_ns().to_le_bytes());
        out.extend_from_slice(&(p.tags().len() as u32).to_le_bytes());
        for (k, v) in p.tags() {
            put_str(out, k);
            put_str(out, v);
        }
        out.extend_from_slice(&(p.fields().len() as u32).to_le_bytes());
        for (k, v) in p.fields() {
            put_str(out, k);
            match v {
                FieldValue::Float(x) => {
                    out.push(0);
                    out.extend_from_slice(&x.to_bits().to_le_bytes());
                }
                FieldValue::Integer(x) => {
                    out.push(1);
                    out.extend_from_slice(&x.to_le_bytes());
                }
                FieldValue::Unsigned(x) => {
                    out.push(2);
                    out.extend_from_slice(&x.to_le_bytes());
                }
                FieldValue::Boolean(x) => {
                    out.push(3);
                    out.push(u8::from(*x));
                }
                FieldValue::String(x) => {
                    out.push(4);
                    put_str(out, x);
                }
            }
        }
    }
}

struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], WalDecodeError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or_else(|| WalDecodeError(format!("cut short at byte {}", self.at)))?;
        let out = &self.buf[self.at..end];
        self.at = end;
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, WalDecodeError> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32, WalDecodeError> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().expect("4")))
    }

    fn u64(&mut self) -> Result<u64, WalDecodeError> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().expect("8")))
    }

    fn str(&mut self) -> Result<&'a str, WalDecodeError> {
        let len = self.u32()? as usize;
        let at = self.at;
        std::str::from_utf8(self.take(len)?)
            .map_err(|_| WalDecodeError(format!("invalid UTF-8 at byte {at}")))
    }
}

/// Decodes a WAL payload back into points.
pub(crate) fn decode_wal(payload: &[u8]) -> Result<Vec<Point>, WalDecodeError> {
    let mut r = Reader {
        buf: payload,
        at: 0,
    };
    if r.take(4)? != WAL_MAGIC {
        return Err(WalDecodeError("bad magic".into()));
    }
    let version = r.u8()?;
    if version != WAL_VERSION {
        return Err(WalDecodeError(format!(
            "format version {version}; this build reads version {WAL_VERSION}"
        )));
    }
    let n = r.u32()? as usize;
    let mut points = Vec::with_capacity(n.min(payload.len() / 16));
    for _ in 0..n {
        let measurement = r.str()?;
        let ts = r.u64()? as i64;
        let mut p = Point::new(measurement, ts);
        for _ in 0..r.u32()? {
            let k = r.str()?;
            let v = r.str()?;
            p.add_tag(k, v);
        }
        for _ in 0..r.u32()? {
            let k = r.str()?;
            let v = match r.u8()? {
                0 => FieldValue::Float(f64::from_bits(r.u64()?)),
                1 => FieldValue::Integer(r.u64()? as i64),
                2 => FieldValue::Unsigned(r.u64()?),
                3 => FieldValue::Boolean(r.u8()? != 0),
                4 => FieldValue::String(r.str()?.to_owned()),
                t => return Err(WalDecodeError(format!("unknown field type {t}"))),
            };
            p.add_field(k, v);
        }
        points.push(p);
    }
    if r.at != payload.len() {
        return Err(WalDecodeError(format!(
            "{} bytes after the last point",
            payload.len() - r.at
        )));
    }
    Ok(points)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measurement_names_round_trip_through_safe_directory_names() {
        for m in [
            "cdu",
            "rack_inlet",
            "a b,c=d",
            "..",
            ".",
            "x/y\\z",
            "温度",
            "100%",
            "A-Z",
        ] {
            let dir = measurement_dir_name(m);
            assert!(dir
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'%'));
            assert_eq!(
                parse_measurement_dir_name(&dir).as_deref(),
                Some(m),
                "{dir}"
            );
        }
        assert_eq!(measurement_dir_name("a.b"), "a%2Eb");
        assert_eq!(
            parse_measurement_dir_name("a%2eb"),
            None,
            "one spelling only"
        );
        assert_eq!(parse_measurement_dir_name("a.b"), None);
        assert_eq!(parse_measurement_dir_name(""), None);
        assert_eq!(parse_measurement_dir_name("%FF"), None, "not UTF-8");
    }

    #[test]
    fn days_are_utc_and_parse_back() {
        assert_eq!(Day::of(0).dir_name(), "1970-01-01");
        assert_eq!(Day::of(-1).dir_name(), "1969-12-31");
        let ns = 1_767_225_600_000_000_000; // 2026-01-01T00:00:00Z
        assert_eq!(Day::of(ns).dir_name(), "2026-01-01");
        assert_eq!(Day::of(ns - 1).dir_name(), "2025-12-31");
        assert_eq!(Day::of(ns).start_ns(), ns);
        assert_eq!(Day::parse("2026-01-01"), Some(Day::of(ns)));
        assert_eq!(Day::parse("2026-1-01"), None);
        assert_eq!(Day::parse("2026-02-30"), None);
    }

    #[test]
    fn part_names_and_ranges() {
        let r = SeqRange { first: 3, last: 17 };
        let name = part_file_name(r);
        assert_eq!(
            name,
            "part-00000000000000000003-00000000000000000017.parquet"
        );
        assert_eq!(parse_part_file_name(&name), Some(r));
        assert!(is_tmp_file_name(&tmp_file_name(&name)));
        assert_eq!(parse_part_file_name(&tmp_file_name(&name)), None);
        assert!(SeqRange { first: 3, last: 5 }.strictly_inside(r));
        assert!(!r.strictly_inside(r));
        assert!(r.covers(3) && r.covers(17) && !r.covers(18));
    }

    #[test]
    fn wal_payload_round_trips_every_field_type() {
        let points = [
            Point::new("m e,a=s", -5)
                .tag("k ,=", "v \"\\")
                .tag("温", "度")
                .field("f", 1.5)
                .field("i", -7_i64)
                .field("u", u64::MAX)
                .field("b", true)
                .field("s", "line\nbreak \"q\" \\"),
            Point::new("m", i64::MAX).field("nan", f64::NAN),
        ];
        let refs: Vec<&Point> = points.iter().collect();
        let mut buf = Vec::new();
        encode_wal(&refs, &mut buf);
        let back = decode_wal(&buf).unwrap();
        assert_eq!(back[0], points[0]);
        assert!(matches!(back[1].field_value("nan"), Some(FieldValue::Float(x)) if x.is_nan()));
        assert!(decode_wal(&buf[..buf.len() - 1]).is_err());
        let mut longer = buf.clone();
        longer.push(0);
        assert!(decode_wal(&longer).is_err());
    }
}
