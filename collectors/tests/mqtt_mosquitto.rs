//! The MQTT collector against a real Mosquitto started by the test (free loopback
//! port, temp folder, persistence on): known payloads of every format become the
//! expected points; a broker restart mid-stream loses no QoS 1 message; 10,000
//! malformed messages interleaved with good ones are counted per topic while every
//! good one is stored; and a message whose points the sink did not accept is never
//! acknowledged, so the broker delivers it again to the next run of the collector.

mod mqtt_support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use mqtt_support::{
    config, publish_burst, publish_confirmed, Collector, Message, Mode, Mosquitto, TestSink,
};
use tidewatch_collectors::mqtt::{HEALTH_MEASUREMENT, MALFORMED_MEASUREMENT};
use tidewatch_model::FieldValue;

fn msg(topic: &str, payload: impl Into<Vec<u8>>) -> Message {
    Message {
        topic: topic.to_owned(),
        payload: payload.into(),
    }
}

/// One subscription of plain numbers on `seq/{stream}`: measurement `seq`, field `n`.
const SEQ: &str = r#"
    [[subscription]]
    topic = "seq/{stream}"
    format = "number"
    measurement = "seq"
    field = "n"
"#;

/// Every payload format, through the broker: the points are exactly what the payloads
/// and the templates say.
#[test]
fn known_payloads_of_every_format_become_the_expected_points() {
    let broker = Mosquitto::start();
    let c = Collector::start(
        config(
            &broker.address(),
            "tw-formats",
            "",
            r#"
            [[subscription]]
            topic = "dc/{centre}/{zone}/{rack}/inlet"
            format = "json"
            measurement = "rack_inlet"
            fields = { temperature_c = "env.temp", humidity_pct = "env.rh" }
            timestamp_path = "time"
            timestamp_format = "rfc3339"
            tags = { sensor = "{centre}-{zone}-{rack}-inlet" }

            [[subscription]]
            topic = "dc/{centre}/{zone}/leak/{_place}"
            format = "number"
            measurement = "leak"
            field = "wet"
            tags = { sensor = "{centre}-{zone}-leak-{_place}" }

            [[subscription]]
            topic = "dc/{centre}/{zone}/dewpoint"
            format = "line_protocol"

            [[subscription]]
            topic = "meters/{meter}"
            format = "json"
            measurement = "meter"
            fields = { kw = "p" }
            timestamp_path = "ts"
            timestamp_format = "unix_s"
            qos = 0
            "#,
        ),
        TestSink::new(Mode::Accept),
    );
    c.wait_subscribed();
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64;
    publish_confirmed(
        broker.port,
        "tw-formats-pub",
        &[
            msg(
                "dc/dc2/mm03/r07/inlet",
                r#"{"time": "2024-05-01T12:00:00.250+08:00", "env": {"temp": 24.125, "rh": 41.5}}"#,
            ),
            msg("dc/dc2/mm03/leak/cdu", "1"),
            msg(
                "dc/dc2/mm03/dewpoint",
                "dew_point,sensor=dc2-mm03-dewpoint,centre=dc2,zone=mm03 dew_point_c=11.375 1714536000000000000",
            ),
            msg("meters/m1", r#"{"ts": 1714536000.5, "p": 12}"#),
        ],
        Duration::ZERO,
    );
    c.wait_for(Duration::from_secs(10), "4 points stored", |s| {
        s.points == 4
    });
    let points = c.sink.points();
    let by_m: BTreeMap<&str, _> = points.iter().map(|p| (p.measurement(), p)).collect();
    let tags = |m: &str| -> Vec<(String, String)> { by_m[m].tags().to_vec() };
    let t = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };

    let inlet = by_m["rack_inlet"];
    assert_eq!(inlet.timestamp_ns(), 1_714_536_000_250_000_000);
    assert_eq!(
        tags("rack_inlet"),
        t(&[
            ("centre", "dc2"),
            ("rack", "r07"),
            ("sensor", "dc2-mm03-r07-inlet"),
            ("zone", "mm03")
        ])
    );
    assert_eq!(
        inlet.fields(),
        &[
            ("humidity_pct".into(), FieldValue::Float(41.5)),
            ("temperature_c".into(), FieldValue::Float(24.125)),
        ]
    );

    let leak = by_m["leak"];
    assert!(leak.timestamp_ns() >= before, "arrival time");
    assert_eq!(
        tags("leak"),
        t(&[
            ("centre", "dc2"),
            ("sensor", "dc2-mm03-leak-cdu"),
            ("zone", "mm03")
        ])
    );
    assert_eq!(leak.field_value("wet"), Some(&FieldValue::Float(1.0)));

    let dew = by_m["dew_point"];
    assert_eq!(dew.timestamp_ns(), 1_714_536_000_000_000_000);
    assert_eq!(
        tags("dew_point"),
        t(&[
            ("centre", "dc2"),
            ("sensor", "dc2-mm03-dewpoint"),
            ("zone", "mm03")
        ])
    );
    assert_eq!(
        dew.field_value("dew_point_c"),
        Some(&FieldValue::Float(11.375))
    );

    let meter = by_m["meter"];
    assert_eq!(meter.timestamp_ns(), 1_714_536_000_500_000_000);
    assert_eq!(tags("meter"), t(&[("meter", "m1")]));
    assert_eq!(meter.field_value("kw"), Some(&FieldValue::Float(12.0)));

    let s = c.stats();
    assert_eq!((s.messages, s.malformed, s.points), (4, 0, 4), "{s:#?}");
}

