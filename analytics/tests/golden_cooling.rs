//! Golden test of the cooling analysis: an hour of CDU, room and PDU samples through
//! the embedded store, against answers computed by hand.
//!
//! # The data
//!
//! Window: T0 = 2026-01-01T00:00+08:00 to T0 + 60 min. Samples every 10 minutes at
//! t = 0, 10, ..., 60 min (t = 60 lies outside the window but closes its last
//! interval). `max_sample_gap` = 15 min, `interval` = 30 min, `trend_min_span` = 30 min.
//!
//! Loop 1, `c1-m1-cdu`, **water**, class limit 32 C (W32), rack PDUs `m1-a`, `m1-b`:
//!
//! | t (min) | 0 | 10 | 20 | 30 | 40 | 50 | 60 |
//! |---|---|---|---|---|---|---|---|
//! | supply sensors 1 / 2 / 3 | 35.9 / 36.0 / 38.0 | same | same | same | same | same | same |
//! | return | 46 | 46 | 46 | 46 | 46 | 46 | 46 |
//! | flow (L/min) | 120 | 120 | 120 | 120 | **missing** | 60 | 60 |
//! | primary supply | 30 | 30 | 30 | 30 | 31 | 32.5 | 33 |
//! | room dew point | 20 | 20 | 25 | 34.5 | 36.5 | 33 | 30 |
//! | PDU a (kWh) | 100 | 108 | 116 | 124 | 132 | 140 | 148 |
//! | PDU b (kWh) | 200 | 208 | **missing** | 224 | 232 | 240 | 248 |
//!
//! Supply = the median of the three sensors = **36.0** (sensor 3 reads 2 K high).
//!
//! **Heat.** Mean loop temperature (36 + 46) / 2 = 41 C: water density 997 - 0.32 x
//! (41 - 25) = 991.88 kg/m3, cp 4.18. At 120 L/min: 991.88 x 120 / 60 000 x 4.18 x 10
//! = 1.98376 x 41.8 = **82.921168 kW**; at 60 L/min **41.460584 kW**. The sample at 40
//! has no flow, so 30 -> 50 (20 min > 15) is a gap: covered 0..30 and 50..60 = 40 min,
//! coverage **2/3**. Energy = 82.921168 x 0.5 + 41.460584 / 6 = 41.460584 + 6.910097
//! = **48.370681 kWh**; mean 48.370681 / (2/3 h) = **72.556022 kW**; mean flow (120 x
//! 30 + 60 x 10) / 40 = **105 L/min**; delta T **10 K**. Samples in the window 6,
//! complete 5, expected 60 / 10 = 6.
//!
//! **Capture ratio.** IT: 48 kW per PDU (8 kWh per 10 min). PDU b's missing reading
//! makes 10 -> 30 a 20-minute gap (counter `max_sample_gap` 15 min). Time everything
//! covers: heat (0..30, 50..60) and b (0..10, 30..60) -> 0..10 and 50..60 = 20 min,
//! coverage **1/3**. Liquid = (82.921168 + 41.460584) / 6 = **20.730292 kWh**; IT =
//! 96 kW x 1/3 h = **32 kWh**; ratio = **0.647822**. Interval 0..30: 0..10 only,
//! 13.820195 / 16 = **0.863762**; interval 30..60: 50..60 only, 6.910097 / 16 =
//! **0.431881**; each coverage 1/3.
//!
//! **Approach** (36 - primary): 6, 6, 6, 6, 5, 3.5, 3 - covered 0..60 (the sample at 40
//! has both temperatures). Trapezoids, K x min: 60 + 60 + 60 + 55 + 42.5 + 32.5 = 310,
//! mean 310 / 60 = **5.166667 K**; min **3** (at the window's end), max **6**.
//! Slope over the samples in the window (t = 0..50, y = 6, 6, 6, 6, 5, 3.5): mean t 25,
//! Sxx = 625 + 225 + 25 + 25 + 225 + 625 = 1750, Sxy = -150 - 90 - 30 + 30 + 75 + 87.5
//! = -77.5: -77.5 / 1750 K/min x 1440 = **-63.771429 K/day** (the facility water warms
//! while the load halves).
//!
//! **Dew-point margin** (36 - dew point): 16, 16, 11, 1.5, -0.5, 3, 6; min **-0.5 K**.
//! Below 2 K: 20 -> 30 from 11 to 1.5 crosses 2 after 9 / 9.5 of the 10 min, below
//! for 0.526316 min; 30 -> 40 all 10 min; 40 -> 50 from -0.5 to 3 crosses 2 after
//! 2.5 / 3.5, below 7.142857 min: **17.669173 min = 1060.150376 s**. At or below 0 K:
//! 30 -> 40 from 1.5 to -0.5 after 0.75, 2.5 min; 40 -> 50 below for 0.5 / 3.5 x 10 =
//! 1.428571 min: **3.928571 min = 235.714286 s**. Coverage **1**.
//!
//! **Class W32** (primary supply): 40 -> 50 from 31 to 32.5 crosses 32 after 2/3:
//! above 3.333333 min; 50 -> 60 above 10 min: **13.333333 min = 800 s**; highest
//! **33 C**. Coverage 1.
//!
//! Loop 2, `c1-m2-cdu`, **PG25**, class 32, **no flow sensor** (the field never
//! reported), no dew-point sensor but one rack inlet at 25 C and 50 % RH: supply 36
//! (sensors 36.0 / 36.0, sensor 3 not fitted), return 44, primary 30 at every sample.
//! Heat: **None**, coverage 0, the reason names `secondary_flow_lpm`; capture ratio
//! None. Approach **6 K**. Room dew point by Magnus (a = 17.625, b = 243.04):
//! gamma = ln 0.5 + 17.625 x 25 / 268.04 = -0.693147 + 1.643878 = 0.950731,
//! dew point = 243.04 x 0.950731 / (17.625 - 0.950731) = **13.8577 C**, margin
//! **22.1423 K**, never below 2 K.

