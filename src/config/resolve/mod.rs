//! Global → profile → service resolution and every cross-field check.
//!
//! All defaults are defined here, once. Each check that fails adds a
//! [`Diagnostic`] pointing at the key responsible (the service's own key, or
//! the profile's when the value was inherited), and checking goes on, so one
//! `validate` shows every problem.
//!
//! [`resolve`] reads `[global]` (`global.rs`), the destinations
//! (`destinations.rs`) and then each service (`service.rs`), which hands a
//! small `ServiceCx` to one function per key group: targets and
//! replication, schedule and prune, retention, notifications, sources,
//! hooks, dumps, verify and health, Docker.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use super::load::{Locator, RawConfig};
use super::{Config, Diagnostic, Env, Prune, Replication, ValueError};

mod destinations;
mod docker;
mod dumps;
mod global;
mod hooks;
mod notifications;
mod retention;
mod schedule;
mod service;
mod sources;
mod targets;
mod verify;

pub(super) use destinations::expand_destination;

pub const DEFAULT_TIMEOUT_SECONDS: u64 = 3600;
pub const DEFAULT_LONG_RUNNING_MINUTES: u64 = 120;
pub const DEFAULT_HOOK_TIMEOUT_SECONDS: u64 = 300;
pub const DEFAULT_LOG_MAX_FILES: u32 = 30;
pub const DEFAULT_LOG_MAX_SIZE_MB: u64 = 10;
pub const DEFAULT_LOCK_WAIT_SECONDS: u64 = 300;
pub const DEFAULT_MAX_REMOVE_PERCENT: u32 = 50;
/// restic ≥ 0.17 retries a dead destination for about 15 minutes; this
/// check answers in seconds.
pub const DEFAULT_CONNECT_TIMEOUT_SECONDS: u64 = 15;
/// How long restic may retry without progress before it is stopped.
pub const DEFAULT_STALL_TIMEOUT_SECONDS: u64 = 120;
/// Where `setup-restic` learns the latest restic release.
pub const DEFAULT_RELEASE_API: &str = "https://api.github.com";
/// Where `setup-restic` downloads restic releases from.
pub const DEFAULT_DOWNLOAD_BASE: &str = "https://github.com/restic/restic/releases/download";
pub const DEFAULT_NOTIFY_ON: &[&str] = &["failure", "warning"];
/// The helper image used to stream volumes when none is configured. It
/// needs `tar` (busybox's is enough). Hosts without registry access must
/// set `docker_helper_image` to an image that is already present.
pub const DEFAULT_HELPER_IMAGE: &str = "busybox:stable";
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
pub fn check_cron(expr: &str) -> Result<(), ValueError> {
    let count = expr.split_whitespace().count();
    if count != 5 {
        return Err(ValueError::CronFieldCount {
            expr: expr.to_string(),
            count,
        });
    }
    if croner::Cron::from_str(expr).is_ok() {
        return super::checks::never_fires(expr).map_or(Ok(()), Err);
    }
    // croner says only "number out of bounds": find the field by checking
    // each one alone, the others `*`.
    let parts: Vec<&str> = expr.split_whitespace().collect();
    for (i, &(field, range)) in CRON_FIELDS.iter().enumerate() {
        let mut probe = ["*"; 5];
        probe[i] = parts[i];
        if croner::Cron::from_str(&probe.join(" ")).is_err() {
            return Err(ValueError::CronField {
                expr: expr.to_string(),
                field,
                text: parts[i].to_string(),
                allowed: range,
            });
        }
    }
    Err(ValueError::Cron(expr.to_string()))
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

    let settings = global::settings(g, &config_dir, env, &mut cx);
    let destinations =
        destinations::destinations(&raw.destinations, &config_dir, &settings, env, &mut cx);
    notifications::check_notifications(&raw, &mut cx);
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

    let shared = service::Shared {
        raw: &raw,
        settings: &settings,
        destinations: &destinations,
        env,
    };
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
        if let Some(svc) = service::service(&shared, name, s, path, &mut cx) {
            services.push(svc);
        }
    }

    let metrics = global::metrics_settings(raw.metrics.as_ref(), &config_dir, env, &mut cx);
    let web = global::web(raw.web.as_ref(), &settings, &config_dir, env, &mut cx);
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
            warnings: Vec::new(),
            files: raw.files.clone(),
            discovery: super::labels::DiscoveryReport::default(),
        })
    } else {
        cx.errors.sort_by_key(|d| (d.line, d.column));
        Err(cx.errors)
    }
}

/// Parses `replication`.
pub fn parse_replication(v: &str) -> Result<Replication, ValueError> {
    match v {
        "parallel" => Ok(Replication::Parallel),
        "copy" => Ok(Replication::Copy),
        other => Err(ValueError::Replication(other.to_string())),
    }
}

/// Parses `prune`.
pub fn parse_prune(v: &str) -> Result<Prune, ValueError> {
    match v {
        "always" => Ok(Prune::Always),
        "never" => Ok(Prune::Never),
        expr => check_cron(expr)
            .map(|()| Prune::Schedule(expr.to_string()))
            .map_err(|e| ValueError::Prune(Box::new(e))),
    }
}

fn within_msg(w: &str) -> String {
    format!(
        "`retention_within` value `{w}` is not a restic duration; use numbers with y, m, d, h, e.g. `1y6m` or `14d`"
    )
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Retention;

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
