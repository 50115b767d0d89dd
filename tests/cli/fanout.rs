//! Several destinations per service: parallel backups, backup-once-copy,
//! one failing destination, the retention guard, locks, and crashes.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{Scenario, free_port, read};

/// Three local destinations `a`, `b`, `c` under `{root}/dest-X`.
/// `run --json` after the destination folder `dest` went away: it fails;
/// the report.
#[track_caller]
fn failed_run_without(s: &Scenario, dest: &str) -> serde_json::Value {
    std::fs::remove_dir_all(s.path(dest)).unwrap();
    let d = s.run(&["run", "--json"]);
    d.code(1);
    d.json()
}

fn three(s: Scenario, global: &str, service: &str) -> Scenario {
    s.file("data/docs/a.txt", "alpha")
        .file("data/docs/sub/b.txt", "beta")
        .global(global)
        .destination_local("a", "dest-a")
        .destination_local("b", "dest-b")
        .destination_local("c", "dest-c")
        .service("docs", |d| {
            d.targets(&["a", "b", "c"])
                .keys(service)
                .path("{root}/data/docs")
        })
}

/// Lock files restic finished writing. restic's local backend writes
/// `<id>-tmp-<n>` and renames it to `<id>` (seen with strace on 0.14), so a
/// restic killed at the wrong instant leaves a temporary file that is not a
/// lock and that restic ignores.
fn locks(s: &Scenario, repo: &str) -> usize {
    std::fs::read_dir(s.path(repo).join("locks")).map_or(0, |d| {
        d.filter_map(Result::ok)
            .filter(|e| !e.file_name().to_string_lossy().contains("-tmp-"))
            .count()
    })
}

