//! Every child process (restic, hooks, scripts) starts here.
//!
//! Each child gets its own process group, so a timeout or a signal reaches
//! everything it spawned (a hook's `sh -c` pipelines included), and a Ctrl-C
//! on the terminal reaches only us: we decide what the child gets. restic is
//! stopped with SIGINT, never SIGTERM: restic 0.14–0.16 has no SIGTERM
//! handler and would leave a stale lock in the repository.
//! Output is captured with a cap so a chatty child cannot exhaust memory.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::sync::watch;

/// How much of each stream is kept (the tail).
pub const CAPTURE_CAP: usize = 256 * 1024;

/// Broadcasts "stop now" (with the signal we received) to every running child.
#[derive(Clone)]
pub struct Shutdown {
    rx: watch::Receiver<Option<i32>>,
}

/// The sending side of [`Shutdown`].
pub struct ShutdownTrigger {
    tx: watch::Sender<Option<i32>>,
}

impl Shutdown {
    pub fn new() -> (ShutdownTrigger, Shutdown) {
        let (tx, rx) = watch::channel(None);
        (ShutdownTrigger { tx }, Shutdown { rx })
    }

    /// A shutdown that never fires.
    pub fn never() -> Shutdown {
        Self::new().1
    }

    /// The signal number received, if any.
    pub fn signal(&self) -> Option<i32> {
        *self.rx.borrow()
    }

