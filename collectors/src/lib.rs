//! Collectors: where tidewatch meets the hardware.
//!
//! In the data flow they come right after the devices and before storage: the Modbus
//! TCP collector ([`modbus`]) polls CDUs, PDUs, in-row units and energy meters as the
//! device profiles and the site description of `tidewatch-devices` describe them, and
//! turns every answer into [`tidewatch_model::Point`]s (measurement = the device kind,
//! tags from the site, one field per profile field, timestamped when the response
//! arrived) plus a `modbus_device` health point per poll. The MQTT collector
//! ([`mqtt`]) subscribes to rack sensors and leak ropes (topic templates to tags;
//! JSON, line protocol or plain-number payloads) and acknowledges each message only
//! once its points are accepted.
//!
//! Both write `Vec<Point>` batches to a [`sink::PointSink`], whose write resolves
//! once the points are durably accepted; the command line implements it over the
//! storage sinks (InfluxDB behind the spool, or the embedded store), and a
//! [`sink::Tee`] in front hands accepted batches to the live cache and the alert
//! engine. A bounded `tokio::sync::mpsc::Sender<Vec<Point>>` is a sink too. This
//! crate does not depend on storage.
//!
//! Decoding registers into values is written here, independently of the plant
//! simulator's encoder: they share the profile files, never the conversion code.
//!
//! ```no_run
//! use tidewatch_collectors::modbus::{ModbusCollector, ModbusConfig};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let config = ModbusConfig::from_toml_str(r#"
//!     [[endpoint]]
//!     address = "10.20.3.11:502"
//!     devices = ["dc2-mm03-cdu"]
//! "#)?;
//! let collector = ModbusCollector::load(config)?;
//! let (tx, mut rx) = tokio::sync::mpsc::channel(1024);
//! let running = collector.start(tx);
//! while let Some(batch) = rx.recv().await {
//!     for point in batch {
//!         println!("{} {:?}", point.measurement(), point.fields());
//!     }
//! }
//! running.shutdown().await;
//! # Ok(())
//! # }
//! ```

pub mod modbus;
pub mod mqtt;
pub mod sink;

pub use sink::{PointSink, SinkError, Tee, TeeReceiver, WriteError};
