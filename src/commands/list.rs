//! `list`: services at a glance.

use super::Context;
use crate::engine::plan::{ServiceSummary, next_runs, source_words};
use crate::error::Error;
use crate::model::Exit;
use crate::output::table;

pub fn run(ctx: &Context) -> Result<Exit, Error> {
    let c = ctx.load_config()?;
    let p = &ctx.printer;
    if p.json {
        let v: Vec<_> = c.services.iter().map(ServiceSummary::new).collect();
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
                match next_runs(s).first() {
                    Some(t) => t.format("%Y-%m-%d %H:%M").to_string(),
                    _ => "-".into(),
                },
                source_words(s).join(" "),
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
