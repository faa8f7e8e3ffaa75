//! CO2, CUE and WUE. In the flow they sit beside the energy PUE and use its window
//! rules: the same cleaned kWh counters ([`crate::counters`]) over the time the
//! facility and IT meters all cover; the results feed the monthly energy report
//! ("CO2 and CUE; WUE where water is metered").
//!
//! - **CO2** = facility kWh x the grid emission factor of the energy's local year
//!   (configuration: a labelled default, Shandong's 0.6191 kg CO2/kWh, 2023 provincial
//!   value, and optional per-year values). A range across a new year is split at local
//!   midnight of 1 January and each part uses its year's factor.
//! - **CUE** = kg CO2 / IT kWh (ISO/IEC 30134-8), over the same common covered time as
//!   the PUE (so CUE = PUE x factor within one year). No covered time or no IT energy:
//!   `None`, never NaN.
//! - **WUE** = site water litres / IT kWh (ISO/IEC 30134-9), where water is metered.
//!   The site description has no water meters, so they are configuration
//!   (`[[analytics.water.meters]]`: a device, its centre, the measurement and
//!   cumulative field it is stored under, and litres per unit of that field). Water
//!   counters go through the same counter rules as energy (resets, rollovers, gaps),
//!   with their own `max_sample_gap` (water meters are read less often). WUE is taken
//!   over the time the centre's water meters and IT meters all cover. A centre
//!   without a water meter gets **no WUE with the reason "not metered"** — never 0; the
//!   park has a WUE only when every centre is metered.
//! - IT energy comes from the PUE's IT source (`pue.it_source`), so CUE, WUE and PUE
//!   share a category.

use std::collections::HashMap;
use std::ops::Range;
use std::time::Duration;

use chrono::{DateTime, Datelike, NaiveDate};
use serde::{Deserialize, Serialize};
use tidewatch_storage::store::Store;

use crate::config::AnalyticsConfig;
use crate::counters::{spans_length, CounterRules, CounterSeries, CounterSpec};
use crate::error::AnalyticsError;
use crate::inventory::{Inventory, MeterRef};
use crate::pue::{
    check_roles, check_window, common_spans, it_meters, local_midnight_ns, need_roles, ratio,
    read_counters, read_series, Source,
};

const NS_PER_HOUR: i64 = 3_600_000_000_000;

/// Grid emission factors (`[analytics.carbon]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CarbonConfig {
    /// The factor for years without their own, kg CO2/kWh. Default 0.6191: Shandong's
    /// 2023 provincial grid factor (national average 0.5306).
    #[serde(default = "default_kg_co2_per_kwh")]
    pub kg_co2_per_kwh: f64,
    /// Where that factor comes from (reports print it).
    #[serde(default = "default_source")]
    pub source: String,
    /// Factors for given local calendar years.
    #[serde(default)]
    pub by_year: Vec<YearFactor>,
}

/// The emission factor of one year.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct YearFactor {
    /// The local calendar year.
    pub year: i32,
    /// kg CO2/kWh.
    pub kg_co2_per_kwh: f64,
    /// Where it comes from.
    #[serde(default)]
    pub source: Option<String>,
}

impl Default for CarbonConfig {
    fn default() -> Self {
        CarbonConfig {
            kg_co2_per_kwh: default_kg_co2_per_kwh(),
            source: default_source(),
            by_year: Vec::new(),
        }
    }
}

/// Default factor: 0.6191 kg CO2/kWh (Shandong, 2023).
pub fn default_kg_co2_per_kwh() -> f64 {
    0.6191
}

/// Default factor's label.
pub fn default_source() -> String {
    "Shandong provincial grid emission factor, 2023".into()
}

impl CarbonConfig {
    /// Factors must be finite and not negative; a year once.
    pub fn validate(&self) -> Result<(), AnalyticsError> {
        let bad = |m: String| Err(AnalyticsError::Config(m));
        if !(self.kg_co2_per_kwh.is_finite() && self.kg_co2_per_kwh >= 0.0) {
            return bad(format!(
                "carbon.kg_co2_per_kwh must be a finite number, not negative, got {}",
                self.kg_co2_per_kwh
            ));
        }
        for (i, y) in self.by_year.iter().enumerate() {
            if !(y.kg_co2_per_kwh.is_finite() && y.kg_co2_per_kwh >= 0.0) {
                return bad(format!(
                    "carbon.by_year, year {}: kg_co2_per_kwh must be a finite number, not negative, got {}",
                    y.year, y.kg_co2_per_kwh
                ));
            }
            if self.by_year[..i].iter().any(|o| o.year == y.year) {
                return bad(format!("carbon.by_year: year {} given twice", y.year));
            }
        }
        Ok(())
    }

