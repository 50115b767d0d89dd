//! Run history in SQLite: the one source that `status` (and later metrics,
//! notifications and the web page) read, so they can never disagree.
//!
//! Migrations are append-only and applied when the database opens; the
//! schema version is SQLite's `user_version`.

mod web;

use std::path::{Path, PathBuf};

mod facts;
mod open;
mod seen;

pub use open::Recovery;
pub use seen::HistoryReset;

use rusqlite::{Connection, OptionalExtension, params};

use crate::model::{ErrorClass, Outcome, RunStatus, VerifyKind};

pub use facts::DestinationFacts;
use serde::Serialize;

/// Each entry moves the schema one version up. Never edit a shipped entry.
const MIGRATIONS: &[&str] = &[
    r"
CREATE TABLE runs (
    id            INTEGER PRIMARY KEY,
    service       TEXT    NOT NULL,
    started_at    INTEGER NOT NULL,   -- unix milliseconds
    finished_at   INTEGER,
    outcome       TEXT    NOT NULL,   -- running | ok | warning | failed | interrupted
    error_class   TEXT,
    error_message TEXT,
    trigger       TEXT    NOT NULL,
    pid           INTEGER NOT NULL,
    host          TEXT    NOT NULL,
    log_file      TEXT
);
CREATE INDEX runs_service_started ON runs (service, started_at);
CREATE TABLE run_targets (
    id               INTEGER PRIMARY KEY,
    run_id           INTEGER NOT NULL REFERENCES runs (id),
    destination      TEXT    NOT NULL,
    repository       TEXT    NOT NULL,
    outcome          TEXT    NOT NULL,
    error_class      TEXT,
    error_message    TEXT,
    snapshot_id      TEXT,
    files_new        INTEGER,
    files_changed    INTEGER,
    files_unmodified INTEGER,
    bytes_added      INTEGER,
    bytes_processed  INTEGER,
    duration_ms      INTEGER NOT NULL,
    finished_at      INTEGER NOT NULL
);
CREATE INDEX run_targets_run ON run_targets (run_id);
CREATE INDEX run_targets_dest ON run_targets (destination, finished_at);
",
    r"
CREATE TABLE maintenance (
    id          INTEGER PRIMARY KEY,
    service     TEXT    NOT NULL,
    destination TEXT    NOT NULL,
    kind        TEXT    NOT NULL,   -- prune | check | ...
    at          INTEGER NOT NULL    -- unix milliseconds
);
CREATE INDEX maintenance_lookup ON maintenance (service, destination, kind, at);
",
    r"
CREATE TABLE verifies (
    id            INTEGER PRIMARY KEY,
    service       TEXT    NOT NULL,
    destination   TEXT    NOT NULL,
    kind          TEXT    NOT NULL,   -- check | read-data | subset | drill
    subset        TEXT,               -- e.g. 3/10 for kind = subset
    trigger       TEXT    NOT NULL,   -- manual | cron | systemd | web
    started_at    INTEGER NOT NULL,   -- unix milliseconds
    finished_at   INTEGER,
    outcome       TEXT    NOT NULL,   -- running | ok | warning | failed | interrupted
    error_class   TEXT,
    error_message TEXT,
    detail        TEXT                -- JSON: what was read / compared
);
CREATE INDEX verifies_lookup ON verifies (service, destination, started_at);
",
    r"
-- What is known about a repository beyond our own runs: the snapshot count
-- (after retention, or from `status --live`). Written by history/facts.rs.
CREATE TABLE repository_facts (
    service      TEXT    NOT NULL,
    destination  TEXT    NOT NULL,
    snapshots    INTEGER,
    snapshots_at INTEGER,            -- unix milliseconds
    PRIMARY KEY (service, destination)
);
",
    // Streamed dumps: a target row per dump and destination, named here.
    r"
ALTER TABLE run_targets ADD COLUMN dump TEXT;   -- NULL: the file snapshot
",
    // When `run` or `setup` first saw each destination of a service in the
    // configuration: one with no snapshot yet is `new`, not `stale`, until
    // its max_age has passed since then. Existing services count from their
    // first recorded run.
    r"
CREATE TABLE first_seen (
    service     TEXT    NOT NULL,
    destination TEXT    NOT NULL,
    at          INTEGER NOT NULL,   -- unix milliseconds
    PRIMARY KEY (service, destination)
);
INSERT OR IGNORE INTO first_seen (service, destination, at)
    SELECT r.service, t.destination, MIN(r.started_at)
    FROM runs r JOIN run_targets t ON t.run_id = r.id
    GROUP BY r.service, t.destination;
",
    // A damaged database moved aside (history/open.rs): the new one says
    // when, where to, and why.
    r"
CREATE TABLE history_resets (
    at       INTEGER NOT NULL,      -- unix milliseconds
    moved_to TEXT    NOT NULL,
    reason   TEXT    NOT NULL
);
",
];

