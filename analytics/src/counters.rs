//! Energy from cumulative kWh counters: readings in, intervals of energy and typed
//! events out.
//!
//! A meter's counter is read every few seconds or minutes; the energy of an interval
//! between two readings is their difference, except where the counter lies. The rules,
//! applied to the readings of one meter in time order (`b` is the baseline, the last
//! accepted reading; `r` the next reading; `limit` the most energy the meter can
//! plausibly deliver in the interval, `max_power_kw x hours`, with `max_power_kw =
//! spike_power_factor x rated kW`, or the configured `max_power_kw` when the rating is
//! unknown, and no limit when neither is known):
//!
//! 1. **Invalid readings** (NaN, infinite, negative) are dropped, with an event.
//! 2. **Normal**: `0 <= r - b <= limit`: the interval's energy is `r - b`.
//! 3. **Zero written during an outage**: `r == 0` (and `b > 0`). The zeros that follow
//!    are skipped too; if the first non-zero reading after them is back at or above
//!    `b` (and within the limit from `b`), the zeros were an outage: they are dropped
//!    and the energy from `b` to that reading counted as one interval (never the
//!    meter's lifetime). Otherwise the counter really restarted from zero: a reset
//!    whose interval energy is 0 (rule 5).
//! 4. **Drop** `r < b`:
//!    - if the *next* reading is back at or above `b` (within the limit from `b`) and
//!      the drop is larger than `reset_drop_ratio`, `r` was a downward spike: dropped,
//!      flagged, not summed;
//!    - else, with a register width configured (`wrap_kwh`, e.g. 4 294 967.296 kWh for
//!      a uint32 Wh counter), if `r + wrap_kwh - b` is a plausible energy (within the
//!      limit; without a limit, under 1 % of the register's range) it is a
//!      **rollover** and that is the interval's energy;
//!    - else a drop of more than `reset_drop_ratio` (default 20 %) of `b` is a
//!      **reset**: as meter vendors do, the new reading is taken as the interval's
//!      energy (if it is within the limit; if not, the interval's energy is unknown
//!      and the interval uncovered);
//!    - else (a small drop) the reading is noise: dropped and flagged, the baseline
//!      kept.
//! 5. **Absurd rise** `r - b > limit`: if the next reading is back between `b` and `r`
//!    (within the limit from `b`), `r` was an upward spike: dropped and flagged.
//!    Otherwise the counter jumped (a meter swap, a register misread that persists):
//!    the interval's energy is unknown, the interval uncovered, the new level the
//!    baseline.
//! 6. **Gaps**: an interval longer than `max_sample_gap` is not covered: its energy
//!    (when known) is reported apart as *uncovered* energy and never added to the
//!    energy; coverage is the covered time over the requested time.
//!
//! Energy of a window that cuts an interval is apportioned linearly (constant power
//! inside an interval); with readings on the window's boundaries (the usual case:
//! samples on the minute or hour, windows on days and months) nothing is apportioned.
//! Read readings from `max_sample_gap` before the window to `max_sample_gap` after it,
//! so that the intervals across the window's edges are known.

use std::ops::Range;
use std::time::Duration;

use serde::{Deserialize, Serialize};

const NS_PER_HOUR: f64 = 3_600_000_000_000.0;

/// How counter readings are turned into energy; see the [module docs](self).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CounterRules {
    /// The longest interval between two readings that still counts as covered
    /// ("90m", "15m", ...). Default 15 minutes: three missed polls at 5 minutes.
    #[serde(
        default = "default_max_sample_gap",
        with = "crate::config::duration_text"
    )]
    pub max_sample_gap: Duration,
    /// A drop of more than this share of the previous reading is a reset (default
    /// 0.2: the 20 % rule of meter vendors); smaller drops are noise.
    #[serde(default = "default_reset_drop_ratio")]
    pub reset_drop_ratio: f64,
    /// Implied power above this multiple of the meter's rated kW is absurd (default 3).
    #[serde(default = "default_spike_power_factor")]
    pub spike_power_factor: f64,
    /// The absurd-power limit for meters whose rating is unknown, kW. Default none:
    /// such meters get no upward-spike detection.
    #[serde(default)]
    pub max_power_kw: Option<f64>,
}

