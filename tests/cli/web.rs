//! `serve`: every route over real HTTP against the built binary, with real
//! backups made by real restic: authentication, CSRF, path traversal,
//! unknown names, downloads, triggered runs and their conflicts, restores,
//! verification, signals, and the refusal to listen on the network without
//! a token.

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use reqwest::blocking::{Client, Response};
use serde_json::Value;

use crate::harness::{Scenario, free_port, poll};
use crate::receiver::Receiver;

/// `app` backs up `{root}/data/app` (a file, a sub folder) to `local`;
/// `extra` goes into `[services.app.config]` (hooks). Set up and backed up
/// once.
pub fn backed_up(extra: &str) -> Scenario {
    let s = Scenario::new();
    s.write("data/app/hello.txt", "hello from the dashboard\n");
    s.write("data/app/docs/report.txt", "quarterly numbers\n");
    s.write("data/app/docs/notes.md", "# notes\n");
    s.simple(&format!(
        "[services.app]\ntargets = [\"local\"]\nschedule = \"0 3 * * *\"\n\n[services.app.config]\npaths = [\"{{root}}/data/app\"]\n{extra}\n[web]\nrestore_directory = \"{{root}}/restores\"\n"
    ));
    s.run(&["setup", "--no-schedule"])
        .succeeds()
        .stdout_has("generated a web access token in");
    s.run(&["run"]).succeeds();
    s
}

/// A running `serve`; stopped with SIGTERM (then SIGKILL) when dropped.
pub struct Server {
    child: Option<Child>,
    pub base: String,
    pub token: String,
    log: std::path::PathBuf,
}

impl Server {
    pub fn start(s: &Scenario) -> Server {
        Server::start_under(s, &[])
    }

    /// Started through `wrapper` (a program and its arguments, e.g.
    /// `prlimit --nofile=1024:1024`), which must exec the server.
    pub fn start_under(s: &Scenario, wrapper: &[&str]) -> Server {
        let port = free_port();
        let log = s.path(&format!("serve-{port}.log"));
        let file = std::fs::File::create(&log).expect("log");
        let mut cmd = s.command();
        cmd.args(["serve", "--listen", &format!("127.0.0.1:{port}")]);
        if let Some((prog, args)) = wrapper.split_first() {
            let mut w = std::process::Command::new(prog);
            // `command()` starts from an empty environment.
            w.env_clear()
                .args(args)
                .arg(cmd.get_program())
                .args(cmd.get_args());
            for (k, v) in cmd.get_envs() {
                match v {
                    Some(v) => w.env(k, v),
                    None => w.env_remove(k),
                };
            }
            if let Some(d) = cmd.get_current_dir() {
                w.current_dir(d);
            }
            cmd = w;
        }
        let child = cmd
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("spawn serve");
        let mut srv = Server {
            child: Some(child),
            base: format!("http://127.0.0.1:{port}"),
            token: String::new(),
            log,
        };
        let c = client();
        let start = Instant::now();
        loop {
            if c.get(format!("{}/login", srv.base))
                .send()
                .is_ok_and(|r| r.status() == StatusCode::OK)
            {
                break;
            }
            if let Some(ch) = srv.child.as_mut()
                && let Ok(Some(st)) = ch.try_wait()
            {
                panic!("serve exited with {st}:\n{}", srv.log());
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "serve did not answer:\n{}",
                srv.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        srv.token = std::fs::read_to_string(s.path("state/restic-manager/web-token"))
            .expect("token")
            .trim()
            .to_string();
        srv
    }

    /// Peak resident memory of the server process, in KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        let pid = self.child.as_ref().map_or(0, Child::id);
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no VmHWM for pid {pid}"))
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// GET with the Bearer token.
    pub fn get(&self, path: &str) -> Response {
        client()
            .get(self.url(path))
            .bearer_auth(&self.token)
            .send()
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }

    /// GET with the Bearer token, expecting 200 and JSON.
    #[track_caller]
    pub fn json(&self, path: &str) -> Value {
        let r = self.get(path);
        assert_eq!(r.status(), StatusCode::OK, "GET {path}");
        r.json()
            .unwrap_or_else(|e| panic!("GET {path}: not JSON: {e}"))
    }

    /// POST with the Bearer token and a form body.
    pub fn post(&self, path: &str, form: &[(&str, &str)]) -> Response {
        client()
            .post(self.url(path))
            .bearer_auth(&self.token)
            .form(form)
            .send()
            .unwrap_or_else(|e| panic!("POST {path}: {e}"))
    }

    /// Logs in through the form with a client that keeps cookies (and
    /// gives up on a request after `timeout`); returns the client and the
    /// login's answer, a redirect.
    #[track_caller]
    pub fn log_in(&self, timeout: Option<Duration>) -> (Client, Response) {
        let mut b = Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .cookie_store(true);
        if let Some(t) = timeout {
            b = b.timeout(t);
        }
        let c = b.build().unwrap();
        let r = c
            .post(self.url("/login"))
            .form(&[("token", self.token.as_str()), ("next", "/")])
            .send()
            .expect("login");
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        (c, r)
    }

    /// Waits until the service's dashboard job is done; returns it.
    #[track_caller]
    pub fn wait_job(&self, service: &str) -> Value {
        let last = std::cell::RefCell::new(Value::Null);
        poll(
            Duration::from_secs(90),
            Duration::from_millis(100),
            || {
                let j = self.json(&format!("/api/services/{service}/job"));
                let done = (j["state"] == "done").then(|| j.clone());
                *last.borrow_mut() = j;
                done
            },
            || format!("job did not finish: {}\n{}", last.borrow(), self.log()),
        )
    }

    /// Sends `sig` and waits for the exit status.
    pub fn stop(&mut self, sig: nix::sys::signal::Signal) -> std::process::ExitStatus {
        let mut ch = self.child.take().expect("not running");
        let pid = nix::unistd::Pid::from_raw(i32::try_from(ch.id()).unwrap_or(0));
        let _ = nix::sys::signal::kill(pid, sig);
        poll(
            Duration::from_secs(60),
            Duration::from_millis(50),
            || ch.try_wait().ok().flatten(),
            || format!("serve did not stop:\n{}", self.log()),
        )
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut ch) = self.child.take() {
            let pid = nix::unistd::Pid::from_raw(i32::try_from(ch.id()).unwrap_or(0));
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            for _ in 0..100 {
                if let Ok(Some(_)) = ch.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = ch.kill();
            let _ = ch.wait();
        }
    }
}

/// A client that shows redirects instead of following them.
pub fn client() -> Client {
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(60))
        .build()
        .expect("client")
}

/// The body of a GET of `url` by client `c`.
fn text_of(c: &Client, url: String) -> String {
    c.get(url).send().and_then(Response::text).unwrap()
}

/// `r` sends the browser to `to`.
#[track_caller]
fn redirects(r: &Response, to: &str) {
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        r.headers().get("location").and_then(|v| v.to_str().ok()),
        Some(to)
    );
}

