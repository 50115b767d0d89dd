//! One `run`: for each service, lock → pre hooks → dumps → backup to each
//! target, each followed by that target's retention → post hooks (always),
//! with every step recorded.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use futures_util::StreamExt;

use serde::Serialize;
use tracing::Instrument as _;

use super::Progress;
use super::lock::{LockError, ServiceLock};
use crate::config::{Config, PasswordSource, Replication, Service};
use crate::history::{History, TargetRecord};
use crate::hooks::{self, HookReport, Phase};
use crate::model::{Failure, Outcome};
use crate::process::{self, Ended, Shutdown, Spec};
use crate::restic::ops::{self, BackupArgs, ForgetResult};
use crate::restic::probe::{self, Probes};
use crate::restic::{ErrorClass, Repository, Restic, ResticCall};
use crate::runlog::RunLog;
use crate::sources::docker;

mod dumps;
mod retention;

/// Where Docker keeps named volumes on a standard Linux host. Used until
/// volumes are resolved through the Engine API.
const DOCKER_VOLUMES: &str = "/var/lib/docker/volumes";

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
    containers: std::sync::Mutex<ContainerWindow>,
    /// Set while containers are stopped: stale locks are cleared after
    /// they run again.
    unlock_later: std::sync::atomic::AtomicBool,
    /// The service's previous run was interrupted (its process may have
    /// been killed): stale repository locks are cleared before the backup.
    after_crash: bool,
}

/// What happened to the service's containers.
#[derive(Default)]
struct ContainerWindow {
    stopped_ms: Option<u64>,
    stopped: Vec<String>,
    errors: Vec<docker::DockerError>,
}

