//! The spool's contract: order, byte identity, acknowledgement, deletion, bounds,
//! concurrency. Recovery from damage is in `spool_recovery.rs`, SIGKILL in
//! `spool_crash.rs`.

mod common;

use std::sync::Arc;
use std::thread;
use std::time::Duration;

use common::{all_pending, assert_batches, payload, segment_files, small_segments};
use tidewatch_storage::spool::{Spool, SpoolConfig, SpoolError};

#[test]
fn batches_come_back_in_order_and_byte_identical_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let config = small_segments(16 << 10);
    {
        let spool = Spool::open(dir.path(), config.clone()).unwrap();
        for seq in 1..=20 {
            assert_eq!(spool.append(&payload(seq)).unwrap(), seq);
        }
        let group: Vec<Vec<u8>> = (21..=60).map(payload).collect();
        let refs: Vec<&[u8]> = group.iter().map(Vec::as_slice).collect();
        assert_eq!(spool.append_many(&refs).unwrap(), 21..61);
        assert_batches(&all_pending(&spool), 1..=60);
        let stats = spool.stats();
        assert_eq!(stats.records_appended, 60);
        assert_eq!(stats.records_pending, 60);
        assert_eq!(stats.next_seq, 61);
        assert!(stats.segments > 3, "small segments roll: {stats:?}");
    }
    let spool = Spool::open(dir.path(), config).unwrap();
    assert_batches(&all_pending(&spool), 1..=60);
    let stats = spool.stats();
    assert_eq!(stats.records_pending, 60);
    assert_eq!(stats.records_appended, 0, "counters are per process");
    assert_eq!(stats.torn_records_skipped, 0);
    assert_eq!(
        stats.pending_payload_bytes,
        (1..=60).map(|s| payload(s).len() as u64).sum::<u64>()
    );
    assert_eq!(
        stats.bytes,
        segment_files(dir.path())
            .iter()
            .map(|p| p.metadata().unwrap().len())
            .sum::<u64>()
    );
    // Appending after a reopen continues the numbering.
    assert_eq!(spool.append(&payload(61)).unwrap(), 61);
    assert_batches(&all_pending(&spool), 1..=61);
}

#[test]
fn next_unacked_moves_a_cursor_within_its_limits_and_rewind_goes_back() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path(), SpoolConfig::default()).unwrap();
    for seq in 1..=10 {
        spool.append(&payload(seq)).unwrap();
    }
    assert_batches(&spool.next_unacked(3, usize::MAX).unwrap(), 1..=3);
    assert_batches(&spool.next_unacked(3, usize::MAX).unwrap(), 4..=6);
    // A byte limit below one record still returns that record.
    assert_batches(&spool.next_unacked(100, 1).unwrap(), 7..=7);
    let two = payload(8).len() + payload(9).len();
    assert_batches(&spool.next_unacked(100, two).unwrap(), 8..=9);
    assert_batches(&spool.next_unacked(0, usize::MAX).unwrap(), []);
    // peek always starts at the oldest unacknowledged record.
    assert_batches(&spool.peek(2, usize::MAX).unwrap(), 1..=2);
    spool.ack(4).unwrap();
    assert_batches(&spool.next_unacked(100, usize::MAX).unwrap(), 10..=10);
    assert!(spool.next_unacked(100, usize::MAX).unwrap().is_empty());
    spool.rewind();
    assert_batches(&spool.next_unacked(100, usize::MAX).unwrap(), 5..=10);
    // An ack past the cursor moves the cursor too.
    spool.rewind();
    spool.ack(7).unwrap();
    assert_batches(&spool.next_unacked(100, usize::MAX).unwrap(), 8..=10);
}

