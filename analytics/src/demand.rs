//! Peak demand and instantaneous (category 0) PUE. In the flow: peak demand is made
//! from the same cleaned kWh counters as the energy PUE ([`crate::counters`]), the
//! instantaneous PUE from the meters' kW readings in the store; both feed the monthly
//! energy report ("peak demand and when") and, later, the alert engine.
//!
//! # Peak demand
//!
//! Demand is the average power over a demand interval (default 15 minutes, the usual
//! billing interval and the SDM630's own demand period): the facility meters' energy
//! in the interval / the interval's hours. The intervals are blocks of the park's
//! local clock (00:00, 00:15, ...; the configured length must divide a day). A block
//! counts only if **every** facility meter of the scope covers all of it with counter
//! intervals no longer than the block: a block inside a gap, or read hourly (where 15
//! minutes of an hour's energy would be an average, not a demand), is not measured,
//! and `coverage` (measured blocks / blocks) says so. Blocks cut by the range's edges
//! are left out. The peak is the highest measured block, with its start in local time;
//! no measured block gives no peak (`None`) with the reason. The park's demand in a
//! block is the sum of its centres' (measured in every centre).
//!
//! # Instantaneous PUE (category 0)
//!
//! Category 0 takes IT power in kW at the UPS output: instantaneous, the least reliable
//! category, never a substitute for the energy PUE. The site's energy meters (both
//! meter profiles) report total active power (`power_total_kw`, configurable), so the
//! ratio is taken from those readings, not from counter differences: at each reading
//! time of the scope's first UPS output meter, every facility meter and every other
//! UPS output meter must have a reading within `instant_tolerance` (default 5 s: meters
//! polled in the same cycle); facility kW is their sum, IT kW likewise. Instants where a
//! meter has no reading that close are skipped (counted). The report gives the
//! instantaneous PUE at the instant of peak IT power (the category 0 value), and the
//! lowest, highest and mean instantaneous PUE of the range. NaN, infinite and negative
//! kW readings are dropped. A centre without a UPS output meter gets no category 0
//! value, with the reason (its peak demand is still measured).

use std::collections::HashMap;
use std::ops::Range;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tidewatch_devices::MeterRole;
use tidewatch_storage::store::Store;

use crate::config::AnalyticsConfig;
use crate::counters::{CounterSeries, Reading};
use crate::error::AnalyticsError;
use crate::inventory::{Inventory, MeterRef};
use crate::pue::{
    check_roles, check_window, local_text, need_roles, read_counters, read_readings, Source,
};

const NS_PER_HOUR: i64 = 3_600_000_000_000;
const NS_PER_DAY: i64 = 24 * NS_PER_HOUR;

/// Peak demand and instantaneous PUE settings (`[analytics.demand]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DemandConfig {
    /// The demand interval ("15m"): must divide a day, at least one minute.
    #[serde(default = "default_interval", with = "crate::config::duration_text")]
    pub interval: Duration,
    /// The meters' total active power field, kW (instantaneous PUE).
    #[serde(default = "default_power_field")]
    pub power_field: String,
    /// How far apart two meters' kW readings may be and still be "the same instant"
    /// ("5s").
    #[serde(
        default = "default_instant_tolerance",
        with = "crate::config::duration_text"
    )]
    pub instant_tolerance: Duration,
}

impl Default for DemandConfig {
    fn default() -> Self {
        DemandConfig {
            interval: default_interval(),
            power_field: default_power_field(),
            instant_tolerance: default_instant_tolerance(),
        }
    }
}

/// Default demand interval: 15 minutes.
pub fn default_interval() -> Duration {
    Duration::from_secs(15 * 60)
}

/// Default power field: `power_total_kw` (the energy meter profiles' total active power).
pub fn default_power_field() -> String {
    "power_total_kw".into()
}

/// Default instant tolerance: 5 seconds.
pub fn default_instant_tolerance() -> Duration {
    Duration::from_secs(5)
}

impl DemandConfig {
    /// Checks the interval divides a day and is at least a minute.
    pub fn validate(&self) -> Result<(), AnalyticsError> {
        let ns = self.interval.as_nanos();
        if ns < 60_000_000_000 || (NS_PER_DAY as u128) % ns != 0 {
            return Err(AnalyticsError::Config(format!(
                "demand.interval must be at least 1 minute and divide a day (15m, 30m, 1h, ...), got {}",
                tidewatch_devices::format_duration(self.interval)
            )));
        }
        if self.power_field.trim().is_empty() {
            return Err(AnalyticsError::Config(
                "demand.power_field must name a field".into(),
            ));
        }
        Ok(())
    }

