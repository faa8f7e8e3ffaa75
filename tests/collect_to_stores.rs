//! End to end through the shipped binary: the plant simulator serves the whole
//! reference park over real Modbus TCP on loopback ports; two `tidewatch collect`
//! processes poll every device of it, one writing into a real InfluxDB 1.x (`influxd`,
//! started here on a free port), the other into the embedded store; each is stopped
//! with SIGTERM (which flushes), and the points are read back through the `Store`
//! interface. Every device's every field must be in both stores with the simulator's
//! own tags and the value its model puts in the registers (`GET /devices/{id}` ->
//! `readings`), for every data type and word order of the profiles; "not available"
//! sentinels must not be stored; each device's health points must be there.
//!
//! The simulator's clock is paused (after a simulated day, so counters fill several
//! registers): the registers hold still, so both collectors read the same values and
//! the ground truth is one snapshot. The collectors' decoding is cross-checked against
//! the simulator's in `collectors/tests/modbus_end_to_end.rs` from an in-process sink;
//! this test adds the binary, its configuration, both stores and the reading back.

#[path = "../storage/tests/servers/mod.rs"]
mod servers;
#[path = "../collectors/tests/support/mod.rs"]
mod support;

use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use polars::prelude::{DataFrame, DataType as PlDataType};
use serde_json::Value;
use support::{profile_coverage, same_number, type_and_order, Sim};
use tidewatch_collectors::modbus::HEALTH_MEASUREMENT;
use tidewatch_storage::embedded::EmbeddedConfig;
use tidewatch_storage::store::{Scan, Store, StoreConfig};

const BIN: &str = env!("CARGO_BIN_EXE_tidewatch");
const DB: &str = "collected";

/// The `[modbus]` table polling every endpoint the simulator serves.
fn modbus_table(sim: &Sim) -> String {
    let mut text = String::from("[modbus]\nrequest_timeout = \"2s\"\n");
    for e in &sim.sim().endpoints.modbus {
        text.push_str("\n[[modbus.endpoint]]\n");
        let _ = writeln!(text, "address = \"{}\"", e.address);
        match &e.gateway {
            Some(g) => {
                let _ = writeln!(text, "gateway = \"{g}\"");
            }
            None => {
                let ids: Vec<String> = e.devices.iter().map(|d| format!("\"{}\"", d.id)).collect();
                let _ = writeln!(text, "devices = [{}]", ids.join(", "));
            }
        }
    }
    text
}

/// `tidewatch collect --config FILE` (or `run`: `command`) with its output in files
/// beside the config (`collect.out`, `collect.err`).
fn start_service(command: &str, config: &Path) -> Child {
    let dir = config.parent().expect("config dir");
    let log =
        |ext: &str| std::fs::File::create(dir.join(format!("{command}.{ext}"))).expect("log file");
    Command::new(BIN)
        .args([command, "--status-every", "1s", "--config"])
        .arg(config)
        .stdin(Stdio::null())
        .stdout(log("out"))
        .stderr(log("err"))
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {BIN}: {e}"))
}

/// The service's log so far (its standard error).
fn service_log(command: &str, config: &Path) -> String {
    std::fs::read_to_string(config.with_file_name(format!("{command}.err"))).unwrap_or_default()
}

