//! What the dashboard shows, read from the configuration and the history
//! database only (no restic call), so pages, the JSON API and the CLI's
//! `status` tell the same story. Every read goes through these functions;
//! the health model (`health.rs`) can replace [`health`] later.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde::Serialize;
use serde_json::{Value, json};

use crate::config::{Config, Service};
use crate::history::{History, HistoryError, RunRow, TargetRecord, VerifyRow, now_ms};

/// A few history connections shared by the request handlers (SQLite
/// connections cannot be used by two threads at once).
pub struct Db {
    conns: Vec<Mutex<History>>,
    next: AtomicUsize,
}

impl Db {
    pub fn open(state_dir: &std::path::Path, n: usize) -> Result<Db, HistoryError> {
        let conns = (0..n.max(1))
            .map(|_| History::open(state_dir).map(Mutex::new))
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
    pub outcome: String,
    pub error_class: Option<String>,
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
            outcome: r.outcome.clone(),
            error_class: r.error_class.clone(),
            message: r.error_message.clone(),
            log_file: r.log_file.clone(),
        }
    }
}

/// The newest snapshot of one destination.
#[derive(Debug, Clone, Serialize)]
pub struct DestView {
    pub destination: String,
    pub health: &'static str,
    pub snapshot_id: Option<String>,
    pub snapshot_time: Option<String>,
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
    /// `ok`, `warning`, `failed` or `stale`.
    pub health: &'static str,
    pub health_reason: String,
    pub last_run: Option<RunView>,
    pub destinations: Vec<DestView>,
    /// Durations of recent finished runs, oldest first (for the sparkline).
    pub recent: Vec<RunView>,
}

/// How old the newest snapshot may be before it counts as stale: twice the
/// schedule's interval plus an hour, or two days without a schedule.
pub fn stale_after_secs(s: &Service) -> u64 {
    let fires = s
        .schedule
        .as_deref()
        .map(|e| crate::schedule::next_runs(e, chrono::Utc::now(), 2))
        .unwrap_or_default();
    match fires.as_slice() {
        [a, b] => {
            u64::try_from((*b - *a).num_seconds())
                .unwrap_or(86_400)
                .saturating_mul(2)
                + 3600
        }
        _ => 2 * 86_400,
    }
}

/// Health from the newest finished run and the snapshot age (the health
/// model of `health.rs` replaces this).
pub fn health(
    last_finished: Option<&RunRow>,
    newest_snapshot_age: Option<u64>,
    stale_after: u64,
) -> (&'static str, String) {
    match (
        last_finished.map(|r| r.outcome.as_str()),
        newest_snapshot_age,
    ) {
        (Some("failed"), _) => ("failed", "the last run failed".into()),
        (_, None) => ("stale", "no snapshot yet".into()),
        (_, Some(a)) if a > stale_after => (
            "stale",
            format!("the newest snapshot is {} old", crate::output::age(a)),
        ),
        (Some("warning" | "interrupted"), _) => (
            "warning",
            "the last run finished with warnings or was interrupted".into(),
        ),
        _ => (
            "ok",
            "the last run succeeded and snapshots are fresh".into(),
        ),
    }
}

