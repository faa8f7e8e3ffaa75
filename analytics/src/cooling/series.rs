//! Time series of one quantity sampled at instants: covered time, integrals, time
//! beyond a threshold and trends, under one rule.
//!
//! **The rule.** Between two consecutive usable samples no further apart than
//! `max_sample_gap`, the quantity is taken to vary linearly (the trapezoidal rule);
//! such an interval is *covered*. Across a longer interval, before the first sample
//! and after the last, nothing is known. A window cuts intervals at its edges (the
//! values there interpolated). Everything else follows: an energy is the integral over
//! the covered time, a time below a threshold is the covered time the line spends
//! below it, a minimum is the lowest value of the line over the covered time (which
//! is at a sample or at a window edge). A sample alone, with no neighbour within the
//! gap, covers nothing.

use std::ops::Range;

/// Nanoseconds per hour.
pub(crate) const NS_PER_HOUR: f64 = 3_600_000_000_000.0;
/// Nanoseconds per day.
pub(crate) const NS_PER_DAY: f64 = 24.0 * NS_PER_HOUR;

/// The usable samples of one quantity, in time order (times distinct).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Track {
    /// Unix ns.
    pub t: Vec<i64>,
    /// The values.
    pub v: Vec<f64>,
}

impl Track {
    /// From `(time, value)` pairs: non-finite values dropped, sorted, the first of
    /// equal times kept.
    pub fn from_pairs(pairs: impl IntoIterator<Item = (i64, Option<f64>)>) -> Track {
        let mut all: Vec<(i64, f64)> = pairs
            .into_iter()
            .filter_map(|(t, v)| v.filter(|v| v.is_finite()).map(|v| (t, v)))
            .collect();
        all.sort_by_key(|(t, _)| *t);
        all.dedup_by_key(|(t, _)| *t);
        Track {
            t: all.iter().map(|(t, _)| *t).collect(),
            v: all.iter().map(|(_, v)| *v).collect(),
        }
    }

    /// Samples within `window`.
    pub fn count_within(&self, window: &Range<i64>) -> usize {
        self.t.iter().filter(|t| window.contains(t)).count()
    }

    /// The covered pieces of the line within `window`.
    pub fn segments(&self, window: &Range<i64>, max_gap_ns: i64) -> Segments {
        let mut out = Vec::new();
        for i in 1..self.t.len() {
            let (a, b) = (self.t[i - 1], self.t[i]);
            if b - a > max_gap_ns {
                continue;
            }
            let (start, end) = (a.max(window.start), b.min(window.end));
            if start >= end {
                continue;
            }
            let (va, vb) = (self.v[i - 1], self.v[i]);
            let at = |t: i64| va + (vb - va) * (t - a) as f64 / (b - a) as f64;
            out.push(Segment {
                start,
                end,
                v0: at(start),
                v1: at(end),
            });
        }
        Segments(out)
    }

    /// Least-squares slope of the samples within `window`, per day; `None` with fewer
    /// than two samples or when they span less than `min_span_ns`.
    pub fn slope_per_day(&self, window: &Range<i64>, min_span_ns: i64) -> Option<f64> {
        self.line_fit(window)?.slope_per_day(min_span_ns)
    }

    /// The least-squares sums of the samples within `window` (`None` without one).
    pub fn line_fit(&self, window: &Range<i64>) -> Option<LineFit> {
        let idx: Vec<usize> = (0..self.t.len())
            .filter(|&i| window.contains(&self.t[i]))
            .collect();
        let (first, last) = (*idx.first()?, *idx.last()?);
        // Times in days from the first sample, so that the sums keep their precision.
        let t0 = self.t[first];
        let n = idx.len() as f64;
        let x = |i: usize| (self.t[i] - t0) as f64 / NS_PER_DAY;
        let mean_x = idx.iter().map(|&i| x(i)).sum::<f64>() / n;
        let mean_y = idx.iter().map(|&i| self.v[i]).sum::<f64>() / n;
        let (mut sxy, mut sxx) = (0.0, 0.0);
        for &i in &idx {
            let dx = x(i) - mean_x;
            sxy += dx * (self.v[i] - mean_y);
            sxx += dx * dx;
        }
        Some(LineFit {
            samples: idx.len(),
            first_ns: t0,
            last_ns: self.t[last],
            mean_days: mean_x,
            mean_value: mean_y,
            sxx,
            sxy,
        })
    }
}

