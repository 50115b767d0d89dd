//! One `run`: for each service, lock → pre hooks → dumps → backup to each
//! target, each followed by that target's retention → post hooks (always),
//! with every step recorded.
//!
//! This file holds the reports, the [`Runner`] and the order of the steps;
//! each step lives in `run/`: `hooks` (pre and post), `dumps`, `sources`
//! (paths and Docker volumes), `targets` (which destination gets its
//! snapshot how), `backup`, `copy` and `containers` (one destination's
//! snapshot), `retention`, `locks` (restic's repository locks and what a
//! killed run left behind) and `record` (history and the run log).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use futures_util::StreamExt;

use serde::Serialize;
use tracing::Instrument as _;

use super::Progress;
use super::lock::{LockError, ServiceLock};
use crate::config::{Config, PasswordSource};
use crate::engine::plan::{ServicePlan, TargetPlan};
use crate::history::History;
use crate::hooks::HookReport;
use crate::model::{Failure, Outcome};
use crate::process::{self, Shutdown};
use crate::restic::ops::ForgetResult;
use crate::restic::probe::{self, Probes};
use crate::restic::{ErrorClass, Repository, Restic};
use crate::runlog::RunLog;
use crate::sources::docker;

mod backup;
mod containers;
mod copy;
mod dumps;
mod hooks;
mod locks;
mod record;
mod retention;
mod sources;
mod targets;

pub use sources::{resolve_paths, resolve_sources};

/// How a destination got its snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetMethod {
    /// `restic backup` of the service's paths (or its `backup_script`).
    Backup,
    /// `restic copy` from the primary destination.
    Copy,
    /// A streamed dump (`restic backup --stdin`).
    Dump,
}

/// The result for one destination of one service.
#[derive(Debug, Clone, Serialize)]
pub struct TargetReport {
    pub destination: String,
    pub repository: String,
    pub method: TargetMethod,
    /// For `method = "dump"`: the dump's name (its snapshot has the tag
    /// `dump:NAME`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dump: Option<String>,
    pub outcome: Outcome,
    pub error_class: Option<ErrorClass>,
    pub error: Option<String>,
    pub snapshot_id: Option<String>,
    pub files_new: Option<u64>,
    pub files_changed: Option<u64>,
    pub files_unmodified: Option<u64>,
    pub bytes_added: Option<u64>,
    pub bytes_processed: Option<u64>,
    pub duration_ms: u64,
    pub retention: Option<ForgetResult>,
    pub retention_error: Option<String>,
    /// The class of `retention_error` (a refusal fails the service).
    #[serde(skip)]
    pub retention_class: Option<ErrorClass>,
    /// Snapshots of streamed Docker volumes (`volume_mode` stream), one
    /// per volume, next to the file snapshot in `snapshot_id`.
    pub volume_snapshots: Vec<VolumeSnapshot>,
    /// Milliseconds from the service's start until this target finished.
    #[serde(skip)]
    pub finished_after_ms: Option<u64>,
}

/// The snapshot of one streamed Docker volume.
#[derive(Debug, Clone, Serialize)]
pub struct VolumeSnapshot {
    pub volume: String,
    pub snapshot_id: Option<String>,
}

/// The result for one service.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceReport {
    pub service: String,
    pub run_id: Option<i64>,
    pub outcome: Outcome,
    pub error_class: Option<ErrorClass>,
    pub error: Option<String>,
    pub warnings: Vec<String>,
    pub hooks: Vec<HookReport>,
    pub targets: Vec<TargetReport>,
    pub duration_ms: u64,
    /// Milliseconds from the service's start until the first target's
    /// snapshot existed (the window containers must stay stopped).
    pub primary_snapshot_ms: Option<u64>,
    /// Milliseconds the service's containers (`stop_containers`,
    /// `stop_compose_project`) were stopped; `None` when none were.
    pub containers_stopped_ms: Option<u64>,
    /// The containers that were stopped and started again.
    pub containers_stopped: Vec<String>,
    pub log_file: Option<PathBuf>,
    /// Refused (`already_running`) because the run holding the lock has
    /// run longer than `long_running_threshold_minutes`.
    #[serde(skip)]
    pub lock_held_too_long: bool,
}

/// Everything a run needs, passed explicitly.
pub struct Runner<'a> {
    pub config: &'a Config,
    pub restic: &'a Restic,
    pub history: &'a History,
    pub shutdown: Shutdown,
    pub progress: &'a dyn Progress,
    pub trigger: &'a str,
    /// Let `forget` remove more than the retention guard allows.
    pub allow_mass_forget: bool,
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

