//! The drift test: has a sensor's residual against its neighbours begun to ramp away?
//!
//! Input is the residual of [`super::stats`] (a sensor's deviation from its rolling
//! median, minus the median of its group's deviations), centred on its median over the
//! trailing `ewma_window` and divided by its noise (the standard deviation of that
//! window, values beyond 6 robust sigmas left out, never below the quantisation noise of
//! its register step, step / sqrt 12). For each sample and each onset `a` between
//! `drift_min_span` and `drift_window` before it, the generalised likelihood ratio of a
//! ramp starting at `a` against no change, in white noise:
//!
//! `G(a) = |sum w_k e_k| / sqrt(sum w_k^2)`, with `w_k = t_k - t_a` over the samples after `a`.
//!
//! Under no change G is a standard normal deviate; a ramp of slope b (in noise sigmas a
//! second) makes it grow as b x sqrt(sum w^2), about b x T^1.5 / sqrt(3 x step) after T.
//! The largest G above `drift_limit` is an anomaly (`sensor_drift`); its start is the
//! onset that maximises G, and the message gives how far the sensor has moved since
//! (the slope estimate `sum w e / sum w^2` times the time since the onset). Where the EWMA waits for the drift to pass a level, this test weighs every
//! sample since the onset by how far the ramp should have gone by then, which is as
//! early as a ramp can be told from noise. A gap longer than `max_gap` restarts it.
//! A later crossing whose onset lies inside the sensor's previous drift anomaly
//! extends that anomaly (one drift, one anomaly).

use super::config::ns;
use super::episodes::{Holds, Level};
use super::rules::judge;
use super::stats::{block_scales, channel_anomaly, describe, resolution, robust_scale};
use super::{Anomaly, AnomalyKind, Channel, ZoneContext};

/// Tests the residual of `ch` (one value per sample of `ch`, NaN where unknown).
pub(crate) fn detect(ctx: &ZoneContext, ch: &Channel, residual: &[f64], out: &mut Vec<Anomaly>) {
    let c = ctx.config;
    let gap = ns(c.max_gap);
    let base = block_scales(
        &ch.time_ns,
        residual,
        ns(c.ewma_window),
        ns(c.zscore_refresh),
        noise_scale,
    );
    let mut ramp = Ramp::new(c.drift_min_span.as_secs_f64(), c.drift_window.as_secs_f64());
    // The best ramp at each sample, with the noise sigma it was scaled by.
    let mut fits: Vec<Option<(Fit, f64)>> = vec![None; residual.len()];
    let judged: Vec<(Level, f64)> = (0..residual.len())
        .map(|i| {
            let t = ch.time_ns[i];
            if ramp.last_ns().is_some_and(|l| t - l > gap) {
                ramp.clear();
            }
            let (Some((offset, sigma)), true) = (base[i], residual[i].is_finite()) else {
                return (Level::Unknown, 0.0);
            };
            let Some(fit) = ramp.push(t, (residual[i] - offset) / sigma) else {
                return (Level::Unknown, 0.0);
            };
            fits[i] = Some((fit, sigma));
            if fit.score > c.drift_limit {
                (Level::Warning, fit.score)
            } else {
                (Level::Normal, fit.score)
            }
        })
        .collect();
    let holds = Holds::new(ns(c.drift_hold), gap);
    let first = out.len();
    for (e, peak) in judge(&ch.time_ns, holds, |i, _| judged[i]) {
        let raised = ch.time_ns.partition_point(|&x| x < e.detected_ns);
        // The ramp as it stood when raised: later, with the drift older than
        // `drift_window`, the best ramp starts already offset and its slope overstates.
        let Some((at_raise, sigma)) = fits[raised] else {
            continue;
        };
        let (d, what) = (&ch.device, describe(ch));
        let span_s = (e.detected_ns - at_raise.onset_ns) as f64 / 1e9;
        // (The ramp that first crosses the limit is the one the noise helped: its slope
        // overstates, its end point much less.)
        let moved = at_raise.slope * sigma * span_s;
        let minutes = span_s / 60.0;
        let mut anomaly = channel_anomaly(
            ctx,
            AnomalyKind::SensorDrift,
            ch,
            &e,
            peak,
            format!(
                "{what} of {d} has drifted {moved:+.2} from its neighbours in about {minutes:.0} min: recalibrate or replace the sensor."
            ),
            format!(
                "{d} 的 {what} 在约 {minutes:.0} 分钟内相对相邻传感器漂移了 {moved:+.2}：请校准或更换该传感器。"
            ),
        );
        // The condition began at the ramp's estimated onset, not when the test crossed
        // its limit.
        anomaly.start_ns = at_raise.onset_ns.min(anomaly.start_ns);
        if let Some(earlier) = out[first..].last_mut() {
            if absorb(earlier, &anomaly) {
                continue;
            }
        }
        out.push(anomaly);
    }
}

