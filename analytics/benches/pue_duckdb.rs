//! Monthly energy PUE per centre and for the park, with its daily breakdown, over one
//! simulated month of the whole park in the embedded store: `pue_trend` against
//! DuckDB running the equivalent SQL over the same Parquet files, in the same run
//! (issue 5). Target: no slower than DuckDB.
//!
//! Run: `cargo bench -p tidewatch-analytics --bench pue_duckdb` (release). Needs
//! `python3` with the PyPI `duckdb` package (installed with `python3 -m pip install
//! duckdb` by the bench if missing, which it says). Environment: `TW_BENCH_DAYS`
//! (default 31), `TW_BENCH_STEP_S` (simulated seconds between two readings of every
//! device and sensor, default 60), `TW_BENCH_ROUNDS` (default 5), `TW_BENCH_PYTHON`
//! (default `python3`), `TW_BENCH_KEEP` (set: keep the stores and the DuckDB specs
//! in their temp dir, whose path is printed). The section "Analytics: energy PUE against DuckDB" of
//! BENCHMARKS.md is rewritten with the numbers of the run.
//!
//! - **Data.** The simulator's fast mode for the built-in Qingdao park, every Modbus
//!   device and MQTT sensor (all measurements, as the collectors store them), from 30
//!   minutes before local midnight of 2026-01-01 (UTC+8) to 30 minutes after the
//!   month, written into an embedded store with one `write` call per simulated hour,
//!   then flushed and its closed days compacted (what the store does on its own an
//!   hour after a day ends): both sides read the same compacted Parquet files.
//! - **Ours.** `Store::open` of that directory then `pue_trend` over the local month:
//!   the scans of the PUE's facility and IT meters (projection: time, tags, the counter
//!   field; a device filter up to 64 meters), the counter rules, per centre and park
//!   the monthly and daily PUE: the same work as the SQL. Timed from before `open` to
//!   the result. The profile also times the full `energy_pue` (which adds the energy
//!   split, pPUE per micro-module and every meter's events, reading the cooling,
//!   other and micro-module meters too), for reference.
//! - **DuckDB.** `analytics/benches/pue_duckdb.py`, one `python3` process for all
//!   rounds (started before the timing, `import duckdb` done), timing each round
//!   itself from `duckdb.connect()` (a fresh in-memory database per round) to the last
//!   result row fetched: listing the day partitions, reading the Parquet files (only
//!   the device, time and counter columns, the range and the meters wanted) and the
//!   whole SQL. It is given the meters and their roles from the inventory and the PUE
//!   configuration (facility and IT meters per centre, register width, rating), the
//!   counter rules and the window, as a JSON file. The SQL applies the counter rules
//!   with LAG/LEAD (invalid readings, single upward and downward spikes, small drops,
//!   resets taking the new reading as the energy since the reset, 32-bit rollovers,
//!   jumps, gaps longer than `max_sample_gap` uncovered), intersects the meters'
//!   covered time per scope, splits intervals over local days pro rata as
//!   `energy_within` does, and sums days into the month. **Simplification**: only the
//!   rules that look one reading ahead are reproduced; `counters.rs` keeps its
//!   baseline across any run of dropped readings (several zeros written during an
//!   outage, two spikes in a row), the SQL only across one. Readings with equal
//!   times are taken to be absent.
//! - **Correctness gate**, before any timing: every daily and monthly value of every
//!   scope (window, coverage, facility and IT kWh, PUE) from DuckDB equals ours
//!   within 1e-6 relative (coverage within 1e-9), or the bench panics. First on a
//!   small synthetic store made to hit every rule the SQL claims (a reset, a 32-bit
//!   rollover, upward and downward spikes, a single zero, a small drop, an invalid
//!   reading, a jump, gaps inside and across local midnight, readings off the minute
//!   so intervals straddle midnight, a meter without rating, a partial last day, a
//!   meter that stops early), then on the month for each configuration.
//! - **Configurations**: the default (category 1: IT at the UPS outputs, facility at
//!   the incoming supply: 4 meters for the PUE) and category 2 from the 304 rack
//!   PDUs (306 meters).
//! - **Rounds**: the two sides alternate, each round starting with the other side;
//!   every round after the first reads the files from the page cache (so does the
//!   first, having just been written or gated): the times are warm.
//! - **For reference**, after the comparison: the whole `analyze_range` over the month
//!   (what `tidewatch analyze` computes per month, thermal anomalies included), once,
//!   with the anomaly detectors alone timed again and the bench's peak resident memory
//!   meanwhile. No target; it says what a month costs.

#[path = "support/park.rs"]
mod park;
#[path = "../../fixtures/benches/report.rs"]
mod report;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::ops::Range;
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Instant;

use tidewatch_analytics::counters::CounterSpec;
use tidewatch_analytics::pue::{read_counters, PeriodPue, ScopeTrend};
use tidewatch_analytics::{
    analyze_range, anomaly, energy_pue, pue_trend, AnalyticsConfig, Inventory, ItSource, MeterRef,
    PueReport, PueTrend, Subjects,
};
use tidewatch_devices::{DeviceKind, MeterRole, ProfileSet, Site};
use tidewatch_model::Point;
use tidewatch_storage::embedded::{EmbeddedConfig, EmbeddedStore};
use tidewatch_storage::store::Scan;

