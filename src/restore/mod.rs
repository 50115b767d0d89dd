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

/// The tag prefix of a streamed dump's snapshots (`dump:NAME`), shared with
/// `sources::dump`, which writes them.
pub const DUMP_TAG: &str = "dump:";
/// The tag prefix of a streamed volume's snapshots (`volume:NAME`), shared
/// with `sources::docker`.
pub const VOLUME_TAG: &str = "volume:";
