//! Configuration of the Modbus collector: the `[modbus]` table of a collector config.
//!
//! Unknown keys are rejected; every key has a documented default (named default
//! functions below), so a config lists only endpoints and what differs from the
//! defaults. Durations are written as in profiles: `500ms`, `2s`, `1m30s`.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use super::plan::DEFAULT_MAX_GAP;

/// The Modbus collector's settings.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModbusConfig {
    /// Site file describing the devices (ids, kinds, centre, zone, rack, unit ids).
    /// Not set: the site built into the binary (`fixtures/site/qingdao.toml`).
    #[serde(default)]
    pub site: Option<PathBuf>,

    /// Folder of device profiles (`*.toml` register maps). Not set: the profiles built
    /// into the binary (`fixtures/profiles/`).
    #[serde(default)]
    pub profiles: Option<PathBuf>,

    /// How long to wait for the reply to one request. After a timeout the connection is
    /// closed and reopened, so a reply that comes late is never read as the answer to
    /// a later request.
    #[serde(default = "default_request_timeout", deserialize_with = "duration")]
    pub request_timeout: Duration,

    /// How long to wait for a TCP connection to be established.
    #[serde(default = "default_connect_timeout", deserialize_with = "duration")]
    pub connect_timeout: Duration,

    /// Largest gap, in registers (bits for coils and discrete inputs), read and thrown
    /// away to merge two neighbouring fields into one request. 0: only fields that
    /// touch share a request (some devices refuse reads of unmapped registers).
    #[serde(default = "default_max_gap")]
    pub max_gap: u16,

    /// Requests in flight at once per endpoint (one TCP connection each). Gateways to
    /// a serial line take one at a time: keep 1 unless the device documents more.
    #[serde(default = "default_max_in_flight")]
    pub max_in_flight: usize,

    /// First wait before reconnecting after a failed connection or a timeout; doubles
    /// with every further failure in a row.
    #[serde(default = "default_backoff_initial", deserialize_with = "duration")]
    pub backoff_initial: Duration,

    /// Longest wait between reconnection attempts.
    #[serde(default = "default_backoff_max", deserialize_with = "duration")]
    pub backoff_max: Duration,

    /// Pause before retrying a request the device answered with exception 6 (server
    /// device busy).
    #[serde(default = "default_busy_retry_delay", deserialize_with = "duration")]
    pub busy_retry_delay: Duration,

    /// Retries of a request answered "busy" before it counts as an exception.
    #[serde(default = "default_busy_retries")]
    pub busy_retries: u32,

    /// The TCP endpoints to poll and the devices behind each.
    #[serde(default, rename = "endpoint")]
    pub endpoints: Vec<EndpointConfig>,
}

/// One Modbus TCP address: a device of its own, or a gateway with several unit ids
/// behind it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointConfig {
    /// `host:port` of the device or gateway (port 502 for most devices).
    pub address: String,

    /// Ids of the site's devices reached at this address; each is addressed with the
    /// unit id the site gives it. Give `devices` or `gateway`, not both.
    #[serde(default)]
    pub devices: Vec<String>,

    /// A gateway id of the site (`dc2-mm05-pdu-gw`): every device the site places
    /// behind it is polled at this address.
    #[serde(default)]
    pub gateway: Option<String>,

    /// Overrides the collector's `max_in_flight` for this endpoint.
    #[serde(default)]
    pub max_in_flight: Option<usize>,

    /// Overrides the collector's `max_gap` for this endpoint.
    #[serde(default)]
    pub max_gap: Option<u16>,
}

/// The default `request_timeout`: 1 s, as Telegraf's; shorter than the fastest poll
/// interval of the shipped profiles plus a reconnect.
pub fn default_request_timeout() -> Duration {
    Duration::from_secs(1)
}

/// The default `connect_timeout`: 2 s.
pub fn default_connect_timeout() -> Duration {
    Duration::from_secs(2)
}

/// The default `max_gap`: 10 registers.
pub fn default_max_gap() -> u16 {
    DEFAULT_MAX_GAP
}

/// The default `max_in_flight`: 1 request at a time per endpoint.
pub fn default_max_in_flight() -> usize {
    1
}

/// The default `backoff_initial`: 500 ms.
pub fn default_backoff_initial() -> Duration {
    Duration::from_millis(500)
}

