//! The cooling analysis of a simulated day of the Qingdao park's liquid-cooled centre,
//! read through the `Store` interface from an embedded store, against the simulator's
//! exact figures, with a condensation-risk fault injected in one micro-module.
//!
//! 2026-01-01 (local), fast mode at 60 s steps: every CDU's points, the rooms'
//! dew-point sensors and the rack PDUs' kWh counters of dc2 (8 micro-modules, 6 on
//! water and 2 on PG25, two of them with only two supply sensors). Ground truth, per
//! step, from the plant itself: the heat each loop's liquid removed
//! (`Plant::zone_heat`, the value behind the CDU's registers before quantisation and
//! noise) and the IT power at the PDUs, each held over its step, as the simulator's own
//! counters integrate them.
//!
//! Tolerances, and why: the analysis sees what a collector sees, temperatures in
//! 0.1 C steps with 0.05 K of sensor noise and a 0.1 K offset between redundant
//! sensors, flows with 0.3 % noise, over a delta T of about 8 K; its coolant properties
//! are linear fits where the simulator uses its own curves. Heat removed over the day:
//! **within 1 %** of the truth per CDU. Capture ratio: **within 1 %** of the truth's
//! liquid / IT. (Measured: within 0.1 % on the water loops with three supply sensors;
//! -0.5 % on the two PG25 loops with two, whose mean sits 0.05 K above the true
//! supply because the second sensor reads 0.1 K high.)
//!
//! Fault: `condensation_risk` on `dc2-mm02-cdu` from 12:00 to 16:00: the room dew
//! point climbs in 20 minutes to the supply setpoint - 0.5 K (35.5 C). The dew-point
//! margin of mm02 must fall to about 0.5 K (between 0 and 1.2 K) and stay below 2 K for
//! most of the 4 hours (between 3.4 h and 4 h: the climb to 34 C takes about 19
//! minutes), never at or below 0 K; every other loop keeps more than 15 K.

use std::collections::HashMap;
use std::time::Instant;

use tidewatch_analytics::cooling::{cooling_report, CoolingInventory, DewPointSource};
use tidewatch_analytics::AnalyticsConfig;
use tidewatch_devices::{FaultKind, ProfileSet, Site};
use tidewatch_model::{FieldValue, Point};
use tidewatch_sim::bindings::bind_all;
use tidewatch_sim::fast::{capture_frame, frame_points, FastRun};
use tidewatch_sim::{FaultRequest, Plant};
use tidewatch_storage::embedded::EmbeddedConfig;
use tidewatch_storage::store::{Store, StoreConfig};

/// 2026-01-01T00:00:00+08:00, Unix ms.
const JAN_1_MS: i64 = 1_767_196_800_000;
const HOUR_MS: i64 = 3_600_000;
const STEP_S: f64 = 60.0;

/// The points of dc2 the analysis reads: CDUs, dew-point sensors, and the PDUs' kWh
/// counter alone (their other fields are not needed).
fn keep(points: Vec<Point>, out: &mut Vec<Point>) {
    for p in points {
        if p.tag_value("centre") != Some("dc2") {
            continue;
        }
        match p.measurement() {
            "cdu" | "dew_point" => out.push(p),
            "rack_pdu" => {
                let Some(energy) = p.field_value("energy_kwh").cloned() else {
                    continue;
                };
                let mut slim = Point::new("rack_pdu", p.timestamp_ns());
                for (k, v) in p.tags() {
                    slim.add_tag(k.clone(), v.clone());
                }
                slim.add_field("energy_kwh", energy);
                out.push(slim);
            }
            _ => {}
        }
    }
}

