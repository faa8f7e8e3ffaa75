//! The columns the detectors work on: one time series per (device, field), collected
//! from the store's polars frames into plain vectors.
//!
//! A [`Channel`] is one field of one device or sensor (`device` tag for Modbus
//! devices, `sensor` tag for MQTT sensors), sorted by time, with the point's other
//! tags. Rows without a value (null), non-finite values and non-numeric fields are
//! left out; a `Boolean` field becomes 0.0 / 1.0.

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;

use polars::prelude::*;
use tidewatch_storage::store::{Scan, Store};

use crate::error::AnalyticsError;

/// One field of one device, in time order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Channel {
    /// The device or sensor id.
    pub device: String,
    /// The measurement it was stored under (`cdu`, `rack_inlet`, ...).
    pub measurement: String,
    /// The field.
    pub field: String,
    /// The point's other tags (centre, zone, rack, model, ...).
    pub tags: BTreeMap<String, String>,
    /// Sample times, Unix ns, increasing.
    pub time_ns: Vec<i64>,
    /// Values, as many as times.
    pub value: Vec<f64>,
}

impl Channel {
    /// A channel from `(time_ns, value)` pairs (sorted here; non-finite values dropped).
    pub fn new(
        device: impl Into<String>,
        measurement: impl Into<String>,
        field: impl Into<String>,
        samples: impl IntoIterator<Item = (i64, f64)>,
    ) -> Channel {
        let mut pairs: Vec<(i64, f64)> = samples.into_iter().filter(|p| p.1.is_finite()).collect();
        pairs.sort_by_key(|p| p.0);
        pairs.dedup_by_key(|p| p.0);
        Channel {
            device: device.into(),
            measurement: measurement.into(),
            field: field.into(),
            tags: BTreeMap::new(),
            time_ns: pairs.iter().map(|p| p.0).collect(),
            value: pairs.iter().map(|p| p.1).collect(),
        }
    }

    /// With a tag.
    #[must_use]
    pub fn tag(mut self, key: &str, value: &str) -> Channel {
        self.tags.insert(key.to_owned(), value.to_owned());
        self
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.time_ns.len()
    }

    /// Whether it has no sample.
    pub fn is_empty(&self) -> bool {
        self.time_ns.is_empty()
    }

    /// The last value at or before `t`, if it is at most `max_age_ns` old.
    pub fn at(&self, t: i64, max_age_ns: i64) -> Option<f64> {
        let i = self.time_ns.partition_point(|&x| x <= t);
        if i == 0 {
            return None;
        }
        (t - self.time_ns[i - 1] <= max_age_ns).then(|| self.value[i - 1])
    }

    /// A reader of [`Channel::at`] for times that only grow: it walks forward from
    /// the last time asked instead of searching the whole channel each time.
    pub fn cursor(&self) -> Cursor<'_> {
        Cursor {
            channel: self,
            next: 0,
        }
    }

    /// Index range of the samples with time in `range`.
    pub fn index_range(&self, range: Range<i64>) -> Range<usize> {
        let a = self.time_ns.partition_point(|&x| x < range.start);
        let b = self.time_ns.partition_point(|&x| x < range.end);
        a..b.max(a)
    }
}

/// [`Channel::at`] for increasing times; see [`Channel::cursor`].
#[derive(Debug, Clone)]
pub struct Cursor<'a> {
    channel: &'a Channel,
    /// The first sample after the last time asked.
    next: usize,
}

impl Cursor<'_> {
    /// The last value at or before `t`, if it is at most `max_age_ns` old; `t` must not
    /// be earlier than the last time asked.
    pub fn at(&mut self, t: i64, max_age_ns: i64) -> Option<f64> {
        let times = &self.channel.time_ns;
        while self.next < times.len() && times[self.next] <= t {
            self.next += 1;
        }
        let last = self.next.checked_sub(1)?;
        (t - times[last] <= max_age_ns).then(|| self.channel.value[last])
    }
}

/// Every channel read for an analysis, by (device, field).
#[derive(Debug, Clone, Default)]
pub struct Telemetry {
    channels: Vec<Channel>,
    index: HashMap<(String, String), usize>,
}

impl Telemetry {
    /// No channel yet.
    pub fn new() -> Telemetry {
        Telemetry::default()
    }

    /// Adds (or replaces) a channel.
    pub fn insert(&mut self, channel: Channel) {
        let key = (channel.device.clone(), channel.field.clone());
        match self.index.get(&key) {
            Some(&i) => self.channels[i] = channel,
            None => {
                self.index.insert(key, self.channels.len());
                self.channels.push(channel);
            }
        }
    }

