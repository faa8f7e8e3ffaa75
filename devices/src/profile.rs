//! Device profiles: one TOML file per device model, describing its Modbus register map.
//!
//! A profile says *where* a quantity lives and *how* it is encoded (table, address, data
//! type, word order, scale, sentinel). It says nothing about how to turn a value into
//! registers or back: the simulator and the collectors each do that with their own code,
//! so that a bug mirrored on both sides cannot hide (see design.md, "Testing with real
//! parts").
//!
//! # File format
//!
//! ```toml
//! [profile]
//! model = "eastron-sdm630"          # must equal the file stem; sites refer to it
//! kind = "energy_meter"             # energy_meter | rack_pdu | cdu | inrow_unit
//! vendor = "Eastron"                # optional
//! description = "..."               # optional
//! addressing = "modicon"            # zero-based | one-based | modicon
//! max_registers_per_request = 125   # optional, 1..=125 (default 125)
//! max_bits_per_request = 2000       # optional, 1..=2000 (default 2000)
//! poll = "10s"                      # optional default poll interval (default 10s)
//!
//! [[field]]
//! name = "voltage_l1"     # lower-case snake_case; the field key of stored points
//! table = "input"         # coil | discrete_input | holding | input; implied by the
//!                         # prefix under modicon (if given it must agree)
//! address = 30001         # as the manual writes it, under `addressing`
//! type = "float32"        # bool | bit | int16 | uint16 | int32 | uint32 | int64 |
//!                         # uint64 | float32 | float64 | string
//! order = "ABCD"          # ABCD (default) | CDAB | BADC | DCBA
//! scale = 1.0             # value = raw * scale + offset; finite, non-zero (default 1)
//! offset = 0.0            # default 0
//! unit = "V"              # optional
//! sentinel = [0xFFFF]     # raw values meaning "not available": unsigned, of the
//!                         # field's width (negative numbers: two's complement), or
//!                         # "nan" for floats
//! bit = 3                 # type bit only, required: 0..=15, 0 = least significant
//! length = 8              # type string only, required: registers (2 characters each)
//! poll = "1s"             # optional, overrides the profile's poll
//! ```
//!
//! Rules checked on load, each reported with file, line, column and key: `bool` lives in
//! coils and discrete inputs, every other type in holding or input registers; scale,
//! offset, unit and sentinels apply to numeric types only; a field may not run past
//! address 65535 nor be wider than one request; field names are unique; fields of one
//! table may not overlap, except `bit` fields on different bits of one register.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::ConfigError;
use crate::load::Keyword;

/// Poll interval of a profile that does not set `poll`.
pub const DEFAULT_POLL: Duration = Duration::from_secs(10);
/// `max_registers_per_request` when not set: the Modbus limit for function codes 3 and 4.
pub const DEFAULT_MAX_REGISTERS_PER_REQUEST: u16 = 125;
/// `max_bits_per_request` when not set: the Modbus limit for function codes 1 and 2.
pub const DEFAULT_MAX_BITS_PER_REQUEST: u16 = 2000;

/// What kind of equipment a profile describes. The simulator uses it to pick the
/// physical model that supplies the profile's quantities; collectors use it as a tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceKind {
    /// A three-phase energy meter (facility, UPS, cooling plant, zone feeds).
    EnergyMeter,
    /// A rack power distribution unit (one per rack feed, A or B).
    RackPdu,
    /// A coolant distribution unit of a liquid-cooled micro-module.
    Cdu,
    /// An in-row (or in-module) air cooling unit.
    InrowUnit,
}

impl DeviceKind {
    /// The name used in tags, file names and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceKind::EnergyMeter => "energy_meter",
            DeviceKind::RackPdu => "rack_pdu",
            DeviceKind::Cdu => "cdu",
            DeviceKind::InrowUnit => "inrow_unit",
        }
    }
}

/// How the addresses in a profile are written, as in the vendor's manual.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Addressing {
    /// The address on the wire (PDU address), as most modern manuals give it.
    ZeroBased,
    /// Register numbers starting at 1: the wire address is one less.
    OneBased,
    /// Modicon notation: 0xxxx coils, 1xxxx discrete inputs, 3xxxx input registers,
    /// 4xxxx holding registers (five or six digits); the wire address is the number
    /// minus 00001, 10001, 30001 or 40001 (or 100001, 300001, 400001 for six digits).
    /// The table is implied by the prefix.
    Modicon,
}

