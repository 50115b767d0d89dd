//! `update-restic`: move the managed restic to the latest release.

use serde::Serialize;

use super::Context;
use super::setup_restic::{install_and_report, usage};
use crate::cli::UpdateResticArgs;
use crate::error::Error;
use crate::model::Exit;
use crate::restic::Version;
use crate::restic::install::{self, Mirror};

// The `--json` documents; fields in alphabetical order: they were `json!`
// maps, and stay byte for byte what they were.

/// `update-restic --check --json`.
#[derive(Debug, Serialize)]
struct Check<'a> {
    current: Option<&'a str>,
    latest: &'a str,
    update_available: bool,
}

/// `update-restic --json` when the managed restic is the latest.
#[derive(Debug, Serialize)]
struct UpToDate<'a> {
    downloaded: bool,
    latest: &'a str,
    switched: bool,
    version: &'a str,
}

fn version(v: &str) -> Option<Version> {
    Version::parse(&format!("restic {v}"))
}

pub async fn run(ctx: &Context, a: &UpdateResticArgs) -> Result<Exit, Error> {
    let config = ctx.optional_config()?;
    let settings = config.as_ref().map(|c| &c.settings);
    let mirror = Mirror::resolve(settings).map_err(usage)?;
    let client = install::client(&mirror)?;
    let current = install::current(&ctx.env.managed_bin_dir());
    let latest = install::latest(&client, &mirror).await?;
    let newer = current
        .as_deref()
        .is_none_or(|c| version(&latest) > version(c));
    let p = &ctx.printer;
    if a.check {
        if p.json {
            p.json(&Check {
                current: current.as_deref(),
                latest: &latest,
                update_available: newer,
            });
        } else {
            p.line(match &current {
                None => format!(
                    "no managed restic is installed; the latest release is {latest}; run `restic-manager setup-restic`"
                ),
                Some(c) if newer => format!(
                    "restic {latest} is available (managed: {c}); run `restic-manager update-restic`"
                ),
                Some(c) => format!("the managed restic {c} is up to date (latest release: {latest})"),
            });
        }
        return Ok(if newer { Exit::Warning } else { Exit::Ok });
    }
    if let (Some(c), false) = (&current, newer) {
        if p.json {
            p.json(&UpToDate {
                downloaded: false,
                latest: &latest,
                switched: false,
                version: c,
            });
        } else {
            p.line(format!(
                "the managed restic {c} is up to date (latest release: {latest}); nothing to do"
            ));
        }
        return Ok(Exit::Ok);
    }
    install_and_report(ctx, settings, &client, &mirror, &latest, false).await
}
