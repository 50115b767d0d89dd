//! A network destination that is down costs seconds, not the ~15 minutes
//! restic ≥ 0.17 spends retrying it: destinations are checked before restic
//! runs (`destination_connect_timeout_seconds`), and a restic that only goes
//! on retrying is stopped (`destination_stall_timeout_seconds`). Meanwhile
//! the other destinations are backed up.

use std::net::TcpListener;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::{Done, Scenario, free_port};

/// restic 0.18 and 0.19 as Debian ships them (scripts/restic-versions.sh).
/// Missing is a failure, never a skip.
fn restic(version: &str) -> PathBuf {
    crate::harness::matrix_restic(version)
}

/// The restic versions users run: 0.14 from PATH (Debian 12), 0.18 and 0.19.
fn versions() -> Vec<(&'static str, String)> {
    let mut v = vec![("0.14", String::new())];
    for ver in ["0.18", "0.19"] {
        v.push((
            ver,
            format!("restic_binary = \"{}\"\n", restic(ver).display()),
        ));
    }
    v
}

/// A server that accepts TCP connections and never says a word.
fn silent_server() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().map(|a| a.port()).unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in l.incoming().flatten() {
            held.push(s);
        }
    });
    port
}

/// A port with nothing listening on it.
fn refused_port() -> u16 {
    free_port()
}

/// A local destination and three dead ones: REST and S3 refusing
/// connections, and a REST server that accepts and never answers.
fn dead_world(s: Scenario, global: &str, service: &str, targets: &[&str]) -> Scenario {
    let (rest, s3, hang) = (refused_port(), refused_port(), silent_server());
    s.file("data/docs/a.txt", "alpha")
        .global(&format!("host = \"testhost\"\n{global}"))
        .destination_local("local", "repo")
        .destination(
            "rest_down",
            &format!("type = \"rest\"\nurl = \"http://127.0.0.1:{rest}/\""),
        )
        .destination(
            "s3_down",
            &format!(
                "type = \"s3\"\nendpoint = \"http://127.0.0.1:{s3}\"\nbucket = \"bkt\"\n\
                 env = {{ AWS_ACCESS_KEY_ID = \"test\", AWS_SECRET_ACCESS_KEY = \"test\" }}"
            ),
        )
        .destination(
            "hang",
            &format!("type = \"rest\"\nurl = \"http://127.0.0.1:{hang}/\""),
        )
        .service("docs", |d| {
            d.targets(targets).keys(service).path("{root}/data/docs")
        })
}

fn targets(v: &Value) -> Vec<Value> {
    v["services"][0]["targets"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn target<'a>(all: &'a [Value], dest: &str) -> &'a Value {
    all.iter()
        .find(|t| t["destination"] == dest)
        .unwrap_or_else(|| panic!("no target {dest} in {all:?}"))
}

/// The three dead destinations are each reported `unreachable`, naming the
/// destination and its address.
fn assert_dead(all: &[Value]) {
    for (dest, what) in [
        ("rest_down", "connection refused"),
        ("s3_down", "connection refused"),
        (
            "hang",
            "the server accepted the connection but sent no HTTP answer within",
        ),
    ] {
        let t = target(all, dest);
        assert_eq!(t["outcome"], "failed", "{t}");
        assert_eq!(t["error_class"], "unreachable", "{t}");
        let msg = t["error"].as_str().unwrap_or_default();
        assert!(
            msg.starts_with(&format!(
                "destination `{dest}` cannot be reached at 127.0.0.1:"
            )) && msg.contains(what)
                && msg.contains("Check that the server is running"),
            "{msg}"
        );
    }
}

/// Runs the binary with `args`: it fails (exit 1) within `limit` seconds
/// (`what` names it when it does not).
#[track_caller]
fn fails_within(s: &Scenario, args: &[&str], limit: u64, what: &str) -> (Done, Duration) {
    let t = Instant::now();
    let d = s.run(args);
    let took = t.elapsed();
    d.code(1);
    assert!(took < Duration::from_secs(limit), "{what} took {took:?}");
    (d, took)
}

