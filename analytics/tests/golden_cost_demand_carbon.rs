//! Golden test: two days across a month boundary, read back through the `Store`
//! interface (embedded store): time-of-use cost with a tariff that changes by month,
//! peak demand, instantaneous PUE, CO2/CUE and WUE, against answers computed by hand;
//! then bad tariffs, a meter without a role, and a range without data.
//!
//! # The data
//!
//! 2026-01-31T00:00+08:00 to 2026-02-02T00:00+08:00 (48 h), park time UTC+8. Readings
//! every 15 minutes, k = 0..=192 (k = 192 closes the last quarter hour). Power is
//! constant within each quarter hour k (from reading k to k + 1).
//!
//! - centre `c1`: facility meter `c1-fac` (incoming) 1000 kW, except quarter
//!   k = 137 (2026-02-01 10:15-10:30) at **1800 kW**; its readings k = 77, 78, 79
//!   (2026-01-31 19:15, 19:30, 19:45) are **missing**: the interval 19:00-20:00 is 60
//!   min > `max_sample_gap` 15 min, a gap: 1000 kWh **uncovered**, not priced. IT meter
//!   `c1-it` (ups_output) 800 kW, 1400 kW in quarter 137.
//! - centre `c2`: `c2-fac` 500 kW, `c2-it` 400 kW throughout; a water meter `c2-water`
//!   (m3, read hourly) rising 0.9 m3 = 900 L per hour. `c1` has no water meter.
//! - kW readings (`power_total_kw`): the facility meters' at the counter times (none at
//!   the missing three), the IT meters' 2 s later (within the 5 s tolerance); each
//!   is the power of the quarter hour starting then.
//!
//! # The tariff (in the test's TOML below)
//!
//! Prices CNY/kWh: critical peak 1.10, peak 0.89, flat 0.60, valley 0.35, deep valley
//! 0.22. December and January: valley 0-8 and 23-24 (9 h), flat 8-16 (8 h), peak 16-19
//! and 21-23 (5 h), critical peak 19-21 (2 h). February to November: valley 0-7 and
//! 22-24 (9 h), flat 7-10 and 14-17 (6 h), deep valley 10-14 (4 h), peak 17-22 (5 h).
//!
//! # Cost by hand
//!
//! `c1`, 2026-01-31 (January table): valley 9 000 kWh x 0.35 = 3 150; flat 8 000 x 0.60
//! = 4 800; peak 5 000 x 0.89 = 4 450; critical peak only 20-21 covered, 1 000 x 1.10
//! = 1 100 (19-20 is the gap). 2026-02-01 (February table): valley 9 000 -> 3 150;
//! flat 6 000 -> 3 600; deep valley 4 000 + 800 x 0.25 = 4 200 kWh x 0.22 = 924; peak
//! 5 000 -> 4 450. Over both days: valley 18 000 kWh / 6 300 CNY, flat 14 000 / 8 400,
//! deep valley 4 200 / 924, peak 10 000 / 8 900, critical peak 1 000 / 1 100;
//! **47 200 kWh, 25 624 CNY**, uncovered **1 000 kWh**, coverage 47/48 = **0.979167**.
//!
//! `c2` (500 kW): Jan 31: valley 4 500 (1 575), flat 4 000 (2 400), peak 2 500
//! (2 225), critical peak 1 000 (1 100); Feb 1: valley 4 500 (1 575), flat 3 000
//! (1 800), deep valley 2 000 (440), peak 2 500 (2 225): **24 000 kWh, 13 340 CNY**.
//!
//! Park: valley 27 000 / 9 450, flat 21 000 / 12 600, deep valley 6 200 / 1 364, peak
//! 15 000 / 13 350, critical peak 2 000 / 2 200: **71 200 kWh, 38 964 CNY**, coverage
//! 47/48.
//!
//! # Peak demand by hand (15 min)
//!
//! `c1`: 1 800 kW in the quarter 2026-02-01 10:15; 192 quarters, 4 in the gap not
//! measured: 188. `c2`: 500 kW (every quarter equal: the first, 2026-01-31 00:00), 192
//! measured. Park: 1 800 + 500 = **2 300 kW** at 2026-02-01 10:15, 188 measured. With a
//! 30-minute interval `c1` peaks at (1 000 x 0.25 + 1 800 x 0.25) / 0.5 = **1 400 kW**
//! at 10:00.
//!
//! # Instantaneous PUE (category 0) by hand
//!
//! `c1`: 192 IT readings, 3 without a facility reading (the gap): 189 instants, 3
//! skipped. Peak IT 1 400 kW at 2026-02-01 10:15:02, facility 1 800: PUE0 = **1.285714**;
//! lowest 1 000 / 800 = **1.25**, mean (188 x 1.25 + 1.285714) / 189 = **1.250189**.
//! Park: 1 800 kW IT, 2 300 kW facility: **1.277778**.
//!
//! # CO2, CUE, WUE by hand (factor 0.6191 kg/kWh)
//!
//! `c1` over the 47 h both its meters cover: facility 47 200 kWh, IT 800 x 47 + 600 x
//! 0.25 = 37 750 kWh; CO2 = 47 200 x 0.6191 = **29 221.52 kg**, CUE = **0.774080**.
//! `c2`: 24 000 kWh, IT 19 200 kWh; CO2 **14 858.4 kg**, CUE **0.773875**. Park over
//! the 47 h every meter covers: facility 47 200 + 23 500 = 70 700, IT 37 750 + 18 800
//! = 56 550; CO2 **43 770.37 kg**, CUE **0.774012**. With a 2026 factor of 0.5:
//! `c1` CO2 = 23 600 kg.
//!
//! WUE `c2` = 900 L / 400 kWh = **2.25 L/kWh** (coverage 1); `c1`: none, "not
//! metered"; park: none, "not metered" (c1).

