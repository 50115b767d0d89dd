//! `pre_backup_hooks` and `post_backup_hooks`: commands run around a
//! backup, with their working folder and limits.

use super::service::ServiceCx;
use super::{Ctx, expand_home};
use crate::config::Hook;
use crate::config::schema::{HookRaw, ServiceConfigRaw};

/// One hook list (`which`, read by `field`): service → profile.
pub(super) fn hooks(
    v: &ServiceCx<'_>,
    which: &str,
    field: fn(&ServiceConfigRaw) -> &Option<Vec<HookRaw>>,
    cx: &mut Ctx<'_>,
) -> Vec<Hook> {
    let ServiceCx {
        name,
        scfg,
        pcfg,
        settings,
        env,
        ..
    } = *v;
    let (list, base) = match (
        scfg.and_then(|c| field(c).as_ref()),
        pcfg.and_then(|c| field(c).as_ref()),
    ) {
        (Some(list), _) => (list.clone(), v.cfg_key(which)),
        (None, Some(list)) => (list.clone(), format!("{}.config.{which}", v.pbase())),
        (None, None) => (Vec::new(), v.cfg_key(which)),
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
            let wd = expand_home(w, env);
            match (&settings.docker_base, wd.is_absolute()) {
                (Some(b), false) => b.join(wd),
                (None, false) => {
                    cx.err(
                        &format!("{hpath}.working_dir"),
                        format!("service `{name}`: hook `{hname}`: `working_dir` `{w}` is relative, and relative paths are taken from `docker_base`, which is not set; set `[global] docker_base` or write an absolute path"),
                    );
                    wd
                }
                _ => wd,
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
}
