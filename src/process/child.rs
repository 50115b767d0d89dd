//! The one handle on a running child: [`Spec::spawn`] starts it with the
//! pipes its [`Spec`] asks for, [`Child::wait`] waits for it under its
//! timeout, stall limit and the shutdown signal, [`Child::stop`] stops it
//! the one way (signal the group, wait the grace period, SIGKILL), and
//! [`Child::output`] collects what it printed, giving its pipes at most
//! [`DRAIN`] after it ended. [`Spec::run`] does all of that for a child
//! whose lines the caller wants to see as they come.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader};
use tokio::process::{ChildStdin, ChildStdout};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::{
    DRAIN, Ended, LEFTOVER_GRACE, Output, Registered, Shutdown, SpawnError, Spec, StallMeter,
    command_for, push_capped, signal_group, spawn_err, spawn_registered, tree,
};

/// What the child reads on stdin.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Stdin {
    /// `/dev/null`.
    #[default]
    Null,
    /// These bytes, then the end of input (`crontab -`). They are written
    /// while the output is read, so a child that answers before reading all
    /// its input cannot deadlock us; one that stops reading early only cuts
    /// the write short.
    Data(Vec<u8>),
    /// A pipe the caller writes ([`Child::stdin`]); dropping it closes the
    /// child's input.
    Piped,
}

/// What becomes of the child's stdout. stderr is always read as lines.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Out {
    /// Read line by line: kept as a capped tail, shown to the stall meter
    /// and to [`Spec::run`]'s callback.
    #[default]
    Lines,
    /// Raw bytes for the caller ([`Child::read`]), never kept: a dump may
    /// be gigabytes and binary. Bytes tell the stall meter nothing about
    /// progress, so [`Spec::stall`] is not watched for such a child.
    Raw,
}

/// A running child. Stopping early is always safe: a child dropped before
/// it was waited for gets its stop signal (SIGINT for restic, so it
/// removes its lock) and SIGKILL after the grace period, in the background.
pub struct Child {
    child: tokio::process::Child,
    pid: Option<u32>,
    token: String,
    registered: Option<Registered>,
    started: Instant,
    deadline: Option<tokio::time::Instant>,
    stop_signal: Signal,
    grace: Duration,
    /// The stall limit, when it is watched (stdout read as lines).
    stall: Option<Duration>,
    meter: Arc<Mutex<StallMeter>>,
    stdin: Option<ChildStdin>,
    stdout: Option<ChildStdout>,
    out_task: Option<JoinHandle<String>>,
    err_task: Option<JoinHandle<String>>,
    /// Set once the child has exited: raw reads of its stdout end here.
    drain_until: Option<tokio::time::Instant>,
    /// Whether the child was waited for.
    reaped: bool,
    /// How it ended, once known.
    ended: Option<Ended>,
    /// The debug line's start ([`Spec::debug_note`]), when debug is on.
    debug: Option<String>,
}

/// Where [`Spec::run`] gets each line as it is read.
struct Forward {
    out: mpsc::Sender<String>,
    err: mpsc::Sender<String>,
}

impl Spec {
    /// Starts the child, with stdin and stdout as [`Spec::stdin`] and
    /// [`Spec::stdout`] say.
    pub fn spawn(&self) -> Result<Child, SpawnError> {
        start(self, None, None, None)
    }

    /// Runs the child to its end ([`Child::wait`], then
    /// [`Child::output`]). `on_stdout` sees each stdout line as it arrives
    /// (restic's JSON progress; nothing with [`Out::Raw`]), `on_stderr`
    /// each stderr line.
    pub async fn run(
        &self,
        shutdown: &Shutdown,
        mut on_stdout: impl FnMut(&str),
        mut on_stderr: impl FnMut(&str),
    ) -> Result<Output, SpawnError> {
        let (out, out_rx) = mpsc::channel(64);
        let (err, err_rx) = mpsc::channel(64);
        let mut child = start(self, None, None, Some(Forward { out, err }))?;
        let mut lines = Lines {
            out: Some(out_rx),
            err: Some(err_rx),
        };
        let mut feed = |(stdout, line): (bool, String)| {
            if stdout {
                on_stdout(&line);
            } else {
                on_stderr(&line);
            }
        };
        let ended = {
            let wait = child.wait(shutdown);
            tokio::pin!(wait);
            let mut open = true;
            loop {
                tokio::select! {
                    e = &mut wait => break e,
                    l = lines.next(), if open => match l {
                        Some(l) => feed(l),
                        None => open = false,
                    },
                }
            }
        };
        // Something the child left may hold its pipes open forever.
        {
            let drain = async {
                while let Some(l) = lines.next().await {
                    feed(l);
                }
            };
            tokio::pin!(drain);
            if tokio::time::timeout(DRAIN, &mut drain).await.is_err() {
                tree::kill_now(child.pid, &child.token);
                let _ = tokio::time::timeout(Duration::from_millis(500), &mut drain).await;
            }
        }
        // The readers must not wait for us any more: they only keep the tail.
        drop(lines);
        Ok(child.output(ended).await)
    }
}

