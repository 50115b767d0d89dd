//! What restore asks Docker before a volume restore: which containers use
//! the volume (named in the confirmation). The restore itself, with its
//! container stop and start, is `sources::docker::restore_volume`.

use crate::model::Failure;
use crate::sources::docker::{DockerClient, DockerError};

fn docker_error(e: &DockerError) -> Failure {
    Failure::new(e.class(), e.to_string())
}

/// The containers using volume `volume`, by name (for the confirmation).
pub async fn users(volume: &str) -> Result<Vec<String>, Failure> {
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
