//! `schedule show|install|remove`: the scheduler entries of every enabled
//! service with a `schedule`.

use crate::model::Exit;

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde_json::json;

use super::Context;
use crate::cli::ScheduleArgs;
use crate::config::Config;
use crate::error::Error;
use crate::schedule::{self, Backend, Entry, File, Origin, Scope, cron, launchd, systemd, windows};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Show,
    Install,
    Remove,
}

pub async fn run(ctx: &Context, action: Action, a: &ScheduleArgs) -> Result<Exit, Error> {
    let c = ctx.load_config()?;
    apply(ctx, &c, action, a).await
}

/// What one invocation did or would do, for `--json` and the summary.
#[derive(Default)]
struct Report {
    files: Vec<File>,
    removed: Vec<PathBuf>,
    notes: Vec<String>,
    changed: bool,
    installed: Option<bool>,
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
    let origin = Origin::current(&c.file).map_err(Error::Other)?;
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
    let dry = a.dry_run || action == Action::Show;
    let r = match backend {
        Backend::Cron => {
            if a.system {
                return Err(Error::Usage(
                    "`--system` does not apply to cron: entries go to the crontab of the user running the command; run it as root (e.g. with sudo) for root's crontab".into(),
                ));
            }
            cron_apply(c, &entries, action, dry).await?
        }
        Backend::Systemd => systemd_apply(c, &entries, action, scope, dry).await?,
        Backend::Launchd => {
            let dir = launchd::plist_dir(scope);
            let files = entries
                .iter()
                .map(|e| launchd::plist(e, &dir))
                .collect::<Result<Vec<_>, _>>()
                .map_err(Error::Usage)?;
            foreign(
                Backend::Launchd,
                "macOS",
                cfg!(target_os = "macos"),
                files,
                dry,
            )?
        }
        Backend::Windows => {
            let jitter = c.settings.schedule_jitter;
            let files = entries
                .iter()
                .map(|e| windows::task_xml(e, jitter))
                .collect::<Result<Vec<_>, _>>()
                .map_err(Error::Usage)?;
            foreign(Backend::Windows, "Windows", cfg!(windows), files, dry)?
        }
    };
    print(ctx, c, backend, scope, action, dry, &entries, &r);
    Ok(Exit::Ok)
}