use std::time::Duration;

use tidewatch_analytics::cooling::points::{HEAT_CAPTURE, LIQUID_COOLING};
use tidewatch_analytics::cooling::{
    cdu_samples, cooling_points, cooling_report, CoolingInventory, CoolingLoop, DewPointSource,
};
use tidewatch_analytics::counters::CounterSpec;
use tidewatch_analytics::{AnalyticsConfig, AnalyticsError, MeterRef};
use tidewatch_devices::{Coolant, DeviceKind};
use tidewatch_model::{FieldValue, Point};
use tidewatch_storage::embedded::EmbeddedConfig;
use tidewatch_storage::store::{Store, StoreConfig};

/// 2026-01-01T00:00:00+08:00, Unix ns.
const T0: i64 = 1_767_196_800_000_000_000;
const MIN: i64 = 60_000_000_000;
const WINDOW: std::ops::Range<i64> = T0..T0 + 60 * MIN;

fn pdu(id: &str, zone: &str) -> MeterRef {
    MeterRef {
        id: id.into(),
        centre: "c1".into(),
        zone: Some(zone.into()),
        role: None,
        kind: DeviceKind::RackPdu,
        measurement: "rack_pdu".into(),
        field: "energy_kwh".into(),
        counter: CounterSpec::default(),
    }
}

fn inventory() -> CoolingInventory {
    CoolingInventory {
        park: "golden".into(),
        loops: vec![
            CoolingLoop {
                cdu: "c1-m1-cdu".into(),
                centre: "c1".into(),
                zone: "m1".into(),
                coolant: Coolant::Water,
                class_limit_c: 32.0,
                it_meters: vec![pdu("m1-a", "m1"), pdu("m1-b", "m1")],
            },
            CoolingLoop {
                cdu: "c1-m2-cdu".into(),
                centre: "c1".into(),
                zone: "m2".into(),
                coolant: Coolant::Pg25,
                class_limit_c: 32.0,
                it_meters: vec![pdu("m2-a", "m2")],
            },
        ],
    }
}

fn config() -> AnalyticsConfig {
    let mut c = AnalyticsConfig::default();
    c.cooling.max_sample_gap = Duration::from_secs(15 * 60);
    c.cooling.interval = Duration::from_secs(30 * 60);
    c.cooling.trend_min_span = Duration::from_secs(30 * 60);
    c
}

