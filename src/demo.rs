//! `tidewatch demo`: the simulated park with everything embedded, on free loopback
//! ports, so a newcomer sees the chain work with one command and no servers installed.
//! Each issue adds its part here (collectors, store, analytics, alerts, dashboards).
//!
//! Collection and storage: the collectors of `config/collect.toml`, pointed at the
//! simulator (every Modbus TCP endpoint it serves, and the embedded MQTT broker), read
//! the park over real Modbus TCP and MQTT into the embedded store under the demo's data
//! dir (`<data dir>/store`). Alongside, a fast-mode backfill writes the two days before
//! the demo started (60 s steps), so there is history to look at from the first
//! minute. The status line shows the devices up, the values read and the stored rows
//! and bytes growing.

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use tidewatch_analytics::job::PeriodicJob;
use tidewatch_collectors::modbus::{EndpointConfig, ModbusCollector};
use tidewatch_collectors::mqtt::MqttCollector;
use tidewatch_devices::site::MeterRole;
use tidewatch_sim::bindings;
use tidewatch_sim::fast::{frame_points, FastRun};
use tidewatch_sim::mqtt::BrokerAddress;
use tidewatch_sim::{Plant, RealtimeConfig, Simulator};
use tidewatch_storage::embedded::{EmbeddedConfig, EmbeddedStore};
use tidewatch_storage::store::Store;

use crate::batch::StoreBatch;
use crate::collect::{CollectConfig, Collecting};
use crate::periodic;

use crate::DemoArgs;

/// Start rumqttd, the embedded MQTT broker, on a free loopback port.
fn start_broker() -> Result<SocketAddr> {
    // rumqttd binds by itself and does not report the port it got, so find a free one
    // first (the window for another process to take it is a few milliseconds).
    let probe =
        TcpListener::bind("127.0.0.1:0").context("no free loopback port for the MQTT broker")?;
    let addr = probe.local_addr()?;
    drop(probe);
    let mut v4 = HashMap::new();
    v4.insert(
        "v4-1".to_string(),
        rumqttd::ServerSettings {
            name: "v4-1".into(),
            listen: addr,
            tls: None,
            next_connection_delay_ms: 1,
            connections: rumqttd::ConnectionSettings {
                connection_timeout_ms: 60_000,
                max_payload_size: 256 * 1024,
                max_inflight_count: 500,
                auth: None,
                external_auth: None,
                dynamic_filters: true,
            },
        },
    );
    let config = rumqttd::Config {
        id: 0,
        router: rumqttd::RouterConfig {
            max_connections: 1000,
            max_outgoing_packet_count: 2000,
            max_segment_size: 100 * 1024 * 1024,
            max_segment_count: 10,
            custom_segment: None,
            initialized_filters: None,
            shared_subscriptions_strategy: Default::default(),
        },
        v4: Some(v4),
        v5: None,
        ws: None,
        cluster: None,
        console: None,
        bridge: None,
        prometheus: None,
        metrics: None,
    };
    std::thread::Builder::new()
        .name("mqtt-broker".into())
        .spawn(move || {
            let mut broker = rumqttd::Broker::new(config);
            if let Err(err) = broker.start() {
                tracing::error!(%err, "embedded MQTT broker stopped");
            }
        })
        .context("cannot start the embedded MQTT broker")?;
    Ok(addr)
}

/// rumqttd reports its own failures (a port taken meanwhile) only in its log, which
/// the demo silences: check that the broker accepts connections.
async fn wait_for_broker(addr: SocketAddr) -> Result<()> {
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    anyhow::bail!("the embedded MQTT broker does not accept connections on {addr} after 5 s")
}

/// Count what arrives on the broker, to show the MQTT path works end to end.
async fn count_messages(broker: SocketAddr, counter: Arc<AtomicU64>) {
    let mut options = MqttOptions::new(
        "tidewatch-demo-watch",
        broker.ip().to_string(),
        broker.port(),
    );
    options.set_keep_alive(Duration::from_secs(15));
    let (client, mut events) = AsyncClient::new(options, 100);
    loop {
        match events.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                let _ = client.subscribe("tidewatch/#", QoS::AtMostOnce).await;
            }
            Ok(Event::Incoming(Packet::Publish(_))) => {
                counter.fetch_add(1, Ordering::Relaxed);
            }
            Ok(_) => {}
            Err(_) => tokio::time::sleep(Duration::from_millis(300)).await,
        }
    }
}

