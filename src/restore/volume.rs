//! A Docker volume back from a snapshot: the containers that use the
//! target volume are stopped, the volume's content is replaced (from the
//! mountpoint's folder of a file snapshot, or the tar of a streamed one),
//! and exactly the containers that were running are started again, also
//! when the restore fails. The Docker and restic work itself lives in
//! `sources::docker`.

use serde::Serialize;

use super::RestoreError;
use super::select::{dump_file, volume_name};
use crate::process::Shutdown;
use crate::restic::output::Snapshot;
use crate::restic::{ErrorClass, Repository, Restic};
use crate::sources::docker::{self, DockerClient, DockerError};

/// What a volume restore did.
#[derive(Debug, Clone, Serialize)]
pub struct Restored {
    /// The volume written.
    pub volume: String,
    /// `direct` (files through the mountpoint) or `stream` (tar through a
    /// helper container).
    pub mode: &'static str,
    /// Containers stopped for the restore and started again.
    pub containers: Vec<String>,
    /// Bytes extracted (stream mode).
    pub bytes: Option<u64>,
}

fn docker_error(e: &DockerError) -> RestoreError {
    RestoreError::failed(e.class(), e.to_string())
}

/// The containers using volume `volume`, by name (for the confirmation).
pub async fn users(volume: &str) -> Result<Vec<String>, RestoreError> {
    let client = DockerClient::connect()
        .await
        .map_err(|e| docker_error(&e))?;
    match client.volume(volume).await {
        Ok(_) => {}
        // Restoring into a new volume: nobody uses it yet.
        Err(DockerError::VolumeMissing { .. }) => return Ok(Vec::new()),
        Err(e) => return Err(docker_error(&e)),
    }
    Ok(client
        .containers_using_volume(volume)
        .await
        .map_err(|e| docker_error(&e))?
        .into_iter()
        .map(|c| c.name)
        .collect())
}

/// Restores volume `source` of `snapshot` into volume `into` (created when
/// missing), replacing its content.
pub async fn restore(
    restic: &Restic,
    repo: &Repository,
    snapshot: &Snapshot,
    source: &str,
    into: &str,
    helper_image: &str,
    shutdown: &Shutdown,
) -> Result<Restored, RestoreError> {
    let stream = volume_name(snapshot).is_some();
    let direct_path = if stream {
        None
    } else {
        Some(
            docker::volume_path_in_snapshot(&snapshot.paths, source).ok_or_else(|| {
                RestoreError::usage(format!(
                    "snapshot `{}` does not hold Docker volume `{source}` (its paths: {})",
                    snapshot.short(),
                    snapshot.paths.join(", ")
                ))
            })?,
        )
    };
    if stream && dump_file(snapshot).is_none() {
        return Err(RestoreError::usage(format!(
            "snapshot `{}` is tagged as a volume but holds {} paths",
            snapshot.short(),
            snapshot.paths.len()
        )));
    }
    let client = DockerClient::connect()
        .await
        .map_err(|e| docker_error(&e))?;
    client
        .create_volume(into)
        .await
        .map_err(|e| docker_error(&e))?;
    let using = client
        .containers_using_volume(into)
        .await
        .map_err(|e| docker_error(&e))?;
    let stopped = match client.stop(&using).await {
        Ok(g) => g,
        Err((g, e)) => {
            let (_, more) = g.start().await;
            let mut err = docker_error(&e);
            for m in more {
                err.message.push_str(&format!("\nerror: {m}"));
            }
            return Err(err);
        }
    };
    let containers: Vec<String> = stopped
        .containers()
        .iter()
        .map(|c| c.name.clone())
        .collect();
    let result = match direct_path {
        Some(path) => docker::restore_volume_direct(
            &client,
            restic,
            repo,
            &snapshot.id,
            path,
            into,
            true,
            shutdown,
        )
        .await
        .map(|()| None),
        None => docker::restore_volume_stream(
            &client,
            restic,
            repo,
            &snapshot.id,
            source,
            into,
            helper_image,
            true,
            shutdown,
        )
        .await
        .map(Some),
    };
    // Always: the containers come back whatever happened to the restore.
    let (_, start_errors) = stopped.start().await;
    let mut outcome = result.map_err(RestoreError::from);
    if !start_errors.is_empty() {
        let text = start_errors
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ");
        outcome = match outcome {
            Ok(_) => Err(RestoreError::failed(
                ErrorClass::Other,
                format!(
                    "volume `{into}` was restored, but a container did not start again: {text}"
                ),
            )),
            Err(mut e) => {
                e.message.push_str(&format!(
                    "\nerror: and a container did not start again: {text}"
                ));
                Err(e)
            }
        };
    }
    let bytes = outcome?;
    Ok(Restored {
        volume: into.to_string(),
        mode: if stream { "stream" } else { "direct" },
        containers,
        bytes,
    })
}
