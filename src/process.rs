//! Every child process (restic, hooks, scripts) starts here.
//!
//! Each child gets its own process group, so a timeout or a signal reaches
//! everything it spawned (a hook's `sh -c` pipelines included), and a Ctrl-C
//! on the terminal reaches only us: we decide what the child gets. restic is
//! stopped with SIGINT, never SIGTERM: restic 0.14–0.16 has no SIGTERM
//! handler and would leave a stale lock in the repository.
//! Output is captured with a cap so a chatty child cannot exhaust memory.
//!
//! Nothing a child does can hold us: when it ends (or is stopped), its
//! output is drained for a moment, then whatever is left of it (its group,
//! and descendants that left the group: see [`tree`]) is stopped and its
//! pipes are abandoned. Every child also dies with us (Linux
//! `PR_SET_PDEATHSIG`, see [`command_for`]), so a `kill -9` of the manager
//! never leaves a restic running on its own.
//!
//! A [`Spec`] says what to run and how; [`Spec::spawn`] gives the one
//! handle on it, [`Child`], and [`Spec::run`] runs it to its end.

mod child;
mod tree;

pub use child::{Child, Out, Stdin, bounded, spawn_pipeline};
pub use tree::{CHILD_ENV, Leftover, become_subreaper, leftovers, stop_leftovers};

use std::ffi::OsString;
use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
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
    tree::kill_all_descendants();
}

/// Held while a child is spawned and registered, and while orphans are
/// reaped, so a fresh child is never taken for an orphan.
static SPAWN_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn with_spawn_lock<T>(f: impl FnOnce(&std::collections::BTreeSet<u32>) -> T) -> T {
    let _guard = SPAWN_LOCK
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let running = RUNNING.lock().map(|r| r.clone()).unwrap_or_default();
    f(&running)
}

/// Spawns `cmd` and registers the child, under [`SPAWN_LOCK`].
fn spawn_registered(
    cmd: &mut tokio::process::Command,
) -> std::io::Result<(tokio::process::Child, Option<Registered>)> {
    let _guard = SPAWN_LOCK
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let child = cmd.spawn()?;
    let reg = child.id().map(Registered::new);
    Ok((child, reg))
}

/// How long a child's output is still read after it ended: background
/// processes it left may hold its pipes open forever.
const DRAIN: Duration = Duration::from_secs(1);

/// How long what is left of a child gets to stop after SIGTERM.
const LEFTOVER_GRACE: Duration = Duration::from_secs(2);

tokio::task_local! {
    /// The service whose run started the children of this task.
    static OWNER: String;
}

/// Runs `f` with every child it starts marked as belonging to `owner`
/// (a service run: `<service>@<lock directory>`), so a later run can find
/// what a killed run left behind ([`leftovers`]).
pub async fn owned_by<F: Future>(owner: String, f: F) -> F::Output {
    OWNER.scope(owner, f).await
}

/// The owner mark of `service`'s runs under `lock_dir` (the same service
/// name may exist in another user's configuration).
pub fn owner_of(service: &str, lock_dir: &std::path::Path) -> String {
    format!("{service}@{}", lock_dir.display())
}

/// A fresh [`CHILD_ENV`] value.
fn new_token() -> String {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let owner = OWNER.try_with(Clone::clone).unwrap_or_default();
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    format!("{}|{n}|{owner}", tree::manager_id())
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
    /// What the child reads on stdin.
    pub stdin: Stdin,
    /// What becomes of its stdout.
    pub stdout: Out,
    /// Stop the child (`stop_signal`, SIGKILL after `grace`) when it has
    /// been retrying for this long without progress (see [`StallMeter`]).
    /// Watched by [`Child::wait`] when stdout is [`Out::Lines`]: raw bytes
    /// show no progress.
    pub stall: Option<Duration>,
    /// When set, the child's command line with this note (restic: the
    /// redacted repository), how it ended and how long it ran are logged
    /// at debug level when it is done. Never a secret.
    pub debug_note: Option<String>,
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
            stdin: Stdin::Null,
            stdout: Out::Lines,
            stall: None,
            debug_note: None,
        }
    }

    /// What the child reads on stdin.
    pub fn stdin(mut self, stdin: Stdin) -> Self {
        self.stdin = stdin;
        self
    }

    /// What becomes of the child's stdout.
    pub fn stdout(mut self, out: Out) -> Self {
        self.stdout = out;
        self
    }

    /// A hard bound on the child's run: [`Child::wait`] stops it then.
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = Some(t);
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
    /// We stopped it because it went on retrying without progress for
    /// [`Spec::stall`].
    Stalled,
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
            Ended::Stalled => "stopped: no progress while retrying".to_string(),
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

