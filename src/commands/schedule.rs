//! `schedule show|install|remove`: the scheduler entries of every enabled
//! service with a `schedule`.

use std::path::Path;

use serde::Serialize;

use super::Context;
use crate::cli::ScheduleArgs;
use crate::config::Config;
use crate::error::Error;
use crate::model::Exit;
pub use crate::schedule::apply::Action;
use crate::schedule::apply::{ApplyError, Report, Request};
use crate::schedule::{self, Backend, Entry, Origin, Scope};

pub async fn run(ctx: &Context, action: Action, a: &ScheduleArgs) -> Result<Exit, Error> {
    let c = ctx.load_config()?;
    apply(ctx, &c, action, a).await
}

/// `schedule --json`.
#[derive(Serialize)]
struct Document<'a> {
    backend: Backend,
    scope: Scope,
    action: Action,
    dry_run: bool,
    entries: &'a [Entry],
    #[serde(flatten)]
    report: &'a Report,
    log_directory: &'a Path,
}

/// Runs `action` for an already loaded configuration (`setup`
/// uses this too).
pub async fn apply(
    ctx: &Context,
    c: &Config,
    action: Action,
    a: &ScheduleArgs,
) -> Result<Exit, Error> {
    let p = &ctx.printer;
    let origin = Origin::current(&c.file).map_err(|e| Error::Other(e.to_string()))?;
    let entries = schedule::entries(c, &origin);
    let (backend, why) = a
        .backend
        .map_or_else(schedule::detect, |b| (b, "--backend"));
    let scope = if a.system || (!a.user && ctx.env.is_root) {
        Scope::System
    } else {
        Scope::User
    };
    p.info(format!("scheduler: {} ({why})", backend.as_str()));
    if entries.is_empty() && action != Action::Remove {
        p.info("note: no enabled service has a `schedule`; add `schedule = \"30 2 * * *\"` to a service to run it automatically");
    }
    if backend == Backend::Cron && a.system {
        return Err(Error::Usage(
            "`--system` does not apply to cron: entries go to the crontab of the user running the command; run it as root (e.g. with sudo) for root's crontab".into(),
        ));
    }
    let req = Request {
        backend,
        scope,
        action,
        dry_run: a.dry_run || action == Action::Show,
        jitter: c.settings.schedule_jitter,
        log_directory: &c.settings.log_directory,
    };
    let r = schedule::apply::apply(&req, &entries)
        .await
        .map_err(|e| match e {
            ApplyError::Unsupported(e) => Error::Usage(e.to_string()),
            ApplyError::Failed(e) => Error::Other(e.to_string()),
        })?;
    print(ctx, c, &req, &entries, &r);
    Ok(Exit::Ok)
}

fn print(ctx: &Context, c: &Config, req: &Request<'_>, entries: &[Entry], r: &Report) {
    let (backend, action, dry) = (req.backend, req.action, req.dry_run);
    let p = &ctx.printer;
    if p.json {
        p.json(&Document {
            backend,
            scope: req.scope,
            action,
            dry_run: dry,
            entries,
            report: r,
            log_directory: &c.settings.log_directory,
        });
        return;
    }
    let show_files = dry && action != Action::Remove;
    if show_files {
        for f in &r.files {
            p.line(format!("# --- {}", f.path.display()));
            p.line(f.content.trim_end());
        }
    }
    let verb = |done: &str, would: &str| {
        if dry {
            would.to_string()
        } else {
            done.to_string()
        }
    };
    for rm in &r.removed {
        p.report(format!(
            "{} {}",
            verb("removed", "would remove"),
            rm.display()
        ));
    }
    if action == Action::Install && !dry {
        for e in entries {
            let what = match e.job {
                schedule::Job::Backup => String::new(),
                j => format!(" ({})", j.as_str()),
            };
            p.report(format!("{}{what}: scheduled `{}`", e.service, e.schedule));
        }
        if entries.is_empty() {
            p.report("no entries to install");
        } else if !r.changed {
            p.report(format!("{} schedule already up to date", backend.as_str()));
        }
    }
    if action == Action::Remove && !dry && !r.changed {
        p.report("nothing to remove: no restic-manager entries are installed");
    }
    if action == Action::Show {
        match r.installed {
            Some(true) => p.line("installed: yes, up to date"),
            Some(false) => {
                p.line("installed: no or out of date; run `restic-manager schedule install`")
            }
            None => {}
        }
    }
    for n in &r.notes {
        p.info(format!("note: {n}"));
    }
}
