//! The HTML pages, rendered on the server with maud (which escapes every
//! value). They work without JavaScript; `app.js` only refreshes the live
//! progress of a running job.

use axum::Extension;
use axum::extract::{ConnectInfo, Form, Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;

use super::auth::{Authed, COOKIE};
use super::data::{self, RunDetail, RunView, ServiceView};
use super::jobs::{Job, JobState};
use super::respond::{HttpFailure, layout, url_encode};
use super::{Shared, api};
use crate::history::VerifyRow;
use crate::model::{Outcome, RunStatus};
use crate::output::{age, bytes, duration_ms, local_time};
use crate::restic::ops::SnapshotGroup;
use crate::restore::listing;

/// The session's CSRF token for the frame's logout form (a Bearer client
/// has no session to end).
fn logout_csrf(authed: &Authed) -> Option<&str> {
    match authed {
        Authed::Session { csrf, .. } => Some(csrf),
        Authed::Bearer => None,
    }
}

fn page(title: &str, authed: &Authed, body: Markup) -> Response {
    Html(layout(title, logout_csrf(authed), false, body).into_string()).into_response()
}

fn badge(state: &str) -> Markup {
    html! { span class=(format!("badge {state}")) { (state) } }
}

fn when(ms: i64) -> String {
    let secs = u64::try_from((crate::history::now_ms() - ms).max(0) / 1000).unwrap_or(0);
    format!("{} ({} ago)", local_time(ms), age(secs))
}

fn iso_local(iso: Option<&str>) -> String {
    iso.and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map_or_else(
            || "-".into(),
            |t| {
                t.with_timezone(&chrono::Local)
                    .format("%Y-%m-%d %H:%M")
                    .to_string()
            },
        )
}

/// Bars of recent run durations, coloured by outcome.
fn sparkline(runs: &[RunView]) -> Markup {
    let max = runs
        .iter()
        .filter_map(|r| r.duration_ms)
        .max()
        .unwrap_or(1)
        .max(1);
    let n = runs.len();
    html! {
        svg.spark width=(n * 6) height="24" viewBox=(format!("0 0 {} 24", n * 6)) role="img" aria-label="durations of recent runs" {
            @for (i, r) in runs.iter().enumerate() {
                @let d = r.duration_ms.unwrap_or(0);
                @let h = (d * 22 / max).max(2);
                rect x=(i * 6) y=(24 - h) width="5" height=(h) class=(format!("bar {}", r.outcome)) {
                    title { (format!("run {}: {} ({})", r.id, duration_ms(d), r.outcome)) }
                }
            }
        }
    }
}

fn run_button(name: &str, action: &str, label: &str, csrf: &str) -> Markup {
    html! {
        form.inline method="post" action=(format!("/services/{}/{action}", url_encode(name))) {
            input type="hidden" name="csrf" value=(csrf);
            button type="submit" { (label) }
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    #[serde(default)]
    next: Option<String>,
}

/// Only local paths are followed after logging in. Browsers drop tabs,
/// CR and LF from a `Location` and read `\\` as `/`, so `/<TAB>/evil.example`
/// and `/\\evil.example` lead to another site: the value is judged after
/// that same normalisation and must then start with exactly one `/`.
/// Anything else, or anything with another control character, goes to `/`.
/// What is followed is the normalised path, with non-ASCII percent-encoded,
/// so the header is always valid.
pub fn safe_next(next: Option<&str>) -> String {
    let Some(raw) = next else {
        return "/".to_string();
    };
    let n: String = raw
        .chars()
        .filter(|c| !matches!(c, '\t' | '\r' | '\n'))
        .map(|c| if c == '\\' { '/' } else { c })
        .collect();
    let mut chars = n.chars();
    let local = chars.next() == Some('/') && chars.next() != Some('/');
    if !local || n.chars().any(char::is_control) {
        return "/".to_string();
    }
    let mut out = String::with_capacity(n.len());
    for c in n.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        }
    }
    out
}

fn login_page(next: &str, error: Option<&str>) -> Markup {
    layout(
        "Log in",
        None,
        false,
        html! {
            h1 { "Log in" }
            @if let Some(e) = error { p.error { (e) } }
            form.login method="post" action="/login" {
                input type="hidden" name="next" value=(next);
                label for="token" { "Access token" }
                input #token type="password" name="token" autocomplete="current-password" required autofocus;
                button type="submit" { "Log in" }
            }
            p.hint { "The token is in the file named by " code { "[web] token_file" } " (by default " code { "web-token" } " in the state directory); " code { "restic-manager setup" } " creates it." }
        },
    )
}

/// `GET /login`.
pub async fn login_form(Query(q): Query<LoginQuery>) -> Response {
    Html(login_page(&safe_next(q.next.as_deref()), None).into_string()).into_response()
}

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    token: String,
    #[serde(default)]
    next: Option<String>,
}

