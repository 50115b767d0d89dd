//! How `restore` describes a plan: the preview, the result (text or
//! `--json`) and the spinner while it runs.

use std::io::IsTerminal;
use std::path::Path;

use serde::Serialize;

use crate::output::{Printer, bytes, sorted_keys};
use crate::restic::ls::Node;
use crate::restore::files::Target;
use crate::restore::plan::names;
use crate::restore::select as snap;
use crate::restore::{Done, Plan, Sink, What};

/// A spinner with the elapsed time on a terminal: restic 0.14 shows no
/// progress for a restore, which can take hours.
pub(super) fn spinner(p: &Printer, summary: &Summary<'_>) -> Option<indicatif::ProgressBar> {
    if p.quiet || p.json || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar =
        indicatif::ProgressBar::with_draw_target(None, indicatif::ProgressDrawTarget::stderr());
    let style = indicatif::ProgressStyle::with_template("{spinner} {msg} {elapsed}")
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner());
    bar.set_style(style);
    bar.set_message(format!("restoring {}…", summary.where_()));
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    Some(bar)
}

/// `1 file`, `2 files`.
fn plural(n: u64, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// Describes a plan, before and after.
pub(super) struct Summary<'a> {
    pub plan: &'a Plan<'a>,
}

impl Summary<'_> {
    fn source(&self) -> String {
        format!(
            "snapshot {} of `{}` on `{}` ({}, host {})",
            self.plan.snapshot.short(),
            self.plan.service.name,
            self.plan.destination,
            snap::time(&self.plan.snapshot),
            self.plan.snapshot.hostname
        )
    }

    pub(super) fn where_(&self) -> String {
        match &self.plan.what {
            What::Files {
                target: Target::Folder(d),
                ..
            } => format!("into `{}`", d.display()),
            What::Files {
                target: Target::InPlace,
                ..
            } => "to the original paths".to_string(),
            What::Dump { name, sink } => match sink {
                Some(Sink::File(f)) => format!("dump `{name}` into `{}`", f.display()),
                Some(Sink::Command(c)) => format!("dump `{name}` into `{c}`"),
                None => format!("dump `{name}` with its restore command"),
            },
            What::Volume { name, into } if name == into => {
                format!("into Docker volume `{into}`")
            }
            What::Volume { name, into } => {
                format!("of volume `{name}` into Docker volume `{into}`")
            }
        }
    }

    /// `3 files, 1 folder, 12 B`.
    fn amount(&self) -> String {
        let c = &self.plan.contents;
        format!(
            "{}, {}, {}",
            plural(c.files, "file"),
            plural(c.dirs, "folder"),
            bytes(c.bytes)
        )
    }

    pub(super) fn preview(&self) -> String {
        let c = &self.plan.contents;
        let mut s = match &self.plan.what {
            What::Dump { .. } => format!(
                "{}\nwould restore {} ({})",
                self.source(),
                self.where_(),
                bytes(c.bytes)
            ),
            _ => format!(
                "{}\nwould restore {} {}",
                self.source(),
                self.amount(),
                self.where_()
            ),
        };
        for e in &c.first {
            s.push_str(&format!(
                "\n  {}{}",
                e.path,
                if e.kind == "dir" { "/" } else { "" }
            ));
        }
        let shown = c.first.len() as u64;
        if c.files + c.dirs > shown {
            s.push_str(&format!("\n  … and {} more", c.files + c.dirs - shown));
        }
        s
    }

    pub(super) fn done(&self, done: &Done) -> String {
        match &self.plan.what {
            What::Dump { .. } => format!(
                "restored {} ({}) from {}",
                self.where_(),
                bytes(done.bytes.unwrap_or(self.plan.contents.bytes)),
                self.source()
            ),
            What::Volume { .. } => {
                let mut s = format!(
                    "restored {} {} from {}",
                    self.amount(),
                    self.where_(),
                    self.source()
                );
                if let Some(v) = &done.volume
                    && !v.containers_restarted.is_empty()
                {
                    s.push_str(&format!(
                        "; started {} again",
                        names(&v.containers_restarted)
                    ));
                }
                s
            }
            _ => format!(
                "restored {} {} from {}",
                self.amount(),
                self.where_(),
                self.source()
            ),
        }
    }

    pub(super) fn json<'s>(&'s self, preview: bool, done: Option<&'s Done>) -> Report<'s> {
        let c = &self.plan.contents;
        let (kind, target, includes, dump, volume) = match &self.plan.what {
            What::Files { target, .. } => (
                "files",
                match target {
                    Target::Folder(d) => Place::Path(d),
                    Target::InPlace => Place::Word("/"),
                },
                c.include_paths(),
                None,
                None,
            ),
            What::Dump { name, sink } => (
                "dump",
                match sink {
                    Some(Sink::File(f)) => Place::Path(f),
                    // The command may hold credentials: not echoed.
                    Some(Sink::Command(_)) => Place::Word("command"),
                    None => Place::Word("restore_command"),
                },
                Vec::new(),
                Some(name.as_str()),
                None,
            ),
            What::Volume { name, into } => {
                let v = done.and_then(|d| d.volume.as_ref());
                (
                    "volume",
                    Place::Word(into),
                    Vec::new(),
                    None,
                    Some(VolumeReport {
                        containers_restarted: v.map(|v| v.containers_restarted.as_slice()),
                        into,
                        mode: v.map(|v| v.mode),
                        name,
                    }),
                )
            }
        };
        let snap = &self.plan.snapshot;
        Report {
            bytes: done.and_then(|d| d.bytes).unwrap_or(c.bytes),
            destination: &self.plan.destination,
            dirs: c.dirs,
            dump,
            files: c.files,
            first_entries: &c.first,
            in_place: matches!(
                self.plan.what,
                What::Files {
                    target: Target::InPlace,
                    ..
                }
            ),
            includes,
            kind,
            preview,
            repository: &self.plan.repo.display,
            service: &self.plan.service.name,
            snapshot: SnapshotReport {
                hostname: &snap.hostname,
                id: &snap.id,
                paths: &snap.paths,
                short_id: snap.short(),
                tags: &snap.tags,
                time: &snap.time,
            },
            target,
            volume,
        }
    }
}

