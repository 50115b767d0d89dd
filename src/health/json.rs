//! The `status --json` document, which the dashboard's `/api/status` also
//! serves, so the CLI and the web say the same words for the same history.
//!
//! Fields are declared in alphabetical order: the document was built as
//! `json!` maps, which sort their keys, and users parse it, so it stays
//! byte for byte what it was (a test checks the order).

use chrono::DateTime;
use serde::Serialize;

use super::{DestinationHealth, ServiceHealth, Source, State};
use crate::history::{RunRow, VerifyRow};
use crate::model::{ErrorClass, Outcome, RunStatus, VerifyKind};

fn rfc3339(ms: i64) -> Option<String> {
    DateTime::from_timestamp_millis(ms).map(|d| d.to_rfc3339())
}

fn age_secs(now_ms: i64, ms: i64) -> u64 {
    u64::try_from((now_ms - ms).max(0) / 1000).unwrap_or(0)
}

/// One service's health as `status --json` prints it.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceStatus {
    pub destinations: Vec<DestinationStatus>,
    pub enabled: bool,
    pub history_reset: Option<ResetStatus>,
    pub last_run: Option<LastRun>,
    pub reasons: Vec<String>,
    pub service: String,
    pub state: State,
}

/// The newest finished run of a service.
#[derive(Debug, Clone, Serialize)]
pub struct LastRun {
    pub age_seconds: u64,
    pub error_class: Option<ErrorClass>,
    pub finished_at: Option<String>,
    pub id: i64,
    pub log_file: Option<String>,
    pub message: Option<String>,
    pub outcome: RunStatus,
    pub started_at: Option<String>,
}

/// When the history database was last reset, and where the damaged one went.
#[derive(Debug, Clone, Serialize)]
pub struct ResetStatus {
    pub age_seconds: u64,
    pub at: Option<String>,
    pub moved_to: String,
    pub reason: String,
}

/// One destination of a [`ServiceStatus`].
#[derive(Debug, Clone, Serialize)]
pub struct DestinationStatus {
    pub bytes_added: Option<u64>,
    pub destination: String,
    pub disagreements: Vec<String>,
    pub duration_ms: Option<u64>,
    pub files_changed: Option<u64>,
    pub files_new: Option<u64>,
    pub last_outcome: Option<Outcome>,
    pub last_successful_verify_at: Option<String>,
    pub last_verify: Option<LastVerify>,
    pub max_age: String,
    pub max_age_from: &'static str,
    pub reasons: Vec<String>,
    pub snapshot_age_seconds: Option<u64>,
    pub snapshot_host: Option<String>,
    pub snapshot_id: Option<String>,
    pub snapshot_source: Option<Source>,
    pub snapshot_time: Option<String>,
    pub snapshots_known: Option<u64>,
    pub state: State,
    pub verify_max_age: String,
}

/// The newest finished verify of a destination.
#[derive(Debug, Clone, Serialize)]
pub struct LastVerify {
    pub error_class: Option<ErrorClass>,
    pub finished_at: Option<String>,
    pub kind: VerifyKind,
    pub message: Option<String>,
    pub outcome: RunStatus,
    pub started_at: Option<String>,
}

impl ServiceStatus {
    /// `s` as of `now_ms` (ages are counted from then).
    pub fn new(s: &ServiceHealth, now_ms: i64) -> ServiceStatus {
        ServiceStatus {
            destinations: s
                .destinations
                .iter()
                .map(|d| DestinationStatus::new(d, now_ms))
                .collect(),
            enabled: s.enabled,
            history_reset: s.history_reset.as_ref().map(|r| ResetStatus {
                age_seconds: age_secs(now_ms, r.at_ms),
                at: rfc3339(r.at_ms),
                moved_to: r.moved_to.clone(),
                reason: r.reason.clone(),
            }),
            last_run: s.last_run.as_ref().map(|r| LastRun::new(r, now_ms)),
            reasons: s.health.reasons.clone(),
            service: s.service.clone(),
            state: s.health.state,
        }
    }
}

