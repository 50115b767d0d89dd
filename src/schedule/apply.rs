//! Installing and removing scheduler entries: [`apply`] turns the entries
//! of [`super::entries`] into a crontab block, systemd units, launchd plists
//! or Windows tasks, and (unless it is a dry run) writes them, removes what
//! no longer belongs, and enables the timers. `schedule` and `setup
//! --schedule` both call it; they only print its [`Report`].

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{Backend, Entry, File, ScheduleError, Scope, cron, launchd, systemd, windows};

/// What to do with the entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Print what would be installed and whether it is.
    Show,
    Install,
    Remove,
}

/// Why entries could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// This request cannot work here (a backend of another platform, an
    /// option that does not apply, a schedule the backend cannot express):
    /// the user must ask differently.
    #[error("{0}")]
    Unsupported(ScheduleError),
    /// Reading or writing the scheduler's state failed.
    #[error("{0}")]
    Failed(#[from] ScheduleError),
}

/// One call of [`apply`].
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub backend: Backend,
    pub scope: Scope,
    pub action: Action,
    /// Compute the files and report, change nothing (always so for
    /// [`Action::Show`]).
    pub dry_run: bool,
    /// `schedule_jitter`, seconds.
    pub jitter: Option<u64>,
    /// `log_directory`: cron lines append to files in it, so installing
    /// creates it.
    pub log_directory: &'a Path,
}

/// What one call did or would do.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    /// The files (or crontab block) that are or would be installed.
    pub files: Vec<File>,
    /// Entries that were (or would be) removed.
    pub removed: Vec<PathBuf>,
    /// Things the user should know (a scheduler not running, a timer that
    /// could not be disabled).
    pub notes: Vec<String>,
    /// Whether anything was (or would be) changed.
    pub changed: bool,
    /// Whether the entries are installed and up to date, where the backend
    /// can tell.
    pub installed: Option<bool>,
}

/// Installs, removes or shows `entries` with the request's backend.
pub async fn apply(req: &Request<'_>, entries: &[Entry]) -> Result<Report, ApplyError> {
    let dry = req.dry_run || req.action == Action::Show;
    let req = &Request {
        dry_run: dry,
        ..*req
    };
    match req.backend {
        // Cron has no scope: entries go to the crontab of the user running
        // the command.
        Backend::Cron => cron_apply(req, entries).await,
        Backend::Systemd => systemd_apply(req, entries).await,
        Backend::Launchd => {
            let dir = launchd::plist_dir(req.scope);
            let files = entries
                .iter()
                .map(|e| launchd::plist(e, &dir))
                .collect::<Result<Vec<_>, _>>()
                .map_err(ApplyError::Unsupported)?;
            foreign(
                Backend::Launchd,
                "macOS",
                cfg!(target_os = "macos"),
                files,
                dry,
            )
        }
        Backend::Windows => {
            let files = entries
                .iter()
                .map(|e| windows::task_xml(e, req.jitter))
                .collect::<Result<Vec<_>, _>>()
                .map_err(ApplyError::Unsupported)?;
            foreign(Backend::Windows, "Windows", cfg!(windows), files, dry)
        }
    }
}

async fn cron_apply(req: &Request<'_>, entries: &[Entry]) -> Result<Report, ApplyError> {
    let (action, dry) = (req.action, req.dry_run);
    let current = cron::read().await?;
    let block = if action == Action::Remove {
        String::new()
    } else {
        cron::block(entries)
    };
    let next = cron::merge(&current, &block)?;
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
        std::fs::create_dir_all(req.log_directory).map_err(|source| {
            ScheduleError::LogDirectory {
                path: req.log_directory.to_path_buf(),
                source,
            }
        })?;
    }
    cron::write(&next).await?;
    if !super::cron_daemon_running() {
        r.notes.push(
            "no `cron` daemon seems to be running; start it (e.g. `systemctl start cron` or `cron`) or the entries never fire".into(),
        );
    }
    Ok(r)
}

async fn systemd_apply(req: &Request<'_>, entries: &[Entry]) -> Result<Report, ApplyError> {
    let (action, scope, dry) = (req.action, req.scope, req.dry_run);
    let dir = systemd::unit_dir(scope);
    let mut r = Report::default();
    if action != Action::Remove {
        for e in entries {
            let [svc, timer] =
                systemd::units(e, &dir, req.jitter).map_err(ApplyError::Unsupported)?;
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
                return Err(ApplyError::Unsupported(ScheduleError::CalendarCheck(
                    Box::new(e),
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
    let running = super::systemd_running();
    let unit = |p: &PathBuf| {
        p.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    if running {
        for t in r.removed.iter().filter(|p| unit(p).ends_with(".timer")) {
            if let Err(e) = systemd::systemctl(scope, &["disable", "--now", &unit(t)]).await {
                r.notes.push(e.to_string());
            }
        }
    }
    for f in &r.files {
        super::write_atomic(&f.path, &f.content).map_err(|source| ScheduleError::Write {
            path: f.path.clone(),
            source,
        })?;
    }
    for p in &r.removed {
        std::fs::remove_file(p).map_err(|source| ScheduleError::Remove {
            path: p.clone(),
            source,
        })?;
    }
    if running {
        systemd::systemctl(scope, &["daemon-reload"]).await?;
        for f in r.files.iter().filter(|f| unit(&f.path).ends_with(".timer")) {
            systemd::systemctl(scope, &["enable", "--now", &unit(&f.path)]).await?;
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
    platform: &'static str,
    here: bool,
    files: Vec<File>,
    dry: bool,
) -> Result<Report, ApplyError> {
    if !dry {
        return Err(ApplyError::Unsupported(ScheduleError::NotInstallable {
            backend,
            platform,
            here,
        }));
    }
    Ok(Report {
        files,
        ..Report::default()
    })
}
