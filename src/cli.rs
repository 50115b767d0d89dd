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
    /// Run the web dashboard: health of every service, live progress,
    /// snapshot browser, restores, a JSON API and `/metrics`.
    ///
    /// Listens on `[web] listen` (default 127.0.0.1:8080). Everything needs
    /// the token in `[web] token_file` (default: `web-token` in the state
    /// directory; `setup` creates it): log in with it in a browser, or send
    /// `Authorization: Bearer TOKEN`. On loopback a missing token file is
    /// created; on any other address the server refuses to start without
    /// one (exit 2). Ctrl-C / SIGTERM stop it; a running backup is stopped
    /// safely (restic's lock removed, post hooks run, the run recorded as
    /// interrupted).
    Serve(ServeArgs),
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address and port, e.g. `127.0.0.1:8080`, `0.0.0.0:8080` or
    /// `[::1]:8080`. Default: `[web] listen`, else 127.0.0.1:8080.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
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