use park::{env_num, open_store, peak_rss_mib, reset_peak_rss, runtime, simulate_park};

const SECTION: &str = "Analytics: energy PUE against DuckDB";
const COMMAND: &str = "cargo bench -p tidewatch-analytics --bench pue_duckdb";
/// 2026-01-01T00:00:00+08:00, Unix ms.
const JAN_1_MS: i64 = 1_767_196_800_000;
const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;
const MINUTE_NS: i64 = 60_000_000_000;
/// Readings before and after the window (so intervals across its edges exist).
const MARGIN_MS: i64 = 30 * 60_000;
/// Above this many meters, `pue_trend` and `energy_pue` scan the whole measurement (pue.rs).
const MAX_DEVICE_FILTER: usize = 64;
const REL_TOLERANCE: f64 = 1e-6;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn best(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::INFINITY, f64::min)
}

// ---------------------------------------------------------------- the DuckDB side

/// One period of one scope as DuckDB computed it.
#[derive(Debug, Clone)]
struct DuckRow {
    scope: String,
    kind: String,
    label: String,
    window: (i64, i64),
    pue: Option<f64>,
    coverage: f64,
    facility_kwh: f64,
    it_kwh: f64,
}

struct DuckRun {
    rows: Vec<DuckRow>,
    secs: f64,
    rows_read: u64,
}

/// The python3 process running `pue_duckdb.py --serve`.
struct Duck {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    version: String,
}

impl Duck {
    fn start(python: &str) -> Duck {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/pue_duckdb.py");
        let has_duckdb = Command::new(python)
            .args(["-c", "import duckdb"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !has_duckdb {
            println!(
                "the duckdb package is missing: installing it (`{python} -m pip install duckdb`)"
            );
            let ok = Command::new(python)
                .args(["-m", "pip", "install", "--quiet", "duckdb"])
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "`{python} -m pip install duckdb` failed");
        }
        let mut child = Command::new(python)
            .arg(&script)
            .arg("--serve")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {python} {}: {e}", script.display()));
        let stdin = child.stdin.take().expect("stdin");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        stdout.read_line(&mut line).expect("python's first line");
        let version = line
            .trim()
            .strip_prefix("ready ")
            .unwrap_or_else(|| panic!("pue_duckdb.py did not start: {line:?}"))
            .to_owned();
        Duck {
            child,
            stdin,
            stdout,
            version,
        }
    }

    fn run(&mut self, spec: &Path) -> DuckRun {
        writeln!(self.stdin, "{}", spec.display()).expect("write to python");
        self.stdin.flush().expect("flush to python");
        let mut rows = Vec::new();
        loop {
            let mut line = String::new();
            let n = self.stdout.read_line(&mut line).expect("read from python");
            assert!(
                n > 0,
                "pue_duckdb.py ended without an answer (see its error above)"
            );
            let f: Vec<&str> = line.trim_end_matches('\n').split('\t').collect();
            let num = |s: &str| -> f64 { s.parse().unwrap_or_else(|_| panic!("number {s:?}")) };
            match f[0] {
                "row" => rows.push(DuckRow {
                    scope: f[1].to_owned(),
                    kind: f[2].to_owned(),
                    label: f[3].to_owned(),
                    window: (num(f[4]) as i64, num(f[5]) as i64),
                    pue: (f[6] != "none").then(|| num(f[6])),
                    coverage: num(f[7]),
                    facility_kwh: num(f[8]),
                    it_kwh: num(f[9]),
                }),
                "done" => {
                    return DuckRun {
                        rows,
                        secs: num(f[1]),
                        rows_read: num(f[2]) as u64,
                    }
                }
                other => panic!("unexpected line from pue_duckdb.py: {other:?}"),
            }
        }
    }
}

impl Drop for Duck {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn json_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn json_opt(v: Option<f64>) -> String {
    v.map_or("null".into(), |v| format!("{v:?}"))
}

/// The facility and IT meters of each centre, as `pue_trend` takes them.
fn pue_meters<'a>(
    inventory: &'a Inventory,
    config: &AnalyticsConfig,
) -> Vec<(&'a MeterRef, &'static str)> {
    let mut out = Vec::new();
    for c in &inventory.centres {
        for m in inventory.with_roles(c, &config.pue.facility_roles) {
            out.push((m, "facility"));
        }
        let it: Vec<&MeterRef> = match config.pue.it_source {
            ItSource::UpsOutput => inventory.with_roles(c, &[MeterRole::UpsOutput]),
            ItSource::ZoneIt => inventory.with_roles(c, &[MeterRole::ZoneIt]),
            ItSource::RackPdu => inventory
                .meters
                .iter()
                .filter(|m| &m.centre == c && m.kind == DeviceKind::RackPdu)
                .collect(),
        };
        out.extend(it.into_iter().map(|m| (m, "it")));
    }
    out
}

/// Every meter `energy_pue` reads (facility, IT, cooling, other, the zones' IT and
/// cooling feeds of zones with an IT feed), as pue.rs gathers them.
fn all_pue_meters<'a>(inventory: &'a Inventory, config: &AnalyticsConfig) -> Vec<&'a MeterRef> {
    let mut wanted: Vec<&MeterRef> = pue_meters(inventory, config)
        .into_iter()
        .map(|(m, _)| m)
        .collect();
    for c in &inventory.centres {
        wanted.extend(inventory.with_roles(c, &config.pue.cooling_roles));
        wanted.extend(inventory.with_roles(c, &config.pue.other_roles));
        let zone_meters = |role: MeterRole| {
            inventory
                .meters
                .iter()
                .filter(move |m| &m.centre == c && m.zone.is_some() && m.role == Some(role))
        };
        for m in zone_meters(MeterRole::ZoneIt) {
            wanted.push(m);
        }
        for m in zone_meters(MeterRole::ZoneCooling) {
            if zone_meters(MeterRole::ZoneIt).any(|it| it.zone == m.zone) {
                wanted.push(m);
            }
        }
    }
    wanted.sort_by(|a, b| a.id.cmp(&b.id));
    wanted.dedup_by(|a, b| a.id == b.id);
    wanted
}

