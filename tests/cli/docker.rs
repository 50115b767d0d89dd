//! Docker volumes and containers against the machine's real engine: volumes
//! backed up directly and streamed, containers stopped for the snapshot and
//! always started again, and the errors a user meets (missing volume,
//! unknown container, no engine).
//!
//! There is no image registry: the test image is Debian's static busybox
//! put into an image with `docker import`. The tests check Docker's state
//! with the `docker` CLI, independently of the code under test.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::harness::{Done, Scenario, import_image, require_component, root, wait_until};

/// The test image (built once per test process, reused across runs).
pub(crate) const IMAGE: &str = "restic-manager-test-busybox:1";

/// `docker …`, output captured.
pub(crate) fn docker(args: &[&str]) -> Done {
    let out = Command::new("docker")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("docker {args:?}: {e}"));
    Done::from(out)
}

/// The script of a container that idles until it is stopped. PID 1
/// ignores SIGTERM unless it traps it; a real service exits on it, so this
/// one does too (`docker stop` is quick).
pub(crate) const IDLE: &str = "trap 'exit 0' TERM; while :; do sleep 1 & wait $!; done";

/// `docker run -d --network none --name NAME ARGS… IMAGE sh -c SCRIPT`.
pub(crate) fn detached(name: &str, args: &[&str], script: &str) -> Done {
    let mut all = vec!["run", "-d", "--network", "none", "--name", name];
    all.extend_from_slice(args);
    all.extend([IMAGE, "sh", "-c", script]);
    docker(&all)
}

/// Runs `script` in a throw-away container with `volume` at `/data`; its
/// output.
pub(crate) fn sh_in(volume: &str, script: &str) -> String {
    let mount = format!("{volume}:/data");
    let d = docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        &mount,
        IMAGE,
        "sh",
        "-c",
        script,
    ]);
    d.succeeds();
    d.stdout
}

/// Whether the engine is usable; in CI its absence fails the test.
pub(crate) fn engine() -> bool {
    static UP: OnceLock<Result<(), String>> = OnceLock::new();
    let up = UP.get_or_init(|| {
        let info = Command::new("docker")
            .args(["info", "--format", "{{.ServerVersion}}"])
            .output();
        match info {
            Ok(o) if o.status.success() => build_image(),
            Ok(o) => Err(format!(
                "the Docker engine does not answer: {}",
                String::from_utf8_lossy(&o.stderr).trim()
            )),
            Err(e) => Err(format!("the docker CLI is missing: {e}")),
        }
    });
    require_component("the Docker engine or busybox-static", up.clone())
}

/// `docker import` of a tarball holding Debian's static busybox.
fn build_image() -> Result<(), String> {
    if docker(&["image", "inspect", IMAGE]).code == 0 {
        return Ok(());
    }
    let busybox = std::path::Path::new("/bin/busybox");
    if !busybox.exists() {
        return Err("`/bin/busybox` is missing: `apt-get install busybox-static`".into());
    }
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let root = dir.path().join("img");
    std::fs::create_dir_all(root.join("bin")).map_err(|e| e.to_string())?;
    std::fs::create_dir_all(root.join("tmp")).map_err(|e| e.to_string())?;
    std::fs::copy(busybox, root.join("bin/busybox")).map_err(|e| e.to_string())?;
    for applet in [
        "sh", "tar", "sleep", "cat", "md5sum", "find", "sort", "head", "seq", "dd", "wc",
    ] {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(applet))
            .map_err(|e| e.to_string())?;
    }
    import_image(&root, &[], &["--change", "ENV PATH=/bin"], IMAGE)
}