/// The four Modbus data tables.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Deserialize, serde::Serialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Table {
    /// Read/write single bits, function code 1 to read.
    Coil,
    /// Read-only single bits, function code 2.
    DiscreteInput,
    /// Read/write 16-bit registers, function code 3 to read.
    Holding,
    /// Read-only 16-bit registers, function code 4.
    Input,
}

impl Table {
    /// True for the bit tables (coils and discrete inputs).
    pub fn is_bits(self) -> bool {
        matches!(self, Table::Coil | Table::DiscreteInput)
    }
    /// The Modbus function code that reads this table.
    pub fn read_function_code(self) -> u8 {
        match self {
            Table::Coil => 1,
            Table::DiscreteInput => 2,
            Table::Holding => 3,
            Table::Input => 4,
        }
    }
}

/// The encoding of a field's raw value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DataType {
    /// One coil or discrete input.
    Bool,
    /// One bit (`bit`, 0 = least significant) inside a 16-bit register.
    Bit,
    Int16,
    Uint16,
    Int32,
    Uint32,
    Int64,
    Uint64,
    Float32,
    Float64,
    /// ASCII text, two characters per register (first character in the high byte,
    /// unless the byte order is swapped), `length` registers long, NUL padded.
    String,
}

impl DataType {
    /// How many registers (or bits, for `Bool`) one value occupies; `string_len` is the
    /// `length` of a string field.
    pub fn width(self, string_len: u16) -> u16 {
        match self {
            DataType::Bool | DataType::Bit | DataType::Int16 | DataType::Uint16 => 1,
            DataType::Int32 | DataType::Uint32 | DataType::Float32 => 2,
            DataType::Int64 | DataType::Uint64 | DataType::Float64 => 4,
            DataType::String => string_len,
        }
    }
    /// True for IEEE floats.
    pub fn is_float(self) -> bool {
        matches!(self, DataType::Float32 | DataType::Float64)
    }
}

/// Word and byte order of a multi-byte value, named by where the bytes of the
/// big-endian value `A B C D` (A most significant) end up on the wire.
///
/// For 64-bit values the same rule extends: `ABCD` is fully big-endian, `CDAB` reverses
/// the order of the 16-bit words, `BADC` swaps the bytes inside each word, `DCBA` does
/// both (fully little-endian). For 16-bit values only the byte swap matters: `ABCD` and
/// `CDAB` are `AB`, `BADC` and `DCBA` are `BA`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
pub enum WordOrder {
    #[default]
    ABCD,
    CDAB,
    BADC,
    DCBA,
}

impl WordOrder {
    /// Whether the 16-bit words are sent least significant first.
    pub fn words_swapped(self) -> bool {
        matches!(self, WordOrder::CDAB | WordOrder::DCBA)
    }
    /// Whether the two bytes inside each register are swapped.
    pub fn bytes_swapped(self) -> bool {
        matches!(self, WordOrder::BADC | WordOrder::DCBA)
    }
}

/// A raw value meaning "not available": the register contents as an unsigned number of
/// the field's width (after word order is undone), or NaN for float fields. A negative
/// sentinel in a profile file (`-1`) is stored as its two's complement of that width
/// (`0xFFFF` for a 16-bit field).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Sentinel {
    Raw(u64),
    NaN,
}

/// One readable quantity of a device.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    /// The quantity's name, used as the field key in stored points. For simulated
    /// devices it must be a quantity the simulator's model of this kind provides.
    pub name: String,
    pub table: Table,
    /// Address on the wire (already converted from the profile's addressing).
    pub address: u16,
    pub data_type: DataType,
    pub order: WordOrder,
    /// For `DataType::Bit`: the bit number inside the register (0..=15).
    pub bit: Option<u8>,
    /// For `DataType::String`: the length in registers.
    pub length: u16,
    /// Engineering value = raw * scale + offset.
    pub scale: f64,
    pub offset: f64,
    pub unit: Option<String>,
    pub sentinels: Vec<Sentinel>,
    /// How often to read this field (the profile's default when not set).
    pub poll: Duration,
    /// Where in the profile file this field was declared (1-based line).
    pub line: usize,
}

