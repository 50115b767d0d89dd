//! Notifications: tell people when a backup fails, warns, recovers, runs
//! long or silently stops (stale), through Discord, a generic JSON webhook,
//! ntfy, healthchecks-style pings and email.
//!
//! A notifier that cannot deliver is a warning on stderr (and in the run
//! log), never a change to the backup's outcome or exit code. Every request
//! has a timeout and up to three attempts. Secrets (URLs, tokens, the SMTP
//! password) never appear in messages about failures: errors are reported
//! without the URL.
//!
//! Which events reach which notifier: the service's `notify_on` (inherited
//! from its profile, else `[notifications] notify_on`, default `failure` +
//! `warning`), narrowed by the notifier's own `notify_on` when it sets one,
//! for the notifiers the service names in `notifiers` (default: all). A
//! recovery is sent to a notifier that takes `failure` or `warning`; `stale`
//! goes to one that takes `stale` or `failure`. healthchecks notifiers get
//! every run's pings whatever `notify_on` says: they are a dead man's switch.

mod deliver;
mod discord;
mod dispatch;
mod email;
mod healthchecks;
mod message;
mod ntfy;
pub mod state;
mod webhook;

use deliver::{ATTEMPTS, http};
pub use deliver::{Delivered, Delivery, DeliveryError, log_deliveries};
pub use dispatch::{Dispatch, StaleService, config_failure};
pub use message::{
    BackupResult, DestinationSummary, Event, Message, Reported, VerifyResult, destination_line,
    log_tail,
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::notify::Secret;
    use crate::config::notify::{Notifier, NotifierKind};
    use std::time::Duration;

    fn notifier(kind: &str, own: Option<&[&str]>) -> Notifier {
        let url = Secret::Inline("http://x".into());
        Notifier {
            name: kind.into(),
            notify_on: own.map(|o| o.iter().map(ToString::to_string).collect()),
            timeout: Duration::from_secs(1),
            kind: match kind {
                "healthchecks" => NotifierKind::Healthchecks { url },
                _ => NotifierKind::Discord { url },
            },
        }
    }

    #[test]
    fn which_events_a_notifier_takes() {
        let default = ["failure".to_string(), "warning".to_string()];
        let success = ["success".to_string()];
        for (kind, own, service_on, event, want) in [
            ("discord", None, &default[..], Event::Failure, true),
            ("discord", None, &default[..], Event::Success, false),
            ("discord", None, &default[..], Event::Recovery, true),
            ("discord", None, &default[..], Event::Stale, true),
            ("discord", None, &default[..], Event::LongRunning, false),
            ("discord", None, &default[..], Event::Start, false),
            ("discord", None, &success[..], Event::Recovery, true),
            ("discord", None, &success[..], Event::Failure, false),
            // The notifier's own list narrows, never widens.
            (
                "discord",
                Some(&["failure"][..]),
                &default[..],
                Event::Warning,
                false,
            ),
            (
                "discord",
                Some(&["success"][..]),
                &default[..],
                Event::Success,
                false,
            ),
            (
                "discord",
                Some(&["stale"][..]),
                &default[..],
                Event::Stale,
                true,
            ),
            // healthchecks: every run, whatever notify_on says; no stale.
            (
                "healthchecks",
                Some(&["failure"][..]),
                &success[..],
                Event::Start,
                true,
            ),
            ("healthchecks", None, &default[..], Event::Success, true),
            ("healthchecks", None, &default[..], Event::Stale, false),
            (
                "healthchecks",
                None,
                &default[..],
                Event::LongRunning,
                false,
            ),
        ] {
            assert_eq!(
                Dispatch::wants(&notifier(kind, own), service_on, event),
                want,
                "{kind} own={own:?} service={service_on:?} {event:?}"
            );
        }
    }

    #[test]
    fn the_log_tail_keeps_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("run.log");
        let text: Vec<String> = (0..100).map(|i| format!("line {i}")).collect();
        std::fs::write(&f, text.join("\n")).unwrap();
        let tail = log_tail(&f).unwrap_or_default();
        assert!(
            tail.starts_with("line 60\n") && tail.ends_with("line 99"),
            "{tail}"
        );
    }
}
