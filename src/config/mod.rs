//! The configuration: raw TOML → resolved, validated [`Config`].
//!
//! Nothing here talks to restic, Docker or SQLite: a config is checked
//! completely before any work starts.

pub mod checks;
pub mod cron_expr;
pub mod dump;
pub mod duration;
pub mod include;
pub mod labels;
pub mod legacy;
pub mod load;
pub mod notify;
pub mod paths;
pub mod resolve;
pub mod schema;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

pub use load::Locator;
pub use paths::Env;

/// One configuration problem, located in the file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file.display(), self.message)
        } else {
            write!(
                f,
                "{}:{}:{}: {}",
                self.file.display(),
                self.line,
                self.column,
                self.message
            )
        }
    }
}

/// The closest valid name to a misspelt one, if it is close enough.
pub fn suggest<'a>(given: &str, valid: &[&'a str]) -> Option<&'a str> {
    valid
        .iter()
        .map(|v| (strsim::damerau_levenshtein(given, v), *v))
        .filter(|(d, v)| *d <= 2.max(v.len() / 4) && *d < given.len().max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, v)| v)
}

/// The "; did you mean `x`?" hint when `given` is a near miss of one of
/// `valid`; `None` leaves the caller its own fallback (the valid list, a
/// table to add).
pub fn did_you_mean(given: &str, valid: &[&str]) -> Option<String> {
    did_you_mean_names(suggest(given, valid))
}

/// The one wording of every "did you mean" hint:
/// "; did you mean `a`?" or "; did you mean `a`, `b`?". `None` when there
/// is nothing to name.
pub fn did_you_mean_names<S: fmt::Display>(names: impl IntoIterator<Item = S>) -> Option<String> {
    let names: Vec<String> = names.into_iter().map(|n| format!("`{n}`")).collect();
    (!names.is_empty()).then(|| format!("; did you mean {}?", names.join(", ")))
}

/// Why a single configuration value cannot be used. The resolver prefixes
/// the owner (`service `wiki`: `) and turns it into a [`Diagnostic`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    #[error(
        "cron expression `{expr}` has {count} fields; use 5 (minute hour day-of-month month day-of-week), e.g. `30 2 * * *`"
    )]
    CronFieldCount { expr: String, count: usize },
    #[error(
        "invalid cron expression `{expr}`: the {field} field `{text}` is not valid (allowed: {allowed}, `*`, lists `a,b`, ranges `a-b`, steps `*/n`)"
    )]
    CronField {
        expr: String,
        field: &'static str,
        text: String,
        allowed: &'static str,
    },
    #[error(
        "invalid cron expression `{0}`; use 5 fields (minute hour day-of-month month day-of-week), e.g. `30 2 * * *`"
    )]
    Cron(String),
    #[error(
        "cron expression `{0}` never fires: no month has that day (e.g. the 31st of February); pick a day that exists, e.g. `0 3 28 2 *`"
    )]
    CronNeverFires(String),
    #[error(
        "unknown `replication` value `{0}`; use `parallel` (an independent backup to each target) or `copy` (back up to the first target, then `restic copy` to the others)"
    )]
    Replication(String),
    #[error("`prune` must be `always`, `never` or a cron expression: {0}")]
    Prune(Box<ValueError>),
    #[error("`volume_mode` must be \"auto\", \"direct\" or \"stream\", not `{0}`")]
    VolumeMode(String),
    #[error("`{0}` has spaces around it; write the duration alone, e.g. `{trimmed}`", trimmed = .0.trim())]
    DurationSpaces(String),
    #[error(
        "`{0}` is not a duration; write a number with a unit: s, m (minutes), h, d or w, e.g. `26h`, `3d`, `1d12h`, or `off`"
    )]
    NotADuration(String),
    #[error(
        "`{0}` is too long; the longest limit is `3650d` (10 years), or `off` to turn the check off"
    )]
    DurationTooLong(String),
    #[error("`{0}` is zero; give a positive duration, or `off` to turn the check off")]
    DurationZero(String),
    #[error(
        "`{0}` is relative, and relative paths are taken from `docker_base`, which is not set; set `[global] docker_base` or write an absolute path"
    )]
    RelativePath(String),
    #[error(
        "`url` `{0}` is not an http:// or https:// address; a rest destination needs the server's address, e.g. `rest:https://backup.example.com:8000/`"
    )]
    RestUrl(String),
    #[error(
        "`url` `{url}` has an invalid scheme `{scheme}`; a scheme starts with a letter and has only letters, digits, `+`, `-` and `.` (e.g. `sftp://`, `rest:https://`, `s3:https://`)"
    )]
    UrlScheme { url: String, scheme: String },
    #[error(
        "`url` `{url}` uses `{scheme}://`; restic reaches a `{kind}` server over http:// or https://"
    )]
    UrlNotHttp {
        url: String,
        scheme: String,
        kind: String,
    },
}

