//! The analysis of a range of several months, composed from the analyses of its
//! months. In the flow: `tidewatch analyze` analyses a long range month by month (and
//! writes each month back), then composes the report of the whole range from those
//! months here, instead of analysing the whole range again in one pass. One pass would
//! hold every meter's counters and every zone's telemetry of the whole range in memory
//! at once: a month of the park at 60 s sampling already takes hundreds of MiB, and a
//! year at 10 s would take 72 times as much.
//!
//! # Why the composition is exact
//!
//! Every number of a monthly analysis is a sum, an extreme, or a ratio or mean over
//! covered time, and each month's intervals are cut at its edges (the readings across
//! an edge are read by both months, each keeping its side). So:
//! - energies, costs, CO2, water, covered time, sample counts and times beyond a
//!   threshold add up;
//! - PUE, CLF, PLF, pPUE, CUE, WUE, the capture ratio and the average price are
//!   recomputed from the summed energies, over the summed covered time; the grade is
//!   judged again on the range's PUE;
//! - time-weighted means are weighted again by each month's covered time;
//! - peaks, minima and maxima are the most extreme month's (the first, on a tie, as a
//!   single pass finds them);
//! - the approach trend merges the months' least-squares sums
//!   ([`crate::cooling::series::LineFit`]);
//! - daily and monthly values, hourly capture ratios and counter events are the
//!   months' lists end to end.
//!
//! Two things follow from working by month rather than by range, and are stated:
//! the capture ratio's intervals start again at each month's start (the same
//! intervals when `[analytics.cooling] interval` divides a day), and the mean
//! instantaneous PUE weights each month by its instants. An anomaly still open at a
//! month's end and found again by the next month (whose detectors read
//! `lookback` before it) is one anomaly, from its first start to its last end.

use std::collections::HashMap;

use crate::analysis::{Analysis, Part};
use crate::anomaly::{sort_by_detection, Anomaly, AnomalyKind};
use crate::carbon::{wue_reason, CarbonReport, FactorUsed, ScopeCarbon, Wue};
use crate::config::AnalyticsConfig;
use crate::cooling::series::LineFit;
use crate::cooling::{
    duration_ns, no_trend, Approach, CaptureRatio, ClassLimit, CoolingReport, DewPointMargin,
    HeatRemoved, LoopCooling, PeriodCapture,
};
use crate::counters::MeterEnergy;
use crate::demand::{instant_reason, peak_reason, DemandReport, InstantPue, PeakDemand};
use crate::pue::{judge, ratio, EnergySplit, ModulePue, PeriodPue, PueReport, ScopePue};
use crate::tariff::{CostReport, PeriodCost, ScopeCost};

/// The analysis of the months' whole range, from the analyses of consecutive months
/// in order (as `tidewatch analyze` makes them); `None` without a month.
pub fn compose_months(months: Vec<Analysis>, config: &AnalyticsConfig) -> Option<Analysis> {
    if months.len() <= 1 {
        return months.into_iter().next();
    }
    let first = months.first()?;
    let last = months.last()?;
    let window_ns = (first.window_ns.0, last.window_ns.1);
    let labels: Vec<String> = months.iter().map(month_label).collect();
    let pue = compose_pue(&months.iter().map(|m| &m.pue).collect::<Vec<_>>(), config);
    let demand = compose_part(&labels, months.iter().map(|m| &m.demand), compose_demand);
    let cost = compose_part(&labels, months.iter().map(|m| &m.cost), compose_cost);
    let carbon = compose_part(&labels, months.iter().map(|m| &m.carbon), compose_carbon);
    let cooling = compose_part(&labels, months.iter().map(|m| &m.cooling), |reports| {
        compose_cooling(reports, config)
    });
    let anomalies = compose_part(&labels, months.iter().map(|m| &m.anomalies), |lists| {
        let starts: Vec<i64> = months.iter().map(|m| m.window_ns.0).collect();
        compose_anomalies(lists, &starts)
    });
    Some(Analysis {
        window_ns,
        pue,
        demand,
        cost,
        carbon,
        cooling,
        anomalies,
    })
}

/// The month's label ("2026-01"), for the errors of its parts.
fn month_label(month: &Analysis) -> String {
    month.pue.park.monthly.first().map_or_else(
        || format!("from {} ns", month.window_ns.0),
        |p| p.label.clone(),
    )
}

