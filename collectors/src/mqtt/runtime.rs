//! The runtime: a connection task that owns rumqttc's event loop, and a processing
//! task that decodes messages, writes their points to the sink and asks for their
//! acknowledgement.
//!
//! ```text
//!  broker --PUBLISH--> connection task --(generation, arrival, message)--> processing task
//!                          ^                                                  | decode batch
//!                          |                                                  | sink.write(points).await (retried)
//!                          +------------(generation, message) acks <----------+ then ack every message of the batch, in order
//! ```
//!
//! * Manual acknowledgements: rumqttc does not acknowledge a QoS 1 message by itself;
//!   the processing task asks for the PUBACK only after the sink accepted the points
//!   of every message up to it (malformed ones are acknowledged in their place: they
//!   are counted, logged and dropped, never redelivered forever). PUBACKs leave in the
//!   order the messages came, as MQTT 3.1.1 requires.
//! * Connection generations: every connection gets a number. A PUBACK is sent only on
//!   the connection its message came on (the connection task checks the generation
//!   before handing the PUBACK to rumqttc); a message received on an earlier
//!   connection is redelivered by the broker on the new one (the session keeps it),
//!   stored again and acknowledged then. This keeps a stale PUBACK from acknowledging
//!   a *different* message to which the broker gave the same packet id since.
//! * rumqttc's `EventLoop::poll` is not cancel-safe, so it is never raced and dropped
//!   in a `select!`: one poll future lives across loop turns while acks are queued
//!   beside it.
//! * Subscriptions are sent after the first CONNACK, and again after every CONNACK
//!   whose `session_present` is false (the broker lost or never had the session).
//! * A lost or refused connection is retried after `backoff_initial`, doubling per
//!   failure in a row up to `backoff_max`.
//! * A sink that refuses a batch as unavailable is retried (same doubling backoff, at
//!   most 5 s apart) until it accepts or the collector stops; meanwhile nothing is
//!   acknowledged and the broker stops sending once its in-flight window is full, so
//!   the backlog stays in the broker's session. A closed sink stops the collector.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rumqttc::{AsyncClient, Event, EventLoop, Packet, Publish, QoS, SubscribeFilter};
use tidewatch_model::{FieldValue, Point};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use super::subscription::{Malformed, MalformedKind, Subscription};
use super::{MqttConfig, HEALTH_MEASUREMENT, MALFORMED_MEASUREMENT, OTHER_TOPICS};
use crate::sink::{PointSink, SinkError};

/// Capacity of the queue between the connection and processing tasks, in messages.
/// QoS 1 deliveries are bounded far below this by the broker's in-flight window
/// (Mosquitto: 20) since nothing is acknowledged before it is processed.
const QUEUE: usize = 10_000;

/// Counters shared by both tasks.
#[derive(Debug, Default)]
pub(super) struct Stats {
    connected: AtomicBool,
    connections: AtomicU64,
    disconnects: AtomicU64,
    connect_failures: AtomicU64,
    messages: AtomicU64,
    redelivered: AtomicU64,
    points: AtomicU64,
    malformed: AtomicU64,
    acks: AtomicU64,
    stale_acks: AtomicU64,
    sink_retries: AtomicU64,
    subscribe_failures: AtomicU64,
    /// When the subscriptions were last known to be in place: a SUBACK, or a CONNACK
    /// with the session (and so its subscriptions) present.
    subscribed_at: Mutex<Option<Instant>>,
    last_error: Mutex<Option<String>>,
    topics: Mutex<TopicTable>,
}

/// Malformed messages per topic, bounded.
#[derive(Debug, Default)]
struct TopicTable {
    by_topic: HashMap<String, TopicMalformed>,
}

#[derive(Debug, Default, Clone)]
struct TopicMalformed {
    count: u64,
    last_logged: Option<Instant>,
    /// Counted since the last log line.
    unlogged: u64,
}

