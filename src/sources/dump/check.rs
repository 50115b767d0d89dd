//! How a restore drill checks a stored dump: a preset's check, a scratch
//! database, or the configured `verify_command`.

use crate::config::dump::{Dump, DumpSource, Flavor};
use crate::model::Failure;
use crate::restic::ErrorClass;

use super::presets::{DumpCommand, connect_args, verify_command, with_password};

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
pub fn drill_check(dump: &Dump, service_command: Option<&str>) -> Result<DrillCheck, Failure> {
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
                return Err(Failure::new(
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
