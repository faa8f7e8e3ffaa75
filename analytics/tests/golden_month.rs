//! Golden test: one month of hourly counter readings with every counter pitfall, read
//! back through the `Store` interface (embedded store), against answers computed by
//! hand.
//!
//! # The data
//!
//! January 2026 in the park's local time (UTC+8): hours h = 0..=744 from
//! 2026-01-01T00:00+08:00 (h = 744 is 2026-02-01T00:00, the reading that closes the
//! month's last hour). One centre `c1` with two meters, read on the hour;
//! `max_sample_gap` = 2 h (one missing or dropped hourly reading is tolerated: the
//! counter difference across it is still that time's energy; two are not).
//!
//! Facility meter `fac` (role `incoming`, uint32 Wh register: wraps at
//! W = 4 294 967.296 kWh, rated 200 kW): 150 kW for h < 372, 160 kW after.
//! It starts at S = W - 150 x 100.5 = 4 279 892.296 kWh, so it wraps inside hour 100.
//!
//! - h = 100: 4 294 892.296; h = 101: 75.000 -> **rollover**: 75 + (W - 4 294 892.296)
//!   = 75 + 75 = 150 kWh, counted.
//! - h = 300: **0 written during an outage**, h = 301 back at S + 150 x 301 - W:
//!   the zero is dropped, hours 299..301 (2 h, not a gap) count 2 x 150 = 300 kWh.
//! - h = 500 and 501 **missing**: the interval 499..502 is 3 h > 2 h, a **gap**:
//!   3 x 160 = 480 kWh reported as uncovered, not counted.
//!
//! IT meter `it` (role `ups_output`, float register, rated 150 kW): 100 kW for
//! h < 372, 120 kW after. Reads 50 000 + 100 h up to h = 199, then is **reset** at
//! h = 199.6: h = 200 reads 40, and 40 + 100 (h - 200) up to h = 372 (17 240), then
//! 17 240 + 120 (h - 372).
//!
//! - h = 200: a drop of more than 20 % -> reset; the rule takes the new reading as
//!   the interval's energy: 40 kWh counted for hour 199..200 (the true 100 is not
//!   knowable from the counter: 60 kWh are lost, and the event says so).
//! - h = 600: written 0.5 kWh *below* h = 599's reading (44 479.5 instead of
//!   44 600): a small drop (< 20 %): dropped as noise; hours 599..601 count 240 kWh.
//!
//! # By hand
//!
//! Facility energy = 372 x 150 + 372 x 160 - 480 (gap) = 55 800 + 59 520 - 480
//! = **114 840 kWh**; uncovered **480 kWh**; coverage = 741 / 744 = **0.995968**.
//!
//! IT energy = 372 x 100 + 372 x 120 - 60 (reset) = 37 200 + 44 640 - 60
//! = **81 780 kWh**; coverage **1**.
//!
//! PUE uses the time both meters cover: 741 h (the facility gap removed from both).
//! IT over that time = 81 780 - 3 x 120 = 81 420 kWh; facility = 114 840 kWh.
//! PUE = 114 840 / 81 420 = **1.410464**; coverage **0.995968**. Category 1 (IT
//! at the UPS output). Grade: GB 40879 grade 3 (<= 1.50) met, grades 1 and 2 and
//! both policy targets (1.3, 1.25) not met.
//!
//! Split (no cooling or other meters in this centre): power losses = 114 840 -
//! 81 420 = 33 420 kWh, PLF = 33 420 / 81 420 = **0.410464**, CLF = 0.
//!
//! Days: 2026-01-01 (h 0..24): 3 600 / 2 400 = **1.5**. 2026-01-09 (h 192..216, the
//! reset): IT = 2 400 - 60 = 2 340, PUE = 3 600 / 2 340 = **1.538462**, coverage 1.
//! 2026-01-21 (h 480..504, the gap): common time 21 h, 21 x 160 / (21 x 120) =
//! **1.333333**, coverage 21 / 24 = **0.875**.

use std::time::Duration;

use tidewatch_analytics::counters::{CounterEventKind, CounterSpec};
use tidewatch_analytics::{
    energy_pue, AnalyticsConfig, AnalyticsError, Inventory, ItSource, MeterRef, PueCategory,
};
use tidewatch_devices::{DeviceKind, MeterRole};
use tidewatch_model::Point;
use tidewatch_storage::embedded::EmbeddedConfig;
use tidewatch_storage::store::{Store, StoreConfig};

/// 2026-01-01T00:00:00+08:00, Unix ns.
const T0: i64 = 1_767_196_800_000_000_000;
const H: i64 = 3_600_000_000_000;
const WRAP: f64 = 4_294_967.296;
const S: f64 = WRAP - 150.0 * 100.5;

