//! Property tests: what arrives from a broker is outside input, so no payload may
//! panic the decoder, and a payload the decoder accepts gives points that can be
//! stored (they encode to line protocol, the form both stores take).
//!
//! Payloads are drawn three ways: arbitrary bytes; text from an alphabet of the
//! characters that matter to JSON, line protocol and numbers; and valid payloads with
//! a few characters replaced, inserted or deleted, which reach deeper into the
//! parsers than random text does.

use proptest::prelude::*;
use tidewatch_collectors::mqtt::{MalformedKind, MqttConfig, Subscription};
use tidewatch_model::line_protocol::encode;
use tidewatch_model::Point;

/// One subscription of each payload format, as a user would configure it.
const SUBSCRIPTIONS: &[(&str, &str)] = &[
    (
        "json",
        r#"topic = "dc/{centre}/{zone}/{rack}/inlet"
           format = "json"
           measurement = "rack_inlet"
           fields = { temperature_c = "env.temp", humidity_pct = "env.rh", first = "v.0" }
           timestamp_path = "ts"
           timestamp_format = "unix_ms"
           tags = { sensor = "{centre}-{zone}-{rack}-inlet" }"#,
    ),
    (
        "json_rfc3339",
        r#"topic = "dc/{centre}/{zone}/{rack}/inlet"
           format = "json"
           measurement = "rack_inlet"
           fields = { temperature_c = "t" }
           timestamp_path = "at"
           timestamp_format = "rfc3339""#,
    ),
    (
        "number",
        r#"topic = "dc/{centre}/{zone}/{rack}/inlet"
           format = "number"
           measurement = "leak"
           field = "wet""#,
    ),
    (
        "line_protocol",
        r#"topic = "dc/{centre}/{zone}/{rack}/inlet"
           format = "line_protocol"
           precision = "ms"
           tags = { rack = "{rack}" }"#,
    ),
];

/// Valid payloads of the formats above, the seeds of the mutations.
const VALID: &[&str] = &[
    r#"{"ts": 1700000000123, "env": {"temp": 24.5, "rh": 41}, "v": [true, 2]}"#,
    r#"{"t": 23.25, "at": "2026-01-01T08:00:00+08:00"}"#,
    "0.5",
    " -1.25e2\n",
    "rack_inlet,sensor=r07 temperature_c=24.5,humidity_pct=41i 1700000000123",
    "leak,zone=mm01 wet=true,state=\"dry\" 1700000000123\nleak,zone=mm02 wet=f",
    "m,a\\ b=c\\,d x=1u,y=-2i,z=1e3",
];

fn subscriptions() -> Vec<(&'static str, Subscription)> {
    SUBSCRIPTIONS
        .iter()
        .map(|(name, body)| {
            let config = MqttConfig::from_toml_str(&format!(
                "broker = \"127.0.0.1:1883\"\nclient_id = \"fuzz\"\n[[subscription]]\n{body}"
            ))
            .unwrap_or_else(|e| panic!("subscription {name}: {e}"));
            let sub = Subscription::compile(&config.subscriptions[0])
                .unwrap_or_else(|e| panic!("subscription {name}: {e}"));
            (*name, sub)
        })
        .collect()
}

/// Characters that matter to the three formats, drawn often.
const SPECIAL: &[char] = &[
    '{', '}', '[', ']', '"', ':', ',', ' ', '=', '\\', '\n', '\r', '\t', '#', '.', '-', '+', 'e',
    'E', 'i', 'u', 't', 'f', 'n', 'T', 'Z', '0', '1', '9', '\0', 'é', '温', '\u{feff}',
];

fn special_text() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![
            4 => prop::sample::select(SPECIAL),
            1 => any::<char>(),
            2 => prop::char::range('a', 'z'),
        ],
        0..80,
    )
    .prop_map(|chars| chars.into_iter().collect::<String>().into_bytes())
}

