//! `[notifications]` and `[notifiers.NAME]` resolved into the channels a run
//! reports to.
//!
//! The original tool's `[notifications] discord_webhook_url` becomes a
//! notifier named `discord`, so every channel is handled the same way. Secrets
//! (webhook URLs, tokens, SMTP passwords) are kept as [`Secret`]s: inline
//! values or files read when a message is sent, and never shown whole.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::load::{Locator, RawConfig, list};
use super::schema::{NOTIFIER_TYPES, NOTIFY_EVENTS, NotifierRaw};
use super::{Diagnostic, Env, did_you_mean};

/// Default `rate_limit_minutes`.
pub const DEFAULT_RATE_LIMIT_MINUTES: u64 = 60;
/// Default per-request timeout.
pub const DEFAULT_TIMEOUT_SECONDS: u64 = 10;
/// The name the original tool's `discord_webhook_url` gets.
pub const LEGACY_DISCORD: &str = "discord";
/// Shown in place of a secret.
pub const REDACTED: &str = "***";

/// A secret's file could not be read (the error names the file, never the
/// secret).
#[derive(Debug, thiserror::Error)]
#[error("cannot read `{}`: {source}", .path.display())]
pub struct SecretError {
    pub path: PathBuf,
    pub source: std::io::Error,
}

/// A secret value: written in the file, or read from a file when needed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Secret {
    Inline(String),
    File(PathBuf),
}

impl Secret {
    /// The value; a file's content without surrounding whitespace.
    pub fn read(&self) -> Result<String, SecretError> {
        match self {
            Secret::Inline(s) => Ok(s.clone()),
            Secret::File(p) => std::fs::read_to_string(p)
                .map(|s| s.trim().to_string())
                .map_err(|source| SecretError {
                    path: p.clone(),
                    source,
                }),
        }
    }

    /// What `config show` prints: an inline URL keeps its scheme and host
    /// (`https://discord.com/***`); a file is named.
    pub fn describe(&self) -> String {
        match self {
            Secret::Inline(s) => redact_url(s),
            Secret::File(p) => format!("file {}", p.display()),
        }
    }
}

/// `https://host/***`: enough to recognise the service, nothing more.
pub fn redact_url(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let host = rest.split(['/', '?', '#']).next().unwrap_or("");
            // user:password@host
            let host = host.rsplit('@').next().unwrap_or(host);
            format!("{scheme}://{host}/{REDACTED}")
        }
        None => REDACTED.to_string(),
    }
}

/// How an SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// Plain connection upgraded with STARTTLS (required), port 587.
    StartTls,
    /// TLS from the first byte ("SMTPS"), port 465.
    Tls,
    /// No encryption (a relay on localhost), port 25.
    None,
}

impl Security {
    pub fn as_str(self) -> &'static str {
        match self {
            Security::StartTls => "starttls",
            Security::Tls => "tls",
            Security::None => "none",
        }
    }
}

const SECURITY_VALUES: &[&str] = &["starttls", "tls", "none"];

/// An `email` notifier.
#[derive(Debug, Clone)]
pub struct Email {
    pub host: String,
    pub port: u16,
    pub security: Security,
    pub username: Option<String>,
    pub password_file: Option<PathBuf>,
    pub from: String,
    pub to: Vec<String>,
    /// Extra trusted CA certificates (PEM) besides the built-in roots.
    pub ca_file: Option<PathBuf>,
}

/// What a notifier is and where it sends.
#[derive(Debug, Clone)]
pub enum NotifierKind {
    Discord {
        url: Secret,
    },
    Webhook {
        url: Secret,
        /// Values may hold tokens: redacted in `config show`.
        headers: BTreeMap<String, String>,
    },
    Ntfy {
        url: Secret,
        token_file: Option<PathBuf>,
    },
    Healthchecks {
        url: Secret,
    },
    Email(Email),
}

impl NotifierKind {
    /// The URL an HTTP channel posts to; `None` for email.
    pub fn url(&self) -> Option<&Secret> {
        match self {
            NotifierKind::Discord { url }
            | NotifierKind::Webhook { url, .. }
            | NotifierKind::Ntfy { url, .. }
            | NotifierKind::Healthchecks { url } => Some(url),
            NotifierKind::Email(_) => None,
        }
    }