fn facility(h: i64) -> Option<f64> {
    if h == 500 || h == 501 {
        return None;
    }
    if h == 300 {
        return Some(0.0);
    }
    let e = if h <= 372 {
        150.0 * h as f64
    } else {
        55_800.0 + 160.0 * (h - 372) as f64
    };
    let raw = S + e;
    Some(if raw >= WRAP { raw - WRAP } else { raw })
}

fn it(h: i64) -> f64 {
    match h {
        ..=199 => 50_000.0 + 100.0 * h as f64,
        600 => it(599) - 0.5,
        200..=372 => 40.0 + 100.0 * (h - 200) as f64,
        _ => 17_240.0 + 120.0 * (h - 372) as f64,
    }
}

fn meter(id: &str, role: MeterRole, counter: CounterSpec) -> MeterRef {
    MeterRef {
        id: id.into(),
        centre: "c1".into(),
        zone: None,
        role: Some(role),
        kind: DeviceKind::EnergyMeter,
        measurement: "energy_meter".into(),
        field: "import_kwh".into(),
        counter,
    }
}

fn inventory() -> Inventory {
    Inventory {
        park: "golden".into(),
        utc_offset_hours: 8,
        centres: vec!["c1".into()],
        meters: vec![
            meter(
                "fac",
                MeterRole::Incoming,
                CounterSpec::register(32, 0.001).rated(200.0),
            ),
            meter(
                "it",
                MeterRole::UpsOutput,
                CounterSpec::default().rated(150.0),
            ),
        ],
    }
}

fn config() -> AnalyticsConfig {
    let mut config = AnalyticsConfig::default();
    config.counters.max_sample_gap = Duration::from_secs(2 * 3600);
    config
}

async fn golden_store(dir: &std::path::Path) -> Store {
    let store = Store::open(StoreConfig::Embedded(EmbeddedConfig::in_dir(dir)))
        .await
        .unwrap();
    let mut points = Vec::new();
    for h in 0..=744 {
        let t = T0 + h * H;
        let point = |id: &str, role: &str, kwh: f64| {
            Point::new("energy_meter", t)
                .tag("device", id)
                .tag("centre", "c1")
                .tag("role", role)
                .field("import_kwh", kwh)
        };
        if let Some(kwh) = facility(h) {
            points.push(point("fac", "incoming", kwh));
        }
        points.push(point("it", "ups_output", it(h)));
    }
    let written = store.write(points).await.unwrap();
    assert_eq!((written.points, written.refused), (2 * 745 - 2, 0));
    store
}

fn close(actual: f64, expected: f64) -> bool {
    // 4 significant digits, and then some.
    (actual - expected).abs() <= 1e-6 * expected.abs().max(1.0)
}

