//! The plan of a run: the resolved, immutable description of what running
//! the given services will do (sources, dumps, hooks, each destination's
//! repository and retention), built from the configuration alone, without
//! running anything. `run --dry-run` prints it; `config show` and `list`
//! print the facts they share with it from here, and so does the
//! dashboard's `/api/services`.
//!
//! The engine executes a plan ([`crate::engine::run::Runner::run`]): each
//! [`ServicePlan`] carries the service's configuration, and each ready
//! [`TargetPlan`] the repository its backup, copy and retention open (its
//! credential files are read only then). Paths are looked up when the plan
//! is made; a run checks them again after its pre hooks, which may mount
//! them.
//!
//! The structs are the `--json` documents. Their fields are declared in
//! alphabetical order, the order the documents had when they were built
//! as `json!` maps, so the output stays byte for byte what it was.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;

use crate::config::{Config, Service};
use crate::engine::run::resolve_sources;
use crate::restic::Repository;

/// What a run of some services will do, service by service.
#[derive(Debug, Clone, Serialize)]
#[serde(transparent)]
pub struct Plan<'a> {
    pub services: Vec<ServicePlan<'a>>,
}

/// One service's part of a [`Plan`].
#[derive(Debug, Clone, Serialize)]
pub struct ServicePlan<'a> {
    pub backup_script: Option<String>,
    /// The service as configured (hooks, dumps, timeouts, …).
    #[serde(skip)]
    pub config: &'a Service,
    pub dumps: Vec<DumpPlan>,
    pub excludes: Vec<String>,
    /// The `--host` of its snapshots.
    pub host: String,
    pub post_backup_hooks: Vec<String>,
    pub pre_backup_hooks: Vec<String>,
    pub service: String,
    /// Why the sources cannot be backed up (a missing path).
    pub source_error: Option<String>,
    /// The paths restic will read (`None` with a `source_error`).
    pub sources: Option<Vec<PathBuf>>,
    /// The service tag first, then the configured ones.
    pub tags: Vec<String>,
    pub targets: Vec<TargetPlan>,
}

/// One dump of a service, as it lands in the snapshot.
#[derive(Debug, Clone, Serialize)]
pub struct DumpPlan {
    pub container: Option<String>,
    /// The path inside the snapshot, without the leading `/`.
    pub filename: String,
    pub name: String,
    pub tag: String,
    /// The preset's name, or `command`.
    #[serde(rename = "type")]
    pub kind: &'static str,
}

/// One destination of a service: the repository a run will open, or why
/// it cannot.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum TargetPlan {
    Ready {
        destination: String,
        /// The location with credentials replaced by `***`.
        repository: String,
        /// The `--keep-*` arguments of `restic forget` (none: no forget).
        retention: Vec<String>,
        /// The destination's type (`local`, `s3`, …).
        #[serde(skip)]
        kind: String,
        /// The repository, without its credential files read: the run
        /// reads them when it opens it ([`Repository::with_secrets`]).
        #[serde(skip)]
        repo: Box<Repository>,
    },
    Broken {
        destination: String,
        error: String,
    },
}

impl TargetPlan {
    pub fn destination(&self) -> &str {
        match self {
            TargetPlan::Ready { destination, .. } | TargetPlan::Broken { destination, .. } => {
                destination
            }
        }
    }
}