fn cdu_point(id: &str, zone: &str, t: i64) -> Point {
    Point::new("cdu", t)
        .tag("device", id)
        .tag("centre", "c1")
        .tag("zone", zone)
        .tag("model", "lc-cdu")
}

/// The points of the table in the module docs.
fn points() -> Vec<Point> {
    let flow = [
        Some(120.0),
        Some(120.0),
        Some(120.0),
        Some(120.0),
        None,
        Some(60.0),
        Some(60.0),
    ];
    let primary = [30.0, 30.0, 30.0, 30.0, 31.0, 32.5, 33.0];
    let dew = [20.0, 20.0, 25.0, 34.5, 36.5, 33.0, 30.0];
    let mut out = Vec::new();
    for k in 0..7 {
        let t = T0 + k as i64 * 10 * MIN;
        let mut p = cdu_point("c1-m1-cdu", "m1", t)
            .field("secondary_supply_temp_1", 35.9)
            .field("secondary_supply_temp_2", 36.0)
            .field("secondary_supply_temp_3", 38.0)
            .field("secondary_return_temp", 46.0)
            .field("primary_supply_temp", primary[k])
            .field("pump_1_speed_pct", 60.0);
        if let Some(f) = flow[k] {
            p = p.field("secondary_flow_lpm", f);
        }
        out.push(p);
        out.push(
            Point::new("dew_point", t)
                .tag("sensor", "c1-m1-dewpoint")
                .tag("centre", "c1")
                .tag("zone", "m1")
                .field("dew_point_c", dew[k]),
        );
        out.push(
            Point::new("rack_pdu", t)
                .tag("device", "m1-a")
                .field("energy_kwh", 100.0 + 8.0 * k as f64),
        );
        if k != 2 {
            out.push(
                Point::new("rack_pdu", t)
                    .tag("device", "m1-b")
                    .field("energy_kwh", 200.0 + 8.0 * k as f64),
            );
        }
        // Loop 2: no flow sensor, two supply sensors, a rack inlet instead of a
        // dew-point sensor.
        out.push(
            cdu_point("c1-m2-cdu", "m2", t)
                .field("secondary_supply_temp_1", 36.0)
                .field("secondary_supply_temp_2", 36.0)
                .field("secondary_return_temp", 44.0)
                .field("primary_supply_temp", 30.0),
        );
        out.push(
            Point::new("rack_inlet", t)
                .tag("sensor", "c1-m2-r01-inlet")
                .tag("centre", "c1")
                .tag("zone", "m2")
                .tag("rack", "r01")
                .field("temperature_c", 25.0)
                .field("humidity_pct", 50.0),
        );
        out.push(
            Point::new("rack_pdu", t)
                .tag("device", "m2-a")
                .field("energy_kwh", 50.0 + 6.0 * k as f64),
        );
    }
    out
}

async fn store_with(points: Vec<Point>, dir: &std::path::Path) -> Store {
    let store = Store::open(StoreConfig::Embedded(EmbeddedConfig::in_dir(dir)))
        .await
        .unwrap();
    let n = points.len();
    let written = store.write(points).await.unwrap();
    assert_eq!((written.points, written.refused), (n, 0));
    store
}

fn close(actual: f64, expected: f64, what: &str) {
    assert!(
        (actual - expected).abs() < 1e-5,
        "{what}: {actual} vs {expected} by hand"
    );
}

fn some(value: Option<f64>, expected: f64, what: &str) {
    close(
        value.unwrap_or_else(|| panic!("{what}: None")),
        expected,
        what,
    );
}

