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
    /// More detail on stderr (which config file, each step, each restic
    /// call with its duration); -vv adds traces. $RUST_LOG, when set,
    /// decides instead (e.g. RUST_LOG=restic_manager=debug).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only warnings and errors; no progress or notes.
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
    /// each dump into its check: `verify_command` if set, else a load into
    /// `verify_scratch_database`, else the preset's (`pg_restore` reading
    /// the whole archive, the completion line of pg_dumpall/mariadb-dump,
    /// a load into an in-memory SQLite).
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
    /// Run any restic command on a service's repository, with the
    /// repository, password, credentials and options the configuration
    /// gives it: the way to do anything restic-manager itself does not do.
    ///
    /// restic runs in place of restic-manager: stdin, stdout, stderr, the
    /// terminal and the exit code are restic's own, so pipes (`| jq`),
    /// `mount` and interactive commands (`key add`) work. The password and
    /// credentials reach restic through its environment, never its command
    /// line. Without `--destination`, the service's first target is used
    /// (said on stderr).
    ///
    /// Examples:
    ///   restic-manager restic wiki -- snapshots --json | jq length
    ///   restic-manager restic wiki --destination offsite -- stats --mode raw-data
    ///   restic-manager restic wiki -- mount /mnt/wiki
    ///   restic-manager restic wiki -- key add
    ///   restic-manager restic --list
    #[command(verbatim_doc_comment)]
    Restic(ResticArgs),
    /// Print shell lines that point restic at a service's repository, for
    /// working in your own shell: `eval "$(restic-manager env wiki)"`.
    ///
    /// Prints `export RESTIC_REPOSITORY=…` and `RESTIC_PASSWORD_FILE=…` (or
    /// `RESTIC_PASSWORD_COMMAND=…`); credentials kept in files are read by
    /// `$(cat FILE)` when the lines are evaluated, so no secret is printed.
    /// Backend options (`sftp.command`, `s3.region`, …) become a `restic`
    /// shell function that adds them. Inherited `RESTIC_*` variables that
    /// would override these are unset first.
    #[command(verbatim_doc_comment)]
    Env(EnvArgs),
}

#[derive(Debug, Args)]
pub struct ResticArgs {
    /// The service whose repository restic opens.
    #[arg(required_unless_present = "list")]
    pub service: Option<String>,
    /// The destination (default: the service's first target).
    #[arg(long, short = 'd')]
    pub destination: Option<String>,
    /// Show what every service and destination resolves to (repository,
    /// password source, options, credential variables), secrets redacted;
    /// with `--json` as a list of objects.
    #[arg(long, conflicts_with_all = ["service", "destination", "args"])]
    pub list: bool,
    /// restic's arguments, after `--`.
    #[arg(last = true, allow_hyphen_values = true)]
    pub args: Vec<std::ffi::OsString>,
}

#[derive(Debug, Args)]
pub struct EnvArgs {
    /// The service whose repository the lines point at.
    pub service: String,
    /// The destination (default: the service's first target).
    #[arg(long, short = 'd')]
    pub destination: Option<String>,
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
    /// the state directory and compare; stream each dump into its check
    /// (`verify_command`, a scratch-database load, or the preset's, e.g.
    /// `pg_restore`). The folder is always removed.
    #[arg(long)]
    pub drill: bool,
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
