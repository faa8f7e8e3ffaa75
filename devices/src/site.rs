//! The site description: the park, its computing centres, their zones (micro-modules
//! and air-cooled rows), and the devices and sensors in them.
//!
//! The TOML file is written compactly (a zone says "12 racks, PDU model X"); [`Site`]
//! holds it as written, and [`Site::devices`] / [`Site::sensors`] expand it into the
//! flat inventory with stable ids that the simulator serves and the collectors poll.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::ConfigError;
use crate::load::Keyword;
use crate::profile::{DeviceKind, ProfileSet};

/// Cooling technology of a centre or zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CoolingKind {
    /// Cold-plate liquid cooling through a CDU, the remainder by air.
    Liquid,
    /// Air only, by in-row cooling units fed with chilled water.
    Air,
}

/// The coolant in a CDU's secondary loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Coolant {
    Water,
    /// 25 % propylene glycol.
    Pg25,
}

/// What power flow a facility meter measures; decides its place in the energy split.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MeterRole {
    /// The centre's incoming supply (transformer primary): total facility energy.
    Incoming,
    /// UPS input.
    UpsInput,
    /// UPS output (IT energy, PUE category 1).
    UpsOutput,
    /// Chillers (compressor cooling).
    Chiller,
    /// Dry coolers of the liquid loop (free cooling).
    DryCooler,
    /// Cooling towers.
    CoolingTower,
    /// Chilled and condenser water pumps.
    ChwPumps,
    /// Lighting.
    Lighting,
    /// Offices, security and other loads.
    Other,
    /// A zone's IT feed (the micro-module's power cabinet output to its PDUs).
    ZoneIt,
    /// A zone's own cooling (CDU pumps and in-row units).
    ZoneCooling,
}

/// How a sensor's MQTT payload is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PayloadFormat {
    /// A JSON object with a `ts` (milliseconds since the epoch) and one key per value.
    Json,
    /// One line of InfluxDB line protocol.
    LineProtocol,
    /// The value alone as a decimal number.
    Number,
}

/// What an MQTT sensor measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SensorKind {
    /// Rack inlet air temperature (C) and relative humidity (%).
    RackInlet,
    /// A leak detection rope: 0 dry, 1 wet.
    Leak,
    /// Room dew point (C) of the zone's room.
    DewPoint,
}

/// The park as a whole.
#[derive(Debug, Clone, PartialEq)]
pub struct Park {
    pub id: String,
    pub name: String,
    /// Offset of local time from UTC, hours (Qingdao: 8).
    pub utc_offset_hours: i32,
}

/// Outdoor climate model parameters (dry bulb, C). Defaults are Qingdao's normals.
#[derive(Debug, Clone, PartialEq)]
pub struct Climate {
    pub annual_mean_c: f64,
    /// Half the difference between the warmest and coldest monthly means.
    pub seasonal_amplitude_c: f64,
    /// Day of the year (1-366) with the lowest mean temperature.
    pub coldest_day_of_year: u16,
    /// Half the typical day-night swing.
    pub daily_amplitude_c: f64,
    /// Amplitude of the day-to-day weather variation.
    pub weather_amplitude_c: f64,
    /// Mean relative humidity in winter and in summer (%), for wet-bulb estimates.
    pub humidity_winter_pct: f64,
    pub humidity_summer_pct: f64,
}

/// Simulation settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Simulation {
    pub seed: u64,
    /// Simulated start time, seconds since the Unix epoch (UTC).
    pub start_unix: i64,
    /// Model time step.
    pub step: Duration,
    /// MQTT topic prefix (`<prefix>/<centre>/<zone>/...`).
    pub topic_prefix: String,
    /// How often each MQTT sensor publishes (`sensor_interval`, default 10 s).
    pub sensor_interval: Duration,
}

