//! How a service's backups are checked: `verify_*`, `drill_sample_files`,
//! `max_age` and `verify_max_age`.

use super::service::ServiceCx;
use super::{Ctx, check_cron, pick};

/// `max_age` and `verify_max_age`: service → profile → global → default.
/// A global value that does not parse was reported with `[global]`.
pub(super) fn health_settings(
    v: &ServiceCx<'_>,
    cx: &mut Ctx<'_>,
) -> crate::config::HealthSettings {
    let ServiceCx {
        name,
        s,
        spath,
        pr,
        pp,
        g,
        ..
    } = *v;
    let mut h = crate::config::HealthSettings::default();
    let mut limit = |key: &str,
                     own: &Option<String>,
                     prof: Option<&Option<String>>,
                     global: &Option<String>| {
        let (v, path) = pick(own, prof, spath, pp, key);
        match v.map(|t| crate::config::duration::parse_age_limit(t)) {
            Some(Ok(l)) => Some(l),
            Some(Err(e)) => {
                cx.err(&path, format!("service `{name}`: `{key}`: {e}"));
                None
            }
            None => global
                .as_deref()
                .and_then(|t| crate::config::duration::parse_age_limit(t).ok()),
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
pub(super) fn verify_settings(
    v: &ServiceCx<'_>,
    cx: &mut Ctx<'_>,
) -> crate::config::VerifySettings {
    let ServiceCx { name, g, .. } = *v;
    let mut out = crate::config::VerifySettings::default();
    let (sched, path) = v.pick("verify_schedule", |r| &r.verify_schedule);
    if let Some(expr) = sched
        && let Err(e) = check_cron(expr)
    {
        cx.err(&path, format!("service `{name}`: `verify_schedule`: {e}"));
    }
    out.schedule = sched.or(g.verify_schedule.as_ref()).cloned();
    let (rot, path) = v.pick("verify_rotation", |r| &r.verify_rotation);
    if let Some(r) = rot
        && !(1..=256).contains(r)
    {
        cx.err(
            &path,
            format!("service `{name}`: `verify_rotation` must be between 1 and 256 (restic reads subset n/N of the packs), not {r}"),
        );
    }
    out.rotation = rot
        .or(g.verify_rotation.as_ref())
        .copied()
        .unwrap_or(out.rotation)
        .clamp(1, 256);
    let (files, path) = v.pick("drill_sample_files", |r| &r.drill_sample_files);
    if files == Some(&0) {
        cx.err(
            &path,
            format!("service `{name}`: `drill_sample_files` must be at least 1"),
        );
    }
    out.drill_sample_files = files
        .or(g.drill_sample_files.as_ref())
        .copied()
        .unwrap_or(out.drill_sample_files)
        .max(1);
    let (cmd, path) = v.pick("verify_command", |r| &r.verify_command);
    if cmd.is_some_and(|c| c.trim().is_empty()) {
        cx.err(&path, format!("service `{name}`: `verify_command` is empty; remove it or give a command such as `pg_restore --list`"));
    }
    out.command = cmd.cloned();
    out
}
