//! The writer's back half: spool -> request -> send with the retry policy ->
//! acknowledge. One request in flight, in spool order; the spool is acknowledged
//! only once every line of the batch was either confirmed by the server or written
//! to the dead-letter file. The next body is read and compressed, and the previous
//! ones acknowledged, while a request is in flight.

use std::collections::VecDeque;
use std::io::Write as _;
use std::ops::Range;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use flate2::write::GzEncoder;
use flate2::Compression;
use reqwest::header::{AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE, RETRY_AFTER};

use super::config::{Auth, Precision};
use super::disk::{count_lines, unframe_batch};
use super::events::{
    BatchesAcked, InternalEvent, LinesDeadLettered, PartBisected, PartDelivered, PartSplit,
    RequestRetried, RequestSent,
};
use super::policy::{classify, server_message, Action, Backoff, RetryCause};
use super::writer::Shared;
use crate::spool::{Record, SpoolError};

/// The most spooled batches merged into one request (they are also bounded by
/// `batch_max_points` and `batch_max_bytes`).
const MAX_MERGED_BATCHES: usize = 256;

/// While batches stream out, delivered ones are acknowledged in the spool at most
/// this often (and always when the stream pauses). Each acknowledgement is two
/// syncs on the spool's disk, which is often the server's disk too: one per request
/// slowed the server's own WAL syncs. A crash before an acknowledgement sends those
/// batches again: duplicates of the same points, which InfluxDB overwrites.
const ACK_INTERVAL: Duration = Duration::from_secs(1);

/// The shutdown deadline passed: stop, leave the batch in the spool.
struct Aborted;

/// The next request, read from the spool and compressed while the one before it
/// is in flight.
struct Prepared {
    /// The merged line protocol, uncompressed (split in parts if the server asks).
    body: Vec<u8>,
    /// `body` gzipped, when the writer compresses.
    gzipped: Option<Vec<u8>>,
    precision: Precision,
    /// The last spool sequence number in `body`.
    last_seq: u64,
    /// Spooled batches merged into `body`.
    merged: usize,
}

/// The sender task. One request in flight, in spool order; while it is, the next
/// body is read and compressed, and the previous one acknowledged in the spool, so a
/// steady stream pays for neither between two requests. A crash between a delivery
/// and its acknowledgement sends that batch again (a harmless duplicate).
pub(crate) async fn run(shared: Arc<Shared>) {
    let mut abort = shared.abort.subscribe();
    let mut backoff = Backoff::new(
        shared.config.retry_initial_backoff,
        shared.config.retry_max_backoff,
    );
    // Delivered but not yet acknowledged in the spool: (last sequence, batches).
    let mut unacked: Option<(u64, usize)> = None;
    // Read from the spool, not sent yet.
    let mut next: Option<Prepared> = None;
    let mut last_ack = tokio::time::Instant::now();
    loop {
        if *abort.borrow() {
            return;
        }
        let current = match next.take() {
            Some(prepared) => prepared,
            None => {
                let after = unacked.map_or(0, |(seq, _)| seq);
                match prepare(&shared, after).await {
                    Ok(Some(prepared)) => prepared,
                    Ok(None) => {
                        // Idle: settle the acknowledgement before waiting or draining.
                        if let Some(pending) = unacked.take() {
                            unacked = acknowledge(&shared, pending).await;
                            if unacked.is_some() {
                                if pause(&mut abort, Duration::from_secs(1)).await.is_err() {
                                    return;
                                }
                                continue;
                            }
                        }
                        if shared.drain.load(Ordering::SeqCst) {
                            return;
                        }
                        tokio::select! {
                            () = shared.sender_wake.notified() => {}
                            () = tokio::time::sleep(Duration::from_millis(500)) => {}
                            _ = abort.wait_for(|&a| a) => return,
                        }
                        continue;
                    }
                    Err(error) => {
                        tracing::error!(%error, "influx writer: cannot read the spool; trying again in 1 s");
                        if pause(&mut abort, Duration::from_secs(1)).await.is_err() {
                            return;
                        }
                        continue;
                    }
                }
            }
        };
        let ack_due = last_ack.elapsed() >= ACK_INTERVAL;
        let (delivered, prepared, still_unacked) = tokio::join!(
            deliver(&shared, &current, &mut backoff, &mut abort),
            prepare(&shared, current.last_seq),
            async {
                match unacked.take() {
                    Some(pending) if ack_due => acknowledge(&shared, pending).await,
                    other => other,
                }
            },
        );
        if ack_due {
            last_ack = tokio::time::Instant::now();
        }
        if delivered.is_err() {
            return;
        }
        // Acknowledgements are cumulative: one that failed is covered by this one.
        let merged = current.merged + still_unacked.map_or(0, |(_, merged)| merged);
        unacked = Some((current.last_seq, merged));
        // A spool read that failed is tried again from the top of the loop.
        next = prepared.ok().flatten();
    }
}

