//! Points with the shape of the simulated park's, for the benchmarks: built in
//! memory, deterministic, no simulator needed (the model crate is the bottom of the
//! dependency graph). Shared by `model/benches/encode.rs` and, through
//! `#[path = "../../model/benches/park/mod.rs"]`, `storage/benches/influx_write.rs`,
//! so both measure the same points.
//!
//! The shapes follow what `tidewatch simulate --fast` writes for the Qingdao park and
//! what the collectors make of the device profiles (`fixtures/profiles/`):
//!
//! - `rack_pdu` (profile `cn-ipdu`): 6 tags (`centre`, `device`, `feed`, `model`,
//!   `rack`, `zone`) and 26 float fields (per phase voltage, current, active, apparent
//!   and reactive power, power factor, energy, line voltage; frequency; total energy),
//!   integer registers times their scale (0.1, 0.01, 0.001), so the floats carry the
//!   long decimal tails a real collector produces (`228.60000000000002`);
//! - `cdu` (profile `lc-cdu`): 4 tags and 31 fields of every type a collector emits:
//!   scaled registers and float32 registers as floats, alarm bits and status coils as
//!   booleans, two unscaled counters (pump run hours, status word) as integers, the
//!   serial number as a string;
//! - `rack_inlet` (an MQTT sensor): 4 tags and 2 float fields rounded to 3 decimals, as
//!   the sensors publish them.
//!
//! One park frame (every device once, at one instant) is 304 PDU points (152 racks, feeds
//! a and b), 8 CDU points and 182 sensor points, the park's own proportions; encoded
//! it averages about 520 bytes a point (the simulator's whole output, with its shorter
//! energy-meter and in-row cooling points, averages about 460).

#![allow(dead_code)] // each benchmark uses a different part

use tidewatch_model::{FieldKey, FieldValue, Point, Series};

/// 2026-01-01T00:00:00+08:00, in nanoseconds.
pub const T0: i64 = 1_767_196_800_000_000_000;
/// The simulator's default step: 10 s.
pub const STEP_NS: i64 = 10_000_000_000;

/// Racks in the park (each with two PDUs and an inlet sensor).
pub const RACKS: usize = 152;
/// Coolant distribution units (liquid-cooled micro-modules).
pub const CDUS: usize = 8;
/// MQTT sensors: one inlet sensor per rack and 30 more (leak, dew point) written with
/// the same 2-field shape.
pub const SENSORS: usize = 182;
/// Points in one frame of the park.
pub const FRAME_POINTS: usize = 2 * RACKS + CDUS + SENSORS;

/// Which points to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// Rack PDUs only.
    RackPdu,
    /// CDUs only.
    Cdu,
    /// MQTT sensors only.
    Sensor,
    /// Whole park frames, in the park's proportions.
    Park,
}

impl Shape {
    /// A short label for tables.
    pub fn label(self) -> &'static str {
        match self {
            Shape::RackPdu => "rack PDU (6 tags, 26 float fields)",
            Shape::Cdu => "CDU (4 tags, 31 float/bool/int/string fields)",
            Shape::Sensor => "MQTT sensor (4 tags, 2 float fields)",
            Shape::Park => "park mix (304 PDU : 8 CDU : 182 sensor)",
        }
    }
}

/// A small deterministic generator (xorshift64*): the same points on every run.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// An integer register in `lo..hi` (engineering units) times `scale`, as a
    /// collector decodes it.
    fn reg(&mut self, lo: f64, hi: f64, scale: f64) -> f64 {
        let raw = ((lo + self.unit() * (hi - lo)) / scale).round();
        raw * scale
    }

    /// A float32 register, widened.
    fn f32reg(&mut self, lo: f64, hi: f64) -> f64 {
        f64::from((lo + self.unit() * (hi - lo)) as f32)
    }

    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
}

fn centre(rack: usize) -> &'static str {
    if rack < 88 {
        "dc1"
    } else {
        "dc2"
    }
}

fn row(rack: usize) -> usize {
    rack / 19 + 1
}

/// The series of a rack PDU (`cn-ipdu`), feed `a` or `b`: built once per device, as
/// the Modbus collector does (`Series` in its device target, every poll's points
/// stamped with it by `Point::in_series`).
pub fn rack_pdu_series(rack: usize, feed: char) -> Series {
    let c = centre(rack);
    let row = row(rack);
    let r = rack % 19 + 1;
    Series::new("rack_pdu")
        .tag("centre", c)
        .tag("device", format!("{c}-row{row:02}-r{r:02}-pdu-{feed}"))
        .tag("feed", feed.to_string())
        .tag("model", "cn-ipdu")
        .tag("rack", format!("r{r:02}"))
        .tag("zone", format!("row{row:02}"))
}

