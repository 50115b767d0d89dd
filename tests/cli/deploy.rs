//! Deployment as a user would do it: `scripts/install.sh` run by an
//! unprivileged user on a clean HOME, then the installed binary, its
//! completion and its man page used by that user. Plus the generated
//! `completions` and `man` output, which need no configuration.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::harness::{Done, Scenario};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const TEST_USER: &str = "rmtest";

/// Who the script runs as: `rmtest` (created when missing) when the test
/// runs as root, as CI does; else the current user.
struct User {
    uid: u32,
    gid: u32,
    switch: bool,
}

fn id(args: &[&str]) -> Option<u32> {
    let out = Command::new("id").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

fn unprivileged_user() -> User {
    if !nix::unistd::geteuid().is_root() {
        return User {
            uid: nix::unistd::getuid().as_raw(),
            gid: nix::unistd::getgid().as_raw(),
            switch: false,
        };
    }
    if id(&["-u", TEST_USER]).is_none() {
        let out = Command::new("useradd")
            .args(["-m", TEST_USER])
            .output()
            .unwrap_or_else(|e| panic!("useradd is not installed ({e}); `apt-get install passwd`"));
        // Another test may have created the user at the same moment.
        assert!(
            out.status.success() || id(&["-u", TEST_USER]).is_some(),
            "useradd {TEST_USER} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let (Some(uid), Some(gid)) = (id(&["-u", TEST_USER]), id(&["-g", TEST_USER])) else {
        panic!("user {TEST_USER} has no uid/gid after useradd");
    };
    User {
        uid,
        gid,
        switch: true,
    }
}

impl User {
    /// `program args` as this user with exactly `env` (plus nothing else).
    fn run(&self, program: &Path, args: &[&str], env: &[(&str, String)], cwd: &Path) -> Done {
        let mut c = if self.switch {
            let mut c = Command::new("setpriv");
            c.arg(format!("--reuid={}", self.uid))
                .arg(format!("--regid={}", self.gid))
                .arg("--init-groups")
                .arg("--")
                .arg(program);
            c
        } else {
            Command::new(program)
        };
        c.args(args).env_clear().current_dir(cwd);
        for (k, v) in env {
            c.env(k, v);
        }
        let out = c.output().unwrap_or_else(|e| {
            panic!(
                "cannot run {} ({e}); setpriv is in util-linux",
                program.display()
            )
        });
        Done::from(out)
    }
}

fn copy(from: &Path, to: &Path, mode: u32) {
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent)
            .unwrap_or_else(|e| panic!("mkdir {}: {e}", parent.display()));
        set_mode(parent, 0o755);
    }
    std::fs::copy(from, to)
        .unwrap_or_else(|e| panic!("copy {} → {}: {e}", from.display(), to.display()));
    set_mode(to, mode);
}

fn set_mode(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", p.display()));
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
}

