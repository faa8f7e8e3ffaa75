//! Where collected points go: the [`PointSink`] both collectors write to, and the
//! [`Tee`] that hands accepted batches to in-process consumers.
//!
//! A sink's [`PointSink::write`] resolves once the points are *accepted*: for the
//! embedded store, written and synced to its write-ahead file; for InfluxDB, in the
//! disk spool; for the bounded channel implementation here (tests, simple wiring),
//! enqueued. The MQTT collector acknowledges a message to the broker only after the
//! write of its points resolved `Ok`, so a crash between receipt and acceptance makes
//! the broker deliver the message again instead of losing it.
//!
//! A refused write gives the points back ([`WriteError::points`]) so the caller can
//! retry without having cloned them: [`SinkError::Unavailable`] is worth retrying
//! (disk full, store busy), [`SinkError::Closed`] is not (the consumer is gone; the
//! collector stops).
//!
//! The command line implements [`PointSink`] over the storage crate's store or spool;
//! this crate does not depend on storage.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tidewatch_model::Point;
use tokio::sync::{broadcast, mpsc};

/// What a sink's write resolves to.
pub type SinkFuture<'a> = Pin<Box<dyn Future<Output = Result<(), WriteError>> + Send + 'a>>;

/// A destination for point batches that says when they are durably accepted.
pub trait PointSink: Send + Sync {
    /// Accept `points`: resolves `Ok` once they are durable (synced to the store's
    /// write-ahead file, in the spool, ...), or gives them back with the reason.
    fn write(&self, points: Vec<Point>) -> SinkFuture<'_>;
}

/// Why a sink did not accept a batch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SinkError {
    /// The sink is gone for good (its consumer ended): stop writing.
    #[error("the sink is closed")]
    Closed,
    /// The sink cannot accept now (disk full, store busy, ...): retry later.
    #[error("the sink is unavailable: {0}")]
    Unavailable(String),
}

/// A refused write: the reason, and the batch given back for a retry.
#[derive(Debug, thiserror::Error)]
#[error("{error} ({} points not accepted)", points.len())]
pub struct WriteError {
    pub error: SinkError,
    pub points: Vec<Point>,
}

impl WriteError {
    /// A refused write of `points` for `error`.
    pub fn new(error: SinkError, points: Vec<Point>) -> WriteError {
        WriteError { error, points }
    }
}

/// A bounded channel is a sink: a batch is accepted once it is enqueued (a full
/// channel makes the write wait). For tests, and for wiring a consumer task that does
/// its own durability.
impl PointSink for mpsc::Sender<Vec<Point>> {
    fn write(&self, points: Vec<Point>) -> SinkFuture<'_> {
        Box::pin(async move {
            self.send(points)
                .await
                .map_err(|mpsc::error::SendError(points)| {
                    WriteError::new(SinkError::Closed, points)
                })
        })
    }
}

impl<S: PointSink + ?Sized> PointSink for Arc<S> {
    fn write(&self, points: Vec<Point>) -> SinkFuture<'_> {
        (**self).write(points)
    }
}

impl<S: PointSink + ?Sized> PointSink for Box<S> {
    fn write(&self, points: Vec<Point>) -> SinkFuture<'_> {
        (**self).write(points)
    }
}

/// A sink in front of another that also publishes every *accepted* batch on a
/// [`tokio::sync::broadcast`] channel, for in-process consumers (the live cache, the
/// alert engine).
///
/// The durable sink always comes first and is never slowed down by a consumer: the
/// broadcast is lossy. A consumer that falls more than `capacity` batches behind
/// loses the oldest ones; [`TeeReceiver::recv`] skips over the gap and counts the lost
/// batches in [`Tee::lagged`] (shared by every receiver). With no receiver, nothing
/// is copied.
pub struct Tee<S> {
    inner: S,
    tx: broadcast::Sender<Arc<Vec<Point>>>,
    lagged: Arc<AtomicU64>,
}

impl<S: PointSink> Tee<S> {
    /// A tee in front of `inner` keeping up to `capacity` batches for slow consumers.
    pub fn new(inner: S, capacity: usize) -> Tee<S> {
        let (tx, _) = broadcast::channel(capacity.max(1));
        Tee {
            inner,
            tx,
            lagged: Arc::default(),
        }
    }

    /// A new consumer: it receives every batch accepted from now on (as long as it
    /// keeps up).
    pub fn subscribe(&self) -> TeeReceiver {
        TeeReceiver {
            rx: self.tx.subscribe(),
            lagged: self.lagged.clone(),
        }
    }

    /// Batches lost by slow consumers so far, over all receivers.
    pub fn lagged(&self) -> u64 {
        self.lagged.load(Ordering::Relaxed)
    }
}

impl<S: PointSink> PointSink for Tee<S> {
    fn write(&self, points: Vec<Point>) -> SinkFuture<'_> {
        Box::pin(async move {
            let copy = (self.tx.receiver_count() > 0).then(|| Arc::new(points.clone()));
            self.inner.write(points).await?;
            if let Some(copy) = copy {
                // No receiver left since: nothing to do.
                let _ = self.tx.send(copy);
            }
            Ok(())
        })
    }
}

/// One consumer of a [`Tee`].
pub struct TeeReceiver {
    rx: broadcast::Receiver<Arc<Vec<Point>>>,
    lagged: Arc<AtomicU64>,
}

impl TeeReceiver {
    /// The next accepted batch; `None` once the tee is dropped. Batches lost because
    /// this consumer fell behind are skipped and counted.
    pub async fn recv(&mut self) -> Option<Arc<Vec<Point>>> {
        loop {
            match self.rx.recv().await {
                Ok(batch) => return Some(batch),
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    self.lagged.fetch_add(n, Ordering::Relaxed);
                    tracing::warn!(
                        lost = n,
                        "in-process consumer of collected points fell behind; batches skipped"
                    );
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(i: i64) -> Vec<Point> {
        vec![Point::new("m", i).field("v", i)]
    }

    #[tokio::test]
    async fn channel_sink_accepts_until_closed() {
        let (tx, mut rx) = mpsc::channel(2);
        tx.write(batch(1)).await.unwrap();
        assert_eq!(rx.recv().await.unwrap(), batch(1));
        drop(rx);
        let err = tx.write(batch(2)).await.unwrap_err();
        assert_eq!(err.error, SinkError::Closed);
        assert_eq!(err.points, batch(2), "the batch is given back");
    }

    #[tokio::test]
    async fn tee_passes_accepted_batches_and_counts_lag() {
        let (tx, mut rx) = mpsc::channel(100);
        let tee = Tee::new(tx, 2);
        // No consumer: nothing kept.
        tee.write(batch(0)).await.unwrap();
        let mut consumer = tee.subscribe();
        for i in 1..=5 {
            tee.write(batch(i)).await.unwrap();
        }
        for i in 0..=5 {
            assert_eq!(rx.recv().await.unwrap(), batch(i), "durable sink gets all");
        }
        // Capacity 2: batches 1-3 are lost to the slow consumer, 4 and 5 arrive.
        assert_eq!(*consumer.recv().await.unwrap(), batch(4));
        assert_eq!(*consumer.recv().await.unwrap(), batch(5));
        assert_eq!(tee.lagged(), 3);
        drop(rx);
        // A refused write is not broadcast.
        assert!(tee.write(batch(6)).await.is_err());
        drop(tee);
        assert!(consumer.recv().await.is_none());
    }
}
