//! Restore drills: restore the latest snapshot (or a random sample of its
//! files) into a temporary folder and compare what came back
//!
//! * with restic's own metadata: the size and permission bits one
//!   `restic ls --json` lists, and restic's per-blob hashes
//!   (`restore --verify`);
//! * with the live source file, when its size and mtime are still those of
//!   the snapshot (then its content must be too: a difference means bit rot
//!   on the source disk or a damaged backup), hashed with SHA-256 in-process
//!   on a few threads;
//! * for a file that differs from its source only, with `restic dump` of
//!   the same file, which tells which copy is wrong. One restore and one
//!   listing per drill, whatever the sample size: each restic start costs a
//!   key derivation and loading the index.
//!
//! Dumps (snapshots tagged `dump:NAME`) are checked by streaming them with
//! `restic dump` (never into a file) into the check
//! [`crate::sources::dump::drill_check`] picks: the dump's own
//! `verify_command`, else the service's, else a load into its
//! `verify_scratch_database`, else its preset's (`pg_restore` reading the
//! whole archive, pg_dumpall's or mariadb-dump's completion line, a load
//! into an in-memory SQLite); a `command` dump is read back and its size
//! compared. The check's name is in the detail (`dumps[].check`).
//!
//! The temporary folder lives under `<state_directory>/verify-tmp/` and is
//! removed afterwards, on failure and on a signal too (a guard); folders
//! left by a process that was killed outright are swept by the next drill.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rand::seq::SliceRandom;
use sha2::{Digest, Sha256};

use super::{Detail, DrillDetail, DumpDetail, Verifier, VerifyReport};
use crate::config::Service;
use crate::config::dump::Dump;
use crate::model::{Failure, Outcome};
use crate::process::Shutdown;
use crate::restic::ls::{self, Node as LsNode};
use crate::restic::ops;
use crate::restic::output::Snapshot;
use crate::restic::restore::{DumpFile, DumpPipe, Restore};
use crate::restic::{ErrorClass, Repository};
use crate::sources::dump::{self, DrillCheck, DumpCommand, drill_check};

/// The folder (under the state directory) that holds drill restores.
pub const TMP_DIR: &str = "verify-tmp";

/// Mismatches listed in the detail (the count is always complete).
const MAX_LISTED: usize = 20;

/// Bytes of a dump's end kept to find its completion line.
const TAIL: usize = 512;

/// One drill of one repository.
pub struct Drill<'a, 'v> {
    pub verifier: &'a Verifier<'v>,
    pub svc: &'a Service,
    pub repo: &'a Repository,
    pub timeout: Duration,
}

/// A temporary folder removed on drop.
struct TempTree {
    path: PathBuf,
}

impl TempTree {
    /// A fresh `drill-PID-N` folder in `base`, after sweeping folders of
    /// earlier drills whose process is gone.
    fn create(base: &Path) -> std::io::Result<TempTree> {
        std::fs::create_dir_all(base)?;
        sweep(base);
        let pid = std::process::id();
        for n in 0..1000 {
            let path = base.join(format!("drill-{pid}-{n}"));
            match std::fs::create_dir(&path) {
                Ok(()) => return Ok(TempTree { path }),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e),
            }
        }
        Err(std::io::Error::other("no free temporary folder name"))
    }
}

impl Drop for TempTree {
    fn drop(&mut self) {
        // restic restores read-only folders as read-only; make them
        // writable so the removal cannot stop half-way.
        make_writable(&self.path);
        let _ = std::fs::remove_dir_all(&self.path);
        if let Some(parent) = self.path.parent() {
            // Only succeeds when empty: no other drill is running.
            let _ = std::fs::remove_dir(parent);
        }
    }
}

fn make_writable(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    for e in rd.flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            make_writable(&e.path());
        }
    }
}

