//! The notification model: what happened (`Event`), the `Message` every
//! notifier formats (the `webhook` body), and the text a run's results
//! become.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::model::{ErrorClass, Outcome, VerifyKind};

/// Lines of the run log sent with a failure.
const LOG_TAIL_LINES: usize = 40;
/// At most this many bytes of log tail.
const LOG_TAIL_BYTES: usize = 3500;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    /// A run begins (healthchecks `/start` only).
    Start,
    Success,
    Warning,
    Failure,
    /// Success after a failure or warning: always sent.
    Recovery,
    /// Still running after `long_running_threshold_minutes`.
    LongRunning,
    /// No successful backup within `max_age`.
    Stale,
    /// `notify test`.
    Test,
}

impl Event {
    pub fn as_str(self) -> &'static str {
        match self {
            Event::Start => "start",
            Event::Success => "success",
            Event::Warning => "warning",
            Event::Failure => "failure",
            Event::Recovery => "recovery",
            Event::LongRunning => "long_running",
            Event::Stale => "stale",
            Event::Test => "test",
        }
    }

    /// The outcome a notifier shows: `ok`, `warning` or `failed` (colours,
    /// priorities, healthchecks endpoints).
    pub fn severity(self) -> Outcome {
        match self {
            Event::Success | Event::Recovery | Event::Test | Event::Start => Outcome::Ok,
            Event::Warning | Event::LongRunning => Outcome::Warning,
            Event::Failure | Event::Stale => Outcome::Failed,
        }
    }
}

/// What a message reports: how a run or verify ended, or a state only
/// messages have. Its text is the webhook body's `outcome`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reported {
    Ended(Outcome),
    /// A run begins, or is still going.
    Running,
    /// A run was refused: another one holds the service's lock.
    Refused,
    Stale,
    /// `notify test`.
    Test,
}

impl Reported {
    pub fn as_str(self) -> &'static str {
        match self {
            Reported::Ended(o) => o.as_str(),
            Reported::Running => "running",
            Reported::Refused => "refused",
            Reported::Stale => "stale",
            Reported::Test => "test",
        }
    }
}

impl std::fmt::Display for Reported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Reported {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// A finished backup of one service, as the engine hands it to
/// [`Dispatch::finished`]: notify knows nothing of the engine's report.
#[derive(Debug, Clone)]
pub struct BackupResult {
    pub outcome: Outcome,
    pub error_class: Option<ErrorClass>,
    pub error: Option<String>,
    pub warnings: Vec<String>,
    pub duration_ms: u64,
    pub destinations: Vec<DestinationSummary>,
    pub log_file: Option<PathBuf>,
    /// Refused (`already_running`) because the run holding the lock has
    /// run longer than `long_running_threshold_minutes`.
    pub lock_held_too_long: bool,
}

/// A finished verification of one repository, as `verify` hands it to
/// [`Dispatch::verified`].
#[derive(Debug, Clone)]
pub struct VerifyResult {
    pub destination: String,
    /// The repository location, credentials redacted.
    pub repository: String,
    pub kind: VerifyKind,
    pub outcome: Outcome,
    pub error_class: Option<ErrorClass>,
    pub error: Option<String>,
    pub warnings: Vec<String>,
    /// Unix milliseconds.
    pub started_at_ms: i64,
    pub duration_ms: u64,
}

/// One destination's part of a run, as notifiers show it.
#[derive(Debug, Clone, Serialize)]
pub struct DestinationSummary {
    pub name: String,
    pub outcome: Outcome,
    pub snapshot_id: Option<String>,
    pub bytes_added: Option<u64>,
    pub files_new: Option<u64>,
    pub files_changed: Option<u64>,
    pub duration_seconds: f64,
    pub error_class: Option<ErrorClass>,
    pub error: Option<String>,
}

/// A notification: the JSON body of the `webhook` notifier, and what every
/// other notifier formats. Its schema is documented in docs (version 1).
#[derive(Debug, Clone, Serialize)]
pub struct Message {
    pub version: u32,
    pub event: Event,
    /// `backup`, `verify`, `stale`, `config`, `test`.
    pub kind: String,
    pub service: Option<String>,
    /// `ok`, `warning`, `failed`, `interrupted`, `running`, `refused`,
    /// `stale`, `test`.
    pub outcome: Reported,
    pub host: String,
    pub title: String,
    /// A few lines for people.
    pub summary: String,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub duration_seconds: Option<f64>,
    /// An [`ErrorClass`]'s text, or `stale`.
    pub error_class: Option<String>,
    pub error: Option<String>,
    pub warnings: Vec<String>,
    pub destinations: Vec<DestinationSummary>,
    /// What restic-manager exits with for this run, when known.
    pub exit_code: Option<i32>,
    pub log_file: Option<String>,
    /// The end of the run log (failures and warnings only).
    pub log_tail: Option<String>,
}

impl Message {
    pub(super) fn new(
        event: Event,
        kind: &str,
        service: Option<&str>,
        outcome: Reported,
        host: &str,
    ) -> Message {
        Message {
            version: 1,
            event,
            kind: kind.to_string(),
            service: service.map(str::to_string),
            outcome,
            host: host.to_string(),
            title: String::new(),
            summary: String::new(),
            started_at: None,
            finished_at: None,
            duration_seconds: None,
            error_class: None,
            error: None,
            warnings: Vec::new(),
            destinations: Vec::new(),
            exit_code: None,
            log_file: None,
            log_tail: None,
        }
    }

