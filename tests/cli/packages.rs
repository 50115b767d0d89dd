//! Install without a Rust toolchain, proven on clean machines: the `.deb`
//! and the release tarball of `scripts/build-release.sh`, installed into
//! clean Debian 12 and 13 containers (`scripts/clean-machines.sh`:
//! debootstrap + `docker import`, no registry), where an unprivileged user
//! runs the quickstart flow, the dashboard is started with the shipped
//! systemd unit's command, and (package) `apt-get purge` leaves the user's
//! configuration, password and repositories alone.
//!
//! The work inside the container is `tests/clean-machine/flow.sh`; these
//! tests assert on what it prints. The release build and the artifacts are
//! made once per test process (build-release.sh reuses artifacts that are
//! newer than everything they are made from).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::harness::{Done, require_component, root};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// A clean machine: its image and the restic its archive ships.
struct Machine {
    image: &'static str,
    restic: &'static str,
}

const DEBIAN_12: Machine = Machine {
    image: "restic-manager-test/debian-12:clean",
    restic: "restic 0.14.0",
};
const DEBIAN_13: Machine = Machine {
    image: "restic-manager-test/debian-13:clean",
    restic: "restic 0.18.0",
};

fn run_script(script: &str) -> Done {
    let out = Command::new("bash")
        .arg(Path::new(ROOT).join(script))
        .current_dir(ROOT)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {script}: {e}"));
    Done::from(out)
}

/// Why this machine cannot run the clean-machine tests, if it cannot:
/// they need the Docker engine and root (debootstrap).
fn missing_component() -> Option<String> {
    match Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .output()
    {
        Ok(o) if o.status.success() => {}
        Ok(o) => {
            return Some(format!(
                "the Docker engine does not answer: {}",
                String::from_utf8_lossy(&o.stderr).trim()
            ));
        }
        Err(e) => return Some(format!("the docker CLI is missing: {e}")),
    }
    root().err().map(|why| format!("{why} (debootstrap)"))
}

/// The artifacts folder, with the images prepared; `None` (skip) only
/// outside CI when a component is missing.
fn prepared() -> Option<PathBuf> {
    static READY: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let ready = READY.get_or_init(|| {
        if let Some(why) = missing_component() {
            return Err(why);
        }
        let images = run_script("scripts/clean-machines.sh");
        assert_eq!(
            images.code, 0,
            "scripts/clean-machines.sh failed:\n{}\n{}",
            images.stdout, images.stderr
        );
        let start = Instant::now();
        let build = run_script("scripts/build-release.sh");
        assert_eq!(
            build.code, 0,
            "scripts/build-release.sh failed:\n{}\n{}",
            build.stdout, build.stderr
        );
        eprintln!(
            "build-release.sh: {:.1} s\n{}",
            start.elapsed().as_secs_f64(),
            build.stdout
        );
        Ok(Path::new(ROOT).join("target/release-artifacts"))
    });
    let probe = ready.as_ref().map(|_| ()).map_err(Clone::clone);
    if !require_component("the Docker engine or root (for the clean machines)", probe) {
        return None;
    }
    ready.as_ref().ok().cloned()
}

/// `docker rm -f` of the named container however the test ends.
struct Container(String);

impl Drop for Container {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rm", "-f", &self.0]).output();
    }
}

/// Runs `flow.sh MODE` in a new container of `machine` (default bridge
/// network: apt reaches this machine's Debian mirror), at most 10 minutes.
fn flow(machine: &Machine, mode: &str, artifacts: &Path) -> Done {
    let name = format!(
        "rm-pkg-{mode}-{}-{}",
        std::process::id(),
        machine.image.replace(['/', ':'], "-")
    );
    let _container = Container(name.clone());
    let start = Instant::now();
    let out = Command::new("timeout")
        .arg("600")
        .args(["docker", "run", "--rm", "--name", &name])
        .args(["-e", "RM_PORT=8080"])
        .arg("-v")
        .arg(format!("{}:/artifacts:ro", artifacts.display()))
        .arg("-v")
        .arg(format!("{ROOT}/tests/clean-machine:/flow:ro"))
        .args([machine.image, "bash", "/flow/flow.sh", mode])
        .output()
        .expect("docker run");
    let done = Done::from(out);
    eprintln!(
        "flow.sh {mode} on {}: {:.1} s",
        machine.image,
        start.elapsed().as_secs_f64()
    );
    assert!(
        start.elapsed() < Duration::from_secs(600),
        "flow.sh {mode} on {} timed out",
        machine.image
    );
    assert_eq!(
        done.code, 0,
        "flow.sh {mode} on {} failed:\n--- stdout\n{}\n--- stderr\n{}",
        machine.image, done.stdout, done.stderr
    );
    done
}

/// The values of `RESULT KEY value` lines.
fn results(d: &Done, key: &str) -> Vec<String> {
    let prefix = format!("RESULT {key} ");
    d.stdout
        .lines()
        .filter_map(|l| l.strip_prefix(&prefix).map(str::to_string))
        .collect()
}

fn one(d: &Done, key: &str) -> String {
    let v = results(d, key);
    assert_eq!(
        v.len(),
        1,
        "one `RESULT {key}` line expected:\n{}",
        d.stdout
    );
    v.into_iter().next().unwrap_or_default()
}

fn json(text: &str, what: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{what} is not JSON ({e}): {text}"))
}