/// Writes the DuckDB spec for a window and configuration; returns its path.
fn write_spec(
    path: &Path,
    data_dir: &Path,
    inventory: &Inventory,
    config: &AnalyticsConfig,
    window: &Range<i64>,
) {
    let rules = &config.counters;
    let meters: Vec<String> = pue_meters(inventory, config)
        .into_iter()
        .map(|(m, side)| {
            format!(
                "{{\"id\": {}, \"measurement\": {}, \"field\": {}, \"wrap_kwh\": {}, \
                 \"rated_kw\": {}, \"centre\": {}, \"side\": \"{side}\"}}",
                json_str(&m.id),
                json_str(&m.measurement),
                json_str(&m.field),
                json_opt(m.counter.wrap_kwh),
                json_opt(m.counter.rated_kw),
                json_str(&m.centre),
            )
        })
        .collect();
    let centres: Vec<String> = inventory.centres.iter().map(|c| json_str(c)).collect();
    let spec = format!(
        "{{\"data_dir\": {}, \"window\": [{}, {}], \"utc_offset_ns\": {}, \
         \"max_gap_ns\": {}, \"reset_drop_ratio\": {:?}, \"spike_power_factor\": {:?}, \
         \"max_power_kw\": {}, \"park\": {}, \"centres\": [{}],\n\"meters\": [\n{}\n]}}\n",
        json_str(&data_dir.to_string_lossy()),
        window.start,
        window.end,
        i64::from(inventory.utc_offset_hours) * 3_600_000_000_000,
        rules.max_gap_ns(),
        rules.reset_drop_ratio,
        rules.spike_power_factor,
        json_opt(rules.max_power_kw),
        json_str(&inventory.park),
        centres.join(", "),
        meters.join(",\n"),
    );
    std::fs::write(path, spec).expect("write the DuckDB spec");
}

// ---------------------------------------------------------------- the gate

fn close(a: f64, b: f64, tolerance: f64) -> bool {
    a == b || (a - b).abs() <= tolerance * a.abs().max(b.abs()) || (a - b).abs() < 1e-9
}

/// Checks DuckDB's rows against ours; returns the largest relative difference of a
/// PUE and the number of values compared. Panics on a difference.
fn gate(what: &str, report: &PueTrend, duck: &[DuckRow]) -> (f64, usize) {
    let scopes: Vec<&ScopeTrend> = report.centres.iter().chain([&report.park]).collect();
    let mut worst: f64 = 0.0;
    let mut compared = 0;
    for scope in scopes {
        for (kind, ours) in [("day", &scope.daily), ("month", &scope.monthly)] {
            let theirs: Vec<&DuckRow> = duck
                .iter()
                .filter(|r| r.scope == scope.scope && r.kind == kind)
                .collect();
            assert_eq!(
                ours.len(),
                theirs.len(),
                "{what}: {} {kind}: {} periods ours, {} DuckDB",
                scope.scope,
                ours.len(),
                theirs.len()
            );
            for (o, d) in ours.iter().zip(theirs) {
                let fail = |field: &str| -> ! {
                    panic!(
                        "{what}: DuckDB differs from ours on {field} of {} {}:\n  ours   {o:?}\n  DuckDB {d:?}",
                        scope.scope, o.label
                    )
                };
                let PeriodPue {
                    label,
                    window_ns,
                    pue,
                    coverage,
                    facility_kwh,
                    it_kwh,
                } = o;
                if *label != d.label || *window_ns != d.window {
                    fail("the period");
                }
                if (coverage - d.coverage).abs() > 1e-9 {
                    fail("coverage");
                }
                if !close(*facility_kwh, d.facility_kwh, REL_TOLERANCE) {
                    fail("facility kWh");
                }
                if !close(*it_kwh, d.it_kwh, REL_TOLERANCE) {
                    fail("IT kWh");
                }
                match (pue, d.pue) {
                    (None, None) => {}
                    (Some(a), Some(b)) => {
                        let rel = (a - b).abs() / a.abs();
                        if rel > REL_TOLERANCE {
                            fail("PUE");
                        }
                        worst = worst.max(rel);
                    }
                    _ => fail("PUE (one side has none)"),
                }
                compared += 1;
            }
        }
    }
    (worst, compared)
}

