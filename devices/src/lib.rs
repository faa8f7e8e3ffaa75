//! Device profiles and the site description: the one source of truth for what is in the
//! park and how each device is read.
//!
//! In the data flow this crate comes first. A *profile* (`fixtures/profiles/<model>.toml`)
//! is a device model's Modbus register map as data: table, address, data type, word
//! order, scale, sentinel and poll interval of each quantity. The *site file*
//! (`fixtures/site/qingdao.toml`) describes the park compactly (centres, zones, how many
//! racks, which profiles) and expands into a flat inventory of [`Device`]s and
//! [`Sensor`]s with stable ids. The plant simulator serves that inventory over Modbus
//! TCP and MQTT; the Modbus and MQTT collectors poll the same inventory with the same
//! profiles. This crate never converts values to registers or back: the simulator and
//! the collectors each do that with their own code, so a bug cannot hide by being
//! mirrored on both sides.
//!
//! Both files are TOML, read with unknown keys rejected; every error names the file,
//! line, column and key ([`ConfigError`]).
//!
//! ```
//! use tidewatch_devices::{ProfileSet, Site};
//!
//! let profiles = ProfileSet::builtin()?;
//! let site = Site::builtin(&profiles)?;
//! let cdu = site.devices().into_iter().find(|d| d.id == "dc2-mm03-cdu").unwrap();
//! let profile = profiles.get(&cdu.profile).unwrap();
//! let flow = profile.field("secondary_flow_lpm").unwrap();
//! assert_eq!((flow.address, flow.scale), (10, 0.1));
//! # Ok::<(), tidewatch_devices::ConfigError>(())
//! ```

pub mod duration;
pub mod error;
mod load;
pub mod profile;
pub mod site;

pub use duration::{format_duration, parse_duration, DurationError};
pub use error::{ConfigError, Location};
pub use profile::{
    Addressing, DataType, DeviceKind, Field, Profile, ProfileSet, Sentinel, Table, WordOrder,
};
pub use site::{
    CduSpec, Centre, Climate, Coolant, CoolingKind, Device, Electrical, FaultKind, FaultSpec,
    MeterRole, MeterSpec, Park, PayloadFormat, Plant, Sensor, SensorKind, Simulation, Site, Zone,
};
