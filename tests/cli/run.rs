//! `run`: hooks, source checks, locks, warnings, secrets, history,
//! retention, the legacy `backup_script`, signals and timeouts, each checked
//! against the exit code, the message a user sees and restic's own view of
//! the repository.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::harness::{
    Background, Done, Scenario, chmod, files_containing, read, wait_until, watching_cmdlines,
};

/// `docs`, backing up `{root}/data/docs` to `local`; `service_keys` go into
/// `[services.docs]`, `config_extra` into `[services.docs.config]` (hooks).
fn docs(s: Scenario, service_keys: &str, config_extra: &str) -> Scenario {
    s.file("data/docs/a.txt", "hello")
        .file("data/docs/b.txt", "world")
        .service("docs", |d| {
            d.keys(service_keys)
                .path("{root}/data/docs")
                .config(config_extra)
        })
}

/// `docs` as above, with its repository created.
fn docs_ready(s: Scenario, service_keys: &str, config_extra: &str) -> Scenario {
    docs(s, service_keys, config_extra).ready(&["repo/docs"])
}

/// A post hook that writes `$RESTIC_MANAGER_OUTCOME` to `{root}/post-outcome`.
const RECORD_OUTCOME: &str = r#"
[[services.docs.config.post_backup_hooks]]
name = "record"
command = "echo \"$RESTIC_MANAGER_OUTCOME\" > {root}/post-outcome"
"#;

/// Every process whose command line (argv) is exactly `argv`.
fn processes_running(argv: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.chars().all(|c| c.is_ascii_digit()) {
            continue;
        }
        let Ok(raw) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<String> = raw
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        if args.iter().map(String::as_str).eq(argv.iter().copied()) {
            found.push(name);
        }
    }
    found
}

/// A `sleep` duration no other test (or test process) uses, so a leftover
/// can be told apart from everyone else's.
fn marker(base: u32) -> String {
    format!("{base}.{}", std::process::id())
}

/// Makes restic block inside `backup` (holding its repository lock) until
/// the FIFO is removed: with `--exclude-caches` restic opens every
/// `CACHEDIR.TAG` to read its signature, and opening a FIFO with no writer
/// waits forever. Deterministic, unlike "lots of data".
fn make_restic_hang(s: &Scenario, dir: &str) -> PathBuf {
    s.write(&format!("{dir}/stuck/file.txt"), "x");
    let fifo = s.path(&format!("{dir}/stuck/CACHEDIR.TAG"));
    let ok = Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .is_ok_and(|st| st.success());
    assert!(ok, "mkfifo {}", fifo.display());
    fifo
}

