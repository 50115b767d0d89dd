//! `serve`: the dashboard. axum on the one tokio runtime; pages rendered on
//! the server (maud) and readable without JavaScript; a JSON API with the
//! CLI's data; actions (backup, verify, restore) through the same engine,
//! locks and history as the CLI. Security model: `auth.rs`.

mod actions;
mod api;
pub mod auth;
mod conn;
pub mod data;
mod input;
pub mod jobs;
pub mod pages;
pub mod respond;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::config::Config;
use crate::error::Error;
use crate::process::Shutdown;
use crate::restic::Restic;

/// Everything a request handler may use.
pub struct AppState {
    pub config: Config,
    pub restic: Restic,
    pub db: data::Db,
    pub auth: auth::Auth,
    pub jobs: jobs::Jobs,
    pub shutdown: Shutdown,
    /// Notifications for dashboard backups and verifications, as the CLI
    /// sends them.
    pub dispatch: crate::notify::Dispatch,
    /// Texts blanked from log excerpts (token, repository password).
    pub secrets: Vec<String>,
}

pub type Shared = Arc<AppState>;

impl AppState {
    /// Runs a history read off the async threads.
    pub async fn read<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&AppState, &crate::history::History) -> T + Send + 'static,
    ) -> Result<T, respond::HttpFailure> {
        let st = self.clone();
        tokio::task::spawn_blocking(move || st.db.with(|h| f(&st, h)))
            .await
            .map_err(|e| respond::HttpFailure::internal(format!("history read failed: {e}")))
    }
}

/// Options of `serve`.
pub struct ServeOptions {
    pub listen: SocketAddr,
}

const STYLE: &str = include_str!("assets/style.css");
const SCRIPT: &str = include_str!("assets/app.js");

fn asset(kind: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        body,
    )
        .into_response()
}

/// CSP without inline script, no framing, no sniffing, nothing cached.
async fn security_headers(req: Request, next: Next) -> Response {
    let is_static = req.uri().path().starts_with("/static/");
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if !is_static {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    res
}

/// Most bytes of an error body turned into JSON.
const MAX_ERROR_BODY: usize = 16 * 1024;

/// Every error under `/api/`, and every error answered to a Bearer client,
/// is JSON `{"error": "..."}`, whatever produced it (an extractor's plain
/// text rejection, a 405, an HTML page); a form the handler could not read
/// is 400, as documented, not axum's 422.
async fn json_errors(req: Request, next: Next) -> Response {
    let api = req.uri().path().starts_with("/api/") || auth::bearer(req.headers()).is_some();
    let res = next.run(req).await;
    let status = res.status();
    if !api || !(status.is_client_error() || status.is_server_error()) {
        return res;
    }
    let is_json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        return res;
    }
    let (mut parts, body) = res.into_parts();
    let kind = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let text = axum::body::to_bytes(body, MAX_ERROR_BODY)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default();
    let message = if text.is_empty() || kind.starts_with("text/html") {
        status.canonical_reason().unwrap_or("error").to_lowercase()
    } else {
        text
    };
    if parts.status == axum::http::StatusCode::UNPROCESSABLE_ENTITY {
        parts.status = axum::http::StatusCode::BAD_REQUEST;
    }
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.remove(header::CONTENT_TYPE);
    let body = respond::error_json(&message);
    (parts, body).into_response()
}

