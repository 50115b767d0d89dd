//! `config show`: the resolved configuration, secrets redacted.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;

use super::{Context, select};
use crate::cli::ServiceFilter;
use crate::config::include::FileParts;
use crate::config::notify::{Notifier, NotifierKind};
use crate::config::{Config, Diagnostic, Hook, PasswordSource, Retention, Service};
use crate::engine::plan::{self, TargetPlan};
use crate::error::Error;
use crate::model::Exit;
use crate::output::sorted_keys;

const REDACTED: &str = "***";

// The document `config show --json` prints, and the human form walks.
// Fields are declared in alphabetical order (embedded types sorted with
// `sorted_keys`): it was built from `json!` maps, which sort their keys,
// and stays byte for byte what it was.

/// The resolved configuration, secrets replaced by `***`.
#[derive(Debug, Serialize)]
pub struct Shown<'a> {
    pub global: Global<'a>,
    pub services: Vec<ShownService<'a>>,
    #[serde(serialize_with = "sorted_keys")]
    pub warnings: &'a [Diagnostic],
}

/// `[global]` after defaults, and what the configuration includes.
#[derive(Debug, Serialize)]
pub struct Global<'a> {
    default_timeout_seconds: u64,
    /// With `[docker] discover` only.
    #[serde(skip_serializing_if = "Option::is_none")]
    docker: Option<Docker<'a>>,
    docker_base: Option<&'a Path>,
    file: &'a Path,
    hook_timeout_seconds: u64,
    host: &'a str,
    /// With `include` only: the included files.
    #[serde(skip_serializing_if = "Option::is_none")]
    included: Option<Vec<&'a Path>>,
    lock_directory: &'a Path,
    log_directory: &'a Path,
    long_running_threshold_minutes: u64,
    notifications: Option<Notifications<'a>>,
    notifiers: Vec<ShownNotifier<'a>>,
    password: Password,
    restic_binary: Option<&'a Path>,
    state_directory: &'a Path,
}

/// Where restic's password comes from; a command is not shown.
#[derive(Debug, Serialize)]
#[serde(rename_all = "snake_case")]
enum Password {
    File(PathBuf),
    Command(&'static str),
}

impl Password {
    fn new(p: &PasswordSource) -> Password {
        match p {
            PasswordSource::File(f) => Password::File(f.clone()),
            PasswordSource::Command(_) => Password::Command(REDACTED),
        }
    }
}

/// The original tool's `[notifications]`.
#[derive(Debug, Serialize)]
struct Notifications<'a> {
    cache_file: Option<&'a str>,
    discord_webhook_url: Option<&'static str>,
    notify_on: Option<&'a [String]>,
    rate_limit_minutes: Option<u64>,
}

/// `[docker]` with `discover = true`.
#[derive(Debug, Serialize)]
struct Docker<'a> {
    discover: bool,
    label_prefix: &'a str,
    labelled_containers: &'a [String],
}

/// A notifier, secrets redacted: URLs keep their scheme and host, header
/// values are `***`. The keys every type shares, then its own; written
/// with all of them in alphabetical order ([`sorted_keys`]), as the
/// document had them when it was built from `json!` maps.
#[derive(Debug, Serialize)]
#[serde(transparent)]
struct ShownNotifier<'a>(#[serde(serialize_with = "sorted_keys")] NotifierFields<'a>);

#[derive(Debug, Serialize)]
struct NotifierFields<'a> {
    name: &'a str,
    notify_on: Option<&'a [String]>,
    timeout_seconds: u64,
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(flatten)]
    keys: NotifierKeys<'a>,
}

/// The keys of one notifier type.
#[derive(Debug, Serialize)]
#[serde(untagged)]
enum NotifierKeys<'a> {
    /// `discord` and `healthchecks`.
    Url { url: String },
    Webhook {
        headers: BTreeMap<&'a str, &'static str>,
        url: String,
    },
    Ntfy {
        token_file: Option<&'a Path>,
        url: String,
    },
    Email {
        ca_file: Option<&'a Path>,
        from: &'a str,
        host: &'a str,
        password_file: Option<&'a Path>,
        port: u16,
        security: &'static str,
        to: &'a [String],
        username: Option<&'a str>,
    },
}