fn newest_snapshot(s: &Scenario) -> String {
    let snaps = s.snapshots("repo/app");
    snaps
        .iter()
        .max_by_key(|v| v["time"].as_str().unwrap_or("").to_string())
        .and_then(|v| v["id"].as_str())
        .expect("no snapshot")
        .to_string()
}

/// Every API route (`data`: the backed-up folder) answers 401 without the
/// token or with a wrong one, and a page sends a browser to the login.
fn refuses_a_missing_or_wrong_token(srv: &Server, data: &str) {
    let c = client();
    // Without a token, or with a wrong one: 401, and nothing but the error.
    for path in [
        "/api/status".to_string(),
        "/api/services".into(),
        "/api/services/app/runs".into(),
        "/api/services/app/job".into(),
        "/api/snapshots/app".into(),
        format!("/api/snapshots/app/latest/files?path={data}"),
        format!("/api/snapshots/app/latest/download?path={data}/hello.txt"),
        "/metrics".into(),
    ] {
        let r = c.get(srv.url(&path)).send().unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{path} without token");
        let body = r.text().unwrap_or_default();
        assert!(!body.contains("hello from"), "{path} leaked data: {body}");
        let r = c
            .get(srv.url(&path))
            .bearer_auth("not-the-token-not-the-token")
            .send()
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{path} wrong token");
        // The right token still works at once, and forgives the address
        // (wrong tokens in a row are answered ever more slowly).
        assert_eq!(srv.get("/api/status").status(), StatusCode::OK);
    }
    for path in [
        "/services/app/run",
        "/services/app/verify",
        "/services/app/restore",
    ] {
        let r = c.post(srv.url(path)).send().unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "POST {path}");
    }
    // Pages send a browser to the login form instead.
    let r = c.get(srv.url("/services/app")).send().unwrap();
    redirects(&r, "/login?next=/services/app");
}

