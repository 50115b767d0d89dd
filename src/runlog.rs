//! One log file per service run, size-capped and rotated. It sits below the
//! engine because hooks and the engine both write to it.
//!
//! Every line reaches the file as a `tracing` event inside the run's
//! [span](RunLog::span), through [`crate::logging`]: the run's record, which
//! the engine and hooks write with [`RunLog::line`] (an info event of target
//! [`crate::logging::RECORD`], kept whatever `log_level`), and the events
//! emitted while the span is entered, at the detail that `log_level` asks
//! for (restic calls with their durations at `debug`).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, Weak};

use tracing::Level;

use crate::logging::RECORD;

/// A run's log file. Writes never fail the run: a log that cannot be written
/// is reported once and then ignored.
pub struct RunLog {
    path: Option<PathBuf>,
    /// The file, kept open by this handle alone ([`OPEN`] holds it weakly,
    /// and every line reaches it from there).
    _inner: Arc<Mutex<Inner>>,
    /// The key of this log in [`OPEN`], carried by [`RunLog::span`].
    key: u64,
    span: tracing::Span,
}

struct Inner {
    file: Option<File>,
    written: u64,
    cap: u64,
    truncated: bool,
    /// The finest `tracing` level written (`log_level`, never coarser than
    /// info: the run's record is what `status` and notifications read).
    detail: Level,
}

/// The open run logs, by key, for the events of their spans. Weak: a log
/// closes when the run drops it.
static OPEN: LazyLock<Mutex<BTreeMap<u64, Weak<Mutex<Inner>>>>> =
    LazyLock::new(|| Mutex::new(BTreeMap::new()));
static NEXT_KEY: AtomicU64 = AtomicU64::new(1);

/// The span field that names a run log (see [`RunLog::span`]).
pub const SPAN_FIELD: &str = "run_log";

/// Writes an event of `level` to the open run log `key`, if its
/// `log_level` asks for that much detail. Called by the logging layer.
pub(crate) fn write_event(key: u64, level: Level, text: &str) {
    let inner = OPEN
        .lock()
        .ok()
        .and_then(|open| open.get(&key).and_then(Weak::upgrade));
    let Some(inner) = inner else { return };
    let Ok(mut g) = inner.lock() else { return };
    if level <= g.detail {
        g.write(text);
    }
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
        log_level: &str,
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
        // Validated with the configuration; info is the least a run log holds.
        let detail = log_level.parse().unwrap_or(Level::INFO).max(Level::INFO);
        let log = RunLog::open(
            path,
            Inner {
                file,
                written: 0,
                cap: max_size_mb.saturating_mul(1024 * 1024),
                truncated: false,
                detail,
            },
        );
        (log, warning)
    }

    /// A log that writes nowhere.
    pub fn none() -> RunLog {
        RunLog::open(
            None,
            Inner {
                file: None,
                written: 0,
                cap: 0,
                truncated: true,
                detail: Level::INFO,
            },
        )
    }

    fn open(path: Option<PathBuf>, inner: Inner) -> RunLog {
        let inner = Arc::new(Mutex::new(inner));
        let key = NEXT_KEY.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut open) = OPEN.lock() {
            open.insert(key, Arc::downgrade(&inner));
        }
        let span = tracing::info_span!("run", run_log = key);
        RunLog {
            path,
            _inner: inner,
            key,
            span,
        }
    }

    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The span to run the service's work in (`Instrument::instrument`):
    /// the `tracing` events inside it are written to this log.
    pub fn span(&self) -> tracing::Span {
        self.span.clone()
    }

    /// Appends a timestamped line to the run's record: an info event of
    /// target [`RECORD`] in this log's span, so it lands here from any
    /// thread or task, whichever span is current there.
    pub fn line(&self, text: &str) {
        self.span
            .in_scope(|| tracing::info!(target: RECORD, "{text}"));
    }
}

impl Drop for RunLog {
    fn drop(&mut self) {
        if let Ok(mut open) = OPEN.lock() {
            open.remove(&self.key);
        }
    }
}

impl Inner {
    fn write(&mut self, text: &str) {
        let Inner {
            file,
            written,
            cap,
            truncated,
            ..
        } = self;
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
