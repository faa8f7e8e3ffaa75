//! [`Point`]: one measurement at one instant, with its tags and typed fields.
//!
//! A point keeps the invariants that make its encoding cheap and canonical:
//! tags are sorted by key (byte order, the order InfluxDB wants) and unique,
//! fields keep insertion order and are unique, and empty tag values are never
//! stored, because line protocol has no way to write them (a tag with an empty
//! value is the same as an absent tag). What a point does *not* check is
//! whether its names can be written at all (empty names, line breaks,
//! non-finite floats): that is the encoder's job, see
//! [`line_protocol::encode`](crate::line_protocol::encode).

use std::fmt;
use std::sync::{Arc, OnceLock};

/// The value of one field, with the five types of InfluxDB line protocol.
///
/// `From` is implemented for `f64`, `i64`, `u64`, `bool`, `String` and `&str`,
/// so builder calls read `.field("supply_temp_c", 18.5)`. Integer literals need
/// a suffix (`2400_i64`) because a bare literal could be either integer type.
///
/// [`FieldValue::Unsigned`] is refused by InfluxDB 1.x (it is behind a flag
/// that release builds leave off); InfluxDB 2.x and 3.x accept it. Prefer
/// [`FieldValue::Integer`] for values that fit an `i64`.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldValue {
    /// A 64-bit float; NaN and infinities are refused by the encoder.
    Float(f64),
    /// A signed 64-bit integer, written with the suffix `i`.
    Integer(i64),
    /// An unsigned 64-bit integer, written with the suffix `u`.
    Unsigned(u64),
    /// A boolean, written `true` or `false`.
    Boolean(bool),
    /// A string, written quoted with `"` and `\` escaped.
    String(String),
}

impl From<f64> for FieldValue {
    fn from(v: f64) -> Self {
        Self::Float(v)
    }
}

impl From<i64> for FieldValue {
    fn from(v: i64) -> Self {
        Self::Integer(v)
    }
}

impl From<u64> for FieldValue {
    fn from(v: u64) -> Self {
        Self::Unsigned(v)
    }
}

impl From<bool> for FieldValue {
    fn from(v: bool) -> Self {
        Self::Boolean(v)
    }
}

impl From<String> for FieldValue {
    fn from(v: String) -> Self {
        Self::String(v)
    }
}

impl From<&str> for FieldValue {
    fn from(v: &str) -> Self {
        Self::String(v.to_owned())
    }
}

/// The name of a field, shared, not copied.
///
/// A producer that writes the same fields again and again (a collector
/// decoding a device's registers, the simulator stamping a CDU's readings)
/// makes each name once and clones it into every point: a clone copies no
/// bytes, and the points of a batch all point at the same few names, which
/// keeps the encoder's reads in cache. It reads as a `&str` everywhere
/// (`Deref`, `Borrow`, `AsRef`, comparisons with `str` and `String`), and
/// anything that converts into a `String` converts into it.
///
/// ```
/// use tidewatch_model::{FieldKey, Point};
///
/// let supply = FieldKey::from("supply_temp_c");
/// let a = Point::new("cdu", 1).field(&supply, 18.5);
/// let b = Point::new("cdu", 2).field(&supply, 18.6);
/// assert!(a.fields()[0].0.shares_name_with(&b.fields()[0].0));
/// assert_eq!(a.fields()[0].0, "supply_temp_c");
/// ```
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FieldKey {
    name: Arc<str>,
    /// Whether line protocol writes the name as it is (non-empty, nothing to
    /// escape, no line break): found once, when the key is made, so the encoder
    /// does not look at the name's bytes for every value it writes.
    plain: bool,
}

impl FieldKey {
    fn new(name: Arc<str>) -> FieldKey {
        let plain = crate::line_protocol::is_plain_key(&name);
        FieldKey { name, plain }
    }

    /// Whether the encoder can write the name as it is.
    pub(crate) fn is_plain(&self) -> bool {
        self.plain
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.name
    }

    /// Whether both keys are the same shared name (not merely equal text).
    pub fn shares_name_with(&self, other: &FieldKey) -> bool {
        Arc::ptr_eq(&self.name, &other.name)
    }
}

