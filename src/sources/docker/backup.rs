//! A service's Docker part of a run: resolving volumes and containers
//! before the snapshot ([`prepare`]) and streaming a volume into
//! `restic backup --stdin` ([`backup_volume_stream`]).

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{
    ContainerInfo, DockerClient, DockerError, VolumeMode, fallback_volume_path, readable_dir,
    stream_filename, volume_tag,
};
use crate::model::Failure;
use crate::restic::ErrorClass;

/// What a service needs from Docker for one run, resolved after its pre
/// hooks (and dumps) and before the snapshot.
pub struct ServiceDocker {
    /// `None` when the engine could not be reached and the volumes were
    /// taken from their default folders instead (see `warnings`).
    pub client: Option<DockerClient>,
    /// Volume folders backed up with the service's paths (direct mode).
    pub direct: Vec<(String, PathBuf)>,
    /// Volumes streamed through a helper container (stream mode).
    pub stream: Vec<String>,
    /// Containers to stop for the primary snapshot (running or not now;
    /// only running ones are stopped).
    pub containers: Vec<ContainerInfo>,
    pub image: String,
    /// Things the user should hear about (fallbacks, empty compose project).
    pub warnings: Vec<String>,
}

impl ServiceDocker {
    /// Whether the service stops containers at all.
    pub fn stops_containers(&self) -> bool {
        !self.containers.is_empty()
    }
}

