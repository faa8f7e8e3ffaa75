//! One interface to whichever store holds the points: what analytics and dashboards
//! use, without knowing whether the embedded store or InfluxDB is behind it.
//!
//! [`Store::open`] takes a [`StoreConfig`]: `embedded` (the default, nothing to
//! install) or `influxdb` (the InfluxDB writer behind its spool, and the InfluxQL
//! reader). Both sides speak the same two operations:
//!
//! - [`Store::write`]: points in; returns once they are accepted (synced in the
//!   embedded store's write-ahead log, or in the InfluxDB writer's spool).
//! - [`Store::scan`]: one measurement, a time range, tag filters and an optional field
//!   selection ([`Scan`]) out, as a polars `LazyFrame` in the
//!   [frame conventions](crate::frame). The embedded store pushes the filters into its
//!   Parquet scan; InfluxDB evaluates them in its query (`WHERE`), and the frame holds
//!   the answer. [`Store::read`] also collects it, on a blocking thread (collect a
//!   `LazyFrame` off the async threads: polars blocks, and refuses to run on a tokio
//!   current-thread runtime's thread).
//!
//! # Configuration
//!
//! A sample, as it appears in tidewatch's configuration file (the tests parse it):
//!
//! ```toml
//! [store.embedded]
//! dir = "/var/lib/tidewatch/store"
//! retention_days = 400
//! flush_interval = "5m"
//! ```
//!
//! or, with InfluxDB as the store (every setting of
//! [`InfluxConfig`], the InfluxDB writer's configuration):
//!
//! ```toml
//! [store.influxdb]
//! url = "http://127.0.0.1:8086"
//! api = "v1"
//! database = "tidewatch"
//! spool_dir = "/var/lib/tidewatch/spool/influx"
//! ```
//!
//! Without a `[store]` table the embedded store is used with its defaults
//! ([`StoreConfig::default`]).
//!
//! # Example
//!
//! ```
//! use tidewatch_model::Point;
//! use tidewatch_storage::embedded::EmbeddedConfig;
//! use tidewatch_storage::store::{Scan, Store, StoreConfig};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let store = Store::open(StoreConfig::Embedded(EmbeddedConfig::in_dir(dir.path()))).await?;
//! let t = 1_767_225_600_000_000_000;
//! store.write(vec![Point::new("pdu", t).tag("device", "pdu-01").field("power_kw", 4.2)]).await?;
//! let scan = Scan::new("pdu", t..t + 1).tag("device", "pdu-01").fields(["power_kw"]);
//! // A LazyFrame to build on (filters, group_by, ...) ...
//! let lazy = store.scan(&scan).await?;
//! // ... collected off the async threads: polars blocks, and on a tokio
//! // current-thread runtime it refuses to run inside the async context.
//! let df = tokio::task::spawn_blocking(move || lazy.collect()).await??;
//! assert_eq!(df.height(), 1);
//! // Or both at once:
//! assert_eq!(store.read(&scan).await?.height(), 1);
//! store.shutdown().await?;
//! # Ok(())
//! # }
//! ```

use std::ops::Range;
use std::sync::Arc;

use polars::prelude::*;
use serde::{Deserialize, Serialize};
use tidewatch_model::Point;

use crate::embedded::{EmbeddedConfig, EmbeddedStore};
use crate::frame::{ColumnKind, MeasurementSchema, TIME};
use crate::influx::{InfluxConfig, InfluxReader, InfluxWriter};

pub use crate::error::StoreError;

/// Which store, with its settings. Externally tagged: `[store.embedded]` or
/// `[store.influxdb]` in TOML; see the [module docs](self) for samples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
// Read once at start-up and never moved in a hot path: boxing would only add noise.
#[allow(clippy::large_enum_variant)]
pub enum StoreConfig {
    /// The embedded store (Parquet files and a write-ahead log in a directory).
    Embedded(EmbeddedConfig),
    /// InfluxDB: written through the InfluxDB writer (and its spool), read with
    /// InfluxQL on `/query` (1.x; 2.x through its v1 compatibility API, with the
    /// bucket as database; 3.x).
    Influxdb(InfluxConfig),
}

impl Default for StoreConfig {
    /// The embedded store with every default.
    fn default() -> Self {
        StoreConfig::Embedded(EmbeddedConfig::default())
    }
}

/// A tag filter of a [`Scan`]: the tag must have one of `values`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagFilter {
    /// The tag key.
    pub key: String,
    /// The accepted values (none: nothing matches).
    pub values: Vec<String>,
}

/// What to read: one measurement, a time range, tag filters (all must hold) and
/// optionally the fields to return.
///
/// A filter on a tag the measurement does not have matches nothing (as in InfluxQL);
/// a filter on a name that is a field is refused ([`StoreError::InvalidScan`]).
/// Selected fields the measurement does not have are left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scan {
    /// The measurement.
    pub measurement: String,
    /// Unix nanoseconds, start included, end excluded.
    pub time: Range<i64>,
    /// Tag filters, all of which must hold.
    pub tags: Vec<TagFilter>,
    /// The fields to return (`None`: every field). With a selection, rows where every
    /// selected field is null are left out.
    pub fields: Option<Vec<String>>,
}

