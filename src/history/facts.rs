//! The queries behind `status`, `metrics` and the health model: per
//! service, the newest finished run and what history knows about each
//! destination. Each is one indexed query per service, so `status` stays
//! fast with tens of thousands of recorded runs.

use std::collections::BTreeMap;

use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use super::{History, HistoryError, RunRow};

/// What history knows about one repository (service × destination).
#[derive(Debug, Clone, Default, Serialize)]
pub struct DestinationFacts {
    pub destination: String,
    /// The newest snapshot one of our runs made here (as restic printed it:
    /// the short id on restic 0.14).
    pub newest_snapshot: Option<String>,
    /// When that run's backup to this destination finished (unix ms).
    pub newest_snapshot_ms: Option<i64>,
    /// When the first recorded snapshot here was made (unix ms).
    pub first_snapshot_ms: Option<i64>,
    /// How many snapshots our recorded runs made here.
    pub snapshots_recorded: u64,
    /// The repository's snapshot count when last seen (after retention or
    /// by `status --live`), and when that was.
    pub snapshots_known: Option<u64>,
    pub snapshots_known_at_ms: Option<i64>,
}

impl History {
    /// The newest run of a service that has ended (not `running`).
    pub fn last_finished_run(&self, service: &str) -> Result<Option<RunRow>, HistoryError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT id, service, started_at, finished_at, outcome, error_class, error_message, log_file
                 FROM runs WHERE service = ?1 AND outcome != 'running'
                 ORDER BY started_at DESC, id DESC LIMIT 1",
            )
            .map_err(|e| self.sql(e))?;
        stmt.query_row(params![service], |r| {
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
        })
        .optional()
        .map_err(|e| self.sql(e))
    }

    /// Per destination of `service`, what history knows (destinations with
    /// no successful snapshot and no known count are absent).
    pub fn destination_facts(
        &self,
        service: &str,
    ) -> Result<BTreeMap<String, DestinationFacts>, HistoryError> {
        let mut out: BTreeMap<String, DestinationFacts> = BTreeMap::new();
        {
            // A bare column takes its value from the row holding the
            // aggregate only when there is exactly one MIN or MAX; the
            // newest snapshot's id is therefore read separately below.
            let mut stmt = self
                .conn
                .prepare_cached(
                    "SELECT t.destination, NULL, MAX(t.finished_at), MIN(t.finished_at), COUNT(*)
                     FROM runs r JOIN run_targets t ON t.run_id = r.id
                     WHERE r.service = ?1 AND t.snapshot_id IS NOT NULL AND t.outcome IN ('ok', 'warning')
                     GROUP BY t.destination",
                )
                .map_err(|e| self.sql(e))?;
            let rows = stmt
                .query_map(params![service], |r| {
                    Ok(DestinationFacts {
                        destination: r.get(0)?,
                        newest_snapshot: r.get(1)?,
                        newest_snapshot_ms: r.get(2)?,
                        first_snapshot_ms: r.get(3)?,
                        snapshots_recorded: u64::try_from(r.get::<_, i64>(4)?).unwrap_or(0),
                        ..DestinationFacts::default()
                    })
                })
                .map_err(|e| self.sql(e))?;
            for f in rows {
                let f = f.map_err(|e| self.sql(e))?;
                out.insert(f.destination.clone(), f);
            }
        }
        for l in self.latest_snapshots(service)? {
            if let Some(f) = out.get_mut(&l.destination) {
                f.newest_snapshot = Some(l.snapshot_id);
                f.newest_snapshot_ms = Some(l.finished_at);
            }
        }
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT destination, snapshots, snapshots_at FROM repository_facts
                 WHERE service = ?1 AND snapshots IS NOT NULL",
            )
            .map_err(|e| self.sql(e))?;
        let rows = stmt
            .query_map(params![service], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })
            .map_err(|e| self.sql(e))?;
        for row in rows {
            let (dest, n, at) = row.map_err(|e| self.sql(e))?;
            let f = out.entry(dest.clone()).or_insert_with(|| DestinationFacts {
                destination: dest,
                ..DestinationFacts::default()
            });
            f.snapshots_known = u64::try_from(n).ok();
            f.snapshots_known_at_ms = Some(at);
        }
        drop(stmt);
        // Snapshots our runs made after the count was seen are there too
        // (retention records a fresh count whenever it removes any).
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT COUNT(*) FROM runs r JOIN run_targets t ON t.run_id = r.id
                 WHERE r.service = ?1 AND t.destination = ?2 AND t.snapshot_id IS NOT NULL
                   AND t.outcome IN ('ok', 'warning') AND t.finished_at > ?3",
            )
            .map_err(|e| self.sql(e))?;
        for f in out.values_mut() {
            if let (Some(n), Some(at)) = (f.snapshots_known, f.snapshots_known_at_ms) {
                let since: i64 = stmt
                    .query_row(params![service, f.destination, at], |r| r.get(0))
                    .map_err(|e| self.sql(e))?;
                f.snapshots_known = Some(n + u64::try_from(since).unwrap_or(0));
            }
        }
        Ok(out)
    }

    /// Remembers how many snapshots a repository holds (seen now).
    pub fn record_snapshot_count(
        &self,
        service: &str,
        destination: &str,
        count: u64,
    ) -> Result<(), HistoryError> {
        self.conn
            .execute(
                "INSERT INTO repository_facts (service, destination, snapshots, snapshots_at)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (service, destination) DO UPDATE SET snapshots = ?3, snapshots_at = ?4",
                params![
                    service,
                    destination,
                    i64::try_from(count).unwrap_or(i64::MAX),
                    super::now_ms()
                ],
            )
            .map_err(|e| self.sql(e))?;
        Ok(())
    }

    /// How many finished runs of `service` ended in each outcome.
    pub fn run_counts(&self, service: &str) -> Result<BTreeMap<String, u64>, HistoryError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT outcome, COUNT(*) FROM runs WHERE service = ?1 AND outcome != 'running' GROUP BY outcome",
            )
            .map_err(|e| self.sql(e))?;
        let rows = stmt
            .query_map(params![service], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
            })
            .map_err(|e| self.sql(e))?;
        let mut out = BTreeMap::new();
        for row in rows {
            let (o, n) = row.map_err(|e| self.sql(e))?;
            out.insert(o, u64::try_from(n).unwrap_or(0));
        }
        Ok(out)
    }
}
