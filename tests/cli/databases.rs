//! Real database servers for the dump tests: a PostgreSQL cluster and a
//! MariaDB server, each initialised in its own temporary folder, listening
//! on a free loopback port with password authentication, and stopped when
//! its guard drops (also when the test fails).
//!
//! Both refuse to run as root, so the data folders belong to the `postgres`
//! and `mysql` users the Debian packages create. A missing server fails the
//! test in CI; elsewhere the test is skipped with the reason printed.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::harness::{feed, free_port, installed, require_component, stdout_ok};

/// The database password every test server uses.
pub const PASSWORD: &str = "pw-Zk83jqX1";

/// Whether a required program exists (see [`require_component`]).
fn available(program: &Path, package: &str) -> bool {
    require_component(package, installed(program, package))
}

fn chown(path: &Path, user: &str) {
    let out = Command::new("chown")
        .args(["-R", user])
        .arg(path)
        .output()
        .expect("chown");
    assert!(out.status.success(), "chown {}: {out:?}", path.display());
}

fn tempdir(prefix: &str) -> TempDir {
    let d = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .expect("tempdir");
    // The server's own user must reach its data folder.
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    d
}

fn run_as(user: &str, program: &Path, args: &[&str]) -> std::process::Output {
    Command::new("runuser")
        .args(["-u", user, "--"])
        .arg(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("runuser {}: {e}", program.display()))
}

/// The newest installed PostgreSQL server's `bin` folder.
fn pg_bin() -> PathBuf {
    crate::harness::pg_bin().unwrap_or_else(|| PathBuf::from("/usr/lib/postgresql/15/bin"))
}

/// A private PostgreSQL cluster: superuser `postgres` with [`PASSWORD`]
/// over TCP.
pub struct Postgres {
    dir: TempDir,
    bin: PathBuf,
    pub port: u16,
}

impl Postgres {
    /// Starts a cluster, or `None` (skipped) when PostgreSQL is missing
    /// outside CI.
    pub fn start() -> Option<Postgres> {
        let bin = pg_bin();
        if !available(&bin.join("initdb"), "postgresql") {
            return None;
        }
        let dir = tempdir("rm-pg-");
        let pwfile = dir.path().join("pwfile");
        std::fs::write(&pwfile, format!("{PASSWORD}\n")).unwrap();
        chown(dir.path(), "postgres");
        let data = dir.path().join("data");
        let out = run_as(
            "postgres",
            &bin.join("initdb"),
            &[
                "-D",
                &data.to_string_lossy(),
                "-U",
                "postgres",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                &format!("--pwfile={}", pwfile.display()),
            ],
        );
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let port = free_port();
        let opts = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            dir.path().display()
        );
        let log = dir.path().join("log");
        let (data, log_s) = (data.to_string_lossy(), log.to_string_lossy());
        let start = [
            "-D", &data, "-o", &opts, "-l", &log_s, "-w", "-t", "60", "start",
        ];
        let out = run_as("postgres", &bin.join("pg_ctl"), &start);
        assert!(
            out.status.success(),
            "pg_ctl start failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        Some(Postgres { dir, bin, port })
    }

