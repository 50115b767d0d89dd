//! The sources of a service's file snapshot: its paths, each checked to
//! exist, and its Docker volumes, resolved through the Engine API (read
//! directly, or streamed through a helper container). A `backup_script`
//! service has none: its script decides what it backs up.

use std::path::{Path, PathBuf};

use super::{Runner, ServiceRun, Stopped};
use crate::config::Service;
use crate::engine::plan::ServicePlan;
use crate::restic::ErrorClass;
use crate::runlog::RunLog;
use crate::sources::docker;

/// Where Docker keeps named volumes on a standard Linux host. Used until
/// volumes are resolved through the Engine API.
const DOCKER_VOLUMES: &str = "/var/lib/docker/volumes";

impl Runner<'_> {
    /// The paths to back up (volume folders included), with the volumes to
    /// stream and the containers to stop kept in `run.docker`. A missing
    /// path or an unusable Docker engine fails the service and stops it.
    pub(super) async fn sources(
        &self,
        svc: &ServicePlan<'_>,
        run: &mut ServiceRun,
        log: &RunLog,
    ) -> Result<Vec<PathBuf>, Stopped> {
        if svc.backup_script.is_some() {
            return Ok(Vec::new());
        }
        let mut sources = match resolve_paths(svc.config) {
            Ok(s) => s,
            Err(msg) => {
                run.fail(ErrorClass::SourceMissing, msg);
                return Err(Stopped);
            }
        };
        // Docker volumes and the containers to stop, through the Engine API.
        match docker::prepare(svc.config, self.config.settings.docker_base.as_deref()).await {
            Ok(Some(d)) => {
                for w in &d.warnings {
                    run.warn(w.clone());
                }
                for (v, p) in &d.direct {
                    log.line(&format!("volume `{v}`: backing up `{}`", p.display()));
                    sources.push(p.clone());
                }
                for v in &d.stream {
                    log.line(&format!(
                        "volume `{v}`: streaming it through a helper container (image `{}`) as `{}`",
                        d.image,
                        docker::stream_filename(v)
                    ));
                }
                run.docker = Some(d);
            }
            Ok(None) => {}
            Err(e) => {
                run.fail(e.class(), e.to_string());
                return Err(Stopped);
            }
        }
        Ok(sources)
    }
}

/// The service's paths, each checked to exist: restic 0.14 skips a missing
/// path silently and still exits 0. Volumes are resolved by
/// [`docker::prepare`].
pub fn resolve_paths(svc: &Service) -> Result<Vec<PathBuf>, String> {
    let paths_only = Service {
        volumes: Vec::new(),
        ..svc.clone()
    };
    resolve_sources(&paths_only)
}

/// The service's paths and volume folders (at Docker's default location,
/// without asking the engine: `run --dry-run`), each checked to exist.
pub fn resolve_sources(svc: &Service) -> Result<Vec<PathBuf>, String> {
    let mut out = Vec::new();
    let mut missing = Vec::new();
    for p in &svc.paths {
        match p.try_exists() {
            Ok(true) => out.push(p.clone()),
            _ => missing.push(format!("`{}`", p.display())),
        }
    }
    if !missing.is_empty() {
        return Err(format!(
            "path {} does not exist; fix `paths` in `[services.{}.config]` (restic would silently skip it)",
            missing.join(", "),
            svc.name
        ));
    }
    for v in &svc.volumes {
        let p = Path::new(DOCKER_VOLUMES).join(v).join("_data");
        if p.is_dir() {
            out.push(p);
        } else {
            return Err(format!(
                "Docker volume `{v}` was not found at `{}`",
                p.display()
            ));
        }
    }
    Ok(out)
}
