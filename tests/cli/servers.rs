//! Real servers on loopback for destination tests: sshd (SFTP), moto (S3),
//! rclone's restic REST server. Each is started fresh, owned by its guard,
//! and killed when the guard drops. A server that cannot start fails the
//! test: nothing is skipped.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{Reaped, free_port, venv_bin};

fn wait_for_port(port: u16, child: &mut Child, what: &str, log: &Path) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(30) {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        if let Ok(Some(st)) = child.try_wait() {
            panic!(
                "{what} exited ({st}) before listening; log:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!(
        "{what} did not listen on port {port} within 30 s; log:\n{}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

fn spawn(cmd: &mut Command, log: &Path, what: &str) -> Child {
    let out = std::fs::File::create(log).expect("log file");
    let err = out.try_clone().expect("log file");
    cmd.stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what} ({e}); scripts/test-all.sh installs it"))
}

/// A running server process, killed on drop.
pub struct Server {
    _child: Reaped,
    pub port: u16,
}

/// A private sshd with generated host and client keys.
pub struct Sshd {
    pub server: Server,
    pub user: String,
    pub client_key: PathBuf,
    pub known_hosts: PathBuf,
}

fn run_ok(cmd: &mut Command, what: &str) {
    crate::harness::output_ok(cmd, what);
}

impl Sshd {
    pub fn start(dir: &Path) -> Sshd {
        std::fs::create_dir_all(dir).expect("mkdir");
        for k in ["host_key", "client_key"] {
            run_ok(
                Command::new("ssh-keygen")
                    .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                    .arg(dir.join(k)),
                "ssh-keygen",
            );
        }
        std::fs::copy(dir.join("client_key.pub"), dir.join("authorized_keys")).expect("copy");
        let port = free_port();
        let cfg = format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_key\nAuthorizedKeysFile {d}/authorized_keys\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\nStrictModes no\nUsePAM no\nPidFile {d}/sshd.pid\nSubsystem sftp internal-sftp\n",
            d = dir.display()
        );
        std::fs::write(dir.join("sshd_config"), cfg).expect("write");
        let _ = std::fs::create_dir_all("/run/sshd");
        // `-D -e`: stay in the foreground (the guard owns the process) and
        // log to stderr, which `spawn` sends to the log file. (`-E file`
        // would append to the same file through a second handle.)
        let log = dir.join("sshd.log");
        let mut child = spawn(
            Command::new("/usr/sbin/sshd")
                .args(["-D", "-e", "-f"])
                .arg(dir.join("sshd_config")),
            &log,
            "sshd",
        );
        wait_for_port(port, &mut child, "sshd", &log);
        let host_pub = std::fs::read_to_string(dir.join("host_key.pub")).expect("read");
        let mut parts = host_pub.split_whitespace();
        let line = format!(
            "[127.0.0.1]:{port} {} {}\n",
            parts.next().unwrap_or(""),
            parts.next().unwrap_or("")
        );
        std::fs::write(dir.join("known_hosts"), line).expect("write");
        let user = String::from_utf8_lossy(
            &Command::new("id")
                .arg("-un")
                .output()
                .map(|o| o.stdout)
                .unwrap_or_default(),
        )
        .trim()
        .to_string();
        Sshd {
            server: Server {
                _child: Reaped(child),
                port,
            },
            user,
            client_key: dir.join("client_key"),
            known_hosts: dir.join("known_hosts"),
        }
    }
}

/// The moto S3 server (`moto[server]` from PyPI, installed by
/// scripts/test-all.sh into target/test-venv).
pub fn moto(dir: &Path) -> Server {
    let bin = venv_bin("RM_MOTO_SERVER", "moto_server");
    let port = free_port();
    std::fs::create_dir_all(dir).expect("mkdir");
    let log = dir.join("moto.log");
    let mut child = spawn(
        Command::new(&bin).args(["-H", "127.0.0.1", "-p", &port.to_string()]),
        &log,
        "moto_server",
    );
    wait_for_port(port, &mut child, "moto_server", &log);
    Server {
        _child: Reaped(child),
        port,
    }
}

/// `rclone serve restic` on a folder, optionally with basic auth.
pub fn rclone_rest(dir: &Path, auth: Option<(&str, &str)>) -> Server {
    std::fs::create_dir_all(dir).expect("mkdir");
    let port = free_port();
    let log = dir.with_extension("log");
    let mut cmd = Command::new("rclone");
    cmd.args(["serve", "restic"])
        .arg(dir)
        .args(["--addr", &format!("127.0.0.1:{port}")])
        // Not the user's rclone.conf: the server needs no remotes.
        .env("RCLONE_CONFIG", dir.with_extension("conf"));
    // Credentials through rclone's flag variables (`--user`, `--pass`) so
    // that the server's own command line holds no secret for the
    // `/proc/*/cmdline` scans to find.
    if let Some((u, p)) = auth {
        cmd.env("RCLONE_USER", u).env("RCLONE_PASS", p);
    }
    let mut child = spawn(&mut cmd, &log, "rclone serve restic");
    wait_for_port(port, &mut child, "rclone serve restic", &log);
    Server {
        _child: Reaped(child),
        port,
    }
}