impl Field {
    /// Registers (or bits) occupied by this field.
    pub fn width(&self) -> u16 {
        self.data_type.width(self.length)
    }
    /// The last address this field occupies.
    pub fn end_address(&self) -> u16 {
        // Not `address + width - 1`: a field ending at 65535 would overflow on the way.
        self.address.saturating_add(self.width().saturating_sub(1))
    }
}

/// A device model's register map.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    /// The profile's name, as sites refer to it (the file stem).
    pub model: String,
    pub kind: DeviceKind,
    pub vendor: Option<String>,
    pub description: Option<String>,
    pub addressing: Addressing,
    /// The device's own limit on registers per read request (at most 125).
    pub max_registers_per_request: u16,
    /// The device's own limit on bits per read request (at most 2000).
    pub max_bits_per_request: u16,
    /// Default poll interval for fields that do not set their own.
    pub poll: Duration,
    pub fields: Vec<Field>,
    /// The file this profile was read from.
    pub path: PathBuf,
}

impl Profile {
    /// The field with this name.
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }
}

// ---------------------------------------------------------------------------------------
// Keywords: how each enumeration is written in the files and in messages.

impl Keyword for DeviceKind {
    const WHAT: &'static str = "device kind";
    const ALL: &'static [Self] = &[
        DeviceKind::EnergyMeter,
        DeviceKind::RackPdu,
        DeviceKind::Cdu,
        DeviceKind::InrowUnit,
    ];
    fn as_str(self) -> &'static str {
        DeviceKind::as_str(self)
    }
}

impl fmt::Display for DeviceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl DeviceKind {
    /// The quantity names the plant simulator provides for devices of this kind (units:
    /// kW, kWh, C, bar, L/min, %; profiles convert with `scale`). A profile of a simulated
    /// device takes its field names from this list; the parser does not enforce it, since
    /// a profile of a real device may have fields the simulator does not model.
    pub fn quantities(self) -> &'static [&'static str] {
        match self {
            DeviceKind::EnergyMeter => &[
                "voltage_l1",
                "voltage_l2",
                "voltage_l3",
                "current_l1",
                "current_l2",
                "current_l3",
                "power_l1_kw",
                "power_l2_kw",
                "power_l3_kw",
                "power_total_kw",
                "apparent_power_kva",
                "reactive_power_kvar",
                "power_factor",
                "frequency_hz",
                "import_kwh",
                "export_kwh",
                "total_kwh",
                "max_demand_kw",
            ],
            DeviceKind::RackPdu => &[
                "voltage_l1",
                "voltage_l2",
                "voltage_l3",
                "current_l1",
                "current_l2",
                "current_l3",
                "power_l1_kw",
                "power_l2_kw",
                "power_l3_kw",
                "apparent_power_l1_kva",
                "apparent_power_l2_kva",
                "apparent_power_l3_kva",
                "reactive_power_l1_kvar",
                "reactive_power_l2_kvar",
                "reactive_power_l3_kvar",
                "power_factor_l1",
                "power_factor_l2",
                "power_factor_l3",
                "line_voltage_l1",
                "line_voltage_l2",
                "line_voltage_l3",
                "energy_l1_kwh",
                "energy_l2_kwh",
                "energy_l3_kwh",
                "active_power_kw",
                "apparent_power_kva",
                "power_factor",
                "frequency_hz",
                "energy_kwh",
                "model_name",
            ],
            DeviceKind::Cdu => &[
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
                "pump_1_speed_pct",
                "pump_2_speed_pct",
                "pump_1_running",
                "pump_2_running",
                "pump_1_fault",
                "pump_2_fault",
                "valve_demand_pct",
                "valve_feedback_pct",
                "coolant_level_pct",
                "leak_detected",
                "condensation_alarm",
                "low_flow_alarm",
                "high_supply_temp_alarm",
                "filter_dirty_alarm",
                "heat_load_kw",
                "power_kw",
                "supply_setpoint_c",
                "serial_number",
            ],
            DeviceKind::InrowUnit => &[
                "return_air_temp",
                "supply_air_temp",
                "chw_supply_temp",
                "chw_return_temp",
                "fan_speed_pct",
                "chw_valve_pct",
                "cooling_output_kw",
                "fan_power_kw",
                "energy_kwh",
                "runtime_hours",
                "operating_seconds",
                "unit_on",
                "alarm",
            ],
        }
    }
}

