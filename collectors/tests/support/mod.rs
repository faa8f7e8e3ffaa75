//! Harness of the collector tests: the plant simulator served over real Modbus TCP on
//! free loopback ports in a runtime of its own, its control endpoint reached with a
//! minimal blocking HTTP client, and the collector in a second runtime, its batches
//! gathered on a thread.
#![allow(dead_code)]

use std::collections::{BTreeSet, HashMap};
use std::net::TcpStream;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tidewatch_collectors::modbus::{
    EndpointConfig, ModbusCollector, ModbusConfig, RunningCollector,
};
use tidewatch_devices::{DataType, Field, ProfileSet, Site};
use tidewatch_model::Point;
use tidewatch_sim::{RealtimeConfig, Simulator};

/// A running simulator of the reference park, in a runtime of its own.
pub struct Sim {
    pub rt: tokio::runtime::Runtime,
    pub sim: Option<Simulator>,
    pub profiles: ProfileSet,
    pub site: Site,
}

impl Sim {
    /// Start the simulator on free loopback ports, clock paused.
    pub fn start() -> Sim {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let profiles = ProfileSet::builtin().expect("built-in profiles");
        let site = Site::builtin(&profiles).expect("built-in site");
        let sim = rt
            .block_on(Simulator::start(
                &site,
                &profiles,
                RealtimeConfig::default(),
            ))
            .expect("start the simulator");
        sim.shared.paused.store(true, Ordering::SeqCst);
        Sim {
            rt,
            sim: Some(sim),
            profiles,
            site,
        }
    }

    pub fn sim(&self) -> &Simulator {
        self.sim.as_ref().expect("running")
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.sim().endpoints.control)
    }

    pub fn get(&self, path: &str) -> Value {
        http_json("GET", &self.url(path), None, 200)
    }

    pub fn post(&self, path: &str, body: Option<&str>, status: u16) -> Value {
        http_json("POST", &self.url(path), body, status)
    }

    /// Advance the paused clock by `n` steps, in calls of at most 10 000 steps so each
    /// reply comes well within the HTTP helper's timeout.
    pub fn step(&self, mut n: u32) {
        while n > 0 {
            let k = n.min(10_000);
            let reply = self.post(&format!("/clock/step?steps={k}"), None, 200);
            assert_eq!(reply["steps"], k, "{reply}");
            n -= k;
        }
    }

    /// Inject a fault; it acts from the next step, so take one.
    pub fn inject(&self, body: &str) -> u64 {
        let reply = self.post("/faults", Some(body), 201);
        self.step(1);
        reply["id"]
            .as_u64()
            .unwrap_or_else(|| panic!("no fault id in {reply}"))
    }

    /// End a fault; like its start it is applied at the next step.
    pub fn clear(&self, id: u64) {
        let reply = http_json("DELETE", &self.url(&format!("/faults/{id}")), None, 200);
        assert_eq!(reply["cleared"], true, "{reply}");
        self.step(1);
    }

    /// The `readings` (what the registers carry, as engineering values; null where the
    /// device reports "not available") of a device, from the simulator's own model.
    pub fn readings(&self, id: &str) -> serde_json::Map<String, Value> {
        let v = self.get(&format!("/devices/{id}"));
        v["readings"]
            .as_object()
            .unwrap_or_else(|| panic!("no readings in {v}"))
            .clone()
    }

    /// A collector config polling every endpoint the simulator serves (or only those
    /// holding a device that `keep` accepts), with `base` settings.
    pub fn collector_config(&self, base: &str, keep: impl Fn(&str) -> bool) -> ModbusConfig {
        let mut config = ModbusConfig::from_toml_str(base).expect("base config");
        for e in &self.sim().endpoints.modbus {
            if !e.devices.iter().any(|d| keep(&d.id)) {
                continue;
            }
            config.endpoints.push(match &e.gateway {
                Some(g) => EndpointConfig {
                    address: e.address.to_string(),
                    devices: vec![],
                    gateway: Some(g.clone()),
                    max_in_flight: None,
                    max_gap: None,
                },
                None => EndpointConfig {
                    address: e.address.to_string(),
                    devices: e.devices.iter().map(|d| d.id.clone()).collect(),
                    gateway: None,
                    max_in_flight: None,
                    max_gap: None,
                },
            });
        }
        config.validate().expect("valid config");
        config
    }

    /// The tags the simulator itself attaches to a device's points.
    pub fn sim_tags(&self) -> HashMap<String, HashMap<String, String>> {
        self.sim()
            .endpoints
            .modbus
            .iter()
            .flat_map(|e| e.devices.iter().map(|d| (d.id.clone(), d.tags.clone())))
            .collect()
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        if let Some(sim) = self.sim.take() {
            self.rt.block_on(sim.shutdown());
        }
    }
}

