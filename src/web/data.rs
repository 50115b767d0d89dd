//! What the dashboard shows, read from the configuration and the history
//! database only (no restic call), so pages, the JSON API and the CLI's
//! `status` tell the same story: health comes from `health.rs`, the JSON
//! documents from the same functions as `status --json` and `list --json`.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde::Serialize;

use crate::config::{Config, Service};
use crate::engine::plan::ServiceSummary;
use crate::health::json::{DestinationStatus, LastRun, ServiceStatus};
use crate::health::{self, ServiceHealth, State};
use crate::history::{History, HistoryError, RunRow, TargetRecord, VerifyRow, now_ms};
use crate::model::{ErrorClass, RunStatus};
use crate::output::SortedKeys;

/// A few history connections shared by the request handlers (SQLite
/// connections cannot be used by two threads at once).
pub struct Db {
    conns: Vec<Mutex<History>>,
    next: AtomicUsize,
}

impl Db {
    pub fn open(state_dir: &std::path::Path, n: usize) -> Result<Db, HistoryError> {
        let conns = (0..n.max(1))
            // Read-only where history cannot be written (the dashboard
            // reads; its jobs open their own connection).
            .map(|_| {
                History::open(state_dir)
                    .or_else(|_| History::open_read_only(state_dir))
                    .map(Mutex::new)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Db {
            conns,
            next: AtomicUsize::new(0),
        })
    }

    /// Runs `f` with a free connection (waits for one when all are busy).
    pub fn with<T>(&self, f: impl FnOnce(&History) -> T) -> T {
        for c in &self.conns {
            if let Ok(h) = c.try_lock() {
                return f(&h);
            }
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.conns.len();
        let h = self.conns[i]
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&h)
    }
}

fn rfc3339(ms: i64) -> Option<String> {
    chrono::DateTime::from_timestamp_millis(ms).map(|d| d.to_rfc3339())
}

fn age_secs(ms: i64) -> u64 {
    u64::try_from((now_ms() - ms).max(0) / 1000).unwrap_or(0)
}

/// One run as pages and the API show it.
#[derive(Debug, Clone, Serialize)]
pub struct RunView {
    pub id: i64,
    pub started_at: Option<String>,
    pub started_at_ms: i64,
    pub finished_at: Option<String>,
    pub age_seconds: u64,
    pub duration_ms: Option<u64>,
    pub outcome: RunStatus,
    pub error_class: Option<ErrorClass>,
    pub message: Option<String>,
    pub log_file: Option<String>,
}

impl From<&RunRow> for RunView {
    fn from(r: &RunRow) -> RunView {
        RunView {
            id: r.id,
            started_at: rfc3339(r.started_at),
            started_at_ms: r.started_at,
            finished_at: r.finished_at.and_then(rfc3339),
            age_seconds: age_secs(r.started_at),
            duration_ms: r
                .finished_at
                .and_then(|f| u64::try_from(f - r.started_at).ok()),
            outcome: r.outcome,
            error_class: r.error_class,
            message: r.error_message.clone(),
            log_file: r.log_file.clone(),
        }
    }
}

/// One destination of a service on the overview, as `health.rs` judged it.
#[derive(Debug, Clone, Serialize)]
pub struct DestView {
    pub destination: String,
    pub state: State,
    pub reasons: Vec<String>,
    pub snapshot_id: Option<String>,
    pub snapshot_age_seconds: Option<u64>,
    pub bytes_added: Option<u64>,
    pub duration_ms: Option<u64>,
}

/// One service on the overview.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceView {
    pub name: String,
    pub enabled: bool,
    pub description: Option<String>,
    pub schedule: Option<String>,
    pub next_run: Option<String>,
    /// The health model's verdict, the same as `status` prints.
    pub state: State,
    pub reasons: Vec<String>,
    /// The newest run, also one still running.
    pub last_run: Option<RunView>,
    pub destinations: Vec<DestView>,
    /// Durations of recent finished runs, oldest first (for the sparkline).
    pub recent: Vec<RunView>,
}

