//! `[destinations.NAME]`: type, the keys each type takes, network limits
//! and file paths.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use super::retention::destination_retention;
use super::{Ctx, valid_name, valid_within, within_msg};
use crate::config::load::list;
use crate::config::paths::{from_config_dir, program_from_config_dir};
use crate::config::schema::{DESTINATION_TYPES, DestinationRaw};
use crate::config::{Destination, Env, Settings, did_you_mean};

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

pub(super) fn destinations(
    raw: &BTreeMap<String, DestinationRaw>,
    config_dir: &Path,
    settings: &Settings,
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
            msg.push_str(&did_you_mean(&kind, DESTINATION_TYPES).unwrap_or_default());
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
            "local" => need(cx, has_url || d.path.is_some(), "`path`"),
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
        let connect_timeout = network_limit(
            &kind,
            d.connect_timeout_seconds,
            settings.destination_connect_timeout_seconds,
        );
        let stall_timeout = network_limit(
            &kind,
            d.stall_timeout_seconds,
            settings.destination_stall_timeout_seconds,
        );
        out.insert(
            name.clone(),
            Destination {
                name: name.clone(),
                kind,
                description: d.description.clone(),
                retention: destination_retention(d),
                connect_timeout,
                stall_timeout,
                raw: expand_destination(d, config_dir, env),
            },
        );
    }
    out
}

/// A destination's connect or stall limit: its own value, else the global
/// one; 0 switches it off, and local folders have none.
fn network_limit(kind: &str, own: Option<u64>, global: u64) -> Option<Duration> {
    let secs = own.unwrap_or(global);
    (kind != "local" && secs > 0).then(|| Duration::from_secs(secs))
}

/// A destination's file paths after the one rule (`~/` is the home, a
/// relative path is taken from the configuration file's folder). A local
/// repository's `path` or `url` follows it too; an sftp `path` is the
/// server's, so it is left as written.
pub(in crate::config) fn expand_destination(
    d: &DestinationRaw,
    config_dir: &Path,
    env: &Env,
) -> DestinationRaw {
    let mut d = d.clone();
    if d.kind.as_deref() == Some("local") {
        if let Some(p) = d.path.as_mut() {
            *p = from_config_dir(p, config_dir, env)
                .to_string_lossy()
                .into_owned();
        }
        if let Some(u) = d.url.as_mut().filter(|u| !u.trim().is_empty()) {
            let p = u.strip_prefix("local:").unwrap_or(u);
            *u = from_config_dir(p, config_dir, env)
                .to_string_lossy()
                .into_owned();
        }
    }
    if let Some(b) = d.rclone_binary.as_mut() {
        *b = program_from_config_dir(b, config_dir, env)
            .to_string_lossy()
            .into_owned();
    }
    for f in [
        &mut d.identity_file,
        &mut d.known_hosts_file,
        &mut d.access_key_id_file,
        &mut d.secret_access_key_file,
        &mut d.account_id_file,
        &mut d.account_key_file,
        &mut d.password_file,
        &mut d.repository_password_file,
    ] {
        if let Some(v) = f.as_mut() {
            *v = from_config_dir(v, config_dir, env)
                .to_string_lossy()
                .into_owned();
        }
    }
    d
}
