//! `verify`: proves that each repository can be read back, not only that
//! backups were written.
//!
//! Per service and destination, under the same per-service lock as `run`
//! (a verify never overlaps a backup of the service): `restic check`
//! (structure), with `--read-data` or `--read-data-subset` to read packs,
//! and optionally a restore drill (see [`drill`]). A scheduled verify
//! without flags reads the next part `n/N` of a rotation kept in history,
//! so the whole repository is read once every `verify_rotation` runs.
//! Every result is a [`VerifyReport`], recorded in the `verifies` table.

pub mod detail;
pub mod drill;
pub mod spec;

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::config::{Config, PasswordSource, Service};
use crate::engine::lock::{LockError, ServiceLock};
use crate::history::{History, now_ms};
use crate::model::{Failure, Outcome, VerifyKind};
use crate::process::Shutdown;
use crate::restic::ops;
use crate::restic::{ErrorClass, Repository, Restic};
pub use detail::{CheckDetail, Detail, DrillDetail, DumpDetail, Packs};

/// How long a data-reading verify (read-data, a subset, a drill) may run.
/// A structure check gets the service's own timeout.
const READ_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

/// What to verify, from the command line.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// `--deep`: `check --read-data`.
    pub deep: bool,
    /// `--read-data-subset` (already validated by [`spec::parse_subset`]).
    pub subset: Option<String>,
    /// `--drill`: a restore drill after the check.
    pub drill: bool,
    /// What started this (`cli`, `web`, `cron`, `systemd`, …); a scheduled
    /// verify (anything but `cli` and `web`) without `deep`/`subset` reads
    /// the next rotation part.
    pub trigger: String,
}

/// The result of one verification of one repository: what history
/// records, `--json` prints, and notifications and metrics consume.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    pub service: String,
    pub destination: String,
    /// The repository location, credentials redacted.
    pub repository: String,
    pub kind: VerifyKind,
    /// The part read, e.g. `3/10`, for kind `subset`.
    pub subset: Option<String>,
    pub trigger: String,
    pub outcome: Outcome,
    pub error_class: Option<ErrorClass>,
    pub error: Option<String>,
    pub warnings: Vec<String>,
    /// Unix milliseconds.
    pub started_at_ms: i64,
    pub duration_ms: u64,
    /// What was read or compared (the `detail` JSON in history).
    pub detail: Detail,
    /// The row in the history table `verifies`, when recorded.
    pub history_id: Option<i64>,
}

impl VerifyReport {
    fn new(
        svc: &str,
        destination: &str,
        repository: &str,
        kind: VerifyKind,
        trigger: &str,
        detail: Detail,
    ) -> Self {
        VerifyReport {
            service: svc.to_string(),
            destination: destination.to_string(),
            repository: repository.to_string(),
            kind,
            subset: None,
            trigger: trigger.to_string(),
            outcome: Outcome::Ok,
            error_class: None,
            error: None,
            warnings: Vec::new(),
            started_at_ms: now_ms(),
            duration_ms: 0,
            detail,
            history_id: None,
        }
    }

    /// Marks the report failed (the first error wins).
    pub fn fail(&mut self, class: ErrorClass, msg: impl Into<String>) {
        let outcome = if class == ErrorClass::Interrupted {
            Outcome::Interrupted
        } else {
            Outcome::Failed
        };
        self.outcome = self.outcome.worst(outcome);
        if self.error.is_none() {
            self.error_class = Some(class);
            self.error = Some(msg.into());
        }
    }

    /// Adds a warning (outcome at least `warning`).
    pub fn warn(&mut self, msg: impl Into<String>) {
        self.outcome = self.outcome.worst(Outcome::Warning);
        self.warnings.push(msg.into());
    }

    /// What notifiers are told about this verification.
    pub fn notice(&self) -> crate::notify::VerifyResult {
        crate::notify::VerifyResult {
            destination: self.destination.clone(),
            repository: self.repository.clone(),
            kind: self.kind,
            outcome: self.outcome,
            error_class: self.error_class,
            error: self.error.clone(),
            warnings: self.warnings.clone(),
            started_at_ms: self.started_at_ms,
            duration_ms: self.duration_ms,
        }
    }