    /// The factor and its source for a local year.
    pub fn factor(&self, year: i32) -> (f64, String) {
        match self.by_year.iter().find(|y| y.year == year) {
            Some(y) => (
                y.kg_co2_per_kwh,
                y.source
                    .clone()
                    .unwrap_or_else(|| format!("configured factor for {year}")),
            ),
            None => (self.kg_co2_per_kwh, self.source.clone()),
        }
    }
}

/// Water meters (`[analytics.water]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WaterConfig {
    /// The site's water meters (make-up water of towers and dry coolers with spray,
    /// humidifiers). Default none: WUE "not metered".
    #[serde(default)]
    pub meters: Vec<WaterMeter>,
    /// The longest interval between two water readings still covered ("1h").
    #[serde(
        default = "default_water_sample_gap",
        with = "crate::config::duration_text"
    )]
    pub max_sample_gap: Duration,
}

impl Default for WaterConfig {
    fn default() -> Self {
        WaterConfig {
            meters: Vec::new(),
            max_sample_gap: default_water_sample_gap(),
        }
    }
}

/// Default water `max_sample_gap`: 1 hour.
pub fn default_water_sample_gap() -> Duration {
    Duration::from_secs(3600)
}

/// One cumulative water meter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WaterMeter {
    /// Its `device` tag.
    pub device: String,
    /// Its computing centre.
    pub centre: String,
    /// The measurement its points are stored under. Default `water_meter`.
    #[serde(default = "default_water_measurement")]
    pub measurement: String,
    /// The cumulative volume field. Default `volume_m3`.
    #[serde(default = "default_water_field")]
    pub field: String,
    /// Litres per unit of the field. Default 1000 (m3).
    #[serde(default = "default_litres_per_unit")]
    pub litres_per_unit: f64,
}

/// Default water measurement.
pub fn default_water_measurement() -> String {
    "water_meter".into()
}

/// Default water field.
pub fn default_water_field() -> String {
    "volume_m3".into()
}

/// Default litres per unit: 1000 (the field is m3).
pub fn default_litres_per_unit() -> f64 {
    1000.0
}

impl WaterConfig {
    /// Checks the numbers and names.
    pub fn validate(&self) -> Result<(), AnalyticsError> {
        let bad = |m: String| Err(AnalyticsError::Config(m));
        if self.max_sample_gap.is_zero() {
            return bad("water.max_sample_gap must be positive".into());
        }
        for m in &self.meters {
            if m.device.trim().is_empty() || m.centre.trim().is_empty() {
                return bad("water.meters: every meter needs a device and a centre".into());
            }
            if !(m.litres_per_unit.is_finite() && m.litres_per_unit > 0.0) {
                return bad(format!(
                    "water meter {:?}: litres_per_unit must be positive, got {}",
                    m.device, m.litres_per_unit
                ));
            }
        }
        Ok(())
    }

    fn rules(&self, counters: &CounterRules) -> CounterRules {
        CounterRules {
            max_sample_gap: self.max_sample_gap,
            max_power_kw: None,
            ..counters.clone()
        }
    }
}

/// The factor used for part of the range.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FactorUsed {
    /// The local year.
    pub year: i32,
    /// kg CO2/kWh.
    pub kg_co2_per_kwh: f64,
    /// Where it comes from.
    pub source: String,
    /// Facility energy of that year's part of the covered time, kWh.
    pub facility_kwh: f64,
}

/// WUE, or why there is none.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Wue {
    /// Litres / IT kWh; `None` when not metered or not measurable (see `reason`).
    pub wue_l_per_kwh: Option<f64>,
    /// Why there is no WUE: "not metered: ...", no covered time, no IT energy.
    pub reason: Option<String>,
    /// Water over the common covered time, litres.
    pub water_litres: f64,
    /// IT energy over the same time, kWh.
    pub it_kwh: f64,
    /// The water and IT meters' common covered time / the range's length.
    pub coverage: f64,
}

/// CO2, CUE and WUE of a centre or of the park.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScopeCarbon {
    /// Centre id, or the park's id.
    pub scope: String,
    /// The facility and IT meters' common covered time / the range's length.
    pub coverage: f64,
    /// Facility energy over that time, kWh.
    pub facility_kwh: f64,
    /// IT energy over that time, kWh.
    pub it_kwh: f64,
    /// facility kWh x factor, kg.
    pub co2_kg: f64,
    /// kg CO2 / IT kWh; `None` without covered time or IT energy.
    pub cue_kg_per_kwh: Option<f64>,
    /// The factors used, per local year.
    pub factors: Vec<FactorUsed>,
    /// Water usage effectiveness.
    pub wue: Wue,
}

