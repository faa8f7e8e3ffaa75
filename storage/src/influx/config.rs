//! The InfluxDB writer's settings, as they appear in tidewatch's configuration file.
//!
//! A sample, which the unit tests below parse (every value shown is the default except
//! the connection settings):
//!
//! ```toml
//! url = "http://127.0.0.1:8086"
//! api = "v1"                      # "v1": InfluxDB 1.x /write; "v2": /api/v2/write (2.x, 3.x)
//! database = "tidewatch"          # v1 only
//! retention_policy = "autogen"    # v1 only; omit for the database's default
//! username = "tidewatch"          # v1 only, with one of password / password_file / password_env
//! password_env = "TIDEWATCH_INFLUX_PASSWORD"
//! precision = "ns"
//! gzip = "auto"                   # "auto": off for a server on this host, on otherwise; true; false
//! batch_max_points = 5000
//! batch_max_bytes = 4194304
//! batch_max_age = "1s"
//! request_timeout = "10s"
//! retry_initial_backoff = "100ms"
//! retry_max_backoff = "30s"
//! shutdown_timeout = "30s"
//! spool_dir = "/var/lib/tidewatch/spool/influx"
//! dead_letter_file = "/var/lib/tidewatch/influx-dead-letter.jsonl"
//!
//! [spool]
//! max_bytes = 1073741824
//! segment_bytes = 67108864
//! ```
//!
//! For InfluxDB 2.x / 3.x (or VictoriaMetrics) the connection part reads:
//!
//! ```toml
//! url = "http://influx.example.internal:8086"
//! api = "v2"
//! org = "facility"
//! bucket = "telemetry"
//! token_file = "/etc/tidewatch/influx-token"
//! ```
//!
//! Durations are written as an integer and a unit: `ns`, `us`, `ms`, `s`, `m`, `h`.
//! Secrets (the v1 password, the v2 token) come from exactly one of three places: the
//! value itself (`password`, `token`), a file holding it (`password_file`, `token_file`;
//! one trailing line break is removed), or an environment variable (`password_env`,
//! `token_env`). They are read once, when the writer starts, and never logged.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::spool::SpoolConfig;

