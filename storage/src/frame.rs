//! The frame conventions: the shape of what a scan returns, from either store.
//!
//! Analytics and dashboards read points back as polars frames, and must not care
//! whether the embedded store or InfluxDB is behind the [`Store`](crate::store::Store).
//! Both readers therefore produce one measurement per frame with these columns, in
//! this order:
//!
//! | column | polars type | content |
//! |---|---|---|
//! | `time` | `Datetime(ns)` | the point's timestamp, UTC; never null |
//! | one per tag key, sorted by name (byte order) | `String` | the tag's value; null where a point lacks the tag (an empty tag value does not exist: the model drops it) |
//! | one per field key, sorted by name (byte order) | `Float64`, `Int64`, `UInt64`, `Boolean` or `String`, by the field's type ([`FieldType`]) | the field's value; null where a point lacks the field |
//!
//! The columns are the union over every point of the measurement (a measurement's
//! [`MeasurementSchema`]); a scan with a field selection keeps the `time` and tag
//! columns and only the selected fields, and drops the rows where every selected
//! field is null (as InfluxQL does). Rows come in no particular order: sort them
//! (`sort(["time"], ..)`) when order matters.
//!
//! Why `Datetime(ns)` holding UTC, and neither a bare `i64` nor `Datetime(ns, "UTC")`:
//! a datetime column prints, sorts, truncates (`dt().truncate("1d")`) and groups
//! (`group_by_dynamic`) as time, which an `i64` does not; and a column tagged with a
//! time zone cannot even be printed by a polars built without its `timezones` feature
//! (chrono-tz), which this workspace leaves out for compile time. The value is the
//! same `i64` of nanoseconds as [`Point::timestamp_ns`], so the instant is exact. In
//! Parquet the column is a `TIMESTAMP(NANOS)` not adjusted to UTC: other tools show
//! the UTC wall-clock time. Analytics grouping by the park's local day (UTC+8) shifts
//! it first (`col("time") + 8 h`, or on the `i64`: `+ 8 * 3_600_000_000_000`) and
//! then truncates to the day.
//!
//! Within one measurement, a name is either a tag or a field, and a field keeps one
//! type: the embedded store refuses a point that would break that (InfluxDB refuses a
//! field type conflict too). `time` is reserved: no tag or field may be called that.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use polars::prelude::*;
use tidewatch_model::{FieldValue, Point};

/// The name of the timestamp column.
pub const TIME: &str = "time";

/// The polars type of the `time` column: nanoseconds since the Unix epoch, UTC (no
/// time-zone tag; see the [module docs](self)).
pub fn time_dtype() -> DataType {
    DataType::Datetime(TimeUnit::Nanoseconds, None)
}

/// The type of a field, as line protocol knows it; each maps to one polars type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FieldType {
    /// `Float64`.
    Float,
    /// `Int64`.
    Integer,
    /// `UInt64`.
    Unsigned,
    /// `Boolean`.
    Boolean,
    /// `String`.
    String,
}

impl FieldType {
    /// The type of a value.
    pub fn of(value: &FieldValue) -> FieldType {
        match value {
            FieldValue::Float(_) => FieldType::Float,
            FieldValue::Integer(_) => FieldType::Integer,
            FieldValue::Unsigned(_) => FieldType::Unsigned,
            FieldValue::Boolean(_) => FieldType::Boolean,
            FieldValue::String(_) => FieldType::String,
        }
    }

    /// The polars type of the column.
    pub fn dtype(self) -> DataType {
        match self {
            FieldType::Float => DataType::Float64,
            FieldType::Integer => DataType::Int64,
            FieldType::Unsigned => DataType::UInt64,
            FieldType::Boolean => DataType::Boolean,
            FieldType::String => DataType::String,
        }
    }

    /// The field type of a polars column type, if it is one of the five.
    pub fn from_dtype(dtype: &DataType) -> Option<FieldType> {
        Some(match dtype {
            DataType::Float64 => FieldType::Float,
            DataType::Int64 => FieldType::Integer,
            DataType::UInt64 => FieldType::Unsigned,
            DataType::Boolean => FieldType::Boolean,
            DataType::String => FieldType::String,
            _ => return None,
        })
    }

