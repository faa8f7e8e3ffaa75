//! The MQTT collector.
//!
//! * [`config`]: the `[mqtt]` table of a collector config.
//! * [`topic`]: topic templates (`dc/{centre}/{zone}/r{rack}/inlet`): the broker
//!   filter they subscribe with and the tags they capture.
//! * [`subscription`]: a subscription compiled, and payloads (JSON, line protocol, a
//!   plain number) decoded into points.
//! * this module: resolving a config ([`MqttCollector::new`]: templates compiled,
//!   password read, TLS files loaded) and running it ([`MqttCollector::start`]): one
//!   connection task owning rumqttc's event loop and one processing task; see the
//!   runtime's docs for acknowledgements, reconnects and back-pressure.
//!
//! Delivery is *at least once*: QoS 1, a persistent session under a fixed client id,
//! and a message acknowledged to the broker only after the sink accepted its points.
//! A message can therefore be stored twice (the collector stopped between the sink's
//! acceptance and the PUBACK): points timestamped by the payload are then the same
//! point again (InfluxDB and the embedded store keep one); points timestamped at
//! arrival are two points a moment apart.
//!
//! Besides the subscriptions' points, the collector writes health points every
//! `health_interval`: `mqtt_collector` (connection state and counters) and
//! `mqtt_malformed` (malformed messages per topic, a bounded set of topics).

pub mod config;
mod runtime;
pub mod subscription;
pub mod topic;

use std::sync::Arc;
use std::time::Duration;

use rumqttc::MqttOptions;

pub use config::{
    ConfigError, MqttConfig, PayloadFormat, Precision, SubscriptionConfig, TimestampFormat,
    TlsConfig,
};
pub use runtime::{MqttStatsSnapshot, RunningMqttCollector};
pub use subscription::{Malformed, MalformedKind, Subscription};
pub use topic::TopicTemplate;

use crate::sink::PointSink;

/// The measurement of the collector's health points.
pub const HEALTH_MEASUREMENT: &str = "mqtt_collector";
/// The measurement of malformed-message counts per topic.
pub const MALFORMED_MEASUREMENT: &str = "mqtt_malformed";
/// The topic under which malformed messages of untracked topics are counted.
pub const OTHER_TOPICS: &str = "_other";

/// Why a config cannot be run.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("MQTT password: environment variable {0} is not set (password_env)")]
    PasswordEnv(String),
    #[error("MQTT password: cannot read {path} (password_file): {source}")]
    PasswordFile {
        path: String,
        source: std::io::Error,
    },
    #[error("MQTT password: {0} (password_file) is empty")]
    PasswordEmpty(String),
    #[error("MQTT TLS: cannot read {path}: {source}")]
    TlsFile {
        path: String,
        source: std::io::Error,
    },
    #[error("MQTT TLS: {path} holds no PEM {what}")]
    TlsPem { path: String, what: &'static str },
    #[error("MQTT TLS: this build has no TLS support (tidewatch-collectors was built without its default `tls` feature)")]
    TlsUnavailable,
}

/// `host:port` split, with IPv6 hosts in brackets (`[::1]:1883`).
pub(crate) fn split_broker(broker: &str) -> Option<(&str, u16)> {
    let (host, port) = broker.rsplit_once(':')?;
    let port: u16 = port.parse().ok().filter(|p| *p > 0)?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    (!host.is_empty() && !host.contains(['/', ' '])).then_some((host, port))
}

/// An MQTT collector resolved from its config, ready to start.
#[derive(Debug, Clone)]
pub struct MqttCollector {
    config: MqttConfig,
    subscriptions: Vec<Subscription>,
    options: MqttOptions,
}

