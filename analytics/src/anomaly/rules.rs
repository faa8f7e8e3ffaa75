//! The alarm rules of domain.md's table, on the points the device profiles have.
//!
//! | rule | condition (defaults) | severity | hold | score |
//! |---|---|---|---|---|
//! | `supply_temperature` | median of the redundant supply sensors outside setpoint +/- 2 K; clears 1 K inside (hysteresis); suppressed 20 min after the loop's pumps start | warning | 2 min | deviation / band |
//! | `low_flow` | secondary flow below 90 % of the flow setpoint; below 5 % of design = no flow | warning; no flow critical | 100 s; no flow at once | setpoint / flow |
//! | `pump_trip` | a pump's fault contact on | warning; critical with no pump running | at once | 1 |
//! | `pump_full_low_flow` | a pump at >= 99 % speed and flow below 90 % of the setpoint | warning | 100 s | setpoint / flow |
//! | `filter_dirty` | filter dP above 0.6 bar | warning | 1 min | dP / limit |
//! | `valve_mismatch` | valve feedback differs from demand by more than 10 % points | warning | 1 min | difference / limit |
//! | `dew_point_margin` | supply - room dew point below 2 K (or projected below 2 K within 30 min at its 2-min rate of fall); at or below 0 K critical | warning / critical | 30 s | K short of the 2 K margin |
//! | `leak` | a leak rope or the CDU's leak contact wet | critical | at once | 1 |
//! | `inlet_temperature` | rack inlet above 27 C; above 32 C critical | warning / critical | 1 min | temperature / 27 C |
//! | `phase_current` | PDU phase current at 80 % of the breaker (the site's rating of the zone, or the configuration's); 90 % critical | warning / critical | 30 s | current / breaker |
//!
//! The flow setpoint is the CDU's own control law as the site describes it (flow per kW
//! of IT load, between its minimum flow and the design flow, following the load with
//! a 30 s lag): the profiles have no setpoint register. The IT load is the sum of the
//! module's PDUs.

use super::config::ns;
use super::episodes::{episodes, Episode, Holds, Level};
use super::{Anomaly, AnomalyKind, Channel, ZoneContext};

/// Judges each sample of a timeline and returns the episodes with their peak index.
pub(crate) fn judge(
    times: &[i64],
    holds: Holds,
    mut judge: impl FnMut(usize, i64) -> (Level, f64),
) -> Vec<(Episode, usize)> {
    let samples: Vec<(i64, Level, f64)> = times
        .iter()
        .enumerate()
        .map(|(i, &t)| {
            let (level, score) = judge(i, t);
            (t, level, score)
        })
        .collect();
    episodes(samples, holds)
        .into_iter()
        .map(|e| {
            let i = times
                .partition_point(|&x| x < e.peak_ns)
                .min(times.len().saturating_sub(1));
            (e, i)
        })
        .collect()
}

/// Runs the rules of one zone.
pub(crate) fn detect(ctx: &ZoneContext, out: &mut Vec<Anomaly>) {
    loop_rules(ctx, out);
    leaks(ctx, out);
    inlets(ctx, out);
    phases(ctx, out);
}

