//! Harness of the MQTT collector tests: a real Mosquitto of the test's own (free
//! loopback port, temp folder, persistence on so sessions survive a restart), a
//! test sink that accepts, refuses or holds batches on command, the collector in a
//! runtime of its own, and a publisher that sends numbered QoS 1 messages and retries
//! each until the broker acknowledged it. [`pki`]: certificates for the TLS tests, and
//! [`Mosquitto::start_secured`]: a broker whose collector listener takes TLS and a
//! login.
#![allow(dead_code)]

pub mod pki;

use std::collections::BTreeSet;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rumqttc::{AsyncClient, Event, MqttOptions, Outgoing, Packet, QoS};
use tidewatch_collectors::mqtt::{
    MqttCollector, MqttConfig, MqttStatsSnapshot, RunningMqttCollector,
};
use tidewatch_collectors::sink::{PointSink, SinkError, SinkFuture, WriteError};
use tidewatch_model::{FieldValue, Point};

/// A free TCP port on 127.0.0.1 (bound and released; the caller binds it next).
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    l.local_addr().expect("local address").port()
}

/// The full path of an external program, or a panic naming its Debian package.
pub fn require_program(name: &str, debian_package: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in
        std::env::split_paths(&path).chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/bin")])
    {
        let candidate = dir.join(name);
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!("`{name}` is not installed: this test needs it (apt-get install {debian_package}; the README's test command installs it)");
}

fn wait_for_tcp(addr: SocketAddr, timeout: Duration) {
    let start = Instant::now();
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        assert!(
            start.elapsed() < timeout,
            "nothing listens on {addr} after {timeout:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A loopback port held by a bound socket that does not listen, so that nothing else
/// takes it while the broker is down (clients are refused, as by a dead broker).
struct PortHold(#[allow(dead_code)] tokio::net::TcpSocket);

impl PortHold {
    fn new(port: u16) -> PortHold {
        let socket = tokio::net::TcpSocket::new_v4().expect("a TCP socket");
        socket.set_reuseaddr(true).expect("SO_REUSEADDR");
        socket
            .bind(SocketAddr::from(([127, 0, 0, 1], port)))
            .unwrap_or_else(|e| panic!("cannot hold port {port}: {e}"));
        PortHold(socket)
    }
}

/// A Mosquitto broker of the test's own.
pub struct Mosquitto {
    /// The collector's listener.
    pub port: u16,
    /// The test publishers' listener: plain MQTT, anonymous. The same as `port` but for
    /// a broker from [`Mosquitto::start_secured`], where `port` takes TLS and a login.
    pub publish_port: u16,
    pub dir: tempfile::TempDir,
    process: Option<Child>,
    hold: Vec<PortHold>,
}

impl Mosquitto {
    /// Start with persistence on (sessions and their queued messages survive a
    /// graceful restart).
    pub fn start() -> Mosquitto {
        Mosquitto::start_with(true)
    }

    pub fn start_with(persistence: bool) -> Mosquitto {
        Mosquitto::start_configured(persistence, None)
    }

    /// Start a broker whose collector listener (`port`) is set up by `listener`:
    /// given the broker's folder (readable by the broker; see [`broker_readable`]), it
    /// writes the files it needs there (certificates, a password file) and returns the
    /// listener's settings (`cafile ...`, `password_file ...`, `allow_anonymous
    /// false`). Settings are per listener: the publishers' listener (`publish_port`)
    /// stays plain and anonymous. Persistence on.
    pub fn start_secured(listener: impl FnOnce(&Path) -> String) -> Mosquitto {
        Mosquitto::start_configured(true, Some(Box::new(listener)))
    }

    #[allow(clippy::type_complexity)]
    fn start_configured(
        persistence: bool,
        listener: Option<Box<dyn FnOnce(&Path) -> String + '_>>,
    ) -> Mosquitto {
        let dir = tempfile::tempdir().expect("temp dir");
        // Started as root, Mosquitto drops to the `mosquitto` user: let it write its
        // persistence file and log in the folder.
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777))
                .expect("chmod the broker's folder");
        }
        let port = free_port();
        let (publish_port, listeners) = match listener {
            None => (
                port,
                format!("listener {port} 127.0.0.1\nallow_anonymous true\n"),
            ),
            Some(settings) => {
                let publish_port = loop {
                    let p = free_port();
                    if p != port {
                        break p;
                    }
                };
                let settings = settings(dir.path());
                (
                    publish_port,
                    format!(
                        "per_listener_settings true\n\
                         listener {port} 127.0.0.1\n{settings}\n\
                         listener {publish_port} 127.0.0.1\nallow_anonymous true\n"
                    ),
                )
            }
        };
        let conf = dir.path().join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!(
                "{listeners}\
                 persistence {persistence}\n\
                 persistence_location {}/\n\
                 autosave_interval 1\n\
                 max_queued_messages 100000\n\
                 log_dest file {}/mosquitto.log\n\
                 log_type error\nlog_type warning\nlog_type notice\n",
                dir.path().display(),
                dir.path().display(),
            ),
        )
        .expect("write mosquitto.conf");
        let mut m = Mosquitto {
            port,
            publish_port,
            dir,
            process: None,
            hold: Vec::new(),
        };
        m.spawn();
        m
    }

    fn spawn(&mut self) {
        let program = require_program("mosquitto", "mosquitto");
        let conf = self.dir.path().join("mosquitto.conf");
        let child = Command::new(program)
            .arg("-c")
            .arg(&conf)
            .spawn()
            .expect("start mosquitto");
        self.process = Some(child);
        for port in self.ports() {
            wait_for_tcp(
                SocketAddr::from(([127, 0, 0, 1], port)),
                Duration::from_secs(10),
            );
        }
        self.hold.clear();
    }

    fn ports(&self) -> Vec<u16> {
        if self.publish_port == self.port {
            vec![self.port]
        } else {
            vec![self.port, self.publish_port]
        }
    }

    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Stop the broker as an operator would (SIGTERM): it saves its persistence file
    /// (sessions, subscriptions, queued messages) and exits.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.process.take() {
            let status = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status()
                .expect("run kill");
            assert!(status.success(), "kill -TERM mosquitto: {status}");
            let start = Instant::now();
            loop {
                if child.try_wait().expect("wait mosquitto").is_some() {
                    break;
                }
                if start.elapsed() > Duration::from_secs(10) {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("mosquitto did not stop within 10 s of SIGTERM");
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            self.hold = self.ports().into_iter().map(PortHold::new).collect();
        }
    }

    /// Kill the broker outright (SIGKILL, as a crash would): what it did not save is
    /// lost.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.process.take() {
            let _ = child.kill();
            let _ = child.wait();
            self.hold = self.ports().into_iter().map(PortHold::new).collect();
        }
    }

    /// Start again on the same port with the same folder (and persistence file).
    pub fn restart(&mut self) {
        assert!(self.process.is_none(), "stop or kill the broker first");
        self.spawn();
    }

    /// The broker's log, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("mosquitto.log")).unwrap_or_default()
    }
}