#[test]
fn install_script_deploys_for_an_unprivileged_user_without_sudo() {
    let user = unprivileged_user();
    let dir = tempfile::Builder::new()
        .prefix("rm-deploy-")
        .tempdir()
        .expect("tempdir");
    set_mode(dir.path(), 0o755);

    let kit = unpack_kit(dir.path());
    let bin = kit.join("bin/restic-manager");
    let home = user_home(dir.path(), &user);
    let local_bin = home.join(".local/bin");
    let system_path = "/usr/local/bin:/usr/bin:/bin".to_string();
    let env = |path: &str| {
        vec![
            ("HOME", home.display().to_string()),
            ("PATH", path.to_string()),
            ("RM_BIN", bin.display().to_string()),
        ]
    };
    let script = kit.join("scripts/install.sh");

    // First run: ~/.local/bin is not on PATH yet.
    let first = user.run(&script, &[], &env(&system_path), dir.path());
    first
        .succeeds()
        .stdout_has("wrote a starter configuration")
        .stderr_has(&format!(
            "warning: `{}` is not on your PATH",
            local_bin.display()
        ))
        .stderr_has("export PATH=\"$HOME/.local/bin:$PATH\"");
    assert!(
        !first.stdout.contains("sudo") && !first.stderr.contains("sudo:"),
        "{first:?}"
    );

    assert_first_install(&user, &home, &bin);
    let installed = local_bin.join("restic-manager");
    let config = home.join(".config/restic-manager/config.toml");
    let completion = home.join(".local/share/bash-completion/completions/restic-manager");

    // The user describes their own backup; a second run (now with
    // ~/.local/bin on PATH) keeps it, warns no more, and refreshes the rest.
    let docs = home.join("docs");
    std::fs::create_dir(&docs).expect("mkdir docs");
    std::fs::write(docs.join("letter.txt"), "dear restic\n").expect("write docs");
    for p in [&docs, &docs.join("letter.txt")] {
        std::os::unix::fs::chown(p, Some(user.uid), Some(user.gid))
            .unwrap_or_else(|e| panic!("chown {}: {e}", p.display()));
    }
    let own = format!(
        "# my own configuration\n[global]\nrestic_password_file = \"~/.config/restic-manager/restic-password\"\n\n[destinations.local]\ntype = \"local\"\npath = \"{h}/backups\"\n\n[services.docs]\ntargets = [\"local\"]\nschedule = \"* * * * *\"\n[services.docs.config]\npaths = [\"{h}/docs\"]\n",
        h = home.display()
    );
    std::fs::write(&config, &own).expect("write config");
    let on_path = format!("{}:{system_path}", local_bin.display());
    let second = user.run(&script, &[], &env(&on_path), dir.path());
    second
        .succeeds()
        .stdout_has(&format!(
            "keeping your configuration `{}` (never overwritten",
            config.display()
        ))
        .stdout_has("is up to date");
    assert!(!second.stderr.contains("not on your PATH"), "{second:?}");
    assert_eq!(read(&config), own);
    assert!(read(&completion).contains("complete -F"));

    // The installed binary works for that user: help, completion, and the
    // README's first steps with their config found in ~/.config.
    // restic itself comes verified from a (local) release mirror.
    let mirror = crate::install::Mirror::start(&dir.path().join("mirror"));
    mirror.publish("0.14.0", &crate::install::system_restic());
    mirror.latest("0.14.0");
    let mut user_env = vec![("HOME", home.display().to_string()), ("PATH", on_path)];
    user_env.extend(mirror.env());
    let as_user = |args: &[&str]| user.run(&installed, args, &user_env, &home);
    // The user's crontab is put back however the test ends.
    let _serial = crate::schedule::crontab_lock();
    let _cleanup = UserCrontab::new(&user);
    as_user(&["--help"])
        .succeeds()
        .stdout_has("Usage: restic-manager");
    as_user(&["completions", "bash"])
        .succeeds()
        .stdout_has("complete");
    as_user(&["validate"])
        .succeeds()
        .stdout_has(&format!("configuration `{}`", config.display()))
        .stdout_has("is valid");
    as_user(&["setup-restic"]).succeeds();
    let v = as_user(&["restic-version", "--json"]);
    v.succeeds();
    assert_eq!(v.json()["source"], "managed", "{v:?}");
    crate::schedule::ensure_cron_daemon();
    // `setup` also installs the schedule: no systemd here, so cron.
    as_user(&["setup"])
        .succeeds()
        .stdout_has("docs: scheduled `* * * * *`");
    as_user(&["run"]).succeeds();
    let status = as_user(&["status", "--json"]);
    status.succeeds();
    assert_eq!(status.json()[0]["last_run"]["outcome"], "ok", "{status:?}");
    let repo = std::fs::metadata(home.join("backups/docs/config"))
        .expect("the repository was not created");
    assert_eq!(repo.uid(), user.uid, "the repository belongs to the user");

    // cron fires a real backup for that user, with the managed restic.
    assert_cron_ran(&home);
    as_user(&["schedule", "remove"]).succeeds();
}

/// What a user has after cloning, under `dir/kit`: the scripts, the
/// example config, and (via RM_BIN) a binary; all readable by that user,
/// none writable.
fn unpack_kit(dir: &Path) -> PathBuf {
    let kit = dir.join("kit");
    let root = Path::new(ROOT);
    copy(
        &root.join("scripts/install.sh"),
        &kit.join("scripts/install.sh"),
        0o755,
    );
    copy(
        &root.join("scripts/lib.sh"),
        &kit.join("scripts/lib.sh"),
        0o644,
    );
    copy(
        &root.join("config.example.toml"),
        &kit.join("config.example.toml"),
        0o644,
    );
    let bin = kit.join("bin/restic-manager");
    copy(Path::new(env!("CARGO_BIN_EXE_restic-manager")), &bin, 0o755);
    kit
}

/// The user's empty HOME, `dir/home`.
fn user_home(dir: &Path, user: &User) -> PathBuf {
    let home = dir.join("home");
    std::fs::create_dir(&home).expect("mkdir home");
    std::os::unix::fs::chown(&home, Some(user.uid), Some(user.gid)).expect("chown home");
    set_mode(&home, 0o700);
    home
}