/// Starts `producer | consumer` through an OS pipe: nothing passes through
/// us, so any size streams at the speed of the slower side. The producer's
/// stdout must be [`Out::Raw`] and the consumer's stdin [`Stdin::Piped`]
/// (the pipe is both); each keeps its own process group, timeout and stop
/// signal.
pub fn spawn_pipeline(producer: &Spec, consumer: &Spec) -> Result<(Child, Child), SpawnError> {
    if producer.stdout != Out::Raw || consumer.stdin != Stdin::Piped {
        return Err(spawn_err(producer)(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "a pipeline needs a raw stdout on its producer and a piped stdin on its consumer",
        )));
    }
    let (reader, writer) = std::io::pipe().map_err(spawn_err(producer))?;
    // `start` drops its command, and with it our copy of each end: the
    // producer must see the consumer go away, the consumer see the end.
    let consumer = start(consumer, Some(reader.into()), None, None)?;
    let producer = start(producer, None, Some(writer.into()), None)?;
    Ok((producer, consumer))
}

/// Spawns `spec`; `stdin`/`stdout` replace the pipes the spec asks for
/// (a pipeline's OS pipe).
fn start(
    spec: &Spec,
    stdin: Option<Stdio>,
    stdout: Option<Stdio>,
    forward: Option<Forward>,
) -> Result<Child, SpawnError> {
    let (mut cmd, token) = command_for(spec);
    cmd.stdin(stdin.unwrap_or_else(|| match spec.stdin {
        Stdin::Null => Stdio::null(),
        Stdin::Data(_) | Stdin::Piped => Stdio::piped(),
    }))
    .stdout(stdout.unwrap_or_else(Stdio::piped))
    .stderr(Stdio::piped());
    let (mut child, registered) = spawn_registered(&mut cmd).map_err(spawn_err(spec))?;
    drop(cmd);
    let started = Instant::now();
    let stall = spec.stall.filter(|_| spec.stdout == Out::Lines);
    let meter = Arc::new(Mutex::new(StallMeter::default()));
    let feed = |f: fn(&mut StallMeter, &str)| stall.map(|_| (meter.clone(), f));
    let (fwd_out, fwd_err) = forward.map_or((None, None), |f| (Some(f.out), Some(f.err)));
    let mut stdin = child.stdin.take();
    if let Stdin::Data(data) = &spec.stdin
        && let Some(mut w) = stdin.take()
    {
        let data = data.clone();
        tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            let _ = w.write_all(&data).await;
            let _ = w.shutdown().await;
        });
    }
    let mut raw = child.stdout.take();
    let out_task = match spec.stdout {
        Out::Lines => raw
            .take()
            .map(|s| tokio::spawn(pump(s, feed(StallMeter::stdout), fwd_out))),
        Out::Raw => None,
    };
    let err_task = child
        .stderr
        .take()
        .map(|s| tokio::spawn(pump(s, feed(StallMeter::stderr), fwd_err)));
    Ok(Child {
        pid: child.id(),
        child,
        token,
        registered,
        started,
        deadline: spec
            .timeout
            .and_then(|t| tokio::time::Instant::now().checked_add(t)),
        stop_signal: spec.stop_signal,
        grace: spec.grace,
        stall,
        meter,
        stdin,
        stdout: raw,
        out_task,
        err_task,
        drain_until: None,
        reaped: false,
        ended: None,
        debug: spec
            .debug_note
            .as_ref()
            .filter(|_| tracing::enabled!(tracing::Level::DEBUG))
            .map(|note| format!("`{}` ({note})", spec.display())),
    })
}

/// The stall meter, and which of its sides a stream feeds.
type Feed = (Arc<Mutex<StallMeter>>, fn(&mut StallMeter, &str));