/// The sums of a least-squares line through samples (value against time in days),
/// kept so that the fits of consecutive windows combine exactly into the fit of their
/// union ([`LineFit::merge`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LineFit {
    /// Samples fitted.
    pub samples: usize,
    /// The first sample's time, Unix ns (the origin of `mean_days`).
    pub first_ns: i64,
    /// The last sample's time, Unix ns.
    pub last_ns: i64,
    /// Mean time, days after `first_ns`.
    pub mean_days: f64,
    /// Mean value.
    pub mean_value: f64,
    /// Sum of squared time deviations, day².
    pub sxx: f64,
    /// Sum of time deviation x value deviation.
    pub sxy: f64,
}

impl LineFit {
    /// The slope per day; `None` with fewer than two samples or when they span less
    /// than `min_span_ns`.
    pub fn slope_per_day(&self, min_span_ns: i64) -> Option<f64> {
        let span = self.last_ns - self.first_ns;
        if self.samples < 2 || span <= 0 || span < min_span_ns {
            return None;
        }
        (self.sxx > 0.0)
            .then(|| self.sxy / self.sxx)
            .filter(|s| s.is_finite())
    }

    /// The fit of both sample sets together (`later`'s samples after `self`'s): the
    /// pairwise update of the sums of squares, exact up to rounding.
    pub fn merge(&self, later: &LineFit) -> LineFit {
        let (na, nb) = (self.samples as f64, later.samples as f64);
        let n = na + nb;
        let later_mean = later.mean_days + (later.first_ns - self.first_ns) as f64 / NS_PER_DAY;
        let dx = later_mean - self.mean_days;
        let dy = later.mean_value - self.mean_value;
        LineFit {
            samples: self.samples + later.samples,
            first_ns: self.first_ns,
            last_ns: self.last_ns.max(later.last_ns),
            mean_days: self.mean_days + dx * nb / n,
            mean_value: self.mean_value + dy * nb / n,
            sxx: self.sxx + later.sxx + dx * dx * na * nb / n,
            sxy: self.sxy + later.sxy + dx * dy * na * nb / n,
        }
    }
}

/// One covered piece: the line from `v0` at `start` to `v1` at `end`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Segment {
    /// Unix ns.
    pub start: i64,
    /// Unix ns, after `start`.
    pub end: i64,
    /// The value at `start`.
    pub v0: f64,
    /// The value at `end`.
    pub v1: f64,
}

impl Segment {
    fn length(&self) -> i64 {
        self.end - self.start
    }

    /// The value at `t` (within the segment).
    fn at(&self, t: i64) -> f64 {
        self.v0 + (self.v1 - self.v0) * (t - self.start) as f64 / self.length() as f64
    }

    /// The part within `span`, if any.
    fn cut(&self, span: &Range<i64>) -> Option<Segment> {
        let (start, end) = (self.start.max(span.start), self.end.min(span.end));
        (start < end).then(|| Segment {
            start,
            end,
            v0: self.at(start),
            v1: self.at(end),
        })
    }

    /// Time (ns) the line spends below `threshold` (at or below it, if `inclusive`).
    fn time_below(&self, threshold: f64, inclusive: bool) -> f64 {
        let below = |v: f64| {
            if inclusive {
                v <= threshold
            } else {
                v < threshold
            }
        };
        let len = self.length() as f64;
        match (below(self.v0), below(self.v1)) {
            (true, true) => len,
            (false, false) => 0.0,
            // One end on each side: the line crosses once, v0 != v1.
            (true, false) => len * (threshold - self.v0) / (self.v1 - self.v0),
            (false, true) => len * (threshold - self.v1) / (self.v0 - self.v1),
        }
    }
}

/// The covered pieces of a track within a window, in time order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Segments(pub Vec<Segment>);

impl Segments {
    /// Covered time, ns.
    pub fn covered_ns(&self) -> i64 {
        self.0.iter().map(Segment::length).sum()
    }

