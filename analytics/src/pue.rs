//! Energy PUE over a time range, per centre and for the park, with its daily and
//! monthly trend, pPUE per micro-module, the energy split (IT / cooling / power losses /
//! other, CLF, PLF) and the comparison with the GB 40879 grades and policy targets.
//!
//! # How the numbers are made
//!
//! - Energy comes from the kWh counters ([`crate::counters`]), never from kW snapshots.
//! - **Same window for numerator and denominator.** A PUE is computed over the time
//!   every meter it uses covers: the intersection of the facility and IT meters'
//!   covered spans. A gap in one meter removes that time from both sides, so a gap
//!   never shows as a better or worse PUE; it shows as lower **coverage** (that common
//!   covered time over the requested time). No data at all gives coverage 0 and no PUE
//!   (`None`), never NaN.
//! - The **category** follows from where IT energy is metered
//!   ([`ItSource`](crate::config::ItSource)): UPS output meters give category 1; zone
//!   IT feeds and rack PDUs give category 2.
//! - The **split** is computed over the time all of the centre's facility, IT, cooling
//!   and other meters cover (its own coverage): cooling and other are metered; power
//!   losses (transformers, UPS, distribution) are the rest, facility - IT - cooling -
//!   other. CLF = cooling / IT, PLF = power losses / IT, so PUE = 1 + CLF + PLF +
//!   other / IT over that time.
//! - **pPUE** of a micro-module: (its IT feed + its own cooling) / its IT feed, from the
//!   zone's `zone_it` and `zone_cooling` meters, over their common covered time.
//! - Days and months are the park's local calendar (UTC + `utc_offset_hours`); a
//!   window that starts or ends inside a day gives a partial first or last day. Daily
//!   and monthly values are trends; the reference period of PUE is a year.

use std::collections::HashMap;
use std::ops::Range;

use chrono::{DateTime, Datelike, NaiveDate};
use polars::prelude::*;
use serde::Serialize;
use tidewatch_devices::{DeviceKind, MeterRole};
use tidewatch_storage::store::{Scan, Store};

use crate::config::{AnalyticsConfig, ItSource, PueCategory, PueConfig};
use crate::counters::{
    intersect_spans, spans_length, CounterRules, CounterSeries, CounterSpec, MeterEnergy, Reading,
};
use crate::error::AnalyticsError;
use crate::inventory::{role_name, Inventory, MeterRef};

const NS_PER_HOUR: i64 = 3_600_000_000_000;

/// Above this many meters in one scan, read the whole measurement for the range and
/// keep the wanted devices, instead of a tag filter with one alternative per device.
const MAX_DEVICE_FILTER: usize = 64;

/// PUE and its energies over one period.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PeriodPue {
    /// "2026-01" (month), "2026-01-05" (day) or "range", in local time.
    pub label: String,
    /// Start and end (excluded), Unix ns.
    pub window_ns: (i64, i64),
    /// Facility energy / IT energy over the common covered time; `None` without
    /// covered time or IT energy.
    pub pue: Option<f64>,
    /// Common covered time of the facility and IT meters / period length.
    pub coverage: f64,
    /// Facility energy over the common covered time, kWh.
    pub facility_kwh: f64,
    /// IT energy over the common covered time, kWh.
    pub it_kwh: f64,
}

/// The split of the facility energy.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EnergySplit {
    /// Time covered by every meter of the split / window length.
    pub coverage: f64,
    /// Facility energy over that time, kWh.
    pub facility_kwh: f64,
    /// IT energy, kWh.
    pub it_kwh: f64,
    /// Cooling energy (metered), kWh.
    pub cooling_kwh: f64,
    /// Other loads (metered: lighting, offices), kWh.
    pub other_kwh: f64,
    /// Power delivery losses: facility - IT - cooling - other, kWh. Negative means the
    /// meters disagree (a meter missing from the roles, or a calibration error).
    pub power_loss_kwh: f64,
    /// Cooling load factor, cooling / IT.
    pub clf: Option<f64>,
    /// Power load factor, power losses / IT.
    pub plf: Option<f64>,
    /// Other / IT.
    pub other_ratio: Option<f64>,
}

