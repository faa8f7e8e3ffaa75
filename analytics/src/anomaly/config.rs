//! Every threshold of the anomaly detectors, with the defaults of domain.md's alarm
//! table (or, for the statistical detectors, the values the detection benchmark was
//! run with). `[analytics.anomalies]` in tidewatch's configuration file; unknown keys
//! are errors; durations are written like "2m" or "1h30m".

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::duration_text;
use crate::error::AnalyticsError;

macro_rules! defaults {
    ($($name:ident: $ty:ty = $value:expr;)*) => {
        $(fn $name() -> $ty { $value })*
    };
}

const fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

defaults! {
    d_max_gap: Duration = secs(300);
    d_startup: Duration = secs(20 * 60);
    d_supply_band: f64 = 2.0;
    d_supply_hyst: f64 = 1.0;
    d_supply_hold: Duration = secs(120);
    d_low_flow_ratio: f64 = 0.9;
    d_low_flow_hold: Duration = secs(100);
    d_no_flow_share: f64 = 0.05;
    d_min_flow_share: f64 = 0.3;
    d_setpoint_lag: Duration = secs(30);
    d_filter_dp: f64 = 0.6;
    d_filter_hold: Duration = secs(60);
    d_pump_full: f64 = 99.0;
    d_valve_pct: f64 = 10.0;
    d_valve_hold: Duration = secs(60);
    d_dew_warn: f64 = 2.0;
    d_dew_crit: f64 = 0.0;
    d_dew_hold: Duration = secs(30);
    d_dew_lookahead: Duration = secs(30 * 60);
    d_dew_slope_window: Duration = secs(120);
    d_inlet_warn: f64 = 27.0;
    d_inlet_crit: f64 = 32.0;
    d_inlet_hold: Duration = secs(60);
    d_phase_warn: f64 = 0.8;
    d_phase_crit: f64 = 0.9;
    d_phase_hold: Duration = secs(30);
    d_z_window: Duration = secs(3600);
    d_z_refresh: Duration = secs(300);
    d_z_threshold: f64 = 6.0;
    d_z_hold: Duration = secs(30);
    d_ewma_lambda: f64 = 0.1;
    d_ewma_limit: f64 = 6.0;
    d_ewma_window: Duration = secs(2 * 3600);
    d_ewma_hold: Duration = secs(30);
    d_drift_limit: f64 = 7.5;
    d_drift_window: Duration = secs(30 * 60);
    d_drift_min_span: Duration = secs(60);
    d_drift_hold: Duration = secs(0);
    d_stuck_min: Duration = secs(60);
    d_stuck_p: f64 = 1e-7;
    d_stuck_window: Duration = secs(3600);
    d_stuck_factor: f64 = 2.0;
    d_spread: f64 = 1.0;
    d_spread_hold: Duration = secs(30);
    d_heat_window: Duration = secs(15 * 60);
    d_heat_tolerance: f64 = 0.15;
    d_heat_hold: Duration = secs(10 * 60);
    d_resistance_ratio: f64 = 1.5;
    d_resistance_window: Duration = secs(6 * 3600);
    d_resistance_hold: Duration = secs(60);
    d_resistance_min_flow: f64 = 0.2;
    d_approach_window: Duration = secs(7 * 86_400);
    d_approach_slope: f64 = 0.3;
    d_approach_min_load: f64 = 0.5;
}

