//! One service: its profile, then each key group in turn (see the sibling
//! modules), assembled into a [`Service`].
//!
//! The groups run in a fixed order, which is the order their messages had
//! when this was one function; `validate` sorts by position, so only
//! messages on the same key depend on it.

use std::collections::BTreeMap;

use super::{Ctx, STRATEGIES, docker, dumps, hooks, notifications, retention, schedule};
use super::{sources, targets, verify};
use crate::config::load::{RawConfig, list};
use crate::config::schema::{GlobalRaw, ServiceConfigRaw, ServiceRaw};
use crate::config::{Destination, Env, Service, Settings, did_you_mean};

/// What every service is resolved against.
pub(super) struct Shared<'a> {
    pub(super) raw: &'a RawConfig,
    pub(super) settings: &'a Settings,
    pub(super) destinations: &'a BTreeMap<String, Destination>,
    pub(super) env: &'a Env,
}

/// One service being resolved, handed to every key group: its table, its
/// profile's, and the paths that messages point at.
#[derive(Clone, Copy)]
pub(super) struct ServiceCx<'a> {
    pub(super) name: &'a str,
    pub(super) s: &'a ServiceRaw,
    /// `services.NAME` (or `services.N` in the array form).
    pub(super) spath: &'a str,
    /// The profile's table, when the profile is defined.
    pub(super) pr: Option<&'a ServiceRaw>,
    /// `profiles.NAME` of that profile.
    pub(super) pp: Option<&'a str>,
    /// The named profile's table even when it could not be parsed, for
    /// `missing`.
    pub(super) named_profile: &'a str,
    pub(super) scfg: Option<&'a ServiceConfigRaw>,
    pub(super) pcfg: Option<&'a ServiceConfigRaw>,
    pub(super) raw: &'a RawConfig,
    pub(super) g: &'a GlobalRaw,
    pub(super) settings: &'a Settings,
    pub(super) destinations: &'a BTreeMap<String, Destination>,
    pub(super) env: &'a Env,
}

