//! Liquid cooling: what the CDUs' samples say about each micro-module's loop. In the
//! data flow it sits beside the energy PUE: store (the CDUs' Modbus points, the rooms'
//! MQTT dew-point or rack-inlet sensors, the rack PDUs' kWh counters, read through
//! [`Store`] as polars frames) -> **cooling** (heat removed, heat capture ratio,
//! heat-exchanger approach and its trend, dew-point margin, facility water against its
//! ASHRAE class) -> a serializable [`CoolingReport`], derived points
//! ([`cooling_points`]) for the store and the alert engine, and the monthly report.
//!
//! # How the numbers are made
//!
//! - **Secondary supply temperature**: the median of the redundant supply sensors
//!   (`secondary_supply_temp_1..3`) that report; with two, their mean if they agree
//!   within `max_sensor_spread_k` (else unknown: which one is right cannot be told);
//!   with one, that one.
//! - **Heat removed** per sample, kW: `Q = rho(Tm) x flow / 60 000 x cp(Tm) x
//!   (T_return - T_supply)`, flow in L/min, properties of the loop's coolant (from the
//!   site: water or PG25; values from [`CoolingConfig`]) at the loop's mean temperature
//!   `Tm`. Energy, kWh: the integral over the covered time ([`series`]: linear between
//!   samples no further apart than `max_sample_gap`, the trapezoidal rule).
//! - **Heat capture ratio** of a micro-module: liquid heat / IT energy over the time
//!   both are known, over the window and per `interval`. IT energy is the rack PDUs'
//!   kWh counters ([`crate::counters`] rules), the IT equipment's own draw: all of it
//!   ends up as heat in the racks. The zone IT meter is not used: it also counts the
//!   distribution losses of the module's power cabinet, heat that never reaches the
//!   cold plates.
//! - **Approach** (secondary supply - primary supply), K: mean, extremes and the
//!   least-squares slope per day over the window (at least `trend_min_span` of
//!   samples). A rising approach at a steady load is fouling of the heat exchanger.
//! - **Dew-point margin** (secondary supply - room dew point), K: the room dew point is
//!   the median of the zone's `dew_point` sensors (or, when the zone has none in the
//!   window, of the dew points of its rack inlets' temperature and humidity, by the
//!   Magnus formula), the latest reading no older than `dew_point_max_age` at each CDU
//!   sample. Minimum, time below `dew_point_warning_k` (2 K) and at or below
//!   `dew_point_critical_k` (0 K: condensation).
//! - **Facility water class**: ASHRAE's W17 / W27 / W32 / W40 / W45 classes bound the
//!   *facility* (primary) water supply temperature, so the CDU's `primary_supply_temp`
//!   is checked against the loop's class limit (`water_class_c` of the site): the
//!   highest value and the time above it. The secondary supply runs warmer by the
//!   approach, by design.
//! - **Coverage** of each result: its covered time / the window. A result that cannot
//!   be computed (no sample, a sensor the CDU never reported, no IT energy) is `None`
//!   with a `reason` naming the CDU and what is missing; never NaN.

pub mod config;
pub mod points;
pub mod series;

use std::collections::HashMap;
use std::ops::Range;

use polars::lazy::dsl::{max_horizontal, min_horizontal, sum_horizontal};
use polars::prelude::*;
use serde::Serialize;
use tidewatch_devices::{Coolant, DeviceKind, ProfileSet, Site};
use tidewatch_storage::store::{Scan, Store};

pub use self::config::{CoolantProperties, CoolingConfig};
pub use self::points::{cooling_points, cooling_points_stamped};
use self::series::{LineFit, Segments, Track};
use crate::anomaly::median;
use crate::config::AnalyticsConfig;
use crate::counters::{intersect_spans, spans_length, CounterSeries};
use crate::error::AnalyticsError;
use crate::inventory::{Inventory, MeterRef};

/// The measurement of the CDUs' points.
pub const CDU_MEASUREMENT: &str = "cdu";
/// The measurement of the rooms' dew-point sensors.
pub const DEW_POINT_MEASUREMENT: &str = "dew_point";
/// The dew-point sensors' field, C.
pub const DEW_POINT_FIELD: &str = "dew_point_c";
/// The measurement of the rack inlet sensors.
pub const RACK_INLET_MEASUREMENT: &str = "rack_inlet";
/// The rack inlet sensors' temperature field, C.
pub const INLET_TEMPERATURE_FIELD: &str = "temperature_c";
/// The rack inlet sensors' relative humidity field, %.
pub const INLET_HUMIDITY_FIELD: &str = "humidity_pct";

/// The CDU's redundant secondary supply temperature sensors, C.
pub const SUPPLY_FIELDS: [&str; 3] = [
    "secondary_supply_temp_1",
    "secondary_supply_temp_2",
    "secondary_supply_temp_3",
];
/// Secondary return temperature, C.
pub const RETURN_FIELD: &str = "secondary_return_temp";
/// Secondary flow, L/min.
pub const FLOW_FIELD: &str = "secondary_flow_lpm";
/// Primary (facility water) supply temperature, C.
pub const PRIMARY_SUPPLY_FIELD: &str = "primary_supply_temp";

