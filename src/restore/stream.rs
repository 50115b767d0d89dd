//! A file of a snapshot (a streamed dump) piped out of `restic dump` into a
//! file or a command's stdin, with nothing staged on disk in between.
//!
//! `process::run` only captures output, so this module wires the two
//! children itself, with the same rules: each in its own process group,
//! secrets only in restic's environment, SIGINT to both on our shutdown.
//! Either side failing is a failure that shows that side's stderr; a file
//! left half-written is removed.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::RestoreError;
use crate::process::{Shutdown, Spec};
use crate::restic::error::{classify, last_line};
use crate::restic::output::Snapshot;
use crate::restic::{ErrorClass, Repository, Restic, ResticCall};

/// Where the stream goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sink {
    /// Written to this file (created; an existing one needs `overwrite`).
    File(PathBuf),
    /// Fed to `sh -c COMMAND` on its stdin.
    Command(String),
}

/// What was streamed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Streamed {
    pub bytes: u64,
}

/// How much of a child's stderr/stdout is kept for the error message.
const KEEP: usize = 64 * 1024;

fn command(spec: &Spec) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(&spec.program);
    cmd.args(&spec.args).process_group(0).kill_on_drop(true);
    for k in &spec.env_remove {
        cmd.env_remove(k);
    }
    for (k, v) in &spec.env {
        cmd.env(k, v);
    }
    cmd
}

fn signal(pid: Option<u32>, sig: Signal) {
    if let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()) {
        // Already gone is fine.
        let _ = killpg(Pid::from_raw(pid), sig);
    }
}

/// The tail of a stream, lossily decoded.
async fn tail<R: AsyncRead + Unpin>(r: Option<R>) -> String {
    let Some(mut r) = r else {
        return String::new();
    };
    let mut keep: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 8192];
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                keep.extend_from_slice(&buf[..n]);
                if keep.len() > KEEP {
                    keep.drain(..keep.len() - KEEP);
                }
            }
        }
    }
    String::from_utf8_lossy(&keep).into_owned()
}

/// Copies until the reader ends; a write error (the command stopped
/// reading) ends the copy too and is returned.
async fn pump<R, W>(mut r: R, mut w: W) -> (u64, Option<std::io::Error>)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0u64;
    loop {
        let n = match r.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) => return (total, Some(e)),
        };
        if let Err(e) = w.write_all(&buf[..n]).await {
            return (total, Some(e));
        }
        total += n as u64;
    }
    let err = w.flush().await.err();
    let err = err.or(w.shutdown().await.err());
    (total, err)
}

/// `sh -c CMD` failed or `restic dump` failed: which one, and its words.
fn exit_text(st: &std::io::Result<std::process::ExitStatus>) -> Option<String> {
    use std::os::unix::process::ExitStatusExt;
    match st {
        Ok(s) if s.success() => None,
        Ok(s) => Some(match (s.code(), s.signal()) {
            (Some(c), _) => format!("exit code {c}"),
            (None, Some(sig)) => format!("killed by signal {sig}"),
            _ => "failed".to_string(),
        }),
        Err(e) => Some(e.to_string()),
    }
}

