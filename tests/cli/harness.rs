//! A user's session in a box: a temporary HOME with XDG directories, a
//! config file, the real binary and the real restic. Every helper two
//! test modules need lives here once, so a typical test reads:
//!
//! ```ignore
//! let s = Scenario::new()
//!     .file("data/docs/a.txt", "hello")
//!     .service("docs", |d| d.path("{root}/data/docs"))
//!     .ready(&["repo/docs"]);
//! s.run(&["run"]).succeeds();
//! assert_eq!(s.snapshots("repo/docs").len(), 1);
//! ```
//!
//! A component a test needs (Docker, a database server, chromium, …) is
//! checked with [`require_component`]: skipped with the reason printed
//! locally, a failure under `CI=true`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;

/// The restic version the suite runs against: `RM_TEST_RESTIC=0.14|0.18|0.19`
/// (scripts/test-all.sh puts `target/restic/<VER>`, made by
/// scripts/restic-versions.sh, first on PATH). `None` when unset: then
/// whatever restic is on PATH.
pub fn restic_under_test() -> Option<String> {
    std::env::var("RM_TEST_RESTIC")
        .ok()
        .filter(|v| !v.is_empty())
}

/// The first line of `restic version` of the restic on PATH, checked once.
/// Fails loudly when restic is missing (tests never skip silently), and
/// when it is not the version `RM_TEST_RESTIC` asks for: the matrix must
/// never test the wrong restic without saying so.
pub fn restic_version() -> &'static str {
    static VERSION: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    VERSION.get_or_init(|| {
        let out = Command::new("restic").arg("version").output();
        let line = match out {
            Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .unwrap_or("")
                .to_string(),
            _ => panic!(
                "restic is not installed: run `apt-get install restic` (scripts/test-all.sh does)"
            ),
        };
        if let Some(want) = restic_under_test() {
            assert!(
                line.starts_with(&format!("restic {want}.")),
                "RM_TEST_RESTIC={want} but the restic on PATH says `{line}`; run `scripts/restic-versions.sh {want}` and put `target/restic/{want}` first on PATH (scripts/test-all.sh does)"
            );
        }
        line
    })
}

/// The restic on PATH as (major, minor), e.g. (0, 18).
pub fn restic_minor() -> (u32, u32) {
    let v = restic_version().split_whitespace().nth(1).unwrap_or("0.0");
    let mut it = v.split('.').map(|p| p.parse().unwrap_or(0));
    (it.next().unwrap_or(0), it.next().unwrap_or(0))
}

fn require_restic() {
    restic_version();
}

// ---- components ------------------------------------------------------------

/// Whether the suite runs under `CI=true`, where scripts/test-all.sh has
/// installed every component a test needs.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// The one way a test meets a component it needs (a server, a program, a
/// privilege). `probe` is `Ok` when it is there, else the reason with the
/// way to install it. Missing under `CI=true`: the test fails with the
/// reason, since a green CI run must have run every test. Missing
/// elsewhere: the reason is printed and `false` returned, and the test
/// returns early, so a skip is never silent.
#[track_caller]
pub fn require_component(name: &str, probe: Result<(), String>) -> bool {
    match probe {
        Ok(()) => true,
        Err(why) => {
            assert!(
                !in_ci(),
                "{name} is missing under CI=true: {why} (scripts/test-all.sh installs it)"
            );
            eprintln!("SKIPPED: {name} is missing: {why}");
            false
        }
    }
}

/// A probe for [`require_component`]: `program` exists.
pub fn installed(program: &Path, package: &str) -> Result<(), String> {
    if program.exists() {
        Ok(())
    } else {
        Err(format!(
            "`{}` is missing: `apt-get install {package}`",
            program.display()
        ))
    }
}

/// A probe for [`require_component`]: `program args` runs and succeeds.
pub fn runs(program: &str, args: &[&str], install: &str) -> Result<(), String> {
    match Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        Ok(st) if st.success() => Ok(()),
        Ok(st) => Err(format!("`{program}` ended with {st}: {install}")),
        Err(e) => Err(format!("`{program}` cannot run ({e}): {install}")),
    }
}