    /// Resolves when a shutdown is requested.
    pub async fn wait(&mut self) {
        if self.rx.wait_for(Option::is_some).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

impl ShutdownTrigger {
    pub fn fire(&self, signal: i32) {
        self.tx.send_replace(Some(signal));
    }
}

/// Process groups of running children. Global because the only reader is
/// the "second signal: exit now" path, which has no other way to reach
/// children that live in their own process groups.
static RUNNING: std::sync::Mutex<std::collections::BTreeSet<u32>> =
    std::sync::Mutex::new(std::collections::BTreeSet::new());

/// Keeps a child's group in [`RUNNING`] while it runs.
struct Registered(u32);

impl Registered {
    fn new(pid: u32) -> Self {
        if let Ok(mut r) = RUNNING.lock() {
            r.insert(pid);
        }
        Registered(pid)
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        if let Ok(mut r) = RUNNING.lock() {
            r.remove(&self.0);
        }
    }
}

/// Kills every running child's process group at once (SIGKILL): the user
/// sent a second signal and wants out now.
pub fn kill_all_now() {
    if let Ok(r) = RUNNING.lock() {
        for pid in r.iter() {
            signal_group(Some(*pid), Signal::SIGKILL);
        }
    }
}

/// What to run and how.
#[derive(Debug, Clone)]
pub struct Spec {
    pub program: OsString,
    pub args: Vec<OsString>,
    /// Added to (or replacing in) the inherited environment. May hold
    /// secrets: never logged.
    pub env: Vec<(String, String)>,
    /// Removed from the inherited environment.
    pub env_remove: Vec<String>,
    pub cwd: Option<PathBuf>,
    pub timeout: Option<Duration>,
    /// The signal that asks the child to stop (SIGINT for restic, SIGTERM
    /// for hooks); SIGKILL follows after `grace`.
    pub stop_signal: Signal,
    pub grace: Duration,
    /// Written to the child's stdin, which is then closed (`crontab -`).
    /// `None`: stdin is `/dev/null`.
    pub stdin: Option<Vec<u8>>,
}

impl Spec {
    pub fn new(program: impl Into<OsString>) -> Self {
        Self {
            program: program.into(),
            args: Vec::new(),
            env: Vec::new(),
            env_remove: Vec::new(),
            cwd: None,
            timeout: None,
            stop_signal: Signal::SIGTERM,
            grace: Duration::from_secs(5),
            stdin: None,
        }
    }

    /// Feeds `data` to the child's stdin.
    pub fn stdin(mut self, data: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(data.into());
        self
    }

    pub fn arg(mut self, a: impl Into<OsString>) -> Self {
        self.args.push(a.into());
        self
    }

    pub fn args<I, S>(mut self, it: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args.extend(it.into_iter().map(Into::into));
        self
    }

    pub fn env(mut self, k: impl Into<String>, v: impl Into<String>) -> Self {
        self.env.push((k.into(), v.into()));
        self
    }

    /// The command line for logs: program and arguments (never the env).
    pub fn display(&self) -> String {
        std::iter::once(&self.program)
            .chain(&self.args)
            .map(|a| {
                let s = a.to_string_lossy();
                if s.is_empty() || s.contains(|c: char| c.is_whitespace() || "'\"$".contains(c)) {
                    format!("'{}'", s.replace('\'', "'\\''"))
                } else {
                    s.into_owned()
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// How a child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// Exited with this code.
    Exited(i32),
    /// Killed by this signal (not by us).
    Signaled(i32),
    /// We stopped it because its time ran out.
    TimedOut,
    /// We stopped it because we received this signal.
    Interrupted(i32),
}

impl Ended {
    pub fn success(self) -> bool {
        self == Ended::Exited(0)
    }

    pub fn describe(self) -> String {
        match self {
            Ended::Exited(c) => format!("exit code {c}"),
            Ended::Signaled(s) => format!("killed by signal {s}"),
            Ended::TimedOut => "timed out".to_string(),
            Ended::Interrupted(_) => "interrupted".to_string(),
        }
    }
}

/// The result of a finished child.
#[derive(Debug, Clone)]
pub struct Output {
    pub ended: Ended,
    /// Tail of stdout (at most [`CAPTURE_CAP`] bytes).
    pub stdout: String,
    /// Tail of stderr (at most [`CAPTURE_CAP`] bytes).
    pub stderr: String,
    pub duration: Duration,
}

/// Failure to start a child at all.
#[derive(Debug, thiserror::Error)]
#[error("cannot start `{program}`: {source}")]
pub struct SpawnError {
    pub program: String,
    #[source]
    pub source: std::io::Error,
}

fn push_capped(buf: &mut String, line: &str) {
    buf.push_str(line);
    buf.push('\n');
    if buf.len() > CAPTURE_CAP {
        let mut cut = buf.len() - CAPTURE_CAP;
        while !buf.is_char_boundary(cut) {
            cut += 1;
        }
        buf.drain(..cut);
    }
}

async fn pump<R: AsyncRead + Unpin>(
    reader: R,
    mut on_line: impl FnMut(&str),
    keep: bool,
) -> String {
    let mut lines = BufReader::new(reader).lines();
    let mut buf = String::new();
    loop {
        match lines.next_line().await {
            Ok(Some(line)) => {
                on_line(&line);
                if keep {
                    push_capped(&mut buf, &line);
                }
            }
            Ok(None) => break,
            // Non-UTF-8 output: keep what we have and stop reading lines;
            // the child still runs to completion.
            Err(_) => break,
        }
    }
    buf
}

fn signal_group(pid: Option<u32>, sig: Signal) {
    if let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()) {
        // The group may already be gone; nothing to do then.
        let _ = killpg(Pid::from_raw(pid), sig);
    }
}

/// Runs a child to completion. `on_stdout` sees each stdout line as it
/// arrives (restic's JSON progress); `on_stderr` each stderr line.
pub async fn run(
    spec: &Spec,
    shutdown: &Shutdown,
    on_stdout: impl FnMut(&str),
    on_stderr: impl FnMut(&str),
) -> Result<Output, SpawnError> {
    let start = Instant::now();
    let mut cmd = command_for(spec);
    cmd.stdin(if spec.stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(spawn_err(spec))?;
    let pid = child.id();
    let _registered = pid.map(Registered::new);
    if let (Some(mut w), Some(data)) = (child.stdin.take(), spec.stdin.clone()) {
        // Written concurrently with the output pumps so a child that answers
        // before reading all its input cannot deadlock us; a child that
        // stops reading early only cuts the write short.
        tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            let _ = w.write_all(&data).await;
            let _ = w.shutdown().await;
        });
    }
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let out_task = async move {
        match stdout {
            Some(s) => pump(s, on_stdout, true).await,
            None => String::new(),
        }
    };
    let err_task = async move {
        match stderr {
            Some(s) => pump(s, on_stderr, true).await,
            None => String::new(),
        }
    };

    let mut shutdown = shutdown.clone();
    let waiter = async {
        let deadline = spec.timeout.map(|t| tokio::time::Instant::now() + t);
        let timer = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending::<()>().await,
            }
        };
        let (sig, stopped) = tokio::select! {
            st = child.wait() => return (st, None),
            () = timer => (spec.stop_signal, Ended::TimedOut),
            () = shutdown.wait() => (Signal::SIGINT, Ended::Interrupted(shutdown.signal().unwrap_or(2))),
        };
        // Stop requested: ask, give the child its grace period, then kill.
        signal_group(pid, sig);
        let status = match tokio::time::timeout(spec.grace, child.wait()).await {
            Ok(st) => st,
            Err(_) => {
                signal_group(pid, Signal::SIGKILL);
                child.wait().await
            }
        };
        (status, Some(stopped))
    };
    let pumps = async { tokio::join!(out_task, err_task) };
    tokio::pin!(waiter);
    tokio::pin!(pumps);
    let mut streams = None;
    let (status, stopped) = loop {
        tokio::select! {
            w = &mut waiter => break w,
            p = &mut pumps, if streams.is_none() => streams = Some(p),
        }
    };
    // A background process left in the child's group may hold the pipes
    // open; it gets a moment, then goes with the group.
    let (stdout, stderr) = match streams {
        Some(s) => s,
        None => match tokio::time::timeout(Duration::from_secs(2), &mut pumps).await {
            Ok(s) => s,
            Err(_) => {
                signal_group(pid, Signal::SIGKILL);
                pumps.await
            }
        },
    };
    let ended = match (stopped, status) {
        (Some(s), _) => s,
        (None, Ok(st)) => {
            use std::os::unix::process::ExitStatusExt;
            match (st.code(), st.signal()) {
                (Some(c), _) => Ended::Exited(c),
                (None, Some(s)) => Ended::Signaled(s),
                (None, None) => Ended::Exited(-1),
            }
        }
        (None, Err(_)) => Ended::Exited(-1),
    };
    Ok(Output {
        ended,
        stdout,
        stderr,
        duration: start.elapsed(),
    })
}

// --- Raw byte streams (verify: `restic dump` hashed, or piped into a
// command). `run` reads lines; a dump is binary and may be gigabytes, so
// these read chunks and never keep more than the capped tail.

/// Reads `reader` to its end in chunks, giving each to `on_chunk`.
async fn pump_raw<R: AsyncRead + Unpin>(mut reader: R, mut on_chunk: impl FnMut(&[u8])) {
    use tokio::io::AsyncReadExt;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match reader.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => on_chunk(&buf[..n]),
        }
    }
}