impl Addressing {
    /// The name used in profile files.
    pub fn as_str(self) -> &'static str {
        match self {
            Addressing::ZeroBased => "zero-based",
            Addressing::OneBased => "one-based",
            Addressing::Modicon => "modicon",
        }
    }
}

impl Keyword for Addressing {
    const WHAT: &'static str = "addressing";
    const ALL: &'static [Self] = &[
        Addressing::ZeroBased,
        Addressing::OneBased,
        Addressing::Modicon,
    ];
    fn as_str(self) -> &'static str {
        Addressing::as_str(self)
    }
}

impl fmt::Display for Addressing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Table {
    /// The name used in profile files.
    pub fn as_str(self) -> &'static str {
        match self {
            Table::Coil => "coil",
            Table::DiscreteInput => "discrete_input",
            Table::Holding => "holding",
            Table::Input => "input",
        }
    }
    /// One element of the table in words: "coil", "holding register".
    pub fn one(self) -> &'static str {
        match self {
            Table::Coil => "coil",
            Table::DiscreteInput => "discrete input",
            Table::Holding => "holding register",
            Table::Input => "input register",
        }
    }
    /// Several elements in words: "coils", "holding registers".
    pub fn many(self) -> &'static str {
        match self {
            Table::Coil => "coils",
            Table::DiscreteInput => "discrete inputs",
            Table::Holding => "holding registers",
            Table::Input => "input registers",
        }
    }
}

impl Keyword for Table {
    const WHAT: &'static str = "table";
    const ALL: &'static [Self] = &[
        Table::Coil,
        Table::DiscreteInput,
        Table::Holding,
        Table::Input,
    ];
    fn as_str(self) -> &'static str {
        Table::as_str(self)
    }
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl DataType {
    /// Every data type, in the order messages list them.
    pub const ALL: [DataType; 11] = [
        DataType::Bool,
        DataType::Bit,
        DataType::Int16,
        DataType::Uint16,
        DataType::Int32,
        DataType::Uint32,
        DataType::Int64,
        DataType::Uint64,
        DataType::Float32,
        DataType::Float64,
        DataType::String,
    ];

    /// The name used in profile files (`type = "float32"`).
    pub fn as_str(self) -> &'static str {
        match self {
            DataType::Bool => "bool",
            DataType::Bit => "bit",
            DataType::Int16 => "int16",
            DataType::Uint16 => "uint16",
            DataType::Int32 => "int32",
            DataType::Uint32 => "uint32",
            DataType::Int64 => "int64",
            DataType::Uint64 => "uint64",
            DataType::Float32 => "float32",
            DataType::Float64 => "float64",
            DataType::String => "string",
        }
    }

    /// True for the signed integer types.
    pub fn is_signed_integer(self) -> bool {
        matches!(self, DataType::Int16 | DataType::Int32 | DataType::Int64)
    }
}

impl Keyword for DataType {
    const WHAT: &'static str = "data type";
    const ALL: &'static [Self] = &DataType::ALL;
    fn as_str(self) -> &'static str {
        DataType::as_str(self)
    }
}

impl fmt::Display for DataType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl WordOrder {
    /// Every order.
    pub const ALL: [WordOrder; 4] = [
        WordOrder::ABCD,
        WordOrder::CDAB,
        WordOrder::BADC,
        WordOrder::DCBA,
    ];

    /// The name used in profile files.
    pub fn as_str(self) -> &'static str {
        match self {
            WordOrder::ABCD => "ABCD",
            WordOrder::CDAB => "CDAB",
            WordOrder::BADC => "BADC",
            WordOrder::DCBA => "DCBA",
        }
    }
}

impl Keyword for WordOrder {
    const WHAT: &'static str = "word order";
    const ALL: &'static [Self] = &WordOrder::ALL;
    fn as_str(self) -> &'static str {
        WordOrder::as_str(self)
    }
}

