//! The dumps step of a service run: after the pre hooks, before any
//! container is stopped (a database must be running to be dumped). Each
//! dump runs once and streams into every target (`sources::dump`); its
//! results are target rows with `method = "dump"`, so history, retention
//! and the run table treat them like any other snapshot.

use super::{Runner, ServiceRun, Stopped, TargetMethod, failed_target, missing_password_file, ms};
use crate::config::Service;
use crate::engine::plan::{ServicePlan, TargetPlan};
use crate::model::Outcome;
use crate::restic::probe::Probes;
use crate::restic::{ErrorClass, Repository};
use crate::runlog::RunLog;
use crate::sources::dump::{self, BackupRequest};

/// True when the service backs up nothing but dumps: the file snapshot is
/// skipped then (restic refuses a backup without paths).
pub(super) fn only_dumps(svc: &Service) -> bool {
    !svc.dumps.is_empty()
        && svc.paths.is_empty()
        && svc.volumes.is_empty()
        && svc.backup_script.is_none()
}

impl Runner<'_> {
    /// Runs every dump of `svc` into its targets. Stops the run when it
    /// was interrupted; a failed dump fails the service but the file backup
    /// still happens (it does not depend on the dump).
    pub(super) async fn dumps(
        &self,
        svc: &ServicePlan<'_>,
        run: &mut ServiceRun,
        log: &RunLog,
        probes: &Probes,
    ) -> Result<(), Stopped> {
        if svc.config.dumps.is_empty() {
            return Ok(());
        }
        // Targets whose repository cannot be described are reported by the
        // file backup step (or below, for a dumps-only service).
        let mut repos: Vec<Repository> = Vec::new();
        // Unreachable targets, likewise, by the file backup step.
        for t in &svc.targets {
            let TargetPlan::Ready { repo, .. } = t else {
                continue;
            };
            if probes.failed(&repo.destination).is_some() {
                continue;
            }
            match repo.as_ref().clone().with_secrets() {
                Ok(r) if missing_password_file(&r).is_none() => repos.push(r),
                _ => {}
            }
        }
        let refs: Vec<&Repository> = repos.iter().collect();
        if refs.is_empty() {
            return Ok(());
        }
        for d in &svc.config.dumps {
            self.progress.note(&format!(
                "{}: dump `{}` into {} target(s)",
                svc.service,
                d.name,
                refs.len()
            ));
            let req = BackupRequest {
                restic: self.restic,
                dump: d,
                repos: &refs,
                host: &svc.host,
                tags: &svc.tags,
                timeout: run.remaining(),
            };
            let res = dump::backup(&req, &self.shutdown, &|l: &str| log.line(l)).await;
            for t in res.targets {
                record_target(run, log, &d.name, t, res.failure.is_some());
            }
            if let Some(f) = &res.failure {
                run.fail(f.class, failure_message(&f.message, &f.stderr));
            }
            if self.interrupted(run) {
                return Err(Stopped);
            }
        }
        Ok(())
    }
}

/// One target's result of dump `name` as a target row of the run. A restic
/// failure on the target fails the service, unless the dump itself failed
/// (`dump_failed`): that is reported once, for all its targets.
fn record_target(
    run: &mut ServiceRun,
    log: &RunLog,
    name: &str,
    t: dump::TargetResult,
    dump_failed: bool,
) {
    let mut tr = failed_target(
        &t.destination,
        &t.repository,
        ErrorClass::Other,
        String::new(),
    );
    tr.method = TargetMethod::Dump;
    tr.dump = Some(name.to_string());
    tr.duration_ms = ms(t.duration);
    tr.finished_after_ms = Some(ms(run.started.elapsed()));
    match t.result {
        Ok(s) => {
            tr.outcome = Outcome::Ok;
            tr.error_class = None;
            tr.error = None;
            tr.snapshot_id.clone_from(&s.snapshot_id);
            tr.bytes_added = Some(s.data_added);
            tr.bytes_processed = Some(s.total_bytes_processed);
            log.line(&format!(
                "dump `{name}`: snapshot {} on `{}`: {} bytes, {} added",
                s.snapshot_id.as_deref().unwrap_or("?"),
                t.destination,
                s.total_bytes_processed,
                s.data_added
            ));
        }
        Err(e) => {
            tr.fail_with(&e);
            log.line(&format!(
                "dump `{name}` on `{}`: {}",
                t.destination, e.message
            ));
            if !dump_failed {
                run.fail(
                    e.class,
                    format!("dump `{name}` → `{}`: {}", t.destination, e.message),
                );
            }
        }
    }
    run.report.targets.push(tr);
}

/// The service's error for a failed dump, on one line: the last line of
/// its output is in `message`; a few more give the context (the full tail
/// is in the run log).
fn failure_message(message: &str, stderr: &str) -> String {
    let lines: Vec<&str> = stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let mut msg = format!("{message}; no snapshot of it was kept");
    if lines.len() > 1 {
        msg.push_str(&format!(
            " (its last output: {})",
            lines[lines.len().saturating_sub(5)..].join(" | ")
        ));
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_dump_says_so_with_the_last_lines_of_its_output() {
        let cases = [
            ("", "pg_dump exited 1; no snapshot of it was kept"),
            // The one line is already in the message.
            (
                "fatal: no such database\n",
                "pg_dump exited 1; no snapshot of it was kept",
            ),
            (
                "a\n\n  b  \nc\nd\ne\nf\n",
                "pg_dump exited 1; no snapshot of it was kept (its last output: b | c | d | e | f)",
            ),
        ];
        for (stderr, want) in cases {
            assert_eq!(
                failure_message("pg_dump exited 1", stderr),
                want,
                "{stderr:?}"
            );
        }
    }
}
