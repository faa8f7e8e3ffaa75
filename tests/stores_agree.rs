//! The same month in a real InfluxDB 1.x (`influxd`, started here on a free port) and
//! in the embedded store gives the same analysis: energy PUE and its split, peak
//! demand, cost, carbon, the cooling report and the same thermal anomalies.
//!
//! January 2026 of a small park (the built-in site cut to dc1 row01 and dc2 mm01, with
//! both centres' meters), in the simulator's fast mode at 5-minute steps, every field
//! of every device and sensor as the collectors store it, with faults injected (a pump
//! failure, a drifting inlet sensor, a phase overload) so that the anomaly list is not
//! empty. The same batches go to both stores; each store is closed (the InfluxDB writer
//! delivers its spool) and opened again to read. Why 5 minutes: the InfluxQL reader
//! goes through CSV (about 40,000 rows/s, BENCHMARKS.md) and this is a debug build;
//! 5-minute steps keep the month at about 0.9 million points and the test to a few
//! minutes, while the comparison does not depend on the step.
//!
//! The analyses are compared as JSON, every number within 1e-9 relative (InfluxDB
//! returns the float64 it was given; only summation order could differ) and every
//! string, count and timestamp equal.

#[path = "../analytics/tests/support/report_diff.rs"]
mod report_diff;
#[path = "../storage/tests/servers/mod.rs"]
mod servers;

use std::time::{Duration, Instant};

use serde_json::Value;
use tidewatch_analytics::anomaly::AnomalyKind;
use tidewatch_analytics::{analyze_range, AnalyticsConfig, Subjects};
use tidewatch_devices::{FaultKind, ProfileSet, Site};
use tidewatch_sim::bindings::bind_all;
use tidewatch_sim::fast::{frame_points, FastRun};
use tidewatch_sim::{FaultRequest, Plant};
use tidewatch_storage::embedded::EmbeddedConfig;
use tidewatch_storage::store::{Store, StoreConfig};

/// 2026-01-01T00:00:00+08:00, Unix ms.
const JAN_1_MS: i64 = 1_767_196_800_000;
const DAY_MS: i64 = 86_400_000;
const HOUR_MS: i64 = 3_600_000;
const DAYS: i64 = 31;
const STEP_S: f64 = 300.0;
const DB: &str = "park";

/// The built-in site cut down to dc1 row01 and dc2 mm01.
fn small_site(profiles: &ProfileSet) -> Site {
    let mut site = Site::builtin(profiles).expect("builtin site");
    site.faults.clear();
    for centre in &mut site.centres {
        let keep = if centre.id == "dc1" { "row01" } else { "mm01" };
        centre.zones.retain(|z| z.id == keep);
    }
    site
}

fn fault(kind: FaultKind, target: &str, field: Option<&str>, day: i64, hours: i64) -> FaultRequest {
    FaultRequest {
        kind,
        target: target.into(),
        field: field.map(Into::into),
        magnitude: None,
        start_unix_ms: Some(JAN_1_MS + day * DAY_MS + 10 * HOUR_MS),
        duration_s: Some((hours * 3600) as f64),
    }
}