    fn interval_ns(&self) -> i64 {
        i64::try_from(self.interval.as_nanos()).unwrap_or(NS_PER_DAY)
    }

    fn tolerance_ns(&self) -> i64 {
        i64::try_from(self.instant_tolerance.as_nanos()).unwrap_or(i64::MAX)
    }
}

/// The peak demand of a centre or of the park.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PeakDemand {
    /// Centre id, or the park's id.
    pub scope: String,
    /// The highest demand, kW; `None` when no block is measured (see `reason`).
    pub peak_kw: Option<f64>,
    /// Its block, Unix ns (end excluded).
    pub peak_window_ns: Option<(i64, i64)>,
    /// Its block's start as the local clock shows it, "2026-02-01 10:15".
    pub peak_local: Option<String>,
    /// Why there is no peak.
    pub reason: Option<String>,
    /// Whole demand blocks inside the range.
    pub blocks: usize,
    /// Blocks measured (covered by every facility meter, with short enough intervals).
    pub measured_blocks: usize,
    /// measured / blocks (0 without blocks).
    pub coverage: f64,
}

/// Instantaneous PUE (category 0) of a centre or of the park.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InstantPue {
    /// Centre id, or the park's id.
    pub scope: String,
    /// How a report states it.
    pub category_text: &'static str,
    /// Instants with a reading from every meter.
    pub instants: usize,
    /// Instants skipped: some meter had no reading within the tolerance.
    pub skipped: usize,
    /// The highest IT power (UPS output), kW.
    pub peak_it_kw: Option<f64>,
    /// Facility power at that instant, kW.
    pub facility_kw_at_peak: Option<f64>,
    /// facility kW / IT kW at the instant of peak IT power: the category 0 PUE.
    pub pue_at_peak: Option<f64>,
    /// When, Unix ns, and in local time.
    pub peak_time_ns: Option<i64>,
    /// The same in local time, "2026-02-01 10:15".
    pub peak_local: Option<String>,
    /// Lowest, highest and mean instantaneous PUE over the range.
    pub min_pue: Option<f64>,
    /// Highest.
    pub max_pue: Option<f64>,
    /// Mean of the instants' ratios (a trend, not an energy PUE).
    pub mean_pue: Option<f64>,
    /// Why there is no value.
    pub reason: Option<String>,
}

/// Peak demand per centre and for the park, and instantaneous PUE.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DemandReport {
    /// Start and end (excluded), Unix ns.
    pub window_ns: (i64, i64),
    /// The demand interval, minutes.
    pub interval_minutes: f64,
    /// Peak demand per centre, in site order.
    pub centres: Vec<PeakDemand>,
    /// Peak demand of the park (the sum of the centres, block by block).
    pub park: PeakDemand,
    /// Instantaneous PUE per centre, in site order.
    pub instant_centres: Vec<InstantPue>,
    /// Instantaneous PUE of the park.
    pub instant_park: InstantPue,
}

/// The demand blocks of a window: whole blocks of the local clock inside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Blocks {
    /// Start of the first block, Unix ns.
    pub first_ns: i64,
    /// Block length, ns.
    pub length_ns: i64,
    /// Number of whole blocks.
    pub count: usize,
}

impl Blocks {
    /// The whole blocks of `length_ns` (aligned on the local clock, UTC + `offset_ns`)
    /// inside `window`.
    pub fn new(window: &Range<i64>, length_ns: i64, offset_ns: i64) -> Blocks {
        // Saturating: a window at the ends of the i64 range gives no blocks, not a panic.
        let local = window.start.saturating_add(offset_ns);
        let first_ns = local
            .saturating_add(length_ns - 1)
            .div_euclid(length_ns)
            .saturating_mul(length_ns)
            .saturating_sub(offset_ns);
        let count = if window.end > first_ns && first_ns > i64::MIN + length_ns {
            ((window.end - first_ns) / length_ns) as usize
        } else {
            0
        };
        Blocks {
            first_ns,
            length_ns,
            count,
        }
    }

    fn window(&self, k: usize) -> Range<i64> {
        let start = self.first_ns + k as i64 * self.length_ns;
        start..start + self.length_ns
    }
}

