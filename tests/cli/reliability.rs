//! Backups that cannot be stopped silently (issue 13, items 1-5): hooks
//! whose descendants hold the pipes, restic outliving a killed manager,
//! a damaged history database, refused overlapping runs, new services.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::harness::{
    Background, Done, Scenario, StopOnDrop, chmod, root, spawn_piped, wait_until,
};

/// Processes started from this scenario (their environment has its HOME)
/// whose command line contains `needle`, as `pid cmdline`.
fn scenario_processes(s: &Scenario, needle: &str) -> Vec<String> {
    let home = format!("HOME={}", s.path("home").display());
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.chars().all(|c| c.is_ascii_digit()) {
            continue;
        }
        let (Ok(cmd), Ok(env)) = (
            std::fs::read(e.path().join("cmdline")),
            std::fs::read(e.path().join("environ")),
        ) else {
            continue;
        };
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        let ours = env.split(|b| *b == 0).any(|v| v == home.as_bytes());
        if ours && cmd.contains(needle) {
            found.push(format!("{name} {cmd}"));
        }
    }
    found
}

/// Kills (by pid) what a failed test may have left, so it cannot disturb
/// other tests.
struct Sweep<'a>(&'a Scenario, &'static str);

impl Drop for Sweep<'_> {
    fn drop(&mut self) {
        for p in scenario_processes(self.0, self.1) {
            if let Some(pid) = p.split(' ').next() {
                let _ = Command::new("kill").args(["-KILL", pid]).status();
            }
        }
    }
}

/// Service `flaky` of a `status --json` (null when missing).
fn flaky_of(status: &Done) -> serde_json::Value {
    status
        .json()
        .as_array()
        .and_then(|a| a.iter().find(|x| x["service"] == "flaky"))
        .cloned()
        .unwrap_or_default()
}

fn one_service(s: Scenario, sections: &str) -> Scenario {
    let s = s
        .file("data/app/a.txt", "hello")
        .file("pw", "secret\n")
        .service("app", |a| a.path("{root}/data/app"))
        .sections(sections);
    s.run(&["setup"]).succeeds();
    s
}

/// A pre-backup hook `daemon` running `command`, stopped after `timeout`
/// seconds.
fn daemon_hook(command: &str, timeout: u32) -> String {
    format!(
        "[[services.app.config.pre_backup_hooks]]\nname = \"daemon\"\ncommand = \"{command}\"\ntimeout_seconds = {timeout}\n"
    )
}

// ---- 1. hooks whose descendants hold the pipes -------------------------

#[test]
fn hook_that_starts_a_daemon_is_bounded_by_its_timeout_and_the_daemon_is_stopped() {
    let s = one_service(
        Scenario::new(),
        &format!(
            "{}[[services.app.config.post_backup_hooks]]\nname = \"after\"\ncommand = \"touch {{root}}/post-ran\"\n",
            daemon_hook("setsid sleep 1004 & sleep 1004", 2)
        ),
    );
    let _sweep = Sweep(&s, "sleep 1004");
    let (done, took) = Background::start(&s, &["run"]).finish_within(Duration::from_secs(30));
    done.code(1)
        .stderr_has("pre-backup hook `daemon` failed (timed out after 2s); backup skipped");
    assert!(took < Duration::from_secs(15), "run took {took:?}");
    assert!(s.path("post-ran").exists(), "post hooks must still run");
    assert!(s.snapshots("repo/app").is_empty());
    assert_eq!(
        s.history()
            .query("SELECT outcome, error_class FROM runs ORDER BY id"),
        ["failed|timeout"]
    );
    assert_eq!(
        scenario_processes(&s, "sleep 1004"),
        Vec::<String>::new(),
        "the daemon that left the hook's process group must be stopped"
    );
    // The lock went with the run: the next one is not "already running".
    let (done, _) = Background::start(&s, &["run"]).finish_within(Duration::from_secs(30));
    assert!(!done.stderr.contains("already running"), "{}", done.stderr);
}