impl Scan {
    /// Every row of `measurement` in `time` (Unix ns, end excluded).
    pub fn new(measurement: impl Into<String>, time: Range<i64>) -> Scan {
        Scan {
            measurement: measurement.into(),
            time,
            tags: Vec::new(),
            fields: None,
        }
    }

    /// Adds `value` to the accepted values of tag `key` (a second call with the same
    /// key widens the filter: `key = a OR key = b`).
    #[must_use]
    pub fn tag(mut self, key: impl Into<String>, value: impl Into<String>) -> Scan {
        let key = key.into();
        let value = value.into();
        match self.tags.iter_mut().find(|f| f.key == key) {
            Some(filter) => filter.values.push(value),
            None => self.tags.push(TagFilter {
                key,
                values: vec![value],
            }),
        }
        self
    }

    /// Returns only these fields (besides `time` and the tags).
    #[must_use]
    pub fn fields<S: Into<String>>(mut self, fields: impl IntoIterator<Item = S>) -> Scan {
        self.fields = Some(fields.into_iter().map(Into::into).collect());
        self
    }

    /// Checks the tag filters against the measurement's columns: `Ok(false)` when a
    /// filter names a tag the measurement lacks (nothing can match).
    pub(crate) fn check_tags(&self, schema: &MeasurementSchema) -> Result<bool, StoreError> {
        let mut can_match = true;
        for filter in &self.tags {
            match schema.get(&filter.key) {
                Some(ColumnKind::Tag) => {}
                Some(ColumnKind::Field(_)) => {
                    return Err(StoreError::InvalidScan(format!(
                        "{:?} is a field of {:?}, not a tag",
                        filter.key, self.measurement
                    )))
                }
                None => can_match = false,
            }
            if filter.values.is_empty() {
                can_match = false;
            }
        }
        Ok(can_match)
    }

    /// The selected fields that the measurement has (all of them without a selection).
    pub(crate) fn selected_fields(&self, schema: &MeasurementSchema) -> Vec<String> {
        schema
            .fields()
            .map(|(name, _)| name)
            .filter(|name| {
                self.fields
                    .as_ref()
                    .is_none_or(|wanted| wanted.iter().any(|w| w == name))
            })
            .map(str::to_owned)
            .collect()
    }

    /// The filter as a polars expression: time range, tags, and with a field selection
    /// "at least one selected field is not null".
    pub(crate) fn predicate(&self, schema: &MeasurementSchema) -> Result<Expr, StoreError> {
        // A typed literal, of exactly the column's type, so that polars compares it
        // with the Parquet statistics as it is.
        let time = |ns: i64| {
            lit(Scalar::new(
                crate::frame::time_dtype(),
                AnyValue::Datetime(ns, TimeUnit::Nanoseconds, None),
            ))
        };
        let mut predicate = col(TIME)
            .gt_eq(time(self.time.start))
            .and(col(TIME).lt(time(self.time.end)));
        if !self.check_tags(schema)? {
            return Ok(lit(false));
        }
        for filter in &self.tags {
            let any = filter
                .values
                .iter()
                .map(|v| col(filter.key.as_str()).eq(lit(v.as_str())))
                .reduce(|a, b| a.or(b))
                .expect("check_tags refuses empty value lists");
            predicate = predicate.and(any);
        }
        if self.fields.is_some() {
            let any_field = self
                .selected_fields(schema)
                .iter()
                .map(|f| col(f.as_str()).is_not_null())
                .reduce(|a, b| a.or(b));
            match any_field {
                Some(any) => predicate = predicate.and(any),
                None => return Ok(lit(false)),
            }
        }
        Ok(predicate)
    }
}

/// The store behind analytics and dashboards; see the [module docs](self).
///
/// A cheap handle (`Clone`). Used from async code; the embedded store's blocking
/// work runs on tokio's blocking threads.
#[derive(Clone)]
pub enum Store {
    /// The embedded store.
    Embedded(EmbeddedStore),
    /// InfluxDB.
    Influx {
        /// Writes, through the spool.
        writer: InfluxWriter,
        /// Reads, with InfluxQL (shared: a handle is cloned per task).
        reader: Arc<InfluxReader>,
    },
}

/// What [`Store::write`] accepted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Written {
    /// Points accepted (durable: they will be stored).
    pub points: usize,
    /// Points refused (invalid, or a field type conflict in the embedded store); the
    /// store logged and counted them.
    pub refused: usize,
}