fn loop_rules(ctx: &ZoneContext, out: &mut Vec<Anomaly>) {
    let Some(lp) = &ctx.zone.cooling_loop else {
        return;
    };
    let c = ctx.config;
    let gap = ns(c.max_gap);
    let t = ctx.telemetry;
    let cdu = lp.cdu.as_str();
    let tags = ctx.tags(cdu);
    let get = |f: &str| t.get(cdu, f);
    let at = |ch: Option<&Channel>, time: i64| ch.and_then(|c| c.at(time, gap));
    let times = &ctx.times;

    // Supply temperature vs setpoint, with hysteresis and start-up suppression.
    let setpoint = get("supply_setpoint_c");
    let band = c.supply_band_k;
    let sp_at = |time: i64| at(setpoint, time).unwrap_or(lp.supply_setpoint_c);
    for (e, i) in judge(times, Holds::new(ns(c.supply_hold), gap), |i, time| {
        let Some(supply) = ctx.supply[i] else {
            return (Level::Unknown, 0.0);
        };
        if ctx.starting_up(time) {
            return (Level::Unknown, 0.0);
        }
        let dev = (supply - sp_at(time)).abs();
        let level = if dev > band {
            Level::Warning
        } else if dev > band - c.supply_hysteresis_k {
            Level::Band
        } else {
            Level::Normal
        };
        (level, dev / band)
    }) {
        let (v, sp) = (ctx.supply[i].unwrap_or(f64::NAN), sp_at(times[i]));
        out.push(Anomaly::from_episode(
            AnomalyKind::SupplyTemperature,
            cdu,
            None,
            tags.clone(),
            &e,
            Some(v),
            format!(
                "Secondary supply temperature of {cdu} is {v:.1} C against a setpoint of {sp:.1} C: check the facility water supply temperature and the CDU's primary control valve."
            ),
            format!(
                "{cdu} 二次侧供液温度 {v:.1} °C，设定值 {sp:.1} °C：请检查一次侧冷却水供水温度和 CDU 一次侧调节阀。"
            ),
        ));
    }

    // Low flow and no flow.
    let flow = get("secondary_flow_lpm");
    let flow_sp = ctx.flow_setpoint();
    let no_flow = c.no_flow_share * lp.design_flow_lpm;
    let flow_at = |i: usize| at(flow, times[i]);
    let low = |i: usize| -> Option<(bool, f64, f64)> {
        let f = flow_at(i)?;
        let sp = flow_sp.get(i).copied().flatten()?;
        Some((f < c.low_flow_ratio * sp, f, sp))
    };
    let holds = Holds::new(ns(c.low_flow_hold), gap).critical_after(0);
    for (e, i) in judge(times, holds, |i, _| {
        let Some(f) = flow_at(i) else {
            return (Level::Unknown, 0.0);
        };
        if f < no_flow {
            let sp = flow_sp
                .get(i)
                .copied()
                .flatten()
                .unwrap_or(lp.design_flow_lpm);
            return (Level::Critical, sp / f.max(1e-3));
        }
        match low(i) {
            Some((true, f, sp)) => (Level::Warning, sp / f.max(1e-3)),
            Some((false, ..)) => (Level::Normal, 0.0),
            None => (Level::Normal, 0.0), // no setpoint known: only "no flow" is judged
        }
    }) {
        let v = flow_at(i).unwrap_or(f64::NAN);
        let sp = flow_sp.get(i).copied().flatten().unwrap_or(f64::NAN);
        out.push(Anomaly::from_episode(
            AnomalyKind::LowFlow,
            cdu,
            Some("secondary_flow_lpm"),
            tags.clone(),
            &e,
            Some(v),
            format!(
                "Secondary flow of {cdu} is {v:.0} L/min, below the {sp:.0} L/min its IT load needs: check the pumps, the strainer and the loop's valves."
            ),
            format!(
                "{cdu} 二次侧流量 {v:.0} L/min，低于当前 IT 负载所需的 {sp:.0} L/min：请检查水泵、过滤器和环路阀门。"
            ),
        ));
    }

    // Pumps: tripped, or at full speed with low flow.
    let running: Vec<Option<&Channel>> = ["pump_1_running", "pump_2_running"]
        .iter()
        .map(|f| get(f))
        .collect();
    for n in 1..=2usize {
        let Some(fault) = get(&format!("pump_{n}_fault")) else {
            continue;
        };
        let field = format!("pump_{n}_fault");
        for (e, i) in judge(&fault.time_ns, Holds::new(0, gap), |i, time| {
            if fault.value[i] < 0.5 {
                return (Level::Normal, 0.0);
            }
            let others_running = running
                .iter()
                .enumerate()
                .filter(|(k, _)| *k + 1 != n)
                .any(|(_, r)| at(*r, time).is_some_and(|v| v >= 0.5));
            let level = if others_running {
                Level::Warning
            } else {
                Level::Critical
            };
            (level, 1.0)
        }) {
            let still = running
                .iter()
                .filter(|r| at(**r, fault.time_ns[i]).is_some_and(|v| v >= 0.5))
                .count();
            out.push(Anomaly::from_episode(
                AnomalyKind::PumpTrip,
                cdu,
                Some(&field),
                tags.clone(),
                &e,
                Some(1.0),
                format!(
                    "Pump {n} of {cdu} has tripped ({still} pump(s) still running): reset or replace it before the loop loses its redundancy."
                ),
                format!(
                    "{cdu} {n} 号水泵故障停机（仍有 {still} 台运行）：请尽快复位或更换，恢复冗余。"
                ),
            ));
        }
    }
    let speeds: Vec<&Channel> = ["pump_1_speed_pct", "pump_2_speed_pct"]
        .iter()
        .filter_map(|f| get(f))
        .collect();
    if !speeds.is_empty() {
        for (e, i) in judge(times, Holds::new(ns(c.low_flow_hold), gap), |i, time| {
            let full = speeds
                .iter()
                .any(|s| s.at(time, gap).is_some_and(|v| v >= c.pump_full_pct));
            match low(i) {
                Some((true, f, sp)) if full => (Level::Warning, sp / f.max(1e-3)),
                Some(_) => (Level::Normal, 0.0),
                None => (Level::Unknown, 0.0),
            }
        }) {
            let v = flow_at(i).unwrap_or(f64::NAN);
            let sp = flow_sp.get(i).copied().flatten().unwrap_or(f64::NAN);
            out.push(Anomaly::from_episode(
                AnomalyKind::PumpFullLowFlow,
                cdu,
                Some("secondary_flow_lpm"),
                tags.clone(),
                &e,
                Some(v),
                format!(
                    "The pumps of {cdu} run at full speed yet deliver only {v:.0} of the {sp:.0} L/min needed: look for a blockage (strainer, a closed valve) or a worn pump."
                ),
                format!(
                    "{cdu} 水泵已满速运行，流量仅 {v:.0} L/min（需 {sp:.0} L/min）：请排查堵塞（过滤器、误关阀门）或水泵磨损。"
                ),
            ));
        }
    }

    // Filter dirty.
    if let Some(dp) = get("filter_dp_bar") {
        let limit = c.filter_dp_bar;
        for (e, i) in judge(&dp.time_ns, Holds::new(ns(c.filter_hold), gap), |i, _| {
            let v = dp.value[i];
            let level = if v > limit {
                Level::Warning
            } else {
                Level::Normal
            };
            (level, v / limit)
        }) {
            let v = dp.value[i];
            out.push(Anomaly::from_episode(
                AnomalyKind::FilterDirty,
                cdu,
                Some("filter_dp_bar"),
                tags.clone(),
                &e,
                Some(v),
                format!(
                    "Filter differential pressure of {cdu} is {v:.2} bar, above {limit:.2} bar: clean or replace the strainer."
                ),
                format!("{cdu} 过滤器压差 {v:.2} bar，超过 {limit:.2} bar：请清洗或更换过滤器。"),
            ));
        }
    }

    // Valve feedback vs demand.
    if let (Some(demand), Some(feedback)) = (get("valve_demand_pct"), get("valve_feedback_pct")) {
        let limit = c.valve_mismatch_pct;
        for (e, i) in judge(
            &feedback.time_ns,
            Holds::new(ns(c.valve_hold), gap),
            |i, time| {
                let Some(d) = demand.at(time, gap) else {
                    return (Level::Unknown, 0.0);
                };
                let diff = (feedback.value[i] - d).abs();
                let level = if diff > limit {
                    Level::Warning
                } else {
                    Level::Normal
                };
                (level, diff / limit)
            },
        ) {
            let v = feedback.value[i];
            let d = demand.at(feedback.time_ns[i], gap).unwrap_or(f64::NAN);
            out.push(Anomaly::from_episode(
                AnomalyKind::ValveMismatch,
                cdu,
                Some("valve_feedback_pct"),
                tags.clone(),
                &e,
                Some(v),
                format!(
                    "Valve feedback of {cdu} reads {v:.0} % while the controller demands {d:.0} %: check the valve actuator and its linkage."
                ),
                format!("{cdu} 阀门反馈 {v:.0}%，而控制器指令为 {d:.0}%：请检查阀门执行器及连杆。"),
            ));
        }
    }

    // The CDU's own leak contact.
    if let Some(leak) = get("leak_detected") {
        leak_episodes(ctx, leak, cdu, out);
    }

    // Dew-point margin, with its forecast.
    dew_point(ctx, out);
}