fn view(h: &History, s: &Service, health: &ServiceHealth) -> Result<ServiceView, HistoryError> {
    let runs = h.recent_runs(&s.name, 20)?;
    let destinations = health
        .destinations
        .iter()
        .map(|d| DestView {
            destination: d.destination.clone(),
            state: d.health.state,
            reasons: d.health.reasons.clone(),
            snapshot_id: d.newest_snapshot.as_ref().map(|n| n.id.clone()),
            snapshot_age_seconds: d.newest_snapshot.as_ref().map(|n| age_secs(n.time_ms)),
            bytes_added: d.last_target.as_ref().and_then(|t| t.bytes_added),
            duration_ms: d.last_target.as_ref().map(|t| t.duration_ms),
        })
        .collect();
    let next_run = s.schedule.as_deref().filter(|_| s.enabled).and_then(|e| {
        crate::schedule::next_runs(e, chrono::Local::now(), 1)
            .first()
            .map(chrono::DateTime::to_rfc3339)
    });
    Ok(ServiceView {
        name: s.name.clone(),
        enabled: s.enabled,
        description: s.description.clone(),
        schedule: s.schedule.clone(),
        next_run,
        state: health.health.state,
        reasons: health.health.reasons.clone(),
        last_run: runs.first().map(RunView::from),
        destinations,
        recent: runs
            .iter()
            .filter(|r| r.outcome != RunStatus::Running)
            .rev()
            .map(RunView::from)
            .collect(),
    })
}

/// The overview of one service.
pub fn service_view(h: &History, s: &Service) -> Result<Option<ServiceView>, HistoryError> {
    let report = health::evaluate_services(&[s], h, chrono::Utc::now(), None)?;
    report.first().map(|r| view(h, s, r)).transpose()
}

/// Every service's overview.
pub fn overview(h: &History, c: &Config) -> Result<Vec<ServiceView>, HistoryError> {
    let report = health::evaluate(c, h, chrono::Utc::now())?;
    c.services
        .iter()
        .zip(&report)
        .map(|(s, r)| view(h, s, r))
        .collect()
}

/// Exactly the document of `restic-manager status --json`.
pub fn status_json(h: &History, c: &Config) -> Result<Vec<ServiceStatus>, HistoryError> {
    let now = chrono::Utc::now();
    let report = health::evaluate(c, h, now)?;
    Ok(report
        .iter()
        .map(|s| ServiceStatus::new(s, now.timestamp_millis()))
        .collect())
}

/// One service of `/api/services`: `list --json`'s [`ServiceSummary`] with
/// its health as `status --json` has it (`state`, `reasons`, `last_run`,
/// `destinations`). The summary's keys are flattened in among the health's,
/// so no declaration order sorts them: the document is written through
/// [`SortedKeys`] (see [`services_json`]), which gives the alphabetical
/// order it had when it was merged from `json!` maps.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceWithHealth {
    #[serde(flatten)]
    pub service: ServiceSummary,
    pub destinations: Vec<DestinationStatus>,
    pub last_run: Option<LastRun>,
    pub reasons: Vec<String>,
    pub state: State,
}

impl ServiceWithHealth {
    pub fn new(service: ServiceSummary, h: ServiceStatus) -> ServiceWithHealth {
        ServiceWithHealth {
            service,
            destinations: h.destinations,
            last_run: h.last_run,
            reasons: h.reasons,
            state: h.state,
        }
    }
}

/// The document of `/api/services`: every service with its health, keys
/// sorted.
pub fn services_json(
    h: &History,
    c: &Config,
) -> Result<Vec<SortedKeys<ServiceWithHealth>>, HistoryError> {
    let now = chrono::Utc::now();
    let report = health::evaluate(c, h, now)?;
    Ok(c.services
        .iter()
        .zip(&report)
        .map(|(s, r)| {
            SortedKeys(ServiceWithHealth::new(
                ServiceSummary::new(s),
                ServiceStatus::new(r, now.timestamp_millis()),
            ))
        })
        .collect())
}

/// A run with its per-destination results.
#[derive(Debug, Clone, Serialize)]
pub struct RunDetail {
    #[serde(flatten)]
    pub run: RunView,
    pub targets: Vec<TargetRecord>,
}

/// The newest `limit` runs of a service with their targets.
pub fn runs(h: &History, service: &str, limit: u32) -> Result<Vec<RunDetail>, HistoryError> {
    h.recent_runs(service, limit)?
        .iter()
        .map(|r| {
            Ok(RunDetail {
                run: RunView::from(r),
                targets: h.targets_of_run(r.id)?,
            })
        })
        .collect()
}

