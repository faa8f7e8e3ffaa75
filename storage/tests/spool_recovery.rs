//! Opening a spool left damaged: torn tails after a crash are cut and counted with
//! every earlier record kept; corruption elsewhere is an error naming file and offset
//! (or is skipped and counted on request); no file content makes `open` panic.

mod common;

use std::ffi::OsString;
use std::fs;
use std::path::Path;
use std::sync::OnceLock;

use common::{all_pending, assert_batches, payload, segment_files, small_segments};
use proptest::prelude::*;
use tempfile::TempDir;
use tidewatch_storage::spool::{Damage, Spool, SpoolConfig, SpoolError};

/// A one-segment spool holding batches 1 to 4, as bytes, with each record's offset.
struct Template {
    name: OsString,
    bytes: Vec<u8>,
    offsets: Vec<usize>,
}

const RECORDS: u64 = 4;

fn template() -> &'static Template {
    static TEMPLATE: OnceLock<Template> = OnceLock::new();
    TEMPLATE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path(), SpoolConfig::default()).unwrap();
        let mut offsets = Vec::new();
        for seq in 1..=RECORDS {
            // Before the first append there is no segment yet: its header is 16 bytes.
            offsets.push(spool.stats().bytes.max(16) as usize);
            spool.append(&payload(seq)).unwrap();
        }
        drop(spool);
        let files = segment_files(dir.path());
        assert_eq!(files.len(), 1);
        Template {
            name: files[0].file_name().unwrap().to_owned(),
            bytes: fs::read(&files[0]).unwrap(),
            offsets,
        }
    })
}

/// A fresh spool directory whose only segment holds `bytes`.
fn spool_dir_with(bytes: &[u8]) -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join(&template().name), bytes).unwrap();
    dir
}

fn segment_len(dir: &Path) -> u64 {
    let files = segment_files(dir);
    files[files.len() - 1].metadata().unwrap().len()
}

fn assert_torn_last_record_recovered(dir: &Path) {
    let spool = Spool::open(dir, SpoolConfig::default()).unwrap();
    assert_batches(&all_pending(&spool), 1..RECORDS);
    assert_eq!(spool.stats().torn_records_skipped, 1);
    let last_start = template().offsets[RECORDS as usize - 1] as u64;
    assert_eq!(segment_len(dir), last_start, "torn bytes truncated away");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn a_cut_anywhere_inside_the_last_record_is_a_torn_tail(fraction in 0.0f64..1.0) {
        let t = template();
        let last_start = t.offsets[RECORDS as usize - 1];
        let cut = last_start + 1 + ((t.bytes.len() - last_start - 1) as f64 * fraction) as usize;
        prop_assume!(cut < t.bytes.len());
        let dir = spool_dir_with(&t.bytes[..cut]);
        assert_torn_last_record_recovered(dir.path());
    }

    #[test]
    fn a_flipped_byte_in_the_last_record_is_a_torn_tail(
        fraction in 0.0f64..1.0,
        mask in 1u8..=255,
    ) {
        let t = template();
        let last_start = t.offsets[RECORDS as usize - 1];
        let at = last_start + ((t.bytes.len() - last_start) as f64 * fraction) as usize;
        prop_assume!(at < t.bytes.len());
        let mut bytes = t.bytes.clone();
        bytes[at] ^= mask;
        let dir = spool_dir_with(&bytes);
        assert_torn_last_record_recovered(dir.path());
    }

    #[test]
    fn no_file_content_makes_open_panic(
        garbage in proptest::collection::vec(any::<u8>(), 0..600),
        keep_header in any::<bool>(),
        followed_by_valid_segment in any::<bool>(),
    ) {
        let t = template();
        let dir = tempfile::tempdir().unwrap();
        let mut bytes = if keep_header { t.bytes[..16].to_vec() } else { Vec::new() };
        bytes.extend_from_slice(&garbage);
        fs::write(dir.path().join(&t.name), &bytes).unwrap();
        if followed_by_valid_segment {
            let mut later = t.bytes.clone();
            // Rename it to sequence 1000 (header and records then disagree: also fine).
            later[8..16].copy_from_slice(&1000u64.to_le_bytes());
            fs::write(dir.path().join("segment-00000000000000001000.spool"), later).unwrap();
        }
        for skip_corrupt in [false, true] {
            let config = SpoolConfig { skip_corrupt, ..SpoolConfig::default() };
            if let Ok(spool) = Spool::open(dir.path(), config) {
                let _ = spool.peek(usize::MAX, usize::MAX);
                let _ = spool.append(b"after");
            }
        }
    }
}