/// SIGTERM, then the exit within `timeout`; panics with the service's log otherwise.
fn stop_service(command: &str, mut child: Child, config: &Path, timeout: Duration) {
    let log = || service_log(command, config);
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -TERM failed");
    let started = Instant::now();
    let exit = loop {
        if let Some(exit) = child.try_wait().expect("wait") {
            break exit;
        }
        if started.elapsed() > timeout {
            let _ = child.kill();
            panic!(
                "tidewatch {command} did not stop within {timeout:?}; log:\n{}",
                log()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        exit.success(),
        "tidewatch {command} exited with {exit}; log:\n{}",
        log()
    );
}

/// A frame as rows of JSON-like values (numbers as f64, strings, booleans as 0/1;
/// nulls left out), each column converted once.
fn frame_rows(frame: &DataFrame) -> Vec<HashMap<String, Value>> {
    let mut rows = vec![HashMap::new(); frame.height()];
    for col in frame.columns() {
        let name = col.name().to_string();
        let n = col.len();
        let values: Vec<Value> = match col.dtype() {
            PlDataType::String => {
                let ca = col.str().expect("string column");
                (0..n)
                    .map(|i| {
                        ca.get(i)
                            .map_or(Value::Null, |s| Value::String(s.to_owned()))
                    })
                    .collect()
            }
            PlDataType::Boolean => {
                let ca = col.bool().expect("bool column");
                (0..n)
                    .map(|i| ca.get(i).map_or(Value::Null, |b| Value::from(u8::from(b))))
                    .collect()
            }
            PlDataType::Datetime(..) => continue,
            _ => {
                let cast = col.cast(&PlDataType::Float64).expect("numeric column");
                let ca = cast.f64().expect("f64");
                (0..n)
                    .map(|i| ca.get(i).map_or(Value::Null, Value::from))
                    .collect()
            }
        };
        for (row, value) in rows.iter_mut().zip(values) {
            if !value.is_null() {
                row.insert(name.clone(), value);
            }
        }
    }
    rows
}

/// Reads back every device's points from `store` and checks them against the
/// simulator; returns the (data type, word order) pairs checked.
fn check_store(
    name: &str,
    store: &Store,
    rt: &tokio::runtime::Runtime,
    sim: &Sim,
    time: &std::ops::Range<i64>,
) -> BTreeSet<(String, String)> {
    let tags = sim.sim_tags();
    let mut covered = BTreeSet::new();
    // Per measurement: device id -> its rows.
    let mut frames: HashMap<String, HashMap<String, Vec<HashMap<String, Value>>>> = HashMap::new();
    let mut read = |measurement: &str| {
        frames
            .entry(measurement.to_owned())
            .or_insert_with(|| {
                let frame = rt
                    .block_on(store.read(&Scan::new(measurement, time.clone())))
                    .unwrap_or_else(|e| panic!("{name}: reading {measurement}: {e}"));
                let mut by_device: HashMap<String, Vec<HashMap<String, Value>>> = HashMap::new();
                for row in frame_rows(&frame) {
                    let device = row["device"].as_str().expect("device tag").to_owned();
                    by_device.entry(device).or_default().push(row);
                }
                by_device
            })
            .clone()
    };
    let health = read(HEALTH_MEASUREMENT);
    let mut values_checked = 0;
    for d in sim.site.devices() {
        assert!(
            health.contains_key(&d.id),
            "{name}: no {HEALTH_MEASUREMENT} point of {}",
            d.id
        );
        let frame = read(d.kind.as_str());
        let rows = frame
            .get(&d.id)
            .unwrap_or_else(|| panic!("{name}: no {} point of {}", d.kind.as_str(), d.id));
        let expected_tags = &tags[&d.id];
        for row in rows {
            for (key, value) in expected_tags {
                assert_eq!(
                    row.get(key).and_then(Value::as_str),
                    Some(value.as_str()),
                    "{name}: tag {key} of {}",
                    d.id
                );
            }
        }
        let profile = sim.profiles.get(&d.profile).expect("profile");
        let readings = sim.readings(&d.id);
        for f in &profile.fields {
            let truth = &readings[&f.name];
            let stored: Vec<&Value> = rows.iter().filter_map(|row| row.get(&f.name)).collect();
            if truth.is_null() {
                assert!(
                    stored.is_empty(),
                    "{name}: {}.{} is \"not available\" but was stored: {stored:?}",
                    d.id,
                    f.name
                );
                continue;
            }
            assert!(
                !stored.is_empty(),
                "{name}: {}.{} not stored (truth {truth})",
                d.id,
                f.name
            );
            for v in stored {
                match (v, truth) {
                    (Value::Number(x), Value::Number(t)) => {
                        let (x, t) = (x.as_f64().expect("f64"), t.as_f64().expect("f64"));
                        assert!(
                            same_number(x, t),
                            "{name}: {}.{} ({} {}): stored {x}, model {t}",
                            d.id,
                            f.name,
                            f.data_type,
                            f.order
                        );
                    }
                    (Value::String(s), Value::String(t)) => {
                        assert_eq!(s, t, "{name}: {}.{}", d.id, f.name)
                    }
                    other => panic!("{name}: {}.{}: type mismatch {other:?}", d.id, f.name),
                }
                values_checked += 1;
            }
            covered.insert(type_and_order(f));
        }
    }
    eprintln!("{name}: {values_checked} stored values equal the simulator's");
    covered
}

fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_nanos() as i64
}

#[test]
fn collect_binary_stores_every_device_value_in_influxdb_and_the_embedded_store() {
    servers::init_logging();
    let sim = Sim::start();
    sim.step(86_400);
    let (rt, influxd) = servers::runtime_and_influxd(DB);

    let work = tempfile::tempdir().expect("temp dir");
    let modbus = modbus_table(&sim);
    let influx_dir = work.path().join("influx");
    let embedded_dir = work.path().join("embedded");
    std::fs::create_dir_all(&influx_dir).expect("mkdir");
    std::fs::create_dir_all(&embedded_dir).expect("mkdir");
    let influx_config = influx_dir.join("collect.toml");
    std::fs::write(
        &influx_config,
        format!(
            "[store.influxdb]\nurl = \"{}\"\napi = \"v1\"\ndatabase = \"{DB}\"\n\
             batch_max_age = \"200ms\"\nspool_dir = \"{}\"\ndead_letter_file = \"{}\"\n\n{modbus}",
            influxd.url(),
            influx_dir.join("spool").display(),
            influx_dir.join("dead-letter.jsonl").display(),
        ),
    )
    .expect("write config");
    let embedded_config = embedded_dir.join("collect.toml");
    std::fs::write(
        &embedded_config,
        format!(
            "[store.embedded]\ndir = \"{}\"\n\n{modbus}",
            embedded_dir.join("store").display()
        ),
    )
    .expect("write config");

    let started_ns = now_ns();
    let to_influx = start_service("collect", &influx_config);
    let to_embedded = start_service("collect", &embedded_config);
    // Every field is read on a device's first poll; wait until both collectors have
    // polled every device (their status line, once a second), gateways included.
    let all_up = format!("Modbus {0}/{0} devices up", sim.site.devices().len());
    let waited = Instant::now();
    for config in [&influx_config, &embedded_config] {
        loop {
            let log = service_log("collect", config);
            if log.contains(&all_up) {
                break;
            }
            assert!(
                waited.elapsed() < Duration::from_secs(120),
                "{}: not every device polled within 120 s; log:\n{log}",
                config.display()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }
    stop_service(
        "collect",
        to_influx,
        &influx_config,
        Duration::from_secs(60),
    );
    stop_service(
        "collect",
        to_embedded,
        &embedded_config,
        Duration::from_secs(60),
    );
    let dead = servers::dead_letters(&influx_dir.join("dead-letter.jsonl"));
    assert!(dead.is_empty(), "InfluxDB refused lines: {dead:?}");

    let mut influx_store_config =
        servers::v1_config(&influxd.url(), DB, &work.path().join("reader"));
    influx_store_config.batch_max_age = Duration::from_millis(200);
    let influx_store = rt
        .block_on(Store::open(StoreConfig::Influxdb(influx_store_config)))
        .expect("open the InfluxDB store");
    let embedded_store = rt
        .block_on(Store::open(StoreConfig::Embedded(EmbeddedConfig {
            dir: embedded_dir.join("store"),
            ..EmbeddedConfig::default()
        })))
        .expect("open the embedded store");

    // The collectors ran within this window (InfluxQL reads are chunked by time: a
    // tight range keeps them few).
    let time = started_ns - 3_600_000_000_000..now_ns() + 3_600_000_000_000;
    let from_influx = check_store("InfluxDB", &influx_store, &rt, &sim, &time);
    let from_embedded = check_store("embedded store", &embedded_store, &rt, &sim, &time);
    assert_eq!(from_influx, from_embedded);

    // Every data type and every (multi-byte) word order of the profiles was checked.
    let wanted = profile_coverage(&sim.profiles);
    assert_eq!(from_influx, wanted);
    rt.block_on(async {
        influx_store.shutdown().await.expect("close");
        embedded_store.shutdown().await.expect("close");
    });
    // Only read function codes reached the simulator.
    let m = sim.get("/modbus");
    assert_eq!(m["writes"], 0, "{m}");
    assert_eq!(m["exceptions"], 0, "{m}");
}

/// `tidewatch run`: the same collectors into InfluxDB, with the periodic analytics job
/// beside them (every 5 s over the last hour here); its derived measurements reach
/// InfluxDB, where Grafana would read them, and its runs are in the log.
#[test]
fn run_binary_writes_the_analytics_of_what_it_collects_back_into_influxdb() {
    servers::init_logging();
    let sim = Sim::start();
    // The clock runs in real time, so the counters grow at the rate their power says.
    sim.post("/clock/resume", None, 200);
    let (rt, influxd) = servers::runtime_and_influxd(DB);
    let work = tempfile::tempdir().expect("temp dir");
    let config = work.path().join("run.toml");
    std::fs::write(
        &config,
        format!(
            "[store.influxdb]\nurl = \"{}\"\napi = \"v1\"\ndatabase = \"{DB}\"\n\
             batch_max_age = \"200ms\"\nspool_dir = \"{}\"\ndead_letter_file = \"{}\"\n\n\
             [analytics.job]\nevery = \"5s\"\nwindow = \"1h\"\n\n{}",
            influxd.url(),
            work.path().join("spool").display(),
            work.path().join("dead-letter.jsonl").display(),
            modbus_table(&sim),
        ),
    )
    .expect("write config");

    let started_ns = now_ns();
    let service = start_service("run", &config);
    // Wait for a run that has the park's energy PUE: two readings of every meter.
    let waited = Instant::now();
    let pue_line = loop {
        let log = service_log("run", &config);
        let found = log
            .lines()
            .find(|l| l.starts_with("analytics: energy PUE, last 1h:") && l.contains("park 1."));
        if let Some(line) = found {
            break line.to_owned();
        }
        assert!(
            waited.elapsed() < Duration::from_secs(180),
            "no analytics run with the park's PUE within 180 s; log:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    stop_service("run", service, &config, Duration::from_secs(120));
    let log = service_log("run", &config);
    assert!(
        log.contains("analysing the last 1h every 5s")
            && log.contains("stopped; every accepted point is stored"),
        "{log}"
    );
    let dead = servers::dead_letters(&work.path().join("dead-letter.jsonl"));
    assert!(dead.is_empty(), "InfluxDB refused lines: {dead:?}");

    // The derived points are in InfluxDB: the park's energy PUE over the trailing hour,
    // one point per run, the value the log printed among them.
    let reader = rt
        .block_on(Store::open(StoreConfig::Influxdb(servers::v1_config(
            &influxd.url(),
            DB,
            &work.path().join("reader"),
        ))))
        .expect("open the InfluxDB store");
    let time = started_ns - 3_600_000_000_000..now_ns() + 3_600_000_000_000;
    let frame = rt
        .block_on(reader.read(&Scan::new("energy_pue", time)))
        .expect("read energy_pue");
    let park: Vec<f64> = frame_rows(&frame)
        .iter()
        // The park's scope tag is its id.
        .filter(|r| r.get("scope") == Some(&Value::from(sim.site.park.id.as_str())))
        .filter(|r| r.get("period") == Some(&Value::from("1h")))
        .filter_map(|r| r.get("pue").and_then(Value::as_f64))
        .collect();
    assert!(
        !park.is_empty(),
        "no park energy_pue in InfluxDB: {:?}",
        frame_rows(&frame)
    );
    let printed = pue_line
        .split("park ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no park PUE in {pue_line:?}"));
    assert!(
        park.iter().all(|pue| (1.0..2.0).contains(pue))
            && park.iter().any(|pue| (pue - printed).abs() < 0.000_51),
        "stored {park:?}, printed {printed}"
    );
    rt.block_on(reader.shutdown()).expect("close");
}
