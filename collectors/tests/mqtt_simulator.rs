//! End to end: the plant simulator publishes every sensor of the reference park to a
//! real Mosquitto (JSON rack inlets, plain-number leak ropes, line protocol dew
//! points); the collector, configured with the README's sample config, stores a point
//! for every sensor with the measurement, tags and field names of the simulator's
//! backfill (`frame_points`), and values equal to what the simulator's model says
//! (`GET /sensors/{id}`, rounded to the three decimals sensors publish).
//!
//! The simulator's clock is paused, so every reading published from then on carries
//! the same model state and timestamp.

mod mqtt_support;
mod support;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mqtt_support::{Collector, Mode, Mosquitto, TestSink};
use serde::Deserialize;
use support::http_json;
use tidewatch_collectors::mqtt::MqttConfig;
use tidewatch_devices::{ProfileSet, Site};
use tidewatch_model::{line_protocol, FieldValue, Point};
use tidewatch_sim::fast::sensor_measurement;
use tidewatch_sim::mqtt::BrokerAddress;
use tidewatch_sim::plant::sensor_fields;
use tidewatch_sim::{RealtimeConfig, Simulator};

const README: &str = include_str!("../README.md");

/// The README's MQTT sample config.
fn readme_config() -> MqttConfig {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct File {
        mqtt: MqttConfig,
    }
    let from = README.find("# MQTT collector").expect("MQTT section");
    let rest = &README[from..];
    let start = rest.find("```toml\n").expect("a toml block") + "```toml\n".len();
    let end = rest[start..].find("```").expect("closing fence");
    let file: File = toml::from_str(&rest[start..start + end]).unwrap_or_else(|e| panic!("{e}"));
    file.mqtt
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

#[test]
fn every_simulated_sensor_arrives_tagged_with_the_published_values() {
    let broker = Mosquitto::start();
    let profiles = ProfileSet::builtin().expect("profiles");
    let site = Site::builtin(&profiles).expect("site");
    let sim_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let sim = sim_rt
        .block_on(Simulator::start(
            &site,
            &profiles,
            RealtimeConfig {
                mqtt: Some(BrokerAddress {
                    host: "127.0.0.1".into(),
                    port: broker.port,
                    client_id: format!("tw-sim-{}", std::process::id()),
                }),
                ..RealtimeConfig::default()
            },
        ))
        .expect("start the simulator");
    sim.shared.paused.store(true, Ordering::SeqCst);
    // A step already under way when the clock was paused finishes first.
    std::thread::sleep(Duration::from_millis(300));
    let control = sim.endpoints.control.clone();
    let plant_ms = http_json("GET", &format!("{control}/"), None, 200)["time_unix_ms"]
        .as_i64()
        .expect("plant time");
    let paused_wall_ns = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64;

    let mut config = readme_config();
    config.broker = broker.address();
    config.client_id = "tw-sim-collector".into();
    let c = Collector::start(config, TestSink::new(Mode::Accept));

    // The expected point of every sensor: measurement, tags and fields of the backfill.
    let sensors = site.sensors();
    assert_eq!(sensors.len(), 182);
    let mut expected: BTreeMap<String, (String, Vec<(String, String)>)> = BTreeMap::new();
    for s in &sensors {
        let mut tags = vec![
            ("centre".to_string(), s.centre.clone()),
            ("sensor".to_string(), s.id.clone()),
            ("zone".to_string(), s.zone.clone()),
        ];
        if let Some(r) = s.rack {
            tags.push(("rack".to_string(), format!("r{r:02}")));
        }
        tags.sort();
        expected.insert(s.id.clone(), (sensor_measurement(s.kind).to_owned(), tags));
    }

    // Wait for a reading of every sensor taken after the pause.
    let after_pause = |p: &Point| {
        p.timestamp_ns() == plant_ms * 1_000_000
            || (p.measurement() == "leak" && p.timestamp_ns() > paused_wall_ns)
    };
    let start = Instant::now();
    let latest: HashMap<String, Point> = loop {
        let mut latest = HashMap::new();
        for p in c.sink.points() {
            if let Some(id) = p.tag_value("sensor") {
                if after_pause(&p) {
                    latest.insert(id.to_owned(), p.clone());
                }
            }
        }
        if latest.len() == sensors.len() {
            break latest;
        }
        assert!(
            start.elapsed() < Duration::from_secs(40),
            "only {} of {} sensors stored within 40 s: {:#?}",
            latest.len(),
            sensors.len(),
            c.stats()
        );
        std::thread::sleep(Duration::from_millis(200));
    };

    let mut formats = BTreeMap::new();
    for s in &sensors {
        let p = &latest[&s.id];
        let (measurement, tags) = &expected[&s.id];
        assert_eq!(p.measurement(), measurement, "{}", s.id);
        assert_eq!(p.tags(), tags.as_slice(), "tags of {}", s.id);
        let truth = http_json("GET", &format!("{control}/sensors/{}", s.id), None, 200);
        let names: Vec<&str> = p.fields().iter().map(|(k, _)| k.as_str()).collect();
        let mut want: Vec<&str> = sensor_fields(s.kind).to_vec();
        want.sort_unstable();
        let mut got = names.clone();
        got.sort_unstable();
        assert_eq!(got, want, "fields of {}", s.id);
        for (name, value) in p.fields() {
            let t = truth["values"][name.as_str()]
                .as_f64()
                .unwrap_or_else(|| panic!("{}: no {name} in {truth}", s.id));
            assert_eq!(
                value,
                &FieldValue::Float(round3(t)),
                "{} {name}: the model says {t}",
                s.id
            );
        }
        *formats.entry(format!("{:?}", s.payload)).or_insert(0) += 1;
    }
    println!("every sensor checked: {formats:?}");
    assert_eq!(formats.len(), 3, "every payload format: {formats:?}");
    let s = c.stats();
    assert_eq!(s.malformed, 0, "{s:#?}");

    // A few lines of what was stored, for the README's example output.
    let mut out = Vec::new();
    for id in [
        "dc2-mm03-r07-inlet",
        "dc2-mm03-leak-cdu",
        "dc2-mm03-dewpoint",
    ] {
        line_protocol::encode(&latest[id], &mut out).expect("encode");
    }
    print!("{}", String::from_utf8_lossy(&out));
    drop(c);
    sim_rt.block_on(sim.shutdown());
}
