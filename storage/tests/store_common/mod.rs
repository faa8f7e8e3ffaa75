//! Shared harness of the embedded store and store-interface tests: small
//! configurations, a listing of the Parquet files, and frame comparison helpers.

#![allow(dead_code)] // each test file uses a different part

use std::path::{Path, PathBuf};
use std::time::Duration;

use polars::prelude::*;
use tidewatch_storage::embedded::{EmbeddedConfig, EmbeddedStore};
use tidewatch_storage::store::Scan;

/// 2026-01-01T00:00:00Z in Unix ns.
pub const DAY0: i64 = 1_767_225_600_000_000_000;
/// One day in ns.
pub const DAY: i64 = 86_400_000_000_000;
/// One second in ns.
pub const SEC: i64 = 1_000_000_000;

/// A configuration whose background thread never flushes by itself within a test
/// (hour-long interval), so the test decides when rows reach Parquet.
pub fn manual(dir: &Path) -> EmbeddedConfig {
    EmbeddedConfig {
        flush_interval: Duration::from_secs(3600),
        ..EmbeddedConfig::in_dir(dir)
    }
}

pub fn open(dir: &Path) -> EmbeddedStore {
    EmbeddedStore::open(manual(dir)).expect("open the store")
}

/// Every Parquet file under the store's data directory, relative to it, sorted.
pub fn parquet_files(dir: &Path) -> Vec<String> {
    fn walk(at: &Path, base: &Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(at) else {
            return;
        };
        for e in entries {
            let p = e.expect("entry").path();
            if p.is_dir() {
                walk(&p, base, out);
            } else if p.extension().is_some_and(|e| e == "parquet") {
                out.push(
                    p.strip_prefix(base)
                        .expect("under base")
                        .to_string_lossy()
                        .into_owned(),
                );
            }
        }
    }
    let base: PathBuf = dir.join("data");
    let mut out = Vec::new();
    walk(&base, &base, &mut out);
    out.sort();
    out
}

/// Everything of a measurement, sorted by time then every other column.
pub fn scan_all(store: &EmbeddedStore, measurement: &str) -> DataFrame {
    sorted(
        store
            .scan(&Scan::new(measurement, i64::MIN..i64::MAX))
            .expect("scan")
            .collect()
            .expect("collect"),
    )
}

/// A frame sorted by all its columns, `time` first, nulls last: a canonical order for
/// comparisons.
pub fn sorted(df: DataFrame) -> DataFrame {
    let by: Vec<String> = df
        .get_column_names()
        .iter()
        .map(|n| n.to_string())
        .filter(|n| {
            // Sorting needs orderable columns; every conventions' type is.
            !n.is_empty()
        })
        .collect();
    df.sort(
        &by,
        SortMultipleOptions::default()
            .with_nulls_last(true)
            .with_maintain_order(true),
    )
    .expect("sort")
}

/// Asserts two frames are equal (schema, values, nulls), showing both when not.
pub fn assert_frames_equal(got: &DataFrame, expected: &DataFrame) {
    assert_eq!(
        got.schema(),
        expected.schema(),
        "schemas differ:\ngot {got}\nexpected {expected}"
    );
    assert!(
        got.equals_missing(expected),
        "frames differ:\ngot {got}\nexpected {expected}"
    );
}

/// The `time` column of a list of ns timestamps.
pub fn time_column(ns: &[i64]) -> Column {
    Int64Chunked::from_vec("time".into(), ns.to_vec())
        .into_datetime(TimeUnit::Nanoseconds, None)
        .into_series()
        .into()
}