/// Magnus coefficients over water (Alduchov and Eskridge 1996), as the simulator's
/// psychrometrics: valid from -40 to 50 C within 0.1 K.
const MAGNUS_A: f64 = 17.625;
const MAGNUS_B: f64 = 243.04;

/// One micro-module's liquid loop: its CDU and what the analysis needs to know of it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CoolingLoop {
    /// The CDU's device id (the `device` tag of its points).
    pub cdu: String,
    /// Its computing centre.
    pub centre: String,
    /// Its micro-module (the `zone` tag of the room sensors).
    pub zone: String,
    /// The secondary loop's coolant.
    pub coolant: Coolant,
    /// The ASHRAE facility water class limit, C: the highest primary supply allowed.
    pub class_limit_c: f64,
    /// The zone's rack PDUs (their kWh counters are the module's IT energy).
    pub it_meters: Vec<MeterRef>,
}

/// Every liquid loop of the park.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CoolingInventory {
    /// The park's id.
    pub park: String,
    /// The loops, in site order.
    pub loops: Vec<CoolingLoop>,
}

impl CoolingInventory {
    /// The loops of a site: each zone with a CDU, its coolant and W-class from the
    /// site, its rack PDUs as the IT meters (with the counter specs of [`Inventory`]).
    pub fn from_site(
        site: &Site,
        profiles: &ProfileSet,
    ) -> Result<CoolingInventory, AnalyticsError> {
        let meters = Inventory::from_site(site, profiles)?.meters;
        let devices = site.devices();
        let mut loops = Vec::new();
        for centre in &site.centres {
            for zone in &centre.zones {
                let Some(spec) = &zone.cdu else {
                    continue;
                };
                let cdu = devices
                    .iter()
                    .find(|d| {
                        d.kind == DeviceKind::Cdu
                            && d.centre == centre.id
                            && d.zone.as_deref() == Some(zone.id.as_str())
                    })
                    .ok_or_else(|| {
                        AnalyticsError::Config(format!(
                            "zone {}/{} has a CDU in the site description but no CDU device",
                            centre.id, zone.id
                        ))
                    })?;
                loops.push(CoolingLoop {
                    cdu: cdu.id.clone(),
                    centre: centre.id.clone(),
                    zone: zone.id.clone(),
                    coolant: spec.coolant,
                    class_limit_c: spec.water_class_c,
                    it_meters: meters
                        .iter()
                        .filter(|m| {
                            m.kind == DeviceKind::RackPdu
                                && m.centre == centre.id
                                && m.zone.as_deref() == Some(zone.id.as_str())
                        })
                        .cloned()
                        .collect(),
                });
            }
        }
        Ok(CoolingInventory {
            park: site.park.id.clone(),
            loops,
        })
    }
}

/// How a CDU sample's room dew point was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DewPointSource {
    /// The zone's dew-point sensors (`dew_point`, field `dew_point_c`).
    DewPointSensor,
    /// The zone's rack inlet temperature and humidity, by the Magnus formula.
    RackInletMagnus,
}

/// One CDU sample with what is derived from it; `None` where an input is missing.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct CduSample {
    /// Unix ns.
    pub time_ns: i64,
    /// Secondary supply, C (the redundant sensors combined).
    pub supply_c: Option<f64>,
    /// Secondary return, C.
    pub return_c: Option<f64>,
    /// Secondary flow, L/min.
    pub flow_lpm: Option<f64>,
    /// Primary (facility water) supply, C.
    pub primary_supply_c: Option<f64>,
    /// Heat removed by the liquid, kW.
    pub heat_kw: Option<f64>,
    /// Secondary supply - primary supply, K.
    pub approach_k: Option<f64>,
    /// The room dew point at the sample, C.
    pub dew_point_c: Option<f64>,
    /// Secondary supply - room dew point, K.
    pub dew_point_margin_k: Option<f64>,
}

/// A CDU's samples over a range, with what was found missing.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CduSamples {
    /// The CDU.
    pub cdu: String,
    /// In time order.
    pub samples: Vec<CduSample>,
    /// Per input field, the number of samples that have it (absent: never reported).
    pub field_counts: Vec<(String, usize)>,
    /// Where the room dew point came from (`None`: no sensor of the zone reported).
    pub dew_point_source: Option<DewPointSource>,
}

/// The heat the liquid removed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HeatRemoved {
    /// Over the covered time, kWh (`None`: nothing covered).
    pub energy_kwh: Option<f64>,
    /// Time-weighted mean, kW.
    pub mean_kw: Option<f64>,
    /// Highest, kW.
    pub max_kw: Option<f64>,
    /// Time-weighted mean secondary delta T, K.
    pub mean_delta_t_k: Option<f64>,
    /// Time-weighted mean secondary flow, L/min.
    pub mean_flow_lpm: Option<f64>,
    /// Covered time / window.
    pub coverage: f64,
    /// CDU samples in the window.
    pub samples: usize,
    /// Samples with supply, return and flow all known.
    pub complete_samples: usize,
    /// Samples the window should hold at the CDU's sampling interval (the median
    /// spacing of its samples); `None` with fewer than two samples.
    pub expected_samples: Option<usize>,
    /// Why `energy_kwh` is `None`.
    pub reason: Option<String>,
}

