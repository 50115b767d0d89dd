//! `restic restore` and `restic dump`: the calls that read data back out of
//! a repository, for the CLI's restore, the dashboard, Docker volumes,
//! dumps and the verify drill alike. The snapshot always comes after `--`,
//! so an id can never be read as an option.

use std::path::Path;
use std::time::Duration;

use super::ops::failure;
use super::{Repository, Restic, ResticCall};
use crate::model::Failure;
use crate::process::{self, Child, Out, Output, Shutdown, Stdin};

/// One `restic restore`.
#[derive(Debug, Clone, Copy)]
pub struct Restore<'a> {
    /// A snapshot id (or `latest`).
    pub snapshot: &'a str,
    /// The folder restic writes under (with each path's full original path).
    pub target: &'a Path,
    /// `--include` patterns as restic reads them (globs; see
    /// `restore::files::pattern`); empty: everything.
    pub includes: &'a [String],
    /// `--no-lock`: for reads that must not wait for (or block) a lock.
    pub no_lock: bool,
    /// `--verify`: restic reads every restored file back and checks it
    /// against its blob hashes.
    pub verify: bool,
    /// `None`: as long as it takes.
    pub timeout: Option<Duration>,
}

impl Restore<'_> {
    fn args(&self) -> Vec<std::ffi::OsString> {
        let mut args: Vec<std::ffi::OsString> = vec!["restore".into()];
        if self.no_lock {
            args.push("--no-lock".into());
        }
        if self.verify {
            args.push("--verify".into());
        }
        args.extend(["--target".into(), self.target.as_os_str().to_owned()]);
        for i in self.includes {
            args.extend(["--include".into(), i.into()]);
        }
        args.extend(["--".into(), self.snapshot.into()]);
        args
    }
}

/// `restic restore …`; restic's output when it succeeded.
pub async fn restore(
    restic: &Restic,
    repo: &Repository,
    what: &Restore<'_>,
    shutdown: &Shutdown,
) -> Result<Output, Failure> {
    let mut call = ResticCall::new(restic, repo, what.args());
    if let Some(t) = what.timeout {
        call = call.timeout(t);
    }
    let out = call.spec.run(shutdown, |_| {}, |_| {}).await?;
    failure(&out, repo).map_or(Ok(out), Err)
}

/// One `restic dump`: the bytes of `path` in `snapshot` on stdout.
#[derive(Debug, Clone, Copy)]
pub struct DumpFile<'a> {
    /// A snapshot id, or `latest` (narrowed by `tag`).
    pub snapshot: &'a str,
    pub path: &'a str,
    pub tag: Option<&'a str>,
    /// `--no-lock`: for reads that must not wait for (or block) a lock.
    pub no_lock: bool,
    /// `None`: as long as the reader reads.
    pub timeout: Option<Duration>,
}

impl DumpFile<'_> {
    fn args(&self) -> Vec<&str> {
        let mut args = vec!["dump"];
        if self.no_lock {
            args.push("--no-lock");
        }
        if let Some(t) = self.tag {
            args.extend(["--tag", t]);
        }
        args.extend(["--", self.snapshot, self.path]);
        args
    }

    /// The call, stdout raw (not captured as lines).
    pub fn call(&self, restic: &Restic, repo: &Repository) -> ResticCall {
        let mut call = ResticCall::new(restic, repo, self.args());
        if let Some(t) = self.timeout {
            call = call.timeout(t);
        }
        call.spec = call.spec.stdout(Out::Raw);
        call
    }

    /// Starts restic; its stdout is read through [`Child::read`] or
    /// [`Child::take_stdout`], and dropping the child stops it.
    pub fn spawn(&self, restic: &Restic, repo: &Repository) -> Result<Child, Failure> {
        Ok(self.call(restic, repo).spec.spawn()?)
    }

    /// The bytes handed to `on_chunk` as they come.
    pub async fn stream(
        &self,
        restic: &Restic,
        repo: &Repository,
        shutdown: &Shutdown,
        mut on_chunk: impl FnMut(&[u8]),
    ) -> Result<(), Failure> {
        let mut child = self.spawn(restic, repo)?;
        let mut buf = vec![0u8; 64 * 1024];
        let deadline = child.deadline();
        let read = process::bounded(
            async {
                while let Ok(n @ 1..) = child.read(&mut buf).await {
                    on_chunk(&buf[..n]);
                }
            },
            deadline,
            shutdown,
        )
        .await;
        let ended = match read {
            Ok(()) => child.wait(shutdown).await,
            Err(why) => child.stop_for(why).await,
        };
        let out = child.output(ended).await;
        failure(&out, repo).map_or(Ok(()), Err)
    }

    /// `restic dump … | consumer` through an OS pipe.
    pub async fn pipe(
        &self,
        restic: &Restic,
        repo: &Repository,
        consumer: &process::Spec,
        shutdown: &Shutdown,
    ) -> Result<DumpPipe, Failure> {
        let c = self.call(restic, repo);
        let (mut dump, mut consumer) =
            process::spawn_pipeline(&c.spec, &consumer.clone().stdin(Stdin::Piped))?;
        let (dump_ended, consumer_ended) =
            tokio::join!(dump.wait(shutdown), consumer.wait(shutdown));
        let (dump, consumer) =
            tokio::join!(dump.output(dump_ended), consumer.output(consumer_ended));
        Ok(DumpPipe {
            dump: failure(&dump, repo).map_or(Ok(()), Err),
            consumer,
        })
    }
}

/// How `restic dump … | consumer` ended.
#[derive(Debug)]
pub struct DumpPipe {
    /// restic's side.
    pub dump: Result<(), Failure>,
    /// The consumer's output (its stdout and stderr tails, how it ended).
    pub consumer: Output,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_snapshot_comes_after_the_options() {
        let inc = ["/srv/a".to_string()];
        let r = Restore {
            snapshot: "abc",
            target: Path::new("/t"),
            includes: &inc,
            no_lock: true,
            verify: true,
            timeout: None,
        };
        assert_eq!(
            r.args(),
            [
                "restore",
                "--no-lock",
                "--verify",
                "--target",
                "/t",
                "--include",
                "/srv/a",
                "--",
                "abc"
            ]
        );
        let d = DumpFile {
            snapshot: "latest",
            path: "/x.sql",
            tag: Some("dump:x"),
            no_lock: false,
            timeout: None,
        };
        assert_eq!(
            d.args(),
            ["dump", "--tag", "dump:x", "--", "latest", "/x.sql"]
        );
    }
}