/// The default `backoff_max`: 30 s.
pub fn default_backoff_max() -> Duration {
    Duration::from_secs(30)
}

/// The default `busy_retry_delay`: 200 ms.
pub fn default_busy_retry_delay() -> Duration {
    Duration::from_millis(200)
}

/// The default `busy_retries`: 2.
pub fn default_busy_retries() -> u32 {
    2
}

impl Default for ModbusConfig {
    fn default() -> Self {
        ModbusConfig {
            site: None,
            profiles: None,
            request_timeout: default_request_timeout(),
            connect_timeout: default_connect_timeout(),
            max_gap: default_max_gap(),
            max_in_flight: default_max_in_flight(),
            backoff_initial: default_backoff_initial(),
            backoff_max: default_backoff_max(),
            busy_retry_delay: default_busy_retry_delay(),
            busy_retries: default_busy_retries(),
            endpoints: Vec::new(),
        }
    }
}

/// A config that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid Modbus collector config: {0}")]
    Parse(#[from] toml::de::Error),
    #[error("invalid Modbus collector config: {0}")]
    Invalid(String),
}

impl ModbusConfig {
    /// Parse the content of a `[modbus]` table (keys at the top level of `text`) and
    /// check it.
    pub fn from_toml_str(text: &str) -> Result<ModbusConfig, ConfigError> {
        let config: ModbusConfig = toml::from_str(text)?;
        config.validate()?;
        Ok(config)
    }

    /// Check what serde cannot: positive timeouts, at least one request in flight, a
    /// backoff range that makes sense, and endpoints that name their devices once.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(m));
        if self.request_timeout.is_zero() {
            return bad("request_timeout must be more than 0".into());
        }
        if self.connect_timeout.is_zero() {
            return bad("connect_timeout must be more than 0".into());
        }
        if self.max_in_flight == 0 {
            return bad("max_in_flight must be at least 1".into());
        }
        if self.backoff_initial.is_zero() || self.backoff_initial > self.backoff_max {
            return bad("backoff_initial must be more than 0 and at most backoff_max".into());
        }
        for (i, e) in self.endpoints.iter().enumerate() {
            if e.devices.is_empty() == e.gateway.is_none() {
                return bad(format!(
                    "endpoint[{i}] ({}): give either `devices` or `gateway`",
                    e.address
                ));
            }
            if e.max_in_flight == Some(0) {
                return bad(format!(
                    "endpoint[{i}] ({}): max_in_flight must be at least 1",
                    e.address
                ));
            }
        }
        Ok(())
    }
}

fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    tidewatch_devices::parse_duration(&text).map_err(serde::de::Error::custom)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_fill_an_empty_table() {
        let c = ModbusConfig::from_toml_str("").unwrap();
        assert_eq!(c, ModbusConfig::default());
        assert_eq!(c.request_timeout, Duration::from_secs(1));
        assert_eq!(c.max_gap, 10);
    }

    #[test]
    fn keys_and_errors() {
        let c = ModbusConfig::from_toml_str(
            r#"
            request_timeout = "750ms"
            max_gap = 0
            [[endpoint]]
            address = "127.0.0.1:5020"
            devices = ["dc2-mm03-cdu"]
            [[endpoint]]
            address = "127.0.0.1:5021"
            gateway = "dc2-mm05-pdu-gw"
            max_in_flight = 2
            "#,
        )
        .unwrap();
        assert_eq!(c.request_timeout, Duration::from_millis(750));
        assert_eq!(c.endpoints.len(), 2);
        assert_eq!(c.endpoints[1].max_in_flight, Some(2));

        let err = |text: &str| ModbusConfig::from_toml_str(text).unwrap_err().to_string();
        assert!(err("request_timout = \"1s\"").contains("unknown field"));
        assert!(err("request_timeout = \"1 s\"").contains("invalid duration"));
        assert!(err("max_in_flight = 0").contains("max_in_flight"));
        assert!(err("[[endpoint]]\naddress = \"h:502\"").contains("either"));
        assert!(
            err("[[endpoint]]\naddress = \"h:502\"\ndevices = [\"a\"]\ngateway = \"g\"")
                .contains("either")
        );
        assert!(err("backoff_initial = \"1m\"\nbackoff_max = \"1s\"").contains("backoff"));
    }
}