#[test]
fn sigterm_stops_a_run_whose_hook_daemon_holds_the_pipes() {
    let s = Scenario::new();
    let hook = daemon_hook("setsid sleep 1004 & touch {root}/started; sleep 1004", 600);
    let s = one_service(s, &hook);
    let _sweep = Sweep(&s, "sleep 1004");
    let run = Background::start(&s, &["run"]);
    wait_until("the hook", Duration::from_secs(20), || {
        s.path("started").exists()
    });
    run.signal("TERM");
    let (done, took) = run.finish_within(Duration::from_secs(30));
    assert_eq!(done.code, 143, "{}", done.stderr);
    assert!(took < Duration::from_secs(15), "stopping took {took:?}");
    assert_eq!(
        s.history().query("SELECT outcome FROM runs"),
        ["interrupted"]
    );
    assert_eq!(scenario_processes(&s, "sleep 1004"), Vec::<String>::new());
}

#[test]
fn hook_that_exits_leaving_a_daemon_on_its_pipes_does_not_hold_the_backup() {
    let s = one_service(
        Scenario::new(),
        &daemon_hook("setsid sleep 1004 & echo started", 300),
    );
    let _sweep = Sweep(&s, "sleep 1004");
    let (done, took) = Background::start(&s, &["run"]).finish_within(Duration::from_secs(60));
    done.succeeds();
    assert!(took < Duration::from_secs(30), "run took {took:?}");
    assert_eq!(s.snapshots("repo/app").len(), 1);
    assert_eq!(scenario_processes(&s, "sleep 1004"), Vec::<String>::new());
}

// ---- 2. children die with the manager ----------------------------------

/// `mb` megabytes of incompressible data (xorshift, fixed seed) in files
/// of 25 MB under `dir`.
fn incompressible(dir: &Path, mb: usize) {
    use std::io::Write;
    std::fs::create_dir_all(dir).expect("mkdir");
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut buf = vec![0u8; 1 << 20];
    for f in 0..mb.div_ceil(25) {
        let p = dir.join(format!("blob{f}"));
        let mut out = std::io::BufWriter::new(
            std::fs::File::create(&p).unwrap_or_else(|e| panic!("create {}: {e}", p.display())),
        );
        for _ in 0..25.min(mb - f * 25) {
            for chunk in buf.chunks_exact_mut(8) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                chunk.copy_from_slice(&x.to_le_bytes());
            }
            out.write_all(&buf)
                .unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
        }
    }
}

#[test]
fn kill_9_of_the_manager_takes_restic_with_it_and_the_next_run_never_overlaps() {
    let s = Scenario::new().file("pw", "secret\n").service("big", |b| {
        b.path("{root}/data/big").config(
            "[[services.big.config.pre_backup_hooks]]\nname = \"slow\"\ncommand = \"touch {root}/hook-started; sleep 1\"",
        )
    });
    let _sweep = Sweep(&s, "restic");
    incompressible(&s.path("data/big"), 600);
    s.run(&["setup"]).succeeds();

    // Watch for two `restic backup` of this scenario at once, for the whole test.
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        // A failed step below must end the watcher too: the scope waits
        // for it before the failure is reported.
        let _stop_watching = StopOnDrop(&stop);
        let watcher = scope.spawn(|| {
            let mut most = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                most = most.max(scenario_processes(&s, " backup ").len());
                std::thread::sleep(Duration::from_millis(20));
            }
            most
        });

        // Kill points: in the pre hook, just after restic started, and
        // mid-backup (600 MB: the backup outlasts 2.5 s on a quiet machine).
        for (point, delay) in [("hook", None), ("early", Some(300)), ("mid", Some(2500))] {
            let _ = std::fs::remove_file(s.path("hook-started"));
            let run = Background::start(&s, &["run"]);
            match delay {
                None => wait_until("the hook", Duration::from_secs(20), || {
                    s.path("hook-started").exists()
                }),
                Some(ms) => {
                    wait_until("restic backup", Duration::from_secs(30), || {
                        !scenario_processes(&s, " backup ").is_empty()
                    });
                    std::thread::sleep(Duration::from_millis(ms));
                }
            }
            run.signal("KILL");
            drop(run);
            wait_until(
                &format!("restic to die with the manager (killed {point})"),
                Duration::from_secs(10),
                || {
                    scenario_processes(&s, "restic").is_empty()
                        && scenario_processes(&s, "sleep 1").is_empty()
                },
            );
        }
        // No killed run saved a snapshot behind history's back.
        assert_eq!(
            s.snapshots("repo/big").len(),
            0,
            "{:?}",
            s.history()
                .query("SELECT id, outcome, error_message, started_at, finished_at FROM runs")
        );

        let (done, _) = Background::start(&s, &["run"]).finish_within(Duration::from_secs(180));
        done.succeeds();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let most = watcher.join().expect("watcher panicked");
        assert_eq!(most, 1, "two restic backups ran at once");
    });

    // restic removed its locks (SIGINT), or the final run's after-crash
    // `restic unlock` did (restic 0.14 leaves one when SIGINT lands while
    // it writes it), and history agrees with the repository. What restic
    // lists is what counts: a restic stopped in the middle of writing a
    // lock to a local repository may leave `locks/ID-tmp-N` (seen under
    // disk load), which restic never reads as a lock and `unlock` keeps.
    let left = s.locks("repo/big");
    assert!(left.is_empty(), "locks left in the repository: {left:#?}");
    assert_eq!(
        s.history().query("SELECT outcome FROM runs ORDER BY id"),
        ["interrupted", "interrupted", "interrupted", "ok"]
    );
    let snaps = s.snapshots("repo/big");
    assert_eq!(snaps.len(), 1);
    let status = s.run(&["status", "--json"]);
    let json = status.json();
    let recorded = json[0]["destinations"][0]["snapshot_id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let actual = snaps[0]["id"].as_str().unwrap_or_default();
    assert!(
        !recorded.is_empty() && actual.starts_with(&recorded),
        "status says {recorded:?}, the repository has {actual:?}"
    );
}

