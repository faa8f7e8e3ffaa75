//! Simulated points into the embedded store in large batches: the demo's backfill and
//! `tidewatch simulate --fast --store`. Each `write` syncs the write-ahead log once,
//! so many simulated steps go into one call.

use anyhow::{bail, Context, Result};
use tidewatch_model::Point;
use tidewatch_storage::embedded::EmbeddedStore;
use tidewatch_storage::StoreError;

/// Points waiting for the store, written once there are [`StoreBatch::POINTS`].
pub struct StoreBatch<'a> {
    store: &'a EmbeddedStore,
    pending: Vec<Point>,
    stored: u64,
}

impl<'a> StoreBatch<'a> {
    /// Points per store write.
    pub const POINTS: usize = 20_000;

    pub fn new(store: &'a EmbeddedStore) -> StoreBatch<'a> {
        StoreBatch {
            store,
            pending: Vec::with_capacity(Self::POINTS + 1_000),
            stored: 0,
        }
    }

    /// Where to append the next points (then call [`StoreBatch::write_if_full`]).
    pub fn pending(&mut self) -> &mut Vec<Point> {
        &mut self.pending
    }

    /// Writes the pending points once there are enough for a batch.
    pub fn write_if_full(&mut self) -> Result<()> {
        if self.pending.len() >= Self::POINTS {
            self.write_pending()?;
        }
        Ok(())
    }

    /// Writes what is pending; returns the points the store accepted in all.
    pub fn finish(mut self) -> Result<u64> {
        self.write_pending()?;
        Ok(self.stored)
    }

    fn write_pending(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        // The generator outruns the background flush: a full write-ahead log is
        // flushed to Parquet here and the batch written again, as any writer told
        // `Full` would do later.
        let accepted = match self.store.write(&self.pending) {
            Err(StoreError::Full(_)) => {
                self.store
                    .flush()
                    .context("flushing a full write-ahead log to Parquet")?;
                self.store.write(&self.pending)
            }
            other => other,
        }
        .with_context(|| format!("writing to the store in {}", self.store.dir().display()))?;
        if let Some(first) = accepted.refused.first() {
            bail!(
                "the store in {} refused {} of {} simulated points; the first (measurement {}): {}",
                self.store.dir().display(),
                accepted.refused.len(),
                self.pending.len(),
                self.pending
                    .get(first.index)
                    .map_or("?", Point::measurement),
                first.reason
            );
        }
        self.stored += accepted.points as u64;
        self.pending.clear();
        Ok(())
    }
}
