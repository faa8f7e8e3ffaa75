//! Electricity cost by time-of-use period. In the flow it sits beside the PUE: the
//! same cleaned kWh counters ([`crate::counters`]) of the facility meters (roles
//! `pue.facility_roles`, the energy the park buys) are apportioned to the local clock
//! hours and priced with a tariff table from configuration; the result feeds the
//! monthly energy report ("cost by tariff period").
//!
//! # The tariff is configuration, not code
//!
//! Shandong's time-of-use tariff has five periods: critical peak (尖峰), peak (高峰),
//! flat (平段), valley (低谷) and a midday deep valley (深谷); which hour belongs to
//! which period changes by month, and the prices change by notice. A tariff
//! ([`Tariff`]) is therefore a table: rows of *months x hours -> period*, and
//! *period -> price* (CNY/kWh), valid between two local dates. Several tariffs with
//! disjoint validity make a history. [`TariffTable::compile`] checks a table
//! completely before anything is priced: every month and hour has exactly one period
//! (two rows giving the same hour, or an hour no row gives, is an error naming the
//! row, month and hour), period names are the five known ones, every period used has a
//! price, prices are finite and not negative, validity spans do not overlap.
//!
//! # How energy is priced
//!
//! - Each covered counter interval's energy is spread evenly over its time (constant
//!   power inside an interval, as [`CounterSeries::energy`] does) and cut at the local
//!   hour boundaries (UTC + `utc_offset_hours`); each piece is priced with the period
//!   and price of its local hour, from the tariff valid on its local date. With
//!   readings on the hour or every few minutes nothing is really apportioned.
//! - Energy outside coverage (across a gap, or unknown after a counter jump) is never
//!   priced: it is reported as `uncovered_kwh`, and `coverage` says how much of the
//!   range every facility meter covers.
//! - A local hour on a date no tariff covers is an error naming the hour (a cost
//!   missing a part would be a silent number).
//! - The park is the sum of its centres.

use std::collections::BTreeMap;
use std::ops::Range;

use chrono::{DateTime, Datelike, NaiveDate, Timelike};
use serde::{Deserialize, Serialize};
use tidewatch_storage::store::Store;

use crate::config::AnalyticsConfig;
use crate::counters::{intersect_spans, spans_length, CounterSeries};
use crate::error::AnalyticsError;
use crate::inventory::{Inventory, MeterRef};
use crate::pue::{check_roles, check_window, need_roles, read_counters};

const NS_PER_HOUR: i64 = 3_600_000_000_000;

/// A time-of-use period of the Shandong tariff.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TouPeriod {
    /// 尖峰: the evening (and summer/winter) critical peak.
    CriticalPeak,
    /// 高峰: peak.
    Peak,
    /// 平段: flat (shoulder).
    Flat,
    /// 低谷: valley (night).
    Valley,
    /// 深谷: the midday deep valley (solar surplus).
    DeepValley,
}

impl TouPeriod {
    /// All five, dearest first (the order of reports).
    pub const ALL: [TouPeriod; 5] = [
        TouPeriod::CriticalPeak,
        TouPeriod::Peak,
        TouPeriod::Flat,
        TouPeriod::Valley,
        TouPeriod::DeepValley,
    ];

