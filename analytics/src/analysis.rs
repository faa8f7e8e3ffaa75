//! One analysis of a time range: everything the analytics computes, together. In the
//! flow: store -> **analysis** (energy PUE, peak demand and instantaneous PUE, cost,
//! CO2/CUE/WUE, cooling per loop, thermal anomalies) -> `tidewatch analyze`'s report,
//! the periodic job's derived points ([`crate::derived::analysis_points`]) and what it
//! publishes in process.
//!
//! Energy PUE is the analysis: without it there is no report, and its error is the
//! analysis' error (a meter without a role, a store that cannot be read). Every other
//! part stands on its own: one that is not configured (cost without a tariff table)
//! says so, and one that fails says why, while the rest of the report is still given.

use std::ops::Range;

use serde::Serialize;
use tidewatch_devices::{ProfileSet, Site};
use tidewatch_storage::store::Store;

use crate::anomaly::{self, Anomaly, AnomalyPlan};
use crate::carbon::{carbon_water, CarbonReport};
use crate::config::AnalyticsConfig;
use crate::cooling::{cooling_report, CoolingInventory, CoolingReport};
use crate::demand::{demand, DemandReport};
use crate::error::AnalyticsError;
use crate::inventory::Inventory;
use crate::pue::{energy_pue, PueReport};
use crate::tariff::{tariff_cost, CostReport};

/// What the analysis looks at, from the site description: the meters, the liquid loops
/// and the zones the anomaly detectors watch.
#[derive(Debug, Clone)]
pub struct Subjects {
    /// Energy meters and PDU counters.
    pub inventory: Inventory,
    /// Liquid loops (CDU, coolant, class, the module's PDUs).
    pub cooling: CoolingInventory,
    /// Zones with their CDU, PDUs and sensors.
    pub anomalies: AnomalyPlan,
}

impl Subjects {
    /// The subjects of a site.
    pub fn from_site(site: &Site, profiles: &ProfileSet) -> Result<Subjects, AnalyticsError> {
        Ok(Subjects {
            inventory: Inventory::from_site(site, profiles)?,
            cooling: CoolingInventory::from_site(site, profiles)?,
            anomalies: AnomalyPlan::from_site(site),
        })
    }
}

/// A part of the analysis other than energy PUE: its result, or why there is none.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Part<T> {
    /// Computed.
    Computed {
        /// The result.
        result: T,
    },
    /// Not configured for this site (for example cost without a tariff table).
    NotConfigured {
        /// What configuration it needs.
        reason: String,
    },
    /// Configured, but it could not be computed (the error says why).
    Failed {
        /// The error.
        error: String,
    },
}

impl<T> Part<T> {
    /// The result, if computed.
    pub fn result(&self) -> Option<&T> {
        match self {
            Part::Computed { result } => Some(result),
            _ => None,
        }
    }

    /// The error, if it failed.
    pub fn error(&self) -> Option<&str> {
        match self {
            Part::Failed { error } => Some(error),
            _ => None,
        }
    }

    fn from_result(result: Result<T, AnalyticsError>) -> Part<T> {
        match result {
            Ok(result) => Part::Computed { result },
            Err(error) => Part::Failed {
                error: error.to_string(),
            },
        }
    }
}

/// Everything about one time range.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Analysis {
    /// Start and end (excluded), Unix ns.
    pub window_ns: (i64, i64),
    /// Energy PUE, its split, daily and monthly trend, pPUE per micro-module.
    pub pue: PueReport,
    /// Peak demand and instantaneous (category 0) PUE.
    pub demand: Part<DemandReport>,
    /// Cost by time-of-use period.
    pub cost: Part<CostReport>,
    /// CO2, CUE and WUE.
    pub carbon: Part<CarbonReport>,
    /// Heat removed, capture ratio, approach, dew-point margin and class per loop.
    pub cooling: Part<CoolingReport>,
    /// Thermal anomalies that were open at some time in the range, sorted by detection
    /// time.
    pub anomalies: Part<Vec<Anomaly>>,
}

impl Analysis {
    /// The parts that failed, with their errors: (part name, error).
    pub fn failures(&self) -> Vec<(&'static str, &str)> {
        [
            ("demand", self.demand.error()),
            ("cost", self.cost.error()),
            ("carbon", self.carbon.error()),
            ("cooling", self.cooling.error()),
            ("anomalies", self.anomalies.error()),
        ]
        .into_iter()
        .filter_map(|(name, error)| error.map(|e| (name, e)))
        .collect()
    }
}

/// Analyses `window` (Unix ns, end excluded) of the store: energy PUE (its error is
/// the analysis' error), then every other part, each on its own.
pub async fn analyze_range(
    store: &Store,
    subjects: &Subjects,
    config: &AnalyticsConfig,
    window: Range<i64>,
) -> Result<Analysis, AnalyticsError> {
    let pue = energy_pue(store, &subjects.inventory, config, window.clone()).await?;
    let demand =
        Part::from_result(demand(store, &subjects.inventory, config, window.clone()).await);
    let cost = if config.tariffs.is_empty() {
        Part::NotConfigured {
            reason: "no tariff is configured: cost needs an [[analytics.tariff]] table".into(),
        }
    } else {
        Part::from_result(tariff_cost(store, &subjects.inventory, config, window.clone()).await)
    };
    let carbon =
        Part::from_result(carbon_water(store, &subjects.inventory, config, window.clone()).await);
    let cooling = if subjects.cooling.loops.is_empty() {
        Part::NotConfigured {
            reason: "the site has no zone with a CDU".into(),
        }
    } else {
        Part::from_result(cooling_report(store, &subjects.cooling, config, window.clone()).await)
    };
    let anomalies = Part::from_result(
        anomaly::analyze(
            store,
            &subjects.anomalies,
            &config.anomalies,
            window.clone(),
        )
        .await,
    );
    Ok(Analysis {
        window_ns: (window.start, window.end),
        pue,
        demand,
        cost,
        carbon,
        cooling,
        anomalies,
    })
}