/// Removes `drill-PID-*` folders whose process no longer exists.
fn sweep(base: &Path) {
    let Ok(rd) = std::fs::read_dir(base) else {
        return;
    };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix("drill-")
            .and_then(|r| r.split('-').next())
            .and_then(|p| p.parse::<i32>().ok())
        else {
            continue;
        };
        let alive = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok();
        if !alive {
            make_writable(&e.path());
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// SHA-256 and length of a file.
fn hash_path(path: &Path) -> std::io::Result<(String, u64)> {
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut n: u64 = 0;
    loop {
        let k = f.read(&mut buf)?;
        if k == 0 {
            break;
        }
        h.update(&buf[..k]);
        n += k as u64;
    }
    Ok((hex(&h.finalize()), n))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// restic's snapshot time as unix nanoseconds, for ordering.
fn time_ns(t: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(t)
        .ok()
        .and_then(|d| d.timestamp_nanos_opt())
        .unwrap_or(0)
}

/// Whether restic's `--include` would read `path` as a pattern rather than
/// literally (such files are left out of a sample).
fn has_glob(path: &str) -> bool {
    path.contains(['*', '?', '[', ']', '\\'])
}

/// The live file a snapshot path came from. Backed up by absolute path
/// (as `run` does), restic keeps the whole path; a relative source is
/// stored under its last name at the top (`conf/app` → `/app`), so `/app/x`
/// is `conf/app/x`.
fn live_path(snapshot_paths: &[String], node: &str) -> Option<PathBuf> {
    let under = |p: &&String| {
        p.starts_with('/')
            && (node == p.as_str()
                || node
                    .strip_prefix(p.as_str())
                    .is_some_and(|r| r.starts_with('/')))
    };
    if snapshot_paths.iter().any(|p| under(&p)) {
        return Some(PathBuf::from(node));
    }
    let rel = node.trim_start_matches('/');
    let (first, rest) = rel.split_once('/').unwrap_or((rel, ""));
    let mut matches = snapshot_paths
        .iter()
        .map(Path::new)
        .filter(|p| p.file_name().is_some_and(|n| n == first));
    let src = matches.next()?;
    if matches.next().is_some() {
        // Two sources with one name: restic renamed one; do not guess.
        return None;
    }
    Some(if rest.is_empty() {
        src.to_path_buf()
    } else {
        src.join(rest)
    })
}

/// What [`Drill::prepare`] found: the file snapshot and the newest
/// snapshot of each dump (or why they could not be listed), and the file
/// snapshot's listing.
pub struct Prepared {
    chosen: Result<(Option<Snapshot>, BTreeMap<String, Snapshot>), Failure>,
    nodes: Option<Result<Vec<LsNode>, Failure>>,
}

/// The snapshots a drill restores: the newest file snapshot and the newest
/// of each dump, among this host's snapshots when there are any (the live
/// comparison only means something for them).
fn choose(list: &[Snapshot], host: &str) -> (Option<Snapshot>, BTreeMap<String, Snapshot>) {
    let mine: Vec<&Snapshot> = list.iter().filter(|s| s.hostname == host).collect();
    let list: Vec<&Snapshot> = if mine.is_empty() {
        list.iter().collect()
    } else {
        mine
    };
    let files = list
        .iter()
        .copied()
        .filter(|s| !s.tags.iter().any(|t| t.starts_with("dump:")))
        .max_by_key(|s| time_ns(&s.time))
        .cloned();
    let mut dumps: BTreeMap<String, Snapshot> = BTreeMap::new();
    for s in &list {
        for t in s.tags.iter().filter_map(|t| t.strip_prefix("dump:")) {
            let newer = dumps
                .get(t)
                .is_none_or(|d| time_ns(&d.time) < time_ns(&s.time));
            if newer {
                dumps.insert(t.to_string(), (*s).clone());
            }
        }
    }
    (files, dumps)
}

/// What comparing one file found.
enum Found {
    Ok,
    Bad(String),
}

impl Drill<'_, '_> {
    fn note(&self, s: &str) {
        (self.verifier.note)(&format!(
            "{} → {}: {s}",
            self.svc.name, self.repo.destination
        ));
    }

    /// The read-only part of a drill (no lock: `snapshots` and `ls`), which
    /// [`super::Verifier`] runs while `restic check` runs: which snapshots
    /// to drill, and the listing of the file snapshot.
    pub async fn prepare(&self) -> Prepared {
        let v = self.verifier;
        let tag = self.svc.tag();
        let host = &v.config.settings.host;
        // The newest snapshot of this host is almost always the one to
        // drill: list it while the snapshot list is read, rather than
        // after (each restic start derives the key again).
        let (list, latest) = tokio::join!(
            v.retry_locked(self.repo, || {
                ops::snapshots(v.restic, self.repo, Some(&tag), &v.shutdown)
            }),
            ls::latest_nodes(v.restic, self.repo, host, &tag, self.timeout, &v.shutdown)
        );
        let list = match list {
            Ok(l) => l,
            Err(e) => {
                return Prepared {
                    chosen: Err(e),
                    nodes: None,
                };
            }
        };
        let (files, dumps) = choose(&list, host);
        let nodes = match (&files, latest) {
            (Some(s), Ok((Some(id), nodes))) if id == s.id => Some(Ok(nodes)),
            (Some(s), _) => Some(
                v.retry_locked(self.repo, || {
                    ls::nodes(v.restic, self.repo, &s.id, self.timeout, &v.shutdown)
                })
                .await,
            ),
            (None, _) => None,
        };
        Prepared {
            chosen: Ok((files, dumps)),
            nodes,
        }
    }

    /// The drill; `prepared` when [`Drill::prepare`] already ran.
    pub async fn run(&self, r: &mut VerifyReport, prepared: Option<Prepared>) {
        let v = self.verifier;
        let prepared = match prepared {
            Some(p) => p,
            None => self.prepare().await,
        };
        let (files, dumps) = match prepared.chosen {
            Ok(c) => c,
            Err(e) => {
                r.fail(e.class, format!("cannot list snapshots: {}", e.message));
                return;
            }
        };
        if files.is_none() && dumps.is_empty() {
            r.warn(format!(
                "no snapshot of service `{}` in `{}` to restore; run a backup first",
                self.svc.name, self.repo.destination
            ));
            r.detail = Detail::Drill(DrillDetail {
                snapshot: Some(None),
                ..DrillDetail::default()
            });
            return;
        }
        let base = v.config.settings.state_directory.join(TMP_DIR);
        let tmp = match TempTree::create(&base) {
            Ok(t) => t,
            Err(e) => {
                r.fail(
                    ErrorClass::PermissionDenied,
                    format!(
                        "cannot create a temporary folder in `{}` for the drill: {e}",
                        base.display()
                    ),
                );
                return;
            }
        };
        let mut detail = DrillDetail::default();
        if let (Some(s), Some(nodes)) = (&files, prepared.nodes) {
            self.files(r, s, nodes, &tmp.path, &mut detail).await;
        }
        let mut dump_results = Vec::new();
        for (name, s) in &dumps {
            if v.shutdown.signal().is_some() {
                break;
            }
            dump_results.push(self.dump(r, name, s).await);
        }
        if !dumps.is_empty() {
            detail.dumps = Some(dump_results);
        }
        drop(tmp);
        r.detail = Detail::Drill(detail);
        if v.shutdown.signal().is_some() && r.error.is_none() {
            r.fail(ErrorClass::Interrupted, "interrupted during the drill");
        }
    }

    /// Restores (a sample of) the files of `snap` and compares them.
    async fn files(
        &self,
        r: &mut VerifyReport,
        snap: &Snapshot,
        nodes: Result<Vec<LsNode>, Failure>,
        tmp: &Path,
        detail: &mut DrillDetail,
    ) {
        let v = self.verifier;
        detail.snapshot = Some(Some(snap.short().to_string()));
        let nodes = match nodes {
            Ok(n) => n,
            Err(e) => {
                r.fail(
                    e.class,
                    format!("cannot list snapshot {}: {}", snap.short(), e.message),
                );
                return;
            }
        };
        let all: Vec<&LsNode> = nodes.iter().filter(|n| n.kind == "file").collect();
        let (sample, sampled) = self.sample(&all);
        detail.files_in_snapshot = Some(all.len() as u64);
        detail.sampled = Some(sampled);
        if sample.is_empty() {
            detail.files_checked = Some(0);
            return;
        }
        self.note(&format!(
            "restoring {} of {} files of snapshot {}",
            sample.len(),
            all.len(),
            snap.short()
        ));
        let include: Vec<String> = if sampled {
            sample.iter().map(|n| n.path.clone()).collect()
        } else {
            Vec::new()
        };
        let what = Restore {
            snapshot: &snap.id,
            target: tmp,
            includes: &include,
            no_lock: true,
            verify: true,
            timeout: Some(self.timeout),
        };
        if let Err(e) = v
            .retry_locked(self.repo, || {
                crate::restic::restore::restore(v.restic, self.repo, &what, &v.shutdown)
            })
            .await
        {
            r.fail(
                e.class,
                format!("restoring snapshot {} failed: {}", snap.short(), e.message),
            );
            return;
        }
        self.note(&format!(
            "comparing {} files with restic's metadata and the live source",
            sample.len()
        ));
        // Hashing happens in-process on a few threads; `restic dump` only
        // runs to confirm a file whose content disagrees with the source.
        let checks = {
            let tmp = tmp.to_path_buf();
            let paths = snap.paths.clone();
            let nodes: Vec<LsNode> = sample.iter().map(|n| (*n).clone()).collect();
            let stop = v.shutdown.clone();
            tokio::task::spawn_blocking(move || compare_all(&tmp, &paths, &nodes, &stop))
                .await
                .unwrap_or_default()
        };
        self.judge_files(r, snap, checks, detail).await;
    }

    /// Counts what comparing the restored files found, confirms a content
    /// mismatch with `restic dump`, and records it all in `detail`.
    async fn judge_files(
        &self,
        r: &mut VerifyReport,
        snap: &Snapshot,
        checks: Vec<FileCheck>,
        detail: &mut DrillDetail,
    ) {
        let v = self.verifier;
        let (mut bytes, mut live_same, mut live_changed, mut live_missing) =
            (0u64, 0u64, 0u64, 0u64);
        let mut bad: Vec<String> = Vec::new();
        let mut checked = 0u64;
        for c in checks {
            checked += 1;
            bytes += c.size;
            match c.verdict {
                Verdict::Live(Live::Same) => live_same += 1,
                Verdict::Live(Live::Changed) => live_changed += 1,
                Verdict::Live(Live::Missing) => live_missing += 1,
                Verdict::Bad(m) => bad.push(m),
                Verdict::Differs {
                    path,
                    sum,
                    size,
                    message,
                } => {
                    if v.shutdown.signal().is_some() {
                        break;
                    }
                    // Which copy is wrong: when `restic dump` agrees with
                    // the restore, the source changed under its mtime.
                    match self.compare_dump(&snap.id, &path, &sum, size).await {
                        Found::Ok => bad.push(message),
                        Found::Bad(m) => bad.push(m),
                    }
                }
            }
        }
        detail.files_checked = Some(checked);
        detail.bytes_restored = Some(bytes);
        detail.live_identical = Some(live_same);
        detail.live_changed_since = Some(live_changed);
        detail.live_missing = Some(live_missing);
        detail.mismatches = Some(bad.len() as u64);
        if !bad.is_empty() {
            detail.mismatched_files = Some(bad.iter().take(MAX_LISTED).cloned().collect());
            let more = if bad.len() > 1 {
                format!(" (and {} more; see the detail)", bad.len() - 1)
            } else {
                String::new()
            };
            r.fail(
                ErrorClass::DrillMismatch,
                format!(
                    "restore drill of snapshot {}: {} of {} files do not match: {}{more}",
                    snap.short(),
                    bad.len(),
                    checked,
                    bad[0]
                ),
            );
        }
    }

    /// The files to restore: all of them, or a random sample of
    /// `drill_sample_files` (then true) without glob characters in their
    /// path (restic's `--include` would read them as patterns).
    fn sample<'n>(&self, all: &[&'n LsNode]) -> (Vec<&'n LsNode>, bool) {
        let want = self.svc.verify.drill_sample_files as usize;
        let sampled = all.len() > want;
        let sample: Vec<&LsNode> = if sampled {
            let mut pool: Vec<&LsNode> =
                all.iter().copied().filter(|n| !has_glob(&n.path)).collect();
            pool.shuffle(&mut rand::rng());
            pool.truncate(want);
            pool
        } else {
            all.to_vec()
        };
        (sample, sampled)
    }

    /// `restic dump --no-lock` of one file, within the drill's timeout.
    fn dump_of<'a>(&self, snapshot: &'a str, path: &'a str) -> DumpFile<'a> {
        DumpFile {
            snapshot,
            path,
            tag: None,
            no_lock: true,
            timeout: Some(self.timeout),
        }
    }

    /// `restic dump` of the same file must hash the same as the restore.
    async fn compare_dump(&self, snapshot: &str, path: &str, sum: &str, size: u64) -> Found {
        let v = self.verifier;
        let mut h = Sha256::new();
        let mut n: u64 = 0;
        let res = self
            .dump_of(snapshot, path)
            .stream(v.restic, self.repo, &v.shutdown, |c| {
                h.update(c);
                n += c.len() as u64;
            })
            .await;
        if let Err(e) = res {
            return Found::Bad(format!("`{path}`: `restic dump` failed: {}", e.message));
        }
        let dumped = hex(&h.finalize());
        if dumped != sum || n != size {
            return Found::Bad(format!(
                "`{path}`: the restored file (sha256 {}…, {size} bytes) differs from `restic dump` (sha256 {}…, {n} bytes)",
                &sum[..12],
                &dumped[..12]
            ));
        }
        Found::Ok
    }

    /// Streams the dump `name` of snapshot `s` into `verify_command`.
    async fn dump(&self, r: &mut VerifyReport, name: &str, s: &Snapshot) -> DumpDetail {
        let v = self.verifier;
        let mut out = DumpDetail {
            name: name.to_string(),
            snapshot: s.short().to_string(),
            ..DumpDetail::default()
        };
        let file = match self.dump_file(name, s).await {
            Ok(f) => f,
            Err((class, msg)) => {
                fail_dump(r, &mut out, class, msg);
                return out;
            }
        };
        out.path = Some(file.path.clone());
        let check = match self.dump_check(name) {
            Ok(c) => c,
            Err((class, msg)) => {
                fail_dump(r, &mut out, class, msg);
                return out;
            }
        };
        out.check = Some(check.name());
        // Whether a configured command ran, not its text: a command line
        // may hold a secret.
        out.verify_command = Some(matches!(check, DrillCheck::Command { user: true, .. }));
        let (cmd, user, needs) = match check {
            DrillCheck::ReadBack => {
                self.note(&format!(
                    "dump `{name}`: reading it back (check `read_back`; set `verify_command` for a real check)"
                ));
                self.read_back(r, name, s, &file, None, &mut out).await;
                return out;
            }
            DrillCheck::Completion {
                check,
                marker,
                tool,
            } => {
                self.note(&format!(
                    "dump `{name}`: reading it back and looking for {tool}'s completion line (check `{check}`)"
                ));
                self.read_back(r, name, s, &file, Some((marker, tool)), &mut out)
                    .await;
                return out;
            }
            DrillCheck::Command {
                check,
                cmd,
                user,
                needs,
            } => {
                self.note(&format!(
                    "dump `{name}`: streaming it into {} (check `{check}`)",
                    if user {
                        "`verify_command`".to_string()
                    } else {
                        format!("`{}`", short_display(&cmd))
                    }
                ));
                (cmd, user, needs)
            }
        };
        let what = if user {
            "`verify_command`".to_string()
        } else {
            format!("the `{}` check", out.check.unwrap_or("?"))
        };
        if let Some(program) = needs.iter().find(|p| crate::schedule::on_path(p).is_none()) {
            let msg = format!(
                "dump `{name}`: {what} needs `{program}`, which is not on PATH; install it (the database's client package) or set `verify_command` for the dump"
            );
            fail_dump(r, &mut out, ErrorClass::Config, msg);
            return out;
        }
        let mut spec = cmd
            .spec()
            .env("RESTIC_MANAGER_SERVICE", &self.svc.name)
            .env("RESTIC_MANAGER_DUMP", name)
            .env("RESTIC_MANAGER_SNAPSHOT", &s.id);
        spec.timeout = Some(self.timeout);
        let res = self
            .dump_of(&s.id, &file.path)
            .pipe(v.restic, self.repo, &spec, &v.shutdown)
            .await;
        match res {
            Err(e) => fail_dump(
                r,
                &mut out,
                e.class,
                format!("dump `{name}`: {}", e.message),
            ),
            Ok(p) => judge_pipe(r, &mut out, name, s, &what, user, p),
        }
        out
    }

    /// The file of dump `name` in snapshot `s`, or why there is none.
    async fn dump_file(&self, name: &str, s: &Snapshot) -> Result<LsNode, (ErrorClass, String)> {
        let v = self.verifier;
        let nodes = v
            .retry_locked(self.repo, || {
                ls::nodes(v.restic, self.repo, &s.id, self.timeout, &v.shutdown)
            })
            .await
            .map_err(|e| {
                (
                    e.class,
                    format!(
                        "dump `{name}`: cannot list snapshot {}: {}",
                        s.short(),
                        e.message
                    ),
                )
            })?;
        nodes.into_iter().find(|n| n.kind == "file").ok_or_else(|| {
            (
                ErrorClass::DrillMismatch,
                format!("dump `{name}`: snapshot {} holds no file", s.short()),
            )
        })
    }

    /// How dump `name` is checked. Its definition decides; a dump no
    /// longer in the configuration gets the service's `verify_command` or
    /// a read-back.
    fn dump_check(&self, name: &str) -> Result<DrillCheck, (ErrorClass, String)> {
        let unconfigured;
        let def = match self.svc.dumps.iter().find(|d| d.name == name) {
            Some(d) => d,
            None => {
                unconfigured = Dump::unconfigured(name);
                &unconfigured
            }
        };
        drill_check(def, self.svc.verify.command.as_deref())
            .map_err(|e| (e.class, format!("dump `{name}`: {}", e.message)))
    }

    /// Reads dump `name` back whole, compares its size with restic's
    /// metadata and, with `completion`, requires its tool's last line.
    async fn read_back(
        &self,
        r: &mut VerifyReport,
        name: &str,
        s: &Snapshot,
        file: &LsNode,
        completion: Option<(&str, &str)>,
        out: &mut DumpDetail,
    ) {
        let v = self.verifier;
        let mut n: u64 = 0;
        let mut last: Vec<u8> = Vec::new();
        let res = self
            .dump_of(&s.id, &file.path)
            .stream(v.restic, self.repo, &v.shutdown, |c| {
                n += c.len() as u64;
                if completion.is_some() {
                    last.extend_from_slice(&c[c.len().saturating_sub(TAIL)..]);
                    if last.len() > 2 * TAIL {
                        last.drain(..last.len() - TAIL);
                    }
                }
            })
            .await;
        out.bytes = Some(n);
        let msg = match res {
            Err(e) => {
                let msg = format!("dump `{name}`: `restic dump` failed: {}", e.message);
                r.fail(e.class, msg.clone());
                msg
            }
            Ok(()) if file.size.is_some_and(|want| want != n) => {
                let msg = format!(
                    "dump `{name}`: read back {n} bytes, restic's metadata says {}",
                    file.size.unwrap_or(0)
                );
                r.fail(ErrorClass::DrillMismatch, msg.clone());
                msg
            }
            Ok(()) => match completion {
                Some((marker, tool)) if !dump::ends_complete(&last, marker) => {
                    let msg = format!(
                        "dump `{name}` (snapshot {}): it does not end with {tool}'s \"{marker}\" line, so it is incomplete (cut short while it was written, or damaged); restoring it would lose data",
                        s.short()
                    );
                    r.fail(ErrorClass::DumpDamaged, msg.clone());
                    msg
                }
                _ => {
                    out.outcome = Some(Outcome::Ok);
                    return;
                }
            },
        };
        out.error = Some(msg);
    }
}

/// Records a failed dump check in the report and in its detail `out`.
fn fail_dump(r: &mut VerifyReport, out: &mut DumpDetail, class: ErrorClass, msg: String) {
    out.error = Some(msg.clone());
    r.fail(class, msg);
}

/// Judges how dump `name` of snapshot `s`, streamed into `what` (the
/// configured `verify_command` when `user`), went once both sides ran.
fn judge_pipe(
    r: &mut VerifyReport,
    out: &mut DumpDetail,
    name: &str,
    s: &Snapshot,
    what: &str,
    user: bool,
    p: DumpPipe,
) {
    if matches!(p.consumer.ended, crate::process::Ended::Interrupted(_)) {
        let msg = format!("dump `{name}`: interrupted while streaming it into {what}");
        fail_dump(r, out, ErrorClass::Interrupted, msg);
    } else if !p.consumer.ended.success() {
        let why = if user {
            crate::restic::error::last_line(&p.consumer.stderr)
        } else {
            reason(&p.consumer.stderr)
        };
        let msg = format!(
            "dump `{name}` (snapshot {}): {what} failed ({}): {why}",
            s.short(),
            p.consumer.ended.describe()
        );
        out.error = Some(msg.clone());
        // A broken dump makes restic fail too (broken pipe): the check's
        // verdict is the one that explains it, unless restic found the
        // repository damaged.
        match p.dump {
            Err(e) if e.class == ErrorClass::RepositoryDamaged => r.fail(e.class, e.message),
            _ if user => r.fail(ErrorClass::VerifyCommandFailed, msg),
            _ => r.fail(ErrorClass::DumpDamaged, msg),
        }
    } else if let Err(e) = p.dump {
        let msg = format!("dump `{name}`: `restic dump` failed: {}", e.message);
        fail_dump(r, out, e.class, msg);
    } else {
        out.outcome = Some(Outcome::Ok);
    }
}

/// The line of a database tool's stderr that says what went wrong: the
/// last one naming an error (not a `^--- error here` marker), else the
/// last line.
fn reason(stderr: &str) -> String {
    stderr
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.starts_with('^') && l.to_ascii_lowercase().contains("error"))
        .map_or_else(|| crate::restic::error::last_line(stderr), str::to_string)
}