impl<'a> Plan<'a> {
    /// The plan of running `services` with configuration `c` (missing
    /// source paths are looked up now).
    pub fn new(c: &Config, services: &[&'a Service]) -> Plan<'a> {
        Plan {
            services: services.iter().map(|s| ServicePlan::new(c, s)).collect(),
        }
    }

    /// What the real run would fail on, one line each (`service: why`).
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for s in &self.services {
            if let Some(e) = &s.source_error {
                problems.push(format!("{}: {e}", s.service));
            }
            for t in &s.targets {
                if let TargetPlan::Broken { destination, error } = t {
                    problems.push(format!(
                        "{}: destination `{destination}`: {error}",
                        s.service
                    ));
                }
            }
        }
        problems
    }
}

impl<'a> ServicePlan<'a> {
    pub fn new(c: &Config, s: &'a Service) -> ServicePlan<'a> {
        let sources = resolve_sources(s);
        let names = |hs: &[crate::config::Hook]| hs.iter().map(|h| h.name.clone()).collect();
        ServicePlan {
            backup_script: s.backup_script.clone(),
            config: s,
            dumps: s
                .dumps
                .iter()
                .map(|d| DumpPlan {
                    container: d.container.clone(),
                    filename: d.filename.clone(),
                    name: d.name.clone(),
                    tag: d.tag(),
                    kind: d.kind(),
                })
                .collect(),
            excludes: s.excludes.clone(),
            host: c.settings.host.clone(),
            post_backup_hooks: names(&s.post_backup_hooks),
            pre_backup_hooks: names(&s.pre_backup_hooks),
            service: s.name.clone(),
            source_error: sources.as_ref().err().cloned(),
            sources: sources.ok(),
            tags: tags(s),
            targets: targets(c, s),
        }
    }
}

/// The tags of a service's snapshots: its service tag, then its own.
pub fn tags(s: &Service) -> Vec<String> {
    std::iter::once(s.tag())
        .chain(s.tags.iter().cloned())
        .collect()
}

/// The repositories of a service's destinations (credential files are
/// not read), in the order of its `targets`.
pub fn targets(c: &Config, s: &Service) -> Vec<TargetPlan> {
    s.targets
        .iter()
        .filter_map(|t| c.destinations.get(t))
        .map(
            |d| match Repository::new(d, &s.name, &c.settings.password) {
                Ok(r) => TargetPlan::Ready {
                    destination: d.name.clone(),
                    repository: r.display.clone(),
                    retention: d.retention.or(&s.retention).forget_args(),
                    kind: d.kind.clone(),
                    repo: Box::new(r),
                },
                Err(e) => TargetPlan::Broken {
                    destination: d.name.clone(),
                    error: e.to_string(),
                },
            },
        )
        .collect()
}

/// One service at a glance, as `list --json` prints it (the dashboard's
/// `/api/services` adds its health).
#[derive(Debug, Clone, Serialize)]
pub struct ServiceSummary {
    pub description: Option<String>,
    pub enabled: bool,
    /// With `[docker] discover`: the containers whose labels the service has.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub labelled_by: Option<Vec<String>>,
    pub name: String,
    /// The next three scheduled runs (RFC 3339), none when disabled.
    pub next_runs: Vec<String>,
    /// With `[docker] discover`: where each key came from (`file` or a
    /// label on a container).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub origins: Option<BTreeMap<String, String>>,
    pub paths: Vec<PathBuf>,
    pub profile: Option<String>,
    pub schedule: Option<String>,
    /// What the service reads, in words; see [`source_words`].
    pub sources: Vec<String>,
    pub targets: Vec<String>,
    pub volumes: Vec<String>,
}

impl ServiceSummary {
    pub fn new(s: &Service) -> ServiceSummary {
        let discovered = !s.origins.is_empty();
        ServiceSummary {
            description: s.description.clone(),
            enabled: s.enabled,
            labelled_by: discovered.then(|| s.labelled_by.clone()),
            name: s.name.clone(),
            next_runs: next_runs(s)
                .iter()
                .map(chrono::DateTime::to_rfc3339)
                .collect(),
            origins: discovered.then(|| s.origins.clone()),
            paths: s.paths.clone(),
            profile: s.profile.clone(),
            schedule: s.schedule.clone(),
            sources: source_words(s),
            targets: s.targets.clone(),
            volumes: s.volumes.clone(),
        }
    }
}

/// What the service reads, in words (`volume:NAME`, `dump:NAME`,
/// `script:CMD`).
pub fn source_words(s: &Service) -> Vec<String> {
    let mut v: Vec<String> = s.paths.iter().map(|x| x.display().to_string()).collect();
    v.extend(s.volumes.iter().map(|x| format!("volume:{x}")));
    v.extend(s.dumps.iter().map(|d| format!("dump:{}", d.name)));
    if let Some(b) = &s.backup_script {
        v.push(format!("script:{b}"));
    }
    v
}

/// The next three scheduled runs of an enabled service.
pub fn next_runs(s: &Service) -> Vec<chrono::DateTime<chrono::Local>> {
    s.schedule
        .as_deref()
        .filter(|_| s.enabled)
        .map(|e| crate::schedule::next_runs(e, chrono::Local::now(), 3))
        .unwrap_or_default()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::config::paths::Env;

    /// `text` (with `{dir}` standing for a fresh temporary folder) loaded
    /// as a configuration; the folder lives as long as the guard.
    pub(crate) fn config(text: &str) -> (tempfile::TempDir, Config) {
        let dir = tempfile::tempdir().expect("tempdir");
        let text = text.replace("{dir}", &dir.path().display().to_string());
        let file = dir.path().join("config.toml");
        std::fs::write(&file, text).unwrap();
        let env = Env {
            home: Some(dir.path().join("home")),
            ..Env::default()
        };
        let c = Config::load(&file, &env).unwrap();
        (dir, c)
    }

    const CONFIG: &str = r#"[global]
restic_password_file = "pw"
host = "box"
[destinations.local]
type = "local"
path = "{dir}/repo"
[services.wiki]
targets = ["local"]
[services.wiki.config]
paths = ["{dir}", "{dir}/missing"]
[[services.wiki.config.dumps]]
name = "db"
type = "sqlite"
path = "{dir}/db.sqlite"
[[services.wiki.config.pre_backup_hooks]]
name = "flush"
command = "true"
"#;

    #[test]
    fn the_plan_names_what_the_run_would_fail_on() {
        let (dir, c) = config(CONFIG);
        let services: Vec<&Service> = c.services.iter().collect();
        let plan = Plan::new(&c, &services);
        let s = &plan.services[0];
        assert_eq!(s.service, "wiki");
        assert_eq!(s.pre_backup_hooks, ["flush"]);
        assert_eq!(s.host, "box");
        assert_eq!(s.tags[0], "service:wiki");
        assert_eq!(s.dumps[0].kind, "sqlite");
        assert_eq!(s.dumps[0].tag, "dump:db");
        assert!(s.sources.is_none());
        let problems = plan.problems();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].starts_with("wiki: path "), "{problems:?}");
        let TargetPlan::Ready { repository, .. } = &s.targets[0] else {
            panic!("{:?}", s.targets);
        };
        assert!(repository.contains(&dir.path().display().to_string()));
    }

    #[test]
    fn the_json_documents_keep_their_keys() {
        let (_dir, c) = config(CONFIG);
        let services: Vec<&Service> = c.services.iter().collect();
        let v = serde_json::to_value(Plan::new(&c, &services)).unwrap();
        let keys = |v: &serde_json::Value| -> Vec<String> {
            v.as_object()
                .map(|m| m.keys().cloned().collect())
                .unwrap_or_default()
        };
        assert_eq!(
            keys(&v[0]),
            [
                "backup_script",
                "dumps",
                "excludes",
                "host",
                "post_backup_hooks",
                "pre_backup_hooks",
                "service",
                "source_error",
                "sources",
                "tags",
                "targets"
            ]
        );
        assert_eq!(
            keys(&v[0]["dumps"][0]),
            ["container", "filename", "name", "tag", "type"]
        );
        assert_eq!(
            keys(&v[0]["targets"][0]),
            ["destination", "repository", "retention"]
        );
        let v = serde_json::to_value(ServiceSummary::new(&c.services[0])).unwrap();
        assert!(v.get("origins").is_none() && v.get("labelled_by").is_none());
        assert_eq!(v["sources"][2], "dump:db");
    }
}
