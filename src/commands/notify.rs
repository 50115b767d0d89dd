//! `notify test [NAME]` and `notify check`.

use serde::Serialize;

use super::Context;
use crate::cli::NotifyTestArgs;
use crate::config::{did_you_mean, load::list};
use crate::error::Error;
use crate::history::History;
use crate::model::{Exit, Outcome};
use crate::notify::{Delivery, Dispatch, StaleService};
use crate::output::table;

/// `notify test --json`.
#[derive(Serialize)]
struct TestDoc<'a> {
    notifiers: &'a [Delivery],
    ok: bool,
}

/// `notify check --json`.
#[derive(Serialize)]
struct CheckDoc<'a> {
    notifications: &'a [Delivery],
    stale: &'a [StaleService],
}

pub async fn test(ctx: &Context, a: &NotifyTestArgs) -> Result<Exit, Error> {
    let c = ctx.load_config()?;
    let p = &ctx.printer;
    let names = c.notify.names();
    if names.is_empty() {
        return Err(Error::Usage(
            "no notifiers are configured; add a `[notifiers.NAME]` table (or `[notifications] discord_webhook_url`)".into(),
        ));
    }
    if let Some(n) = &a.name
        && c.notify.get(n).is_none()
    {
        let mut msg = format!("unknown notifier `{n}`");
        msg.push_str(
            &did_you_mean(n, &names).unwrap_or_else(|| format!("; notifiers are {}", list(&names))),
        );
        return Err(Error::Usage(msg));
    }
    let dispatch = Dispatch::new(&c, *p);
    let results = dispatch.test(a.name.as_deref()).await;
    let failed = results.iter().any(|d| !d.ok());
    if p.json {
        p.json(&TestDoc {
            notifiers: &results,
            ok: !failed,
        });
    } else {
        let rows: Vec<Vec<String>> = results
            .iter()
            .map(|d| {
                vec![
                    d.notifier.clone(),
                    d.kind.to_string(),
                    p.outcome(if d.ok() { Outcome::Ok } else { Outcome::Failed }),
                    d.detail.clone(),
                ]
            })
            .collect();
        p.line(table(&["NOTIFIER", "TYPE", "RESULT", "DETAIL"], &rows));
    }
    Ok(Exit::failed_if(failed))
}

pub async fn check(ctx: &Context) -> Result<Exit, Error> {
    let c = ctx.load_config()?;
    let p = &ctx.printer;
    let history = History::open_read_only(&c.settings.state_directory)?;
    let dispatch = Dispatch::new(&c, *p);
    let (stale, deliveries) = dispatch
        .check_stale(&c, &history, &[])
        .await
        .map_err(Error::from)?;
    let failed = deliveries.iter().any(|d| !d.ok());
    if p.json {
        p.json(&CheckDoc {
            notifications: &deliveries,
            stale: &stale,
        });
    } else if stale.is_empty() {
        p.line("no stale services: every enabled service has a recent successful backup");
    } else {
        let rows: Vec<Vec<String>> = stale
            .iter()
            .map(|s| {
                let sent: Vec<String> = deliveries
                    .iter()
                    .filter(|d| d.service.as_deref() == Some(s.service.as_str()))
                    .map(|d| format!("{} ({})", d.notifier, d.result))
                    .collect();
                vec![
                    s.service.clone(),
                    s.reasons.join("; "),
                    if sent.is_empty() {
                        "-".to_string()
                    } else {
                        sent.join(", ")
                    },
                ]
            })
            .collect();
        p.line(table(&["SERVICE", "STALE", "NOTIFIED"], &rows));
    }
    Ok(if failed {
        Exit::Failed
    } else if stale.is_empty() {
        Exit::Ok
    } else {
        Exit::Warning
    })
}
