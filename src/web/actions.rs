//! The dashboard's actions: start a backup, a verification or a restore of
//! one service, and the executor that runs them (see `jobs.rs`).

use axum::Extension;
use axum::extract::rejection::FormRejection;
use axum::extract::{Form, Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::task::JoinHandle;

use super::auth::Authed;
use super::jobs::{Job, JobKind, LiveProgress, Refused, Request};
use super::respond::HttpFailure;
use super::{Shared, input};
use crate::engine::Progress;
use crate::engine::run::Runner;
use crate::error::Error;
use crate::history::History;
use crate::model::Outcome;
use crate::restic::Repository;
use crate::verify::Verifier;

/// Runs queued jobs until the server ends.
pub async fn execute(
    st: Shared,
    mut queue: UnboundedReceiver<Request>,
    server: JoinHandle<std::io::Result<()>>,
) -> Result<(), Error> {
    tokio::pin!(server);
    loop {
        tokio::select! {
            r = &mut server => {
                return match r {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(e)) => Err(Error::Other(format!("the web server stopped: {e}"))),
                    Err(e) => Err(Error::Other(format!("the web server task failed: {e}"))),
                };
            }
            Some(req) = queue.recv() => {
                let (service, id) = (req.service.clone(), req.id);
                let running = tokio::task::spawn_local(job(st.clone(), req));
                tokio::task::spawn_local(supervise(st.jobs.clone(), service, id, running));
            }
        }
    }
}

/// Waits for a job's task: one that panics ends as `failed` instead of
/// staying `running`, which would refuse every later action on the service
/// until a restart.
async fn supervise(jobs: super::jobs::Jobs, service: String, id: u64, running: JoinHandle<()>) {
    if let Err(e) = running.await {
        jobs.finish(
            &service,
            id,
            Outcome::Failed,
            Some(format!(
                "the job stopped on an internal error ({e}); this is a bug, please report it with the server's log"
            )),
            None,
        );
    }
}

async fn job(st: Shared, req: Request) {
    let (outcome, message, run_id) = match &req.kind {
        JobKind::Run => run_job(&st, &req).await,
        JobKind::Verify { deep, drill } => verify_job(&st, &req, *deep, *drill).await,
        JobKind::Restore {
            destination,
            snapshot,
            path,
            target,
        } => restore_job(&st, &req.service, destination, snapshot, path, target).await,
    };
    st.jobs
        .finish(&req.service, req.id, outcome, message, run_id);
}

/// How a job ended: outcome, message, history run id.
type JobEnd = (Outcome, Option<String>, Option<i64>);

/// What a backup or verify job needs: its service, a history connection
/// of its own, and the live progress it reports into.
fn prepare<'a>(
    st: &'a Shared,
    req: &Request,
) -> Result<(&'a crate::config::Service, History, LiveProgress), JobEnd> {
    let svc = st
        .config
        .service(&req.service)
        .ok_or_else(|| (Outcome::Failed, Some("unknown service".into()), None))?;
    // As in `run`: a broken history never stops the job.
    let history = History::open_for_run(&st.config.settings.state_directory);
    let progress = LiveProgress {
        jobs: st.jobs.clone(),
        service: req.service.clone(),
        id: req.id,
    };
    Ok((svc, history, progress))
}

async fn run_job(st: &Shared, req: &Request) -> JobEnd {
    let (svc, history, progress) = match prepare(st, req) {
        Ok(x) => x,
        Err(e) => return e,
    };
    let runner = Runner {
        config: &st.config,
        restic: &st.restic,
        history: &history,
        shutdown: st.shutdown.clone(),
        progress: &progress,
        trigger: "web",
        allow_mass_forget: false,
    };
    // The same notifications and metrics as `restic-manager run`.
    let plan = crate::engine::plan::Plan::new(&st.config, &[svc]);
    let (reports, _) = crate::engine::notified::run(&runner, &st.dispatch, &plan).await;
    match reports.first() {
        Some(r) => (
            r.outcome,
            r.error.clone().or_else(|| r.warnings.first().cloned()),
            r.run_id,
        ),
        None => (
            Outcome::Interrupted,
            Some("the server is shutting down".into()),
            None,
        ),
    }
}

