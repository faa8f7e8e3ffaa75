//! `tidewatch analyze` over several months of the whole simulated park, two ways in the
//! same run: the report composed from each month's analysis (`compose_months`, how
//! `analyze` works now) against one `analyze_range` over the whole range (the baseline:
//! how it worked before). Wall time and peak resident memory of each, and the same
//! report either way (checked: every number to 1e-9 relative, `report_diff`).
//!
//! Run: `cargo bench -p tidewatch-analytics --bench analyze_months` (release).
//! Environment: `TW_BENCH_MONTHS` (local months from 2026-01-01, default 3),
//! `TW_BENCH_STEP_S` (simulated seconds between two readings of every device and
//! sensor, default 120). The section "Analytics: a range of months, composed or in one
//! pass" of BENCHMARKS.md is rewritten with the numbers of the run.
//!
//! - **Data.** `support/park.rs`: the simulator's fast mode for the built-in Qingdao
//!   park, every Modbus device and MQTT sensor, from 30 minutes before the first month
//!   to 30 minutes after the last, into an embedded store, flushed and compacted.
//! - **Memory.** The bench process' resident-memory high-water mark (VmHWM), reset
//!   before each pass; what the process held when the pass began is given apart. The
//!   composed pass runs first, so that memory the allocator keeps after it can only
//!   flatter the one pass that follows, never the composition.

#[path = "support/park.rs"]
mod park;
#[path = "../../fixtures/benches/report.rs"]
mod report;
#[path = "../tests/support/report_diff.rs"]
mod report_diff;

use std::ops::Range;
use std::time::Instant;

use tidewatch_analytics::pue::{local_periods, Period};
use tidewatch_analytics::{analyze_range, compose_months, Analysis, AnalyticsConfig, Subjects};
use tidewatch_devices::{ProfileSet, Site};

use park::{env_num, open_store, peak_rss_mib, reset_peak_rss, runtime, simulate_park};

const SECTION: &str = "Analytics: a range of months, composed or in one pass";
const COMMAND: &str = "cargo bench -p tidewatch-analytics --bench analyze_months";

/// 2026-01-01T00:00:00+08:00, Unix ms.
const JAN_1_MS: i64 = 1_767_196_800_000;
const MARGIN_MS: i64 = 30 * 60_000;
const NS_PER_MS: i64 = 1_000_000;
const OFFSET_NS: i64 = 8 * 3_600_000_000_000;

/// One way of analysing the range: its report, time and memory.
struct Pass {
    analysis: Analysis,
    secs: f64,
    /// Resident memory when the pass began and its peak during the pass, MiB.
    rss_mib: Option<(f64, f64)>,
}

impl Pass {
    fn memory(&self) -> (String, String) {
        self.rss_mib
            .map_or(("-".into(), "-".into()), |(start, peak)| {
                (format!("{peak:.0}"), format!("{:.0}", peak - start))
            })
    }
}

/// How the range is analysed.
#[derive(Clone, Copy)]
enum Way {
    /// Month by month, then composed (what `tidewatch analyze` does).
    Composed,
    /// The whole range at once (how `tidewatch analyze` reported a long range before).
    OnePass,
}

/// Analyses the range one way, timing it and watching the memory.
async fn pass(
    way: Way,
    dir: &std::path::Path,
    subjects: &Subjects,
    config: &AnalyticsConfig,
    window: &Range<i64>,
) -> Pass {
    let start = reset_peak_rss();
    let t = Instant::now();
    let store = open_store(dir).await;
    let analysis = match way {
        Way::Composed => {
            let mut months = Vec::new();
            for (label, month) in local_periods(window, OFFSET_NS, Period::Month) {
                let m = Instant::now();
                months.push(
                    analyze_range(&store, subjects, config, month)
                        .await
                        .expect("a month's analysis"),
                );
                println!("  month {label}: {:.1} s", m.elapsed().as_secs_f64());
            }
            compose_months(months, config).expect("months")
        }
        Way::OnePass => analyze_range(&store, subjects, config, window.clone())
            .await
            .expect("the range's analysis"),
    };
    store.shutdown().await.expect("shutdown");
    Pass {
        analysis,
        secs: t.elapsed().as_secs_f64(),
        rss_mib: start.zip(peak_rss_mib()),
    }
}