impl Default for CounterRules {
    fn default() -> Self {
        CounterRules {
            max_sample_gap: default_max_sample_gap(),
            reset_drop_ratio: default_reset_drop_ratio(),
            spike_power_factor: default_spike_power_factor(),
            max_power_kw: None,
        }
    }
}

/// Default `max_sample_gap`: 15 minutes.
pub fn default_max_sample_gap() -> Duration {
    Duration::from_secs(15 * 60)
}

/// Default `reset_drop_ratio`: 0.2.
pub fn default_reset_drop_ratio() -> f64 {
    0.2
}

/// Default `spike_power_factor`: 3.
pub fn default_spike_power_factor() -> f64 {
    3.0
}

impl CounterRules {
    /// `max_sample_gap` in nanoseconds.
    pub fn max_gap_ns(&self) -> i64 {
        i64::try_from(self.max_sample_gap.as_nanos()).unwrap_or(i64::MAX)
    }
}

/// What is known about one meter's counter.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct CounterSpec {
    /// Where the register wraps to zero, kWh (2^bits x scale), if it can.
    pub wrap_kwh: Option<f64>,
    /// The meter's rated power, kW (for the absurd-power limit).
    pub rated_kw: Option<f64>,
}

impl CounterSpec {
    /// The counter of an unsigned register of `bits` bits whose unit is `kwh_per_count`
    /// kWh (a uint32 Wh counter: `register(32, 0.001)` wraps at 4 294 967.296 kWh).
    pub fn register(bits: u32, kwh_per_count: f64) -> CounterSpec {
        CounterSpec {
            wrap_kwh: Some(2f64.powi(bits as i32) * kwh_per_count),
            rated_kw: None,
        }
    }

    /// The same with a rated power.
    #[must_use]
    pub fn rated(mut self, kw: f64) -> CounterSpec {
        self.rated_kw = Some(kw);
        self
    }
}

/// One counter reading.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reading {
    /// Unix ns.
    pub time_ns: i64,
    /// The counter, kWh.
    pub kwh: f64,
}

/// The energy between two accepted readings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CounterInterval {
    /// The earlier reading's time, Unix ns.
    pub start_ns: i64,
    /// The later reading's time, Unix ns.
    pub end_ns: i64,
    /// The interval's energy, kWh; `None` when it cannot be known (a counter jump, a
    /// reset whose new reading is itself absurd).
    pub kwh: Option<f64>,
    /// Whether the interval counts: false across a gap or with unknown energy.
    pub covered: bool,
}

/// What happened to a counter; each one is reported, none silently absorbed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CounterEventKind {
    /// A NaN, infinite or negative reading, dropped.
    InvalidReading,
    /// Zeros written during an outage, dropped (the counter came back to its level).
    OutageZero,
    /// The counter restarted (a drop of more than `reset_drop_ratio`): the new
    /// reading taken as the interval's energy.
    Reset,
    /// The register wrapped around its width.
    Rollover,
    /// A single reading far below its neighbours, dropped.
    DownwardSpike,
    /// A small drop (noise, or a meter correcting itself), dropped.
    SmallDrop,
    /// A single reading implying an absurd power, dropped.
    UpwardSpike,
    /// A rise implying an absurd power that persisted: the interval's energy unknown.
    Jump,
    /// An interval longer than `max_sample_gap`: its energy is uncovered.
    Gap,
}

/// One event of a counter, with the values that made it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CounterEvent {
    /// What happened.
    pub kind: CounterEventKind,
    /// The time of the reading concerned (for a gap: its end), Unix ns.
    pub time_ns: i64,
    /// The baseline before it (the last accepted reading), kWh.
    pub previous_kwh: Option<f64>,
    /// The reading concerned, kWh (for an outage: the first zero).
    pub reading_kwh: f64,
    /// The energy counted for the interval it closed, kWh (`None`: nothing counted).
    pub counted_kwh: Option<f64>,
    /// Readings dropped with it (zeros of an outage), including itself.
    pub readings: u32,
    /// Duration of the interval concerned (a gap's length), ns.
    pub interval_ns: i64,
}

/// A meter's counter turned into intervals and events.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CounterSeries {
    /// Accepted intervals in time order, adjacent (each starts where the last ended).
    pub intervals: Vec<CounterInterval>,
    /// Events in time order.
    pub events: Vec<CounterEvent>,
}

