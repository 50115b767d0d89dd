//! The targets step of a service run: open each destination's repository,
//! decide how the destinations get their snapshot ([`Fanout`]), run the
//! backups and copies (each followed by that destination's retention) at
//! most `max_parallel_destinations` at once, and fold every destination's
//! result into the service's, in the configured order.

use std::path::PathBuf;

use super::{
    Runner, ServiceRun, TargetReport, dumps, failed_target, missing_password_file, ms,
    not_started_interrupted, retention,
};
use crate::config::{Replication, Service};
use crate::engine::plan::{ServicePlan, TargetPlan};
use crate::model::Outcome;
use crate::restic::probe::Probes;
use crate::restic::{ErrorClass, Repository};
use crate::runlog::RunLog;
use crate::sources::docker;

/// How the destinations of a service get their snapshot in one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fanout {
    /// Nothing but dumps, which already ran: no file snapshot (restic
    /// refuses a backup without paths); retention follows the dumps.
    DumpsOnly,
    /// `replication = "copy"`: back up to the first, `restic copy` to the
    /// others (directly to them when the first fails).
    Copy,
    /// Containers are stopped for the first destination's backup only; the
    /// others back up once they run again.
    ContainersFirst,
    /// An independent backup (or `backup_script`) to each destination.
    Parallel,
}

impl Fanout {
    /// The fan-out for `svc` with `repos` usable destinations, `stops`
    /// when its containers are stopped for the snapshot.
    fn choose(svc: &Service, repos: usize, stops: bool) -> Fanout {
        if dumps::only_dumps(svc) {
            Fanout::DumpsOnly
        } else if svc.replication == Replication::Copy && svc.backup_script.is_none() && repos > 1 {
            Fanout::Copy
        } else if stops && repos > 0 {
            Fanout::ContainersFirst
        } else {
            Fanout::Parallel
        }
    }
}

/// What the backups, copies and retention of one service's destinations
/// share while they run side by side.
#[derive(Clone, Copy)]
pub(super) struct Fan<'a> {
    pub svc: &'a ServicePlan<'a>,
    /// The paths of the file snapshot.
    pub sources: &'a [PathBuf],
    /// One bound (`max_parallel_destinations`) for backups, copies and
    /// retention alike.
    pub sem: &'a tokio::sync::Semaphore,
    /// The run so far (containers, deadline, dump snapshots).
    pub run: &'a ServiceRun,
    pub log: &'a RunLog,
}

/// The destinations of a service a run can back up to, in the configured
/// order (one that cannot be opened is already in the report, failed).
struct Opened {
    repos: Vec<Repository>,
    /// Unreachable destinations (their probe failed), reported with the
    /// others' results.
    unreachable: Vec<TargetReport>,
}

