//! MQTT collector throughput: messages stored per second, against `mosquitto_sub`
//! (Debian mosquitto-clients, the broker project's own client) receiving the same
//! stream from the same broker. The target: at least 0.9x `mosquitto_sub`.
//!
//! How it runs. The bench starts a Mosquitto of its own (free loopback port,
//! persistence off, no limit on queued messages; Mosquitto's default in-flight window
//! of 20 messages per client, the same for both sides). Each side, in each round:
//!
//! 1. creates its persistent session (QoS 1 subscription to the rack-inlet topics,
//!    clean session off, a fixed client id) and disconnects;
//! 2. a publisher (rumqttc, QoS 1, 100 in flight) publishes N JSON rack-inlet messages
//!    (`{"ts":...,"temperature_c":...,"humidity_pct":...}`) over 800 sensors' topics;
//!    the broker queues them for the offline session;
//! 3. the side reconnects to its session and receives the whole stream; the rate is
//!    messages from the first to the last one received, over that time.
//!
//! Pre-queueing keeps the publisher out of the measurement: it neither limits the rate
//! nor competes for the 2 cores while a side receives, and both sides get exactly the
//! same stream, from the same broker, at the broker's own pace.
//!
//! * *collector*: `MqttCollector` (rumqttc, manual acks), the README's rack-inlet
//!   subscription (topic template to tags, JSON fields and timestamp), `max_batch`
//!   1000, health points off; its sink is a bounded mpsc channel (64 batches) drained
//!   by a task counting the points, so *stored* means *accepted = enqueued*; each
//!   message is acknowledged to the broker only after that. First and last: when the
//!   counting task receives the first point and the N-th. Runs in the bench process on
//!   a fresh tokio multi-thread runtime (2 workers).
//! * *baselines*, two variants of `mosquitto_sub -c -i ID -q 1 -t FILTER -C N` (exit
//!   after N messages; libmosquitto acknowledges each on receipt): with `-F %U` writing
//!   each message's arrival time (Unix time with nanoseconds) to a file in the temp
//!   folder, which gives its first and last arrival; and printing payloads to
//!   /dev/null, where arrivals cannot be seen, timed from starting the process to its
//!   exit (its start-up and connection, a few ms, count against it). The target is
//!   checked against the faster of the two.
//!
//! Each round starts with the next side, so every side goes first once in 3 rounds.
//! Run: `cargo bench -p tidewatch-collectors --bench mqtt_throughput`; results are
//! printed and written to BENCHMARKS.md. `TW_BENCH_MESSAGES` / `TW_BENCH_ROUNDS` shorten a run for a smoke test;
//! a shortened run prints its table but does not touch BENCHMARKS.md.

mod common;
#[path = "../../fixtures/benches/report.rs"]
mod report;

use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tidewatch_collectors::mqtt::{MqttCollector, MqttConfig};
use tidewatch_model::Point;

const COMMAND: &str = "cargo bench -p tidewatch-collectors --bench mqtt_throughput";
const SECTION: &str = "Collectors: MQTT messages stored per second";
const TARGET_RATIO: f64 = 0.9;
const DEFAULT_MESSAGES: usize = 200_000;
const DEFAULT_ROUNDS: usize = 3;
/// Distinct sensors (topics) the messages cycle over: a large park's rack inlets.
const SENSORS: usize = 800;
/// Longest a side may take to receive the stream.
const TIMEOUT: Duration = Duration::from_secs(600);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Collector,
    /// `mosquitto_sub -F %U` to a file: first and last arrival known.
    MosquittoSub,
    /// `mosquitto_sub` printing payloads to /dev/null: timed from start to exit.
    MosquittoSubNull,
}

const SIDES: [Side; 3] = [Side::Collector, Side::MosquittoSub, Side::MosquittoSubNull];

impl Side {
    fn label(self) -> &'static str {
        match self {
            Side::Collector => "collector",
            Side::MosquittoSub => "mosquitto_sub -F %U > file",
            Side::MosquittoSubNull => "mosquitto_sub > /dev/null",
        }
    }
}

struct Outcome {
    side: Side,
    round: usize,
    /// From the first message received to the last, seconds.
    secs: f64,
    /// Messages received after the first one's batch, over `secs`.
    rate: f64,
    /// CPU of the receiving side and the rest, over its whole run (connect to exit).
    cpu: report::CpuUse,
    /// CPU-seconds of the receiving side.
    side_cpu_s: f64,
    publish_rate: f64,
    load: String,
}