/// The database's file name in the state directory.
pub const FILE: &str = "history.sqlite";

/// History database errors.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("cannot create the state directory `{path}`: {source}")]
    Dir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("history database `{path}`: {source}")]
    Sql {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error(
        "history database `{path}` is damaged ({reason}); the next `restic-manager run` moves it aside and starts a new one"
    )]
    Damaged { path: PathBuf, reason: String },
    #[error(
        "history database `{path}` has schema version {found}, newer than this restic-manager knows ({known}); upgrade restic-manager"
    )]
    TooNew {
        path: PathBuf,
        found: usize,
        known: usize,
    },
}

/// The open history database.
pub struct History {
    conn: Connection,
    path: PathBuf,
    /// Set by [`History::open_for_run`] when it reset the database or
    /// went on in memory.
    recovery: Option<Recovery>,
    notes: Vec<String>,
    /// Opened by [`History::open_read_only`].
    read_only: bool,
}

/// A per-destination result to record.
#[derive(Debug, Clone, Serialize)]
pub struct TargetRecord {
    pub destination: String,
    pub repository: String,
    pub outcome: Outcome,
    pub error_class: Option<ErrorClass>,
    pub error_message: Option<String>,
    pub snapshot_id: Option<String>,
    pub files_new: Option<u64>,
    pub files_changed: Option<u64>,
    pub files_unmodified: Option<u64>,
    pub bytes_added: Option<u64>,
    pub bytes_processed: Option<u64>,
    pub duration_ms: u64,
    /// The dump this row is for (`None`: the file snapshot).
    pub dump: Option<String>,
}

impl TargetRecord {
    /// The columns [`TargetRecord::from_row`] reads, in order.
    pub const COLUMNS: &'static str = "destination, repository, outcome, error_class, error_message, snapshot_id, files_new, files_changed, files_unmodified, bytes_added, bytes_processed, duration_ms, dump";

    /// A `run_targets` row selected with [`TargetRecord::COLUMNS`].
    pub fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<TargetRecord> {
        let u = |v: Option<i64>| v.and_then(|x| u64::try_from(x).ok());
        Ok(TargetRecord {
            destination: r.get(0)?,
            repository: r.get(1)?,
            outcome: r.get(2)?,
            error_class: r.get(3)?,
            error_message: r.get(4)?,
            snapshot_id: r.get(5)?,
            files_new: u(r.get(6)?),
            files_changed: u(r.get(7)?),
            files_unmodified: u(r.get(8)?),
            bytes_added: u(r.get(9)?),
            bytes_processed: u(r.get(10)?),
            duration_ms: u(r.get(11)?).unwrap_or(0),
            dump: r.get(12)?,
        })
    }
}

impl RunRow {
    /// The columns [`RunRow::from_row`] reads, in order.
    pub const COLUMNS: &'static str =
        "id, service, started_at, finished_at, outcome, error_class, error_message, log_file";

    /// A `runs` row selected with [`RunRow::COLUMNS`].
    pub fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RunRow> {
        Ok(RunRow {
            id: r.get(0)?,
            service: r.get(1)?,
            started_at: r.get(2)?,
            finished_at: r.get(3)?,
            outcome: r.get(4)?,
            error_class: r.get(5)?,
            error_message: r.get(6)?,
            log_file: r.get(7)?,
        })
    }
}

impl VerifyRow {
    /// The columns [`VerifyRow::from_row`] reads, in order.
    pub const COLUMNS: &'static str = "id, service, destination, kind, subset, trigger, started_at, finished_at, outcome, error_class, error_message, detail";

    /// A `verifies` row selected with [`VerifyRow::COLUMNS`].
    pub fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<VerifyRow> {
        Ok(VerifyRow {
            id: r.get(0)?,
            service: r.get(1)?,
            destination: r.get(2)?,
            kind: r.get(3)?,
            subset: r.get(4)?,
            trigger: r.get(5)?,
            started_at_ms: r.get(6)?,
            finished_at_ms: r.get(7)?,
            outcome: r.get(8)?,
            error_class: r.get(9)?,
            error_message: r.get(10)?,
            detail: r.get(11)?,
        })
    }
}