/// Streams `path` (as stored in `snapshot`, e.g. `/db.dump`) into `sink`.
pub async fn dump_to(
    restic: &Restic,
    repo: &Repository,
    snapshot: &Snapshot,
    path: &str,
    sink: &Sink,
    overwrite: bool,
    shutdown: &Shutdown,
) -> Result<Streamed, RestoreError> {
    let call = ResticCall::new(restic, repo, ["dump", snapshot.id.as_str(), path]);
    let spawn_err = |what: &str, e: std::io::Error| {
        RestoreError::failed(ErrorClass::Other, format!("cannot start {what}: {e}"))
    };
    // The receiving side first, so a bad file fails before restic runs.
    let (mut consumer, file) = match sink {
        Sink::File(f) => {
            if f.exists() && !overwrite {
                return Err(RestoreError::usage(format!(
                    "`{}` already exists; pass `--overwrite` to replace it, or choose another `--to-file`",
                    f.display()
                )));
            }
            // restic writes into the file itself: no copy through us.
            let out = std::fs::File::create(f).map_err(|e| {
                RestoreError::failed(
                    if e.kind() == std::io::ErrorKind::PermissionDenied {
                        ErrorClass::PermissionDenied
                    } else {
                        ErrorClass::Other
                    },
                    format!("cannot create `{}`: {e}", f.display()),
                )
            })?;
            (None, Some(out))
        }
        Sink::Command(c) => {
            let mut cmd = command(&Spec::new("sh").arg("-c").arg(c));
            cmd.stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            let child = cmd
                .spawn()
                .map_err(|e| spawn_err(&format!("`sh -c {c}`"), e))?;
            (Some(child), None)
        }
    };
    let mut dump = command(&call.spec);
    dump.stdin(Stdio::null())
        .stdout(file.map_or_else(Stdio::piped, Stdio::from))
        .stderr(Stdio::piped());
    let mut dump = match dump.spawn() {
        Ok(d) => d,
        Err(e) => {
            if let Some(c) = consumer.as_mut() {
                signal(c.id(), Signal::SIGTERM);
            }
            remove_partial(sink);
            return Err(spawn_err("restic", e));
        }
    };
    let dump_pid = dump.id();
    let consumer_pid = consumer.as_ref().and_then(tokio::process::Child::id);
    let dump_out = dump.stdout.take();
    let dump_err = dump.stderr.take();
    let (c_in, c_out, c_err) = match consumer.as_mut() {
        Some(c) => (c.stdin.take(), c.stdout.take(), c.stderr.take()),
        None => (None, None, None),
    };
    let copy = async {
        let Some(r) = dump_out else {
            return (0, None);
        };
        match c_in {
            Some(w) => pump(r, w).await,
            None => (0, None),
        }
    };
    let work = async {
        let ((bytes, copy_err), d_err, c_out, c_err) =
            tokio::join!(copy, tail(dump_err), tail(c_out), tail(c_err));
        let d_status = dump.wait().await;
        let c_status = match consumer.as_mut() {
            Some(c) => Some(c.wait().await),
            None => None,
        };
        (bytes, copy_err, d_status, d_err, c_status, c_out, c_err)
    };
    let mut stop = shutdown.clone();
    tokio::pin!(work);
    let (bytes, copy_err, d_status, d_err, c_status, c_out, c_err) = tokio::select! {
        r = &mut work => r,
        () = stop.wait() => {
            signal(dump_pid, Signal::SIGINT);
            signal(consumer_pid, Signal::SIGINT);
            let _ = tokio::time::timeout(std::time::Duration::from_secs(30), &mut work).await;
            signal(dump_pid, Signal::SIGKILL);
            signal(consumer_pid, Signal::SIGKILL);
            remove_partial(sink);
            return Err(RestoreError::failed(
                ErrorClass::Interrupted,
                format!("interrupted while restoring `{path}` of snapshot `{}`", snapshot.short()),
            ));
        }
    };
    let consumer_failed = c_status.as_ref().and_then(exit_text);
    let dump_failed = exit_text(&d_status);
    let result = if let (Some(why), Sink::Command(c)) = (&consumer_failed, sink) {
        let said = if c_err.trim().is_empty() {
            c_out
        } else {
            c_err
        };
        let mut msg = format!("the restore command `{c}` failed ({why})");
        if said.trim().is_empty() {
            msg.push_str(" and printed nothing");
        } else {
            msg.push_str(&format!(":\n{}", said.trim_end()));
        }
        if let Some(d) = &dump_failed {
            msg.push_str(&format!(
                "\n(restic dump also stopped: {d}: {})",
                last_line(&d_err)
            ));
        }
        Err(RestoreError::failed(ErrorClass::Other, msg))
    } else if let Some(why) = dump_failed {
        let code = d_status
            .as_ref()
            .ok()
            .and_then(std::process::ExitStatus::code)
            .unwrap_or(1);
        let class = classify(code, &d_err);
        let detail = if d_err.contains("not found in snapshot") {
            format!(
                "`{path}` is not in snapshot `{}` (restic: {})",
                snapshot.short(),
                last_line(&d_err)
            )
        } else if class == ErrorClass::NoSpace {
            format!(
                "not enough disk space where the dump goes; free space there (restic: {})",
                last_line(&d_err)
            )
        } else if class == ErrorClass::Other {
            format!("{why}: {}", last_line(&d_err))
        } else {
            crate::restic::error::explain(class, &repo.display, &d_err)
        };
        Err(RestoreError::failed(
            class,
            format!(
                "`restic dump` of `{path}` from snapshot `{}` failed: {detail}",
                snapshot.short()
            ),
        ))
    } else if let Some(e) = copy_err {
        let class = if e.raw_os_error() == Some(nix::libc::ENOSPC) {
            ErrorClass::NoSpace
        } else {
            ErrorClass::Other
        };
        let to = match sink {
            Sink::File(f) => format!("`{}`", f.display()),
            Sink::Command(c) => format!("the restore command `{c}`"),
        };
        Err(RestoreError::failed(
            class,
            format!("writing the dump to {to} failed: {e}"),
        ))
    } else {
        let bytes = match sink {
            Sink::File(f) => std::fs::metadata(f).map_or(bytes, |m| m.len()),
            Sink::Command(_) => bytes,
        };
        Ok(Streamed { bytes })
    };
    if result.is_err() {
        remove_partial(sink);
    }
    result
}

fn remove_partial(sink: &Sink) {
    if let Sink::File(f) = sink {
        let _ = std::fs::remove_file(f);
    }
}

/// The file a dump snapshot holds: its only path (`/NAME` for
/// `--stdin-filename NAME`).
pub fn dump_path(snapshot: &Snapshot) -> Option<&str> {
    match snapshot.paths.as_slice() {
        [one] => Some(one.as_str()),
        _ => None,
    }
}

/// Whether `p` names a file we may create (its folder exists).
pub fn parent_exists(p: &Path) -> bool {
    p.parent()
        .is_none_or(|d| d.as_os_str().is_empty() || d.is_dir())
}
