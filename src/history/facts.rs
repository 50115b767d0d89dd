//! The queries behind `status`, `metrics` and the health model: per
//! service, the newest finished run and what history knows about each
//! destination. Each is one indexed query per service, so `status` stays
//! fast with tens of thousands of recorded runs.

use std::collections::BTreeMap;

use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use super::{History, HistoryError, RunRow, TargetRecord, VerifyRow};
use crate::model::{Outcome, RunStatus};

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
    /// The repository's snapshot count when last seen (after retention or
    /// by `status --live`), and when that was.
    pub snapshots_known: Option<u64>,
    pub snapshots_known_at_ms: Option<i64>,
}

impl History {
    /// The newest run of a service that has ended (not `running`), not
    /// counting runs refused because another one held the lock: a refusal
    /// says nothing about the service's backups, and it is recorded
    /// before the run that held the lock has finished.
    pub fn last_finished_run(&self, service: &str) -> Result<Option<RunRow>, HistoryError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT id, service, started_at, finished_at, outcome, error_class, error_message, log_file
                 FROM runs WHERE service = ?1 AND outcome != 'running'
                   AND error_class IS NOT 'already_running'
                 ORDER BY started_at DESC, id DESC LIMIT 1",
            )
            .map_err(|e| self.sql(e))?;
        stmt.query_row(params![service], RunRow::from_row)
            .optional()
            .map_err(|e| self.sql(e))
    }

    // `CROSS JOIN` fixes the loop order: the service's runs through
    // `runs_service_started` outside (already in time order, so no sort),
    // their targets through `run_targets_run` inside. Left to itself the
    // planner prefers `run_targets_dest` and sorts every row of the
    // destination, which is 30 times slower at 10,000 runs.
    /// What history knows about `service` on each of `destinations`
    /// (those with no snapshot and no known count are absent). Every query
    /// walks the service's runs newest (or oldest) first and stops at the
    /// first match, so the cost does not grow with the history.
    /// How many snapshots the runs made is [`History::snapshots_recorded`].
    pub fn destination_facts(
        &self,
        service: &str,
        destinations: &[String],
    ) -> Result<BTreeMap<String, DestinationFacts>, HistoryError> {
        let mut out: BTreeMap<String, DestinationFacts> = BTreeMap::new();
        // `+t.destination` keeps SQLite off the (destination, finished_at)
        // index: with it the planner scanned every row of the destination for
        // each of the service's runs (status took 240 ms on bench/status.sh's
        // 10,000 runs instead of 10 ms).
        let mut newest = self
            .conn
            .prepare_cached(
                "SELECT t.snapshot_id, t.finished_at
                 FROM runs r CROSS JOIN run_targets t ON t.run_id = r.id
                 WHERE r.service = ?1 AND +t.destination = ?2 AND t.snapshot_id IS NOT NULL
                   AND t.outcome IN ('ok', 'warning')
                 ORDER BY r.started_at DESC LIMIT 1",
            )
            .map_err(|e| self.sql(e))?;
        let mut first = self
            .conn
            .prepare_cached(
                "SELECT t.finished_at
                 FROM runs r CROSS JOIN run_targets t ON t.run_id = r.id
                 WHERE r.service = ?1 AND +t.destination = ?2 AND t.snapshot_id IS NOT NULL
                   AND t.outcome IN ('ok', 'warning')
                 ORDER BY r.started_at ASC LIMIT 1",
            )
            .map_err(|e| self.sql(e))?;
        for d in destinations {
            let n: Option<(String, i64)> = newest
                .query_row(params![service, d], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
                .map_err(|e| self.sql(e))?;
            if let Some((id, at)) = n {
                let f: Option<i64> = first
                    .query_row(params![service, d], |r| r.get(0))
                    .optional()
                    .map_err(|e| self.sql(e))?;
                out.insert(
                    d.clone(),
                    DestinationFacts {
                        destination: d.clone(),
                        newest_snapshot: Some(id),
                        newest_snapshot_ms: Some(at),
                        first_snapshot_ms: f,
                        ..DestinationFacts::default()
                    },
                );
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
        let mut known = Vec::new();
        for row in rows {
            known.push(row.map_err(|e| self.sql(e))?);
        }
        drop(stmt);
        // Snapshots our runs made after the count was seen are there too
        // (retention records a fresh count whenever it runs). Runs that
        // started over a day before the count are not looked at: no run
        // lasts that long, and the index range stays short.
        let mut since = self
            .conn
            .prepare_cached(
                "SELECT COUNT(*) FROM runs r CROSS JOIN run_targets t ON t.run_id = r.id
                 WHERE r.service = ?1 AND r.started_at > ?3 - 86400000 AND +t.destination = ?2
                   AND t.snapshot_id IS NOT NULL AND t.outcome IN ('ok', 'warning')
                   AND t.finished_at > ?3",
            )
            .map_err(|e| self.sql(e))?;
        for (dest, n, at) in known {
            let added: i64 = since
                .query_row(params![service, dest, at], |r| r.get(0))
                .map_err(|e| self.sql(e))?;
            let f = out.entry(dest.clone()).or_insert_with(|| DestinationFacts {
                destination: dest,
                ..DestinationFacts::default()
            });
            f.snapshots_known = u64::try_from(n + added).ok();
            f.snapshots_known_at_ms = Some(at);
        }
        Ok(out)
    }

    /// Per destination, how many snapshots the recorded runs of `service`
    /// made (reads every run of the service: for metrics, not `status`).
    pub fn snapshots_recorded(&self, service: &str) -> Result<BTreeMap<String, u64>, HistoryError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT t.destination, COUNT(*)
                 FROM runs r CROSS JOIN run_targets t ON t.run_id = r.id
                 WHERE r.service = ?1 AND t.snapshot_id IS NOT NULL AND t.outcome IN ('ok', 'warning')
                 GROUP BY t.destination",
            )
            .map_err(|e| self.sql(e))?;
        let rows = stmt
            .query_map(params![service], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
            })
            .map_err(|e| self.sql(e))?;
        let mut out = BTreeMap::new();
        for row in rows {
            let (d, n) = row.map_err(|e| self.sql(e))?;
            out.insert(d, u64::try_from(n).unwrap_or(0));
        }
        Ok(out)
    }

    /// The targets recorded for one run, in the order they were recorded.
    pub fn targets_of_run(&self, run: i64) -> Result<Vec<TargetRecord>, HistoryError> {
        let mut stmt = self
            .conn
            .prepare_cached(&format!(
                "SELECT {} FROM run_targets WHERE run_id = ?1 ORDER BY id",
                TargetRecord::COLUMNS
            ))
            .map_err(|e| self.sql(e))?;
        let rows = stmt
            .query_map(params![run], TargetRecord::from_row)
            .map_err(|e| self.sql(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.sql(e))
    }

    /// The newest finished verify of a repository and the newest
    /// successful one (the same row when the newest succeeded), through
    /// cached statements: `status` asks this for every repository.
    pub fn verify_pair(
        &self,
        service: &str,
        destination: &str,
    ) -> Result<(Option<VerifyRow>, Option<VerifyRow>), HistoryError> {
        const COLS: &str = VerifyRow::COLUMNS;
        let row = VerifyRow::from_row;
        let newest = self
            .conn
            .prepare_cached(&format!(
                "SELECT {COLS} FROM verifies WHERE service = ?1 AND destination = ?2 AND outcome != 'running'
                 ORDER BY started_at DESC, id DESC LIMIT 1"
            ))
            .and_then(|mut st| st.query_row(params![service, destination], row).optional())
            .map_err(|e| self.sql(e))?;
        if newest
            .as_ref()
            .is_none_or(|v| v.outcome == RunStatus::Finished(Outcome::Ok))
        {
            let good = newest.clone();
            return Ok((newest, good));
        }
        let good = self
            .conn
            .prepare_cached(&format!(
                "SELECT {COLS} FROM verifies WHERE service = ?1 AND destination = ?2 AND outcome = 'ok'
                 ORDER BY started_at DESC, id DESC LIMIT 1"
            ))
            .and_then(|mut st| st.query_row(params![service, destination], row).optional())
            .map_err(|e| self.sql(e))?;
        Ok((newest, good))
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
    pub fn run_counts(&self, service: &str) -> Result<BTreeMap<Outcome, u64>, HistoryError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT outcome, COUNT(*) FROM runs WHERE service = ?1 AND outcome != 'running' GROUP BY outcome",
            )
            .map_err(|e| self.sql(e))?;
        let rows = stmt
            .query_map(params![service], |r| {
                Ok((r.get::<_, Outcome>(0)?, r.get::<_, i64>(1)?))
            })
            .map_err(|e| self.sql(e))?;
        let mut out = BTreeMap::new();
        for row in rows {
            let (o, n) = row.map_err(|e| self.sql(e))?;
            // Unknown texts all read as one fallback outcome: add them up.
            *out.entry(o).or_insert(0) += u64::try_from(n).unwrap_or(0);
        }
        Ok(out)
    }
}