pub async fn run(args: DemoArgs) -> Result<()> {
    let (profiles, site) = args.site.load()?;
    let stop_after = match &args.duration {
        Some(d) => Some(
            tidewatch_devices::duration::parse_duration(d)
                .with_context(|| format!("--duration {d:?}"))?,
        ),
        None => None,
    };
    let data_dir = match &args.data_dir {
        Some(d) => {
            std::fs::create_dir_all(d).with_context(|| format!("cannot create {}", d.display()))?;
            d.clone()
        }
        None => {
            // Kept after the demo ends, so its files can be looked at.
            tempfile::Builder::new()
                .prefix("tidewatch-demo-")
                .tempdir()
                .context("cannot create a folder for the demo's files")?
                .keep()
        }
    };
    let store = open_store(&data_dir).await?;
    let broker = start_broker()?;
    wait_for_broker(broker).await?;
    let truth = data_dir.join("ground-truth.jsonl");
    let config = RealtimeConfig {
        mqtt: Some(BrokerAddress {
            host: broker.ip().to_string(),
            port: broker.port(),
            client_id: "tidewatch-simulator".into(),
        }),
        truth_path: Some(truth.clone()),
        ..RealtimeConfig::default()
    };
    let sim = Simulator::start(&site, &profiles, config).await?;
    std::fs::write(
        data_dir.join("endpoints.json"),
        serde_json::to_string_pretty(&sim.endpoints)?,
    )?;
    let received = Arc::new(AtomicU64::new(0));
    let watcher = tokio::spawn(count_messages(broker, received.clone()));
    let backfill = Backfill::start(&site, &profiles, store.clone())?;
    let sample = CollectConfig::parse(
        include_str!("../config/collect.toml"),
        std::path::Path::new("config/collect.toml"),
    )?;
    let window = sample.analytics.job.schedule().label();
    let collecting = start_collectors(&sample, &sim, &site, &profiles, broker, store.clone())?;
    // The analytics job starts once the backfill has written the last 24 hours.
    let mut analytics: Option<PeriodicJob> = None;
    let mut analysed = None;

    let e = &sim.endpoints;
    println!("tidewatch demo: {}", site.park.name);
    println!(
        "  plant simulator   {} Modbus TCP devices on {} loopback endpoints, {} MQTT sensors",
        e.device_count(),
        e.modbus.len(),
        e.sensors.len()
    );
    println!("  MQTT broker       mqtt://{broker} (embedded rumqttd)");
    println!("  control endpoint  {}", e.control);
    println!("  files             {}", data_dir.display());
    println!(
        "  collectors        config/collect.toml, pointed at the simulator's endpoints and broker"
    );
    println!(
        "  embedded store    {} (what the collectors read, and a backfill of the last 2 days)",
        store.dir().display()
    );
    println!(
        "  analytics         every {} over the last {window}: energy PUE, demand, cost, carbon, cooling, thermal anomalies; written back as derived measurements",
        tidewatch_devices::format_duration(sample.analytics.job.every)
    );
    if let Some((addr, unit)) = e.device("dc2-mm01-cdu") {
        println!("\nTry, in another terminal:");
        println!("  mbpoll -m tcp -p {} -a {} -t 3 -r 1 -c 6 -1 {}      # CDU temperatures x10 (input registers)", addr.port(), unit, addr.ip());
        println!(
            "  mosquitto_sub -h {} -p {} -t 'tidewatch/#' -v",
            broker.ip(),
            broker.port()
        );
        println!("  curl -s {}/devices/dc2-mm01-cdu", e.control);
        println!(
            "  curl -s -XPOST {}/faults -H 'content-type: application/json' -d '{{\"kind\":\"pump_failure\",\"target\":\"dc2-mm01-cdu\",\"duration_s\":300}}'",
            e.control
        );
    }
    println!();

    let started = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_secs(10));
    tick.tick().await;
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let stored = format!("{} | {}", collecting.status(), store_status(&store, &backfill));
                print_status(&sim, &site, received.load(Ordering::Relaxed), &stored);
                if analytics.is_none() && backfill.per_mille() >= 1000 {
                    let job = periodic::start(
                        Store::Embedded(store.clone()),
                        &site,
                        &profiles,
                        sample.analytics.clone(),
                        Duration::ZERO,
                    )?;
                    analysed = Some(job.latest());
                    analytics = Some(job);
                }
                if stop_after.is_some_and(|d| started.elapsed() >= d) {
                    break;
                }
            }
            Some(run) = periodic::next_run(&mut analysed) => {
                println!("{}", periodic::analytics_line(&run, &window));
            }
            r = tokio::signal::ctrl_c() => {
                r.context("waiting for Ctrl-C")?;
                break;
            }
        }
    }
    println!("stopping; ground truth in {}", truth.display());
    println!(
        "analyse what was stored (after the demo, which holds the store while it runs):\n  \
         cargo run --release -- analyze --store {} --config config/collect.toml --from {} --to now",
        store.dir().display(),
        crate::utc_text((chrono::Utc::now() - chrono::Duration::days(2)).timestamp_millis())
    );
    if let Some(job) = analytics {
        job.stop().await;
    }
    watcher.abort();
    collecting.shutdown().await;
    sim.shutdown().await;
    backfill.stop().await;
    let closing = store.clone();
    tokio::task::spawn_blocking(move || closing.shutdown())
        .await
        .context("flushing the embedded store")??;
    let stats = store.stats();
    println!(
        "store: {} rows in {} Parquet files under {}",
        stats.rows_in_files,
        stats.files,
        store.dir().display()
    );
    Ok(())
}

