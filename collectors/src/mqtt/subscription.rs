//! A subscription compiled from its config, and the decoding of one message's payload
//! into points (JSON, line protocol or a plain number).
//!
//! Decoding never panics on what comes from the network: every way a payload can be
//! wrong is a [`Malformed`] with its [`MalformedKind`], counted and dropped by the
//! runtime.

use serde_json::Value;
use tidewatch_model::{line_protocol, FieldKey, FieldValue, Point};

use super::config::{PayloadFormat, Precision, SubscriptionConfig, TimestampFormat};
use super::topic::{Interpolated, TopicTemplate};

/// Why a message was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MalformedKind {
    /// No subscription's template matches the topic.
    Topic,
    /// The payload is not UTF-8 (line protocol, number) or not JSON.
    Syntax,
    /// A configured JSON path (field or timestamp) is missing.
    MissingField,
    /// A value is not a number (or not finite).
    NotANumber,
    /// The timestamp cannot be read or is out of range.
    Timestamp,
    /// The payload parsed but gives no storable point (no field, bad names).
    Invalid,
}

impl MalformedKind {
    /// The reason as written in logs.
    pub fn as_str(self) -> &'static str {
        match self {
            MalformedKind::Topic => "topic",
            MalformedKind::Syntax => "syntax",
            MalformedKind::MissingField => "missing_field",
            MalformedKind::NotANumber => "not_a_number",
            MalformedKind::Timestamp => "timestamp",
            MalformedKind::Invalid => "invalid",
        }
    }
}

/// A message that cannot become points.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", kind.as_str())]
pub struct Malformed {
    pub kind: MalformedKind,
    pub message: String,
}

fn malformed<T>(kind: MalformedKind, message: impl Into<String>) -> Result<T, Malformed> {
    Err(Malformed {
        kind,
        message: message.into(),
    })
}

/// A JSON path, split into its keys.
#[derive(Debug, Clone, PartialEq, Eq)]
struct JsonPath {
    text: String,
    keys: Vec<String>,
}

impl JsonPath {
    fn parse(text: &str) -> Result<JsonPath, String> {
        let keys: Vec<String> = text.split('.').map(str::to_owned).collect();
        if text.is_empty() || keys.iter().any(String::is_empty) {
            return Err(format!("JSON path \"{text}\": empty key"));
        }
        Ok(JsonPath {
            text: text.to_owned(),
            keys,
        })
    }

    /// The value at the path: object keys, or indexes into arrays.
    fn get<'v>(&self, root: &'v Value) -> Option<&'v Value> {
        let mut v = root;
        for k in &self.keys {
            v = match v {
                Value::Object(m) => m.get(k)?,
                Value::Array(a) => a.get(k.parse::<usize>().ok()?)?,
                _ => return None,
            };
        }
        Some(v)
    }
}

/// How a subscription turns payloads into fields.
#[derive(Debug, Clone)]
enum Decoder {
    Json {
        /// Names made once: every message's point shares them.
        fields: Vec<(FieldKey, JsonPath)>,
        timestamp: Option<(JsonPath, TimestampFormat)>,
    },
    Number {
        field: FieldKey,
    },
    LineProtocol {
        precision: Precision,
    },
}

/// A subscription ready to match topics and decode payloads.
#[derive(Debug, Clone)]
pub struct Subscription {
    pub template: TopicTemplate,
    pub qos: u8,
    measurement: Option<Interpolated>,
    /// Captures that become tags (names not starting with `_`).
    capture_tags: Vec<String>,
    tags: Vec<(String, Interpolated)>,
    decoder: Decoder,
}

fn check_key(what: &str, key: &str) -> Result<(), String> {
    if key.is_empty() {
        return Err(format!("{what} must not be empty"));
    }
    if key.contains(['\n', '\r']) {
        return Err(format!("{what} \"{key}\" contains a line break"));
    }
    Ok(())
}

