//! `restore`: asks (on a terminal, [`interactive`]) or reads from flags
//! which service, destination, snapshot, what and where; lets
//! `crate::restore::prepare` check the plan; previews and confirms
//! ([`print`]); then `crate::restore::execute` does the work.

mod interactive;
mod print;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use super::{Context, select};
use crate::cli::RestoreArgs;
use crate::config::{Config, Service};
use crate::error::Error;
use crate::model::{Exit, Failure};
use crate::output::Printer;
use crate::process::Shutdown;
use crate::restic::output::Snapshot;
use crate::restic::{Repository, Restic, ops};
use crate::restore::files::{self, Target};
use crate::restore::plan::{self, names};
use crate::restore::select::{self as snap, Want};
use crate::restore::{Plan, Sink, What};
use interactive::{
    Terminal, ask_dump_sink, ask_includes, ask_select, ask_snapshot, ask_target, ask_volume,
};
use print::{Summary, spinner};

pub async fn run(ctx: &Context, a: &RestoreArgs) -> Result<Exit, Error> {
    let c = ctx.load_config()?;
    let p = &ctx.printer;
    let tty = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    // The flow asks when a required choice is missing and there is someone
    // to ask; otherwise every prompt below is skipped.
    let asking = tty && (a.service.is_none() || a.snapshot.is_none());

    let service = pick_service(&c, a, asking).await?;
    let want = match (&a.dump, &a.volume) {
        (Some(d), _) => Want::Dump(d.clone()),
        (_, Some(v)) => Want::Volume(v.clone()),
        _ => Want::Files,
    };
    plan::check_volume(service, &want)?;
    let restic = ctx.restic(&c).await?;
    let shutdown = Shutdown::never();
    let (dest, repo, list) =
        pick_destination(&c, service, a, asking, &restic, p, &shutdown).await?;
    plan::check_dump(service, &want, &dest, &list)?;

    let snapshot = match &a.snapshot {
        Some(id) => plan::resolve(service, &dest, &list, id, &want)?,
        None if asking => ask_snapshot(&c, service, &dest, &list, &want).await?,
        None => return Err(plan::missing_snapshot(&list, &want).into()),
    };
    let what = choose_what(a, service, &snapshot, want, asking).await?;
    let draft = Plan {
        service,
        destination: dest,
        repo,
        snapshot,
        what,
        overwrite: a.overwrite,
        limit: None,
        contents: Default::default(),
        warnings: Vec::new(),
    };
    let plan = if asking {
        let mut terminal = Terminal { printer: p };
        crate::restore::prepare(&restic, draft, a.preview, &mut terminal, &shutdown).await?
    } else {
        crate::restore::prepare(&restic, draft, a.preview, &mut plan::NoOne, &shutdown).await?
    };
    for w in &plan.warnings {
        p.info(format!("warning: {w}"));
    }

    let summary = Summary { plan: &plan };
    if a.preview {
        if p.json {
            p.json(&summary.json(true, None));
        } else {
            p.line(summary.preview());
        }
        return Ok(Exit::Ok);
    }
    let destructive = destructive(&plan.what, tty && !a.yes).await?;
    if !a.yes {
        if tty && (asking || destructive.is_some()) {
            crate::logging::notice(summary.preview());
            let question = destructive
                .as_ref()
                .map_or_else(|| "Restore?".to_string(), |d| d.0.clone());
            if !interactive::ask_confirm(question, destructive.is_none()).await? {
                p.info("nothing was restored");
                return Ok(Exit::Failed);
            }
        } else if let Some((_, refusal)) = destructive {
            return Err(Error::Usage(refusal));
        }
    }

    // From here on children run: our Ctrl-C stops them cleanly (restic
    // removes its lock) instead of leaving them behind.
    let (trigger, shutdown) = Shutdown::new();
    let signals = crate::engine::signals::watch_signals(
        trigger,
        "signal received, stopping the restore (send again to exit at once)",
    );
    let spinner = spinner(p, &summary);
    let done = crate::restore::execute(&restic, &plan, &shutdown).await;
    if let Some(s) = spinner {
        s.finish_and_clear();
    }
    signals.abort();
    let done = done?;

    if p.json {
        p.json(&summary.json(false, Some(&done)));
    } else {
        p.line(summary.done(&done));
    }
    Ok(Exit::Ok)
}

