//! The signal rules of every long-running command (`run`, `verify`,
//! `restore`, `serve`).

use std::time::Duration;

use crate::process::{ShutdownTrigger, kill_all_now};

/// Docker may still be stopping a container (its stop timeout, up to 30 s)
/// when the second signal arrives; wait that long for it before starting it.
const CONTAINER_RESTART_WAIT: Duration = Duration::from_secs(45);

/// The first SIGINT/SIGTERM prints `message` and fires `trigger` (children
/// get SIGINT, so restic removes its lock; cleanup runs; the work is
/// recorded as interrupted). A second one kills every child at once, starts
/// again any container this process stopped (an impatient user must not
/// leave a service down), and exits 128+signal. Abort the returned task
/// when the work is done.
pub fn watch_signals(
    trigger: ShutdownTrigger,
    message: &'static str,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut int), Ok(mut term)) = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) else {
            return;
        };
        let mut first = true;
        loop {
            let sig = tokio::select! {
                _ = int.recv() => 2,
                _ = term.recv() => 15,
            };
            if first {
                crate::logging::notice(format!("restic-manager: {message}"));
                trigger.fire(sig);
                first = false;
            } else {
                kill_all_now();
                let left = crate::sources::docker::restart_registered(CONTAINER_RESTART_WAIT).await;
                if !left.is_empty() {
                    crate::logging::notice(format!(
                        "restic-manager: could not start containers {} again; start them with `docker start`",
                        left.join(", ")
                    ));
                }
                std::process::exit(128 + sig);
            }
        }
    })
}
