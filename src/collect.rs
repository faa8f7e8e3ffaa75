//! `tidewatch collect`: the Modbus and MQTT collectors of a configuration file, writing
//! into the store it names (the embedded store by default), until SIGINT or SIGTERM.
//! `tidewatch run` is the same service with the periodic analytics job beside the
//! collectors (`[analytics.job]`: every minute over the last 24 hours by default), its
//! results written back into that store as derived measurements.
//!
//! The configuration file has three tables, each optional but at least one collector:
//! `[store]` (see `tidewatch_storage::store`), `[modbus]` and `[mqtt]` (see
//! `collectors/README.md`). `config/collect.toml` is a complete sample for the
//! Qingdao park; `tidewatch check --config FILE` validates one without touching a
//! device or a broker.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use tidewatch_analytics::job::PeriodicJob;
use tidewatch_analytics::AnalyticsConfig;
use tidewatch_collectors::modbus::{ModbusCollector, ModbusConfig};
use tidewatch_collectors::mqtt::{MqttCollector, MqttConfig};
use tidewatch_collectors::sink::SinkFuture;
use tidewatch_collectors::{PointSink, SinkError, Tee, WriteError};
use tidewatch_model::Point;
use tidewatch_storage::embedded::{GroupWriter, DEFAULT_GROUP_MAX_POINTS};
use tidewatch_storage::influx::InfluxWriter;
use tidewatch_storage::store::{Store, StoreConfig};

use crate::periodic;
use crate::SiteArgs;

/// The configuration file of `tidewatch collect`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CollectConfig {
    /// Where points go; the embedded store with its defaults when absent.
    #[serde(default)]
    pub store: StoreConfig,
    /// The Modbus TCP collector.
    pub modbus: Option<ModbusConfig>,
    /// The MQTT collector.
    pub mqtt: Option<MqttConfig>,
    /// The analytics job (`tidewatch analyze`, and the periodic job); defaults when
    /// absent.
    #[serde(default)]
    pub analytics: AnalyticsConfig,
}

impl CollectConfig {
    /// Parses `text` (the contents of `path`, named in errors) and checks each
    /// collector's settings; needs at least one collector.
    pub fn parse(text: &str, path: &Path) -> Result<CollectConfig> {
        let config: CollectConfig =
            toml::from_str(text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        if let Some(modbus) = &config.modbus {
            modbus
                .validate()
                .with_context(|| format!("{}: [modbus]", path.display()))?;
        }
        if let Some(mqtt) = &config.mqtt {
            mqtt.validate()
                .with_context(|| format!("{}: [mqtt]", path.display()))?;
        }
        config
            .analytics
            .validate()
            .with_context(|| format!("{}: [analytics]", path.display()))?;
        if config.modbus.is_none() && config.mqtt.is_none() {
            bail!(
                "{}: no collector configured: add a [modbus] or an [mqtt] table",
                path.display()
            );
        }
        Ok(config)
    }

    /// Reads and parses a configuration file.
    pub fn load(path: &Path) -> Result<CollectConfig> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        CollectConfig::parse(&text, path)
    }

    /// Resolves both collectors without contacting anything: the Modbus endpoints
    /// against the site and profiles, the MQTT subscriptions, password and TLS files.
    pub fn resolve(&self, path: &Path) -> Result<(Option<ModbusCollector>, Option<MqttCollector>)> {
        let modbus = match &self.modbus {
            Some(c) => Some(
                ModbusCollector::load(c.clone())
                    .with_context(|| format!("{}: [modbus]", path.display()))?,
            ),
            None => None,
        };
        let mqtt = match &self.mqtt {
            Some(c) => Some(
                MqttCollector::new(c.clone())
                    .with_context(|| format!("{}: [mqtt]", path.display()))?,
            ),
            None => None,
        };
        Ok((modbus, mqtt))
    }
}

/// The collectors' sink over the [`Store`]: a write resolves once the store accepted
/// the points (synced in the embedded store's write-ahead log, or in the InfluxDB
/// writer's spool). A store that cannot take them now (its log full, a disk error)
/// hands them back, and the collector retries: backpressure, nothing dropped.
#[derive(Clone)]
pub enum StoreSink {
    /// The embedded store's writes, grouped: the collectors' many small batches share
    /// WAL records and syncs, on one thread.
    Embedded(GroupWriter),
    /// InfluxDB's writer, which batches by itself.
    Influx(InfluxWriter),
}

