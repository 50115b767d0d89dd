//! The restic operations restic-manager performs, each one call.

use std::path::Path;
use std::time::Duration;

use super::error::{ErrorClass, classify, explain};
use super::output::{self, BackupMessage, BackupStatus, BackupSummary, Snapshot};
use super::{Repository, Restic, ResticCall};
use crate::process::{self, Ended, Output, Shutdown};

/// A failed restic operation, classified.
#[derive(Debug, Clone)]
pub struct OpError {
    pub class: ErrorClass,
    pub message: String,
    pub stderr: String,
}

impl std::fmt::Display for OpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// Turns how restic ended into an error (or `None` on exit 0).
pub fn failure(out: &Output, repo: &Repository) -> Option<OpError> {
    let (class, message) = match out.ended {
        Ended::Exited(0) => return None,
        Ended::Exited(code) => {
            let class = classify(code, &out.stderr);
            (class, explain(class, &repo.display, &out.stderr))
        }
        Ended::Signaled(s) => (
            ErrorClass::Other,
            format!(
                "restic was killed by signal {s} while working on `{}`",
                repo.display
            ),
        ),
        Ended::TimedOut => (
            ErrorClass::Timeout,
            format!(
                "restic ran out of time on `{}` and was stopped",
                repo.display
            ),
        ),
        Ended::Interrupted(_) => (
            ErrorClass::Interrupted,
            format!("interrupted while working on `{}`", repo.display),
        ),
    };
    Some(OpError {
        class,
        message,
        stderr: out.stderr.clone(),
    })
}

fn spawn_error(e: &process::SpawnError) -> OpError {
    OpError {
        class: ErrorClass::ResticMissing,
        message: e.to_string(),
        stderr: String::new(),
    }
}

async fn call(
    restic: &Restic,
    repo: &Repository,
    args: &[&str],
    timeout: Duration,
    shutdown: &Shutdown,
) -> Result<Output, OpError> {
    let call = ResticCall::new(restic, repo, args.iter().copied()).timeout(timeout);
    process::run(&call.spec, shutdown, |_| {}, |_| {})
        .await
        .map_err(|e| spawn_error(&e))
}

/// Whether the repository exists (restic can open its config).
pub async fn exists(
    restic: &Restic,
    repo: &Repository,
    shutdown: &Shutdown,
) -> Result<bool, OpError> {
    if let Some(p) = repo.local_path() {
        return Ok(p.join("config").is_file());
    }
    let out = call(
        restic,
        repo,
        &["cat", "config"],
        Duration::from_secs(300),
        shutdown,
    )
    .await?;
    match failure(&out, repo) {
        None => Ok(true),
        Some(e) if e.class == ErrorClass::RepositoryMissing => Ok(false),
        Some(e) => Err(e),
    }
}

/// `restic init`.
pub async fn init(restic: &Restic, repo: &Repository, shutdown: &Shutdown) -> Result<(), OpError> {
    let out = call(restic, repo, &["init"], Duration::from_secs(600), shutdown).await?;
    match failure(&out, repo) {
        None => Ok(()),
        Some(mut e) => {
            e.message = format!(
                "cannot create repository `{}`: {}",
                repo.display,
                super::error::last_line(&out.stderr)
            );
            Err(e)
        }
    }
}

/// `restic unlock` without `--remove-all`: removes only stale locks (made
/// on this host by a process that is gone, or older than 30 minutes), never
/// a live one, so it is safe while other restic processes work.
pub async fn unlock_stale(restic: &Restic, repo: &Repository) -> Result<(), OpError> {
    // Runs after a stop we asked for, so a shutdown must not cut it short.
    let out = call(
        restic,
        repo,
        &["unlock"],
        Duration::from_secs(120),
        &Shutdown::never(),
    )
    .await?;
    failure(&out, repo).map_or(Ok(()), Err)
}

