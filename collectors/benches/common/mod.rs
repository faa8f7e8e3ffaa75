//! Parts shared by the MQTT benchmarks (`mod common;`; a folder, so that Cargo does not
//! take it for a benchmark of its own): a Mosquitto of the bench's own on a free
//! loopback port (never the system broker on 1883), rack-inlet messages, a fast QoS 1
//! publisher, and memory figures from /proc/self/status.
#![allow(dead_code)] // each benchmark uses a different part

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use rumqttc::{AsyncClient, Event, MqttOptions, Outgoing, Packet, QoS};

/// A free TCP port on 127.0.0.1 (bound and released; the broker binds it next).
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
    panic!("`{name}` is not installed: this benchmark needs it (apt-get install {debian_package})");
}

/// A Mosquitto broker of the bench's own: free loopback port, temp folder, persistence
/// off (nothing written to disk mid-run), and no limit on the messages queued for an
/// offline persistent session (the default, 1000, would drop the rest of a pre-queued
/// stream). The in-flight window per client stays at Mosquitto's default (20), the same
/// for every subscriber measured.
pub struct Mosquitto {
    pub port: u16,
    pub dir: tempfile::TempDir,
    process: Child,
}

impl Mosquitto {
    pub fn start() -> Mosquitto {
        let dir = tempfile::tempdir().expect("temp dir");
        // Started as root, Mosquitto drops to the `mosquitto` user: let it write its
        // log in the folder.
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777))
                .expect("chmod the broker's folder");
        }
        let port = free_port();
        let conf = dir.path().join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!(
                "listener {port} 127.0.0.1\n\
                 allow_anonymous true\n\
                 persistence false\n\
                 max_queued_messages 0\n\
                 log_dest file {}/mosquitto.log\n\
                 log_type error\nlog_type warning\n",
                dir.path().display(),
            ),
        )
        .expect("write mosquitto.conf");
        let process = Command::new(require_program("mosquitto", "mosquitto"))
            .arg("-c")
            .arg(&conf)
            .spawn()
            .expect("start mosquitto");
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let start = Instant::now();
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "mosquitto does not listen on {addr}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Mosquitto { port, dir, process }
    }

    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn pid(&self) -> u32 {
        self.process.id()
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// The rack-inlet subscription of the collector README, on the bench's topic prefix.
pub const INLET_SUBSCRIPTION: &str = r#"
[[subscription]]
topic = "tidewatch/bench/{centre}/{zone}/{rack}/inlet"
format = "json"
qos = 1
measurement = "rack_inlet"
fields = { temperature_c = "temperature_c", humidity_pct = "humidity_pct" }
timestamp_path = "ts"
timestamp_format = "unix_ms"
tags = { sensor = "{centre}-{zone}-{rack}-inlet" }
"#;

/// The broker filter of [`INLET_SUBSCRIPTION`], for `mosquitto_sub`.
pub const INLET_FILTER: &str = "tidewatch/bench/+/+/+/inlet";

/// The topic of rack-inlet sensor `i`: centres of 250 zones of 40 racks each, so
/// sensors 0..50,000 are 50,000 distinct topics (and tag sets).
pub fn inlet_topic(i: usize) -> String {
    let (rack, zone, centre) = (i % 40 + 1, (i / 40) % 250 + 1, i / 10_000 + 1);
    format!("tidewatch/bench/dc{centre}/mm{zone:03}/r{rack:02}/inlet")
}

/// A rack-inlet JSON payload as the simulator publishes them.
pub fn inlet_payload(ts_ms: i64, i: usize) -> Vec<u8> {
    let t = 22.0 + (i % 97) as f64 * 0.05;
    let h = 35.0 + (i % 89) as f64 * 0.1;
    format!("{{\"ts\":{ts_ms},\"temperature_c\":{t:.2},\"humidity_pct\":{h:.1}}}").into_bytes()
}

/// Publish `messages` (topic, payload) at QoS 1 from a client of its own, up to 100
/// unacknowledged at a time, and return once the broker acknowledged every one: the
/// time that took.
pub fn publish_all(port: u16, client_id: &str, messages: Vec<(String, Vec<u8>)>) -> Duration {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let mut options = MqttOptions::new(client_id, "127.0.0.1", port);
        options.set_keep_alive(Duration::from_secs(30));
        options.set_inflight(100);
        let (client, mut eventloop) = AsyncClient::new(options, 1000);
        let total = messages.len();
        let started = Instant::now();
        let feeder = tokio::spawn(async move {
            for (topic, payload) in messages {
                client
                    .publish(topic, QoS::AtLeastOnce, false, payload)
                    .await
                    .expect("queue a publish");
            }
            client
        });
        let mut acked = 0;
        while acked < total {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::PubAck(_))) => acked += 1,
                Ok(_) => {}
                Err(e) => panic!("publisher lost the broker after {acked} of {total}: {e}"),
            }
        }
        let took = started.elapsed();
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
        took
    })
}

/// `VmRSS` and `VmHWM` (peak resident set) of this process, in MiB.
pub fn resident_mib() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|r| r.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    (kib("VmRSS:") / 1024.0, kib("VmHWM:") / 1024.0)
}

/// The median of `v` (NaN if empty).
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    match n {
        0 => f64::NAN,
        _ if n % 2 == 1 => v[n / 2],
        _ => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}