/// No configuration file to load.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DiscoverError {
    /// The one place to look (`--config`, `$RESTIC_MANAGER_CONFIG`) has no
    /// file.
    #[error(
        "configuration file `{}` (from {why}) does not exist; check the path, or create it from `config.example.toml`",
        .file.display()
    )]
    Missing { file: PathBuf, why: &'static str },
    #[error(
        "no configuration file found (looked at {}); create one from `config.example.toml` or pass `--config PATH`",
        .looked.iter().map(|f| format!("`{}`", f.display())).collect::<Vec<_>>().join(", ")
    )]
    NotFound { looked: Vec<PathBuf> },
}

/// Where the repository password comes from. Only ever handed to restic
/// through its environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PasswordSource {
    File(PathBuf),
    Command(String),
}

/// The `keep-*` policy for `restic forget`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Retention {
    pub last: Option<u32>,
    pub hourly: Option<u32>,
    pub daily: Option<u32>,
    pub weekly: Option<u32>,
    pub monthly: Option<u32>,
    pub yearly: Option<u32>,
    pub within: Option<String>,
}

impl Retention {
    /// True when no rule is set (retention is then skipped).
    pub fn is_empty(&self) -> bool {
        self.forget_args().is_empty()
    }

    /// The `--keep-*` arguments. A value of 0 means "rule off".
    pub fn forget_args(&self) -> Vec<String> {
        let mut args = Vec::new();
        for (flag, v) in [
            ("--keep-last", self.last),
            ("--keep-hourly", self.hourly),
            ("--keep-daily", self.daily),
            ("--keep-weekly", self.weekly),
            ("--keep-monthly", self.monthly),
            ("--keep-yearly", self.yearly),
        ] {
            if let Some(n) = v.filter(|n| *n > 0) {
                args.push(flag.to_string());
                args.push(n.to_string());
            }
        }
        if let Some(w) = &self.within {
            args.push("--keep-within".to_string());
            args.push(w.clone());
        }
        args
    }

    /// Fills every unset rule from `other`.
    pub fn or(&self, other: &Retention) -> Retention {
        Retention {
            last: self.last.or(other.last),
            hourly: self.hourly.or(other.hourly),
            daily: self.daily.or(other.daily),
            weekly: self.weekly.or(other.weekly),
            monthly: self.monthly.or(other.monthly),
            yearly: self.yearly.or(other.yearly),
            within: self.within.clone().or_else(|| other.within.clone()),
        }
    }
}

/// Global settings after defaults are applied.
#[derive(Debug, Clone, Serialize)]
pub struct Settings {
    pub password: PasswordSource,
    pub state_directory: PathBuf,
    pub log_directory: PathBuf,
    pub lock_directory: PathBuf,
    pub docker_base: Option<PathBuf>,
    pub default_timeout_seconds: u64,
    pub long_running_threshold_minutes: u64,
    pub hook_timeout_seconds: u64,
    pub log_level: String,
    pub log_max_files: u32,
    pub log_max_size_mb: u64,
    pub use_system_restic: bool,
    pub restic_binary: Option<PathBuf>,
    /// Releases API base URL, without a trailing slash.
    pub restic_release_api: String,
    /// Release downloads base URL, without a trailing slash.
    pub restic_download_base: String,
    pub host: String,
    pub max_parallel_services: usize,
    /// `None`: all destinations of a service at once.
    pub max_parallel_destinations: Option<usize>,
    pub lock_wait_seconds: u64,
    pub retention_max_remove_percent: u32,
    /// Random delay for scheduled runs, in seconds (`None`: no delay).
    pub schedule_jitter: Option<u64>,
    /// Prometheus text file rewritten after each state-changing command.
    pub metrics_file: Option<PathBuf>,
    /// Helper image for streamed Docker volumes (`[global] docker_helper_image`).
    pub docker_helper_image: String,
    /// Default of each network destination's connect check (0: none).
    pub destination_connect_timeout_seconds: u64,
    /// Default of each network destination's stall limit (0: none).
    pub destination_stall_timeout_seconds: u64,
}