#[test]
fn segments_are_deleted_only_when_all_their_records_are_acked_and_acks_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let config = small_segments(8 << 10);
    let spool = Spool::open(dir.path(), config.clone()).unwrap();
    for seq in 1..=30 {
        spool.append(&payload(seq)).unwrap();
    }
    let before = segment_files(dir.path());
    assert!(before.len() >= 4, "{before:?}");
    // Each segment's first record, from its name.
    let firsts: Vec<u64> = before
        .iter()
        .map(|p| {
            let name = p.file_stem().unwrap().to_str().unwrap();
            name.trim_start_matches("segment-").parse().unwrap()
        })
        .collect();
    assert_eq!(firsts[0], 1);

    // Acknowledge all but the last record of the second segment: only the first goes.
    let ack = firsts[2] - 2;
    spool.ack(ack).unwrap();
    assert_eq!(segment_files(dir.path()), before[1..].to_vec());
    assert_eq!(spool.stats().acked_seq, ack);
    assert_eq!(spool.stats().records_acked, ack);
    // One more record and the second segment is fully acknowledged.
    spool.ack(ack + 1).unwrap();
    assert_eq!(segment_files(dir.path()), before[2..].to_vec());
    // Acknowledging again, or less, changes nothing.
    spool.ack(3).unwrap();
    spool.ack(ack + 1).unwrap();
    assert_eq!(spool.stats().acked_seq, ack + 1);
    drop(spool);

    let spool = Spool::open(dir.path(), config.clone()).unwrap();
    assert_batches(&all_pending(&spool), ack + 2..=30);
    assert_eq!(spool.stats().acked_seq, ack + 1);
    assert_batches(
        &spool.next_unacked(1, usize::MAX).unwrap(),
        ack + 2..=ack + 2,
    );

    // Everything acknowledged: every segment goes (this process has not written, so no
    // segment is being written), and after a reopen the numbering still continues.
    spool.ack(30).unwrap();
    assert!(segment_files(dir.path()).is_empty());
    assert_eq!(spool.stats().bytes, 0);
    drop(spool);
    let spool = Spool::open(dir.path(), config).unwrap();
    assert!(all_pending(&spool).is_empty());
    assert_eq!(spool.append(&payload(31)).unwrap(), 31);
}

#[test]
fn the_segment_being_written_is_reused_until_space_is_needed() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path(), SpoolConfig::default()).unwrap();
    for seq in 1..=5 {
        spool.append(&payload(seq)).unwrap();
        spool.ack(seq).unwrap();
    }
    // Steady state (sender keeping up): one segment, not one per batch.
    assert_eq!(segment_files(dir.path()).len(), 1);
    assert_eq!(spool.stats().records_pending, 0);
}

#[test]
fn a_full_spool_refuses_appends_and_accepts_again_after_acks() {
    let dir = tempfile::tempdir().unwrap();
    let config = SpoolConfig {
        segment_bytes: 2 << 10,
        max_bytes: 10 << 10,
        skip_corrupt: false,
    };
    let spool = Spool::open(dir.path(), config).unwrap();
    let batch = vec![b'x'; 900];
    let mut accepted = 0;
    let full = loop {
        match spool.append(&batch) {
            Ok(seq) => accepted = seq,
            Err(e) => break e,
        }
        assert!(accepted < 100, "never became full");
    };
    match &full {
        SpoolError::Full {
            used,
            needed,
            max_bytes,
        } => {
            assert!(used + needed > *max_bytes);
            assert!(*used <= *max_bytes);
        }
        other => panic!("expected Full, got {other:?}"),
    }
    assert!(full.to_string().contains("spool is full"), "{full}");
    // A group that does not fit is refused whole.
    assert!(matches!(
        spool.append_many(&[&batch, &batch]),
        Err(SpoolError::Full { .. })
    ));
    let stats = spool.stats();
    assert_eq!(stats.full_rejections, 3);
    assert!(stats.bytes <= stats.max_bytes);
    assert_eq!(stats.records_pending, accepted);
    // Nothing accepted was dropped to make room.
    assert_eq!(all_pending(&spool).len() as u64, accepted);

    spool.ack(accepted).unwrap();
    let seq = spool.append(&batch).unwrap();
    assert_eq!(seq, accepted + 1, "refused batches take no sequence number");
}