/// A copy of the collector's counters, for status lines and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MqttStatsSnapshot {
    /// Connected to the broker now.
    pub connected: bool,
    /// Connections established (CONNACK accepted).
    pub connections: u64,
    /// Established connections lost.
    pub disconnects: u64,
    /// Connection attempts that failed (refused, unreachable, timed out).
    pub connect_failures: u64,
    /// Messages received.
    pub messages: u64,
    /// Messages received with the DUP flag: redeliveries of messages sent before
    /// and not acknowledged.
    pub redelivered: u64,
    /// Points accepted by the sink.
    pub points: u64,
    /// Messages dropped as malformed.
    pub malformed: u64,
    /// Malformed messages per topic (at most `max_tracked_topics` topics, the rest
    /// under `_other`).
    pub malformed_by_topic: std::collections::BTreeMap<String, u64>,
    /// PUBACKs handed to the client.
    pub acks: u64,
    /// PUBACKs not sent because their connection was gone (the broker redelivers).
    pub stale_acks: u64,
    /// Sink writes retried after the sink was unavailable.
    pub sink_retries: u64,
    /// Subscriptions the broker refused.
    pub subscribe_failures: u64,
    /// When the subscriptions were last confirmed (SUBACK, or CONNACK with the
    /// session present).
    pub subscribed_at: Option<Instant>,
    /// The last connection error: `broker: error`, with what to check for the usual
    /// set-up mistakes (a wrong `ca_file`, a host the certificate does not name, a
    /// missing client certificate, a refused login).
    pub last_error: Option<String>,
}

impl Stats {
    fn snapshot(&self) -> MqttStatsSnapshot {
        let n = |c: &AtomicU64| c.load(Ordering::Relaxed);
        MqttStatsSnapshot {
            connected: self.connected.load(Ordering::Relaxed),
            connections: n(&self.connections),
            disconnects: n(&self.disconnects),
            connect_failures: n(&self.connect_failures),
            messages: n(&self.messages),
            redelivered: n(&self.redelivered),
            points: n(&self.points),
            malformed: n(&self.malformed),
            malformed_by_topic: self
                .topics
                .lock()
                .map(|t| {
                    t.by_topic
                        .iter()
                        .map(|(k, v)| (k.clone(), v.count))
                        .collect()
                })
                .unwrap_or_default(),
            acks: n(&self.acks),
            stale_acks: n(&self.stale_acks),
            sink_retries: n(&self.sink_retries),
            subscribe_failures: n(&self.subscribe_failures),
            subscribed_at: self.subscribed_at.lock().map(|t| *t).unwrap_or(None),
            last_error: self.last_error.lock().map(|e| e.clone()).unwrap_or(None),
        }
    }
}

/// A message as the connection task hands it over.
struct Incoming {
    generation: u64,
    arrival_ns: i64,
    publish: Publish,
}

/// An acknowledgement request.
struct Ack {
    generation: u64,
    publish: Publish,
}

/// A running MQTT collector. Dropping it stops every task at once (messages not yet
/// acknowledged are redelivered to the next session); [`RunningMqttCollector::shutdown`]
/// finishes the batch in hand, sends its acknowledgements and disconnects cleanly.
pub struct RunningMqttCollector {
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
    stats: Arc<Stats>,
}

impl RunningMqttCollector {
    /// Stop: the batch being written is finished and acknowledged, messages not yet
    /// taken stay unacknowledged (the broker keeps them in the session), and the
    /// connection is closed with a DISCONNECT. Waits at most a few seconds for the
    /// broker.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        while self.tasks.join_next().await.is_some() {}
    }

    /// The collector's counters.
    pub fn stats(&self) -> MqttStatsSnapshot {
        self.stats.snapshot()
    }
}

impl Drop for RunningMqttCollector {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        self.tasks.abort_all();
    }
}

pub(super) fn start(
    config: MqttConfig,
    options: rumqttc::MqttOptions,
    network: rumqttc::NetworkOptions,
    subscriptions: Vec<Subscription>,
    sink: Arc<dyn PointSink>,
) -> RunningMqttCollector {
    let (stop, stop_rx) = watch::channel(false);
    let stats = Arc::new(Stats::default());
    // Room for every acknowledgement of a batch plus subscriptions and a disconnect:
    // the connection task hands requests over with `try_*` and must never wait on
    // a queue only it drains.
    let capacity = config.max_batch.saturating_mul(2).max(1024);
    let (client, mut eventloop) = AsyncClient::new(options, capacity);
    eventloop.set_network_options(network);
    let (msg_tx, msg_rx) = mpsc::channel(QUEUE);
    let (ack_tx, ack_rx) = mpsc::unbounded_channel();
    let subscriptions = Arc::new(subscriptions);
    let config = Arc::new(config);
    let mut tasks = JoinSet::new();
    tasks.spawn(connection(
        config.clone(),
        client,
        eventloop,
        subscriptions.clone(),
        msg_tx,
        ack_rx,
        stats.clone(),
        stop_rx.clone(),
    ));
    tasks.spawn(processing(
        config,
        subscriptions,
        sink,
        msg_rx,
        ack_tx,
        stats.clone(),
        stop_rx,
    ));
    RunningMqttCollector { stop, tasks, stats }
}