impl Subscription {
    /// Compile a subscription's config; the error says what is wrong.
    pub fn compile(config: &SubscriptionConfig) -> Result<Subscription, String> {
        let template = TopicTemplate::parse(&config.topic)?;
        if config.qos > 1 {
            return Err(format!(
                "qos {}: only 0 and 1 are supported (1 already stores every message at least once)",
                config.qos
            ));
        }
        let format_name = match config.format {
            PayloadFormat::Json => "json",
            PayloadFormat::LineProtocol => "line_protocol",
            PayloadFormat::Number => "number",
        };
        let not_for = |key: &str| Err(format!("`{key}` does not apply to format {format_name}"));
        let measurement = match &config.measurement {
            Some(m) => {
                check_key("measurement", m)?;
                Some(Interpolated::parse(m, &template)?)
            }
            None if config.format == PayloadFormat::LineProtocol => None,
            None => return Err(format!("format {format_name} needs `measurement`")),
        };
        let decoder = match config.format {
            PayloadFormat::Json => {
                if config.field.is_some() {
                    return not_for("field");
                }
                if config.fields.is_empty() {
                    return Err("format json needs `fields` (field name = JSON path)".into());
                }
                let mut fields = Vec::new();
                for (name, path) in &config.fields {
                    check_key("field name", name)?;
                    fields.push((FieldKey::from(name), JsonPath::parse(path)?));
                }
                let timestamp = match &config.timestamp_path {
                    Some(p) => Some((JsonPath::parse(p)?, config.timestamp_format)),
                    None => None,
                };
                Decoder::Json { fields, timestamp }
            }
            PayloadFormat::Number => {
                if !config.fields.is_empty() {
                    return not_for("fields");
                }
                if config.timestamp_path.is_some() {
                    return not_for("timestamp_path");
                }
                let field = config
                    .field
                    .clone()
                    .ok_or("format number needs `field` (the field name of the value)")?;
                check_key("field", &field)?;
                Decoder::Number {
                    field: field.into(),
                }
            }
            PayloadFormat::LineProtocol => {
                if !config.fields.is_empty() {
                    return not_for("fields");
                }
                if config.field.is_some() {
                    return not_for("field");
                }
                if config.timestamp_path.is_some() {
                    return not_for("timestamp_path");
                }
                Decoder::LineProtocol {
                    precision: config.precision,
                }
            }
        };
        let mut tags = Vec::new();
        for (k, v) in &config.tags {
            check_key("tag key", k)?;
            if v.contains(['\n', '\r']) {
                return Err(format!("tag {k}: the value contains a line break"));
            }
            tags.push((k.clone(), Interpolated::parse(v, &template)?));
        }
        let capture_tags = template
            .names()
            .iter()
            .filter(|n| !n.starts_with('_'))
            .cloned()
            .collect();
        Ok(Subscription {
            qos: config.qos,
            measurement,
            capture_tags,
            tags,
            decoder,
            template,
        })
    }

    /// Decode one message of this subscription (its topic's `captures`) into points,
    /// appended to `out`. `arrival_ns` is the timestamp of values that carry none.
    ///
    /// Every point of the message can be stored, or none is appended: a point no
    /// store can take (a line break in a name, from the topic or a line protocol
    /// payload, such as a `\r` of CRLF line ends) makes the message malformed here,
    /// counted against its topic, instead of being refused later by the store.
    pub fn decode(
        &self,
        captures: &[(&str, &str)],
        payload: &[u8],
        arrival_ns: i64,
        out: &mut Vec<Point>,
    ) -> Result<(), Malformed> {
        let start = out.len();
        self.decode_payload(captures, payload, arrival_ns, out)?;
        for (n, point) in out[start..].iter().enumerate() {
            if let Err(e) = line_protocol::check(point) {
                let message = match self.decoder {
                    Decoder::LineProtocol { .. } => format!("line {}: {e}", n + 1),
                    _ => e.to_string(),
                };
                out.truncate(start);
                return malformed(MalformedKind::Invalid, message);
            }
        }
        Ok(())
    }

