//! Locating the restic binary and learning its version once per process.
//!
//! The choice, in order: `restic_binary` from the configuration, else the
//! managed link `setup-restic` installed (unless `use_system_restic`), else
//! `restic` on PATH. `restic-version` shows which and why.

use std::path::{Path, PathBuf};

use crate::process::{Shutdown, Spec};

/// A restic version, `major.minor.patch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct Version(pub u32, pub u32, pub u32);

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.0, self.1, self.2)
    }
}

impl Version {
    /// Parses the first line of `restic version`:
    /// `restic 0.14.0 compiled with go1.19.8 on linux/amd64`.
    pub fn parse(text: &str) -> Option<Version> {
        let word = text.split_whitespace().nth(1)?;
        let word = word.trim_start_matches('v');
        let core = word.split(['-', '+']).next()?;
        let mut it = core.split('.').map(|p| p.parse::<u32>().ok());
        Some(Version(
            it.next()??,
            it.next()??,
            it.next().flatten().unwrap_or(0),
        ))
    }

    /// restic 0.18.0 cannot save `backup --stdin` under a folder
    /// (`--stdin-filename volumes/x.tar` fails with `open /volumes: no such
    /// file or directory`; restic#5324, fixed in 0.18.1). Debian 13 ships
    /// exactly this version.
    pub fn stdin_folders_broken(self) -> bool {
        self == Version(0, 18, 0)
    }

    /// Why `filename` cannot be stored with `backup --stdin` by this
    /// restic, with the way out; `None` when it can.
    pub fn stdin_filename_problem(self, filename: &str) -> Option<String> {
        (self.stdin_folders_broken() && filename.trim_start_matches('/').contains('/')).then(|| {
            format!(
                "restic {self} cannot store a stream under a folder (`{filename}`): it fails with \"open /…: no such file or directory\" (restic issue #5324, fixed in 0.18.1); install a fixed restic with `restic-manager setup-restic` (or set `restic_binary`), or for a dump set a `filename` without a folder"
            )
        })
    }

    /// Exit codes 10/11/12 for missing repository, lock and password.
    pub fn has_exit_codes(self) -> bool {
        self >= Version(0, 17, 1)
    }
}

/// One place where restic-manager behaves differently by restic version,
/// as `restic-version` shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct VersionPath {
    /// Short name, stable for `--json`.
    pub name: &'static str,
    /// The first restic that takes this path.
    #[serde(serialize_with = "as_text")]
    pub since: Version,
    /// Whether it is taken with this restic.
    pub active: bool,
    /// What happens with this restic.
    pub detail: &'static str,
}

fn as_text<S: serde::Serializer>(v: &Version, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

impl Version {
    /// Every version-specific path, and which this restic takes.
    pub fn paths(self) -> Vec<VersionPath> {
        let path = |name, since: Version, on: &'static str, off: &'static str| {
            let active = self >= since;
            VersionPath {
                name,
                since,
                active,
                detail: if active { on } else { off },
            }
        };
        vec![
            path(
                "exit_codes",
                Version(0, 17, 1),
                "failures are classified by restic's exit codes 10 (no repository), 11 (locked), 12 (wrong password); stderr text only for the rest",
                "failures are classified from restic's stderr text (this restic exits 1 for all of them)",
            ),
            path(
                "full_snapshot_id",
                Version(0, 15, 0),
                "the backup summary carries the full snapshot id",
                "the backup summary has the 8-character id; the full id is looked up after each backup (the repository's snapshot folder, or one `restic snapshots`)",
            ),
            path(
                "json_errors",
                Version(0, 18, 0),
                "restic prints its errors as JSON under `--json`; they are rendered as text for messages and run logs",
                "restic prints its errors as text",
            ),
            path(
                "stdin_waits_for_eof",
                Version(0, 17, 0),
                "a stopped `backup --stdin` waits for the end of its input: after the SIGINT its stdin is closed, so a failed dump ends in seconds and leaves no snapshot",
                "a stopped `backup --stdin` exits on SIGINT at once and leaves no snapshot",
            ),
            VersionPath {
                name: "stdin_folders_broken",
                since: Version(0, 18, 0),
                active: self.stdin_folders_broken(),
                detail: if self.stdin_folders_broken() {
                    "this restic cannot store `backup --stdin` under a folder (restic#5324): stream-mode volumes (`volumes/NAME.tar`) and dumps whose `filename` has a folder fail with the fix named"
                } else {
                    "only restic 0.18.0 cannot store `backup --stdin` under a folder"
                },
            },
            path(
                "stdin_from_command",
                Version(0, 17, 0),
                "`backup --stdin-from-command` exists but is not used: dumps run once and stream into every destination, with their output checked, through restic-manager's own pipe",
                "dumps stream through restic-manager's own pipe into `backup --stdin`",
            ),
        ]
    }
}

/// The oldest restic we support (Debian 12 ships 0.14.0).
pub const MIN_VERSION: Version = Version(0, 14, 0);

/// A located restic binary with its version.
#[derive(Debug, Clone)]
pub struct Restic {
    pub path: PathBuf,
    pub version: Version,
    /// Where it came from: `config`, `managed` or `path` (shown by `-v`).
    pub source: &'static str,
    /// Why this binary was chosen, for `restic-version`.
    pub why: String,
}

/// What decides which restic runs.
#[derive(Debug, Clone, Copy, Default)]
pub struct Lookup<'a> {
    /// `[global] restic_binary`.
    pub configured: Option<&'a Path>,
    /// The managed `restic` link (`setup-restic`).
    pub managed: Option<&'a Path>,
    /// `[global] use_system_restic`: skip the managed binary.
    pub use_system: bool,
    /// Where the version cache lives.
    pub cache_dir: Option<&'a Path>,
}

