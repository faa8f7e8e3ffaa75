//! Analytics: what the stored telemetry means for energy. In the data flow it sits
//! after the store and before everything that judges or reports:
//! store (embedded Parquet or InfluxDB, read through [`tidewatch_storage::store::Store`]
//! as polars frames) -> **analytics** (energy from kWh counters, energy PUE and its
//! split, cost, peak demand, CO2/CUE/WUE) -> derived measurements written back to the store, the alert engine, and
//! the monthly energy report. It never talks to devices and never writes raw points.
//!
//! - [`counters`]: energy per meter from cumulative kWh counters, surviving resets,
//!   32-bit rollovers, zeros written during outages, spikes and gaps; coverage and
//!   typed events instead of silent numbers.
//! - [`pue`]: energy PUE per centre and for the park with its category, daily and
//!   monthly trend, pPUE per micro-module, the split IT / cooling / power losses /
//!   other with CLF and PLF, and the GB 40879 grades and policy targets.
//! - [`tariff`]: cost by time-of-use period (critical peak, peak, flat, valley, deep
//!   valley) from a tariff table in configuration, per centre and for the park.
//! - [`demand`]: peak demand over a demand interval and when, from the counters; the
//!   instantaneous (category 0) PUE from the meters' kW readings.
//! - [`carbon`]: CO2 and CUE from the grid emission factor, WUE where water is metered.
//! - [`anomaly`]: thermal anomalies of the liquid loops, racks and PDUs: domain.md's
//!   alarm rules, robust statistics, stuck and disagreeing sensors, heat balance,
//!   fouling; each anomaly with a sentence in English and Chinese.
//! - [`inventory`]: which counters the site has and what they measure.
//! - [`cooling`]: per liquid loop, heat removed, heat capture ratio, heat-exchanger
//!   approach and its trend, dew-point margin and the facility water class.
//! - [`analysis`]: all of the above over one time range, each part on its own: what
//!   `tidewatch analyze` reports and the periodic job writes back and publishes.
//! - [`compose`]: the analysis of several months from the analyses of each month,
//!   exactly, without holding the whole range's telemetry in memory.
//! - [`config`]: every threshold, with the defaults of the domain reference.
//! - [`derived`]: the results as points, written back to the store.
//! - [`job`]: the periodic job (every minute over a trailing window) inside a
//!   long-running process, publishing each result in process.
//!
//! # Example
//!
//! ```
//! use tidewatch_analytics::counters::{CounterRules, CounterSeries, CounterSpec, Reading};
//!
//! const M5: i64 = 300_000_000_000; // 5 minutes, in ns
//! // A uint32 Wh counter near its top, read every 5 minutes: it wraps between readings.
//! let readings = [
//!     Reading { time_ns: 0, kwh: 4_294_900.0 },
//!     Reading { time_ns: M5, kwh: 4_294_950.0 },
//!     Reading { time_ns: 2 * M5, kwh: 32.704 },
//! ];
//! let spec = CounterSpec::register(32, 0.001).rated(1000.0); // a 1 MW feed
//! let series = CounterSeries::from_readings(&readings, &spec, &CounterRules::default());
//! let energy = series.energy("dc2-mm03-meter-cooling", 0..2 * M5);
//! assert!((energy.energy_kwh - 100.0).abs() < 1e-6);
//! assert_eq!(energy.coverage, 1.0);
//! assert_eq!(energy.events.len(), 1); // the rollover, reported
//! ```

pub mod analysis;
pub mod anomaly;
pub mod carbon;
pub mod compose;
pub mod config;
pub mod cooling;
pub mod counters;
pub mod demand;
pub mod derived;
mod error;
pub mod inventory;
pub mod job;
pub mod pue;
pub mod tariff;

pub use analysis::{analyze_range, Analysis, Part, Subjects};
pub use carbon::{carbon_water, CarbonConfig, CarbonReport, WaterConfig, WaterMeter};
pub use compose::compose_months;
pub use config::{AnalyticsConfig, ItSource, PueCategory, PueConfig};
pub use demand::{demand, DemandConfig, DemandReport};
pub use error::AnalyticsError;
pub use inventory::{Inventory, MeterRef};
pub use pue::{energy_pue, pue_trend, PueReport, PueTrend};
pub use tariff::{tariff_cost, CostReport, Tariff, TariffRow, TariffTable, TouPeriod};
