//! A dump streamed once into `restic backup --stdin`, fanned out to one
//! restic per target, and stopped in the order that keeps a failed dump
//! out of every repository.

use crate::config::dump::{Dump, DumpSource};
use crate::model::Failure;
use crate::process::{self, Child, Ended, Output, Shutdown};
use crate::restic::ops;
use crate::restic::output::{self, BackupSummary};
use crate::restic::{ErrorClass, Repository, Restic};
use nix::sys::signal::Signal;
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;

use super::presets::{DumpCommand, dump_command, sqlite_dump_complete};
use super::producer::Producer;
use super::{CHUNK, last_line, widen_pipe};

/// One dump into several repositories.
pub struct BackupRequest<'a> {
    pub restic: &'a Restic,
    pub dump: &'a Dump,
    pub repos: &'a [&'a Repository],
    pub host: &'a str,
    /// The service's tags; `dump:NAME` is added.
    pub tags: &'a [String],
    /// The service's remaining time (a dump's `timeout_seconds` may be
    /// shorter).
    pub timeout: Duration,
}

/// What one target got.
#[derive(Debug, Clone)]
pub struct TargetResult {
    pub destination: String,
    pub repository: String,
    pub result: Result<BackupSummary, Failure>,
    pub duration: Duration,
    /// Snapshots of a failed dump the safety net forgot.
    pub discarded: Vec<String>,
}

/// The outcome of one dump.
#[derive(Debug, Clone)]
pub struct DumpRun {
    /// Bytes the dump produced.
    pub bytes: u64,
    pub duration: Duration,
    /// The dump itself failed (its targets then have no snapshot).
    pub failure: Option<Failure>,
    pub targets: Vec<TargetResult>,
    /// The command as shown in logs.
    pub command: String,
}

/// A restic that receives the dump.
struct Receiver<'a> {
    repo: &'a Repository,
    child: Option<Child>,
    broken: bool,
    result: Option<Result<BackupSummary, Failure>>,
    started: Instant,
    discarded: Vec<String>,
}

/// How long a stopped restic may take to exit before its stdin is closed.
/// restic 0.14 exits within milliseconds of the SIGINT.
const STDIN_CLOSE_DELAY: Duration = Duration::from_millis(500);

/// How long restic may take to clean up (remove its lock) once stopped.
const RECEIVER_GRACE: Duration = Duration::from_secs(30);

/// Stops a restic that reads a failed dump on its stdin, so that it saves
/// no snapshot, in seconds, on every version. The SIGINT comes first,
/// while the stdin is still open: restic 0.14 takes an end of input for a
/// finished dump and would save what arrived, but on SIGINT it exits at
/// once without saving. restic 0.17 and later cancel on the SIGINT but go
/// on waiting for the end of their input (until killed: +30 s), so the
/// stdin is closed when restic has not exited after [`STDIN_CLOSE_DELAY`];
/// a cancelled restic saves nothing then (seen with 0.18.0 and 0.19.1).
/// Should a snapshot appear anyway, `discard_since` forgets it.
/// `stdin` is restic's stdin when the caller holds it apart from `child`.
pub(crate) async fn stop_receiver(
    child: &mut Child,
    stdin: Option<tokio::process::ChildStdin>,
) -> Ended {
    let stdin = stdin.or_else(|| child.take_stdin());
    child.signal(Signal::SIGINT);
    if let Some(ended) = child.exit_within(STDIN_CLOSE_DELAY).await {
        return ended;
    }
    drop(stdin);
    child.kill_after(RECEIVER_GRACE).await
}