/// `POST /login`: a right token starts a session (cookie with a random id).
pub async fn login(
    State(st): State<Shared>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    Form(f): Form<LoginForm>,
) -> Response {
    let next = safe_next(f.next.as_deref());
    if !st.auth.token_ok(&f.token) {
        // Slows guessing down, more with every wrong token from the same
        // address; the token is long enough that guessing cannot work.
        st.auth.strikes.wrong(peer.ip()).await;
        let page = login_page(&next, Some("Wrong token."));
        return (StatusCode::UNAUTHORIZED, Html(page.into_string())).into_response();
    }
    st.auth.strikes.right(peer.ip());
    let id = st.auth.login();
    (
        [(
            header::SET_COOKIE,
            format!("{COOKIE}={id}; HttpOnly; SameSite=Strict; Path=/; Max-Age=43200"),
        )],
        Redirect::to(&next),
    )
        .into_response()
}

/// `POST /logout`.
pub async fn logout(State(st): State<Shared>, Extension(authed): Extension<Authed>) -> Response {
    if let Authed::Session { id, .. } = &authed {
        st.auth.logout(id);
    }
    (
        [(
            header::SET_COOKIE,
            format!("{COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0"),
        )],
        Redirect::to("/login"),
    )
        .into_response()
}

/// Any other path: 404.
pub async fn not_found(Extension(authed): Extension<Authed>, uri: axum::http::Uri) -> Response {
    HttpFailure::not_found("no such page")
        .json(authed.wants_json() || uri.path().starts_with("/api/"))
        .into_response()
}

/// A destination's state and its reasons, for a tooltip.
fn dest_title(d: &data::DestView) -> String {
    let mut t = d.state.as_str().to_string();
    for r in &d.reasons {
        t.push('\n');
        t.push_str(r);
    }
    t
}

fn overview_row(s: &ServiceView, csrf: &str, job: Option<&Job>) -> Markup {
    let link = format!("/services/{}", url_encode(&s.name));
    html! {
        tr {
            td { a href=(link) { (s.name) } @if !s.enabled { " " span.muted { "(disabled)" } } }
            td title=(s.reasons.join("\n")) { (badge(s.state.as_str())) }
            td {
                @match &s.last_run {
                    Some(r) => { (badge(r.outcome.as_str())) " " (age(r.age_seconds)) " ago" }
                    None => span.muted { "never" },
                }
            }
            td {
                @for d in &s.destinations {
                    div.dest {
                        span class=(format!("dot {}", d.state.as_str())) title=(dest_title(d)) {}
                        (d.destination) ": "
                        @match d.snapshot_age_seconds {
                            Some(a) => { (age(a)) " ago" }
                            None => span.muted { "none" },
                        }
                    }
                }
            }
            td { (iso_local(s.next_run.as_deref())) }
            td {
                @for d in &s.destinations {
                    div { (d.bytes_added.map_or_else(|| "-".into(), bytes)) }
                }
            }
            td { (sparkline(&s.recent)) }
            td {
                @if job.is_some_and(|j| j.state == JobState::Running) {
                    a href=(format!("{link}/job")) { "running…" }
                } @else {
                    (run_button(&s.name, "run", "Back up now", csrf))
                }
            }
        }
    }
}

/// `GET /`: every service at a glance.
pub async fn overview(
    State(st): State<Shared>,
    Extension(authed): Extension<Authed>,
) -> Result<Response, HttpFailure> {
    let services = st
        .read(|st, h| data::overview(h, &st.config))
        .await?
        .map_err(HttpFailure::history)?;
    let body = html! {
        h1 { "Backups" }
        @if services.is_empty() {
            p { "No services are configured." }
        } @else {
            table.overview {
                thead { tr {
                    th { "Service" } th { "Health" } th { "Last run" } th { "Newest snapshot" }
                    th { "Next run" } th { "Added" } th { "Recent durations" } th {}
                } }
                tbody {
                    @for s in &services {
                        (overview_row(s, authed.csrf(), st.jobs.get(&s.name).as_ref()))
                    }
                }
            }
        }
    };
    Ok(page("Overview", &authed, body))
}