/// A check's command line without the script of `bash -c SCRIPT`.
fn short_display(cmd: &DumpCommand) -> String {
    match cmd.argv.as_slice() {
        [sh, c, _script, rest @ ..] if c == "-c" && (sh == "bash" || sh == "sh") => {
            format!("{sh} -c … {}", rest.join(" "))
        }
        _ => cmd.display(),
    }
}

/// How a restored file compares with the live source.
enum Live {
    /// Same size, mtime and content.
    Same,
    /// Modified since the snapshot: not comparable.
    Changed,
    /// Gone, or not found from the snapshot's paths.
    Missing,
}

/// What comparing one sampled file found.
struct FileCheck {
    /// Bytes of the restored file.
    size: u64,
    verdict: Verdict,
}

enum Verdict {
    /// Restored as restic's metadata describes it; how the source compares.
    Live(Live),
    /// A mismatch (the message says which).
    Bad(String),
    /// Same size and mtime as the source but other content: to confirm
    /// with `restic dump` (`message` is the verdict when the dump agrees
    /// with the restore).
    Differs {
        path: String,
        sum: String,
        size: u64,
        message: String,
    },
}

/// Threads hashing files: the disk, not the CPU, is usually the limit.
const HASH_THREADS: usize = 4;

/// Compares each restored file (under `tmp`) with restic's metadata (size,
/// permission bits) and with its live source, hashing both in-process on
/// at most [`HASH_THREADS`] threads. Stops early on a signal.
fn compare_all(tmp: &Path, paths: &[String], nodes: &[LsNode], stop: &Shutdown) -> Vec<FileCheck> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let next = AtomicUsize::new(0);
    let threads = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .clamp(1, HASH_THREADS)
        .min(nodes.len().max(1));
    let mut out: Vec<(usize, FileCheck)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(n) = nodes.get(i) else { break };
                        if stop.signal().is_some() {
                            break;
                        }
                        done.push((i, check_one(tmp, paths, n)));
                    }
                    done
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap_or_default())
            .collect()
    });
    out.sort_by_key(|(i, _)| *i);
    out.into_iter().map(|(_, c)| c).collect()
}

