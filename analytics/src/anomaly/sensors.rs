//! Sensor faults: stuck sensors and redundant sensors that disagree.
//!
//! - **Stuck sensor** (`stuck_sensor`): a value that has not changed for at least
//!   `stuck_min_duration` (1 min) *and* for so many samples that, at the rate the sensor
//!   repeats such a reading, such a run would have a probability of at most
//!   `stuck_probability` (1e-7), while at least one neighbour changed during the run
//!   (the module's other rack inlets; the CDU's other analog points). The rate is the
//!   highest of: the sensor's rate of repeating *this* value over the trailing
//!   `stuck_window` (1 h) (its overall repeat rate when the value is rare there), and
//!   the chance of staying on one reading with the signal still in the middle of a
//!   step, read from the quietest 20-minute block of that window ([`still_stay_rate`]):
//!   the sensor's own, or the median of its siblings' (the other sensors of its
//!   instrument family in the zone: the CDU's temperatures, flows or pressures; the
//!   rack inlets), whichever is quieter, since a sensor that follows the load can be
//!   busy all hour while its transmitter's noise is the same as theirs. The last is what keeps a quantised sensor honest: averaged
//!   over an hour in which the signal wandered through its steps, or was busier than
//!   it is now, a 0.1 C sensor with 0.05 C noise repeats about one pair in two, but with
//!   the signal sitting mid-step it stays two times in three, and runs of 20-30 equal
//!   readings then happen every day (the false alarms of the CDUs' primary-side
//!   temperatures in July). So such a sensor needs about 45 samples (7-8 min at 10 s); a
//!   float sensor that never repeats is judged after the minimum duration.
//!   The run must also be `stuck_run_factor` (2) times the longest run of any value in
//!   that window: a sensor that sometimes pauses sits on one value for longer than its
//!   repeat rate alone suggests. A sensor that always repeats (a setpoint) is never judged. The anomaly
//!   starts at the first sample of the run and ends at the first changed value. Score:
//!   log(probability of the run) / log(limit), above 1 past the limit.
//! - **Redundant disagreement** (`redundant_disagreement`): the spread (max - min) of
//!   the CDU's redundant supply sensors above `redundant_spread_k` (1 K) for
//!   `redundant_hold` (30 s). The field named is the sensor farthest from the others'
//!   median (with two sensors: the one farther from the setpoint): the one to drop.
//!   Score: spread / limit.

use super::config::ns;
use super::episodes::{Episode, Holds, Level};
use super::rules::judge;
use super::{median, Anomaly, AnomalyKind, Channel, Severity, ZoneContext};

/// The CDU's analog points judged for being stuck (and each other's neighbours), with
/// their instrument family: points of one family share a transmitter type and a
/// register resolution, so their noise.
pub const CDU_ANALOG: &[(&str, Instrument)] = &[
    ("secondary_supply_temp_1", Instrument::Temperature),
    ("secondary_supply_temp_2", Instrument::Temperature),
    ("secondary_supply_temp_3", Instrument::Temperature),
    ("secondary_return_temp", Instrument::Temperature),
    ("primary_supply_temp", Instrument::Temperature),
    ("primary_return_temp", Instrument::Temperature),
    ("secondary_flow_lpm", Instrument::Flow),
    ("primary_flow_lpm", Instrument::Flow),
    ("loop_pressure_bar", Instrument::Pressure),
    ("differential_pressure_bar", Instrument::Pressure),
    ("filter_dp_bar", Instrument::Pressure),
];

/// An instrument family of the CDU's analog points.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Instrument {
    Temperature,
    Flow,
    Pressure,
}