fn job_box(name: &str, job: &Job) -> Markup {
    html! {
        div.job {
            "Dashboard " (job.kind.name()) " (job " (job.id) "): "
            @if job.state == JobState::Running { strong { "running" } }
            @else { (badge(job.outcome.map_or("done", Outcome::as_str))) }
            " — " a href=(format!("/services/{}/job", url_encode(name))) { "details" }
            @if let Some(m) = &job.message { div.muted { (m) } }
        }
    }
}

/// `GET /services/NAME`: destinations, snapshots, runs, verifications.
pub async fn service(
    State(st): State<Shared>,
    Path(name): Path<String>,
    Extension(authed): Extension<Authed>,
) -> Result<Response, HttpFailure> {
    let Some(svc) = st.config.service(&name) else {
        return Err(HttpFailure::not_found(format!("unknown service `{name}`")));
    };
    let n = name.clone();
    let (view, runs, verifies) = st
        .read(move |st, h| {
            let svc = st.config.service(&n);
            Ok::<_, crate::history::HistoryError>((
                match svc {
                    Some(s) => data::service_view(h, s)?,
                    None => None,
                },
                data::runs(h, &n, 20)?,
                data::verifies(h, &n)?,
            ))
        })
        .await?
        .map_err(HttpFailure::history)?;
    let Some(view) = view else {
        return Err(HttpFailure::not_found(format!("unknown service `{name}`")));
    };
    let groups = api::snapshot_groups(&st, &name, None).await?;
    let job = st.jobs.get(&name);
    let enc = url_encode(&name);
    let csrf = authed.csrf();
    let body = html! {
        h1 { (name) " " (badge(view.state.as_str())) }
        @if !view.reasons.is_empty() {
            ul.reasons { @for r in &view.reasons { li.muted { (r) } } }
        }
        @if let Some(d) = &svc.description { p { (d) } }
        div.actions {
            (run_button(&name, "run", "Back up now", csrf))
            form.inline method="post" action=(format!("/services/{enc}/verify")) {
                input type="hidden" name="csrf" value=(csrf);
                button type="submit" { "Verify repositories" }
                " "
                label title="restic check --read-data: reads every pack (as long as a full download)" {
                    input type="checkbox" name="deep" value="on"; " read all data"
                }
                " "
                label title="restore the latest snapshot (a sample of files, the newest dumps) and compare" {
                    input type="checkbox" name="drill" value="on"; " restore drill"
                }
            }
        }
        @if let Some(j) = &job { (job_box(&name, j)) }
        p {
            "Schedule: " code { (svc.schedule.as_deref().unwrap_or("none")) }
            " · next run: " (iso_local(view.next_run.as_deref()))
        }
        (destinations_table(&view, &enc))
        (snapshots_section(&groups, &enc))
        (runs_table(&runs, &enc))
        (verifies_table(&verifies))
    };
    Ok(page(&name, &authed, body))
}

/// Each destination's health and newest snapshot.
fn destinations_table(view: &ServiceView, enc: &str) -> Markup {
    html! {
        h2 { "Destinations" }
        table {
            thead { tr { th { "Destination" } th { "Health" } th { "Newest snapshot" } th { "Age" } th { "Added" } th { "Duration" } } }
            tbody {
                @for d in &view.destinations {
                    tr {
                        td { (d.destination) }
                        td { (badge(d.state.as_str())) }
                        td {
                            @match &d.snapshot_id {
                                Some(id) => a href=(format!("/services/{enc}/snapshots/{id}?destination={}", url_encode(&d.destination))) { code { (id.chars().take(8).collect::<String>()) } },
                                None => span.muted { "none" },
                            }
                        }
                        td { (d.snapshot_age_seconds.map_or_else(|| "-".into(), |a| format!("{} ago", age(a)))) }
                        td { (d.bytes_added.map_or_else(|| "-".into(), bytes)) }
                        td { (d.duration_ms.map_or_else(|| "-".into(), duration_ms)) }
                    }
                }
            }
        }
    }
}

