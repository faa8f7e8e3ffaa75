//! The spool's errors: each names the file (and offset, for damage) and the cause.

use std::io;
use std::path::PathBuf;

/// Why an operation on the spool failed.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    /// The spool holds `max_bytes` already: nothing was written, nothing was dropped.
    /// The caller keeps the batch and applies backpressure; space comes back as the
    /// sender's acknowledgements let whole segments be deleted.
    #[error("spool is full: {used} of {max_bytes} bytes used, {needed} more needed")]
    Full {
        /// Bytes of segment files on disk now.
        used: u64,
        /// Bytes the rejected batches would add.
        needed: u64,
        /// The configured bound.
        max_bytes: u64,
    },
    /// A batch that can never be accepted, even by an empty spool.
    #[error("batch of {len} bytes cannot be spooled: the limit is {limit} bytes per batch")]
    TooLarge {
        /// Payload length of the batch.
        len: u64,
        /// The largest payload this spool accepts.
        limit: u64,
    },
    /// An operating-system error on a spool file (disk full, permission denied, ...).
    #[error("spool: cannot {op} {}: {source}", path.display())]
    Io {
        /// What the spool was doing, as a verb phrase ("sync", "create segment", ...).
        op: &'static str,
        /// The file or directory concerned.
        path: PathBuf,
        /// The cause, as the operating system reported it.
        #[source]
        source: io::Error,
    },
    /// A damaged record or segment header that is not a torn tail left by a crash.
    #[error(
        "spool file {} is damaged at offset {offset}: {damage}; \
         this is corruption, not a torn write left by a crash \
         (set skip_corrupt to skip the damaged bytes and keep every intact record)",
        path.display()
    )]
    Corrupt {
        /// The segment file.
        path: PathBuf,
        /// Byte offset of the damaged record or header in that file.
        offset: u64,
        /// What is wrong there.
        damage: Damage,
    },
    /// A segment written by a newer (or unknown) format version.
    #[error(
        "spool file {} has format version {version}; this build reads version {supported}",
        path.display()
    )]
    UnsupportedVersion {
        /// The segment file.
        path: PathBuf,
        /// The version byte found.
        version: u8,
        /// The version this build reads and writes.
        supported: u8,
    },
    /// Another process (or another `Spool` in this one) has the directory open.
    #[error("spool directory is in use by another process (lock held on {})", path.display())]
    Locked {
        /// The lock file.
        path: PathBuf,
    },
    /// An acknowledgement for a sequence number that was never handed out.
    #[error("cannot acknowledge sequence {seq}: the last appended sequence is {last}")]
    AckBeyondEnd {
        /// The sequence number passed to `ack`.
        seq: u64,
        /// The highest sequence number appended so far (0 if none).
        last: u64,
    },
    /// A configuration that cannot work.
    #[error("invalid spool configuration: {0}")]
    Config(String),
}

impl SpoolError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        SpoolError::Io {
            op,
            path: path.into(),
            source,
        }
    }

    /// The operating-system error kind, for an [`SpoolError::Io`].
    pub fn io_kind(&self) -> Option<io::ErrorKind> {
        match self {
            SpoolError::Io { source, .. } => Some(source.kind()),
            _ => None,
        }
    }
}

/// What is wrong with damaged bytes in a segment file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Damage {
    /// The file ends inside a record header.
    #[error("record header cut short ({available} of 20 bytes)")]
    ShortHeader {
        /// Bytes left in the file.
        available: u64,
    },
    /// The file ends inside a record's payload (or its length field is damaged).
    #[error("payload cut short ({available} of {len} bytes)")]
    ShortPayload {
        /// The length the header announces.
        len: u32,
        /// Bytes left in the file.
        available: u64,
    },
    /// Bytes where a record should start are not a record header.
    #[error("no record magic where a record should start")]
    BadRecordMagic,
    /// The record's CRC does not match its content.
    #[error("CRC mismatch (stored {stored:#010x}, computed {computed:#010x})")]
    CrcMismatch {
        /// The CRC in the header.
        stored: u32,
        /// The CRC of the bytes found.
        computed: u32,
    },
    /// An intact record whose sequence number does not follow the one before it.
    #[error("sequence {seq} does not follow {previous}")]
    SequenceOutOfOrder {
        /// The record's sequence number.
        seq: u64,
        /// The sequence number before it in the spool.
        previous: u64,
    },
    /// The file is shorter than a segment header.
    #[error("segment header cut short")]
    ShortSegmentHeader,
    /// The file does not start with the segment magic.
    #[error("not a spool segment (bad magic)")]
    BadSegmentMagic,
    /// The header's first sequence number is not the one in the file name.
    #[error("segment header says first sequence {header}, file name says {name}")]
    SegmentNameMismatch {
        /// The sequence number in the header.
        header: u64,
        /// The sequence number in the file name.
        name: u64,
    },
}
