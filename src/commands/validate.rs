//! `validate`: every configuration error at once, or a summary.

use serde_json::json;

use super::Context;
use crate::config::{self, Config};
use crate::error::Error;
use crate::restic::Repository;

pub fn run(ctx: &Context) -> Result<i32, Error> {
    let p = &ctx.printer;
    let (file, why) =
        config::discover(&ctx.env, ctx.config_flag.as_ref()).map_err(Error::ConfigMissing)?;
    match Config::load(&file, &ctx.env) {
        Err(errors) => {
            if p.json {
                p.json(&json!({"valid": false, "file": file, "errors": errors}));
            } else {
                for e in &errors {
                    eprintln!("error: {e}");
                }
                eprintln!(
                    "{} error{} in `{}` ({why})",
                    errors.len(),
                    if errors.len() == 1 { "" } else { "s" },
                    file.display()
                );
            }
            Ok(2)
        }
        Ok(c) => {
            let mut repos = Vec::new();
            for s in &c.services {
                for t in &s.targets {
                    if let Some(d) = c.destinations.get(t) {
                        let r = Repository::new(d, &s.name, &c.settings.password)
                            .map_or_else(|e| format!("(error: {e})"), |r| r.display);
                        repos.push((s.name.clone(), t.clone(), r));
                    }
                }
            }
            let enabled = c.services.iter().filter(|s| s.enabled).count();
            if p.json {
                p.json(&json!({
                    "valid": true,
                    "file": file,
                    "source": why,
                    "services": c.services.len(),
                    "enabled_services": enabled,
                    "destinations": c.destinations.len(),
                    "repositories": repos.iter().map(|(s, d, r)| json!({"service": s, "destination": d, "repository": r})).collect::<Vec<_>>(),
                }));
            } else {
                p.line(format!(
                    "configuration `{}` ({why}) is valid",
                    file.display()
                ));
                p.line(format!(
                    "  {} service{} ({enabled} enabled), {} destination{}, {} repositor{}",
                    c.services.len(),
                    if c.services.len() == 1 { "" } else { "s" },
                    c.destinations.len(),
                    if c.destinations.len() == 1 { "" } else { "s" },
                    repos.len(),
                    if repos.len() == 1 { "y" } else { "ies" }
                ));
                for (s, d, r) in &repos {
                    p.line(format!("  {s} → {d}: {r}"));
                }
            }
            Ok(0)
        }
    }
}
