//! `[global]`, `[metrics]` and `[web]`: the settings every service shares,
//! with their defaults.

use std::path::{Path, PathBuf};

use super::{
    Ctx, DEFAULT_CONNECT_TIMEOUT_SECONDS, DEFAULT_DOWNLOAD_BASE, DEFAULT_HELPER_IMAGE,
    DEFAULT_HOOK_TIMEOUT_SECONDS, DEFAULT_LOCK_WAIT_SECONDS, DEFAULT_LOG_MAX_FILES,
    DEFAULT_LOG_MAX_SIZE_MB, DEFAULT_LONG_RUNNING_MINUTES, DEFAULT_MAX_REMOVE_PERCENT,
    DEFAULT_RELEASE_API, DEFAULT_STALL_TIMEOUT_SECONDS, DEFAULT_TIMEOUT_SECONDS, LOG_LEVELS,
    check_cron, expand_home, parse_prune, parse_replication, valid_within, within_msg,
};
use crate::config::load::list;
use crate::config::paths::{from_config_dir, program_from_config_dir};
use crate::config::schema::GlobalRaw;
use crate::config::{Env, PasswordSource, Settings};

/// `[metrics.pushgateway]` and `[metrics.influxdb]`.
pub(super) fn metrics_settings(
    raw: Option<&crate::config::schema::MetricsRaw>,
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

pub(super) fn settings(g: &GlobalRaw, config_dir: &Path, env: &Env, cx: &mut Ctx<'_>) -> Settings {
    let abs = |p: &str| from_config_dir(p, config_dir, env);
    let password = password(g, config_dir, env, cx);
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
    let docker_base = g.docker_base.as_deref().map(abs);
    check_limits(g, cx);
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
        restic_binary: g
            .restic_binary
            .as_deref()
            .map(|b| program_from_config_dir(b, config_dir, env)),
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
            .unwrap_or_else(|| DEFAULT_HELPER_IMAGE.to_string()),
        destination_connect_timeout_seconds: g
            .destination_connect_timeout_seconds
            .unwrap_or(DEFAULT_CONNECT_TIMEOUT_SECONDS),
        destination_stall_timeout_seconds: g
            .destination_stall_timeout_seconds
            .unwrap_or(DEFAULT_STALL_TIMEOUT_SECONDS),
    }
}

/// `restic_password_file` or `restic_password_command`; by default the
/// `restic-password` file next to the configuration.
fn password(g: &GlobalRaw, config_dir: &Path, env: &Env, cx: &mut Ctx<'_>) -> PasswordSource {
    let abs = |p: &str| from_config_dir(p, config_dir, env);
    match (&g.restic_password_file, &g.restic_password_command) {
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
    }
}

/// The `[global]` numbers, schedules and policies that have a range.
fn check_limits(g: &GlobalRaw, cx: &mut Ctx<'_>) {
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
        if let Some(Err(e)) = v.as_deref().map(crate::config::duration::parse_age_limit) {
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
        cx.err("global.replication", e.to_string());
    }
    if let Some(p) = &g.prune
        && let Err(e) = parse_prune(p)
    {
        cx.err("global.prune", e.to_string());
    }
}

/// `[web]` with its defaults: listen on loopback, token and restores under
/// the state directory.
pub(super) fn web(
    w: Option<&crate::config::schema::WebRaw>,
    settings: &Settings,
    config_dir: &Path,
    env: &Env,
    cx: &mut Ctx<'_>,
) -> crate::config::Web {
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
    crate::config::Web {
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
