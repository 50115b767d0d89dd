//! `restore`: asks (on a terminal) or reads from flags which service,
//! destination, snapshot, what and where; previews; confirms; then lets
//! `crate::restore` (files, dumps into a file or command) or the sources
//! (volumes, dump presets) do the work.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::{Context, select};
use crate::cli::RestoreArgs;
use crate::config::dump::{Dump, DumpSource};
use crate::config::{Config, Service};
use crate::error::Error;
use crate::model::Exit;
use crate::output::{Printer, bytes, table};
use crate::process::Shutdown;
use crate::restic::output::Snapshot;
use crate::restic::{Repository, Restic, ops};
use crate::restore::RestoreError;
use crate::sources::dump::{self, RestoreTo};

use crate::restore::files::{self, Target};
use crate::restore::listing::{self, Contents};
use crate::restore::select::{self as snap, Want};

/// A restore runs until it is done or interrupted; this only bounds a
/// restore command that hangs for good.
const RESTORE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(7 * 24 * 3600);

impl From<RestoreError> for Error {
    fn from(e: RestoreError) -> Self {
        if e.usage {
            Error::Usage(e.message)
        } else {
            Error::Other(e.message)
        }
    }
}

/// Where a dump goes when not to its restore command.
#[derive(Debug, Clone)]
enum Sink {
    File(PathBuf),
    Command(String),
}