/// Reads `reader` line by line to its end (non-UTF-8 bytes replaced),
/// feeding each line to the stall meter and to `forward` (until the
/// receiving side goes away); returns the capped tail.
async fn pump<R: AsyncRead + Unpin>(
    reader: R,
    meter: Option<Feed>,
    mut forward: Option<mpsc::Sender<String>>,
) -> String {
    let mut reader = BufReader::new(reader);
    let (mut raw, mut tail) = (Vec::new(), String::new());
    loop {
        raw.clear();
        match reader.read_until(b'\n', &mut raw).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let line = raw.strip_suffix(b"\n").unwrap_or(&raw);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let line = String::from_utf8_lossy(line).into_owned();
        if let Some((m, f)) = &meter
            && let Ok(mut m) = m.lock()
        {
            f(&mut m, &line);
        }
        if let Some(tx) = &forward
            && tx.send(line.clone()).await.is_err()
        {
            forward = None;
        }
        push_capped(&mut tail, &line);
    }
    tail
}

/// The receiving ends of [`Forward`].
struct Lines {
    out: Option<mpsc::Receiver<String>>,
    err: Option<mpsc::Receiver<String>>,
}

impl Lines {
    /// The next line of either stream (`true`: stdout); `None` once both
    /// ended.
    async fn next(&mut self) -> Option<(bool, String)> {
        loop {
            let (stdout, line) = match (self.out.as_mut(), self.err.as_mut()) {
                (None, None) => return None,
                (Some(o), None) => (true, o.recv().await),
                (None, Some(e)) => (false, e.recv().await),
                (Some(o), Some(e)) => tokio::select! {
                    l = o.recv() => (true, l),
                    l = e.recv() => (false, l),
                },
            };
            match (stdout, line) {
                (s, Some(l)) => return Some((s, l)),
                (true, None) => self.out = None,
                (false, None) => self.err = None,
            }
        }
    }
}

