//! `status`: the health of each service and destination, from the history
//! database (fast), or with `--live` from the repositories themselves.

use super::{Context, select};
use crate::cli::StatusArgs;
use crate::error::Error;
use crate::health::json::ServiceStatus;
use crate::health::{self, ServiceHealth, Source, State};
use crate::history::{History, HistoryError};
use crate::model::Exit;
use crate::output::{Printer, Tone, age, bytes, duration_ms, table};

fn age_secs(now_ms: i64, ms: i64) -> u64 {
    u64::try_from((now_ms - ms).max(0) / 1000).unwrap_or(0)
}

pub async fn run(ctx: &Context, a: &StatusArgs) -> Result<Exit, Error> {
    let c = ctx.load_config()?;
    let services = select(&c, &a.filter.services, false)?;
    let p = &ctx.printer;
    // Read-only: works on a history the user cannot write. A damaged one
    // reads as empty, with a warning (the next `run` replaces it).
    // `--live` remembers the snapshot counts it learns, where it may.
    let dir = &c.settings.state_directory;
    let opened = if a.live {
        History::open(dir).or_else(|_| History::open_read_only(dir))
    } else {
        History::open_read_only(dir)
    };
    let (history, damaged) = match opened {
        Ok(h) => (h, false),
        Err(e @ HistoryError::Damaged { .. }) => {
            ctx.printer.warn(format!("{e}; showing no history"));
            (History::empty(&c.settings.state_directory)?, true)
        }
        Err(e) => return Err(e.into()),
    };
    let live = if a.live {
        let restic = ctx.restic(&c).await?;
        let views = health::look(&c, &restic, &services).await;
        for ((service, dest), v) in &views {
            if let Ok(list) = &v.result
                && history.is_recorded()
                && let Err(e) = history.record_snapshot_count(service, dest, list.len() as u64)
            {
                p.info(format!("note: snapshot count not recorded: {e}"));
            }
        }
        Some(views)
    } else {
        None
    };
    let now = chrono::Utc::now();
    let report = health::evaluate_services(&services, &history, now, live.as_ref())?;
    let mut exit = health::exit(&report);
    if damaged && exit == Exit::Ok {
        exit = Exit::Warning;
    }
    let now_ms = now.timestamp_millis();
    if p.json {
        p.json(
            &report
                .iter()
                .map(|s| ServiceStatus::new(s, now_ms))
                .collect::<Vec<_>>(),
        );
    } else if report.is_empty() {
        p.line("no services configured");
    } else {
        print_table(p, &report, now_ms, a.live);
    }
    if let Some(r) = report.first().and_then(|s| s.history_reset.as_ref())
        && !p.json
    {
        p.line(format!(
            "history was reset {} ago ({}): the damaged database was moved to `{}` ({}); runs before then are not listed",
            age(age_secs(now_ms, r.at_ms)),
            crate::output::local_time(r.at_ms),
            r.moved_to,
            r.reason
        ));
    }
    Ok(exit)
}

fn state_text(p: &Printer, s: State) -> String {
    // The colours of the run outcomes: green, yellow, red.
    match s {
        State::Ok => p.tone(s.as_str(), Tone::Good),
        State::New => s.as_str().to_string(),
        State::Failed => p.tone(s.as_str(), Tone::Bad),
        State::Warning | State::Stale | State::Unverified => p.tone(s.as_str(), Tone::Caution),
    }
}

fn print_table(p: &Printer, report: &[ServiceHealth], now_ms: i64, live: bool) {
    let mut rows = Vec::new();
    let mut notes = Vec::new();
    for s in report {
        let run = s.last_run.as_ref().map_or_else(
            || "never".to_string(),
            |r| {
                format!(
                    "{} ago ({})",
                    age(age_secs(now_ms, r.started_at)),
                    r.outcome
                )
            },
        );
        let name = if s.enabled {
            s.service.clone()
        } else {
            format!("{} (disabled)", s.service)
        };
        if s.destinations.is_empty() {
            rows.push(vec![
                name.clone(),
                state_text(p, s.health.state),
                run.clone(),
                "-".into(),
                "-".into(),
                "-".into(),
                "-".into(),
                "-".into(),
                "-".into(),
            ]);
        }
        for (i, d) in s.destinations.iter().enumerate() {
            let snap = d.newest_snapshot.as_ref();
            let t = d.last_target.as_ref();
            let verified = d.last_good_verify.as_ref().map_or_else(
                || "never".to_string(),
                |v| {
                    format!(
                        "{} ago",
                        age(age_secs(
                            now_ms,
                            v.finished_at_ms.unwrap_or(v.started_at_ms)
                        ))
                    )
                },
            );
            rows.push(vec![
                if i == 0 { name.clone() } else { String::new() },
                if i == 0 {
                    state_text(p, s.health.state)
                } else {
                    String::new()
                },
                if i == 0 { run.clone() } else { String::new() },
                d.destination.clone(),
                state_text(p, d.health.state),
                snap.map_or_else(
                    || "none".into(),
                    |s| {
                        let id: String = s.id.chars().take(8).collect();
                        if live && s.source == Source::Repository {
                            format!("{id} ({} ago, repo)", age(age_secs(now_ms, s.time_ms)))
                        } else {
                            format!("{id} ({} ago)", age(age_secs(now_ms, s.time_ms)))
                        }
                    },
                ),
                t.and_then(|t| t.bytes_added)
                    .map_or_else(|| "-".into(), bytes),
                t.map_or_else(|| "-".into(), |t| duration_ms(t.duration_ms)),
                verified,
            ]);
            for r in &d.health.reasons {
                notes.push(format!("{}/{}: {r}", s.service, d.destination));
            }
            for r in &d.disagreements {
                if !d.health.reasons.contains(r) {
                    notes.push(format!("{}/{}: {r}", s.service, d.destination));
                }
            }
        }
        if s.destinations.is_empty() {
            for r in &s.health.reasons {
                notes.push(format!("{}: {r}", s.service));
            }
        }
    }
    p.line(table(
        &[
            "SERVICE",
            "HEALTH",
            "LAST RUN",
            "DESTINATION",
            "STATE",
            "NEWEST SNAPSHOT",
            "ADDED",
            "DURATION",
            "VERIFIED",
        ],
        &rows,
    ));
    if !notes.is_empty() {
        p.line("");
        for n in &notes {
            p.line(n);
        }
    }
}