/// Energy of one meter over a window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MeterEnergy {
    /// The meter's id.
    pub meter: String,
    /// The window, Unix ns (end excluded).
    pub window_ns: (i64, i64),
    /// Energy over the covered time, kWh.
    pub energy_kwh: f64,
    /// Energy measured across gaps (not added to `energy_kwh`), kWh.
    pub uncovered_kwh: f64,
    /// Covered time / window length, 0..=1.
    pub coverage: f64,
    /// The counter's events within the window.
    pub events: Vec<CounterEvent>,
}

impl CounterSeries {
    /// Applies the [rules](self) to readings (any order; equal times keep the first).
    pub fn from_readings(
        readings: &[Reading],
        spec: &CounterSpec,
        rules: &CounterRules,
    ) -> CounterSeries {
        let mut series = CounterSeries::default();
        let mut sorted: Vec<Reading> = Vec::with_capacity(readings.len());
        for r in readings {
            if r.kwh.is_finite() && r.kwh >= 0.0 {
                sorted.push(*r);
            } else {
                series.events.push(CounterEvent {
                    kind: CounterEventKind::InvalidReading,
                    time_ns: r.time_ns,
                    previous_kwh: None,
                    reading_kwh: r.kwh,
                    counted_kwh: None,
                    readings: 1,
                    interval_ns: 0,
                });
            }
        }
        sorted.sort_by_key(|r| r.time_ns);
        sorted.dedup_by_key(|r| r.time_ns);
        let limit_kw = spec
            .rated_kw
            .map(|kw| kw * rules.spike_power_factor)
            .or(rules.max_power_kw);
        let mut walk = Walk {
            series: &mut series,
            readings: &sorted,
            spec,
            rules,
            limit_kw,
        };
        walk.run();
        series.events.sort_by_key(|e| e.time_ns);
        series
    }

    /// The intervals that overlap `window`, found by binary search: the intervals are
    /// in time order and adjacent, so their starts and their ends both increase. A
    /// month's daily breakdown then reads each interval about once, not once a day.
    fn overlapping(&self, window: &Range<i64>) -> &[CounterInterval] {
        let from = self
            .intervals
            .partition_point(|iv| iv.end_ns <= window.start);
        let rest = &self.intervals[from..];
        &rest[..rest.partition_point(|iv| iv.start_ns < window.end)]
    }

    /// Energy, uncovered energy, coverage and events over `window` (Unix ns).
    pub fn energy(&self, meter: &str, window: Range<i64>) -> MeterEnergy {
        let length = (window.end - window.start).max(0);
        let mut energy = 0.0;
        let mut uncovered = 0.0;
        let mut covered_ns: i64 = 0;
        for iv in self.overlapping(&window) {
            let overlap = overlap_ns(iv.start_ns..iv.end_ns, &window);
            if overlap == 0 {
                continue;
            }
            let share = overlap as f64 / (iv.end_ns - iv.start_ns) as f64;
            match (iv.covered, iv.kwh) {
                (true, Some(kwh)) => {
                    energy += kwh * share;
                    covered_ns += overlap;
                }
                (_, kwh) => uncovered += kwh.unwrap_or(0.0) * share,
            }
        }
        MeterEnergy {
            meter: meter.to_owned(),
            window_ns: (window.start, window.end),
            energy_kwh: energy,
            uncovered_kwh: uncovered,
            coverage: if length > 0 {
                covered_ns as f64 / length as f64
            } else {
                0.0
            },
            events: self
                .events
                .iter()
                .filter(|e| e.time_ns >= window.start && e.time_ns <= window.end)
                .copied()
                .collect(),
        }
    }

    /// The covered time within `window`, as sorted disjoint spans.
    pub fn covered_spans(&self, window: &Range<i64>) -> Vec<Range<i64>> {
        let mut spans: Vec<Range<i64>> = Vec::new();
        for iv in self.overlapping(window).iter().filter(|iv| iv.covered) {
            let start = iv.start_ns.max(window.start);
            let end = iv.end_ns.min(window.end);
            if start >= end {
                continue;
            }
            match spans.last_mut() {
                Some(last) if last.end >= start => last.end = last.end.max(end),
                _ => spans.push(start..end),
            }
        }
        spans
    }

