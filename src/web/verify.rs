//! Verification from the dashboard, for now a plain `restic check` of each
//! repository, recorded in the `verifies` history table. Isolated so the
//! verify library (check, read-data subsets, drills) can replace it.

use std::time::Duration;

use crate::process::{self, Shutdown};
use crate::restic::ops::{OpError, failure};
use crate::restic::{ErrorClass, Repository, Restic, ResticCall};

/// `restic check` (structure only; no pack data is read).
pub async fn check(restic: &Restic, repo: &Repository, shutdown: &Shutdown) -> Result<(), OpError> {
    let call = ResticCall::new(restic, repo, ["check"]).timeout(Duration::from_secs(6 * 3600));
    let out = process::run(&call.spec, shutdown, |_| {}, |_| {})
        .await
        .map_err(|e| OpError {
            class: ErrorClass::ResticMissing,
            message: e.to_string(),
            stderr: String::new(),
        })?;
    failure(&out, repo).map_or(Ok(()), Err)
}