#[tokio::test]
async fn a_month_with_every_counter_pitfall_matches_the_hand_computation() {
    let dir = tempfile::tempdir().unwrap();
    let store = golden_store(dir.path()).await;
    let report = energy_pue(&store, &inventory(), &config(), T0..T0 + 744 * H)
        .await
        .unwrap();

    assert_eq!(report.category, PueCategory::UpsOutput);
    assert!(report.category_text.contains("category 1"));
    let c1 = &report.centres[0];
    let fac = c1.meters.iter().find(|m| m.meter == "fac").unwrap();
    let itm = c1.meters.iter().find(|m| m.meter == "it").unwrap();
    assert!(close(fac.energy_kwh, 114_840.0), "{}", fac.energy_kwh);
    assert!(close(fac.uncovered_kwh, 480.0), "{}", fac.uncovered_kwh);
    assert!(close(fac.coverage, 741.0 / 744.0), "{}", fac.coverage);
    assert!(close(itm.energy_kwh, 81_780.0), "{}", itm.energy_kwh);
    assert_eq!(itm.coverage, 1.0);

    let kinds = |m: &tidewatch_analytics::counters::MeterEnergy| {
        m.events
            .iter()
            .map(|e| (e.kind, (e.time_ns - T0) / H))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        kinds(fac),
        [
            (CounterEventKind::Rollover, 101),
            (CounterEventKind::OutageZero, 300),
            (CounterEventKind::Gap, 502)
        ]
    );
    assert_eq!(
        kinds(itm),
        [
            (CounterEventKind::Reset, 200),
            (CounterEventKind::SmallDrop, 600)
        ]
    );
    let reset = itm.events[0];
    assert_eq!(reset.counted_kwh, Some(40.0));
    assert_eq!(reset.previous_kwh, Some(50_000.0 + 19_900.0));

    let total = &c1.total;
    assert!(
        close(total.facility_kwh, 114_840.0),
        "{}",
        total.facility_kwh
    );
    assert!(close(total.it_kwh, 81_420.0), "{}", total.it_kwh);
    assert!(close(total.pue.unwrap(), 1.410464), "{:?}", total.pue);
    assert!(close(total.coverage, 0.995968), "{}", total.coverage);
    assert!(close(c1.split.plf.unwrap(), 0.410464));
    assert_eq!(c1.split.clf, Some(0.0));
    assert_eq!(c1.grade.as_deref(), Some("GB 40879-2021 grade 3"));
    let met: Vec<(f64, bool)> = c1.limits.iter().map(|l| (l.max_pue, l.met)).collect();
    assert_eq!(
        met,
        [
            (1.2, false),
            (1.3, false),
            (1.5, true),
            (1.3, false),
            (1.25, false)
        ]
    );

    assert_eq!(c1.monthly.len(), 1);
    assert_eq!(c1.monthly[0].label, "2026-01");
    assert_eq!(c1.monthly[0].pue, total.pue);
    assert_eq!(c1.daily.len(), 31);
    let day = |label: &str| c1.daily.iter().find(|d| d.label == label).unwrap();
    assert!(close(day("2026-01-01").pue.unwrap(), 1.5));
    assert!(close(day("2026-01-09").pue.unwrap(), 1.538462));
    assert_eq!(day("2026-01-09").coverage, 1.0);
    assert!(close(day("2026-01-21").pue.unwrap(), 1.333333));
    assert!(close(day("2026-01-21").coverage, 0.875));

    // One centre: the park is the centre.
    assert_eq!(report.park.total.pue, total.pue);
    store.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_range_with_no_data_has_zero_coverage_and_no_pue() {
    let dir = tempfile::tempdir().unwrap();
    let store = golden_store(dir.path()).await;
    // A month later: nothing stored.
    let from = T0 + 2000 * H;
    let report = energy_pue(&store, &inventory(), &config(), from..from + 744 * H)
        .await
        .unwrap();
    for scope in report.centres.iter().chain([&report.park]) {
        assert_eq!(scope.total.pue, None);
        assert_eq!(scope.total.coverage, 0.0);
        assert_eq!(scope.split.clf, None);
        assert_eq!(scope.grade, None);
        assert!(scope
            .daily
            .iter()
            .all(|d| d.pue.is_none() && d.coverage == 0.0));
    }
    // An empty store (no measurement at all) is the same.
    let empty_dir = tempfile::tempdir().unwrap();
    let empty = Store::open(StoreConfig::Embedded(EmbeddedConfig::in_dir(
        empty_dir.path(),
    )))
    .await
    .unwrap();
    let report = energy_pue(&empty, &inventory(), &config(), T0..T0 + H)
        .await
        .unwrap();
    assert_eq!(report.park.total.pue, None);
    assert_eq!(report.park.total.coverage, 0.0);
}

#[tokio::test]
async fn bad_input_gives_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(StoreConfig::Embedded(EmbeddedConfig::in_dir(dir.path())))
        .await
        .unwrap();

    // An empty (or reversed) range.
    let err = energy_pue(&store, &inventory(), &config(), T0..T0)
        .await
        .unwrap_err();
    assert!(matches!(err, AnalyticsError::EmptyRange { .. }), "{err}");

    // IT energy asked from rack PDUs, in a centre without any.
    let mut config = config();
    config.pue.it_source = ItSource::RackPdu;
    let err = energy_pue(&store, &inventory(), &config, T0..T0 + H)
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(err, AnalyticsError::NoMeterForRole { .. }),
        "{text}"
    );
    assert!(text.contains("c1") && text.contains("IT energy"), "{text}");
    assert!(text.contains("fac (incoming)"), "{text}");

    // A facility role no meter has.
    let mut config = self::config();
    config.pue.facility_roles = vec![MeterRole::UpsInput];
    let err = energy_pue(&store, &inventory(), &config, T0..T0 + H)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("ups_input"), "{err}");

    // A meter with no role at all.
    let mut inv = inventory();
    inv.meters[1].role = None;
    let err = energy_pue(&store, &inv, &self::config(), T0..T0 + H)
        .await
        .unwrap_err();
    assert!(
        matches!(err, AnalyticsError::MeterWithoutRole { ref meter, .. } if meter == "it"),
        "{err}"
    );

    // Nonsense thresholds.
    let mut config = self::config();
    config.counters.reset_drop_ratio = 0.0;
    let err = energy_pue(&store, &inventory(), &config, T0..T0 + H)
        .await
        .unwrap_err();
    assert!(matches!(err, AnalyticsError::Config(_)), "{err}");
}