impl StoreSink {
    pub fn new(store: &Store) -> Result<StoreSink> {
        Ok(match store {
            Store::Embedded(embedded) => StoreSink::Embedded(
                GroupWriter::start(embedded.clone(), DEFAULT_GROUP_MAX_POINTS)
                    .context("cannot start the embedded store's writer thread")?,
            ),
            Store::Influx { writer, .. } => StoreSink::Influx(writer.clone()),
        })
    }
}

impl PointSink for StoreSink {
    fn write(&self, points: Vec<Point>) -> SinkFuture<'_> {
        Box::pin(async move {
            let (reason, points) = match self {
                StoreSink::Embedded(group) => match group.write(points).await {
                    Ok(_) => return Ok(()),
                    // Nothing will take the points: the collector stops rather than
                    // retry (MQTT messages stay unacknowledged and come again).
                    Err(e) if e.writer_stopped => {
                        return Err(WriteError::new(SinkError::Closed, e.points))
                    }
                    Err(e) => (e.reason, e.points),
                },
                StoreSink::Influx(writer) => match writer.write(&points).await {
                    Ok(_) => return Ok(()),
                    Err(e) => (e.to_string(), points),
                },
            };
            Err(WriteError::new(SinkError::Unavailable(reason), points))
        })
    }
}

/// What `tidewatch collect` and the demo run: the collectors writing into a store
/// through a [`Tee`] (whose subscribers are the in-process consumers).
pub struct Collecting {
    /// The durable sink, teed to the in-process consumers (the live cache and the
    /// alert engine subscribe to it).
    pub sink: Arc<Tee<StoreSink>>,
    pub modbus: Option<tidewatch_collectors::modbus::RunningCollector>,
    pub mqtt: Option<tidewatch_collectors::mqtt::RunningMqttCollector>,
}

impl Collecting {
    /// Starts the collectors given; call inside a tokio runtime.
    pub fn start(
        store: Store,
        modbus: Option<ModbusCollector>,
        mqtt: Option<MqttCollector>,
    ) -> Result<Collecting> {
        let sink = Arc::new(Tee::new(StoreSink::new(&store)?, 64));
        Ok(Collecting {
            modbus: modbus.map(|c| c.start(sink.clone())),
            mqtt: mqtt.map(|c| c.start(sink.clone())),
            sink,
        })
    }

    /// One status line: devices up, values read, MQTT messages.
    pub fn status(&self) -> String {
        let mut parts = Vec::new();
        if let Some(m) = &self.modbus {
            let stats = m.stats();
            let up = stats.iter().filter(|d| d.up).count();
            let values: u64 = stats.iter().map(|d| d.values).sum();
            let timeouts: u64 = stats.iter().map(|d| d.timeouts).sum();
            parts.push(format!(
                "Modbus {up}/{} devices up, {values} values read, {timeouts} timeouts",
                stats.len()
            ));
        }
        if let Some(m) = &self.mqtt {
            let s = m.stats();
            parts.push(format!(
                "MQTT {} ({} messages, {} points, {} malformed)",
                if s.connected {
                    "connected"
                } else {
                    "DISCONNECTED"
                },
                s.messages,
                s.points,
                s.malformed
            ));
        }
        let lagged = self.sink.lagged();
        if lagged > 0 {
            parts.push(format!("{lagged} batches skipped by slow live consumers"));
        }
        parts.join("; ")
    }

    /// Stops the collectors: the MQTT collector stores and acknowledges the batch in
    /// hand, then disconnects; the Modbus polls in flight finish.
    pub async fn shutdown(self) {
        if let Some(m) = self.mqtt {
            m.shutdown().await;
        }
        if let Some(m) = self.modbus {
            m.shutdown().await;
        }
    }
}

