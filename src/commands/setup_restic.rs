//! `setup-restic`: install a verified restic release as the managed binary.

use std::path::Path;

use serde::Serialize;

use super::Context;
use crate::cli::SetupResticArgs;
use crate::config::Settings;
use crate::error::Error;
use crate::model::Exit;
use crate::output;
use crate::restic::install::{self, InstallError, Mirror};

/// `setup-restic --json` and `update-restic --json` after an install.
/// Fields in alphabetical order: it was a `json!` map, and stays byte for
/// byte what it was.
#[derive(Debug, Serialize)]
struct Installed<'a> {
    downloaded: bool,
    link: &'a Path,
    path: &'a Path,
    previous: Option<&'a str>,
    switched: bool,
    version: &'a str,
}

impl<'a> From<&'a install::Installed> for Installed<'a> {
    fn from(i: &'a install::Installed) -> Installed<'a> {
        Installed {
            downloaded: i.downloaded,
            link: &i.link,
            path: &i.path,
            previous: i.previous.as_deref(),
            switched: i.switched,
            version: &i.version,
        }
    }
}

/// A version given by the user that cannot be installed is a usage error.
pub(super) fn usage(e: InstallError) -> Error {
    match e {
        InstallError::BadVersion(_) | InstallError::TooOld(_) | InstallError::BadTimeout(_) => {
            Error::Usage(e.to_string())
        }
        InstallError::BadBase { .. } => Error::Usage(e.to_string()),
        other => Error::Install(other),
    }
}

pub async fn run(ctx: &Context, a: &SetupResticArgs) -> Result<Exit, Error> {
    let config = ctx.optional_config()?;
    let settings = config.as_ref().map(|c| &c.settings);
    let mirror = Mirror::resolve(settings).map_err(usage)?;
    let version = match &a.version {
        Some(v) => Some(install::parse_version(v).map_err(usage)?),
        None => None,
    };
    let client = install::client(&mirror)?;
    let version = match version {
        Some(v) => v,
        None => {
            ctx.printer.verbose(format!(
                "asking `{}` for the latest release",
                mirror.latest_url()
            ));
            install::latest(&client, &mirror).await?
        }
    };
    install_and_report(ctx, settings, &client, &mirror, &version, a.force).await
}

/// Installs `version` with a progress bar on a terminal and says what
/// happened; shared with `update-restic`.
pub(super) async fn install_and_report(
    ctx: &Context,
    settings: Option<&Settings>,
    client: &reqwest::Client,
    mirror: &Mirror,
    version: &str,
    force: bool,
) -> Result<Exit, Error> {
    let p = &ctx.printer;
    let bin_dir = ctx.env.managed_bin_dir();
    p.verbose(format!(
        "downloading from `{}/v{version}/`",
        mirror.download_base
    ));
    let bar = output::download_bar(p, &format!("restic {version}"));
    let on_progress = |done: u64, total: Option<u64>| {
        if let Some(b) = &bar {
            if let Some(t) = total {
                b.set_length(t);
            }
            b.set_position(done);
        }
    };
    let progress: Option<install::OnProgress<'_>> = bar.as_ref().map(|_| &on_progress as _);
    let result = install::install(client, mirror, version, &bin_dir, force, progress).await;
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let done = result?;
    if p.json {
        p.json(&Installed::from(&done));
    } else {
        let v = &done.version;
        let msg = match (done.downloaded, done.switched) {
            (true, _) => format!(
                "installed restic {v} at `{}` (SHA256 verified)",
                done.path.display()
            ),
            (false, true) => format!("restic {v} was already installed; switched to it"),
            (false, false) => format!(
                "restic {v} is already installed and in use; nothing to do (`--force` downloads it again)"
            ),
        };
        p.line(msg);
        if done.switched {
            p.line(format!("`{}` now runs restic {v}", done.link.display()));
        }
        if let Some(prev) = done.previous.as_deref().filter(|prev| *prev != v) {
            p.line(format!(
                "restic {prev} stays installed at `{}`",
                bin_dir.join(format!("restic-{prev}")).display()
            ));
        }
    }
    if let Some(s) = settings {
        if let Some(b) = &s.restic_binary {
            p.info(format!(
                "note: `restic_binary = \"{}\"` in the configuration still decides which restic runs; remove it to use the managed one",
                b.display()
            ));
        } else if s.use_system_restic {
            p.info(
                "note: `use_system_restic = true` in the configuration still picks restic on PATH; remove it to use the managed one",
            );
        }
    }
    Ok(Exit::Ok)
}