/// The overview of one service.
pub fn service_view(h: &History, s: &Service) -> Result<ServiceView, HistoryError> {
    let runs = h.recent_runs(&s.name, 20)?;
    let latest = h.latest_snapshots(&s.name)?;
    let last_finished = runs.iter().find(|r| r.outcome != "running");
    let last_targets = match last_finished {
        Some(r) => h.run_targets(r.id)?,
        None => Vec::new(),
    };
    let stale = stale_after_secs(s);
    let destinations: Vec<DestView> = s
        .targets
        .iter()
        .map(|t| {
            let l = latest.iter().find(|l| &l.destination == t);
            let age = l.map(|l| age_secs(l.finished_at));
            let target_failed = last_targets
                .iter()
                .any(|x| &x.destination == t && x.outcome == "failed");
            let health = match (age, target_failed) {
                (_, true) => "failed",
                (None, _) => "stale",
                (Some(a), _) if a > stale => "stale",
                _ => health(last_finished, age, stale).0,
            };
            DestView {
                destination: t.clone(),
                health,
                snapshot_id: l.map(|l| l.snapshot_id.clone()),
                snapshot_time: l.and_then(|l| rfc3339(l.finished_at)),
                snapshot_age_seconds: age,
                bytes_added: l.and_then(|l| l.bytes_added),
                duration_ms: l.map(|l| l.duration_ms),
            }
        })
        .collect();
    let newest_age = destinations
        .iter()
        .filter_map(|d| d.snapshot_age_seconds)
        .min();
    let (health, health_reason) = health(last_finished, newest_age, stale);
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
        health,
        health_reason,
        last_run: runs.first().map(RunView::from),
        destinations,
        recent: runs
            .iter()
            .filter(|r| r.outcome != "running")
            .rev()
            .map(RunView::from)
            .collect(),
    })
}

/// Every service's overview.
pub fn overview(h: &History, c: &Config) -> Result<Vec<ServiceView>, HistoryError> {
    c.services.iter().map(|s| service_view(h, s)).collect()
}

/// The same document as `restic-manager status --json`, plus `health`.
pub fn status_json(h: &History, c: &Config) -> Result<Value, HistoryError> {
    let mut out = Vec::new();
    for s in &c.services {
        let v = service_view(h, s)?;
        let last = h.last_run(&s.name)?;
        out.push(json!({
            "service": s.name,
            "enabled": s.enabled,
            "health": v.health,
            "health_reason": v.health_reason,
            "last_run": last.as_ref().map(|r| json!({
                "id": r.id,
                "started_at": rfc3339(r.started_at),
                "finished_at": r.finished_at.and_then(rfc3339),
                "age_seconds": age_secs(r.started_at),
                "outcome": r.outcome,
                "error_class": r.error_class,
                "message": r.error_message,
                "log_file": r.log_file,
            })),
            "destinations": v.destinations.iter().map(|d| json!({
                "destination": d.destination,
                "health": d.health,
                "snapshot_id": d.snapshot_id,
                "snapshot_time": d.snapshot_time,
                "snapshot_age_seconds": d.snapshot_age_seconds,
                "bytes_added": d.bytes_added,
                "duration_ms": d.duration_ms,
            })).collect::<Vec<_>>(),
        }));
    }
    Ok(Value::Array(out))
}

/// The same document as `restic-manager list --json`, plus health and the
/// next run.
pub fn services_json(h: &History, c: &Config) -> Result<Value, HistoryError> {
    let mut out = Vec::new();
    for s in &c.services {
        let v = service_view(h, s)?;
        let next: Vec<String> = s
            .schedule
            .as_deref()
            .filter(|_| s.enabled)
            .map(|e| crate::schedule::next_runs(e, chrono::Local::now(), 3))
            .unwrap_or_default()
            .iter()
            .map(chrono::DateTime::to_rfc3339)
            .collect();
        let mut sources: Vec<String> = s.paths.iter().map(|x| x.display().to_string()).collect();
        sources.extend(s.volumes.iter().map(|x| format!("volume:{x}")));
        out.push(json!({
            "name": s.name,
            "enabled": s.enabled,
            "profile": s.profile,
            "description": s.description,
            "targets": s.targets,
            "schedule": s.schedule,
            "next_runs": next,
            "paths": s.paths,
            "volumes": s.volumes,
            "sources": sources,
            "health": v.health,
            "health_reason": v.health_reason,
            "last_run": v.last_run,
            "destinations": v.destinations,
        }));
    }
    Ok(Value::Array(out))
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
                targets: h.run_targets(r.id)?,
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
            targets: h.run_targets(r.id)?,
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
