//! The managed restic binary against a local release mirror: a tiny HTTP
//! server in the test serves a releases API document and a mirror built
//! from Debian's restic (bzip2-compressed, with a real `SHA256SUMS` made by
//! `sha256sum`). No internet.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use crate::harness::Scenario;

/// How the server answers one path instead of serving the file.
#[derive(Clone)]
enum Trick {
    /// Accept the request and never answer (until the server stops).
    Hang,
    /// Announce the file's length, send half of it, close.
    Truncate,
}

/// Serves files below `root`; stops when dropped. Bounded: at most 200
/// connections, and a hanging answer waits at most 60 s.
pub(crate) struct Mirror {
    addr: SocketAddr,
    root: PathBuf,
    tricks: Arc<Mutex<HashMap<String, Trick>>>,
    stop: Arc<AtomicBool>,
}

impl Mirror {
    pub(crate) fn start(root: &Path) -> Mirror {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("local_addr");
        let tricks: Arc<Mutex<HashMap<String, Trick>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (root2, tricks2, stop2) = (root.to_path_buf(), tricks.clone(), stop.clone());
        thread::spawn(move || {
            for conn in listener.incoming().take(200) {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (root, tricks, stop) = (root2.clone(), tricks2.clone(), stop2.clone());
                thread::spawn(move || serve(conn, &root, &tricks, &stop));
            }
        });
        Mirror {
            addr,
            root: root.to_path_buf(),
            tricks,
            stop,
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn trick(&self, path: &str, t: Trick) {
        if let Ok(mut m) = self.tricks.lock() {
            m.insert(path.to_string(), t);
        }
    }

    /// The environment that points restic-manager at this mirror.
    pub(crate) fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("RESTIC_MANAGER_RELEASE_API", format!("{}/api", self.url())),
            (
                "RESTIC_MANAGER_DOWNLOAD_BASE",
                format!("{}/download", self.url()),
            ),
            ("RESTIC_MANAGER_HTTP_TIMEOUT_SECONDS", "10".to_string()),
        ]
    }

    /// Publishes `binary` as release `v`: bzip2 archive plus SHA256SUMS.
    pub(crate) fn publish(&self, v: &str, binary: &Path) {
        let dir = self.root.join(format!("download/v{v}"));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let asset = asset(v);
        std::fs::write(dir.join(&asset), compressed(binary)).expect("write");
        let sums = Command::new("sha256sum")
            .arg(&asset)
            .current_dir(&dir)
            .output()
            .expect("sha256sum");
        assert!(sums.status.success(), "sha256sum failed");
        std::fs::write(dir.join("SHA256SUMS"), &sums.stdout).unwrap();
    }

    /// The releases API names `v` as the latest release.
    pub(crate) fn latest(&self, v: &str) {
        let dir = self.root.join("api/repos/restic/restic/releases");
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::write(
            dir.join("latest"),
            format!(r#"{{"tag_name": "v{v}", "name": "restic {v}", "assets": []}}"#),
        )
        .expect("write");
    }
}

impl Drop for Mirror {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.addr);
    }
}

fn serve(
    mut conn: TcpStream,
    root: &Path,
    tricks: &Mutex<HashMap<String, Trick>>,
    stop: &AtomicBool,
) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
    let mut req = Vec::new();
    let mut buf = [0u8; 1024];
    while !req.windows(4).any(|w| w == b"\r\n\r\n") {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => req.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&req);
    let path = text
        .split_whitespace()
        .nth(1)
        .unwrap_or("/")
        .trim_start_matches('/')
        .to_string();
    let trick = tricks.lock().ok().and_then(|m| m.get(&path).cloned());
    if let Some(Trick::Hang) = trick {
        let start = Instant::now();
        while !stop.load(Ordering::SeqCst) && start.elapsed() < Duration::from_secs(60) {
            thread::sleep(Duration::from_millis(50));
        }
        return;
    }
    let file = root.join(&path);
    let body = if path.contains("..") {
        None
    } else {
        std::fs::read(&file).ok()
    };
    let Some(body) = body else {
        let _ = conn.write_all(
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\nConnection: close\r\n\r\nnot found",
        );
        return;
    };
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = conn.write_all(head.as_bytes());
    let send = match trick {
        Some(Trick::Truncate) => &body[..body.len() / 2],
        _ => &body[..],
    };
    let _ = conn.write_all(send);
    let _ = conn.flush();
}