/// The fields of a rack PDU point (`cn-ipdu`), in register order: per phase
/// voltage, current, active, apparent and reactive power, power factor, energy,
/// line voltage; then frequency and total energy.
fn pdu_field_names() -> Vec<FieldKey> {
    let mut names = Vec::with_capacity(26);
    for phase in 1..=3 {
        for name in [
            format!("voltage_l{phase}"),
            format!("current_l{phase}"),
            format!("power_l{phase}_kw"),
            format!("apparent_power_l{phase}_kva"),
            format!("power_factor_l{phase}"),
            format!("energy_l{phase}_kwh"),
            format!("reactive_power_l{phase}_kvar"),
            format!("line_voltage_l{phase}"),
        ] {
            names.push(FieldKey::from(name));
        }
    }
    names.push("frequency_hz".into());
    names.push("energy_kwh".into());
    names
}

/// The fields of a CDU point (`lc-cdu`), in register order.
const CDU_FIELDS: [&str; 31] = [
    "secondary_supply_temp_1",
    "secondary_supply_temp_2",
    "secondary_supply_temp_3",
    "secondary_return_temp",
    "primary_supply_temp",
    "primary_return_temp",
    "secondary_flow_lpm",
    "primary_flow_lpm",
    "loop_pressure_bar",
    "differential_pressure_bar",
    "filter_dp_bar",
    "heat_load_kw",
    "power_kw",
    "pump_1_speed_pct",
    "pump_2_speed_pct",
    "valve_demand_pct",
    "valve_feedback_pct",
    "coolant_level_pct",
    "supply_setpoint_c",
    "low_flow_alarm",
    "high_supply_temp_alarm",
    "filter_dirty_alarm",
    "serial_number",
    "pump_1_running",
    "pump_2_running",
    "pump_1_fault",
    "pump_2_fault",
    "leak_detected",
    "condensation_alarm",
    "pump_run_hours",
    "status_word",
];

/// The field names of every shape, made once and shared by every point, as the
/// collectors share theirs (the Modbus collector's per profile, the MQTT
/// collector's per subscription).
pub struct FieldNames {
    pdu: Vec<FieldKey>,
    cdu: Vec<FieldKey>,
    sensor: [FieldKey; 2],
}

impl FieldNames {
    pub fn new() -> FieldNames {
        FieldNames {
            pdu: pdu_field_names(),
            cdu: CDU_FIELDS
                .iter()
                .map(|&name| FieldKey::from(name))
                .collect(),
            sensor: ["temperature_c".into(), "humidity_pct".into()],
        }
    }
}

/// A rack PDU point (`cn-ipdu`) of the device's `series` at frame `frame`.
pub fn rack_pdu(rng: &mut Rng, names: &FieldNames, series: &Series, frame: i64) -> Point {
    let mut p = Point::in_series(series.clone(), T0 + frame * STEP_NS);
    // The collector knows how many fields a request brings (`reserve_fields`).
    p.reserve_fields(26);
    let mut names_in_order = names.pdu.iter();
    let mut add = |p: &mut Point, value: f64| {
        p.add_field(names_in_order.next().expect("26 PDU fields"), value);
    };
    let mut total = 0.0;
    for _phase in 1..=3 {
        let v = rng.reg(226.0, 232.0, 0.1);
        let i = rng.reg(4.0, 9.0, 0.01);
        let pf = rng.reg(0.93, 0.97, 0.001);
        let kva = v * i / 1000.0;
        let kw = kva * pf;
        let kwh = 0.01 * ((frame as f64 * kw * 10.0 / 3600.0 / 0.01).round());
        total += kwh;
        add(&mut p, v);
        add(&mut p, i);
        add(&mut p, 0.001 * (kw / 0.001).round());
        add(&mut p, 0.001 * (kva / 0.001).round());
        add(&mut p, pf);
        add(&mut p, kwh);
        add(&mut p, rng.reg(0.35, 0.48, 0.001));
        add(&mut p, rng.reg(392.0, 401.0, 0.1));
    }
    add(&mut p, rng.reg(49.95, 50.05, 0.01));
    add(&mut p, total);
    p
}

/// The series of the CDU (`lc-cdu`) of micro-module `unit`, built once per device as
/// the Modbus collector does.
pub fn cdu_series(unit: usize) -> Series {
    let mm = unit + 1;
    Series::new("cdu")
        .tag("centre", "dc2")
        .tag("device", format!("dc2-mm{mm:02}-cdu"))
        .tag("model", "lc-cdu")
        .tag("zone", format!("mm{mm:02}"))
}

