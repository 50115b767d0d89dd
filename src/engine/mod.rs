//! The orchestrator: turns a validated config into backups, in the order
//! DESIGN.md describes, and records every outcome in history.

pub mod lock;
pub mod notified;
pub mod run;
pub mod runlog;
pub mod setup;
pub mod signals;

use serde::Serialize;

/// The outcome of a service, a target or a whole command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Ok,
    Warning,
    Failed,
    Interrupted,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Warning => "warning",
            Outcome::Failed => "failed",
            Outcome::Interrupted => "interrupted",
        }
    }

    /// The worse of two outcomes.
    #[must_use]
    pub fn worst(self, other: Outcome) -> Outcome {
        self.max(other)
    }

    /// The process exit code for this outcome (DESIGN.md decision 8).
    pub fn exit_code(self) -> i32 {
        match self {
            Outcome::Ok => 0,
            Outcome::Warning => 3,
            Outcome::Failed => 1,
            Outcome::Interrupted => 130,
        }
    }
}

/// Receives progress of running backups (a terminal shows bars; elsewhere
/// nothing).
pub trait Progress: Sync {
    /// Whether restic should be asked for progress lines at all.
    fn wanted(&self) -> bool;
    fn started(&self, service: &str, destination: &str);
    fn update(
        &self,
        service: &str,
        destination: &str,
        status: &crate::restic::output::BackupStatus,
    );
    fn finished(&self, service: &str, destination: &str, outcome: Outcome);
    /// A one-line message for the user (stderr), e.g. "wiki: running pre hooks".
    fn note(&self, text: &str);
}

/// No progress output.
pub struct Silent;

impl Progress for Silent {
    fn wanted(&self) -> bool {
        false
    }
    fn started(&self, _: &str, _: &str) {}
    fn update(&self, _: &str, _: &str, _: &crate::restic::output::BackupStatus) {}
    fn finished(&self, _: &str, _: &str, _: Outcome) {}
    fn note(&self, _: &str) {}
}