/// Snapshots carrying `tag` (all when `None`).
pub async fn snapshots(
    restic: &Restic,
    repo: &Repository,
    tag: Option<&str>,
    shutdown: &Shutdown,
) -> Result<Vec<Snapshot>, OpError> {
    let mut args = vec!["snapshots", "--json", "--no-lock"];
    if let Some(t) = tag {
        args.extend(["--tag", t]);
    }
    let out = call(restic, repo, &args, Duration::from_secs(600), shutdown).await?;
    if let Some(e) = failure(&out, repo) {
        return Err(e);
    }
    output::snapshots(&out.stdout).map_err(|message| OpError {
        class: ErrorClass::Other,
        message,
        stderr: out.stderr.clone(),
    })
}

/// What a backup produced.
#[derive(Debug, Clone)]
pub struct BackupResult {
    /// restic's exit: 0 ok, 3 snapshot made but some files unreadable.
    pub warning: bool,
    pub summary: BackupSummary,
    pub stderr: String,
    pub duration: Duration,
}

/// Options for one backup.
pub struct BackupArgs<'a> {
    pub paths: &'a [&'a Path],
    pub host: &'a str,
    pub tags: &'a [String],
    pub excludes: &'a [String],
    pub timeout: Duration,
    /// Whether restic should emit progress lines.
    pub progress: bool,
}

/// `restic backup --json`; `on_status` sees progress lines.
pub async fn backup(
    restic: &Restic,
    repo: &Repository,
    a: &BackupArgs<'_>,
    shutdown: &Shutdown,
    mut on_status: impl FnMut(&BackupStatus),
    on_stderr: impl FnMut(&str),
) -> Result<BackupResult, OpError> {
    let mut args: Vec<String> = vec!["backup".into(), "--json".into()];
    if !a.progress {
        args.push("--quiet".into());
    }
    args.extend(["--host".into(), a.host.to_string()]);
    for t in a.tags {
        args.extend(["--tag".into(), t.clone()]);
    }
    args.push("--exclude-caches".into());
    for e in a.excludes {
        args.extend(["--exclude".into(), e.clone()]);
    }
    args.push("--".into());
    args.extend(a.paths.iter().map(|p| p.to_string_lossy().into_owned()));
    let mut call = ResticCall::new(restic, repo, args).timeout(a.timeout);
    if a.progress {
        call.spec
            .env
            .push(("RESTIC_PROGRESS_FPS".into(), "4".into()));
    }
    let out = process::run(
        &call.spec,
        shutdown,
        |line| {
            if let Some(BackupMessage::Status(s)) = output::backup_line(line) {
                on_status(&s);
            }
        },
        on_stderr,
    )
    .await
    .map_err(|e| spawn_error(&e))?;
    let warning = out.ended == Ended::Exited(3);
    if !warning && let Some(e) = failure(&out, repo) {
        return Err(e);
    }
    let summary = output::backup_summary(&out.stdout).ok_or_else(|| OpError {
        class: ErrorClass::Other,
        message: format!(
            "restic finished on `{}` but printed no backup summary: {}",
            repo.display,
            super::error::last_line(&out.stderr)
        ),
        stderr: out.stderr.clone(),
    })?;
    Ok(BackupResult {
        warning,
        summary,
        stderr: out.stderr,
        duration: out.duration,
    })
}

/// What `forget` did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ForgetResult {
    pub kept: usize,
    pub removed: usize,
    /// Whether unreferenced data was pruned in this run.
    pub pruned: bool,
}

/// How `forget` should run.
#[derive(Debug, Clone, Copy)]
pub struct ForgetMode {
    /// Plan only (`--dry-run`): nothing is removed.
    pub dry_run: bool,
    /// Also prune unreferenced data.
    pub prune: bool,
}

/// A `forget` plan or result, per group.
#[derive(Debug, Clone, Default)]
pub struct ForgetPlan {
    /// (kept, removed) per group.
    pub groups: Vec<(usize, usize)>,
}

