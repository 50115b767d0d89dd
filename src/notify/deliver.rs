//! Delivery: each notifier gets the message at once, over HTTP with a
//! timeout and retries (or SMTP), and what each did is reported and logged.
//! Errors never carry a notifier's URL.

use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use super::dispatch::Dispatch;
use super::message::{Event, Message};
use super::{discord, email, healthchecks, ntfy, webhook};
use crate::config::notify::{CaFileError, Notifier, NotifierKind, SecretError};

/// Attempts per request.
pub(super) const ATTEMPTS: u32 = 3;
/// The longest `retry_after` honoured; a server asking for more is given up
/// on (the run must not hang on a rate limit).
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// Why a notifier did not get a message. Never carries a URL or a secret.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// The URL could not be read from its file.
    #[error("{0}")]
    Url(SecretError),
    #[error("token: {0}")]
    Token(SecretError),
    #[error("token file `{}` is empty", .0.display())]
    EmptyToken(std::path::PathBuf),
    /// The value is not shown: it may be a token.
    #[error("header `{0}` is not a valid HTTP header")]
    Header(String),
    #[error("cannot encode the message: {0}")]
    Encode(serde_json::Error),
    #[error("no answer within {0} s")]
    Timeout(u64),
    #[error("cannot connect: {0}")]
    Connect(String),
    #[error("request failed: {0}")]
    Request(String),
    #[error("HTTP 429 (rate limited)")]
    RateLimited,
    #[error("HTTP 429: rate limited for {0} s, longer than restic-manager waits")]
    RateLimitedFor(u64),
    /// Any other non-success status, with the start of the body.
    #[error("HTTP {status}{}", snippet(.body))]
    Status { status: u16, body: String },
    #[error("`from` address `{address}`: {source}")]
    From {
        address: String,
        source: lettre::address::AddressError,
    },
    #[error("`to` address `{address}`: {source}")]
    To {
        address: String,
        source: lettre::address::AddressError,
    },
    #[error("cannot build the message: {0}")]
    Build(lettre::error::Error),
    #[error("{0}")]
    CaFile(#[from] CaFileError),
    #[error("SMTP server `{host}`: {source}")]
    TlsSetup {
        host: String,
        source: lettre::transport::smtp::Error,
    },
    #[error("SMTP password: {0}")]
    Password(SecretError),
    /// `server` is `host:port (security)`.
    #[error("SMTP {server}: {source}")]
    Smtp {
        server: String,
        source: lettre::transport::smtp::Error,
    },
    #[error("SMTP {server}: the server's TLS certificate was refused ({why}); {hint}")]
    CertificateRefused {
        server: String,
        why: String,
        hint: String,
    },
    /// The last of [`ATTEMPTS`] failed attempts.
    #[error("{last} (after {attempts} attempts)")]
    GaveUp {
        last: Box<DeliveryError>,
        attempts: u32,
    },
}

