//! `run`: back up services now.

use serde::Serialize;

use super::{Context, select};
use crate::cli::RunArgs;
use crate::config::{Config, Service};
use crate::engine::Progress;
use crate::engine::plan::{Plan, ServicePlan, TargetPlan};
use crate::engine::run::{Runner, ServiceReport};
use crate::error::Error;
use crate::history::History;
use crate::model::{Exit, Outcome};
use crate::notify::{self, Dispatch};
use crate::output::{PlainProgress, Printer, TermProgress, bytes, duration_ms, table};
use crate::process::Shutdown;
use crate::restic::ErrorClass;

pub async fn run(ctx: &Context, a: &RunArgs) -> Result<Exit, Error> {
    let c = match ctx.load_config() {
        Ok(c) => c,
        Err(e) => return Err(config_failed(ctx, a, e).await),
    };
    let services = select(&c, &a.services, true)?;
    let p = &ctx.printer;
    if a.dry_run {
        return Ok(dry_run(&c, &services, p));
    }
    // The engine could not be asked: the services its labels define did
    // not run, and nobody would hear of it otherwise (the warning was
    // printed when the configuration was loaded).
    let undiscovered = c.discovery.error.as_deref();
    if services.is_empty() {
        p.info("no enabled services to run");
        if let Some(e) = undiscovered {
            p.error(e);
            return Ok(Exit::Failed);
        }
        return Ok(Exit::Ok);
    }
    // Notifications: healthchecks `/start` before each service, a
    // long-running timer during it, the result after; failures before any
    // backup starts (restic missing, …) are reported too.
    let dispatch = Dispatch::new(&c, *p);
    let restic = match ctx.restic(&c).await {
        Ok(r) => r,
        Err(e) => {
            let msg = e.to_string();
            dispatch
                .failed_before_start(&services, ErrorClass::ResticMissing, &msg)
                .await;
            return Err(e);
        }
    };
    // Never fails: a broken history is reset or replaced by one in memory,
    // and each service's report carries the warning.
    let history = History::open_for_run(&c.settings.state_directory);
    for n in history.notes() {
        p.info(format!("note: {n}"));
    }

    // Our own SIGINT/SIGTERM: tell every child (restic gets SIGINT and
    // removes its lock), let post hooks clean up, record "interrupted". A
    // second signal exits at once.
    let (trigger, shutdown) = Shutdown::new();
    let signals = crate::engine::signals::watch_signals(
        trigger,
        "signal received, stopping restic and running post hooks (send again to exit at once)",
    );

    let term = TermProgress::for_terminal(p);
    let plain = PlainProgress(*p);
    let progress: &dyn Progress = match &term {
        Some(t) => t,
        None => &plain,
    };
    let runner = Runner {
        config: &c,
        restic: &restic,
        history: &history,
        shutdown: shutdown.clone(),
        progress,
        trigger: &crate::schedule::trigger(),
        allow_mass_forget: a.allow_mass_forget,
    };
    let plan = Plan::new(&c, &services);
    let (reports, mut deliveries) = crate::engine::notified::run(&runner, &dispatch, &plan).await;
    signals.abort();
    drop(term);
    // Services that did not run now may have silently stopped running.
    if !dispatch.is_empty() && shutdown.signal().is_none() {
        let ran: Vec<&str> = services.iter().map(|s| s.name.as_str()).collect();
        match dispatch.check_stale(&c, &history, &ran).await {
            Ok((_, d)) => deliveries.extend(d),
            Err(e) => p.info(format!("warning: stale check for notifications: {e}")),
        }
    }

    let mut overall = reports.iter().fold(Outcome::Ok, |o, r| o.worst(r.outcome));
    if undiscovered.is_some() {
        overall = overall.worst(Outcome::Failed);
    }
    if p.json {
        p.json(&RunDoc {
            discovery_error: undiscovered,
            notifications: &deliveries,
            outcome: overall,
            services: &reports,
        });
    } else {
        print_reports(p, &reports);
    }
    if let Some(e) = undiscovered {
        p.error(e);
    }
    Ok(match overall {
        Outcome::Interrupted => Exit::Interrupted(shutdown.signal()),
        o => Exit::from(o),
    })
}

/// `run --json`.
#[derive(Serialize)]
struct RunDoc<'a> {
    /// Docker could not be asked for the services its labels define.
    #[serde(skip_serializing_if = "Option::is_none")]
    discovery_error: Option<&'a str>,
    notifications: &'a [notify::Delivery],
    outcome: Outcome,
    services: &'a [ServiceReport],
}

/// Tells the notifiers that could still be read that the configuration is
/// broken (a scheduled run would otherwise fail without a word), then
/// hands the error back.
async fn config_failed(ctx: &Context, a: &RunArgs, e: Error) -> Error {
    if a.dry_run || !matches!(e, Error::Config(_)) {
        return e;
    }
    if let Ok((file, _)) = crate::config::discover(&ctx.env, ctx.config_flag.as_ref()) {
        notify::config_failure(&ctx.env, &file, &e.to_string(), ctx.printer).await;
    }
    e
}

