//! The runtime: per endpoint a scheduler and `max_in_flight` workers, each worker
//! owning one TCP connection.
//!
//! The scheduler wakes at each device's next tick (aligned to the poll intervals; the
//! first tick after start reads every field) and queues a job: the device and the
//! groups of fields due, whose plan gives the requests. A device whose previous job has
//! not finished skips the tick (counted as `polls_skipped`) rather than piling up.
//! Workers take jobs one at a time and send the requests in order on their connection,
//! so an endpoint never has more than `max_in_flight` requests in flight. With one
//! request in flight (the default) the scheduler and the worker are one task, taking
//! ticks while the job runs; with more, the scheduler is a task of its own and the
//! workers share its queue.
//!
//! Failures, and what follows:
//!
//! * timeout: the connection is dropped (closed) at once, so a reply that comes late
//!   can never be read as the answer to a later request; the job's remaining requests
//!   are given up; the next connection waits for the backoff.
//! * connection refused, reset or not established in `connect_timeout`: backoff
//!   (`backoff_initial`, doubling per failure in a row, at most `backoff_max`).
//! * exception 6 (server device busy): the request is retried after
//!   `busy_retry_delay`, at most `busy_retries` times.
//! * any other exception: reported with device, unit id, function code and address;
//!   the job goes on with its next request.
//! * a response that does not match the request (transaction id, function code, length)
//!   or a value that does not decode: counted as a decode error; a mismatched frame also
//!   drops the connection, since the stream can no longer be trusted.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tidewatch_devices::Table;
use tidewatch_model::{FieldValue, Point};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Sleep;
use tokio_modbus::client::{Context, Reader};
use tokio_modbus::slave::SlaveContext;
use tokio_modbus::{ExceptionCode, Slave};

use super::config::ModbusConfig;
use super::decode::{decode_bits, decode_registers, Decoded};
use super::plan::ReadRequest;
use super::{DeviceTarget, EndpointTarget};
use crate::sink::{PointSink, SinkError};

/// Counters of one device, shared by the scheduler and the workers.
#[derive(Debug, Default)]
struct DeviceStats {
    polls: AtomicU64,
    polls_skipped: AtomicU64,
    requests: AtomicU64,
    values: AtomicU64,
    timeouts: AtomicU64,
    exceptions: AtomicU64,
    connect_errors: AtomicU64,
    decode_errors: AtomicU64,
    sentinels: AtomicU64,
    /// A job of this device is queued or running.
    pending: AtomicBool,
    up: AtomicBool,
    last_error: Mutex<Option<String>>,
}

/// A copy of a device's counters, for status lines and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceStatsSnapshot {
    pub device: String,
    pub address: String,
    pub unit_id: u8,
    pub up: bool,
    pub polls: u64,
    pub polls_skipped: u64,
    pub requests: u64,
    pub values: u64,
    pub timeouts: u64,
    pub exceptions: u64,
    pub connect_errors: u64,
    pub decode_errors: u64,
    pub sentinels: u64,
    pub last_error: Option<String>,
}

/// Settings every worker needs.
#[derive(Debug, Clone)]
struct Settings {
    request_timeout: Duration,
    connect_timeout: Duration,
    backoff_initial: Duration,
    backoff_max: Duration,
    busy_retry_delay: Duration,
    busy_retries: u32,
}

struct Endpoint {
    address: String,
    devices: Vec<DeviceTarget>,
    stats: Vec<Arc<DeviceStats>>,
    settings: Settings,
}

struct Job {
    device: usize,
    /// The groups due: the worker reads the plan from the device's schedule.
    mask: u32,
}

/// A running Modbus collector. Dropping it stops every task; [`RunningCollector::shutdown`]
/// also waits for them.
///
/// Tasks are stopped by aborting them, not by a stop signal each of them selects on: a
/// signal costs every worker a waiter registered and removed around each job and each
/// write, for an event that happens once.
pub struct RunningCollector {
    tasks: JoinSet<()>,
    endpoints: Vec<Arc<Endpoint>>,
}

impl RunningCollector {
    /// Stop polling and wait until every task has ended (a job in progress is abandoned
    /// at its next await; batches already sent stay sent).
    pub async fn shutdown(mut self) {
        self.tasks.abort_all();
        while self.tasks.join_next().await.is_some() {}
    }