/// Settings of an [`InfluxWriter`](super::InfluxWriter); see the [module docs](self)
/// for a sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InfluxConfig {
    /// Base URL of the server: `http://host:8086`. A path prefix (a reverse proxy's
    /// `http://proxy/influx`) is kept and the write path appended to it. Plain HTTP
    /// only for now: this build has no TLS (use a local TLS-terminating proxy, or add
    /// reqwest's `rustls-tls` feature to the storage crate).
    pub url: String,

    /// Which write API to speak: `v1` (`/write`, InfluxDB 1.x, and the 1.x
    /// compatibility endpoint of 2.x) or `v2` (`/api/v2/write`, InfluxDB 2.x and 3.x,
    /// VictoriaMetrics).
    pub api: Api,

    /// v1: the database to write into (`db`). Required with `api = "v1"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,

    /// v1: the retention policy (`rp`); the database's default policy when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_policy: Option<String>,

    /// v1: the user name, sent with the password as HTTP basic authentication (not in
    /// the URL, so it never shows in proxy logs). Absent: no authentication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,

    /// v1: the password itself. Prefer `password_file` or `password_env`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,

    /// v1: a file holding the password (one trailing line break is removed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_file: Option<PathBuf>,

    /// v1: the name of an environment variable holding the password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_env: Option<String>,

    /// v2: the organisation (`org`). Required with `api = "v2"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org: Option<String>,

    /// v2: the bucket (`bucket`). Required with `api = "v2"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket: Option<String>,

    /// v2: the API token itself, sent as `Authorization: Token ...`. Prefer
    /// `token_file` or `token_env`. InfluxDB 2.x and 3.x need one; VictoriaMetrics
    /// ignores it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,

    /// v2: a file holding the token (one trailing line break is removed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_file: Option<PathBuf>,

    /// v2: the name of an environment variable holding the token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_env: Option<String>,

    /// Timestamp precision written and announced to the server: `ns` (default), `us`,
    /// `ms` or `s`. Coarser precisions make lines shorter; timestamps are truncated
    /// (rounded towards the past) to it. Each spooled batch records the precision it
    /// was written with, so changing this setting never misreads a spooled batch.
    #[serde(default = "default_precision")]
    pub precision: Precision,

    /// Compress request bodies with gzip (`Content-Encoding: gzip`): `true`,
    /// `false`, or `"auto"` (the default): off when the server is on this host (a
    /// loopback address or `localhost`), where compressing saves no network and
    /// costs CPU on both sides (the server must inflate every body), on otherwise.
    /// Line protocol shrinks about fourfold; every InfluxDB version and
    /// VictoriaMetrics accept it.
    #[serde(default)]
    pub gzip: Gzip,

    /// A batch is closed (and spooled) once it holds this many points; also the most
    /// points one request carries when the sender merges spooled batches.
    #[serde(default = "default_batch_max_points")]
    pub batch_max_points: usize,

    /// A batch is closed once its line protocol reaches this many bytes (before gzip);
    /// also the most bytes one request carries when the sender merges spooled batches.
    /// Keep it below the server's body limit (InfluxDB 1.x `max-body-size`, 25 MB by
    /// default); a 413 is handled by splitting, but costs round trips.
    #[serde(default = "default_batch_max_bytes")]
    pub batch_max_bytes: usize,

    /// A batch is closed once its first point has waited this long. A call to
    /// [`InfluxWriter::write`](super::InfluxWriter::write) returns when its batch is
    /// spooled, so this is also the longest a write waits when the load is low.
    #[serde(default = "default_batch_max_age", with = "duration_text")]
    pub batch_max_age: Duration,

    /// Time limit of one HTTP request (connect, send, answer); a request that passes
    /// it is retried like a connection error.
    #[serde(default = "default_request_timeout", with = "duration_text")]
    pub request_timeout: Duration,

    /// The first retry waits about this long; each further retry of the same request
    /// twice as long, up to `retry_max_backoff` (with jitter: between half and all of
    /// it). A `Retry-After` from the server replaces the computed wait.
    #[serde(default = "default_retry_initial_backoff", with = "duration_text")]
    pub retry_initial_backoff: Duration,

    /// The longest wait between two retries (without `Retry-After`).
    #[serde(default = "default_retry_max_backoff", with = "duration_text")]
    pub retry_max_backoff: Duration,

    /// How long [`InfluxWriter::shutdown`](super::InfluxWriter::shutdown) waits for the
    /// server to take what is spooled; what it did not take stays in the spool for the
    /// next start.
    #[serde(default = "default_shutdown_timeout", with = "duration_text")]
    pub shutdown_timeout: Duration,

    /// The spool directory: batches wait here, on disk, until the server confirmed
    /// them. One writer process per directory.
    #[serde(default = "default_spool_dir")]
    pub spool_dir: PathBuf,

    /// The spool's bounds (`max_bytes`, `segment_bytes`, `skip_corrupt`); when it is
    /// full, writes wait (backpressure) and only the newest value per series is kept.
    #[serde(default)]
    pub spool: SpoolConfig,

    /// Where lines the server refused (400/422, or a single line too large for it) are
    /// kept, one JSON object per line: `time`, `status`, `error` (the server's
    /// message), `url`, `line`. Refused data is never dropped silently.
    #[serde(default = "default_dead_letter_file")]
    pub dead_letter_file: PathBuf,
}

/// The write API spoken to the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Api {
    /// `POST /write?db=&rp=&precision=`, basic authentication: InfluxDB 1.x.
    V1,
    /// `POST /api/v2/write?org=&bucket=&precision=`, `Authorization: Token`:
    /// InfluxDB 2.x and 3.x, VictoriaMetrics.
    V2,
}

/// Timestamp precision of the written lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// Nanoseconds (the points' own resolution).
    Ns,
    /// Microseconds.
    Us,
    /// Milliseconds.
    Ms,
    /// Seconds.
    S,
}

