//! Hostile clients and misleading output: the login redirect judged as a
//! browser reads it (checked in headless Chromium), a flood of idle
//! connections that must not lock out the real user, JSON for every API
//! error, slowed token guessing, restores that refuse to write through
//! symlinks already in the target, and output that agrees with the exit
//! code (including `-q`, which cron mails).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;

use crate::harness::{Scenario, header};
use crate::web::{Server, backed_up, client};

/// POSTs the login form with `next`; returns the status and `Location`.
fn login_with_next(srv: &Server, next: &str) -> (StatusCode, String) {
    let r = client()
        .post(srv.url("/login"))
        .form(&[("token", srv.token.as_str()), ("next", next)])
        .send()
        .expect("POST /login");
    (r.status(), header(&r, "location"))
}

#[test]
fn login_redirect_never_leaves_the_site_whatever_next_holds() {
    let s = backed_up("");
    let srv = Server::start(&s);
    let cases = [
        ("/\t/evil.example/steal", "/"),
        ("/\n/evil.example/steal", "/"),
        ("/\r\n/evil.example/steal", "/"),
        ("/\\evil.example/steal", "/"),
        ("\\\\evil.example/steal", "/"),
        ("//evil.example/steal", "/"),
        (" //evil.example/steal", "/"),
        ("https://evil.example/", "/"),
        ("/\u{1}/x", "/"),
        ("", "/"),
        ("/services/app", "/services/app"),
        ("/services/app?x=1", "/services/app?x=1"),
        ("/services/app\t", "/services/app"),
        ("/sérvices", "/s%C3%A9rvices"),
    ];
    for (next, want) in cases {
        let (status, loc) = login_with_next(&srv, next);
        assert_eq!(status, StatusCode::SEE_OTHER, "next={next:?}");
        assert_eq!(loc, want, "next={next:?}");
    }
    // The login form carries only a safe `next` too.
    let page = client()
        .get(srv.url("/login?next=%2F%09%2Fevil.example%2Fsteal"))
        .send()
        .and_then(reqwest::blocking::Response::text)
        .unwrap();
    assert!(page.contains("name=\"next\" value=\"/\""), "{page}");
    assert!(!srv.log().contains("panicked"), "{}", srv.log());
}