/// A CDU of a liquid-cooled zone.
#[derive(Debug, Clone, PartialEq)]
pub struct CduSpec {
    pub profile: String,
    pub coolant: Coolant,
    /// Share of the IT heat carried away by the liquid (0..1).
    pub capture_ratio: f64,
    /// Secondary supply temperature setpoint, C.
    pub supply_setpoint_c: f64,
    /// Secondary flow setpoint per kW of rated zone IT load, L/min.
    pub flow_per_kw_lpm: f64,
    /// Number of pumps in parallel.
    pub pumps: u8,
    /// Share of the design flow one pump delivers at full speed.
    pub pump_capacity_share: f64,
    /// Shaft power of one pump at full speed, kW.
    pub pump_rated_kw: f64,
    /// ASHRAE facility water class limit (W32 = 32): highest primary supply, C.
    pub water_class_c: f64,
    /// Heat-exchanger approach when clean, K.
    pub approach_k: f64,
    /// Redundant secondary supply temperature sensors fitted (1..=3); the registers of
    /// the ones not fitted read the profile's "not available" sentinel.
    pub supply_sensors: u8,
}

/// A zone: a liquid-cooled micro-module or an air-cooled row.
#[derive(Debug, Clone, PartialEq)]
pub struct Zone {
    pub id: String,
    pub name: String,
    pub cooling: CoolingKind,
    pub racks: u16,
    /// Rated IT power per rack, kW.
    pub rack_kw: f64,
    /// Profile of the rack PDUs (two per rack, feeds A and B).
    pub pdu_profile: String,
    /// Whether the PDUs are reached through one gateway address with a unit id each.
    pub pdus_behind_gateway: bool,
    /// The rack PDUs' circuit breaker rating per phase, A.
    pub pdu_breaker_a: f64,
    pub cdu: Option<CduSpec>,
    pub inrow_units: u8,
    pub inrow_profile: Option<String>,
    pub it_meter_profile: String,
    pub cooling_meter_profile: Option<String>,
    /// Initial reading of the zone cooling meter, kWh (to place a 32-bit rollover).
    pub cooling_meter_initial_kwh: f64,
    /// Utilisation of the racks with no job running (0..1).
    pub idle_utilisation: f64,
    /// Utilisation while an AI training job runs (0..1).
    pub job_utilisation: f64,
    /// Share of time a training job runs.
    pub job_duty: f64,
}

/// A facility meter of a centre.
#[derive(Debug, Clone, PartialEq)]
pub struct MeterSpec {
    pub id: String,
    pub role: MeterRole,
    pub profile: String,
    pub initial_kwh: f64,
}

/// Electrical parameters of a centre.
#[derive(Debug, Clone, PartialEq)]
pub struct Electrical {
    pub transformer_kva: f64,
    pub transformer_no_load_kw: f64,
    pub transformer_load_loss_kw: f64,
    pub ups_kva: f64,
    /// UPS losses = no-load + proportional * P + square * P^2 / rating (kW).
    pub ups_no_load_kw: f64,
    pub ups_proportional_loss: f64,
    pub ups_square_loss: f64,
    /// Losses in distribution between UPS output and PDUs, share of the load.
    pub distribution_loss: f64,
    pub lighting_kw: f64,
    pub other_kw: f64,
}

/// The cooling plant of a centre.
#[derive(Debug, Clone, PartialEq)]
pub struct Plant {
    /// Primary (facility) water supply setpoint for the liquid loops, C.
    pub facility_water_setpoint_c: f64,
    /// Dry cooler approach to outdoor dry bulb, K.
    pub dry_cooler_approach_k: f64,
    /// Dry cooler fan power at design heat and full speed, kW per kW of heat.
    pub dry_cooler_kw_per_kw: f64,
    /// Chilled water supply for the air side, C.
    pub chilled_water_c: f64,
    /// Chiller COP at 35 C outdoor; rises as it gets colder.
    pub chiller_cop_design: f64,
    /// Water-side economiser fully effective below this outdoor wet bulb, C.
    pub free_cooling_wet_bulb_c: f64,
    /// Chilled/condenser water pump power per kW of heat, kW.
    pub pump_kw_per_kw: f64,
    /// Cooling tower fan power per kW of heat rejected, kW.
    pub tower_kw_per_kw: f64,
}