fn leak_episodes(ctx: &ZoneContext, ch: &Channel, device: &str, out: &mut Vec<Anomaly>) {
    let gap = ns(ctx.config.max_gap);
    for (e, _) in judge(&ch.time_ns, Holds::new(0, gap), |i, _| {
        if ch.value[i] >= 0.5 {
            (Level::Critical, 1.0)
        } else {
            (Level::Normal, 0.0)
        }
    }) {
        out.push(Anomaly::from_episode(
            AnomalyKind::Leak,
            device,
            Some(&ch.field),
            ctx.tags(device),
            &e,
            Some(1.0),
            format!(
                "Leak detected by {device}: isolate the loop section and inspect the CDU and the piping under the racks now."
            ),
            format!("{device} 检测到漏液：请立即隔离该段环路，检查 CDU 及机柜下方管路。"),
        ));
    }
}

fn leaks(ctx: &ZoneContext, out: &mut Vec<Anomaly>) {
    for sensor in &ctx.zone.leaks {
        if let Some(ch) = ctx.telemetry.get(sensor, "wet") {
            leak_episodes(ctx, ch, sensor, out);
        }
    }
}

fn dew_point(ctx: &ZoneContext, out: &mut Vec<Anomaly>) {
    let (Some(lp), Some(sensor)) = (&ctx.zone.cooling_loop, &ctx.zone.dew_point) else {
        return;
    };
    let Some(dew) = ctx.telemetry.get(sensor, "dew_point_c") else {
        return;
    };
    let c = ctx.config;
    let gap = ns(c.max_gap);
    let times = &ctx.times;
    let margin: Vec<Option<f64>> = times
        .iter()
        .zip(&ctx.supply)
        .map(|(&t, s)| Some((*s)? - dew.at(t, gap)?))
        .collect();
    let slope = rolling_slope(times, &margin, ns(c.dew_slope_window));
    let lookahead_s = c.dew_lookahead.as_secs_f64();
    let (warn, crit) = (c.dew_margin_warning_k, c.dew_margin_critical_k);
    let cdu = lp.cdu.as_str();
    for (e, i) in judge(times, Holds::new(ns(c.dew_hold), gap), |i, _| {
        let Some(m) = margin[i] else {
            return (Level::Unknown, 0.0);
        };
        if m <= crit {
            return (Level::Critical, warn - m);
        }
        if m < warn {
            return (Level::Warning, warn - m);
        }
        match slope[i] {
            Some(s) if s < 0.0 && m + s * lookahead_s < warn => {
                (Level::Warning, warn - (m + s * lookahead_s))
            }
            _ => (Level::Normal, 0.0),
        }
    }) {
        let m = margin[i].unwrap_or(f64::NAN);
        let d = dew.at(times[i], gap).unwrap_or(f64::NAN);
        let (en, zh) = if m < warn {
            (
                format!(
                    "Supply of {cdu} is only {m:.1} K above the room dew point ({d:.1} C): dehumidify the room or raise the supply setpoint before condensation forms on the cold plates and pipes."
                ),
                format!(
                    "{cdu} 供液温度仅比室内露点（{d:.1} °C）高 {m:.1} K：请在冷板和管路结露前除湿或提高供液设定温度。"
                ),
            )
        } else {
            let rate = slope[i].unwrap_or(0.0) * 60.0;
            (
                format!(
                    "The room dew point of {cdu}'s module is rising fast ({d:.1} C, margin {m:.1} K falling {:.2} K/min): find the humidity source and dehumidify before the margin is gone.",
                    -rate
                ),
                format!(
                    "{cdu} 所在模块室内露点快速上升（{d:.1} °C，裕量 {m:.1} K，每分钟下降 {:.2} K）：请查找湿源并在裕量耗尽前除湿。",
                    -rate
                ),
            )
        };
        out.push(Anomaly::from_episode(
            AnomalyKind::DewPointMargin,
            cdu,
            Some("dew_point_margin"),
            ctx.tags(cdu),
            &e,
            Some(m),
            en,
            zh,
        ));
    }
}