fn main() {
    let months = env_num("TW_BENCH_MONTHS", 3.0).max(2.0) as u32;
    let step_s = env_num("TW_BENCH_STEP_S", 120.0);
    let runtime = runtime();
    let load_before = report::load_average();
    println!("load average before: {load_before}");
    let work = tempfile::tempdir().expect("temp dir");

    let profiles = ProfileSet::builtin().expect("profiles");
    let site = Site::builtin(&profiles).expect("site");
    let subjects = Subjects::from_site(&site, &profiles).expect("subjects");
    let config = AnalyticsConfig::default();
    let end_date = chrono::NaiveDate::from_ymd_opt(2026, 1, 1)
        .and_then(|d| d.checked_add_months(chrono::Months::new(months)))
        .expect("date");
    let end_ms = end_date
        .and_hms_opt(0, 0, 0)
        .expect("midnight")
        .and_utc()
        .timestamp_millis()
        - OFFSET_NS / NS_PER_MS;
    let window = JAN_1_MS * NS_PER_MS..end_ms * NS_PER_MS;
    let dir = work.path().join("store");
    let written = simulate_park(&dir, JAN_1_MS - MARGIN_MS, end_ms + MARGIN_MS, step_s);

    println!("composed from the months:");
    let composed = runtime.block_on(pass(Way::Composed, &dir, &subjects, &config, &window));
    println!(
        "  {:.1} s, memory (peak, above start) {:?} MiB",
        composed.secs,
        composed.memory()
    );
    println!("one pass over the range:");
    let single = runtime.block_on(pass(Way::OnePass, &dir, &subjects, &config, &window));
    println!(
        "  {:.1} s, memory (peak, above start) {:?} MiB",
        single.secs,
        single.memory()
    );

    assert!(
        single.analysis.failures().is_empty(),
        "{:?}",
        single.analysis.failures()
    );
    // Any difference is recorded with the numbers (they were measured), then fails the
    // run.
    let found = report_diff::differences(
        &composed.analysis,
        &single.analysis,
        report_diff::composition_allows,
    );
    let park = composed.analysis.pue.park.total.pue.expect("park PUE");
    let anomalies = composed
        .analysis
        .anomalies
        .result()
        .map_or(0, |list| list.len());
    let agreement = if found.is_empty() {
        "The same report both ways (every number within 1e-9 relative, every text and count \
         equal; checked)"
            .to_owned()
    } else {
        format!(
            "**The reports differ** in {} places (the run failed):\n\n```text\n{}\n```\n\n\
             Otherwise",
            found.len(),
            found
                .iter()
                .take(20)
                .cloned()
                .collect::<Vec<_>>()
                .join("\n")
        )
    };
    println!("{agreement}: park PUE {park:.5}, {anomalies} anomalies");

    let load_after = report::load_average();
    println!("load average after: {load_after}");
    let (c_peak, c_above) = composed.memory();
    let (s_peak, s_above) = single.memory();
    let body = format!(
        "{months} local months from 2026-01-01T00:00+08:00 of the built-in Qingdao park, one \
         reading of every device and sensor per {step_s} s (from 30 min before to 30 min \
         after): {} points in the embedded store, flushed and compacted. The whole analysis \
         with the default configuration (energy PUE, demand, carbon, cooling, thermal \
         anomalies; no tariff, so no cost) of the range, two ways, in one process; the \
         composed way first.\n\n\
         | way | time | peak resident memory | above what the process held when it began |\n\
         |---|---|---|---|\n\
         | month by month, composed (`compose_months`, what `tidewatch analyze` does) | \
         {:.1} s | {c_peak} MiB | {c_above} MiB |\n\
         | one pass over the range (baseline: `analyze` before) | {:.1} s | {s_peak} MiB | \
         {s_above} MiB |\n\n\
         {agreement}: park PUE {park:.5}, {anomalies} thermal anomalies. Peak memory is \
         the bench process' high-water mark (VmHWM), reset before each pass.\n\n\
         Load average (1 / 5 / 15 min) before the run {load_before}, after {load_after}.\n",
        written.points, composed.secs, single.secs,
    );
    report::write_section(SECTION, COMMAND, &body);
    assert!(
        found.is_empty(),
        "the composed report differs from one pass ({}):\n{}",
        found.len(),
        found.join("\n")
    );
}