    /// A device's field.
    pub fn get(&self, device: &str, field: &str) -> Option<&Channel> {
        // A borrowed key lookup without allocating would need a custom key type; the
        // number of lookups per analysis is small (per device and field, not per sample).
        self.index
            .get(&(device.to_owned(), field.to_owned()))
            .map(|&i| &self.channels[i])
    }

    /// Every channel.
    pub fn channels(&self) -> &[Channel] {
        &self.channels
    }

    /// The tags of a device (from any of its channels).
    pub fn tags_of(&self, device: &str) -> BTreeMap<String, String> {
        self.channels
            .iter()
            .find(|c| c.device == device)
            .map(|c| c.tags.clone())
            .unwrap_or_default()
    }

    /// Number of channels.
    pub fn len(&self) -> usize {
        self.channels.len()
    }

    /// Whether there is no channel.
    pub fn is_empty(&self) -> bool {
        self.channels.is_empty()
    }

    /// Adds every numeric field of a store frame (one measurement, in the store's frame
    /// conventions), split by the `device` (or `sensor`) tag. Fields not in `fields`
    /// are skipped when `fields` is given.
    pub fn add_frame(
        &mut self,
        measurement: &str,
        frame: &DataFrame,
        fields: Option<&[&str]>,
    ) -> Result<(), AnalyticsError> {
        let bad = |e: PolarsError| AnalyticsError::Frame {
            context: measurement.to_owned(),
            message: e.to_string(),
        };
        let Ok(time) = frame.column("time") else {
            return Ok(()); // an empty frame of an unknown measurement
        };
        let time = time.cast(&DataType::Int64).map_err(bad)?;
        let time: Vec<Option<i64>> = time.i64().map_err(bad)?.iter().collect();
        let id_name = if frame.column("device").is_ok() {
            "device"
        } else if frame.column("sensor").is_ok() {
            "sensor"
        } else {
            return Ok(());
        };
        let mut tag_cols = Vec::new();
        let mut field_cols = Vec::new();
        for column in frame.columns() {
            let name = column.name().as_str();
            if name == "time" || name == id_name {
                continue;
            }
            match column.dtype() {
                DataType::String => tag_cols.push(column),
                DataType::Float64
                | DataType::Float32
                | DataType::Int64
                | DataType::Int32
                | DataType::UInt64
                | DataType::UInt32
                | DataType::Boolean
                    if fields.is_none_or(|f| f.contains(&name)) =>
                {
                    field_cols.push(column)
                }
                _ => {}
            }
        }
        // A string column is a tag, except the fields the store typed as strings
        // (serial numbers): those never are numeric and are not wanted here.
        let ids = frame.column(id_name).map_err(bad)?.str().map_err(bad)?;
        let mut by_device: HashMap<&str, Vec<usize>> = HashMap::new();
        for (row, id) in ids.iter().enumerate() {
            if let Some(id) = id {
                by_device.entry(id).or_default().push(row);
            }
        }
        let tag_values: Vec<(&str, &StringChunked)> = tag_cols
            .iter()
            .filter_map(|c| c.str().ok().map(|s| (c.name().as_str(), s)))
            .collect();
        for column in field_cols {
            let values = column.cast(&DataType::Float64).map_err(bad)?;
            let values: Vec<Option<f64>> = values.f64().map_err(bad)?.iter().collect();
            for (device, rows) in &by_device {
                let samples = rows.iter().filter_map(|&r| {
                    let (Some(t), Some(v)) = (time[r], values[r]) else {
                        return None;
                    };
                    Some((t, v))
                });
                let mut channel =
                    Channel::new(*device, measurement, column.name().as_str(), samples);
                if channel.is_empty() {
                    continue;
                }
                if let Some(&r) = rows.first() {
                    for (key, col) in &tag_values {
                        if let Some(v) = col.get(r) {
                            channel.tags.insert((*key).to_owned(), v.to_owned());
                        }
                    }
                }
                self.insert(channel);
            }
        }
        Ok(())
    }
}

