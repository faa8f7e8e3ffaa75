//! Sensor faults: stuck sensors and redundant sensors that disagree.
//!
//! - **Stuck sensor** (`stuck_sensor`): a value that has not changed for at least
//!   `stuck_min_duration` (1 min) *and* for so many samples that, at the rate the sensor
//!   repeated its previous value over the trailing `stuck_window` (1 h), such a run
//!   would have a probability of at most `stuck_probability` (1e-7), while at least one
//!   neighbour changed during the run (the module's other rack inlets; the CDU's other
//!   analog points). A float sensor that never repeats is judged after the minimum
//!   duration; a sensor quantised to 0.1 C that stays on its usual value two times in
//!   three needs about 40 samples (the rate is that of repeating *this* value, which
//!   is higher for the sensor's most frequent value than its overall repeat rate).
//!   The run must also be `stuck_run_factor` (2) times the longest run of any value in
//!   that window: a slowly moving quantised sensor sits on one step for longer than
//!   its repeat rate alone suggests. A sensor that always repeats (a setpoint) is never judged. The anomaly
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

/// The CDU's analog points judged for being stuck (and each other's neighbours).
pub const CDU_ANALOG: &[&str] = &[
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
];

/// Runs the sensor checks of one zone.
pub(crate) fn detect(ctx: &ZoneContext, out: &mut Vec<Anomaly>) {
    let t = ctx.telemetry;
    let inlets: Vec<&Channel> = ctx
        .zone
        .inlets
        .iter()
        .filter_map(|s| t.get(s, "temperature_c"))
        .collect();
    for (k, ch) in inlets.iter().enumerate() {
        let peers: Vec<&Channel> = inlets
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != k)
            .map(|(_, c)| *c)
            .collect();
        stuck(ctx, ch, &peers, out);
    }
    if let Some(lp) = &ctx.zone.cooling_loop {
        let analog: Vec<&Channel> = CDU_ANALOG
            .iter()
            .filter_map(|f| t.get(&lp.cdu, f))
            .collect();
        for (k, ch) in analog.iter().enumerate() {
            let peers: Vec<&Channel> = analog
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != k)
                .map(|(_, c)| *c)
                .collect();
            stuck(ctx, ch, &peers, out);
        }
        redundant(ctx, out);
    }
    if let Some(dew) = &ctx.zone.dew_point {
        if let Some(ch) = t.get(dew, "dew_point_c") {
            stuck(ctx, ch, &inlets, out);
        }
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

fn stuck(ctx: &ZoneContext, ch: &Channel, peers: &[&Channel], out: &mut Vec<Anomaly>) {
    let c = ctx.config;
    let gap = ns(c.max_gap);
    let window = ns(c.stuck_window);
    let min_duration = ns(c.stuck_min_duration);
    let log_limit = c.stuck_probability.ln();
    let n = ch.len();
    if n < 2 {
        return;
    }
    // repeats[i] = how many of the pairs (j-1, j), j <= i, repeat their value.
    let mut repeats = vec![0usize; n];
    for i in 1..n {
        repeats[i] = repeats[i - 1] + usize::from(ch.value[i] == ch.value[i - 1]);
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
        // hour the sensor never repeated (smoothed rate 1/62), so a run needs
        // ln(1e-7) / ln(1/62) = 3.9, i.e. 4 repeated pairs (4 min); 3 equal readings
        // (2 min) are chance, 6 (5 min) are stuck.
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
        assert_eq!(s(a[0].detected_ns), 94 * 60);
    }

    #[test]
    fn a_quantised_sensor_needs_a_longer_run() {
        // A 0.1 C sensor repeating every other sample before (pattern 36.0, 36.0, 36.1,
        // 36.1, ...: 1 of 2 pairs repeats, p = 0.5), frozen from sample 400 (4000 s).
        // ln(1e-7) / ln(0.5) = 23.25 repeated pairs: raised at sample 424 (4240 s); still
        // frozen at the end (no end).
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
        let found = run(
            &t,
            &zone(&[], &[]),
            &AnomalyConfig::default(),
            super::detect,
        );
        let a = only(&found, AnomalyKind::StuckSensor);
        assert_eq!(a.len(), 1, "{found:#?}");
        assert_eq!(a[0].field.as_deref(), Some("secondary_return_temp"));
        assert_eq!(
            (s(a[0].start_ns), s(a[0].detected_ns), a[0].end_ns),
            (4000, 4240, None)
        );
    }

    #[test]
    fn a_run_must_outlast_the_longest_natural_one() {
        // As above (p = 0.5 pattern), but the sensor also sat on 36.0 for 30 samples
        // (3000 s to 3290 s). That run is itself improbable at p = 0.5: raised at sample
        // 324 (3240 s), ended at 3300 s. Then the longest run in the hour before the
        // freeze at 4000 s is 30 samples, so the freeze needs 2 x 30 = 60 samples (the
        // repeat rate of 36.0 alone, now about 0.65, would accept 38): raised at sample
        // 459 (4590 s).
        let values: Vec<f64> = (0..500)
            .map(|i| {
                let natural = (i / 2) % 2 == 1 && !(300..330).contains(&i);
                if i < 400 && natural {
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
        let found = run(
            &t,
            &zone(&[], &[]),
            &AnomalyConfig::default(),
            super::detect,
        );
        let a = only(&found, AnomalyKind::StuckSensor);
        assert_eq!(a.len(), 2, "{found:#?}");
        assert_eq!(
            (s(a[0].start_ns), s(a[0].detected_ns), a[0].end_ns.map(s)),
            (3000, 3240, Some(3300))
        );
        assert_eq!(
            (s(a[1].start_ns), s(a[1].detected_ns), a[1].end_ns),
            (4000, 4590, None)
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
        let found = run(
            &t,
            &zone(&[], &[]),
            &AnomalyConfig::default(),
            super::detect,
        );
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
