//! The retry policy: what each answer of the server means for the batch, and how long
//! to wait before trying again. Pure functions of the answer and the clock, so the
//! whole table is unit-tested here without a server.

use std::time::{Duration, SystemTime};

/// The longest `Retry-After` honoured; a server asking for more is asked again after
/// this long (it answers again with its wish, so nothing is lost by asking).
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);

/// Why a request is tried again; the label of the retry counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RetryCause {
    /// No answer: connection refused or reset, DNS, a broken body.
    Network,
    /// No answer within `request_timeout`.
    Timeout,
    /// 429 Too Many Requests.
    Throttled,
    /// 5xx.
    ServerError,
    /// 401 or 403: the credentials are wrong or lack the permission.
    Auth,
    /// 404 (database or bucket does not exist) and any other unexpected answer:
    /// a configuration problem, not the data's.
    Unexpected,
}

impl RetryCause {
    /// Every cause, in the order of [`RetryCounts`](super::RetryCounts)' fields.
    pub const ALL: [RetryCause; 6] = [
        RetryCause::Network,
        RetryCause::Timeout,
        RetryCause::Throttled,
        RetryCause::ServerError,
        RetryCause::Auth,
        RetryCause::Unexpected,
    ];

    /// A short stable label, for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            RetryCause::Network => "network",
            RetryCause::Timeout => "timeout",
            RetryCause::Throttled => "throttled",
            RetryCause::ServerError => "server_error",
            RetryCause::Auth => "auth",
            RetryCause::Unexpected => "unexpected_status",
        }
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }

    /// Whether this cause is a configuration problem that needs a person (logged as
    /// an error at every attempt, not only the first).
    pub fn needs_attention(self) -> bool {
        matches!(self, RetryCause::Auth | RetryCause::Unexpected)
    }
}

/// What to do with a part of a batch after the server's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// 2xx: delivered.
    Delivered,
    /// Try the same part again after a wait: `retry_after` is the server's wish.
    Retry {
        /// Why.
        cause: RetryCause,
        /// The server's `Retry-After`, capped at [`MAX_RETRY_AFTER`].
        retry_after: Option<Duration>,
    },
    /// 413: send the part in two halves (by lines); a single line that is too large
    /// goes to the dead-letter file.
    Split,
    /// 400 / 422: the server refuses some lines of the part. Writes are idempotent, so
    /// send the halves (by lines) again until the refused lines are isolated; each one
    /// goes to the dead-letter file with the server's reason.
    Bisect,
}

/// The response table. `retry_after` is the raw header value, if any.
pub fn classify(status: u16, retry_after: Option<&str>, now: SystemTime) -> Action {
    let retry = |cause| Action::Retry {
        cause,
        retry_after: retry_after.and_then(|v| parse_retry_after(v, now)),
    };
    match status {
        200..=299 => Action::Delivered,
        413 => Action::Split,
        400 | 422 => Action::Bisect,
        401 | 403 => retry(RetryCause::Auth),
        429 => retry(RetryCause::Throttled),
        500..=599 => retry(RetryCause::ServerError),
        _ => retry(RetryCause::Unexpected),
    }
}

/// Parses `Retry-After`: delay seconds, or an HTTP date (then the time until it, zero
/// if it passed). Capped at [`MAX_RETRY_AFTER`]; `None` if unreadable.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    let wait = if let Ok(seconds) = value.parse::<u64>() {
        Duration::from_secs(seconds)
    } else {
        let at = httpdate::parse_http_date(value).ok()?;
        at.duration_since(now).unwrap_or(Duration::ZERO)
    };
    Some(wait.min(MAX_RETRY_AFTER))
}

/// Capped exponential backoff with jitter: the n-th wait is drawn between half and all
/// of `min(initial * 2^n, max)` ("equal jitter": never shorter than half the nominal
/// wait, so a server that is down is not hammered, and writers restarted together
/// spread out).
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    attempt: u32,
}

impl Backoff {
    /// A backoff at its first step.
    pub fn new(initial: Duration, max: Duration) -> Backoff {
        Backoff {
            initial,
            max,
            attempt: 0,
        }
    }

    /// The nominal (unjittered) wait of the next step.
    pub fn nominal(&self) -> Duration {
        let factor = 1u32.checked_shl(self.attempt.min(31)).unwrap_or(u32::MAX);
        self.initial.saturating_mul(factor).min(self.max)
    }

