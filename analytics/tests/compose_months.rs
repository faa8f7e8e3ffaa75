//! The analysis of two months composed from each month's analysis
//! (`compose_months`, what `tidewatch analyze` reports for a range of several months)
//! against one pass over the whole range: the same report.
//!
//! The small simulated park (one liquid-cooled micro-module, one air-cooled row, the
//! centres' meters), every number it produces written to an embedded store at 60 s
//! steps, from 2026-01-31 00:00 to 2026-02-02 00:00 local time: two days across the
//! month boundary. A flow blockage on the module's CDU runs from 22:00 on the 31st to
//! 03:00 on the 1st, so its anomalies are open at the end of January and are found
//! again by February's pass; a tariff that changes by month prices the energy.
//!
//! Every number of the two reports (serialised to JSON) must agree to 1e-9 relative,
//! every text and count exactly, except where the composition is by design different
//! (`report_diff::composition_allows` says where and why).

#[path = "support/report_diff.rs"]
mod report_diff;
#[path = "support/simulated.rs"]
mod simulated;

use simulated::*;
use tidewatch_analytics::pue::{local_periods, Period};
use tidewatch_analytics::{analyze_range, compose_months, AnalyticsConfig, Subjects};
use tidewatch_devices::{FaultKind, ProfileSet};
use tidewatch_storage::embedded::EmbeddedConfig;
use tidewatch_storage::store::{Store, StoreConfig};

const DAY_MS: i64 = 24 * HOUR_MS;
/// 2026-01-31T00:00:00+08:00, Unix ms.
const START_MS: i64 = JAN_1_MS + 30 * DAY_MS;
const NS_PER_MS: i64 = 1_000_000;

const TARIFF: &str = r#"
[[analytics.tariff]]
name = "simulation"
prices = { critical_peak = 1.07, peak = 0.89, flat = 0.60, valley = 0.35, deep_valley = 0.22 }
rows = [
  { months = [1, 12], hours = [0, 8], period = "valley" },
  { months = [1, 12], hours = [8, 17], period = "flat" },
  { months = [1, 12], hours = [17, 19], period = "critical_peak" },
  { months = [1, 12], hours = [19, 24], period = "peak" },
  { months = [2, 3, 4, 5, 6, 7, 8, 9, 10, 11], hours = [0, 8], period = "valley" },
  { months = [2, 3, 4, 5, 6, 7, 8, 9, 10, 11], hours = [8, 10], period = "flat" },
  { months = [2, 3, 4, 5, 6, 7, 8, 9, 10, 11], hours = [10, 15], period = "deep_valley" },
  { months = [2, 3, 4, 5, 6, 7, 8, 9, 10, 11], hours = [15, 24], period = "peak" },
]
"#;

#[derive(serde::Deserialize)]
struct File {
    analytics: AnalyticsConfig,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_months_composed_are_the_two_months_analysed_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(StoreConfig::Embedded(EmbeddedConfig {
        dir: dir.path().to_path_buf(),
        ..EmbeddedConfig::default()
    }))
    .await
    .unwrap();
    let site = small_site(20261128);
    let blockage = fault(
        FaultKind::FlowBlockage,
        "dc2-mm01-cdu",
        None,
        START_MS + 22 * HOUR_MS,
        5 * HOUR_MS,
    );
    let end_ms = START_MS + 2 * DAY_MS;
    simulate_written(
        &site,
        &[blockage],
        START_MS..end_ms,
        60.0,
        &store,
        Written::Everything,
    )
    .await;

    let profiles = ProfileSet::builtin().unwrap();
    let subjects = Subjects::from_site(&site, &profiles).unwrap();
    let config = toml::from_str::<File>(TARIFF).unwrap().analytics;
    let window = START_MS * NS_PER_MS..end_ms * NS_PER_MS;
    let offset_ns = i64::from(subjects.inventory.utc_offset_hours) * HOUR_MS * NS_PER_MS;
    let months = local_periods(&window, offset_ns, Period::Month);
    assert_eq!(months.len(), 2, "{months:?}");

    let single = analyze_range(&store, &subjects, &config, window.clone())
        .await
        .unwrap();
    let mut analyses = Vec::new();
    for (_, month) in &months {
        analyses.push(
            analyze_range(&store, &subjects, &config, month.clone())
                .await
                .unwrap(),
        );
    }
    store.shutdown().await.unwrap();

    // The test means something only if every part was computed and the blockage was
    // open across the month's end.
    assert!(single.failures().is_empty(), "{:?}", single.failures());
    for part in [
        single.demand.result().is_some(),
        single.cost.result().is_some(),
        single.carbon.result().is_some(),
        single.cooling.result().is_some(),
    ] {
        assert!(part, "a part was not computed");
    }
    let boundary = months[1].1.start;
    let open_at_end = analyses[0]
        .anomalies
        .result()
        .unwrap()
        .iter()
        .filter(|a| a.end_ns.is_none())
        .count();
    assert!(
        open_at_end > 0,
        "no anomaly open at the end of January: {:#?}",
        analyses[0].anomalies
    );
    let spanning = |list: &[tidewatch_analytics::anomaly::Anomaly]| {
        list.iter()
            .filter(|a| a.start_ns < boundary && a.end_ns.is_none_or(|e| e > boundary))
            .count()
    };
    assert!(spanning(single.anomalies.result().unwrap()) > 0);

    let composed = compose_months(analyses, &config).unwrap();
    let found = report_diff::differences(&composed, &single, report_diff::composition_allows);
    assert!(
        found.is_empty(),
        "{} differences:\n{}",
        found.len(),
        found.join("\n")
    );
    // The approach trend was compared (from the months' merged least-squares sums).
    let slope = |a: &tidewatch_analytics::Analysis| {
        a.cooling.result().unwrap().loops[0]
            .approach
            .slope_k_per_day
    };
    assert!(slope(&single).is_some());
}
