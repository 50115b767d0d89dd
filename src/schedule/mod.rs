//! Scheduling: turns each enabled service's `schedule` into an entry for the
//! system's scheduler (a crontab block, systemd timers, a launchd plist or a
//! Windows task) and installs or removes them.
//!
//! Every entry runs the absolute path of this binary with the absolute path
//! of the configuration, so a scheduler's minimal environment (no XDG
//! variables, a short PATH, another working directory) finds the same files
//! the user's shell does.

pub mod apply;
pub mod cron;
pub mod launchd;
pub mod systemd;
pub mod windows;

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::config::cron_expr::CronError;
use crate::config::{Config, Service};
use crate::process::SpawnError;

/// Which scheduler.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    Cron,
    Systemd,
    Launchd,
    Windows,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Cron => "cron",
            Backend::Systemd => "systemd",
            Backend::Launchd => "launchd",
            Backend::Windows => "windows",
        }
    }
}

/// Why a schedule could not be turned into scheduler entries, or the
/// entries could not be read, written or enabled.
#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    /// The cron expression uses something the backend has no equivalent of.
    #[error("{source}; it cannot be expressed as {}", inexpressible_as(*.backend))]
    Inexpressible { backend: Backend, source: CronError },
    #[error(
        "cron expression `{expr}` needs more than {max} launchd calendar intervals; simplify the schedule"
    )]
    TooManyIntervals { expr: String, max: usize },
    #[error(
        "cron expression `{expr}` needs {needed} Task Scheduler triggers (at most {max}); simplify the schedule"
    )]
    TooManyTriggers {
        expr: String,
        needed: usize,
        max: usize,
    },
    #[error(
        "cron expression `{expr}` restricts both day fields with a `*` step (meaning both must match), which Task Scheduler cannot express; simplify the schedule"
    )]
    BothDayFieldsStepped { expr: String },
    #[error(
        "service `{service}`: its name cannot be used in a systemd unit name (use letters, digits, `_`, `.` and `-`); rename it or use `--backend cron`"
    )]
    UnitName { service: String },
    /// An error about one service's entry.
    #[error("service `{service}`: {source}")]
    Service {
        service: String,
        source: Box<ScheduleError>,
    },
    /// `systemd-analyze calendar` refuses an `OnCalendar=` value we made.
    #[error("`systemd-analyze calendar '{spec}'` rejects it: {stderr}")]
    CalendarRejected { spec: String, stderr: String },
    /// Checking a generated calendar failed: our conversion is wrong.
    #[error("{0}; report this as a bug and use `--backend cron` meanwhile")]
    CalendarCheck(Box<ScheduleError>),
    /// launchd and Windows entries are only written by hand for now.
    #[error(
        "{}; `restic-manager schedule show --backend {}` prints the files to install by hand, or use `--backend cron`",
        not_installable(*.backend, .platform, *.here),
        .backend.as_str()
    )]
    NotInstallable {
        backend: Backend,
        platform: &'static str,
        /// Running on that platform (installing is not implemented yet).
        here: bool,
    },
    #[error(
        "the crontab has a broken restic-manager block (`{}` and `{}` must both appear, in that order); fix it with `crontab -e` and try again",
        cron::BEGIN,
        cron::END
    )]
    BrokenCrontab,
    #[error("{0}; install cron (`apt-get install cron`) or use `--backend systemd`")]
    NoCrontab(SpawnError),
    #[error("{0}")]
    Spawn(#[from] SpawnError),
    /// A scheduler command (`crontab -l`, `systemctl …`) failed.
    #[error("`{command}` failed ({ended}): {stderr}")]
    Command {
        command: String,
        ended: String,
        stderr: String,
    },
    #[error("`crontab -` refused the new crontab ({ended}): {stderr}")]
    CrontabRefused { ended: String, stderr: String },
    #[error(
        "cannot create the log directory `{}`: {source}; check its permissions or set `log_directory`",
        .path.display()
    )]
    LogDirectory {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "cannot write `{}`: {source}; check the folder's permissions (system units need root)",
        .path.display()
    )]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot remove `{}`: {source}; remove it by hand", .path.display())]
    Remove {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot find the path of the running `restic-manager` binary: {0}")]
    NoProgram(std::io::Error),
    #[error("cannot make the configuration path `{}` absolute: {source}", .path.display())]
    ConfigPath {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl ScheduleError {
    /// Wraps `self` as being about `service`'s entry.
    fn of(self, service: &str) -> ScheduleError {
        ScheduleError::Service {
            service: service.to_string(),
            source: Box::new(self),
        }
    }
}

fn inexpressible_as(backend: Backend) -> &'static str {
    match backend {
        Backend::Systemd => "a systemd `OnCalendar=`; use `--backend cron`",
        Backend::Launchd => "a launchd calendar interval",
        Backend::Windows => "a Task Scheduler trigger",
        // Cron takes the expression as it is.
        Backend::Cron => "a crontab line",
    }
}

fn not_installable(backend: Backend, platform: &str, here: bool) -> String {
    if here {
        format!(
            "installing `{}` entries is not implemented yet",
            backend.as_str()
        )
    } else {
        format!(
            "the `{}` backend only installs on {platform}",
            backend.as_str()
        )
    }
}

/// User-level or system-wide entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    User,
    System,
}

