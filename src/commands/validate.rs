//! `validate`: every configuration error at once, or a summary.

use serde_json::json;

use super::Context;
use crate::config::include::FileParts;
use crate::config::{self, Config};
use crate::error::Error;
use crate::model::Exit;
use crate::restic::Repository;

pub fn run(ctx: &Context) -> Result<Exit, Error> {
    let p = &ctx.printer;
    let (file, why) = config::discover(&ctx.env, ctx.config_flag.as_ref())
        .map_err(|e| Error::ConfigMissing(e.to_string()))?;
    let loaded = Config::load_with(&file, &ctx.env, &ctx.discovery).and_then(|c| {
        // Without the engine the labelled services are missing: what would
        // run is not what the user configured.
        match &c.discovery.error {
            Some(e) => Err(vec![config::Diagnostic {
                file: file.clone(),
                line: 0,
                column: 0,
                message: format!("{e}; `[docker] discover = true` needs the engine"),
            }]),
            None => Ok(c),
        }
    });
    match loaded {
        Err(errors) => {
            if p.json {
                p.json(&json!({"valid": false, "file": file, "errors": errors}));
            } else {
                for e in &errors {
                    eprintln!("error: {e}");
                }
                let also = if errors.iter().any(|e| e.file != file) {
                    " and the files it includes"
                } else {
                    ""
                };
                eprintln!(
                    "{} error{} in `{}`{also} ({why})",
                    errors.len(),
                    if errors.len() == 1 { "" } else { "s" },
                    file.display()
                );
            }
            Ok(Exit::Invalid)
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
                let mut out = json!({
                    "valid": true,
                    "file": file,
                    "source": why,
                    "services": c.services.len(),
                    "enabled_services": enabled,
                    "destinations": c.destinations.len(),
                    "repositories": repos.iter().map(|(s, d, r)| json!({"service": s, "destination": d, "repository": r})).collect::<Vec<_>>(),
                    "warnings": c.warnings,
                });
                // Only with `include`, so the output of a single file stays
                // as it always was.
                if let Some(files) = &c.files {
                    out["files"] = json!(files);
                    if let Some(list) = out["repositories"].as_array_mut() {
                        for r in list {
                            let file = c
                                .service(r["service"].as_str().unwrap_or_default())
                                .and_then(|s| s.file.clone());
                            r["file"] = json!(file);
                        }
                    }
                }
                if c.discovery.enabled {
                    out["discovery"] = discovery_json(&c);
                }
                p.json(&out);
            } else {
                for w in &c.warnings {
                    eprintln!("warning: {w}");
                }
                for w in &c.discovery.warnings {
                    eprintln!("warning: {w}");
                }
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
                if let Some(files) = &c.files {
                    p.line("  files:");
                    for f in files {
                        p.line(format!(
                            "    {}: {}",
                            FileParts::short(&f.file, &c.file),
                            defines(f)
                        ));
                    }
                }
                if c.discovery.enabled {
                    p.line(format!(
                        "  Docker labels (`{}.*`): {} labelled container{}",
                        c.discovery.label_prefix,
                        c.discovery.containers.len(),
                        if c.discovery.containers.len() == 1 {
                            ""
                        } else {
                            "s"
                        }
                    ));
                    for s in c.services.iter().filter(|s| !s.labelled_by.is_empty()) {
                        let from = s.origins.get("service").map_or("file", String::as_str);
                        p.line(format!(
                            "  {} (service from {from}; labels on {})",
                            s.name,
                            s.labelled_by.join(", ")
                        ));
                        for (k, o) in s.origins.iter().filter(|(k, _)| *k != "service") {
                            p.line(format!("    {k}: {o}"));
                        }
                    }
                }
            }
            Ok(Exit::Ok)
        }
    }
}

/// What a file defines, for the text summary: `services wiki, db; destinations nas`.
fn defines(f: &FileParts) -> String {
    let parts: Vec<String> = [
        ("services", &f.services),
        ("destinations", &f.destinations),
        ("profiles", &f.profiles),
        ("notifiers", &f.notifiers),
    ]
    .into_iter()
    .filter(|(_, names)| !names.is_empty())
    .map(|(what, names)| format!("{what} {}", names.join(", ")))
    .collect();
    if parts.is_empty() {
        "nothing".to_string()
    } else {
        parts.join("; ")
    }
}

/// What Docker label discovery found: containers read, and per service
/// the containers and where each key came from.
pub fn discovery_json(c: &Config) -> serde_json::Value {
    let services: Vec<_> = c
        .services
        .iter()
        .filter(|s| !s.labelled_by.is_empty())
        .map(|s| json!({"service": s.name, "containers": s.labelled_by, "origins": s.origins}))
        .collect();
    json!({
        "enabled": c.discovery.enabled,
        "label_prefix": c.discovery.label_prefix,
        "containers": c.discovery.containers,
        "services": services,
        "warnings": c.discovery.warnings,
    })
}
