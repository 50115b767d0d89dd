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
//!
//! Submodules: `presets` (the commands each dump type runs), `check` (how a
//! restore drill checks a stored dump), `producer` (a local child or a
//! process inside a container), `backup` (the pump into restic) and
//! `restore` (a stored dump back out).

mod backup;
mod check;
mod presets;
mod producer;
mod restore;

pub(crate) use backup::stop_receiver;
pub use backup::{BackupRequest, DumpRun, TargetResult, backup};
pub use check::{
    DrillCheck, MARIADB_DUMP_COMPLETE, PG_DUMPALL_COMPLETE, drill_check, ends_complete,
};
pub use presets::{DumpCommand, dump_command, restore_command, verify_command};
pub use restore::{RestoreTo, Restored, restore_dump};

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

#[cfg(test)]
mod tests {
    use super::presets::sqlite_dump_complete;
    use super::*;
    use crate::config::dump::{Connection, Dump, DumpSource, Flavor};

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
        let dir = tempfile::tempdir().unwrap();
        let pw = dir.path().join("pw");
        std::fs::write(&pw, "s3cret\n").unwrap();
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
                let c = c.unwrap();
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
