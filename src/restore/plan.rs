//! One restore, whoever asked for it: the `Plan` (service, destination,
//! snapshot, what and where), `prepare` (the checks against the snapshot's
//! listing and the target, before anything is written) and `execute` (the
//! work). The `restore` command asks and prints around them; the
//! dashboard's restore job builds a plan of its own and runs the same
//! `execute`.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::files::{self, Target};
use super::listing::{self, Contents};
use super::select::{self as snap, Want};
use crate::config::Service;
use crate::config::dump::Dump;
use crate::model::Failure;
use crate::process::Shutdown;
use crate::restic::output::Snapshot;
use crate::restic::{ErrorClass, Repository, Restic};
use crate::sources::dump::{self, RestoreTo};

/// A streamed dump's restore runs until it is done or interrupted; this
/// only bounds a restore command that hangs for good.
const DUMP_TIMEOUT: Duration = Duration::from_secs(7 * 24 * 3600);

/// Where a dump goes when not to its restore command.
#[derive(Debug, Clone)]
pub enum Sink {
    File(PathBuf),
    Command(String),
}

/// What to restore, and where.
#[derive(Debug, Clone)]
pub enum What {
    Files {
        target: Target,
        /// Snapshot paths to restore (empty: all of it).
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

/// One restore, fully decided.
#[derive(Debug, Clone)]
pub struct Plan<'a> {
    pub service: &'a Service,
    pub destination: String,
    pub repo: Repository,
    pub snapshot: Snapshot,
    pub what: What,
    /// Replace a non-empty folder's files, or a dump's existing file.
    pub overwrite: bool,
    /// The time limit of `restic restore` for files (`None`: none).
    pub limit: Option<Duration>,
    /// What the snapshot holds of it (empty when not prepared).
    pub contents: Contents,
    /// Problems a preview reports instead of refusing.
    pub warnings: Vec<Failure>,
}

/// What the restore reported beyond the listing's counts.
#[derive(Debug, Default)]
pub struct Done {
    /// Bytes streamed (a dump, a streamed volume).
    pub bytes: Option<u64>,
    pub volume: Option<crate::sources::docker::VolumeRestore>,
}

/// The questions `prepare` may ask when a check fails; [`NoOne`] answers
/// none of them.
pub trait Ask {
    type Error: From<Failure>;
    /// An `--include` path is not in `snapshot` (`problem`): other paths
    /// to try, or `None` to give up.
    fn includes_again(
        &mut self,
        problem: &Failure,
        snapshot: &Snapshot,
    ) -> impl Future<Output = Result<Option<Vec<String>>, Self::Error>>;
    /// Folder `dir` is not empty: restore into it anyway?
    fn overwrite(&mut self, dir: &Path) -> impl Future<Output = Result<bool, Self::Error>>;
}

/// Nobody to ask: every failed check refuses.
pub struct NoOne;

impl Ask for NoOne {
    type Error = Failure;
    async fn includes_again(
        &mut self,
        _: &Failure,
        _: &Snapshot,
    ) -> Result<Option<Vec<String>>, Failure> {
        Ok(None)
    }
    async fn overwrite(&mut self, _: &Path) -> Result<bool, Failure> {
        Ok(false)
    }
}

/// `` `a`, `b` `` or `none`.
pub fn names(v: &[String]) -> String {
    if v.is_empty() {
        "none".to_string()
    } else {
        v.iter()
            .map(|n| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Refuses a volume the service does not back up.
pub fn check_volume(service: &Service, want: &Want) -> Result<(), Failure> {
    match want {
        Want::Volume(v) if !service.volumes.iter().any(|x| x == v) => Err(Failure::usage(format!(
            "service `{}` has no volume `{v}`; its volumes: {}",
            service.name,
            names(&service.volumes)
        ))),
        _ => Ok(()),
    }
}

/// Refuses a dump neither configured nor found among `list`'s tags.
pub fn check_dump(
    service: &Service,
    want: &Want,
    dest: &str,
    list: &[Snapshot],
) -> Result<(), Failure> {
    match want {
        Want::Dump(d)
            if !service.dumps.iter().any(|x| x.name == *d)
                && !list.iter().any(|x| snap::dump_name(x) == Some(d.as_str())) =>
        {
            let configured: Vec<String> = service.dumps.iter().map(|x| x.name.clone()).collect();
            Err(Failure::usage(format!(
                "service `{}` has no dump `{d}` (none configured, no snapshot tagged `dump:{d}` on `{dest}`); its dumps: {}",
                service.name,
                names(&configured)
            )))
        }
        _ => Ok(()),
    }
}

/// The snapshot `given` (an id, a prefix of one, or `latest`) of what is
/// wanted; an unknown one is refused with the nearest ids.
pub fn resolve(
    service: &Service,
    dest: &str,
    list: &[Snapshot],
    given: &str,
    want: &Want,
) -> Result<Snapshot, Failure> {
    let where_ = format!("of service `{}` on `{dest}`", service.name);
    snap::resolve(list, given, want, &where_).cloned()
}

/// The refusal when no snapshot was given and no one can be asked.
pub fn missing_snapshot(list: &[Snapshot], want: &Want) -> Failure {
    Failure::usage(format!(
        "missing `--snapshot ID|latest` (no terminal to ask on){}",
        snap::available(
            &list
                .iter()
                .filter(|s| snap::matches(s, want))
                .cloned()
                .collect::<Vec<_>>()
        )
    ))
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

/// Reads what the snapshot holds of the plan (the preview), checks every
/// `--include` against it (restic 0.14 restores nothing, and says nothing,
/// otherwise), and checks the target: a folder must be empty unless
/// `overwrite`, and symlinks already in it are refused (restic would
/// follow them and write outside it). With `preview` the target is not
/// checked for emptiness and symlinks are only warnings.
pub async fn prepare<'a, A: Ask>(
    restic: &Restic,
    mut plan: Plan<'a>,
    preview: bool,
    ask: &mut A,
    shutdown: &Shutdown,
) -> Result<Plan<'a>, A::Error> {
    // Found now, before the listing is read, as the listing reports them.
    let links = match &plan.what {
        What::Files { target, .. } => files::existing_symlinks(target, &plan.snapshot.paths),
        _ => Vec::new(),
    };
    plan.contents = loop {
        let includes = selected_paths(&plan.what, &plan.snapshot);
        let contents = listing::scan(
            restic,
            &plan.repo,
            &plan.snapshot,
            &includes,
            links.clone(),
            shutdown,
        )
        .await?;
        let Some(e) = contents.missing(&plan.snapshot) else {
            break contents;
        };
        let What::Files { includes, .. } = &mut plan.what else {
            return Err(e.into());
        };
        match ask.includes_again(&e, &plan.snapshot).await? {
            Some(again) => *includes = again,
            None => return Err(e.into()),
        }
    };

    if let What::Files {
        target: Target::Folder(dir),
        ..
    } = &plan.what
        && !preview
        && let Err(e) = files::check_folder(dir, plan.overwrite)
    {
        let go_on = e.usage && ask.overwrite(dir).await?;
        if !go_on {
            return Err(e.into());
        }
    }

    if let What::Files { target, .. } = &plan.what
        && !plan.contents.in_the_way.is_empty()
    {
        let e = files::in_the_way(target, &plan.contents.in_the_way);
        if !preview {
            return Err(e.into());
        }
        plan.warnings.push(e);
    }
    Ok(plan)
}

/// Runs the plan.
pub async fn execute(
    restic: &Restic,
    plan: &Plan<'_>,
    shutdown: &Shutdown,
) -> Result<Done, Failure> {
    let (repo, snapshot) = (&plan.repo, &plan.snapshot);
    match &plan.what {
        What::Files { target, includes } => {
            files::restore(
                restic, repo, snapshot, target, includes, plan.limit, shutdown,
            )
            .await?;
            Ok(Done::default())
        }
        What::Dump { name, sink } => {
            let service = plan.service;
            // The file as this snapshot stores it: the configured
            // `filename` may have changed since.
            let file = snap::dump_file(snapshot).ok_or_else(|| {
                Failure::usage(format!(
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
                (None, Some(_)) => Dump::unconfigured(name),
                (None, None) => {
                    return Err(Failure::usage(format!(
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
                        if !plan.overwrite {
                            return Err(Failure::usage(format!(
                                "`{}` already exists; pass `--overwrite` to replace it, or choose another `--to-file`",
                                f.display()
                            )));
                        }
                        std::fs::remove_file(f).map_err(|e| {
                            Failure::new(
                                ErrorClass::Other,
                                format!("cannot replace `{}`: {e}", f.display()),
                            )
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
                DUMP_TIMEOUT,
                shutdown,
            )
            .await?;
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
                    image: &plan.service.docker_helper_image,
                    replace: true,
                },
                shutdown,
            )
            .await?;
            Ok(Done {
                bytes: None,
                volume: Some(r),
            })
        }
    }
}
