//! Per-service locks: an OS file lock (flock), so a crash or `kill -9`
//! releases it with the process and never leaves a stale lock behind.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

/// What a holder writes into the lock file when it lets go normally: its
/// children have all ended by then. A file that still holds a pid belonged
/// to a holder that was killed (or to a version before this mark).
const RELEASED: &str = "released";

/// A held service lock; released on drop.
#[derive(Debug)]
pub struct ServiceLock {
    file: File,
    pub path: PathBuf,
    previous_released: bool,
}

/// Why a lock was not taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("service `{service}` is already running (pid {pid})")]
    Busy { service: String, pid: String },
    #[error("cannot use lock file `{path}`: {source}; check `lock_directory`")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl ServiceLock {
    /// Takes the lock for `service` without waiting.
    pub fn acquire(dir: &Path, service: &str) -> Result<ServiceLock, LockError> {
        let path = dir.join(format!("{service}.lock"));
        let io = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(LockError::Busy {
                    service: service.to_string(),
                    pid: holder_pid(&mut file).unwrap_or_else(|| "unknown".into()),
                });
            }
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
        let mut before = String::new();
        // Unreadable (not text): treated like a pid, the careful side.
        let _ = file.read_to_string(&mut before);
        // A new (empty) file says nothing: the lock directory may have
        // been emptied (a user's runtime directory goes at logout) while
        // something an earlier run started still runs.
        let previous_released = before.trim() == RELEASED;
        file.set_len(0).map_err(io)?;
        file.rewind().map_err(io)?;
        write!(file, "{}", std::process::id()).map_err(io)?;
        file.flush().map_err(io)?;
        Ok(ServiceLock {
            file,
            path,
            previous_released,
        })
    }

    /// Whether the previous holder let go normally, so nothing it started
    /// can still run: the search for leftovers (every process on the
    /// machine) can be skipped.
    pub fn previous_released(&self) -> bool {
        self.previous_released
    }
}

impl Drop for ServiceLock {
    fn drop(&mut self) {
        // A panic may unwind past children still running: leave the pid,
        // so the next holder looks for leftovers.
        if std::thread::panicking() {
            return;
        }
        let _ = self.file.set_len(0);
        let _ = self.file.rewind();
        let _ = self.file.write_all(RELEASED.as_bytes());
    }
}

/// Whether a live process holds the lock of `service`, judged from the pid
/// the holder wrote (the lock itself is not touched, so a run starting at
/// this moment is never refused because of the question). A recycled pid
/// can make it say yes wrongly; callers only skip a courtesy on that.
pub fn held(dir: &Path, service: &str) -> bool {
    let Ok(text) = std::fs::read_to_string(dir.join(format!("{service}.lock"))) else {
        return false;
    };
    text.trim()
        .parse::<i32>()
        .ok()
        .filter(|p| *p > 0 && u32::try_from(*p).ok() != Some(std::process::id()))
        .is_some_and(|p| nix::sys::signal::kill(nix::unistd::Pid::from_raw(p), None).is_ok())
}

/// The pid the holder wrote. The holder truncates and writes it just after
/// taking the lock, so an empty file may only mean "not written yet": look
/// again for a moment before giving up.
fn holder_pid(file: &mut File) -> Option<String> {
    for _ in 0..10 {
        let mut pid = String::new();
        if file.rewind().is_ok() && file.read_to_string(&mut pid).is_ok() {
            let pid = pid.trim();
            // `released`: the holder is letting go at this instant and
            // has no pid left to name.
            if !pid.is_empty() && pid != RELEASED {
                return Some(pid.to_string());
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_holder_that_let_go_normally_vouches_for_no_leftovers() {
        let dir = tempfile::tempdir().unwrap();
        let first = ServiceLock::acquire(dir.path(), "wiki").unwrap();
        assert!(
            !first.previous_released(),
            "a new lock file vouches for nothing"
        );
        drop(first);
        let file = dir.path().join("wiki.lock");
        assert_eq!(
            std::fs::read_to_string(&file).ok().as_deref(),
            Some(RELEASED)
        );
        assert!(!held(dir.path(), "wiki"));
        let second = ServiceLock::acquire(dir.path(), "wiki").unwrap();
        assert!(second.previous_released());
        drop(second);
        // A holder killed with SIGKILL never says goodbye: its pid stays.
        std::fs::write(&file, "4242").unwrap();
        let third = ServiceLock::acquire(dir.path(), "wiki").unwrap();
        assert!(!third.previous_released());
    }

    #[test]
    fn second_lock_reports_holder_pid() {
        let dir = tempfile::tempdir().unwrap();
        let held = ServiceLock::acquire(dir.path(), "wiki");
        assert!(held.is_ok());
        match ServiceLock::acquire(dir.path(), "wiki") {
            Err(LockError::Busy { pid, .. }) => assert_eq!(pid, std::process::id().to_string()),
            other => panic!("expected busy, got {other:?}"),
        }
        assert!(ServiceLock::acquire(dir.path(), "other").is_ok());
        drop(held);
        assert!(ServiceLock::acquire(dir.path(), "wiki").is_ok());
    }
}