impl Precision {
    /// The query parameter value (`ns`, `us`, `ms`, `s`), the same for both APIs.
    pub fn as_str(self) -> &'static str {
        match self {
            Precision::Ns => "ns",
            Precision::Us => "us",
            Precision::Ms => "ms",
            Precision::S => "s",
        }
    }

    /// Nanoseconds per unit.
    pub fn nanos(self) -> i64 {
        match self {
            Precision::Ns => 1,
            Precision::Us => 1_000,
            Precision::Ms => 1_000_000,
            Precision::S => 1_000_000_000,
        }
    }

    pub(crate) fn parse(text: &str) -> Option<Precision> {
        Some(match text {
            "ns" => Precision::Ns,
            "us" => Precision::Us,
            "ms" => Precision::Ms,
            "s" => Precision::S,
            _ => return None,
        })
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `ns`.
pub fn default_precision() -> Precision {
    Precision::Ns
}

/// Whether request bodies are gzipped: the `gzip` setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Gzip {
    /// Off for a server on this host (loopback address or `localhost`), on otherwise.
    #[default]
    Auto,
    /// Always.
    On,
    /// Never.
    Off,
}

impl Gzip {
    /// Whether bodies sent to `url` are gzipped.
    pub fn applies_to(self, url: &reqwest::Url) -> bool {
        match self {
            Gzip::On => true,
            Gzip::Off => false,
            Gzip::Auto => !is_this_host(url),
        }
    }
}

/// Whether `url` names this host: `localhost` or a loopback address.
fn is_this_host(url: &reqwest::Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    // IPv6 hosts come bracketed: `[::1]`.
    let host = host.trim_start_matches('[').trim_end_matches(']');
    match host.parse::<std::net::IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => {
            let host = host.to_ascii_lowercase();
            host == "localhost" || host.ends_with(".localhost")
        }
    }
}

/// Written as the configuration file takes it: `"auto"`, `true` or `false`.
impl Serialize for Gzip {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Gzip::Auto => serializer.serialize_str("auto"),
            Gzip::On => serializer.serialize_bool(true),
            Gzip::Off => serializer.serialize_bool(false),
        }
    }
}

/// `true`, `false` or `"auto"`.
impl<'de> Deserialize<'de> for Gzip {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct GzipVisitor;
        impl serde::de::Visitor<'_> for GzipVisitor {
            type Value = Gzip;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("true, false or \"auto\"")
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Gzip, E> {
                Ok(if v { Gzip::On } else { Gzip::Off })
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Gzip, E> {
                match v {
                    "auto" => Ok(Gzip::Auto),
                    other => Err(E::invalid_value(serde::de::Unexpected::Str(other), &self)),
                }
            }
        }
        deserializer.deserialize_any(GzipVisitor)
    }
}

/// 5000 points, InfluxData's recommended batch size.
pub fn default_batch_max_points() -> usize {
    5000
}

/// 4 MiB of line protocol.
pub fn default_batch_max_bytes() -> usize {
    4 << 20
}

/// 1 s.
pub fn default_batch_max_age() -> Duration {
    Duration::from_secs(1)
}

/// 10 s.
pub fn default_request_timeout() -> Duration {
    Duration::from_secs(10)
}

/// 100 ms.
pub fn default_retry_initial_backoff() -> Duration {
    Duration::from_millis(100)
}

/// 30 s.
pub fn default_retry_max_backoff() -> Duration {
    Duration::from_secs(30)
}

/// 30 s.
pub fn default_shutdown_timeout() -> Duration {
    Duration::from_secs(30)
}

/// `/var/lib/tidewatch/spool/influx`.
pub fn default_spool_dir() -> PathBuf {
    PathBuf::from("/var/lib/tidewatch/spool/influx")
}

/// `/var/lib/tidewatch/influx-dead-letter.jsonl`.
pub fn default_dead_letter_file() -> PathBuf {
    PathBuf::from("/var/lib/tidewatch/influx-dead-letter.jsonl")
}

/// A configuration that cannot work, or a secret that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("influx writer configuration: {0}")]
pub struct ConfigError(pub String);

