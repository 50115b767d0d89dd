//! Streamed dumps: a database dump's stdout pumped into
//! `restic backup --stdin`, once, fanned out to one restic per target, and
//! the reverse (`restic dump` into a restore command) for restores.
//!
//! Nothing touches the disk. The one thing that matters is the order in
//! which things stop: restic 0.14 cannot tell a finished producer from a
//! failed one (it saves whatever arrived before EOF, restic-facts.md 3.3).
//! So restic's stdin is closed only after the dump exited 0. When the dump
//! fails, times out or is interrupted, every restic is stopped with SIGINT
//! while its stdin is still open (restic then writes no snapshot), its
//! stdin closed half a second later for restic 0.17+, which waits for it
//! (`stop_receiver`), and as a second safety net any snapshot of this
//! dump that appeared since the dump started is forgotten.
//!
//! Passwords are read from `password_file` into the dump's environment
//! (`PGPASSWORD`, `MYSQL_PWD`); never into argv, where every user of the
//! machine could read them in `/proc/*/cmdline`.

use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::container::LogOutput;
use bollard::exec::{CreateExecOptions, StartExecOptions, StartExecResults};
use futures_util::{Stream, StreamExt};
use nix::sys::signal::Signal;
use tokio::io::{AsyncWrite, AsyncWriteExt};

use crate::config::dump::{Connection, Dump, DumpSource, Flavor};
use crate::process::{self, Child, Ended, Out, Shutdown, Spec, Stdin};
use crate::restic::ops::{self, OpError};
use crate::restic::output::{self, BackupSummary};
use crate::restic::{ErrorClass, Repository, Restic, restore};

/// Bytes moved per read. A pipe hands out at most 64 KiB at a time; a
/// larger buffer only helps with the Engine API's frames.
const CHUNK: usize = 256 * 1024;

/// How much of a dump's stderr is kept for the log and the report.
const STDERR_TAIL: usize = 4 * 1024;

/// Pipe buffer asked for on both sides of the pump (the kernel default is
/// 64 KiB): fewer wake-ups per megabyte on a busy machine. Best effort; an
/// unprivileged user gets at most `/proc/sys/fs/pipe-max-size` (1 MiB).
const PIPE_SIZE: i32 = 1024 * 1024;

fn widen_pipe(fd: Option<impl std::os::fd::AsFd>) {
    #[cfg(target_os = "linux")]
    if let Some(fd) = fd {
        let _ = nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_SETPIPE_SZ(PIPE_SIZE));
    }
    #[cfg(not(target_os = "linux"))]
    let _ = fd;
}

/// A dump or restore that failed, classified.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct DumpError {
    pub class: ErrorClass,
    pub message: String,
    /// The tail of the failing side's stderr.
    pub stderr: String,
}

impl DumpError {
    fn new(class: ErrorClass, message: impl Into<String>) -> Self {
        DumpError {
            class,
            message: message.into(),
            stderr: String::new(),
        }
    }
}

impl From<OpError> for DumpError {
    fn from(e: OpError) -> Self {
        DumpError {
            class: e.class,
            message: e.message,
            stderr: e.stderr,
        }
    }
}

/// A program and its environment. The environment may hold a password;
/// argv never does, and only argv is ever shown.
#[derive(Debug, Clone)]
pub struct DumpCommand {
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    /// Inside a container without `password_file`: the password variable
    /// filled from the container's own environment when the exec starts.
    pub container_password: Option<super::container_password::ContainerPassword>,
}

impl DumpCommand {
    fn new(argv: &[&str]) -> Self {
        DumpCommand {
            argv: argv.iter().map(ToString::to_string).collect(),
            env: Vec::new(),
            container_password: None,
        }
    }

    fn shell(cmd: &str) -> Self {
        Self::new(&["sh", "-c", cmd])
    }

    fn arg(mut self, a: impl Into<String>) -> Self {
        self.argv.push(a.into());
        self
    }

    /// The process to start (argv and environment).
    pub fn spec(&self) -> Spec {
        let mut spec = Spec::new(self.argv.first().map_or("sh", String::as_str))
            .args(self.argv.iter().skip(1));
        spec.env.clone_from(&self.env);
        spec
    }

    /// The command line for logs and messages (no secrets: those are in
    /// the environment).
    pub fn display(&self) -> String {
        self.spec().display()
    }
}

/// The last line of `text` that says something, for one-line messages.
fn last_line(text: &str) -> &str {
    text.lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("")
}

fn tail(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.trim_end().to_string();
    }
    let mut cut = text.len() - max;
    while !text.is_char_boundary(cut) {
        cut += 1;
    }
    text[cut..].trim_end().to_string()
}

/// Reads a password file's first line, for the child's environment.
fn read_password(dump: &Dump, file: &Path) -> Result<String, DumpError> {
    let text = std::fs::read_to_string(file).map_err(|e| {
        DumpError::new(
            ErrorClass::Config,
            format!(
                "dump `{}`: cannot read `password_file` `{}`: {e}; create it (mode 600) with the database password on the first line",
                dump.name,
                file.display()
            ),
        )
    })?;
    Ok(text.lines().next().unwrap_or("").to_string())
}

fn connect_args(cmd: DumpCommand, c: &Connection, pg: bool) -> DumpCommand {
    let mut cmd = cmd;
    if let Some(h) = &c.host {
        cmd = cmd.arg(format!("--host={h}"));
    }
    if let Some(p) = c.port {
        cmd = cmd.arg(format!("--port={p}"));
    }
    if let Some(u) = &c.user {
        cmd = cmd.arg(if pg {
            format!("--username={u}")
        } else {
            format!("--user={u}")
        });
    }
    cmd
}

/// The password variable of a preset, filled from its `password_file`.
fn with_password(mut cmd: DumpCommand, dump: &Dump) -> Result<DumpCommand, DumpError> {
    let (var, conn) = match &dump.source {
        DumpSource::Postgres { connection, .. } => ("PGPASSWORD", connection),
        DumpSource::Mariadb { connection, .. } => ("MYSQL_PWD", connection),
        _ => return Ok(cmd),
    };
    if let Some(f) = &conn.password_file {
        cmd.env.push((var.to_string(), read_password(dump, f)?));
    } else if dump.container.is_some() {
        cmd.container_password = Some(super::container_password::ContainerPassword {
            var,
            user: conn.user.clone(),
        });
    }
    Ok(cmd)
}

/// The sqlite preset's dump (`$1` is the database file).
const SQLITE_DUMP: &str = r#"[ -f "$1" ] || { echo "sqlite database $1 does not exist" >&2; exit 1; }; exec sqlite3 -bail -cmd ".timeout 60000" "$1" .dump"#;

