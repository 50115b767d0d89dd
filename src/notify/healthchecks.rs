//! healthchecks.io-style pings (also self-hosted Healthchecks and
//! compatible services): `<url>/start` when a run begins, `<url>` when it
//! succeeds, `<url>/fail` with the log tail when it fails, and
//! `<url>/<exit code>` (`/3`) when it finishes with warnings, so the
//! check goes down and shows "exit status 3". `notify test` uses `<url>/log`,
//! which records an event without changing the check's state.

use super::{DeliveryError, Event, Message, http};
use crate::config::notify::Notifier;

/// The path after the ping URL for an event (`""` for success).
pub fn suffix(e: Event) -> &'static str {
    match e {
        Event::Start => "/start",
        Event::Success | Event::Recovery => "",
        Event::Warning => "/3",
        Event::Test => "/log",
        Event::Failure | Event::Stale | Event::LongRunning => "/fail",
    }
}

pub async fn send(
    client: &reqwest::Client,
    n: &Notifier,
    url: &str,
    m: &Message,
) -> (Result<String, DeliveryError>, u32) {
    let target = format!("{url}{}", suffix(m.event));
    let body = match m.event {
        Event::Start => String::new(),
        Event::Success | Event::Recovery | Event::Test => m.text(false),
        _ => m.text(true),
    };
    // Healthchecks keeps the first 100 kB of a ping body.
    let body: String = body.chars().take(10_000).collect();
    http(n, || client.post(&target).body(body.clone())).await
}