// ---------------------------------------------------------------- our side

/// The embedded store in `dir`, as every timed and profiled call opens it.
struct OursRun {
    report: PueTrend,
    open_secs: f64,
    secs: f64,
}

fn run_ours(
    runtime: &tokio::runtime::Runtime,
    dir: &Path,
    inventory: &Inventory,
    config: &AnalyticsConfig,
    window: &Range<i64>,
) -> OursRun {
    runtime.block_on(async {
        let t = Instant::now();
        let store = open_store(dir).await;
        let open_secs = t.elapsed().as_secs_f64();
        let report = pue_trend(&store, inventory, config, window.clone())
            .await
            .expect("pue_trend");
        let secs = t.elapsed().as_secs_f64();
        store.shutdown().await.expect("shutdown");
        drop(store);
        OursRun {
            report,
            open_secs,
            secs,
        }
    })
}

/// `energy_pue`'s whole report (split, pPUE, every meter's events).
fn full_report(
    runtime: &tokio::runtime::Runtime,
    dir: &Path,
    inventory: &Inventory,
    config: &AnalyticsConfig,
    window: &Range<i64>,
) -> PueReport {
    runtime.block_on(async {
        let store = open_store(dir).await;
        let report = energy_pue(&store, inventory, config, window.clone())
            .await
            .expect("energy_pue");
        store.shutdown().await.expect("shutdown");
        report
    })
}

/// The scans `pue_trend` makes (pue.rs `read_readings`: one per measurement and
/// field, a device filter up to 64 meters), for counting their rows.
fn our_scans(meters: &[&MeterRef], range: &Range<i64>) -> Vec<Scan> {
    let mut groups: BTreeMap<(&str, &str), Vec<&str>> = BTreeMap::new();
    for m in meters {
        groups
            .entry((m.measurement.as_str(), m.field.as_str()))
            .or_default()
            .push(&m.id);
    }
    groups
        .into_iter()
        .map(|((measurement, field), ids)| {
            let mut scan = Scan::new(measurement, range.clone()).fields([field]);
            if ids.len() <= MAX_DEVICE_FILTER {
                for id in ids {
                    scan = scan.tag("device", id);
                }
            }
            scan
        })
        .collect()
}

/// Where our time goes, on an open store, medians of three.
struct Profile {
    /// Rows the scans return.
    rows: u64,
    /// The scans alone (scan + collect).
    scan_s: f64,
    /// Scans + readings per device + counter rules.
    counters_s: f64,
    /// The whole `pue_trend`.
    trend_s: f64,
    /// The whole `energy_pue` (split, pPUE, meter events: more meters read).
    full_s: f64,
}

fn profile_ours(
    runtime: &tokio::runtime::Runtime,
    dir: &Path,
    inventory: &Inventory,
    config: &AnalyticsConfig,
    window: &Range<i64>,
) -> Profile {
    let mut meters: Vec<&MeterRef> = pue_meters(inventory, config)
        .into_iter()
        .map(|(m, _)| m)
        .collect();
    meters.sort_by(|a, b| a.id.cmp(&b.id));
    meters.dedup_by(|a, b| a.id == b.id);
    let margin = config.counters.max_gap_ns();
    let range = window.start - margin..window.end + margin + 1;
    let scans = our_scans(&meters, &range);
    runtime.block_on(async {
        let store = open_store(dir).await;
        let (mut scan_t, mut counters_t, mut trend_t, mut full_t) =
            (vec![], vec![], vec![], vec![]);
        let mut rows = 0;
        for _ in 0..3 {
            let t = Instant::now();
            rows = 0;
            for scan in &scans {
                rows += store.read(scan).await.expect("scan").height() as u64;
            }
            scan_t.push(t.elapsed().as_secs_f64());
            let t = Instant::now();
            let series = read_counters(&store, &meters, window, config)
                .await
                .expect("counters");
            counters_t.push(t.elapsed().as_secs_f64());
            drop(series);
            let t = Instant::now();
            pue_trend(&store, inventory, config, window.clone())
                .await
                .expect("pue_trend");
            trend_t.push(t.elapsed().as_secs_f64());
            let t = Instant::now();
            energy_pue(&store, inventory, config, window.clone())
                .await
                .expect("energy_pue");
            full_t.push(t.elapsed().as_secs_f64());
        }
        store.shutdown().await.expect("shutdown");
        Profile {
            rows,
            scan_s: median(scan_t),
            counters_s: median(counters_t),
            trend_s: median(trend_t),
            full_s: median(full_t),
        }
    })
}

/// The whole analysis of the month, as `tidewatch analyze` computes it for each month.
struct WholeAnalysis {
    /// `analyze_range` on an open store, seconds.
    secs: f64,
    /// Its thermal anomalies part alone (`anomaly::analyze`: one zone's telemetry read
    /// and tested at a time).
    zone_by_zone: Pass,
    /// The same detectors over the telemetry of every zone read at once (`read_telemetry`
    /// of all zones, then `detect`): how `anomaly::analyze` worked before.
    all_at_once: Pass,
}

