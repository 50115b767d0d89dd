//! Opening the history database so that it never stops a backup.
//!
//! History is bookkeeping; the backup is what matters. Commands that record
//! (`run`, `verify`, dashboard jobs) open it with [`History::open_for_run`],
//! which never fails: a damaged database (not a database, truncated, a
//! directory in its place) is moved aside as `history.sqlite.damaged-TIME`
//! and a new one started; a database that cannot be written (read-only
//! file or folder, locked by another process, newer schema) is replaced by
//! one in memory, so the command goes on unrecorded. Either way
//! [`History::recovery`] says what was done, and the command warns and
//! notifies. A `-shm` file left read-only by another user is removed when
//! no process has it open (SQLite rebuilds it from the WAL), instead of
//! failing every later write.
//!
//! Commands that only read (`status`, `metrics`, `restore`, `notify check`)
//! open it with [`History::open_read_only`], which works on a read-only
//! file and folder and changes nothing, except to create a missing
//! database or apply migrations where it may write.

use std::fmt;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, ErrorCode, OpenFlags};

use super::{FILE, History, HistoryError, MIGRATIONS};

/// How long a writer waits for another process's lock before it gives up
/// and goes on unrecorded.
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// What [`History::open_for_run`] had to do instead of a plain open.
#[derive(Debug, Clone)]
pub enum Recovery {
    /// The database was damaged: moved to `moved_to`, a new one started.
    Reset {
        path: PathBuf,
        moved_to: PathBuf,
        reason: String,
    },
    /// The database cannot be used for writing: this command's records are
    /// kept in memory only.
    Unrecorded { path: PathBuf, reason: String },
}

impl fmt::Display for Recovery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Recovery::Reset {
                path,
                moved_to,
                reason,
            } => write!(
                f,
                "history database `{}` was damaged ({reason}); moved it to `{}` and started a new one, so earlier runs are no longer in history",
                path.display(),
                moved_to.display()
            ),
            Recovery::Unrecorded { path, reason } => write!(
                f,
                "history database `{}` cannot be written ({reason}); this run is not recorded in history",
                path.display()
            ),
        }
    }
}

/// Why a writable open failed.
enum Failure {
    /// The file is not a usable database: move it aside.
    Damaged(String),
    /// Writes fail because `-shm` is read-only.
    ShmReadOnly,
    /// Anything else (read-only, locked, too new): go on unrecorded.
    Other(String),
}

fn classify(e: &rusqlite::Error) -> Failure {
    match e.sqlite_error_code() {
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => {
            Failure::Damaged(e.to_string())
        }
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => Failure::Other(format!(
            "locked by another process for more than {} s",
            BUSY_TIMEOUT.as_secs()
        )),
        _ => Failure::Other(e.to_string()),
    }
}

fn writable(p: &Path) -> bool {
    nix::unistd::access(p, nix::unistd::AccessFlags::W_OK).is_ok()
}

/// SQLite's "unable to open database file" in words that name the cause.
fn explain(path: &Path, dir: &Path, reason: String) -> String {
    if path.exists() && !writable(path) {
        "the file is read-only".into()
    } else if dir.is_dir() && !writable(dir) {
        format!("its folder `{}` is read-only", dir.display())
    } else {
        reason
    }
}