fn unix_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

fn qos(level: u8) -> QoS {
    if level == 0 {
        QoS::AtMostOnce
    } else {
        QoS::AtLeastOnce
    }
}

/// The connection task: polls the event loop (which also reconnects), subscribes,
/// passes messages on, and sends the PUBACKs the processing task asks for.
#[allow(clippy::too_many_arguments)]
async fn connection(
    config: Arc<MqttConfig>,
    client: AsyncClient,
    eventloop: EventLoop,
    subscriptions: Arc<Vec<Subscription>>,
    messages: mpsc::Sender<Incoming>,
    mut acks: mpsc::UnboundedReceiver<Ack>,
    stats: Arc<Stats>,
    mut stop: watch::Receiver<bool>,
) {
    let filters: Vec<SubscribeFilter> = {
        // One filter per distinct template filter, at the highest QoS asked for it.
        let mut by_filter: Vec<(String, u8)> = Vec::new();
        for s in subscriptions.iter() {
            match by_filter.iter_mut().find(|(f, _)| f == s.template.filter()) {
                Some((_, q)) => *q = (*q).max(s.qos),
                None => by_filter.push((s.template.filter().to_owned(), s.qos)),
            }
        }
        by_filter
            .into_iter()
            .map(|(f, q)| SubscribeFilter::new(f, qos(q)))
            .collect()
    };
    let mut generation: u64 = 0;
    let mut connected = false;
    let mut ever_subscribed = false;
    let mut failures: u32 = 0;
    let mut stopping = false;
    let mut acks_open = true;
    // Once stopping: the processing task's last acks, then DISCONNECT, within this.
    let mut deadline: Option<tokio::time::Instant> = None;
    let mut disconnect_sent = false;
    // Acks asked for and not yet in rumqttc's request queue (it was full: only
    // polling the event loop drains it).
    let mut ready: std::collections::VecDeque<Ack> = std::collections::VecDeque::new();
    // The event loop is polled through one future at a time that is never dropped
    // half-way: rumqttc's `poll` is not cancel-safe (a PUBACK taken from its queue
    // and not yet written would be lost, and the broker's in-flight window would
    // shrink by one for the rest of the connection).
    let mut polling = Box::pin(poll_once(eventloop));

    loop {
        while let Some(ack) = ready.pop_front() {
            if !connected || ack.generation != generation {
                stats.stale_acks.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            match client.try_ack(&ack.publish) {
                Ok(()) => {
                    stats.acks.fetch_add(1, Ordering::Relaxed);
                }
                Err(rumqttc::ClientError::TryRequest(_)) => {
                    ready.push_front(ack);
                    break;
                }
                Err(_) => {
                    stats.stale_acks.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        if stopping {
            if !connected {
                break;
            }
            if !acks_open && ready.is_empty() && !disconnect_sent {
                // Every ack is in rumqttc's queue ahead of the DISCONNECT.
                disconnect_sent = client.try_disconnect().is_ok();
                if !disconnect_sent {
                    break;
                }
            }
        }
        let until_deadline = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            _ = stop.changed(), if !stopping => {
                stopping = true;
                deadline = Some(tokio::time::Instant::now() + Duration::from_secs(5));
            }
            _ = until_deadline => break,
            ack = acks.recv(), if acks_open && ready.is_empty() => match ack {
                Some(ack) => ready.push_back(ack),
                None => acks_open = false,
            },
            (eventloop, event) = &mut polling => {
                polling.as_mut().set(poll_once(eventloop));
                match event {
                Ok(Event::Incoming(Packet::ConnAck(connack))) => {
                    generation += 1;
                    connected = true;
                    failures = 0;
                    stats.connected.store(true, Ordering::Relaxed);
                    stats.connections.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(
                        broker = %config.broker,
                        client_id = %config.client_id,
                        session_present = connack.session_present,
                        "MQTT connected"
                    );
                    if !ever_subscribed || !connack.session_present {
                        if let Err(err) = client.try_subscribe_many(filters.clone()) {
                            tracing::error!(%err, "MQTT: cannot queue the subscriptions");
                        }
                        ever_subscribed = true;
                    } else if let Ok(mut at) = stats.subscribed_at.lock() {
                        *at = Some(Instant::now());
                    }
                }
                Ok(Event::Incoming(Packet::SubAck(suback))) => {
                    use rumqttc::SubscribeReasonCode;
                    let refused: Vec<&str> = suback
                        .return_codes
                        .iter()
                        .zip(&filters)
                        .filter(|(c, _)| matches!(c, SubscribeReasonCode::Failure))
                        .map(|(_, f)| f.path.as_str())
                        .collect();
                    if refused.is_empty() {
                        if let Ok(mut at) = stats.subscribed_at.lock() {
                            *at = Some(Instant::now());
                        }
                    } else {
                        stats
                            .subscribe_failures
                            .fetch_add(refused.len() as u64, Ordering::Relaxed);
                        tracing::error!(
                            broker = %config.broker,
                            filters = ?refused,
                            "MQTT broker refused subscriptions (check its ACL for this user)"
                        );
                    }
                }
                Ok(Event::Incoming(Packet::Publish(publish))) => {
                    stats.messages.fetch_add(1, Ordering::Relaxed);
                    if publish.dup {
                        stats.redelivered.fetch_add(1, Ordering::Relaxed);
                    }
                    let incoming = Incoming {
                        generation,
                        arrival_ns: unix_ns(),
                        publish,
                    };
                    if stopping {
                        // Not taken: left unacknowledged for the next session.
                        continue;
                    }
                    // Waits only if the processing task is 10,000 messages behind
                    // (QoS 0 floods); the broker then sees TCP back-pressure.
                    if messages.send(incoming).await.is_err() {
                        stopping = true;
                        deadline.get_or_insert(tokio::time::Instant::now() + Duration::from_secs(5));
                    }
                }
                Ok(Event::Outgoing(rumqttc::Outgoing::Disconnect)) => {
                    // Wait for the broker to close the connection: closing first
                    // could reset it before the broker read the last PUBACKs (a
                    // broker writing to a closed socket gets a reset and drops what it
                    // had not read yet), and those messages would come again.
                    let soon = tokio::time::Instant::now() + Duration::from_secs(2);
                    deadline = Some(deadline.map_or(soon, |d| d.min(soon)));
                }
                Ok(_) => {}
                Err(err) if disconnect_sent => {
                    // The broker closed the connection after our DISCONNECT: the
                    // normal end of a shutdown, not a lost connection.
                    tracing::debug!(broker = %config.broker, error = %err, "MQTT connection closed after DISCONNECT");
                    break;
                }
                Err(err) => {
                    // rumqttc dropped the connection; PUBACKs still queued for it were
                    // discarded with it, and acks for its messages are stale now.
                    generation += 1;
                    let message = describe_error(&config, &err);
                    if connected {
                        connected = false;
                        stats.connected.store(false, Ordering::Relaxed);
                        stats.disconnects.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(broker = %config.broker, error = %message, "MQTT connection lost; reconnecting");
                    } else {
                        stats.connect_failures.fetch_add(1, Ordering::Relaxed);
                        if failures == 0 {
                            tracing::warn!(broker = %config.broker, error = %message, "MQTT cannot connect; retrying");
                        } else {
                            tracing::debug!(broker = %config.broker, error = %message, "MQTT cannot connect");
                        }
                    }
                    if let Ok(mut last) = stats.last_error.lock() {
                        *last = Some(format!("{}: {message}", config.broker));
                    }
                    if stopping {
                        break;
                    }
                    failures = failures.saturating_add(1);
                    let factor = 1u32 << failures.saturating_sub(1).min(20);
                    let wait = config
                        .backoff_initial
                        .saturating_mul(factor)
                        .min(config.backoff_max);
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = stop.changed() => break,
                    }
                }
            }},
        }
    }
    stats.connected.store(false, Ordering::Relaxed);
}

/// A connection error as the log and [`MqttStatsSnapshot::last_error`] give it:
/// rumqttc's message and, for the usual set-up mistakes (a `ca_file` that did not sign
/// the broker's certificate, a host the certificate does not name, a client
/// certificate the broker wants or refuses, a refused login), what to check.
fn describe_error(config: &MqttConfig, err: &rumqttc::ConnectionError) -> String {
    match hint(config, err) {
        Some(hint) => format!("{err} ({hint})"),
        None => err.to_string(),
    }
}

fn hint(config: &MqttConfig, err: &rumqttc::ConnectionError) -> Option<String> {
    use rumqttc::{ConnectReturnCode, ConnectionError};
    match err {
        ConnectionError::ConnectionRefused(
            ConnectReturnCode::BadUserNamePassword | ConnectReturnCode::NotAuthorized,
        ) => Some(
            match (
                &config.username,
                &config.password_env,
                &config.password_file,
            ) {
                (None, _, _) => {
                    "the broker refused the connection: it may require a login (username and \
                 password_env or password_file)"
                        .to_owned()
                }
                (Some(user), Some(var), _) => format!(
                    "the broker refused the login of user \"{user}\": check the user name and \
                 the password in the environment variable {var} (password_env)"
                ),
                (Some(user), None, Some(path)) => format!(
                    "the broker refused the login of user \"{user}\": check the user name and \
                 the password in {} (password_file)",
                    path.display()
                ),
                (Some(user), None, None) => format!(
                    "the broker refused the login of user \"{user}\" without a password: set \
                 password_env or password_file"
                ),
            },
        ),
        _ => tls_hint(config, err),
    }
}

/// The rustls error inside a connection error, if any: rumqttc wraps it in I/O errors,
/// themselves wrapped as TLS errors (the handshake) or as MQTT state errors (an alert
/// read after the handshake, as a TLS 1.3 server refusing the client certificate
/// sends it).
#[cfg(feature = "tls")]
fn rustls_error(err: &rumqttc::ConnectionError) -> Option<&rustls::Error> {
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = next {
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        if let Some(tls) = e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            return Some(tls);
        }
        next = e.source();
    }
    None
}

#[cfg(feature = "tls")]
fn tls_hint(config: &MqttConfig, err: &rumqttc::ConnectionError) -> Option<String> {
    use rustls::{AlertDescription, CertificateError, Error};
    let tls = config.tls.as_ref()?;
    let ca = tls.ca_file.display();
    let host = super::split_broker(&config.broker).map_or("", |(h, _)| h);
    if let rumqttc::ConnectionError::Tls(rumqttc::TlsError::DNSName(_)) = err {
        return Some(format!(
            "\"{host}\" is neither a DNS name nor an IP address, so no certificate can name it"
        ));
    }
    if let rumqttc::ConnectionError::Tls(rumqttc::TlsError::Io(io)) = err {
        use std::io::ErrorKind;
        let closed = matches!(
            io.kind(),
            ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted | ErrorKind::UnexpectedEof
        );
        if closed && rustls_error(err).is_none() {
            return Some(
                "the broker closed the connection during the TLS handshake: is this port a \
                 TLS listener (usually 8883, not 1883)?"
                    .to_owned(),
            );
        }
    }
    Some(match rustls_error(err)? {
        Error::InvalidCertificate(e) => match e {
            CertificateError::UnknownIssuer | CertificateError::BadSignature => format!(
                "the broker's certificate is not signed by a certificate authority in \
                 ca_file {ca}"
            ),
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                format!(
                    "the broker's certificate does not name \"{host}\": set broker to a DNS \
                     name or IP address of its subjectAltName"
                )
            }
            CertificateError::Expired
            | CertificateError::ExpiredContext { .. }
            | CertificateError::NotValidYet
            | CertificateError::NotValidYetContext { .. } => {
                "the broker's certificate is expired or not yet valid (or a clock is wrong)"
                    .to_owned()
            }
            _ => format!("the broker's certificate was rejected (ca_file {ca})"),
        },
        Error::AlertReceived(
            AlertDescription::CertificateRequired | AlertDescription::HandshakeFailure,
        ) if tls.client_cert_file.is_none() => {
            "the broker may require a client certificate: set client_cert_file and \
             client_key_file"
                .to_owned()
        }
        Error::AlertReceived(
            AlertDescription::BadCertificate
            | AlertDescription::UnknownCA
            | AlertDescription::CertificateUnknown
            | AlertDescription::UnsupportedCertificate
            | AlertDescription::CertificateExpired
            | AlertDescription::CertificateRevoked
            | AlertDescription::AccessDenied,
        ) if tls.client_cert_file.is_some() => {
            "the broker refused the client certificate: is it signed by a certificate \
             authority the broker trusts, and still valid?"
                .to_owned()
        }
        Error::InvalidMessage(_) => {
            "the broker did not answer in TLS: is this port a TLS listener (usually 8883, \
             not 1883)?"
                .to_owned()
        }
        _ => return None,
    })
}

