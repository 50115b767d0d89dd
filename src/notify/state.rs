//! What was sent, and when: the `cache_file` behind rate limiting and
//! recovery messages.
//!
//! Several restic-manager processes (one per scheduled service) may finish
//! at the same moment, so every read-modify-write happens under an
//! exclusive lock on `<cache_file>.lock`, and the file is replaced
//! atomically (written aside, then renamed), so a crash never leaves half a
//! file. A file that cannot be read is treated as empty: at worst one
//! message is sent again.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::model::Outcome;

/// Per service (or `""` for messages about no service, like a broken
/// configuration).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ServiceState {
    /// The outcome of the newest run that was reported (`ok`, `warning`,
    /// `failed`, `interrupted`).
    #[serde(default)]
    pub last_outcome: Option<Outcome>,
    /// Rate-limit key (`failure:hook_failed`, `warning`, `stale`) → unix
    /// milliseconds it was last sent.
    #[serde(default)]
    pub sent: BTreeMap<String, i64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct State {
    #[serde(default)]
    pub services: BTreeMap<String, ServiceState>,
}

/// Why the state could not be saved.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot encode the notification state: {0}")]
    Encode(serde_json::Error),
    #[error("cannot write the notification state `{}`: {source}", .path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The locked state file; saved with [`Locked::save`], unlocked on drop.
pub struct Locked {
    path: PathBuf,
    _lock: Option<File>,
    pub state: State,
}

impl Locked {
    /// Locks and reads the state. Never fails: problems come back as a
    /// warning and an empty (or unlocked) state.
    pub fn open(path: &Path) -> (Locked, Option<String>) {
        let mut warning = None;
        if let Some(dir) = path.parent()
            && let Err(e) = std::fs::create_dir_all(dir)
        {
            warning = Some(format!(
                "cannot create `{}` for the notification state: {e}",
                dir.display()
            ));
        }
        let lock_path = path.with_extension("lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .and_then(|f| f.lock().map(|()| f));
        let lock = match lock {
            Ok(f) => Some(f),
            Err(e) => {
                warning.get_or_insert(format!(
                    "cannot lock `{}`: {e}; rate limiting may repeat a message",
                    lock_path.display()
                ));
                None
            }
        };
        let state = match std::fs::read_to_string(path) {
            Ok(text) => match serde_json::from_str(&text) {
                Ok(s) => s,
                Err(e) => {
                    warning.get_or_insert(format!(
                        "notification state `{}` is not valid ({e}); starting afresh",
                        path.display()
                    ));
                    State::default()
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => State::default(),
            Err(e) => {
                warning.get_or_insert(format!(
                    "cannot read the notification state `{}`: {e}",
                    path.display()
                ));
                State::default()
            }
        };
        (
            Locked {
                path: path.to_path_buf(),
                _lock: lock,
                state,
            },
            warning,
        )
    }

    pub fn service(&mut self, name: &str) -> &mut ServiceState {
        self.state.services.entry(name.to_string()).or_default()
    }

    /// Writes the state atomically: a temporary file in the same folder,
    /// synced, then renamed over the old one.
    pub fn save(&self) -> Result<(), StateError> {
        let text = serde_json::to_string_pretty(&self.state).map_err(StateError::Encode)?;
        let tmp = self
            .path
            .with_extension(format!("tmp.{}", std::process::id()));
        let write = || -> std::io::Result<()> {
            let mut f = File::create(&tmp)?;
            f.write_all(text.as_bytes())?;
            f.sync_all()?;
            std::fs::rename(&tmp, &self.path)
        };
        write().map_err(|source| {
            let _ = std::fs::remove_file(&tmp);
            StateError::Write {
                path: self.path.clone(),
                source,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_survives_a_round_trip_and_garbage_starts_afresh()
    -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("sub/notify.json");
        {
            let (mut l, w) = Locked::open(&path);
            assert!(w.is_none(), "{w:?}");
            l.service("docs").sent.insert("failure:other".into(), 42);
            l.service("docs").last_outcome = Some(Outcome::Failed);
            l.save()?;
        }
        let (mut l, w) = Locked::open(&path);
        assert!(w.is_none());
        assert_eq!(l.service("docs").sent.get("failure:other"), Some(&42));
        drop(l);
        std::fs::write(&path, "{not json")?;
        let (l, w) = Locked::open(&path);
        assert!(w.is_some_and(|w| w.contains("not valid")));
        assert!(l.state.services.is_empty());
        Ok(())
    }
}
