//! The `tidewatch` binary as a newcomer meets it: the README's first command
//! (`tidewatch demo`) runs the simulated park with its embedded MQTT broker, stores
//! the simulator's points in the embedded store and reports what flows; `check` validates the shipped configuration and points at the
//! file and line of a bad profile; `simulate --fast` writes valid, deterministic line
//! protocol.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_tidewatch");

/// Devices and sensors of the builtin park.
const MODBUS_DEVICES: usize = 390;
const MQTT_SENSORS: usize = 182;

/// Run `tidewatch` with `args`, killing it if it outlives `timeout`.
fn run(args: &[&str], timeout: Duration) -> (Output, Duration) {
    let started = Instant::now();
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {BIN}: {e}"));
    // Drain both pipes on threads, so a chatty child never blocks on a full pipe.
    let mut stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    let out = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = stdout.read_to_end(&mut v);
        v
    });
    let err = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = stderr.read_to_end(&mut v);
        v
    });
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for tidewatch") {
            break status;
        }
        if started.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            let stdout = String::from_utf8_lossy(&out.join().unwrap_or_default()).into_owned();
            panic!(
                "`tidewatch {}` still running after {timeout:?}; stdout so far:\n{stdout}",
                args.join(" ")
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let output = Output {
        status,
        stdout: out.join().expect("stdout reader"),
        stderr: err.join().expect("stderr reader"),
    };
    (output, started.elapsed())
}

/// Every `.parquet` file under `dir`.
fn parquet_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries {
        let p = e.expect("dir entry").path();
        if p.is_dir() {
            out.extend(parquet_files(&p));
        } else if p.extension().is_some_and(|e| e == "parquet") {
            out.push(p);
        }
    }
    out
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The number after `label` in `line`, e.g. `MQTT messages 1234`.
fn number_after(line: &str, label: &str) -> Option<u64> {
    let rest = &line[line.find(label)? + label.len()..];
    rest.split_whitespace().next()?.parse().ok()
}