/// What a manager killed where the parent-death signal does not exist
/// leaves behind: `sleep SECS` carrying that (dead, pid 999999999)
/// manager's mark for service `app`.
fn marked_orphan(s: &Scenario, secs: &str) -> std::process::Child {
    Command::new("sleep")
        .arg(secs)
        .env("HOME", s.path("home"))
        .env(
            "RESTIC_MANAGER_CHILD",
            format!(
                "999999999.1|0|app@{}",
                s.path("run/restic-manager").display()
            ),
        )
        .spawn()
        .expect("spawn")
}

/// `run` warns that it stopped `orphan` (`sleep SECS`, from
/// [`marked_orphan`]) with `said` after its pid, and the orphan is gone.
#[track_caller]
fn run_stops(s: &Scenario, mut orphan: std::process::Child, secs: &str, said: &str) {
    s.run(&["run"]).code(3).stderr_has(&format!(
        "stopped `sleep {secs}` (pid {}), {said}",
        orphan.id()
    ));
    let st = orphan.wait().expect("wait");
    assert!(!st.success(), "the leftover must have been stopped");
}

#[test]
fn a_leftover_is_found_after_normal_runs_once_a_run_is_killed() {
    let s = one_service(Scenario::new(), "");
    let _sweep = Sweep(&s, "sleep 1008");
    // Normal runs mark the lock as let go; a killed one leaves its pid.
    s.run(&["run"]).code(0);
    let lock = s.path("run/restic-manager/app.lock");
    std::fs::write(&lock, "999999999").unwrap_or_else(|e| panic!("write {}: {e}", lock.display()));
    let orphan = marked_orphan(&s, "1008");
    run_stops(
        &s,
        orphan,
        "1008",
        "left running by an earlier run of this service",
    );
    assert_eq!(s.snapshots("repo/app").len(), 2);
}

#[test]
fn a_process_left_by_an_earlier_killed_run_is_stopped_and_named() {
    let s = one_service(Scenario::new(), "");
    let _sweep = Sweep(&s, "sleep 1006");
    let orphan = marked_orphan(&s, "1006");
    run_stops(
        &s,
        orphan,
        "1006",
        "left running by an earlier run of this service whose restic-manager (pid 999999999) ended without stopping it",
    );
    assert_eq!(s.snapshots("repo/app").len(), 1);
}

#[test]
fn sigterm_to_setup_leaves_no_restic_behind() {
    // A restic that hangs while initialising the repository, like one
    // talking to a slow server.
    let s = Scenario::new()
        .file(
            "bin/restic",
            "#!/bin/sh\ncase \"$1\" in init) exec sleep 1007;; esac\nexec restic \"$@\"\n",
        )
        .file("data/app/a.txt", "hello")
        .file("pw", "secret\n")
        .global("restic_binary = \"{root}/bin/restic\"")
        .service("app", |a| a.path("{root}/data/app"));
    let _sweep = Sweep(&s, "sleep 1007");
    chmod(&s.path("bin/restic"), 0o755);
    let setup = Background::start(&s, &["setup"]);
    wait_until("restic init", Duration::from_secs(20), || {
        !scenario_processes(&s, "sleep 1007").is_empty()
    });
    setup.signal("TERM");
    let _ = setup.finish_within(Duration::from_secs(20));
    wait_until("restic to die with setup", Duration::from_secs(30), || {
        scenario_processes(&s, "sleep 1007").is_empty()
    });
}