fn signal_group(pid: Option<u32>, sig: Signal) {
    if let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()) {
        // The group may already be gone; nothing to do then.
        let _ = killpg(Pid::from_raw(pid), sig);
    }
}

/// A command for `spec` in its own process group, with its environment
/// and working folder, marked with a fresh [`CHILD_ENV`] token (returned)
/// and set to die with us; the caller sets up the pipes.
fn command_for(spec: &Spec) -> (tokio::process::Command, String) {
    let mut cmd = tokio::process::Command::new(&spec.program);
    cmd.args(&spec.args).process_group(0);
    for k in &spec.env_remove {
        cmd.env_remove(k);
    }
    for (k, v) in &spec.env {
        cmd.env(k, v);
    }
    let token = new_token();
    cmd.env(CHILD_ENV, &token);
    if let Some(d) = &spec.cwd {
        cmd.current_dir(d);
    }
    die_with_parent(&mut cmd, spec.stop_signal);
    (cmd, token)
}

/// Sets `sig` as the child's parent-death signal (Linux `PR_SET_PDEATHSIG`),
/// so a `kill -9` of the manager stops restic (SIGINT: it removes its
/// repository lock) and every other child (SIGTERM) instead of leaving it
/// running with parent 1.
///
/// The kernel sends it when the *thread* that forked the child exits, not
/// the process. Children are spawned from the runtime's worker threads or
/// the main thread, which live as long as the process; `main` keeps the
/// blocking pool's threads alive as long, too, so a child spawned from
/// one is not stopped when an idle thread would retire.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn die_with_parent(cmd: &mut tokio::process::Command, sig: Signal) {
    let parent = nix::unistd::getpid();
    // SAFETY: the closure runs in the forked child before exec. It only
    // calls prctl(2) and getppid(2), which are async-signal-safe, and
    // builds its error from an errno without allocating.
    unsafe {
        cmd.pre_exec(move || {
            nix::sys::prctl::set_pdeathsig(sig).map_err(std::io::Error::from)?;
            // We died between fork and prctl: the signal will never come.
            if nix::unistd::getppid() != parent {
                return Err(std::io::Error::from(nix::errno::Errno::ESRCH));
            }
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn die_with_parent(_cmd: &mut tokio::process::Command, _sig: Signal) {}

fn spawn_err(spec: &Spec) -> impl FnOnce(std::io::Error) -> SpawnError + '_ {
    |source| SpawnError {
        program: spec.program.to_string_lossy().into_owned(),
        source,
    }
}

/// Tells progress from a child that only goes on retrying (restic against
/// a destination that is down: restic ≥ 0.17 retries for about 15 minutes
/// and has no option to stop sooner).
///
/// The clock starts at the first retry line on stderr (restic's `… returned
/// error, retrying after …`) and is reset by any progress: another stderr
/// line, or a stdout line that says something new. A progress line that
/// only repeats the last one (restic prints its status at a fixed rate,
/// with the elapsed time) is not progress. A child that never retries is
/// never stalled, however long it is silent: a long `check --read-data` or
/// an upload over a slow line only prints when it has something to say.
#[derive(Debug, Default)]
pub struct StallMeter {
    retrying_since: Option<Instant>,
    last: String,
}

impl StallMeter {
    pub fn stdout(&mut self, line: &str) {
        let line = progress_key(line);
        if self.retrying_since.is_some() && line == self.last {
            return;
        }
        self.last = line;
        self.retrying_since = None;
    }

    pub fn stderr(&mut self, line: &str) {
        if line.contains("returned error, retrying after") {
            self.retrying_since.get_or_insert_with(Instant::now);
        } else if !line.trim().is_empty() {
            self.retrying_since = None;
        }
    }

    /// Whether the child has been retrying, with no progress, for `limit`.
    pub fn stalled(&self, limit: Duration) -> bool {
        self.retrying_since.is_some_and(|t| t.elapsed() >= limit)
    }
}

/// A progress line without what changes while nothing happens: the
/// elapsed and remaining times of restic's JSON status, the leading
/// `[0:12]` of its text progress.
fn progress_key(line: &str) -> String {
    let t = line.trim_start_matches(|c: char| c == '\x1b' || c.is_whitespace());
    let t = t.strip_prefix("[2K").unwrap_or(t).trim_start();
    if t.starts_with('{')
        && let Ok(serde_json::Value::Object(mut m)) = serde_json::from_str(t)
    {
        m.remove("seconds_elapsed");
        m.remove("seconds_remaining");
        return serde_json::Value::Object(m).to_string();
    }
    match t.strip_prefix('[').and_then(|r| r.split_once(']')) {
        Some((_, rest)) => rest.trim().to_string(),
        None => t.to_string(),
    }
}

/// Replaces this process with `spec`'s program (Unix `exec`): its stdin,
/// stdout, stderr, terminal, signals and exit code become the caller's.
/// `spec.env` reaches it through the environment, as for [`Spec::spawn`];
/// the terminal's stdin and stdout replace [`Spec::stdin`] and
/// [`Spec::stdout`], and timeout, stall and stop signal do not apply (we
/// are gone). Returns only when exec failed.
pub fn exec_in_place(spec: &Spec) -> SpawnError {
    use std::os::unix::process::CommandExt;
    let mut cmd = std::process::Command::new(&spec.program);
    cmd.args(&spec.args);
    for k in &spec.env_remove {
        cmd.env_remove(k);
    }
    for (k, v) in &spec.env {
        cmd.env(k, v);
    }
    if let Some(d) = &spec.cwd {
        cmd.current_dir(d);
    }
    spawn_err(spec)(cmd.exec())
}

#[cfg(test)]
mod stall_tests {
    use super::*;

    #[test]
    fn only_retrying_without_progress_is_a_stall() {
        let limit = Duration::ZERO;
        let mut m = StallMeter::default();
        m.stdout(r#"{"message_type":"status","seconds_elapsed":1,"bytes_done":5}"#);
        assert!(!m.stalled(limit), "progress alone is no stall");
        m.stderr(
            "Save(<data/1234>) returned error, retrying after 552ms: dial tcp: connection refused",
        );
        assert!(m.stalled(limit));
        // The same status with a later time is not progress...
        m.stdout(r#"{"message_type":"status","seconds_elapsed":9,"bytes_done":5}"#);
        assert!(m.stalled(limit));
        m.stdout("[0:05] 10.00%  1 / 10 packs");
        m.stderr("Load(<index/1>) returned error, retrying after 1s: EOF");
        m.stdout("[0:09] 10.00%  1 / 10 packs");
        assert!(m.stalled(limit));
        // ...new numbers are.
        m.stdout("[0:10] 20.00%  2 / 10 packs");
        assert!(!m.stalled(limit));
        m.stderr(
            "\u{1b}[2KStat(<config/>) returned error, retrying after 1m9s: connection refused",
        );
        assert!(m.stalled(limit));
        m.stderr("Stat(<config/>) operation successful after 3 retries");
        assert!(!m.stalled(limit));
        assert!(!StallMeter::default().stalled(limit), "silence is no stall");
    }
}