#[test]
fn demo_runs_the_park_and_delivers_mqtt_through_the_embedded_broker() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data_dir = dir.path().join("demo");
    let data_arg = data_dir.to_str().expect("UTF-8 temp path");
    let started_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64;
    let (out, took) = run(
        &["demo", "--duration", "100s", "--data-dir", data_arg],
        Duration::from_secs(200),
    );
    let stdout = text(&out.stdout);
    let stderr = text(&out.stderr);
    assert!(
        out.status.success(),
        "demo failed ({}):\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    println!("demo ran {took:?}");

    // The banner, with the park's counts.
    assert!(stdout.starts_with("tidewatch demo: "), "banner:\n{stdout}");
    let counts = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("plant simulator"))
        .unwrap_or_else(|| panic!("no plant simulator line in:\n{stdout}"));
    assert!(
        counts.contains(&format!("{MODBUS_DEVICES} Modbus TCP devices"))
            && counts.contains(&format!("{MQTT_SENSORS} MQTT sensors")),
        "counts: {counts}"
    );
    assert!(
        stdout.contains("(embedded rumqttd)"),
        "broker line:\n{stdout}"
    );

    // Status lines, every 10 s; the last one counts what the broker delivered.
    let status: Vec<&str> = stdout
        .lines()
        .filter(|l| l.contains("| Modbus requests"))
        .collect();
    assert!(status.len() >= 2, "status lines:\n{stdout}");
    let last = status.last().expect("a status line");
    let delivered = number_after(last, "MQTT messages ")
        .unwrap_or_else(|| panic!("no MQTT message count in {last:?}"));
    assert!(
        delivered > 0,
        "the embedded broker delivered nothing: {last}"
    );
    // Over ~30 s every sensor published about three times; most of it must arrive.
    assert!(
        delivered >= MQTT_SENSORS as u64,
        "only {delivered} MQTT messages delivered: {last}"
    );
    for l in &status {
        assert!(l.contains("PUE(now)"), "status line: {l}");
    }
    assert!(stdout.contains("stopping; ground truth in"), "{stdout}");

    // A quiet demo: nothing on stderr (the broker's own logging included).
    assert!(
        stderr.trim().is_empty(),
        "the demo wrote to stderr:\n{stderr}"
    );

    // The embedded store: the status line counts stored rows, growing; the demo
    // leaves Parquet files in <data dir>/store, which read back.
    let stored: Vec<u64> = status
        .iter()
        .map(|l| {
            number_after(l, "stored ").unwrap_or_else(|| panic!("no stored row count in {l:?}"))
        })
        .collect();
    assert!(
        stored.windows(2).all(|w| w[0] < w[1]) && stored[0] > 0,
        "stored rows do not grow: {stored:?}"
    );
    let store_dir = data_dir.join("store");
    let parquet = parquet_files(&store_dir.join("data"));
    assert!(
        !parquet.is_empty(),
        "no Parquet files under {}",
        store_dir.display()
    );
    let store = tidewatch_storage::embedded::EmbeddedStore::open(
        tidewatch_storage::embedded::EmbeddedConfig::in_dir(&store_dir),
    )
    .expect("open the demo's store");
    assert_eq!(
        store.stats().pending_points,
        0,
        "flushed when the demo stopped"
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64;
    let hour = 3_600_000_000_000;
    // The last hour holds backfilled values (60 s steps) and the live ones (10 s).
    let cdu = store
        .scan(&tidewatch_storage::store::Scan::new("cdu", now - hour..now))
        .expect("scan the demo's store")
        .collect()
        .expect("collect");
    assert!(cdu.height() > 0, "no CDU rows in the last hour");
    for m in ["energy_meter", "rack_pdu", "rack_inlet"] {
        let df = store
            .scan(&tidewatch_storage::store::Scan::new(
                m,
                now - 3 * 24 * hour..now,
            ))
            .expect("scan")
            .collect()
            .expect("collect");
        assert!(df.height() > 0, "no {m} rows");
    }
    // The collectors read the simulator over Modbus TCP and MQTT: by the last status
    // line every device is up, and what they read is in the store (the backfill
    // writes neither health points nor anything after the demo started).
    let last = status.last().expect("a status line");
    assert!(
        last.contains(&format!(
            "Modbus {MODBUS_DEVICES}/{MODBUS_DEVICES} devices up"
        )),
        "not every device collected: {last}"
    );
    // The backfill ends at the second the demo started: 12 s later, values are the
    // collectors'.
    let live_from = started_ns + 12_000_000_000;
    let live = |m: &str| {
        store
            .scan(&tidewatch_storage::store::Scan::new(m, live_from..now))
            .expect("scan")
            .collect()
            .expect("collect")
    };
    let health = live("modbus_device");
    assert!(
        health.height() >= MODBUS_DEVICES,
        "{} modbus_device health rows for {MODBUS_DEVICES} devices",
        health.height()
    );
    let polled_pdus = live("rack_pdu");
    assert!(polled_pdus.height() > 0, "no PDU values collected live");
    let inlet = live("rack_inlet");
    assert!(
        inlet.height() >= MQTT_SENSORS / 2,
        "only {} rack inlet rows collected over MQTT",
        inlet.height()
    );
    assert!(
        live("mqtt_collector").height() > 0,
        "no MQTT collector health"
    );
    println!(
        "demo store: {} Parquet files, {} rows, CDU rows in the last hour: {}",
        parquet.len(),
        store.stats().rows_in_files,
        cdu.height()
    );

    // The periodic analytics job ran (once the backfill had written the last 24 hours:
    // about a minute in a debug build, hence the demo's 100 s here), printed the PUE of
    // the last 24 hours and wrote it back to the store.
    let analytics = stdout
        .lines()
        .find(|l| l.starts_with("analytics: energy PUE, last 24 h:"))
        .unwrap_or_else(|| panic!("no analytics line in:\n{stdout}"));
    let park_pue: f64 = analytics
        .split("park ")
        .nth(1)
        .and_then(|rest| rest.split([' ', ',', '(']).next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no park PUE in {analytics:?}"));
    assert!((1.0..2.0).contains(&park_pue), "{analytics}");
    let derived = store
        .scan(
            &tidewatch_storage::store::Scan::new("energy_pue", started_ns..now)
                .tag("period", "24h"),
        )
        .expect("scan")
        .collect()
        .expect("collect");
    assert!(
        derived.height() >= 3,
        "energy_pue rows of the job: {derived}"
    );
    // The rest of the analysis: cost (the sample tariff), each loop's capture ratio,
    // anomalies; each written back too.
    for line in [
        "  cost, last 24 h: park ",
        "  heat capture ratio, last 24 h: mm01 ",
        "  thermal anomalies, last 24 h: ",
    ] {
        assert!(stdout.contains(line), "no {line:?} in:\n{stdout}");
    }
    for measurement in ["energy_cost", "liquid_cooling", "peak_demand", "carbon"] {
        let rows = store
            .scan(
                &tidewatch_storage::store::Scan::new(measurement, started_ns..now)
                    .tag("period", "24h"),
            )
            .expect("scan")
            .collect()
            .expect("collect");
        assert!(rows.height() >= 1, "no {measurement} rows of the job");
    }
    drop(store);

    // `tidewatch analyze` on what the demo stored, as the demo's last lines suggest:
    // the two backfilled days hold at least one whole local day, written back.
    let from = chrono::DateTime::from_timestamp_nanos(started_ns - 2 * 24 * hour)
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    assert!(
        stdout.contains("analyze --store") && stdout.contains("--config config/collect.toml"),
        "{stdout}"
    );
    let (out, took) = run(
        &[
            "analyze",
            "--store",
            store_dir.to_str().expect("UTF-8"),
            "--config",
            "config/collect.toml",
            "--from",
            &from,
            "--to",
            "now",
            "--write-back",
        ],
        Duration::from_secs(120),
    );
    let report = text(&out.stdout);
    let progress = text(&out.stderr);
    assert!(
        out.status.success(),
        "analyze failed:\n{report}\n{progress}"
    );
    println!("analyze ran {took:?}:\n{report}");
    assert!(report.contains("PUE category"), "{report}");
    let park = report
        .lines()
        .find(|l| l.starts_with("park "))
        .unwrap_or_else(|| panic!("no park row in:\n{report}"));
    let cells: Vec<&str> = park.split_whitespace().collect();
    let pue: f64 = cells[1]
        .parse()
        .unwrap_or_else(|_| panic!("park PUE in {park:?}"));
    assert!((1.0..2.0).contains(&pue), "{park}");
    // The other parts of the report: priced with the sample tariff, every liquid loop.
    let cost = report
        .split("cost by time-of-use period\n")
        .nth(1)
        .and_then(|rest| rest.lines().find(|l| l.trim_start().starts_with("park ")))
        .unwrap_or_else(|| panic!("no park cost in:\n{report}"));
    assert!(cost.contains(" CNY for "), "{cost}");
    let loops = report
        .split("liquid cooling per loop\n")
        .nth(1)
        .unwrap_or_else(|| panic!("no cooling section in:\n{report}"));
    assert_eq!(
        loops.lines().take_while(|l| l.starts_with("  dc2")).count(),
        8,
        "{loops}"
    );
    assert!(report.contains("\nthermal anomalies\n"), "{report}");
    assert!(progress.contains("month "), "no progress lines: {progress}");
    let written = number_after(&progress, "wrote ")
        .unwrap_or_else(|| panic!("no write-back count in {progress}"));
    assert!(written >= 3, "{progress}");

    // The endpoints document.
    let endpoints = std::fs::read_to_string(data_dir.join("endpoints.json"))
        .expect("endpoints.json in the data dir");
    let v: serde_json::Value = serde_json::from_str(&endpoints).expect("endpoints.json parses");
    assert_eq!(v["sensors"].as_array().map(Vec::len), Some(MQTT_SENSORS));
    let devices: usize = v["modbus"]
        .as_array()
        .expect("modbus endpoints")
        .iter()
        .map(|e| e["devices"].as_array().map_or(0, Vec::len))
        .sum();
    assert_eq!(devices, MODBUS_DEVICES);
    assert!(v["control"]
        .as_str()
        .is_some_and(|c| c.starts_with("http://")));
    assert!(v["mqtt_broker"].as_str().is_some());
}

#[test]
fn check_accepts_the_builtin_configuration() {
    let (out, took) = run(&["check"], Duration::from_secs(60));
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "check failed: {stdout}{}",
        text(&out.stderr)
    );
    assert!(stdout.starts_with("ok:"), "{stdout}");
    assert!(
        stdout.contains(&format!("{MODBUS_DEVICES} Modbus devices"))
            && stdout.contains(&format!("{MQTT_SENSORS} MQTT sensors")),
        "{stdout}"
    );
    println!("check ran {took:?}");
}