/// The anomaly detectors' settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnomalyConfig {
    /// Samples further apart than this are a gap: a pending condition restarts, and an
    /// open anomaly ends at the last sample (nothing is claimed about time without
    /// data). Also the oldest a neighbour's value may be to be compared. Default 5m.
    #[serde(default = "d_max_gap", with = "duration_text")]
    pub max_gap: Duration,
    /// Temperature alarms of a loop (supply temperature, heat balance) are suppressed
    /// this long after its pumps start (one vendor: 20 min). Default 20m.
    #[serde(default = "d_startup", with = "duration_text")]
    pub startup_suppression: Duration,
    /// Secondary supply temperature: alarm outside setpoint +/- this, K. Default 2.
    #[serde(default = "d_supply_band")]
    pub supply_band_k: f64,
    /// ... and clear only this far inside the band, K. Default 1.
    #[serde(default = "d_supply_hyst")]
    pub supply_hysteresis_k: f64,
    /// ... held this long. Default 2m.
    #[serde(default = "d_supply_hold", with = "duration_text")]
    pub supply_hold: Duration,
    /// Secondary flow: alarm below this share of the setpoint. Default 0.9.
    #[serde(default = "d_low_flow_ratio")]
    pub low_flow_ratio: f64,
    /// ... held this long. Default 100s.
    #[serde(default = "d_low_flow_hold", with = "duration_text")]
    pub low_flow_hold: Duration,
    /// No flow (critical, at once): below this share of the design flow. Default 0.05.
    #[serde(default = "d_no_flow_share")]
    pub no_flow_share: f64,
    /// The CDU's minimum flow, share of design: the floor of the flow setpoint the
    /// detectors estimate from the IT load (the profiles have no setpoint register).
    /// Default 0.3.
    #[serde(default = "d_min_flow_share")]
    pub min_flow_share: f64,
    /// Time constant of the CDU's flow setpoint following the load. Default 30s.
    #[serde(default = "d_setpoint_lag", with = "duration_text")]
    pub flow_setpoint_lag: Duration,
    /// Filter differential pressure above this is "filter dirty", bar. Default 0.6.
    #[serde(default = "d_filter_dp")]
    pub filter_dp_bar: f64,
    /// ... held this long. Default 1m.
    #[serde(default = "d_filter_hold", with = "duration_text")]
    pub filter_hold: Duration,
    /// A pump at or above this speed, %, with low flow: pump or blockage. Default 99.
    #[serde(default = "d_pump_full")]
    pub pump_full_pct: f64,
    /// Valve feedback differing from demand by more than this, % points. Default 10.
    #[serde(default = "d_valve_pct")]
    pub valve_mismatch_pct: f64,
    /// ... held this long. Default 1m.
    #[serde(default = "d_valve_hold", with = "duration_text")]
    pub valve_hold: Duration,
    /// Dew-point margin (secondary supply - room dew point) below this: warning, K.
    /// Default 2.
    #[serde(default = "d_dew_warn")]
    pub dew_margin_warning_k: f64,
    /// ... at or below this: critical (condensation), K. Default 0.
    #[serde(default = "d_dew_crit")]
    pub dew_margin_critical_k: f64,
    /// ... held this long. Default 30s.
    #[serde(default = "d_dew_hold", with = "duration_text")]
    pub dew_hold: Duration,
    /// Also warn when, at the margin's present rate of fall, it would be below the
    /// warning margin within this time. Default 30m.
    #[serde(default = "d_dew_lookahead", with = "duration_text")]
    pub dew_lookahead: Duration,
    /// The rate of fall is the least-squares slope over this window. Default 2m.
    #[serde(default = "d_dew_slope_window", with = "duration_text")]
    pub dew_slope_window: Duration,
    /// Rack inlet air above this: warning, C (ASHRAE recommended). Default 27.
    #[serde(default = "d_inlet_warn")]
    pub inlet_warning_c: f64,
    /// ... above this: critical, C (class A1 allowable). Default 32.
    #[serde(default = "d_inlet_crit")]
    pub inlet_critical_c: f64,
    /// ... held this long. Default 1m.
    #[serde(default = "d_inlet_hold", with = "duration_text")]
    pub inlet_hold: Duration,
    /// Rack PDU breaker rating per phase, A, for every PDU. Default: the site's rating
    /// of each zone (`pdu_breaker_a` in the site file, itself 32 A unless set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pdu_breaker_a: Option<f64>,
    /// Breaker ratings by device-id prefix (the longest matching prefix wins), over
    /// `pdu_breaker_a` and the site's, e.g. `{ "dc2-mm03-" = 40.0 }` for one module
    /// whose circuits differ from the site file. Default none.
    #[serde(default)]
    pub pdu_breaker_overrides: std::collections::BTreeMap<String, f64>,
    /// Phase current at this share of the breaker: warning. Default 0.8.
    #[serde(default = "d_phase_warn")]
    pub phase_warning_ratio: f64,
    /// ... at this share: critical. Default 0.9.
    #[serde(default = "d_phase_crit")]
    pub phase_critical_ratio: f64,
    /// ... held this long. Default 30s.
    #[serde(default = "d_phase_hold", with = "duration_text")]
    pub phase_hold: Duration,
    /// Robust z-score: rolling median and MAD over this trailing window. Default 1h.
    #[serde(default = "d_z_window", with = "duration_text")]
    pub zscore_window: Duration,
    /// ... recomputed this often. Default 5m.
    #[serde(default = "d_z_refresh", with = "duration_text")]
    pub zscore_refresh: Duration,
    /// ... alarm at |z| above this. Default 6.
    #[serde(default = "d_z_threshold")]
    pub zscore_threshold: f64,
    /// ... held this long. Default 30s.
    #[serde(default = "d_z_hold", with = "duration_text")]
    pub zscore_hold: Duration,
    /// EWMA of the residual against the neighbours: smoothing factor. Default 0.1.
    #[serde(default = "d_ewma_lambda")]
    pub ewma_lambda: f64,
    /// ... alarm when the EWMA leaves the baseline by this many of its own standard
    /// deviations. Default 6.
    #[serde(default = "d_ewma_limit")]
    pub ewma_limit: f64,
    /// ... baseline (median offset and spread of the residual) over this trailing
    /// window. Default 2h.
    #[serde(default = "d_ewma_window", with = "duration_text")]
    pub ewma_window: Duration,
    /// ... held this long. Default 30s.
    #[serde(default = "d_ewma_hold", with = "duration_text")]
    pub ewma_hold: Duration,
    /// Drift: the same residual, tested for a ramp that began at some time in the
    /// trailing `drift_window` (a likelihood ratio, in standard deviations of the
    /// residual's noise); alarm above this. Default 7.5, a margin above the 6.74 that
    /// the simulator's fault-free residuals reached in the detection benchmark's 20
    /// zone-days (they are not quite white: a day of white noise stays below 5, as a
    /// unit test of `drift` checks).
    #[serde(default = "d_drift_limit")]
    pub drift_limit: f64,
    /// ... ramps that began at most this long ago. Default 30m.
    #[serde(default = "d_drift_window", with = "duration_text")]
    pub drift_window: Duration,
    /// ... and at least this long ago (shorter ones are spikes, the z-score's job).
    /// Default 1m.
    #[serde(default = "d_drift_min_span", with = "duration_text")]
    pub drift_min_span: Duration,
    /// ... held this long. Default 0s: the test already sums the ramp's samples.
    #[serde(default = "d_drift_hold", with = "duration_text")]
    pub drift_hold: Duration,
    /// Stuck sensor: an unchanged value for at least this long ... Default 1m.
    #[serde(default = "d_stuck_min", with = "duration_text")]
    pub stuck_min_duration: Duration,
    /// ... and for so many samples that a run this long would have this probability or
    /// less, by the sensor's own rate of repeated values (never below its chance of
    /// staying on one reading with the signal still mid-step). Default 1e-7.
    #[serde(default = "d_stuck_p")]
    pub stuck_probability: f64,
    /// ... that rate measured over this trailing window. Default 1h.
    #[serde(default = "d_stuck_window", with = "duration_text")]
    pub stuck_window: Duration,
    /// ... and at least this many times the longest run of any value in that window.
    /// Default 2.
    #[serde(default = "d_stuck_factor")]
    pub stuck_run_factor: f64,
    /// Redundant sensors: spread above this, K ... Default 1.
    #[serde(default = "d_spread")]
    pub redundant_spread_k: f64,
    /// ... held this long. Default 30s.
    #[serde(default = "d_spread_hold", with = "duration_text")]
    pub redundant_hold: Duration,
    /// Heat balance: liquid heat and IT power averaged over this window. Default 15m.
    #[serde(default = "d_heat_window", with = "duration_text")]
    pub heat_window: Duration,
    /// ... alarm when liquid heat / IT power differs from the loop's capture ratio by
    /// more than this (absolute share). Default 0.15.
    #[serde(default = "d_heat_tolerance")]
    pub heat_tolerance: f64,
    /// ... held this long. Default 10m.
    #[serde(default = "d_heat_hold", with = "duration_text")]
    pub heat_hold: Duration,
    /// Flow restriction: filter dP / (flow / design)^2 above this multiple of its
    /// baseline. Default 1.5.
    #[serde(default = "d_resistance_ratio")]
    pub resistance_ratio: f64,
    /// ... baseline: median over this trailing window (anomalous samples left out).
    /// Default 6h.
    #[serde(default = "d_resistance_window", with = "duration_text")]
    pub resistance_window: Duration,
    /// ... held this long. Default 1m.
    #[serde(default = "d_resistance_hold", with = "duration_text")]
    pub resistance_hold: Duration,
    /// ... judged only above this share of the design flow. Default 0.2.
    #[serde(default = "d_resistance_min_flow")]
    pub resistance_min_flow_share: f64,
    /// Fouling: heat-exchanger approach trend over this window. Default 7d.
    #[serde(default = "d_approach_window", with = "duration_text")]
    pub approach_window: Duration,
    /// ... alarm when the approach rises faster than this, K per day. Default 0.3.
    #[serde(default = "d_approach_slope")]
    pub approach_slope_k_per_day: f64,
    /// ... using only samples with the liquid heat above this share of the design
    /// (approach depends on load). Default 0.5.
    #[serde(default = "d_approach_min_load")]
    pub approach_min_load_share: f64,
}