/// A part of every month: failed if it failed in some month (naming the first such
/// month), not configured if it is not, else composed from the months' results.
fn compose_part<'a, T: 'a>(
    labels: &[String],
    parts: impl Iterator<Item = &'a Part<T>>,
    compose: impl FnOnce(&[&T]) -> T,
) -> Part<T> {
    let mut results = Vec::new();
    for (label, part) in labels.iter().zip(parts) {
        match part {
            Part::Computed { result } => results.push(result),
            Part::NotConfigured { reason } => {
                return Part::NotConfigured {
                    reason: reason.clone(),
                }
            }
            Part::Failed { error } => {
                return Part::Failed {
                    error: format!("month {label}: {error}"),
                }
            }
        }
    }
    Part::Computed {
        result: compose(&results),
    }
}

/// A window's length, ns, as f64 (the weight of its coverage).
fn length(window_ns: (i64, i64)) -> f64 {
    (window_ns.1 - window_ns.0) as f64
}

/// The whole window of consecutive windows.
fn span(windows: impl IntoIterator<Item = (i64, i64)>) -> (i64, i64) {
    windows
        .into_iter()
        .fold(None, |acc: Option<(i64, i64)>, w| {
            Some(acc.map_or(w, |(s, e)| (s.min(w.0), e.max(w.1))))
        })
        .unwrap_or((0, 0))
}

/// Covered time (coverage x window length) summed over windows, ns, and the fraction
/// of the whole.
struct Covered {
    ns: f64,
    total: f64,
}

impl Covered {
    fn of(items: impl IntoIterator<Item = (f64, (i64, i64))>) -> Covered {
        let (mut ns, mut total) = (0.0, 0.0);
        for (coverage, window) in items {
            ns += coverage * length(window);
            total += length(window);
        }
        Covered { ns, total }
    }

    fn fraction(&self) -> f64 {
        if self.total > 0.0 {
            self.ns / self.total
        } else {
            0.0
        }
    }

    /// For [`ratio`]: whether anything is covered (a whole ns at least).
    fn any(&self) -> i64 {
        i64::from(self.ns >= 1.0)
    }
}

/// The mean of values weighted by their weights (`None` without a value of weight).
fn weighted(items: impl IntoIterator<Item = (Option<f64>, f64)>) -> Option<f64> {
    let (mut sum, mut weight) = (0.0, 0.0);
    for (value, w) in items {
        if let Some(v) = value.filter(|_| w > 0.0) {
            sum += v * w;
            weight += w;
        }
    }
    (weight > 0.0).then(|| sum / weight)
}

fn max_of(values: impl IntoIterator<Item = Option<f64>>) -> Option<f64> {
    values.into_iter().flatten().reduce(f64::max)
}

fn min_of(values: impl IntoIterator<Item = Option<f64>>) -> Option<f64> {
    values.into_iter().flatten().reduce(f64::min)
}

/// The sum of the values that are known (`None` when none is).
fn sum_of(values: impl IntoIterator<Item = Option<f64>>) -> Option<f64> {
    values.into_iter().flatten().reduce(|a, b| a + b)
}

/// `None` when the composed value is known; else the first month's reason.
fn first_reason<'a>(
    known: bool,
    reasons: impl IntoIterator<Item = &'a Option<String>>,
) -> Option<String> {
    if known {
        return None;
    }
    reasons.into_iter().flatten().next().cloned()
}

/// The i-th item of every month (the months list the same scopes, loops and meters
/// in the same order).
fn nth<'a, T, U>(items: &[&'a T], get: impl Fn(&'a T) -> &'a [U], i: usize) -> Vec<&'a U> {
    items.iter().filter_map(|t| get(t).get(i)).collect()
}

// Energy PUE.

fn compose_pue(reports: &[&PueReport], config: &AnalyticsConfig) -> PueReport {
    let first = reports[0];
    PueReport {
        window_ns: span(reports.iter().map(|r| r.window_ns)),
        category: first.category,
        category_text: first.category_text.clone(),
        centres: (0..first.centres.len())
            .map(|i| compose_scope(&nth(reports, |r| r.centres.as_slice(), i), config))
            .collect(),
        park: compose_scope(&reports.iter().map(|r| &r.park).collect::<Vec<_>>(), config),
    }
}