/// CO2, CUE and WUE over a range.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CarbonReport {
    /// Start and end (excluded), Unix ns.
    pub window_ns: (i64, i64),
    /// The category of the IT energy (as the PUE's).
    pub category_text: String,
    /// Per centre, in site order.
    pub centres: Vec<ScopeCarbon>,
    /// The park.
    pub park: ScopeCarbon,
}

/// The local calendar years `window` touches, each cut to the window.
fn local_years(window: &Range<i64>, offset_ns: i64) -> Vec<(i32, Range<i64>)> {
    let mut out = Vec::new();
    let mut year = DateTime::from_timestamp_nanos(window.start.saturating_add(offset_ns)).year();
    while let (Some(start), Some(end)) = (
        NaiveDate::from_ymd_opt(year, 1, 1).and_then(|d| local_midnight_ns(d, offset_ns)),
        NaiveDate::from_ymd_opt(year + 1, 1, 1).and_then(|d| local_midnight_ns(d, offset_ns)),
    ) {
        if start >= window.end {
            break;
        }
        out.push((year, start.max(window.start)..end.min(window.end)));
        year += 1;
    }
    out
}

/// What a scope is made of.
struct ScopeMeters<'a> {
    name: String,
    facility: Vec<&'a MeterRef>,
    it: Vec<&'a MeterRef>,
    water: Vec<&'a WaterMeter>,
    /// Centres of the scope without a water meter.
    unmetered: Vec<String>,
}

/// Why a metered scope has no WUE (`None` when it has one).
pub(crate) fn wue_reason(has_value: bool, covered: bool) -> Option<String> {
    match (has_value, covered) {
        (true, _) => None,
        (false, false) => {
            Some("no time covered by every water and IT meter (no data, or gaps)".into())
        }
        (false, true) => Some("no IT energy over the covered time".into()),
    }
}

fn scope_carbon(
    scope: &ScopeMeters,
    energy: &HashMap<String, CounterSeries>,
    water: &HashMap<String, CounterSeries>,
    config: &AnalyticsConfig,
    window: &Range<i64>,
    offset_ns: i64,
) -> ScopeCarbon {
    let empty = CounterSeries::default();
    let get = |m: &MeterRef| -> &CounterSeries { energy.get(&m.id).unwrap_or(&empty) };
    let length = (window.end - window.start) as f64;
    let spans = common_spans(scope.facility.iter().chain(&scope.it), window, &get);
    let covered = spans_length(&spans);
    let sum = |ms: &[&MeterRef], spans: &[Range<i64>]| -> f64 {
        ms.iter().map(|m| get(m).energy_within(spans)).sum()
    };
    let facility_kwh = sum(&scope.facility, &spans);
    let it_kwh = sum(&scope.it, &spans);
    let mut factors = Vec::new();
    let mut co2 = 0.0;
    for (year, part) in local_years(window, offset_ns) {
        let part_spans = crate::counters::intersect_spans(&spans, std::slice::from_ref(&part));
        let kwh = sum(&scope.facility, &part_spans);
        let (factor, source) = config.carbon.factor(year);
        co2 += kwh * factor;
        factors.push(FactorUsed {
            year,
            kg_co2_per_kwh: factor,
            source,
            facility_kwh: kwh,
        });
    }
    let wue = if !scope.unmetered.is_empty() {
        Wue {
            wue_l_per_kwh: None,
            reason: Some(format!(
                "not metered: no water meter in {} ([[analytics.water.meters]])",
                scope.unmetered.join(", ")
            )),
            water_litres: 0.0,
            it_kwh: 0.0,
            coverage: 0.0,
        }
    } else {
        // The water meters' covered time, then with every IT meter's.
        let mut wspans = vec![window.clone()];
        for w in &scope.water {
            let s = water.get(&w.device).unwrap_or(&empty);
            wspans = crate::counters::intersect_spans(&wspans, &s.covered_spans(window));
        }
        for m in &scope.it {
            wspans = crate::counters::intersect_spans(&wspans, &get(m).covered_spans(window));
        }
        let wcovered = spans_length(&wspans);
        let litres: f64 = scope
            .water
            .iter()
            .map(|w| {
                water
                    .get(&w.device)
                    .unwrap_or(&empty)
                    .energy_within(&wspans)
                    * w.litres_per_unit
            })
            .sum();
        let it = sum(&scope.it, &wspans);
        let value = ratio(litres, it, wcovered);
        Wue {
            wue_l_per_kwh: value,
            reason: wue_reason(value.is_some(), wcovered > 0),
            water_litres: litres,
            it_kwh: it,
            coverage: wcovered as f64 / length,
        }
    };
    ScopeCarbon {
        scope: scope.name.clone(),
        coverage: covered as f64 / length,
        facility_kwh,
        it_kwh,
        co2_kg: co2,
        cue_kg_per_kwh: ratio(co2, it_kwh, covered),
        factors,
        wue,
    }
}

