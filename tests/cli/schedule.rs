//! Scheduling: a real cron daemon fires a real backup; systemd units are
//! written, replaced and removed in the scenario's own unit folder.

use std::process::{Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::harness::{Scenario, Service, output_ok};

/// crontab is per real user (root in CI), shared by every test that edits it.
static CRONTAB: Mutex<()> = Mutex::new(());

/// The crontab to this test alone (until the guard drops).
pub(crate) fn crontab_lock() -> MutexGuard<'static, ()> {
    CRONTAB
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The user's crontab, put back however the test ends, and then
/// [`crontab_lock`] released (a tuple drops its first field first).
fn own_crontab() -> (RestoreCrontab, MutexGuard<'static, ()>) {
    let serial = crontab_lock();
    (RestoreCrontab(crontab_list()), serial)
}

pub(crate) fn crontab_list() -> Option<String> {
    let out = Command::new("crontab")
        .arg("-l")
        .output()
        .unwrap_or_else(|e| panic!("crontab is not installed ({e}); `apt-get install cron`"));
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

pub(crate) fn crontab_set(text: Option<&str>) {
    let ok = match text {
        None => Command::new("crontab").arg("-r").output().map(|o| {
            o.status.success() || String::from_utf8_lossy(&o.stderr).contains("no crontab")
        }),
        Some(t) => {
            let mut child = Command::new("crontab")
                .arg("-")
                .stdin(Stdio::piped())
                .spawn()
                .expect("crontab");
            if let Some(mut w) = child.stdin.take() {
                std::io::Write::write_all(&mut w, t.as_bytes()).expect("crontab stdin");
            }
            child.wait().map(|s| s.success())
        }
    };
    assert!(ok.unwrap_or(false), "could not set the crontab to {text:?}");
}

/// Puts the user's crontab back however the test ends.
pub(crate) struct RestoreCrontab(pub(crate) Option<String>);

impl Drop for RestoreCrontab {
    fn drop(&mut self) {
        crontab_set(self.0.as_deref());
    }
}

pub(crate) fn ensure_cron_daemon() {
    let running = Command::new("pgrep")
        .args(["-x", "cron"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !running {
        // Debian's cron forks into the background and stays after the test.
        let st = Command::new("cron")
            .status()
            .unwrap_or_else(|e| panic!("cannot start `cron` ({e}); `apt-get install cron`"));
        assert!(st.success(), "`cron` did not start");
    }
}

#[test]
fn cron_fires_a_real_backup_and_remove_restores_the_users_crontab() {
    let _crontab = own_crontab();
    ensure_cron_daemon();
    let user_lines = "# my own jobs\n17 3 * * * /bin/true user-line\n";
    crontab_set(Some(user_lines));

    let s = Scenario::new();
    s.write("data/file.txt", "hello from cron\n");
    s.simple(
        "[services.every]\ntargets = [\"local\"]\nschedule = \"* * * * *\"\n[services.every.config]\npaths = [\"{root}/data\"]\n",
    );
    // `setup` installs the schedule by default (no systemd here: cron).
    s.run(&["setup"])
        .succeeds()
        .stdout_has("every: scheduled `* * * * *`");
    let tab = crontab_list().unwrap_or_default();
    assert!(tab.starts_with(user_lines), "{tab}");
    assert!(
        tab.contains("# BEGIN restic-manager (managed, do not edit)"),
        "{tab}"
    );
    assert!(tab.contains("run --service every -q"), "{tab}");
    assert!(
        tab.contains(&format!("HOME={}", s.path("home").display())),
        "{tab}"
    );

    // A second install changes nothing.
    s.run(&["schedule", "install", "--backend", "cron"])
        .succeeds()
        .stderr_has("scheduler: cron (--backend)")
        .stdout_has("cron schedule already up to date");

    let deadline = Instant::now() + Duration::from_secs(130);
    let mut runs = Vec::new();
    while Instant::now() < deadline {
        if s.path("state/restic-manager/history.sqlite").exists() {
            runs = s
                .history()
                .query("SELECT service, outcome, trigger FROM runs WHERE outcome != 'running'");
            if !runs.is_empty() {
                break;
            }
        }
        std::thread::sleep(Duration::from_secs(3));
    }
    let log = std::fs::read_to_string(s.path("state/restic-manager/logs/schedule-every.log"))
        .unwrap_or_default();
    assert!(
        runs.first().is_some_and(|r| r == "every|ok|cron"),
        "cron did not record a run within 130 s: {runs:?}\n--- job log:\n{log}"
    );
    // Removed before the checks so no further run starts meanwhile.
    s.run(&["schedule", "remove", "--backend", "cron"])
        .succeeds();
    assert_eq!(crontab_list().unwrap_or_default(), user_lines);
    assert!(
        !s.snapshots("repo/every").is_empty(),
        "no snapshot after the cron run"
    );
    s.run(&["schedule", "remove", "--backend", "cron"])
        .succeeds()
        .stdout_has("nothing to remove");
}

#[test]
fn renamed_service_leaves_the_crontab_on_the_next_install() {
    let _crontab = own_crontab();
    crontab_set(Some("5 4 * * * /bin/true mine\n"));
    let s = Scenario::new();
    let svc = |name: &str| {
        format!(
            "[services.{name}]\ntargets = [\"local\"]\nschedule = \"0 4 1 1 *\"\n[services.{name}.config]\npaths = [\"{{root}}/data\"]\n"
        )
    };
    s.simple(&svc("old"));
    s.run(&["schedule", "install", "--backend", "cron"])
        .succeeds();
    assert!(crontab_list().unwrap_or_default().contains("--service old"));
    s.simple(&svc("new"));
    s.run(&["schedule", "install", "--backend", "cron"])
        .succeeds();
    let tab = crontab_list().unwrap_or_default();
    assert!(
        tab.contains("--service new") && !tab.contains("--service old"),
        "{tab}"
    );
    assert!(tab.starts_with("5 4 * * * /bin/true mine\n"), "{tab}");
    s.run(&["schedule", "remove", "--backend", "cron"])
        .succeeds();
    assert_eq!(
        crontab_list().unwrap_or_default(),
        "5 4 * * * /bin/true mine\n"
    );
}

#[test]
fn systemd_units_are_generated_written_and_cleaned_up() {
    let weekdays = |w: Service| w.keys("schedule = \"30 2 * * 1-5\"").path("{root}/data");
    let s = Scenario::new()
        .global("schedule_jitter = 300")
        .service("wiki", weekdays);
    let units = s.path("home/.config/systemd/user");
    let d = s.run_line("schedule install --backend systemd --user --dry-run");
    d.succeeds()
        .stdout_has(&format!(
            "# --- {}/restic-manager-wiki.timer",
            units.display()
        ))
        .stdout_has("OnCalendar=Mon..Fri *-*-* 02:30:00\nPersistent=true\nRandomizedDelaySec=300\n")
        .stdout_has("Type=oneshot")
        .stdout_has("Environment=\"RESTIC_MANAGER_TRIGGER=systemd\"")
        .stdout_has(&format!(
            "ExecStart=\"{}\" \"--config\" \"{}\" \"run\" \"--service\" \"wiki\" \"-q\"",
            env!("CARGO_BIN_EXE_restic-manager"),
            s.config_path().display()
        ));
    assert!(!units.exists(), "--dry-run wrote files");

    // systemd is not PID 1 here: files are written, enabling is left to the user.
    s.run(&["schedule", "install", "--backend", "systemd", "--user"])
        .succeeds()
        .stderr_has("systemd is not running");
    let timer = units.join("restic-manager-wiki.timer");
    let text = std::fs::read_to_string(&timer).unwrap_or_default();
    assert!(
        text.contains("OnCalendar=Mon..Fri *-*-* 02:30:00"),
        "{text}"
    );

    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_ok()
    {
        output_ok(
            Command::new("systemd-analyze").args(["calendar", "Mon..Fri *-*-* 02:30:00"]),
            "systemd-analyze calendar",
        );
        let out = Command::new("systemd-analyze")
            .arg("verify")
            .arg(units.join("restic-manager-wiki.service"))
            .arg(&timer)
            .output()
            .expect("systemd-analyze");
        let err = String::from_utf8_lossy(&out.stderr);
        // Without a running systemd, verify may still complain about the
        // environment; what must never appear is a complaint about our units.
        assert!(
            !err.contains("restic-manager-wiki") || out.status.success(),
            "systemd-analyze verify:\n{err}"
        );
    }

    // Renamed service: the old units go, the new ones come.
    let s = s.without_services().service("docs", weekdays);
    s.run(&["schedule", "install", "--backend", "systemd", "--user"])
        .succeeds()
        .stdout_has("removed ");
    assert!(!timer.exists());
    assert!(units.join("restic-manager-docs.timer").exists());
    // A unit that is not ours stays.
    std::fs::write(units.join("restic-manager-mine.timer"), "[Timer]\n").unwrap();
    s.run(&["schedule", "remove", "--backend", "systemd", "--user"])
        .succeeds();
    assert!(!units.join("restic-manager-docs.timer").exists());
    assert!(!units.join("restic-manager-docs.service").exists());
    assert!(units.join("restic-manager-mine.timer").exists());
}

#[test]
fn foreign_backends_print_and_refuse_to_install_here() {
    let s = Scenario::new();
    s.simple("[services.wiki]\ntargets = [\"local\"]\nschedule = \"30 2 * * *\"\n[services.wiki.config]\npaths = [\"{root}/data\"]\n");
    s.run(&["schedule", "show", "--backend", "launchd"])
        .succeeds()
        .stdout_has("<string>org.restic-manager.wiki</string>");
    s.run(&["schedule", "install", "--backend", "windows", "--dry-run"])
        .succeeds()
        .stdout_has("<StartBoundary>2000-01-01T02:30:00</StartBoundary>");
    if !cfg!(target_os = "macos") {
        s.run(&["schedule", "install", "--backend", "launchd"])
            .code(2)
            .stderr_has("error: the `launchd` backend only installs on macOS");
    }
    s.run(&["schedule", "install", "--backend", "windows"])
        .code(2)
        .stderr_has("only installs on Windows");
}

#[test]
fn list_shows_the_next_runs() {
    let s = Scenario::new();
    s.simple("[services.wiki]\ntargets = [\"local\"]\nschedule = \"30 2 * * *\"\n[services.wiki.config]\npaths = [\"{root}/data\"]\n");
    let d = s.run(&["list", "--json"]);
    let v = d.succeeds().json();
    crate::harness::all_contain(&v[0]["next_runs"], 3, "02:30:00");
    s.run(&["list"]).succeeds().stdout_has("NEXT RUN");
}