/// For a restore that replaces data where it lives: the question to ask,
/// and the refusal when there is no one to ask. `ask`: the question will be
/// asked (then the containers a volume restore stops are looked up).
async fn destructive(what: &What, ask: bool) -> Result<Option<(String, String)>, Error> {
    Ok(match what {
        What::Files {
            target: Target::InPlace,
            ..
        } => Some((
            "Write these files back to their original paths, replacing what is there now?"
                .to_string(),
            "`--in-place` replaces files at their original paths; add `--yes` to confirm (there is no terminal to ask on), or restore into a folder with `--target`".to_string(),
        )),
        What::Volume { into, .. } => {
            let users = if ask {
                crate::restore::volume::users(into).await?
            } else {
                Vec::new()
            };
            let stopping = if users.is_empty() {
                String::new()
            } else {
                format!(" (stopping {} meanwhile)", names(&users))
            };
            Some((
                format!("Replace the content of Docker volume `{into}`{stopping}?"),
                format!("`--volume` replaces the content of Docker volume `{into}`; add `--yes` to confirm (there is no terminal to ask on), or restore into another volume with `--to-volume`"),
            ))
        }
        What::Dump { name, sink: None } => Some((
            format!("Restore dump `{name}` with its restore command (this changes the database)?"),
            format!("restoring dump `{name}` with its restore command changes the database; add `--yes` to confirm (there is no terminal to ask on), or write it to a file with `--to-file`"),
        )),
        _ => None,
    })
}

/// What to restore from `snapshot`: from the flags, or asked. On a
/// terminal, a dump's or streamed volume's snapshot restores that, and a
/// file snapshot holding a volume offers it.
async fn choose_what(
    a: &RestoreArgs,
    service: &Service,
    snapshot: &Snapshot,
    mut want: Want,
    asking: bool,
) -> Result<What, Error> {
    // A dump snapshot picked from the table restores that dump.
    if want == Want::Files
        && asking
        && a.include.is_empty()
        && let Some(d) = snap::dump_name(snapshot)
    {
        want = Want::Dump(d.to_string());
    }
    // So does a streamed volume's snapshot.
    if want == Want::Files
        && asking
        && a.include.is_empty()
        && let Some(v) = snap::volume_name(snapshot)
    {
        want = Want::Volume(v.to_string());
    }
    // A file snapshot holding volumes: the volume may be what is wanted.
    if want == Want::Files
        && asking
        && a.include.is_empty()
        && a.target.is_none()
        && !a.in_place
        && let Some(v) = ask_volume(service, snapshot).await?
    {
        want = Want::Volume(v);
    }

    Ok(match &want {
        Want::Dump(name) => What::Dump {
            name: name.clone(),
            sink: match (&a.to_file, &a.to_command) {
                (Some(f), _) => Some(Sink::File(absolute(f)?)),
                (_, Some(cmd)) => Some(Sink::Command(cmd.clone())),
                _ if asking => {
                    ask_dump_sink(name, service.dumps.iter().any(|d| d.name == *name)).await?
                }
                _ => None,
            },
        },
        Want::Volume(v) => What::Volume {
            name: v.clone(),
            into: a.to_volume.clone().unwrap_or_else(|| v.clone()),
        },
        Want::Files => {
            let includes = if a.include.is_empty() && asking {
                ask_includes(snapshot, false).await?
            } else {
                a.include.clone()
            };
            let target = if a.in_place {
                Target::InPlace
            } else if let Some(t) = &a.target {
                Target::Folder(absolute(t)?)
            } else {
                let default = files::default_folder(&cwd()?, &service.name, snapshot);
                if asking {
                    ask_target(default).await?
                } else {
                    Target::Folder(default)
                }
            };
            What::Files { target, includes }
        }
    })
}

fn cwd() -> Result<PathBuf, Error> {
    std::env::current_dir()
        .map_err(|e| Error::Other(format!("cannot read the current folder: {e}")))
}

pub(super) fn absolute(p: &Path) -> Result<PathBuf, Error> {
    Ok(if p.is_absolute() {
        p.to_path_buf()
    } else {
        cwd()?.join(p)
    })
}