#[test]
fn dead_destinations_fail_in_seconds_while_the_local_one_backs_up_on_every_restic() {
    for (version, binary) in versions() {
        let s = dead_world(
            Scenario::new(),
            &format!("{binary}destination_connect_timeout_seconds = 3\n"),
            "",
            &["local", "rest_down", "s3_down", "hang"],
        );
        // `setup` creates what it can and says which destinations are down.
        let t = Instant::now();
        let d = s.run(&["setup"]);
        d.code(1)
            .stdout_has("docs → rest_down: FAILED: destination `rest_down` cannot be reached");
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "{version}: setup took {:?}",
            t.elapsed()
        );

        let (d, _) = fails_within(&s, &["run", "--json"], 20, &format!("{version}: run"));
        let v = d.json();
        let all = targets(&v);
        let local = target(&all, "local");
        assert_eq!(local["outcome"], "ok", "{version}: {local}");
        assert_eq!(s.snapshots("repo/docs").len(), 1, "{version}");
        assert_dead(&all);
        assert_eq!(v["services"][0]["error_class"], "unreachable", "{version}");

        // `status --live` asks every destination and answers as fast.
        let (d, _) = fails_within(
            &s,
            &["status", "--live", "--json"],
            20,
            &format!("{version}: status --live"),
        );
        let v = d.json();
        let dests = v[0]["destinations"].as_array().cloned().unwrap_or_default();
        for dest in ["rest_down", "s3_down", "hang"] {
            let d = target(&dests, dest);
            assert_eq!(d["state"], "failed", "{version}: {d}");
            let reasons = d["reasons"].to_string();
            assert!(
                reasons.contains("repository cannot be read (unreachable): destination"),
                "{version}: {reasons}"
            );
        }
        assert_eq!(target(&dests, "local")["state"], "ok", "{version}");

        // `verify` likewise checks the local repository and reports the rest.
        let (d, _) = fails_within(&s, &["verify", "--json"], 20, &format!("{version}: verify"));
        let v = d.json();
        let all = v["verifies"].as_array().cloned().unwrap_or_default();
        assert_eq!(target(&all, "local")["outcome"], "ok", "{version}");
        for dest in ["rest_down", "s3_down", "hang"] {
            assert_eq!(
                target(&all, dest)["error_class"],
                "unreachable",
                "{version}"
            );
        }
    }
}

#[test]
fn copy_mode_with_a_dead_primary_backs_up_to_the_next_target_and_copies_on() {
    let s = Scenario::new();
    let bin = restic("0.19");
    let s = dead_world(
        s,
        &format!(
            "restic_binary = \"{}\"\ndestination_connect_timeout_seconds = 3\n\
             [destinations.second]\ntype = \"local\"\npath = \"{{root}}/second\"\n",
            bin.display()
        ),
        "replication = \"copy\"",
        &["rest_down", "local", "hang", "second"],
    );
    let _ = s.run(&["setup"]);
    let (d, _) = fails_within(&s, &["run", "--json"], 20, "run");
    let v = d.json();
    let all = targets(&v);
    // `local` took the dead primary's place; `second` got a copy of it.
    assert_eq!(target(&all, "local")["method"], "backup");
    assert_eq!(target(&all, "local")["outcome"], "ok");
    assert_eq!(target(&all, "second")["method"], "copy");
    assert_eq!(target(&all, "second")["outcome"], "ok");
    assert_eq!(s.snapshots("second/docs").len(), 1);
    for dest in ["rest_down", "hang"] {
        assert_eq!(target(&all, dest)["error_class"], "unreachable");
    }
    let log = std::fs::read_to_string(v["services"][0]["log_file"].as_str().unwrap_or_default())
        .unwrap_or_default();
    assert!(
        log.contains(
            "primary target `rest_down` is unreachable; `local` takes its place in this run"
        ),
        "{log}"
    );
}