fn repo_locks(s: &Scenario, repo: &str) -> Vec<PathBuf> {
    std::fs::read_dir(s.path(repo).join("locks"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .collect()
}

fn tags(snapshot: &serde_json::Value) -> Vec<String> {
    snapshot["tags"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t.as_str().map(str::to_string))
        .collect()
}

// ---- hooks -------------------------------------------------------------

#[test]
fn failing_pre_hook_skips_the_backup_but_post_hooks_still_run() {
    let s = docs_ready(
        Scenario::new(),
        "",
        &format!(
            "[[services.docs.config.pre_backup_hooks]]\nname = \"stop-db\"\ncommand = \"exit 7\"\n{RECORD_OUTCOME}"
        ),
    );
    s.run(&["run"])
        .code(1)
        .stderr_has("error: docs: pre-backup hook `stop-db` failed (exit code 7); backup skipped");
    assert!(s.snapshots("repo/docs").is_empty());
    assert_eq!(read(&s.path("post-outcome")), "failed\n");
    assert_eq!(
        s.history()
            .query("SELECT outcome, error_class FROM runs WHERE service = 'docs'"),
        ["failed|hook_failed"]
    );
}

#[test]
fn failing_pre_hook_with_continue_on_error_still_backs_up_with_a_warning() {
    let s = docs_ready(
        Scenario::new(),
        "",
        &format!(
            "[[services.docs.config.pre_backup_hooks]]\nname = \"flush\"\ncommand = \"exit 4\"\ncontinue_on_error = true\n{RECORD_OUTCOME}"
        ),
    );
    s.run(&["run"]).code(3).stderr_has(
        "warning: docs: pre-backup hook `flush` failed (exit code 4); continuing as configured",
    );
    assert_eq!(s.snapshots("repo/docs").len(), 1);
    assert_eq!(read(&s.path("post-outcome")), "warning\n");
}

#[test]
fn failing_post_hook_fails_the_service_after_the_backup() {
    let s = docs_ready(
        Scenario::new(),
        "",
        "[[services.docs.config.post_backup_hooks]]\nname = \"start-db\"\ncommand = \"exit 5\"\n",
    );
    s.run(&["run"])
        .code(1)
        .stderr_has("error: docs: post-backup hook `start-db` failed (exit code 5)");
    // The backup itself happened before the hook.
    assert_eq!(s.snapshots("repo/docs").len(), 1);
    assert_eq!(
        s.history().query("SELECT outcome FROM runs"),
        ["failed"],
        "the run is recorded as failed"
    );
}

#[test]
fn failing_post_hook_with_continue_on_error_is_a_warning() {
    let s = docs_ready(
        Scenario::new(),
        "",
        "[[services.docs.config.post_backup_hooks]]\nname = \"notify\"\ncommand = \"exit 5\"\ncontinue_on_error = true\n",
    );
    s.run(&["run"]).code(3).stderr_has(
        "warning: docs: post-backup hook `notify` failed (exit code 5); continuing as configured",
    );
    assert_eq!(s.snapshots("repo/docs").len(), 1);
    assert_eq!(s.history().query("SELECT outcome FROM runs"), ["warning"]);
}

/// `run` fails with `error` on stderr; how long it took.
#[track_caller]
fn run_fails_with(s: &Scenario, error: &str) -> Duration {
    let start = Instant::now();
    s.run(&["run"]).code(1).stderr_has(error);
    start.elapsed()
}

#[test]
fn hook_timeout_kills_the_hooks_whole_process_group() {
    let m = marker(31);
    let s = docs_ready(
        Scenario::new(),
        "",
        &format!(
            "[[services.docs.config.pre_backup_hooks]]\nname = \"slow\"\ncommand = \"sleep {m} & sleep {m}; touch {{root}}/after-sleep\"\ntimeout_seconds = 1\n{RECORD_OUTCOME}"
        ),
    );
    let took = run_fails_with(
        &s,
        "error: docs: pre-backup hook `slow` failed (timed out after 1s); backup skipped",
    );
    assert!(took < Duration::from_secs(8), "took {took:?}");
    // Both sleeps, the background one included, went with the group.
    assert_eq!(processes_running(&["sleep", &m]), Vec::<String>::new());
    assert!(!s.path("after-sleep").exists());
    assert!(s.snapshots("repo/docs").is_empty());
    assert_eq!(read(&s.path("post-outcome")), "failed\n");
    assert_eq!(
        s.history().query("SELECT outcome, error_class FROM runs"),
        ["failed|timeout"]
    );
}

#[test]
fn hook_that_ignores_sigterm_is_killed_after_the_grace_period() {
    let m = marker(32);
    // An ignored signal stays ignored across exec, so both sleeps shrug off
    // the TERM too: only the KILL that follows the grace period ends them.
    let s = docs_ready(
        Scenario::new(),
        "",
        &format!(
            "[[services.docs.config.pre_backup_hooks]]\nname = \"stubborn\"\ncommand = \"trap '' TERM; sleep {m} & sleep {m}\"\ntimeout_seconds = 1\n"
        ),
    );
    let took = run_fails_with(
        &s,
        "error: docs: pre-backup hook `stubborn` failed (timed out after 1s); backup skipped",
    );
    // 1 s timeout + 5 s grace before the KILL.
    assert!(
        took >= Duration::from_secs(6) && took < Duration::from_secs(15),
        "took {took:?}"
    );
    assert_eq!(processes_running(&["sleep", &m]), Vec::<String>::new());
}

#[test]
fn hooks_get_the_service_outcome_env_table_and_working_dir() {
    let s = Scenario::new();
    std::fs::create_dir_all(s.path("wd")).expect("mkdir");
    let s = docs_ready(
        s,
        "",
        r#"
[[services.docs.config.pre_backup_hooks]]
name = "pre"
command = "printf '%s\n' \"$RESTIC_MANAGER_SERVICE\" \"${RESTIC_MANAGER_OUTCOME-unset}\" \"$GREETING\" \"$(pwd)\" > {root}/pre-env"
working_dir = "{root}/wd"
env = { GREETING = "hello there" }

[[services.docs.config.post_backup_hooks]]
name = "post"
command = "printf '%s\n' \"$RESTIC_MANAGER_SERVICE\" \"$RESTIC_MANAGER_OUTCOME\" \"${GREETING-unset}\" > {root}/post-env"
"#,
    );
    s.run(&["run"]).succeeds();
    let wd = s.path("wd");
    assert_eq!(
        read(&s.path("pre-env")),
        format!("docs\nunset\nhello there\n{}\n", wd.display())
    );
    // The env table belongs to its own hook only.
    assert_eq!(read(&s.path("post-env")), "docs\nok\nunset\n");
}

#[test]
fn hook_output_lands_in_the_run_log() {
    let s = docs_ready(
        Scenario::new(),
        "",
        "[[services.docs.config.pre_backup_hooks]]\nname = \"say\"\ncommand = \"echo hello from the hook; echo oops from the hook >&2\"\n",
    );
    s.run(&["run"]).succeeds();
    let logs = s.history().query("SELECT log_file FROM runs");
    assert_eq!(logs.len(), 1);
    let log = PathBuf::from(&logs[0]);
    assert!(
        log.starts_with(s.path("state/restic-manager/logs/docs")),
        "log at {}",
        log.display()
    );
    let text = read(&log);
    assert!(
        text.contains("pre hook `say` | hello from the hook"),
        "{text}"
    );
    assert!(
        text.contains("pre hook `say` ! oops from the hook"),
        "{text}"
    );
    assert!(text.contains("outcome: ok"), "{text}");
}

/// The run log of the only run so far.
fn only_run_log(s: &Scenario) -> String {
    let logs = s.history().query("SELECT log_file FROM runs");
    assert_eq!(logs.len(), 1);
    read(Path::new(&logs[0]))
}

/// A restic call's debug line: command line, redacted repository, how it
/// ended and how long it took (`…restic … backup … (repository `…`): exit
/// code 0 after 0.123s`).
fn restic_backup_call(text: &str) -> Option<&str> {
    text.lines().find(|l| {
        l.contains("restic")
            && l.contains(" backup ")
            && l.contains("(repository `")
            && l.contains("`): exit code 0 after ")
            && l.ends_with('s')
    })
}

#[test]
fn log_level_debug_writes_each_restic_call_with_its_duration_to_the_run_log() {
    let s = docs_ready(Scenario::new(), "", "").global("log_level = \"debug\"");
    let done = s.run(&["run"]);
    done.succeeds();
    // stderr stays as it was: the run log's level is not the terminal's.
    assert_eq!(restic_backup_call(&done.stderr), None, "{}", done.stderr);
    let text = only_run_log(&s);
    let line = restic_backup_call(&text).unwrap_or_else(|| panic!("no restic call:\n{text}"));
    assert!(line.contains(" debug: `"), "{line}");
    assert!(
        line.contains(&format!("(repository `{}`)", s.path("repo/docs").display())),
        "{line}"
    );
    // The run's record is all there as before.
    assert!(text.contains("outcome: ok"), "{text}");
}

#[test]
fn verbose_shows_each_restic_call_on_stderr_and_the_default_does_not() {
    let s = docs_ready(Scenario::new(), "", "");
    let done = s.run(&["-v", "run"]);
    done.succeeds();
    let line = restic_backup_call(&done.stderr)
        .unwrap_or_else(|| panic!("no restic call on stderr:\n{}", done.stderr));
    assert!(line.starts_with('`'), "{line}");
    // The default log_level (info) keeps them out of the run log.
    let text = only_run_log(&s);
    assert_eq!(restic_backup_call(&text), None, "{text}");
    assert!(!text.contains(" debug: "), "{text}");

    let plain = s.run(&["run"]);
    plain.succeeds();
    assert_eq!(restic_backup_call(&plain.stderr), None, "{}", plain.stderr);
}

/// `RUST_LOG` decides what stderr shows when it is set.
#[test]
fn rust_log_debug_shows_restic_calls_without_v() {
    let s = docs_ready(Scenario::new(), "", "");
    let done = s.run_env(&[("RUST_LOG", "restic_manager=debug")], &["run"]);
    done.succeeds();
    assert!(
        restic_backup_call(&done.stderr).is_some(),
        "{}",
        done.stderr
    );
}

/// The run's record (what the run log holds at `info`) reaches stderr
/// only when `RUST_LOG` names its target: `-vv` and `RUST_LOG=debug` show
/// no more of it than before it went through `tracing`.
#[test]
fn the_run_record_streams_to_stderr_only_when_rust_log_names_it() {
    let s = docs_ready(Scenario::new(), "", "");
    let started = "run of service `docs` started (restic ";
    let vv = s.run(&["-vv", "run"]);
    vv.succeeds();
    assert!(!vv.stderr.contains(started), "{}", vv.stderr);
    let debug = s.run_env(&[("RUST_LOG", "debug")], &["run"]);
    debug.succeeds();
    assert!(!debug.stderr.contains(started), "{}", debug.stderr);

    let live = s.run_env(&[("RUST_LOG", "restic_manager::record=info")], &["run"]);
    live.succeeds();
    assert!(live.stderr.contains(started), "{}", live.stderr);
    assert!(live.stderr.contains("\noutcome: ok\n"), "{}", live.stderr);
}

/// A `RUST_LOG` that is not a filter is named and `-v`/`-q` apply.
#[test]
fn a_broken_rust_log_is_named_and_ignored() {
    let s = docs_ready(Scenario::new(), "", "");
    let done = s.run_env(&[("RUST_LOG", "restic_manager=[x")], &["-v", "run"]);
    done.succeeds()
        .stderr_has("warning: ignoring RUST_LOG `restic_manager=[x`: ");
    assert!(
        restic_backup_call(&done.stderr).is_some(),
        "{}",
        done.stderr
    );
}

// ---- sources -----------------------------------------------------------

#[test]
fn missing_path_fails_that_service_before_restic_and_others_still_run() {
    let s = Scenario::new();
    let s = s
        .file("data/good/a.txt", "fine")
        .service("typo", |t| {
            t.path("{root}/data/good").path("{root}/data/nope")
        })
        .service("good", |g| g.path("{root}/data/good"))
        .ready(&["repo/typo", "repo/good"]);
    let nope = s.path("data/nope");
    s.run(&["run"]).code(1).stderr_has(&format!(
        "error: typo: path `{}` does not exist; fix `paths` in `[services.typo.config]` (restic would silently skip it)",
        nope.display()
    ));
    assert!(s.snapshots("repo/typo").is_empty());
    assert_eq!(s.snapshots("repo/good").len(), 1);
    let h = s.history();
    assert_eq!(
        h.query("SELECT service, outcome, error_class FROM runs ORDER BY id"),
        ["typo|failed|source_missing", "good|ok|"]
    );
    // restic never ran for `typo`: no per-destination row at all.
    assert_eq!(
        h.query(
            "SELECT count(*) FROM run_targets t JOIN runs r ON r.id = t.run_id WHERE r.service = 'typo'"
        ),
        ["0"]
    );
}

#[test]
fn unreadable_file_is_a_warning_with_a_snapshot() {
    let s = Scenario::new();
    // Root reads a chmod-000 file regardless, so the unreadable source is
    // this test process's memory: `/proc/PID/mem` exists, but reading it at
    // offset 0 fails (EIO as root, EACCES otherwise), and restic 0.14 then
    // saves the snapshot and exits 3.
    let mem = format!("/proc/{}/mem", std::process::id());
    let s = s
        .file("data/docs/a.txt", "hello")
        .service("docs", |d| d.path("{root}/data/docs").path(&mem))
        .ready(&["repo/docs"]);
    let d = s.run(&["run"]);
    d.code(3);
    let snaps = s.snapshots("repo/docs");
    assert_eq!(snaps.len(), 1);
    let id = snaps[0]["short_id"].as_str().unwrap_or("?");
    d.stderr_has(&format!(
        "warning: docs: `local`: snapshot {id} is incomplete: restic could not read 1 item(s); see the run log"
    ));
    let h = s.history();
    assert_eq!(h.query("SELECT outcome FROM runs"), ["warning"]);
    // History keeps restic's full snapshot id.
    let full = snaps[0]["id"].as_str().unwrap_or("?");
    let t = h.query("SELECT outcome, snapshot_id FROM run_targets");
    assert_eq!(t, [format!("warning|{full}")]);
    let log = read(Path::new(&h.query("SELECT log_file FROM runs")[0]));
    assert!(
        log.contains(&mem),
        "the log names the unreadable item:\n{log}"
    );
    // The same in JSON.
    let j = s.run(&["run", "--json"]);
    j.code(3);
    let v = j.json();
    assert_eq!(v["outcome"], "warning");
    assert_eq!(v["services"][0]["targets"][0]["outcome"], "warning");
    assert_eq!(s.snapshots("repo/docs").len(), 2);
}

// ---- locks -------------------------------------------------------------

#[test]
fn second_run_of_a_running_service_fails_with_the_holders_pid() {
    let s = Scenario::new();
    s.write("data/docs/a.txt", "hello");
    s.write("data/other/a.txt", "hello");
    let s = s
        .service("docs", |d| {
            d.path("{root}/data/docs").config(
                r#"[[services.docs.config.pre_backup_hooks]]
name = "wait"
command = "touch {root}/started; for i in $(seq 300); do [ -e {root}/release ] && break; sleep 0.1; done""#,
            )
        })
        .service("other", |d| d.path("{root}/data/other"))
        .ready(&["repo/docs", "repo/other"]);
    let first = Background::start(&s, &["run", "--service", "docs"]);
    wait_until("the first run's pre hook", Duration::from_secs(20), || {
        s.path("started").exists()
    });

    s.run(&["run", "--service", "docs"])
        .code(1)
        .stderr_has(&format!(
            "error: docs: service `docs` is already running (pid {})",
            first.pid()
        ));
    // A different service is not held up.
    s.run(&["run", "--service", "other"]).succeeds();
    assert_eq!(s.snapshots("repo/other").len(), 1);

    s.write("release", "");
    first.finish().succeeds();
    assert_eq!(s.snapshots("repo/docs").len(), 1);
    assert_eq!(
        s.history()
            .query("SELECT service, outcome, error_class FROM runs ORDER BY id"),
        ["docs|ok|", "docs|failed|already_running", "other|ok|"]
    );
}

// ---- secrets -----------------------------------------------------------

#[test]
fn password_never_reaches_argv_json_logs_or_history() {
    let s = Scenario::new();
    s.write("data/docs/a.txt", "hello");
    // A wrapper records every restic command line restic-manager runs.
    let wrapper = s.write(
        "bin/restic",
        &format!(
            "#!/bin/sh\nprintf '%s\\n' \"$*\" >> {}\nexec restic \"$@\"\n",
            s.path("restic-argv").display()
        ),
    );
    chmod(&wrapper, 0o755);
    let s = s
        .global("restic_binary = \"{root}/bin/restic\"\nretention_last = 1")
        .service("docs", |d| {
            d.path("{root}/data/docs").config(
                "[[services.docs.config.pre_backup_hooks]]\nname = \"env\"\ncommand = \"env > {root}/hook-env\"",
            )
        });
    s.run(&["setup"]).succeeds();
    let password = read(&s.path("pw")).trim().to_string();
    assert!(password.len() >= 16, "setup wrote a strong password");

    // Watch every process's argv while the run happens.
    let (d, leaks) = watching_cmdlines(&[password.as_str()], || s.run(&["run", "--json"]));
    d.succeeds();
    assert_eq!(leaks, Vec::<String>::new(), "password in a command line");

    let argv = read(&s.path("restic-argv"));
    assert!(argv.contains("backup --json"), "{argv}");
    assert!(argv.contains("forget --json"), "{argv}");
    assert!(!argv.contains(&password));
    assert!(!d.stdout.contains(&password) && !d.stderr.contains(&password));
    assert_eq!(d.json()["outcome"], "ok");
    // Hooks do not get the password either.
    assert!(!read(&s.path("hook-env")).contains("RESTIC_PASSWORD"));
    // Nowhere on disk but the password file: logs, history, state.
    assert_eq!(
        files_containing(s.root(), password.as_bytes(), &[&s.path("pw")]),
        Vec::<PathBuf>::new()
    );
}

// ---- history -----------------------------------------------------------

#[test]
fn history_records_the_run_and_each_destination_as_restic_saw_it() {
    let s = docs_ready(Scenario::new(), "", "");
    s.run(&["run"]).succeeds().stdout_has("docs");
    let snaps = s.snapshots("repo/docs");
    assert_eq!(snaps.len(), 1);
    let id = snaps[0]["id"].as_str().unwrap_or_default();
    let h = s.history();
    assert_eq!(
        h.query("SELECT service, outcome, trigger, finished_at >= started_at FROM runs"),
        ["docs|ok|cli|1"]
    );
    let rows = h.query(
        "SELECT destination, repository, outcome, snapshot_id, files_new, files_changed, bytes_added > 0 FROM run_targets",
    );
    assert_eq!(rows.len(), 1);
    let cols: Vec<&str> = rows[0].split('|').collect();
    assert_eq!(cols[0], "local");
    assert_eq!(cols[1], s.path("repo/docs").display().to_string());
    assert_eq!(cols[2], "ok");
    assert!(
        cols[3].len() >= 8 && id.starts_with(cols[3]),
        "history has {}, restic {id}",
        cols[3]
    );
    assert_eq!(&cols[4..], ["2", "0", "1"]);

    // A second run of unchanged data adds nothing new.
    s.run(&["run"]).succeeds();
    assert_eq!(
        h.query("SELECT files_new, files_changed FROM run_targets ORDER BY id DESC LIMIT 1"),
        ["0|0"]
    );
    let logs = h.query("SELECT log_file FROM runs ORDER BY id");
    assert_eq!(logs.len(), 2);
    for l in &logs {
        assert!(Path::new(l).is_file(), "log file {l}");
    }
    assert_ne!(logs[0], logs[1], "one log file per run");
}

// ---- retention ---------------------------------------------------------

#[test]
fn retention_keeps_the_newest_of_this_service_and_touches_nothing_else() {
    let s = Scenario::new();
    s.write("data/a/x.txt", "a");
    s.write("data/b/x.txt", "b");
    let s = s
        .global("host = \"testhost\"")
        .service("a", |a| a.keys("retention_last = 2").path("{root}/data/a"))
        .service("b", |b| b.path("{root}/data/b"))
        .ready(&["repo/a", "repo/b"]);
    // Snapshots in `a`'s repository that are not `a`'s own: another tag on
    // the same host, and `a`'s tag from another host.
    let data = s.path("data/a").display().to_string();
    s.restic(
        "repo/a",
        &["backup", "--host", "testhost", "--tag", "manual", &data],
    )
    .succeeds();
    s.restic(
        "repo/a",
        &["backup", "--host", "elsewhere", "--tag", "service:a", &data],
    )
    .succeeds();

    for _ in 0..4 {
        s.run(&["run"]).succeeds();
    }

    let ours = |repo: &str, svc: &str| -> Vec<String> {
        s.snapshots(repo)
            .iter()
            .filter(|x| x["hostname"] == "testhost" && tags(x) == [format!("service:{svc}")])
            .filter_map(|x| x["id"].as_str().map(str::to_string))
            .collect()
    };
    let kept = ours("repo/a", "a");
    assert_eq!(kept.len(), 2, "retention_last = 2");
    // The two kept are the two newest runs' snapshots.
    let newest = s.history().query(
        "SELECT t.snapshot_id FROM run_targets t JOIN runs r ON r.id = t.run_id WHERE r.service = 'a' ORDER BY t.id DESC LIMIT 2",
    );
    for n in &newest {
        assert!(kept.iter().any(|k| k.starts_with(n.as_str())), "{n} kept");
    }
    assert_eq!(
        s.snapshots("repo/a").len(),
        4,
        "foreign snapshots untouched"
    );
    // `b` has no retention: all four stay, with its tag and the host.
    assert_eq!(ours("repo/b", "b").len(), 4);
    assert_eq!(s.snapshots("repo/b").len(), 4);
}

// ---- legacy backup_script ----------------------------------------------

#[test]
fn backup_script_runs_once_per_target_and_its_exit_code_decides() {
    let s = Scenario::new().file("data/docs/a.txt", "hello");
    s.write(
        "legacy.sh",
        &format!(
            "echo \"$RESTIC_REPOSITORY|$RESTIC_PASSWORD_FILE|$SERVICE_NAME|$DOCKER_BASE\" >> {root}/script-calls\nrestic backup --quiet --tag legacy {root}/data/docs\n",
            root = s.root().display()
        ),
    );
    let s = s
        .global("docker_base = \"{root}/docker\"")
        .destination_local("local", "repo")
        .destination_local("second", "repo2")
        .service("legacy", |l| {
            l.targets(&["local", "second"])
                .keys("backup_script = \"sh {root}/legacy.sh\"")
        })
        .service("broken", |b| b.keys("backup_script = \"exit 1\""))
        .ready(&["repo/legacy", "repo2/legacy", "repo/broken"]);
    s.run(&["run"])
        .code(1)
        .stderr_has("error: broken: `local`: backup_script failed (exit code 1)");
    let root = s.root().display().to_string();
    // Targets run concurrently, so the calls may come in either order.
    let mut calls: Vec<String> = read(&s.path("script-calls"))
        .lines()
        .map(str::to_string)
        .collect();
    calls.sort();
    assert_eq!(
        calls,
        [
            format!("{root}/repo/legacy|{root}/pw|legacy|{root}/docker"),
            format!("{root}/repo2/legacy|{root}/pw|legacy|{root}/docker"),
        ]
    );
    for repo in ["repo/legacy", "repo2/legacy"] {
        let snaps = s.snapshots(repo);
        assert_eq!(snaps.len(), 1, "{repo}");
        assert_eq!(tags(&snaps[0]), ["legacy"]);
    }
    assert!(s.snapshots("repo/broken").is_empty());
    assert_eq!(
        s.history()
            .query("SELECT service, outcome FROM runs ORDER BY service"),
        ["broken|failed", "legacy|ok"]
    );
}

/// A legacy service whose script runs `restic backup` itself.
fn legacy_service(s: Scenario, service_keys: &str) -> Scenario {
    s.file("data/docs/a.txt", "hello")
        .service("legacy", |l| {
            l.keys("backup_script = \"restic backup --exclude-caches {root}/data/docs\"")
                .keys(service_keys)
        })
        .ready(&["repo/legacy"])
}

#[test]
fn backup_script_is_not_confused_by_restic_variables_in_the_callers_environment() {
    let s = legacy_service(Scenario::new(), "");
    // Left over in a shell or a cron environment; restic 0.14 refuses a
    // password file together with a password command, and a repository
    // together with a repository file.
    let out = s
        .command()
        .args(["run"])
        .env("RESTIC_PASSWORD_COMMAND", "echo wrong")
        .env("RESTIC_REPOSITORY_FILE", s.path("nowhere"))
        .output()
        .expect("spawn");
    let d = Done::from(out);
    d.succeeds();
    assert_eq!(s.snapshots("repo/legacy").len(), 1);
}

#[test]
fn backup_script_out_of_time_leaves_no_restic_lock() {
    let s = legacy_service(Scenario::new(), "timeout_seconds = 3");
    make_restic_hang(&s, "data/docs");
    s.run(&["run"])
        .code(1)
        .stderr_has("error: legacy: `local`: backup_script ran out of time");
    assert_eq!(
        s.history().query("SELECT outcome, error_class FROM runs"),
        ["failed|timeout"]
    );
    // The script's restic was asked to stop the way restic cleans up.
    let locks = s.locks("repo/legacy");
    assert!(locks.is_empty(), "locks left in the repository: {locks:#?}");
}

// ---- dry run, arguments, setup -----------------------------------------

#[test]
fn dry_run_prints_the_plan_and_runs_nothing() {
    let s = docs(
        Scenario::new(),
        "retention_last = 3",
        "[[services.docs.config.pre_backup_hooks]]\nname = \"mark\"\ncommand = \"touch {root}/pre-ran\"\n[[services.docs.config.post_backup_hooks]]\nname = \"unmark\"\ncommand = \"touch {root}/post-ran\"\n",
    );
    // Before setup too: a dry run needs no repository.
    let d = s.run(&["run", "--dry-run"]);
    d.succeeds()
        .stdout_has("dry run: nothing will be executed")
        .stdout_has("\nservice docs\n")
        .stdout_has("  pre hook  mark\n")
        .stdout_has(&format!("  sources   {}\n", s.path("data/docs").display()))
        .stdout_has(&format!(
            "  backup →  local: {}\n",
            s.path("repo/docs").display()
        ))
        .stdout_has("  forget    --prune --keep-last 3\n")
        .stdout_has("  post hook unmark\n");
    assert!(!s.path("repo/docs").exists());

    let s = s.ready(&["repo/docs"]);
    s.run(&["run", "--dry-run"]).succeeds();
    let v = s.run(&["run", "--dry-run", "--json"]);
    v.succeeds();
    assert_eq!(v.json()["dry_run"], true);
    assert_eq!(v.json()["services"][0]["service"], "docs");
    assert!(!s.path("pre-ran").exists() && !s.path("post-ran").exists());
    assert!(s.snapshots("repo/docs").is_empty());
    let db = s.path("state/restic-manager/history.sqlite");
    if db.exists() {
        assert_eq!(s.history().query("SELECT count(*) FROM runs"), ["0"]);
    }
}

#[test]
fn unknown_service_is_a_usage_error_with_a_suggestion() {
    let s = docs_ready(Scenario::new(), "", "");
    s.run(&["run", "--service", "doc"])
        .code(2)
        .stderr_has("error: unknown service `doc`; did you mean `docs`?");
    s.run(&["run", "--service", "nope"])
        .code(2)
        .stderr_has("error: unknown service `nope`");
    assert!(s.snapshots("repo/docs").is_empty());
}

#[test]
fn run_before_setup_says_to_run_setup() {
    let s = docs(Scenario::new(), "", "");
    // Nothing exists yet: neither the password file nor the repository.
    // restic itself would only say "Resolving password failed".
    s.run(&["run"]).code(1).stderr_has(&format!(
        "error: docs: `local`: password file `{}` does not exist; run `restic-manager setup` to create it (or restore your copy)",
        s.path("pw").display()
    ));
    // With a password file but still no repository.
    s.write("pw", "a password\n");
    s.run(&["run"]).code(1).stderr_has(&format!(
        "error: docs: `local`: repository `{}` does not exist; run `restic-manager setup`",
        s.path("repo/docs").display()
    ));
    assert_eq!(
        s.history()
            .query("SELECT outcome, error_class FROM runs ORDER BY id DESC LIMIT 1"),
        ["failed|repository_missing"]
    );
}

// ---- signals and timeouts ----------------------------------------------

#[test]
fn sigterm_mid_backup_stops_restic_cleanly_and_runs_post_hooks() {
    let s = docs(Scenario::new(), "", RECORD_OUTCOME);
    let fifo = make_restic_hang(&s, "data/docs");
    let s = s.ready(&["repo/docs"]);

    let run = Background::start(&s, &["run"]);
    // Signalling the moment the lock appears also hits restic 0.14's window
    // (~200 ms after writing its lock, before registering it for cleanup)
    // in which even SIGINT leaves the lock behind; restic-manager then
    // removes the stale lock itself.
    wait_until(
        "restic's lock (backup running)",
        Duration::from_secs(20),
        || !repo_locks(&s, "repo/docs").is_empty(),
    );
    run.signal("TERM");
    let d = run.finish();
    d.code(143)
        .stderr_has("restic-manager: signal received, stopping restic and running post hooks");
    assert_eq!(read(&s.path("post-outcome")), "interrupted\n");
    let h = s.history();
    assert_eq!(
        h.query("SELECT outcome, error_class, error_message FROM runs"),
        [format!(
            "interrupted|interrupted|`local`: interrupted while working on `{}`",
            s.path("repo/docs").display()
        )]
    );
    // restic got SIGINT, not SIGTERM (which 0.14 does not handle).
    let log = read(Path::new(&h.query("SELECT log_file FROM runs")[0]));
    assert!(
        log.contains("removed stale locks (if any) from `local`"),
        "{log}"
    );
    let locks = s.locks("repo/docs");
    assert!(locks.is_empty(), "locks left in the repository: {locks:#?}");
    assert!(s.snapshots("repo/docs").is_empty());

    std::fs::remove_file(&fifo).expect("rm fifo");
    s.run(&["run"]).succeeds();
    assert_eq!(s.snapshots("repo/docs").len(), 1);
}

#[test]
fn ctrl_c_during_a_pre_hook_stops_it_and_still_runs_post_hooks() {
    let s = docs_ready(
        Scenario::new(),
        "",
        &format!(
            "[[services.docs.config.pre_backup_hooks]]\nname = \"dump\"\ncommand = \"touch {{root}}/started; for i in $(seq 300); do sleep 0.1; done; touch {{root}}/finished\"\n{RECORD_OUTCOME}"
        ),
    );
    let run = Background::start(&s, &["run"]);
    wait_until("the pre hook", Duration::from_secs(20), || {
        s.path("started").exists()
    });
    let start = Instant::now();
    run.signal("INT");
    run.finish().code(130);
    assert!(start.elapsed() < Duration::from_secs(8));
    assert!(!s.path("finished").exists(), "the hook was stopped");
    assert_eq!(read(&s.path("post-outcome")), "interrupted\n");
    assert_eq!(
        s.history().query("SELECT outcome, error_class FROM runs"),
        ["interrupted|interrupted"]
    );
    assert!(s.snapshots("repo/docs").is_empty());
}

#[test]
fn service_timeout_stops_a_slow_pre_hook() {
    let m = marker(33);
    let s = docs_ready(
        Scenario::new(),
        "timeout_seconds = 2",
        &format!(
            "[[services.docs.config.pre_backup_hooks]]\nname = \"slow\"\ncommand = \"sleep {m}\"\n{RECORD_OUTCOME}"
        ),
    );
    let took = run_fails_with(
        &s,
        "error: docs: pre-backup hook `slow` failed (timed out: the service's `timeout_seconds` ran out); backup skipped",
    );
    assert!(took < Duration::from_secs(10));
    assert_eq!(processes_running(&["sleep", &m]), Vec::<String>::new());
    // Post hooks still get their own time after the budget is spent.
    assert_eq!(read(&s.path("post-outcome")), "failed\n");
    assert_eq!(
        s.history().query("SELECT outcome, error_class FROM runs"),
        ["failed|timeout"]
    );
    assert!(s.snapshots("repo/docs").is_empty());
}

#[test]
fn service_timeout_stops_restic_without_leaving_a_lock() {
    let s = docs(Scenario::new(), "timeout_seconds = 3", "");
    make_restic_hang(&s, "data/docs");
    let s = s.ready(&["repo/docs"]);
    let took = run_fails_with(
        &s,
        &format!(
            "error: docs: `local`: restic ran out of time on `{}` and was stopped",
            s.path("repo/docs").display()
        ),
    );
    // restic 0.17+ does not act on SIGINT while it is blocked opening the
    // FIFO, so there it is killed after the 30 s grace period.
    let limit = if crate::harness::restic_minor() >= (0, 17) {
        45
    } else {
        15
    };
    assert!(took < Duration::from_secs(limit), "took {took:?}");
    assert_eq!(
        s.history().query("SELECT outcome, error_class FROM runs"),
        ["failed|timeout"]
    );
    let locks = s.locks("repo/docs");
    assert!(locks.is_empty(), "locks left in the repository: {locks:#?}");
}
