//! The raw TOML shapes, exactly as users write them.
//!
//! The original restic-manager's snake_case keys are the contract, so there is
//! no `rename_all`. Every struct denies unknown keys; the loader turns serde's
//! "unknown field" into a did-you-mean error with a line and column.
//! Defaults live in `config::resolve`, in one place.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `[global]`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GlobalRaw {
    pub restic_password_file: Option<String>,
    pub restic_password_command: Option<String>,
    pub log_directory: Option<String>,
    pub docker_base: Option<String>,
    pub retention_last: Option<u32>,
    pub retention_hourly: Option<u32>,
    pub retention_daily: Option<u32>,
    pub retention_weekly: Option<u32>,
    pub retention_monthly: Option<u32>,
    pub retention_yearly: Option<u32>,
    pub retention_within: Option<String>,
    pub default_timeout_seconds: Option<u64>,
    pub long_running_threshold_minutes: Option<u64>,
    pub log_level: Option<String>,
    pub log_max_files: Option<u32>,
    pub log_max_size_mb: Option<u64>,
    pub default_excludes: Option<Vec<String>>,
    pub use_system_restic: Option<bool>,
    pub state_directory: Option<String>,
    pub lock_directory: Option<String>,
    pub restic_binary: Option<String>,
    /// Base URL of the releases API `setup-restic` asks for the latest
    /// version (default `https://api.github.com`).
    pub restic_release_api: Option<String>,
    /// Base URL of the release downloads (default
    /// `https://github.com/restic/restic/releases/download`).
    pub restic_download_base: Option<String>,
    pub hook_timeout_seconds: Option<u64>,
    pub host: Option<String>,
    /// Services run at once (default 1).
    pub max_parallel_services: Option<u32>,
    /// Destinations of one service backed up at once (default: all).
    pub max_parallel_destinations: Option<u32>,
    /// How long to wait for a locked repository (default 300).
    pub lock_wait_seconds: Option<u64>,
    /// The retention guard: refuse a forget removing more than this share.
    pub retention_max_remove_percent: Option<u32>,
    /// Default for services: `parallel` or `copy`.
    pub replication: Option<String>,
    /// Default for services: `always`, `never` or a cron expression.
    pub prune: Option<String>,
    /// Seconds of random delay added to each scheduled run (systemd
    /// `RandomizedDelaySec`, Windows `RandomDelay`), so many machines do
    /// not hit one repository at the same second.
    pub schedule_jitter: Option<u64>,
    /// Default for services: when `verify` runs on its own (cron expression).
    pub verify_schedule: Option<String>,
    /// Default for services: scheduled verifies read 1/N of the data each.
    pub verify_rotation: Option<u32>,
    /// Default for services: files a restore drill samples.
    pub drill_sample_files: Option<u32>,
    /// Default for services: how old the newest snapshot may get before
    /// `status` calls it stale (`26h`, `3d`, `off`).
    pub max_age: Option<String>,
    /// Default for services: how long ago the last successful `verify` may
    /// be before `status` calls a repository unverified (`8d`, `off`).
    pub verify_max_age: Option<String>,
    /// Prometheus text file (node_exporter textfile collector) rewritten
    /// after every command that changes state.
    pub metrics_file: Option<String>,
    /// Default image of the helper container that streams Docker volumes.
    pub docker_helper_image: Option<String>,
    /// Seconds a network destination has to answer the check made before
    /// restic runs against it (default 15; 0: no check).
    pub destination_connect_timeout_seconds: Option<u64>,
    /// Seconds restic may go on retrying a destination without progress
    /// before it is stopped (default 120; 0: never).
    pub destination_stall_timeout_seconds: Option<u64>,
}

