//! The analytics configuration: counter rules, PUE settings, tariffs, demand,
//! emission factors and water meters, every number a default from domain.md that a
//! site can override.
//!
//! Read from the `[analytics]` table of tidewatch's configuration file; unknown keys
//! are errors. The sample in the crate's README is parsed by a test.

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use tidewatch_devices::MeterRole;

use crate::carbon::{CarbonConfig, WaterConfig};
use crate::counters::CounterRules;
use crate::demand::DemandConfig;
use crate::tariff::{Tariff, TariffTable};

/// Everything the analytics job can be told.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnalyticsConfig {
    /// How cumulative kWh counters are turned into energy.
    #[serde(default)]
    pub counters: CounterRules,
    /// How energy PUE is computed and judged.
    #[serde(default)]
    pub pue: PueConfig,
    /// Time-of-use tariffs (`[[analytics.tariff]]`), with disjoint validity. Default
    /// none: cost needs one.
    #[serde(default, rename = "tariff", skip_serializing_if = "Vec::is_empty")]
    pub tariffs: Vec<Tariff>,
    /// Peak demand and instantaneous PUE.
    #[serde(default)]
    pub demand: DemandConfig,
    /// Grid emission factors (CO2, CUE).
    #[serde(default)]
    pub carbon: CarbonConfig,
    /// Water meters (WUE).
    #[serde(default)]
    pub water: WaterConfig,
    /// Liquid cooling: sampling rules, dew-point thresholds, coolant properties.
    #[serde(default)]
    pub cooling: crate::cooling::CoolingConfig,
    /// The thermal anomaly detectors.
    #[serde(default)]
    pub anomalies: crate::anomaly::AnomalyConfig,
    /// The periodic job of `tidewatch run` and the demo: how often, over what window.
    #[serde(default)]
    pub job: crate::job::JobConfig,
}

/// Where IT energy is metered: decides the PUE category (domain.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItSource {
    /// The UPS output meters (role `ups_output`): category 1.
    UpsOutput,
    /// The zones' IT feeds (role `zone_it`: the micro-module power cabinet's output
    /// to its PDUs, the floor-level distribution output): category 2.
    ZoneIt,
    /// The rack PDUs' own kWh counters (their output to the IT equipment): category 2.
    RackPdu,
}

impl ItSource {
    /// The PUE category this source gives.
    pub fn category(self) -> PueCategory {
        match self {
            ItSource::UpsOutput => PueCategory::UpsOutput,
            ItSource::ZoneIt | ItSource::RackPdu => PueCategory::PduOutput,
        }
    }
}

/// PUE category, from where IT energy is measured (ISO/IEC 30134-2 / The Green Grid).
/// Category 0 (peak kW at the UPS output) is an instantaneous value and is never what
/// an energy PUE reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PueCategory {
    /// Category 1: kWh at the UPS output.
    UpsOutput,
    /// Category 2: kWh at the PDU output.
    PduOutput,
    /// Category 3: kWh at the IT equipment input.
    ItInput,
}

impl PueCategory {
    /// The category's number (1, 2 or 3).
    pub fn number(self) -> u8 {
        match self {
            PueCategory::UpsOutput => 1,
            PueCategory::PduOutput => 2,
            PueCategory::ItInput => 3,
        }
    }

    /// How a report states it, e.g. "PUE category 1 (IT energy: kWh at the UPS output)".
    pub fn describe(self) -> String {
        let at = match self {
            PueCategory::UpsOutput => "kWh at the UPS output",
            PueCategory::PduOutput => "kWh at the PDU output",
            PueCategory::ItInput => "kWh at the IT equipment input",
        };
        format!("PUE category {} (IT energy: {at})", self.number())
    }
}

/// A named PUE limit: a GB 40879 grade or a policy target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PueLimit {
    /// How reports name it, e.g. "GB 40879-2021 grade 1".
    pub name: String,
    /// The highest PUE that meets it.
    pub max_pue: f64,
}

