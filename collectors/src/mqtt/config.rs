//! Configuration of the MQTT collector: the `[mqtt]` table of a collector config.
//!
//! Unknown keys are rejected; every key but `broker`, `client_id` and the
//! subscriptions' own has a documented default (named default functions below).
//! Durations are written as in profiles: `500ms`, `2s`, `1m30s`.
//!
//! A password is never written in the config itself: it comes from an environment
//! variable (`password_env`) or a file (`password_file`, first line), so configs can be
//! shared and committed.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// The MQTT collector's settings.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MqttConfig {
    /// The broker, `host:port` (1883 for plain MQTT, 8883 with TLS).
    pub broker: String,

    /// The client id. Fixed and unique per collector instance: the broker keeps the
    /// persistent session (subscriptions and the QoS 1 messages not yet acknowledged)
    /// under this id, and a second client connecting with the same id takes the
    /// session over and disconnects the first.
    pub client_id: String,

    /// Keep the session across disconnects (MQTT `clean_session = false`): the broker
    /// queues QoS 1 messages while the collector is away and delivers them when it
    /// comes back. `false` loses what is published while the collector is away.
    #[serde(default = "default_persistent_session")]
    pub persistent_session: bool,

    /// Interval of MQTT keep-alive pings; the broker drops the connection after 1.5
    /// times this without traffic.
    #[serde(default = "default_keep_alive", deserialize_with = "duration")]
    pub keep_alive: Duration,

    /// How long to wait for the TCP (and TLS) connection and the broker's CONNACK.
    /// Whole seconds (rounded up).
    #[serde(default = "default_connect_timeout", deserialize_with = "duration")]
    pub connect_timeout: Duration,

    /// First wait before reconnecting after the connection is lost or refused;
    /// doubles with every further failure in a row.
    #[serde(default = "default_backoff_initial", deserialize_with = "duration")]
    pub backoff_initial: Duration,

    /// Longest wait between reconnection attempts.
    #[serde(default = "default_backoff_max", deserialize_with = "duration")]
    pub backoff_max: Duration,

    /// User name to log in with. Not set: no login (anonymous).
    #[serde(default)]
    pub username: Option<String>,

    /// Name of the environment variable holding the password (needs `username`).
    #[serde(default)]
    pub password_env: Option<String>,

    /// File whose first line is the password (needs `username`). Give
    /// `password_env` or `password_file`, not both.
    #[serde(default)]
    pub password_file: Option<PathBuf>,

    /// TLS to the broker. Not set: plain TCP.
    #[serde(default)]
    pub tls: Option<TlsConfig>,

    /// Most messages handled as one batch: their points are written to the sink in
    /// one write, then the messages are acknowledged together.
    #[serde(default = "default_max_batch")]
    pub max_batch: usize,

    /// Largest MQTT packet accepted from the broker, in bytes; a larger one is a
    /// protocol error that drops the connection.
    #[serde(default = "default_max_packet_size")]
    pub max_packet_size: usize,

    /// A malformed message is logged at most once per this interval per topic (the
    /// others are only counted).
    #[serde(
        default = "default_malformed_log_interval",
        deserialize_with = "duration"
    )]
    pub malformed_log_interval: Duration,

    /// How much of a malformed payload the log shows, in bytes.
    #[serde(default = "default_payload_sample_bytes")]
    pub payload_sample_bytes: usize,

    /// Topics with malformed messages tracked one by one (in the log's rate limit and
    /// the health points); beyond this many, the rest are counted together under the
    /// topic `_other`, so a flood of distinct topics cannot grow memory or series.
    #[serde(default = "default_max_tracked_topics")]
    pub max_tracked_topics: usize,

    /// Interval of the collector's health points (`mqtt_collector`,
    /// `mqtt_malformed`). `0s`: none.
    #[serde(default = "default_health_interval", deserialize_with = "duration")]
    pub health_interval: Duration,

    /// The subscriptions. A message is handled by the first subscription whose
    /// topic template matches its topic.
    #[serde(default, rename = "subscription")]
    pub subscriptions: Vec<SubscriptionConfig>,
}

