//! `tidewatch`: the command-line entry point. Thin by design: each subcommand parses its
//! options and hands over to the crate that owns the role.

use std::io::{IsTerminal, Write};
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use tidewatch_devices::{FaultSpec, ProfileSet, Site};
use tidewatch_sim::bindings;
use tidewatch_sim::fast::{frame_points, FastRun, FastStats};
use tidewatch_sim::faults::{truth_lines, FaultRequest};
use tidewatch_sim::mqtt::BrokerAddress;
use tidewatch_sim::{Plant, RealtimeConfig, Simulator};
use tidewatch_storage::embedded::{EmbeddedConfig, EmbeddedStore};

use crate::batch::StoreBatch;

/// jemalloc, not glibc malloc: a long-running `collect` or `demo` allocates in many threads
/// (collectors, the store writer, polars' pool), and glibc kept the freed memory in
/// per-thread arenas (about 1 GiB resident against 0.2 GiB; BENCHMARKS.md).
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

mod analyze;
mod batch;
mod collect;
mod demo;
mod periodic;
mod time_arg;

/// Datacenter energy and liquid-cooling telemetry for the Qingdao AI computing park.
#[derive(Parser)]
#[command(name = "tidewatch", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the whole chain on the simulated park, with nothing to install: the plant
    /// simulator serving Modbus TCP and MQTT (embedded broker) on free loopback ports.
    Demo(DemoArgs),
    /// Run the plant simulator: in real time (Modbus TCP servers, MQTT publishing, an
    /// HTTP control endpoint for faults), or with --fast, a whole period generated as
    /// fast as the machine allows, as line protocol or into an embedded store.
    Simulate(SimulateArgs),
    /// Run the Modbus TCP and MQTT collectors of a configuration file, writing into its
    /// store (the embedded store unless InfluxDB is configured), until Ctrl-C or
    /// SIGTERM, which flush everything accepted.
    Collect(CollectArgs),
    /// Run the service: the collectors of a configuration file (as `collect`) and, beside
    /// them, the periodic analytics job over the store they write (the configuration's
    /// [analytics.job]: every minute over the last 24 hours by default), its results
    /// written back as derived measurements and summed up in the log; until Ctrl-C or
    /// SIGTERM, which let the analytics run in progress finish and flush everything
    /// accepted. The analytics' meters and loops come from --site and --profiles, else
    /// the [modbus] table's site and profiles, else the built-in park.
    Run(RunArgs),
    /// Validate the site description and every device profile, and with --config a
    /// collector configuration (every endpoint and subscription), without touching a
    /// device or a broker; each error names the file, the line and the field.
    Check(CheckArgs),
    /// Analyse a time range from the store: energy PUE (per centre and park, with its
    /// category and coverage), the split (CLF, PLF), pPUE per micro-module and the
    /// GB 40879 grades; peak demand, cost, CO2/CUE/WUE, cooling per loop and thermal
    /// anomalies. Month by month with a progress line; the report of a longer range is
    /// composed from the months'. With --write-back, the results are written back into
    /// the store as derived measurements, a backfill over history.
    Analyze(AnalyzeArgs),
}

#[derive(Args)]
struct AnalyzeArgs {
    #[command(flatten)]
    site: SiteArgs,
    /// A configuration file: its [store] (where the points are) and [analytics] tables
    /// (tariff, thresholds; sample: config/collect.toml).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// An embedded store directory (the demo's is <data dir>/store), instead of the
    /// [store] of --config; with --config, its [analytics] still applies.
    #[arg(long = "store", value_name = "DIR")]
    store_dir: Option<PathBuf>,
    /// Start of the range (RFC 3339, e.g. 2026-01-01T00:00:00+08:00).
    #[arg(long, value_name = "TIME")]
    from: String,
    /// End of the range (RFC 3339), a length after --from (e.g. 30d), or "now".
    #[arg(long, value_name = "TIME|DURATION|now", default_value = "now")]
    to: String,
    /// Print the whole report (daily values, meters, counter events) as JSON.
    #[arg(long)]
    json: bool,
    /// Write the results back into the store as derived measurements: energy PUE of
    /// every whole local day and month; demand, cost, carbon and the cooling summary of
    /// every whole month; hourly heat capture; anomaly events.
    #[arg(long)]
    write_back: bool,
    /// Language of the anomaly sentences in the text report.
    #[arg(long, value_enum, default_value = "en")]
    lang: analyze::Lang,
}

