//! Email over SMTP (lettre): STARTTLS (default, port 587), implicit TLS
//! (465) or none (a local relay, 25), optional login with the password
//! read from `password_file` when sending. The body is plain text: the
//! summary, one line per destination, the error and the log tail.

use std::time::Duration;

use lettre::message::Body;
use lettre::message::Mailbox;
use lettre::message::header::{ContentTransferEncoding, ContentType};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use super::{ATTEMPTS, Event, Message};
use crate::config::notify::{Email, Notifier, Secret, Security};

/// `[restic-manager] docs on host: failed`.
pub fn subject(m: &Message) -> String {
    let what = match m.event {
        Event::Recovery => "recovered".to_string(),
        Event::Test => "test".to_string(),
        Event::LongRunning => "still running".to_string(),
        _ => m.outcome.clone(),
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
    let builder = match e.security {
        Security::StartTls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&e.host),
        Security::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&e.host),
        Security::None => Ok(AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(
            &e.host,
        )),
    }
    .map_err(|err| format!("SMTP server `{}`: {err}", e.host))?;
    let mut builder = builder.port(e.port).timeout(Some(n.timeout));
    if let (Some(user), Some(file)) = (&e.username, &e.password_file) {
        let password = Secret::File(file.clone())
            .read()
            .map_err(|err| format!("SMTP password: {err}"))?;
        builder = builder.credentials(Credentials::new(user.clone(), password));
    }
    Ok(builder.build())
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
                // A 5xx answer or a problem on our side (no common
                // authentication mechanism, bad TLS set-up) will not get
                // better by trying again.
                if err.is_permanent() || err.is_client() {
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
