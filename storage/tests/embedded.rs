//! The embedded store end to end, on a temporary directory: every field type and
//! escaping case round trip, the partition layout, compaction (also interrupted),
//! retention, time and tag filters with their pushdown, and rows visible before they
//! reach Parquet.

mod store_common;

use std::collections::BTreeSet;
use std::path::Path;

use polars::prelude::*;
use store_common::*;
use tidewatch_model::Point;
use tidewatch_storage::embedded::{EmbeddedConfig, EmbeddedStore};
use tidewatch_storage::frame::{ColumnKind, FieldType};
use tidewatch_storage::store::Scan;
use tidewatch_storage::StoreError;

/// A measurement name with every character line protocol escapes, and more.
const M: &str = "cdu m,x=\"y\" \\温度";

fn escaping_points() -> Vec<Point> {
    vec![
        Point::new(M, DAY0 + SEC)
            .tag("device", "cdu 01,a=b")
            .tag("zone name,=x", "\"q\" \\ back 温")
            .field("f", 1.5)
            .field("i", -3_i64)
            .field("u", u64::MAX)
            .field("b", true)
            .field("s", "str \"q\" \\ , = 温度 \\\"")
            .field("f k,=\"", 2.25),
        Point::new(M, DAY0 + 2 * SEC)
            .tag("device", "温度")
            .field("f", -0.0)
            .field("s", "line\nbreak")
            .field("u", 0_u64),
        Point::new(M, DAY0 + 3 * SEC)
            .field("i", i64::MIN)
            .field("b", false)
            .field("s", ""),
        // The next day: its own partition.
        Point::new(M, DAY0 + DAY + 7)
            .tag("device", "cdu 01,a=b")
            .field("f", f64::MAX)
            .field("i", i64::MAX),
    ]
}

fn escaping_expected() -> DataFrame {
    let n = None::<&str>;
    DataFrame::new(
        4,
        vec![
            time_column(&[DAY0 + SEC, DAY0 + 2 * SEC, DAY0 + 3 * SEC, DAY0 + DAY + 7]),
            Column::new(
                "device".into(),
                [Some("cdu 01,a=b"), Some("温度"), n, Some("cdu 01,a=b")],
            ),
            Column::new("zone name,=x".into(), [Some("\"q\" \\ back 温"), n, n, n]),
            Column::new("b".into(), [Some(true), None, Some(false), None]),
            Column::new("f".into(), [Some(1.5), Some(-0.0), None, Some(f64::MAX)]),
            Column::new("f k,=\"".into(), [Some(2.25), None, None, None]),
            Column::new(
                "i".into(),
                [Some(-3_i64), None, Some(i64::MIN), Some(i64::MAX)],
            ),
            Column::new(
                "s".into(),
                [
                    Some("str \"q\" \\ , = 温度 \\\""),
                    Some("line\nbreak"),
                    Some(""),
                    n,
                ],
            ),
            Column::new("u".into(), [Some(u64::MAX), Some(0), None, None]),
        ],
    )
    .unwrap()
}

#[test]
fn every_field_type_and_escaping_case_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let accepted = store.write(&escaping_points()).unwrap();
    assert_eq!(accepted.points, 4);
    assert!(accepted.refused.is_empty(), "{:?}", accepted.refused);
    let expected = escaping_expected();

    // From the write-ahead log (in memory), before any flush.
    assert_frames_equal(&scan_all(&store, M), &expected);
    assert!(parquet_files(dir.path()).is_empty());

    // From Parquet.
    assert_eq!(store.flush().unwrap(), 4);
    assert_eq!(
        parquet_files(dir.path()).len(),
        2,
        "two days, two partitions"
    );
    assert_frames_equal(&scan_all(&store, M), &expected);

    // After a restart, from the files alone.
    drop(store);
    let store = open(dir.path());
    assert_eq!(store.stats().pending_points, 0);
    assert_frames_equal(&scan_all(&store, M), &expected);
    let schema = store.schema(M).expect("known measurement");
    assert_eq!(schema.get("s"), Some(ColumnKind::Field(FieldType::String)));
    assert_eq!(schema.get("device"), Some(ColumnKind::Tag));
    assert_eq!(store.measurements(), [M]);
}

