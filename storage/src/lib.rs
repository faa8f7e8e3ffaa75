//! Storage: where points go after the collectors and the simulator made them, and
//! where analytics and dashboards read them back.
//!
//! Remote sinks (InfluxDB over HTTP) sit behind a disk [`spool`]: a batch counts as
//! accepted only once it is appended to a CRC-checked segment file and synced, and it
//! is removed only after the server confirmed it. Nothing accepted is lost to a server
//! outage, a slow server or a crash. The [`influx`] writer is that remote sink: points
//! -> line protocol -> batches -> spool -> HTTP `/write` or `/api/v2/write` with a
//! retry policy -> acknowledged in the spool.
//!
//! With no InfluxDB configured, points go to the [`embedded`] store instead: the same
//! spool serves as its write-ahead log (accepted = synced there), and a background
//! flush turns what waits there into Parquet files partitioned by measurement and UTC
//! day, written with polars, compacted to one file per partition when a day closes and
//! deleted after the retention; its on-disk layout is owned and documented by
//! [`embedded::layout`]. Reading back goes through one interface, [`store::Store`]
//! (chosen by [`store::StoreConfig`], the embedded store by default): a [`store::Scan`]
//! (measurement, time range, tag filters, fields) comes back as a polars `LazyFrame` in
//! the [`frame`] conventions, whichever store is behind it. The embedded store pushes
//! the filters into its Parquet scan and includes what is not flushed yet; InfluxDB is
//! read with InfluxQL on `/query` as CSV, chunked over long ranges
//! ([`influx::InfluxReader`]).

#[cfg(test)]
mod doc_samples;
pub mod embedded;
mod error;
pub mod frame;
pub mod influx;
pub mod spool;
pub mod store;

pub use error::StoreError;
