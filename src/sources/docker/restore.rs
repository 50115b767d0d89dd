//! Getting a volume back from a snapshot: direct snapshots through
//! `restic restore` into the mountpoint, streamed ones through `restic
//! dump` into a helper container's `tar -x`, with the containers that use
//! the volume stopped and started again ([`restore_volume`]).

use std::path::PathBuf;

use serde::Serialize;

use super::{
    DockerClient, DockerError, list_or_none, readable_dir, stream_filename, volume_path_in_snapshot,
};
use crate::model::Failure;
use crate::restic::ErrorClass;

fn op_error(e: &DockerError) -> Failure {
    Failure::new(e.class(), e.to_string())
}

/// The volume a restore writes: `volume`, through helper containers of
/// `image`; with `replace`, what it held before is removed first.
#[derive(Debug, Clone, Copy)]
pub struct VolumeInto<'a> {
    pub volume: &'a str,
    pub image: &'a str,
    pub replace: bool,
}

/// Restores a volume backed up in direct mode: `snapshot_path` (the
/// volume's folder in the snapshot, see [`volume_path_in_snapshot`]) of
/// `snapshot` goes into `volume`'s mountpoint. restic restores into a
/// staging folder next to the mountpoint (same filesystem; restic 0.14 has
/// no `snapshot:subfolder`), whose entries are then renamed into place.
/// With `replace`, what the volume held before is removed first; without
/// it, restored files overwrite same-named ones and others stay.
///
/// Needs the mountpoint readable and writable from this host (root); stop
/// the containers using the volume first ([`DockerClient::containers_using_volume`],
/// [`DockerClient::stop`]).
pub async fn restore_volume_direct(
    client: &DockerClient,
    restic: &crate::restic::Restic,
    repo: &crate::restic::Repository,
    snapshot: &str,
    snapshot_path: &str,
    into: &VolumeInto<'_>,
    shutdown: &crate::process::Shutdown,
) -> Result<(), Failure> {
    let (volume, replace) = (into.volume, into.replace);
    let info = client.volume(volume).await.map_err(|e| op_error(&e))?;
    let fail = |message: String| Failure::new(ErrorClass::PermissionDenied, message);
    let mp = info.mountpoint.clone();
    let Some(parent) = mp
        .parent()
        .filter(|_| client.is_local() && readable_dir(&mp))
    else {
        return Err(fail(format!(
            "the folder of Docker volume `{volume}` (`{}`) cannot be written from this host; run the restore as root, or restore a snapshot made with `volume_mode = \"stream\"`",
            mp.display()
        )));
    };
    let staging = parent.join(format!(".restic-manager-restore-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir(&staging).map_err(|e| {
        fail(format!(
            "cannot create the staging folder `{}`: {e}",
            staging.display()
        ))
    })?;
    struct Cleanup(PathBuf);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    let _cleanup = Cleanup(staging.clone());
    let out = crate::restic::restore::restore(
        restic,
        repo,
        &crate::restic::restore::Restore {
            snapshot,
            target: &staging,
            includes: &[snapshot_path.to_string()],
            no_lock: false,
            verify: false,
            timeout: None,
        },
        shutdown,
    )
    .await?;
    let restored = staging.join(snapshot_path.trim_start_matches('/'));
    let entries = std::fs::read_dir(&restored).map_err(|e| {
        Failure::new(
            ErrorClass::SourceMissing,
            format!(
                "snapshot {snapshot} has nothing at `{snapshot_path}` ({e}); pick the snapshot that holds volume `{volume}`"
            ),
        )
        .with_stderr(out.stderr.clone())
    })?;
    if replace {
        for old in std::fs::read_dir(&mp)
            .map_err(|e| fail(format!("cannot read `{}`: {e}", mp.display())))?
            .flatten()
        {
            let p = old.path();
            let r = if p.is_dir() && !p.is_symlink() {
                std::fs::remove_dir_all(&p)
            } else {
                std::fs::remove_file(&p)
            };
            r.map_err(|e| fail(format!("cannot remove `{}`: {e}", p.display())))?;
        }
    }
    for entry in entries.flatten() {
        let to = mp.join(entry.file_name());
        if to.is_dir() && !to.is_symlink() {
            let _ = std::fs::remove_dir_all(&to);
        } else if to.exists() || to.is_symlink() {
            let _ = std::fs::remove_file(&to);
        }
        std::fs::rename(entry.path(), &to).map_err(|e| {
            fail(format!(
                "cannot move the restored `{}` into the volume: {e}",
                to.display()
            ))
        })?;
    }
    // The volume root gets the restored root's mode and owner.
    if let Ok(meta) = std::fs::metadata(&restored) {
        use std::os::unix::fs::MetadataExt;
        let _ = std::fs::set_permissions(&mp, meta.permissions());
        let _ = std::os::unix::fs::chown(&mp, Some(meta.uid()), Some(meta.gid()));
    }
    Ok(())
}

