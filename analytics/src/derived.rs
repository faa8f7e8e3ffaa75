//! Derived measurements: the analytics results as points, written back to the store
//! so that anyone reading the store (Grafana on InfluxDB, the dashboards, a later
//! analytics run) sees them beside the raw telemetry. In the flow:
//! report ([`PueReport`]) -> **derived points** -> the same `Store` the raw points went
//! to.
//!
//! | measurement | tags | fields | timestamp |
//! |---|---|---|---|
//! | `energy_pue` | `scope` (centre id or park id), `period` (`day`, `month`, or the trailing window such as `24h`), `category` (`1`, `2`, `3`) | `pue` (absent without IT energy or coverage), `coverage`, `facility_kwh`, `it_kwh` | start of the local day or month; the window's end for a trailing window |
//! | `energy_split` | `scope`, `period` | `coverage`, `facility_kwh`, `it_kwh`, `cooling_kwh`, `other_kwh`, `power_loss_kwh`, `clf`, `plf` (absent without IT energy) | as `energy_pue` |
//! | `module_ppue` | `scope` (centre id), `zone`, `period` | `ppue` (absent without IT energy), `coverage`, `it_kwh`, `infrastructure_kwh` | as `energy_pue` |
//!
//! | `peak_demand` | `scope`, `period` | `coverage`, `peak_kw` and `peak_start_ns` (absent without a measured block) | as `energy_pue` (totals: see below) |
//! | `instant_pue` | `scope`, `period` | `instants`, `pue_at_peak`, `peak_it_kw`, `facility_kw_at_peak`, `min_pue`, `mean_pue`, `max_pue` (each absent when not measurable) | as `peak_demand` |
//! | `energy_cost` | `scope`, `period` | `cost_cny`, `kwh`, `uncovered_kwh`, `coverage`, `average_price_cny_per_kwh`, and per time-of-use period `<period>_kwh`, `<period>_cny` (`critical_peak`, `peak`, `flat`, `valley`, `deep_valley`) | as `peak_demand` |
//! | `carbon` | `scope`, `period` | `coverage`, `facility_kwh`, `it_kwh`, `co2_kg`, `cue_kg_per_kwh`, `water_litres`, `wue_l_per_kwh` (ratios absent when not measurable) | as `peak_demand` |
//! | `liquid_cooling`, `heat_capture` | see [`crate::cooling::points`] | | |
//! | `thermal_anomaly` | `kind`, `device`, `event` (`open` or `close`), `centre` and `zone` where the device has them | `severity`, `score`, `start_ns`, `detected_ns`, `end_ns` (close only), `value` and `field` where they apply, `message_en`, `message_zh` | `detected_ns` for `open`, `end_ns` for `close` |
//!
//! The totals of a whole analysis (peak demand, instantaneous PUE, cost, carbon, the
//! cooling summary) are written for a trailing window at its end, and in a backfill
//! only for a window that is exactly one whole local month or day, at its start.
//! Anomalies are events: an `open` point when one is raised and a `close` point when it
//! ends, each written by the window that holds its time, so a backfill month by month
//! writes each event once.
//!
//! A day or month point is only written once its period is over (a partial day would
//! be a misleading trend point); trailing-window points are written every run, so they
//! form a time series of, for example, the last 24 hours' PUE. Written again for the
//! same period (a backfill run twice), a point has the same series and timestamp: in
//! InfluxDB it replaces the earlier one.

use chrono::{Months, NaiveDate};
use tidewatch_model::Point;

use crate::analysis::Analysis;
use crate::anomaly::Anomaly;
use crate::carbon::ScopeCarbon;
use crate::cooling::cooling_points_stamped;
use crate::demand::{InstantPue, PeakDemand};
use crate::pue::{
    local_midnight_ns, local_periods, EnergySplit, ModulePue, Period, PeriodPue, PueReport,
    ScopePue,
};
use crate::tariff::ScopeCost;

