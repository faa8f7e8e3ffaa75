//! Collector CPU cost polling more than 500 simulated Modbus devices at 1 s, against a
//! bare tokio-modbus loop making the same requests. The targets: at least
//! 200,000 values decoded per CPU-second of the collector, and at least 0.8x the bare
//! loop's values per CPU-second.
//!
//! How it runs. The bench binary starts itself as a child process in simulator mode
//! (`TW_BENCH_ROLE=simulator`): the real-time plant simulator serving
//! `fixtures/site/bench-500.toml` (548 devices on 464 TCP endpoints, clock running, one
//! model step a second), which prints its endpoints as one JSON line. The simulator has
//! a process of its own so that the CPU time of the parent, where the polling side runs,
//! is the polling side's alone (`/proc/self/stat`); the simulator's CPU is read apart.
//!
//! The two sides, each on a fresh tokio multi-thread runtime with 2 workers, one after
//! the other in the parent, alternating (collector first in even rounds, baseline first
//! in odd ones):
//!
//! * *collector*: `ModbusCollector` as `tidewatch collect` runs it, every endpoint of
//!   the simulator configured (gateways by gateway id), default settings (`max_gap` 10,
//!   one request in flight per endpoint), its batches going to a bounded mpsc channel
//!   drained by a task that only counts them. The built-in profiles poll fields every
//!   1 s to 1 h; here **every field's poll interval is overridden to 1 s** (profiles
//!   cloned and edited in memory), so every field of every device is read and decoded
//!   each second, as the "500 devices at 1 s" asks.
//! * *baseline*: one task per endpoint with one tokio-modbus TCP connection, sending
//!   each second, for every device behind the endpoint (its unit id set on the shared
//!   connection), exactly the requests of the collector's plan for that device (the
//!   same `ReadRequest`s, taken from the collector's own schedule), and nothing else:
//!   no decoding, no points, no health, no timeouts. Its *values* are the fields the
//!   answered requests carry (what the collector would decode from them).
//!
//! Both start their polls on whole seconds (the collector's ticks are aligned to
//! multiples of the interval). Each side warms up, then is measured over a whole
//! number of seconds starting half a second after a tick. Values of the collector are
//! its `values` plus `sentinel` counters (every field decoded, stored or recognised
//! as "not available").
//!
//! Run: `cargo bench -p tidewatch-collectors --bench modbus_cpu`; results are printed and
//! written to BENCHMARKS.md. `TW_BENCH_SECONDS` / `TW_BENCH_ROUNDS` shorten a run for a
//! smoke test; a shortened run prints its table but does not touch BENCHMARKS.md.

#[path = "../../fixtures/benches/report.rs"]
mod report;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tidewatch_collectors::modbus::{EndpointConfig, ModbusCollector, ModbusConfig, ReadRequest};
use tidewatch_devices::{ProfileSet, Site, Table};
use tidewatch_sim::{RealtimeConfig, Simulator};
use tokio_modbus::client::{Context, Reader};
use tokio_modbus::slave::SlaveContext;
use tokio_modbus::Slave;

const SITE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../fixtures/site/bench-500.toml"
);
const COMMAND: &str = "cargo bench -p tidewatch-collectors --bench modbus_cpu";
const SECTION: &str = "Collectors: Modbus CPU cost, 500 devices at 1 s";
const TARGET_VALUES_PER_CPU_S: f64 = 200_000.0;
const TARGET_RATIO: f64 = 0.8;
const DEFAULT_SECONDS: u64 = 25;
const DEFAULT_ROUNDS: usize = 3;
const WARMUP: Duration = Duration::from_secs(4);

/// One TCP endpoint as the simulator child reports it (the shape of the simulator's
/// `Endpoints::modbus`; extra keys are ignored).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Endpoint {
    address: SocketAddr,
    #[serde(default)]
    gateway: Option<String>,
    devices: Vec<Unit>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Unit {
    id: String,
}

fn main() {
    match std::env::var("TW_BENCH_ROLE").as_deref() {
        Ok("simulator") => serve(),
        _ => drive(),
    }
}

// ---------------------------------------------------------------------------------------
// Simulator child.

