//! `tidewatch analyze` on bad input and on an empty store: clear errors that name the
//! cause, and zero coverage instead of a number when there is no data. (The happy path,
//! on what the demo stored, is in `tests/demo.rs`.)

use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_tidewatch");

fn analyze(args: &[&str]) -> (Output, String, String) {
    let out = Command::new(BIN)
        .arg("analyze")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot start {BIN}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out, stdout, stderr)
}

const FROM: &str = "2026-01-01T00:00:00+08:00";

#[test]
fn no_store_given_says_how_to_give_one() {
    let (out, _, stderr) = analyze(&["--from", FROM, "--to", "1d"]);
    assert!(!out.status.success());
    assert!(
        stderr.contains("--config FILE") && stderr.contains("--store DIR"),
        "{stderr}"
    );
}

#[test]
fn a_missing_store_directory_is_named() {
    let (out, _, stderr) = analyze(&["--store", "/nonexistent/store", "--from", FROM]);
    assert!(!out.status.success());
    assert!(
        stderr.contains("/nonexistent/store: no such directory"),
        "{stderr}"
    );
}

#[test]
fn bad_times_are_named() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = dir.path().to_str().expect("UTF-8");
    let (out, _, stderr) = analyze(&["--store", store, "--from", "yesterday"]);
    assert!(!out.status.success());
    assert!(stderr.contains("--from \"yesterday\""), "{stderr}");
    let (out, _, stderr) = analyze(&[
        "--store",
        store,
        "--from",
        FROM,
        "--to",
        "2025-12-01T00:00:00+08:00",
    ]);
    assert!(!out.status.success());
    assert!(stderr.contains("--to must be after --from"), "{stderr}");
}

#[test]
fn a_bad_analytics_table_names_the_file_and_table() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("tidewatch.toml");
    std::fs::write(
        &config,
        format!(
            "[store.embedded]\ndir = \"{}\"\n\n[analytics.counters]\nreset_drop_ratio = 5.0\n",
            dir.path().join("store").display()
        ),
    )
    .expect("write config");
    let (out, _, stderr) = analyze(&["--config", config.to_str().expect("UTF-8"), "--from", FROM]);
    assert!(!out.status.success());
    assert!(
        stderr.contains("tidewatch.toml: [analytics]") && stderr.contains("reset_drop_ratio"),
        "{stderr}"
    );
}

#[test]
fn an_empty_store_reports_zero_coverage_and_no_pue() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = dir.path().join("store");
    std::fs::create_dir(&store).expect("mkdir");
    let (out, stdout, stderr) = analyze(&[
        "--store",
        store.to_str().expect("UTF-8"),
        "--from",
        FROM,
        "--to",
        "40d",
    ]);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    // Two months touched: a progress line for each (the whole range is composed from them).
    assert!(
        stderr.contains("month 2026-01") && stderr.contains("month 2026-02"),
        "{stderr}"
    );
    for scope in ["dc1", "dc2", "park"] {
        let row = stdout
            .lines()
            .find(|l| l.starts_with(&format!("{scope} ")))
            .unwrap_or_else(|| panic!("no {scope} row in:\n{stdout}"));
        let cells: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(cells[1], "-", "PUE without data: {row}");
        assert_eq!(cells[2], "0.0%", "coverage without data: {row}");
    }
    // Forty days are too many lines for a terminal: the text says where they are.
    assert!(
        stdout.contains("daily PUE: 40 days, more than the 31 printed here; --json has every day")
            && !stdout.contains("daily PUE (a trend"),
        "{stdout}"
    );
    // The other parts: no data is no number, and cost without a tariff says so.
    assert!(
        stdout.contains("cost by time-of-use period\n  not configured: no tariff"),
        "{stdout}"
    );
    assert!(stdout.contains("thermal anomalies\n  none"), "{stdout}");
    let loops = stdout
        .split("liquid cooling per loop\n")
        .nth(1)
        .unwrap_or_else(|| panic!("no cooling section in:\n{stdout}"));
    let first = loops.lines().next().unwrap_or_default();
    assert!(
        first.starts_with("  dc2") && first.contains("heat - kWh") && first.contains("capture -"),
        "{first}"
    );
}