    fn decode_payload(
        &self,
        captures: &[(&str, &str)],
        payload: &[u8],
        arrival_ns: i64,
        out: &mut Vec<Point>,
    ) -> Result<(), Malformed> {
        match &self.decoder {
            Decoder::Json { fields, timestamp } => {
                let root: Value = serde_json::from_slice(payload)
                    .or_else(|e| malformed(MalformedKind::Syntax, format!("not JSON: {e}")))?;
                let ts = match timestamp {
                    Some((path, format)) => {
                        let v = path.get(&root).ok_or_else(|| Malformed {
                            kind: MalformedKind::MissingField,
                            message: format!("no timestamp at \"{}\"", path.text),
                        })?;
                        json_timestamp(v, *format)?
                    }
                    None => arrival_ns,
                };
                let mut point = self.point(captures, None, ts);
                for (name, path) in fields {
                    match path.get(&root) {
                        None => {
                            return malformed(
                                MalformedKind::MissingField,
                                format!("no \"{}\" (field {name})", path.text),
                            )
                        }
                        // "Not available": the field is left out.
                        Some(Value::Null) => {}
                        Some(Value::Bool(b)) => {
                            point.add_field(name, if *b { 1.0 } else { 0.0 });
                        }
                        Some(Value::Number(n)) => match n.as_f64().filter(|x| x.is_finite()) {
                            Some(x) => {
                                point.add_field(name, x);
                            }
                            None => {
                                return malformed(
                                    MalformedKind::NotANumber,
                                    format!("\"{}\" = {n} is out of range", path.text),
                                )
                            }
                        },
                        Some(other) => {
                            return malformed(
                                MalformedKind::NotANumber,
                                format!("\"{}\" is not a number: {}", path.text, short(other)),
                            )
                        }
                    }
                }
                if !point.fields().is_empty() {
                    out.push(point);
                }
                Ok(())
            }
            Decoder::Number { field } => {
                let text = std::str::from_utf8(payload)
                    .or_else(|_| malformed(MalformedKind::Syntax, "not UTF-8"))?
                    .trim();
                let x: f64 = text
                    .parse()
                    .ok()
                    .filter(|x: &f64| x.is_finite())
                    .ok_or_else(|| Malformed {
                        kind: MalformedKind::NotANumber,
                        message: "not a finite decimal number".into(),
                    })?;
                let mut point = self.point(captures, None, arrival_ns);
                point.add_field(field, x);
                out.push(point);
                Ok(())
            }
            Decoder::LineProtocol { precision } => {
                let text = std::str::from_utf8(payload)
                    .or_else(|_| malformed(MalformedKind::Syntax, "not UTF-8"))?;
                let start = out.len();
                let result = self.decode_lines(captures, text, *precision, arrival_ns, out);
                if result.is_err() {
                    // All lines of a message or none.
                    out.truncate(start);
                } else if out.len() == start {
                    return malformed(MalformedKind::Invalid, "no line");
                }
                result
            }
        }
    }

    fn decode_lines(
        &self,
        captures: &[(&str, &str)],
        text: &str,
        precision: Precision,
        arrival_ns: i64,
        out: &mut Vec<Point>,
    ) -> Result<(), Malformed> {
        use influxdb_line_protocol::FieldValue as Lp;
        for (n, line) in influxdb_line_protocol::parse_lines(text).enumerate() {
            let line =
                line.or_else(|e| malformed(MalformedKind::Syntax, format!("line {}: {e}", n + 1)))?;
            let ts = match line.timestamp {
                None => arrival_ns,
                Some(t) => t.checked_mul(precision.nanos()).ok_or_else(|| Malformed {
                    kind: MalformedKind::Timestamp,
                    message: format!("line {}: timestamp {t} out of range", n + 1),
                })?,
            };
            let measurement = line.series.measurement.as_str();
            if measurement.is_empty() {
                return malformed(
                    MalformedKind::Invalid,
                    format!("line {}: no measurement", n + 1),
                );
            }
            let payload_tags: Vec<(&str, &str)> = line
                .series
                .tag_set
                .iter()
                .flatten()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            let mut point = self.point(captures, Some((measurement, &payload_tags)), ts);
            for (k, v) in &line.field_set {
                let value = match v {
                    Lp::I64(i) => FieldValue::Integer(*i),
                    Lp::U64(u) => FieldValue::Unsigned(*u),
                    Lp::F64(f) if f.is_finite() => FieldValue::Float(*f),
                    Lp::F64(f) => {
                        return malformed(
                            MalformedKind::NotANumber,
                            format!("line {}: field {} = {f}", n + 1, k.as_str()),
                        )
                    }
                    Lp::String(s) => FieldValue::String(s.to_string()),
                    Lp::Boolean(b) => FieldValue::Boolean(*b),
                };
                point.add_field(k.as_str(), value);
            }
            out.push(point);
        }
        Ok(())
    }