/// Unique names for machine-global Docker objects.
pub(crate) fn unique(kind: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "rmt-{kind}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Containers and volumes of one test, removed when it ends (also when it
/// fails).
#[derive(Default)]
pub(crate) struct Objects {
    pub(crate) containers: Vec<String>,
    pub(crate) volumes: Vec<String>,
}

impl Objects {
    /// The objects of a test that needs the engine; `None` (the test
    /// returns) where [`engine`] says it is missing.
    pub(crate) fn if_engine() -> Option<Objects> {
        engine().then(Objects::default)
    }

    /// [`Objects::if_engine`] with a [volume](Objects::volume) of `files`
    /// files of `kb` KiB and an [app](Objects::app) on it: (objects,
    /// volume, app).
    fn with_app(files: usize, kb: usize) -> Option<(Objects, String, String)> {
        let mut objs = Objects::if_engine()?;
        let vol = objs.volume(files, kb);
        let app = objs.app(&vol);
        Some((objs, vol, app))
    }

    /// A new volume holding `files` files of `kb` KiB of random data.
    pub(crate) fn volume(&mut self, files: usize, kb: usize) -> String {
        let v = unique("vol");
        docker(&["volume", "create", &v]).succeeds();
        self.volumes.push(v.clone());
        if files > 0 {
            let script = format!(
                "for i in $(seq 1 {files}); do dd if=/dev/urandom of=/data/f$i bs=1024 count={kb} 2>/dev/null; done; mkdir -p /data/sub && echo nested > /data/sub/n.txt"
            );
            self.sh(&v, &script);
        }
        v
    }

    /// An empty volume (to restore into).
    fn empty_volume(&mut self) -> String {
        self.volume(0, 0)
    }

    /// Runs `script` in a throw-away container with `volume` at `/data`.
    pub(crate) fn sh(&self, volume: &str, script: &str) -> String {
        sh_in(volume, script)
    }

    /// A long-running "application" on `volume` that appends a line to
    /// `/data/starts` each time it starts.
    fn app(&mut self, volume: &str) -> String {
        let c = unique("app");
        let mount = format!("{volume}:/data");
        detached(
            &c,
            &["-v", &mount],
            &format!("echo started >> /data/starts; {IDLE}"),
        )
        .succeeds();
        self.containers.push(c.clone());
        wait_until(
            "the app to write its start marker",
            Duration::from_secs(20),
            || {
                self.sh(volume, "cat /data/starts 2>/dev/null || true")
                    .contains("started")
            },
        );
        c
    }

    /// Checksums of every file in the volume, sorted by path.
    fn checksums(&self, volume: &str) -> String {
        self.sh(
            volume,
            "cd /data && find . -type f ! -name starts | sort | while read f; do md5sum \"$f\"; done",
        )
    }
}

impl Drop for Objects {
    fn drop(&mut self) {
        for c in &self.containers {
            let _ = Command::new("docker").args(["rm", "-f", c]).output();
        }
        for v in &self.volumes {
            let _ = Command::new("docker")
                .args(["volume", "rm", "-f", v])
                .output();
        }
    }
}

fn inspect(container: &str, format: &str) -> String {
    let d = docker(&["inspect", "-f", format, container]);
    d.succeeds();
    d.stdout.trim().to_string()
}

pub(crate) fn running(container: &str) -> bool {
    inspect(container, "{{.State.Running}}") == "true"
}

fn started_at(container: &str) -> String {
    inspect(container, "{{.State.StartedAt}}")
}

fn mountpoint(volume: &str) -> String {
    let d = docker(&["volume", "inspect", "-f", "{{.Mountpoint}}", volume]);
    d.succeeds();
    d.stdout.trim().to_string()
}

/// One service `app` backing up `volumes` to the local destination, with
/// `extra` lines in its config table.
fn service(s: &Scenario, volumes: &[&str], extra: &str) {
    let vols: Vec<String> = volumes.iter().map(|v| format!("\"{v}\"")).collect();
    s.simple(&format!(
        "[services.app]\ntargets = [\"local\"]\n\n[services.app.config]\nvolumes = [{}]\ndocker_helper_image = \"{IMAGE}\"\n{extra}\n",
        vols.join(", ")
    ));
}

/// restic's `restore` of the newest snapshot, then a copy of the volume's
/// folder from it into `into` (a fresh volume).
fn restore_direct(s: &Scenario, objs: &Objects, from: &str, into: &str) {
    let target = s.path("restored");
    s.restic(
        "repo/app",
        &["restore", "latest", "--target", &target.to_string_lossy()],
    )
    .succeeds();
    let inner = target.join(mountpoint(from).trim_start_matches('/'));
    docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        &format!("{}:/src:ro", inner.display()),
        "-v",
        &format!("{into}:/data"),
        IMAGE,
        "sh",
        "-c",
        "cp -a /src/. /data/",
    ])
    .succeeds();
    let _ = objs;
}