/// Errors finding or running restic.
#[derive(Debug, thiserror::Error)]
pub enum BinaryError {
    #[error(
        "restic was not found on PATH; run `restic-manager setup-restic` for a verified release, install it (`sudo apt-get install restic` on Debian/Ubuntu), or set `[global] restic_binary`"
    )]
    NotFound,
    #[error("restic binary `{0}` (from `restic_binary`) does not exist or is not executable")]
    Missing(PathBuf),
    #[error(
        "the managed restic `{0}` points to a missing or non-executable file; run `restic-manager setup-restic --force`, or set `use_system_restic = true`"
    )]
    ManagedBroken(PathBuf),
    #[error("cannot run `{path} version`: {detail}")]
    Broken { path: PathBuf, detail: String },
    #[error("restic {version} at `{path}` is too old; restic-manager needs {MIN_VERSION} or newer")]
    TooOld { path: PathBuf, version: Version },
}

fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Picks the binary: `(path, source, why)`.
fn choose(l: &Lookup<'_>) -> Result<(PathBuf, &'static str, String), BinaryError> {
    const FROM_CONFIG: &str = "`restic_binary` is set in the configuration";
    match l.configured {
        Some(p) if p.components().count() == 1 && !p.is_absolute() => {
            return Ok((
                on_path(&p.to_string_lossy())
                    .ok_or_else(|| BinaryError::Missing(p.to_path_buf()))?,
                "config",
                FROM_CONFIG.to_string(),
            ));
        }
        Some(p) => {
            if !is_executable(p) {
                return Err(BinaryError::Missing(p.to_path_buf()));
            }
            return Ok((p.to_path_buf(), "config", FROM_CONFIG.to_string()));
        }
        None => {}
    }
    let why_path = match l.managed {
        _ if l.use_system => {
            "`use_system_restic = true` in the configuration skips the managed restic".to_string()
        }
        Some(link) if link.symlink_metadata().is_ok() => {
            if !is_executable(link) {
                return Err(BinaryError::ManagedBroken(link.to_path_buf()));
            }
            return Ok((
                link.to_path_buf(),
                "managed",
                "the managed restic installed by `setup-restic` (set `use_system_restic = true` to use the one on PATH)"
                    .to_string(),
            ));
        }
        _ => "no managed restic is installed (`restic-manager setup-restic` installs one)"
            .to_string(),
    };
    let path = on_path("restic").ok_or(BinaryError::NotFound)?;
    Ok((path, "path", format!("found on PATH; {why_path}")))
}

impl Restic {
    /// Finds restic (`restic_binary` if configured, else `restic` on PATH)
    /// and reads its version.
    pub async fn locate(configured: Option<&Path>) -> Result<Restic, BinaryError> {
        Self::locate_with(&Lookup {
            configured,
            ..Lookup::default()
        })
        .await
    }

    /// Chooses restic as [`Lookup`] says and reads its version, remembering
    /// it in `cache_dir` keyed by the binary's path, inode, size and
    /// modification time, so `restic version` (≈15 ms) runs only when the
    /// binary changes (an upgrade replaces the file, or switches the
    /// managed link to another file, and so changes the key).
    pub async fn locate_with(l: &Lookup<'_>) -> Result<Restic, BinaryError> {
        let (path, source, why) = choose(l)?;
        let cache_dir = l.cache_dir;
        let cache = cache_dir.map(|d| d.join("restic-version.cache"));
        let key = version_key(&path);
        if let (Some(file), Some(key)) = (&cache, &key)
            && let Some(version) = read_cached(file, key)
        {
            return Ok(Restic {
                path,
                version,
                source,
                why,
            });
        }
        let out = Spec::new(&path)
            .arg("version")
            .run(&Shutdown::never(), |_| {}, |_| {})
            .await
            .map_err(|e| BinaryError::Broken {
                path: path.clone(),
                detail: e.source.to_string(),
            })?;
        let version = Version::parse(&out.stdout).ok_or_else(|| BinaryError::Broken {
            path: path.clone(),
            detail: format!("unexpected output {:?}", out.stdout.trim()),
        })?;
        if version < MIN_VERSION {
            return Err(BinaryError::TooOld { path, version });
        }
        if let (Some(file), Some(key)) = (&cache, &key) {
            // A cache that cannot be written only costs time next run.
            let _ = std::fs::write(file, format!("{key}\t{version}\n"));
        }
        Ok(Restic {
            path,
            version,
            source,
            why,
        })
    }
}

