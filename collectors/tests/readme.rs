//! The README's sample config parses, with unknown keys rejected, and resolves against
//! the built-in site and profiles; its example output names real fields and tags.

use std::collections::HashSet;

use serde::Deserialize;
use tidewatch_collectors::modbus::{ModbusCollector, ModbusConfig, HEALTH_MEASUREMENT};
use tidewatch_collectors::mqtt::{self, MqttCollector, MqttConfig};
use tidewatch_devices::ProfileSet;

const README: &str = include_str!("../README.md");

/// The first fenced block of `lang` after `heading`.
fn block(heading: &str, lang: &str) -> &'static str {
    let from = README
        .find(heading)
        .unwrap_or_else(|| panic!("no {heading} in the README"));
    let rest = &README[from..];
    let open = format!("```{lang}\n");
    let start = rest.find(&open).expect("a fenced block") + open.len();
    let end = rest[start..].find("```").expect("closing fence");
    &README[from + start..from + start + end]
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CollectorFile {
    modbus: ModbusConfig,
}

#[test]
fn sample_config_parses_and_resolves() {
    let text = block("## Configuration", "toml");
    let file: CollectorFile = toml::from_str(text).unwrap_or_else(|e| panic!("{e}"));
    let config = file.modbus;
    config.validate().expect("valid");
    // The sample spells out the defaults.
    let defaults = ModbusConfig::default();
    assert_eq!(
        (
            config.request_timeout,
            config.connect_timeout,
            config.max_gap,
            config.max_in_flight,
            config.backoff_initial,
            config.backoff_max,
            config.busy_retry_delay,
            config.busy_retries,
        ),
        (
            defaults.request_timeout,
            defaults.connect_timeout,
            defaults.max_gap,
            defaults.max_in_flight,
            defaults.backoff_initial,
            defaults.backoff_max,
            defaults.busy_retry_delay,
            defaults.busy_retries,
        )
    );
    assert_eq!(config.endpoints.len(), 3);
    let collector = ModbusCollector::load(config).expect("resolves against the built-in site");
    assert_eq!(collector.endpoints()[2].devices.len(), 24);
    assert_eq!(collector.endpoints()[2].max_gap, 0);
}

#[test]
fn example_output_names_real_fields() {
    let profiles = ProfileSet::builtin().unwrap();
    let cdu = profiles.get("lc-cdu").unwrap();
    let names: HashSet<&str> = cdu.fields.iter().map(|f| f.name.as_str()).collect();
    let text = block("## Example output", "text");
    let mut lines = 0;
    for line in text.lines() {
        let (series, rest) = line.split_once(' ').expect("series and fields");
        let (fields, _ts) = rest.rsplit_once(' ').expect("fields and timestamp");
        let measurement = series.split(',').next().unwrap();
        let keys: Vec<&str> = fields
            .split(',')
            .map(|kv| kv.split_once('=').expect("key=value").0)
            .collect();
        if measurement == HEALTH_MEASUREMENT {
            assert!(series.contains(",device=") && series.contains(",unit="));
            assert!(keys.contains(&"up") && keys.contains(&"errors_timeout"));
        } else {
            assert_eq!(measurement, "cdu");
            for k in keys {
                assert!(names.contains(k), "{k} is not a field of lc-cdu");
            }
        }
        lines += 1;
    }
    assert!(lines >= 4);
}

/// The first fenced block of `lang` after `heading` inside the section that starts at
/// `section`.
fn block_in(section: &str, heading: &str, lang: &str) -> &'static str {
    let from = README
        .find(section)
        .unwrap_or_else(|| panic!("no {section} in the README"));
    let at = README[from..]
        .find(heading)
        .unwrap_or_else(|| panic!("no {heading} after {section}"))
        + from;
    let rest = &README[at..];
    let open = format!("```{lang}\n");
    let start = rest.find(&open).expect("a fenced block") + open.len();
    let end = rest[start..].find("```").expect("closing fence");
    &README[at + start..at + start + end]
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MqttFile {
    mqtt: MqttConfig,
}

#[test]
fn mqtt_sample_config_parses_and_compiles() {
    let text = block_in("# MQTT collector", "## Configuration", "toml");
    let file: MqttFile = toml::from_str(text).unwrap_or_else(|e| panic!("{e}"));
    let config = file.mqtt;
    config.validate().unwrap_or_else(|e| panic!("{e}"));
    // The sample spells out the defaults.
    let mut defaults = MqttConfig::new(config.broker.clone(), config.client_id.clone());
    defaults.subscriptions = config.subscriptions.clone();
    assert_eq!(config, defaults);
    let collector = MqttCollector::new(config).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        collector.filters(),
        [
            "tidewatch/qingdao/+/+/+/inlet",
            "tidewatch/qingdao/+/+/leak/+",
            "tidewatch/qingdao/+/+/dewpoint"
        ]
    );
}

/// The TLS sample: parses and validates (its files are the operator's: not read here;
/// `tests/mqtt_tls.rs` runs the same settings against Mosquitto).
#[test]
fn mqtt_tls_sample_config_parses() {
    let text = block_in("# MQTT collector", "### TLS and a login", "toml");
    let file: MqttFile = toml::from_str(text).unwrap_or_else(|e| panic!("{e}"));
    let config = file.mqtt;
    config.validate().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.broker, "mqtt.dc2.example:8883");
    assert_eq!(config.username.as_deref(), Some("tidewatch"));
    assert!(config.password_file.is_some() && config.password_env.is_none());
    let tls = config.tls.expect("a [mqtt.tls] table");
    assert_eq!(
        tls.ca_file,
        std::path::Path::new("/etc/tidewatch/mqtt-ca.pem")
    );
    assert_eq!((tls.client_cert_file, tls.client_key_file), (None, None));
}

#[test]
fn mqtt_example_output_is_line_protocol_of_the_documented_names() {
    let text = block_in("# MQTT collector", "## Example output", "text");
    let mut measurements = Vec::new();
    for line in influxdb_line_protocol::parse_lines(text) {
        let line = line.unwrap_or_else(|e| panic!("{e}"));
        let m = line.series.measurement.to_string();
        let tags: Vec<String> = line
            .series
            .tag_set
            .iter()
            .flatten()
            .map(|(k, _)| k.to_string())
            .collect();
        let fields: Vec<String> = line.field_set.iter().map(|(k, _)| k.to_string()).collect();
        match m.as_str() {
            "rack_inlet" => {
                assert_eq!(tags, ["centre", "rack", "sensor", "zone"]);
                assert_eq!(fields, ["humidity_pct", "temperature_c"]);
            }
            "leak" => assert_eq!(fields, ["wet"]),
            "dew_point" => assert_eq!(fields, ["dew_point_c"]),
            mqtt::HEALTH_MEASUREMENT => {
                assert_eq!(tags, ["broker", "client_id"]);
                for f in [
                    "connected",
                    "messages",
                    "malformed",
                    "reconnects",
                    "redelivered",
                ] {
                    assert!(fields.iter().any(|k| k == f), "{f}");
                }
            }
            mqtt::MALFORMED_MEASUREMENT => {
                assert_eq!(tags, ["broker", "client_id", "topic"]);
                assert_eq!(fields, ["count"]);
            }
            other => panic!("unexpected measurement {other}"),
        }
        measurements.push(m);
    }
    assert_eq!(measurements.len(), 5);
}