#[test]
fn points_that_break_the_rules_are_refused_and_the_rest_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store
        .write(&[Point::new("m", DAY0).tag("t", "x").field("f", 1.0)])
        .unwrap();
    let accepted = store
        .write(&[
            Point::new("m", DAY0 + 1).field("f", 2.0),         // fine
            Point::new("m", DAY0 + 2).field("f", 3_i64),       // type conflict
            Point::new("m", DAY0 + 3).field("t", 1.0),         // a tag as a field
            Point::new("m", DAY0 + 4).field("time", 1.0),      // reserved
            Point::new("m", DAY0 + 5).field("g", f64::NAN),    // line protocol refuses
            Point::new("m", DAY0 + 6),                         // no field
            Point::new("m", DAY0 + 7).field("g", "new col"),   // fine, new column
            Point::new("m", DAY0 + 8).field("g", false),       // conflicts with the previous
            Point::new("x".repeat(300), DAY0).field("f", 1.0), // name too long
        ])
        .unwrap();
    assert_eq!(accepted.points, 2);
    let refused: Vec<usize> = accepted.refused.iter().map(|r| r.index).collect();
    assert_eq!(refused, [1, 2, 3, 4, 5, 7, 8]);
    assert!(
        accepted.refused[0].reason.contains("float field"),
        "{:?}",
        accepted.refused[0]
    );
    let df = scan_all(&store, "m");
    assert_eq!(df.height(), 3);
    assert_eq!(store.stats().points_refused, 7);
}

/// `cdu` on three days, `pdu` on one; the second day's `cdu` partition written in
/// several flushes.
fn write_layout(store: &EmbeddedStore) {
    for d in 0..3 {
        let points: Vec<Point> = (0..10)
            .map(|i| {
                Point::new("cdu", DAY0 + d * DAY + i * 60 * SEC)
                    .tag("device", format!("cdu-{}", i % 3))
                    .field("v", (d * 100 + i) as f64)
            })
            .collect();
        store.write(&points).unwrap();
    }
    store
        .write(&[Point::new("pdu", DAY0 + 5).field("kw", 3.5)])
        .unwrap();
    store.flush().unwrap();
}

#[test]
fn files_are_partitioned_by_measurement_and_day_and_compacted_when_the_day_closes() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(EmbeddedConfig {
        compact_max_files: 3,
        ..manual(dir.path())
    })
    .unwrap();
    write_layout(&store);
    let files = parquet_files(dir.path());
    let partitions: Vec<&str> = files.iter().map(|f| &f[..f.rfind('/').unwrap()]).collect();
    assert_eq!(
        partitions,
        [
            "cdu/2026-01-01",
            "cdu/2026-01-02",
            "cdu/2026-01-03",
            "pdu/2026-01-01"
        ]
    );
    for f in &files {
        let name = &f[f.rfind('/').unwrap() + 1..];
        assert!(
            name.len() == "part-".len() + 20 + 1 + 20 + ".parquet".len()
                && name.starts_with("part-")
                && name.ends_with(".parquet"),
            "{name}"
        );
    }

    // Three more flushes into 2026-01-02: four small files there.
    for k in 0..3 {
        store
            .write(&[Point::new("cdu", DAY0 + DAY + (k + 1) * SEC)
                .tag("device", "cdu-late")
                .field("v", k as f64)
                .field("extra", k)])
            .unwrap();
        store.flush().unwrap();
    }
    let day1 = |dir: &Path| -> Vec<String> {
        parquet_files(dir)
            .into_iter()
            .filter(|f| f.starts_with("cdu/2026-01-02/"))
            .collect()
    };
    let inputs = day1(dir.path());
    assert_eq!(inputs.len(), 4);
    let before = scan_all(&store, "cdu");
    assert_eq!(before.height(), 33);

    // Noon of 2026-01-02: only 2026-01-01 is closed, and it has one file already;
    // 2026-01-02 is open but past compact_max_files (3).
    let report = store.maintain(DAY0 + DAY + DAY / 2).unwrap();
    assert_eq!(report.compacted, 1, "{report:?}");
    assert_eq!(report.files_merged, 4);
    let merged = day1(dir.path());
    assert_eq!(merged.len(), 1, "{merged:?}");
    // The merged file's WAL range spans its inputs'.
    let range = |f: &str| f[f.len() - 49..f.len() - 8].to_owned();
    assert_eq!(
        range(&merged[0]),
        format!("{}-{}", &range(&inputs[0])[..20], &range(&inputs[3])[21..])
    );
    assert_frames_equal(&scan_all(&store, "cdu"), &before);

    // A late point for the closed 2026-01-01, then the day closes for good.
    store
        .write(&[Point::new("cdu", DAY0 + 30 * SEC).field("v", -1.0)])
        .unwrap();
    store.flush().unwrap();
    let day0 = |dir: &Path| {
        parquet_files(dir)
            .into_iter()
            .filter(|f| f.starts_with("cdu/2026-01-01/"))
            .count()
    };
    assert_eq!(day0(dir.path()), 2);
    let report = store.maintain(DAY0 + 3 * DAY + 2 * 3600 * SEC).unwrap();
    assert_eq!(report.compacted, 1, "{report:?}");
    assert_eq!(day0(dir.path()), 1);
    assert_eq!(parquet_files(dir.path()).len(), 4, "one file per partition");
    let after = scan_all(&store, "cdu");
    assert_eq!(after.height(), 34);
    assert_eq!(store.stats().compactions, 2);

    // The same rows after a restart.
    drop(store);
    let store = open(dir.path());
    assert_frames_equal(&scan_all(&store, "cdu"), &after);
    assert_eq!(store.stats().rows_in_files, 35);
}