/// A computing centre.
#[derive(Debug, Clone, PartialEq)]
pub struct Centre {
    pub id: String,
    pub name: String,
    pub electrical: Electrical,
    pub plant: Plant,
    pub meters: Vec<MeterSpec>,
    pub zones: Vec<Zone>,
}

/// A fault to inject at a given simulated time.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultSpec {
    pub kind: FaultKind,
    /// The device (or sensor) id the fault acts on.
    pub target: String,
    /// Start, seconds after the simulation start.
    pub start_offset: Duration,
    /// How long it lasts; `None` = until the end.
    pub duration: Option<Duration>,
    /// Kind-specific magnitude (see [`FaultKind`]); the kind's default when not set.
    pub magnitude: Option<f64>,
    /// For sensor faults: which field of the device (e.g. `secondary_supply_temp_1`).
    pub field: Option<String>,
    /// Line of the site file's `[[fault]]`; 0 for a fault given on the command line.
    pub line: usize,
}

impl FaultSpec {
    /// A fault as given on the command line (`tidewatch simulate --fault`): the keys of
    /// the site file's `[[fault]]` as `key=value` pairs separated by commas, e.g.
    /// `kind=drifting_sensor,target=dc2-mm03-cdu,field=secondary_supply_temp_1,at=2h,duration=1h,magnitude=8`.
    /// `at` (default 0s) is the offset from the start of the run. Whether the target
    /// exists and takes this kind of fault is the plant's to check.
    pub fn from_arg(text: &str) -> Result<FaultSpec, String> {
        const KEYS: &str = "kind, target, at, duration, magnitude, field";
        let mut kind = None;
        let mut target = None;
        let mut spec = FaultSpec {
            kind: FaultKind::PumpFailure,
            target: String::new(),
            start_offset: Duration::ZERO,
            duration: None,
            magnitude: None,
            field: None,
            line: 0,
        };
        for pair in text.split(',') {
            let Some((key, value)) = pair.split_once('=') else {
                return Err(format!(
                    "\"{pair}\" is not key=value (keys: {KEYS}; e.g. \
                     kind=pump_failure,target=dc2-mm01-cdu,at=2h,duration=1h)"
                ));
            };
            let (key, value) = (key.trim(), value.trim());
            let duration =
                || crate::duration::parse_duration(value).map_err(|e| format!("{key}: {e}"));
            match key {
                "kind" => {
                    let found = FaultKind::ALL.iter().find(|k| k.as_str() == value);
                    kind = Some(*found.ok_or_else(|| {
                        let all: Vec<&str> = FaultKind::ALL.iter().map(|k| k.as_str()).collect();
                        format!(
                            "kind: unknown fault kind \"{value}\" (one of {})",
                            all.join(", ")
                        )
                    })?);
                }
                "target" if !value.is_empty() => target = Some(value.to_owned()),
                "at" => spec.start_offset = duration()?,
                "duration" => spec.duration = Some(duration()?),
                "magnitude" => {
                    let m: f64 = value
                        .parse()
                        .ok()
                        .filter(|m: &f64| m.is_finite())
                        .ok_or_else(|| format!("magnitude: \"{value}\" is not a number"))?;
                    spec.magnitude = Some(m);
                }
                "field" if !value.is_empty() => spec.field = Some(value.to_owned()),
                "target" | "field" => return Err(format!("{key} is empty")),
                _ => return Err(format!("unknown key \"{key}\" (keys: {KEYS})")),
            }
        }
        spec.kind = kind.ok_or("kind is missing (e.g. kind=pump_failure)")?;
        spec.target =
            target.ok_or("target is missing (a device or sensor id, e.g. target=dc2-mm01-cdu)")?;
        // The site file's rules for `[[fault]]`, so both ways of giving a fault agree.
        match (spec.kind.needs_field(), &spec.field) {
            (true, None) => {
                return Err(format!(
                    "a {} fault needs field (e.g. field=temperature_c)",
                    spec.kind
                ))
            }
            (false, Some(_)) => {
                return Err(format!(
                    "field only applies to stuck_sensor and drifting_sensor, not to {}",
                    spec.kind
                ))
            }
            _ => {}
        }
        if spec.duration.is_some_and(|d| d.is_zero()) {
            return Err("duration must be longer than zero".into());
        }
        Ok(spec)
    }
}