/// One pass of the anomaly detectors over the month.
struct Pass {
    secs: f64,
    /// Of which reading the telemetry, when timed apart.
    read_s: Option<f64>,
    anomalies: usize,
    /// Resident memory of the bench process when the pass began and its peak during
    /// the pass (the high-water mark reset first), MiB, when the kernel tells them.
    rss_mib: Option<(f64, f64)>,
}

impl Pass {
    fn describe(&self) -> String {
        let read = self.read_s.map_or(String::new(), |r| {
            format!(" ({r:.1} s reading, {:.1} s detecting)", self.secs - r)
        });
        let memory = self.rss_mib.map_or("peak resident memory not known".to_owned(), |(start, peak)| {
            format!("peak resident memory {peak:.0} MiB, {:.0} MiB above the {start:.0} MiB held when it began", peak - start)
        });
        format!(
            "{:.1} s{read}, {} anomalies, {memory}",
            self.secs, self.anomalies
        )
    }
}

/// Times `analyze_range` (PUE, demand, cost, carbon, cooling, anomalies) over the month,
/// once: the figure a facility engineer waits for, per month, in `tidewatch analyze`;
/// then the anomaly detectors zone by zone and all zones at once, each with its peak
/// memory.
fn whole_analysis(
    runtime: &tokio::runtime::Runtime,
    dir: &Path,
    subjects: &Subjects,
    config: &AnalyticsConfig,
    window: &Range<i64>,
) -> WholeAnalysis {
    runtime.block_on(async {
        let store = open_store(dir).await;
        let t = Instant::now();
        let analysis = analyze_range(&store, subjects, config, window.clone())
            .await
            .expect("analyze_range");
        let secs = t.elapsed().as_secs_f64();
        assert!(
            analysis.failures().is_empty(),
            "a part of the analysis failed: {:?}",
            analysis.failures()
        );
        drop(analysis);

        let start = reset_peak_rss();
        let t = Instant::now();
        let found = anomaly::analyze(
            &store,
            &subjects.anomalies,
            &config.anomalies,
            window.clone(),
        )
        .await
        .expect("anomalies, zone by zone");
        let zone_by_zone = Pass {
            secs: t.elapsed().as_secs_f64(),
            read_s: None,
            anomalies: found.len(),
            rss_mib: start.zip(peak_rss_mib()),
        };

        let start = reset_peak_rss();
        let t = Instant::now();
        let lookback = config.anomalies.lookback().as_nanos() as i64;
        let telemetry = anomaly::read_telemetry(
            &store,
            window.start - lookback..window.end,
            &subjects.anomalies.zone_ids(),
        )
        .await
        .expect("telemetry of every zone");
        let read_s = t.elapsed().as_secs_f64();
        let mut all = anomaly::detect(&telemetry, &subjects.anomalies, &config.anomalies)
            .expect("anomalies, all zones at once");
        drop(telemetry);
        all.retain(|a| a.end_ns.is_none_or(|e| e > window.start));
        let all_at_once = Pass {
            secs: t.elapsed().as_secs_f64(),
            read_s: Some(read_s),
            anomalies: all.len(),
            rss_mib: start.zip(peak_rss_mib()),
        };
        // Same detectors, same data: the same anomalies, whichever way it is read.
        let key = |a: &anomaly::Anomaly| (a.detected_ns, a.kind.as_str(), a.device.clone());
        let mut ours: Vec<_> = found.iter().map(key).collect();
        let mut before: Vec<_> = all.iter().map(key).collect();
        ours.sort();
        before.sort();
        assert_eq!(ours, before, "zone by zone and all at once disagree");
        store.shutdown().await.expect("shutdown");
        WholeAnalysis {
            secs,
            zone_by_zone,
            all_at_once,
        }
    })
}

// ---------------------------------------------------------------- synthetic gate

