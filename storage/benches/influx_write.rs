//! Writing into a real InfluxDB 1.x: points per second through [`InfluxWriter`],
//! against curl posting the same line protocol (the server's own ceiling). Target from
//! issue 3: ours at least 0.9x of curl.
//!
//! Run: `cargo bench -p tidewatch-storage --bench influx_write [-- POINTS]` (default
//! 1,000,000). Environment: `TW_BENCH_ROUNDS` (rounds of the two main runs, default 3),
//! `TW_BENCH_TASKS` (concurrent writing tasks, default 32), `TW_BENCH_CALL_POINTS`
//! (points per `write` call, default one park frame, 494). Needs `influxd` (Debian
//! package `influxdb`) and `curl`. Results are printed and written to BENCHMARKS.md
//! ("Writing into InfluxDB 1.x").
//!
//! One `influxd` is started for the whole run by the tests' own harness
//! (`tests/servers/mod.rs`, included here): free loopback port, temporary directory.
//! Every run writes the same points (the simulated park's shapes, `park/mod.rs` of the
//! model's benches: whole park frames, 10 s apart) into a fresh database, and is
//! checked afterwards by counting the points in every measurement.
//!
//! - **ours**: [`InfluxWriter`] with its defaults (gzip `auto`, which is off for this
//!   loopback server, `batch_max_points` 5000,
//!   spool in a temporary directory, v1 API), fed by `TW_BENCH_TASKS` tasks each
//!   writing calls of one park frame's size, each task owning a share of the devices
//!   and writing their points in time order, as collector tasks do. Timed from the first
//!   `write` to the last point confirmed by the server (`flush` + `wait_delivered`),
//!   so encoding, batching, the spool's synced appends and acknowledgements, gzip and
//!   the requests are all inside.
//! - **baseline, curl**: the same points encoded beforehand (not timed) as line
//!   protocol in files of 5,000 points, posted in order by one `curl` process, one
//!   request per file over one keep-alive connection: a config file (`curl -K`) with
//!   one section per file separated by `next`. Timed from the process start to its
//!   exit.
//! - Also measured once, to document the choice of baseline and where time goes:
//!   curl with one process per batch (`xargs -P1`), curl keep-alive posting the same
//!   files gzipped beforehand (the server's cost of gunzip), and ours with gzip on (as
//!   for a server on another host), compared with that gzipped curl run.
//!
//! Between runs the bench waits for `influxd` to go quiet (its compactions), and the
//! runs of ours and curl alternate (ABBA), so neither side always meets a busier
//! server. The CPU used by each party over each run is measured (`/proc`), which is
//! where time goes on a small machine where client and server share the cores.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use flate2::write::GzEncoder;
use flate2::Compression;
use tidewatch_model::{line_protocol, Point};
use tidewatch_storage::influx::{Api, Gzip, InfluxConfig, InfluxWriter, WriterStatsSnapshot};
use tidewatch_storage::spool::{Spool, SpoolConfig};

#[path = "../../model/benches/park/mod.rs"]
mod park;
#[path = "../../fixtures/benches/report.rs"]
mod report;
#[path = "../tests/servers/mod.rs"]
mod servers;

use servers::{Influxd, InfluxdOptions};

const SECTION: &str = "Writing into InfluxDB 1.x";
const COMMAND: &str = "cargo bench -p tidewatch-storage --bench influx_write";
/// Points per request, both sides.
const BATCH: usize = 5_000;
/// Issue 3: ours at least this fraction of curl's rate.
const TARGET: f64 = 0.9;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One measured run.
struct Run {
    name: String,
    db: String,
    points: usize,
    secs: f64,
    requests: usize,
    cpu: report::CpuUse,
    note: String,
}

impl Run {
    fn rate(&self) -> f64 {
        self.points as f64 / self.secs
    }
}

