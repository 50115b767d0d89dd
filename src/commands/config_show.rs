//! `config show`: the resolved configuration, secrets redacted.

use serde_json::{Value, json};

use super::{Context, select};
use crate::cli::ServiceFilter;
use crate::config::include::FileParts;
use crate::config::{Config, PasswordSource, Service};
use crate::engine::plan::{self, TargetPlan};
use crate::error::Error;
use crate::model::Exit;

const REDACTED: &str = "***";

fn password(p: &PasswordSource) -> Value {
    match p {
        PasswordSource::File(f) => json!({"file": f}),
        PasswordSource::Command(_) => json!({"command": REDACTED}),
    }
}

/// The resolved service as JSON, with secrets replaced by `***`.
pub fn service_json(c: &Config, s: &Service) -> Value {
    let hooks = |hs: &[crate::config::Hook]| {
        hs.iter()
            .map(|h| {
                json!({
                    "name": h.name,
                    "command": h.command,
                    "working_dir": h.working_dir,
                    "timeout_seconds": h.timeout_seconds,
                    "continue_on_error": h.continue_on_error,
                    "env": h.env.keys().map(|k| (k.clone(), json!(REDACTED))).collect::<serde_json::Map<_, _>>(),
                })
            })
            .collect::<Vec<_>>()
    };
    let repos: Vec<Value> = plan::targets(c, s)
        .into_iter()
        .map(|t| match t {
            TargetPlan::Ready {
                destination,
                repository,
                retention,
                kind,
                password: pw,
            } => json!({
                "destination": destination,
                "type": kind,
                "repository": repository,
                "password": password(&pw),
                "retention": retention.join(" "),
            }),
            TargetPlan::Broken { destination, error } => {
                json!({"destination": destination, "error": error})
            }
        })
        .collect();
    let mut v = json!({
        "name": s.name,
        "enabled": s.enabled,
        "profile": s.profile,
        "description": s.description,
        "strategy": s.strategy,
        "schedule": s.schedule,
        "targets": s.targets,
        "repositories": repos,
        "paths": s.paths,
        "volumes": s.volumes,
        "excludes": s.excludes,
        "tags": plan::tags(s),
        "host": c.settings.host,
        "retention": s.retention,
        "timeout_seconds": s.timeout_seconds,
        "notify_on": s.notify_on,
        "notifiers": s.notifiers,
        "pre_backup_hooks": hooks(&s.pre_backup_hooks),
        "post_backup_hooks": hooks(&s.post_backup_hooks),
        "backup_script": s.backup_script,
    });
    // Only with `include`, so a single file's output stays as it was.
    if let Some(f) = &s.file {
        v["file"] = json!(f);
    }
    with_origins(&mut v, s);
    v
}

/// With `[docker] discover`: where each key came from (`file` or a label
/// on a container), and the containers whose labels the service has.
fn with_origins(v: &mut Value, s: &Service) {
    if let Value::Object(m) = v
        && !s.origins.is_empty()
    {
        m.insert("origins".into(), json!(s.origins));
        m.insert("labelled_by".into(), json!(s.labelled_by));
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

pub fn run(ctx: &Context, f: &ServiceFilter) -> Result<Exit, Error> {
    let c = ctx.load_config_announcing(false)?;
    let services = select(&c, &f.services, false)?;
    let p = &ctx.printer;
    let s = &c.settings;
    let mut global = json!({
        "file": c.file,
        "password": password(&s.password),
        "state_directory": s.state_directory,
        "log_directory": s.log_directory,
        "lock_directory": s.lock_directory,
        "docker_base": s.docker_base,
        "host": s.host,
        "restic_binary": s.restic_binary,
        "default_timeout_seconds": s.default_timeout_seconds,
        "hook_timeout_seconds": s.hook_timeout_seconds,
        "long_running_threshold_minutes": s.long_running_threshold_minutes,
        "notifications": c.notifications.as_ref().map(|n| json!({
            "discord_webhook_url": n.discord_webhook_url.as_ref().map(|_| REDACTED),
            "notify_on": n.notify_on,
            "rate_limit_minutes": n.rate_limit_minutes,
            "cache_file": n.cache_file,
        })),
        "notifiers": c.notify.notifiers.iter().map(crate::config::notify::Notifier::describe).collect::<Vec<_>>(),
    });
    if let Some(files) = &c.files {
        global["included"] = json!(files.iter().skip(1).map(|f| &f.file).collect::<Vec<_>>());
    }
    if c.discovery.enabled
        && let Value::Object(m) = &mut global
    {
        m.insert(
            "docker".into(),
            json!({"discover": true, "label_prefix": c.discovery.label_prefix, "labelled_containers": c.discovery.containers}),
        );
    }
    let svc: Vec<Value> = services.iter().map(|s| service_json(&c, s)).collect();
    if p.json {
        p.json(&json!({"global": global, "services": svc, "warnings": c.warnings}));
        return Ok(Exit::Ok);
    }
    let mut out = String::from("[global]\n");
    human(&global, 2, &mut out);
    for (v, s) in svc.iter().zip(&services) {
        let from = s.file.as_ref().map_or_else(String::new, |f| {
            format!("  # from {}", FileParts::short(f, &c.file))
        });
        out.push_str(&format!(
            "\n[services.{}]{from}\n",
            v["name"].as_str().unwrap_or("?")
        ));
        // The header's comment names the file.
        let mut v = v.clone();
        if let Some(m) = v.as_object_mut() {
            m.remove("file");
        }
        human(&v, 2, &mut out);
    }
    p.line(out.trim_end());
    // The modern form of what the original tool's settings became.
    for w in &c.warnings {
        eprintln!("warning: {w}");
    }
    Ok(Exit::Ok)
}
