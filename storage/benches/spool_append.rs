//! Spool append throughput with sync, against the disk's own ceiling.
//!
//! `[SPOOL_BENCH_DIR=/data/disk] cargo bench -p tidewatch-storage --bench spool_append [-- BATCHES]`
//!
//! Each batch is 5,000 points of real line protocol (about 100 bytes per point, as the
//! InfluxDB writer will spool them). Baseline, in the same run and the same directory:
//! `write_all` + `sync_data` of the same bytes to a plain file, one sync per batch,
//! which is what the disk allows. Then the spool, one `append` (one sync) per batch,
//! and `append_many` of 8 batches per sync (group commit), then the baseline again.

use std::fs::File;
use std::io::Write;
use std::time::Instant;

use tidewatch_model::{line_protocol, Point};
use tidewatch_storage::spool::{Spool, SpoolConfig};

const POINTS_PER_BATCH: usize = 5_000;

fn batch(n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..POINTS_PER_BATCH {
        let point = Point::new(
            "cdu",
            1_700_000_000_000_000_000 + (n * POINTS_PER_BATCH + i) as i64 * 1_000_000,
        )
        .tag("site", "qingdao-a")
        .tag("cdu", format!("cdu-{:02}", i % 24))
        .field("supply_temp_c", 18.0 + (i % 100) as f64 / 37.0)
        .field("pump_rpm", 2400_i64 + (i % 300) as i64);
        line_protocol::encode(&point, &mut out).expect("finite values");
    }
    out
}

fn report(name: &str, batches: usize, bytes: usize, started: Instant) {
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{name:<34} {:>8.1} records/s {:>11.0} points/s {:>7.1} MB/s",
        batches as f64 / secs,
        (batches * POINTS_PER_BATCH) as f64 / secs,
        bytes as f64 / secs / 1e6
    );
}

fn main() {
    let batches: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(200);
    let payloads: Vec<Vec<u8>> = (0..16).map(batch).collect();
    let avg = payloads.iter().map(Vec::len).sum::<usize>() / payloads.len();
    println!(
        "{batches} batches of {POINTS_PER_BATCH} points, {avg} bytes per batch ({} bytes per point)",
        avg / POINTS_PER_BATCH
    );
    let total: usize = (0..batches).map(|i| payloads[i % 16].len()).sum();
    // On the disk under test: SPOOL_BENCH_DIR, or the system's temporary directory.
    let parent = std::env::var_os("SPOOL_BENCH_DIR").map_or_else(std::env::temp_dir, Into::into);
    let dir = tempfile::tempdir_in(&parent).expect("temp dir");
    println!("directory: {}", dir.path().display());

    // Baseline: the same bytes, one write and one fdatasync per batch. Run before and
    // after the spool, since a virtual disk's speed drifts.
    let baseline = |name: &str, file_name: &str| {
        let mut file = File::create(dir.path().join(file_name)).expect("create");
        let started = Instant::now();
        for i in 0..batches {
            file.write_all(&payloads[i % 16]).expect("write");
            file.sync_data().expect("sync");
        }
        report(name, batches, total, started);
    };
    baseline("baseline write+fdatasync", "baseline-1");

    let config = SpoolConfig {
        max_bytes: 4 << 30,
        ..SpoolConfig::default()
    };
    let spool = Spool::open(dir.path().join("single"), config.clone()).expect("open");
    let started = Instant::now();
    for i in 0..batches {
        spool.append(&payloads[i % 16]).expect("append");
    }
    report("spool append (1 sync per batch)", batches, total, started);
    drop(spool);

    let spool = Spool::open(dir.path().join("group"), config).expect("open");
    let started = Instant::now();
    for group in (0..batches).collect::<Vec<_>>().chunks(8) {
        let refs: Vec<&[u8]> = group.iter().map(|&i| payloads[i % 16].as_slice()).collect();
        spool.append_many(&refs).expect("append");
    }
    report("spool append_many (8 per sync)", batches, total, started);
    baseline("baseline write+fdatasync, again", "baseline-2");
}