    /// The name configuration uses (`critical_peak`, ..., `deep_valley`).
    pub fn name(self) -> &'static str {
        match self {
            TouPeriod::CriticalPeak => "critical_peak",
            TouPeriod::Peak => "peak",
            TouPeriod::Flat => "flat",
            TouPeriod::Valley => "valley",
            TouPeriod::DeepValley => "deep_valley",
        }
    }

    /// The name reports use, Chinese first: "尖峰 critical peak".
    pub fn label(self) -> &'static str {
        match self {
            TouPeriod::CriticalPeak => "尖峰 critical peak",
            TouPeriod::Peak => "高峰 peak",
            TouPeriod::Flat => "平段 flat",
            TouPeriod::Valley => "低谷 valley",
            TouPeriod::DeepValley => "深谷 deep valley",
        }
    }

    /// The period a configuration name means.
    pub fn from_name(name: &str) -> Option<TouPeriod> {
        TouPeriod::ALL.into_iter().find(|p| p.name() == name)
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// One tariff: a table of months x hours -> period and period -> price, valid between
/// two local dates. `[[analytics.tariff]]` in the configuration file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tariff {
    /// How errors and reports name it, e.g. "Shandong industrial TOU 2026".
    pub name: String,
    /// The first local date it applies, "2026-01-01" (included). Absent: no start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_from: Option<String>,
    /// The local date it stops applying, "2027-01-01" (excluded). Absent: no end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_until: Option<String>,
    /// Price of each period used, CNY/kWh: `critical_peak`, `peak`, `flat`, `valley`,
    /// `deep_valley`.
    pub prices: BTreeMap<String, f64>,
    /// Months x hours -> period; together the rows give every hour of every month
    /// exactly once.
    pub rows: Vec<TariffRow>,
}

/// A row of a tariff table: these months, these hours, this period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TariffRow {
    /// Months of the year, 1..=12.
    pub months: Vec<u32>,
    /// Local clock hours `[from, to]`, from included, to excluded, 0..=24: `[10, 14]`
    /// is 10:00-14:00.
    pub hours: Vec<u32>,
    /// The period's name: `critical_peak`, `peak`, `flat`, `valley` or `deep_valley`.
    pub period: String,
}

/// Tariffs checked and turned into lookup tables; see [`TariffTable::compile`].
#[derive(Debug, Clone, PartialEq)]
pub struct TariffTable {
    tariffs: Vec<CompiledTariff>,
}

#[derive(Debug, Clone, PartialEq)]
struct CompiledTariff {
    name: String,
    from: Option<NaiveDate>,
    until: Option<NaiveDate>,
    /// `grid[month - 1][hour]`.
    grid: [[TouPeriod; 24]; 12],
    prices: [Option<f64>; 5],
}

fn tariff_error(
    tariff: &str,
    place: impl Into<String>,
    message: impl Into<String>,
) -> AnalyticsError {
    AnalyticsError::Tariff {
        tariff: tariff.to_owned(),
        place: place.into(),
        message: message.into(),
    }
}

fn known_periods() -> String {
    TouPeriod::ALL.map(TouPeriod::name).join(", ")
}

impl TariffTable {
    /// Checks every tariff and their validity spans; the first problem found is an
    /// error naming the tariff, the place (prices, row, month, hour, validity) and the
    /// cause. An empty list gives an empty table (pricing with it is an error).
    pub fn compile(tariffs: &[Tariff]) -> Result<TariffTable, AnalyticsError> {
        let mut compiled = Vec::with_capacity(tariffs.len());
        for (i, t) in tariffs.iter().enumerate() {
            let name = if t.name.trim().is_empty() {
                format!("#{}", i + 1)
            } else {
                t.name.clone()
            };
            compiled.push(compile_one(&name, t)?);
        }
        for (i, a) in compiled.iter().enumerate() {
            for b in &compiled[i + 1..] {
                let a_before_b = matches!((a.until, b.from), (Some(u), Some(f)) if u <= f);
                let b_before_a = matches!((b.until, a.from), (Some(u), Some(f)) if u <= f);
                if !a_before_b && !b_before_a {
                    return Err(tariff_error(
                        &b.name,
                        "valid_from/valid_until",
                        format!(
                            "its validity {} overlaps that of tariff {:?} ({}): two tariffs would price the same day",
                            validity(b),
                            a.name,
                            validity(a)
                        ),
                    ));
                }
            }
        }
        Ok(TariffTable { tariffs: compiled })
    }

    /// Whether no tariff is configured.
    pub fn is_empty(&self) -> bool {
        self.tariffs.is_empty()
    }

