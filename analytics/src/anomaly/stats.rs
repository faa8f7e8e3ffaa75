//! Statistics per sensor: the robust rolling z-score, and the EWMA and drift test of a
//! sensor's residual against its neighbours.
//!
//! - **Robust z-score** (`robust_z_score`): z = (x - median) / (1.4826 x MAD) against
//!   the median and MAD of the trailing `zscore_window` (1 h), recomputed every
//!   `zscore_refresh` (5 min); |z| above `zscore_threshold` (6) for `zscore_hold`
//!   (30 s) is an anomaly; score |z|. Applied to the quantities that stay near a level
//!   whatever the IT load does: rack inlet air, the secondary supply sensors, the
//!   primary supply, the room dew point (not flows or return temperatures, which follow
//!   the load in steps and would alarm at every training job).
//! - **EWMA residual** (`ewma_residual`): each sensor's deviation from its own median
//!   over the trailing `ewma_window` (2 h), minus the median of its neighbours'
//!   deviations at the same time (the module's rack inlets; the CDU's redundant supply
//!   sensors; the group's median, the sensor included, so one bad sensor of three
//!   cannot drag the others; groups of three or more), minus that residual's own
//!   median over the window,
//!   smoothed by an EWMA with factor `ewma_lambda` (0.1);
//!   beyond `ewma_limit` (6) of the EWMA's own standard deviation,
//!   sigma x sqrt(lambda / (2 - lambda)), for `ewma_hold` (30 s) is an anomaly; score in
//!   those standard deviations. The common movements of the module cancel in the
//!   residual, so a slow drift of one sensor stands out early.
//! - **Drift test** (`sensor_drift`, in [`super::drift`]): the same residual tested for
//!   a ramp with an unknown onset, which tells a slow drift from noise sooner than the
//!   EWMA can.
//!
//! A baseline window in which the value changed at fewer than one sample in ten (a
//! stuck sensor) gives no baseline. The spread (sigma) is 1.4826 x MAD, but never below 1.2533 x the mean absolute
//! deviation (a quantised sensor whose values mostly repeat has a MAD of 0) nor below
//! the sensor's resolution (the smallest step between its values in the window).

use super::config::ns;
use super::drift;
use super::episodes::{Episode, Holds, Level};
use super::rules::judge;
use super::{median, Anomaly, AnomalyKind, Channel, ZoneContext};

/// Fewest samples a baseline needs.
pub(crate) const MIN_BASELINE: usize = 30;

/// Median and robust spread of `sorted` (finite values in increasing order); `None`
/// with too few values or no spread at all.
pub(crate) fn robust_scale(sorted: &[f64]) -> Option<(f64, f64)> {
    if sorted.len() < MIN_BASELINE {
        return None;
    }
    let med = sorted_median(sorted)?;
    let resolution = resolution(sorted);
    let mean_abs = sorted.iter().map(|v| (v - med).abs()).sum::<f64>() / sorted.len() as f64;
    let mad = median_abs_deviation(sorted, med)?;
    let mut sigma = (1.4826 * mad).max(1.2533 * mean_abs);
    if resolution.is_finite() {
        sigma = sigma.max(resolution);
    }
    (sigma > 0.0 && sigma.is_finite()).then_some((med, sigma))
}

/// The median of sorted values (the mean of the two middle ones for an even count).
fn sorted_median(sorted: &[f64]) -> Option<f64> {
    let n = sorted.len();
    let upper = *sorted.get(n / 2)?;
    Some(if n % 2 == 1 {
        upper
    } else {
        (sorted[n / 2 - 1] + upper) / 2.0
    })
}

/// The median of |v - med| over sorted values, without sorting the deviations: those
/// below `med` grow leftwards and those from it on grow rightwards, so the k-th
/// smallest deviation is found by merging the two runs outwards from `med`.
fn median_abs_deviation(sorted: &[f64], med: f64) -> Option<f64> {
    let n = sorted.len();
    if n == 0 {
        return None;
    }
    let split = sorted.partition_point(|&v| v < med);
    let (mut left, mut right) = (split, split); // next: sorted[left - 1], sorted[right]
    let mut next = || {
        let l = (left > 0).then(|| (sorted[left - 1] - med).abs());
        let r = (right < n).then(|| (sorted[right] - med).abs());
        match (l, r) {
            (Some(l), Some(r)) if l.total_cmp(&r).is_lt() => {
                left -= 1;
                l
            }
            (_, Some(r)) => {
                right += 1;
                r
            }
            (Some(l), None) => {
                left -= 1;
                l
            }
            (None, None) => f64::NAN, // cannot happen: at most n deviations are taken
        }
    };
    let mut lower = f64::NAN;
    for _ in 0..n / 2 {
        lower = next();
    }
    let upper = next();
    Some(if n % 2 == 1 {
        upper
    } else {
        (lower + upper) / 2.0
    })
}