#[test]
fn every_api_route_needs_the_token_and_answers_what_the_cli_says() {
    let s = backed_up("");
    let srv = Server::start(&s);
    let data = s.path("data/app").display().to_string();
    let snap = newest_snapshot(&s);

    refuses_a_missing_or_wrong_token(&srv, &data);

    // /api/status tells what `status --json` tells.
    let cli = s.run(&["status", "--json"]).json();
    let api = srv.json("/api/status");
    assert_eq!(api[0]["service"], "app");
    assert_eq!(api[0]["state"], "ok");
    assert_eq!(api[0]["last_run"]["outcome"], cli[0]["last_run"]["outcome"]);
    assert_eq!(api[0]["last_run"]["id"], cli[0]["last_run"]["id"]);
    assert_eq!(
        api[0]["destinations"][0]["snapshot_id"],
        cli[0]["destinations"][0]["snapshot_id"]
    );
    assert!(
        snap.starts_with(
            api[0]["destinations"][0]["snapshot_id"]
                .as_str()
                .unwrap_or("?")
        )
    );

    // /api/services: `list --json` plus health.
    let list = s.run(&["list", "--json"]).json();
    let services = srv.json("/api/services");
    for k in ["name", "targets", "schedule", "paths", "sources"] {
        assert_eq!(services[0][k], list[0][k], "{k}");
    }
    assert_eq!(services[0]["next_runs"].as_array().map(Vec::len), Some(3));

    // Runs with their targets, as history holds them.
    let runs = srv.json("/api/services/app/runs");
    let ids = s
        .history()
        .query("SELECT id FROM runs WHERE service = 'app'");
    assert_eq!(runs.as_array().map(Vec::len), Some(ids.len()));
    assert_eq!(runs[0]["targets"][0]["destination"], "local");
    assert_eq!(runs[0]["outcome"], "ok");

    // Snapshots: restic's own list, nothing secret.
    let snaps = srv.json("/api/snapshots/app");
    assert_eq!(snaps[0]["destination"], "local");
    assert_eq!(snaps[0]["snapshots"][0]["id"].as_str(), Some(snap.as_str()));
    let filtered = srv.json("/api/snapshots/app?destination=local");
    assert_eq!(filtered.as_array().map(Vec::len), Some(1));
    let pw = std::fs::read_to_string(s.path("pw")).unwrap_or_default();
    for doc in [&api, &services, &runs, &snaps] {
        let text = doc.to_string();
        assert!(!text.contains(pw.trim()), "password in {text}");
        assert!(!text.contains(&srv.token), "token in {text}");
    }

    // A folder of a snapshot, by full id, short id and `latest`.
    for id in [snap.as_str(), &snap[..8], "latest"] {
        let files = srv.json(&format!("/api/snapshots/app/{id}/files?path={data}"));
        let names: Vec<&str> = files["entries"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e["name"].as_str())
            .collect();
        assert_eq!(names, ["docs", "hello.txt"], "{id}");
        assert_eq!(files["snapshot"]["id"].as_str(), Some(snap.as_str()));
    }

    // A download is the file's exact content.
    let r = srv.get(&format!(
        "/api/snapshots/app/{snap}/download?path={data}/docs/report.txt"
    ));
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()
            .get("content-disposition")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("report.txt"))
    );
    assert_eq!(r.text().unwrap_or_default(), "quarterly numbers\n");
    // A folder is not a file.
    let r = srv.get(&format!(
        "/api/snapshots/app/latest/download?path={data}/docs"
    ));
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    // Security headers on every answer.
    let r = srv.get("/api/status");
    let h = r.headers();
    assert_eq!(
        h.get("cache-control").and_then(|v| v.to_str().ok()),
        Some("no-store")
    );
    assert_eq!(
        h.get("x-frame-options").and_then(|v| v.to_str().ok()),
        Some("DENY")
    );
    let csp = h
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    assert!(
        csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert!(!csp.contains("unsafe-inline"), "{csp}");
}

