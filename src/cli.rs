//! The command line: every subcommand and flag, with the help users read.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Run, monitor and restore restic backups for many services from one TOML
/// file.
///
/// Start with `restic-manager validate`, then `restic-manager setup` (creates
/// the password and repositories), then `restic-manager run`, and check with
/// `restic-manager status`.
///
/// Exit codes: 0 success, 3 finished with warnings (e.g. a snapshot missing
/// unreadable files), 1 at least one failure, 2 usage or configuration error.
#[derive(Debug, Parser)]
#[command(name = "restic-manager", version, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// Configuration file. Default: $RESTIC_MANAGER_CONFIG, else
    /// $XDG_CONFIG_HOME/restic-manager/config.toml
    /// (~/.config/restic-manager/config.toml), else
    /// /etc/restic-manager/config.toml.
    #[arg(short, long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Print machine-readable JSON on stdout instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
    /// More detail on stderr (which config file, each step).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only errors; no progress or notes.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check the configuration and report every problem with file:line:column.
    Validate,
    /// List services with their targets, schedule and sources.
    List,
    /// Show the resolved configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Create directories, the repository password and the repositories.
    ///
    /// Safe to run again: existing repositories and an existing password file
    /// are left alone, and a second run says there is nothing to do.
    Setup(SetupArgs),
    /// Back up services now: hooks, backup to every target, retention.
    Run(RunArgs),
    /// List the snapshots of each service in each repository (asks restic).
    Snapshots(ServiceFilter),
    /// Show each service's last run and newest snapshot per destination,
    /// from the local history (fast; does not call restic).
    ///
    /// Exits 1 when a service's last run failed, 3 when one finished with
    /// warnings, else 0, so monitoring can call it.
    Status(ServiceFilter),
    /// Install, show or remove the scheduler entries that run each enabled
    /// service on its `schedule` (cron, systemd timers, launchd, Windows
    /// Task Scheduler).
    ///
    /// Without `--backend`: systemd when it is running (PID 1), else cron;
    /// the choice is printed. Entries call this binary by its absolute path
    /// with the absolute configuration path.
    #[command(subcommand)]
    Schedule(ScheduleCommand),
    /// Download a verified restic release and make it the one
    /// restic-manager runs (needs no configuration).
    ///
    /// The archive is checked against the release's SHA256SUMS before
    /// anything is installed, then installed as
    /// $XDG_DATA_HOME/restic-manager/bin/restic-VERSION
    /// (~/.local/share/restic-manager/bin; /var/lib/restic-manager/bin for
    /// root) and the `restic` link there is switched to it. Older versions
    /// stay installed. Mirrors: `[global] restic_release_api` and
    /// `restic_download_base`, or $RESTIC_MANAGER_RELEASE_API and
    /// $RESTIC_MANAGER_DOWNLOAD_BASE (which win).
    #[command(disable_version_flag = true)]
    SetupRestic(SetupResticArgs),
    /// Install the latest restic release if it is newer than the managed
    /// one (needs no configuration).
    ///
    /// With `--check`: only report; exits 3 when an update is available.
    UpdateRestic(UpdateResticArgs),
    /// Show which restic binary restic-manager runs, its version and why it
    /// was chosen (needs no configuration).
    ResticVersion,
    /// Print a shell completion script on stdout (needs no configuration).
    ///
    /// bash: save it as
    /// `~/.local/share/bash-completion/completions/restic-manager`
    /// (`scripts/install.sh` does); zsh: as `_restic-manager` in a folder of
    /// your `$fpath`; fish: as `~/.config/fish/completions/restic-manager.fish`.
    Completions(CompletionsArgs),
    /// Print the man page (roff) on stdout, or write one page per command
    /// with `--out DIR` (needs no configuration).
    ///
    /// Try it with `restic-manager man | man -l -`.
    Man(ManArgs),
    /// Restore files, a Docker volume or a database dump from a snapshot.
    ///
    /// Asks for whatever is missing when run on a terminal: service →
    /// destination → snapshot (a table of time, host, size, tags) → what to
    /// restore → where → a preview (file count, total size, first entries)
    /// → confirmation. Without a terminal, missing choices are an error
    /// (exit 2) naming the flag and listing the choices.
    ///
    /// Files go to a new folder `./restore-SERVICE-SHORTID` by default,
    /// below which every file keeps its full original path; `--in-place`
    /// writes them back where they were (asks first, or needs `--yes`).
    ///
    /// Examples:
    ///   restic-manager restore -s wiki --snapshot latest
    ///   restic-manager restore -s wiki --snapshot 1a2b3c4d --include /srv/wiki/config.php --target /tmp/r
    ///   restic-manager restore -s wiki --snapshot latest --in-place --yes
    ///   restic-manager restore -s wiki --snapshot latest --volume wiki_db --yes
    ///   restic-manager restore -s wiki --snapshot latest --dump db --yes
    ///   restic-manager restore -s wiki --snapshot latest --dump db --to-file /tmp/db.dump
    ///
    /// Exit codes: 0 restored (or previewed), 1 restic, Docker or a restore
    /// command failed (not enough disk space included), 2 a missing or
    /// impossible choice (unknown snapshot, a path not in it, a target that
    /// is not empty, no `--yes` where one is needed).
    #[command(verbatim_doc_comment)]
    Restore(Box<RestoreArgs>),
}

