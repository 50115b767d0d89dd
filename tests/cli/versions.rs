//! The same answers whatever the restic version (issue 12, items 3 and 4):
//! these tests run in every leg of the restic matrix (`RM_TEST_RESTIC`,
//! scripts/test-all.sh) and assert what a user sees, which must not depend
//! on whether restic is Debian 12's 0.14, Debian 13's 0.18 or 0.19.

use std::time::{Duration, Instant};

use crate::harness::{Background, Scenario, restic_minor, restic_version, wait_until};
use crate::servers;

/// A service `app` with one `command` dump `data` into `local`.
fn dump_service(command: &str) -> Scenario {
    dump_with(&format!("command = '''{command}'''"))
}

/// A service `app` with one dump `data` (`keys`) into `local`, set up.
fn dump_with(keys: &str) -> Scenario {
    let s = Scenario::new()
        .file("pw", "repository password\n")
        .service("app", |a| {
            a.config(&format!(
                "[[services.app.config.dumps]]\nname = \"data\"\n{keys}"
            ))
        });
    s.run(&["setup"]).succeeds();
    s
}

/// The password and `{root}/files/a.txt`.
fn app_with_files(s: Scenario) -> Scenario {
    s.file("pw", "repository password\n")
        .file("files/a.txt", "a file")
}

/// restic 0.17+ waits for the end of its stdin after a SIGINT: a dump that
/// failed cost 31–37 s there (the 30 s grace, then SIGKILL). Now it is
/// seconds on every version, and restic keeps no snapshot.
#[track_caller]
fn within_15s(what: &str, took: Duration) {
    assert!(took < Duration::from_secs(15), "{what} took {took:?}");
}

#[test]
fn a_failing_dump_ends_in_seconds_and_leaves_no_snapshot() {
    let s = dump_service("head -c 3000000 /dev/urandom; sleep 0.5; echo 'dump: lost' >&2; exit 1");
    let started = Instant::now();
    let done = s.run(&["run", "--json"]);
    let took = started.elapsed();
    done.code(1);
    assert_eq!(done.json()["services"][0]["error_class"], "dump_failed");
    // Not restic waiting on its stdin.
    within_15s("a failed dump", took);
    assert!(s.snapshots("repo/app").is_empty(), "restic kept a snapshot");
}

#[test]
fn ctrl_c_during_a_dump_ends_in_seconds_and_leaves_no_snapshot() {
    let s = dump_service("head -c 3000000 /dev/zero; echo started > {root}/started; sleep 60");
    let run = Background::start(&s, &["run"]);
    wait_until("the dump to start", Duration::from_secs(30), || {
        s.path("started").exists()
    });
    let interrupted = Instant::now();
    run.signal("INT");
    let done = run.finish();
    let took = interrupted.elapsed();
    done.code(130);
    done.stderr_has("dump `data` interrupted by signal 2");
    within_15s("Ctrl-C during a dump", took);
    assert!(s.snapshots("repo/app").is_empty(), "restic kept a snapshot");
}