/// A service (`[services.NAME]` or one `[[services]]` element) or a profile
/// (`[profiles.NAME]`): a profile may set any key a service may set.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceRaw {
    /// Only in the array form `[[services]]`.
    pub name: Option<String>,
    pub enabled: Option<bool>,
    pub profile: Option<String>,
    pub description: Option<String>,
    pub targets: Option<Vec<String>>,
    pub schedule: Option<String>,
    pub strategy: Option<String>,
    pub retention_last: Option<u32>,
    pub retention_hourly: Option<u32>,
    pub retention_daily: Option<u32>,
    pub retention_weekly: Option<u32>,
    pub retention_monthly: Option<u32>,
    pub retention_yearly: Option<u32>,
    pub retention_within: Option<String>,
    pub tags: Option<Vec<String>>,
    pub timeout_seconds: Option<u64>,
    pub notify_on: Option<Vec<String>>,
    /// The `[notifiers.NAME]` this service reports to (default: all).
    pub notifiers: Option<Vec<String>>,
    /// Legacy: a script run once per target instead of `restic backup`.
    pub backup_script: Option<String>,
    /// `parallel` (independent backups) or `copy` (backup once, copy).
    pub replication: Option<String>,
    /// `always`, `never` or a cron expression.
    pub prune: Option<String>,
    pub config: Option<ServiceConfigRaw>,
    /// When `verify` runs on its own (cron expression).
    pub verify_schedule: Option<String>,
    /// Scheduled verifies read 1/N of the repository's data each.
    pub verify_rotation: Option<u32>,
    /// Files a restore drill samples.
    pub drill_sample_files: Option<u32>,
    /// A dump drill streams each dump into this command (`sh -c`, stdin).
    pub verify_command: Option<String>,
    /// How old the newest snapshot may get before it is stale.
    pub max_age: Option<String>,
    /// How old the last successful verify may get.
    pub verify_max_age: Option<String>,
}

/// `[services.NAME.config]`: what to back up and the hooks around it.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfigRaw {
    pub paths: Option<Vec<String>>,
    pub volumes: Option<Vec<String>>,
    pub excludes: Option<Vec<String>>,
    pub pre_backup_hooks: Option<Vec<HookRaw>>,
    pub post_backup_hooks: Option<Vec<HookRaw>>,
    pub backup_script: Option<String>,
    /// `[[services.NAME.config.dumps]]`: database dumps streamed into restic.
    pub dumps: Option<Vec<DumpRaw>>,
    /// `auto` (default), `direct` or `stream`: how `volumes` are read.
    pub volume_mode: Option<String>,
    /// Image of the helper container that streams volumes (needs `tar`).
    pub docker_helper_image: Option<String>,
    /// Containers stopped for the primary snapshot and started again.
    pub stop_containers: Option<Vec<String>>,
    /// Stop the running containers of this compose project likewise.
    pub stop_compose_project: Option<String>,
    // The original tool's `strategy = "appwrite"` / `"immich"` keys,
    // translated into dumps and paths by `config::legacy`.
    pub mariadb_container: Option<String>,
    pub mariadb_database: Option<String>,
    pub mariadb_user: Option<String>,
    pub postgres_container: Option<String>,
    pub postgres_database: Option<String>,
    pub postgres_user: Option<String>,
    pub library_path: Option<String>,
    pub database_repo_suffix: Option<String>,
    pub library_repo_suffix: Option<String>,
}

/// One `pre_backup_hooks` / `post_backup_hooks` entry.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HookRaw {
    pub name: Option<String>,
    pub command: Option<String>,
    pub working_dir: Option<String>,
    pub timeout_seconds: Option<u64>,
    pub continue_on_error: Option<bool>,
    pub env: Option<BTreeMap<String, String>>,
}