/// Runs the sensor checks of one zone.
pub(crate) fn detect(ctx: &ZoneContext, out: &mut Vec<Anomaly>) {
    let t = ctx.telemetry;
    let inlets: Vec<&Channel> = ctx
        .zone
        .inlets
        .iter()
        .filter_map(|s| t.get(s, "temperature_c"))
        .collect();
    // The rack inlets are one instrument family: each other's neighbours and siblings.
    let inlet_counts: Vec<Repeats> = inlets.iter().map(|c| Repeats::new(c)).collect();
    for k in 0..inlets.len() {
        let others = |j: &usize| *j != k;
        let peers: Vec<&Channel> = (0..inlets.len())
            .filter(others)
            .map(|j| inlets[j])
            .collect();
        let siblings: Vec<&Repeats> = (0..inlets.len())
            .filter(others)
            .map(|j| &inlet_counts[j])
            .collect();
        stuck(ctx, &inlet_counts[k], &peers, &siblings, out);
    }
    if let Some(lp) = &ctx.zone.cooling_loop {
        let analog: Vec<(&Channel, Instrument)> = CDU_ANALOG
            .iter()
            .filter_map(|(f, family)| t.get(&lp.cdu, f).map(|c| (c, *family)))
            .collect();
        let counts: Vec<Repeats> = analog.iter().map(|(c, _)| Repeats::new(c)).collect();
        for (k, (_, family)) in analog.iter().enumerate() {
            let peers: Vec<&Channel> = analog
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != k)
                .map(|(_, (c, _))| *c)
                .collect();
            let siblings: Vec<&Repeats> = analog
                .iter()
                .enumerate()
                .filter(|(j, (_, f))| *j != k && f == family)
                .map(|(j, _)| &counts[j])
                .collect();
            stuck(ctx, &counts[k], &peers, &siblings, out);
        }
        redundant(ctx, out);
    }
    if let Some(dew) = &ctx.zone.dew_point {
        if let Some(ch) = t.get(dew, "dew_point_c") {
            stuck(ctx, &Repeats::new(ch), &inlets, &[], out);
        }
    }
}

/// A channel with the running count of its repeated readings, for the stuck test.
struct Repeats<'a> {
    ch: &'a Channel,
    /// `repeats[i]`: how many of the pairs (j-1, j), j <= i, repeat their value.
    repeats: Vec<usize>,
}