/// Liquid heat / IT energy over one period.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PeriodCapture {
    /// Start and end (excluded), Unix ns.
    pub window_ns: (i64, i64),
    /// `None` without common covered time or IT energy.
    pub ratio: Option<f64>,
    /// Time both liquid heat and every rack PDU cover / period.
    pub coverage: f64,
    /// Liquid heat over that time, kWh.
    pub liquid_kwh: f64,
    /// IT energy over that time, kWh.
    pub it_kwh: f64,
}

/// The heat capture ratio of a micro-module.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CaptureRatio {
    /// Over the window.
    pub total: PeriodCapture,
    /// Per `interval` from the window's start (the last one cut to the window).
    pub intervals: Vec<PeriodCapture>,
    /// Why `total.ratio` is `None`.
    pub reason: Option<String>,
}

/// The heat exchanger's approach.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Approach {
    /// Time-weighted mean, K.
    pub mean_k: Option<f64>,
    /// Lowest, K.
    pub min_k: Option<f64>,
    /// Highest, K.
    pub max_k: Option<f64>,
    /// Least-squares slope, K per day (rising: fouling).
    pub slope_k_per_day: Option<f64>,
    /// Covered time / window.
    pub coverage: f64,
    /// Why `mean_k` (or the slope) is `None`.
    pub reason: Option<String>,
    /// The least-squares sums behind the slope, so that monthly reports compose into
    /// the trend of a longer range (not part of the report).
    #[serde(skip)]
    pub fit: Option<LineFit>,
}

/// Secondary supply against the room's dew point.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DewPointMargin {
    /// Where the room dew point came from.
    pub source: Option<DewPointSource>,
    /// Lowest margin, K.
    pub min_margin_k: Option<f64>,
    /// Time-weighted mean margin, K.
    pub mean_margin_k: Option<f64>,
    /// The warning threshold, K.
    pub warning_k: f64,
    /// The critical threshold, K.
    pub critical_k: f64,
    /// Covered time with the margin below the warning threshold, s (`None`: nothing
    /// covered).
    pub below_warning_s: Option<f64>,
    /// Covered time with the margin at or below the critical threshold, s.
    pub below_critical_s: Option<f64>,
    /// Covered time / window.
    pub coverage: f64,
    /// Why the margin is `None`.
    pub reason: Option<String>,
}

/// The facility (primary) water supply against the loop's ASHRAE class.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClassLimit {
    /// "W32", "W+", or the limit itself for a value that is no ASHRAE class.
    pub class: String,
    /// The highest facility supply temperature allowed, C.
    pub limit_c: f64,
    /// The highest primary supply seen, C.
    pub max_supply_c: Option<f64>,
    /// Covered time above the limit, s (`None`: nothing covered).
    pub above_s: Option<f64>,
    /// Covered time / window.
    pub coverage: f64,
    /// Why nothing was computed.
    pub reason: Option<String>,
}

/// One loop over the window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LoopCooling {
    /// The CDU.
    pub cdu: String,
    /// Its centre.
    pub centre: String,
    /// Its micro-module.
    pub zone: String,
    /// The coolant whose properties were used.
    pub coolant: Coolant,
    /// Heat removed.
    pub heat: HeatRemoved,
    /// Heat capture ratio of the micro-module.
    pub capture: CaptureRatio,
    /// Heat-exchanger approach.
    pub approach: Approach,
    /// Dew-point margin.
    pub dew_point: DewPointMargin,
    /// Facility water class.
    pub class_limit: ClassLimit,
}

/// The cooling report for a window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CoolingReport {
    /// Start and end (excluded), Unix ns.
    pub window_ns: (i64, i64),
    /// Where IT energy for the capture ratio comes from, in words.
    pub it_source: String,
    /// Per loop, in inventory order.
    pub loops: Vec<LoopCooling>,
}

/// How reports name the IT energy of the capture ratio.
pub const IT_SOURCE_TEXT: &str =
    "rack PDUs' kWh counters (energy at the PDU outputs, drawn by the IT equipment)";

/// The cooling report of every loop of `inventory` over `window` (Unix ns, end
/// excluded), read from the store. See the [module docs](self) for the rules.
pub async fn cooling_report(
    store: &Store,
    inventory: &CoolingInventory,
    config: &AnalyticsConfig,
    window: Range<i64>,
) -> Result<CoolingReport, AnalyticsError> {
    config.validate()?;
    config.cooling.validate()?;
    if window.end <= window.start {
        return Err(AnalyticsError::EmptyRange {
            start_ns: window.start,
            end_ns: window.end,
        });
    }
    let pdus: Vec<&MeterRef> = inventory
        .loops
        .iter()
        .flat_map(|l| l.it_meters.iter())
        .collect();
    let counters = crate::pue::read_counters(store, &pdus, &window, config).await?;
    let mut loops = Vec::with_capacity(inventory.loops.len());
    for lp in &inventory.loops {
        let samples = cdu_samples(
            store,
            lp,
            &config.cooling,
            read_range(&window, &config.cooling),
        )
        .await?;
        loops.push(loop_cooling(
            lp,
            &samples,
            &counters,
            &config.cooling,
            &window,
        ));
    }
    Ok(CoolingReport {
        window_ns: (window.start, window.end),
        it_source: IT_SOURCE_TEXT.into(),
        loops,
    })
}