/// Let the broker read a file the test wrote (Mosquitto started as root drops to the
/// `mosquitto` user; key files are written 0600).
pub fn broker_readable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
}

/// Write a Mosquitto password file with one user (`mosquitto_passwd -b -c`), readable
/// by the broker.
pub fn mosquitto_password_file(path: &Path, user: &str, password: &str) {
    let program = require_program("mosquitto_passwd", "mosquitto");
    let out = Command::new(program)
        .arg("-b")
        .arg("-c")
        .arg(path)
        .args([user, password])
        .output()
        .expect("run mosquitto_passwd");
    assert!(
        out.status.success(),
        "mosquitto_passwd failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    broker_readable(path);
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        if let Some(mut child) = self.process.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// What the test sink does with a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Mode {
    /// Keep the points and resolve `Ok`.
    Accept = 0,
    /// Resolve `Err(Unavailable)`, giving the points back.
    Refuse = 1,
    /// Never resolve (a store stuck on a full disk).
    Hold = 2,
}

/// A sink that keeps every accepted point, refusing or holding writes on command.
#[derive(Clone, Default)]
pub struct TestSink {
    pub points: Arc<Mutex<Vec<Point>>>,
    mode: Arc<AtomicU8>,
    pub writes: Arc<AtomicU64>,
}

impl TestSink {
    pub fn new(mode: Mode) -> TestSink {
        let s = TestSink::default();
        s.set_mode(mode);
        s
    }

    pub fn set_mode(&self, mode: Mode) {
        self.mode.store(mode as u8, Ordering::SeqCst);
    }

    pub fn points(&self) -> Vec<Point> {
        self.points.lock().expect("lock").clone()
    }

    /// Every point of `measurement`.
    pub fn of(&self, measurement: &str) -> Vec<Point> {
        self.points
            .lock()
            .expect("lock")
            .iter()
            .filter(|p| p.measurement() == measurement)
            .cloned()
            .collect()
    }

    /// The integer values of field `field` of `measurement` points, as a set.
    pub fn numbers(&self, measurement: &str, field: &str) -> BTreeSet<u64> {
        self.of(measurement)
            .iter()
            .filter_map(|p| match p.field_value(field) {
                Some(FieldValue::Float(x)) => Some(*x as u64),
                Some(FieldValue::Integer(i)) => Some(*i as u64),
                _ => None,
            })
            .collect()
    }
}

impl PointSink for TestSink {
    fn write(&self, points: Vec<Point>) -> SinkFuture<'_> {
        Box::pin(async move {
            self.writes.fetch_add(1, Ordering::Relaxed);
            match self.mode.load(Ordering::SeqCst) {
                0 => {
                    self.points.lock().expect("lock").extend(points);
                    Ok(())
                }
                1 => Err(WriteError::new(
                    SinkError::Unavailable("test sink refuses".into()),
                    points,
                )),
                _ => std::future::pending().await,
            }
        })
    }
}

/// A running MQTT collector in a runtime of its own.
pub struct Collector {
    pub rt: tokio::runtime::Runtime,
    pub running: Option<RunningMqttCollector>,
    pub sink: TestSink,
}

