//! From a per-sample judgement to episodes: the state machine every detector shares.
//!
//! A detector judges each sample ([`Level`]); this module turns the judgements into
//! episodes with a start (when the condition began), a detection time (when it had
//! held long enough), an end (`None` while ongoing), the worst severity and score.
//!
//! - An episode starts once the condition (warning or critical) has held for `hold`
//!   without interruption; its `start` is the first sample of that run, its `detected`
//!   the sample that completed the hold. A critical run may have its own, shorter hold
//!   (`critical_hold`: a wet leak rope or a stopped loop is raised at once).
//! - [`Level::Band`] is the hysteresis band: it keeps an active episode going and does
//!   not start one (the supply temperature alarm clears only 1 K inside its limit).
//! - [`Level::Normal`] ends an episode at that sample.
//! - [`Level::Unknown`] (missing or suppressed data) neither starts nor ends anything;
//!   but a silence longer than `max_gap` interrupts a pending run, and ends an active
//!   episode at the last sample seen (nothing is claimed about time without data).

use super::Severity;

/// What a detector made of one sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// No judgement: data missing, or suppressed (start-up).
    Unknown,
    /// Within limits.
    Normal,
    /// Inside the hysteresis band: holds an active episode, starts none.
    Band,
    /// Past the warning limit.
    Warning,
    /// Past the critical limit.
    Critical,
}

/// How long a condition must hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Holds {
    /// Warning (or critical) condition held this long: an episode starts. ns.
    pub hold_ns: i64,
    /// A critical condition held this long starts an episode even before `hold_ns`. ns.
    pub critical_hold_ns: i64,
    /// A silence longer than this interrupts a run and ends an episode. ns.
    pub max_gap_ns: i64,
}

impl Holds {
    /// The same hold for both levels.
    pub fn new(hold_ns: i64, max_gap_ns: i64) -> Holds {
        Holds {
            hold_ns,
            critical_hold_ns: hold_ns,
            max_gap_ns,
        }
    }

    /// With a shorter hold for critical samples.
    #[must_use]
    pub fn critical_after(mut self, critical_hold_ns: i64) -> Holds {
        self.critical_hold_ns = critical_hold_ns;
        self
    }
}

/// One episode of a condition.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Episode {
    /// First sample of the run that led to it, Unix ns.
    pub start_ns: i64,
    /// The sample that completed the hold, Unix ns.
    pub detected_ns: i64,
    /// The first normal sample after it (or the last sample before a long silence);
    /// `None`: still going at the end of the data.
    pub end_ns: Option<i64>,
    /// The worst level seen.
    pub severity: Severity,
    /// The highest score seen.
    pub score: f64,
    /// The sample with the highest score, Unix ns.
    pub peak_ns: i64,
}