/// One run of a service (`None` when the id is unknown or belongs to
/// another service).
pub fn run(h: &History, service: &str, id: i64) -> Result<Option<RunDetail>, HistoryError> {
    match h.run_by_id(id)? {
        Some(r) if r.service == service => Ok(Some(RunDetail {
            run: RunView::from(&r),
            targets: h.targets_of_run(r.id)?,
        })),
        _ => Ok(None),
    }
}

/// A service's recent verifications.
pub fn verifies(h: &History, service: &str) -> Result<Vec<VerifyRow>, HistoryError> {
    h.recent_verifies(service, 20)
}

/// The last `lines` lines of a run's log, with known secrets blanked.
pub fn log_tail(path: &str, lines: usize, secrets: &[String]) -> Option<String> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(path).ok()?;
    let len = f.metadata().ok()?.len();
    let start = len.saturating_sub(64 * 1024);
    f.seek(SeekFrom::Start(start)).ok()?;
    let mut buf = Vec::new();
    f.read_to_end(&mut buf).ok()?;
    let text = String::from_utf8_lossy(&buf);
    let all: Vec<&str> = text.lines().collect();
    let mut tail = all[all.len().saturating_sub(lines)..].join("\n");
    for s in secrets.iter().filter(|s| s.len() >= 6) {
        tail = tail.replace(s.as_str(), "***");
    }
    Some(tail)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::PathBuf;

    use super::*;

    fn summary(discovered: bool) -> ServiceSummary {
        ServiceSummary {
            description: Some("the wiki".into()),
            enabled: true,
            labelled_by: discovered.then(|| vec!["wiki-app".into()]),
            name: "wiki".into(),
            next_runs: vec!["2026-01-01T03:00:00+00:00".into()],
            origins: discovered.then(|| BTreeMap::from([("paths".into(), "file".into())])),
            paths: vec![PathBuf::from("/srv/wiki")],
            profile: None,
            schedule: Some("0 3 * * *".into()),
            sources: vec!["/srv/wiki".into(), "dump:db".into()],
            targets: vec!["local".into()],
            volumes: vec!["data".into()],
        }
    }

    fn status() -> ServiceStatus {
        ServiceStatus {
            destinations: Vec::new(),
            enabled: true,
            history_reset: None,
            last_run: Some(LastRun {
                age_seconds: 60,
                error_class: None,
                finished_at: Some("2026-01-01T03:01:00+00:00".into()),
                id: 7,
                log_file: None,
                message: None,
                outcome: RunStatus::Finished(crate::model::Outcome::Ok),
                started_at: Some("2026-01-01T03:00:00+00:00".into()),
            }),
            reasons: vec!["no snapshot yet".into()],
            service: "wiki".into(),
            state: State::Warning,
        }
    }

    /// `/api/services` stays byte for byte the document it was: the
    /// summary's keys and the health's, all sorted.
    #[test]
    fn the_services_document_keeps_its_bytes() {
        let plain = serde_json::to_string(&SortedKeys(ServiceWithHealth::new(
            summary(false),
            status(),
        )))
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            plain,
            r#"{"description":"the wiki","destinations":[],"enabled":true,"last_run":{"age_seconds":60,"error_class":null,"finished_at":"2026-01-01T03:01:00+00:00","id":7,"log_file":null,"message":null,"outcome":"ok","started_at":"2026-01-01T03:00:00+00:00"},"name":"wiki","next_runs":["2026-01-01T03:00:00+00:00"],"paths":["/srv/wiki"],"profile":null,"reasons":["no snapshot yet"],"schedule":"0 3 * * *","sources":["/srv/wiki","dump:db"],"state":"warning","targets":["local"],"volumes":["data"]}"#
        );
        let discovered = SortedKeys(ServiceWithHealth::new(summary(true), status()));
        let text = serde_json::to_string(&discovered).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            text.contains(r#""enabled":true,"labelled_by":["wiki-app"],"last_run":{"#),
            "{text}"
        );
        assert!(
            text.contains(
                r#""next_runs":["2026-01-01T03:00:00+00:00"],"origins":{"paths":"file"},"paths":"#
            ),
            "{text}"
        );
        crate::output::assert_sorted_keys(&discovered);
    }
}
