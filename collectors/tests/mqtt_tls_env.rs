//! The MQTT collector over TLS with its password from an environment variable
//! (`password_env`), against a real Mosquitto that requires the login (see
//! `tests/mqtt_tls.rs` for the other TLS cases). A test binary of its own with one
//! test: it sets the variable, and setting the environment while other threads of the
//! process may read it is a data race in the C library.

mod mqtt_support;

use std::collections::BTreeSet;
use std::time::Duration;

use mqtt_support::pki::{tls_broker, tls_table, PASSWORD, PASSWORD_LOGIN, USER};
use mqtt_support::{config, publish_confirmed, Collector, Message, Mode, TestSink};

const VAR: &str = "TIDEWATCH_TEST_MQTT_TLS_PASSWORD";

#[test]
fn tls_with_the_password_from_the_environment_delivers_qos1_messages() {
    // Before any thread of the test's own starts.
    std::env::set_var(VAR, PASSWORD);
    let (broker, pki) = tls_broker(false, PASSWORD_LOGIN);
    let mut c = Collector::start(
        config(
            &broker.address(),
            "tw-tls-env",
            &format!(
                "username = \"{USER}\"\npassword_env = \"{VAR}\"\n{}",
                tls_table(&pki.ca, None)
            ),
            r#"
            [[subscription]]
            topic = "seq/{stream}"
            format = "number"
            measurement = "seq"
            field = "n"
            "#,
        ),
        TestSink::new(Mode::Accept),
    );
    c.wait_for(Duration::from_secs(15), "connected and subscribed", |s| {
        s.subscribed_at.is_some()
    });
    const N: u64 = 100;
    let messages: Vec<Message> = (0..N)
        .map(|i| Message {
            topic: "seq/b".to_owned(),
            payload: i.to_string().into_bytes(),
        })
        .collect();
    publish_confirmed(
        broker.publish_port,
        "tw-tls-env-pub",
        &messages,
        Duration::ZERO,
    );
    let s = c.wait_for(
        Duration::from_secs(15),
        "every message stored and acknowledged",
        |s| s.points == N && s.acks == N,
    );
    assert_eq!((s.connections, s.connect_failures), (1, 0), "{s:#?}");
    assert_eq!(
        c.sink.numbers("seq", "n"),
        (0..N).collect::<BTreeSet<u64>>()
    );
    let log = broker.log();
    assert!(
        log.contains(&format!("as tw-tls-env (p2, c0, k30, u'{USER}')")),
        "broker log:\n{log}"
    );
    c.stop();
}