// ---- 4. a refused overlapping run is not the service's outcome ----------

#[test]
fn refused_overlapping_run_does_not_turn_health_failed_but_a_hung_holder_is_named() {
    let s = one_service(
        Scenario::new(),
        r#"[[services.app.config.pre_backup_hooks]]
name = "wait"
command = "touch {root}/started; for i in $(seq 600); do [ -e {root}/release ] && break; sleep 0.1; done"
"#,
    );
    let first = Background::start(&s, &["run"]);
    wait_until("the first run's pre hook", Duration::from_secs(20), || {
        s.path("started").exists()
    });
    let refused = s.run(&["run"]);
    refused.code(1).stderr_has(&format!(
        "service `app` is already running (pid {})",
        first.pid()
    ));
    assert!(
        !refused.stderr.contains("may be hung"),
        "{}",
        refused.stderr
    );
    // The holder has now been running for three hours (longer than
    // long_running_threshold_minutes, 120 by default): the refusal says so.
    s.history().query(
        "UPDATE runs SET started_at = started_at - 10800000 WHERE outcome = 'running' AND id = 1",
    );
    s.run(&["run"])
        .code(1)
        .stderr_has("longer than long_running_threshold_minutes (120); it may be hung");

    s.write("release", "");
    first.finish_within(Duration::from_secs(60)).0.succeeds();
    // The refusals finished before the run that held the lock, and are
    // newer: they are listed, but the service's health is its backup's.
    assert_eq!(
        s.history()
            .query("SELECT id, outcome, error_class FROM runs ORDER BY id"),
        [
            "1|ok|",
            "2|failed|already_running",
            "3|failed|already_running"
        ]
    );
    let status = s.run(&["status", "--json"]);
    status.succeeds();
    let json = status.json();
    assert_eq!(json[0]["state"], "ok", "{json}");
    assert_eq!(json[0]["last_run"]["outcome"], "ok", "{json}");
}

// ---- 3. a broken history database never stops a backup -------------------

fn history_file(s: &Scenario) -> std::path::PathBuf {
    s.path("state/restic-manager/history.sqlite")
}

fn sidecar(file: &Path, suffix: &str) -> std::path::PathBuf {
    let mut p = file.as_os_str().to_owned();
    p.push(suffix);
    p.into()
}

/// Gives folders and files their modes back, so the scenario can be
/// removed whoever runs the tests.
struct Writable(Vec<std::path::PathBuf>);

impl Drop for Writable {
    fn drop(&mut self) {
        use std::os::unix::fs::PermissionsExt;
        for p in &self.0 {
            let _ = std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755));
        }
    }
}

/// Runs the binary as the scenario's user would, but without the
/// capabilities that let root write whatever the file modes say (the tests
/// run as root in CI), so a read-only file is read-only to it.
fn run_unprivileged(s: &Scenario, args: &[&str]) -> Done {
    let plain = s.command();
    let mut c = if root().is_ok() {
        let mut c = Command::new("setpriv");
        c.args(["--bounding-set=-dac_override,-dac_read_search", "--"])
            .arg(plain.get_program());
        c
    } else {
        Command::new(plain.get_program())
    };
    c.env_clear();
    for (k, v) in plain.get_envs() {
        if let Some(v) = v {
            c.env(k, v);
        }
    }
    if let Some(d) = plain.get_current_dir() {
        c.current_dir(d);
    }
    Done::from(c.args(args).output().expect("setpriv (util-linux)"))
}

/// The text between `after` and the next backtick in `text`.
fn quoted_after(text: &str, after: &str) -> String {
    text.split_once(after)
        .and_then(|(_, rest)| rest.split('`').next())
        .unwrap_or_else(|| panic!("no {after:?} in {text}"))
        .to_string()
}

