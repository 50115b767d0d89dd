//! Metrics: the figures of every service and destination, gathered once
//! from history and the health model, and written as the Prometheus text
//! exposition format (the `metrics` command, `metrics_file` for
//! node_exporter's textfile collector, a Pushgateway) or as InfluxDB line
//! protocol.
//!
//! Publishing runs after each command that changes state (`run`, `verify`)
//! through [`after_command`]. Nothing here can change a command's outcome:
//! every failure is a warning on stderr.

mod exposition;
mod push;

use std::path::Path;

use chrono::{DateTime, Utc};
use serde::Serialize;

pub use exposition::{influx_lines, prometheus};

use crate::config::Config;
use crate::health::{self, State};
use crate::history::{History, HistoryError};
use crate::model::Outcome;
use crate::restic::Repository;

/// Everything the exporters write, as of `generated_ms`.
#[derive(Debug, Clone, Serialize)]
pub struct Figures {
    pub host: String,
    pub generated_ms: i64,
    /// The restic version in use, when known.
    pub restic_version: Option<String>,
    pub rows: Vec<Row>,
    /// Finished runs per service and outcome, from history.
    pub runs: Vec<(String, Outcome, u64)>,
    /// Per service: when its oldest unfinished run started (unix ms), if
    /// one is running.
    pub running: Vec<(String, i64)>,
    /// `long_running_threshold_minutes`, in seconds (0 = off).
    pub long_running_threshold_s: u64,
}

/// The figures of one service on one destination.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub service: String,
    pub destination: String,
    pub state: State,
    /// When the newest finished run ended (unix ms) and how it went here.
    pub last_run_ms: Option<i64>,
    pub last_outcome: Option<Outcome>,
    /// When the newest successful backup here finished (unix ms).
    pub last_success_ms: Option<i64>,
    pub duration_ms: Option<u64>,
    pub bytes_added: Option<u64>,
    pub files_new: Option<u64>,
    pub files_changed: Option<u64>,
    /// Snapshots the repository holds, when known (after retention or
    /// `status --live`).
    pub snapshots: Option<u64>,
    /// Snapshots our recorded runs made here.
    pub snapshots_created: u64,
    pub newest_snapshot_ms: Option<i64>,
    /// Only for local repositories (the size of their files); asking restic
    /// (`stats --mode raw-data`) reads the whole index and is too slow to do
    /// after every run.
    pub repository_size_bytes: Option<u64>,
    pub last_verify_ms: Option<i64>,
    pub last_verify_outcome: Option<Outcome>,
    pub last_successful_verify_ms: Option<i64>,
}

/// Gathers the figures of every configured service.
pub fn collect(
    config: &Config,
    history: &History,
    now: DateTime<Utc>,
    restic_version: Option<String>,
) -> Result<Figures, HistoryError> {
    let report = health::evaluate(config, history, now)?;
    let mut rows = Vec::new();
    let mut runs = Vec::new();
    let mut running = Vec::new();
    for s in &report {
        if let Some(since) = history.running_since(&s.service)? {
            running.push((s.service.clone(), since));
        }
        for (outcome, n) in history.run_counts(&s.service)? {
            runs.push((s.service.clone(), outcome, n));
        }
        let recorded = history.snapshots_recorded(&s.service)?;
        for d in &s.destinations {
            let t = d.last_target.as_ref();
            let last_outcome = t
                .map(|t| t.outcome)
                .or_else(|| s.last_run.as_ref().and_then(|r| r.outcome.finished()));
            let facts = d.facts.as_ref();
            let size = config
                .destinations
                .get(&d.destination)
                .and_then(|dest| Repository::new(dest, &s.service, &config.settings.password).ok())
                .and_then(|r| r.local_path().map(dir_size));
            rows.push(Row {
                service: s.service.clone(),
                destination: d.destination.clone(),
                state: d.health.state,
                last_run_ms: s
                    .last_run
                    .as_ref()
                    .map(|r| r.finished_at.unwrap_or(r.started_at)),
                last_outcome,
                last_success_ms: facts.and_then(|f| f.newest_snapshot_ms),
                duration_ms: t.map(|t| t.duration_ms),
                bytes_added: t.and_then(|t| t.bytes_added),
                files_new: t.and_then(|t| t.files_new),
                files_changed: t.and_then(|t| t.files_changed),
                snapshots: facts.and_then(|f| f.snapshots_known),
                snapshots_created: recorded.get(&d.destination).copied().unwrap_or(0),
                newest_snapshot_ms: d.newest_snapshot.as_ref().map(|n| n.time_ms),
                repository_size_bytes: size.flatten(),
                last_verify_ms: d
                    .last_verify
                    .as_ref()
                    .map(|v| v.finished_at_ms.unwrap_or(v.started_at_ms)),
                last_verify_outcome: d.last_verify.as_ref().and_then(|v| v.outcome.finished()),
                last_successful_verify_ms: d
                    .last_good_verify
                    .as_ref()
                    .map(|v| v.finished_at_ms.unwrap_or(v.started_at_ms)),
            });
        }
    }
    Ok(Figures {
        host: config.settings.host.clone(),
        generated_ms: now.timestamp_millis(),
        restic_version,
        rows,
        runs,
        running,
        long_running_threshold_s: config
            .settings
            .long_running_threshold_minutes
            .saturating_mul(60),
    })
}

