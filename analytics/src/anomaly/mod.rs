//! Thermal anomalies of the liquid loops, racks and PDUs: alarm rules first, then the
//! statistics that no fixed threshold sees.
//!
//! In the data flow this module sits after the store, beside the PUE job:
//! store (read through [`tidewatch_storage::store::Store`] as polars frames) ->
//! [`series`] (one plain `Vec` per device and field) -> the detectors, zone by zone
//! ([`plan`]: which CDU, PDUs and sensors belong together and what the loop is
//! designed for) -> [`Anomaly`] records (kind, device and tags, start, end, severity,
//! score, one sentence in English and Chinese; serde) -> written back to the store as
//! derived points, published to the alert engine and the reports. Nothing here talks
//! to devices or keeps state between runs: a run over a window gives the same answer
//! every time, and an anomaly still open at the end of the data has no end.
//!
//! The detector families, one file each:
//!
//! - [`rules`]: domain.md's alarm table on the points the device profiles have:
//!   secondary supply vs setpoint (with hysteresis), low and no flow, tripped pumps,
//!   pumps at full speed with low flow, dirty filter, valve feedback vs demand,
//!   dew-point margin (with a forecast of its fall), leaks, rack inlet temperature,
//!   PDU phase current; temperature alarms suppressed while a loop starts up.
//! - [`stats`]: robust rolling z-score (median and MAD) per sensor, and the EWMA of a
//!   sensor's residual against its neighbours (drift).
//! - [`sensors`]: stuck sensors (a value that stops changing, for longer than its own
//!   history makes likely, while its neighbours move) and redundant supply sensors that
//!   disagree.
//! - [`heat`]: the heat balance of each loop (liquid heat vs the module's IT power).
//! - [`fouling`]: a rising hydraulic resistance of the filter (blockage, clogging) and
//!   a rising heat-exchanger approach.
//!
//! Every threshold is in [`AnomalyConfig`], with domain.md's values as defaults. Each
//! detector is judged on the simulator's injected faults by the `detection` benchmark
//! (`cargo bench -p tidewatch-analytics --bench detection`, results in BENCHMARKS.md).

pub mod config;
pub mod drift;
pub mod episodes;
pub mod fouling;
pub mod heat;
pub mod plan;
pub mod rules;
pub mod sensors;
pub mod series;
pub mod stats;

use std::collections::BTreeMap;
use std::ops::Range;

use serde::{Deserialize, Serialize};
use tidewatch_storage::store::Store;

use crate::error::AnalyticsError;

pub use config::AnomalyConfig;
pub use episodes::{Episode, Holds, Level};
pub use plan::{AnomalyPlan, LoopPlan, ZonePlan};
pub use series::{read_telemetry, Channel, Cursor, Telemetry};

/// How urgent an anomaly is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Look at it soon.
    Warning,
    /// Act now.
    Critical,
}

impl Severity {
    /// "warning" or "critical".
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

/// What was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnomalyKind {
    /// Secondary supply temperature outside setpoint +/- band.
    SupplyTemperature,
    /// Secondary flow below its setpoint share (critical: no flow).
    LowFlow,
    /// A pump's fault contact is on.
    PumpTrip,
    /// A pump at full speed with low flow: pump or blockage fault.
    PumpFullLowFlow,
    /// Filter differential pressure above its limit.
    FilterDirty,
    /// Valve feedback differs from demand.
    ValveMismatch,
    /// Supply temperature close to (or below) the room dew point, or falling towards it.
    DewPointMargin,
    /// A leak sensor is wet.
    Leak,
    /// Rack inlet air above the ASHRAE limits.
    InletTemperature,
    /// A PDU phase current near its breaker rating.
    PhaseCurrent,
    /// A value far from its rolling median (robust z-score).
    RobustZScore,
    /// A sensor drifting from its neighbours (EWMA of the residual).
    EwmaResidual,
    /// A sensor whose residual against its neighbours ramps away (drift test).
    SensorDrift,
    /// A sensor whose value stopped changing while its neighbours move.
    StuckSensor,
    /// Redundant sensors that disagree.
    RedundantDisagreement,
    /// Liquid heat that does not match the module's IT power.
    HeatBalance,
    /// Filter hydraulic resistance above its baseline (blockage, clogging).
    FlowRestriction,
    /// Heat-exchanger approach rising over days (fouling).
    ApproachTrend,
}