/// One resolved service.
#[derive(Debug, Serialize)]
pub struct ShownService<'a> {
    backup_script: Option<&'a str>,
    description: Option<&'a str>,
    enabled: bool,
    excludes: &'a [String],
    /// With `include` only, so a single file's output stays as it was.
    #[serde(skip_serializing_if = "Option::is_none")]
    file: Option<&'a Path>,
    host: &'a str,
    /// With `[docker] discover` (these two): the containers whose labels
    /// the service has, and where each key came from.
    #[serde(skip_serializing_if = "Option::is_none")]
    labelled_by: Option<&'a [String]>,
    name: &'a str,
    notifiers: Option<&'a [String]>,
    notify_on: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    origins: Option<&'a BTreeMap<String, String>>,
    paths: &'a [PathBuf],
    post_backup_hooks: Vec<ShownHook<'a>>,
    pre_backup_hooks: Vec<ShownHook<'a>>,
    profile: Option<&'a str>,
    repositories: Vec<ShownRepository>,
    #[serde(serialize_with = "sorted_keys")]
    retention: &'a Retention,
    schedule: Option<&'a str>,
    strategy: &'a str,
    tags: Vec<String>,
    targets: &'a [String],
    timeout_seconds: u64,
    volumes: &'a [String],
}

/// A hook, its environment's values replaced by `***`.
#[derive(Debug, Serialize)]
struct ShownHook<'a> {
    command: &'a str,
    continue_on_error: bool,
    env: BTreeMap<&'a str, &'static str>,
    name: &'a str,
    timeout_seconds: u64,
    working_dir: Option<&'a Path>,
}

/// A destination of a service: its repository, or why it cannot be opened.
#[derive(Debug, Serialize)]
#[serde(untagged)]
enum ShownRepository {
    Ready {
        destination: String,
        password: Password,
        repository: String,
        /// The `--keep-*` arguments, space separated.
        retention: String,
        #[serde(rename = "type")]
        kind: String,
    },
    Broken {
        destination: String,
        error: String,
    },
}