/// One file of [`compare_all`].
fn check_one(tmp: &Path, paths: &[String], n: &LsNode) -> FileCheck {
    use std::os::unix::fs::PermissionsExt;
    let restored = tmp.join(n.path.trim_start_matches('/'));
    let bad = |size: u64, m: String| FileCheck {
        size,
        verdict: Verdict::Bad(m),
    };
    let (sum, size) = match hash_path(&restored) {
        Ok(x) => x,
        Err(e) => return bad(0, format!("`{}`: not restored ({e})", n.path)),
    };
    if let Some(want) = n.size
        && want != size
    {
        return bad(
            size,
            format!(
                "`{}`: restored {size} bytes, restic's metadata says {want}",
                n.path
            ),
        );
    }
    if let (Some(want), Ok(meta)) = (n.mode, std::fs::metadata(&restored)) {
        let got = meta.permissions().mode() & 0o777;
        if got != want & 0o777 {
            return bad(
                size,
                format!(
                    "`{}`: restored with mode {got:04o}, restic's metadata says {:04o}",
                    n.path,
                    want & 0o777
                ),
            );
        }
    }
    let verdict = match compare_live(paths, n, &sum) {
        Ok(live) => Verdict::Live(live),
        Err(message) => Verdict::Differs {
            path: n.path.clone(),
            sum,
            size,
            message,
        },
    };
    FileCheck { size, verdict }
}