impl<'a> ServiceCx<'a> {
    /// `key` from the service, else its profile, with the config path it
    /// was set at (the service's table when neither sets it).
    pub(super) fn pick<T>(
        &self,
        key: &str,
        field: impl Fn(&'a ServiceRaw) -> &'a Option<T>,
    ) -> (Option<&'a T>, String) {
        super::pick(field(self.s), self.pr.map(&field), self.spath, self.pp, key)
    }

    /// `services.NAME.config.KEY`.
    pub(super) fn cfg_key(&self, k: &str) -> String {
        format!("{}.config.{k}", self.spath)
    }

    /// The table an inherited value comes from: the profile, else the
    /// service.
    pub(super) fn pbase(&self) -> &str {
        self.pp.unwrap_or(self.spath)
    }
}

pub(super) fn service(
    sh: &Shared<'_>,
    name: &str,
    s: &ServiceRaw,
    spath: &str,
    cx: &mut Ctx<'_>,
) -> Option<Service> {
    let profile = profile(sh.raw, name, s, spath, cx);
    let ppath = profile.as_ref().map(|(n, _)| format!("profiles.{n}"));
    let named_profile = s
        .profile
        .as_ref()
        .map_or_else(|| spath.to_string(), |p| format!("profiles.{p}"));
    let pr = profile.as_ref().map(|(_, p)| *p);
    let v = ServiceCx {
        name,
        s,
        spath,
        pr,
        pp: ppath.as_deref(),
        named_profile: &named_profile,
        scfg: s.config.as_ref(),
        pcfg: pr.and_then(|p| p.config.as_ref()),
        raw: sh.raw,
        g: &sh.raw.global,
        settings: sh.settings,
        destinations: sh.destinations,
        env: sh.env,
    };

    let strategy = strategy(&v, cx);
    let targets = targets::targets(&v, cx);
    let schedule = schedule::schedule(&v, cx);
    let retention = retention::of_service(&v, cx);
    let (notify_on, notifiers) = notifications::of_service(&v, cx);
    let timeout_seconds = timeout(&v, cx);
    let sources = sources::sources(&v, cx);
    let pre_backup_hooks = hooks::hooks(&v, "pre_backup_hooks", |c| &c.pre_backup_hooks, cx);
    let post_backup_hooks = hooks::hooks(&v, "post_backup_hooks", |c| &c.post_backup_hooks, cx);
    let (dumps, dumps_written) = dumps::dumps(&v, cx);
    sources::check_not_empty(&v, &sources, dumps_written, cx);
    let replication = targets::replication(&v, targets.len(), cx);
    let prune = schedule::prune(&v, cx);
    let verify = verify::verify_settings(&v, cx);
    let health = verify::health_settings(&v, cx);
    let docker = docker::docker(&v, sources.backup_script.is_some(), cx);
    let tags = tags(&v, cx);

    Some(Service {
        name: name.to_string(),
        enabled: s.enabled.or(pr.and_then(|p| p.enabled)).unwrap_or(true),
        profile: s.profile.clone(),
        description: s
            .description
            .clone()
            .or_else(|| pr.and_then(|p| p.description.clone())),
        targets,
        schedule,
        strategy,
        retention,
        tags,
        timeout_seconds,
        notify_on,
        notifiers,
        paths: sources.paths,
        volumes: sources.volumes,
        excludes: sources.excludes,
        pre_backup_hooks,
        post_backup_hooks,
        backup_script: sources.backup_script,
        replication,
        prune,
        verify,
        health,
        dumps,
        volume_mode: docker.volume_mode,
        docker_helper_image: docker.helper_image,
        stop_containers: docker.stop_containers,
        stop_compose_project: docker.stop_compose_project,
        file: sh.raw.service_file(name),
        origins: BTreeMap::new(),
        labelled_by: Vec::new(),
    })
}

/// The service's profile and its name, when `profile` names one that is
/// defined; an undefined one is reported (a broken one was already).
fn profile<'a>(
    raw: &'a RawConfig,
    name: &str,
    s: &ServiceRaw,
    spath: &str,
    cx: &mut Ctx<'_>,
) -> Option<(String, &'a ServiceRaw)> {
    match &s.profile {
        Some(p) => match raw.profiles.get(p) {
            Some(prof) => Some((p.clone(), prof)),
            None if raw.broken_profiles.contains(p) => None,
            None => {
                let names: Vec<&str> = raw.profiles.keys().map(String::as_str).collect();
                let mut msg = format!("service `{name}` uses profile `{p}`, which is not defined");
                if let Some(hint) = did_you_mean(p, &names) {
                    msg.push_str(&hint);
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
    }
}

fn strategy(v: &ServiceCx<'_>, cx: &mut Ctx<'_>) -> String {
    let ServiceCx { name, .. } = *v;
    let (strategy, path) = v.pick("strategy", |r| &r.strategy);
    let strategy = strategy.cloned().unwrap_or_else(|| "generic".to_string());
    if !STRATEGIES.contains(&strategy.as_str()) {
        // `appwrite` and `immich` were translated by `config::legacy`.
        let hint = did_you_mean(&strategy, STRATEGIES)
            .unwrap_or_else(|| format!("; valid values are {}", list(STRATEGIES)));
        let msg = format!("service `{name}`: unknown strategy `{strategy}`{hint}");
        cx.err(&path, msg);
    }
    strategy
}

/// `timeout_seconds`: service → profile → `default_timeout_seconds`.
fn timeout(v: &ServiceCx<'_>, cx: &mut Ctx<'_>) -> u64 {
    let ServiceCx { name, .. } = *v;
    let (timeout, path) = v.pick("timeout_seconds", |r| &r.timeout_seconds);
    if timeout == Some(&0) {
        cx.err(
            &path,
            format!("service `{name}`: `timeout_seconds` must be greater than 0 (seconds a whole run may take)"),
        );
    }
    timeout
        .copied()
        .unwrap_or(v.settings.default_timeout_seconds)
}

/// `tags`: the service's list replaces the profile's.
fn tags(v: &ServiceCx<'_>, cx: &mut Ctx<'_>) -> Vec<String> {
    let ServiceCx { s, spath, pr, .. } = *v;
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
    tags
}