fn compose_scope(scopes: &[&ScopePue], config: &AnalyticsConfig) -> ScopePue {
    let first = scopes[0];
    let total = compose_period(&scopes.iter().map(|s| &s.total).collect::<Vec<_>>());
    let (grade, limits) = judge(total.pue, &config.pue);
    let windows: Vec<(i64, i64)> = scopes.iter().map(|s| s.total.window_ns).collect();
    ScopePue {
        scope: first.scope.clone(),
        grade,
        limits,
        split: compose_split(
            &scopes.iter().map(|s| &s.split).collect::<Vec<_>>(),
            &windows,
        ),
        daily: scopes
            .iter()
            .flat_map(|s| s.daily.iter().cloned())
            .collect(),
        monthly: scopes
            .iter()
            .flat_map(|s| s.monthly.iter().cloned())
            .collect(),
        modules: first
            .modules
            .iter()
            .map(|m| {
                let parts: Vec<(&ModulePue, (i64, i64))> = scopes
                    .iter()
                    .zip(&windows)
                    .filter_map(|(s, w)| s.modules.iter().find(|x| x.zone == m.zone).zip(Some(*w)))
                    .collect();
                compose_module(&parts)
            })
            .collect(),
        meters: first
            .meters
            .iter()
            .map(|m| {
                let parts: Vec<&MeterEnergy> = scopes
                    .iter()
                    .filter_map(|s| s.meters.iter().find(|x| x.meter == m.meter))
                    .collect();
                compose_meter(&parts)
            })
            .collect(),
        total,
    }
}

fn compose_period(periods: &[&PeriodPue]) -> PeriodPue {
    let covered = Covered::of(periods.iter().map(|p| (p.coverage, p.window_ns)));
    let facility_kwh: f64 = periods.iter().map(|p| p.facility_kwh).sum();
    let it_kwh: f64 = periods.iter().map(|p| p.it_kwh).sum();
    PeriodPue {
        label: periods[0].label.clone(),
        window_ns: span(periods.iter().map(|p| p.window_ns)),
        pue: ratio(facility_kwh, it_kwh, covered.any()),
        coverage: covered.fraction(),
        facility_kwh,
        it_kwh,
    }
}

fn compose_split(splits: &[&EnergySplit], windows: &[(i64, i64)]) -> EnergySplit {
    let covered = Covered::of(
        splits
            .iter()
            .map(|s| s.coverage)
            .zip(windows.iter().copied()),
    );
    let sum = |f: fn(&EnergySplit) -> f64| -> f64 { splits.iter().map(|s| f(s)).sum() };
    let (facility, it, cooling, other, loss) = (
        sum(|s| s.facility_kwh),
        sum(|s| s.it_kwh),
        sum(|s| s.cooling_kwh),
        sum(|s| s.other_kwh),
        sum(|s| s.power_loss_kwh),
    );
    EnergySplit {
        coverage: covered.fraction(),
        facility_kwh: facility,
        it_kwh: it,
        cooling_kwh: cooling,
        other_kwh: other,
        power_loss_kwh: loss,
        clf: ratio(cooling, it, covered.any()),
        plf: ratio(loss, it, covered.any()),
        other_ratio: ratio(other, it, covered.any()),
    }
}

fn compose_module(parts: &[(&ModulePue, (i64, i64))]) -> ModulePue {
    let covered = Covered::of(parts.iter().map(|(m, w)| (m.coverage, *w)));
    let it_kwh: f64 = parts.iter().map(|(m, _)| m.it_kwh).sum();
    let infrastructure_kwh: f64 = parts.iter().map(|(m, _)| m.infrastructure_kwh).sum();
    ModulePue {
        zone: parts[0].0.zone.clone(),
        ppue: ratio(it_kwh + infrastructure_kwh, it_kwh, covered.any()),
        coverage: covered.fraction(),
        it_kwh,
        infrastructure_kwh,
    }
}