#[test]
fn a_batch_that_can_never_fit_is_refused_as_too_large() {
    let dir = tempfile::tempdir().unwrap();
    let config = SpoolConfig {
        segment_bytes: 1 << 10,
        max_bytes: 4 << 10,
        skip_corrupt: false,
    };
    let spool = Spool::open(dir.path(), config).unwrap();
    let err = spool.append(&vec![0u8; 5 << 10]).unwrap_err();
    assert!(matches!(err, SpoolError::TooLarge { .. }), "{err:?}");
    // A batch larger than a segment but within max_bytes gets a segment of its own.
    spool.append(b"small").unwrap();
    let seq = spool.append(&vec![1u8; 3 << 10]).unwrap();
    assert_eq!(spool.peek(10, usize::MAX).unwrap()[1].seq, seq);
    assert_eq!(segment_files(dir.path()).len(), 2);
}

#[test]
fn a_second_open_of_the_same_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path(), SpoolConfig::default()).unwrap();
    let err = Spool::open(dir.path(), SpoolConfig::default()).unwrap_err();
    assert!(matches!(err, SpoolError::Locked { .. }), "{err:?}");
    drop(spool);
    Spool::open(dir.path(), SpoolConfig::default()).unwrap();
}

#[test]
fn acknowledging_a_sequence_never_appended_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path(), SpoolConfig::default()).unwrap();
    spool.append(b"one").unwrap();
    let err = spool.ack(2).unwrap_err();
    assert!(
        matches!(err, SpoolError::AckBeyondEnd { seq: 2, last: 1 }),
        "{err:?}"
    );
    assert_eq!(spool.stats().acked_seq, 0);
}

#[test]
fn io_errors_name_the_path_and_the_cause() {
    let dir = tempfile::tempdir().unwrap();
    let not_a_dir = dir.path().join("file");
    std::fs::write(&not_a_dir, b"").unwrap();
    let err = Spool::open(&not_a_dir, SpoolConfig::default()).unwrap_err();
    let text = err.to_string();
    assert!(text.contains(&*not_a_dir.to_string_lossy()), "{text}");
    assert!(text.contains("os error"), "{text}");
    assert!(err.io_kind().is_some());
}

#[test]
fn an_empty_group_appends_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path(), SpoolConfig::default()).unwrap();
    assert_eq!(spool.append_many(&[]).unwrap(), 1..1);
    assert!(segment_files(dir.path()).is_empty());
    assert!(!spool.wait_for_data(Duration::ZERO));
}

#[test]
fn a_reader_thread_receives_everything_a_writer_thread_appends_in_order() {
    const RECORDS: u64 = 500;
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path(), small_segments(32 << 10)).unwrap();

    let writer = {
        let spool = spool.clone();
        thread::spawn(move || {
            let mut seq = 1;
            while seq <= RECORDS {
                let group = ((seq % 4) + 1).min(RECORDS - seq + 1);
                let batches: Vec<Vec<u8>> = (seq..seq + group).map(payload).collect();
                let refs: Vec<&[u8]> = batches.iter().map(Vec::as_slice).collect();
                assert_eq!(spool.append_many(&refs).unwrap().start, seq);
                seq += group;
            }
        })
    };
    let received = Arc::new(std::sync::Mutex::new(Vec::new()));
    let reader = {
        let spool = spool.clone();
        let received = Arc::clone(&received);
        thread::spawn(move || loop {
            let mut got = received.lock().unwrap();
            if got.len() as u64 == RECORDS {
                break;
            }
            // Generous safety timeout: the test never depends on timing.
            assert!(spool.wait_for_data(Duration::from_secs(60)), "no data");
            let records = spool.next_unacked(7, 64 << 10).unwrap();
            if let Some(last) = records.last() {
                spool.ack(last.seq).unwrap();
            }
            got.extend(records);
        })
    };
    writer.join().unwrap();
    reader.join().unwrap();
    assert_batches(&received.lock().unwrap(), 1..=RECORDS);
    let stats = spool.stats();
    assert_eq!(stats.records_pending, 0);
    assert_eq!(stats.records_acked, RECORDS);
    assert!(
        stats.segments <= 1,
        "acknowledged segments are deleted: {stats:?}"
    );
}