/// A password or token: never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value, to put in a request.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Where the writer sends, with the secrets read: what [`InfluxConfig::resolve`]
/// returns.
#[derive(Debug, Clone)]
pub struct Target {
    /// The write endpoint with its query parameters except `precision`.
    pub(crate) endpoint: reqwest::Url,
    /// Whether request bodies are gzipped (the `gzip` setting, applied to the URL).
    pub(crate) gzip: bool,
    /// The same, safe to log (no secrets are ever in it; kept apart for clarity).
    pub(crate) display: String,
    pub(crate) auth: Auth,
}

#[derive(Debug, Clone)]
pub(crate) enum Auth {
    None,
    Basic { username: String, password: Secret },
    Token(Secret),
}

impl InfluxConfig {
    /// A configuration with every default, for `url` and `api`; the API's own
    /// settings (database, or org and bucket) still need setting.
    pub fn new(url: impl Into<String>, api: Api) -> InfluxConfig {
        InfluxConfig {
            url: url.into(),
            api,
            database: None,
            retention_policy: None,
            username: None,
            password: None,
            password_file: None,
            password_env: None,
            org: None,
            bucket: None,
            token: None,
            token_file: None,
            token_env: None,
            precision: default_precision(),
            gzip: Gzip::Auto,
            batch_max_points: default_batch_max_points(),
            batch_max_bytes: default_batch_max_bytes(),
            batch_max_age: default_batch_max_age(),
            request_timeout: default_request_timeout(),
            retry_initial_backoff: default_retry_initial_backoff(),
            retry_max_backoff: default_retry_max_backoff(),
            shutdown_timeout: default_shutdown_timeout(),
            spool_dir: default_spool_dir(),
            spool: SpoolConfig::default(),
            dead_letter_file: default_dead_letter_file(),
        }
    }

    /// Checks the settings and reads the secrets: the write endpoint and its
    /// credentials. Every problem is named with the setting concerned.
    pub fn resolve(&self) -> Result<Target, ConfigError> {
        let err = |msg: String| Err(ConfigError(msg));
        let mut url = reqwest::Url::parse(&self.url)
            .map_err(|e| ConfigError(format!("url {:?} is not a URL: {e}", self.url)))?;
        match url.scheme() {
            "http" => {}
            "https" => {
                return err(format!(
                    "url {:?}: this build has no TLS support; use http:// (through a \
                     local TLS-terminating proxy if the server is remote)",
                    self.url
                ))
            }
            other => return err(format!("url {:?}: scheme {other:?} is not http", self.url)),
        }
        if url.query().is_some() || url.fragment().is_some() {
            return err(format!(
                "url {:?}: give the base URL only, without a query or fragment",
                self.url
            ));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return err(format!(
                "url {:?}: credentials do not belong in the URL; use username/password or token",
                self.url
            ));
        }
        if self.batch_max_points == 0 || self.batch_max_bytes == 0 {
            return err("batch_max_points and batch_max_bytes must be at least 1".into());
        }
        if self.batch_max_age.is_zero() {
            return err("batch_max_age must be above zero".into());
        }
        if self.retry_initial_backoff.is_zero()
            || self.retry_initial_backoff > self.retry_max_backoff
        {
            return err(format!(
                "retry_initial_backoff ({:?}) must be above zero and at most retry_max_backoff ({:?})",
                self.retry_initial_backoff, self.retry_max_backoff
            ));
        }
        if self.request_timeout.is_zero() {
            return err("request_timeout must be above zero".into());
        }
        let base_path = url.path().trim_end_matches('/').to_owned();
        let auth;
        match self.api {
            Api::V1 => {
                self.forbid_all(
                    "v1",
                    &[
                        ("org", self.org.is_some()),
                        ("bucket", self.bucket.is_some()),
                        ("token", self.token.is_some()),
                        ("token_file", self.token_file.is_some()),
                        ("token_env", self.token_env.is_some()),
                    ],
                )?;
                let Some(database) = self.database.as_deref().filter(|d| !d.is_empty()) else {
                    return err("database is required with api = \"v1\"".into());
                };
                let password = read_secret(
                    "password",
                    self.password.as_deref(),
                    self.password_file.as_deref(),
                    self.password_env.as_deref(),
                )?;
                auth = match (&self.username, password) {
                    (None, None) => Auth::None,
                    (Some(username), Some(password)) => Auth::Basic {
                        username: username.clone(),
                        password,
                    },
                    (Some(_), None) => return err(
                        "username is set but no password (password, password_file or password_env)"
                            .into(),
                    ),
                    (None, Some(_)) => return err("a password is set but no username".into()),
                };
                url.set_path(&format!("{base_path}/write"));
                {
                    let mut query = url.query_pairs_mut();
                    query.append_pair("db", database);
                    if let Some(rp) = self.retention_policy.as_deref().filter(|r| !r.is_empty()) {
                        query.append_pair("rp", rp);
                    }
                }
            }
            Api::V2 => {
                self.forbid_all(
                    "v2",
                    &[
                        ("database", self.database.is_some()),
                        ("retention_policy", self.retention_policy.is_some()),
                        ("username", self.username.is_some()),
                        ("password", self.password.is_some()),
                        ("password_file", self.password_file.is_some()),
                        ("password_env", self.password_env.is_some()),
                    ],
                )?;
                let (Some(org), Some(bucket)) = (
                    self.org.as_deref().filter(|o| !o.is_empty()),
                    self.bucket.as_deref().filter(|b| !b.is_empty()),
                ) else {
                    return err("org and bucket are required with api = \"v2\"".into());
                };
                let token = read_secret(
                    "token",
                    self.token.as_deref(),
                    self.token_file.as_deref(),
                    self.token_env.as_deref(),
                )?;
                auth = token.map_or(Auth::None, Auth::Token);
                url.set_path(&format!("{base_path}/api/v2/write"));
                url.query_pairs_mut()
                    .append_pair("org", org)
                    .append_pair("bucket", bucket);
            }
        }
        Ok(Target {
            display: url.to_string(),
            gzip: self.gzip.applies_to(&url),
            endpoint: url,
            auth,
        })
    }

