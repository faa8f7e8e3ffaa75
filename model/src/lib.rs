//! The point model of tidewatch and its InfluxDB line protocol encoding: the
//! bottom of the dependency graph, with no dependency on any other tidewatch
//! crate. The collectors (Modbus, MQTT) and the plant simulator build
//! [`Point`]s (a measurement, sorted tags, typed fields, a nanosecond
//! timestamp); storage encodes them with [`line_protocol::encode_batch`] for
//! InfluxDB's `/api/v2/write` or `/write`, or keeps them in the embedded store;
//! the analytics job emits its derived values as points too. Encoding is the
//! hot path: it appends to a caller's buffer and allocates nothing else.
//!
//! ```
//! use tidewatch_model::{line_protocol, FieldValue, Point};
//!
//! let point = Point::new("cdu", 1_700_000_000_000_000_000)
//!     .tag("site", "hall A")
//!     .tag("cdu", "cdu-01")
//!     .field("supply_temp_c", 18.5)
//!     .field("pump_rpm", 2400_i64)
//!     .field("leak", false);
//! assert_eq!(point.field_value("leak"), Some(&FieldValue::Boolean(false)));
//!
//! let mut out = Vec::new();
//! line_protocol::encode(&point, &mut out)?;
//! assert_eq!(
//!     std::str::from_utf8(&out).unwrap(),
//!     "cdu,cdu=cdu-01,site=hall\\ A supply_temp_c=18.5,pump_rpm=2400i,leak=false 1700000000000000000\n"
//! );
//! # Ok::<(), line_protocol::EncodeError>(())
//! ```

pub mod line_protocol;
mod point;

pub use point::{FieldKey, FieldValue, Point, Series};
