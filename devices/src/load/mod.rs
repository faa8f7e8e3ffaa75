//! Reading the TOML files: the serde mirror structs of each file format, and their
//! validation into the public types. Everything here is private; the public entry
//! points are `Profile::from_str` / `Site::from_str` and friends.
//!
//! Every key is deserialised with `deny_unknown_fields`, and every value that is checked
//! after deserialising is kept as a [`Spanned`] so an error can name its line and
//! column. Enumerated keywords (`type`, `order`, `kind`, ...) are read as spanned
//! strings and matched here, so the message can list the accepted words.

pub(crate) mod profile;
pub(crate) mod site;

use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use toml::de::{DeTable, DeValue};
use toml::Spanned;

use crate::duration::parse_duration;
use crate::error::{ConfigError, Location};

/// The file being read: its name as the caller gave it and its text.
pub(crate) struct Source<'a> {
    pub path: &'a Path,
    pub text: &'a str,
}

impl<'a> Source<'a> {
    pub fn new(path: &'a Path, text: &'a str) -> Self {
        Source { path, text }
    }

    /// An error at `span` about the key at `field`.
    pub fn error(
        &self,
        span: Range<usize>,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> ConfigError {
        ConfigError::Invalid {
            path: self.path.to_owned(),
            location: Some(Location::of_offset(self.text, span.start)),
            field: field.into(),
            message: message.into(),
        }
    }

    /// Translates a deserialisation error: its span gives the position, and the key path
    /// at that position is found in a second, structural parse of the document.
    pub fn toml_error(&self, error: &toml::de::Error) -> ConfigError {
        let span = error.span();
        let (root, syntax_errors) = DeTable::parse_recoverable(self.text);
        let field = match &span {
            // An empty span marks something missing from the document as a whole.
            Some(span) if !span.is_empty() => key_path_at(&root, span.start),
            _ => String::new(),
        };
        let mut message = plain_message(error.message());
        if !syntax_errors.is_empty() {
            message.insert_str(0, "invalid TOML: ");
        }
        ConfigError::Invalid {
            path: self.path.to_owned(),
            location: span.map(|span| Location::of_offset(self.text, span.start)),
            field,
            message,
        }
    }

    /// Parses a spanned duration string.
    pub fn duration(&self, value: &Spanned<String>, field: &str) -> Result<Duration, ConfigError> {
        parse_duration(value.get_ref()).map_err(|e| self.error(value.span(), field, e.to_string()))
    }

    /// Parses an enumerated keyword.
    pub fn keyword<K: Keyword>(
        &self,
        value: &Spanned<String>,
        field: &str,
    ) -> Result<K, ConfigError> {
        K::ALL
            .iter()
            .copied()
            .find(|k| k.as_str() == value.get_ref())
            .ok_or_else(|| {
                let names: Vec<&str> = K::ALL.iter().map(|k| k.as_str()).collect();
                self.error(
                    value.span(),
                    field,
                    format!(
                        "unknown {} \"{}\"; expected one of {}",
                        K::WHAT,
                        value.get_ref(),
                        names.join(", ")
                    ),
                )
            })
    }

    /// A finite number within `range` (inclusive), described as `what` in the message.
    pub fn number_in(
        &self,
        value: &Spanned<f64>,
        field: &str,
        min: f64,
        max: f64,
        what: &str,
    ) -> Result<f64, ConfigError> {
        let v = *value.get_ref();
        if v.is_finite() && v >= min && v <= max {
            Ok(v)
        } else {
            Err(self.error(value.span(), field, format!("{v} is out of range: {what}")))
        }
    }

    /// A finite number >= 0.
    pub fn non_negative(&self, value: &Spanned<f64>, field: &str) -> Result<f64, ConfigError> {
        self.number_in(value, field, 0.0, f64::MAX, "must be a number >= 0")
    }

    /// A finite number > 0.
    pub fn positive(&self, value: &Spanned<f64>, field: &str) -> Result<f64, ConfigError> {
        let v = *value.get_ref();
        if v.is_finite() && v > 0.0 {
            Ok(v)
        } else {
            Err(self.error(
                value.span(),
                field,
                format!("{v} is out of range: must be a number > 0"),
            ))
        }
    }

    /// A share between 0 and 1 inclusive.
    pub fn fraction(&self, value: &Spanned<f64>, field: &str) -> Result<f64, ConfigError> {
        self.number_in(value, field, 0.0, 1.0, "must be between 0 and 1")
    }

    /// An integer within `min..=max`.
    pub fn integer_in(
        &self,
        value: &Spanned<i64>,
        field: &str,
        min: i64,
        max: i64,
    ) -> Result<i64, ConfigError> {
        let v = *value.get_ref();
        if (min..=max).contains(&v) {
            Ok(v)
        } else {
            Err(self.error(
                value.span(),
                field,
                format!("{v} is out of range: must be {min}..={max}"),
            ))
        }
    }
}

/// An enumeration written as a keyword in the files.
pub(crate) trait Keyword: Copy + 'static {
    /// What the keyword names, for messages ("data type").
    const WHAT: &'static str;
    /// Every value, in the order listed in messages.
    const ALL: &'static [Self];
    /// The keyword as written.
    fn as_str(self) -> &'static str;
}