/// A pre or post backup hook.
#[derive(Debug, Clone, Serialize)]
pub struct Hook {
    pub name: String,
    pub command: String,
    pub working_dir: Option<PathBuf>,
    pub timeout_seconds: u64,
    pub continue_on_error: bool,
    /// Values are redacted in `config show`; they may hold secrets.
    pub env: BTreeMap<String, String>,
}

impl Hook {
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_seconds)
    }
}

/// One service after global → profile → service resolution.
#[derive(Debug, Clone, Serialize)]
pub struct Service {
    pub name: String,
    pub enabled: bool,
    pub profile: Option<String>,
    pub description: Option<String>,
    pub targets: Vec<String>,
    pub schedule: Option<String>,
    pub strategy: String,
    pub retention: Retention,
    pub tags: Vec<String>,
    pub timeout_seconds: u64,
    pub notify_on: Vec<String>,
    /// The notifiers this service reports to; `None`: all of them.
    pub notifiers: Option<Vec<String>>,
    pub paths: Vec<PathBuf>,
    pub volumes: Vec<String>,
    pub excludes: Vec<String>,
    pub pre_backup_hooks: Vec<Hook>,
    pub post_backup_hooks: Vec<Hook>,
    pub backup_script: Option<String>,
    pub replication: Replication,
    pub prune: Prune,
    /// How `verify` treats this service.
    pub verify: VerifySettings,
    /// What `status` calls healthy for this service.
    pub health: HealthSettings,
    /// Streamed database dumps, run before the file snapshot.
    pub dumps: Vec<dump::Dump>,
    /// How `volumes` get into the snapshot.
    pub volume_mode: VolumeMode,
    /// Image of the helper container that streams volumes.
    pub docker_helper_image: String,
    /// Containers stopped (when running) for the primary snapshot.
    pub stop_containers: Vec<String>,
    /// Compose project whose running containers are stopped likewise.
    pub stop_compose_project: Option<String>,
    /// The file that defines the service, when the main file has an
    /// `include` (`None`: there is only the main file).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<PathBuf>,
    /// With `[docker] discover`: where its keys came from (`file`, or the
    /// label and container), by key. Empty when discovery is off.
    pub origins: BTreeMap<String, String>,
    /// Containers whose `restic-manager.*` labels it has.
    pub labelled_by: Vec<String>,
}

/// A service's health limits (`max_age`, `verify_max_age`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct HealthSettings {
    /// `None`: not configured; the default (twice the schedule's interval,
    /// or 26 h without a schedule) is worked out by `health`.
    pub max_age: Option<duration::AgeLimit>,
    /// Default 8 days.
    pub verify_max_age: duration::AgeLimit,
}

impl Default for HealthSettings {
    fn default() -> Self {
        HealthSettings {
            max_age: None,
            verify_max_age: duration::AgeLimit::After(Duration::from_secs(8 * 86_400)),
        }
    }
}

/// `[metrics]` after validation.
#[derive(Debug, Clone, Default, Serialize)]
pub struct MetricsSettings {
    pub pushgateway: Option<Pushgateway>,
    pub influxdb: Option<Influxdb>,
}

/// `[metrics.pushgateway]`: pushes go to `<url>/metrics/job/<job>/host/<host>`.
#[derive(Debug, Clone, Serialize)]
pub struct Pushgateway {
    pub url: String,
    pub job: String,
}

