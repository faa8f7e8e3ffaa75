//! What the analytics benchmarks share (included by each with `#[path]`): the whole
//! simulated park written into an embedded store, and the bench process' resident
//! memory.

#![allow(dead_code)] // each bench uses its own part

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use tidewatch_devices::{ProfileSet, Site};
use tidewatch_model::Point;
use tidewatch_sim::bindings::bind_all;
use tidewatch_sim::fast::{capture_frame, frame_points, FastRun};
use tidewatch_sim::Plant;
use tidewatch_storage::embedded::{EmbeddedConfig, EmbeddedStore};
use tidewatch_storage::store::{Store, StoreConfig};
use tidewatch_storage::StoreError;

const HOUR_MS: i64 = 3_600_000;
const DAY_NS: i64 = 86_400_000_000_000;

/// A number from the environment (`TW_BENCH_*`), or `default`.
pub fn env_num(name: &str, default: f64) -> f64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The runtime the benches run the async store and analytics on: two workers, as the
/// machine has two cores.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// The embedded store in `dir`, through the `Store` interface.
pub async fn open_store(dir: &Path) -> Store {
    Store::open(StoreConfig::Embedded(EmbeddedConfig::in_dir(dir)))
        .await
        .expect("open the store")
}

/// What [`simulate_park`] wrote.
pub struct ParkWritten {
    /// Points written.
    pub points: u64,
    /// Points per measurement.
    pub by_measurement: BTreeMap<String, u64>,
    /// Partitions compacted afterwards.
    pub compacted: u64,
    /// Wall time of the generation, flush and compaction, s.
    pub secs: f64,
}

/// The simulator's fast mode for the built-in park, every Modbus device and MQTT
/// sensor (all measurements, as the collectors store them), from `start_ms` to
/// `end_ms` at `step_s`, into a new embedded store in `dir`: one `write` call per
/// simulated hour, then flushed and its closed days compacted (what the store does on
/// its own an hour after a day ends). Prints its progress.
pub fn simulate_park(dir: &Path, start_ms: i64, end_ms: i64, step_s: f64) -> ParkWritten {
    let profiles = ProfileSet::builtin().expect("profiles");
    let site = Site::builtin(&profiles).expect("site");
    let mut plant = Plant::new(&site, start_ms).expect("plant");
    let bindings = bind_all(&plant, &profiles).expect("bindings");
    let store = EmbeddedStore::open(EmbeddedConfig::in_dir(dir)).expect("store");
    let mut points: Vec<Point> = Vec::new();
    frame_points(
        &plant,
        &bindings,
        &capture_frame(&plant, &bindings),
        &mut points,
    );
    let mut by_measurement: BTreeMap<String, u64> = BTreeMap::new();
    let mut n_points = 0u64;
    let generation = Instant::now();
    let mut last_report = Instant::now();
    let mut at = start_ms;
    let days = (end_ms - start_ms) as f64 / (24 * HOUR_MS) as f64;
    println!("simulating {days:.1} days of the park at {step_s} s steps into an embedded store...");
    while at < end_ms {
        let to = (at + HOUR_MS).min(end_ms);
        FastRun::new(&mut plant, &bindings).run(step_s, to, |plant, frame| {
            frame_points(plant, &bindings, frame, &mut points);
        });
        at = to;
        for p in &points {
            *by_measurement
                .entry(p.measurement().to_owned())
                .or_default() += 1;
        }
        n_points += points.len() as u64;
        // The WAL fills faster than the background flush (every 5 minutes of wall
        // time) empties it when the machine is busy: flush and retry, as a writer
        // told `Full` does.
        let accepted = match store.write(&points) {
            Err(StoreError::Full(_)) => {
                store.flush().expect("flush");
                store.write(&points).expect("write after a flush")
            }
            other => other.expect("write"),
        };
        assert_eq!(accepted.points, points.len(), "{:?}", accepted.refused);
        points.clear();
        if last_report.elapsed() > Duration::from_secs(20) {
            last_report = Instant::now();
            println!(
                "  {:.0} % written ({n_points} points, {:.0} s)",
                100.0 * (at - start_ms) as f64 / (end_ms - start_ms) as f64,
                generation.elapsed().as_secs_f64()
            );
        }
    }
    store.flush().expect("flush");
    let maintained = store
        .maintain(end_ms * 1_000_000 + 10 * DAY_NS)
        .expect("compaction");
    store.shutdown().expect("shutdown");
    drop(store);
    let secs = generation.elapsed().as_secs_f64();
    println!(
        "{n_points} points written, flushed and compacted ({} partitions) in {secs:.0} s",
        maintained.compacted
    );
    ParkWritten {
        points: n_points,
        by_measurement,
        compacted: maintained.compacted,
        secs,
    }
}

/// Resets the process' resident-memory high-water mark (VmHWM; writing 5 to
/// clear_refs does) and returns the resident memory now, MiB. None where the kernel
/// does not allow it.
pub fn reset_peak_rss() -> Option<f64> {
    std::fs::write("/proc/self/clear_refs", "5").ok()?;
    proc_status_mib("VmRSS:")
}

/// VmHWM of this process since the last reset, MiB.
pub fn peak_rss_mib() -> Option<f64> {
    proc_status_mib("VmHWM:")
}

/// A `kB` line of /proc/self/status, in MiB.
fn proc_status_mib(key: &str) -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}
