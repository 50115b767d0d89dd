//! Pre/post backup hooks: `sh -c` in their own process group, with a
//! timeout that takes down the whole group (TERM, then KILL).

use std::time::Duration;

use serde::Serialize;

use crate::config::Hook;
use crate::model::Outcome;
use crate::process::{Ended, Shutdown, Spec};
use crate::runlog::RunLog;

/// Which side of the backup a hook runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Pre,
    Post,
}

/// How one hook went.
#[derive(Debug, Clone, Serialize)]
pub struct HookReport {
    pub name: String,
    pub phase: Phase,
    pub ok: bool,
    pub continue_on_error: bool,
    /// `exit code N`, `timed out after 300s`, … in `--json`.
    pub result: HookResult,
    pub duration_ms: u64,
}

/// How a hook ended. Its text (`Display`) is what the log, messages and
/// `--json` show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HookResult {
    /// Exited 0.
    Ok,
    /// Exited with this non-zero code.
    Failed { code: i32 },
    /// Killed by a signal restic-manager did not send.
    Killed { signal: i32 },
    /// Its own `timeout` (seconds) ran out.
    TimedOut { after_secs: u64 },
    /// The service's `timeout_seconds` ran out before the hook's own limit.
    ServiceTimedOut,
    /// Stopped because restic-manager received a signal.
    Interrupted,
    /// Stopped: no progress while retrying.
    Stalled,
    /// It could not be started at all (e.g. a missing `working_dir`).
    NotStarted(String),
}

impl HookResult {
    /// What a finished child means for a hook; `by_service` when the
    /// service's remaining time, not the hook's own limit, was the timeout.
    fn of(ended: Ended, hook_timeout: Duration, by_service: bool) -> HookResult {
        match ended {
            Ended::Exited(0) => HookResult::Ok,
            Ended::Exited(code) => HookResult::Failed { code },
            Ended::Signaled(signal) => HookResult::Killed { signal },
            Ended::TimedOut if by_service => HookResult::ServiceTimedOut,
            Ended::TimedOut => HookResult::TimedOut {
                after_secs: hook_timeout.as_secs(),
            },
            Ended::Interrupted(_) => HookResult::Interrupted,
            Ended::Stalled => HookResult::Stalled,
        }
    }

    pub fn is_ok(&self) -> bool {
        *self == HookResult::Ok
    }

    /// Whether a time limit (the hook's or the service's) stopped it.
    pub fn timed_out(&self) -> bool {
        matches!(
            self,
            HookResult::TimedOut { .. } | HookResult::ServiceTimedOut
        )
    }
}

impl std::fmt::Display for HookResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HookResult::Ok => f.write_str("exit code 0"),
            HookResult::Failed { code } => write!(f, "exit code {code}"),
            HookResult::Killed { signal } => write!(f, "killed by signal {signal}"),
            // Named after the limit that ran out, or a user reads "timed
            // out after 1s" for a hook configured with 300.
            HookResult::TimedOut { after_secs } => write!(f, "timed out after {after_secs}s"),
            HookResult::ServiceTimedOut => {
                f.write_str("timed out: the service's `timeout_seconds` ran out")
            }
            HookResult::Interrupted => f.write_str("interrupted"),
            HookResult::Stalled => f.write_str("stopped: no progress while retrying"),
            HookResult::NotStarted(why) => f.write_str(why),
        }
    }
}

impl Serialize for HookResult {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Lines of hook output kept in the log per stream.
const MAX_LOG_LINES: usize = 2000;

/// Runs one hook. `outcome` is set for post hooks.
pub async fn run(
    hook: &Hook,
    phase: Phase,
    service: &str,
    outcome: Option<Outcome>,
    budget: Duration,
    shutdown: &Shutdown,
    log: &RunLog,
) -> HookReport {
    let mut spec = Spec::new("sh").arg("-c").arg(&hook.command);
    // The hook's own limit, unless the service's remaining time is shorter:
    // then the message must name `timeout_seconds` of the service, or a
    // user reads "timed out after 1s" for a hook configured with 300.
    let by_service = budget < hook.timeout();
    spec.timeout = Some(hook.timeout().min(budget));
    spec.grace = Duration::from_secs(5);
    spec.cwd.clone_from(&hook.working_dir);
    spec.env
        .extend(hook.env.iter().map(|(k, v)| (k.clone(), v.clone())));
    spec = spec.env("RESTIC_MANAGER_SERVICE", service);
    spec = spec.env(
        "RESTIC_MANAGER_PHASE",
        if phase == Phase::Pre { "pre" } else { "post" },
    );
    if let Some(o) = outcome {
        spec = spec.env("RESTIC_MANAGER_OUTCOME", o.as_str());
    }
    let label = format!("{phase:?} hook `{}`", hook.name).to_lowercase();
    log.line(&format!("{label}: running `{}`", hook.command));
    let mut lines = 0usize;
    let mut elines = 0usize;
    let res = spec
        .run(
            shutdown,
            |l| {
                lines += 1;
                if lines <= MAX_LOG_LINES {
                    log.line(&format!("{label} | {l}"));
                }
            },
            |l| {
                elines += 1;
                if elines <= MAX_LOG_LINES {
                    log.line(&format!("{label} ! {l}"));
                }
            },
        )
        .await;
    let (result, duration) = match res {
        Ok(out) => (
            HookResult::of(out.ended, hook.timeout(), by_service),
            out.duration,
        ),
        Err(e) => (HookResult::NotStarted(e.to_string()), Duration::ZERO),
    };
    let ok = result.is_ok();
    log.line(&format!(
        "{label}: {}",
        if ok {
            "ok".to_string()
        } else {
            format!("failed ({result})")
        }
    ));
    HookReport {
        name: hook.name.clone(),
        phase,
        ok,
        continue_on_error: hook.continue_on_error,
        result,
        duration_ms: u64::try_from(duration.as_millis()).unwrap_or(u64::MAX),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The texts users read in the log, messages and `--json`.
    #[test]
    fn hook_results_name_what_ended_the_hook() {
        let limit = Duration::from_secs(300);
        for (ended, by_service, text, ok, timed_out) in [
            (Ended::Exited(0), false, "exit code 0", true, false),
            (Ended::Exited(2), false, "exit code 2", false, false),
            (
                Ended::Signaled(9),
                false,
                "killed by signal 9",
                false,
                false,
            ),
            (Ended::TimedOut, false, "timed out after 300s", false, true),
            (
                Ended::TimedOut,
                true,
                "timed out: the service's `timeout_seconds` ran out",
                false,
                true,
            ),
            (Ended::Interrupted(2), false, "interrupted", false, false),
        ] {
            let r = HookResult::of(ended, limit, by_service);
            assert_eq!(
                (r.to_string().as_str(), r.is_ok(), r.timed_out()),
                (text, ok, timed_out),
                "{ended:?}"
            );
        }
    }
}