/// pPUE of one micro-module (zone).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModulePue {
    /// The zone id.
    pub zone: String,
    /// (IT + infrastructure) / IT.
    pub ppue: Option<f64>,
    /// Common covered time of the zone's meters / window length.
    pub coverage: f64,
    /// The zone's IT feed, kWh.
    pub it_kwh: f64,
    /// The zone's own cooling (CDU pumps, in-row units), kWh.
    pub infrastructure_kwh: f64,
}

/// A PUE against a named limit.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LimitCheck {
    /// The limit's name.
    pub name: String,
    /// Its value.
    pub max_pue: f64,
    /// Whether the PUE is at or below it.
    pub met: bool,
}

/// The energy PUE of one scope: a centre or the park.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScopePue {
    /// Centre id, or the park's id.
    pub scope: String,
    /// Over the whole window.
    pub total: PeriodPue,
    /// The best GB 40879 grade met (`None`: no PUE, or above every grade, which is
    /// above the legal limit).
    pub grade: Option<String>,
    /// Each grade and policy target, met or not (empty without a PUE).
    pub limits: Vec<LimitCheck>,
    /// The energy split.
    pub split: EnergySplit,
    /// Per local day (trend).
    pub daily: Vec<PeriodPue>,
    /// Per local month (trend).
    pub monthly: Vec<PeriodPue>,
    /// pPUE per micro-module (centres only).
    pub modules: Vec<ModulePue>,
    /// Every meter used, with its energy, coverage and counter events (centres only).
    pub meters: Vec<MeterEnergy>,
}

/// The energy PUE report for a window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PueReport {
    /// Start and end (excluded), Unix ns.
    pub window_ns: (i64, i64),
    /// The category, from where IT energy is metered.
    pub category: PueCategory,
    /// The category in words, as reports state it.
    pub category_text: String,
    /// Per centre, in site order.
    pub centres: Vec<ScopePue>,
    /// The whole park: all facility energy over all IT energy.
    pub park: ScopePue,
}

/// The PUE alone of one scope (a centre or the park) over a window, per local day
/// and month: the facility and IT energy and nothing else.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScopeTrend {
    /// Centre id, or the park's id.
    pub scope: String,
    /// Over the whole window.
    pub total: PeriodPue,
    /// Per local day.
    pub daily: Vec<PeriodPue>,
    /// Per local month.
    pub monthly: Vec<PeriodPue>,
}

/// Energy PUE per centre and for the park, per local day and month, without the
/// split, pPUE and meter details of [`PueReport`]: see [`pue_trend`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PueTrend {
    /// Start and end (excluded), Unix ns.
    pub window_ns: (i64, i64),
    /// The category, from where IT energy is metered.
    pub category: PueCategory,
    /// Per centre, in site order.
    pub centres: Vec<ScopeTrend>,
    /// The whole park.
    pub park: ScopeTrend,
}

/// The meters each quantity of a centre is made of.
struct CentreMeters<'a> {
    centre: &'a str,
    facility: Vec<&'a MeterRef>,
    it: Vec<&'a MeterRef>,
    cooling: Vec<&'a MeterRef>,
    other: Vec<&'a MeterRef>,
    zones: Vec<(String, Vec<&'a MeterRef>, Vec<&'a MeterRef>)>,
}

/// Refuses a centre with an energy meter that has no role (it could not be placed in
/// the energy flow, and leaving it out would be a silent number).
pub(crate) fn check_roles(inventory: &Inventory, centre: &str) -> Result<(), AnalyticsError> {
    for m in inventory.meters.iter().filter(|m| m.centre == centre) {
        if m.kind == DeviceKind::EnergyMeter && m.role.is_none() {
            return Err(AnalyticsError::MeterWithoutRole {
                meter: m.id.clone(),
                centre: centre.to_owned(),
            });
        }
    }
    Ok(())
}

