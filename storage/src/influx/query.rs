//! Reading back from InfluxDB: InfluxQL on `/query` with CSV answers, into polars
//! frames in the same [frame conventions](crate::frame) as the embedded store.
//!
//! InfluxDB 1.x answers `/query` natively; 2.x through its v1 compatibility API (the
//! bucket is the database, with a DBRP mapping); 3.x too. Flux is not used. For a
//! [`Scan`], the reader:
//!
//! 1. learns the measurement's columns: `SHOW TAG KEYS FROM "m"` and
//!    `SHOW FIELD KEYS FROM "m"` (the field types: `float`, `integer`, `unsigned`,
//!    `boolean`, `string`), so that every column gets its type from the server and not
//!    from guessing at CSV text (`1` may be a float); these two small answers are asked
//!    as JSON, which reports statement errors (a missing database) that InfluxDB 1.x
//!    leaves out of CSV answers;
//! 2. splits the time range into chunks aligned on multiples of
//!    [`InfluxReader::chunk`] (6 h by default) since the Unix epoch, and for each runs
//!
//!    ```text
//!    SELECT "f1"::field,"f2"::field,"t1"::tag,"t2"::tag FROM "m"
//!    WHERE time >= 1767225600000000000 AND time < 1767247200000000000
//!      AND ("t1"='a' OR "t1"='b')
//!    ```
//!
//!    with `epoch=ns` (integer timestamps) and `Accept: application/csv`, one chunk
//!    after the other, so that no answer grows with the length of the range;
//! 3. parses each CSV answer with the types of step 1 and concatenates the chunks. An
//!    empty CSV answer is asked again as JSON: InfluxDB 1.x answers a failed statement
//!    with an empty CSV body (influxdata/influxdb#21113), and an error must never read
//!    as "no data".
//!
//! Identifiers are double-quoted and string literals single-quoted, with `\` before
//! the backslash, the quote character itself, and `\n` for a line break (InfluxQL's
//! string scanner unescapes exactly these), so names and values with commas, spaces,
//! equals signs, quotes, backslashes and any unicode are safe.
//!
//! Known differences from the embedded store, from InfluxDB itself: an empty string
//! field value reads back as null (InfluxDB's CSV writes both as an empty cell), and
//! unsigned fields exist only where the server accepts them (not in 1.x release
//! builds). InfluxDB 1.x truncates an answer at `max-row-limit` rows when that setting
//! is not 0 (0 is the default since 1.8): keep it at 0, or chunks below that limit.

use std::time::Duration;

use polars::prelude::*;

use super::config::{Auth, InfluxConfig};
use super::Api;
use crate::error::StoreError;
use crate::frame::{self, FieldType, MeasurementSchema};
use crate::store::Scan;

/// Reads measurements back from InfluxDB with InfluxQL; see the [module docs](self).
#[derive(Debug, Clone)]
pub struct InfluxReader {
    http: reqwest::Client,
    url: reqwest::Url,
    display_url: String,
    database: String,
    retention_policy: Option<String>,
    auth: Auth,
    chunk: Duration,
    timeout: Duration,
}

/// The default chunk length: 6 hours.
pub const DEFAULT_CHUNK: Duration = Duration::from_secs(6 * 3600);

/// The default time limit of one query: 2 minutes.
pub const DEFAULT_QUERY_TIMEOUT: Duration = Duration::from_secs(120);

impl InfluxReader {
    /// A reader for the server, database and credentials of a writer configuration
    /// (v1: `database`, `retention_policy`, user and password; v2: the `bucket` as the
    /// database, and the token).
    pub fn new(config: &InfluxConfig) -> Result<InfluxReader, StoreError> {
        let target = config
            .resolve()
            .map_err(|e| StoreError::Config(e.to_string()))?;
        let mut url = target.endpoint.clone();
        let path = url.path().to_owned();
        let base = path
            .strip_suffix("/api/v2/write")
            .or_else(|| path.strip_suffix("/write"))
            .unwrap_or(&path)
            .to_owned();
        url.set_path(&format!("{base}/query"));
        url.set_query(None);
        let database = match config.api {
            Api::V1 => config.database.clone(),
            Api::V2 => config.bucket.clone(),
        }
        .unwrap_or_default();
        let http = reqwest::Client::builder()
            .build()
            .map_err(|e| StoreError::Config(format!("cannot build the HTTP client: {e}")))?;
        Ok(InfluxReader {
            http,
            display_url: url.to_string(),
            url,
            database,
            retention_policy: match config.api {
                Api::V1 => config.retention_policy.clone().filter(|r| !r.is_empty()),
                Api::V2 => None,
            },
            auth: target.auth,
            chunk: DEFAULT_CHUNK,
            timeout: DEFAULT_QUERY_TIMEOUT,
        })
    }

