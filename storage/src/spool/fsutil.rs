//! File-system steps the spool's durability rests on: directory sync, the directory
//! lock, the atomic ack file.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

use super::error::SpoolError;
use super::layout::{self, ACK_FILE, ACK_TMP_FILE, LOCK_FILE};

/// Makes the directory's entries (created, renamed files) durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), SpoolError> {
    #[cfg(unix)]
    {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| SpoolError::io("sync directory", dir, e))
    }
    #[cfg(not(unix))]
    {
        // Directories cannot be opened as files here; renames are durable on their own.
        let _ = dir;
        Ok(())
    }
}

/// Takes the exclusive lock on the spool directory, held as long as the returned file
/// is open. The lock is `flock(2)`: released by the kernel when the process dies, even
/// by SIGKILL, so a crash never leaves a stale lock behind.
pub(crate) fn lock_dir(dir: &Path) -> Result<File, SpoolError> {
    let path = dir.join(LOCK_FILE);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| SpoolError::io("open lock file", &path, e))?;
    #[cfg(unix)]
    {
        use rustix::fs::{flock, FlockOperation};
        match flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(e) if e == rustix::io::Errno::WOULDBLOCK => {
                return Err(SpoolError::Locked { path });
            }
            Err(e) => return Err(SpoolError::io("lock", &path, e.into())),
        }
    }
    Ok(file)
}

/// Reads the persisted acknowledged sequence number; 0 when there is no ack file yet.
/// A damaged ack file is reported and read as 0: every record still on disk is then
/// delivered again, which duplicates but never loses.
pub(crate) fn read_ack(dir: &Path) -> Result<u64, SpoolError> {
    let path = dir.join(ACK_FILE);
    match fs::read(&path) {
        Ok(content) => Ok(layout::decode_ack(&content).unwrap_or_else(|| {
            tracing::error!(
                path = %path.display(),
                "spool: ack file is damaged; delivering every record on disk again"
            );
            0
        })),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(SpoolError::io("read", path, e)),
    }
}

/// Persists `seq` as the acknowledged sequence number: write a temporary file, sync it,
/// rename it over the ack file, sync the directory. A crash at any point leaves either
/// the old or the new value.
pub(crate) fn write_ack(dir: &Path, seq: u64) -> Result<(), SpoolError> {
    let tmp = dir.join(ACK_TMP_FILE);
    let mut file = File::create(&tmp).map_err(|e| SpoolError::io("create", &tmp, e))?;
    file.write_all(&layout::encode_ack(seq))
        .and_then(|()| file.sync_all())
        .map_err(|e| SpoolError::io("write", &tmp, e))?;
    drop(file);
    let path = dir.join(ACK_FILE);
    fs::rename(&tmp, &path).map_err(|e| SpoolError::io("rename ack file to", &path, e))?;
    sync_dir(dir)
}

/// Removes a leftover temporary ack file (a crash while acknowledging).
pub(crate) fn remove_stale_ack_tmp(dir: &Path) -> Result<(), SpoolError> {
    let tmp = dir.join(ACK_TMP_FILE);
    match fs::remove_file(&tmp) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(SpoolError::io("remove", tmp, e)),
    }
}