/// `--json` and history hold restic's full 64-character id on every
/// version (restic 0.14's backup summary has 8), for a local repository,
/// a REST one, a dump and a copy.
#[test]
fn json_and_history_hold_the_full_snapshot_id() {
    let s = Scenario::new();
    let server = servers::rclone_rest(&s.path("rest-server"), None);
    let s = app_with_files(s)
        .destination_local("local", "repo")
        .destination_local("copy", "copy")
        .destination_rest("rest", server.port)
        .service("app", |a| {
            a.targets(&["local", "rest"])
                .path("{root}/files")
                .config("[[services.app.config.dumps]]\nname = \"data\"\ncommand = \"echo dumped\"")
        })
        .service("mirrored", |m| {
            m.targets(&["local", "copy"])
                .keys("replication = \"copy\"")
                .path("{root}/files")
        });
    s.run(&["setup"]).succeeds();
    let done = s.run(&["run", "--json"]);
    done.succeeds();
    let report = done.json();
    let mut seen = 0;
    for svc in report["services"].as_array().cloned().unwrap_or_default() {
        for t in svc["targets"].as_array().cloned().unwrap_or_default() {
            let id = t["snapshot_id"].as_str().unwrap_or_default();
            assert_eq!(id.len(), 64, "short id in --json: {t}");
            assert!(id.chars().all(|c| c.is_ascii_hexdigit()), "{t}");
            seen += 1;
        }
    }
    assert!(seen >= 4, "{}", done.stdout);
    // The ids are restic's own.
    let local: Vec<String> = s
        .snapshots("repo/app")
        .iter()
        .chain(s.snapshots("repo/mirrored").iter())
        .filter_map(|v| v["id"].as_str().map(str::to_string))
        .collect();
    let copies: Vec<String> = s
        .snapshots("copy/mirrored")
        .iter()
        .filter_map(|v| v["id"].as_str().map(str::to_string))
        .collect();
    // The dump restores (`restic dump`).
    s.restore_latest("app", &["--dump", "data", "--to-file", "out.sql"])
        .succeeds();
    assert_eq!(
        std::fs::read_to_string(s.path("out.sql")).unwrap_or_default(),
        "dumped\n"
    );
    let history = s
        .history()
        .query("SELECT destination, length(snapshot_id), snapshot_id FROM run_targets");
    assert!(history.len() >= 5, "{history:?}");
    for row in &history {
        let cols: Vec<&str> = row.split('|').collect();
        assert_eq!(cols[1], "64", "short id in history: {row}");
        match cols[0] {
            "local" => assert!(local.iter().any(|i| i == cols[2]), "{row} not in {local:?}"),
            "copy" => assert!(
                copies.iter().any(|i| i == cols[2]),
                "{row} not in {copies:?}"
            ),
            _ => {}
        }
    }
}

/// restic says "wrong password or no key found" for a REST repository whose
/// folder was deleted on the server (0.14 and 0.18 alike); one GET of its
/// `config` tells the two apart, and `setup` creates it again.
#[test]
fn a_deleted_rest_repository_is_missing_not_a_wrong_password() {
    let s = Scenario::new();
    let server = servers::rclone_rest(&s.path("rest-server"), None);
    let s = s
        .file("pw", "repository password\n")
        .file("files/a.txt", "a file")
        .destination_rest("rest", server.port)
        .service("app", |a| a.targets(&["rest"]).path("{root}/files"));
    s.run(&["setup"]).succeeds();
    s.run(&["run"]).succeeds();
    std::fs::remove_dir_all(s.path("rest-server/app")).unwrap();
    let done = s.run(&["run", "--json"]);
    done.code(1);
    let t = &done.json()["services"][0]["targets"][0];
    assert_eq!(t["error_class"], "repository_missing", "{t}");
    let err = t["error"].as_str().unwrap_or_default();
    assert!(err.contains("does not exist"), "{err}");
    assert!(err.contains("restic-manager setup"), "{err}");
    // A wrong password stays one: destinations::rest_with_a_wrong_password_…
    // (Re-creating it on the same rclone server fails within rclone's
    // cache window: `restic init` asks with a HEAD, which rclone answers
    // from its cache: "config file already exists".)
}

/// Run logs hold restic's errors as text on every version (0.18+ prints
/// them as JSON under `--json`), and the terminal gets the same words.
#[test]
fn restic_errors_are_text_in_the_run_log_and_on_the_terminal() {
    let s = Scenario::new();
    let s = app_with_files(s).service("app", |a| a.path("{root}/files"));
    s.run(&["setup"]).succeeds();
    s.write("pw", "another password\n");
    let done = s.run(&["run"]);
    done.code(1);
    done.stderr_has("did not accept the password");
    assert!(!done.stderr.contains("message_type"), "{}", done.stderr);
    let logs = s.path("state/restic-manager/logs/app");
    let log: String = std::fs::read_dir(&logs)
        .unwrap_or_else(|e| panic!("{}: {e}", logs.display()))
        .flatten()
        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
        .collect();
    assert!(
        log.contains("restic ! Fatal: wrong password or no key found"),
        "{log}"
    );
    assert!(
        !log.contains("message_type"),
        "raw JSON in the run log:\n{log}"
    );
}