    /// A point with the subscription's measurement (or the payload's) and tags: the
    /// payload's first, then the captures, then the configured ones.
    fn point(
        &self,
        captures: &[(&str, &str)],
        payload: Option<(&str, &[(&str, &str)])>,
        ts: i64,
    ) -> Point {
        let measurement = match (&self.measurement, payload) {
            (Some(m), _) => m.render(captures),
            (None, Some((m, _))) => m.to_owned(),
            (None, None) => String::new(),
        };
        let mut p = Point::new(measurement, ts);
        if let Some((_, tags)) = payload {
            for (k, v) in tags {
                p.add_tag(*k, *v);
            }
        }
        for name in &self.capture_tags {
            if let Some((_, v)) = captures.iter().find(|(n, _)| n == name) {
                p.add_tag(name.as_str(), *v);
            }
        }
        for (k, v) in &self.tags {
            p.add_tag(k.as_str(), v.render(captures));
        }
        p
    }
}

/// A JSON value as a timestamp in ns.
fn json_timestamp(v: &Value, format: TimestampFormat) -> Result<i64, Malformed> {
    let out_of_range = || Malformed {
        kind: MalformedKind::Timestamp,
        message: format!("timestamp {} out of range", short(v)),
    };
    if format == TimestampFormat::Rfc3339 {
        let Value::String(s) = v else {
            return malformed(
                MalformedKind::Timestamp,
                format!("timestamp {} is not an RFC 3339 string", short(v)),
            );
        };
        let t = chrono::DateTime::parse_from_rfc3339(s).or_else(|e| {
            malformed(
                MalformedKind::Timestamp,
                format!("timestamp \"{}\": {e}", truncate(s, 64)),
            )
        })?;
        return t.timestamp_nanos_opt().ok_or_else(out_of_range);
    }
    let unit: i64 = match format {
        TimestampFormat::UnixS => 1_000_000_000,
        TimestampFormat::UnixMs => 1_000_000,
        TimestampFormat::UnixUs => 1_000,
        _ => 1,
    };
    let Value::Number(n) = v else {
        return malformed(
            MalformedKind::Timestamp,
            format!("timestamp {} is not a number", short(v)),
        );
    };
    if let Some(i) = n.as_i64() {
        return i.checked_mul(unit).ok_or_else(out_of_range);
    }
    let x = n.as_f64().ok_or_else(out_of_range)? * unit as f64;
    // i64::MAX as f64 rounds up to 2^63, itself out of range.
    if x.is_finite() && x >= i64::MIN as f64 && x < i64::MAX as f64 {
        Ok(x.round() as i64)
    } else {
        Err(out_of_range())
    }
}