async fn verify_job(st: &Shared, req: &Request, deep: bool, drill: bool) -> JobEnd {
    let (svc, history, progress) = match prepare(st, req) {
        Ok(x) => x,
        Err(e) => return e,
    };
    for t in &svc.targets {
        progress.started(&svc.name, t);
    }
    // The verify library, as `restic-manager verify -s NAME` runs it: the
    // service's lock, history rows (trigger `web`), notifications, metrics.
    let request = crate::verify::Request {
        deep,
        subset: None,
        drill,
        trigger: "web".into(),
    };
    let note = |text: &str| progress.note(text);
    let verifier = Verifier {
        config: &st.config,
        restic: &st.restic,
        history: &history,
        shutdown: st.shutdown.clone(),
        note: &note,
        request: &request,
        destinations: &[],
    };
    let reports = verifier.run(&[svc]).await;
    for t in &svc.targets {
        let mine: Vec<_> = reports.iter().filter(|r| &r.destination == t).collect();
        if !mine.is_empty() {
            let outcome = mine.iter().fold(Outcome::Ok, |o, r| o.worst(r.outcome));
            progress.finished(&svc.name, t, outcome);
        }
    }
    crate::verify::announce(&st.config, &history, &st.restic, &st.dispatch, &reports).await;
    let message = reports.iter().find_map(|r| {
        r.error
            .as_ref()
            .map(|e| format!("`{}` ({}): {e}", r.destination, r.kind))
    });
    if reports.is_empty() {
        return (
            Outcome::Interrupted,
            Some("the server is shutting down".into()),
            None,
        );
    }
    (crate::verify::overall(&reports), message, None)
}

/// The time limit of a restore started from the dashboard.
const RESTORE_LIMIT: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

async fn restore_job(
    st: &Shared,
    service: &str,
    destination: &str,
    snapshot: &str,
    path: &str,
    target: &str,
) -> JobEnd {
    let repo = match repository(st, service, Some(destination)) {
        Ok(r) => r,
        Err(f) => return (Outcome::Failed, Some(f.message), None),
    };
    let target_dir = std::path::Path::new(target);
    // The folder was new or empty when the job was accepted; anything put
    // in it since (a symlink restic would follow) stops the restore, as in
    // the CLI's `restore`.
    let folder = crate::restore::files::Target::Folder(target_dir.to_path_buf());
    let links = crate::restore::files::existing_symlinks(&folder, &[]);
    if !links.is_empty() {
        let e = crate::restore::files::in_the_way(&folder, &links);
        return (Outcome::Failed, Some(e.message), None);
    }
    let Some(svc) = st.config.service(service) else {
        return (Outcome::Failed, Some("unknown service".into()), None);
    };
    let includes = if path == "/" {
        Vec::new()
    } else {
        vec![path.to_string()]
    };
    // Checked when the job was accepted (the snapshot resolved to its full
    // id, the path proven to exist, the folder new or empty), so the plan
    // is built here rather than by `restore::prepare`.
    let plan = crate::restore::Plan {
        service: svc,
        destination: destination.to_string(),
        repo,
        snapshot: crate::restic::output::Snapshot {
            id: snapshot.to_string(),
            short_id: None,
            time: String::new(),
            hostname: String::new(),
            paths: Vec::new(),
            tags: Vec::new(),
            original: None,
        },
        what: crate::restore::What::Files {
            target: folder,
            includes,
        },
        overwrite: false,
        limit: Some(RESTORE_LIMIT),
        contents: Default::default(),
        warnings: Vec::new(),
    };
    match crate::restore::execute(&st.restic, &plan, &st.shutdown).await {
        Ok(_) => (
            Outcome::Ok,
            Some(format!(
                "restored `{path}` from snapshot {} into `{target}`",
                plan.snapshot.short()
            )),
            None,
        ),
        Err(e) => (Outcome::Failed, Some(e.message), None),
    }
}