#[test]
fn volume_backed_up_with_its_container_stopped_then_restored_into_a_fresh_volume() {
    let Some((mut objs, vol, app)) = Objects::with_app(100, 20) else {
        return;
    };
    let before = started_at(&app);
    let s = Scenario::new();
    service(&s, &[&vol], &format!("stop_containers = [\"{app}\"]"));
    s.run(&["setup"]).succeeds();

    let d = s.run(&["run", "--json"]);
    d.succeeds();
    let v = d.json();
    let svc = &v["services"][0];
    assert_eq!(svc["containers_stopped"], serde_json::json!([app]));
    assert!(svc["containers_stopped_ms"].as_u64().is_some(), "{svc}");
    // Stopped and started again: running, with a new start time, and the
    // snapshot was taken before the restart (one start marker in it, two
    // on disk now).
    assert!(running(&app), "the container runs again after the backup");
    assert_ne!(started_at(&app), before, "the container was restarted");
    let mp = mountpoint(&vol);
    let snaps = s.snapshots("repo/app");
    assert_eq!(snaps.len(), 1);
    assert_eq!(snaps[0]["paths"], serde_json::json!([mp]));
    let starts = s.restic("repo/app", &["dump", "latest", &format!("{mp}/starts")]);
    starts.succeeds();
    assert_eq!(
        starts.stdout.lines().count(),
        1,
        "snapshot taken while stopped"
    );
    assert_eq!(objs.sh(&vol, "cat /data/starts").lines().count(), 2);
    let log = s.history().query("SELECT log_file FROM runs");
    let text = std::fs::read_to_string(log[0].trim()).unwrap_or_default();
    assert!(
        text.contains(&format!("stopped containers: `{app}`")),
        "{text}"
    );
    assert!(text.contains("started containers again"), "{text}");

    // 1% of the data changes; the second snapshot adds about that much.
    objs.sh(
        &vol,
        "dd if=/dev/urandom of=/data/f7 bs=1024 count=20 2>/dev/null",
    );
    let d = s.run(&["run", "--json"]);
    d.succeeds();
    let t = &d.json()["services"][0]["targets"][0];
    assert_eq!(t["files_changed"].as_u64(), Some(2), "f7 and starts: {t}");
    let added = t["bytes_added"].as_u64().unwrap_or(u64::MAX);
    assert!(
        added < 100 * 1024,
        "second backup added {added} bytes for a 20 KiB change"
    );

    let fresh = objs.empty_volume();
    restore_direct(&s, &objs, &vol, &fresh);
    assert_eq!(objs.checksums(&fresh), objs.checksums(&vol));
    assert!(objs.checksums(&vol).lines().count() >= 101);
}