/// The sqlite3 shell reports an error during `.dump` (e.g. "database is
/// locked") as a comment and ends with `ROLLBACK; -- due to errors`, yet
/// exits 0. A complete dump ends with `COMMIT;`.
fn sqlite_dump_complete(tail: &[u8]) -> bool {
    String::from_utf8_lossy(tail)
        .trim_end()
        .ends_with("COMMIT;")
}

/// The command whose stdout is the dump.
pub fn dump_command(dump: &Dump) -> Result<DumpCommand, DumpError> {
    let cmd = match &dump.source {
        DumpSource::Postgres {
            database: Some(db),
            connection,
        } => connect_args(
            DumpCommand::new(&["pg_dump", "--format=custom", "--no-password"]),
            connection,
            true,
        )
        .arg(format!("--dbname={db}")),
        DumpSource::Postgres {
            database: None,
            connection,
        } => connect_args(
            DumpCommand::new(&["pg_dumpall", "--no-password"]),
            connection,
            true,
        ),
        DumpSource::Mariadb {
            flavor,
            database,
            connection,
        } => {
            let program = match flavor {
                Flavor::Mariadb => "mariadb-dump",
                Flavor::Mysql => "mysqldump",
            };
            // --single-transaction: one consistent InnoDB snapshot without
            // locking the tables for the whole dump.
            let cmd = connect_args(
                DumpCommand::new(&[program, "--single-transaction", "--routines", "--triggers"]),
                connection,
                false,
            );
            match database {
                // --databases adds CREATE DATABASE / USE, so the restore
                // works after the database was dropped.
                Some(db) => cmd.arg("--databases").arg(db.clone()),
                None => cmd.arg("--all-databases"),
            }
        }
        // `.dump` reads the whole database inside one read transaction: a
        // consistent copy even while the application writes. `.timeout`
        // waits for a writer's lock instead of failing at once. Not
        // `-readonly`: a read-only connection to a WAL database fails to
        // open whenever no other connection holds the `-shm` file. The
        // existence check keeps a wrong path from creating an empty
        // database (and works inside a container too).
        DumpSource::Sqlite { path } => {
            DumpCommand::new(&["sh", "-c", SQLITE_DUMP, "sqlite-dump"]).arg(path.to_string_lossy())
        }
        DumpSource::Command { command } => DumpCommand::shell(command),
    };
    with_password(cmd, dump)
}

/// The preset's command that reads a dump on stdin and restores it (or the
/// dump's `restore_command`).
pub fn restore_command(dump: &Dump) -> Result<DumpCommand, DumpError> {
    if let Some(c) = &dump.restore_command {
        return with_password(DumpCommand::shell(c), dump);
    }
    let cmd = match &dump.source {
        // --create with --clean: drop and recreate the database from the
        // dump, connected to the maintenance database meanwhile.
        DumpSource::Postgres {
            database: Some(_),
            connection,
        } => connect_args(
            DumpCommand::new(&[
                "pg_restore",
                "--no-password",
                "--clean",
                "--if-exists",
                "--create",
                "--exit-on-error",
            ]),
            connection,
            true,
        )
        .arg("--dbname=postgres"),
        DumpSource::Postgres {
            database: None,
            connection,
        } => connect_args(
            DumpCommand::new(&["psql", "--no-password", "--no-psqlrc", "--quiet"]),
            connection,
            true,
        )
        .arg("--dbname=postgres"),
        DumpSource::Mariadb {
            flavor, connection, ..
        } => connect_args(
            DumpCommand::new(&[match flavor {
                Flavor::Mariadb => "mariadb",
                Flavor::Mysql => "mysql",
            }]),
            connection,
            false,
        ),
        DumpSource::Sqlite { path } => {
            DumpCommand::new(&["sqlite3", "-bail"]).arg(path.to_string_lossy())
        }
        DumpSource::Command { .. } => {
            return Err(DumpError::new(
                ErrorClass::Config,
                format!(
                    "dump `{}` is a `command` dump, so there is no preset restore command; set `restore_command` for it, or restore with `--to-command CMD` or `--to-file FILE`",
                    dump.name
                ),
            ));
        }
    };
    with_password(cmd, dump)
}

/// A check that a stored dump is readable by its tool, fed the dump on
/// stdin: for PostgreSQL's custom format `pg_restore --file=/dev/null`,
/// which reads the table of contents and decompresses every data block
/// (`pg_restore --list` stops after the table of contents, so a dump cut
/// short after it would pass). `None` where the format has no such check.
pub fn verify_command(dump: &Dump) -> Option<DumpCommand> {
    match &dump.source {
        DumpSource::Postgres {
            database: Some(_), ..
        } => Some(DumpCommand::new(&["pg_restore", "--file=/dev/null"])),
        _ => None,
    }
}

/// How a restore drill checks a stored dump (see [`drill_check`]).
#[derive(Debug, Clone)]
pub enum DrillCheck {
    /// Stream the dump into `cmd` (on stdin); it must exit 0. `user` is
    /// true for a configured `verify_command`, false for a preset's check.
    Command {
        check: &'static str,
        cmd: DumpCommand,
        user: bool,
        /// Programs the check runs, which must be on PATH.
        needs: Vec<&'static str>,
    },
    /// The dump's last lines must contain `marker` (the line the dump tool
    /// writes only after everything else was written).
    Completion {
        check: &'static str,
        marker: &'static str,
        tool: &'static str,
    },
    /// Read it back whole and compare its size with restic's metadata.
    ReadBack,
}

impl DrillCheck {
    /// The check's name, as recorded in the verify's detail.
    pub fn name(&self) -> &'static str {
        match self {
            DrillCheck::Command { check, .. } | DrillCheck::Completion { check, .. } => check,
            DrillCheck::ReadBack => "read_back",
        }
    }
}

/// pg_dumpall's last comment.
pub const PG_DUMPALL_COMPLETE: &str = "PostgreSQL database cluster dump complete";
/// mariadb-dump's / mysqldump's last line starts with it.
pub const MARIADB_DUMP_COMPLETE: &str = "-- Dump completed";

/// Loads an SQLite `.dump` into a database in memory and runs
/// `PRAGMA integrity_check`. A `.dump` ends with `COMMIT;`; without it the
/// load would silently roll back a truncated dump, so that fails too.
const SQLITE_CHECK: &str = r#"set -o pipefail
out=$(awk '{ print } $0 != "" { last = $0 } END { if (last != "COMMIT;") { print "the dump does not end with COMMIT;: it is incomplete" > "/dev/stderr"; exit 3 } print "PRAGMA integrity_check;" }' | sqlite3 -bail :memory:) || exit 1
[ "$out" = ok ] || { printf 'PRAGMA integrity_check: %s\n' "$out" >&2; exit 1; }"#;

