//! `validate`: every configuration error at once, or a summary.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use super::Context;
use crate::config::include::FileParts;
use crate::config::{self, Config, Diagnostic, Service};
use crate::error::Error;
use crate::model::Exit;
use crate::output::{Printer, sorted_keys};
use crate::restic::Repository;

// The `--json` documents. Fields are declared in alphabetical order (and
// embedded types sorted with `sorted_keys`): they were `json!` maps, and
// users parse them, so they stay byte for byte what they were.

/// `validate --json` of a configuration with errors.
#[derive(Debug, Serialize)]
struct Invalid<'a> {
    #[serde(serialize_with = "sorted_keys")]
    errors: &'a [Diagnostic],
    file: &'a Path,
    valid: bool,
}

/// `validate --json` of a valid configuration.
#[derive(Debug, Serialize)]
struct Valid<'a> {
    destinations: usize,
    /// With `[docker] discover` only.
    #[serde(skip_serializing_if = "Option::is_none")]
    discovery: Option<Discovery<'a>>,
    enabled_services: usize,
    file: &'a Path,
    /// With `include` only, so a single file's output stays as it was.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "sorted_keys"
    )]
    files: Option<&'a [FileParts]>,
    repositories: Vec<RepositoryLine<'a>>,
    services: usize,
    source: &'static str,
    valid: bool,
    #[serde(serialize_with = "sorted_keys")]
    warnings: &'a [Diagnostic],
}

/// One repository of a valid configuration.
#[derive(Debug, Serialize)]
struct RepositoryLine<'a> {
    destination: &'a str,
    /// With `include` only: the file that defines the service (`null` for
    /// a service from Docker labels).
    #[serde(skip_serializing_if = "Option::is_none")]
    file: Option<Option<&'a Path>>,
    repository: String,
    service: &'a str,
}

/// What Docker label discovery found: containers read, and per service
/// the containers and where each key came from.
#[derive(Debug, Serialize)]
struct Discovery<'a> {
    containers: &'a [String],
    enabled: bool,
    label_prefix: &'a str,
    services: Vec<DiscoveredService<'a>>,
    warnings: &'a [String],
}

/// A service that Docker labels define or change.
#[derive(Debug, Serialize)]
struct DiscoveredService<'a> {
    containers: &'a [String],
    origins: &'a BTreeMap<String, String>,
    service: &'a str,
}

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
    let c = match loaded {
        Ok(c) => c,
        Err(errors) => {
            print_errors(p, &file, why, &errors);
            return Ok(Exit::Invalid);
        }
    };
    let repos = repositories(&c);
    if p.json {
        let with_files = c.files.is_some();
        p.json(&Valid {
            destinations: c.destinations.len(),
            discovery: c.discovery.enabled.then(|| discovery(&c)),
            enabled_services: c.services.iter().filter(|s| s.enabled).count(),
            file: &file,
            files: c.files.as_deref(),
            repositories: repos
                .iter()
                .map(|(s, d, r)| RepositoryLine {
                    destination: d,
                    file: with_files.then_some(s.file.as_deref()),
                    repository: r.clone(),
                    service: &s.name,
                })
                .collect(),
            services: c.services.len(),
            source: why,
            valid: true,
            warnings: &c.warnings,
        });
    } else {
        print_summary(p, &c, &file, why, &repos);
    }
    Ok(Exit::Ok)
}

/// Every service's repositories (or why one cannot be opened), as
/// service, destination and location.
fn repositories(c: &Config) -> Vec<(&Service, &String, String)> {
    let mut repos = Vec::new();
    for s in &c.services {
        for t in &s.targets {
            if let Some(d) = c.destinations.get(t) {
                let r = Repository::new(d, &s.name, &c.settings.password)
                    .map_or_else(|e| format!("(error: {e})"), |r| r.display);
                repos.push((s, t, r));
            }
        }
    }
    repos
}

fn print_errors(p: &Printer, file: &Path, why: &str, errors: &[Diagnostic]) {
    if p.json {
        p.json(&Invalid {
            errors,
            file,
            valid: false,
        });
        return;
    }
    for e in errors {
        p.error(e.to_string());
    }
    let also = if errors.iter().any(|e| e.file != file) {
        " and the files it includes"
    } else {
        ""
    };
    crate::logging::notice(format!(
        "{} error{} in `{}`{also} ({why})",
        errors.len(),
        if errors.len() == 1 { "" } else { "s" },
        file.display()
    ));
}

/// The text summary of a valid configuration.
fn print_summary(
    p: &Printer,
    c: &Config,
    file: &Path,
    why: &str,
    repos: &[(&Service, &String, String)],
) {
    for w in &c.warnings {
        p.warn(w.to_string());
    }
    for w in &c.discovery.warnings {
        p.warn(w);
    }
    p.line(format!(
        "configuration `{}` ({why}) is valid",
        file.display()
    ));
    let enabled = c.services.iter().filter(|s| s.enabled).count();
    p.line(format!(
        "  {} service{} ({enabled} enabled), {} destination{}, {} repositor{}",
        c.services.len(),
        if c.services.len() == 1 { "" } else { "s" },
        c.destinations.len(),
        if c.destinations.len() == 1 { "" } else { "s" },
        repos.len(),
        if repos.len() == 1 { "y" } else { "ies" }
    ));
    for (s, d, r) in repos {
        p.line(format!("  {} → {d}: {r}", s.name));
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
        print_discovery(p, c);
    }
}

/// What Docker labels defined, service by service and key by key.
fn print_discovery(p: &Printer, c: &Config) {
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

/// What Docker label discovery found, for `--json`.
fn discovery(c: &Config) -> Discovery<'_> {
    Discovery {
        containers: &c.discovery.containers,
        enabled: c.discovery.enabled,
        label_prefix: &c.discovery.label_prefix,
        services: c
            .services
            .iter()
            .filter(|s| !s.labelled_by.is_empty())
            .map(|s| DiscoveredService {
                containers: &s.labelled_by,
                origins: &s.origins,
                service: &s.name,
            })
            .collect(),
        warnings: &c.discovery.warnings,
    }
}