/// Folds `next` into `earlier` (the same sensor's drift) when its span, with the start
/// moved back to the ramp's onset, overlaps `earlier`'s: the test dipping under its
/// limit and crossing it again within one drift is one anomaly, not one per crossing.
/// `earlier` keeps its detection time and message; it ends when the later one does and
/// scores the higher of the two. Returns whether it did.
fn absorb(earlier: &mut Anomaly, next: &Anomaly) -> bool {
    if earlier.end_ns.is_some_and(|end| next.start_ns > end) {
        return false;
    }
    earlier.end_ns = match (earlier.end_ns, next.end_ns) {
        (Some(a), Some(b)) => Some(a.max(b)),
        _ => None,
    };
    earlier.score = earlier.score.max(next.score);
    true
}

/// Median and noise of a window of residuals (sorted): (median, standard deviation
/// about it, values beyond 6 robust sigmas left out, at least the register step /
/// sqrt 12).
fn noise_scale(sorted: &[f64]) -> Option<(f64, f64)> {
    let (med, robust) = robust_scale(sorted)?;
    let step = resolution(sorted);
    let (sum, n) = sorted
        .iter()
        .map(|v| v - med)
        .filter(|d| d.abs() <= 6.0 * robust)
        .fold((0.0, 0usize), |(s, n), d| (s + d * d, n + 1));
    let mut sigma = (sum / n.max(1) as f64).sqrt();
    if step.is_finite() {
        sigma = sigma.max(step / 12f64.sqrt());
    }
    (sigma > 0.0 && sigma.is_finite()).then_some((med, sigma))
}

/// The best ramp ending at a sample.
#[derive(Debug, Clone, Copy)]
struct Fit {
    /// The likelihood ratio, in standard deviations.
    score: f64,
    /// Where the ramp starts, Unix ns.
    onset_ns: i64,
    /// Its slope, in noise sigmas per second.
    slope: f64,
}

/// Prefix sums of a gap-free run of normalised residuals, so that each onset's ratio
/// costs O(1). Times are seconds from the run's first sample.
struct Ramp {
    min_span_s: f64,
    window_s: f64,
    time_ns: Vec<i64>,
    x: Vec<f64>,
    /// Prefix sums (index k: over samples before k) of e, x e, x and x^2.
    sum_e: Vec<f64>,
    sum_xe: Vec<f64>,
    sum_x: Vec<f64>,
    sum_xx: Vec<f64>,
}

impl Ramp {
    fn new(min_span_s: f64, window_s: f64) -> Ramp {
        let mut r = Ramp {
            min_span_s,
            window_s,
            time_ns: Vec::new(),
            x: Vec::new(),
            sum_e: Vec::new(),
            sum_xe: Vec::new(),
            sum_x: Vec::new(),
            sum_xx: Vec::new(),
        };
        r.clear();
        r
    }

    fn clear(&mut self) {
        self.time_ns.clear();
        self.x.clear();
        for s in [
            &mut self.sum_e,
            &mut self.sum_xe,
            &mut self.sum_x,
            &mut self.sum_xx,
        ] {
            s.clear();
            s.push(0.0);
        }
    }

    fn last_ns(&self) -> Option<i64> {
        self.time_ns.last().copied()
    }