impl std::ops::Deref for FieldKey {
    type Target = str;
    fn deref(&self) -> &str {
        &self.name
    }
}

impl std::borrow::Borrow<str> for FieldKey {
    fn borrow(&self) -> &str {
        &self.name
    }
}

impl AsRef<str> for FieldKey {
    fn as_ref(&self) -> &str {
        &self.name
    }
}

impl From<&str> for FieldKey {
    fn from(name: &str) -> Self {
        Self::new(Arc::from(name))
    }
}

impl From<String> for FieldKey {
    fn from(name: String) -> Self {
        Self::new(Arc::from(name))
    }
}

impl From<&String> for FieldKey {
    fn from(name: &String) -> Self {
        Self::new(Arc::from(name.as_str()))
    }
}

impl From<&FieldKey> for FieldKey {
    fn from(key: &FieldKey) -> Self {
        key.clone()
    }
}

impl PartialEq<str> for FieldKey {
    fn eq(&self, other: &str) -> bool {
        &*self.name == other
    }
}

impl PartialEq<&str> for FieldKey {
    fn eq(&self, other: &&str) -> bool {
        &*self.name == *other
    }
}

impl PartialEq<String> for FieldKey {
    fn eq(&self, other: &String) -> bool {
        *self.name == **other
    }
}

impl PartialEq<FieldKey> for str {
    fn eq(&self, other: &FieldKey) -> bool {
        self == &*other.name
    }
}

impl PartialEq<FieldKey> for &str {
    fn eq(&self, other: &FieldKey) -> bool {
        *self == &*other.name
    }
}

impl PartialEq<FieldKey> for String {
    fn eq(&self, other: &FieldKey) -> bool {
        **self == *other.name
    }
}

impl fmt::Display for FieldKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

impl fmt::Debug for FieldKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.name, f)
    }
}

/// What identifies a series: a measurement name and its tags, sorted by key
/// (byte order), keys unique, values never empty.
///
/// It is shared, not copied: cloning a series, or stamping points with it
/// ([`Point::in_series`]), copies no strings. A producer that writes the same
/// series again and again (a collector polling a device) builds it once.
/// Changing a shared series ([`Series::add_tag`], [`Point::add_tag`]) copies it
/// first, so other points keep theirs.
///
/// ```
/// use tidewatch_model::{Point, Series};
///
/// let cdu = Series::new("cdu").tag("unit", "cdu-02").tag("hall", "A");
/// let a = Point::in_series(cdu.clone(), 1_000).field("supply_temp_c", 18.5);
/// let b = Point::in_series(cdu, 2_000).field("supply_temp_c", 18.6);
/// assert_eq!(a.tags(), b.tags());
/// assert_eq!(a.tag_value("hall"), Some("A"));
/// ```
#[derive(Clone, PartialEq)]
pub struct Series(Arc<SeriesParts>);

struct SeriesParts {
    measurement: String,
    /// Sorted by key, unique keys, no empty values.
    tags: Vec<(String, String)>,
    /// The series key as line protocol writes it (`measurement,tag=value,...`,
    /// escaped), kept by the encoder the first time it writes a series that
    /// several points share; emptied by every change.
    key: OnceLock<Box<[u8]>>,
}

/// A copy has no key yet: it is made to be changed.
impl Clone for SeriesParts {
    fn clone(&self) -> Self {
        Self {
            measurement: self.measurement.clone(),
            tags: self.tags.clone(),
            key: OnceLock::new(),
        }
    }
}

/// The key is derived from the rest: not compared.
impl PartialEq for SeriesParts {
    fn eq(&self, other: &Self) -> bool {
        self.measurement == other.measurement && self.tags == other.tags
    }
}

impl Series {
    /// A series with no tags yet.
    pub fn new(measurement: impl Into<String>) -> Self {
        Self(Arc::new(SeriesParts {
            measurement: measurement.into(),
            tags: Vec::new(),
            key: OnceLock::new(),
        }))
    }