impl Store {
    /// Opens the configured store (starting the InfluxDB writer, or opening the
    /// embedded store's directory and recovering it). Call inside a tokio runtime.
    pub async fn open(config: StoreConfig) -> Result<Store, StoreError> {
        match config {
            StoreConfig::Embedded(config) => {
                let store = tokio::task::spawn_blocking(move || EmbeddedStore::open(config))
                    .await
                    .map_err(|e| {
                        StoreError::Internal(format!("opening the store panicked: {e}"))
                    })??;
                Ok(Store::Embedded(store))
            }
            StoreConfig::Influxdb(config) => {
                let reader = Arc::new(InfluxReader::new(&config)?);
                let writer = InfluxWriter::start(config)
                    .await
                    .map_err(|e| StoreError::InfluxWriter(e.to_string()))?;
                Ok(Store::Influx { writer, reader })
            }
        }
    }

    /// Writes points; returns once they are accepted.
    pub async fn write(&self, points: Vec<Point>) -> Result<Written, StoreError> {
        match self {
            Store::Embedded(store) => {
                let store = store.clone();
                let accepted = tokio::task::spawn_blocking(move || store.write(&points))
                    .await
                    .map_err(|e| StoreError::Internal(format!("a store write panicked: {e}")))??;
                Ok(Written {
                    points: accepted.points,
                    refused: accepted.refused.len(),
                })
            }
            Store::Influx { writer, .. } => {
                let accepted = writer
                    .write(&points)
                    .await
                    .map_err(|e| StoreError::InfluxWriter(e.to_string()))?;
                Ok(Written {
                    points: accepted.points,
                    refused: accepted.invalid,
                })
            }
        }
    }

    /// One measurement for a time range, tag filters and a field selection, as a
    /// `LazyFrame` in the [frame conventions](crate::frame).
    pub async fn scan(&self, scan: &Scan) -> Result<LazyFrame, StoreError> {
        match self {
            Store::Embedded(store) => {
                let store = store.clone();
                let scan = scan.clone();
                tokio::task::spawn_blocking(move || store.scan(&scan))
                    .await
                    .map_err(|e| StoreError::Internal(format!("a store scan panicked: {e}")))?
            }
            Store::Influx { reader, .. } => Ok(reader.read(scan).await?.lazy()),
        }
    }

    /// [`scan`](Self::scan) and collect, on a blocking thread: the frame itself.
    ///
    /// Collecting a `LazyFrame` blocks (and polars refuses to run on the thread of a
    /// tokio current-thread runtime), so async code collects through
    /// `spawn_blocking`, as this does.
    pub async fn read(&self, scan: &Scan) -> Result<DataFrame, StoreError> {
        let lazy = self.scan(scan).await?;
        let context = format!("collecting the scan of {:?}", scan.measurement);
        tokio::task::spawn_blocking(move || lazy.collect())
            .await
            .map_err(|e| StoreError::Internal(format!("a store read panicked: {e}")))?
            .map_err(StoreError::polars(context))
    }

    /// Stops the background work: the embedded store flushes to Parquet; the InfluxDB
    /// writer delivers what it can within its `shutdown_timeout` (the rest stays in
    /// its spool for the next start).
    pub async fn shutdown(&self) -> Result<(), StoreError> {
        match self {
            Store::Embedded(store) => {
                let store = store.clone();
                tokio::task::spawn_blocking(move || store.shutdown())
                    .await
                    .map_err(|e| StoreError::Internal(format!("store shutdown panicked: {e}")))?
            }
            Store::Influx { writer, .. } => {
                let report = writer.shutdown().await;
                if !report.delivered_all {
                    tracing::warn!(
                        pending_batches = report.pending_batches,
                        "InfluxDB writer stopped with batches left in its spool"
                    );
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toml_blocks() -> Vec<String> {
        crate::doc_samples::toml_blocks(include_str!("store.rs"))
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct File {
        #[serde(default)]
        store: StoreConfig,
    }

    #[test]
    fn the_documented_samples_parse() {
        let blocks = toml_blocks();
        assert_eq!(blocks.len(), 2);
        let embedded: File = toml::from_str(&blocks[0]).unwrap();
        let StoreConfig::Embedded(e) = embedded.store else {
            panic!("embedded expected")
        };
        assert_eq!(e.retention_days, Some(400));
        assert_eq!(e.dir, std::path::Path::new("/var/lib/tidewatch/store"));
        let influx: File = toml::from_str(&blocks[1]).unwrap();
        let StoreConfig::Influxdb(i) = influx.store else {
            panic!("influxdb expected")
        };
        assert_eq!(i.database.as_deref(), Some("tidewatch"));
        let none: File = toml::from_str("").unwrap();
        assert_eq!(none.store, StoreConfig::default());
        assert!(matches!(none.store, StoreConfig::Embedded(_)));
        assert!(toml::from_str::<File>("[store.embedded]\nretention = 1").is_err());
        assert!(toml::from_str::<File>("[store.sqlite]\ndir = \"x\"").is_err());
    }

    #[test]
    fn tag_filters_widen_per_key() {
        let s = Scan::new("m", 0..10)
            .tag("a", "1")
            .tag("b", "2")
            .tag("a", "3");
        assert_eq!(s.tags.len(), 2);
        assert_eq!(s.tags[0].values, ["1", "3"]);
    }
}