impl<'a> Repeats<'a> {
    fn new(ch: &'a Channel) -> Repeats<'a> {
        let mut repeats = vec![0usize; ch.len()];
        for i in 1..ch.len() {
            repeats[i] = repeats[i - 1] + usize::from(ch.value[i] == ch.value[i - 1]);
        }
        Repeats { ch, repeats }
    }

    /// Laplace-smoothed repeat rate of the pairs (j-1, j), `lo < j <= hi`.
    fn rate(&self, lo: usize, hi: usize) -> f64 {
        ((self.repeats[hi] - self.repeats[lo]) as f64 + 1.0) / ((hi - lo) as f64 + 2.0)
    }

    /// The highest repeat rate of the blocks of [`STUCK_BLOCK_PAIRS`] pairs that tile
    /// the samples from `from_ns` to `to_ns` back from the last: the sensor at its
    /// quietest, so mostly its noise. The whole span's rate when it holds no full
    /// block; `None` when it holds fewer than [`MIN_BASELINE`](super::stats::MIN_BASELINE)
    /// pairs.
    fn quietest_block_rate(&self, from_ns: i64, to_ns: i64) -> Option<f64> {
        let times = &self.ch.time_ns;
        let a = times.partition_point(|&x| x < from_ns);
        let last = times.partition_point(|&x| x <= to_ns).checked_sub(1)?;
        if last < a + super::stats::MIN_BASELINE {
            return None;
        }
        let mut best: Option<f64> = None;
        let mut hi = last;
        while hi >= a + STUCK_BLOCK_PAIRS {
            let lo = hi - STUCK_BLOCK_PAIRS;
            let r = self.rate(lo, hi);
            best = Some(best.map_or(r, |b| b.max(r)));
            hi = lo;
        }
        Some(best.unwrap_or_else(|| self.rate(a, last)))
    }
}

/// Whether any of `peers` took two different values within `[from, to]`.
fn peers_moved(peers: &[&Channel], from: i64, to: i64) -> bool {
    peers.iter().any(|p| {
        let r = p.index_range(from..to.saturating_add(1));
        let v = &p.value[r];
        v.windows(2).any(|w| w[0] != w[1])
    })
}

/// The stuck test of one sensor; `siblings` are the other sensors of its instrument
/// family in the zone.
fn stuck(
    ctx: &ZoneContext,
    own: &Repeats,
    peers: &[&Channel],
    siblings: &[&Repeats],
    out: &mut Vec<Anomaly>,
) {
    let ch = own.ch;
    let repeats = &own.repeats;
    let c = ctx.config;
    let gap = ns(c.max_gap);
    let window = ns(c.stuck_window);
    let min_duration = ns(c.stuck_min_duration);
    let log_limit = c.stuck_probability.ln();
    let n = ch.len();
    if n < 2 {
        return;
    }
    let mut i = 1;
    while i < n {
        // Find the run of equal values starting at `start`.
        let start = i - 1;
        let mut end = i; // exclusive
        while end < n
            && ch.value[end] == ch.value[start]
            && ch.time_ns[end] - ch.time_ns[end - 1] <= gap
        {
            end += 1;
        }
        if end - start < 2 {
            i += 1;
            continue;
        }
        // The sensor's own rate of repeating this value before the run (how often a
        // sample at this value was followed by the same value), Laplace-smoothed; the
        // overall repeat rate when the value is rare in the window.
        let t0 = ch.time_ns[start];
        let a = ch.time_ns.partition_point(|&x| x < t0 - window);
        let pairs = start.saturating_sub(a);
        let found = if pairs >= super::stats::MIN_BASELINE && end - start > 2 {
            let value = ch.value[start];
            let (mut at_value, mut kept) = (0usize, 0usize);
            for j in a.max(1)..=start {
                if ch.value[j - 1] == value {
                    at_value += 1;
                    kept += usize::from(ch.value[j] == value);
                }
            }
            // Both Laplace-smoothed: a sensor that never repeated in the window has a small
            // repeat rate, not none (with none, any two equal samples would be "stuck").
            let p = if at_value >= 20 {
                (kept as f64 + 1.0) / (at_value as f64 + 2.0)
            } else {
                let reps = repeats[start] - repeats[a];
                (reps as f64 + 1.0) / (pairs as f64 + 2.0)
            };
            // Never below the chance of staying on one step with the signal still at its
            // middle: averaged over the hour, the rates above undercount it whenever the
            // signal wandered through its steps or was busier than it is now. The noise
            // that sets it is the instrument's: the sensor's own quietest block, or its
            // siblings' (median of theirs) when the process kept the sensor busy all hour.
            let mut sibling_rates: Vec<f64> = siblings
                .iter()
                .filter_map(|s| s.quietest_block_rate(t0 - window, t0))
                .collect();
            let quietest = own
                .quietest_block_rate(t0 - window, t0)
                .unwrap_or(0.0)
                .max(median(&mut sibling_rates).unwrap_or(0.0));
            let p = p.max(still_stay_rate(quietest));
            // The longest run of any value in the window: a stuck run must also be
            // `stuck_run_factor` times longer (a slowly moving quantised sensor sits on one
            // step longer than its recent repeat rate alone suggests).
            let (mut longest, mut run) = (1usize, 1usize);
            for j in a.max(1)..start {
                run = if ch.value[j] == ch.value[j - 1] {
                    run + 1
                } else {
                    1
                };
                longest = longest.max(run);
            }
            let min_samples = (ctx.config.stuck_run_factor * longest as f64).ceil() as usize;
            judge_run(
                ch,
                peers,
                start,
                end,
                p,
                min_duration,
                min_samples,
                log_limit,
            )
        } else {
            None
        };
        if let Some((detected, score)) = found {
            let d = &ch.device;
            let v = ch.value[start];
            let end_ns = (end < n).then(|| ch.time_ns[end]);
            let secs = (ch.time_ns[end - 1] - t0) as f64 / 1e9;
            let episode = Episode {
                start_ns: t0,
                detected_ns: ch.time_ns[detected],
                end_ns,
                severity: Severity::Warning,
                score,
                peak_ns: ch.time_ns[end - 1],
            };
            let what = &ch.field;
            out.push(Anomaly::from_episode(
                AnomalyKind::StuckSensor,
                d,
                Some(what),
                ctx.tags(d),
                &episode,
                Some(v),
                format!(
                    "{what} of {d} has stayed at {v} for {secs:.0} s while its neighbours moved: the sensor or its transmitter is stuck; check it and do not trust its readings meanwhile."
                ),
                format!(
                    "{d} 的 {what} 已 {secs:.0} 秒停留在 {v} 不变，而相邻测点在变化：传感器或变送器可能卡死，请检查，在此之前勿信其读数。"
                ),
            ));
        }
        i = end.max(i + 1);
    }
}

/// Pairs in a block of the stuck test's window (20 min at 10 s sampling): long enough
/// that the highest of the window's blocks is not much inflated by chance.
const STUCK_BLOCK_PAIRS: usize = 120;

/// The chance that a quantised sensor repeats its reading when the signal sits still in
/// the middle of a step, given the repeat rate `r` it shows on a still signal at a
/// random place in its steps.
///
/// Model: reading = round((signal + noise) / q), noise Gaussian with sigma; with
/// s = sigma / q, the repeat rate of a still signal at offset u from a step's middle is
/// sum over steps k of P_k(u)^2, P_k(u) = Phi((k + 1/2 - u) / s) - Phi((k - 1/2 - u) / s),
/// and r(s) is its mean over u. In the middle (u = 0) a reading stays with probability
/// P_0(0) = erf(1 / (2 sqrt(2) s)), which is higher: sigma = q / 2 (0.05 K noise on a
/// 0.1 K sensor) repeats at r = 0.50 on average but 0.68 in the middle of a step.
/// [`Repeats::quietest_block_rate`] gives r, a table of s inverts it. Float sensors (q far
/// below sigma) come out near their repeat rate: p is about 1.4 r for small r.
fn still_stay_rate(r: f64) -> f64 {
    static TABLE: std::sync::OnceLock<Vec<(f64, f64)>> = std::sync::OnceLock::new();
    let table = TABLE.get_or_init(|| {
        // (r(s), P_0(0)) for s from 0.02 to 50 on a log grid: r falls as s grows.
        const POINTS: usize = 256;
        const OFFSETS: usize = 64;
        let phi = |x: f64| 0.5 * (1.0 + erf(x / std::f64::consts::SQRT_2));
        (0..POINTS)
            .map(|i| {
                let s = 0.02 * (2500.0f64).powf(i as f64 / (POINTS - 1) as f64);
                let reach = (8.0 * s).ceil() as i64 + 1;
                let mean: f64 = (0..OFFSETS)
                    .map(|j| {
                        let u = (j as f64 + 0.5) / OFFSETS as f64 - 0.5;
                        (-reach..=reach)
                            .map(|k| {
                                let k = k as f64;
                                let p = phi((k + 0.5 - u) / s) - phi((k - 0.5 - u) / s);
                                p * p
                            })
                            .sum::<f64>()
                    })
                    .sum::<f64>()
                    / OFFSETS as f64;
                (mean, erf(1.0 / (2.0 * std::f64::consts::SQRT_2 * s)))
            })
            .collect()
    });
    let (first, last) = (table[0], table[table.len() - 1]);
    if r >= first.0 {
        return 1.0;
    }
    if r <= last.0 {
        return (r * last.1 / last.0).max(r);
    }
    // table[k].0 > r >= table[k + 1].0
    let k = table.partition_point(|&(rk, _)| rk > r) - 1;
    let ((r0, p0), (r1, p1)) = (table[k], table[k + 1]);
    (p0 + (p1 - p0) * (r - r0) / (r1 - r0)).max(r)
}

/// The error function, to 1.5e-7 (Abramowitz and Stegun 7.1.26).
fn erf(x: f64) -> f64 {
    let t = 1.0 / (1.0 + 0.327_591_1 * x.abs());
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    (1.0 - poly * (-x * x).exp()).copysign(x)
}

/// The sample (index) at which the run `start..end` becomes a stuck sensor, with its
/// final score; `None` if it never does.
#[allow(clippy::too_many_arguments)]
fn judge_run(
    ch: &Channel,
    peers: &[&Channel],
    start: usize,
    end: usize,
    repeat_rate: f64,
    min_duration: i64,
    min_samples: usize,
    log_limit: f64,
) -> Option<(usize, f64)> {
    if repeat_rate >= 0.999 {
        return None; // a point that always repeats (a setpoint, a state)
    }
    let log_p = repeat_rate.max(1e-12).ln();
    let t0 = ch.time_ns[start];
    let score_at = |k: usize| (k - start) as f64 * log_p / log_limit;
    (start + 1..end)
        .find(|&k| {
            ch.time_ns[k] - t0 >= min_duration
                && k - start + 1 >= min_samples
                && score_at(k) >= 1.0
                && peers_moved(peers, t0, ch.time_ns[k])
        })
        .map(|k| (k, score_at(end - 1)))
}

fn redundant(ctx: &ZoneContext, out: &mut Vec<Anomaly>) {
    let Some(lp) = &ctx.zone.cooling_loop else {
        return;
    };
    let c = ctx.config;
    let gap = ns(c.max_gap);
    let sensors: Vec<&Channel> = lp
        .supply_fields
        .iter()
        .filter_map(|f| ctx.telemetry.get(&lp.cdu, f))
        .collect();
    if sensors.len() < 2 {
        return;
    }
    let setpoint = ctx.telemetry.get(&lp.cdu, "supply_setpoint_c");
    let times = &ctx.times;
    let values = |t: i64| -> Vec<(usize, f64)> {
        sensors
            .iter()
            .enumerate()
            .filter_map(|(k, s)| s.at(t, gap).map(|v| (k, v)))
            .collect()
    };
    let spread = |v: &[(usize, f64)]| {
        let max = v.iter().map(|x| x.1).fold(f64::NEG_INFINITY, f64::max);
        let min = v.iter().map(|x| x.1).fold(f64::INFINITY, f64::min);
        max - min
    };
    let holds = Holds::new(ns(c.redundant_hold), gap);
    for (e, i) in judge(times, holds, |_, t| {
        let v = values(t);
        if v.len() < 2 {
            return (Level::Unknown, 0.0);
        }
        let s = spread(&v);
        let level = if s > c.redundant_spread_k {
            Level::Warning
        } else {
            Level::Normal
        };
        (level, s / c.redundant_spread_k)
    }) {
        let t = times[i];
        let v = values(t);
        // The odd one out: farthest from the median of the others (two sensors: from
        // the setpoint).
        let reference = |k: usize| -> f64 {
            if v.len() == 2 {
                setpoint
                    .and_then(|s| s.at(t, gap))
                    .unwrap_or(lp.supply_setpoint_c)
            } else {
                let mut others: Vec<f64> = v.iter().filter(|x| x.0 != k).map(|x| x.1).collect();
                median(&mut others).unwrap_or(f64::NAN)
            }
        };
        let odd = v
            .iter()
            .max_by(|a, b| {
                (a.1 - reference(a.0))
                    .abs()
                    .total_cmp(&(b.1 - reference(b.0)).abs())
            })
            .map(|x| x.0)
            .unwrap_or(0);
        let field = &sensors[odd].field;
        let s = spread(&v);
        let cdu = &lp.cdu;
        out.push(Anomaly::from_episode(
            AnomalyKind::RedundantDisagreement,
            cdu,
            Some(field),
            ctx.tags(cdu),
            &e,
            Some(sensors[odd].at(t, gap).unwrap_or(f64::NAN)),
            format!(
                "Redundant supply sensors of {cdu} disagree by {s:.1} K and {field} is the odd one out: drop it from control and recalibrate it."
            ),
            format!(
                "{cdu} 冗余供液温度传感器相差 {s:.1} K，{field} 偏离其余：请将其移出控制并校准。"
            ),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::super::*;

    fn only(found: &[Anomaly], kind: AnomalyKind) -> Vec<&Anomaly> {
        found.iter().filter(|a| a.kind == kind).collect()
    }

    /// The sensor checks with their defaults on `t`, a zone whose CDU is "cdu".
    fn detect_in_cdu(t: &Telemetry) -> Vec<Anomaly> {
        run(t, &zone(&[], &[]), &AnomalyConfig::default(), super::detect)
    }

    #[test]
    fn the_still_signal_stay_rate_inverts_the_quantised_noise_model() {
        use super::{erf, still_stay_rate};
        // erf against tabulated values.
        for (x, want) in [
            (0.5, 0.520_499_877_8),
            (1.0, 0.842_700_792_9),
            (-2.0, -0.995_322_265),
        ] {
            assert!((erf(x) - want).abs() < 2e-7, "erf({x}) = {}", erf(x));
        }
        // Values from the model integrated apart (bisection on s = sigma / q, 64 offsets):
        // r = 0.5 is s = 0.481, p = 0.7015; r = 1/62 is s = 17.49, p = 0.0228; r = 12/122
        // is s = 2.853, p = 0.1391.
        for (r, want) in [(0.5, 0.7015), (1.0 / 62.0, 0.0228), (12.0 / 122.0, 0.1391)] {
            let p = still_stay_rate(r);
            assert!((p - want).abs() < 0.002, "r = {r}: {p} against {want}");
        }
        // A sensor that nearly always repeats: its noise is far below its step, it stays.
        assert_eq!(still_stay_rate(0.999), 1.0);
        // Never below the repeat rate itself, and rising with it.
        let mut last = 0.0;
        for k in 1..100 {
            let r = k as f64 / 100.0;
            let p = still_stay_rate(r);
            assert!(p >= r && p >= last, "r = {r}: {p}");
            last = p;
        }
    }

    #[test]
    fn a_float_sensor_stuck_while_its_neighbours_move() {
        // Three rack inlets with float noise (never repeating); r02 freezes at sample 400
        // (4000 s) until sample 500 (5000 s). It never repeated before (a repeat rate of
        // 1/362 once smoothed: 3 repeated pairs are unlikely enough), so the run qualifies
        // once it lasts the minimum minute: raised at 4060 s, ended at 5000 s.
        let mut t = Telemetry::new();
        for k in 0..3u64 {
            let values: Vec<f64> = (0..600)
                .map(|i| {
                    let i = if k == 1 && (400..500).contains(&i) {
                        400
                    } else {
                        i
                    };
                    24.0 + 0.1 * noise(i, k)
                })
                .collect();
            t.insert(channel(
                &format!("r0{}-inlet", k + 1),
                "rack_inlet",
                "temperature_c",
                &values,
            ));
        }
        let mut zone = zone(&[], &["r01-inlet", "r02-inlet", "r03-inlet"]);
        zone.cooling_loop = None;
        let found = run(&t, &zone, &AnomalyConfig::default(), super::detect);
        let a = only(&found, AnomalyKind::StuckSensor);
        assert_eq!(a.len(), 1, "{found:#?}");
        assert_eq!(a[0].device, "r02-inlet");
        assert_eq!((s(a[0].start_ns), s(a[0].detected_ns)), (4000, 4060));
        assert_eq!(a[0].end_ns.map(s), Some(5000));
        assert!(a[0].score > 1.0);

        // The same freeze while every neighbour is frozen too (a collector repeating
        // its last reading, say): not a stuck sensor.
        let mut t = Telemetry::new();
        for k in 0..3u64 {
            let values: Vec<f64> = (0..600)
                .map(|i| 24.0 + 0.1 * noise(if (400..500).contains(&i) { 400 } else { i }, k))
                .collect();
            t.insert(channel(
                &format!("r0{}-inlet", k + 1),
                "rack_inlet",
                "temperature_c",
                &values,
            ));
        }
        let found = run(&t, &zone, &AnomalyConfig::default(), super::detect);
        assert!(
            only(&found, AnomalyKind::StuckSensor).is_empty(),
            "{found:#?}"
        );
    }

    #[test]
    fn sampled_each_minute_two_equal_readings_are_not_stuck() {
        // Float noise read once a minute (the demo's backfill, a slow collector): in an
        // hour (60 pairs, less than a block: the hour's own rate) the sensor never
        // repeated (smoothed rate 1/62),
        // which the still-signal model reads as a stay rate of 0.0228, so a run needs
        // ln(1e-7) / ln(0.0228) = 4.26, i.e. 5 repeated pairs (5 min); 3 equal readings
        // (2 min) are chance, 6 (5 min) are stuck, raised at the sixth.
        let minute = 6 * STEP;
        let inlets = |frozen: std::ops::Range<usize>| {
            let mut t = Telemetry::new();
            for k in 0..3u64 {
                let values: Vec<f64> = (0..120)
                    .map(|i| {
                        let i = if k == 1 && frozen.contains(&i) {
                            frozen.start
                        } else {
                            i
                        };
                        24.0 + 0.1 * noise(i, k)
                    })
                    .collect();
                let mut ch = channel(
                    &format!("r0{}-inlet", k + 1),
                    "rack_inlet",
                    "temperature_c",
                    &values,
                );
                ch.time_ns = (0..120).map(|i| i * minute).collect();
                t.insert(ch);
            }
            t
        };
        let mut zone = zone(&[], &["r01-inlet", "r02-inlet", "r03-inlet"]);
        zone.cooling_loop = None;
        let config = AnomalyConfig {
            max_gap: std::time::Duration::from_secs(180),
            ..AnomalyConfig::default()
        };
        let found = run(&inlets(90..93), &zone, &config, super::detect);
        assert!(
            only(&found, AnomalyKind::StuckSensor).is_empty(),
            "{found:#?}"
        );
        let found = run(&inlets(90..96), &zone, &config, super::detect);
        let a = only(&found, AnomalyKind::StuckSensor);
        assert_eq!(a.len(), 1, "{found:#?}");
        assert_eq!(a[0].device, "r02-inlet");
        assert_eq!(s(a[0].detected_ns), 95 * 60);
    }

    #[test]
    fn a_quantised_sensor_needs_a_longer_run() {
        // A 0.1 C sensor repeating every other sample before (pattern 36.0, 36.0, 36.1,
        // 36.1, ...: 1 of 2 pairs repeats, a smoothed rate of 61/122 = 0.5 in every block),
        // frozen from sample 400 (4000 s). The still-signal model reads r = 0.5 as noise of
        // 0.48 steps (sigma = 0.048 C), which keeps a reading in the middle of its step
        // with p = erf(1 / (2 sqrt(2) 0.481)) = 0.7015: ln(1e-7) / ln(0.7015) = 45.5
        // repeated pairs, raised at sample 446 (4460 s); still frozen at the end (no end).
        // (The run's own rate, 0.5, would accept 24 pairs.)
        let values: Vec<f64> = (0..500)
            .map(|i| {
                if i < 400 && (i / 2) % 2 == 1 {
                    36.1
                } else {
                    36.0
                }
            })
            .collect();
        let flow: Vec<f64> = (0..500).map(|i| 400.0 + 0.1 * (i % 7) as f64).collect();
        let mut t = Telemetry::new();
        t.insert(channel("cdu", "cdu", "secondary_return_temp", &values));
        t.insert(channel("cdu", "cdu", "secondary_flow_lpm", &flow));
        // Not an analog point (a setpoint): not judged.
        t.insert(channel("cdu", "cdu", "supply_setpoint_c", &[36.0; 500]));
        let found = detect_in_cdu(&t);
        let a = only(&found, AnomalyKind::StuckSensor);
        assert_eq!(a.len(), 1, "{found:#?}");
        assert_eq!(a[0].field.as_deref(), Some("secondary_return_temp"));
        assert_eq!(
            (s(a[0].start_ns), s(a[0].detected_ns), a[0].end_ns),
            (4000, 4460, None)
        );
    }

    /// 0.1 C patterns: busy (36.0, 36.0, 36.1, 36.2, 36.1: 1 pair in 5 repeats) and
    /// quiet (36.0, 36.0, 36.1, 36.1: 1 in 2, the repeat rate of 0.05 C noise).
    fn busy(i: usize) -> f64 {
        [36.0, 36.0, 36.1, 36.2, 36.1][i % 5]
    }

    fn quiet(i: usize) -> f64 {
        if (i / 2) % 2 == 0 {
            36.0
        } else {
            36.1
        }
    }

    #[test]
    fn a_quantised_sensor_that_quietens_may_sit_on_a_step() {
        // The July false alarm, in miniature: a 0.1 C sensor busy for 40 min, then
        // quiet for 20 min, then on 36.0 for 27 samples (270 s) from sample 360, then
        // quiet again. Over the hour, 36.0 stayed on itself 1 time in 2 (rate 0.5: 24
        // repeated pairs would do), but the quiet block (61/122 = 0.5) says the noise is
        // below half a step, so a signal still in the middle of 36.0 stays there with
        // p = 0.7015 (see above): 46 pairs are needed, and 26 are chance.
        let series = |held: std::ops::Range<usize>| -> Vec<f64> {
            (0..450)
                .map(|i| match i {
                    _ if held.contains(&i) => 36.0,
                    0..240 => busy(i),
                    _ => quiet(i),
                })
                .collect()
        };
        let flow: Vec<f64> = (0..450).map(|i| 400.0 + 0.1 * (i % 7) as f64).collect();
        let found_in = |values: &[f64]| {
            let mut t = Telemetry::new();
            t.insert(channel("cdu", "cdu", "primary_return_temp", values));
            t.insert(channel("cdu", "cdu", "secondary_flow_lpm", &flow));
            detect_in_cdu(&t)
        };
        let found = found_in(&series(360..387));
        assert!(
            only(&found, AnomalyKind::StuckSensor).is_empty(),
            "{found:#?}"
        );
        // Frozen from sample 360 to the end: raised after 46 repeated pairs, at 4060 s.
        let found = found_in(&series(360..450));
        let a = only(&found, AnomalyKind::StuckSensor);
        assert_eq!(a.len(), 1, "{found:#?}");
        assert_eq!(
            (s(a[0].start_ns), s(a[0].detected_ns), a[0].end_ns),
            (3600, 4060, None)
        );
    }

    #[test]
    fn a_sensor_busy_all_hour_takes_the_noise_of_its_siblings() {
        // The primary return follows the load and was busy the whole hour, then sits on
        // 36.0 for 27 samples from sample 360: by its own blocks (rate 0.2 at most, a stay
        // rate of 0.29) and its rate of staying on 36.0 (0.5: 24 pairs) the run is stuck,
        // raised at sample 384. Its sibling, the supply temperature of the same
        // transmitter family, is quiet (0.5, a stay rate of 0.7015: 46 pairs): the run is
        // chance. A quiet flow meter (another family) does not count.
        let primary_return: Vec<f64> = (0..450)
            .map(|i| {
                if (360..387).contains(&i) {
                    36.0
                } else {
                    busy(i)
                }
            })
            .collect();
        let quiet_series: Vec<f64> = (0..450).map(quiet).collect();
        let found_with = |sibling: &str| {
            let mut t = Telemetry::new();
            t.insert(channel(
                "cdu",
                "cdu",
                "primary_return_temp",
                &primary_return,
            ));
            t.insert(channel("cdu", "cdu", sibling, &quiet_series));
            detect_in_cdu(&t)
        };
        let found = found_with("secondary_supply_temp_1");
        assert!(
            only(&found, AnomalyKind::StuckSensor).is_empty(),
            "{found:#?}"
        );
        let found = found_with("secondary_flow_lpm");
        let a = only(&found, AnomalyKind::StuckSensor);
        assert_eq!(a.len(), 1, "{found:#?}");
        assert_eq!(a[0].field.as_deref(), Some("primary_return_temp"));
        assert_eq!((s(a[0].start_ns), s(a[0].detected_ns)), (3600, 3840));
    }

    #[test]
    fn a_run_must_outlast_the_longest_natural_one() {
        // A float sensor (never repeats) that also sat on one value for 12 samples from
        // sample 300 (3000 s): improbable for a sensor that never repeats (blocks at
        // 1/122, a stay rate of 0.012: 4 pairs), so raised once it lasted the minimum
        // minute, at 3060 s, ended at 3120 s. Then frozen from sample 400 (4000 s). The
        // block that holds the natural run repeated 11 times in 120 pairs (12/122, a stay
        // rate of 0.139: 9 pairs would do), but the longest run in the hour before is 12
        // samples, so the freeze needs 2 x 12 = 24 samples: raised at sample 423 (4230 s).
        let values: Vec<f64> = (0..500)
            .map(|i| {
                let i = match i {
                    300..312 => 300,
                    400.. => 400,
                    _ => i,
                };
                36.0 + 0.1 * noise(i, 3)
            })
            .collect();
        let flow: Vec<f64> = (0..500).map(|i| 400.0 + 0.1 * (i % 7) as f64).collect();
        let mut t = Telemetry::new();
        t.insert(channel("cdu", "cdu", "secondary_return_temp", &values));
        t.insert(channel("cdu", "cdu", "secondary_flow_lpm", &flow));
        let found = detect_in_cdu(&t);
        let a = only(&found, AnomalyKind::StuckSensor);
        assert_eq!(a.len(), 2, "{found:#?}");
        assert_eq!(
            (s(a[0].start_ns), s(a[0].detected_ns), a[0].end_ns.map(s)),
            (3000, 3060, Some(3120))
        );
        assert_eq!(
            (s(a[1].start_ns), s(a[1].detected_ns), a[1].end_ns),
            (4000, 4230, None)
        );
    }

    #[test]
    fn redundant_sensors_that_disagree() {
        // Sensors 2 and 3 at 36.0 / 36.1; sensor 1 at 36.0 then 37.5 from 100 s to 300 s:
        // spread 1.5 K from 100 s, raised at 130 s, ends at 300 s; sensor 1 named.
        let s1: Vec<f64> = (0..40)
            .map(|i| if (10..30).contains(&i) { 37.5 } else { 36.0 })
            .collect();
        let mut t = Telemetry::new();
        t.insert(channel("cdu", "cdu", "secondary_flow_lpm", &[400.0; 40]));
        t.insert(channel("cdu", "cdu", "secondary_supply_temp_1", &s1));
        t.insert(channel(
            "cdu",
            "cdu",
            "secondary_supply_temp_2",
            &[36.0; 40],
        ));
        t.insert(channel(
            "cdu",
            "cdu",
            "secondary_supply_temp_3",
            &[36.1; 40],
        ));
        let found = detect_in_cdu(&t);
        let a = only(&found, AnomalyKind::RedundantDisagreement);
        assert_eq!(a.len(), 1, "{found:#?}");
        assert_eq!(a[0].field.as_deref(), Some("secondary_supply_temp_1"));
        assert_eq!(
            (s(a[0].start_ns), s(a[0].detected_ns), a[0].end_ns.map(s)),
            (100, 130, Some(300))
        );
        assert!((a[0].score - 1.5).abs() < 1e-9);
    }
}