impl AnomalyKind {
    /// The snake_case name, as serialised.
    pub fn as_str(self) -> &'static str {
        match self {
            AnomalyKind::SupplyTemperature => "supply_temperature",
            AnomalyKind::LowFlow => "low_flow",
            AnomalyKind::PumpTrip => "pump_trip",
            AnomalyKind::PumpFullLowFlow => "pump_full_low_flow",
            AnomalyKind::FilterDirty => "filter_dirty",
            AnomalyKind::ValveMismatch => "valve_mismatch",
            AnomalyKind::DewPointMargin => "dew_point_margin",
            AnomalyKind::Leak => "leak",
            AnomalyKind::InletTemperature => "inlet_temperature",
            AnomalyKind::PhaseCurrent => "phase_current",
            AnomalyKind::RobustZScore => "robust_z_score",
            AnomalyKind::EwmaResidual => "ewma_residual",
            AnomalyKind::SensorDrift => "sensor_drift",
            AnomalyKind::StuckSensor => "stuck_sensor",
            AnomalyKind::RedundantDisagreement => "redundant_disagreement",
            AnomalyKind::HeatBalance => "heat_balance",
            AnomalyKind::FlowRestriction => "flow_restriction",
            AnomalyKind::ApproachTrend => "approach_trend",
        }
    }
}

/// One anomaly: what, where, when, how bad, and what to do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Anomaly {
    /// What was found.
    pub kind: AnomalyKind,
    /// The device or sensor id.
    pub device: String,
    /// The field (point) at fault, where one is.
    pub field: Option<String>,
    /// The device's tags (centre, zone, rack, model, ...).
    pub tags: BTreeMap<String, String>,
    /// When the condition began, Unix ns.
    pub start_ns: i64,
    /// When it had held long enough to be raised, Unix ns (start + the detector's hold).
    pub detected_ns: i64,
    /// When it ended; `None` while ongoing (at the end of the data read).
    pub end_ns: Option<i64>,
    /// Warning or critical.
    pub severity: Severity,
    /// How far past the limit, the detector's own measure (its docs say which); larger
    /// is worse.
    pub score: f64,
    /// The worst value seen (in the field's unit), where one applies.
    pub value: Option<f64>,
    /// One sentence for a facility engineer, in English.
    pub message_en: String,
    /// The same, in Chinese.
    pub message_zh: String,
}

impl Anomaly {
    /// An anomaly from an episode.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn from_episode(
        kind: AnomalyKind,
        device: &str,
        field: Option<&str>,
        tags: BTreeMap<String, String>,
        episode: &Episode,
        value: Option<f64>,
        message_en: String,
        message_zh: String,
    ) -> Anomaly {
        Anomaly {
            kind,
            device: device.to_owned(),
            field: field.map(str::to_owned),
            tags,
            start_ns: episode.start_ns,
            detected_ns: episode.detected_ns,
            end_ns: episode.end_ns,
            severity: episode.severity,
            score: episode.score,
            value: value.filter(|v| v.is_finite()),
            message_en,
            message_zh,
        }
    }

    /// Whether it is still going at the end of the data.
    pub fn is_ongoing(&self) -> bool {
        self.end_ns.is_none()
    }
}

/// Runs every detector over the telemetry of the plan's zones. Anomalies come sorted
/// by detection time.
pub fn detect(
    telemetry: &Telemetry,
    plan: &AnomalyPlan,
    config: &AnomalyConfig,
) -> Result<Vec<Anomaly>, AnalyticsError> {
    config.validate()?;
    let mut out = Vec::new();
    for zone in &plan.zones {
        let ctx = ZoneContext::new(telemetry, zone, config);
        rules::detect(&ctx, &mut out);
        sensors::detect(&ctx, &mut out);
        stats::detect(&ctx, &mut out);
        heat::detect(&ctx, &mut out);
        fouling::detect(&ctx, &mut out);
    }
    sort_by_detection(&mut out);
    Ok(out)
}

/// Reads the store and runs every detector for `window` (Unix ns, end excluded), one
/// zone at a time. The detectors' baselines need history: the data is read from
/// [`AnomalyConfig::lookback`] before the window. Anomalies that ended before the
/// window starts are left out.
pub async fn analyze(
    store: &Store,
    plan: &AnomalyPlan,
    config: &AnomalyConfig,
    window: Range<i64>,
) -> Result<Vec<Anomaly>, AnalyticsError> {
    config.validate()?;
    if window.end <= window.start {
        return Err(AnalyticsError::EmptyRange {
            start_ns: window.start,
            end_ns: window.end,
        });
    }
    let from = window.start.saturating_sub(config::ns(config.lookback()));
    // One zone's telemetry in memory at a time: the detectors never look across zones,
    // and a month of the whole park's is more than a machine should have to hold.
    let mut found = Vec::new();
    for zone in plan.zone_ids() {
        let telemetry =
            read_telemetry(store, from..window.end, std::slice::from_ref(&zone)).await?;
        let zone_plan = AnomalyPlan {
            zones: plan
                .zones
                .iter()
                .filter(|z| z.zone == zone)
                .cloned()
                .collect(),
        };
        found.extend(detect(&telemetry, &zone_plan, config)?);
    }
    found.retain(|a| a.end_ns.is_none_or(|e| e > window.start));
    sort_by_detection(&mut found);
    Ok(found)
}

