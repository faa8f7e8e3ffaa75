//! Group commit for many concurrent writers: one thread takes every write waiting and
//! hands them to [`EmbeddedStore::write`] as one call, so they share one WAL record
//! and one `fdatasync`.
//!
//! Why: the collectors write each device's poll as a batch of its own, hundreds per
//! second at a park's scale. Written one by one, each costs a sync, and each waits on
//! a thread of its own for the one before it (the demo grew 300 blocking threads for
//! it). Grouped, a burst of writes costs one sync and one thread.
//!
//! A write resolves once its points are accepted (synced in the WAL), as
//! [`EmbeddedStore::write`] does. Points the store refuses (a field type conflict, a
//! name too long) are refused per point and do not fail the other writes of the
//! group. When the store cannot take the group (its WAL full, a disk error), every
//! write of the group fails with the reason and gets its own points back, to retry.

use std::sync::mpsc;
use std::thread::JoinHandle;

use tidewatch_model::Point;

use super::{Accepted, EmbeddedStore};

/// Most points handed to the store in one call: a group larger than this waits for
/// the next call (one WAL record is kept well below the log's size).
pub const DEFAULT_GROUP_MAX_POINTS: usize = 50_000;

/// A write the store could not take: why, and the points to retry.
#[derive(Debug)]
pub struct GroupWriteError {
    pub reason: String,
    pub points: Vec<Point>,
    /// The writer thread is gone (only after a bug in it): retrying is useless, and
    /// a write it took with it was not accepted (its points are not given back).
    pub writer_stopped: bool,
}

struct Request {
    points: Vec<Point>,
    reply: tokio::sync::oneshot::Sender<Result<Accepted, GroupWriteError>>,
}

/// A handle on the group-commit thread of one store; clones share the thread, which
/// ends once every handle is dropped.
#[derive(Clone)]
pub struct GroupWriter {
    requests: mpsc::Sender<Request>,
}

impl GroupWriter {
    /// Starts the thread that writes into `store`, grouping at most `max_points`
    /// points per call (a single larger write goes alone).
    pub fn start(store: EmbeddedStore, max_points: usize) -> std::io::Result<GroupWriter> {
        let (requests, queue) = mpsc::channel::<Request>();
        let _thread: JoinHandle<()> = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || run(&store, &queue, max_points.max(1)))?;
        Ok(GroupWriter { requests })
    }

    /// Writes `points` with whatever other writes are waiting; resolves once they are
    /// accepted (what the store refused is in [`Accepted::refused`], indexed into
    /// `points`), or with the points given back.
    pub async fn write(&self, points: Vec<Point>) -> Result<Accepted, GroupWriteError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        if let Err(mpsc::SendError(request)) = self.requests.send(Request { points, reply }) {
            return Err(GroupWriteError {
                reason: "the store's writer thread has stopped".into(),
                points: request.points,
                writer_stopped: true,
            });
        }
        answer.await.unwrap_or_else(|_| {
            // The thread died with the points (it never panics on a store error: a
            // panic inside the store is caught and answered); nothing was accepted.
            Err(GroupWriteError {
                reason: "the store's writer thread has stopped".into(),
                points: Vec::new(),
                writer_stopped: true,
            })
        })
    }
}

/// The thread: wait for a write, take every other one waiting (up to `max_points`),
/// write them as one call, answer each.
fn run(store: &EmbeddedStore, queue: &mpsc::Receiver<Request>, max_points: usize) {
    let mut carried: Option<Request> = None;
    loop {
        let first = match carried.take() {
            Some(request) => request,
            None => match queue.recv() {
                Ok(request) => request,
                Err(mpsc::RecvError) => return,
            },
        };
        let mut group = vec![first];
        let mut total = group[0].points.len();
        while total < max_points {
            match queue.try_recv() {
                Ok(request) if total + request.points.len() > max_points => {
                    carried = Some(request);
                    break;
                }
                Ok(request) => {
                    total += request.points.len();
                    group.push(request);
                }
                Err(_) => break,
            }
        }
        write_group(store, group, total);
    }
}

fn write_group(store: &EmbeddedStore, group: Vec<Request>, total: usize) {
    let mut lens = Vec::with_capacity(group.len());
    let mut replies = Vec::with_capacity(group.len());
    let mut points = Vec::with_capacity(total);
    for mut request in group {
        lens.push(request.points.len());
        points.append(&mut request.points);
        replies.push(request.reply);
    }
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| store.write(&points)));
    match result {
        Ok(Ok(accepted)) => {
            // The refused points of each write, indexed into its own points.
            let mut refused = accepted.refused.into_iter().peekable();
            let mut start = 0;
            for (len, reply) in lens.into_iter().zip(replies) {
                let mut mine = Vec::new();
                while let Some(r) = refused.next_if(|r| r.index < start + len) {
                    mine.push(super::Refused {
                        index: r.index - start,
                        reason: r.reason,
                    });
                }
                let _ = reply.send(Ok(Accepted {
                    points: len - mine.len(),
                    refused: mine,
                }));
                start += len;
            }
        }
        Ok(Err(error)) => give_back(error.to_string(), points, lens, replies),
        Err(_) => give_back("a store write panicked".into(), points, lens, replies),
    }
}

