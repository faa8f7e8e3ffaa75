//! The embedded store's settings, as they appear under `[store.embedded]` in
//! tidewatch's configuration (see [`StoreConfig`](crate::store::StoreConfig)).
//!
//! A sample, which the unit tests below parse; every value shown is the default:
//!
//! ```toml
//! dir = "/var/lib/tidewatch/store"
//! # retention_days = 400         # absent (the default): keep every day
//! flush_interval = "5m"
//! flush_max_points = 100000
//! compact_after = "1h"
//! compact_max_files = 48
//!
//! [wal]
//! max_bytes = 268435456
//! segment_bytes = 16777216
//! ```

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::influx::duration_text;
use crate::spool::SpoolConfig;

/// Settings of an [`EmbeddedStore`](super::EmbeddedStore); see the
/// [module docs](self) for a sample.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbeddedConfig {
    /// The store's directory: the write-ahead log in `wal/`, the Parquet files in
    /// `data/` (the layout is in the `layout` module's docs). One process at a time.
    #[serde(default = "default_dir")]
    pub dir: PathBuf,

    /// Day partitions (UTC days) that ended more than this many days before today are
    /// deleted, whole. Absent: nothing is ever deleted. Points older than that can
    /// still be written; they are deleted at the next maintenance pass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_days: Option<u32>,

    /// Rows written wait in the write-ahead log (and in memory, where scans see them)
    /// at most this long before they are flushed to Parquet files. Each flush writes
    /// one file per measurement and day it touches, so shorter intervals make more
    /// small files until the day is compacted.
    #[serde(default = "default_flush_interval", with = "duration_text")]
    pub flush_interval: Duration,

    /// A flush starts early once this many points wait, or once they fill half of the
    /// WAL's `max_bytes`. This bounds the memory they take: waiting points are kept as
    /// points, about 1 to 3 KiB each for a device with tens of fields.
    #[serde(default = "default_flush_max_points")]
    pub flush_max_points: usize,

    /// A day is closed, and its partitions compacted into one file each, once it ended
    /// this long ago (late points within this delay do not reopen it).
    #[serde(default = "default_compact_after", with = "duration_text")]
    pub compact_after: Duration,

    /// A partition of a day that is not closed yet is compacted when it has more than
    /// this many files (keeps today's scans from opening hundreds of files).
    #[serde(default = "default_compact_max_files")]
    pub compact_max_files: usize,

    /// The write-ahead log's bounds. When it is full (the Parquet files cannot be
    /// written for a long time), writes fail with
    /// [`StoreError::Full`](super::StoreError::Full) and nothing is dropped: the caller
    /// applies backpressure. Pending rows are also held in memory while the files
    /// cannot be written (about 3 to 6 times their WAL size), so keep `max_bytes`
    /// within what the machine can hold that many times over.
    #[serde(default = "default_wal")]
    pub wal: SpoolConfig,
}

/// `/var/lib/tidewatch/store`.
pub fn default_dir() -> PathBuf {
    PathBuf::from("/var/lib/tidewatch/store")
}

/// 5 minutes.
pub fn default_flush_interval() -> Duration {
    Duration::from_secs(300)
}

/// 100 000.
pub fn default_flush_max_points() -> usize {
    100_000
}

/// One hour.
pub fn default_compact_after() -> Duration {
    Duration::from_secs(3600)
}

/// 48.
pub fn default_compact_max_files() -> usize {
    48
}

/// 256 MiB in segments of 16 MiB.
pub fn default_wal() -> SpoolConfig {
    SpoolConfig {
        max_bytes: 256 << 20,
        segment_bytes: 16 << 20,
        skip_corrupt: false,
    }
}

impl Default for EmbeddedConfig {
    fn default() -> Self {
        EmbeddedConfig {
            dir: default_dir(),
            retention_days: None,
            flush_interval: default_flush_interval(),
            flush_max_points: default_flush_max_points(),
            compact_after: default_compact_after(),
            compact_max_files: default_compact_max_files(),
            wal: default_wal(),
        }
    }
}

impl EmbeddedConfig {
    /// Every default, in `dir`.
    pub fn in_dir(dir: impl Into<PathBuf>) -> EmbeddedConfig {
        EmbeddedConfig {
            dir: dir.into(),
            ..EmbeddedConfig::default()
        }
    }

    pub(crate) fn validate(&self) -> Result<(), String> {
        if self.flush_interval.is_zero() {
            return Err("flush_interval must be above zero".into());
        }
        if self.flush_max_points == 0 {
            return Err("flush_max_points must be at least 1".into());
        }
        if self.compact_max_files < 2 {
            return Err("compact_max_files must be at least 2".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_sample_parses_and_shows_the_defaults() {
        let blocks = crate::doc_samples::toml_blocks(include_str!("config.rs"));
        let sample = blocks.first().expect("a sample in the module docs");
        let parsed: EmbeddedConfig = toml::from_str(sample).unwrap();
        assert_eq!(parsed, EmbeddedConfig::default());
        assert_eq!(
            toml::from_str::<EmbeddedConfig>("").unwrap(),
            EmbeddedConfig::default()
        );
        let with: EmbeddedConfig = toml::from_str("retention_days = 400").unwrap();
        assert_eq!(with.retention_days, Some(400));
        assert!(toml::from_str::<EmbeddedConfig>("retention = 3").is_err());
    }
}