    /// The period and price (CNY/kWh) of the local hour starting at `local_hour_ns`
    /// (local clock time as Unix-like ns), with the index of the tariff that gave them.
    fn lookup(&self, local_hour_ns: i64) -> Result<(TouPeriod, f64, usize), AnalyticsError> {
        let at = DateTime::from_timestamp_nanos(local_hour_ns).naive_utc();
        let date = at.date();
        let found = self
            .tariffs
            .iter()
            .position(|t| t.from.is_none_or(|f| f <= date) && t.until.is_none_or(|u| date < u));
        let Some(i) = found else {
            let known: Vec<String> = self
                .tariffs
                .iter()
                .map(|t| format!("{:?} {}", t.name, validity(t)))
                .collect();
            return Err(tariff_error(
                "(none)",
                format!("{} (local)", at.format("%Y-%m-%d %H:%M")),
                format!(
                    "no tariff is valid on {date}; configured: {}",
                    if known.is_empty() {
                        "none ([[analytics.tariff]])".to_owned()
                    } else {
                        known.join(", ")
                    }
                ),
            ));
        };
        let t = &self.tariffs[i];
        let period = t.grid[date.month0() as usize][at.hour() as usize];
        // Compile checked that every period in the grid has a price.
        let price = t.prices[period.index()].unwrap_or(0.0);
        Ok((period, price, i))
    }

    fn name(&self, i: usize) -> &str {
        &self.tariffs[i].name
    }
}

fn validity(t: &CompiledTariff) -> String {
    let from = t.from.map_or("always".to_owned(), |d| d.to_string());
    let until = t.until.map_or("open end".to_owned(), |d| d.to_string());
    format!("[{from} .. {until})")
}

fn parse_date(
    tariff: &str,
    key: &str,
    text: &Option<String>,
) -> Result<Option<NaiveDate>, AnalyticsError> {
    let Some(text) = text else { return Ok(None) };
    NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
        .map(Some)
        .map_err(|e| {
            tariff_error(
                tariff,
                key,
                format!("{text:?} is not a date YYYY-MM-DD ({e})"),
            )
        })
}

fn compile_one(name: &str, t: &Tariff) -> Result<CompiledTariff, AnalyticsError> {
    let from = parse_date(name, "valid_from", &t.valid_from)?;
    let until = parse_date(name, "valid_until", &t.valid_until)?;
    if let (Some(f), Some(u)) = (from, until) {
        if u <= f {
            return Err(tariff_error(
                name,
                "valid_until",
                format!("{u} is not after valid_from {f}"),
            ));
        }
    }
    let mut prices = [None; 5];
    for (key, &price) in &t.prices {
        let Some(period) = TouPeriod::from_name(key) else {
            return Err(tariff_error(
                name,
                format!("prices.{key}"),
                format!("unknown period {key:?} (known: {})", known_periods()),
            ));
        };
        if !price.is_finite() || price < 0.0 {
            return Err(tariff_error(
                name,
                format!("prices.{key}"),
                format!("price {price} CNY/kWh: a price must be a finite number, not negative"),
            ));
        }
        prices[period.index()] = Some(price);
    }
    // Which row gave each (month, hour), 1-based rows.
    let mut given: [[Option<(usize, TouPeriod)>; 24]; 12] = [[None; 24]; 12];
    for (r, row) in t.rows.iter().enumerate() {
        let place = format!("row {}", r + 1);
        let Some(period) = TouPeriod::from_name(&row.period) else {
            return Err(tariff_error(
                name,
                place,
                format!(
                    "unknown period {:?} (known: {})",
                    row.period,
                    known_periods()
                ),
            ));
        };
        if prices[period.index()].is_none() {
            return Err(tariff_error(
                name,
                place,
                format!("period {} has no price in prices", period.name()),
            ));
        }
        let &[from_h, to_h] = row.hours.as_slice() else {
            return Err(tariff_error(
                name,
                place,
                format!(
                    "hours must be [from, to] (two numbers), got {:?}",
                    row.hours
                ),
            ));
        };
        if !(from_h < to_h && to_h <= 24) {
            return Err(tariff_error(
                name,
                place,
                format!("hours [{from_h}, {to_h}]: need 0 <= from < to <= 24 (to excluded)"),
            ));
        }
        if row.months.is_empty() {
            return Err(tariff_error(name, place, "months is empty"));
        }
        for &month in &row.months {
            if !(1..=12).contains(&month) {
                return Err(tariff_error(
                    name,
                    place,
                    format!("month {month} is not 1..=12"),
                ));
            }
            for hour in from_h..to_h {
                let cell = &mut given[month as usize - 1][hour as usize];
                if let Some((other, other_period)) = *cell {
                    return Err(tariff_error(
                        name,
                        format!("row {} (month {month}, hour {hour:02}:00)", r + 1),
                        format!(
                            "overlaps row {other}, which already made this hour {}; every hour needs exactly one period",
                            other_period.name()
                        ),
                    ));
                }
                *cell = Some((r + 1, period));
            }
        }
    }
    let mut grid = [[TouPeriod::Flat; 24]; 12];
    for (m, hours) in given.iter().enumerate() {
        for (h, cell) in hours.iter().enumerate() {
            match cell {
                Some((_, p)) => grid[m][h] = *p,
                None => {
                    let missing = hours.iter().filter(|c| c.is_none()).count();
                    return Err(tariff_error(
                        name,
                        format!("month {}, hour {h:02}:00", m + 1),
                        format!(
                            "no row gives this hour a period ({missing} hour(s) of month {} missing); every hour of every month needs exactly one",
                            m + 1
                        ),
                    ));
                }
            }
        }
    }
    Ok(CompiledTariff {
        name: name.to_owned(),
        from,
        until,
        grid,
        prices,
    })
}