fn sidecar(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Applies the migrations `conn` lacks.
pub(super) fn migrate(conn: &mut Connection, path: &Path) -> Result<(), HistoryError> {
    let sql = |source| HistoryError::Sql {
        path: path.to_path_buf(),
        source,
    };
    let version: usize = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(sql)?;
    if version > MIGRATIONS.len() {
        return Err(HistoryError::TooNew {
            path: path.to_path_buf(),
            found: version,
            known: MIGRATIONS.len(),
        });
    }
    if version < MIGRATIONS.len() {
        let tx = conn.transaction().map_err(sql)?;
        for m in &MIGRATIONS[version..] {
            tx.execute_batch(m).map_err(sql)?;
        }
        tx.pragma_update(None, "user_version", MIGRATIONS.len())
            .map_err(sql)?;
        tx.commit().map_err(sql)?;
    }
    Ok(())
}

/// Opens `path` for writing and proves that it can be written.
fn try_writable(path: &Path) -> Result<Connection, Failure> {
    if path.is_dir() {
        return Err(Failure::Damaged("a folder is in its place".into()));
    }
    let mut conn = Connection::open(path).map_err(|e| classify(&e))?;
    let step = |r: rusqlite::Result<()>| r.map_err(|e| classify(&e));
    step(conn.busy_timeout(BUSY_TIMEOUT))?;
    step(conn.pragma_update(None, "journal_mode", "WAL"))?;
    // WAL + NORMAL stays consistent after a crash; a power cut can lose
    // only the newest rows. Each fsync costs 5–20 ms on the SD cards and
    // disks of home servers, and a run would otherwise do eight.
    step(conn.pragma_update(None, "synchronous", "NORMAL"))?;
    match migrate(&mut conn, path) {
        Ok(()) => {}
        Err(HistoryError::Sql { source, .. }) => return Err(classify(&source)),
        Err(e) => return Err(Failure::Other(e.to_string())),
    }
    // A truncated file opens and reads its header; only reading its pages
    // finds the damage (a few ms for years of runs).
    let check: String = conn
        .query_row("PRAGMA quick_check(1)", [], |r| r.get(0))
        .map_err(|e| classify(&e))?;
    if check != "ok" {
        return Err(Failure::Damaged(format!("integrity check: {check}")));
    }
    // Opening succeeds on a file SQLite can only read; writing the header
    // (rolled back) shows it.
    if conn.is_readonly(rusqlite::MAIN_DB).unwrap_or(false) {
        return Err(Failure::Other("the file is read-only".into()));
    }
    let probe = format!(
        "BEGIN IMMEDIATE; PRAGMA user_version = {}; ROLLBACK;",
        MIGRATIONS.len()
    );
    if let Err(e) = conn.execute_batch(&probe) {
        let _ = conn.execute_batch("ROLLBACK");
        if e.sqlite_error_code() == Some(ErrorCode::ReadOnly) {
            let shm = sidecar(path, "-shm");
            if shm.exists() && !writable(&shm) && writable(path) {
                return Err(Failure::ShmReadOnly);
            }
            let why = if !writable(path) {
                "the file is read-only".to_string()
            } else {
                e.to_string()
            };
            return Err(Failure::Other(why));
        }
        return Err(classify(&e));
    }
    Ok(conn)
}

/// Whether a process has `shm` open through SQLite: each connection holds
/// a read lock on its "dead man switch" byte (offset 128) while it is open.
#[cfg(target_os = "linux")]
fn shm_in_use(shm: &Path) -> bool {
    use nix::fcntl::{FcntlArg, fcntl};
    use nix::libc;
    let Ok(f) = std::fs::File::open(shm) else {
        return true;
    };
    let mut lk = libc::flock {
        l_type: libc::F_WRLCK as libc::c_short,
        l_whence: libc::SEEK_SET as libc::c_short,
        l_start: 128,
        l_len: 1,
        l_pid: 0,
    };
    match fcntl(&f, FcntlArg::F_GETLK(&mut lk)) {
        Ok(_) => lk.l_type != libc::F_UNLCK as libc::c_short,
        Err(_) => true,
    }
}

#[cfg(not(target_os = "linux"))]
fn shm_in_use(_shm: &Path) -> bool {
    true
}

/// `history.sqlite.damaged-20261203T080102Z` (with `-2`, `-3`, … when
/// taken).
fn aside_name(path: &Path) -> PathBuf {
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
    let base = sidecar(path, &format!(".damaged-{stamp}"));
    let mut candidate = base.clone();
    let mut n = 2;
    while candidate.exists() || candidate.symlink_metadata().is_ok() {
        candidate = sidecar(&base, &format!("-{n}"));
        n += 1;
    }
    candidate
}

/// Moves the database (with its `-wal` and `-shm`, which belong to it) to
/// `aside`.
fn move_aside(path: &Path, aside: &Path) -> std::io::Result<()> {
    std::fs::rename(path, aside)?;
    for s in ["-wal", "-shm"] {
        let from = sidecar(path, s);
        if from.symlink_metadata().is_ok() {
            let _ = std::fs::rename(&from, sidecar(aside, s));
        }
    }
    Ok(())
}

impl History {
    fn with(conn: Connection, path: PathBuf) -> History {
        History {
            conn,
            path,
            recovery: None,
            notes: Vec::new(),
            read_only: false,
        }
    }

    /// An empty, migrated history in memory (nothing is kept).
    fn memory(path: PathBuf) -> Result<History, HistoryError> {
        let sql = |source| HistoryError::Sql {
            path: path.clone(),
            source,
        };
        let mut conn = Connection::open_in_memory().map_err(sql)?;
        migrate(&mut conn, &path)?;
        Ok(History::with(conn, path))
    }

    /// Opens `<state_dir>/history.sqlite` for a command that records, and
    /// never fails (see the module documentation): [`History::recovery`]
    /// says when it had to reset the database or go on unrecorded, and
    /// [`History::notes`] what it repaired on the way.
    pub fn open_for_run(state_dir: &Path) -> History {
        let path = state_dir.join(FILE);
        let mut notes = Vec::new();
        let result = std::fs::create_dir_all(state_dir)
            .map_err(|e| {
                Failure::Other(format!(
                    "cannot create the state directory `{}`: {e}",
                    state_dir.display()
                ))
            })
            .and_then(|()| Self::writable_or_repaired(&path, &mut notes));
        let (conn, recovery) = match result {
            Ok(conn) => (Some(conn), None),
            Err(Failure::Damaged(reason)) => Self::reset(&path, reason),
            Err(Failure::ShmReadOnly) => (
                None,
                Some(Recovery::Unrecorded {
                    path: path.clone(),
                    reason: format!(
                        "`{}` is read-only and in use by another process",
                        sidecar(&path, "-shm").display()
                    ),
                }),
            ),
            Err(Failure::Other(reason)) => (
                None,
                Some(Recovery::Unrecorded {
                    path: path.clone(),
                    reason: explain(&path, state_dir, reason),
                }),
            ),
        };
        let mut h = match conn {
            Some(c) => History::with(c, path.clone()),
            None => match History::memory(path.clone()) {
                Ok(h) => h,
                Err(e) => no_sqlite(&e),
            },
        };
        if let Some(Recovery::Reset {
            moved_to, reason, ..
        }) = &recovery
        {
            let _ = h.conn.execute(
                "INSERT INTO history_resets (at, moved_to, reason) VALUES (?1, ?2, ?3)",
                rusqlite::params![super::now_ms(), moved_to.to_string_lossy(), reason],
            );
        }
        h.recovery = recovery;
        h.notes = notes;
        h
    }

    /// A writable connection, after removing a read-only `-shm` nobody uses.
    fn writable_or_repaired(path: &Path, notes: &mut Vec<String>) -> Result<Connection, Failure> {
        match try_writable(path) {
            Err(Failure::ShmReadOnly) => {
                let shm = sidecar(path, "-shm");
                if shm_in_use(&shm) {
                    return Err(Failure::ShmReadOnly);
                }
                std::fs::remove_file(&shm).map_err(|e| {
                    Failure::Other(format!(
                        "`{}` is read-only and cannot be removed: {e}",
                        shm.display()
                    ))
                })?;
                notes.push(format!(
                    "removed `{}`, which was read-only and not in use (SQLite rebuilds it)",
                    shm.display()
                ));
                try_writable(path)
            }
            other => other,
        }
    }

    /// Moves a damaged database aside and starts a new one. Two commands
    /// finding the same damage take turns (a lock file next to it), and
    /// the second finds the new database and keeps it.
    fn reset(path: &Path, reason: String) -> (Option<Connection>, Option<Recovery>) {
        let unrecorded = |why: String| {
            (
                None,
                Some(Recovery::Unrecorded {
                    path: path.to_path_buf(),
                    reason: why,
                }),
            )
        };
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(sidecar(path, ".lock"));
        let Ok(lock) = lock else {
            return unrecorded(format!(
                "{reason}; it cannot be moved aside: the folder is read-only"
            ));
        };
        if lock.lock().is_err() {
            return unrecorded(format!("{reason}; it cannot be moved aside"));
        }
        match try_writable(path) {
            Ok(conn) => return (Some(conn), None),
            Err(Failure::Damaged(_)) => {}
            Err(Failure::ShmReadOnly) => {
                return unrecorded("its `-shm` file is read-only".to_string());
            }
            Err(Failure::Other(why)) => return unrecorded(why),
        }
        let aside = aside_name(path);
        if let Err(e) = move_aside(path, &aside) {
            return unrecorded(format!(
                "{reason}; it cannot be moved to `{}`: {e}",
                aside.display()
            ));
        }
        match try_writable(path) {
            Ok(conn) => (
                Some(conn),
                Some(Recovery::Reset {
                    path: path.to_path_buf(),
                    moved_to: aside,
                    reason,
                }),
            ),
            Err(Failure::Damaged(why) | Failure::Other(why)) => unrecorded(format!(
                "{reason}; moved it to `{}`, but a new one cannot be started: {why}",
                aside.display()
            )),
            Err(Failure::ShmReadOnly) => unrecorded(format!(
                "{reason}; moved it to `{}`, but a new one cannot be started",
                aside.display()
            )),
        }
    }

    /// Opens `<state_dir>/history.sqlite` for a command that only reads:
    /// without creating it (a missing database reads as empty), on a
    /// read-only file or folder, and without waiting on a writer. An older
    /// schema is upgraded when the file can be written, else read through
    /// a migrated copy in memory.
    pub fn open_read_only(state_dir: &Path) -> Result<History, HistoryError> {
        let path = state_dir.join(FILE);
        if path.symlink_metadata().is_err() {
            // Nothing to read: start the database where that is allowed
            // (later runs fill it), else read an empty one.
            if let Ok(h) = History::open(state_dir) {
                return Ok(h);
            }
            let mut h = History::memory(path)?;
            h.read_only = true;
            return Ok(h);
        }
        if path.is_dir() {
            return Err(HistoryError::Damaged {
                path,
                reason: "a folder is in its place".into(),
            });
        }
        let sql = |source: rusqlite::Error| match source.sqlite_error_code() {
            Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => HistoryError::Damaged {
                path: path.clone(),
                reason: source.to_string(),
            },
            _ => HistoryError::Sql {
                path: path.clone(),
                source,
            },
        };
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let open = |uri: &str| -> rusqlite::Result<(Connection, usize)> {
            let conn = Connection::open_with_flags(uri, flags)?;
            conn.busy_timeout(BUSY_TIMEOUT)?;
            let v = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
            Ok((conn, v))
        };
        let uri = file_uri(&path);
        let (conn, version) = match open(&format!("{uri}?mode=ro")) {
            Ok(x) => x,
            // A WAL database in a folder that cannot be written, without
            // its `-shm`: nothing can be writing it, so read it as is.
            Err(e)
                if matches!(
                    e.sqlite_error_code(),
                    Some(ErrorCode::CannotOpen | ErrorCode::ReadOnly)
                ) =>
            {
                open(&format!("{uri}?mode=ro&immutable=1")).map_err(sql)?
            }
            Err(e) => return Err(sql(e)),
        };
        if version > MIGRATIONS.len() {
            return Err(HistoryError::TooNew {
                path,
                found: version,
                known: MIGRATIONS.len(),
            });
        }
        if version < MIGRATIONS.len() {
            drop(conn);
            if writable(&path) && writable(state_dir) {
                return History::open(state_dir);
            }
            let mut h = History::with(copy_to_memory(&uri).map_err(sql)?, path.clone());
            migrate(&mut h.conn, &path)?;
            h.read_only = true;
            return Ok(h);
        }
        let mut h = History::with(conn, path);
        h.read_only = true;
        Ok(h)
    }

    /// An empty history in memory, read-only for callers: what a reader
    /// shows when the database cannot be read.
    pub fn empty(state_dir: &Path) -> Result<History, HistoryError> {
        let mut h = History::memory(state_dir.join(FILE))?;
        h.read_only = true;
        Ok(h)
    }

    /// What [`History::open_for_run`] had to do, if anything.
    pub fn recovery(&self) -> Option<&Recovery> {
        self.recovery.as_ref()
    }

    /// Repairs made while opening (informational, not warnings).
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// Whether what is written reaches the database file (not when it
    /// was opened read-only, or is kept in memory).
    pub fn is_recorded(&self) -> bool {
        !self.read_only && !matches!(self.recovery, Some(Recovery::Unrecorded { .. }))
    }
}

/// When not even an in-memory database opens: SQLite cannot allocate, and
/// a process in that state cannot back anything up either.
fn no_sqlite(e: &HistoryError) -> History {
    crate::logging::error(e.to_string());
    std::process::exit(1)
}

/// `file:` URI of a path, with the characters URIs reserve escaped.
fn file_uri(path: &Path) -> String {
    let mut out = String::from("file:");
    for b in path.to_string_lossy().bytes() {
        match b {
            b'?' | b'#' | b'%' => out.push_str(&format!("%{b:02X}")),
            _ => out.push(char::from(b)),
        }
    }
    out
}

/// A copy of a read-only database in memory, tables and indexes included.
fn copy_to_memory(uri: &str) -> rusqlite::Result<Connection> {
    let mem = Connection::open_with_flags(
        ":memory:",
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_URI,
    )?;
    mem.execute("ATTACH DATABASE ?1 AS src", [format!("{uri}?mode=ro")])?;
    let version: i64 = mem.query_row("PRAGMA src.user_version", [], |r| r.get(0))?;
    let objects: Vec<(String, String, String)> = {
        let mut stmt = mem.prepare(
            "SELECT type, name, sql FROM src.sqlite_master
             WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%'
             ORDER BY type = 'index'",
        )?;
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<Result<_, _>>()?
    };
    for (kind, name, sql) in &objects {
        mem.execute_batch(sql)?;
        if kind == "table" {
            let quoted = name.replace('"', "\"\"");
            mem.execute_batch(&format!(
                "INSERT INTO main.\"{quoted}\" SELECT * FROM src.\"{quoted}\""
            ))?;
        }
    }
    mem.execute_batch("DETACH DATABASE src")?;
    mem.pragma_update(None, "user_version", version)?;
    Ok(mem)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tempdir() -> tempfile::TempDir {
        tempfile::tempdir().expect("tempdir")
    }

    #[test]
    fn damage_is_moved_aside_and_a_new_database_started() {
        for (case, damage) in [
            ("not a database", b"x".repeat(8192)),
            ("a folder", Vec::new()),
        ] {
            let dir = tempdir();
            let file = dir.path().join(FILE);
            if damage.is_empty() {
                std::fs::create_dir_all(file.join("inside")).unwrap();
            } else {
                std::fs::write(&file, &damage).unwrap();
            }
            let h = History::open_for_run(dir.path());
            let Some(Recovery::Reset { moved_to, .. }) = h.recovery() else {
                panic!("{case}: {:?}", h.recovery());
            };
            assert!(moved_to.exists(), "{case}");
            assert!(h.is_recorded(), "{case}");
            let reset = h.last_reset().ok().flatten();
            assert_eq!(
                reset.map(|r| r.moved_to),
                Some(moved_to.to_string_lossy().into_owned()),
                "{case}"
            );
            // The second open finds a healthy database.
            drop(h);
            let again = History::open_for_run(dir.path());
            assert!(again.recovery().is_none(), "{case}: {:?}", again.recovery());
        }
    }

    #[test]
    fn a_reader_neither_needs_nor_changes_a_damaged_database() {
        let dir = tempdir();
        let file = dir.path().join(FILE);
        std::fs::write(&file, b"y".repeat(4096)).unwrap();
        assert!(matches!(
            History::open_read_only(dir.path()),
            Err(HistoryError::Damaged { .. })
        ));
        assert_eq!(
            std::fs::read(&file).ok(),
            Some(b"y".repeat(4096)),
            "a reader must not touch it"
        );
    }

    #[test]
    fn first_seen_keeps_the_first_time() -> Result<(), HistoryError> {
        let dir = tempdir();
        let h = History::open_for_run(dir.path());
        h.saw("app", &["local".to_string()])?;
        let first = h.first_seen("app")?;
        std::thread::sleep(std::time::Duration::from_millis(5));
        h.saw("app", &["local".to_string(), "offsite".to_string()])?;
        let later = h.first_seen("app")?;
        assert_eq!(later.get("local"), first.get("local"));
        assert!(later.get("offsite") > first.get("local"));
        Ok(())
    }
}