#[cfg(not(feature = "tls"))]
fn tls_hint(_config: &MqttConfig, _err: &rumqttc::ConnectionError) -> Option<String> {
    None
}

/// One poll of the event loop, owning it so the future can outlive a `select!`.
async fn poll_once(
    mut eventloop: EventLoop,
) -> (EventLoop, Result<Event, rumqttc::ConnectionError>) {
    let event = eventloop.poll().await;
    (eventloop, event)
}

/// The processing task: batches of messages -> points -> sink -> acks.
async fn processing(
    config: Arc<MqttConfig>,
    subscriptions: Arc<Vec<Subscription>>,
    sink: Arc<dyn PointSink>,
    mut messages: mpsc::Receiver<Incoming>,
    acks: mpsc::UnboundedSender<Ack>,
    stats: Arc<Stats>,
    mut stop: watch::Receiver<bool>,
) {
    let health_every = (!config.health_interval.is_zero()).then_some(config.health_interval);
    let mut health = tokio::time::interval(health_every.unwrap_or(Duration::from_secs(3600)));
    health.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    health.tick().await;
    let mut batch: Vec<Incoming> = Vec::with_capacity(config.max_batch);
    let mut points: Vec<Point> = Vec::new();
    loop {
        tokio::select! {
            biased;
            _ = stop.changed() => return,
            _ = health.tick(), if health_every.is_some() => {
                let points = health_points(&config, &stats);
                // Health is best effort: one attempt.
                if let Err(err) = sink.write(points).await {
                    if err.error == SinkError::Closed {
                        return;
                    }
                }
                continue;
            }
            n = messages.recv_many(&mut batch, config.max_batch) => {
                if n == 0 {
                    return;
                }
            }
        }
        for m in &batch {
            decode(&config, &subscriptions, &stats, m, &mut points);
        }
        if !points.is_empty() {
            let count = points.len() as u64;
            let mut pending = std::mem::take(&mut points);
            let mut wait = Duration::from_millis(100);
            loop {
                // A shutdown does not abandon a batch the sink is busy with; a
                // closed or refusing sink does not hold the shutdown up.
                match sink.write(pending).await {
                    Ok(()) => break,
                    Err(err) if err.error == SinkError::Closed => {
                        tracing::error!("MQTT collector: the sink is closed; stopping");
                        return;
                    }
                    Err(err) => {
                        stats.sink_retries.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(error = %err.error, retry_in = ?wait, "MQTT collector: sink refused a batch; messages stay unacknowledged");
                        pending = err.points;
                        tokio::select! {
                            _ = tokio::time::sleep(wait) => {}
                            _ = stop.changed() => return,
                        }
                        wait = (wait * 2).min(Duration::from_secs(5));
                    }
                }
            }
            stats.points.fetch_add(count, Ordering::Relaxed);
        }
        for m in batch.drain(..) {
            if m.publish.qos != QoS::AtMostOnce {
                let _ = acks.send(Ack {
                    generation: m.generation,
                    publish: m.publish,
                });
            }
        }
    }
}