/// The repository of `service` on `destination` (default: its first
/// target), with credentials read. Unknown names are 404s.
pub fn repository(
    st: &Shared,
    service: &str,
    destination: Option<&str>,
) -> Result<Repository, HttpFailure> {
    let svc = st
        .config
        .service(service)
        .ok_or_else(|| HttpFailure::not_found(format!("unknown service `{service}`")))?;
    let dest = match destination.filter(|d| !d.is_empty()) {
        Some(d) if svc.targets.iter().any(|t| t == d) => d,
        Some(d) => {
            return Err(HttpFailure::not_found(format!(
                "service `{service}` has no destination `{d}`"
            )));
        }
        None => svc.targets.first().map(String::as_str).ok_or_else(|| {
            HttpFailure::not_found(format!("service `{service}` has no destinations"))
        })?,
    };
    let d = st
        .config
        .destinations
        .get(dest)
        .ok_or_else(|| HttpFailure::not_found(format!("unknown destination `{dest}`")))?;
    Repository::open(d, service, &st.config.settings.password)
        .map_err(|e| HttpFailure::internal(e.to_string()))
}

fn started(authed: &Authed, job: &Job) -> Response {
    if authed.wants_json() {
        (
            StatusCode::ACCEPTED,
            [(
                header::LOCATION,
                format!("/api/services/{}/job", job.service),
            )],
            axum::Json(job),
        )
            .into_response()
    } else {
        Redirect::to(&format!("/services/{}/job", job.service)).into_response()
    }
}

fn start(st: &Shared, authed: &Authed, name: &str, kind: JobKind) -> Response {
    let json = authed.wants_json();
    if st.config.service(name).is_none() {
        return HttpFailure::not_found(format!("unknown service `{name}`"))
            .json(json)
            .into_response();
    }
    match st.jobs.start(name, kind) {
        Ok(job) => started(authed, &job),
        Err(Refused::Busy(m)) => HttpFailure::new(StatusCode::CONFLICT, m)
            .json(json)
            .into_response(),
        Err(Refused::Stopping) => HttpFailure::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the server is shutting down",
        )
        .json(json)
        .into_response(),
    }
}

/// `POST /services/NAME/run`: back the service up now.
pub async fn run(
    State(st): State<Shared>,
    Path(name): Path<String>,
    Extension(authed): Extension<Authed>,
) -> Response {
    start(&st, &authed, &name, JobKind::Run)
}

/// The verify form: checkboxes `deep` (read all data) and `drill` (a
/// restore drill); without them a structure check.
#[derive(Debug, Default, Deserialize)]
pub struct VerifyForm {
    #[serde(default)]
    pub deep: Option<String>,
    #[serde(default)]
    pub drill: Option<String>,
}

/// A checkbox or flag given as `on`, `1`, `true` or `yes`.
fn flag(v: Option<&str>) -> bool {
    matches!(v, Some("on" | "1" | "true" | "yes"))
}

/// `POST /services/NAME/verify`: `verify -s NAME [--deep] [--drill]`.
pub async fn verify(
    State(st): State<Shared>,
    Path(name): Path<String>,
    Extension(authed): Extension<Authed>,
    form: Result<Form<VerifyForm>, FormRejection>,
) -> Response {
    // A POST without a body (a script, or the CSRF header alone) is a plain
    // check.
    let f = match form {
        Ok(Form(f)) => f,
        Err(FormRejection::InvalidFormContentType(_)) => VerifyForm::default(),
        Err(e) => {
            return HttpFailure::bad_request(format!("bad verify form: {e}"))
                .json(authed.wants_json())
                .into_response();
        }
    };
    let kind = JobKind::Verify {
        deep: flag(f.deep.as_deref()),
        drill: flag(f.drill.as_deref()),
    };
    start(&st, &authed, &name, kind)
}

/// The restore form.
#[derive(Debug, Deserialize)]
pub struct RestoreForm {
    pub snapshot: String,
    #[serde(default)]
    pub destination: Option<String>,
    pub path: String,
    /// Name of the new folder under the restore directory.
    #[serde(default)]
    pub folder: Option<String>,
}