/// Energy PUE settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PueConfig {
    /// Where IT energy comes from (decides the category). Default `ups_output`
    /// (category 1), the meters every centre of the site has.
    #[serde(default = "default_it_source")]
    pub it_source: ItSource,
    /// Roles whose meters add up to the total facility energy. Default `incoming`.
    #[serde(default = "default_facility_roles")]
    pub facility_roles: Vec<MeterRole>,
    /// Roles of the cooling part of the split (CLF). Default chillers, dry coolers,
    /// towers, chilled-water pumps and the zones' own cooling (CDU pumps, in-row units).
    #[serde(default = "default_cooling_roles")]
    pub cooling_roles: Vec<MeterRole>,
    /// Roles of the "other" part (lighting, offices, security). Power losses are what
    /// remains: facility - IT - cooling - other (transformers, UPS, distribution).
    #[serde(default = "default_other_roles")]
    pub other_roles: Vec<MeterRole>,
    /// GB 40879-2021 grades, best first. Defaults: the commonly quoted values 1.20 /
    /// 1.30 / 1.50 (grade 3 is the legal limit).
    #[serde(default = "default_grades")]
    pub grades: Vec<PueLimit>,
    /// Policy targets. Defaults: large data centres below 1.3 (Shandong and national
    /// policy), national hub nodes / favoured below 1.25.
    #[serde(default = "default_targets")]
    pub targets: Vec<PueLimit>,
}

impl Default for PueConfig {
    fn default() -> Self {
        PueConfig {
            it_source: default_it_source(),
            facility_roles: default_facility_roles(),
            cooling_roles: default_cooling_roles(),
            other_roles: default_other_roles(),
            grades: default_grades(),
            targets: default_targets(),
        }
    }
}

/// Default IT source: UPS output (category 1).
pub fn default_it_source() -> ItSource {
    ItSource::UpsOutput
}

/// Default facility roles: the incoming supply.
pub fn default_facility_roles() -> Vec<MeterRole> {
    vec![MeterRole::Incoming]
}

/// Default cooling roles.
pub fn default_cooling_roles() -> Vec<MeterRole> {
    vec![
        MeterRole::Chiller,
        MeterRole::DryCooler,
        MeterRole::CoolingTower,
        MeterRole::ChwPumps,
        MeterRole::ZoneCooling,
    ]
}

/// Default "other" roles.
pub fn default_other_roles() -> Vec<MeterRole> {
    vec![MeterRole::Lighting, MeterRole::Other]
}

/// GB 40879-2021 grades as commonly quoted.
pub fn default_grades() -> Vec<PueLimit> {
    [1.20, 1.30, 1.50]
        .iter()
        .enumerate()
        .map(|(i, &max_pue)| PueLimit {
            name: format!("GB 40879-2021 grade {}", i + 1),
            max_pue,
        })
        .collect()
}

/// Policy targets: 1.3 for large data centres, 1.25 for hub nodes (favoured in Shandong).
pub fn default_targets() -> Vec<PueLimit> {
    vec![
        PueLimit {
            name: "policy target, large data centres (< 1.3)".into(),
            max_pue: 1.3,
        },
        PueLimit {
            name: "policy target, national hub nodes (< 1.25)".into(),
            max_pue: 1.25,
        },
    ]
}

impl AnalyticsConfig {
    /// Checks the numbers that would make results meaningless.
    pub fn validate(&self) -> Result<(), crate::AnalyticsError> {
        let bad = |m: String| Err(crate::AnalyticsError::Config(m));
        let c = &self.counters;
        if c.max_sample_gap.is_zero() {
            return bad("counters.max_sample_gap must be positive".into());
        }
        if !(c.reset_drop_ratio > 0.0 && c.reset_drop_ratio <= 1.0) {
            return bad(format!(
                "counters.reset_drop_ratio must be in (0, 1], got {}",
                c.reset_drop_ratio
            ));
        }
        if !(c.spike_power_factor.is_finite() && c.spike_power_factor > 0.0) {
            return bad(format!(
                "counters.spike_power_factor must be positive, got {}",
                c.spike_power_factor
            ));
        }
        if let Some(kw) = c.max_power_kw {
            if !(kw.is_finite() && kw > 0.0) {
                return bad(format!("counters.max_power_kw must be positive, got {kw}"));
            }
        }
        if self.pue.facility_roles.is_empty() {
            return bad("pue.facility_roles must name at least one role".into());
        }
        for limit in self.pue.grades.iter().chain(&self.pue.targets) {
            if !(limit.max_pue.is_finite() && limit.max_pue >= 1.0) {
                return bad(format!(
                    "PUE limit {:?}: max_pue must be at least 1, got {}",
                    limit.name, limit.max_pue
                ));
            }
        }
        TariffTable::compile(&self.tariffs)?;
        self.demand.validate()?;
        self.carbon.validate()?;
        self.water.validate()?;
        self.job.validate()?;
        self.anomalies.validate()
    }
}

/// Serde for durations written as in the site files ("90m", "1h30m").
pub(crate) mod duration_text {
    use super::*;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&tidewatch_devices::format_duration(*d))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        tidewatch_devices::parse_duration(&text).map_err(serde::de::Error::custom)
    }
}