/// The newest snapshots in each destination, as restic listed them.
fn snapshots_section(groups: &[SnapshotGroup], enc: &str) -> Markup {
    html! {
        h2 { "Snapshots" }
        @for g in groups {
            h3 { (g.destination) " " span.muted { (g.repository) } }
            @if let Some(e) = &g.error { p.error { (e) } }
            @if g.snapshots.is_empty() && g.error.is_none() { p.muted { "No snapshots." } }
            @if !g.snapshots.is_empty() {
                table.snapshots {
                    thead { tr { th { "ID" } th { "Time" } th { "Host" } th { "Paths" } } }
                    tbody {
                        @for s in g.snapshots.iter().take(50) {
                            tr {
                                td { a href=(format!("/services/{enc}/snapshots/{}?destination={}", s.id, url_encode(&g.destination))) { code { (s.id.chars().take(8).collect::<String>()) } } }
                                td { (iso_local(Some(s.time.as_str()))) }
                                td { (s.hostname) }
                                td { (s.paths.join(" ")) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The newest runs.
fn runs_table(runs: &[RunDetail], enc: &str) -> Markup {
    html! {
        h2 { "Runs" }
        @if runs.is_empty() { p.muted { "No runs yet." } }
        @else {
            table.runs {
                thead { tr { th { "Run" } th { "Started" } th { "Outcome" } th { "Duration" } th { "Message" } } }
                tbody {
                    @for r in runs {
                        tr {
                            td { a href=(format!("/services/{enc}/runs/{}", r.run.id)) { "#" (r.run.id) } }
                            td { (when(r.run.started_at_ms)) }
                            td { (badge(r.run.outcome.as_str())) }
                            td { (r.run.duration_ms.map_or_else(|| "-".into(), duration_ms)) }
                            td { (r.run.message.as_deref().unwrap_or("")) }
                        }
                    }
                }
            }
        }
    }
}

/// The newest verifications.
fn verifies_table(verifies: &[VerifyRow]) -> Markup {
    html! {
        h2 { "Verifications" }
        @if verifies.is_empty() { p.muted { "No verification yet." } }
        @else {
            table.verifies {
                thead { tr { th { "Started" } th { "Destination" } th { "Kind" } th { "Trigger" } th { "Outcome" } th { "Message" } } }
                tbody {
                    @for v in verifies {
                        tr {
                            td { (when(v.started_at_ms)) }
                            td { (v.destination) }
                            td { (v.kind) @if let Some(s) = &v.subset { " " (s) } }
                            td { (v.trigger) }
                            td { (badge(v.outcome.as_str())) }
                            td { (v.error_message.as_deref().unwrap_or("")) }
                        }
                    }
                }
            }
        }
    }
}

/// `GET /services/NAME/runs/ID`: one run with its log's tail.
pub async fn run(
    State(st): State<Shared>,
    Path((name, id)): Path<(String, String)>,
    Extension(authed): Extension<Authed>,
) -> Result<Response, HttpFailure> {
    if st.config.service(&name).is_none() {
        return Err(HttpFailure::not_found(format!("unknown service `{name}`")));
    }
    let Ok(id) = id.parse::<i64>() else {
        return Err(HttpFailure::not_found(format!("no run `{id}`")));
    };
    let n = name.clone();
    let detail = st
        .read(move |_, h| data::run(h, &n, id))
        .await?
        .map_err(HttpFailure::history)?
        .ok_or_else(|| HttpFailure::not_found(format!("service `{name}` has no run {id}")))?;
    let log = detail
        .run
        .log_file
        .as_deref()
        .and_then(|f| data::log_tail(f, 200, &st.secrets));
    let running = detail.run.outcome == RunStatus::Running;
    let enc = url_encode(&name);
    let body = html! {
        p { a href=(format!("/services/{enc}")) { "← " (name) } }
        h1 { "Run #" (id) " " (badge(detail.run.outcome.as_str())) }
        p {
            "Started " (when(detail.run.started_at_ms))
            @if let Some(d) = detail.run.duration_ms { " · took " (duration_ms(d)) }
        }
        @if running { p { "This run is in progress: " a href=(format!("/services/{enc}/job")) { "live progress" } } }
        @if let Some(m) = &detail.run.message { p.error { (m) } }
        table {
            thead { tr { th { "Destination" } th { "Outcome" } th { "Snapshot" } th { "New" } th { "Changed" } th { "Added" } th { "Duration" } th { "Error" } } }
            tbody {
                @for t in &detail.targets {
                    tr {
                        td { (t.destination) }
                        td { (badge(t.outcome.as_str())) }
                        td {
                            @if let Some(s) = &t.snapshot_id {
                                a href=(format!("/services/{enc}/snapshots/{s}?destination={}", url_encode(&t.destination))) { code { (s.chars().take(8).collect::<String>()) } }
                            }
                        }
                        td { (t.files_new.map_or_else(|| "-".into(), |v| v.to_string())) }
                        td { (t.files_changed.map_or_else(|| "-".into(), |v| v.to_string())) }
                        td { (t.bytes_added.map_or_else(|| "-".into(), bytes)) }
                        td { (duration_ms(t.duration_ms)) }
                        td { (t.error_message.as_deref().unwrap_or("")) }
                    }
                }
            }
        }
        h2 { "Log" }
        @match log {
            Some(l) => pre.log { (l) },
            None => p.muted { "No log file." },
        }
    };
    Ok(page(&format!("{name} run {id}"), &authed, body))
}

/// `GET /services/NAME/job`: the newest dashboard job, live while it runs
/// (`app.js` polls `/api/services/NAME/job`; without JavaScript the page
/// refreshes itself).
pub async fn job(
    State(st): State<Shared>,
    Path(name): Path<String>,
    Extension(authed): Extension<Authed>,
) -> Result<Response, HttpFailure> {
    if st.config.service(&name).is_none() {
        return Err(HttpFailure::not_found(format!("unknown service `{name}`")));
    }
    let enc = url_encode(&name);
    let job = st.jobs.get(&name);
    let running = job.as_ref().is_some_and(|j| j.state == JobState::Running);
    let body = html! {
        p { a href=(format!("/services/{enc}")) { "← " (name) } }
        @match &job {
            None => { h1 { "No job" } p { "Nothing was started from the dashboard for this service since the server started." } }
            Some(j) => {
                h1 { (j.kind.name()) " of " (name) }
                div #job data-poll=(format!("/api/services/{enc}/job")) data-state=(j.state) {
                    p {
                        "State: " strong #job-state { (j.state) }
                        @if let Some(o) = j.outcome { " " span #job-outcome { (badge(o.as_str())) } }
                        " · started " (when(j.started_at_ms))
                    }
                    @if let Some(m) = &j.message { p #job-message { (m) } }
                    table #job-targets {
                        thead { tr { th { "Destination" } th { "State" } th { "Progress" } th { "Files" } th { "Bytes" } } }
                        tbody {
                            @for t in &j.targets {
                                tr data-dest=(t.destination) {
                                    td { (t.destination) }
                                    td.state { (t.state) }
                                    td { progress max="100" value=(format!("{:.0}", t.percent_done * 100.0)) {} " " span.pct { (format!("{:.0}%", t.percent_done * 100.0)) } }
                                    td.files { (t.files_done) " / " (t.total_files) }
                                    td.bytes { (bytes(t.bytes_done)) " / " (bytes(t.total_bytes)) }
                                }
                            }
                        }
                    }
                    @if !j.notes.is_empty() {
                        ul #job-notes { @for n in &j.notes { li { (n) } } }
                    }
                    @if let Some(r) = j.run_id {
                        p { a #job-run href=(format!("/services/{enc}/runs/{r}")) { "Run #" (r) } }
                    }
                    @if j.state == JobState::Done {
                        p #job-done { "Finished." }
                    }
                }
            }
        }
    };
    Ok(
        Html(layout(&format!("{name} job"), logout_csrf(&authed), running, body).into_string())
            .into_response(),
    )
}

/// `GET /services/NAME/snapshots/ID?destination=D&path=DIR`: one folder of
/// a snapshot, with download links and a restore form.
pub async fn browse(
    State(st): State<Shared>,
    Path((name, snapshot)): Path<(String, String)>,
    Query(q): Query<api::DestQuery>,
    Extension(authed): Extension<Authed>,
) -> Result<Response, HttpFailure> {
    let (snapshot, path, repo, tag) = api::locate(&st, &name, &snapshot, &q, "/")?;
    let l = listing::folder(&st.restic, &repo, &snapshot, &tag, &path)
        .await
        .map_err(HttpFailure::from_read)?;
    let enc = url_encode(&name);
    let dest = url_encode(&repo.destination);
    let sid = &l.snapshot.id;
    let browse_link = |p: &str| {
        format!(
            "/services/{enc}/snapshots/{sid}?destination={dest}&path={}",
            url_encode(p)
        )
    };
    let mut crumbs = vec![("/".to_string(), "/".to_string())];
    let mut acc = String::new();
    for part in path.split('/').filter(|p| !p.is_empty()) {
        acc.push('/');
        acc.push_str(part);
        crumbs.push((acc.clone(), part.to_string()));
    }
    let body = html! {
        p { a href=(format!("/services/{enc}")) { "← " (name) } }
        h1 { "Snapshot " code { (l.snapshot.short_id.clone().unwrap_or_else(|| sid.chars().take(8).collect())) } }
        p.muted { (repo.destination) " · " (iso_local(Some(&l.snapshot.time))) " · " (l.snapshot.hostname) " · " (l.snapshot.paths.join(" ")) }
        nav.crumbs {
            @for (i, (p, label)) in crumbs.iter().enumerate() {
                @if i > 1 { " / " }
                a href=(browse_link(p)) { (label) }
            }
        }
        table.files {
            thead { tr { th { "Name" } th { "Size" } th { "Modified" } th { "Mode" } } }
            tbody {
                @if path != "/" {
                    tr { td { a href=(browse_link(crumbs.get(crumbs.len().saturating_sub(2)).map_or("/", |c| c.0.as_str()))) { ".." } } td {} td {} td {} }
                }
                @for e in &l.entries {
                    tr {
                        td {
                            @if e.kind == "dir" {
                                a.dir href=(browse_link(&e.path)) { (e.name) "/" }
                            } @else if e.kind == "file" {
                                a.file href=(format!("/api/snapshots/{enc}/{sid}/download?destination={dest}&path={}", url_encode(&e.path))) download=(e.name) { (e.name) }
                            } @else {
                                (e.name) " " span.muted { "(" (e.kind) ")" }
                            }
                        }
                        td { (e.size.map_or_else(String::new, bytes)) }
                        td { (iso_local(e.mtime.as_deref())) }
                        td { code { (e.permissions.as_deref().unwrap_or("")) } }
                    }
                }
            }
        }
        @if l.truncated { p.error { "Only the first " (listing::MAX_ENTRIES) " entries are shown." } }
        h2 { "Restore" }
        form.restore method="post" action=(format!("/services/{enc}/restore")) {
            input type="hidden" name="csrf" value=(authed.csrf());
            input type="hidden" name="snapshot" value=(sid);
            input type="hidden" name="destination" value=(repo.destination);
            label for="rpath" { "File or folder" }
            input #rpath type="text" name="path" value=(path) required;
            label for="rfolder" { "New folder under " code { (st.config.web.restore_directory.display()) } }
            input #rfolder type="text" name="folder" placeholder="(generated)" pattern="[A-Za-z0-9_\\-][A-Za-z0-9._\\-]*";
            button type="submit" { "Restore" }
        }
        p.hint { "Restores go into a new, empty folder on the server; nothing existing is overwritten." }
    };
    Ok(page(&format!("{name} snapshot"), &authed, body))
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn next_is_judged_as_a_browser_reads_it() {
        let cases = [
            (None, "/"),
            (Some("/services/app"), "/services/app"),
            (Some("/services/app?x=1#y"), "/services/app?x=1#y"),
            (Some("/\t/evil.example/steal"), "/"),
            (Some("/\r\n/evil.example"), "/"),
            (Some("/\\evil.example"), "/"),
            (Some("\\/evil.example"), "/"),
            (Some("//evil.example"), "/"),
            (Some(" /x"), "/"),
            (Some("https://evil.example"), "/"),
            (Some("/a\u{7f}b"), "/"),
            (Some("/a\tb"), "/ab"),
            (Some("/a\\b"), "/a/b"),
            (Some("/é"), "/%C3%A9"),
            (Some(""), "/"),
        ];
        for (given, want) in cases {
            assert_eq!(safe_next(given), want, "{given:?}");
        }
    }
}