/// Waits for SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// `tidewatch collect --config FILE`, and with `analytics` (the site whose meters and
/// loops it computes) `tidewatch run --config FILE`: the collectors plus the periodic
/// analytics job over the store they write.
pub async fn run(path: PathBuf, status_every: Duration, analytics: Option<SiteArgs>) -> Result<()> {
    let config = CollectConfig::load(&path)?;
    let (modbus, mqtt) = config.resolve(&path)?;
    // The site as the collectors know it, unless the command line names another.
    let analytics_site = match analytics {
        Some(args) => {
            let modbus = config.modbus.as_ref();
            let args = SiteArgs {
                site: args.site.or_else(|| modbus.and_then(|m| m.site.clone())),
                profiles: args
                    .profiles
                    .or_else(|| modbus.and_then(|m| m.profiles.clone())),
            };
            Some(args.load().context("the site of the analytics job")?)
        }
        None => None,
    };
    let store = Store::open(config.store.clone())
        .await
        .with_context(|| format!("{}: [store]", path.display()))?;
    let collecting = Collecting::start(store.clone(), modbus, mqtt)?;
    let job = match &analytics_site {
        Some((profiles, site)) => Some(periodic::start(
            store.clone(),
            site,
            profiles,
            config.analytics.clone(),
            FIRST_ANALYSIS_AFTER,
        )?),
        None => None,
    };
    let window = config.analytics.job.schedule().label();
    match &job {
        Some(_) => eprintln!(
            "collecting ({}), analysing the last {window} every {}; Ctrl-C or SIGTERM stops",
            path.display(),
            tidewatch_devices::format_duration(config.analytics.job.every)
        ),
        None => eprintln!("collecting ({}); Ctrl-C or SIGTERM stops", path.display()),
    }
    let mut analysed = job.as_ref().map(PeriodicJob::latest);
    let mut tick = tokio::time::interval(status_every);
    tick.tick().await;
    let signal = shutdown_signal();
    tokio::pin!(signal);
    loop {
        tokio::select! {
            _ = tick.tick() => eprintln!("{}", collecting.status()),
            Some(run) = periodic::next_run(&mut analysed) => {
                eprintln!("{}", periodic::analytics_line(&run, &window));
            }
            _ = &mut signal => break,
        }
    }
    if let Some(job) = job {
        eprintln!("stopping: letting the analytics run in progress finish");
        job.stop().await;
    }
    eprintln!("stopping: flushing the collectors and the store");
    collecting.shutdown().await;
    store.shutdown().await.context("closing the store")?;
    eprintln!("stopped; every accepted point is stored");
    Ok(())
}

/// The periodic job's first run comes this long after the start: the collectors have
/// read every device once by then.
const FIRST_ANALYSIS_AFTER: Duration = Duration::from_secs(10);

/// Config files changed the ways people break them (shared with the simulator's tests).
#[cfg(test)]
#[path = "../fixtures/tests/support/config_mutation.rs"]
mod config_mutation;

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

        /// The sample changed the ways people break a config: refused with an error
        /// naming the file, or resolved (collectors built, nothing contacted), never a
        /// panic.
        #[test]
        fn a_changed_sample_config_is_refused_naming_the_file_or_resolves(
            changes in prop::collection::vec(super::config_mutation::change(), 1..4),
        ) {
            let path = Path::new("config/collect.toml");
            let text = super::config_mutation::apply(include_str!("../config/collect.toml"), &changes);
            let resolved = CollectConfig::parse(&text, path).and_then(|c| c.resolve(path).map(drop));
            if let Err(e) = resolved {
                let message = format!("{e:#}");
                prop_assert!(message.contains("config/collect.toml"), "the error does not name the file: {message}");
            }
        }
    }

    #[test]
    fn the_sample_config_parses_and_resolves_against_the_builtin_park() {
        let path = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/config/collect.toml"));
        let config = CollectConfig::load(path).unwrap();
        assert!(matches!(config.store, StoreConfig::Embedded(_)));
        let (modbus, mqtt) = config.resolve(path).unwrap();
        assert!(modbus.is_some() && mqtt.is_some());
        assert!(config.mqtt.unwrap().subscriptions.len() >= 3);
    }

    #[test]
    fn errors_name_the_file_and_the_place() {
        let path = Path::new("collect.toml");
        let e = CollectConfig::parse("[modbus]\nmax_gap = \"ten\"\n", path).unwrap_err();
        let text = format!("{e:#}");
        assert!(
            text.contains("collect.toml") && text.contains("line 2"),
            "{text}"
        );
        let e = CollectConfig::parse("[stroe.embedded]\n", path).unwrap_err();
        assert!(format!("{e:#}").contains("unknown field `stroe`"), "{e:#}");
        let e = CollectConfig::parse("[store.embedded]\n", path).unwrap_err();
        assert!(
            format!("{e:#}").contains("no collector configured"),
            "{e:#}"
        );
        let e = CollectConfig::parse("[modbus]\nrequest_timeout = \"0s\"\n", path).unwrap_err();
        assert!(format!("{e:#}").contains("request_timeout"), "{e:#}");
    }
}
