//! Resident memory of a collector process handling 50,000 series. The target:
//! under 150 MB.
//!
//! Why MQTT. A series is a measurement plus a tag set. The Modbus collector's series are
//! its devices (one tag set per device): 50,000 of them would be 50,000 Modbus devices
//! in one collector, some hundred times the simulated park and more than a collector
//! instance polls (sites shard devices over collectors). 50,000 MQTT rack sensors, each
//! its own topic and tag set, is what one collector behind a park-wide broker does
//! meet: every rack of several data halls with inlet, outlet and humidity sensors.
//!
//! How it runs. The bench starts a Mosquitto of its own (free loopback port,
//! persistence off) and re-executes itself as the collector process
//! (`TW_BENCH_ROLE=collector`, `TW_BENCH_SERIES=S`), so the process measured holds
//! nothing but the collector: a tokio multi-thread runtime (2 workers), the
//! `MqttCollector` with the README's rack-inlet subscription (topic levels to the tags
//! `centre`, `zone`, `rack`, plus `sensor`), and a sink that is a bounded mpsc channel
//! drained by a task that counts the points and drops them (accepted = enqueued: the
//! store's memory is not the collector's). The child reports `VmRSS` and `VmHWM` (peak)
//! from /proc/self/status as JSON lines: before the collector starts (the baseline),
//! once subscribed, and after each round. The parent publishes (rumqttc, QoS 1) one
//! message per series per round, waiting for the child's report before the next round.
//!
//! The same load with 5,000 series and ten times the rounds (the same number of
//! messages) shows how memory grows with series; runs alternate 50,000 / 5,000.
//!
//! Run: `cargo bench -p tidewatch-collectors --bench memory_series`; results are printed
//! and written to BENCHMARKS.md.

mod common;
#[path = "../../fixtures/benches/report.rs"]
mod report;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tidewatch_collectors::mqtt::{MqttCollector, MqttConfig};
use tidewatch_model::Point;

const COMMAND: &str = "cargo bench -p tidewatch-collectors --bench memory_series";
const SECTION: &str = "Collectors: resident memory with 50,000 series";
const TARGET_MB: f64 = 150.0;
const SERIES: usize = 50_000;
const SMALL_SERIES: usize = 5_000;
/// Messages per run: rounds of one message per series.
const MESSAGES: usize = 150_000;

/// One report line of the collector child.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Sample {
    stage: String,
    points: usize,
    rss_mib: f64,
    hwm_mib: f64,
}

fn main() {
    match std::env::var("TW_BENCH_ROLE").as_deref() {
        Ok("collector") => collector_child(),
        _ => drive(),
    }
}

fn say(stage: &str, points: usize) {
    let (rss_mib, hwm_mib) = common::resident_mib();
    let line = serde_json::to_string(&Sample {
        stage: stage.to_owned(),
        points,
        rss_mib,
        hwm_mib,
    })
    .expect("JSON");
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").expect("stdout");
    out.flush().expect("stdout");
}

/// The measured process: a collector and a counting sink; a report after every
/// `series` points.
fn collector_child() {
    let var = |name: &str| -> String { std::env::var(name).unwrap_or_else(|_| panic!("{name}")) };
    let broker = var("TW_BENCH_BROKER");
    let series: usize = var("TW_BENCH_SERIES").parse().expect("series");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let config = MqttConfig::from_toml_str(&format!(
        "broker = \"{broker}\"\nclient_id = \"bench-memory-{series}\"\npersistent_session = false\n{}",
        common::INLET_SUBSCRIPTION
    ))
    .expect("config");
    let collector = MqttCollector::new(config).expect("collector setup");
    say("before the collector", 0);
    rt.block_on(async {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<Point>>(64);
        let running = collector.start(tx);
        while running.stats().subscribed_at.is_none() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        say("subscribed", 0);
        let mut points = 0;
        while let Some(batch) = rx.recv().await {
            let before = points / series;
            points += batch
                .iter()
                .filter(|p| p.measurement() == "rack_inlet")
                .count();
            if points / series > before {
                say("round", points);
            }
        }
    });
}

/// What one run of the child showed.
struct Run {
    series: usize,
    samples: Vec<Sample>,
    /// CPU over the run: the collector child and the broker (watched), the publisher
    /// (this process), and the rest of the machine.
    cpu: report::CpuUse,
    load: String,
}