    /// A failure that happened before the repository could be used.
    fn failed(
        svc: &str,
        destination: &str,
        repository: &str,
        kind: VerifyKind,
        trigger: &str,
        class: ErrorClass,
        msg: String,
    ) -> Self {
        let mut r = VerifyReport::new(
            svc,
            destination,
            repository,
            kind,
            trigger,
            Detail::Empty {},
        );
        r.fail(class, msg);
        r
    }
}

/// The worst outcome of a set of reports (`ok` when empty).
pub fn overall(reports: &[VerifyReport]) -> Outcome {
    reports.iter().fold(Outcome::Ok, |o, r| o.worst(r.outcome))
}

/// After a verify, as every front end does it: failed and warning results
/// are notified (never changing the outcome), and the metrics pick up the
/// new `verifies` rows.
pub async fn announce(
    config: &Config,
    history: &History,
    restic: &Restic,
    dispatch: &crate::notify::Dispatch,
    reports: &[VerifyReport],
) -> Vec<crate::notify::Delivery> {
    let mut deliveries = Vec::new();
    if !dispatch.is_empty() {
        for r in reports {
            if let Some(svc) = config.service(&r.service) {
                deliveries.extend(dispatch.verified(svc, &r.notice()).await);
            }
        }
    }
    crate::metrics::after_command(config, history, Some(restic.version.to_string())).await;
    deliveries
}