/// The embedded store of the demo, in `<data dir>/store`, flushed to Parquet every
/// 30 s so that files appear while the demo runs.
async fn open_store(data_dir: &std::path::Path) -> Result<EmbeddedStore> {
    let config = EmbeddedConfig {
        flush_interval: Duration::from_secs(30),
        ..EmbeddedConfig::in_dir(data_dir.join("store"))
    };
    let dir = config.dir.clone();
    tokio::task::spawn_blocking(move || EmbeddedStore::open(config))
        .await?
        .with_context(|| format!("cannot open the embedded store in {}", dir.display()))
}

/// The fast-mode backfill: the two days before the demo started, at 60 s steps, on a
/// plant of its own, written to the store on a blocking thread while the demo runs.
struct Backfill {
    /// Per mille of the period done.
    progress: Arc<AtomicU64>,
    cancel: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<Result<u64>>,
}

impl Backfill {
    const PERIOD_MS: i64 = 2 * 24 * 3600 * 1000;
    const STEP_S: f64 = 60.0;

    fn start(
        site: &tidewatch_devices::Site,
        profiles: &tidewatch_devices::ProfileSet,
        store: EmbeddedStore,
    ) -> Result<Backfill> {
        let until_ms = chrono::Utc::now().timestamp_millis();
        let from_ms = until_ms - Self::PERIOD_MS;
        let mut plant = Plant::new(site, from_ms)?;
        let bound = bindings::bind_all(&plant, profiles)?;
        let progress = Arc::new(AtomicU64::new(0));
        let cancel = Arc::new(AtomicBool::new(false));
        let task = {
            let (progress, cancel) = (progress.clone(), cancel.clone());
            tokio::task::spawn_blocking(move || -> Result<u64> {
                let mut batch = StoreBatch::new(&store);
                let mut error = None;
                // An hour at a time, so that a stop request is seen quickly.
                let mut at = from_ms;
                while at < until_ms && !cancel.load(Ordering::Relaxed) && error.is_none() {
                    let to = (at + 3_600_000).min(until_ms);
                    FastRun::new(&mut plant, &bound).run(Self::STEP_S, to, |plant, frame| {
                        if error.is_none() {
                            frame_points(plant, &bound, frame, batch.pending());
                            error = batch.write_if_full().err();
                        }
                    });
                    at = to;
                    progress.store(
                        ((at - from_ms) * 1000 / Self::PERIOD_MS) as u64,
                        Ordering::Relaxed,
                    );
                }
                if let Some(e) = error {
                    return Err(e);
                }
                batch.finish()
            })
        };
        Ok(Backfill {
            progress,
            cancel,
            task,
        })
    }