/// The meters of a centre with one of `roles`; an error naming the centre, the roles
/// and the meters it does have when there is none.
pub(crate) fn need_roles<'a>(
    inventory: &'a Inventory,
    centre: &str,
    roles: &[MeterRole],
    purpose: &'static str,
) -> Result<Vec<&'a MeterRef>, AnalyticsError> {
    let found = inventory.with_roles(centre, roles);
    if found.is_empty() {
        Err(AnalyticsError::NoMeterForRole {
            centre: centre.to_owned(),
            role: roles
                .iter()
                .map(|r| role_name(*r))
                .collect::<Vec<_>>()
                .join(" or "),
            purpose,
            available: inventory.describe_centre(centre),
        })
    } else {
        Ok(found)
    }
}

/// The IT meters of a centre for `source` (the PUE's IT side).
pub(crate) fn it_meters<'a>(
    inventory: &'a Inventory,
    centre: &str,
    source: ItSource,
) -> Result<Vec<&'a MeterRef>, AnalyticsError> {
    match source {
        ItSource::UpsOutput => need_roles(inventory, centre, &[MeterRole::UpsOutput], "IT energy"),
        ItSource::ZoneIt => need_roles(inventory, centre, &[MeterRole::ZoneIt], "IT energy"),
        ItSource::RackPdu => {
            let pdus: Vec<&MeterRef> = inventory
                .meters
                .iter()
                .filter(|m| m.centre == centre && m.kind == DeviceKind::RackPdu)
                .collect();
            if pdus.is_empty() {
                return Err(AnalyticsError::NoMeterForRole {
                    centre: centre.to_owned(),
                    role: "rack_pdu (a rack PDU's kWh counter)".into(),
                    purpose: "IT energy",
                    available: inventory.describe_centre(centre),
                });
            }
            Ok(pdus)
        }
    }
}

fn centre_meters<'a>(
    inventory: &'a Inventory,
    config: &'a PueConfig,
    centre: &'a str,
) -> Result<CentreMeters<'a>, AnalyticsError> {
    check_roles(inventory, centre)?;
    let facility = need_roles(inventory, centre, &config.facility_roles, "facility energy")?;
    let it = it_meters(inventory, centre, config.it_source)?;
    let cooling = inventory.with_roles(centre, &config.cooling_roles);
    let other = inventory.with_roles(centre, &config.other_roles);
    let mut zones: Vec<(String, Vec<&MeterRef>, Vec<&MeterRef>)> = Vec::new();
    for m in inventory.meters.iter().filter(|m| m.centre == centre) {
        let (Some(zone), Some(role)) = (&m.zone, m.role) else {
            continue;
        };
        let slot = match zones.iter().position(|(z, _, _)| z == zone) {
            Some(i) => i,
            None => {
                zones.push((zone.clone(), Vec::new(), Vec::new()));
                zones.len() - 1
            }
        };
        match role {
            MeterRole::ZoneIt => zones[slot].1.push(m),
            MeterRole::ZoneCooling => zones[slot].2.push(m),
            _ => {}
        }
    }
    zones.retain(|(_, it, _)| !it.is_empty());
    Ok(CentreMeters {
        centre,
        facility,
        it,
        cooling,
        other,
        zones,
    })
}

/// Refuses an empty or reversed window.
pub(crate) fn check_window(window: &Range<i64>) -> Result<(), AnalyticsError> {
    if window.end <= window.start {
        return Err(AnalyticsError::EmptyRange {
            start_ns: window.start,
            end_ns: window.end,
        });
    }
    Ok(())
}

/// Energy PUE of every centre and of the park over `window` (Unix ns, end excluded),
/// read from the store. See the [module docs](self) for the rules.
pub async fn energy_pue(
    store: &Store,
    inventory: &Inventory,
    config: &AnalyticsConfig,
    window: Range<i64>,
) -> Result<PueReport, AnalyticsError> {
    let centres = pue_meters(inventory, config, &window)?;
    let mut wanted: Vec<&MeterRef> = Vec::new();
    for c in &centres {
        wanted.extend(
            c.facility
                .iter()
                .chain(&c.it)
                .chain(&c.cooling)
                .chain(&c.other),
        );
        for (_, it, infra) in &c.zones {
            wanted.extend(it.iter().chain(infra));
        }
    }
    let series = read_meters(store, wanted, &window, config).await?;
    Ok(pue_report(inventory, config, &centres, &series, window))
}