/// What to read for an analysis: measurements and their fields.
pub const READ_PLAN: &[(&str, &[&str])] = &[
    (
        "cdu",
        &[
            "secondary_supply_temp_1",
            "secondary_supply_temp_2",
            "secondary_supply_temp_3",
            "secondary_return_temp",
            "primary_supply_temp",
            "primary_return_temp",
            "secondary_flow_lpm",
            "primary_flow_lpm",
            "loop_pressure_bar",
            "differential_pressure_bar",
            "filter_dp_bar",
            "pump_1_speed_pct",
            "pump_2_speed_pct",
            "pump_1_running",
            "pump_2_running",
            "pump_1_fault",
            "pump_2_fault",
            "valve_demand_pct",
            "valve_feedback_pct",
            "leak_detected",
            "supply_setpoint_c",
        ],
    ),
    (
        "rack_pdu",
        &[
            "current_l1",
            "current_l2",
            "current_l3",
            "active_power_kw",
            "power_l1_kw",
            "power_l2_kw",
            "power_l3_kw",
        ],
    ),
    ("rack_inlet", &["temperature_c"]),
    ("leak", &["wet"]),
    ("dew_point", &["dew_point_c"]),
];

/// Reads what the detectors need over `range` (Unix ns, end excluded) from the store,
/// for the given zones (`zone` tag; all zones when empty).
pub async fn read_telemetry(
    store: &Store,
    range: Range<i64>,
    zones: &[String],
) -> Result<Telemetry, AnalyticsError> {
    if range.end <= range.start {
        return Err(AnalyticsError::EmptyRange {
            start_ns: range.start,
            end_ns: range.end,
        });
    }
    let mut telemetry = Telemetry::new();
    for (measurement, fields) in READ_PLAN {
        let mut scan = Scan::new(*measurement, range.clone()).fields(fields.iter().copied());
        for z in zones {
            scan = scan.tag("zone", z.as_str());
        }
        let frame = store.read(&scan).await?;
        telemetry.add_frame(measurement, &frame, Some(fields))?;
    }
    Ok(telemetry)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_reads_what_at_reads_for_growing_times() {
        let ch = Channel::new("d", "m", "f", [(10, 1.0), (20, 2.0), (50, 5.0), (51, 5.1)]);
        let mut cursor = ch.cursor();
        for t in [0, 10, 10, 15, 19, 20, 35, 49, 50, 51, 80, 200] {
            for max_age in [0, 5, 30] {
                assert_eq!(
                    cursor.at(t, max_age),
                    ch.at(t, max_age),
                    "t {t}, max age {max_age}"
                );
            }
        }
    }

    #[test]
    fn lookups_by_time() {
        let c = Channel::new(
            "d",
            "m",
            "f",
            [(30, 3.0), (10, 1.0), (20, f64::NAN), (20, 2.0)],
        );
        assert_eq!(c.time_ns, [10, 20, 30]);
        assert_eq!(c.value, [1.0, 2.0, 3.0]);
        assert_eq!(c.at(5, 100), None);
        assert_eq!(c.at(25, 100), Some(2.0));
        assert_eq!(c.at(25, 4), None, "too old");
        assert_eq!(c.index_range(15..31), 1..3);
        assert_eq!(c.index_range(40..50), 3..3);
    }

    #[test]
    fn frames_become_channels() {
        let df = df!(
            "time" => [1i64, 2, 1, 2],
            "device" => ["a", "a", "b", "b"],
            "zone" => ["z1", "z1", "z2", "z2"],
            "flow" => [Some(1.0), None, Some(3.0), Some(4.0)],
            "fault" => [Some(true), Some(false), None, None],
            "serial" => ["x", "x", "y", "y"],
        )
        .unwrap();
        let df = df
            .lazy()
            .with_column(col("time").cast(DataType::Datetime(TimeUnit::Nanoseconds, None)))
            .collect()
            .unwrap();
        let mut t = Telemetry::new();
        t.add_frame("cdu", &df, None).unwrap();
        let a = t.get("a", "flow").unwrap();
        assert_eq!((a.time_ns.clone(), a.value.clone()), (vec![1], vec![1.0]));
        assert_eq!(a.tags.get("zone").map(String::as_str), Some("z1"));
        assert_eq!(t.get("a", "fault").unwrap().value, [1.0, 0.0]);
        assert!(t.get("b", "fault").is_none(), "no value at all: no channel");
        assert_eq!(t.get("b", "flow").unwrap().value, [3.0, 4.0]);
        // A frame without an id column gives nothing, and no error.
        let df = df!("time" => [1i64], "x" => [1.0]).unwrap();
        t.add_frame("other", &df, None).unwrap();
        assert_eq!(t.len(), 3);
    }
}