/// The points' count per measurement, with a field every point of it has.
fn expected_counts(points: &[Point]) -> BTreeMap<(String, String), u64> {
    let mut counts = BTreeMap::new();
    for p in points {
        let field = p.fields()[0].0.to_string();
        *counts
            .entry((p.measurement().to_owned(), field))
            .or_insert(0) += 1;
    }
    counts
}

/// Every point arrived: the count of each measurement is the number written.
async fn check_counts(server: &Influxd, db: &str, expected: &BTreeMap<(String, String), u64>) {
    for ((measurement, field), &n) in expected {
        let got = server.count(db, measurement, field).await;
        assert_eq!(
            got, n,
            "{db}: {measurement} has {got} points in InfluxDB, {n} were written"
        );
    }
}

/// The pid of the `influxd` whose command line names `config`.
fn influxd_pid(config: &Path) -> u32 {
    let config = config.to_string_lossy().into_owned();
    for entry in std::fs::read_dir("/proc").expect("/proc") {
        let entry = entry.expect("/proc entry");
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains("influxd") && cmdline.contains(&config) {
            return pid;
        }
    }
    panic!("cannot find the influxd started with {config}")
}

/// Waits until `influxd` uses less than 5 % of a core over a second (its background
/// compactions after a run), at most 120 s; returns the seconds waited.
async fn wait_quiet(pid: u32) -> f64 {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(120) {
        let before = report::cpu_seconds(pid);
        tokio::time::sleep(Duration::from_secs(1)).await;
        if report::cpu_seconds(pid) - before < 0.05 {
            break;
        }
    }
    started.elapsed().as_secs_f64()
}

/// Ours: the writer with its defaults, `tasks` tasks writing calls of `call` points.
/// Where each feeding task's points are in the order [`by_device`] gives the points:
/// task `t`'s calls of `call` points, as index ranges.
fn device_feeds(n: usize, tasks: usize, call: usize) -> Vec<Vec<(usize, usize)>> {
    let mut feeds = Vec::with_capacity(tasks);
    let mut start = 0;
    for t in 0..tasks {
        // The points of frame positions t, t + tasks, ... in every frame.
        let positions = (park::FRAME_POINTS - t).div_ceil(tasks);
        let full_frames = n / park::FRAME_POINTS;
        let in_last = (n % park::FRAME_POINTS).saturating_sub(t).div_ceil(tasks);
        let end = start + positions * full_frames + in_last;
        feeds.push(
            (start..end)
                .step_by(call)
                .map(|s| (s, (s + call).min(end)))
                .collect(),
        );
        start = end;
    }
    assert_eq!(start, n, "every point fed once");
    feeds
}

/// The points reordered for feeding as the collectors do: each of `tasks` tasks
/// owns every `tasks`-th device (series) of a frame and writes its devices' points
/// in time order, so every series arrives in time order, as from a collector's
/// device task. (Frames dealt to the tasks in turn would let a later frame of a
/// series overtake an earlier one, which costs InfluxDB a sort that curl's
/// in-order files do not.)
fn by_device(points: Vec<Point>, tasks: usize) -> Vec<Point> {
    let mut order: Vec<usize> = (0..points.len()).collect();
    order.sort_by_key(|&i| ((i % park::FRAME_POINTS) % tasks, i));
    let mut slots: Vec<Option<Point>> = points.into_iter().map(Some).collect();
    order
        .into_iter()
        .map(|i| slots[i].take().expect("each point once"))
        .collect()
}