fn collector_config(broker: &str, client_id: &str) -> MqttConfig {
    MqttConfig::from_toml_str(&format!(
        "broker = \"{broker}\"\nclient_id = \"{client_id}\"\nhealth_interval = \"0s\"\n{}",
        common::INLET_SUBSCRIPTION
    ))
    .unwrap_or_else(|e| panic!("{e}"))
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// Create the collector's persistent session: connect, subscribe, disconnect cleanly.
fn collector_session(broker: &str, client_id: &str) {
    let rt = runtime();
    rt.block_on(async {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<Point>>(64);
        tokio::spawn(async move { while rx.recv().await.is_some() {} });
        let running = MqttCollector::new(collector_config(broker, client_id))
            .expect("collector setup")
            .start(tx);
        let start = Instant::now();
        while running.stats().subscribed_at.is_none() {
            assert!(start.elapsed() < Duration::from_secs(10), "not subscribed");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        running.shutdown().await;
    });
}

/// First and last arrival of the points the counting task saw, and the points in the
/// first batch.
#[derive(Default)]
struct Arrivals {
    count: usize,
    first: Option<(Instant, usize)>,
    last: Option<Instant>,
}

fn run_collector(broker: &Mosquitto, n: usize, round: usize, messages: &Messages) -> Outcome {
    let client_id = format!("bench-collector-{round}");
    collector_session(&broker.address(), &client_id);
    let publish_rate = publish(broker, messages);
    let rt = runtime();
    let arrivals = Arc::new(Mutex::new(Arrivals::default()));
    let (cpu, side_cpu_s) = rt.block_on(async {
        let window = report::CpuWindow::start(&[broker.pid()]);
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<Point>>(64);
        let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
        let seen = arrivals.clone();
        tokio::spawn(async move {
            let mut done = Some(done_tx);
            while let Some(batch) = rx.recv().await {
                let now = Instant::now();
                let k = batch
                    .iter()
                    .filter(|p| p.measurement() == "rack_inlet")
                    .count();
                let mut a = seen.lock().expect("lock");
                a.count += k;
                if a.first.is_none() && k > 0 {
                    a.first = Some((now, k));
                }
                if a.count >= n {
                    a.last.get_or_insert(now);
                    if let Some(d) = done.take() {
                        let _ = d.send(());
                    }
                }
            }
        });
        let running = MqttCollector::new(collector_config(&broker.address(), &client_id))
            .expect("collector setup")
            .start(tx);
        tokio::time::timeout(TIMEOUT, done_rx)
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "the collector stored {} of {n} messages within {TIMEOUT:?}",
                    arrivals.lock().expect("lock").count
                )
            })
            .expect("counting task");
        let cpu = window.finish();
        running.shutdown().await;
        (cpu, cpu.own / 100.0 * cpu.secs)
    });
    rt.shutdown_timeout(Duration::from_secs(5));
    let a = arrivals.lock().expect("lock");
    let (first, in_first) = a.first.expect("first batch");
    let secs = a.last.expect("last").duration_since(first).as_secs_f64();
    assert_eq!(a.count, n, "exactly the messages published are stored");
    Outcome {
        side: Side::Collector,
        round,
        secs,
        rate: (n - in_first) as f64 / secs,
        cpu,
        side_cpu_s,
        publish_rate,
        load: report::load_average(),
    }
}