#[test]
fn traversal_bad_ids_and_unknown_names_are_refused() {
    let s = backed_up("");
    let srv = Server::start(&s);
    let data = s.path("data/app").display().to_string();

    // Paths that try to leave the folder or the snapshot: 400, never data.
    for q in [
        format!("{data}/../../../etc/passwd"),
        format!("{data}/%2e%2e/%2e%2e/etc/passwd"),
        format!("{data}%2f..%2f..%2fetc%2fpasswd"),
        format!("{data}/%252e%252e/%252e%252e/etc/passwd"),
        format!("{data}/%00/hello.txt"),
        "..".to_string(),
        "etc/passwd".to_string(),
        format!("{data}\\..\\hello.txt"),
    ] {
        for route in ["files", "download"] {
            let r = srv.get(&format!("/api/snapshots/app/latest/{route}?path={q}"));
            assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{route} {q}");
            let body = r.text().unwrap_or_default();
            assert!(body.contains("refused"), "{route} {q}: {body}");
        }
    }
    // A path that is simply not in the snapshot: 404.
    for path in [
        "/api/snapshots/app/latest/download?path=/etc/passwd".to_string(),
        format!("/api/snapshots/app/latest/files?path={data}/nope"),
    ] {
        assert_eq!(srv.get(&path).status(), StatusCode::NOT_FOUND, "{path}");
    }

    // Snapshot ids: hex of 8–64 characters or `latest`.
    for id in [
        "..%2f..%2fetc",
        "xyz",
        "1234567",
        "latest%00",
        "-rf",
        &"a".repeat(65),
    ] {
        let r = srv.get(&format!("/api/snapshots/app/{id}/files?path=/"));
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{id}");
    }
    // Valid but unknown: 404, not 500.
    let r = srv.get("/api/snapshots/app/deadbeef/files?path=/");
    assert_eq!(r.status(), StatusCode::NOT_FOUND, "{:?}", r.text());
    let unknown = "/api/snapshots/app/deadbeefdeadbeef/download?path=/x";
    assert_eq!(srv.get(unknown).status(), StatusCode::NOT_FOUND);

    // Unknown services and destinations: 404 on every route.
    for path in [
        "/api/services/nope/runs",
        "/api/services/nope/job",
        "/api/snapshots/nope",
        "/api/snapshots/..%2fapp",
        "/api/snapshots/app?destination=elsewhere",
        "/api/snapshots/nope/latest/files?path=/",
        "/api/snapshots/app/latest/files?path=/&destination=elsewhere",
        "/api/snapshots/nope/latest/download?path=/x",
        "/services/nope",
        "/services/nope/runs/1",
        "/services/app/runs/999",
        "/services/app/runs/abc",
        "/services/nope/job",
        "/services/nope/snapshots/latest",
        "/no/such/page",
    ] {
        let r = srv.get(path);
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
    }
    // The snapshot browser page refuses the same paths.
    let page = srv.get(&format!("/services/app/snapshots/latest?path={data}/docs"));
    assert_eq!(page.status(), StatusCode::OK);
    let page = page.text().unwrap_or_default();
    assert!(
        page.contains(&format!(
            "download?destination=local&amp;path={data}/docs/report.txt"
        )),
        "{page}"
    );
    for q in ["/../etc", "%2e%2e", "/%252e%252e/x"] {
        let r = srv.get(&format!("/services/app/snapshots/latest?path={q}"));
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{q}");
    }
    assert_eq!(
        srv.get("/services/app/snapshots/..%2f..%2fx").status(),
        StatusCode::BAD_REQUEST
    );
    // Static files need no login and are what the pages reference.
    let c = client();
    for (path, kind) in [
        ("/static/style.css", "text/css"),
        ("/static/app.js", "text/javascript"),
    ] {
        let r = c.get(srv.url(path)).send().unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        assert_eq!(
            r.headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok()),
            Some(kind)
        );
    }
    for path in ["/services/nope/run", "/services/nope/verify"] {
        assert_eq!(
            srv.post(path, &[]).status(),
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }
    assert!(!srv.log().contains("panicked"), "{}", srv.log());
}

/// Logs in through the form; returns the client (with the cookie) and the
/// session's CSRF token read from the overview page.
fn login(srv: &Server) -> (Client, String, String) {
    let (c, r) = srv.log_in(None);
    let cookie = r
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let page = text_of(&c, srv.url("/"));
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap_or_else(|| panic!("no csrf token in {page}"))
        .to_string();
    (c, csrf, cookie)
}

#[test]
fn browser_session_needs_csrf_for_every_action() {
    let s = backed_up("");
    let srv = Server::start(&s);
    let c = client();

    // A wrong token is refused.
    let r = c
        .post(srv.url("/login"))
        .form(&[("token", "wrong")])
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(r.text().unwrap_or_default().contains("Wrong token"));

    let (session, csrf, cookie) = login(&srv);
    // The cookie is a random session id, not the token, and scripts and
    // other sites cannot use it.
    assert!(cookie.starts_with("rm_session="), "{cookie}");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    assert!(!cookie.contains(&srv.token), "{cookie}");

    // The overview shows the real backup.
    let page = text_of(&session, srv.url("/"));
    assert!(page.contains("href=\"/services/app\""), "{page}");
    assert!(page.contains("badge ok"), "{page}");
    assert!(page.contains("<svg class=\"spark\""), "{page}");
    // No page shows the token or the repository password.
    let pw = std::fs::read_to_string(s.path("pw")).unwrap_or_default();
    for path in ["/", "/services/app", "/services/app/runs/1"] {
        let p = text_of(&session, srv.url(path));
        assert!(!p.contains(&srv.token), "token on {path}");
        assert!(!p.contains(pw.trim()), "password on {path}");
    }
    // After logging in, only local paths are followed.
    let r = c
        .post(srv.url("/login"))
        .form(&[("token", srv.token.as_str()), ("next", "//evil.example/")])
        .send()
        .unwrap();
    assert_eq!(
        r.headers().get("location").and_then(|v| v.to_str().ok()),
        Some("/")
    );

    // State changes without the CSRF token: 403, and nothing ran.
    let runs_before = s.history().query("SELECT count(*) FROM runs");
    for (path, form) in [
        ("/services/app/run", vec![]),
        ("/services/app/run", vec![("csrf", "0000")]),
        ("/services/app/verify", vec![]),
        (
            "/services/app/restore",
            vec![("snapshot", "latest"), ("path", "/")],
        ),
        ("/logout", vec![]),
    ] {
        let r = session.post(srv.url(path)).form(&form).send().unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{path} {form:?}");
    }
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(s.history().query("SELECT count(*) FROM runs"), runs_before);
    assert_eq!(srv.json("/api/services/app/job"), Value::Null);

    // With it, the backup starts and the browser goes to the live page.
    let r = session
        .post(srv.url("/services/app/run"))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .unwrap();
    redirects(&r, "/services/app/job");
    let job = srv.wait_job("app");
    assert_eq!(job["outcome"], "ok", "{job}");
    let live = text_of(&session, srv.url("/services/app/job"));
    assert!(live.contains("Finished."), "{live}");

    // Logging out ends the session.
    let r = session
        .post(srv.url("/logout"))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let r = session.get(srv.url("/")).send().unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
}