/// The window widened by the longest gap on both sides: the samples across its edges
/// make the intervals that the edges cut.
fn read_range(window: &Range<i64>, config: &CoolingConfig) -> Range<i64> {
    let margin = duration_ns(config.max_sample_gap);
    window.start.saturating_sub(margin)..window.end.saturating_add(margin + 1)
}

pub(crate) fn duration_ns(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

/// A CDU's samples over `range`, with heat, approach and dew-point margin per sample.
pub async fn cdu_samples(
    store: &Store,
    lp: &CoolingLoop,
    config: &CoolingConfig,
    range: Range<i64>,
) -> Result<CduSamples, AnalyticsError> {
    let mut fields: Vec<&str> = SUPPLY_FIELDS.to_vec();
    fields.extend([RETURN_FIELD, FLOW_FIELD, PRIMARY_SUPPLY_FIELD]);
    let scan = Scan::new(CDU_MEASUREMENT, range.clone())
        .tag("device", lp.cdu.as_str())
        .fields(fields.iter().copied());
    let lazy = store.scan(&scan).await?;
    let props = config.coolant(lp.coolant).clone();
    let spread = config.max_sensor_spread_k;
    let frame = tokio::task::spawn_blocking(move || cdu_frame(lazy, &props, spread))
        .await
        .map_err(|e| frame_error(&lp.cdu, format!("the polars query panicked: {e}")))?
        .map_err(|e| frame_error(&lp.cdu, e.to_string()))?;
    let column = |name: &str| -> Result<Vec<Option<f64>>, AnalyticsError> {
        let c = frame
            .column(name)
            .and_then(|c| c.f64().map(|c| c.iter().collect()))
            .map_err(|e| frame_error(&lp.cdu, e.to_string()))?;
        Ok(c)
    };
    let time: Vec<i64> = frame
        .column("t")
        .and_then(|c| {
            c.i64()
                .map(|c| c.iter().map(|t| t.unwrap_or(i64::MIN)).collect())
        })
        .map_err(|e| frame_error(&lp.cdu, e.to_string()))?;
    let raw: Vec<Vec<Option<f64>>> = fields.iter().map(|f| column(f)).collect::<Result<_, _>>()?;
    let (supply, heat, approach) = (column("supply")?, column("heat_kw")?, column("approach_k")?);
    let field_counts = fields
        .iter()
        .zip(&raw)
        .map(|(f, values)| (f.to_string(), values.iter().flatten().count()))
        .collect();
    let (ret, flow, primary) = (&raw[3], &raw[4], &raw[5]);
    let mut samples: Vec<CduSample> = (0..time.len())
        .filter(|&i| time[i] != i64::MIN)
        .map(|i| CduSample {
            time_ns: time[i],
            supply_c: supply[i],
            return_c: ret[i],
            flow_lpm: flow[i],
            primary_supply_c: primary[i],
            heat_kw: heat[i],
            approach_k: approach[i],
            dew_point_c: None,
            dew_point_margin_k: None,
        })
        .collect();
    samples.dedup_by_key(|s| s.time_ns);
    let age = duration_ns(config.dew_point_max_age);
    let dew_range = range.start.saturating_sub(age)..range.end;
    let (source, sensors) = room_dew_points(store, lp, dew_range).await?;
    pair_dew_points(&mut samples, &sensors, age);
    Ok(CduSamples {
        cdu: lp.cdu.clone(),
        samples,
        field_counts,
        dew_point_source: source,
    })
}

fn frame_error(cdu: &str, message: String) -> AnalyticsError {
    AnalyticsError::Frame {
        context: format!("{CDU_MEASUREMENT} points of {cdu}"),
        message,
    }
}

/// The polars query of one CDU's frame: every input as Float64 (absent columns as
/// nulls, non-finite values as nulls, negative flows as nulls), the combined supply,
/// the heat and the approach per row, sorted by time.
fn cdu_frame(
    mut lazy: LazyFrame,
    props: &CoolantProperties,
    spread: f64,
) -> PolarsResult<DataFrame> {
    let schema = lazy.collect_schema()?;
    let null = || lit(NULL).cast(DataType::Float64);
    let field = |name: &str| {
        if schema.contains(name) {
            let v = col(name).cast(DataType::Float64);
            when(v.clone().is_finite()).then(v).otherwise(null())
        } else {
            null()
        }
    };
    let sensors: Vec<Expr> = SUPPLY_FIELDS.iter().map(|f| field(f)).collect();
    let present = sum_horizontal(
        sensors
            .iter()
            .map(|s| s.clone().is_not_null().cast(DataType::Int32))
            .collect::<Vec<_>>(),
        true,
    )?;
    let total = sum_horizontal(sensors.clone(), true)?;
    let (lo, hi) = (
        min_horizontal(sensors.clone())?,
        max_horizontal(sensors.clone())?,
    );
    // Median of three; the mean of two that agree; a lone sensor as it is.
    let supply = when(present.clone().eq(lit(3)))
        .then(total.clone() - lo.clone() - hi.clone())
        .when(present.clone().eq(lit(2)).and((hi - lo).lt_eq(lit(spread))))
        .then(total.clone() / lit(2.0))
        .when(present.eq(lit(1)))
        .then(total)
        .otherwise(null());
    let ret = field(RETURN_FIELD);
    let flow_raw = field(FLOW_FIELD);
    let flow = when(flow_raw.clone().gt_eq(lit(0.0)))
        .then(flow_raw)
        .otherwise(null());
    let mean_t = (col("supply") + ret.clone()) / lit(2.0);
    let property = |at_ref: f64, per_k: f64| {
        lit(at_ref) + lit(per_k) * (mean_t.clone() - lit(props.reference_c))
    };
    let heat = property(props.density_kg_m3, props.density_per_k) * flow.clone() / lit(60_000.0)
        * property(props.cp_kj_per_kg_k, props.cp_per_k)
        * (ret.clone() - col("supply"));
    let mut columns = vec![col(tidewatch_storage::frame::TIME)
        .cast(DataType::Int64)
        .alias("t")];
    columns.extend(SUPPLY_FIELDS.iter().map(|f| field(f).alias(*f)));
    columns.extend([
        ret.alias(RETURN_FIELD),
        flow.alias(FLOW_FIELD),
        field(PRIMARY_SUPPLY_FIELD).alias(PRIMARY_SUPPLY_FIELD),
        supply.alias("supply"),
    ]);
    lazy.select(columns)
        .with_columns([
            heat.alias("heat_kw"),
            (col("supply") - col(PRIMARY_SUPPLY_FIELD)).alias("approach_k"),
        ])
        .sort(["t"], SortMultipleOptions::default())
        .collect()
}

/// The zone's room dew-point readings per sensor, sorted: the dew-point sensors, or
/// (none of them reporting) the rack inlets through the Magnus formula.
async fn room_dew_points(
    store: &Store,
    lp: &CoolingLoop,
    range: Range<i64>,
) -> Result<(Option<DewPointSource>, Vec<Track>), AnalyticsError> {
    let scan = |measurement: &str, fields: &[&str]| {
        Scan::new(measurement, range.clone())
            .tag("centre", lp.centre.as_str())
            .tag("zone", lp.zone.as_str())
            .fields(fields.iter().copied())
    };
    let frame = store
        .read(&scan(DEW_POINT_MEASUREMENT, &[DEW_POINT_FIELD]))
        .await?;
    let tracks = sensor_tracks(&frame, DEW_POINT_MEASUREMENT, |row| row[0])?;
    if !tracks.is_empty() {
        return Ok((Some(DewPointSource::DewPointSensor), tracks));
    }
    let frame = store
        .read(&scan(
            RACK_INLET_MEASUREMENT,
            &[INLET_TEMPERATURE_FIELD, INLET_HUMIDITY_FIELD],
        ))
        .await?;
    let tracks = sensor_tracks(&frame, RACK_INLET_MEASUREMENT, |row| {
        magnus_dew_point(row[0]?, row[1]?)
    })?;
    Ok((
        (!tracks.is_empty()).then_some(DewPointSource::RackInletMagnus),
        tracks,
    ))
}

/// One track per `sensor` tag of a sensor frame, the value made from the row's fields
/// (in the scan's order) by `value`.
fn sensor_tracks(
    frame: &DataFrame,
    measurement: &str,
    value: impl Fn(&[Option<f64>]) -> Option<f64>,
) -> Result<Vec<Track>, AnalyticsError> {
    let bad = |e: PolarsError| AnalyticsError::Frame {
        context: format!("{measurement} points"),
        message: e.to_string(),
    };
    let fields: Vec<&str> = match measurement {
        DEW_POINT_MEASUREMENT => vec![DEW_POINT_FIELD],
        _ => vec![INLET_TEMPERATURE_FIELD, INLET_HUMIDITY_FIELD],
    };
    // A measurement the store does not know, or points without the tag or a field: no
    // readings, not an error.
    let (Ok(time), Ok(sensor)) = (frame.column("time"), frame.column("sensor")) else {
        return Ok(Vec::new());
    };
    let time = time.cast(&DataType::Int64).map_err(bad)?;
    let time = time.i64().map_err(bad)?;
    let sensor = sensor.str().map_err(bad)?;
    let mut columns = Vec::new();
    for f in &fields {
        let Ok(c) = frame.column(f) else {
            return Ok(Vec::new());
        };
        columns.push(c.cast(&DataType::Float64).map_err(bad)?);
    }
    let columns: Vec<&Float64Chunked> = columns
        .iter()
        .map(|c| c.f64())
        .collect::<Result<_, _>>()
        .map_err(bad)?;
    let mut pairs: HashMap<&str, Vec<(i64, Option<f64>)>> = HashMap::new();
    let mut row = vec![None; columns.len()];
    for i in 0..frame.height() {
        let (Some(t), Some(s)) = (time.get(i), sensor.get(i)) else {
            continue;
        };
        for (slot, c) in row.iter_mut().zip(&columns) {
            *slot = c.get(i).filter(|v| v.is_finite());
        }
        pairs.entry(s).or_default().push((t, value(&row)));
    }
    let mut names: Vec<&str> = pairs.keys().copied().collect();
    names.sort_unstable();
    Ok(names
        .into_iter()
        .filter_map(|n| pairs.remove(n))
        .map(Track::from_pairs)
        .filter(|t| !t.t.is_empty())
        .collect())
}

/// Dew point, C, of air at `t` C and `rh` % relative humidity (Magnus); `None` for a
/// humidity outside (0, 100] (a sensor reading up to 102 % is taken as saturated).
pub fn magnus_dew_point(t: f64, rh: f64) -> Option<f64> {
    if !(rh > 0.0 && rh <= 102.0 && (-40.0..=60.0).contains(&t)) {
        return None;
    }
    let gamma = (rh.min(100.0) / 100.0).ln() + MAGNUS_A * t / (MAGNUS_B + t);
    Some(MAGNUS_B * gamma / (MAGNUS_A - gamma)).filter(|d| d.is_finite())
}

/// Gives each sample the room dew point: the median over the sensors of each one's
/// latest reading at or before the sample, no older than `max_age_ns`.
fn pair_dew_points(samples: &mut [CduSample], sensors: &[Track], max_age_ns: i64) {
    let mut next = vec![0usize; sensors.len()];
    let mut current = Vec::with_capacity(sensors.len());
    for s in samples.iter_mut() {
        current.clear();
        for (k, track) in sensors.iter().enumerate() {
            while next[k] < track.t.len() && track.t[next[k]] <= s.time_ns {
                next[k] += 1;
            }
            if next[k] > 0 && s.time_ns - track.t[next[k] - 1] <= max_age_ns {
                current.push(track.v[next[k] - 1]);
            }
        }
        s.dew_point_c = median(&mut current);
        s.dew_point_margin_k = s.supply_c.zip(s.dew_point_c).map(|(sup, dp)| sup - dp);
    }
}

/// The ASHRAE facility water class of a limit: "W32" for 32 C, "W+" above 45 C.
pub fn water_class_name(limit_c: f64) -> String {
    match limit_c {
        l if [17.0, 27.0, 32.0, 40.0, 45.0].contains(&l) => format!("W{l}"),
        l if l > 45.0 => "W+".into(),
        l => format!("{l} C"),
    }
}

/// The report of one loop from its samples and the PDUs' counters (no store involved).
pub fn loop_cooling(
    lp: &CoolingLoop,
    data: &CduSamples,
    counters: &HashMap<String, CounterSeries>,
    config: &CoolingConfig,
    window: &Range<i64>,
) -> LoopCooling {
    let gap = duration_ns(config.max_sample_gap);
    let length = (window.end - window.start) as f64;
    let track = |f: fn(&CduSample) -> Option<f64>| {
        Track::from_pairs(data.samples.iter().map(|s| (s.time_ns, f(s))))
    };
    let in_window = data
        .samples
        .iter()
        .filter(|s| window.contains(&s.time_ns))
        .count();
    let why = Why {
        cdu: &lp.cdu,
        data,
        in_window,
        gap: config.max_sample_gap,
    };
    let count = |name: &str| {
        data.field_counts
            .iter()
            .find(|(f, _)| f == name)
            .map_or(0, |(_, n)| *n)
    };

    // Heat.
    let heat_track = track(|s| s.heat_kw);
    let heat = heat_track.segments(window, gap);
    let coverage = heat.covered_ns() as f64 / length;
    let delta_t = track(|s| {
        s.heat_kw
            .and(s.return_c.zip(s.supply_c).map(|(r, s)| r - s))
    })
    .segments(window, gap);
    let flow = track(|s| s.heat_kw.and(s.flow_lpm)).segments(window, gap);
    let heat_report = HeatRemoved {
        energy_kwh: (heat.covered_ns() > 0).then(|| heat.integral_hours()),
        mean_kw: heat.mean(),
        max_kw: heat.max(),
        mean_delta_t_k: delta_t.mean(),
        mean_flow_lpm: flow.mean(),
        coverage,
        samples: in_window,
        complete_samples: heat_track.count_within(window),
        expected_samples: expected_samples(&data.samples, window),
        reason: why.none(
            &heat,
            &[
                ("secondary supply temperature", supply_count(data)),
                (RETURN_FIELD, count(RETURN_FIELD)),
                (FLOW_FIELD, count(FLOW_FIELD)),
            ],
            "supply, return and flow together",
        ),
    };

    // Capture ratio.
    let capture = capture_ratio(
        lp,
        &heat,
        heat_report.reason.as_deref(),
        counters,
        config,
        window,
    );

    // Approach.
    let approach_track = track(|s| s.approach_k);
    let approach = approach_track.segments(window, gap);
    let approach_reason = why.none(
        &approach,
        &[
            ("secondary supply temperature", supply_count(data)),
            (PRIMARY_SUPPLY_FIELD, count(PRIMARY_SUPPLY_FIELD)),
        ],
        "secondary and primary supply together",
    );
    let fit = approach_track.line_fit(window);
    let slope = fit.and_then(|f| f.slope_per_day(duration_ns(config.trend_min_span)));
    let approach_report = Approach {
        mean_k: approach.mean(),
        min_k: approach.min(),
        max_k: approach.max(),
        slope_k_per_day: slope,
        coverage: approach.covered_ns() as f64 / length,
        fit,
        reason: approach_reason.or_else(|| slope.is_none().then(|| no_trend(&lp.cdu, config))),
    };

    // Dew-point margin.
    let margin = track(|s| s.dew_point_margin_k).segments(window, gap);
    let dew_count = data
        .samples
        .iter()
        .filter(|s| s.dew_point_c.is_some())
        .count();
    let covered = margin.covered_ns() > 0;
    let dew_reason = match data.dew_point_source {
        None if !covered => Some(format!(
            "{}: no dew_point or rack_inlet sensor of {}/{} reported in the range",
            lp.cdu, lp.centre, lp.zone
        )),
        _ => why.none(
            &margin,
            &[
                ("secondary supply temperature", supply_count(data)),
                ("room dew point (within dew_point_max_age)", dew_count),
            ],
            "a supply temperature and a room dew point together",
        ),
    };
    let dew_report = DewPointMargin {
        source: data.dew_point_source,
        min_margin_k: margin.min(),
        mean_margin_k: margin.mean(),
        warning_k: config.dew_point_warning_k,
        critical_k: config.dew_point_critical_k,
        below_warning_s: covered
            .then(|| seconds(margin.time_below_ns(config.dew_point_warning_k, false))),
        below_critical_s: covered
            .then(|| seconds(margin.time_below_ns(config.dew_point_critical_k, true))),
        coverage: margin.covered_ns() as f64 / length,
        reason: dew_reason,
    };

    // Facility water class.
    let primary = track(|s| s.primary_supply_c).segments(window, gap);
    let class_report = ClassLimit {
        class: water_class_name(lp.class_limit_c),
        limit_c: lp.class_limit_c,
        max_supply_c: primary.max(),
        above_s: (primary.covered_ns() > 0)
            .then(|| seconds(primary.time_above_ns(lp.class_limit_c))),
        coverage: primary.covered_ns() as f64 / length,
        reason: why.none(
            &primary,
            &[(PRIMARY_SUPPLY_FIELD, count(PRIMARY_SUPPLY_FIELD))],
            "a primary supply temperature",
        ),
    };

    LoopCooling {
        cdu: lp.cdu.clone(),
        centre: lp.centre.clone(),
        zone: lp.zone.clone(),
        coolant: lp.coolant,
        heat: heat_report,
        capture,
        approach: approach_report,
        dew_point: dew_report,
        class_limit: class_report,
    }
}

/// Why a loop with approach samples has no approach trend.
pub(crate) fn no_trend(cdu: &str, config: &CoolingConfig) -> String {
    format!(
        "{cdu}: approach samples span less than trend_min_span ({}): no trend",
        tidewatch_devices::format_duration(config.trend_min_span)
    )
}

fn seconds(ns: i64) -> f64 {
    ns as f64 / 1e9
}

/// Samples with a combined supply temperature.
fn supply_count(data: &CduSamples) -> usize {
    data.samples.iter().filter(|s| s.supply_c.is_some()).count()
}

/// The window length over the median spacing of the samples.
fn expected_samples(samples: &[CduSample], window: &Range<i64>) -> Option<usize> {
    let mut spacing: Vec<f64> = samples
        .windows(2)
        .map(|w| (w[1].time_ns - w[0].time_ns) as f64)
        .filter(|d| *d > 0.0)
        .collect();
    let step = median(&mut spacing)?;
    Some(((window.end - window.start) as f64 / step).round() as usize)
}

/// Why a result could not be computed, named after the CDU and what it lacks.
struct Why<'a> {
    cdu: &'a str,
    data: &'a CduSamples,
    in_window: usize,
    gap: std::time::Duration,
}