/// The PUE alone, per centre and for the park, over `window` and per local day and
/// month: the same numbers as [`energy_pue`]'s `total`, `daily` and `monthly`, read
/// from the facility and IT meters only. For a PUE trend (a chart, the daily
/// breakdown of a month) this reads far fewer meters: in category 1 the incoming
/// supply and the UPS outputs, not the cooling, other and micro-module meters the
/// split and pPUE need.
pub async fn pue_trend(
    store: &Store,
    inventory: &Inventory,
    config: &AnalyticsConfig,
    window: Range<i64>,
) -> Result<PueTrend, AnalyticsError> {
    let centres = pue_meters(inventory, config, &window)?;
    let wanted = centres.iter().flat_map(|c| c.facility.iter().chain(&c.it));
    let series = read_meters(store, wanted.copied().collect(), &window, config).await?;
    let calendar = Calendar::new(inventory, &window);
    let centre_trends = centres
        .iter()
        .map(|c| scope_trend(c.centre, &c.facility, &c.it, &calendar, &series))
        .collect();
    let (facility, it) = park_meters(&centres);
    Ok(PueTrend {
        window_ns: (window.start, window.end),
        category: config.pue.it_source.category(),
        centres: centre_trends,
        park: scope_trend(&inventory.park, &facility, &it, &calendar, &series),
    })
}

/// Checks the configuration and the window, and finds every centre's meters.
fn pue_meters<'a>(
    inventory: &'a Inventory,
    config: &'a AnalyticsConfig,
    window: &Range<i64>,
) -> Result<Vec<CentreMeters<'a>>, AnalyticsError> {
    config.validate()?;
    check_window(window)?;
    inventory
        .centres
        .iter()
        .map(|c| centre_meters(inventory, &config.pue, c))
        .collect()
}

/// Reads the counters of `meters` (each once, whatever the repeats).
async fn read_meters(
    store: &Store,
    mut meters: Vec<&MeterRef>,
    window: &Range<i64>,
    config: &AnalyticsConfig,
) -> Result<HashMap<String, CounterSeries>, AnalyticsError> {
    meters.sort_by(|a, b| a.id.cmp(&b.id));
    meters.dedup_by(|a, b| a.id == b.id);
    read_counters(store, &meters, window, config).await
}

/// The park's facility and IT meters: every centre's.
fn park_meters<'a>(centres: &[CentreMeters<'a>]) -> (Vec<&'a MeterRef>, Vec<&'a MeterRef>) {
    let facility = centres.iter().flat_map(|c| c.facility.iter().copied());
    let it = centres.iter().flat_map(|c| c.it.iter().copied());
    (facility.collect(), it.collect())
}

/// The local days and months of a window.
struct Calendar {
    window: Range<i64>,
    days: Vec<(String, Range<i64>)>,
    months: Vec<(String, Range<i64>)>,
}

impl Calendar {
    fn new(inventory: &Inventory, window: &Range<i64>) -> Calendar {
        let offset_ns = i64::from(inventory.utc_offset_hours) * NS_PER_HOUR;
        Calendar {
            window: window.clone(),
            days: local_periods(window, offset_ns, Period::Day),
            months: local_periods(window, offset_ns, Period::Month),
        }
    }
}

/// The counters of `meter`, empty when it has no readings.
fn counters_of<'s>(
    series: &'s HashMap<String, CounterSeries>,
    meter: &MeterRef,
) -> &'s CounterSeries {
    static EMPTY: std::sync::OnceLock<CounterSeries> = std::sync::OnceLock::new();
    series
        .get(&meter.id)
        .unwrap_or_else(|| EMPTY.get_or_init(CounterSeries::default))
}