    /// Adds a sample and returns the best ramp ending at it, if the run is long enough
    /// to have one.
    fn push(&mut self, t_ns: i64, e: f64) -> Option<Fit> {
        let origin = *self.time_ns.first().unwrap_or(&t_ns);
        let x = (t_ns - origin) as f64 / 1e9;
        let k = self.x.len();
        self.time_ns.push(t_ns);
        self.x.push(x);
        self.sum_e.push(self.sum_e[k] + e);
        self.sum_xe.push(self.sum_xe[k] + x * e);
        self.sum_x.push(self.sum_x[k] + x);
        self.sum_xx.push(self.sum_xx[k] + x * x);
        // Onsets a with min_span <= x - x_a <= window: a contiguous range of samples.
        let first = self.x.partition_point(|&xa| x - xa > self.window_s);
        let last = self.x.partition_point(|&xa| x - xa >= self.min_span_s);
        let end = k + 1;
        // The best onset by num^2 / den^2, compared by cross-multiplying: no square
        // root or division per onset (this loop is the test's whole cost).
        let (end_e, end_xe, end_x, end_xx) = (
            self.sum_e[end],
            self.sum_xe[end],
            self.sum_x[end],
            self.sum_xx[end],
        );
        let mut best: Option<(usize, f64, f64)> = None;
        let onsets = first..last.max(first);
        let after = first + 1..last.max(first) + 1;
        let mut n = (end - first - 1) as f64;
        for (k, ((&xa, &p_e), ((&p_xe, &p_x), &p_xx))) in self.x[onsets]
            .iter()
            .zip(&self.sum_e[after.clone()])
            .zip(
                self.sum_xe[after.clone()]
                    .iter()
                    .zip(&self.sum_x[after.clone()])
                    .zip(&self.sum_xx[after]),
            )
            .enumerate()
        {
            let num = (end_xe - p_xe) - xa * (end_e - p_e);
            let den2 = (end_xx - p_xx) - 2.0 * xa * (end_x - p_x) + n * xa * xa;
            n -= 1.0;
            if den2 > 0.0
                && best.is_none_or(|(_, b_num, b_den2)| num * num * b_den2 > b_num * b_num * den2)
            {
                best = Some((first + k, num, den2));
            }
        }
        best.map(|(a, num, den2)| Fit {
            score: num.abs() / den2.sqrt(),
            onset_ns: self.time_ns[a],
            slope: num / den2,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic standard-normal-ish noise (sum of four uniforms).
    fn noise(i: u64) -> f64 {
        let mut h = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x5DEE_CE66;
        let mut sum = 0.0;
        for _ in 0..4 {
            h ^= h >> 31;
            h = h.wrapping_mul(0xBF58_476D_1CE4_E5B9);
            h ^= h >> 27;
            sum += (h >> 11) as f64 / (1u64 << 53) as f64;
        }
        (sum - 2.0) / (4.0f64 / 12.0).sqrt()
    }

    fn run(values: impl Iterator<Item = f64>) -> Vec<Option<Fit>> {
        let mut r = Ramp::new(60.0, 1800.0);
        values
            .enumerate()
            .map(|(i, e)| r.push(i as i64 * 10_000_000_000, e))
            .collect()
    }

    #[test]
    fn overlapping_drift_episodes_of_a_sensor_are_one_anomaly() {
        let episode = |start_ns, detected_ns, end_ns, score| Anomaly {
            kind: AnomalyKind::SensorDrift,
            device: "dc2-mm03-cdu".into(),
            field: Some("secondary_supply_temp_2".into()),
            tags: Default::default(),
            start_ns,
            detected_ns,
            end_ns,
            severity: super::super::Severity::Warning,
            score,
            value: None,
            message_en: format!("raised at {detected_ns}"),
            message_zh: String::new(),
        };
        // Raised at 100, ended at 130; raised again at 140 with its onset at 110.
        let mut first = episode(70, 100, Some(130), 4.0);
        assert!(absorb(&mut first, &episode(110, 140, Some(170), 6.0)));
        assert_eq!(
            (first.start_ns, first.detected_ns, first.end_ns, first.score),
            (70, 100, Some(170), 6.0)
        );
        assert_eq!(first.message_en, "raised at 100");
        // One that is still going keeps the merged anomaly open.
        assert!(absorb(&mut first, &episode(160, 200, None, 5.0)));
        assert_eq!((first.end_ns, first.score), (None, 6.0));
        // A drift that begins after the earlier one ended is another anomaly.
        let mut closed = episode(70, 100, Some(130), 4.0);
        assert!(!absorb(&mut closed, &episode(131, 160, Some(190), 5.0)));
        assert_eq!(closed.end_ns, Some(130));
    }

    #[test]
    fn an_exact_ramp_is_found_with_its_onset_and_slope() {
        // Flat for 20 samples, then +0.5 sigma per sample (0.05 per second) from
        // sample 20 on: at sample 29 the ramp is 0.5 x (1..=9).
        let fits = run((0..30).map(|i| if i > 20 { 0.5 * (i - 20) as f64 } else { 0.0 }));
        let f = fits[29].unwrap();
        assert_eq!(f.onset_ns, 200_000_000_000);
        assert!((f.slope - 0.05).abs() < 1e-9, "{f:?}");
        // G = b sqrt(sum w^2) = 0.05 x 10 x sqrt(1^2 + ... + 9^2) = 0.5 x sqrt(285).
        assert!((f.score - 0.5 * 285f64.sqrt()).abs() < 1e-9, "{f:?}");
        // Shorter than the minimum span (60 s = 6 samples from the first): no fit yet.
        assert!(fits[5].is_none());
        assert!(fits[6].is_some());
    }

    #[test]
    fn white_noise_stays_below_the_limit_and_a_small_ramp_rises_above_it() {
        // A day of white noise: the largest G over 8640 samples and 175 onsets each
        // stays below the default limit of 5.
        let quiet = run((0..8640).map(noise));
        let max = quiet.iter().flatten().map(|f| f.score).fold(0.0, f64::max);
        assert!(max < 5.0, "{max}");
        assert!(max > 2.0, "the test is not blind: {max}");
        // A ramp of 0.1 sigma per sample (a tenth of the noise every 10 s) from sample
        // 4000: sqrt(sum w^2) reaches 50 (G about 5) after about 24 samples; by the
        // formula G = 0.1 x sqrt(n^3 / 3), n = 30 gives G near 9.5 whatever the noise.
        let drifting = run((0..4100).map(|i| {
            noise(i)
                + if i > 4000 {
                    0.1 * (i - 4000) as f64
                } else {
                    0.0
                }
        }));
        let first = drifting
            .iter()
            .position(|f| f.is_some_and(|f| f.score > 5.0))
            .unwrap();
        assert!((4015..=4035).contains(&first), "{first}");
        let onset = drifting[first].unwrap().onset_ns / 10_000_000_000;
        assert!((3990..=4010).contains(&onset), "{onset}");
    }

    #[test]
    fn noise_scale_sees_the_noise_of_a_quantised_residual() {
        // Residuals on a 0.1 step, mostly 0 with one in four at +/-0.1: the standard
        // deviation is 0.1 x sqrt(1/4) = 0.05, below the robust scale's floor of one
        // step.
        let mut v: Vec<f64> = (0..400)
            .map(|i| match i % 8 {
                0 => 0.1,
                4 => -0.1,
                _ => 0.0,
            })
            .collect();
        v.sort_unstable_by(f64::total_cmp);
        let (m, s) = noise_scale(&v).unwrap();
        assert_eq!(m, 0.0);
        assert!((s - 0.05).abs() < 1e-9, "{s}");
        // All equal but one: never below the step's quantisation noise.
        let mut flat = vec![0.0; 399];
        flat.push(0.1);
        let (_, s) = noise_scale(&flat).unwrap();
        assert!((s - 0.1 / 12f64.sqrt()).abs() < 1e-9, "{s}");
    }
}