#[derive(Debug, Args)]
pub struct SetupResticArgs {
    /// The release to install, e.g. `0.17.3`. Default: the latest.
    #[arg(long, value_name = "VERSION")]
    pub version: Option<String>,
    /// Download again even when this version is already installed.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct UpdateResticArgs {
    /// Only say whether a newer release exists (exit 3 when one does).
    #[arg(long)]
    pub check: bool,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: CompletionShell,
}

/// Shells we generate completions for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CompletionShell {
    Bash,
    Zsh,
    Fish,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write `restic-manager.1` and one `restic-manager-COMMAND.1` per
    /// command into this folder (created when missing) instead of printing
    /// the main page.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum ScheduleCommand {
    /// Print the entries (crontab block, unit files, plists, task XML) that
    /// `install` would write, and whether they are installed.
    Show(ScheduleArgs),
    /// Write the entries; entries of services that are gone are removed.
    Install(ScheduleArgs),
    /// Remove every entry restic-manager installed.
    Remove(ScheduleArgs),
}

#[derive(Debug, Args)]
pub struct ScheduleArgs {
    /// Which scheduler. Default: systemd when it runs, else cron.
    #[arg(long, value_enum)]
    pub backend: Option<crate::schedule::Backend>,
    /// User-level entries (default unless running as root).
    #[arg(long, conflicts_with = "system")]
    pub user: bool,
    /// System-wide entries (systemd: /etc/systemd/system; default for root).
    #[arg(long)]
    pub system: bool,
    /// Print what would be written or removed and change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// The configuration of each service after global → profile → service
    /// inheritance, with secrets redacted.
    Show(ServiceFilter),
}

#[derive(Debug, Args)]
pub struct ServiceFilter {
    /// Only this service (repeatable).
    #[arg(short, long = "service", value_name = "NAME")]
    pub services: Vec<String>,
}

#[derive(Debug, Args)]
pub struct SetupArgs {
    /// Show what would be created without creating anything.
    #[arg(long)]
    pub dry_run: bool,
    /// Do not install the schedules. By default, when an enabled service
    /// has a `schedule`, setup ends with `schedule install` (detected
    /// backend).
    #[arg(long)]
    pub no_schedule: bool,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Only this service (repeatable). Default: every enabled service.
    #[arg(short, long = "service", value_name = "NAME")]
    pub services: Vec<String>,
    /// Print the plan (repositories, paths, hooks, restic commands) and run
    /// nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Let retention remove more snapshots than `retention_max_remove_percent`
    /// allows, or every snapshot of a service (the guard refuses otherwise).
    #[arg(long)]
    pub allow_mass_forget: bool,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The service whose backups to restore from.
    #[arg(short, long, value_name = "NAME")]
    pub service: Option<String>,
    /// Which of the service's targets to read from. Default: the first one
    /// that can be reached (the one used is printed).
    #[arg(short, long, value_name = "NAME")]
    pub destination: Option<String>,
    /// A snapshot id (any unique prefix, e.g. the 8-character short id) or
    /// `latest` (the newest of the kind being restored).
    #[arg(long, value_name = "ID|latest")]
    pub snapshot: Option<String>,
    /// Restore into this folder (created when missing; must be empty
    /// unless `--overwrite`). Default: `./restore-SERVICE-SHORTID`.
    #[arg(short, long, value_name = "DIR", conflicts_with = "in_place")]
    pub target: Option<std::path::PathBuf>,
    /// Write files back to their original paths, replacing what is there
    /// now (files the snapshot does not have are kept). Asks first on a
    /// terminal; needs `--yes` otherwise.
    #[arg(long)]
    pub in_place: bool,
    /// Only this path of the snapshot (repeatable): absolute as backed up,
    /// or relative to the backed-up folder; a folder brings everything in
    /// it. Default: everything.
    #[arg(short, long, value_name = "PATH")]
    pub include: Vec<String>,
    /// Restore this Docker volume of the service: its content is replaced
    /// by the snapshot's; the containers using it are stopped meanwhile and
    /// started again. Asks first on a terminal; needs `--yes` otherwise.
    #[arg(long, value_name = "NAME", conflicts_with_all = ["include", "target", "in_place", "dump"])]
    pub volume: Option<String>,
    /// With `--volume`: restore into this volume instead (created when
    /// missing), e.g. to compare before replacing the real one.
    #[arg(long, value_name = "NAME", requires = "volume")]
    pub to_volume: Option<String>,
    /// Restore this database dump of the service (snapshots tagged
    /// `dump:NAME`) with its preset's restore command (asks first on a
    /// terminal; needs `--yes` otherwise), or into `--to-file` /
    /// `--to-command`.
    #[arg(long, value_name = "NAME", conflicts_with_all = ["include", "target", "in_place"])]
    pub dump: Option<String>,
    /// With `--dump`: pipe the dump into this shell command's stdin
    /// instead of the preset's restore command (`sh -c`).
    #[arg(
        long,
        value_name = "CMD",
        requires = "dump",
        conflicts_with = "to_file"
    )]
    pub to_command: Option<String>,
    /// With `--dump`: write the dump to this file (must not exist unless
    /// `--overwrite`).
    #[arg(long, value_name = "FILE", requires = "dump")]
    pub to_file: Option<std::path::PathBuf>,
    /// Show what would be restored (file count, total size, first entries)
    /// and write nothing.
    #[arg(long)]
    pub preview: bool,
    /// Do not ask for confirmation (needed without a terminal for
    /// `--in-place`, `--volume` and a dump's restore command).
    #[arg(short, long)]
    pub yes: bool,
    /// Restore into a target that is not empty (files with the same names
    /// are replaced), or replace an existing `--to-file`.
    #[arg(long)]
    pub overwrite: bool,
}