fn compose_meter(parts: &[&MeterEnergy]) -> MeterEnergy {
    let covered = Covered::of(parts.iter().map(|m| (m.coverage, m.window_ns)));
    let mut events: Vec<_> = parts
        .iter()
        .flat_map(|m| m.events.iter().copied())
        .collect();
    // An event at a month's edge is within both months.
    events.dedup();
    MeterEnergy {
        meter: parts[0].meter.clone(),
        window_ns: span(parts.iter().map(|m| m.window_ns)),
        energy_kwh: parts.iter().map(|m| m.energy_kwh).sum(),
        uncovered_kwh: parts.iter().map(|m| m.uncovered_kwh).sum(),
        coverage: covered.fraction(),
        events,
    }
}

// Peak demand and instantaneous PUE.

fn compose_demand(reports: &[&DemandReport]) -> DemandReport {
    let first = reports[0];
    DemandReport {
        window_ns: span(reports.iter().map(|r| r.window_ns)),
        interval_minutes: first.interval_minutes,
        centres: (0..first.centres.len())
            .map(|i| compose_peak(&nth(reports, |r| r.centres.as_slice(), i)))
            .collect(),
        park: compose_peak(&reports.iter().map(|r| &r.park).collect::<Vec<_>>()),
        instant_centres: (0..first.instant_centres.len())
            .map(|i| compose_instant(&nth(reports, |r| r.instant_centres.as_slice(), i)))
            .collect(),
        instant_park: compose_instant(&reports.iter().map(|r| &r.instant_park).collect::<Vec<_>>()),
    }
}

fn compose_peak(peaks: &[&PeakDemand]) -> PeakDemand {
    // The highest month; the first of equals, as one pass keeps the first interval.
    let best =
        peaks
            .iter()
            .filter(|p| p.peak_kw.is_some())
            .fold(None, |best: Option<&&PeakDemand>, p| match best {
                Some(b) if b.peak_kw >= p.peak_kw => Some(b),
                _ => Some(p),
            });
    let blocks: usize = peaks.iter().map(|p| p.blocks).sum();
    let measured: usize = peaks.iter().map(|p| p.measured_blocks).sum();
    PeakDemand {
        scope: peaks[0].scope.clone(),
        peak_kw: best.and_then(|b| b.peak_kw),
        peak_window_ns: best.and_then(|b| b.peak_window_ns),
        peak_local: best.and_then(|b| b.peak_local.clone()),
        reason: peak_reason(best.is_some(), blocks),
        blocks,
        measured_blocks: measured,
        coverage: if blocks > 0 {
            measured as f64 / blocks as f64
        } else {
            0.0
        },
    }
}

fn compose_instant(parts: &[&InstantPue]) -> InstantPue {
    let first = parts[0];
    let best = parts.iter().filter(|p| p.peak_it_kw.is_some()).fold(
        None,
        |best: Option<&&InstantPue>, p| match best {
            Some(b) if b.peak_it_kw >= p.peak_it_kw => Some(b),
            _ => Some(p),
        },
    );
    let mut out = InstantPue {
        scope: first.scope.clone(),
        category_text: first.category_text,
        instants: parts.iter().map(|p| p.instants).sum(),
        skipped: parts.iter().map(|p| p.skipped).sum(),
        peak_it_kw: best.and_then(|b| b.peak_it_kw),
        facility_kw_at_peak: best.and_then(|b| b.facility_kw_at_peak),
        pue_at_peak: best.and_then(|b| b.pue_at_peak),
        peak_time_ns: best.and_then(|b| b.peak_time_ns),
        peak_local: best.and_then(|b| b.peak_local.clone()),
        min_pue: min_of(parts.iter().map(|p| p.min_pue)),
        max_pue: max_of(parts.iter().map(|p| p.max_pue)),
        mean_pue: weighted(parts.iter().map(|p| (p.mean_pue, p.instants as f64))),
        reason: None,
    };
    // A reason every month gives is the configuration's (a centre without a UPS output
    // meter); else the reason follows from the range's counts.
    out.reason = match first.reason.as_ref() {
        Some(r) if parts.iter().all(|p| p.reason.as_ref() == Some(r)) => Some(r.clone()),
        _ => instant_reason(&out),
    };
    out
}

// Cost.