impl MqttCollector {
    /// Check the config, compile its subscriptions, read the password (environment
    /// or file) and the TLS files. Nothing is contacted.
    pub fn new(config: MqttConfig) -> Result<MqttCollector, SetupError> {
        config.validate()?;
        let subscriptions = config
            .subscriptions
            .iter()
            .enumerate()
            .map(|(index, s)| {
                Subscription::compile(s).map_err(|message| ConfigError::Subscription {
                    index,
                    topic: s.topic.clone(),
                    message,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let (host, port) = split_broker(&config.broker).ok_or_else(|| {
            ConfigError::Invalid(format!("broker \"{}\": expected host:port", config.broker))
        })?;
        let mut options = MqttOptions::new(config.client_id.clone(), host, port);
        options
            .set_clean_session(!config.persistent_session)
            .set_manual_acks(true)
            .set_keep_alive(config.keep_alive)
            .set_max_packet_size(config.max_packet_size, config.max_packet_size);
        if let Some(user) = &config.username {
            options.set_credentials(user.clone(), read_password(&config)?);
        }
        if let Some(tls) = &config.tls {
            options.set_transport(tls_transport(tls)?);
        }
        Ok(MqttCollector {
            config,
            subscriptions,
            options,
        })
    }

    /// The config it was built from.
    pub fn config(&self) -> &MqttConfig {
        &self.config
    }

    /// The compiled subscriptions, in config order.
    pub fn subscriptions(&self) -> &[Subscription] {
        &self.subscriptions
    }

    /// The broker topic filters subscribed to (one per distinct template filter).
    pub fn filters(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for s in &self.subscriptions {
            if !out.contains(&s.template.filter()) {
                out.push(s.template.filter());
            }
        }
        out
    }

    /// Connect, subscribe and collect; points go to `sink`, and each message is
    /// acknowledged once the sink accepted its points. Must be called inside a tokio
    /// runtime.
    pub fn start<S: PointSink + 'static>(self, sink: S) -> RunningMqttCollector {
        let mut options = self.options;
        let mut network = rumqttc::NetworkOptions::new();
        let secs = self.config.connect_timeout.as_secs()
            + u64::from(self.config.connect_timeout.subsec_nanos() > 0);
        network.set_connection_timeout(secs.max(1));
        // Pings, PUBACKs and subscriptions wait behind nothing.
        options.set_pending_throttle(Duration::ZERO);
        runtime::start(
            self.config,
            options,
            network,
            self.subscriptions,
            Arc::new(sink),
        )
    }
}

fn read_password(config: &MqttConfig) -> Result<String, SetupError> {
    if let Some(var) = &config.password_env {
        return std::env::var(var).map_err(|_| SetupError::PasswordEnv(var.clone()));
    }
    if let Some(path) = &config.password_file {
        let text = std::fs::read_to_string(path).map_err(|source| SetupError::PasswordFile {
            path: path.display().to_string(),
            source,
        })?;
        let line = text.lines().next().unwrap_or("").trim_end_matches('\r');
        if line.is_empty() {
            return Err(SetupError::PasswordEmpty(path.display().to_string()));
        }
        return Ok(line.to_owned());
    }
    // A user name alone (brokers that authenticate by name, or by client certificate).
    Ok(String::new())
}

/// Read a PEM file and check it holds a block of `label` (`CERTIFICATE`, a key).
fn read_pem(
    path: &std::path::Path,
    labels: &[&str],
    what: &'static str,
) -> Result<Vec<u8>, SetupError> {
    let bytes = std::fs::read(path).map_err(|source| SetupError::TlsFile {
        path: path.display().to_string(),
        source,
    })?;
    let text = String::from_utf8_lossy(&bytes);
    if !labels
        .iter()
        .any(|l| text.contains(&format!("-----BEGIN {l}-----")))
    {
        return Err(SetupError::TlsPem {
            path: path.display().to_string(),
            what,
        });
    }
    Ok(bytes)
}

/// The PEM contents of a TLS config: CA, and the client certificate and key.
type TlsFiles = (Vec<u8>, Option<(Vec<u8>, Vec<u8>)>);

fn read_tls_files(tls: &TlsConfig) -> Result<TlsFiles, SetupError> {
    let ca = read_pem(&tls.ca_file, &["CERTIFICATE"], "certificate")?;
    let client = match (&tls.client_cert_file, &tls.client_key_file) {
        (Some(cert), Some(key)) => Some((
            read_pem(cert, &["CERTIFICATE"], "certificate")?,
            read_pem(
                key,
                &["PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY"],
                "private key",
            )?,
        )),
        _ => None,
    };
    Ok((ca, client))
}

#[cfg(feature = "tls")]
fn tls_transport(tls: &TlsConfig) -> Result<rumqttc::Transport, SetupError> {
    let (ca, client_auth) = read_tls_files(tls)?;
    // rumqttc is built without a default crypto provider (aws-lc-rs is a long C
    // build); use ring, installed once for the process.
    let _ = rustls::crypto::ring::default_provider().install_default();
    Ok(rumqttc::Transport::tls_with_config(
        rumqttc::TlsConfiguration::Simple {
            ca,
            alpn: None,
            client_auth,
        },
    ))
}

#[cfg(not(feature = "tls"))]
fn tls_transport(tls: &TlsConfig) -> Result<rumqttc::Transport, SetupError> {
    // Check the files all the same, so `tidewatch check` reports them.
    read_tls_files(tls)?;
    Err(SetupError::TlsUnavailable)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(extra: &str) -> MqttConfig {
        MqttConfig::from_toml_str(&format!(
            r#"
            broker = "127.0.0.1:1883"
            client_id = "tw-test"
            {extra}
            [[subscription]]
            topic = "tidewatch/+/{{centre}}/{{zone}}/{{rack}}/inlet"
            format = "json"
            measurement = "rack_inlet"
            fields = {{ t = "t" }}
            [[subscription]]
            topic = "tidewatch/+/{{centre}}/{{zone}}/leak/{{_place}}"
            format = "number"
            measurement = "leak"
            field = "wet"
            [[subscription]]
            topic = "tidewatch/+/{{centre}}/{{zone}}/leak/{{_x}}"
            format = "number"
            measurement = "leak"
            field = "wet"
            qos = 0
            "#
        ))
        .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn broker_addresses() {
        assert_eq!(split_broker("127.0.0.1:1883"), Some(("127.0.0.1", 1883)));
        assert_eq!(split_broker("[::1]:8883"), Some(("::1", 8883)));
        assert_eq!(
            split_broker("mqtt.example:1883"),
            Some(("mqtt.example", 1883))
        );
        assert_eq!(split_broker("host"), None);
        assert_eq!(split_broker(":1883"), None);
        assert_eq!(split_broker("host:0"), None);
        assert_eq!(split_broker("mqtt://host:1883"), None);
    }

    #[test]
    fn filters_are_deduplicated() {
        let c = MqttCollector::new(config("")).unwrap();
        assert_eq!(
            c.filters(),
            ["tidewatch/+/+/+/+/inlet", "tidewatch/+/+/+/leak/+"]
        );
    }

    #[test]
    fn passwords_come_from_the_environment_or_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pw");
        std::fs::write(&file, "s3cret\nignored\n").unwrap();
        let c = MqttCollector::new(config(&format!(
            "username = \"collector\"\npassword_file = \"{}\"",
            file.display()
        )))
        .unwrap();
        let login = c.options.credentials().expect("credentials");
        assert_eq!(
            (login.username.as_str(), login.password.as_str()),
            ("collector", "s3cret")
        );
        let err = MqttCollector::new(config(
            "username = \"u\"\npassword_env = \"TIDEWATCH_TEST_SURELY_UNSET_VARIABLE\"",
        ))
        .unwrap_err();
        assert!(err
            .to_string()
            .contains("TIDEWATCH_TEST_SURELY_UNSET_VARIABLE"));
        std::fs::write(&file, "\n").unwrap();
        let err = MqttCollector::new(config(&format!(
            "username = \"u\"\npassword_file = \"{}\"",
            file.display()
        )))
        .unwrap_err();
        assert!(err.to_string().contains("empty"), "{err}");
    }

    #[test]
    fn tls_files_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, "not a certificate").unwrap();
        let tls = |ca: &std::path::Path| format!("[tls]\nca_file = \"{}\"", ca.display());
        let err = MqttCollector::new(config(&tls(&ca))).unwrap_err();
        assert!(err.to_string().contains("no PEM certificate"), "{err}");
        let err = MqttCollector::new(config(&tls(&dir.path().join("missing.pem")))).unwrap_err();
        assert!(err.to_string().contains("cannot read"), "{err}");
    }
}
