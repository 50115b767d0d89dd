//! Notifications: tell people when a backup fails, warns, recovers, runs
//! long or silently stops (stale), through Discord, a generic JSON webhook,
//! ntfy, healthchecks-style pings and email.
//!
//! A notifier that cannot deliver is a warning on stderr (and in the run
//! log), never a change to the backup's outcome or exit code. Every request
//! has a timeout and up to three attempts. Secrets (URLs, tokens, the SMTP
//! password) never appear in messages about failures: errors are reported
//! without the URL.
//!
//! Which events reach which notifier: the service's `notify_on` (inherited
//! from its profile, else `[notifications] notify_on`, default `failure` +
//! `warning`), narrowed by the notifier's own `notify_on` when it sets one,
//! for the notifiers the service names in `notifiers` (default: all). A
//! recovery is sent to a notifier that takes `failure` or `warning`; `stale`
//! goes to one that takes `stale` or `failure`. healthchecks notifiers get
//! every run's pings whatever `notify_on` says: they are a dead man's switch.

mod discord;
mod email;
mod healthchecks;
mod ntfy;
pub mod state;
mod webhook;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::config::notify::{Notifier, NotifierKind, Notify};
use crate::config::{Config, Service};
use crate::model::{ErrorClass, Outcome, VerifyKind};
use crate::output::Printer;

/// Lines of the run log sent with a failure.
const LOG_TAIL_LINES: usize = 40;
/// At most this many bytes of log tail.
const LOG_TAIL_BYTES: usize = 3500;
/// Attempts per request.
const ATTEMPTS: u32 = 3;
/// The longest `retry_after` honoured; a server asking for more is given up
/// on (the run must not hang on a rate limit).
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

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
    fn new(
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

/// The result of one notifier for one message.
#[derive(Debug, Clone, Serialize)]
pub struct Delivery {
    pub notifier: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub event: Event,
    pub service: Option<String>,
    pub result: Delivered,
    /// `HTTP 204`, `SMTP 250 …`, or why it failed (never a secret).
    pub detail: String,
    pub attempts: u32,
}

impl Delivery {
    pub fn ok(&self) -> bool {
        self.result != Delivered::Failed
    }
}

/// Whether a notifier got a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Delivered {
    Sent,
    Failed,
    /// Held back: the same was sent within `rate_limit_minutes`.
    RateLimited,
}

impl std::fmt::Display for Delivered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Delivered::Sent => "sent",
            Delivered::Failed => "failed",
            Delivered::RateLimited => "rate_limited",
        })
    }
}

/// Sends notifications for one command. Cheap to clone (a long-running
/// timer task holds one).
#[derive(Clone)]
pub struct Dispatch {
    inner: Arc<Inner>,
}

struct Inner {
    notify: Notify,
    /// `[notifications] notify_on` (or the default), for messages about no
    /// particular service.
    default_on: Vec<String>,
    host: String,
    client: reqwest::Client,
    printer: Printer,
}

impl Dispatch {
    pub fn new(config: &Config, printer: Printer) -> Dispatch {
        let default_on = config
            .notifications
            .as_ref()
            .and_then(|n| n.notify_on.clone())
            .unwrap_or_else(|| {
                crate::config::resolve::DEFAULT_NOTIFY_ON
                    .iter()
                    .map(ToString::to_string)
                    .collect()
            });
        Dispatch::from_parts(
            config.notify.clone(),
            default_on,
            config.settings.host.clone(),
            printer,
        )
    }

