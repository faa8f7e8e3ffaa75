//! The errors of the [`Store`](crate::store::Store) interface and of the embedded
//! store; each names the file, the measurement or the server concerned.

use std::io;
use std::path::PathBuf;

use polars::prelude::PolarsError;

use crate::spool::SpoolError;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The write-ahead log holds its `max_bytes` already (the Parquet files could not
    /// be written for a while): nothing of this write was accepted, nothing was
    /// dropped. Keep the points, wait and write them again (backpressure).
    #[error("embedded store: the write-ahead log is full ({0}); retry later")]
    Full(#[source] SpoolError),
    /// The write-ahead log failed (an I/O error, a damaged segment): nothing of this
    /// write counts as accepted.
    #[error("embedded store: write-ahead log: {0}")]
    Wal(#[source] SpoolError),
    /// An operating-system error on a store file or directory.
    #[error("embedded store: cannot {op} {}: {source}", path.display())]
    Io {
        /// What the store was doing ("create partition directory", "rename", ...).
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// polars failed to build, write or read a frame.
    #[error("{context}: {source}")]
    Polars {
        /// What was being done, and on what.
        context: String,
        /// The cause.
        #[source]
        source: PolarsError,
    },
    /// A file of the store that does not follow its layout, or a WAL record that
    /// cannot be decoded.
    #[error("embedded store: {} is damaged: {reason}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// An earlier flush of the embedded store failed in an unexpected way (a bug), and
    /// flushing stopped in this process. Writes are still accepted into the write-ahead
    /// log; opening the store again replays them into Parquet.
    #[error(
        "embedded store: flushing stopped after an internal error (see the log); \
         accepted points are safe in the write-ahead log and are flushed when the store \
         is opened again"
    )]
    FlushStopped,
    /// An internal error (a bug caught at a boundary); the message says where.
    #[error("store: internal error: {0}")]
    Internal(String),
    /// A configuration that cannot work.
    #[error("store configuration: {0}")]
    Config(String),
    /// A scan that cannot be answered as asked (a tag filter on a field, ...).
    #[error("invalid scan: {0}")]
    InvalidScan(String),
    /// InfluxDB could not be queried, or answered something unreadable.
    #[error("InfluxDB query: {0}")]
    Influx(String),
    /// The InfluxDB writer refused to start or to take points.
    #[error("InfluxDB writer: {0}")]
    InfluxWriter(String),
}

impl StoreError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        StoreError::Io {
            op,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn polars(context: impl Into<String>) -> impl FnOnce(PolarsError) -> StoreError {
        let context = context.into();
        move |source| StoreError::Polars { context, source }
    }

    pub(crate) fn from_spool(e: SpoolError) -> StoreError {
        match e {
            SpoolError::Full { .. } => StoreError::Full(e),
            other => StoreError::Wal(other),
        }
    }
}
