//! The heat balance of a liquid loop (`heat_balance`): the heat the liquid carries,
//! Q [kW] = k x flow [L/min] x (return - supply) [K] (k = 0.0695 for water, 0.0667
//! for PG25, domain.md), against the module's IT power (the sum of its PDUs). Both are
//! averaged over the trailing `heat_window` (15 min, so the loop's thermal lag and the
//! training jobs' steps wash out); when Q / IT differs from the loop's design capture
//! ratio by more than `heat_tolerance` (0.15, absolute) for `heat_hold` (10 min), the
//! liquid heat does not match the IT power: a flow or temperature sensor fault, a
//! bypass, or a leak. Suppressed during a loop's start-up. Score: |difference| /
//! tolerance. Value: the observed ratio.

use super::config::ns;
use super::episodes::{Holds, Level};
use super::rules::judge;
use super::{Anomaly, AnomalyKind, ZoneContext};

/// Runs the heat balance of one zone.
pub(crate) fn detect(ctx: &ZoneContext, out: &mut Vec<Anomaly>) {
    let Some(lp) = &ctx.zone.cooling_loop else {
        return;
    };
    let c = ctx.config;
    let gap = ns(c.max_gap);
    let (Some(flow), Some(ret)) = (
        ctx.telemetry.get(&lp.cdu, "secondary_flow_lpm"),
        ctx.telemetry.get(&lp.cdu, "secondary_return_temp"),
    ) else {
        return;
    };
    let times = &ctx.times;
    let pairs: Vec<Option<(f64, f64)>> = times
        .iter()
        .enumerate()
        .map(|(i, &t)| {
            let q = lp.kw_per_lpm_k * flow.at(t, gap)? * (ret.at(t, gap)? - ctx.supply[i]?);
            let it = ctx.it_kw.get(i).copied().flatten()?;
            Some((q, it))
        })
        .collect();
    let window = ns(c.heat_window);
    let mut ratio = vec![None; times.len()];
    let (mut sq, mut sit, mut count) = (0.0, 0.0, 0usize);
    let mut lo = 0;
    for i in 0..times.len() {
        if let Some((q, it)) = pairs[i] {
            sq += q;
            sit += it;
            count += 1;
        }
        while times[i] - times[lo] > window {
            if let Some((q, it)) = pairs[lo] {
                sq -= q;
                sit -= it;
                count -= 1;
            }
            lo += 1;
        }
        let covered = times[i] - times[lo] >= window * 9 / 10 && count >= 10;
        if covered && sit > 1.0 && pairs[i].is_some() {
            ratio[i] = Some(sq / sit);
        }
    }
    let expected = lp.capture_ratio;
    let holds = Holds::new(ns(c.heat_hold), gap);
    for (e, i) in judge(times, holds, |i, t| {
        let Some(r) = ratio[i] else {
            return (Level::Unknown, 0.0);
        };
        if ctx.starting_up(t) {
            return (Level::Unknown, 0.0);
        }
        let dev = (r - expected).abs();
        let level = if dev > c.heat_tolerance {
            Level::Warning
        } else {
            Level::Normal
        };
        (level, dev / c.heat_tolerance)
    }) {
        let r = ratio[i].unwrap_or(f64::NAN);
        let cdu = &lp.cdu;
        let (obs, exp) = (100.0 * r, 100.0 * expected);
        out.push(Anomaly::from_episode(
            AnomalyKind::HeatBalance,
            cdu,
            None,
            ctx.tags(cdu),
            &e,
            Some(r),
            format!(
                "The liquid of {cdu} carries {obs:.0} % of the module's IT power where {exp:.0} % is expected: check the loop's flow and temperature sensors, and look for a bypass or a leak."
            ),
            format!(
                "{cdu} 液冷带走热量为模块 IT 功率的 {obs:.0}%，预期 {exp:.0}%：请检查环路流量和温度传感器，并排查旁通或漏液。"
            ),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::super::*;

    #[test]
    fn a_return_sensor_reading_low_breaks_the_balance() {
        // IT 400 kW (two PDUs of 200), flow 400 L/min, supply 36 C, return 47.5 C:
        // Q = 0.0695 x 400 x 11.5 = 319.7 kW, ratio 0.79925 (design 0.8).
        // From 3600 s (sample 360) the return reads 4 K low: Q = 208.5 kW, each bad
        // sample lowers the 15-min window's ratio (91 samples) by 111.2 / (91 x 400) =
        // 0.0030549; it falls below 0.8 - 0.15 = 0.65 with the 49th bad sample
        // (0.79925 - 49 x 0.0030549 = 0.64956; sample 408, 4080 s) and is raised after
        // the 10-min hold, at 4680 s. Still going at the end.
        let n = 720;
        let ret: Vec<f64> = (0..n).map(|i| if i >= 360 { 43.5 } else { 47.5 }).collect();
        let mut t = Telemetry::new();
        t.insert(channel("cdu", "cdu", "secondary_flow_lpm", &vec![400.0; n]));
        t.insert(channel("cdu", "cdu", "secondary_return_temp", &ret));
        t.insert(channel(
            "cdu",
            "cdu",
            "secondary_supply_temp_1",
            &vec![36.0; n],
        ));
        t.insert(channel(
            "p1",
            "rack_pdu",
            "active_power_kw",
            &vec![200.0; n],
        ));
        t.insert(channel(
            "p2",
            "rack_pdu",
            "active_power_kw",
            &vec![200.0; n],
        ));
        let found = run(
            &t,
            &zone(&["p1", "p2"], &[]),
            &AnomalyConfig::default(),
            super::detect,
        );
        assert_eq!(found.len(), 1, "{found:#?}");
        let a = &found[0];
        assert_eq!(a.kind, AnomalyKind::HeatBalance);
        assert_eq!(
            (s(a.start_ns), s(a.detected_ns), a.end_ns),
            (4080, 4680, None)
        );
        assert!((a.value.unwrap() - 208.5 / 400.0).abs() < 1e-6, "{a:?}");
        assert!(a.message_en.contains("52 %"), "{}", a.message_en);

        // The same data without the PDUs: no IT power, no judgement.
        let mut zone = zone(&[], &[]);
        zone.pdus = vec!["p9".into()];
        let found = run(&t, &zone, &AnomalyConfig::default(), super::detect);
        assert!(found.is_empty());
    }
}