    /// The next wait, jittered; moves to the next step.
    pub fn next_wait(&mut self) -> Duration {
        let nominal = self.nominal();
        self.attempt = self.attempt.saturating_add(1);
        let half = nominal / 2;
        let jitter_ns = fastrand::u64(0..=u64::try_from(half.as_nanos()).unwrap_or(u64::MAX));
        half + Duration::from_nanos(jitter_ns)
    }

    /// Back to the first step (after a delivery).
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

/// The server's own words from an error body: the JSON `error` (InfluxDB 1.x) or
/// `message` (2.x, 3.x), else the body's text (VictoriaMetrics), shortened.
pub fn server_message(body: &[u8]) -> String {
    const LIMIT: usize = 2048;
    if let Ok(json) = serde_json::from_slice::<serde_json::Value>(body) {
        for key in ["error", "message"] {
            if let Some(text) = json.get(key).and_then(|v| v.as_str()) {
                return shorten(text, LIMIT);
            }
        }
    }
    shorten(String::from_utf8_lossy(body).trim(), LIMIT)
}

fn shorten(text: &str, limit: usize) -> String {
    if text.len() <= limit {
        return text.to_owned();
    }
    let mut end = limit;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_response_table() {
        let now = SystemTime::now();
        assert_eq!(classify(204, None, now), Action::Delivered);
        assert_eq!(classify(200, None, now), Action::Delivered);
        assert_eq!(classify(413, None, now), Action::Split);
        assert_eq!(classify(400, None, now), Action::Bisect);
        assert_eq!(classify(422, None, now), Action::Bisect);
        for (status, cause) in [
            (401, RetryCause::Auth),
            (403, RetryCause::Auth),
            (429, RetryCause::Throttled),
            (500, RetryCause::ServerError),
            (503, RetryCause::ServerError),
            (404, RetryCause::Unexpected),
            (405, RetryCause::Unexpected),
            (302, RetryCause::Unexpected),
        ] {
            assert_eq!(
                classify(status, None, now),
                Action::Retry {
                    cause,
                    retry_after: None
                },
                "{status}"
            );
        }
        assert_eq!(
            classify(429, Some("2"), now),
            Action::Retry {
                cause: RetryCause::Throttled,
                retry_after: Some(Duration::from_secs(2))
            }
        );
    }

    #[test]
    fn retry_after_in_seconds_or_as_an_http_date() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(parse_retry_after("1", now), Some(Duration::from_secs(1)));
        assert_eq!(
            parse_retry_after(" 120 ", now),
            Some(Duration::from_secs(120))
        );
        let later = httpdate::fmt_http_date(now + Duration::from_secs(7));
        assert_eq!(parse_retry_after(&later, now), Some(Duration::from_secs(7)));
        let past = httpdate::fmt_http_date(now - Duration::from_secs(7));
        assert_eq!(parse_retry_after(&past, now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("86400", now), Some(MAX_RETRY_AFTER));
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-1", now), None);
    }

    #[test]
    fn backoff_doubles_to_the_cap_with_equal_jitter() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(30));
        let mut nominal = Vec::new();
        for _ in 0..12 {
            let n = b.nominal();
            let wait = b.next_wait();
            assert!(
                wait >= n / 2 && wait <= n,
                "{wait:?} within [{:?}, {n:?}]",
                n / 2
            );
            nominal.push(n.as_millis());
        }
        assert_eq!(
            nominal,
            [100, 200, 400, 800, 1600, 3200, 6400, 12800, 25600, 30000, 30000, 30000]
        );
        for _ in 0..100 {
            b.next_wait();
        }
        assert_eq!(b.nominal(), Duration::from_secs(30), "no overflow");
        b.reset();
        assert_eq!(b.nominal(), Duration::from_millis(100));
    }

    #[test]
    fn server_messages_from_each_server_kind() {
        assert_eq!(
            server_message(br#"{"error":"field type conflict"}"#),
            "field type conflict"
        );
        assert_eq!(
            server_message(br#"{"code":"invalid","message":"unable to parse"}"#),
            "unable to parse"
        );
        assert_eq!(server_message(b"  plain text\n"), "plain text");
        let long = "\u{e9}".repeat(2000);
        assert!(server_message(long.as_bytes()).ends_with("..."));
    }
}
