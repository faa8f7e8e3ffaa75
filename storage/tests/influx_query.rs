//! Reading back from a real InfluxDB 1.x (`influxd` started by the harness on a free
//! port) with the InfluxQL reader, through the [`Store`] interface: the same points
//! written to InfluxDB and to the embedded store come back as equal frames (same
//! columns, types and values) for every escaping case and every field type 1.x
//! stores, over a range split into many chunks, with tag filters and a field
//! selection.

mod servers;
mod store_common;

use std::time::Duration;

use polars::prelude::*;
use servers::{init_logging, v1_config, Influxd, InfluxdOptions};
use store_common::*;
use tidewatch_model::Point;
use tidewatch_storage::embedded::EmbeddedStore;
use tidewatch_storage::influx::{InfluxReader, InfluxWriter};
use tidewatch_storage::store::{Scan, Store};
use tidewatch_storage::StoreError;

const M: &str = "cdu m,x=\"y\" \\温度'";

/// Every escaping case in the measurement, tag keys and values, field keys and string
/// values; float, integer, boolean and string fields (1.x refuses unsigned ones);
/// spread over three days, so a 1 h chunk length makes ~60 queries.
fn points() -> Vec<Point> {
    let devices = ["cdu 01,a=b", "温度", "it's \"q\" \\ x=1, y", "plain"];
    let mut out = Vec::new();
    for k in 0..240_i64 {
        let t = DAY0 + k * 1200 * SEC + k; // every 20 min and k ns
        let device = devices[(k % 4) as usize];
        let mut p = Point::new(M, t)
            .tag("device", device)
            .field("f", k as f64 / 3.0)
            .field("i", k * 1_000_000_007 - 5);
        if k % 3 == 0 {
            p.add_tag("zone name,=\"x\"", format!("z{}", k % 2));
            p.add_field("b", k % 2 == 0);
        }
        if k % 5 != 0 {
            p.add_field("s k,=\"", format!("say \"hi\" \\ {k}, 温度 x=y\n2nd line"));
        }
        if k % 7 == 0 {
            p.add_field("f", f64::MAX / (k + 1) as f64);
        }
        out.push(p);
    }
    out
}

fn sorted_by_time(df: DataFrame) -> DataFrame {
    sorted(df)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn influxql_reads_back_what_the_embedded_store_reads_back() {
    init_logging();
    let server = Influxd::start(InfluxdOptions::default()).await;
    server.create_database("tw").await;
    let dir = tempfile::tempdir().unwrap();

    let config = v1_config(&server.url(), "tw", dir.path());
    let writer = InfluxWriter::start(config.clone()).await.unwrap();
    let reader = InfluxReader::new(&config)
        .unwrap()
        .with_chunk(Duration::from_secs(3600));
    let influx = Store::Influx {
        writer,
        reader: reader.into(),
    };
    let embedded = Store::Embedded(EmbeddedStore::open(manual(&dir.path().join("store"))).unwrap());

    let points = points();
    for store in [&influx, &embedded] {
        let written = store.write(points.clone()).await.unwrap();
        assert_eq!(written.points, points.len());
        assert_eq!(written.refused, 0);
    }
    let Store::Influx { writer, .. } = &influx else {
        unreachable!()
    };
    writer.flush().await.unwrap();
    assert!(writer.wait_delivered(Duration::from_secs(30)).await);
    assert_eq!(writer.stats().points_dead_lettered, 0);
    // Half of it in Parquet, half still in the embedded store's WAL.
    let Store::Embedded(e) = &embedded else {
        unreachable!()
    };
    e.flush().unwrap();
    e.write(&[Point::new(M, DAY0 - DAY).field("f", 0.5)])
        .unwrap();
    influx
        .write(vec![Point::new(M, DAY0 - DAY).field("f", 0.5)])
        .await
        .unwrap();
    writer.flush().await.unwrap();
    assert!(writer.wait_delivered(Duration::from_secs(30)).await);

    let scans = [
        ("everything", Scan::new(M, DAY0 - 2 * DAY..DAY0 + 4 * DAY)),
        (
            "a range inside the second day, one device",
            Scan::new(M, DAY0 + DAY + 3 * 3600 * SEC..DAY0 + DAY + 20 * 3600 * SEC)
                .tag("device", "it's \"q\" \\ x=1, y"),
        ),
        (
            "two devices and a zone",
            Scan::new(M, DAY0..DAY0 + 3 * DAY)
                .tag("device", "温度")
                .tag("device", "cdu 01,a=b")
                .tag("zone name,=\"x\"", "z0"),
        ),
        (
            "a field selection",
            Scan::new(M, DAY0..DAY0 + 3 * DAY).fields(["b", "s k,=\"", "missing"]),
        ),
        (
            "no match",
            Scan::new(M, DAY0..DAY0 + 3 * DAY).tag("device", "nope"),
        ),
        (
            "unknown tag",
            Scan::new(M, DAY0..DAY0 + 3 * DAY).tag("rack", "r1"),
        ),
        (
            "unknown measurement",
            Scan::new("nothing here", DAY0..DAY0 + DAY),
        ),
    ];
    for (what, scan) in scans {
        let from_influx = sorted_by_time(influx.scan(&scan).await.unwrap().collect().unwrap());
        let from_embedded = sorted_by_time(embedded.scan(&scan).await.unwrap().collect().unwrap());
        println!("{what}: {} rows", from_influx.height());
        assert_frames_equal(&from_influx, &from_embedded);
        if what.starts_with("everything") {
            assert_eq!(from_influx.height(), points.len() + 1);
            assert_eq!(from_influx.width(), 1 + 2 + 4, "time, 2 tags, 4 fields");
        }
        if what.starts_with("a range") || what.starts_with("two") || what.starts_with("a field") {
            assert!(from_influx.height() > 0, "{what}");
        }
    }

    // A field is not a tag, for both.
    let bad = Scan::new(M, DAY0..DAY0 + DAY).tag("f", "1");
    assert!(matches!(
        influx.scan(&bad).await,
        Err(StoreError::InvalidScan(_))
    ));
    assert!(matches!(
        embedded.scan(&bad).await,
        Err(StoreError::InvalidScan(_))
    ));

    influx.shutdown().await.unwrap();
    embedded.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_errors_name_the_server_and_the_statement() {
    init_logging();
    let server = Influxd::start(InfluxdOptions::default()).await;
    let dir = tempfile::tempdir().unwrap();
    // The database does not exist.
    let reader = InfluxReader::new(&v1_config(&server.url(), "missing", dir.path())).unwrap();
    let e = reader
        .read(&Scan::new("m", 0..1_000))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("database not found") && e.contains(&server.url()),
        "{e}"
    );
}
