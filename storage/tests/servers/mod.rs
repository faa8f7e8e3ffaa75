//! Real servers for the InfluxDB writer's tests: `influxd` (InfluxDB 1.x, Debian
//! package `influxdb`) and `victoria-metrics` (Debian package `victoria-metrics`),
//! each started on free loopback ports with a temporary directory, killed when the
//! handle is dropped. A missing binary fails the test with the package to install;
//! it never skips.

#![allow(dead_code)] // each test file uses a different part

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tidewatch_storage::influx::{Api, InfluxConfig};

/// A free TCP port on 127.0.0.1 (bound, then released for the server to take),
/// below the kernel's ephemeral range: a port from that range can be taken by any
/// outgoing connection meanwhile (the writer's own reconnects during an outage), and
/// a server restarted on its old port would then fail to bind.
pub fn free_port() -> u16 {
    let ephemeral_low = fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|t| {
            t.split_whitespace()
                .next()
                .and_then(|p| p.parse::<u16>().ok())
        })
        .unwrap_or(32_768);
    let low = 10_000.min(ephemeral_low / 2);
    for _ in 0..1_000 {
        let port = fastrand::u16(low..ephemeral_low);
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port below {ephemeral_low}")
}

/// Logs of the writer, shown when a test fails (`RUST_LOG` overrides the level).
pub fn init_logging() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "tidewatch_storage=info".into()),
        )
        .with_test_writer()
        .try_init();
}

fn spawn(binary: &str, package: &str, args: &[&str], log: &Path) -> Child {
    let log_file = fs::File::create(log).expect("create the server log");
    match Command::new(binary)
        .args(args)
        .stdin(Stdio::null())
        .stdout(log_file.try_clone().expect("log handle"))
        .stderr(log_file)
        .spawn()
    {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
            "`{binary}` is not installed: these tests need a real server; install the Debian \
             package `{package}` (apt-get install {package})"
        ),
        Err(e) => panic!("cannot start {binary}: {e}"),
    }
}

