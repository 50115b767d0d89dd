//! The orchestrator: turns a validated config into backups, in the order
//! docs/architecture.md describes, and records every outcome in history.

pub mod lock;
pub mod notified;
pub mod plan;
pub mod run;
pub mod setup;
pub mod signals;

use crate::model::Outcome;

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