    /// Uses chunks of this length (at least one second).
    #[must_use]
    pub fn with_chunk(mut self, chunk: Duration) -> InfluxReader {
        self.chunk = chunk.max(Duration::from_secs(1));
        self
    }

    /// Gives each query this long.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> InfluxReader {
        self.timeout = timeout;
        self
    }

    /// The chunk length.
    pub fn chunk(&self) -> Duration {
        self.chunk
    }

    /// The measurement's tags and fields, as the server knows them (asked with JSON
    /// answers: small, and they carry statement errors such as a missing database).
    pub async fn schema(&self, measurement: &str) -> Result<MeasurementSchema, StoreError> {
        let from = quote_ident(measurement);
        let tags = self
            .query_json(&format!("SHOW TAG KEYS FROM {from}"))
            .await?;
        let fields = self
            .query_json(&format!("SHOW FIELD KEYS FROM {from}"))
            .await?;
        let mut schema = MeasurementSchema::new();
        for row in json_rows(&tags) {
            let key = row.first().and_then(|v| v.as_str()).ok_or_else(|| {
                StoreError::Influx(format!("SHOW TAG KEYS FROM {from}: unexpected row {row:?}"))
            })?;
            schema
                .insert(key, frame::ColumnKind::Tag)
                .map_err(|e| StoreError::Influx(format!("measurement {measurement:?}: {e}")))?;
        }
        for row in json_rows(&fields) {
            let (Some(key), Some(ty)) = (
                row.first().and_then(|v| v.as_str()),
                row.get(1).and_then(|v| v.as_str()),
            ) else {
                return Err(StoreError::Influx(format!(
                    "SHOW FIELD KEYS FROM {from}: unexpected row {row:?}"
                )));
            };
            let t = FieldType::from_influx_name(ty).ok_or_else(|| {
                StoreError::Influx(format!(
                    "field {key:?} of {measurement:?} has unknown type {ty:?}"
                ))
            })?;
            schema
                .insert(key, frame::ColumnKind::Field(t))
                .map_err(|e| {
                    StoreError::Influx(format!(
                        "measurement {measurement:?}: {e} (a field with two types in \
                         different shards, or a tag and a field of the same name: \
                         not supported)"
                    ))
                })?;
        }
        Ok(schema)
    }

    /// Reads one measurement for `scan`, chunk by chunk, into a frame.
    pub async fn read(&self, scan: &Scan) -> Result<DataFrame, StoreError> {
        if scan.time.start >= scan.time.end {
            return Err(StoreError::InvalidScan(format!(
                "empty time range {}..{}",
                scan.time.start, scan.time.end
            )));
        }
        let schema = self.schema(&scan.measurement).await?;
        let fields = scan.selected_fields(&schema);
        if schema.is_empty() {
            return Ok(DataFrame::empty_with_schema(&frame::time_only_schema()));
        }
        let out_schema = schema.polars_schema(scan.fields.as_deref());
        if !scan.check_tags(&schema)? || fields.is_empty() {
            return Ok(DataFrame::empty_with_schema(&out_schema));
        }
        let tags: Vec<&str> = schema.tags().collect();
        let mut frames = Vec::new();
        for (start, end) in chunks(scan.time.start, scan.time.end, self.chunk) {
            let q = select_statement(scan, &fields, &tags, start, end);
            let body = self.query_csv(&q).await?;
            let csv = parse_csv(&body)?;
            frames.push(csv_frame(&csv, &schema, &out_schema, &q)?);
        }
        let mut out = DataFrame::empty_with_schema(&out_schema);
        for chunk in frames {
            out.vstack_mut_owned(chunk).map_err(StoreError::polars(
                "concatenating the chunks of an InfluxDB answer",
            ))?;
        }
        Ok(out)
    }

    /// Runs one `SELECT`; returns its CSV answer.
    ///
    /// InfluxDB 1.x drops statement errors from CSV answers: a failed statement
    /// answers `200 OK` with an empty body, like one that found no rows
    /// (influxdata/influxdb#21113). So an empty CSV answer is asked again with a JSON
    /// answer, which carries the error if there was one (and is as cheap as the empty
    /// answer if there was none).
    async fn query_csv(&self, q: &str) -> Result<String, StoreError> {
        let body = self.send(q, "application/csv").await?;
        if body.trim().is_empty() {
            self.query_json(q).await?;
        }
        Ok(body)
    }

    /// Runs one statement with a JSON answer; fails on a statement error.
    async fn query_json(&self, q: &str) -> Result<serde_json::Value, StoreError> {
        let body = self.send(q, "application/json").await?;
        let json: serde_json::Value = serde_json::from_str(&body).map_err(|e| {
            StoreError::Influx(format!(
                "{}: {q:?}: unreadable JSON answer ({e}): {}",
                self.display_url,
                body.trim()
            ))
        })?;
        let error = json
            .get("error")
            .or_else(|| json["results"].get(0).and_then(|r| r.get("error")));
        if let Some(error) = error {
            return Err(StoreError::Influx(format!(
                "{}: {q:?}: {}",
                self.display_url,
                error.as_str().unwrap_or(&error.to_string())
            )));
        }
        Ok(json)
    }

    /// Posts one statement; returns the body of a 2xx answer.
    async fn send(&self, q: &str, accept: &str) -> Result<String, StoreError> {
        let mut form: Vec<(&str, &str)> = vec![("db", &self.database), ("q", q), ("epoch", "ns")];
        if let Some(rp) = &self.retention_policy {
            form.push(("rp", rp));
        }
        let mut request = self
            .http
            .post(self.url.clone())
            .header(reqwest::header::ACCEPT, accept)
            .timeout(self.timeout)
            .form(&form);
        request = match &self.auth {
            Auth::None => request,
            Auth::Basic { username, password } => {
                request.basic_auth(username, Some(password.expose()))
            }
            Auth::Token(token) => request.header(
                reqwest::header::AUTHORIZATION,
                format!("Token {}", token.expose()),
            ),
        };
        let answer = request
            .send()
            .await
            .map_err(|e| StoreError::Influx(format!("{}: {q:?}: {e}", self.display_url)))?;
        let status = answer.status();
        let body = answer.text().await.map_err(|e| {
            StoreError::Influx(format!(
                "{}: reading the answer to {q:?}: {e}",
                self.display_url
            ))
        })?;
        // A request-level error (a parse error, authentication) is a 4xx/5xx, with an
        // `error` cell (CSV) or object (JSON).
        if !status.is_success() || body.starts_with("error\n") {
            return Err(StoreError::Influx(format!(
                "{}: {q:?}: {status}: {}",
                self.display_url,
                body.trim()
            )));
        }
        Ok(body)
    }
}