struct ServiceRun {
    report: ServiceReport,
    started: Instant,
    deadline: Instant,
    /// Volumes and containers resolved through the Engine API.
    docker: Option<docker::ServiceDocker>,
    /// Filled while containers are stopped and started (targets run
    /// concurrently and only see `&ServiceRun`).
    containers: std::sync::Mutex<containers::ContainerWindow>,
    /// Set while containers are stopped: stale locks are cleared after
    /// they run again.
    unlock_later: std::sync::atomic::AtomicBool,
    /// The service's previous run was interrupted (its process may have
    /// been killed): stale repository locks are cleared before the backup.
    after_crash: bool,
}

/// The run of a service stops before its targets: the reason (a failed pre
/// hook, a signal, a missing path) is already in its report. Post hooks
/// still run.
struct Stopped;

impl ServiceRun {
    fn new(svc: &ServicePlan<'_>) -> ServiceRun {
        let started = Instant::now();
        ServiceRun {
            report: ServiceReport {
                service: svc.service.clone(),
                run_id: None,
                outcome: Outcome::Ok,
                error_class: None,
                error: None,
                warnings: Vec::new(),
                hooks: Vec::new(),
                targets: Vec::new(),
                duration_ms: 0,
                primary_snapshot_ms: None,
                containers_stopped_ms: None,
                containers_stopped: Vec::new(),
                log_file: None,
                lock_held_too_long: false,
            },
            started,
            deadline: crate::config::checks::after(started, svc.config.timeout()),
            docker: None,
            containers: std::sync::Mutex::new(containers::ContainerWindow::default()),
            unlock_later: std::sync::atomic::AtomicBool::new(false),
            after_crash: false,
        }
    }

    fn fail(&mut self, class: ErrorClass, msg: impl Into<String>) {
        self.report.outcome = self.report.outcome.worst(Outcome::Failed);
        if self.report.error.is_none() {
            self.report.error_class = Some(class);
            self.report.error = Some(msg.into());
        }
    }

    fn warn(&mut self, msg: impl Into<String>) {
        self.report.outcome = self.report.outcome.worst(Outcome::Warning);
        self.report.warnings.push(msg.into());
    }

    fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }
}

