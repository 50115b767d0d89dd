//! Files back into a folder (a new one by default) or to their original
//! paths, through `restic restore --target`. restic 0.14 restores every
//! path under the target with its full original path
//! (`TARGET/srv/app/file`), overwrites files that exist, keeps files the
//! snapshot does not have, and also resets the recorded permissions and
//! times of the folders above the restored paths.

use std::path::{Path, PathBuf};

use crate::model::Failure;
use crate::process::Shutdown;
use crate::restic::error::last_line;
use crate::restic::output::Snapshot;
use crate::restic::{ErrorClass, Repository, Restic};

/// Where files go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A folder; restored paths keep their full original path below it.
    Folder(PathBuf),
    /// The original paths (restic's `--target /`).
    InPlace,
}

impl Target {
    /// The folder restic writes under.
    pub fn root(&self) -> &Path {
        match self {
            Target::Folder(p) => p,
            Target::InPlace => Path::new("/"),
        }
    }
}

/// `restore-<service>-<short id>` in `cwd`.
pub fn default_folder(cwd: &Path, service: &str, snapshot: &Snapshot) -> PathBuf {
    cwd.join(format!("restore-{service}-{}", snapshot.short()))
}

/// Refuses a folder that has something in it, unless `overwrite`.
pub fn check_folder(dir: &Path, overwrite: bool) -> Result<(), Failure> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() && !overwrite {
                return Err(Failure::usage(format!(
                    "target `{}` is not empty; restoring there would overwrite files with the same names: pass `--overwrite` to restore into it anyway, or choose another `--target`",
                    dir.display()
                )));
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => Err(Failure::usage(format!(
            "target `{}` is a file, not a folder; choose another `--target`",
            dir.display()
        ))),
        Err(e) => Err(Failure::new(
            ErrorClass::PermissionDenied,
            format!("cannot read target `{}`: {e}", dir.display()),
        )),
    }
}

/// The symlinks that exist where a restore would write, as snapshot paths
/// (`/srv/app/tmp`): anywhere inside a folder target, and at or below the
/// snapshot's `roots` for a restore in place (symlinks above them, like a
/// `/srv` that points to another disk, are the system's layout and are
/// followed on purpose). restic's restore follows symlinks it finds, so
/// files would land outside the target; see [`in_the_way`].
pub fn existing_symlinks(target: &Target, roots: &[String]) -> Vec<String> {
    let mut found = Vec::new();
    match target {
        Target::Folder(dir) => walk(dir, dir, &mut found),
        Target::InPlace => {
            for r in roots {
                let p = Path::new(r);
                match std::fs::symlink_metadata(p) {
                    Ok(m) if m.file_type().is_symlink() => found.push(r.clone()),
                    Ok(m) if m.is_dir() => walk(Path::new("/"), p, &mut found),
                    _ => {}
                }
            }
        }
    }
    found.sort();
    found
}

/// Symlinks below `dir`, as `/`-rooted paths relative to `base`; never
/// follows one. Unreadable folders are skipped (restic will say so).
fn walk(base: &Path, dir: &Path, found: &mut Vec<String>) {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let Ok(kind) = e.file_type() else { continue };
            let path = e.path();
            if kind.is_symlink() {
                if let Ok(rel) = path.strip_prefix(base) {
                    found.push(format!("/{}", rel.to_string_lossy()));
                }
            } else if kind.is_dir() {
                stack.push(path);
            }
        }
    }
}

/// The refusal for symlinks in the way: each one where it is and where it
/// points.
pub fn in_the_way(target: &Target, links: &[String]) -> Failure {
    const SHOWN: usize = 10;
    let root = target.root();
    let shown: Vec<String> = links
        .iter()
        .take(SHOWN)
        .map(|l| {
            let at = root.join(l.trim_start_matches('/'));
            let to = std::fs::read_link(&at)
                .map_or_else(|_| "?".to_string(), |t| t.display().to_string());
            format!("`{}` -> `{to}`", at.display())
        })
        .collect();
    let more = if links.len() > SHOWN {
        format!(" and {} more", links.len() - SHOWN)
    } else {
        String::new()
    };
    Failure::usage(format!(
        "refusing to restore into `{}`: {} already there would be followed and restored files written where {} point{}: {}{more}; remove {} (or restore into a new folder) and try again",
        root.display(),
        if links.len() == 1 {
            "a symlink"
        } else {
            "symlinks"
        },
        if links.len() == 1 { "it" } else { "they" },
        if links.len() == 1 { "s" } else { "" },
        shown.join(", "),
        if links.len() == 1 { "it" } else { "them" },
    ))
}