impl Why<'_> {
    /// `None` when `segments` cover something; else the first cause found: no points,
    /// an input never reported, inputs never together, samples too far apart.
    fn none(
        &self,
        segments: &Segments,
        inputs: &[(&str, usize)],
        together: &str,
    ) -> Option<String> {
        if segments.covered_ns() > 0 {
            return None;
        }
        let cdu = self.cdu;
        if self.data.samples.is_empty() || self.in_window == 0 {
            return Some(format!("{cdu}: no {CDU_MEASUREMENT} points in the range"));
        }
        if let Some((name, _)) = inputs.iter().find(|(_, n)| *n == 0) {
            let hint = if name.starts_with("secondary supply") {
                self.supply_hint()
            } else {
                String::new()
            };
            return Some(format!("{cdu}: no {name} in the range{hint}"));
        }
        Some(format!(
            "{cdu}: no two samples with {together} within max_sample_gap ({}) of each other",
            tidewatch_devices::format_duration(self.gap)
        ))
    }

    /// Why no supply temperature could be formed although the CDU reported samples.
    fn supply_hint(&self) -> String {
        let reported: Vec<&str> = self
            .data
            .field_counts
            .iter()
            .filter(|(f, n)| SUPPLY_FIELDS.contains(&f.as_str()) && *n > 0)
            .map(|(f, _)| f.as_str())
            .collect();
        if reported.is_empty() {
            format!(" (none of {} reported)", SUPPLY_FIELDS.join(", "))
        } else {
            format!(
                " ({} reported, but never agreeing within max_sensor_spread_k)",
                reported.join(" and ")
            )
        }
    }
}