/// Drops and recreates the PostgreSQL scratch database `$1`, restores the
/// custom-format dump into it, and drops it again (also on failure). The
/// remaining arguments are the connection options.
const PG_SCRATCH: &str = r#"s=$1; shift
dropdb --no-password --if-exists "$@" "$s" && createdb --no-password "$@" "$s" || exit 1
pg_restore --no-password --exit-on-error --no-owner --no-privileges "$@" --dbname="$s"; rc=$?
dropdb --no-password --if-exists "$@" "$s" || echo "could not drop the scratch database $s" >&2
exit $rc"#;

/// Likewise for MariaDB/MySQL (`$2` is the client). A one-database dump
/// names its database in `CREATE DATABASE` and `USE` lines: those are
/// left out, so everything lands in the scratch database and the real one
/// is never touched. The completion line is required too.
const MARIADB_SCRATCH: &str = r#"set -o pipefail
s=$1; client=$2; shift 2
"$client" "$@" -e "DROP DATABASE IF EXISTS \`$s\`; CREATE DATABASE \`$s\`" || exit 1
awk '/^CREATE DATABASE /{ next } /^USE `/{ next } { print } /^-- Dump completed/{ done = 1 } END { if (!done) { print "the dump does not end with the \"-- Dump completed\" line: it is incomplete" > "/dev/stderr"; exit 3 } }' | "$client" "$@" --database="$s"; rc=$?
"$client" "$@" -e "DROP DATABASE IF EXISTS \`$s\`" || echo "could not drop the scratch database $s" >&2
exit $rc"#;

/// The check a restore drill runs on a stored dump, in this order: the
/// dump's own `verify_command`, the service's `verify_command`, a load
/// into `verify_scratch_database`, then the preset's built-in check
/// (`pg_restore --file=/dev/null` for PostgreSQL's custom format, the completion
/// line of pg_dumpall and mariadb-dump, a load into an in-memory SQLite).
/// A `command` dump is read back only. Passwords go to the environment as
/// for the dump itself.
pub fn drill_check(dump: &Dump, service_command: Option<&str>) -> Result<DrillCheck, DumpError> {
    if let Some(c) = &dump.verify_command {
        return Ok(DrillCheck::Command {
            check: "verify_command",
            cmd: with_password(DumpCommand::shell(c), dump)?,
            user: true,
            needs: vec!["sh"],
        });
    }
    if let Some(c) = service_command {
        return Ok(DrillCheck::Command {
            check: "service_verify_command",
            cmd: with_password(DumpCommand::shell(c), dump)?,
            user: true,
            needs: vec!["sh"],
        });
    }
    if let Some(scratch) = &dump.verify_scratch_database {
        let (cmd, needs) = match &dump.source {
            DumpSource::Postgres { connection, .. } => (
                connect_args(
                    DumpCommand::new(&["bash", "-c", PG_SCRATCH, "pg-scratch", scratch]),
                    connection,
                    true,
                ),
                vec!["bash", "dropdb", "createdb", "pg_restore"],
            ),
            DumpSource::Mariadb {
                flavor, connection, ..
            } => {
                let client = match flavor {
                    Flavor::Mariadb => "mariadb",
                    Flavor::Mysql => "mysql",
                };
                (
                    connect_args(
                        DumpCommand::new(&[
                            "bash",
                            "-c",
                            MARIADB_SCRATCH,
                            "mariadb-scratch",
                            scratch,
                            client,
                        ]),
                        connection,
                        false,
                    ),
                    vec!["bash", "awk", client],
                )
            }
            _ => {
                return Err(DumpError::new(
                    ErrorClass::Config,
                    format!(
                        "dump `{}`: `verify_scratch_database` applies only to postgres, mariadb and mysql dumps",
                        dump.name
                    ),
                ));
            }
        };
        return Ok(DrillCheck::Command {
            check: "scratch_load",
            cmd: with_password(cmd, dump)?,
            user: false,
            needs,
        });
    }
    Ok(match &dump.source {
        DumpSource::Postgres {
            database: Some(_), ..
        } => DrillCheck::Command {
            check: "pg_restore",
            cmd: verify_command(dump)
                .unwrap_or_else(|| DumpCommand::new(&["pg_restore", "--file=/dev/null"])),
            user: false,
            needs: vec!["pg_restore"],
        },
        DumpSource::Postgres { database: None, .. } => DrillCheck::Completion {
            check: "pg_dumpall_complete",
            marker: PG_DUMPALL_COMPLETE,
            tool: "pg_dumpall",
        },
        DumpSource::Mariadb { .. } => DrillCheck::Completion {
            check: "mariadb_dump_complete",
            marker: MARIADB_DUMP_COMPLETE,
            tool: "mariadb-dump",
        },
        DumpSource::Sqlite { .. } => DrillCheck::Command {
            check: "sqlite_load",
            cmd: DumpCommand::new(&["bash", "-c", SQLITE_CHECK]),
            user: false,
            needs: vec!["bash", "awk", "sqlite3"],
        },
        DumpSource::Command { .. } => DrillCheck::ReadBack,
    })
}

/// Whether the last bytes of a dump hold its tool's completion `marker`
/// in one of its last three lines that say something.
pub fn ends_complete(tail: &[u8], marker: &str) -> bool {
    String::from_utf8_lossy(tail)
        .lines()
        .rev()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .take(3)
        .any(|l| l.contains(marker))
}

// ---------------------------------------------------------------------
// Producers and consumers: a local child or a process inside a container.

type ExecOutput = Pin<Box<dyn Stream<Item = Result<LogOutput, bollard::errors::Error>> + Send>>;

/// A process started inside a container through the Engine API.
struct Exec {
    api: Docker,
    id: String,
    container: String,
    output: ExecOutput,
    input: Option<Pin<Box<dyn AsyncWrite + Send>>>,
    pending: Vec<u8>,
    pos: usize,
    stderr: String,
    eof: bool,
}