/// The energy of each block from one meter's counter: `Some(kWh)` where the block is
/// wholly covered by counter intervals no longer than a block, `None` elsewhere.
pub fn block_energy(series: &CounterSeries, blocks: &Blocks) -> Vec<Option<f64>> {
    let n = blocks.count;
    let mut kwh = vec![0.0; n];
    let mut covered = vec![0i64; n];
    let mut resolved = vec![true; n];
    if n == 0 {
        return Vec::new();
    }
    let end_all = blocks.first_ns + n as i64 * blocks.length_ns;
    for iv in &series.intervals {
        let (start, end) = (iv.start_ns.max(blocks.first_ns), iv.end_ns.min(end_all));
        if start >= end {
            continue;
        }
        let length = iv.end_ns - iv.start_ns;
        let first = ((start - blocks.first_ns) / blocks.length_ns) as usize;
        let last = ((end - 1 - blocks.first_ns) / blocks.length_ns) as usize;
        for k in first..=last.min(n - 1) {
            let w = blocks.window(k);
            let overlap = end.min(w.end) - start.max(w.start);
            if overlap <= 0 {
                continue;
            }
            match (iv.covered, iv.kwh) {
                (true, Some(e)) if length <= blocks.length_ns => {
                    kwh[k] += e * overlap as f64 / length as f64;
                    covered[k] += overlap;
                }
                _ => resolved[k] = false,
            }
        }
    }
    (0..n)
        .map(|k| (resolved[k] && covered[k] == blocks.length_ns).then_some(kwh[k]))
        .collect()
}

/// Sums meters' block energies; a block is measured only where every meter measured it.
fn sum_blocks<'a>(
    parts: impl IntoIterator<Item = &'a Vec<Option<f64>>>,
    n: usize,
) -> Vec<Option<f64>> {
    let mut out = vec![Some(0.0); n];
    let mut any = false;
    for part in parts {
        any = true;
        for (o, p) in out.iter_mut().zip(part) {
            *o = match (*o, p) {
                (Some(a), Some(b)) => Some(a + b),
                _ => None,
            };
        }
    }
    if !any {
        return vec![None; n];
    }
    out
}

fn peak(scope: &str, energy: &[Option<f64>], blocks: &Blocks, offset_ns: i64) -> PeakDemand {
    let hours = blocks.length_ns as f64 / NS_PER_HOUR as f64;
    let measured = energy.iter().filter(|e| e.is_some()).count();
    let best = energy
        .iter()
        .enumerate()
        .filter_map(|(k, e)| e.map(|e| (k, e)))
        .fold(None, |best: Option<(usize, f64)>, (k, e)| match best {
            Some((_, b)) if b >= e => best,
            _ => Some((k, e)),
        });
    let reason = peak_reason(best.is_some(), blocks.count);
    PeakDemand {
        scope: scope.to_owned(),
        peak_kw: best.map(|(_, e)| e / hours),
        peak_window_ns: best.map(|(k, _)| {
            let w = blocks.window(k);
            (w.start, w.end)
        }),
        peak_local: best.map(|(k, _)| local_text(blocks.window(k).start, offset_ns)),
        reason,
        blocks: blocks.count,
        measured_blocks: measured,
        coverage: if blocks.count > 0 {
            measured as f64 / blocks.count as f64
        } else {
            0.0
        },
    }
}

/// Why a peak demand has no value (`None` when one was `found`).
pub(crate) fn peak_reason(found: bool, blocks: usize) -> Option<String> {
    match (found, blocks) {
        (true, _) => None,
        (false, 0) => Some("the range holds no whole demand interval".to_owned()),
        (false, _) => Some(
            "no demand interval is measured: every one has a gap, or readings further apart than the interval, in some facility meter"
                .to_owned(),
        ),
    }
}

/// Peak demand from cleaned counters: per centre (its facility meters) and the park.
pub fn peak_demand(
    park: &str,
    centres: &[(&str, Vec<&MeterRef>)],
    series: &HashMap<String, CounterSeries>,
    blocks: &Blocks,
    offset_ns: i64,
) -> (Vec<PeakDemand>, PeakDemand) {
    let empty = CounterSeries::default();
    let mut per_centre = Vec::new();
    let mut sums = Vec::new();
    for (centre, meters) in centres {
        let parts: Vec<Vec<Option<f64>>> = meters
            .iter()
            .map(|m| block_energy(series.get(&m.id).unwrap_or(&empty), blocks))
            .collect();
        let sum = sum_blocks(&parts, blocks.count);
        per_centre.push(peak(centre, &sum, blocks, offset_ns));
        sums.push(sum);
    }
    let park_sum = sum_blocks(&sums, blocks.count);
    (per_centre, peak(park, &park_sum, blocks, offset_ns))
}

