//! `restic ls --json`: the one call and the one parser of its lines. restic
//! prints the snapshot first, then one node per line; 0.14–0.16 mark each
//! line `struct_type`, 0.17+ both `struct_type` and `message_type`, so
//! either marks it. A listing can be longer than the capture cap, so it is
//! handed over line by line and never kept whole here.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::ops::failure;
use super::output::Snapshot;
use super::{Repository, Restic, ResticCall};
use crate::model::Failure;
use crate::process::{Output, Shutdown};

/// One file, folder or other node of a snapshot.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
pub struct Node {
    #[serde(default)]
    pub name: String,
    /// `file`, `dir`, `symlink`, …
    #[serde(rename = "type")]
    pub kind: String,
    pub path: String,
    #[serde(default)]
    pub size: Option<u64>,
    #[serde(default)]
    pub mtime: Option<String>,
    /// As `ls -l` shows them (`-rw-r--r--`).
    #[serde(default)]
    pub permissions: Option<String>,
    /// Go's `os.FileMode`: the permission bits are the low nine. Read,
    /// never shown.
    #[serde(default, skip_serializing)]
    pub mode: Option<u32>,
}

impl Node {
    pub fn is_dir(&self) -> bool {
        self.kind == "dir"
    }
}

/// One line of `restic ls --json` that restic-manager reads.
#[derive(Debug, Clone)]
pub enum Line {
    Snapshot(Snapshot),
    Node(Node),
}

/// Whether `line` is marked as a `kind` line by either generation.
fn marked(line: &str, struct_type: &str, message_type: &str) -> bool {
    line.contains(struct_type) || line.contains(message_type)
}

/// Parses one stdout line; `None` for anything else. The marker is found
/// before the JSON is parsed (a listing has millions of lines); a name
/// cannot fake it, since quotes inside JSON strings are escaped.
pub fn parse(line: &str) -> Option<Line> {
    let line = line.trim();
    if !line.starts_with('{') {
        return None;
    }
    if marked(
        line,
        "\"struct_type\":\"node\"",
        "\"message_type\":\"node\"",
    ) {
        serde_json::from_str(line).ok().map(Line::Node)
    } else if marked(
        line,
        "\"struct_type\":\"snapshot\"",
        "\"message_type\":\"snapshot\"",
    ) {
        serde_json::from_str(line).ok().map(Line::Snapshot)
    } else {
        None
    }
}

/// What to list: `snapshot` (an id, or `latest` narrowed by `host` and
/// `tag`), everything or only `dir` and below.
#[derive(Debug, Clone, Copy, Default)]
pub struct Ls<'a> {
    pub snapshot: &'a str,
    pub host: Option<&'a str>,
    pub tag: Option<&'a str>,
    pub dir: Option<&'a str>,
}

impl Ls<'_> {
    fn args(&self) -> Vec<&str> {
        let mut args = vec!["ls", "--json", "--no-lock"];
        if let Some(h) = self.host {
            args.extend(["--host", h]);
        }
        if let Some(t) = self.tag {
            args.extend(["--tag", t]);
        }
        args.extend(["--", self.snapshot]);
        args.extend(self.dir);
        args
    }
}

/// `restic ls --json --no-lock …`: each line restic-manager reads goes to
/// `on_line` as it comes. restic's output is returned when it succeeded.
pub async fn run(
    restic: &Restic,
    repo: &Repository,
    what: &Ls<'_>,
    timeout: Duration,
    shutdown: &Shutdown,
    mut on_line: impl FnMut(Line),
) -> Result<Output, Failure> {
    let mut c = ResticCall::new(restic, repo, what.args()).timeout(timeout);
    // `--no-lock`: nothing to clean up when stopped.
    c.spec.grace = Duration::from_secs(10);
    let out = c
        .spec
        .run(
            shutdown,
            |line| {
                if let Some(l) = parse(line) {
                    on_line(l);
                }
            },
            |_| {},
        )
        .await?;
    failure(&out, repo).map_or(Ok(out), Err)
}

/// Every node of snapshot `id`.
pub async fn nodes(
    restic: &Restic,
    repo: &Repository,
    id: &str,
    timeout: Duration,
    shutdown: &Shutdown,
) -> Result<Vec<Node>, Failure> {
    let what = Ls {
        snapshot: id,
        ..Ls::default()
    };
    collect(restic, repo, &what, timeout, shutdown)
        .await
        .map(|(_, nodes)| nodes)
}

/// The ID of the newest snapshot of `host` tagged `tag` (from restic's
/// leading snapshot line) and its nodes, in one restic start.
pub async fn latest_nodes(
    restic: &Restic,
    repo: &Repository,
    host: &str,
    tag: &str,
    timeout: Duration,
    shutdown: &Shutdown,
) -> Result<(Option<String>, Vec<Node>), Failure> {
    let what = Ls {
        snapshot: "latest",
        host: Some(host),
        tag: Some(tag),
        dir: None,
    };
    collect(restic, repo, &what, timeout, shutdown).await
}

async fn collect(
    restic: &Restic,
    repo: &Repository,
    what: &Ls<'_>,
    timeout: Duration,
    shutdown: &Shutdown,
) -> Result<(Option<String>, Vec<Node>), Failure> {
    let mut nodes = Vec::new();
    let mut id = None;
    run(restic, repo, what, timeout, shutdown, |l| match l {
        Line::Node(n) => nodes.push(n),
        Line::Snapshot(s) if id.is_none() => id = Some(s.id),
        Line::Snapshot(_) => {}
    })
    .await?;
    Ok((id, nodes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_generations_of_lines() {
        let cases = [
            (
                r#"{"time":"2026-11-25T17:19:26Z","paths":["/d"],"hostname":"vm","id":"e63979e4572b","short_id":"e63979e4","struct_type":"snapshot"}"#,
                "snapshot e63979e4572b",
            ),
            (
                r#"{"time":"2026-11-25T17:19:26Z","paths":["/d"],"hostname":"vm","id":"e63979e4572b","message_type":"snapshot","struct_type":"snapshot"}"#,
                "snapshot e63979e4572b",
            ),
            (
                r#"{"name":"a.txt","type":"file","path":"/d/a.txt","size":6,"mode":420,"struct_type":"node"}"#,
                "file /d/a.txt 6 420",
            ),
            (
                r#"{"name":"sub","type":"dir","path":"/d/sub","message_type":"node"}"#,
                "dir /d/sub",
            ),
            (
                r#"{"name":"x\"struct_type\":\"node\"","type":"file","path":"/x","message_type":"other"}"#,
                "",
            ),
            ("not json", ""),
        ];
        for (line, want) in cases {
            let got = match parse(line) {
                Some(Line::Snapshot(s)) => format!("snapshot {}", s.id),
                Some(Line::Node(n)) => [
                    Some(n.kind),
                    Some(n.path),
                    n.size.map(|s| s.to_string()),
                    n.mode.map(|m| m.to_string()),
                ]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" "),
                None => String::new(),
            };
            assert_eq!(got, want, "{line}");
        }
    }

    #[test]
    fn arguments_put_the_snapshot_after_the_options() {
        let what = Ls {
            snapshot: "latest",
            host: Some("h"),
            tag: Some("service:x"),
            dir: Some("/srv"),
        };
        assert_eq!(
            what.args(),
            [
                "ls",
                "--json",
                "--no-lock",
                "--host",
                "h",
                "--tag",
                "service:x",
                "--",
                "latest",
                "/srv"
            ]
        );
    }
}
