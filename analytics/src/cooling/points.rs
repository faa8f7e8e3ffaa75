//! The cooling report as derived points, for write-back to the store beside the raw
//! telemetry (Grafana, the dashboards and the alert engine read them there).
//!
//! | measurement | tags | fields | timestamp |
//! |---|---|---|---|
//! | `liquid_cooling` | `scope` (centre id), `zone`, `cdu`, `period` (the trailing window, e.g. `24h`) | `heat_kwh`, `heat_mean_kw`, `heat_coverage`, `capture_ratio`, `capture_coverage`, `approach_mean_k`, `approach_slope_k_per_day`, `approach_coverage`, `dew_point_margin_min_k`, `dew_point_below_warning_s`, `dew_point_below_critical_s`, `dew_point_coverage`, `primary_supply_max_c`, `class_limit_c`, `class_above_s`, `class_coverage` | the window's end |
//! | `heat_capture` | `scope`, `zone`, `period` (the interval, e.g. `1h`) | `capture_ratio`, `coverage`, `liquid_kwh`, `it_kwh` | the interval's start |
//!
//! The coverage fields and `class_limit_c` are always written; a value that could not
//! be computed has no field (never NaN, never a made-up zero). Interval points are
//! written for whole intervals only (one cut by the window's end would be a
//! misleading trend point). Written again for the same window, a point has the same
//! series and timestamp: in InfluxDB it replaces the earlier one.

use tidewatch_model::Point;

use super::{CoolingReport, LoopCooling};

/// Measurement of the per-loop summary points.
pub const LIQUID_COOLING: &str = "liquid_cooling";
/// Measurement of the per-interval capture-ratio points.
pub const HEAT_CAPTURE: &str = "heat_capture";

/// The derived points of `report`: one `liquid_cooling` point per loop tagged
/// `period = window_label` (e.g. "24h"), and one `heat_capture` point per whole
/// interval tagged `period = interval_label` (e.g. "1h").
pub fn cooling_points(
    report: &CoolingReport,
    window_label: &str,
    interval_label: &str,
) -> Vec<Point> {
    cooling_points_stamped(
        report,
        Some((window_label, report.window_ns.1)),
        interval_label,
    )
}

/// As [`cooling_points`], with the summary points stamped `summary = (period tag,
/// timestamp)` (a calendar month at its start, say), or left out with `None` (a window
/// that is not a whole period).
pub fn cooling_points_stamped(
    report: &CoolingReport,
    summary: Option<(&str, i64)>,
    interval_label: &str,
) -> Vec<Point> {
    let mut points = Vec::new();
    for lp in &report.loops {
        if let Some((label, at)) = summary {
            points.push(summary_point(lp, label, at));
        }
        let whole = lp
            .capture
            .intervals
            .first()
            .map(|i| i.window_ns.1 - i.window_ns.0);
        for iv in &lp.capture.intervals {
            if Some(iv.window_ns.1 - iv.window_ns.0) != whole {
                continue;
            }
            let mut p = Point::new(HEAT_CAPTURE, iv.window_ns.0)
                .tag("scope", lp.centre.as_str())
                .tag("zone", lp.zone.as_str())
                .tag("period", interval_label)
                .field("coverage", iv.coverage);
            if iv.coverage > 0.0 {
                p = p
                    .field("liquid_kwh", iv.liquid_kwh)
                    .field("it_kwh", iv.it_kwh);
            }
            if let Some(r) = iv.ratio {
                p = p.field("capture_ratio", r);
            }
            points.push(p);
        }
    }
    points
}

fn summary_point(lp: &LoopCooling, period: &str, at: i64) -> Point {
    let mut p = Point::new(LIQUID_COOLING, at)
        .tag("scope", lp.centre.as_str())
        .tag("zone", lp.zone.as_str())
        .tag("cdu", lp.cdu.as_str())
        .tag("period", period)
        .field("heat_coverage", lp.heat.coverage)
        .field("capture_coverage", lp.capture.total.coverage)
        .field("approach_coverage", lp.approach.coverage)
        .field("dew_point_coverage", lp.dew_point.coverage)
        .field("class_limit_c", lp.class_limit.limit_c)
        .field("class_coverage", lp.class_limit.coverage);
    let optional = [
        ("heat_kwh", lp.heat.energy_kwh),
        ("heat_mean_kw", lp.heat.mean_kw),
        ("capture_ratio", lp.capture.total.ratio),
        ("approach_mean_k", lp.approach.mean_k),
        ("approach_slope_k_per_day", lp.approach.slope_k_per_day),
        ("dew_point_margin_min_k", lp.dew_point.min_margin_k),
        ("dew_point_below_warning_s", lp.dew_point.below_warning_s),
        ("dew_point_below_critical_s", lp.dew_point.below_critical_s),
        ("primary_supply_max_c", lp.class_limit.max_supply_c),
        ("class_above_s", lp.class_limit.above_s),
    ];
    for (name, value) in optional {
        if let Some(v) = value.filter(|v| v.is_finite()) {
            p = p.field(name, v);
        }
    }
    p
}