/// CO2, CUE and WUE of every centre and of the park over `window` (Unix ns, end
/// excluded), read from the store. See the [module docs](self).
pub async fn carbon_water(
    store: &Store,
    inventory: &Inventory,
    config: &AnalyticsConfig,
    window: Range<i64>,
) -> Result<CarbonReport, AnalyticsError> {
    config.validate()?;
    check_window(&window)?;
    for w in &config.water.meters {
        if !inventory.centres.contains(&w.centre) {
            return Err(AnalyticsError::Config(format!(
                "water meter {:?}: unknown centre {:?} (the site's centres: {})",
                w.device,
                w.centre,
                inventory.centres.join(", ")
            )));
        }
    }
    let mut scopes = Vec::new();
    for c in &inventory.centres {
        check_roles(inventory, c)?;
        let water: Vec<&WaterMeter> = config
            .water
            .meters
            .iter()
            .filter(|w| &w.centre == c)
            .collect();
        scopes.push(ScopeMeters {
            name: c.clone(),
            facility: need_roles(inventory, c, &config.pue.facility_roles, "facility energy")?,
            it: it_meters(inventory, c, config.pue.it_source)?,
            unmetered: if water.is_empty() {
                vec![c.clone()]
            } else {
                Vec::new()
            },
            water,
        });
    }
    let park = ScopeMeters {
        name: inventory.park.clone(),
        facility: scopes.iter().flat_map(|s| s.facility.clone()).collect(),
        it: scopes.iter().flat_map(|s| s.it.clone()).collect(),
        water: scopes.iter().flat_map(|s| s.water.clone()).collect(),
        unmetered: scopes.iter().flat_map(|s| s.unmetered.clone()).collect(),
    };
    let mut wanted: Vec<&MeterRef> = park.facility.iter().chain(&park.it).copied().collect();
    wanted.sort_by(|a, b| a.id.cmp(&b.id));
    wanted.dedup_by(|a, b| a.id == b.id);
    let energy = read_counters(store, &wanted, &window, config).await?;
    let sources: Vec<Source> = config
        .water
        .meters
        .iter()
        .map(|w| Source {
            id: &w.device,
            measurement: &w.measurement,
            field: &w.field,
            counter: CounterSpec::default(),
        })
        .collect();
    let water = read_series(
        store,
        &sources,
        &window,
        &config.water.rules(&config.counters),
    )
    .await?;
    let offset_ns = i64::from(inventory.utc_offset_hours) * NS_PER_HOUR;
    let centres = scopes
        .iter()
        .map(|s| scope_carbon(s, &energy, &water, config, &window, offset_ns))
        .collect();
    let park = scope_carbon(&park, &energy, &water, config, &window, offset_ns);
    Ok(CarbonReport {
        window_ns: (window.start, window.end),
        category_text: config.pue.it_source.category().describe(),
        centres,
        park,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn years_split_at_local_new_year() {
        // 2025-12-31T12:00+08:00 .. 2026-01-01T12:00+08:00.
        let new_year = 1_767_196_800_000_000_000; // 2026-01-01T00:00+08:00
        let w = new_year - 12 * NS_PER_HOUR..new_year + 12 * NS_PER_HOUR;
        let years = local_years(&w, 8 * NS_PER_HOUR);
        assert_eq!(
            years,
            vec![(2025, w.start..new_year), (2026, new_year..w.end)]
        );
    }

    #[test]
    fn factors_by_year_and_their_checks() {
        let mut c = CarbonConfig::default();
        assert_eq!(c.factor(2026).0, 0.6191);
        c.by_year.push(YearFactor {
            year: 2026,
            kg_co2_per_kwh: 0.58,
            source: None,
        });
        assert_eq!(c.factor(2026).0, 0.58);
        assert_eq!(c.factor(2025).0, 0.6191);
        c.validate().unwrap();
        c.by_year.push(c.by_year[0].clone());
        assert!(c.validate().unwrap_err().to_string().contains("twice"));
        c.by_year.pop();
        c.by_year[0].kg_co2_per_kwh = -1.0;
        assert!(c.validate().unwrap_err().to_string().contains("2026"));
    }
}