/// Reads `reader` to its end and keeps the (lossily decoded) capped tail;
/// unlike line reading, binary output never makes it stop early and block
/// the child.
async fn pump_tail<R: AsyncRead + Unpin>(reader: Option<R>) -> String {
    let Some(reader) = reader else {
        return String::new();
    };
    let mut tail: Vec<u8> = Vec::new();
    pump_raw(reader, |c| {
        tail.extend_from_slice(c);
        if tail.len() > CAPTURE_CAP {
            let cut = tail.len() - CAPTURE_CAP;
            tail.drain(..cut);
        }
    })
    .await;
    String::from_utf8_lossy(&tail).into_owned()
}

/// A command for `spec` in its own process group, with its environment
/// and working folder; the caller sets up the pipes.
fn command_for(spec: &Spec) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(&spec.program);
    cmd.args(&spec.args).process_group(0);
    for k in &spec.env_remove {
        cmd.env_remove(k);
    }
    for (k, v) in &spec.env {
        cmd.env(k, v);
    }
    if let Some(d) = &spec.cwd {
        cmd.current_dir(d);
    }
    cmd
}

/// Waits for `child` under `spec`'s timeout and `shutdown`, stopping its
/// process group the same way [`run`] does.
async fn supervise(spec: &Spec, child: &mut tokio::process::Child, shutdown: &Shutdown) -> Ended {
    let pid = child.id();
    let mut shutdown = shutdown.clone();
    let timer = async {
        match spec.timeout {
            Some(t) => tokio::time::sleep(t).await,
            None => std::future::pending::<()>().await,
        }
    };
    let (sig, stopped) = tokio::select! {
        st = child.wait() => {
            use std::os::unix::process::ExitStatusExt;
            return match st {
                Ok(st) => match (st.code(), st.signal()) {
                    (Some(c), _) => Ended::Exited(c),
                    (None, Some(s)) => Ended::Signaled(s),
                    (None, None) => Ended::Exited(-1),
                },
                Err(_) => Ended::Exited(-1),
            };
        }
        () = timer => (spec.stop_signal, Ended::TimedOut),
        () = shutdown.wait() => (Signal::SIGINT, Ended::Interrupted(shutdown.signal().unwrap_or(2))),
    };
    signal_group(pid, sig);
    if tokio::time::timeout(spec.grace, child.wait())
        .await
        .is_err()
    {
        signal_group(pid, Signal::SIGKILL);
        let _ = child.wait().await;
    }
    stopped
}