/// Facility energy / IT energy over the time both sides cover within `w`.
fn period_pue(
    label: String,
    w: Range<i64>,
    facility: &[&MeterRef],
    it: &[&MeterRef],
    series: &HashMap<String, CounterSeries>,
) -> PeriodPue {
    let get = |m: &MeterRef| counters_of(series, m);
    let spans = common_spans(facility.iter().chain(it), &w, &get);
    let facility_kwh: f64 = facility.iter().map(|m| get(m).energy_within(&spans)).sum();
    let it_kwh: f64 = it.iter().map(|m| get(m).energy_within(&spans)).sum();
    let covered = spans_length(&spans);
    PeriodPue {
        label,
        window_ns: (w.start, w.end),
        pue: ratio(facility_kwh, it_kwh, covered),
        coverage: covered as f64 / (w.end - w.start) as f64,
        facility_kwh,
        it_kwh,
    }
}

/// The PUE of one scope over the window, each local day and each local month.
fn scope_trend(
    name: &str,
    facility: &[&MeterRef],
    it: &[&MeterRef],
    calendar: &Calendar,
    series: &HashMap<String, CounterSeries>,
) -> ScopeTrend {
    let periods = |periods: &[(String, Range<i64>)]| -> Vec<PeriodPue> {
        periods
            .iter()
            .map(|(label, w)| period_pue(label.clone(), w.clone(), facility, it, series))
            .collect()
    };
    ScopeTrend {
        scope: name.to_owned(),
        total: period_pue(
            "range".into(),
            calendar.window.clone(),
            facility,
            it,
            series,
        ),
        daily: periods(&calendar.days),
        monthly: periods(&calendar.months),
    }
}

/// Reads and cleans the counters of `meters` over `window` (plus `max_sample_gap` on
/// both sides, for the intervals across the edges).
pub async fn read_counters(
    store: &Store,
    meters: &[&MeterRef],
    window: &Range<i64>,
    config: &AnalyticsConfig,
) -> Result<HashMap<String, CounterSeries>, AnalyticsError> {
    let sources: Vec<Source> = meters
        .iter()
        .map(|m| Source {
            id: &m.id,
            measurement: &m.measurement,
            field: &m.field,
            counter: m.counter,
        })
        .collect();
    read_series(store, &sources, window, &config.counters).await
}

/// One stored series: a device's field in a measurement (and, for counters, the
/// counter's register width and rating).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Source<'a> {
    pub id: &'a str,
    pub measurement: &'a str,
    pub field: &'a str,
    pub counter: CounterSpec,
}

