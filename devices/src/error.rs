//! The one error type of this crate, [`ConfigError`].
//!
//! Every complaint about a file's content names the file, the line and column (1-based,
//! columns counted in characters), the offending key as a dotted path with zero-based
//! array indices (`field[3].type`, `centre[1].zone[2].pdu_profile`), and the cause in
//! plain words:
//!
//! ```text
//! fixtures/profiles/x.toml:17:8: field[3].type: unknown data type "flaot32"; expected one of bool, bit, ...
//! ```

use std::fmt;
use std::path::{Path, PathBuf};

/// A position in a file: 1-based line, 1-based column counted in characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Location {
    pub line: usize,
    pub column: usize,
}

impl Location {
    /// The location of byte `offset` in `text` (an offset past the end is placed after
    /// the last character).
    pub fn of_offset(text: &str, offset: usize) -> Self {
        let mut offset = offset.min(text.len());
        while !text.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &text[..offset];
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        Location {
            line: before.matches('\n').count() + 1,
            column: before[line_start..].chars().count() + 1,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// A profile or site file that could not be read or says something wrong.
#[derive(Debug)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file or directory could not be read.
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file was read, but its content is not a valid profile or site.
    Invalid {
        /// The file, as the caller named it.
        path: PathBuf,
        /// Where in the file; `None` only when the cause has no place (rare).
        location: Option<Location>,
        /// Dotted path of the offending key (`field[3].address`); empty when the
        /// complaint is about the file as a whole.
        field: String,
        /// The cause, in plain words.
        message: String,
    },
}

impl ConfigError {
    /// The file the error is about.
    pub fn path(&self) -> &Path {
        match self {
            ConfigError::Read { path, .. } | ConfigError::Invalid { path, .. } => path,
        }
    }

    /// Where in the file, for content errors.
    pub fn location(&self) -> Option<Location> {
        match self {
            ConfigError::Read { .. } => None,
            ConfigError::Invalid { location, .. } => *location,
        }
    }

    /// The dotted path of the offending key (empty for read errors and file-wide
    /// complaints).
    pub fn field(&self) -> &str {
        match self {
            ConfigError::Read { .. } => "",
            ConfigError::Invalid { field, .. } => field,
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Read { path, source } => {
                write!(f, "{}: cannot read: {source}", path.display())
            }
            ConfigError::Invalid {
                path,
                location,
                field,
                message,
            } => {
                write!(f, "{}", path.display())?;
                if let Some(location) = location {
                    write!(f, ":{location}")?;
                }
                if !field.is_empty() {
                    write!(f, ": {field}")?;
                }
                write!(f, ": {message}")
            }
        }
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConfigError::Read { source, .. } => Some(source),
            ConfigError::Invalid { .. } => None,
        }
    }
}
