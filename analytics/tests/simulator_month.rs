//! Monthly energy PUE of the simulated Qingdao park, read through the `Store` interface
//! from an embedded store, against the simulator's exact ground truth (its kWh
//! integrals): within 0.5 % for each centre and for the park.
//!
//! January 2026, the whole park in fast mode at 5-minute steps (8 928 steps): every
//! energy meter (44) and rack PDU (304) reports its kWh counter each step, 3.1 million
//! readings. Why 5 minutes and not 60 s: the readings go through the embedded store
//! (write-ahead log, Parquet) and back in a debug build; at 60 s that is 15.5 million
//! points and several minutes on the 2-core build machine. The PUE does not depend on
//! the step: the simulator integrates each step's power into both its ground truth and
//! the counters, so the comparison is exact at any step; only the sampling is coarser.
//! The month includes the 32-bit rollover of `dc2-mm03-meter-cooling`.
//!
//! The same store then takes the derived daily and monthly values written back, and
//! the periodic job runs over the trailing day with its clock at the month's end.

use std::time::{Duration, Instant};

use tidewatch_analytics::counters::CounterEventKind;
use tidewatch_analytics::derived::{pue_points, DerivedPeriods, ENERGY_PUE};
use tidewatch_analytics::job::{PeriodicJob, Schedule};
use tidewatch_analytics::{
    energy_pue, pue_trend, AnalyticsConfig, Inventory, ItSource, PueCategory, Subjects,
};
use tidewatch_devices::{DeviceKind, MeterRole, ProfileSet, Site};
use tidewatch_model::Point;
use tidewatch_sim::bindings::{bind_all, Source};
use tidewatch_sim::fast::{capture_frame, device_tags, FastRun, Frame};
use tidewatch_sim::Plant;
use tidewatch_storage::embedded::EmbeddedConfig;
use tidewatch_storage::store::{Scan, Store, StoreConfig};

/// 2026-01-01T00:00:00+08:00, Unix ms.
const JAN_1_MS: i64 = 1_767_196_800_000;
const DAY_MS: i64 = 86_400_000;
const DAYS: i64 = 31;
const STEP_S: f64 = 300.0;

