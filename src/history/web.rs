//! Read-only queries the dashboard needs beyond `status`'s: a service's
//! recent runs, one run by id, and its verifications. Kept apart from the
//! writers so the web layer cannot change history.

use rusqlite::{OptionalExtension, params};

use super::{History, HistoryError, RunRow, VerifyRow};

impl History {
    /// The newest `limit` runs of a service, newest first.
    pub fn recent_runs(&self, service: &str, limit: u32) -> Result<Vec<RunRow>, HistoryError> {
        let mut stmt = self
            .conn
            .prepare_cached(&format!(
                "SELECT {} FROM runs WHERE service = ?1 ORDER BY started_at DESC, id DESC LIMIT ?2",
                RunRow::COLUMNS
            ))
            .map_err(|e| self.sql(e))?;
        let rows = stmt
            .query_map(params![service, limit], RunRow::from_row)
            .map_err(|e| self.sql(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.sql(e))
    }

    /// One run by id.
    pub fn run_by_id(&self, id: i64) -> Result<Option<RunRow>, HistoryError> {
        self.conn
            .query_row(
                &format!("SELECT {} FROM runs WHERE id = ?1", RunRow::COLUMNS),
                params![id],
                RunRow::from_row,
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
            .query_map(params![service, limit], VerifyRow::from_row)
            .map_err(|e| self.sql(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.sql(e))
    }
}
