//! Email over SMTP (lettre): STARTTLS (default, port 587), implicit TLS
//! (465) or none (a local relay, 25), optional login with the password
//! read from `password_file` when sending. TLS trusts the built-in
//! (webpki) roots plus the notifier's `ca_file` (a relay with its own CA).
//! The body is plain text: the summary, one line per destination, the
//! error and the log tail.

use std::time::Duration;

use lettre::message::Body;
use lettre::message::Mailbox;
use lettre::message::header::{ContentTransferEncoding, ContentType};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use super::{ATTEMPTS, Event, Message};
use crate::config::notify::{Email, Notifier, Secret, Security, read_ca_file};

/// `[restic-manager] docs on host: failed`.
pub fn subject(m: &Message) -> String {
    let what = match m.event {
        Event::Recovery => "recovered".to_string(),
        Event::Test => "test".to_string(),
        Event::LongRunning => "still running".to_string(),
        _ => m.outcome.as_str().to_string(),
    };
    match &m.service {
        Some(s) => format!("[restic-manager] {s} on {}: {what}", m.host),
        None => format!("[restic-manager] {}: {what}", m.host),
    }
}

fn mail(e: &Email, m: &Message) -> Result<lettre::Message, String> {
    let from: Mailbox = e
        .from
        .parse()
        .map_err(|err| format!("`from` address `{}`: {err}", e.from))?;
    let mut b = lettre::Message::builder()
        .from(from)
        .subject(subject(m))
        .header(ContentType::TEXT_PLAIN);
    for t in &e.to {
        let to: Mailbox = t
            .parse()
            .map_err(|err| format!("`to` address `{t}`: {err}"))?;
        b = b.to(to);
    }
    let mut text = format!("{}\n\n{}", m.title, m.text(true));
    text.push_str(&format!(
        "\n\n-- \nrestic-manager on {}, event `{}`\n",
        m.host,
        m.event.as_str()
    ));
    // 8bit keeps the text readable as written (lines are short); a body
    // lettre cannot send that way gets its own choice of encoding.
    let body = Body::new_with_encoding(text.clone(), ContentTransferEncoding::EightBit)
        .unwrap_or_else(|_| Body::new(text));
    b.body(body)
        .map_err(|err| format!("cannot build the message: {err}"))
}

fn transport(n: &Notifier, e: &Email) -> Result<AsyncSmtpTransport<Tokio1Executor>, String> {
    let server = |err: lettre::transport::smtp::Error| format!("SMTP server `{}`: {err}", e.host);
    let builder = match e.security {
        Security::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&e.host),
        Security::StartTls | Security::Tls => {
            // The built-in (webpki) roots, plus the notifier's own CA.
            let mut params = TlsParameters::builder(e.host.clone());
            if let Some(file) = &e.ca_file {
                params = params.add_root_certificate(read_ca_file(file)?);
            }
            let params = params.build().map_err(server)?;
            let tls = if e.security == Security::Tls {
                Tls::Wrapper(params)
            } else {
                Tls::Required(params)
            };
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&e.host).tls(tls)
        }
    };
    let mut builder = builder.port(e.port).timeout(Some(n.timeout));
    if let (Some(user), Some(file)) = (&e.username, &e.password_file) {
        let password = Secret::File(file.clone())
            .read()
            .map_err(|err| format!("SMTP password: {err}"))?;
        builder = builder.credentials(Credentials::new(user.clone(), password));
    }
    Ok(builder.build())
}

/// rustls's words for a certificate it refused (`invalid peer
/// certificate: UnknownIssuer`), the innermost error of lettre's that has
/// them.
fn certificate_refused(err: &lettre::transport::smtp::Error) -> Option<String> {
    let mut found = None;
    let mut source: Option<&dyn std::error::Error> = Some(err);
    while let Some(e) = source {
        let text = e.to_string();
        if text.contains("invalid peer certificate") {
            found = Some(text);
        }
        source = e.source();
    }
    found
}

pub async fn send(n: &Notifier, e: &Email, m: &Message) -> (Result<String, String>, u32) {
    let msg = match mail(e, m) {
        Ok(x) => x,
        Err(err) => return (Err(err), 0),
    };
    let t = match transport(n, e) {
        Ok(t) => t,
        Err(err) => return (Err(err), 0),
    };
    let mut last = String::new();
    for attempt in 1..=ATTEMPTS {
        match t.send(msg.clone()).await {
            Ok(r) => {
                let text: Vec<&str> = r.message().collect();
                return (
                    Ok(format!("SMTP {} {}", r.code(), text.join(" "))
                        .trim_end()
                        .to_string()),
                    attempt,
                );
            }
            Err(err) => {
                last = format!(
                    "SMTP {}:{} ({}): {err}",
                    e.host,
                    e.port,
                    e.security.as_str()
                );
                let refused = certificate_refused(&err);
                if let Some(why) = &refused {
                    let hint = match &e.ca_file {
                        None => format!(
                            "if it is signed by your own CA, set `ca_file` to that CA's PEM certificate; the certificate must also name `{}` (the `host`)",
                            e.host
                        ),
                        Some(f) => format!(
                            "it must be signed by a CA in `{}` or a public one, and name `{}` (the `host`)",
                            f.display(),
                            e.host
                        ),
                    };
                    last = format!(
                        "SMTP {}:{} ({}): the server's TLS certificate was refused ({why}); {hint}",
                        e.host,
                        e.port,
                        e.security.as_str()
                    );
                }
                // A 5xx answer, a refused certificate or a problem on our
                // side (no common authentication mechanism, bad TLS set-up)
                // will not get better by trying again.
                if err.is_permanent() || err.is_client() || refused.is_some() {
                    return (Err(last), attempt);
                }
                if attempt < ATTEMPTS {
                    tokio::time::sleep(Duration::from_secs(u64::from(attempt))).await;
                }
            }
        }
    }
    (Err(format!("{last} (after {ATTEMPTS} attempts)")), ATTEMPTS)
}
