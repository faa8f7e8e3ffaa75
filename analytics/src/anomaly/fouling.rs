//! Fouling and blockage: what rises slowly (or suddenly) in the hydraulics and the heat
//! exchanger.
//!
//! - **Flow restriction** (`flow_restriction`): the filter's hydraulic resistance,
//!   R = filter dP / (flow / design flow)^2, which stays put when the flow follows the
//!   load (dP goes with the square of the flow) and rises when a strainer clogs or the
//!   loop is blocked. Judged above `resistance_min_flow_share` (0.2) of the design flow,
//!   against its baseline: the median over the trailing `resistance_window` (6 h) of the
//!   samples not judged anomalous (so a persisting blockage does not become the
//!   baseline), recomputed every 5 min, once 10 minutes of samples are there.
//!   R above `resistance_ratio` (1.5) x baseline for `resistance_hold` (1 min) is an
//!   anomaly. Score: R / baseline. This is what sees a blockage while the pumps still
//!   make up the flow, long before the dP itself passes 0.6 bar.
//! - **Approach trend** (`approach_trend`): the heat-exchanger approach, secondary
//!   supply - primary supply, averaged per hour over the samples where the IT load is
//!   at least `approach_min_load_share` (0.5) of the module's rating (the approach
//!   grows with load); the least-squares slope of those hourly values over the trailing
//!   `approach_window` (7 d, at least a day of them) above `approach_slope_k_per_day`
//!   (0.3 K/day) is fouling of the plate heat exchanger. Score: slope / limit.

use super::config::ns;
use super::episodes::{Holds, Level};
use super::rules::{judge, rolling_slope};
use super::{median, Anomaly, AnomalyKind, ZoneContext};

const HOUR: i64 = 3_600_000_000_000;
/// Fewest baseline samples of the flow restriction (10 min at 10 s).
const MIN_RESISTANCE_BASELINE: usize = 60;

/// Runs the fouling checks of one zone.
pub(crate) fn detect(ctx: &ZoneContext, out: &mut Vec<Anomaly>) {
    restriction(ctx, out);
    approach(ctx, out);
}

fn restriction(ctx: &ZoneContext, out: &mut Vec<Anomaly>) {
    let Some(lp) = &ctx.zone.cooling_loop else {
        return;
    };
    let c = ctx.config;
    let gap = ns(c.max_gap);
    let (Some(flow), Some(dp)) = (
        ctx.telemetry.get(&lp.cdu, "secondary_flow_lpm"),
        ctx.telemetry.get(&lp.cdu, "filter_dp_bar"),
    ) else {
        return;
    };
    if lp.design_flow_lpm <= 0.0 {
        return;
    }
    let times = &ctx.times;
    let r: Vec<Option<f64>> = times
        .iter()
        .map(|&t| {
            let rel = flow.at(t, gap)? / lp.design_flow_lpm;
            (rel >= c.resistance_min_flow_share).then_some(())?;
            Some(dp.at(t, gap)? / (rel * rel))
        })
        .collect();
    let window = ns(c.resistance_window);
    let refresh = ns(c.zscore_refresh);
    let mut accepted = vec![false; times.len()];
    let mut baseline: Vec<Option<f64>> = vec![None; times.len()];
    let mut current = None;
    let mut block_end = i64::MIN;
    let mut buf = Vec::new();
    let mut levels = Vec::with_capacity(times.len());
    for (i, &t) in times.iter().enumerate() {
        if t >= block_end {
            block_end = t.saturating_add(refresh.max(1));
            let a = times.partition_point(|&x| x < t - window);
            buf.clear();
            buf.extend((a..i).filter(|&k| accepted[k]).filter_map(|k| r[k]));
            current = if buf.len() >= MIN_RESISTANCE_BASELINE {
                median(&mut buf).filter(|m| *m > 0.0)
            } else {
                None
            };
        }
        baseline[i] = current;
        let judged = match (r[i], current) {
            (Some(v), Some(b)) => {
                let ratio = v / b;
                if ratio > c.resistance_ratio {
                    (Level::Warning, ratio)
                } else {
                    accepted[i] = true;
                    (Level::Normal, ratio)
                }
            }
            (Some(_), None) => {
                accepted[i] = true;
                (Level::Unknown, 0.0)
            }
            _ => (Level::Unknown, 0.0),
        };
        levels.push(judged);
    }
    let holds = Holds::new(ns(c.resistance_hold), gap);
    for (e, _) in judge(times, holds, |i, _| levels[i]) {
        let cdu = &lp.cdu;
        let x = e.score;
        out.push(Anomaly::from_episode(
            AnomalyKind::FlowRestriction,
            cdu,
            Some("filter_dp_bar"),
            ctx.tags(cdu),
            &e,
            Some(x),
            format!(
                "The hydraulic resistance of {cdu}'s filter is {x:.1} times its usual value: a strainer or the loop is clogging; clean it before the flow falls short."
            ),
            format!(
                "{cdu} 过滤器水阻为平时的 {x:.1} 倍：过滤器或环路正在堵塞，请在流量不足前清洗。"
            ),
        ));
    }
}

