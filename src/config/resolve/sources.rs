//! What a service backs up: `paths`, `volumes`, `excludes` and a legacy
//! `backup_script`.

use std::path::PathBuf;

use super::service::ServiceCx;
use super::{Ctx, expand_home};

/// The resolved sources of one service.
pub(super) struct Sources {
    pub(super) paths: Vec<PathBuf>,
    pub(super) volumes: Vec<String>,
    pub(super) excludes: Vec<String>,
    pub(super) backup_script: Option<String>,
    /// Whether `paths` lists anything (even if no entry resolved).
    pub(super) paths_written: bool,
}

/// `paths`, `volumes` and `excludes` (service → profile; `excludes` after
/// `[global] default_excludes`), then `backup_script`.
pub(super) fn sources(v: &ServiceCx<'_>, cx: &mut Ctx<'_>) -> Sources {
    let ServiceCx { scfg, pcfg, g, .. } = *v;
    let (paths_raw, ppath_key) = match (
        scfg.and_then(|c| c.paths.as_ref()),
        pcfg.and_then(|c| c.paths.as_ref()),
    ) {
        (Some(list), _) => (list.clone(), v.cfg_key("paths")),
        (None, Some(list)) => (list.clone(), format!("{}.config.paths", v.pbase())),
        (None, None) => (Vec::new(), v.cfg_key("paths")),
    };
    let paths = paths(v, &paths_raw, &ppath_key, cx);
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
    let backup_script = backup_script(v, cx);
    Sources {
        paths,
        volumes,
        excludes,
        backup_script,
        paths_written: !paths_raw.is_empty(),
    }
}

/// Each entry of `paths` made absolute: `~/` is the home, a relative path
/// is taken from `docker_base`.
fn paths(v: &ServiceCx<'_>, paths_raw: &[String], key: &str, cx: &mut Ctx<'_>) -> Vec<PathBuf> {
    let ServiceCx {
        name,
        settings,
        env,
        ..
    } = *v;
    let mut paths = Vec::new();
    for (i, p) in paths_raw.iter().enumerate() {
        if p.trim().is_empty() {
            cx.err(
                &format!("{key}.{i}"),
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
                &format!("{key}.{i}"),
                format!(
                    "service `{name}`: path `{p}` is relative, and relative paths are taken from `docker_base`, which is not set; set `[global] docker_base` or write an absolute path"
                ),
            );
        }
    }
    paths
}

/// `backup_script`: `config.backup_script`, then the bare key, of the
/// service and then of its profile.
fn backup_script(v: &ServiceCx<'_>, cx: &mut Ctx<'_>) -> Option<String> {
    let ServiceCx {
        name,
        s,
        spath,
        pr,
        scfg,
        pcfg,
        ..
    } = *v;
    let pbase = v.pbase();
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
    backup_script
}

/// A service must back up something: paths, volumes, a script or a dump.
pub(super) fn check_not_empty(
    v: &ServiceCx<'_>,
    sources: &Sources,
    dumps_written: bool,
    cx: &mut Ctx<'_>,
) {
    let ServiceCx {
        name,
        spath,
        named_profile,
        ..
    } = *v;
    if sources.paths.is_empty()
        && sources.volumes.is_empty()
        && sources.backup_script.is_none()
        && !sources.paths_written
        && !dumps_written
    {
        let pconfig = format!("{}.config", v.pbase());
        cx.missing(
            &[spath, &format!("{spath}.config"), named_profile, &pconfig],
            &format!("{spath}.config"),
            format!("service `{name}` has nothing to back up; set `[services.{name}.config] paths` (or `volumes`, or a legacy `backup_script`)"),
        );
    }
}