/// One edit of a payload, at a position taken modulo its length.
#[derive(Debug, Clone)]
enum Edit {
    Replace(usize, u8),
    Insert(usize, u8),
    Delete(usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    let byte = prop_oneof![
        3 => prop::sample::select(SPECIAL).prop_map(|c| {
            let mut buf = [0u8; 4];
            c.encode_utf8(&mut buf).as_bytes()[0]
        }),
        1 => any::<u8>(),
    ];
    prop_oneof![
        (any::<usize>(), byte.clone()).prop_map(|(i, b)| Edit::Replace(i, b)),
        (any::<usize>(), byte).prop_map(|(i, b)| Edit::Insert(i, b)),
        any::<usize>().prop_map(Edit::Delete),
    ]
}

fn mutated_valid() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::sample::select(VALID),
        prop::collection::vec(edit(), 1..4),
    )
        .prop_map(|(seed, edits)| {
            let mut bytes = seed.as_bytes().to_vec();
            for e in edits {
                let len = bytes.len();
                match e {
                    Edit::Replace(i, b) if len > 0 => bytes[i % len] = b,
                    Edit::Insert(i, b) => bytes.insert(i % (len + 1), b),
                    Edit::Delete(i) if len > 0 => {
                        bytes.remove(i % len);
                    }
                    _ => {}
                }
            }
            bytes
        })
}

fn payload() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        1 => prop::collection::vec(any::<u8>(), 0..120),
        2 => special_text(),
        3 => mutated_valid(),
    ]
}

/// A topic level (the rack) from the broker: any text without a `/`, since a
/// publisher's topic is outside input too.
fn rack_level() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => Just("r07".to_owned()),
        1 => special_text().prop_map(|b| String::from_utf8_lossy(&b).replace('/', "")),
    ]
}

/// Decode `payload` on `topic` with every subscription; a point accepted must encode.
fn check_payload(
    subs: &[(&str, Subscription)],
    topic: &str,
    payload: &[u8],
) -> Result<(), TestCaseError> {
    for (name, sub) in subs {
        // An empty level captures nothing: the topic is malformed before decoding.
        let Some(captures) = sub.template.matches(topic) else {
            prop_assert!(topic.contains("//"), "{topic:?} should match");
            continue;
        };
        let mut out: Vec<Point> = Vec::new();
        match sub.decode(&captures, payload, 1_700_000_000_000_000_000, &mut out) {
            Ok(()) => {
                for point in &out {
                    let mut line = Vec::new();
                    if let Err(e) = encode(point, &mut line) {
                        return Err(TestCaseError::fail(format!(
                            "{name}: payload {:?} was accepted as {point:?}, which cannot be stored: {e}",
                            String::from_utf8_lossy(payload)
                        )));
                    }
                }
            }
            Err(m) => {
                // A rejected payload leaves nothing behind and says why.
                prop_assert!(
                    out.is_empty(),
                    "{name}: rejected ({m}) but left {} points",
                    out.len()
                );
                prop_assert!(
                    !m.message.is_empty(),
                    "{name}: {:?} without a message",
                    m.kind
                );
                prop_assert_ne!(m.kind, MalformedKind::Topic);
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    #[test]
    fn no_payload_panics_the_decoder_and_accepted_points_can_be_stored(
        rack in rack_level(),
        payload in payload(),
    ) {
        let subs = subscriptions();
        check_payload(&subs, &format!("dc/dc2/mm01/{rack}/inlet"), &payload)?;
    }
}

/// The seeds themselves decode (so the mutations start from payloads that reach the
/// end of each parser), each by the subscription of its format.
#[test]
fn the_valid_seeds_decode() {
    let subs = subscriptions();
    let by_name = |n: &str| &subs.iter().find(|(name, _)| *name == n).unwrap().1;
    let topic = "dc/dc2/mm01/r07/inlet";
    for (format, seed, points) in [
        ("json", VALID[0], 1),
        ("json_rfc3339", VALID[1], 1),
        ("number", VALID[2], 1),
        ("number", VALID[3], 1),
        ("line_protocol", VALID[4], 1),
        ("line_protocol", VALID[5], 2),
        ("line_protocol", VALID[6], 1),
    ] {
        let sub = by_name(format);
        let captures = sub.template.matches(topic).unwrap();
        let mut out = Vec::new();
        sub.decode(&captures, seed.as_bytes(), 0, &mut out)
            .unwrap_or_else(|e| panic!("{format} {seed:?}: {e}"));
        assert_eq!(out.len(), points, "{format} {seed:?}");
    }
}
