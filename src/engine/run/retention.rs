//! Retention per destination, right after that destination's snapshot (or
//! copy) and inside the same bounded parallelism as the backups.
//!
//! One destination costs one `restic forget --dry-run` when the policy
//! removes nothing. When it removes something, the guard checks the plan and
//! a second call removes exactly the planned snapshot IDs (`forget ID...`,
//! with `--prune` when a prune is due): the policy is evaluated once, and a
//! snapshot made after the plan is never touched. A prune that is due while
//! nothing was removed (`prune = "CRON"`) is one `restic prune`.

use std::str::FromStr;
use std::time::Duration;

use super::targets::Fan;
use super::{Outcome, Runner, ServiceRun, TargetReport, failed_target};
use crate::config::Prune;
use crate::engine::plan::{ServicePlan, TargetPlan};
use crate::model::Failure;
use crate::restic::ops::{self, ForgetPlan, ForgetResult};
use crate::restic::{ErrorClass, Repository};

/// Why a plan is refused, or `None` when it may run: it would remove every
/// snapshot of a group, or more than `limit_percent` of all snapshots.
pub(super) fn refusal(plan: &ForgetPlan, limit_percent: u64, policy: &str) -> Option<String> {
    if plan
        .groups
        .iter()
        .any(|g| g.kept == 0 && !g.remove.is_empty())
    {
        return Some(format!(
            "refused: the policy `{policy}` would remove every snapshot of the service; nothing was removed. Check the retention keys, or run with `--allow-mass-forget` if this is really wanted"
        ));
    }
    let r = plan.result();
    let total = (r.kept + r.removed) as u64;
    if (r.removed as u64) * 100 > limit_percent * total {
        return Some(format!(
            "refused: the policy would remove {} of {total} snapshots, more than `retention_max_remove_percent` ({limit_percent}%); nothing was removed. Check the policy, or run with `--allow-mass-forget` once",
            r.removed
        ));
    }
    None
}

/// Turns a target's retention error into the service's outcome: a refusal
/// fails the service, anything else (a lock, a network error) warns.
pub(super) fn account(run: &mut ServiceRun, tr: &TargetReport) {
    if let Some(msg) = &tr.retention_error {
        let class = tr.retention_class.unwrap_or(ErrorClass::Other);
        let msg = format!("retention on `{}`: {msg}", tr.destination);
        if class == ErrorClass::RetentionRefused {
            run.fail(class, msg);
        } else {
            run.warn(msg);
        }
    }
}

/// Whether `destination` got a snapshot in this run: `tr` (its backup or
/// copy) or one of the dumps before it.
pub(super) fn got_snapshot(run: &ServiceRun, destination: &str, tr: Option<&TargetReport>) -> bool {
    let ok = |t: &TargetReport| {
        t.destination == destination && matches!(t.outcome, Outcome::Ok | Outcome::Warning)
    };
    tr.is_some_and(ok) || run.report.targets.iter().any(ok)
}

/// The `--keep-*` arguments of the destination's policy (its own keys over
/// the service's), as planned; none means no retention.
fn keep_args<'p>(svc: &'p ServicePlan<'_>, destination: &str) -> &'p [String] {
    svc.targets
        .iter()
        .find_map(|t| match t {
            TargetPlan::Ready {
                destination: d,
                retention,
                ..
            } if d == destination => Some(retention.as_slice()),
            _ => None,
        })
        .unwrap_or_default()
}

/// The results of [`Runner::retain_after_dumps`] into the dump rows of
/// their destinations, each folded into the service's outcome.
pub(super) fn record_after_dumps(run: &mut ServiceRun, done: Vec<TargetReport>) {
    for done in done {
        account(run, &done);
        if let Some(t) = run.report.targets.iter_mut().find(|t| {
            t.destination == done.destination && matches!(t.outcome, Outcome::Ok | Outcome::Warning)
        }) {
            t.retention = done.retention;
            t.retention_error = done.retention_error;
            t.retention_class = done.retention_class;
        }
    }
}