impl<'a> ShownHook<'a> {
    fn new(h: &'a Hook) -> ShownHook<'a> {
        ShownHook {
            command: &h.command,
            continue_on_error: h.continue_on_error,
            env: h.env.keys().map(|k| (k.as_str(), REDACTED)).collect(),
            name: &h.name,
            timeout_seconds: h.timeout_seconds,
            working_dir: h.working_dir.as_deref(),
        }
    }
}

impl ShownRepository {
    fn new(t: TargetPlan) -> ShownRepository {
        match t {
            TargetPlan::Ready {
                destination,
                repository,
                retention,
                kind,
                repo,
            } => ShownRepository::Ready {
                destination,
                password: Password::new(&repo.password),
                repository,
                retention: retention.join(" "),
                kind,
            },
            TargetPlan::Broken { destination, error } => {
                ShownRepository::Broken { destination, error }
            }
        }
    }
}

impl<'a> ShownNotifier<'a> {
    fn new(n: &'a Notifier) -> ShownNotifier<'a> {
        let keys = match &n.kind {
            NotifierKind::Discord { url } | NotifierKind::Healthchecks { url } => {
                NotifierKeys::Url {
                    url: url.describe(),
                }
            }
            NotifierKind::Webhook { url, headers } => NotifierKeys::Webhook {
                headers: headers.keys().map(|k| (k.as_str(), REDACTED)).collect(),
                url: url.describe(),
            },
            NotifierKind::Ntfy { url, token_file } => NotifierKeys::Ntfy {
                token_file: token_file.as_deref(),
                url: url.describe(),
            },
            NotifierKind::Email(e) => NotifierKeys::Email {
                ca_file: e.ca_file.as_deref(),
                from: &e.from,
                host: &e.host,
                password_file: e.password_file.as_deref(),
                port: e.port,
                security: e.security.as_str(),
                to: &e.to,
                username: e.username.as_deref(),
            },
        };
        ShownNotifier(NotifierFields {
            name: &n.name,
            notify_on: n.notify_on.as_deref(),
            timeout_seconds: n.timeout.as_secs(),
            kind: n.kind.type_name(),
            keys,
        })
    }
}

impl<'a> ShownService<'a> {
    /// The resolved service `s` of `c`.
    pub fn new(c: &'a Config, s: &'a Service) -> ShownService<'a> {
        let discovered = !s.origins.is_empty();
        let hooks = |hs: &'a [Hook]| hs.iter().map(ShownHook::new).collect();
        ShownService {
            backup_script: s.backup_script.as_deref(),
            description: s.description.as_deref(),
            enabled: s.enabled,
            excludes: &s.excludes,
            file: s.file.as_deref(),
            host: &c.settings.host,
            labelled_by: discovered.then_some(s.labelled_by.as_slice()),
            name: &s.name,
            notifiers: s.notifiers.as_deref(),
            notify_on: &s.notify_on,
            origins: discovered.then_some(&s.origins),
            paths: &s.paths,
            post_backup_hooks: hooks(&s.post_backup_hooks),
            pre_backup_hooks: hooks(&s.pre_backup_hooks),
            profile: s.profile.as_deref(),
            repositories: plan::targets(c, s)
                .into_iter()
                .map(ShownRepository::new)
                .collect(),
            retention: &s.retention,
            schedule: s.schedule.as_deref(),
            strategy: &s.strategy,
            tags: plan::tags(s),
            targets: &s.targets,
            timeout_seconds: s.timeout_seconds,
            volumes: &s.volumes,
        }
    }
}

/// Whether a value prints anything in the human form.
fn shown(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => o.values().any(shown),
        _ => true,
    }
}

fn human(v: &Value, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    if let Value::Object(m) = v {
        for (k, val) in m {
            match val {
                v if !shown(v) => {}
                Value::Array(a) if a.iter().all(|x| !x.is_object()) => {
                    let items: Vec<String> = a.iter().map(|x| x.to_string()).collect();
                    out.push_str(&format!("{pad}{k} = [{}]\n", items.join(", ")));
                }
                Value::Array(a) => {
                    for (i, item) in a.iter().enumerate() {
                        out.push_str(&format!("{pad}{k}[{i}]:\n"));
                        human(item, indent + 2, out);
                    }
                }
                Value::Object(_) => {
                    out.push_str(&format!("{pad}{k}:\n"));
                    human(val, indent + 2, out);
                }
                _ => out.push_str(&format!("{pad}{k} = {val}\n")),
            }
        }
    }
}