/// A small store hitting every counter rule the SQL reproduces, and its inventory.
fn synthetic_store(dir: &Path) -> (Inventory, Range<i64>) {
    let w0 = JAN_1_MS * 1_000_000;
    let w1 = w0 + 84 * 3_600_000_000_000; // 3.5 days: a partial last day
    let wrap = CounterSpec::register(32, 0.001).wrap_kwh;
    let meter = |id: &str, centre: &str, role: MeterRole, wrap_kwh, rated_kw| MeterRef {
        id: id.to_owned(),
        centre: centre.to_owned(),
        zone: None,
        role: Some(role),
        kind: DeviceKind::EnergyMeter,
        measurement: "energy_meter".into(),
        field: "import_kwh".into(),
        counter: CounterSpec { wrap_kwh, rated_kw },
    };
    let inventory = Inventory {
        park: "synthetic".into(),
        utc_offset_hours: 8,
        centres: vec!["a".into(), "b".into()],
        meters: vec![
            meter("a-in", "a", MeterRole::Incoming, None, Some(200.0)),
            meter("a-ups", "a", MeterRole::UpsOutput, None, Some(160.0)),
            meter("b-in", "b", MeterRole::Incoming, None, None),
            meter("b-ups", "b", MeterRole::UpsOutput, wrap, Some(100.0)),
        ],
    };
    // (id, centre, kW, first reading, step, offset within the step): counters that
    // integrate a varying power; anomalies by minute index below.
    let first = w0 - 30 * MINUTE_NS;
    let last = w1 + 30 * MINUTE_NS;
    let mut points = Vec::new();
    let mut push = |id: &str, centre: &str, t: i64, v: f64| {
        let mut p = Point::new("energy_meter", t);
        p.add_tag("device", id).add_tag("centre", centre);
        p.add_field("import_kwh", v);
        points.push(p);
    };
    let power = |kw: f64, t: i64| kw * (1.0 + 0.2 * ((t / MINUTE_NS) as f64 / 97.0).sin());
    let minute = |t: i64| (t - w0).div_euclid(MINUTE_NS);
    // a-in: minute grid; a gap across local midnight (23:20 to 00:20, uncovered), an
    // upward spike, a reset, a small drop, a single zero.
    let mut v = 50_000.0;
    let mut reset_base = 0.0;
    let mut t = first;
    while t <= last {
        v += power(120.0, t) / 60.0;
        let k = minute(t);
        if k == 2500 {
            reset_base = v - power(120.0, t) / 60.0;
        }
        let shown = v - reset_base;
        let shown = match k {
            2000 => shown + 10_000.0,
            3000 => shown - 5.0,
            3500 => 0.0,
            _ => shown,
        };
        if !(1401..1460).contains(&k) {
            push("a-in", "a", t, shown);
        }
        t += MINUTE_NS;
    }
    // a-ups: 30 s off the minute (every interval straddles a minute, the ones at
    // midnight split pro rata); a 10-minute covered gap across midnight; a downward
    // spike; a persistent jump (unknown energy).
    let mut v = 20_000.0;
    let mut t = first + MINUTE_NS / 2;
    while t <= last {
        v += power(90.0, t) / 60.0;
        let k = minute(t);
        let shown = match k {
            1000 => v / 2.0,
            k if k >= 4000 => v + 5_000.0,
            _ => v,
        };
        if !(2876..2885).contains(&k) {
            push("a-ups", "a", t, shown);
        }
        t += MINUTE_NS;
    }
    // b-in: 5-minute steps, no rating (no spike limit), one negative (invalid)
    // reading, and no readings for the last 6 hours of the window.
    let mut v = 1_000.0;
    let mut t = first;
    while t <= w1 - 6 * 3_600_000_000_000 {
        v += power(60.0, t) / 12.0;
        let shown = if minute(t) == 1500 { -3.0 } else { v };
        push("b-in", "b", t, shown);
        t += 5 * MINUTE_NS;
    }
    // b-ups: a uint32 Wh counter that rolls over on the second day.
    let wrap = wrap.expect("wrap");
    let mut v = wrap - 1_900.0;
    let mut t = first;
    while t <= last {
        v += power(45.0, t) / 60.0;
        push("b-ups", "b", t, v % wrap);
        t += MINUTE_NS;
    }
    let store = EmbeddedStore::open(EmbeddedConfig::in_dir(dir)).expect("synthetic store");
    let accepted = store.write(&points).expect("write");
    assert_eq!(accepted.points, points.len(), "{:?}", accepted.refused);
    store.flush().expect("flush");
    store
        .maintain(last + 10 * DAY_MS * 1_000_000)
        .expect("compact");
    store.shutdown().expect("shutdown");
    drop(store);
    (inventory, w0..w1)
}

// ---------------------------------------------------------------- main