    /// The plain-text body: summary, per destination lines, errors, log tail.
    pub fn text(&self, with_log: bool) -> String {
        let mut s = self.summary.clone();
        for d in &self.destinations {
            s.push_str(&format!("\n- {}: {}", d.name, destination_line(d)));
        }
        if let Some(e) = &self.error {
            s.push_str(&format!(
                "\nerror{}: {e}",
                self.error_class
                    .as_deref()
                    .map_or(String::new(), |c| format!(" ({c})"))
            ));
        }
        for w in &self.warnings {
            s.push_str(&format!("\nwarning: {w}"));
        }
        if let Some(f) = &self.log_file {
            s.push_str(&format!("\nlog: {f}"));
        }
        if with_log && let Some(t) = &self.log_tail {
            s.push_str(&format!("\n\nlast lines of the log:\n{t}"));
        }
        s
    }
}

/// `snapshot 1a2b3c4d, 1.2 MiB added, 12s` or the error.
pub fn destination_line(d: &DestinationSummary) -> String {
    let mut parts = Vec::new();
    if let Some(id) = &d.snapshot_id {
        parts.push(format!(
            "snapshot {}",
            id.chars().take(8).collect::<String>()
        ));
    }
    if let Some(b) = d.bytes_added {
        parts.push(format!("{} added", crate::output::bytes(b)));
    }
    parts.push(crate::output::duration_ms(
        (d.duration_seconds * 1000.0) as u64,
    ));
    if d.outcome != Outcome::Ok {
        parts.insert(0, d.outcome.as_str().to_string());
    }
    if let Some(e) = &d.error {
        parts.push(e.clone());
    }
    parts.join(", ")
}

pub(super) fn verb(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Ok => "succeeded",
        Outcome::Warning => "finished with warnings",
        Outcome::Interrupted => "was interrupted",
        Outcome::Failed => "failed",
    }
}

/// The last lines of a log file, at most [`LOG_TAIL_BYTES`].
pub fn log_tail(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(LOG_TAIL_LINES);
    let mut tail = lines[start..].join("\n");
    if tail.len() > LOG_TAIL_BYTES {
        let mut cut = tail.len() - LOG_TAIL_BYTES;
        while !tail.is_char_boundary(cut) {
            cut += 1;
        }
        tail = format!("…{}", &tail[cut..]);
    }
    (!tail.is_empty()).then_some(tail)
}
