//! The restic calls the dashboard makes that the engine does not: list a
//! folder of a snapshot, stream one file out of it, restore a path into a
//! new folder. Arguments are built from validated input only (see
//! `input.rs`) and passed as argv after `--`; no shell is involved.
//! Isolated so the restore library can replace `restore` later.

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::process::{self, Child, Out, Shutdown};
use crate::restic::ops::{OpError, failure};
use crate::restic::{ErrorClass, Repository, Restic, ResticCall};

/// Most entries one folder listing returns.
pub const MAX_ENTRIES: usize = 5000;

/// One file or folder in a snapshot.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub path: String,
    #[serde(default)]
    pub size: Option<u64>,
    #[serde(default)]
    pub mtime: Option<String>,
    #[serde(default)]
    pub permissions: Option<String>,
}

/// The snapshot a listing came from.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SnapshotInfo {
    pub id: String,
    #[serde(default)]
    pub short_id: Option<String>,
    pub time: String,
    #[serde(default)]
    pub paths: Vec<String>,
    #[serde(default)]
    pub hostname: String,
    #[serde(default)]
    pub tags: Vec<String>,
}

/// A folder of a snapshot.
#[derive(Debug, Clone, Serialize)]
pub struct Listing {
    pub snapshot: SnapshotInfo,
    pub path: String,
    pub entries: Vec<Entry>,
    pub truncated: bool,
}

/// Why a restic read failed.
#[derive(Debug)]
pub enum ReadError {
    /// No such snapshot, or no such path in it.
    NotFound(String),
    Failed(OpError),
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::NotFound(m) => f.write_str(m),
            ReadError::Failed(e) => f.write_str(&e.message),
        }
    }
}

fn spawn_failed(e: &process::SpawnError) -> ReadError {
    ReadError::Failed(OpError {
        class: ErrorClass::ResticMissing,
        message: e.to_string(),
        stderr: String::new(),
    })
}

/// `--tag service:NAME` so that `latest` means this service's newest
/// snapshot even in a repository shared by several services.
fn latest_filter(snapshot: &str, tag: &str) -> Vec<String> {
    if snapshot == "latest" {
        vec!["--tag".into(), tag.into()]
    } else {
        Vec::new()
    }
}

#[derive(Deserialize)]
struct Line {
    #[serde(default)]
    struct_type: String,
}

