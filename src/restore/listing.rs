//! What a snapshot holds, from `restic ls --json` read line by line
//! (`restic::ls`), without keeping the whole listing in memory: counts and
//! bytes of what would be restored, the first entries for the preview, and
//! for every `--include` whether the snapshot has it (restic 0.14 restores
//! nothing, and exits 0, for a pattern that matches nothing). Also one
//! folder of a snapshot, for the dashboard's file browser.

use std::time::Duration;

use serde::Serialize;

use crate::model::Failure;
use crate::process::Shutdown;
use crate::restic::ls::{self, Line, Node};
use crate::restic::output::Snapshot;
use crate::restic::{ErrorClass, Repository, Restic};

/// How many entries the preview shows.
pub const FIRST_ENTRIES: usize = 10;

/// The preview's entries as `--json` shows them: path, type and size (0
/// for folders).
fn preview_entries<S: serde::Serializer>(nodes: &[Node], s: S) -> Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    struct Entry<'a> {
        path: &'a str,
        #[serde(rename = "type")]
        kind: &'a str,
        size: u64,
    }
    s.collect_seq(nodes.iter().map(|n| Entry {
        path: &n.path,
        kind: &n.kind,
        size: n.size.unwrap_or(0),
    }))
}

/// A path the user asked for, and what the snapshot says about it.
#[derive(Debug, Clone, Serialize)]
pub struct Include {
    /// As given.
    pub given: String,
    /// The path it stands for in the snapshot, once found.
    pub path: Option<String>,
    /// Where it could be: itself when absolute, else below each of the
    /// snapshot's paths.
    #[serde(skip)]
    candidates: Vec<String>,
    /// Entries with the same file name, or the closest paths.
    #[serde(skip)]
    near: Vec<(usize, String)>,
}

/// The result of reading a snapshot's listing.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Contents {
    /// Files (and other non-directories) that would be restored.
    pub files: u64,
    pub dirs: u64,
    /// Total size of those files.
    pub bytes: u64,
    /// The first entries that would be restored.
    #[serde(serialize_with = "preview_entries")]
    pub first: Vec<Node>,
    pub includes: Vec<Include>,
    /// Symlinks already in the target that restic would follow to write
    /// what the snapshot holds below them (snapshot paths).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub in_the_way: Vec<String>,
}

fn trim_slash(p: &str) -> String {
    let t = p.trim_end_matches('/');
    if t.is_empty() {
        "/".to_string()
    } else {
        t.to_string()
    }
}

fn under(path: &str, root: &str) -> bool {
    root == "/"
        || path == root
        || (path.len() > root.len()
            && path.starts_with(root)
            && path.as_bytes()[root.len()] == b'/')
}

/// Reads a listing; feed it every stdout line of `restic ls --json`.
pub struct Scan {
    roots: Vec<String>,
    links: Vec<String>,
    contents: Contents,
    saw_snapshot: bool,
}

impl Scan {
    /// `roots`: the snapshot's paths (entries above them, like `/srv` for
    /// a snapshot of `/srv/app`, are not counted); `includes`: what the
    /// user asked for (empty: everything).
    pub fn new(snapshot: &Snapshot, includes: &[String]) -> Scan {
        let roots: Vec<String> = snapshot.paths.iter().map(|p| trim_slash(p)).collect();
        let includes = includes
            .iter()
            .map(|given| {
                let g = given.trim();
                let candidates = if g.starts_with('/') {
                    vec![trim_slash(g)]
                } else {
                    let rel = g.trim_start_matches("./").trim_end_matches('/');
                    roots
                        .iter()
                        .map(|r| {
                            if r == "/" {
                                format!("/{rel}")
                            } else {
                                format!("{r}/{rel}")
                            }
                        })
                        .collect()
                };
                Include {
                    given: given.clone(),
                    path: None,
                    candidates,
                    near: Vec::new(),
                }
            })
            .collect();
        Scan {
            roots,
            links: Vec::new(),
            contents: Contents {
                includes,
                ..Contents::default()
            },
            saw_snapshot: false,
        }
    }

