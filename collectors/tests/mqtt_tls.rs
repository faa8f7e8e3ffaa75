//! The MQTT collector over TLS against a real Mosquitto started by the test, with
//! certificates made at run time (`mqtt_support::pki`): the broker's collector
//! listener takes TLS only and a login (or a client certificate), a second plain
//! listener serves the test's publisher.
//!
//! * TLS verified against the test CA, the password from a file: QoS 1 messages
//!   arrive as points and are acknowledged (the password from the environment:
//!   `tests/mqtt_tls_env.rs`, a process of its own since it sets a variable);
//! * a CA that did not sign the broker's certificate: nothing is delivered, the
//!   collector keeps retrying and reports the broker and the TLS cause;
//! * a wrong password: the broker's refusal, reported with the user and the password
//!   file, no panic, a clean shutdown;
//! * a broker that requires a client certificate: accepted with one (Mosquitto takes
//!   its CN as the user name), refused without;
//! * TLS towards a plain MQTT port: reported as such.

mod mqtt_support;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use mqtt_support::pki::{tls_broker, tls_table, PASSWORD, PASSWORD_LOGIN, USER};
use mqtt_support::{config, publish_confirmed, Collector, Message, Mode, Mosquitto, TestSink};

/// One subscription of plain numbers on `seq/{stream}`: measurement `seq`, field `n`.
const SEQ: &str = r#"
    [[subscription]]
    topic = "seq/{stream}"
    format = "number"
    measurement = "seq"
    field = "n"
"#;

/// A password file for the collector (its own, first line only), in a folder of the
/// test's.
fn collector_password_file(dir: &Path, password: &str) -> std::path::PathBuf {
    let path = dir.join("mqtt-password");
    std::fs::write(&path, format!("{password}\n")).expect("write the password file");
    path
}

fn numbers(n: u64) -> Vec<Message> {
    (0..n)
        .map(|i| Message {
            topic: "seq/a".to_owned(),
            payload: i.to_string().into_bytes(),
        })
        .collect()
}

/// Publish 0..n at QoS 1 on the broker's plain listener and check that the collector
/// stores each number and acknowledges each message.
fn publish_and_expect_all(broker: &Mosquitto, c: &Collector, n: u64) {
    c.wait_for(Duration::from_secs(15), "connected and subscribed", |s| {
        s.subscribed_at.is_some()
    });
    publish_confirmed(
        broker.publish_port,
        "tw-tls-pub",
        &numbers(n),
        Duration::ZERO,
    );
    let s = c.wait_for(
        Duration::from_secs(15),
        &format!("{n} points stored and acknowledged"),
        |s| s.points == n && s.acks == n,
    );
    assert_eq!(
        c.sink.numbers("seq", "n"),
        (0..n).collect::<BTreeSet<u64>>()
    );
    assert_eq!(
        (s.messages, s.malformed, s.connections, s.connect_failures),
        (n, 0, 1, 0),
        "{s:#?}\nbroker log:\n{}",
        broker.log()
    );
}

/// Wait until the collector failed to connect `n` times in a row without ever
/// connecting, and return its last error.
fn wait_for_failures(broker: &Mosquitto, c: &Collector, n: u64) -> String {
    let s = c.wait_for(
        Duration::from_secs(20),
        &format!("{n} failed connection attempts"),
        |s| s.connect_failures >= n,
    );
    assert_eq!(
        (s.connected, s.connections, s.messages, s.points),
        (false, 0, 0, 0),
        "{s:#?}\nbroker log:\n{}",
        broker.log()
    );
    let error = s.last_error.expect("a last error");
    eprintln!("last error: {error}");
    error
}

#[test]
fn tls_verified_against_the_ca_with_a_password_file_delivers_qos1_messages() {
    let (broker, pki) = tls_broker(false, PASSWORD_LOGIN);
    let secrets = tempfile::tempdir().expect("temp dir");
    let password_file = collector_password_file(secrets.path(), PASSWORD);
    let mut c = Collector::start(
        config(
            &broker.address(),
            "tw-tls-file",
            &format!(
                "username = \"{USER}\"\npassword_file = \"{}\"\n{}",
                password_file.display(),
                tls_table(&pki.ca, None)
            ),
            SEQ,
        ),
        TestSink::new(Mode::Accept),
    );
    publish_and_expect_all(&broker, &c, 200);
    // The broker saw the login (its listener takes nothing but TLS).
    let log = broker.log();
    assert!(
        log.contains(&format!("as tw-tls-file (p2, c0, k30, u'{USER}')")),
        "broker log:\n{log}"
    );
    c.stop();
    assert!(!c.sink.points().is_empty());
}