#[test]
fn a_cut_exactly_between_records_loses_nothing_and_is_not_torn() {
    let t = template();
    let dir = spool_dir_with(&t.bytes[..t.offsets[RECORDS as usize - 1]]);
    let spool = Spool::open(dir.path(), SpoolConfig::default()).unwrap();
    assert_batches(&all_pending(&spool), 1..RECORDS);
    assert_eq!(spool.stats().torn_records_skipped, 0);
}

#[test]
fn appends_after_a_torn_tail_recovery_survive_the_next_reopen() {
    let t = template();
    let dir = spool_dir_with(&t.bytes[..t.bytes.len() - 3]);
    {
        let spool = Spool::open(dir.path(), SpoolConfig::default()).unwrap();
        assert_eq!(spool.stats().torn_records_skipped, 1);
        assert_eq!(spool.append(&payload(RECORDS)).unwrap(), RECORDS);
        assert_eq!(spool.append(&payload(RECORDS + 1)).unwrap(), RECORDS + 1);
    }
    let spool = Spool::open(dir.path(), SpoolConfig::default()).unwrap();
    assert_batches(&all_pending(&spool), 1..=RECORDS + 1);
    assert_eq!(spool.stats().torn_records_skipped, 0);
}

#[test]
fn corruption_in_the_middle_is_an_error_naming_file_and_offset() {
    let t = template();
    let second = t.offsets[1];
    let mut bytes = t.bytes.clone();
    bytes[second + 30] ^= 0x40; // inside the payload of record 2
    let dir = spool_dir_with(&bytes);
    let err = Spool::open(dir.path(), SpoolConfig::default()).unwrap_err();
    match &err {
        SpoolError::Corrupt {
            path,
            offset,
            damage,
        } => {
            assert_eq!(path, &dir.path().join(&t.name));
            assert_eq!(*offset, second as u64);
            assert!(matches!(damage, Damage::CrcMismatch { .. }), "{damage:?}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    let text = err.to_string();
    assert!(
        text.contains(&*dir.path().join(&t.name).to_string_lossy()),
        "{text}"
    );
    assert!(text.contains(&format!("offset {second}")), "{text}");
    // Nothing was changed on disk by the failed open.
    assert_eq!(fs::read(dir.path().join(&t.name)).unwrap(), bytes);

    // On request, the damaged record is skipped and counted; the rest is kept.
    let config = SpoolConfig {
        skip_corrupt: true,
        ..SpoolConfig::default()
    };
    let spool = Spool::open(dir.path(), config).unwrap();
    assert_batches(&all_pending(&spool), [1, 3, 4]);
    let stats = spool.stats();
    assert_eq!(stats.corrupt_regions_skipped, 1);
    assert_eq!(stats.torn_records_skipped, 0);
}

#[test]
fn a_damaged_length_field_in_the_middle_is_corruption_not_a_torn_tail() {
    let t = template();
    let mut bytes = t.bytes.clone();
    // Record 2 now claims to run past the end of the file.
    bytes[t.offsets[1] + 7] = 0x7f;
    let dir = spool_dir_with(&bytes);
    let err = Spool::open(dir.path(), SpoolConfig::default()).unwrap_err();
    assert!(
        matches!(err, SpoolError::Corrupt { offset, .. } if offset == t.offsets[1] as u64),
        "{err:?}"
    );
}

#[test]
fn damage_at_the_end_of_an_older_segment_is_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let config = small_segments(4 << 10);
    {
        let spool = Spool::open(dir.path(), config.clone()).unwrap();
        for seq in 1..=12 {
            spool.append(&payload(seq)).unwrap();
        }
    }
    let files = segment_files(dir.path());
    assert!(files.len() >= 2);
    let mut first = fs::read(&files[0]).unwrap();
    let end = first.len();
    first[end - 1] ^= 1;
    fs::write(&files[0], &first).unwrap();
    let err = Spool::open(dir.path(), config).unwrap_err();
    assert!(
        matches!(&err, SpoolError::Corrupt { path, .. } if path == &files[0]),
        "{err:?}"
    );
}

#[test]
fn a_zeroed_sector_in_the_last_segment_is_a_lost_page_of_an_unsynced_write() {
    // A crash during a group commit: a page in the middle of the write never reached
    // the disk (reads back as zeros) while later pages did. Nothing from the damaged
    // record on was ever accepted, so it is a torn tail even with intact records after.
    let dir = tempfile::tempdir().unwrap();
    let big = vec![0x5a; 3000];
    {
        let spool = Spool::open(dir.path(), SpoolConfig::default()).unwrap();
        spool.append(&payload(1)).unwrap();
        spool
            .append_many(&[big.as_slice(), b"intact but never synced"])
            .unwrap();
    }
    let path = &segment_files(dir.path())[0];
    let mut bytes = fs::read(path).unwrap();
    let second = 16 + 20 + payload(1).len();
    let sector = (second + 20).div_ceil(512) * 512;
    bytes[sector..sector + 512].fill(0);
    fs::write(path, &bytes).unwrap();
    let spool = Spool::open(dir.path(), SpoolConfig::default()).unwrap();
    assert_batches(&all_pending(&spool), [1]);
    assert_eq!(spool.stats().torn_records_skipped, 1);
    assert_eq!(segment_len(dir.path()), second as u64);
}

#[test]
fn a_segment_whose_creation_was_interrupted_is_removed() {
    let t = template();
    let dir = spool_dir_with(&t.bytes);
    let half_made = dir.path().join("segment-00000000000000000005.spool");
    fs::write(&half_made, &b"TWSPOL\x01"[..]).unwrap();
    let spool = Spool::open(dir.path(), SpoolConfig::default()).unwrap();
    assert!(!half_made.exists());
    assert_batches(&all_pending(&spool), 1..=RECORDS);
    assert_eq!(spool.stats().torn_records_skipped, 0);
    assert_eq!(spool.append(&payload(5)).unwrap(), 5);
    assert!(
        half_made.exists(),
        "the name is used again, properly this time"
    );
}

#[test]
fn a_segment_of_an_unknown_format_version_is_refused() {
    let t = template();
    let mut bytes = t.bytes.clone();
    bytes[6] = 99;
    let dir = spool_dir_with(&bytes);
    for skip_corrupt in [false, true] {
        let config = SpoolConfig {
            skip_corrupt,
            ..SpoolConfig::default()
        };
        let err = Spool::open(dir.path(), config).unwrap_err();
        assert!(
            matches!(err, SpoolError::UnsupportedVersion { version: 99, .. }),
            "{err:?}"
        );
    }
}

#[test]
fn a_damaged_ack_file_means_redelivery_never_loss() {
    let t = template();
    let dir = spool_dir_with(&t.bytes);
    {
        let spool = Spool::open(dir.path(), SpoolConfig::default()).unwrap();
        spool.ack(2).unwrap();
        assert_batches(&all_pending(&spool), 3..=RECORDS);
    }
    fs::write(dir.path().join("acked"), b"garbage").unwrap();
    fs::write(dir.path().join("acked.tmp"), b"half-written").unwrap();
    let spool = Spool::open(dir.path(), SpoolConfig::default()).unwrap();
    assert_batches(&all_pending(&spool), 1..=RECORDS);
    assert!(!dir.path().join("acked.tmp").exists());
}
