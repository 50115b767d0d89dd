//! Global → profile → service resolution and every cross-field check.
//!
//! All defaults are defined here, once. Each check that fails adds a
//! [`Diagnostic`] pointing at the key responsible (the service's own key, or
//! the profile's when the value was inherited), and checking goes on, so one
//! `validate` shows every problem.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use super::load::{Locator, RawConfig, list};
use super::schema::{
    DESTINATION_TYPES, DestinationRaw, GlobalRaw, HookRaw, NOTIFY_EVENTS, ServiceRaw,
};
use super::{
    Config, Destination, Diagnostic, Env, Hook, PasswordSource, Prune, Replication, Retention,
    Service, Settings, suggest,
};

pub const DEFAULT_TIMEOUT_SECONDS: u64 = 3600;
pub const DEFAULT_LONG_RUNNING_MINUTES: u64 = 120;
pub const DEFAULT_HOOK_TIMEOUT_SECONDS: u64 = 300;
pub const DEFAULT_LOG_MAX_FILES: u32 = 30;
pub const DEFAULT_LOG_MAX_SIZE_MB: u64 = 10;
pub const DEFAULT_LOCK_WAIT_SECONDS: u64 = 300;
pub const DEFAULT_MAX_REMOVE_PERCENT: u32 = 50;
/// Where `setup-restic` learns the latest restic release.
pub const DEFAULT_RELEASE_API: &str = "https://api.github.com";
/// Where `setup-restic` downloads restic releases from.
pub const DEFAULT_DOWNLOAD_BASE: &str = "https://github.com/restic/restic/releases/download";
pub const DEFAULT_NOTIFY_ON: &[&str] = &["failure", "warning"];
const LOG_LEVELS: &[&str] = &["error", "warn", "info", "debug", "trace"];
const STRATEGIES: &[&str] = &["generic"];

struct Ctx<'a> {
    loc: &'a Locator,
    errors: Vec<Diagnostic>,
    /// Tables that had an unknown key removed while parsing.
    dropped: &'a BTreeSet<String>,
}

impl Ctx<'_> {
    fn err(&mut self, path: &str, msg: impl Into<String>) {
        self.errors.push(self.loc.at(path, msg));
    }

    /// Reports a missing key, unless one of `tables` had an unknown key:
    /// that key is most likely the missing one misspelt, already reported.
    fn missing(&mut self, tables: &[&str], path: &str, msg: impl Into<String>) {
        if !tables.iter().any(|t| self.dropped.contains(*t)) {
            self.err(path, msg);
        }
    }
}

fn retention_of(
    last: Option<u32>,
    hourly: Option<u32>,
    daily: Option<u32>,
    weekly: Option<u32>,
    monthly: Option<u32>,
    yearly: Option<u32>,
    within: Option<&String>,
) -> Retention {
    Retention {
        last,
        hourly,
        daily,
        weekly,
        monthly,
        yearly,
        within: within.cloned(),
    }
}

fn global_retention(g: &GlobalRaw) -> Retention {
    retention_of(
        g.retention_last,
        g.retention_hourly,
        g.retention_daily,
        g.retention_weekly,
        g.retention_monthly,
        g.retention_yearly,
        g.retention_within.as_ref(),
    )
}

fn service_retention(s: &ServiceRaw) -> Retention {
    retention_of(
        s.retention_last,
        s.retention_hourly,
        s.retention_daily,
        s.retention_weekly,
        s.retention_monthly,
        s.retention_yearly,
        s.retention_within.as_ref(),
    )
}

fn destination_retention(d: &DestinationRaw) -> Retention {
    retention_of(
        d.retention_last,
        d.retention_hourly,
        d.retention_daily,
        d.retention_weekly,
        d.retention_monthly,
        d.retention_yearly,
        d.retention_within.as_ref(),
    )
}

/// restic's duration syntax for `--keep-within`: `1y5m7d2h`.
fn valid_within(s: &str) -> bool {
    let mut digits = false;
    let mut any = false;
    for c in s.chars() {
        if c.is_ascii_digit() {
            digits = true;
        } else if "ymdh".contains(c) && digits {
            digits = false;
            any = true;
        } else {
            return false;
        }
    }
    any && !digits
}

/// Checks a 5-field cron expression.
pub fn check_cron(expr: &str) -> Result<(), String> {
    let fields = expr.split_whitespace().count();
    if fields != 5 {
        return Err(format!(
            "cron expression `{expr}` has {fields} fields; use 5 (minute hour day-of-month month day-of-week), e.g. `30 2 * * *`"
        ));
    }
    if croner::Cron::from_str(expr).is_ok() {
        return Ok(());
    }
    // croner says only "number out of bounds": find the field by checking
    // each one alone, the others `*`.
    let parts: Vec<&str> = expr.split_whitespace().collect();
    for (i, (field, range)) in CRON_FIELDS.iter().enumerate() {
        let mut probe = ["*"; 5];
        probe[i] = parts[i];
        if croner::Cron::from_str(&probe.join(" ")).is_err() {
            return Err(format!(
                "invalid cron expression `{expr}`: the {field} field `{}` is not valid (allowed: {range}, `*`, lists `a,b`, ranges `a-b`, steps `*/n`)",
                parts[i]
            ));
        }
    }
    Err(format!(
        "invalid cron expression `{expr}`; use 5 fields (minute hour day-of-month month day-of-week), e.g. `30 2 * * *`"
    ))
}

const CRON_FIELDS: [(&str, &str); 5] = [
    ("minute", "0-59"),
    ("hour", "0-23"),
    ("day-of-month", "1-31"),
    ("month", "1-12 or jan-dec"),
    ("day-of-week", "0-7 or sun-sat"),
];

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        && !name.starts_with('.')
}

fn expand_home(p: &str, env: &Env) -> PathBuf {
    if let (Some(rest), Some(home)) = (p.strip_prefix("~/"), env.home.as_ref()) {
        return home.join(rest);
    }
    PathBuf::from(p)
}

/// A destination name for examples in messages.
fn dest_names_example(destinations: &BTreeMap<String, Destination>) -> &str {
    destinations.keys().next().map_or("local", String::as_str)
}