async fn run_ours(
    server: &Influxd,
    pid: u32,
    points: &Arc<Vec<Point>>,
    db: &str,
    tasks: usize,
    call: usize,
    gzip: Gzip,
) -> (Run, WriterStatsSnapshot) {
    server.create_database(db).await;
    let dir = tempfile::tempdir().expect("temp dir for the spool");
    let mut config = InfluxConfig::new(server.url(), Api::V1);
    config.database = Some(db.to_owned());
    config.spool_dir = dir.path().join("spool");
    config.dead_letter_file = dir.path().join("dead-letter.jsonl");
    config.gzip = gzip;
    assert_eq!(config.batch_max_points, BATCH);
    let writer = InfluxWriter::start(config).await.expect("writer starts");

    let feeds = Arc::new(device_feeds(points.len(), tasks, call));
    let cpu = report::CpuWindow::start(&[pid]);
    let started = Instant::now();
    let mut handles = Vec::new();
    for t in 0..tasks {
        let writer = writer.clone();
        let points = Arc::clone(points);
        let feeds = Arc::clone(&feeds);
        handles.push(tokio::spawn(async move {
            let mut accepted = 0;
            for &(from, to) in &feeds[t] {
                let a = writer.write(&points[from..to]).await.expect("accepted");
                accepted += a.points;
            }
            accepted
        }));
    }
    let mut accepted = 0;
    for h in handles {
        accepted += h.await.expect("writing task");
    }
    writer.flush().await.expect("flush");
    let delivered = writer.wait_delivered(Duration::from_secs(1800)).await;
    let secs = started.elapsed().as_secs_f64();
    let cpu = cpu.finish();
    assert!(delivered, "everything delivered within 30 min");
    assert_eq!(accepted, points.len(), "every point accepted");
    let stats = writer.stats();
    let report = writer.shutdown().await;
    assert!(report.delivered_all);
    assert_eq!(stats.points_dead_lettered, 0, "no point refused");
    let run = Run {
        name: match gzip {
            Gzip::Auto => "ours: InfluxWriter, defaults (gzip auto: off on loopback)".into(),
            Gzip::On => "ours: InfluxWriter, gzip on".into(),
            Gzip::Off => "ours: InfluxWriter, gzip off".into(),
        },
        db: db.to_owned(),
        points: points.len(),
        secs,
        requests: stats.requests_sent as usize,
        cpu,
        note: format!(
            "{} requests, {} retries, {} batches spooled",
            stats.requests_sent,
            stats.retries.total(),
            stats.batches_spooled
        ),
    };
    (run, stats)
}

/// The per-request answers curl printed: (status, seconds, new connections).
fn parse_write_out(text: &str) -> Vec<(u16, f64, u32)> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let mut parts = l.split_whitespace();
            let status = parts.next().and_then(|s| s.parse().ok()).unwrap_or(0);
            let secs = parts.next().and_then(|s| s.parse().ok()).unwrap_or(0.0);
            let connects = parts.next().and_then(|s| s.parse().ok()).unwrap_or(0);
            (status, secs, connects)
        })
        .collect()
}

const WRITE_OUT: &str = "%{http_code} %{time_total} %{num_connects}\\n";