impl ForgetPlan {
    pub fn result(&self) -> ForgetResult {
        ForgetResult {
            kept: self.groups.iter().map(|g| g.0).sum(),
            removed: self.groups.iter().map(|g| g.1).sum(),
            pruned: false,
        }
    }
}

/// `restic forget` for one service's snapshots (this host, the service
/// tag), grouped by host and tags.
#[allow(clippy::too_many_arguments)]
pub async fn forget(
    restic: &Restic,
    repo: &Repository,
    host: &str,
    tag: &str,
    keep: &[String],
    mode: ForgetMode,
    timeout: Duration,
    shutdown: &Shutdown,
) -> Result<ForgetPlan, OpError> {
    let mut args: Vec<&str> = vec![
        "forget",
        "--json",
        "--host",
        host,
        "--tag",
        tag,
        "--group-by",
        "host,tags",
    ];
    if mode.dry_run {
        args.push("--dry-run");
    } else if mode.prune {
        args.push("--prune");
    }
    args.extend(keep.iter().map(String::as_str));
    let out = call(restic, repo, &args, timeout, shutdown).await?;
    if let Some(e) = failure(&out, repo) {
        return Err(e);
    }
    let groups = output::forget_groups(&out.stdout)
        .iter()
        .map(|g| {
            (
                g.keep.as_ref().map_or(0, Vec::len),
                g.remove.as_ref().map_or(0, Vec::len),
            )
        })
        .collect();
    Ok(ForgetPlan { groups })
}

/// `restic prune`.
pub async fn prune(
    restic: &Restic,
    repo: &Repository,
    timeout: Duration,
    shutdown: &Shutdown,
) -> Result<(), OpError> {
    let out = call(restic, repo, &["prune"], timeout, shutdown).await?;
    failure(&out, repo).map_or(Ok(()), Err)
}

fn with_from(call: &mut ResticCall, from: &Repository) {
    let env = &mut call.spec.env;
    env.push(("RESTIC_FROM_REPOSITORY".into(), from.url.clone()));
    match &from.password {
        crate::config::PasswordSource::File(f) => env.push((
            "RESTIC_FROM_PASSWORD_FILE".into(),
            f.to_string_lossy().into_owned(),
        )),
        crate::config::PasswordSource::Command(c) => {
            env.push(("RESTIC_FROM_PASSWORD_COMMAND".into(), c.clone()));
        }
    }
    // Credentials of the source backend; the destination's own come last
    // and win where the two use the same variable.
    let own: Vec<(String, String)> = std::mem::take(env);
    env.extend(from.env.iter().cloned());
    env.extend(own);
}

/// `restic init` of `repo` with the chunker parameters of `from`, so that
/// `restic copy` from `from` deduplicates.
pub async fn init_copy_target(
    restic: &Restic,
    repo: &Repository,
    from: &Repository,
    shutdown: &Shutdown,
) -> Result<(), OpError> {
    let mut c = ResticCall::new(restic, repo, ["init", "--copy-chunker-params"])
        .timeout(Duration::from_secs(600));
    with_from(&mut c, from);
    let out = process::run(&c.spec, shutdown, |_| {}, |_| {})
        .await
        .map_err(|e| spawn_error(&e))?;
    match failure(&out, repo) {
        None => Ok(()),
        Some(mut e) => {
            e.message = format!(
                "cannot create repository `{}` (with the chunker parameters of `{}`): {}",
                repo.display,
                from.display,
                super::error::last_line(&out.stderr)
            );
            Err(e)
        }
    }
}

