//! `restic-version`: which restic runs, its version, why that one, and
//! which version-specific paths restic-manager takes with it.

use serde_json::json;

use super::Context;
use crate::error::Error;
use crate::model::Exit;
use crate::restic::install;

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
        p.json(&json!({
            "version": r.version.to_string(),
            "path": r.path,
            "resolved": resolved,
            "source": r.source,
            "why": r.why,
            "managed": {
                "directory": bin_dir,
                "current": current,
                "installed": installed,
            },
            "paths": r.version.paths(),
        }));
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