fn compose_cost(reports: &[&CostReport]) -> CostReport {
    let first = reports[0];
    let mut tariffs: Vec<String> = Vec::new();
    for name in reports.iter().flat_map(|r| &r.tariffs) {
        if !tariffs.contains(name) {
            tariffs.push(name.clone());
        }
    }
    let windows: Vec<(i64, i64)> = reports.iter().map(|r| r.window_ns).collect();
    CostReport {
        window_ns: span(windows.iter().copied()),
        currency: first.currency,
        tariffs,
        centres: (0..first.centres.len())
            .map(|i| compose_scope_cost(&nth(reports, |r| r.centres.as_slice(), i), &windows))
            .collect(),
        park: compose_scope_cost(
            &reports.iter().map(|r| &r.park).collect::<Vec<_>>(),
            &windows,
        ),
    }
}

fn compose_scope_cost(scopes: &[&ScopeCost], windows: &[(i64, i64)]) -> ScopeCost {
    let first = scopes[0];
    let kwh: f64 = scopes.iter().map(|s| s.kwh).sum();
    let cost: f64 = scopes.iter().map(|s| s.cost_cny).sum();
    ScopeCost {
        scope: first.scope.clone(),
        periods: first
            .periods
            .iter()
            .enumerate()
            .map(|(i, p)| PeriodCost {
                period: p.period,
                label: p.label,
                kwh: scopes
                    .iter()
                    .filter_map(|s| s.periods.get(i))
                    .map(|p| p.kwh)
                    .sum(),
                cost_cny: scopes
                    .iter()
                    .filter_map(|s| s.periods.get(i))
                    .map(|p| p.cost_cny)
                    .sum(),
            })
            .collect(),
        kwh,
        cost_cny: cost,
        average_price_cny_per_kwh: (kwh > 0.0).then(|| cost / kwh),
        uncovered_kwh: scopes.iter().map(|s| s.uncovered_kwh).sum(),
        coverage: Covered::of(
            scopes
                .iter()
                .map(|s| s.coverage)
                .zip(windows.iter().copied()),
        )
        .fraction(),
    }
}

// CO2, CUE and WUE.

fn compose_carbon(reports: &[&CarbonReport]) -> CarbonReport {
    let first = reports[0];
    let windows: Vec<(i64, i64)> = reports.iter().map(|r| r.window_ns).collect();
    CarbonReport {
        window_ns: span(windows.iter().copied()),
        category_text: first.category_text.clone(),
        centres: (0..first.centres.len())
            .map(|i| compose_scope_carbon(&nth(reports, |r| r.centres.as_slice(), i), &windows))
            .collect(),
        park: compose_scope_carbon(
            &reports.iter().map(|r| &r.park).collect::<Vec<_>>(),
            &windows,
        ),
    }
}

fn compose_scope_carbon(scopes: &[&ScopeCarbon], windows: &[(i64, i64)]) -> ScopeCarbon {
    let first = scopes[0];
    let covered = Covered::of(
        scopes
            .iter()
            .map(|s| s.coverage)
            .zip(windows.iter().copied()),
    );
    let it_kwh: f64 = scopes.iter().map(|s| s.it_kwh).sum();
    let co2_kg: f64 = scopes.iter().map(|s| s.co2_kg).sum();
    // One factor per local year: a year's months add up.
    let mut factors: Vec<FactorUsed> = Vec::new();
    for f in scopes.iter().flat_map(|s| &s.factors) {
        match factors.iter_mut().find(|x| x.year == f.year) {
            Some(x) => x.facility_kwh += f.facility_kwh,
            None => factors.push(f.clone()),
        }
    }
    let wues: Vec<&Wue> = scopes.iter().map(|s| &s.wue).collect();
    let water = Covered::of(wues.iter().map(|w| w.coverage).zip(windows.iter().copied()));
    let litres: f64 = wues.iter().map(|w| w.water_litres).sum();
    let water_it: f64 = wues.iter().map(|w| w.it_kwh).sum();
    let wue = ratio(litres, water_it, water.any());
    ScopeCarbon {
        scope: first.scope.clone(),
        coverage: covered.fraction(),
        facility_kwh: scopes.iter().map(|s| s.facility_kwh).sum(),
        it_kwh,
        co2_kg,
        cue_kg_per_kwh: ratio(co2_kg, it_kwh, covered.any()),
        factors,
        wue: Wue {
            wue_l_per_kwh: wue,
            // Not metered is the configuration's, and so every month's.
            reason: match &first.wue.reason {
                Some(r) if wues.iter().all(|w| w.reason.as_ref() == Some(r)) => Some(r.clone()),
                _ => wue_reason(wue.is_some(), water.any() > 0),
            },
            water_litres: litres,
            it_kwh: water_it,
            coverage: water.fraction(),
        },
    }
}