    fn forbid_all(&self, api: &str, settings: &[(&str, bool)]) -> Result<(), ConfigError> {
        let set: Vec<&str> = settings
            .iter()
            .filter(|(_, present)| *present)
            .map(|(name, _)| *name)
            .collect();
        if set.is_empty() {
            Ok(())
        } else {
            Err(ConfigError(format!(
                "{} not used with api = \"{api}\"; remove {}",
                set.join(", "),
                if set.len() == 1 { "it" } else { "them" }
            )))
        }
    }
}

/// Reads a secret from exactly one of its three sources; `None` if none is set.
fn read_secret(
    name: &str,
    inline: Option<&str>,
    file: Option<&Path>,
    env: Option<&str>,
) -> Result<Option<Secret>, ConfigError> {
    let sources =
        usize::from(inline.is_some()) + usize::from(file.is_some()) + usize::from(env.is_some());
    if sources > 1 {
        return Err(ConfigError(format!(
            "set only one of {name}, {name}_file and {name}_env"
        )));
    }
    if let Some(value) = inline {
        return Ok(Some(Secret::new(value)));
    }
    if let Some(path) = file {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigError(format!("{name}_file {}: cannot read: {e}", path.display()))
        })?;
        let value = text
            .strip_suffix('\n')
            .map(|t| t.strip_suffix('\r').unwrap_or(t))
            .unwrap_or(&text);
        return Ok(Some(Secret::new(value)));
    }
    if let Some(var) = env {
        return match std::env::var(var) {
            Ok(value) => Ok(Some(Secret::new(value))),
            Err(e) => Err(ConfigError(format!(
                "{name}_env: environment variable {var}: {e}"
            ))),
        };
    }
    Ok(None)
}

