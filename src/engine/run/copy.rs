//! Copy mode (`replication = "copy"`): one backup to the primary (first)
//! destination, then `restic copy` of its snapshot, and of its streamed
//! volumes' snapshots, to every other destination.

use std::time::Instant;

use super::targets::Fan;
use super::{Runner, TargetMethod, TargetReport, VolumeSnapshot, failed_target, ms};
use crate::model::{Failure, Outcome};
use crate::restic::ops;
use crate::restic::{ErrorClass, Repository};
use crate::sources::docker;

impl Runner<'_> {
    /// Back up once to the primary (first) target, then `restic copy` the
    /// new snapshot to the others; if the primary fails, back up to the
    /// others directly.
    pub(super) async fn copy_fan_out(
        &self,
        fan: Fan<'_>,
        repos: &[&Repository],
    ) -> Vec<TargetReport> {
        let (primary, rest) = match repos.split_first() {
            Some(x) => x,
            None => return Vec::new(),
        };
        let mut first = self.primary(fan, primary).await;
        first.finished_after_ms = Some(ms(fan.run.started.elapsed()));
        let snapshot = first.snapshot_id.clone();
        let first_volumes = first.volume_snapshots.clone();
        let ok = matches!(first.outcome, Outcome::Ok | Outcome::Warning);
        let mut others = Vec::new();
        match snapshot {
            Some(id) if ok => {
                let id = &id;
                let vols = &first_volumes;
                let jobs = rest.iter().map(|to| async move {
                    let _permit = fan.sem.acquire().await.ok();
                    let mut tr = self.copy_to(fan, primary, to, id).await;
                    self.copy_volumes(fan, primary, to, vols, &mut tr).await;
                    // Each copy target's retention right after its copy.
                    self.retain_after(fan, to, &mut tr).await;
                    tr
                });
                others.extend(futures_util::future::join_all(jobs).await);
            }
            _ if self.shutdown.signal().is_none() => {
                fan.log.line(&format!(
                    "primary `{}` failed; backing up directly to the other targets",
                    primary.destination
                ));
                others.extend(self.fan_out(fan, rest).await);
            }
            _ => {}
        }
        // The primary's retention once every copy has read from it (an
        // exclusive `forget` lock would make the copies wait).
        {
            let _permit = fan.sem.acquire().await.ok();
            self.retain_after(fan, primary, &mut first).await;
        }
        let mut out = vec![first];
        out.extend(others);
        out
    }

    /// `restic copy` of `snapshot` from `from` to `to`.
    async fn copy_to(
        &self,
        fan: Fan<'_>,
        from: &Repository,
        to: &Repository,
        snapshot: &str,
    ) -> TargetReport {
        fan.log.line(&format!(
            "copy snapshot {snapshot} from `{}` to `{}` ({})",
            from.destination, to.destination, to.display
        ));
        self.progress.started(&fan.svc.service, &to.destination);
        let started = Instant::now();
        let tag = fan.svc.config.tag();
        let res = self.copy_snapshot(fan, from, to, snapshot, &tag).await;
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
                fan.log.line(&format!(
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
                    self.clear_stale_locks(to, fan.log).await;
                }
            }
        }
        tr.finished_after_ms = Some(ms(fan.run.started.elapsed()));
        self.progress
            .finished(&fan.svc.service, &to.destination, tr.outcome);
        tr
    }

    /// `restic copy` of one snapshot, tagged `tag` in `to`, waiting out
    /// a locked `to`; returns the copy's id.
    async fn copy_snapshot(
        &self,
        fan: Fan<'_>,
        from: &Repository,
        to: &Repository,
        snapshot: &str,
        tag: &str,
    ) -> Result<Option<String>, Failure> {
        self.retry_locked(to, fan.log, fan.run, || {
            ops::copy(
                self.restic,
                from,
                to,
                snapshot,
                tag,
                fan.run.remaining(),
                &self.shutdown,
            )
        })
        .await
    }

    /// `restic copy` of the primary's volume snapshots to `to`.
    async fn copy_volumes(
        &self,
        fan: Fan<'_>,
        from: &Repository,
        to: &Repository,
        volumes: &[VolumeSnapshot],
        tr: &mut TargetReport,
    ) {
        if !matches!(tr.outcome, Outcome::Ok | Outcome::Warning) {
            return;
        }
        for v in volumes {
            let Some(id) = v.snapshot_id.as_deref() else {
                continue;
            };
            let tag = docker::volume_tag(&v.volume);
            let res = self.copy_snapshot(fan, from, to, id, &tag).await;
            match res {
                Ok(copied) => {
                    fan.log.line(&format!(
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
}