use std::time::Duration;

use serde::Deserialize;
use tidewatch_analytics::counters::CounterSpec;
use tidewatch_analytics::tariff::TouPeriod;
use tidewatch_analytics::{
    carbon_water, demand, tariff_cost, AnalyticsConfig, AnalyticsError, Inventory, MeterRef,
};
use tidewatch_devices::{DeviceKind, MeterRole};
use tidewatch_model::Point;
use tidewatch_storage::embedded::EmbeddedConfig;
use tidewatch_storage::store::{Store, StoreConfig};

/// 2026-01-31T00:00:00+08:00, Unix ns.
const T0: i64 = 1_769_788_800_000_000_000;
const H: i64 = 3_600_000_000_000;
const Q: i64 = H / 4;
const S: i64 = 1_000_000_000;
const QUARTERS: i64 = 192;
/// 2026-02-01 10:15 local.
const BURST: i64 = 137;
/// 2026-01-31 19:15, 19:30, 19:45 local.
const MISSING: [i64; 3] = [77, 78, 79];

const TARIFF: &str = r#"
[analytics.counters]
max_sample_gap = "15m"

[[analytics.tariff]]
name = "golden 2026"
valid_from = "2026-01-01"
prices = { critical_peak = 1.10, peak = 0.89, flat = 0.60, valley = 0.35, deep_valley = 0.22 }
rows = [
  { months = [12, 1], hours = [0, 8], period = "valley" },
  { months = [12, 1], hours = [8, 16], period = "flat" },
  { months = [12, 1], hours = [16, 19], period = "peak" },
  { months = [12, 1], hours = [19, 21], period = "critical_peak" },
  { months = [12, 1], hours = [21, 23], period = "peak" },
  { months = [12, 1], hours = [23, 24], period = "valley" },
  { months = [2, 3, 4, 5, 6, 7, 8, 9, 10, 11], hours = [0, 7], period = "valley" },
  { months = [2, 3, 4, 5, 6, 7, 8, 9, 10, 11], hours = [7, 10], period = "flat" },
  { months = [2, 3, 4, 5, 6, 7, 8, 9, 10, 11], hours = [10, 14], period = "deep_valley" },
  { months = [2, 3, 4, 5, 6, 7, 8, 9, 10, 11], hours = [14, 17], period = "flat" },
  { months = [2, 3, 4, 5, 6, 7, 8, 9, 10, 11], hours = [17, 22], period = "peak" },
  { months = [2, 3, 4, 5, 6, 7, 8, 9, 10, 11], hours = [22, 24], period = "valley" },
]

[[analytics.water.meters]]
device = "c2-water"
centre = "c2"
"#;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    analytics: AnalyticsConfig,
}

fn config_from(text: &str) -> Result<AnalyticsConfig, String> {
    toml::from_str::<File>(text)
        .map(|f| f.analytics)
        .map_err(|e| e.to_string())
}

fn config() -> AnalyticsConfig {
    config_from(TARIFF).unwrap()
}