#[test]
fn a_ca_that_did_not_sign_the_broker_certificate_delivers_nothing_and_says_why() {
    let (broker, pki) = tls_broker(false, PASSWORD_LOGIN);
    let secrets = tempfile::tempdir().expect("temp dir");
    let password_file = collector_password_file(secrets.path(), PASSWORD);
    let mut c = Collector::start(
        config(
            &broker.address(),
            "tw-tls-wrong-ca",
            &format!(
                "username = \"{USER}\"\npassword_file = \"{}\"\nbackoff_initial = \"100ms\"\n\
                 backoff_max = \"200ms\"\n{}",
                password_file.display(),
                tls_table(&pki.other_ca, None)
            ),
            SEQ,
        ),
        TestSink::new(Mode::Accept),
    );
    // Messages published meanwhile never reach the sink.
    publish_confirmed(
        broker.publish_port,
        "tw-tls-pub",
        &numbers(20),
        Duration::ZERO,
    );
    let error = wait_for_failures(&broker, &c, 5);
    assert!(
        error.starts_with(&format!("{}: ", broker.address())),
        "names the broker: {error}"
    );
    assert!(error.contains("TLS"), "names TLS: {error}");
    assert!(error.contains("UnknownIssuer"), "the TLS cause: {error}");
    assert!(
        error.contains(&format!(
            "not signed by a certificate authority in ca_file {}",
            pki.other_ca.display()
        )),
        "what to check: {error}"
    );
    assert!(c.sink.points().is_empty());
    assert_eq!(c.stats().subscribed_at, None);
    c.stop();
}

#[test]
fn a_wrong_password_is_reported_with_the_user_and_the_file() {
    let (broker, pki) = tls_broker(false, PASSWORD_LOGIN);
    let secrets = tempfile::tempdir().expect("temp dir");
    let password_file = collector_password_file(secrets.path(), "not-the-password");
    let mut c = Collector::start(
        config(
            &broker.address(),
            "tw-tls-wrong-password",
            &format!(
                "username = \"{USER}\"\npassword_file = \"{}\"\nbackoff_initial = \"100ms\"\n\
                 backoff_max = \"200ms\"\n{}",
                password_file.display(),
                tls_table(&pki.ca, None)
            ),
            SEQ,
        ),
        TestSink::new(Mode::Accept),
    );
    let error = wait_for_failures(&broker, &c, 3);
    assert!(
        error.starts_with(&format!("{}: ", broker.address())),
        "names the broker: {error}"
    );
    assert!(
        error.contains("Connection refused") && error.contains(&format!("user \"{USER}\"")),
        "the refusal and the user: {error}"
    );
    assert!(
        error.contains(&password_file.display().to_string()),
        "the password file: {error}"
    );
    // The refusal happened after the TLS handshake: the broker logged the login.
    let log = broker.log();
    assert!(log.contains("not authorised"), "broker log:\n{log}");
    assert!(c.sink.points().is_empty());
    // Still running, and stops cleanly.
    c.stop();
}

/// Mosquitto verifies the client certificate against the test CA and takes its CN as
/// the user name (`use_identity_as_username`); no password.
const CERTIFICATE_LOGIN: &str = "allow_anonymous false\nuse_identity_as_username true\n";

#[test]
fn a_broker_that_requires_a_client_certificate_accepts_the_configured_one() {
    let (broker, pki) = tls_broker(true, CERTIFICATE_LOGIN);
    let mut c = Collector::start(
        config(
            &broker.address(),
            "tw-tls-client-cert",
            &tls_table(&pki.ca, Some(&pki)),
            SEQ,
        ),
        TestSink::new(Mode::Accept),
    );
    publish_and_expect_all(&broker, &c, 100);
    let log = broker.log();
    assert!(
        log.contains("as tw-tls-client-cert (p2, c0, k30, u'tidewatch-collector')"),
        "the certificate's CN as the user: broker log:\n{log}"
    );
    c.stop();
}

#[test]
fn a_broker_that_requires_a_client_certificate_refuses_a_collector_without_one() {
    let (broker, pki) = tls_broker(true, CERTIFICATE_LOGIN);
    let mut c = Collector::start(
        config(
            &broker.address(),
            "tw-tls-no-client-cert",
            &format!(
                "backoff_initial = \"100ms\"\nbackoff_max = \"200ms\"\n{}",
                tls_table(&pki.ca, None)
            ),
            SEQ,
        ),
        TestSink::new(Mode::Accept),
    );
    let error = wait_for_failures(&broker, &c, 3);
    assert!(
        error.starts_with(&format!("{}: ", broker.address())),
        "names the broker: {error}"
    );
    assert!(
        error.contains("client certificate"),
        "what to check: {error}"
    );
    c.stop();
}

/// The collector's TLS towards the broker's plain listener: Mosquitto reads the TLS
/// ClientHello as a bad MQTT packet and drops the connection.
#[test]
fn tls_towards_a_plain_listener_is_reported() {
    let (broker, pki) = tls_broker(false, PASSWORD_LOGIN);
    let mut c = Collector::start(
        config(
            &format!("127.0.0.1:{}", broker.publish_port),
            "tw-tls-plain-port",
            &format!(
                "backoff_initial = \"100ms\"\nbackoff_max = \"200ms\"\nconnect_timeout = \"1s\"\n{}",
                tls_table(&pki.ca, None)
            ),
            SEQ,
        ),
        TestSink::new(Mode::Accept),
    );
    let error = wait_for_failures(&broker, &c, 3);
    assert!(
        error.starts_with(&format!("127.0.0.1:{}: TLS: ", broker.publish_port)),
        "names the broker and TLS: {error}"
    );
    assert!(error.contains("is this port a TLS listener"), "{error}");
    c.stop();
}