/// Everything a verify needs, passed explicitly.
pub struct Verifier<'a> {
    pub config: &'a Config,
    pub restic: &'a Restic,
    pub history: &'a History,
    pub shutdown: Shutdown,
    /// A progress line for the user (stderr).
    pub note: &'a (dyn Fn(&str) + Sync),
    pub request: &'a Request,
    /// Only these destinations (all of a service's targets when empty).
    pub destinations: &'a [String],
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl Verifier<'_> {
    /// The kind of check this request makes: (history kind, restic's read
    /// argument for [`ops::check`]).
    fn check_mode(&self, svc: &Service, destination: &str) -> (VerifyKind, Option<String>) {
        let r = self.request;
        if r.deep {
            return (VerifyKind::ReadData, Some(String::new()));
        }
        if let Some(s) = &r.subset {
            return (VerifyKind::Subset, Some(s.clone()));
        }
        if !matches!(r.trigger.as_str(), "cli" | "web") {
            let last = self
                .history
                .last_rotation_subset(&svc.name, destination)
                .ok()
                .flatten();
            return (
                VerifyKind::Subset,
                Some(spec::next_rotation(last.as_deref(), svc.verify.rotation)),
            );
        }
        (VerifyKind::Check, None)
    }

    /// Verifies the given services one after another.
    pub async fn run(&self, services: &[&Service]) -> Vec<VerifyReport> {
        // Each network destination is asked once whether it answers: a
        // dead one would keep restic ≥ 0.17 retrying for 15 minutes.
        let probes = crate::restic::probe::check_all(
            self.config,
            services
                .iter()
                .flat_map(|s| self.targets(s))
                .map(String::as_str),
        )
        .await;
        let mut out = Vec::new();
        for svc in services {
            if self.shutdown.signal().is_some() {
                break;
            }
            out.extend(self.service(svc, &probes).await);
        }
        out
    }

    fn targets<'s>(&self, svc: &'s Service) -> Vec<&'s String> {
        svc.targets
            .iter()
            .filter(|t| self.destinations.is_empty() || self.destinations.contains(t))
            .collect()
    }

    async fn service(
        &self,
        svc: &Service,
        probes: &crate::restic::probe::Probes,
    ) -> Vec<VerifyReport> {
        let targets = self.targets(svc);
        if targets.is_empty() {
            return Vec::new();
        }
        let trigger = &self.request.trigger;
        let lock = match self.lock(svc).await {
            Ok(l) => l,
            Err((class, msg)) => {
                return targets
                    .iter()
                    .map(|t| {
                        VerifyReport::failed(
                            &svc.name,
                            t,
                            "",
                            VerifyKind::Check,
                            trigger,
                            class,
                            msg.clone(),
                        )
                    })
                    .collect();
            }
        };
        // Verifies run under this lock, so any still marked running died.
        if let Err(e) = self.history.reap_dead_verifies(&svc.name) {
            (self.note)(&format!("warning: {e}"));
        }
        let mut out = Vec::new();
        for t in targets {
            if self.shutdown.signal().is_some() {
                break;
            }
            let repo = match self.repository(svc, t) {
                Ok(r) => r,
                Err((display, msg)) => {
                    out.push(VerifyReport::failed(
                        &svc.name,
                        t,
                        &display,
                        VerifyKind::Check,
                        trigger,
                        ErrorClass::Config,
                        msg,
                    ));
                    continue;
                }
            };
            if let Some(dead) = probes.failed(t) {
                out.push(VerifyReport::failed(
                    &svc.name,
                    t,
                    &repo.display,
                    VerifyKind::Check,
                    trigger,
                    ErrorClass::Unreachable,
                    dead.message(),
                ));
                continue;
            }
            if self.request.drill {
                // The drill's listing (`snapshots`, `ls`: no lock) runs
                // while `check` does: each restic start costs a key
                // derivation and loading the index.
                let drill = self.drill_of(svc, &repo);
                let (check, prepared) = tokio::join!(self.check(svc, &repo), drill.prepare());
                out.push(check);
                if self.shutdown.signal().is_none() {
                    out.push(self.drill(svc, &repo, prepared).await);
                }
            } else {
                out.push(self.check(svc, &repo).await);
            }
        }
        drop(lock);
        out
    }

    /// The service lock, waiting up to `lock_wait_seconds` for a running
    /// backup (or verify) of the service to finish.
    async fn lock(&self, svc: &Service) -> Result<ServiceLock, (ErrorClass, String)> {
        let settings = &self.config.settings;
        let started = Instant::now();
        let limit = Duration::from_secs(settings.lock_wait_seconds);
        let mut told = false;
        loop {
            match ServiceLock::acquire(&settings.lock_directory, &svc.name) {
                Ok(l) => return Ok(l),
                Err(e @ LockError::Io { .. }) => {
                    return Err((ErrorClass::PermissionDenied, e.to_string()));
                }
                Err(e @ LockError::Busy { .. }) => {
                    if started.elapsed() >= limit {
                        return Err((
                            ErrorClass::AlreadyRunning,
                            format!(
                                "{e}; gave up waiting after {}s (`lock_wait_seconds`); verify again when it has finished",
                                limit.as_secs()
                            ),
                        ));
                    }
                    if !told {
                        (self.note)(&format!(
                            "{}: {e}; waiting for it to finish (up to {}s)",
                            svc.name,
                            limit.as_secs()
                        ));
                        told = true;
                    }
                    let mut sd = self.shutdown.clone();
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_millis(500)) => {}
                        () = sd.wait() => return Err((ErrorClass::Interrupted, "interrupted while waiting for the service lock".into())),
                    }
                }
            }
        }
    }

    /// The repository of `svc` on `destination`, secrets read; on error
    /// (display location, message).
    fn repository(&self, svc: &Service, destination: &str) -> Result<Repository, (String, String)> {
        let Some(dest) = self.config.destinations.get(destination) else {
            return Err((
                String::new(),
                format!("destination `{destination}` is not defined"),
            ));
        };
        let repo = Repository::open(dest, &svc.name, &self.config.settings.password)
            .map_err(|e| (String::new(), e.to_string()))?;
        if let PasswordSource::File(f) = &repo.password
            && !f.exists()
        {
            return Err((
                repo.display.clone(),
                format!(
                    "password file `{}` does not exist; run `restic-manager setup` to create it (or restore your copy)",
                    f.display()
                ),
            ));
        }
        Ok(repo)
    }

    /// Runs a restic operation; when the repository is locked by another
    /// restic, removes stale locks (plain `unlock`: dead processes on this
    /// host, or older than 30 minutes) and retries with back-off for up to
    /// `lock_wait_seconds` (restic 0.14 has no `--retry-lock`).
    async fn retry_locked<T, F, Fut>(&self, repo: &Repository, op: F) -> Result<T, Failure>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, Failure>>,
    {
        let limit = Duration::from_secs(self.config.settings.lock_wait_seconds);
        crate::restic::retry_while_locked(
            limit,
            || limit,
            &self.shutdown,
            op,
            |delay| async move {
                let _ = ops::unlock_stale(self.restic, repo).await;
                (self.note)(&format!(
                    "`{}` is locked by another restic process; retrying in {:.1}s",
                    repo.destination,
                    delay.as_secs_f32()
                ));
            },
        )
        .await
    }

    /// Records the start of a verify; a history failure becomes a warning.
    fn start(&self, r: &mut VerifyReport) {
        match self.history.start_verify(
            &r.service,
            &r.destination,
            r.kind,
            r.subset.as_deref(),
            &r.trigger,
        ) {
            Ok(id) => r.history_id = Some(id),
            Err(e) => r.warn(format!("verify not recorded in history: {e}")),
        }
    }

    /// Records how a verify ended.
    fn finish(&self, r: &mut VerifyReport, started: Instant) {
        r.duration_ms = ms(started.elapsed());
        r.detail.finish(r.duration_ms, &r.warnings);
        if let Some(id) = r.history_id {
            let message = r.error.clone().or_else(|| r.warnings.first().cloned());
            if let Err(e) = self.history.finish_verify(
                id,
                r.outcome,
                r.error_class,
                message.as_deref(),
                serde_json::to_string(&r.detail).ok().as_deref(),
            ) {
                r.warnings.push(format!("history: {e}"));
            }
        }
    }

    async fn check(&self, svc: &Service, repo: &Repository) -> VerifyReport {
        let (kind, read) = self.check_mode(svc, &repo.destination);
        let detail = CheckDetail {
            read: match (kind, read.as_deref()) {
                (VerifyKind::ReadData, _) => "all",
                (_, Some(s)) => s,
                _ => "none",
            }
            .to_string(),
            restic_version: self.restic.version.to_string(),
            ..CheckDetail::default()
        };
        let mut r = VerifyReport::new(
            &svc.name,
            &repo.destination,
            &repo.display,
            kind,
            &self.request.trigger,
            Detail::Check(detail),
        );
        if kind == VerifyKind::Subset {
            r.subset.clone_from(&read);
        }
        let started = Instant::now();
        self.start(&mut r);
        let what = match (kind, read.as_deref()) {
            (VerifyKind::ReadData, _) => {
                "checking and reading every pack (this takes as long as downloading the repository)"
                    .to_string()
            }
            (_, Some(s)) => format!("checking and reading subset {s} of the packs"),
            _ => "checking the repository structure".to_string(),
        };
        (self.note)(&format!("{} → {}: {what}", svc.name, repo.destination));
        let timeout = if read.is_some() {
            READ_TIMEOUT
        } else {
            svc.timeout()
        };
        let res = self
            .retry_locked(repo, || {
                ops::check(self.restic, repo, read.as_deref(), timeout, &self.shutdown)
            })
            .await;
        match res {
            Ok(c) => {
                if let Detail::Check(d) = &mut r.detail {
                    d.packs = Some(Packs {
                        notes: c.notes,
                        packs_read: c.packs_read,
                        packs_total: c.packs_total,
                    });
                }
            }
            Err(e) => {
                let msg = if e.class == ErrorClass::RepositoryDamaged {
                    e.message.clone()
                } else {
                    format!("check failed: {}", e.message)
                };
                r.fail(e.class, msg);
            }
        }
        self.finish(&mut r, started);
        r
    }

    fn drill_of<'a>(&'a self, svc: &'a Service, repo: &'a Repository) -> drill::Drill<'a, 'a> {
        drill::Drill {
            verifier: self,
            svc,
            repo,
            timeout: READ_TIMEOUT,
        }
    }

    async fn drill(
        &self,
        svc: &Service,
        repo: &Repository,
        prepared: drill::Prepared,
    ) -> VerifyReport {
        let mut r = VerifyReport::new(
            &svc.name,
            &repo.destination,
            &repo.display,
            VerifyKind::Drill,
            &self.request.trigger,
            Detail::Drill(DrillDetail::default()),
        );
        let started = Instant::now();
        self.start(&mut r);
        (self.note)(&format!(
            "{} → {}: restore drill (latest snapshot, up to {} files, and the newest of each dump)",
            svc.name, repo.destination, svc.verify.drill_sample_files
        ));
        self.drill_of(svc, repo).run(&mut r, Some(prepared)).await;
        self.finish(&mut r, started);
        r
    }
}