    /// `psql` on `db` as `postgres` over TCP; returns the unaligned rows.
    #[track_caller]
    pub fn sql(&self, db: &str, sql: &str) -> String {
        stdout_ok(
            Command::new("psql")
                .args(["-X", "-At", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1"])
                .args(["-p", &self.port.to_string(), "-U", "postgres", "-d", db])
                .args(["-c", sql])
                .env("PGPASSWORD", PASSWORD),
            &format!("psql {sql:?}"),
        )
    }

    /// The connection settings of a preset dump (without `password_file`).
    pub fn toml(&self) -> String {
        format!(
            "host = \"127.0.0.1\"\nport = {}\nuser = \"postgres\"",
            self.port
        )
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        let _ = run_as(
            "postgres",
            &self.bin.join("pg_ctl"),
            &["-D", &data.to_string_lossy(), "-m", "immediate", "stop"],
        );
    }
}

/// A private MariaDB server: user `tester` with [`PASSWORD`] over TCP.
pub struct Mariadb {
    dir: TempDir,
    child: Child,
    pub port: u16,
}

impl Mariadb {
    /// Starts a server, or `None` (skipped) when MariaDB is missing outside
    /// CI.
    pub fn start() -> Option<Mariadb> {
        let server = Path::new("/usr/sbin/mariadbd");
        if !available(server, "mariadb-server")
            || !available(Path::new("/usr/bin/mariadb-dump"), "mariadb-client")
        {
            return None;
        }
        let dir = tempdir("rm-maria-");
        let data = dir.path().join("data");
        // A private tmpdir: the bootstrap's temporary tables otherwise go to
        // the shared /tmp, where CI once saw one vanish under it ("Could not
        // remove temporary table ... error: 2", then "Unknown table
        // 'mysql.tmp_user_sys'") while other tests ran.
        let tmp = dir.path().join("tmp");
        std::fs::create_dir_all(&tmp).unwrap();
        let mut failures = Vec::new();
        for _ in 0..3 {
            let _ = std::fs::remove_dir_all(&data);
            std::fs::create_dir_all(&data).unwrap();
            chown(dir.path(), "mysql");
            let out = Command::new("mariadb-install-db")
                .args(["--no-defaults", "--user=mysql", "--skip-test-db"])
                .arg(format!("--datadir={}", data.display()))
                .arg(format!("--tmpdir={}", tmp.display()))
                .arg("--auth-root-authentication-method=normal")
                .output()
                .expect("mariadb-install-db");
            if out.status.success() {
                failures.clear();
                break;
            }
            failures.push(format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        assert!(
            failures.is_empty(),
            "mariadb-install-db failed 3 times:\n{}",
            failures.join("\n---\n")
        );
        let port = free_port();
        let sock = dir.path().join("sock");
        let log = std::fs::File::create(dir.path().join("log")).unwrap();
        let err = log.try_clone().unwrap();
        let mut child = Command::new(server)
            .args(["--no-defaults", "--user=mysql", "--bind-address=127.0.0.1"])
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--port={port}"))
            .arg(format!("--socket={}", sock.display()))
            .arg(format!("--pid-file={}", dir.path().join("pid").display()))
            .arg(format!("--tmpdir={}", tmp.display()))
            .args(["--innodb-buffer-pool-size=32M", "--skip-log-bin"])
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .spawn()
            .expect("mariadbd");
        let start = Instant::now();
        loop {
            let ping = Command::new("mariadb-admin")
                .args(["--no-defaults", "-u", "root"])
                .arg(format!("--socket={}", sock.display()))
                .arg("ping")
                .output();
            if ping.is_ok_and(|o| o.status.success()) {
                break;
            }
            if let Ok(Some(st)) = child.try_wait() {
                panic!(
                    "mariadbd exited ({st}); log:\n{}",
                    std::fs::read_to_string(dir.path().join("log")).unwrap_or_default()
                );
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "mariadbd did not answer within 60 s"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        // The statement goes on stdin: with `-e` the password would sit on a
        // command line, where a concurrent test's argv watcher sees it.
        let client = Command::new("mariadb")
            .args(["--no-defaults", "-u", "root"])
            .arg(format!("--socket={}", sock.display()))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("mariadb");
        let grant = format!(
            "CREATE USER 'tester'@'%' IDENTIFIED BY '{PASSWORD}'; GRANT ALL ON *.* TO 'tester'@'%' WITH GRANT OPTION;"
        );
        let out = feed(client, grant.as_bytes(), "mariadb");
        assert!(
            out.status.success(),
            "creating the test user failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Some(Mariadb { dir, child, port })
    }

    /// `mariadb` as `tester` over TCP; returns the tab-separated rows.
    #[track_caller]
    pub fn sql(&self, sql: &str) -> String {
        stdout_ok(
            Command::new("mariadb")
                .args(["--no-defaults", "-N", "-B", "-h", "127.0.0.1"])
                .args(["-P", &self.port.to_string(), "-u", "tester", "-e", sql])
                .env("MYSQL_PWD", PASSWORD),
            &format!("mariadb {sql:?}"),
        )
    }

    /// The connection settings of a preset dump (without `password_file`).
    pub fn toml(&self) -> String {
        format!(
            "host = \"127.0.0.1\"\nport = {}\nuser = \"tester\"",
            self.port
        )
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Mariadb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
