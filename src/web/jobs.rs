//! Actions started from the dashboard (backup, verify, restore) run as
//! jobs: one at a time per service, through the same engine, per-service
//! lock and history as the CLI. The engine's futures borrow the history
//! connection, which SQLite does not let threads share, so jobs run on the
//! serving thread's `LocalSet` (same runtime, no second one); HTTP handlers
//! only queue them and read their live state from here.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde::Serialize;
use tokio::sync::mpsc;

use crate::engine::Progress;
use crate::engine::lock::{LockError, ServiceLock};
use crate::model::{Outcome, RunStatus};
use crate::restic::output::BackupStatus;

/// What a job does.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum JobKind {
    /// A backup of the service (`restic-manager run -s NAME`).
    Run,
    /// `restic-manager verify -s NAME [--deep] [--drill]`.
    Verify { deep: bool, drill: bool },
    /// `restic restore --include PATH` into a new folder.
    Restore {
        destination: String,
        snapshot: String,
        path: String,
        target: String,
    },
}

impl JobKind {
    pub fn name(&self) -> &'static str {
        match self {
            JobKind::Run => "run",
            JobKind::Verify { .. } => "verify",
            JobKind::Restore { .. } => "restore",
        }
    }
}

/// Live progress of one destination.
#[derive(Debug, Clone, Serialize)]
pub struct TargetProgress {
    pub destination: String,
    /// `running`, then the outcome.
    pub state: RunStatus,
    pub percent_done: f64,
    pub files_done: u64,
    pub total_files: u64,
    pub bytes_done: u64,
    pub total_bytes: u64,
    pub seconds_elapsed: u64,
}

/// Whether a job is still going.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Running,
    Done,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Running => "running",
            JobState::Done => "done",
        }
    }
}