    /// The counters of every device.
    pub fn stats(&self) -> Vec<DeviceStatsSnapshot> {
        let mut out = Vec::new();
        for e in &self.endpoints {
            for (d, s) in e.devices.iter().zip(&e.stats) {
                let n = |c: &AtomicU64| c.load(Ordering::Relaxed);
                out.push(DeviceStatsSnapshot {
                    device: d.id.clone(),
                    address: e.address.clone(),
                    unit_id: d.unit_id,
                    up: s.up.load(Ordering::Relaxed),
                    polls: n(&s.polls),
                    polls_skipped: n(&s.polls_skipped),
                    requests: n(&s.requests),
                    values: n(&s.values),
                    timeouts: n(&s.timeouts),
                    exceptions: n(&s.exceptions),
                    connect_errors: n(&s.connect_errors),
                    decode_errors: n(&s.decode_errors),
                    sentinels: n(&s.sentinels),
                    last_error: s.last_error.lock().map(|e| e.clone()).unwrap_or(None),
                });
            }
        }
        out
    }
}

impl Drop for RunningCollector {
    fn drop(&mut self) {
        self.tasks.abort_all();
    }
}

pub(super) fn start(
    config: ModbusConfig,
    endpoints: Vec<EndpointTarget>,
    sink: Arc<dyn PointSink>,
) -> RunningCollector {
    let settings = Settings {
        request_timeout: config.request_timeout,
        connect_timeout: config.connect_timeout,
        backoff_initial: config.backoff_initial,
        backoff_max: config.backoff_max,
        busy_retry_delay: config.busy_retry_delay,
        busy_retries: config.busy_retries,
    };
    let mut tasks = JoinSet::new();
    let mut shared = Vec::new();
    for e in endpoints {
        if e.devices.is_empty() {
            continue;
        }
        let endpoint = Arc::new(Endpoint {
            address: e.address,
            stats: e.devices.iter().map(|_| Arc::default()).collect(),
            devices: e.devices,
            settings: settings.clone(),
        });
        shared.push(endpoint.clone());
        if e.max_in_flight <= 1 {
            tasks.spawn(single_worker(endpoint, sink.clone()));
            continue;
        }
        let (jobs_tx, jobs_rx) = mpsc::channel::<Job>(endpoint.devices.len());
        let jobs_rx = Arc::new(tokio::sync::Mutex::new(jobs_rx));
        for _ in 0..e.max_in_flight {
            tasks.spawn(worker(endpoint.clone(), jobs_rx.clone(), sink.clone()));
        }
        tasks.spawn(scheduler(endpoint, jobs_tx));
    }
    RunningCollector {
        tasks,
        endpoints: shared,
    }
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn unix_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

/// The ticks of an endpoint's devices: when each is next due (Unix ms) with the mask of
/// its groups due then, and a timer set for the earliest.
struct Ticker {
    next: Vec<Option<(u64, u32)>>,
    /// The earliest tick, `None` when no device has one.
    due: Option<u64>,
    timer: Pin<Box<Sleep>>,
}

impl Ticker {
    fn new(endpoint: &Endpoint) -> Ticker {
        // The first tick reads every field, so slow fields (a serial number read hourly,
        // an energy counter read every minute) are known from the start.
        let now = unix_ms();
        let next = endpoint
            .devices
            .iter()
            .map(|d| {
                d.schedule
                    .next_after(now)
                    .map(|(t, _)| (t, d.schedule.full_mask()))
            })
            .collect();
        let mut ticker = Ticker {
            next,
            due: None,
            timer: Box::pin(tokio::time::sleep(Duration::ZERO)),
        };
        ticker.arm();
        ticker
    }

    /// Set the timer for the earliest tick (ticks follow the wall clock).
    fn arm(&mut self) {
        self.due = self.next.iter().flatten().map(|(t, _)| *t).min();
        if let Some(due) = self.due {
            let due_ns = i64::try_from(due.saturating_mul(1_000_000)).unwrap_or(i64::MAX);
            let wait =
                Duration::from_nanos(u64::try_from(due_ns.saturating_sub(unix_ns())).unwrap_or(0));
            self.timer
                .as_mut()
                .reset(tokio::time::Instant::now() + wait);
        }
    }

    /// Wait for the next tick and take it ([`Ticker::take`]); false if no device has one.
    async fn tick(&mut self, endpoint: &Endpoint, queue: &mut impl JobQueue) -> bool {
        let Some(due) = self.due else {
            return false;
        };
        self.timer.as_mut().await;
        self.take(endpoint, due, queue);
        true
    }

    /// Run `work` to completion, taking the ticks that come meanwhile.
    async fn alongside<F: Future>(
        &mut self,
        endpoint: &Endpoint,
        queue: &mut impl JobQueue,
        work: F,
    ) -> F::Output {
        tokio::pin!(work);
        loop {
            let Some(due) = self.due else {
                return work.await;
            };
            tokio::select! {
                biased;
                out = &mut work => return out,
                () = self.timer.as_mut() => self.take(endpoint, due, queue),
            }
        }
    }

    /// Count the polls due at tick `due` and hand their jobs to `queue`. A device whose
    /// previous job is queued or running, or whose job `queue` refuses, skips the tick.
    fn take(&mut self, endpoint: &Endpoint, due: u64, queue: &mut impl JobQueue) {
        let now = unix_ms().max(due);
        for (d, slot) in self.next.iter_mut().enumerate() {
            let Some((tick, mask)) = *slot else { continue };
            if tick > now {
                continue;
            }
            let device = &endpoint.devices[d];
            let stats = &endpoint.stats[d];
            stats.polls.fetch_add(1, Ordering::Relaxed);
            match device.schedule.requests(mask) {
                Some(_) if !stats.pending.swap(true, Ordering::AcqRel) => {
                    if !queue.offer(Job { device: d, mask }) {
                        stats.pending.store(false, Ordering::Release);
                        stats.polls_skipped.fetch_add(1, Ordering::Relaxed);
                    }
                }
                _ => {
                    stats.polls_skipped.fetch_add(1, Ordering::Relaxed);
                }
            }
            // Missed ticks (a stalled runtime) are skipped, not caught up.
            *slot = device.schedule.next_after(now.max(tick));
        }
        self.arm();
    }
}

/// Where a ticker puts the jobs due.
trait JobQueue {
    /// Queue `job`; false if it is refused (the device skips the tick).
    fn offer(&mut self, job: Job) -> bool;
}

/// The jobs shared by the workers of an endpoint with several.
impl JobQueue for mpsc::Sender<Job> {
    fn offer(&mut self, job: Job) -> bool {
        self.try_send(job).is_ok()
    }
}

/// The jobs of an endpoint with one worker. Never refuses: a device has at most one job
/// queued or running.
impl JobQueue for VecDeque<Job> {
    fn offer(&mut self, job: Job) -> bool {
        self.push_back(job);
        true
    }
}

/// The scheduler of an endpoint with several workers: it queues the jobs they share.
async fn scheduler(endpoint: Arc<Endpoint>, mut jobs: mpsc::Sender<Job>) {
    let mut ticker = Ticker::new(&endpoint);
    while ticker.tick(&endpoint, &mut jobs).await {}
}

/// One TCP connection and its reconnect state.
#[derive(Default)]
struct Connection {
    ctx: Option<Context>,
    /// Failures in a row (connect errors and timeouts).
    failures: u32,
    /// No connection attempt before this.
    retry_at: Option<Instant>,
}

impl Connection {
    fn fail(&mut self, settings: &Settings) {
        self.ctx = None;
        self.failures = self.failures.saturating_add(1);
        let factor = 1u32 << self.failures.saturating_sub(1).min(20);
        let wait = settings
            .backoff_initial
            .saturating_mul(factor)
            .min(settings.backoff_max);
        self.retry_at = Some(Instant::now() + wait);
    }
}

/// One of the workers of an endpoint with several: runs the jobs its scheduler queues.
async fn worker(
    endpoint: Arc<Endpoint>,
    jobs: Arc<tokio::sync::Mutex<mpsc::Receiver<Job>>>,
    sink: Arc<dyn PointSink>,
) {
    let mut conn = Connection::default();
    loop {
        let Some(job) = jobs.lock().await.recv().await else {
            return;
        };
        let points = run_job(&endpoint, &mut conn, &job).await;
        endpoint.stats[job.device]
            .pending
            .store(false, Ordering::Release);
        if !write(&endpoint, &*sink, points).await {
            return;
        }
    }
}

/// An endpoint with one request in flight (the default): its scheduler and its worker
/// in one task, which saves a task wake-up and a channel hand-off per poll. Ticks are
/// still taken on time while a job runs or its batch is written, so devices skip ticks
/// exactly as with a scheduler task of their own.
async fn single_worker(endpoint: Arc<Endpoint>, sink: Arc<dyn PointSink>) {
    let mut ticker = Ticker::new(&endpoint);
    let mut jobs = VecDeque::new();
    let mut conn = Connection::default();
    loop {
        let Some(job) = jobs.pop_front() else {
            if !ticker.tick(&endpoint, &mut jobs).await {
                return;
            }
            continue;
        };
        let points = ticker
            .alongside(&endpoint, &mut jobs, run_job(&endpoint, &mut conn, &job))
            .await;
        endpoint.stats[job.device]
            .pending
            .store(false, Ordering::Release);
        if !ticker
            .alongside(&endpoint, &mut jobs, write(&endpoint, &*sink, points))
            .await
        {
            return;
        }
    }
}

/// Hand a batch to the sink: false once the sink is closed (the worker ends). A sink
/// that is unavailable is retried; the device's next polls are skipped meanwhile, and
/// counted.
async fn write(endpoint: &Endpoint, sink: &dyn PointSink, points: Vec<Point>) -> bool {
    let mut pending = points;
    let mut wait = Duration::from_millis(100);
    loop {
        match sink.write(pending).await {
            Ok(()) => return true,
            Err(err) if err.error == SinkError::Closed => return false,
            Err(err) => {
                tracing::warn!(address = %endpoint.address, error = %err.error, retry_in = ?wait, "Modbus collector: sink refused a batch");
                pending = err.points;
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// What went wrong with a request, by the health counter it goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failure {
    Timeout,
    Exception,
    Connect,
    Decode,
}

impl Failure {
    fn as_str(self) -> &'static str {
        match self {
            Failure::Timeout => "timeout",
            Failure::Exception => "exception",
            Failure::Connect => "connect",
            Failure::Decode => "decode",
        }
    }
}

enum Reply {
    Words(Vec<u16>),
    Bits(Vec<bool>),
}

async fn run_job(endpoint: &Endpoint, conn: &mut Connection, job: &Job) -> Vec<Point> {
    let device = &endpoint.devices[job.device];
    let stats = &endpoint.stats[job.device];
    let settings = &endpoint.settings;
    let requests = device.schedule.requests(job.mask).unwrap_or_default();
    let mut points = Vec::with_capacity(requests.len() + 1);
    let mut failure: Option<(Failure, String)> = None;
    let mut latency_total = Duration::ZERO;
    let mut answered = 0u32;

    'requests: for req in requests {
        // Connect if needed (respecting the backoff).
        if conn.ctx.is_none() {
            if let Some(at) = conn.retry_at {
                if Instant::now() < at {
                    failure = Some((
                        Failure::Connect,
                        format!("{}: waiting to reconnect (backoff)", endpoint.address),
                    ));
                    break;
                }
            }
            match tokio::time::timeout(
                settings.connect_timeout,
                tokio::net::TcpStream::connect(endpoint.address.as_str()),
            )
            .await
            {
                Ok(Ok(stream)) => {
                    let _ = stream.set_nodelay(true);
                    conn.ctx = Some(tokio_modbus::client::tcp::attach_slave(
                        stream,
                        Slave(device.unit_id),
                    ));
                }
                Ok(Err(err)) => {
                    conn.fail(settings);
                    stats.connect_errors.fetch_add(1, Ordering::Relaxed);
                    failure = Some((
                        Failure::Connect,
                        format!("cannot connect to {}: {err}", endpoint.address),
                    ));
                    break;
                }
                Err(_) => {
                    conn.fail(settings);
                    stats.connect_errors.fetch_add(1, Ordering::Relaxed);
                    failure = Some((
                        Failure::Connect,
                        format!(
                            "cannot connect to {} within {:?}",
                            endpoint.address, settings.connect_timeout
                        ),
                    ));
                    break;
                }
            }
        }
        let Some(ctx) = conn.ctx.as_mut() else {
            break;
        };
        ctx.set_slave(Slave(device.unit_id));

        let mut busy_retries = 0;
        let reply = loop {
            stats.requests.fetch_add(1, Ordering::Relaxed);
            let sent = tokio::time::Instant::now();
            let call = async {
                match req.table {
                    Table::Coil => ctx
                        .read_coils(req.address, req.count)
                        .await
                        .map(|r| r.map(Reply::Bits)),
                    Table::DiscreteInput => ctx
                        .read_discrete_inputs(req.address, req.count)
                        .await
                        .map(|r| r.map(Reply::Bits)),
                    Table::Holding => ctx
                        .read_holding_registers(req.address, req.count)
                        .await
                        .map(|r| r.map(Reply::Words)),
                    Table::Input => ctx
                        .read_input_registers(req.address, req.count)
                        .await
                        .map(|r| r.map(Reply::Words)),
                }
            };
            // The deadline from `sent`: one clock read less per request than `timeout`.
            match tokio::time::timeout_at(sent + settings.request_timeout, call).await {
                Err(_) => {
                    // Close now: whatever this connection receives later is stale.
                    conn.fail(settings);
                    stats.timeouts.fetch_add(1, Ordering::Relaxed);
                    failure = Some((
                        Failure::Timeout,
                        format!(
                            "no reply within {:?} to function {} address {} count {}",
                            settings.request_timeout,
                            req.function_code(),
                            req.address,
                            req.count
                        ),
                    ));
                    break 'requests;
                }
                Ok(Err(tokio_modbus::Error::Transport(err))) => {
                    conn.fail(settings);
                    stats.connect_errors.fetch_add(1, Ordering::Relaxed);
                    failure = Some((
                        Failure::Connect,
                        format!("connection to {} failed: {err}", endpoint.address),
                    ));
                    break 'requests;
                }
                Ok(Err(tokio_modbus::Error::Protocol(err))) => {
                    // The frame does not answer this request: resynchronise by
                    // reconnecting (no backoff: the device is talking).
                    conn.ctx = None;
                    stats.decode_errors.fetch_add(1, Ordering::Relaxed);
                    failure = Some((
                        Failure::Decode,
                        format!(
                            "reply to function {} address {} does not match the request: {err}",
                            req.function_code(),
                            req.address
                        ),
                    ));
                    break 'requests;
                }
                Ok(Ok(Err(ExceptionCode::ServerDeviceBusy)))
                    if busy_retries < settings.busy_retries =>
                {
                    busy_retries += 1;
                    tokio::time::sleep(settings.busy_retry_delay).await;
                    continue;
                }
                Ok(Ok(Err(code))) => {
                    conn.failures = 0;
                    conn.retry_at = None;
                    stats.exceptions.fetch_add(1, Ordering::Relaxed);
                    failure = Some((
                        Failure::Exception,
                        format!(
                            "exception {} ({code}) to function {} address {} count {}",
                            u8::from(code),
                            req.function_code(),
                            req.address,
                            req.count
                        ),
                    ));
                    continue 'requests;
                }
                Ok(Ok(Ok(reply))) => {
                    conn.failures = 0;
                    conn.retry_at = None;
                    latency_total += sent.elapsed();
                    answered += 1;
                    break reply;
                }
            }
        };
        let arrived_ns = unix_ns();
        if let Some(p) = decode_reply(device, stats, req, &reply, arrived_ns, &mut failure) {
            points.push(p);
        }
    }

    let up = failure.is_none();
    let was_up = stats.up.swap(up, Ordering::Relaxed);
    // Up and still up: no error to record or clear (a poll that is up cleared it).
    if !(was_up && up) {
        report(endpoint, device, stats, failure.as_ref());
    }

    let s = |c: &AtomicU64| {
        FieldValue::Integer(i64::try_from(c.load(Ordering::Relaxed)).unwrap_or(i64::MAX))
    };
    let mut health = Point::in_series(device.health.clone(), unix_ns());
    health
        .reserve_fields(HEALTH_FIELDS)
        .add_field("up", FieldValue::Integer(i64::from(up)));
    if answered > 0 {
        health.add_field(
            "latency_ms",
            latency_total.as_secs_f64() * 1000.0 / f64::from(answered),
        );
    }
    health
        .add_field("requests", s(&stats.requests))
        .add_field("values", s(&stats.values))
        .add_field("errors_timeout", s(&stats.timeouts))
        .add_field("errors_exception", s(&stats.exceptions))
        .add_field("errors_connect", s(&stats.connect_errors))
        .add_field("errors_decode", s(&stats.decode_errors))
        .add_field("sentinel", s(&stats.sentinels))
        .add_field("polls_skipped", s(&stats.polls_skipped));
    points.push(health);
    points
}

/// Fields of a health point: `up`, `latency_ms` (when a request was answered) and the
/// eight counters.
const HEALTH_FIELDS: usize = 10;

/// Decode one answered request into a point of the device (none if nothing in it is
/// available).
fn decode_reply(
    device: &DeviceTarget,
    stats: &DeviceStats,
    req: &ReadRequest,
    reply: &Reply,
    arrived_ns: i64,
    failure: &mut Option<(Failure, String)>,
) -> Option<Point> {
    let got = match reply {
        Reply::Words(w) => w.len(),
        Reply::Bits(b) => b.len(),
    };
    // Registers must come back exactly as asked; bits come in whole bytes, so at least.
    let length_ok = match reply {
        Reply::Words(_) => got == usize::from(req.count),
        Reply::Bits(_) => got >= usize::from(req.count),
    };
    if !length_ok {
        stats.decode_errors.fetch_add(1, Ordering::Relaxed);
        *failure = Some((
            Failure::Decode,
            format!(
                "function {} address {}: asked for {} values, got {got}",
                req.function_code(),
                req.address,
                req.count
            ),
        ));
        return None;
    }
    let mut point = Point::in_series(device.series.clone(), arrived_ns);
    point.reserve_fields(req.fields.len());
    // Counted here and added once: an atomic add per field costs more than decoding it.
    let (mut values, mut sentinels, mut errors) = (0, 0, 0);
    for &i in &req.fields {
        let (Some(field), Some(key)) = (device.profile.fields.get(i), device.field_keys.get(i))
        else {
            continue;
        };
        let offset = usize::from(field.address.saturating_sub(req.address));
        let decoded = match reply {
            Reply::Words(w) => decode_registers(field, w.get(offset..).unwrap_or(&[])),
            Reply::Bits(b) => decode_bits(field, b.get(offset..).unwrap_or(&[])),
        };
        match decoded {
            Ok(Decoded::Number(v)) => {
                values += 1;
                point.add_field(key, v);
            }
            Ok(Decoded::Text(t)) => {
                values += 1;
                point.add_field(key, FieldValue::String(t));
            }
            Ok(Decoded::NotAvailable) => sentinels += 1,
            Err(err) => {
                errors += 1;
                *failure = Some((Failure::Decode, err.to_string()));
            }
        }
    }
    for (counter, n) in [
        (&stats.values, values),
        (&stats.sentinels, sentinels),
        (&stats.decode_errors, errors),
    ] {
        if n > 0 {
            counter.fetch_add(n, Ordering::Relaxed);
        }
    }
    (!point.fields().is_empty()).then_some(point)
}

/// Log a device's failure once when it starts or changes, and its recovery once.
fn report(
    endpoint: &Endpoint,
    device: &DeviceTarget,
    stats: &DeviceStats,
    failure: Option<&(Failure, String)>,
) {
    let Ok(mut last) = stats.last_error.lock() else {
        return;
    };
    match failure {
        Some((kind, message)) => {
            let changed = last.as_deref().map(|l| l.split(':').next()) != Some(Some(kind.as_str()));
            if changed {
                tracing::warn!(
                    device = %device.id,
                    address = %endpoint.address,
                    unit = device.unit_id,
                    error = kind.as_str(),
                    "Modbus device: {message}"
                );
            } else {
                tracing::debug!(device = %device.id, unit = device.unit_id, "Modbus device: {message}");
            }
            *last = Some(format!("{}: {message}", kind.as_str()));
        }
        None => {
            if last.take().is_some() {
                tracing::info!(device = %device.id, address = %endpoint.address, unit = device.unit_id, "Modbus device answers again");
            }
        }
    }
}
