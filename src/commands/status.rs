//! `status`: answered from the history database, without calling restic.

use serde_json::json;

use super::{Context, select};
use crate::cli::ServiceFilter;
use crate::error::Error;
use crate::history::{History, now_ms};
use crate::output::{age, bytes, duration_ms, local_time, table};

fn age_secs(ms: i64) -> u64 {
    u64::try_from((now_ms() - ms).max(0) / 1000).unwrap_or(0)
}

pub fn run(ctx: &Context, f: &ServiceFilter) -> Result<i32, Error> {
    let c = ctx.load_config()?;
    let services = select(&c, &f.services, false)?;
    let p = &ctx.printer;
    let history = History::open(&c.settings.state_directory)?;
    let mut code = 0;
    let mut out = Vec::new();
    let mut rows = Vec::new();
    let mut notes = Vec::new();
    for s in &services {
        let last = history.last_run(&s.name)?;
        let latest = history.latest_snapshots(&s.name)?;
        if let Some(r) = &last {
            code = match (code, r.outcome.as_str()) {
                (_, "failed") | (1, _) => 1,
                (_, "warning" | "interrupted") => 3,
                (c, _) => c,
            };
        }
        let dests: Vec<_> = s
            .targets
            .iter()
            .map(|t| {
                let l = latest.iter().find(|l| &l.destination == t);
                json!({
                    "destination": t,
                    "snapshot_id": l.map(|l| &l.snapshot_id),
                    "snapshot_time": l.map(|l| chrono::DateTime::from_timestamp_millis(l.finished_at).map(|d| d.to_rfc3339())),
                    "snapshot_age_seconds": l.map(|l| age_secs(l.finished_at)),
                    "bytes_added": l.and_then(|l| l.bytes_added),
                    "duration_ms": l.map(|l| l.duration_ms),
                })
            })
            .collect();
        out.push(json!({
            "service": s.name,
            "enabled": s.enabled,
            "last_run": last.as_ref().map(|r| json!({
                "id": r.id,
                "started_at": chrono::DateTime::from_timestamp_millis(r.started_at).map(|d| d.to_rfc3339()),
                "finished_at": r.finished_at.and_then(chrono::DateTime::from_timestamp_millis).map(|d| d.to_rfc3339()),
                "age_seconds": age_secs(r.started_at),
                "outcome": r.outcome,
                "error_class": r.error_class,
                "message": r.error_message,
                "log_file": r.log_file,
            })),
            "destinations": dests,
        }));
        let (when, outcome) = match &last {
            Some(r) => (
                format!(
                    "{} ({} ago)",
                    local_time(r.started_at),
                    age(age_secs(r.started_at))
                ),
                p.outcome(&r.outcome),
            ),
            None => ("never".to_string(), "-".to_string()),
        };
        for (i, t) in s.targets.iter().enumerate() {
            let l = latest.iter().find(|l| &l.destination == t);
            let (first, when, outcome) = if i == 0 {
                (s.name.clone(), when.clone(), outcome.clone())
            } else {
                (String::new(), String::new(), String::new())
            };
            rows.push(vec![
                first,
                when,
                outcome,
                t.clone(),
                l.map_or_else(
                    || "none".into(),
                    |l| l.snapshot_id.chars().take(8).collect(),
                ),
                l.map_or_else(|| "-".into(), |l| age(age_secs(l.finished_at))),
                l.and_then(|l| l.bytes_added)
                    .map_or_else(|| "-".into(), bytes),
                l.map_or_else(|| "-".into(), |l| duration_ms(l.duration_ms)),
            ]);
        }
        if let Some(r) = &last
            && let (Some(m), "failed" | "warning" | "interrupted") =
                (&r.error_message, r.outcome.as_str())
        {
            notes.push(format!("{}: {m}", s.name));
        }
    }
    if p.json {
        p.json(&out);
    } else if rows.is_empty() {
        p.line("no services configured");
    } else {
        p.line(table(
            &[
                "SERVICE",
                "LAST RUN",
                "OUTCOME",
                "DESTINATION",
                "SNAPSHOT",
                "AGE",
                "ADDED",
                "DURATION",
            ],
            &rows,
        ));
        for n in &notes {
            p.line(n);
        }
    }
    Ok(code)
}