/// Runs `f` until `deadline` or a shutdown, whichever comes first; the
/// error says which ([`Ended::TimedOut`] or [`Ended::Interrupted`]). What
/// [`Child::wait`] waits with, and what a caller that feeds or reads a
/// child itself bounds that work with.
pub async fn bounded<T>(
    f: impl Future<Output = T>,
    deadline: Option<tokio::time::Instant>,
    shutdown: &Shutdown,
) -> Result<T, Ended> {
    let mut shutdown = shutdown.clone();
    let timer = async {
        match deadline {
            Some(d) => tokio::time::sleep_until(d).await,
            None => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        v = f => Ok(v),
        () = timer => Err(Ended::TimedOut),
        () = shutdown.wait() => Err(Ended::Interrupted(shutdown.signal().unwrap_or(2))),
    }
}

impl Child {
    /// The child's stdin ([`Stdin::Piped`]).
    pub fn stdin(&mut self) -> Option<&mut ChildStdin> {
        self.stdin.as_mut()
    }

    /// Takes the child's stdin ([`Stdin::Piped`]) to write it elsewhere.
    pub fn take_stdin(&mut self) -> Option<ChildStdin> {
        self.stdin.take()
    }

    /// Takes the child's raw stdout ([`Out::Raw`]) for a reader that
    /// wants the pipe itself (no [`DRAIN`] after the child exits).
    pub fn take_stdout(&mut self) -> Option<ChildStdout> {
        self.stdout.take()
    }

    /// The child's raw stdout pipe ([`Out::Raw`]), to tune it.
    pub fn stdout_pipe(&self) -> Option<&ChildStdout> {
        self.stdout.as_ref()
    }

    /// When the spec's timeout runs out.
    pub fn deadline(&self) -> Option<tokio::time::Instant> {
        self.deadline
    }

    /// Reads the child's raw stdout ([`Out::Raw`]; 0 otherwise). Once the
    /// child has exited, a descendant that still holds the pipe (a dump
    /// command that started something in the background) gets [`DRAIN`]
    /// more, then the read ends as if at EOF; [`Child::output`] then stops
    /// what is left.
    pub async fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            let Some(out) = self.stdout.as_mut() else {
                return Ok(0);
            };
            let child = &mut self.child;
            let until = self.drain_until;
            let exited = async move {
                match until {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => {
                        let _ = child.wait().await;
                    }
                }
            };
            tokio::select! {
                biased;
                r = out.read(buf) => return r,
                () = exited => {}
            }
            if self.drain_until.is_some() {
                return Ok(0);
            }
            self.reaped = true;
            self.drain_until = Some(tokio::time::Instant::now() + DRAIN);
        }
    }

    /// Sends `sig` to the child's process group.
    pub fn signal(&self, sig: Signal) {
        signal_group(self.pid, sig);
    }

    /// Waits for the child to end. When the spec's timeout runs out, when
    /// it went on retrying without progress for [`Spec::stall`]
    /// ([`StallMeter`]), or when `shutdown` fires, the child is stopped
    /// ([`Child::stop_for`]) and the reason returned.
    pub async fn wait(&mut self, shutdown: &Shutdown) -> Ended {
        let (stall, meter) = (self.stall, self.meter.clone());
        let stalled = async move {
            let Some(limit) = stall else {
                return std::future::pending::<()>().await;
            };
            loop {
                tokio::time::sleep(Duration::from_millis(500)).await;
                if meter.lock().is_ok_and(|m| m.stalled(limit)) {
                    return;
                }
            }
        };
        let child = &mut self.child;
        let exited = async {
            tokio::select! {
                st = child.wait() => Some(ended_of(st)),
                () = stalled => None,
            }
        };
        let why = match bounded(exited, self.deadline, shutdown).await {
            Ok(Some(ended)) => {
                self.reaped = true;
                self.ended = Some(ended);
                return ended;
            }
            Ok(None) => Ended::Stalled,
            Err(why) => why,
        };
        self.stop_for(why).await
    }

    /// Stops the child because of `why`, as [`Child::wait`] does: a
    /// shutdown is passed on as SIGINT (Ctrl-C), anything else as the
    /// spec's stop signal. Returns `why`.
    pub async fn stop_for(&mut self, why: Ended) -> Ended {
        let sig = match why {
            Ended::Interrupted(_) => Signal::SIGINT,
            _ => self.stop_signal,
        };
        self.signal(sig);
        self.kill_after(self.grace).await;
        why
    }

    /// Sends the spec's stop signal, waits the grace period, then kills
    /// the group. Returns how the child ended.
    pub async fn stop(&mut self) -> Ended {
        self.signal(self.stop_signal);
        self.kill_after(self.grace).await
    }

    /// Waits up to `grace` for the child to exit, then kills its group.
    pub async fn kill_after(&mut self, grace: Duration) -> Ended {
        if let Some(ended) = self.exit_within(grace).await {
            return ended;
        }
        self.signal(Signal::SIGKILL);
        self.reap().await
    }

    /// How the child ended, if it does within `limit`.
    pub async fn exit_within(&mut self, limit: Duration) -> Option<Ended> {
        tokio::time::timeout(limit, self.reap()).await.ok()
    }

    async fn reap(&mut self) -> Ended {
        let ended = ended_of(self.child.wait().await);
        self.reaped = true;
        self.ended = Some(ended);
        ended
    }

    /// Collects the captured output of the child, which ended as `ended`
    /// (one still running is stopped first). Its pipes get [`DRAIN`] to
    /// reach their end; then what is left of it (its group and escaped
    /// descendants, see [`tree`]) is stopped and the pipes are abandoned.
    pub async fn output(mut self, ended: Ended) -> Output {
        if !self.reaped {
            self.stop().await;
        }
        self.stdin = None;
        self.stdout = None;
        let (pid, token) = (self.pid, self.token.clone());
        let (stdout, stderr) = tokio::join!(
            collect_bounded(self.out_task.take(), pid, &token),
            collect_bounded(self.err_task.take(), pid, &token)
        );
        tree::clean_up(pid, &token, self.stop_signal, LEFTOVER_GRACE).await;
        self.registered.take();
        Output {
            ended,
            stdout,
            stderr,
            duration: self.started.elapsed(),
        }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if let Some(call) = self.debug.take() {
            let how = self
                .ended
                .map_or_else(|| "stopped".to_string(), Ended::describe);
            let secs = self.started.elapsed().as_secs_f64();
            tracing::debug!("{call}: {how} after {secs:.3}s");
        }
        if self.reaped {
            return;
        }
        // Dropped while running (a web client went away mid-download):
        // the stop signal now, SIGKILL for what is left after the grace;
        // tokio reaps the child itself.
        let (pid, grace, sig) = (self.pid, self.grace, self.stop_signal);
        let (token, registered) = (std::mem::take(&mut self.token), self.registered.take());
        match tokio::runtime::Handle::try_current() {
            Ok(h) => {
                h.spawn(async move {
                    tree::clean_up(pid, &token, sig, grace).await;
                    drop(registered);
                });
            }
            Err(_) => tree::kill_now(pid, &token),
        }
    }
}