// `restore --json`. Fields in alphabetical order (the entries sorted with
// `sorted_keys`): it was a `json!` map, and stays byte for byte what it was.

/// What a restore would do (`preview`) or did.
#[derive(Debug, Serialize)]
pub(super) struct Report<'a> {
    bytes: u64,
    destination: &'a str,
    dirs: u64,
    /// The dump restored (dumps only).
    dump: Option<&'a str>,
    files: u64,
    #[serde(serialize_with = "sorted_keys")]
    first_entries: &'a [Node],
    in_place: bool,
    includes: Vec<String>,
    /// `files`, `dump` or `volume`.
    kind: &'static str,
    preview: bool,
    repository: &'a str,
    service: &'a str,
    snapshot: SnapshotReport<'a>,
    target: Place<'a>,
    /// The volume restored (volumes only).
    volume: Option<VolumeReport<'a>>,
}

/// Where a restore writes: a path, or a word (`/` in place, `command`,
/// `restore_command`, a volume's name).
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub(super) enum Place<'a> {
    Path(&'a Path),
    Word(&'a str),
}

/// The snapshot restored from.
#[derive(Debug, Serialize)]
pub(super) struct SnapshotReport<'a> {
    hostname: &'a str,
    id: &'a str,
    paths: &'a [String],
    short_id: &'a str,
    tags: &'a [String],
    time: &'a str,
}

/// A volume restore; `mode` and `containers_restarted` once it is done.
#[derive(Debug, Serialize)]
pub(super) struct VolumeReport<'a> {
    containers_restarted: Option<&'a [String]>,
    into: &'a str,
    mode: Option<&'static str>,
    name: &'a str,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_json_report_keeps_its_sorted_keys() {
        let node = Node {
            name: "a".into(),
            kind: "file".into(),
            path: "/a".into(),
            size: Some(1),
            mtime: None,
            permissions: None,
            ..serde_json::from_str(r#"{"type": "file", "path": "/a"}"#).unwrap()
        };
        let report = Report {
            bytes: 1,
            destination: "nas",
            dirs: 0,
            dump: Some("db"),
            files: 1,
            first_entries: &[node],
            in_place: false,
            includes: vec!["/a".into()],
            kind: "volume",
            preview: true,
            repository: "/srv/repo",
            service: "wiki",
            snapshot: SnapshotReport {
                hostname: "box",
                id: "0123456789abcdef",
                paths: &[],
                short_id: "01234567",
                tags: &[],
                time: "2026-01-01T00:00:00Z",
            },
            target: Place::Word("wiki_data"),
            volume: Some(VolumeReport {
                containers_restarted: Some(&[]),
                into: "wiki_data",
                mode: Some("direct"),
                name: "wiki_data",
            }),
        };
        crate::output::assert_sorted_keys(&report);
    }
}