    pub fn type_name(&self) -> &'static str {
        match self {
            NotifierKind::Discord { .. } => "discord",
            NotifierKind::Webhook { .. } => "webhook",
            NotifierKind::Ntfy { .. } => "ntfy",
            NotifierKind::Healthchecks { .. } => "healthchecks",
            NotifierKind::Email(_) => "email",
        }
    }
}

/// One channel.
#[derive(Debug, Clone)]
pub struct Notifier {
    pub name: String,
    /// The notifier's own filter; `None`: whatever the service asks for.
    pub notify_on: Option<Vec<String>>,
    pub timeout: Duration,
    pub kind: NotifierKind,
}

/// Every notification setting, resolved.
#[derive(Debug, Clone, Default)]
pub struct Notify {
    /// The same failure of the same service is not sent again within this.
    pub rate_limit_minutes: u64,
    /// Where sent-notification state is kept.
    pub cache_file: PathBuf,
    /// Sorted by name.
    pub notifiers: Vec<Notifier>,
}

impl Notify {
    pub fn get(&self, name: &str) -> Option<&Notifier> {
        self.notifiers.iter().find(|n| n.name == name)
    }

    pub fn names(&self) -> Vec<&str> {
        self.notifiers.iter().map(|n| n.name.as_str()).collect()
    }
}

/// The notifier names a service may list: every `[notifiers.NAME]` (also
/// ones that could not be parsed, already reported) and `discord` when the
/// original tool's `discord_webhook_url` is set.
pub fn known_names(raw: &RawConfig) -> Vec<String> {
    let mut names: Vec<String> = raw
        .notifiers
        .keys()
        .chain(raw.broken_notifiers.iter())
        .cloned()
        .collect();
    if raw
        .notifications
        .as_ref()
        .is_some_and(|n| n.discord_webhook_url.is_some())
        && !names.iter().any(|n| n == LEGACY_DISCORD)
    {
        names.push(LEGACY_DISCORD.to_string());
    }
    names.sort();
    names
}

/// Checks a service's (or profile's) `notifiers = [...]`; `path` is the
/// key's locator path.
pub fn check_service_notifiers(
    owner: &str,
    list_: &[String],
    path: &str,
    raw: &RawConfig,
    loc: &Locator,
) -> Vec<Diagnostic> {
    let names = known_names(raw);
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let mut out = Vec::new();
    for (i, n) in list_.iter().enumerate() {
        if names.contains(&n.as_str()) {
            continue;
        }
        let mut msg = format!("{owner} names notifier `{n}`, which is not defined");
        if let Some(hint) = did_you_mean(n, &names) {
            msg.push_str(&hint);
        } else if names.is_empty() {
            msg.push_str(&format!("; add a `[notifiers.{n}]` table"));
        } else {
            msg.push_str(&format!("; defined notifiers: {}", list(&names)));
        }
        out.push(loc.at(&format!("{path}.{i}"), msg));
    }
    out
}

/// Resolves `[notifications]` and `[notifiers.*]`. `state_dir` is where the
/// default cache file goes.
pub fn resolve(
    raw: &RawConfig,
    state_dir: &Path,
    env: &Env,
    loc: &Locator,
) -> (Notify, Vec<Diagnostic>) {
    let mut errors = Vec::new();
    let config_dir = raw
        .file
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    let abs = |p: &str| {
        let p = match (p.strip_prefix("~/"), env.home.as_ref()) {
            (Some(rest), Some(home)) => home.join(rest),
            _ => PathBuf::from(p),
        };
        if p.is_absolute() {
            p
        } else {
            config_dir.join(p)
        }
    };
    let n = raw.notifications.clone().unwrap_or_default();
    let mut notify = Notify {
        rate_limit_minutes: n.rate_limit_minutes.unwrap_or(DEFAULT_RATE_LIMIT_MINUTES),
        cache_file: n
            .cache_file
            .as_deref()
            .map_or_else(|| state_dir.join("notifications.json"), &abs),
        notifiers: Vec::new(),
    };
    if let Some(url) = &n.discord_webhook_url {
        if raw.notifiers.contains_key(LEGACY_DISCORD) {
            errors.push(loc.at(
                "notifications.discord_webhook_url",
                format!(
                    "`discord_webhook_url` defines a notifier named `{LEGACY_DISCORD}`, and `[notifiers.{LEGACY_DISCORD}]` exists too; remove one, or rename the table"
                ),
            ));
        } else {
            notify.notifiers.push(Notifier {
                name: LEGACY_DISCORD.to_string(),
                notify_on: None,
                timeout: Duration::from_secs(DEFAULT_TIMEOUT_SECONDS),
                kind: NotifierKind::Discord {
                    url: Secret::Inline(url.clone()),
                },
            });
        }
    }
    for (name, r) in &raw.notifiers {
        let path = format!("notifiers.{name}");
        if let Some(nf) = notifier(name, r, &path, loc, &abs, &mut errors) {
            notify.notifiers.push(nf);
        }
    }
    notify.notifiers.sort_by(|a, b| a.name.cmp(&b.name));
    (notify, errors)
}

