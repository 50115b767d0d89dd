//! A user's session in a box: a temporary HOME with XDG directories, a
//! config file, the real binary and the real restic.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use tempfile::TempDir;

/// Fails loudly when restic is missing: tests never skip silently.
fn require_restic() {
    let ok = Command::new("restic")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "restic is not installed: run `apt-get install restic` (scripts/test-all.sh does)"
    );
}

/// One isolated user environment.
pub struct Scenario {
    dir: TempDir,
}

/// What a command did.
#[derive(Debug)]
pub struct Done {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<std::process::Output> for Done {
    fn from(out: std::process::Output) -> Done {
        Done {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

/// Runs `f` while watching every process's command line; returns what `f`
/// returned and the command lines that contained any of `secrets`. Fails
/// when restic's backup was never seen (the watch would prove nothing).
pub fn watching_cmdlines<T>(secrets: &[&str], f: impl FnOnce() -> T) -> (T, Vec<String>) {
    use std::sync::atomic::{AtomicBool, Ordering};
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let watcher = scope.spawn(|| {
            let mut leaks = Vec::new();
            let mut saw_backup = false;
            while !stop.load(Ordering::Relaxed) {
                for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
                    let Ok(raw) = std::fs::read(e.path().join("cmdline")) else {
                        continue;
                    };
                    let line = String::from_utf8_lossy(&raw).replace('\0', " ");
                    if secrets.iter().any(|s| line.contains(s)) && !leaks.contains(&line) {
                        leaks.push(line.clone());
                    }
                    saw_backup |= line.contains("restic") && line.contains(" backup --json");
                }
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            (leaks, saw_backup)
        });
        let out = f();
        stop.store(true, Ordering::Relaxed);
        let (leaks, saw_backup) = watcher
            .join()
            .unwrap_or_else(|_| panic!("cmdline watcher panicked"));
        assert!(saw_backup, "the watcher never saw restic's backup");
        (out, leaks)
    })
}

impl Done {
    #[track_caller]
    pub fn code(&self, want: i32) -> &Self {
        assert_eq!(
            self.code, want,
            "exit code\n--- stdout:\n{}\n--- stderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }

    #[track_caller]
    pub fn succeeds(&self) -> &Self {
        self.code(0)
    }

    #[track_caller]
    pub fn stdout_has(&self, s: &str) -> &Self {
        assert!(
            self.stdout.contains(s),
            "stdout lacks {s:?}\n--- stdout:\n{}\n--- stderr:\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    #[track_caller]
    pub fn stderr_has(&self, s: &str) -> &Self {
        assert!(
            self.stderr.contains(s),
            "stderr lacks {s:?}\n--- stdout:\n{}\n--- stderr:\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}):\n{}\n--- stderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }
}

impl Scenario {
    pub fn new() -> Scenario {
        require_restic();
        let dir = tempfile::Builder::new()
            .prefix("rm-test-")
            .tempdir()
            .unwrap_or_else(|e| panic!("tempdir: {e}"));
        for d in [
            "home",
            "home/.config/restic-manager",
            "state",
            "run",
            "cache",
            "data",
        ] {
            std::fs::create_dir_all(dir.path().join(d))
                .unwrap_or_else(|e| panic!("mkdir {d}: {e}"));
        }
        Scenario { dir }
    }

    /// The scenario's root folder.
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Writes a file (creating folders); returns its path.
    pub fn write(&self, rel: &str, content: &str) -> PathBuf {
        let p = self.path(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent)
                .unwrap_or_else(|e| panic!("mkdir {}: {e}", parent.display()));
        }
        std::fs::write(&p, content).unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
        p
    }

    /// The user's config file path.
    pub fn config_path(&self) -> PathBuf {
        self.path("home/.config/restic-manager/config.toml")
    }

    /// Writes the user's config; `{root}` is replaced by the scenario folder.
    pub fn config(&self, toml: &str) -> &Self {
        let text = toml.replace("{root}", &self.root().display().to_string());
        std::fs::write(self.config_path(), text).unwrap_or_else(|e| panic!("write config: {e}"));
        self
    }

    /// A config with one local destination `local` at `{root}/repo` and the
    /// password in `{root}/pw`, plus `services` (TOML text).
    pub fn simple(&self, services: &str) -> &Self {
        self.config(&format!(
            "[global]\nrestic_password_file = \"{{root}}/pw\"\n\n[destinations.local]\ntype = \"local\"\npath = \"{{root}}/repo\"\n\n{services}"
        ))
    }

    /// The binary with HOME and XDG pointed into the scenario.
    pub fn command(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_restic-manager"));
        c.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.path("home"))
            .env("XDG_CONFIG_HOME", self.path("home/.config"))
            .env("XDG_STATE_HOME", self.path("state"))
            .env("XDG_RUNTIME_DIR", self.path("run"))
            .env("XDG_CACHE_HOME", self.path("cache"))
            .env("XDG_DATA_HOME", self.path("data"))
            .current_dir(self.root());
        c
    }

    /// Runs the binary to completion.
    pub fn run(&self, args: &[&str]) -> Done {
        self.run_env(&[], args)
    }

    /// Runs the binary with extra environment variables.
    pub fn run_env(&self, env: &[(&str, &str)], args: &[&str]) -> Done {
        let out = self
            .command()
            .envs(env.iter().copied())
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("spawn: {e}"));
        Done::from(out)
    }

    /// Real restic on a repository of the scenario, password from `{root}/pw`.
    pub fn restic(&self, repo: &str, args: &[&str]) -> Done {
        let out = Command::new("restic")
            .args(args)
            .env("RESTIC_REPOSITORY", self.path(repo))
            .env("RESTIC_PASSWORD_FILE", self.path("pw"))
            .env("XDG_CACHE_HOME", self.path("cache"))
            .output()
            .unwrap_or_else(|e| panic!("restic: {e}"));
        Done::from(out)
    }

    /// restic's own snapshot list for a repository.
    pub fn snapshots(&self, repo: &str) -> Vec<Value> {
        let d = self.restic(repo, &["snapshots", "--json", "--no-lock"]);
        d.succeeds();
        match d.json() {
            Value::Array(a) => a,
            other => panic!("unexpected snapshots output {other}"),
        }
    }

    /// The history database, for direct assertions.
    pub fn history(&self) -> db::Db {
        db::Db(self.path("state/restic-manager/history.sqlite"))
    }
}

/// History is read through the `sqlite3` command-line tool so the test does
/// not share code with the implementation it checks.
pub mod db {
    use std::path::PathBuf;

    pub struct Db(pub PathBuf);

    impl Db {
        /// Rows of a query, columns separated by `|`.
        pub fn query(&self, sql: &str) -> Vec<String> {
            let out = std::process::Command::new("sqlite3")
                .arg(&self.0)
                .arg(sql)
                .output()
                .unwrap_or_else(|e| {
                    panic!("sqlite3 is not installed ({e}); `apt-get install sqlite3`")
                });
            assert!(
                out.status.success(),
                "sqlite3 failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .map(str::to_string)
                .collect()
        }
    }
}