/// Measurement of the energy PUE points.
pub const ENERGY_PUE: &str = "energy_pue";
/// Measurement of the energy split points.
pub const ENERGY_SPLIT: &str = "energy_split";
/// Measurement of the micro-module pPUE points.
pub const MODULE_PPUE: &str = "module_ppue";
/// Measurement of the peak demand points.
pub const PEAK_DEMAND: &str = "peak_demand";
/// Measurement of the instantaneous (category 0) PUE points.
pub const INSTANT_PUE: &str = "instant_pue";
/// Measurement of the time-of-use cost points.
pub const ENERGY_COST: &str = "energy_cost";
/// Measurement of the CO2 / CUE / WUE points.
pub const CARBON: &str = "carbon";
/// Measurement of the thermal anomaly events.
pub const THERMAL_ANOMALY: &str = "thermal_anomaly";
/// Interval of the `heat_capture` points, as their `period` tag.
pub const HEAT_CAPTURE_INTERVAL: &str = "1h";

/// Which of a report's values become points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DerivedPeriods {
    /// The report's whole window as a trailing window named `label` (`24h`): one point
    /// per scope at the window's end.
    Trailing {
        /// The `period` tag.
        label: String,
    },
    /// The report's complete local days and months (a backfill): one point per scope
    /// and period, at the period's start. Days or months cut by the window's edges are
    /// left out.
    Calendar,
}

/// The derived points of `report`, whose days and months are local to
/// `utc_offset_hours` (the site's, [`Inventory::utc_offset_hours`](crate::Inventory)).
pub fn pue_points(
    report: &PueReport,
    periods: &DerivedPeriods,
    utc_offset_hours: i32,
) -> Vec<Point> {
    let offset_ns = i64::from(utc_offset_hours) * 3_600_000_000_000;
    let category = report.category.number().to_string();
    let mut points = Vec::new();
    for scope in report.centres.iter().chain(std::iter::once(&report.park)) {
        match periods {
            DerivedPeriods::Trailing { label } => {
                let at = report.window_ns.1;
                points.push(pue_point(scope, &scope.total, label, &category, at));
                points.push(split_point(&scope.scope, &scope.split, label, at));
                for module in &scope.modules {
                    points.push(module_point(&scope.scope, module, label, at));
                }
            }
            DerivedPeriods::Calendar => {
                for (period, values) in [("day", &scope.daily), ("month", &scope.monthly)] {
                    for p in values.iter().filter(|p| whole(p, offset_ns)) {
                        points.push(pue_point(scope, p, period, &category, p.window_ns.0));
                    }
                }
            }
        }
    }
    points
}

/// Whether a day or month of the report is whole (the report cuts the first and last
/// ones to its window).
fn whole(period: &PeriodPue, offset_ns: i64) -> bool {
    whole_span(&period.label, period.window_ns, offset_ns)
}

/// Whether `window_ns` is exactly the local day ("2026-01-05") or month ("2026-01")
/// named `label`.
fn whole_span(label: &str, window_ns: (i64, i64), offset_ns: i64) -> bool {
    let (first_day, next_day) = match label.len() {
        10 => {
            let Ok(day) = NaiveDate::parse_from_str(label, "%Y-%m-%d") else {
                return false;
            };
            (day, day.succ_opt())
        }
        7 => {
            let Ok(day) = NaiveDate::parse_from_str(&format!("{label}-01"), "%Y-%m-%d") else {
                return false;
            };
            (day, day.checked_add_months(Months::new(1)))
        }
        _ => return false,
    };
    let bounds = (
        local_midnight_ns(first_day, offset_ns),
        next_day.and_then(|d| local_midnight_ns(d, offset_ns)),
    );
    bounds == (Some(window_ns.0), Some(window_ns.1))
}

/// How the totals of an analysis over `window_ns` are stamped: (`period` tag,
/// timestamp), or `None` when they are not written (a backfill window that is not one
/// whole local month or day).
fn totals_stamp(
    window_ns: (i64, i64),
    periods: &DerivedPeriods,
    offset_ns: i64,
) -> Option<(String, i64)> {
    match periods {
        DerivedPeriods::Trailing { label } => Some((label.clone(), window_ns.1)),
        DerivedPeriods::Calendar => {
            let window = window_ns.0..window_ns.1;
            [(Period::Month, "month"), (Period::Day, "day")]
                .into_iter()
                .find_map(|(period, name)| {
                    match local_periods(&window, offset_ns, period).as_slice() {
                        [(label, range)]
                            if whole_span(label, (range.start, range.end), offset_ns) =>
                        {
                            Some((name.to_owned(), window_ns.0))
                        }
                        _ => None,
                    }
                })
        }
    }
}