#[allow(clippy::too_many_arguments)]
fn print(
    ctx: &Context,
    c: &Config,
    backend: Backend,
    scope: Scope,
    action: Action,
    dry: bool,
    entries: &[Entry],
    r: &Report,
) {
    let p = &ctx.printer;
    if p.json {
        p.json(&json!({
            "backend": backend,
            "scope": scope,
            "action": match action { Action::Show => "show", Action::Install => "install", Action::Remove => "remove" },
            "dry_run": dry,
            "entries": entries,
            "files": r.files,
            "removed": r.removed,
            "installed": r.installed,
            "changed": r.changed,
            "notes": r.notes,
            "log_directory": c.settings.log_directory,
        }));
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

async fn cron_apply(
    c: &Config,
    entries: &[Entry],
    action: Action,
    dry: bool,
) -> Result<Report, Error> {
    let current = cron::read().await.map_err(Error::Other)?;
    let block = if action == Action::Remove {
        String::new()
    } else {
        cron::block(entries)
    };
    let next = cron::merge(&current, &block).map_err(Error::Other)?;
    let mut r = Report {
        changed: next != current,
        installed: Some(cron::current_block(&current).unwrap_or_default() == block),
        ..Report::default()
    };
    if action != Action::Remove {
        r.files.push(File {
            path: "crontab".into(),
            content: block,
        });
    } else if r.changed {
        r.removed
            .push("crontab block `# BEGIN restic-manager`".into());
    }
    if dry || !r.changed {
        return Ok(r);
    }
    if !entries.is_empty() {
        // The redirect in each line fails if the folder is missing, and cron
        // would then mail (or drop) the output instead.
        std::fs::create_dir_all(&c.settings.log_directory).map_err(|e| {
            Error::Other(format!(
                "cannot create the log directory `{}`: {e}; check its permissions or set `log_directory`",
                c.settings.log_directory.display()
            ))
        })?;
    }
    cron::write(&next).await.map_err(Error::Other)?;
    if !schedule::cron_daemon_running() {
        r.notes.push(
            "no `cron` daemon seems to be running; start it (e.g. `systemctl start cron` or `cron`) or the entries never fire".into(),
        );
    }
    Ok(r)
}

async fn systemd_apply(
    c: &Config,
    entries: &[Entry],
    action: Action,
    scope: Scope,
    dry: bool,
) -> Result<Report, Error> {
    let dir = systemd::unit_dir(scope);
    let mut r = Report::default();
    if action != Action::Remove {
        for e in entries {
            let [svc, timer] =
                systemd::units(e, &dir, c.settings.schedule_jitter).map_err(Error::Usage)?;
            r.files.push(svc);
            r.files.push(timer);
        }
        for cal in entries
            .iter()
            .filter_map(|e| systemd::on_calendar(&e.schedule).ok())
            .flatten()
            .collect::<BTreeSet<_>>()
        {
            if let Some(Err(e)) = systemd::analyze_calendar(&cal).await {
                return Err(Error::Usage(format!(
                    "{e}; report this as a bug and use `--backend cron` meanwhile"
                )));
            }
        }
    }
    let keep: BTreeSet<&PathBuf> = r.files.iter().map(|f| &f.path).collect();
    let existing = systemd::managed_units(&dir);
    r.removed = existing
        .iter()
        .filter(|u| !keep.contains(u))
        .cloned()
        .collect();
    let unchanged = r
        .files
        .iter()
        .all(|f| std::fs::read_to_string(&f.path).is_ok_and(|c| c == f.content));
    r.installed = Some(unchanged && r.removed.is_empty());
    r.changed = !(unchanged && r.removed.is_empty());
    if dry {
        return Ok(r);
    }
    let running = schedule::systemd_running();
    let unit = |p: &PathBuf| {
        p.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    if running {
        for t in r.removed.iter().filter(|p| unit(p).ends_with(".timer")) {
            if let Err(e) = systemd::systemctl(scope, &["disable", "--now", &unit(t)]).await {
                r.notes.push(e);
            }
        }
    }
    for f in &r.files {
        schedule::write_atomic(&f.path, &f.content).map_err(|e| {
            Error::Other(format!(
                "cannot write `{}`: {e}; check the folder's permissions (system units need root)",
                f.path.display()
            ))
        })?;
    }
    for p in &r.removed {
        std::fs::remove_file(p).map_err(|e| {
            Error::Other(format!(
                "cannot remove `{}`: {e}; remove it by hand",
                p.display()
            ))
        })?;
    }
    if running {
        systemd::systemctl(scope, &["daemon-reload"])
            .await
            .map_err(Error::Other)?;
        for f in r.files.iter().filter(|f| unit(&f.path).ends_with(".timer")) {
            systemd::systemctl(scope, &["enable", "--now", &unit(&f.path)])
                .await
                .map_err(Error::Other)?;
        }
    } else if !r.files.is_empty() {
        let user = if scope == Scope::User { " --user" } else { "" };
        r.notes.push(format!(
            "systemd is not running, so the timers are written but not enabled; once it runs: `systemctl{user} daemon-reload && systemctl{user} enable --now restic-manager-<service>.timer`"
        ));
    }
    Ok(r)
}

/// launchd and Windows: generate everywhere, install only on their platform.
fn foreign(
    backend: Backend,
    platform: &str,
    here: bool,
    files: Vec<File>,
    dry: bool,
) -> Result<Report, Error> {
    if !dry {
        let hint = if here {
            format!(
                "installing `{}` entries is not implemented yet",
                backend.as_str()
            )
        } else {
            format!(
                "the `{}` backend only installs on {platform}",
                backend.as_str()
            )
        };
        return Err(Error::Usage(format!(
            "{hint}; `restic-manager schedule show --backend {}` prints the files to install by hand, or use `--backend cron`",
            backend.as_str()
        )));
    }
    Ok(Report {
        files,
        ..Report::default()
    })
}