/// An identifier used in device ids and MQTT topics: lower-case ASCII letters, digits,
/// `-` and `_`, starting with a letter or digit.
pub(crate) fn check_id(
    src: &Source<'_>,
    value: &Spanned<String>,
    field: &str,
) -> Result<String, ConfigError> {
    let id = value.get_ref();
    let ok = id.bytes().enumerate().all(|(i, b)| {
        b.is_ascii_lowercase() || b.is_ascii_digit() || (i > 0 && (b == b'-' || b == b'_'))
    });
    if id.is_empty() || !ok {
        return Err(src.error(
            value.span(),
            field,
            format!(
                "invalid id \"{id}\": use lower-case letters, digits, '-' and '_' \
                 (it becomes part of device ids and MQTT topics)"
            ),
        ));
    }
    Ok(id.clone())
}

/// Makes serde's messages read as plain words (`expected i64` -> `expected an integer`).
fn plain_message(message: &str) -> String {
    let mut out = message.trim_end().to_owned();
    for (rust, plain) in [
        ("expected i64", "expected an integer"),
        ("expected u64", "expected a non-negative integer"),
        ("expected f64", "expected a number"),
        ("expected a sequence", "expected an array"),
        ("expected a boolean", "expected true or false"),
    ] {
        out = out.replace(rust, plain);
    }
    out
}

/// The dotted key path (`centre[1].zone[2].racks`) of the innermost key or value whose
/// span contains byte `offset`, from a structural parse of the document; empty when
/// nothing matches. Array-of-tables elements are matched by their header or by any key
/// inside them.
fn key_path_at(root: &Spanned<DeTable<'_>>, offset: usize) -> String {
    let mut segments = Vec::new();
    locate_in_table(root.get_ref(), offset, &mut segments);
    let mut path = String::new();
    for segment in segments {
        match segment {
            Segment::Key(key) => {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(&key);
            }
            Segment::Index(i) => path.push_str(&format!("[{i}]")),
        }
    }
    path
}

enum Segment {
    Key(String),
    Index(usize),
}

fn span_contains(span: &Range<usize>, offset: usize) -> bool {
    span.contains(&offset) || (span.is_empty() && span.start == offset)
}

fn locate_in_table(table: &DeTable<'_>, offset: usize, segments: &mut Vec<Segment>) -> bool {
    for (key, value) in table.iter() {
        segments.push(Segment::Key(key.get_ref().to_string()));
        if span_contains(&key.span(), offset) || locate_in_value(value, offset, segments) {
            return true;
        }
        segments.pop();
    }
    false
}

fn locate_in_value(
    value: &Spanned<DeValue<'_>>,
    offset: usize,
    segments: &mut Vec<Segment>,
) -> bool {
    match value.get_ref() {
        DeValue::Table(table) if locate_in_table(table, offset, segments) => return true,
        DeValue::Array(array) => {
            for (i, element) in array.iter().enumerate() {
                segments.push(Segment::Index(i));
                if locate_in_value(element, offset, segments) {
                    return true;
                }
                segments.pop();
            }
        }
        _ => {}
    }
    span_contains(&value.span(), offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations() {
        let text = "a = 1\n# 青岛\nb = \"x\"\n";
        assert_eq!(
            Location::of_offset(text, 0),
            Location { line: 1, column: 1 }
        );
        assert_eq!(
            Location::of_offset(text, 4),
            Location { line: 1, column: 5 }
        );
        let b = text.find('b').unwrap();
        assert_eq!(
            Location::of_offset(text, b),
            Location { line: 3, column: 1 }
        );
        let x = text.find("\"x").unwrap();
        assert_eq!(
            Location::of_offset(text, x),
            Location { line: 3, column: 5 }
        );
        // After the two CJK characters: columns count characters, not bytes.
        let nl = text.find("岛").unwrap() + "岛".len();
        assert_eq!(
            Location::of_offset(text, nl),
            Location { line: 2, column: 5 }
        );
        assert_eq!(Location::of_offset(text, 1000).line, 4);
    }

    #[test]
    fn key_paths() {
        let text = "[p]\nm = 1\n\n[[f]]\nn = 1\n\n[[f]]\nn = 2\ns = [1, 2]\ni = { a = 1, b = [{ c = 3 }] }\n";
        let root = DeTable::parse(text).unwrap();
        let at = |needle: &str| key_path_at(&root, text.find(needle).unwrap());
        assert_eq!(at("m ="), "p.m");
        assert_eq!(at("1\n\n[[f]]"), "p.m");
        assert_eq!(at("n = 2"), "f[1].n");
        assert_eq!(at("2\ns"), "f[1].n");
        assert_eq!(at("2]"), "f[1].s[1]");
        assert_eq!(at("c ="), "f[1].i.b[0].c");
        let second_header = text.match_indices("[[f]]").nth(1).unwrap().0;
        assert_eq!(key_path_at(&root, second_header), "f[1]");
    }
}
