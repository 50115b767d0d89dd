//! `man`: roff man pages generated from the clap definition, so the page
//! says exactly what `--help` says.

use std::path::{Path, PathBuf};

use clap::CommandFactory;
use clap_mangen::Man;
use serde::Serialize;

use super::Context;
use super::completions::write_stdout;
use crate::cli::{Cli, ManArgs};
use crate::error::Error;
use crate::model::Exit;

/// `man --out DIR --json`: the pages written.
#[derive(Debug, Serialize)]
struct Written<'a> {
    written: &'a [PathBuf],
}

pub fn run(ctx: &Context, args: &ManArgs) -> Result<Exit, Error> {
    let Some(dir) = &args.out else {
        write_stdout(&main_page()?)?;
        return Ok(Exit::Ok);
    };
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::Other(format!("cannot create `{}`: {e}", dir.display())))?;
    let written = write_pages(dir)?;
    let p = &ctx.printer;
    if p.json {
        p.json(&Written { written: &written });
    } else {
        for f in &written {
            p.line(format!("wrote `{}`", f.display()));
        }
    }
    Ok(Exit::Ok)
}

/// The page of `restic-manager` itself (section 1).
fn main_page() -> Result<Vec<u8>, Error> {
    let mut buf = Vec::new();
    Man::new(Cli::command())
        .render(&mut buf)
        .map_err(|e| Error::Other(format!("cannot render the man page: {e}")))?;
    Ok(buf)
}

/// Writes `restic-manager.1` and a `restic-manager-a-b.1` page for every
/// (nested) subcommand into `dir`; returns the files written.
fn write_pages(dir: &Path) -> Result<Vec<PathBuf>, Error> {
    fn walk(cmd: clap::Command, dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), Error> {
        let subs: Vec<clap::Command> = cmd
            .get_subcommands()
            .filter(|s| !s.is_hide_set())
            .cloned()
            .collect();
        let file = Man::new(cmd).generate_to(dir).map_err(|e| {
            Error::Other(format!(
                "cannot write a man page into `{}`: {e}",
                dir.display()
            ))
        })?;
        out.push(file);
        for sub in subs {
            walk(sub, dir, out)?;
        }
        Ok(())
    }
    // Built first so subcommand pages get their full name
    // (`restic-manager-schedule-install`) and the auto `help` subcommand,
    // which has no page worth reading, is left out.
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    let mut out = Vec::new();
    walk(cmd, dir, &mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn main_page_is_roff_with_every_command() {
        let page = String::from_utf8_lossy(&main_page().unwrap_or_default()).into_owned();
        // roff's own preamble (`.ie`/`.el`, defining the apostrophe) may
        // come first; the first section-level macro must be the title.
        let first = page
            .lines()
            .find(|l| !l.starts_with(".ie") && !l.starts_with(".el"))
            .unwrap_or_default();
        assert!(first.starts_with(".TH restic-manager 1"), "{page}");
        for sub in ["validate", "setup", "schedule", "completions", "man"] {
            assert!(page.contains(sub), "page lacks `{sub}`");
        }
    }

    #[test]
    fn out_writes_one_page_per_command() {
        let dir = tempfile::tempdir().expect("tempdir");
        let files = write_pages(dir.path()).unwrap();
        let names: Vec<String> = files
            .iter()
            .filter_map(|f| f.file_name().map(|n| n.to_string_lossy().into_owned()))
            .collect();
        for want in [
            "restic-manager.1",
            "restic-manager-run.1",
            "restic-manager-schedule-install.1",
            "restic-manager-config-show.1",
            "restic-manager-man.1",
        ] {
            assert!(
                names.iter().any(|n| n == want),
                "{want} missing from {names:?}"
            );
        }
        assert!(!names.iter().any(|n| n.contains("help")), "{names:?}");
        for f in &files {
            assert!(f.is_file(), "{} not written", f.display());
        }
    }
}