/// `[metrics.pushgateway]` and `[metrics.influxdb]`.
fn metrics_settings(
    raw: Option<&super::schema::MetricsRaw>,
    config_dir: &Path,
    env: &Env,
    cx: &mut Ctx<'_>,
) -> crate::config::MetricsSettings {
    use crate::config::{InfluxTarget, Influxdb, Pushgateway};
    let mut out = crate::config::MetricsSettings::default();
    let Some(m) = raw else {
        return out;
    };
    let url_ok = |u: &str| u.starts_with("http://") || u.starts_with("https://");
    if let Some(p) = &m.pushgateway {
        match &p.url {
            Some(u) if url_ok(u) => {
                let job = p.job.clone().unwrap_or_else(|| "restic-manager".to_string());
                if job.is_empty() || job.contains('/') {
                    cx.err(
                        "metrics.pushgateway.job",
                        "`job` must be non-empty and contain no `/`",
                    );
                }
                out.pushgateway = Some(Pushgateway {
                    url: u.trim_end_matches('/').to_string(),
                    job,
                });
            }
            Some(_) => cx.err(
                "metrics.pushgateway.url",
                "`[metrics.pushgateway] url` must be an http:// or https:// URL, e.g. `http://pushgateway:9091`",
            ),
            None => cx.missing(
                &["metrics.pushgateway"],
                "metrics.pushgateway",
                "`[metrics.pushgateway]` needs `url`, e.g. `url = \"http://pushgateway:9091\"`",
            ),
        }
    }
    if let Some(i) = &m.influxdb {
        let target = match (&i.org, &i.bucket, &i.database) {
            (Some(org), Some(bucket), None) => Some(InfluxTarget::V2 {
                org: org.clone(),
                bucket: bucket.clone(),
            }),
            (None, None, Some(db)) => Some(InfluxTarget::V1 {
                database: db.clone(),
            }),
            _ => {
                cx.err(
                    "metrics.influxdb",
                    "`[metrics.influxdb]` needs either `org` and `bucket` (InfluxDB 2 API) or `database` (InfluxDB 1 API), not both or neither",
                );
                None
            }
        };
        let url = match &i.url {
            Some(u) if url_ok(u) => Some(u.trim_end_matches('/').to_string()),
            Some(_) => {
                cx.err(
                    "metrics.influxdb.url",
                    "`[metrics.influxdb] url` must be an http:// or https:// URL, e.g. `http://influxdb:8086`",
                );
                None
            }
            None => {
                cx.missing(
                    &["metrics.influxdb"],
                    "metrics.influxdb",
                    "`[metrics.influxdb]` needs `url`, e.g. `url = \"http://influxdb:8086\"`",
                );
                None
            }
        };
        let token_file = i.token_file.as_deref().map(|t| {
            let p = expand_home(t, env);
            if p.is_absolute() {
                p
            } else {
                config_dir.join(p)
            }
        });
        if let (Some(url), Some(target)) = (url, target) {
            out.influxdb = Some(Influxdb {
                url,
                target,
                token_file,
            });
        }
    }
    out
}

/// Resolves and validates a raw configuration.
pub fn resolve(raw: RawConfig, loc: &Locator, env: &Env) -> Result<Config, Vec<Diagnostic>> {
    let mut cx = Ctx {
        loc,
        errors: Vec::new(),
        dropped: &raw.dropped_keys_in,
    };
    let g = &raw.global;
    let config_dir = raw
        .file
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);

    let settings = settings(g, &config_dir, env, &mut cx);
    let destinations = destinations(&raw.destinations, env, &mut cx);
    check_notifications(&raw, &mut cx);
    let (notify, notify_errors) = super::notify::resolve(&raw, &settings.state_directory, env, loc);
    cx.errors.extend(notify_errors);

    for (name, p) in &raw.profiles {
        let path = format!("profiles.{name}");
        if p.profile.is_some() {
            cx.err(
                &format!("{path}.profile"),
                format!("profile `{name}` sets `profile`; profiles cannot inherit from each other"),
            );
        }
        if p.name.is_some() {
            cx.err(
                &format!("{path}.name"),
                format!("profile `{name}` sets `name`; a profile is named by its table header"),
            );
        }
    }

    let mut services = Vec::new();
    let mut seen = BTreeSet::new();
    for (name, s, path) in &raw.services {
        if raw.array_form && s.name.is_none() {
            cx.err(path, "a `[[services]]` entry needs a `name` key");
            continue;
        }
        if !raw.array_form && s.name.is_some() {
            cx.err(
                &format!("{path}.name"),
                format!(
                    "service `{name}` sets `name`; in the `[services.NAME]` form the table header is the name, so remove the `name` key"
                ),
            );
        }
        if !valid_name(name) {
            cx.err(
                path,
                format!(
                    "service name `{name}` may only contain letters, digits, `-`, `_` and `.` (it becomes a repository folder and a tag)"
                ),
            );
        }
        if !seen.insert(name.clone()) {
            cx.err(path, format!("service `{name}` is defined twice"));
        }
        if let Some(svc) = service(
            name,
            s,
            path,
            &raw,
            g,
            &settings,
            &destinations,
            env,
            &mut cx,
        ) {
            services.push(svc);
        }
    }

    let metrics = metrics_settings(raw.metrics.as_ref(), &config_dir, env, &mut cx);
    let web = web(raw.web.as_ref(), &settings, &config_dir, env, &mut cx);
    if cx.errors.is_empty() {
        Ok(Config {
            file: raw.file.clone(),
            settings,
            services,
            destinations,
            notifications: raw.notifications.clone(),
            notify,
            metrics,
            web,
        })
    } else {
        cx.errors.sort_by_key(|d| (d.line, d.column));
        Err(cx.errors)
    }
}