/// Decode one message into `out`, or count and log it as malformed.
fn decode(
    config: &MqttConfig,
    subscriptions: &[Subscription],
    stats: &Stats,
    m: &Incoming,
    out: &mut Vec<Point>,
) {
    let topic = m.publish.topic.as_str();
    let result = subscriptions
        .iter()
        .find_map(|s| s.template.matches(topic).map(|c| (s, c)))
        .map_or_else(
            || {
                Err(Malformed {
                    kind: MalformedKind::Topic,
                    message: "no subscription's topic template matches".into(),
                })
            },
            |(s, captures)| s.decode(&captures, &m.publish.payload, m.arrival_ns, out),
        );
    if let Err(err) = result {
        malformed(config, stats, topic, &m.publish.payload, &err);
    }
}

/// Count a malformed message against its topic and log it, at most once per
/// `malformed_log_interval` per topic.
fn malformed(config: &MqttConfig, stats: &Stats, topic: &str, payload: &[u8], err: &Malformed) {
    stats.malformed.fetch_add(1, Ordering::Relaxed);
    let Ok(mut table) = stats.topics.lock() else {
        return;
    };
    let key = if table.by_topic.contains_key(topic)
        || table.by_topic.len() + 1 < config.max_tracked_topics
    {
        topic
    } else {
        OTHER_TOPICS
    };
    let entry = match table.by_topic.get_mut(key) {
        Some(e) => e,
        None => table.by_topic.entry(key.to_owned()).or_default(),
    };
    entry.count += 1;
    entry.unlogged += 1;
    let now = Instant::now();
    let due = entry
        .last_logged
        .is_none_or(|t| now.duration_since(t) >= config.malformed_log_interval);
    if due {
        tracing::warn!(
            topic,
            reason = err.kind.as_str(),
            count = entry.count,
            since_last_log = entry.unlogged,
            payload = %sample(payload, config.payload_sample_bytes),
            "MQTT malformed message dropped: {}",
            err.message
        );
        entry.last_logged = Some(now);
        entry.unlogged = 0;
    }
}