/// One scheduled job.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    /// The service it runs.
    pub service: String,
    /// The 5-field cron expression.
    pub schedule: String,
    /// This binary, absolute.
    pub program: PathBuf,
    /// The program's arguments (`--config ABS run --service NAME -q`).
    pub args: Vec<String>,
    /// Where cron and launchd append the job's output.
    pub log_file: PathBuf,
    /// Environment the job needs (PATH, HOME, the XDG directories that were
    /// set when the schedule was installed).
    pub env: Vec<(String, String)>,
    /// What the entry runs: the backup or the verify of the service.
    pub job: Job,
}

/// What a scheduled entry runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Job {
    /// `run --service NAME` on the service's `schedule`.
    #[default]
    Backup,
    /// `verify --service NAME` on its `verify_schedule`.
    Verify,
}

impl Job {
    /// The word used in descriptions (`backup`, `verify`).
    pub fn as_str(self) -> &'static str {
        match self {
            Job::Backup => "backup",
            Job::Verify => "verify",
        }
    }
}

impl Entry {
    /// The name the scheduler knows the entry by (unit, label, task):
    /// the service's name for its backup, `NAME-verify` for its verify.
    pub fn unit(&self) -> String {
        match self.job {
            Job::Backup => self.service.clone(),
            Job::Verify => format!("{}-verify", self.service),
        }
    }
}

/// What the entries are built from (the process environment, passed in so
/// tests decide).
#[derive(Debug, Clone)]
pub struct Origin {
    pub program: PathBuf,
    pub config_file: PathBuf,
    pub env: Vec<(String, String)>,
}

/// Environment variables copied into every entry when set at install time:
/// without them a scheduled run would look for its history and cache in
/// other places than the user's own runs.
pub const CARRIED_VARS: &[&str] = &[
    "PATH",
    "HOME",
    "XDG_CONFIG_HOME",
    "XDG_STATE_HOME",
    "XDG_CACHE_HOME",
    "XDG_DATA_HOME",
];

/// Set in every scheduled entry to the backend's name, so history records
/// which scheduler started a run.
pub const TRIGGER_VAR: &str = "RESTIC_MANAGER_TRIGGER";

/// What started this run: a scheduler (from [`TRIGGER_VAR`]) or `cli`.
pub fn trigger() -> String {
    match std::env::var(TRIGGER_VAR).as_deref() {
        Ok(t @ ("cron" | "systemd" | "launchd" | "windows")) => t.to_string(),
        _ => "cli".to_string(),
    }
}

/// A cron-safe PATH when none is set.
const DEFAULT_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

impl Origin {
    /// The running binary, the configuration file made absolute, and the
    /// carried variables of the current process.
    pub fn current(config_file: &Path) -> Result<Origin, ScheduleError> {
        let program = std::env::current_exe().map_err(ScheduleError::NoProgram)?;
        let config_file =
            std::path::absolute(config_file).map_err(|source| ScheduleError::ConfigPath {
                path: config_file.to_path_buf(),
                source,
            })?;
        let mut env: Vec<(String, String)> = CARRIED_VARS
            .iter()
            .filter_map(|k| {
                std::env::var(k)
                    .ok()
                    .filter(|v| !v.is_empty())
                    .map(|v| ((*k).to_string(), v))
            })
            .collect();
        if !env.iter().any(|(k, _)| k == "PATH") {
            env.insert(0, ("PATH".into(), DEFAULT_PATH.into()));
        }
        Ok(Origin {
            program,
            config_file,
            env,
        })
    }
}

