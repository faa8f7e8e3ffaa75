//! The writer's back half: spool -> request -> send with the retry policy ->
//! acknowledge. One batch at a time, in spool order; the spool is acknowledged only
//! once every line of the batch was either confirmed by the server or written to the
//! dead-letter file.

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
use crate::spool::Record;

/// The most spooled batches merged into one request (they are also bounded by
/// `batch_max_points` and `batch_max_bytes`).
const MAX_MERGED_BATCHES: usize = 256;

/// The shutdown deadline passed: stop, leave the batch in the spool.
struct Aborted;

/// The sender task.
pub(crate) async fn run(shared: Arc<Shared>) {
    let mut abort = shared.abort.subscribe();
    let mut backoff = Backoff::new(
        shared.config.retry_initial_backoff,
        shared.config.retry_max_backoff,
    );
    loop {
        if *abort.borrow() {
            return;
        }
        let records = match blocking(&shared, |spool, max_bytes| {
            spool.peek(MAX_MERGED_BATCHES, max_bytes)
        })
        .await
        {
            Ok(records) => records,
            Err(error) => {
                tracing::error!(%error, "influx writer: cannot read the spool; trying again in 1 s");
                if pause(&mut abort, Duration::from_secs(1)).await.is_err() {
                    return;
                }
                continue;
            }
        };
        if records.is_empty() {
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
        let (body, precision, last_seq, merged) = merge(&records, shared.config.batch_max_points);
        if deliver(&shared, &body, precision, &mut backoff, &mut abort)
            .await
            .is_err()
        {
            return;
        }
        match blocking(&shared, move |spool, _| spool.ack(last_seq)).await {
            Ok(()) => BatchesAcked { count: merged }.emit(&shared.stats),
            Err(error) => {
                // Not acknowledged: the batch is sent again (a harmless duplicate).
                tracing::error!(%error, "influx writer: cannot acknowledge in the spool; the batch will be sent again");
                if pause(&mut abort, Duration::from_secs(1)).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// Runs a spool call off the async threads (the spool does blocking file I/O).
async fn blocking<T: Send + 'static>(
    shared: &Arc<Shared>,
    call: impl FnOnce(&crate::spool::Spool, usize) -> Result<T, crate::spool::SpoolError>
        + Send
        + 'static,
) -> Result<T, crate::spool::SpoolError> {
    let spool = shared.spool.clone();
    let max_bytes = shared.config.batch_max_bytes;
    tokio::task::spawn_blocking(move || call(&spool, max_bytes))
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
    body: &[u8],
    precision: Precision,
    backoff: &mut Backoff,
    abort: &mut tokio::sync::watch::Receiver<bool>,
) -> Result<(), Aborted> {
    let mut parts: VecDeque<Range<usize>> = VecDeque::new();
    parts.push_back(0..body.len());
    while let Some(range) = parts.pop_front() {
        let part = &body[range.clone()];
        let lines = count_lines(part);
        if lines == 0 {
            continue;
        }
        let request_body = encode_body(part, shared.config.gzip);
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
    if shared.config.gzip {
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