impl LastRun {
    fn new(r: &RunRow, now_ms: i64) -> LastRun {
        LastRun {
            age_seconds: age_secs(now_ms, r.started_at),
            error_class: r.error_class,
            finished_at: r.finished_at.and_then(rfc3339),
            id: r.id,
            log_file: r.log_file.clone(),
            message: r.error_message.clone(),
            outcome: r.outcome,
            started_at: rfc3339(r.started_at),
        }
    }
}

impl LastVerify {
    fn new(v: &VerifyRow) -> LastVerify {
        LastVerify {
            error_class: v.error_class,
            finished_at: v.finished_at_ms.and_then(rfc3339),
            kind: v.kind,
            message: v.error_message.clone(),
            outcome: v.outcome,
            started_at: rfc3339(v.started_at_ms),
        }
    }
}

impl DestinationStatus {
    /// `d` as of `now_ms`.
    pub fn new(d: &DestinationHealth, now_ms: i64) -> DestinationStatus {
        let snap = d.newest_snapshot.as_ref();
        let t = d.last_target.as_ref();
        DestinationStatus {
            bytes_added: t.and_then(|t| t.bytes_added),
            destination: d.destination.clone(),
            disagreements: d.disagreements.clone(),
            duration_ms: t.map(|t| t.duration_ms),
            files_changed: t.and_then(|t| t.files_changed),
            files_new: t.and_then(|t| t.files_new),
            last_outcome: t.map(|t| t.outcome),
            last_successful_verify_at: d
                .last_good_verify
                .as_ref()
                .and_then(|v| rfc3339(v.finished_at_ms.unwrap_or(v.started_at_ms))),
            last_verify: d.last_verify.as_ref().map(LastVerify::new),
            max_age: d.max_age.to_string(),
            max_age_from: d.max_age_from,
            reasons: d.health.reasons.clone(),
            snapshot_age_seconds: snap.map(|s| age_secs(now_ms, s.time_ms)),
            snapshot_host: snap.and_then(|s| s.hostname.clone()),
            snapshot_id: snap.map(|s| s.id.clone()),
            snapshot_source: snap.map(|s| s.source),
            snapshot_time: snap.and_then(|s| rfc3339(s.time_ms)),
            snapshots_known: d.facts.as_ref().and_then(|f| f.snapshots_known),
            state: d.health.state,
            verify_max_age: d.verify_max_age.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_keeps_its_sorted_keys() {
        let some = || Some("x".to_string());
        let verify = LastVerify {
            error_class: Some(ErrorClass::Config),
            finished_at: some(),
            kind: VerifyKind::ALL[0],
            message: some(),
            outcome: RunStatus::Running,
            started_at: some(),
        };
        let dest = DestinationStatus {
            bytes_added: Some(1),
            destination: "nas".into(),
            disagreements: vec!["d".into()],
            duration_ms: Some(2),
            files_changed: Some(3),
            files_new: Some(4),
            last_outcome: Some(Outcome::Ok),
            last_successful_verify_at: some(),
            last_verify: Some(verify),
            max_age: "1d".into(),
            max_age_from: "max_age",
            reasons: vec!["r".into()],
            snapshot_age_seconds: Some(5),
            snapshot_host: some(),
            snapshot_id: some(),
            snapshot_source: Some(Source::Repository),
            snapshot_time: some(),
            snapshots_known: Some(6),
            state: State::Ok,
            verify_max_age: "8d".into(),
        };
        let service = ServiceStatus {
            destinations: vec![dest],
            enabled: true,
            history_reset: Some(ResetStatus {
                age_seconds: 7,
                at: some(),
                moved_to: "m".into(),
                reason: "r".into(),
            }),
            last_run: Some(LastRun {
                age_seconds: 8,
                error_class: None,
                finished_at: some(),
                id: 9,
                log_file: some(),
                message: some(),
                outcome: RunStatus::Running,
                started_at: some(),
            }),
            reasons: Vec::new(),
            service: "wiki".into(),
            state: State::Failed,
        };
        crate::output::assert_sorted_keys(&service);
    }
}
