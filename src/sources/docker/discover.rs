//! Asking the engine which containers carry `restic-manager.service`
//! labels, running or stopped, for `[docker] discover = true`. What the
//! labels mean is `config::labels`' business; this only reads them.

use std::collections::HashMap;

use bollard::query_parameters::ListContainersOptionsBuilder;

use super::{DockerClient, DockerError, api_error};
use crate::config::labels::LabelledContainer;

impl DockerClient {
    /// Every container (running or not) labelled `<prefix>.service`, with
    /// its labels in that namespace and the named volumes it mounts.
    pub async fn labelled(&self, prefix: &str) -> Result<Vec<LabelledContainer>, DockerError> {
        let key = format!("{prefix}.service");
        let filters = HashMap::from([("label", vec![key.as_str()])]);
        let opts = ListContainersOptionsBuilder::new()
            .all(true)
            .filters(&filters)
            .build();
        let list = self
            .api
            .list_containers(Some(opts))
            .await
            .map_err(|e| api_error(&self.host, "listing labelled containers", &e))?;
        let dotted = format!("{prefix}.");
        let mut out: Vec<LabelledContainer> = list
            .into_iter()
            .map(|c| LabelledContainer {
                name: c
                    .names
                    .and_then(|n| n.into_iter().next())
                    .map(|n| n.trim_start_matches('/').to_string())
                    .or(c.id)
                    .unwrap_or_default(),
                running: c
                    .state
                    .is_some_and(|s| s == bollard::models::ContainerSummaryStateEnum::RUNNING),
                labels: c
                    .labels
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|(k, v)| k.strip_prefix(&dotted).map(|k| (k.to_string(), v)))
                    .collect(),
                volumes: c
                    .mounts
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|m| m.typ.as_deref() == Some("volume"))
                    .filter_map(|m| m.name)
                    .filter(|n| !anonymous(n))
                    .collect(),
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }
}

/// How long discovery waits for the engine.
const DISCOVERY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);

/// An anonymous volume (an image's `VOLUME` nobody named) is called by a
/// 64-digit hex id; it is not one of the container's named volumes.
fn anonymous(name: &str) -> bool {
    name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Discovery for a configuration file: `NotRun` when the file does not
/// turn it on (no Docker call then), else what the engine answered.
pub async fn discover(file: &std::path::Path) -> crate::config::labels::Discovery {
    use crate::config::labels::{Discovery, wanted};
    let Some(prefix) = wanted(file) else {
        return Discovery::NotRun;
    };
    let ask = async {
        match DockerClient::connect().await {
            Ok(client) => client.labelled(&prefix).await,
            Err(e) => Err(e),
        }
    };
    // A hung engine must not hang every command (`status` included).
    let Ok(found) = tokio::time::timeout(DISCOVERY_TIMEOUT, ask).await else {
        return Discovery::Failed(format!(
            "the Docker engine at `{}` did not answer within {} s",
            super::docker_host(),
            DISCOVERY_TIMEOUT.as_secs()
        ));
    };
    match found {
        Ok(list) => Discovery::Found(list),
        Err(e @ (DockerError::Unavailable { .. } | DockerError::PermissionDenied { .. })) => {
            Discovery::Failed(e.to_string())
        }
        Err(e) => Discovery::Failed(format!(
            "{e} (the Docker engine at `{}`)",
            super::docker_host()
        )),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn anonymous_volumes_are_told_from_named_ones() {
        for (name, anon) in [
            (
                "3f4e5d6c7b8a99887766554433221100ffeeddccbbaa00112233445566778899",
                true,
            ),
            ("wiki_db", false),
            ("deadbeef", false),
        ] {
            assert_eq!(super::anonymous(name), anon, "{name}");
        }
    }
}