fn settings(g: &GlobalRaw, config_dir: &Path, env: &Env, cx: &mut Ctx<'_>) -> Settings {
    let abs = |p: &str| {
        let p = expand_home(p, env);
        if p.is_absolute() {
            p
        } else {
            config_dir.join(p)
        }
    };
    let password = match (&g.restic_password_file, &g.restic_password_command) {
        (Some(_), Some(_)) => {
            cx.err(
                "global.restic_password_command",
                "set either `restic_password_file` or `restic_password_command`, not both",
            );
            PasswordSource::File(PathBuf::new())
        }
        (Some(f), None) => PasswordSource::File(abs(f)),
        (None, Some(c)) => PasswordSource::Command(c.clone()),
        (None, None) => PasswordSource::File(config_dir.join("restic-password")),
    };
    let state_directory = g
        .state_directory
        .as_deref()
        .map_or_else(|| env.state_dir(), abs);
    let log_directory = g
        .log_directory
        .as_deref()
        .map_or_else(|| state_directory.join("logs"), abs);
    let lock_directory = g.lock_directory.as_deref().map_or_else(
        || {
            env.lock_dir()
                .unwrap_or_else(|| state_directory.join("locks"))
        },
        abs,
    );
    let docker_base = g.docker_base.as_deref().map(|d| expand_home(d, env));
    if let Some(d) = &docker_base
        && !d.is_absolute()
    {
        cx.err(
            "global.docker_base",
            format!(
                "`docker_base` must be an absolute path, not `{}`",
                d.display()
            ),
        );
    }
    for (key, v) in [
        ("default_timeout_seconds", g.default_timeout_seconds),
        ("hook_timeout_seconds", g.hook_timeout_seconds),
        (
            "long_running_threshold_minutes",
            g.long_running_threshold_minutes,
        ),
    ] {
        if v == Some(0) {
            cx.err(
                &format!("global.{key}"),
                format!("`{key}` must be greater than 0"),
            );
        }
    }
    for (key, v) in [
        ("max_parallel_services", g.max_parallel_services),
        ("max_parallel_destinations", g.max_parallel_destinations),
    ] {
        if v == Some(0) {
            cx.err(
                &format!("global.{key}"),
                format!("`{key}` must be at least 1"),
            );
        }
    }
    if let Some(j) = g.schedule_jitter
        && j > 86_400
    {
        cx.err(
            "global.schedule_jitter",
            "`schedule_jitter` must be at most 86400 seconds (one day)",
        );
    }
    if let Some(expr) = &g.verify_schedule
        && let Err(e) = check_cron(expr)
    {
        cx.err("global.verify_schedule", format!("`verify_schedule`: {e}"));
    }
    if let Some(r) = g.verify_rotation
        && !(1..=256).contains(&r)
    {
        cx.err(
            "global.verify_rotation",
            format!("`verify_rotation` must be between 1 and 256 (restic reads subset n/N of the packs), not {r}"),
        );
    }
    if g.drill_sample_files == Some(0) {
        cx.err(
            "global.drill_sample_files",
            "`drill_sample_files` must be at least 1",
        );
    }
    for (key, v) in [
        ("max_age", &g.max_age),
        ("verify_max_age", &g.verify_max_age),
    ] {
        if let Some(Err(e)) = v.as_deref().map(super::duration::parse_age_limit) {
            cx.err(&format!("global.{key}"), format!("`{key}`: {e}"));
        }
    }
    if let Some(p) = g.retention_max_remove_percent
        && (p == 0 || p > 100)
    {
        cx.err(
            "global.retention_max_remove_percent",
            "`retention_max_remove_percent` must be between 1 and 100",
        );
    }
    if let Some(r) = &g.replication
        && let Err(e) = parse_replication(r)
    {
        cx.err("global.replication", e);
    }
    if let Some(p) = &g.prune
        && let Err(e) = parse_prune(p)
    {
        cx.err("global.prune", e);
    }
    let log_level = g.log_level.clone().unwrap_or_else(|| "info".to_string());
    if !LOG_LEVELS.contains(&log_level.as_str()) {
        cx.err(
            "global.log_level",
            format!(
                "unknown log level `{log_level}`; valid values are {}",
                list(LOG_LEVELS)
            ),
        );
    }
    if let Some(w) = &g.retention_within
        && !valid_within(w)
    {
        cx.err("global.retention_within", within_msg(w));
    }
    let mut base_url = |key: &str, v: Option<&String>, default: &str| -> String {
        let v = v.map_or(default, String::as_str).trim_end_matches('/');
        if !(v.starts_with("https://") || v.starts_with("http://")) {
            cx.err(
                &format!("global.{key}"),
                format!("`{key}` must be an http:// or https:// URL, not `{v}`"),
            );
        }
        v.to_string()
    };
    let restic_release_api = base_url(
        "restic_release_api",
        g.restic_release_api.as_ref(),
        DEFAULT_RELEASE_API,
    );
    let restic_download_base = base_url(
        "restic_download_base",
        g.restic_download_base.as_ref(),
        DEFAULT_DOWNLOAD_BASE,
    );
    let host = g.host.clone().unwrap_or_else(|| {
        nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .unwrap_or_else(|| "localhost".to_string())
    });
    if host.trim().is_empty() {
        cx.err("global.host", "`host` must not be empty");
    }
    Settings {
        password,
        state_directory,
        log_directory,
        lock_directory,
        docker_base,
        default_timeout_seconds: g.default_timeout_seconds.unwrap_or(DEFAULT_TIMEOUT_SECONDS),
        long_running_threshold_minutes: g
            .long_running_threshold_minutes
            .unwrap_or(DEFAULT_LONG_RUNNING_MINUTES),
        hook_timeout_seconds: g
            .hook_timeout_seconds
            .unwrap_or(DEFAULT_HOOK_TIMEOUT_SECONDS),
        log_level,
        log_max_files: g.log_max_files.unwrap_or(DEFAULT_LOG_MAX_FILES).max(1),
        log_max_size_mb: g.log_max_size_mb.unwrap_or(DEFAULT_LOG_MAX_SIZE_MB).max(1),
        use_system_restic: g.use_system_restic.unwrap_or(false),
        restic_binary: g.restic_binary.as_deref().map(|b| expand_home(b, env)),
        restic_release_api,
        restic_download_base,
        host,
        max_parallel_services: g.max_parallel_services.map_or(1, |n| n as usize),
        max_parallel_destinations: g.max_parallel_destinations.map(|n| n as usize),
        lock_wait_seconds: g.lock_wait_seconds.unwrap_or(DEFAULT_LOCK_WAIT_SECONDS),
        retention_max_remove_percent: g
            .retention_max_remove_percent
            .unwrap_or(DEFAULT_MAX_REMOVE_PERCENT),
        schedule_jitter: g.schedule_jitter.filter(|j| *j > 0),
        metrics_file: g.metrics_file.as_deref().map(abs),
        docker_helper_image: g
            .docker_helper_image
            .clone()
            .filter(|i| !i.trim().is_empty())
            .unwrap_or_else(|| crate::sources::docker::DEFAULT_HELPER_IMAGE.to_string()),
    }
}