#[test]
fn an_interrupted_compaction_is_finished_on_open_without_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    for k in 0..3 {
        store
            .write(&[Point::new("m", DAY0 + k).field("v", k)])
            .unwrap();
        store.flush().unwrap();
    }
    let before = scan_all(&store, "m");
    let part = dir.path().join("data/m/2026-01-01");
    let saved = tempfile::tempdir().unwrap();
    for f in std::fs::read_dir(&part).unwrap() {
        let f = f.unwrap();
        std::fs::copy(f.path(), saved.path().join(f.file_name())).unwrap();
    }
    store.maintain(DAY0 + 2 * DAY).unwrap();
    assert_eq!(parquet_files(dir.path()).len(), 1);
    drop(store);

    // As if killed after the merged file was renamed in, before its inputs were
    // deleted; and with a file half written.
    for f in std::fs::read_dir(saved.path()).unwrap() {
        let f = f.unwrap();
        std::fs::copy(f.path(), part.join(f.file_name())).unwrap();
    }
    std::fs::write(
        part.join(".part-00000000000000000009-00000000000000000009.parquet.tmp"),
        b"PAR1 torn",
    )
    .unwrap();
    assert_eq!(parquet_files(dir.path()).len(), 4);

    let store = open(dir.path());
    assert_frames_equal(&scan_all(&store, "m"), &before);
    assert_eq!(parquet_files(dir.path()).len(), 1, "inputs removed on open");
    assert_eq!(
        std::fs::read_dir(&part).unwrap().count(),
        1,
        "temporary file removed"
    );
}

#[test]
fn retention_removes_the_day_partitions_older_than_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(EmbeddedConfig {
        retention_days: Some(2),
        ..manual(dir.path())
    })
    .unwrap();
    for d in 0..6 {
        store
            .write(&[
                Point::new("m", DAY0 + d * DAY + 12 * 3600 * SEC).field("day", d),
                Point::new("n", DAY0 + d * DAY).field("day", d),
            ])
            .unwrap();
    }
    store.flush().unwrap();
    assert_eq!(parquet_files(dir.path()).len(), 12);

    // An hour into 2026-01-06 (day 5): days 3, 4 and 5 stay.
    let report = store.maintain(DAY0 + 5 * DAY + 3600 * SEC).unwrap();
    assert_eq!(report.expired, 6, "{report:?}");
    for m in ["m", "n"] {
        let days: Vec<i64> = scan_all(&store, m)
            .column("day")
            .unwrap()
            .i64()
            .unwrap()
            .into_no_null_iter()
            .collect();
        assert_eq!(days, [3, 4, 5], "{m}");
    }
    assert!(!dir.path().join("data/m/2026-01-03").exists());
    assert!(dir.path().join("data/m/2026-01-04").is_dir());
    assert_eq!(store.stats().partitions_expired, 6);
    assert_eq!(store.stats().partitions, 6);
}