/// Every write of a failed group gets its own points back.
fn give_back(
    reason: String,
    mut points: Vec<Point>,
    lens: Vec<usize>,
    replies: Vec<tokio::sync::oneshot::Sender<Result<Accepted, GroupWriteError>>>,
) {
    // Split from the end, so each split moves only the write's own points.
    let mut parts = Vec::with_capacity(lens.len());
    for len in lens.iter().rev() {
        let tail = points.split_off(points.len() - len);
        parts.push(tail);
    }
    for (reply, own) in replies.into_iter().zip(parts.into_iter().rev()) {
        let _ = reply.send(Err(GroupWriteError {
            reason: reason.clone(),
            points: own,
            writer_stopped: false,
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::embedded::EmbeddedConfig;
    use crate::store::Scan;
    use tidewatch_model::FieldValue;

    fn point(device: usize, i: i64) -> Point {
        Point::new("pdu", 1_700_000_000_000_000_000 + i * 1_000_000_000)
            .tag("device", format!("d{device}"))
            .field("power_w", 100.0 + i as f64)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_writes_are_all_stored_and_refusals_stay_with_their_write() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(EmbeddedConfig::in_dir(dir.path())).unwrap();
        let writer = GroupWriter::start(store.clone(), 1_000).unwrap();
        let mut tasks = Vec::new();
        for device in 0..50 {
            let writer = writer.clone();
            tasks.push(tokio::spawn(async move {
                let mut accepted = 0;
                for round in 0..20 {
                    let mut points: Vec<Point> =
                        (0..5).map(|k| point(device, round * 5 + k)).collect();
                    if device == 7 && round == 3 {
                        // A field of another type: refused, this write's index 2.
                        points[2] = Point::new("pdu", 1)
                            .tag("device", "d7")
                            .field("power_w", FieldValue::String("high".into()));
                    }
                    let result = writer.write(points).await.unwrap();
                    if device == 7 && round == 3 {
                        assert_eq!(result.points, 4);
                        assert_eq!(result.refused.len(), 1);
                        assert_eq!(result.refused[0].index, 2);
                    } else {
                        assert_eq!(result.points, 5);
                        assert!(result.refused.is_empty());
                    }
                    accepted += result.points;
                }
                accepted
            }));
        }
        let mut accepted = 0;
        for t in tasks {
            accepted += t.await.unwrap();
        }
        assert_eq!(accepted, 50 * 20 * 5 - 1);
        let stats = store.stats();
        assert_eq!(stats.points_accepted, accepted as u64);
        assert_eq!(stats.points_refused, 1);
        let frame = tokio::task::spawn_blocking(move || {
            store
                .scan(&Scan::new("pdu", i64::MIN..i64::MAX))
                .unwrap()
                .collect()
                .unwrap()
        })
        .await
        .unwrap();
        assert_eq!(frame.height(), accepted);
    }

    #[test]
    fn a_failed_group_gives_each_write_its_own_points_back() {
        let (a, mut answer_a) = tokio::sync::oneshot::channel();
        let (b, mut answer_b) = tokio::sync::oneshot::channel();
        let (c, mut answer_c) = tokio::sync::oneshot::channel();
        let points: Vec<Point> = (0..6).map(|i| point(0, i)).collect();
        give_back("WAL full".into(), points, vec![2, 0, 4], vec![a, b, c]);
        let times = |answer: Result<Accepted, GroupWriteError>| -> Vec<i64> {
            let err = answer.unwrap_err();
            assert_eq!(err.reason, "WAL full");
            assert!(!err.writer_stopped, "a full WAL is worth a retry");
            err.points
                .iter()
                .map(|p| (p.timestamp_ns() - 1_700_000_000_000_000_000) / 1_000_000_000)
                .collect()
        };
        assert_eq!(times(answer_a.try_recv().unwrap()), [0, 1]);
        assert_eq!(times(answer_b.try_recv().unwrap()), Vec::<i64>::new());
        assert_eq!(times(answer_c.try_recv().unwrap()), [2, 3, 4, 5]);
    }

    #[tokio::test]
    async fn a_stopped_writer_gives_the_points_back_and_says_so() {
        let (requests, queue) = mpsc::channel();
        drop(queue);
        let writer = GroupWriter { requests };
        let err = writer
            .write(vec![point(0, 0), point(0, 1)])
            .await
            .unwrap_err();
        assert!(err.writer_stopped);
        assert_eq!(err.points.len(), 2);
    }
}
