//! One destination's own snapshot: `restic backup` of the service's paths
//! and direct volumes, one `restic backup --stdin` per streamed Docker
//! volume, or the original tool's `backup_script`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use super::targets::Fan;
use super::{Runner, TargetReport, VolumeSnapshot, failed_target, ms};
use crate::model::Outcome;
use crate::process::{Ended, Spec};
use crate::restic::ops::{self, BackupArgs, BackupResult};
use crate::restic::output::BackupSummary;
use crate::restic::{ErrorClass, Repository, ResticCall};
use crate::sources::docker;

impl TargetReport {
    /// Records a finished `restic backup` (exit 0, or 3 with a snapshot
    /// missing the files it could not read).
    fn backed_up(&mut self, b: &BackupResult) {
        self.outcome = if b.warning {
            Outcome::Warning
        } else {
            Outcome::Ok
        };
        self.error_class = None;
        self.error = b.warning.then(|| {
            let n = b
                .stderr
                .lines()
                .filter(|l| l.contains("\"message_type\":\"error\"") || l.starts_with("error"))
                .count();
            format!(
                "restic could not read {} item(s); see the run log",
                n.max(1)
            )
        });
        self.snapshot_id = b.summary.snapshot_id.clone();
        self.files_new = Some(b.summary.files_new);
        self.files_changed = Some(b.summary.files_changed);
        self.files_unmodified = Some(b.summary.files_unmodified);
        self.bytes_added = Some(b.summary.data_added);
        self.bytes_processed = Some(b.summary.total_bytes_processed);
    }

    /// Adds a streamed volume's snapshot: its counts to the target's, its
    /// id to the target's list (and as the target's snapshot when the
    /// target has no file snapshot).
    fn add_volume(&mut self, volume: &str, s: BackupSummary) {
        if self.snapshot_id.is_none() {
            self.snapshot_id.clone_from(&s.snapshot_id);
        }
        self.bytes_added = Some(self.bytes_added.unwrap_or(0) + s.data_added);
        self.bytes_processed = Some(self.bytes_processed.unwrap_or(0) + s.total_bytes_processed);
        self.files_new = Some(self.files_new.unwrap_or(0) + s.files_new);
        self.files_changed = Some(self.files_changed.unwrap_or(0) + s.files_changed);
        self.files_unmodified = Some(self.files_unmodified.unwrap_or(0) + s.files_unmodified);
        self.volume_snapshots.push(VolumeSnapshot {
            volume: volume.to_string(),
            snapshot_id: s.snapshot_id,
        });
    }
}

/// The report of a target of `repo` before its result is known: failed,
/// with no message, until the result fills it in.
fn pending(repo: &Repository) -> TargetReport {
    failed_target(
        &repo.destination,
        &repo.display,
        ErrorClass::Other,
        String::new(),
    )
}

