//! Two analyses, serialised to JSON, compared: every number within 1e-9 relative, every
//! text, count and list length equal, except where the caller allows a difference.
//! Included with `#[path]` by the `compose_months` test, the
//! `analyze_months` benchmark (a report composed from months against one pass) and the
//! workspace's `stores_agree` test (InfluxDB against the embedded store).

#![allow(dead_code)]

use serde::Serialize;
use serde_json::Value;

/// Where a difference is allowed: `(path, first, second)`.
pub type Allowed = fn(&str, &Value, &Value) -> bool;

/// No difference allowed.
pub fn none_allowed(_: &str, _: &Value, _: &Value) -> bool {
    false
}

/// Where a report composed from months may differ from one pass, and why.
pub fn composition_allows(path: &str, composed: &Value, single: &Value) -> bool {
    // The window's length over the median sample spacing, rounded: composed, the sum of
    // each month's rounding (half a sample at most per month, up to a year).
    if path.ends_with("/heat/expected_samples") {
        let (a, b) = (composed.as_f64(), single.as_f64());
        return matches!((a, b), (Some(a), Some(b)) if (a - b).abs() <= 6.0);
    }
    false
}

/// Every difference between the two analyses, serialised, that `allowed` does not
/// allow, each with its path.
pub fn differences(
    first: &impl Serialize,
    second: &impl Serialize,
    allowed: Allowed,
) -> Vec<String> {
    let mut out = Vec::new();
    walk(
        "",
        &serde_json::to_value(first).expect("a report serialises"),
        &serde_json::to_value(second).expect("a report serialises"),
        allowed,
        &mut out,
    );
    out
}

/// Walks both values, adding each difference that `allowed` does not allow to `out`.
fn walk(path: &str, first: &Value, second: &Value, allowed: Allowed, out: &mut Vec<String>) {
    if allowed(path, first, second) {
        return;
    }
    match (first, second) {
        (Value::Number(a), Value::Number(b)) => {
            let (a, b) = (
                a.as_f64().unwrap_or(f64::NAN),
                b.as_f64().unwrap_or(f64::NAN),
            );
            // Relative, down to the smallest numbers (a tiny slope or loss too).
            if (a - b).abs() > 1e-9 * a.abs().max(b.abs()).max(1e-12) {
                out.push(format!("{path}: {a} against {b}"));
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            if a.len() != b.len() {
                out.push(format!("{path}: {} items against {}", a.len(), b.len()));
                return;
            }
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                walk(&format!("{path}/{i}"), x, y, allowed, out);
            }
        }
        (Value::Object(a), Value::Object(b)) => {
            for (k, x) in a {
                match b.get(k) {
                    Some(y) => walk(&format!("{path}/{k}"), x, y, allowed, out),
                    None => out.push(format!("{path}/{k}: only in the first")),
                }
            }
            for k in b.keys().filter(|k| !a.contains_key(*k)) {
                out.push(format!("{path}/{k}: only in the second"));
            }
        }
        (a, b) if a == b => {}
        (a, b) => out.push(format!("{path}: {a} against {b}")),
    }
}