/// Writes `data` to every receiver that still reads, concurrently; a
/// receiver whose pipe broke (restic exited) is left out from then on.
async fn fan_out(data: &[u8], receivers: &mut [Receiver<'_>]) {
    let writes = receivers
        .iter_mut()
        .filter(|r| !r.broken)
        .map(|r| async move {
            let ok = match r.child.as_mut().and_then(Child::stdin) {
                Some(w) => w.write_all(data).await.is_ok(),
                None => false,
            };
            if !ok {
                r.broken = true;
            }
        });
    futures_util::future::join_all(writes).await;
}

enum Pumped {
    Eof,
    ReadFailed(std::io::Error),
    NoReceivers,
}

/// Runs the dump once and streams it into `restic backup --stdin` on every
/// repository. `log` receives progress lines for the run log.
pub async fn backup(
    req: &BackupRequest<'_>,
    shutdown: &Shutdown,
    log: &(dyn Fn(&str) + Sync),
) -> DumpRun {
    let dump = req.dump;
    let started = Instant::now();
    let limit = dump
        .timeout_seconds
        .map_or(req.timeout, |s| Duration::from_secs(s).min(req.timeout));
    let job = Job {
        req,
        shutdown,
        log,
        since: chrono::Utc::now(),
        limit,
        deadline: tokio::time::Instant::from_std(crate::config::checks::after(
            Instant::now(),
            limit,
        )),
    };
    let mut run = DumpRun {
        bytes: 0,
        duration: Duration::ZERO,
        failure: None,
        targets: Vec::new(),
        command: String::new(),
    };
    let cmd = match dump_command(dump) {
        Ok(c) => c,
        Err(e) => {
            run.failure = Some(e);
            return run;
        }
    };
    run.command = cmd.display();
    if let Some(why) = req.restic.version.stdin_filename_problem(&dump.filename) {
        run.failure = Some(Failure::new(
            ErrorClass::Other,
            format!("dump `{}` was not run: {why}", dump.name),
        ));
        return run;
    }

    let mut receivers = job.spawn_receivers();
    let failure = if receivers.iter().all(|r| r.broken) {
        // No restic started: do not run the dump at all.
        None
    } else {
        job.produce(&cmd, &mut receivers, &mut run.bytes).await
    };

    // Finish every restic: on success close its stdin and let it save the
    // snapshot; on failure stop it first, with its stdin still open.
    let finish = receivers
        .iter_mut()
        .map(|r| job.finish_receiver(r, failure.as_ref()));
    futures_util::future::join_all(finish).await;

    run.targets = receivers
        .into_iter()
        .map(|r| job.target_result(r))
        .collect();
    run.failure = failure;
    run.duration = started.elapsed();
    run
}

/// What the steps of one [`backup`] share.
struct Job<'r, 'a> {
    req: &'r BackupRequest<'a>,
    shutdown: &'r Shutdown,
    log: &'r (dyn Fn(&str) + Sync),
    /// When the dump started; its snapshots made since are forgotten when
    /// it fails.
    since: chrono::DateTime<chrono::Utc>,
    /// The dump's time limit.
    limit: Duration,
    /// When the dump and every restic must have finished.
    deadline: tokio::time::Instant,
}

impl<'a> Job<'_, 'a> {
    /// Starts `restic backup --stdin` on every repository; one that cannot
    /// start is a broken receiver holding its error.
    fn spawn_receivers(&self) -> Vec<Receiver<'a>> {
        let (req, dump) = (self.req, self.req.dump);
        let mut tags = req.tags.to_vec();
        tags.push(dump.tag());
        let mut receivers: Vec<Receiver<'a>> = Vec::new();
        for repo in req.repos {
            let call = ops::backup_stdin(req.restic, repo, req.host, &tags, &dump.filename);
            (self.log)(&format!(
                "dump `{}` → `{}`: {}",
                dump.name,
                repo.destination,
                call.display(repo)
            ));
            let mut r = Receiver {
                repo,
                child: None,
                broken: true,
                result: None,
                started: Instant::now(),
                discarded: Vec::new(),
            };
            // Bounded by the dump's deadline, as before.
            match call.spec.spawn() {
                Ok(mut c) => {
                    widen_pipe(c.stdin());
                    r.child = Some(c);
                    r.broken = false;
                }
                Err(e) => r.result = Some(Err(e.into())),
            }
            receivers.push(r);
        }
        receivers
    }

    /// Runs the dump and pumps its output into `receivers`, counting the
    /// bytes in `bytes`; the dump's failure, if it failed.
    async fn produce(
        &self,
        cmd: &DumpCommand,
        receivers: &mut [Receiver<'_>],
        bytes: &mut u64,
    ) -> Option<Failure> {
        let dump = self.req.dump;
        let mut producer = match Producer::start(cmd, dump.container.as_deref(), false).await {
            Err(e) => return Some(e),
            Ok(p) => p,
        };
        let what = producer.describe(cmd);
        (self.log)(&format!("dump `{}`: running {what}", dump.name));
        // The last bytes of the dump, for formats that say at the end
        // whether they are complete.
        let mut last: Vec<u8> = Vec::new();
        let pumped = self.pump(&mut producer, receivers, bytes, &mut last).await;
        let (ended, failure) = self.end_producer(&mut producer, pumped).await;
        let stderr = producer.finish(ended).await;
        for l in stderr.lines() {
            (self.log)(&format!("dump `{}` ! {l}", dump.name));
        }
        failure.or_else(|| self.verdict(ended, &last, stderr, &what))
    }

    /// Copies the dump's output to every receiver until it ends, every
    /// receiver is gone, the deadline passes or a signal arrives.
    async fn pump(
        &self,
        producer: &mut Producer,
        receivers: &mut [Receiver<'_>],
        bytes: &mut u64,
        last: &mut Vec<u8>,
    ) -> Result<Pumped, Ended> {
        let mut buf = vec![0u8; CHUNK];
        process::bounded(
            async {
                loop {
                    let n = match producer.read(&mut buf).await {
                        Ok(0) => return Pumped::Eof,
                        Ok(n) => n,
                        Err(e) => return Pumped::ReadFailed(e),
                    };
                    *bytes += n as u64;
                    last.extend_from_slice(&buf[n.saturating_sub(64)..n]);
                    if last.len() > 128 {
                        last.drain(..last.len() - 64);
                    }
                    fan_out(&buf[..n], receivers).await;
                    if receivers.iter().all(|r| r.broken) {
                        return Pumped::NoReceivers;
                    }
                }
            },
            Some(self.deadline),
            self.shutdown,
        )
        .await
    }

    /// Waits for (or stops) the dump once the pump ended: how it ended,
    /// and the failure when reading its output failed.
    async fn end_producer(
        &self,
        producer: &mut Producer,
        pumped: Result<Pumped, Ended>,
    ) -> (Ended, Option<Failure>) {
        match pumped {
            Ok(Pumped::Eof) => {
                let ended =
                    match process::bounded(producer.wait(), Some(self.deadline), self.shutdown)
                        .await
                    {
                        Ok(e) => e,
                        Err(why) => {
                            producer.stop().await;
                            why
                        }
                    };
                (ended, None)
            }
            Ok(Pumped::ReadFailed(e)) => {
                producer.stop().await;
                let failure = Failure::new(
                    ErrorClass::DumpFailed,
                    format!(
                        "dump `{}`: reading its output failed: {e}",
                        self.req.dump.name
                    ),
                );
                (Ended::Exited(-1), Some(failure))
            }
            Ok(Pumped::NoReceivers) => {
                // Every restic failed; their errors say why. The dump has
                // nowhere to go.
                producer.stop().await;
                (Ended::Exited(0), None)
            }
            Err(why) => {
                producer.stop().await;
                (why, None)
            }
        }
    }

    /// Whether a dump that ended `ended`, whose output ended with `last`,
    /// failed. `what` is the dump as shown to the user.
    fn verdict(&self, ended: Ended, last: &[u8], stderr: String, what: &str) -> Option<Failure> {
        let dump = self.req.dump;
        if ended.success()
            && matches!(dump.source, DumpSource::Sqlite { .. })
            && !sqlite_dump_complete(last)
        {
            return Some(Failure {
                class: ErrorClass::DumpFailed,
                message: format!(
                    "dump `{}` is incomplete: sqlite3 reported an error inside the dump (it ends with `{}`, not `COMMIT;`)",
                    dump.name,
                    last_line(&String::from_utf8_lossy(last))
                ),
                stderr,
                usage: false,
            });
        }
        if ended.success() {
            return None;
        }
        let (class, how) = match ended {
            Ended::TimedOut => (
                ErrorClass::DumpFailed,
                format!("ran out of time after {}s", self.limit.as_secs()),
            ),
            Ended::Interrupted(s) => (
                ErrorClass::Interrupted,
                format!("interrupted by signal {s}"),
            ),
            other => (
                ErrorClass::DumpFailed,
                format!("failed ({})", other.describe()),
            ),
        };
        let last = last_line(&stderr);
        Some(Failure {
            class,
            message: if last.is_empty() {
                format!("dump `{}` {how}: {what}", dump.name)
            } else {
                format!("dump `{}` {how}: {last}", dump.name)
            },
            stderr,
            usage: false,
        })
    }

    /// Lets one restic save its snapshot (the dump succeeded) or stops it
    /// (`failure`), records its result, and cleans up after a failure.
    async fn finish_receiver(&self, r: &mut Receiver<'_>, failure: Option<&Failure>) {
        let Some(mut child) = r.child.take() else {
            return;
        };
        let ok = failure.is_none();
        let ended = if ok && !r.broken {
            drop(child.take_stdin());
            match process::bounded(
                child.wait(&Shutdown::never()),
                Some(self.deadline),
                self.shutdown,
            )
            .await
            {
                Ok(e) => e,
                Err(why) => {
                    child.stop().await;
                    why
                }
            }
        } else if r.broken {
            child.wait(&Shutdown::never()).await
        } else {
            stop_receiver(&mut child, None).await;
            Ended::Interrupted(2)
        };
        let out = child.output(ended).await;
        let stopped_by_us = !ok && !r.broken;
        r.result = Some(if stopped_by_us {
            Err(Failure {
                class: failure.map_or(ErrorClass::DumpFailed, |f| f.class),
                message: format!(
                    "no snapshot: {}",
                    failure.map_or("the dump failed", |f| f.message.as_str())
                ),
                stderr: out.stderr,
                usage: false,
            })
        } else {
            self.saved(r.repo, &out).await
        });
        // The second safety net, and stale locks after a stop we caused.
        if !ok || !matches!(out.ended, Ended::Exited(_)) {
            let _ = ops::unlock_stale(self.req.restic, r.repo).await;
        }
        if !ok {
            self.discard(r).await;
        }
    }

    /// The snapshot a restic that was let finish saved, or its error.
    async fn saved(&self, repo: &Repository, out: &Output) -> Result<BackupSummary, Failure> {
        if let Some(e) = ops::checked_failure(out, repo).await {
            Err(e)
        } else if let Some(mut summary) = output::backup_summary(&out.stdout) {
            if let Some(id) = &summary.snapshot_id {
                summary.snapshot_id = Some(
                    ops::full_snapshot_id(self.req.restic, repo, id, &Shutdown::never()).await,
                );
            }
            Ok(summary)
        } else {
            Err(Failure {
                class: ErrorClass::Other,
                message: format!(
                    "restic finished on `{}` but printed no backup summary: {}",
                    repo.display,
                    last_line(&out.stderr)
                ),
                stderr: out.stderr.clone(),
                usage: false,
            })
        }
    }

    /// Forgets what the failed dump may have left in `r`'s repository.
    async fn discard(&self, r: &mut Receiver<'_>) {
        let req = self.req;
        match discard_since(req.restic, r.repo, &req.dump.tag(), req.host, self.since).await {
            Ok(ids) => r.discarded = ids,
            Err(e) => (self.log)(&format!(
                "dump `{}`: could not check `{}` for a stray snapshot: {}",
                req.dump.name, r.repo.destination, e.message
            )),
        }
    }

    /// What one receiver got, for the report.
    fn target_result(&self, r: Receiver<'_>) -> TargetResult {
        if !r.discarded.is_empty() {
            (self.log)(&format!(
                "dump `{}`: forgot snapshot(s) {} on `{}` made from the failed dump",
                self.req.dump.name,
                r.discarded.join(", "),
                r.repo.destination
            ));
        }
        TargetResult {
            destination: r.repo.destination.clone(),
            repository: r.repo.display.clone(),
            result: r.result.unwrap_or_else(|| {
                Err(Failure {
                    class: ErrorClass::Other,
                    message: "restic did not run".into(),
                    stderr: String::new(),
                    usage: false,
                })
            }),
            duration: r.started.elapsed(),
            discarded: r.discarded,
        }
    }
}

/// Forgets this host's snapshots tagged `tag` made at or after `since`:
/// what a failed dump may have left despite the SIGINT.
async fn discard_since(
    restic: &Restic,
    repo: &Repository,
    tag: &str,
    host: &str,
    since: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<String>, Failure> {
    let list = ops::snapshots(restic, repo, Some(tag), &Shutdown::never()).await?;
    let ids: Vec<String> = list
        .iter()
        .filter(|s| s.hostname == host)
        .filter(|s| {
            chrono::DateTime::parse_from_rfc3339(&s.time)
                .is_ok_and(|t| t.with_timezone(&chrono::Utc) >= since)
        })
        .map(|s| s.id.clone())
        .collect();
    if ids.is_empty() {
        return Ok(ids);
    }
    ops::forget_ids(
        restic,
        repo,
        &ids,
        false,
        Duration::from_secs(600),
        &Shutdown::never(),
    )
    .await?;
    Ok(ids.iter().map(|i| i.chars().take(8).collect()).collect())
}