#[test]
fn the_default_connect_timeout_reports_a_silent_server_within_a_minute() {
    // No timeout configured: the default (15 s) applies, with restic 0.19,
    // which on its own would wait about 15 minutes.
    let s = dead_world(
        Scenario::new(),
        &format!("restic_binary = \"{}\"\n", restic("0.19").display()),
        "",
        &["local"],
    );
    s.run(&["setup"]).succeeds();
    let text = std::fs::read_to_string(s.config_path()).unwrap_or_default();
    s.config(&text.replace("targets = [\"local\"]", "targets = [\"local\", \"hang\"]"));
    let (d, took) = fails_within(&s, &["run", "--json"], 60, "run");
    assert!(
        took >= Duration::from_secs(14),
        "the default is 15 s; took {took:?}"
    );
    let all = targets(&d.json());
    assert_eq!(target(&all, "local")["outcome"], "ok");
    let msg = target(&all, "hang")["error"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(msg.contains("sent no HTTP answer within 15s"), "{msg}");
}

#[test]
fn a_restic_that_only_retries_is_stopped_after_the_stall_timeout() {
    // The check is switched off for the destination, so restic itself
    // meets the refused connection and retries; the watchdog stops it.
    for version in ["0.18", "0.19"] {
        let s = dead_world(
            Scenario::new(),
            &format!(
                "restic_binary = \"{}\"\ndestination_stall_timeout_seconds = 3\n",
                restic(version).display()
            ),
            "",
            &["local", "rest_down"],
        );
        let text = std::fs::read_to_string(s.config_path()).unwrap_or_default();
        s.config(&text.replace(
            "[destinations.rest_down]\n",
            "[destinations.rest_down]\nconnect_timeout_seconds = 0\n",
        ));
        let _ = s.run(&["setup"]);
        let (d, _) = fails_within(&s, &["run", "--json"], 30, &format!("{version}: run"));
        let all = targets(&d.json());
        assert_eq!(target(&all, "local")["outcome"], "ok", "{version}");
        let dead = target(&all, "rest_down");
        assert_eq!(dead["error_class"], "unreachable", "{version}: {dead}");
        let msg = dead["error"].as_str().unwrap_or_default();
        assert!(
            msg.starts_with(
                "destination `rest_down` stopped answering: restic retried for 3s without progress"
            ) && msg.contains("returned error, retrying after")
                && msg.contains("connection refused")
                && msg.ends_with("or raise `stall_timeout_seconds` if it is only slow"),
            "{version}: {msg}"
        );
    }
}

/// A container removed when the test ends (also when it fails).
struct Container(String);

impl Drop for Container {
    fn drop(&mut self) {
        let _ = std::process::Command::new("docker")
            .args(["rm", "-f", &self.0])
            .output();
    }
}

fn container_running(name: &str) -> bool {
    std::process::Command::new("docker")
        .args(["inspect", "-f", "{{.State.Running}}", name])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "true")
}

#[test]
fn a_dead_primary_never_keeps_the_containers_down_in_copy_mode() {
    if !crate::docker::engine() {
        return;
    }
    let app = Container(format!("rmt-deadnet-{}", std::process::id()));
    crate::docker::detached(&app.0, &[], crate::docker::IDLE).succeeds();
    let s = dead_world(
        Scenario::new(),
        &format!(
            "restic_binary = \"{}\"\ndestination_connect_timeout_seconds = 3\n\
             [destinations.second]\ntype = \"local\"\npath = \"{{root}}/second\"\n",
            restic("0.19").display()
        ),
        "replication = \"copy\"",
        &["rest_down", "hang", "local", "second"],
    );
    let text = std::fs::read_to_string(s.config_path()).unwrap_or_default();
    s.config(&text.replace(
        "[services.docs.config]\n",
        &format!(
            "[services.docs.config]\nstop_containers = [\"{}\"]\n",
            app.0
        ),
    ));
    let _ = s.run(&["setup"]);
    let (d, _) = fails_within(&s, &["run", "--json"], 30, "run");
    let v = d.json();
    let svc = &v["services"][0];
    assert_eq!(svc["containers_stopped"][0], app.0.as_str(), "{svc}");
    let down = svc["containers_stopped_ms"].as_u64().unwrap_or(u64::MAX);
    // Only `local`'s snapshot happened while the container was down: the
    // dead destinations were found before it was stopped.
    assert!(down < 20_000, "containers down for {down} ms");
    assert!(container_running(&app.0), "the container runs again");
    let all = targets(&v);
    assert_eq!(target(&all, "local")["outcome"], "ok");
    assert_eq!(target(&all, "second")["method"], "copy");
    assert_eq!(target(&all, "second")["outcome"], "ok");
    for dest in ["rest_down", "hang"] {
        assert_eq!(target(&all, dest)["error_class"], "unreachable");
    }
}
