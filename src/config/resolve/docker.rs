//! Docker keys of a service: volume mode, helper image, and the containers
//! to stop during a backup.

use super::Ctx;
use super::service::ServiceCx;
use crate::config::VolumeMode;

/// The resolved Docker keys of one service.
pub(super) struct Docker {
    pub(super) volume_mode: VolumeMode,
    pub(super) helper_image: String,
    pub(super) stop_containers: Vec<String>,
    pub(super) stop_compose_project: Option<String>,
}

/// `volume_mode`, `docker_helper_image`, `stop_containers` and
/// `stop_compose_project`: service → profile (→ `[global]` for the image).
/// Stopping containers does not combine with a legacy `backup_script`.
pub(super) fn docker(v: &ServiceCx<'_>, has_script: bool, cx: &mut Ctx<'_>) -> Docker {
    let ServiceCx {
        name,
        scfg,
        pcfg,
        settings,
        ..
    } = *v;
    let docker_key = |k: &str| {
        if scfg.is_some_and(|c| match k {
            "volume_mode" => c.volume_mode.is_some(),
            "docker_helper_image" => c.docker_helper_image.is_some(),
            "stop_containers" => c.stop_containers.is_some(),
            _ => c.stop_compose_project.is_some(),
        }) {
            v.cfg_key(k)
        } else {
            format!("{}.config.{k}", v.pbase())
        }
    };
    let volume_mode = match scfg
        .and_then(|c| c.volume_mode.as_deref())
        .or_else(|| pcfg.and_then(|c| c.volume_mode.as_deref()))
        .map(VolumeMode::parse)
    {
        None => VolumeMode::Auto,
        Some(Ok(m)) => m,
        Some(Err(e)) => {
            cx.err(&docker_key("volume_mode"), format!("service `{name}`: {e}"));
            VolumeMode::Auto
        }
    };
    let helper_image = scfg
        .and_then(|c| c.docker_helper_image.clone())
        .or_else(|| pcfg.and_then(|c| c.docker_helper_image.clone()))
        .unwrap_or_else(|| settings.docker_helper_image.clone());
    if helper_image.trim().is_empty() {
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
    if has_script && (!stop_containers.is_empty() || stop_compose_project.is_some()) {
        cx.err(
            &docker_key(if stop_containers.is_empty() { "stop_compose_project" } else { "stop_containers" }),
            format!("service `{name}`: `stop_containers` / `stop_compose_project` do not work with a legacy `backup_script`; stop containers in the script, or replace it with `paths` / `volumes`"),
        );
    }
    Docker {
        volume_mode,
        helper_image,
        stop_containers,
        stop_compose_project,
    }
}
