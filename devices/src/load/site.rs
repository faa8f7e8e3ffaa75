//! The site file format and its validation. The format itself is documented in the
//! shipped `fixtures/site/qingdao.toml` and in the crate docs.

use std::collections::HashMap;
use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::{check_id, Source};
use crate::error::{ConfigError, Location};
use crate::profile::{DeviceKind, ProfileSet};
use crate::site::{
    CduSpec, Centre, Climate, Coolant, CoolingKind, Electrical, FaultKind, FaultSpec, MeterRole,
    MeterSpec, Park, Plant, Simulation, Site, Zone,
};

/// `step` when not set.
const DEFAULT_STEP: Duration = Duration::from_secs(1);
/// `sensor_interval` when not set.
const DEFAULT_SENSOR_INTERVAL: Duration = Duration::from_secs(10);
/// Zone utilisation defaults (the simulator's conventions, not from a standard).
const DEFAULT_IDLE_UTILISATION: f64 = 0.4;
const DEFAULT_JOB_UTILISATION: f64 = 0.9;
const DEFAULT_JOB_DUTY: f64 = 0.5;
/// A rack PDU's per-phase breaker, A: the common 32 A single-phase-equivalent circuit.
const DEFAULT_PDU_BREAKER_A: f64 = 32.0;
/// CDU defaults, from the domain reference: 1.0-1.5 L/min per kW, approach 3-5 K, W32.
const DEFAULT_CAPTURE_RATIO: f64 = 0.8;
const DEFAULT_SUPPLY_SETPOINT_C: f64 = 36.0;
const DEFAULT_FLOW_PER_KW_LPM: f64 = 1.2;
const DEFAULT_PUMPS: u8 = 2;
const DEFAULT_PUMP_CAPACITY_SHARE: f64 = 0.6;
const DEFAULT_PUMP_RATED_KW: f64 = 3.0;
const DEFAULT_WATER_CLASS_C: f64 = 32.0;
const DEFAULT_APPROACH_K: f64 = 4.0;
const DEFAULT_SUPPLY_SENSORS: u8 = 3;
/// Highest Modbus unit id a gateway can address.
const MAX_UNIT_ID: u32 = 247;
/// Highest rack count of a zone (rack numbers are written with at least two digits).
const MAX_RACKS: i64 = 999;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SiteDoc {
    park: ParkDoc,
    #[serde(default)]
    climate: ClimateDoc,
    simulation: SimulationDoc,
    #[serde(default)]
    centre: Vec<Spanned<CentreDoc>>,
    #[serde(default)]
    fault: Vec<Spanned<FaultDoc>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ParkDoc {
    id: Spanned<String>,
    name: String,
    utc_offset_hours: Spanned<i64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ClimateDoc {
    annual_mean_c: Option<Spanned<f64>>,
    seasonal_amplitude_c: Option<Spanned<f64>>,
    coldest_day_of_year: Option<Spanned<i64>>,
    daily_amplitude_c: Option<Spanned<f64>>,
    weather_amplitude_c: Option<Spanned<f64>>,
    humidity_winter_pct: Option<Spanned<f64>>,
    humidity_summer_pct: Option<Spanned<f64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SimulationDoc {
    seed: Spanned<i64>,
    start: Spanned<toml::Value>,
    step: Option<Spanned<String>>,
    topic_prefix: Option<Spanned<String>>,
    sensor_interval: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CentreDoc {
    id: Spanned<String>,
    name: Option<String>,
    meter_profile: Option<Spanned<String>>,
    #[serde(default)]
    meter: Vec<Spanned<MeterDoc>>,
    electrical: ElectricalDoc,
    plant: PlantDoc,
    zone_defaults: Option<ZoneDoc>,
    #[serde(default)]
    zone: Vec<Spanned<ZoneDoc>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MeterDoc {
    id: Spanned<String>,
    role: Spanned<String>,
    profile: Option<Spanned<String>>,
    initial_kwh: Option<Spanned<f64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ElectricalDoc {
    transformer_kva: Spanned<f64>,
    transformer_no_load_kw: Spanned<f64>,
    transformer_load_loss_kw: Spanned<f64>,
    ups_kva: Spanned<f64>,
    ups_no_load_kw: Spanned<f64>,
    ups_proportional_loss: Spanned<f64>,
    ups_square_loss: Spanned<f64>,
    distribution_loss: Spanned<f64>,
    lighting_kw: Spanned<f64>,
    other_kw: Spanned<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PlantDoc {
    facility_water_setpoint_c: Spanned<f64>,
    dry_cooler_approach_k: Spanned<f64>,
    dry_cooler_kw_per_kw: Spanned<f64>,
    chilled_water_c: Spanned<f64>,
    chiller_cop_design: Spanned<f64>,
    free_cooling_wet_bulb_c: Spanned<f64>,
    pump_kw_per_kw: Spanned<f64>,
    tower_kw_per_kw: Spanned<f64>,
}

/// A zone, or the centre's `zone_defaults` (same keys except `id` and `name`).
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ZoneDoc {
    id: Option<Spanned<String>>,
    name: Option<Spanned<String>>,
    cooling: Option<Spanned<String>>,
    racks: Option<Spanned<i64>>,
    rack_kw: Option<Spanned<f64>>,
    pdu_profile: Option<Spanned<String>>,
    pdus_behind_gateway: Option<Spanned<bool>>,
    pdu_breaker_a: Option<Spanned<f64>>,
    cdu: Option<Spanned<CduDoc>>,
    inrow_units: Option<Spanned<i64>>,
    inrow_profile: Option<Spanned<String>>,
    it_meter_profile: Option<Spanned<String>>,
    cooling_meter_profile: Option<Spanned<String>>,
    cooling_meter_initial_kwh: Option<Spanned<f64>>,
    idle_utilisation: Option<Spanned<f64>>,
    job_utilisation: Option<Spanned<f64>>,
    job_duty: Option<Spanned<f64>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct CduDoc {
    profile: Option<Spanned<String>>,
    coolant: Option<Spanned<String>>,
    capture_ratio: Option<Spanned<f64>>,
    supply_setpoint_c: Option<Spanned<f64>>,
    flow_per_kw_lpm: Option<Spanned<f64>>,
    pumps: Option<Spanned<i64>>,
    pump_capacity_share: Option<Spanned<f64>>,
    pump_rated_kw: Option<Spanned<f64>>,
    water_class_c: Option<Spanned<f64>>,
    approach_k: Option<Spanned<f64>>,
    supply_sensors: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FaultDoc {
    kind: Spanned<String>,
    target: Spanned<String>,
    at: Spanned<String>,
    duration: Option<Spanned<String>>,
    magnitude: Option<Spanned<f64>>,
    field: Option<Spanned<String>>,
}

/// What an id of the expanded inventory is, and where in the file it comes from.
struct IdOrigin {
    what: Target,
    path: String,
    line: usize,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Target {
    Device(DeviceKind),
    Sensor(crate::site::SensorKind),
    Gateway,
}

pub(crate) fn parse(text: &str, path: &Path, profiles: &ProfileSet) -> Result<Site, ConfigError> {
    let src = Source::new(path, text);
    let doc: SiteDoc = toml::from_str(text).map_err(|e| src.toml_error(&e))?;
    let cx = SiteCx {
        src: &src,
        profiles,
    };

    let park = cx.park(&doc.park)?;
    let climate = cx.climate(&doc.climate)?;
    let simulation = cx.simulation(&doc.simulation, &park)?;

    let mut ids: HashMap<String, IdOrigin> = HashMap::new();
    let mut centres: Vec<Centre> = Vec::with_capacity(doc.centre.len());
    for (c, spanned) in doc.centre.iter().enumerate() {
        let centre = cx.centre(c, spanned.get_ref())?;
        if let Some((first, _)) = centres.iter().enumerate().find(|(_, x)| x.id == centre.id) {
            return Err(src.error(
                spanned.get_ref().id.span(),
                format!("centre[{c}].id"),
                format!(
                    "duplicate centre id \"{}\": centre[{first}] has it already",
                    centre.id
                ),
            ));
        }
        cx.register_ids(&mut ids, c, spanned.get_ref(), &centre, &simulation)?;
        centres.push(centre);
    }

    let mut faults = Vec::with_capacity(doc.fault.len());
    for (i, fault) in doc.fault.iter().enumerate() {
        faults.push(cx.fault(i, fault, &ids, &centres)?);
    }

    Ok(Site {
        park,
        climate,
        simulation,
        centres,
        faults,
        path: path.to_owned(),
    })
}

struct SiteCx<'a> {
    src: &'a Source<'a>,
    profiles: &'a ProfileSet,
}

impl SiteCx<'_> {
    fn park(&self, doc: &ParkDoc) -> Result<Park, ConfigError> {
        Ok(Park {
            id: check_id(self.src, &doc.id, "park.id")?,
            name: doc.name.clone(),
            utc_offset_hours: self.src.integer_in(
                &doc.utc_offset_hours,
                "park.utc_offset_hours",
                -12,
                14,
            )? as i32,
        })
    }

    fn climate(&self, doc: &ClimateDoc) -> Result<Climate, ConfigError> {
        let src = self.src;
        let d = Climate::default();
        let finite = |v: &Option<Spanned<f64>>, key: &str, default: f64| match v {
            Some(v) => src.number_in(
                v,
                &format!("climate.{key}"),
                -100.0,
                100.0,
                "must be -100..=100",
            ),
            None => Ok(default),
        };
        let amplitude = |v: &Option<Spanned<f64>>, key: &str, default: f64| match v {
            Some(v) => src.number_in(v, &format!("climate.{key}"), 0.0, 50.0, "must be 0..=50 K"),
            None => Ok(default),
        };
        let humidity = |v: &Option<Spanned<f64>>, key: &str, default: f64| match v {
            Some(v) => src.number_in(
                v,
                &format!("climate.{key}"),
                0.0,
                100.0,
                "must be 0..=100 %",
            ),
            None => Ok(default),
        };
        Ok(Climate {
            annual_mean_c: finite(&doc.annual_mean_c, "annual_mean_c", d.annual_mean_c)?,
            seasonal_amplitude_c: amplitude(
                &doc.seasonal_amplitude_c,
                "seasonal_amplitude_c",
                d.seasonal_amplitude_c,
            )?,
            coldest_day_of_year: match &doc.coldest_day_of_year {
                Some(v) => src.integer_in(v, "climate.coldest_day_of_year", 1, 366)? as u16,
                None => d.coldest_day_of_year,
            },
            daily_amplitude_c: amplitude(
                &doc.daily_amplitude_c,
                "daily_amplitude_c",
                d.daily_amplitude_c,
            )?,
            weather_amplitude_c: amplitude(
                &doc.weather_amplitude_c,
                "weather_amplitude_c",
                d.weather_amplitude_c,
            )?,
            humidity_winter_pct: humidity(
                &doc.humidity_winter_pct,
                "humidity_winter_pct",
                d.humidity_winter_pct,
            )?,
            humidity_summer_pct: humidity(
                &doc.humidity_summer_pct,
                "humidity_summer_pct",
                d.humidity_summer_pct,
            )?,
        })
    }

    fn simulation(&self, doc: &SimulationDoc, park: &Park) -> Result<Simulation, ConfigError> {
        let src = self.src;
        let positive = |v: &Option<Spanned<String>>, key: &str, default: Duration| match v {
            Some(v) => {
                let field = format!("simulation.{key}");
                let d = src.duration(v, &field)?;
                if d.is_zero() {
                    return Err(src.error(v.span(), field, "must be longer than zero"));
                }
                Ok(d)
            }
            None => Ok(default),
        };
        let topic_prefix = match &doc.topic_prefix {
            Some(v) => {
                let t = v.get_ref();
                let ok = !t.is_empty()
                    && t.split('/').all(|level| !level.is_empty())
                    && !t.contains(['+', '#', '\0']);
                if !ok {
                    return Err(src.error(
                        v.span(),
                        "simulation.topic_prefix",
                        format!(
                            "invalid topic prefix \"{t}\": MQTT topic levels separated by '/', \
                             none empty, without '+', '#' or a leading or trailing '/'"
                        ),
                    ));
                }
                t.clone()
            }
            None => format!("tidewatch/{}", park.id),
        };
        Ok(Simulation {
            seed: src.integer_in(&doc.seed, "simulation.seed", 0, i64::MAX)? as u64,
            start_unix: parse_start(src, &doc.start, "simulation.start")?,
            step: positive(&doc.step, "step", DEFAULT_STEP)?,
            topic_prefix,
            sensor_interval: positive(
                &doc.sensor_interval,
                "sensor_interval",
                DEFAULT_SENSOR_INTERVAL,
            )?,
        })
    }

    /// A profile name that must exist and be of kind `kind`.
    fn profile(
        &self,
        value: &Spanned<String>,
        field: &str,
        kind: DeviceKind,
    ) -> Result<String, ConfigError> {
        let name = value.get_ref();
        let Some(profile) = self.profiles.get(name) else {
            let known: Vec<&str> = self.profiles.models().collect();
            return Err(self.src.error(
                value.span(),
                field,
                format!(
                    "unknown profile \"{name}\"; known profiles: {}",
                    if known.is_empty() {
                        "(none)".to_owned()
                    } else {
                        known.join(", ")
                    }
                ),
            ));
        };
        if profile.kind != kind {
            let key = field.rsplit('.').next().unwrap_or(field);
            return Err(self.src.error(
                value.span(),
                field,
                format!(
                    "profile \"{name}\" describes a {}, but {key} needs a {} profile",
                    profile.kind, kind
                ),
            ));
        }
        Ok(name.clone())
    }

    fn centre(&self, c: usize, doc: &CentreDoc) -> Result<Centre, ConfigError> {
        let src = self.src;
        let p = format!("centre[{c}]");
        let id = check_id(src, &doc.id, &format!("{p}.id"))?;

        let mut meters: Vec<MeterSpec> = Vec::with_capacity(doc.meter.len());
        for (m, spanned) in doc.meter.iter().enumerate() {
            let md = spanned.get_ref();
            let mp = format!("{p}.meter[{m}]");
            let meter_id = check_id(src, &md.id, &format!("{mp}.id"))?;
            if let Some((first, _)) = meters.iter().enumerate().find(|(_, x)| x.id == meter_id) {
                return Err(src.error(
                    md.id.span(),
                    format!("{mp}.id"),
                    format!("duplicate meter id \"{meter_id}\": {p}.meter[{first}] has it already"),
                ));
            }
            let role: MeterRole = src.keyword(&md.role, &format!("{mp}.role"))?;
            if matches!(role, MeterRole::ZoneIt | MeterRole::ZoneCooling) {
                return Err(src.error(
                    md.role.span(),
                    format!("{mp}.role"),
                    format!(
                        "role {role} is for zone meters, which each zone creates itself \
                         (it_meter_profile, cooling_meter_profile)"
                    ),
                ));
            }
            let profile =
                match (&md.profile, &doc.meter_profile) {
                    (Some(v), _) => {
                        self.profile(v, &format!("{mp}.profile"), DeviceKind::EnergyMeter)?
                    }
                    (None, Some(v)) => {
                        self.profile(v, &format!("{p}.meter_profile"), DeviceKind::EnergyMeter)?
                    }
                    (None, None) => return Err(src.error(
                        spanned.span(),
                        &mp,
                        "missing field `profile`: set it here or as meter_profile of the centre",
                    )),
                };
            let initial_kwh = match &md.initial_kwh {
                Some(v) => src.non_negative(v, &format!("{mp}.initial_kwh"))?,
                None => 0.0,
            };
            meters.push(MeterSpec {
                id: meter_id,
                role,
                profile,
                initial_kwh,
            });
        }

        let e = &doc.electrical;
        let ep = |key: &str| format!("{p}.electrical.{key}");
        let electrical = Electrical {
            transformer_kva: src.positive(&e.transformer_kva, &ep("transformer_kva"))?,
            transformer_no_load_kw: src
                .non_negative(&e.transformer_no_load_kw, &ep("transformer_no_load_kw"))?,
            transformer_load_loss_kw: src
                .non_negative(&e.transformer_load_loss_kw, &ep("transformer_load_loss_kw"))?,
            ups_kva: src.positive(&e.ups_kva, &ep("ups_kva"))?,
            ups_no_load_kw: src.non_negative(&e.ups_no_load_kw, &ep("ups_no_load_kw"))?,
            ups_proportional_loss: src
                .fraction(&e.ups_proportional_loss, &ep("ups_proportional_loss"))?,
            ups_square_loss: src.fraction(&e.ups_square_loss, &ep("ups_square_loss"))?,
            distribution_loss: src.fraction(&e.distribution_loss, &ep("distribution_loss"))?,
            lighting_kw: src.non_negative(&e.lighting_kw, &ep("lighting_kw"))?,
            other_kw: src.non_negative(&e.other_kw, &ep("other_kw"))?,
        };

        let pl = &doc.plant;
        let pp = |key: &str| format!("{p}.plant.{key}");
        let temperature = |v: &Spanned<f64>, key: &str| {
            src.number_in(v, &pp(key), -30.0, 60.0, "must be -30..=60 C")
        };
        let plant = Plant {
            facility_water_setpoint_c: temperature(
                &pl.facility_water_setpoint_c,
                "facility_water_setpoint_c",
            )?,
            dry_cooler_approach_k: src
                .non_negative(&pl.dry_cooler_approach_k, &pp("dry_cooler_approach_k"))?,
            dry_cooler_kw_per_kw: src
                .non_negative(&pl.dry_cooler_kw_per_kw, &pp("dry_cooler_kw_per_kw"))?,
            chilled_water_c: temperature(&pl.chilled_water_c, "chilled_water_c")?,
            chiller_cop_design: src.positive(&pl.chiller_cop_design, &pp("chiller_cop_design"))?,
            free_cooling_wet_bulb_c: temperature(
                &pl.free_cooling_wet_bulb_c,
                "free_cooling_wet_bulb_c",
            )?,
            pump_kw_per_kw: src.non_negative(&pl.pump_kw_per_kw, &pp("pump_kw_per_kw"))?,
            tower_kw_per_kw: src.non_negative(&pl.tower_kw_per_kw, &pp("tower_kw_per_kw"))?,
        };

        let defaults = doc.zone_defaults.as_ref();
        if let Some(d) = defaults {
            for (key, value) in [("id", &d.id), ("name", &d.name)] {
                if let Some(v) = value {
                    return Err(src.error(
                        v.span(),
                        format!("{p}.zone_defaults.{key}"),
                        format!("`{key}` cannot be a default: every zone has its own"),
                    ));
                }
            }
        }
        let mut zones: Vec<Zone> = Vec::with_capacity(doc.zone.len());
        for (z, spanned) in doc.zone.iter().enumerate() {
            let zone = ZoneCx {
                cx: self,
                zone: spanned.get_ref(),
                span: spanned.span(),
                path: format!("{p}.zone[{z}]"),
                defaults,
                defaults_path: format!("{p}.zone_defaults"),
            }
            .build()?;
            if let Some((first, _)) = zones.iter().enumerate().find(|(_, x)| x.id == zone.id) {
                let span = spanned
                    .get_ref()
                    .id
                    .as_ref()
                    .map_or(spanned.span(), Spanned::span);
                return Err(src.error(
                    span,
                    format!("{p}.zone[{z}].id"),
                    format!(
                        "duplicate zone id \"{}\" in centre {id}: {p}.zone[{first}] has it already",
                        zone.id
                    ),
                ));
            }
            zones.push(zone);
        }

        Ok(Centre {
            name: doc.name.clone().unwrap_or_else(|| id.clone()),
            id,
            electrical,
            plant,
            meters,
            zones,
        })
    }

    /// Records every id the centre expands to; two things with one id are an error at
    /// the later one.
    fn register_ids(
        &self,
        ids: &mut HashMap<String, IdOrigin>,
        c: usize,
        doc: &CentreDoc,
        centre: &Centre,
        simulation: &Simulation,
    ) -> Result<(), ConfigError> {
        let src = self.src;
        let mut add = |id: String, what: Target, path: String, span: Range<usize>| {
            let line = Location::of_offset(src.text, span.start).line;
            if let Some(first) = ids.get(&id) {
                return Err(src.error(
                    span,
                    &path,
                    format!(
                        "id \"{id}\" is already used by {} (line {})",
                        first.path, first.line
                    ),
                ));
            }
            ids.insert(id, IdOrigin { what, path, line });
            Ok(())
        };
        for (m, meter) in centre.meters.iter().enumerate() {
            let span = doc.meter[m].get_ref().id.span();
            add(
                meter.id.clone(),
                Target::Device(DeviceKind::EnergyMeter),
                format!("centre[{c}].meter[{m}].id"),
                span,
            )?;
        }
        for (z, zone) in centre.zones.iter().enumerate() {
            let zd = &doc.zone[z];
            let span = zd.get_ref().id.as_ref().map_or(zd.span(), Spanned::span);
            let path = format!("centre[{c}].zone[{z}].id");
            for device in zone.devices(&centre.id) {
                add(
                    device.id,
                    Target::Device(device.kind),
                    path.clone(),
                    span.clone(),
                )?;
            }
            for sensor in zone.sensors(&centre.id, simulation) {
                add(
                    sensor.id,
                    Target::Sensor(sensor.kind),
                    path.clone(),
                    span.clone(),
                )?;
            }
            if let Some(gateway) = zone.pdu_gateway_id(&centre.id) {
                add(gateway, Target::Gateway, path.clone(), span.clone())?;
            }
        }
        Ok(())
    }

    fn fault(
        &self,
        i: usize,
        spanned: &Spanned<FaultDoc>,
        ids: &HashMap<String, IdOrigin>,
        centres: &[Centre],
    ) -> Result<FaultSpec, ConfigError> {
        let src = self.src;
        let fd = spanned.get_ref();
        let p = format!("fault[{i}]");
        let kind: FaultKind = src.keyword(&fd.kind, &format!("{p}.kind"))?;

        let target = fd.target.get_ref();
        let Some(origin) = ids.get(target).filter(|o| o.what != Target::Gateway) else {
            return Err(src.error(
                fd.target.span(),
                format!("{p}.target"),
                format!(
                    "unknown target \"{target}\": no device or sensor has this id \
                     (ids look like dc2-mm03-cdu, dc2-mm03-r07-pdu-a, dc1-incoming, \
                     dc2-mm03-r07-inlet)"
                ),
            ));
        };
        use crate::site::SensorKind;
        let needs: Option<&str> = match (kind, origin.what) {
            (
                FaultKind::PumpFailure | FaultKind::FlowBlockage | FaultKind::CoolantLeak,
                Target::Device(DeviceKind::Cdu),
            ) => None,
            (FaultKind::PumpFailure | FaultKind::FlowBlockage | FaultKind::CoolantLeak, _) => {
                Some("a CDU")
            }
            (FaultKind::PhaseOverload, Target::Device(DeviceKind::RackPdu)) => None,
            (FaultKind::PhaseOverload, _) => Some("a rack PDU"),
            (
                FaultKind::MeterReset,
                Target::Device(DeviceKind::EnergyMeter | DeviceKind::RackPdu),
            ) => None,
            (FaultKind::MeterReset, _) => Some("an energy meter or a rack PDU"),
            (
                FaultKind::DeviceSilent | FaultKind::DeviceLate | FaultKind::DeviceBusy,
                Target::Device(_),
            ) => None,
            (FaultKind::DeviceSilent | FaultKind::DeviceLate | FaultKind::DeviceBusy, _) => {
                Some("a Modbus device")
            }
            (
                FaultKind::CondensationRisk,
                Target::Device(DeviceKind::Cdu) | Target::Sensor(SensorKind::DewPoint),
            ) => None,
            (FaultKind::CondensationRisk, _) => Some("a CDU or a dew-point sensor"),
            (FaultKind::StuckSensor | FaultKind::DriftingSensor, _) => None,
        };
        if let Some(needs) = needs {
            let is = match origin.what {
                Target::Device(k) => format!("a {k} device"),
                Target::Sensor(k) => format!("a {k} sensor"),
                Target::Gateway => "a gateway".to_owned(),
            };
            return Err(src.error(
                fd.target.span(),
                format!("{p}.target"),
                format!("a {kind} fault acts on {needs}, but \"{target}\" is {is}"),
            ));
        }

        let field = match (&fd.field, kind.needs_field()) {
            (Some(f), true) => {
                if let Target::Device(_) = origin.what {
                    let device = centres
                        .iter()
                        .flat_map(Centre::devices)
                        .find(|d| &d.id == target);
                    if let Some(device) = device {
                        let profile = self.profiles.get(&device.profile);
                        if profile.is_some_and(|p| p.field(f.get_ref()).is_none()) {
                            return Err(src.error(
                                f.span(),
                                format!("{p}.field"),
                                format!(
                                    "device \"{target}\" (profile {}) has no field \"{}\"",
                                    device.profile,
                                    f.get_ref()
                                ),
                            ));
                        }
                    }
                }
                Some(f.get_ref().clone())
            }
            (None, true) => {
                return Err(src.error(
                    spanned.span(),
                    &p,
                    format!(
                        "missing field `field`: a {kind} fault needs the sensor field it acts on"
                    ),
                ))
            }
            (Some(f), false) => {
                return Err(src.error(
                    f.span(),
                    format!("{p}.field"),
                    format!(
                        "`field` only applies to stuck_sensor and drifting_sensor, not to {kind}"
                    ),
                ))
            }
            (None, false) => None,
        };

        let duration = match &fd.duration {
            Some(v) => {
                let d = src.duration(v, &format!("{p}.duration"))?;
                if d.is_zero() {
                    return Err(src.error(
                        v.span(),
                        format!("{p}.duration"),
                        "must be longer than zero",
                    ));
                }
                Some(d)
            }
            None => None,
        };
        let magnitude = match &fd.magnitude {
            Some(v) => Some(src.number_in(
                v,
                &format!("{p}.magnitude"),
                f64::MIN,
                f64::MAX,
                "must be finite",
            )?),
            None => None,
        };
        Ok(FaultSpec {
            kind,
            target: target.clone(),
            start_offset: src.duration(&fd.at, &format!("{p}.at"))?,
            duration,
            magnitude,
            field,
            line: Location::of_offset(src.text, spanned.span().start).line,
        })
    }
}

/// One zone being built from its own keys and the centre's `zone_defaults`.
struct ZoneCx<'a> {
    cx: &'a SiteCx<'a>,
    zone: &'a ZoneDoc,
    span: Range<usize>,
    path: String,
    defaults: Option<&'a ZoneDoc>,
    defaults_path: String,
}

impl<'a> ZoneCx<'a> {
    /// A key's value and its path, from the zone or else from the defaults.
    fn pick<T>(
        &self,
        get: impl Fn(&'a ZoneDoc) -> &'a Option<Spanned<T>>,
        key: &str,
    ) -> Option<(&'a Spanned<T>, String)> {
        if let Some(v) = get(self.zone) {
            return Some((v, format!("{}.{key}", self.path)));
        }
        let v = get(self.defaults?).as_ref()?;
        Some((v, format!("{}.{key}", self.defaults_path)))
    }

    /// A CDU key, from the zone's `cdu` table or else the defaults' `cdu` table.
    fn pick_cdu<T>(
        &self,
        get: impl Fn(&'a CduDoc) -> &'a Option<Spanned<T>>,
        key: &str,
    ) -> Option<(&'a Spanned<T>, String)> {
        if let Some(v) = self
            .zone
            .cdu
            .as_ref()
            .and_then(|c| get(c.get_ref()).as_ref())
        {
            return Some((v, format!("{}.cdu.{key}", self.path)));
        }
        let v = get(self.defaults?.cdu.as_ref()?.get_ref()).as_ref()?;
        Some((v, format!("{}.cdu.{key}", self.defaults_path)))
    }

    fn missing(&self, key: &str) -> ConfigError {
        self.cx.src.error(
            self.span.clone(),
            &self.path,
            format!(
                "missing field `{key}`: set it in the zone or in {}",
                self.defaults_path
            ),
        )
    }

    fn require<T>(
        &self,
        get: impl Fn(&'a ZoneDoc) -> &'a Option<Spanned<T>>,
        key: &str,
    ) -> Result<(&'a Spanned<T>, String), ConfigError> {
        self.pick(get, key).ok_or_else(|| self.missing(key))
    }

    fn fraction(
        &self,
        get: impl Fn(&'a ZoneDoc) -> &'a Option<Spanned<f64>>,
        key: &str,
        default: f64,
    ) -> Result<f64, ConfigError> {
        match self.pick(get, key) {
            Some((v, path)) => self.cx.src.fraction(v, &path),
            None => Ok(default),
        }
    }

    fn build(&self) -> Result<Zone, ConfigError> {
        let src = self.cx.src;
        let Some(id_value) = &self.zone.id else {
            return Err(src.error(self.span.clone(), &self.path, "missing field `id`"));
        };
        let id = check_id(src, id_value, &format!("{}.id", self.path))?;
        let name = self
            .zone
            .name
            .as_ref()
            .map_or_else(|| id.clone(), |n| n.get_ref().clone());

        let (v, path) = self.require(|z| &z.cooling, "cooling")?;
        let cooling: CoolingKind = src.keyword(v, &path)?;
        let (v, path) = self.require(|z| &z.racks, "racks")?;
        let racks = src.integer_in(v, &path, 1, MAX_RACKS)? as u16;
        let (v, path) = self.require(|z| &z.rack_kw, "rack_kw")?;
        let rack_kw = src.positive(v, &path)?;
        let (v, path) = self.require(|z| &z.pdu_profile, "pdu_profile")?;
        let pdu_profile = self.cx.profile(v, &path, DeviceKind::RackPdu)?;

        let pdus_behind_gateway = match self.pick(|z| &z.pdus_behind_gateway, "pdus_behind_gateway")
        {
            Some((v, path)) => {
                let needed = 2 * u32::from(racks);
                if *v.get_ref() && needed > MAX_UNIT_ID {
                    return Err(src.error(
                        v.span(),
                        path,
                        format!(
                            "{racks} racks with two PDUs each need unit ids 1..={needed}, but a \
                             Modbus gateway addresses at most {MAX_UNIT_ID} units"
                        ),
                    ));
                }
                *v.get_ref()
            }
            None => false,
        };

        let cdu = match cooling {
            CoolingKind::Air => {
                if let Some(c) = &self.zone.cdu {
                    return Err(src.error(
                        c.span(),
                        format!("{}.cdu", self.path),
                        "an air-cooled zone has no CDU: remove `cdu` or set cooling = \"liquid\"",
                    ));
                }
                None
            }
            CoolingKind::Liquid => Some(self.cdu()?),
        };

        let inrow_units = match self.pick(|z| &z.inrow_units, "inrow_units") {
            Some((v, path)) => src.integer_in(v, &path, 0, 99)? as u8,
            None => 0,
        };
        if cooling == CoolingKind::Air && inrow_units == 0 {
            return Err(src.error(
                self.span.clone(),
                &self.path,
                "an air-cooled zone needs in-row units: set inrow_units >= 1 (and inrow_profile)",
            ));
        }
        let inrow_profile = match (
            inrow_units,
            self.pick(|z| &z.inrow_profile, "inrow_profile"),
        ) {
            (0, _) => None,
            (_, Some((v, path))) => Some(self.cx.profile(v, &path, DeviceKind::InrowUnit)?),
            (_, None) => return Err(self.missing("inrow_profile")),
        };

        let (v, path) = self.require(|z| &z.it_meter_profile, "it_meter_profile")?;
        let it_meter_profile = self.cx.profile(v, &path, DeviceKind::EnergyMeter)?;
        let cooling_meter_profile =
            match self.pick(|z| &z.cooling_meter_profile, "cooling_meter_profile") {
                Some((v, path)) => Some(self.cx.profile(v, &path, DeviceKind::EnergyMeter)?),
                None => None,
            };
        let cooling_meter_initial_kwh = match self.pick(
            |z| &z.cooling_meter_initial_kwh,
            "cooling_meter_initial_kwh",
        ) {
            Some((v, path)) => {
                if cooling_meter_profile.is_none() {
                    return Err(src.error(
                        v.span(),
                        path,
                        "cooling_meter_initial_kwh needs a cooling meter (cooling_meter_profile)",
                    ));
                }
                src.non_negative(v, &path)?
            }
            None => 0.0,
        };

        let pdu_breaker_a = match self.pick(|z| &z.pdu_breaker_a, "pdu_breaker_a") {
            Some((v, path)) => src.positive(v, &path)?,
            None => DEFAULT_PDU_BREAKER_A,
        };

        Ok(Zone {
            id,
            name,
            cooling,
            racks,
            rack_kw,
            pdu_profile,
            pdus_behind_gateway,
            pdu_breaker_a,
            cdu,
            inrow_units,
            inrow_profile,
            it_meter_profile,
            cooling_meter_profile,
            cooling_meter_initial_kwh,
            idle_utilisation: self.fraction(
                |z| &z.idle_utilisation,
                "idle_utilisation",
                DEFAULT_IDLE_UTILISATION,
            )?,
            job_utilisation: self.fraction(
                |z| &z.job_utilisation,
                "job_utilisation",
                DEFAULT_JOB_UTILISATION,
            )?,
            job_duty: self.fraction(|z| &z.job_duty, "job_duty", DEFAULT_JOB_DUTY)?,
        })
    }

    fn cdu(&self) -> Result<CduSpec, ConfigError> {
        let src = self.cx.src;
        let Some((v, path)) = self.pick_cdu(|c| &c.profile, "profile") else {
            return Err(src.error(
                self.span.clone(),
                &self.path,
                format!(
                    "a liquid-cooled zone needs a CDU: missing field `cdu.profile` (set it in \
                     the zone or in {})",
                    self.defaults_path
                ),
            ));
        };
        let profile = self.cx.profile(v, &path, DeviceKind::Cdu)?;
        let number = |get: fn(&CduDoc) -> &Option<Spanned<f64>>,
                      key: &str,
                      default: f64,
                      min: f64,
                      max: f64,
                      what: &str| {
            match self.pick_cdu(get, key) {
                Some((v, path)) => src.number_in(v, &path, min, max, what),
                None => Ok(default),
            }
        };
        let coolant = match self.pick_cdu(|c| &c.coolant, "coolant") {
            Some((v, path)) => src.keyword::<Coolant>(v, &path)?,
            None => Coolant::Water,
        };
        let pumps = match self.pick_cdu(|c| &c.pumps, "pumps") {
            Some((v, path)) => src.integer_in(v, &path, 1, 8)? as u8,
            None => DEFAULT_PUMPS,
        };
        let supply_sensors = match self.pick_cdu(|c| &c.supply_sensors, "supply_sensors") {
            Some((v, path)) => src.integer_in(v, &path, 1, 3)? as u8,
            None => DEFAULT_SUPPLY_SENSORS,
        };
        let any = f64::MAX;
        Ok(CduSpec {
            supply_sensors,
            profile,
            coolant,
            capture_ratio: number(
                |c| &c.capture_ratio,
                "capture_ratio",
                DEFAULT_CAPTURE_RATIO,
                0.0,
                1.0,
                "must be between 0 and 1",
            )?,
            supply_setpoint_c: number(
                |c| &c.supply_setpoint_c,
                "supply_setpoint_c",
                DEFAULT_SUPPLY_SETPOINT_C,
                10.0,
                60.0,
                "must be 10..=60 C",
            )?,
            flow_per_kw_lpm: number(
                |c| &c.flow_per_kw_lpm,
                "flow_per_kw_lpm",
                DEFAULT_FLOW_PER_KW_LPM,
                0.1,
                10.0,
                "must be 0.1..=10 L/min per kW",
            )?,
            pumps,
            pump_capacity_share: number(
                |c| &c.pump_capacity_share,
                "pump_capacity_share",
                DEFAULT_PUMP_CAPACITY_SHARE,
                0.01,
                1.0,
                "must be 0.01..=1",
            )?,
            pump_rated_kw: number(
                |c| &c.pump_rated_kw,
                "pump_rated_kw",
                DEFAULT_PUMP_RATED_KW,
                0.0,
                any,
                "must be >= 0",
            )?,
            water_class_c: number(
                |c| &c.water_class_c,
                "water_class_c",
                DEFAULT_WATER_CLASS_C,
                5.0,
                60.0,
                "must be 5..=60 C",
            )?,
            approach_k: number(
                |c| &c.approach_k,
                "approach_k",
                DEFAULT_APPROACH_K,
                0.0,
                30.0,
                "must be 0..=30 K",
            )?,
        })
    }
}

/// `start` as seconds since the Unix epoch: a TOML offset date-time or a string in RFC
/// 3339 form, with a UTC offset.
fn parse_start(
    src: &Source<'_>,
    value: &Spanned<toml::Value>,
    field: &str,
) -> Result<i64, ConfigError> {
    let hint = "write an RFC 3339 date-time with a UTC offset, e.g. \"2026-01-01T00:00:00+08:00\"";
    let datetime = match value.get_ref() {
        toml::Value::Datetime(dt) => *dt,
        toml::Value::String(s) => s.parse::<toml::value::Datetime>().map_err(|e| {
            src.error(
                value.span(),
                field,
                format!("invalid date-time \"{s}\" ({e}): {hint}"),
            )
        })?,
        _ => return Err(src.error(value.span(), field, format!("expected a date-time: {hint}"))),
    };
    let (Some(date), Some(time), Some(offset)) = (datetime.date, datetime.time, datetime.offset)
    else {
        return Err(src.error(
            value.span(),
            field,
            format!("\"{datetime}\" needs a date, a time and a UTC offset: {hint}"),
        ));
    };
    if time.nanosecond.is_some_and(|n| n != 0) {
        return Err(src.error(
            value.span(),
            field,
            "fractions of a second are not supported",
        ));
    }
    let days_in_month = match date.month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(i64::from(date.year)) => 29,
        2 => 28,
        _ => 0,
    };
    if date.day < 1 || date.day > days_in_month || time.hour > 23 || time.minute > 59 {
        return Err(src.error(
            value.span(),
            field,
            format!("\"{datetime}\" is not a valid date-time"),
        ));
    }
    let offset_minutes = match offset {
        toml::value::Offset::Z => 0,
        toml::value::Offset::Custom { minutes } => i64::from(minutes),
    };
    let days = days_from_civil(
        i64::from(date.year),
        i64::from(date.month),
        i64::from(date.day),
    );
    let seconds = i64::from(time.hour) * 3600
        + i64::from(time.minute) * 60
        + i64::from(time.second.unwrap_or(0).min(59));
    Ok(days * 86_400 + seconds - offset_minutes * 60)
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_days() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(2026, 1, 1), 20_454);
        assert_eq!(days_from_civil(1969, 12, 31), -1);
    }

    #[test]
    fn start_times() {
        let path = Path::new("t.toml");
        let parse = |text: &str| {
            let src = Source::new(path, text);
            let doc: HashMap<String, Spanned<toml::Value>> = toml::from_str(text).unwrap();
            parse_start(&src, &doc["start"], "start")
        };
        // 2026-01-01T00:00:00+08:00 is 2025-12-31T16:00:00Z.
        assert_eq!(
            parse("start = \"2026-01-01T00:00:00+08:00\"").unwrap(),
            1_767_196_800
        );
        assert_eq!(
            parse("start = 2026-01-01T00:00:00+08:00").unwrap(),
            1_767_196_800
        );
        assert_eq!(
            parse("start = 2026-01-01T00:00:00Z").unwrap(),
            1_767_225_600
        );
        assert_eq!(
            parse("start = \"1970-01-01T00:00:00-01:30\"").unwrap(),
            5_400
        );
        assert!(parse("start = \"2026-01-01T00:00:00\"").is_err());
        assert!(parse("start = 2026-01-01").is_err());
        assert!(parse("start = \"yesterday\"").is_err());
        assert!(parse("start = 5").is_err());
    }
}