/// The reading of `readings` (sorted by time) nearest to `t` within `tolerance_ns`.
fn nearest(readings: &[Reading], t: i64, tolerance_ns: i64) -> Option<f64> {
    let i = readings.partition_point(|r| r.time_ns < t);
    [i.checked_sub(1), Some(i)]
        .into_iter()
        .flatten()
        .filter_map(|j| readings.get(j))
        .filter(|r| (r.time_ns - t).abs() <= tolerance_ns)
        .min_by_key(|r| (r.time_ns - t).abs())
        .map(|r| r.kwh)
}

/// Instantaneous PUE from kW readings (the [`Reading::kwh`] field holds kW here):
/// `facility` and `it` are meter ids; see the [module docs](self).
pub fn instant_pue(
    scope: &str,
    facility: &[&str],
    it: &[&str],
    power: &HashMap<String, Vec<Reading>>,
    window: &Range<i64>,
    tolerance_ns: i64,
    offset_ns: i64,
) -> InstantPue {
    let none: Vec<Reading> = Vec::new();
    let get = |id: &str| power.get(id).unwrap_or(&none);
    let mut out = InstantPue {
        scope: scope.to_owned(),
        category_text: "PUE category 0 (IT power: kW at the UPS output, instantaneous)",
        instants: 0,
        skipped: 0,
        peak_it_kw: None,
        facility_kw_at_peak: None,
        pue_at_peak: None,
        peak_time_ns: None,
        peak_local: None,
        min_pue: None,
        max_pue: None,
        mean_pue: None,
        reason: None,
    };
    let Some(&reference) = it.first() else {
        out.reason = Some("no IT meter".into());
        return out;
    };
    let mut sum_pue = 0.0;
    let mut ratios = 0usize;
    for r in get(reference)
        .iter()
        .filter(|r| r.time_ns >= window.start && r.time_ns < window.end)
    {
        let t = r.time_ns;
        let total = |ids: &[&str]| -> Option<f64> {
            ids.iter()
                .map(|id| nearest(get(id), t, tolerance_ns))
                .sum::<Option<f64>>()
        };
        let (Some(f), Some(i)) = (total(facility), total(it)) else {
            out.skipped += 1;
            continue;
        };
        out.instants += 1;
        if out.peak_it_kw.is_none_or(|p| i > p) {
            out.peak_it_kw = Some(i);
            out.facility_kw_at_peak = Some(f);
            out.peak_time_ns = Some(t);
        }
        if i > 0.0 {
            let pue = f / i;
            out.min_pue = Some(out.min_pue.map_or(pue, |m| m.min(pue)));
            out.max_pue = Some(out.max_pue.map_or(pue, |m| m.max(pue)));
            sum_pue += pue;
            ratios += 1;
        }
    }
    if let (Some(i), Some(f)) = (out.peak_it_kw, out.facility_kw_at_peak) {
        out.pue_at_peak = (i > 0.0).then(|| f / i);
    }
    out.peak_local = out.peak_time_ns.map(|t| local_text(t, offset_ns));
    out.mean_pue = (ratios > 0).then(|| sum_pue / ratios as f64);
    out.reason = instant_reason(&out);
    out
}

/// Why an instantaneous PUE has no value, from its counts (`None` when it has one).
pub(crate) fn instant_reason(p: &InstantPue) -> Option<String> {
    if p.instants == 0 {
        Some(if p.skipped == 0 {
            "no kW readings of the UPS output meters in the range".into()
        } else {
            format!(
                "{} instants, none with a reading of every facility and UPS output meter within the tolerance",
                p.skipped
            )
        })
    } else if p.pue_at_peak.is_none() {
        Some("IT power was 0 at every instant".into())
    } else {
        None
    }
}