/// The faults the simulator can inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// A CDU pump trips (magnitude: pump number, default 1).
    PumpFailure,
    /// Partial flow blockage / dirty filter (magnitude: added resistance factor, default 4).
    FlowBlockage,
    /// Coolant leak (magnitude: litres per minute, default 2): leak sensor wet,
    /// pressure and level falling.
    CoolantLeak,
    /// A sensor keeps its last value (needs `field`).
    StuckSensor,
    /// A sensor drifts (magnitude: units per hour, default 2; needs `field`).
    DriftingSensor,
    /// Room dew point rises towards the supply temperature (magnitude: target dew point C).
    CondensationRisk,
    /// A PDU phase draws too much current (magnitude: share of the breaker, default 0.95).
    PhaseOverload,
    /// A meter's counter is reset to zero.
    MeterReset,
    /// The device stops answering Modbus requests.
    DeviceSilent,
    /// The device answers after a delay (magnitude: seconds, default 3).
    DeviceLate,
    /// The device answers with exception 6, server device busy.
    DeviceBusy,
}

impl FaultKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FaultKind::PumpFailure => "pump_failure",
            FaultKind::FlowBlockage => "flow_blockage",
            FaultKind::CoolantLeak => "coolant_leak",
            FaultKind::StuckSensor => "stuck_sensor",
            FaultKind::DriftingSensor => "drifting_sensor",
            FaultKind::CondensationRisk => "condensation_risk",
            FaultKind::PhaseOverload => "phase_overload",
            FaultKind::MeterReset => "meter_reset",
            FaultKind::DeviceSilent => "device_silent",
            FaultKind::DeviceLate => "device_late",
            FaultKind::DeviceBusy => "device_busy",
        }
    }
}

/// A whole site file, as written.
#[derive(Debug, Clone, PartialEq)]
pub struct Site {
    pub park: Park,
    pub climate: Climate,
    pub simulation: Simulation,
    pub centres: Vec<Centre>,
    pub faults: Vec<FaultSpec>,
    /// The file this site was read from.
    pub path: PathBuf,
}

/// One Modbus device of the expanded inventory.
#[derive(Debug, Clone, PartialEq)]
pub struct Device {
    /// Stable id, e.g. `dc2-mm03-r07-pdu-a`, `dc2-mm03-cdu`, `dc1-incoming`.
    pub id: String,
    pub profile: String,
    pub kind: DeviceKind,
    pub centre: String,
    pub zone: Option<String>,
    /// 1-based rack number inside the zone, for PDUs.
    pub rack: Option<u16>,
    /// 'a' or 'b' for PDUs.
    pub feed: Option<char>,
    /// 1-based in-row unit number, for in-row units.
    pub unit_number: Option<u8>,
    pub role: Option<MeterRole>,
    /// Id of the gateway this device sits behind (devices sharing a gateway share one
    /// TCP endpoint and differ by unit id).
    pub gateway: Option<String>,
    pub unit_id: u8,
    pub initial_kwh: f64,
}

/// One MQTT sensor of the expanded inventory.
#[derive(Debug, Clone, PartialEq)]
pub struct Sensor {
    /// Stable id, e.g. `dc2-mm03-r07-inlet`, `dc2-mm03-leak-cdu`.
    pub id: String,
    pub kind: SensorKind,
    pub centre: String,
    pub zone: String,
    pub rack: Option<u16>,
    /// Full topic, e.g. `tidewatch/qingdao/dc2/mm03/r07/inlet`.
    pub topic: String,
    pub payload: PayloadFormat,
    pub interval: Duration,
}

