//! Communication faults, injected in the simulator through its control endpoint while
//! the collector runs: one CDU stops answering, then answers late (after the request
//! timeout, on the same connection), then answers busy (exception 6). Checked:
//!
//! * the other devices' poll timing: the spread of their response times after the 1 s
//!   ticks (mean absolute deviation from the median) during each fault stays within 10 % of the
//!   spread of a fault-free control, plus one millisecond (tokio's timer resolution:
//!   below it the comparison measures the machine, not the collector). The control is a
//!   second collector polling the same devices except the faulty one, in the same
//!   process over the same windows, so both see the same load of the shared machine (a
//!   fault-free window before the faults is compared the same way). No poll of theirs
//!   comes anywhere near the faulty device's 500 ms timeout; none is skipped;
//! * no value is ever attributed to the wrong request: every value collected from any
//!   device equals the simulator's reading of that field at one of the (paused, few)
//!   model states of the run; a late reply is never decoded;
//! * the faulty device is reported (health point `up = 0`, timeout and exception
//!   counters) and collected again by itself once the fault ends, with no restart.

mod support;

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use support::{same_number, Collector, Sim};
use tidewatch_collectors::modbus::HEALTH_MEASUREMENT;
use tidewatch_model::{FieldValue, Point};

const TARGET: &str = "dc2-mm03-cdu";
const WINDOW: Duration = Duration::from_secs(15);

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

/// Model readings of every collected device at one model state.
type Snapshot = HashMap<String, serde_json::Map<String, Value>>;

fn snapshot(sim: &Sim, ids: &[String]) -> Snapshot {
    ids.iter()
        .map(|id| (id.clone(), sim.readings(id)))
        .collect()
}

/// Lateness (ms after the whole second) of the first response of every poll of the
/// observed devices whose batch lies inside `[from, to)`.
fn lateness(batches: &[Vec<Point>], observed: &[String], from: i64, to: i64) -> Vec<f64> {
    let mut out = Vec::new();
    for b in batches {
        let first = b
            .iter()
            .filter(|p| p.measurement() != HEALTH_MEASUREMENT)
            .filter(|p| {
                p.tag_value("device")
                    .is_some_and(|d| observed.iter().any(|o| o == d))
            })
            .map(Point::timestamp_ns)
            .min();
        if let Some(ts) = first {
            if ts >= from && ts < to {
                out.push((ts % 1_000_000_000) as f64 / 1e6);
            }
        }
    }
    out
}

fn std_dev(xs: &[f64]) -> f64 {
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    (xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n).sqrt()
}

/// The jitter measure compared between windows: the mean absolute deviation of the
/// lateness from its median. It uses every poll (a tail quantile of some 80 polls per
/// window is too noisy on a shared machine); a fault that delayed the other devices
/// would raise it, and the maximum is checked separately.
fn spread(xs: &[f64]) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let median = v[v.len() / 2];
    v.iter().map(|x| (x - median).abs()).sum::<f64>() / v.len() as f64
}

fn max(xs: &[f64]) -> f64 {
    xs.iter().copied().fold(0.0, f64::max)
}

