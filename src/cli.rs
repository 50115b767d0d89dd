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
    /// Prove that backups can be read back: `restic check` of every
    /// selected service's repositories, optionally reading data and
    /// restoring a sample (a restore drill).
    ///
    /// Without flags: `restic check` (structure and index). `--deep` reads
    /// every pack (`check --read-data`); `--read-data-subset` reads a part.
    /// A scheduled verify (`verify_schedule`) without either flag reads the
    /// next part n/N of a rotation (N = `verify_rotation`, default 10), so
    /// the whole repository is read once every N runs. `--drill` also
    /// restores the latest snapshot (or `drill_sample_files` random files)
    /// into a temporary folder and compares each file with restic's
    /// metadata, `restic dump` and the unchanged live source, and streams
    /// each dump into `verify_command`.
    ///
    /// Runs under the service's lock, so it never overlaps a backup of the
    /// service. Results go into the history (`status` shows them).
    /// Exits 0 when everything verified, 3 on warnings (e.g. nothing to
    /// restore yet), 1 when any check failed (the error class says why,
    /// e.g. `repository_damaged`, `drill_mismatch`).
    Verify(VerifyArgs),
    /// Show the health of each service and destination: last run, newest
    /// snapshot, last verify, and why anything is not ok.
    ///
    /// States: `failed` (last run or last verify failed; with `--live`, the
    /// repository cannot be read), `stale` (newest snapshot older than
    /// `max_age`; default twice the schedule's interval, else 26h),
    /// `warning` (last run finished with warnings or was interrupted),
    /// `unverified` (no successful `verify` within `verify_max_age`,
    /// default 8d, counted from the first snapshot when never verified),
    /// `ok`.
    ///
    /// Answers from the local history without calling restic unless
    /// `--live`. Exits 0 when every enabled service is ok, 3 when any is
    /// warning, stale or unverified, 1 when any failed, so monitoring can
    /// call it.
    Status(StatusArgs),
    /// Print the metrics in Prometheus text format (the same as written to
    /// `metrics_file` after each run).
    ///
    /// Per service and destination: last run outcome, time, duration, data
    /// added, files new/changed, snapshot counts, newest snapshot age, last
    /// verify, health state; plus the restic version. With `--push`, also
    /// write `metrics_file` and push to `[metrics.pushgateway]` and
    /// `[metrics.influxdb]` (e.g. from cron, to keep ages current).
    Metrics(MetricsArgs),
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
    /// Notifications: send a test message through each notifier, or look
    /// for services whose backups silently stopped (stale) and report them.
    #[command(subcommand)]
    Notify(NotifyCommand),
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
pub struct StatusArgs {
    #[command(flatten)]
    pub filter: ServiceFilter,
    /// Ask each repository through restic for its newest snapshot instead
    /// of trusting the local history (a dead man's switch, e.g. after the
    /// host was rebuilt), and show where the two disagree. Slower: one
    /// `restic snapshots` per repository.
    #[arg(long)]
    pub live: bool,
}

#[derive(Debug, Args)]
pub struct MetricsArgs {
    /// Also write `metrics_file` and push to the configured Pushgateway and
    /// InfluxDB.
    #[arg(long)]
    pub push: bool,
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

#[derive(Debug, Subcommand)]
pub enum NotifyCommand {
    /// Send a test message through every notifier (or the one named) and
    /// show the HTTP or SMTP result of each.
    ///
    /// Exits 1 when any notifier failed, so it can be used to check a
    /// configuration. Rate limiting does not apply to test messages.
    Test(NotifyTestArgs),
    /// Find enabled services with no recent successful backup (`stale`:
    /// newest snapshot older than `max_age`) and notify about each, rate
    /// limited like failures. Meant for cron, e.g. hourly:
    /// `0 * * * * restic-manager notify check`.
    ///
    /// Exits 3 when a service is stale, 1 when a notifier failed, else 0.
    Check,
}

#[derive(Debug, Args)]
pub struct NotifyTestArgs {
    /// Only this notifier (a `[notifiers.NAME]`, or `discord` for
    /// `[notifications] discord_webhook_url`).
    #[arg(value_name = "NAME")]
    pub name: Option<String>,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Only this service (repeatable). Default: every enabled service.
    #[arg(short, long = "service", value_name = "NAME")]
    pub services: Vec<String>,
    /// Only this destination (repeatable). Default: all of each service's
    /// targets.
    #[arg(short, long = "destination", value_name = "NAME")]
    pub destinations: Vec<String>,
    /// Read every pack of the repository (`restic check --read-data`):
    /// finds missing and corrupt data, at the cost of downloading it all.
    #[arg(long, conflicts_with = "read_data_subset")]
    pub deep: bool,
    /// Read only part of the packs: `n/N` (part n of N, e.g. `3/10`), a
    /// share (`5%`) or a size (`500M`, `2G`), passed to restic's
    /// `--read-data-subset`.
    #[arg(long, value_name = "SPEC")]
    pub read_data_subset: Option<String>,
    /// Also run a restore drill: restore the latest snapshot (or a random
    /// sample of `drill_sample_files` files) into a temporary folder under
    /// the state directory and compare; stream each dump into
    /// `verify_command`. The folder is always removed.
    #[arg(long)]
    pub drill: bool,
}
