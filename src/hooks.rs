//! Pre/post backup hooks: `sh -c` in their own process group, with a
//! timeout that takes down the whole group (TERM, then KILL).

use std::time::Duration;

use serde::Serialize;

use crate::config::Hook;
use crate::engine::runlog::RunLog;
use crate::process::{self, Ended, Shutdown, Spec};

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
    /// `exit code N`, `timed out`, …
    pub result: String,
    pub duration_ms: u64,
}

/// Lines of hook output kept in the log per stream.
const MAX_LOG_LINES: usize = 2000;

/// Runs one hook. `outcome` is set for post hooks.
pub async fn run(
    hook: &Hook,
    phase: Phase,
    service: &str,
    outcome: Option<&str>,
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
        spec = spec.env("RESTIC_MANAGER_OUTCOME", o);
    }
    let label = format!("{phase:?} hook `{}`", hook.name).to_lowercase();
    log.line(&format!("{label}: running `{}`", hook.command));
    let mut lines = 0usize;
    let mut elines = 0usize;
    let res = process::run(
        &spec,
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
    let (ok, result, duration) = match res {
        Ok(out) => {
            let result = match out.ended {
                Ended::TimedOut if by_service => {
                    "timed out: the service's `timeout_seconds` ran out".to_string()
                }
                Ended::TimedOut => format!("timed out after {}s", hook.timeout().as_secs()),
                e => e.describe(),
            };
            (out.ended.success(), result, out.duration)
        }
        Err(e) => (false, e.to_string(), Duration::ZERO),
    };
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