fn spawn_err(spec: &Spec) -> impl FnOnce(std::io::Error) -> SpawnError + '_ {
    |source| SpawnError {
        program: spec.program.to_string_lossy().into_owned(),
        source,
    }
}

/// Runs a child whose stdout is raw bytes, handing each chunk to
/// `on_chunk` as it arrives (e.g. hashing `restic dump` without storing
/// it). The returned `stdout` is empty.
pub async fn run_stream(
    spec: &Spec,
    shutdown: &Shutdown,
    on_chunk: impl FnMut(&[u8]),
) -> Result<Output, SpawnError> {
    let start = Instant::now();
    let mut cmd = command_for(spec);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(spawn_err(spec))?;
    let _registered = child.id().map(Registered::new);
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let read = async move {
        if let Some(s) = stdout {
            pump_raw(s, on_chunk).await;
        }
    };
    let (ended, (), stderr) = tokio::join!(
        supervise(spec, &mut child, shutdown),
        read,
        pump_tail(stderr)
    );
    Ok(Output {
        ended,
        stdout: String::new(),
        stderr,
        duration: start.elapsed(),
    })
}

/// Runs `producer | consumer` through an OS pipe (nothing passes through
/// us, so any size streams at the speed of the slower side). Each has its
/// own process group, timeout and stop signal; both are waited for, and
/// both results are returned so the caller can tell which side failed.
pub async fn run_pipe(
    producer: &Spec,
    consumer: &Spec,
    shutdown: &Shutdown,
) -> Result<(Output, Output), SpawnError> {
    let start = Instant::now();
    let (reader, writer) = std::io::pipe().map_err(spawn_err(producer))?;
    let mut pcmd = command_for(producer);
    pcmd.stdin(Stdio::null())
        .stdout(Stdio::from(writer))
        .stderr(Stdio::piped());
    let mut ccmd = command_for(consumer);
    ccmd.stdin(Stdio::from(reader))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut cchild = ccmd.spawn().map_err(spawn_err(consumer))?;
    // Our copy of the read end must close, or the producer never sees the
    // consumer go away.
    drop(ccmd);
    let _creg = cchild.id().map(Registered::new);
    let mut pchild = match pcmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            signal_group(cchild.id(), Signal::SIGKILL);
            let _ = cchild.wait().await;
            return Err(spawn_err(producer)(e));
        }
    };
    // Likewise our copy of the write end, or the consumer never sees EOF.
    drop(pcmd);
    let _preg = pchild.id().map(Registered::new);
    let (p_err, c_out, c_err) = (
        pchild.stderr.take(),
        cchild.stdout.take(),
        cchild.stderr.take(),
    );
    let (p_end, c_end, p_err, c_out, c_err) = tokio::join!(
        supervise(producer, &mut pchild, shutdown),
        supervise(consumer, &mut cchild, shutdown),
        pump_tail(p_err),
        pump_tail(c_out),
        pump_tail(c_err),
    );
    let duration = start.elapsed();
    Ok((
        Output {
            ended: p_end,
            stdout: String::new(),
            stderr: p_err,
            duration,
        },
        Output {
            ended: c_end,
            stdout: c_out,
            stderr: c_err,
            duration,
        },
    ))
}