/// Keys that only apply to some types.
fn type_keys(kind: &str) -> &'static [&'static str] {
    match kind {
        "discord" | "healthchecks" => &["url", "url_file"],
        "webhook" => &["url", "url_file", "headers"],
        "ntfy" => &["url", "url_file", "token_file"],
        "email" => &[
            "host",
            "port",
            "security",
            "username",
            "password_file",
            "from",
            "to",
            "ca_file",
        ],
        _ => &[],
    }
}

fn set_keys(r: &NotifierRaw) -> Vec<&'static str> {
    let mut out = Vec::new();
    macro_rules! chk {
        ($($f:ident),*) => { $( if r.$f.is_some() { out.push(stringify!($f)); } )* };
    }
    chk!(
        url,
        url_file,
        headers,
        token_file,
        host,
        port,
        security,
        username,
        password_file,
        from,
        to,
        ca_file
    );
    out
}

fn notifier(
    name: &str,
    r: &NotifierRaw,
    path: &str,
    loc: &Locator,
    abs: &dyn Fn(&str) -> PathBuf,
    errors: &mut Vec<Diagnostic>,
) -> Option<Notifier> {
    let mut err = |key: &str, msg: String| {
        let p = if key.is_empty() {
            path.to_string()
        } else {
            format!("{path}.{key}")
        };
        errors.push(loc.at(&p, msg));
    };
    let kind = notifier_type(name, r, &mut err)?;
    let ok = common_keys(name, kind, r, &mut err);
    let timeout = Duration::from_secs(r.timeout_seconds.unwrap_or(DEFAULT_TIMEOUT_SECONDS));
    let url = if kind == "email" {
        None
    } else {
        notifier_url(name, kind, r, abs, &mut err)
    };
    let kind = match kind {
        "discord" => NotifierKind::Discord { url: url? },
        "healthchecks" => NotifierKind::Healthchecks { url: url? },
        "webhook" => NotifierKind::Webhook {
            url: url?,
            headers: r.headers.clone().unwrap_or_default(),
        },
        "ntfy" => NotifierKind::Ntfy {
            url: url?,
            token_file: r.token_file.as_deref().map(abs),
        },
        _ => NotifierKind::Email(email(name, r, abs, &mut err)?),
    };
    ok.then(|| Notifier {
        name: name.to_string(),
        notify_on: r.notify_on.clone(),
        timeout,
        kind,
    })
}

/// The notifier's `type`, one of [`NOTIFIER_TYPES`].
fn notifier_type<'r>(
    name: &str,
    r: &'r NotifierRaw,
    err: &mut dyn FnMut(&str, String),
) -> Option<&'r str> {
    let Some(kind) = r.kind.as_deref() else {
        err(
            "",
            format!(
                "notifier `{name}` has no `type`; valid types are {}",
                list(NOTIFIER_TYPES)
            ),
        );
        return None;
    };
    if !NOTIFIER_TYPES.contains(&kind) {
        let mut msg = format!(
            "notifier `{name}` has unknown type `{kind}`; valid types are {}",
            list(NOTIFIER_TYPES)
        );
        msg.push_str(&did_you_mean(kind, NOTIFIER_TYPES).unwrap_or_default());
        err("type", msg);
        return None;
    }
    Some(kind)
}