/// Parses `replication`.
pub fn parse_replication(v: &str) -> Result<Replication, String> {
    match v {
        "parallel" => Ok(Replication::Parallel),
        "copy" => Ok(Replication::Copy),
        other => Err(format!(
            "unknown `replication` value `{other}`; use `parallel` (an independent backup to each target) or `copy` (back up to the first target, then `restic copy` to the others)"
        )),
    }
}

/// Parses `prune`.
pub fn parse_prune(v: &str) -> Result<Prune, String> {
    match v {
        "always" => Ok(Prune::Always),
        "never" => Ok(Prune::Never),
        expr => check_cron(expr)
            .map(|()| Prune::Schedule(expr.to_string()))
            .map_err(|e| format!("`prune` must be `always`, `never` or a cron expression: {e}")),
    }
}

fn within_msg(w: &str) -> String {
    format!(
        "`retention_within` value `{w}` is not a restic duration; use numbers with y, m, d, h, e.g. `1y6m` or `14d`"
    )
}

/// Keys that only make sense for some destination types.
fn type_keys(kind: &str) -> &'static [&'static str] {
    match kind {
        "local" => &["path"],
        "sftp" => &[
            "host",
            "user",
            "port",
            "path",
            "identity_file",
            "known_hosts_file",
        ],
        "s3" => &[
            "endpoint",
            "bucket",
            "prefix",
            "region",
            "access_key_id_file",
            "secret_access_key_file",
        ],
        "b2" => &["bucket", "prefix", "account_id_file", "account_key_file"],
        "rest" => &["username"],
        "rclone" => &["remote", "rclone_binary"],
        _ => &[],
    }
}

fn set_type_keys(d: &DestinationRaw) -> Vec<&'static str> {
    let mut out = Vec::new();
    macro_rules! chk {
        ($($f:ident),*) => { $( if d.$f.is_some() { out.push(stringify!($f)); } )* };
    }
    chk!(
        path,
        host,
        user,
        port,
        identity_file,
        known_hosts_file,
        endpoint,
        bucket,
        prefix,
        region,
        access_key_id_file,
        secret_access_key_file,
        account_id_file,
        account_key_file,
        username,
        remote,
        rclone_binary
    );
    out
}

fn destinations(
    raw: &BTreeMap<String, DestinationRaw>,
    env: &Env,
    cx: &mut Ctx<'_>,
) -> BTreeMap<String, Destination> {
    let mut out = BTreeMap::new();
    for (name, d) in raw {
        let path = format!("destinations.{name}");
        if !valid_name(name) {
            cx.err(
                &path,
                format!(
                    "destination name `{name}` may only contain letters, digits, `-`, `_` and `.`"
                ),
            );
        }
        let Some(kind) = d.kind.clone() else {
            cx.missing(
                &[&path],
                &path,
                format!(
                    "destination `{name}` has no `type`; valid types are {}",
                    list(DESTINATION_TYPES)
                ),
            );
            continue;
        };
        if !DESTINATION_TYPES.contains(&kind.as_str()) {
            let mut msg = format!(
                "destination `{name}` has unknown type `{kind}`; valid types are {}",
                list(DESTINATION_TYPES)
            );
            if let Some(s) = suggest(&kind, DESTINATION_TYPES) {
                msg.push_str(&format!("; did you mean `{s}`?"));
            }
            cx.err(&format!("{path}.type"), msg);
            continue;
        }
        let allowed = type_keys(&kind);
        for key in set_type_keys(d) {
            if !allowed.contains(&key) {
                cx.err(
                    &format!("{path}.{key}"),
                    format!(
                        "destination `{name}`: key `{key}` does not apply to type `{kind}`; remove it (a `{kind}` destination takes `url`, {}, and the keys every type takes)",
                        list(allowed)
                    ),
                );
            }
        }
        let need = |cx: &mut Ctx<'_>, ok: bool, what: &str| {
            if !ok {
                cx.missing(
                    &[path.as_str()],
                    &path,
                    format!("{kind} destination `{name}` needs `url` or {what}"),
                );
            }
        };
        let has_url = d.url.as_ref().is_some_and(|u| !u.trim().is_empty());
        match kind.as_str() {
            "local" => {
                need(cx, has_url || d.path.is_some(), "`path`");
                let p = d.path.clone().or_else(|| {
                    d.url
                        .as_ref()
                        .map(|u| u.strip_prefix("local:").unwrap_or(u).to_string())
                });
                if let Some(p) = p
                    && !expand_home(&p, env).is_absolute()
                {
                    cx.err(
                        &path,
                        format!("local destination `{name}`: path `{p}` must be absolute"),
                    );
                }
            }
            "sftp" => need(
                cx,
                has_url || (d.host.is_some() && d.path.is_some()),
                "`host` and `path`",
            ),
            "s3" | "b2" => need(cx, has_url || d.bucket.is_some(), "`bucket`"),
            "rest" => need(cx, has_url, "a server address"),
            "rclone" => need(cx, has_url || d.remote.is_some(), "`remote`"),
            _ => {}
        }
        if d.password_file.is_some() && d.password_command.is_some() {
            cx.err(
                &format!("{path}.password_command"),
                "set either `password_file` or `password_command`, not both",
            );
        }
        if let Some(w) = &d.retention_within
            && !valid_within(w)
        {
            cx.err(&format!("{path}.retention_within"), within_msg(w));
        }
        out.insert(
            name.clone(),
            Destination {
                name: name.clone(),
                kind,
                description: d.description.clone(),
                retention: destination_retention(d),
                raw: expand_destination(d, env),
            },
        );
    }
    out
}

/// `~/` in a destination's file paths means the user's home.
fn expand_destination(d: &DestinationRaw, env: &Env) -> DestinationRaw {
    let mut d = d.clone();
    for f in [
        &mut d.path,
        &mut d.identity_file,
        &mut d.known_hosts_file,
        &mut d.access_key_id_file,
        &mut d.secret_access_key_file,
        &mut d.account_id_file,
        &mut d.account_key_file,
        &mut d.password_file,
        &mut d.repository_password_file,
        &mut d.rclone_binary,
    ] {
        if let Some(v) = f.as_mut() {
            *v = expand_home(v, env).to_string_lossy().into_owned();
        }
    }
    d
}