/// Least-squares slope (units per second) of `values` over the trailing `window`, per
/// sample; `None` with fewer than 3 samples in the window or where the value is missing.
pub(crate) fn rolling_slope(
    times: &[i64],
    values: &[Option<f64>],
    window: i64,
) -> Vec<Option<f64>> {
    let mut out = Vec::with_capacity(times.len());
    let Some(&t0) = times.first() else {
        return out;
    };
    let x = |i: usize| (times[i] - t0) as f64 / 1e9;
    let (mut n, mut sx, mut sy, mut sxx, mut sxy) = (0.0, 0.0, 0.0, 0.0, 0.0);
    let mut lo = 0;
    for i in 0..times.len() {
        if let Some(y) = values[i] {
            let xi = x(i);
            n += 1.0;
            sx += xi;
            sy += y;
            sxx += xi * xi;
            sxy += xi * y;
        }
        while times[i] - times[lo] > window {
            if let Some(y) = values[lo] {
                let xl = x(lo);
                n -= 1.0;
                sx -= xl;
                sy -= y;
                sxx -= xl * xl;
                sxy -= xl * y;
            }
            lo += 1;
        }
        let den = n * sxx - sx * sx;
        let slope = (values[i].is_some() && n >= 3.0 && den.abs() > 1e-9)
            .then(|| (n * sxy - sx * sy) / den)
            .filter(|s| s.is_finite());
        out.push(slope);
    }
    out
}