/// The keys every type shares: which keys apply, `notify_on`,
/// `timeout_seconds`. False when one of them is wrong.
fn common_keys(name: &str, kind: &str, r: &NotifierRaw, err: &mut dyn FnMut(&str, String)) -> bool {
    let mut ok = true;
    let allowed = type_keys(kind);
    for key in set_keys(r) {
        if !allowed.contains(&key) {
            err(
                key,
                format!(
                    "notifier `{name}`: key `{key}` does not apply to type `{kind}`; a `{kind}` notifier takes {}, `notify_on` and `timeout_seconds`",
                    list(allowed)
                ),
            );
            ok = false;
        }
    }
    if let Some(events) = &r.notify_on {
        for (i, v) in events.iter().enumerate() {
            if !NOTIFY_EVENTS.contains(&v.as_str()) {
                let hint = did_you_mean(v, NOTIFY_EVENTS)
                    .unwrap_or_else(|| format!("; valid events are {}", list(NOTIFY_EVENTS)));
                err(
                    &format!("notify_on.{i}"),
                    format!("notifier `{name}`: unknown `notify_on` event `{v}`{hint}"),
                );
                ok = false;
            }
        }
    }
    if r.timeout_seconds == Some(0) {
        err(
            "timeout_seconds",
            format!("notifier `{name}`: `timeout_seconds` must be greater than 0"),
        );
        ok = false;
    }
    ok
}

/// `url` or `url_file` of a notifier that posts to a URL.
fn notifier_url(
    name: &str,
    kind: &str,
    r: &NotifierRaw,
    abs: &dyn Fn(&str) -> PathBuf,
    err: &mut dyn FnMut(&str, String),
) -> Option<Secret> {
    match (&r.url, &r.url_file) {
        (Some(_), Some(_)) => {
            err(
                "url_file",
                format!("notifier `{name}`: set either `url` or `url_file`, not both"),
            );
            None
        }
        (Some(u), None) => {
            if u.starts_with("https://") || u.starts_with("http://") {
                Some(Secret::Inline(u.trim_end_matches('/').to_string()))
            } else {
                // Not echoed: it may be a secret pasted in the wrong place.
                err(
                    "url",
                    format!("notifier `{name}`: `url` must start with https:// or http://"),
                );
                None
            }
        }
        (None, Some(f)) => Some(Secret::File(abs(f))),
        (None, None) => {
            err(
                "",
                format!(
                    "{kind} notifier `{name}` needs `url` (or `url_file`, a file holding the URL){}",
                    match kind {
                        "discord" => ": the channel's webhook URL",
                        "webhook" => ": where the JSON is POSTed",
                        "ntfy" => ": the topic URL, e.g. `https://ntfy.sh/my-backups`",
                        _ => ": the check's ping URL, e.g. `https://hc-ping.com/UUID`",
                    }
                ),
            );
            None
        }
    }
}