/// What every install must show: a machine without a toolchain, the
/// release's restic, the quickstart flow healthy, the restored file equal,
/// and the dashboard answering `/api/status` with the token.
fn check_common(d: &Done, machine: &Machine, mode: &str) {
    assert_eq!(one(d, "toolchain"), "none");
    let restic = one(d, "restic");
    assert!(
        restic.starts_with(machine.restic),
        "{} has `{restic}`",
        machine.image
    );
    assert!(
        one(d, "restic_manager").starts_with("restic-manager "),
        "{}",
        d.stdout
    );
    let status = json(&one(d, "status_json"), "status --json");
    assert_eq!(status[0]["service"], "docs", "{status}");
    assert_eq!(status[0]["state"], "ok", "{status}");
    assert_eq!(status[0]["last_run"]["outcome"], "ok", "{status}");
    assert_eq!(one(d, "restored_identical"), "yes");

    let exec = results(d, "unit_exec");
    let expected = match mode {
        "deb" => "user /usr/bin/restic-manager serve".to_string(),
        _ => "user /home/alice/.local/bin/restic-manager serve".to_string(),
    };
    assert_eq!(exec.first(), Some(&expected), "{}", d.stdout);
    let line = results(d, "api_status_line");
    assert!(
        line.first()
            .is_some_and(|l| l.starts_with("user HTTP/1.") && l.ends_with(" 200 OK")),
        "{line:?}\n{}",
        d.stdout
    );
    let body = results(d, "api_status_body");
    let api = json(
        body.first()
            .and_then(|b| b.strip_prefix("user "))
            .unwrap_or_default(),
        "/api/status",
    );
    assert_eq!(api[0]["service"], "docs", "{api}");
    assert_eq!(api[0]["state"], "ok", "{api}");
    assert_eq!(
        results(d, "serve_exit").first().map(String::as_str),
        Some("user 0"),
        "SIGTERM stops the dashboard cleanly"
    );
    assert!(
        d.stdout.contains(&format!("FLOW OK {mode}")),
        "{}",
        d.stdout
    );
}

fn deb_on(machine: &Machine) {
    let Some(artifacts) = prepared() else { return };
    let d = flow(machine, "deb", &artifacts);
    check_common(&d, machine, "deb");

    let depends = one(&d, "deb_depends");
    assert!(
        depends.split(", ").any(|d| d == "restic (>= 0.14)"),
        "{depends}"
    );
    assert_eq!(
        one(&d, "deb_recommends"),
        "",
        "the package recommends nothing"
    );
    let new = one(&d, "apt_new_packages");
    for p in ["restic-manager", "restic"] {
        assert!(new.split(' ').any(|n| n == p), "apt installed `{new}`");
    }
    let size_kb: u64 = one(&d, "deb_installed_size_kb").parse().unwrap_or(0);
    assert!(
        (1000..40_000).contains(&size_kb),
        "installed size {size_kb} KiB"
    );

    // The system unit's command, as root, for /etc/restic-manager.
    assert_eq!(
        results(&d, "unit_exec").get(1).map(String::as_str),
        Some("root /usr/bin/restic-manager serve")
    );
    let root_line = results(&d, "api_status_line");
    assert!(
        root_line
            .get(1)
            .is_some_and(|l| l.starts_with("root HTTP/1.") && l.ends_with(" 200 OK")),
        "{root_line:?}"
    );
    let root_body = results(&d, "api_status_body");
    let api = json(
        root_body
            .get(1)
            .and_then(|b| b.strip_prefix("root "))
            .unwrap_or_default(),
        "/api/status (system unit)",
    );
    assert_eq!(api[0]["service"], "server", "{api}");
    assert_eq!(
        results(&d, "serve_exit").get(1).map(String::as_str),
        Some("root 0")
    );

    // Purged, and everything of the user's is still there and readable.
    assert_eq!(one(&d, "purged"), "yes");
    let kept = results(&d, "kept");
    for f in [
        "/home/alice/.config/restic-manager/config.toml",
        "/home/alice/.config/restic-manager/restic-password",
        "/home/alice/backups/docs/config",
        "/etc/restic-manager/config.toml",
    ] {
        assert!(kept.iter().any(|k| k == f), "{f} not kept: {kept:?}");
    }
    assert_eq!(one(&d, "snapshots_after_purge"), "1");
}

fn tarball_on(machine: &Machine) {
    let Some(artifacts) = prepared() else { return };
    let d = flow(machine, "tarball", &artifacts);
    check_common(&d, machine, "tarball");
    d.stdout_has("==> installing the release binary `/home/alice/restic-manager-")
        .stdout_has("wrote a starter configuration");
    assert!(
        !d.stdout.contains("building restic-manager") && !d.stderr.contains("cargo"),
        "the tarball install needs no cargo:\n{}\n{}",
        d.stdout,
        d.stderr
    );
}

#[test]
fn deb_installs_runs_and_purges_on_clean_debian_12() {
    deb_on(&DEBIAN_12);
}

#[test]
fn deb_installs_runs_and_purges_on_clean_debian_13() {
    deb_on(&DEBIAN_13);
}

#[test]
fn tarball_installs_and_runs_on_clean_debian_12() {
    tarball_on(&DEBIAN_12);
}

#[test]
fn tarball_installs_and_runs_on_clean_debian_13() {
    tarball_on(&DEBIAN_13);
}
