//! Health of every service and destination, in one place, so `status`,
//! `metrics`, notifications and the web page agree on what "healthy" means.
//!
//! Per destination (repository), from the worst down:
//! - `failed`: the newest finished run failed there (or failed before it
//!   reached any destination, e.g. a pre hook), the newest verify failed,
//!   or, with `--live`, restic cannot read the repository;
//! - `stale`: the newest successful snapshot is older than `max_age`
//!   (default twice the schedule's longest interval, else 26 h), or there
//!   is none although `max_age` has passed since `run` or `setup` first saw
//!   the destination in the configuration;
//! - `warning`: the newest run finished with warnings or was interrupted,
//!   the newest verify finished with warnings, or (`--live`) history claims
//!   a snapshot the repository lacks;
//! - `unverified`: no successful `verify` within `verify_max_age` (default
//!   8 days). A repository that was never verified gets `verify_max_age`
//!   of grace from its first snapshot, so a new service is not flagged the
//!   day it is set up, and one that has been backed up for longer than
//!   that without a single verify is;
//! - `new`: never backed up, and configured less than `max_age` ago: a
//!   service set up today is not reported as failing;
//! - `ok`.
//!
//! A service is as healthy as its worst destination. Disabled services are
//! evaluated but do not count towards the exit code.

pub mod json;

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::config::duration::{AgeLimit, format_duration};
use crate::config::{Config, Service};
use crate::history::{
    DestinationFacts, History, HistoryError, HistoryReset, RunRow, TargetRecord, VerifyRow,
};
use crate::model::{ErrorClass, Exit, Outcome, RunStatus};
use crate::output::age;

/// Without a schedule or `max_age`, a snapshot older than this is stale.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(26 * 3600);

/// Health states, ordered from best to worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Ok,
    /// Never backed up, configured less than `max_age` ago.
    New,
    Unverified,
    Warning,
    Stale,
    Failed,
}

impl State {
    pub const ALL: [State; 6] = [
        State::Ok,
        State::New,
        State::Unverified,
        State::Warning,
        State::Stale,
        State::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            State::Ok => "ok",
            State::New => "new",
            State::Unverified => "unverified",
            State::Warning => "warning",
            State::Stale => "stale",
            State::Failed => "failed",
        }
    }

    /// How `status` ends for this state: ok (0) when ok or new, failed (1),
    /// warning (3) otherwise.
    pub fn exit(self) -> Exit {
        match self {
            State::Ok | State::New => Exit::Ok,
            State::Failed => Exit::Failed,
            _ => Exit::Warning,
        }
    }
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A state with the reasons for it, in words
/// ("newest snapshot 3d 2h ago, max_age 26h").
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Health {
    pub state: State,
    pub reasons: Vec<String>,
}

impl Health {
    fn ok() -> Health {
        Health {
            state: State::Ok,
            reasons: Vec::new(),
        }
    }

    fn add(&mut self, state: State, reason: String) {
        self.state = self.state.max(state);
        self.reasons.push(reason);
    }
}

/// Where the newest snapshot's facts came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    History,
    /// The repository itself, through restic (`status --live`).
    Repository,
}

/// The newest snapshot of one repository.
#[derive(Debug, Clone, Serialize)]
pub struct SnapshotSeen {
    pub id: String,
    /// Unix milliseconds.
    pub time_ms: i64,
    pub source: Source,
    /// The host that made it (only known from the repository).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
}

/// What a repository itself said (`status --live`).
#[derive(Debug, Clone, Serialize)]
pub struct LiveView {
    /// The service's snapshots there, newest first (empty when none), or
    /// why restic could not list them.
    pub result: Result<Vec<LiveSnapshot>, LiveError>,
}

/// One snapshot as restic listed it.
#[derive(Debug, Clone, Serialize)]
pub struct LiveSnapshot {
    pub id: String,
    pub short_id: String,
    pub time_ms: i64,
    pub hostname: String,
}

/// Why a repository could not be read.
#[derive(Debug, Clone, Serialize)]
pub struct LiveError {
    pub class: ErrorClass,
    pub message: String,
}