/// Liquid heat / IT energy over the time both cover, for the window and each interval.
fn capture_ratio(
    lp: &CoolingLoop,
    heat: &Segments,
    heat_reason: Option<&str>,
    counters: &HashMap<String, CounterSeries>,
    config: &CoolingConfig,
    window: &Range<i64>,
) -> CaptureRatio {
    let empty = CounterSeries::default();
    let series: Vec<&CounterSeries> = lp
        .it_meters
        .iter()
        .map(|m| counters.get(&m.id).unwrap_or(&empty))
        .collect();
    let period = |w: Range<i64>| {
        let mut spans = intersect_spans(&heat.spans(), std::slice::from_ref(&w));
        for s in &series {
            if spans.is_empty() {
                break;
            }
            spans = intersect_spans(&spans, &s.covered_spans(&w));
        }
        if series.is_empty() {
            spans.clear();
        }
        let covered = spans_length(&spans);
        let liquid_kwh = heat.within(&spans).integral_hours();
        let it_kwh: f64 = series.iter().map(|s| s.energy_within(&spans)).sum();
        PeriodCapture {
            window_ns: (w.start, w.end),
            ratio: (covered > 0 && it_kwh > 0.0)
                .then(|| liquid_kwh / it_kwh)
                .filter(|r| r.is_finite()),
            coverage: covered as f64 / (w.end - w.start) as f64,
            liquid_kwh,
            it_kwh,
        }
    };
    let total = period(window.clone());
    let step = duration_ns(config.interval);
    let mut intervals = Vec::new();
    let mut start = window.start;
    while start < window.end {
        let end = start.saturating_add(step).min(window.end);
        intervals.push(period(start..end));
        start = end;
    }
    let reason = if total.ratio.is_some() {
        None
    } else if let Some(r) = heat_reason {
        Some(format!("no liquid heat: {r}"))
    } else if lp.it_meters.is_empty() {
        Some(format!(
            "{}/{}: no rack PDU in the inventory: no IT energy",
            lp.centre, lp.zone
        ))
    } else if total.coverage == 0.0 {
        Some(format!(
            "{}/{}: no time in the range when the liquid heat and every rack PDU's kWh counter ({} PDUs) are all known",
            lp.centre,
            lp.zone,
            lp.it_meters.len()
        ))
    } else {
        Some(format!(
            "{}/{}: the rack PDUs counted no IT energy",
            lp.centre, lp.zone
        ))
    };
    CaptureRatio {
        total,
        intervals,
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magnus_agrees_with_tables() {
        // 25 C at 50 % RH: dew point 13.9 C; 30 C at 70 %: 23.9 C (psychrometric tables).
        assert!((magnus_dew_point(25.0, 50.0).unwrap() - 13.9).abs() < 0.1);
        assert!((magnus_dew_point(30.0, 70.0).unwrap() - 23.9).abs() < 0.1);
        assert!((magnus_dew_point(20.0, 100.0).unwrap() - 20.0).abs() < 1e-9);
        assert_eq!(magnus_dew_point(20.0, 0.0), None);
        assert_eq!(magnus_dew_point(20.0, f64::NAN), None);
    }

    #[test]
    fn class_names() {
        assert_eq!(water_class_name(32.0), "W32");
        assert_eq!(water_class_name(50.0), "W+");
        assert_eq!(water_class_name(30.0), "30 C");
    }

    #[test]
    fn dew_points_pair_with_the_latest_fresh_reading() {
        let s = |t| CduSample {
            time_ns: t,
            supply_c: Some(36.0),
            return_c: None,
            flow_lpm: None,
            primary_supply_c: None,
            heat_kw: None,
            approach_k: None,
            dew_point_c: None,
            dew_point_margin_k: None,
        };
        let mut samples = vec![s(10), s(20), s(100)];
        let a = Track::from_pairs([(5, Some(10.0)), (15, Some(12.0))]);
        let b = Track::from_pairs([(0, Some(14.0))]);
        pair_dew_points(&mut samples, &[a, b], 30);
        // At 10: median of 10 and 14; at 20: of 12 and 14; at 100: both too old.
        assert_eq!(samples[0].dew_point_c, Some(12.0));
        assert_eq!(samples[1].dew_point_margin_k, Some(36.0 - 13.0));
        assert_eq!(samples[2].dew_point_c, None);
    }
}