/// A run as read back.
#[derive(Debug, Clone, Serialize)]
pub struct RunRow {
    pub id: i64,
    pub service: String,
    pub started_at: i64,
    pub finished_at: Option<i64>,
    pub outcome: RunStatus,
    pub error_class: Option<ErrorClass>,
    pub error_message: Option<String>,
    pub log_file: Option<String>,
}

/// One verification of one repository.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyRow {
    pub id: i64,
    pub service: String,
    pub destination: String,
    pub kind: VerifyKind,
    pub subset: Option<String>,
    pub trigger: String,
    pub started_at_ms: i64,
    pub finished_at_ms: Option<i64>,
    pub outcome: RunStatus,
    pub error_class: Option<ErrorClass>,
    pub error_message: Option<String>,
    pub detail: Option<String>,
}

/// Unix milliseconds now.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn to_i64(v: Option<u64>) -> Option<i64> {
    v.and_then(|x| i64::try_from(x).ok())
}

impl History {
    /// Opens (creating if needed) `<state_dir>/history.sqlite` and migrates
    /// it; fails on any problem. Commands use [`History::open_for_run`] or
    /// [`History::open_read_only`], which cope with damage.
    pub fn open(state_dir: &Path) -> Result<History, HistoryError> {
        std::fs::create_dir_all(state_dir).map_err(|source| HistoryError::Dir {
            path: state_dir.to_path_buf(),
            source,
        })?;
        let path = state_dir.join(FILE);
        let sql = |source| HistoryError::Sql {
            path: path.clone(),
            source,
        };
        let conn = Connection::open(&path).map_err(sql)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(sql)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(sql)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(sql)?;
        let mut h = History {
            conn,
            path,
            recovery: None,
            notes: Vec::new(),
            read_only: false,
        };
        open::migrate(&mut h.conn, &h.path)?;
        Ok(h)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn sql(&self, source: rusqlite::Error) -> HistoryError {
        HistoryError::Sql {
            path: self.path.clone(),
            source,
        }
    }

    /// Records a run as started; returns its id.
    pub fn start_run(&self, service: &str, trigger: &str, host: &str) -> Result<i64, HistoryError> {
        self.conn
            .execute(
                "INSERT INTO runs (service, started_at, outcome, trigger, pid, host) VALUES (?1, ?2, 'running', ?3, ?4, ?5)",
                params![service, now_ms(), trigger, std::process::id(), host],
            )
            .map_err(|e| self.sql(e))?;
        Ok(self.conn.last_insert_rowid())
    }

    pub fn set_log_file(&self, run: i64, log: &Path) -> Result<(), HistoryError> {
        self.conn
            .execute(
                "UPDATE runs SET log_file = ?2 WHERE id = ?1",
                params![run, log.to_string_lossy()],
            )
            .map_err(|e| self.sql(e))?;
        Ok(())
    }

    pub fn add_target(&self, run: i64, t: &TargetRecord) -> Result<(), HistoryError> {
        self.conn
            .execute(
                "INSERT INTO run_targets (run_id, destination, repository, outcome, error_class, error_message, snapshot_id, files_new, files_changed, files_unmodified, bytes_added, bytes_processed, duration_ms, finished_at, dump)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
                params![
                    run,
                    t.destination,
                    t.repository,
                    t.outcome,
                    t.error_class,
                    t.error_message,
                    t.snapshot_id,
                    to_i64(t.files_new),
                    to_i64(t.files_changed),
                    to_i64(t.files_unmodified),
                    to_i64(t.bytes_added),
                    to_i64(t.bytes_processed),
                    to_i64(Some(t.duration_ms)),
                    now_ms(),
                    t.dump
                ],
            )
            .map_err(|e| self.sql(e))?;
        Ok(())
    }

    pub fn finish_run(
        &self,
        run: i64,
        outcome: Outcome,
        error_class: Option<ErrorClass>,
        error_message: Option<&str>,
    ) -> Result<(), HistoryError> {
        self.conn
            .execute(
                "UPDATE runs SET finished_at = ?2, outcome = ?3, error_class = ?4, error_message = ?5 WHERE id = ?1",
                params![run, now_ms(), outcome, error_class, error_message],
            )
            .map_err(|e| self.sql(e))?;
        Ok(())
    }

    /// The newest run of a service.
    pub fn last_run(&self, service: &str) -> Result<Option<RunRow>, HistoryError> {
        self.conn
            .query_row(
                "SELECT id, service, started_at, finished_at, outcome, error_class, error_message, log_file
                 FROM runs WHERE service = ?1 ORDER BY started_at DESC, id DESC LIMIT 1",
                params![service],
                RunRow::from_row,
            )
            .optional()
            .map_err(|e| self.sql(e))
    }

    /// Whether the run of `service` before run `id` was interrupted (a
    /// signal, or its process was killed).
    pub fn previous_run_interrupted(&self, service: &str, id: i64) -> Result<bool, HistoryError> {
        self.conn
            .query_row(
                "SELECT outcome = 'interrupted' FROM runs WHERE service = ?1 AND id < ?2
                 ORDER BY id DESC LIMIT 1",
                params![service, id],
                |r| r.get(0),
            )
            .optional()
            .map(|v| v.unwrap_or(false))
            .map_err(|e| self.sql(e))
    }

    /// Records a maintenance operation (e.g. `prune`) on a repository.
    pub fn record_maintenance(
        &self,
        service: &str,
        destination: &str,
        kind: &str,
    ) -> Result<(), HistoryError> {
        self.conn
            .execute(
                "INSERT INTO maintenance (service, destination, kind, at) VALUES (?1, ?2, ?3, ?4)",
                params![service, destination, kind, now_ms()],
            )
            .map_err(|e| self.sql(e))?;
        Ok(())
    }

    /// When a maintenance operation last ran on a repository.
    pub fn last_maintenance(
        &self,
        service: &str,
        destination: &str,
        kind: &str,
    ) -> Result<Option<i64>, HistoryError> {
        self.conn
            .query_row(
                "SELECT MAX(at) FROM maintenance WHERE service = ?1 AND destination = ?2 AND kind = ?3",
                params![service, destination, kind],
                |r| r.get(0),
            )
            .map_err(|e| self.sql(e))
    }

    /// Records a verification (check, read-data, subset, drill) as started;
    /// returns its id.
    pub fn start_verify(
        &self,
        service: &str,
        destination: &str,
        kind: VerifyKind,
        subset: Option<&str>,
        trigger: &str,
    ) -> Result<i64, HistoryError> {
        self.conn
            .execute(
                "INSERT INTO verifies (service, destination, kind, subset, trigger, started_at, outcome) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'running')",
                params![service, destination, kind, subset, trigger, now_ms()],
            )
            .map_err(|e| self.sql(e))?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Records how a verification ended; `detail` is a JSON document.
    pub fn finish_verify(
        &self,
        id: i64,
        outcome: Outcome,
        error_class: Option<ErrorClass>,
        error_message: Option<&str>,
        detail: Option<&str>,
    ) -> Result<(), HistoryError> {
        self.conn
            .execute(
                "UPDATE verifies SET finished_at = ?2, outcome = ?3, error_class = ?4, error_message = ?5, detail = ?6 WHERE id = ?1",
                params![id, now_ms(), outcome, error_class, error_message, detail],
            )
            .map_err(|e| self.sql(e))?;
        Ok(())
    }

    /// When the oldest run of `service` still marked running started (unix
    /// ms): the one holding its lock when another run is refused, and the
    /// `restic_manager_run_started_timestamp_seconds` gauge, which the
    /// fleet's long-running alert compares with the threshold.
    pub fn running_since(&self, service: &str) -> Result<Option<i64>, HistoryError> {
        self.conn
            .query_row(
                "SELECT MIN(started_at) FROM runs WHERE service = ?1 AND outcome = 'running'",
                params![service],
                |r| r.get(0),
            )
            .map_err(|e| self.sql(e))
    }

    /// Marks runs left "running" by a process that no longer exists as
    /// interrupted (a crash or `kill -9`), so status does not lie.
    pub fn reap_dead_runs(&self) -> Result<(), HistoryError> {
        let mut stmt = self
            .conn
            .prepare("SELECT id, pid FROM runs WHERE outcome = 'running'")
            .map_err(|e| self.sql(e))?;
        let rows: Vec<(i64, i64)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(|e| self.sql(e))?
            .collect::<Result<_, _>>()
            .map_err(|e| self.sql(e))?;
        drop(stmt);
        for (id, pid) in rows {
            let alive = i32::try_from(pid)
                .is_ok_and(|p| nix::sys::signal::kill(nix::unistd::Pid::from_raw(p), None).is_ok());
            if !alive {
                self.finish_run(
                    id,
                    Outcome::Interrupted,
                    Some(ErrorClass::Interrupted),
                    Some("the restic-manager process ended before the run finished"),
                )?;
            }
        }
        Ok(())
    }

    /// Bytes each snapshot of `service` on `destination` covered, keyed by
    /// the id restic printed (8 characters on 0.14, 64 later): the size
    /// column of `restore`'s snapshot table (restic 0.14 keeps no sizes).
    pub fn snapshot_sizes(
        &self,
        service: &str,
        destination: &str,
    ) -> Result<Vec<(String, u64)>, HistoryError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT t.snapshot_id, t.bytes_processed FROM run_targets t JOIN runs r ON r.id = t.run_id
                 WHERE r.service = ?1 AND +t.destination = ?2 AND t.snapshot_id IS NOT NULL AND t.bytes_processed IS NOT NULL",
            )
            .map_err(|e| self.sql(e))?;
        let rows = stmt
            .query_map(params![service, destination], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
            })
            .map_err(|e| self.sql(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (id, bytes) = row.map_err(|e| self.sql(e))?;
            out.push((id, u64::try_from(bytes).unwrap_or(0)));
        }
        Ok(out)
    }
}