/// Runs the state machine over `(time_ns, level, score)` samples in time order.
pub fn episodes(
    samples: impl IntoIterator<Item = (i64, Level, f64)>,
    holds: Holds,
) -> Vec<Episode> {
    let mut out = Vec::new();
    let mut pending: Option<i64> = None;
    let mut pending_critical: Option<i64> = None;
    let mut pending_worst = (Severity::Warning, f64::NEG_INFINITY, 0i64);
    let mut active: Option<Episode> = None;
    let mut last_t: Option<i64> = None;
    for (t, level, score) in samples {
        if level == Level::Unknown {
            continue;
        }
        if let Some(prev) = last_t {
            if t < prev {
                continue; // out of order: ignored
            }
            if t - prev > holds.max_gap_ns {
                pending = None;
                pending_critical = None;
                if let Some(mut e) = active.take() {
                    e.end_ns = Some(prev);
                    out.push(e);
                }
            }
        }
        last_t = Some(t);
        let score = if score.is_finite() { score } else { 0.0 };
        match level {
            Level::Warning | Level::Critical => {
                let severity = if level == Level::Critical {
                    Severity::Critical
                } else {
                    Severity::Warning
                };
                if let Some(e) = active.as_mut() {
                    e.severity = e.severity.max(severity);
                    if score > e.score {
                        e.score = score;
                        e.peak_ns = t;
                    }
                    continue;
                }
                if pending.is_none() {
                    pending = Some(t);
                    pending_worst = (severity, score, t);
                }
                if level == Level::Critical {
                    pending_critical.get_or_insert(t);
                } else {
                    pending_critical = None;
                }
                pending_worst.0 = pending_worst.0.max(severity);
                if score > pending_worst.1 {
                    pending_worst.1 = score;
                    pending_worst.2 = t;
                }
                let start = pending.unwrap_or(t);
                let held = t - start >= holds.hold_ns
                    || pending_critical.is_some_and(|c| t - c >= holds.critical_hold_ns);
                if held {
                    active = Some(Episode {
                        start_ns: start,
                        detected_ns: t,
                        end_ns: None,
                        severity: pending_worst.0,
                        score: pending_worst.1,
                        peak_ns: pending_worst.2,
                    });
                    pending = None;
                    pending_critical = None;
                }
            }
            Level::Band => {
                pending = None;
                pending_critical = None;
            }
            Level::Normal => {
                pending = None;
                pending_critical = None;
                if let Some(mut e) = active.take() {
                    e.end_ns = Some(t);
                    out.push(e);
                }
            }
            Level::Unknown => {}
        }
    }
    if let Some(e) = active {
        out.push(e);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;

    fn run(levels: &[Level], holds: Holds) -> Vec<Episode> {
        episodes(
            levels
                .iter()
                .enumerate()
                .map(|(i, &l)| (i as i64 * 10 * S, l, i as f64)),
            holds,
        )
    }

    use Level::{Band as B, Critical as C, Normal as N, Unknown as U, Warning as W};

    #[test]
    fn a_condition_must_hold_before_an_episode_starts() {
        // Samples every 10 s; hold 30 s: the run 20..50 s completes at 50 s.
        //            0  10  20  30  40  50  60  70  80
        let levels = [N, W, N, W, W, W, W, N, N];
        let e = run(&levels, Holds::new(30 * S, 60 * S));
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(e[0].start_ns, 30 * S);
        assert_eq!(e[0].detected_ns, 60 * S);
        assert_eq!(e[0].end_ns, Some(70 * S));
        assert_eq!(e[0].severity, Severity::Warning);
        assert_eq!(e[0].peak_ns, 60 * S);
    }

    #[test]
    fn the_band_holds_an_episode_and_starts_none() {
        //            0  10  20  30  40  50  60  70
        let levels = [W, W, B, B, W, N, B, B];
        let e = run(&levels, Holds::new(10 * S, 60 * S));
        assert_eq!(e.len(), 1);
        assert_eq!((e[0].start_ns, e[0].detected_ns), (0, 10 * S));
        assert_eq!(e[0].end_ns, Some(50 * S));
    }

    #[test]
    fn critical_can_start_at_once_and_an_ongoing_episode_has_no_end() {
        //            0  10  20  30
        let levels = [N, C, W, W];
        let e = run(&levels, Holds::new(100 * S, 60 * S).critical_after(0));
        assert_eq!(e.len(), 1);
        assert_eq!((e[0].start_ns, e[0].detected_ns), (10 * S, 10 * S));
        assert_eq!(e[0].end_ns, None);
        assert_eq!(e[0].severity, Severity::Critical);
    }

    #[test]
    fn unknown_samples_and_long_gaps() {
        // Unknown in the middle of a run does not break it ...
        //            0  10  20  30  40
        let levels = [W, U, W, W, N];
        let e = run(&levels, Holds::new(30 * S, 60 * S));
        assert_eq!(e.len(), 1);
        assert_eq!((e[0].start_ns, e[0].detected_ns), (0, 30 * S));
        // ... but a silence longer than max_gap ends the episode at the last sample.
        let samples = [
            (0, W, 1.0),
            (10 * S, W, 1.0),
            (20 * S, W, 1.0),
            (500 * S, W, 1.0),
        ];
        let e = episodes(samples, Holds::new(10 * S, 60 * S));
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].end_ns, Some(20 * S));
        // Out-of-order and non-finite scores are survived.
        let samples = [(10 * S, W, f64::NAN), (0, W, 1.0), (20 * S, W, 2.0)];
        let e = episodes(samples, Holds::new(10 * S, 60 * S));
        assert_eq!(e.len(), 1);
        assert_eq!((e[0].detected_ns, e[0].score), (20 * S, 2.0), "{e:?}");
    }
}