/// Health of one destination of one service.
#[derive(Debug, Clone, Serialize)]
pub struct DestinationHealth {
    pub destination: String,
    #[serde(flatten)]
    pub health: Health,
    /// This destination's result in the newest finished run (`None` when
    /// the run ended before reaching it, or there was no run).
    pub last_target: Option<TargetRecord>,
    pub newest_snapshot: Option<SnapshotSeen>,
    /// When the first snapshot here was made (unix ms).
    pub first_snapshot_ms: Option<i64>,
    pub facts: Option<DestinationFacts>,
    /// Newest finished verify, and newest successful one.
    pub last_verify: Option<VerifyRow>,
    pub last_good_verify: Option<VerifyRow>,
    /// The limits applied, and where `max_age` came from
    /// (`max_age`, `schedule` or `default`).
    pub max_age: AgeLimit,
    pub max_age_from: &'static str,
    pub verify_max_age: AgeLimit,
    /// Where the repository and history disagree (`--live` only).
    pub disagreements: Vec<String>,
}

/// Health of one service: the worst of its destinations.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceHealth {
    pub service: String,
    pub enabled: bool,
    #[serde(flatten)]
    pub health: Health,
    /// The newest finished run.
    pub last_run: Option<RunRow>,
    pub destinations: Vec<DestinationHealth>,
    /// When the history database was last reset (a damaged one moved
    /// aside): runs before then are unknown.
    pub history_reset: Option<HistoryReset>,
}

/// How `status` ends: the worst state of the enabled services.
pub fn exit(services: &[ServiceHealth]) -> Exit {
    services
        .iter()
        .filter(|s| s.enabled)
        .map(|s| s.health.state)
        .max()
        .unwrap_or(State::Ok)
        .exit()
}

/// Health of every configured service, from history, as of `now`.
pub fn evaluate(
    config: &Config,
    history: &History,
    now: DateTime<Utc>,
) -> Result<Vec<ServiceHealth>, HistoryError> {
    let all: Vec<&Service> = config.services.iter().collect();
    evaluate_services(&all, history, now, None)
}

/// Health of `services`; with `live`, the newest snapshot of each
/// repository comes from what restic listed (keyed by service and
/// destination) and disagreements with history are reported.
pub fn evaluate_services(
    services: &[&Service],
    history: &History,
    now: DateTime<Utc>,
    live: Option<&BTreeMap<(String, String), LiveView>>,
) -> Result<Vec<ServiceHealth>, HistoryError> {
    let now_ms = now.timestamp_millis();
    let history_reset = history.last_reset()?;
    let mut out = Vec::with_capacity(services.len());
    for s in services {
        let last_run = history.last_finished_run(&s.name)?;
        let targets = match &last_run {
            Some(r) => history.targets_of_run(r.id)?,
            None => Vec::new(),
        };
        let worst_target = targets
            .iter()
            .map(|t| t.outcome)
            .max()
            .unwrap_or(Outcome::Ok);
        let run_beyond_targets = last_run
            .as_ref()
            .and_then(|r| r.outcome.finished())
            .is_some_and(|o| o > worst_target);
        let mut facts = history.destination_facts(&s.name, &s.targets)?;
        let seen = history.first_seen(&s.name)?;
        let (max_age, max_age_from) = max_age_of(s, now);
        let verify_max_age = s.health.verify_max_age;
        let mut dests = Vec::with_capacity(s.targets.len());
        for d in &s.targets {
            let fact = facts.remove(d);
            let target = targets.iter().rev().find(|t| &t.destination == d).cloned();
            let (last_verify, last_good_verify) = history.verify_pair(&s.name, d)?;
            let view = live.and_then(|l| l.get(&(s.name.clone(), d.clone())));
            dests.push(destination(
                Inputs {
                    now_ms,
                    destination: d,
                    last_run: last_run.as_ref(),
                    run_beyond_targets,
                    target,
                    facts: fact,
                    last_verify,
                    last_good_verify,
                    max_age,
                    max_age_from,
                    verify_max_age,
                    first_seen_ms: seen.get(d).copied(),
                },
                view,
            ));
        }
        let mut health = Health::ok();
        for d in &dests {
            health.state = health.state.max(d.health.state);
            for r in &d.health.reasons {
                health.reasons.push(format!("{}: {r}", d.destination));
            }
        }
        if s.targets.is_empty()
            && let Some(r) = &last_run
            && r.outcome == RunStatus::Finished(Outcome::Failed)
        {
            health.add(State::Failed, run_failed(r, now_ms));
        }
        out.push(ServiceHealth {
            service: s.name.clone(),
            enabled: s.enabled,
            health,
            last_run,
            destinations: dests,
            history_reset: history_reset.clone(),
        });
    }
    Ok(out)
}