    pub fn from_parts(
        notify: Notify,
        default_on: Vec<String>,
        host: String,
        printer: Printer,
    ) -> Dispatch {
        let client = reqwest::Client::builder()
            .user_agent(concat!("restic-manager/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        Dispatch {
            inner: Arc::new(Inner {
                notify,
                default_on,
                host,
                client,
                printer,
            }),
        }
    }

    /// Whether any notifier is configured.
    pub fn is_empty(&self) -> bool {
        self.inner.notify.notifiers.is_empty()
    }

    pub fn notifiers(&self) -> &[Notifier] {
        &self.inner.notify.notifiers
    }

    /// The notifiers a service reports to.
    fn for_service(&self, svc: Option<&Service>) -> Vec<&Notifier> {
        let all = &self.inner.notify.notifiers;
        match svc.and_then(|s| s.notifiers.as_ref()) {
            Some(names) => all.iter().filter(|n| names.contains(&n.name)).collect(),
            None => all.iter().collect(),
        }
    }

    /// Whether `n` takes `event` for a service asking for `service_on`.
    fn wants(n: &Notifier, service_on: &[String], event: Event) -> bool {
        if matches!(n.kind, NotifierKind::Healthchecks { .. }) {
            return matches!(
                event,
                Event::Start
                    | Event::Success
                    | Event::Recovery
                    | Event::Warning
                    | Event::Failure
                    | Event::Test
            );
        }
        let takes =
            |list: &[String], names: &[&str]| list.iter().any(|e| names.contains(&e.as_str()));
        let names: &[&str] = match event {
            Event::Start => return false,
            Event::Test => return true,
            Event::Success => &["success"],
            Event::Warning => &["warning"],
            Event::Failure => &["failure"],
            Event::LongRunning => &["long_running"],
            Event::Stale => &["stale", "failure"],
            Event::Recovery => &["failure", "warning", "success"],
        };
        takes(service_on, names) && n.notify_on.as_deref().is_none_or(|own| takes(own, names))
    }

    /// healthchecks `/start` for a run that is about to begin.
    pub async fn started(&self, svc: &Service) -> Vec<Delivery> {
        let mut m = Message::new(
            Event::Start,
            "backup",
            Some(&svc.name),
            Reported::Running,
            &self.inner.host,
        );
        m.started_at = Some(Utc::now());
        m.title = format!("{}: backup started on {}", svc.name, self.inner.host);
        m.summary = m.title.clone();
        self.send(Some(svc), &m, None).await
    }

    /// A run is still going after the threshold.
    pub async fn long_running(
        &self,
        svc: &Service,
        started_at: DateTime<Utc>,
        minutes: u64,
    ) -> Vec<Delivery> {
        let host = &self.inner.host;
        let mut m = Message::new(
            Event::LongRunning,
            "backup",
            Some(&svc.name),
            Reported::Running,
            host,
        );
        m.started_at = Some(started_at);
        m.title = format!(
            "{}: backup still running after {minutes} min on {host}",
            svc.name
        );
        m.summary = format!(
            "The backup of `{}` started at {} and is still running (long_running_threshold_minutes = {minutes}).",
            svc.name,
            started_at.to_rfc3339()
        );
        self.send(Some(svc), &m, None).await
    }

    /// The long-running timer: a task that sends `long_running` once when
    /// the run passes `minutes`. Abort it when the run ends.
    pub fn long_running_timer(
        &self,
        svc: &Service,
        minutes: u64,
    ) -> Option<tokio::task::JoinHandle<Vec<Delivery>>> {
        let wanted = self
            .for_service(Some(svc))
            .iter()
            .any(|n| Self::wants(n, &svc.notify_on, Event::LongRunning));
        if !wanted {
            return None;
        }
        let me = self.clone();
        let svc = svc.clone();
        let started = Utc::now();
        Some(tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(minutes.saturating_mul(60))).await;
            me.long_running(&svc, started, minutes).await
        }))
    }

    /// A finished run: success, warning, failure or recovery.
    pub async fn finished(
        &self,
        svc: &Service,
        report: &BackupResult,
        started_at: DateTime<Utc>,
    ) -> Vec<Delivery> {
        if report.error_class == Some(ErrorClass::AlreadyRunning) {
            return self.refused(svc, report, started_at).await;
        }
        let host = &self.inner.host;
        let event = match report.outcome {
            Outcome::Ok => Event::Success,
            Outcome::Warning => Event::Warning,
            Outcome::Failed | Outcome::Interrupted => Event::Failure,
        };
        let mut m = Message::new(
            event,
            "backup",
            Some(&svc.name),
            Reported::Ended(report.outcome),
            host,
        );
        m.started_at = Some(started_at);
        m.finished_at = Some(Utc::now());
        m.duration_seconds = Some(report.duration_ms as f64 / 1000.0);
        m.error_class = report.error_class.map(|c| c.as_str().to_string());
        m.error = report.error.clone();
        m.warnings = report.warnings.clone();
        m.exit_code = Some(report.outcome.exit_code());
        m.destinations.clone_from(&report.destinations);
        m.log_file = report.log_file.as_ref().map(|p| p.display().to_string());
        if event != Event::Success {
            m.log_tail = report.log_file.as_deref().and_then(log_tail);
        }
        self.finish_message(svc, report.outcome, m).await
    }

    /// A run refused because another run of the service holds its lock.
    /// That is not the service's outcome: nothing is sent, and the next
    /// success is not a "recovery". Only when the holder has run longer
    /// than `long_running_threshold_minutes` (it may be hung, and every
    /// later run is refused until it ends) a failure-level message goes
    /// out, rate-limited, so blocked backups are heard about.
    async fn refused(
        &self,
        svc: &Service,
        report: &BackupResult,
        started_at: DateTime<Utc>,
    ) -> Vec<Delivery> {
        if !report.lock_held_too_long {
            return Vec::new();
        }
        let host = &self.inner.host;
        let mut m = Message::new(
            Event::Failure,
            "backup",
            Some(&svc.name),
            Reported::Refused,
            host,
        );
        m.started_at = Some(started_at);
        m.finished_at = Some(Utc::now());
        m.error_class = report.error_class.map(|c| c.as_str().to_string());
        m.error = report.error.clone();
        m.exit_code = Some(report.outcome.exit_code());
        m.title = format!(
            "{}: backups are being refused on {host}, an earlier run may be hung",
            svc.name
        );
        m.summary = format!(
            "A run of `{}` was refused because an earlier run still holds its lock, for longer than long_running_threshold_minutes.",
            svc.name
        );
        m.log_file = report.log_file.as_ref().map(|p| p.display().to_string());
        self.limited(Some(svc), &m, "failure:already_running").await
    }

    /// A verify finished: failures and warnings are notified (kind
    /// `verify`) and rate-limited like backup ones, per destination and
    /// error class; a successful verify is not announced.
    pub async fn verified(&self, svc: &Service, r: &VerifyResult) -> Vec<Delivery> {
        let event = match r.outcome {
            Outcome::Ok => return Vec::new(),
            Outcome::Warning => Event::Warning,
            Outcome::Failed | Outcome::Interrupted => Event::Failure,
        };
        let host = &self.inner.host;
        let outcome = r.outcome;
        let mut m = Message::new(
            event,
            "verify",
            Some(&svc.name),
            Reported::Ended(outcome),
            host,
        );
        m.started_at = DateTime::from_timestamp_millis(r.started_at_ms);
        m.finished_at = Some(Utc::now());
        m.duration_seconds = Some(r.duration_ms as f64 / 1000.0);
        m.error_class = r.error_class.map(|c| c.as_str().to_string());
        m.error = r.error.clone();
        m.warnings = r.warnings.clone();
        m.title = format!(
            "{}: verify ({}) of `{}` {} on {host}",
            svc.name,
            r.kind,
            r.destination,
            verb(outcome)
        );
        m.summary = format!(
            "The {} verification of `{}` on `{}` ({}) {}.",
            r.kind,
            svc.name,
            r.destination,
            r.repository,
            verb(outcome)
        );
        m.exit_code = Some(r.outcome.exit_code());
        m.destinations = vec![DestinationSummary {
            name: r.destination.clone(),
            outcome,
            snapshot_id: None,
            bytes_added: None,
            files_new: None,
            files_changed: None,
            duration_seconds: r.duration_ms as f64 / 1000.0,
            error_class: r.error_class,
            error: r.error.clone(),
        }];
        let key = format!(
            "verify:{}:{}",
            r.destination,
            m.error_class.as_deref().unwrap_or(event.as_str())
        );
        self.limited(Some(svc), &m, &key).await
    }

    /// Every selected service failed before its backup could start (restic
    /// missing, …). Each gets a failure message.
    pub async fn failed_before_start(
        &self,
        services: &[&Service],
        error_class: ErrorClass,
        error: &str,
    ) -> Vec<Delivery> {
        let mut out = Vec::new();
        for svc in services {
            let host = &self.inner.host;
            let mut m = Message::new(
                Event::Failure,
                "backup",
                Some(&svc.name),
                Reported::Ended(Outcome::Failed),
                host,
            );
            m.finished_at = Some(Utc::now());
            m.error_class = Some(error_class.as_str().to_string());
            m.error = Some(error.to_string());
            m.exit_code = Some(1);
            out.extend(self.finish_message(svc, Outcome::Failed, m).await);
        }
        out
    }

    /// The configuration could not be loaded; `message` is the error.
    pub async fn config_failed(&self, message: &str) -> Vec<Delivery> {
        let host = &self.inner.host;
        let mut m = Message::new(
            Event::Failure,
            "config",
            None,
            Reported::Ended(Outcome::Failed),
            host,
        );
        m.finished_at = Some(Utc::now());
        m.error_class = Some(ErrorClass::Config.as_str().to_string());
        m.error = Some(message.to_string());
        m.exit_code = Some(2);
        m.title =
            format!("restic-manager on {host}: the configuration cannot be loaded, no backup ran");
        m.summary = m.title.clone();
        self.limited(None, &m, "failure:config").await
    }

    /// A service's newest successful backup is too old.
    pub async fn stale(&self, svc: &Service, reasons: &[String]) -> Vec<Delivery> {
        let host = &self.inner.host;
        let mut m = Message::new(
            Event::Stale,
            "stale",
            Some(&svc.name),
            Reported::Stale,
            host,
        );
        m.finished_at = Some(Utc::now());
        m.error_class = Some("stale".to_string());
        m.error = Some(reasons.join("; "));
        m.title = format!("{}: no recent backup (stale) on {host}", svc.name);
        m.summary = format!(
            "`{}` has no successful backup within its `max_age`: {}",
            svc.name,
            reasons.join("; ")
        );
        self.limited(Some(svc), &m, "stale").await
    }

    /// `notify test`: one message to each notifier (or the named one),
    /// without rate limiting.
    pub async fn test(&self, only: Option<&str>) -> Vec<Delivery> {
        let host = &self.inner.host;
        let mut m = Message::new(Event::Test, "test", None, Reported::Test, host);
        m.finished_at = Some(Utc::now());
        m.title = format!("restic-manager test notification from {host}");
        m.summary =
            "If you can read this, restic-manager can reach you through this notifier.".to_string();
        let targets: Vec<&Notifier> = self
            .inner
            .notify
            .notifiers
            .iter()
            .filter(|n| only.is_none_or(|o| o == n.name))
            .collect();
        self.deliver(&targets, &m).await
    }

    /// Titles, recovery detection and rate limiting for a finished run
    /// that ended `outcome`.
    async fn finish_message(
        &self,
        svc: &Service,
        outcome: Outcome,
        mut m: Message,
    ) -> Vec<Delivery> {
        if self.is_empty() {
            return Vec::new();
        }
        let host = self.inner.host.clone();
        let (mut locked, warning) = state::Locked::open(&self.inner.notify.cache_file);
        if let Some(w) = warning {
            self.inner
                .printer
                .info(format!("warning: notifications: {w}"));
        }
        let entry = locked.service(&svc.name);
        let previous = entry.last_outcome;
        entry.last_outcome = Some(outcome);
        let recovered = m.event == Event::Success && previous.is_some_and(|p| p != Outcome::Ok);
        if recovered {
            m.event = Event::Recovery;
            // The next failure is news again.
            entry.sent.clear();
        }
        if let Err(e) = locked.save() {
            self.inner
                .printer
                .info(format!("warning: notifications: {e}"));
        }
        drop(locked);
        if m.title.is_empty() {
            m.title = match m.event {
                Event::Recovery => format!("{}: backup recovered on {host}", svc.name),
                _ => format!("{}: backup {} on {host}", svc.name, verb(outcome)),
            };
        }
        if m.summary.is_empty() {
            m.summary = match m.event {
                Event::Recovery => format!(
                    "`{}` backed up successfully again (the previous run {}).",
                    svc.name,
                    verb(previous.unwrap_or(Outcome::Failed))
                ),
                _ => format!("The backup of `{}` {}.", svc.name, verb(outcome)),
            };
        }
        let key = match m.event {
            Event::Failure => Some(format!(
                "failure:{}",
                m.error_class.as_deref().unwrap_or("other")
            )),
            Event::Warning => Some("warning".to_string()),
            _ => None,
        };
        match key {
            Some(k) => self.limited(Some(svc), &m, &k).await,
            None => self.send(Some(svc), &m, None).await,
        }
    }

    /// Sends `m` unless the same key was sent for the service within
    /// `rate_limit_minutes` (healthchecks pings are never held back).
    async fn limited(&self, svc: Option<&Service>, m: &Message, key: &str) -> Vec<Delivery> {
        if self.is_empty() {
            return Vec::new();
        }
        let window_ms = i64::try_from(self.inner.notify.rate_limit_minutes.saturating_mul(60_000))
            .unwrap_or(i64::MAX);
        let name = svc.map_or("", |s| s.name.as_str());
        let now = Utc::now().timestamp_millis();
        let last = {
            let (mut locked, _) = state::Locked::open(&self.inner.notify.cache_file);
            locked.service(name).sent.get(key).copied()
        };
        let held = last.filter(|t| now.saturating_sub(*t) < window_ms);
        let out = self.send(svc, m, held).await;
        if held.is_none()
            && out
                .iter()
                .any(|d| d.result == Delivered::Sent && d.kind != "healthchecks")
        {
            let (mut locked, _) = state::Locked::open(&self.inner.notify.cache_file);
            locked.service(name).sent.insert(key.to_string(), now);
            if let Err(e) = locked.save() {
                self.inner
                    .printer
                    .info(format!("warning: notifications: {e}"));
            }
        }
        out
    }

    /// Sends to every notifier of the service that takes the event. With
    /// `held` (when the same message was last sent), the rate-limited ones
    /// are reported but not sent.
    async fn send(&self, svc: Option<&Service>, m: &Message, held: Option<i64>) -> Vec<Delivery> {
        let on = svc.map_or(&self.inner.default_on, |s| &s.notify_on);
        let targets: Vec<&Notifier> = self
            .for_service(svc)
            .into_iter()
            .filter(|n| Self::wants(n, on, m.event))
            // A healthchecks check watches the backups; a failed verify
            // must not mark it down (other notifiers report it).
            .filter(|n| {
                !(m.kind == "verify" && matches!(n.kind, NotifierKind::Healthchecks { .. }))
            })
            .collect();
        let (pings, others): (Vec<&Notifier>, Vec<&Notifier>) = targets
            .into_iter()
            .partition(|n| matches!(n.kind, NotifierKind::Healthchecks { .. }));
        let mut out = self.deliver(&pings, m).await;
        match held {
            Some(at) => {
                let ago = (Utc::now().timestamp_millis() - at).max(0) / 60_000;
                for n in others {
                    self.inner.printer.verbose(format!(
                        "notifier `{}`: {} of `{}` not sent again: the same was sent {ago} min ago (rate_limit_minutes = {})",
                        n.name,
                        m.event.as_str(),
                        m.service.as_deref().unwrap_or("-"),
                        self.inner.notify.rate_limit_minutes
                    ));
                    out.push(Delivery {
                        notifier: n.name.clone(),
                        kind: n.kind.type_name(),
                        event: m.event,
                        service: m.service.clone(),
                        result: Delivered::RateLimited,
                        detail: format!(
                            "sent {ago} min ago; rate_limit_minutes = {}",
                            self.inner.notify.rate_limit_minutes
                        ),
                        attempts: 0,
                    });
                }
            }
            None => out.extend(self.deliver(&others, m).await),
        }
        out
    }

    /// Sends to each notifier at once; failures become warnings.
    async fn deliver(&self, targets: &[&Notifier], m: &Message) -> Vec<Delivery> {
        let sends = targets.iter().map(|n| async move {
            let (res, attempts) = match &n.kind {
                NotifierKind::Discord { url } => discord::send(&self.inner.client, n, url, m).await,
                NotifierKind::Webhook { url, headers } => {
                    webhook::send(&self.inner.client, n, url, headers, m).await
                }
                NotifierKind::Ntfy { url, token_file } => {
                    ntfy::send(&self.inner.client, n, url, token_file.as_deref(), m).await
                }
                NotifierKind::Healthchecks { url } => {
                    healthchecks::send(&self.inner.client, n, url, m).await
                }
                NotifierKind::Email(e) => email::send(n, e, m).await,
            };
            let (result, detail) = match res {
                Ok(d) => (Delivered::Sent, d),
                Err(e) => (Delivered::Failed, e),
            };
            Delivery {
                notifier: n.name.clone(),
                kind: n.kind.type_name(),
                event: m.event,
                service: m.service.clone(),
                result,
                detail,
                attempts,
            }
        });
        let out = futures_util::future::join_all(sends).await;
        for d in &out {
            if d.result == Delivered::Failed && m.event != Event::Test {
                eprintln!(
                    "warning: notifier `{}` ({}): {} of `{}` not delivered: {}",
                    d.notifier,
                    d.kind,
                    d.event.as_str(),
                    d.service.as_deref().unwrap_or("-"),
                    d.detail
                );
            } else if d.result == Delivered::Sent {
                self.inner.printer.verbose(format!(
                    "notifier `{}`: {} sent ({})",
                    d.notifier,
                    d.event.as_str(),
                    d.detail
                ));
            }
        }
        out
    }
}