fn log_tail(log: &Path) -> String {
    let text = fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

/// Settings of an `influxd` started by [`Influxd::start`].
#[derive(Debug, Clone, Default)]
pub struct InfluxdOptions {
    /// `[http] max-body-size` in bytes (InfluxDB's default, 25 MB, when `None`).
    pub max_body_size: Option<u64>,
    /// `[http] auth-enabled = true`: an admin user `admin` with password
    /// [`ADMIN_PASSWORD`] is created once the server is up.
    pub auth: bool,
    /// Snapshot the cache and fully compact a shard after 1 s without writes (instead
    /// of InfluxDB's 10 min and 4 h), so a benchmark measures the data directory at
    /// rest, as it is on a server that has run for a while.
    pub compact_when_cold: bool,
}

/// The admin password of an `influxd` started with `auth`.
pub const ADMIN_PASSWORD: &str = "right password";

/// An `influxd` (InfluxDB 1.x) of the test's own.
pub struct Influxd {
    child: Option<Child>,
    pub port: u16,
    pub dir: tempfile::TempDir,
    config: PathBuf,
    log: PathBuf,
    options: InfluxdOptions,
    http: reqwest::Client,
}

impl Influxd {
    /// Writes a config file into a temporary directory, starts `influxd -config FILE`
    /// on free ports, waits for `/ping` to answer 204, and with `auth` creates the
    /// admin user.
    pub async fn start(options: InfluxdOptions) -> Influxd {
        let dir = tempfile::tempdir().expect("temp dir for influxd");
        let port = free_port();
        let d = dir.path().display();
        let cold = if options.compact_when_cold {
            "  cache-snapshot-write-cold-duration = \"1s\"\n  compact-full-write-cold-duration = \"1s\"\n"
        } else {
            ""
        };
        let max_body = options
            .max_body_size
            .map_or(String::new(), |n| format!("  max-body-size = {n}\n"));
        // `bind-address` (top level) is the backup/restore RPC service: port 0 lets the
        // kernel choose, so it never takes 8088 nor a port a restart would need.
        let config_text = format!(
            "reporting-disabled = true\n\
             bind-address = \"127.0.0.1:0\"\n\
             [meta]\n  dir = \"{d}/meta\"\n\
             [data]\n  dir = \"{d}/data\"\n  wal-dir = \"{d}/wal\"\n  query-log-enabled = false\n{cold}\
             [monitor]\n  store-enabled = false\n\
             [continuous_queries]\n  enabled = false\n\
             [http]\n  bind-address = \"127.0.0.1:{port}\"\n  log-enabled = false\n\
               auth-enabled = {}\n{max_body}",
            options.auth
        );
        let config = dir.path().join("influxd.conf");
        fs::write(&config, config_text).expect("write influxd.conf");
        let log = dir.path().join("influxd.log");
        let mut server = Influxd {
            child: None,
            port,
            dir,
            config,
            log,
            options,
            http: reqwest::Client::new(),
        };
        server.run().await;
        if server.options.auth {
            server.create_admin().await;
        }
        server
    }

    /// Creates the admin user (with no user yet, influxd accepts that one statement
    /// without credentials) and returns once a query authenticated as admin succeeds.
    /// influxd 1.x flushes `200 OK` before it runs the statement and reports a failure
    /// inside the JSON body, so the status alone says nothing: CI once sent the next
    /// query while the user was still being created, and was refused with "no user
    /// provided". The body is read, and the admin confirmed, before the test goes on.
    async fn create_admin(&self) {
        let create =
            format!("CREATE USER admin WITH PASSWORD '{ADMIN_PASSWORD}' WITH ALL PRIVILEGES");
        let started = Instant::now();
        let mut last = String::new();
        while started.elapsed() < Duration::from_secs(30) {
            let check = self
                .http
                .post(format!("{}/query", self.url()))
                .basic_auth("admin", Some(ADMIN_PASSWORD))
                .form(&[("q", "SHOW USERS")])
                .send()
                .await;
            if let Ok(answer) = check {
                let status = answer.status();
                let body = answer.text().await.unwrap_or_default();
                if status.is_success() && body.contains("\"admin\"") && !body.contains("\"error\"")
                {
                    return;
                }
                last = format!("SHOW USERS as admin: {status} {body}");
            }
            if let Ok(answer) = self
                .http
                .post(format!("{}/query", self.url()))
                .form(&[("q", create.as_str())])
                .send()
                .await
            {
                let status = answer.status();
                let body = answer.text().await.unwrap_or_default();
                last = format!("{last}; CREATE USER: {status} {body}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "influxd did not accept the admin user within 30 s ({last}); its log:\n{}",
            log_tail(&self.log)
        );
    }

    async fn run(&mut self) {
        let config = self.config.to_str().expect("utf-8 path").to_owned();
        self.child = Some(spawn(
            "influxd",
            "influxdb",
            &["-config", &config],
            &self.log,
        ));
        let started = Instant::now();
        loop {
            if let Ok(answer) = self.http.get(format!("{}/ping", self.url())).send().await {
                if answer.status().as_u16() == 204 {
                    return;
                }
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!(
                    "influxd exited ({status}); its log:\n{}",
                    log_tail(&self.log)
                );
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "influxd did not answer /ping within 60 s; its log:\n{}",
                log_tail(&self.log)
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The base URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// SIGKILL, and wait for the process to be gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again with the same config (port, data directory).
    pub async fn restart(&mut self) {
        self.kill();
        self.run().await;
    }

    /// Runs an InfluxQL statement (as admin when auth is on); returns the JSON answer,
    /// timestamps in nanoseconds.
    pub async fn query(&self, db: &str, q: &str) -> serde_json::Value {
        let mut request = self.http.post(format!("{}/query", self.url())).form(&[
            ("db", db),
            ("q", q),
            ("epoch", "ns"),
        ]);
        if self.options.auth {
            request = request.basic_auth("admin", Some(ADMIN_PASSWORD));
        }
        let answer = request.send().await.expect("query influxd");
        let status = answer.status();
        let body = answer.bytes().await.expect("query answer");
        let json: serde_json::Value = serde_json::from_slice(&body).expect("JSON answer");
        assert!(status.is_success(), "query {q:?}: {status} {json}");
        if let Some(error) = json["results"][0].get("error") {
            panic!("query {q:?}: {error}");
        }
        json
    }

    /// `CREATE DATABASE name`.
    pub async fn create_database(&self, name: &str) {
        self.query(name, &format!("CREATE DATABASE \"{name}\""))
            .await;
    }

    /// The rows of a single-series answer: `(columns, values)`.
    pub async fn rows(&self, db: &str, q: &str) -> (Vec<String>, Vec<Vec<serde_json::Value>>) {
        let json = self.query(db, q).await;
        let Some(series) = json["results"][0]["series"].as_array() else {
            return (Vec::new(), Vec::new());
        };
        assert_eq!(series.len(), 1, "one series expected: {json}");
        let columns = series[0]["columns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap().to_owned())
            .collect();
        let values = series[0]["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|row| row.as_array().unwrap().clone())
            .collect();
        (columns, values)
    }

    /// `SELECT count(field) FROM measurement` (0 when there is none).
    pub async fn count(&self, db: &str, measurement: &str, field: &str) -> u64 {
        let (_, rows) = self
            .rows(
                db,
                &format!("SELECT count(\"{field}\") FROM \"{measurement}\""),
            )
            .await;
        rows.first().map_or(0, |row| row[1].as_u64().unwrap())
    }
}

/// For a synchronous test (one that runs a binary or steps the simulator itself): a
/// two-worker runtime and, started on it, an `influxd` holding database `db`.
pub fn runtime_and_influxd(db: &str) -> (tokio::runtime::Runtime, Influxd) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let influxd = rt.block_on(Influxd::start(InfluxdOptions::default()));
    rt.block_on(influxd.create_database(db));
    (rt, influxd)
}

impl Drop for Influxd {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A VictoriaMetrics of the test's own, for the `/api/v2/write` endpoint.
pub struct VictoriaMetrics {
    child: Child,
    pub port: u16,
    pub dir: tempfile::TempDir,
    http: reqwest::Client,
}

impl VictoriaMetrics {
    /// Starts `victoria-metrics -httpListenAddr 127.0.0.1:PORT -storageDataPath DIR`
    /// and waits for `/health`.
    pub async fn start() -> VictoriaMetrics {
        let dir = tempfile::tempdir().expect("temp dir for victoria-metrics");
        let port = free_port();
        let listen = format!("127.0.0.1:{port}");
        let data = dir.path().join("data");
        let log = dir.path().join("victoria-metrics.log");
        let child = spawn(
            "victoria-metrics",
            "victoria-metrics",
            &[
                "-httpListenAddr",
                &listen,
                "-storageDataPath",
                data.to_str().expect("utf-8 path"),
                "-loggerLevel",
                "ERROR",
            ],
            &log,
        );
        let mut server = VictoriaMetrics {
            child,
            port,
            dir,
            http: reqwest::Client::new(),
        };
        let started = Instant::now();
        loop {
            if let Ok(answer) = server
                .http
                .get(format!("{}/health", server.url()))
                .send()
                .await
            {
                if answer.status().is_success() {
                    return server;
                }
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!(
                    "victoria-metrics exited ({status}); its log:\n{}",
                    log_tail(&log)
                );
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "victoria-metrics did not answer /health within 60 s:\n{}",
                log_tail(&log)
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The base URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Every sample stored, from `/api/v1/export` (after a forced flush, so the
    /// latest writes are searchable): one JSON object per series.
    pub async fn export(&self) -> Vec<serde_json::Value> {
        self.http
            .get(format!("{}/internal/force_flush", self.url()))
            .send()
            .await
            .expect("force_flush");
        let text = self
            .http
            .get(format!("{}/api/v1/export", self.url()))
            .query(&[
                ("match[]", "{__name__=~\".+\"}"),
                ("start", "0"),
                ("end", "4102444800"),
            ])
            .send()
            .await
            .expect("export")
            .text()
            .await
            .expect("export body");
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).expect("JSON line"))
            .collect()
    }
}

impl Drop for VictoriaMetrics {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A v1 writer configuration for `url` and `db`, with its spool and dead-letter file in
/// `dir`, short batch ages and backoffs so the tests run fast.
pub fn v1_config(url: &str, db: &str, dir: &Path) -> InfluxConfig {
    let mut config = InfluxConfig::new(url, Api::V1);
    config.database = Some(db.to_owned());
    config.spool_dir = dir.join("spool");
    config.dead_letter_file = dir.join("dead-letter.jsonl");
    config.batch_max_age = Duration::from_millis(100);
    config.retry_max_backoff = Duration::from_secs(1);
    config.request_timeout = Duration::from_secs(5);
    config.shutdown_timeout = Duration::from_secs(20);
    config
}

/// The dead-letter file's entries (none if it does not exist).
pub fn dead_letters(path: &Path) -> Vec<serde_json::Value> {
    match fs::read_to_string(path) {
        Ok(text) => text
            .lines()
            .map(|l| serde_json::from_str(l).expect("dead-letter entries are JSON"))
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => panic!("read {}: {e}", path.display()),
    }
}
