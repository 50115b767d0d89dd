//! The JSON API: the same data as the CLI's `--json`, plus the snapshot
//! browser's listing and download, and `/metrics`. Answers are never
//! cached (`no-store`) and never hold a secret: repository locations are
//! the redacted ones, passwords and tokens are not part of any answer.

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::actions::repository;
use super::respond::HttpFailure;
use super::{Shared, data, input};
use crate::output::sorted_keys;
use crate::process::{Output, Shutdown};
use crate::restic::ls::Node;
use crate::restic::ops::SnapshotGroup;
use crate::restic::output::Snapshot;
use crate::restore::listing;

/// A failure answered as JSON (`{"error": "..."}`) whatever its origin.
pub struct ApiError(HttpFailure);

impl From<HttpFailure> for ApiError {
    fn from(f: HttpFailure) -> ApiError {
        ApiError(f)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.0.json(true).into_response()
    }
}

type ApiResult = Result<Response, ApiError>;

fn ok(v: impl serde::Serialize) -> ApiResult {
    Ok(Json(v).into_response())
}

fn known(st: &Shared, name: &str) -> Result<(), ApiError> {
    if st.config.service(name).is_some() {
        Ok(())
    } else {
        Err(HttpFailure::not_found(format!("unknown service `{name}`")).into())
    }
}

/// `GET /api/status`: `status --json` plus health.
pub async fn status(State(st): State<Shared>) -> ApiResult {
    let v = st
        .read(|st, h| data::status_json(h, &st.config))
        .await?
        .map_err(HttpFailure::history)?;
    ok(v)
}

/// `GET /api/services`: `list --json` plus health, last run, snapshots.
pub async fn services(State(st): State<Shared>) -> ApiResult {
    let v = st
        .read(|st, h| data::services_json(h, &st.config))
        .await?
        .map_err(HttpFailure::history)?;
    ok(v)
}

/// `GET /api/services/NAME/runs`: the newest 50 runs with their targets.
pub async fn runs(State(st): State<Shared>, Path(name): Path<String>) -> ApiResult {
    known(&st, &name)?;
    let v = st
        .read(move |_, h| data::runs(h, &name, 50))
        .await?
        .map_err(HttpFailure::history)?;
    ok(v)
}

/// `GET /api/services/NAME/job`: the newest dashboard job of the service
/// (live progress while it runs), `null` when there was none.
pub async fn job(State(st): State<Shared>, Path(name): Path<String>) -> ApiResult {
    known(&st, &name)?;
    let mut job = st.jobs.get(&name);
    // A backup's run id exists in history as soon as the engine started it.
    if let Some(j) = job
        .as_mut()
        .filter(|j| j.run_id.is_none() && j.kind.name() == "run")
    {
        let since = j.started_at_ms - 1000;
        let n = name.clone();
        if let Ok(Ok(Some(r))) = st.read(move |_, h| h.last_run(&n)).await
            && r.started_at >= since
        {
            j.run_id = Some(r.id);
        }
    }
    ok(job)
}

/// `?destination=D&path=P` of the snapshot routes and pages.
#[derive(Debug, Deserialize)]
pub struct DestQuery {
    #[serde(default)]
    pub destination: Option<String>,
    #[serde(default)]
    pub path: Option<String>,
}

/// `GET /api/snapshots/NAME[?destination=D]`: `snapshots --json` for one
/// service (asks restic).
pub async fn snapshots(
    State(st): State<Shared>,
    Path(name): Path<String>,
    Query(q): Query<DestQuery>,
) -> ApiResult {
    known(&st, &name)?;
    Ok(Json(snapshot_groups(&st, &name, q.destination.as_deref()).await?).into_response())
}

/// Snapshots per destination, as `snapshots --json` prints them.
pub async fn snapshot_groups(
    st: &Shared,
    name: &str,
    destination: Option<&str>,
) -> Result<Vec<SnapshotGroup>, HttpFailure> {
    let Some(svc) = st.config.service(name) else {
        return Err(HttpFailure::not_found(format!("unknown service `{name}`")));
    };
    if let Some(d) = destination
        && !svc.targets.iter().any(|t| t == d)
    {
        return Err(HttpFailure::not_found(format!(
            "service `{name}` has no destination `{d}`"
        )));
    }
    let mut groups = Vec::new();
    for t in svc
        .targets
        .iter()
        .filter(|t| destination.is_none_or(|d| d == t.as_str()))
    {
        let repo = repository(st, name, Some(t)).map_err(|e| e.message);
        let mut g =
            SnapshotGroup::read(&st.restic, name, &svc.tag(), t, repo, &Shutdown::never()).await;
        g.snapshots.sort_by(|a, b| b.time.cmp(&a.time));
        groups.push(g);
    }
    Ok(groups)
}