#[tokio::test]
async fn an_hour_of_samples_against_the_hand_computation() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with(points(), dir.path()).await;
    let report = cooling_report(&store, &inventory(), &config(), WINDOW)
        .await
        .unwrap();
    assert_eq!(report.loops.len(), 2);
    let m1 = &report.loops[0];
    assert_eq!((m1.cdu.as_str(), m1.coolant), ("c1-m1-cdu", Coolant::Water));

    let h = &m1.heat;
    some(h.energy_kwh, 48.370681, "heat energy");
    some(h.mean_kw, 72.556022, "mean heat");
    some(h.max_kw, 82.921168, "max heat");
    some(h.mean_flow_lpm, 105.0, "mean flow");
    some(h.mean_delta_t_k, 10.0, "delta T");
    close(h.coverage, 2.0 / 3.0, "heat coverage");
    assert_eq!(
        (h.samples, h.complete_samples, h.expected_samples),
        (6, 5, Some(6))
    );
    assert_eq!(h.reason, None);

    let c = &m1.capture;
    some(c.total.ratio, 0.647822, "capture ratio");
    close(c.total.liquid_kwh, 20.730292, "liquid kWh");
    close(c.total.it_kwh, 32.0, "IT kWh");
    close(c.total.coverage, 1.0 / 3.0, "capture coverage");
    assert_eq!(c.intervals.len(), 2);
    some(c.intervals[0].ratio, 0.863762, "capture 0..30");
    some(c.intervals[1].ratio, 0.431881, "capture 30..60");
    assert_eq!(c.intervals[1].window_ns, (T0 + 30 * MIN, T0 + 60 * MIN));
    for iv in &c.intervals {
        close(iv.coverage, 1.0 / 3.0, "interval coverage");
        close(iv.it_kwh, 16.0, "interval IT");
    }

    let a = &m1.approach;
    some(a.mean_k, 5.166667, "approach mean");
    some(a.min_k, 3.0, "approach min");
    some(a.max_k, 6.0, "approach max");
    some(a.slope_k_per_day, -63.771429, "approach slope");
    close(a.coverage, 1.0, "approach coverage");

    let d = &m1.dew_point;
    assert_eq!(d.source, Some(DewPointSource::DewPointSensor));
    some(d.min_margin_k, -0.5, "min margin");
    some(d.below_warning_s, 1060.150376, "below 2 K");
    some(d.below_critical_s, 235.714286, "at or below 0 K");
    close(d.coverage, 1.0, "dew coverage");

    let k = &m1.class_limit;
    assert_eq!(k.class, "W32");
    some(k.above_s, 800.0, "above the class limit");
    some(k.max_supply_c, 33.0, "highest primary supply");

    // Loop 2: a CDU without a flow sensor.
    let m2 = &report.loops[1];
    assert_eq!(m2.coolant, Coolant::Pg25);
    assert_eq!((m2.heat.energy_kwh, m2.heat.coverage), (None, 0.0));
    let reason = m2.heat.reason.as_deref().unwrap();
    assert!(
        reason.contains("c1-m2-cdu") && reason.contains("secondary_flow_lpm"),
        "{reason}"
    );
    assert_eq!(m2.capture.total.ratio, None);
    assert!(m2
        .capture
        .reason
        .as_deref()
        .unwrap()
        .contains("no liquid heat"));
    some(m2.approach.mean_k, 6.0, "m2 approach");
    assert_eq!(m2.dew_point.source, Some(DewPointSource::RackInletMagnus));
    let margin = m2.dew_point.min_margin_k.unwrap();
    assert!((margin - 22.1423).abs() < 1e-3, "{margin}");
    assert_eq!(m2.dew_point.below_warning_s, Some(0.0));

    // Per sample.
    let samples = cdu_samples(&store, &inventory().loops[0], &config().cooling, WINDOW)
        .await
        .unwrap();
    assert_eq!(samples.samples.len(), 6);
    some(samples.samples[0].heat_kw, 82.921168, "heat at 0");
    some(samples.samples[0].supply_c, 36.0, "median supply");
    assert_eq!(samples.samples[4].heat_kw, None, "no flow at 40");
    some(samples.samples[4].dew_point_margin_k, -0.5, "margin at 40");

    // Derived points: values that exist, no field for what cannot be computed.
    let points = cooling_points(&report, "1h", "30m");
    let summary: Vec<&Point> = points
        .iter()
        .filter(|p| p.measurement() == LIQUID_COOLING)
        .collect();
    assert_eq!(summary.len(), 2);
    let f = |p: &Point, name: &str| match p.field_value(name) {
        Some(FieldValue::Float(v)) => Some(*v),
        _ => None,
    };
    assert_eq!(summary[0].timestamp_ns(), WINDOW.end);
    assert_eq!(summary[0].tag_value("zone"), Some("m1"));
    assert_eq!(summary[0].tag_value("period"), Some("1h"));
    some(f(summary[0], "heat_kwh"), 48.370681, "heat_kwh field");
    some(f(summary[0], "class_above_s"), 800.0, "class_above_s field");
    assert_eq!(f(summary[1], "heat_kwh"), None);
    assert_eq!(f(summary[1], "capture_ratio"), None);
    some(f(summary[1], "heat_coverage"), 0.0, "coverage written");
    let capture: Vec<&Point> = points
        .iter()
        .filter(|p| p.measurement() == HEAT_CAPTURE && p.tag_value("zone") == Some("m1"))
        .collect();
    assert_eq!(capture.len(), 2);
    some(f(capture[1], "capture_ratio"), 0.431881, "interval point");
    assert_eq!(capture[1].timestamp_ns(), T0 + 30 * MIN);
    store.shutdown().await.unwrap();
}

