//! The report of a range composed from its months' reports against the report of one
//! pass over the range: where they differ (included with `#[path]` by the
//! `compose_months` test and the `analyze_months` benchmark).

#![allow(dead_code)]

use serde::Serialize;
use serde_json::Value;

/// Where the composed report may differ from one pass, and why.
pub fn allowed(path: &str, composed: &Value, single: &Value) -> bool {
    // The window's length over the median sample spacing, rounded: composed, the sum of
    // each month's rounding (half a sample at most per month, up to a year).
    if path.ends_with("/heat/expected_samples") {
        let (a, b) = (composed.as_f64(), single.as_f64());
        return matches!((a, b), (Some(a), Some(b)) if (a - b).abs() <= 6.0);
    }
    false
}

/// Every difference between the two reports, serialised, that is not [`allowed`].
pub fn differences(composed: &impl Serialize, single: &impl Serialize) -> Vec<String> {
    let mut out = Vec::new();
    walk(
        "",
        &serde_json::to_value(composed).expect("a report serialises"),
        &serde_json::to_value(single).expect("a report serialises"),
        &mut out,
    );
    out
}

/// Walks both values, adding each difference that is not [`allowed`] to `out`.
fn walk(path: &str, composed: &Value, single: &Value, out: &mut Vec<String>) {
    if allowed(path, composed, single) {
        return;
    }
    match (composed, single) {
        (Value::Number(a), Value::Number(b)) => {
            let (a, b) = (
                a.as_f64().unwrap_or(f64::NAN),
                b.as_f64().unwrap_or(f64::NAN),
            );
            if (a - b).abs() > 1e-9 * a.abs().max(b.abs()).max(1.0) {
                out.push(format!("{path}: composed {a}, one pass {b}"));
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            if a.len() != b.len() {
                out.push(format!(
                    "{path}: composed has {} items, one pass {}",
                    a.len(),
                    b.len()
                ));
                return;
            }
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                walk(&format!("{path}/{i}"), x, y, out);
            }
        }
        (Value::Object(a), Value::Object(b)) => {
            for (k, x) in a {
                match b.get(k) {
                    Some(y) => walk(&format!("{path}/{k}"), x, y, out),
                    None => out.push(format!("{path}/{k}: only in the composed report")),
                }
            }
            for k in b.keys().filter(|k| !a.contains_key(*k)) {
                out.push(format!("{path}/{k}: only in the one-pass report"));
            }
        }
        (a, b) if a == b => {}
        (a, b) => out.push(format!("{path}: composed {a}, one pass {b}")),
    }
}