/// The rows (`values`) of the first series of a JSON answer.
fn json_rows(json: &serde_json::Value) -> impl Iterator<Item = &Vec<serde_json::Value>> {
    json["results"][0]["series"][0]["values"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|row| row.as_array())
}

/// The chunks of `[start, end)`, split at multiples of `chunk` since the epoch.
pub fn chunks(start: i64, end: i64, chunk: Duration) -> Vec<(i64, i64)> {
    let len = i64::try_from(chunk.as_nanos()).unwrap_or(i64::MAX).max(1);
    let mut out = Vec::new();
    let mut at = start;
    while at < end {
        let boundary = at.div_euclid(len).saturating_add(1).saturating_mul(len);
        let next = boundary.min(end);
        out.push((at, next));
        if next <= at {
            break;
        }
        at = next;
    }
    out
}

/// An InfluxQL identifier: double-quoted, with `\`, `"` and line breaks escaped.
pub fn quote_ident(name: &str) -> String {
    quote(name, '"')
}

/// An InfluxQL string literal: single-quoted, with `\`, `'` and line breaks escaped.
pub fn quote_string(value: &str) -> String {
    quote(value, '\'')
}

fn quote(text: &str, q: char) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push(q);
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if c == q => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out.push(q);
    out
}

/// The `SELECT` of one chunk; see the [module docs](self).
pub fn select_statement(
    scan: &Scan,
    fields: &[String],
    tags: &[&str],
    start: i64,
    end: i64,
) -> String {
    let mut q = String::from("SELECT ");
    let columns: Vec<String> = fields
        .iter()
        .map(|f| format!("{}::field", quote_ident(f)))
        .chain(tags.iter().map(|t| format!("{}::tag", quote_ident(t))))
        .collect();
    q.push_str(&columns.join(","));
    q.push_str(" FROM ");
    q.push_str(&quote_ident(&scan.measurement));
    q.push_str(&format!(" WHERE time >= {start} AND time < {end}"));
    for filter in &scan.tags {
        let any: Vec<String> = filter
            .values
            .iter()
            .map(|v| format!("{}={}", quote_ident(&filter.key), quote_string(v)))
            .collect();
        q.push_str(&format!(" AND ({})", any.join(" OR ")));
    }
    q
}

