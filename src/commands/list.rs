//! `list`: services at a glance.

use serde_json::{Value, json};

use super::Context;
use crate::config::Service;
use crate::error::Error;
use crate::model::Exit;
use crate::output::table;

/// What the service reads, in words (`volume:NAME`, `dump:NAME`,
/// `script:CMD`).
fn sources(s: &Service) -> Vec<String> {
    let mut v: Vec<String> = s.paths.iter().map(|x| x.display().to_string()).collect();
    v.extend(s.volumes.iter().map(|x| format!("volume:{x}")));
    v.extend(s.dumps.iter().map(|d| format!("dump:{}", d.name)));
    if let Some(b) = &s.backup_script {
        v.push(format!("script:{b}"));
    }
    v
}

/// The next three scheduled runs of an enabled service.
fn next(s: &Service) -> Vec<chrono::DateTime<chrono::Local>> {
    s.schedule
        .as_deref()
        .filter(|_| s.enabled)
        .map(|e| crate::schedule::next_runs(e, chrono::Local::now(), 3))
        .unwrap_or_default()
}

/// One service as `list --json` prints it (the dashboard's `/api/services`
/// extends it).
pub fn service_json(s: &Service) -> Value {
    let mut v = json!({
        "name": s.name,
        "enabled": s.enabled,
        "profile": s.profile,
        "description": s.description,
        "targets": s.targets,
        "schedule": s.schedule,
        "next_runs": next(s)
            .iter()
            .map(chrono::DateTime::to_rfc3339)
            .collect::<Vec<_>>(),
        "paths": s.paths,
        "volumes": s.volumes,
        "sources": sources(s),
    });
    super::config_show::with_origins(&mut v, s);
    v
}

pub fn run(ctx: &Context) -> Result<Exit, Error> {
    let c = ctx.load_config()?;
    let p = &ctx.printer;
    if p.json {
        let v: Vec<_> = c.services.iter().map(service_json).collect();
        p.json(&v);
        return Ok(Exit::Ok);
    }
    if c.services.is_empty() {
        p.line("no services configured");
        return Ok(Exit::Ok);
    }
    let rows: Vec<Vec<String>> = c
        .services
        .iter()
        .map(|s| {
            vec![
                s.name.clone(),
                if s.enabled { "yes".into() } else { "no".into() },
                s.profile.clone().unwrap_or_else(|| "-".into()),
                s.targets.join(","),
                s.schedule.clone().unwrap_or_else(|| "-".into()),
                match next(s).first() {
                    Some(t) => t.format("%Y-%m-%d %H:%M").to_string(),
                    _ => "-".into(),
                },
                sources(s).join(" "),
            ]
        })
        .collect();
    p.line(table(
        &[
            "SERVICE", "ENABLED", "PROFILE", "TARGETS", "SCHEDULE", "NEXT RUN", "SOURCES",
        ],
        &rows,
    ));
    for s in c.services.iter().filter(|s| !s.labelled_by.is_empty()) {
        let from = s.origins.get("service").map_or("file", String::as_str);
        p.line(format!(
            "{}: from {from}; Docker labels on {}",
            s.name,
            s.labelled_by.join(", ")
        ));
    }
    Ok(Exit::Ok)
}