/// TLS to the broker (rustls; the server certificate is verified against `ca_file`
/// and the broker's host name).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM file of the certificate authorities the broker's certificate must chain to.
    pub ca_file: PathBuf,

    /// PEM file of the client certificate, for brokers that require one (with
    /// `client_key_file`).
    #[serde(default)]
    pub client_cert_file: Option<PathBuf>,

    /// PEM file of the client certificate's private key (PKCS#8, PKCS#1 or SEC1).
    #[serde(default)]
    pub client_key_file: Option<PathBuf>,
}

/// How a subscription's payloads are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PayloadFormat {
    /// A JSON object; `fields` maps field names to paths in it.
    Json,
    /// InfluxDB line protocol, one or more lines; measurement, tags, fields and
    /// timestamp come from each line.
    LineProtocol,
    /// The value alone as a decimal number (surrounding white space allowed); `field`
    /// names it.
    Number,
}

/// How a JSON timestamp is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimestampFormat {
    /// Seconds since the Unix epoch (a fraction allowed).
    UnixS,
    /// Milliseconds since the Unix epoch.
    UnixMs,
    /// Microseconds since the Unix epoch.
    UnixUs,
    /// Nanoseconds since the Unix epoch.
    UnixNs,
    /// An RFC 3339 string (`2024-05-01T12:00:00.250+08:00`).
    Rfc3339,
}

/// Units of line protocol timestamps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Precision {
    /// Seconds.
    S,
    /// Milliseconds.
    Ms,
    /// Microseconds.
    Us,
    /// Nanoseconds (the InfluxDB default).
    Ns,
}

impl Precision {
    /// Nanoseconds per unit.
    pub fn nanos(self) -> i64 {
        match self {
            Precision::S => 1_000_000_000,
            Precision::Ms => 1_000_000,
            Precision::Us => 1_000,
            Precision::Ns => 1,
        }
    }
}

/// One subscription: a topic template, the payload format and how it maps to points.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionConfig {
    /// Topic template: MQTT topic levels where `{name}` captures a level (or the part
    /// of it between a literal prefix and suffix, as in `r{rack}`) into the tag
    /// `name`; `{_name}` captures without making a tag (for use in `tags` and
    /// `measurement` only); `+` and a final `#` are ordinary MQTT wildcards. The
    /// broker subscription replaces each capturing level by `+`.
    pub topic: String,

    /// QoS of the subscription: 1 (at least once, the default; messages are
    /// acknowledged only once stored) or 0 (at most once: lost while the collector is
    /// away, for high-rate values where a gap does not matter).
    #[serde(default = "default_qos")]
    pub qos: u8,

    /// The payload format: `json`, `line_protocol` or `number`.
    pub format: PayloadFormat,

    /// Measurement of the points; may use `{name}` of the template. Required for
    /// `json` and `number`; for `line_protocol` it replaces the lines' own.
    #[serde(default)]
    pub measurement: Option<String>,

    /// `json`: field name -> path in the payload (`temp`, `env.temp`, `values.0`).
    /// Numbers (and booleans, as 1 and 0) are stored as floats; a `null` is "not
    /// available" (the field is left out); a missing path or another type makes the
    /// message malformed.
    #[serde(default)]
    pub fields: BTreeMap<String, String>,

    /// `number`: the field name of the value.
    #[serde(default)]
    pub field: Option<String>,

    /// `json`: path of the timestamp in the payload. Not set: the arrival time.
    #[serde(default)]
    pub timestamp_path: Option<String>,

    /// `json`: how the timestamp at `timestamp_path` is written.
    #[serde(default = "default_timestamp_format")]
    pub timestamp_format: TimestampFormat,

    /// `line_protocol`: unit of the lines' timestamps (`s`, `ms`, `us`, `ns`). A line
    /// without a timestamp takes the arrival time.
    #[serde(default = "default_precision")]
    pub precision: Precision,

    /// Tags added to every point of the subscription; values may use `{name}` of the
    /// template (`sensor = "{centre}-{zone}-{rack}-inlet"`). They win over the
    /// template's tags, which win over tags in a line protocol payload.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

/// The default `persistent_session`: true.
pub fn default_persistent_session() -> bool {
    true
}

/// The default `keep_alive`: 30 s.
pub fn default_keep_alive() -> Duration {
    Duration::from_secs(30)
}

/// The default `connect_timeout`: 5 s.
pub fn default_connect_timeout() -> Duration {
    Duration::from_secs(5)
}