impl Default for AnomalyConfig {
    /// Every default (the same as an empty `[analytics.anomalies]` table).
    fn default() -> Self {
        AnomalyConfig {
            max_gap: d_max_gap(),
            startup_suppression: d_startup(),
            supply_band_k: d_supply_band(),
            supply_hysteresis_k: d_supply_hyst(),
            supply_hold: d_supply_hold(),
            low_flow_ratio: d_low_flow_ratio(),
            low_flow_hold: d_low_flow_hold(),
            no_flow_share: d_no_flow_share(),
            min_flow_share: d_min_flow_share(),
            flow_setpoint_lag: d_setpoint_lag(),
            filter_dp_bar: d_filter_dp(),
            filter_hold: d_filter_hold(),
            pump_full_pct: d_pump_full(),
            valve_mismatch_pct: d_valve_pct(),
            valve_hold: d_valve_hold(),
            dew_margin_warning_k: d_dew_warn(),
            dew_margin_critical_k: d_dew_crit(),
            dew_hold: d_dew_hold(),
            dew_lookahead: d_dew_lookahead(),
            dew_slope_window: d_dew_slope_window(),
            inlet_warning_c: d_inlet_warn(),
            inlet_critical_c: d_inlet_crit(),
            inlet_hold: d_inlet_hold(),
            pdu_breaker_a: None,
            pdu_breaker_overrides: Default::default(),
            phase_warning_ratio: d_phase_warn(),
            phase_critical_ratio: d_phase_crit(),
            phase_hold: d_phase_hold(),
            zscore_window: d_z_window(),
            zscore_refresh: d_z_refresh(),
            zscore_threshold: d_z_threshold(),
            zscore_hold: d_z_hold(),
            ewma_lambda: d_ewma_lambda(),
            ewma_limit: d_ewma_limit(),
            ewma_window: d_ewma_window(),
            ewma_hold: d_ewma_hold(),
            drift_limit: d_drift_limit(),
            drift_window: d_drift_window(),
            drift_min_span: d_drift_min_span(),
            drift_hold: d_drift_hold(),
            stuck_min_duration: d_stuck_min(),
            stuck_probability: d_stuck_p(),
            stuck_window: d_stuck_window(),
            stuck_run_factor: d_stuck_factor(),
            redundant_spread_k: d_spread(),
            redundant_hold: d_spread_hold(),
            heat_window: d_heat_window(),
            heat_tolerance: d_heat_tolerance(),
            heat_hold: d_heat_hold(),
            resistance_ratio: d_resistance_ratio(),
            resistance_window: d_resistance_window(),
            resistance_hold: d_resistance_hold(),
            resistance_min_flow_share: d_resistance_min_flow(),
            approach_window: d_approach_window(),
            approach_slope_k_per_day: d_approach_slope(),
            approach_min_load_share: d_approach_min_load(),
        }
    }
}