#[test]
fn parallel_backs_up_every_target_independently() {
    let s = three(Scenario::new(), "max_parallel_destinations = 2", "");
    s.run(&["setup"]).succeeds();
    let d = s.run(&["run", "--json"]);
    d.succeeds();
    let v = d.json();
    let targets = v["services"][0]["targets"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(targets.len(), 3);
    for (t, repo) in targets
        .iter()
        .zip(["dest-a/docs", "dest-b/docs", "dest-c/docs"])
    {
        assert_eq!(t["outcome"], "ok");
        assert_eq!(t["method"], "backup");
        let snaps = s.snapshots(repo);
        assert_eq!(snaps.len(), 1, "{repo}");
        let id = snaps[0]["id"].as_str().unwrap_or_default();
        assert!(
            id.starts_with(t["snapshot_id"].as_str().unwrap_or("?")),
            "{repo}"
        );
    }
}

#[test]
fn one_dead_destination_does_not_stop_the_others() {
    let s = three(Scenario::new(), "", "");
    s.run(&["setup"]).succeeds();
    // `b` disappears (a disk that is not mounted).
    let v = failed_run_without(&s, "dest-b");
    let t = &v["services"][0]["targets"];
    assert_eq!(t[0]["outcome"], "ok");
    assert_eq!(t[1]["outcome"], "failed");
    assert_eq!(t[1]["error_class"], "repository_missing");
    assert!(
        t[1]["error"]
            .as_str()
            .unwrap_or("")
            .contains("run `restic-manager setup`")
    );
    assert_eq!(t[2]["outcome"], "ok");
    assert_eq!(s.snapshots("dest-a/docs").len(), 1);
    assert_eq!(s.snapshots("dest-c/docs").len(), 1);
    let rows = s
        .history()
        .query("SELECT destination, outcome, error_class FROM run_targets ORDER BY destination");
    assert_eq!(rows, ["a|ok|", "b|failed|repository_missing", "c|ok|"]);
}

#[test]
fn copy_replication_backs_up_once_and_copies_with_shared_chunker() {
    let s = three(Scenario::new(), "", "replication = \"copy\"");
    s.run(&["setup"]).succeeds();
    // The copies were initialised with the primary's chunker parameters.
    let poly = |repo: &str| {
        let d = s.restic(repo, &["cat", "config"]);
        d.succeeds();
        d.json()["chunker_polynomial"].clone()
    };
    assert_eq!(poly("dest-a/docs"), poly("dest-b/docs"));
    assert_eq!(poly("dest-a/docs"), poly("dest-c/docs"));

    let d = s.run(&["run", "--json"]);
    d.succeeds();
    let v = d.json();
    let t = &v["services"][0]["targets"];
    assert_eq!(t[0]["method"], "backup");
    assert_eq!(t[1]["method"], "copy");
    assert_eq!(t[2]["method"], "copy");
    assert!(v["services"][0]["primary_snapshot_ms"].as_u64().is_some());
    let primary = s.snapshots("dest-a/docs");
    let pid = primary[0]["id"].as_str().unwrap_or_default().to_string();
    for repo in ["dest-b/docs", "dest-c/docs"] {
        let snaps = s.snapshots(repo);
        assert_eq!(snaps.len(), 1, "{repo}");
        assert_eq!(
            snaps[0]["original"].as_str(),
            Some(pid.as_str()),
            "{repo} is a copy of the primary"
        );
        assert!(
            snaps[0]["tags"]
                .as_array()
                .is_some_and(|a| a.iter().any(|x| x == "service:docs"))
        );
    }
    // A second run copies only the new snapshot.
    s.run(&["run"]).succeeds();
    assert_eq!(s.snapshots("dest-b/docs").len(), 2);
}

#[test]
fn copy_falls_back_to_direct_backups_when_the_primary_fails() {
    let s = three(Scenario::new(), "", "replication = \"copy\"");
    s.run(&["setup"]).succeeds();
    let v = failed_run_without(&s, "dest-a");
    let warnings = v["services"][0]["warnings"].to_string();
    assert!(
        warnings.contains("backed up directly instead of copied"),
        "{warnings}"
    );
    let t = &v["services"][0]["targets"];
    assert_eq!(t[0]["outcome"], "failed");
    assert_eq!(t[1]["method"], "backup");
    assert_eq!(t[1]["outcome"], "ok");
    assert_eq!(s.snapshots("dest-b/docs").len(), 1);
    assert_eq!(s.snapshots("dest-c/docs").len(), 1);
}

#[test]
fn per_destination_retention_overrides_the_service_policy() {
    let s = Scenario::new()
        .file("data/docs/a.txt", "alpha")
        .global("retention_last = 3\nretention_max_remove_percent = 100")
        .destination(
            "near",
            "type = \"local\"\npath = \"{root}/near\"\nretention_last = 1",
        )
        .destination_local("far", "far")
        .service("docs", |d| {
            d.targets(&["near", "far"]).path("{root}/data/docs")
        });
    s.run(&["setup"]).succeeds();
    for i in 0..4 {
        s.write("data/docs/a.txt", &format!("version {i}"));
        s.run(&["run"]).succeeds();
    }
    let kept = |repo: &str| s.snapshots(repo).len();
    assert_eq!((kept("near/docs"), kept("far/docs")), (1, 3));
}

#[test]
fn retention_guard_refuses_mass_forget_unless_allowed() {
    let s = Scenario::new()
        .file("data/docs/a.txt", "alpha")
        .service("docs", |d| d.path("{root}/data/docs"));
    s.run(&["setup"]).succeeds();
    for _ in 0..3 {
        s.run(&["run"]).succeeds();
    }
    // keep 1 of 4 → remove 75 % > 50 %.
    let s = s.global("retention_last = 1");
    let d = s.run(&["run", "--json"]);
    d.code(1);
    let v = d.json();
    assert_eq!(v["services"][0]["error_class"], "retention_refused");
    let msg = v["services"][0]["error"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(msg.contains("would remove 3 of 4 snapshots"), "{msg}");
    assert!(msg.contains("--allow-mass-forget"), "{msg}");
    assert_eq!(s.snapshots("repo/docs").len(), 4, "nothing removed");

    let d = s.run(&["run", "--allow-mass-forget", "--json"]);
    d.succeeds();
    assert_eq!(
        d.json()["services"][0]["targets"][0]["retention"]["removed"],
        4
    );
    assert_eq!(s.snapshots("repo/docs").len(), 1);
}

#[test]
fn prune_never_forgets_without_pruning() {
    let s = Scenario::new()
        .file("data/docs/a.txt", "alpha")
        .service("docs", |d| {
            d.keys("retention_last = 1\nprune = \"never\"")
                .path("{root}/data/docs")
        });
    s.run(&["setup"]).succeeds();
    s.run(&["run"]).succeeds();
    s.write("data/docs/a.txt", "beta, different data");
    let d = s.run(&["run", "--json"]);
    d.succeeds();
    let r = &d.json()["services"][0]["targets"][0]["retention"];
    assert_eq!(r["removed"], 1);
    assert_eq!(r["pruned"], false);
    // The forgotten snapshot's data is still there: prune would remove it.
    let d = s.restic("repo/docs", &["prune", "--dry-run"]);
    d.succeeds();
    assert!(!d.stdout.contains("will remove 0 packs"), "{}", d.stdout);
}

#[test]
fn wrong_password_is_classified() {
    let s = Scenario::new();
    s.write("data/docs/a.txt", "alpha");
    s.simple("[services.docs]\ntargets = [\"local\"]\n[services.docs.config]\npaths = [\"{root}/data/docs\"]\n");
    s.run(&["setup"]).succeeds();
    s.write("pw", "not-the-password\n");
    let d = s.run(&["run", "--json"]);
    d.code(1);
    let v = d.json();
    assert_eq!(
        v["services"][0]["targets"][0]["error_class"],
        "wrong_password"
    );
    assert!(
        v["services"][0]["error"]
            .as_str()
            .unwrap_or("")
            .contains("did not accept the password")
    );
    assert_eq!(
        s.history().query("SELECT error_class FROM run_targets"),
        ["wrong_password"]
    );
}

#[test]
fn unreachable_destination_fails_while_local_succeeds() {
    // Nothing listens on this port.
    let port = free_port();
    let s = Scenario::new()
        .file("data/docs/a.txt", "alpha")
        .destination_local("local", "repo")
        .destination(
            "server",
            &format!("type = \"rest\"\nurl = \"http://127.0.0.1:{port}/\""),
        )
        .service("docs", |d| {
            d.targets(&["server", "local"]).path("{root}/data/docs")
        });
    let d = s.run(&["setup"]);
    d.code(1);
    assert!(
        d.stdout.contains("docs → local: initialised"),
        "{}",
        d.stdout
    );
    let d = s.run(&["run", "--json"]);
    d.code(1);
    let v = d.json();
    let t = &v["services"][0]["targets"];
    assert_eq!(t[0]["outcome"], "failed");
    assert_eq!(t[0]["error_class"], "unreachable");
    assert_eq!(t[1]["outcome"], "ok");
    assert_eq!(s.snapshots("repo/docs").len(), 1);
}

fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "kill {sig} {pid}");
}