#[test]
fn influxdb_and_the_embedded_store_give_the_same_analysis_of_a_month() {
    servers::init_logging();
    let started = Instant::now();
    let (rt, influxd) = servers::runtime_and_influxd(DB);
    let work = tempfile::tempdir().expect("temp dir");
    let mut influx_config = servers::v1_config(&influxd.url(), DB, &work.path().join("writer"));
    // Closing the writer delivers its whole spool: give it the time that takes.
    influx_config.shutdown_timeout = Duration::from_secs(600);
    influx_config.request_timeout = Duration::from_secs(60);
    let embedded_config = EmbeddedConfig::in_dir(work.path().join("embedded"));

    let profiles = ProfileSet::builtin().expect("builtin profiles");
    let site = small_site(&profiles);
    let written = rt.block_on(async {
        let to_influx = Store::open(StoreConfig::Influxdb(influx_config.clone()))
            .await
            .expect("open the InfluxDB store");
        let to_embedded = Store::open(StoreConfig::Embedded(embedded_config.clone()))
            .await
            .expect("open the embedded store");
        let mut plant = Plant::new(&site, JAN_1_MS).expect("plant");
        for f in [
            fault(FaultKind::PumpFailure, "dc2-mm01-cdu", None, 9, 3),
            fault(
                FaultKind::DriftingSensor,
                "dc1-row01-r03-inlet",
                Some("temperature_c"),
                16,
                12,
            ),
            fault(FaultKind::PhaseOverload, "dc2-mm01-r05-pdu-a", None, 23, 4),
        ] {
            plant.inject(f).expect("inject a fault");
        }
        let bindings = bind_all(&plant, &profiles).expect("bindings");
        let mut written = 0;
        for day in 1..=DAYS {
            let mut batch = Vec::new();
            {
                let mut run = FastRun::new(&mut plant, &bindings);
                run.run(STEP_S, JAN_1_MS + day * DAY_MS, |plant, frame| {
                    frame_points(plant, &bindings, frame, &mut batch)
                });
            }
            for store in [&to_influx, &to_embedded] {
                let accepted = store.write(batch.clone()).await.expect("write");
                assert_eq!(accepted.refused, 0);
            }
            written += batch.len();
        }
        to_influx.shutdown().await.expect("deliver to InfluxDB");
        to_embedded
            .shutdown()
            .await
            .expect("close the embedded store");
        written
    });
    let dead = servers::dead_letters(&influx_config.dead_letter_file);
    assert!(dead.is_empty(), "InfluxDB refused lines: {dead:?}");
    println!(
        "{written} points into both stores in {:.1?}",
        started.elapsed()
    );

    let subjects = Subjects::from_site(&site, &profiles).expect("subjects");
    let mut config = AnalyticsConfig::default();
    // The sample configuration's tariff, so that cost is compared too.
    let sample: toml::Table =
        toml::from_str(include_str!("../config/collect.toml")).expect("config/collect.toml");
    let sample: AnalyticsConfig = sample["analytics"]
        .clone()
        .try_into()
        .expect("its [analytics] table");
    config.tariffs = sample.tariffs;
    let window = JAN_1_MS * 1_000_000..(JAN_1_MS + DAYS * DAY_MS) * 1_000_000;
    let analyses: Vec<Value> = rt.block_on(async {
        let mut reader = servers::v1_config(&influxd.url(), DB, &work.path().join("reader"));
        reader.request_timeout = Duration::from_secs(120);
        let mut out = Vec::new();
        for (name, config_of_store) in [
            ("InfluxDB", StoreConfig::Influxdb(reader)),
            ("embedded store", StoreConfig::Embedded(embedded_config)),
        ] {
            let store = Store::open(config_of_store).await.expect("open to read");
            let analysed = Instant::now();
            let analysis = analyze_range(&store, &subjects, &config, window.clone())
                .await
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            println!("{name}: analysed in {:.1?}", analysed.elapsed());
            assert!(
                analysis.failures().is_empty(),
                "{name}: {:?}",
                analysis.failures()
            );
            // Not a vacuous comparison: the month is there and the faults were found.
            let pue = analysis.pue.park.total.pue.expect("a park PUE");
            assert!((1.0..2.0).contains(&pue), "{name}: PUE {pue}");
            // The first reading is one step after the month starts: 5 minutes short.
            let coverage = analysis.pue.park.total.coverage;
            assert!(coverage > 0.999, "{name}: coverage {coverage}");
            let cost = analysis.cost.result().expect("cost");
            assert!(cost.park.cost_cny > 0.0, "{name}");
            let cooling = analysis.cooling.result().expect("cooling");
            assert!(cooling.loops[0].capture.total.ratio.is_some(), "{name}");
            let found = analysis.anomalies.result().expect("anomalies");
            for (kind, device) in [
                (AnomalyKind::PumpTrip, "dc2-mm01-cdu"),
                (AnomalyKind::PhaseCurrent, "dc2-mm01-r05-pdu-a"),
            ] {
                assert!(
                    found.iter().any(|a| a.kind == kind && a.device == device),
                    "{name}: no {kind:?} on {device} in {found:#?}"
                );
            }
            println!("{name}: park PUE {pue:.5}, {} anomalies", found.len());
            out.push(serde_json::to_value(&analysis).expect("JSON"));
            store.shutdown().await.expect("close");
        }
        out
    });
    let found = report_diff::differences(&analyses[0], &analyses[1], report_diff::none_allowed);
    assert!(
        found.is_empty(),
        "InfluxDB and the embedded store disagree ({}):\n{}",
        found.len(),
        found.join("\n")
    );
    println!("done in {:.1?}", started.elapsed());
}