/// One `[[services.NAME.config.dumps]]` entry: a preset (`type`) or a
/// `command` whose stdout is streamed into `restic backup --stdin`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DumpRaw {
    pub name: Option<String>,
    /// `postgres`, `mariadb`, `mysql` or `sqlite`.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub command: Option<String>,
    pub filename: Option<String>,
    pub container: Option<String>,
    pub restore_command: Option<String>,
    pub timeout_seconds: Option<u64>,
    // postgres / mariadb / mysql
    pub database: Option<String>,
    pub user: Option<String>,
    pub host: Option<String>,
    pub port: Option<u16>,
    pub password_file: Option<String>,
    // sqlite
    pub path: Option<String>,
    /// Replaces the preset's drill check (`sh -c`, dump on stdin).
    pub verify_command: Option<String>,
    /// postgres / mariadb / mysql: drills load the dump into this scratch
    /// database (dropped and recreated) on the same server.
    pub verify_scratch_database: Option<String>,
}

/// The keys of a `[[services.NAME.config.dumps]]` entry (`DumpRaw`).
pub const DUMP_KEYS: &[&str] = &[
    "name",
    "type",
    "command",
    "filename",
    "container",
    "restore_command",
    "timeout_seconds",
    "database",
    "user",
    "host",
    "port",
    "password_file",
    "path",
    "verify_command",
    "verify_scratch_database",
];

/// Valid dump `type` values.
pub const DUMP_TYPES: &[&str] = &["postgres", "mariadb", "mysql", "sqlite"];

/// `[destinations.NAME]`. Every type accepts the original tool's `url`; the
/// explicit fields of the other types are parsed and checked now.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DestinationRaw {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub url: Option<String>,
    pub path: Option<String>,
    pub description: Option<String>,
    // sftp
    pub host: Option<String>,
    pub user: Option<String>,
    pub port: Option<u16>,
    pub identity_file: Option<String>,
    pub known_hosts_file: Option<String>,
    // s3 / b2
    pub endpoint: Option<String>,
    pub bucket: Option<String>,
    pub prefix: Option<String>,
    pub region: Option<String>,
    pub access_key_id_file: Option<String>,
    pub secret_access_key_file: Option<String>,
    pub account_id_file: Option<String>,
    pub account_key_file: Option<String>,
    // rest
    pub username: Option<String>,
    // rclone
    pub remote: Option<String>,
    pub rclone_binary: Option<String>,
    // any type
    pub password_file: Option<String>,
    pub password_command: Option<String>,
    /// Repository password for this destination when `password_file` is a
    /// REST server's HTTP password.
    pub repository_password_file: Option<String>,
    pub repository_password_command: Option<String>,
    pub env: Option<BTreeMap<String, String>>,
    pub retention_last: Option<u32>,
    pub retention_hourly: Option<u32>,
    pub retention_daily: Option<u32>,
    pub retention_weekly: Option<u32>,
    pub retention_monthly: Option<u32>,
    pub retention_yearly: Option<u32>,
    pub retention_within: Option<String>,
    /// This destination's `destination_connect_timeout_seconds`.
    pub connect_timeout_seconds: Option<u64>,
    /// This destination's `destination_stall_timeout_seconds`.
    pub stall_timeout_seconds: Option<u64>,
}

/// The original tool's top-level `[notifications]` table. Loaded and checked
/// now; sending arrives with the notifications work.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NotificationsRaw {
    pub discord_webhook_url: Option<String>,
    pub notify_on: Option<Vec<String>>,
    pub rate_limit_minutes: Option<u64>,
    pub cache_file: Option<String>,
    /// The original README documents it here as well as in `[global]`.
    pub long_running_threshold_minutes: Option<u64>,
}

/// One `[notifiers.NAME]` channel. Which keys apply depends on `type`;
/// `config::notify` checks them.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NotifierRaw {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub notify_on: Option<Vec<String>>,
    /// Seconds each request may take (default 10).
    pub timeout_seconds: Option<u64>,
    // discord, webhook, ntfy, healthchecks
    pub url: Option<String>,
    /// The URL read from a file instead (it holds a secret).
    pub url_file: Option<String>,
    // webhook
    pub headers: Option<BTreeMap<String, String>>,
    // ntfy
    pub token_file: Option<String>,
    // email
    pub host: Option<String>,
    pub port: Option<u16>,
    pub security: Option<String>,
    pub username: Option<String>,
    pub password_file: Option<String>,
    pub from: Option<String>,
    pub to: Option<Vec<String>>,
    /// PEM file of extra CA certificates trusted for this SMTP server.
    pub ca_file: Option<String>,
}