/// Mosquitto is stopped mid-stream and started again (its persistence file keeps the
/// collector's session): the collector is connected and subscribed again within 5 s
/// of the restart, and every number a separate client published (each acknowledged by
/// the broker before the next, retried across the restart) is stored.
#[test]
fn a_broker_restart_loses_no_qos1_message() {
    let mut broker = Mosquitto::start();
    let c = Collector::start(
        config(
            &broker.address(),
            "tw-restart",
            "backoff_initial = \"200ms\"",
            SEQ,
        ),
        TestSink::new(Mode::Accept),
    );
    c.wait_subscribed();
    const N: u64 = 3000;
    let messages: Vec<Message> = (0..N).map(|n| msg("seq/a", n.to_string())).collect();
    let port = broker.port;
    let publisher = std::thread::spawn(move || {
        publish_confirmed(port, "tw-restart-pub", &messages, Duration::from_millis(1))
    });

    // Mid-stream: some numbers stored, most not yet published.
    c.wait_for(
        Duration::from_secs(20),
        "500 messages before the restart",
        |s| s.points >= 500,
    );
    broker.stop();
    std::thread::sleep(Duration::from_secs(2));
    broker.restart();
    let restarted = Instant::now();
    let s = c.wait_for(
        Duration::from_secs(15),
        "connected and subscribed again after the restart",
        |s| s.connections >= 2 && s.subscribed_at.is_some_and(|t| t >= restarted),
    );
    let resubscribed = s.subscribed_at.expect("subscribed") - restarted;
    println!("subscribed again {resubscribed:?} after the broker's restart");
    assert!(
        resubscribed <= Duration::from_secs(5),
        "subscribed again only {resubscribed:?} after the broker's restart"
    );

    publisher.join().expect("publisher");
    let start = Instant::now();
    loop {
        let got = c.sink.numbers("seq", "n");
        if got.len() as u64 == N {
            break;
        }
        if start.elapsed() > Duration::from_secs(30) {
            let missing: Vec<u64> = (0..N).filter(|n| !got.contains(n)).take(20).collect();
            panic!(
                "{} of {N} numbers stored; missing (first 20): {missing:?}\n{:#?}\nbroker log:\n{}",
                got.len(),
                c.stats(),
                broker.log()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let s = c.stats();
    println!(
        "stored all {N}; {} messages received ({} redelivered), {} disconnects",
        s.messages, s.redelivered, s.disconnects
    );
    assert_eq!(s.disconnects, 1, "{s:#?}");
    assert_eq!(s.malformed, 0);
}

/// A broker that comes back without the session (no persistence, killed): the
/// collector sees `session_present = false`, subscribes again, and receives what is
/// published from then on.
#[test]
fn subscriptions_are_renewed_when_the_broker_lost_the_session() {
    let mut broker = Mosquitto::start_with(false);
    let c = Collector::start(
        config(
            &broker.address(),
            "tw-resubscribe",
            "backoff_initial = \"200ms\"",
            SEQ,
        ),
        TestSink::new(Mode::Accept),
    );
    c.wait_subscribed();
    publish_confirmed(
        broker.port,
        "tw-resub-pub",
        &[msg("seq/a", "1")],
        Duration::ZERO,
    );
    c.wait_for(Duration::from_secs(10), "first message", |s| s.points == 1);

    broker.kill();
    std::thread::sleep(Duration::from_secs(1));
    broker.restart();
    let restarted = Instant::now();
    let s = c.wait_for(Duration::from_secs(10), "subscribed again", |s| {
        s.subscribed_at.is_some_and(|t| t >= restarted)
    });
    let after = s.subscribed_at.expect("subscribed") - restarted;
    assert!(
        after <= Duration::from_secs(5),
        "subscribed again after {after:?}"
    );
    publish_confirmed(
        broker.port,
        "tw-resub-pub",
        &[msg("seq/a", "2")],
        Duration::ZERO,
    );
    c.wait_for(
        Duration::from_secs(10),
        "a message after the restart",
        |s| s.points == 2,
    );
    assert_eq!(c.sink.numbers("seq", "n"), BTreeSet::from([1, 2]));
}

/// 10,000 malformed messages of every kind, over seven topics, interleaved with 2,500
/// good ones of every format: every good one is stored, every bad one is counted
/// against its topic (in the stats and in the `mqtt_malformed` health points), and
/// the stream never stalls.
#[test]
fn ten_thousand_malformed_messages_are_counted_per_topic_and_never_block() {
    let broker = Mosquitto::start();
    let c = Collector::start(
        config(
            &broker.address(),
            "tw-malformed",
            "health_interval = \"1s\"",
            r#"
            [[subscription]]
            topic = "t/json/{dev}"
            format = "json"
            measurement = "good"
            fields = { n = "v" }
            timestamp_path = "ts"
            [[subscription]]
            topic = "t/num/{dev}"
            format = "number"
            measurement = "good"
            field = "n"
            [[subscription]]
            topic = "t/lp/{dev}"
            format = "line_protocol"
            [[subscription]]
            topic = "t/rack/r{rack}"
            format = "number"
            measurement = "good"
            field = "n"
            "#,
        ),
        TestSink::new(Mode::Accept),
    );
    c.wait_subscribed();

    let bad: [(&str, &[u8]); 8] = [
        ("t/json/bad-syntax", b"{\"ts\": 1, \"v\": "),
        ("t/json/bad-missing", b"{\"ts\": 1, \"w\": 2}"),
        ("t/json/bad-type", b"{\"ts\": 1, \"v\": \"warm\"}"),
        ("t/json/bad-ts", b"{\"ts\": \"noon\", \"v\": 1}"),
        ("t/num/bad", b"twenty"),
        ("t/num/bad-utf8", &[0xff, 0xfe, 0x31]),
        ("t/lp/bad", b"m,t=1 v= 12"),
        // Matches the broker filter t/rack/+ but not the template's `r` prefix.
        ("t/rack/x7", b"7"),
    ];
    let mut messages = Vec::new();
    let mut expected_bad: BTreeMap<String, u64> = BTreeMap::new();
    let mut good = BTreeSet::new();
    let (mut b, mut g) = (0u64, 0u64);
    while b < 10_000 {
        // Four bad, one good, round robin over the kinds and formats.
        for _ in 0..4 {
            let (topic, payload) = bad[(b % bad.len() as u64) as usize];
            messages.push(msg(topic, payload.to_vec()));
            *expected_bad.entry(topic.to_owned()).or_default() += 1;
            b += 1;
        }
        let payload = match g % 4 {
            0 => format!("{{\"ts\": {}, \"v\": {g}}}", 1_700_000_000_000u64 + g),
            1 => format!("good,src=lp n={g} {}", 1_700_000_000_000_000_000u64 + g),
            _ => g.to_string(),
        };
        let topic = ["t/json/ok", "t/lp/ok", "t/num/ok", "t/rack/r12"][(g % 4) as usize];
        messages.push(msg(topic, payload));
        good.insert(g);
        g += 1;
    }
    assert_eq!(expected_bad.values().sum::<u64>(), 10_000);
    let total = messages.len() as u64;
    let started = Instant::now();
    publish_burst(broker.port, "tw-malformed-pub", messages);
    let s = c.wait_for(Duration::from_secs(60), "every message handled", |s| {
        s.messages >= total && s.malformed + s.points >= total
    });
    println!(
        "{total} messages ({} malformed) handled in {:?}",
        s.malformed,
        started.elapsed()
    );
    assert_eq!(s.malformed, 10_000, "{s:#?}");
    assert_eq!(s.malformed_by_topic, expected_bad);
    assert_eq!(
        c.sink.numbers("good", "n"),
        good,
        "every good message stored"
    );
    assert_eq!(c.sink.of("good").len() as u64, g, "each once");
    c.wait_for(
        Duration::from_secs(10),
        "every message acknowledged, malformed ones too",
        |s| s.acks == total,
    );

    // The health points carry the same counts (bounded label set: one per topic).
    std::thread::sleep(Duration::from_millis(1500));
    let mut last: BTreeMap<String, i64> = BTreeMap::new();
    for p in c.sink.of(MALFORMED_MEASUREMENT) {
        if let Some(FieldValue::Integer(n)) = p.field_value("count") {
            last.insert(p.tag_value("topic").unwrap_or("").to_owned(), *n);
        }
    }
    let expected: BTreeMap<String, i64> = expected_bad
        .iter()
        .map(|(k, v)| (k.clone(), *v as i64))
        .collect();
    assert_eq!(last, expected);
    let health = c.sink.of(HEALTH_MEASUREMENT);
    let h = health.last().expect("health points");
    assert_eq!(
        h.field_value("malformed"),
        Some(&FieldValue::Integer(10_000))
    );
    assert_eq!(h.field_value("connected"), Some(&FieldValue::Integer(1)));
}

/// A sink that refuses (or holds) every batch: nothing is acknowledged. The collector
/// is then killed; the next run with the same client id is handed the unacknowledged
/// messages again by the broker (with the DUP flag) and stores every one.
#[test]
fn messages_are_acknowledged_only_after_the_sink_accepted_them() {
    let broker = Mosquitto::start();
    let cfg = || {
        config(
            &broker.address(),
            "tw-acks",
            "health_interval = \"0s\"",
            SEQ,
        )
    };
    const N: u64 = 50;
    let messages: Vec<Message> = (0..N).map(|n| msg("seq/a", n.to_string())).collect();

    // First run: the sink refuses every write.
    let first = Collector::start(cfg(), TestSink::new(Mode::Refuse));
    first.wait_subscribed();
    publish_burst(broker.port, "tw-acks-pub", messages.clone());
    let s = first.wait_for(
        Duration::from_secs(10),
        "messages received, writes refused",
        |s| s.messages >= 1 && s.sink_retries >= 2,
    );
    std::thread::sleep(Duration::from_millis(500));
    let s2 = first.stats();
    assert_eq!(
        s2.acks, 0,
        "nothing acknowledged while the sink refuses: {s2:#?}"
    );
    assert!(first.sink.points().is_empty());
    println!(
        "first run: {} messages received, {} refused writes, 0 acks",
        s2.messages, s2.sink_retries
    );
    let _ = s;
    first.kill();

    // Second run: a sink that holds every write forever: still no ack.
    let second = Collector::start(cfg(), TestSink::new(Mode::Hold));
    second.wait_for(
        Duration::from_secs(10),
        "redelivered to the second run",
        |s| s.redelivered >= 1,
    );
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(second.stats().acks, 0);
    second.kill();

    // Third run: the sink accepts; the broker redelivers what the first two runs
    // received and sends the rest.
    let third = Collector::start(cfg(), TestSink::new(Mode::Accept));
    let start = Instant::now();
    loop {
        let got = third.sink.numbers("seq", "n");
        if got.len() as u64 == N {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{} of {N} stored after the restart: {:#?}",
            got.len(),
            third.stats()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let s = third.stats();
    assert!(s.redelivered >= 1, "the broker redelivered: {s:#?}");
    println!(
        "third run: {} messages, {} redelivered, all {N} stored",
        s.messages, s.redelivered
    );
    third.wait_for(Duration::from_secs(5), "every message acknowledged", |s| {
        s.acks == s.messages
    });
}

/// A graceful shutdown acknowledges what was stored and disconnects; a new run with
/// the same client id gets nothing again (no duplicate) but what was published while
/// it was away (persistent session).
#[test]
fn messages_published_while_the_collector_is_away_are_delivered_on_return() {
    let broker = Mosquitto::start();
    let cfg = || config(&broker.address(), "tw-away", "", SEQ);
    let mut first = Collector::start(cfg(), TestSink::new(Mode::Accept));
    first.wait_subscribed();
    let batch = |r: std::ops::Range<u64>| -> Vec<Message> {
        r.map(|n| msg("seq/a", n.to_string())).collect()
    };
    publish_burst(broker.port, "tw-away-pub", batch(0..100));
    first.wait_for(Duration::from_secs(10), "100 stored", |s| s.points == 100);
    first.wait_for(Duration::from_secs(5), "100 acked", |s| s.acks == 100);
    first.stop();

    publish_burst(broker.port, "tw-away-pub", batch(100..200));
    let second = Collector::start(cfg(), TestSink::new(Mode::Accept));
    second.wait_for(Duration::from_secs(10), "the 100 queued while away", |s| {
        s.points == 100
    });
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        second.sink.numbers("seq", "n"),
        (100..200).collect::<BTreeSet<u64>>()
    );
    assert_eq!(second.stats().redelivered, 0);
}