    /// The covered time as sorted disjoint spans (adjacent pieces merged).
    pub fn spans(&self) -> Vec<Range<i64>> {
        let mut out: Vec<Range<i64>> = Vec::new();
        for s in &self.0 {
            match out.last_mut() {
                Some(last) if last.end == s.start => last.end = s.end,
                _ => out.push(s.start..s.end),
            }
        }
        out
    }

    /// Integral over the covered time, value x hours.
    pub fn integral_hours(&self) -> f64 {
        self.0
            .iter()
            .map(|s| (s.v0 + s.v1) / 2.0 * s.length() as f64 / NS_PER_HOUR)
            .sum()
    }

    /// The pieces within `spans` (sorted, disjoint).
    pub fn within(&self, spans: &[Range<i64>]) -> Segments {
        let (Some(first), Some(last)) = (spans.first(), spans.last()) else {
            return Segments(Vec::new());
        };
        // Segments and spans are both sorted and disjoint: walk them together from the
        // first segment that reaches the spans (an hour's spans of a month-long series
        // look at that hour's segments only).
        let from = self.0.partition_point(|s| s.end <= first.start);
        let mut out = Vec::new();
        let mut next = 0;
        for s in &self.0[from..] {
            if s.start >= last.end {
                break;
            }
            while next < spans.len() && spans[next].end <= s.start {
                next += 1;
            }
            for span in &spans[next..] {
                if span.start >= s.end {
                    break;
                }
                if let Some(cut) = s.cut(span) {
                    out.push(cut);
                }
            }
        }
        Segments(out)
    }

    /// Time below `threshold` (at or below, if `inclusive`), ns.
    pub fn time_below_ns(&self, threshold: f64, inclusive: bool) -> i64 {
        let t: f64 = self
            .0
            .iter()
            .map(|s| s.time_below(threshold, inclusive))
            .sum();
        t.round() as i64
    }

    /// Time above `threshold` (strictly), ns.
    pub fn time_above_ns(&self, threshold: f64) -> i64 {
        self.covered_ns() - self.time_below_ns(threshold, true)
    }

    /// Lowest value over the covered time.
    pub fn min(&self) -> Option<f64> {
        self.0.iter().flat_map(|s| [s.v0, s.v1]).reduce(f64::min)
    }

    /// Highest value over the covered time.
    pub fn max(&self) -> Option<f64> {
        self.0.iter().flat_map(|s| [s.v0, s.v1]).reduce(f64::max)
    }