/// A JSON value, shortened for a message.
fn short(v: &Value) -> String {
    truncate(&v.to_string(), 40)
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mqtt::config::MqttConfig;

    fn sub(body: &str) -> Subscription {
        let c = MqttConfig::from_toml_str(&format!(
            "broker = \"h:1883\"\nclient_id = \"c\"\n[[subscription]]\n{body}"
        ))
        .unwrap_or_else(|e| panic!("{e}"));
        Subscription::compile(&c.subscriptions[0]).unwrap()
    }

    fn decode(s: &Subscription, topic: &str, payload: &str) -> Result<Vec<Point>, Malformed> {
        let caps = s.template.matches(topic).expect("topic matches");
        let mut out = Vec::new();
        s.decode(&caps, payload.as_bytes(), 42, &mut out)?;
        Ok(out)
    }

    #[test]
    fn json_fields_paths_and_timestamps() {
        let s = sub(r#"
            topic = "dc/{centre}/{zone}/{rack}/inlet"
            format = "json"
            measurement = "rack_inlet"
            fields = { temperature_c = "env.temp", humidity_pct = "env.rh", first = "v.0" }
            timestamp_path = "ts"
            tags = { sensor = "{centre}-{zone}-{rack}-inlet", site = "qd" }
        "#);
        let p = decode(
            &s,
            "dc/dc2/mm03/r07/inlet",
            r#"{"ts": 1700000000123, "env": {"temp": 24.5, "rh": 41}, "v": [true, 2]}"#,
        )
        .unwrap();
        assert_eq!(p.len(), 1);
        let p = &p[0];
        assert_eq!(p.measurement(), "rack_inlet");
        assert_eq!(p.timestamp_ns(), 1_700_000_000_123_000_000);
        let tags: Vec<(&str, &str)> = p
            .tags()
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            tags,
            [
                ("centre", "dc2"),
                ("rack", "r07"),
                ("sensor", "dc2-mm03-r07-inlet"),
                ("site", "qd"),
                ("zone", "mm03")
            ]
        );
        assert_eq!(
            p.field_value("temperature_c"),
            Some(&FieldValue::Float(24.5))
        );
        assert_eq!(
            p.field_value("humidity_pct"),
            Some(&FieldValue::Float(41.0))
        );
        assert_eq!(p.field_value("first"), Some(&FieldValue::Float(1.0)));

        let kind = |payload: &str| decode(&s, "dc/a/b/c/inlet", payload).unwrap_err().kind;
        assert_eq!(kind("{"), MalformedKind::Syntax);
        assert_eq!(kind("[]"), MalformedKind::MissingField);
        assert_eq!(
            kind(r#"{"env": {"temp": 1, "rh": 2}, "v": [1]}"#),
            MalformedKind::MissingField
        );
        assert_eq!(
            kind(r#"{"ts": 1, "env": {"temp": "hot", "rh": 2}, "v": [1]}"#),
            MalformedKind::NotANumber
        );
        assert_eq!(
            kind(r#"{"ts": "yesterday", "env": {"temp": 1, "rh": 2}, "v": [1]}"#),
            MalformedKind::Timestamp
        );
        assert_eq!(
            kind(r#"{"ts": 1e300, "env": {"temp": 1, "rh": 2}, "v": [1]}"#),
            MalformedKind::Timestamp
        );
        // null = not available: left out; all null: no point, not malformed.
        let p = decode(
            &s,
            "dc/a/b/c/inlet",
            r#"{"ts": 1, "env": {"temp": null, "rh": 2}, "v": [null]}"#,
        )
        .unwrap();
        assert_eq!(p[0].fields().len(), 1);
        let p = decode(
            &s,
            "dc/a/b/c/inlet",
            r#"{"ts": 1, "env": {"temp": null, "rh": null}, "v": [null]}"#,
        )
        .unwrap();
        assert!(p.is_empty());
    }

    #[test]
    fn timestamp_formats() {
        let ts = |v: &str, f: TimestampFormat| json_timestamp(&serde_json::from_str(v).unwrap(), f);
        assert_eq!(
            ts("1700000000", TimestampFormat::UnixS),
            Ok(1_700_000_000_000_000_000)
        );
        assert_eq!(
            ts("1700000000.5", TimestampFormat::UnixS),
            Ok(1_700_000_000_500_000_000)
        );
        assert_eq!(
            ts("1700000000000001", TimestampFormat::UnixUs),
            Ok(1_700_000_000_000_001_000)
        );
        assert_eq!(ts("17", TimestampFormat::UnixNs), Ok(17));
        assert_eq!(
            ts("\"2023-11-14T22:13:20.25Z\"", TimestampFormat::Rfc3339),
            Ok(1_700_000_000_250_000_000)
        );
        assert_eq!(
            ts("\"2023-11-15T06:13:20+08:00\"", TimestampFormat::Rfc3339),
            Ok(1_700_000_000_000_000_000)
        );
        assert!(ts("\"2023-11-15 06:13\"", TimestampFormat::Rfc3339).is_err());
        assert!(
            ts("10000000000000", TimestampFormat::UnixS).is_err(),
            "overflow"
        );
        assert!(ts("1700000000", TimestampFormat::Rfc3339).is_err());
    }

    #[test]
    fn plain_numbers() {
        let s = sub(r#"
            topic = "x/{centre}/{zone}/leak/{_place}"
            format = "number"
            measurement = "leak"
            field = "wet"
            tags = { sensor = "{centre}-{zone}-leak-{_place}" }
        "#);
        let p = decode(&s, "x/dc2/mm01/leak/cdu", " 1\n").unwrap();
        assert_eq!(p[0].timestamp_ns(), 42, "arrival time");
        assert_eq!(p[0].field_value("wet"), Some(&FieldValue::Float(1.0)));
        assert_eq!(p[0].tag_value("sensor"), Some("dc2-mm01-leak-cdu"));
        assert_eq!(p[0].tag_value("_place"), None, "_ captures are not tags");
        assert_eq!(p[0].tags().len(), 3);
        for bad in ["", "wet", "1,5", "NaN", "inf", "1e999", "0x10"] {
            assert_eq!(
                decode(&s, "x/a/b/leak/c", bad).unwrap_err().kind,
                MalformedKind::NotANumber,
                "{bad:?}"
            );
        }
        assert_eq!(
            s.decode(&[], &[0xff, 0xfe], 0, &mut Vec::new())
                .unwrap_err()
                .kind,
            MalformedKind::Syntax
        );
    }

    #[test]
    fn line_protocol_keeps_types_and_merges_tags() {
        let s = sub(r#"
            topic = "x/{centre}/{zone}/dewpoint"
            format = "line_protocol"
            tags = { source = "mqtt" }
        "#);
        let text =
            "dew_point,sensor=dc2-mm01-dewpoint,centre=dc9 dew_point_c=11.25 1700000000000000000\n\
                    state,sensor=s\\ 1 ok=true,n=3i,u=4u,msg=\"a \\\"b\\\"\"";
        let p = decode(&s, "x/dc2/mm01/dewpoint", text).unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].measurement(), "dew_point");
        assert_eq!(p[0].timestamp_ns(), 1_700_000_000_000_000_000);
        assert_eq!(
            p[0].tag_value("centre"),
            Some("dc2"),
            "the topic wins over the payload"
        );
        assert_eq!(p[0].tag_value("sensor"), Some("dc2-mm01-dewpoint"));
        assert_eq!(p[0].tag_value("source"), Some("mqtt"));
        assert_eq!(
            p[0].field_value("dew_point_c"),
            Some(&FieldValue::Float(11.25))
        );
        assert_eq!(p[1].timestamp_ns(), 42);
        assert_eq!(p[1].tag_value("sensor"), Some("s 1"));
        assert_eq!(p[1].field_value("ok"), Some(&FieldValue::Boolean(true)));
        assert_eq!(p[1].field_value("n"), Some(&FieldValue::Integer(3)));
        assert_eq!(p[1].field_value("u"), Some(&FieldValue::Unsigned(4)));
        assert_eq!(
            p[1].field_value("msg"),
            Some(&FieldValue::String("a \"b\"".into()))
        );

        let kind = |t: &str| decode(&s, "x/a/b/dewpoint", t).unwrap_err().kind;
        assert_eq!(kind("dew_point"), MalformedKind::Syntax);
        assert_eq!(
            kind("m v=1\nm v="),
            MalformedKind::Syntax,
            "all lines or none"
        );
        assert_eq!(kind("m v=1 notatime"), MalformedKind::Syntax);
        assert_eq!(kind(""), MalformedKind::Invalid);

        let ms = sub(r#"
            topic = "lp"
            format = "line_protocol"
            measurement = "renamed"
            precision = "ms"
        "#);
        let p = decode(&ms, "lp", "m v=1 1700000000000").unwrap();
        assert_eq!(p[0].measurement(), "renamed");
        assert_eq!(p[0].timestamp_ns(), 1_700_000_000_000_000_000);
        assert_eq!(
            decode(&ms, "lp", "m v=1 9223372036854775")
                .unwrap_err()
                .kind,
            MalformedKind::Timestamp
        );
    }

    /// A name with a line break cannot be stored (line protocol has no escape for
    /// it): the whole message is malformed here, none of its points kept, rather than
    /// the store refusing some of them.
    #[test]
    fn a_line_break_in_a_name_makes_the_message_malformed() {
        let lp = sub(r#"
            topic = "lp/{rack}"
            format = "line_protocol"
        "#);
        // The `\r` of CRLF line ends, at the start of the second line's measurement.
        let err = decode(&lp, "lp/r07", "m v=1\n\rm v=2").unwrap_err();
        assert_eq!(err.kind, MalformedKind::Invalid);
        assert!(err.message.starts_with("line 2: measurement"), "{err}");
        assert!(err.message.contains("line break"), "{err}");
        let err = decode(&lp, "lp/r07", "m,k=a\rb v=1").unwrap_err();
        assert_eq!(err.kind, MalformedKind::Invalid);
        assert!(err.message.contains("tag value"), "{err}");
        // From the topic: a captured level becomes a tag value.
        let err = decode(&lp, "lp/r\r07", "m v=1").unwrap_err();
        assert_eq!(err.kind, MalformedKind::Invalid);
        let json = sub(r#"
            topic = "j/{rack}"
            format = "json"
            measurement = "m"
            fields = { v = "v" }
        "#);
        let err = decode(&json, "j/r\n07", r#"{"v": 1}"#).unwrap_err();
        assert_eq!(err.kind, MalformedKind::Invalid);
        assert!(err.message.contains("tag value"), "{err}");
        assert_eq!(decode(&json, "j/r07", r#"{"v": 1}"#).unwrap().len(), 1);
    }
}