fn run(broker: &common::Mosquitto, series: usize) -> Run {
    let rounds = MESSAGES / series;
    let mut child = Command::new(std::env::current_exe().expect("own executable"))
        .env("TW_BENCH_ROLE", "collector")
        .env("TW_BENCH_BROKER", broker.address())
        .env("TW_BENCH_SERIES", series.to_string())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the collector child");
    let window = report::CpuWindow::start(&[child.id(), broker.pid()]);
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut next = || -> Sample {
        let line = lines
            .next()
            .expect("a report from the collector child")
            .expect("read");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("bad report {line:?}: {e}"))
    };
    let mut samples = vec![next(), next()];
    for round in 0..rounds {
        // One message per series, timestamps a round (10 s) apart.
        let ts = 1_767_196_800_000i64 + round as i64 * 10_000;
        let messages = (0..series)
            .map(|i| (common::inlet_topic(i), common::inlet_payload(ts, i + round)))
            .collect();
        common::publish_all(broker.port, "bench-publisher", messages);
        let s = next();
        assert_eq!(s.points, (round + 1) * series, "every message stored");
        samples.push(s);
    }
    let cpu = window.finish();
    let _ = child.kill();
    let _ = child.wait();
    Run {
        series,
        samples,
        cpu,
        load: report::load_average(),
    }
}

fn drive() {
    let load_before = report::load_average();
    let broker = common::Mosquitto::start();
    let mut runs = Vec::new();
    for series in [SERIES, SMALL_SERIES, SMALL_SERIES, SERIES] {
        println!(
            "{series} series, {} rounds of one message each ...",
            MESSAGES / series
        );
        let r = run(&broker, series);
        let last = r.samples.last().expect("samples");
        println!(
            "  before {:.1} MiB, subscribed {:.1} MiB, end {:.1} MiB, peak {:.1} MiB",
            r.samples[0].rss_mib, r.samples[1].rss_mib, last.rss_mib, last.hwm_mib
        );
        runs.push(r);
    }
    drop(broker);

    let mib_to_mb = 1.048_576;
    let mut table = String::from(
        "| run | series | rounds | VmRSS before the collector | subscribed | after round 1 | after the last round | VmHWM (peak) | peak growth over before | collector + broker CPU | publisher CPU | other CPU | load after |\n\
         |---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n",
    );
    for (i, r) in runs.iter().enumerate() {
        let s = &r.samples;
        let last = s.last().expect("samples");
        table.push_str(&format!(
            "| {} | {} | {} | {:.1} MiB | {:.1} MiB | {:.1} MiB | {:.1} MiB | {:.1} MiB | {:.1} MiB | {:.1} % | {:.1} % | {:.1} % | {} |\n",
            i + 1,
            r.series,
            s.len() - 2,
            s[0].rss_mib,
            s[1].rss_mib,
            s[2].rss_mib,
            last.rss_mib,
            last.hwm_mib,
            last.hwm_mib - s[0].rss_mib,
            r.cpu.watched,
            r.cpu.own,
            r.cpu.other,
            r.load
        ));
    }
    let peak = |series: usize| {
        runs.iter()
            .filter(|r| r.series == series)
            .map(|r| r.samples.last().expect("samples").hwm_mib)
            .fold(0.0, f64::max)
    };
    let (big, small) = (peak(SERIES), peak(SMALL_SERIES));
    let big_mb = big * mib_to_mb;
    let body = format!(
        "The MQTT collector (a series = measurement + tag set; 50,000 MQTT rack sensors, one \
         topic each, are what one collector behind a park-wide broker meets, while 50,000 \
         Modbus devices in one collector are not) in a process of its own: tokio \
         multi-thread runtime (2 workers), `MqttCollector` with the README's rack-inlet \
         subscription (topic `tidewatch/bench/{{centre}}/{{zone}}/{{rack}}/inlet` to the tags \
         `centre`, `zone`, `rack`, `sensor`; JSON fields `temperature_c`, `humidity_pct`), \
         QoS 1; sink a bounded mpsc channel drained by a task that counts and drops the \
         points (accepted = enqueued: the store's memory is not counted). A Mosquitto of the \
         bench's own and a rumqttc publisher (QoS 1) in other processes publish one message \
         per series per round, {MESSAGES} messages per run. `VmRSS` / `VmHWM` from \
         /proc/self/status of the collector process; *before the collector*: the same \
         process with its runtime built and config compiled, before the collector starts \
         (the baseline). Runs alternate 50,000 and 5,000 series. CPU in % of one core over \
         each run; *other* is the rest of the machine (other builds and benchmarks).\n\n\
         {table}\n\
         Why it stays flat: the MQTT collector keeps no state per series. Each message's \
         topic is matched against the templates and turned into tags on the spot; the only \
         map keyed by topic holds malformed-message counts, bounded by \
         `max_tracked_topics`. What grows with series lives downstream (the store, the live \
         cache), outside this measurement.\n\n\
         Peak resident memory: {big:.1} MiB ({big_mb:.1} MB) with {SERIES} series, {small:.1} \
         MiB with {SMALL_SERIES}.\n\n\
         Target, < {TARGET_MB:.0} MB with {SERIES} series: {} ({big_mb:.1} MB peak).\n\n\
         Load average (1 / 5 / 15 min) before the run {load_before}, after {}.\n",
        if big_mb < TARGET_MB { "met" } else { "NOT met" },
        report::load_average(),
    );
    println!("\n## {SECTION}\n\n{body}");
    report::write_section(SECTION, COMMAND, &body);
}