fn docker_error(container: &str, what: &str, e: &bollard::errors::Error) -> DumpError {
    use bollard::errors::Error as E;
    let (class, detail) = match e {
        E::DockerResponseServerError {
            status_code: 404,
            message,
        } => (
            ErrorClass::ContainerMissing,
            format!(
                "container `{container}` does not exist ({message}); check the dump's `container`"
            ),
        ),
        E::DockerResponseServerError {
            status_code: 409,
            message,
        } => (
            ErrorClass::DockerFailed,
            format!(
                "container `{container}` is not running ({message}); start it, the dump runs inside it"
            ),
        ),
        other => {
            let mut cur: &(dyn std::error::Error + 'static) = other;
            while let Some(s) = cur.source() {
                cur = s;
            }
            let text = cur.to_string();
            let class = if text.contains("ermission denied") {
                ErrorClass::PermissionDenied
            } else if text.contains("onnection refused") || text.contains("No such file") {
                ErrorClass::DockerUnavailable
            } else {
                ErrorClass::DockerFailed
            };
            (class, format!("{what}: {text}"))
        }
    };
    DumpError::new(class, detail)
}

impl Exec {
    async fn start(container: &str, cmd: &DumpCommand, stdin: bool) -> Result<Exec, DumpError> {
        let host = super::docker::docker_host();
        let api = Docker::connect_with_host(&host)
            .map_err(|e| docker_error(container, "connecting to the Docker engine", &e))?;
        let api = api
            .negotiate_version()
            .await
            .map_err(|e| docker_error(container, &format!("the Docker engine at `{host}`"), &e))?;
        let mut env: Vec<String> = cmd.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        if let Some(cp) = &cmd.container_password
            && let Some(var) = cp.lookup(&api, container).await
        {
            env.push(var);
        }
        let created = api
            .create_exec(
                container,
                CreateExecOptions::<String> {
                    attach_stdin: Some(stdin),
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    tty: Some(false),
                    env: Some(env),
                    cmd: Some(cmd.argv.clone()),
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| docker_error(container, "creating the exec", &e))?;
        let started = api
            .start_exec(
                &created.id,
                Some(StartExecOptions {
                    detach: false,
                    tty: false,
                    output_capacity: Some(CHUNK),
                }),
            )
            .await
            .map_err(|e| docker_error(container, "starting the exec", &e))?;
        match started {
            StartExecResults::Attached { output, input } => Ok(Exec {
                api,
                id: created.id,
                container: container.to_string(),
                output,
                input: stdin.then_some(input),
                pending: Vec::new(),
                pos: 0,
                stderr: String::new(),
                eof: false,
            }),
            StartExecResults::Detached => Err(DumpError::new(
                ErrorClass::DockerFailed,
                format!("the Docker engine did not attach to the exec in `{container}`"),
            )),
        }
    }

    /// Reads the next stdout bytes; stderr frames are kept aside.
    async fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            let rest = &self.pending[self.pos..];
            if !rest.is_empty() {
                let n = rest.len().min(buf.len());
                buf[..n].copy_from_slice(&rest[..n]);
                self.pos += n;
                return Ok(n);
            }
            if self.eof {
                return Ok(0);
            }
            match self.output.next().await {
                None => {
                    self.eof = true;
                }
                Some(Ok(LogOutput::StdOut { message } | LogOutput::Console { message })) => {
                    self.pending = message.to_vec();
                    self.pos = 0;
                }
                Some(Ok(LogOutput::StdErr { message })) => {
                    self.stderr.push_str(&String::from_utf8_lossy(&message));
                    self.stderr = tail(&self.stderr, STDERR_TAIL);
                }
                Some(Ok(LogOutput::StdIn { .. })) => {}
                Some(Err(e)) => return Err(std::io::Error::other(e.to_string())),
            }
        }
    }

    /// Drains stderr until the stream ends (stdout is discarded).
    async fn drain(&mut self) {
        let mut buf = vec![0u8; CHUNK];
        while matches!(self.read(&mut buf).await, Ok(n) if n > 0) {}
    }

    /// The exec's exit, once its streams ended.
    async fn wait(&mut self) -> Ended {
        self.drain().await;
        for _ in 0..100 {
            match self.api.inspect_exec(&self.id).await {
                Ok(r) if r.running != Some(true) => {
                    return Ended::Exited(
                        r.exit_code
                            .and_then(|c| i32::try_from(c).ok())
                            .unwrap_or(-1),
                    );
                }
                Ok(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                Err(_) => return Ended::Exited(-1),
            }
        }
        Ended::Exited(-1)
    }
}

/// Where dump bytes come from.
enum Producer {
    Local(Box<Child>),
    Exec(Box<Exec>),
}

impl Producer {
    async fn start(
        cmd: &DumpCommand,
        container: Option<&str>,
        stdin: bool,
    ) -> Result<Producer, DumpError> {
        match container {
            Some(c) => Ok(Producer::Exec(Box::new(Exec::start(c, cmd, stdin).await?))),
            None => cmd
                .spec()
                .stdin(if stdin { Stdin::Piped } else { Stdin::Null })
                .stdout(Out::Raw)
                .spawn()
                .map(|mut p| {
                    widen_pipe(p.stdout_pipe());
                    widen_pipe(p.stdin());
                    Producer::Local(Box::new(p))
                })
                .map_err(|e| {
                    DumpError::new(
                        ErrorClass::DumpFailed,
                        format!("{e}; is it installed and on PATH?"),
                    )
                }),
        }
    }

    async fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Producer::Local(p) => p.read(buf).await,
            Producer::Exec(e) => e.read(buf).await,
        }
    }

    async fn write(&mut self, data: &[u8]) -> std::io::Result<()> {
        let w: &mut (dyn AsyncWrite + Unpin + Send) = match self {
            Producer::Local(p) => match p.stdin() {
                Some(s) => s,
                None => return Err(std::io::ErrorKind::BrokenPipe.into()),
            },
            Producer::Exec(e) => match e.input.as_mut() {
                Some(s) => s,
                None => return Err(std::io::ErrorKind::BrokenPipe.into()),
            },
        };
        w.write_all(data).await
    }

    /// Closes the child's stdin (end of data).
    async fn close_input(&mut self) {
        match self {
            Producer::Local(p) => {
                if let Some(mut s) = p.take_stdin() {
                    let _ = s.shutdown().await;
                }
            }
            Producer::Exec(e) => {
                if let Some(mut s) = e.input.take() {
                    let _ = s.shutdown().await;
                }
            }
        }
    }

    async fn wait(&mut self) -> Ended {
        match self {
            Producer::Local(p) => p.wait(&Shutdown::never()).await,
            Producer::Exec(e) => e.wait().await,
        }
    }

    /// Stops the producer. A process inside a container cannot be
    /// signalled through the API; closing the connection leaves it writing
    /// into a closed pipe, which ends it.
    async fn stop(&mut self) {
        match self {
            Producer::Local(p) => {
                p.stop().await;
            }
            Producer::Exec(e) => {
                e.input = None;
                e.eof = true;
            }
        }
    }

    /// The stderr tail once it ended.
    async fn finish(self, ended: Ended) -> String {
        match self {
            Producer::Local(p) => tail(&p.output(ended).await.stderr, STDERR_TAIL),
            Producer::Exec(e) => e.stderr.clone(),
        }
    }

    fn describe(&self, cmd: &DumpCommand) -> String {
        match self {
            Producer::Local(_) => format!("`{}`", cmd.display()),
            Producer::Exec(e) => format!("`{}` in container `{}`", cmd.display(), e.container),
        }
    }
}