/// `side` is one of the two `mosquitto_sub` variants.
fn run_mosquitto_sub(
    side: Side,
    broker: &Mosquitto,
    n: usize,
    round: usize,
    messages: &Messages,
) -> Outcome {
    let timestamps = side == Side::MosquittoSub;
    let program = common::require_program("mosquitto_sub", "mosquitto-clients");
    let client_id = format!("bench-sub-{round}-{}", u8::from(timestamps));
    let port = broker.port.to_string();
    let base = [
        "-h",
        "127.0.0.1",
        "-p",
        &port,
        "-i",
        &client_id,
        "-c",
        "-q",
        "1",
        "-t",
        common::INLET_FILTER,
    ];
    // The session: subscribe, exit once the broker acknowledged the subscription.
    let status = Command::new(&program)
        .args(base)
        .arg("-E")
        .status()
        .expect("run mosquitto_sub -E");
    assert!(status.success(), "mosquitto_sub -E: {status}");
    let publish_rate = publish(broker, messages);
    let out_path = broker.dir.path().join(format!("sub-{round}.txt"));
    let mut command = Command::new(&program);
    command.args(base).args(["-C", &n.to_string()]);
    if timestamps {
        command.args(["-F", "%U"]).stdout(Stdio::from(
            std::fs::File::create(&out_path).expect("output file"),
        ));
    } else {
        command.stdout(Stdio::null());
    }
    let window = report::CpuWindow::start(&[broker.pid()]);
    let start = Instant::now();
    let mut child = command.spawn().expect("start mosquitto_sub");
    let ran = loop {
        if let Some(status) = child.try_wait().expect("wait mosquitto_sub") {
            assert!(status.success(), "mosquitto_sub: {status}");
            break start.elapsed();
        }
        if start.elapsed() > TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("mosquitto_sub did not receive {n} messages within {TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    let cpu = window.finish();
    let (secs, rate) = if timestamps {
        let text = std::fs::read_to_string(&out_path).expect("read mosquitto_sub's output");
        let times: Vec<f64> = text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| l.trim().parse().expect("a %U timestamp"))
            .collect();
        assert_eq!(times.len(), n, "mosquitto_sub printed one line per message");
        let secs = times[n - 1] - times[0];
        (secs, (n - 1) as f64 / secs)
    } else {
        // Start to exit: its start-up and connection (a few ms) count against it.
        let secs = ran.as_secs_f64();
        (secs, n as f64 / secs)
    };
    Outcome {
        side,
        round,
        secs,
        rate,
        side_cpu_s: cpu.children / 100.0 * cpu.secs,
        cpu,
        publish_rate,
        load: report::load_average(),
    }
}

type Mosquitto = common::Mosquitto;
type Messages = Vec<(String, Vec<u8>)>;

/// Publish the stream; the publisher's rate, messages per second (for the record).
fn publish(broker: &Mosquitto, messages: &Messages) -> f64 {
    let took = common::publish_all(broker.port, "bench-publisher", messages.clone());
    messages.len() as f64 / took.as_secs_f64()
}

fn env_usize(name: &str) -> Option<usize> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

fn main() {
    let n = env_usize("TW_BENCH_MESSAGES").unwrap_or(DEFAULT_MESSAGES);
    let rounds = env_usize("TW_BENCH_ROUNDS").unwrap_or(DEFAULT_ROUNDS);
    let shortened = n != DEFAULT_MESSAGES || rounds != DEFAULT_ROUNDS;
    let load_before = report::load_average();
    let broker = common::Mosquitto::start();
    let t0 = 1_767_196_800_000i64;
    let messages: Messages = (0..n)
        .map(|i| {
            (
                common::inlet_topic(i % SENSORS),
                common::inlet_payload(t0 + (i / SENSORS) as i64 * 10_000, i),
            )
        })
        .collect();
    let mean_payload =
        messages.iter().map(|(_, p)| p.len()).sum::<usize>() as f64 / messages.len() as f64;
    let mut outcomes = Vec::new();
    for round in 0..rounds {
        // Each round starts with the next side: every side goes first once in 3 rounds.
        for k in 0..SIDES.len() {
            let side = SIDES[(round + k) % SIDES.len()];
            println!(
                "round {}: {} receiving {n} messages ...",
                round + 1,
                side.label()
            );
            let o = match side {
                Side::Collector => run_collector(&broker, n, round, &messages),
                sub => run_mosquitto_sub(sub, &broker, n, round, &messages),
            };
            println!(
                "  {:.0} messages/s over {:.2} s; its CPU {:.2} s; broker CPU {:.1} %, other {:.1} %; load {}",
                o.rate, o.secs, o.side_cpu_s, o.cpu.watched, o.cpu.other, o.load
            );
            outcomes.push(o);
        }
    }
    drop(broker);

    let mut table = String::from(
        "| round | side | messages/s | first to last, s | its CPU-seconds | µs CPU per message | broker CPU | other CPU | publisher msg/s (before) | load after |\n\
         |---:|---|---:|---:|---:|---:|---:|---:|---:|---|\n",
    );
    for o in &outcomes {
        table.push_str(&format!(
            "| {} | {} | {:.0} | {:.2} | {:.2} | {:.1} | {:.1} % | {:.1} % | {:.0} | {} |\n",
            o.round + 1,
            o.side.label(),
            o.rate,
            o.secs,
            o.side_cpu_s,
            o.side_cpu_s * 1e6 / n as f64,
            o.cpu.watched,
            o.cpu.other,
            o.publish_rate,
            o.load
        ));
    }
    let med = |side: Side| {
        common::median(
            outcomes
                .iter()
                .filter(|o| o.side == side)
                .map(|o| o.rate)
                .collect(),
        )
    };
    // The target is checked against the faster mosquitto_sub variant.
    let collector_rate = med(Side::Collector);
    let (sub_file, sub_null) = (med(Side::MosquittoSub), med(Side::MosquittoSubNull));
    let sub_rate = sub_file.max(sub_null);
    let ratio = collector_rate / sub_rate;
    let round_ratios: Vec<String> = (0..rounds)
        .filter_map(|r| {
            let get = |s| outcomes.iter().find(|o| o.round == r && o.side == s);
            let best = get(Side::MosquittoSub)?
                .rate
                .max(get(Side::MosquittoSubNull)?.rate);
            Some(format!("{:.2}", get(Side::Collector)?.rate / best))
        })
        .collect();
    let body = format!(
        "{n} QoS 1 JSON rack-inlet messages ({mean_payload:.0}-byte payloads, {SENSORS} \
         topics) per side and round, from a Mosquitto {version} of the bench's own (loopback, \
         persistence off, default in-flight window of 20 per client). Each side first creates \
         its persistent session and disconnects, the stream is then published (rumqttc, QoS 1, \
         100 in flight) and queued by the broker, and the side reconnects and receives it \
         all: the publisher is out of the measured window and both sides get the same stream \
         at the broker's pace. {rounds} rounds; each round starts with the next side.\n\n\
         - *collector*: `MqttCollector` with the README's rack-inlet subscription (topic \
         template to tags, JSON fields and timestamp), `max_batch` 1000, health points off, \
         in the bench process (tokio multi-thread, 2 workers); sink a bounded mpsc channel \
         drained by a counting task, so *stored* = accepted = enqueued, and each message is \
         acknowledged to the broker only after that. Rate = messages after the first \
         batch / time from the first to the last point the counting task receives.\n\
         - *mosquitto_sub -F %U > file* (baseline): `mosquitto_sub -c -q 1 -C N -F %U`, \
         acknowledging on receipt, writing each message's arrival time (`%U`, ns) to a file \
         in the temp folder: rate = (N - 1) / (last - first arrival).\n\
         - *mosquitto_sub > /dev/null* (baseline): `mosquitto_sub -c -q 1 -C N`, payloads \
         printed to /dev/null; its arrivals cannot be seen, so rate = N / (time from \
         starting the process to its exit), its start-up and connection (a few ms) counting \
         against it.\n\n\
         CPU: the receiving side's own CPU-seconds over its run (connect to the last \
         message); broker and *other* (the rest of the machine: other builds and benchmarks) \
         in % of one core over the same window.\n\n\
         {table}\n\
         Median messages per second: collector {collector_rate:.0}; mosquitto_sub \
         {sub_file:.0} (`-F %U` to a file) and {sub_null:.0} (to /dev/null). Ratio to the \
         faster mosquitto_sub: {ratio:.2} (per round: {}).\n\n\
         Target, collector >= {TARGET_RATIO}x mosquitto_sub: {} ({ratio:.2}x).\n\n\
         Load average (1 / 5 / 15 min) before the run {load_before}, after {}.\n",
        round_ratios.join(", "),
        if ratio >= TARGET_RATIO {
            "met"
        } else {
            "NOT met"
        },
        report::load_average(),
        version = mosquitto_version(),
    );
    println!("\n## {SECTION}\n\n{body}");
    if shortened {
        println!("(shortened run: BENCHMARKS.md left as it is)");
    } else {
        report::write_section(SECTION, COMMAND, &body);
    }
}

/// "2.0.11", from `mosquitto -h`'s first line.
fn mosquitto_version() -> String {
    let out = Command::new(common::require_program("mosquitto", "mosquitto"))
        .arg("-h")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    out.split_whitespace()
        .skip_while(|w| *w != "version")
        .nth(1)
        .unwrap_or("(unknown version)")
        .to_string()
}