/// Restores a volume backed up in stream mode: `restic dump` of
/// `volumes/<source_volume>.tar` from `snapshot` is piped into a helper
/// container that extracts it into `volume` (`tar -x`). Returns the bytes
/// extracted. With `replace`, the volume is emptied first (by the helper
/// container). Stop the containers using the volume first.
pub async fn restore_volume_stream(
    client: &DockerClient,
    restic: &crate::restic::Restic,
    repo: &crate::restic::Repository,
    snapshot: &str,
    source_volume: &str,
    into: &VolumeInto<'_>,
    shutdown: &crate::process::Shutdown,
) -> Result<u64, Failure> {
    use crate::process::Ended;
    use crate::restic::ops::failure;
    let VolumeInto {
        volume,
        image,
        replace,
    } = *into;
    client.volume(volume).await.map_err(|e| op_error(&e))?;
    if replace {
        client
            .empty_volume(volume, image)
            .await
            .map_err(|e| op_error(&e))?;
    }
    let file = format!("/{}", stream_filename(source_volume));
    let mut child = crate::restic::restore::DumpFile {
        snapshot,
        path: &file,
        tag: None,
        no_lock: false,
        timeout: None,
    }
    .spawn(restic, repo)?;
    let Some(mut stdout) = child.take_stdout() else {
        let ended = child.stop().await;
        let _ = child.output(ended).await;
        return Err(Failure::new(
            ErrorClass::Other,
            "restic's output could not be read",
        ));
    };
    let res = crate::process::bounded(
        client.tar_to_volume(volume, image, &mut stdout),
        None,
        shutdown,
    )
    .await
    .ok();
    drop(stdout);
    let ended = match &res {
        Some(Ok(_)) => child.wait(&crate::process::Shutdown::never()).await,
        _ => child.stop().await,
    };
    let out = child.output(ended).await;
    // A restic that ended on its own (bad snapshot, path not in it) explains
    // the failure better than the tar that then read a short archive; one
    // we stopped after tar failed does not.
    let restic_failed =
        failure(&out, repo).filter(|_| !matches!(ended, Ended::Exited(130) | Ended::Signaled(_)));
    match (res, restic_failed) {
        (None, _) => Err(Failure::new(
            ErrorClass::Interrupted,
            format!("restore of volume `{volume}` interrupted; its content is incomplete"),
        )
        .with_stderr(out.stderr)),
        (Some(_), Some(e)) => Err(e),
        (Some(Err(e)), None) => Err(op_error(&e)),
        (Some(Ok(n)), None) => Ok(n),
    }
}

/// What [`restore_volume`] did.
#[derive(Debug, Clone, Serialize)]
pub struct VolumeRestore {
    /// The volume written to.
    pub volume: String,
    /// `direct` (restic restore into the mountpoint) or `stream` (tar
    /// through a helper container).
    pub mode: &'static str,
    /// Whether the volume did not exist and was created.
    pub created: bool,
    /// Containers that used the volume, were running, and were stopped for
    /// the restore and started again.
    pub containers_restarted: Vec<String>,
}

/// Restores Docker volume `source_volume` from one snapshot into volume
/// `into` (created when missing; may be the same name): stops the running
/// containers that use `into`, restores (direct or stream, decided by what
/// the snapshot holds: `/volumes/<name>.tar` means stream), and starts
/// those containers again, also when the restore failed.
///
/// What the snapshot holds is read from its `paths`. With `into.replace`,
/// the volume's current content is removed first.
pub async fn restore_volume(
    restic: &crate::restic::Restic,
    repo: &crate::restic::Repository,
    snapshot: &crate::restic::output::Snapshot,
    source_volume: &str,
    into: &VolumeInto<'_>,
    shutdown: &crate::process::Shutdown,
) -> Result<VolumeRestore, Failure> {
    let (snapshot_id, snapshot_paths) = (snapshot.id.as_str(), snapshot.paths.as_slice());
    let client = DockerClient::connect().await.map_err(|e| op_error(&e))?;
    let tar = format!("/{}", stream_filename(source_volume));
    let stream = snapshot_paths.contains(&tar);
    let direct_path = if stream {
        None
    } else {
        Some(
            volume_path_in_snapshot(snapshot_paths, source_volume)
                .ok_or_else(|| {
                    Failure::new(
                        ErrorClass::SourceMissing,
                        format!(
                            "snapshot {snapshot_id} does not hold Docker volume `{source_volume}` (its paths: {})",
                            list_or_none(snapshot_paths)
                        ),
                    )
                })?
                .to_string(),
        )
    };
    let created = match client.volume(into.volume).await {
        Ok(_) => false,
        Err(DockerError::VolumeMissing { .. }) => {
            client
                .create_volume(into.volume)
                .await
                .map_err(|e| op_error(&e))?;
            true
        }
        Err(e) => return Err(op_error(&e)),
    };
    let users = client
        .containers_using_volume(into.volume)
        .await
        .map_err(|e| op_error(&e))?;
    let guard = match client.stop(&users).await {
        Ok(g) => g,
        Err((g, e)) => {
            let _ = g.start().await;
            return Err(op_error(&e));
        }
    };
    let restarted: Vec<String> = guard.containers().iter().map(|c| c.name.clone()).collect();
    let result = match &direct_path {
        Some(path) => {
            restore_volume_direct(&client, restic, repo, snapshot_id, path, into, shutdown).await
        }
        None => restore_volume_stream(
            &client,
            restic,
            repo,
            snapshot_id,
            source_volume,
            into,
            shutdown,
        )
        .await
        .map(|_| ()),
    };
    let (_, start_errors) = guard.start().await;
    result?;
    if let Some(e) = start_errors.first() {
        return Err(op_error(e));
    }
    Ok(VolumeRestore {
        volume: into.volume.to_string(),
        mode: if stream { "stream" } else { "direct" },
        created,
        containers_restarted: restarted,
    })
}
