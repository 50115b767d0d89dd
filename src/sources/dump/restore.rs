//! A stored dump back out: `restic dump` piped into a restore command or
//! written to a file.

use crate::config::dump::Dump;
use crate::model::Failure;
use crate::process::{self, Child, Ended, Output, Shutdown};
use crate::restic::ops;
use crate::restic::{ErrorClass, Repository, Restic, restore};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;

use super::presets::{DumpCommand, restore_command, with_password};
use super::producer::Producer;
use super::{CHUNK, STDERR_TAIL, last_line, tail, widen_pipe};

/// Where a restored dump goes.
#[derive(Debug, Clone)]
pub enum RestoreTo {
    /// The dump's `restore_command`, or its preset's (inside `container`
    /// when the dump has one).
    Preset,
    /// A shell command on this host that reads the dump on stdin. It gets
    /// the preset's password variable too.
    Command(String),
    /// A new file (an existing one is never overwritten).
    File(PathBuf),
}

/// What a restore did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Restored {
    pub bytes: u64,
    pub duration_ms: u64,
    /// The restore command or file, as shown to the user.
    pub into: String,
}

enum Consumer {
    Proc(Producer),
    File(tokio::fs::File, PathBuf),
}

/// `restic dump SNAPSHOT /FILENAME` piped into the restore command (or a
/// file). `snapshot` may be `latest` (the newest snapshot of this dump).
/// A failure of either side is an error carrying that side's stderr; the
/// consumer is stopped before its stdin closes when restic fails, and a
/// partial file is removed.
pub async fn restore_dump(
    restic: &Restic,
    repo: &Repository,
    snapshot: &str,
    dump: &Dump,
    to: &RestoreTo,
    timeout: Duration,
    shutdown: &Shutdown,
) -> Result<Restored, Failure> {
    let started = Instant::now();
    let job = Job {
        repo,
        snapshot,
        dump,
        shutdown,
        deadline: tokio::time::Instant::from_std(crate::config::checks::after(
            Instant::now(),
            timeout,
        )),
    };
    let tag = dump.tag();
    let path = format!("/{}", dump.filename);
    let call = restore::DumpFile {
        snapshot,
        path: &path,
        tag: (snapshot == "latest").then_some(tag.as_str()),
        no_lock: false,
        timeout: None,
    }
    .call(restic, repo);

    let (mut consumer, into) = open_consumer(to, dump).await?;
    let mut source = match call.spec.spawn() {
        Ok(p) => {
            widen_pipe(p.stdout_pipe());
            p
        }
        Err(e) => {
            if let Consumer::Proc(mut p) = consumer {
                p.stop().await;
            }
            return Err(e.into());
        }
    };

    let mut bytes: u64 = 0;
    let pumped = job.pump(&mut source, &mut consumer, &mut bytes).await;
    let restic_ended = job.end_source(&mut source, &pumped).await;
    let restic_out = source.output(restic_ended).await;
    let consumer_gone = matches!(pumped, Ok(Ok(false)));
    let restic_failure = (!consumer_gone && !restic_ended.success())
        .then(|| job.restic_failure(restic_ended, &restic_out));

    match consumer {
        Consumer::File(f, path) => close_file(f, &path, restic_failure, consumer_gone).await?,
        Consumer::Proc(p) => {
            job.finish_consumer(p, restic_failure, consumer_gone, &into, bytes)
                .await?;
        }
    }
    Ok(Restored {
        bytes,
        duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        into,
    })
}

/// Opens where the dump goes: the new file, or the started restore
/// command; and how it is shown to the user.
async fn open_consumer(to: &RestoreTo, dump: &Dump) -> Result<(Consumer, String), Failure> {
    Ok(match to {
        RestoreTo::File(path) => {
            let f = tokio::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(path)
                .await
                .map_err(|e| {
                    Failure::new(
                        if e.kind() == std::io::ErrorKind::AlreadyExists {
                            ErrorClass::Config
                        } else {
                            ErrorClass::PermissionDenied
                        },
                        format!(
                            "cannot create `{}`: {e}; choose a new file (an existing one is never overwritten)",
                            path.display()
                        ),
                    )
                })?;
            (
                Consumer::File(f, path.clone()),
                format!("file `{}`", path.display()),
            )
        }
        RestoreTo::Command(c) => {
            let cmd = with_password(DumpCommand::shell(c), dump)?;
            let p = Producer::start(&cmd, None, true).await?;
            (Consumer::Proc(p), format!("`{c}`"))
        }
        RestoreTo::Preset => {
            let cmd = restore_command(dump)?;
            let p = Producer::start(&cmd, dump.container.as_deref(), true).await?;
            let d = p.describe(&cmd);
            (Consumer::Proc(p), d)
        }
    })
}

/// Syncs and closes the restored file; removes it when restic failed
/// (`restic_failure`, the error returned then), the copy stopped early
/// (`gone`) or the sync failed.
async fn close_file(
    f: tokio::fs::File,
    path: &Path,
    restic_failure: Option<Failure>,
    gone: bool,
) -> Result<(), Failure> {
    let synced = f.sync_all().await;
    drop(f);
    if restic_failure.is_some() || gone || synced.is_err() {
        let _ = tokio::fs::remove_file(path).await;
        return Err(restic_failure.unwrap_or_else(|| {
            Failure::new(
                ErrorClass::NoSpace,
                format!(
                    "writing `{}` failed; the partial file was removed (disk full?)",
                    path.display()
                ),
            )
        }));
    }
    Ok(())
}

