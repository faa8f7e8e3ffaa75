//! Time arguments of the command line: RFC 3339 instants, and ends given as a length.

use anyhow::{Context, Result};

/// An RFC 3339 instant (`2026-01-01T00:00:00+08:00`) as Unix milliseconds.
pub fn parse_time(text: &str) -> Result<i64> {
    let t = chrono::DateTime::parse_from_rfc3339(text.trim())
        .with_context(|| "expected an RFC 3339 time such as 2026-01-01T00:00:00+08:00")?;
    Ok(t.timestamp_millis())
}

/// An end time: an RFC 3339 instant, or a length after `from_ms` (`30d`, `12h`).
pub fn parse_end(text: &str, from_ms: i64) -> Result<i64> {
    if let Ok(d) = tidewatch_devices::duration::parse_duration(text) {
        return Ok(from_ms + d.as_millis() as i64);
    }
    parse_time(text).context("expected an RFC 3339 time or a length such as 30d")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_lengths() {
        assert_eq!(
            parse_time("2026-01-01T00:00:00+08:00").unwrap(),
            1_767_196_800_000
        );
        assert_eq!(parse_end("1d", 0).unwrap(), 86_400_000);
        assert!(parse_end("yesterday", 0).is_err());
    }
}