/// Peak demand per centre and for the park, and instantaneous PUE, over `window`
/// (Unix ns, end excluded), read from the store. See the [module docs](self).
pub async fn demand(
    store: &Store,
    inventory: &Inventory,
    config: &AnalyticsConfig,
    window: Range<i64>,
) -> Result<DemandReport, AnalyticsError> {
    config.validate()?;
    check_window(&window)?;
    let mut facility: Vec<(&str, Vec<&MeterRef>)> = Vec::new();
    let mut ups: Vec<Vec<&MeterRef>> = Vec::new();
    for c in &inventory.centres {
        check_roles(inventory, c)?;
        facility.push((
            c.as_str(),
            need_roles(inventory, c, &config.pue.facility_roles, "facility energy")?,
        ));
        // No UPS output meter: no category 0 PUE there (said in its reason), but the
        // peak demand is still measured.
        ups.push(inventory.with_roles(c, &[MeterRole::UpsOutput]));
    }
    let offset_ns = i64::from(inventory.utc_offset_hours) * NS_PER_HOUR;
    let wanted: Vec<&MeterRef> = facility
        .iter()
        .flat_map(|(_, m)| m.iter().copied())
        .collect();
    let series = read_counters(store, &wanted, &window, config).await?;
    let blocks = Blocks::new(&window, config.demand.interval_ns(), offset_ns);
    let (centres, park) = peak_demand(&inventory.park, &facility, &series, &blocks, offset_ns);

    let field = config.demand.power_field.as_str();
    let sources: Vec<Source> = facility
        .iter()
        .flat_map(|(_, m)| m.iter())
        .chain(ups.iter().flatten())
        .map(|m| Source {
            id: &m.id,
            measurement: &m.measurement,
            field,
            counter: m.counter,
        })
        .collect();
    let tolerance = config.demand.tolerance_ns();
    let mut power = read_readings(store, &sources, &window).await?;
    for readings in power.values_mut() {
        readings.retain(|r| r.kwh.is_finite() && r.kwh >= 0.0);
        readings.sort_by_key(|r| r.time_ns);
    }
    let ids = |ms: &[&MeterRef]| -> Vec<String> { ms.iter().map(|m| m.id.clone()).collect() };
    let mut instant_centres = Vec::new();
    let (mut all_f, mut all_i, mut unmetered) = (Vec::new(), Vec::new(), Vec::new());
    for ((centre, f), i) in facility.iter().zip(&ups) {
        let (f, i) = (ids(f), ids(i));
        let fr: Vec<&str> = f.iter().map(String::as_str).collect();
        let ir: Vec<&str> = i.iter().map(String::as_str).collect();
        let mut instant = instant_pue(centre, &fr, &ir, &power, &window, tolerance, offset_ns);
        if ir.is_empty() {
            instant.reason = Some(format!(
                "centre {centre:?} has no meter with role ups_output (category 0 takes kW at the UPS output); its meters: {}",
                inventory.describe_centre(centre)
            ));
            unmetered.push(centre.to_string());
        }
        instant_centres.push(instant);
        all_f.extend(f);
        all_i.extend(i);
    }
    let fr: Vec<&str> = all_f.iter().map(String::as_str).collect();
    let ir: Vec<&str> = if unmetered.is_empty() {
        all_i.iter().map(String::as_str).collect()
    } else {
        Vec::new()
    };
    let mut instant_park = instant_pue(
        &inventory.park,
        &fr,
        &ir,
        &power,
        &window,
        tolerance,
        offset_ns,
    );
    if !unmetered.is_empty() {
        instant_park.reason = Some(format!(
            "no meter with role ups_output in {}: no category 0 PUE for the park",
            unmetered.join(", ")
        ));
    }
    Ok(DemandReport {
        window_ns: (window.start, window.end),
        interval_minutes: config.demand.interval.as_secs_f64() / 60.0,
        centres,
        park,
        instant_centres,
        instant_park,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::counters::{CounterRules, CounterSpec};

    const M: i64 = 60_000_000_000;

    fn series(step_min: i64, kw: impl Fn(i64) -> f64, until_min: i64) -> CounterSeries {
        let mut kwh = 0.0;
        let mut readings = vec![Reading { time_ns: 0, kwh }];
        let mut t = 0;
        while t < until_min {
            kwh += kw(t) * step_min as f64 / 60.0;
            t += step_min;
            readings.push(Reading {
                time_ns: t * M,
                kwh,
            });
        }
        let rules = CounterRules {
            max_sample_gap: Duration::from_secs(3600),
            ..CounterRules::default()
        };
        CounterSeries::from_readings(&readings, &CounterSpec::default(), &rules)
    }

    #[test]
    fn blocks_align_on_the_local_clock() {
        // A window from 00:07 UTC = 08:07 local: the first block is 08:15 local.
        let b = Blocks::new(&(7 * M..67 * M), 15 * M, 8 * 60 * M);
        assert_eq!((b.first_ns, b.count), (15 * M, 3));
    }

    #[test]
    fn peak_of_five_minute_readings() {
        // 100 kW, 400 kW from 00:20 to 00:35.
        let s = series(5, |t| if (20..35).contains(&t) { 400.0 } else { 100.0 }, 60);
        let blocks = Blocks::new(&(0..60 * M), 15 * M, 0);
        let e = block_energy(&s, &blocks);
        // Block 00:15-00:30: 5 min x 100 + 10 min x 400 = 8.333 + 66.667 kWh = 75 kWh.
        let kw: Vec<f64> = e.iter().map(|e| e.unwrap() * 4.0).collect();
        assert!((kw[1] - 300.0).abs() < 1e-9, "{kw:?}");
        assert!((kw[2] - 200.0).abs() < 1e-9, "{kw:?}");
        let meter = MeterRef {
            id: "m".into(),
            centre: "c".into(),
            zone: None,
            role: Some(MeterRole::Incoming),
            kind: tidewatch_devices::DeviceKind::EnergyMeter,
            measurement: "energy_meter".into(),
            field: "import_kwh".into(),
            counter: CounterSpec::default(),
        };
        let map: HashMap<String, CounterSeries> = [("m".to_owned(), s)].into();
        let (c, p) = peak_demand("park", &[("c", vec![&meter])], &map, &blocks, 0);
        assert!((c[0].peak_kw.unwrap() - 300.0).abs() < 1e-9);
        assert_eq!(c[0].peak_window_ns, Some((15 * M, 30 * M)));
        assert_eq!(p.peak_kw, c[0].peak_kw);
        assert_eq!(c[0].measured_blocks, 4);
    }

    #[test]
    fn hourly_readings_measure_no_fifteen_minute_demand() {
        let s = series(60, |_| 100.0, 180);
        let blocks = Blocks::new(&(0..180 * M), 15 * M, 0);
        let e = block_energy(&s, &blocks);
        assert_eq!(e.len(), 12);
        assert!(e.iter().all(Option::is_none));
        let p = peak("c", &e, &blocks, 0);
        assert_eq!(p.peak_kw, None);
        assert_eq!(p.coverage, 0.0);
        assert!(p.reason.unwrap().contains("further apart"));
        // With 1 h demand intervals the hourly readings do measure it.
        let blocks = Blocks::new(&(0..180 * M), 60 * M, 0);
        let e = block_energy(&s, &blocks);
        assert_eq!(e, vec![Some(100.0); 3]);
    }

    #[test]
    fn instants_pair_readings_within_the_tolerance() {
        let s = 1_000_000_000;
        let r = |t: i64, v: f64| Reading {
            time_ns: t * s,
            kwh: v,
        };
        let power: HashMap<String, Vec<Reading>> = [
            (
                "it".to_owned(),
                vec![r(0, 100.0), r(10, 200.0), r(20, 150.0)],
            ),
            // 2 s late, and nothing near t = 20.
            (
                "fac".to_owned(),
                vec![r(2, 130.0), r(12, 250.0), r(40, 1.0)],
            ),
        ]
        .into();
        let p = instant_pue("c", &["fac"], &["it"], &power, &(0..60 * s), 5 * s, 0);
        assert_eq!((p.instants, p.skipped), (2, 1));
        assert_eq!(p.peak_it_kw, Some(200.0));
        assert_eq!(p.pue_at_peak, Some(1.25));
        assert_eq!((p.min_pue, p.max_pue), (Some(1.25), Some(1.3)));
        let none = instant_pue(
            "c",
            &["fac"],
            &["it"],
            &HashMap::new(),
            &(0..60 * s),
            5 * s,
            0,
        );
        assert!(none.pue_at_peak.is_none() && none.reason.is_some());
    }

    #[test]
    fn intervals_that_do_not_divide_a_day_are_refused() {
        let mut c = DemandConfig::default();
        c.validate().unwrap();
        c.interval = Duration::from_secs(7 * 60);
        assert!(c.validate().is_err());
        c.interval = Duration::from_secs(30);
        assert!(c.validate().is_err());
    }
}