/// How the restored file (content `sum`) compares with its live source, or
/// the mismatch message when the source has the snapshot's size and mtime
/// but other content.
fn compare_live(paths: &[String], n: &LsNode, sum: &str) -> Result<Live, String> {
    let Some(live) = live_path(paths, &n.path) else {
        return Ok(Live::Missing);
    };
    let Ok(meta) = std::fs::metadata(&live) else {
        return Ok(Live::Missing);
    };
    let mtime_ns = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .and_then(|d| i64::try_from(d.as_nanos()).ok());
    let snap_ns = n
        .mtime
        .as_deref()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .and_then(|d| d.timestamp_nanos_opt());
    if !meta.is_file() || mtime_ns.is_none() || mtime_ns != snap_ns || Some(meta.len()) != n.size {
        return Ok(Live::Changed);
    }
    match hash_path(&live) {
        Ok((live_sum, _)) if live_sum == sum => Ok(Live::Same),
        Ok((live_sum, _)) => Err(format!(
            "`{}`: the restored file (sha256 {}…) differs from the live `{}` (sha256 {}…) although its size and modification time are unchanged since the snapshot: bit rot on the source disk, or a damaged backup",
            n.path,
            &sum[..12],
            live.display(),
            &live_sum[..12]
        )),
        Err(_) => Ok(Live::Missing),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_paths_follow_restics_top_level_names() {
        let abs = vec!["/srv/app/data".to_string(), "/etc/app".to_string()];
        assert_eq!(
            live_path(&abs, "/srv/app/data/x/y.txt"),
            Some(PathBuf::from("/srv/app/data/x/y.txt"))
        );
        assert_eq!(live_path(&abs, "/etc/app"), Some(PathBuf::from("/etc/app")));
        assert_eq!(live_path(&abs, "/etc/apps/f"), None);
        let rel = vec!["data".to_string(), "conf/app".to_string()];
        assert_eq!(live_path(&rel, "/data/x"), Some(PathBuf::from("data/x")));
        assert_eq!(live_path(&rel, "/app/c"), Some(PathBuf::from("conf/app/c")));
        assert_eq!(live_path(&rel, "/other/f"), None);
        let twins = vec!["a/data".to_string(), "b/data".to_string()];
        assert_eq!(live_path(&twins, "/data/f"), None);
    }

    #[test]
    fn temp_tree_is_removed_even_with_read_only_folders() {
        use std::os::unix::fs::PermissionsExt;
        let base = tempfile::tempdir().unwrap();
        let work = base.path().join(TMP_DIR);
        let t = TempTree::create(&work).unwrap();
        let ro = t.path.join("ro");
        std::fs::create_dir_all(ro.join("sub")).unwrap();
        std::fs::write(ro.join("sub/f"), "x").unwrap();
        std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o500)).unwrap();
        drop(t);
        assert!(!work.exists(), "the drill folder was left behind");
    }

    #[test]
    fn a_restored_file_is_held_to_restics_size_and_permission_bits() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let f = tmp.path().join("srv/f.txt");
        std::fs::create_dir_all(tmp.path().join("srv")).unwrap();
        std::fs::write(&f, "hello").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        let node = |size, mode| LsNode {
            name: "f.txt".into(),
            path: "/srv/f.txt".into(),
            kind: "file".into(),
            size: Some(size),
            mtime: None,
            permissions: None,
            mode: Some(mode),
        };
        // The live source is elsewhere: only the metadata is compared.
        let paths = vec!["/nonexistent-source".to_string()];
        let verdict = |n: &LsNode| match check_one(tmp.path(), &paths, n).verdict {
            Verdict::Bad(m) => m,
            Verdict::Live(Live::Missing) => "missing".into(),
            _ => "other".into(),
        };
        assert_eq!(verdict(&node(5, 0o644)), "missing");
        assert!(verdict(&node(5, 0o600)).contains("mode 0644, restic's metadata says 0600"));
        assert!(verdict(&node(6, 0o644)).contains("restored 5 bytes, restic's metadata says 6"));
    }

    #[test]
    fn sweep_removes_folders_of_dead_processes_only() {
        let base = tempfile::tempdir().unwrap();
        // PIDs above the kernel's pid_max cannot exist.
        let dead = base.path().join("drill-99999999-0");
        let mine = base.path().join(format!("drill-{}-7", std::process::id()));
        for d in [&dead, &mine] {
            std::fs::create_dir_all(d).unwrap();
        }
        sweep(base.path());
        assert!(!dead.exists());
        assert!(mine.exists());
    }
}