/// `[metrics.influxdb]`.
#[derive(Debug, Clone, Serialize)]
pub struct Influxdb {
    pub url: String,
    /// v2: org and bucket; v1: database.
    pub target: InfluxTarget,
    /// Read when sending; never logged.
    pub token_file: Option<PathBuf>,
}

/// Which InfluxDB write API.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InfluxTarget {
    V2 { org: String, bucket: String },
    V1 { database: String },
}

/// A service's verification settings (`verify_*`, `drill_sample_files`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifySettings {
    /// When `verify` runs on its own (cron expression).
    pub schedule: Option<String>,
    /// A scheduled verify reads subset n/`rotation` of the data (default 10).
    pub rotation: u32,
    /// Files a restore drill compares (default 50).
    pub drill_sample_files: u32,
    /// A dump drill streams each dump into this (`sh -c`, stdin).
    pub command: Option<String>,
}

impl Default for VerifySettings {
    fn default() -> Self {
        VerifySettings {
            schedule: None,
            rotation: 10,
            drill_sample_files: 50,
            command: None,
        }
    }
}

/// How a service's Docker volumes get into the snapshot (`volume_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VolumeMode {
    /// Direct when the mountpoint is readable from this host, else stream.
    Auto,
    /// Back up the mountpoint's files (restic deduplicates file by file).
    Direct,
    /// A helper container writes an uncompressed tar into `restic backup --stdin`.
    Stream,
}

impl VolumeMode {
    /// Parses the config value.
    pub fn parse(s: &str) -> Result<VolumeMode, ValueError> {
        match s {
            "auto" => Ok(VolumeMode::Auto),
            "direct" => Ok(VolumeMode::Direct),
            "stream" => Ok(VolumeMode::Stream),
            other => Err(ValueError::VolumeMode(other.to_string())),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            VolumeMode::Auto => "auto",
            VolumeMode::Direct => "direct",
            VolumeMode::Stream => "stream",
        }
    }
}

/// How a service reaches its second and further targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Replication {
    /// An independent backup to every target, concurrently.
    Parallel,
    /// Back up to the first target, then `restic copy` to the others.
    Copy,
}

/// When `forget` also prunes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Prune {
    Always,
    Never,
    /// Prune when this cron schedule has come due since the last prune.
    Schedule(String),
}

impl Service {
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_seconds)
    }

    /// The tag that marks this service's snapshots.
    pub fn tag(&self) -> String {
        format!("service:{}", self.name)
    }
}

/// A destination: where repositories live.
#[derive(Debug, Clone, Serialize)]
pub struct Destination {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub description: Option<String>,
    pub retention: Retention,
    /// How long the destination has to answer the check made before restic
    /// runs against it; `None`: not checked (local, or switched off).
    #[serde(skip)]
    pub connect_timeout: Option<Duration>,
    /// How long restic may retry it without progress; `None`: no limit.
    #[serde(skip)]
    pub stall_timeout: Option<Duration>,
    #[serde(skip)]
    pub raw: schema::DestinationRaw,
}

/// A loaded, resolved and validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub file: PathBuf,
    pub settings: Settings,
    pub services: Vec<Service>,
    pub destinations: BTreeMap<String, Destination>,
    pub notifications: Option<schema::NotificationsRaw>,
    /// Notification channels and rate limiting, resolved.
    pub notify: notify::Notify,
    pub metrics: MetricsSettings,
    /// The dashboard's settings (`[web]`), defaults applied.
    pub web: Web,
    /// Settings of the original tool that were translated (`config::legacy`),
    /// each with its modern form; `validate` and `config show` print them.
    pub warnings: Vec<Diagnostic>,
    /// The main file and each included file with what it defines; `None`
    /// when the main file has no `include`.
    pub files: Option<Vec<include::FileParts>>,
    /// Services from Docker labels: whether on, what was read, what failed.
    pub discovery: labels::DiscoveryReport,
}

/// `[web]` after defaults: where `serve` listens and where its token is.
#[derive(Debug, Clone, Serialize)]
pub struct Web {
    /// Whether the file has a `[web]` table (then `setup` creates the token).
    pub configured: bool,
    pub listen: String,
    pub token_file: PathBuf,
    pub restore_directory: PathBuf,
}