/// 4 devices in 2 zones, every 10 minutes for 3 days; `v` missing on every 5th row.
/// time, device, site, kw, seq.
type GridRow = (i64, String, String, Option<f64>, i64);

fn write_grid(store: &EmbeddedStore) -> Vec<GridRow> {
    let mut rows = Vec::new();
    let mut points = Vec::new();
    for k in 0..(3 * 144) {
        for d in 0..4 {
            let t = DAY0 + k * 600 * SEC;
            let id = k * 4 + d;
            let device = format!("d{d}");
            let zone = if d < 2 { "a" } else { "b" }.to_owned();
            let v = (id % 5 != 0).then_some(id as f64 / 8.0);
            let mut p = Point::new("rack", t)
                .tag("device", device.clone())
                .tag("zone", zone.clone())
                .field("id", id);
            if let Some(v) = v {
                p.add_field("v", v);
            }
            points.push(p);
            rows.push((t, device, zone, v, id));
        }
    }
    store.write(&points).unwrap();
    rows
}

/// The rows of a frame of `rack`, by their time (ns) and device.
fn keys(df: &DataFrame) -> BTreeSet<(i64, String)> {
    let time = df.column("time").unwrap().cast(&DataType::Int64).unwrap();
    let device = df.column("device").unwrap().str().unwrap().clone();
    time.i64()
        .unwrap()
        .into_no_null_iter()
        .zip(device.iter().map(|d| d.unwrap().to_owned()))
        .collect()
}

#[test]
fn time_range_and_tag_filters_return_exactly_the_matching_rows() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let rows = write_grid(&store);
    store.flush().unwrap();
    let from = DAY0 + DAY + 3 * 3600 * SEC;
    let to = DAY0 + DAY + 9 * 3600 * SEC;

    let check = |scan: Scan, keep: &dyn Fn(&GridRow) -> bool| {
        let df = store.scan(&scan).unwrap().collect().unwrap();
        let expected: BTreeSet<(i64, String)> = rows
            .iter()
            .filter(|r| keep(r))
            .map(|r| (r.0, r.1.clone()))
            .collect();
        assert!(!expected.is_empty());
        assert_eq!(keys(&df), expected, "{scan:?}");
        assert_eq!(df.height(), expected.len(), "no duplicates: {scan:?}");
        df
    };
    let in_range = |r: &GridRow| r.0 >= from && r.0 < to;
    check(Scan::new("rack", from..to), &in_range);
    check(Scan::new("rack", from..to).tag("device", "d1"), &|r| {
        in_range(r) && r.1 == "d1"
    });
    check(
        Scan::new("rack", from..to)
            .tag("device", "d1")
            .tag("device", "d2")
            .tag("zone", "a"),
        &|r| in_range(r) && (r.1 == "d1" || r.1 == "d2") && r.2 == "a",
    );
    // The end is excluded, the start included: a range of one timestamp.
    check(Scan::new("rack", from..from + 1), &|r| r.0 == from);
    // A field selection keeps time and tags, and drops rows where `v` is null.
    let df = check(Scan::new("rack", from..to).fields(["v"]), &|r| {
        in_range(r) && r.3.is_some()
    });
    let names: Vec<String> = df
        .get_column_names()
        .iter()
        .map(|n| n.to_string())
        .collect();
    assert_eq!(names, ["time", "device", "zone", "v"]);

    // A tag the measurement lacks matches nothing; a field is not a tag.
    let none = store
        .scan(&Scan::new("rack", from..to).tag("rack", "r1"))
        .unwrap()
        .collect()
        .unwrap();
    assert_eq!(none.height(), 0);
    assert!(matches!(
        store.scan(&Scan::new("rack", from..to).tag("v", "1")),
        Err(StoreError::InvalidScan(_))
    ));
    // An unknown measurement: no rows, only `time`.
    let unknown = store
        .scan(&Scan::new("nothing", from..to))
        .unwrap()
        .collect()
        .unwrap();
    assert_eq!(unknown.height(), 0);
    assert_eq!(unknown.width(), 1);
}