#[test]
fn stream_mode_backs_up_a_tar_through_a_helper_container_and_restores_it() {
    let Some((mut objs, vol, app)) = Objects::with_app(80, 100) else {
        return;
    };
    let s = Scenario::new();
    service(
        &s,
        &[&vol],
        &format!("volume_mode = \"stream\"\nstop_containers = [\"{app}\"]"),
    );
    s.run(&["setup"]).succeeds();
    let d = s.run(&["run", "--json"]);
    d.succeeds();
    let t = &d.json()["services"][0]["targets"][0];
    assert_eq!(t["volume_snapshots"][0]["volume"], vol.as_str(), "{t}");
    assert!(running(&app));
    let snaps = s.snapshots("repo/app");
    assert_eq!(snaps.len(), 1, "only the volume's snapshot: {snaps:?}");
    let name = format!("/volumes/{vol}.tar");
    assert_eq!(snaps[0]["paths"], serde_json::json!([name]));
    let tags = snaps[0]["tags"].to_string();
    assert!(tags.contains(&format!("volume:{vol}")), "{tags}");
    assert!(tags.contains("service:app"), "{tags}");
    // No helper container is left behind.
    let left = docker(&[
        "ps",
        "-aq",
        "--filter",
        &format!("label=restic-manager.helper={vol}"),
    ]);
    assert_eq!(
        left.stdout.trim(),
        "",
        "helper containers left: {}",
        left.stdout
    );

    // Uncompressed tar: a second run after a small change adds little.
    // restic's chunks average 1 MiB, so a change costs a chunk or two; a
    // compressed archive would cost all 8 MiB again.
    objs.sh(
        &vol,
        "dd if=/dev/urandom of=/data/f3 bs=1024 count=100 2>/dev/null",
    );
    let d = s.run(&["run", "--json"]);
    d.succeeds();
    let added = d.json()["services"][0]["targets"][0]["bytes_added"]
        .as_u64()
        .unwrap_or(u64::MAX);
    assert!(
        added < 4 * 1024 * 1024,
        "second streamed backup of 8 MiB added {added} bytes"
    );

    // Restore: the tar from the snapshot, extracted into a fresh volume.
    let fresh = objs.empty_volume();
    let mut dump = s
        .restic_command("repo/app")
        .args(["dump", "latest", &name])
        .stdout(Stdio::piped())
        .spawn()
        .expect("restic dump");
    let stdout = dump.stdout.take().expect("no stdout");
    let ok = Command::new("docker")
        .args(["run", "--rm", "-i", "--network", "none", "-v"])
        .arg(format!("{fresh}:/data"))
        .args([IMAGE, "tar", "-x", "-f", "-", "-C", "/data"])
        .stdin(stdout)
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "tar -x of the dumped volume");
    assert!(dump.wait().is_ok_and(|s| s.success()));
    assert_eq!(objs.checksums(&fresh), objs.checksums(&vol));
}

#[test]
fn containers_come_back_after_a_failing_backup() {
    let Some((_objs, vol, app)) = Objects::with_app(3, 4) else {
        return;
    };
    let before = started_at(&app);
    let s = Scenario::new();
    service(&s, &[&vol], &format!("stop_containers = [\"{app}\"]"));
    s.run(&["setup"]).succeeds();
    // The destination's repository disappears (a disk that is not mounted).
    std::fs::remove_dir_all(s.path("repo")).unwrap();
    let d = s.run(&["run", "--json"]);
    d.code(1);
    let v = d.json();
    assert_eq!(v["services"][0]["error_class"], "repository_missing");
    assert!(running(&app), "the container was started again");
    assert_ne!(
        started_at(&app),
        before,
        "it had been stopped for the backup"
    );
}

/// A TCP server that accepts connections and never answers: a REST
/// destination that hangs, so the backup is still running when the signal
/// comes. (Its connect check is switched off in the config: it would
/// report the destination unreachable before any container is stopped.)
fn black_hole() -> (TcpListener, u16) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().map_or(0, |a| a.port());
    let l2 = l.try_clone().expect("clone");
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for c in l2.incoming().flatten() {
            held.push(c);
        }
    });
    (l, port)
}

/// `restic-manager run` in the background backing up `app`'s volume to a
/// destination that never answers, killed (SIGKILL) if the test fails.
struct Hanging {
    child: Option<Child>,
    _server: TcpListener,
    s: Scenario,
}

impl Hanging {
    /// Starts the run and waits until `app` is stopped.
    fn start(vol: &str, app: &str) -> Hanging {
        let h = Hanging::spawn(vol, app);
        wait_until(
            "the container to be stopped for the backup",
            Duration::from_secs(30),
            || !running(app),
        );
        h
    }