#[test]
fn triggered_backup_runs_through_the_engine_and_a_second_trigger_conflicts() {
    // The pre hook holds the run long enough to trigger again.
    let s = backed_up(
        "[[services.app.config.pre_backup_hooks]]\nname = \"slow\"\ncommand = \"sleep 2\"\n",
    );
    let before = s.snapshots("repo/app").len();
    let srv = Server::start(&s);
    let r = srv.post("/services/app/run", &[]);
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let job: Value = r.json().unwrap_or_default();
    assert_eq!(job["kind"], "run");
    assert_eq!(job["state"], "running");

    let r = srv.post("/services/app/run", &[]);
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let msg = r.json::<Value>().unwrap_or_default()["error"].to_string();
    assert!(msg.contains("still running"), "{msg}");
    // The CLI sees the same lock.
    s.run(&["run", "-s", "app"])
        .code(1)
        .stderr_has("already running");
    // So does a verification.
    assert_eq!(
        srv.post("/services/app/verify", &[]).status(),
        StatusCode::CONFLICT
    );

    let job = srv.wait_job("app");
    assert_eq!(job["outcome"], "ok", "{job}");
    let run_id = job["run_id"]
        .as_i64()
        .unwrap_or_else(|| panic!("no run id: {job}"));
    assert_eq!(
        s.history().query(&format!(
            "SELECT outcome, trigger FROM runs WHERE id = {run_id}"
        )),
        ["ok|web"]
    );
    assert_eq!(s.snapshots("repo/app").len(), before + 1);
    // Newest first: the CLI's refused run (recorded as failed), then ours.
    let runs = srv.json("/api/services/app/runs");
    assert_eq!(runs[0]["outcome"], "failed");
    assert_eq!(runs[0]["error_class"], "already_running");
    assert_eq!(runs[1]["id"].as_i64(), Some(run_id));
    assert_eq!(runs[1]["targets"][0]["outcome"], "ok");

    // The run page shows the log of that run.
    let page = srv.get(&format!("/services/app/runs/{run_id}"));
    assert_eq!(page.status(), StatusCode::OK);
    let page = page.text().unwrap_or_default();
    assert!(
        page.contains("pre-backup hook") || page.contains("slow"),
        "{page}"
    );
}