/// Reads the counters of `sources` over `window` plus `rules.max_sample_gap` on both
/// sides and applies the counter rules.
pub(crate) async fn read_series(
    store: &Store,
    sources: &[Source<'_>],
    window: &Range<i64>,
    rules: &CounterRules,
) -> Result<HashMap<String, CounterSeries>, AnalyticsError> {
    let margin = rules.max_gap_ns();
    let range = window.start.saturating_sub(margin)..window.end.saturating_add(margin + 1);
    let mut readings = read_readings(store, sources, &range).await?;
    Ok(sources
        .iter()
        .map(|s| {
            let r = readings.remove(s.id).unwrap_or_default();
            (
                s.id.to_owned(),
                CounterSeries::from_readings(&r, &s.counter, rules),
            )
        })
        .collect())
}

/// The raw readings of `sources` within `range`, per device id (a device without
/// readings is absent: no data is not an error).
pub(crate) async fn read_readings(
    store: &Store,
    sources: &[Source<'_>],
    range: &Range<i64>,
) -> Result<HashMap<String, Vec<Reading>>, AnalyticsError> {
    let mut groups: HashMap<(&str, &str), Vec<&Source>> = HashMap::new();
    for s in sources {
        groups.entry((s.measurement, s.field)).or_default().push(s);
    }
    let mut out = HashMap::new();
    for ((measurement, field), group) in groups {
        let mut scan = Scan::new(measurement, range.clone()).fields([field]);
        if group.len() <= MAX_DEVICE_FILTER {
            for s in &group {
                scan = scan.tag("device", s.id);
            }
        }
        let frame = read_columns(store, &scan, field).await?;
        let mut readings = readings_by_device(&frame, field, measurement)?;
        for s in group {
            if let Some(r) = readings.remove(s.id) {
                out.insert(s.id.to_owned(), r);
            }
        }
    }
    Ok(out)
}

/// The scan's `time`, `device` and `field` columns only (not the other tags): the
/// projection reaches the Parquet reader, which then decodes three columns instead of
/// every tag column. A frame without one of them comes back as the store gave it
/// (and gives no readings). On a blocking thread, as [`Store::read`] collects
/// (resolving the schema may block too).
async fn read_columns(
    store: &Store,
    scan: &Scan,
    field: &str,
) -> Result<DataFrame, AnalyticsError> {
    let mut lazy = store.scan(scan).await?;
    let field = field.to_owned();
    let context = format!("{}.{field}", scan.measurement);
    tokio::task::spawn_blocking(move || {
        let wanted = ["time", "device", field.as_str()];
        let has_all = lazy
            .collect_schema()
            .is_ok_and(|schema| wanted.iter().all(|c| schema.contains(c)));
        if has_all {
            lazy = lazy.select(wanted.iter().map(|c| col(*c)).collect::<Vec<_>>());
        }
        lazy.collect()
    })
    .await
    .map_err(|e| AnalyticsError::Frame {
        context: context.clone(),
        message: format!("collecting the scan panicked: {e}"),
    })?
    .map_err(|e| AnalyticsError::Frame {
        context,
        message: e.to_string(),
    })
}

/// The readings of a frame in the store's conventions, per `device` tag.
fn readings_by_device(
    frame: &DataFrame,
    field: &str,
    measurement: &str,
) -> Result<HashMap<String, Vec<Reading>>, AnalyticsError> {
    let mut out: HashMap<String, Vec<Reading>> = HashMap::new();
    // A measurement the store does not know, or points without the tag or field: no
    // readings (zero coverage), not an error.
    let (Ok(time), Ok(device), Ok(value)) = (
        frame.column("time"),
        frame.column("device"),
        frame.column(field),
    ) else {
        return Ok(out);
    };
    let bad = |e: PolarsError| AnalyticsError::Frame {
        context: format!("{measurement}.{field}"),
        message: e.to_string(),
    };
    let time = time.cast(&DataType::Int64).map_err(bad)?;
    let value = value.cast(&DataType::Float64).map_err(bad)?;
    let (time, device, value) = (
        time.i64().map_err(bad)?,
        device.str().map_err(bad)?,
        value.f64().map_err(bad)?,
    );
    // The rows come in runs of one device (the store's files are sorted by tags, then
    // time): look the device up once per run, not once per row.
    let mut lists: Vec<(&str, Vec<Reading>)> = Vec::new();
    let mut index: HashMap<&str, usize> = HashMap::new();
    let mut last: Option<(&str, usize)> = None;
    for ((t, d), v) in time.iter().zip(device.iter()).zip(value.iter()) {
        let (Some(t), Some(d), Some(v)) = (t, d, v) else {
            continue;
        };
        let slot = match last {
            Some((name, slot)) if name == d => slot,
            _ => {
                let slot = *index.entry(d).or_insert_with(|| {
                    lists.push((d, Vec::new()));
                    lists.len() - 1
                });
                last = Some((d, slot));
                slot
            }
        };
        lists[slot].1.push(Reading { time_ns: t, kwh: v });
    }
    out.extend(lists.into_iter().map(|(d, r)| (d.to_owned(), r)));
    Ok(out)
}

/// The report from cleaned counters (no store involved: testable on its own).
fn pue_report(
    inventory: &Inventory,
    config: &AnalyticsConfig,
    centres: &[CentreMeters],
    series: &HashMap<String, CounterSeries>,
    window: Range<i64>,
) -> PueReport {
    let calendar = Calendar::new(inventory, &window);
    let get = |m: &MeterRef| counters_of(series, m);
    let scope = |name: &str,
                 facility: &[&MeterRef],
                 it: &[&MeterRef],
                 cooling: &[&MeterRef],
                 other: &[&MeterRef]| {
        let trend = scope_trend(name, facility, it, &calendar, series);
        let all = facility.iter().chain(it).chain(cooling).chain(other);
        let spans = common_spans(all, &window, &get);
        let covered = spans_length(&spans);
        let sum =
            |ms: &[&MeterRef]| -> f64 { ms.iter().map(|m| get(m).energy_within(&spans)).sum() };
        let (f, i, c, o) = (sum(facility), sum(it), sum(cooling), sum(other));
        let loss = f - i - c - o;
        let split = EnergySplit {
            coverage: covered as f64 / (window.end - window.start) as f64,
            facility_kwh: f,
            it_kwh: i,
            cooling_kwh: c,
            other_kwh: o,
            power_loss_kwh: loss,
            clf: ratio(c, i, covered),
            plf: ratio(loss, i, covered),
            other_ratio: ratio(o, i, covered),
        };
        let (grade, limits) = judge(trend.total.pue, &config.pue);
        ScopePue {
            scope: trend.scope,
            grade,
            limits,
            split,
            daily: trend.daily,
            monthly: trend.monthly,
            total: trend.total,
            modules: Vec::new(),
            meters: Vec::new(),
        }
    };
    let mut reports = Vec::new();
    for c in centres {
        let mut report = scope(c.centre, &c.facility, &c.it, &c.cooling, &c.other);
        for (zone, it, infra) in &c.zones {
            let spans = common_spans(it.iter().chain(infra), &window, &get);
            let covered = spans_length(&spans);
            let it_kwh: f64 = it.iter().map(|m| get(m).energy_within(&spans)).sum();
            let infra_kwh: f64 = infra.iter().map(|m| get(m).energy_within(&spans)).sum();
            report.modules.push(ModulePue {
                zone: zone.clone(),
                ppue: ratio(it_kwh + infra_kwh, it_kwh, covered),
                coverage: covered as f64 / (window.end - window.start) as f64,
                it_kwh,
                infrastructure_kwh: infra_kwh,
            });
        }
        let mut used: Vec<&MeterRef> = c
            .facility
            .iter()
            .chain(&c.it)
            .chain(&c.cooling)
            .chain(&c.other)
            .chain(
                c.zones
                    .iter()
                    .flat_map(|(_, it, infra)| it.iter().chain(infra)),
            )
            .copied()
            .collect();
        used.sort_by(|a, b| a.id.cmp(&b.id));
        used.dedup_by(|a, b| a.id == b.id);
        report.meters = used
            .iter()
            .map(|m| get(m).energy(&m.id, window.clone()))
            .collect();
        reports.push(report);
    }
    let (facility, it) = park_meters(centres);
    let cooling: Vec<&MeterRef> = centres
        .iter()
        .flat_map(|c| c.cooling.iter().copied())
        .collect();
    let other: Vec<&MeterRef> = centres
        .iter()
        .flat_map(|c| c.other.iter().copied())
        .collect();
    let park = scope(&inventory.park, &facility, &it, &cooling, &other);
    let category = config.pue.it_source.category();
    PueReport {
        window_ns: (window.start, window.end),
        category,
        category_text: category.describe(),
        centres: reports,
        park,
    }
}

/// `numerator / denominator`, or `None` without covered time or with no denominator
/// (never NaN or infinity).
pub(crate) fn ratio(numerator: f64, denominator: f64, covered_ns: i64) -> Option<f64> {
    (covered_ns > 0 && denominator > 0.0)
        .then(|| numerator / denominator)
        .filter(|r| r.is_finite())
}

/// The time, within `window`, that every one of `meters` covers.
pub(crate) fn common_spans<'a, 'b, 's>(
    mut meters: impl Iterator<Item = &'b &'a MeterRef>,
    window: &Range<i64>,
    get: &impl Fn(&MeterRef) -> &'s CounterSeries,
) -> Vec<Range<i64>>
where
    'a: 'b,
{
    let Some(first) = meters.next() else {
        return Vec::new();
    };
    let mut spans = get(first).covered_spans(window);
    for m in meters {
        if spans.is_empty() {
            break;
        }
        spans = intersect_spans(&spans, &get(m).covered_spans(window));
    }
    spans
}

/// The best grade met and every limit checked.
pub(crate) fn judge(pue: Option<f64>, config: &PueConfig) -> (Option<String>, Vec<LimitCheck>) {
    let Some(pue) = pue else {
        return (None, Vec::new());
    };
    let check = |l: &crate::config::PueLimit| LimitCheck {
        name: l.name.clone(),
        max_pue: l.max_pue,
        met: pue <= l.max_pue,
    };
    let mut grades: Vec<&crate::config::PueLimit> = config.grades.iter().collect();
    grades.sort_by(|a, b| a.max_pue.total_cmp(&b.max_pue));
    let grade = grades
        .iter()
        .find(|g| pue <= g.max_pue)
        .map(|g| g.name.clone());
    let limits = config
        .grades
        .iter()
        .chain(&config.targets)
        .map(check)
        .collect();
    (grade, limits)
}

/// A calendar unit of the trend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    /// A local day.
    Day,
    /// A local calendar month.
    Month,
}

