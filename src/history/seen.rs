//! What history knows about itself and the configuration: when each
//! destination of a service was first seen (so a new service is `new`,
//! not `stale`), and when a damaged database was replaced.

use std::collections::BTreeMap;

use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use super::{History, HistoryError, now_ms};

/// A damaged database that was moved aside and replaced by this one.
#[derive(Debug, Clone, Serialize)]
pub struct HistoryReset {
    /// Unix milliseconds.
    pub at_ms: i64,
    pub moved_to: String,
    pub reason: String,
}

impl History {
    /// Records that `service` with these destinations is in the
    /// configuration; the first time counts, later calls change nothing.
    pub fn saw(&self, service: &str, destinations: &[String]) -> Result<(), HistoryError> {
        let now = now_ms();
        let mut stmt = self
            .conn
            .prepare_cached(
                "INSERT OR IGNORE INTO first_seen (service, destination, at) VALUES (?1, ?2, ?3)",
            )
            .map_err(|e| self.sql(e))?;
        for d in destinations {
            stmt.execute(params![service, d, now])
                .map_err(|e| self.sql(e))?;
        }
        Ok(())
    }

    /// When each destination of `service` was first seen (unix ms).
    pub fn first_seen(&self, service: &str) -> Result<BTreeMap<String, i64>, HistoryError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT destination, at FROM first_seen WHERE service = ?1")
            .map_err(|e| self.sql(e))?;
        let rows = stmt
            .query_map(params![service], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(|e| self.sql(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.sql(e))
    }

    /// The newest reset of this database, if it ever was one.
    pub fn last_reset(&self) -> Result<Option<HistoryReset>, HistoryError> {
        self.conn
            .query_row(
                "SELECT at, moved_to, reason FROM history_resets ORDER BY at DESC LIMIT 1",
                [],
                |r| {
                    Ok(HistoryReset {
                        at_ms: r.get(0)?,
                        moved_to: r.get(1)?,
                        reason: r.get(2)?,
                    })
                },
            )
            .optional()
            .map_err(|e| self.sql(e))
    }
}