// ---------------------------------------------------------------------------------------
// Keywords: how each enumeration is written in the site file and in messages.

macro_rules! keyword {
    ($ty:ty, $what:literal, [$($variant:ident => $name:literal),+ $(,)?]) => {
        impl $ty {
            /// The name used in the site file, tags and messages.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(<$ty>::$variant => $name,)+
                }
            }
        }
        impl Keyword for $ty {
            const WHAT: &'static str = $what;
            const ALL: &'static [Self] = &[$(<$ty>::$variant),+];
            fn as_str(self) -> &'static str {
                <$ty>::as_str(self)
            }
        }
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

keyword!(CoolingKind, "cooling kind", [Liquid => "liquid", Air => "air"]);
keyword!(Coolant, "coolant", [Water => "water", Pg25 => "pg25"]);
keyword!(MeterRole, "meter role", [
    Incoming => "incoming",
    UpsInput => "ups_input",
    UpsOutput => "ups_output",
    Chiller => "chiller",
    DryCooler => "dry_cooler",
    CoolingTower => "cooling_tower",
    ChwPumps => "chw_pumps",
    Lighting => "lighting",
    Other => "other",
    ZoneIt => "zone_it",
    ZoneCooling => "zone_cooling",
]);
keyword!(PayloadFormat, "payload format", [
    Json => "json",
    LineProtocol => "line_protocol",
    Number => "number",
]);
keyword!(SensorKind, "sensor kind", [
    RackInlet => "rack_inlet",
    Leak => "leak",
    DewPoint => "dew_point",
]);

impl Keyword for FaultKind {
    const WHAT: &'static str = "fault kind";
    const ALL: &'static [Self] = &[
        FaultKind::PumpFailure,
        FaultKind::FlowBlockage,
        FaultKind::CoolantLeak,
        FaultKind::StuckSensor,
        FaultKind::DriftingSensor,
        FaultKind::CondensationRisk,
        FaultKind::PhaseOverload,
        FaultKind::MeterReset,
        FaultKind::DeviceSilent,
        FaultKind::DeviceLate,
        FaultKind::DeviceBusy,
    ];
    fn as_str(self) -> &'static str {
        FaultKind::as_str(self)
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FaultKind {
    /// Whether the fault needs `field` (the sensor it acts on).
    pub fn needs_field(self) -> bool {
        matches!(self, FaultKind::StuckSensor | FaultKind::DriftingSensor)
    }
}

