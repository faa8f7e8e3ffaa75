//! Cost by time-of-use period, peak demand and instantaneous PUE of the simulated
//! Qingdao park, read through the `Store` interface from an embedded store, against the
//! simulator's ground truth: its exact kWh integrals per hour and per quarter hour.
//!
//! Two days across a month boundary (2026-01-31 and 2026-02-01, local time), the plant
//! in fast mode at 60-second steps; the incoming (facility) and UPS output meters'
//! kWh counters and total power are stored each step. The tariff changes by month.
//!
//! - Cost: the truth is the sum over local hours of the simulator's exact facility kWh
//!   in the hour x that hour's price, with the price computed here from the table
//!   written out by hand ([`price`]), not by the crate. Within 0.5 % per centre and
//!   for the park.
//! - Peak demand: the truth is the highest quarter-hour energy of the simulator's
//!   integral x 4. Within 0.5 %, and the quarter the analytics names has a true demand
//!   within 0.5 % of that peak (a near tie may pick another quarter, never a wrong one).
//! - Instantaneous PUE: every step's facility and UPS output power readings pair up
//!   (none skipped), and the category 0 value is the ratio of the readings at the step
//!   of highest UPS output power.

use tidewatch_analytics::{demand, tariff_cost, AnalyticsConfig, Inventory};
use tidewatch_devices::{ProfileSet, Site};
use tidewatch_model::Point;
use tidewatch_sim::bindings::{bind_all, Source};
use tidewatch_sim::fast::{capture_frame, device_tags, FastRun, Frame};
use tidewatch_sim::Plant;
use tidewatch_storage::embedded::EmbeddedConfig;
use tidewatch_storage::store::{Store, StoreConfig};

/// 2026-01-31T00:00:00+08:00, Unix ms.
const START_MS: i64 = 1_769_788_800_000;
const HOUR_MS: i64 = 3_600_000;
const HOURS: i64 = 48;
const STEP_S: f64 = 60.0;

const TARIFF: &str = r#"
[[analytics.tariff]]
name = "simulation"
prices = { critical_peak = 1.07, peak = 0.89, flat = 0.60, valley = 0.35, deep_valley = 0.22 }
rows = [
  { months = [1, 12], hours = [0, 7], period = "valley" },
  { months = [1, 12], hours = [7, 17], period = "flat" },
  { months = [1, 12], hours = [17, 19], period = "critical_peak" },
  { months = [1, 12], hours = [19, 22], period = "peak" },
  { months = [1, 12], hours = [22, 24], period = "valley" },
  { months = [2, 3, 4, 5, 6, 7, 8, 9, 10, 11], hours = [0, 7], period = "valley" },
  { months = [2, 3, 4, 5, 6, 7, 8, 9, 10, 11], hours = [7, 10], period = "flat" },
  { months = [2, 3, 4, 5, 6, 7, 8, 9, 10, 11], hours = [10, 15], period = "deep_valley" },
  { months = [2, 3, 4, 5, 6, 7, 8, 9, 10, 11], hours = [15, 17], period = "flat" },
  { months = [2, 3, 4, 5, 6, 7, 8, 9, 10, 11], hours = [17, 22], period = "peak" },
  { months = [2, 3, 4, 5, 6, 7, 8, 9, 10, 11], hours = [22, 24], period = "valley" },
]
"#;

/// The price of local hour `hour` of month `month`, CNY/kWh: [`TARIFF`] by hand.
fn price(month: u32, hour: i64) -> f64 {
    let winter = month == 1 || month == 12;
    match hour {
        0..=6 | 22..=23 => 0.35,
        17..=18 if winter => 1.07,
        19..=21 if winter => 0.89,
        _ if winter => 0.60,
        10..=14 => 0.22,
        17..=21 => 0.89,
        _ => 0.60,
    }
}

#[derive(serde::Deserialize)]
struct File {
    analytics: AnalyticsConfig,
}