impl Runner<'_> {
    /// Retention on `repo` after its backup or copy `tr`, recorded in `tr`.
    /// Skipped when the destination got no snapshot in this run, for a
    /// `backup_script`, after a signal, and without a policy.
    pub(super) async fn retain_after(
        &self,
        fan: Fan<'_>,
        repo: &Repository,
        tr: &mut TargetReport,
    ) {
        if fan.svc.backup_script.is_some()
            || self.shutdown.signal().is_some()
            || !got_snapshot(fan.run, &repo.destination, Some(tr))
        {
            return;
        }
        let keep = keep_args(fan.svc, &repo.destination);
        if keep.is_empty() {
            return;
        }
        match self.retain_one(fan, repo, keep).await {
            Ok(f) => tr.retention = Some(f),
            Err((class, msg)) => {
                tr.retention_error = Some(msg);
                tr.retention_class = Some(class);
            }
        }
    }

    /// Retention on the destinations that got only dump snapshots in this
    /// run (a dumps-only service: `results` of the backups and copies has
    /// no row for them), after the dumps; [`record_after_dumps`] puts the
    /// results in their dump rows.
    pub(super) async fn retain_after_dumps(
        &self,
        fan: Fan<'_>,
        repos: &[&Repository],
        results: &[TargetReport],
    ) -> Vec<TargetReport> {
        let dumps_only: Vec<&Repository> = repos
            .iter()
            .copied()
            .filter(|r| !results.iter().any(|t| t.destination == r.destination))
            .filter(|r| got_snapshot(fan.run, &r.destination, None))
            .collect();
        let jobs = dumps_only.iter().map(|repo| async move {
            let _permit = fan.sem.acquire().await.ok();
            let mut tr = failed_target(
                &repo.destination,
                &repo.display,
                ErrorClass::Other,
                String::new(),
            );
            self.retain_after(fan, repo, &mut tr).await;
            tr
        });
        futures_util::future::join_all(jobs).await
    }

    /// Guarded `forget` (and prune when due) on one repository; see the
    /// module documentation for the calls it makes.
    async fn retain_one(
        &self,
        fan: Fan<'_>,
        repo: &Repository,
        keep: &[String],
    ) -> Result<ForgetResult, (ErrorClass, String)> {
        let settings = &self.config.settings;
        // Retention gets its own hour even when the backup used the
        // service's budget: a skipped prune fills disks silently.
        let budget = fan.run.remaining().max(Duration::from_secs(3600));
        let tag = fan.svc.config.tag();
        let opfail = |e: Failure| (e.class, e.message);
        let policy = keep.join(" ");
        fan.log.line(&format!(
            "calling `restic forget --dry-run {policy}` on `{}`",
            repo.destination
        ));
        let plan = self
            .retry_locked(repo, fan.log, fan.run, || {
                ops::forget_plan(
                    self.restic,
                    repo,
                    &fan.svc.host,
                    &tag,
                    keep,
                    budget,
                    &self.shutdown,
                )
            })
            .await
            .map_err(opfail)?;
        let mut result = plan.result();
        fan.log.line(&format!(
            "retention on `{}` ({policy}): would keep {}, remove {}",
            repo.destination, result.kept, result.removed
        ));
        if !self.allow_mass_forget
            && let Some(why) = refusal(
                &plan,
                u64::from(settings.retention_max_remove_percent),
                &policy,
            )
        {
            return Err((ErrorClass::RetentionRefused, why));
        }
        let prune_due = match &fan.svc.config.prune {
            Prune::Always => result.removed > 0,
            Prune::Never => false,
            Prune::Schedule(expr) => self.prune_due(fan.svc, repo, expr),
        };
        let ids = plan.remove_ids();
        if !ids.is_empty() {
            fan.log.line(&format!(
                "calling `restic forget{} ID...` on `{}` with the {} planned snapshot(s): {}",
                if prune_due { " --prune" } else { "" },
                repo.destination,
                ids.len(),
                ids.iter()
                    .map(|i| &i[..i.len().min(8)])
                    .collect::<Vec<_>>()
                    .join(" ")
            ));
            self.retry_locked(repo, fan.log, fan.run, || {
                ops::forget_ids(self.restic, repo, &ids, prune_due, budget, &self.shutdown)
            })
            .await
            .map_err(opfail)?;
        } else if prune_due {
            fan.log
                .line(&format!("calling `restic prune` on `{}`", repo.destination));
            self.retry_locked(repo, fan.log, fan.run, || {
                ops::prune(self.restic, repo, budget, &self.shutdown)
            })
            .await
            .map_err(opfail)?;
        }
        if prune_due {
            result.pruned = true;
            if let Err(e) =
                self.history
                    .record_maintenance(&fan.svc.service, &repo.destination, "prune")
            {
                fan.log.line(&format!("history: {e}"));
            }
        }
        fan.log.line(&format!(
            "retention on `{}`: kept {}, removed {}{}",
            repo.destination,
            result.kept,
            result.removed,
            if result.pruned { ", pruned" } else { "" }
        ));
        Ok(result)
    }

    /// Whether the `prune` cron schedule has come due since the last prune.
    fn prune_due(&self, svc: &ServicePlan<'_>, repo: &Repository, expr: &str) -> bool {
        let Ok(cron) = croner::Cron::from_str(expr) else {
            return false;
        };
        let last = self
            .history
            .last_maintenance(&svc.service, &repo.destination, "prune")
            .ok()
            .flatten();
        let Some(last) = last else { return true };
        let now = chrono::Local::now();
        cron.find_previous_occurrence(&now, true)
            .is_ok_and(|t| t.timestamp_millis() > last)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::restic::ops::PlanGroup;

    fn group(kept: usize, removed: usize) -> PlanGroup {
        PlanGroup {
            kept,
            remove: (0..removed).map(|i| format!("{i:064x}")).collect(),
        }
    }

    #[test]
    fn a_plan_that_empties_a_group_is_refused_even_under_the_limit() {
        let plan = ForgetPlan {
            groups: vec![group(9, 0), group(0, 1)],
        };
        let why = refusal(&plan, 50, "--keep-last 3").unwrap_or_default();
        assert!(why.contains("every snapshot"), "{why}");
    }

    #[test]
    fn a_plan_over_the_percentage_is_refused_and_at_the_limit_passes() {
        let over = ForgetPlan {
            groups: vec![group(1, 3)],
        };
        let why = refusal(&over, 50, "--keep-last 1").unwrap_or_default();
        assert!(why.contains("would remove 3 of 4 snapshots"), "{why}");
        let at = ForgetPlan {
            groups: vec![group(2, 2)],
        };
        assert_eq!(refusal(&at, 50, "--keep-last 2"), None);
        assert_eq!(refusal(&ForgetPlan::default(), 50, ""), None);
        assert_eq!(plan_ids(&over).len(), 3);
    }

    fn plan_ids(p: &ForgetPlan) -> Vec<String> {
        p.remove_ids()
    }
}