/// `POST /services/NAME/restore`: restore one file or folder of a snapshot
/// into a new folder under `[web] restore_directory`.
pub async fn restore(
    State(st): State<Shared>,
    Path(name): Path<String>,
    Extension(authed): Extension<Authed>,
    form: Result<Form<RestoreForm>, FormRejection>,
) -> Response {
    let json = authed.wants_json();
    let f = match form {
        Ok(Form(f)) => f,
        Err(e) => {
            return HttpFailure::bad_request(format!(
                "bad restore form: {}; send `snapshot`, `path` and optionally `destination` and `folder`",
                e.body_text()
            ))
            .json(json)
            .into_response();
        }
    };
    match prepare_restore(&st, &name, &f).await {
        Ok(kind) => start(&st, &authed, &name, kind),
        Err(e) => e.json(json).into_response(),
    }
}

async fn prepare_restore(st: &Shared, name: &str, f: &RestoreForm) -> Result<JobKind, HttpFailure> {
    let snapshot = input::snapshot_id(&f.snapshot).map_err(HttpFailure::bad_request)?;
    let path = input::snapshot_path(&f.path).map_err(HttpFailure::bad_request)?;
    input::literal_pattern(&path).map_err(HttpFailure::bad_request)?;
    let svc = st
        .config
        .service(name)
        .ok_or_else(|| HttpFailure::not_found(format!("unknown service `{name}`")))?;
    let repo = repository(st, name, f.destination.as_deref())?;
    // Resolves `latest` and short ids to the full id, and proves the path
    // exists, before any folder is made.
    let (info, _) = crate::restore::listing::stat(&st.restic, &repo, &snapshot, &svc.tag(), &path)
        .await
        .map_err(HttpFailure::from_read)?;
    let folder = match f.folder.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        Some(n) => input::folder_name(n).map_err(HttpFailure::bad_request)?,
        None => format!(
            "{name}-{}-{}",
            &info.id[..info.id.len().min(8)],
            chrono::Local::now().format("%Y%m%d-%H%M%S")
        ),
    };
    let base = &st.config.web.restore_directory;
    std::fs::create_dir_all(base).map_err(|e| {
        HttpFailure::internal(format!(
            "cannot create the restore directory `{}`: {e}",
            base.display()
        ))
    })?;
    let target = base.join(&folder);
    match std::fs::symlink_metadata(&target) {
        Ok(m) if !m.is_dir() => {
            return Err(HttpFailure::new(
                StatusCode::CONFLICT,
                format!(
                    "`{}` exists and is not a folder; choose another name",
                    target.display()
                ),
            ));
        }
        Ok(_) => {
            let empty = std::fs::read_dir(&target)
                .map(|mut d| d.next().is_none())
                .unwrap_or(false);
            if !empty {
                return Err(HttpFailure::new(
                    StatusCode::CONFLICT,
                    format!(
                        "refusing to restore into `{}`: the folder is not empty; choose a new folder name",
                        target.display()
                    ),
                ));
            }
        }
        Err(_) => std::fs::create_dir(&target).map_err(|e| {
            HttpFailure::internal(format!("cannot create `{}`: {e}", target.display()))
        })?,
    }
    Ok(JobKind::Restore {
        destination: repo.destination.clone(),
        snapshot: info.id,
        path,
        target: target.display().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::web::jobs::{JobState, Jobs};

    #[tokio::test(flavor = "current_thread")]
    async fn a_panicking_job_ends_as_failed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (jobs, _queue) = Jobs::new(dir.path().to_path_buf());
        let kind = JobKind::Restore {
            destination: "local".into(),
            snapshot: "latest".into(),
            path: "/".into(),
            target: "/tmp/x".into(),
        };
        let started = jobs.start("web", kind).expect("job refused");
        let local = tokio::task::LocalSet::new();
        local
            .run_until(async {
                let running = tokio::task::spawn_local(async {
                    panic!("overflow when adding duration to instant")
                });
                supervise(jobs.clone(), "web".into(), started.id, running).await;
            })
            .await;
        let job = jobs.get("web").expect("no job");
        assert_eq!(
            (job.state, job.outcome),
            (JobState::Done, Some(Outcome::Failed))
        );
        let msg = job.message.unwrap_or_default();
        assert!(
            msg.contains("overflow when adding duration to instant"),
            "{msg}"
        );
    }
}
