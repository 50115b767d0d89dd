//! Docker volumes and containers through the Engine API (bollard), never by
//! parsing `docker` output.
//!
//! What a run needs from Docker: where a named volume's files are (its
//! `Mountpoint`), which containers to stop for a consistent snapshot, and a
//! way to stop them and start *exactly those* again whatever happens. When
//! the host cannot read a volume's files (Docker Desktop's VM, rootless
//! Docker, a remote `DOCKER_HOST`, a user in the `docker` group who cannot
//! read `/var/lib/docker`), a short-lived helper container streams the
//! volume as an uncompressed tar (see [`DockerClient::volume_to_tar`]).
//!
//! The restore side ([`restore_volume`], used by `restore --volume`) uses
//! the same pieces: [`DockerClient::containers_using_volume`],
//! [`DockerClient::stop`] / [`StoppedContainers::start`], and
//! [`DockerClient::tar_to_volume`]. Submodules: `backup` (a run's Docker
//! part), `restore` (volumes back from snapshots).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::errors::Error as BollardError;
use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{
    AttachContainerOptionsBuilder, CreateContainerOptionsBuilder, CreateImageOptionsBuilder,
    ListContainersOptionsBuilder, ListVolumesOptions, RemoveContainerOptionsBuilder,
    StopContainerOptionsBuilder,
};
use futures_util::StreamExt;
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::restic::ErrorClass;

mod backup;
pub mod discover;
mod restore;

pub use backup::{ServiceDocker, StreamBackup, backup_volume_stream, prepare};
pub use restore::{
    VolumeInto, VolumeRestore, restore_volume, restore_volume_direct, restore_volume_stream,
};

/// Where Docker keeps named volumes on a standard Linux host: the fallback
/// when the Engine API cannot be reached.
pub const DOCKER_VOLUMES: &str = "/var/lib/docker/volumes";

/// The label every helper container carries, so a leftover one (the
/// manager was killed with SIGKILL) can be found: `docker ps -a --filter
/// label=restic-manager.helper`.
pub const HELPER_LABEL: &str = "restic-manager.helper";

/// Seconds Docker gives a container to stop before it kills it.
pub const STOP_TIMEOUT_SECONDS: i32 = 30;

pub use crate::config::VolumeMode;

/// The path a streamed volume has inside its snapshot (restic shows it
/// with a leading `/`).
pub fn stream_filename(volume: &str) -> String {
    format!("volumes/{volume}.tar")
}

/// The tag of a streamed volume's snapshot.
pub fn volume_tag(volume: &str) -> String {
    format!("volume:{volume}")
}

/// In a direct-mode file snapshot, the path that holds `volume`'s files
/// (the mountpoint at backup time, `…/<volume>/_data`), found among the
/// snapshot's `paths`.
pub fn volume_path_in_snapshot<'a>(paths: &'a [String], volume: &str) -> Option<&'a str> {
    let suffix = format!("/{volume}/_data");
    paths
        .iter()
        .map(String::as_str)
        .find(|p| p.trim_end_matches('/').ends_with(&suffix))
}

/// A Docker failure, with the object it concerns.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DockerError {
    #[error(
        "the Docker engine at `{host}` cannot be reached ({detail}); start Docker (`systemctl start docker`) or fix `DOCKER_HOST`"
    )]
    Unavailable { host: String, detail: String },
    #[error(
        "permission denied on the Docker socket `{host}`; run as root or add this user to the `docker` group (`usermod -aG docker USER`, then log in again)"
    )]
    PermissionDenied { host: String },
    #[error("Docker volume `{name}` does not exist; existing volumes: {}", list_or_none(.existing))]
    VolumeMissing { name: String, existing: Vec<String> },
    #[error("container `{name}` does not exist; existing containers: {}", list_or_none(.existing))]
    ContainerMissing { name: String, existing: Vec<String> },
    #[error(
        "helper image `{image}` is not on this host and could not be pulled ({detail}); set `docker_helper_image` to a local image that has `tar` (see `docker images`)"
    )]
    HelperImage { image: String, detail: String },
    #[error("{what}: {detail}")]
    Api { what: String, detail: String },
}