/// A stored field of a device: where it is in a frame.
struct Stored {
    offset: usize,
    device: usize,
    field: &'static str,
}

fn relative_error(actual: f64, truth: f64) -> f64 {
    (actual - truth) / truth
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cost_and_peak_demand_match_the_simulators_ground_truth() {
    let profiles = ProfileSet::builtin().unwrap();
    let site = Site::builtin(&profiles).unwrap();
    let inventory = Inventory::from_site(&site, &profiles).unwrap();
    let mut plant = Plant::new(&site, START_MS).unwrap();
    let bindings = bind_all(&plant, &profiles).unwrap();
    let metered = ["dc1-incoming", "dc2-incoming", "dc1-ups-out", "dc2-ups-out"];
    let devices: Vec<usize> = metered
        .iter()
        .map(|id| plant.device_index(id).unwrap())
        .collect();

    let first = capture_frame(&plant, &bindings);
    let mut stored = Vec::new();
    for &d in &devices {
        let mut offset = first.device_offsets[d];
        for fb in &bindings[d].fields {
            if let Source::Number { .. } = fb.source {
                for field in ["import_kwh", "power_total_kw"] {
                    if fb.field.name == field {
                        stored.push(Stored {
                            offset,
                            device: d,
                            field,
                        });
                    }
                }
                offset += 1;
            }
        }
    }
    assert_eq!(stored.len(), 2 * metered.len());
    let tags: Vec<Vec<(&'static str, String)>> =
        devices.iter().map(|&d| device_tags(&plant, d)).collect();
    let to_points = |frame: &Frame, out: &mut Vec<Point>| {
        for (i, &d) in devices.iter().enumerate() {
            let mut p = Point::new("energy_meter", frame.time_unix_ms * 1_000_000);
            for (k, v) in &tags[i] {
                p.add_tag(*k, v.clone());
            }
            for s in stored.iter().filter(|s| s.device == d) {
                p.add_field(s.field, frame.device_values[s.offset]);
            }
            out.push(p);
        }
    };

    // Readings each step; the facility meters' true kWh each step (from 0 at the start)
    // and the power readings, for the truth.
    let mut points = Vec::new();
    to_points(&first, &mut points);
    let facility = [devices[0], devices[1]];
    let mut truth: Vec<[f64; 2]> = vec![[0.0, 0.0]];
    let mut power_steps: Vec<(i64, [f64; 4])> = Vec::new();
    let power_at = |frame: &Frame| -> [f64; 4] {
        let mut out = [0.0; 4];
        for (i, &d) in devices.iter().enumerate() {
            let s = stored
                .iter()
                .find(|s| s.device == d && s.field == "power_total_kw")
                .unwrap();
            out[i] = frame.device_values[s.offset];
        }
        out
    };
    power_steps.push((first.time_unix_ms, power_at(&first)));
    {
        let mut run = FastRun::new(&mut plant, &bindings);
        run.run(STEP_S, START_MS + HOURS * HOUR_MS, |plant, frame| {
            to_points(frame, &mut points);
            truth.push(facility.map(|d| plant.true_energy_kwh(d)));
            power_steps.push((frame.time_unix_ms, power_at(frame)));
        });
    }
    let steps_per_hour = (3600.0 / STEP_S) as usize;
    assert_eq!(truth.len(), HOURS as usize * steps_per_hour + 1);

    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(StoreConfig::Embedded(EmbeddedConfig::in_dir(dir.path())))
        .await
        .unwrap();
    let written = store.write(points).await.unwrap();
    assert_eq!(written.refused, 0);

    let config = toml::from_str::<File>(TARIFF).unwrap().analytics;
    let window = START_MS * 1_000_000..(START_MS + HOURS * HOUR_MS) * 1_000_000;

    // Cost: the simulator's exact kWh per local hour x the hand-written price.
    let mut true_cost = [0.0; 2];
    for h in 0..HOURS as usize {
        let local_hour = h as i64 % 24;
        let month = if h < 24 { 1 } else { 2 };
        for c in 0..2 {
            let kwh = truth[(h + 1) * steps_per_hour][c] - truth[h * steps_per_hour][c];
            true_cost[c] += kwh * price(month, local_hour);
        }
    }
    let report = tariff_cost(&store, &inventory, &config, window.clone())
        .await
        .unwrap();
    for (c, scope) in report.centres.iter().enumerate() {
        let error = relative_error(scope.cost_cny, true_cost[c]);
        println!(
            "{}: cost {:.2} CNY vs truth {:.2} ({:+.2e} relative), {:.1} kWh, coverage {}",
            scope.scope, scope.cost_cny, true_cost[c], error, scope.kwh, scope.coverage
        );
        assert!(error.abs() < 0.005, "{}: {error}", scope.scope);
        assert_eq!(scope.coverage, 1.0);
        assert_eq!(scope.uncovered_kwh, 0.0);
        // Both months' periods were used: deep valley only exists in February here,
        // critical peak only in January.
        assert!(
            scope.periods.iter().all(|p| p.kwh > 0.0),
            "{:?}",
            scope.periods
        );
    }
    let park_truth = true_cost[0] + true_cost[1];
    let error = relative_error(report.park.cost_cny, park_truth);
    assert!(error.abs() < 0.005, "park: {error}");

    // Peak demand: the highest quarter-hour of the simulator's integral.
    let q = steps_per_hour / 4;
    let quarters = HOURS as usize * 4;
    let park_quarter = |k: usize| -> f64 {
        (0..2)
            .map(|c| (truth[(k + 1) * q][c] - truth[k * q][c]) * 4.0)
            .sum()
    };
    let report = demand(&store, &inventory, &config, window).await.unwrap();
    let scopes = [&report.centres[0], &report.centres[1], &report.park];
    for (c, scope) in scopes.into_iter().enumerate() {
        let quarter = |k: usize| -> f64 {
            if c == 2 {
                park_quarter(k)
            } else {
                (truth[(k + 1) * q][c] - truth[k * q][c]) * 4.0
            }
        };
        let peak_truth = (0..quarters).map(quarter).fold(f64::MIN, f64::max);
        let peak = scope.peak_kw.unwrap();
        let error = relative_error(peak, peak_truth);
        println!(
            "{}: peak demand {peak:.1} kW at {} vs truth {peak_truth:.1} kW ({error:+.2e} relative)",
            scope.scope,
            scope.peak_local.as_deref().unwrap_or("-")
        );
        assert!(error.abs() < 0.005, "{}: {error}", scope.scope);
        assert_eq!(scope.measured_blocks, quarters);
        let (start, _) = scope.peak_window_ns.unwrap();
        let k = ((start / 1_000_000 - START_MS) / (HOUR_MS / 4)) as usize;
        assert!(relative_error(quarter(k), peak_truth).abs() < 0.005);
    }

    // Instantaneous PUE: every step pairs up; the category 0 value at the peak step.
    for (c, scope) in report.instant_centres.iter().enumerate() {
        assert_eq!((scope.instants, scope.skipped), (quarters * q, 0));
        // The first step with the highest UPS output power.
        let mut at_peak = power_steps[0].1;
        for (_, p) in &power_steps[..quarters * q] {
            if p[2 + c] > at_peak[2 + c] {
                at_peak = *p;
            }
        }
        let expected = at_peak[c] / at_peak[2 + c];
        let got = scope.pue_at_peak.unwrap();
        println!(
            "{}: PUE0 {got:.4} (mean {:.4})",
            scope.scope,
            scope.mean_pue.unwrap()
        );
        assert!((got - expected).abs() < 1e-9, "{got} vs {expected}");
        assert!((1.0..2.0).contains(&got));
    }
    store.shutdown().await.unwrap();
}