/// The local days or months that `window` touches, each cut to the window, with its
/// label ("2026-01-05", "2026-01").
pub fn local_periods(
    window: &Range<i64>,
    offset_ns: i64,
    period: Period,
) -> Vec<(String, Range<i64>)> {
    let mut out = Vec::new();
    let local_start = window.start + offset_ns;
    let date = DateTime::from_timestamp_nanos(local_start).date_naive();
    let mut begin = match period {
        Period::Day => date,
        Period::Month => date.with_day(1).unwrap_or(date),
    };
    loop {
        let next = match period {
            Period::Day => begin.succ_opt(),
            Period::Month => {
                let (y, m) = if begin.month() == 12 {
                    (begin.year() + 1, 1)
                } else {
                    (begin.year(), begin.month() + 1)
                };
                NaiveDate::from_ymd_opt(y, m, 1)
            }
        };
        let (Some(start), Some(next)) = (local_midnight_ns(begin, offset_ns), next) else {
            break;
        };
        let Some(end) = local_midnight_ns(next, offset_ns) else {
            break;
        };
        if start >= window.end {
            break;
        }
        let label = match period {
            Period::Day => begin.format("%Y-%m-%d").to_string(),
            Period::Month => begin.format("%Y-%m").to_string(),
        };
        out.push((label, start.max(window.start)..end.min(window.end)));
        begin = next;
    }
    out
}

