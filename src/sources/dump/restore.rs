//! A stored dump back out: `restic dump` piped into a restore command or
//! written to a file.

use crate::config::dump::Dump;
use crate::model::Failure;
use crate::process::{self, Ended, Shutdown};
use crate::restic::ops;
use crate::restic::{ErrorClass, Repository, Restic, restore};
use std::path::PathBuf;
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
    let deadline =
        tokio::time::Instant::from_std(crate::config::checks::after(Instant::now(), timeout));
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

    let (mut consumer, into) = match to {
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
    };
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

    let mut buf = vec![0u8; CHUNK];
    let mut bytes: u64 = 0;
    // Ok(true): restic's output ended; Ok(false): the consumer stopped
    // reading; Err: reading restic's output failed.
    let pumped = process::bounded(
        async {
            loop {
                let n = source.read(&mut buf).await?;
                if n == 0 {
                    return Ok::<bool, std::io::Error>(true);
                }
                bytes += n as u64;
                let ok = match &mut consumer {
                    Consumer::Proc(p) => p.write(&buf[..n]).await.is_ok(),
                    Consumer::File(f, _) => f.write_all(&buf[..n]).await.is_ok(),
                };
                if !ok {
                    return Ok(false);
                }
            }
        },
        Some(deadline),
        shutdown,
    )
    .await;
    let restic_ended = match &pumped {
        Ok(Ok(true)) => {
            match process::bounded(source.wait(&Shutdown::never()), Some(deadline), shutdown).await
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
    };
    let restic_out = source.output(restic_ended).await;
    let consumer_gone = matches!(pumped, Ok(Ok(false)));
    let restic_failed = !consumer_gone && !restic_ended.success();

    let fail_restic = |ended: Ended| -> Failure {
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
            _ => match ops::failure(&restic_out, repo) {
                Some(op)
                    if restic_out.stderr.contains("cannot dump file")
                        || restic_out.stderr.contains("not found") =>
                {
                    Failure::new(
                        op.class,
                        format!(
                            "`/{}` is not in snapshot `{snapshot}` of `{}`: {}",
                            dump.filename,
                            repo.display,
                            last_line(&restic_out.stderr)
                        ),
                    )
                }
                Some(op) => Failure::new(op.class, format!("`restic dump` failed: {}", op.message)),
                None => Failure::new(ErrorClass::Other, "`restic dump` failed"),
            },
        };
        e.stderr = tail(&restic_out.stderr, STDERR_TAIL);
        e
    };

    match consumer {
        Consumer::File(f, path) => {
            let synced = f.sync_all().await;
            drop(f);
            if restic_failed || consumer_gone || synced.is_err() {
                let _ = tokio::fs::remove_file(&path).await;
                return Err(if restic_failed {
                    fail_restic(restic_ended)
                } else {
                    Failure::new(
                        ErrorClass::NoSpace,
                        format!(
                            "writing `{}` failed; the partial file was removed (disk full?)",
                            path.display()
                        ),
                    )
                });
            }
        }
        Consumer::Proc(mut p) => {
            if restic_failed {
                // Stop the restore before it sees the end of its input: a
                // truncated dump must not look complete to it either.
                p.stop().await;
                let _ = p.finish(Ended::Interrupted(15)).await;
                return Err(fail_restic(restic_ended));
            }
            p.close_input().await;
            let ended = match process::bounded(p.wait(), Some(deadline), shutdown).await {
                Ok(e) => e,
                Err(why) => {
                    p.stop().await;
                    why
                }
            };
            let stderr = p.finish(ended).await;
            if !ended.success() {
                let last = last_line(&stderr);
                let class = if matches!(ended, Ended::Interrupted(_)) {
                    ErrorClass::Interrupted
                } else {
                    ErrorClass::DumpFailed
                };
                let message = format!(
                    "restoring dump `{}` into {into} failed ({}){}",
                    dump.name,
                    ended.describe(),
                    if last.is_empty() {
                        String::new()
                    } else {
                        format!(": {last}")
                    }
                );
                return Err(Failure::new(class, message).with_stderr(stderr));
            }
            if consumer_gone {
                return Err(Failure::new(
                    ErrorClass::DumpFailed,
                    format!(
                        "{into} stopped reading before the end of dump `{}` (exited 0 after {bytes} bytes)",
                        dump.name
                    ),
                ));
            }
        }
    }
    Ok(Restored {
        bytes,
        duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        into,
    })
}