/// The derived points of a whole analysis: [`pue_points`], the totals of the other
/// parts (see the module docs for when they are written), the cooling loops' hourly
/// capture ratio, and the anomaly events whose time falls in the window.
pub fn analysis_points(
    analysis: &Analysis,
    periods: &DerivedPeriods,
    utc_offset_hours: i32,
) -> Vec<Point> {
    let offset_ns = i64::from(utc_offset_hours) * 3_600_000_000_000;
    let mut points = pue_points(&analysis.pue, periods, utc_offset_hours);
    let stamp = totals_stamp(analysis.window_ns, periods, offset_ns);
    if let Some((period, at)) = &stamp {
        if let Some(d) = analysis.demand.result() {
            for p in d.centres.iter().chain([&d.park]) {
                points.push(peak_demand_point(p, period, *at));
            }
            for p in d.instant_centres.iter().chain([&d.instant_park]) {
                points.push(instant_pue_point(p, period, *at));
            }
        }
        if let Some(c) = analysis.cost.result() {
            for s in c.centres.iter().chain([&c.park]) {
                points.push(cost_point(s, period, *at));
            }
        }
        if let Some(c) = analysis.carbon.result() {
            for s in c.centres.iter().chain([&c.park]) {
                points.push(carbon_point(s, period, *at));
            }
        }
    }
    if let Some(c) = analysis.cooling.result() {
        let summary = stamp.as_ref().map(|(period, at)| (period.as_str(), *at));
        points.extend(cooling_points_stamped(c, summary, HEAT_CAPTURE_INTERVAL));
    }
    if let Some(found) = analysis.anomalies.result() {
        let window = analysis.window_ns.0..analysis.window_ns.1;
        for a in found {
            points.extend(
                anomaly_events(a)
                    .into_iter()
                    .filter(|p| window.contains(&p.timestamp_ns())),
            );
        }
    }
    points
}

fn with_optional(mut point: Point, values: &[(&str, Option<f64>)]) -> Point {
    for (name, value) in values {
        if let Some(v) = value.filter(|v| v.is_finite()) {
            point = point.field(*name, v);
        }
    }
    point
}

fn peak_demand_point(p: &PeakDemand, period: &str, at: i64) -> Point {
    let mut point = Point::new(PEAK_DEMAND, at)
        .tag("scope", p.scope.as_str())
        .tag("period", period)
        .field("coverage", p.coverage);
    point = with_optional(point, &[("peak_kw", p.peak_kw)]);
    if let Some((start, _)) = p.peak_window_ns {
        point = point.field("peak_start_ns", start);
    }
    point
}

fn instant_pue_point(p: &InstantPue, period: &str, at: i64) -> Point {
    let point = Point::new(INSTANT_PUE, at)
        .tag("scope", p.scope.as_str())
        .tag("period", period)
        .field("instants", i64::try_from(p.instants).unwrap_or(i64::MAX));
    with_optional(
        point,
        &[
            ("pue_at_peak", p.pue_at_peak),
            ("peak_it_kw", p.peak_it_kw),
            ("facility_kw_at_peak", p.facility_kw_at_peak),
            ("min_pue", p.min_pue),
            ("mean_pue", p.mean_pue),
            ("max_pue", p.max_pue),
        ],
    )
}

fn cost_point(s: &ScopeCost, period: &str, at: i64) -> Point {
    let mut point = Point::new(ENERGY_COST, at)
        .tag("scope", s.scope.as_str())
        .tag("period", period)
        .field("cost_cny", s.cost_cny)
        .field("kwh", s.kwh)
        .field("uncovered_kwh", s.uncovered_kwh)
        .field("coverage", s.coverage);
    point = with_optional(
        point,
        &[("average_price_cny_per_kwh", s.average_price_cny_per_kwh)],
    );
    for p in &s.periods {
        point = point
            .field(format!("{}_kwh", p.period.name()), p.kwh)
            .field(format!("{}_cny", p.period.name()), p.cost_cny);
    }
    point
}