/// `restic-version` names the version-specific paths and which are taken.
#[test]
fn restic_version_says_which_version_specific_paths_are_active() {
    let s = Scenario::new();
    let done = s.run(&["restic-version", "--json"]);
    done.succeeds();
    let paths = done.json()["paths"].as_array().cloned().unwrap_or_default();
    let active = |name: &str| {
        paths
            .iter()
            .find(|p| p["name"] == name)
            .and_then(|p| p["active"].as_bool())
            .unwrap_or_else(|| panic!("no path {name}: {paths:?}"))
    };
    let v = restic_minor();
    // The matrix has no 0.17 (codes 10 and 11 came in 0.17.0, 12 in 0.17.1).
    assert_eq!(active("exit_codes"), v >= (0, 18), "{v:?}");
    assert_eq!(active("full_snapshot_id"), v >= (0, 15));
    assert_eq!(active("json_errors"), v >= (0, 18));
    let text = s.run(&["restic-version"]);
    text.succeeds();
    text.stdout_has(if v >= (0, 18) {
        "[x] exit_codes"
    } else {
        "[ ] exit_codes"
    });
}

/// `setup-restic --version X.Y.Z` installs a newer release users get today
/// (Debian 13's 0.18.0 binary, served by the local release mirror of the
/// install tests), and the tool then takes its version-specific paths.
#[test]
fn setup_restic_installs_a_given_newer_version_and_uses_its_paths() {
    let s = Scenario::new();
    let m = crate::install::Mirror::start(&s.path("mirror"));
    // One release only: bzip2 of a 21 MB binary is most of this test's time.
    m.publish("0.18.0", &crate::harness::matrix_restic("0.18"));
    m.latest("0.18.0");
    let env = m.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    s.run_env(&env, &["setup-restic", "--version", "0.18.0"])
        .succeeds()
        .stdout_has("installed restic 0.18.0 at `")
        .stdout_has("(SHA256 verified)");
    let v = s.run(&["restic-version", "--json"]);
    let j = v.succeeds().json();
    assert_eq!(j["version"], "0.18.0", "{j}");
    assert_eq!(j["source"], "managed", "{j}");
    let active: Vec<&str> = j["paths"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|p| p["active"] == true)
                .filter_map(|p| p["name"].as_str())
                .collect()
        })
        .unwrap_or_default();
    assert!(active.contains(&"exit_codes"), "{j}");
    assert!(active.contains(&"json_errors"), "{j}");
    s.run_env(&env, &["setup-restic", "--version", "0.18.0"])
        .succeeds()
        .stdout_has("restic 0.18.0 is already installed and in use; nothing to do");
    // A backup with the managed 0.18.0.
    let s = app_with_files(s).service("app", |a| a.path("{root}/files"));
    s.run(&["setup"]).succeeds();
    s.run(&["-v", "run"])
        .succeeds()
        .stderr_has("(from managed)");
}

/// restic 0.18.0 (Debian 13's) cannot store `backup --stdin` under a
/// folder (restic#5324): a dump whose `filename` has one is refused there
/// with the way out, instead of failing with restic's "open /db: no such
/// file or directory"; every other version stores it.
#[test]
fn a_dump_filename_with_a_folder_is_stored_or_refused_with_the_fix() {
    let s = dump_with("command = \"echo dumped\"\nfilename = \"db/app.sql\"");
    let done = s.run(&["run"]);
    if restic_version().starts_with("restic 0.18.0") {
        done.code(1);
        done.stderr_has("restic 0.18.0 cannot store a stream under a folder (`db/app.sql`)");
        done.stderr_has("setup-restic");
        assert!(s.snapshots("repo/app").is_empty());
    } else {
        done.succeeds();
        let snaps = s.snapshots("repo/app");
        assert_eq!(snaps.len(), 1);
        assert_eq!(snaps[0]["paths"], serde_json::json!(["/db/app.sql"]));
    }
}
