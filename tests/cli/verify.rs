//! `verify`: checks, deep reads, the scheduled rotation and restore drills
//! against real repositories made by `restic-manager run`, including
//! repositories damaged the way disks and people damage them (a deleted
//! pack, a flipped byte, bit rot on the source) and a dump that its
//! `verify_command` rejects.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::harness::{Done, Scenario};

/// `docs` backing up `{root}/data/docs` (three 200 KB random files and a
/// small one) to `local`, with `service_keys` in `[services.docs]`; then
/// `setup` and one `run`.
fn backed_up(service_keys: &str) -> Scenario {
    backed_up_with(service_keys, "")
}

/// [`backed_up`] with `top` (TOML tables, e.g. a notifier) added.
fn backed_up_with(service_keys: &str, top: &str) -> Scenario {
    let s = Scenario::new();
    s.write("pw", "a test password, not a secret");
    for i in 1..=3 {
        let data: Vec<u8> = (0..200_000u32)
            .map(|n| (n.wrapping_mul(2_654_435_761).wrapping_add(i * 7919) >> 13) as u8)
            .collect();
        let p = s.path(&format!("data/docs/part{i}.bin"));
        if let Some(d) = p.parent() {
            std::fs::create_dir_all(d).expect("mkdir");
        }
        std::fs::write(&p, data).expect("write");
    }
    let s = s
        .file("data/docs/notes/readme.txt", "the docs service\n")
        .global("host = \"testhost\"\nlock_wait_seconds = 2")
        .service("docs", |d| d.keys(service_keys).path("{root}/data/docs"))
        .sections(top);
    s.run(&["setup", "--no-schedule"]).succeeds();
    s.run(&["run"]).succeeds();
    s
}

/// A webhook receiver on loopback: answers 200 and keeps each body.
struct Hook {
    port: u16,
    bodies: std::sync::Arc<std::sync::Mutex<Vec<serde_json::Value>>>,
}