fn check_notify_on(owner: &str, values: &[String], path: &str, cx: &mut Ctx<'_>) {
    for (i, v) in values.iter().enumerate() {
        if !NOTIFY_EVENTS.contains(&v.as_str()) {
            let mut msg = format!("{owner}: unknown `notify_on` event `{v}`");
            if let Some(s) = suggest(v, NOTIFY_EVENTS) {
                msg.push_str(&format!("; did you mean `{s}`?"));
            } else {
                msg.push_str(&format!("; valid events are {}", list(NOTIFY_EVENTS)));
            }
            cx.err(&format!("{path}.{i}"), msg);
        }
    }
}

fn check_notifications(raw: &RawConfig, cx: &mut Ctx<'_>) {
    if let Some(n) = &raw.notifications {
        if let Some(v) = &n.notify_on {
            check_notify_on("`[notifications]`", v, "notifications.notify_on", cx);
        }
        if let Some(url) = &n.discord_webhook_url
            && !(url.starts_with("https://") || url.starts_with("http://"))
        {
            cx.err(
                "notifications.discord_webhook_url",
                "`discord_webhook_url` must be an http(s) URL",
            );
        }
    }
}

/// Picks the service's value, else the profile's; returns where it came from.
fn pick<'a, T>(
    svc: &'a Option<T>,
    prof: Option<&'a Option<T>>,
    spath: &str,
    ppath: Option<&str>,
    key: &str,
) -> (Option<&'a T>, String) {
    if let Some(v) = svc {
        return (Some(v), format!("{spath}.{key}"));
    }
    if let (Some(Some(v)), Some(pp)) = (prof, ppath) {
        return (Some(v), format!("{pp}.{key}"));
    }
    (None, spath.to_string())
}