fn main() {
    let days = env_num("TW_BENCH_DAYS", 31.0) as i64;
    let step_s = env_num("TW_BENCH_STEP_S", 60.0);
    let rounds = env_num("TW_BENCH_ROUNDS", 5.0).max(1.0) as usize;
    let python = std::env::var("TW_BENCH_PYTHON").unwrap_or_else(|_| "python3".into());
    let runtime = runtime();
    let load_before = report::load_average();
    println!("load average before: {load_before}");
    let work = tempfile::tempdir().expect("temp dir");
    let mut duck = Duck::start(&python);
    println!("DuckDB {} (python package)", duck.version);

    // The gate on the synthetic store first: seconds, not minutes.
    let synthetic_dir = work.path().join("synthetic");
    let (synthetic, synthetic_window) = synthetic_store(&synthetic_dir);
    let config = AnalyticsConfig::default();
    let spec = work.path().join("synthetic.json");
    write_spec(
        &spec,
        &synthetic_dir.join("data"),
        &synthetic,
        &config,
        &synthetic_window,
    );
    let ours = run_ours(
        &runtime,
        &synthetic_dir,
        &synthetic,
        &config,
        &synthetic_window,
    );
    let theirs = duck.run(&spec);
    let (synthetic_worst, synthetic_compared) = gate("synthetic store", &ours.report, &theirs.rows);
    // The counter events, from the full report (it lists every meter's).
    let full = full_report(
        &runtime,
        &synthetic_dir,
        &synthetic,
        &config,
        &synthetic_window,
    );
    let mut kinds: Vec<String> = full
        .centres
        .iter()
        .flat_map(|c| &c.meters)
        .flat_map(|m| m.events.iter().map(|e| format!("{:?}", e.kind)))
        .collect();
    kinds.sort();
    kinds.dedup();
    let events = kinds.join(", ");
    assert_eq!(
        events,
        "DownwardSpike, Gap, InvalidReading, Jump, OutageZero, Reset, Rollover, SmallDrop, \
         UpwardSpike",
        "the synthetic store misses a counter rule"
    );
    println!(
        "gate, synthetic store: {synthetic_compared} periods equal (largest PUE difference \
         {synthetic_worst:.1e} relative; counter events: {events}; coverage of the park {:.4})",
        ours.report.park.total.coverage
    );

    // The month.
    let profiles = ProfileSet::builtin().expect("profiles");
    let site = Site::builtin(&profiles).expect("site");
    let inventory = Inventory::from_site(&site, &profiles).expect("inventory");
    let start_ms = JAN_1_MS - MARGIN_MS;
    let end_ms = JAN_1_MS + days * DAY_MS + MARGIN_MS;
    let window = JAN_1_MS * 1_000_000..(JAN_1_MS + days * DAY_MS) * 1_000_000;
    let store_dir = work.path().join("month");
    let written = simulate_park(&store_dir, start_ms, end_ms, step_s);
    let n_points = written.points;

    let mut category_2 = AnalyticsConfig::default();
    category_2.pue.it_source = ItSource::RackPdu;
    let configs = [
        (
            "category 1 (default): facility = incoming supply, IT = UPS outputs",
            AnalyticsConfig::default(),
        ),
        (
            "category 2: facility = incoming supply, IT = the 304 rack PDUs",
            category_2,
        ),
    ];
    let mut rows_md = String::new();
    let mut details = String::new();
    let mut all_met = true;
    for (n, (name, config)) in configs.iter().enumerate() {
        let spec = work.path().join(format!("month-{n}.json"));
        write_spec(&spec, &store_dir.join("data"), &inventory, config, &window);
        let pue_meter_count = pue_meters(&inventory, config).len();
        let read_meter_count = all_pue_meters(&inventory, config).len();

        // Gate.
        let ours = run_ours(&runtime, &store_dir, &inventory, config, &window);
        let theirs = duck.run(&spec);
        let (worst, compared) = gate(name, &ours.report, &theirs.rows);
        let park = ours.report.park.total.pue.expect("park PUE");
        println!(
            "{name}: gate passed, {compared} periods equal (largest PUE difference {worst:.1e} \
             relative); park PUE {park:.5}"
        );

        // Timing.
        let (mut ours_t, mut open_t, mut duck_t) = (vec![], vec![], vec![]);
        let mut duck_rows = theirs.rows_read;
        for round in 0..rounds {
            let do_ours = |ours_t: &mut Vec<f64>, open_t: &mut Vec<f64>| {
                let r = run_ours(&runtime, &store_dir, &inventory, config, &window);
                assert_eq!(r.report.park.total.pue, Some(park));
                ours_t.push(r.secs);
                open_t.push(r.open_secs);
            };
            let mut do_duck = |duck_t: &mut Vec<f64>| {
                let r = duck.run(&spec);
                duck_rows = r.rows_read;
                duck_t.push(r.secs);
            };
            if round % 2 == 0 {
                do_ours(&mut ours_t, &mut open_t);
                do_duck(&mut duck_t);
            } else {
                do_duck(&mut duck_t);
                do_ours(&mut ours_t, &mut open_t);
            }
            println!(
                "  round {round}: ours {:.3} s (open {:.3} s), DuckDB {:.3} s",
                ours_t[round], open_t[round], duck_t[round]
            );
        }
        let Profile {
            rows: scan_rows,
            scan_s,
            counters_s,
            trend_s,
            full_s,
        } = profile_ours(&runtime, &store_dir, &inventory, config, &window);
        let (om, ob, dm, db) = (
            median(ours_t.clone()),
            best(&ours_t),
            median(duck_t.clone()),
            best(&duck_t),
        );
        let met = om <= dm;
        all_met &= met;
        println!(
            "{name}: ours median {om:.3} s (best {ob:.3}), DuckDB median {dm:.3} s (best {db:.3}): \
             {:.2}x; profile: scans {scan_s:.3} s, counters {counters_s:.3} s, pue_trend \
             {trend_s:.3} s, full energy_pue {full_s:.3} s",
            om / dm
        );
        rows_md.push_str(&format!(
            "| {name} | {pue_meter_count} | {pue_meter_count} / {scan_rows} | {pue_meter_count} / {duck_rows} | \
             {om:.3} ({ob:.3}) | {dm:.3} ({db:.3}) | {:.2}x | {} |\n",
            om / dm,
            if met { "met" } else { "**NOT met**" }
        ));
        details.push_str(&format!(
            "- {name}: park PUE {park:.5}; gate: {compared} daily and monthly values equal, \
             largest PUE difference {worst:.1e} relative. Where our time goes (medians of 3 on \
             an open store): the same scans through `Store::read` (scan + collect, every tag \
             column: without the projection to time, device and the field that `pue_trend` \
             applies) {scan_s:.3} s, \
             `read_counters` (the scans, the readings per device and the counter rules) \
             {counters_s:.3} s, the whole `pue_trend` {trend_s:.3} s; `Store::open` {:.3} s \
             (median). For reference, the full `energy_pue` (adding the energy split, pPUE \
             per micro-module and every meter's events, from {read_meter_count} meters) \
             {full_s:.3} s.\n",
            median(open_t.clone())
        ));
    }
    let duck_version = duck.version.clone();
    drop(duck);

    println!("the whole analysis of the month (analyze_range), once...");
    let subjects = Subjects::from_site(&site, &profiles).expect("subjects");
    let whole = whole_analysis(
        &runtime,
        &store_dir,
        &subjects,
        &AnalyticsConfig::default(),
        &window,
    );
    println!(
        "whole analysis {:.1} s; anomalies zone by zone: {}; all zones at once: {}",
        whole.secs,
        whole.zone_by_zone.describe(),
        whole.all_at_once.describe()
    );
    if std::env::var_os("TW_BENCH_KEEP").is_some() {
        println!("kept: {}", work.keep().display());
    }
    let load_after = report::load_average();
    println!("load average after: {load_after}");

    let per_measurement = written
        .by_measurement
        .iter()
        .map(|(m, n)| format!("{m} {n}"))
        .collect::<Vec<_>>()
        .join(", ");
    let body = format!(
        "One simulated month ({days} local days from 2026-01-01T00:00+08:00) of the built-in \
         Qingdao park at one reading of every device and sensor per {step_s} s, from 30 min before \
         to 30 min after the month: {n_points} points in the embedded store (flushed, closed days \
         compacted), {} measurements: {per_measurement}.\n\n\
         *Ours*: `Store::open` + `pue_trend` over the local month (the scans of the PUE's \
         facility and IT meters, the counter rules, monthly and daily PUE per centre and park: \
         the work the SQL does). *DuckDB*: \
         `analytics/benches/pue_duckdb.py`, one python3 process for all rounds, each round timed \
         inside it from `duckdb.connect()` (fresh in-memory database) to the last result row: \
         listing the day partitions, reading the Parquet files (device, time and counter \
         columns, the range and the PUE's meters only) and the SQL (counter rules with LAG/LEAD, \
         covered time per scope, days split pro rata, months from days); interpreter start-up \
         and `import duckdb` excluded. DuckDB {}, default settings (threads = cores). {rounds} \
         rounds per side, alternating which side goes first; median seconds, best in \
         brackets. Every round reads the files from the page cache (they were just written, \
         then read by the gate): warm times, both sides.\n\n\
         | PUE configuration | PUE meters | ours: meters / rows read | DuckDB: meters / rows read | ours s | DuckDB s | ours / DuckDB | no slower than DuckDB |\n\
         |---|---:|---:|---:|---:|---:|---:|---|\n\
         {rows_md}\n\
         Target (no slower than DuckDB): {}.\n\n\
         Correctness gate, before timing: every daily and monthly PUE, coverage, facility and \
         IT kWh of each centre and the park from DuckDB equals ours within {REL_TOLERANCE:e} \
         relative (coverage within 1e-9), or the bench fails. It ran first on a small synthetic \
         store made to hit the rules (a reset, a 32-bit rollover, upward and downward spikes, a \
         single zero, a small drop, an invalid reading, a jump, gaps inside and across local \
         midnight, readings off the minute so intervals straddle midnight, a meter without \
         rating, a partial last day, a meter that stops early: {synthetic_compared} values equal, \
         largest PUE difference {synthetic_worst:.1e}), then on the month:\n\n\
         {details}\n\
         Simplification of the SQL: only the counter rules that look one reading ahead are \
         reproduced (LAG/LEAD); `counters.rs` keeps its baseline across any run of dropped \
         readings (several zeros written during an outage, two spikes in a row), the SQL across \
         one only. Readings with equal times are taken to be absent. Neither occurs in the \
         simulated month.\n\n\
         For reference, the whole analysis of the month as `tidewatch analyze` computes it \
         for each month (`analyze_range` with the default configuration: energy PUE with its \
         split, peak demand, carbon, cooling per loop and the thermal anomaly detectors over \
         every zone; no tariff, so no cost), once on an open store: {:.1} s. Its thermal \
         anomalies alone, timed again: `anomaly::analyze`, which reads and tests one zone's \
         telemetry at a time, {}; the same detectors over every zone's telemetry read at \
         once (`read_telemetry` of all zones, then `detect`: how `analyze` worked before), \
         {}; the same anomalies both ways (checked). Peak resident memory is the bench \
         process' high-water mark, reset before each pass; what the process held when the \
         pass began (the month's generation and the comparison before it) is part of it, \
         and given apart.\n\n\
         Load average (1 / 5 / 15 min) before the run {load_before}, after {load_after}.\n",
        written.by_measurement.len(),
        duck_version,
        if all_met {
            "met for both configurations"
        } else {
            "**NOT met** (see the table)"
        },
        whole.secs,
        whole.zone_by_zone.describe(),
        whole.all_at_once.describe(),
    );
    report::write_section(SECTION, COMMAND, &body);
}