/// Verify queries (rotation position, reaping).
impl History {
    /// The subset (`n/N`) of the newest scheduled subset verify of one
    /// repository that ran to an end (ok or failed: a damaged part is
    /// reported, not read again forever; an interrupted one is repeated).
    pub fn last_rotation_subset(
        &self,
        service: &str,
        destination: &str,
    ) -> Result<Option<String>, HistoryError> {
        self.conn
            .query_row(
                "SELECT subset FROM verifies
                 WHERE service = ?1 AND destination = ?2 AND kind = 'subset'
                   AND trigger != 'cli' AND outcome IN ('ok', 'warning', 'failed')
                 ORDER BY started_at DESC, id DESC LIMIT 1",
                params![service, destination],
                |r| r.get(0),
            )
            .optional()
            .map(Option::flatten)
            .map_err(|e| self.sql(e))
    }

    /// Marks verifies of `service` left `running` as interrupted (the
    /// process crashed or was killed). Call it while holding the service's
    /// lock: verifies run under that lock, so a row still `running` then
    /// belongs to a process that is gone.
    pub fn reap_dead_verifies(&self, service: &str) -> Result<(), HistoryError> {
        self.conn
            .execute(
                "UPDATE verifies SET outcome = 'interrupted', error_class = 'interrupted',
                   error_message = 'the restic-manager process ended before the verify finished',
                   finished_at = ?2
                 WHERE service = ?1 AND outcome = 'running'",
                params![service, now_ms()],
            )
            .map_err(|e| self.sql(e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newest_verify_and_newest_successful_verify_are_told_apart() -> Result<(), HistoryError> {
        let dir = tempfile::tempdir().map_err(|source| HistoryError::Dir {
            path: PathBuf::from("tempdir"),
            source,
        })?;
        let h = History::open(dir.path())?;
        assert!(h.verify_pair("app", "local")?.0.is_none());
        let ok = h.start_verify("app", "local", VerifyKind::Subset, Some("1/10"), "manual")?;
        h.finish_verify(ok, Outcome::Ok, None, None, Some(r#"{"packs":3}"#))?;
        let bad = h.start_verify("app", "local", VerifyKind::ReadData, None, "cron")?;
        h.finish_verify(
            bad,
            Outcome::Failed,
            Some(ErrorClass::RepositoryDamaged),
            Some("pack abc is missing"),
            None,
        )?;
        // A verification still running is neither.
        h.start_verify("app", "local", VerifyKind::Check, None, "manual")?;

        let (newest, good) = h.verify_pair("app", "local")?;
        assert_eq!(newest.as_ref().map(|v| v.outcome.as_str()), Some("failed"));
        assert_eq!(
            newest.and_then(|v| v.error_class),
            Some(ErrorClass::RepositoryDamaged)
        );
        assert_eq!(
            good.as_ref().map(|v| v.subset.as_deref()),
            Some(Some("1/10"))
        );
        assert!(h.verify_pair("app", "offsite")?.0.is_none());
        Ok(())
    }
}
