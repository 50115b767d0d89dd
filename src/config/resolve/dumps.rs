//! `dumps`: database dumps streamed into restic, checked by
//! [`config::dump`](crate::config::dump).

use std::path::Path;

use super::Ctx;
use super::service::ServiceCx;
use crate::config::dump::Dump;
use crate::config::paths::from_config_dir;

/// `dumps` (service → profile), and whether any was written.
pub(super) fn dumps(v: &ServiceCx<'_>, cx: &mut Ctx<'_>) -> (Vec<Dump>, bool) {
    let ServiceCx {
        name,
        scfg,
        pcfg,
        raw,
        settings,
        env,
        ..
    } = *v;
    let (dumps_raw, dumps_key) = match (
        scfg.and_then(|c| c.dumps.as_ref()),
        pcfg.and_then(|c| c.dumps.as_ref()),
    ) {
        (Some(list), _) => (list.clone(), v.cfg_key("dumps")),
        (None, Some(list)) => (list.clone(), format!("{}.config.dumps", v.pbase())),
        (None, None) => (Vec::new(), v.cfg_key("dumps")),
    };
    // A dump's `password_file` follows the configuration folder rule, like
    // every other password file; its sqlite `path` is service data.
    let mut dumps_raw = dumps_raw;
    let config_dir = raw.file.parent().unwrap_or(Path::new("."));
    for d in &mut dumps_raw {
        if let Some(p) = d.password_file.as_mut() {
            *p = from_config_dir(p, config_dir, env)
                .to_string_lossy()
                .into_owned();
        }
    }
    let (dumps, dump_errors) = crate::config::dump::resolve(
        name,
        &dumps_raw,
        &dumps_key,
        settings.docker_base.as_deref(),
        env,
    );
    for (path, msg) in dump_errors {
        cx.err(&path, msg);
    }
    (dumps, !dumps_raw.is_empty())
}
