//! One simulated month of the whole park: the embedded store's size on disk against
//! InfluxDB 1.x's data directory holding the same points, and reading the month back
//! into polars, against reading it from that InfluxDB with the InfluxQL reader.
//! Targets from issue 3: the embedded store's bytes per point no more than InfluxDB's;
//! read-back rows per second recorded.
//!
//! Run: `cargo bench -p tidewatch-storage --bench store_month`. Environment:
//! `TW_BENCH_DAYS` (default 31), `TW_BENCH_STEP_S` (simulated seconds between two
//! readings of every device and sensor, default 60: a minute, the interval energy
//! and cooling dashboards are read at). Needs `influxd` (Debian package `influxdb`).
//! Results are printed and written to BENCHMARKS.md ("Embedded store: one month of
//! the park").
//!
//! - The points are the simulator's fast mode for the built-in Qingdao park
//!   (`fixtures/site/qingdao.toml`: every Modbus device and MQTT sensor), generated an
//!   hour at a time and written to both stores as they come: into the embedded store
//!   with one `write` call per simulated hour (its defaults otherwise), into `influxd`
//!   as line protocol in requests of 5,000 points.
//! - Sizes are taken at rest: the embedded store after its last flush and the
//!   compaction of the closed days (what it does on its own an hour after a day ends);
//!   `influxd` after its cache snapshot and full compaction of cold shards (set to 1 s
//!   instead of 10 min and 4 h, so the bench need not wait), once its directory size
//!   stops changing. Both count everything under their data directories (the embedded
//!   store: Parquet files and write-ahead log; influxd: `data/` and `wal/`).
//! - Read-back: every measurement of the month, as one scan each, collected into
//!   polars frames; the embedded store three times (best and median reported), the
//!   InfluxQL reader (CSV, chunks of 6 h) once. Both must return every row written.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use tidewatch_devices::{ProfileSet, Site};
use tidewatch_model::{line_protocol, Point};
use tidewatch_sim::bindings::bind_all;
use tidewatch_sim::fast::{frame_points, FastRun};
use tidewatch_sim::Plant;
use tidewatch_storage::embedded::{EmbeddedConfig, EmbeddedStore};
use tidewatch_storage::influx::InfluxReader;
use tidewatch_storage::store::Scan;

#[path = "../../fixtures/benches/report.rs"]
mod report;
#[path = "../tests/servers/mod.rs"]
mod servers;

use servers::{Influxd, InfluxdOptions};

const SECTION: &str = "Embedded store: one month of the park";
const COMMAND: &str = "cargo bench -p tidewatch-storage --bench store_month";
/// 2026-01-01T00:00:00Z, ms.
const START_MS: i64 = 1_767_225_600_000;
const HOUR_MS: i64 = 3_600_000;
const BATCH: usize = 5_000;
const DB: &str = "month";

fn env_num(name: &str, default: f64) -> f64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Bytes of every file under `dir`.
fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