fn email(
    name: &str,
    r: &NotifierRaw,
    abs: &dyn Fn(&str) -> PathBuf,
    err: &mut dyn FnMut(&str, String),
) -> Option<Email> {
    let mut ok = true;
    let security = match r.security.as_deref() {
        None | Some("starttls") => Security::StartTls,
        Some("tls") => Security::Tls,
        Some("none") => Security::None,
        Some(other) => {
            let mut msg = format!(
                "notifier `{name}`: unknown `security` value `{other}`; valid values are {}",
                list(SECURITY_VALUES)
            );
            msg.push_str(&did_you_mean(other, SECURITY_VALUES).unwrap_or_default());
            err("security", msg);
            ok = false;
            Security::StartTls
        }
    };
    let host = r.host.clone().unwrap_or_default();
    if host.trim().is_empty() {
        err(
            if r.host.is_some() { "host" } else { "" },
            format!("email notifier `{name}` needs `host`, the SMTP server"),
        );
        ok = false;
    }
    let from = r.from.clone().unwrap_or_default();
    if from.parse::<lettre::message::Mailbox>().is_err() {
        err(
            if r.from.is_some() { "from" } else { "" },
            format!(
                "email notifier `{name}` needs `from`, a sender address like `backups@example.com` or `Backups <backups@example.com>`"
            ),
        );
        ok = false;
    }
    let to = r.to.clone().unwrap_or_default();
    if to.is_empty() {
        err(
            if r.to.is_some() { "to" } else { "" },
            format!(
                "email notifier `{name}` needs `to`, a list of recipients like `[\"admin@example.com\"]`"
            ),
        );
        ok = false;
    }
    for (i, t) in to.iter().enumerate() {
        if t.parse::<lettre::message::Mailbox>().is_err() {
            err(
                &format!("to.{i}"),
                format!("notifier `{name}`: `{t}` is not an email address"),
            );
            ok = false;
        }
    }
    if r.username.is_some() != r.password_file.is_some() {
        err(
            if r.username.is_some() {
                "username"
            } else {
                "password_file"
            },
            format!("notifier `{name}`: set `username` and `password_file` together"),
        );
        ok = false;
    }
    let mut ca_file = None;
    if let Some(f) = &r.ca_file {
        let path = abs(f);
        if security == Security::None {
            err(
                "ca_file",
                format!(
                    "notifier `{name}`: `ca_file` only applies to encrypted connections; set `security = \"starttls\"` or `\"tls\"`, or remove `ca_file`"
                ),
            );
            ok = false;
        } else if let Err(e) = read_ca_file(&path) {
            err("ca_file", format!("notifier `{name}`: `ca_file` {e}"));
            ok = false;
        }
        ca_file = Some(path);
    }
    let port = r.port.unwrap_or(match security {
        Security::StartTls => 587,
        Security::Tls => 465,
        Security::None => 25,
    });
    ok.then(|| Email {
        host,
        port,
        security,
        username: r.username.clone(),
        password_file: r.password_file.as_deref().map(abs),
        from,
        to,
        ca_file,
    })
}

/// What a `ca_file` must hold, for the end of [`CaFileError`] messages.
const CA_FILE_HINT: &str =
    "it must hold the CA certificate(s) in PEM form (`-----BEGIN CERTIFICATE-----`)";

/// Why an email notifier's `ca_file` cannot be used. Each message starts
/// with the file's name and says what to put there.
#[derive(Debug, thiserror::Error)]
pub enum CaFileError {
    #[error("`{}` cannot be read: {source}", .path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("`{}` contains no certificate; {CA_FILE_HINT}", .path.display())]
    NoCertificate { path: PathBuf },
    #[error("`{}` is not valid PEM ({source}); {CA_FILE_HINT}", .path.display())]
    NotPem {
        path: PathBuf,
        source: lettre::transport::smtp::Error,
    },
    #[error("`{}` holds a certificate that cannot be used ({source}); {CA_FILE_HINT}", .path.display())]
    Unusable {
        path: PathBuf,
        source: lettre::transport::smtp::Error,
    },
}

/// The CA certificates of an email notifier's `ca_file`, checked the way
/// the TLS connection will use them.
pub fn read_ca_file(
    path: &Path,
) -> Result<lettre::transport::smtp::client::Certificate, CaFileError> {
    use lettre::transport::smtp::client::{Certificate, TlsParameters};
    let path_buf = || path.to_path_buf();
    let pem = std::fs::read(path).map_err(|source| CaFileError::Read {
        path: path_buf(),
        source,
    })?;
    let count = String::from_utf8_lossy(&pem)
        .matches("-----BEGIN CERTIFICATE-----")
        .count();
    if count == 0 {
        return Err(CaFileError::NoCertificate { path: path_buf() });
    }
    let cert = Certificate::from_pem(&pem).map_err(|source| CaFileError::NotPem {
        path: path_buf(),
        source,
    })?;
    // Adding the certificates to a trust store parses them: a damaged one
    // is reported now, not when the first failure should be sent.
    TlsParameters::builder("localhost".to_string())
        .add_root_certificate(cert.clone())
        .build()
        .map_err(|source| CaFileError::Unusable {
            path: path_buf(),
            source,
        })?;
    Ok(cert)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_keep_only_scheme_and_host() {
        for (url, want) in [
            (
                "https://discord.com/api/webhooks/1/TOKEN",
                "https://discord.com/***",
            ),
            (
                "http://user:pw@127.0.0.1:8080/x?y=1",
                "http://127.0.0.1:8080/***",
            ),
            ("https://ntfy.sh/secret-topic", "https://ntfy.sh/***"),
            ("not a url", "***"),
        ] {
            assert_eq!(redact_url(url), want);
        }
    }
}