    /// Starts the run.
    fn spawn(vol: &str, app: &str) -> Hanging {
        let (server, port) = black_hole();
        let s = Scenario::new()
            .file("pw", "test-password\n")
            .destination(
                "hang",
                &format!(
                    "type = \"rest\"\nurl = \"rest:http://127.0.0.1:{port}/\"\nconnect_timeout_seconds = 0"
                ),
            )
            .service("app", |a| {
                a.targets(&["hang"]).config(&format!(
                    "volumes = [\"{vol}\"]\nstop_containers = [\"{app}\"]"
                ))
            });
        let child = s
            .command()
            .args(["run", "--json"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        Hanging {
            child: Some(child),
            _server: server,
            s,
        }
    }

    fn term(&self) {
        let pid = self.child.as_ref().map_or(0, Child::id);
        let ok = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "kill -TERM {pid}");
    }

    /// Waits for the process to exit (at most 20 s).
    fn finish(mut self) -> Done {
        let mut child = self.child.take().expect("finished");
        let start = Instant::now();
        while matches!(child.try_wait(), Ok(None)) && start.elapsed() < Duration::from_secs(20) {
            std::thread::sleep(Duration::from_millis(50));
        }
        if matches!(child.try_wait(), Ok(None)) {
            let _ = child.kill();
            let out = child.wait_with_output().map(Done::from);
            panic!("restic-manager did not exit within 20 s: {out:?}");
        }
        Done::from(child.wait_with_output().expect("wait"))
    }
}

impl Drop for Hanging {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[test]
fn sigterm_during_the_backup_starts_the_containers_again() {
    let Some((objs, vol, app)) = Objects::with_app(3, 4) else {
        return;
    };
    let run = Hanging::start(&vol, &app);
    std::thread::sleep(Duration::from_millis(300));
    run.term();
    // restic is stopped and the containers start at once, even while the
    // manager still cleans up on the hanging destination.
    wait_until(
        "the container to run again after SIGTERM",
        Duration::from_secs(15),
        || running(&app),
    );
    assert_eq!(
        objs.sh(&vol, "cat /data/starts").lines().count(),
        2,
        "started again exactly once"
    );
    // The impatient second signal exits at once.
    run.term();
    let d = run.finish();
    d.code(128 + 15);
    assert!(running(&app));
}

#[test]
fn two_quick_signals_exit_at_once_with_the_containers_running() {
    let Some((_objs, vol, app)) = Objects::with_app(3, 4) else {
        return;
    };
    let run = Hanging::start(&vol, &app);
    run.term();
    // Two signals closer together than the manager looks are one signal.
    std::thread::sleep(Duration::from_millis(300));
    run.term();
    let s_log = run.s.path("state");
    let d = run.finish();
    d.code(128 + 15);
    assert!(
        running(&app),
        "the container runs after the manager exited ({})",
        s_log.display()
    );
}

#[test]
fn a_missing_volume_is_an_error_listing_the_existing_ones() {
    let Some(mut objs) = Objects::if_engine() else {
        return;
    };
    let vol = objs.volume(1, 1);
    let s = Scenario::new();
    let wrong = format!("{vol}-typo");
    service(&s, &[&wrong], "");
    s.run(&["setup"]).succeeds();
    let d = s.run(&["run", "--json"]);
    d.code(1);
    let msg = d.service_error("source_missing");
    assert!(
        msg.starts_with(&format!(
            "Docker volume `{wrong}` does not exist; existing volumes: "
        )),
        "{msg}"
    );
    assert!(msg.contains(&format!("`{vol}`")), "{msg}");
    assert!(s.snapshots("repo/app").is_empty());
}

#[test]
fn an_unknown_container_is_an_error_and_nothing_is_stopped() {
    let Some((_objs, vol, app)) = Objects::with_app(1, 1) else {
        return;
    };
    let before = started_at(&app);
    let s = Scenario::new();
    service(
        &s,
        &[&vol],
        &format!(
            "stop_containers = [\"{app}\", \"no-such-container-{}\"]",
            std::process::id()
        ),
    );
    s.run(&["setup"]).succeeds();
    let d = s.run(&["run", "--json"]);
    d.code(1);
    let msg = d.service_error("container_missing");
    assert!(msg.contains("container `no-such-container-"), "{msg}");
    assert!(
        msg.contains("does not exist; existing containers: "),
        "{msg}"
    );
    assert!(msg.contains(&format!("`{app}`")), "{msg}");
    assert_eq!(started_at(&app), before, "nothing was stopped");
    assert!(s.snapshots("repo/app").is_empty());
}

#[test]
fn a_dead_docker_host_is_classified_and_volumes_fall_back_to_their_folder() {
    let Some((_objs, vol, app)) = Objects::with_app(2, 1) else {
        return;
    };
    let s = Scenario::new();
    let dead = format!("unix://{}", s.path("no-docker.sock").display());

    // Containers to stop: without the engine, the backup must not run.
    service(&s, &[&vol], &format!("stop_containers = [\"{app}\"]"));
    s.run(&["setup"]).succeeds();
    let d = s.run_env(&[("DOCKER_HOST", &dead)], &["run", "--json"]);
    d.code(1);
    let msg = d.service_error("docker_unavailable");
    assert!(
        msg.starts_with(&format!("the Docker engine at `{dead}` cannot be reached")),
        "{msg}"
    );
    assert!(msg.contains("start Docker"), "{msg}");
    assert!(s.snapshots("repo/app").is_empty());

    // Volumes only: backed up from Docker's default folder, with a warning.
    service(&s, &[&vol], "");
    let d = s.run_env(&[("DOCKER_HOST", &dead)], &["run", "--json"]);
    d.code(3);
    let svc = &d.json()["services"][0];
    let warning = svc["warnings"][0].as_str().unwrap_or_default();
    assert!(warning.contains("cannot be reached"), "{warning}");
    assert!(
        warning.contains("backed up the volumes from their default folders"),
        "{warning}"
    );
    let snaps = s.snapshots("repo/app");
    assert_eq!(snaps.len(), 1);
    assert_eq!(
        snaps[0]["paths"],
        serde_json::json!([format!("/var/lib/docker/volumes/{vol}/_data")])
    );
}

#[test]
fn a_compose_projects_running_containers_are_stopped_and_started_again() {
    let Some(mut objs) = Objects::if_engine() else {
        return;
    };
    let vol = objs.volume(2, 1);
    let project = unique("proj");
    // Two containers of the project (labelled as `docker compose` does),
    // one running and one already stopped, plus one outside it.
    let mut members = Vec::new();
    for _ in 0..2 {
        let c = unique("svc");
        let label = format!("com.docker.compose.project={project}");
        let mount = format!("{vol}:/data");
        detached(&c, &["--label", &label, "-v", &mount], IDLE).succeeds();
        objs.containers.push(c.clone());
        members.push(c);
    }
    docker(&["stop", &members[1]]).succeeds();
    let outsider = objs.app(&vol);
    let outsider_started = started_at(&outsider);
    let first_started = started_at(&members[0]);

    let s = Scenario::new();
    service(
        &s,
        &[&vol],
        &format!("stop_compose_project = \"{project}\""),
    );
    s.run(&["setup"]).succeeds();
    let d = s.run(&["run", "--json"]);
    d.succeeds();
    let svc = &d.json()["services"][0];
    assert_eq!(svc["containers_stopped"], serde_json::json!([members[0]]));
    assert!(running(&members[0]));
    assert_ne!(started_at(&members[0]), first_started, "it was restarted");
    assert!(!running(&members[1]), "a stopped member stays stopped");
    assert_eq!(
        started_at(&outsider),
        outsider_started,
        "others are untouched"
    );
    // Without --json, the downtime is on the summary.
    s.run(&["run"])
        .succeeds()
        .stdout_has(&format!("app: containers {} were stopped for ", members[0]));

    // A project without containers: a warning, and the backup still runs.
    service(
        &s,
        &[&vol],
        "stop_compose_project = \"no-such-project-rmt\"",
    );
    let d = s.run(&["run", "--json"]);
    d.code(3);
    let w = d.json()["services"][0]["warnings"][0]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        w.starts_with("no container belongs to compose project `no-such-project-rmt`"),
        "{w}"
    );
    assert_eq!(s.snapshots("repo/app").len(), 3);
}

#[test]
fn docker_keys_are_validated_without_asking_the_engine() {
    let s = Scenario::new();
    s.simple(
        "[services.app]\ntargets = [\"local\"]\n\n[services.app.config]\nvolumes = [\"v\"]\nvolume_mode = \"tarball\"\nstop_containers = [\"\"]\nstop_compose_project = \"\"\n",
    );
    let d = s.run(&["validate"]);
    d.code(2);
    d.stderr_has("`volume_mode` must be \"auto\", \"direct\" or \"stream\", not `tarball`");
    d.stderr_has("empty container name in `stop_containers`");
    d.stderr_has("`stop_compose_project` is empty");
    s.simple(
        "[services.app]\ntargets = [\"local\"]\n\n[services.app.config]\nbackup_script = \"/bin/true\"\nstop_containers = [\"db\"]\n",
    );
    s.run(&["validate"])
        .code(2)
        .stderr_has("do not work with a legacy `backup_script`");
}

#[test]
fn no_access_to_the_docker_socket_is_a_permission_error() {
    if !engine() {
        return;
    }
    // Only root can switch to another user; CI and this machine run as root.
    if !require_component("root (to run the manager as `nobody`)", root()) {
        return;
    }
    let mut objs = Objects::default();
    let vol = objs.volume(1, 1);
    let s = Scenario::new();
    service(&s, &[&vol], "volume_mode = \"stream\"");
    s.run(&["setup"]).succeeds();
    // `nobody` may use the scenario's files, but not the Docker socket
    // (root:docker, 0660).
    let ok = Command::new("chmod")
        .args(["-R", "a+rwX"])
        .arg(s.root())
        .status()
        .is_ok_and(|st| st.success());
    assert!(ok, "chmod");
    // The same command as `s.command()`, run through setpriv as nobody.
    let base = s.command();
    let mut cmd = Command::new("setpriv");
    cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(base.get_program())
        .args(["run", "--json"])
        .env_clear()
        .current_dir(s.root());
    for (k, v) in base.get_envs() {
        if let Some(v) = v {
            cmd.env(k, v);
        }
    }
    let d = Done::from(cmd.output().expect("setpriv"));
    d.code(1);
    let msg = d.service_error("permission_denied");
    assert!(
        msg.starts_with("permission denied on the Docker socket `unix:///var/run/docker.sock`; run as root or add this user to the `docker` group"),
        "{msg}"
    );
}

#[test]
fn a_second_signal_while_docker_is_still_stopping_a_container_starts_it_after_the_stop() {
    let Some(mut objs) = Objects::if_engine() else {
        return;
    };
    let vol = objs.volume(1, 1);
    // An application that takes 3 s to shut down, and says when it starts to.
    let app = unique("slow");
    detached(
        &app,
        &["-v", &format!("{vol}:/data")],
        "trap 'echo stopping > /data/stopping; sleep 3; exit 0' TERM; while :; do sleep 1 & wait $!; done",
    )
    .succeeds();
    objs.containers.push(app.clone());
    let marker = std::path::PathBuf::from(mountpoint(&vol)).join("stopping");
    let run = Hanging::spawn(&vol, &app);
    wait_until("the stop to begin", Duration::from_secs(30), || {
        marker.exists()
    });
    // The user insists while Docker is still stopping it: the manager
    // exits at once, but only after starting it again once the stop is done.
    run.term();
    // Apart enough to be two signals, well within the 3 s stop.
    std::thread::sleep(Duration::from_millis(800));
    run.term();
    let d = run.finish();
    d.code(128 + 15);
    // Had it been started while still stopping, the stop would have won:
    // look after that stop would have ended.
    std::thread::sleep(Duration::from_secs(4));
    assert!(running(&app), "the container runs after the manager exited");
    assert_eq!(
        objs.sh(&vol, "cat /data/stopping").trim(),
        "stopping",
        "it had been asked to stop"
    );
}

#[test]
fn a_helper_image_that_cannot_be_pulled_names_the_setting_to_fix() {
    let Some(mut objs) = Objects::if_engine() else {
        return;
    };
    let vol = objs.volume(1, 1);
    let image = format!("rmt-no-such-image-{}:1", std::process::id());
    let s = Scenario::new();
    s.simple(&format!(
        "[services.app]\ntargets = [\"local\"]\n\n[services.app.config]\nvolumes = [\"{vol}\"]\nvolume_mode = \"stream\"\ndocker_helper_image = \"{image}\"\n"
    ));
    s.run(&["setup"]).succeeds();
    let d = s.run(&["run", "--json"]);
    d.code(1);
    let msg = d.service_error("docker_failed");
    assert!(
        msg.contains(&format!(
            "helper image `{image}` is not on this host and could not be pulled"
        )),
        "{msg}"
    );
    assert!(msg.contains("set `docker_helper_image`"), "{msg}");
    assert!(s.snapshots("repo/app").is_empty(), "no snapshot");
}