impl Runner<'_> {
    /// Backs up (or copies) to every destination of `svc`, each followed by
    /// its retention, and records the results in `run`.
    pub(super) async fn targets(
        &self,
        svc: &ServicePlan<'_>,
        sources: &[PathBuf],
        run: &mut ServiceRun,
        log: &RunLog,
        probes: &Probes,
    ) {
        let Opened { repos, unreachable } = self.open(svc, run, log, probes);
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
        if let (Some(first), Some(now_first)) = (
            svc.targets.first().map(TargetPlan::destination),
            refs.first(),
        ) && probes.failed(first).is_some()
            && now_first.destination != *first
        {
            log.line(&format!(
                "primary target `{first}` is unreachable; `{}` takes its place in this run",
                now_first.destination
            ));
        }
        let stops = run
            .docker
            .as_ref()
            .is_some_and(docker::ServiceDocker::stops_containers);
        let fanout = Fanout::choose(svc.config, refs.len(), stops);
        // One bound for backups, copies and retention alike.
        let sem = tokio::sync::Semaphore::new(
            self.config
                .settings
                .max_parallel_destinations
                .unwrap_or(refs.len())
                .max(1),
        );
        let fan = Fan {
            svc,
            sources,
            sem: &sem,
            run,
            log,
        };
        let results = match fanout {
            Fanout::DumpsOnly => Vec::new(),
            Fanout::Copy => self.copy_fan_out(fan, &refs).await,
            Fanout::ContainersFirst => self.containers_first(fan, &refs).await,
            Fanout::Parallel => self.fan_out(fan, &refs).await,
        };
        let dump_retention = self.retain_after_dumps(fan, &refs, &results).await;
        retention::record_after_dumps(run, dump_retention);
        run.close_container_window();
        if fanout == Fanout::Copy
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
        self.record_targets(svc, run, results, unreachable);
    }

    /// Opens the repository of each destination of `svc`. A destination
    /// that cannot be opened, or lacks its password file, fails the service
    /// here; an unreachable one is set aside.
    fn open(
        &self,
        svc: &ServicePlan<'_>,
        run: &mut ServiceRun,
        log: &RunLog,
        probes: &Probes,
    ) -> Opened {
        let mut repos = Vec::new();
        let mut unreachable = Vec::new();
        for target in &svc.targets {
            let t = target.destination();
            let opened = match target {
                TargetPlan::Ready { repo, .. } => repo
                    .as_ref()
                    .clone()
                    .with_secrets()
                    .map_err(|e| e.to_string()),
                TargetPlan::Broken { error, .. } => Err(error.clone()),
            };
            match opened {
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
                    run.report
                        .targets
                        .push(failed_target(t, "", ErrorClass::Config, e.clone()));
                    run.fail(ErrorClass::Config, e);
                }
            }
        }
        Opened { repos, unreachable }
    }

    /// Independent backups to `repos`, at most `max_parallel_destinations`
    /// at once (never two restic processes on one repository: each target
    /// is its own repository).
    pub(super) async fn fan_out(&self, fan: Fan<'_>, repos: &[&Repository]) -> Vec<TargetReport> {
        let jobs = repos.iter().map(|repo| async move {
            let _permit = fan.sem.acquire().await.ok();
            if self.shutdown.signal().is_some() {
                return not_started_interrupted(repo);
            }
            let mut tr = match &fan.svc.backup_script {
                Some(script) => self.script(fan, script, repo).await,
                None => self.backup_target(fan, repo).await,
            };
            tr.finished_after_ms = Some(ms(fan.run.started.elapsed()));
            // This destination's retention, right after its snapshot and
            // under the same permit.
            self.retain_after(fan, repo, &mut tr).await;
            tr
        });
        futures_util::future::join_all(jobs).await
    }

    /// The destinations' results into the report in the configured order,
    /// unreachable ones included, each folded into the service's outcome.
    fn record_targets(
        &self,
        svc: &ServicePlan<'_>,
        run: &mut ServiceRun,
        mut results: Vec<TargetReport>,
        unreachable: Vec<TargetReport>,
    ) {
        for tr in unreachable {
            self.progress.note(&format!(
                "{}: `{}` is unreachable; skipped",
                svc.service, tr.destination
            ));
            results.push(tr);
        }
        results.sort_by_key(|t| {
            svc.targets
                .iter()
                .position(|d| d.destination() == t.destination)
        });
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    const CONFIG: &str = r#"[global]
restic_password_file = "pw"
[destinations.a]
type = "local"
path = "{dir}/a"
[destinations.b]
type = "local"
path = "{dir}/b"
[services.files]
targets = ["a", "b"]
[services.files.config]
paths = ["{dir}"]
[services.copied]
targets = ["a", "b"]
replication = "copy"
[services.copied.config]
paths = ["{dir}"]
[services.scripted]
targets = ["a", "b"]
replication = "copy"
backup_script = "true"
[services.dumped]
targets = ["a", "b"]
replication = "copy"
[[services.dumped.config.dumps]]
name = "db"
type = "sqlite"
path = "{dir}/db.sqlite"
"#;

    fn config() -> (tempfile::TempDir, Config) {
        crate::engine::plan::tests::config(CONFIG)
    }

    #[test]
    fn each_service_gets_the_fanout_its_config_and_this_run_allow() {
        let (_dir, c) = config();
        let svc = |name: &str| {
            c.services
                .iter()
                .find(|s| s.name == name)
                .unwrap_or_else(|| panic!("no service {name}"))
        };
        // (service, usable destinations, containers stopped, fan-out)
        let cases = [
            ("files", 2, false, Fanout::Parallel),
            ("files", 2, true, Fanout::ContainersFirst),
            ("files", 0, true, Fanout::Parallel),
            ("copied", 2, false, Fanout::Copy),
            ("copied", 2, true, Fanout::Copy),
            // One reachable destination: nothing to copy to.
            ("copied", 1, false, Fanout::Parallel),
            ("copied", 1, true, Fanout::ContainersFirst),
            // A script backs up to each destination itself.
            ("scripted", 2, false, Fanout::Parallel),
            // Dumps only: the dumps step did the backing up.
            ("dumped", 2, false, Fanout::DumpsOnly),
            ("dumped", 0, false, Fanout::DumpsOnly),
        ];
        for (name, repos, stops, want) in cases {
            assert_eq!(
                Fanout::choose(svc(name), repos, stops),
                want,
                "{name} with {repos} destination(s), stops: {stops}"
            );
        }
    }
}