/// `restic copy SNAPSHOT` from `from` into `to`; returns the id of the copy.
pub async fn copy(
    restic: &Restic,
    from: &Repository,
    to: &Repository,
    snapshot: &str,
    tag: &str,
    timeout: Duration,
    shutdown: &Shutdown,
) -> Result<Option<String>, OpError> {
    let mut c = ResticCall::new(restic, to, ["copy", snapshot]).timeout(timeout);
    with_from(&mut c, from);
    let out = process::run(&c.spec, shutdown, |_| {}, |_| {})
        .await
        .map_err(|e| spawn_error(&e))?;
    if let Some(e) = failure(&out, to) {
        return Err(e);
    }
    // `copy` has no JSON on 0.14, but says `snapshot 1a2b3c4d saved`; only
    // if that line is missing, find the copy by its `original` field (one
    // more key derivation, ≈0.4 s of CPU).
    if let Some(id) = out.stdout.lines().rev().find_map(|l| {
        l.trim()
            .strip_prefix("snapshot ")
            .and_then(|r| r.strip_suffix(" saved"))
            .filter(|id| id.chars().all(|c| c.is_ascii_hexdigit()))
            .map(str::to_string)
    }) {
        return Ok(Some(id));
    }
    let list = snapshots(restic, to, Some(tag), shutdown).await?;
    Ok(list
        .iter()
        .rev()
        .find(|s| {
            s.original
                .as_deref()
                .is_some_and(|o| o.starts_with(snapshot) || snapshot.starts_with(o))
                || s.id.starts_with(snapshot)
        })
        .map(|s| s.id.clone()))
}

/// What `restic check` did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct CheckResult {
    /// Data packs read (with `--read-data` / `--read-data-subset`).
    pub packs_read: Option<u64>,
    /// Packs in the repository, when restic said.
    pub packs_total: Option<u64>,
    /// Non-fatal remarks (e.g. packs not referenced by any index).
    pub notes: Vec<String>,
}

/// `restic check`, optionally reading data: `read` is `None` (structure
/// only), `Some("")` (`--read-data`: every pack) or `Some(SPEC)`
/// (`--read-data-subset=SPEC`). restic 0.14 prints text only, so the pack
/// counts come from its progress lines.
pub async fn check(
    restic: &Restic,
    repo: &Repository,
    read: Option<&str>,
    timeout: Duration,
    shutdown: &Shutdown,
) -> Result<CheckResult, OpError> {
    let subset;
    let mut args = vec!["check"];
    match read {
        None => {}
        Some("") => args.push("--read-data"),
        Some(s) => {
            subset = format!("--read-data-subset={s}");
            args.push(&subset);
        }
    }
    let out = call(restic, repo, &args, timeout, shutdown).await?;
    if let Some(e) = failure(&out, repo) {
        return Err(e);
    }
    Ok(check_result(&out.stdout, &out.stderr))
}

/// Pack counts and notes from `check`'s text output.
pub fn check_result(stdout: &str, stderr: &str) -> CheckResult {
    let mut r = CheckResult::default();
    for line in stdout.lines().map(str::trim) {
        // 0.14: "read group #3 of 1 data packs (out of total 2 packs in 10 groups)"
        if let Some(rest) = line.strip_prefix("read group #") {
            let words: Vec<&str> = rest.split_whitespace().collect();
            r.packs_read = words.get(2).and_then(|w| w.parse().ok());
            r.packs_total = words
                .iter()
                .position(|w| *w == "total")
                .and_then(|i| words.get(i + 1))
                .and_then(|w| w.parse().ok());
        }
        // Progress: "[0:00] 100.00%  2 / 2 packs"
        if line.ends_with(" packs")
            && let Some((_, tail)) = line.split_once('%')
        {
            let nums: Vec<u64> = tail
                .split_whitespace()
                .filter_map(|w| w.parse().ok())
                .collect();
            if let [done, _total] = nums[..] {
                r.packs_read = Some(done);
            }
        }
    }
    for line in stderr.lines().chain(stdout.lines()).map(str::trim) {
        if line.contains("not referenced in any index") {
            r.notes.push(format!(
                "{line} (left by an interrupted backup; harmless, `prune` removes it)"
            ));
        }
    }
    r
}

