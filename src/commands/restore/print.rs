//! How `restore` describes a plan: the preview, the result (text or
//! `--json`) and the spinner while it runs.

use std::io::IsTerminal;

use serde_json::{Value, json};

use crate::output::{Printer, bytes};
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

    pub(super) fn json(&self, preview: bool, done: Option<&Done>) -> Value {
        let c = &self.plan.contents;
        let (kind, target, includes, dump, volume): (&str, Value, Vec<String>, Value, Value) =
            match &self.plan.what {
                What::Files { target, .. } => (
                    "files",
                    match target {
                        Target::Folder(d) => json!(d),
                        Target::InPlace => json!("/"),
                    },
                    c.include_paths(),
                    Value::Null,
                    Value::Null,
                ),
                What::Dump { name, sink } => (
                    "dump",
                    match sink {
                        Some(Sink::File(f)) => json!(f),
                        // The command may hold credentials: not echoed.
                        Some(Sink::Command(_)) => json!("command"),
                        None => json!("restore_command"),
                    },
                    Vec::new(),
                    json!(name),
                    Value::Null,
                ),
                What::Volume { name, into } => (
                    "volume",
                    json!(into),
                    Vec::new(),
                    Value::Null,
                    json!({
                        "name": name,
                        "into": into,
                        "mode": done.and_then(|d| d.volume.as_ref()).map(|v| v.mode),
                        "containers_restarted": done
                            .and_then(|d| d.volume.as_ref())
                            .map(|v| v.containers_restarted.clone()),
                    }),
                ),
            };
        json!({
            "preview": preview,
            "service": self.plan.service.name,
            "destination": self.plan.destination,
            "repository": self.plan.repo.display,
            "snapshot": {
                "id": self.plan.snapshot.id,
                "short_id": self.plan.snapshot.short(),
                "time": self.plan.snapshot.time,
                "hostname": self.plan.snapshot.hostname,
                "paths": self.plan.snapshot.paths,
                "tags": self.plan.snapshot.tags,
            },
            "kind": kind,
            "target": target,
            "in_place": matches!(self.plan.what, What::Files { target: Target::InPlace, .. }),
            "includes": includes,
            "dump": dump,
            "volume": volume,
            "files": c.files,
            "dirs": c.dirs,
            "bytes": done.and_then(|d| d.bytes).unwrap_or(c.bytes),
            "first_entries": c.first,
        })
    }
}
