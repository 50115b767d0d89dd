//! `list`: services at a glance.

use serde_json::json;

use super::Context;
use crate::error::Error;
use crate::output::table;

pub fn run(ctx: &Context) -> Result<i32, Error> {
    let c = ctx.load_config()?;
    let p = &ctx.printer;
    let sources = |s: &crate::config::Service| {
        let mut v: Vec<String> = s.paths.iter().map(|x| x.display().to_string()).collect();
        v.extend(s.volumes.iter().map(|x| format!("volume:{x}")));
        v.extend(s.dumps.iter().map(|d| format!("dump:{}", d.name)));
        if let Some(b) = &s.backup_script {
            v.push(format!("script:{b}"));
        }
        v
    };
    let next = |s: &crate::config::Service| {
        s.schedule
            .as_deref()
            .filter(|_| s.enabled)
            .map(|e| crate::schedule::next_runs(e, chrono::Local::now(), 3))
            .unwrap_or_default()
    };
    if p.json {
        let v: Vec<_> = c
            .services
            .iter()
            .map(|s| {
                json!({
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
                })
            })
            .collect();
        p.json(&v);
        return Ok(0);
    }
    if c.services.is_empty() {
        p.line("no services configured");
        return Ok(0);
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
    Ok(0)
}