/// Power of each meter in quarter k, kW.
fn power(meter: &str, k: i64) -> f64 {
    match meter {
        "c1-fac" if k == BURST => 1800.0,
        "c1-fac" => 1000.0,
        "c1-it" if k == BURST => 1400.0,
        "c1-it" => 800.0,
        "c2-fac" => 500.0,
        _ => 400.0,
    }
}

fn start(meter: &str) -> f64 {
    match meter {
        "c1-fac" => 120_000.0,
        "c1-it" => 50_000.0,
        "c2-fac" => 7_000.0,
        _ => 3_000.0,
    }
}

fn meter(id: &str, centre: &str, role: MeterRole, rated: f64) -> MeterRef {
    MeterRef {
        id: id.into(),
        centre: centre.into(),
        zone: None,
        role: Some(role),
        kind: DeviceKind::EnergyMeter,
        measurement: "energy_meter".into(),
        field: "import_kwh".into(),
        counter: CounterSpec::default().rated(rated),
    }
}

fn inventory() -> Inventory {
    Inventory {
        park: "golden".into(),
        utc_offset_hours: 8,
        centres: vec!["c1".into(), "c2".into()],
        meters: vec![
            meter("c1-fac", "c1", MeterRole::Incoming, 2000.0),
            meter("c1-it", "c1", MeterRole::UpsOutput, 2000.0),
            meter("c2-fac", "c2", MeterRole::Incoming, 1000.0),
            meter("c2-it", "c2", MeterRole::UpsOutput, 1000.0),
        ],
    }
}

async fn golden_store(dir: &std::path::Path) -> Store {
    let store = Store::open(StoreConfig::Embedded(EmbeddedConfig::in_dir(dir)))
        .await
        .unwrap();
    let mut points = Vec::new();
    for id in ["c1-fac", "c1-it", "c2-fac", "c2-it"] {
        let mut kwh = start(id);
        let it = id.ends_with("-it");
        for k in 0..=QUARTERS {
            let t = T0 + k * Q;
            let present = !(id == "c1-fac" && MISSING.contains(&k));
            if present {
                let mut p = Point::new("energy_meter", t)
                    .tag("device", id)
                    .field("import_kwh", kwh);
                if !it && k < QUARTERS {
                    p = p.field("power_total_kw", power(id, k));
                }
                points.push(p);
                if it && k < QUARTERS {
                    points.push(
                        Point::new("energy_meter", t + 2 * S)
                            .tag("device", id)
                            .field("power_total_kw", power(id, k)),
                    );
                }
            }
            kwh += power(id, k) * 0.25;
        }
    }
    for h in 0..=48 {
        points.push(
            Point::new("water_meter", T0 + h * H)
                .tag("device", "c2-water")
                .field("volume_m3", 1000.0 + 0.9 * h as f64),
        );
    }
    let written = store.write(points).await.unwrap();
    assert_eq!(written.refused, 0);
    store
}

fn close(actual: f64, expected: f64) -> bool {
    (actual - expected).abs() <= 1e-6 * expected.abs().max(1.0)
}

const WINDOW: std::ops::Range<i64> = T0..T0 + 48 * H;

#[tokio::test]
async fn cost_by_period_across_a_month_boundary_matches_the_hand_computation() {
    let dir = tempfile::tempdir().unwrap();
    let store = golden_store(dir.path()).await;
    let report = tariff_cost(&store, &inventory(), &config(), WINDOW)
        .await
        .unwrap();
    assert_eq!(report.currency, "CNY");
    assert_eq!(report.tariffs, ["golden 2026"]);
    // (critical peak, peak, flat, valley, deep valley): (kWh, CNY)
    let expected = [
        (
            "c1",
            [
                (1_000.0, 1_100.0),
                (10_000.0, 8_900.0),
                (14_000.0, 8_400.0),
                (18_000.0, 6_300.0),
                (4_200.0, 924.0),
            ],
            47_200.0,
            25_624.0,
            1_000.0,
        ),
        (
            "c2",
            [
                (1_000.0, 1_100.0),
                (5_000.0, 4_450.0),
                (7_000.0, 4_200.0),
                (9_000.0, 3_150.0),
                (2_000.0, 440.0),
            ],
            24_000.0,
            13_340.0,
            0.0,
        ),
        (
            "golden",
            [
                (2_000.0, 2_200.0),
                (15_000.0, 13_350.0),
                (21_000.0, 12_600.0),
                (27_000.0, 9_450.0),
                (6_200.0, 1_364.0),
            ],
            71_200.0,
            38_964.0,
            1_000.0,
        ),
    ];
    let scopes = report.centres.iter().chain([&report.park]);
    for (scope, (name, periods, kwh, cost, uncovered)) in scopes.zip(expected) {
        assert_eq!(scope.scope, name);
        for (p, (e_kwh, e_cost)) in scope.periods.iter().zip(periods) {
            assert!(
                close(p.kwh, e_kwh) && close(p.cost_cny, e_cost),
                "{name} {:?}: {} kWh {} CNY, expected {e_kwh} / {e_cost}",
                p.period,
                p.kwh,
                p.cost_cny
            );
        }
        assert_eq!(scope.periods[0].period, TouPeriod::CriticalPeak);
        assert!(close(scope.kwh, kwh), "{name}: {}", scope.kwh);
        assert!(close(scope.cost_cny, cost), "{name}: {}", scope.cost_cny);
        assert!(close(scope.uncovered_kwh, uncovered), "{name}");
        assert!(close(scope.average_price_cny_per_kwh.unwrap(), cost / kwh));
    }
    assert!(close(report.centres[0].coverage, 47.0 / 48.0));
    assert_eq!(report.centres[1].coverage, 1.0);
    assert!(close(report.park.coverage, 47.0 / 48.0));
    store.shutdown().await.unwrap();
}