/// curl, one process, one keep-alive connection: a config file with a section per
/// batch file. Returns the run and the per-request seconds.
async fn run_curl_keepalive(
    server: &Influxd,
    pid: u32,
    files: &[PathBuf],
    points: usize,
    db: &str,
    gzip: bool,
    work: &Path,
) -> (Run, Vec<f64>) {
    server.create_database(db).await;
    let url = format!("{}/write?db={db}&precision=ns", server.url());
    let mut cfg = String::new();
    for (i, f) in files.iter().enumerate() {
        if i > 0 {
            cfg.push_str("next\n");
        }
        let _ = write!(
            cfg,
            "url = \"{url}\"\ndata-binary = \"@{}\"\n\
             header = \"Content-Type: text/plain; charset=utf-8\"\nheader = \"Expect:\"\n",
            f.display()
        );
        if gzip {
            cfg.push_str("header = \"Content-Encoding: gzip\"\n");
        }
        let _ = write!(cfg, "output = \"/dev/null\"\nwrite-out = \"{WRITE_OUT}\"\n");
    }
    let cfg_path = work.join(format!("{db}.curlrc"));
    std::fs::write(&cfg_path, cfg).expect("write the curl config");

    let cpu = report::CpuWindow::start(&[pid]);
    let started = Instant::now();
    let output = tokio::task::spawn_blocking(move || {
        Command::new("curl")
            .args(["-s", "-S", "-K"])
            .arg(&cfg_path)
            .stdin(Stdio::null())
            .output()
            .expect("curl runs (Debian package curl)")
    })
    .await
    .expect("curl task");
    let secs = started.elapsed().as_secs_f64();
    let cpu = cpu.finish();
    assert!(
        output.status.success(),
        "curl failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let answers = parse_write_out(&String::from_utf8_lossy(&output.stdout));
    assert_eq!(answers.len(), files.len(), "one answer per request");
    assert!(
        answers.iter().all(|a| a.0 == 204),
        "every request answered 204"
    );
    let connects: u32 = answers.iter().map(|a| a.2).sum();
    let run = Run {
        name: if gzip {
            "curl keep-alive, bodies gzipped beforehand".into()
        } else {
            "baseline: curl keep-alive (one process, `-K` config, `next`)".into()
        },
        db: db.to_owned(),
        points,
        secs,
        requests: answers.len(),
        cpu,
        note: format!("{} requests over {connects} connection(s)", answers.len()),
    };
    (run, answers.iter().map(|a| a.1).collect())
}

/// curl, one process per batch, one after the other (`xargs -P1`).
async fn run_curl_per_batch(
    server: &Influxd,
    pid: u32,
    files: &[PathBuf],
    points: usize,
    db: &str,
    work: &Path,
) -> Run {
    server.create_database(db).await;
    let url = format!("{}/write?db={db}&precision=ns", server.url());
    let list = work.join(format!("{db}.list"));
    let text: String = files
        .iter()
        .map(|f| format!("@{}\n", f.display()))
        .collect();
    std::fs::write(&list, text).expect("write the file list");
    let cpu = report::CpuWindow::start(&[pid]);
    let started = Instant::now();
    let output = tokio::task::spawn_blocking(move || {
        Command::new("xargs")
            .args(["-P1", "-n1", "-a"])
            .arg(&list)
            .args([
                "curl",
                "-s",
                "-S",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code} %{time_total} %{num_connects}\n",
                "-H",
                "Content-Type: text/plain; charset=utf-8",
                "-H",
                "Expect:",
                &url,
                "--data-binary",
            ])
            .stdin(Stdio::null())
            .output()
            .expect("xargs runs")
    })
    .await
    .expect("xargs task");
    let secs = started.elapsed().as_secs_f64();
    let cpu = cpu.finish();
    assert!(
        output.status.success(),
        "xargs curl failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let answers = parse_write_out(&String::from_utf8_lossy(&output.stdout));
    assert_eq!(answers.len(), files.len(), "one answer per request");
    assert!(answers.iter().all(|a| a.0 == 204), "every request 204");
    Run {
        name: "curl, one process per batch (`xargs -P1`)".into(),
        db: db.to_owned(),
        points,
        secs,
        requests: answers.len(),
        cpu,
        note: format!("{} curl processes", answers.len()),
    }
}

fn gzip_fast(data: &[u8]) -> Vec<u8> {
    // The writer's own setting (`sender.rs`: `Compression::fast()`, level 1).
    let mut e = GzEncoder::new(Vec::with_capacity(data.len() / 8), Compression::fast());
    e.write_all(data).expect("gzip into memory");
    e.finish().expect("gzip into memory")
}

fn median(v: &[f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Costs of the writer's per-batch steps, timed alone on this machine (outside the
/// runs): gzip level 1, the spool's synced append and its acknowledgement.
struct StepCosts {
    gzip_ms: f64,
    gzip_ratio: f64,
    append_ms: f64,
    ack_ms: f64,
}

fn step_costs(batches: &[Vec<u8>]) -> StepCosts {
    let sample = &batches[..batches.len().min(40)];
    let t = Instant::now();
    let mut zipped = 0;
    for b in sample {
        zipped += gzip_fast(b).len();
    }
    let gzip_ms = t.elapsed().as_secs_f64() * 1e3 / sample.len() as f64;
    let raw: usize = sample.iter().map(Vec::len).sum();

    let dir = tempfile::tempdir().expect("temp dir");
    let spool = Spool::open(dir.path().join("spool"), SpoolConfig::default()).expect("spool");
    let (mut append, mut ack) = (Duration::ZERO, Duration::ZERO);
    for b in sample {
        let t = Instant::now();
        let seq = spool.append(b).expect("append");
        append += t.elapsed();
        let t = Instant::now();
        spool.ack(seq).expect("ack");
        ack += t.elapsed();
    }
    StepCosts {
        gzip_ms,
        gzip_ratio: raw as f64 / zipped as f64,
        append_ms: append.as_secs_f64() * 1e3 / sample.len() as f64,
        ack_ms: ack.as_secs_f64() * 1e3 / sample.len() as f64,
    }
}

fn print_run(r: &Run) {
    println!(
        "{:<62} {:>10.0} points/s  {:>6.2} s  CPU: bench {:>4.0} %, curl {:>3.0} %, influxd {:>4.0} %, other {:>3.0} %  ({})",
        r.name,
        r.rate(),
        r.secs,
        r.cpu.own,
        r.cpu.children,
        r.cpu.watched,
        r.cpu.other,
        r.note
    );
}

fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let rounds = env_usize("TW_BENCH_ROUNDS", 3).max(1);
    let tasks = env_usize("TW_BENCH_TASKS", 32).max(1);
    let call = env_usize("TW_BENCH_CALL_POINTS", park::FRAME_POINTS).max(1);
    let load_before = report::load_average();
    println!("load average before: {load_before}");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let body = runtime.block_on(bench(n, rounds, tasks, call, &load_before));
    report::write_section(SECTION, COMMAND, &body);
}

async fn bench(n: usize, rounds: usize, tasks: usize, call: usize, load_before: &str) -> String {
    let server = Influxd::start(InfluxdOptions::default()).await;
    let pid = influxd_pid(&server.dir.path().join("influxd.conf"));
    let version = Command::new("influxd")
        .arg("version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    println!("{version} on {} (pid {pid})", server.url());

    let points = park::points(park::Shape::Park, n);
    let expected = expected_counts(&points);
    let points = Arc::new(by_device(points, tasks));
    // Curl posts the points in the order our feeding tasks hand them over when they
    // take turns (call k of task 0, of task 1, ..., then call k + 1 of each): the same
    // mix of series in each batch of 5,000 as ours gets.
    let feeds = device_feeds(n, tasks, call);
    let turns = feeds.iter().map(Vec::len).max().unwrap_or(0);
    let in_turn_order: Vec<&Point> = (0..turns)
        .flat_map(|k| feeds.iter().filter_map(move |calls| calls.get(k)))
        .flat_map(|&(from, to)| &points[from..to])
        .collect();
    assert_eq!(in_turn_order.len(), n);
    let work = tempfile::tempdir().expect("temp dir for the curl files");
    let mut batches = Vec::new();
    let mut files = Vec::new();
    let mut gz_files = Vec::new();
    for (i, chunk) in in_turn_order.chunks(BATCH).enumerate() {
        let mut lines = Vec::with_capacity(BATCH * 512);
        for point in chunk {
            line_protocol::encode(point, &mut lines).expect("valid point");
        }
        let path = work.path().join(format!("batch-{i:05}.lp"));
        std::fs::write(&path, &lines).expect("write a batch file");
        let gz = work.path().join(format!("batch-{i:05}.lp.gz"));
        std::fs::write(&gz, gzip_fast(&lines)).expect("write a gzipped batch file");
        files.push(path);
        gz_files.push(gz);
        batches.push(lines);
    }
    let bytes: usize = batches.iter().map(Vec::len).sum();
    println!(
        "{n} points, {} batches of {BATCH}, {:.0} bytes per point of line protocol",
        files.len(),
        bytes as f64 / n as f64
    );

    let mut ours = Vec::new();
    let mut curl = Vec::new();
    let mut curl_request_secs = Vec::new();
    let mut quiet_waits = Vec::new();
    let mut last_stats = None;
    for round in 0..rounds {
        // ABBA: curl first in even rounds, ours first in odd ones.
        for side in if round % 2 == 0 { [0, 1] } else { [1, 0] } {
            quiet_waits.push(wait_quiet(pid).await);
            if side == 0 {
                let db = format!("curl_{round}");
                let (run, secs) =
                    run_curl_keepalive(&server, pid, &files, n, &db, false, work.path()).await;
                print_run(&run);
                curl_request_secs.extend(secs);
                curl.push(run);
            } else {
                let db = format!("ours_{round}");
                let (run, stats) =
                    run_ours(&server, pid, &points, &db, tasks, call, Gzip::Auto).await;
                print_run(&run);
                last_stats = Some(stats);
                ours.push(run);
            }
        }
    }
    let mut extra = Vec::new();
    quiet_waits.push(wait_quiet(pid).await);
    let (run, gz_secs) =
        run_curl_keepalive(&server, pid, &gz_files, n, "curl_gzip", true, work.path()).await;
    print_run(&run);
    extra.push(run);
    quiet_waits.push(wait_quiet(pid).await);
    let run = run_curl_per_batch(&server, pid, &files, n, "curl_per_process", work.path()).await;
    print_run(&run);
    extra.push(run);
    quiet_waits.push(wait_quiet(pid).await);
    let (run, _) = run_ours(&server, pid, &points, "ours_gzip", tasks, call, Gzip::On).await;
    print_run(&run);
    extra.push(run);

    // Every run delivered every point.
    for r in ours.iter().chain(&curl).chain(&extra) {
        check_counts(&server, &r.db, &expected).await;
    }
    println!("every run's database holds all {n} points");

    let costs = step_costs(&batches);
    println!(
        "per batch of {BATCH}: gzip level 1 {:.1} ms (ratio {:.1}), spool append+sync {:.1} ms, \
         spool ack {:.1} ms; curl request {:.1} ms plain, {:.1} ms gzipped (medians)",
        costs.gzip_ms,
        costs.gzip_ratio,
        costs.append_ms,
        costs.ack_ms,
        median(&curl_request_secs) * 1e3,
        median(&gz_secs) * 1e3
    );
    let load_after = report::load_average();
    println!("load average after: {load_after}");

    // The report.
    let ours_rates: Vec<f64> = ours.iter().map(Run::rate).collect();
    let curl_rates: Vec<f64> = curl.iter().map(Run::rate).collect();
    let (ours_rate, curl_rate) = (median(&ours_rates), median(&curl_rates));
    let ratio = ours_rate / curl_rate;
    let per_process = extra[1].rate();
    let mut body = format!(
        "{version}, started by the bench (the tests' harness, `storage/tests/servers/mod.rs`) \
         on a free loopback port with a temporary directory, default settings (WAL fsync on \
         every write). {n} points with the simulated park's shapes (`model/benches/park/mod.rs`: \
         whole park frames of 304 rack PDU, 8 CDU and 182 MQTT sensor points, 10 s apart), \
         {:.0} bytes of line protocol per point; each run into a fresh database, every \
         database counted afterwards: all {n} points in each.\n\n\
         - **ours**: `InfluxWriter` with its defaults: v1 API, gzip `auto` (off for a \
         server on this host, as here: compressing saves no network on loopback and costs \
         both sides CPU; on, level 1, for any other host), \
         `batch_max_points` {BATCH}, spool in a temporary directory (same disk as influxd), \
         fed by {tasks} tasks each writing calls of {call} points, each task owning every \
         {tasks}th device of the park and writing its devices' points in time order (as a \
         collector's device tasks do); timed from the first `write` to the last point confirmed \
         (`flush` + `wait_delivered`): encoding, batching, synced spool appends, gzip, \
         requests and acknowledgements included.\n\
         - **baseline**: the same points encoded beforehand (not timed) into files of {BATCH} \
         points, in the order ours receives them when its feeding tasks take turns (so each \
         batch mixes the same series as ours), posted in order by one `curl` process over one keep-alive connection \
         (`curl -s -S -K FILE`, one section per batch separated by `next`, `Expect:` off); \
         timed from the process start to its exit. The fastest fair way found: one curl \
         process per batch (`xargs -P1`, below) reached {per_process:.0} points/s.\n\
         - Rounds: {rounds}, ours and curl alternating (ABBA), the server left to go quiet \
         (its compactions) before each run; medians shown. Points per second are points, \
         not field values (a rack PDU point carries 26 values).\n\n\
         | run | points/s | seconds | requests | CPU bench | CPU curl | CPU influxd | CPU other |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|\n",
        bytes as f64 / n as f64
    );
    let row = |body: &mut String, r: &Run| {
        let _ = writeln!(
            body,
            "| {} | {:.0} | {:.2} | {} | {:.0} % | {:.0} % | {:.0} % | {:.0} % |",
            r.name,
            r.rate(),
            r.secs,
            r.requests,
            r.cpu.own,
            r.cpu.children,
            r.cpu.watched,
            r.cpu.other
        );
    };
    let mut all: Vec<&Run> = Vec::new();
    for round in 0..rounds {
        let pair = if round % 2 == 0 {
            [&curl[round], &ours[round]]
        } else {
            [&ours[round], &curl[round]]
        };
        all.extend(pair);
    }
    for r in all {
        row(&mut body, r);
    }
    for r in &extra {
        row(&mut body, r);
    }
    let verdict = if ratio >= TARGET { "met" } else { "NOT met" };
    let _ = write!(
        body,
        "\nCPU columns: % of one core over the run (200 % is the whole machine); *bench* is \
         this process (for ours: the writer, its encoding and gzip; for curl: nothing), \
         *other* is the rest of the machine.\n\n\
         Median: ours {ours_rate:.0} points/s, curl {curl_rate:.0} points/s: ours at \
         {ratio:.2}x of curl. Target (at least {TARGET}x): {verdict}. With gzip on (as for \
         a server on another host; one run), ours at {:.2}x of curl posting the same \
         batches gzipped beforehand.\n\n\
         Per batch of {BATCH} points, timed alone in the same run: gzip level 1 {:.1} ms \
         (ratio {:.1}); the spool's synced append {:.1} ms and acknowledgement {:.1} ms; \
         one request as curl saw it (median) {:.1} ms plain, {:.1} ms gzipped.\n",
        extra[2].rate() / extra[0].rate(),
        costs.gzip_ms,
        costs.gzip_ratio,
        costs.append_ms,
        costs.ack_ms,
        median(&curl_request_secs) * 1e3,
        median(&gz_secs) * 1e3
    );
    if let Some(stats) = last_stats {
        let _ = writeln!(
            body,
            "\nWriter counters of the last run of ours: {} batches spooled, {} requests, \
             {} retries, {} points dead-lettered.",
            stats.batches_spooled,
            stats.requests_sent,
            stats.retries.total(),
            stats.points_dead_lettered
        );
    }
    let busy = ours
        .iter()
        .chain(&curl)
        .map(|r| r.cpu.other)
        .fold(0.0, f64::max);
    let _ = writeln!(
        body,
        "\nLoad average (1 / 5 / 15 min) before the run {load_before}, after {load_after}; \
         the rest of the machine used up to {busy:.0} % of a core during a timed run{}. \
         Waits for the server to go quiet: {:.0} s in all.",
        if busy > 20.0 {
            ": the machine was busy with other work, which slows both sides and the server"
        } else {
            ""
        },
        quiet_waits.iter().sum::<f64>()
    );
    body
}
