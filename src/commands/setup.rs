//! `setup`: directories, password, repositories.

use super::Context;
use crate::cli::SetupArgs;
use crate::engine::setup::setup;
use crate::error::Error;
use crate::model::Exit;
use crate::process::Shutdown;

pub async fn run(ctx: &Context, a: &SetupArgs) -> Result<Exit, Error> {
    let p = &ctx.printer;
    let c = ctx.load_config()?;
    // Schedules come with setup unless asked not to, and only when there is
    // something to schedule (so a config without schedules never touches
    // the crontab).
    let schedule = !a.no_schedule && c.services.iter().any(|s| s.enabled && s.schedule.is_some());
    if schedule && p.json {
        return Err(Error::Usage(
            "`setup --json` would also install schedules, which print their own report; run `restic-manager setup --json --no-schedule`, then `restic-manager schedule install --json`".into(),
        ));
    }
    let restic = match ctx.restic(&c).await {
        Ok(r) => Some(r),
        Err(e) if a.dry_run => {
            p.info(format!("note: {e}"));
            None
        }
        Err(e) => return Err(e),
    };
    let r = setup(&c, restic.as_ref(), a.dry_run, &Shutdown::never()).await;
    let mut failed = !r.errors.is_empty() || r.repositories.iter().any(|x| x.error.is_some());
    // The dashboard's access token, when the config has a `[web]` table.
    let token = &c.web.token_file;
    let mut token_note = None;
    if c.web.configured && !token.exists() {
        if a.dry_run {
            token_note = Some(format!(
                "would generate a web access token in {}",
                token.display()
            ));
        } else {
            match crate::web::auth::write_token_file(token) {
                Ok(()) => {
                    token_note = Some(format!(
                        "generated a web access token in {} (mode 0600)",
                        token.display()
                    ));
                }
                Err(e) => {
                    failed = true;
                    p.error(format!(
                        "cannot create the web token file `{}`: {e}",
                        token.display()
                    ));
                }
            }
        }
    }
    if p.json {
        if !a.dry_run {
            remember_services(&c);
        }
        if let Some(n) = &token_note {
            p.info(n);
        }
        p.json(&r);
        return Ok(Exit::failed_if(failed));
    }
    let would = if a.dry_run { "would create" } else { "created" };
    for d in &r.directories_created {
        p.report(format!("{would} directory {}", d.display()));
    }
    if let Some(pw) = &r.password_generated {
        if a.dry_run {
            p.report(format!(
                "would generate a repository password in {}",
                pw.display()
            ));
        } else {
            p.report(format!(
                "generated a repository password in {} (mode 0600)",
                pw.display()
            ));
            p.report(
                "  KEEP A COPY OF THIS FILE somewhere safe (a password manager, another machine):",
            );
            p.report("  without it, none of the backups can be restored.");
        }
    }
    if let Some(n) = &token_note {
        p.report(n);
    }
    for repo in &r.repositories {
        let line = match (repo.action.as_str(), &repo.error) {
            (_, Some(e)) => format!("{} → {}: FAILED: {e}", repo.service, repo.destination),
            ("created", _) => format!(
                "{} → {}: initialised {}",
                repo.service, repo.destination, repo.repository
            ),
            ("would_create", _) => format!(
                "{} → {}: would initialise {}",
                repo.service, repo.destination, repo.repository
            ),
            _ => format!(
                "{} → {}: {} already exists",
                repo.service, repo.destination, repo.repository
            ),
        };
        p.report(line);
    }
    for e in &r.errors {
        p.error(e);
    }
    if !a.dry_run {
        remember_services(&c);
    }
    if r.unchanged() && token_note.is_none() && !failed {
        p.report("nothing to do: everything is already set up");
    } else if !failed && !a.dry_run {
        p.report("setup complete; next: `restic-manager run`");
    }
    if schedule && !failed {
        let args = crate::cli::ScheduleArgs {
            backend: None,
            user: false,
            system: false,
            dry_run: a.dry_run,
        };
        return super::schedule::apply(ctx, &c, super::schedule::Action::Install, &args).await;
    }
    Ok(Exit::failed_if(failed))
}

/// Records in history that the enabled services exist: one without a
/// snapshot is then `new` until its max_age has passed, and `stale` after.
fn remember_services(c: &crate::config::Config) {
    let history = crate::history::History::open_for_run(&c.settings.state_directory);
    if let Some(r) = history.recovery() {
        crate::logging::warn(r.to_string());
    }
    for s in c.services.iter().filter(|s| s.enabled) {
        if let Err(e) = history.saw(&s.name, &s.targets) {
            crate::logging::warn(e.to_string());
            break;
        }
    }
}