/// A path as a restic `--include` pattern that matches only itself:
/// restic reads glob characters in patterns, so they are escaped.
pub fn pattern(path: &str) -> String {
    let mut s = String::with_capacity(path.len());
    for c in path.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            s.push('\\');
        }
        s.push(c);
    }
    s
}

/// `restic restore SNAPSHOT --target T [--include P]…`, stopped after
/// `timeout` if one is given.
pub async fn restore(
    restic: &Restic,
    repo: &Repository,
    snapshot: &Snapshot,
    target: &Target,
    includes: &[String],
    timeout: Option<std::time::Duration>,
    shutdown: &Shutdown,
) -> Result<(), Failure> {
    if let Target::Folder(dir) = target {
        std::fs::create_dir_all(dir).map_err(|e| {
            Failure::new(
                if e.kind() == std::io::ErrorKind::PermissionDenied {
                    ErrorClass::PermissionDenied
                } else {
                    ErrorClass::Other
                },
                format!("cannot create target `{}`: {e}", dir.display()),
            )
        })?;
    }
    let includes: Vec<String> = includes.iter().map(|i| pattern(i)).collect();
    let what = crate::restic::restore::Restore {
        snapshot: &snapshot.id,
        target: target.root(),
        includes: &includes,
        no_lock: false,
        verify: false,
        timeout,
    };
    let Err(e) = crate::restic::restore::restore(restic, repo, &what, shutdown).await else {
        return Ok(());
    };
    let where_ = target.root().display();
    // restic 0.14 reports write errors per file ("ignoring error for …:
    // … no space left on device") and ends with "There were N errors".
    let stderr = &e.stderr;
    let lower = stderr.to_ascii_lowercase();
    let message = if lower.contains("no space left on device")
        || lower.contains("disk quota exceeded")
    {
        return Err(Failure::new(
            ErrorClass::NoSpace,
            format!(
                "not enough disk space in `{where_}` to restore snapshot `{}`: restic said `{}`; free space there, or restore less with `--include` (`--preview` shows the size)",
                snapshot.short(),
                first_error(stderr)
            ),
        ));
    } else if e.class == ErrorClass::Other {
        format!(
            "restoring snapshot `{}` from `{}` into `{where_}` failed: {}",
            snapshot.short(),
            repo.display,
            first_error(stderr)
        )
    } else {
        e.message.clone()
    };
    Err(Failure::new(e.class, message))
}

/// restic's first per-file error line, or its most telling line.
fn first_error(stderr: &str) -> String {
    stderr
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("ignoring error for "))
        .map_or_else(|| last_line(stderr), str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_escape_glob_characters() {
        assert_eq!(pattern("/srv/a b/c.txt"), "/srv/a b/c.txt");
        assert_eq!(pattern("/srv/[x]*?.txt"), "/srv/\\[x\\]\\*\\?.txt");
    }

    #[test]
    fn empty_or_missing_folders_are_fine_others_need_overwrite() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("t");
        assert!(check_folder(&dir, false).is_ok());
        assert!(std::fs::create_dir(&dir).is_ok());
        assert!(check_folder(&dir, false).is_ok());
        assert!(std::fs::write(dir.join("f"), "x").is_ok());
        let e = check_folder(&dir, false).err();
        assert!(
            e.as_ref()
                .is_some_and(|e| e.usage && e.message.contains("is not empty")),
            "{e:?}"
        );
        assert!(check_folder(&dir, true).is_ok());
        assert!(check_folder(&dir.join("f"), true).is_err());
    }
}
