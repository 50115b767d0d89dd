//! `verify`: check repositories, read their data, run restore drills.

use serde::Serialize;

use super::{Context, select};
use crate::cli::VerifyArgs;
use crate::config::did_you_mean;
use crate::error::Error;
use crate::history::History;
use crate::model::{Exit, Outcome, VerifyKind};
use crate::output::{Printer, bytes, duration_ms, table};
use crate::process::Shutdown;
use crate::verify::{Detail, DrillDetail, Request, Verifier, VerifyReport, overall, spec};

/// `verify --json`.
#[derive(Serialize)]
struct VerifyDoc<'a> {
    notifications: &'a [crate::notify::Delivery],
    outcome: Outcome,
    verifies: &'a [VerifyReport],
}

pub async fn run(ctx: &Context, a: &VerifyArgs) -> Result<Exit, Error> {
    let c = ctx.load_config()?;
    let subset = a
        .read_data_subset
        .as_deref()
        .map(spec::parse_subset)
        .transpose()
        .map_err(Error::Usage)?;
    let names: Vec<&str> = c.destinations.keys().map(String::as_str).collect();
    for d in &a.destinations {
        if !c.destinations.contains_key(d) {
            let mut msg = format!("unknown destination `{d}`");
            msg.push_str(&did_you_mean(d, &names).unwrap_or_else(|| {
                format!("; destinations are {}", crate::config::load::list(&names))
            }));
            return Err(Error::Usage(msg));
        }
    }
    let services = select(&c, &a.services, true)?;
    let p = &ctx.printer;
    let any_target = services.iter().any(|s| {
        s.targets
            .iter()
            .any(|t| a.destinations.is_empty() || a.destinations.contains(t))
    });
    if !any_target {
        p.info("nothing to verify: no selected service backs up to the selected destinations");
        return Ok(Exit::Ok);
    }
    let restic = ctx.restic(&c).await?;
    // As in `run`: a broken history never stops the verification.
    let history = History::open_for_run(&c.settings.state_directory);
    for n in history.notes() {
        p.info(format!("note: {n}"));
    }
    if let Some(r) = history.recovery() {
        p.warn(r.to_string());
    }

    // As in `run`: the first SIGINT/SIGTERM stops restic (SIGINT, so it
    // removes its lock), lets the drill remove its temporary folder and
    // records "interrupted"; a second one exits at once.
    let (trigger, shutdown) = Shutdown::new();
    let signals = crate::engine::signals::watch_signals(
        trigger,
        "signal received, stopping restic and cleaning up (send again to exit at once)",
    );

    let request = Request {
        deep: a.deep,
        subset,
        drill: a.drill,
        trigger: crate::schedule::trigger(),
    };
    let printer = *p;
    let note = move |s: &str| printer.info(s);
    let verifier = Verifier {
        config: &c,
        restic: &restic,
        history: &history,
        shutdown: shutdown.clone(),
        note: &note,
        request: &request,
        destinations: &a.destinations,
    };
    let reports = verifier.run(&services).await;
    signals.abort();

    let dispatch = crate::notify::Dispatch::new(&c, *p);
    let deliveries = crate::verify::announce(&c, &history, &restic, &dispatch, &reports).await;

    let worst = overall(&reports);
    let worst = if history.recovery().is_some() {
        worst.worst(Outcome::Warning)
    } else {
        worst
    };
    if p.json {
        p.json(&VerifyDoc {
            notifications: &deliveries,
            outcome: worst,
            verifies: &reports,
        });
    } else {
        print_reports(p, &reports);
    }
    Ok(match worst {
        Outcome::Interrupted => Exit::Interrupted(shutdown.signal()),
        o => Exit::from(o),
    })
}

/// What a report read, in a few words.
fn read_summary(r: &VerifyReport) -> String {
    match &r.detail {
        Detail::Drill(d) => drill_summary(d),
        Detail::Check(c) => {
            let what = match c.read.as_str() {
                "none" => "structure".to_string(),
                "all" => "all data".to_string(),
                s => format!("subset {s}"),
            };
            match c.packs.as_ref().and_then(|p| p.packs_read) {
                Some(p) => format!("{what} ({p} packs)"),
                None => what,
            }
        }
        // Failed before anything was read.
        Detail::Empty {} if r.kind == VerifyKind::Drill => "-".into(),
        Detail::Empty {} => "structure".into(),
    }
}

/// What a drill restored and which check each dump got.
fn drill_summary(d: &DrillDetail) -> String {
    let mut parts = Vec::new();
    if let Some(f) = d.files_checked {
        parts.push(format!(
            "{f} files, {}",
            bytes(d.bytes_restored.unwrap_or(0))
        ));
    }
    if let Some(dumps) = &d.dumps {
        // Which check each dump got, e.g. `dump shop (pg_restore)`.
        let list: Vec<String> = dumps
            .iter()
            .map(|x| format!("{} ({})", x.name, x.check.unwrap_or("read_back")))
            .collect();
        parts.push(format!(
            "dump{} {}",
            if list.len() == 1 { "" } else { "s" },
            list.join(", ")
        ));
    }
    if parts.is_empty() {
        "-".into()
    } else {
        parts.join(", ")
    }
}

fn print_reports(p: &Printer, reports: &[VerifyReport]) {
    let rows: Vec<Vec<String>> = reports
        .iter()
        .map(|r| {
            vec![
                r.service.clone(),
                r.destination.clone(),
                r.kind.to_string(),
                p.outcome(r.outcome),
                read_summary(r),
                duration_ms(r.duration_ms),
                r.error_class
                    .map_or_else(|| "-".into(), |c| c.as_str().to_string()),
            ]
        })
        .collect();
    p.report(table(
        &[
            "SERVICE",
            "DESTINATION",
            "KIND",
            "OUTCOME",
            "READ",
            "DURATION",
            "ERROR",
        ],
        &rows,
    ));
    for r in reports {
        let at = format!("{} → {} ({})", r.service, r.destination, r.kind);
        if let (Some(e), Some(c)) = (&r.error, r.error_class) {
            p.error(format!("{at}: [{}] {e}", c.as_str()));
        }
        for w in &r.warnings {
            p.warn(format!("{at}: {w}"));
        }
    }
}