#[test]
fn a_damaged_history_is_moved_aside_and_the_backup_runs_anyway() {
    let rx = crate::receiver::Receiver::start(&[]);
    let hook = format!(
        "[notifiers.hook]\ntype = \"webhook\"\nurl = \"{}\"\n",
        rx.url("/hook")
    );
    let s = one_service(Scenario::new(), &hook);
    s.run(&["run"]).succeeds();
    let file = history_file(&s);
    let garbage: Vec<u8> = (0..8192u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    for case in ["random bytes", "truncated", "a folder"] {
        match case {
            "random bytes" => std::fs::write(&file, &garbage).expect("write"),
            "truncated" => {
                let f = std::fs::OpenOptions::new()
                    .write(true)
                    .open(&file)
                    .expect("open");
                let len = f.metadata().map(|m| m.len()).unwrap_or(0);
                assert!(len > 16384, "history is only {len} bytes");
                f.set_len(8192).expect("truncate");
            }
            _ => {
                std::fs::remove_file(&file).expect("rm");
                std::fs::create_dir_all(file.join("inside")).expect("mkdir");
            }
        }
        rx.clear();
        let before = s.snapshots("repo/app").len();
        let d = s.run(&["run"]);
        d.code(3)
            .stderr_has(&format!(
                "warning: app: history database `{}` was damaged (",
                file.display()
            ))
            .stderr_has("and started a new one, so earlier runs are no longer in history");
        assert_eq!(
            s.snapshots("repo/app").len(),
            before + 1,
            "{case}: the backup must run"
        );
        let moved = quoted_after(&d.stderr, "moved it to `");
        assert!(
            moved.starts_with(&format!("{}.damaged-", file.display())),
            "{moved}"
        );
        match case {
            "random bytes" => assert_eq!(std::fs::read(&moved).ok(), Some(garbage.clone())),
            "a folder" => assert!(Path::new(&moved).join("inside").is_dir(), "{moved}"),
            _ => assert!(Path::new(&moved).is_file(), "{moved}"),
        }
        // The run was recorded in the new database, with the warning.
        assert_eq!(
            s.history().query("SELECT outcome FROM runs"),
            ["warning"],
            "{case}"
        );
        // A notification went out, naming the file.
        let sent = rx.at("/hook");
        assert_eq!(sent.len(), 1, "{case}: {sent:?}");
        let body = sent[0].json();
        assert_eq!(body["event"], "warning");
        assert!(
            body["warnings"][0]
                .as_str()
                .is_some_and(|w| w.contains("was damaged") && w.contains(&moved)),
            "{body}"
        );
        // `status` says that history was reset, when, and where the old one is.
        s.run(&["status"])
            .code(3)
            .stdout_has("history was reset ")
            .stdout_has(&format!("the damaged database was moved to `{moved}`"));
        let st = s.run(&["status", "--json"]);
        let reset = &st.json()[0]["history_reset"];
        assert_eq!(reset["moved_to"], moved.as_str(), "{reset}");
        assert!(
            reset["at"].is_string() && reset["reason"].is_string(),
            "{reset}"
        );
        // The next run is clean again.
        s.run(&["run"]).succeeds();
    }
}

#[test]
fn a_read_only_history_is_read_by_status_metrics_and_snapshots_and_run_goes_on_unrecorded() {
    let s = one_service(Scenario::new(), "");
    s.run(&["run"]).succeeds();
    let dir = s.path("state/restic-manager");
    let file = history_file(&s);
    let _back = Writable(vec![dir.clone(), file.clone()]);
    chmod(&file, 0o444);
    chmod(&dir, 0o555);

    let st = run_unprivileged(&s, &["status"]);
    st.succeeds();
    assert!(
        st.stdout
            .lines()
            .any(|l| l.starts_with("app ") && l.contains(" ok ")),
        "{}",
        st.stdout
    );
    let st = run_unprivileged(&s, &["status", "--json"]);
    st.succeeds();
    assert_eq!(st.json()[0]["state"], "ok");
    run_unprivileged(&s, &["metrics"])
        .succeeds()
        .stdout_has("restic_manager_health{service=\"app\",destination=\"local\"");
    run_unprivileged(&s, &["snapshots"])
        .succeeds()
        .stdout_has("service:app");

    let d = run_unprivileged(&s, &["run"]);
    d.code(3).stderr_has(&format!(
        "warning: app: history database `{}` cannot be written (the file is read-only); this run is not recorded in history",
        file.display()
    ));
    assert_eq!(s.snapshots("repo/app").len(), 2, "the backup must run");
    assert_eq!(s.history().query("SELECT count(*) FROM runs"), ["1"]);
}

#[test]
fn a_read_only_shm_left_behind_does_not_make_every_run_a_warning() {
    let s = one_service(Scenario::new(), "");
    s.run(&["run"]).succeeds();
    let file = history_file(&s);
    let shm = sidecar(&file, "-shm");
    // What a reader of another user leaves when it crashes: a `-shm` that
    // later runs cannot write.
    let copy = s.path("shm-copy");
    let ok = Command::new("sqlite3")
        .arg(&file)
        .arg("SELECT count(*) FROM runs;")
        .arg(format!(
            ".shell cp '{}' '{}'",
            shm.display(),
            copy.display()
        ))
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(ok && copy.is_file(), "sqlite3 left no -shm to copy");
    std::fs::copy(&copy, &shm).expect("cp");
    chmod(&shm, 0o444);
    for _ in 0..2 {
        let d = run_unprivileged(&s, &["run"]);
        d.succeeds();
        assert!(!d.stderr.contains("warning"), "{}", d.stderr);
    }
    assert_eq!(s.snapshots("repo/app").len(), 3);
    assert_eq!(
        s.history().query("SELECT outcome FROM runs ORDER BY id"),
        ["ok", "ok", "ok"]
    );
}

#[test]
fn a_locked_history_holds_the_backup_up_for_seconds_not_forever() {
    use std::io::{BufRead, BufReader, Read, Write};
    let s = one_service(Scenario::new(), "");
    s.run(&["run"]).succeeds();
    let file = history_file(&s);
    // Another process holds the database exclusively (a `sqlite3` session
    // left open in the middle of a write). It waits out a reader that
    // happens to look at the file at the same moment (`.timeout`), stops at
    // the first error (`-bail`), and says when it holds the lock.
    let mut holder = spawn_piped(
        Command::new("sqlite3").arg("-bail").arg(&file),
        Stdio::piped(),
        "sqlite3",
    );
    let mut stdin = holder.stdin.take().expect("stdin");
    stdin
        .write_all(
            b".timeout 20000\nPRAGMA locking_mode=EXCLUSIVE;\nBEGIN EXCLUSIVE;\nINSERT INTO history_resets VALUES (1, 'x', 'y');\nSELECT 'held';\n",
        )
        .expect("write");
    stdin.flush().expect("flush");
    // It echoes the locking mode first, then `held` once the write is in.
    let mut out = BufReader::new(holder.stdout.take().expect("stdout"));
    let mut said = String::new();
    while said.trim() != "held" {
        said.clear();
        let n = out.read_line(&mut said).expect("read");
        if n == 0 {
            let mut err = String::new();
            if let Some(mut e) = holder.stderr.take() {
                let _ = e.read_to_string(&mut err);
            }
            panic!("sqlite3 ended without taking the lock: {err}");
        }
    }
    wait_until("a reader to see the lock", Duration::from_secs(10), || {
        Command::new("sqlite3")
            .arg(&file)
            .arg("SELECT count(*) FROM runs")
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stderr).contains("locked"))
    });
    let (d, took) = Background::start(&s, &["run"]).finish_within(Duration::from_secs(90));
    d.code(3).stderr_has(&format!(
        "warning: app: history database `{}` cannot be written (locked by another process for more than 10 s); this run is not recorded in history",
        file.display()
    ));
    assert!(took < Duration::from_secs(45), "run took {took:?}");
    assert_eq!(s.snapshots("repo/app").len(), 2, "the backup must run");
    drop(stdin);
    let _ = holder.kill();
    let _ = holder.wait();
    s.run(&["run"]).succeeds();
    assert_eq!(
        s.history().query("SELECT outcome FROM runs ORDER BY id"),
        ["ok", "ok"]
    );
}

