//! Shared harness of the spool tests: deterministic payloads, small configurations,
//! and helpers to look at a spool directory.

#![allow(dead_code)] // each test file uses a different part

use std::fs;
use std::path::{Path, PathBuf};

use tidewatch_storage::spool::{Record, Spool, SpoolConfig};

/// The payload of the batch with sequence number `seq`: its length and bytes depend on
/// `seq`, binary bytes included, so any mix-up or damage shows.
pub fn payload(seq: u64) -> Vec<u8> {
    let len = (seq.wrapping_mul(2_654_435_761) % 3_000) as usize;
    let mut out = format!("batch {seq} ").into_bytes();
    out.extend((0..len).map(|i| (seq as usize).wrapping_mul(31).wrapping_add(i * 7) as u8));
    out
}

/// A configuration with small segments, so that tests roll through several.
pub fn small_segments(segment_bytes: u64) -> SpoolConfig {
    SpoolConfig {
        segment_bytes,
        ..SpoolConfig::default()
    }
}

/// Every unacknowledged record, from the oldest, without moving the read cursor.
pub fn all_pending(spool: &Spool) -> Vec<Record> {
    spool
        .peek(usize::MAX, usize::MAX)
        .expect("read pending records")
}

/// The segment files in `dir`, sorted by name (= by sequence number).
pub fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .expect("list spool dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "spool"))
        .collect();
    files.sort();
    files
}

/// Asserts that `records` are exactly the batches `seqs`, in order, byte-identical.
pub fn assert_batches(records: &[Record], seqs: impl IntoIterator<Item = u64>) {
    let seqs: Vec<u64> = seqs.into_iter().collect();
    let got: Vec<u64> = records.iter().map(|r| r.seq).collect();
    assert_eq!(got, seqs, "sequence numbers");
    for record in records {
        assert!(
            record.payload == payload(record.seq),
            "payload of {} differs",
            record.seq
        );
    }
}
