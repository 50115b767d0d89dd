//! Locating the restic binary and learning its version once per process.

use std::path::{Path, PathBuf};

use crate::process::{self, Shutdown, Spec};

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

    /// Exit codes 10/11/12 for missing repository, lock and password.
    pub fn has_exit_codes(self) -> bool {
        self >= Version(0, 17, 1)
    }
}

/// The oldest restic we support (Debian 12 ships 0.14.0).
pub const MIN_VERSION: Version = Version(0, 14, 0);

/// A located restic binary with its version.
#[derive(Debug, Clone)]
pub struct Restic {
    pub path: PathBuf,
    pub version: Version,
    /// Why this binary was chosen (shown by `-v`).
    pub source: &'static str,
}

/// Errors finding or running restic.
#[derive(Debug, thiserror::Error)]
pub enum BinaryError {
    #[error(
        "restic was not found on PATH; install it (`sudo apt-get install restic` on Debian/Ubuntu) or set `[global] restic_binary`"
    )]
    NotFound,
    #[error("restic binary `{0}` (from `restic_binary`) does not exist or is not executable")]
    Missing(PathBuf),
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

impl Restic {
    /// Finds restic (`restic_binary` if configured, else `restic` on PATH)
    /// and reads its version.
    pub async fn locate(configured: Option<&Path>) -> Result<Restic, BinaryError> {
        let (path, source) = match configured {
            Some(p) if p.components().count() == 1 && !p.is_absolute() => (
                on_path(&p.to_string_lossy())
                    .ok_or_else(|| BinaryError::Missing(p.to_path_buf()))?,
                "restic_binary (config)",
            ),
            Some(p) => {
                if !is_executable(p) {
                    return Err(BinaryError::Missing(p.to_path_buf()));
                }
                (p.to_path_buf(), "restic_binary (config)")
            }
            None => (on_path("restic").ok_or(BinaryError::NotFound)?, "PATH"),
        };
        let out = process::run(
            &Spec::new(&path).arg("version"),
            &Shutdown::never(),
            |_| {},
            |_| {},
        )
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
        Ok(Restic {
            path,
            version,
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert!(!Version(0, 14, 0).has_exit_codes());
    }
}