#[test]
fn filters_are_pushed_into_the_parquet_scan_of_the_days_in_range() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    write_grid(&store);
    store.flush().unwrap();
    assert_eq!(parquet_files(dir.path()).len(), 3);

    let one_day =
        Scan::new("rack", DAY0 + DAY + 3600 * SEC..DAY0 + DAY + 7200 * SEC).tag("device", "d3");
    // polars shows files opened by the store (a snapshot that a compaction cannot
    // take away) as `open-file`, one per file in the scan.
    let plan = store.scan(&one_day).unwrap().explain(true).unwrap();
    println!("{plan}");
    let scan = &plan[plan
        .find("Parquet SCAN")
        .expect("a Parquet scan in the plan")..];
    assert!(
        scan.starts_with("Parquet SCAN [open-file]\n"),
        "only the partition of the day in range is opened:\n{plan}"
    );
    let selection = scan
        .lines()
        .find(|l| l.trim_start().starts_with("SELECTION:"))
        .unwrap_or_else(|| panic!("no predicate pushed into the scan:\n{plan}"));
    assert!(
        selection.contains("device") && selection.contains("d3") && selection.contains("time"),
        "the tag and time filters are in the scan's predicate:\n{plan}"
    );
    assert!(
        !plan[..plan.find("Parquet SCAN").unwrap()].contains("FILTER"),
        "no filter left above the scan:\n{plan}"
    );

    let two_days = Scan::new("rack", DAY0 + DAY / 2..DAY0 + DAY + 1);
    let plan = store.scan(&two_days).unwrap().explain(true).unwrap();
    assert!(
        plan.contains("Parquet SCAN [open-file, open-file]\n"),
        "{plan}"
    );
    let all = Scan::new("rack", i64::MIN..i64::MAX);
    let plan = store.scan(&all).unwrap().explain(true).unwrap();
    assert!(
        plan.contains("Parquet SCAN [open-file, ... 2 other sources]\n"),
        "{plan}"
    );
}

#[test]
fn rows_not_yet_flushed_are_visible_exactly_once_also_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let point = |k: i64| Point::new("m", DAY0 + k * SEC).tag("s", "x").field("k", k);
    store
        .write(&(0..10).map(point).collect::<Vec<_>>())
        .unwrap();
    store.flush().unwrap();
    store
        .write(&(10..25).map(point).collect::<Vec<_>>())
        .unwrap();
    assert_eq!(store.stats().pending_points, 15);
    let ks = |store: &EmbeddedStore| -> Vec<i64> {
        scan_all(store, "m")
            .column("k")
            .unwrap()
            .i64()
            .unwrap()
            .into_no_null_iter()
            .collect()
    };
    assert_eq!(ks(&store), (0..25).collect::<Vec<_>>());
    // Filters apply to the rows in memory too.
    let df = store
        .scan(&Scan::new("m", DAY0 + 8 * SEC..DAY0 + 12 * SEC))
        .unwrap()
        .collect()
        .unwrap();
    assert_eq!(df.height(), 4);

    // Dropped without a flush: the 15 rows are only in the write-ahead log.
    drop(store);
    let store = open(dir.path());
    assert_eq!(store.stats().points_replayed, 15);
    assert_eq!(ks(&store), (0..25).collect::<Vec<_>>());
    store.flush().unwrap();
    assert_eq!(ks(&store), (0..25).collect::<Vec<_>>());
    let stats = store.stats();
    assert_eq!((stats.pending_points, stats.rows_in_files), (0, 25));
}

#[test]
fn a_second_process_cannot_open_the_same_store() {
    let dir = tempfile::tempdir().unwrap();
    let _store = open(dir.path());
    assert!(matches!(
        EmbeddedStore::open(manual(dir.path())),
        Err(StoreError::Wal(_))
    ));
}

#[test]
fn the_background_thread_flushes_on_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(EmbeddedConfig {
        flush_interval: std::time::Duration::from_millis(50),
        ..EmbeddedConfig::in_dir(dir.path())
    })
    .unwrap();
    store
        .write(&[Point::new("m", DAY0).field("v", 1.0)])
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while store.stats().rows_in_files == 0 {
        assert!(std::time::Instant::now() < deadline, "no flush within 10 s");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(store.stats().pending_points, 0);
    assert_eq!(parquet_files(dir.path()).len(), 1);
}
