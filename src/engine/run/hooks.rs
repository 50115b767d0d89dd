//! The hook steps of a service run, on top of [`crate::hooks`]: pre hooks
//! before anything else (the first failure without `continue_on_error`
//! skips the backup), post hooks at the end whatever happened, told the
//! outcome so far, as cleanup that a spent budget or a signal does not cut
//! short.

use super::{Runner, ServiceRun, Stopped};
use crate::engine::plan::ServicePlan;
use crate::hooks::Phase;
use crate::process::Shutdown;
use crate::restic::ErrorClass;
use crate::runlog::RunLog;

impl Runner<'_> {
    /// Runs the pre hooks in order. Stops at a signal, or at the first
    /// failure without `continue_on_error` (which fails the service).
    pub(super) async fn pre_hooks(
        &self,
        svc: &ServicePlan<'_>,
        run: &mut ServiceRun,
        log: &RunLog,
    ) -> Result<(), Stopped> {
        if !svc.config.pre_backup_hooks.is_empty() {
            self.progress
                .note(&format!("{}: running pre-backup hooks", svc.service));
        }
        for h in &svc.config.pre_backup_hooks {
            let r = crate::hooks::run(
                h,
                Phase::Pre,
                &svc.service,
                None,
                run.remaining(),
                &self.shutdown,
                log,
            )
            .await;
            let (ok, cont, result) = (r.ok, r.continue_on_error, r.result.clone());
            run.report.hooks.push(r);
            if ok {
                continue;
            }
            if self.interrupted(run) {
                return Err(Stopped);
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
                return Err(Stopped);
            }
        }
        Ok(())
    }

    /// Runs every post hook, told the service's outcome so far.
    pub(super) async fn post_hooks(
        &self,
        svc: &ServicePlan<'_>,
        run: &mut ServiceRun,
        log: &RunLog,
    ) {
        if !svc.config.post_backup_hooks.is_empty() {
            self.progress
                .note(&format!("{}: running post-backup hooks", svc.service));
        }
        for h in &svc.config.post_backup_hooks {
            let so_far = run.report.outcome;
            // Post hooks are cleanup: they get their own time even when the
            // service's budget is spent.
            let budget = run.remaining().max(h.timeout());
            let r = crate::hooks::run(
                h,
                Phase::Post,
                &svc.service,
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
}
