//! The dumps step of a service run: after the pre hooks, before any
//! container is stopped (a database must be running to be dumped). Each
//! dump runs once and streams into every target (`sources::dump`); its
//! results are target rows with `method = "dump"`, so history, retention
//! and the run table treat them like any other snapshot.

use super::{Runner, ServiceRun, Stopped, TargetMethod, failed_target, missing_password_file, ms};
use crate::config::Service;
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
        svc: &Service,
        run: &mut ServiceRun,
        log: &RunLog,
        probes: &Probes,
    ) -> Result<(), Stopped> {
        if svc.dumps.is_empty() {
            return Ok(());
        }
        // Targets whose repository cannot be described are reported by the
        // file backup step (or below, for a dumps-only service).
        let mut repos: Vec<Repository> = Vec::new();
        // Unreachable targets, likewise, by the file backup step.
        for t in svc.targets.iter().filter(|t| probes.failed(t).is_none()) {
            let Some(dest) = self.config.destinations.get(t) else {
                continue;
            };
            match Repository::open(dest, &svc.name, &self.config.settings.password) {
                Ok(r) if missing_password_file(&r).is_none() => repos.push(r),
                _ => {}
            }
        }
        let refs: Vec<&Repository> = repos.iter().collect();
        if refs.is_empty() {
            return Ok(());
        }
        let mut tags = vec![svc.tag()];
        tags.extend(svc.tags.iter().cloned());
        for d in &svc.dumps {
            self.progress.note(&format!(
                "{}: dump `{}` into {} target(s)",
                svc.name,
                d.name,
                refs.len()
            ));
            let req = BackupRequest {
                restic: self.restic,
                dump: d,
                repos: &refs,
                host: &self.config.settings.host,
                tags: &tags,
                timeout: run.remaining(),
            };
            let res = dump::backup(&req, &self.shutdown, &|l: &str| log.line(l)).await;
            for t in res.targets {
                let mut tr = failed_target(
                    &t.destination,
                    &t.repository,
                    ErrorClass::Other,
                    String::new(),
                );
                tr.method = TargetMethod::Dump;
                tr.dump = Some(d.name.clone());
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
                            "dump `{}`: snapshot {} on `{}`: {} bytes, {} added",
                            d.name,
                            s.snapshot_id.as_deref().unwrap_or("?"),
                            t.destination,
                            s.total_bytes_processed,
                            s.data_added
                        ));
                    }
                    Err(e) => {
                        tr.fail_with(&e);
                        log.line(&format!(
                            "dump `{}` on `{}`: {}",
                            d.name, t.destination, e.message
                        ));
                        // A dump failure is reported once, below; a
                        // restic failure on one target is this target's.
                        if res.failure.is_none() {
                            run.fail(
                                e.class,
                                format!("dump `{}` → `{}`: {}", d.name, t.destination, e.message),
                            );
                        }
                    }
                }
                run.report.targets.push(tr);
            }
            if let Some(f) = &res.failure {
                // One line: the last stderr line is in the message; a few
                // more give the context (the full tail is in the run log).
                let lines: Vec<&str> = f
                    .stderr
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .collect();
                let mut msg = format!("{}; no snapshot of it was kept", f.message);
                if lines.len() > 1 {
                    msg.push_str(&format!(
                        " (its last output: {})",
                        lines[lines.len().saturating_sub(5)..].join(" | ")
                    ));
                }
                run.fail(f.class, msg);
            }
            if self.interrupted(run) {
                return Err(Stopped);
            }
        }
        Ok(())
    }
}