/// A live restic backup that holds a (non-exclusive) lock on `repo` until
/// the returned FIFO is opened for writing: restic blocks opening a FIFO
/// named CACHEDIR.TAG in a folder below its backup path (it reads the tag
/// for `--exclude-caches`).
fn live_lock(s: &Scenario, repo: &str) -> (std::process::Child, std::path::PathBuf) {
    let dir = s.path("held");
    s.write("held/stuck/file.txt", "x");
    let fifo = dir.join("stuck/CACHEDIR.TAG");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .is_ok_and(|st| st.success()),
        "mkfifo"
    );
    let child = s
        .restic_command(repo)
        .args(["backup", "--exclude-caches", "--tag", "other"])
        .arg(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("restic backup");
    let start = Instant::now();
    while locks(s, repo) == 0 {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "restic backup never locked"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    (child, fifo)
}

/// Lets the blocked restic read EOF from the FIFO and finish.
fn release(mut child: std::process::Child, fifo: &std::path::Path) {
    use std::os::unix::fs::OpenOptionsExt;
    // O_NONBLOCK: fails instead of hanging when restic is not waiting.
    let opened = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(0o4000)
        .open(fifo);
    assert!(
        opened.is_ok(),
        "restic was not blocked on the FIFO: {opened:?}"
    );
    drop(opened);
    let _ = child.wait();
}

fn with_retention(s: Scenario, extra: &str) -> Scenario {
    let s = s
        .file("data/docs/a.txt", "alpha")
        .global("retention_last = 3")
        .global(extra)
        .service("docs", |d| d.path("{root}/data/docs"));
    s.run(&["setup"]).succeeds();
    s
}

#[test]
fn held_lock_is_waited_for_then_retention_succeeds() {
    let s = with_retention(Scenario::new(), "");
    // Four snapshots so that retention has something to remove.
    for _ in 0..3 {
        s.run(&["run"]).succeeds();
    }
    let (holder, fifo) = live_lock(&s, "repo/docs");
    let start = Instant::now();
    let run = s
        .command()
        .args(["run", "--json", "--allow-mass-forget"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(3));
    release(holder, &fifo);
    let out = run.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        start.elapsed() >= Duration::from_secs(3),
        "forget must wait for the lock"
    );
    assert!(stdout.contains("\"removed\": 1"), "{stdout}");
    let log = std::fs::read_dir(s.path("state/restic-manager/logs/docs"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
        .collect::<String>();
    assert!(
        log.contains("is locked by another restic process; retrying"),
        "{log}"
    );
}

#[test]
fn held_lock_gives_up_after_lock_wait_seconds() {
    let s = with_retention(Scenario::new(), "lock_wait_seconds = 2");
    let (holder, fifo) = live_lock(&s, "repo/docs");
    let d = s.run(&["run", "--json"]);
    release(holder, &fifo);
    d.code(3);
    let v = d.json();
    let t = &v["services"][0]["targets"][0];
    assert_eq!(
        t["outcome"], "ok",
        "the backup itself is not blocked by a shared lock"
    );
    assert!(
        t["retention_error"]
            .as_str()
            .unwrap_or("")
            .contains("gave up after waiting"),
        "{t}"
    );
}

#[test]
fn stale_lock_from_a_killed_restic_is_removed() {
    let s = with_retention(Scenario::new(), "");
    for _ in 0..3 {
        s.run(&["run"]).succeeds();
    }
    // A restic killed while holding its lock leaves the lock behind (a
    // dead PID on this host); it blocks `forget`, which needs an
    // exclusive lock.
    let (mut holder, _fifo) = live_lock(&s, "repo/docs");
    signal(holder.id(), "-KILL");
    let _ = holder.wait();
    assert_eq!(locks(&s, "repo/docs"), 1, "a stale lock is left");
    let start = Instant::now();
    let d = s.run(&["run", "--json"]);
    d.succeeds();
    assert!(
        start.elapsed() < Duration::from_secs(60),
        "did not wait out lock_wait_seconds"
    );
    assert_eq!(
        d.json()["services"][0]["targets"][0]["retention"]["removed"],
        1
    );
    assert_eq!(
        s.snapshots("repo/docs")
            .iter()
            .filter(|x| x["tags"].to_string().contains("service:docs"))
            .count(),
        3
    );
    assert_eq!(locks(&s, "repo/docs"), 0);
}

#[test]
fn after_kill_9_of_everything_the_next_run_succeeds_without_unlock() {
    let s = Scenario::new();
    s.write("data/docs/a.txt", "alpha");
    s.simple(
        "[services.docs]\ntargets = [\"local\"]\nretention_last = 5\n[services.docs.config]\npaths = [\"{root}/data/docs\"]\n",
    );
    s.run(&["setup"]).succeeds();
    // A FIFO named CACHEDIR.TAG makes restic block while holding its lock.
    s.write("data/docs/stuck/file.txt", "x");
    let fifo = s.path("data/docs/stuck/CACHEDIR.TAG");
    let ok = Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .is_ok_and(|st| st.success());
    assert!(ok, "mkfifo");
    let mut run = s
        .command()
        .args(["run"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while locks(&s, "repo/docs") == 0 {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "restic never locked"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // The machine dies: the manager and its restic, both with SIGKILL.
    let manager = run.id();
    let restic_pids: Vec<String> = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| {
            std::fs::read(e.path().join("cmdline")).is_ok_and(|c| {
                String::from_utf8_lossy(&c).contains(&*s.path("data/docs").to_string_lossy())
                    && c.starts_with(b"/usr/bin/restic")
            })
        })
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    signal(manager, "-KILL");
    let _ = run.wait();
    for p in &restic_pids {
        let _ = Command::new("kill").args(["-KILL", p]).status();
    }
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(locks(&s, "repo/docs"), 1, "a stale lock is left behind");
    std::fs::remove_file(&fifo).unwrap();

    s.run(&["run"]).succeeds();
    assert_eq!(s.snapshots("repo/docs").len(), 1);
    let rows = s.history().query("SELECT outcome FROM runs ORDER BY id");
    assert_eq!(
        rows,
        ["interrupted", "ok"],
        "the killed run is recorded as interrupted"
    );
}

#[test]
fn services_run_in_parallel_up_to_the_limit() {
    // Each pre hook marks its start, waits 3 s, then notes which hooks had
    // started by then: both see both only if they ran at the same time
    // (one after the other, the first would not see the second). Unlike a
    // wall-clock bound, this holds on a loaded machine.
    let slow = |name: &str| {
        format!(
            "pre_backup_hooks = [{{ name = \"slow\", command = \"touch {{root}}/started-{name}; sleep 3; ls {{root}} > {{root}}/seen-{name}\" }}]"
        )
    };
    let s = Scenario::new()
        .file("data/a/f", "a")
        .file("data/b/f", "b")
        .global("max_parallel_services = 2")
        .service("a", |a| a.path("{root}/data/a").config(&slow("a")))
        .service("b", |b| b.path("{root}/data/b").config(&slow("b")));
    s.run(&["setup"]).succeeds();
    s.run(&["run"]).succeeds();
    for (hook, other) in [("a", "started-b"), ("b", "started-a")] {
        let seen = read(&s.path(&format!("seen-{hook}")));
        assert!(
            seen.lines().any(|l| l == other),
            "the two services' 3 s hooks ran one after the other: when `{hook}`'s ended, the other had not started (the folder held {seen:?})"
        );
    }
    assert_eq!(s.snapshots("repo/a").len(), 1);
    assert_eq!(s.snapshots("repo/b").len(), 1);
}