/// The smallest non-zero step between sorted values (a quantised sensor's register
/// step); infinite when all are equal.
pub(crate) fn resolution(sorted: &[f64]) -> f64 {
    sorted
        .windows(2)
        .map(|w| w[1] - w[0])
        .filter(|d| *d > 1e-9)
        .fold(f64::INFINITY, f64::min)
}

/// Baselines of a series, recomputed every `refresh` from the trailing `window`: for
/// each sample, the (median, sigma) of the block it falls in.
pub(crate) fn block_baselines(
    times: &[i64],
    values: &[f64],
    window: i64,
    refresh: i64,
) -> Vec<Option<(f64, f64)>> {
    block_scales(times, values, window, refresh, robust_scale)
}

/// [`block_baselines`] with another measure of (level, spread), given the window's
/// finite values sorted.
///
/// Consecutive windows overlap by all but `refresh`: the sorted window is kept from
/// one block to the next (the samples that left removed, the new ones inserted) rather
/// than sorted again, which was most of the time of a month's anomaly detection.
pub(crate) fn block_scales(
    times: &[i64],
    values: &[f64],
    window: i64,
    refresh: i64,
    scale: impl Fn(&[f64]) -> Option<(f64, f64)>,
) -> Vec<Option<(f64, f64)>> {
    // changed_before[i]: how many j < i have values[j] != values[j + 1].
    let mut changed_before = Vec::with_capacity(values.len() + 1);
    changed_before.push(0usize);
    for w in values.windows(2) {
        changed_before.push(changed_before[changed_before.len() - 1] + usize::from(w[0] != w[1]));
    }
    let mut out = Vec::with_capacity(times.len());
    let mut block_end = i64::MIN;
    let mut current = None;
    // The finite values of values[lo..hi], sorted.
    let mut sorted: Vec<f64> = Vec::new();
    let (mut lo, mut hi) = (0, 0);
    for &t in times {
        if t >= block_end {
            let start = t;
            block_end = start.saturating_add(refresh.max(1));
            let a = times.partition_point(|&x| x < start - window);
            let b = times.partition_point(|&x| x < start);
            if a >= hi || (a - lo) + (b - hi) > sorted.len() {
                // Nothing (or little) in common with the last window: sort afresh.
                sorted.clear();
                sorted.extend(values[a..b].iter().copied().filter(|v| v.is_finite()));
                sorted.sort_unstable_by(f64::total_cmp);
            } else {
                for v in values[lo..a].iter().filter(|v| v.is_finite()) {
                    let k = sorted.partition_point(|x| x.total_cmp(v).is_lt());
                    sorted.remove(k);
                }
                for &v in values[hi..b].iter().filter(|v| v.is_finite()) {
                    let k = sorted.partition_point(|x| x.total_cmp(&v).is_le());
                    sorted.insert(k, v);
                }
            }
            (lo, hi) = (a, b);
            // A window where the value hardly ever changed (a stuck sensor) is no
            // baseline: its spread would make any later movement look enormous.
            let changes = if b > a {
                changed_before[b - 1] - changed_before[a]
            } else {
                0
            };
            current = if changes * 10 >= sorted.len() {
                scale(&sorted)
            } else {
                None
            };
        }
        out.push(current);
    }
    out
}

/// Runs the statistics of one zone.
pub(crate) fn detect(ctx: &ZoneContext, out: &mut Vec<Anomaly>) {
    for ch in zscore_channels(ctx) {
        zscore(ctx, ch, out);
    }
    let c = ctx.config;
    for group in residual_groups(ctx) {
        let devs: Vec<Channel> = group
            .iter()
            .map(|ch| deviations(ch, ns(c.ewma_window), ns(c.zscore_refresh)))
            .collect();
        // The reference is the median of the whole group, the sensor itself included:
        // with three redundant sensors, the median of the other two would be their mean,
        // and one drifting sensor would drag its healthy neighbours' residuals along.
        let all: Vec<&Channel> = devs.iter().collect();
        for (k, ch) in group.iter().enumerate() {
            let residual = residual(ctx, ch, &devs[k], &all);
            ewma(ctx, ch, &residual, out);
            drift::detect(ctx, ch, &residual, out);
        }
    }
}

