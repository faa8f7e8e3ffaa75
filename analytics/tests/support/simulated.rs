//! The simulator in fast mode feeding an embedded store, for the anomaly integration
//! test and the detection benchmark (included by both with `#[path]`).
//!
//! A small park: the built-in Qingdao site cut down to one liquid-cooled micro-module
//! (dc2 mm01: CDU, 24 PDUs, 12 rack inlets, 2 leak ropes, a dew-point sensor) and one
//! air-cooled row (dc1 row01: 20 PDUs, 10 rack inlets), with the centres' meters. Only
//! what the detectors read is written by default (the measurements and fields of
//! `series::READ_PLAN`), as the collectors would have stored it. The benchmark's
//! fault-free days run the whole park ([`park_site`]).

#![allow(dead_code)] // the test and the benchmark use different parts

use std::collections::HashMap;

use tidewatch_analytics::anomaly::series::READ_PLAN;
use tidewatch_analytics::anomaly::{Anomaly, AnomalyKind};
use tidewatch_devices::{DeviceKind, FaultKind, ProfileSet, Site};
use tidewatch_model::Point;
use tidewatch_sim::bindings::{bind_all, Source};
use tidewatch_sim::fast::{capture_frame, device_tags, sensor_measurement, FastRun, Frame};
use tidewatch_sim::faults::{FaultRequest, TruthEvent};
use tidewatch_sim::plant::sensor_fields;
use tidewatch_sim::quantities::sensor::WIDTH;
use tidewatch_sim::Plant;
use tidewatch_storage::store::Store;

/// 2026-01-01T00:00:00+08:00, Unix ms.
pub const JAN_1_MS: i64 = 1_767_196_800_000;
pub const HOUR_MS: i64 = 3_600_000;
pub const MIN_MS: i64 = 60_000;

/// The built-in site (the whole park) with the given seed and no faults.
pub fn park_site(seed: u64) -> Site {
    let profiles = ProfileSet::builtin().unwrap();
    let mut site = Site::builtin(&profiles).unwrap();
    site.simulation.seed = seed;
    site.faults.clear();
    site
}

/// The built-in site cut down to dc1 row01 and dc2 mm01, with the given seed.
pub fn small_site(seed: u64) -> Site {
    let mut site = park_site(seed);
    for centre in &mut site.centres {
        let keep = if centre.id == "dc1" { "row01" } else { "mm01" };
        centre.zones.retain(|z| z.id == keep);
    }
    site
}

/// A fault of `kind` on `target` from `start_ms` for `duration_ms`.
pub fn fault(
    kind: FaultKind,
    target: &str,
    field: Option<&str>,
    start_ms: i64,
    duration_ms: i64,
) -> FaultRequest {
    FaultRequest {
        kind,
        target: target.into(),
        field: field.map(Into::into),
        magnitude: None,
        start_unix_ms: Some(start_ms),
        duration_s: Some(duration_ms as f64 / 1000.0),
    }
}