/// A CDU point (`lc-cdu`) of micro-module `unit`, whose series is `series`, at frame
/// `frame`.
pub fn cdu(rng: &mut Rng, names: &FieldNames, series: &Series, unit: usize, frame: i64) -> Point {
    let mut p = Point::in_series(series.clone(), T0 + frame * STEP_NS);
    p.reserve_fields(31);
    let speed = rng.reg(70.0, 75.0, 0.1);
    // In CDU_FIELDS order.
    let values: [FieldValue; 31] = [
        rng.reg(35.5, 36.5, 0.1).into(),
        rng.reg(35.5, 36.5, 0.1).into(),
        rng.reg(35.5, 36.5, 0.1).into(),
        rng.reg(44.0, 46.0, 0.1).into(),
        rng.reg(29.5, 30.5, 0.1).into(),
        rng.reg(37.5, 39.0, 0.1).into(),
        rng.reg(480.0, 510.0, 0.1).into(),
        rng.reg(560.0, 590.0, 0.1).into(),
        rng.f32reg(2.7, 2.9).into(),
        rng.f32reg(0.85, 0.95).into(),
        rng.f32reg(0.15, 0.2).into(),
        rng.f32reg(300.0, 350.0).into(),
        rng.f32reg(2.3, 2.7).into(),
        speed.into(),
        speed.into(),
        rng.reg(90.0, 100.0, 0.1).into(),
        rng.reg(90.0, 100.0, 0.1).into(),
        rng.reg(91.0, 93.0, 0.1).into(),
        36.0.into(),
        rng.chance(0.01).into(),
        rng.chance(0.01).into(),
        rng.chance(0.02).into(),
        FieldValue::String(format!("LC{:06}", 100_000 + unit * 7919)),
        true.into(),
        (!rng.chance(0.05)).into(),
        false.into(),
        rng.chance(0.01).into(),
        false.into(),
        rng.chance(0.01).into(),
        (17_520 + frame / 360 + unit as i64 * 131).into(),
        ((rng.next_u64() % 4) as i64 * 256 + 1).into(),
    ];
    for (name, value) in names.cdu.iter().zip(values) {
        p.add_field(name, value);
    }
    p
}

/// An MQTT sensor point (rack inlet temperature and humidity) of sensor `sensor`. Its
/// series is built with the point, as the MQTT collector does for every message.
pub fn sensor(rng: &mut Rng, names: &FieldNames, sensor: usize, frame: i64) -> Point {
    let rack = sensor % RACKS;
    let c = centre(rack);
    let row = row(rack);
    let r = rack % 19 + 1;
    let round3 = |v: f64| (v * 1000.0).round() / 1000.0;
    let suffix = if sensor < RACKS { "inlet" } else { "aux" };
    Point::new("rack_inlet", T0 + frame * STEP_NS)
        .tag("centre", c)
        .tag("rack", format!("r{r:02}"))
        .tag("sensor", format!("{c}-row{row:02}-r{r:02}-{suffix}"))
        .tag("zone", format!("row{row:02}"))
        .field(&names.sensor[0], round3(22.0 + 4.0 * rng.unit()))
        .field(&names.sensor[1], round3(30.0 + 15.0 * rng.unit()))
}

/// `n` points of `shape`, frame after frame (every device once per frame). The points
/// of a Modbus device (PDU, CDU) share its series, as the collector's do; a sensor's
/// points each have their own, as the MQTT collector's do.
pub fn points(shape: Shape, n: usize) -> Vec<Point> {
    let mut rng = Rng::new(0x7469_6465_7761_7463); // "tidewatc"
    let names = FieldNames::new();
    let pdus: Vec<Series> = (0..RACKS)
        .flat_map(|rack| ['a', 'b'].map(|feed| rack_pdu_series(rack, feed)))
        .collect();
    // Only 8 CDUs in the park; the CDU shape uses 64, so the frame count stays sane.
    let cdus: Vec<Series> = (0..64).map(cdu_series).collect();
    let mut out = Vec::with_capacity(n);
    let mut frame = 0_i64;
    while out.len() < n {
        match shape {
            Shape::RackPdu => {
                for series in &pdus {
                    out.push(rack_pdu(&mut rng, &names, series, frame));
                }
            }
            Shape::Cdu => {
                for (unit, series) in cdus.iter().enumerate() {
                    out.push(cdu(&mut rng, &names, series, unit, frame));
                }
            }
            Shape::Sensor => {
                for s in 0..SENSORS {
                    out.push(sensor(&mut rng, &names, s, frame));
                }
            }
            Shape::Park => {
                for series in &pdus {
                    out.push(rack_pdu(&mut rng, &names, series, frame));
                }
                for (unit, series) in cdus[..CDUS].iter().enumerate() {
                    out.push(cdu(&mut rng, &names, series, unit, frame));
                }
                for s in 0..SENSORS {
                    out.push(sensor(&mut rng, &names, s, frame));
                }
            }
        }
        frame += 1;
    }
    out.truncate(n);
    out
}