// ---- 4. a refusal is not the service's outcome, for notifiers either -----

#[test]
fn a_refused_run_notifies_nothing_and_the_next_success_is_no_recovery() {
    let rx = crate::receiver::Receiver::start(&[]);
    let s = one_service(
        Scenario::new(),
        &format!(
            r#"[[services.app.config.pre_backup_hooks]]
name = "wait"
command = "touch {{root}}/started; for i in $(seq 600); do [ -e {{root}}/release ] && break; sleep 0.1; done"
[notifiers.hook]
type = "webhook"
url = "{hook}"
[notifiers.hc]
type = "healthchecks"
url = "{hc}"
"#,
            hook = rx.url("/hook"),
            hc = rx.url("/hc"),
        ),
    );
    let first = Background::start(&s, &["run"]);
    wait_until("the first run's pre hook", Duration::from_secs(20), || {
        s.path("started").exists()
    });
    assert_eq!(rx.at("/hc/start").len(), 1, "{:?}", rx.all());
    rx.clear();
    s.run(&["run"]).code(1).stderr_has("is already running");
    let paths: Vec<String> = rx.all().iter().map(|r| r.path.clone()).collect();
    assert!(
        paths.is_empty(),
        "a refusal is not a failure, nor a start: {paths:?}"
    );

    // The holder has run for three hours: now the refusals are news.
    s.history()
        .query("UPDATE runs SET started_at = started_at - 10800000 WHERE outcome = 'running'");
    s.run(&["run"]).code(1).stderr_has("it may be hung");
    let body = rx.one("/hook");
    assert_eq!(body["event"], "failure");
    assert_eq!(body["outcome"], "refused");
    assert_eq!(body["error_class"], "already_running");
    assert!(
        body["title"]
            .as_str()
            .is_some_and(|t| t.contains("backups are being refused") && t.contains("may be hung")),
        "{body}"
    );
    let hc: Vec<String> = rx.at("/hc").iter().map(|r| r.path.clone()).collect();
    assert_eq!(hc, ["/hc/fail"]);
    rx.clear();

    s.write("release", "");
    first.finish_within(Duration::from_secs(60)).0.succeeds();
    // A plain success: no "recovered" message, healthchecks' success ping.
    assert!(rx.at("/hook").is_empty(), "{:?}", rx.all());
    let hc: Vec<String> = rx.at("/hc").iter().map(|r| r.path.clone()).collect();
    assert_eq!(hc, ["/hc"]);
}