/// The checked snapshot id, path (default `default_path`), repository
/// and service tag of a snapshot request; bad input is 400, unknown
/// names 404.
pub fn locate(
    st: &Shared,
    name: &str,
    snapshot: &str,
    q: &DestQuery,
    default_path: &str,
) -> Result<(String, String, crate::restic::Repository, String), HttpFailure> {
    if st.config.service(name).is_none() {
        return Err(HttpFailure::not_found(format!("unknown service `{name}`")));
    }
    let snapshot = input::snapshot_id(snapshot).map_err(HttpFailure::bad_request)?;
    let path = input::snapshot_path(q.path.as_deref().unwrap_or(default_path))
        .map_err(HttpFailure::bad_request)?;
    let repo = repository(st, name, q.destination.as_deref())?;
    Ok((snapshot, path, repo, format!("service:{name}")))
}

/// `GET /api/snapshots/NAME/ID/files?path=DIR[&destination=D]`: one folder.
pub async fn files(
    State(st): State<Shared>,
    Path((name, snapshot)): Path<(String, String)>,
    Query(q): Query<DestQuery>,
) -> ApiResult {
    let (snapshot, path, repo, tag) = locate(&st, &name, &snapshot, &q, "/")?;
    let l = listing::folder(&st.restic, &repo, &snapshot, &tag, &path)
        .await
        .map_err(HttpFailure::from_read)?;
    ok(FolderAnswer {
        destination: &repo.destination,
        entries: &l.entries,
        path: &l.path,
        service: &name,
        snapshot: &l.snapshot,
        truncated: l.truncated,
    })
}

/// The answer of `/api/snapshots/NAME/ID/files`. Fields in alphabetical
/// order (restic's snapshot and entries sorted too): it was a `json!` map,
/// and stays byte for byte what it was.
#[derive(Serialize)]
struct FolderAnswer<'a> {
    destination: &'a str,
    #[serde(serialize_with = "sorted_keys")]
    entries: &'a [Node],
    path: &'a str,
    service: &'a str,
    #[serde(serialize_with = "sorted_keys")]
    snapshot: &'a Snapshot,
    truncated: bool,
}

/// A file name safe for `Content-Disposition`.
fn disposition(path: &str) -> String {
    let name = path.rsplit('/').next().unwrap_or("download");
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._- ()".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!(
        "attachment; filename=\"{ascii}\"; filename*=UTF-8''{}",
        super::respond::url_encode(name)
    )
}

/// `GET /api/snapshots/NAME/ID/download?path=FILE[&destination=D]`: the
/// file's content, streamed from `restic dump` (never held in memory).
pub async fn download(
    State(st): State<Shared>,
    Path((name, snapshot)): Path<(String, String)>,
    Query(q): Query<DestQuery>,
) -> ApiResult {
    let (snapshot, path, repo, tag) = locate(&st, &name, &snapshot, &q, "")?;
    let (info, entry) = listing::stat(&st.restic, &repo, &snapshot, &tag, &path)
        .await
        .map_err(HttpFailure::from_read)?;
    if entry.kind != "file" {
        return Err(HttpFailure::bad_request(format!(
            "`{path}` is a {}, not a file; download files one at a time, or restore the folder",
            entry.kind
        ))
        .into());
    }
    // The full id from `stat`: the file read is the file checked. No
    // timeout: the client decides how long to read, and dropping the child
    // stops restic.
    let child = crate::restic::restore::DumpFile {
        snapshot: &info.id,
        path: &path,
        tag: None,
        no_lock: true,
        timeout: None,
    }
    .spawn(&st.restic, &repo)
    .map_err(|e| HttpFailure::from_read(e.into()))?;
    let stream = futures_util::stream::unfold(Some(child), |state| async move {
        let mut child = state?;
        let mut buf = vec![0u8; 64 * 1024];
        match child.read(&mut buf).await {
            Ok(0) => {
                let ended = child.wait(&Shutdown::never()).await;
                let Output { ended, stderr, .. } = child.output(ended).await;
                if ended.success() {
                    None
                } else {
                    // Cut the response short: the client sees an incomplete
                    // download, never a silently truncated file.
                    let why = crate::restic::error::last_line(&stderr);
                    Some((
                        Err(std::io::Error::other(format!("restic dump failed: {why}"))),
                        None,
                    ))
                }
            }
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(Bytes::from(buf)), Some(child)))
            }
            Err(e) => Some((Err(e), None)),
        }
    });
    let mut res = Body::from_stream(stream).into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/octet-stream"),
    );
    if let Ok(v) = header::HeaderValue::from_str(&disposition(&path)) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    if let Some(size) = entry.size {
        h.insert(header::CONTENT_LENGTH, header::HeaderValue::from(size));
    }
    Ok(res)
}

/// `GET /metrics`: the same exposition as `restic-manager metrics` prints
/// and `metrics_file` holds.
pub async fn metrics(State(st): State<Shared>) -> ApiResult {
    let text = st
        .read(|st, h| {
            let version = Some(st.restic.version.to_string());
            crate::metrics::collect(&st.config, h, chrono::Utc::now(), version)
                .map(|f| crate::metrics::prometheus(&f))
        })
        .await?
        .map_err(HttpFailure::history)?;
    Ok((
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response())
}
