//! The spool's settings, as they appear in a sink's configuration.

use serde::{Deserialize, Serialize};

use super::error::SpoolError;
use super::layout::{RECORD_HEADER_LEN, SEGMENT_HEADER_LEN};

/// Settings of a [`Spool`](super::Spool). The directory is passed to
/// [`Spool::open`](super::Spool::open) separately.
///
/// ```toml
/// segment_bytes = 67108864   # 64 MiB
/// max_bytes = 1073741824     # 1 GiB
/// skip_corrupt = false
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpoolConfig {
    /// A segment file is closed and a new one started once the next record would take
    /// it past this size (bytes). Space is given back in whole segments, once all their
    /// records are acknowledged, so keep this well below `max_bytes` (a sixteenth by
    /// default). A single batch larger than this gets a segment of its own.
    #[serde(default = "default_segment_bytes")]
    pub segment_bytes: u64,

    /// Upper bound on the bytes of all segment files together, acknowledged records not
    /// yet deleted included. An append that would pass it fails with
    /// [`SpoolError::Full`]; nothing is ever dropped to make room.
    #[serde(default = "default_max_bytes")]
    pub max_bytes: u64,

    /// What to do on open when a segment is damaged somewhere other than a torn tail
    /// (a bad disk, not a crash): `false` (default) refuses to open, with an error that
    /// names the file and offset; `true` skips the damaged bytes, resumes at the next
    /// intact record, logs an error and counts the skipped region in
    /// [`SpoolStats::corrupt_regions_skipped`](super::SpoolStats::corrupt_regions_skipped).
    #[serde(default)]
    pub skip_corrupt: bool,
}

/// 64 MiB.
pub fn default_segment_bytes() -> u64 {
    64 << 20
}

/// 1 GiB.
pub fn default_max_bytes() -> u64 {
    1 << 30
}

impl Default for SpoolConfig {
    fn default() -> Self {
        SpoolConfig {
            segment_bytes: default_segment_bytes(),
            max_bytes: default_max_bytes(),
            skip_corrupt: false,
        }
    }
}

impl SpoolConfig {
    pub(crate) fn validate(&self) -> Result<(), SpoolError> {
        let smallest = SEGMENT_HEADER_LEN + RECORD_HEADER_LEN;
        if self.segment_bytes < smallest {
            return Err(SpoolError::Config(format!(
                "segment_bytes = {} is below the smallest useful segment ({smallest} bytes)",
                self.segment_bytes
            )));
        }
        if self.max_bytes < self.segment_bytes {
            return Err(SpoolError::Config(format!(
                "max_bytes = {} is below segment_bytes = {}",
                self.max_bytes, self.segment_bytes
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_example_parses_and_equals_the_defaults() {
        let doc = include_str!("config.rs");
        let example: String = doc
            .split("```toml\n")
            .nth(1)
            .and_then(|rest| rest.split("/// ```").next())
            .expect("example in the doc comment")
            .lines()
            .map(|line| line.trim_start().trim_start_matches("///").trim_start())
            .collect::<Vec<_>>()
            .join("\n");
        let parsed: SpoolConfig = toml::from_str(&example).unwrap();
        assert_eq!(parsed, SpoolConfig::default());
        let empty: SpoolConfig = toml::from_str("").unwrap();
        assert_eq!(empty, SpoolConfig::default());
    }

    #[test]
    fn unknown_fields_and_impossible_sizes_are_refused() {
        assert!(toml::from_str::<SpoolConfig>("max_byte = 10").is_err());
        let config = SpoolConfig {
            segment_bytes: 1 << 20,
            max_bytes: 1 << 10,
            ..SpoolConfig::default()
        };
        assert!(matches!(config.validate(), Err(SpoolError::Config(_))));
        let config = SpoolConfig {
            segment_bytes: 8,
            ..SpoolConfig::default()
        };
        assert!(matches!(config.validate(), Err(SpoolError::Config(_))));
    }
}