/// A page on "evil.example" (resolved by Chromium to this loopback port
/// only, so nothing leaves the machine); it answers until the deadline.
fn evil_site(deadline: Duration) -> (u16, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = hits.clone();
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().map(|a| a.port()).unwrap_or(0);
    let _ = l.set_nonblocking(true);
    std::thread::spawn(move || {
        let start = Instant::now();
        while start.elapsed() < deadline {
            match l.accept() {
                Ok((mut c, _)) => {
                    counted.fetch_add(1, Ordering::SeqCst);
                    let _ = c.set_nonblocking(false);
                    let _ = c.set_read_timeout(Some(Duration::from_secs(2)));
                    let mut buf = [0u8; 4096];
                    let _ = c.read(&mut buf);
                    let _ = c.write_all(
                        b"HTTP/1.0 200 OK\r\nContent-Type: text/html\r\n\r\n<title>stolen</title>stolen",
                    );
                }
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    });
    (port, hits)
}

#[test]
fn chromium_stays_on_the_dashboard_after_a_login_with_a_hostile_next() {
    let Some(driver) = crate::browser::driver() else {
        return;
    };
    let s = backed_up("");
    let srv = Server::start(&s);
    let (evil, hits) = evil_site(Duration::from_secs(60));
    let profile = s.path("chromium-profile");
    let caps = crate::browser::chromium(
        &profile,
        &[format!(
            "--host-resolver-rules=MAP evil.example 127.0.0.1:{evil}, EXCLUDE 127.0.0.1"
        )],
        Value::Null,
    );
    let base = srv.base.clone();
    let token = srv.token.clone();
    let landed = crate::browser::in_session(&driver, caps, |c| async move {
        let e = crate::browser::failed;
        let mut landed = Vec::new();
        for next in [
            "%2F%09%2Fevil.example%2Fsteal",
            "%2F%5Cevil.example%2Fsteal",
        ] {
            c.goto(&format!("{base}/login?next={next}"))
                .await
                .map_err(e("open"))?;
            crate::browser::log_in(&c, &token).await?;
            // Wherever the redirect went, it has loaded by now.
            let start = Instant::now();
            loop {
                let url = c.current_url().await.map_err(e("url"))?;
                if !url.path().starts_with("/login") || start.elapsed() > Duration::from_secs(10) {
                    landed.push(url.to_string());
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            // Log out for the next round.
            c.delete_all_cookies().await.map_err(e("cookies"))?;
        }
        Ok(landed)
    });
    let landed = landed.unwrap_or_else(|e| panic!("{e}\n{}", srv.log()));
    let hits = hits.load(Ordering::SeqCst);
    assert_eq!(hits, 0, "the browser went to evil.example: {landed:?}");
    // The overview, not evil.example, and not the login form either (the
    // dashboard's CSP `form-action 'self'` stops Chromium from following
    // a redirect to another site after a form, so the unsafe `next` left
    // the user on the login page as if the token had not worked).
    for url in &landed {
        assert_eq!(
            url,
            &format!("{}/", srv.base),
            "after logging in with a hostile `next` the browser is not on the overview"
        );
    }
}

/// Opens up to `n` connections that each send half a request line.
fn flood(base: &str, n: usize) -> Vec<TcpStream> {
    let addr: std::net::SocketAddr = base
        .trim_start_matches("http://")
        .parse()
        .unwrap_or_else(|e| panic!("{base}: {e}"));
    assert!(addr.ip().is_loopback(), "floods go to loopback only");
    let mut v = Vec::with_capacity(n);
    let start = Instant::now();
    for _ in 0..n {
        if start.elapsed() > Duration::from_secs(30) {
            break;
        }
        if let Ok(mut c) = TcpStream::connect_timeout(&addr, Duration::from_secs(1)) {
            let _ = c.write_all(b"GET / HTT");
            v.push(c);
        }
    }
    v
}

/// Raises this test process's open-file limit so that it can hold the
/// flood's sockets.
fn raise_own_fd_limit(want: u64) {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap_or((1024, 1024));
    assert!(
        hard >= want,
        "the open-file hard limit {hard} is below the {want} this test needs"
    );
    if soft < want {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard).expect("setrlimit");
    }
}

#[test]
fn an_idle_connection_flood_does_not_lock_out_the_logged_in_user() {
    raise_own_fd_limit(4096);
    let s = backed_up("");
    // The usual limit of 1024 open files, which the server cannot raise.
    let srv = Server::start_under(&s, &["prlimit", "--nofile=1024:1024"]);
    let (c, _) = srv.log_in(Some(Duration::from_secs(10)));

    let sockets = flood(&srv.base, 1100);
    assert!(sockets.len() >= 1000, "only {} connections", sockets.len());
    let start = Instant::now();
    let r = c
        .get(srv.url("/api/status"))
        .send()
        .expect("the logged-in user's request failed under the flood");
    assert_eq!(r.status(), StatusCode::OK);
    let took = start.elapsed();
    eprintln!(
        "a logged-in request under {} idle connections took {took:?}",
        sockets.len()
    );
    assert!(
        took < Duration::from_secs(5),
        "the request took {took:?} under the flood"
    );
    // A page needs a fresh connection too.
    let r = client()
        .get(srv.url("/services/app"))
        .bearer_auth(&srv.token)
        .send()
        .expect("page under the flood");
    assert_eq!(r.status(), StatusCode::OK);

    // A kept-alive connection that went quiet after its request is closed
    // too (the idle timeout).
    let addr = srv.base.trim_start_matches("http://").to_string();
    let mut kept = TcpStream::connect(&addr).unwrap();
    kept.write_all(b"GET /login HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let _ = kept.set_read_timeout(Some(Duration::from_secs(25)));
    let quiet_since = Instant::now();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match kept.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
        }
    }
    assert!(
        String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    assert!(
        quiet_since.elapsed() < Duration::from_secs(15),
        "an idle kept-alive connection stayed open for {:?}",
        quiet_since.elapsed()
    );

    // The server closes what is left of the flood by itself.
    let mut last = sockets.into_iter().last().expect("no socket");
    let _ = last.set_read_timeout(Some(Duration::from_secs(20)));
    let waited = Instant::now();
    let mut buf = [0u8; 512];
    let closed = match last.read(&mut buf) {
        Ok(0) => true,
        Ok(_) => true, // an error answer, then the close
        Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
    };
    assert!(
        closed && waited.elapsed() < Duration::from_secs(15),
        "an idle half request was not closed within 15 s"
    );
    assert!(srv.peak_rss_kib() > 0);
}

#[test]
fn every_api_error_is_json_and_bearer_is_case_insensitive() {
    let s = backed_up("");
    let srv = Server::start(&s);
    let is_json_error = |r: reqwest::blocking::Response, want: StatusCode, has: &str| {
        assert_eq!(r.status(), want, "{:?}", r.url().path());
        let kind = header(&r, "content-type");
        assert!(kind.starts_with("application/json"), "{kind}");
        let v: Value = r.json().expect("not JSON");
        let msg = v["error"].as_str().unwrap_or_else(|| panic!("{v}"));
        assert!(msg.contains(has), "{msg}");
    };
    is_json_error(
        srv.get("/api/services/nope/runs"),
        StatusCode::NOT_FOUND,
        "`nope`",
    );
    is_json_error(
        srv.get("/api/services/nope/job"),
        StatusCode::NOT_FOUND,
        "`nope`",
    );
    is_json_error(srv.get("/api/nothing"), StatusCode::NOT_FOUND, "no such");
    is_json_error(
        srv.post("/services/app/restore", &[("path", "/")]),
        StatusCode::BAD_REQUEST,
        "snapshot",
    );
    is_json_error(
        srv.post("/api/status", &[]),
        StatusCode::METHOD_NOT_ALLOWED,
        "method not allowed",
    );
    is_json_error(
        srv.get("/api/snapshots/app/latest/files?path=/a/../b"),
        StatusCode::BAD_REQUEST,
        "refused",
    );
    for scheme in ["bearer", "BEARER", "Bearer", "bEaReR"] {
        let r = client()
            .get(srv.url("/api/status"))
            .header("authorization", format!("{scheme} {}", srv.token))
            .send()
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "scheme {scheme}");
    }
}

#[test]
fn wrong_tokens_slow_the_address_down_but_never_the_right_token() {
    let s = backed_up("");
    let srv = Server::start(&s);
    let wrong = |t: &str| {
        let start = Instant::now();
        let r = client()
            .get(srv.url("/api/status"))
            .bearer_auth(t)
            .send()
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        start.elapsed()
    };
    let times: Vec<Duration> = (0..5)
        .map(|i| wrong(&format!("not-the-token-{i}")))
        .collect();
    assert!(
        times[4] >= Duration::from_secs(3) && times[4] > times[0] * 4,
        "wrong tokens were not slowed down: {times:?}"
    );
    // The owner is never locked out.
    let start = Instant::now();
    let r = srv.get("/api/status");
    assert_eq!(r.status(), StatusCode::OK);
    assert!(start.elapsed() < Duration::from_secs(1));
    // The login form counts the same way; the right token always works.
    let start = Instant::now();
    let r = client()
        .post(srv.url("/login"))
        .form(&[("token", "wrong-again"), ("next", "/")])
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(start.elapsed() >= Duration::from_millis(200));
    let (status, _) = login_with_next(&srv, "/");
    assert_eq!(status, StatusCode::SEE_OTHER);
}

/// `app` backs up `{root}/data/app` to `local`, once.
fn app_backed_up() -> Scenario {
    let s = Scenario::new();
    s.write("data/app/hello.txt", "hello\n");
    s.write("data/app/docs/report.txt", "numbers\n");
    s.simple("[services.app]\ntargets = [\"local\"]\n\n[services.app.config]\npaths = [\"{root}/data/app\"]\n");
    s.run(&["setup", "--no-schedule"]).succeeds();
    s.run(&["run"]).succeeds();
    s
}

#[test]
fn restore_overwrite_refuses_symlinks_in_the_target_and_names_them() {
    let s = app_backed_up();
    let data = s.path("data/app");
    // The snapshot holds `/tmp/…/data/app`: `target/tmp -> elsewhere` is
    // on the way of every restored file.
    let first = data
        .components()
        .nth(1)
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .unwrap_or_else(|| panic!("{}", data.display()));
    let target = s.path("target");
    let elsewhere = s.path("elsewhere");
    std::fs::create_dir_all(&target).unwrap();
    std::fs::create_dir_all(&elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, target.join(&first)).unwrap();
    let t = target.display().to_string();
    s.restore_latest("app", &["-t", &t, "--overwrite"])
        .code(2)
        .stderr_has("refusing to restore into")
        .stderr_has(&format!("{t}/{first}` -> `{}`", elsewhere.display()));
    let leaked: Vec<_> = std::fs::read_dir(&elsewhere)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(
        leaked.is_empty(),
        "files written through the symlink: {leaked:?}"
    );

    // A deeper one, on a folder the snapshot has.
    std::fs::remove_file(target.join(&first)).unwrap();
    let app_in_target = target.join(data.strip_prefix("/").unwrap_or(&data));
    std::fs::create_dir_all(&app_in_target).unwrap();
    std::os::unix::fs::symlink(&elsewhere, app_in_target.join("docs")).unwrap();
    s.restore_latest("app", &["-t", &t, "--overwrite"])
        .code(2)
        .stderr_has("data/app/docs` -> `");
    assert!(!elsewhere.join("report.txt").exists());

    // A symlink the snapshot has nothing at or below is not in the way.
    std::fs::remove_file(app_in_target.join("docs")).unwrap();
    std::os::unix::fs::symlink(&elsewhere, target.join("unrelated")).unwrap();
    s.restore_latest("app", &["-t", &t, "--overwrite"])
        .succeeds();
    assert_eq!(
        std::fs::read_to_string(app_in_target.join("docs/report.txt")).unwrap_or_default(),
        "numbers\n"
    );
    assert!(!elsewhere.join("report.txt").exists());
}

#[test]
fn snapshots_names_the_repository_it_could_not_read_instead_of_saying_no_snapshots() {
    // No `setup`: the password exists, the repository does not.
    let s = Scenario::new()
        .file("data/app/a.txt", "a")
        .file("pw", "a password\n")
        .service("app", |a| a.path("{root}/data/app"));
    let d = s.run(&["snapshots"]);
    d.code(1)
        .stderr_has("service `app` on `local`")
        .stderr_has(&format!("{}", s.path("repo/app").display()))
        .stderr_has("does not exist")
        .stderr_has("1 of 1 repositories could not be read");
    // It never claims there are no snapshots while a repository could not
    // be read.
    d.stdout_lacks("no snapshots");
}

#[test]
fn a_dry_run_that_shows_a_source_error_exits_1() {
    let s = Scenario::new();
    s.simple("[services.app]\ntargets = [\"local\"]\n\n[services.app.config]\npaths = [\"{root}/data/missing\"]\n");
    s.run(&["run", "--dry-run"])
        .code(1)
        .stdout_has("sources   ERROR")
        .stderr_has("error: app: path `")
        .stderr_has("would make the run fail");
    let d = s.run(&["run", "--dry-run", "--json"]);
    d.code(1);
    assert_eq!(d.json()["ok"], false);
    let q = s.run(&["-q", "run", "--dry-run"]);
    q.code(1).stderr_has("does not exist");
    assert!(q.stdout.is_empty(), "{}", q.stdout);
}

#[test]
fn a_damaged_repository_message_names_what_is_damaged() {
    let s = Scenario::new();
    // Random bytes: the file's data gets a pack of its own, the largest.
    let noise: String = (0..400_000u32)
        .map(|i| {
            char::from(b'a' + u8::try_from((i.wrapping_mul(2_654_435_761) >> 13) % 26).unwrap_or(0))
        })
        .collect();
    s.write("data/app/big.txt", &noise);
    s.write("data/app/small.txt", "small");
    s.simple("[services.app]\ntargets = [\"local\"]\n\n[services.app.config]\npaths = [\"{root}/data/app\"]\n");
    s.run(&["setup", "--no-schedule"]).succeeds();
    s.run(&["run"]).succeeds();
    let mut packs: Vec<(u64, std::path::PathBuf)> = Vec::new();
    let mut stack = vec![s.path("repo/app/data")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                packs.push((e.metadata().map(|m| m.len()).unwrap_or(0), p));
            }
        }
    }
    packs.sort();
    let (_, biggest) = packs.last().expect("no packs");
    std::fs::remove_file(biggest).unwrap();
    s.restic("repo/app", &["rebuild-index"]).succeeds();
    let d = s.run(&["verify", "-s", "app"]);
    d.code(1)
        .stderr_has("is damaged: error for tree ")
        .stderr_has("file \"big.txt\"")
        .stderr_has("not found in index");
}

