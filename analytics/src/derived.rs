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
//! A day or month point is only written once its period is over (a partial day would
//! be a misleading trend point); trailing-window points are written every run, so they
//! form a time series of, for example, the last 24 hours' PUE. Written again for the
//! same period (a backfill run twice), a point has the same series and timestamp: in
//! InfluxDB it replaces the earlier one.

use chrono::{Months, NaiveDate};
use tidewatch_model::Point;

use crate::pue::{local_midnight_ns, EnergySplit, ModulePue, PeriodPue, PueReport, ScopePue};

/// Measurement of the energy PUE points.
pub const ENERGY_PUE: &str = "energy_pue";
/// Measurement of the energy split points.
pub const ENERGY_SPLIT: &str = "energy_split";
/// Measurement of the micro-module pPUE points.
pub const MODULE_PPUE: &str = "module_ppue";

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
    let (first_day, next_day) = match period.label.len() {
        10 => {
            let Ok(day) = NaiveDate::parse_from_str(&period.label, "%Y-%m-%d") else {
                return false;
            };
            (day, day.succ_opt())
        }
        7 => {
            let Ok(day) = NaiveDate::parse_from_str(&format!("{}-01", period.label), "%Y-%m-%d")
            else {
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
    bounds == (Some(period.window_ns.0), Some(period.window_ns.1))
}

fn pue_point(scope: &ScopePue, p: &PeriodPue, period: &str, category: &str, at: i64) -> Point {
    let mut point = Point::new(ENERGY_PUE, at)
        .tag("scope", scope.scope.as_str())
        .tag("period", period)
        .tag("category", category)
        .field("coverage", p.coverage)
        .field("facility_kwh", p.facility_kwh)
        .field("it_kwh", p.it_kwh);
    if let Some(pue) = p.pue {
        point = point.field("pue", pue);
    }
    point
}

fn split_point(scope: &str, s: &EnergySplit, period: &str, at: i64) -> Point {
    let mut point = Point::new(ENERGY_SPLIT, at)
        .tag("scope", scope)
        .tag("period", period)
        .field("coverage", s.coverage)
        .field("facility_kwh", s.facility_kwh)
        .field("it_kwh", s.it_kwh)
        .field("cooling_kwh", s.cooling_kwh)
        .field("other_kwh", s.other_kwh)
        .field("power_loss_kwh", s.power_loss_kwh);
    for (name, value) in [("clf", s.clf), ("plf", s.plf)] {
        if let Some(v) = value {
            point = point.field(name, v);
        }
    }
    point
}

fn module_point(centre: &str, m: &ModulePue, period: &str, at: i64) -> Point {
    let mut point = Point::new(MODULE_PPUE, at)
        .tag("scope", centre)
        .tag("zone", m.zone.as_str())
        .tag("period", period)
        .field("coverage", m.coverage)
        .field("it_kwh", m.it_kwh)
        .field("infrastructure_kwh", m.infrastructure_kwh);
    if let Some(ppue) = m.ppue {
        point = point.field("ppue", ppue);
    }
    point
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
