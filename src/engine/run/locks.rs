//! Locks a service run meets besides its own: restic's repository locks
//! (waited on with back-off, and the stale ones our stopped restic left
//! removed) and the processes a killed earlier run left behind.

use std::time::Duration;

use super::{Runner, ServiceRun};
use crate::engine::plan::ServicePlan;
use crate::model::{ErrorClass, Failure};
use crate::process;
use crate::restic::Repository;
use crate::restic::ops;
use crate::runlog::RunLog;

impl Runner<'_> {
    /// Stops what an earlier run of `svc` left running (its manager was
    /// killed where children cannot follow it, e.g. without Linux's
    /// parent-death signal): a restic still backing up to the same
    /// repository would run alongside ours, and its snapshot would never
    /// reach history. We hold the lock, so that run's manager is gone.
    /// When it let go of the lock normally (`previous_released`), every
    /// child of it had ended: the search, which reads two files of every
    /// process on the machine, is skipped.
    pub(super) async fn stop_leftovers(
        &self,
        svc: &ServicePlan<'_>,
        run: &mut ServiceRun,
        log: &RunLog,
        previous_released: bool,
    ) {
        run.after_crash = run.report.run_id.is_some_and(|id| {
            self.history
                .previous_run_interrupted(&svc.service, id)
                .unwrap_or(false)
        });
        if previous_released {
            return;
        }
        let left = process::leftovers(&process::owner_of(
            &svc.service,
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
            self.progress.note(&format!("{}: {msg}", svc.service));
            run.warn(msg);
        }
    }

    /// After we stopped restic ourselves (signal or timeout). restic 0.14
    /// leaves its lock behind when SIGINT lands in the ~200 ms between
    /// writing the lock and registering it for cleanup, and always after
    /// the SIGKILL that follows the grace period; a stale exclusive lock
    /// then blocks every later run. Plain `unlock` removes only stale locks
    /// (this host, dead PID), never another process's live one.
    pub(super) async fn clear_stale_locks(&self, repo: &Repository, log: &RunLog) {
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

    /// After a restic call to `repo` failed with `e`: when we stopped it
    /// (signal or timeout), its stale locks go at once, or, while the
    /// service's containers are stopped, after they run again (they start
    /// first: `unlock` on a hanging destination must not keep them down).
    pub(super) async fn unlock_after(
        &self,
        e: &Failure,
        repo: &Repository,
        run: &ServiceRun,
        log: &RunLog,
    ) {
        if matches!(e.class, ErrorClass::Interrupted | ErrorClass::Timeout)
            && !run.unlock_later.load(std::sync::atomic::Ordering::Relaxed)
        {
            self.clear_stale_locks(repo, log).await;
        }
    }

    /// Runs a restic operation; when the repository is locked, removes stale
    /// locks (`restic unlock` only removes locks of dead processes on this
    /// host, or older than 30 minutes) and retries with back-off for up to
    /// `lock_wait_seconds`. restic 0.14 has no `--retry-lock`.
    pub(super) async fn retry_locked<T, F, Fut>(
        &self,
        repo: &Repository,
        log: &RunLog,
        run: &ServiceRun,
        op: F,
    ) -> Result<T, Failure>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, Failure>>,
    {
        let limit = Duration::from_secs(self.config.settings.lock_wait_seconds);
        let budget = || run.remaining();
        crate::restic::retry_while_locked(limit, budget, &self.shutdown, op, |delay| async move {
            self.clear_stale_locks(repo, log).await;
            log.line(&format!(
                "`{}` is locked by another restic process; retrying in {}s",
                repo.destination,
                delay.as_secs_f32()
            ));
        })
        .await
    }
}