/// What the steps of one [`restore_dump`] share.
struct Job<'a> {
    repo: &'a Repository,
    snapshot: &'a str,
    dump: &'a Dump,
    shutdown: &'a Shutdown,
    /// When the whole restore must have finished.
    deadline: tokio::time::Instant,
}

impl Job<'_> {
    /// Copies restic's output into the consumer, counting the bytes in
    /// `bytes`. Ok(true): restic's output ended; Ok(false): the consumer
    /// stopped reading; Err: reading restic's output failed.
    async fn pump(
        &self,
        source: &mut Child,
        consumer: &mut Consumer,
        bytes: &mut u64,
    ) -> Result<std::io::Result<bool>, Ended> {
        let mut buf = vec![0u8; CHUNK];
        process::bounded(
            async {
                loop {
                    let n = source.read(&mut buf).await?;
                    if n == 0 {
                        return Ok::<bool, std::io::Error>(true);
                    }
                    *bytes += n as u64;
                    let ok = match &mut *consumer {
                        Consumer::Proc(p) => p.write(&buf[..n]).await.is_ok(),
                        Consumer::File(f, _) => f.write_all(&buf[..n]).await.is_ok(),
                    };
                    if !ok {
                        return Ok(false);
                    }
                }
            },
            Some(self.deadline),
            self.shutdown,
        )
        .await
    }

    /// Waits for (or stops) restic once the pump ended: how it ended.
    async fn end_source(
        &self,
        source: &mut Child,
        pumped: &Result<std::io::Result<bool>, Ended>,
    ) -> Ended {
        match pumped {
            Ok(Ok(true)) => {
                match process::bounded(
                    source.wait(&Shutdown::never()),
                    Some(self.deadline),
                    self.shutdown,
                )
                .await
                {
                    Ok(e) => e,
                    Err(why) => {
                        source.stop().await;
                        why
                    }
                }
            }
            Err(why) => {
                source.stop().await;
                *why
            }
            Ok(_) => {
                source.stop().await;
                Ended::Interrupted(2)
            }
        }
    }

    /// The error of a `restic dump` that ended `ended` with `out`.
    fn restic_failure(&self, ended: Ended, out: &Output) -> Failure {
        let (dump, repo, snapshot) = (self.dump, self.repo, self.snapshot);
        let mut e = match ended {
            Ended::TimedOut => Failure::new(
                ErrorClass::Timeout,
                format!("restoring dump `{}` ran out of time", dump.name),
            ),
            Ended::Interrupted(s) => Failure::new(
                ErrorClass::Interrupted,
                format!(
                    "restoring dump `{}` was interrupted (signal {s})",
                    dump.name
                ),
            ),
            _ => match ops::failure(out, repo) {
                Some(op)
                    if out.stderr.contains("cannot dump file")
                        || out.stderr.contains("not found") =>
                {
                    Failure::new(
                        op.class,
                        format!(
                            "`/{}` is not in snapshot `{snapshot}` of `{}`: {}",
                            dump.filename,
                            repo.display,
                            last_line(&out.stderr)
                        ),
                    )
                }
                Some(op) => Failure::new(op.class, format!("`restic dump` failed: {}", op.message)),
                None => Failure::new(ErrorClass::Other, "`restic dump` failed"),
            },
        };
        e.stderr = tail(&out.stderr, STDERR_TAIL);
        e
    }

    /// Ends the restore command: stopped before it sees the end of its
    /// input when restic failed (`restic_failure`, then returned), else
    /// its input closed and its exit awaited. `gone`: it stopped reading
    /// after `bytes`; `into` is how it is shown to the user.
    async fn finish_consumer(
        &self,
        mut p: Producer,
        restic_failure: Option<Failure>,
        gone: bool,
        into: &str,
        bytes: u64,
    ) -> Result<(), Failure> {
        let dump = self.dump;
        if let Some(e) = restic_failure {
            // Stop the restore before it sees the end of its input: a
            // truncated dump must not look complete to it either.
            p.stop().await;
            let _ = p.finish(Ended::Interrupted(15)).await;
            return Err(e);
        }
        p.close_input().await;
        let ended = match process::bounded(p.wait(), Some(self.deadline), self.shutdown).await {
            Ok(e) => e,
            Err(why) => {
                p.stop().await;
                why
            }
        };
        let stderr = p.finish(ended).await;
        if !ended.success() {
            let last = last_line(&stderr);
            return Err(Failure {
                class: if matches!(ended, Ended::Interrupted(_)) {
                    ErrorClass::Interrupted
                } else {
                    ErrorClass::DumpFailed
                },
                message: format!(
                    "restoring dump `{}` into {into} failed ({}){}",
                    dump.name,
                    ended.describe(),
                    if last.is_empty() {
                        String::new()
                    } else {
                        format!(": {last}")
                    }
                ),
                stderr,
                usage: false,
            });
        }
        if gone {
            return Err(Failure::new(
                ErrorClass::DumpFailed,
                format!(
                    "{into} stopped reading before the end of dump `{}` (exited 0 after {bytes} bytes)",
                    dump.name
                ),
            ));
        }
        Ok(())
    }
}