/// The service's `max_age` and where it came from: configured, twice the
/// schedule's longest interval, or 26 h.
pub fn max_age_of(s: &Service, now: DateTime<Utc>) -> (AgeLimit, &'static str) {
    if let Some(l) = s.health.max_age {
        return (l, "max_age");
    }
    if let Some(expr) = &s.schedule
        && let Some(i) = schedule_interval(expr, now)
    {
        return (AgeLimit::After(i * 2), "schedule");
    }
    (AgeLimit::After(DEFAULT_MAX_AGE), "default")
}

/// The longest gap between consecutive fire times of a cron schedule,
/// looking at the next 30 (so `0 2 * * 1-5` yields 3 days, the weekend,
/// not 1 day), in local time as cron fires.
pub fn schedule_interval(expr: &str, now: DateTime<Utc>) -> Option<Duration> {
    let runs = crate::schedule::next_runs(expr, now.with_timezone(&chrono::Local), 31);
    runs.windows(2)
        .filter_map(|w| (w[1] - w[0]).to_std().ok())
        .max()
}

struct Inputs<'a> {
    now_ms: i64,
    destination: &'a str,
    last_run: Option<&'a RunRow>,
    /// The run ended worse than every one of its targets.
    run_beyond_targets: bool,
    target: Option<TargetRecord>,
    facts: Option<DestinationFacts>,
    last_verify: Option<VerifyRow>,
    last_good_verify: Option<VerifyRow>,
    max_age: AgeLimit,
    max_age_from: &'static str,
    verify_max_age: AgeLimit,
    /// When `run` or `setup` first saw this destination of the service.
    first_seen_ms: Option<i64>,
}

fn ago(now_ms: i64, at_ms: i64) -> String {
    age(u64::try_from((now_ms - at_ms).max(0) / 1000).unwrap_or(0))
}

fn run_failed(r: &RunRow, now_ms: i64) -> String {
    let when = ago(now_ms, r.finished_at.unwrap_or(r.started_at));
    match &r.error_message {
        Some(m) => format!("last run failed {when} ago: {m}"),
        None => format!("last run failed {when} ago"),
    }
}

/// Does history's recorded id (short on restic 0.14) name this snapshot?
fn same_snapshot(recorded: &str, s: &LiveSnapshot) -> bool {
    !recorded.is_empty() && (s.id.starts_with(recorded) || recorded.starts_with(&s.id))
}

fn destination(i: Inputs<'_>, live: Option<&LiveView>) -> DestinationHealth {
    let mut h = Health::ok();
    judge_run(&i, &mut h);
    let seen = newest_snapshot(&i, live, &mut h);
    if seen.reachable {
        judge_age(&i, seen.newest.as_ref(), live.is_some(), &mut h);
    }
    judge_verify(&i, seen.first_snapshot_ms, &mut h);
    DestinationHealth {
        destination: i.destination.to_string(),
        health: h,
        last_target: i.target,
        newest_snapshot: seen.newest,
        first_snapshot_ms: seen.first_snapshot_ms,
        facts: i.facts,
        last_verify: i.last_verify,
        last_good_verify: i.last_good_verify,
        max_age: i.max_age,
        max_age_from: i.max_age_from,
        verify_max_age: i.verify_max_age,
        disagreements: seen.disagreements,
    }
}

