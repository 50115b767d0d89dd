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

use super::{ATTEMPTS, DeliveryError, Event, Message};
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

fn mail(e: &Email, m: &Message) -> Result<lettre::Message, DeliveryError> {
    let from: Mailbox = e.from.parse().map_err(|source| DeliveryError::From {
        address: e.from.clone(),
        source,
    })?;
    let mut b = lettre::Message::builder()
        .from(from)
        .subject(subject(m))
        .header(ContentType::TEXT_PLAIN);
    for t in &e.to {
        let to: Mailbox = t.parse().map_err(|source| DeliveryError::To {
            address: t.clone(),
            source,
        })?;
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
    b.body(body).map_err(DeliveryError::Build)
}

fn transport(n: &Notifier, e: &Email) -> Result<AsyncSmtpTransport<Tokio1Executor>, DeliveryError> {
    let server = |source| DeliveryError::TlsSetup {
        host: e.host.clone(),
        source,
    };
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
            .map_err(DeliveryError::Password)?;
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

pub async fn send(n: &Notifier, e: &Email, m: &Message) -> (Result<String, DeliveryError>, u32) {
    let msg = match mail(e, m) {
        Ok(x) => x,
        Err(err) => return (Err(err), 0),
    };
    let t = match transport(n, e) {
        Ok(t) => t,
        Err(err) => return (Err(err), 0),
    };
    let server = format!("{}:{} ({})", e.host, e.port, e.security.as_str());
    let mut attempt = 1;
    loop {
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
                let refused = certificate_refused(&err);
                // A 5xx answer, a refused certificate or a problem on our
                // side (no common authentication mechanism, bad TLS set-up)
                // will not get better by trying again.
                let permanent = err.is_permanent() || err.is_client() || refused.is_some();
                if let Some(why) = refused {
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
                    let last = DeliveryError::CertificateRefused { server, why, hint };
                    return (Err(last), attempt);
                }
                let last = DeliveryError::Smtp {
                    server: server.clone(),
                    source: err,
                };
                if permanent {
                    return (Err(last), attempt);
                }
                if attempt >= ATTEMPTS {
                    return (Err(last.after(attempt)), attempt);
                }
                tokio::time::sleep(Duration::from_secs(u64::from(attempt))).await;
                attempt += 1;
            }
        }
    }
}