fn workspace_file(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

#[test]
fn check_names_the_file_and_line_of_a_bad_profile() {
    let dir = tempfile::tempdir().expect("temp dir");
    for entry in std::fs::read_dir(workspace_file("fixtures/profiles")).expect("profiles") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "toml") {
            std::fs::copy(&path, dir.path().join(path.file_name().expect("name"))).expect("copy");
        }
    }
    std::fs::copy(
        workspace_file("devices/tests/data/bad/profile-overlap.toml"),
        dir.path().join("profile-overlap.toml"),
    )
    .expect("copy the bad profile");
    let profiles = dir.path().to_str().expect("UTF-8 temp path");
    let (out, _) = run(&["check", "--profiles", profiles], Duration::from_secs(60));
    let stderr = text(&out.stderr);
    assert!(
        !out.status.success(),
        "check accepted a bad profile: {stderr}"
    );
    // As devices/tests/data/bad/profile-overlap.expected says: file, line, column, field.
    assert!(
        stderr.contains("profile-overlap.toml:23:11"),
        "stderr does not name the file and line: {stderr}"
    );
    assert!(stderr.contains("overlaps"), "{stderr}");
    assert!(text(&out.stdout).is_empty(), "check printed on stdout");
}

#[test]
fn simulate_fast_writes_valid_deterministic_line_protocol() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut outputs = Vec::new();
    for n in 0..2 {
        let file = dir.path().join(format!("run{n}.lp"));
        let file_arg = file.to_str().expect("UTF-8 temp path");
        let (out, took) = run(
            &[
                "simulate", "--fast", "--to", "1h", "--step", "60s", "--out", file_arg,
            ],
            Duration::from_secs(120),
        );
        assert!(
            out.status.success(),
            "simulate --fast failed: {}",
            text(&out.stderr)
        );
        println!("simulate --fast run {n} took {took:?}");
        outputs.push(std::fs::read(&file).expect("the output file"));
    }
    let lp = std::str::from_utf8(&outputs[0]).expect("line protocol is UTF-8");
    let mut lines = 0;
    let mut timestamps = std::collections::BTreeSet::new();
    for (i, parsed) in influxdb_line_protocol::parse_lines(lp).enumerate() {
        let line = parsed.unwrap_or_else(|e| {
            panic!(
                "line {}: {e}: {:?}",
                i + 1,
                lp.lines().nth(i).unwrap_or_default()
            )
        });
        assert!(!line.field_set.is_empty(), "line {}: no fields", i + 1);
        timestamps.insert(
            line.timestamp
                .unwrap_or_else(|| panic!("line {}: no timestamp", i + 1)),
        );
        lines += 1;
    }
    // One hour at 60 s: 60 steps, each a point per device and per sensor.
    assert_eq!(timestamps.len(), 60, "distinct timestamps");
    assert_eq!(lines, 60 * (MODBUS_DEVICES + MQTT_SENSORS), "points");
    assert_eq!(lp.lines().count(), lines, "every line parses as one point");
    assert!(
        outputs[0] == outputs[1],
        "two runs with the same arguments differ (sizes {} and {})",
        outputs[0].len(),
        outputs[1].len()
    );
}