/// Identifies one binary file: path, inode, size, modification time.
fn version_key(path: &Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some(format!(
        "{}\t{}\t{}\t{}.{}",
        path.display(),
        m.ino(),
        m.size(),
        m.mtime(),
        m.mtime_nsec()
    ))
}

fn read_cached(file: &Path, key: &str) -> Option<Version> {
    let text = std::fs::read_to_string(file).ok()?;
    let line = text.lines().next()?;
    let (k, v) = line.rsplit_once('\t')?;
    if k != key {
        return None;
    }
    Version::parse(&format!("restic {v}")).filter(|v| *v >= MIN_VERSION)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chooses_config_then_managed_then_path() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("restic-0.14.0");
        std::fs::write(&bin, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        let link = dir.path().join("restic");
        let absent = dir.path().join("absent");
        std::os::unix::fs::symlink("restic-0.14.0", &link).unwrap();
        let src = |l: Lookup<'_>| {
            choose(&l)
                .map(|(p, s, _)| (p, s))
                .map_err(|e| e.to_string())
        };
        assert_eq!(
            src(Lookup {
                configured: Some(&bin),
                managed: Some(&link),
                ..Lookup::default()
            }),
            Ok((bin.clone(), "config"))
        );
        assert_eq!(
            src(Lookup {
                managed: Some(&link),
                ..Lookup::default()
            }),
            Ok((link.clone(), "managed"))
        );
        for l in [
            Lookup {
                managed: Some(&link),
                use_system: true,
                ..Lookup::default()
            },
            Lookup {
                managed: Some(&absent),
                ..Lookup::default()
            },
        ] {
            // PATH, or "not found" on a machine without restic.
            assert!(!matches!(src(l), Ok((_, "managed" | "config"))));
        }
        std::fs::remove_file(&bin).unwrap();
        assert!(
            src(Lookup {
                managed: Some(&link),
                ..Lookup::default()
            })
            .is_err_and(|e| e.contains("setup-restic --force"))
        );
    }

    #[test]
    fn parses_version_lines() {
        for (text, want) in [
            (
                "restic 0.14.0 compiled with go1.19.8 on linux/amd64",
                Some(Version(0, 14, 0)),
            ),
            (
                "restic 0.17.3 compiled with go1.23.3 on linux/amd64\n",
                Some(Version(0, 17, 3)),
            ),
            (
                "restic 0.18.0-dev (compiled manually) compiled with go1.24",
                Some(Version(0, 18, 0)),
            ),
            ("garbage", None),
        ] {
            assert_eq!(Version::parse(text), want, "{text}");
        }
        assert!(Version(0, 14, 0) < Version(0, 17, 1));
        assert_eq!(
            Version::parse(&format!("restic {}", Version(0, 16, 4))),
            Some(Version(0, 16, 4))
        );
        assert!(!Version(0, 14, 0).has_exit_codes());
        let active = |v: Version| -> Vec<&str> {
            v.paths()
                .into_iter()
                .filter(|p| p.active)
                .map(|p| p.name)
                .collect()
        };
        assert!(active(Version(0, 14, 0)).is_empty());
        assert_eq!(
            active(Version(0, 18, 0)),
            [
                "exit_codes",
                "full_snapshot_id",
                "json_errors",
                "stdin_waits_for_eof",
                "stdin_folders_broken",
                "stdin_from_command"
            ]
        );
        assert!(!active(Version(0, 18, 1)).contains(&"stdin_folders_broken"));
        assert!(
            Version(0, 18, 0)
                .stdin_filename_problem("volumes/v.tar")
                .is_some_and(|m| m.contains("0.18.1"))
        );
        assert!(
            Version(0, 18, 0)
                .stdin_filename_problem("app.sql")
                .is_none()
        );
        assert!(
            Version(0, 19, 1)
                .stdin_filename_problem("volumes/v.tar")
                .is_none()
        );
        assert_eq!(
            active(Version(0, 17, 0)),
            [
                "full_snapshot_id",
                "stdin_waits_for_eof",
                "stdin_from_command"
            ]
        );
    }
}