/// Durations as text: an integer and a unit (`500ms`, `1s`, `2m`).
pub mod duration_text {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    /// Parses `<integer><unit>` with unit `ns`, `us`, `ms`, `s`, `m` or `h`.
    pub fn parse(text: &str) -> Result<Duration, String> {
        let text = text.trim();
        let split = text
            .find(|c: char| !c.is_ascii_digit())
            .ok_or_else(|| format!("duration {text:?} has no unit (ns, us, ms, s, m, h)"))?;
        let (number, unit) = text.split_at(split);
        let n: u64 = number
            .parse()
            .map_err(|_| format!("duration {text:?} does not start with an integer"))?;
        let d = match unit.trim() {
            "ns" => Duration::from_nanos(n),
            "us" => Duration::from_micros(n),
            "ms" => Duration::from_millis(n),
            "s" => Duration::from_secs(n),
            "m" => Duration::from_secs(n.saturating_mul(60)),
            "h" => Duration::from_secs(n.saturating_mul(3600)),
            other => {
                return Err(format!(
                    "duration {text:?}: unknown unit {other:?} (ns, us, ms, s, m, h)"
                ))
            }
        };
        Ok(d)
    }

    /// Writes the duration with the largest unit that keeps it exact.
    pub fn format(d: Duration) -> String {
        let ns = d.as_nanos();
        for (unit, per) in [
            ("h", 3_600_000_000_000u128),
            ("m", 60_000_000_000),
            ("s", 1_000_000_000),
            ("ms", 1_000_000),
            ("us", 1_000),
        ] {
            if ns != 0 && ns % per == 0 {
                return format!("{}{unit}", ns / per);
            }
        }
        format!("{ns}ns")
    }

    /// Serde `deserialize_with`.
    pub fn deserialize<'de, D: Deserializer<'de>>(de: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(de)?;
        parse(&text).map_err(serde::de::Error::custom)
    }