impl Config {
    /// Loads `file`, resolves inheritance and validates everything, returning
    /// every problem found.
    pub fn load(file: &Path, env: &Env) -> Result<Config, Vec<Diagnostic>> {
        Self::load_with(file, env, &labels::Discovery::NotRun)
    }

    /// [`Config::load`] with the containers Docker label discovery found
    /// (`[docker] discover = true`) merged into the file's services.
    pub fn load_with(
        file: &Path,
        env: &Env,
        discovery: &labels::Discovery,
    ) -> Result<Config, Vec<Diagnostic>> {
        load::load_file(file)
            .and_then(|p| include::merge(p, env))
            .and_then(|p| finish(p, env, discovery))
            .map_err(checks::tidy)
    }

    /// Parses configuration text (tests, generated examples).
    pub fn from_str(file: &Path, text: &str, env: &Env) -> Result<Config, Vec<Diagnostic>> {
        load::parse_str(file, text)
            .and_then(|p| include::merge(p, env))
            .and_then(|p| finish(p, env, &labels::Discovery::NotRun))
            .map_err(checks::tidy)
    }

    pub fn service(&self, name: &str) -> Option<&Service> {
        self.services.iter().find(|s| s.name == name)
    }

    pub fn service_names(&self) -> Vec<&str> {
        self.services.iter().map(|s| s.name.as_str()).collect()
    }
}

/// Resolves a parsed file; parse errors and resolution errors are reported
/// together, in file order.
fn finish(
    (mut raw, loc, mut errors): load::Parsed,
    env: &Env,
    discovery: &labels::Discovery,
) -> Result<Config, Vec<Diagnostic>> {
    let main = loc.file().to_path_buf();
    let legacy = legacy::translate(&mut raw, &loc);
    errors.extend(legacy.errors);
    let mut merged = labels::merge(&mut raw, &loc, discovery);
    errors.append(&mut merged.errors);
    match resolve::resolve(raw, &loc, env) {
        Ok(mut c) if errors.is_empty() => {
            for s in &mut c.services {
                s.origins = merged.origins.remove(&s.name).unwrap_or_default();
                s.labelled_by = merged.containers.remove(&s.name).unwrap_or_default();
            }
            c.discovery = merged.report;
            c.warnings = legacy.warnings;
            include::by_place(&mut c.warnings, &main);
            Ok(c)
        }
        Ok(_) => {
            include::by_place(&mut errors, &main);
            Err(errors)
        }
        Err(more) => {
            errors.extend(more);
            include::by_place(&mut errors, &main);
            errors.dedup();
            Err(errors)
        }
    }
}