/// Serve the bench site until the parent closes our stdin.
fn serve() {
    let profiles = ProfileSet::builtin().expect("built-in profiles");
    let site = Site::load(SITE, &profiles).unwrap_or_else(|e| panic!("{SITE}: {e}"));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let sim = rt
        .block_on(Simulator::start(
            &site,
            &profiles,
            RealtimeConfig::default(),
        ))
        .expect("start the simulator");
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{}",
        serde_json::to_string(&sim.endpoints.modbus).expect("JSON")
    )
    .expect("stdout");
    out.flush().expect("stdout");
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    std::process::exit(0);
}

/// The simulator child, stopped (stdin closed, then killed if need be) when dropped.
struct SimulatorProcess {
    child: Child,
    endpoints: Vec<Endpoint>,
}

impl SimulatorProcess {
    fn start() -> SimulatorProcess {
        let exe = std::env::current_exe().expect("own executable");
        let mut child = Command::new(exe)
            .env("TW_BENCH_ROLE", "simulator")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the simulator child");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("read the endpoints");
        let endpoints = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("simulator: bad endpoints line ({e}): {line:?}"));
        SimulatorProcess { child, endpoints }
    }
}

impl Drop for SimulatorProcess {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------------
// The two sides.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Collector,
    Baseline,
}

impl Side {
    fn label(self) -> &'static str {
        match self {
            Side::Collector => "collector",
            Side::Baseline => "bare tokio-modbus loop",
        }
    }
}

/// CPU time of this process's threads, nanoseconds by thread id, from
/// `/proc/self/task/<tid>/schedstat` (time on CPU, the scheduler's own nanosecond
/// clock). `/proc/self/stat` counts in 10 ms ticks, too coarse for a side that uses a
/// few per cent of a core over 25 s.
fn thread_cpu_ns() -> std::collections::HashMap<u32, u64> {
    let mut out = std::collections::HashMap::new();
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return out;
    };
    for entry in dir.flatten() {
        let Some(tid) = entry.file_name().to_str().and_then(|t| t.parse().ok()) else {
            continue;
        };
        let stat = std::fs::read_to_string(entry.path().join("schedstat")).unwrap_or_default();
        if let Some(ns) = stat.split_whitespace().next().and_then(|v| v.parse().ok()) {
            out.insert(tid, ns);
        }
    }
    out
}

/// CPU-seconds used by this process between two [`thread_cpu_ns`] snapshots: threads
/// alive at both ends by difference, threads started since in full (a thread that
/// ended within the window is missed; the runtime's workers live across it).
fn cpu_s_between(
    before: &std::collections::HashMap<u32, u64>,
    after: &std::collections::HashMap<u32, u64>,
) -> f64 {
    let ns: u64 = after
        .iter()
        .map(|(tid, &a)| a.saturating_sub(before.get(tid).copied().unwrap_or(0)))
        .sum();
    ns as f64 / 1e9
}

/// What one side did over its measured window.
struct Outcome {
    side: Side,
    round: usize,
    /// CPU-seconds of this process over the window, from the threads' schedstat.
    cpu_s: f64,
    /// Values decoded (collector) or carried by answered requests (baseline).
    values: u64,
    requests: u64,
    /// Timeouts, exceptions, connect and decode errors, skipped polls.
    errors: u64,
    cpu: report::CpuUse,
    load: String,
}

impl Outcome {
    fn per_cpu_s(&self) -> f64 {
        self.values as f64 / self.cpu_s.max(1e-9)
    }
}

/// Per endpoint: its address and, per device behind it, the unit id and the requests
/// the collector's plan sends each second.
type BaselinePlan = Vec<(SocketAddr, Vec<(u8, Arc<Vec<ReadRequest>>)>)>;

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Sleep until `offset_ms` past the next whole second of the wall clock.
async fn sleep_to_next_second(offset_ms: u64) {
    let now = unix_ms();
    let target = (now / 1000 + 1) * 1000 + offset_ms;
    tokio::time::sleep(Duration::from_millis(target - now)).await;
}