// ---- 5. a new service is new, not stale ----------------------------------

#[test]
fn a_new_service_is_never_backed_up_not_stale_until_max_age_has_passed_since_it_was_seen() {
    let s = Scenario::new();
    let rx = crate::receiver::Receiver::start(&[]);
    let s = s
        .file("data/app/a.txt", "hello")
        .file("data/flaky/a.txt", "hello")
        .file("pw", "secret\n")
        .service("app", |a| a.path("{root}/data/app"))
        .service("flaky", |f| f.path("{root}/data/flaky"))
        .sections(&format!(
            "[notifiers.hook]\ntype = \"webhook\"\nurl = \"{}\"",
            rx.url("/hook")
        ));
    s.run(&["setup"]).succeeds();
    s.run(&["run", "--service", "app"]).succeeds();
    let events: Vec<String> = rx
        .at("/hook")
        .iter()
        .map(|r| r.json()["event"].to_string())
        .collect();
    assert!(events.is_empty(), "nothing to report yet: {events:?}");

    let st = s.run(&["status", "--json"]);
    st.succeeds();
    let flaky = flaky_of(&st);
    assert_eq!(flaky["state"], "new", "{flaky}");
    assert_eq!(flaky["destinations"][0]["state"], "new", "{flaky}");
    let reason = flaky["destinations"][0]["reasons"][0]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        reason.starts_with("never backed up (configured ")
            && reason.ends_with("s ago); stale if still none 26h after that"),
        "{reason}"
    );
    let t = s.run(&["status"]);
    t.succeeds()
        .stdout_has("flaky/local: never backed up (configured ")
        .stdout_line("flaky ", " new ");

    // 27 hours after `setup` first saw it, still no snapshot: stale now.
    s.history()
        .query("UPDATE first_seen SET at = at - 27 * 3600 * 1000 WHERE service = 'flaky'");
    let st = s.run(&["status", "--json"]);
    st.code(3);
    let flaky = flaky_of(&st);
    assert_eq!(flaky["state"], "stale", "{flaky}");
    assert_eq!(
        flaky["destinations"][0]["reasons"][0],
        "no successful snapshot recorded; configured 1d 3h ago, max_age 26h"
    );
    s.run(&["run", "--service", "app"]).succeeds();
    let stale: Vec<serde_json::Value> = rx
        .at("/hook")
        .iter()
        .map(crate::receiver::Request::json)
        .filter(|b| b["event"] == "stale")
        .collect();
    assert_eq!(stale.len(), 1, "{stale:?}");
    assert_eq!(stale[0]["service"], "flaky");
}
