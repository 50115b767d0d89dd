//! Delivery: each notifier gets the message at once, over HTTP with a
//! timeout and retries (or SMTP), and what each did is reported and logged.
//! Errors never carry a notifier's URL.

use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use super::dispatch::Dispatch;
use super::message::{Event, Message};
use super::{discord, email, healthchecks, ntfy, webhook};
use crate::config::notify::{Notifier, NotifierKind};

/// Attempts per request.
pub(super) const ATTEMPTS: u32 = 3;
/// The longest `retry_after` honoured; a server asking for more is given up
/// on (the run must not hang on a rate limit).
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// The result of one notifier for one message.
#[derive(Debug, Clone, Serialize)]
pub struct Delivery {
    pub notifier: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub event: Event,
    pub service: Option<String>,
    pub result: Delivered,
    /// `HTTP 204`, `SMTP 250 …`, or why it failed (never a secret).
    pub detail: String,
    pub attempts: u32,
}

impl Delivery {
    pub fn ok(&self) -> bool {
        self.result != Delivered::Failed
    }
}

/// Whether a notifier got a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Delivered {
    Sent,
    Failed,
    /// Held back: the same was sent within `rate_limit_minutes`.
    RateLimited,
}

impl std::fmt::Display for Delivered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Delivered::Sent => "sent",
            Delivered::Failed => "failed",
            Delivered::RateLimited => "rate_limited",
        })
    }
}

impl Dispatch {
    /// Sends to each notifier at once; failures become warnings.
    pub(super) async fn deliver(&self, targets: &[&Notifier], m: &Message) -> Vec<Delivery> {
        let sends = targets.iter().map(|n| async move {
            let (res, attempts) = match &n.kind {
                NotifierKind::Discord { url } => discord::send(&self.inner.client, n, url, m).await,
                NotifierKind::Webhook { url, headers } => {
                    webhook::send(&self.inner.client, n, url, headers, m).await
                }
                NotifierKind::Ntfy { url, token_file } => {
                    ntfy::send(&self.inner.client, n, url, token_file.as_deref(), m).await
                }
                NotifierKind::Healthchecks { url } => {
                    healthchecks::send(&self.inner.client, n, url, m).await
                }
                NotifierKind::Email(e) => email::send(n, e, m).await,
            };
            let (result, detail) = match res {
                Ok(d) => (Delivered::Sent, d),
                Err(e) => (Delivered::Failed, e),
            };
            Delivery {
                notifier: n.name.clone(),
                kind: n.kind.type_name(),
                event: m.event,
                service: m.service.clone(),
                result,
                detail,
                attempts,
            }
        });
        let out = futures_util::future::join_all(sends).await;
        for d in &out {
            if d.result == Delivered::Failed && m.event != Event::Test {
                eprintln!(
                    "warning: notifier `{}` ({}): {} of `{}` not delivered: {}",
                    d.notifier,
                    d.kind,
                    d.event.as_str(),
                    d.service.as_deref().unwrap_or("-"),
                    d.detail
                );
            } else if d.result == Delivered::Sent {
                self.inner.printer.verbose(format!(
                    "notifier `{}`: {} sent ({})",
                    d.notifier,
                    d.event.as_str(),
                    d.detail
                ));
            }
        }
        out
    }
}

/// How one HTTP attempt ended.
enum Attempt {
    Done(String),
    /// Worth another attempt, after this long (429's `retry_after`).
    Retry(String, Option<Duration>),
    Fatal(String),
}

/// POSTs (or whatever `build` makes) with the notifier's timeout, up to
/// [`ATTEMPTS`] times: network errors, timeouts and 5xx are retried after
/// 1 s and 2 s; 429 after the server's `retry_after` (body, seconds) or
/// `Retry-After` header; other 4xx are not retried. Errors never carry the
/// URL.
pub(super) async fn http(
    n: &Notifier,
    build: impl Fn() -> reqwest::RequestBuilder,
) -> (Result<String, String>, u32) {
    let mut last = String::new();
    for attempt in 1..=ATTEMPTS {
        let res = match build().timeout(n.timeout).send().await {
            Err(e) => {
                let e = e.without_url();
                let what = if e.is_timeout() {
                    format!("no answer within {} s", n.timeout.as_secs())
                } else if e.is_connect() {
                    format!("cannot connect: {}", root_cause(&e))
                } else {
                    format!("request failed: {}", root_cause(&e))
                };
                Attempt::Retry(what, None)
            }
            Ok(r) => {
                let status = r.status();
                let header_wait = r
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<f64>().ok());
                let body = r.text().await.unwrap_or_default();
                if status.is_success() {
                    Attempt::Done(format!("HTTP {}", status.as_u16()))
                } else if status.as_u16() == 429 {
                    let body_wait = serde_json::from_str::<serde_json::Value>(&body)
                        .ok()
                        .and_then(|v| v.get("retry_after").and_then(serde_json::Value::as_f64));
                    let wait = body_wait.or(header_wait).unwrap_or(1.0).max(0.0);
                    let wait = Duration::from_secs_f64(wait.min(3600.0));
                    if wait > MAX_RETRY_AFTER {
                        Attempt::Fatal(format!(
                            "HTTP 429: rate limited for {} s, longer than restic-manager waits",
                            wait.as_secs()
                        ))
                    } else {
                        Attempt::Retry("HTTP 429 (rate limited)".to_string(), Some(wait))
                    }
                } else if status.is_server_error() {
                    Attempt::Retry(format!("HTTP {}{}", status.as_u16(), snippet(&body)), None)
                } else {
                    Attempt::Fatal(format!("HTTP {}{}", status.as_u16(), snippet(&body)))
                }
            }
        };
        match res {
            Attempt::Done(d) => return (Ok(d), attempt),
            Attempt::Fatal(e) => return (Err(e), attempt),
            Attempt::Retry(e, wait) => {
                last = e;
                if attempt < ATTEMPTS {
                    let wait = wait.unwrap_or(Duration::from_secs(u64::from(attempt)));
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }
    (Err(format!("{last} (after {ATTEMPTS} attempts)")), ATTEMPTS)
}

/// The innermost error message (hyper's "connection refused" rather than
/// reqwest's "error sending request").
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

/// `: <first 200 characters of the body>` for error messages.
fn snippet(body: &str) -> String {
    let b = body.trim();
    if b.is_empty() {
        return String::new();
    }
    let s: String = b.chars().take(200).collect();
    format!(": {s}")
}

/// The notifier's URL, or why it cannot be read (never the URL itself).
pub(super) fn url_of(url: &crate::config::notify::Secret) -> Result<String, String> {
    url.read().map(|u| u.trim_end_matches('/').to_string())
}

/// Appends what each notifier did to the run's log file, so the log tells
/// the whole story of a run.
pub fn log_deliveries(log_file: &Path, deliveries: &[Delivery]) {
    use std::io::Write;
    if deliveries.is_empty() {
        return;
    }
    let Ok(mut f) = std::fs::OpenOptions::new().append(true).open(log_file) else {
        return;
    };
    let now = chrono::Local::now().format("%Y-%m-%d %H:%M:%S");
    for d in deliveries {
        let _ = writeln!(
            f,
            "{now} notification `{}` ({}) {}: {} ({})",
            d.notifier,
            d.kind,
            d.event.as_str(),
            d.result,
            d.detail
        );
    }
}