    /// Serde `serialize_with`.
    pub fn serialize<S: Serializer>(d: &Duration, ser: S) -> Result<S::Ok, S::Error> {
        ser.serialize_str(&format(*d))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toml_blocks() -> Vec<String> {
        crate::doc_samples::toml_blocks(include_str!("config.rs"))
    }

    #[test]
    fn the_documented_samples_parse_and_show_the_defaults() {
        let blocks = toml_blocks();
        assert_eq!(blocks.len(), 2);
        let v1: InfluxConfig = toml::from_str(&blocks[0]).unwrap();
        let mut expected = InfluxConfig::new("http://127.0.0.1:8086", Api::V1);
        expected.database = Some("tidewatch".into());
        expected.retention_policy = Some("autogen".into());
        expected.username = Some("tidewatch".into());
        expected.password_env = Some("TIDEWATCH_INFLUX_PASSWORD".into());
        assert_eq!(
            v1, expected,
            "every other value in the sample is the default"
        );

        let v2: InfluxConfig = toml::from_str(&blocks[1]).unwrap();
        assert_eq!(v2.api, Api::V2);
        assert_eq!(v2.bucket.as_deref(), Some("telemetry"));
        assert_eq!(v2.batch_max_points, 5000);
        assert_eq!(v2.batch_max_age, Duration::from_secs(1));
        assert_eq!(v2.precision, Precision::Ns);
        assert_eq!(v2.gzip, Gzip::Auto);
    }

    #[test]
    fn gzip_is_off_by_default_only_for_a_server_on_this_host() {
        let gzips = |url: &str, gzip: Gzip| {
            let mut c = InfluxConfig::new(url, Api::V1);
            c.database = Some("d".into());
            c.gzip = gzip;
            c.resolve().unwrap().gzip
        };
        for local in [
            "http://127.0.0.1:8086",
            "http://127.8.9.10:8086",
            "http://localhost:8086",
            "http://LocalHost:8086",
            "http://[::1]:8086",
        ] {
            assert!(!gzips(local, Gzip::Auto), "{local}");
            assert!(gzips(local, Gzip::On), "{local}");
        }
        for remote in [
            "http://10.20.0.5:8086",
            "http://influx.park.example:8086",
            "http://[fd00::5]:8086",
        ] {
            assert!(gzips(remote, Gzip::Auto), "{remote}");
            assert!(!gzips(remote, Gzip::Off), "{remote}");
        }
        let parse = |text: &str| {
            toml::from_str::<InfluxConfig>(&format!("url = \"http://h\"\napi = \"v1\"\n{text}"))
        };
        assert_eq!(parse("gzip = true").unwrap().gzip, Gzip::On);
        assert_eq!(parse("gzip = false").unwrap().gzip, Gzip::Off);
        assert_eq!(parse("gzip = \"auto\"").unwrap().gzip, Gzip::Auto);
        assert_eq!(parse("").unwrap().gzip, Gzip::Auto);
        let e = parse("gzip = \"yes\"").unwrap_err().to_string();
        assert!(e.contains("true, false or \"auto\""), "{e}");
    }

    #[test]
    fn unknown_settings_and_settings_of_the_other_api_are_refused() {
        let e = toml::from_str::<InfluxConfig>("url = \"http://h\"\napi = \"v1\"\ndatbase = \"x\"")
            .unwrap_err();
        assert!(e.to_string().contains("datbase"), "{e}");
        let mut c = InfluxConfig::new("http://h:8086", Api::V1);
        c.database = Some("d".into());
        c.token = Some("t".into());
        assert!(c
            .resolve()
            .unwrap_err()
            .0
            .contains("token not used with api = \"v1\""));
        let mut c = InfluxConfig::new("http://h:8086", Api::V2);
        c.org = Some("o".into());
        assert!(c
            .resolve()
            .unwrap_err()
            .0
            .contains("org and bucket are required"));
        let mut c = InfluxConfig::new("https://h:8086", Api::V1);
        c.database = Some("d".into());
        assert!(c.resolve().unwrap_err().0.contains("no TLS"));
    }

    #[test]
    fn endpoints_keep_a_path_prefix_and_encode_parameters() {
        let mut c = InfluxConfig::new("http://proxy:80/influx/", Api::V1);
        c.database = Some("tide watch".into());
        c.retention_policy = Some("a&b".into());
        let t = c.resolve().unwrap();
        assert_eq!(
            t.endpoint.as_str(),
            "http://proxy/influx/write?db=tide+watch&rp=a%26b"
        );
        let mut c = InfluxConfig::new("http://h:8086", Api::V2);
        c.org = Some("o".into());
        c.bucket = Some("b".into());
        c.token = Some("tok".into());
        let t = c.resolve().unwrap();
        assert_eq!(
            t.endpoint.as_str(),
            "http://h:8086/api/v2/write?org=o&bucket=b"
        );
        assert!(matches!(t.auth, Auth::Token(ref s) if s.expose() == "tok"));
        assert_eq!(format!("{:?}", t.auth), "Token(Secret(***))");
    }

    #[test]
    fn secrets_come_from_one_source_file_or_env() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pw");
        std::fs::write(&file, "s3cret\n").unwrap();
        let mut c = InfluxConfig::new("http://h:8086", Api::V1);
        c.database = Some("d".into());
        c.username = Some("u".into());
        c.password_file = Some(file.clone());
        let t = c.resolve().unwrap();
        assert!(
            matches!(t.auth, Auth::Basic { ref password, .. } if password.expose() == "s3cret")
        );
        c.password = Some("x".into());
        assert!(c.resolve().unwrap_err().0.contains("only one of password"));
        c.password = None;
        c.password_file = None;
        c.password_env = Some("TIDEWATCH_TEST_SURELY_UNSET_VARIABLE".into());
        assert!(c
            .resolve()
            .unwrap_err()
            .0
            .contains("TIDEWATCH_TEST_SURELY_UNSET_VARIABLE"));
        c.password_env = None;
        assert!(c.resolve().unwrap_err().0.contains("no password"));
    }

    #[test]
    fn durations_parse_and_format() {
        assert_eq!(
            duration_text::parse("100ms"),
            Ok(Duration::from_millis(100))
        );
        assert_eq!(duration_text::parse("2m"), Ok(Duration::from_secs(120)));
        assert!(duration_text::parse("10").is_err());
        assert!(duration_text::parse("1.5s").is_err());
        assert!(duration_text::parse("3d").is_err());
        assert_eq!(duration_text::format(Duration::from_millis(1500)), "1500ms");
        assert_eq!(duration_text::format(Duration::from_secs(30)), "30s");
        assert_eq!(duration_text::format(Duration::ZERO), "0ns");
    }
}