/// A parsed CSV answer: its header and rows (every `SELECT` here answers one series,
/// so one header).
struct Csv {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Csv {
    fn column(&self, name: &str) -> Option<usize> {
        self.header.iter().position(|h| h == name)
    }
}

fn parse_csv(body: &str) -> Result<Csv, StoreError> {
    let mut header: Option<Vec<String>> = None;
    let mut rows = Vec::new();
    for record in csv_records(body)? {
        match &header {
            None => header = Some(record),
            // A repeated header starts the next series of the same columns.
            Some(h) if *h == record => {}
            Some(h) if h.len() != record.len() => {
                return Err(StoreError::Influx(format!(
                    "CSV row with {} cells under a header of {}",
                    record.len(),
                    h.len()
                )))
            }
            Some(_) => rows.push(record),
        }
    }
    Ok(Csv {
        header: header.unwrap_or_default(),
        rows,
    })
}

/// Splits CSV text (RFC 4180, as Go's `encoding/csv` writes it: cells holding a comma,
/// a quote or a line break are quoted, quotes doubled; `\n` or `\r\n` ends a record)
/// into records. Empty lines are skipped.
fn csv_records(body: &str) -> Result<Vec<Vec<String>>, StoreError> {
    let mut records = Vec::new();
    let mut record: Vec<String> = Vec::new();
    let mut cell = String::new();
    let mut chars = body.chars().peekable();
    let mut quoted = false;
    // Whether the current record has anything yet (so that an empty line is skipped).
    let mut started = false;
    while let Some(c) = chars.next() {
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    cell.push('"');
                }
                '"' => quoted = false,
                c => cell.push(c),
            }
            continue;
        }
        match c {
            '"' if cell.is_empty() => {
                quoted = true;
                started = true;
            }
            ',' => {
                record.push(std::mem::take(&mut cell));
                started = true;
            }
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' => {
                if started || !cell.is_empty() {
                    record.push(std::mem::take(&mut cell));
                    records.push(std::mem::take(&mut record));
                }
                started = false;
            }
            c => {
                cell.push(c);
                started = true;
            }
        }
    }
    if quoted {
        return Err(StoreError::Influx(
            "unreadable CSV answer: a quoted cell is not closed".into(),
        ));
    }
    if started || !cell.is_empty() {
        record.push(cell);
        records.push(record);
    }
    Ok(records)
}

/// The frame of one chunk's CSV answer, with the columns of `out_schema`.
fn csv_frame(
    csv: &Csv,
    schema: &MeasurementSchema,
    out_schema: &Schema,
    q: &str,
) -> Result<DataFrame, StoreError> {
    let bad = |what: String| StoreError::Influx(format!("answer to {q:?}: {what}"));
    let n = csv.rows.len();
    let mut columns = Vec::with_capacity(out_schema.len());
    for (name, dtype) in out_schema.iter() {
        let column = if name.as_str() == frame::TIME {
            let at = csv.column("time");
            let mut v = Vec::with_capacity(n);
            for row in &csv.rows {
                let text = at.map_or("", |i| row[i].as_str());
                v.push(
                    text.parse::<i64>()
                        .map_err(|_| bad(format!("time {text:?} is not an integer")))?,
                );
            }
            Int64Chunked::from_vec(name.clone(), v)
                .into_datetime(TimeUnit::Nanoseconds, None)
                .into_series()
        } else {
            // The CSV header names each selected column as it is (tag or field).
            let at = csv.column(name.as_str());
            let cell = |row: &Vec<String>| at.map(|i| row[i].clone()).filter(|c| !c.is_empty());
            let kind = schema.get(name.as_str());
            match kind {
                Some(frame::ColumnKind::Tag)
                | Some(frame::ColumnKind::Field(FieldType::String)) => {
                    Series::new(name.clone(), csv.rows.iter().map(cell).collect::<Vec<_>>())
                }
                Some(frame::ColumnKind::Field(FieldType::Float)) => {
                    let v = parse_all(&csv.rows, cell, |c| c.parse::<f64>().ok(), name, &bad)?;
                    Series::new(name.clone(), v)
                }
                Some(frame::ColumnKind::Field(FieldType::Integer)) => {
                    let v = parse_all(&csv.rows, cell, |c| c.parse::<i64>().ok(), name, &bad)?;
                    Series::new(name.clone(), v)
                }
                Some(frame::ColumnKind::Field(FieldType::Unsigned)) => {
                    let v = parse_all(&csv.rows, cell, |c| c.parse::<u64>().ok(), name, &bad)?;
                    Series::new(name.clone(), v)
                }
                Some(frame::ColumnKind::Field(FieldType::Boolean)) => {
                    let v = parse_all(
                        &csv.rows,
                        cell,
                        |c| match c {
                            "true" => Some(true),
                            "false" => Some(false),
                            _ => None,
                        },
                        name,
                        &bad,
                    )?;
                    Series::new(name.clone(), v)
                }
                None => return Err(bad(format!("column {name:?} is not in the schema"))),
            }
        };
        debug_assert_eq!(column.dtype(), dtype);
        columns.push(Column::from(column));
    }
    DataFrame::new(n, columns).map_err(StoreError::polars(format!("answer to {q:?}")))
}