/// Finds the configuration file: `--config`, `$RESTIC_MANAGER_CONFIG`, the
/// user's XDG file, then `/etc`. Returns the file and why it was chosen, or
/// the list of places looked at.
pub fn discover(
    env: &Env,
    flag: Option<&PathBuf>,
) -> Result<(PathBuf, &'static str), DiscoverError> {
    let candidates = env.config_candidates(flag);
    if candidates.len() == 1 {
        let (f, why) = &candidates[0];
        if !f.exists() {
            return Err(DiscoverError::Missing {
                file: f.clone(),
                why,
            });
        }
        return Ok((f.clone(), why));
    }
    for (f, why) in &candidates {
        if f.exists() {
            return Ok((f.clone(), why));
        }
    }
    Err(DiscoverError::NotFound {
        looked: candidates.into_iter().map(|(f, _)| f).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn did_you_mean_words_every_hint_alike() {
        assert_eq!(
            did_you_mean("postgress", &["postgres", "mariadb", "sqlite"]).as_deref(),
            Some("; did you mean `postgres`?")
        );
        assert_eq!(did_you_mean("zzz", &["postgres", "mariadb"]), None);
        assert_eq!(did_you_mean("x", &[]), None);
        assert_eq!(
            did_you_mean_names(["/a/b", "/a/c"]).as_deref(),
            Some("; did you mean `/a/b`, `/a/c`?")
        );
        assert_eq!(did_you_mean_names(Vec::<String>::new()), None);
    }

    #[test]
    fn value_errors_read_as_before() {
        let field_count = resolve::check_cron("0 3 * *").err();
        let never = resolve::check_cron("0 3 31 2 *").err();
        let cases: Vec<(Option<ValueError>, &str)> = vec![
            (
                field_count,
                "cron expression `0 3 * *` has 4 fields; use 5 (minute hour day-of-month month day-of-week), e.g. `30 2 * * *`",
            ),
            (
                resolve::check_cron("0 25 * * *").err(),
                "invalid cron expression `0 25 * * *`: the hour field `25` is not valid (allowed: 0-23, `*`, lists `a,b`, ranges `a-b`, steps `*/n`)",
            ),
            (
                Some(ValueError::Cron("a b c d e".into())),
                "invalid cron expression `a b c d e`; use 5 fields (minute hour day-of-month month day-of-week), e.g. `30 2 * * *`",
            ),
            (
                never,
                "cron expression `0 3 31 2 *` never fires: no month has that day (e.g. the 31st of February); pick a day that exists, e.g. `0 3 28 2 *`",
            ),
            (
                resolve::parse_replication("mirror").err(),
                "unknown `replication` value `mirror`; use `parallel` (an independent backup to each target) or `copy` (back up to the first target, then `restic copy` to the others)",
            ),
            (
                resolve::parse_prune("weekly").err(),
                "`prune` must be `always`, `never` or a cron expression: cron expression `weekly` has 1 fields; use 5 (minute hour day-of-month month day-of-week), e.g. `30 2 * * *`",
            ),
            (
                VolumeMode::parse("copy").err(),
                "`volume_mode` must be \"auto\", \"direct\" or \"stream\", not `copy`",
            ),
            (
                duration::parse_age_limit(" 3d").err(),
                "` 3d` has spaces around it; write the duration alone, e.g. `3d`",
            ),
            (
                duration::parse_age_limit("3x").err(),
                "`3x` is not a duration; write a number with a unit: s, m (minutes), h, d or w, e.g. `26h`, `3d`, `1d12h`, or `off`",
            ),
            (
                duration::parse_age_limit("9999d").err(),
                "`9999d` is too long; the longest limit is `3650d` (10 years), or `off` to turn the check off",
            ),
            (
                duration::parse_age_limit("0h").err(),
                "`0h` is zero; give a positive duration, or `off` to turn the check off",
            ),
            (
                Some(ValueError::RelativePath("db.sqlite".into())),
                "`db.sqlite` is relative, and relative paths are taken from `docker_base`, which is not set; set `[global] docker_base` or write an absolute path",
            ),
            (
                Some(ValueError::RestUrl("host:8000".into())),
                "`url` `host:8000` is not an http:// or https:// address; a rest destination needs the server's address, e.g. `rest:https://backup.example.com:8000/`",
            ),
            (
                Some(ValueError::UrlScheme {
                    url: "1s3://x".into(),
                    scheme: "1s3".into(),
                }),
                "`url` `1s3://x` has an invalid scheme `1s3`; a scheme starts with a letter and has only letters, digits, `+`, `-` and `.` (e.g. `sftp://`, `rest:https://`, `s3:https://`)",
            ),
            (
                Some(ValueError::UrlNotHttp {
                    url: "s3:ftp://x".into(),
                    scheme: "ftp".into(),
                    kind: "s3".into(),
                }),
                "`url` `s3:ftp://x` uses `ftp://`; restic reaches a `s3` server over http:// or https://",
            ),
        ];
        for (e, want) in cases {
            assert_eq!(e.map(|e| e.to_string()).as_deref(), Some(want));
        }
        assert_eq!(
            DiscoverError::Missing {
                file: "/c.toml".into(),
                why: "--config",
            }
            .to_string(),
            "configuration file `/c.toml` (from --config) does not exist; check the path, or create it from `config.example.toml`"
        );
        assert_eq!(
            DiscoverError::NotFound {
                looked: vec!["/a.toml".into(), "/b.toml".into()],
            }
            .to_string(),
            "no configuration file found (looked at `/a.toml`, `/b.toml`); create one from `config.example.toml` or pass `--config PATH`"
        );
    }
}