// Cooling.

fn compose_cooling(reports: &[&CoolingReport], config: &AnalyticsConfig) -> CoolingReport {
    let first = reports[0];
    let windows: Vec<(i64, i64)> = reports.iter().map(|r| r.window_ns).collect();
    CoolingReport {
        window_ns: span(windows.iter().copied()),
        it_source: first.it_source.clone(),
        loops: first
            .loops
            .iter()
            .map(|lp| {
                let parts: Vec<(&LoopCooling, (i64, i64))> = reports
                    .iter()
                    .zip(&windows)
                    .filter_map(|(r, w)| r.loops.iter().find(|x| x.cdu == lp.cdu).zip(Some(*w)))
                    .collect();
                compose_loop(&parts, config)
            })
            .collect(),
    }
}

fn compose_loop(parts: &[(&LoopCooling, (i64, i64))], config: &AnalyticsConfig) -> LoopCooling {
    let first = parts[0].0;
    LoopCooling {
        cdu: first.cdu.clone(),
        centre: first.centre.clone(),
        zone: first.zone.clone(),
        coolant: first.coolant,
        heat: compose_heat(parts),
        capture: compose_capture(&parts.iter().map(|(l, _)| &l.capture).collect::<Vec<_>>()),
        approach: compose_approach(parts, config),
        dew_point: compose_dew_point(parts),
        class_limit: compose_class(parts),
    }
}

fn compose_heat(parts: &[(&LoopCooling, (i64, i64))]) -> HeatRemoved {
    let heat: Vec<(&HeatRemoved, f64)> = parts
        .iter()
        .map(|(l, w)| (&l.heat, l.heat.coverage * length(*w)))
        .collect();
    let energy = sum_of(heat.iter().map(|(h, _)| h.energy_kwh));
    // Temperature difference and flow are known exactly where the heat is.
    let mean = |f: fn(&HeatRemoved) -> Option<f64>| weighted(heat.iter().map(|(h, c)| (f(h), *c)));
    HeatRemoved {
        energy_kwh: energy,
        mean_kw: mean(|h| h.mean_kw),
        max_kw: max_of(heat.iter().map(|(h, _)| h.max_kw)),
        mean_delta_t_k: mean(|h| h.mean_delta_t_k),
        mean_flow_lpm: mean(|h| h.mean_flow_lpm),
        coverage: Covered::of(parts.iter().map(|(l, w)| (l.heat.coverage, *w))).fraction(),
        samples: heat.iter().map(|(h, _)| h.samples).sum(),
        complete_samples: heat.iter().map(|(h, _)| h.complete_samples).sum(),
        expected_samples: heat
            .iter()
            .filter_map(|(h, _)| h.expected_samples)
            .reduce(|a, b| a + b),
        reason: first_reason(energy.is_some(), heat.iter().map(|(h, _)| &h.reason)),
    }
}

fn compose_capture(parts: &[&CaptureRatio]) -> CaptureRatio {
    let totals: Vec<&PeriodCapture> = parts.iter().map(|c| &c.total).collect();
    let covered = Covered::of(totals.iter().map(|t| (t.coverage, t.window_ns)));
    let liquid_kwh: f64 = totals.iter().map(|t| t.liquid_kwh).sum();
    let it_kwh: f64 = totals.iter().map(|t| t.it_kwh).sum();
    let ratio = (covered.any() > 0 && it_kwh > 0.0)
        .then(|| liquid_kwh / it_kwh)
        .filter(|r| r.is_finite());
    CaptureRatio {
        total: PeriodCapture {
            window_ns: span(totals.iter().map(|t| t.window_ns)),
            ratio,
            coverage: covered.fraction(),
            liquid_kwh,
            it_kwh,
        },
        intervals: parts
            .iter()
            .flat_map(|c| c.intervals.iter().cloned())
            .collect(),
        reason: first_reason(ratio.is_some(), parts.iter().map(|c| &c.reason)),
    }
}