/// Resolves a service's volumes and containers through the Engine API.
/// Returns `Ok(None)` when the service uses no Docker feature.
pub async fn prepare(
    svc: &crate::config::Service,
    docker_base: Option<&Path>,
) -> Result<Option<ServiceDocker>, DockerError> {
    let wants_containers = !svc.stop_containers.is_empty() || svc.stop_compose_project.is_some();
    if svc.volumes.is_empty() && !wants_containers {
        return Ok(None);
    }
    let mut out = ServiceDocker {
        client: None,
        direct: Vec::new(),
        stream: Vec::new(),
        containers: Vec::new(),
        image: svc.docker_helper_image.clone(),
        warnings: Vec::new(),
    };
    let client = match DockerClient::connect().await {
        Ok(c) => c,
        Err(e) => {
            // Without the API: containers cannot be stopped and volumes
            // cannot be streamed, but direct volume folders can still be
            // read where Docker keeps them by default.
            if wants_containers || svc.volume_mode == VolumeMode::Stream {
                return Err(e);
            }
            for v in &svc.volumes {
                let p = fallback_volume_path(docker_base, v);
                if !readable_dir(&p) {
                    return Err(e);
                }
                out.direct.push((v.clone(), p));
            }
            out.warnings.push(format!(
                "{e}; backed up the volumes from their default folders instead ({})",
                out.direct
                    .iter()
                    .map(|(_, p)| format!("`{}`", p.display()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            return Ok(Some(out));
        }
    };
    // A service from Docker labels was read when the command started; a
    // container of it that is gone since is worth a word even when its
    // volumes are still there to back up.
    for name in &svc.labelled_by {
        if let Err(DockerError::ContainerMissing { .. }) = client.container(name).await {
            out.warnings.push(format!(
                "container `{name}`, whose labels define this service, no longer exists (it was there when the labels were read)"
            ));
        }
    }
    for v in &svc.volumes {
        let info = client.volume(v).await?;
        let readable = client.is_local() && readable_dir(&info.mountpoint);
        match svc.volume_mode {
            VolumeMode::Stream => out.stream.push(v.clone()),
            VolumeMode::Direct if !readable => {
                return Err(DockerError::Api {
                    what: format!("Docker volume `{v}`"),
                    detail: format!(
                        "its folder `{}` cannot be read from this host (`volume_mode = \"direct\"`); run as root, or set `volume_mode = \"stream\"` (or \"auto\")",
                        info.mountpoint.display()
                    ),
                });
            }
            VolumeMode::Auto if !readable => out.stream.push(v.clone()),
            _ => out.direct.push((v.clone(), info.mountpoint)),
        }
    }
    for name in &svc.stop_containers {
        let c = client.container(name).await?;
        if !out.containers.iter().any(|x| x.id == c.id) {
            out.containers.push(c);
        }
    }
    if let Some(project) = &svc.stop_compose_project {
        let list = client.compose_project(project).await?;
        if list.is_empty() {
            out.warnings.push(format!(
                "no container belongs to compose project `{project}` (label `com.docker.compose.project`); nothing was stopped"
            ));
        }
        for c in list {
            if !out.containers.iter().any(|x| x.id == c.id) {
                out.containers.push(c);
            }
        }
    }
    out.client = Some(client);
    Ok(Some(out))
}

/// One volume to stream into a repository: with `image` as the helper
/// container, as this `host`, tagged `tags` (and `volume:<name>`).
#[derive(Debug, Clone, Copy)]
pub struct StreamBackup<'a> {
    pub volume: &'a str,
    pub image: &'a str,
    pub host: &'a str,
    pub tags: &'a [String],
    pub timeout: Duration,
}

/// `restic backup --stdin` of one volume streamed by a helper container,
/// tagged `volume:<name>` (plus `tags`), stored as `volumes/<name>.tar`.
///
/// A tar that fails halfway must not leave a snapshot that looks good:
/// restic is interrupted with SIGINT while its stdin is still open (restic
/// then saves nothing), and only then is stdin closed (restic 0.17+ waits
/// for it: `dump::stop_receiver`). Timeouts and a shutdown stop restic the
/// same way.
pub async fn backup_volume_stream(
    client: &DockerClient,
    restic: &crate::restic::Restic,
    repo: &crate::restic::Repository,
    what: &StreamBackup<'_>,
    shutdown: &crate::process::Shutdown,
) -> Result<crate::restic::ops::BackupResult, Failure> {
    use crate::process::Ended;
    use crate::restic::ops::{BackupResult, failure};

    let StreamBackup {
        volume,
        image,
        host,
        tags,
        timeout,
    } = *what;
    let mut tags = tags.to_vec();
    tags.push(volume_tag(volume));
    let call =
        crate::restic::ops::backup_stdin(restic, repo, host, &tags, &stream_filename(volume));
    if let Some(why) = restic
        .version
        .stdin_filename_problem(&stream_filename(volume))
    {
        return Err(Failure::new(
            ErrorClass::Other,
            format!("volume `{volume}` was not backed up: {why}"),
        ));
    }
    // Bounded by `timeout` below.
    let mut child = call.spec.spawn().map_err(Failure::from)?;
    let Some(mut stdin) = child.take_stdin() else {
        let ended = child.stop().await;
        let _ = child.output(ended).await;
        return Err(Failure::new(
            ErrorClass::Other,
            "restic's stdin could not be opened",
        ));
    };
    let deadline = tokio::time::Instant::now().checked_add(timeout);
    let fed = crate::process::bounded(
        client.volume_to_tar(volume, image, &mut stdin),
        deadline,
        shutdown,
    )
    .await;
    let never = crate::process::Shutdown::never();
    let (ended, docker_err) = match fed {
        Ok(Ok(_)) => {
            drop(stdin);
            match crate::process::bounded(child.wait(&never), deadline, shutdown).await {
                Ok(e) => (e, None),
                Err(Ended::TimedOut) => (
                    child.stop().await,
                    Some(Failure::new(
                        ErrorClass::Timeout,
                        format!(
                            "restic ran out of time on `{}` and was stopped",
                            repo.display
                        ),
                    )),
                ),
                Err(why) => {
                    let _ = child.stop().await;
                    (why, None)
                }
            }
        }
        Ok(Err(e)) => {
            let ended = crate::sources::dump::stop_receiver(&mut child, Some(stdin)).await;
            (
                ended,
                Some(Failure::new(
                    e.class(),
                    format!("volume `{volume}` was not backed up: {e}"),
                )),
            )
        }
        Err(why) => {
            let _ = crate::sources::dump::stop_receiver(&mut child, Some(stdin)).await;
            (why, None)
        }
    };
    let out = child.output(ended).await;
    if let Some(mut e) = docker_err {
        e.stderr = out.stderr;
        return Err(e);
    }
    let warning = out.ended == Ended::Exited(3);
    if !warning && let Some(e) = failure(&out, repo) {
        return Err(e);
    }
    let mut summary = crate::restic::output::backup_summary(&out.stdout).ok_or_else(|| {
        Failure::new(
            ErrorClass::Other,
            format!(
                "restic finished on `{}` but printed no backup summary for volume `{volume}`",
                repo.display
            ),
        )
        .with_stderr(out.stderr.clone())
    })?;
    if let Some(id) = &summary.snapshot_id {
        summary.snapshot_id =
            Some(crate::restic::ops::full_snapshot_id(restic, repo, id, shutdown).await);
    }
    Ok(BackupResult {
        warning,
        summary,
        stderr: out.stderr,
        duration: out.duration,
    })
}