impl DeliveryError {
    /// `self` as the last of `attempts` attempts.
    pub(super) fn after(self, attempts: u32) -> DeliveryError {
        DeliveryError::GaveUp {
            last: Box::new(self),
            attempts,
        }
    }
}

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
    /// Sends `m` to one notifier: the HTTP channels get their URL read
    /// here (a URL that cannot be read is not attempted), email its own
    /// settings. Returns what was sent or why not, and the attempts.
    async fn send_one(&self, n: &Notifier, m: &Message) -> (Result<String, DeliveryError>, u32) {
        let client = &self.inner.client;
        let url = match n.kind.url().map(url_of).transpose() {
            Ok(u) => u.unwrap_or_default(),
            Err(e) => return (Err(e), 0),
        };
        match &n.kind {
            NotifierKind::Discord { .. } => discord::send(client, n, &url, m).await,
            NotifierKind::Webhook { headers, .. } => {
                webhook::send(client, n, &url, headers, m).await
            }
            NotifierKind::Ntfy { token_file, .. } => {
                ntfy::send(client, n, &url, token_file.as_deref(), m).await
            }
            NotifierKind::Healthchecks { .. } => healthchecks::send(client, n, &url, m).await,
            NotifierKind::Email(e) => email::send(n, e, m).await,
        }
    }

    /// Sends to each notifier at once; failures become warnings.
    pub(super) async fn deliver(&self, targets: &[&Notifier], m: &Message) -> Vec<Delivery> {
        let sends = targets.iter().map(|n| async move {
            let (res, attempts) = self.send_one(n, m).await;
            let (result, detail) = match res {
                Ok(d) => (Delivered::Sent, d),
                Err(e) => (Delivered::Failed, e.to_string()),
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
                self.inner.printer.warn(format!(
                    "notifier `{}` ({}): {} of `{}` not delivered: {}",
                    d.notifier,
                    d.kind,
                    d.event.as_str(),
                    d.service.as_deref().unwrap_or("-"),
                    d.detail
                ));
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
    Retry(DeliveryError, Option<Duration>),
    Fatal(DeliveryError),
}

/// POSTs (or whatever `build` makes) with the notifier's timeout, up to
/// [`ATTEMPTS`] times: network errors, timeouts and 5xx are retried after
/// 1 s and 2 s; 429 after the server's `retry_after` (body, seconds) or
/// `Retry-After` header; other 4xx are not retried. Errors never carry the
/// URL.
pub(super) async fn http(
    n: &Notifier,
    build: impl Fn() -> reqwest::RequestBuilder,
) -> (Result<String, DeliveryError>, u32) {
    let mut attempt = 1;
    loop {
        let res = match build().timeout(n.timeout).send().await {
            Err(e) => {
                let e = e.without_url();
                let what = if e.is_timeout() {
                    DeliveryError::Timeout(n.timeout.as_secs())
                } else if e.is_connect() {
                    DeliveryError::Connect(root_cause(&e))
                } else {
                    DeliveryError::Request(root_cause(&e))
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
                        Attempt::Fatal(DeliveryError::RateLimitedFor(wait.as_secs()))
                    } else {
                        Attempt::Retry(DeliveryError::RateLimited, Some(wait))
                    }
                } else {
                    let e = DeliveryError::Status {
                        status: status.as_u16(),
                        body,
                    };
                    if status.is_server_error() {
                        Attempt::Retry(e, None)
                    } else {
                        Attempt::Fatal(e)
                    }
                }
            }
        };
        match res {
            Attempt::Done(d) => return (Ok(d), attempt),
            Attempt::Fatal(e) => return (Err(e), attempt),
            Attempt::Retry(e, _) if attempt >= ATTEMPTS => return (Err(e.after(attempt)), attempt),
            Attempt::Retry(_, wait) => {
                let wait = wait.unwrap_or(Duration::from_secs(u64::from(attempt)));
                tokio::time::sleep(wait).await;
                attempt += 1;
            }
        }
    }
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
fn url_of(url: &crate::config::notify::Secret) -> Result<String, DeliveryError> {
    url.read()
        .map(|u| u.trim_end_matches('/').to_string())
        .map_err(DeliveryError::Url)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivery_errors_read_as_before() {
        let secret = || SecretError {
            path: "/run/url".into(),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        };
        let gone = std::io::Error::from(std::io::ErrorKind::NotFound).to_string();
        let long = format!("  {}  ", "x".repeat(300));
        let cases = [
            (DeliveryError::Url(secret()), format!("cannot read `/run/url`: {gone}")),
            (DeliveryError::Token(secret()), format!("token: cannot read `/run/url`: {gone}")),
            (
                DeliveryError::EmptyToken("/run/t".into()),
                "token file `/run/t` is empty".into(),
            ),
            (
                DeliveryError::Header("X Bad".into()),
                "header `X Bad` is not a valid HTTP header".into(),
            ),
            (DeliveryError::Timeout(10), "no answer within 10 s".into()),
            (
                DeliveryError::Connect("connection refused".into()),
                "cannot connect: connection refused".into(),
            ),
            (
                DeliveryError::Request("bad".into()),
                "request failed: bad".into(),
            ),
            (
                DeliveryError::RateLimitedFor(120),
                "HTTP 429: rate limited for 120 s, longer than restic-manager waits".into(),
            ),
            (
                DeliveryError::Status {
                    status: 404,
                    body: " \n".into(),
                },
                "HTTP 404".into(),
            ),
            (
                DeliveryError::Status {
                    status: 400,
                    body: long,
                },
                format!("HTTP 400: {}", "x".repeat(200)),
            ),
            (
                DeliveryError::Status {
                    status: 503,
                    body: "down".into(),
                }
                .after(ATTEMPTS),
                "HTTP 503: down (after 3 attempts)".into(),
            ),
            (
                DeliveryError::RateLimited.after(ATTEMPTS),
                "HTTP 429 (rate limited) (after 3 attempts)".into(),
            ),
            (
                DeliveryError::CertificateRefused {
                    server: "mx:587 (starttls)".into(),
                    why: "invalid peer certificate: UnknownIssuer".into(),
                    hint: "set `ca_file`".into(),
                },
                "SMTP mx:587 (starttls): the server's TLS certificate was refused (invalid peer certificate: UnknownIssuer); set `ca_file`".into(),
            ),
        ];
        for (e, want) in cases {
            assert_eq!(e.to_string(), want);
        }
        let bad = "not an address"
            .parse::<lettre::message::Mailbox>()
            .expect_err("parsed");
        assert_eq!(
            DeliveryError::From {
                address: "not an address".into(),
                source: bad,
            }
            .to_string(),
            format!("`from` address `not an address`: {bad}")
        );
        assert_eq!(
            DeliveryError::To {
                address: "x".into(),
                source: bad,
            }
            .to_string(),
            format!("`to` address `x`: {bad}")
        );
    }
}