impl std::fmt::Display for JobState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A job as the dashboard shows it (also the JSON of
/// `GET /api/services/NAME/job`).
#[derive(Debug, Clone, Serialize)]
pub struct Job {
    pub id: u64,
    pub service: String,
    #[serde(flatten)]
    pub kind: JobKind,
    pub state: JobState,
    pub started_at_ms: i64,
    pub finished_at_ms: Option<i64>,
    /// Set once done.
    pub outcome: Option<Outcome>,
    pub message: Option<String>,
    /// The history run a backup job recorded.
    pub run_id: Option<i64>,
    pub targets: Vec<TargetProgress>,
    /// The engine's notes ("running pre-backup hooks"), newest last.
    pub notes: Vec<String>,
}

/// A queued job handed to the executor.
pub struct Request {
    pub id: u64,
    pub service: String,
    pub kind: JobKind,
}

/// Why a job was not started.
#[derive(Debug)]
pub enum Refused {
    Busy(String),
    Stopping,
}

/// The jobs of every service: the newest per service is kept.
#[derive(Clone)]
pub struct Jobs {
    inner: Arc<Mutex<HashMap<String, Job>>>,
    queue: mpsc::UnboundedSender<Request>,
    lock_dir: std::path::PathBuf,
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

impl Jobs {
    pub fn new(lock_dir: std::path::PathBuf) -> (Jobs, mpsc::UnboundedReceiver<Request>) {
        let (queue, rx) = mpsc::unbounded_channel();
        (
            Jobs {
                inner: Arc::new(Mutex::new(HashMap::new())),
                queue,
                lock_dir,
            },
            rx,
        )
    }

    fn with<T>(&self, f: impl FnOnce(&mut HashMap<String, Job>) -> T) -> T {
        match self.inner.lock() {
            Ok(mut g) => f(&mut g),
            Err(poisoned) => f(&mut poisoned.into_inner()),
        }
    }

    /// The newest job of a service.
    pub fn get(&self, service: &str) -> Option<Job> {
        self.with(|m| m.get(service).cloned())
    }

    /// Queues a job unless one of the service is running here or another
    /// process (a CLI or scheduled run) holds the service's lock.
    pub fn start(&self, service: &str, kind: JobKind) -> Result<Job, Refused> {
        let job = self.with(|m| {
            if let Some(j) = m.get(service).filter(|j| j.state == JobState::Running) {
                return Err(Refused::Busy(format!(
                    "a {} of service `{service}` started from the dashboard is still running (job {}); wait for it to finish",
                    j.kind.name(),
                    j.id
                )));
            }
            // Restores only read; backups and verifications take the lock.
            if matches!(kind, JobKind::Run | JobKind::Verify { .. }) {
                // A probe: the run itself takes the lock again. flock locks
                // belong to the open file, so this conflicts with our own
                // running jobs too.
                match ServiceLock::acquire(&self.lock_dir, service) {
                    Ok(l) => drop(l),
                    Err(e @ LockError::Busy { .. }) => {
                        return Err(Refused::Busy(format!(
                            "{e}; wait for that run to finish, or see `restic-manager status`"
                        )));
                    }
                    Err(LockError::Io { .. }) => {}
                }
            }
            let job = Job {
                id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
                service: service.to_string(),
                kind: kind.clone(),
                state: JobState::Running,
                started_at_ms: crate::history::now_ms(),
                finished_at_ms: None,
                outcome: None,
                message: None,
                run_id: None,
                targets: Vec::new(),
                notes: Vec::new(),
            };
            m.insert(service.to_string(), job.clone());
            Ok(job)
        })?;
        let req = Request {
            id: job.id,
            service: service.to_string(),
            kind,
        };
        if self.queue.send(req).is_err() {
            self.finish(
                service,
                job.id,
                Outcome::Failed,
                Some("the server is shutting down".into()),
                None,
            );
            return Err(Refused::Stopping);
        }
        Ok(job)
    }

    /// Changes the running job `id` of `service`.
    pub fn update(&self, service: &str, id: u64, f: impl FnOnce(&mut Job)) {
        self.with(|m| {
            if let Some(j) = m.get_mut(service).filter(|j| j.id == id) {
                f(j);
            }
        });
    }

    /// Marks job `id` done.
    pub fn finish(
        &self,
        service: &str,
        id: u64,
        outcome: Outcome,
        message: Option<String>,
        run_id: Option<i64>,
    ) {
        self.update(service, id, |j| {
            j.state = JobState::Done;
            j.finished_at_ms = Some(crate::history::now_ms());
            j.outcome = Some(outcome);
            j.message = message;
            if run_id.is_some() {
                j.run_id = run_id;
            }
        });
    }
}

/// The engine's [`Progress`] for one job: keeps the newest status of each
/// destination where the dashboard polls it.
pub struct LiveProgress {
    pub jobs: Jobs,
    pub service: String,
    pub id: u64,
}

impl LiveProgress {
    fn target(&self, destination: &str, f: impl FnOnce(&mut TargetProgress)) {
        self.jobs.update(&self.service, self.id, |j| {
            if let Some(t) = j.targets.iter_mut().find(|t| t.destination == destination) {
                f(t);
            } else {
                let mut t = TargetProgress {
                    destination: destination.to_string(),
                    state: RunStatus::Running,
                    percent_done: 0.0,
                    files_done: 0,
                    total_files: 0,
                    bytes_done: 0,
                    total_bytes: 0,
                    seconds_elapsed: 0,
                };
                f(&mut t);
                j.targets.push(t);
            }
        });
    }
}

impl Progress for LiveProgress {
    fn wanted(&self) -> bool {
        true
    }

    fn started(&self, _service: &str, destination: &str) {
        self.target(destination, |t| t.state = RunStatus::Running);
    }

    fn update(&self, _service: &str, destination: &str, s: &BackupStatus) {
        self.target(destination, |t| {
            t.percent_done = s.percent_done;
            t.files_done = s.files_done;
            t.total_files = s.total_files;
            t.bytes_done = s.bytes_done;
            t.total_bytes = s.total_bytes;
            t.seconds_elapsed = s.seconds_elapsed;
        });
    }

    fn finished(&self, _service: &str, destination: &str, outcome: Outcome) {
        self.target(destination, |t| {
            t.state = RunStatus::Finished(outcome);
            if outcome.succeeded() {
                t.percent_done = 1.0;
            }
        });
    }

    fn note(&self, text: &str) {
        self.jobs.update(&self.service, self.id, |j| {
            j.notes.push(text.to_string());
            if j.notes.len() > 50 {
                j.notes.remove(0);
            }
        });
    }
}