/// The routes. Everything but the login page and the static files needs
/// the token (see `auth.rs`).
pub fn router(st: Shared) -> Router {
    let protected = Router::new()
        .route("/", get(pages::overview))
        .route("/services/{name}", get(pages::service))
        .route("/services/{name}/runs/{id}", get(pages::run))
        .route("/services/{name}/job", get(pages::job))
        .route("/services/{name}/snapshots/{snapshot}", get(pages::browse))
        .route("/services/{name}/run", post(actions::run))
        .route("/services/{name}/verify", post(actions::verify))
        .route("/services/{name}/restore", post(actions::restore))
        .route("/logout", post(pages::logout))
        .route("/api/status", get(api::status))
        .route("/api/services", get(api::services))
        .route("/api/services/{name}/runs", get(api::runs))
        .route("/api/services/{name}/job", get(api::job))
        .route("/api/snapshots/{name}", get(api::snapshots))
        .route("/api/snapshots/{name}/{snapshot}/files", get(api::files))
        .route(
            "/api/snapshots/{name}/{snapshot}/download",
            get(api::download),
        )
        .route("/metrics", get(api::metrics))
        .fallback(pages::not_found)
        .layer(middleware::from_fn_with_state(st.clone(), auth::require));
    Router::new()
        .route("/login", get(pages::login_form).post(pages::login))
        .route(
            "/static/style.css",
            get(|| async { asset("text/css", STYLE) }),
        )
        .route(
            "/static/app.js",
            get(|| async { asset("text/javascript", SCRIPT) }),
        )
        .merge(protected)
        .layer(middleware::from_fn(json_errors))
        .layer(middleware::from_fn(security_headers))
        .with_state(st)
}

/// Runs the server until a signal; returns the exit code.
pub async fn serve(
    config: Config,
    restic: Restic,
    token: String,
    opts: &ServeOptions,
    printer: crate::output::Printer,
) -> Result<crate::model::Exit, Error> {
    // As `run` does: a damaged database is moved aside and a new one
    // started, so the dashboard comes up (and says so) instead of failing.
    let opened = crate::history::History::open_for_run(&config.settings.state_directory);
    if let Some(r) = opened.recovery() {
        printer.warn(r.to_string());
    }
    drop(opened);
    let db = data::Db::open(&config.settings.state_directory, 4)?;
    let (jobs, queue) = jobs::Jobs::new(config.settings.lock_directory.clone());
    let (trigger, shutdown) = Shutdown::new();
    let mut secrets = vec![token.clone()];
    if let crate::config::PasswordSource::File(f) = &config.settings.password
        && let Ok(pw) = std::fs::read_to_string(f)
    {
        secrets.push(pw.trim().to_string());
    }
    let dispatch = crate::notify::Dispatch::new(&config, printer);
    let st = Arc::new(AppState {
        dispatch,
        config,
        restic,
        db,
        auth: auth::Auth::new(token),
        jobs,
        shutdown: shutdown.clone(),
        secrets,
    });
    let listener = tokio::net::TcpListener::bind(opts.listen)
        .await
        .map_err(|e| {
            Error::Other(format!(
                "cannot listen on {}: {e}; choose another address with `--listen` or `[web] listen`",
                opts.listen
            ))
        })?;
    let local = listener.local_addr().unwrap_or(opts.listen);
    crate::logging::notice(format!(
        "restic-manager: dashboard on http://{local}/ (Ctrl-C stops)"
    ));
    // The first signal stops accepting requests and tells running jobs to
    // stop safely (restic gets SIGINT and removes its lock, post hooks run,
    // the run is recorded as interrupted); a second one exits at once.
    crate::engine::signals::watch_signals(
        trigger,
        "signal received, stopping the server; running jobs stop safely (send again to exit at once)",
    );

    let (cap, limit) = conn::raise_fd_limit();
    if let Some((was, now)) = limit {
        printer.verbose(format!(
            "open-file limit {now} (was {was}); at most {cap} connections at once"
        ));
    }
    let server = tokio::spawn(conn::serve(
        listener,
        router(st.clone()),
        cap,
        shutdown.clone(),
    ));

    // Jobs borrow a history connection across awaits, which only a
    // thread-local task may do: they run here, on this thread's LocalSet.
    let tasks = tokio::task::LocalSet::new();
    let served = tasks
        .run_until(actions::execute(st.clone(), queue, server))
        .await;
    // Whatever is still running got the shutdown too; let it finish its
    // post hooks and history records.
    tasks.await;
    served.map(|()| crate::model::Exit::Ok)
}
