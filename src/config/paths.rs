//! Where things live: XDG directories for users, FHS for root.
//!
//! Environment lookups go through [`Env`] so tests (and the CLI's `--config`)
//! decide, never a global.

use std::path::{Path, PathBuf};

/// The environment values that decide default locations.
#[derive(Debug, Clone, Default)]
pub struct Env {
    pub home: Option<PathBuf>,
    pub xdg_config_home: Option<PathBuf>,
    pub xdg_state_home: Option<PathBuf>,
    pub xdg_data_home: Option<PathBuf>,
    pub xdg_runtime_dir: Option<PathBuf>,
    pub config_override: Option<PathBuf>,
    pub is_root: bool,
}

fn var(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
}

impl Env {
    /// Reads the process environment.
    pub fn from_process() -> Self {
        Self {
            home: var("HOME"),
            xdg_config_home: var("XDG_CONFIG_HOME"),
            xdg_state_home: var("XDG_STATE_HOME"),
            xdg_data_home: var("XDG_DATA_HOME"),
            xdg_runtime_dir: var("XDG_RUNTIME_DIR"),
            config_override: std::env::var_os("RESTIC_MANAGER_CONFIG")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from),
            is_root: nix::unistd::geteuid().is_root(),
        }
    }

    fn home_join(&self, rel: &str) -> Option<PathBuf> {
        self.home.as_ref().map(|h| h.join(rel))
    }

    /// The user's configuration directory for restic-manager.
    pub fn user_config_dir(&self) -> Option<PathBuf> {
        self.xdg_config_home
            .clone()
            .or_else(|| self.home_join(".config"))
            .map(|d| d.join("restic-manager"))
    }

    /// Candidate configuration files in discovery order, with the reason
    /// each one is considered (shown by `-v` and `validate`).
    pub fn config_candidates(&self, flag: Option<&PathBuf>) -> Vec<(PathBuf, &'static str)> {
        if let Some(f) = flag {
            return vec![(f.clone(), "--config")];
        }
        if let Some(f) = &self.config_override {
            return vec![(f.clone(), "$RESTIC_MANAGER_CONFIG")];
        }
        let mut out = Vec::new();
        if let Some(d) = self.user_config_dir() {
            out.push((d.join("config.toml"), "user configuration"));
        }
        out.push((
            PathBuf::from("/etc/restic-manager/config.toml"),
            "system configuration",
        ));
        out
    }

    /// Default state directory (history database, logs).
    pub fn state_dir(&self) -> PathBuf {
        if let Some(d) = &self.xdg_state_home {
            return d.join("restic-manager");
        }
        if self.is_root {
            return PathBuf::from("/var/lib/restic-manager");
        }
        self.home_join(".local/state/restic-manager")
            .unwrap_or_else(|| std::env::temp_dir().join("restic-manager-state"))
    }

    /// Where managed restic binaries live (`setup-restic`):
    /// `$XDG_DATA_HOME/restic-manager/bin` (~/.local/share/restic-manager/bin),
    /// `/var/lib/restic-manager/bin` for root. Not configurable in the file
    /// on purpose: the commands that install restic need no configuration.
    pub fn managed_bin_dir(&self) -> PathBuf {
        if let Some(d) = &self.xdg_data_home {
            return d.join("restic-manager/bin");
        }
        if self.is_root {
            return PathBuf::from("/var/lib/restic-manager/bin");
        }
        self.home_join(".local/share/restic-manager/bin")
            .unwrap_or_else(|| std::env::temp_dir().join("restic-manager-data/bin"))
    }

    /// Default lock directory; `None` means "under the state directory".
    ///
    /// cron and systemd start jobs without `XDG_RUNTIME_DIR`, yet a
    /// scheduled run must see the locks of an interactive one: so when the
    /// variable is unset, the user's runtime folder `/run/user/UID` is used
    /// if it exists (it does while the user has a session).
    pub fn lock_dir(&self) -> Option<PathBuf> {
        if let Some(d) = &self.xdg_runtime_dir {
            return Some(d.join("restic-manager"));
        }
        if self.is_root {
            return Some(PathBuf::from("/run/restic-manager"));
        }
        let user_run = PathBuf::from(format!("/run/user/{}", nix::unistd::getuid()));
        if user_run.is_dir() {
            return Some(user_run.join("restic-manager"));
        }
        None
    }
}

/// `path` made absolute (from the working directory) with `.` and `..`
/// resolved by name, not through the filesystem, so a configuration reached
/// as `../site/config.toml` reports `/…/site/…`.
pub fn absolute(path: &Path) -> PathBuf {
    use std::path::Component;
    let full = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut out = PathBuf::new();
    for c in full.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// The one rule for a path written in the configuration file: `~/` is the
/// user's home, an absolute path is kept, and a relative path is taken from
/// the configuration file's folder (`config_dir`, absolute). Only the
/// service data paths (`paths`, hook `working_dir`, a sqlite dump's `path`)
/// are taken from `docker_base` instead, as in the original tool.
pub fn from_config_dir(p: &str, config_dir: &Path, env: &Env) -> PathBuf {
    let pb = match (p.strip_prefix("~/"), env.home.as_ref()) {
        (Some(rest), Some(home)) => home.join(rest),
        _ => PathBuf::from(p),
    };
    if pb.is_absolute() {
        pb
    } else {
        config_dir.join(pb)
    }
}

/// Like [`from_config_dir`] for a program: a bare name (`rclone`) is left
/// alone, to be looked up on `PATH`.
pub fn program_from_config_dir(p: &str, config_dir: &Path, env: &Env) -> PathBuf {
    if p.contains('/') {
        from_config_dir(p, config_dir, env)
    } else {
        PathBuf::from(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_are_taken_from_the_config_folder() {
        let env = Env {
            home: Some(PathBuf::from("/home/u")),
            ..Env::default()
        };
        let dir = Path::new("/etc/rm");
        for (given, want) in [
            ("pw", "/etc/rm/pw"),
            ("./keys/id", "/etc/rm/./keys/id"),
            ("../backup", "/etc/rm/../backup"),
            ("/srv/x", "/srv/x"),
            ("~/pw", "/home/u/pw"),
        ] {
            assert_eq!(from_config_dir(given, dir, &env), PathBuf::from(want));
        }
        assert_eq!(
            program_from_config_dir("restic", dir, &env),
            PathBuf::from("restic")
        );
        assert_eq!(
            program_from_config_dir("bin/restic", dir, &env),
            PathBuf::from("/etc/rm/bin/restic")
        );
    }
}