impl AnomalyConfig {
    /// The breaker rating of a PDU, A: the longest matching override, else
    /// `pdu_breaker_a`, else the site's rating of its zone, `site_a`.
    pub fn breaker_a(&self, pdu: &str, site_a: f64) -> f64 {
        self.pdu_breaker_overrides
            .iter()
            .filter(|(prefix, _)| pdu.starts_with(prefix.as_str()))
            .max_by_key(|(prefix, _)| prefix.len())
            .map_or(self.pdu_breaker_a.unwrap_or(site_a), |(_, a)| *a)
    }
}

/// A duration in ns (saturating).
pub(crate) fn ns(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

impl AnomalyConfig {
    /// Checks the numbers that would make the detectors meaningless.
    pub fn validate(&self) -> Result<(), AnalyticsError> {
        let bad = |m: String| Err(AnalyticsError::Config(format!("anomalies.{m}")));
        let positive = [
            ("supply_band_k", self.supply_band_k),
            ("low_flow_ratio", self.low_flow_ratio),
            ("filter_dp_bar", self.filter_dp_bar),
            ("pump_full_pct", self.pump_full_pct),
            ("valve_mismatch_pct", self.valve_mismatch_pct),
            ("pdu_breaker_a", self.pdu_breaker_a.unwrap_or(1.0)),
            ("phase_warning_ratio", self.phase_warning_ratio),
            ("phase_critical_ratio", self.phase_critical_ratio),
            ("zscore_threshold", self.zscore_threshold),
            ("ewma_lambda", self.ewma_lambda),
            ("ewma_limit", self.ewma_limit),
            ("drift_limit", self.drift_limit),
            ("stuck_probability", self.stuck_probability),
            ("redundant_spread_k", self.redundant_spread_k),
            ("stuck_run_factor", self.stuck_run_factor),
            ("heat_tolerance", self.heat_tolerance),
            ("resistance_ratio", self.resistance_ratio),
            ("approach_slope_k_per_day", self.approach_slope_k_per_day),
        ];
        for (name, v) in positive {
            if !(v.is_finite() && v > 0.0) {
                return bad(format!("{name} must be positive, got {v}"));
            }
        }
        for (prefix, a) in &self.pdu_breaker_overrides {
            if !(a.is_finite() && *a > 0.0) {
                return bad(format!(
                    "pdu_breaker_overrides.{prefix:?} must be positive, got {a}"
                ));
            }
        }
        if self.ewma_lambda > 1.0 {
            return bad(format!(
                "ewma_lambda must be at most 1, got {}",
                self.ewma_lambda
            ));
        }
        if self.drift_min_span >= self.drift_window {
            return bad("drift_min_span must be shorter than drift_window".into());
        }
        if self.stuck_probability >= 1.0 {
            return bad(format!(
                "stuck_probability must be below 1, got {}",
                self.stuck_probability
            ));
        }
        if !(self.supply_hysteresis_k >= 0.0 && self.supply_hysteresis_k < self.supply_band_k) {
            return bad(format!(
                "supply_hysteresis_k must be in [0, supply_band_k), got {}",
                self.supply_hysteresis_k
            ));
        }
        if self.phase_critical_ratio < self.phase_warning_ratio {
            return bad("phase_critical_ratio must not be below phase_warning_ratio".into());
        }
        if self.inlet_critical_c < self.inlet_warning_c {
            return bad("inlet_critical_c must not be below inlet_warning_c".into());
        }
        if self.dew_margin_critical_k > self.dew_margin_warning_k {
            return bad("dew_margin_critical_k must not be above dew_margin_warning_k".into());
        }
        for (name, d) in [
            ("max_gap", self.max_gap),
            ("zscore_window", self.zscore_window),
            ("zscore_refresh", self.zscore_refresh),
            ("ewma_window", self.ewma_window),
            ("drift_window", self.drift_window),
            ("stuck_window", self.stuck_window),
            ("heat_window", self.heat_window),
            ("resistance_window", self.resistance_window),
            ("approach_window", self.approach_window),
            ("dew_slope_window", self.dew_slope_window),
        ] {
            if d.is_zero() {
                return bad(format!("{name} must be positive"));
            }
        }
        Ok(())
    }
}