/// The default `backoff_initial`: 500 ms.
pub fn default_backoff_initial() -> Duration {
    Duration::from_millis(500)
}

/// The default `backoff_max`: 30 s.
pub fn default_backoff_max() -> Duration {
    Duration::from_secs(30)
}

/// The default `max_batch`: 1000 messages.
pub fn default_max_batch() -> usize {
    1000
}

/// The default `max_packet_size`: 256 KiB.
pub fn default_max_packet_size() -> usize {
    256 * 1024
}

/// The default `malformed_log_interval`: 1 minute.
pub fn default_malformed_log_interval() -> Duration {
    Duration::from_secs(60)
}

/// The default `payload_sample_bytes`: 200.
pub fn default_payload_sample_bytes() -> usize {
    200
}

/// The default `max_tracked_topics`: 1000.
pub fn default_max_tracked_topics() -> usize {
    1000
}

/// The default `health_interval`: 10 s.
pub fn default_health_interval() -> Duration {
    Duration::from_secs(10)
}

/// The default subscription `qos`: 1.
pub fn default_qos() -> u8 {
    1
}

/// The default `timestamp_format`: Unix milliseconds.
pub fn default_timestamp_format() -> TimestampFormat {
    TimestampFormat::UnixMs
}

/// The default line protocol `precision`: nanoseconds.
pub fn default_precision() -> Precision {
    Precision::Ns
}

/// A config that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid MQTT collector config: {0}")]
    Parse(#[from] toml::de::Error),
    #[error("invalid MQTT collector config: {0}")]
    Invalid(String),
    #[error("invalid MQTT collector config: subscription[{index}] ({topic}): {message}")]
    Subscription {
        index: usize,
        topic: String,
        message: String,
    },
}

impl MqttConfig {
    /// Parse the content of an `[mqtt]` table (keys at the top level of `text`) and
    /// check it.
    pub fn from_toml_str(text: &str) -> Result<MqttConfig, ConfigError> {
        let config: MqttConfig = toml::from_str(text)?;
        config.validate()?;
        Ok(config)
    }

    /// A config for `broker` and `client_id` with every default and no subscription.
    pub fn new(broker: impl Into<String>, client_id: impl Into<String>) -> MqttConfig {
        MqttConfig {
            broker: broker.into(),
            client_id: client_id.into(),
            persistent_session: default_persistent_session(),
            keep_alive: default_keep_alive(),
            connect_timeout: default_connect_timeout(),
            backoff_initial: default_backoff_initial(),
            backoff_max: default_backoff_max(),
            username: None,
            password_env: None,
            password_file: None,
            tls: None,
            max_batch: default_max_batch(),
            max_packet_size: default_max_packet_size(),
            malformed_log_interval: default_malformed_log_interval(),
            payload_sample_bytes: default_payload_sample_bytes(),
            max_tracked_topics: default_max_tracked_topics(),
            health_interval: default_health_interval(),
            subscriptions: Vec::new(),
        }
    }

    /// Check what serde cannot, without touching the network or reading files:
    /// the broker address, the client id, timeouts and backoff, credentials given
    /// one way, TLS files paired, and every subscription (its template, and the keys
    /// its format needs and no others). [`super::MqttCollector::new`] compiles the
    /// templates and reports their errors the same way.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(m));
        if super::split_broker(&self.broker).is_none() {
            return bad(format!(
                "broker \"{}\": expected host:port with a port number",
                self.broker
            ));
        }
        if self.client_id.is_empty() || self.client_id.len() > 65_535 {
            return bad("client_id must not be empty".into());
        }
        if self.keep_alive < Duration::from_secs(1) {
            return bad("keep_alive must be at least 1s".into());
        }
        if self.connect_timeout.is_zero() {
            return bad("connect_timeout must be more than 0".into());
        }
        if self.backoff_initial.is_zero() || self.backoff_initial > self.backoff_max {
            return bad("backoff_initial must be more than 0 and at most backoff_max".into());
        }
        if self.max_batch == 0 {
            return bad("max_batch must be at least 1".into());
        }
        if self.max_packet_size < 1024 {
            return bad("max_packet_size must be at least 1024 bytes".into());
        }
        if self.max_tracked_topics == 0 {
            return bad("max_tracked_topics must be at least 1".into());
        }
        match (&self.username, &self.password_env, &self.password_file) {
            (_, Some(_), Some(_)) => {
                return bad("give password_env or password_file, not both".into())
            }
            (None, Some(_), _) | (None, _, Some(_)) => {
                return bad("a password needs a username".into())
            }
            (Some(u), _, _) if u.is_empty() => return bad("username must not be empty".into()),
            _ => {}
        }
        if let Some(tls) = &self.tls {
            if tls.client_cert_file.is_some() != tls.client_key_file.is_some() {
                return bad("tls: give client_cert_file and client_key_file together".into());
            }
        }
        if self.subscriptions.is_empty() {
            return bad("no subscription".into());
        }
        for (index, s) in self.subscriptions.iter().enumerate() {
            super::Subscription::compile(s).map_err(|message| ConfigError::Subscription {
                index,
                topic: s.topic.clone(),
                message,
            })?;
        }
        Ok(())
    }
}

fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    if text.trim() == "0s" || text.trim() == "0" {
        return Ok(Duration::ZERO);
    }
    tidewatch_devices::parse_duration(&text).map_err(serde::de::Error::custom)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"
        broker = "127.0.0.1:1883"
        client_id = "tw-1"
        [[subscription]]
        topic = "dc/{centre}/{zone}/r{rack}/inlet"
        format = "json"
        measurement = "rack_inlet"
        fields = { temperature_c = "temp" }
    "#;

    #[test]
    fn defaults_fill_what_is_not_given() {
        let c = MqttConfig::from_toml_str(BASE).unwrap();
        let mut expected = MqttConfig::new("127.0.0.1:1883", "tw-1");
        expected.subscriptions = c.subscriptions.clone();
        assert_eq!(c, expected);
        assert!(c.persistent_session);
        assert_eq!(c.backoff_max, Duration::from_secs(30));
        assert_eq!(c.subscriptions[0].qos, 1);
        assert_eq!(c.subscriptions[0].timestamp_format, TimestampFormat::UnixMs);
    }

    #[test]
    fn errors_name_the_problem() {
        let err = |extra: &str| {
            MqttConfig::from_toml_str(&format!("{extra}\n{BASE}"))
                .unwrap_err()
                .to_string()
        };
        assert!(err("brokr = \"x\"").contains("unknown field"));
        assert!(
            err("password = \"secret\"").contains("unknown field"),
            "no inline password"
        );
        assert!(err("password_env = \"P\"").contains("needs a username"));
        assert!(
            err("username = \"u\"\npassword_env = \"P\"\npassword_file = \"/p\"")
                .contains("not both")
        );
        assert!(err("backoff_initial = \"1m\"").contains("backoff"));
        assert!(err("keep_alive = \"1s x\"").contains("invalid duration"));
        let tls = MqttConfig::from_toml_str(&BASE.replace(
            "[[subscription]]",
            "[tls]\nca_file = \"/ca\"\nclient_cert_file = \"/c\"\n[[subscription]]",
        ))
        .unwrap_err();
        assert!(tls.to_string().contains("together"), "{tls}");
        let sub = |body: &str| {
            MqttConfig::from_toml_str(&format!(
                "broker = \"h:1883\"\nclient_id = \"c\"\n[[subscription]]\n{body}"
            ))
            .unwrap_err()
            .to_string()
        };
        assert!(
            sub("topic = \"a/{x}\"\nformat = \"number\"\nmeasurement = \"m\"").contains("`field`")
        );
        assert!(sub("topic = \"a/#/b\"\nformat = \"line_protocol\"").contains("#"));
        assert!(
            sub("topic = \"a/{x}\"\nformat = \"json\"\nmeasurement = \"m\"\nfields = {}")
                .contains("fields")
        );
        assert!(sub(
            "topic = \"a/{x}\"\nformat = \"number\"\nmeasurement = \"m\"\nfield = \"v\"\ntags = { s = \"{y}\" }"
        )
        .contains("{y}"));
        assert!(sub(
            "topic = \"a/{x}\"\nformat = \"number\"\nmeasurement = \"m\"\nfield = \"v\"\nqos = 2"
        )
        .contains("qos"));
        assert!(
            MqttConfig::from_toml_str("broker = \"nohost\"\nclient_id = \"c\"")
                .unwrap_err()
                .to_string()
                .contains("host:port")
        );
    }
}
