//! Storage: where points go after the collectors and the simulator made them.
//!
//! Remote sinks (InfluxDB over HTTP) sit behind a disk [`spool`]: a batch counts as
//! accepted only once it is appended to a CRC-checked segment file and synced, and it
//! is removed only after the server confirmed it. Nothing accepted is lost to a server
//! outage, a slow server or a crash. The [`influx`] writer is that remote sink: points
//! -> line protocol -> batches -> spool -> HTTP `/write` or `/api/v2/write` with a
//! retry policy -> acknowledged in the spool.

pub mod influx;
pub mod spool;