impl Runner<'_> {
    /// Executes the plans of `services` (at most `max_parallel_services`
    /// at once), one report each.
    pub async fn run(&self, services: &[ServicePlan<'_>]) -> Vec<ServiceReport> {
        if let Err(e) = self.history.reap_dead_runs() {
            self.progress.note(&format!("warning: {e}"));
        }
        // Every enabled service is now known to history (a new one is
        // `new`, not `stale`, until its max_age has passed since).
        for s in self.config.services.iter().filter(|s| s.enabled) {
            if let Err(e) = self.history.saw(&s.name, &s.targets) {
                self.progress.note(&format!("warning: {e}"));
                break;
            }
        }
        // Every network destination is asked once, all at the same time,
        // before any restic runs: a dead one then costs seconds, not the
        // 15 minutes restic ≥ 0.17 would spend retrying it.
        let probes = probe::check_all(
            self.config,
            services
                .iter()
                .flat_map(|s| s.targets.iter().map(TargetPlan::destination)),
        )
        .await;
        let probes = &probes;
        let limit = self.config.settings.max_parallel_services.max(1);
        futures_util::stream::iter(services)
            .map(|s| async move {
                if self.shutdown.signal().is_some() {
                    return None;
                }
                Some(
                    process::owned_by(
                        process::owner_of(&s.service, &self.config.settings.lock_directory),
                        self.service(s, probes),
                    )
                    .await,
                )
            })
            .buffered(limit)
            .filter_map(|r| async move { r })
            .collect()
            .await
    }

    async fn service(&self, svc: &ServicePlan<'_>, probes: &Probes) -> ServiceReport {
        let (mut run, log) = self.begin(svc);
        let settings = &self.config.settings;
        match ServiceLock::acquire(&settings.lock_directory, &svc.service) {
            Ok(lock) => {
                // What is logged with `tracing` meanwhile goes to this log.
                async {
                    self.stop_leftovers(svc, &mut run, &log, lock.previous_released())
                        .await;
                    self.locked(svc, &mut run, &log, probes).await;
                }
                .instrument(log.span())
                .await;
                drop(lock);
            }
            Err(e) => {
                let class = match e {
                    LockError::Busy { .. } => ErrorClass::AlreadyRunning,
                    LockError::Io { .. } => ErrorClass::PermissionDenied,
                };
                let mut msg = e.to_string();
                if class == ErrorClass::AlreadyRunning
                    && let Some(long) = self.held_too_long(&svc.service)
                {
                    run.report.lock_held_too_long = true;
                    msg.push_str(&long);
                }
                run.fail(class, msg);
            }
        }
        self.finish(run, &log)
    }

    /// For a run refused because another holds the lock: whether that one
    /// has run longer than `long_running_threshold_minutes` (then it may
    /// be hung, and every later run will be refused until it ends), in
    /// words to add to the refusal.
    fn held_too_long(&self, service: &str) -> Option<String> {
        let minutes = self.config.settings.long_running_threshold_minutes;
        let since = self.history.running_since(service).ok()??;
        let held = u64::try_from(crate::history::now_ms() - since).unwrap_or(0) / 1000;
        (held > minutes.saturating_mul(60)).then(|| {
            format!(
                " and has been for {}, longer than long_running_threshold_minutes ({minutes}); it may be hung: read its log, or stop it",
                crate::output::age(held)
            )
        })
    }

    /// The part of a service run that happens under its lock.
    async fn locked(
        &self,
        svc: &ServicePlan<'_>,
        run: &mut ServiceRun,
        log: &RunLog,
        probes: &Probes,
    ) {
        if let Ok(sources) = self.before_targets(svc, run, log, probes).await {
            self.targets(svc, &sources, run, log, probes).await;
        }
        self.interrupted(run);
        // Post hooks always run, told how things went so far.
        self.post_hooks(svc, run, log).await;
    }

    /// Pre hooks, dumps and the sources of the file snapshot, each of which
    /// can stop the run before its targets.
    async fn before_targets(
        &self,
        svc: &ServicePlan<'_>,
        run: &mut ServiceRun,
        log: &RunLog,
        probes: &Probes,
    ) -> Result<Vec<PathBuf>, Stopped> {
        // Pre hooks: the first failure without continue_on_error stops the
        // backup, but post hooks still run so cleanup happens.
        self.pre_hooks(svc, run, log).await?;
        // Dumps run while the database containers are still up.
        self.dumps(svc, run, log, probes).await?;
        self.sources(svc, run, log).await
    }

    fn interrupted(&self, run: &mut ServiceRun) -> bool {
        if let Some(sig) = self.shutdown.signal() {
            run.report.outcome = Outcome::Interrupted;
            if run.report.error_class != Some(ErrorClass::Interrupted) {
                run.report.error_class = Some(ErrorClass::Interrupted);
                run.report.error = Some(format!("interrupted by signal {sig}"));
            }
            return true;
        }
        false
    }
}

/// A target skipped because a signal arrived before it started.
fn not_started_interrupted(repo: &Repository) -> TargetReport {
    let mut tr = failed_target(
        &repo.destination,
        &repo.display,
        ErrorClass::Interrupted,
        "not started: interrupted".into(),
    );
    tr.outcome = Outcome::Interrupted;
    tr
}

impl TargetReport {
    /// Records a failed restic operation: interrupted when a signal stopped
    /// it, failed otherwise.
    fn fail_with(&mut self, e: &Failure) {
        self.outcome = if e.class == ErrorClass::Interrupted {
            Outcome::Interrupted
        } else {
            Outcome::Failed
        };
        self.error_class = Some(e.class);
        self.error = Some(e.message.clone());
    }
}

fn failed_target(dest: &str, repo: &str, class: ErrorClass, msg: String) -> TargetReport {
    TargetReport {
        destination: dest.to_string(),
        repository: repo.to_string(),
        outcome: Outcome::Failed,
        error_class: Some(class),
        error: Some(msg),
        snapshot_id: None,
        files_new: None,
        files_changed: None,
        files_unmodified: None,
        bytes_added: None,
        bytes_processed: None,
        duration_ms: 0,
        retention: None,
        retention_error: None,
        retention_class: None,
        volume_snapshots: Vec::new(),
        method: TargetMethod::Backup,
        dump: None,
        finished_after_ms: None,
    }
}

/// The next step when the repository's password file does not exist.
fn missing_password_file(repo: &Repository) -> Option<String> {
    match &repo.password {
        PasswordSource::File(f) if !f.exists() => Some(format!(
            "password file `{}` does not exist; run `restic-manager setup` to create it (or restore your copy)",
            f.display()
        )),
        _ => None,
    }
}