impl Runner<'_> {
    /// `restic backup` of `sources` to `repo`.
    pub(super) async fn backup(&self, fan: Fan<'_>, repo: &Repository) -> TargetReport {
        let paths: Vec<&Path> = fan.sources.iter().map(PathBuf::as_path).collect();
        let args = BackupArgs {
            paths: &paths,
            host: &fan.svc.host,
            tags: &fan.svc.tags,
            excludes: &fan.svc.excludes,
            timeout: fan.run.remaining(),
            progress: self.progress.wanted(),
        };
        fan.log.line(&format!(
            "backup to `{}` ({})",
            repo.destination, repo.display
        ));
        self.progress.started(&fan.svc.service, &repo.destination);
        let started = Instant::now();
        let res = self
            .retry_locked(repo, fan.log, fan.run, || {
                ops::backup(
                    self.restic,
                    repo,
                    &args,
                    &self.shutdown,
                    |st| {
                        self.progress
                            .update(&fan.svc.service, &repo.destination, st)
                    },
                    |l| {
                        fan.log.line(&format!(
                            "restic ! {}",
                            crate::restic::output::stderr_line(l)
                        ));
                    },
                )
            })
            .await;
        let mut tr = pending(repo);
        tr.duration_ms = ms(started.elapsed());
        match res {
            Ok(b) => {
                tr.backed_up(&b);
                fan.log.line(&format!(
                    "snapshot {} on `{}`: {} new, {} changed, {} bytes added",
                    b.summary.snapshot_id.as_deref().unwrap_or("?"),
                    repo.destination,
                    b.summary.files_new,
                    b.summary.files_changed,
                    b.summary.data_added
                ));
            }
            Err(e) => {
                tr.fail_with(&e);
                self.unlock_after(&e, repo, fan.run, fan.log).await;
            }
        }
        self.progress
            .finished(&fan.svc.service, &repo.destination, tr.outcome);
        tr
    }

    /// Everything one target gets from this service: the file snapshot
    /// (paths and direct volumes) and one snapshot per streamed volume.
    pub(super) async fn backup_target(&self, fan: Fan<'_>, repo: &Repository) -> TargetReport {
        let streams: &[String] = fan.run.docker.as_ref().map_or(&[], |d| &d.stream);
        // Streamed volumes exist only with a client (see `docker::prepare`).
        let Some((d, client)) = fan
            .run
            .docker
            .as_ref()
            .and_then(|d| d.client.as_ref().map(|c| (d, c)))
            .filter(|_| !streams.is_empty())
        else {
            return self.backup(fan, repo).await;
        };
        let mut tr = if fan.sources.is_empty() {
            let mut t = pending(repo);
            t.outcome = Outcome::Ok;
            t.error_class = None;
            t.error = None;
            // Only streamed volumes: the progress display still shows this
            // target while they run.
            self.progress.started(&fan.svc.service, &repo.destination);
            t
        } else {
            self.backup(fan, repo).await
        };
        if !matches!(tr.outcome, Outcome::Ok | Outcome::Warning) {
            return tr;
        }
        let started = Instant::now();
        for v in streams {
            fan.log.line(&format!(
                "stream volume `{v}` to `{}` as `{}`",
                repo.destination,
                docker::stream_filename(v)
            ));
            let res = self
                .retry_locked(repo, fan.log, fan.run, || async {
                    let what = docker::StreamBackup {
                        volume: v,
                        image: &d.image,
                        host: &fan.svc.host,
                        tags: &fan.svc.tags,
                        timeout: fan.run.remaining(),
                    };
                    docker::backup_volume_stream(client, self.restic, repo, &what, &self.shutdown)
                        .await
                })
                .await;
            match res {
                Ok(b) => {
                    fan.log.line(&format!(
                        "snapshot {} of volume `{v}` on `{}`: {} bytes added",
                        b.summary.snapshot_id.as_deref().unwrap_or("?"),
                        repo.destination,
                        b.summary.data_added
                    ));
                    tr.add_volume(v, b.summary);
                }
                Err(e) => {
                    tr.fail_with(&e);
                    fan.log.line(&format!(
                        "volume `{v}` on `{}`: {}",
                        repo.destination, e.message
                    ));
                    self.unlock_after(&e, repo, fan.run, fan.log).await;
                    break;
                }
            }
        }
        tr.duration_ms += ms(started.elapsed());
        if fan.sources.is_empty() {
            self.progress
                .finished(&fan.svc.service, &repo.destination, tr.outcome);
        }
        tr
    }

    /// The original tool's `backup_script`, once per target.
    pub(super) async fn script(
        &self,
        fan: Fan<'_>,
        script: &str,
        repo: &Repository,
    ) -> TargetReport {
        let settings = &self.config.settings;
        // The script's environment is the one restic-manager gives restic
        // (repository, password source, destination credentials, with any
        // inherited RESTIC_* variables scrubbed: restic 0.14 refuses a
        // password file next to a password command). It also stops the way
        // restic does, with SIGINT and restic's grace period: a script's
        // `restic backup` killed by SIGTERM leaves a stale repository lock.
        let call = ResticCall::new(self.restic, repo, std::iter::empty::<&str>())
            .timeout(fan.run.remaining());
        let mut spec = Spec {
            program: "sh".into(),
            args: vec!["-c".into(), script.into()],
            ..call.spec
        };
        spec = spec.env("SERVICE_NAME", &fan.svc.service);
        if let Some(b) = &settings.docker_base {
            spec = spec.env("DOCKER_BASE", b.to_string_lossy());
        }
        fan.log.line(&format!(
            "backup_script for `{}`: `{script}`",
            repo.destination
        ));
        self.progress.started(&fan.svc.service, &repo.destination);
        let res = spec
            .run(
                &self.shutdown,
                |l| fan.log.line(&format!("script | {l}")),
                |l| fan.log.line(&format!("script ! {l}")),
            )
            .await;
        let mut tr = pending(repo);
        match res {
            Ok(out) => {
                tr.duration_ms = ms(out.duration);
                match out.ended {
                    Ended::Exited(0) => {
                        tr.outcome = Outcome::Ok;
                        tr.error_class = None;
                        tr.error = None;
                    }
                    Ended::Exited(3) => {
                        tr.outcome = Outcome::Warning;
                        tr.error_class = None;
                        tr.error = Some("backup_script exited 3 (incomplete)".into());
                    }
                    Ended::TimedOut => {
                        tr.error_class = Some(ErrorClass::Timeout);
                        tr.error = Some("backup_script ran out of time".into());
                    }
                    Ended::Interrupted(_) => {
                        tr.outcome = Outcome::Interrupted;
                        tr.error_class = Some(ErrorClass::Interrupted);
                        tr.error = Some("backup_script interrupted".into());
                    }
                    e => tr.error = Some(format!("backup_script failed ({})", e.describe())),
                }
                if matches!(out.ended, Ended::TimedOut | Ended::Interrupted(_)) {
                    self.clear_stale_locks(repo, fan.log).await;
                }
            }
            Err(e) => tr.error = Some(e.to_string()),
        }
        self.progress
            .finished(&fan.svc.service, &repo.destination, tr.outcome);
        tr
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn target() -> TargetReport {
        failed_target("local", "/srv/repo", ErrorClass::Other, String::new())
    }

    fn summary(snapshot: Option<&str>, files_new: u64, data_added: u64) -> BackupSummary {
        BackupSummary {
            files_new,
            files_changed: 1,
            files_unmodified: 10,
            data_added,
            total_bytes_processed: 2 * data_added,
            snapshot_id: snapshot.map(str::to_string),
            ..BackupSummary::default()
        }
    }

    #[test]
    fn a_backup_that_could_not_read_everything_is_a_warning_counting_what_it_missed() {
        let cases = [
            // (restic exited 3, stderr, outcome, error)
            (false, "", Outcome::Ok, None),
            (
                true,
                "{\"message_type\":\"error\",\"item\":\"/a\"}\nerror: open /b: permission denied\nscanning\n",
                Outcome::Warning,
                Some("restic could not read 2 item(s); see the run log"),
            ),
            // Exit 3 without an error line restic printed: still one item.
            (
                true,
                "",
                Outcome::Warning,
                Some("restic could not read 1 item(s); see the run log"),
            ),
        ];
        for (warning, stderr, outcome, error) in cases {
            let mut tr = target();
            tr.backed_up(&BackupResult {
                warning,
                summary: summary(Some("abcdef0123456789"), 3, 100),
                stderr: stderr.to_string(),
                duration: Duration::from_secs(1),
            });
            assert_eq!(tr.outcome, outcome, "{stderr}");
            assert_eq!(tr.error_class, None);
            assert_eq!(tr.error.as_deref(), error, "{stderr}");
            assert_eq!(tr.snapshot_id.as_deref(), Some("abcdef0123456789"));
            assert_eq!(
                (tr.files_new, tr.files_changed, tr.files_unmodified),
                (Some(3), Some(1), Some(10))
            );
            assert_eq!((tr.bytes_added, tr.bytes_processed), (Some(100), Some(200)));
        }
    }

    #[test]
    fn streamed_volumes_add_up_on_their_target() {
        // Only streamed volumes: the first one's snapshot is the target's.
        let mut tr = target();
        tr.add_volume("db", summary(Some("1111"), 1, 10));
        tr.add_volume("media", summary(Some("2222"), 2, 20));
        assert_eq!(tr.snapshot_id.as_deref(), Some("1111"));
        assert_eq!(tr.files_new, Some(3));
        assert_eq!(tr.files_changed, Some(2));
        assert_eq!(tr.files_unmodified, Some(20));
        assert_eq!((tr.bytes_added, tr.bytes_processed), (Some(30), Some(60)));
        let volumes: Vec<(&str, Option<&str>)> = tr
            .volume_snapshots
            .iter()
            .map(|v| (v.volume.as_str(), v.snapshot_id.as_deref()))
            .collect();
        assert_eq!(volumes, [("db", Some("1111")), ("media", Some("2222"))]);

        // After a file snapshot: that one stays the target's.
        let mut tr = target();
        tr.backed_up(&BackupResult {
            warning: false,
            summary: summary(Some("0000"), 5, 50),
            stderr: String::new(),
            duration: Duration::from_secs(1),
        });
        tr.add_volume("db", summary(Some("1111"), 1, 10));
        assert_eq!(tr.snapshot_id.as_deref(), Some("0000"));
        assert_eq!((tr.files_new, tr.bytes_added), (Some(6), Some(60)));
    }
}