#[allow(clippy::too_many_arguments, clippy::too_many_lines)]
fn service(
    name: &str,
    s: &ServiceRaw,
    spath: &str,
    raw: &RawConfig,
    g: &GlobalRaw,
    settings: &Settings,
    destinations: &BTreeMap<String, Destination>,
    env: &Env,
    cx: &mut Ctx<'_>,
) -> Option<Service> {
    let profile = match &s.profile {
        Some(p) => match raw.profiles.get(p) {
            Some(prof) => Some((p.clone(), prof)),
            None if raw.broken_profiles.contains(p) => None,
            None => {
                let names: Vec<&str> = raw.profiles.keys().map(String::as_str).collect();
                let mut msg = format!("service `{name}` uses profile `{p}`, which is not defined");
                if let Some(sug) = suggest(p, &names) {
                    msg.push_str(&format!("; did you mean `{sug}`?"));
                } else if names.is_empty() {
                    msg.push_str(&format!("; add a `[profiles.{p}]` table"));
                } else {
                    msg.push_str(&format!("; defined profiles: {}", list(&names)));
                }
                cx.err(&format!("{spath}.profile"), msg);
                None
            }
        },
        None => None,
    };
    let ppath = profile.as_ref().map(|(n, _)| format!("profiles.{n}"));
    // The profile's table even when it could not be parsed, for `missing`.
    let named_profile = s
        .profile
        .as_ref()
        .map_or_else(|| spath.to_string(), |p| format!("profiles.{p}"));
    let pr = profile.as_ref().map(|(_, p)| *p);
    let pp = ppath.as_deref();
    let pcfg = pr.and_then(|p| p.config.as_ref());
    let scfg = s.config.as_ref();

    // strategy
    let (strategy, path) = pick(&s.strategy, pr.map(|p| &p.strategy), spath, pp, "strategy");
    let strategy = strategy.cloned().unwrap_or_else(|| "generic".to_string());
    if !STRATEGIES.contains(&strategy.as_str()) {
        let msg = if strategy == "appwrite" || strategy == "immich" {
            format!(
                "service `{name}`: strategy `{strategy}` from the original tool is replaced by the generic strategy: set `strategy = \"generic\"`, list the data folders in `[services.{name}.config] paths`, and put the application-specific steps (database dump, maintenance mode) in `pre_backup_hooks` / `post_backup_hooks`; see the README section \"Migrating from the original restic-manager\""
            )
        } else {
            let hint = suggest(&strategy, STRATEGIES).map_or_else(
                || format!("valid values are {}", list(STRATEGIES)),
                |s| format!("did you mean `{s}`?"),
            );
            format!("service `{name}`: unknown strategy `{strategy}`; {hint}")
        };
        cx.err(&path, msg);
    }

    // targets
    let (targets, tpath) = pick(&s.targets, pr.map(|p| &p.targets), spath, pp, "targets");
    let targets = targets.cloned().unwrap_or_default();
    if targets.is_empty() {
        let from = match (&s.targets, &s.profile) {
            (None, Some(p)) if pr.is_some_and(|p| p.targets.is_some()) => {
                format!(" (`targets = []` comes from profile `{p}`)")
            }
            _ => String::new(),
        };
        let example = dest_names_example(destinations);
        cx.missing(
            &[spath, &named_profile],
            &tpath,
            format!("service `{name}` has no `targets`{from}; list at least one destination, e.g. `targets = [\"{example}\"]`"),
        );
    }
    let dest_names: Vec<&str> = destinations.keys().map(String::as_str).collect();
    let mut uniq = BTreeSet::new();
    for (i, t) in targets.iter().enumerate() {
        if !uniq.insert(t) {
            cx.err(
                &format!("{tpath}.{i}"),
                format!("service `{name}` lists target `{t}` twice"),
            );
        }
        if !destinations.contains_key(t)
            && !raw.destinations.contains_key(t)
            && !raw.broken_destinations.contains(t)
        {
            let mut msg =
                format!("service `{name}` targets destination `{t}`, which is not defined");
            if let Some(sug) = suggest(t, &dest_names) {
                msg.push_str(&format!("; did you mean `{sug}`?"));
            } else if dest_names.is_empty() {
                msg.push_str(&format!("; add a `[destinations.{t}]` table"));
            } else {
                msg.push_str(&format!("; defined destinations: {}", list(&dest_names)));
            }
            cx.err(&format!("{tpath}.{i}"), msg);
        }
    }

    // schedule
    let (schedule, path) = pick(&s.schedule, pr.map(|p| &p.schedule), spath, pp, "schedule");
    if let Some(expr) = schedule
        && let Err(e) = check_cron(expr)
    {
        cx.err(&path, format!("service `{name}`: {e}"));
    }

    // retention
    let retention = service_retention(s)
        .or(&pr.map(service_retention).unwrap_or_default())
        .or(&global_retention(g));
    if let (Some(w), path) = pick(
        &s.retention_within,
        pr.map(|p| &p.retention_within),
        spath,
        pp,
        "retention_within",
    ) && !valid_within(w)
    {
        cx.err(&path, within_msg(w));
    }

    // notify_on
    let (notify, path) = pick(
        &s.notify_on,
        pr.map(|p| &p.notify_on),
        spath,
        pp,
        "notify_on",
    );
    let notify_on = match notify {
        Some(v) => {
            check_notify_on(&format!("service `{name}`"), v, &path, cx);
            v.clone()
        }
        None => raw
            .notifications
            .as_ref()
            .and_then(|n| n.notify_on.clone())
            .unwrap_or_else(|| DEFAULT_NOTIFY_ON.iter().map(ToString::to_string).collect()),
    };

    let (notifiers, path) = pick(
        &s.notifiers,
        pr.map(|p| &p.notifiers),
        spath,
        pp,
        "notifiers",
    );
    if let Some(list) = notifiers {
        let found = super::notify::check_service_notifiers(
            &format!("service `{name}`"),
            list,
            &path,
            raw,
            cx.loc,
        );
        cx.errors.extend(found);
    }
    let notifiers = notifiers.cloned();
    let (timeout, path) = pick(
        &s.timeout_seconds,
        pr.map(|p| &p.timeout_seconds),
        spath,
        pp,
        "timeout_seconds",
    );
    if timeout == Some(&0) {
        cx.err(
            &path,
            format!("service `{name}`: `timeout_seconds` must be greater than 0 (seconds a whole run may take)"),
        );
    }
    let timeout_seconds = timeout.copied().unwrap_or(settings.default_timeout_seconds);

    // sources
    let cfg_key = |k: &str| format!("{spath}.config.{k}");
    let (paths_raw, ppath_key) = match (
        scfg.and_then(|c| c.paths.as_ref()),
        pcfg.and_then(|c| c.paths.as_ref()),
    ) {
        (Some(v), _) => (v.clone(), cfg_key("paths")),
        (None, Some(v)) => (v.clone(), format!("{}.config.paths", pp.unwrap_or(spath))),
        (None, None) => (Vec::new(), cfg_key("paths")),
    };
    let mut paths = Vec::new();
    for (i, p) in paths_raw.iter().enumerate() {
        if p.trim().is_empty() {
            cx.err(
                &format!("{ppath_key}.{i}"),
                format!("service `{name}`: empty path"),
            );
            continue;
        }
        let pb = expand_home(p, env);
        if pb.is_absolute() {
            paths.push(pb);
        } else if let Some(base) = &settings.docker_base {
            paths.push(base.join(pb));
        } else {
            cx.err(
                &format!("{ppath_key}.{i}"),
                format!(
                    "service `{name}`: path `{p}` is relative, and relative paths are taken from `docker_base`, which is not set; set `[global] docker_base` or write an absolute path"
                ),
            );
        }
    }
    let volumes = scfg
        .and_then(|c| c.volumes.clone())
        .or_else(|| pcfg.and_then(|c| c.volumes.clone()))
        .unwrap_or_default();
    let mut excludes = g.default_excludes.clone().unwrap_or_default();
    excludes.extend(
        scfg.and_then(|c| c.excludes.clone())
            .or_else(|| pcfg.and_then(|c| c.excludes.clone()))
            .unwrap_or_default(),
    );

    let pbase = pp.unwrap_or(spath);
    let (backup_script, bpath) = [
        (
            scfg.and_then(|c| c.backup_script.as_ref()),
            format!("{spath}.config.backup_script"),
        ),
        (s.backup_script.as_ref(), format!("{spath}.backup_script")),
        (
            pcfg.and_then(|c| c.backup_script.as_ref()),
            format!("{pbase}.config.backup_script"),
        ),
        (
            pr.and_then(|p| p.backup_script.as_ref()),
            format!("{pbase}.backup_script"),
        ),
    ]
    .into_iter()
    .find_map(|(v, path)| v.map(|v| (Some(v.clone()), path)))
    .unwrap_or((None, spath.to_string()));
    if backup_script.as_ref().is_some_and(|b| b.trim().is_empty()) {
        cx.err(
            &bpath,
            format!("service `{name}`: `backup_script` is empty; give the script's path, or remove the key to back up `paths`"),
        );
    }

    let hooks = |which: &str,
                 sv: Option<&Vec<HookRaw>>,
                 pv: Option<&Vec<HookRaw>>,
                 cx: &mut Ctx<'_>| {
        let (list, base) = match (sv, pv) {
            (Some(v), _) => (v.clone(), cfg_key(which)),
            (None, Some(v)) => (v.clone(), format!("{}.config.{which}", pp.unwrap_or(spath))),
            (None, None) => (Vec::new(), cfg_key(which)),
        };
        let mut out = Vec::new();
        for (i, h) in list.iter().enumerate() {
            let hpath = format!("{base}.{i}");
            let hname = h.name.clone().unwrap_or_else(|| format!("{which}[{i}]"));
            let Some(cmd) = h.command.clone().filter(|c| !c.trim().is_empty()) else {
                cx.missing(
                        &[&hpath],
                        &hpath,
                        format!("service `{name}`: hook `{hname}` has no `command`; add the shell command to run, e.g. `command = \"docker compose stop\"`"),
                    );
                continue;
            };
            if h.timeout_seconds == Some(0) {
                cx.err(
                    &format!("{hpath}.timeout_seconds"),
                    format!(
                        "service `{name}`: hook `{hname}`: `timeout_seconds` must be greater than 0"
                    ),
                );
            }
            let working_dir = h.working_dir.as_deref().map(|w| {
                let w = expand_home(w, env);
                match (&settings.docker_base, w.is_absolute()) {
                    (Some(b), false) => b.join(w),
                    _ => w,
                }
            });
            out.push(Hook {
                name: hname,
                command: cmd,
                working_dir,
                timeout_seconds: h.timeout_seconds.unwrap_or(settings.hook_timeout_seconds),
                continue_on_error: h.continue_on_error.unwrap_or(false),
                env: h.env.clone().unwrap_or_default(),
            });
        }
        out
    };
    let pre_backup_hooks = hooks(
        "pre_backup_hooks",
        scfg.and_then(|c| c.pre_backup_hooks.as_ref()),
        pcfg.and_then(|c| c.pre_backup_hooks.as_ref()),
        cx,
    );
    let post_backup_hooks = hooks(
        "post_backup_hooks",
        scfg.and_then(|c| c.post_backup_hooks.as_ref()),
        pcfg.and_then(|c| c.post_backup_hooks.as_ref()),
        cx,
    );

    let (dumps_raw, dumps_key) = match (
        scfg.and_then(|c| c.dumps.as_ref()),
        pcfg.and_then(|c| c.dumps.as_ref()),
    ) {
        (Some(v), _) => (v.clone(), cfg_key("dumps")),
        (None, Some(v)) => (v.clone(), format!("{}.config.dumps", pp.unwrap_or(spath))),
        (None, None) => (Vec::new(), cfg_key("dumps")),
    };
    let (dumps, dump_errors) = super::dump::resolve(
        name,
        &dumps_raw,
        &dumps_key,
        settings.docker_base.as_deref(),
        env,
    );
    for (path, msg) in dump_errors {
        cx.err(&path, msg);
    }

    if paths.is_empty()
        && volumes.is_empty()
        && backup_script.is_none()
        && paths_raw.is_empty()
        && dumps_raw.is_empty()
    {
        let pconfig = format!("{}.config", pp.unwrap_or(spath));
        cx.missing(
            &[spath, &format!("{spath}.config"), &named_profile, &pconfig],
            &format!("{spath}.config"),
            format!("service `{name}` has nothing to back up; set `[services.{name}.config] paths` (or `volumes`, or a legacy `backup_script`)"),
        );
    }

    let (rep, path) = pick(
        &s.replication,
        pr.map(|p| &p.replication),
        spath,
        pp,
        "replication",
    );
    let replication = match rep.or(g.replication.as_ref()).map(|r| parse_replication(r)) {
        None => Replication::Parallel,
        Some(Ok(r)) => r,
        Some(Err(e)) => {
            if rep.is_some() {
                cx.err(&path, format!("service `{name}`: {e}"));
            }
            Replication::Parallel
        }
    };
    if replication == Replication::Copy && targets.len() < 2 {
        cx.err(
            &path,
            format!("service `{name}`: `replication = \"copy\"` needs at least two targets (the first is backed up, the others receive copies)"),
        );
    }
    let (pv, path) = pick(&s.prune, pr.map(|p| &p.prune), spath, pp, "prune");
    let prune = match pv.or(g.prune.as_ref()).map(|v| parse_prune(v)) {
        None => Prune::Always,
        Some(Ok(p)) => p,
        Some(Err(e)) => {
            if pv.is_some() {
                cx.err(&path, format!("service `{name}`: {e}"));
            }
            Prune::Always
        }
    };

    let verify = verify_settings(name, s, pr, spath, pp, g, cx);
    let health = health_settings(name, s, pr, spath, pp, g, cx);
    // Docker: volume mode, helper image, containers to stop.
    let docker_key = |k: &str| {
        if scfg.is_some_and(|c| match k {
            "volume_mode" => c.volume_mode.is_some(),
            "docker_helper_image" => c.docker_helper_image.is_some(),
            "stop_containers" => c.stop_containers.is_some(),
            _ => c.stop_compose_project.is_some(),
        }) {
            cfg_key(k)
        } else {
            format!("{}.config.{k}", pp.unwrap_or(spath))
        }
    };
    let volume_mode = match scfg
        .and_then(|c| c.volume_mode.as_deref())
        .or_else(|| pcfg.and_then(|c| c.volume_mode.as_deref()))
        .map(super::VolumeMode::parse)
    {
        None => super::VolumeMode::Auto,
        Some(Ok(m)) => m,
        Some(Err(e)) => {
            cx.err(&docker_key("volume_mode"), format!("service `{name}`: {e}"));
            super::VolumeMode::Auto
        }
    };
    let docker_helper_image = scfg
        .and_then(|c| c.docker_helper_image.clone())
        .or_else(|| pcfg.and_then(|c| c.docker_helper_image.clone()))
        .unwrap_or_else(|| settings.docker_helper_image.clone());
    if docker_helper_image.trim().is_empty() {
        cx.err(
            &docker_key("docker_helper_image"),
            format!("service `{name}`: `docker_helper_image` is empty; name a local image that has `tar`, e.g. `busybox:stable`"),
        );
    }
    let stop_containers = scfg
        .and_then(|c| c.stop_containers.clone())
        .or_else(|| pcfg.and_then(|c| c.stop_containers.clone()))
        .unwrap_or_default();
    for (i, c) in stop_containers.iter().enumerate() {
        if c.trim().is_empty() {
            cx.err(
                &format!("{}.{i}", docker_key("stop_containers")),
                format!("service `{name}`: empty container name in `stop_containers`"),
            );
        }
    }
    let stop_compose_project = scfg
        .and_then(|c| c.stop_compose_project.clone())
        .or_else(|| pcfg.and_then(|c| c.stop_compose_project.clone()));
    if stop_compose_project
        .as_ref()
        .is_some_and(|p| p.trim().is_empty())
    {
        cx.err(
            &docker_key("stop_compose_project"),
            format!("service `{name}`: `stop_compose_project` is empty; give the compose project name (`docker compose ls`)"),
        );
    }
    if backup_script.is_some() && (!stop_containers.is_empty() || stop_compose_project.is_some()) {
        cx.err(
            &docker_key(if stop_containers.is_empty() { "stop_compose_project" } else { "stop_containers" }),
            format!("service `{name}`: `stop_containers` / `stop_compose_project` do not work with a legacy `backup_script`; stop containers in the script, or replace it with `paths` / `volumes`"),
        );
    }

    let mut tags = pr.and_then(|p| p.tags.clone()).unwrap_or_default();
    if let Some(t) = &s.tags {
        tags = t.clone();
    }
    for (i, t) in tags.iter().enumerate() {
        if t.is_empty() || t.contains(',') {
            cx.err(
                &format!("{spath}.tags.{i}"),
                format!("tag `{t}` must be non-empty and contain no comma"),
            );
        }
    }

    Some(Service {
        name: name.to_string(),
        enabled: s.enabled.or(pr.and_then(|p| p.enabled)).unwrap_or(true),
        profile: s.profile.clone(),
        description: s
            .description
            .clone()
            .or_else(|| pr.and_then(|p| p.description.clone())),
        targets,
        schedule: schedule.cloned(),
        strategy,
        retention,
        tags,
        timeout_seconds,
        notify_on,
        notifiers,
        paths,
        volumes,
        excludes,
        pre_backup_hooks,
        post_backup_hooks,
        backup_script,
        replication,
        prune,
        verify,
        health,
        dumps,
        volume_mode,
        docker_helper_image,
        stop_containers,
        stop_compose_project,
    })
}

