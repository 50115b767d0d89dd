//! Read-only queries the dashboard needs beyond `status`'s: a service's
//! recent runs, one run by id, and its verifications. Kept apart from the
//! writers so the web layer cannot change history.

use rusqlite::{OptionalExtension, params};

use super::{History, HistoryError, RunRow, VerifyRow};

fn run_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RunRow> {
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

const RUN_COLUMNS: &str =
    "id, service, started_at, finished_at, outcome, error_class, error_message, log_file";

impl History {
    /// The newest `limit` runs of a service, newest first.
    pub fn recent_runs(&self, service: &str, limit: u32) -> Result<Vec<RunRow>, HistoryError> {
        let mut stmt = self
            .conn
            .prepare_cached(&format!(
                "SELECT {RUN_COLUMNS} FROM runs WHERE service = ?1 ORDER BY started_at DESC, id DESC LIMIT ?2"
            ))
            .map_err(|e| self.sql(e))?;
        let rows = stmt
            .query_map(params![service, limit], run_row)
            .map_err(|e| self.sql(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.sql(e))
    }

    /// One run by id.
    pub fn run_by_id(&self, id: i64) -> Result<Option<RunRow>, HistoryError> {
        self.conn
            .query_row(
                &format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = ?1"),
                params![id],
                run_row,
            )
            .optional()
            .map_err(|e| self.sql(e))
    }

    /// The newest `limit` verifications of a service (all destinations),
    /// newest first, running ones included.
    pub fn recent_verifies(
        &self,
        service: &str,
        limit: u32,
    ) -> Result<Vec<VerifyRow>, HistoryError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT id, service, destination, kind, subset, trigger, started_at, finished_at, outcome, error_class, error_message, detail
                 FROM verifies WHERE service = ?1 ORDER BY started_at DESC, id DESC LIMIT ?2",
            )
            .map_err(|e| self.sql(e))?;
        let rows = stmt
            .query_map(params![service, limit], |r| {
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
            })
            .map_err(|e| self.sql(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.sql(e))
    }
}