    /// The name InfluxDB uses (`SHOW FIELD KEYS`): `float`, `integer`, `unsigned`,
    /// `boolean`, `string`.
    pub fn influx_name(self) -> &'static str {
        match self {
            FieldType::Float => "float",
            FieldType::Integer => "integer",
            FieldType::Unsigned => "unsigned",
            FieldType::Boolean => "boolean",
            FieldType::String => "string",
        }
    }

    /// The inverse of [`influx_name`](Self::influx_name).
    pub fn from_influx_name(name: &str) -> Option<FieldType> {
        Some(match name {
            "float" => FieldType::Float,
            "integer" => FieldType::Integer,
            "unsigned" => FieldType::Unsigned,
            "boolean" => FieldType::Boolean,
            "string" => FieldType::String,
            _ => return None,
        })
    }
}

impl fmt::Display for FieldType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.influx_name())
    }
}

/// What a column of a measurement holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ColumnKind {
    /// A tag: `String`.
    Tag,
    /// A field of this type.
    Field(FieldType),
}

impl fmt::Display for ColumnKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ColumnKind::Tag => f.write_str("tag"),
            ColumnKind::Field(t) => write!(f, "{t} field"),
        }
    }
}

/// Why a point does not fit a measurement's columns.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchemaConflict {
    /// A tag or field named `time`.
    #[error("{kind} {name:?}: `time` is reserved for the timestamp column")]
    ReservedName {
        /// The name.
        name: String,
        /// Tag or field.
        kind: ColumnKind,
    },
    /// The name is already a column of another kind (a tag used as a field, or a
    /// field with another type).
    #[error("{name:?} is a {existing} of this measurement; the point has it as a {new}")]
    KindMismatch {
        /// The column name.
        name: String,
        /// What the measurement has.
        existing: ColumnKind,
        /// What the point has.
        new: ColumnKind,
    },
}

/// The columns of one measurement (besides `time`): each name with its kind, sorted
/// by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MeasurementSchema {
    columns: BTreeMap<String, ColumnKind>,
}

impl MeasurementSchema {
    /// An empty schema.
    pub fn new() -> MeasurementSchema {
        MeasurementSchema::default()
    }

    /// The kind of column `name`, if the measurement has it.
    pub fn get(&self, name: &str) -> Option<ColumnKind> {
        self.columns.get(name).copied()
    }

    /// Whether there are no columns.
    pub fn is_empty(&self) -> bool {
        self.columns.is_empty()
    }

    /// The tag keys, sorted.
    pub fn tags(&self) -> impl Iterator<Item = &str> {
        self.columns
            .iter()
            .filter(|(_, k)| **k == ColumnKind::Tag)
            .map(|(n, _)| n.as_str())
    }

    /// The field keys with their types, sorted by key.
    pub fn fields(&self) -> impl Iterator<Item = (&str, FieldType)> {
        self.columns.iter().filter_map(|(n, k)| match k {
            ColumnKind::Field(t) => Some((n.as_str(), *t)),
            ColumnKind::Tag => None,
        })
    }

    /// Adds a column; an existing column of the same kind is fine, one of another kind
    /// is a conflict (and nothing changes).
    pub fn insert(&mut self, name: &str, kind: ColumnKind) -> Result<(), SchemaConflict> {
        if name == TIME {
            return Err(SchemaConflict::ReservedName {
                name: name.to_owned(),
                kind,
            });
        }
        match self.columns.get(name) {
            Some(existing) if *existing == kind => Ok(()),
            Some(existing) => Err(SchemaConflict::KindMismatch {
                name: name.to_owned(),
                existing: *existing,
                new: kind,
            }),
            None => {
                self.columns.insert(name.to_owned(), kind);
                Ok(())
            }
        }
    }

    /// Checks that `point` fits (no reserved name, no name of another kind), without
    /// changing anything.
    pub fn check_point(&self, point: &Point) -> Result<(), SchemaConflict> {
        let columns = point
            .tags()
            .iter()
            .map(|(k, _)| (k.as_str(), ColumnKind::Tag))
            .chain(
                point
                    .fields()
                    .iter()
                    .map(|(k, v)| (k.as_str(), ColumnKind::Field(FieldType::of(v)))),
            );
        for (name, kind) in columns {
            if name == TIME {
                return Err(SchemaConflict::ReservedName {
                    name: name.to_owned(),
                    kind,
                });
            }
            if let Some(existing) = self.columns.get(name) {
                if *existing != kind {
                    return Err(SchemaConflict::KindMismatch {
                        name: name.to_owned(),
                        existing: *existing,
                        new: kind,
                    });
                }
            }
        }
        // A point whose tag and field share a key conflicts with itself.
        for (key, value) in point.fields() {
            if point.tag_value(key).is_some() {
                return Err(SchemaConflict::KindMismatch {
                    name: key.to_string(),
                    existing: ColumnKind::Tag,
                    new: ColumnKind::Field(FieldType::of(value)),
                });
            }
        }
        Ok(())
    }