/// Where a device's kWh counter is in a frame, and how its points are named.
struct CounterSource {
    offset: usize,
    tags: Vec<(&'static str, String)>,
    measurement: &'static str,
    field: &'static str,
}

fn counter_sources(
    plant: &Plant,
    frame: &Frame,
    bindings: &[tidewatch_sim::bindings::DeviceBinding],
) -> Vec<CounterSource> {
    let mut out = Vec::new();
    for (d, binding) in bindings.iter().enumerate() {
        let kind = plant.devices()[d].kind;
        let field = match kind {
            DeviceKind::EnergyMeter => "import_kwh",
            DeviceKind::RackPdu => "energy_kwh",
            _ => continue,
        };
        let mut offset = frame.device_offsets[d];
        for fb in &binding.fields {
            if let Source::Number { .. } = fb.source {
                if fb.field.name == field {
                    out.push(CounterSource {
                        offset,
                        tags: device_tags(plant, d),
                        measurement: kind.as_str(),
                        field,
                    });
                }
                offset += 1;
            }
        }
    }
    out
}

fn points(sources: &[CounterSource], frame: &Frame, out: &mut Vec<Point>) {
    let ts = frame.time_unix_ms * 1_000_000;
    for s in sources {
        let v = frame.device_values[s.offset];
        if v.is_nan() {
            continue;
        }
        let mut p = Point::new(s.measurement, ts);
        for (k, value) in &s.tags {
            p.add_tag(*k, value.clone());
        }
        p.add_field(s.field, v);
        out.push(p);
    }
}

fn relative_error(actual: f64, truth: f64) -> f64 {
    (actual - truth) / truth
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monthly_pue_matches_the_simulators_ground_truth() {
    let started = Instant::now();
    let profiles = ProfileSet::builtin().unwrap();
    let site = Site::builtin(&profiles).unwrap();
    let inventory = Inventory::from_site(&site, &profiles).unwrap();
    let mut plant = Plant::new(&site, JAN_1_MS).unwrap();
    let bindings = bind_all(&plant, &profiles).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(StoreConfig::Embedded(EmbeddedConfig::in_dir(dir.path())))
        .await
        .unwrap();

    // The readings at the start, then day by day.
    let first = capture_frame(&plant, &bindings);
    let sources = counter_sources(&plant, &first, &bindings);
    assert_eq!(sources.len(), 44 + 304);
    let mut batch = Vec::new();
    points(&sources, &first, &mut batch);
    let mut written = 0;
    for day in 1..=DAYS {
        {
            let mut run = FastRun::new(&mut plant, &bindings);
            run.run(STEP_S, JAN_1_MS + day * DAY_MS, |_, frame| {
                points(&sources, frame, &mut batch)
            });
        }
        let accepted = store.write(std::mem::take(&mut batch)).await.unwrap();
        assert_eq!(accepted.refused, 0);
        written += accepted.points;
    }
    assert_eq!(written, 348 * (1 + DAYS as usize * 288));
    if let Store::Embedded(embedded) = &store {
        let embedded = embedded.clone();
        tokio::task::spawn_blocking(move || embedded.flush())
            .await
            .unwrap()
            .unwrap();
    }
    println!(
        "simulated and stored {written} readings in {:.1?}",
        started.elapsed()
    );

    // Ground truth, kWh since the start.
    let truth = |centre: &str| plant.centre_energy(centre).unwrap();
    let device_truth = |id: &str| plant.true_energy_kwh(plant.device_index(id).unwrap());
    let (dc1, dc2) = (truth("dc1"), truth("dc2"));
    let park_truth = (dc1.incoming_kwh + dc2.incoming_kwh) / (dc1.it_kwh + dc2.it_kwh);

    let window = JAN_1_MS * 1_000_000..(JAN_1_MS + DAYS * DAY_MS) * 1_000_000;
    let mut config = AnalyticsConfig::default();

    // Category 2: IT energy from the rack PDUs, as the simulator's ground truth.
    config.pue.it_source = ItSource::RackPdu;
    let analysed = Instant::now();
    let report = energy_pue(&store, &inventory, &config, window.clone())
        .await
        .unwrap();
    println!("category 2 report in {:.1?}", analysed.elapsed());
    assert_eq!(report.category, PueCategory::PduOutput);
    let expected = [("dc1", dc1.pue()), ("dc2", dc2.pue())];
    for (scope, (name, truth)) in report.centres.iter().zip(expected) {
        assert_eq!(scope.scope, name);
        let pue = scope.total.pue.unwrap();
        let error = relative_error(pue, truth);
        println!(
            "{name}: PUE {pue:.5} vs truth {truth:.5} ({:+.2e} relative), coverage {}",
            error * 100.0,
            scope.total.coverage
        );
        assert!(error.abs() < 0.005, "{name}: {pue} vs {truth}");
        assert_eq!(scope.total.coverage, 1.0);
        assert_eq!(scope.monthly.len(), 1);
        assert_eq!(scope.daily.len(), 31);
        assert!(scope
            .daily
            .iter()
            .all(|d| d.coverage == 1.0 && d.pue.is_some()));
    }
    let park = report.park.total.pue.unwrap();
    let error = relative_error(park, park_truth);
    println!(
        "park: PUE {park:.5} vs truth {park_truth:.5} ({:+.2e} relative)",
        error * 100.0
    );
    assert!(error.abs() < 0.005, "park: {park} vs {park_truth}");
    let it_error = relative_error(report.park.total.it_kwh, dc1.it_kwh + dc2.it_kwh);
    assert!(it_error.abs() < 0.005, "park IT energy {it_error}");

    // The split adds up, and the rolling counter was recognised and measured right.
    let dc2_report = &report.centres[1];
    let split = &dc2_report.split;
    let pue = dc2_report.total.pue.unwrap();
    let rebuilt = 1.0 + split.clf.unwrap() + split.plf.unwrap() + split.other_ratio.unwrap();
    assert!((rebuilt - pue).abs() < 1e-9, "{rebuilt} vs {pue}");
    assert!(split.power_loss_kwh > 0.0 && split.cooling_kwh > 0.0);
    let cooling = dc2_report
        .meters
        .iter()
        .find(|m| m.meter == "dc2-mm03-meter-cooling")
        .unwrap();
    assert!(
        cooling
            .events
            .iter()
            .any(|e| e.kind == CounterEventKind::Rollover),
        "{:?}",
        cooling.events
    );
    let error = relative_error(cooling.energy_kwh, device_truth("dc2-mm03-meter-cooling"));
    assert!(error.abs() < 0.005, "rolling counter: {error}");
    assert_eq!(dc2_report.modules.len(), 8);
    for module in &dc2_report.modules {
        let ppue = module.ppue.unwrap();
        assert!((1.0..1.3).contains(&ppue), "{}: pPUE {ppue}", module.zone);
    }

    // Category 1: IT at the UPS output, against the truth of those meters.
    config.pue.it_source = ItSource::UpsOutput;
    let report = energy_pue(&store, &inventory, &config, window.clone())
        .await
        .unwrap();
    assert_eq!(report.category, PueCategory::UpsOutput);
    let mut park_facility = 0.0;
    let mut park_it = 0.0;
    for scope in &report.centres {
        let c = &scope.scope;
        let (facility, it) = (
            device_truth(&format!("{c}-incoming")),
            device_truth(&format!("{c}-ups-out")),
        );
        park_facility += facility;
        park_it += it;
        let pue = scope.total.pue.unwrap();
        let error = relative_error(pue, facility / it);
        println!(
            "{c} category 1: PUE {pue:.5} vs truth {:.5} ({:+.2e} relative)",
            facility / it,
            error * 100.0
        );
        assert!(error.abs() < 0.005);
    }
    let park = report.park.total.pue.unwrap();
    assert!(relative_error(park, park_facility / park_it).abs() < 0.005);

    // The PUE alone (facility and IT meters only) is the full report's PUE, total,
    // every day and the month, bit for bit.
    let trend = pue_trend(&store, &inventory, &config, window.clone())
        .await
        .unwrap();
    assert_eq!(trend.category, report.category);
    let scopes = report.centres.iter().chain([&report.park]);
    let trends = trend.centres.iter().chain([&trend.park]);
    for (full, alone) in scopes.zip(trends) {
        assert_eq!(full.scope, alone.scope);
        assert_eq!(full.total, alone.total, "{}", full.scope);
        assert_eq!(full.daily, alone.daily, "{}", full.scope);
        assert_eq!(full.monthly, alone.monthly, "{}", full.scope);
    }
    assert_eq!(trend.centres.len(), 2);
    assert_eq!(inventory.with_roles("dc1", &[MeterRole::Incoming]).len(), 1);

    // Derived values written back (the backfill of `tidewatch analyze --write-back`):
    // the 31 whole local days and the whole month, for each centre and the park.
    let points = pue_points(
        &report,
        &DerivedPeriods::Calendar,
        inventory.utc_offset_hours,
    );
    assert_eq!(points.len(), 3 * (31 + 1));
    let accepted = store.write(points).await.unwrap();
    assert_eq!((accepted.points, accepted.refused), (96, 0));
    let days = store
        .read(&Scan::new(ENERGY_PUE, window.clone()).tag("period", "day"))
        .await
        .unwrap();
    assert_eq!(days.height(), 93);

    // The periodic job over the trailing 24 hours, its clock at the end of January:
    // its window is exactly the last local day, so its park PUE is that day's.
    fn end_of_january() -> i64 {
        (JAN_1_MS + DAYS * DAY_MS) * 1_000_000
    }
    let schedule = Schedule {
        every: Duration::from_millis(200),
        window: Duration::from_secs(86_400),
        first_after: Duration::ZERO,
    };
    let job = PeriodicJob::start(
        store.clone(),
        Subjects::from_site(&site, &profiles).unwrap(),
        config.clone(),
        schedule,
        end_of_january,
    );
    let mut latest = job.latest();
    let run = tokio::time::timeout(Duration::from_secs(60), latest.wait_for(|r| r.is_some()))
        .await
        .expect("a job run within 60 s")
        .unwrap()
        .clone()
        .unwrap();
    job.stop().await;
    let analysis = run.report.as_ref().expect("a report");
    // Only counters are stored here: the other parts are empty, not errors.
    assert!(analysis.failures().is_empty(), "{:?}", analysis.failures());
    assert_eq!(analysis.anomalies.result().map(Vec::len), Some(0));
    let trailing = &analysis.pue;
    let last_day = report.park.daily.last().unwrap();
    assert_eq!(last_day.label, "2026-01-31");
    assert_eq!(trailing.window_ns, last_day.window_ns);
    let (a, b) = (trailing.park.total.pue.unwrap(), last_day.pue.unwrap());
    assert!((a - b).abs() < 1e-12, "job {a} vs calendar day {b}");
    // Per scope: PUE and split; per module of dc2 (8) and dc1: pPUE.
    let modules: usize = trailing.centres.iter().map(|c| c.modules.len()).sum();
    assert!(run.written >= 3 * 2 + modules, "{} written", run.written);
    let derived = store
        .read(&Scan::new(ENERGY_PUE, 0..i64::MAX).tag("period", "24h"))
        .await
        .unwrap();
    assert!(derived.height() >= 3, "{derived}");
    store.shutdown().await.unwrap();
    println!("total {:.1?}", started.elapsed());
}