/// `bzip2 -c binary`, remembered per test process: compressing Debian's
/// restic takes about three seconds.
fn compressed(binary: &Path) -> Vec<u8> {
    static CACHE: OnceLock<Mutex<HashMap<PathBuf, Vec<u8>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Mutex::default);
    if let Some(b) = cache.lock().ok().and_then(|c| c.get(binary).cloned()) {
        return b;
    }
    let out = Command::new("bzip2")
        .arg("-c")
        .arg(binary)
        .output()
        .unwrap_or_else(|e| panic!("bzip2 is not installed ({e}); `apt-get install bzip2`"));
    assert!(out.status.success(), "bzip2 failed");
    if let Ok(mut c) = cache.lock() {
        c.insert(binary.to_path_buf(), out.stdout.clone());
    }
    out.stdout
}

fn arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        other => panic!("no restic asset name known for `{other}` in this test"),
    }
}

fn asset(v: &str) -> String {
    format!("restic_{v}_linux_{}.bz2", arch())
}

/// Debian's restic, the one on PATH.
pub(crate) fn system_restic() -> PathBuf {
    let out = Command::new("sh")
        .args(["-c", "command -v restic"])
        .output()
        .expect("sh");
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

/// A "newer release": answers `version` as `v`, passes the rest to restic.
fn fake_release(s: &Scenario, v: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let p = s.write(
        &format!("fake/restic-{v}"),
        &format!(
            "#!/bin/sh\nif [ \"$1\" = version ]; then echo \"restic {v} compiled with go1.23.3 on linux/{}\"; exit 0; fi\nexec {} \"$@\"\n",
            arch(),
            system_restic().display()
        ),
    );
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    p
}

/// A scenario with a mirror holding Debian's restic as 0.14.0.
fn setup() -> (Scenario, Mirror) {
    let s = Scenario::new();
    let m = Mirror::start(&s.path("mirror"));
    m.publish("0.14.0", &system_restic());
    m.latest("0.14.0");
    (s, m)
}

fn run(s: &Scenario, m: &Mirror, args: &[&str]) -> crate::harness::Done {
    let env = m.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    s.run_env(&env, args)
}

fn bin(s: &Scenario) -> PathBuf {
    s.path("data/restic-manager/bin")
}

fn link_target(s: &Scenario) -> String {
    std::fs::read_link(bin(s).join("restic"))
        .map(|p| p.display().to_string())
        .unwrap_or_else(|e| format!("<no link: {e}>"))
}

/// Everything in the bin folder, sorted (temporary files would show here).
fn bin_files(s: &Scenario) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(bin(s))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn installs_a_verified_release_without_config_and_run_uses_it() {
    use std::os::unix::fs::PermissionsExt;
    let (s, m) = setup();
    assert!(!s.config_path().exists());
    run(&s, &m, &["setup-restic", "--version", "0.14.0"])
        .succeeds()
        .stdout_has("installed restic 0.14.0 at `")
        .stdout_has("(SHA256 verified)");
    assert_eq!(link_target(&s), "restic-0.14.0");
    assert_eq!(bin_files(&s), ["restic", "restic-0.14.0"]);
    let mode = std::fs::metadata(bin(&s).join("restic-0.14.0"))
        .map(|m| m.permissions().mode() & 0o777)
        .unwrap_or(0);
    assert_eq!(mode, 0o755);

    // A second run has nothing to do and downloads nothing.
    run(&s, &m, &["setup-restic", "--version", "0.14.0"])
        .succeeds()
        .stdout_has("restic 0.14.0 is already installed and in use; nothing to do");

    s.simple("[services.docs]\ntargets = [\"local\"]\n[services.docs.config]\npaths = [\"{root}/docs\"]\n");
    s.write("docs/a.txt", "hello");
    s.write("pw", "secret");
    let v = s.run(&["restic-version", "--json"]);
    let j = v.succeeds().json();
    assert_eq!(j["source"], "managed", "{j}");
    assert_eq!(j["version"], "0.14.0");
    assert_eq!(
        j["path"].as_str(),
        Some(bin(&s).join("restic").to_string_lossy().as_ref())
    );
    assert_eq!(j["managed"]["current"], "0.14.0");
    s.run(&["setup"]).succeeds();
    s.run(&["-v", "run"])
        .succeeds()
        .stderr_has("(from managed)");
    assert_eq!(s.snapshots("repo/docs").len(), 1);

    // `use_system_restic` goes back to the one on PATH.
    s.config(&format!(
        "{}\n",
        std::fs::read_to_string(s.config_path())
            .unwrap_or_default()
            .replace("[global]\n", "[global]\nuse_system_restic = true\n")
    ));
    let j = s.run(&["restic-version", "--json"]).succeeds().json();
    assert_eq!(j["source"], "path", "{j}");
    crate::harness::str_has(&j["why"], "`use_system_restic = true`");
}

#[test]
fn updates_to_a_newer_release_and_keeps_the_old_one() {
    let (s, m) = setup();
    // The bases come from the configuration file this time.
    s.config(&format!(
        "[global]\nrestic_password_file = \"{{root}}/pw\"\nrestic_release_api = \"{}/api\"\nrestic_download_base = \"{}/download/\"\n",
        m.url(),
        m.url()
    ));
    s.run(&["setup-restic", "--version", "0.14.0"]).succeeds();
    m.publish("0.99.0", &fake_release(&s, "0.99.0"));
    m.latest("0.99.0");

    s.run(&["update-restic", "--check"]).code(3).stdout_has(
        "restic 0.99.0 is available (managed: 0.14.0); run `restic-manager update-restic`",
    );
    s.run(&["update-restic"])
        .succeeds()
        .stdout_has("installed restic 0.99.0")
        .stdout_has("restic 0.14.0 stays installed at `");
    assert_eq!(link_target(&s), "restic-0.99.0");
    assert_eq!(bin_files(&s), ["restic", "restic-0.14.0", "restic-0.99.0"]);
    let j = s.run(&["restic-version", "--json"]).succeeds().json();
    assert_eq!(j["version"], "0.99.0", "{j}");
    assert_eq!(j["source"], "managed");
    assert_eq!(
        j["managed"]["installed"],
        serde_json::json!(["0.14.0", "0.99.0"])
    );
    s.run(&["update-restic", "--check"])
        .succeeds()
        .stdout_has("the managed restic 0.99.0 is up to date");
    s.run(&["update-restic"])
        .succeeds()
        .stdout_has("nothing to do");

    // Going back to an installed version switches the link, no download.
    s.run(&["setup-restic", "--version", "0.14.0"])
        .succeeds()
        .stdout_has("restic 0.14.0 was already installed; switched to it");
    assert_eq!(link_target(&s), "restic-0.14.0");
}

#[test]
fn tampered_archive_installs_nothing_and_keeps_the_old_restic() {
    let (s, m) = setup();
    run(&s, &m, &["setup-restic"]).succeeds();
    assert_eq!(link_target(&s), "restic-0.14.0");
    m.publish("0.99.0", &fake_release(&s, "0.99.0"));
    m.latest("0.99.0");
    let archive = s.path(&format!("mirror/download/v0.99.0/{}", asset("0.99.0")));
    let mut bytes = std::fs::read(&archive).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&archive, bytes).unwrap();

    run(&s, &m, &["update-restic"])
        .code(1)
        .stderr_has(&format!(
            "error: checksum mismatch for `{}`: `SHA256SUMS` says ",
            asset("0.99.0")
        ))
        .stderr_has("; nothing was installed; the download or the mirror is corrupt, try again");
    assert_eq!(link_target(&s), "restic-0.14.0");
    assert_eq!(bin_files(&s), ["restic", "restic-0.14.0"]);
    let j = run(&s, &m, &["restic-version", "--json"]).succeeds().json();
    assert_eq!(j["version"], "0.14.0", "{j}");
    assert_eq!(j["source"], "managed");
}