/// The total size of the files under `dir` (`None` when it cannot be read).
fn dir_size(dir: &Path) -> Option<u64> {
    let mut total = 0u64;
    let mut stack = vec![dir.to_path_buf()];
    let mut any = false;
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        any = true;
        for e in rd.flatten() {
            match e.file_type() {
                Ok(t) if t.is_dir() => stack.push(e.path()),
                Ok(t) if t.is_file() => total += e.metadata().map_or(0, |m| m.len()),
                _ => {}
            }
        }
    }
    any.then_some(total)
}

/// Writes `text` to `path` through a temporary file in the same folder and
/// a rename, so a collector never reads half a file.
pub fn write_atomic(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = path
        .file_name()
        .map_or_else(|| "metrics".into(), |n| n.to_string_lossy().into_owned());
    // node_exporter only reads `*.prom`: the temporary name must not end so.
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// After a command that changed state: writes `metrics_file`, pushes to
/// the Pushgateway and InfluxDB when configured. Problems are printed as
/// warnings and never change the command's outcome.
pub async fn after_command(config: &Config, history: &History, restic_version: Option<String>) {
    for w in publish(config, history, restic_version).await {
        crate::logging::warn(format!("metrics: {w}"));
    }
}

/// [`after_command`] without printing: returns the warnings.
pub async fn publish(
    config: &Config,
    history: &History,
    restic_version: Option<String>,
) -> Vec<String> {
    let m = &config.metrics;
    if config.settings.metrics_file.is_none() && m.pushgateway.is_none() && m.influxdb.is_none() {
        return Vec::new();
    }
    if matches!(
        history.recovery(),
        Some(crate::history::Recovery::Unrecorded { .. })
    ) {
        // Figures from an empty in-memory history would claim that nothing
        // was ever backed up.
        return vec!["not written: the history database cannot be used (see above)".into()];
    }
    let figures = match collect(config, history, Utc::now(), restic_version) {
        Ok(f) => f,
        Err(e) => return vec![format!("cannot read the history: {e}")],
    };
    let mut warnings = Vec::new();
    if let Some(file) = &config.settings.metrics_file
        && let Err(e) = write_atomic(file, &prometheus(&figures))
    {
        warnings.push(format!(
            "cannot write `metrics_file` `{}`: {e}; check that its folder exists and is writable",
            file.display()
        ));
    }
    warnings.extend(
        push::push_all(m, &figures)
            .await
            .iter()
            .map(ToString::to_string),
    );
    warnings
}

/// Remembers each repository's snapshot count after retention (restic's
/// `forget` said how many it kept), for `restic_manager_snapshots`.
pub fn record_retention(history: &History, reports: &[crate::engine::run::ServiceReport]) {
    for r in reports {
        for t in &r.targets {
            if let Some(f) = &t.retention
                && let Err(e) =
                    history.record_snapshot_count(&r.service, &t.destination, f.kept as u64)
            {
                crate::logging::warn(format!("metrics: {e}"));
            }
        }
    }
}