/// One entry of `restic ls --json`.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
pub struct LsNode {
    pub path: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub size: Option<u64>,
    #[serde(default)]
    pub mtime: Option<String>,
}

/// `restic ls --json SNAPSHOT`: every node (the leading snapshot line is
/// skipped).
pub async fn ls(
    restic: &Restic,
    repo: &Repository,
    snapshot: &str,
    timeout: Duration,
    shutdown: &Shutdown,
) -> Result<Vec<LsNode>, OpError> {
    let mut c =
        ResticCall::new(restic, repo, ["ls", "--json", "--no-lock", snapshot]).timeout(timeout);
    // A listing can be longer than the capture cap: collect it line by line.
    c.spec.grace = Duration::from_secs(10);
    let mut nodes = Vec::new();
    let out = process::run(
        &c.spec,
        shutdown,
        |line| {
            if line.contains("\"struct_type\":\"node\"")
                && let Ok(n) = serde_json::from_str::<LsNode>(line)
            {
                nodes.push(n);
            }
        },
        |_| {},
    )
    .await
    .map_err(|e| spawn_error(&e))?;
    if let Some(e) = failure(&out, repo) {
        return Err(e);
    }
    Ok(nodes)
}

/// `restic restore SNAPSHOT --target DIR --verify` (restic reads every
/// restored file back and checks it against its blob hashes), limited to
/// `include` when not empty.
pub async fn restore(
    restic: &Restic,
    repo: &Repository,
    snapshot: &str,
    target: &Path,
    include: &[String],
    timeout: Duration,
    shutdown: &Shutdown,
) -> Result<(), OpError> {
    let mut args: Vec<String> = vec![
        "restore".into(),
        snapshot.into(),
        "--no-lock".into(),
        "--verify".into(),
        "--target".into(),
        target.to_string_lossy().into_owned(),
    ];
    for i in include {
        args.extend(["--include".into(), i.clone()]);
    }
    let c = ResticCall::new(restic, repo, args).timeout(timeout);
    let out = process::run(&c.spec, shutdown, |_| {}, |_| {})
        .await
        .map_err(|e| spawn_error(&e))?;
    failure(&out, repo).map_or(Ok(()), Err)
}

/// `restic dump SNAPSHOT PATH`, its bytes handed to `on_chunk` as they come.
pub async fn dump_stream(
    restic: &Restic,
    repo: &Repository,
    snapshot: &str,
    path: &str,
    timeout: Duration,
    shutdown: &Shutdown,
    on_chunk: impl FnMut(&[u8]),
) -> Result<(), OpError> {
    let c = ResticCall::new(restic, repo, ["dump", "--no-lock", snapshot, path]).timeout(timeout);
    let out = process::run_stream(&c.spec, shutdown, on_chunk)
        .await
        .map_err(|e| spawn_error(&e))?;
    failure(&out, repo).map_or(Ok(()), Err)
}

/// How `restic dump … | consumer` ended.
#[derive(Debug)]
pub struct DumpPipe {
    /// restic's side.
    pub dump: Result<(), OpError>,
    /// The consumer's output (its stdout and stderr tails, how it ended).
    pub consumer: Output,
}

/// `restic dump SNAPSHOT PATH | consumer` through an OS pipe.
pub async fn dump_pipe(
    restic: &Restic,
    repo: &Repository,
    snapshot: &str,
    path: &str,
    consumer: &process::Spec,
    timeout: Duration,
    shutdown: &Shutdown,
) -> Result<DumpPipe, OpError> {
    let c = ResticCall::new(restic, repo, ["dump", "--no-lock", snapshot, path]).timeout(timeout);
    let (dump, consumer) = process::run_pipe(&c.spec, consumer, shutdown)
        .await
        .map_err(|e| spawn_error(&e))?;
    Ok(DumpPipe {
        dump: failure(&dump, repo).map_or(Ok(()), Err),
        consumer,
    })
}