    /// The measurement name.
    pub fn measurement(&self) -> &str {
        &self.0.measurement
    }

    /// The tags, sorted by key (byte order), keys unique, values never empty.
    pub fn tags(&self) -> &[(String, String)] {
        &self.0.tags
    }

    /// Builder form of [`Series::add_tag`].
    #[must_use]
    pub fn tag(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.add_tag(key, value);
        self
    }

    /// Sets tag `key` to `value`, keeping the tags sorted by key.
    ///
    /// A tag already present with the same key gets the new value. An empty
    /// value is dropped, since line protocol cannot carry it: it adds nothing,
    /// and removes the tag if `key` was present (an empty tag and an absent tag
    /// are the same series in InfluxDB).
    pub fn add_tag(&mut self, key: impl Into<String>, value: impl Into<String>) -> &mut Self {
        let key = key.into();
        let value = value.into();
        let parts = Arc::make_mut(&mut self.0);
        // Whatever changes, the written key is no longer this series'.
        parts.key = OnceLock::new();
        let tags = &mut parts.tags;
        // Tags usually arrive in order, so check the end before searching.
        let position = match tags.last() {
            Some((last, _)) if last.as_str() < key.as_str() => Err(tags.len()),
            None => Err(0),
            Some(_) => tags.binary_search_by(|(k, _)| k.as_str().cmp(key.as_str())),
        };
        match (position, value.is_empty()) {
            (Ok(i), false) => tags[i].1 = value,
            (Ok(i), true) => {
                tags.remove(i);
            }
            (Err(i), false) => tags.insert(i, (key, value)),
            (Err(_), true) => {}
        }
        self
    }

    /// The value of tag `key`, if the series has that tag.
    pub fn tag_value(&self, key: &str) -> Option<&str> {
        let tags = self.tags();
        tags.binary_search_by(|(k, _)| k.as_str().cmp(key))
            .ok()
            .map(|i| tags[i].1.as_str())
    }

    /// Where the encoder keeps this series' written key, if the series is worth
    /// it: only a series shared (with other points, or with the producer that
    /// stamps points with it) is written again, so a series of one point keeps
    /// nothing and is written from its parts every time.
    pub(crate) fn key_cache(&self) -> Option<&OnceLock<Box<[u8]>>> {
        (Arc::strong_count(&self.0) > 1).then_some(&self.0.key)
    }
}

impl fmt::Debug for Series {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Series")
            .field("measurement", &self.0.measurement)
            .field("tags", &self.0.tags)
            .finish()
    }
}

/// One measurement at one instant: a measurement name, tags (the series
/// identity), typed fields (the values) and a timestamp in nanoseconds since
/// the Unix epoch.
///
/// ```
/// use tidewatch_model::{FieldValue, Point};
///
/// let mut point = Point::new("cdu", 1_700_000_000_000_000_000)
///     .tag("unit", "cdu-02")
///     .tag("hall", "A")
///     .field("supply_temp_c", 18.5);
/// point.add_field("pump_rpm", 2400_i64);
///
/// // Tags are kept sorted by key, fields in insertion order.
/// assert_eq!(point.tags()[0].0, "hall");
/// assert_eq!(point.tag_value("unit"), Some("cdu-02"));
/// assert_eq!(point.field_value("pump_rpm"), Some(&FieldValue::Integer(2400)));
/// ```
#[derive(Clone, PartialEq)]
pub struct Point {
    /// Measurement and tags, shared with the other points of the series.
    series: Series,
    /// Insertion order, unique keys.
    fields: Vec<(FieldKey, FieldValue)>,
    timestamp_ns: i64,
}

impl Point {
    /// A point with no tags and no fields yet (it needs at least one field to
    /// be encoded).
    pub fn new(measurement: impl Into<String>, timestamp_ns: i64) -> Self {
        Self::in_series(Series::new(measurement), timestamp_ns)
    }

    /// A point of `series` (its measurement and tags, shared), no fields yet.
    pub fn in_series(series: Series, timestamp_ns: i64) -> Self {
        Self {
            series,
            fields: Vec::new(),
            timestamp_ns,
        }
    }