fn parent(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

/// `restic ls --json SNAPSHOT DIR`: the folder's direct entries, folders
/// first. 404 when the snapshot or the folder does not exist.
pub async fn ls(
    restic: &Restic,
    repo: &Repository,
    snapshot: &str,
    tag: &str,
    dir: &str,
) -> Result<Listing, ReadError> {
    ls_finding(restic, repo, snapshot, tag, dir, None)
        .await
        .map(|(l, _)| l)
}

/// [`ls`], also returning the entry at `want` even when it lies beyond
/// the first [`MAX_ENTRIES`] of its folder.
async fn ls_finding(
    restic: &Restic,
    repo: &Repository,
    snapshot: &str,
    tag: &str,
    dir: &str,
    want: Option<&str>,
) -> Result<(Listing, Option<Entry>), ReadError> {
    let mut args: Vec<String> = vec!["ls".into(), "--json".into(), "--no-lock".into()];
    args.extend(latest_filter(snapshot, tag));
    args.extend(["--".into(), snapshot.into(), dir.into()]);
    let call = ResticCall::new(restic, repo, args).timeout(Duration::from_secs(300));
    let mut info: Option<SnapshotInfo> = None;
    let mut itself = None;
    let mut entries = Vec::new();
    let mut truncated = false;
    let mut wanted = None;
    let out = call
        .spec
        .run(
            &Shutdown::never(),
            |line| {
                let Ok(l) = serde_json::from_str::<Line>(line) else {
                    return;
                };
                match l.struct_type.as_str() {
                    "snapshot" if info.is_none() => info = serde_json::from_str(line).ok(),
                    "node" => {
                        let Ok(e) = serde_json::from_str::<Entry>(line) else {
                            return;
                        };
                        if want == Some(e.path.as_str()) {
                            wanted = Some(e.clone());
                        }
                        if e.path == dir {
                            itself = Some(e);
                        } else if parent(&e.path) == dir {
                            if entries.len() < MAX_ENTRIES {
                                entries.push(e);
                            } else {
                                truncated = true;
                            }
                        }
                    }
                    _ => {}
                }
            },
            |_| {},
        )
        .await
        .map_err(|e| spawn_failed(&e))?;
    if let Some(e) = failure(&out, repo) {
        return Err(ReadError::Failed(e));
    }
    let Some(snapshot_info) = info else {
        return Err(ReadError::NotFound(format!(
            "no snapshot `{snapshot}` in `{}`",
            repo.display
        )));
    };
    if dir != "/" && itself.as_ref().is_none_or(|e| e.kind != "dir") {
        return Err(ReadError::NotFound(format!(
            "no folder `{dir}` in snapshot {}",
            snapshot_info
                .short_id
                .as_deref()
                .unwrap_or(&snapshot_info.id)
        )));
    }
    entries.sort_by(|a, b| (a.kind != "dir", &a.name).cmp(&(b.kind != "dir", &b.name)));
    Ok((
        Listing {
            snapshot: snapshot_info,
            path: dir.to_string(),
            entries,
            truncated,
        },
        wanted,
    ))
}

/// The entry at `path` (a file or folder), through its parent's listing.
pub async fn stat(
    restic: &Restic,
    repo: &Repository,
    snapshot: &str,
    tag: &str,
    path: &str,
) -> Result<(SnapshotInfo, Entry), ReadError> {
    if path == "/" {
        let l = ls(restic, repo, snapshot, tag, "/").await?;
        let root = Entry {
            name: "/".into(),
            kind: "dir".into(),
            path: "/".into(),
            size: None,
            mtime: None,
            permissions: None,
        };
        return Ok((l.snapshot, root));
    }
    let (l, found) = ls_finding(restic, repo, snapshot, tag, parent(path), Some(path)).await?;
    match found {
        Some(e) => Ok((l.snapshot, e)),
        None => Err(ReadError::NotFound(format!(
            "no `{path}` in snapshot {}",
            l.snapshot.short_id.as_deref().unwrap_or(&l.snapshot.id)
        ))),
    }
}

/// `restic dump SNAPSHOT FILE` with stdout as a stream ([`Child::read`];
/// no timeout: the reader decides how long to read, and dropping the child
/// stops restic). The snapshot must be a full id (from [`stat`]), so the
/// file read is the file checked.
pub fn dump(
    restic: &Restic,
    repo: &Repository,
    snapshot_id: &str,
    file: &str,
) -> Result<Child, ReadError> {
    let args = ["dump", "--no-lock", "--", snapshot_id, file];
    let call = ResticCall::new(restic, repo, args);
    call.spec
        .stdout(Out::Raw)
        .spawn()
        .map_err(|e| spawn_failed(&e))
}

/// `restic restore SNAPSHOT --target TARGET --include PATH`. `target` must
/// be a new or empty folder (checked by the caller).
pub async fn restore(
    restic: &Restic,
    repo: &Repository,
    snapshot_id: &str,
    path: &str,
    target: &Path,
    shutdown: &Shutdown,
) -> Result<(), OpError> {
    let mut args: Vec<std::ffi::OsString> = vec!["restore".into(), "--target".into()];
    args.push(target.as_os_str().to_owned());
    if path != "/" {
        args.extend(["--include".into(), path.into()]);
    }
    args.extend(["--".into(), snapshot_id.into()]);
    let call = ResticCall::new(restic, repo, args).timeout(Duration::from_secs(24 * 3600));
    let out = call
        .spec
        .run(shutdown, |_| {}, |_| {})
        .await
        .map_err(|e| OpError {
            class: ErrorClass::ResticMissing,
            message: e.to_string(),
            stderr: String::new(),
        })?;
    failure(&out, repo).map_or(Ok(()), Err)
}
