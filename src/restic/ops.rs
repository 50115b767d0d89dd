//! The restic operations restic-manager performs, each one call.

use std::path::Path;
use std::time::Duration;

use super::error::{ErrorClass, classify, explain};
use super::output::{self, BackupMessage, BackupStatus, BackupSummary, Snapshot};
use super::{Repository, Restic, ResticCall};
use crate::model::Failure;
use crate::process::{self, Ended, Output, Shutdown, Stdin};

/// Turns how restic ended into an error (or `None` on exit 0).
pub fn failure(out: &Output, repo: &Repository) -> Option<Failure> {
    if out.ended == Ended::Exited(0) {
        return None;
    }
    // restic 0.18+ prints its errors as JSON under `--json`: text from here on.
    let stderr = output::stderr_text(&out.stderr);
    let (class, message) = match out.ended {
        Ended::Exited(0) => return None,
        Ended::Exited(code) => {
            let class = classify(code, &stderr);
            (class, explain(class, &repo.display, &stderr))
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
        Ended::Stalled => (ErrorClass::Unreachable, stalled(out, repo)),
    };
    Some(Failure::new(class, message).with_stderr(stderr))
}

/// [`failure`], plus one question to a REST server when restic says
/// "wrong password": a deleted REST repository reads that way on every
/// restic version (see `rest_config`).
pub async fn checked_failure(out: &Output, repo: &Repository) -> Option<Failure> {
    let mut e = failure(out, repo)?;
    if e.class == ErrorClass::WrongPassword && super::rest_config::missing(repo).await {
        e.class = ErrorClass::RepositoryMissing;
        e.message = format!(
            "repository `{}` does not exist (its server answers 404 Not Found for `config`, although restic said \"wrong password or no key found\"); run `restic-manager setup` to create it",
            repo.display
        );
    }
    Some(e)
}

/// Why restic was stopped for retrying without progress, with restic's
/// last retry line (what failed, and how).
fn stalled(out: &Output, repo: &Repository) -> String {
    let secs = repo.stall.map_or(0, |d| d.as_secs());
    let last = out
        .stderr
        .lines()
        .rev()
        .find(|l| l.contains("returned error, retrying after"))
        .map(|l| l.trim_start_matches(|c: char| c == '\x1b' || c.is_whitespace()))
        .map(|l| l.strip_prefix("[2K").unwrap_or(l));
    let mut msg = format!(
        "destination `{}` stopped answering: restic retried for {secs}s without progress on `{}` and was stopped",
        repo.destination, repo.display
    );
    if let Some(l) = last {
        msg.push_str(&format!(" (last: {})", l.trim()));
    }
    msg.push_str(
        "; check that the server is up and reachable from this host, or raise `stall_timeout_seconds` if it is only slow",
    );
    msg
}

/// restic could not be started: the one conversion every caller uses.
impl From<process::SpawnError> for Failure {
    fn from(e: process::SpawnError) -> Self {
        Failure::new(ErrorClass::ResticMissing, e.to_string())
    }
}

async fn call(
    restic: &Restic,
    repo: &Repository,
    args: &[&str],
    timeout: Duration,
    shutdown: &Shutdown,
) -> Result<Output, Failure> {
    quiet(
        ResticCall::new(restic, repo, args.iter().copied()).timeout(timeout),
        shutdown,
    )
    .await
}

/// Runs `c`, its output captured and not streamed anywhere.
async fn quiet(c: ResticCall, shutdown: &Shutdown) -> Result<Output, Failure> {
    c.spec
        .run(shutdown, |_| {}, |_| {})
        .await
        .map_err(Failure::from)
}

/// Whether the repository exists (restic can open its config).
pub async fn exists(
    restic: &Restic,
    repo: &Repository,
    shutdown: &Shutdown,
) -> Result<bool, Failure> {
    if let Some(p) = repo.local_path() {
        return Ok(p.join("config").is_file());
    }
    // restic 0.18+ retries a missing S3 bucket for about 14 minutes before
    // it says "Is there a repository…"; its first retry note is answer
    // enough: the repository does not exist (`init` creates the bucket).
    let c = ResticCall::new(restic, repo, ["cat", "config"]).timeout(Duration::from_secs(300));
    let (trigger, local) = Shutdown::new();
    let no_bucket = std::sync::atomic::AtomicBool::new(false);
    let run = c.spec.run(
        &local,
        |_| {},
        |line| {
            if output::is_retry_chatter(line) && output::says_no_bucket(line) {
                no_bucket.store(true, std::sync::atomic::Ordering::Relaxed);
                trigger.fire(2);
            }
        },
    );
    tokio::pin!(run);
    let mut outer = shutdown.clone();
    let out = tokio::select! {
        o = &mut run => o,
        () = outer.wait() => {
            trigger.fire(outer.signal().unwrap_or(2));
            run.await
        }
    }
    .map_err(Failure::from)?;
    if no_bucket.load(std::sync::atomic::Ordering::Relaxed) && shutdown.signal().is_none() {
        return Ok(false);
    }
    match checked_failure(&out, repo).await {
        None => Ok(true),
        Some(e) if e.class == ErrorClass::RepositoryMissing => Ok(false),
        Some(e) => Err(e),
    }
}

/// `restic init`; with `chunker_from`, with the chunker parameters of that
/// repository, so that `restic copy` from it deduplicates.
pub async fn init(
    restic: &Restic,
    repo: &Repository,
    chunker_from: Option<&Repository>,
    shutdown: &Shutdown,
) -> Result<(), Failure> {
    let args: &[&str] = match chunker_from {
        Some(_) => &["init", "--copy-chunker-params"],
        None => &["init"],
    };
    let mut c =
        ResticCall::new(restic, repo, args.iter().copied()).timeout(Duration::from_secs(600));
    if let Some(from) = chunker_from {
        with_from(&mut c, from);
    }
    let out = quiet(c, shutdown).await?;
    match failure(&out, repo) {
        None => Ok(()),
        Some(mut e) => {
            let params = chunker_from
                .map(|f| format!(" (with the chunker parameters of `{}`)", f.display))
                .unwrap_or_default();
            e.message = format!(
                "cannot create repository `{}`{params}: {}",
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
pub async fn unlock_stale(restic: &Restic, repo: &Repository) -> Result<(), Failure> {
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
) -> Result<Vec<Snapshot>, Failure> {
    let mut args = vec!["snapshots", "--json", "--no-lock"];
    if let Some(t) = tag {
        args.extend(["--tag", t]);
    }
    let out = call(restic, repo, &args, Duration::from_secs(600), shutdown).await?;
    if let Some(e) = checked_failure(&out, repo).await {
        return Err(e);
    }
    output::snapshots(&out.stdout)
        .map_err(|message| Failure::new(ErrorClass::Other, message).with_stderr(out.stderr.clone()))
}

/// One service's snapshots in one destination, as `snapshots --json` and
/// the dashboard's `/api/snapshots/NAME` give them (fields in the order
/// the document always had).
#[derive(Debug, Clone, serde::Serialize)]
pub struct SnapshotGroup {
    pub destination: String,
    /// Why the repository could not be read (then `snapshots` is empty).
    pub error: Option<String>,
    /// The location with credentials replaced by `***` (empty when the
    /// repository could not be opened).
    pub repository: String,
    pub service: String,
    pub snapshots: Vec<Snapshot>,
}

impl SnapshotGroup {
    /// Reads the snapshots carrying `tag` (a service's tag) from `repo`,
    /// the repository of `destination` or why it could not be opened.
    pub async fn read(
        restic: &Restic,
        service: &str,
        tag: &str,
        destination: &str,
        repo: Result<Repository, String>,
        shutdown: &Shutdown,
    ) -> SnapshotGroup {
        let (repository, res) = match repo {
            Ok(r) => (
                r.display.clone(),
                snapshots(restic, &r, Some(tag), shutdown)
                    .await
                    .map_err(|e| e.message),
            ),
            Err(e) => (String::new(), Err(e)),
        };
        let (snapshots, error) = match res {
            Ok(list) => (list, None),
            Err(e) => (Vec::new(), Some(e)),
        };
        SnapshotGroup {
            destination: destination.to_string(),
            error,
            repository,
            service: service.to_string(),
            snapshots,
        }
    }
}

/// The full 64-character id of a snapshot restic named by its short id:
/// restic 0.14's backup summary and `copy`'s `snapshot 1a2b3c4d saved` on
/// every version. `--json` and history always hold the full id, whatever
/// the restic; the short form is for tables. A local repository answers
/// from its `snapshots/` folder (no restic call); any other with one
/// `restic snapshots --json --no-lock ID`. `id` itself when neither finds
/// exactly one snapshot.
pub async fn full_snapshot_id(
    restic: &Restic,
    repo: &Repository,
    id: &str,
    shutdown: &Shutdown,
) -> String {
    if id.len() >= 64 || id.is_empty() || !id.chars().all(|c| c.is_ascii_hexdigit()) {
        return id.to_string();
    }
    if let Some(p) = repo.local_path() {
        let found: Vec<String> = std::fs::read_dir(p.join("snapshots"))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| n.len() == 64 && n.starts_with(id))
            .collect();
        if let [one] = found.as_slice() {
            return one.clone();
        }
    }
    let Ok(out) = call(
        restic,
        repo,
        &["snapshots", "--json", "--no-lock", id],
        Duration::from_secs(120),
        shutdown,
    )
    .await
    else {
        return id.to_string();
    };
    match output::snapshots(&out.stdout).as_deref() {
        Ok([one]) if one.id.starts_with(id) => one.id.clone(),
        _ => id.to_string(),
    }
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
) -> Result<BackupResult, Failure> {
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
    let out = call
        .spec
        .run(
            shutdown,
            |line| {
                if let Some(BackupMessage::Status(s)) = output::backup_line(line) {
                    on_status(&s);
                }
            },
            on_stderr,
        )
        .await
        .map_err(Failure::from)?;
    let warning = out.ended == Ended::Exited(3);
    if !warning && let Some(e) = checked_failure(&out, repo).await {
        return Err(e);
    }
    let mut summary = output::backup_summary(&out.stdout).ok_or_else(|| {
        Failure::new(
            ErrorClass::Other,
            format!(
                "restic finished on `{}` but printed no backup summary: {}",
                repo.display,
                super::error::last_line(&out.stderr)
            ),
        )
        .with_stderr(out.stderr.clone())
    })?;
    if let Some(id) = &summary.snapshot_id {
        summary.snapshot_id = Some(full_snapshot_id(restic, repo, id, shutdown).await);
    }
    Ok(BackupResult {
        warning,
        summary,
        stderr: out.stderr,
        duration: out.duration,
    })
}

/// `restic backup --stdin`: a backup of what arrives on restic's stdin
/// (a dump, a streamed volume), stored as `filename`. stdin is piped; the
/// caller bounds the run, since a restic reading stdin is not watched for
/// stalls.
pub fn backup_stdin(
    restic: &Restic,
    repo: &Repository,
    host: &str,
    tags: &[String],
    filename: &str,
) -> ResticCall {
    let mut args: Vec<&str> = vec!["backup", "--json", "--quiet", "--host", host];
    for t in tags {
        args.extend(["--tag", t]);
    }
    args.extend(["--stdin", "--stdin-filename", filename]);
    let mut call = ResticCall::new(restic, repo, args);
    call.spec = call.spec.stdin(Stdin::Piped);
    call.spec.stall = None;
    call
}

/// What `forget` did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ForgetResult {
    pub kept: usize,
    pub removed: usize,
    /// Whether unreferenced data was pruned in this run.
    pub pruned: bool,
}

/// One group of a `forget` plan.
#[derive(Debug, Clone, Default)]
pub struct PlanGroup {
    /// Snapshots the policy keeps.
    pub kept: usize,
    /// Full IDs of the snapshots the policy removes.
    pub remove: Vec<String>,
}

/// A `forget --dry-run` plan, per group.
#[derive(Debug, Clone, Default)]
pub struct ForgetPlan {
    pub groups: Vec<PlanGroup>,
}

impl ForgetPlan {
    pub fn result(&self) -> ForgetResult {
        ForgetResult {
            kept: self.groups.iter().map(|g| g.kept).sum(),
            removed: self.groups.iter().map(|g| g.remove.len()).sum(),
            pruned: false,
        }
    }

    /// Every snapshot the plan removes, in restic's order.
    pub fn remove_ids(&self) -> Vec<String> {
        self.groups
            .iter()
            .flat_map(|g| g.remove.iter().cloned())
            .collect()
    }
}

/// `restic forget --dry-run` for one service's snapshots (this host, the
/// service tag), grouped by host and tags: the plan, nothing removed. The
/// policy is evaluated only here; [`forget_ids`] then removes exactly what
/// the plan listed.
pub async fn forget_plan(
    restic: &Restic,
    repo: &Repository,
    host: &str,
    tag: &str,
    keep: &[String],
    timeout: Duration,
    shutdown: &Shutdown,
) -> Result<ForgetPlan, Failure> {
    let mut args: Vec<&str> = vec![
        "forget",
        "--json",
        "--host",
        host,
        "--tag",
        tag,
        "--group-by",
        "host,tags",
        "--dry-run",
    ];
    args.extend(keep.iter().map(String::as_str));
    let out = call(restic, repo, &args, timeout, shutdown).await?;
    if let Some(e) = failure(&out, repo) {
        return Err(e);
    }
    let groups = output::forget_groups(&out.stdout)
        .into_iter()
        .map(|g| PlanGroup {
            kept: g.keep.as_ref().map_or(0, Vec::len),
            remove: g
                .remove
                .unwrap_or_default()
                .into_iter()
                .map(|s| s.id)
                .collect(),
        })
        .collect();
    Ok(ForgetPlan { groups })
}

/// IDs per `forget` call: far below the kernel's argument limit.
const IDS_PER_CALL: usize = 1000;

/// `restic forget [--prune] ID...`: removes exactly these snapshots (no
/// policy is evaluated, so a snapshot made since the plan is never
/// touched). One call up to 1000 IDs; `--prune` goes with the last one.
pub async fn forget_ids(
    restic: &Restic,
    repo: &Repository,
    ids: &[String],
    prune: bool,
    timeout: Duration,
    shutdown: &Shutdown,
) -> Result<(), Failure> {
    let chunks: Vec<&[String]> = ids.chunks(IDS_PER_CALL).collect();
    for (i, chunk) in chunks.iter().enumerate() {
        let mut args: Vec<&str> = vec!["forget"];
        if prune && i + 1 == chunks.len() {
            args.push("--prune");
        }
        args.extend(chunk.iter().map(String::as_str));
        let out = call(restic, repo, &args, timeout, shutdown).await?;
        if let Some(e) = failure(&out, repo) {
            return Err(e);
        }
    }
    Ok(())
}

/// `restic prune`.
pub async fn prune(
    restic: &Restic,
    repo: &Repository,
    timeout: Duration,
    shutdown: &Shutdown,
) -> Result<(), Failure> {
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

/// `restic copy SNAPSHOT` from `from` into `to`; returns the id of the copy.
pub async fn copy(
    restic: &Restic,
    from: &Repository,
    to: &Repository,
    snapshot: &str,
    tag: &str,
    timeout: Duration,
    shutdown: &Shutdown,
) -> Result<Option<String>, Failure> {
    let mut c = ResticCall::new(restic, to, ["copy", snapshot]).timeout(timeout);
    with_from(&mut c, from);
    let out = quiet(c, shutdown).await?;
    if let Some(e) = failure(&out, to) {
        return Err(e);
    }
    // `copy` has no JSON on 0.14, but says `snapshot 1a2b3c4d saved`
    // (0.19: `…saved, copied from source snapshot 5e6f7a8b`); only if that
    // line is missing, find the copy by its `original` field (one more key
    // derivation, ≈0.4 s of CPU).
    if let Some(id) = copied_id(&out.stdout) {
        return Ok(Some(full_snapshot_id(restic, to, &id, shutdown).await));
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

/// The short id in `copy`'s `snapshot 1a2b3c4d saved` line (0.14–0.18),
/// or `snapshot 1a2b3c4d saved, copied from source snapshot 5e6f7a8b`
/// (0.19).
fn copied_id(stdout: &str) -> Option<String> {
    stdout.lines().rev().find_map(|l| {
        let rest = l.trim().strip_prefix("snapshot ")?;
        let (id, tail) = rest.split_once(' ')?;
        (tail == "saved" || tail.starts_with("saved,"))
            .then_some(id)
            .filter(|id| !id.is_empty() && id.chars().all(|c| c.is_ascii_hexdigit()))
            .map(str::to_string)
    })
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
) -> Result<CheckResult, Failure> {
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
    if let Some(e) = checked_failure(&out, repo).await {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_copied_snapshot_of_every_version() {
        for (out, want) in [
            (
                "[0:00] 100.00%  2 / 2 packs copied\n\nsnapshot 718af442 saved\n",
                Some("718af442"),
            ),
            (
                "  copy started, this may take a while...\nsnapshot fa393adf saved, copied from source snapshot b08bae4c\n",
                Some("fa393adf"),
            ),
            ("snapshot is empty\n", None),
            ("", None),
        ] {
            assert_eq!(copied_id(out).as_deref(), want, "{out}");
        }
    }
}