async fn pick_service<'a>(
    c: &'a Config,
    a: &RestoreArgs,
    asking: bool,
) -> Result<&'a Service, Error> {
    if let Some(name) = &a.service {
        let found = select(c, std::slice::from_ref(name), false)?;
        return found
            .into_iter()
            .next()
            .ok_or_else(|| Error::Usage(format!("unknown service `{name}`")));
    }
    if c.services.is_empty() {
        return Err(Error::Usage(
            "the configuration defines no services to restore".to_string(),
        ));
    }
    if !asking {
        return Err(Error::Usage(format!(
            "missing `--service NAME` (no terminal to ask on); services: {}",
            names(
                &c.service_names()
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
            )
        )));
    }
    if let [only] = c.services.as_slice() {
        crate::logging::notice(format!("service: {} (the only one)", only.name));
        return Ok(only);
    }
    let items: Vec<String> = c
        .services
        .iter()
        .map(|s| match &s.description {
            Some(d) => format!("{}  ({d})", s.name),
            None => s.name.clone(),
        })
        .collect();
    let i = ask_select("Service to restore from".to_string(), items, 0).await?;
    Ok(&c.services[i])
}

/// The destination to read from and its snapshots of the service: the one
/// named, the one picked, or the first target that answers.
async fn pick_destination(
    c: &Config,
    s: &Service,
    a: &RestoreArgs,
    asking: bool,
    restic: &Restic,
    p: &Printer,
    shutdown: &Shutdown,
) -> Result<(String, Repository, Vec<Snapshot>), Error> {
    let open = |t: &str| -> Result<Repository, String> {
        let d = c
            .destinations
            .get(t)
            .ok_or_else(|| format!("destination `{t}` is not defined"))?;
        Repository::open(d, &s.name, &c.settings.password).map_err(|e| e.to_string())
    };
    let chosen: Option<String> = match &a.destination {
        Some(d) if !s.targets.contains(d) => {
            return Err(Error::Usage(format!(
                "service `{}` does not back up to `{d}`; its targets: {}",
                s.name,
                names(&s.targets)
            )));
        }
        Some(d) => Some(d.clone()),
        None if asking && s.targets.len() > 1 => {
            let i = ask_select("Destination".to_string(), s.targets.clone(), 0).await?;
            Some(s.targets[i].clone())
        }
        None => None,
    };
    if let Some(d) = chosen {
        let repo = open(&d).map_err(Error::Other)?;
        let list = service_snapshots(restic, &repo, s, p, shutdown).await?;
        return Ok((d, repo, list));
    }
    let mut problems = Vec::new();
    for t in &s.targets {
        let res = match open(t) {
            Ok(repo) => service_snapshots(restic, &repo, s, p, shutdown)
                .await
                .map(|l| (repo, l))
                .map_err(|e| e.message),
            Err(e) => Err(e),
        };
        match res {
            Ok((repo, list)) => {
                let why = if problems.is_empty() {
                    "the service's first target".to_string()
                } else {
                    "the first target that could be read".to_string()
                };
                p.info(format!(
                    "reading from destination `{t}` ({why}; choose with `--destination`)"
                ));
                return Ok((t.clone(), repo, list));
            }
            Err(e) => {
                p.info(format!("destination `{t}` cannot be read: {e}"));
                problems.push(format!("`{t}`: {e}"));
            }
        }
    }
    Err(Error::Other(format!(
        "no destination of service `{}` could be read: {}",
        s.name,
        problems.join("; ")
    )))
}

/// The service's snapshots in its repository: those tagged
/// `service:NAME`, or, when there are none, every snapshot there (the
/// repository is the service's own; the original tool did not tag).
async fn service_snapshots(
    restic: &Restic,
    repo: &Repository,
    s: &Service,
    p: &Printer,
    shutdown: &Shutdown,
) -> Result<Vec<Snapshot>, Failure> {
    let tagged = ops::snapshots(restic, repo, Some(&s.tag()), shutdown).await?;
    if !tagged.is_empty() {
        return Ok(tagged);
    }
    let all = ops::snapshots(restic, repo, None, shutdown).await?;
    if !all.is_empty() {
        p.info(format!(
            "no snapshot in `{}` is tagged `{}`; using all its {} snapshots (made by another tool?)",
            repo.display,
            s.tag(),
            all.len()
        ));
    }
    Ok(all)
}
