//! Communication faults, injected in the simulator through its control endpoint while
//! the collector runs: one CDU stops answering, then answers late (after the request
//! timeout, on the same connection), then answers busy (exception 6). Checked:
//!
//! * the other devices' poll timing: the spread of their response times around the
//!   1 s ticks during each fault stays within 10 % of the spread in a fault-free window
//!   of the same run (plus one millisecond, the timer's resolution), and none of their
//!   polls is skipped;
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
const WINDOW: Duration = Duration::from_secs(12);

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
    let config = sim.collector_config(
        r#"
        request_timeout = "500ms"
        backoff_initial = "200ms"
        backoff_max = "2s"
        busy_retry_delay = "100ms"
        busy_retries = 2
        "#,
        keep,
    );
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
    let batches = collector.batches();

    // Timing of the other devices.
    let base = lateness(&batches, &observed, free.0, free.1);
    let base_sd = std_dev(&base);
    eprintln!(
        "fault-free: {} polls, lateness sd {base_sd:.3} ms, mean {:.3} ms",
        base.len(),
        base.iter().sum::<f64>() / base.len() as f64
    );
    let expected_polls = observed.len() as f64 * WINDOW.as_secs_f64();
    assert!(
        base.len() as f64 >= expected_polls * 0.9,
        "{} polls",
        base.len()
    );
    for (kind, from, to, stats) in &windows {
        let l = lateness(&batches, &observed, *from, *to);
        let sd = std_dev(&l);
        eprintln!(
            "{kind}: {} polls, lateness sd {sd:.3} ms, mean {:.3} ms; target {stats:?}",
            l.len(),
            l.iter().sum::<f64>() / l.len() as f64
        );
        assert!(
            l.len() as f64 >= expected_polls * 0.9,
            "{kind}: other devices polled {} times, expected about {expected_polls}",
            l.len()
        );
        assert!(
            sd <= base_sd * 1.1 + 1.0,
            "{kind}: other devices' timing spread {sd:.3} ms vs {base_sd:.3} ms fault-free"
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
            let ok = snapshots.iter().any(|s| match (v, &s[device][name]) {
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