/// Anomalies in the order they were detected (then kind and device, for a stable order).
pub(crate) fn sort_by_detection(anomalies: &mut [Anomaly]) {
    anomalies.sort_by(|a, b| {
        (a.detected_ns, a.kind.as_str(), &a.device).cmp(&(
            b.detected_ns,
            b.kind.as_str(),
            &b.device,
        ))
    });
}

/// What the detectors of one zone share: its plan, its channels, and the loop's
/// derived series on the CDU's timeline.
pub(crate) struct ZoneContext<'a> {
    pub telemetry: &'a Telemetry,
    pub zone: &'a ZonePlan,
    pub config: &'a AnomalyConfig,
    /// Sample times of the CDU (its secondary flow), Unix ns.
    pub times: Vec<i64>,
    /// Median of the fitted redundant supply sensors, per CDU sample.
    pub supply: Vec<Option<f64>>,
    /// The module's IT power (sum of its PDUs), kW, per CDU sample.
    pub it_kw: Vec<Option<f64>>,
    /// Start-up periods of the loop (pumps starting from all stopped), Unix ns.
    pub startups: Vec<Range<i64>>,
}

impl<'a> ZoneContext<'a> {
    fn new(telemetry: &'a Telemetry, zone: &'a ZonePlan, config: &'a AnomalyConfig) -> Self {
        let max_age = config::ns(config.max_gap);
        let mut ctx = ZoneContext {
            telemetry,
            zone,
            config,
            times: Vec::new(),
            supply: Vec::new(),
            it_kw: Vec::new(),
            startups: Vec::new(),
        };
        let Some(lp) = &zone.cooling_loop else {
            return ctx;
        };
        let base = telemetry.get(&lp.cdu, "secondary_flow_lpm").or_else(|| {
            lp.supply_fields
                .iter()
                .find_map(|f| telemetry.get(&lp.cdu, f))
        });
        let Some(base) = base else {
            return ctx;
        };
        ctx.times = base.time_ns.clone();
        let supplies: Vec<&Channel> = lp
            .supply_fields
            .iter()
            .filter_map(|f| telemetry.get(&lp.cdu, f))
            .collect();
        let mut buf = Vec::with_capacity(3);
        ctx.supply = ctx
            .times
            .iter()
            .map(|&t| {
                buf.clear();
                buf.extend(supplies.iter().filter_map(|c| c.at(t, max_age)));
                median(&mut buf)
            })
            .collect();
        // IT power: each PDU's active power, or the sum of its phase powers.
        let pdus: Vec<Vec<&Channel>> = zone
            .pdus
            .iter()
            .map(|p| match telemetry.get(p, "active_power_kw") {
                Some(c) => vec![c],
                None => ["power_l1_kw", "power_l2_kw", "power_l3_kw"]
                    .iter()
                    .filter_map(|f| telemetry.get(p, f))
                    .collect(),
            })
            .collect();
        let complete = !pdus.is_empty() && pdus.iter().all(|c| !c.is_empty());
        ctx.it_kw = ctx
            .times
            .iter()
            .map(|&t| {
                if !complete {
                    return None;
                }
                let mut sum = 0.0;
                for parts in &pdus {
                    for c in parts {
                        sum += c.at(t, max_age)?;
                    }
                }
                Some(sum)
            })
            .collect();
        // Start-ups: from no pump running to at least one.
        let running: Vec<&Channel> = ["pump_1_running", "pump_2_running"]
            .iter()
            .filter_map(|f| telemetry.get(&lp.cdu, f))
            .collect();
        if !running.is_empty() {
            let startup = config::ns(config.startup_suppression);
            let mut was_running: Option<bool> = None;
            for &t in &ctx.times {
                let values: Vec<f64> = running.iter().filter_map(|c| c.at(t, max_age)).collect();
                if values.is_empty() {
                    continue;
                }
                let now = values.iter().any(|&v| v >= 0.5);
                if was_running == Some(false) && now {
                    ctx.startups.push(t..t.saturating_add(startup));
                }
                was_running = Some(now);
            }
        }
        ctx
    }