#[test]
fn verify_goes_through_the_verify_library_and_is_recorded_and_shown() {
    let s = backed_up("");
    // Metrics are published after a dashboard verify as after the CLI's.
    let cfg = std::fs::read_to_string(s.config_path()).unwrap_or_default();
    s.config(&cfg.replacen(
        "[global]\n",
        "[global]\nmetrics_file = \"{root}/textfile/rm.prom\"\n",
        1,
    ));
    let srv = Server::start(&s);
    assert_eq!(
        srv.post("/services/app/verify", &[]).status(),
        StatusCode::ACCEPTED
    );
    let job = srv.wait_job("app");
    assert_eq!(job["kind"], "verify");
    assert_eq!(job["deep"], false);
    assert_eq!(job["outcome"], "ok", "{job}");
    assert_eq!(job["targets"][0]["state"], "ok", "{job}");
    // The form's "read all data" box: `check --read-data`.
    assert_eq!(
        srv.post("/services/app/verify", &[("deep", "on")]).status(),
        StatusCode::ACCEPTED
    );
    let job = srv.wait_job("app");
    assert_eq!(job["deep"], true);
    assert_eq!(job["outcome"], "ok", "{job}");
    // The same rows the CLI's verify writes, with what was read.
    assert_eq!(
        s.history().query(
            "SELECT destination, kind, trigger, outcome, json_extract(detail, '$.read') FROM verifies ORDER BY id"
        ),
        ["local|check|web|ok|none", "local|read-data|web|ok|all"]
    );
    let prom = std::fs::read_to_string(s.path("textfile/rm.prom")).unwrap_or_default();
    assert!(
        prom.contains("restic_manager_last_verify_timestamp_seconds{service=\"app\""),
        "{prom}"
    );
    let page = srv.get("/services/app").text().unwrap_or_default();
    assert!(
        page.contains("Verifications")
            && page.contains(">web<")
            && page.contains(">read-data<")
            && page.contains("name=\"deep\""),
        "{page}"
    );
    // `verify` on the CLI sees them as its own.
    let v = s.run(&["status", "--json"]).json();
    assert_eq!(v[0]["destinations"][0]["last_verify"]["kind"], "read-data");
}

/// `/api/status` is `status --json`, word for word, except ages that move
/// between the two calls.
fn comparable(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| !k.ends_with("age_seconds"))
                .map(|(k, x)| (k.clone(), comparable(x)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(comparable).collect()),
        // "newest snapshot 3s ago": the number may tick between the calls.
        Value::String(t) => Value::String(
            t.chars()
                .map(|c| if c.is_ascii_digit() { '0' } else { c })
                .collect(),
        ),
        x => x.clone(),
    }
}

#[test]
fn health_api_overview_and_metrics_say_what_the_cli_says() {
    let s = Scenario::new();
    for n in ["good", "broken", "old"] {
        s.write(&format!("data/{n}/file.txt"), n);
    }
    let svc = |n: &str, extra: &str, config: &str| {
        format!(
            "[services.{n}]\ntargets = [\"local\"]\n{extra}\n[services.{n}.config]\npaths = [\"{{root}}/data/{n}\"]\n{config}\n"
        )
    };
    s.simple(&[
        svc("good", "", ""),
        svc(
            "broken",
            "",
            "[[services.broken.config.pre_backup_hooks]]\nname = \"dump\"\ncommand = \"echo dump failed >&2; exit 1\"\n",
        ),
        svc("old", "max_age = \"2s\"", ""),
    ]
    .concat());
    s.run(&["setup", "--no-schedule"]).succeeds();
    s.run(&["run"]).code(1);
    std::thread::sleep(Duration::from_millis(3100));
    let srv = Server::start(&s);

    // Health: the same document as `status --json`, the same states.
    let cli = s.run(&["status", "--json"]);
    cli.code(1);
    let cli = cli.json();
    let api = srv.json("/api/status");
    assert_eq!(comparable(&api), comparable(&cli));
    let state = |v: &Value, n: &str| {
        v.as_array()
            .and_then(|a| a.iter().find(|x| x["service"] == n))
            .map(|x| x["state"].clone())
            .unwrap_or_default()
    };
    assert_eq!(state(&api, "good"), "ok");
    assert_eq!(state(&api, "broken"), "failed");
    assert_eq!(state(&api, "old"), "stale");
    // `/api/services` carries the same verdicts.
    let services = srv.json("/api/services");
    for (i, x) in services.as_array().into_iter().flatten().enumerate() {
        assert_eq!(x["state"], cli[i]["state"], "{x}");
        assert_eq!(comparable(&x["reasons"]), comparable(&cli[i]["reasons"]));
    }

    // The overview shows the state words, and why on hover.
    let page = srv.get("/").text().unwrap_or_default();
    for word in ["ok", "failed", "stale"] {
        assert!(
            page.contains(&format!("<span class=\"badge {word}\">{word}</span>")),
            "no {word} badge:\n{page}"
        );
    }
    assert!(page.contains("pre-backup hook `dump` failed"), "{page}");
    assert!(page.contains("max_age 2s"), "{page}");
    let page = srv.get("/services/old").text().unwrap_or_default();
    assert!(page.contains("max_age 2s"), "{page}");

    // /metrics: what `restic-manager metrics` prints (only the age ticks).
    let r = srv.get("/metrics");
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/plain; version=0.0.4")),
    );
    let web = r.text().unwrap_or_default();
    let cli = s.run(&["metrics"]);
    cli.succeeds();
    let steady = |t: &str| -> Vec<String> {
        t.lines()
            .filter(|l| !l.starts_with("restic_manager_newest_snapshot_age_seconds{"))
            .map(String::from)
            .collect()
    };
    assert_eq!(steady(&web), steady(&cli.stdout));
    assert!(
        web.contains("restic_manager_health{service=\"old\",destination=\"local\""),
        "{web}"
    );
    crate::metrics::promtool(&web);
}