/// Energy and cost of one period.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PeriodCost {
    /// The period.
    pub period: TouPeriod,
    /// "高峰 peak".
    pub label: &'static str,
    /// Covered energy in the period's hours, kWh.
    pub kwh: f64,
    /// Its cost, CNY.
    pub cost_cny: f64,
}

/// The cost of a centre or of the park.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScopeCost {
    /// Centre id, or the park's id.
    pub scope: String,
    /// The five periods, dearest first (zeros for periods without energy).
    pub periods: Vec<PeriodCost>,
    /// Covered facility energy, kWh (the sum of the periods).
    pub kwh: f64,
    /// Its cost, CNY.
    pub cost_cny: f64,
    /// cost / kWh, CNY/kWh; `None` without covered energy.
    pub average_price_cny_per_kwh: Option<f64>,
    /// Facility energy outside coverage (across gaps): not priced, kWh.
    pub uncovered_kwh: f64,
    /// The time every facility meter of the scope covers / the range's length.
    pub coverage: f64,
}

/// Cost by time-of-use period over a range.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CostReport {
    /// Start and end (excluded), Unix ns.
    pub window_ns: (i64, i64),
    /// Currency of every cost: "CNY".
    pub currency: &'static str,
    /// The tariffs that priced some energy, in the order first used.
    pub tariffs: Vec<String>,
    /// Per centre, in site order.
    pub centres: Vec<ScopeCost>,
    /// The park: the sum of the centres.
    pub park: ScopeCost,
}

/// Energy and cost per period, summed over meters.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CostTally {
    /// kWh per period (index: [`TouPeriod::ALL`] order).
    pub kwh: [f64; 5],
    /// CNY per period.
    pub cost: [f64; 5],
    /// Energy not priced (uncovered), kWh.
    pub uncovered_kwh: f64,
}

impl CostTally {
    fn add(&mut self, other: &CostTally) {
        for i in 0..5 {
            self.kwh[i] += other.kwh[i];
            self.cost[i] += other.cost[i];
        }
        self.uncovered_kwh += other.uncovered_kwh;
    }

