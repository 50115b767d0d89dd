//! The preset commands: how each dump type is dumped and restored, with
//! its password in the environment, never in argv.

use crate::config::dump::{Connection, Dump, DumpSource, Flavor};
use crate::model::Failure;
use crate::process::Spec;
use crate::restic::ErrorClass;
use std::path::Path;

/// A program and its environment. The environment may hold a password;
/// argv never does, and only argv is ever shown.
#[derive(Debug, Clone)]
pub struct DumpCommand {
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    /// Inside a container without `password_file`: the password variable
    /// filled from the container's own environment when the exec starts.
    pub container_password: Option<crate::sources::container_password::ContainerPassword>,
}

impl DumpCommand {
    pub(super) fn new(argv: &[&str]) -> Self {
        DumpCommand {
            argv: argv.iter().map(ToString::to_string).collect(),
            env: Vec::new(),
            container_password: None,
        }
    }

    pub(super) fn shell(cmd: &str) -> Self {
        Self::new(&["sh", "-c", cmd])
    }

    pub(super) fn arg(mut self, a: impl Into<String>) -> Self {
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

/// Reads a password file's first line, for the child's environment.
fn read_password(dump: &Dump, file: &Path) -> Result<String, Failure> {
    let text = std::fs::read_to_string(file).map_err(|e| {
        Failure::new(
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

pub(super) fn connect_args(cmd: DumpCommand, c: &Connection, pg: bool) -> DumpCommand {
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
pub(super) fn with_password(mut cmd: DumpCommand, dump: &Dump) -> Result<DumpCommand, Failure> {
    let (var, conn) = match &dump.source {
        DumpSource::Postgres { connection, .. } => ("PGPASSWORD", connection),
        DumpSource::Mariadb { connection, .. } => ("MYSQL_PWD", connection),
        _ => return Ok(cmd),
    };
    if let Some(f) = &conn.password_file {
        cmd.env.push((var.to_string(), read_password(dump, f)?));
    } else if dump.container.is_some() {
        cmd.container_password = Some(crate::sources::container_password::ContainerPassword {
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
pub(super) fn sqlite_dump_complete(tail: &[u8]) -> bool {
    String::from_utf8_lossy(tail)
        .trim_end()
        .ends_with("COMMIT;")
}

/// The command whose stdout is the dump.
pub fn dump_command(dump: &Dump) -> Result<DumpCommand, Failure> {
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
pub fn restore_command(dump: &Dump) -> Result<DumpCommand, Failure> {
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
            return Err(Failure::new(
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