/// A time as the park's local clock shows it, "2026-02-01 10:15".
pub(crate) fn local_text(time_ns: i64, offset_ns: i64) -> String {
    DateTime::from_timestamp_nanos(time_ns.saturating_add(offset_ns))
        .naive_utc()
        .format("%Y-%m-%d %H:%M")
        .to_string()
}

/// Unix ns of local midnight starting `date`.
pub(crate) fn local_midnight_ns(date: NaiveDate, offset_ns: i64) -> Option<i64> {
    let utc = date.and_hms_opt(0, 0, 0)?.and_utc().timestamp_nanos_opt()?;
    Some(utc - offset_ns)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NS_PER_DAY: i64 = 24 * NS_PER_HOUR;

    #[test]
    fn local_days_and_months() {
        // 2026-01-31T00:00+08:00 to 2026-02-02T12:00+08:00.
        let jan31 = 1_769_788_800_000_000_000;
        let window = jan31..jan31 + 2 * NS_PER_DAY + 12 * NS_PER_HOUR;
        let days = local_periods(&window, 8 * NS_PER_HOUR, Period::Day);
        let labels: Vec<&str> = days.iter().map(|(l, _)| l.as_str()).collect();
        assert_eq!(labels, ["2026-01-31", "2026-02-01", "2026-02-02"]);
        assert_eq!(days[2].1.end - days[2].1.start, 12 * NS_PER_HOUR);
        let months = local_periods(&window, 8 * NS_PER_HOUR, Period::Month);
        assert_eq!(months.len(), 2);
        assert_eq!(months[0].0, "2026-01");
        assert_eq!(months[0].1, jan31..jan31 + NS_PER_DAY);
    }

    #[test]
    fn ratio_is_never_nan() {
        assert_eq!(ratio(0.0, 0.0, 0), None);
        assert_eq!(ratio(10.0, 0.0, 100), None);
        assert_eq!(ratio(15.0, 10.0, 100), Some(1.5));
    }
}