fn inlets(ctx: &ZoneContext, out: &mut Vec<Anomaly>) {
    let c = ctx.config;
    let gap = ns(c.max_gap);
    for sensor in &ctx.zone.inlets {
        let Some(ch) = ctx.telemetry.get(sensor, "temperature_c") else {
            continue;
        };
        for (e, i) in judge(&ch.time_ns, Holds::new(ns(c.inlet_hold), gap), |i, _| {
            let v = ch.value[i];
            let level = if v > c.inlet_critical_c {
                Level::Critical
            } else if v > c.inlet_warning_c {
                Level::Warning
            } else {
                Level::Normal
            };
            (level, v / c.inlet_warning_c)
        }) {
            let v = ch.value[i];
            let limit = if e.severity == super::Severity::Critical {
                c.inlet_critical_c
            } else {
                c.inlet_warning_c
            };
            out.push(Anomaly::from_episode(
                AnomalyKind::InletTemperature,
                sensor,
                Some("temperature_c"),
                ctx.tags(sensor),
                &e,
                Some(v),
                format!(
                    "Rack inlet air at {sensor} is {v:.1} C, above {limit:.0} C: check the containment doors, blanking panels and the in-row units of the module."
                ),
                format!(
                    "{sensor} 机柜进风温度 {v:.1} °C，超过 {limit:.0} °C：请检查封闭通道门、盲板和列间空调。"
                ),
            ));
        }
    }
}