#[tokio::test]
async fn no_data_and_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with(points(), dir.path()).await;
    // A day later: nothing in the range. Coverage 0, None with reasons, never NaN.
    let later = WINDOW.start + 24 * 60 * MIN..WINDOW.end + 24 * 60 * MIN;
    let report = cooling_report(&store, &inventory(), &config(), later)
        .await
        .unwrap();
    for lp in &report.loops {
        assert_eq!(lp.heat.coverage, 0.0);
        assert_eq!(lp.heat.energy_kwh, None);
        assert!(lp.heat.reason.as_deref().unwrap().contains("no cdu points"));
        assert_eq!(lp.capture.total.ratio, None);
        assert_eq!(lp.approach.mean_k, None);
        assert_eq!(lp.dew_point.min_margin_k, None);
        assert_eq!(lp.dew_point.below_warning_s, None);
        assert!(lp.dew_point.reason.is_some());
        assert_eq!(lp.class_limit.above_s, None);
        assert!(lp.capture.intervals.iter().all(|i| i.ratio.is_none()));
        let json = format!("{lp:?}");
        assert!(!json.contains("NaN"), "{json}");
    }
    let points = cooling_points(&report, "1h", "30m");
    assert!(points.iter().all(|p| p
        .fields()
        .iter()
        .all(|(_, v)| !matches!(v, FieldValue::Float(x) if !x.is_finite()))));

    // An empty store, an unknown CDU: the same, not an error.
    let empty_dir = tempfile::tempdir().unwrap();
    let empty = store_with(Vec::new(), empty_dir.path()).await;
    let report = cooling_report(&empty, &inventory(), &config(), WINDOW)
        .await
        .unwrap();
    assert!(report.loops.iter().all(|l| l.heat.coverage == 0.0));

    // Redundant sensors that disagree (two sensors, 3 K apart): no supply, a reason.
    let dir2 = tempfile::tempdir().unwrap();
    let disagreeing: Vec<Point> = (0..7)
        .map(|k| {
            cdu_point("c1-m1-cdu", "m1", T0 + k * 10 * MIN)
                .field("secondary_supply_temp_1", 36.0)
                .field("secondary_supply_temp_2", 39.0)
                .field("secondary_return_temp", 46.0)
                .field("secondary_flow_lpm", 100.0)
        })
        .collect();
    let store2 = store_with(disagreeing, dir2.path()).await;
    let report = cooling_report(&store2, &inventory(), &config(), WINDOW)
        .await
        .unwrap();
    let reason = report.loops[0].heat.reason.as_deref().unwrap();
    assert!(reason.contains("never agreeing"), "{reason}");
    assert!(report.loops[0]
        .class_limit
        .reason
        .as_deref()
        .unwrap()
        .contains("primary_supply_temp"));

    // An empty range and nonsense settings are errors naming the cause.
    let err = cooling_report(&store, &inventory(), &config(), WINDOW.start..WINDOW.start)
        .await
        .unwrap_err();
    assert!(matches!(err, AnalyticsError::EmptyRange { .. }), "{err}");
    let mut bad = config();
    bad.cooling.water.density_kg_m3 = f64::NAN;
    let err = cooling_report(&store, &inventory(), &bad, WINDOW)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("cooling.water"), "{err}");
    for s in [&store, &empty, &store2] {
        s.shutdown().await.unwrap();
    }
}
