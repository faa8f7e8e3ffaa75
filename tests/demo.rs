//! The `tidewatch` binary as a newcomer meets it: the README's first command
//! (`tidewatch demo`) runs the simulated park with its embedded MQTT broker, stores
//! the simulator's points in the embedded store and reports what flows; `check` validates the shipped configuration and points at the
//! file and line of a bad profile; `simulate --fast` writes valid, deterministic line
//! protocol, and with `--store` an embedded store that `analyze` reads.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_tidewatch");

/// How the demo's line of each analytics run starts.
const ANALYTICS_LINE: &str = "analytics: energy PUE, last 24h:";

/// Devices and sensors of the builtin park.
const MODBUS_DEVICES: usize = 390;
const MQTT_SENSORS: usize = 182;

/// Run `tidewatch` with `args`, killing it if it outlives `timeout`.
fn run(args: &[&str], timeout: Duration) -> (Output, Duration) {
    run_until(args, None, timeout)
}

/// Run `tidewatch` with `args`; once a line of its standard output starts with
/// `interrupt_at`, interrupt it (SIGINT, as Ctrl-C does) and let it stop on its own.
/// Kill it if it outlives `timeout`.
fn run_until(args: &[&str], interrupt_at: Option<&str>, timeout: Duration) -> (Output, Duration) {
    let started = Instant::now();
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {BIN}: {e}"));
    // Drain both pipes on threads, so a chatty child never blocks on a full pipe.
    let stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    let seen = Arc::new(AtomicBool::new(false));
    let out = {
        let (seen, marker) = (seen.clone(), interrupt_at.map(str::to_owned));
        std::thread::spawn(move || {
            let mut v = Vec::new();
            let mut lines = BufReader::new(stdout);
            let mut line = Vec::new();
            while lines.read_until(b'\n', &mut line).unwrap_or(0) > 0 {
                if marker
                    .as_ref()
                    .is_some_and(|m| line.starts_with(m.as_bytes()))
                {
                    seen.store(true, Ordering::Relaxed);
                }
                v.append(&mut line);
            }
            v
        })
    };
    let err = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = stderr.read_to_end(&mut v);
        v
    });
    let mut interrupted = false;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for tidewatch") {
            break status;
        }
        if !interrupted && seen.load(Ordering::Relaxed) {
            interrupted = true;
            let sent = Command::new("kill")
                .args(["-INT", &child.id().to_string()])
                .status()
                .expect("run kill");
            assert!(sent.success(), "kill -INT failed");
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

/// Run `tidewatch` with `args` and require success; its standard output and error.
fn run_ok(args: &[&str], timeout: Duration) -> (String, String) {
    let (out, took) = run(args, timeout);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    let command = args[..2.min(args.len())].join(" ");
    assert!(out.status.success(), "{command} failed: {stderr}\n{stdout}");
    println!("{command} took {took:?}");
    (stdout, stderr)
}

/// `name` in the temporary folder, as a command-line argument.
fn temp_path(dir: &tempfile::TempDir, name: &str) -> String {
    let path = dir.path().join(name);
    path.to_str().expect("UTF-8 temp path").to_owned()
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
    // Until the periodic analytics job has printed its first run (once the backfill has
    // written the last 24 hours: about a minute in a debug build, more on a busy
    // machine), then Ctrl-C, as a newcomer stops it.
    let (out, took) = run_until(
        &["demo", "--data-dir", data_arg],
        Some(ANALYTICS_LINE),
        Duration::from_secs(400),
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

    // The periodic analytics job ran, printed the PUE of the last 24 hours and wrote it
    // back to the store.
    let analytics = stdout
        .lines()
        .find(|l| l.starts_with(ANALYTICS_LINE))
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
        "  cost, last 24h: park ",
        "  heat capture ratio, last 24h: mm01 ",
        "  thermal anomalies, last 24h: ",
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

#[test]
fn simulate_fast_fills_an_embedded_store_that_analyze_reads() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store_arg = &temp_path(&dir, "store");
    let lp_file = dir.path().join("six-hours.lp");
    let lp_arg = &temp_path(&dir, "six-hours.lp");
    let from = "2026-01-01T00:00:00+08:00";
    let (_, stderr) = run_ok(
        &[
            "simulate", "--fast", "--from", from, "--to", "6h", "--step", "60s", "--store",
            store_arg, "--out", lp_arg,
        ],
        Duration::from_secs(300),
    );
    // Every point of the line protocol went into the store, and the command says so.
    let lines = std::fs::read_to_string(&lp_file)
        .expect("the line protocol")
        .lines()
        .count();
    assert_eq!(lines, 360 * (MODBUS_DEVICES + MQTT_SENSORS), "points");
    assert!(
        stderr.contains(&format!("{lines} points stored in {store_arg}")),
        "{stderr}"
    );
    let command = format!(
        "tidewatch analyze --store {store_arg} --from 2025-12-31T16:00:00Z --to 2025-12-31T22:00:00Z"
    );
    assert!(stderr.contains(&command), "no analyze command in: {stderr}");

    // The command it prints reads them back: energy PUE with full coverage.
    let (report, _) = run_ok(
        &[
            "analyze", "--store", store_arg, "--from", from, "--to", "6h",
        ],
        Duration::from_secs(300),
    );
    for scope in ["dc1", "dc2", "park"] {
        let row = report
            .lines()
            .find(|l| l.starts_with(&format!("{scope} ")))
            .unwrap_or_else(|| panic!("no {scope} row in:\n{report}"));
        let cells: Vec<&str> = row.split_whitespace().collect();
        let pue: f64 = cells[1]
            .parse()
            .unwrap_or_else(|_| panic!("no PUE in: {row}"));
        let coverage: f64 = cells[2]
            .trim_end_matches('%')
            .parse()
            .unwrap_or_else(|_| panic!("no coverage in: {row}"));
        assert!((1.0..2.0).contains(&pue), "{row}");
        assert!(coverage > 99.0, "{row}");
    }

    // The same period again would store every point twice: refused.
    let (again, _) = run(
        &[
            "simulate", "--fast", "--from", from, "--to", "1h", "--step", "60s", "--store",
            store_arg,
        ],
        Duration::from_secs(120),
    );
    let stderr = text(&again.stderr);
    assert!(!again.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("the store in {store_arg} already holds"))
            && stderr.contains("choose another folder or period"),
        "{stderr}"
    );
}

#[test]
fn simulate_fast_injects_command_line_faults_that_analyze_finds() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store_arg = &temp_path(&dir, "store");
    let truth = dir.path().join("truth.jsonl");
    let truth_arg = &temp_path(&dir, "truth.jsonl");
    let from = "2026-07-01T00:00:00+08:00";
    let from_ms: i64 = 1_782_835_200_000;
    // A pump trip from 2 h for 30 min, after the detectors' 2 h of baseline.
    run_ok(
        &[
            "simulate",
            "--fast",
            "--from",
            from,
            "--to",
            "3h",
            "--store",
            store_arg,
            "--truth",
            truth_arg,
            "--fault",
            "kind=pump_failure,target=dc2-mm01-cdu,at=2h,duration=30m",
        ],
        Duration::from_secs(600),
    );

    // The ground truth holds the fault's start and end at the requested times.
    let events: Vec<serde_json::Value> = std::fs::read_to_string(&truth)
        .expect("the ground-truth file")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let summary: Vec<(&str, &str, &str, i64)> = events
        .iter()
        .map(|e| {
            (
                e["event"].as_str().unwrap_or_default(),
                e["kind"].as_str().unwrap_or_default(),
                e["target"].as_str().unwrap_or_default(),
                e["time_unix_ms"].as_i64().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (
                "fault_start",
                "pump_failure",
                "dc2-mm01-cdu",
                from_ms + 7_200_000
            ),
            (
                "fault_end",
                "pump_failure",
                "dc2-mm01-cdu",
                from_ms + 9_000_000
            ),
        ]
    );

    // The analytics find the trip on that CDU, while it acted.
    let (report, _) = run_ok(
        &[
            "analyze", "--store", store_arg, "--from", from, "--to", "3h", "--json",
        ],
        Duration::from_secs(300),
    );
    let report: serde_json::Value = serde_json::from_str(&report).expect("JSON report");
    let anomalies = report["anomalies"]["result"]
        .as_array()
        .unwrap_or_else(|| panic!("no anomalies in {report:#}"));
    let start_ns = (from_ms + 7_200_000) * 1_000_000;
    let end_ns = (from_ms + 9_000_000) * 1_000_000;
    let trip = anomalies.iter().find(|a| {
        a["kind"] == "pump_trip"
            && a["device"] == "dc2-mm01-cdu"
            && a["detected_ns"]
                .as_i64()
                .is_some_and(|t| (start_ns..=end_ns).contains(&t))
    });
    assert!(
        trip.is_some(),
        "no pump_trip on dc2-mm01-cdu in {anomalies:#?}"
    );
}

#[test]
fn simulate_refuses_a_bad_fault_before_it_runs() {
    let cases: [(&[&str], &str); 3] = [
        (
            &["--fault", "kind=pump_failure,target=dc9-mm01-cdu"],
            "fault on \"dc9-mm01-cdu\": no device or sensor has this id",
        ),
        (
            &["--fault", "kind=pump_failure,target=dc2-mm01-r01-pdu-a"],
            "a pump_failure fault cannot act on this target",
        ),
        (
            &["--fault", "kind=pump_trip,target=dc2-mm01-cdu"],
            "unknown fault kind \"pump_trip\"",
        ),
    ];
    for (fault, expected) in cases {
        let mut args = vec!["simulate", "--fast", "--to", "10m"];
        args.extend_from_slice(fault);
        let (out, _) = run(&args, Duration::from_secs(60));
        let stderr = text(&out.stderr);
        assert!(!out.status.success(), "{stderr}");
        assert!(stderr.contains(expected), "{fault:?}: {stderr}");
        assert!(!stderr.contains("steps,"), "it ran anyway: {stderr}");
    }
}

#[test]
fn simulate_fast_names_a_store_it_cannot_open() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("a-file");
    std::fs::write(&file, "not a folder").expect("write");
    let file_arg = file.to_str().expect("UTF-8 temp path");
    let (out, _) = run(
        &["simulate", "--fast", "--to", "1h", "--store", file_arg],
        Duration::from_secs(60),
    );
    let stderr = text(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot open the embedded store in {file_arg}")),
        "{stderr}"
    );
}