/// Step 1: the newest finished run, here.
fn judge_run(i: &Inputs<'_>, h: &mut Health) {
    let Some(r) = i.last_run else {
        return;
    };
    let when = ago(i.now_ms, r.finished_at.unwrap_or(r.started_at));
    // A run can end worse than all its targets (a hook failed, or it
    // stopped before any backup): that concerns every destination.
    if i.run_beyond_targets
        && let Some(o) = r.outcome.finished()
    {
        judge_outcome(h, o, &when, r.error_message.as_deref());
    }
    if let Some(t) = &i.target {
        judge_outcome(h, t.outcome, &when, t.error_message.as_deref());
    }
}

/// The reason a run's (or a target's) outcome gives, if any.
fn judge_outcome(h: &mut Health, outcome: Outcome, when: &str, message: Option<&str>) {
    let (state, what) = match outcome {
        Outcome::Failed => (State::Failed, "failed"),
        Outcome::Warning => (State::Warning, "finished with warnings"),
        Outcome::Interrupted => {
            h.add(
                State::Warning,
                format!("last run was interrupted {when} ago"),
            );
            return;
        }
        Outcome::Ok => return,
    };
    h.add(
        state,
        match message {
            Some(m) => format!("last run {what} {when} ago: {m}"),
            None => format!("last run {what} {when} ago"),
        },
    );
}

/// A destination's newest and first snapshot, and whether its repository
/// could be read.
struct Seen {
    newest: Option<SnapshotSeen>,
    first_snapshot_ms: Option<i64>,
    reachable: bool,
    disagreements: Vec<String>,
}

/// Step 2: the newest snapshot, from history or from the repository.
fn newest_snapshot(i: &Inputs<'_>, live: Option<&LiveView>, h: &mut Health) -> Seen {
    let from_history = i
        .facts
        .as_ref()
        .and_then(|f| Some((f.newest_snapshot.clone()?, f.newest_snapshot_ms?)));
    let mut seen = Seen {
        newest: from_history.as_ref().map(|(id, ms)| SnapshotSeen {
            id: id.clone(),
            time_ms: *ms,
            source: Source::History,
            hostname: None,
        }),
        first_snapshot_ms: i.facts.as_ref().and_then(|f| f.first_snapshot_ms),
        reachable: true,
        disagreements: Vec::new(),
    };
    let Some(view) = live else {
        return seen;
    };
    match &view.result {
        Err(e) => {
            seen.reachable = false;
            h.add(
                State::Failed,
                format!("repository cannot be read ({}): {}", e.class, e.message),
            );
        }
        Ok(list) => {
            let repo_newest = list.iter().max_by_key(|s| s.time_ms);
            let history_id = from_history.as_ref().map(|(id, _)| id.as_str());
            compare(i.now_ms, history_id, list, h, &mut seen.disagreements);
            seen.newest = repo_newest.map(|s| SnapshotSeen {
                id: s.id.clone(),
                time_ms: s.time_ms,
                source: Source::Repository,
                hostname: Some(s.hostname.clone()),
            });
            seen.first_snapshot_ms = list.iter().map(|s| s.time_ms).min();
        }
    }
    seen
}

/// Where the repository's snapshots (`list`) and history's newest one
/// disagree; a snapshot history has that the repository lacks is a warning.
fn compare(
    now_ms: i64,
    history_id: Option<&str>,
    list: &[LiveSnapshot],
    h: &mut Health,
    disagreements: &mut Vec<String>,
) {
    let repo_newest = list.iter().max_by_key(|s| s.time_ms);
    match (history_id, repo_newest) {
        (None, Some(s)) => disagreements.push(format!(
            "history records no snapshot here, but the repository has {} from {} ago (host `{}`); the history database may be new (rebuilt host?) or another host backs up here",
            s.short_id,
            ago(now_ms, s.time_ms),
            s.hostname
        )),
        (Some(id), repo) if !list.iter().any(|s| same_snapshot(id, s)) => {
            let also = repo.map_or_else(
                || "the repository has no snapshots of this service".to_string(),
                |s| format!("its newest is {} from {} ago", s.short_id, ago(now_ms, s.time_ms)),
            );
            let msg = format!(
                "history's newest snapshot {} is not in the repository ({also}); it was removed, or the repository was replaced",
                id.chars().take(8).collect::<String>()
            );
            h.add(State::Warning, msg.clone());
            disagreements.push(msg);
        }
        (Some(id), Some(s)) if !same_snapshot(id, s) => {
            disagreements.push(format!(
                "the repository has a newer snapshot {} from {} ago (host `{}`) than history's {}",
                s.short_id,
                ago(now_ms, s.time_ms),
                s.hostname,
                id.chars().take(8).collect::<String>()
            ));
        }
        _ => {}
    }
}