impl<'a> Global<'a> {
    /// The global part of `c`.
    pub fn new(c: &'a Config) -> Global<'a> {
        let s = &c.settings;
        Global {
            default_timeout_seconds: s.default_timeout_seconds,
            docker: c.discovery.enabled.then(|| Docker {
                discover: true,
                label_prefix: &c.discovery.label_prefix,
                labelled_containers: &c.discovery.containers,
            }),
            docker_base: s.docker_base.as_deref(),
            file: &c.file,
            hook_timeout_seconds: s.hook_timeout_seconds,
            host: &s.host,
            included: c
                .files
                .as_ref()
                .map(|files| files.iter().skip(1).map(|f| f.file.as_path()).collect()),
            lock_directory: &s.lock_directory,
            log_directory: &s.log_directory,
            long_running_threshold_minutes: s.long_running_threshold_minutes,
            notifications: c.notifications.as_ref().map(|n| Notifications {
                cache_file: n.cache_file.as_deref(),
                discord_webhook_url: n.discord_webhook_url.as_ref().map(|_| REDACTED),
                notify_on: n.notify_on.as_deref(),
                rate_limit_minutes: n.rate_limit_minutes,
            }),
            notifiers: c.notify.notifiers.iter().map(ShownNotifier::new).collect(),
            password: Password::new(&s.password),
            restic_binary: s.restic_binary.as_deref(),
            state_directory: &s.state_directory,
        }
    }
}

fn to_value(v: &impl Serialize) -> Result<Value, Error> {
    serde_json::to_value(v).map_err(|e| Error::Other(format!("cannot show the configuration: {e}")))
}

pub fn run(ctx: &Context, f: &ServiceFilter) -> Result<Exit, Error> {
    let c = ctx.load_config_announcing(false)?;
    let services = select(&c, &f.services, false)?;
    let p = &ctx.printer;
    let shown = Shown {
        global: Global::new(&c),
        services: services.iter().map(|s| ShownService::new(&c, s)).collect(),
        warnings: &c.warnings,
    };
    if p.json {
        p.json(&shown);
        return Ok(Exit::Ok);
    }
    // The human form walks the same document, keys sorted.
    let mut out = String::from("[global]\n");
    human(&to_value(&shown.global)?, 2, &mut out);
    for mut v in shown.services {
        let from = v.file.map_or_else(String::new, |f| {
            format!("  # from {}", FileParts::short(f, &c.file))
        });
        out.push_str(&format!("\n[services.{}]{from}\n", v.name));
        // The header's comment names the file.
        v.file = None;
        human(&to_value(&v)?, 2, &mut out);
    }
    p.line(out.trim_end());
    // The modern form of what the original tool's settings became.
    for w in &c.warnings {
        p.warn(w.to_string());
    }
    Ok(Exit::Ok)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::paths::Env;

    #[test]
    fn the_document_keeps_its_sorted_keys() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("config.toml");
        let text = r#"[global]
restic_password_file = "pw"
[notifications]
discord_webhook_url = "https://discord.example/hook"
notify_on = ["failure"]
[destinations.local]
type = "local"
path = "{dir}/repo"
[services.wiki]
targets = ["local"]
schedule = "0 2 * * *"
[services.wiki.config]
paths = ["{dir}"]
[[services.wiki.config.pre_backup_hooks]]
name = "flush"
command = "true"
working_dir = "/tmp"
env = { TOKEN = "secret" }
"#
        .replace("{dir}", &dir.path().display().to_string());
        std::fs::write(&file, text).unwrap();
        let env = Env {
            home: Some(dir.path().join("home")),
            ..Env::default()
        };
        let c = Config::load(&file, &env).unwrap();
        let shown = Shown {
            global: Global::new(&c),
            services: c
                .services
                .iter()
                .map(|s| ShownService::new(&c, s))
                .collect(),
            warnings: &c.warnings,
        };
        crate::output::assert_sorted_keys(&shown);
        let v = serde_json::to_value(&shown).unwrap();
        assert_eq!(
            v["services"][0]["pre_backup_hooks"][0]["env"]["TOKEN"],
            "***"
        );
        assert_eq!(v["global"]["notifications"]["discord_webhook_url"], "***");
    }

