//! Getting data back out of a service's repository: which snapshot (by id,
//! prefix or `latest`, with the nearest ids when one is unknown), what it
//! holds (`restic ls --json`, for the preview and to check `--include`
//! paths before restic silently restores nothing), and the restore of
//! files into a folder or back in place. Docker volumes and dumps are
//! restored by their sources (`sources::docker`, `sources::dump`); this
//! module picks the snapshot for them. [`plan`] ties it together: a
//! `Plan`, `prepare` (every check) and `execute`, shared by the `restore`
//! command and the dashboard.

pub mod files;
pub mod listing;
pub mod plan;
pub mod select;
pub mod volume;

pub use plan::{Done, Plan, Sink, What, execute, prepare};

use crate::restic::ErrorClass;
use crate::restic::ops::OpError;

/// Why a restore could not be done. `usage` errors are the user's choice
/// that cannot work (unknown snapshot, a path that is not in it, a target
/// that is not empty): exit 2. The rest are failures: exit 1.
#[derive(Debug, Clone)]
pub struct RestoreError {
    pub class: ErrorClass,
    pub usage: bool,
    pub message: String,
}

impl RestoreError {
    /// A choice that cannot work (exit 2).
    pub fn usage(message: impl Into<String>) -> Self {
        Self {
            class: ErrorClass::Config,
            usage: true,
            message: message.into(),
        }
    }

    /// A failure while restoring (exit 1).
    pub fn failed(class: ErrorClass, message: impl Into<String>) -> Self {
        Self {
            class,
            usage: false,
            message: message.into(),
        }
    }
}

impl From<OpError> for RestoreError {
    fn from(e: OpError) -> Self {
        Self::failed(e.class, e.message)
    }
}

impl std::fmt::Display for RestoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for RestoreError {}

/// The tag prefix of a streamed dump's snapshots (`dump:NAME`), shared with
/// `sources::dump`, which writes them.
pub const DUMP_TAG: &str = "dump:";
/// The tag prefix of a streamed volume's snapshots (`volume:NAME`), shared
/// with `sources::docker`.
pub const VOLUME_TAG: &str = "volume:";