/// `max_age` and `verify_max_age`: service → profile → global → default.
/// A global value that does not parse was reported with `[global]`.
fn health_settings(
    name: &str,
    s: &ServiceRaw,
    pr: Option<&ServiceRaw>,
    spath: &str,
    pp: Option<&str>,
    g: &GlobalRaw,
    cx: &mut Ctx<'_>,
) -> crate::config::HealthSettings {
    let mut h = crate::config::HealthSettings::default();
    let mut limit = |key: &str,
                     own: &Option<String>,
                     prof: Option<&Option<String>>,
                     global: &Option<String>| {
        let (v, path) = pick(own, prof, spath, pp, key);
        match v.map(|t| super::duration::parse_age_limit(t)) {
            Some(Ok(l)) => Some(l),
            Some(Err(e)) => {
                cx.err(&path, format!("service `{name}`: `{key}`: {e}"));
                None
            }
            None => global
                .as_deref()
                .and_then(|t| super::duration::parse_age_limit(t).ok()),
        }
    };
    h.max_age = limit("max_age", &s.max_age, pr.map(|p| &p.max_age), &g.max_age);
    if let Some(l) = limit(
        "verify_max_age",
        &s.verify_max_age,
        pr.map(|p| &p.verify_max_age),
        &g.verify_max_age,
    ) {
        h.verify_max_age = l;
    }
    h
}