/// A running collector in a runtime of its own, every batch it sends kept in order.
pub struct Collector {
    pub rt: tokio::runtime::Runtime,
    pub running: Option<RunningCollector>,
    pub batches: Arc<Mutex<Vec<Vec<Point>>>>,
}

impl Collector {
    pub fn start(config: ModbusConfig, sim: &Sim) -> Collector {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let collector =
            ModbusCollector::new(config, &sim.site, &sim.profiles).expect("collector setup");
        let batches: Arc<Mutex<Vec<Vec<Point>>>> = Arc::default();
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<Point>>(1024);
        let keep = batches.clone();
        rt.spawn(async move {
            while let Some(b) = rx.recv().await {
                keep.lock().expect("lock").push(b);
            }
        });
        let running = {
            let _guard = rt.enter();
            collector.start(tx)
        };
        Collector {
            rt,
            running: Some(running),
            batches,
        }
    }

    pub fn running(&self) -> &RunningCollector {
        self.running.as_ref().expect("running")
    }

    /// A copy of every batch so far.
    pub fn batches(&self) -> Vec<Vec<Point>> {
        self.batches.lock().expect("lock").clone()
    }

    pub fn stop(&mut self) {
        if let Some(r) = self.running.take() {
            self.rt.block_on(r.shutdown());
        }
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A minimal HTTP/1.1 client for the simulator's control endpoint (no client crate in
/// the dependency tree): one request per connection, a JSON body if given.
pub fn http(method: &str, url: &str, json_body: Option<&str>) -> (u16, String) {
    use std::io::{Read, Write};
    let rest = url
        .strip_prefix("http://")
        .unwrap_or_else(|| panic!("not an http:// URL: {url}"));
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let path = if path.is_empty() { "/" } else { path };
    let mut stream =
        TcpStream::connect(authority).unwrap_or_else(|e| panic!("connect to {authority}: {e}"));
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("set read timeout");
    let body = json_body.unwrap_or("");
    let mut request =
        format!("{method} {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n");
    if json_body.is_some() {
        request.push_str("Content-Type: application/json\r\n");
    }
    request.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    stream
        .write_all(request.as_bytes())
        .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let mut response = Vec::new();
    stream
        .read_to_end(&mut response)
        .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let response =
        String::from_utf8(response).unwrap_or_else(|e| panic!("{method} {url}: not UTF-8: {e}"));
    let (head, body) = response
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("{method} {url}: no end of headers in {response:?}"));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{method} {url}: bad status line in {head:?}"));
    (status, body.to_string())
}

/// [`http`] with the reply parsed as JSON; panics unless the status is `expect_status`.
pub fn http_json(method: &str, url: &str, json_body: Option<&str>, expect_status: u16) -> Value {
    let (status, body) = http(method, url, json_body);
    assert_eq!(status, expect_status, "{method} {url}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{method} {url}: not JSON ({e}): {body}"))
}

/// Whether a collected number equals the simulator's reading: both come from the same
/// raw register value through `raw * scale + offset`, so they agree to rounding.
pub fn same_number(got: f64, truth: f64) -> bool {
    (got - truth).abs() <= 1e-9 * truth.abs().max(1.0)
}

/// A field's (data type, word order) pair, as the end-to-end tests count coverage:
/// one-register and bit types have no word order ("-").
pub fn type_and_order(f: &Field) -> (String, String) {
    let order = match f.data_type {
        DataType::Bool | DataType::String | DataType::Bit => "-".to_owned(),
        _ => f.order.to_string(),
    };
    (f.data_type.to_string(), order)
}

/// Every (data type, word order) pair the profiles use.
pub fn profile_coverage(profiles: &ProfileSet) -> BTreeSet<(String, String)> {
    profiles
        .iter()
        .flat_map(|p| p.fields.iter().map(type_and_order))
        .collect()
}