/// Step 3, staleness: the newest snapshot's age against `max_age`, or,
/// with none, how long ago the destination was configured.
fn judge_age(i: &Inputs<'_>, newest: Option<&SnapshotSeen>, live: bool, h: &mut Health) {
    let now_ms = i.now_ms;
    match (newest, i.max_age) {
        (None, limit) => {
            let none = if live {
                "the repository holds no snapshot of this service"
            } else {
                "no successful snapshot recorded"
            };
            // A service that never had a snapshot gets its max_age
            // (26 h when `off`) from when it was first seen.
            let grace = match limit {
                AgeLimit::After(m) => m,
                AgeLimit::Off => DEFAULT_MAX_AGE,
            };
            let grace_ms = i64::try_from(grace.as_millis()).unwrap_or(i64::MAX);
            match i.first_seen_ms {
                Some(at) if now_ms - at <= grace_ms => h.add(
                    State::New,
                    format!(
                        "never backed up (configured {} ago); stale if still none {} after that",
                        ago(now_ms, at),
                        format_duration(grace)
                    ),
                ),
                Some(at) => h.add(
                    State::Stale,
                    format!(
                        "{none}; configured {} ago, max_age {}",
                        ago(now_ms, at),
                        format_duration(grace)
                    ),
                ),
                // Never seen by `run` or `setup` (or history is new):
                // nothing says it was configured recently.
                None => h.add(State::Stale, none.to_string()),
            }
        }
        (Some(n), AgeLimit::After(max)) => {
            let age_ms = now_ms - n.time_ms;
            if age_ms > i64::try_from(max.as_millis()).unwrap_or(i64::MAX) {
                let from = match i.max_age_from {
                    "schedule" => " (twice the schedule's interval)",
                    "default" => " (default)",
                    _ => "",
                };
                h.add(
                    State::Stale,
                    format!(
                        "newest snapshot {} ago, max_age {}{from}",
                        ago(now_ms, n.time_ms),
                        format_duration(max)
                    ),
                );
            }
        }
        (Some(_), AgeLimit::Off) => {}
    }
}

/// Step 4, verification: a successful verify within `verify_max_age`
/// (counted from the first snapshot when there was none), and the newest
/// verify's outcome.
fn judge_verify(i: &Inputs<'_>, first_snapshot_ms: Option<i64>, h: &mut Health) {
    let now_ms = i.now_ms;
    if let (AgeLimit::After(max), Some(first)) = (i.verify_max_age, first_snapshot_ms) {
        let max_ms = i64::try_from(max.as_millis()).unwrap_or(i64::MAX);
        let limit = format_duration(max);
        match &i.last_good_verify {
            Some(v) => {
                let at = v.finished_at_ms.unwrap_or(v.started_at_ms);
                if now_ms - at > max_ms {
                    h.add(
                        State::Unverified,
                        format!(
                            "last successful verify {} ago, verify_max_age {limit}",
                            ago(now_ms, at)
                        ),
                    );
                }
            }
            None if now_ms - first > max_ms => {
                let failed = match &i.last_verify {
                    Some(v) => format!(
                        " (last attempt {} ago: {})",
                        ago(now_ms, v.started_at_ms),
                        v.outcome
                    ),
                    None => String::new(),
                };
                h.add(
                    State::Unverified,
                    format!(
                        "never verified successfully{failed}, first snapshot {} ago, verify_max_age {limit}; run `restic-manager verify`",
                        ago(now_ms, first)
                    ),
                );
            }
            None => {}
        }
    }
    if let Some(v) = &i.last_verify {
        let msg = v.error_message.as_deref().unwrap_or("see its log");
        let when = ago(now_ms, v.started_at_ms);
        match v.outcome.finished() {
            Some(Outcome::Failed) => h.add(
                State::Failed,
                format!("last verify failed {when} ago: {msg}"),
            ),
            Some(Outcome::Warning) => h.add(
                State::Warning,
                format!("last verify finished with warnings {when} ago: {msg}"),
            ),
            Some(Outcome::Ok | Outcome::Interrupted) | None => {}
        }
    }
}