    /// Time-weighted mean over the covered time.
    pub fn mean(&self) -> Option<f64> {
        let covered = self.covered_ns();
        (covered > 0).then(|| self.integral_hours() * NS_PER_HOUR / covered as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: i64 = 60_000_000_000;

    fn track(points: &[(i64, f64)]) -> Track {
        Track::from_pairs(points.iter().map(|&(t, v)| (t * M, Some(v))))
    }

    #[test]
    fn trapezoids_gaps_and_edges() {
        // 0..10 min ramps 0 -> 10; a 20-minute gap; 30..40 constant 6.
        let tr = track(&[(0, 0.0), (10, 10.0), (30, 6.0), (40, 6.0)]);
        let segs = tr.segments(&(0..40 * M), 15 * M);
        assert_eq!(segs.covered_ns(), 20 * M);
        // (0 + 10) / 2 x 1/6 h + 6 x 1/6 h = 5/6 + 1.
        assert!((segs.integral_hours() - (5.0 / 6.0 + 1.0)).abs() < 1e-12);
        assert_eq!(segs.time_below_ns(5.0, false), 5 * M);
        // Falling from 10 to 0 over 10 min: below 2 for the last 2 min, above 2 for 8.
        let falling = track(&[(0, 10.0), (10, 0.0)]).segments(&(0..10 * M), 15 * M);
        assert_eq!(falling.time_below_ns(2.0, false), 2 * M);
        assert_eq!(falling.time_above_ns(2.0), 8 * M);
        assert_eq!(segs.time_above_ns(5.0), 15 * M);
        assert_eq!(segs.spans(), vec![0..10 * M, 30 * M..40 * M]);
        // A window edge inside the ramp: the value there interpolated.
        let cut = tr.segments(&(5 * M..40 * M), 15 * M);
        assert_eq!(cut.min(), Some(5.0));
        assert_eq!(cut.covered_ns(), 15 * M);
        let within = segs.within(&[2 * M..4 * M, 35 * M..50 * M]);
        assert_eq!(within.covered_ns(), 7 * M);
        // Spans between, before and after the segments, and one across a gap.
        assert_eq!(segs.within(&[-5 * M..-M, 12 * M..20 * M]).covered_ns(), 0);
        assert_eq!(
            segs.within(std::slice::from_ref(&(8 * M..32 * M))).spans(),
            vec![8 * M..10 * M, 30 * M..32 * M]
        );
        assert_eq!(
            segs.within(&[0..M, 3 * M..4 * M, 39 * M..60 * M])
                .covered_ns(),
            3 * M
        );
        assert!((within.integral_hours() - (3.0 * 2.0 + 6.0 * 5.0) / 60.0).abs() < 1e-12);
    }

    #[test]
    fn nothing_covered_is_nothing() {
        let empty = Track::default().segments(&(0..M), M);
        assert_eq!(
            (empty.covered_ns(), empty.min(), empty.mean()),
            (0, None, None)
        );
        let alone = track(&[(0, 1.0)]).segments(&(0..M), M);
        assert_eq!(alone.covered_ns(), 0);
        let nan = Track::from_pairs([(0, Some(f64::NAN)), (M, None), (2 * M, Some(1.0))]);
        assert_eq!(nan.t, vec![2 * M]);
    }

    #[test]
    fn inclusive_thresholds_on_a_flat_line() {
        let segs = track(&[(0, 0.0), (10, 0.0)]).segments(&(0..10 * M), 15 * M);
        assert_eq!(segs.time_below_ns(0.0, true), 10 * M);
        assert_eq!(segs.time_below_ns(0.0, false), 0);
        assert_eq!(segs.time_above_ns(0.0), 0);
    }

    #[test]
    fn slopes() {
        let day = 1440;
        let tr = track(&[(0, 4.0), (day / 2, 4.5), (day, 5.0)]);
        let s = tr.slope_per_day(&(0..(day + 1) * M), 12 * 60 * M).unwrap();
        assert!((s - 1.0).abs() < 1e-12, "{s}");
        assert_eq!(tr.slope_per_day(&(0..M), 0), None);
        assert_eq!(tr.slope_per_day(&(0..(day + 1) * M), 2 * day * M), None);
    }

    #[test]
    fn fits_of_consecutive_windows_merge_into_the_fit_of_both() {
        // A noisy rising line over two days, fitted whole and as two windows.
        let points: Vec<(i64, f64)> = (0..2880)
            .map(|k| {
                (
                    k,
                    3.0 + 0.4 * k as f64 / 1440.0 + ((k * 7919) % 13) as f64 * 0.01,
                )
            })
            .collect();
        let tr = track(&points);
        let whole = tr.line_fit(&(0..2880 * M)).unwrap();
        let first = tr.line_fit(&(0..1000 * M)).unwrap();
        let second = tr.line_fit(&(1000 * M..2880 * M)).unwrap();
        let merged = first.merge(&second);
        assert_eq!(merged.samples, whole.samples);
        assert_eq!(
            (merged.first_ns, merged.last_ns),
            (whole.first_ns, whole.last_ns)
        );
        for (a, b) in [
            (merged.mean_days, whole.mean_days),
            (merged.mean_value, whole.mean_value),
            (merged.sxx, whole.sxx),
            (merged.sxy, whole.sxy),
        ] {
            assert!((a - b).abs() <= 1e-9 * b.abs().max(1.0), "{a} against {b}");
        }
        let slope = merged.slope_per_day(0).unwrap();
        assert!((slope - whole.slope_per_day(0).unwrap()).abs() < 1e-12);
        assert!((slope - 0.4).abs() < 0.01, "{slope}");
        // Each half alone spans less than a day: no trend; together they do.
        assert_eq!(first.slope_per_day(1440 * M), None);
        assert!(merged.slope_per_day(1440 * M).is_some());
    }
}