fn compose_approach(parts: &[(&LoopCooling, (i64, i64))], config: &AnalyticsConfig) -> Approach {
    let approaches: Vec<(&Approach, f64)> = parts
        .iter()
        .map(|(l, w)| (&l.approach, l.approach.coverage * length(*w)))
        .collect();
    let mean = weighted(approaches.iter().map(|(a, c)| (a.mean_k, *c)));
    let fit = approaches
        .iter()
        .filter_map(|(a, _)| a.fit)
        .reduce(|a: LineFit, b| a.merge(&b));
    let slope = fit.and_then(|f| f.slope_per_day(duration_ns(config.cooling.trend_min_span)));
    let cdu = &parts[0].0.cdu;
    let reason = if mean.is_none() {
        first_reason(false, approaches.iter().map(|(a, _)| &a.reason))
    } else {
        slope.is_none().then(|| no_trend(cdu, &config.cooling))
    };
    Approach {
        mean_k: mean,
        min_k: min_of(approaches.iter().map(|(a, _)| a.min_k)),
        max_k: max_of(approaches.iter().map(|(a, _)| a.max_k)),
        slope_k_per_day: slope,
        coverage: Covered::of(parts.iter().map(|(l, w)| (l.approach.coverage, *w))).fraction(),
        reason,
        fit,
    }
}

fn compose_dew_point(parts: &[(&LoopCooling, (i64, i64))]) -> DewPointMargin {
    let dews: Vec<(&DewPointMargin, f64)> = parts
        .iter()
        .map(|(l, w)| (&l.dew_point, l.dew_point.coverage * length(*w)))
        .collect();
    let first = dews[0].0;
    let mean = weighted(dews.iter().map(|(d, c)| (d.mean_margin_k, *c)));
    DewPointMargin {
        source: dews.iter().find_map(|(d, _)| d.source),
        min_margin_k: min_of(dews.iter().map(|(d, _)| d.min_margin_k)),
        mean_margin_k: mean,
        warning_k: first.warning_k,
        critical_k: first.critical_k,
        below_warning_s: sum_of(dews.iter().map(|(d, _)| d.below_warning_s)),
        below_critical_s: sum_of(dews.iter().map(|(d, _)| d.below_critical_s)),
        coverage: Covered::of(parts.iter().map(|(l, w)| (l.dew_point.coverage, *w))).fraction(),
        reason: first_reason(mean.is_some(), dews.iter().map(|(d, _)| &d.reason)),
    }
}

fn compose_class(parts: &[(&LoopCooling, (i64, i64))]) -> ClassLimit {
    let classes: Vec<&ClassLimit> = parts.iter().map(|(l, _)| &l.class_limit).collect();
    let max = max_of(classes.iter().map(|c| c.max_supply_c));
    ClassLimit {
        class: classes[0].class.clone(),
        limit_c: classes[0].limit_c,
        max_supply_c: max,
        above_s: sum_of(classes.iter().map(|c| c.above_s)),
        coverage: Covered::of(parts.iter().map(|(l, w)| (l.class_limit.coverage, *w))).fraction(),
        reason: first_reason(max.is_some(), classes.iter().map(|c| &c.reason)),
    }
}

// Thermal anomalies.

/// The months' anomalies, one per condition: an anomaly still open at the end of a
/// month that the next month finds again, begun before that month's start, is the
/// same condition going on. `starts` are the months' starts, Unix ns.
fn compose_anomalies(lists: &[&Vec<Anomaly>], starts: &[i64]) -> Vec<Anomaly> {
    type Key = (AnomalyKind, String, Option<String>);
    let key = |a: &Anomaly| -> Key { (a.kind, a.device.clone(), a.field.clone()) };
    let mut out: Vec<Anomaly> = Vec::new();
    // Anomalies open at the end of the previous month: their index in `out`.
    let mut open: HashMap<Key, usize> = HashMap::new();
    for (list, &start) in lists.iter().zip(starts) {
        let mut still_open = HashMap::new();
        for a in list.iter() {
            let k = key(a);
            let index = match open.remove(&k) {
                Some(i) if a.start_ns <= start => {
                    continue_anomaly(&mut out[i], a);
                    i
                }
                earlier => {
                    // Not the same condition: the earlier one stays open for another.
                    if let Some(i) = earlier {
                        open.insert(k.clone(), i);
                    }
                    out.push(a.clone());
                    out.len() - 1
                }
            };
            if out[index].end_ns.is_none() {
                still_open.insert(k, index);
            }
        }
        open = still_open;
    }
    sort_by_detection(&mut out);
    out
}