/// Asks each repository of `services` for the service's snapshots
/// (`restic snapshots --json --tag service:NAME`, read-only, no lock), four
/// repositories at a time. A repository that cannot be read is an error in
/// its [`LiveView`], classified like any restic failure.
pub async fn look(
    config: &Config,
    restic: &crate::restic::Restic,
    services: &[&Service],
) -> BTreeMap<(String, String), LiveView> {
    use futures_util::stream::{self, StreamExt};

    use crate::restic::{Repository, ops};
    let shutdown = crate::process::Shutdown::never();
    let jobs: Vec<(String, String, String)> = services
        .iter()
        .flat_map(|s| {
            s.targets
                .iter()
                .map(|t| (s.name.clone(), t.clone(), s.tag()))
        })
        .collect();
    // Each destination is asked once whether it answers at all: a dead one
    // would keep restic ≥ 0.17 retrying for about 15 minutes.
    let probes = crate::restic::probe::check_all(config, jobs.iter().map(|j| j.1.as_str())).await;
    let probes = &probes;
    stream::iter(jobs)
        .map(|(service, dest, tag)| {
            let shutdown = shutdown.clone();
            async move {
                let result = match config.destinations.get(&dest) {
                    None => Err(LiveError {
                        class: ErrorClass::Config,
                        message: format!("destination `{dest}` is not defined"),
                    }),
                    Some(_) if let Some(dead) = probes.failed(&dest) => Err(LiveError {
                        class: ErrorClass::Unreachable,
                        message: dead.message(),
                    }),
                    Some(d) => match Repository::open(d, &service, &config.settings.password) {
                        Err(e) => Err(LiveError {
                            class: ErrorClass::Config,
                            message: e.to_string(),
                        }),
                        Ok(repo) => ops::snapshots(restic, &repo, Some(&tag), &shutdown)
                            .await
                            .map(|list| live_list(&list))
                            .map_err(|e| LiveError {
                                class: e.class,
                                message: e.message,
                            }),
                    },
                };
                ((service, dest), LiveView { result })
            }
        })
        .buffer_unordered(4)
        .collect()
        .await
}

/// restic's snapshot list, newest first; a time that does not parse
/// sorts as the oldest.
fn live_list(list: &[crate::restic::output::Snapshot]) -> Vec<LiveSnapshot> {
    let mut out: Vec<LiveSnapshot> = list
        .iter()
        .map(|s| LiveSnapshot {
            id: s.id.clone(),
            short_id: s.short().to_string(),
            time_ms: DateTime::parse_from_rfc3339(&s.time).map_or(0, |t| t.timestamp_millis()),
            hostname: s.hostname.clone(),
        })
        .collect();
    out.sort_by_key(|s| std::cmp::Reverse(s.time_ms));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_interval_is_the_longest_gap() {
        let now = Utc::now();
        // A daylight-saving switch in the window may add an hour to a gap.
        for (expr, want, slack) in [
            ("0 2 * * *", 24 * 3600, 3600),
            ("*/15 * * * *", 900, 0),
            ("0 2 * * 1-5", 72 * 3600, 3600),
            ("30 */6 * * *", 6 * 3600, 3600),
        ] {
            let got = schedule_interval(expr, now).map(|d| d.as_secs());
            assert!(
                got.is_some_and(|g| g >= want && g <= want + slack),
                "{expr}: {got:?}, want {want}"
            );
        }
    }

    #[test]
    fn states_order_by_severity_and_map_to_exit_codes() {
        assert!(State::Failed > State::Stale && State::Stale > State::Warning);
        assert!(State::Warning > State::Unverified && State::Unverified > State::Ok);
        assert!(State::Unverified > State::New && State::New > State::Ok);
        let codes: Vec<i32> = State::ALL.iter().map(|s| s.exit().code()).collect();
        assert_eq!(codes, [0, 0, 3, 3, 3, 1]);
    }
}