/// Where each wanted number of a frame is, and how its point is named.
struct Source1 {
    measurement: &'static str,
    tags: Vec<(&'static str, String)>,
    fields: Vec<(usize, String)>,
}

/// What to write: the measurements and fields the detectors read, or every number.
#[derive(Clone, Copy, PartialEq)]
pub enum Written {
    DetectorInputs,
    Everything,
}

fn sources(
    plant: &Plant,
    frame: &Frame,
    bindings: &[tidewatch_sim::bindings::DeviceBinding],
    written: Written,
) -> (Vec<Source1>, Vec<Source1>) {
    let plan: HashMap<&str, &[&str]> = READ_PLAN.iter().copied().collect();
    let wanted = |measurement: &str, field: &str| {
        written == Written::Everything || plan.get(measurement).is_some_and(|f| f.contains(&field))
    };
    let mut devices = Vec::new();
    for (d, binding) in bindings.iter().enumerate() {
        let kind = plant.devices()[d].kind;
        if written == Written::DetectorInputs && !plan.contains_key(kind.as_str()) {
            continue;
        }
        let mut offset = frame.device_offsets[d];
        let mut chosen = Vec::new();
        for fb in &binding.fields {
            if let Source::Number { .. } = fb.source {
                if wanted(kind.as_str(), &fb.field.name) {
                    chosen.push((offset, fb.field.name.clone()));
                }
                offset += 1;
            }
        }
        devices.push(Source1 {
            measurement: kind.as_str(),
            tags: device_tags(plant, d),
            fields: chosen,
        });
    }
    let mut sensors = Vec::new();
    for (s, sensor) in plant.sensors().iter().enumerate() {
        let measurement = sensor_measurement(sensor.kind);
        if written == Written::DetectorInputs && !plan.contains_key(measurement) {
            continue;
        }
        let mut tags = vec![
            ("sensor", sensor.id.clone()),
            ("centre", sensor.centre.clone()),
            ("zone", sensor.zone.clone()),
        ];
        if let Some(r) = sensor.rack {
            tags.push(("rack", format!("r{r:02}")));
        }
        let chosen = sensor_fields(sensor.kind)
            .iter()
            .enumerate()
            .filter(|(_, n)| wanted(measurement, n))
            .map(|(i, n)| (s * WIDTH + i, n.to_string()))
            .collect();
        sensors.push(Source1 {
            measurement,
            tags,
            fields: chosen,
        });
    }
    (devices, sensors)
}

fn points(devices: &[Source1], sensors: &[Source1], frame: &Frame, out: &mut Vec<Point>) {
    let ts = frame.time_unix_ms * 1_000_000;
    for (list, values) in [
        (devices, &frame.device_values),
        (sensors, &frame.sensor_values),
    ] {
        for s in list {
            let mut p = Point::new(s.measurement, ts);
            for (k, v) in &s.tags {
                p.add_tag(*k, v.clone());
            }
            let mut any = false;
            for (o, name) in &s.fields {
                let v = values[*o];
                if v.is_finite() {
                    p.add_field(name.clone(), v);
                    any = true;
                }
            }
            if any {
                out.push(p);
            }
        }
    }
}

/// Runs `site` from `start_ms` to `end_ms` at `step_s` with `faults`, writing
/// each step's detector inputs to `store`; returns the ground truth (fault starts and
/// ends).
pub async fn simulate(
    site: &Site,
    faults: &[FaultRequest],
    start_ms: i64,
    end_ms: i64,
    step_s: f64,
    store: &Store,
) -> Vec<TruthEvent> {
    simulate_written(
        site,
        faults,
        start_ms..end_ms,
        step_s,
        store,
        Written::DetectorInputs,
    )
    .await
}

/// [`simulate`], writing `written`.
pub async fn simulate_written(
    site: &Site,
    faults: &[FaultRequest],
    range_ms: std::ops::Range<i64>,
    step_s: f64,
    store: &Store,
    written: Written,
) -> Vec<TruthEvent> {
    let (start_ms, end_ms) = (range_ms.start, range_ms.end);
    let profiles = ProfileSet::builtin().unwrap();
    let mut plant = Plant::new(site, start_ms).unwrap();
    for f in faults {
        plant.inject(f.clone()).unwrap();
    }
    let bindings = bind_all(&plant, &profiles).unwrap();
    let first = capture_frame(&plant, &bindings);
    let (devices, sensors) = sources(&plant, &first, &bindings, written);
    let mut batch = Vec::new();
    points(&devices, &sensors, &first, &mut batch);
    let mut truth = Vec::new();
    let mut until = start_ms;
    while until < end_ms {
        until = (until + HOUR_MS).min(end_ms);
        {
            let mut run = FastRun::new(&mut plant, &bindings);
            run.run(step_s, until, |_, frame| {
                points(&devices, &sensors, frame, &mut batch)
            });
        }
        truth.extend(plant.take_events());
        let written = store.write(std::mem::take(&mut batch)).await.unwrap();
        assert_eq!(written.refused, 0);
    }
    if let Store::Embedded(embedded) = store {
        let embedded = embedded.clone();
        tokio::task::spawn_blocking(move || embedded.flush())
            .await
            .unwrap()
            .unwrap();
    }
    truth
}

/// The anomaly kinds that name each fault kind correctly.
pub fn expected_kinds(kind: FaultKind) -> &'static [AnomalyKind] {
    use AnomalyKind as A;
    match kind {
        FaultKind::PumpFailure => &[A::PumpTrip, A::LowFlow, A::PumpFullLowFlow],
        FaultKind::FlowBlockage => &[
            A::FlowRestriction,
            A::FilterDirty,
            A::PumpFullLowFlow,
            A::LowFlow,
        ],
        FaultKind::CoolantLeak => &[A::Leak],
        FaultKind::StuckSensor => &[A::StuckSensor],
        FaultKind::DriftingSensor => &[
            A::SensorDrift,
            A::EwmaResidual,
            A::RobustZScore,
            A::RedundantDisagreement,
        ],
        FaultKind::CondensationRisk => &[A::DewPointMargin],
        FaultKind::PhaseOverload => &[A::PhaseCurrent],
        _ => &[],
    }
}

/// The zone of a device or sensor id (`dc2-mm01-...` -> ("dc2", "mm01")).
pub fn zone_of(id: &str) -> Option<(&str, &str)> {
    let mut parts = id.splitn(3, '-');
    Some((parts.next()?, parts.next()?))
}

/// Whether `a` names the fault `f` (right kind, right place): for a sensor fault the
/// device and, where the anomaly names one, the field; for condensation the zone; else
/// the device.
pub fn names_fault(a: &Anomaly, f: &TruthEvent) -> bool {
    if !expected_kinds(f.kind).contains(&a.kind) {
        return false;
    }
    match f.kind {
        FaultKind::CondensationRisk => {
            let zone = (
                a.tags.get("centre").map(String::as_str),
                a.tags.get("zone").map(String::as_str),
            );
            zone_of(&f.target).is_some_and(|(c, z)| zone == (Some(c), Some(z)))
        }
        FaultKind::StuckSensor | FaultKind::DriftingSensor => {
            a.device == f.target
                && match (&a.field, &f.field) {
                    (Some(af), Some(ff)) => af == ff,
                    _ => true,
                }
        }
        _ => a.device == f.target,
    }
}

/// The first anomaly that names the fault and was raised while it acted: its delay
/// from the fault's start, ms.
pub fn detection(
    anomalies: &[Anomaly],
    start: &TruthEvent,
    end_ms: i64,
) -> Option<(i64, AnomalyKind)> {
    anomalies
        .iter()
        .filter(|a| names_fault(a, start))
        .map(|a| (a.detected_ns / 1_000_000, a.kind))
        .filter(|(t, _)| *t >= start.time_unix_ms && *t <= end_ms)
        .min_by_key(|(t, _)| *t)
        .map(|(t, k)| (t - start.time_unix_ms, k))
}

/// Device kinds are stored under their kind's name; make sure the read plan's names are
/// the simulator's (a renamed measurement would silently read nothing).
pub fn check_measurements() {
    for kind in [DeviceKind::Cdu, DeviceKind::RackPdu] {
        assert!(
            READ_PLAN.iter().any(|(m, _)| *m == kind.as_str()),
            "{}",
            kind.as_str()
        );
    }
}