/// What the user chose to restore.
#[derive(Debug, Clone)]
enum What {
    Files {
        target: Target,
        includes: Vec<String>,
    },
    Dump {
        name: String,
        /// `None`: the preset's restore command.
        sink: Option<Sink>,
    },
    Volume {
        name: String,
        /// The volume written (the same one unless `--to-volume`).
        into: String,
    },
}

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
    if let Want::Volume(v) = &want
        && !service.volumes.iter().any(|x| x == v)
    {
        return Err(Error::Usage(format!(
            "service `{}` has no volume `{v}`; its volumes: {}",
            service.name,
            names(&service.volumes)
        )));
    }
    let restic = ctx.restic(&c).await?;
    let shutdown = Shutdown::never();
    let (dest, repo, list) =
        pick_destination(&c, service, a, asking, &restic, p, &shutdown).await?;
    let where_ = format!("of service `{}` on `{dest}`", service.name);
    if let Want::Dump(d) = &want
        && !service.dumps.iter().any(|x| x.name == *d)
        && !list.iter().any(|x| snap::dump_name(x) == Some(d.as_str()))
    {
        let configured: Vec<String> = service.dumps.iter().map(|x| x.name.clone()).collect();
        return Err(Error::Usage(format!(
            "service `{}` has no dump `{d}` (none configured, no snapshot tagged `dump:{d}` on `{dest}`); its dumps: {}",
            service.name,
            names(&configured)
        )));
    }

    let snapshot = match &a.snapshot {
        Some(id) => snap::resolve(&list, id, &want, &where_)?.clone(),
        None if asking => ask_snapshot(&c, service, &dest, &list, &want).await?,
        None => {
            return Err(Error::Usage(format!(
                "missing `--snapshot ID|latest` (no terminal to ask on){}",
                snap::available(
                    &list
                        .iter()
                        .filter(|s| snap::matches(s, &want))
                        .cloned()
                        .collect::<Vec<_>>()
                )
            )));
        }
    };
    let mut what = choose_what(a, service, &snapshot, want, asking).await?;

    // What the snapshot holds of it: the preview, and every `--include`
    // checked (restic 0.14 restores nothing, and says nothing, otherwise).
    // Symlinks already in the target: restic would follow them and write
    // outside it, so they are found now and refused below.
    let links = match &what {
        What::Files { target, .. } => files::existing_symlinks(target, &snapshot.paths),
        _ => Vec::new(),
    };
    let contents = loop {
        let includes = selected_paths(&what, &snapshot);
        let contents = listing::scan(
            &restic,
            &repo,
            &snapshot,
            &includes,
            links.clone(),
            &shutdown,
        )
        .await?;
        match (contents.missing(&snapshot), &mut what) {
            (None, _) => break contents,
            (Some(e), What::Files { includes, .. }) if asking => {
                p.info(format!("error: {e}"));
                *includes = ask_includes(&snapshot, true).await?;
            }
            (Some(e), _) => return Err(e.into()),
        }
    };

    if let What::Files {
        target: Target::Folder(dir),
        ..
    } = &what
        && !a.preview
        && let Err(e) = files::check_folder(dir, a.overwrite)
    {
        let question = format!(
            "`{}` is not empty; restore into it anyway, replacing files with the same names?",
            dir.display()
        );
        let go_on = asking && e.usage && ask_confirm(question, false).await?;
        if !go_on {
            return Err(e.into());
        }
    }

    if let What::Files { target, .. } = &what
        && !contents.in_the_way.is_empty()
    {
        let e = files::in_the_way(target, &contents.in_the_way);
        if !a.preview {
            return Err(e.into());
        }
        p.info(format!("warning: {e}"));
    }

    let summary = Summary {
        service: &service.name,
        destination: &dest,
        repo: &repo,
        snapshot: &snapshot,
        what: &what,
        contents: &contents,
    };
    if a.preview {
        if p.json {
            p.json(&summary.json(true, None));
        } else {
            p.line(summary.preview());
        }
        return Ok(Exit::Ok);
    }
    let destructive = destructive(&what, tty && !a.yes).await?;
    if !a.yes {
        if tty && (asking || destructive.is_some()) {
            eprintln!("{}", summary.preview());
            let question = destructive
                .as_ref()
                .map_or_else(|| "Restore?".to_string(), |d| d.0.clone());
            if !ask_confirm(question, destructive.is_none()).await? {
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
    let done = execute(service, &restic, &repo, &snapshot, &what, a, &shutdown).await;
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

/// The paths of the snapshot that `what` restores (empty: all of it).
fn selected_paths(what: &What, snapshot: &Snapshot) -> Vec<String> {
    let one = |p: Option<&str>| p.into_iter().map(str::to_string).collect();
    match what {
        What::Files { includes, .. } => includes.clone(),
        What::Dump { .. } => one(snap::dump_file(snapshot)),
        What::Volume { name, .. } => match snap::volume_name(snapshot) {
            Some(_) => one(snap::dump_file(snapshot)),
            None => one(crate::sources::docker::volume_path_in_snapshot(
                &snapshot.paths,
                name,
            )),
        },
    }
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

/// What the restore reported beyond the listing's counts.
#[derive(Debug, Default)]
struct Done {
    /// Bytes streamed (a dump, a streamed volume).
    bytes: Option<u64>,
    volume: Option<crate::sources::docker::VolumeRestore>,
}

/// Runs the chosen restore.
async fn execute(
    service: &Service,
    restic: &Restic,
    repo: &Repository,
    snapshot: &Snapshot,
    what: &What,
    a: &RestoreArgs,
    shutdown: &Shutdown,
) -> Result<Done, Error> {
    match what {
        What::Files { target, includes } => {
            files::restore(restic, repo, snapshot, target, includes, shutdown).await?;
            Ok(Done::default())
        }
        What::Dump { name, sink } => {
            // The file as this snapshot stores it: the configured
            // `filename` may have changed since.
            let file = snap::dump_file(snapshot).ok_or_else(|| {
                Error::Usage(format!(
                    "snapshot `{}` holds {} paths, not one dump file; is it a dump of `{name}`?",
                    snapshot.short(),
                    snapshot.paths.len()
                ))
            })?;
            let mut dump = match (service.dumps.iter().find(|d| d.name == *name), sink) {
                // Its definition knows the restore command and the password
                // its tools need.
                (Some(d), _) => d.clone(),
                // No longer configured: into a file or a command still works.
                (None, Some(_)) => Dump {
                    name: name.clone(),
                    source: DumpSource::Command {
                        command: String::new(),
                    },
                    filename: String::new(),
                    container: None,
                    restore_command: None,
                    timeout_seconds: None,
                    verify_command: None,
                    verify_scratch_database: None,
                },
                (None, None) => {
                    return Err(Error::Usage(format!(
                        "dump `{name}` is not in the configuration of service `{}`, so its restore command is unknown; use `--to-file FILE` or `--to-command CMD`",
                        service.name
                    )));
                }
            };
            dump.filename = file.trim_start_matches('/').to_string();
            let to = match sink {
                None => RestoreTo::Preset,
                Some(Sink::Command(c)) => RestoreTo::Command(c.clone()),
                Some(Sink::File(f)) => {
                    if f.exists() {
                        if !a.overwrite {
                            return Err(Error::Usage(format!(
                                "`{}` already exists; pass `--overwrite` to replace it, or choose another `--to-file`",
                                f.display()
                            )));
                        }
                        std::fs::remove_file(f).map_err(|e| {
                            Error::Other(format!("cannot replace `{}`: {e}", f.display()))
                        })?;
                    }
                    RestoreTo::File(f.clone())
                }
            };
            let r = dump::restore_dump(
                restic,
                repo,
                &snapshot.id,
                &dump,
                &to,
                RESTORE_TIMEOUT,
                shutdown,
            )
            .await
            .map_err(|e| Error::Other(e.message))?;
            Ok(Done {
                bytes: Some(r.bytes),
                volume: None,
            })
        }
        What::Volume { name, into } => {
            let r = crate::sources::docker::restore_volume(
                restic,
                repo,
                snapshot,
                name,
                &crate::sources::docker::VolumeInto {
                    volume: into,
                    image: &service.docker_helper_image,
                    replace: true,
                },
                shutdown,
            )
            .await
            .map_err(|e| Error::from(RestoreError::from(e)))?;
            Ok(Done {
                bytes: None,
                volume: Some(r),
            })
        }
    }
}

/// A spinner with the elapsed time on a terminal: restic 0.14 shows no
/// progress for a restore, which can take hours.
fn spinner(p: &Printer, summary: &Summary<'_>) -> Option<indicatif::ProgressBar> {
    if p.quiet || p.json || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar =
        indicatif::ProgressBar::with_draw_target(None, indicatif::ProgressDrawTarget::stderr());
    let style = indicatif::ProgressStyle::with_template("{spinner} {msg} {elapsed}")
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner());
    bar.set_style(style);
    bar.set_message(format!("restoring {}…", summary.where_()));
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    Some(bar)
}

fn cwd() -> Result<PathBuf, Error> {
    std::env::current_dir()
        .map_err(|e| Error::Other(format!("cannot read the current folder: {e}")))
}

fn absolute(p: &Path) -> Result<PathBuf, Error> {
    Ok(if p.is_absolute() {
        p.to_path_buf()
    } else {
        cwd()?.join(p)
    })
}

/// `1 file`, `2 files`.
fn plural(n: u64, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

fn names(v: &[String]) -> String {
    if v.is_empty() {
        "none".to_string()
    } else {
        v.iter()
            .map(|n| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(", ")
    }
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
        eprintln!("service: {} (the only one)", only.name);
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
        let list = service_snapshots(restic, &repo, s, p, shutdown)
            .await
            .map_err(|e| Error::Other(e.message))?;
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
) -> Result<Vec<Snapshot>, ops::OpError> {
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

async fn ask_snapshot(
    c: &Config,
    s: &Service,
    dest: &str,
    list: &[Snapshot],
    want: &Want,
) -> Result<Snapshot, Error> {
    // On the table every kind shows; with `--dump`/`--volume` only those.
    let shown: Vec<&Snapshot> = snap::newest_first(list)
        .into_iter()
        .filter(|x| *want == Want::Files || snap::matches(x, want))
        .collect();
    if shown.is_empty() {
        return Err(Error::Usage(format!(
            "service `{}` has no snapshots on `{dest}` to restore{}",
            s.name,
            snap::available(list)
        )));
    }
    let sizes = sizes(c, &s.name, dest);
    let rows: Vec<Vec<String>> = shown
        .iter()
        .map(|x| {
            let size = sizes
                .iter()
                .find(|(id, _)| !id.is_empty() && x.id.starts_with(id.as_str()))
                .map_or_else(|| "?".to_string(), |(_, b)| bytes(*b));
            vec![
                x.short().to_string(),
                snap::time(x),
                x.hostname.clone(),
                size,
                x.tags
                    .iter()
                    .filter(|t| **t != s.tag())
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(","),
            ]
        })
        .collect();
    let text = table(&["ID", "TIME", "HOST", "SIZE", "TAGS"], &rows);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default().to_string();
    let items: Vec<String> = lines.map(str::to_string).collect();
    let i = ask_select(format!("Snapshot (newest first)\n  {header}"), items, 0).await?;
    Ok(shown[i].clone())
}

/// Sizes recorded by our own runs (restic 0.14 keeps none); empty when
/// there is no history yet (restoring on a new machine).
fn sizes(c: &Config, service: &str, dest: &str) -> Vec<(String, u64)> {
    let file = c.settings.state_directory.join("history.sqlite");
    if !file.is_file() {
        return Vec::new();
    }
    crate::history::History::open_read_only(&c.settings.state_directory)
        .and_then(|h| h.snapshot_sizes(service, dest))
        .unwrap_or_default()
}

async fn ask_target(default: PathBuf) -> Result<Target, Error> {
    let items = vec![
        format!("a new folder: {}", default.display()),
        "another folder…".to_string(),
        "the original paths (replaces the files there now)".to_string(),
    ];
    match ask_select("Restore to".to_string(), items, 0).await? {
        0 => Ok(Target::Folder(default)),
        1 => {
            let t = ask_input("Folder".to_string(), false).await?;
            Ok(Target::Folder(absolute(Path::new(t.trim()))?))
        }
        _ => Ok(Target::InPlace),
    }
}

/// Offers the service's volumes that `snapshot` holds (by mountpoint)
/// next to its files; `Some(volume)` when one is picked.
async fn ask_volume(service: &Service, snapshot: &Snapshot) -> Result<Option<String>, Error> {
    let volumes: Vec<&String> = service
        .volumes
        .iter()
        .filter(|v| crate::sources::docker::volume_path_in_snapshot(&snapshot.paths, v).is_some())
        .collect();
    if volumes.is_empty() {
        return Ok(None);
    }
    let mut items = vec!["files (all or some paths)".to_string()];
    items.extend(volumes.iter().map(|v| {
        format!("Docker volume `{v}` (replaces its content; its containers are stopped meanwhile)")
    }));
    let i = ask_select("Files or a Docker volume".to_string(), items, 0).await?;
    Ok(i.checked_sub(1).map(|i| volumes[i].clone()))
}

/// Everything, or paths typed one per line; `paths_only` skips the
/// choice (asking again after a path that is not in the snapshot).
async fn ask_includes(snapshot: &Snapshot, paths_only: bool) -> Result<Vec<String>, Error> {
    let items = vec![
        format!("everything ({})", snapshot.paths.join(", ")),
        "some paths…".to_string(),
    ];
    if !paths_only && ask_select("What to restore".to_string(), items, 0).await? == 0 {
        return Ok(Vec::new());
    }
    let mut paths = Vec::new();
    loop {
        let prompt = if paths.is_empty() {
            "Path (absolute, or relative to the backed-up folder)".to_string()
        } else {
            "Another path (empty to go on)".to_string()
        };
        let p = ask_input(prompt, !paths.is_empty()).await?;
        let p = p.trim();
        if p.is_empty() {
            return Ok(paths);
        }
        paths.push(p.to_string());
    }
}

async fn ask_dump_sink(name: &str, configured: bool) -> Result<Option<Sink>, Error> {
    let mut items = vec![
        "write it to a file…".to_string(),
        "pipe it into a command…".to_string(),
    ];
    if configured {
        items.insert(0, format!("with the restore command of dump `{name}`"));
    }
    let choice = ask_select(format!("Restore dump `{name}`"), items, 0).await?;
    match choice + usize::from(!configured) {
        0 => Ok(None),
        1 => {
            let f = ask_input("File".to_string(), false).await?;
            Ok(Some(Sink::File(absolute(Path::new(f.trim()))?)))
        }
        _ => Ok(Some(Sink::Command(
            ask_input("Command (gets the dump on stdin)".to_string(), false).await?,
        ))),
    }
}

fn cancelled() -> Error {
    Error::Other("cancelled; nothing was restored".to_string())
}

fn term_error(e: dialoguer::Error) -> Error {
    let dialoguer::Error::IO(e) = e;
    if e.kind() == std::io::ErrorKind::Interrupted {
        cancelled()
    } else {
        Error::Other(format!("cannot read the answer from the terminal: {e}"))
    }
}

/// Runs a blocking prompt off the async workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, dialoguer::Error> + Send + 'static,
) -> Result<T, Error> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Other(format!("the prompt failed: {e}")))?
        .map_err(term_error)
}

async fn ask_select(prompt: String, items: Vec<String>, default: usize) -> Result<usize, Error> {
    blocking(move || {
        dialoguer::Select::with_theme(&dialoguer::theme::ColorfulTheme::default())
            .with_prompt(prompt)
            .items(&items)
            .default(default)
            .interact_opt()
    })
    .await?
    .ok_or_else(cancelled)
}

async fn ask_input(prompt: String, allow_empty: bool) -> Result<String, Error> {
    blocking(move || {
        dialoguer::Input::<String>::with_theme(&dialoguer::theme::ColorfulTheme::default())
            .with_prompt(prompt)
            .allow_empty(allow_empty)
            .interact_text()
    })
    .await
}

async fn ask_confirm(prompt: String, default: bool) -> Result<bool, Error> {
    blocking(move || {
        dialoguer::Confirm::with_theme(&dialoguer::theme::ColorfulTheme::default())
            .with_prompt(prompt)
            .default(default)
            .interact_opt()
    })
    .await
    .map(|a| a.unwrap_or(false))
}

/// Everything needed to describe the restore, before and after.
struct Summary<'a> {
    service: &'a str,
    destination: &'a str,
    repo: &'a Repository,
    snapshot: &'a Snapshot,
    what: &'a What,
    contents: &'a Contents,
}

impl Summary<'_> {
    fn source(&self) -> String {
        format!(
            "snapshot {} of `{}` on `{}` ({}, host {})",
            self.snapshot.short(),
            self.service,
            self.destination,
            snap::time(self.snapshot),
            self.snapshot.hostname
        )
    }

    fn where_(&self) -> String {
        match self.what {
            What::Files {
                target: Target::Folder(d),
                ..
            } => format!("into `{}`", d.display()),
            What::Files {
                target: Target::InPlace,
                ..
            } => "to the original paths".to_string(),
            What::Dump { name, sink } => match sink {
                Some(Sink::File(f)) => format!("dump `{name}` into `{}`", f.display()),
                Some(Sink::Command(c)) => format!("dump `{name}` into `{c}`"),
                None => format!("dump `{name}` with its restore command"),
            },
            What::Volume { name, into } if name == into => {
                format!("into Docker volume `{into}`")
            }
            What::Volume { name, into } => {
                format!("of volume `{name}` into Docker volume `{into}`")
            }
        }
    }

    /// `3 files, 1 folder, 12 B`.
    fn amount(&self) -> String {
        let c = self.contents;
        format!(
            "{}, {}, {}",
            plural(c.files, "file"),
            plural(c.dirs, "folder"),
            bytes(c.bytes)
        )
    }

    fn preview(&self) -> String {
        let c = self.contents;
        let mut s = match self.what {
            What::Dump { .. } => format!(
                "{}\nwould restore {} ({})",
                self.source(),
                self.where_(),
                bytes(c.bytes)
            ),
            _ => format!(
                "{}\nwould restore {} {}",
                self.source(),
                self.amount(),
                self.where_()
            ),
        };
        for e in &c.first {
            s.push_str(&format!(
                "\n  {}{}",
                e.path,
                if e.kind == "dir" { "/" } else { "" }
            ));
        }
        let shown = c.first.len() as u64;
        if c.files + c.dirs > shown {
            s.push_str(&format!("\n  … and {} more", c.files + c.dirs - shown));
        }
        s
    }

    fn done(&self, done: &Done) -> String {
        match self.what {
            What::Dump { .. } => format!(
                "restored {} ({}) from {}",
                self.where_(),
                bytes(done.bytes.unwrap_or(self.contents.bytes)),
                self.source()
            ),
            What::Volume { .. } => {
                let mut s = format!(
                    "restored {} {} from {}",
                    self.amount(),
                    self.where_(),
                    self.source()
                );
                if let Some(v) = &done.volume
                    && !v.containers_restarted.is_empty()
                {
                    s.push_str(&format!(
                        "; started {} again",
                        names(&v.containers_restarted)
                    ));
                }
                s
            }
            _ => format!(
                "restored {} {} from {}",
                self.amount(),
                self.where_(),
                self.source()
            ),
        }
    }

    fn json(&self, preview: bool, done: Option<&Done>) -> Value {
        let c = self.contents;
        let (kind, target, includes, dump, volume): (&str, Value, Vec<String>, Value, Value) =
            match self.what {
                What::Files { target, .. } => (
                    "files",
                    match target {
                        Target::Folder(d) => json!(d),
                        Target::InPlace => json!("/"),
                    },
                    c.include_paths(),
                    Value::Null,
                    Value::Null,
                ),
                What::Dump { name, sink } => (
                    "dump",
                    match sink {
                        Some(Sink::File(f)) => json!(f),
                        // The command may hold credentials: not echoed.
                        Some(Sink::Command(_)) => json!("command"),
                        None => json!("restore_command"),
                    },
                    Vec::new(),
                    json!(name),
                    Value::Null,
                ),
                What::Volume { name, into } => (
                    "volume",
                    json!(into),
                    Vec::new(),
                    Value::Null,
                    json!({
                        "name": name,
                        "into": into,
                        "mode": done.and_then(|d| d.volume.as_ref()).map(|v| v.mode),
                        "containers_restarted": done
                            .and_then(|d| d.volume.as_ref())
                            .map(|v| v.containers_restarted.clone()),
                    }),
                ),
            };
        json!({
            "preview": preview,
            "service": self.service,
            "destination": self.destination,
            "repository": self.repo.display,
            "snapshot": {
                "id": self.snapshot.id,
                "short_id": self.snapshot.short(),
                "time": self.snapshot.time,
                "hostname": self.snapshot.hostname,
                "paths": self.snapshot.paths,
                "tags": self.snapshot.tags,
            },
            "kind": kind,
            "target": target,
            "in_place": matches!(self.what, What::Files { target: Target::InPlace, .. }),
            "includes": includes,
            "dump": dump,
            "volume": volume,
            "files": c.files,
            "dirs": c.dirs,
            "bytes": done.and_then(|d| d.bytes).unwrap_or(c.bytes),
            "first_entries": c.first,
        })
    }
}