fn print_reports(p: &Printer, reports: &[ServiceReport]) {
    let mut rows = Vec::new();
    for r in reports {
        if r.targets.is_empty() {
            rows.push(vec![
                r.service.clone(),
                p.outcome(r.outcome),
                "-".into(),
                "-".into(),
                "-".into(),
                "-".into(),
                "-".into(),
                duration_ms(r.duration_ms),
            ]);
        }
        for (i, t) in r.targets.iter().enumerate() {
            rows.push(vec![
                if i == 0 {
                    r.service.clone()
                } else {
                    String::new()
                },
                if i == 0 {
                    p.outcome(r.outcome)
                } else {
                    String::new()
                },
                match &t.dump {
                    Some(d) => format!("{} dump {d} ({})", t.destination, t.outcome.as_str()),
                    None => format!("{} ({})", t.destination, t.outcome.as_str()),
                },
                t.snapshot_id
                    .as_deref()
                    .map_or_else(|| "-".into(), |s| s.chars().take(8).collect()),
                t.files_new.map_or_else(|| "-".into(), |v| v.to_string()),
                t.files_changed
                    .map_or_else(|| "-".into(), |v| v.to_string()),
                t.bytes_added.map_or_else(|| "-".into(), bytes),
                duration_ms(t.duration_ms),
            ]);
        }
    }
    p.report(table(
        &[
            "SERVICE",
            "OUTCOME",
            "DESTINATION",
            "SNAPSHOT",
            "NEW",
            "CHANGED",
            "ADDED",
            "DURATION",
        ],
        &rows,
    ));
    for r in reports {
        if let Some(down) = r.containers_stopped_ms
            && !r.containers_stopped.is_empty()
        {
            p.report(format!(
                "{}: containers {} were stopped for {}",
                r.service,
                r.containers_stopped.join(", "),
                duration_ms(down)
            ));
        }
        if let Some(e) = &r.error {
            p.error(format!("{}: {e}", r.service));
        }
        // The report keeps one error per service; every destination whose
        // retention failed is named, as `--json` names them.
        for t in &r.targets {
            if let Some(e) = &t.retention_error {
                let msg = format!("retention on `{}`: {e}", t.destination);
                if r.error.as_deref() != Some(msg.as_str()) && !r.warnings.iter().any(|w| w == &msg)
                {
                    p.error(format!("{}: {msg}", r.service));
                }
            }
        }
        for w in &r.warnings {
            p.warn(format!("{}: {w}", r.service));
        }
        if r.outcome != Outcome::Ok
            && let Some(l) = &r.log_file
        {
            crate::logging::notice(format!("  log: {}", l.display()));
        }
    }
}

/// `run --dry-run --json`.
#[derive(Serialize)]
struct DryRun<'a> {
    dry_run: bool,
    errors: &'a [String],
    ok: bool,
    services: &'a Plan<'a>,
}

fn dry_run(c: &Config, services: &[&Service], p: &Printer) -> Exit {
    let plan = Plan::new(c, services);
    // What the real run would fail on: a dry run that finds it says so,
    // on stderr and in its exit code, not only in the plan.
    let problems = plan.problems();
    let exit = Exit::failed_if(!problems.is_empty());
    if p.json {
        p.json(&DryRun {
            dry_run: true,
            errors: &problems,
            ok: problems.is_empty(),
            services: &plan,
        });
        return exit;
    }
    let report = |problems: &[String]| {
        for e in problems {
            p.error(e);
        }
        if !problems.is_empty() {
            p.error(format!(
                "the dry run found {} problem{} that would make the run fail",
                problems.len(),
                if problems.len() == 1 { "" } else { "s" }
            ));
        }
    };
    if p.quiet {
        report(&problems);
        return exit;
    }
    p.line("dry run: nothing will be executed");
    for s in &plan.services {
        print_service_plan(p, s);
    }
    report(&problems);
    exit
}

fn print_service_plan(p: &Printer, s: &ServicePlan) {
    p.line(format!("\nservice {}", s.service));
    for h in &s.pre_backup_hooks {
        p.line(format!("  pre hook  {h}"));
    }
    match (&s.sources, &s.source_error) {
        (_, Some(e)) => p.line(format!("  sources   ERROR: {e}")),
        (Some(src), _) => p.line(format!(
            "  sources   {}",
            src.iter()
                .map(|x| x.display().to_string())
                .collect::<Vec<_>>()
                .join(" ")
        )),
        _ => {}
    }
    for d in &s.dumps {
        p.line(format!(
            "  dump      {} ({}) → /{}",
            d.name, d.kind, d.filename
        ));
    }
    for t in &s.targets {
        match t {
            TargetPlan::Ready {
                destination,
                repository,
                retention,
                ..
            } => {
                p.line(format!("  backup →  {destination}: {repository}"));
                if !retention.is_empty() {
                    p.line(format!("  forget    --prune {}", retention.join(" ")));
                }
            }
            TargetPlan::Broken { destination, error } => {
                p.line(format!("  backup →  {destination}: {error}"));
            }
        }
    }
    for h in &s.post_backup_hooks {
        p.line(format!("  post hook {h}"));
    }
}