#[tokio::test]
async fn peak_demand_and_instantaneous_pue_match_the_hand_computation() {
    let dir = tempfile::tempdir().unwrap();
    let store = golden_store(dir.path()).await;
    let report = demand(&store, &inventory(), &config(), WINDOW)
        .await
        .unwrap();
    assert_eq!(report.interval_minutes, 15.0);
    let c1 = &report.centres[0];
    assert!(close(c1.peak_kw.unwrap(), 1800.0), "{:?}", c1.peak_kw);
    assert_eq!(c1.peak_local.as_deref(), Some("2026-02-01 10:15"));
    assert_eq!(
        c1.peak_window_ns,
        Some((T0 + BURST * Q, T0 + (BURST + 1) * Q))
    );
    assert_eq!((c1.blocks, c1.measured_blocks), (192, 188));
    assert!(close(c1.coverage, 188.0 / 192.0));
    let c2 = &report.centres[1];
    assert!(close(c2.peak_kw.unwrap(), 500.0));
    assert_eq!(c2.peak_local.as_deref(), Some("2026-01-31 00:00"));
    assert_eq!(c2.measured_blocks, 192);
    assert!(close(report.park.peak_kw.unwrap(), 2300.0));
    assert_eq!(report.park.peak_local.as_deref(), Some("2026-02-01 10:15"));
    assert_eq!(report.park.measured_blocks, 188);

    let i1 = &report.instant_centres[0];
    assert!(i1.category_text.contains("category 0"));
    assert_eq!((i1.instants, i1.skipped), (189, 3));
    assert_eq!(i1.peak_it_kw, Some(1400.0));
    assert_eq!(i1.facility_kw_at_peak, Some(1800.0));
    assert!(
        close(i1.pue_at_peak.unwrap(), 1.285714),
        "{:?}",
        i1.pue_at_peak
    );
    assert_eq!(i1.peak_time_ns, Some(T0 + BURST * Q + 2 * S));
    assert_eq!(i1.min_pue, Some(1.25));
    assert!(close(i1.mean_pue.unwrap(), 1.250189), "{:?}", i1.mean_pue);
    let ip = &report.instant_park;
    assert!(
        close(ip.pue_at_peak.unwrap(), 1.277778),
        "{:?}",
        ip.pue_at_peak
    );
    assert_eq!(ip.peak_it_kw, Some(1800.0));

    // A 30-minute demand interval.
    let mut config = config();
    config.demand.interval = Duration::from_secs(1800);
    let report = demand(&store, &inventory(), &config, WINDOW).await.unwrap();
    let c1 = &report.centres[0];
    assert!(close(c1.peak_kw.unwrap(), 1400.0), "{:?}", c1.peak_kw);
    assert_eq!(c1.peak_local.as_deref(), Some("2026-02-01 10:00"));
    assert_eq!((c1.blocks, c1.measured_blocks), (96, 94));
    store.shutdown().await.unwrap();
}