/// Acknowledges up to `pending`'s sequence number in the spool; gives `pending` back
/// when that failed (the next acknowledgement covers it, or the batch is sent again
/// after a restart).
async fn acknowledge(shared: &Arc<Shared>, pending: (u64, usize)) -> Option<(u64, usize)> {
    let (seq, merged) = pending;
    match blocking(shared, move |spool| spool.ack(seq)).await {
        Ok(()) => {
            BatchesAcked { count: merged }.emit(&shared.stats);
            None
        }
        Err(error) => {
            tracing::error!(%error, "influx writer: cannot acknowledge in the spool; trying again with the next batch");
            Some(pending)
        }
    }
}

/// Reads the spooled batches after sequence number `after` (0: the oldest
/// unacknowledged), merges them into one body and compresses it, off the async
/// threads. `None` when there is nothing to send.
async fn prepare(shared: &Arc<Shared>, after: u64) -> Result<Option<Prepared>, SpoolError> {
    let max_points = shared.config.batch_max_points;
    let max_bytes = shared.config.batch_max_bytes;
    let gzip = shared.target.gzip;
    blocking(shared, move |spool| {
        // One record at a time: the merge stops at `max_points` or a precision
        // change, and reading records that are not used would be wasted disk reads.
        let mut records = Vec::new();
        let mut points = 0;
        let mut bytes = 0;
        let mut last = after;
        let mut precision = None;
        while records.len() < MAX_MERGED_BATCHES {
            let Some(record) = spool.peek_after(last, 1, usize::MAX)?.pop() else {
                break;
            };
            let batch = unframe_batch(&record.payload);
            if precision.is_some_and(|p| p != batch.precision)
                || (!records.is_empty()
                    && (points + batch.points > max_points
                        || bytes + batch.lines.len() > max_bytes))
            {
                break;
            }
            precision = Some(batch.precision);
            points += batch.points;
            bytes += batch.lines.len();
            last = record.seq;
            records.push(record);
        }
        if records.is_empty() {
            return Ok(None);
        }
        let (body, precision, last_seq, merged) = merge(&records, max_points);
        let gzipped = gzip.then(|| encode_body(&body, true));
        Ok(Some(Prepared {
            body,
            gzipped,
            precision,
            last_seq,
            merged,
        }))
    })
    .await
}

/// Runs a spool call off the async threads (the spool does blocking file I/O).
async fn blocking<T: Send + 'static>(
    shared: &Arc<Shared>,
    call: impl FnOnce(&crate::spool::Spool) -> Result<T, SpoolError> + Send + 'static,
) -> Result<T, SpoolError> {
    let spool = shared.spool.clone();
    tokio::task::spawn_blocking(move || call(&spool))
        .await
        .expect("spool calls do not panic")
}

/// Merges the oldest spooled batches, of one precision, up to `max_points` (at least
/// one batch): the body, its precision, the last sequence number and the count.
fn merge(records: &[Record], max_points: usize) -> (Vec<u8>, Precision, u64, usize) {
    let first = unframe_batch(&records[0].payload);
    let precision = first.precision;
    let mut body = Vec::new();
    let mut points = 0;
    let mut last_seq = records[0].seq;
    let mut merged = 0;
    for record in records {
        let batch = unframe_batch(&record.payload);
        if merged > 0 && (batch.precision != precision || points + batch.points > max_points) {
            break;
        }
        body.extend_from_slice(batch.lines);
        if body.last().is_some_and(|&b| b != b'\n') {
            body.push(b'\n');
        }
        points += batch.points;
        last_seq = record.seq;
        merged += 1;
    }
    (body, precision, last_seq, merged)
}