/// Why promtool (from Debian's `prometheus`) cannot be started.
pub fn promtool_missing(e: &std::io::Error) -> String {
    format!("{e}: `apt-get install --no-install-recommends prometheus`")
}

/// A probe for [`require_component`]: the tests run as root.
pub fn root() -> Result<(), String> {
    if nix::unistd::geteuid().is_root() {
        Ok(())
    } else {
        Err("the test needs root".to_string())
    }
}

// ---- shared helpers --------------------------------------------------------

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free port")
}

/// Runs `cmd`, which must succeed (`what` names it when it does not).
#[track_caller]
pub fn output_ok(cmd: &mut Command, what: &str) -> std::process::Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// [`output_ok`]'s standard output, trimmed.
#[track_caller]
pub fn stdout_ok(cmd: &mut Command, what: &str) -> String {
    let out = output_ok(cmd, what);
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Spawns `cmd` with `stdin` and its stdout and stderr piped.
#[track_caller]
pub fn spawn_piped(cmd: &mut Command, stdin: Stdio, what: &str) -> Child {
    cmd.stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{what}: {e}"))
}

/// Writes `input` to a child's stdin, closes it, and waits for the child.
#[track_caller]
pub fn feed(mut child: Child, input: &[u8], what: &str) -> std::process::Output {
    use std::io::Write;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(input)
            .unwrap_or_else(|e| panic!("{what} stdin: {e}"));
    }
    child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("{what}: {e}"))
}

/// A child process killed (and reaped) when the guard drops.
pub struct Reaped(pub Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A program of the test venv: `$var` when set, else
/// `target/test-venv/bin/NAME` (scripts/test-all.sh makes it).
pub fn venv_bin(var: &str, name: &str) -> PathBuf {
    std::env::var_os(var).map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("target/test-venv/bin/{name}")),
        PathBuf::from,
    )
}

/// Bit rot: flips the bits `mask` of byte `at` of a file, keeping its size
/// and modification time.
#[track_caller]
pub fn rot(p: &Path, at: usize, mask: u8) {
    let mtime = std::fs::metadata(p)
        .and_then(|m| m.modified())
        .expect("stat");
    let mut bytes = std::fs::read(p).expect("read");
    bytes[at] ^= mask;
    std::fs::write(p, bytes).expect("write");
    std::fs::File::options()
        .write(true)
        .open(p)
        .and_then(|h| h.set_modified(mtime))
        .expect("set mtime");
}

/// The files of `dir` whose name ends in `.EXT`, sorted.
#[track_caller]
pub fn files_with_ext(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == ext))
        .collect();
    files.sort();
    files
}

/// `v` is a list of `n` strings that each contain `has`.
#[track_caller]
pub fn all_contain(v: &Value, n: usize, has: &str) {
    let items = v.as_array().cloned().unwrap_or_default();
    assert_eq!(items.len(), n, "{v}");
    assert!(
        items
            .iter()
            .all(|t| t.as_str().is_some_and(|t| t.contains(has))),
        "{v}"
    );
}

/// `v` is a string that contains `has`.
#[track_caller]
pub fn str_has(v: &Value, has: &str) {
    assert!(
        v.as_str().is_some_and(|t| t.contains(has)),
        "{v} lacks {has:?}"
    );
}

/// A response header as text (empty when missing).
pub fn header(r: &reqwest::blocking::Response, name: &str) -> String {
    r.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}

/// `text` contains `needle`.
#[track_caller]
pub fn assert_has(text: &str, needle: &str) {
    assert!(text.contains(needle), "{needle:?} is missing from:\n{text}");
}

/// A file's text; fails the test when it cannot be read.
#[track_caller]
pub fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
}

/// Sets a file's permission bits.
#[track_caller]
pub fn chmod(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", p.display()));
}