    /// Adds every column of `point`; on a conflict nothing changes.
    pub fn add_point(&mut self, point: &Point) -> Result<(), SchemaConflict> {
        self.check_point(point)?;
        for (key, _) in point.tags() {
            if !self.columns.contains_key(key.as_str()) {
                self.columns.insert(key.clone(), ColumnKind::Tag);
            }
        }
        for (key, value) in point.fields() {
            if !self.columns.contains_key(key.as_str()) {
                self.columns
                    .insert(key.to_string(), ColumnKind::Field(FieldType::of(value)));
            }
        }
        Ok(())
    }

    /// Adds every column of `other`; on a conflict nothing changes.
    pub fn merge(&mut self, other: &MeasurementSchema) -> Result<(), SchemaConflict> {
        let mut merged = self.clone();
        for (name, kind) in &other.columns {
            merged.insert(name, *kind)?;
        }
        *self = merged;
        Ok(())
    }

    /// The polars schema of a frame of this measurement: `time`, the tags, then the
    /// fields (all of them, or those of `fields` that exist, in name order).
    pub fn polars_schema(&self, fields: Option<&[String]>) -> Schema {
        let mut schema = Schema::with_capacity(self.columns.len() + 1);
        schema.insert(TIME.into(), time_dtype());
        for tag in self.tags() {
            schema.insert(tag.into(), DataType::String);
        }
        for (name, ty) in self.fields() {
            if fields.is_none_or(|wanted| wanted.iter().any(|w| w == name)) {
                schema.insert(name.into(), ty.dtype());
            }
        }
        schema
    }

    /// Reads the columns back from a polars schema that follows the conventions
    /// (`String` columns are tags unless `string_fields` names them).
    pub fn from_polars(
        schema: &Schema,
        string_fields: &[String],
    ) -> Result<MeasurementSchema, String> {
        let mut out = MeasurementSchema::new();
        let mut saw_time = false;
        for (name, dtype) in schema.iter() {
            if name.as_str() == TIME {
                if *dtype != time_dtype() {
                    return Err(format!(
                        "column `time` has type {dtype}, not {}",
                        time_dtype()
                    ));
                }
                saw_time = true;
                continue;
            }
            let kind = match dtype {
                DataType::String if !string_fields.iter().any(|f| f == name.as_str()) => {
                    ColumnKind::Tag
                }
                other => ColumnKind::Field(
                    FieldType::from_dtype(other)
                        .ok_or_else(|| format!("column {name:?} has unsupported type {other}"))?,
                ),
            };
            out.insert(name, kind).map_err(|e| e.to_string())?;
        }
        if !saw_time {
            return Err("no `time` column".into());
        }
        Ok(out)
    }
}