    /// Whether `t` is inside a start-up period of the loop.
    pub fn starting_up(&self, t: i64) -> bool {
        self.startups.iter().any(|r| r.contains(&t))
    }

    /// The tags of a device.
    pub fn tags(&self, device: &str) -> BTreeMap<String, String> {
        self.telemetry.tags_of(device)
    }

    /// The flow setpoint the controller is taken to follow, per CDU sample: flow per kW
    /// x IT kW, within [min share, 1] x design, through a first-order lag.
    pub fn flow_setpoint(&self) -> Vec<Option<f64>> {
        let Some(lp) = &self.zone.cooling_loop else {
            return Vec::new();
        };
        let tau = config::ns(self.config.flow_setpoint_lag) as f64;
        let lo = self.config.min_flow_share.clamp(0.0, 1.0) * lp.design_flow_lpm;
        let mut state: Option<(i64, f64)> = None;
        self.times
            .iter()
            .zip(&self.it_kw)
            .map(|(&t, it)| {
                let it = (*it)?;
                let target = (lp.flow_per_kw_lpm * it).clamp(lo, lp.design_flow_lpm.max(lo));
                let sp = match state {
                    Some((t0, sp)) if t - t0 <= config::ns(self.config.max_gap) && tau > 0.0 => {
                        sp + (target - sp) * (1.0 - (-((t - t0) as f64) / tau).exp())
                    }
                    _ => target,
                };
                state = Some((t, sp));
                Some(sp)
            })
            .collect()
    }
}

/// Median of a buffer (reordered, not sorted); `None` if empty. By selection, in linear
/// time: the detectors take the median of every baseline block.
pub(crate) fn median(values: &mut [f64]) -> Option<f64> {
    let n = values.len();
    if n == 0 {
        return None;
    }
    let (below, &mut upper, _) = values.select_nth_unstable_by(n / 2, f64::total_cmp);
    Some(if n % 2 == 1 {
        upper
    } else {
        // The lower middle is the largest of the values selected below the upper one.
        let lower = below
            .iter()
            .copied()
            .max_by(f64::total_cmp)
            .unwrap_or(upper);
        (lower + upper) / 2.0
    })
}