/// Warm up, then open a CPU window half a second after a tick for `seconds`.
async fn measured_window(seconds: u64, sim_pid: u32) -> (report::CpuWindow, Duration) {
    tokio::time::sleep(WARMUP).await;
    sleep_to_next_second(500).await;
    (
        report::CpuWindow::start(&[sim_pid]),
        Duration::from_secs(seconds),
    )
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

fn run_collector(collector: &ModbusCollector, seconds: u64, sim_pid: u32, round: usize) -> Outcome {
    let rt = runtime();
    let outcome = rt.block_on(async {
        // The sink: a bounded channel (accepted = enqueued), drained by a counting task.
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<tidewatch_model::Point>>(1024);
        let batches = Arc::new(AtomicU64::new(0));
        let counted = batches.clone();
        tokio::spawn(async move {
            while let Some(b) = rx.recv().await {
                std::hint::black_box(&b);
                counted.fetch_add(1, Ordering::Relaxed);
            }
        });
        let running = collector.clone().start(tx);
        let totals = |r: &tidewatch_collectors::modbus::RunningCollector| {
            r.stats().iter().fold((0, 0, 0), |(v, q, e), s| {
                (
                    v + s.values + s.sentinels,
                    q + s.requests,
                    e + s.timeouts
                        + s.exceptions
                        + s.connect_errors
                        + s.decode_errors
                        + s.polls_skipped,
                )
            })
        };
        let (window, length) = measured_window(seconds, sim_pid).await;
        let (before, threads) = (totals(&running), thread_cpu_ns());
        tokio::time::sleep(length).await;
        let (after, threads_after) = (totals(&running), thread_cpu_ns());
        let cpu = window.finish();
        running.shutdown().await;
        assert!(
            batches.load(Ordering::Relaxed) > 0,
            "the collector sent nothing"
        );
        Outcome {
            side: Side::Collector,
            round,
            cpu_s: cpu_s_between(&threads, &threads_after),
            values: after.0 - before.0,
            requests: after.1 - before.1,
            errors: after.2 - before.2,
            cpu,
            load: report::load_average(),
        }
    });
    rt.shutdown_timeout(Duration::from_secs(5));
    outcome
}

/// Counters of the baseline, shared by its tasks.
#[derive(Default)]
struct BaselineCounts {
    values: AtomicU64,
    requests: AtomicU64,
    errors: AtomicU64,
}

/// One endpoint of the baseline: one connection, every second each device's requests
/// in order, answers dropped unread.
async fn baseline_endpoint(
    address: SocketAddr,
    devices: Vec<(u8, Arc<Vec<ReadRequest>>)>,
    counts: Arc<BaselineCounts>,
) {
    // Connected as the collector connects: TCP_NODELAY, then tokio-modbus attached.
    let stream = tokio::net::TcpStream::connect(address)
        .await
        .unwrap_or_else(|e| panic!("connect {address}: {e}"));
    let _ = stream.set_nodelay(true);
    let mut ctx: Context = tokio_modbus::client::tcp::attach_slave(stream, Slave(devices[0].0));
    loop {
        sleep_to_next_second(0).await;
        for (unit, requests) in &devices {
            ctx.set_slave(Slave(*unit));
            for req in requests.iter() {
                let answered = match req.table {
                    Table::Coil => ctx
                        .read_coils(req.address, req.count)
                        .await
                        .map(|r| r.map(|b| std::hint::black_box(b).len())),
                    Table::DiscreteInput => ctx
                        .read_discrete_inputs(req.address, req.count)
                        .await
                        .map(|r| r.map(|b| std::hint::black_box(b).len())),
                    Table::Holding => ctx
                        .read_holding_registers(req.address, req.count)
                        .await
                        .map(|r| r.map(|w| std::hint::black_box(w).len())),
                    Table::Input => ctx
                        .read_input_registers(req.address, req.count)
                        .await
                        .map(|r| r.map(|w| std::hint::black_box(w).len())),
                };
                counts.requests.fetch_add(1, Ordering::Relaxed);
                match answered {
                    Ok(Ok(_)) => {
                        counts
                            .values
                            .fetch_add(req.fields.len() as u64, Ordering::Relaxed);
                    }
                    _ => {
                        counts.errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }
    }
}

fn run_baseline(plan: &BaselinePlan, seconds: u64, sim_pid: u32, round: usize) -> Outcome {
    let rt = runtime();
    let outcome = rt.block_on(async {
        let counts = Arc::new(BaselineCounts::default());
        let mut tasks = tokio::task::JoinSet::new();
        for (address, devices) in plan {
            tasks.spawn(baseline_endpoint(*address, devices.clone(), counts.clone()));
        }
        let totals = || {
            (
                counts.values.load(Ordering::Relaxed),
                counts.requests.load(Ordering::Relaxed),
                counts.errors.load(Ordering::Relaxed),
            )
        };
        let (window, length) = measured_window(seconds, sim_pid).await;
        let (before, threads) = (totals(), thread_cpu_ns());
        tokio::time::sleep(length).await;
        let (after, threads_after) = (totals(), thread_cpu_ns());
        let cpu = window.finish();
        tasks.abort_all();
        while tasks.join_next().await.is_some() {}
        Outcome {
            side: Side::Baseline,
            round,
            cpu_s: cpu_s_between(&threads, &threads_after),
            values: after.0 - before.0,
            requests: after.1 - before.1,
            errors: after.2 - before.2,
            cpu,
            load: report::load_average(),
        }
    });
    rt.shutdown_timeout(Duration::from_secs(5));
    outcome
}

// ---------------------------------------------------------------------------------------
// Driver.

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn drive() {
    let seconds = env_u64("TW_BENCH_SECONDS").unwrap_or(DEFAULT_SECONDS);
    let rounds = env_u64("TW_BENCH_ROUNDS").map_or(DEFAULT_ROUNDS, |r| r as usize);
    let shortened = seconds != DEFAULT_SECONDS || rounds != DEFAULT_ROUNDS;
    let load_before = report::load_average();

    // The built-in profiles with every field (and each profile's default) read every
    // second.
    let mut profiles = ProfileSet::new();
    for p in ProfileSet::builtin().expect("built-in profiles").iter() {
        let mut p = p.clone();
        p.poll = Duration::from_secs(1);
        for f in &mut p.fields {
            f.poll = Duration::from_secs(1);
        }
        profiles.insert(p);
    }
    let site = Site::load(SITE, &profiles).unwrap_or_else(|e| panic!("{SITE}: {e}"));

    let sim = SimulatorProcess::start();
    let sim_pid = sim.child.id();
    let mut config = ModbusConfig::from_toml_str("").expect("default config");
    for e in &sim.endpoints {
        config.endpoints.push(EndpointConfig {
            address: e.address.to_string(),
            devices: if e.gateway.is_some() {
                vec![]
            } else {
                e.devices.iter().map(|d| d.id.clone()).collect()
            },
            gateway: e.gateway.clone(),
            max_in_flight: None,
            max_gap: None,
        });
    }
    let collector = ModbusCollector::new(config, &site, &profiles).expect("collector setup");

    // The baseline sends the collector's own plan: the same requests per device.
    let mut plan: BaselinePlan = Vec::new();
    let (mut devices, mut fields, mut requests) = (0usize, 0usize, 0usize);
    for e in collector.endpoints() {
        let mut units = Vec::new();
        for d in &e.devices {
            assert_eq!(
                d.schedule.intervals().collect::<Vec<_>>(),
                [Duration::from_secs(1)],
                "{}: every field at 1 s",
                d.id
            );
            let reqs = d.schedule.full_plan();
            devices += 1;
            fields += d.profile.fields.len();
            requests += reqs.len();
            units.push((d.unit_id, reqs));
        }
        plan.push((e.address.parse().expect("socket address"), units));
    }
    let gateways = sim.endpoints.iter().filter(|e| e.gateway.is_some()).count();
    let shape = format!(
        "{devices} devices on {} TCP endpoints ({gateways} gateways), {fields} fields read \
         in {requests} requests each second",
        plan.len()
    );
    println!("{shape}");

    let mut outcomes: Vec<Outcome> = Vec::new();
    for round in 0..rounds {
        let order = if round % 2 == 0 {
            [Side::Collector, Side::Baseline]
        } else {
            [Side::Baseline, Side::Collector]
        };
        for side in order {
            println!(
                "round {}: {} ({} s warm-up, {seconds} s measured) ...",
                round + 1,
                side.label(),
                WARMUP.as_secs()
            );
            let o = match side {
                Side::Collector => run_collector(&collector, seconds, sim_pid, round),
                Side::Baseline => run_baseline(&plan, seconds, sim_pid, round),
            };
            println!(
                "  {:.0} values/s, CPU {:.1} %, {:.0} values per CPU-second, simulator CPU {:.1} %, other {:.1} %, errors {}, load {}",
                o.values as f64 / o.cpu.secs,
                100.0 * o.cpu_s / o.cpu.secs,
                o.per_cpu_s(),
                o.cpu.watched,
                o.cpu.other,
                o.errors,
                o.load
            );
            outcomes.push(o);
        }
    }
    drop(sim);

    let mut table = String::from(
        "| round | side | values/s | requests/s | CPU (this side) | values per CPU-second | simulator CPU | other CPU | errors | load after |\n\
         |---:|---|---:|---:|---:|---:|---:|---:|---:|---|\n",
    );
    for o in &outcomes {
        table.push_str(&format!(
            "| {} | {} | {:.0} | {:.0} | {:.1} % | {:.0} | {:.1} % | {:.1} % | {} | {} |\n",
            o.round + 1,
            o.side.label(),
            o.values as f64 / o.cpu.secs,
            o.requests as f64 / o.cpu.secs,
            100.0 * o.cpu_s / o.cpu.secs,
            o.per_cpu_s(),
            o.cpu.watched,
            o.cpu.other,
            o.errors,
            o.load
        ));
    }
    let med = |side: Side| {
        median(
            outcomes
                .iter()
                .filter(|o| o.side == side)
                .map(Outcome::per_cpu_s)
                .collect(),
        )
    };
    let (collector_rate, baseline_rate) = (med(Side::Collector), med(Side::Baseline));
    let ratio = collector_rate / baseline_rate;
    // Per round too: the two sides of a round ran a minute apart, under the same load.
    let round_ratios: Vec<String> = (0..rounds)
        .filter_map(|r| {
            let get = |s| outcomes.iter().find(|o| o.round == r && o.side == s);
            Some(format!(
                "{:.2}",
                get(Side::Collector)?.per_cpu_s() / get(Side::Baseline)?.per_cpu_s()
            ))
        })
        .collect();
    let verdict = |ok: bool| if ok { "met" } else { "NOT met" };
    // What is left of the ratio target, in CPU per value (medians).
    let (collector_us, baseline_us) = (1e6 / collector_rate, 1e6 / baseline_rate);
    let target_us = baseline_us / TARGET_RATIO;
    let gap = if ratio >= TARGET_RATIO {
        String::new()
    } else {
        format!(
            " Gap: the collector spends {collector_us:.2} µs of CPU per value against \
             {baseline_us:.2} µs for the bare loop; {TARGET_RATIO}x allows {target_us:.2} µs, \
             {:.0} % less CPU than measured.",
            100.0 * (1.0 - target_us / collector_us)
        )
    };
    let body = format!(
        "{shape} (fixtures/site/bench-500.toml served by the real-time simulator, clock \
         running, in a child process of the bench; **every field's poll interval \
         overridden to 1 s**: the built-in profiles read most fields every 1-5 s and some \
         every minute or hour). Each side on a fresh tokio multi-thread runtime (2 workers) \
         in the bench process, whose CPU time is the side's alone (summed over its threads \
         from /proc/self/task/*/schedstat, nanoseconds; /proc's 10 ms ticks are too \
         coarse at a few per cent of a core); {rounds} rounds, sides alternating (collector first in odd \
         rounds), each {}s warm-up then {seconds} s measured starting half a second after \
         a tick.\n\n\
         - *collector*: `ModbusCollector` with default settings (`max_gap` 10, one request \
         in flight per endpoint), gateways by gateway id; sink a bounded mpsc channel \
         drained by a counting task (accepted = enqueued). Values = its `values` + \
         `sentinel` counters (fields decoded).\n\
         - *bare tokio-modbus loop* (baseline): one task and one connection per endpoint \
         sending each second, per device, the same requests (the collector's own plan), \
         answers dropped undecoded, no points, health or timeouts. Values = fields carried \
         by the answered requests.\n\n\
         CPU columns in % of one core over the window: this side, the simulator process, \
         and the rest of the machine (*other*: other builds and benchmarks sharing it).\n\n\
         {table}\n\
         Median values per CPU-second: collector {collector_rate:.0}, baseline \
         {baseline_rate:.0}; ratio {ratio:.2} (per round: {}).\n\n\
         Target, collector >= {TARGET_VALUES_PER_CPU_S:.0} values per CPU-second: {} \
         ({collector_rate:.0}). Target, collector >= {TARGET_RATIO}x the baseline: {} \
         ({ratio:.2}x).{gap}\n\n\
         Load average (1 / 5 / 15 min) before the run {load_before}, after {}.\n",
        WARMUP.as_secs(),
        round_ratios.join(", "),
        verdict(collector_rate >= TARGET_VALUES_PER_CPU_S),
        verdict(ratio >= TARGET_RATIO),
        report::load_average(),
    );
    println!("\n## {SECTION}\n\n{body}");
    if shortened {
        println!("(shortened run: BENCHMARKS.md left as it is)");
    } else {
        report::write_section(SECTION, COMMAND, &body);
    }
}