/// Waits `wait`, or returns `Err` at an abort.
async fn pause(
    abort: &mut tokio::sync::watch::Receiver<bool>,
    wait: Duration,
) -> Result<(), Aborted> {
    tokio::select! {
        () = tokio::time::sleep(wait) => Ok(()),
        _ = abort.wait_for(|&a| a) => Err(Aborted),
    }
}

/// The server's answer, read whole.
struct Answer {
    status: u16,
    retry_after: Option<String>,
    body: Vec<u8>,
}

/// Delivers one body: every line is confirmed by the server or dead-lettered when this
/// returns `Ok`. Parts are worked on in order, so lines arrive in order.
async fn deliver(
    shared: &Shared,
    prepared: &Prepared,
    backoff: &mut Backoff,
    abort: &mut tokio::sync::watch::Receiver<bool>,
) -> Result<(), Aborted> {
    let body = &prepared.body[..];
    let precision = prepared.precision;
    let mut parts: VecDeque<Range<usize>> = VecDeque::new();
    parts.push_back(0..body.len());
    while let Some(range) = parts.pop_front() {
        let part = &body[range.clone()];
        let lines = count_lines(part);
        if lines == 0 {
            continue;
        }
        // The whole body was compressed ahead; parts of a split one are compressed here.
        let request_body = match &prepared.gzipped {
            Some(gzipped) if range.len() == body.len() => gzipped.clone(),
            _ => encode_body(part, shared.target.gzip),
        };
        loop {
            RequestSent.emit(&shared.stats);
            let answer = tokio::select! {
                answer = send(shared, request_body.clone(), precision) => answer,
                _ = abort.wait_for(|&a| a) => return Err(Aborted),
            };
            let (action, status, reason) = match answer {
                Ok(answer) => (
                    classify(
                        answer.status,
                        answer.retry_after.as_deref(),
                        SystemTime::now(),
                    ),
                    Some(answer.status),
                    server_message(&answer.body),
                ),
                Err(error) => {
                    let cause = if error.is_timeout() {
                        RetryCause::Timeout
                    } else {
                        RetryCause::Network
                    };
                    let action = Action::Retry {
                        cause,
                        retry_after: None,
                    };
                    (action, None, error_chain(&error))
                }
            };
            match action {
                Action::Delivered => {
                    PartDelivered { points: lines }.emit(&shared.stats);
                    backoff.reset();
                    break;
                }
                Action::Retry { cause, retry_after } => {
                    // The server's wish when it has one (at least the first step, so a
                    // `Retry-After: 0` cannot spin), else the backoff.
                    let computed = backoff.next_wait();
                    let wait = retry_after
                        .map_or(computed, |w| w.max(shared.config.retry_initial_backoff));
                    RequestRetried {
                        cause,
                        url: &shared.target.display,
                        status,
                        reason: &reason,
                        wait,
                        retry_after: retry_after.is_some(),
                    }
                    .emit(&shared.stats);
                    pause(abort, wait).await?;
                }
                Action::Split | Action::Bisect if lines > 1 => {
                    let mid = range.start + split_point(part, lines / 2);
                    parts.push_front(mid..range.end);
                    parts.push_front(range.start..mid);
                    if action == Action::Split {
                        PartSplit {
                            lines,
                            bytes: part.len(),
                        }
                        .emit(&shared.stats);
                    } else {
                        PartBisected {
                            lines,
                            status: status.unwrap_or_default(),
                            reason: &reason,
                        }
                        .emit(&shared.stats);
                    }
                    break;
                }
                Action::Split | Action::Bisect => {
                    let status = status.unwrap_or_default();
                    let reason = if action == Action::Split {
                        format!("{reason} (a single line larger than the server's body limit)")
                    } else {
                        reason
                    };
                    match shared
                        .dead_letter
                        .append(status, &reason, &shared.target.display, part)
                    {
                        Ok(count) => {
                            LinesDeadLettered {
                                count,
                                status,
                                reason: &reason,
                                file: shared.dead_letter.path(),
                            }
                            .emit(&shared.stats);
                            break;
                        }
                        Err(error) => {
                            // Never acknowledge a refused line that is not on disk.
                            let wait = backoff.next_wait();
                            tracing::error!(
                                file = %shared.dead_letter.path().display(),
                                %error,
                                wait_ms = wait.as_millis() as u64,
                                "influx writer: cannot write the dead-letter file; the refused line \
                                 is kept in the spool and tried again"
                            );
                            pause(abort, wait).await?;
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

/// The byte offset in `part` where its line number `line` starts.
fn split_point(part: &[u8], line: usize) -> usize {
    part.iter()
        .enumerate()
        .filter(|&(_, &b)| b == b'\n')
        .nth(line - 1)
        .map_or(part.len(), |(i, _)| i + 1)
}

fn encode_body(part: &[u8], gzip: bool) -> Vec<u8> {
    if !gzip {
        return part.to_vec();
    }
    let mut encoder = GzEncoder::new(Vec::with_capacity(part.len() / 8), Compression::fast());
    encoder
        .write_all(part)
        .and_then(|()| encoder.finish())
        .expect("compressing into memory cannot fail")
}

async fn send(shared: &Shared, body: Vec<u8>, precision: Precision) -> reqwest::Result<Answer> {
    let mut url = shared.target.endpoint.clone();
    url.query_pairs_mut()
        .append_pair("precision", precision.as_str());
    let mut request = shared
        .client
        .post(url)
        .header(CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(body);
    if shared.target.gzip {
        request = request.header(CONTENT_ENCODING, "gzip");
    }
    request = match &shared.target.auth {
        Auth::None => request,
        Auth::Basic { username, password } => request.basic_auth(username, Some(password.expose())),
        Auth::Token(token) => request.header(AUTHORIZATION, format!("Token {}", token.expose())),
    };
    let response = request.send().await?;
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = response.bytes().await?.to_vec();
    Ok(Answer {
        status,
        retry_after,
        body,
    })
}

/// An error with its causes, for the log (reqwest's own message is terse).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::influx::disk::frame_batch;

    #[test]
    fn split_points_fall_on_line_starts() {
        let part = b"a 1\nbb 2\nccc 3\nd 4\n";
        assert_eq!(split_point(part, 1), 4);
        assert_eq!(split_point(part, 2), 9);
        assert_eq!(&part[..split_point(part, 2)], b"a 1\nbb 2\n");
    }

    #[test]
    fn merging_stops_at_max_points_and_at_a_precision_change() {
        let record = |seq, precision, points: usize| Record {
            seq,
            payload: frame_batch(precision, points, &b"m f=1 1\n".repeat(points)),
        };
        let records = [
            record(1, Precision::Ns, 3),
            record(2, Precision::Ns, 3),
            record(3, Precision::Ns, 3),
            record(4, Precision::Ms, 1),
        ];
        let (body, precision, last, merged) = merge(&records, 6);
        assert_eq!((precision, last, merged), (Precision::Ns, 2, 2));
        assert_eq!(count_lines(&body), 6);
        let (_, _, last, merged) = merge(&records[2..], 100);
        assert_eq!((last, merged), (3, 1), "precision change");
        // A batch larger than the limit still goes, alone.
        let (_, _, last, merged) = merge(&records, 2);
        assert_eq!((last, merged), (1, 1));
    }

    #[test]
    fn gzip_bodies_decompress_to_the_part() {
        use std::io::Read as _;
        let part = b"m f=1 1\n".repeat(100);
        let body = encode_body(&part, true);
        assert!(body.len() < part.len() / 4);
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&body[..])
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, part);
        assert_eq!(encode_body(&part, false), part);
    }
}