fn approach(ctx: &ZoneContext, out: &mut Vec<Anomaly>) {
    let Some(lp) = &ctx.zone.cooling_loop else {
        return;
    };
    let c = ctx.config;
    let gap = ns(c.max_gap);
    let Some(primary) = ctx.telemetry.get(&lp.cdu, "primary_supply_temp") else {
        return;
    };
    let rated_kw = lp.design_flow_lpm / lp.flow_per_kw_lpm.max(1e-9);
    // Hourly means of the approach at sufficient load.
    let mut hours: Vec<(i64, f64, usize)> = Vec::new();
    for (i, &t) in ctx.times.iter().enumerate() {
        let (Some(s), Some(it)) = (ctx.supply[i], ctx.it_kw.get(i).copied().flatten()) else {
            continue;
        };
        if it < c.approach_min_load_share * rated_kw {
            continue;
        }
        let Some(p) = primary.at(t, gap) else {
            continue;
        };
        let h = t.div_euclid(HOUR) * HOUR + HOUR; // the hour's end
        match hours.last_mut() {
            Some((last, sum, n)) if *last == h => {
                *sum += s - p;
                *n += 1;
            }
            _ => hours.push((h, s - p, 1)),
        }
    }
    let times: Vec<i64> = hours.iter().map(|h| h.0).collect();
    let values: Vec<Option<f64>> = hours.iter().map(|h| Some(h.1 / h.2 as f64)).collect();
    let slopes = rolling_slope(&times, &values, ns(c.approach_window));
    let per_day = 86_400.0;
    let limit = c.approach_slope_k_per_day;
    let span_ok = |i: usize| {
        let a = times.partition_point(|&x| x < times[i] - ns(c.approach_window));
        i - a >= 24 && times[i] - times[a] >= 23 * HOUR
    };
    let holds = Holds::new(0, 3 * HOUR);
    for (e, i) in judge(&times, holds, |i, _| match slopes[i] {
        Some(s) if span_ok(i) => {
            let k = s * per_day;
            if k > limit {
                (Level::Warning, k / limit)
            } else {
                (Level::Normal, k / limit)
            }
        }
        _ => (Level::Unknown, 0.0),
    }) {
        let cdu = &lp.cdu;
        let rate = e.score * limit;
        let now = values[i].unwrap_or(f64::NAN);
        out.push(Anomaly::from_episode(
            AnomalyKind::ApproachTrend,
            cdu,
            Some("primary_supply_temp"),
            ctx.tags(cdu),
            &e,
            Some(now),
            format!(
                "The heat-exchanger approach of {cdu} is rising by {rate:.2} K per day (now {now:.1} K): schedule cleaning of the plate heat exchanger and check the primary water quality."
            ),
            format!(
                "{cdu} 换热器趋近温度每天上升 {rate:.2} K（当前 {now:.1} K）：请安排清洗板式换热器并检查一次侧水质。"
            ),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::super::*;

    #[test]
    fn a_blockage_is_a_step_in_resistance_and_a_load_step_is_not() {
        // Design flow 576 L/min. Flow 200 L/min (rel 0.347), filter dP = 0.25 x rel^2;
        // at 1 h the load steps the flow to 400 L/min (dP follows with the square: R
        // unchanged, no anomaly). At 3 h (sample 1080) the loop is blocked: dP x 4 at the
        // same flow. R = 4 x baseline: raised after the 1-min hold at 3 h 01 m (10860 s),
        // still going at the end (the blockage never becomes the baseline).
        let n = 1800;
        let flow: Vec<f64> = (0..n)
            .map(|i| if i < 360 { 200.0 } else { 400.0 })
            .collect();
        let dp: Vec<f64> = (0..n)
            .map(|i| {
                let rel = flow[i] / 576.0;
                let blocked = if i >= 1080 { 4.0 } else { 1.0 };
                0.25 * rel * rel * blocked * (1.0 + 0.02 * noise(i, 7))
            })
            .collect();
        let mut t = Telemetry::new();
        t.insert(channel("cdu", "cdu", "secondary_flow_lpm", &flow));
        t.insert(channel("cdu", "cdu", "filter_dp_bar", &dp));
        let found = run(
            &t,
            &zone(&[], &[]),
            &AnomalyConfig::default(),
            super::detect,
        );
        assert_eq!(found.len(), 1, "{found:#?}");
        let a = &found[0];
        assert_eq!(a.kind, AnomalyKind::FlowRestriction);
        assert_eq!(
            (s(a.start_ns), s(a.detected_ns), a.end_ns),
            (10800, 10860, None)
        );
        assert!(a.score > 3.8 && a.score < 4.2, "{a:?}");
    }

    #[test]
    fn a_rising_approach_over_days() {
        // Samples every 10 min for 5 days, full load (two PDUs of 240 kW = the rating).
        // Approach 6 K for 2 days, then rising 1 K/day. The hourly means (at the hours'
        // ends) form a hinge; the least-squares slope of all of them (the window is a
        // week) first passes 0.3 K/day with the hour ending at 76 h (0.3056 K/day; 0.2939
        // at 75 h, fitted by hand). Still rising at the end.
        let step = 600_000_000_000i64;
        let n = 5 * 144;
        let secondary: Vec<(i64, f64)> = (0..n).map(|i| (i as i64 * step, 36.0)).collect();
        let primary: Vec<(i64, f64)> = (0..n)
            .map(|i| {
                let days = i as f64 / 144.0;
                let approach = 6.0 + (days - 2.0).max(0.0);
                (i as i64 * step, 36.0 - approach)
            })
            .collect();
        let mut t = Telemetry::new();
        t.insert(Channel::new(
            "cdu",
            "cdu",
            "secondary_flow_lpm",
            secondary.iter().map(|p| (p.0, 500.0)),
        ));
        t.insert(Channel::new(
            "cdu",
            "cdu",
            "secondary_supply_temp_1",
            secondary.clone(),
        ));
        t.insert(Channel::new("cdu", "cdu", "primary_supply_temp", primary));
        for p in ["p1", "p2"] {
            t.insert(Channel::new(
                p,
                "rack_pdu",
                "active_power_kw",
                secondary.iter().map(|x| (x.0, 240.0)),
            ));
        }
        let config = AnomalyConfig {
            max_gap: std::time::Duration::from_secs(900),
            ..Default::default()
        };
        let found = run(&t, &zone(&["p1", "p2"], &[]), &config, super::detect);
        let a: Vec<&Anomaly> = found
            .iter()
            .filter(|a| a.kind == AnomalyKind::ApproachTrend)
            .collect();
        assert_eq!(a.len(), 1, "{found:#?}");
        assert_eq!(s(a[0].start_ns), 76 * 3600, "{:?}", a[0]);
        assert_eq!(a[0].detected_ns, a[0].start_ns);
        assert_eq!(a[0].end_ns, None);
        // Flat for the whole time: nothing.
        let flat: Vec<(i64, f64)> = secondary.iter().map(|p| (p.0, 30.0)).collect();
        t.insert(Channel::new("cdu", "cdu", "primary_supply_temp", flat));
        let found = run(&t, &zone(&["p1", "p2"], &[]), &config, super::detect);
        assert!(found.is_empty(), "{found:#?}");
    }
}