impl Default for Climate {
    /// Qingdao's climate normals: annual mean 12.7 C, seasonal amplitude 13.3 K with the
    /// coldest day on 22 January, 3.5 K half daily swing, 3 K day-to-day weather, relative
    /// humidity 60 % in winter and 85 % in summer.
    fn default() -> Self {
        Climate {
            annual_mean_c: 12.7,
            seasonal_amplitude_c: 13.3,
            coldest_day_of_year: 22,
            daily_amplitude_c: 3.5,
            weather_amplitude_c: 3.0,
            humidity_winter_pct: 60.0,
            humidity_summer_pct: 85.0,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Reading a site.

/// The simulated Qingdao park, compiled in.
const BUILTIN_SITE: &str = include_str!("../../fixtures/site/qingdao.toml");
/// The path reported for the compiled-in site.
pub const BUILTIN_SITE_PATH: &str = "fixtures/site/qingdao.toml";

impl Site {
    /// Parses and validates a site; every profile it names must be in `profiles` and of
    /// the right kind. `path` is only used in error messages.
    #[allow(clippy::should_implement_trait)]
    pub fn from_str(
        text: &str,
        path: impl AsRef<Path>,
        profiles: &ProfileSet,
    ) -> Result<Site, ConfigError> {
        crate::load::site::parse(text, path.as_ref(), profiles)
    }

    /// Reads, parses and validates a site file.
    pub fn load(path: impl AsRef<Path>, profiles: &ProfileSet) -> Result<Site, ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Site::from_str(&text, path, profiles)
    }

    /// The simulated Qingdao park (`fixtures/site/qingdao.toml`, compiled in).
    pub fn builtin(profiles: &ProfileSet) -> Result<Site, ConfigError> {
        Site::from_str(BUILTIN_SITE, BUILTIN_SITE_PATH, profiles)
    }

    /// The centre with this id.
    pub fn centre(&self, id: &str) -> Option<&Centre> {
        self.centres.iter().find(|c| c.id == id)
    }

    /// The zone `zone` of centre `centre`.
    pub fn zone(&self, centre: &str, zone: &str) -> Option<&Zone> {
        self.centre(centre)?.zone(zone)
    }

    /// Every Modbus device, in a stable order: centre by centre, first the facility
    /// meters as listed, then zone by zone its IT meter, cooling meter, CDU, in-row units
    /// and PDUs (rack 1 feed a, rack 1 feed b, rack 2 feed a, ...).
    pub fn devices(&self) -> Vec<Device> {
        self.centres.iter().flat_map(Centre::devices).collect()
    }

    /// Every MQTT sensor, in a stable order: centre by centre, zone by zone: the rack
    /// inlet sensors by rack, the two leak ropes (liquid zones), the dew-point sensor.
    pub fn sensors(&self) -> Vec<Sensor> {
        self.centres
            .iter()
            .flat_map(|c| {
                c.zones
                    .iter()
                    .flat_map(|z| z.sensors(&c.id, &self.simulation))
            })
            .collect()
    }

    /// The device with this id. Expands the whole inventory: for many look-ups, index
    /// [`Site::devices`] once instead.
    pub fn device(&self, id: &str) -> Option<Device> {
        self.devices().into_iter().find(|d| d.id == id)
    }
}

impl Centre {
    /// The zone with this id.
    pub fn zone(&self, id: &str) -> Option<&Zone> {
        self.zones.iter().find(|z| z.id == id)
    }

    /// The centre's devices, in the order of [`Site::devices`].
    pub fn devices(&self) -> Vec<Device> {
        let mut out: Vec<Device> = self
            .meters
            .iter()
            .map(|m| Device {
                role: Some(m.role),
                initial_kwh: m.initial_kwh,
                ..Device::new(&m.id, &m.profile, DeviceKind::EnergyMeter, &self.id, None)
            })
            .collect();
        for zone in &self.zones {
            out.extend(zone.devices(&self.id));
        }
        out
    }
}

impl Zone {
    /// Rated IT power of the zone: racks x rack_kw.
    pub fn rated_it_kw(&self) -> f64 {
        f64::from(self.racks) * self.rack_kw
    }

    /// The id of the gateway in front of the zone's PDUs, if they sit behind one:
    /// `{centre}-{zone}-pdu-gw`.
    pub fn pdu_gateway_id(&self, centre: &str) -> Option<String> {
        self.pdus_behind_gateway
            .then(|| format!("{centre}-{}-pdu-gw", self.id))
    }

    /// The zone's devices, in the order of [`Site::devices`]. Ids:
    /// `{centre}-{zone}-meter-it`, `-meter-cooling`, `-cdu`, `-acu-{n}` and
    /// `-r{rack:02}-pdu-{a|b}`. PDUs behind a gateway get unit ids 2r-1 (feed a) and 2r
    /// (feed b); every other device answers as unit 1 at its own address.
    pub fn devices(&self, centre: &str) -> Vec<Device> {
        let prefix = format!("{centre}-{}", self.id);
        let zone = Some(self.id.as_str());
        let mut out = vec![Device {
            role: Some(MeterRole::ZoneIt),
            ..Device::new(
                &format!("{prefix}-meter-it"),
                &self.it_meter_profile,
                DeviceKind::EnergyMeter,
                centre,
                zone,
            )
        }];
        if let Some(profile) = &self.cooling_meter_profile {
            out.push(Device {
                role: Some(MeterRole::ZoneCooling),
                initial_kwh: self.cooling_meter_initial_kwh,
                ..Device::new(
                    &format!("{prefix}-meter-cooling"),
                    profile,
                    DeviceKind::EnergyMeter,
                    centre,
                    zone,
                )
            });
        }
        if let Some(cdu) = &self.cdu {
            out.push(Device::new(
                &format!("{prefix}-cdu"),
                &cdu.profile,
                DeviceKind::Cdu,
                centre,
                zone,
            ));
        }
        if let Some(profile) = &self.inrow_profile {
            for n in 1..=self.inrow_units {
                out.push(Device {
                    unit_number: Some(n),
                    ..Device::new(
                        &format!("{prefix}-acu-{n}"),
                        profile,
                        DeviceKind::InrowUnit,
                        centre,
                        zone,
                    )
                });
            }
        }
        let gateway = self.pdu_gateway_id(centre);
        for rack in 1..=self.racks {
            for (i, feed) in ['a', 'b'].into_iter().enumerate() {
                let unit_id = if gateway.is_some() {
                    // Validation keeps 2 * racks <= 247.
                    u8::try_from(2 * rack - 1 + i as u16).unwrap_or(u8::MAX)
                } else {
                    1
                };
                out.push(Device {
                    rack: Some(rack),
                    feed: Some(feed),
                    gateway: gateway.clone(),
                    unit_id,
                    ..Device::new(
                        &format!("{prefix}-r{rack:02}-pdu-{feed}"),
                        &self.pdu_profile,
                        DeviceKind::RackPdu,
                        centre,
                        zone,
                    )
                });
            }
        }
        out
    }

    /// The zone's MQTT sensors, in the order of [`Site::sensors`]: per rack
    /// `{centre}-{zone}-r{rack:02}-inlet` on `{prefix}/{centre}/{zone}/r{rack:02}/inlet`
    /// (JSON); for liquid zones the leak ropes `{centre}-{zone}-leak-cdu` and `-leak-racks`
    /// on `.../leak/cdu` and `.../leak/racks` (a bare number); and
    /// `{centre}-{zone}-dewpoint` on `.../dewpoint` (line protocol).
    pub fn sensors(&self, centre: &str, simulation: &Simulation) -> Vec<Sensor> {
        let id_prefix = format!("{centre}-{}", self.id);
        let topic_prefix = format!("{}/{centre}/{}", simulation.topic_prefix, self.id);
        let sensor = |id: String, kind, rack, topic: String, payload| Sensor {
            id,
            kind,
            centre: centre.to_owned(),
            zone: self.id.clone(),
            rack,
            topic,
            payload,
            interval: simulation.sensor_interval,
        };
        let mut out: Vec<Sensor> = (1..=self.racks)
            .map(|rack| {
                sensor(
                    format!("{id_prefix}-r{rack:02}-inlet"),
                    SensorKind::RackInlet,
                    Some(rack),
                    format!("{topic_prefix}/r{rack:02}/inlet"),
                    PayloadFormat::Json,
                )
            })
            .collect();
        if self.cooling == CoolingKind::Liquid {
            for place in ["cdu", "racks"] {
                out.push(sensor(
                    format!("{id_prefix}-leak-{place}"),
                    SensorKind::Leak,
                    None,
                    format!("{topic_prefix}/leak/{place}"),
                    PayloadFormat::Number,
                ));
            }
        }
        out.push(sensor(
            format!("{id_prefix}-dewpoint"),
            SensorKind::DewPoint,
            None,
            format!("{topic_prefix}/dewpoint"),
            PayloadFormat::LineProtocol,
        ));
        out
    }
}

impl Device {
    /// A device answering as unit 1 at its own address, with no rack, feed, role or
    /// initial reading.
    fn new(id: &str, profile: &str, kind: DeviceKind, centre: &str, zone: Option<&str>) -> Self {
        Device {
            id: id.to_owned(),
            profile: profile.to_owned(),
            kind,
            centre: centre.to_owned(),
            zone: zone.map(str::to_owned),
            rack: None,
            feed: None,
            unit_number: None,
            role: None,
            gateway: None,
            unit_id: 1,
            initial_kwh: 0.0,
        }
    }
}