    /// The measurement and tags.
    pub fn series(&self) -> &Series {
        &self.series
    }

    /// The measurement name.
    pub fn measurement(&self) -> &str {
        self.series.measurement()
    }

    /// The tags, sorted by key (byte order), keys unique, values never empty.
    pub fn tags(&self) -> &[(String, String)] {
        self.series.tags()
    }

    /// The fields, in insertion order, keys unique.
    pub fn fields(&self) -> &[(FieldKey, FieldValue)] {
        &self.fields
    }

    /// The timestamp, in nanoseconds since the Unix epoch.
    pub fn timestamp_ns(&self) -> i64 {
        self.timestamp_ns
    }

    /// Builder form of [`Point::add_tag`].
    #[must_use]
    pub fn tag(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.add_tag(key, value);
        self
    }

    /// Builder form of [`Point::add_field`].
    #[must_use]
    pub fn field(mut self, key: impl Into<FieldKey>, value: impl Into<FieldValue>) -> Self {
        self.add_field(key, value);
        self
    }

    /// Sets tag `key` to `value`, as [`Series::add_tag`] does (a series shared
    /// with other points is copied first: theirs is unchanged).
    pub fn add_tag(&mut self, key: impl Into<String>, value: impl Into<String>) -> &mut Self {
        self.series.add_tag(key, value);
        self
    }

    /// Room for `additional` more fields without reallocating, for a caller
    /// that knows how many it will add.
    pub fn reserve_fields(&mut self, additional: usize) -> &mut Self {
        self.fields.reserve(additional);
        self
    }

    /// Sets field `key` to `value`. A field already present with the same key
    /// gets the new value and keeps its position; a new field goes last.
    ///
    /// Pass a shared [`FieldKey`] (by reference or clone) where the same name
    /// is written again and again: the duplicate check then compares pointers
    /// before it compares text.
    pub fn add_field(
        &mut self,
        key: impl Into<FieldKey>,
        value: impl Into<FieldValue>,
    ) -> &mut Self {
        let key = key.into();
        let value = value.into();
        let same = |k: &FieldKey| k.shares_name_with(&key) || *k == key;
        match self.fields.iter_mut().find(|(k, _)| same(k)) {
            Some((_, slot)) => *slot = value,
            None => self.fields.push((key, value)),
        }
        self
    }

    /// The value of tag `key`, if the point has that tag.
    pub fn tag_value(&self, key: &str) -> Option<&str> {
        self.series.tag_value(key)
    }

    /// The value of field `key`, if the point has that field.
    pub fn field_value(&self, key: &str) -> Option<&FieldValue> {
        self.fields.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }
}

/// Printed as before the series was shared: measurement, tags, fields, timestamp.
impl fmt::Debug for Point {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Point")
            .field("measurement", &self.measurement())
            .field("tags", &self.tags())
            .field("fields", &self.fields)
            .field("timestamp_ns", &self.timestamp_ns)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag_keys(point: &Point) -> Vec<&str> {
        point.tags().iter().map(|(k, _)| k.as_str()).collect()
    }

    #[test]
    fn new_point_is_empty_and_keeps_its_parts() {
        let point = Point::new("pdu", -5);
        assert_eq!(point.measurement(), "pdu");
        assert_eq!(point.timestamp_ns(), -5);
        assert!(point.tags().is_empty());
        assert!(point.fields().is_empty());
    }

    #[test]
    fn tags_are_sorted_by_key_whatever_the_insertion_order() {
        let point = Point::new("m", 0)
            .tag("rack", "r1")
            .tag("hall", "A")
            .tag("zone", "z")
            .tag("b", "x")
            .tag("Z", "upper sorts before lower");
        assert_eq!(tag_keys(&point), ["Z", "b", "hall", "rack", "zone"]);
    }

    #[test]
    fn tags_sort_by_bytes_not_by_locale() {
        let point = Point::new("m", 0).tag("é", "1").tag("z", "2").tag("a", "3");
        assert_eq!(tag_keys(&point), ["a", "z", "é"]);
    }