/// Every regular file under `dir` whose bytes contain `needle`, except
/// those in `skip`.
pub fn files_containing(dir: &Path, needle: &[u8], skip: &[&Path]) -> Vec<PathBuf> {
    let mut hits = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_dir() {
                stack.push(p);
            } else if ft.is_file() && !skip.contains(&p.as_path()) {
                let bytes = std::fs::read(&p).unwrap_or_default();
                if bytes.windows(needle.len()).any(|w| w == needle) {
                    hits.push(p);
                }
            }
        }
    }
    hits
}

/// The password of the repositories made from [`template_repo`]; tests
/// also check that it never shows.
pub const PASSWORD: &str = "a test password, not a secret";

/// An empty repository, password [`PASSWORD`], initialised once per test
/// process and restic version. `restic init` spends about two seconds
/// calibrating its key derivation; copying costs nothing.
pub fn template_repo() -> &'static Path {
    static TEMPLATE: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    TEMPLATE.get_or_init(|| {
        // One per restic version: a newer restic may write a repository
        // format an older one cannot open.
        let version = restic_version()
            .split_whitespace()
            .nth(1)
            .unwrap_or("unknown");
        let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
        let done = tmp.join(format!("template-restic-{version}"));
        if done.join("repo/config").is_file() {
            return done.join("repo");
        }
        // Built aside and renamed into place, so a concurrent test process
        // never sees half a repository.
        let dir = tmp.join(format!("template.{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("mkdir");
        let pw = dir.join("pw");
        std::fs::write(&pw, PASSWORD).expect("write");
        output_ok(
            Command::new("restic")
                .args(["init", "--quiet"])
                .env("RESTIC_REPOSITORY", dir.join("repo"))
                .env("RESTIC_PASSWORD_FILE", &pw)
                .env("XDG_CACHE_HOME", dir.join("cache")),
            "restic init",
        );
        if std::fs::rename(&dir, &done).is_err() {
            // Another test process got there first.
            let _ = std::fs::remove_dir_all(&dir);
        }
        assert!(done.join("repo/config").is_file(), "template repository");
        done.join("repo")
    })
}

/// One isolated user environment, and the configuration being built in it
/// (see [`Scenario::service`]).
pub struct Scenario {
    dir: TempDir,
    model: Model,
}

/// The configuration a chain of [`Scenario`] builder calls describes.
#[derive(Default)]
struct Model {
    global: String,
    destinations: Vec<(String, String)>,
    services: Vec<Service>,
    sections: String,
}

/// One `[services.NAME]` of a scenario's configuration: by default it backs
/// up to `local`, with no paths; without paths and config keys it has no
/// `[services.NAME.config]` table (a legacy `backup_script` service).
pub struct Service {
    name: String,
    targets: Vec<String>,
    keys: String,
    paths: Vec<String>,
    config: String,
}

impl Service {
    fn new(name: &str) -> Service {
        Service {
            name: name.to_string(),
            targets: vec!["local".to_string()],
            keys: String::new(),
            paths: Vec::new(),
            config: String::new(),
        }
    }

    /// The destinations it backs up to (instead of `local`).
    pub fn targets(mut self, targets: &[&str]) -> Service {
        self.targets = targets.iter().map(|t| (*t).to_string()).collect();
        self
    }

    /// A folder it backs up (`{root}` is the scenario folder).
    pub fn path(mut self, path: &str) -> Service {
        self.paths.push(path.to_string());
        self
    }

    /// TOML lines for `[services.NAME]` (schedule, retention, …).
    pub fn keys(mut self, toml: &str) -> Service {
        self.keys.push_str(toml);
        self.keys.push('\n');
        self
    }

    /// TOML for `[services.NAME.config]` (hooks, dumps, volumes, …).
    pub fn config(mut self, toml: &str) -> Service {
        self.config.push_str(toml);
        self.config.push('\n');
        self
    }

    /// A `[[services.NAME.config.dumps]]` entry `name` with TOML `keys`.
    pub fn dump(self, name: &str, keys: &str) -> Service {
        let table = format!("[[services.{}.config.dumps]]", self.name);
        self.config(&format!("{table}\nname = \"{name}\"\n{keys}"))
    }

    fn toml(&self) -> String {
        let list = |v: &[String]| {
            v.iter()
                .map(|x| format!("\"{x}\""))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let name = &self.name;
        let mut out = format!(
            "[services.{name}]\ntargets = [{}]\n{}",
            list(&self.targets),
            self.keys
        );
        // A legacy `backup_script` service has no config table.
        if self.paths.is_empty() && self.config.is_empty() {
            return out;
        }
        out.push_str(&format!("\n[services.{name}.config]\n"));
        if !self.paths.is_empty() {
            out.push_str(&format!("paths = [{}]\n", list(&self.paths)));
        }
        out.push_str(&self.config);
        out
    }
}

/// `[global]` with the password in `{root}/pw`, `global` keys, and the
/// destinations (name, TOML keys); without any, `local` at `{root}/repo`.
fn preamble(global: &str, destinations: &[(String, String)]) -> String {
    let mut out = format!("[global]\nrestic_password_file = \"{{root}}/pw\"\n{global}\n");
    let local = [("local".to_string(), local_at("repo"))];
    let destinations = if destinations.is_empty() {
        &local[..]
    } else {
        destinations
    };
    for (name, keys) in destinations {
        out.push_str(&format!("[destinations.{name}]\n{keys}\n\n"));
    }
    out
}

/// The keys of a local destination at `{root}/rel`.
fn local_at(rel: &str) -> String {
    format!("type = \"local\"\npath = \"{{root}}/{rel}\"")
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

/// Sets its flag when dropped, also when a test fails: a watcher thread in
/// a `thread::scope` that loops until the flag is set must be told to stop
/// then, or the scope waits for it forever and the test hangs instead of
/// failing.
pub struct StopOnDrop<'a>(pub &'a std::sync::atomic::AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, std::sync::atomic::Ordering::Relaxed);
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
        let stopper = StopOnDrop(&stop);
        let out = f();
        drop(stopper);
        let (leaks, saw_backup) = watcher.join().expect("cmdline watcher panicked");
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
        self.has("stdout", &self.stdout, s)
    }

    #[track_caller]
    pub fn stderr_has(&self, s: &str) -> &Self {
        self.has("stderr", &self.stderr, s)
    }

    /// Every one of `wants` is on stderr.
    #[track_caller]
    pub fn stderr_has_all(&self, wants: &[&str]) -> &Self {
        for w in wants {
            self.stderr_has(w);
        }
        self
    }

    #[track_caller]
    pub fn stdout_lacks(&self, s: &str) -> &Self {
        assert!(
            !self.stdout.contains(s),
            "stdout has {s:?}:\n{}",
            self.stdout
        );
        self
    }

    /// Some line of stdout starts with `start` and contains `has`.
    #[track_caller]
    pub fn stdout_line(&self, start: &str, has: &str) -> &Self {
        assert!(
            self.stdout
                .lines()
                .any(|l| l.starts_with(start) && l.contains(has)),
            "no line starting with {start:?} holds {has:?}:\n{}",
            self.stdout
        );
        self
    }

    #[track_caller]
    fn has(&self, name: &str, stream: &str, s: &str) -> &Self {
        assert!(
            stream.contains(s),
            "{name} lacks {s:?}\n--- stdout:\n{}\n--- stderr:\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    /// The first service of a `run --json` report: asserts its
    /// `error_class` and returns its `error`.
    #[track_caller]
    pub fn service_error(&self, class: &str) -> String {
        let svc = &self.json()["services"][0];
        assert_eq!(svc["error_class"], class, "{svc}");
        svc["error"].as_str().unwrap_or_default().to_string()
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
            .expect("tempdir");
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
        Scenario {
            dir,
            model: Model::default(),
        }
    }

    // ---- builder: a scenario in a few chained calls ------------------------

    /// Adds service `name`, shaped by `f`, and writes the configuration.
    #[must_use]
    pub fn service(mut self, name: &str, f: impl FnOnce(Service) -> Service) -> Scenario {
        self.model.services.push(f(Service::new(name)));
        self.write_model()
    }

    /// Adds a local destination `name` at `{root}/rel` (without any, there
    /// is `local` at `{root}/repo`) and writes the configuration.
    #[must_use]
    pub fn destination_local(self, name: &str, rel: &str) -> Scenario {
        self.destination(name, &local_at(rel))
    }

    /// Adds a REST destination `name` on `127.0.0.1:port` (no auth) and
    /// writes the configuration.
    #[must_use]
    pub fn destination_rest(self, name: &str, port: u16) -> Scenario {
        let url = format!("type = \"rest\"\nurl = \"rest:http://127.0.0.1:{port}\"");
        self.destination(name, &url)
    }

    /// Adds destination `name` with its TOML keys (`type = "sftp"`, …) and
    /// writes the configuration.
    #[must_use]
    pub fn destination(mut self, name: &str, keys: &str) -> Scenario {
        self.model
            .destinations
            .push((name.to_string(), keys.to_string()));
        self.write_model()
    }

    /// Adds TOML lines to `[global]` and writes the configuration.
    #[must_use]
    pub fn global(mut self, toml: &str) -> Scenario {
        self.model.global.push_str(toml);
        self.model.global.push('\n');
        self.write_model()
    }

    /// Adds whole TOML sections (`[notifications]`, `[web]`, …) after the
    /// services and writes the configuration.
    #[must_use]
    pub fn sections(mut self, toml: &str) -> Scenario {
        self.model.sections.push_str(toml);
        self.model.sections.push('\n');
        self.write_model()
    }

    /// Drops the services added so far (to configure others).
    #[must_use]
    pub fn without_services(mut self) -> Scenario {
        self.model.services.clear();
        self
    }

    /// Drops the sections added so far (to configure others).
    #[must_use]
    pub fn without_sections(mut self) -> Scenario {
        self.model.sections.clear();
        self
    }

    /// Writes the user's config (see [`Scenario::config`]).
    #[must_use]
    pub fn with_config(self, toml: &str) -> Scenario {
        self.config(toml);
        self
    }

    /// Writes a file (see [`Scenario::write`]).
    #[must_use]
    pub fn file(self, rel: &str, content: &str) -> Scenario {
        self.write(rel, content);
        self
    }

    /// The password file and an empty repository at each of `repos`
    /// (copies of [`template_repo`]).
    #[must_use]
    pub fn repos(self, repos: &[&str]) -> Scenario {
        self.write("pw", PASSWORD);
        for r in repos {
            let dest = self.path(r);
            if let Some(parent) = dest.parent() {
                std::fs::create_dir_all(parent).expect("mkdir");
            }
            let ok = Command::new("cp")
                .arg("-a")
                .arg(template_repo())
                .arg(&dest)
                .status()
                .is_ok_and(|st| st.success());
            assert!(ok, "copy the template repository to {r}");
        }
        self
    }

    /// What a user has after `setup`: [`Scenario::repos`], then `setup`
    /// itself, which finds them.
    #[must_use]
    pub fn ready(self, repos: &[&str]) -> Scenario {
        let s = self.repos(repos);
        let d = s.run(&["setup"]);
        d.succeeds();
        for r in repos {
            d.stdout_has(&format!("{} already exists", s.path(r).display()));
        }
        s
    }

    fn write_model(self) -> Scenario {
        let mut text = preamble(&self.model.global, &self.model.destinations);
        for svc in &self.model.services {
            text.push_str(&svc.toml());
            text.push('\n');
        }
        text.push_str(&self.model.sections);
        self.config(&text);
        self
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
        std::fs::write(self.config_path(), text).expect("write config");
        self
    }

    /// A config with one local destination `local` at `{root}/repo` and the
    /// password in `{root}/pw`, plus `services` (TOML text).
    pub fn simple(&self, services: &str) -> &Self {
        self.config(&format!("{}{services}", preamble("", &[])))
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

    /// `PATH:LINE:COL…` of the user's config file: where a message points.
    pub fn in_config(&self, place: &str) -> String {
        format!("{}:{place}", self.config_path().display())
    }

    /// Runs the binary with the words of `line` (split at white space).
    pub fn run_line(&self, line: &str) -> Done {
        self.run(&line.split_whitespace().collect::<Vec<_>>())
    }

    /// Runs the binary to completion.
    pub fn run(&self, args: &[&str]) -> Done {
        self.run_env(&[], args)
    }

    /// `restore -s SERVICE --snapshot latest ARGS`.
    pub fn restore_latest(&self, service: &str, args: &[&str]) -> Done {
        let mut all = vec!["restore", "-s", service, "--snapshot", "latest"];
        all.extend_from_slice(args);
        self.run(&all)
    }

    /// Runs the binary with extra environment variables.
    pub fn run_env(&self, env: &[(&str, &str)], args: &[&str]) -> Done {
        let out = self
            .command()
            .envs(env.iter().copied())
            .args(args)
            .output()
            .expect("spawn");
        Done::from(out)
    }

    /// Real restic on a repository of the scenario, password from `{root}/pw`.
    pub fn restic(&self, repo: &str, args: &[&str]) -> Done {
        let out = self
            .restic_command(repo)
            .args(args)
            .output()
            .expect("restic");
        Done::from(out)
    }

    /// Real restic set up for a repository of the scenario (password from
    /// `{root}/pw`), to add arguments to.
    pub fn restic_command(&self, repo: &str) -> Command {
        self.restic_with_password(repo, "pw")
    }

    /// Real restic for a repository of the scenario with the password in
    /// `password_file` (relative to the scenario folder).
    pub fn restic_with_password(&self, repo: &str, password_file: &str) -> Command {
        let mut c = Command::new("restic");
        c.env("RESTIC_REPOSITORY", self.path(repo))
            .env("RESTIC_PASSWORD_FILE", self.path(password_file))
            .env("XDG_CACHE_HOME", self.path("cache"));
        c
    }

    /// `restic backup --stdin ARGS` on a repository of the scenario, fed
    /// `content`; it must succeed.
    pub fn restic_stdin(&self, repo: &str, args: &[&str], content: &[u8]) {
        use std::io::Write;
        let mut child = self
            .restic_command(repo)
            .args(["backup", "--stdin"])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("restic");
        if let Some(mut w) = child.stdin.take() {
            w.write_all(content).expect("stdin");
        }
        let out = child.wait_with_output().expect("restic");
        Done::from(out).succeeds();
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

    /// The locks restic lists in a repository, each with its JSON and what
    /// `/proc` says of its pid (state, parent), so that a failure shows
    /// whose lock survived. A file restic does not read as a lock (the
    /// `ID-tmp-N` a restic stopped mid-write may leave) is not one.
    pub fn locks(&self, repo: &str) -> Vec<String> {
        let listed = self.restic(repo, &["list", "locks", "--no-lock"]);
        listed.succeeds();
        listed
            .stdout
            .lines()
            .map(|id| {
                let lock = self.restic(repo, &["cat", "lock", id, "--no-lock"]).stdout;
                let pid = serde_json::from_str::<Value>(&lock)
                    .map(|v| v["pid"].to_string())
                    .unwrap_or_default();
                let process = std::fs::read_to_string(format!("/proc/{pid}/status"))
                    .map(|st| {
                        st.lines()
                            .filter(|l| l.starts_with("State:") || l.starts_with("PPid:"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    })
                    .unwrap_or_else(|_| "no such process".into());
                format!("{id}: {} (pid {pid}: {process})", lock.trim())
            })
            .collect()
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
            let out = super::output_ok(
                std::process::Command::new("sqlite3").arg(&self.0).arg(sql),
                "sqlite3 (`apt-get install sqlite3`)",
            );
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .map(str::to_string)
                .collect()
        }
    }
}

/// Calls `f` every `every` until it gives a value; fails the test with
/// `why()` once `limit` has passed.
#[track_caller]
pub fn poll<T>(
    limit: Duration,
    every: Duration,
    mut f: impl FnMut() -> Option<T>,
    why: impl Fn() -> String,
) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(start.elapsed() < limit, "{}", why());
        std::thread::sleep(every);
    }
}

/// Polls until `cond` holds; panics with `what` after `limit`.
#[track_caller]
pub fn wait_until(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A `restic-manager` started in the background; stopped (SIGTERM, then
/// SIGKILL) if the test ends early so nothing is left running.
pub struct Background(Option<Child>);

impl Background {
    pub fn start(s: &Scenario, args: &[&str]) -> Background {
        let child = s
            .command()
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        Background(Some(child))
    }

    pub fn pid(&self) -> u32 {
        self.0.as_ref().map_or(0, Child::id)
    }

    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([format!("-{sig}"), self.pid().to_string()])
            .status()
            .is_ok_and(|st| st.success());
        assert!(ok, "kill -{sig} {}", self.pid());
    }

    /// Waits for the command to end.
    pub fn finish(mut self) -> Done {
        let child = self.0.take().expect("already finished");
        let out = child.wait_with_output().expect("wait");
        Done::from(out)
    }

    /// Waits at most `limit` for the command to end; fails the test (and
    /// kills it) if it does not.
    #[track_caller]
    pub fn finish_within(mut self, limit: Duration) -> (Done, Duration) {
        let mut child = self.0.take().expect("already finished");
        let start = Instant::now();
        while matches!(child.try_wait(), Ok(None)) {
            if start.elapsed() > limit {
                let _ = child.kill();
                let out = child.wait_with_output().ok();
                panic!(
                    "still running after {limit:?}; stderr: {}",
                    out.map(|o| String::from_utf8_lossy(&o.stderr).into_owned())
                        .unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let took = start.elapsed();
        let out = child.wait_with_output().expect("wait");
        (Done::from(out), took)
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let Some(mut child) = self.0.take() else {
            return;
        };
        if matches!(child.try_wait(), Ok(None)) {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let start = Instant::now();
            while matches!(child.try_wait(), Ok(None)) && start.elapsed() < Duration::from_secs(10)
            {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
        }
        let _ = child.wait();
    }
}

/// The newest PostgreSQL server installed on the host (its `bin` folder).
pub fn pg_bin() -> Option<PathBuf> {
    let mut versions: Vec<u32> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse().ok()))
        .collect();
    versions.sort_unstable();
    versions
        .last()
        .map(|v| PathBuf::from(format!("/usr/lib/postgresql/{v}/bin")))
}

/// `docker import` of the folder `root` as `image`: a tarball made with
/// `tar_args` (before `-cf`), imported with `import_args` (`--change …`).
pub fn import_image(
    root: &Path,
    tar_args: &[&str],
    import_args: &[&str],
    image: &str,
) -> Result<(), String> {
    let tar = root.with_extension("tar");
    let ok = Command::new("tar")
        .arg("-C")
        .arg(root)
        .args(tar_args)
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        return Err("tar of the image folder failed".into());
    }
    let out = Command::new("docker")
        .arg("import")
        .args(import_args)
        .arg(&tar)
        .arg(image)
        .output()
        .map_err(|e| format!("docker import: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "docker import failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(())
}

/// A restic of the matrix, fetched by scripts/restic-versions.sh.
pub fn matrix_restic(ver: &str) -> std::path::PathBuf {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(format!("target/restic/{ver}/restic"));
    assert!(
        p.is_file(),
        "{} is missing: run `scripts/restic-versions.sh {ver}` (scripts/test-all.sh does)",
        p.display()
    );
    p
}