    fn scope(&self, scope: &str, coverage: f64) -> ScopeCost {
        let kwh: f64 = self.kwh.iter().sum();
        let cost: f64 = self.cost.iter().sum();
        ScopeCost {
            scope: scope.to_owned(),
            periods: TouPeriod::ALL
                .iter()
                .map(|&p| PeriodCost {
                    period: p,
                    label: p.label(),
                    kwh: self.kwh[p.index()],
                    cost_cny: self.cost[p.index()],
                })
                .collect(),
            kwh,
            cost_cny: cost,
            average_price_cny_per_kwh: (kwh > 0.0).then(|| cost / kwh),
            uncovered_kwh: self.uncovered_kwh,
            coverage,
        }
    }
}

/// Prices one meter's covered energy within `window` (see the [module docs](self)),
/// adding to `tally`; returns the names of the tariffs that priced something.
pub fn price_series(
    series: &CounterSeries,
    table: &TariffTable,
    window: &Range<i64>,
    offset_ns: i64,
    tally: &mut CostTally,
) -> Result<Vec<String>, AnalyticsError> {
    let mut used: Vec<usize> = Vec::new();
    let mut cache: Option<(i64, (TouPeriod, f64, usize))> = None;
    for iv in &series.intervals {
        let (start, end) = (iv.start_ns.max(window.start), iv.end_ns.min(window.end));
        if start >= end {
            continue;
        }
        let length = (iv.end_ns - iv.start_ns) as f64;
        let kwh = match (iv.covered, iv.kwh) {
            (true, Some(kwh)) => kwh,
            (_, kwh) => {
                tally.uncovered_kwh += kwh.unwrap_or(0.0) * (end - start) as f64 / length;
                continue;
            }
        };
        let mut t = start;
        while t < end {
            let local_hour = t.saturating_add(offset_ns).div_euclid(NS_PER_HOUR) * NS_PER_HOUR;
            let piece_end = local_hour
                .saturating_add(NS_PER_HOUR - offset_ns)
                .min(end)
                .max(t + 1);
            let found = match cache {
                Some((hour, found)) if hour == local_hour => found,
                _ => {
                    let found = table.lookup(local_hour)?;
                    cache = Some((local_hour, found));
                    found
                }
            };
            let (period, price, tariff) = found;
            let share = kwh * (piece_end - t) as f64 / length;
            tally.kwh[period.index()] += share;
            tally.cost[period.index()] += share * price;
            if !used.contains(&tariff) {
                used.push(tariff);
            }
            t = piece_end;
        }
    }
    Ok(used.iter().map(|&i| table.name(i).to_owned()).collect())
}

/// Cost by time-of-use period of every centre and of the park over `window` (Unix ns,
/// end excluded), from the facility meters' counters in the store and the configured
/// tariffs. See the [module docs](self).
pub async fn tariff_cost(
    store: &Store,
    inventory: &Inventory,
    config: &AnalyticsConfig,
    window: Range<i64>,
) -> Result<CostReport, AnalyticsError> {
    config.validate()?;
    check_window(&window)?;
    let table = TariffTable::compile(&config.tariffs)?;
    if table.is_empty() {
        return Err(tariff_error(
            "(none)",
            "[[analytics.tariff]]",
            "no tariff is configured: cost needs a table of months x hours -> period and period -> price",
        ));
    }
    let mut centres: Vec<(&str, Vec<&MeterRef>)> = Vec::new();
    for c in &inventory.centres {
        check_roles(inventory, c)?;
        let facility = need_roles(inventory, c, &config.pue.facility_roles, "facility energy")?;
        centres.push((c.as_str(), facility));
    }
    let wanted: Vec<&MeterRef> = centres
        .iter()
        .flat_map(|(_, m)| m.iter().copied())
        .collect();
    let series = read_counters(store, &wanted, &window, config).await?;
    cost_report(inventory, &table, &centres, &series, window)
}