/// Builds a frame with exactly the columns of `schema` (which follows the
/// conventions: `time` first, tags as `String`, fields typed) from points of one
/// measurement. Tags and fields of the points that `schema` lacks are left out; a
/// field whose type differs from the schema's is an error.
pub fn points_frame<'a>(
    points: impl IntoIterator<Item = &'a Point>,
    schema: &Schema,
) -> PolarsResult<DataFrame> {
    enum Col<'a> {
        Time(Vec<i64>),
        Str(Vec<Option<&'a str>>),
        Float(Vec<Option<f64>>),
        Int(Vec<Option<i64>>),
        UInt(Vec<Option<u64>>),
        Bool(Vec<Option<bool>>),
    }
    let points: Vec<&Point> = points.into_iter().collect();
    let n = points.len();
    let mut cols: Vec<(PlSmallStr, Col)> = Vec::with_capacity(schema.len());
    let mut index: HashMap<&str, usize> = HashMap::with_capacity(schema.len());
    for (i, (name, dtype)) in schema.iter().enumerate() {
        let col = match dtype {
            _ if name.as_str() == TIME => Col::Time(Vec::with_capacity(n)),
            DataType::String => Col::Str(vec![None; n]),
            DataType::Float64 => Col::Float(vec![None; n]),
            DataType::Int64 => Col::Int(vec![None; n]),
            DataType::UInt64 => Col::UInt(vec![None; n]),
            DataType::Boolean => Col::Bool(vec![None; n]),
            other => polars_bail!(ComputeError: "column {name:?}: unsupported type {other}"),
        };
        index.insert(name.as_str(), i);
        cols.push((name.clone(), col));
    }
    let Some(time_at) = index.get(TIME).copied() else {
        polars_bail!(ComputeError: "schema has no `time` column");
    };
    for (row, point) in points.iter().enumerate() {
        if let Col::Time(v) = &mut cols[time_at].1 {
            v.push(point.timestamp_ns());
        }
        for (key, value) in point.tags() {
            if let Some(&i) = index.get(key.as_str()) {
                match &mut cols[i].1 {
                    Col::Str(v) => v[row] = Some(value.as_str()),
                    _ => {
                        polars_bail!(SchemaMismatch: "{key:?} is a tag in the point but not a String column")
                    }
                }
            }
        }
        for (key, value) in point.fields() {
            let Some(&i) = index.get(key.as_str()) else {
                continue;
            };
            match (&mut cols[i].1, value) {
                (Col::Float(v), FieldValue::Float(x)) => v[row] = Some(*x),
                (Col::Int(v), FieldValue::Integer(x)) => v[row] = Some(*x),
                (Col::UInt(v), FieldValue::Unsigned(x)) => v[row] = Some(*x),
                (Col::Bool(v), FieldValue::Boolean(x)) => v[row] = Some(*x),
                (Col::Str(v), FieldValue::String(x)) => v[row] = Some(x.as_str()),
                _ => polars_bail!(
                    SchemaMismatch: "field {key:?} is {} in the point but {} in the schema",
                    FieldType::of(value), schema.get(key).expect("indexed")
                ),
            }
        }
    }
    let columns = cols
        .into_iter()
        .map(|(name, col)| {
            let series = match col {
                Col::Time(v) => Int64Chunked::from_vec(name, v)
                    .into_datetime(TimeUnit::Nanoseconds, None)
                    .into_series(),
                Col::Str(v) => Series::new(name, v),
                Col::Float(v) => Series::new(name, v),
                Col::Int(v) => Series::new(name, v),
                Col::UInt(v) => Series::new(name, v),
                Col::Bool(v) => Series::new(name, v),
            };
            Column::from(series)
        })
        .collect();
    DataFrame::new(n, columns)
}

/// The schema of a frame with only the `time` column: what a scan of an unknown
/// measurement returns (no rows).
pub fn time_only_schema() -> Schema {
    let mut schema = Schema::with_capacity(1);
    schema.insert(TIME.into(), time_dtype());
    schema
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_orders_time_tags_fields_and_refuses_conflicts() {
        let mut s = MeasurementSchema::new();
        s.add_point(
            &Point::new("m", 1)
                .tag("zone", "a")
                .tag("device", "d")
                .field("z", 1.0)
                .field("a", 2_i64),
        )
        .unwrap();
        let names: Vec<String> = s
            .polars_schema(None)
            .iter_names()
            .map(|n| n.to_string())
            .collect();
        assert_eq!(names, ["time", "device", "zone", "a", "z"]);
        let before = s.clone();
        let e = s
            .add_point(&Point::new("m", 1).field("new", true).field("a", 1.5))
            .unwrap_err();
        assert!(matches!(e, SchemaConflict::KindMismatch { .. }), "{e}");
        assert_eq!(s, before, "a refused point adds nothing");
        let e = s.add_point(&Point::new("m", 1).tag("a", "x").field("b", 1.0));
        assert!(e.is_err());
        let e = s
            .add_point(&Point::new("m", 1).field("time", 1.0))
            .unwrap_err();
        assert!(matches!(e, SchemaConflict::ReservedName { .. }));
        let only: Vec<String> = s
            .polars_schema(Some(&["z".to_owned(), "missing".to_owned()]))
            .iter_names()
            .map(|n| n.to_string())
            .collect();
        assert_eq!(only, ["time", "device", "zone", "z"]);
    }

    #[test]
    fn frames_have_nulls_where_points_lack_columns() {
        let points = [
            Point::new("m", 10).tag("t", "x").field("f", 1.5),
            Point::new("m", 20).field("s", "text").field("u", 7_u64),
        ];
        let mut s = MeasurementSchema::new();
        for p in &points {
            s.add_point(p).unwrap();
        }
        let df = points_frame(&points, &s.polars_schema(None)).unwrap();
        assert_eq!(df.height(), 2);
        assert_eq!(df.column("time").unwrap().dtype(), &time_dtype());
        assert_eq!(df.column("t").unwrap().null_count(), 1);
        assert_eq!(df.column("f").unwrap().f64().unwrap().get(0), Some(1.5));
        assert_eq!(df.column("u").unwrap().u64().unwrap().get(1), Some(7));
        let back =
            MeasurementSchema::from_polars(df.schema(), &["s".to_owned()]).expect("conventions");
        assert_eq!(back, s);
    }
}