#[derive(Args)]
struct CollectArgs {
    /// The configuration file: [store], [modbus], [mqtt] (sample: config/collect.toml).
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// How often to print a status line (devices up, values read, MQTT messages).
    #[arg(long, value_name = "DURATION", default_value = "10s")]
    status_every: String,
}

#[derive(Args)]
struct RunArgs {
    #[command(flatten)]
    collect: CollectArgs,
    /// The site whose meters and loops the analytics computes (clap shows the flattened
    /// options' own help; the command's help says the order they are looked for in).
    #[command(flatten)]
    site: SiteArgs,
}

#[derive(Args)]
struct CheckArgs {
    #[command(flatten)]
    site: SiteArgs,
    /// Also check this collector configuration (see `tidewatch collect`).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

#[derive(Args, Clone)]
struct SiteArgs {
    /// Site description (TOML). Default: the built-in Qingdao park.
    #[arg(long, value_name = "FILE")]
    site: Option<PathBuf>,
    /// Folder of device profiles (*.toml). Default: the built-in profiles.
    #[arg(long, value_name = "DIR")]
    profiles: Option<PathBuf>,
}

impl CollectArgs {
    fn status_every(&self) -> Result<Duration> {
        let every = tidewatch_devices::duration::parse_duration(&self.status_every)
            .with_context(|| format!("--status-every {:?}", self.status_every))?;
        if every.is_zero() {
            bail!("--status-every must be longer than zero");
        }
        Ok(every)
    }
}

impl SiteArgs {
    fn load(&self) -> Result<(ProfileSet, Site)> {
        let profiles = match &self.profiles {
            Some(dir) => ProfileSet::load_dir(dir)?,
            None => ProfileSet::builtin()?,
        };
        let site = match &self.site {
            Some(path) => Site::load(path, &profiles)?,
            None => Site::builtin(&profiles)?,
        };
        Ok((profiles, site))
    }
}

#[derive(Args)]
struct DemoArgs {
    #[command(flatten)]
    site: SiteArgs,
    /// Stop after this long (e.g. 30s, 10m); default: run until Ctrl-C.
    #[arg(long, value_name = "DURATION")]
    duration: Option<String>,
    /// Folder for the demo's files (ground truth, endpoints); default: a new temporary folder.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
}

#[derive(Args)]
struct SimulateArgs {
    #[command(flatten)]
    site: SiteArgs,
    /// Generate a period as fast as possible instead of serving in real time.
    #[arg(long)]
    fast: bool,
    /// Fast mode: start of the period (RFC 3339, e.g. 2026-01-01T00:00:00+08:00). Default: the site's start.
    #[arg(long, value_name = "TIME")]
    from: Option<String>,
    /// Fast mode: end of the period (RFC 3339) or a length after --from (e.g. 30d, 12h).
    #[arg(long, value_name = "TIME|DURATION", default_value = "1d")]
    to: String,
    /// Fast mode: sampling step (e.g. 10s, 1m).
    #[arg(long, value_name = "DURATION", default_value = "10s")]
    step: String,
    /// Fast mode: write line protocol here ("-" for standard output); without it or
    /// --store only counts are printed.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Fast mode: write the points into the embedded store in this folder (created if
    /// missing), for `tidewatch analyze --store DIR`; its days are compacted at the end.
    #[arg(long = "store", value_name = "DIR")]
    store: Option<PathBuf>,
    /// Real time: address to bind the Modbus endpoints and the control endpoint on.
    #[arg(long, default_value = "127.0.0.1")]
    bind: IpAddr,
    /// Real time: first Modbus TCP port (endpoints take consecutive ports); default: free ports.
    #[arg(long, value_name = "PORT")]
    modbus_port: Option<u16>,
    /// Real time: control endpoint port; 0 for a free one.
    #[arg(long, value_name = "PORT", default_value_t = 0)]
    control_port: u16,
    /// Real time: MQTT broker to publish the sensors to (HOST:PORT).
    #[arg(long, value_name = "HOST:PORT")]
    mqtt: Option<String>,
    /// Inject a fault, besides the site file's (repeatable): the keys of the site file's
    /// [[fault]] as key=value pairs, e.g. kind=pump_failure,target=dc2-mm01-cdu,at=2h,duration=1h
    /// (at: after the start of the run, default 0s; duration: default until the end;
    /// magnitude: the kind's default; field: for stuck_sensor and drifting_sensor). Kinds,
    /// targets and magnitudes: fixtures/README.md, "Faults".
    #[arg(long = "fault", value_name = "kind=KIND,target=ID,...", value_parser = FaultSpec::from_arg)]
    faults: Vec<FaultSpec>,
    /// Append every fault start and end (ground truth, JSON lines) to this file.
    #[arg(long, value_name = "FILE")]
    truth: Option<PathBuf>,
    /// Real time: write the served endpoints (JSON) to this file once listening.
    #[arg(long, value_name = "FILE")]
    endpoints: Option<PathBuf>,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    // rumqttd (the demo's embedded broker) logs every client disconnect as an error from
    // threads of its own; the demo checks the broker itself, so keep it quiet. The demo
    // prints its own status lines: its parts (the embedded store opening, ...) log
    // warnings and errors only.
    let default_filter = match cli.command {
        Command::Demo(_) => "warn,rumqttd=off",
        _ => "warn,tidewatch=info,rumqttd=off",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| default_filter.into()),
        )
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
    match cli.command {
        Command::Check(args) => check(&args),
        Command::Collect(args) => {
            let every = args.status_every()?;
            runtime()?.block_on(collect::run(args.config, every, None))
        }
        Command::Run(args) => {
            let every = args.collect.status_every()?;
            runtime()?.block_on(collect::run(args.collect.config, every, Some(args.site)))
        }
        Command::Simulate(args) if args.fast => simulate_fast(&args),
        Command::Simulate(args) => runtime()?.block_on(simulate_realtime(args)),
        Command::Demo(args) => runtime()?.block_on(demo::run(args)),
        Command::Analyze(args) => {
            let (profiles, site) = args.site.load()?;
            let request = analyze::AnalyzeRequest {
                config: args.config,
                store_dir: args.store_dir,
                from: args.from,
                to: args.to,
                json: args.json,
                write_back: args.write_back,
                lang: args.lang,
            };
            runtime()?.block_on(analyze::run(request, &profiles, &site))
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

fn check(args: &CheckArgs) -> Result<()> {
    let (profiles, site) = args.site.load()?;
    let plant = Plant::new(&site, site.simulation.start_unix)?;
    let bound = bindings::bind_all(&plant, &profiles)?;
    let fields: usize = bound.iter().map(|b| b.fields.len()).sum();
    println!(
        "ok: {} ({} centres, {} Modbus devices with {} fields, {} MQTT sensors, {} profiles)",
        site.path.display(),
        site.centres.len(),
        plant.devices().len(),
        fields,
        plant.sensors().len(),
        profiles.len()
    );
    if let Some(path) = &args.config {
        let config = collect::CollectConfig::load(path)?;
        let (modbus, mqtt) = config.resolve(path)?;
        println!(
            "ok: {} ({} Modbus endpoints, {} MQTT subscriptions)",
            path.display(),
            config.modbus.as_ref().map_or(0, |m| m.endpoints.len()),
            config.mqtt.as_ref().map_or(0, |m| m.subscriptions.len()),
        );
        drop((modbus, mqtt));
    }
    Ok(())
}

fn simulate_fast(args: &SimulateArgs) -> Result<()> {
    let (profiles, site) = args.site.load()?;
    let from_ms = match &args.from {
        Some(t) => time_arg::parse_time(t).with_context(|| format!("--from {t:?}"))?,
        None => site.simulation.start_unix * 1000,
    };
    let to_ms =
        time_arg::parse_end(&args.to, from_ms).with_context(|| format!("--to {:?}", args.to))?;
    let step = tidewatch_devices::duration::parse_duration(&args.step)
        .with_context(|| format!("--step {:?}", args.step))?;
    if to_ms <= from_ms {
        bail!("--to must be after --from");
    }
    if step.is_zero() {
        bail!("--step must be longer than zero");
    }
    let mut plant = Plant::new(&site, from_ms)?;
    for f in &args.faults {
        plant
            .inject(FaultRequest::scheduled(f, from_ms))
            .context("--fault")?;
    }
    let bound = bindings::bind_all(&plant, &profiles)?;
    let mut truth = match &args.truth {
        Some(path) => Some(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("cannot open the ground-truth file {}", path.display()))?,
        ),
        None => None,
    };
    let mut out: Option<Box<dyn Write>> = match &args.out {
        None => None,
        Some(p) if p.as_os_str() == "-" => {
            Some(Box::new(std::io::BufWriter::new(std::io::stdout().lock())))
        }
        Some(p) => Some(Box::new(std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("cannot create {}", p.display()))?,
        ))),
    };
    let store = match &args.store {
        Some(dir) => Some(
            EmbeddedStore::open(EmbeddedConfig::in_dir(dir))
                .with_context(|| format!("cannot open the embedded store in {}", dir.display()))?,
        ),
        None => None,
    };
    if let Some(store) = &store {
        refuse_overlap(store, from_ms..to_ms)?;
    }
    let mut batch = store.as_ref().map(StoreBatch::new);
    let total_steps = ((to_ms - from_ms) as f64 / step.as_millis() as f64).floor() as u64;
    let started = Instant::now();
    let mut last_report = Instant::now();
    let mut frame = Vec::new();
    let mut buf = Vec::new();
    let mut error: Option<anyhow::Error> = None;
    let mut stats = FastStats::default();
    // An hour at a time, so that a failed write stops the run within the hour.
    let mut at = from_ms;
    while at < to_ms && error.is_none() {
        let until = (at + 3_600_000).min(to_ms);
        let hour = FastRun::new(&mut plant, &bound).run(step.as_secs_f64(), until, |plant, f| {
            if error.is_some() {
                return;
            }
            if out.is_some() || batch.is_some() {
                // Into the store's batch when there is one, else into a frame of its own.
                let points = match batch.as_mut() {
                    Some(b) => b.pending(),
                    None => {
                        frame.clear();
                        &mut frame
                    }
                };
                let before = points.len();
                frame_points(plant, &bound, f, points);
                if let Some(w) = out.as_mut() {
                    buf.clear();
                    let written =
                        tidewatch_model::line_protocol::encode_batch(&points[before..], &mut buf)
                            .map_err(anyhow::Error::from)
                            .and_then(|_| w.write_all(&buf).map_err(anyhow::Error::from));
                    if let Err(e) = written {
                        error = Some(e.context("writing line protocol"));
                        return;
                    }
                }
                if let Some(b) = batch.as_mut() {
                    error = b.write_if_full().err();
                }
            }
            if last_report.elapsed() > Duration::from_secs(2) {
                last_report = Instant::now();
                eprint!(
                    "\r{:5.1} % of {} steps",
                    plant.steps() as f64 * 100.0 / total_steps.max(1) as f64,
                    total_steps
                );
            }
        });
        stats.steps += hour.steps;
        stats.values += hour.values;
        at = until;
        if let Some(file) = truth.as_mut() {
            let events = plant.take_events();
            if let Err(e) = file.write_all(&truth_lines(&events)) {
                error = Some(anyhow::Error::from(e).context("writing the ground-truth file"));
            }
        }
    }
    if let Some(e) = error {
        // What the store accepted before is in its write-ahead log and stays there.
        return Err(e);
    }
    if let Some(mut w) = out {
        w.flush().context("writing line protocol")?;
    }
    if let (Some(batch), Some(store)) = (batch, &store) {
        let stored = batch.finish()?;
        eprint!("\r{stored} points stored; writing them to Parquet and compacting the days...");
        store.shutdown().context("flushing the store to Parquet")?;
        let maintained = store
            .maintain(periodic::wall_clock_ns())
            .context("compacting the store")?;
        eprintln!(
            "\r{stored} points stored in {} ({} day partitions compacted); analyse them with:\n  \
             tidewatch analyze --store {} --from {} --to {}",
            store.dir().display(),
            maintained.compacted,
            store.dir().display(),
            utc_text(from_ms),
            utc_text(to_ms)
        );
    }
    let secs = started.elapsed().as_secs_f64();
    for c in &site.centres {
        if let Some(e) = plant.centre_energy(&c.id) {
            eprintln!(
                "{}: IT {:.0} kWh (at the PDUs), incoming {:.0} kWh, energy PUE {:.3} (ground truth)",
                c.id,
                e.it_kwh,
                e.incoming_kwh,
                e.pue()
            );
        }
    }
    eprintln!(
        "\r{} steps, {} field values in {:.2} s ({:.1} million values/s)",
        stats.steps,
        stats.values,
        secs,
        stats.values as f64 / secs / 1e6
    );
    Ok(())
}