impl AnomalyConfig {
    /// How much history before a window [`analyze`] reads for the baselines: the
    /// longest of the z-score, EWMA (plus the drift test's), stuck-sensor and
    /// flow-restriction windows. (The approach trend uses whatever of its longer window
    /// that history holds.)
    pub fn lookback(&self) -> std::time::Duration {
        [
            self.zscore_window,
            self.ewma_window + self.drift_window,
            self.stuck_window,
            self.resistance_window,
            self.heat_window,
        ]
        .into_iter()
        .max()
        .unwrap_or_default()
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! Helpers for the detectors' unit tests: hand-made series at 10 s.
    use super::*;

    /// 10 s, in ns.
    pub const STEP: i64 = 10_000_000_000;

    /// A channel with one value per 10 s step from 0.
    pub fn channel(device: &str, measurement: &str, field: &str, values: &[f64]) -> Channel {
        Channel::new(
            device,
            measurement,
            field,
            values
                .iter()
                .enumerate()
                .map(|(i, &v)| (i as i64 * STEP, v)),
        )
        .tag("zone", "mm01")
        .tag("centre", "dc2")
    }

    /// A liquid zone with a CDU `cdu` (design flow 576 L/min, setpoint 36 C, water).
    pub fn zone(pdus: &[&str], inlets: &[&str]) -> ZonePlan {
        ZonePlan {
            centre: "dc2".into(),
            zone: "mm01".into(),
            cooling_loop: Some(LoopPlan {
                cdu: "cdu".into(),
                supply_setpoint_c: 36.0,
                flow_per_kw_lpm: 1.2,
                design_flow_lpm: 576.0,
                kw_per_lpm_k: plan::WATER_KW_PER_LPM_K,
                capture_ratio: 0.8,
                supply_fields: (1..=3)
                    .map(|n| format!("secondary_supply_temp_{n}"))
                    .collect(),
            }),
            pdus: pdus.iter().map(|s| s.to_string()).collect(),
            pdu_breaker_a: 32.0,
            inlets: inlets.iter().map(|s| s.to_string()).collect(),
            leaks: vec!["leak-cdu".into()],
            dew_point: Some("dew".into()),
        }
    }

    /// Runs one family of detectors.
    pub fn run(
        telemetry: &Telemetry,
        zone: &ZonePlan,
        config: &AnomalyConfig,
        family: fn(&ZoneContext, &mut Vec<Anomaly>),
    ) -> Vec<Anomaly> {
        let ctx = ZoneContext::new(telemetry, zone, config);
        let mut out = Vec::new();
        family(&ctx, &mut out);
        out
    }

    /// Seconds since 0 of a time in ns.
    pub fn s(ns: i64) -> i64 {
        ns / 1_000_000_000
    }

    /// A deterministic small noise in [-1, 1] (no random crate needed).
    pub fn noise(i: usize, salt: u64) -> f64 {
        let mut x = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
            ^ salt.wrapping_mul(0xBF58_476D_1CE4_E5B9);
        x ^= x >> 31;
        x = x.wrapping_mul(0x94D0_49BB_1331_11EB);
        x ^= x >> 29;
        (x >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;

    #[test]
    fn anomalies_serialise_for_writing_back() {
        let episode = Episode {
            start_ns: 10,
            detected_ns: 20,
            end_ns: None,
            severity: Severity::Critical,
            score: 2.5,
            peak_ns: 20,
        };
        let a = Anomaly::from_episode(
            AnomalyKind::Leak,
            "dc2-mm01-leak-cdu",
            Some("wet"),
            [("zone".to_string(), "mm01".to_string())].into(),
            &episode,
            Some(1.0),
            "Leak.".into(),
            "漏液。".into(),
        );
        let text = toml::to_string(&a).unwrap();
        assert!(text.contains("kind = \"leak\""), "{text}");
        assert!(text.contains("severity = \"critical\""), "{text}");
        assert!(!text.contains("end_ns"), "ongoing: no end written: {text}");
        let back: Anomaly = toml::from_str(&text).unwrap();
        assert_eq!(back, a);
        assert!(back.is_ongoing());
    }

    #[test]
    fn the_flow_setpoint_follows_the_load_with_a_lag() {
        // Two PDUs: 100 kW, then a step to 400 kW at 100 s.
        let it: Vec<f64> = (0..40).map(|i| if i < 10 { 50.0 } else { 200.0 }).collect();
        let mut t = Telemetry::new();
        t.insert(channel("cdu", "cdu", "secondary_flow_lpm", &[300.0; 40]));
        t.insert(channel("p1", "rack_pdu", "active_power_kw", &it));
        t.insert(channel("p2", "rack_pdu", "active_power_kw", &it));
        let zone = zone(&["p1", "p2"], &[]);
        let config = AnomalyConfig::default();
        let ctx = ZoneContext::new(&t, &zone, &config);
        let sp = ctx.flow_setpoint();
        // 100 kW x 1.2 = 120 L/min, below the minimum flow 0.3 x 576 = 172.8.
        assert!((sp[0].unwrap() - 172.8).abs() < 1e-9);
        // 400 kW x 1.2 = 480; after one 10 s step of a 30 s lag: 1 - e^(-1/3) of the way.
        let expected = 172.8 + (480.0 - 172.8) * (1.0 - (-1.0f64 / 3.0).exp());
        assert!((sp[10].unwrap() - expected).abs() < 1e-9);
        assert!((sp[39].unwrap() - 480.0).abs() < 0.1);
        assert!(ctx.startups.is_empty());
    }

    #[test]
    fn medians_by_selection_equal_the_sorted_middle() {
        assert_eq!(median(&mut []), None);
        for n in 1..40usize {
            let values: Vec<f64> = (0..n).map(|k| ((k * 7919) % 23) as f64 * 0.5).collect();
            let mut sorted = values.clone();
            sorted.sort_by(f64::total_cmp);
            let expected = if n % 2 == 1 {
                sorted[n / 2]
            } else {
                (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
            };
            assert_eq!(median(&mut values.clone()), Some(expected), "{values:?}");
        }
    }

    #[test]
    fn config_checks() {
        let ok = AnomalyConfig::default();
        ok.validate().unwrap();
        let mut bad = ok.clone();
        bad.supply_hysteresis_k = 3.0;
        assert!(bad.validate().is_err());
        let mut bad = ok.clone();
        bad.ewma_lambda = f64::NAN;
        assert!(bad.validate().is_err());
        let mut bad = ok;
        bad.phase_critical_ratio = 0.5;
        let err = bad.validate().unwrap_err().to_string();
        assert!(err.contains("phase_critical_ratio"), "{err}");
        assert_eq!(AnomalyConfig::default().lookback().as_secs(), 6 * 3600);
    }
}
