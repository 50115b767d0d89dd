//! The service's containers (`stop_containers`, `stop_compose_project`):
//! stopped for exactly the first destination's snapshot and started again
//! whatever happened; the other destinations back up while they run again.

use std::time::Duration;

use super::targets::Fan;
use super::{Runner, ServiceRun, TargetReport, failed_target, ms, not_started_interrupted};
use crate::restic::{ErrorClass, Repository};
use crate::sources::docker::DockerError;

/// What happened to the service's containers.
#[derive(Default)]
pub(super) struct ContainerWindow {
    stopped_ms: Option<u64>,
    stopped: Vec<String>,
    errors: Vec<DockerError>,
}

impl ServiceRun {
    /// Notes the containers `names` were down for `down` (targets run
    /// concurrently and only see `&ServiceRun`, hence the mutex).
    fn containers_were_down(&self, down: Duration, names: Vec<String>, errors: Vec<DockerError>) {
        let mut w = self
            .containers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        w.stopped_ms = Some(ms(down));
        w.stopped = names;
        w.errors.extend(errors);
    }

    /// Moves the container window into the report, once the targets are
    /// done; containers that did not start again fail the service.
    pub(super) fn close_container_window(&mut self) {
        let window = std::mem::take(
            &mut *self
                .containers
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        self.report.containers_stopped_ms = window.stopped_ms;
        self.report.containers_stopped = window.stopped;
        for e in window.errors {
            self.fail(e.class(), e.to_string());
        }
    }
}

impl Runner<'_> {
    /// Containers are down only for the first target's snapshot; the
    /// others back up after they are running again, while the first one's
    /// retention runs.
    pub(super) async fn containers_first(
        &self,
        fan: Fan<'_>,
        repos: &[&Repository],
    ) -> Vec<TargetReport> {
        let Some((first, rest)) = repos.split_first() else {
            return Vec::new();
        };
        let mut tr = self.primary(fan, first).await;
        tr.finished_after_ms = Some(ms(fan.run.started.elapsed()));
        let first_retention = async {
            let _permit = fan.sem.acquire().await.ok();
            self.retain_after(fan, first, &mut tr).await;
            tr
        };
        let (tr, others) =
            futures_util::future::join(first_retention, self.fan_out(fan, rest)).await;
        let mut out = vec![tr];
        out.extend(others);
        out
    }

    /// The first target's backup, with the service's containers stopped
    /// for exactly its duration and started again whatever happened (a
    /// failed backup, a timeout, a signal: restic has been stopped by then).
    pub(super) async fn primary(&self, fan: Fan<'_>, repo: &Repository) -> TargetReport {
        let Some((client, containers)) = fan
            .run
            .docker
            .as_ref()
            .filter(|d| d.stops_containers())
            .and_then(|d| d.client.as_ref().map(|c| (c, &d.containers)))
        else {
            return self.backup_target(fan, repo).await;
        };
        if self.shutdown.signal().is_some() {
            // Interrupted before the snapshot: nothing to stop them for.
            return not_started_interrupted(repo);
        }
        self.progress
            .note(&format!("{}: stopping containers", fan.svc.service));
        let guard = match client.stop(containers).await {
            Ok(g) => g,
            Err((g, e)) => {
                let names: Vec<String> = g.containers().iter().map(|c| c.name.clone()).collect();
                let (down, errors) = g.start().await;
                fan.log
                    .line(&format!("{e}; started {} again", list_names(&names)));
                fan.run.containers_were_down(down, names, errors);
                return failed_target(
                    &repo.destination,
                    &repo.display,
                    e.class(),
                    format!("{e}; nothing was backed up"),
                );
            }
        };
        let names: Vec<String> = guard.containers().iter().map(|c| c.name.clone()).collect();
        fan.log
            .line(&format!("stopped containers: {}", list_names(&names)));
        fan.run
            .unlock_later
            .store(true, std::sync::atomic::Ordering::Relaxed);
        let tr = self.backup_target(fan, repo).await;
        fan.run
            .unlock_later
            .store(false, std::sync::atomic::Ordering::Relaxed);
        let (down, errors) = guard.start().await;
        for e in &errors {
            fan.log.line(&format!("error: {e}"));
        }
        fan.log.line(&format!(
            "started containers again: {} (down for {} ms)",
            list_names(&names),
            ms(down)
        ));
        self.progress.note(&format!(
            "{}: containers started again after {:.1}s",
            fan.svc.service,
            down.as_secs_f64()
        ));
        fan.run.containers_were_down(down, names, errors);
        if matches!(
            tr.error_class,
            Some(ErrorClass::Interrupted | ErrorClass::Timeout)
        ) {
            self.clear_stale_locks(repo, fan.log).await;
        }
        tr
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