#[test]
fn retention_refused_on_two_destinations_names_both() {
    let s = Scenario::new();
    let s = s
        .file("data/docs/a.txt", "alpha")
        .destination_local("near", "near")
        .destination_local("far", "far")
        .service("docs", |d| {
            d.targets(&["near", "far"]).path("{root}/data/docs")
        });
    s.run(&["setup"]).succeeds();
    for _ in 0..3 {
        s.run(&["run", "-q"]).succeeds();
    }
    let s = s.global("retention_last = 1");
    let d = s.run(&["run"]);
    d.code(1)
        .stderr_has("retention on `near`: refused")
        .stderr_has("retention on `far`: refused");
    let j = s.run(&["run", "--json"]);
    j.code(1);
    let v = j.json();
    let refused: Vec<&str> = v["services"][0]["targets"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|t| t["retention_error"].is_string())
        .filter_map(|t| t["destination"].as_str())
        .collect();
    assert_eq!(refused, ["near", "far"], "{v}");
}

#[test]
fn quiet_prints_nothing_when_all_went_well() {
    let s = Scenario::new()
        .file("data/app/a.txt", "a")
        .service("app", |a| a.path("{root}/data/app"));
    for args in [
        &["-q", "setup", "--no-schedule"][..],
        &["-q", "run"],
        &["run", "-q"],
        &["-q", "verify"],
        &["-q", "setup", "--no-schedule"],
    ] {
        let d = s.run(args);
        d.succeeds();
        assert!(
            d.stdout.is_empty() && d.stderr.is_empty(),
            "`{}` printed something on success:\n--- stdout:\n{}\n--- stderr:\n{}",
            args.join(" "),
            d.stdout,
            d.stderr
        );
    }
    // A failure still speaks, on stderr.
    std::fs::remove_dir_all(s.path("data/app")).unwrap();
    let d = s.run(&["-q", "run"]);
    d.code(1).stderr_has("error: app:");
    assert!(d.stdout.is_empty(), "{}", d.stdout);
}