/// Valid notifier `type` values.
pub const NOTIFIER_TYPES: &[&str] = &["discord", "webhook", "ntfy", "healthchecks", "email"];

/// The keys allowed at the top level of the file.
pub const TOP_LEVEL_KEYS: &[&str] = &[
    "global",
    "profiles",
    "services",
    "destinations",
    "notifications",
    "notifiers",
    "metrics",
    "web",
    "docker",
];

/// Valid `notify_on` values.
pub const NOTIFY_EVENTS: &[&str] = &["failure", "warning", "long_running", "success", "stale"];

/// Valid destination `type` values.
pub const DESTINATION_TYPES: &[&str] = &["local", "sftp", "s3", "b2", "rest", "rclone"];

/// The keys of a service or profile table (`ServiceRaw`), for pointing a key
/// written in the wrong table to the right one. A unit test keeps this in
/// step with the struct.
pub const SERVICE_KEYS: &[&str] = &[
    "name",
    "enabled",
    "profile",
    "description",
    "targets",
    "schedule",
    "strategy",
    "retention_last",
    "retention_hourly",
    "retention_daily",
    "retention_weekly",
    "retention_monthly",
    "retention_yearly",
    "retention_within",
    "tags",
    "timeout_seconds",
    "notify_on",
    "notifiers",
    "backup_script",
    "replication",
    "prune",
    "config",
    "verify_schedule",
    "verify_rotation",
    "drill_sample_files",
    "verify_command",
    "max_age",
    "verify_max_age",
];

/// The keys of a `[services.NAME.config]` table (`ServiceConfigRaw`).
pub const SERVICE_CONFIG_KEYS: &[&str] = &[
    "paths",
    "volumes",
    "excludes",
    "pre_backup_hooks",
    "post_backup_hooks",
    "backup_script",
    "dumps",
    "volume_mode",
    "docker_helper_image",
    "stop_containers",
    "stop_compose_project",
    "mariadb_container",
    "mariadb_database",
    "mariadb_user",
    "postgres_container",
    "postgres_database",
    "postgres_user",
    "library_path",
    "database_repo_suffix",
    "library_repo_suffix",
];

/// `[metrics]`: where metrics are pushed besides `metrics_file`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsRaw {
    pub pushgateway: Option<PushgatewayRaw>,
    pub influxdb: Option<InfluxdbRaw>,
}

/// `[metrics.pushgateway]`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PushgatewayRaw {
    pub url: Option<String>,
    pub job: Option<String>,
}

/// `[metrics.influxdb]`: v2 (`org` + `bucket`, token) or v1 (`database`).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct InfluxdbRaw {
    pub url: Option<String>,
    pub org: Option<String>,
    pub bucket: Option<String>,
    pub database: Option<String>,
    pub token_file: Option<String>,
}

/// `[web]`: the dashboard `serve` runs.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WebRaw {
    /// Address and port (default `127.0.0.1:8080`).
    pub listen: Option<String>,
    /// File holding the access token (default
    /// `<state_directory>/web-token`; `setup` creates it, mode 0600).
    pub token_file: Option<String>,
    /// Restores from the dashboard go into new folders under this one
    /// (default `<state_directory>/restores`).
    pub restore_directory: Option<String>,
}

/// `[docker]`: services discovered from container labels.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DockerRaw {
    /// Read services from labelled containers (default `false`).
    pub discover: Option<bool>,
    /// The label namespace (default `restic-manager`: `restic-manager.service`).
    pub label_prefix: Option<String>,
}