impl Hook {
    fn start() -> Hook {
        use std::io::{BufRead, BufReader, Read};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let bodies = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = std::sync::Arc::clone(&bodies);
        std::thread::spawn(move || {
            for mut stream in listener.incoming().flatten() {
                let Ok(clone) = stream.try_clone() else {
                    continue;
                };
                let mut r = BufReader::new(clone);
                let mut len = 0usize;
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
                        break;
                    }
                    if let Some((k, v)) = line.split_once(':')
                        && k.eq_ignore_ascii_case("content-length")
                    {
                        len = v.trim().parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0; len];
                if r.read_exact(&mut body).is_ok()
                    && let Ok(v) = serde_json::from_slice(&body)
                {
                    seen.lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .push(v);
                }
                let _ = stream.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
            }
        });
        Hook { port, bodies }
    }

    fn notifier(&self) -> String {
        format!(
            "[notifiers.hook]\ntype = \"webhook\"\nurl = \"http://127.0.0.1:{}/verify\"\n",
            self.port
        )
    }

    fn bodies(&self) -> Vec<serde_json::Value> {
        self.bodies
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

/// The drill's temporary folder must be gone (or empty) after any verify.
fn assert_no_temp_files(s: &Scenario) {
    let tmp = s.path("state/restic-manager/verify-tmp");
    let left: Vec<_> = std::fs::read_dir(&tmp)
        .map(|rd| rd.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "the drill left files behind: {left:?}");
}

/// The largest pack of the repository: a data pack (tree packs are tiny).
fn largest_pack(repo: &Path) -> PathBuf {
    let mut best: Option<(u64, PathBuf)> = None;
    for dir in std::fs::read_dir(repo.join("data"))
        .into_iter()
        .flatten()
        .flatten()
    {
        for f in std::fs::read_dir(dir.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            let len = f.metadata().map(|m| m.len()).unwrap_or(0);
            if best.as_ref().is_none_or(|(l, _)| len > *l) {
                best = Some((len, f.path()));
            }
        }
    }
    best.map(|(_, p)| p)
        .unwrap_or_else(|| panic!("no pack under {}", repo.display()))
}

/// Rows of the `verifies` table, `kind|subset|trigger|outcome|error_class`.
fn verifies(s: &Scenario) -> Vec<String> {
    s.history().query(
        "SELECT kind, COALESCE(subset, ''), trigger, outcome, COALESCE(error_class, '') FROM verifies ORDER BY id",
    )
}

#[test]
fn a_good_repository_passes_check_deep_and_drill_and_leaves_no_temp_files() {
    let s = backed_up("");
    let d = s.run(&["verify"]);
    d.succeeds().stdout_has("docs").stdout_has("check");
    s.run(&["verify", "--deep"])
        .succeeds()
        .stdout_has("all data");
    let d = s.run(&["verify", "--drill", "--json"]);
    d.succeeds();
    let v = d.json();
    assert_eq!(v["outcome"], "ok", "{v}");
    let drill = &v["verifies"][1];
    assert_eq!(drill["kind"], "drill", "{v}");
    assert_eq!(drill["detail"]["files_checked"], 4, "{v}");
    assert_eq!(drill["detail"]["mismatches"], 0, "{v}");
    // Nothing changed since the backup: every file matched the live one.
    assert_eq!(drill["detail"]["live_identical"], 4, "{v}");
    assert_no_temp_files(&s);

    assert_eq!(
        verifies(&s),
        [
            "check||cli|ok|",
            "read-data||cli|ok|",
            "check||cli|ok|",
            "drill||cli|ok|"
        ]
    );
    let detail = s
        .history()
        .query("SELECT detail FROM verifies WHERE kind = 'drill'");
    assert!(
        detail[0].contains("\"bytes_restored\":600017"),
        "what was read is recorded: {detail:?}"
    );
}

#[test]
fn a_drill_with_fewer_sample_files_restores_only_a_sample() {
    let s = backed_up("drill_sample_files = 2");
    let d = s.run(&["verify", "--drill", "--json", "-q"]);
    d.succeeds();
    let v = d.json();
    let detail = &v["verifies"][1]["detail"];
    assert_eq!(detail["files_in_snapshot"], 4, "{v}");
    assert_eq!(detail["files_checked"], 2, "{v}");
    assert_eq!(detail["sampled"], true, "{v}");
    assert_no_temp_files(&s);
}

#[test]
fn scheduled_verifies_rotate_through_the_subsets() {
    let s = backed_up("verify_rotation = 5");
    let cron = [("RESTIC_MANAGER_TRIGGER", "cron")];
    s.run_env(&cron, &["verify"])
        .succeeds()
        .stdout_has("subset 1/5");
    // A manual verify in between does not move the rotation.
    s.run(&["verify"]).succeeds();
    s.run_env(&cron, &["verify"])
        .succeeds()
        .stdout_has("subset 2/5");
    s.run_env(&cron, &["verify"])
        .succeeds()
        .stdout_has("subset 3/5");
    assert_eq!(
        verifies(&s),
        [
            "subset|1/5|cron|ok|",
            "check||cli|ok|",
            "subset|2/5|cron|ok|",
            "subset|3/5|cron|ok|"
        ]
    );
}

#[test]
fn a_deleted_pack_fails_the_deep_verify_as_repository_damaged_and_is_notified() {
    let hook = Hook::start();
    let s = backed_up_with("", &hook.notifier());
    let pack = largest_pack(&s.path("repo/docs"));
    std::fs::remove_file(&pack).expect("rm");
    let d = s.run(&["verify", "--deep"]);
    d.code(1)
        .stdout_has("repository_damaged")
        .stderr_has("is damaged");
    let name = pack
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    assert!(
        d.stderr.contains(&name[..10]),
        "names the pack: {}",
        d.stderr
    );
    assert_eq!(verifies(&s), ["read-data||cli|failed|repository_damaged"]);
    let sent = hook.bodies();
    assert_eq!(sent.len(), 1, "one notification: {sent:?}");
    assert_eq!(sent[0]["kind"], "verify", "{sent:?}");
    assert_eq!(sent[0]["service"], "docs", "{sent:?}");
    assert_eq!(sent[0]["outcome"], "failed", "{sent:?}");
    assert_eq!(sent[0]["error_class"], "repository_damaged", "{sent:?}");
}

#[test]
fn a_flipped_byte_passes_the_structure_check_but_fails_deep_verify_and_drill() {
    let hook = Hook::start();
    let s = backed_up_with("", &hook.notifier());
    let pack = largest_pack(&s.path("repo/docs"));
    let mut bytes = std::fs::read(&pack).expect("read");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    std::fs::write(&pack, bytes).expect("write");

    // The index still matches: only reading the data finds it.
    s.run(&["verify"]).succeeds();
    s.run(&["verify", "--deep"])
        .code(1)
        .stdout_has("repository_damaged")
        .stderr_has("Pack ID does not match");
    s.run(&["verify", "--drill"])
        .code(1)
        .stderr_has("[repository_damaged]");
    assert_no_temp_files(&s);
    assert_eq!(
        verifies(&s),
        [
            "check||cli|ok|",
            "read-data||cli|failed|repository_damaged",
            "check||cli|ok|",
            "drill||cli|failed|repository_damaged"
        ]
    );
    // The good structure checks are not announced; the failures are (a
    // repeat of the same class may be held back by `rate_limit_minutes`).
    let sent: Vec<String> = hook
        .bodies()
        .iter()
        .map(|b| format!("{}|{}", b["outcome"], b["error_class"]))
        .collect();
    assert!(
        !sent.is_empty()
            && sent
                .iter()
                .all(|b| b == "\"failed\"|\"repository_damaged\""),
        "{sent:?}"
    );
}

#[test]
fn a_drill_finds_a_restored_file_that_differs_from_the_unchanged_source() {
    let s = backed_up("");
    // Bit rot: the content changes, size and mtime do not.
    let f = s.path("data/docs/part2.bin");
    crate::harness::rot(&f, 1000, 0xff);

    let d = s.run(&["verify", "--drill"]);
    d.code(1)
        .stdout_has("drill_mismatch")
        .stderr_has("part2.bin")
        .stderr_has("although its size and modification time are unchanged");
    assert_no_temp_files(&s);
    assert_eq!(
        verifies(&s),
        ["check||cli|ok|", "drill||cli|failed|drill_mismatch"]
    );

    // A file changed the normal way (new mtime) is not a mismatch.
    s.write("data/docs/notes/readme.txt", "edited after the backup\n");
    std::fs::write(&f, b"rewritten").expect("write");
    let d = s.run(&["verify", "--drill", "--json", "-q"]);
    d.succeeds();
    assert_eq!(d.json()["verifies"][1]["detail"]["live_changed_since"], 2);
}

/// A dump snapshot as the dump sources make them: one file from stdin,
/// tagged with the service and `dump:NAME`.
fn dump_snapshot(s: &Scenario, name: &str, content: &str) {
    let (file, dump) = (format!("{name}.sql"), format!("dump:{name}"));
    s.restic_stdin(
        "repo/docs",
        &[
            "--stdin-filename",
            &file,
            "--host",
            "testhost",
            "--tag",
            "service:docs",
            "--tag",
            &dump,
        ],
        content.as_bytes(),
    );
}

#[test]
fn a_dump_drill_streams_the_dump_into_verify_command() {
    let s = backed_up(
        "verify_command = 'test \"$RESTIC_MANAGER_DUMP\" = shop && grep -q \"CREATE TABLE orders\"'",
    );
    dump_snapshot(
        &s,
        "shop",
        "-- dump\nCREATE TABLE orders (id int);\nINSERT INTO orders VALUES (1);\n",
    );
    let d = s.run(&["verify", "--drill", "--json", "-q"]);
    d.succeeds();
    let v = d.json();
    let dumps = &v["verifies"][1]["detail"]["dumps"];
    assert_eq!(dumps[0]["name"], "shop", "{v}");
    assert_eq!(dumps[0]["outcome"], "ok", "{v}");
    // The file snapshot is drilled as well.
    assert_eq!(v["verifies"][1]["detail"]["files_checked"], 4, "{v}");
    assert_no_temp_files(&s);
}

#[test]
fn a_dump_that_verify_command_rejects_fails_the_drill() {
    let s = backed_up(
        "verify_command = 'grep -q \"CREATE TABLE orders\" || { echo \"not a usable dump\" >&2; exit 4; }'",
    );
    // A dump cut short: the table is missing.
    dump_snapshot(&s, "shop", "-- dump\nINSERT INTO orders VALUES (1);\n");
    let d = s.run(&["verify", "--drill"]);
    d.code(1)
        .stdout_has("verify_command_failed")
        .stderr_has("dump `shop`")
        .stderr_has("exit code 4")
        .stderr_has("not a usable dump");
    assert_no_temp_files(&s);
    let rows = s
        .history()
        .query("SELECT outcome, error_class FROM verifies WHERE kind = 'drill'");
    assert_eq!(rows, ["failed|verify_command_failed"]);
}

#[test]
fn a_verify_waits_for_the_service_lock_then_gives_up() {
    let s = backed_up("");
    // Hold the service's lock as a running backup would.
    let lock = s.path("run/restic-manager/docs.lock");
    if let Some(d) = lock.parent() {
        std::fs::create_dir_all(d).expect("mkdir");
    }
    let mut holder = Command::new("flock")
        .arg(&lock)
        .args(["sleep", "30"])
        .spawn()
        .expect("flock (util-linux)");
    // Wait until it holds the lock.
    for _ in 0..100 {
        let probe = Command::new("flock")
            .args(["-n"])
            .arg(&lock)
            .arg("true")
            .status();
        if probe.is_ok_and(|st| !st.success()) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let d = s.run(&["verify"]);
    let _ = holder.kill();
    let _ = holder.wait();
    d.code(1)
        .stdout_has("already_running")
        .stderr_has("waiting for it to finish");
}

#[test]
fn bad_arguments_are_usage_errors_with_the_fix() {
    let s = backed_up("");
    s.run(&["verify", "--read-data-subset", "0/10"])
        .code(2)
        .stderr_has("n and N must be at least 1")
        .stderr_has("`3/10`");
    s.run(&["verify", "--destination", "locl"])
        .code(2)
        .stderr_has("unknown destination `locl`; did you mean `local`?");
    s.run(&["verify", "--read-data-subset", "5%"])
        .succeeds()
        .stdout_has("subset 5%");
    assert!(
        verifies(&s)
            .iter()
            .all(|r| r.starts_with("subset|5%|cli|ok"))
    );
}

#[test]
fn verify_schedule_installs_a_verify_entry_next_to_the_backup() {
    let s = Scenario::new().file("data/docs/a.txt", "a");
    s.simple(
        "[profiles.nightly]\nschedule = \"30 2 * * *\"\nverify_schedule = \"0 4 * * 0\"\n\n[services.docs]\nprofile = \"nightly\"\ntargets = [\"local\"]\n[services.docs.config]\npaths = [\"{root}/data/docs\"]\n\n[services.wiki]\ntargets = [\"local\"]\nschedule = \"0 3 * * *\"\n[services.wiki.config]\npaths = [\"{root}/data/docs\"]\n",
    );
    let d = s.run(&["schedule", "show", "--backend", "systemd", "--user"]);
    d.succeeds()
        .stdout_has("restic-manager-docs.timer")
        .stdout_has("restic-manager-docs-verify.service")
        .stdout_has("Description=restic-manager verify of service docs")
        .stdout_has("\"verify\" \"--service\" \"docs\" \"-q\"")
        .stdout_has("Environment=\"RESTIC_MANAGER_TRIGGER=systemd\"")
        .stdout_has("OnCalendar=Sun *-*-* 04:00:00");
    // Only the service with a verify_schedule gets one.
    d.stdout_lacks("restic-manager-wiki-verify");
    let v = s
        .run(&[
            "schedule",
            "show",
            "--backend",
            "systemd",
            "--user",
            "--json",
        ])
        .json();
    let jobs: Vec<String> = v["entries"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            format!(
                "{}:{}",
                e["service"].as_str().unwrap_or("?"),
                e["job"].as_str().unwrap_or("?")
            )
        })
        .collect();
    assert_eq!(jobs, ["docs:backup", "docs:verify", "wiki:backup"]);

    // A bad expression is a configuration error with its place.
    s.simple(
        "[services.docs]\ntargets = [\"local\"]\nverify_schedule = \"0 4 * *\"\n[services.docs.config]\npaths = [\"{root}/data/docs\"]\n",
    );
    s.run(&["validate"]).code(2).stderr_has("verify_schedule");
}

#[test]
fn a_signal_during_a_drill_stops_it_records_it_interrupted_and_removes_the_temp_files() {
    let s = backed_up("verify_command = 'touch \"$MARK\"; sleep 60; cat > /dev/null'");
    dump_snapshot(&s, "shop", "CREATE TABLE orders (id int);\n");
    let mark = s.path("drill-started");
    let child = s
        .command()
        .env("MARK", &mark)
        .args(["verify", "--drill"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let started = std::time::Instant::now();
    while !mark.exists() {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "the drill never reached verify_command"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // The restore of the files is in the temporary folder right now.
    let tmp = s.path("state/restic-manager/verify-tmp");
    assert!(
        std::fs::read_dir(&tmp).map(|rd| rd.count()).unwrap_or(0) > 0,
        "the drill works in {}",
        tmp.display()
    );
    let pid = child.id().to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .is_ok_and(|st| st.success());
    assert!(killed, "kill -TERM {pid}");
    let d = Done::from(child.wait_with_output().expect("wait"));
    assert!(
        started.elapsed() < std::time::Duration::from_secs(50),
        "the drill did not stop on SIGTERM"
    );
    d.code(143).stderr_has("signal received");
    assert_no_temp_files(&s);
    let rows = s
        .history()
        .query("SELECT outcome, error_class FROM verifies WHERE kind = 'drill'");
    assert_eq!(rows, ["interrupted|interrupted"]);
}