    /// Symlinks that exist in the target now, as the snapshot paths they
    /// stand at: a restored entry at or below one of them is noted in
    /// [`Contents::in_the_way`].
    #[must_use]
    pub fn with_links(mut self, links: Vec<String>) -> Scan {
        self.links = links;
        self
    }

    /// One line of restic's output.
    pub fn feed(&mut self, line: Line) {
        match line {
            Line::Snapshot(_) => self.saw_snapshot = true,
            Line::Node(n) => self.entry(n),
        }
    }

    fn entry(&mut self, e: Node) {
        if !self.roots.iter().any(|r| under(&e.path, r)) {
            return;
        }
        let c = &mut self.contents;
        let mut selected = c.includes.is_empty();
        for inc in &mut c.includes {
            match &inc.path {
                Some(p) => selected |= under(&e.path, p),
                None => {
                    if let Some(cand) = inc.candidates.iter().find(|cand| **cand == e.path) {
                        inc.path = Some(cand.clone());
                        inc.near.clear();
                        selected = true;
                    } else {
                        remember_near(inc, &e.path);
                    }
                }
            }
        }
        if !selected {
            return;
        }
        for l in &self.links {
            // A symlink in the snapshot where one exists is not written
            // through; anything else at or below the link is.
            let through = if e.path == *l {
                e.kind != "symlink"
            } else {
                under(&e.path, l)
            };
            if through && !c.in_the_way.contains(l) {
                c.in_the_way.push(l.clone());
            }
        }
        if e.is_dir() {
            c.dirs += 1;
        } else {
            c.files += 1;
            c.bytes += e.size.unwrap_or(0);
        }
        if c.first.len() < FIRST_ENTRIES {
            c.first.push(e);
        }
    }

    /// The counts, and the includes that were not found (each with its
    /// nearest paths).
    pub fn finish(self) -> Contents {
        self.contents
    }

    /// Whether restic printed the snapshot line (it did find the snapshot).
    pub fn saw_snapshot(&self) -> bool {
        self.saw_snapshot
    }
}

/// Keeps the three closest paths to an include not found yet: the same
/// file name counts as distance 0, else the edit distance.
fn remember_near(inc: &mut Include, path: &str) {
    let Some(cand) = inc.candidates.first() else {
        return;
    };
    let name = |p: &str| p.rsplit('/').next().unwrap_or(p).to_string();
    let d = if name(cand) == name(path) {
        0
    } else {
        // Cheap bound first: very different lengths are far apart.
        let diff = cand.len().abs_diff(path.len());
        if diff > 12 {
            return;
        }
        strsim::levenshtein(cand, path)
    };
    if inc.near.len() < 3 || inc.near.last().is_some_and(|(worst, _)| d < *worst) {
        inc.near.push((d, path.to_string()));
        inc.near.sort();
        inc.near.truncate(3);
    }
}

