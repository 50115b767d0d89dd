//! The questions `restore` asks on a terminal (dialoguer, run off the
//! async workers), and the answers `restore::prepare` asks for when a check
//! fails.

use std::path::{Path, PathBuf};

use super::absolute;
use crate::config::{Config, Service};
use crate::error::Error;
use crate::model::Failure;
use crate::output::{Printer, bytes, table};
use crate::restic::output::Snapshot;
use crate::restore::Sink;
use crate::restore::files::Target;
use crate::restore::plan::Ask;
use crate::restore::select::{self as snap, Want};

/// Answers `restore::prepare`'s questions on the terminal.
pub(super) struct Terminal<'a> {
    pub printer: &'a Printer,
}

impl Ask for Terminal<'_> {
    type Error = Error;

    async fn includes_again(
        &mut self,
        problem: &Failure,
        snapshot: &Snapshot,
    ) -> Result<Option<Vec<String>>, Error> {
        self.printer.info(format!("error: {problem}"));
        ask_includes(snapshot, true).await.map(Some)
    }

    async fn overwrite(&mut self, dir: &Path) -> Result<bool, Error> {
        let question = format!(
            "`{}` is not empty; restore into it anyway, replacing files with the same names?",
            dir.display()
        );
        ask_confirm(question, false).await
    }
}

pub(super) async fn ask_snapshot(
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

pub(super) async fn ask_target(default: PathBuf) -> Result<Target, Error> {
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
pub(super) async fn ask_volume(
    service: &Service,
    snapshot: &Snapshot,
) -> Result<Option<String>, Error> {
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
pub(super) async fn ask_includes(
    snapshot: &Snapshot,
    paths_only: bool,
) -> Result<Vec<String>, Error> {
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

pub(super) async fn ask_dump_sink(name: &str, configured: bool) -> Result<Option<Sink>, Error> {
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

pub(super) async fn ask_select(
    prompt: String,
    items: Vec<String>,
    default: usize,
) -> Result<usize, Error> {
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

pub(super) async fn ask_input(prompt: String, allow_empty: bool) -> Result<String, Error> {
    blocking(move || {
        dialoguer::Input::<String>::with_theme(&dialoguer::theme::ColorfulTheme::default())
            .with_prompt(prompt)
            .allow_empty(allow_empty)
            .interact_text()
    })
    .await
}

pub(super) async fn ask_confirm(prompt: String, default: bool) -> Result<bool, Error> {
    blocking(move || {
        dialoguer::Confirm::with_theme(&dialoguer::theme::ColorfulTheme::default())
            .with_prompt(prompt)
            .default(default)
            .interact_opt()
    })
    .await
    .map(|a| a.unwrap_or(false))
}
