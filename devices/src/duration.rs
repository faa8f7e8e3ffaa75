//! Durations as written in profile and site files.
//!
//! A duration is one or more `<integer><unit>` parts with no spaces, units from the
//! largest down, each at most once: `500ms`, `10s`, `5m`, `2h`, `1d`, `1h30m`,
//! `1d12h`, `1m30s500ms`. Units: `d` (24 h), `h`, `m` (minutes), `s`, `ms`.
//!
//! ```
//! use std::time::Duration;
//! use tidewatch_devices::{format_duration, parse_duration};
//!
//! assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
//! assert_eq!(format_duration(Duration::from_millis(90_500)), "1m30s500ms");
//! ```

use std::fmt;
use std::time::Duration;

/// A duration that could not be parsed, with the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DurationError {
    text: String,
    reason: &'static str,
}

impl fmt::Display for DurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid duration \"{}\": {}", self.text, self.reason)
    }
}

impl std::error::Error for DurationError {}

/// Units, largest first, with their length in milliseconds.
const UNITS: [(&str, u64); 5] = [
    ("d", 86_400_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1_000),
    ("ms", 1),
];

/// Parses `500ms`, `10s`, `5m`, `2h`, `1d` and combinations such as `1h30m`.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let fail = |reason| DurationError {
        text: text.to_owned(),
        reason,
    };
    if text.is_empty() {
        return Err(fail("it is empty; write e.g. 10s, 5m, 1h30m"));
    }
    let mut rest = text;
    let mut total_ms: u64 = 0;
    // Index into UNITS of the next unit allowed (units go from largest to smallest).
    let mut next_unit = 0;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(fail(
                "expected a whole number followed by a unit (ms, s, m, h or d), e.g. 10s or 1h30m",
            ));
        }
        let number: u64 = rest[..digits]
            .parse()
            .map_err(|_| fail("the number is too large"))?;
        rest = &rest[digits..];
        let letters = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        if letters == 0 {
            return Err(fail("a number needs a unit (ms, s, m, h or d)"));
        }
        let unit = &rest[..letters];
        rest = &rest[letters..];
        let Some(index) = UNITS.iter().position(|(name, _)| *name == unit) else {
            return Err(fail("unknown unit; use ms, s, m, h or d"));
        };
        if index < next_unit {
            return Err(fail(
                "units must go from the largest to the smallest, each at most once (e.g. 1h30m)",
            ));
        }
        next_unit = index + 1;
        total_ms = number
            .checked_mul(UNITS[index].1)
            .and_then(|ms| total_ms.checked_add(ms))
            .ok_or_else(|| fail("the duration is too large"))?;
    }
    Ok(Duration::from_millis(total_ms))
}

/// Writes a duration the way [`parse_duration`] reads it (`0s` for zero). Parts below
/// one millisecond are dropped.
pub fn format_duration(duration: Duration) -> String {
    let mut ms = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
    if ms == 0 {
        return "0s".to_owned();
    }
    let mut out = String::new();
    for (name, unit_ms) in UNITS {
        if ms >= unit_ms {
            out.push_str(&(ms / unit_ms).to_string());
            out.push_str(name);
            ms %= unit_ms;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn single_units() {
        assert_eq!(parse_duration("500ms"), Ok(ms(500)));
        assert_eq!(parse_duration("10s"), Ok(ms(10_000)));
        assert_eq!(parse_duration("5m"), Ok(ms(300_000)));
        assert_eq!(parse_duration("2h"), Ok(ms(7_200_000)));
        assert_eq!(parse_duration("1d"), Ok(ms(86_400_000)));
        assert_eq!(parse_duration("0s"), Ok(ms(0)));
        assert_eq!(parse_duration("36h"), Ok(ms(36 * 3_600_000)));
    }

    #[test]
    fn combinations() {
        assert_eq!(parse_duration("1h30m"), Ok(ms(5_400_000)));
        assert_eq!(parse_duration("1d12h"), Ok(ms(129_600_000)));
        assert_eq!(parse_duration("1m30s500ms"), Ok(ms(90_500)));
        assert_eq!(parse_duration("2d3h4m5s6ms"), Ok(ms(183_845_006)));
        // Parts need not be normalised.
        assert_eq!(parse_duration("90m"), Ok(ms(5_400_000)));
        assert_eq!(parse_duration("1h90m"), Ok(ms(9_000_000)));
    }

    #[test]
    fn rejects() {
        for bad in [
            "",
            "10",
            "s",
            "1x",
            "1.5s",
            " 10s",
            "10s ",
            "10 s",
            "-1s",
            "30m1h",
            "1h1h",
            "1ms1s",
            "10S",
            "1H",
            "1hh",
            "99999999999999999999s",
            "1h30",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should be rejected");
        }
        assert!(parse_duration(&format!("{}d", u64::MAX / 1000)).is_err());
    }

    #[test]
    fn messages() {
        assert_eq!(
            parse_duration("10").unwrap_err().to_string(),
            "invalid duration \"10\": a number needs a unit (ms, s, m, h or d)"
        );
        assert_eq!(
            parse_duration("10min").unwrap_err().to_string(),
            "invalid duration \"10min\": unknown unit; use ms, s, m, h or d"
        );
        assert_eq!(
            parse_duration("30m1h").unwrap_err().to_string(),
            "invalid duration \"30m1h\": units must go from the largest to the smallest, \
             each at most once (e.g. 1h30m)"
        );
    }

    #[test]
    fn format_round_trips() {
        for text in [
            "0s",
            "500ms",
            "10s",
            "5m",
            "2h",
            "1d",
            "1h30m",
            "1d12h",
            "1m30s500ms",
        ] {
            let d = parse_duration(text).unwrap();
            assert_eq!(format_duration(d), text);
            assert_eq!(parse_duration(&format_duration(d)), Ok(d));
        }
        assert_eq!(format_duration(ms(5_400_000)), "1h30m");
        assert_eq!(format_duration(Duration::from_nanos(1_500_000)), "1ms");
    }
}
