//! One log file per service run, size-capped and rotated. It sits below the
//! engine because hooks and the engine both write to it.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// A run's log file. Writes never fail the run: a log that cannot be written
/// is reported once and then ignored.
pub struct RunLog {
    path: Option<PathBuf>,
    inner: Mutex<Inner>,
}

struct Inner {
    file: Option<File>,
    written: u64,
    cap: u64,
    truncated: bool,
}

impl RunLog {
    /// Creates `<dir>/<service>/<time>-run<id>.log` and removes the oldest
    /// logs of the service beyond `max_files`.
    pub fn create(
        dir: &Path,
        service: &str,
        run_id: i64,
        max_files: u32,
        max_size_mb: u64,
    ) -> (RunLog, Option<String>) {
        let sdir = dir.join(service);
        let stamp = chrono::Local::now().format("%Y%m%d-%H%M%S");
        let path = sdir.join(format!("{stamp}-run{run_id}.log"));
        let opened = std::fs::create_dir_all(&sdir).and_then(|()| File::create(&path));
        let (file, warning, path) = match opened {
            Ok(f) => (Some(f), None, Some(path)),
            Err(e) => (
                None,
                Some(format!("cannot write log file `{}`: {e}", path.display())),
                None,
            ),
        };
        if file.is_some() {
            rotate(&sdir, max_files as usize);
        }
        (
            RunLog {
                path,
                inner: Mutex::new(Inner {
                    file,
                    written: 0,
                    cap: max_size_mb.saturating_mul(1024 * 1024),
                    truncated: false,
                }),
            },
            warning,
        )
    }

    /// A log that writes nowhere.
    pub fn none() -> RunLog {
        RunLog {
            path: None,
            inner: Mutex::new(Inner {
                file: None,
                written: 0,
                cap: 0,
                truncated: true,
            }),
        }
    }

    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Appends a timestamped line.
    pub fn line(&self, text: &str) {
        let Ok(mut g) = self.inner.lock() else { return };
        let Inner {
            file,
            written,
            cap,
            truncated,
        } = &mut *g;
        let Some(f) = file.as_mut() else { return };
        if *truncated {
            return;
        }
        let stamp = chrono::Local::now().format("%Y-%m-%d %H:%M:%S");
        let entry = format!("{stamp} {text}\n");
        if *written + entry.len() as u64 > *cap {
            let _ = writeln!(f, "{stamp} [log truncated: log_max_size_mb reached]");
            *truncated = true;
            return;
        }
        *written += entry.len() as u64;
        let _ = f.write_all(entry.as_bytes());
    }
}

fn rotate(dir: &Path, keep: usize) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut logs: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    logs.sort();
    if logs.len() > keep {
        for old in &logs[..logs.len() - keep] {
            let _ = std::fs::remove_file(old);
        }
    }
}