    /// Energy over the covered intervals' parts inside `spans` (sorted, disjoint), kWh.
    pub fn energy_within(&self, spans: &[Range<i64>]) -> f64 {
        let (Some(first), Some(last)) = (spans.first(), spans.last()) else {
            return 0.0;
        };
        let mut total = 0.0;
        let mut s = 0;
        let within = self.overlapping(&(first.start..last.end));
        for iv in within.iter().filter(|iv| iv.covered) {
            let Some(kwh) = iv.kwh else { continue };
            while s < spans.len() && spans[s].end <= iv.start_ns {
                s += 1;
            }
            let mut k = s;
            while k < spans.len() && spans[k].start < iv.end_ns {
                let overlap = overlap_ns(iv.start_ns..iv.end_ns, &spans[k]);
                total += kwh * overlap as f64 / (iv.end_ns - iv.start_ns) as f64;
                k += 1;
            }
        }
        total
    }
}

/// The length of the intersection of two ranges, ns.
fn overlap_ns(a: Range<i64>, b: &Range<i64>) -> i64 {
    (a.end.min(b.end) - a.start.max(b.start)).max(0)
}

/// The intersection of two sorted lists of disjoint spans.
pub fn intersect_spans(a: &[Range<i64>], b: &[Range<i64>]) -> Vec<Range<i64>> {
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::new();
    while i < a.len() && j < b.len() {
        let start = a[i].start.max(b[j].start);
        let end = a[i].end.min(b[j].end);
        if start < end {
            out.push(start..end);
        }
        if a[i].end < b[j].end {
            i += 1;
        } else {
            j += 1;
        }
    }
    out
}

/// Total length of spans, ns.
pub fn spans_length(spans: &[Range<i64>]) -> i64 {
    spans.iter().map(|s| s.end - s.start).sum()
}

/// The state of one pass over a meter's sorted readings.
struct Walk<'a> {
    series: &'a mut CounterSeries,
    readings: &'a [Reading],
    spec: &'a CounterSpec,
    rules: &'a CounterRules,
    limit_kw: Option<f64>,
}

