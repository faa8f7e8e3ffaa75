//! What the InfluxDB writer puts on disk, besides the spool's own files (whose byte
//! formats are in [`crate::spool::layout`]): the payload of a spooled batch and the
//! dead-letter file. This module is the one that knows both formats.
//!
//! # Spooled batch
//!
//! A spool record's payload is one batch: a header line, then the batch's line
//! protocol, one point per line, each line ending with `\n`:
//!
//! ```text
//! #tidewatch-batch v1 precision=ns points=3
//! cdu,unit=cdu-01 supply_temp_c=18.5 1700000000000000000
//! ...
//! ```
//!
//! The header records the precision the timestamps were written with, so a batch
//! spooled before a configuration change is still sent with its own precision. It
//! starts with `#`, which line protocol reads as a comment, but it is stripped before
//! sending anyway.
//!
//! # Dead-letter file
//!
//! One JSON object per line, appended and synced, for each line the server refused:
//!
//! ```json
//! {"time":"2026-01-05T10:00:00.123Z","status":400,"error":"partial write: field type conflict: ...","url":"http://127.0.0.1:8086/write?db=tidewatch","line":"cdu,unit=a t=\"x\" 1700000000000000000"}
//! ```
//!
//! `time` is when it was refused (UTC), `status` the HTTP status, `error` the server's
//! message (from its JSON `error` or `message`, else its body), `line` the refused line
//! without its line break. To replay after fixing the cause: `jq -r .line FILE`, then
//! post the lines to the server.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::config::Precision;

const HEADER_PREFIX: &str = "#tidewatch-batch v1 ";

/// Builds a spool payload from a batch's lines.
pub(crate) fn frame_batch(precision: Precision, points: usize, lines: &[u8]) -> Vec<u8> {
    let header = format!("{HEADER_PREFIX}precision={precision} points={points}\n");
    let mut out = Vec::with_capacity(header.len() + lines.len());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(lines);
    out
}

/// A spooled batch, read back.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Batch<'a> {
    pub precision: Precision,
    pub points: usize,
    /// The line protocol, without the header.
    pub lines: &'a [u8],
}

/// Reads a spool payload. A payload without a (known) header is taken as
/// nanosecond line protocol, so nothing spooled is ever refused here.
pub(crate) fn unframe_batch(payload: &[u8]) -> Batch<'_> {
    let fallback = || Batch {
        precision: Precision::Ns,
        points: count_lines(payload),
        lines: payload,
    };
    let Some(rest) = payload.strip_prefix(HEADER_PREFIX.as_bytes()) else {
        return fallback();
    };
    let Some(end) = rest.iter().position(|&b| b == b'\n') else {
        return fallback();
    };
    let Ok(header) = std::str::from_utf8(&rest[..end]) else {
        return fallback();
    };
    let mut precision = None;
    let mut points = None;
    for item in header.split(' ') {
        match item.split_once('=') {
            Some(("precision", p)) => precision = Precision::parse(p),
            Some(("points", n)) => points = n.parse().ok(),
            _ => {}
        }
    }
    let lines = &rest[end + 1..];
    match (precision, points) {
        (Some(precision), Some(points)) => Batch {
            precision,
            points,
            lines,
        },
        _ => fallback(),
    }
}

/// Lines in line protocol text (each ends with `\n`; a last line without one counts).
pub(crate) fn count_lines(lines: &[u8]) -> usize {
    let newlines = lines.iter().filter(|&&b| b == b'\n').count();
    newlines + usize::from(lines.last().is_some_and(|&b| b != b'\n'))
}

/// The dead-letter file: appends are serialised and synced.
#[derive(Debug)]
pub(crate) struct DeadLetterFile {
    path: PathBuf,
    file: Mutex<Option<File>>,
}

impl DeadLetterFile {
    pub(crate) fn new(path: PathBuf) -> DeadLetterFile {
        DeadLetterFile {
            path,
            file: Mutex::new(None),
        }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one entry per line of `lines` and syncs; returns how many.
    pub(crate) fn append(
        &self,
        status: u16,
        error: &str,
        url: &str,
        lines: &[u8],
    ) -> io::Result<usize> {
        let time = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let mut out = Vec::new();
        let mut count = 0;
        for line in lines.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let entry = serde_json::json!({
                "time": time,
                "status": status,
                "error": error,
                "url": url,
                "line": String::from_utf8_lossy(line),
            });
            serde_json::to_writer(&mut out, &entry).map_err(io::Error::other)?;
            out.push(b'\n');
            count += 1;
        }
        let mut guard = self.file.lock().unwrap_or_else(|e| e.into_inner());
        if guard.is_none() {
            if let Some(parent) = self.path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent)?;
            }
            *guard = Some(
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&self.path)?,
            );
        }
        let file = guard.as_mut().expect("opened above");
        let result = file.write_all(&out).and_then(|()| file.sync_data());
        if result.is_err() {
            // Reopen next time (the file may have been moved away or the disk fixed).
            *guard = None;
        }
        result.map(|()| count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_frame_and_unframe() {
        let lines = b"m f=1 1\nm f=2 2\n";
        let payload = frame_batch(Precision::Ms, 2, lines);
        assert!(payload.starts_with(b"#tidewatch-batch v1 precision=ms points=2\n"));
        assert_eq!(
            unframe_batch(&payload),
            Batch {
                precision: Precision::Ms,
                points: 2,
                lines
            }
        );
        // Foreign payloads are taken as nanosecond line protocol.
        assert_eq!(
            unframe_batch(lines),
            Batch {
                precision: Precision::Ns,
                points: 2,
                lines
            }
        );
        assert_eq!(count_lines(b"a\nb"), 2);
        assert_eq!(count_lines(b""), 0);
    }

    #[test]
    fn dead_letters_are_json_lines_with_the_servers_reason() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/dead.jsonl");
        let file = DeadLetterFile::new(path.clone());
        let n = file
            .append(
                400,
                "field type conflict",
                "http://h/write?db=d",
                b"m f=\"x\" 1\nm,t=\xc3\xa9 f=2 2\n",
            )
            .unwrap();
        assert_eq!(n, 2);
        file.append(413, "too large", "u", b"m f=3 3\n").unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let entries: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(entries.len(), 3);
        assert_eq!(entries[0]["line"], "m f=\"x\" 1");
        assert_eq!(entries[0]["status"], 400);
        assert_eq!(entries[0]["error"], "field type conflict");
        assert_eq!(entries[1]["line"], "m,t=é f=2 2");
        assert_eq!(entries[2]["status"], 413);
        assert!(entries[0]["time"].as_str().unwrap().ends_with('Z'));
    }
}