#[derive(Default, Clone, Copy)]
struct Truth {
    liquid_kwh: f64,
    it_kwh: f64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_simulated_day_against_the_simulators_heat() {
    let started = Instant::now();
    let profiles = ProfileSet::builtin().unwrap();
    let site = Site::builtin(&profiles).unwrap();
    let inventory = CoolingInventory::from_site(&site, &profiles).unwrap();
    assert_eq!(inventory.loops.len(), 8);
    let mut plant = Plant::new(&site, JAN_1_MS).unwrap();
    let bindings = bind_all(&plant, &profiles).unwrap();
    plant
        .inject(FaultRequest {
            kind: FaultKind::CondensationRisk,
            target: "dc2-mm02-cdu".into(),
            field: None,
            magnitude: None,
            start_unix_ms: Some(JAN_1_MS + 12 * HOUR_MS),
            duration_s: Some(4.0 * 3600.0),
        })
        .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(StoreConfig::Embedded(EmbeddedConfig::in_dir(dir.path())))
        .await
        .unwrap();
    // The plant names zones "<centre>-<zone>".
    let zones: Vec<(String, String)> = inventory
        .loops
        .iter()
        .map(|l| (l.zone.clone(), format!("{}-{}", l.centre, l.zone)))
        .collect();
    let mut truth: HashMap<String, Truth> = HashMap::new();
    let mut batch = Vec::new();
    let mut all = Vec::new();
    frame_points(
        &plant,
        &bindings,
        &capture_frame(&plant, &bindings),
        &mut all,
    );
    keep(std::mem::take(&mut all), &mut batch);
    // The day in quarters of 6 hours (one store write each); the last step's sample,
    // at midnight, closes the day's last interval.
    for quarter in 1..=4 {
        let until = JAN_1_MS + quarter * 6 * HOUR_MS;
        {
            let mut run = FastRun::new(&mut plant, &bindings);
            run.run(STEP_S, until, |plant, frame| {
                // Truth: each step's power held over the step (the interval
                // (t - step, t]), as the simulator's counters integrate it.
                for (zone, plant_zone) in &zones {
                    let (it_kw, liquid_kw, _) = plant.zone_heat(plant_zone).unwrap();
                    let t = truth.entry(zone.clone()).or_default();
                    t.liquid_kwh += liquid_kw * STEP_S / 3600.0;
                    t.it_kwh += it_kw * STEP_S / 3600.0;
                }
                frame_points(plant, &bindings, frame, &mut all);
                keep(std::mem::take(&mut all), &mut batch);
            });
        }
        let written = store.write(std::mem::take(&mut batch)).await.unwrap();
        assert_eq!(written.refused, 0);
    }
    println!("simulated and stored a day in {:.1?}", started.elapsed());

    let window = JAN_1_MS * 1_000_000..(JAN_1_MS + 24 * HOUR_MS) * 1_000_000;
    let config = AnalyticsConfig::default();
    let analysed = Instant::now();
    let report = cooling_report(&store, &inventory, &config, window)
        .await
        .unwrap();
    println!("cooling report in {:.1?}", analysed.elapsed());

    for lp in &report.loops {
        let t = truth[&lp.zone];
        let heat = lp.heat.energy_kwh.unwrap();
        let heat_error = (heat - t.liquid_kwh) / t.liquid_kwh;
        let ratio = lp.capture.total.ratio.unwrap();
        let true_ratio = t.liquid_kwh / t.it_kwh;
        let ratio_error = (ratio - true_ratio) / true_ratio;
        println!(
            "{} ({:?}): heat {heat:.1} kWh vs truth {:.1} ({:+.3} %), capture {ratio:.4} vs {true_ratio:.4} ({:+.3} %), \
             approach {:.2} K ({:+.3} K/day), margin min {:.2} K, below 2 K {:.0} s, class {} max {:.2} C",
            lp.cdu,
            lp.coolant,
            t.liquid_kwh,
            heat_error * 100.0,
            ratio_error * 100.0,
            lp.approach.mean_k.unwrap(),
            lp.approach.slope_k_per_day.unwrap(),
            lp.dew_point.min_margin_k.unwrap(),
            lp.dew_point.below_warning_s.unwrap(),
            lp.class_limit.class,
            lp.class_limit.max_supply_c.unwrap(),
        );
        assert!(heat_error.abs() < 0.01, "{}: heat {heat_error}", lp.cdu);
        assert!(
            ratio_error.abs() < 0.01,
            "{}: capture {ratio_error}",
            lp.cdu
        );
        assert_eq!(lp.heat.coverage, 1.0, "{}", lp.cdu);
        assert_eq!(lp.capture.total.coverage, 1.0, "{}", lp.cdu);
        assert_eq!(lp.capture.intervals.len(), 24);
        assert_eq!(lp.heat.expected_samples, Some(1440));
        assert_eq!(lp.heat.complete_samples, 1440);
        assert_eq!(lp.dew_point.source, Some(DewPointSource::DewPointSensor));
        // Facility water at 30 C +/- 0.2 against W32: never above.
        assert_eq!(lp.class_limit.class, "W32");
        assert_eq!(lp.class_limit.above_s, Some(0.0));
        assert_eq!(lp.dew_point.below_critical_s, Some(0.0));
        if lp.zone == "mm02" {
            let min = lp.dew_point.min_margin_k.unwrap();
            assert!((0.0..1.2).contains(&min), "mm02 margin {min}");
            let below = lp.dew_point.below_warning_s.unwrap() / 3600.0;
            assert!((3.4..4.0).contains(&below), "mm02 below 2 K for {below} h");
        } else {
            assert!(lp.dew_point.min_margin_k.unwrap() > 15.0, "{}", lp.cdu);
            assert_eq!(lp.dew_point.below_warning_s, Some(0.0), "{}", lp.cdu);
        }
    }

    // The derived points carry what was computed.
    let points = tidewatch_analytics::cooling::cooling_points(&report, "24h", "1h");
    assert_eq!(points.len(), 8 + 8 * 24);
    assert!(points.iter().all(|p| p
        .fields()
        .iter()
        .all(|(_, v)| !matches!(v, FieldValue::Float(x) if !x.is_finite()))));
    store.shutdown().await.unwrap();
    println!("total {:.1?}", started.elapsed());
}
