//! End to end: the plant simulator serves the whole reference park over real Modbus TCP
//! on loopback ports; the collector polls every device of it; every value it collects
//! must equal what the simulator's own model says the registers carry
//! (`GET /devices/{id}` -> `readings`), with the tags the simulator's backfill uses,
//! for every data type and word order in the profiles. The simulator's decoding and
//! ours are separate code, so this is a real cross-check.
//!
//! The simulator's clock is paused (after stepping it a day forward, so counters fill
//! more than one register) so the registers stay put while the collector reads them.
//! Its `/modbus` counters then show that only reads were sent: every function code
//! other than 1-4 is answered with an exception and counted (as a write, or as an
//! exception), and the run must end with neither.

mod support;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{profile_coverage, same_number, type_and_order, Collector, Sim};
use tidewatch_collectors::modbus::HEALTH_MEASUREMENT;
use tidewatch_devices::DataType;
use tidewatch_model::{FieldValue, Point};

#[test]
fn every_device_value_arrives_decoded_and_tagged() {
    let sim = Sim::start();
    // A simulated day, so energy counters and running seconds fill several registers.
    sim.step(86_400);
    let tags = sim.sim_tags();
    let devices = sim.site.devices();

    let config = sim.collector_config("request_timeout = \"2s\"", |_| true);
    let mut collector = Collector::start(config, &sim);
    assert_eq!(collector.running().stats().len(), devices.len());
    // Every field is read on the first tick; give every device a few more.
    let start = Instant::now();
    loop {
        std::thread::sleep(Duration::from_millis(500));
        let stats = collector.running().stats();
        if stats.iter().all(|s| s.polls >= 3 && s.requests > 0 && s.up) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "devices not polled three times in 60 s: {:?}",
            stats
                .iter()
                .filter(|s| s.polls < 3 || !s.up)
                .take(5)
                .collect::<Vec<_>>()
        );
    }
    collector.stop();
    let batches = collector.batches();

    // Gather per device: field -> every value collected, and the health points.
    let mut values: HashMap<String, BTreeMap<String, Vec<FieldValue>>> = HashMap::new();
    let mut health: HashMap<String, Vec<Point>> = HashMap::new();
    for p in batches.iter().flatten() {
        let device = p.tag_value("device").expect("device tag").to_owned();
        if p.measurement() == HEALTH_MEASUREMENT {
            health.entry(device).or_default().push(p.clone());
            continue;
        }
        // Tags: exactly the simulator's (its backfill attaches the same).
        let expected = tags
            .get(&device)
            .unwrap_or_else(|| panic!("point of unknown device {device}"));
        let got: HashMap<String, String> = p.tags().iter().cloned().collect();
        assert_eq!(&got, expected, "tags of {device}");
        let d = devices
            .iter()
            .find(|d| d.id == device)
            .expect("site device");
        assert_eq!(p.measurement(), d.kind.as_str(), "measurement of {device}");
        for (k, v) in p.fields() {
            values
                .entry(device.clone())
                .or_default()
                .entry(k.to_string())
                .or_default()
                .push(v.clone());
        }
    }

    // Compare with the model, device by device, field by field.
    let mut covered: BTreeSet<(String, String)> = BTreeSet::new();
    let mut not_available = 0;
    let mut checked = 0;
    for d in &devices {
        let profile = sim.profiles.get(&d.profile).expect("profile");
        let readings = sim.readings(&d.id);
        let got = values.get(&d.id);
        for f in &profile.fields {
            let truth = readings
                .get(&f.name)
                .unwrap_or_else(|| panic!("{}: no reading of {}", d.id, f.name));
            let collected = got.and_then(|g| g.get(&f.name));
            if truth.is_null() {
                assert!(
                    collected.is_none(),
                    "{}.{} is \"not available\" but was stored: {collected:?}",
                    d.id,
                    f.name
                );
                not_available += 1;
                continue;
            }
            let collected = collected.unwrap_or_else(|| {
                panic!("{}.{}: nothing collected (truth {truth})", d.id, f.name)
            });
            for v in collected {
                match (v, truth) {
                    (FieldValue::Float(x), Value::Number(t)) => {
                        let t = t.as_f64().expect("number");
                        assert!(
                            same_number(*x, t),
                            "{}.{} ({} {}): collected {x}, model {t}",
                            d.id,
                            f.name,
                            f.data_type,
                            f.order
                        );
                    }
                    (FieldValue::String(s), Value::String(t)) => {
                        assert_eq!(s, t, "{}.{}", d.id, f.name)
                    }
                    other => panic!("{}.{}: type mismatch {other:?}", d.id, f.name),
                }
                checked += 1;
            }
            covered.insert(type_and_order(f));
        }
        // Health: up on every poll, counters present.
        let h = health
            .get(&d.id)
            .unwrap_or_else(|| panic!("no health point of {}", d.id));
        for p in h {
            assert_eq!(
                p.field_value("up"),
                Some(&FieldValue::Integer(1)),
                "{}",
                d.id
            );
            assert!(p.field_value("latency_ms").is_some());
            assert_eq!(
                p.field_value("errors_timeout"),
                Some(&FieldValue::Integer(0))
            );
            assert_eq!(p.tag_value("unit"), Some(d.unit_id.to_string().as_str()));
        }
    }
    eprintln!(
        "{} devices, {checked} values checked, {not_available} fields not available, coverage {covered:?}",
        devices.len()
    );

    // Every data type and every (multi-byte) word order of the profiles was checked.
    let wanted = profile_coverage(&sim.profiles);
    assert_eq!(covered, wanted);
    for t in DataType::ALL {
        assert!(
            covered.iter().any(|(dt, _)| *dt == t.to_string()),
            "no {t} field in the profiles"
        );
    }
    for o in ["ABCD", "CDAB", "BADC", "DCBA"] {
        assert!(covered.iter().any(|(_, x)| x == o), "no {o} field");
    }
    // The unfitted third supply sensor of the PG25 CDUs reads the sentinel.
    assert!(not_available > 0, "no sentinel seen");

    // Only read function codes reached the simulator: it refuses every other code with
    // an exception (writes also counted as such), and there were none.
    let m = sim.get("/modbus");
    assert_eq!(m["writes"], 0, "{m}");
    assert_eq!(m["exceptions"], 0, "{m}");
    assert!(m["requests"].as_u64().unwrap_or(0) > 0, "{m}");
}