impl fmt::Display for WordOrder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

// ---------------------------------------------------------------------------------------
// Reading profiles.

impl Profile {
    /// Parses and validates a profile. `path` is used in error messages and must end in
    /// `<model>.toml` (the model must equal the file stem); nothing is read from it.
    #[allow(clippy::should_implement_trait)]
    pub fn from_str(text: &str, path: impl AsRef<Path>) -> Result<Profile, ConfigError> {
        crate::load::profile::parse(text, path.as_ref())
    }

    /// Reads, parses and validates a profile file.
    pub fn load(path: impl AsRef<Path>) -> Result<Profile, ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Profile::from_str(&text, path)
    }

    /// The fields of one table, in declaration order.
    pub fn fields_in(&self, table: Table) -> impl Iterator<Item = &Field> + '_ {
        self.fields.iter().filter(move |f| f.table == table)
    }
}

/// The profiles shipped in `fixtures/profiles/`, compiled into the binary so it works
/// from any directory: (model, file text).
const BUILTIN_PROFILES: [(&str, &str); 6] = [
    (
        "cn-dtsd-meter",
        include_str!("../../fixtures/profiles/cn-dtsd-meter.toml"),
    ),
    (
        "cn-ipdu",
        include_str!("../../fixtures/profiles/cn-ipdu.toml"),
    ),
    (
        "eastron-sdm630",
        include_str!("../../fixtures/profiles/eastron-sdm630.toml"),
    ),
    (
        "inrow-acu",
        include_str!("../../fixtures/profiles/inrow-acu.toml"),
    ),
    (
        "lc-cdu",
        include_str!("../../fixtures/profiles/lc-cdu.toml"),
    ),
    (
        "raritan-px3",
        include_str!("../../fixtures/profiles/raritan-px3.toml"),
    ),
];

/// A set of profiles by model name, as sites refer to them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProfileSet {
    profiles: BTreeMap<String, Profile>,
}

impl ProfileSet {
    /// An empty set.
    pub fn new() -> Self {
        ProfileSet::default()
    }

    /// The profiles shipped with tidewatch (`fixtures/profiles/*.toml`, compiled in);
    /// their paths read `fixtures/profiles/<model>.toml`.
    pub fn builtin() -> Result<ProfileSet, ConfigError> {
        let mut set = ProfileSet::new();
        for (model, text) in BUILTIN_PROFILES {
            set.insert(Profile::from_str(
                text,
                format!("fixtures/profiles/{model}.toml"),
            )?);
        }
        Ok(set)
    }

    /// Every `*.toml` file in `dir` (not recursive), in file name order.
    pub fn load_dir(dir: impl AsRef<Path>) -> Result<ProfileSet, ConfigError> {
        let dir = dir.as_ref();
        let read_error = |source| ConfigError::Read {
            path: dir.to_owned(),
            source,
        };
        let mut paths = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(read_error)? {
            let path = entry.map_err(read_error)?.path();
            if path.extension().is_some_and(|e| e == "toml") && path.is_file() {
                paths.push(path);
            }
        }
        paths.sort();
        let mut set = ProfileSet::new();
        for path in paths {
            set.insert(Profile::load(path)?);
        }
        Ok(set)
    }

    /// Adds a profile, returning the one it replaces.
    pub fn insert(&mut self, profile: Profile) -> Option<Profile> {
        self.profiles.insert(profile.model.clone(), profile)
    }

    /// The profile of this model.
    pub fn get(&self, model: &str) -> Option<&Profile> {
        self.profiles.get(model)
    }

    /// All profiles, by model name.
    pub fn iter(&self) -> impl Iterator<Item = &Profile> + '_ {
        self.profiles.values()
    }

    /// All model names, sorted.
    pub fn models(&self) -> impl Iterator<Item = &str> + '_ {
        self.profiles.keys().map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.profiles.len()
    }

    pub fn is_empty(&self) -> bool {
        self.profiles.is_empty()
    }
}

impl<'a> IntoIterator for &'a ProfileSet {
    type Item = &'a Profile;
    type IntoIter = std::collections::btree_map::Values<'a, String, Profile>;
    fn into_iter(self) -> Self::IntoIter {
        self.profiles.values()
    }
}
