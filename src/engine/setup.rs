//! `setup`: directories, the repository password, and `restic init` for
//! every repository that does not exist yet. Idempotent.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use rand::Rng;
use serde::Serialize;

use crate::config::{Config, PasswordSource, Replication};
use crate::process::Shutdown;
use crate::restic::{Repository, Restic, ops};

/// What happened to one repository.
#[derive(Debug, Clone, Serialize)]
pub struct RepoSetup {
    pub service: String,
    pub destination: String,
    pub repository: String,
    /// `created`, `exists`, `would_create`, `failed`.
    pub action: String,
    pub error: Option<String>,
}

/// What `setup` did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SetupReport {
    pub dry_run: bool,
    pub directories_created: Vec<PathBuf>,
    pub password_generated: Option<PathBuf>,
    pub repositories: Vec<RepoSetup>,
    pub errors: Vec<String>,
}

impl SetupReport {
    /// True when nothing was (or would be) changed.
    pub fn unchanged(&self) -> bool {
        self.directories_created.is_empty()
            && self.password_generated.is_none()
            && self.repositories.iter().all(|r| r.action == "exists")
    }
}

/// A strong random password: 48 characters from 62, about 285 bits.
pub fn generate_password() -> String {
    let mut rng = rand::rng();
    (0..48)
        .map(|_| char::from(rng.sample(rand::distr::Alphanumeric)))
        .collect()
}

/// Writes a new password file with mode 0600; never overwrites.
pub fn write_password_file(path: &Path) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    writeln!(f, "{}", generate_password())?;
    f.sync_all()
}

/// Runs setup. `restic` may be missing in a dry run.
pub async fn setup(
    config: &Config,
    restic: Option<&Restic>,
    dry_run: bool,
    shutdown: &Shutdown,
) -> SetupReport {
    let s = &config.settings;
    let mut report = SetupReport {
        dry_run,
        ..SetupReport::default()
    };
    for dir in [&s.state_directory, &s.log_directory, &s.lock_directory] {
        if !dir.is_dir() {
            if !dry_run
                && let Err(e) = std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(dir)
            {
                report
                    .errors
                    .push(format!("cannot create directory `{}`: {e}", dir.display()));
                continue;
            }
            report.directories_created.push(dir.clone());
        }
    }
    if let PasswordSource::File(p) = &s.password
        && !p.exists()
    {
        if !dry_run && let Err(e) = write_password_file(p) {
            report
                .errors
                .push(format!("cannot write password file `{}`: {e}", p.display()));
            return report;
        }
        report.password_generated = Some(p.clone());
    }
    // A dead destination answers here in seconds, not after the 15 minutes
    // restic ≥ 0.17 would retry it.
    let probes = crate::restic::probe::check_all(
        config,
        config
            .services
            .iter()
            .flat_map(|s| s.targets.iter().map(String::as_str)),
    )
    .await;
    for svc in &config.services {
        // With `replication = "copy"`, the other targets get the primary's
        // chunker parameters so copied data deduplicates.
        let mut primary: Option<Repository> = None;
        for (i, t) in svc.targets.iter().enumerate() {
            let Some(dest) = config.destinations.get(t) else {
                continue;
            };
            let mut entry = RepoSetup {
                service: svc.name.clone(),
                destination: t.clone(),
                repository: String::new(),
                action: "failed".into(),
                error: None,
            };
            let repo = match Repository::open(dest, &svc.name, &s.password) {
                Ok(r) => r,
                Err(e) => {
                    entry.error = Some(e.to_string());
                    report.repositories.push(entry);
                    continue;
                }
            };
            entry.repository.clone_from(&repo.display);
            if let Some(dead) = probes.failed(t) {
                entry.error = Some(dead.message());
                report.repositories.push(entry);
                continue;
            }
            let exists = match (restic, repo.local_path()) {
                (_, Some(p)) => Ok(p.join("config").is_file()),
                (Some(r), None) => ops::exists(r, &repo, shutdown).await,
                (None, None) => Ok(false),
            };
            match exists {
                Ok(true) => entry.action = "exists".into(),
                Ok(false) if dry_run => entry.action = "would_create".into(),
                Ok(false) => match restic {
                    Some(r) => {
                        let chunker_from = primary
                            .as_ref()
                            .filter(|_| i > 0 && matches!(svc.replication, Replication::Copy));
                        let res = ops::init(r, &repo, chunker_from, shutdown).await;
                        match res {
                            Ok(()) => entry.action = "created".into(),
                            Err(e) => entry.error = Some(e.message),
                        }
                    }
                    None => entry.error = Some("restic is not available".into()),
                },
                Err(e) => entry.error = Some(e.message),
            }
            if i == 0 && entry.error.is_none() {
                primary = Some(repo);
            }
            report.repositories.push(entry);
        }
    }
    report
}