#[test]
fn a_failing_dashboard_backup_is_notified_like_a_cli_one() {
    let rx = Receiver::start(&[]);
    let s = backed_up("");
    // From now on the pre hook fails, and two notifiers listen.
    let cfg = std::fs::read_to_string(s.config_path()).unwrap_or_default();
    s.config(&format!(
        "{cfg}\n[[services.app.config.pre_backup_hooks]]\nname = \"dump\"\ncommand = \"echo dump failed >&2; exit 1\"\n\n[notifiers.hook]\ntype = \"webhook\"\nurl = \"{}\"\n\n[notifiers.hc]\ntype = \"healthchecks\"\nurl = \"{}\"\n",
        rx.url("/hook"),
        rx.url("/hc")
    ));
    let srv = Server::start(&s);
    rx.clear();
    assert_eq!(
        srv.post("/services/app/run", &[]).status(),
        StatusCode::ACCEPTED
    );
    let job = srv.wait_job("app");
    assert_eq!(job["outcome"], "failed", "{job}");
    let body = rx.one("/hook");
    assert_eq!(body["event"], "failure");
    assert_eq!(body["kind"], "backup");
    assert_eq!(body["service"], "app");
    assert_eq!(body["outcome"], "failed");
    assert_eq!(body["error_class"], "hook_failed");
    assert!(
        body["error"].as_str().is_some_and(|e| e.contains("dump")),
        "{body}"
    );
    // healthchecks: `/start` before, `/fail` after, as `run` pings.
    let hc: Vec<String> = rx.at("/hc").iter().map(|r| r.path.clone()).collect();
    assert_eq!(hc, ["/hc/start", "/hc/fail"]);
    // The run's log notes what was sent.
    let log = s
        .history()
        .query(&format!(
            "SELECT log_file FROM runs WHERE id = {}",
            job["run_id"]
        ))
        .concat();
    let text = std::fs::read_to_string(log.trim()).unwrap_or_default();
    assert!(
        text.contains("notification `hook` (webhook) failure: sent"),
        "{text}"
    );
}

#[test]
fn restore_goes_into_a_new_folder_and_never_over_existing_files() {
    let s = backed_up("");
    let srv = Server::start(&s);
    let data = s.path("data/app").display().to_string();
    let file = format!("{data}/docs/report.txt");
    let r = srv.post(
        "/services/app/restore",
        &[("snapshot", "latest"), ("path", &file), ("folder", "first")],
    );
    assert_eq!(r.status(), StatusCode::ACCEPTED, "{:?}", r.text());
    let job = srv.wait_job("app");
    assert_eq!(job["outcome"], "ok", "{job}");
    let restored = s.path(&format!("restores/first{file}"));
    assert_eq!(
        std::fs::read_to_string(&restored).unwrap_or_default(),
        "quarterly numbers\n"
    );
    // Not into a folder that has something in it.
    let r = srv.post(
        "/services/app/restore",
        &[("snapshot", "latest"), ("path", &file), ("folder", "first")],
    );
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert!(r.text().unwrap_or_default().contains("not empty"));
    // Folder names are one plain component.
    for bad in ["../escape", "a/b", ".hidden", "x\u{0}"] {
        let r = srv.post(
            "/services/app/restore",
            &[("snapshot", "latest"), ("path", &file), ("folder", bad)],
        );
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{bad}");
    }
    assert!(!s.path("escape").exists());
    // Paths are checked as for browsing.
    let r = srv.post(
        "/services/app/restore",
        &[
            ("snapshot", "latest"),
            ("path", "/../etc"),
            ("folder", "second"),
        ],
    );
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(!s.path("restores/second").exists());
}

#[test]
fn serve_refuses_the_network_without_a_token_and_makes_one_on_loopback() {
    let s = Scenario::new()
        .file("data/app/a.txt", "a")
        .service("app", |a| a.path("{root}/data/app"));
    let token = s.path("state/restic-manager/web-token");
    let port = free_port();
    let d = s.run(&["serve", "--listen", &format!("0.0.0.0:{port}")]);
    d.code(2).stderr_has("refusing to listen on 0.0.0.0");
    d.stderr_has("restic-manager setup");
    assert!(!token.exists());
    s.run(&["serve", "--listen", "not-an-address"])
        .code(2)
        .stderr_has("is not an address with a port");

    // On loopback the token is generated, private, and its place printed.
    let srv = Server::start(&s);
    let mode = std::fs::metadata(&token)
        .map(|m| m.permissions().mode() & 0o777)
        .unwrap_or(0);
    assert_eq!(mode, 0o600);
    assert!(srv.token.len() >= 32);
    assert!(
        srv.log().contains("generated a web access token in"),
        "{}",
        srv.log()
    );
    assert!(!srv.log().contains(&srv.token), "the token was printed");
    assert_eq!(srv.json("/api/status")[0]["state"], "stale");
}