// ---------------------------------------------------------------------
// Backup.

/// One dump into several repositories.
pub struct BackupRequest<'a> {
    pub restic: &'a Restic,
    pub dump: &'a Dump,
    pub repos: &'a [&'a Repository],
    pub host: &'a str,
    /// The service's tags; `dump:NAME` is added.
    pub tags: &'a [String],
    /// The service's remaining time (a dump's `timeout_seconds` may be
    /// shorter).
    pub timeout: Duration,
}

/// What one target got.
#[derive(Debug, Clone)]
pub struct TargetResult {
    pub destination: String,
    pub repository: String,
    pub result: Result<BackupSummary, OpError>,
    pub duration: Duration,
    /// Snapshots of a failed dump the safety net forgot.
    pub discarded: Vec<String>,
}

/// The outcome of one dump.
#[derive(Debug, Clone)]
pub struct DumpRun {
    /// Bytes the dump produced.
    pub bytes: u64,
    pub duration: Duration,
    /// The dump itself failed (its targets then have no snapshot).
    pub failure: Option<DumpError>,
    pub targets: Vec<TargetResult>,
    /// The command as shown in logs.
    pub command: String,
}

/// A restic that receives the dump.
struct Receiver<'a> {
    repo: &'a Repository,
    child: Option<Child>,
    broken: bool,
    result: Option<Result<BackupSummary, OpError>>,
    started: Instant,
    discarded: Vec<String>,
}

/// How long a stopped restic may take to exit before its stdin is closed.
/// restic 0.14 exits within milliseconds of the SIGINT.
const STDIN_CLOSE_DELAY: Duration = Duration::from_millis(500);

/// How long restic may take to clean up (remove its lock) once stopped.
const RECEIVER_GRACE: Duration = Duration::from_secs(30);

/// Stops a restic that reads a failed dump on its stdin, so that it saves
/// no snapshot, in seconds, on every version. The SIGINT comes first,
/// while the stdin is still open: restic 0.14 takes an end of input for a
/// finished dump and would save what arrived, but on SIGINT it exits at
/// once without saving. restic 0.17 and later cancel on the SIGINT but go
/// on waiting for the end of their input (until killed: +30 s), so the
/// stdin is closed when restic has not exited after [`STDIN_CLOSE_DELAY`];
/// a cancelled restic saves nothing then (seen with 0.18.0 and 0.19.1).
/// Should a snapshot appear anyway, `discard_since` forgets it.
/// `stdin` is restic's stdin when the caller holds it apart from `child`.
pub(crate) async fn stop_receiver(
    child: &mut Child,
    stdin: Option<tokio::process::ChildStdin>,
) -> Ended {
    let stdin = stdin.or_else(|| child.take_stdin());
    child.signal(Signal::SIGINT);
    if let Some(ended) = child.exit_within(STDIN_CLOSE_DELAY).await {
        return ended;
    }
    drop(stdin);
    child.kill_after(RECEIVER_GRACE).await
}