/// One entry per enabled service that has a `schedule`, in config order,
/// each followed by the service's verify entry when it has a
/// `verify_schedule`.
pub fn entries(config: &Config, origin: &Origin) -> Vec<Entry> {
    let enabled = || config.services.iter().filter(|s| s.enabled);
    let mut out: Vec<Entry> = enabled()
        .filter_map(|s| {
            let schedule = s.schedule.clone()?;
            Some(Entry::new(config, origin, s, Job::Backup, schedule))
        })
        .collect();
    for s in enabled() {
        let Some(schedule) = s.verify.schedule.clone() else {
            continue;
        };
        let entry = Entry::new(config, origin, s, Job::Verify, schedule);
        // Next to the service's backup entry.
        let at = out
            .iter()
            .rposition(|e| e.service == s.name)
            .map_or(out.len(), |i| i + 1);
        out.insert(at, entry);
    }
    out
}

impl Entry {
    /// `job` of service `s` on `schedule` (`run` or `verify`, with
    /// `--service NAME -q`), with the origin's configuration file and
    /// environment, logged to `schedule-UNIT.log` in the log directory.
    fn new(config: &Config, origin: &Origin, s: &Service, job: Job, schedule: String) -> Entry {
        let command = match job {
            Job::Backup => "run",
            Job::Verify => "verify",
        };
        let mut e = Entry {
            service: s.name.clone(),
            schedule,
            program: origin.program.clone(),
            args: vec![
                "--config".into(),
                origin.config_file.display().to_string(),
                command.into(),
                "--service".into(),
                s.name.clone(),
                "-q".into(),
            ],
            log_file: PathBuf::new(),
            env: origin.env.clone(),
            job,
        };
        e.log_file = config
            .settings
            .log_directory
            .join(format!("schedule-{}.log", e.unit()));
        e
    }
}

/// The next `n` times `expr` fires after `after` (croner; empty when croner
/// cannot parse it, which the config loader has already ruled out).
pub fn next_runs<Tz: chrono::TimeZone + Copy>(
    expr: &str,
    after: chrono::DateTime<Tz>,
    n: usize,
) -> Vec<chrono::DateTime<Tz>> {
    use std::str::FromStr;
    croner::Cron::from_str(expr)
        .map(|c| c.iter_after(after).take(n).collect())
        .unwrap_or_default()
}

/// Is systemd the init system (PID 1) and is `systemctl` on PATH?
pub fn systemd_running() -> bool {
    let pid1 = std::fs::read_to_string("/proc/1/comm").is_ok_and(|c| c.trim() == "systemd")
        || Path::new("/run/systemd/system").is_dir();
    pid1 && on_path("systemctl").is_some()
}