#[test]
fn sigterm_stops_a_running_backup_safely_and_the_server() {
    let s = backed_up(
        "[[services.app.config.pre_backup_hooks]]\nname = \"slow\"\ncommand = \"sleep 30\"\n",
    );
    let mut srv = Server::start(&s);
    assert_eq!(
        srv.post("/services/app/run", &[]).status(),
        StatusCode::ACCEPTED
    );
    let start = Instant::now();
    while s
        .history()
        .query("SELECT count(*) FROM runs WHERE outcome = 'running'")
        != ["1"]
    {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "run never started"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let st = srv.stop(nix::sys::signal::Signal::SIGTERM);
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "took too long to stop"
    );
    assert_eq!(st.code(), Some(0), "{}", srv.log());
    assert!(srv.log().contains("signal received"), "{}", srv.log());
    assert_eq!(
        s.history()
            .query("SELECT outcome FROM runs ORDER BY id DESC LIMIT 1"),
        ["interrupted"]
    );
    // No hook left behind.
    let mut ps = String::new();
    let _ = std::process::Command::new("ps")
        .args(["-eo", "args"])
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            c.stdout
                .take()
                .map(|mut o| o.read_to_string(&mut ps))
                .transpose()?;
            c.wait()
        });
    assert!(
        !ps.lines()
            .any(|l| l.trim() == "sleep 30" || l.contains("sh -c sleep 30")),
        "{ps}"
    );
}

#[test]
fn a_large_download_is_streamed_not_held_in_memory() {
    use sha2::{Digest, Sha256};
    let s = Scenario::new();
    // 96 MiB that restic cannot compress: bytes of a xorshift generator.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut big = Vec::with_capacity(96 << 20);
    while big.len() < 96 << 20 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        big.extend_from_slice(&x.to_le_bytes());
    }
    let want = Sha256::digest(&big);
    std::fs::create_dir_all(s.path("data/big")).unwrap();
    std::fs::write(s.path("data/big/disk.img"), &big).unwrap();
    drop(big);
    s.simple("[services.big]\ntargets = [\"local\"]\n[services.big.config]\npaths = [\"{root}/data/big\"]\n");
    s.run(&["setup", "--no-schedule"]).succeeds();
    s.run(&["run"]).succeeds();
    let srv = Server::start(&s);
    // Warm up so the baseline includes the server's own buffers.
    srv.json("/api/status");
    let before = srv.peak_rss_kib();

    let file = s.path("data/big/disk.img").display().to_string();
    let mut r = srv.get(&format!("/api/snapshots/big/latest/download?path={file}"));
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.content_length(), Some(96 << 20));
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut n = 0usize;
    loop {
        let k = r.read(&mut buf).expect("read");
        if k == 0 {
            break;
        }
        n += k;
        h.update(&buf[..k]);
    }
    assert_eq!(n, 96 << 20);
    assert_eq!(h.finalize(), want, "downloaded content differs");
    let grew = srv.peak_rss_kib().saturating_sub(before);
    assert!(
        grew < 32 * 1024,
        "the server grew by {grew} KiB for a 96 MiB download"
    );
}

#[test]
fn a_damaged_history_is_moved_aside_and_the_dashboard_comes_up() {
    let s = backed_up("");
    let file = s.path("state/restic-manager/history.sqlite");
    std::fs::write(&file, vec![0x5a; 8192]).expect("write");
    let srv = Server::start(&s);
    let log = srv.log();
    assert!(
        log.contains(&format!(
            "warning: history database `{}` was damaged",
            file.display()
        )) && log.contains("started a new one"),
        "serve says what it did: {log}"
    );
    let moved: Vec<_> = std::fs::read_dir(s.path("state/restic-manager"))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("history.sqlite.damaged-")
        })
        .collect();
    assert_eq!(moved.len(), 1, "the damaged file is kept aside");
    let v = srv.json("/api/status");
    assert!(v.to_string().contains("\"app\""), "{v}");
    // A backup from the dashboard is recorded in the new database.
    assert_eq!(
        srv.post("/services/app/run", &[]).status(),
        StatusCode::ACCEPTED
    );
    assert_eq!(srv.wait_job("app")["outcome"], "ok", "{}", srv.log());
    assert_eq!(s.history().query("SELECT outcome FROM runs"), ["ok"]);
}