impl Collector {
    pub fn start(config: MqttConfig, sink: TestSink) -> Collector {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let collector = MqttCollector::new(config).expect("collector setup");
        let running = {
            let _guard = rt.enter();
            collector.start(sink.clone())
        };
        Collector {
            rt,
            running: Some(running),
            sink,
        }
    }

    pub fn stats(&self) -> MqttStatsSnapshot {
        self.running.as_ref().expect("running").stats()
    }

    /// Poll the stats until `done` holds, or panic after `timeout` with `what`.
    pub fn wait_for(
        &self,
        timeout: Duration,
        what: &str,
        done: impl Fn(&MqttStatsSnapshot) -> bool,
    ) -> MqttStatsSnapshot {
        let start = Instant::now();
        loop {
            let s = self.stats();
            if done(&s) {
                return s;
            }
            assert!(
                start.elapsed() < timeout,
                "{what} within {timeout:?}: {s:#?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Wait until the subscriptions are confirmed.
    pub fn wait_subscribed(&self) {
        self.wait_for(Duration::from_secs(10), "subscribed", |s| {
            s.subscribed_at.is_some()
        });
    }

    /// Graceful stop (last batch acknowledged, DISCONNECT).
    pub fn stop(&mut self) {
        if let Some(r) = self.running.take() {
            self.rt.block_on(r.shutdown());
        }
    }

    /// Kill: every task aborted at once, the connection dropped without DISCONNECT,
    /// as a crashed process would.
    pub fn kill(mut self) {
        self.running.take();
        // Dropping the runtime closes the sockets its tasks owned.
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.running.take();
    }
}

/// A test config: the broker, a fixed client id, a fast backoff cap unchanged (the
/// default 500 ms start), and `subscriptions` (TOML `[[subscription]]` tables).
pub fn config(broker: &str, client_id: &str, extra: &str, subscriptions: &str) -> MqttConfig {
    MqttConfig::from_toml_str(&format!(
        "broker = \"{broker}\"\nclient_id = \"{client_id}\"\n{extra}\n{subscriptions}"
    ))
    .unwrap_or_else(|e| panic!("{e}"))
}

/// One message to publish.
#[derive(Debug, Clone)]
pub struct Message {
    pub topic: String,
    pub payload: Vec<u8>,
}

/// Publish `messages` at QoS 1 from a client of its own (clean session), one at a time
/// in order, each retried (after reconnecting) until the broker acknowledged it: when
/// this returns, the broker has accepted every message. `pace` is the pause between
/// messages. Runs on the calling thread (a runtime of its own).
pub fn publish_confirmed(port: u16, client_id: &str, messages: &[Message], pace: Duration) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let mut options = MqttOptions::new(client_id, "127.0.0.1", port);
        options.set_keep_alive(Duration::from_secs(5));
        let (client, mut eventloop) = AsyncClient::new(options, 16);
        let mut i = 0;
        let mut connected = false;
        while i < messages.len() {
            if !connected {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => connected = true,
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
                continue;
            }
            let m = &messages[i];
            client
                .publish(m.topic.clone(), QoS::AtLeastOnce, false, m.payload.clone())
                .await
                .expect("queue a publish");
            // Until this message's PUBACK (or a lost connection: publish it again).
            let acked = loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::PubAck(_))) => break true,
                    Ok(_) => {}
                    Err(_) => break false,
                }
            };
            if acked {
                i += 1;
                if !pace.is_zero() {
                    tokio::time::sleep(pace).await;
                }
            } else {
                // The next CONNACK (clean session) makes rumqttc forget the
                // unacknowledged publish: publish it again then.
                connected = false;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        let _ = client.disconnect().await;
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Outgoing(Outgoing::Disconnect)) | Err(_) => break,
                    _ => {}
                }
            }
        })
        .await;
    });
}

/// Publish many messages at QoS 1 as fast as the broker takes them (100 in flight),
/// waiting until every one is acknowledged by the broker. No reconnects: for tests
/// where the broker stays up.
pub fn publish_burst(port: u16, client_id: &str, messages: Vec<Message>) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let mut options = MqttOptions::new(client_id, "127.0.0.1", port);
        options.set_keep_alive(Duration::from_secs(5));
        options.set_inflight(100);
        let (client, mut eventloop) = AsyncClient::new(options, 1000);
        let total = messages.len();
        let feeder = tokio::spawn(async move {
            for m in messages {
                client
                    .publish(m.topic, QoS::AtLeastOnce, false, m.payload)
                    .await
                    .expect("queue a publish");
            }
            client
        });
        let mut acked = 0;
        let deadline = Instant::now() + Duration::from_secs(120);
        while acked < total {
            assert!(
                Instant::now() < deadline,
                "only {acked} of {total} publishes acknowledged"
            );
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::PubAck(_))) => acked += 1,
                Ok(_) => {}
                Err(e) => panic!("publisher lost the broker: {e}"),
            }
        }
        let client = feeder.await.expect("feeder");
        let _ = client.disconnect().await;
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Outgoing(Outgoing::Disconnect)) | Err(_) => break,
                    _ => {}
                }
            }
        })
        .await;
    });
}
