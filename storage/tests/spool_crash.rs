//! SIGKILL in the middle of appending: every batch whose append had returned `Ok` is
//! there after a restart, byte-identical and in order.
//!
//! The writer is this same test executable, started again as a child process that runs
//! only the ignored test `crash_child_writer` (so there is no helper binary to build):
//! it appends numbered batches as fast as it can, single and grouped, and prints each
//! sequence number right after the append returned. The parent kills it with SIGKILL
//! once a few thousand were printed, reopens the spool and checks every printed number.
//! Three rounds on the same directory, each killed at another point, each child
//! continuing where recovery left off; between rounds the parent acknowledges part of
//! what it read, so acknowledgements are crash-tested too.

mod common;
mod crash;

use std::io::Write;
use std::path::Path;

use common::{all_pending, payload, small_segments};
use tidewatch_storage::spool::{Spool, SpoolConfig};

const CHILD_DIR_ENV: &str = "TIDEWATCH_SPOOL_CRASH_CHILD_DIR";

fn config() -> SpoolConfig {
    // Small segments, so that kills also land around segment rolls.
    small_segments(256 << 10)
}

/// The child: appends until killed. Does nothing in a normal test run.
#[test]
#[ignore = "the writer process of sigkill_loses_no_accepted_batch, started by it"]
fn crash_child_writer() {
    let Some(dir) = std::env::var_os(CHILD_DIR_ENV) else {
        return;
    };
    let spool = Spool::open(&dir, config()).expect("child: open spool");
    let mut next = spool.stats().next_seq;
    let mut out = std::io::stdout().lock();
    loop {
        // Groups of 1 to 6 batches: plain appends and group commits.
        let group = 1 + next % 6;
        let accepted = if group == 1 {
            let seq = spool.append(&payload(next)).expect("child: append");
            seq..seq + 1
        } else {
            let batches: Vec<Vec<u8>> = (next..next + group).map(payload).collect();
            let refs: Vec<&[u8]> = batches.iter().map(Vec::as_slice).collect();
            spool.append_many(&refs).expect("child: append_many")
        };
        assert_eq!(accepted.start, next, "child: numbering");
        for seq in accepted {
            writeln!(out, "accepted {seq}").expect("child: stdout");
        }
        out.flush().expect("child: stdout");
        next += group;
    }
}

/// Runs the child on `dir` until it printed at least `kill_after` sequence numbers,
/// kills it with SIGKILL, and returns every number it printed.
fn run_child_and_kill(dir: &Path, kill_after: usize) -> Vec<u64> {
    crash::run_child_and_kill(&[(CHILD_DIR_ENV, dir.display().to_string())], kill_after)
        .iter()
        .map(|seq| seq.parse().expect("a sequence number"))
        .collect()
}

#[test]
fn sigkill_loses_no_accepted_batch() {
    let dir = tempfile::tempdir().unwrap();
    let mut acked = 0;
    for (round, kill_after) in [2_500, 4_000, 3_200].into_iter().enumerate() {
        let accepted = run_child_and_kill(dir.path(), kill_after);
        let spool = Spool::open(dir.path(), config()).expect("reopen after SIGKILL");
        let stats = spool.stats();
        assert!(
            stats.torn_records_skipped <= 1,
            "round {round}: at most one torn record: {stats:?}"
        );
        assert_eq!(stats.corrupt_regions_skipped, 0);

        let records = all_pending(&spool);
        // In order and without gaps from the first unacknowledged batch, and every
        // record byte-identical, including any the child wrote but had not printed.
        let expected_first = acked + 1;
        for (i, record) in records.iter().enumerate() {
            assert_eq!(
                record.seq,
                expected_first + i as u64,
                "round {round}: order"
            );
            assert!(
                record.payload == payload(record.seq),
                "round {round}: payload of {} differs",
                record.seq
            );
        }
        let last = records.last().map_or(acked, |r| r.seq);
        // Every printed (accepted) batch is there.
        let printed_last = *accepted.last().expect("printed something");
        assert!(
            printed_last <= last,
            "round {round}: batch {printed_last} was accepted but is missing (last is {last})"
        );
        assert!(accepted.first().is_some_and(|&first| first > acked));
        println!(
            "round {round}: {} accepted, {} on disk unacknowledged, torn: {}",
            accepted.len(),
            records.len(),
            stats.torn_records_skipped
        );

        // Acknowledge about half of what is there before the next crash.
        acked += records.len() as u64 / 2;
        spool.ack(acked).expect("ack");
    }
}