fn phases(ctx: &ZoneContext, out: &mut Vec<Anomaly>) {
    let c = ctx.config;
    let gap = ns(c.max_gap);
    for pdu in &ctx.zone.pdus {
        let breaker = c.breaker_a(pdu, ctx.zone.pdu_breaker_a);
        for (phase, field) in [
            ("L1", "current_l1"),
            ("L2", "current_l2"),
            ("L3", "current_l3"),
        ] {
            let Some(ch) = ctx.telemetry.get(pdu, field) else {
                continue;
            };
            for (e, i) in judge(&ch.time_ns, Holds::new(ns(c.phase_hold), gap), |i, _| {
                let r = ch.value[i] / breaker;
                let level = if r >= c.phase_critical_ratio {
                    Level::Critical
                } else if r >= c.phase_warning_ratio {
                    Level::Warning
                } else {
                    Level::Normal
                };
                (level, r)
            }) {
                let v = ch.value[i];
                let pct = 100.0 * v / breaker;
                out.push(Anomaly::from_episode(
                    AnomalyKind::PhaseCurrent,
                    pdu,
                    Some(field),
                    ctx.tags(pdu),
                    &e,
                    Some(v),
                    format!(
                        "Phase {phase} of {pdu} draws {v:.1} A, {pct:.0} % of its {breaker:.0} A breaker: move load to another phase or rack before the breaker trips."
                    ),
                    format!(
                        "{pdu} {phase} 相电流 {v:.1} A，达到 {breaker:.0} A 断路器的 {pct:.0}%：请在跳闸前将负载转移到其他相或机柜。"
                    ),
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::super::*;
    use super::*;

    fn cdu_with(fields: &[(&str, Vec<f64>)]) -> Telemetry {
        let mut t = Telemetry::new();
        for (f, v) in fields {
            t.insert(channel("cdu", "cdu", f, v));
        }
        t
    }

    fn only(found: &[Anomaly], kind: AnomalyKind) -> Vec<&Anomaly> {
        found.iter().filter(|a| a.kind == kind).collect()
    }

    #[test]
    fn supply_temperature_with_hold_hysteresis_and_start_up() {
        // Samples every 10 s, setpoint 36 C (band +/- 2 K, clears inside 1 K).
        // 0-90 s at 36; 100-290 s at 38.5 (outside from 100 s: raised at 100 + 120 = 220 s);
        // 300-390 s at 37.5 (in the band: still on); 400 s on at 36.5 (cleared at 400 s).
        let mut v = vec![36.0; 10];
        v.extend([38.5; 20]);
        v.extend([37.5; 10]);
        v.extend([36.5; 10]);
        let t = cdu_with(&[
            ("secondary_flow_lpm", vec![400.0; 50]),
            ("secondary_supply_temp_1", v.clone()),
            ("secondary_supply_temp_2", v.clone()),
            (
                "secondary_supply_temp_3",
                v.iter().map(|x| x + 0.1).collect(),
            ),
            ("pump_1_running", vec![1.0; 50]),
        ]);
        let config = AnomalyConfig::default();
        let found = run(&t, &zone(&[], &[]), &config, super::detect);
        let a = only(&found, AnomalyKind::SupplyTemperature);
        assert_eq!(a.len(), 1, "{found:#?}");
        assert_eq!((s(a[0].start_ns), s(a[0].detected_ns)), (100, 220));
        assert_eq!(a[0].end_ns.map(s), Some(400));
        assert_eq!(a[0].severity, Severity::Warning);
        assert!((a[0].score - 1.25).abs() < 1e-9);
        assert!(a[0].message_en.contains("38.5 C"), "{}", a[0].message_en);
        assert!(a[0].message_zh.contains("二次侧供液温度"));

        // The same excursion right after the pumps started: suppressed.
        let mut running = vec![0.0; 5];
        running.extend([1.0; 45]);
        let t = cdu_with(&[
            ("secondary_flow_lpm", vec![400.0; 50]),
            ("secondary_supply_temp_1", v.clone()),
            ("pump_1_running", running),
        ]);
        let found = run(&t, &zone(&[], &[]), &config, super::detect);
        assert!(
            only(&found, AnomalyKind::SupplyTemperature).is_empty(),
            "{found:#?}"
        );
    }

    #[test]
    fn low_flow_no_flow_and_pumps() {
        // IT 400 kW (two PDUs of 200): setpoint 480 L/min, 90 % = 432.
        // Flow 470 until 190 s; 300 L/min from 200 s (raised at 200 + 100 = 300 s);
        // 0 from 400 s (no flow: critical at once); back to 470 at 500 s.
        let mut flow = vec![470.0; 20];
        flow.extend([300.0; 20]);
        flow.extend([0.0; 10]);
        flow.extend([470.0; 10]);
        let n = flow.len();
        let mut fault = vec![0.0; 20];
        fault.extend([1.0; 40]);
        let mut running1 = vec![1.0; 20];
        running1.extend([0.0; 40]);
        let mut speed2 = vec![70.0; 20];
        speed2.extend([100.0; 40]);
        let mut t = cdu_with(&[
            ("secondary_flow_lpm", flow),
            ("pump_1_fault", fault),
            ("pump_1_running", running1),
            ("pump_2_running", vec![1.0; n]),
            ("pump_2_speed_pct", speed2),
        ]);
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
        let low = only(&found, AnomalyKind::LowFlow);
        assert_eq!(low.len(), 1, "{found:#?}");
        assert_eq!((s(low[0].start_ns), s(low[0].detected_ns)), (200, 300));
        assert_eq!(low[0].end_ns.map(s), Some(500));
        assert_eq!(
            low[0].severity,
            Severity::Critical,
            "no flow came within it"
        );
        let trip = only(&found, AnomalyKind::PumpTrip);
        assert_eq!(trip.len(), 1);
        assert_eq!((s(trip[0].start_ns), s(trip[0].detected_ns)), (200, 200));
        assert_eq!(trip[0].end_ns, None);
        assert_eq!(trip[0].severity, Severity::Warning, "pump 2 still runs");
        let full = only(&found, AnomalyKind::PumpFullLowFlow);
        assert_eq!(full.len(), 1);
        assert_eq!((s(full[0].start_ns), s(full[0].detected_ns)), (200, 300));
        assert_eq!(full[0].end_ns.map(s), Some(500));
    }

    #[test]
    fn filter_valve_and_leak() {
        // Filter dP 0.7 bar from 50 s to 150 s (raised at 110 s, ends at 160 s).
        let dp: Vec<f64> = (0..30)
            .map(|i| if (5..16).contains(&i) { 0.7 } else { 0.3 })
            .collect();
        // Valve feedback 20 points off from 100 s on (raised at 160 s, ongoing).
        let fb: Vec<f64> = (0..30).map(|i| if i >= 10 { 70.0 } else { 50.0 }).collect();
        // Leak contact wet at 250 s only (critical at once, ends 260 s).
        let leak: Vec<f64> = (0..30).map(|i| if i == 25 { 1.0 } else { 0.0 }).collect();
        let mut t = cdu_with(&[
            ("filter_dp_bar", dp),
            ("valve_demand_pct", vec![50.0; 30]),
            ("valve_feedback_pct", fb),
            ("leak_detected", leak),
        ]);
        t.insert(channel("leak-cdu", "leak", "wet", &[0.0, 1.0, 1.0, 0.0]));
        let found = run(
            &t,
            &zone(&[], &[]),
            &AnomalyConfig::default(),
            super::detect,
        );
        let f = only(&found, AnomalyKind::FilterDirty);
        assert_eq!(f.len(), 1, "{found:#?}");
        assert_eq!(
            (s(f[0].start_ns), s(f[0].detected_ns), f[0].end_ns.map(s)),
            (50, 110, Some(160))
        );
        let v = only(&found, AnomalyKind::ValveMismatch);
        assert_eq!(
            (s(v[0].start_ns), s(v[0].detected_ns), v[0].end_ns),
            (100, 160, None)
        );
        let l = only(&found, AnomalyKind::Leak);
        assert_eq!(l.len(), 2);
        let cdu = l.iter().find(|a| a.device == "cdu").unwrap();
        assert_eq!((s(cdu.detected_ns), cdu.end_ns.map(s)), (250, Some(260)));
        assert_eq!(cdu.severity, Severity::Critical);
        let rope = l.iter().find(|a| a.device == "leak-cdu").unwrap();
        assert_eq!((s(rope.start_ns), rope.end_ns.map(s)), (10, Some(30)));
    }

    #[test]
    fn dew_point_margin_and_its_forecast() {
        // Supply 36 C. Dew point 20 C until 300 s, then rising 1 K/min: the margin falls
        // from 16 K at 1 K/min. The forecast needs the least-squares slope over the last
        // 2 min (13 samples) to project the margin below 2 K within 30 min: at 360 s the
        // margin is 15 K and the window [240, 360] s, half flat, gives -0.00833 K/s
        // (15 - 0.00833 x 1800 = 0 < 2); at 350 s it gives -0.00641 K/s (15.17 - 11.5 >
        // 2). So it starts at 360 s and is raised after the 30 s hold, at 390 s. The
        // margin reaches 0 K at 300 + 16 min = 1260 s: critical. Still going at the end.
        let dew: Vec<f64> = (0..150)
            .map(|i| {
                let t = i as f64 * 10.0;
                if t <= 300.0 {
                    20.0
                } else {
                    20.0 + (t - 300.0) / 60.0
                }
            })
            .collect();
        let mut t = cdu_with(&[
            ("secondary_flow_lpm", vec![400.0; 150]),
            ("secondary_supply_temp_1", vec![36.0; 150]),
        ]);
        t.insert(channel("dew", "dew_point", "dew_point_c", &dew));
        let found = run(
            &t,
            &zone(&[], &[]),
            &AnomalyConfig::default(),
            super::detect,
        );
        let d = only(&found, AnomalyKind::DewPointMargin);
        assert_eq!(d.len(), 1, "{found:#?}");
        assert_eq!((s(d[0].start_ns), s(d[0].detected_ns)), (360, 390));
        assert_eq!(d[0].end_ns, None);
        assert_eq!(
            d[0].severity,
            Severity::Critical,
            "the margin reached 0 K at 1260 s"
        );
        // A steady dew point 1 K below the supply: the margin rule alone, warning.
        let mut t = cdu_with(&[
            ("secondary_flow_lpm", vec![400.0; 20]),
            ("secondary_supply_temp_1", vec![36.0; 20]),
        ]);
        t.insert(channel("dew", "dew_point", "dew_point_c", &[35.0; 20]));
        let found = run(
            &t,
            &zone(&[], &[]),
            &AnomalyConfig::default(),
            super::detect,
        );
        let d = only(&found, AnomalyKind::DewPointMargin);
        assert_eq!((s(d[0].start_ns), s(d[0].detected_ns)), (0, 30));
        assert_eq!(d[0].severity, Severity::Warning);
        assert!(
            d[0].message_en.contains("only 1.0 K"),
            "{}",
            d[0].message_en
        );
    }

    #[test]
    fn inlet_and_phase_current() {
        // Inlet 28 C from 100 s to 300 s (warning raised at 160 s), 33 C from 200 s.
        let inlet: Vec<f64> = (0..40)
            .map(|i| match i {
                10..=19 => 28.0,
                20..=30 => 33.0,
                _ => 24.0,
            })
            .collect();
        // Phase L1 at 30 A (94 % of 32 A) from 50 s: critical at 80 s.
        let current: Vec<f64> = (0..40).map(|i| if i >= 5 { 30.0 } else { 20.0 }).collect();
        let mut t = Telemetry::new();
        t.insert(channel("r01-inlet", "rack_inlet", "temperature_c", &inlet));
        t.insert(channel("pdu", "rack_pdu", "current_l1", &current));
        t.insert(channel("pdu", "rack_pdu", "current_l2", &[20.0; 40]));
        let mut zone = zone(&["pdu"], &["r01-inlet"]);
        zone.cooling_loop = None;
        let found = run(&t, &zone, &AnomalyConfig::default(), super::detect);
        let i = only(&found, AnomalyKind::InletTemperature);
        assert_eq!(i.len(), 1, "{found:#?}");
        assert_eq!(
            (s(i[0].start_ns), s(i[0].detected_ns), i[0].end_ns.map(s)),
            (100, 160, Some(310))
        );
        assert_eq!(i[0].severity, Severity::Critical);
        let p = only(&found, AnomalyKind::PhaseCurrent);
        assert_eq!(p.len(), 1);
        assert_eq!(
            (s(p[0].start_ns), s(p[0].detected_ns), p[0].end_ns),
            (50, 80, None)
        );
        assert_eq!(p[0].field.as_deref(), Some("current_l1"));
        assert!((p[0].score - 30.0 / 32.0).abs() < 1e-9);
        assert!(
            p[0].message_zh.contains("L1 相电流 30.0 A"),
            "{}",
            p[0].message_zh
        );
    }

    #[test]
    fn slopes() {
        let times: Vec<i64> = (0..10).map(|i| i * STEP).collect();
        let values: Vec<Option<f64>> = (0..10).map(|i| Some(2.0 * i as f64)).collect();
        let s = rolling_slope(&times, &values, 30 * 1_000_000_000);
        assert_eq!(s[1], None);
        assert!((s[5].unwrap() - 0.2).abs() < 1e-9);
        let mut holes = values.clone();
        holes[6] = None;
        assert_eq!(rolling_slope(&times, &holes, 30 * 1_000_000_000)[6], None);
    }
}
