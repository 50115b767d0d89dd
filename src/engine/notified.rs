//! A backup as every front end runs it (the `run` command and the
//! dashboard): each service between its notifications (healthchecks
//! `/start`, a long-running timer, the result, all noted in the run's log),
//! then the metrics published. Notifiers and metrics receivers never change
//! an outcome.

use futures_util::StreamExt;

use super::plan::Plan;
use super::run::{Runner, ServiceReport};
use crate::notify::{self, BackupResult, Delivery, DestinationSummary, Dispatch};

/// Executes `plan` (at most `max_parallel_services` at once) with
/// notifications, then records the repositories' snapshot counts and
/// writes/pushes the metrics.
pub async fn run(
    runner: &Runner<'_>,
    dispatch: &Dispatch,
    plan: &Plan<'_>,
) -> (Vec<ServiceReport>, Vec<Delivery>) {
    let settings = &runner.config.settings;
    let minutes = settings.long_running_threshold_minutes;
    let per_service: Vec<(Vec<ServiceReport>, Vec<Delivery>)> =
        futures_util::stream::iter(&plan.services)
            .map(|planned| async move {
                let s = planned.config;
                if runner.shutdown.signal().is_some() {
                    return (Vec::new(), Vec::new());
                }
                // A run that will be refused (another holds the lock) must
                // not restart the healthchecks timer of the one running.
                let mut sent = if super::lock::held(&settings.lock_directory, &s.name) {
                    Vec::new()
                } else {
                    dispatch.started(s).await
                };
                let started = chrono::Utc::now();
                let timer = dispatch.long_running_timer(s, minutes);
                let reports = runner.run(std::slice::from_ref(planned)).await;
                if let Some(t) = timer {
                    if t.is_finished() {
                        sent.extend(t.await.unwrap_or_default());
                    } else {
                        t.abort();
                    }
                }
                for r in &reports {
                    sent.extend(dispatch.finished(s, &notice(r), started).await);
                    if let Some(l) = &r.log_file {
                        notify::log_deliveries(l, &sent);
                    }
                }
                (reports, sent)
            })
            .buffered(settings.max_parallel_services.max(1))
            .collect()
            .await;
    let mut reports = Vec::new();
    let mut deliveries = Vec::new();
    for (r, d) in per_service {
        reports.extend(r);
        deliveries.extend(d);
    }
    // Metrics (file, Pushgateway, InfluxDB): warnings only, never the outcome.
    crate::metrics::record_retention(runner.history, &reports);
    crate::metrics::after_command(
        runner.config,
        runner.history,
        Some(runner.restic.version.to_string()),
    )
    .await;
    (reports, deliveries)
}

/// What notifiers are told about a finished run.
fn notice(r: &ServiceReport) -> BackupResult {
    BackupResult {
        outcome: r.outcome,
        error_class: r.error_class,
        error: r.error.clone(),
        warnings: r.warnings.clone(),
        duration_ms: r.duration_ms,
        destinations: r
            .targets
            .iter()
            .map(|t| DestinationSummary {
                name: t.destination.clone(),
                outcome: t.outcome,
                snapshot_id: t.snapshot_id.clone(),
                bytes_added: t.bytes_added,
                files_new: t.files_new,
                files_changed: t.files_changed,
                duration_seconds: t.duration_ms as f64 / 1000.0,
                error_class: t.error_class,
                error: t.error.clone(),
            })
            .collect(),
        log_file: r.log_file.clone(),
        lock_held_too_long: r.lock_held_too_long,
    }
}
