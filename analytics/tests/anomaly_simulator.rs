//! Thermal anomalies on the simulator: a day at 10 s of one liquid-cooled micro-module
//! (dc2 mm01) and one air-cooled row (dc1 row01), with the simulator's faults injected
//! one after the other, written to an embedded store in a temp dir and read back
//! through the `Store` interface. Each fault must be found with the right kind on the
//! right device within a delay; the hours without a fault must give (almost) nothing.
//!
//! | time (local) | fault | target | delay allowed |
//! |---|---|---|---|
//! | 02:00-03:00 | pump_failure (pump 1) | dc2-mm01-cdu | 1 min (the pump's fault contact) |
//! | 04:00-05:00 | flow_blockage (x4) | dc2-mm01-cdu | 5 min |
//! | 06:00-07:00 | coolant_leak (2 L/min) | dc2-mm01-cdu | 1 min |
//! | 08:00-09:00 | stuck_sensor | dc2-mm01-r03-inlet temperature_c | 5 min |
//! | 10:00-11:00 | drifting_sensor (2 K/h) | dc2-mm01-cdu secondary_supply_temp_1 | 20 min |
//! | 12:00-13:00 | condensation_risk | dc2-mm01-dewpoint | 20 min (the dew point climbs over 20 min) |
//! | 14:00-15:00 | phase_overload (0.95 x 32 A) | dc1-row01-r04-pdu-a | 2 min |
//!
//! Fault-free: 00:00-02:00 and 16:00-24:00 (an hour after the last fault for the
//! loop to settle): at most one anomaly in those 10 hours of two zones.

#[path = "support/simulated.rs"]
mod simulated;

use std::time::Instant;

use simulated::*;
use tidewatch_analytics::anomaly::{analyze, detect, read_telemetry, AnomalyConfig, AnomalyPlan};
use tidewatch_devices::FaultKind;
use tidewatch_storage::embedded::EmbeddedConfig;
use tidewatch_storage::store::{Store, StoreConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_injected_fault_is_found_and_quiet_hours_stay_quiet() {
    check_measurements();
    let started = Instant::now();
    let site = small_site(20261127);
    let at = |h: i64| JAN_1_MS + h * HOUR_MS;
    let faults = [
        (
            fault(FaultKind::PumpFailure, "dc2-mm01-cdu", None, at(2), HOUR_MS),
            1,
        ),
        (
            fault(
                FaultKind::FlowBlockage,
                "dc2-mm01-cdu",
                None,
                at(4),
                HOUR_MS,
            ),
            5,
        ),
        (
            fault(FaultKind::CoolantLeak, "dc2-mm01-cdu", None, at(6), HOUR_MS),
            1,
        ),
        (
            fault(
                FaultKind::StuckSensor,
                "dc2-mm01-r03-inlet",
                Some("temperature_c"),
                at(8),
                HOUR_MS,
            ),
            5,
        ),
        (
            fault(
                FaultKind::DriftingSensor,
                "dc2-mm01-cdu",
                Some("secondary_supply_temp_1"),
                at(10),
                HOUR_MS,
            ),
            20,
        ),
        (
            fault(
                FaultKind::CondensationRisk,
                "dc2-mm01-dewpoint",
                None,
                at(12),
                HOUR_MS,
            ),
            20,
        ),
        (
            fault(
                FaultKind::PhaseOverload,
                "dc1-row01-r04-pdu-a",
                None,
                at(14),
                HOUR_MS,
            ),
            2,
        ),
    ];
    let requests: Vec<_> = faults.iter().map(|f| f.0.clone()).collect();

    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(StoreConfig::Embedded(EmbeddedConfig::in_dir(dir.path())))
        .await
        .unwrap();
    let truth = simulate(&site, &requests, JAN_1_MS, at(24), 10.0, &store).await;
    println!("simulated and stored a day in {:.1?}", started.elapsed());
    assert_eq!(truth.len(), 2 * faults.len(), "{truth:?}");

    let plan = AnomalyPlan::from_site(&site);
    assert_eq!(plan.zones.len(), 2);
    // The breakers come from the site: dc2's 40 kW racks on 63 A circuits (each feed
    // must carry the whole rack when the other fails, 58 A a phase), dc1's on 32 A.
    let config = AnomalyConfig::default();
    let analysed = Instant::now();
    let window = JAN_1_MS * 1_000_000..at(24) * 1_000_000;
    let anomalies = analyze(&store, &plan, &config, window.clone())
        .await
        .unwrap();
    println!(
        "{} anomalies in {:.1?}",
        anomalies.len(),
        analysed.elapsed()
    );
    for a in &anomalies {
        println!(
            "  {:>6.1} min {:?} {} {:?} {:?} score {:.2}: {}",
            (a.detected_ns / 1_000_000 - JAN_1_MS) as f64 / 60_000.0,
            a.kind,
            a.device,
            a.field,
            a.severity,
            a.score,
            a.message_en
        );
    }

    for (request, allowed_min) in &faults {
        let start = truth
            .iter()
            .find(|e| e.event == "fault_start" && e.kind == request.kind)
            .unwrap();
        let end = start.time_unix_ms + HOUR_MS;
        let found = detection(&anomalies, start, end);
        let Some((delay_ms, kind)) = found else {
            panic!("{:?} on {} not detected", request.kind, request.target);
        };
        println!(
            "{:?} on {}: {:?} after {:.1} min",
            request.kind,
            request.target,
            kind,
            delay_ms as f64 / 60_000.0
        );
        assert!(
            delay_ms <= allowed_min * MIN_MS,
            "{:?}: detected after {delay_ms} ms, allowed {allowed_min} min",
            request.kind
        );
    }

    // `analyze` reads and tests one zone at a time; every zone read at once gives the
    // same anomalies, in the same order.
    let lookback = config.lookback().as_nanos() as i64;
    let every_zone = read_telemetry(
        &store,
        window.start - lookback..window.end,
        &plan.zone_ids(),
    )
    .await
    .unwrap();
    let mut at_once = detect(&every_zone, &plan, &config).unwrap();
    at_once.retain(|a| a.end_ns.is_none_or(|e| e > window.start));
    assert_eq!(anomalies, at_once);

    // Quiet hours: nothing raised then (the flow restriction and the z-scores need
    // their baselines: the first hour can say nothing about them, but it must not alarm).
    let quiet = |t_ms: i64| t_ms < at(2) || t_ms >= at(16);
    let false_alarms: Vec<_> = anomalies
        .iter()
        .filter(|a| quiet(a.detected_ns / 1_000_000))
        .collect();
    assert!(false_alarms.len() <= 1, "{false_alarms:#?}");

    // Every anomaly carries its tags and both sentences.
    for a in &anomalies {
        assert!(a.tags.contains_key("zone"), "{a:?}");
        assert!(!a.message_en.is_empty() && !a.message_zh.is_empty());
        assert!(a.end_ns.is_none_or(|e| e >= a.detected_ns));
    }
    store.shutdown().await.unwrap();
    println!("total {:.1?}", started.elapsed());
}
