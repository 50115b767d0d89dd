//! Building one restic invocation: repository and password through the
//! child's environment, never argv.

use std::time::Duration;

use nix::sys::signal::Signal;

use super::{Repository, Restic};
use crate::config::PasswordSource;
use crate::process::Spec;

/// Inherited variables that would silently override ours (restic prefers
/// `RESTIC_PASSWORD` over a password file) or leak into the wrong repository.
const SCRUBBED: &[&str] = &[
    "RESTIC_REPOSITORY",
    "RESTIC_REPOSITORY_FILE",
    "RESTIC_PASSWORD",
    "RESTIC_PASSWORD_FILE",
    "RESTIC_PASSWORD_COMMAND",
    "RESTIC_KEY_HINT",
    "RESTIC_HOST",
    "RESTIC_FROM_REPOSITORY",
    "RESTIC_FROM_REPOSITORY_FILE",
    "RESTIC_FROM_PASSWORD",
    "RESTIC_FROM_PASSWORD_FILE",
    "RESTIC_FROM_PASSWORD_COMMAND",
];

/// A restic command against one repository.
#[derive(Debug, Clone)]
pub struct ResticCall {
    pub spec: Spec,
}

impl ResticCall {
    /// `restic <args…>` on `repo`.
    pub fn new<I, S>(restic: &Restic, repo: &Repository, args: I) -> ResticCall
    where
        I: IntoIterator<Item = S>,
        S: Into<std::ffi::OsString>,
    {
        let mut spec = Spec::new(&restic.path);
        for o in &repo.options {
            spec = spec.arg("-o").arg(o);
        }
        spec = spec.args(args);
        spec.env_remove = SCRUBBED.iter().map(ToString::to_string).collect();
        spec.env
            .push(("RESTIC_REPOSITORY".into(), repo.url.clone()));
        match &repo.password {
            PasswordSource::File(f) => spec.env.push((
                "RESTIC_PASSWORD_FILE".into(),
                f.to_string_lossy().into_owned(),
            )),
            PasswordSource::Command(c) => {
                spec.env.push(("RESTIC_PASSWORD_COMMAND".into(), c.clone()));
            }
        }
        spec.env.extend(repo.env.iter().cloned());
        // restic removes its lock on SIGINT; give it time to.
        spec.stop_signal = Signal::SIGINT;
        spec.grace = Duration::from_secs(30);
        // restic ≥ 0.17 retries a dead destination for about 15 minutes.
        spec.stall = repo.stall;
        spec.debug_note = Some(format!("repository `{}`", repo.display));
        ResticCall { spec }
    }

    pub fn timeout(mut self, t: Duration) -> Self {
        self.spec.timeout = Some(t);
        self
    }

    /// `restic …` as shown in logs: arguments only, repository redacted.
    pub fn display(&self, repo: &Repository) -> String {
        format!("RESTIC_REPOSITORY={} {}", repo.display, self.spec.display())
    }
}