fn zscore_channels<'a>(ctx: &ZoneContext<'a>) -> Vec<&'a Channel> {
    let t = ctx.telemetry;
    let mut out: Vec<&Channel> = ctx
        .zone
        .inlets
        .iter()
        .filter_map(|s| t.get(s, "temperature_c"))
        .collect();
    if let Some(lp) = &ctx.zone.cooling_loop {
        for f in lp
            .supply_fields
            .iter()
            .map(String::as_str)
            .chain(["primary_supply_temp"])
        {
            out.extend(t.get(&lp.cdu, f));
        }
    }
    if let Some(dew) = &ctx.zone.dew_point {
        out.extend(t.get(dew, "dew_point_c"));
    }
    out
}

/// Groups of sensors that see the same thing: the module's rack inlets; the CDU's
/// redundant supply sensors.
fn residual_groups<'a>(ctx: &ZoneContext<'a>) -> Vec<Vec<&'a Channel>> {
    let t = ctx.telemetry;
    let mut groups: Vec<Vec<&Channel>> = vec![ctx
        .zone
        .inlets
        .iter()
        .filter_map(|s| t.get(s, "temperature_c"))
        .collect()];
    if let Some(lp) = &ctx.zone.cooling_loop {
        groups.push(
            lp.supply_fields
                .iter()
                .filter_map(|f| t.get(&lp.cdu, f))
                .collect(),
        );
    }
    // With two sensors, which one drifts cannot be told from their residual (the
    // redundant-disagreement check names one by the setpoint): three or more.
    groups.retain(|g| g.len() >= 3);
    groups
}

/// Each sensor's deviation from its own rolling median (so that fixed offsets between
/// neighbours do not matter, nor which of them is above the group's median).
fn deviations(ch: &Channel, window: i64, refresh: i64) -> Channel {
    let base = block_baselines(&ch.time_ns, &ch.value, window, refresh);
    Channel::new(
        ch.device.clone(),
        ch.measurement.clone(),
        ch.field.clone(),
        ch.time_ns
            .iter()
            .zip(&ch.value)
            .zip(&base)
            .filter_map(|((&t, &v), b)| b.map(|(m, _)| (t, v - m))),
    )
}

/// An anomaly of one sensor's channel, its value taken at sample `i`.
pub(crate) fn channel_anomaly(
    ctx: &ZoneContext,
    kind: AnomalyKind,
    ch: &Channel,
    episode: &Episode,
    i: usize,
    message_en: String,
    message_zh: String,
) -> Anomaly {
    let d = &ch.device;
    Anomaly::from_episode(
        kind,
        d,
        Some(&ch.field),
        ctx.tags(d),
        episode,
        Some(ch.value[i]),
        message_en,
        message_zh,
    )
}

pub(crate) fn describe(ch: &Channel) -> String {
    if ch.measurement == "cdu" {
        ch.field.clone()
    } else {
        format!("{} ({})", ch.field, ch.measurement)
    }
}

fn zscore(ctx: &ZoneContext, ch: &Channel, out: &mut Vec<Anomaly>) {
    let c = ctx.config;
    let base = block_baselines(
        &ch.time_ns,
        &ch.value,
        ns(c.zscore_window),
        ns(c.zscore_refresh),
    );
    let z = |i: usize| base[i].map(|(m, s)| (ch.value[i] - m) / s);
    let holds = Holds::new(ns(c.zscore_hold), ns(c.max_gap));
    for (e, i) in judge(&ch.time_ns, holds, |i, _| match z(i) {
        None => (Level::Unknown, 0.0),
        Some(z) if z.abs() > c.zscore_threshold => (Level::Warning, z.abs()),
        Some(_) => (Level::Normal, 0.0),
    }) {
        let v = ch.value[i];
        let med = base[i].map_or(f64::NAN, |b| b.0);
        let (d, what) = (&ch.device, describe(ch));
        let hours = c.zscore_window.as_secs_f64() / 3600.0;
        out.push(channel_anomaly(
            ctx,
            AnomalyKind::RobustZScore,
            ch,
            &e,
            i,
            format!(
                "{what} of {d} jumped to {v:.2} while its median over the last {hours:.1} h was {med:.2}: check the sensor and what it measures."
            ),
            format!(
                "{d} 的 {what} 突变为 {v:.2}，过去 {hours:.1} 小时中位数为 {med:.2}：请检查该传感器及其测点。"
            ),
        ));
    }
}

