//! [`LatestBySeries`]: what is kept in memory while the spool is full.

use std::collections::HashMap;

use tidewatch_model::{FieldValue, Point};

/// The newest value of every field of every series, and nothing older.
///
/// While the spool is full the writer cannot accept points in order; rather than
/// letting memory grow with the outage, it keeps the newest value per series and field
/// (keyed by measurement, tags and field key) and counts every value a newer one
/// replaced. Memory is bounded by the number of series, not by the outage's length.
/// Collectors that must keep polling while a write waits can use it the same way.
///
/// ```
/// use tidewatch_model::Point;
/// use tidewatch_storage::influx::LatestBySeries;
///
/// let mut latest = LatestBySeries::default();
/// assert_eq!(latest.insert(&Point::new("cdu", 1).tag("unit", "a").field("t", 18.0)), 0);
/// // A newer value of the same series and field replaces the older one.
/// assert_eq!(latest.insert(&Point::new("cdu", 2).tag("unit", "a").field("t", 18.5)), 1);
/// // Another series is kept beside it.
/// assert_eq!(latest.insert(&Point::new("cdu", 1).tag("unit", "b").field("t", 17.0)), 0);
/// assert_eq!(latest.len(), 2);
/// let points = latest.drain();
/// assert_eq!(points.len(), 2);
/// assert!(latest.is_empty());
/// ```
#[derive(Debug, Default)]
pub struct LatestBySeries {
    /// Series (measurement, sorted tags) -> field key -> (timestamp, value).
    series: HashMap<SeriesKey, HashMap<String, (i64, FieldValue)>>,
    values: usize,
}

type SeriesKey = (String, Vec<(String, String)>);

impl LatestBySeries {
    /// Keeps the point's field values that are newer than (or as new as) the ones held
    /// for their series and field; returns how many values were superseded: older
    /// values replaced, and values of this point older than the ones held.
    pub fn insert(&mut self, point: &Point) -> usize {
        let key = (point.measurement().to_owned(), point.tags().to_vec());
        let fields = self.series.entry(key).or_default();
        let ts = point.timestamp_ns();
        let mut superseded = 0;
        for (name, value) in point.fields() {
            match fields.get_mut(name.as_str()) {
                Some(held) => {
                    superseded += 1;
                    if ts >= held.0 {
                        *held = (ts, value.clone());
                    }
                }
                None => {
                    fields.insert(name.to_string(), (ts, value.clone()));
                    self.values += 1;
                }
            }
        }
        superseded
    }

    /// Field values held.
    pub fn len(&self) -> usize {
        self.values
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.values == 0
    }

    /// Takes everything held as points: the fields of one series with the same
    /// timestamp are put back together in one point (fields sorted by key), points
    /// ordered by timestamp.
    pub fn drain(&mut self) -> Vec<Point> {
        let mut points = Vec::new();
        for ((measurement, tags), fields) in self.series.drain() {
            let mut by_time: Vec<(i64, String, FieldValue)> =
                fields.into_iter().map(|(k, (ts, v))| (ts, k, v)).collect();
            by_time.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
            let mut current: Option<Point> = None;
            for (ts, key, value) in by_time {
                if current.as_ref().is_some_and(|p| p.timestamp_ns() != ts) {
                    points.extend(current.take());
                }
                let point = current.get_or_insert_with(|| {
                    let mut p = Point::new(measurement.clone(), ts);
                    for (k, v) in &tags {
                        p.add_tag(k.clone(), v.clone());
                    }
                    p
                });
                point.add_field(key, value);
            }
            points.extend(current);
        }
        self.values = 0;
        points.sort_by_key(Point::timestamp_ns);
        points
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest_value_per_series_and_field_and_counts_the_rest() {
        let mut latest = LatestBySeries::default();
        let p = |ts, unit: &str| Point::new("cdu", ts).tag("unit", unit);
        assert_eq!(
            latest.insert(&p(10, "a").field("t", 1.0).field("rpm", 5_i64)),
            0
        );
        assert_eq!(latest.insert(&p(20, "a").field("t", 2.0)), 1);
        // Out of order: older than what is held, so it is the one superseded.
        assert_eq!(latest.insert(&p(15, "a").field("t", 9.0)), 1);
        assert_eq!(latest.insert(&p(5, "b").field("t", 3.0)), 0);
        assert_eq!(latest.len(), 3);
        let mut points = latest.drain();
        points.sort_by_key(|p| (p.tag_value("unit").unwrap().to_owned(), p.timestamp_ns()));
        assert_eq!(
            points,
            vec![
                p(10, "a").field("rpm", 5_i64),
                p(20, "a").field("t", 2.0),
                p(5, "b").field("t", 3.0),
            ]
        );
        assert!(latest.is_empty());
    }

    #[test]
    fn fields_of_one_instant_come_back_as_one_point() {
        let mut latest = LatestBySeries::default();
        latest.insert(
            &Point::new("pdu", 7)
                .tag("pdu", "p1")
                .field("w", 1.0)
                .field("a", 2.0),
        );
        let points = latest.drain();
        assert_eq!(points.len(), 1);
        assert_eq!(points[0].fields().len(), 2);
        assert_eq!(points[0].tag_value("pdu"), Some("p1"));
    }
}