/// A child whose stdout is handed over as a stream instead of captured (a
/// `restic dump` sent to a web client without holding the file in memory).
/// Stopping early is safe: dropping it before [`Streaming::finish`] sends
/// the stop signal to the child's group (SIGINT for restic, so it removes
/// its lock) and SIGKILL after the grace period.
pub struct Streaming {
    pub stdout: tokio::process::ChildStdout,
    child: Option<tokio::process::Child>,
    stderr: Option<tokio::task::JoinHandle<String>>,
    registered: Option<Registered>,
    pid: Option<u32>,
    stop_signal: Signal,
    grace: Duration,
}

/// Starts `spec` with its stdout as a stream (stdin is `/dev/null`; stderr
/// is captured with the usual cap). The spec's timeout is not applied: the
/// reader decides how long to read.
pub fn spawn_streaming(spec: &Spec) -> Result<Streaming, SpawnError> {
    let mut cmd = command_for(spec);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(spawn_err(spec))?;
    let pid = child.id();
    let stderr = child
        .stderr
        .take()
        .map(|s| tokio::spawn(pump(s, |_| {}, true)));
    let Some(stdout) = child.stdout.take() else {
        return Err(SpawnError {
            program: spec.program.to_string_lossy().into_owned(),
            source: std::io::Error::other("no stdout pipe"),
        });
    };
    Ok(Streaming {
        stdout,
        child: Some(child),
        stderr,
        registered: pid.map(Registered::new),
        pid,
        stop_signal: spec.stop_signal,
        grace: spec.grace,
    })
}

impl Streaming {
    /// Waits for the child after its stdout was read to the end.
    pub async fn finish(mut self) -> (Ended, String) {
        let status = match self.child.take() {
            Some(mut c) => c.wait().await,
            None => Err(std::io::Error::other("already finished")),
        };
        let stderr = match self.stderr.take() {
            Some(t) => t.await.unwrap_or_default(),
            None => String::new(),
        };
        self.registered.take();
        let ended = match status {
            Ok(st) => {
                use std::os::unix::process::ExitStatusExt;
                match (st.code(), st.signal()) {
                    (Some(c), _) => Ended::Exited(c),
                    (None, Some(s)) => Ended::Signaled(s),
                    (None, None) => Ended::Exited(-1),
                }
            }
            Err(_) => Ended::Exited(-1),
        };
        (ended, stderr)
    }
}

impl Drop for Streaming {
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        signal_group(self.pid, self.stop_signal);
        let (pid, grace, registered) = (self.pid, self.grace, self.registered.take());
        // Reap the child in the background; without a runtime (never the
        // case in practice) the group is killed at once.
        match tokio::runtime::Handle::try_current() {
            Ok(h) => {
                h.spawn(async move {
                    if tokio::time::timeout(grace, child.wait()).await.is_err() {
                        signal_group(pid, Signal::SIGKILL);
                        let _ = child.wait().await;
                    }
                    drop(registered);
                });
            }
            Err(_) => signal_group(pid, Signal::SIGKILL),
        }
    }
}