fn verb(outcome: Outcome) -> &'static str {
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

/// How one HTTP attempt ended.
enum Attempt {
    Done(String),
    /// Worth another attempt, after this long (429's `retry_after`).
    Retry(String, Option<Duration>),
    Fatal(String),
}

/// POSTs (or whatever `build` makes) with the notifier's timeout, up to
/// [`ATTEMPTS`] times: network errors, timeouts and 5xx are retried after
/// 1 s and 2 s; 429 after the server's `retry_after` (body, seconds) or
/// `Retry-After` header; other 4xx are not retried. Errors never carry the
/// URL.
async fn http(
    n: &Notifier,
    build: impl Fn() -> reqwest::RequestBuilder,
) -> (Result<String, String>, u32) {
    let mut last = String::new();
    for attempt in 1..=ATTEMPTS {
        let res = match build().timeout(n.timeout).send().await {
            Err(e) => {
                let e = e.without_url();
                let what = if e.is_timeout() {
                    format!("no answer within {} s", n.timeout.as_secs())
                } else if e.is_connect() {
                    format!("cannot connect: {}", root_cause(&e))
                } else {
                    format!("request failed: {}", root_cause(&e))
                };
                Attempt::Retry(what, None)
            }
            Ok(r) => {
                let status = r.status();
                let header_wait = r
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<f64>().ok());
                let body = r.text().await.unwrap_or_default();
                if status.is_success() {
                    Attempt::Done(format!("HTTP {}", status.as_u16()))
                } else if status.as_u16() == 429 {
                    let body_wait = serde_json::from_str::<serde_json::Value>(&body)
                        .ok()
                        .and_then(|v| v.get("retry_after").and_then(serde_json::Value::as_f64));
                    let wait = body_wait.or(header_wait).unwrap_or(1.0).max(0.0);
                    let wait = Duration::from_secs_f64(wait.min(3600.0));
                    if wait > MAX_RETRY_AFTER {
                        Attempt::Fatal(format!(
                            "HTTP 429: rate limited for {} s, longer than restic-manager waits",
                            wait.as_secs()
                        ))
                    } else {
                        Attempt::Retry("HTTP 429 (rate limited)".to_string(), Some(wait))
                    }
                } else if status.is_server_error() {
                    Attempt::Retry(format!("HTTP {}{}", status.as_u16(), snippet(&body)), None)
                } else {
                    Attempt::Fatal(format!("HTTP {}{}", status.as_u16(), snippet(&body)))
                }
            }
        };
        match res {
            Attempt::Done(d) => return (Ok(d), attempt),
            Attempt::Fatal(e) => return (Err(e), attempt),
            Attempt::Retry(e, wait) => {
                last = e;
                if attempt < ATTEMPTS {
                    let wait = wait.unwrap_or(Duration::from_secs(u64::from(attempt)));
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }
    (Err(format!("{last} (after {ATTEMPTS} attempts)")), ATTEMPTS)
}

/// The innermost error message (hyper's "connection refused" rather than
/// reqwest's "error sending request").
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

/// `: <first 200 characters of the body>` for error messages.
fn snippet(body: &str) -> String {
    let b = body.trim();
    if b.is_empty() {
        return String::new();
    }
    let s: String = b.chars().take(200).collect();
    format!(": {s}")
}

/// The notifier's URL, or why it cannot be read (never the URL itself).
fn url_of(url: &crate::config::notify::Secret) -> Result<String, String> {
    url.read().map(|u| u.trim_end_matches('/').to_string())
}

/// A service found stale by [`Dispatch::check_stale`].
#[derive(Debug, Clone, Serialize)]
pub struct StaleService {
    pub service: String,
    /// Per destination, why (`local: newest snapshot 3d ago, max_age 26h`).
    pub reasons: Vec<String>,
}

impl Dispatch {
    /// Evaluates health (see `crate::health`) for the enabled services not
    /// in `skip` and sends `stale` for each one with a stale destination,
    /// rate-limited like failures. `run` calls it for the services it did
    /// not just run; `notify check` for all (from cron).
    pub async fn check_stale(
        &self,
        config: &Config,
        history: &crate::history::History,
        skip: &[&str],
    ) -> Result<(Vec<StaleService>, Vec<Delivery>), crate::history::HistoryError> {
        let services: Vec<&Service> = config
            .services
            .iter()
            .filter(|s| s.enabled && !skip.contains(&s.name.as_str()))
            .collect();
        let health = crate::health::evaluate_services(&services, history, Utc::now(), None)?;
        let mut stale = Vec::new();
        let mut out = Vec::new();
        for h in health {
            let reasons: Vec<String> = h
                .destinations
                .iter()
                .filter(|d| d.health.state == crate::health::State::Stale)
                .map(|d| format!("{}: {}", d.destination, d.health.reasons.join(", ")))
                .collect();
            if reasons.is_empty() {
                continue;
            }
            if let Some(svc) = config.service(&h.service) {
                out.extend(self.stale(svc, &reasons).await);
            }
            stale.push(StaleService {
                service: h.service,
                reasons,
            });
        }
        Ok((stale, out))
    }
}

/// The configuration `file` could not be loaded (`message`): notify with
/// whatever notifier settings can still be read from it. Possible when the
/// file is valid TOML with a readable `[global]` (or none) and the broken
/// part is elsewhere, e.g. a misspelt key in a service; a notifier table
/// that is itself broken is skipped. Returns nothing when no notifier
/// could be read.
pub async fn config_failure(
    env: &crate::config::Env,
    file: &Path,
    message: &str,
    printer: Printer,
) -> Vec<Delivery> {
    let Ok(parsed) = crate::config::load::load_file(file) else {
        return Vec::new();
    };
    // Notifiers of drop-in files too, whichever file is broken.
    let (raw, loc, _) = crate::config::include::merge_lenient(parsed, env);
    let state_dir = raw
        .global
        .state_directory
        .as_deref()
        .map(std::path::PathBuf::from)
        .filter(|p| p.is_absolute())
        .unwrap_or_else(|| env.state_dir());
    let (notify, _) = crate::config::notify::resolve(&raw, &state_dir, env, &loc);
    if notify.notifiers.is_empty() {
        return Vec::new();
    }
    let default_on = raw
        .notifications
        .as_ref()
        .and_then(|n| n.notify_on.clone())
        .unwrap_or_else(|| {
            crate::config::resolve::DEFAULT_NOTIFY_ON
                .iter()
                .map(ToString::to_string)
                .collect()
        });
    let host = raw.global.host.clone().unwrap_or_else(|| {
        nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .unwrap_or_else(|| "localhost".to_string())
    });
    Dispatch::from_parts(notify, default_on, host, printer)
        .config_failed(message)
        .await
}

/// Appends what each notifier did to the run's log file, so the log tells
/// the whole story of a run.
pub fn log_deliveries(log_file: &Path, deliveries: &[Delivery]) {
    use std::io::Write;
    if deliveries.is_empty() {
        return;
    }
    let Ok(mut f) = std::fs::OpenOptions::new().append(true).open(log_file) else {
        return;
    };
    let now = chrono::Local::now().format("%Y-%m-%d %H:%M:%S");
    for d in deliveries {
        let _ = writeln!(
            f,
            "{now} notification `{}` ({}) {}: {} ({})",
            d.notifier,
            d.kind,
            d.event.as_str(),
            d.result,
            d.detail
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::notify::Secret;

    fn notifier(kind: &str, own: Option<&[&str]>) -> Notifier {
        let url = Secret::Inline("http://x".into());
        Notifier {
            name: kind.into(),
            notify_on: own.map(|o| o.iter().map(ToString::to_string).collect()),
            timeout: Duration::from_secs(1),
            kind: match kind {
                "healthchecks" => NotifierKind::Healthchecks { url },
                _ => NotifierKind::Discord { url },
            },
        }
    }

    #[test]
    fn which_events_a_notifier_takes() {
        let default = ["failure".to_string(), "warning".to_string()];
        let success = ["success".to_string()];
        for (kind, own, service_on, event, want) in [
            ("discord", None, &default[..], Event::Failure, true),
            ("discord", None, &default[..], Event::Success, false),
            ("discord", None, &default[..], Event::Recovery, true),
            ("discord", None, &default[..], Event::Stale, true),
            ("discord", None, &default[..], Event::LongRunning, false),
            ("discord", None, &default[..], Event::Start, false),
            ("discord", None, &success[..], Event::Recovery, true),
            ("discord", None, &success[..], Event::Failure, false),
            // The notifier's own list narrows, never widens.
            (
                "discord",
                Some(&["failure"][..]),
                &default[..],
                Event::Warning,
                false,
            ),
            (
                "discord",
                Some(&["success"][..]),
                &default[..],
                Event::Success,
                false,
            ),
            (
                "discord",
                Some(&["stale"][..]),
                &default[..],
                Event::Stale,
                true,
            ),
            // healthchecks: every run, whatever notify_on says; no stale.
            (
                "healthchecks",
                Some(&["failure"][..]),
                &success[..],
                Event::Start,
                true,
            ),
            ("healthchecks", None, &default[..], Event::Success, true),
            ("healthchecks", None, &default[..], Event::Stale, false),
            (
                "healthchecks",
                None,
                &default[..],
                Event::LongRunning,
                false,
            ),
        ] {
            assert_eq!(
                Dispatch::wants(&notifier(kind, own), service_on, event),
                want,
                "{kind} own={own:?} service={service_on:?} {event:?}"
            );
        }
    }

    #[test]
    fn the_log_tail_keeps_the_end() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let f = dir.path().join("run.log");
        let text: Vec<String> = (0..100).map(|i| format!("line {i}")).collect();
        std::fs::write(&f, text.join("\n")).unwrap_or_else(|e| panic!("{e}"));
        let tail = log_tail(&f).unwrap_or_default();
        assert!(
            tail.starts_with("line 60\n") && tail.ends_with("line 99"),
            "{tail}"
        );
    }
}
