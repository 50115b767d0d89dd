//! Routing and rate limiting: which notifier takes which event for which
//! service, the messages a run, a verify, a stale check or a broken
//! configuration produce, and when the same news is held back.

use std::path::Path;
use std::sync::Arc;

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::deliver::{Delivered, Delivery};
use super::message::{
    BackupResult, DestinationSummary, Event, Message, Reported, VerifyResult, log_tail, verb,
};
use super::state;
use crate::config::notify::{Notifier, NotifierKind, Notify};
use crate::config::{Config, Service};
use crate::model::{ErrorClass, Outcome};
use crate::output::Printer;

/// Sends notifications for one command. Cheap to clone (a long-running
/// timer task holds one).
#[derive(Clone)]
pub struct Dispatch {
    pub(super) inner: Arc<Inner>,
}

pub(super) struct Inner {
    pub(super) notify: Notify,
    /// `[notifications] notify_on` (or the default), for messages about no
    /// particular service.
    pub(super) default_on: Vec<String>,
    pub(super) host: String,
    pub(super) client: reqwest::Client,
    pub(super) printer: Printer,
}

impl Dispatch {
    pub fn new(config: &Config, printer: Printer) -> Dispatch {
        let default_on = default_notify_on(config.notifications.as_ref());
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
    pub(super) fn wants(n: &Notifier, service_on: &[String], event: Event) -> bool {
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
    let default_on = default_notify_on(raw.notifications.as_ref());
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

/// The events notifiers hear of when they do not say: the original tool's
/// `[notifications] notify_on`, or [`crate::config::resolve::DEFAULT_NOTIFY_ON`].
fn default_notify_on(n: Option<&crate::config::schema::NotificationsRaw>) -> Vec<String> {
    n.and_then(|n| n.notify_on.clone()).unwrap_or_else(|| {
        crate::config::resolve::DEFAULT_NOTIFY_ON
            .iter()
            .map(ToString::to_string)
            .collect()
    })
}