fn carbon_point(s: &ScopeCarbon, period: &str, at: i64) -> Point {
    let point = Point::new(CARBON, at)
        .tag("scope", s.scope.as_str())
        .tag("period", period)
        .field("coverage", s.coverage)
        .field("facility_kwh", s.facility_kwh)
        .field("it_kwh", s.it_kwh)
        .field("co2_kg", s.co2_kg)
        .field("water_litres", s.wue.water_litres);
    with_optional(
        point,
        &[
            ("cue_kg_per_kwh", s.cue_kg_per_kwh),
            ("wue_l_per_kwh", s.wue.wue_l_per_kwh),
        ],
    )
}

/// The events of one anomaly: `open` at its detection, and `close` at its end if it
/// ended.
pub fn anomaly_events(a: &Anomaly) -> Vec<Point> {
    let event = |name: &str, at: i64, end: Option<i64>| {
        let mut point = Point::new(THERMAL_ANOMALY, at)
            .tag("kind", a.kind.as_str())
            .tag("device", a.device.as_str())
            .tag("event", name);
        for key in ["centre", "zone"] {
            if let Some(v) = a.tags.get(key) {
                point = point.tag(key, v.as_str());
            }
        }
        point = point
            .field("severity", a.severity.as_str())
            .field("start_ns", a.start_ns)
            .field("detected_ns", a.detected_ns);
        if let Some(end) = end {
            point = point.field("end_ns", end);
        }
        if let Some(field) = &a.field {
            point = point.field("field", field.as_str());
        }
        point = with_optional(point, &[("score", Some(a.score)), ("value", a.value)]);
        point
            .field("message_en", a.message_en.as_str())
            .field("message_zh", a.message_zh.as_str())
    };
    // The open event is what was known when it was raised: no end yet.
    let mut events = vec![event("open", a.detected_ns, None)];
    if let Some(end) = a.end_ns {
        events.push(event("close", end, Some(end)));
    }
    events
}

fn pue_point(scope: &ScopePue, p: &PeriodPue, period: &str, category: &str, at: i64) -> Point {
    let point = Point::new(ENERGY_PUE, at)
        .tag("scope", scope.scope.as_str())
        .tag("period", period)
        .tag("category", category)
        .field("coverage", p.coverage)
        .field("facility_kwh", p.facility_kwh)
        .field("it_kwh", p.it_kwh);
    with_optional(point, &[("pue", p.pue)])
}

fn split_point(scope: &str, s: &EnergySplit, period: &str, at: i64) -> Point {
    let point = Point::new(ENERGY_SPLIT, at)
        .tag("scope", scope)
        .tag("period", period)
        .field("coverage", s.coverage)
        .field("facility_kwh", s.facility_kwh)
        .field("it_kwh", s.it_kwh)
        .field("cooling_kwh", s.cooling_kwh)
        .field("other_kwh", s.other_kwh)
        .field("power_loss_kwh", s.power_loss_kwh);
    with_optional(point, &[("clf", s.clf), ("plf", s.plf)])
}