/// The start of a payload for a log line: valid UTF-8 shown as text (control
/// characters escaped), cut at `max` bytes.
fn sample(payload: &[u8], max: usize) -> String {
    let cut = &payload[..payload.len().min(max)];
    let text = String::from_utf8_lossy(cut);
    let mut out: String = text.escape_debug().collect();
    if payload.len() > max {
        out.push_str(&format!("... ({} bytes)", payload.len()));
    }
    out
}

/// The health points: one `mqtt_collector` point, and one `mqtt_malformed` point per
/// topic with malformed messages.
fn health_points(config: &MqttConfig, stats: &Stats) -> Vec<Point> {
    let s = stats.snapshot();
    let now = unix_ns();
    let int = |v: u64| FieldValue::Integer(i64::try_from(v).unwrap_or(i64::MAX));
    let mut out = vec![Point::new(HEALTH_MEASUREMENT, now)
        .tag("broker", config.broker.clone())
        .tag("client_id", config.client_id.clone())
        .field("connected", FieldValue::Integer(i64::from(s.connected)))
        .field("messages", int(s.messages))
        .field("points", int(s.points))
        .field("malformed", int(s.malformed))
        .field("redelivered", int(s.redelivered))
        .field("reconnects", int(s.disconnects))
        .field("connect_failures", int(s.connect_failures))
        .field("acks", int(s.acks))
        .field("sink_retries", int(s.sink_retries))
        .field("subscribe_failures", int(s.subscribe_failures))];
    for (topic, count) in s.malformed_by_topic {
        out.push(
            Point::new(MALFORMED_MEASUREMENT, now)
                .tag("broker", config.broker.clone())
                .tag("client_id", config.client_id.clone())
                .tag("topic", topic)
                .field("count", int(count)),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_cut_and_escaped() {
        assert_eq!(sample(b"{\"a\":1}", 100), "{\\\"a\\\":1}");
        assert_eq!(sample(b"abcdef", 3), "abc... (6 bytes)");
        assert_eq!(sample(&[0xff, b'\n'], 10), "\u{fffd}\\n");
    }

    #[test]
    fn refused_logins_say_what_to_check() {
        let refused = rumqttc::ConnectionError::ConnectionRefused(
            rumqttc::ConnectReturnCode::BadUserNamePassword,
        );
        let mut config = MqttConfig::new("h:1", "c");
        assert!(describe_error(&config, &refused).contains("may require a login"));
        config.username = Some("u".into());
        config.password_env = Some("MQTT_PW".into());
        let text = describe_error(&config, &refused);
        assert!(
            text.starts_with("Connection refused")
                && text.contains("user \"u\"")
                && text.contains("environment variable MQTT_PW"),
            "{text}"
        );
        let timeout = rumqttc::ConnectionError::NetworkTimeout;
        assert_eq!(describe_error(&config, &timeout), "Network timeout");
    }

    #[test]
    fn malformed_topics_are_bounded() {
        let mut config = MqttConfig::new("h:1", "c");
        config.max_tracked_topics = 3;
        let stats = Stats::default();
        let err = Malformed {
            kind: MalformedKind::Syntax,
            message: "x".into(),
        };
        for t in ["a", "b", "c", "d", "a"] {
            malformed(&config, &stats, t, b"", &err);
        }
        let s = stats.snapshot();
        assert_eq!(s.malformed, 5);
        let by: Vec<(&str, u64)> = s
            .malformed_by_topic
            .iter()
            .map(|(k, v)| (k.as_str(), *v))
            .collect();
        assert_eq!(by, [("_other", 2), ("a", 2), ("b", 1)]);
    }
}