impl Contents {
    /// An error naming every include the snapshot does not have, with the
    /// nearest paths; `None` when all were found.
    pub fn missing(&self, snapshot: &Snapshot) -> Option<Failure> {
        let missing: Vec<&Include> = self.includes.iter().filter(|i| i.path.is_none()).collect();
        if missing.is_empty() {
            return None;
        }
        let mut msg = String::new();
        for (n, i) in missing.iter().enumerate() {
            if n > 0 {
                msg.push_str("\nerror: ");
            }
            msg.push_str(&format!(
                "`{}` is not in snapshot `{}` (it holds {})",
                i.given,
                snapshot.short(),
                snapshot
                    .paths
                    .iter()
                    .map(|p| format!("`{p}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            match crate::config::did_you_mean_names(i.near.iter().map(|(_, p)| p)) {
                Some(hint) => msg.push_str(&hint),
                None => msg.push_str(
                    "; give a path as it was backed up (absolute, or relative to one of those)",
                ),
            }
        }
        Some(Failure::usage(msg))
    }

    /// The paths to hand restic as `--include`: the found ones.
    pub fn include_paths(&self) -> Vec<String> {
        self.includes
            .iter()
            .filter_map(|i| i.path.clone())
            .collect()
    }
}

/// Lists `snapshot` (its full id) and counts what `includes` select.
pub async fn scan(
    restic: &Restic,
    repo: &Repository,
    snapshot: &Snapshot,
    includes: &[String],
    links: Vec<String>,
    shutdown: &Shutdown,
) -> Result<Contents, Failure> {
    let mut scan = Scan::new(snapshot, includes).with_links(links);
    let what = ls::Ls {
        snapshot: &snapshot.id,
        ..ls::Ls::default()
    };
    let out = ls::run(
        restic,
        repo,
        &what,
        Duration::from_secs(3600),
        shutdown,
        |l| scan.feed(l),
    )
    .await?;
    if !scan.saw_snapshot() {
        // restic 0.14 exits 0 with "Ignoring …: no matching ID found".
        return Err(Failure::new(
            ErrorClass::Other,
            format!(
                "restic could not list snapshot `{}` in `{}`: {}",
                snapshot.short(),
                repo.display,
                crate::restic::error::last_line(&out.stderr)
            ),
        ));
    }
    Ok(scan.finish())
}

// ---------------------------------------------------------------------
// One folder of a snapshot: the dashboard's file browser.

/// Most entries one folder listing returns.
pub const MAX_ENTRIES: usize = 5000;

/// A folder of a snapshot.
#[derive(Debug, Clone, Serialize)]
pub struct Folder {
    pub snapshot: Snapshot,
    pub path: String,
    /// Folders first, then by name.
    pub entries: Vec<Node>,
    /// More than [`MAX_ENTRIES`] entries; the rest are left out.
    pub truncated: bool,
}

/// Why reading a snapshot's folder or file failed.
#[derive(Debug)]
pub enum ReadError {
    /// No such snapshot, or no such path in it.
    NotFound(String),
    Failed(Failure),
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::NotFound(m) => f.write_str(m),
            ReadError::Failed(e) => f.write_str(&e.message),
        }
    }
}

impl From<Failure> for ReadError {
    fn from(e: Failure) -> Self {
        ReadError::Failed(e)
    }
}

fn parent(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

/// `restic ls --json SNAPSHOT DIR`: the folder's direct entries, folders
/// first. `NotFound` when the snapshot or the folder does not exist.
/// `latest` means the newest snapshot tagged `tag`, even in a repository
/// shared by several services.
pub async fn folder(
    restic: &Restic,
    repo: &Repository,
    snapshot: &str,
    tag: &str,
    dir: &str,
) -> Result<Folder, ReadError> {
    folder_finding(restic, repo, snapshot, tag, dir, None)
        .await
        .map(|(l, _)| l)
}

/// [`folder`], also returning the entry at `want` even when it lies beyond
/// the first [`MAX_ENTRIES`] of its folder.
async fn folder_finding(
    restic: &Restic,
    repo: &Repository,
    snapshot: &str,
    tag: &str,
    dir: &str,
    want: Option<&str>,
) -> Result<(Folder, Option<Node>), ReadError> {
    let what = ls::Ls {
        snapshot,
        host: None,
        tag: (snapshot == "latest").then_some(tag),
        dir: Some(dir),
    };
    let mut info: Option<Snapshot> = None;
    let mut itself = None;
    let mut entries = Vec::new();
    let mut truncated = false;
    let mut wanted = None;
    ls::run(
        restic,
        repo,
        &what,
        Duration::from_secs(300),
        &Shutdown::never(),
        |line| match line {
            Line::Snapshot(s) => {
                if info.is_none() {
                    info = Some(s);
                }
            }
            Line::Node(e) => {
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
        },
    )
    .await?;
    let Some(snapshot_info) = info else {
        return Err(ReadError::NotFound(format!(
            "no snapshot `{snapshot}` in `{}`",
            repo.display
        )));
    };
    if dir != "/" && itself.as_ref().is_none_or(|e| !e.is_dir()) {
        return Err(ReadError::NotFound(format!(
            "no folder `{dir}` in snapshot {}",
            snapshot_info
                .short_id
                .as_deref()
                .unwrap_or(&snapshot_info.id)
        )));
    }
    entries.sort_by(|a, b| (!a.is_dir(), &a.name).cmp(&(!b.is_dir(), &b.name)));
    Ok((
        Folder {
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
) -> Result<(Snapshot, Node), ReadError> {
    if path == "/" {
        let l = folder(restic, repo, snapshot, tag, "/").await?;
        let root = Node {
            name: "/".into(),
            kind: "dir".into(),
            path: "/".into(),
            size: None,
            mtime: None,
            permissions: None,
            mode: None,
        };
        return Ok((l.snapshot, root));
    }
    let (l, found) = folder_finding(restic, repo, snapshot, tag, parent(path), Some(path)).await?;
    match found {
        Some(e) => Ok((l.snapshot, e)),
        None => Err(ReadError::NotFound(format!(
            "no `{path}` in snapshot {}",
            l.snapshot.short_id.as_deref().unwrap_or(&l.snapshot.id)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// restic 0.14's `ls --json` of a snapshot of `/tmp/rx/data/d`.
    const LS: &str = r#"{"time":"2026-11-25T17:19:26Z","paths":["/tmp/rx/data/d"],"hostname":"vm","id":"e63979e4572b","short_id":"e63979e4","struct_type":"snapshot"}
{"name":"tmp","type":"dir","path":"/tmp","mode":2148532735,"struct_type":"node"}
{"name":"rx","type":"dir","path":"/tmp/rx","struct_type":"node"}
{"name":"data","type":"dir","path":"/tmp/rx/data","struct_type":"node"}
{"name":"d","type":"dir","path":"/tmp/rx/data/d","struct_type":"node"}
{"name":"a.txt","type":"file","path":"/tmp/rx/data/d/a.txt","size":6,"struct_type":"node"}
{"name":"sub","type":"dir","path":"/tmp/rx/data/d/sub","struct_type":"node"}
{"name":"b.txt","type":"file","path":"/tmp/rx/data/d/sub/b.txt","size":2,"struct_type":"node"}
{"name":"sub2","type":"dir","path":"/tmp/rx/data/d/sub2","message_type":"node"}
{"name":"c.txt","type":"file","path":"/tmp/rx/data/d/sub2/c.txt","size":40,"message_type":"node"}"#;

    fn snap() -> Snapshot {
        Snapshot {
            id: "e63979e4572b".into(),
            short_id: Some("e63979e4".into()),
            time: "2026-11-25T17:19:26Z".into(),
            hostname: "vm".into(),
            paths: vec!["/tmp/rx/data/d".into()],
            tags: vec![],
            original: None,
        }
    }

    fn run(includes: &[&str]) -> Contents {
        let inc: Vec<String> = includes.iter().map(ToString::to_string).collect();
        let mut s = Scan::new(&snap(), &inc);
        for l in LS.lines().filter_map(ls::parse) {
            s.feed(l);
        }
        assert!(s.saw_snapshot());
        s.finish()
    }

    #[test]
    fn counts_everything_below_the_snapshot_paths() {
        let c = run(&[]);
        assert_eq!((c.files, c.dirs, c.bytes), (3, 3, 48));
        assert_eq!(c.first[0].path, "/tmp/rx/data/d");
        assert!(c.missing(&snap()).is_none());
    }

    #[test]
    fn includes_absolute_relative_and_missing() {
        let c = run(&["/tmp/rx/data/d/sub/", "a.txt"]);
        assert_eq!((c.files, c.dirs, c.bytes), (2, 1, 8));
        assert_eq!(
            c.include_paths(),
            ["/tmp/rx/data/d/sub", "/tmp/rx/data/d/a.txt"]
        );
        let c = run(&["sub/c.txt"]);
        assert_eq!(c.files, 0);
        let e = c.missing(&snap()).map(|e| e.message).unwrap_or_default();
        assert_eq!(
            e,
            "`sub/c.txt` is not in snapshot `e63979e4` (it holds `/tmp/rx/data/d`); did you mean `/tmp/rx/data/d/sub2/c.txt`, `/tmp/rx/data/d/sub/b.txt`, `/tmp/rx/data/d/a.txt`?"
        );
        // A sibling with a common prefix is not "below" it.
        let c = run(&["/tmp/rx/data/d/sub"]);
        assert_eq!((c.files, c.bytes), (1, 2));
    }
}