fn parse_all<T>(
    rows: &[Vec<String>],
    cell: impl Fn(&Vec<String>) -> Option<String>,
    parse: impl Fn(&str) -> Option<T>,
    name: &PlSmallStr,
    bad: &impl Fn(String) -> StoreError,
) -> Result<Vec<Option<T>>, StoreError> {
    rows.iter()
        .map(|row| match cell(row) {
            None => Ok(None),
            Some(text) => parse(&text)
                .map(Some)
                .ok_or_else(|| bad(format!("column {name:?}: cannot read {text:?}"))),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_and_strings_are_quoted_and_escaped() {
        assert_eq!(quote_ident("cdu"), "\"cdu\"");
        assert_eq!(quote_ident("a \"b\" \\c"), "\"a \\\"b\\\" \\\\c\"");
        assert_eq!(quote_string("it's"), "'it\\'s'");
        assert_eq!(quote_string("a\nb"), "'a\\nb'");
        assert_eq!(quote_string("温度, x=1"), "'温度, x=1'");
    }

    #[test]
    fn chunks_align_on_multiples_of_the_chunk_length() {
        let h = 3_600_000_000_000;
        assert_eq!(
            chunks(h / 2, 13 * h, Duration::from_secs(6 * 3600)),
            vec![(h / 2, 6 * h), (6 * h, 12 * h), (12 * h, 13 * h)]
        );
        assert_eq!(chunks(-h, 0, Duration::from_secs(3600)), vec![(-h, 0)]);
        assert_eq!(chunks(5, 5, Duration::from_secs(1)), vec![]);
    }

    #[test]
    fn select_statements_quote_everything() {
        let scan = Scan::new("m e\"a", 0..10).tag("k'", "v'1").tag("k'", "v2");
        let q = select_statement(&scan, &["f".to_owned()], &["k'"], 0, 10);
        assert_eq!(
            q,
            "SELECT \"f\"::field,\"k'\"::tag FROM \"m e\\\"a\" WHERE time >= 0 AND time < 10 \
             AND (\"k'\"='v\\'1' OR \"k'\"='v2')"
        );
    }

    #[test]
    fn csv_records_follow_rfc_4180() {
        let records = csv_records("a,b,c\r\n\n\"x,\"\"y\"\"\",,\"\"\n1,\"line\nbreak\",3").unwrap();
        assert_eq!(
            records,
            vec![
                vec!["a", "b", "c"],
                vec!["x,\"y\"", "", ""],
                vec!["1", "line\nbreak", "3"],
            ]
        );
        assert!(csv_records("a,\"open").is_err());
        assert!(csv_records("").unwrap().is_empty());
    }

    #[test]
    fn csv_with_quotes_and_repeated_headers() {
        let body = "name,tags,time,s\nm,,1,\"a,\"\"b\"\"\nc\"\nname,tags,time,s\nm,,2,x\n";
        let csv = parse_csv(body).unwrap();
        assert_eq!(csv.rows.len(), 2);
        assert_eq!(csv.rows[0][3], "a,\"b\"\nc");
    }
}