fn module_point(centre: &str, m: &ModulePue, period: &str, at: i64) -> Point {
    let point = Point::new(MODULE_PPUE, at)
        .tag("scope", centre)
        .tag("zone", m.zone.as_str())
        .tag("period", period)
        .field("coverage", m.coverage)
        .field("it_kwh", m.it_kwh)
        .field("infrastructure_kwh", m.infrastructure_kwh);
    with_optional(point, &[("ppue", m.ppue)])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::PueCategory;

    const HOUR: i64 = 3_600_000_000_000;
    /// 2026-01-31T00:00+08:00.
    const JAN31: i64 = 1_769_788_800_000_000_000;

    fn period(label: &str, start: i64, end: i64, pue: Option<f64>) -> PeriodPue {
        PeriodPue {
            label: label.into(),
            window_ns: (start, end),
            pue,
            coverage: 1.0,
            facility_kwh: 130.0,
            it_kwh: 100.0,
        }
    }

    fn scope(name: &str, daily: Vec<PeriodPue>, monthly: Vec<PeriodPue>) -> ScopePue {
        ScopePue {
            scope: name.into(),
            total: period("range", JAN31, JAN31 + 36 * HOUR, Some(1.3)),
            grade: None,
            limits: vec![],
            split: EnergySplit {
                coverage: 1.0,
                facility_kwh: 130.0,
                it_kwh: 100.0,
                cooling_kwh: 20.0,
                other_kwh: 2.0,
                power_loss_kwh: 8.0,
                clf: Some(0.2),
                plf: Some(0.08),
                other_ratio: Some(0.02),
            },
            daily,
            monthly,
            modules: vec![ModulePue {
                zone: "mm01".into(),
                ppue: None,
                coverage: 0.0,
                it_kwh: 0.0,
                infrastructure_kwh: 0.0,
            }],
            meters: vec![],
        }
    }

    /// A report over 2026-01-31T00:00+08:00 .. 2026-02-01T12:00+08:00: one whole day
    /// (Jan 31), one half day (Feb 1), and two partial months.
    fn report() -> PueReport {
        let daily = vec![
            period("2026-01-31", JAN31, JAN31 + 24 * HOUR, Some(1.3)),
            period("2026-02-01", JAN31 + 24 * HOUR, JAN31 + 36 * HOUR, None),
        ];
        let monthly = vec![
            period("2026-01", JAN31, JAN31 + 24 * HOUR, Some(1.3)),
            period("2026-02", JAN31 + 24 * HOUR, JAN31 + 36 * HOUR, None),
        ];
        PueReport {
            window_ns: (JAN31, JAN31 + 36 * HOUR),
            category: PueCategory::PduOutput,
            category_text: String::new(),
            centres: vec![scope("dc1", daily.clone(), monthly.clone())],
            park: scope("park", daily, monthly),
        }
    }

    #[test]
    fn calendar_points_are_whole_local_days_and_months_only() {
        let points = pue_points(&report(), &DerivedPeriods::Calendar, 8);
        // Jan 31 is a whole local day, for the centre and the park; Feb 1 is cut at
        // noon and both months are partial: left out.
        assert_eq!(points.len(), 2, "{points:?}");
        for p in &points {
            assert_eq!(p.measurement(), ENERGY_PUE);
            assert_eq!(p.timestamp_ns(), JAN31);
            assert_eq!(p.tag_value("period"), Some("day"));
            assert_eq!(p.tag_value("category"), Some("2"));
            assert_eq!(p.field_value("pue"), Some(&1.3.into()));
        }
        // With another offset the same window holds no whole local day.
        assert!(pue_points(&report(), &DerivedPeriods::Calendar, 0).is_empty());
    }

    #[test]
    fn totals_are_stamped_for_trailing_windows_and_whole_local_periods_only() {
        let trailing = DerivedPeriods::Trailing {
            label: "24h".into(),
        };
        let offset = 8 * HOUR;
        // 2026-02-01T00:00+08:00 is JAN31 + 24 h.
        let feb = JAN31 + 24 * HOUR;
        let mar = feb + 28 * 24 * HOUR;
        assert_eq!(
            totals_stamp((JAN31, feb), &trailing, offset),
            Some(("24h".to_owned(), feb))
        );
        let calendar = DerivedPeriods::Calendar;
        assert_eq!(
            totals_stamp((feb, mar), &calendar, offset),
            Some(("month".to_owned(), feb))
        );
        assert_eq!(
            totals_stamp((JAN31, feb), &calendar, offset),
            Some(("day".to_owned(), JAN31))
        );
        // Cut by an hour, or two days: no totals.
        assert_eq!(totals_stamp((feb, mar - HOUR), &calendar, offset), None);
        assert_eq!(
            totals_stamp((JAN31, feb + 24 * HOUR), &calendar, offset),
            None
        );
        // The same UTC window is not a whole local month at UTC+0.
        assert_eq!(totals_stamp((feb, mar), &calendar, 0), None);
    }

    fn anomaly(start: i64, detected: i64, end: Option<i64>) -> Anomaly {
        Anomaly {
            kind: crate::anomaly::AnomalyKind::PumpTrip,
            device: "dc2-mm01-cdu".into(),
            field: Some("pump_1_fault".into()),
            tags: [("centre", "dc2"), ("zone", "mm01"), ("model", "x")]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
            start_ns: start,
            detected_ns: detected,
            end_ns: end,
            severity: crate::anomaly::Severity::Critical,
            score: 1.0,
            value: Some(f64::NAN),
            message_en: "Pump 1 tripped.".into(),
            message_zh: "1号泵跳闸。".into(),
        }
    }

    #[test]
    fn anomaly_events_open_at_detection_and_close_at_the_end() {
        let events = anomaly_events(&anomaly(10, 40, Some(100)));
        assert_eq!(events.len(), 2);
        let (open, close) = (&events[0], &events[1]);
        assert_eq!(open.measurement(), THERMAL_ANOMALY);
        assert_eq!((open.timestamp_ns(), close.timestamp_ns()), (40, 100));
        assert_eq!(open.tag_value("event"), Some("open"));
        assert_eq!(close.tag_value("event"), Some("close"));
        assert_eq!(open.tag_value("kind"), Some("pump_trip"));
        assert_eq!(open.tag_value("zone"), Some("mm01"));
        // Only centre and zone of the device's tags become tags of the event.
        assert_eq!(open.tag_value("model"), None);
        assert_eq!(open.field_value("severity"), Some(&"critical".into()));
        assert_eq!(open.field_value("start_ns"), Some(&10_i64.into()));
        assert_eq!(open.field_value("end_ns"), None);
        assert_eq!(close.field_value("end_ns"), Some(&100_i64.into()));
        // A NaN value is left out, never written.
        assert_eq!(open.field_value("value"), None);
        // Still open: one event.
        assert_eq!(anomaly_events(&anomaly(10, 40, None)).len(), 1);
    }

    #[test]
    fn analysis_points_write_each_anomaly_event_in_the_window_that_holds_it() {
        fn not_configured<T>() -> crate::analysis::Part<T> {
            crate::analysis::Part::NotConfigured {
                reason: "test".into(),
            }
        }
        let pue = report();
        let (start, end) = pue.window_ns;
        let analysis = Analysis {
            window_ns: pue.window_ns,
            pue,
            demand: not_configured(),
            cost: not_configured(),
            carbon: not_configured(),
            cooling: not_configured(),
            anomalies: crate::analysis::Part::Computed {
                result: vec![
                    // Opened before the window (found again through the lookback), closed in it.
                    anomaly(start - 50, start - 10, Some(start + 5)),
                    // Opened in it, still open.
                    anomaly(start + 20, start + 30, None),
                    // Opened in it, closed after it.
                    anomaly(end - 20, end - 10, Some(end + 10)),
                ],
            },
        };
        let points = analysis_points(&analysis, &DerivedPeriods::Calendar, 8);
        let events: Vec<(i64, Option<&str>)> = points
            .iter()
            .filter(|p| p.measurement() == THERMAL_ANOMALY)
            .map(|p| (p.timestamp_ns(), p.tag_value("event")))
            .collect();
        assert_eq!(
            events,
            [
                (start + 5, Some("close")),
                (start + 30, Some("open")),
                (end - 10, Some("open")),
            ]
        );
        // The window is not one whole local day or month: no totals were written, only
        // the PUE points of its whole days.
        assert!(points
            .iter()
            .all(|p| [ENERGY_PUE, THERMAL_ANOMALY].contains(&p.measurement())));
    }

    #[test]
    fn trailing_points_carry_the_window_label_at_its_end() {
        let label = "24h".to_owned();
        let points = pue_points(&report(), &DerivedPeriods::Trailing { label }, 8);
        let names: Vec<&str> = points.iter().map(|p| p.measurement()).collect();
        assert_eq!(
            names,
            [
                ENERGY_PUE,
                ENERGY_SPLIT,
                MODULE_PPUE,
                ENERGY_PUE,
                ENERGY_SPLIT,
                MODULE_PPUE
            ]
        );
        assert!(points.iter().all(|p| p.timestamp_ns() == JAN31 + 36 * HOUR));
        assert!(points.iter().all(|p| p.tag_value("period") == Some("24h")));
        assert_eq!(points[1].field_value("clf"), Some(&0.2.into()));
        // No IT energy in the module: no pPUE field rather than a made-up number.
        assert_eq!(points[2].field_value("ppue"), None);
        assert_eq!(points[2].tag_value("zone"), Some("mm01"));
    }
}