#[tokio::test]
async fn co2_cue_and_wue_match_the_hand_computation() {
    let dir = tempfile::tempdir().unwrap();
    let store = golden_store(dir.path()).await;
    let report = carbon_water(&store, &inventory(), &config(), WINDOW)
        .await
        .unwrap();
    assert!(report.category_text.contains("category 1"));
    let expected = [
        ("c1", 47_200.0, 37_750.0, 29_221.52, 0.774080),
        ("c2", 24_000.0, 19_200.0, 14_858.4, 0.773875),
        ("golden", 70_700.0, 56_550.0, 43_770.37, 0.774012),
    ];
    let scopes = report.centres.iter().chain([&report.park]);
    for (scope, (name, facility, it, co2, cue)) in scopes.zip(expected) {
        assert_eq!(scope.scope, name);
        assert!(
            close(scope.facility_kwh, facility),
            "{name}: {}",
            scope.facility_kwh
        );
        assert!(close(scope.it_kwh, it), "{name}: {}", scope.it_kwh);
        assert!(close(scope.co2_kg, co2), "{name}: {}", scope.co2_kg);
        let got = scope.cue_kg_per_kwh.unwrap();
        assert!((got - cue).abs() < 1e-6, "{name}: CUE {got}");
        assert_eq!(scope.factors.len(), 1);
        assert_eq!(scope.factors[0].year, 2026);
        assert_eq!(scope.factors[0].kg_co2_per_kwh, 0.6191);
        assert!(scope.factors[0].source.contains("Shandong"));
    }
    let c1 = &report.centres[0];
    assert_eq!(c1.wue.wue_l_per_kwh, None);
    assert!(c1.wue.reason.as_deref().unwrap().starts_with("not metered"));
    let c2 = &report.centres[1];
    assert!(close(c2.wue.wue_l_per_kwh.unwrap(), 2.25), "{:?}", c2.wue);
    assert!(close(c2.wue.water_litres, 48.0 * 900.0));
    assert_eq!(c2.wue.coverage, 1.0);
    let park = &report.park.wue;
    assert_eq!(park.wue_l_per_kwh, None);
    let reason = park.reason.as_deref().unwrap();
    assert!(
        reason.starts_with("not metered") && reason.contains("c1"),
        "{reason}"
    );

    // A factor of its own for 2026.
    let text = format!(
        "{TARIFF}\n[analytics.carbon]\nby_year = [{{ year = 2026, kg_co2_per_kwh = 0.5, source = \"test\" }}]\n"
    );
    let config = config_from(&text).unwrap();
    let report = carbon_water(&store, &inventory(), &config, WINDOW)
        .await
        .unwrap();
    assert!(close(report.centres[0].co2_kg, 23_600.0));
    assert_eq!(report.centres[0].factors[0].source, "test");
    store.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_range_without_data_gives_zero_coverage_and_no_values() {
    let dir = tempfile::tempdir().unwrap();
    let store = golden_store(dir.path()).await;
    let later = T0 + 30 * 24 * H..T0 + 32 * 24 * H;
    let cost = tariff_cost(&store, &inventory(), &config(), later.clone())
        .await
        .unwrap();
    for scope in cost.centres.iter().chain([&cost.park]) {
        assert_eq!((scope.kwh, scope.cost_cny, scope.coverage), (0.0, 0.0, 0.0));
        assert_eq!(scope.average_price_cny_per_kwh, None);
    }
    let demand = demand(&store, &inventory(), &config(), later.clone())
        .await
        .unwrap();
    for scope in demand.centres.iter().chain([&demand.park]) {
        assert_eq!((scope.peak_kw, scope.measured_blocks), (None, 0));
        assert_eq!(scope.blocks, 192);
        assert!(scope.reason.is_some());
    }
    assert_eq!(demand.instant_park.pue_at_peak, None);
    assert!(demand.instant_park.reason.is_some());
    let carbon = carbon_water(&store, &inventory(), &config(), later)
        .await
        .unwrap();
    for scope in carbon.centres.iter().chain([&carbon.park]) {
        assert_eq!((scope.coverage, scope.co2_kg), (0.0, 0.0));
        assert_eq!(scope.cue_kg_per_kwh, None);
    }
    let c2 = &carbon.centres[1].wue;
    assert_eq!(c2.wue_l_per_kwh, None);
    assert!(
        c2.reason.as_deref().unwrap().contains("no time covered"),
        "{c2:?}"
    );
    store.shutdown().await.unwrap();
}

#[tokio::test]
async fn bad_tariffs_and_bad_input_give_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let store = golden_store(dir.path()).await;
    let inv = inventory();

    // Each change to the golden tariff, and what the error must name.
    let cases = [
        // Two periods for the same month and hour: row 13 repeats July 20:00.
        (
            TARIFF.replace(
                "\n]\n\n[[analytics.water",
                "\n  { months = [7], hours = [20, 21], period = \"critical_peak\" },\n]\n\n[[analytics.water",
            ),
            vec!["row 13 (month 7, hour 20:00)", "overlaps row 11"],
        ),
        // An hour no row gives: December and January 23-24 removed.
        (
            TARIFF.replace(
                "  { months = [12, 1], hours = [23, 24], period = \"valley\" },\n",
                "",
            ),
            vec!["month 1, hour 23:00", "no row"],
        ),
        // An unknown period name.
        (
            TARIFF.replace("period = \"deep_valley\"", "period = \"midday\""),
            vec!["row 9", "\"midday\"", "deep_valley"],
        ),
        // A negative price.
        (
            TARIFF.replace("valley = 0.35", "valley = -0.35"),
            vec!["prices.valley", "-0.35", "not negative"],
        ),
        // Overlapping validity: a second tariff from 2025-07-01 to 2026-02-01.
        (
            format!(
                "{TARIFF}\n[[analytics.tariff]]\nname = \"older\"\nvalid_from = \"2025-07-01\"\nvalid_until = \"2026-02-01\"\nprices = {{ flat = 0.6 }}\nrows = [{{ months = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12], hours = [0, 24], period = \"flat\" }}]\n"
            ),
            vec!["\"older\"", "overlaps", "golden 2026"],
        ),
    ];
    for (text, needles) in cases {
        let config = config_from(&text).unwrap();
        let err = tariff_cost(&store, &inv, &config, WINDOW)
            .await
            .unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, AnalyticsError::Tariff { .. }), "{msg}");
        for needle in needles {
            assert!(msg.contains(needle), "{needle:?} not in: {msg}");
        }
    }

    // No tariff configured at all.
    let err = tariff_cost(&store, &inv, &AnalyticsConfig::default(), WINDOW)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no tariff"), "{err}");

    // The older tariff alone, which ends before the data: the first unpriced hour named.
    let older = TARIFF.replace(
        "valid_from = \"2026-01-01\"",
        "valid_until = \"2026-02-01\"",
    );
    let err = tariff_cost(&store, &inv, &config_from(&older).unwrap(), WINDOW)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("2026-02-01 00:00 (local)"),
        "{err}"
    );

    // A meter without a role: every computation refuses it by name.
    let mut inv = inventory();
    inv.meters[3].role = None;
    let c = config();
    let errors = [
        tariff_cost(&store, &inv, &c, WINDOW).await.unwrap_err(),
        demand(&store, &inv, &c, WINDOW).await.unwrap_err(),
        carbon_water(&store, &inv, &c, WINDOW).await.unwrap_err(),
    ];
    for err in errors {
        assert!(
            matches!(err, AnalyticsError::MeterWithoutRole { ref meter, .. } if meter == "c2-it"),
            "{err}"
        );
    }

    // No UPS output meter in c1: no category 0 PUE there or for the park, said by
    // name; the peak demand is still measured.
    let mut inv = inventory();
    inv.meters[1].role = Some(MeterRole::ZoneIt);
    let report = demand(&store, &inv, &c, WINDOW).await.unwrap();
    let c1 = &report.instant_centres[0];
    assert_eq!(c1.pue_at_peak, None);
    let reason = c1.reason.as_deref().unwrap();
    assert!(
        reason.contains("c1") && reason.contains("ups_output"),
        "{reason}"
    );
    assert!(report.instant_centres[1].pue_at_peak.is_some());
    assert_eq!(report.instant_park.pue_at_peak, None);
    assert!(report
        .instant_park
        .reason
        .as_deref()
        .unwrap()
        .contains("c1"));
    assert!(close(report.park.peak_kw.unwrap(), 2300.0));

    // A water meter in a centre the site does not have; a demand interval that does not
    // divide a day; an empty range.
    let text = TARIFF.replace("centre = \"c2\"", "centre = \"c9\"");
    let err = carbon_water(&store, &inventory(), &config_from(&text).unwrap(), WINDOW)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("c9"), "{err}");
    let text = format!("{TARIFF}\n[analytics.demand]\ninterval = \"7m\"\n");
    let err = demand(&store, &inventory(), &config_from(&text).unwrap(), WINDOW)
        .await
        .unwrap_err();
    assert!(matches!(err, AnalyticsError::Config(_)), "{err}");
    let err = tariff_cost(&store, &inventory(), &config(), T0..T0)
        .await
        .unwrap_err();
    assert!(matches!(err, AnalyticsError::EmptyRange { .. }), "{err}");
    store.shutdown().await.unwrap();
}
