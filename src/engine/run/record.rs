//! The records of a service run: its history row and run log are opened
//! before the lock is taken (a refused run is recorded too), and closed
//! with the outcome, the error, the warnings and one row per target.
//! History that cannot be written never stops a backup: it becomes a
//! warning of the run.

use std::time::Duration;

use super::{Runner, ServiceReport, ServiceRun, ms};
use crate::engine::plan::ServicePlan;
use crate::history::TargetRecord;
use crate::runlog::RunLog;

impl Runner<'_> {
    /// Starts the run of `svc`: its history row, then its log (named after
    /// the row's id, so without a row there is no log file).
    pub(super) fn begin(&self, svc: &ServicePlan<'_>) -> (ServiceRun, RunLog) {
        let settings = &self.config.settings;
        let mut run = ServiceRun::new(svc);
        let run_id = match self
            .history
            .start_run(&svc.service, self.trigger, &settings.host)
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
                    &svc.service,
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
            svc.service,
            self.restic.version,
            self.restic.path.display(),
            settings.host
        ));
        (run, log)
    }

    /// Ends the run: its duration, the closing lines of its log, and its
    /// targets and outcome in history.
    pub(super) fn finish(&self, mut run: ServiceRun, log: &RunLog) -> ServiceReport {
        let settings = &self.config.settings;
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
        if let Some(id) = run.report.run_id {
            self.record(id, &mut run.report);
        }
        run.report
    }

    /// The run's targets and outcome in history row `id`; what cannot be
    /// written becomes a warning of the report (the run log is closed by
    /// then).
    fn record(&self, id: i64, report: &mut ServiceReport) {
        for t in &report.targets {
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
                report.warnings.push(format!("history: {e}"));
            }
        }
        let message = report
            .error
            .clone()
            .or_else(|| report.warnings.first().cloned());
        if let Err(e) =
            self.history
                .finish_run(id, report.outcome, report.error_class, message.as_deref())
        {
            report.warnings.push(format!("history: {e}"));
        }
    }
}
