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
        Self::locate_cached(configured, None).await
    }

    /// Like [`Restic::locate`], remembering the version in `cache_dir`
    /// keyed by the binary's path, inode, size and modification time, so
    /// `restic version` (≈15 ms) runs only when the binary changes (an
    /// upgrade replaces the file and so changes the key).
    pub async fn locate_cached(
        configured: Option<&Path>,
        cache_dir: Option<&Path>,
    ) -> Result<Restic, BinaryError> {
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
        let cache = cache_dir.map(|d| d.join("restic-version.cache"));
        let key = version_key(&path);
        if let (Some(file), Some(key)) = (&cache, &key)
            && let Some(version) = read_cached(file, key)
        {
            return Ok(Restic {
                path,
                version,
                source,
            });
        }
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
        if let (Some(file), Some(key)) = (&cache, &key) {
            // A cache that cannot be written only costs time next run.
            let _ = std::fs::write(file, format!("{key}\t{version}\n"));
        }
        Ok(Restic {
            path,
            version,
            source,
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
    }
}