/// A child whose stdin or stdout the caller streams itself: a dump's
/// stdout pumped into restic's stdin. Same rules as [`run`]: own process
/// group, registered for "kill everything now", stderr (and stdout when not
/// streamed) captured with a cap. Timeouts and shutdown are the caller's:
/// the order in which a dump and its restic stop is what makes a failed
/// dump leave no snapshot.
pub struct Piped {
    child: tokio::process::Child,
    pid: Option<u32>,
    _registered: Option<Registered>,
    started: Instant,
    grace: Duration,
    /// The child's stdin, when asked for; dropping it closes it.
    pub stdin: Option<tokio::process::ChildStdin>,
    /// The child's raw stdout, when asked for.
    pub stdout: Option<tokio::process::ChildStdout>,
    out_task: Option<tokio::task::JoinHandle<String>>,
    err_task: Option<tokio::task::JoinHandle<String>>,
}

/// Starts `spec` with a piped stdin (`stdin`) and/or a raw stdout
/// (`raw_stdout`; otherwise stdout lines are captured). `spec.stdin` and
/// `spec.timeout` are ignored.
pub fn spawn_piped(spec: &Spec, stdin: bool, raw_stdout: bool) -> Result<Piped, SpawnError> {
    let mut cmd = command_for(spec);
    cmd.stdin(if stdin { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(spawn_err(spec))?;
    let pid = child.id();
    let registered = pid.map(Registered::new);
    let mut stdout = child.stdout.take();
    let out_task = if raw_stdout {
        None
    } else {
        stdout
            .take()
            .map(|s| tokio::spawn(async move { pump(s, |_| {}, true).await }))
    };
    let err_task = child
        .stderr
        .take()
        .map(|s| tokio::spawn(async move { pump(s, |_| {}, true).await }));
    Ok(Piped {
        stdin: child.stdin.take(),
        stdout,
        child,
        pid,
        _registered: registered,
        started: Instant::now(),
        grace: spec.grace,
        out_task,
        err_task,
    })
}

impl Piped {
    /// Sends `sig` to the child's process group.
    pub fn signal(&self, sig: Signal) {
        signal_group(self.pid, sig);
    }

    /// Waits for the child to exit on its own.
    pub async fn wait(&mut self) -> Ended {
        ended_of(self.child.wait().await)
    }

    /// Sends `sig`, waits the grace period, then kills the group.
    pub async fn stop(&mut self, sig: Signal) -> Ended {
        self.signal(sig);
        match tokio::time::timeout(self.grace, self.child.wait()).await {
            Ok(st) => ended_of(st),
            Err(_) => {
                self.signal(Signal::SIGKILL);
                ended_of(self.child.wait().await)
            }
        }
    }

    /// Collects the captured output after the child ended as `ended`.
    pub async fn output(mut self, ended: Ended) -> Output {
        self.stdin = None;
        self.stdout = None;
        let collect = |t: Option<tokio::task::JoinHandle<String>>| {
            let pid = self.pid;
            async move {
                let Some(mut t) = t else {
                    return String::new();
                };
                // A background process left in the group may hold the pipe.
                match tokio::time::timeout(Duration::from_secs(2), &mut t).await {
                    Ok(r) => r.unwrap_or_default(),
                    Err(_) => {
                        signal_group(pid, Signal::SIGKILL);
                        t.await.unwrap_or_default()
                    }
                }
            }
        };
        let (stdout, stderr) =
            tokio::join!(collect(self.out_task.take()), collect(self.err_task.take()));
        Output {
            ended,
            stdout,
            stderr,
            duration: self.started.elapsed(),
        }
    }
}

fn ended_of(status: std::io::Result<std::process::ExitStatus>) -> Ended {
    use std::os::unix::process::ExitStatusExt;
    match status {
        Ok(st) => match (st.code(), st.signal()) {
            (Some(c), _) => Ended::Exited(c),
            (None, Some(s)) => Ended::Signaled(s),
            (None, None) => Ended::Exited(-1),
        },
        Err(_) => Ended::Exited(-1),
    }
}