impl Walk<'_> {
    /// Whether `kwh` is a plausible energy between times `from` and `to`.
    fn plausible(&self, kwh: f64, from_ns: i64, to_ns: i64) -> bool {
        kwh >= 0.0
            && self
                .limit_kw
                .is_none_or(|kw| kwh <= kw * (to_ns - from_ns) as f64 / NS_PER_HOUR)
    }

    /// Whether reading `r` is back at the baseline's level (at or above it, plausibly).
    fn returns_to(&self, base: Reading, r: Reading) -> bool {
        r.kwh >= base.kwh && self.plausible(r.kwh - base.kwh, base.time_ns, r.time_ns)
    }

    fn event(&mut self, kind: CounterEventKind, base: Reading, r: Reading, counted: Option<f64>) {
        self.series.events.push(CounterEvent {
            kind,
            time_ns: r.time_ns,
            previous_kwh: Some(base.kwh),
            reading_kwh: r.kwh,
            counted_kwh: counted,
            readings: 1,
            interval_ns: r.time_ns - base.time_ns,
        });
    }

    /// Closes the interval from `base` to `r` with `kwh` (gaps uncovered).
    fn interval(&mut self, base: Reading, r: Reading, kwh: Option<f64>) {
        let length = r.time_ns - base.time_ns;
        let gap = length > self.rules.max_gap_ns();
        if gap {
            self.series.events.push(CounterEvent {
                kind: CounterEventKind::Gap,
                time_ns: r.time_ns,
                previous_kwh: Some(base.kwh),
                reading_kwh: r.kwh,
                counted_kwh: None,
                readings: 0,
                interval_ns: length,
            });
        }
        self.series.intervals.push(CounterInterval {
            start_ns: base.time_ns,
            end_ns: r.time_ns,
            kwh,
            covered: !gap && kwh.is_some(),
        });
    }

    fn run(&mut self) {
        let readings = self.readings;
        let Some(&first) = readings.first() else {
            return;
        };
        let mut base = first;
        let mut i = 1;
        while i < readings.len() {
            let r = readings[i];
            let next = readings.get(i + 1).copied();
            let delta = r.kwh - base.kwh;
            if delta >= 0.0 {
                if self.plausible(delta, base.time_ns, r.time_ns) {
                    self.interval(base, r, Some(delta));
                    base = r;
                } else if next.is_some_and(|n| n.kwh < r.kwh && self.returns_to(base, n)) {
                    self.event(CounterEventKind::UpwardSpike, base, r, None);
                } else {
                    self.event(CounterEventKind::Jump, base, r, None);
                    self.interval(base, r, None);
                    base = r;
                }
                i += 1;
                continue;
            }
            // A drop.
            if r.kwh == 0.0 {
                let zeros = readings[i..].iter().take_while(|z| z.kwh == 0.0).count();
                let back = readings.get(i + zeros).copied();
                if let Some(back) = back.filter(|b| self.returns_to(base, *b)) {
                    self.series.events.push(CounterEvent {
                        kind: CounterEventKind::OutageZero,
                        time_ns: r.time_ns,
                        previous_kwh: Some(base.kwh),
                        reading_kwh: 0.0,
                        counted_kwh: Some(back.kwh - base.kwh),
                        readings: zeros as u32,
                        interval_ns: back.time_ns - base.time_ns,
                    });
                    self.interval(base, back, Some(back.kwh - base.kwh));
                    base = back;
                    i += zeros + 1;
                    continue;
                }
            }
            let drop_ratio = -delta / base.kwh;
            let large = drop_ratio > self.rules.reset_drop_ratio;
            if large && next.is_some_and(|n| self.returns_to(base, n)) {
                self.event(CounterEventKind::DownwardSpike, base, r, None);
                i += 1;
                continue;
            }
            let rolled = self.spec.wrap_kwh.map(|wrap| r.kwh + wrap - base.kwh);
            let rollover = match (rolled, self.limit_kw, self.spec.wrap_kwh) {
                (Some(kwh), Some(_), _) => self.plausible(kwh, base.time_ns, r.time_ns),
                (Some(kwh), None, Some(wrap)) => kwh >= 0.0 && kwh < 0.01 * wrap,
                _ => false,
            };
            if let (true, Some(kwh)) = (rollover, rolled) {
                self.event(CounterEventKind::Rollover, base, r, Some(kwh));
                self.interval(base, r, Some(kwh));
                base = r;
            } else if large {
                let kwh = Some(r.kwh).filter(|&k| self.plausible(k, base.time_ns, r.time_ns));
                self.event(CounterEventKind::Reset, base, r, kwh);
                self.interval(base, r, kwh);
                base = r;
            } else {
                self.event(CounterEventKind::SmallDrop, base, r, None);
            }
            i += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3_600_000_000_000;

    fn series(values: &[f64], spec: CounterSpec) -> CounterSeries {
        series_with_gap(values, spec, 5400)
    }

    fn series_with_gap(values: &[f64], spec: CounterSpec, max_gap_s: u64) -> CounterSeries {
        let readings: Vec<Reading> = values
            .iter()
            .enumerate()
            .map(|(i, &kwh)| Reading {
                time_ns: i as i64 * H,
                kwh,
            })
            .collect();
        let rules = CounterRules {
            max_sample_gap: Duration::from_secs(max_gap_s),
            ..CounterRules::default()
        };
        CounterSeries::from_readings(&readings, &spec, &rules)
    }

    fn kinds(s: &CounterSeries) -> Vec<CounterEventKind> {
        s.events.iter().map(|e| e.kind).collect()
    }

    fn total(s: &CounterSeries, hours: i64) -> MeterEnergy {
        s.energy("m", 0..hours * H)
    }

    #[test]
    fn plain_counter_sums_differences() {
        let s = series(&[10.0, 20.0, 35.0], CounterSpec::default());
        let e = total(&s, 2);
        assert_eq!(e.energy_kwh, 25.0);
        assert_eq!(e.coverage, 1.0);
        assert!(s.events.is_empty());
    }

    #[test]
    fn outage_zeros_never_count_the_lifetime() {
        let s = series(
            &[1000.0, 1010.0, 0.0, 0.0, 1040.0, 1050.0],
            CounterSpec::default(),
        );
        let e = total(&s, 5);
        assert_eq!(e.energy_kwh, 20.0);
        assert_eq!(
            kinds(&s),
            [CounterEventKind::OutageZero, CounterEventKind::Gap]
        );
        // The outage spans 3 h > 90 min: uncovered, its energy apart.
        assert_eq!(e.uncovered_kwh, 30.0);
        assert!((e.coverage - 2.0 / 5.0).abs() < 1e-12);
    }

    #[test]
    fn reset_takes_the_new_reading() {
        let s = series(&[1000.0, 1010.0, 4.0, 14.0], CounterSpec::default());
        assert_eq!(total(&s, 3).energy_kwh, 10.0 + 4.0 + 10.0);
        assert_eq!(kinds(&s), [CounterEventKind::Reset]);
    }

    #[test]
    fn a_zero_that_stays_low_is_a_reset() {
        let s = series(&[1000.0, 1010.0, 0.0, 10.0], CounterSpec::default());
        assert_eq!(total(&s, 3).energy_kwh, 20.0);
        assert_eq!(kinds(&s), [CounterEventKind::Reset]);
    }

    #[test]
    fn rollover_of_a_uint32_wh_register() {
        let spec = CounterSpec::register(32, 0.001).rated(100.0);
        let s = series(&[4_294_900.0, 4_294_950.0, 32.704, 82.704], spec);
        let e = total(&s, 3);
        assert!((e.energy_kwh - 150.0).abs() < 1e-6, "{}", e.energy_kwh);
        assert_eq!(kinds(&s), [CounterEventKind::Rollover]);
    }

    #[test]
    fn spikes_are_flagged_not_summed() {
        let spec = CounterSpec::default().rated(20.0);
        // A dropped reading makes a 2 h interval: allow it.
        let s = series_with_gap(
            &[100.0, 110.0, 9_999.0, 130.0, 20.0, 150.0, 149.0, 160.0],
            spec,
            7200,
        );
        let e = total(&s, 7);
        assert_eq!(e.energy_kwh, 60.0);
        assert_eq!(e.coverage, 1.0);
        assert_eq!(
            kinds(&s),
            [
                CounterEventKind::UpwardSpike,
                CounterEventKind::DownwardSpike,
                CounterEventKind::SmallDrop
            ]
        );
    }

    #[test]
    fn a_persistent_jump_is_unknown_energy() {
        let spec = CounterSpec::default().rated(20.0);
        let s = series(&[100.0, 110.0, 9_000.0, 9_010.0], spec);
        let e = total(&s, 3);
        assert_eq!(e.energy_kwh, 20.0);
        assert!((e.coverage - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(kinds(&s), [CounterEventKind::Jump]);
    }

    #[test]
    fn windows_apportion_and_no_data_means_no_coverage() {
        let s = series(&[0.0, 10.0, 20.0], CounterSpec::default());
        let half = s.energy("m", H / 2..H + H / 2);
        assert_eq!(half.energy_kwh, 10.0);
        assert_eq!(half.coverage, 1.0);
        let none = s.energy("m", 10 * H..11 * H);
        assert_eq!((none.energy_kwh, none.coverage), (0.0, 0.0));
        let empty = series(&[], CounterSpec::default()).energy("m", 0..H);
        assert_eq!((empty.energy_kwh, empty.coverage), (0.0, 0.0));
    }

    #[test]
    fn invalid_readings_are_dropped() {
        let s = series(&[0.0, f64::NAN, 20.0, -5.0, 30.0], CounterSpec::default());
        let e = total(&s, 4);
        // Two 2 h intervals remain: gaps at 90 min, so their energy is uncovered.
        assert_eq!((e.energy_kwh, e.uncovered_kwh), (0.0, 30.0));
        let invalid = kinds(&s)
            .into_iter()
            .filter(|k| *k == CounterEventKind::InvalidReading)
            .count();
        assert_eq!(invalid, 2);
    }

    #[test]
    fn spans_intersect() {
        let a = vec![0..10, 20..30];
        let b = vec![0..0, 5..25];
        assert_eq!(intersect_spans(&a, &b), vec![5..10, 20..25]);
        assert_eq!(spans_length(&intersect_spans(&a, &b)), 10);
    }
}