/// What the first run of the script installed for `user` in `home`: the
/// binary `bin`, the example config, the completion and the man pages,
/// all the user's.
fn assert_first_install(user: &User, home: &Path, bin: &Path) {
    let root = Path::new(ROOT);
    let local_bin = home.join(".local/bin");
    let installed = local_bin.join("restic-manager");
    let config = home.join(".config/restic-manager/config.toml");
    let completion = home.join(".local/share/bash-completion/completions/restic-manager");
    let man_page = home.join(".local/share/man/man1/restic-manager.1");
    assert_eq!(
        std::fs::read(&installed).ok(),
        std::fs::read(bin).ok(),
        "the binary lands in ~/.local/bin"
    );
    assert_eq!(read(&config), read(&root.join("config.example.toml")));
    assert!(read(&completion).contains("complete -F"), "bash completion");
    assert!(read(&man_page).contains(".TH restic-manager 1"), "man page");
    assert!(
        home.join(".local/share/man/man1/restic-manager-run.1")
            .is_file()
    );
    for f in [&installed, &config, &completion, &man_page] {
        let m = std::fs::metadata(f).unwrap_or_else(|e| panic!("stat {}: {e}", f.display()));
        assert_eq!(m.uid(), user.uid, "{} belongs to the user", f.display());
    }
    assert_eq!(
        std::fs::metadata(&installed).map(|m| m.mode() & 0o777).ok(),
        Some(0o755)
    );
    assert_eq!(
        std::fs::metadata(&config).map(|m| m.mode() & 0o777).ok(),
        Some(0o600),
        "the config may hold secrets"
    );
}

/// cron ran a backup of `docs` (outcome `ok`) within 130 s.
fn assert_cron_ran(home: &Path) {
    let db = crate::harness::db::Db(home.join(".local/state/restic-manager/history.sqlite"));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(130);
    let mut runs = Vec::new();
    while std::time::Instant::now() < deadline {
        runs = db.query("SELECT outcome FROM runs WHERE trigger = 'cron' AND outcome != 'running'");
        if !runs.is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_secs(3));
    }
    let job_log =
        std::fs::read_to_string(home.join(".local/state/restic-manager/logs/schedule-docs.log"))
            .unwrap_or_default();
    assert_eq!(
        runs.first().map(String::as_str),
        Some("ok"),
        "no cron run within 130 s; job log:\n{job_log}"
    );
}

/// The test user's crontab: emptied at the end (as root for `rmtest`;
/// restored to what it was when the test runs as the current user).
struct UserCrontab {
    switch: Option<String>,
    saved: Option<crate::schedule::RestoreCrontab>,
}

impl UserCrontab {
    fn new(user: &User) -> UserCrontab {
        if user.switch {
            UserCrontab {
                switch: Some(TEST_USER.to_string()),
                saved: None,
            }
        } else {
            UserCrontab {
                switch: None,
                saved: Some(crate::schedule::RestoreCrontab(
                    crate::schedule::crontab_list(),
                )),
            }
        }
    }
}

impl Drop for UserCrontab {
    fn drop(&mut self) {
        if let Some(u) = &self.switch {
            let _ = Command::new("crontab").args(["-r", "-u", u]).output();
        }
        drop(self.saved.take());
    }
}

#[test]
fn man_prints_a_roff_page_without_any_configuration() {
    let s = Scenario::new();
    let d = s.run(&["man"]);
    d.succeeds();
    // clap_mangen starts with roff's apostrophe definition (`.ie`/`.el`);
    // the title macro comes right after it.
    let title = d
        .stdout
        .lines()
        .find(|l| !l.starts_with(".ie ") && !l.starts_with(".el "))
        .unwrap_or_default();
    assert!(title.starts_with(".TH restic-manager 1"), "{}", d.stdout);
    d.stdout_has(".SH SUBCOMMANDS").stdout_has("completions");
}

#[test]
fn man_out_writes_a_page_per_command() {
    let s = Scenario::new();
    let out: PathBuf = s.path("man/man1");
    let d = s.run(&["man", "--out", &out.display().to_string()]);
    d.succeeds()
        .stdout_has("restic-manager.1`")
        .stdout_has("restic-manager-schedule-install.1`");
    assert!(read(&out.join("restic-manager-setup.1")).contains(".TH restic-manager-setup 1"));
}

#[test]
fn completions_for_each_shell_without_any_configuration() {
    let s = Scenario::new();
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef restic-manager"),
        ("fish", "complete -c restic-manager"),
    ] {
        s.run(&["completions", shell])
            .succeeds()
            .stdout_has(marker)
            .stdout_has("schedule");
    }
    s.run(&["completions", "tcsh"])
        .code(2)
        .stderr_has("invalid value 'tcsh'");
}