/// A sensor's deviation (`own`, on the times of its channel `ch`) minus the median of
/// its group's deviations at the same time; NaN where it has none.
fn residual(ctx: &ZoneContext, ch: &Channel, own: &Channel, peers: &[&Channel]) -> Vec<f64> {
    let gap = ns(ctx.config.max_gap);
    let mut buf = Vec::with_capacity(peers.len());
    // The times only grow: cursors walk each channel once.
    let mut own = own.cursor();
    let mut peers: Vec<_> = peers.iter().map(|p| p.cursor()).collect();
    ch.time_ns
        .iter()
        .map(|&t| {
            let Some(v) = own.at(t, 0) else {
                return f64::NAN;
            };
            buf.clear();
            buf.extend(peers.iter_mut().filter_map(|p| p.at(t, gap)));
            median(&mut buf).map_or(f64::NAN, |m| v - m)
        })
        .collect()
}

fn ewma(ctx: &ZoneContext, ch: &Channel, residual: &[f64], out: &mut Vec<Anomaly>) {
    let c = ctx.config;
    let gap = ns(c.max_gap);
    let base = block_baselines(
        &ch.time_ns,
        residual,
        ns(c.ewma_window),
        ns(c.zscore_refresh),
    );
    let lambda = c.ewma_lambda;
    let factor = (lambda / (2.0 - lambda)).sqrt();
    let mut state = 0.0;
    let mut last_t: Option<i64> = None;
    let mut smoothed = vec![f64::NAN; residual.len()];
    let judged: Vec<(Level, f64)> = (0..residual.len())
        .map(|i| {
            let t = ch.time_ns[i];
            if last_t.is_some_and(|l| t - l > gap) {
                state = 0.0; // a gap restarts the average
            }
            let (Some((offset, sigma)), true) = (base[i], residual[i].is_finite()) else {
                return (Level::Unknown, 0.0);
            };
            last_t = Some(t);
            state = lambda * (residual[i] - offset) + (1.0 - lambda) * state;
            smoothed[i] = state;
            let score = state.abs() / (sigma * factor);
            if score > c.ewma_limit {
                (Level::Warning, score)
            } else {
                (Level::Normal, score)
            }
        })
        .collect();
    let holds = Holds::new(ns(c.ewma_hold), gap);
    for (e, i) in judge(&ch.time_ns, holds, |i, _| judged[i]) {
        let (d, what) = (&ch.device, describe(ch));
        let off = smoothed[i];
        out.push(channel_anomaly(
            ctx,
            AnomalyKind::EwmaResidual,
            ch,
            &e,
            i,
            format!(
                "{what} of {d} is drifting away from its neighbours ({off:+.2} from its usual offset): recalibrate or replace the sensor."
            ),
            format!(
                "{d} 的 {what} 正在偏离相邻传感器（相对常态偏差 {off:+.2}）：请校准或更换该传感器。"
            ),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::super::*;
    use super::*;

    #[test]
    fn robust_scale_survives_quantised_and_constant_series() {
        // Values mostly 36.0 with a few 35.9 / 36.1: MAD 0, but the resolution is 0.1.
        let mut v: Vec<f64> = (0..60)
            .map(|i| match i % 6 {
                0 => 35.9,
                1 => 36.1,
                _ => 36.0,
            })
            .collect();
        v.sort_unstable_by(f64::total_cmp);
        let (m, s) = robust_scale(&v).unwrap();
        assert!((m - 36.0).abs() < 1e-9);
        assert!((s - 0.1).abs() < 1e-9, "{s}");
        assert_eq!(robust_scale(&[1.0; 60]), None, "no spread");
        assert_eq!(robust_scale(&[1.0, 2.0]), None, "too few");
    }

    /// The baselines as first written: each block's window collected and sorted afresh.
    fn block_scales_by_sorting(
        times: &[i64],
        values: &[f64],
        window: i64,
        refresh: i64,
        scale: impl Fn(&[f64]) -> Option<(f64, f64)>,
    ) -> Vec<Option<(f64, f64)>> {
        let mut out = Vec::new();
        let (mut block_end, mut current) = (i64::MIN, None);
        for &t in times {
            if t >= block_end {
                block_end = t + refresh;
                let a = times.partition_point(|&x| x < t - window);
                let b = times.partition_point(|&x| x < t);
                let mut buf: Vec<f64> = values[a..b]
                    .iter()
                    .copied()
                    .filter(|v| v.is_finite())
                    .collect();
                buf.sort_unstable_by(f64::total_cmp);
                let changes = values[a..b].windows(2).filter(|w| w[0] != w[1]).count();
                current = if changes * 10 >= buf.len() {
                    scale(&buf)
                } else {
                    None
                };
            }
            out.push(current);
        }
        out
    }

    #[test]
    fn kept_sorted_windows_give_the_baselines_of_sorting_each_window() {
        // Noise; a quantised stretch (repeated values, a MAD of 0); a stuck stretch;
        // missing values (NaN); gaps in time longer than the windows.
        let (mut times, mut values) = (Vec::new(), Vec::new());
        let mut t = 0i64;
        for i in 0..6000usize {
            t += if i % 997 == 0 { 3 * 3600 } else { 10 } * 1_000_000_000;
            times.push(t);
            values.push(match i {
                _ if i % 53 == 0 => f64::NAN,
                2000..2400 => 21.5,
                3000..4000 => (240.0 + noise(i, 7)).round() / 10.0,
                _ => 24.0 + 0.1 * noise(i, 3),
            });
        }
        let sec = 1_000_000_000i64;
        for (window, refresh) in [(3600, 300), (7200, 300), (600, 10), (1800, 3600), (900, 1)] {
            let (window, refresh) = (window * sec, refresh * sec);
            let kept = block_baselines(&times, &values, window, refresh);
            let sorted = block_scales_by_sorting(&times, &values, window, refresh, robust_scale);
            assert_eq!(kept, sorted, "window {window} ns, refresh {refresh} ns");
            assert!(
                kept.iter().filter(|b| b.is_some()).count() > 1000,
                "baselines computed"
            );
            assert!(
                kept.iter().filter(|b| b.is_none()).count() > 100,
                "and some refused"
            );
        }
    }

    #[test]
    fn median_abs_deviation_equals_the_median_of_the_sorted_deviations() {
        for n in 1..80usize {
            // Duplicates (values on a 0.5 step) and both signs about the median.
            let mut v: Vec<f64> = (0..n)
                .map(|i| (noise(i, n as u64) * 8.0).round() / 2.0)
                .collect();
            v.sort_unstable_by(f64::total_cmp);
            let med = sorted_median(&v).unwrap();
            assert_eq!(Some(med), median(&mut v.clone()), "median, n = {n}");
            let mut dev: Vec<f64> = v.iter().map(|x| (x - med).abs()).collect();
            assert_eq!(
                median_abs_deviation(&v, med),
                median(&mut dev),
                "MAD, n = {n}"
            );
        }
        assert_eq!(median_abs_deviation(&[], 0.0), None);
    }

    /// Twelve rack inlets at 24 C with noise +/- 0.1; `bad` gets `extra(i)` added.
    fn inlets(n: usize, bad: usize, extra: impl Fn(usize) -> f64) -> (Telemetry, ZonePlan) {
        let mut t = Telemetry::new();
        let names: Vec<String> = (1..=12).map(|r| format!("r{r:02}-inlet")).collect();
        for (k, name) in names.iter().enumerate() {
            let values: Vec<f64> = (0..n)
                .map(|i| {
                    // A common movement every sensor sees: +0.3 C at 3 h (a job starts).
                    let common = if i >= 1080 { 0.3 } else { 0.0 };
                    let own = if k == bad { extra(i) } else { 0.0 };
                    24.0 + 0.1 * k as f64 + common + 0.1 * noise(i, k as u64) + own
                })
                .collect();
            t.insert(channel(name, "rack_inlet", "temperature_c", &values));
        }
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let mut zone = zone(&[], &refs);
        zone.cooling_loop = None;
        (t, zone)
    }

    fn run_stats(t: &Telemetry, z: &ZonePlan) -> Vec<Anomaly> {
        run(t, z, &AnomalyConfig::default(), super::detect)
    }

    #[test]
    fn a_quiet_module_gives_nothing() {
        // Four hours at 10 s, with the common +0.3 C step at 3 h: no anomaly.
        let (t, z) = inlets(1440, 99, |_| 0.0);
        let found = run_stats(&t, &z);
        assert!(found.is_empty(), "{found:#?}");
    }

    #[test]
    fn a_jump_is_a_z_score_and_a_residual() {
        // Rack 5's inlet jumps by 2 C at 2 h (sample 720) for 5 minutes (to 2 h 05).
        // Its z is about 2 / 0.1 = 20 from the first sample: held 30 s, raised at 2 h 00 m 30 s;
        // back at 2 h 05 m, where it ends.
        let (t, z) = inlets(1440, 4, |i| if (720..750).contains(&i) { 2.0 } else { 0.0 });
        let found = run_stats(&t, &z);
        let zs: Vec<&Anomaly> = found
            .iter()
            .filter(|a| a.kind == AnomalyKind::RobustZScore)
            .collect();
        assert_eq!(zs.len(), 1, "{found:#?}");
        assert_eq!(zs[0].device, "r05-inlet");
        assert_eq!((s(zs[0].start_ns), s(zs[0].detected_ns)), (7200, 7230));
        assert_eq!(zs[0].end_ns.map(s), Some(7500));
        assert!(zs[0].score > 10.0);
        let ew: Vec<&Anomaly> = found
            .iter()
            .filter(|a| a.kind == AnomalyKind::EwmaResidual)
            .collect();
        assert_eq!(ew.len(), 1, "{found:#?}");
        assert_eq!(ew[0].device, "r05-inlet");
        assert!(
            s(ew[0].detected_ns) >= 7200 && s(ew[0].detected_ns) <= 7300,
            "{:?}",
            ew[0]
        );
    }

    #[test]
    fn a_slow_drift_is_seen_by_the_residual_first() {
        // Rack 3's inlet drifts by 2 C/h from 2 h on (sample 720). The residual's
        // sigma is about 0.07 C (noise of +/- 0.1, uniform, minus the peers' median), so
        // the EWMA limit (6 x sigma x sqrt(0.1/1.9)) is near 0.1 C: reached (with the
        // EWMA's lag of about 9 samples) within 6 minutes of the start. The z-score never
        // sees it: its rolling median follows the drift (about 35 min behind, 1.2 C) and
        // the drift widens the window's spread as fast (z stays near 2): slow drifts are
        // the residual's job.
        let (t, z) = inlets(1440, 2, |i| {
            if i >= 720 {
                2.0 * (i - 720) as f64 / 360.0
            } else {
                0.0
            }
        });
        let found = run_stats(&t, &z);
        let first = |k: AnomalyKind| {
            found
                .iter()
                .filter(|a| a.kind == k && a.device == "r03-inlet")
                .map(|a| s(a.detected_ns))
                .min()
        };
        let ewma = first(AnomalyKind::EwmaResidual).unwrap_or_else(|| panic!("{found:#?}"));
        assert!((7200..7200 + 360).contains(&ewma), "{ewma}");
        // The drift test: the residual's noise is about 0.06 C (uniform +/- 0.1), so the
        // ramp is 0.093 sigma a sample and G = 0.093 x sqrt(n^3 / 3) reaches 7.5 after
        // about 27 samples (4.5 min; raised here after 240 s). Its start is the
        // estimated onset, near 2 h; its message says how far the sensor has moved.
        let drift: Vec<&Anomaly> = found
            .iter()
            .filter(|a| a.kind == AnomalyKind::SensorDrift)
            .collect();
        assert_eq!(drift.len(), 1, "{found:#?}");
        let d = drift[0];
        assert_eq!(d.device, "r03-inlet");
        assert!(
            (7200 + 180..7200 + 400).contains(&s(d.detected_ns)),
            "{d:?}"
        );
        assert!((7200 - 90..7200 + 90).contains(&s(d.start_ns)), "{d:?}");
        // It has moved 2 C/h x 240 s = 0.13 C when raised, 240 s after the start.
        let moved = d.message_en.split(" drifted ").nth(1).unwrap();
        let moved: f64 = moved.split_whitespace().next().unwrap().parse().unwrap();
        assert!((0.08..0.25).contains(&moved), "{}", d.message_en);
        assert_eq!(first(AnomalyKind::RobustZScore), None);
        assert!(found.iter().all(|a| a.device == "r03-inlet"), "{found:#?}");
    }
}