    fn per_mille(&self) -> u64 {
        self.progress.load(Ordering::Relaxed)
    }

    async fn stop(self) {
        self.cancel.store(true, Ordering::Relaxed);
        match self.task.await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "demo: the backfill failed"),
            Err(e) => tracing::error!(error = %e, "demo: the backfill panicked"),
        }
    }
}

/// The collectors of `config/collect.toml`, pointed at the simulator: its Modbus
/// endpoints replace the sample's addresses, its embedded broker the sample's broker.
fn start_collectors(
    sample: &CollectConfig,
    sim: &Simulator,
    site: &tidewatch_devices::Site,
    profiles: &tidewatch_devices::ProfileSet,
    broker: SocketAddr,
    store: EmbeddedStore,
) -> Result<Collecting> {
    let mut modbus = sample
        .modbus
        .clone()
        .context("config/collect.toml has no [modbus]")?;
    modbus.endpoints = sim
        .endpoints
        .modbus
        .iter()
        .map(|e| EndpointConfig {
            address: e.address.to_string(),
            devices: match &e.gateway {
                Some(_) => Vec::new(),
                None => e.devices.iter().map(|d| d.id.clone()).collect(),
            },
            gateway: e.gateway.clone(),
            max_in_flight: None,
            max_gap: None,
        })
        .collect();
    let modbus =
        ModbusCollector::new(modbus, site, profiles).context("the demo's Modbus collector")?;
    let mut mqtt = sample
        .mqtt
        .clone()
        .context("config/collect.toml has no [mqtt]")?;
    mqtt.broker = broker.to_string();
    mqtt.client_id = "tidewatch-demo-collector".into();
    let mqtt = MqttCollector::new(mqtt).context("the demo's MQTT collector")?;
    Collecting::start(Store::Embedded(store), Some(modbus), Some(mqtt))
}

/// The store's part of the status line.
fn store_status(store: &EmbeddedStore, backfill: &Backfill) -> String {
    let stats = store.stats();
    let mut out = format!(
        "stored {} rows, {:.1} MB on disk",
        stats.rows(),
        stats.bytes_on_disk() as f64 / 1e6
    );
    let done = backfill.per_mille();
    if done < 1000 {
        out.push_str(&format!(" (backfill {:.0} %)", done as f64 / 10.0));
    }
    out
}

fn print_status(sim: &Simulator, site: &tidewatch_devices::Site, mqtt_received: u64, stored: &str) {
    let st = sim.shared.state.read().unwrap_or_else(|e| e.into_inner());
    let plant = &st.plant;
    let offset = chrono::FixedOffset::east_opt(site.park.utc_offset_hours * 3600);
    let time = match (
        chrono::DateTime::from_timestamp_millis(plant.time_unix_ms()),
        offset,
    ) {
        (Some(t), Some(o)) => t.with_timezone(&o).format("%Y-%m-%d %H:%M:%S").to_string(),
        _ => String::new(),
    };
    let mut line = format!("{time}  outdoor {:5.1} C", plant.outdoor().dry_bulb_c);
    for c in &site.centres {
        let (it_kw, liquid_kw, _) = plant.centre_heat(&c.id).unwrap_or_default();
        let incoming: f64 = c
            .meters
            .iter()
            .filter(|m| m.role == MeterRole::Incoming)
            .filter_map(|m| plant.device_index(&m.id))
            .filter_map(|d| plant.quantity(d, "power_total_kw"))
            .sum();
        let pue = if it_kw > 0.0 {
            incoming / it_kw
        } else {
            f64::NAN
        };
        line.push_str(&format!(
            "  | {} IT {:6.0} kW, liquid {:6.0} kW, PUE(now) {:.3}",
            c.id, it_kw, liquid_kw, pue
        ));
    }
    let m = &sim.shared.modbus;
    line.push_str(&format!(
        "  | Modbus requests {}  MQTT messages {}  | {stored}",
        m.requests.load(Ordering::Relaxed),
        mqtt_received
    ));
    println!("{line}");
}