/// The first point with values of `device` stamped after `after_ns`, waiting up to
/// `limit`.
fn wait_for_values(
    collector: &Collector,
    device: &str,
    after_ns: i64,
    limit: Duration,
) -> Duration {
    let start = Instant::now();
    loop {
        let found = collector.batches().iter().flatten().any(|p| {
            p.measurement() == "cdu"
                && p.tag_value("device") == Some(device)
                && p.timestamp_ns() > after_ns
        });
        if found {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < limit,
            "{device} not collected again within {limit:?} after its fault ended"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn faults_stay_with_the_faulty_device() {
    let sim = Sim::start();
    sim.step(3600);
    // Every CDU (1 s polls, one endpoint each) and the facility meters of centre 2.
    let keep = |id: &str| id.ends_with("-cdu") || (id.starts_with("dc2-") && !id.contains("-mm"));
    let settings = r#"
        request_timeout = "500ms"
        backoff_initial = "200ms"
        backoff_max = "2s"
        busy_retry_delay = "100ms"
        busy_retries = 2
        "#;
    let config = sim.collector_config(settings, keep);
    // The control: a second collector, same settings, same devices but the faulty one,
    // running at the same time, so both see the same load of the (shared) machine.
    let control_config = sim.collector_config(settings, |id| keep(id) && id != TARGET);
    let ids: Vec<String> = sim
        .site
        .devices()
        .into_iter()
        .map(|d| d.id)
        .filter(|id| keep(id))
        .collect();
    let observed: Vec<String> = ids
        .iter()
        .filter(|id| id.ends_with("-cdu") && id.as_str() != TARGET)
        .cloned()
        .collect();
    assert_eq!(observed.len(), 7);

    let mut snapshots = vec![snapshot(&sim, &ids)];
    let mut collector = Collector::start(config, &sim);
    let mut control = Collector::start(control_config, &sim);
    std::thread::sleep(Duration::from_secs(3));

    // Fault-free window, entered like the faulted ones (a model step and a snapshot).
    sim.step(1);
    snapshots.push(snapshot(&sim, &ids));
    let free = (now_ns(), {
        std::thread::sleep(WINDOW);
        now_ns()
    });

    let mut windows = Vec::new();
    let mut recovery = Vec::new();
    for (kind, body) in [
        (
            "silent",
            format!(r#"{{"kind":"device_silent","target":"{TARGET}"}}"#),
        ),
        (
            "late",
            format!(r#"{{"kind":"device_late","target":"{TARGET}","magnitude":0.8}}"#),
        ),
        (
            "busy",
            format!(r#"{{"kind":"device_busy","target":"{TARGET}"}}"#),
        ),
    ] {
        let id = sim.inject(&body);
        snapshots.push(snapshot(&sim, &ids));
        let from = now_ns();
        std::thread::sleep(WINDOW);
        let to = now_ns();
        let target_stats = collector
            .running()
            .stats()
            .into_iter()
            .find(|s| s.device == TARGET)
            .expect("target stats");
        assert!(!target_stats.up, "{kind}: {target_stats:?}");
        windows.push((kind, from, to, target_stats));
        sim.clear(id);
        snapshots.push(snapshot(&sim, &ids));
        let cleared = now_ns();
        recovery.push((
            kind,
            wait_for_values(&collector, TARGET, cleared, Duration::from_secs(10)),
        ));
        // Let it settle before the next fault.
        std::thread::sleep(Duration::from_secs(2));
    }
    let final_stats = collector.running().stats();
    collector.stop();
    control.stop();
    let batches = collector.batches();
    let control_batches = control.batches();

    // Timing of the other devices, against the control collector over the same window.
    let expected_polls = observed.len() as f64 * WINDOW.as_secs_f64();
    let describe = |l: &[f64]| {
        format!(
            "{} polls, lateness mean abs deviation {:.3} ms, sd {:.3} ms, mean {:.3} ms, max {:.3} ms",
            l.len(),
            spread(l),
            std_dev(l),
            l.iter().sum::<f64>() / l.len() as f64,
            max(l)
        )
    };
    let all_windows: Vec<(&str, i64, i64)> = std::iter::once(("fault-free", free.0, free.1))
        .chain(windows.iter().map(|(k, f, t, _)| (*k, *f, *t)))
        .collect();
    for (kind, from, to) in all_windows {
        let l = lateness(&batches, &observed, from, to);
        let c = lateness(&control_batches, &observed, from, to);
        eprintln!(
            "{kind}: collector {}; control {}",
            describe(&l),
            describe(&c)
        );
        assert!(
            l.len() as f64 >= expected_polls * 0.9,
            "{kind}: other devices polled {} times, expected about {expected_polls}",
            l.len()
        );
        assert!(
            spread(&l) <= spread(&c) * 1.1 + 1.0,
            "{kind}: other devices' timing spread {:.3} ms vs {:.3} ms without the fault\n  collector {}\n  control {}",
            spread(&l),
            spread(&c),
            describe(&l),
            describe(&c)
        );
        // No poll of another device ever waited for the faulty one's timeout.
        assert!(
            max(&l) < 250.0,
            "{kind}: a poll of another device came {:.1} ms after its tick",
            max(&l)
        );
    }
    for (kind, took) in &recovery {
        eprintln!("{kind}: collected again {took:?} after the fault ended");
    }
    // The faulty device was reported with the right kind of error.
    let (_, _, _, silent) = &windows[0];
    assert!(silent.timeouts > 0, "{silent:?}");
    let (_, _, _, late) = &windows[1];
    assert!(late.timeouts > silent.timeouts, "{late:?}");
    let (_, _, _, busy) = &windows[2];
    assert!(busy.exceptions > 0, "{busy:?}");
    assert!(
        busy.last_error
            .as_deref()
            .unwrap_or("")
            .contains("exception 6"),
        "{busy:?}"
    );
    // Others never failed, nothing skipped, nothing misdecoded anywhere.
    for s in &final_stats {
        assert_eq!(s.decode_errors, 0, "{s:?}");
        if s.device != TARGET {
            assert!(s.up, "{s:?}");
            assert_eq!(
                (s.timeouts, s.exceptions, s.connect_errors, s.polls_skipped),
                (0, 0, 0, 0),
                "{s:?}"
            );
        }
    }

    // Every collected value equals the model's reading at one of the run's states.
    let mut checked = 0;
    let mut target_values = 0;
    for p in batches.iter().flatten() {
        if p.measurement() == HEALTH_MEASUREMENT {
            continue;
        }
        let device = p.tag_value("device").expect("device tag");
        for (name, v) in p.fields() {
            let ok = snapshots
                .iter()
                .any(|s| match (v, &s[device][name.as_str()]) {
                    (FieldValue::Float(x), Value::Number(t)) => {
                        same_number(*x, t.as_f64().unwrap_or(f64::NAN))
                    }
                    (FieldValue::String(x), Value::String(t)) => x == t,
                    _ => false,
                });
            assert!(ok, "{device}.{name} = {v:?} matches no model state");
            checked += 1;
            if device == TARGET {
                target_values += 1;
            }
        }
    }
    eprintln!("{checked} values checked, {target_values} of them from {TARGET}");

    // The health points said so too.
    let target_health: Vec<&Point> = batches
        .iter()
        .flatten()
        .filter(|p| p.measurement() == HEALTH_MEASUREMENT && p.tag_value("device") == Some(TARGET))
        .collect();
    assert!(target_health
        .iter()
        .any(|p| p.field_value("up") == Some(&FieldValue::Integer(0))));
    assert_eq!(
        target_health.last().and_then(|p| p.field_value("up")),
        Some(&FieldValue::Integer(1))
    );

    // Only reads reached the simulator: the exceptions it counted are the busy replies
    // (and nothing was refused as a write).
    let m = sim.get("/modbus");
    assert_eq!(m["writes"], 0, "{m}");
}