/// The output a pump task collected, once the child has ended: [`DRAIN`]
/// to reach EOF, then what is left of the child is killed and, if the
/// pipe is still held, abandoned (its output is lost).
async fn collect_bounded(
    task: Option<JoinHandle<String>>,
    pid: Option<u32>,
    token: &str,
) -> String {
    let Some(mut t) = task else {
        return String::new();
    };
    if let Ok(r) = tokio::time::timeout(DRAIN, &mut t).await {
        return r.unwrap_or_default();
    }
    tree::kill_now(pid, token);
    match tokio::time::timeout(Duration::from_millis(500), &mut t).await {
        Ok(r) => r.unwrap_or_default(),
        Err(_) => {
            t.abort();
            String::new()
        }
    }
}

impl From<std::process::ExitStatus> for Ended {
    fn from(st: std::process::ExitStatus) -> Ended {
        use std::os::unix::process::ExitStatusExt;
        match (st.code(), st.signal()) {
            (Some(c), _) => Ended::Exited(c),
            (None, Some(s)) => Ended::Signaled(s),
            (None, None) => Ended::Exited(-1),
        }
    }
}

/// How a wait for the child ended; a failed wait counts as exit code -1.
fn ended_of(status: std::io::Result<std::process::ExitStatus>) -> Ended {
    status.map_or(Ended::Exited(-1), Ended::from)
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::ExitStatusExt;

    use super::*;

    fn sh(script: &str) -> Spec {
        Spec::new("/bin/sh").arg("-c").arg(script)
    }

    /// Whether process `pid` is gone (or a zombie nobody reaped yet).
    fn gone(pid: i32) -> bool {
        tree::stat_of(pid).is_none_or(|s| s.zombie)
    }

    /// The pids a script printed, one a line.
    fn pids(stdout: &str) -> Vec<i32> {
        stdout
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }

    #[test]
    fn exit_statuses_map_to_codes_and_signals() {
        for (raw, want) in [
            (0, Ended::Exited(0)),
            (3 << 8, Ended::Exited(3)),
            (130 << 8, Ended::Exited(130)),
            (9, Ended::Signaled(9)),
            (15, Ended::Signaled(15)),
        ] {
            assert_eq!(
                Ended::from(std::process::ExitStatus::from_raw(raw)),
                want,
                "{raw}"
            );
        }
        assert_eq!(
            ended_of(Err(std::io::Error::other("gone"))),
            Ended::Exited(-1)
        );
    }

    #[tokio::test]
    async fn a_child_ends_with_its_exit_code_or_signal() {
        let never = Shutdown::never();
        for (script, want) in [
            ("exit 0", Ended::Exited(0)),
            ("exit 3", Ended::Exited(3)),
            ("kill -9 $$", Ended::Signaled(9)),
        ] {
            let out = sh(script).run(&never, |_| {}, |_| {}).await;
            assert_eq!(out.map(|o| o.ended).ok(), Some(want), "{script}");
        }
    }

    #[tokio::test]
    async fn a_timeout_stops_the_whole_group() {
        let spec = sh("sleep 60 & echo $!; sleep 60").timeout(Duration::from_millis(300));
        let mut child = spec.spawn().unwrap();
        let started = Instant::now();
        let ended = child.wait(&Shutdown::never()).await;
        let out = child.output(ended).await;
        assert_eq!(out.ended, Ended::TimedOut);
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        let bg = pids(&out.stdout);
        assert_eq!(bg.len(), 1, "{out:?}");
        assert!(
            bg.iter().all(|p| gone(*p)),
            "the background sleep still runs"
        );
    }

    #[tokio::test]
    async fn a_child_that_ignores_its_stop_signal_is_killed_after_the_grace() {
        // Ignored signals stay ignored across exec: the sleep ignores them too.
        let mut spec =
            sh("trap '' INT TERM; echo ready; sleep 60").timeout(Duration::from_millis(200));
        spec.grace = Duration::from_millis(700);
        let started = Instant::now();
        let out = spec.run(&Shutdown::never(), |_| {}, |_| {}).await.unwrap();
        let took = started.elapsed();
        assert_eq!(out.ended, Ended::TimedOut);
        assert!(
            took >= Duration::from_millis(900),
            "killed before the grace: {took:?}"
        );
        assert!(took < Duration::from_secs(5), "{took:?}");
        assert_eq!(out.stdout, "ready\n");
    }

    #[tokio::test]
    async fn a_shutdown_stops_the_child_with_sigint() {
        let (trigger, shutdown) = Shutdown::new();
        let spec =
            sh("trap 'echo got INT; exit 130' INT; echo ready; while :; do sleep 0.05; done");
        let mut child = spec.spawn().unwrap();
        let fire = async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            trigger.fire(15);
        };
        let (ended, ()) = tokio::join!(child.wait(&shutdown), fire);
        let out = child.output(ended).await;
        assert_eq!(out.ended, Ended::Interrupted(15));
        assert!(out.stdout.contains("got INT"), "{out:?}");
    }

    #[tokio::test]
    async fn run_returns_soon_when_a_background_grandchild_holds_the_pipes() {
        let started = Instant::now();
        let mut lines = Vec::new();
        let out = sh("sleep 60 & echo $!; echo done")
            .run(&Shutdown::never(), |l| lines.push(l.to_string()), |_| {})
            .await
            .unwrap();
        assert_eq!(out.ended, Ended::Exited(0));
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(lines.last().map(String::as_str), Some("done"));
        assert!(
            pids(&out.stdout).iter().all(|p| gone(*p)),
            "the grandchild still runs"
        );
    }

    #[tokio::test]
    async fn a_raw_read_ends_soon_after_the_child_when_a_grandchild_holds_stdout() {
        // setsid: the grandchild leaves the process group too.
        let spec = sh("setsid sleep 60 & printf data").stdout(Out::Raw);
        let mut child = spec.spawn().unwrap();
        let started = Instant::now();
        let (mut got, mut buf) = (Vec::new(), [0u8; 64]);
        loop {
            match child.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
        assert_eq!(got, b"data");
        let ended = child.wait(&Shutdown::never()).await;
        let out = child.output(ended).await;
        assert_eq!(out.ended, Ended::Exited(0));
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
    }

    #[tokio::test]
    async fn stdin_data_and_pipes_reach_the_child() {
        let out = Spec::new("cat")
            .stdin(Stdin::Data(b"one\ntwo\n".to_vec()))
            .run(&Shutdown::never(), |_| {}, |_| {})
            .await
            .unwrap();
        assert_eq!(out.stdout, "one\ntwo\n");

        let mut child = Spec::new("cat").stdin(Stdin::Piped).spawn().unwrap();
        if let Some(w) = child.stdin() {
            use tokio::io::AsyncWriteExt;
            w.write_all(b"piped\n").await.unwrap();
        }
        drop(child.take_stdin());
        let ended = child.wait(&Shutdown::never()).await;
        assert_eq!(child.output(ended).await.stdout, "piped\n");
    }

    #[tokio::test]
    async fn a_pipeline_streams_from_producer_to_consumer() {
        let producer = sh("printf 'a\\nb\\nc\\n'").stdout(Out::Raw);
        let consumer = Spec::new("wc").arg("-l").stdin(Stdin::Piped);
        let (mut p, mut c) = spawn_pipeline(&producer, &consumer).unwrap();
        let never = Shutdown::never();
        let (pe, ce) = tokio::join!(p.wait(&never), c.wait(&never));
        let (po, co) = tokio::join!(p.output(pe), c.output(ce));
        assert_eq!((po.ended, co.ended), (Ended::Exited(0), Ended::Exited(0)));
        assert_eq!(co.stdout.trim(), "3");
        let wrong = spawn_pipeline(&sh("true"), &consumer);
        assert!(wrong.is_err(), "a producer whose stdout is read as lines");
    }

    #[tokio::test]
    async fn bounded_work_reports_timeout_and_shutdown() {
        let never = Shutdown::never();
        let soon = Some(tokio::time::Instant::now() + Duration::from_millis(50));
        assert_eq!(bounded(async { 7 }, soon, &never).await, Ok(7));
        let slow = tokio::time::sleep(Duration::from_secs(30));
        assert_eq!(bounded(slow, soon, &never).await, Err(Ended::TimedOut));
        let (trigger, shutdown) = Shutdown::new();
        trigger.fire(2);
        let slow = tokio::time::sleep(Duration::from_secs(30));
        assert_eq!(
            bounded(slow, None, &shutdown).await,
            Err(Ended::Interrupted(2))
        );
    }

    #[tokio::test]
    async fn a_dropped_child_is_stopped() {
        let mut child = sh("echo $$; sleep 60").spawn().unwrap();
        let pid = child
            .pid
            .and_then(|p| i32::try_from(p).ok())
            .expect("no pid");
        let _ = child.exit_within(Duration::from_millis(100)).await;
        drop(child);
        for _ in 0..100 {
            if gone(pid) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the dropped child {pid} still runs");
    }
}