fn cost_report(
    inventory: &Inventory,
    table: &TariffTable,
    centres: &[(&str, Vec<&MeterRef>)],
    series: &std::collections::HashMap<String, CounterSeries>,
    window: Range<i64>,
) -> Result<CostReport, AnalyticsError> {
    let offset_ns = i64::from(inventory.utc_offset_hours) * NS_PER_HOUR;
    let empty = CounterSeries::default();
    let length = (window.end - window.start) as f64;
    let mut tariffs: Vec<String> = Vec::new();
    let mut park = CostTally::default();
    let mut park_spans = vec![window.clone()];
    let mut scopes = Vec::new();
    for (centre, meters) in centres {
        let mut tally = CostTally::default();
        let mut spans = vec![window.clone()];
        for m in meters {
            let s = series.get(&m.id).unwrap_or(&empty);
            for name in price_series(s, table, &window, offset_ns, &mut tally)? {
                if !tariffs.contains(&name) {
                    tariffs.push(name);
                }
            }
            spans = intersect_spans(&spans, &s.covered_spans(&window));
        }
        park.add(&tally);
        park_spans = intersect_spans(&park_spans, &spans);
        scopes.push(tally.scope(centre, spans_length(&spans) as f64 / length));
    }
    let park = park.scope(&inventory.park, spans_length(&park_spans) as f64 / length);
    Ok(CostReport {
        window_ns: (window.start, window.end),
        currency: "CNY",
        tariffs,
        centres: scopes,
        park,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::counters::CounterInterval;

    /// Valley 0-8, flat 8-10, deep valley 10-14, flat 14-17, peak 17-19,
    /// critical peak 19-21, peak 21-23, valley 23-24, every month.
    fn rows() -> Vec<TariffRow> {
        let all: Vec<u32> = (1..=12).collect();
        [
            (0, 8, "valley"),
            (8, 10, "flat"),
            (10, 14, "deep_valley"),
            (14, 17, "flat"),
            (17, 19, "peak"),
            (19, 21, "critical_peak"),
            (21, 23, "peak"),
            (23, 24, "valley"),
        ]
        .iter()
        .map(|&(a, b, p)| TariffRow {
            months: all.clone(),
            hours: vec![a, b],
            period: p.into(),
        })
        .collect()
    }

    fn tariff() -> Tariff {
        Tariff {
            name: "test".into(),
            valid_from: None,
            valid_until: None,
            prices: [
                ("critical_peak", 1.0),
                ("peak", 0.9),
                ("flat", 0.6),
                ("valley", 0.3),
                ("deep_valley", 0.2),
            ]
            .iter()
            .map(|&(k, v)| (k.to_owned(), v))
            .collect(),
            rows: rows(),
        }
    }

    fn message(t: Tariff) -> String {
        TariffTable::compile(&[t]).unwrap_err().to_string()
    }

    #[test]
    fn an_interval_across_an_hour_boundary_is_split_between_periods() {
        let table = TariffTable::compile(&[tariff()]).unwrap();
        // 09:30-10:30 local (offset 0 here), 10 kWh: 5 flat (0.6), 5 deep valley (0.2).
        let series = CounterSeries {
            intervals: vec![CounterInterval {
                start_ns: 9 * NS_PER_HOUR + NS_PER_HOUR / 2,
                end_ns: 10 * NS_PER_HOUR + NS_PER_HOUR / 2,
                kwh: Some(10.0),
                covered: true,
            }],
            events: Vec::new(),
        };
        let mut tally = CostTally::default();
        let used = price_series(&series, &table, &(0..24 * NS_PER_HOUR), 0, &mut tally).unwrap();
        assert_eq!(used, ["test"]);
        assert_eq!(tally.kwh[TouPeriod::Flat.index()], 5.0);
        assert_eq!(tally.kwh[TouPeriod::DeepValley.index()], 5.0);
        assert!((tally.cost.iter().sum::<f64>() - (3.0 + 1.0)).abs() < 1e-12);
        // The same interval with UTC+8: 17:30-18:30 local, all peak.
        let mut tally = CostTally::default();
        price_series(
            &series,
            &table,
            &(0..24 * NS_PER_HOUR),
            8 * NS_PER_HOUR,
            &mut tally,
        )
        .unwrap();
        assert_eq!(tally.kwh[TouPeriod::Peak.index()], 10.0);
    }

    #[test]
    fn overlapping_rows_name_the_row_month_and_hour() {
        let mut t = tariff();
        t.rows.push(TariffRow {
            months: vec![7],
            hours: vec![20, 22],
            period: "critical_peak".into(),
        });
        let text = message(t);
        assert!(
            text.contains("row 9 (month 7, hour 20:00)") && text.contains("overlaps row 6"),
            "{text}"
        );
    }

    #[test]
    fn a_missing_hour_is_named() {
        let mut t = tariff();
        t.rows[7].months.retain(|&m| m != 3); // 23-24 valley, not in March
        let text = message(t);
        assert!(text.contains("month 3, hour 23:00"), "{text}");
    }

    #[test]
    fn unknown_periods_and_bad_prices_are_refused() {
        let mut t = tariff();
        t.rows[0].period = "night".into();
        let text = message(t);
        assert!(
            text.contains("row 1") && text.contains("\"night\""),
            "{text}"
        );

        let mut t = tariff();
        t.prices.insert("peak".into(), -0.1);
        let text = message(t);
        assert!(
            text.contains("prices.peak") && text.contains("-0.1"),
            "{text}"
        );

        let mut t = tariff();
        t.prices.insert("peek".into(), 0.9);
        assert!(message(t).contains("prices.peek"));

        let mut t = tariff();
        t.prices.remove("deep_valley");
        let text = message(t);
        assert!(
            text.contains("row 3") && text.contains("no price"),
            "{text}"
        );

        let mut t = tariff();
        t.rows[0].hours = vec![8, 0];
        assert!(message(t).contains("row 1"));
        let mut t = tariff();
        t.rows[0].months = vec![13];
        assert!(message(t).contains("month 13"));
    }

    #[test]
    fn overlapping_validity_is_refused_and_disjoint_validity_accepted() {
        let mut a = tariff();
        a.name = "2025".into();
        a.valid_until = Some("2026-01-01".into());
        let mut b = tariff();
        b.name = "2026".into();
        b.valid_from = Some("2025-12-31".into());
        let text = TariffTable::compile(&[a.clone(), b.clone()])
            .unwrap_err()
            .to_string();
        assert!(
            text.contains("\"2026\"") && text.contains("overlaps"),
            "{text}"
        );
        b.valid_from = Some("2026-01-01".into());
        let table = TariffTable::compile(&[a, b]).unwrap();
        let jan1 = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
        let ns = jan1
            .and_hms_opt(0, 0, 0)
            .unwrap()
            .and_utc()
            .timestamp_nanos_opt()
            .unwrap();
        assert_eq!(table.name(table.lookup(ns).unwrap().2), "2026");
        assert_eq!(
            table.name(table.lookup(ns - NS_PER_HOUR).unwrap().2),
            "2025"
        );

        let mut c = tariff();
        c.valid_from = Some("2026-02-30".into());
        assert!(message(c).contains("valid_from"));
    }

    #[test]
    fn a_date_without_tariff_is_an_error_naming_the_hour() {
        let mut t = tariff();
        t.valid_from = Some("1970-01-02".into());
        let table = TariffTable::compile(&[t]).unwrap();
        let series = CounterSeries {
            intervals: vec![CounterInterval {
                start_ns: 0,
                end_ns: NS_PER_HOUR,
                kwh: Some(1.0),
                covered: true,
            }],
            events: Vec::new(),
        };
        let err = price_series(
            &series,
            &table,
            &(0..NS_PER_HOUR),
            0,
            &mut CostTally::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("1970-01-01 00:00 (local)"), "{err}");
    }
}