/// Writes `data` to every receiver that still reads, concurrently; a
/// receiver whose pipe broke (restic exited) is left out from then on.
async fn fan_out(data: &[u8], receivers: &mut [Receiver<'_>]) {
    let writes = receivers
        .iter_mut()
        .filter(|r| !r.broken)
        .map(|r| async move {
            let ok = match r.child.as_mut().and_then(Child::stdin) {
                Some(w) => w.write_all(data).await.is_ok(),
                None => false,
            };
            if !ok {
                r.broken = true;
            }
        });
    futures_util::future::join_all(writes).await;
}

enum Pumped {
    Eof,
    ReadFailed(std::io::Error),
    NoReceivers,
}

/// Runs the dump once and streams it into `restic backup --stdin` on every
/// repository. `log` receives progress lines for the run log.
pub async fn backup(
    req: &BackupRequest<'_>,
    shutdown: &Shutdown,
    log: &(dyn Fn(&str) + Sync),
) -> DumpRun {
    let dump = req.dump;
    let started = Instant::now();
    let since = chrono::Utc::now();
    let limit = dump
        .timeout_seconds
        .map_or(req.timeout, |s| Duration::from_secs(s).min(req.timeout));
    let deadline =
        tokio::time::Instant::from_std(crate::config::checks::after(Instant::now(), limit));
    let mut run = DumpRun {
        bytes: 0,
        duration: Duration::ZERO,
        failure: None,
        targets: Vec::new(),
        command: String::new(),
    };
    let cmd = match dump_command(dump) {
        Ok(c) => c,
        Err(e) => {
            run.failure = Some(e);
            return run;
        }
    };
    run.command = cmd.display();
    if let Some(why) = req.restic.version.stdin_filename_problem(&dump.filename) {
        run.failure = Some(DumpError::new(
            ErrorClass::Other,
            format!("dump `{}` was not run: {why}", dump.name),
        ));
        return run;
    }

    let mut tags = req.tags.to_vec();
    tags.push(dump.tag());
    let mut receivers: Vec<Receiver<'_>> = Vec::new();
    for repo in req.repos {
        let call = ops::backup_stdin(req.restic, repo, req.host, &tags, &dump.filename);
        log(&format!(
            "dump `{}` → `{}`: {}",
            dump.name,
            repo.destination,
            call.display(repo)
        ));
        let mut r = Receiver {
            repo,
            child: None,
            broken: true,
            result: None,
            started: Instant::now(),
            discarded: Vec::new(),
        };
        // Bounded by the dump's deadline, as before.
        match call.spec.spawn() {
            Ok(mut c) => {
                widen_pipe(c.stdin());
                r.child = Some(c);
                r.broken = false;
            }
            Err(e) => r.result = Some(Err(e.into())),
        }
        receivers.push(r);
    }

    let mut failure: Option<DumpError> = None;
    if receivers.iter().all(|r| r.broken) {
        // No restic started: do not run the dump at all.
    } else {
        match Producer::start(&cmd, dump.container.as_deref(), false).await {
            Err(e) => failure = Some(e),
            Ok(mut producer) => {
                let what = producer.describe(&cmd);
                log(&format!("dump `{}`: running {what}", dump.name));
                let mut buf = vec![0u8; CHUNK];
                let mut bytes: u64 = 0;
                // The last bytes of the dump, for formats that say at the
                // end whether they are complete.
                let mut last: Vec<u8> = Vec::new();
                let pumped = process::bounded(
                    async {
                        loop {
                            let n = match producer.read(&mut buf).await {
                                Ok(0) => return Pumped::Eof,
                                Ok(n) => n,
                                Err(e) => return Pumped::ReadFailed(e),
                            };
                            bytes += n as u64;
                            last.extend_from_slice(&buf[n.saturating_sub(64)..n]);
                            if last.len() > 128 {
                                last.drain(..last.len() - 64);
                            }
                            fan_out(&buf[..n], &mut receivers).await;
                            if receivers.iter().all(|r| r.broken) {
                                return Pumped::NoReceivers;
                            }
                        }
                    },
                    Some(deadline),
                    shutdown,
                )
                .await;
                run.bytes = bytes;
                let ended = match pumped {
                    Ok(Pumped::Eof) => {
                        match process::bounded(producer.wait(), Some(deadline), shutdown).await {
                            Ok(e) => e,
                            Err(why) => {
                                producer.stop().await;
                                why
                            }
                        }
                    }
                    Ok(Pumped::ReadFailed(e)) => {
                        producer.stop().await;
                        failure = Some(DumpError::new(
                            ErrorClass::DumpFailed,
                            format!("dump `{}`: reading its output failed: {e}", dump.name),
                        ));
                        Ended::Exited(-1)
                    }
                    Ok(Pumped::NoReceivers) => {
                        // Every restic failed; their errors say why. The
                        // dump has nowhere to go.
                        producer.stop().await;
                        Ended::Exited(0)
                    }
                    Err(why) => {
                        producer.stop().await;
                        why
                    }
                };
                let stderr = producer.finish(ended).await;
                for l in stderr.lines() {
                    log(&format!("dump `{}` ! {l}", dump.name));
                }
                if failure.is_none()
                    && ended.success()
                    && matches!(dump.source, DumpSource::Sqlite { .. })
                    && !sqlite_dump_complete(&last)
                {
                    failure = Some(DumpError {
                        class: ErrorClass::DumpFailed,
                        message: format!(
                            "dump `{}` is incomplete: sqlite3 reported an error inside the dump (it ends with `{}`, not `COMMIT;`)",
                            dump.name,
                            last_line(&String::from_utf8_lossy(&last))
                        ),
                        stderr: stderr.clone(),
                    });
                }
                if failure.is_none() && !ended.success() {
                    let (class, how) = match ended {
                        Ended::TimedOut => (
                            ErrorClass::DumpFailed,
                            format!("ran out of time after {}s", limit.as_secs()),
                        ),
                        Ended::Interrupted(s) => (
                            ErrorClass::Interrupted,
                            format!("interrupted by signal {s}"),
                        ),
                        other => (
                            ErrorClass::DumpFailed,
                            format!("failed ({})", other.describe()),
                        ),
                    };
                    let last = last_line(&stderr);
                    failure = Some(DumpError {
                        class,
                        message: if last.is_empty() {
                            format!("dump `{}` {how}: {what}", dump.name)
                        } else {
                            format!("dump `{}` {how}: {last}", dump.name)
                        },
                        stderr,
                    });
                }
            }
        }
    }

    // Finish every restic: on success close its stdin and let it save the
    // snapshot; on failure stop it first, with its stdin still open.
    let ok = failure.is_none();
    let finish = receivers.iter_mut().map(|r| async {
        let Some(mut child) = r.child.take() else {
            return;
        };
        let ended = if ok && !r.broken {
            drop(child.take_stdin());
            match process::bounded(child.wait(&Shutdown::never()), Some(deadline), shutdown).await {
                Ok(e) => e,
                Err(why) => {
                    child.stop().await;
                    why
                }
            }
        } else if r.broken {
            child.wait(&Shutdown::never()).await
        } else {
            stop_receiver(&mut child, None).await;
            Ended::Interrupted(2)
        };
        let out = child.output(ended).await;
        let stopped_by_us = !ok && !r.broken;
        r.result = Some(if stopped_by_us {
            let f = failure.as_ref();
            Err(OpError {
                class: f.map_or(ErrorClass::DumpFailed, |f| f.class),
                message: format!(
                    "no snapshot: {}",
                    f.map_or("the dump failed", |f| f.message.as_str())
                ),
                stderr: out.stderr,
            })
        } else if let Some(e) = ops::checked_failure(&out, r.repo).await {
            Err(e)
        } else if let Some(mut summary) = output::backup_summary(&out.stdout) {
            if let Some(id) = &summary.snapshot_id {
                summary.snapshot_id =
                    Some(ops::full_snapshot_id(req.restic, r.repo, id, &Shutdown::never()).await);
            }
            Ok(summary)
        } else {
            Err(OpError {
                class: ErrorClass::Other,
                message: format!(
                    "restic finished on `{}` but printed no backup summary: {}",
                    r.repo.display,
                    last_line(&out.stderr)
                ),
                stderr: out.stderr.clone(),
            })
        });
        // The second safety net, and stale locks after a stop we caused.
        if !ok || !matches!(out.ended, Ended::Exited(_)) {
            let _ = ops::unlock_stale(req.restic, r.repo).await;
        }
        if !ok {
            match discard_since(req.restic, r.repo, &dump.tag(), req.host, since).await {
                Ok(ids) => r.discarded = ids,
                Err(e) => log(&format!(
                    "dump `{}`: could not check `{}` for a stray snapshot: {}",
                    dump.name, r.repo.destination, e.message
                )),
            }
        }
    });
    futures_util::future::join_all(finish).await;

    for r in receivers {
        if !r.discarded.is_empty() {
            log(&format!(
                "dump `{}`: forgot snapshot(s) {} on `{}` made from the failed dump",
                dump.name,
                r.discarded.join(", "),
                r.repo.destination
            ));
        }
        run.targets.push(TargetResult {
            destination: r.repo.destination.clone(),
            repository: r.repo.display.clone(),
            result: r.result.unwrap_or_else(|| {
                Err(OpError {
                    class: ErrorClass::Other,
                    message: "restic did not run".into(),
                    stderr: String::new(),
                })
            }),
            duration: r.started.elapsed(),
            discarded: r.discarded,
        });
    }
    run.failure = failure;
    run.duration = started.elapsed();
    run
}

/// Forgets this host's snapshots tagged `tag` made at or after `since`:
/// what a failed dump may have left despite the SIGINT.
async fn discard_since(
    restic: &Restic,
    repo: &Repository,
    tag: &str,
    host: &str,
    since: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<String>, OpError> {
    let list = ops::snapshots(restic, repo, Some(tag), &Shutdown::never()).await?;
    let ids: Vec<String> = list
        .iter()
        .filter(|s| s.hostname == host)
        .filter(|s| {
            chrono::DateTime::parse_from_rfc3339(&s.time)
                .is_ok_and(|t| t.with_timezone(&chrono::Utc) >= since)
        })
        .map(|s| s.id.clone())
        .collect();
    if ids.is_empty() {
        return Ok(ids);
    }
    ops::forget_ids(
        restic,
        repo,
        &ids,
        false,
        Duration::from_secs(600),
        &Shutdown::never(),
    )
    .await?;
    Ok(ids.iter().map(|i| i.chars().take(8).collect()).collect())
}

// ---------------------------------------------------------------------
// Restore.

/// Where a restored dump goes.
#[derive(Debug, Clone)]
pub enum RestoreTo {
    /// The dump's `restore_command`, or its preset's (inside `container`
    /// when the dump has one).
    Preset,
    /// A shell command on this host that reads the dump on stdin. It gets
    /// the preset's password variable too.
    Command(String),
    /// A new file (an existing one is never overwritten).
    File(PathBuf),
}

/// What a restore did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Restored {
    pub bytes: u64,
    pub duration_ms: u64,
    /// The restore command or file, as shown to the user.
    pub into: String,
}

enum Consumer {
    Proc(Producer),
    File(tokio::fs::File, PathBuf),
}

/// `restic dump SNAPSHOT /FILENAME` piped into the restore command (or a
/// file). `snapshot` may be `latest` (the newest snapshot of this dump).
/// A failure of either side is an error carrying that side's stderr; the
/// consumer is stopped before its stdin closes when restic fails, and a
/// partial file is removed.
pub async fn restore_dump(
    restic: &Restic,
    repo: &Repository,
    snapshot: &str,
    dump: &Dump,
    to: &RestoreTo,
    timeout: Duration,
    shutdown: &Shutdown,
) -> Result<Restored, DumpError> {
    let started = Instant::now();
    let deadline =
        tokio::time::Instant::from_std(crate::config::checks::after(Instant::now(), timeout));
    let tag = dump.tag();
    let path = format!("/{}", dump.filename);
    let call = restore::DumpFile {
        snapshot,
        path: &path,
        tag: (snapshot == "latest").then_some(tag.as_str()),
        no_lock: false,
        timeout: None,
    }
    .call(restic, repo);

    let (mut consumer, into) = match to {
        RestoreTo::File(path) => {
            let f = tokio::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(path)
                .await
                .map_err(|e| {
                    DumpError::new(
                        if e.kind() == std::io::ErrorKind::AlreadyExists {
                            ErrorClass::Config
                        } else {
                            ErrorClass::PermissionDenied
                        },
                        format!(
                            "cannot create `{}`: {e}; choose a new file (an existing one is never overwritten)",
                            path.display()
                        ),
                    )
                })?;
            (
                Consumer::File(f, path.clone()),
                format!("file `{}`", path.display()),
            )
        }
        RestoreTo::Command(c) => {
            let cmd = with_password(DumpCommand::shell(c), dump)?;
            let p = Producer::start(&cmd, None, true).await?;
            (Consumer::Proc(p), format!("`{c}`"))
        }
        RestoreTo::Preset => {
            let cmd = restore_command(dump)?;
            let p = Producer::start(&cmd, dump.container.as_deref(), true).await?;
            let d = p.describe(&cmd);
            (Consumer::Proc(p), d)
        }
    };
    let mut source = match call.spec.spawn() {
        Ok(p) => {
            widen_pipe(p.stdout_pipe());
            p
        }
        Err(e) => {
            if let Consumer::Proc(mut p) = consumer {
                p.stop().await;
            }
            return Err(OpError::from(e).into());
        }
    };

    let mut buf = vec![0u8; CHUNK];
    let mut bytes: u64 = 0;
    // Ok(true): restic's output ended; Ok(false): the consumer stopped
    // reading; Err: reading restic's output failed.
    let pumped = process::bounded(
        async {
            loop {
                let n = source.read(&mut buf).await?;
                if n == 0 {
                    return Ok::<bool, std::io::Error>(true);
                }
                bytes += n as u64;
                let ok = match &mut consumer {
                    Consumer::Proc(p) => p.write(&buf[..n]).await.is_ok(),
                    Consumer::File(f, _) => f.write_all(&buf[..n]).await.is_ok(),
                };
                if !ok {
                    return Ok(false);
                }
            }
        },
        Some(deadline),
        shutdown,
    )
    .await;
    let restic_ended = match &pumped {
        Ok(Ok(true)) => {
            match process::bounded(source.wait(&Shutdown::never()), Some(deadline), shutdown).await
            {
                Ok(e) => e,
                Err(why) => {
                    source.stop().await;
                    why
                }
            }
        }
        Err(why) => {
            source.stop().await;
            *why
        }
        Ok(_) => {
            source.stop().await;
            Ended::Interrupted(2)
        }
    };
    let restic_out = source.output(restic_ended).await;
    let consumer_gone = matches!(pumped, Ok(Ok(false)));
    let restic_failed = !consumer_gone && !restic_ended.success();

    let fail_restic = |ended: Ended| -> DumpError {
        let mut e = match ended {
            Ended::TimedOut => DumpError::new(
                ErrorClass::Timeout,
                format!("restoring dump `{}` ran out of time", dump.name),
            ),
            Ended::Interrupted(s) => DumpError::new(
                ErrorClass::Interrupted,
                format!(
                    "restoring dump `{}` was interrupted (signal {s})",
                    dump.name
                ),
            ),
            _ => match ops::failure(&restic_out, repo) {
                Some(op)
                    if restic_out.stderr.contains("cannot dump file")
                        || restic_out.stderr.contains("not found") =>
                {
                    DumpError::new(
                        op.class,
                        format!(
                            "`/{}` is not in snapshot `{snapshot}` of `{}`: {}",
                            dump.filename,
                            repo.display,
                            last_line(&restic_out.stderr)
                        ),
                    )
                }
                Some(op) => {
                    DumpError::new(op.class, format!("`restic dump` failed: {}", op.message))
                }
                None => DumpError::new(ErrorClass::Other, "`restic dump` failed"),
            },
        };
        e.stderr = tail(&restic_out.stderr, STDERR_TAIL);
        e
    };

    match consumer {
        Consumer::File(f, path) => {
            let synced = f.sync_all().await;
            drop(f);
            if restic_failed || consumer_gone || synced.is_err() {
                let _ = tokio::fs::remove_file(&path).await;
                return Err(if restic_failed {
                    fail_restic(restic_ended)
                } else {
                    DumpError::new(
                        ErrorClass::NoSpace,
                        format!(
                            "writing `{}` failed; the partial file was removed (disk full?)",
                            path.display()
                        ),
                    )
                });
            }
        }
        Consumer::Proc(mut p) => {
            if restic_failed {
                // Stop the restore before it sees the end of its input: a
                // truncated dump must not look complete to it either.
                p.stop().await;
                let _ = p.finish(Ended::Interrupted(15)).await;
                return Err(fail_restic(restic_ended));
            }
            p.close_input().await;
            let ended = match process::bounded(p.wait(), Some(deadline), shutdown).await {
                Ok(e) => e,
                Err(why) => {
                    p.stop().await;
                    why
                }
            };
            let stderr = p.finish(ended).await;
            if !ended.success() {
                let last = last_line(&stderr);
                return Err(DumpError {
                    class: if matches!(ended, Ended::Interrupted(_)) {
                        ErrorClass::Interrupted
                    } else {
                        ErrorClass::DumpFailed
                    },
                    message: format!(
                        "restoring dump `{}` into {into} failed ({}){}",
                        dump.name,
                        ended.describe(),
                        if last.is_empty() {
                            String::new()
                        } else {
                            format!(": {last}")
                        }
                    ),
                    stderr,
                });
            }
            if consumer_gone {
                return Err(DumpError::new(
                    ErrorClass::DumpFailed,
                    format!(
                        "{into} stopped reading before the end of dump `{}` (exited 0 after {bytes} bytes)",
                        dump.name
                    ),
                ));
            }
        }
    }
    Ok(Restored {
        bytes,
        duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        into,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::dump::Connection;

    fn dump(source: DumpSource) -> Dump {
        Dump {
            name: "db".into(),
            source,
            filename: "db.sql".into(),
            container: None,
            restore_command: None,
            timeout_seconds: None,
            verify_command: None,
            verify_scratch_database: None,
        }
    }

    #[test]
    fn passwords_go_to_the_environment_never_argv() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let pw = dir.path().join("pw");
        std::fs::write(&pw, "s3cret\n").unwrap_or_else(|e| panic!("{e}"));
        let conn = Connection {
            user: Some("app".into()),
            host: Some("127.0.0.1".into()),
            port: Some(5432),
            password_file: Some(pw),
        };
        for (d, var) in [
            (
                dump(DumpSource::Postgres {
                    database: Some("shop".into()),
                    connection: conn.clone(),
                }),
                "PGPASSWORD",
            ),
            (
                dump(DumpSource::Mariadb {
                    flavor: Flavor::Mariadb,
                    database: None,
                    connection: conn.clone(),
                }),
                "MYSQL_PWD",
            ),
        ] {
            let mut scratch = d.clone();
            scratch.verify_scratch_database = Some("drill".into());
            let check = match drill_check(&scratch, None) {
                Ok(DrillCheck::Command { cmd, .. }) => Ok(cmd),
                other => panic!("{other:?}"),
            };
            for c in [dump_command(&d), restore_command(&d), check] {
                let c = c.unwrap_or_else(|e| panic!("{e}"));
                assert!(!c.display().contains("s3cret"), "{}", c.display());
                assert_eq!(c.env, [(var.to_string(), "s3cret".to_string())]);
            }
        }
    }

    #[test]
    fn an_sqlite_dump_that_ends_in_rollback_is_incomplete() {
        assert!(sqlite_dump_complete(b"INSERT INTO a VALUES(1);\nCOMMIT;\n"));
        assert!(!sqlite_dump_complete(
            b"/**** ERROR: (5) database is locked *****/\nROLLBACK; -- due to errors\n"
        ));
        assert!(!sqlite_dump_complete(b""));
    }

    #[test]
    fn preset_command_lines() {
        let pg = dump(DumpSource::Postgres {
            database: Some("shop".into()),
            connection: Connection {
                port: Some(5433),
                ..Connection::default()
            },
        });
        assert_eq!(
            dump_command(&pg).map(|c| c.display()).ok().as_deref(),
            Some("pg_dump --format=custom --no-password --port=5433 --dbname=shop")
        );
        let my = dump(DumpSource::Mariadb {
            flavor: Flavor::Mysql,
            database: Some("shop".into()),
            connection: Connection::default(),
        });
        assert_eq!(
            dump_command(&my).map(|c| c.display()).ok().as_deref(),
            Some("mysqldump --single-transaction --routines --triggers --databases shop")
        );
        let cmd = dump(DumpSource::Command {
            command: "echo hi".into(),
        });
        assert!(
            restore_command(&cmd)
                .err()
                .is_some_and(|e| e.message.contains("--to-command"))
        );
        assert!(verify_command(&pg).is_some());
    }

    #[test]
    fn drill_checks_follow_the_preset_unless_a_command_is_set() {
        let name =
            |d: &Dump, svc: Option<&str>| drill_check(d, svc).map(|c| c.name()).unwrap_or("error");
        let mut pg = dump(DumpSource::Postgres {
            database: Some("shop".into()),
            connection: Connection::default(),
        });
        assert_eq!(name(&pg, None), "pg_restore");
        assert_eq!(name(&pg, Some("true")), "service_verify_command");
        pg.verify_scratch_database = Some("shop_drill".into());
        assert_eq!(name(&pg, None), "scratch_load");
        pg.verify_command = Some("true".into());
        assert_eq!(name(&pg, Some("false")), "verify_command");
        let all = dump(DumpSource::Postgres {
            database: None,
            connection: Connection::default(),
        });
        assert_eq!(name(&all, None), "pg_dumpall_complete");
        let my = dump(DumpSource::Mariadb {
            flavor: Flavor::Mariadb,
            database: None,
            connection: Connection::default(),
        });
        assert_eq!(name(&my, None), "mariadb_dump_complete");
        let lite = dump(DumpSource::Sqlite {
            path: "/a.db".into(),
        });
        assert_eq!(name(&lite, None), "sqlite_load");
        let cmd = dump(DumpSource::Command {
            command: "x".into(),
        });
        assert_eq!(name(&cmd, None), "read_back");
    }

    #[test]
    fn completion_lines_are_found_at_the_end_only() {
        assert!(ends_complete(
            b"INSERT ...;\n/*!40111 SET SQL_NOTES=@OLD_SQL_NOTES */;\n\n-- Dump completed on 2026-11-25 18:00:00\n",
            MARIADB_DUMP_COMPLETE
        ));
        assert!(!ends_complete(
            b"INSERT INTO t VALUES (1),(2",
            MARIADB_DUMP_COMPLETE
        ));
        assert!(ends_complete(
            b"--\n-- PostgreSQL database cluster dump complete\n--\n\n",
            PG_DUMPALL_COMPLETE
        ));
    }
}