/// Refuses to simulate into a store that already holds points of the period: the
/// embedded store keeps every point written, so each would be stored twice.
fn refuse_overlap(store: &EmbeddedStore, period_ms: std::ops::Range<i64>) -> Result<()> {
    let period_ns = period_ms.start * 1_000_000..period_ms.end * 1_000_000;
    for measurement in store.measurements() {
        let scan = tidewatch_storage::store::Scan::new(&measurement, period_ns.clone());
        let context = || format!("reading {measurement} in {}", store.dir().display());
        let rows = store
            .scan(&scan)
            .with_context(context)?
            .limit(1)
            .collect()
            .with_context(context)?
            .height();
        if rows > 0 {
            bail!(
                "the store in {} already holds {measurement} points between {} and {}; \
                 simulating the period again would store each point twice: choose another \
                 folder or period",
                store.dir().display(),
                utc_text(period_ms.start),
                utc_text(period_ms.end)
            );
        }
    }
    Ok(())
}

/// A Unix time in ms as RFC 3339 UTC (whole seconds), for a command line.
fn utc_text(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).map_or_else(
        || ms.to_string(),
        |t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
    )
}

async fn simulate_realtime(args: SimulateArgs) -> Result<()> {
    let (profiles, site) = args.site.load()?;
    let mqtt = match &args.mqtt {
        Some(addr) => {
            let (host, port) = addr.rsplit_once(':').context("--mqtt wants HOST:PORT")?;
            let port: u16 = port
                .parse()
                .with_context(|| format!("--mqtt {addr:?}: bad port"))?;
            Some(BrokerAddress {
                host: host.to_string(),
                port,
                client_id: "tidewatch-simulator".into(),
            })
        }
        None => None,
    };
    let config = RealtimeConfig {
        bind: args.bind,
        modbus_base_port: args.modbus_port,
        control_port: args.control_port,
        mqtt,
        truth_path: args.truth.clone(),
        faults: args.faults.clone(),
        ..RealtimeConfig::default()
    };
    let sim = Simulator::start(&site, &profiles, config).await?;
    let endpoints = serde_json::to_string_pretty(&sim.endpoints)?;
    if let Some(path) = &args.endpoints {
        std::fs::write(path, &endpoints)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    eprintln!(
        "simulating {}: {} Modbus devices on {} endpoints, {} MQTT sensors; control at {}",
        site.park.name,
        sim.endpoints.device_count(),
        sim.endpoints.modbus.len(),
        sim.endpoints.sensors.len(),
        sim.endpoints.control
    );
    if args.endpoints.is_none() {
        println!("{endpoints}");
    }
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    eprintln!("stopping");
    sim.shutdown().await;
    Ok(())
}