    #[test]
    fn later_tag_with_same_key_replaces() {
        let point = Point::new("m", 0)
            .tag("hall", "A")
            .tag("rack", "r1")
            .tag("hall", "B");
        assert_eq!(
            point.tags(),
            [
                ("hall".to_owned(), "B".to_owned()),
                ("rack".to_owned(), "r1".to_owned())
            ]
        );
    }

    #[test]
    fn empty_tag_value_is_dropped() {
        let point = Point::new("m", 0).tag("hall", "").tag("rack", "r1");
        assert_eq!(tag_keys(&point), ["rack"]);
        assert_eq!(point.tag_value("hall"), None);
    }

    #[test]
    fn empty_tag_value_removes_a_present_tag() {
        let mut point = Point::new("m", 0).tag("hall", "A").tag("rack", "r1");
        point.add_tag("hall", "");
        assert_eq!(tag_keys(&point), ["rack"]);
    }

    #[test]
    fn fields_keep_insertion_order_and_same_key_replaces_in_place() {
        let point = Point::new("m", 0)
            .field("z", 1.0)
            .field("a", 2_i64)
            .field("z", "now a string")
            .field("m", true);
        let keys: Vec<&str> = point.fields().iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["z", "a", "m"]);
        assert_eq!(
            point.field_value("z"),
            Some(&FieldValue::String("now a string".into()))
        );
    }

    #[test]
    fn mutable_adders_chain_and_match_the_builders() {
        let built = Point::new("m", 7).tag("t", "v").field("f", 1_u64);
        let mut added = Point::new("m", 7);
        added.add_tag("t", "v").add_field("f", 1_u64);
        assert_eq!(built, added);
    }

    #[test]
    fn points_of_a_shared_series_equal_points_built_tag_by_tag() {
        let series = Series::new("m").tag("rack", "r1").tag("hall", "A");
        let shared = Point::in_series(series.clone(), 7).field("f", 1.0);
        let built = Point::new("m", 7)
            .tag("hall", "A")
            .tag("rack", "r1")
            .field("f", 1.0);
        assert_eq!(shared, built);
        assert_eq!(format!("{shared:?}"), format!("{built:?}"));
        assert_eq!(shared.series(), &series);
    }

    #[test]
    fn changing_a_tag_of_one_point_leaves_the_shared_series_alone() {
        let series = Series::new("m").tag("hall", "A");
        let mut changed = Point::in_series(series.clone(), 0);
        changed.add_tag("hall", "B").add_tag("rack", "r1");
        let other = Point::in_series(series.clone(), 0);
        assert_eq!(changed.tag_value("hall"), Some("B"));
        assert_eq!(other.tags(), [("hall".to_owned(), "A".to_owned())]);
        assert_eq!(series.tag_value("hall"), Some("A"));
    }

    #[test]
    fn lookups() {
        let point = Point::new("m", 0)
            .tag("b", "2")
            .tag("a", "1")
            .tag("c", "3")
            .field("x", 1.5)
            .field("y", false);
        assert_eq!(point.tag_value("a"), Some("1"));
        assert_eq!(point.tag_value("b"), Some("2"));
        assert_eq!(point.tag_value("c"), Some("3"));
        assert_eq!(point.tag_value("d"), None);
        assert_eq!(point.field_value("x"), Some(&FieldValue::Float(1.5)));
        assert_eq!(point.field_value("y"), Some(&FieldValue::Boolean(false)));
        assert_eq!(point.field_value("z"), None);
    }

    #[test]
    fn field_value_conversions() {
        assert_eq!(FieldValue::from(1.5), FieldValue::Float(1.5));
        assert_eq!(FieldValue::from(-3_i64), FieldValue::Integer(-3));
        assert_eq!(FieldValue::from(3_u64), FieldValue::Unsigned(3));
        assert_eq!(FieldValue::from(true), FieldValue::Boolean(true));
        assert_eq!(
            FieldValue::from(String::from("s")),
            FieldValue::String("s".into())
        );
        assert_eq!(FieldValue::from("s"), FieldValue::String("s".into()));
    }
}
