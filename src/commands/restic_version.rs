//! `restic-version`: which restic runs, its version, why that one, and
//! which version-specific paths restic-manager takes with it.

use std::path::Path;

use serde::Serialize;

use super::Context;
use crate::error::Error;
use crate::model::Exit;
use crate::output::sorted_keys;
use crate::restic::binary::VersionPath;
use crate::restic::install;

/// `restic-version --json`. Fields in alphabetical order (and the paths'
/// sorted): it was a `json!` map, and stays byte for byte what it was.
#[derive(Debug, Serialize)]
struct Report<'a> {
    managed: Managed<'a>,
    path: &'a Path,
    #[serde(serialize_with = "sorted_keys")]
    paths: Vec<VersionPath>,
    resolved: &'a Path,
    source: &'static str,
    version: String,
    why: &'a str,
}

/// The managed binaries: the folder, the one in use, all installed.
#[derive(Debug, Serialize)]
struct Managed<'a> {
    current: Option<&'a str>,
    directory: &'a Path,
    installed: &'a [String],
}

pub async fn run(ctx: &Context) -> Result<Exit, Error> {
    let config = ctx.optional_config()?;
    let r = ctx
        .restic_with(config.as_ref().map(|c| &c.settings))
        .await?;
    let bin_dir = ctx.env.managed_bin_dir();
    let resolved = std::fs::canonicalize(&r.path).unwrap_or_else(|_| r.path.clone());
    let current = install::current(&bin_dir);
    let installed = install::installed(&bin_dir);
    let p = &ctx.printer;
    if p.json {
        p.json(&Report {
            managed: Managed {
                current: current.as_deref(),
                directory: &bin_dir,
                installed: &installed,
            },
            path: &r.path,
            paths: r.version.paths(),
            resolved: &resolved,
            source: r.source,
            version: r.version.to_string(),
            why: &r.why,
        });
        return Ok(Exit::Ok);
    }
    p.line(format!("restic {}", r.version));
    if resolved == r.path {
        p.line(format!("binary:  {}", r.path.display()));
    } else {
        p.line(format!(
            "binary:  {} -> {}",
            r.path.display(),
            resolved.display()
        ));
    }
    p.line(format!("source:  {}", r.source));
    p.line(format!("why:     {}", r.why));
    p.line(match current {
        Some(c) => format!(
            "managed: {c} in `{}` (installed: {})",
            bin_dir.display(),
            installed.join(", ")
        ),
        None => format!("managed: none in `{}`", bin_dir.display()),
    });
    p.line(format!("with restic {}:", r.version));
    for path in r.version.paths() {
        p.line(format!(
            "  [{}] {} (restic {}+): {}",
            if path.active { "x" } else { " " },
            path.name,
            path.since,
            path.detail
        ));
    }
    Ok(Exit::Ok)
}