/// `earlier` (open at a month's end) goes on as `later` (the next month's view of it):
/// its end is the later one's, and its severity, score, worst value and sentences the
/// worse of the two.
fn continue_anomaly(earlier: &mut Anomaly, later: &Anomaly) {
    earlier.end_ns = later.end_ns;
    earlier.severity = earlier.severity.max(later.severity);
    if later.score > earlier.score {
        earlier.score = later.score;
        earlier.value = later.value;
        earlier.message_en = later.message_en.clone();
        earlier.message_zh = later.message_zh.clone();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::anomaly::Severity;
    use std::collections::BTreeMap;

    const H: i64 = 3_600_000_000_000;

    fn anomaly(
        kind: AnomalyKind,
        device: &str,
        start: i64,
        end: Option<i64>,
        score: f64,
    ) -> Anomaly {
        Anomaly {
            kind,
            device: device.into(),
            field: None,
            tags: BTreeMap::new(),
            start_ns: start,
            detected_ns: start + H / 60,
            end_ns: end,
            severity: if score > 2.0 {
                Severity::Critical
            } else {
                Severity::Warning
            },
            score,
            value: Some(score),
            message_en: format!("score {score}"),
            message_zh: format!("分数 {score}"),
        }
    }

    #[test]
    fn an_anomaly_open_across_a_month_end_is_one_anomaly() {
        use AnomalyKind::{FilterDirty, LowFlow};
        // Month 1 is 0..100 h, month 2 from 100 h (its detectors read 6 h before).
        let month1 = vec![
            anomaly(LowFlow, "cdu", 90 * H, None, 1.5),
            anomaly(FilterDirty, "cdu", 10 * H, Some(20 * H), 1.0),
        ];
        let month2 = vec![
            // The low flow, seen from the lookback, worse in month 2, ends at 120 h.
            anomaly(LowFlow, "cdu", 94 * H, Some(120 * H), 3.0),
            // A new low flow later: another condition.
            anomaly(LowFlow, "cdu", 150 * H, None, 1.2),
            anomaly(FilterDirty, "cdu", 130 * H, Some(140 * H), 1.0),
        ];
        let out = compose_anomalies(&[&month1, &month2], &[0, 100 * H]);
        assert_eq!(out.len(), 4, "{out:#?}");
        let flows: Vec<&Anomaly> = out.iter().filter(|a| a.kind == LowFlow).collect();
        assert_eq!(flows.len(), 2);
        let joined = flows[0];
        assert_eq!((joined.start_ns, joined.end_ns), (90 * H, Some(120 * H)));
        assert_eq!(joined.severity, Severity::Critical);
        assert_eq!((joined.score, joined.message_en.as_str()), (3.0, "score 3"));
        assert_eq!((flows[1].start_ns, flows[1].end_ns), (150 * H, None));
        // A condition that started after the month's start is not the open one.
        let month2 = vec![anomaly(LowFlow, "cdu", 101 * H, None, 1.0)];
        let out = compose_anomalies(&[&month1, &month2], &[0, 100 * H]);
        assert_eq!(out.iter().filter(|a| a.kind == LowFlow).count(), 2);
    }

    #[test]
    fn weights_and_extremes() {
        assert_eq!(
            weighted([(Some(1.0), 1.0), (Some(4.0), 2.0), (None, 5.0)]),
            Some(3.0)
        );
        assert_eq!(weighted([(Some(1.0), 0.0)]), None);
        assert_eq!(max_of([None, Some(2.0), Some(1.0)]), Some(2.0));
        assert_eq!(min_of([None, None]), None);
        assert_eq!(sum_of([Some(1.0), None, Some(2.5)]), Some(3.5));
        let c = Covered::of([(0.5, (0, 10)), (1.0, (10, 40))]);
        assert_eq!((c.ns, c.fraction(), c.any()), (35.0, 0.875, 1));
    }
}