/// Is a cron daemon (`cron`, `crond`) running? Reads `/proc`; `true` where
/// that cannot be known, so the caller only warns when sure.
pub fn cron_daemon_running() -> bool {
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return true;
    };
    rd.filter_map(Result::ok)
        .filter(|d| {
            d.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .any(|d| {
            std::fs::read_to_string(d.path().join("comm"))
                .is_ok_and(|c| matches!(c.trim(), "cron" | "crond" | "cronie"))
        })
}

/// The first `name` on PATH.
pub fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// The backend to use when none is given, and why.
pub fn detect() -> (Backend, &'static str) {
    if cfg!(target_os = "macos") {
        (Backend::Launchd, "macOS")
    } else if cfg!(windows) {
        (Backend::Windows, "Windows")
    } else if systemd_running() {
        (Backend::Systemd, "systemd is PID 1 and `systemctl` exists")
    } else {
        (Backend::Cron, "systemd is not running")
    }
}

/// A file a backend writes (or would write).
#[derive(Debug, Clone, Serialize)]
pub struct File {
    pub path: PathBuf,
    pub content: String,
}

/// Writes `content` to `path` through a temporary file and a rename, so a
/// scheduler never reads half a file.
pub fn write_atomic(path: &Path, content: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("rm-tmp");
    std::fs::write(&tmp, content)?;
    std::fs::rename(&tmp, path)
}

/// `'…'` for `sh`.
pub fn sh_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+:=,@".contains(c))
    {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// XML text with the five special characters escaped.
pub fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::cron_expr::CronExpr;
    use chrono::{TimeZone, Utc};

    /// Each backup entry in config order, its verify right after it; a
    /// service with a verify schedule alone gets its verify at the end.
    #[test]
    fn entries_are_backups_each_followed_by_its_verify() {
        let (dir, config) = crate::engine::plan::tests::config(
            r#"[global]
restic_password_file = "pw"
[destinations.local]
type = "local"
path = "{dir}/repo"
[services.a]
targets = ["local"]
schedule = "0 1 * * *"
verify_schedule = "0 2 * * 0"
[services.a.config]
paths = ["{dir}"]
[services.b]
targets = ["local"]
verify_schedule = "0 3 * * 0"
[services.b.config]
paths = ["{dir}"]
[services.c]
targets = ["local"]
schedule = "0 4 * * *"
[services.c.config]
paths = ["{dir}"]
[services.d]
enabled = false
targets = ["local"]
schedule = "0 5 * * *"
verify_schedule = "0 6 * * 0"
[services.d.config]
paths = ["{dir}"]
"#,
        );
        let origin = Origin {
            program: PathBuf::from("/bin/rm-bin"),
            config_file: dir.path().join("config.toml"),
            env: vec![("PATH".into(), "/bin".into())],
        };
        let logs = &config.settings.log_directory;
        let got: Vec<(String, &str, String, Vec<String>, PathBuf)> = entries(&config, &origin)
            .into_iter()
            .map(|e| {
                assert_eq!(e.program, origin.program);
                assert_eq!(e.env, origin.env);
                (e.unit(), e.job.as_str(), e.schedule, e.args, e.log_file)
            })
            .collect();
        let file = origin.config_file.display().to_string();
        let entry = |unit: &str, job, schedule: &str, command: &str, service: &str| {
            (
                unit.to_string(),
                job,
                schedule.to_string(),
                ["--config", &file, command, "--service", service, "-q"]
                    .map(String::from)
                    .to_vec(),
                logs.join(format!("schedule-{unit}.log")),
            )
        };
        assert_eq!(
            got,
            vec![
                entry("a", "backup", "0 1 * * *", "run", "a"),
                entry("a-verify", "verify", "0 2 * * 0", "verify", "a"),
                entry("c", "backup", "0 4 * * *", "run", "c"),
                entry("b-verify", "verify", "0 3 * * 0", "verify", "b"),
            ]
        );
    }

    #[test]
    fn schedule_errors_read_as_before() {
        let io = || std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        let denied = io().to_string();
        let cron_err = || CronExpr::parse("0 0 L * *").expect_err("`L` was understood");
        let cases: Vec<(ScheduleError, String)> = vec![
            (
                ScheduleError::Inexpressible { backend: Backend::Systemd, source: cron_err() }.of("wiki"),
                "service `wiki`: cron expression `0 0 L * *`: day-of-month field `L`: `L` is not a number or a name; it cannot be expressed as a systemd `OnCalendar=`; use `--backend cron`".into(),
            ),
            (
                ScheduleError::Inexpressible { backend: Backend::Launchd, source: cron_err() },
                "cron expression `0 0 L * *`: day-of-month field `L`: `L` is not a number or a name; it cannot be expressed as a launchd calendar interval".into(),
            ),
            (
                ScheduleError::Inexpressible { backend: Backend::Windows, source: cron_err() },
                "cron expression `0 0 L * *`: day-of-month field `L`: `L` is not a number or a name; it cannot be expressed as a Task Scheduler trigger".into(),
            ),
            (
                ScheduleError::TooManyIntervals { expr: "* * * * *".into(), max: 500 },
                "cron expression `* * * * *` needs more than 500 launchd calendar intervals; simplify the schedule".into(),
            ),
            (
                ScheduleError::TooManyTriggers { expr: "1,2 * * * *".into(), needed: 96, max: 48 }.of("wiki"),
                "service `wiki`: cron expression `1,2 * * * *` needs 96 Task Scheduler triggers (at most 48); simplify the schedule".into(),
            ),
            (
                ScheduleError::BothDayFieldsStepped { expr: "0 0 1 * */2".into() },
                "cron expression `0 0 1 * */2` restricts both day fields with a `*` step (meaning both must match), which Task Scheduler cannot express; simplify the schedule".into(),
            ),
            (
                ScheduleError::UnitName { service: "a b".into() },
                "service `a b`: its name cannot be used in a systemd unit name (use letters, digits, `_`, `.` and `-`); rename it or use `--backend cron`".into(),
            ),
            (
                ScheduleError::CalendarCheck(Box::new(ScheduleError::CalendarRejected {
                    spec: "*-*-* 02:30:00".into(),
                    stderr: "Failed to parse".into(),
                })),
                "`systemd-analyze calendar '*-*-* 02:30:00'` rejects it: Failed to parse; report this as a bug and use `--backend cron` meanwhile".into(),
            ),
            (
                ScheduleError::NotInstallable { backend: Backend::Launchd, platform: "macOS", here: false },
                "the `launchd` backend only installs on macOS; `restic-manager schedule show --backend launchd` prints the files to install by hand, or use `--backend cron`".into(),
            ),
            (
                ScheduleError::NotInstallable { backend: Backend::Windows, platform: "Windows", here: true },
                "installing `windows` entries is not implemented yet; `restic-manager schedule show --backend windows` prints the files to install by hand, or use `--backend cron`".into(),
            ),
            (
                ScheduleError::NoCrontab(SpawnError { program: "crontab".into(), source: io() }),
                format!("cannot start `crontab`: {denied}; install cron (`apt-get install cron`) or use `--backend systemd`"),
            ),
            (
                ScheduleError::Command { command: "crontab -l".into(), ended: "exit code 1".into(), stderr: "boom".into() },
                "`crontab -l` failed (exit code 1): boom".into(),
            ),
            (
                ScheduleError::CrontabRefused { ended: "exit code 1".into(), stderr: "bad line".into() },
                "`crontab -` refused the new crontab (exit code 1): bad line".into(),
            ),
            (
                ScheduleError::LogDirectory { path: "/var/log/rm".into(), source: io() },
                format!("cannot create the log directory `/var/log/rm`: {denied}; check its permissions or set `log_directory`"),
            ),
            (
                ScheduleError::Write { path: "/u/x.timer".into(), source: io() },
                format!("cannot write `/u/x.timer`: {denied}; check the folder's permissions (system units need root)"),
            ),
            (
                ScheduleError::Remove { path: "/u/x.timer".into(), source: io() },
                format!("cannot remove `/u/x.timer`: {denied}; remove it by hand"),
            ),
            (
                ScheduleError::NoProgram(io()),
                format!("cannot find the path of the running `restic-manager` binary: {denied}"),
            ),
            (
                ScheduleError::ConfigPath { path: "c.toml".into(), source: io() },
                format!("cannot make the configuration path `c.toml` absolute: {denied}"),
            ),
        ];
        for (e, want) in cases {
            assert_eq!(e.to_string(), want);
        }
    }

    #[test]
    fn next_three_runs() {
        let start = Utc.with_ymd_and_hms(2025, 1, 31, 23, 0, 0).single();
        let start = start.expect("bad date");
        let runs: Vec<String> = next_runs("30 2 * * *", start, 3)
            .iter()
            .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
            .collect();
        assert_eq!(
            runs,
            ["2025-02-01 02:30", "2025-02-02 02:30", "2025-02-03 02:30"]
        );
    }

    #[test]
    fn shell_quoting() {
        assert_eq!(sh_quote("/usr/bin"), "/usr/bin");
        assert_eq!(sh_quote("a b"), "'a b'");
        assert_eq!(sh_quote("it's"), "'it'\\''s'");
        assert_eq!(sh_quote(""), "''");
    }
}

#[cfg(test)]
pub(crate) mod testutil {
    use super::Entry;
    use std::path::PathBuf;

    pub fn entry(service: &str, schedule: &str) -> Entry {
        Entry {
            service: service.into(),
            schedule: schedule.into(),
            program: PathBuf::from("/opt/rm/bin/restic-manager"),
            args: vec![
                "--config".into(),
                "/home/ann/.config/restic-manager/config.toml".into(),
                "run".into(),
                "--service".into(),
                service.into(),
                "-q".into(),
            ],
            log_file: PathBuf::from(format!("/home/ann/logs/schedule-{service}.log")),
            env: vec![
                ("PATH".into(), "/usr/bin:/bin".into()),
                ("HOME".into(), "/home/ann".into()),
            ],
            job: super::Job::Backup,
        }
    }
}