fn list_or_none(v: &[String]) -> String {
    if v.is_empty() {
        "none".into()
    } else {
        v.iter()
            .map(|n| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl DockerError {
    /// The class recorded in history and `--json`.
    pub fn class(&self) -> ErrorClass {
        match self {
            DockerError::Unavailable { .. } => ErrorClass::DockerUnavailable,
            DockerError::PermissionDenied { .. } => ErrorClass::PermissionDenied,
            DockerError::VolumeMissing { .. } => ErrorClass::SourceMissing,
            DockerError::ContainerMissing { .. } => ErrorClass::ContainerMissing,
            DockerError::HelperImage { .. } | DockerError::Api { .. } => ErrorClass::DockerFailed,
        }
    }
}

/// The deepest `std::io::Error` behind a bollard error, if any.
fn io_kind(e: &BollardError) -> Option<std::io::ErrorKind> {
    // `IOError` is `#[error(transparent)]`: its `source()` skips the
    // io::Error itself.
    if let BollardError::IOError { err } = e {
        return Some(err.kind());
    }
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    let mut kind = None;
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            kind = Some(io.kind());
        }
        cur = err.source();
    }
    kind
}

/// Maps a bollard error on `what` to ours: connection problems become
/// `Unavailable` / `PermissionDenied`, the rest keep Docker's message.
fn api_error(host: &str, what: impl Into<String>, e: &BollardError) -> DockerError {
    use std::io::ErrorKind;
    match (e, io_kind(e)) {
        (_, Some(ErrorKind::PermissionDenied)) => DockerError::PermissionDenied {
            host: host.to_string(),
        },
        (BollardError::DockerResponseServerError { message, .. }, _) => DockerError::Api {
            what: what.into(),
            detail: message.clone(),
        },
        (
            BollardError::SocketNotFoundError(_)
            | BollardError::HyperLegacyError { .. }
            | BollardError::RequestTimeoutError,
            _,
        )
        | (
            _,
            Some(
                ErrorKind::NotFound
                | ErrorKind::ConnectionRefused
                | ErrorKind::ConnectionReset
                | ErrorKind::TimedOut,
            ),
        ) => DockerError::Unavailable {
            host: host.to_string(),
            detail: root_cause(e),
        },
        _ => DockerError::Api {
            what: what.into(),
            detail: root_cause(e),
        },
    }
}

fn root_cause(e: &BollardError) -> String {
    let mut cur: &(dyn std::error::Error + 'static) = e;
    while let Some(s) = cur.source() {
        cur = s;
    }
    cur.to_string()
}

fn is_not_found(e: &BollardError) -> bool {
    matches!(
        e,
        BollardError::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

/// A container as the manager sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContainerInfo {
    pub id: String,
    /// Without Docker's leading `/`.
    pub name: String,
    pub running: bool,
}

/// A volume resolved through the API.
#[derive(Debug, Clone, Serialize)]
pub struct VolumeInfo {
    pub name: String,
    pub mountpoint: PathBuf,
}

/// Containers the manager stopped (or is stopping: `true`) and has not
/// started again, across all services, with the client that stopped them:
/// the "second signal, exit now" path starts them before the process exits
/// (see [`restart_registered`]).
static STOPPED: Mutex<Vec<(DockerClient, String, bool)>> = Mutex::new(Vec::new());

/// Before asking Docker to stop `id`.
fn register(client: &DockerClient, id: &str) {
    if let Ok(mut s) = STOPPED.lock() {
        s.push((client.clone(), id.to_string(), true));
    }
}

/// Docker has stopped `id`.
fn mark_stopped(client: &DockerClient, id: &str) {
    if let Ok(mut s) = STOPPED.lock() {
        for e in s
            .iter_mut()
            .filter(|e| e.0.host == client.host && e.1 == id)
        {
            e.2 = false;
        }
    }
}

/// Whether `id` is registered, and whether its stop is still in progress.
fn registered(client: &DockerClient, id: &str) -> Option<bool> {
    STOPPED.lock().ok().and_then(|s| {
        s.iter()
            .find(|e| e.0.host == client.host && e.1 == id)
            .map(|e| e.2)
    })
}

/// `id` runs again (or was never stopped).
fn unregister(client: &DockerClient, id: &str) {
    if let Ok(mut s) = STOPPED.lock() {
        s.retain(|(c, i, _)| !(c.host == client.host && i == id));
    }
}

/// Starts every container this process stopped and has not started yet.
/// For the exit path after a second SIGINT/SIGTERM; gives up after
/// `limit`. A container whose stop is still in progress (Docker gives it
/// up to [`STOP_TIMEOUT_SECONDS`]) is first waited for: starting it now
/// would be undone by that stop. Returns the ids it could not start.
pub async fn restart_registered(limit: Duration) -> Vec<String> {
    let pending: Vec<(DockerClient, String, bool)> =
        STOPPED.lock().map(|s| s.clone()).unwrap_or_default();
    let work = async {
        for (client, id, _) in &pending {
            // Until the stop of ours has ended: the run itself may start
            // the container meanwhile (then it is no longer registered).
            while let Some(true) = registered(client, id) {
                let running = client
                    .api
                    .inspect_container(id, None)
                    .await
                    .ok()
                    .and_then(|c| c.state)
                    .and_then(|s| s.running);
                if running != Some(true) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            if registered(client, id).is_some()
                && client.api.start_container(id, None).await.is_ok()
            {
                unregister(client, id);
            }
        }
    };
    let _ = tokio::time::timeout(limit, work).await;
    STOPPED
        .lock()
        .map(|s| s.iter().map(|(_, i, _)| i.clone()).collect())
        .unwrap_or_default()
}

/// The engine named by `DOCKER_HOST` (default: the local socket).
#[derive(Clone)]
pub struct DockerClient {
    api: Docker,
    host: String,
}

impl std::fmt::Debug for DockerClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DockerClient")
            .field("host", &self.host)
            .finish_non_exhaustive()
    }
}

/// The engine address `connect` uses: `DOCKER_HOST` or the default socket.
pub fn docker_host() -> String {
    std::env::var("DOCKER_HOST")
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unix:///var/run/docker.sock".to_string())
}

impl DockerClient {
    /// Connects to `DOCKER_HOST` (or the local socket) and agrees on an API
    /// version with the engine, which also proves it answers.
    pub async fn connect() -> Result<DockerClient, DockerError> {
        let host = docker_host();
        let api = Docker::connect_with_host(&host).map_err(|e| DockerError::Unavailable {
            host: host.clone(),
            detail: root_cause(&e),
        })?;
        // Engines older than bollard's default API version refuse every
        // request ("client version is too new"); ask which one they speak.
        let api = api
            .negotiate_version()
            .await
            .map_err(|e| api_error(&host, "asking the Docker engine for its version", &e))?;
        Ok(DockerClient { api, host })
    }

    /// The engine address, for messages.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Whether the engine runs on this machine (a unix socket or a loopback
    /// TCP address), so that its mountpoints are paths on this host.
    pub fn is_local(&self) -> bool {
        let h = self.host.as_str();
        h.starts_with("unix://")
            || [
                "tcp://127.",
                "tcp://localhost",
                "tcp://[::1]",
                "http://127.",
                "http://localhost",
            ]
            .iter()
            .any(|p| h.starts_with(p))
    }

    /// Names of every volume, sorted.
    pub async fn volume_names(&self) -> Result<Vec<String>, DockerError> {
        let r = self
            .api
            .list_volumes(None::<ListVolumesOptions>)
            .await
            .map_err(|e| api_error(&self.host, "listing Docker volumes", &e))?;
        let mut names: Vec<String> = r
            .volumes
            .unwrap_or_default()
            .into_iter()
            .map(|v| v.name)
            .collect();
        names.sort();
        Ok(names)
    }

    /// Inspects a volume; a missing one is [`DockerError::VolumeMissing`]
    /// listing the volumes that exist.
    pub async fn volume(&self, name: &str) -> Result<VolumeInfo, DockerError> {
        match self.api.inspect_volume(name).await {
            Ok(v) => Ok(VolumeInfo {
                name: v.name,
                mountpoint: PathBuf::from(v.mountpoint),
            }),
            Err(e) if is_not_found(&e) => Err(DockerError::VolumeMissing {
                name: name.to_string(),
                existing: self.volume_names().await.unwrap_or_default(),
            }),
            Err(e) => Err(api_error(
                &self.host,
                format!("inspecting Docker volume `{name}`"),
                &e,
            )),
        }
    }

    /// Creates a volume (no-op when it exists), e.g. to restore into.
    pub async fn create_volume(&self, name: &str) -> Result<VolumeInfo, DockerError> {
        let body = bollard::models::VolumeCreateRequest {
            name: Some(name.to_string()),
            ..Default::default()
        };
        self.api
            .create_volume(body)
            .await
            .map(|v| VolumeInfo {
                name: v.name,
                mountpoint: PathBuf::from(v.mountpoint),
            })
            .map_err(|e| api_error(&self.host, format!("creating Docker volume `{name}`"), &e))
    }

    async fn list(
        &self,
        all: bool,
        filters: HashMap<&str, Vec<&str>>,
    ) -> Result<Vec<ContainerInfo>, DockerError> {
        let mut b = ListContainersOptionsBuilder::new().all(all);
        if !filters.is_empty() {
            b = b.filters(&filters);
        }
        let list = self
            .api
            .list_containers(Some(b.build()))
            .await
            .map_err(|e| api_error(&self.host, "listing containers", &e))?;
        let mut out: Vec<ContainerInfo> = list
            .into_iter()
            .map(|c| ContainerInfo {
                id: c.id.unwrap_or_default(),
                name: c
                    .names
                    .and_then(|n| n.into_iter().next())
                    .map(|n| n.trim_start_matches('/').to_string())
                    .unwrap_or_default(),
                running: c
                    .state
                    .is_some_and(|s| s == bollard::models::ContainerSummaryStateEnum::RUNNING),
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// One container by name or id; a missing one is
    /// [`DockerError::ContainerMissing`] listing the containers that exist.
    pub async fn container(&self, name: &str) -> Result<ContainerInfo, DockerError> {
        match self.api.inspect_container(name, None).await {
            Ok(c) => Ok(ContainerInfo {
                id: c.id.unwrap_or_else(|| name.to_string()),
                name: c.name.map_or_else(
                    || name.to_string(),
                    |n| n.trim_start_matches('/').to_string(),
                ),
                running: c.state.and_then(|s| s.running).unwrap_or(false),
            }),
            Err(e) if is_not_found(&e) => Err(DockerError::ContainerMissing {
                name: name.to_string(),
                existing: self
                    .list(true, HashMap::new())
                    .await
                    .map(|l| l.into_iter().map(|c| c.name).collect())
                    .unwrap_or_default(),
            }),
            Err(e) => Err(api_error(
                &self.host,
                format!("inspecting container `{name}`"),
                &e,
            )),
        }
    }

    /// The containers of a compose project (label
    /// `com.docker.compose.project`), running or not.
    pub async fn compose_project(&self, project: &str) -> Result<Vec<ContainerInfo>, DockerError> {
        let label = format!("com.docker.compose.project={project}");
        self.list(true, HashMap::from([("label", vec![label.as_str()])]))
            .await
    }

    /// Every container (running or not) that mounts `volume`. Helper
    /// containers of this tool are left out.
    pub async fn containers_using_volume(
        &self,
        volume: &str,
    ) -> Result<Vec<ContainerInfo>, DockerError> {
        let all = self
            .list(true, HashMap::from([("volume", vec![volume])]))
            .await?;
        let helpers: Vec<String> = self
            .list(true, HashMap::from([("label", vec![HELPER_LABEL])]))
            .await?
            .into_iter()
            .map(|c| c.id)
            .collect();
        Ok(all
            .into_iter()
            .filter(|c| !helpers.contains(&c.id))
            .collect())
    }

    /// Stops the ones among `containers` that are running now (in order;
    /// `running` is looked up again, not taken from the argument) and returns a
    /// guard that starts exactly those again. When a stop fails, the ones
    /// already stopped are in the guard that comes with the error, so the
    /// caller still starts them.
    pub async fn stop(
        &self,
        containers: &[ContainerInfo],
    ) -> Result<StoppedContainers, (StoppedContainers, DockerError)> {
        let mut guard = StoppedContainers {
            client: self.clone(),
            stopped: Vec::new(),
            since: Instant::now(),
        };
        for c in containers {
            // Their state now, not when the run was planned: only what runs
            // at this moment is stopped (and started again).
            match self.container(&c.id).await {
                Ok(now) if now.running => {}
                Ok(_) => continue,
                Err(e) => return Err((guard, e)),
            }
            // Registered before the call: a second signal during the stop
            // must still start it.
            register(self, &c.id);
            let opts = StopContainerOptionsBuilder::new()
                .t(STOP_TIMEOUT_SECONDS)
                .build();
            match self.api.stop_container(&c.id, Some(opts)).await {
                Ok(()) => {
                    mark_stopped(self, &c.id);
                    guard.stopped.push(c.clone());
                }
                Err(e) => {
                    unregister(self, &c.id);
                    let err = api_error(&self.host, format!("stopping container `{}`", c.name), &e);
                    return Err((guard, err));
                }
            }
        }
        Ok(guard)
    }

    /// Makes sure `image` is present, pulling it when it is not.
    async fn ensure_image(&self, image: &str) -> Result<(), DockerError> {
        match self.api.inspect_image(image).await {
            Ok(_) => return Ok(()),
            Err(e) if is_not_found(&e) => {}
            Err(e) => {
                return Err(api_error(
                    &self.host,
                    format!("inspecting helper image `{image}`"),
                    &e,
                ));
            }
        }
        let opts = CreateImageOptionsBuilder::new().from_image(image).build();
        let mut pull = self.api.create_image(Some(opts), None, None);
        while let Some(item) = pull.next().await {
            if let Err(e) = item {
                return Err(match api_error(&self.host, "pull", &e) {
                    DockerError::Api { detail, .. } => DockerError::HelperImage {
                        image: image.to_string(),
                        detail,
                    },
                    other => other,
                });
            }
        }
        Ok(())
    }

    /// Creates a helper container on `volume` running `cmd`, attached to
    /// its streams, and starts it.
    async fn helper(
        &self,
        image: &str,
        volume: &str,
        read_only: bool,
        cmd: &[&str],
        stdin: bool,
    ) -> Result<(Helper, bollard::container::AttachContainerResults), DockerError> {
        self.ensure_image(image).await?;
        let bind = format!("{volume}:/volume{}", if read_only { ":ro" } else { "" });
        let body = ContainerCreateBody {
            image: Some(image.to_string()),
            cmd: Some(cmd.iter().map(ToString::to_string).collect()),
            attach_stdin: Some(stdin),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            open_stdin: Some(stdin),
            stdin_once: Some(stdin),
            tty: Some(false),
            network_disabled: Some(true),
            labels: Some(HashMap::from([(
                HELPER_LABEL.to_string(),
                volume.to_string(),
            )])),
            host_config: Some(HostConfig {
                binds: Some(vec![bind]),
                network_mode: Some("none".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let name = format!(
            "restic-manager-helper-{}-{}",
            std::process::id(),
            rand::random::<u32>()
        );
        let opts = CreateContainerOptionsBuilder::new().name(&name).build();
        let created = self
            .api
            .create_container(Some(opts), body)
            .await
            .map_err(|e| {
                api_error(
                    &self.host,
                    format!("creating a helper container (image `{image}`) for volume `{volume}`"),
                    &e,
                )
            })?;
        let helper = Helper {
            client: self.clone(),
            id: created.id,
            removed: false,
        };
        // Attach before starting, or the first output could be missed.
        let attach = AttachContainerOptionsBuilder::new()
            .stdin(stdin)
            .stdout(true)
            .stderr(true)
            .stream(true)
            .build();
        let io = self
            .api
            .attach_container(&helper.id, Some(attach))
            .await
            .map_err(|e| api_error(&self.host, "attaching to the helper container", &e))?;
        self.api
            .start_container(&helper.id, None)
            .await
            .map_err(|e| api_error(&self.host, "starting the helper container", &e))?;
        Ok((helper, io))
    }

    /// Removes everything inside `volume` through a helper container
    /// (before a restore that replaces its content).
    pub async fn empty_volume(&self, volume: &str, image: &str) -> Result<(), DockerError> {
        let (mut helper, mut io) = self
            .helper(
                image,
                volume,
                false,
                &[
                    "sh",
                    "-c",
                    "find /volume -mindepth 1 -maxdepth 1 -exec rm -rf {} +",
                ],
                false,
            )
            .await?;
        let mut stderr = Vec::new();
        while let Some(Ok(item)) = io.output.next().await {
            if let bollard::container::LogOutput::StdErr { message } = item {
                stderr.extend_from_slice(&message);
            }
        }
        let code = helper.wait().await;
        helper.remove().await;
        check_exit(code, volume, "rm", &stderr)
    }

    /// Writes `volume` as an uncompressed tar (paths relative to the volume
    /// root) into `sink`, read by a helper container that mounts it
    /// read-only. Returns the bytes written. Fails (without closing `sink`)
    /// when tar exits non-zero: the caller must then discard what it got.
    pub async fn volume_to_tar<W: AsyncWrite + Unpin>(
        &self,
        volume: &str,
        image: &str,
        sink: &mut W,
    ) -> Result<u64, DockerError> {
        self.volume(volume).await?;
        let (mut helper, mut io) = self
            .helper(
                image,
                volume,
                true,
                &["tar", "-c", "-f", "-", "-C", "/volume", "."],
                false,
            )
            .await?;
        let mut written: u64 = 0;
        let mut stderr = Vec::new();
        let mut failure = None;
        while let Some(item) = io.output.next().await {
            match item {
                Ok(bollard::container::LogOutput::StdOut { message }) => {
                    if let Err(e) = sink.write_all(&message).await {
                        failure = Some(DockerError::Api {
                            what: format!("streaming volume `{volume}`"),
                            detail: format!("the reader stopped: {e}"),
                        });
                        break;
                    }
                    written += message.len() as u64;
                }
                Ok(bollard::container::LogOutput::StdErr { message }) => {
                    if stderr.len() < 64 * 1024 {
                        stderr.extend_from_slice(&message);
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    failure = Some(api_error(
                        &self.host,
                        format!("reading volume `{volume}` from the helper container"),
                        &e,
                    ));
                    break;
                }
            }
        }
        if let Some(f) = failure {
            // Nobody reads tar's output any more (restic exited): waiting
            // for it would wait forever. Remove it (which kills it) first.
            drop(io);
            helper.remove().await;
            return Err(f);
        }
        let code = helper.wait().await;
        helper.remove().await;
        check_exit(code, volume, "tar -c", &stderr)?;
        Ok(written)
    }

    /// Extracts the tar read from `source` into `volume` through a helper
    /// container (the reverse of [`DockerClient::volume_to_tar`]). Stop the
    /// containers that use the volume first.
    pub async fn tar_to_volume<R: AsyncRead + Unpin>(
        &self,
        volume: &str,
        image: &str,
        source: &mut R,
    ) -> Result<u64, DockerError> {
        self.volume(volume).await?;
        let (mut helper, io) = self
            .helper(
                image,
                volume,
                false,
                &["tar", "-x", "-f", "-", "-C", "/volume"],
                true,
            )
            .await?;
        let bollard::container::AttachContainerResults {
            mut output,
            mut input,
        } = io;
        let collect = async {
            let mut stderr = Vec::new();
            while let Some(item) = output.next().await {
                if let Ok(bollard::container::LogOutput::StdErr { message }) = item
                    && stderr.len() < 64 * 1024
                {
                    stderr.extend_from_slice(&message);
                }
            }
            stderr
        };
        let feed = async {
            let mut buf = vec![0u8; 256 * 1024];
            let mut total: u64 = 0;
            loop {
                let n = source.read(&mut buf).await.map_err(|e| DockerError::Api {
                    what: format!("restoring volume `{volume}`"),
                    detail: format!("reading the archive failed: {e}"),
                })?;
                if n == 0 {
                    break;
                }
                input
                    .write_all(&buf[..n])
                    .await
                    .map_err(|e| DockerError::Api {
                        what: format!("restoring volume `{volume}`"),
                        detail: format!("the helper container stopped reading: {e}"),
                    })?;
                total += n as u64;
            }
            // End of the archive: the helper's tar sees EOF and exits.
            let _ = input.shutdown().await;
            Ok::<u64, DockerError>(total)
        };
        let (fed, stderr) = tokio::join!(feed, collect);
        let code = helper.wait().await;
        helper.remove().await;
        let total = fed?;
        check_exit(code, volume, "tar -x", &stderr)?;
        Ok(total)
    }
}

fn check_exit(
    code: Option<i64>,
    volume: &str,
    what: &str,
    stderr: &[u8],
) -> Result<(), DockerError> {
    match code {
        Some(0) => Ok(()),
        other => {
            let err = String::from_utf8_lossy(stderr);
            let last = err
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("");
            Err(DockerError::Api {
                what: format!("helper container on volume `{volume}`"),
                detail: format!(
                    "`{what}` {}{}",
                    other.map_or_else(
                        || "did not report an exit code".to_string(),
                        |c| format!("exited {c}")
                    ),
                    if last.is_empty() {
                        String::new()
                    } else {
                        format!(": {last}")
                    }
                ),
            })
        }
    }
}

/// A helper container, removed when done (or dropped).
struct Helper {
    client: DockerClient,
    id: String,
    removed: bool,
}

impl Helper {
    async fn wait(&mut self) -> Option<i64> {
        let mut s = self.client.api.wait_container(&self.id, None);
        match s.next().await {
            Some(Ok(r)) => Some(r.status_code),
            Some(Err(BollardError::DockerContainerWaitError { code, .. })) => Some(code),
            _ => self
                .client
                .api
                .inspect_container(&self.id, None)
                .await
                .ok()
                .and_then(|c| c.state)
                .and_then(|s| s.exit_code),
        }
    }

    async fn remove(&mut self) {
        let opts = RemoveContainerOptionsBuilder::new().force(true).build();
        let _ = self.client.api.remove_container(&self.id, Some(opts)).await;
        self.removed = true;
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        if self.removed {
            return;
        }
        // Cancelled mid-stream (timeout, signal): remove it in the background.
        let api = self.client.api.clone();
        let id = self.id.clone();
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let opts = RemoveContainerOptionsBuilder::new().force(true).build();
                let _ = api.remove_container(&id, Some(opts)).await;
            });
        }
    }
}

/// Containers stopped by [`DockerClient::stop`]; [`StoppedContainers::start`]
/// starts exactly these again. Dropping the guard without `start` starts
/// them in the background (a last resort: always call `start`).
pub struct StoppedContainers {
    client: DockerClient,
    stopped: Vec<ContainerInfo>,
    since: Instant,
}

impl StoppedContainers {
    /// The containers that were stopped (those that were running).
    pub fn containers(&self) -> &[ContainerInfo] {
        &self.stopped
    }

    /// Starts the stopped containers again, each even if another fails.
    /// Returns how long they were down and the failures.
    pub async fn start(mut self) -> (Duration, Vec<DockerError>) {
        let stopped = std::mem::take(&mut self.stopped);
        let mut errors = Vec::new();
        for c in &stopped {
            match self.client.api.start_container(&c.id, None).await {
                // bollard reports 304 (already running) as success too.
                Ok(()) => unregister(&self.client, &c.id),
                Err(e) => errors.push(api_error(
                    &self.client.host,
                    format!("starting container `{}` again", c.name),
                    &e,
                )),
            }
        }
        (self.since.elapsed(), errors)
    }
}

impl Drop for StoppedContainers {
    fn drop(&mut self) {
        if self.stopped.is_empty() {
            return;
        }
        let client = self.client.clone();
        let stopped = std::mem::take(&mut self.stopped);
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                for c in stopped {
                    if client.api.start_container(&c.id, None).await.is_ok() {
                        unregister(&client, &c.id);
                    }
                }
            });
        }
    }
}

/// Where a volume's files are when the Engine API cannot be asked:
/// `docker_base/<name>/_data` when that exists, else Docker's default
/// `/var/lib/docker/volumes/<name>/_data`.
pub fn fallback_volume_path(docker_base: Option<&Path>, name: &str) -> PathBuf {
    if let Some(b) = docker_base {
        let p = b.join(name).join("_data");
        if p.is_dir() {
            return p;
        }
    }
    Path::new(DOCKER_VOLUMES).join(name).join("_data")
}

/// Whether this process can list `dir` (so restic can read the volume).
pub fn readable_dir(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volume_modes() {
        for (s, m) in [
            ("auto", Some(VolumeMode::Auto)),
            ("direct", Some(VolumeMode::Direct)),
            ("stream", Some(VolumeMode::Stream)),
            ("tar", None),
            ("", None),
        ] {
            assert_eq!(VolumeMode::parse(s).ok(), m, "{s}");
            if let Some(m) = m {
                assert_eq!(m.as_str(), s);
            }
        }
    }

    #[test]
    fn finds_a_volume_in_snapshot_paths() {
        let paths = vec![
            "/srv/app".to_string(),
            "/var/lib/docker/volumes/db/_data".to_string(),
            "/var/lib/docker/volumes/mydb/_data".to_string(),
        ];
        assert_eq!(
            volume_path_in_snapshot(&paths, "db"),
            Some("/var/lib/docker/volumes/db/_data")
        );
        assert_eq!(
            volume_path_in_snapshot(&paths, "mydb"),
            Some("/var/lib/docker/volumes/mydb/_data")
        );
        assert_eq!(volume_path_in_snapshot(&paths, "app"), None);
    }

    #[test]
    fn engine_errors_are_classified() {
        use std::io::{Error as IoError, ErrorKind};
        let host = "unix:///var/run/docker.sock";
        let io = |k: ErrorKind| BollardError::IOError {
            err: IoError::new(k, "socket"),
        };
        for (err, class) in [
            (
                io(ErrorKind::PermissionDenied),
                ErrorClass::PermissionDenied,
            ),
            (io(ErrorKind::NotFound), ErrorClass::DockerUnavailable),
            (
                io(ErrorKind::ConnectionRefused),
                ErrorClass::DockerUnavailable,
            ),
            (
                BollardError::SocketNotFoundError(host.into()),
                ErrorClass::DockerUnavailable,
            ),
            (
                BollardError::RequestTimeoutError,
                ErrorClass::DockerUnavailable,
            ),
            (
                BollardError::DockerResponseServerError {
                    status_code: 500,
                    message: "driver failed".into(),
                },
                ErrorClass::DockerFailed,
            ),
        ] {
            let e = api_error(host, "stopping container `db`", &err);
            assert_eq!(e.class(), class, "{err:?} -> {e}");
        }
        let e = api_error(host, "x", &io(ErrorKind::PermissionDenied));
        assert_eq!(
            e.to_string(),
            "permission denied on the Docker socket `unix:///var/run/docker.sock`; run as root or add this user to the `docker` group (`usermod -aG docker USER`, then log in again)"
        );
        let e = api_error(
            host,
            "stopping container `db`",
            &BollardError::DockerResponseServerError {
                status_code: 500,
                message: "driver failed".into(),
            },
        );
        assert_eq!(e.to_string(), "stopping container `db`: driver failed");
    }

    #[test]
    fn local_engines() {
        for (host, local) in [
            ("unix:///var/run/docker.sock", true),
            ("unix:///run/user/1000/docker.sock", true),
            ("tcp://127.0.0.1:2375", true),
            ("tcp://localhost:2375", true),
            ("tcp://10.0.0.5:2375", false),
            ("ssh://me@nas", false),
        ] {
            let Ok(api) = Docker::connect_with_unix_defaults() else {
                return;
            };
            let c = DockerClient {
                api,
                host: host.to_string(),
            };
            assert_eq!(c.is_local(), local, "{host}");
        }
    }

    #[test]
    fn missing_objects_list_what_exists() {
        let e = DockerError::VolumeMissing {
            name: "dbdata".into(),
            existing: vec!["db_data".into(), "web".into()],
        };
        assert_eq!(
            e.to_string(),
            "Docker volume `dbdata` does not exist; existing volumes: `db_data`, `web`"
        );
        assert_eq!(e.class(), ErrorClass::SourceMissing);
        let e = DockerError::ContainerMissing {
            name: "x".into(),
            existing: vec![],
        };
        assert_eq!(
            e.to_string(),
            "container `x` does not exist; existing containers: none"
        );
    }
}