fn files_under(dir: &Path, suffix: &str) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| {
            let p = e.path();
            if p.is_dir() {
                files_under(&p, suffix)
            } else {
                u64::from(p.to_string_lossy().ends_with(suffix))
            }
        })
        .sum()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let days = env_num("TW_BENCH_DAYS", 31.0) as i64;
    let step_s = env_num("TW_BENCH_STEP_S", 60.0);
    let end_ms = START_MS + days * 24 * HOUR_MS;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    println!("load average before: {}", report::load_average());

    let profiles = ProfileSet::builtin().expect("profiles");
    let site = Site::builtin(&profiles).expect("site");
    let mut plant = Plant::new(&site, START_MS).expect("plant");
    let bindings = bind_all(&plant, &profiles).expect("bindings");

    let influxd = runtime.block_on(Influxd::start(InfluxdOptions {
        compact_when_cold: true,
        ..InfluxdOptions::default()
    }));
    runtime.block_on(influxd.create_database(DB));
    let http = reqwest::Client::new();
    let write_url = format!("{}/write?db={DB}&precision=ns", influxd.url());

    let store_dir = tempfile::tempdir().expect("temp dir");
    let store = EmbeddedStore::open(EmbeddedConfig::in_dir(store_dir.path())).expect("store");

    // Generate and write, an hour of simulated time at a time.
    let mut points: Vec<Point> = Vec::new();
    let mut written: BTreeMap<String, u64> = BTreeMap::new();
    let (mut n_points, mut n_values) = (0u64, 0u64);
    let (mut embedded_secs, mut influx_secs) = (0.0, 0.0);
    let mut lp = Vec::new();
    let mut at = START_MS;
    let mut last_report = Instant::now();
    while at < end_ms {
        let to = (at + HOUR_MS).min(end_ms);
        points.clear();
        FastRun::new(&mut plant, &bindings).run(step_s, to, |plant, frame| {
            frame_points(plant, &bindings, frame, &mut points);
        });
        at = to;
        for p in &points {
            *written.entry(p.measurement().to_owned()).or_default() += 1;
            n_values += p.fields().len() as u64;
        }
        n_points += points.len() as u64;

        let t = Instant::now();
        let accepted = store.write(&points).expect("embedded write");
        assert_eq!(
            accepted.points,
            points.len(),
            "refused: {:?}",
            accepted.refused
        );
        embedded_secs += t.elapsed().as_secs_f64();

        let t = Instant::now();
        for batch in points.chunks(BATCH) {
            lp.clear();
            line_protocol::encode_batch(batch, &mut lp).expect("encode");
            let answer = runtime
                .block_on(http.post(&write_url).body(lp.clone()).send())
                .expect("post to influxd");
            assert_eq!(answer.status().as_u16(), 204, "influxd refused a batch");
        }
        influx_secs += t.elapsed().as_secs_f64();
        if last_report.elapsed() > Duration::from_secs(20) {
            last_report = Instant::now();
            eprintln!(
                "  {:.0} % of the month written ({n_points} points)",
                100.0 * (at - START_MS) as f64 / (end_ms - START_MS) as f64
            );
        }
    }
    drop(points);

    // The embedded store at rest: flushed, the closed days compacted.
    let t = Instant::now();
    store.flush().expect("flush");
    let now_ns = end_ms * 1_000_000 + 10 * 86_400_000_000_000;
    let maintained = store.maintain(now_ns).expect("compaction");
    let embedded_close_secs = t.elapsed().as_secs_f64();
    store.shutdown().expect("shutdown");
    // The last handle goes: the directory's lock is released for the reopen below.
    drop(store);
    let embedded_bytes = dir_bytes(store_dir.path());
    let parquet_files = files_under(store_dir.path(), ".parquet");
    println!(
        "embedded: {embedded_bytes} bytes in {parquet_files} Parquet files ({} partitions compacted)",
        maintained.compacted
    );

    // influxd at rest: wait until its directory stops changing.
    let influx_data = influxd.dir.path().join("data");
    let influx_wal = influxd.dir.path().join("wal");
    let influx_size = || dir_bytes(&influx_data) + dir_bytes(&influx_wal);
    let settle_start = Instant::now();
    let mut last = influx_size();
    let mut stable_since = Instant::now();
    while stable_since.elapsed() < Duration::from_secs(30)
        && settle_start.elapsed() < Duration::from_secs(900)
    {
        std::thread::sleep(Duration::from_secs(3));
        let now = influx_size();
        if now != last {
            last = now;
            stable_since = Instant::now();
        }
    }
    let influx_bytes = influx_size();
    let tsm_files = files_under(&influx_data, ".tsm");
    println!(
        "influxd: {influx_bytes} bytes ({tsm_files} TSM files) after {:.0} s of settling",
        settle_start.elapsed().as_secs_f64()
    );

    // Read the month back from the embedded store.
    let store = EmbeddedStore::open(EmbeddedConfig::in_dir(store_dir.path())).expect("reopen");
    // Frames stand for the step ending at their time: the first is at START + step, the
    // last at the month's end, which a half-open range must include.
    let range = START_MS * 1_000_000..end_ms * 1_000_000 + 1;
    let mut embedded_read = Vec::new();
    for round in 0..3 {
        let t = Instant::now();
        let mut rows = 0u64;
        for (m, expected) in &written {
            let df = store
                .scan(&Scan::new(m.as_str(), range.clone()))
                .expect("scan")
                .collect()
                .expect("collect");
            assert_eq!(df.height() as u64, *expected, "{m}: rows read back");
            rows += df.height() as u64;
        }
        let secs = t.elapsed().as_secs_f64();
        println!("embedded read-back round {round}: {rows} rows in {secs:.2} s");
        embedded_read.push(secs);
    }
    store.shutdown().expect("shutdown");
    drop(store);

    // Read it back from influxd with the InfluxQL reader.
    let reader_config =
        servers::v1_config(&influxd.url(), DB, &store_dir.path().join("unused-spool"));
    let reader = InfluxReader::new(&reader_config).expect("reader");
    let t = Instant::now();
    let mut influx_rows = 0u64;
    for (m, expected) in &written {
        let df = runtime
            .block_on(reader.read(&Scan::new(m.as_str(), range.clone())))
            .expect("InfluxQL read");
        assert_eq!(
            df.height() as u64,
            *expected,
            "{m}: rows read back from influxd"
        );
        influx_rows += df.height() as u64;
    }
    let influx_read_secs = t.elapsed().as_secs_f64();
    println!("InfluxQL read-back: {influx_rows} rows in {influx_read_secs:.1} s");
    println!("load average after: {}", report::load_average());

    // Report.
    let per = |bytes: u64, n: u64| bytes as f64 / n as f64;
    let best = embedded_read.iter().copied().fold(f64::INFINITY, f64::min);
    let med = median(embedded_read.clone());
    let ratio = embedded_bytes as f64 / influx_bytes as f64;
    let met = if embedded_bytes <= influx_bytes {
        "met"
    } else {
        "**not met**"
    };
    let mut body = format!(
        "One simulated month ({days} days from 2026-01-01T00:00Z) of the built-in Qingdao park \
         at one reading of every device and sensor per {step_s} s: {n_points} points, \
         {n_values} field values, {} measurements.\n\n\
         | store, at rest | bytes on disk | bytes per point | bytes per value | files |\n\
         |---|---:|---:|---:|---:|\n\
         | embedded store (Parquet, zstd, day partitions compacted) | {embedded_bytes} | {:.2} | {:.3} | {parquet_files} Parquet |\n\
         | InfluxDB 1.x `influxd` (data + wal, fully compacted) | {influx_bytes} | {:.2} | {:.3} | {tsm_files} TSM |\n\n\
         Embedded / InfluxDB: **{ratio:.2}x** the bytes. Target (no more than InfluxDB): {met}.\n\n\
         | reading the month back into polars frames | rows | seconds | rows per second |\n\
         |---|---:|---:|---:|\n\
         | embedded store, `scan` + `collect` per measurement (best of 3; median {med:.2} s) | {n_points} | {best:.2} | {:.0} |\n\
         | baseline: InfluxDB 1.x through the InfluxQL reader (CSV, 6 h chunks) | {influx_rows} | {influx_read_secs:.1} | {:.0} |\n\n\
         Writing, for context (not a target): the embedded store took {embedded_secs:.1} s for \
         the month's `write` calls (one per simulated hour, each synced) and \
         {embedded_close_secs:.1} s for the last flush and the compaction; influxd took \
         {influx_secs:.1} s for the same points posted in requests of {BATCH}.\n",
        written.len(),
        per(embedded_bytes, n_points),
        per(embedded_bytes, n_values),
        per(influx_bytes, n_points),
        per(influx_bytes, n_values),
        n_points as f64 / best,
        influx_rows as f64 / influx_read_secs,
    );
    body.push_str("\nRows per measurement: ");
    body.push_str(
        &written
            .iter()
            .map(|(m, n)| format!("{m} {n}"))
            .collect::<Vec<_>>()
            .join(", "),
    );
    body.push_str(".\n");
    report::write_section(SECTION, COMMAND, &body);
    drop(influxd);
}