#[test]
fn truncated_download_installs_nothing() {
    let (s, m) = setup();
    m.trick(
        &format!("download/v0.14.0/{}", asset("0.14.0")),
        Trick::Truncate,
    );
    run(&s, &m, &["setup-restic", "--version", "0.14.0"])
        .code(1)
        .stderr_has("was cut short (")
        .stderr_has("nothing was installed; try again");
    assert!(bin_files(&s).is_empty(), "{:?}", bin_files(&s));
}

#[test]
fn missing_release_is_a_404_that_installs_nothing() {
    let (s, m) = setup();
    run(&s, &m, &["setup-restic", "--version", "0.15.0"])
        .code(1)
        .stderr_has(&format!(
            "error: `{}/download/v0.15.0/SHA256SUMS` does not exist (HTTP 404); nothing was installed; check the version, or the mirror",
            m.url()
        ));
    assert!(bin_files(&s).is_empty());
    // And a version we refuse is a usage error before any download.
    run(&s, &m, &["setup-restic", "--version", "0.9.6"])
        .code(2)
        .stderr_has("error: restic 0.9.6 is too old; restic-manager needs 0.14.0 or newer");
}

#[test]
fn silent_server_times_out() {
    let (s, m) = setup();
    m.trick("api/repos/restic/restic/releases/latest", Trick::Hang);
    let start = Instant::now();
    let env = m.env();
    let mut env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    env.push(("RESTIC_MANAGER_HTTP_TIMEOUT_SECONDS", "1"));
    s.run_env(&env, &["update-restic"])
        .code(1)
        .stderr_has(&format!(
            "error: no answer from `{}/api/repos/restic/restic/releases/latest` within 1 s; nothing was installed",
            m.url()
        ))
        .stderr_has("raise `RESTIC_MANAGER_HTTP_TIMEOUT_SECONDS`");
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "{:?}",
        start.elapsed()
    );
    assert!(bin_files(&s).is_empty());
}