    /// A notifier of each type shows the keys and values it had when it was
    /// a `json!` map (keys sorted), and none of its secrets.
    #[test]
    fn notifiers_keep_their_keys_and_hide_their_secrets() {
        use std::time::Duration;

        use crate::config::notify::{Email, Secret, Security};

        let notifier = |name: &str, notify_on: Option<&[&str]>, kind| Notifier {
            name: name.to_string(),
            notify_on: notify_on.map(|v| v.iter().map(ToString::to_string).collect()),
            timeout: Duration::from_secs(10),
            kind,
        };
        let inline = |u: &str| Secret::Inline(u.to_string());
        let cases = [
            (
                notifier(
                    "chat",
                    None,
                    NotifierKind::Discord {
                        url: inline("https://discord.com/api/webhooks/1/SECRET-TOKEN"),
                    },
                ),
                r#"{"name":"chat","notify_on":null,"timeout_seconds":10,"type":"discord","url":"https://discord.com/***"}"#,
            ),
            (
                Notifier {
                    timeout: Duration::from_secs(5),
                    ..notifier(
                        "hc",
                        Some(&["failure"]),
                        NotifierKind::Healthchecks {
                            url: Secret::File(PathBuf::from("/etc/rm/hc-url")),
                        },
                    )
                },
                r#"{"name":"hc","notify_on":["failure"],"timeout_seconds":5,"type":"healthchecks","url":"file /etc/rm/hc-url"}"#,
            ),
            (
                notifier(
                    "hook",
                    None,
                    NotifierKind::Webhook {
                        url: inline("https://hooks.example/in/SECRET-PATH?token=SECRET-QUERY"),
                        headers: BTreeMap::from([
                            (
                                "Authorization".to_string(),
                                "Bearer SECRET-HEADER".to_string(),
                            ),
                            ("X-Team".to_string(), "SECRET-TEAM".to_string()),
                        ]),
                    },
                ),
                r#"{"headers":{"Authorization":"***","X-Team":"***"},"name":"hook","notify_on":null,"timeout_seconds":10,"type":"webhook","url":"https://hooks.example/***"}"#,
            ),
            (
                notifier(
                    "phone",
                    Some(&["success", "failure"]),
                    NotifierKind::Ntfy {
                        url: inline("https://user:SECRET-PW@ntfy.sh/SECRET-TOPIC"),
                        token_file: Some(PathBuf::from("/etc/rm/ntfy-token")),
                    },
                ),
                r#"{"name":"phone","notify_on":["success","failure"],"timeout_seconds":10,"token_file":"/etc/rm/ntfy-token","type":"ntfy","url":"https://ntfy.sh/***"}"#,
            ),
            (
                notifier(
                    "pager",
                    None,
                    NotifierKind::Ntfy {
                        url: inline("https://ntfy.sh/SECRET-TOPIC"),
                        token_file: None,
                    },
                ),
                r#"{"name":"pager","notify_on":null,"timeout_seconds":10,"token_file":null,"type":"ntfy","url":"https://ntfy.sh/***"}"#,
            ),
            (
                notifier(
                    "mail",
                    None,
                    NotifierKind::Email(Email {
                        host: "smtp.example.com".to_string(),
                        port: 587,
                        security: Security::StartTls,
                        username: Some("backup".to_string()),
                        password_file: Some(PathBuf::from("/etc/rm/smtp-pw")),
                        from: "Backups <backups@example.com>".to_string(),
                        to: vec!["admin@example.com".to_string()],
                        ca_file: None,
                    }),
                ),
                r#"{"ca_file":null,"from":"Backups <backups@example.com>","host":"smtp.example.com","name":"mail","notify_on":null,"password_file":"/etc/rm/smtp-pw","port":587,"security":"starttls","timeout_seconds":10,"to":["admin@example.com"],"type":"email","username":"backup"}"#,
            ),
            (
                notifier(
                    "relay",
                    Some(&["failure"]),
                    NotifierKind::Email(Email {
                        host: "mail.example.com".to_string(),
                        port: 465,
                        security: Security::Tls,
                        username: None,
                        password_file: None,
                        from: "backups@example.com".to_string(),
                        to: vec!["a@example.com".to_string(), "b@example.com".to_string()],
                        ca_file: Some(PathBuf::from("/etc/rm/ca.pem")),
                    }),
                ),
                r#"{"ca_file":"/etc/rm/ca.pem","from":"backups@example.com","host":"mail.example.com","name":"relay","notify_on":["failure"],"password_file":null,"port":465,"security":"tls","timeout_seconds":10,"to":["a@example.com","b@example.com"],"type":"email","username":null}"#,
            ),
        ];
        for (n, want) in &cases {
            let shown = ShownNotifier::new(n);
            crate::output::assert_sorted_keys(&shown);
            let text = serde_json::to_string(&shown).unwrap();
            assert_eq!(text, *want, "notifier `{}`", n.name);
            assert!(!text.contains("SECRET"), "a secret shown: {text}");
        }
    }
}