/// `verify_schedule`, `verify_rotation`, `drill_sample_files` and
/// `verify_command`: service → profile → global → default.
fn verify_settings(
    name: &str,
    s: &ServiceRaw,
    pr: Option<&ServiceRaw>,
    spath: &str,
    pp: Option<&str>,
    g: &GlobalRaw,
    cx: &mut Ctx<'_>,
) -> crate::config::VerifySettings {
    let mut v = crate::config::VerifySettings::default();
    let (sched, path) = pick(
        &s.verify_schedule,
        pr.map(|p| &p.verify_schedule),
        spath,
        pp,
        "verify_schedule",
    );
    if let Some(expr) = sched
        && let Err(e) = check_cron(expr)
    {
        cx.err(&path, format!("service `{name}`: `verify_schedule`: {e}"));
    }
    v.schedule = sched.or(g.verify_schedule.as_ref()).cloned();
    let (rot, path) = pick(
        &s.verify_rotation,
        pr.map(|p| &p.verify_rotation),
        spath,
        pp,
        "verify_rotation",
    );
    if let Some(r) = rot
        && !(1..=256).contains(r)
    {
        cx.err(
            &path,
            format!("service `{name}`: `verify_rotation` must be between 1 and 256 (restic reads subset n/N of the packs), not {r}"),
        );
    }
    v.rotation = rot
        .or(g.verify_rotation.as_ref())
        .copied()
        .unwrap_or(v.rotation)
        .clamp(1, 256);
    let (files, path) = pick(
        &s.drill_sample_files,
        pr.map(|p| &p.drill_sample_files),
        spath,
        pp,
        "drill_sample_files",
    );
    if files == Some(&0) {
        cx.err(
            &path,
            format!("service `{name}`: `drill_sample_files` must be at least 1"),
        );
    }
    v.drill_sample_files = files
        .or(g.drill_sample_files.as_ref())
        .copied()
        .unwrap_or(v.drill_sample_files)
        .max(1);
    let (cmd, path) = pick(
        &s.verify_command,
        pr.map(|p| &p.verify_command),
        spath,
        pp,
        "verify_command",
    );
    if cmd.is_some_and(|c| c.trim().is_empty()) {
        cx.err(&path, format!("service `{name}`: `verify_command` is empty; remove it or give a command such as `pg_restore --list`"));
    }
    v.command = cmd.cloned();
    v
}

/// `[web]` with its defaults: listen on loopback, token and restores under
/// the state directory.
fn web(
    w: Option<&super::schema::WebRaw>,
    settings: &Settings,
    config_dir: &Path,
    env: &Env,
    cx: &mut Ctx<'_>,
) -> super::Web {
    let abs = |p: &str| {
        let p = expand_home(p, env);
        if p.is_absolute() {
            p
        } else {
            config_dir.join(p)
        }
    };
    let listen = w
        .and_then(|w| w.listen.clone())
        .unwrap_or_else(|| "127.0.0.1:8080".to_string());
    if listen.parse::<std::net::SocketAddr>().is_err() {
        cx.err(
            "web.listen",
            format!("`listen` = `{listen}` is not an address with a port, e.g. `127.0.0.1:8080` or `[::1]:8080`"),
        );
    }
    super::Web {
        configured: w.is_some(),
        listen,
        token_file: w
            .and_then(|w| w.token_file.as_deref())
            .map_or_else(|| settings.state_directory.join("web-token"), abs),
        restore_directory: w
            .and_then(|w| w.restore_directory.as_deref())
            .map_or_else(|| settings.state_directory.join("restores"), abs),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn within_durations() {
        for (s, ok) in [
            ("14d", true),
            ("1y6m", true),
            ("2h", true),
            ("", false),
            ("5", false),
            ("d5", false),
            ("3w", false),
        ] {
            assert_eq!(valid_within(s), ok, "{s}");
        }
    }

    #[test]
    fn cron_expressions() {
        for (s, ok) in [
            ("30 2 * * *", true),
            ("*/15 * * * 1-5", true),
            ("61 * * * *", false),
            ("* * * *", false),
            ("0 0 * * * *", false),
            ("daily", false),
        ] {
            assert_eq!(check_cron(s).is_ok(), ok, "{s}");
        }
    }

    #[test]
    fn retention_args_skip_zero_and_unset() {
        let r = Retention {
            daily: Some(7),
            weekly: Some(0),
            within: Some("2d".into()),
            ..Retention::default()
        };
        assert_eq!(
            r.forget_args(),
            ["--keep-daily", "7", "--keep-within", "2d"]
        );
        assert!(Retention::default().is_empty());
    }
}