impl ServiceRun {
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
    /// Runs the given services one after another.
    pub async fn run(&self, services: &[&Service]) -> Vec<ServiceReport> {
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
                .flat_map(|s| s.targets.iter().map(String::as_str)),
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
                        process::owner_of(&s.name, &self.config.settings.lock_directory),
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

    async fn service(&self, svc: &Service, probes: &Probes) -> ServiceReport {
        let settings = &self.config.settings;
        let started = Instant::now();
        let mut run = ServiceRun {
            report: ServiceReport {
                service: svc.name.clone(),
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
            deadline: crate::config::checks::after(started, svc.timeout()),
            docker: None,
            containers: std::sync::Mutex::new(ContainerWindow::default()),
            unlock_later: std::sync::atomic::AtomicBool::new(false),
            after_crash: false,
        };
        let run_id = match self
            .history
            .start_run(&svc.name, self.trigger, &settings.host)
        {
            Ok(id) => Some(id),
            Err(e) => {
                run.warn(format!("run not recorded in history: {e}"));
                None
            }
        };
        run.report.run_id = run_id;
        // A damaged or unwritable history never stops the backup, but
        // every service's report says so (stderr, notification, status).
        if let Some(r) = self.history.recovery() {
            run.warn(r.to_string());
        }
        let log = match run_id {
            Some(id) => {
                let (log, warning) = RunLog::create(
                    &settings.log_directory,
                    &svc.name,
                    id,
                    settings.log_max_files,
                    settings.log_max_size_mb,
                    &settings.log_level,
                );
                if let Some(w) = warning {
                    run.warn(w);
                }
                log
            }
            None => RunLog::none(),
        };
        if let (Some(id), Some(p)) = (run_id, log.path()) {
            let _ = self.history.set_log_file(id, p);
            run.report.log_file = Some(p.to_path_buf());
        }
        log.line(&format!(
            "run of service `{}` started (restic {} at {}, host {})",
            svc.name,
            self.restic.version,
            self.restic.path.display(),
            settings.host
        ));

        match ServiceLock::acquire(&settings.lock_directory, &svc.name) {
            Ok(lock) => {
                // What is logged with `tracing` meanwhile goes to this log.
                async {
                    self.stop_leftovers(svc, &mut run, &log).await;
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
                    && let Some(long) = self.held_too_long(&svc.name)
                {
                    run.report.lock_held_too_long = true;
                    msg.push_str(&long);
                }
                run.fail(class, msg);
            }
        }

        run.report.duration_ms = ms(run.started.elapsed());
        let long = Duration::from_secs(settings.long_running_threshold_minutes.saturating_mul(60));
        if run.started.elapsed() > long {
            log.line(&format!(
                "long-running: took {}s, more than long_running_threshold_minutes ({})",
                run.started.elapsed().as_secs(),
                settings.long_running_threshold_minutes
            ));
        }
        if let Some(e) = &run.report.error {
            log.line(&format!("error: {e}"));
        }
        for w in &run.report.warnings {
            log.line(&format!("warning: {w}"));
        }
        log.line(&format!("outcome: {}", run.report.outcome.as_str()));
        if let Some(id) = run_id {
            for t in &run.report.targets {
                let rec = TargetRecord {
                    destination: t.destination.clone(),
                    repository: t.repository.clone(),
                    outcome: t.outcome,
                    error_class: t.error_class,
                    error_message: t.error.clone(),
                    snapshot_id: t.snapshot_id.clone(),
                    files_new: t.files_new,
                    files_changed: t.files_changed,
                    files_unmodified: t.files_unmodified,
                    bytes_added: t.bytes_added,
                    bytes_processed: t.bytes_processed,
                    duration_ms: t.duration_ms,
                    dump: t.dump.clone(),
                };
                if let Err(e) = self.history.add_target(id, &rec) {
                    run.report.warnings.push(format!("history: {e}"));
                }
            }
            let message = run
                .report
                .error
                .clone()
                .or_else(|| run.report.warnings.first().cloned());
            if let Err(e) = self.history.finish_run(
                id,
                run.report.outcome,
                run.report.error_class,
                message.as_deref(),
            ) {
                run.report.warnings.push(format!("history: {e}"));
            }
        }
        run.report
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

    /// Stops what an earlier run of `svc` left running (its manager was
    /// killed where children cannot follow it, e.g. without Linux's
    /// parent-death signal): a restic still backing up to the same
    /// repository would run alongside ours, and its snapshot would never
    /// reach history. We hold the lock, so that run's manager is gone.
    async fn stop_leftovers(&self, svc: &Service, run: &mut ServiceRun, log: &RunLog) {
        run.after_crash = run.report.run_id.is_some_and(|id| {
            self.history
                .previous_run_interrupted(&svc.name, id)
                .unwrap_or(false)
        });
        let left = process::leftovers(&process::owner_of(
            &svc.name,
            &self.config.settings.lock_directory,
        ));
        if left.is_empty() {
            return;
        }
        process::stop_leftovers(&left, Duration::from_secs(30)).await;
        run.after_crash = true;
        for l in &left {
            let msg = format!(
                "stopped `{}` (pid {}), left running by an earlier run of this service whose restic-manager (pid {}) ended without stopping it",
                l.command, l.pid, l.manager_pid
            );
            log.line(&msg);
            self.progress.note(&format!("{}: {msg}", svc.name));
            run.warn(msg);
        }
    }

    /// The part of a service run that happens under its lock.
    async fn locked(&self, svc: &Service, run: &mut ServiceRun, log: &RunLog, probes: &Probes) {
        // Pre hooks: the first failure without continue_on_error stops the
        // backup, but post hooks still run so cleanup happens.
        let mut proceed = true;
        if !svc.pre_backup_hooks.is_empty() {
            self.progress
                .note(&format!("{}: running pre-backup hooks", svc.name));
        }
        for h in &svc.pre_backup_hooks {
            let r = hooks::run(
                h,
                Phase::Pre,
                &svc.name,
                None,
                run.remaining(),
                &self.shutdown,
                log,
            )
            .await;
            let (ok, cont, result) = (r.ok, r.continue_on_error, r.result.clone());
            run.report.hooks.push(r);
            if !ok {
                if self.interrupted(run) {
                    proceed = false;
                    break;
                }
                if cont {
                    run.warn(format!(
                        "pre-backup hook `{}` failed ({result}); continuing as configured",
                        h.name
                    ));
                } else {
                    run.fail(
                        if result.timed_out() {
                            ErrorClass::Timeout
                        } else {
                            ErrorClass::HookFailed
                        },
                        format!(
                            "pre-backup hook `{}` failed ({result}); backup skipped",
                            h.name
                        ),
                    );
                    proceed = false;
                    break;
                }
            }
        }

        // Dumps run while the database containers are still up.
        if proceed {
            proceed = self.dumps(svc, run, log, probes).await;
        }

        let mut sources: Vec<PathBuf> = Vec::new();
        if proceed && svc.backup_script.is_none() {
            match resolve_paths(svc) {
                Ok(s) => sources = s,
                Err(msg) => {
                    run.fail(ErrorClass::SourceMissing, msg);
                    proceed = false;
                }
            }
        }
        // Docker volumes and the containers to stop, through the Engine API.
        if proceed && svc.backup_script.is_none() {
            match docker::prepare(svc, self.config.settings.docker_base.as_deref()).await {
                Ok(Some(d)) => {
                    for w in &d.warnings {
                        run.warn(w.clone());
                    }
                    for (v, p) in &d.direct {
                        log.line(&format!("volume `{v}`: backing up `{}`", p.display()));
                        sources.push(p.clone());
                    }
                    for v in &d.stream {
                        log.line(&format!(
                            "volume `{v}`: streaming it through a helper container (image `{}`) as `{}`",
                            d.image,
                            docker::stream_filename(v)
                        ));
                    }
                    run.docker = Some(d);
                }
                Ok(None) => {}
                Err(e) => {
                    run.fail(e.class(), e.to_string());
                    proceed = false;
                }
            }
        }

        let mut repos = Vec::new();
        let mut unreachable = Vec::new();
        if proceed {
            for t in &svc.targets {
                let Some(dest) = self.config.destinations.get(t) else {
                    continue;
                };
                match Repository::open(dest, &svc.name, &self.config.settings.password) {
                    Ok(r) if let Some(dead) = probes.failed(t) => {
                        // Reported with the other targets' results below.
                        log.line(&format!("error: {}", dead.message()));
                        unreachable.push(failed_target(
                            t,
                            &r.display,
                            ErrorClass::Unreachable,
                            dead.message(),
                        ));
                    }
                    Ok(r) => match missing_password_file(&r) {
                        // restic would only say "Resolving password failed",
                        // which reads like a wrong password; the likely cause
                        // is that `setup` never ran.
                        Some(msg) => {
                            run.report.targets.push(failed_target(
                                t,
                                &r.display,
                                ErrorClass::Config,
                                msg.clone(),
                            ));
                            run.fail(ErrorClass::Config, format!("`{t}`: {msg}"));
                        }
                        None => repos.push(r),
                    },
                    Err(e) => {
                        run.report.targets.push(failed_target(
                            t,
                            "",
                            ErrorClass::Config,
                            e.to_string(),
                        ));
                        run.fail(ErrorClass::Config, e.to_string());
                    }
                }
            }
            if run.after_crash {
                // The last run was killed: its restic may have died
                // without removing its lock (SIGKILL, or SIGINT in the
                // moment before restic registers its lock for cleanup).
                for r in &repos {
                    self.clear_stale_locks(r, log).await;
                }
            }
            // An unreachable first target leaves its part to the next
            // reachable one: it gets the snapshot taken while containers
            // are stopped, and in copy mode it is copied from.
            let refs: Vec<&Repository> = repos.iter().collect();
            if let (Some(first), Some(now_first)) = (svc.targets.first(), refs.first())
                && probes.failed(first).is_some()
                && now_first.destination != *first
            {
                log.line(&format!(
                    "primary target `{first}` is unreachable; `{}` takes its place in this run",
                    now_first.destination
                ));
            }
            let copy = svc.replication == Replication::Copy
                && svc.backup_script.is_none()
                && refs.len() > 1;
            let stops = run
                .docker
                .as_ref()
                .is_some_and(docker::ServiceDocker::stops_containers);
            // One bound for backups, copies and retention alike.
            let sem = tokio::sync::Semaphore::new(
                self.config
                    .settings
                    .max_parallel_destinations
                    .unwrap_or(refs.len())
                    .max(1),
            );
            let sem = &sem;
            let results = if dumps::only_dumps(svc) {
                Vec::new()
            } else if copy {
                self.copy_fan_out(svc, &sources, &refs, sem, run, log).await
            } else if stops && let Some((first, rest)) = refs.split_first() {
                // Containers are down only for the first target's snapshot;
                // the others back up after they are running again, while
                // the first one's retention runs.
                let mut tr = self.primary(svc, &sources, first, run, log).await;
                tr.finished_after_ms = Some(ms(run.started.elapsed()));
                let first_retention = async {
                    let _permit = sem.acquire().await.ok();
                    self.retain_after(svc, first, &mut tr, run, log).await;
                    tr
                };
                let (tr, others) = futures_util::future::join(
                    first_retention,
                    self.fan_out(svc, &sources, rest, sem, run, log),
                )
                .await;
                let mut out = vec![tr];
                out.extend(others);
                out
            } else {
                self.fan_out(svc, &sources, &refs, sem, run, log).await
            };
            // Destinations with only dump snapshots in this run (a
            // dumps-only service): retention after the dumps.
            let dumps_only: Vec<&Repository> = refs
                .iter()
                .copied()
                .filter(|r| !results.iter().any(|t| t.destination == r.destination))
                .filter(|r| retention::got_snapshot(run, &r.destination, None))
                .collect();
            let run_ref: &ServiceRun = run;
            let jobs = dumps_only.iter().map(|repo| async move {
                let _permit = sem.acquire().await.ok();
                let mut tr = failed_target(
                    &repo.destination,
                    &repo.display,
                    ErrorClass::Other,
                    String::new(),
                );
                self.retain_after(svc, repo, &mut tr, run_ref, log).await;
                tr
            });
            for done in futures_util::future::join_all(jobs).await {
                retention::account(run, &done);
                if let Some(t) = run.report.targets.iter_mut().find(|t| {
                    t.destination == done.destination
                        && matches!(t.outcome, Outcome::Ok | Outcome::Warning)
                }) {
                    t.retention = done.retention;
                    t.retention_error = done.retention_error;
                    t.retention_class = done.retention_class;
                }
            }
            let window = std::mem::take(
                &mut *run
                    .containers
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner),
            );
            run.report.containers_stopped_ms = window.stopped_ms;
            run.report.containers_stopped = window.stopped;
            for e in window.errors {
                run.fail(e.class(), e.to_string());
            }
            if copy
                && let Some(first) = results.first()
                && !matches!(first.outcome, Outcome::Ok | Outcome::Warning)
                && self.shutdown.signal().is_none()
            {
                run.warn(format!(
                            "primary target `{}` failed, so the other targets were backed up directly instead of copied",
                            first.destination
                        ));
            }
            if let Some(first) = results.first()
                && matches!(first.outcome, Outcome::Ok | Outcome::Warning)
            {
                run.report.primary_snapshot_ms = first.finished_after_ms;
            }
            // In the configured order, unreachable targets included.
            let mut results = results;
            for tr in unreachable {
                self.progress.note(&format!(
                    "{}: `{}` is unreachable; skipped",
                    svc.name, tr.destination
                ));
                results.push(tr);
            }
            results.sort_by_key(|t| svc.targets.iter().position(|d| *d == t.destination));
            for tr in results {
                retention::account(run, &tr);
                match tr.outcome {
                    Outcome::Ok => {}
                    Outcome::Warning => run.warn(format!(
                        "`{}`: snapshot {} is incomplete: {}",
                        tr.destination,
                        // The short form for people; --json has the full id.
                        tr.snapshot_id
                            .as_deref()
                            .map_or("?", |i| i.get(..8).unwrap_or(i)),
                        tr.error
                            .as_deref()
                            .unwrap_or("some files could not be read")
                    )),
                    Outcome::Failed | Outcome::Interrupted => run.fail(
                        tr.error_class.unwrap_or(ErrorClass::Other),
                        format!(
                            "`{}`: {}",
                            tr.destination,
                            tr.error.as_deref().unwrap_or("failed")
                        ),
                    ),
                }
                run.report.targets.push(tr);
            }
        }
        self.interrupted(run);

        // Post hooks always run, told how things went so far.
        if !svc.post_backup_hooks.is_empty() {
            self.progress
                .note(&format!("{}: running post-backup hooks", svc.name));
        }
        for h in &svc.post_backup_hooks {
            let so_far = run.report.outcome;
            // Post hooks are cleanup: they get their own time even when the
            // service's budget is spent.
            let budget = run.remaining().max(h.timeout());
            let r = hooks::run(
                h,
                Phase::Post,
                &svc.name,
                Some(so_far),
                budget,
                &Shutdown::never(),
                log,
            )
            .await;
            if !r.ok {
                if r.continue_on_error {
                    run.warn(format!(
                        "post-backup hook `{}` failed ({}); continuing as configured",
                        h.name, r.result
                    ));
                } else {
                    run.fail(
                        ErrorClass::HookFailed,
                        format!("post-backup hook `{}` failed ({})", h.name, r.result),
                    );
                }
            }
            run.report.hooks.push(r);
        }
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

    async fn backup(
        &self,
        svc: &Service,
        sources: &[PathBuf],
        repo: &Repository,
        run: &ServiceRun,
        log: &RunLog,
    ) -> TargetReport {
        let settings = &self.config.settings;
        let mut tags = vec![svc.tag()];
        tags.extend(svc.tags.iter().cloned());
        let paths: Vec<&Path> = sources.iter().map(PathBuf::as_path).collect();
        let args = BackupArgs {
            paths: &paths,
            host: &settings.host,
            tags: &tags,
            excludes: &svc.excludes,
            timeout: run.remaining(),
            progress: self.progress.wanted(),
        };
        log.line(&format!(
            "backup to `{}` ({})",
            repo.destination, repo.display
        ));
        self.progress.started(&svc.name, &repo.destination);
        let started = Instant::now();
        let res = self
            .retry_locked(repo, log, run, || {
                ops::backup(
                    self.restic,
                    repo,
                    &args,
                    &self.shutdown,
                    |st| self.progress.update(&svc.name, &repo.destination, st),
                    |l| {
                        log.line(&format!(
                            "restic ! {}",
                            crate::restic::output::stderr_line(l)
                        ));
                    },
                )
            })
            .await;
        let mut tr = failed_target(
            &repo.destination,
            &repo.display,
            ErrorClass::Other,
            String::new(),
        );
        tr.duration_ms = ms(started.elapsed());
        match res {
            Ok(b) => {
                tr.outcome = if b.warning {
                    Outcome::Warning
                } else {
                    Outcome::Ok
                };
                tr.error_class = None;
                tr.error = b.warning.then(|| {
                    let n = b
                        .stderr
                        .lines()
                        .filter(|l| {
                            l.contains("\"message_type\":\"error\"") || l.starts_with("error")
                        })
                        .count();
                    format!(
                        "restic could not read {} item(s); see the run log",
                        n.max(1)
                    )
                });
                tr.snapshot_id = b.summary.snapshot_id.clone();
                tr.files_new = Some(b.summary.files_new);
                tr.files_changed = Some(b.summary.files_changed);
                tr.files_unmodified = Some(b.summary.files_unmodified);
                tr.bytes_added = Some(b.summary.data_added);
                tr.bytes_processed = Some(b.summary.total_bytes_processed);
                log.line(&format!(
                    "snapshot {} on `{}`: {} new, {} changed, {} bytes added",
                    b.summary.snapshot_id.as_deref().unwrap_or("?"),
                    repo.destination,
                    b.summary.files_new,
                    b.summary.files_changed,
                    b.summary.data_added
                ));
            }
            Err(e) => {
                tr.fail_with(&e);
                // With containers stopped, they start first: `unlock` on
                // a hanging destination must not keep them down.
                if matches!(e.class, ErrorClass::Interrupted | ErrorClass::Timeout)
                    && !run.unlock_later.load(std::sync::atomic::Ordering::Relaxed)
                {
                    self.clear_stale_locks(repo, log).await;
                }
            }
        }
        self.progress
            .finished(&svc.name, &repo.destination, tr.outcome);
        tr
    }

    /// The first target's backup, with the service's containers stopped
    /// for exactly its duration and started again whatever happened (a
    /// failed backup, a timeout, a signal: restic has been stopped by then).
    async fn primary(
        &self,
        svc: &Service,
        sources: &[PathBuf],
        repo: &Repository,
        run: &ServiceRun,
        log: &RunLog,
    ) -> TargetReport {
        let Some((client, containers)) = run
            .docker
            .as_ref()
            .filter(|d| d.stops_containers())
            .and_then(|d| d.client.as_ref().map(|c| (c, &d.containers)))
        else {
            return self.backup_target(svc, sources, repo, run, log).await;
        };
        let window = |f: &mut dyn FnMut(&mut ContainerWindow)| {
            f(&mut run
                .containers
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner));
        };
        if self.shutdown.signal().is_some() {
            // Interrupted before the snapshot: nothing to stop them for.
            return not_started_interrupted(repo);
        }
        self.progress
            .note(&format!("{}: stopping containers", svc.name));
        let guard = match client.stop(containers).await {
            Ok(g) => g,
            Err((g, e)) => {
                let names: Vec<String> = g.containers().iter().map(|c| c.name.clone()).collect();
                let (down, errors) = g.start().await;
                log.line(&format!("{e}; started {} again", list_names(&names)));
                window(&mut |w| {
                    w.stopped_ms = Some(ms(down));
                    w.stopped.clone_from(&names);
                    w.errors.extend(errors.iter().cloned());
                });
                return failed_target(
                    &repo.destination,
                    &repo.display,
                    e.class(),
                    format!("{e}; nothing was backed up"),
                );
            }
        };
        let names: Vec<String> = guard.containers().iter().map(|c| c.name.clone()).collect();
        log.line(&format!("stopped containers: {}", list_names(&names)));
        run.unlock_later
            .store(true, std::sync::atomic::Ordering::Relaxed);
        let tr = self.backup_target(svc, sources, repo, run, log).await;
        run.unlock_later
            .store(false, std::sync::atomic::Ordering::Relaxed);
        let (down, errors) = guard.start().await;
        for e in &errors {
            log.line(&format!("error: {e}"));
        }
        log.line(&format!(
            "started containers again: {} (down for {} ms)",
            list_names(&names),
            ms(down)
        ));
        self.progress.note(&format!(
            "{}: containers started again after {:.1}s",
            svc.name,
            down.as_secs_f64()
        ));
        window(&mut |w| {
            w.stopped_ms = Some(ms(down));
            w.stopped.clone_from(&names);
            w.errors.extend(errors.iter().cloned());
        });
        if matches!(
            tr.error_class,
            Some(ErrorClass::Interrupted | ErrorClass::Timeout)
        ) {
            self.clear_stale_locks(repo, log).await;
        }
        tr
    }

    /// Everything one target gets from this service: the file snapshot
    /// (paths and direct volumes) and one snapshot per streamed volume.
    async fn backup_target(
        &self,
        svc: &Service,
        sources: &[PathBuf],
        repo: &Repository,
        run: &ServiceRun,
        log: &RunLog,
    ) -> TargetReport {
        let streams: &[String] = run.docker.as_ref().map_or(&[], |d| &d.stream);
        // Streamed volumes exist only with a client (see `docker::prepare`).
        let Some((d, client)) = run
            .docker
            .as_ref()
            .and_then(|d| d.client.as_ref().map(|c| (d, c)))
            .filter(|_| !streams.is_empty())
        else {
            return self.backup(svc, sources, repo, run, log).await;
        };
        let mut tr = if sources.is_empty() {
            let mut t = failed_target(
                &repo.destination,
                &repo.display,
                ErrorClass::Other,
                String::new(),
            );
            t.outcome = Outcome::Ok;
            t.error_class = None;
            t.error = None;
            // Only streamed volumes: the progress display still shows this
            // target while they run.
            self.progress.started(&svc.name, &repo.destination);
            t
        } else {
            self.backup(svc, sources, repo, run, log).await
        };
        if !matches!(tr.outcome, Outcome::Ok | Outcome::Warning) {
            return tr;
        }
        let started = Instant::now();
        let mut tags = vec![svc.tag()];
        tags.extend(svc.tags.iter().cloned());
        for v in streams {
            log.line(&format!(
                "stream volume `{v}` to `{}` as `{}`",
                repo.destination,
                docker::stream_filename(v)
            ));
            let res = self
                .retry_locked(repo, log, run, || async {
                    let what = docker::StreamBackup {
                        volume: v,
                        image: &d.image,
                        host: &self.config.settings.host,
                        tags: &tags,
                        timeout: run.remaining(),
                    };
                    docker::backup_volume_stream(client, self.restic, repo, &what, &self.shutdown)
                        .await
                })
                .await;
            match res {
                Ok(b) => {
                    log.line(&format!(
                        "snapshot {} of volume `{v}` on `{}`: {} bytes added",
                        b.summary.snapshot_id.as_deref().unwrap_or("?"),
                        repo.destination,
                        b.summary.data_added
                    ));
                    if tr.snapshot_id.is_none() {
                        tr.snapshot_id.clone_from(&b.summary.snapshot_id);
                    }
                    tr.bytes_added = Some(tr.bytes_added.unwrap_or(0) + b.summary.data_added);
                    tr.bytes_processed =
                        Some(tr.bytes_processed.unwrap_or(0) + b.summary.total_bytes_processed);
                    tr.files_new = Some(tr.files_new.unwrap_or(0) + b.summary.files_new);
                    tr.files_changed =
                        Some(tr.files_changed.unwrap_or(0) + b.summary.files_changed);
                    tr.files_unmodified =
                        Some(tr.files_unmodified.unwrap_or(0) + b.summary.files_unmodified);
                    tr.volume_snapshots.push(VolumeSnapshot {
                        volume: v.clone(),
                        snapshot_id: b.summary.snapshot_id,
                    });
                }
                Err(e) => {
                    tr.fail_with(&e);
                    log.line(&format!(
                        "volume `{v}` on `{}`: {}",
                        repo.destination, e.message
                    ));
                    if matches!(e.class, ErrorClass::Interrupted | ErrorClass::Timeout)
                        && !run.unlock_later.load(std::sync::atomic::Ordering::Relaxed)
                    {
                        self.clear_stale_locks(repo, log).await;
                    }
                    break;
                }
            }
        }
        tr.duration_ms += ms(started.elapsed());
        if sources.is_empty() {
            self.progress
                .finished(&svc.name, &repo.destination, tr.outcome);
        }
        tr
    }

    /// `restic copy` of the primary's volume snapshots to `to`.
    async fn copy_volumes(
        &self,
        from: &Repository,
        to: &Repository,
        volumes: &[VolumeSnapshot],
        tr: &mut TargetReport,
        run: &ServiceRun,
        log: &RunLog,
    ) {
        if !matches!(tr.outcome, Outcome::Ok | Outcome::Warning) {
            return;
        }
        for v in volumes {
            let Some(id) = v.snapshot_id.as_deref() else {
                continue;
            };
            let tag = docker::volume_tag(&v.volume);
            let res = self
                .retry_locked(to, log, run, || {
                    ops::copy(
                        self.restic,
                        from,
                        to,
                        id,
                        &tag,
                        run.remaining(),
                        &self.shutdown,
                    )
                })
                .await;
            match res {
                Ok(copied) => {
                    log.line(&format!(
                        "copied volume `{}` snapshot {id} to `{}`",
                        v.volume, to.destination
                    ));
                    tr.volume_snapshots.push(VolumeSnapshot {
                        volume: v.volume.clone(),
                        snapshot_id: copied,
                    });
                }
                Err(e) => {
                    tr.outcome = Outcome::Failed;
                    tr.error_class = Some(e.class);
                    tr.error = Some(format!(
                        "copy of volume `{}` from `{}` failed: {}",
                        v.volume, from.destination, e.message
                    ));
                    return;
                }
            }
        }
    }

    /// The original tool's `backup_script`, once per target.
    async fn script(
        &self,
        svc: &Service,
        script: &str,
        repo: &Repository,
        run: &ServiceRun,
        log: &RunLog,
    ) -> TargetReport {
        let settings = &self.config.settings;
        // The script's environment is the one restic-manager gives restic
        // (repository, password source, destination credentials, with any
        // inherited RESTIC_* variables scrubbed: restic 0.14 refuses a
        // password file next to a password command). It also stops the way
        // restic does, with SIGINT and restic's grace period: a script's
        // `restic backup` killed by SIGTERM leaves a stale repository lock.
        let call =
            ResticCall::new(self.restic, repo, std::iter::empty::<&str>()).timeout(run.remaining());
        let mut spec = Spec {
            program: "sh".into(),
            args: vec!["-c".into(), script.into()],
            ..call.spec
        };
        spec = spec.env("SERVICE_NAME", &svc.name);
        if let Some(b) = &settings.docker_base {
            spec = spec.env("DOCKER_BASE", b.to_string_lossy());
        }
        log.line(&format!(
            "backup_script for `{}`: `{script}`",
            repo.destination
        ));
        self.progress.started(&svc.name, &repo.destination);
        let res = spec
            .run(
                &self.shutdown,
                |l| log.line(&format!("script | {l}")),
                |l| log.line(&format!("script ! {l}")),
            )
            .await;
        let mut tr = failed_target(
            &repo.destination,
            &repo.display,
            ErrorClass::Other,
            String::new(),
        );
        match res {
            Ok(out) => {
                tr.duration_ms = ms(out.duration);
                match out.ended {
                    Ended::Exited(0) => {
                        tr.outcome = Outcome::Ok;
                        tr.error_class = None;
                        tr.error = None;
                    }
                    Ended::Exited(3) => {
                        tr.outcome = Outcome::Warning;
                        tr.error_class = None;
                        tr.error = Some("backup_script exited 3 (incomplete)".into());
                    }
                    Ended::TimedOut => {
                        tr.error_class = Some(ErrorClass::Timeout);
                        tr.error = Some("backup_script ran out of time".into());
                    }
                    Ended::Interrupted(_) => {
                        tr.outcome = Outcome::Interrupted;
                        tr.error_class = Some(ErrorClass::Interrupted);
                        tr.error = Some("backup_script interrupted".into());
                    }
                    e => tr.error = Some(format!("backup_script failed ({})", e.describe())),
                }
                if matches!(out.ended, Ended::TimedOut | Ended::Interrupted(_)) {
                    self.clear_stale_locks(repo, log).await;
                }
            }
            Err(e) => tr.error = Some(e.to_string()),
        }
        self.progress
            .finished(&svc.name, &repo.destination, tr.outcome);
        tr
    }

    /// After we stopped restic ourselves (signal or timeout). restic 0.14
    /// leaves its lock behind when SIGINT lands in the ~200 ms between
    /// writing the lock and registering it for cleanup, and always after
    /// the SIGKILL that follows the grace period; a stale exclusive lock
    /// then blocks every later run. Plain `unlock` removes only stale locks
    /// (this host, dead PID), never another process's live one.
    async fn clear_stale_locks(&self, repo: &Repository, log: &RunLog) {
        match ops::unlock_stale(self.restic, repo).await {
            Ok(()) => log.line(&format!(
                "removed stale locks (if any) from `{}` after stopping restic",
                repo.destination
            )),
            Err(e) => log.line(&format!(
                "could not remove stale locks from `{}`: {}",
                repo.destination, e.message
            )),
        }
    }

    /// Runs a restic operation; when the repository is locked, removes stale
    /// locks (`restic unlock` only removes locks of dead processes on this
    /// host, or older than 30 minutes) and retries with back-off for up to
    /// `lock_wait_seconds`. restic 0.14 has no `--retry-lock`.
    async fn retry_locked<T, F, Fut>(
        &self,
        repo: &Repository,
        log: &RunLog,
        run: &ServiceRun,
        mut op: F,
    ) -> Result<T, Failure>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, Failure>>,
    {
        let started = Instant::now();
        let limit = Duration::from_secs(self.config.settings.lock_wait_seconds);
        let mut attempt: u32 = 0;
        loop {
            match op().await {
                Err(e) if e.class == ErrorClass::Locked => {
                    let waited = started.elapsed();
                    let left = limit.min(run.remaining()).saturating_sub(waited);
                    if left.is_zero() {
                        let mut e = e;
                        e.message = format!(
                            "{} (gave up after waiting {}s; `lock_wait_seconds` is {})",
                            e.message,
                            waited.as_secs(),
                            limit.as_secs()
                        );
                        return Err(e);
                    }
                    self.clear_stale_locks(repo, log).await;
                    let delay = if attempt == 0 {
                        Duration::from_millis(200)
                    } else {
                        Duration::from_secs(5u64 << (attempt - 1).min(4))
                            .min(Duration::from_secs(60))
                    }
                    .min(left);
                    attempt += 1;
                    log.line(&format!(
                        "`{}` is locked by another restic process; retrying in {}s",
                        repo.destination,
                        delay.as_secs_f32()
                    ));
                    let mut sd = self.shutdown.clone();
                    tokio::select! {
                        () = tokio::time::sleep(delay) => {}
                        () = sd.wait() => return Err(e),
                    }
                }
                other => return other,
            }
        }
    }

    /// Independent backups to `repos`, at most `max_parallel_destinations`
    /// at once (never two restic processes on one repository: each target
    /// is its own repository).
    async fn fan_out(
        &self,
        svc: &Service,
        sources: &[PathBuf],
        repos: &[&Repository],
        sem: &tokio::sync::Semaphore,
        run: &ServiceRun,
        log: &RunLog,
    ) -> Vec<TargetReport> {
        let jobs = repos.iter().map(|repo| async move {
            let _permit = sem.acquire().await.ok();
            if self.shutdown.signal().is_some() {
                return not_started_interrupted(repo);
            }
            let mut tr = match &svc.backup_script {
                Some(script) => self.script(svc, script, repo, run, log).await,
                None => self.backup_target(svc, sources, repo, run, log).await,
            };
            tr.finished_after_ms = Some(ms(run.started.elapsed()));
            // This destination's retention, right after its snapshot and
            // under the same permit.
            self.retain_after(svc, repo, &mut tr, run, log).await;
            tr
        });
        futures_util::future::join_all(jobs).await
    }

    /// Back up once to the primary (first) target, then `restic copy` the
    /// new snapshot to the others; if the primary fails, back up to the
    /// others directly.
    async fn copy_fan_out(
        &self,
        svc: &Service,
        sources: &[PathBuf],
        repos: &[&Repository],
        sem: &tokio::sync::Semaphore,
        run: &ServiceRun,
        log: &RunLog,
    ) -> Vec<TargetReport> {
        let (primary, rest) = match repos.split_first() {
            Some(x) => x,
            None => return Vec::new(),
        };
        let mut first = self.primary(svc, sources, primary, run, log).await;
        first.finished_after_ms = Some(ms(run.started.elapsed()));
        let snapshot = first.snapshot_id.clone();
        let first_volumes = first.volume_snapshots.clone();
        let ok = matches!(first.outcome, Outcome::Ok | Outcome::Warning);
        let mut others = Vec::new();
        match snapshot {
            Some(id) if ok => {
                let id = &id;
                let vols = &first_volumes;
                let jobs = rest.iter().map(|to| async move {
                    let _permit = sem.acquire().await.ok();
                    let mut tr = self.copy_to(svc, primary, to, id, run, log).await;
                    self.copy_volumes(primary, to, vols, &mut tr, run, log)
                        .await;
                    // Each copy target's retention right after its copy.
                    self.retain_after(svc, to, &mut tr, run, log).await;
                    tr
                });
                others.extend(futures_util::future::join_all(jobs).await);
            }
            _ if self.shutdown.signal().is_none() => {
                log.line(&format!(
                    "primary `{}` failed; backing up directly to the other targets",
                    primary.destination
                ));
                others.extend(self.fan_out(svc, sources, rest, sem, run, log).await);
            }
            _ => {}
        }
        // The primary's retention once every copy has read from it (an
        // exclusive `forget` lock would make the copies wait).
        {
            let _permit = sem.acquire().await.ok();
            self.retain_after(svc, primary, &mut first, run, log).await;
        }
        let mut out = vec![first];
        out.extend(others);
        out
    }

    async fn copy_to(
        &self,
        svc: &Service,
        from: &Repository,
        to: &Repository,
        snapshot: &str,
        run: &ServiceRun,
        log: &RunLog,
    ) -> TargetReport {
        log.line(&format!(
            "copy snapshot {snapshot} from `{}` to `{}` ({})",
            from.destination, to.destination, to.display
        ));
        self.progress.started(&svc.name, &to.destination);
        let started = Instant::now();
        let tag = svc.tag();
        let res = self
            .retry_locked(to, log, run, || {
                ops::copy(
                    self.restic,
                    from,
                    to,
                    snapshot,
                    &tag,
                    run.remaining(),
                    &self.shutdown,
                )
            })
            .await;
        let mut tr = failed_target(
            &to.destination,
            &to.display,
            ErrorClass::Other,
            String::new(),
        );
        tr.method = TargetMethod::Copy;
        tr.duration_ms = ms(started.elapsed());
        match res {
            Ok(id) => {
                tr.outcome = Outcome::Ok;
                tr.error_class = None;
                tr.error = None;
                tr.snapshot_id = id.map(|i| i.chars().take(snapshot.len().max(8)).collect());
                log.line(&format!(
                    "copied to `{}` as {}",
                    to.destination,
                    tr.snapshot_id.as_deref().unwrap_or("?")
                ));
            }
            Err(e) => {
                tr.outcome = if e.class == ErrorClass::Interrupted {
                    Outcome::Interrupted
                } else {
                    Outcome::Failed
                };
                tr.error_class = Some(e.class);
                tr.error = Some(format!(
                    "copy from `{}` failed: {}",
                    from.destination, e.message
                ));
                if matches!(e.class, ErrorClass::Interrupted | ErrorClass::Timeout) {
                    self.clear_stale_locks(to, log).await;
                }
            }
        }
        tr.finished_after_ms = Some(ms(run.started.elapsed()));
        self.progress
            .finished(&svc.name, &to.destination, tr.outcome);
        tr
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

fn list_names(names: &[String]) -> String {
    if names.is_empty() {
        "none (none was running)".into()
    } else {
        names
            .iter()
            .map(|n| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(", ")
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

/// The service's paths, each checked to exist: restic 0.14 skips a missing
/// path silently and still exits 0. Volumes are resolved by
/// [`docker::prepare`].
pub fn resolve_paths(svc: &Service) -> Result<Vec<PathBuf>, String> {
    let paths_only = Service {
        volumes: Vec::new(),
        ..svc.clone()
    };
    resolve_sources(&paths_only)
}

/// The service's paths and volume folders (at Docker's default location,
/// without asking the engine: `run --dry-run`), each checked to exist.
pub fn resolve_sources(svc: &Service) -> Result<Vec<PathBuf>, String> {
    let mut out = Vec::new();
    let mut missing = Vec::new();
    for p in &svc.paths {
        match p.try_exists() {
            Ok(true) => out.push(p.clone()),
            _ => missing.push(format!("`{}`", p.display())),
        }
    }
    if !missing.is_empty() {
        return Err(format!(
            "path {} does not exist; fix `paths` in `[services.{}.config]` (restic would silently skip it)",
            missing.join(", "),
            svc.name
        ));
    }
    for v in &svc.volumes {
        let p = Path::new(DOCKER_VOLUMES).join(v).join("_data");
        if p.is_dir() {
            out.push(p);
        } else {
            return Err(format!(
                "Docker volume `{v}` was not found at `{}`",
                p.display()
            ));
        }
    }
    Ok(out)
}
