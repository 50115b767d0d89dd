//! Services from Docker labels (`[docker] discover = true`).
//!
//! A compose stack can say what to back up without editing the shared
//! configuration file: containers labelled `restic-manager.service=NAME`
//! add their named volumes, a container stop, dumps, a schedule, targets
//! and a profile to service NAME. The Engine API is asked before the file is
//! resolved (`sources::docker::discover`, run by the command layer, so that
//! loading stays synchronous); here the containers found become raw service
//! entries, merged after the file is parsed. The file always wins: a label
//! may add a service or fill a key the file leaves unset, and a label that
//! disagrees with the file is an error naming the container and the label.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::Serialize;

use super::load::{Locator, RawConfig, list};
use super::schema::{DUMP_TYPES, DumpRaw, ServiceConfigRaw, ServiceRaw};
use super::{Diagnostic, did_you_mean, did_you_mean_names, suggest};

/// The label namespace when `[docker] label_prefix` is not set.
pub const DEFAULT_PREFIX: &str = "restic-manager";

/// The labels a container may carry, after the prefix and its dot
/// (`dump.TYPE` besides).
pub const LABEL_KEYS: &[&str] = &[
    "service", "volumes", "stop", "schedule", "targets", "profile",
];

/// Keys a dump label's value may set (`database=wiki,user=wiki`).
const DUMP_LABEL_KEYS: &[&str] = &[
    "name",
    "database",
    "user",
    "host",
    "port",
    "path",
    "filename",
    "timeout_seconds",
];

/// A container as discovery saw it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LabelledContainer {
    /// Without Docker's leading `/`.
    pub name: String,
    pub running: bool,
    /// Its labels in the namespace, without the prefix and its dot
    /// (`service`, `dump.postgres`).
    pub labels: BTreeMap<String, String>,
    /// The named volumes it mounts, in mount order.
    pub volumes: Vec<String>,
}

/// What asking the engine gave.
#[derive(Debug, Clone, Default)]
pub enum Discovery {
    /// Not asked (discovery is off, or the caller did not ask).
    #[default]
    NotRun,
    Found(Vec<LabelledContainer>),
    /// The engine could not be asked; the message names its socket.
    Failed(String),
}

/// Discovery as `validate`, `config show` and `run` report it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DiscoveryReport {
    /// `[docker] discover = true`.
    pub enabled: bool,
    pub label_prefix: String,
    /// The labelled containers that were read, sorted.
    pub containers: Vec<String>,
    /// Why the engine could not be asked: the labelled services are then
    /// missing, which `validate` calls an error and `run` a failure.
    pub error: Option<String>,
    /// What will likely fail at run time (a dump in a stopped container).
    pub warnings: Vec<String>,
}

/// The label prefix a file asks for, when it turns discovery on. Read
/// before the file is loaded, so that the command layer knows whether to
/// ask Docker; a file that does not parse gives `None` (loading reports it).
pub fn wanted(file: &Path) -> Option<String> {
    let text = std::fs::read_to_string(file).ok()?;
    let doc: toml::Table = toml::from_str(&text).ok()?;
    let docker = doc.get("docker")?.as_table()?;
    if docker.get("discover")?.as_bool()? {
        Some(prefix_of(
            docker.get("label_prefix").and_then(|p| p.as_str()),
        ))
    } else {
        None
    }
}

fn prefix_of(p: Option<&str>) -> String {
    p.map(str::trim)
        .filter(|p| !p.is_empty())
        .unwrap_or(DEFAULT_PREFIX)
        .to_string()
}

/// The outcome of [`merge`]: errors, and for each service where its keys
/// came from and which containers contributed.
#[derive(Debug, Default)]
pub struct Merged {
    pub errors: Vec<Diagnostic>,
    pub report: DiscoveryReport,
    /// Service → key → origin (`file`, `label restic-manager.targets on
    /// container wiki-db`).
    pub origins: BTreeMap<String, BTreeMap<String, String>>,
    /// Service → the containers whose labels it has.
    pub containers: BTreeMap<String, Vec<String>>,
}

/// The keys labels can set, in the raw service.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Key {
    Targets,
    Schedule,
    Profile,
}

impl Key {
    fn name(self) -> &'static str {
        match self {
            Key::Targets => "targets",
            Key::Schedule => "schedule",
            Key::Profile => "profile",
        }
    }

    /// The value as a comparable string.
    fn get(self, s: &ServiceRaw) -> Option<String> {
        match self {
            Key::Targets => s.targets.as_ref().map(|t| t.join(",")),
            Key::Schedule => s.schedule.as_deref().map(words),
            Key::Profile => s.profile.clone(),
        }
    }

    fn set(self, s: &mut ServiceRaw, v: &str) {
        match self {
            Key::Targets => s.targets = Some(split(v)),
            Key::Schedule => s.schedule = Some(v.to_string()),
            Key::Profile => s.profile = Some(v.to_string()),
        }
    }
}

/// A comma-separated label value, trimmed, without empty items.
fn split(v: &str) -> Vec<String> {
    v.split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(str::to_string)
        .collect()
}

/// A cron expression with single spaces, for comparing.
fn words(v: &str) -> String {
    v.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

/// Merges the labelled containers into `raw` (when the file turns
/// discovery on) and reports what happened.
pub fn merge(raw: &mut RawConfig, loc: &Locator, discovery: &Discovery) -> Merged {
    let docker = raw.docker.clone().unwrap_or_default();
    let mut m = Merged::default();
    m.report.enabled = docker.discover == Some(true);
    m.report.label_prefix = prefix_of(docker.label_prefix.as_deref());
    if !m.report.enabled {
        return m;
    }
    if let Some(p) = &docker.label_prefix
        && (p.trim().is_empty() || p.contains('='))
    {
        m.errors.push(loc.at(
            "docker.label_prefix",
            "`label_prefix` must be non-empty and contain no `=`, e.g. `restic-manager`",
        ));
    }
    let mut found = match discovery {
        Discovery::Found(f) => f.clone(),
        Discovery::Failed(e) => {
            m.report.error = Some(format!(
                "services from Docker labels were not discovered: {e}"
            ));
            Vec::new()
        }
        Discovery::NotRun => Vec::new(),
    };
    found.sort_by(|a, b| a.name.cmp(&b.name));
    let prefix = m.report.label_prefix.clone();
    let file = raw
        .services
        .iter()
        .map(|(n, s, p)| (n.clone(), (s.clone(), p.clone())))
        .collect();
    let mut cx = Merge {
        file,
        raw,
        loc,
        prefix: &prefix,
        m: &mut m,
        born: BTreeMap::new(),
        broken: BTreeSet::new(),
        set_by: BTreeMap::new(),
    };
    for c in &found {
        cx.container(c);
    }
    cx.finish();
    // With discovery on, every service says where it came from.
    for (name, _, _) in &raw.services {
        m.origins
            .entry(name.clone())
            .or_default()
            .entry("service".to_string())
            .or_insert_with(|| "file".to_string());
    }
    m.report.containers = found.into_iter().map(|c| c.name).collect();
    m
}

struct Merge<'a> {
    /// The file's services as written (name → entry, locator path), so
    /// that what a label added is never taken for the file's.
    file: BTreeMap<String, (ServiceRaw, String)>,
    raw: &'a mut RawConfig,
    loc: &'a Locator,
    prefix: &'a str,
    m: &'a mut Merged,
    /// Services only labels define.
    born: BTreeMap<String, ServiceRaw>,
    /// Label-defined services with an error: left out (already reported).
    broken: BTreeSet<String>,
    /// (service, key) → (container, value): two containers must agree.
    set_by: BTreeMap<(String, String), (String, String)>,
}

impl Merge<'_> {
    /// An error about a label, placed at `[docker] discover`.
    fn err(&mut self, service: Option<&str>, msg: String) {
        self.m.errors.push(self.loc.at("docker.discover", msg));
        if let Some(s) = service
            && self.born.contains_key(s)
        {
            self.broken.insert(s.to_string());
        }
    }

    fn label(&self, key: &str) -> String {
        format!("{}.{key}", self.prefix)
    }

    fn origin(&self, key: &str, container: &str) -> String {
        format!("label {}.{key} on container {container}", self.prefix)
    }

    fn note(&mut self, service: &str, key: &str, origin: String) {
        let o = self
            .m
            .origins
            .entry(service.to_string())
            .or_default()
            .entry(key.to_string())
            .or_default();
        if o.is_empty() || o == "file" {
            *o = origin;
        } else if !o.split("; ").any(|x| x == origin) {
            o.push_str("; ");
            o.push_str(&origin);
        }
    }

    /// The service's entry as merged so far.
    fn entry(&self, service: &str) -> ServiceRaw {
        match self.raw.services.iter().find(|(n, _, _)| n == service) {
            Some((_, s, _)) => s.clone(),
            None => self.born.get(service).cloned().unwrap_or_default(),
        }
    }

    fn store(&mut self, service: &str, e: ServiceRaw) {
        match self.raw.services.iter_mut().find(|(n, _, _)| n == service) {
            Some(slot) => slot.1 = e,
            None => {
                self.born.insert(service.to_string(), e);
            }
        }
    }

    /// The value the file gives a key of a service it defines (its own,
    /// else its profile's unless `own_only`), with where it is written.
    fn file_value<T>(
        &self,
        service: &str,
        key: &str,
        own_only: bool,
        get: impl Fn(&ServiceRaw) -> Option<T>,
    ) -> Option<(T, String)> {
        let (s, path) = self.file.get(service)?;
        if let Some(v) = get(s) {
            return Some((v, format!("{path}.{key}")));
        }
        if own_only {
            return None;
        }
        let pn = s.profile.as_deref()?;
        let p = self.raw.profiles.get(pn)?;
        get(p).map(|v| (v, format!("profiles.{pn}.{key}")))
    }

    /// A `[services.NAME.config]` key the file gives a service.
    fn file_config<T>(
        &self,
        service: &str,
        key: &str,
        get: impl Fn(&ServiceConfigRaw) -> Option<T>,
    ) -> Option<(T, String)> {
        self.file_value(service, &format!("config.{key}"), false, |s| {
            s.config.as_ref().and_then(&get)
        })
    }

    fn conflict(&mut self, service: &str, at: &str, what: &str, c: &str, detail: &str) {
        let msg = format!(
            "service `{service}`: label `{what}` on container `{c}` conflicts with the file, which {detail}; the file wins: remove the label, or the key from the file"
        );
        self.m.errors.push(self.loc.at(at, msg));
    }

    fn container(&mut self, c: &LabelledContainer) {
        let Some(service) = c.labels.get("service").map(|s| s.trim().to_string()) else {
            return;
        };
        let lservice = self.label("service");
        if !valid_name(&service) {
            self.err(
                None,
                format!(
                    "container `{}`: label `{lservice}={service}`: a service name may only contain letters, digits, `-`, `_` and `.`",
                    c.name
                ),
            );
            return;
        }
        let in_file = self.file.contains_key(&service);
        if !in_file && !self.born.contains_key(&service) {
            self.born.insert(service.clone(), ServiceRaw::default());
        }
        self.m
            .containers
            .entry(service.clone())
            .or_default()
            .push(c.name.clone());
        if in_file {
            self.note_file(&service);
        } else {
            let o = self.origin("service", &c.name);
            self.note(&service, "service", o);
        }

        for k in c.labels.keys() {
            if LABEL_KEYS.contains(&k.as_str()) || k.starts_with("dump.") {
                continue;
            }
            let mut msg = format!("container `{}`: unknown label `{}`", c.name, self.label(k));
            let valid: Vec<String> = LABEL_KEYS
                .iter()
                .map(|x| self.label(x))
                .chain(std::iter::once(self.label("dump.TYPE")))
                .collect();
            let valid_refs: Vec<&str> = valid.iter().map(String::as_str).collect();
            msg.push_str(
                &did_you_mean(&self.label(k), &valid_refs)
                    .unwrap_or_else(|| format!("; valid labels are {}", list(&valid_refs))),
            );
            self.err(Some(&service), msg);
        }

        for key in [Key::Profile, Key::Targets, Key::Schedule] {
            if let Some(v) = c.labels.get(key.name()) {
                self.scalar(&service, c, key, v.trim());
            }
        }
        self.volumes(&service, c);
        self.stop(&service, c);
        for (k, v) in &c.labels {
            if let Some(kind) = k.strip_prefix("dump.") {
                self.dump(&service, c, kind, v);
            }
        }
    }

    /// For a file service: the label-capable keys the file sets.
    fn note_file(&mut self, service: &str) {
        let keys = [
            ("service", true),
            (
                "targets",
                self.file_value(service, "targets", false, |s| s.targets.clone())
                    .is_some(),
            ),
            (
                "schedule",
                self.file_value(service, "schedule", false, |s| s.schedule.clone())
                    .is_some(),
            ),
            (
                "profile",
                self.file_value(service, "profile", true, |s| s.profile.clone())
                    .is_some(),
            ),
            (
                "volumes",
                self.file_config(service, "volumes", |c| c.volumes.clone())
                    .is_some(),
            ),
            (
                "stop_containers",
                self.file_config(service, "stop_containers", |c| c.stop_containers.clone())
                    .is_some(),
            ),
            (
                "dumps",
                self.file_config(service, "dumps", |c| c.dumps.clone())
                    .is_some(),
            ),
        ];
        let own = self.m.origins.entry(service.to_string()).or_default();
        for (k, set) in keys {
            if set {
                own.entry(k.to_string())
                    .or_insert_with(|| "file".to_string());
            }
        }
    }

    fn scalar(&mut self, service: &str, c: &LabelledContainer, key: Key, v: &str) {
        let label = self.label(key.name());
        if v.is_empty() || (key == Key::Targets && split(v).is_empty()) {
            self.err(
                Some(service),
                format!("container `{}`: label `{label}` is empty", c.name),
            );
            return;
        }
        if let Some(problem) = self.check_value(key, v) {
            self.err(
                Some(service),
                format!("container `{}`: label `{label}={v}`: {problem}", c.name),
            );
            return;
        }
        let value = match key {
            Key::Targets => split(v).join(","),
            Key::Schedule => words(v),
            Key::Profile => v.to_string(),
        };
        let slot = (service.to_string(), key.name().to_string());
        if let Some((other, ov)) = self.set_by.get(&slot).cloned() {
            if ov != value {
                self.err(
                    Some(service),
                    format!(
                        "service `{service}`: containers `{other}` and `{}` set label `{label}` to different values (`{ov}`, `{v}`); give it on one container, or the same value on both",
                        c.name
                    ),
                );
            }
            return;
        }
        if let Some((fv, at)) =
            self.file_value(service, key.name(), key == Key::Profile, |s| key.get(s))
        {
            if fv != value {
                let detail = format!("sets `{}` to `{fv}`", key.name());
                self.conflict(service, &at, &format!("{label}={v}"), &c.name, &detail);
            }
            return;
        }
        let mut e = self.entry(service);
        key.set(&mut e, v);
        self.store(service, e);
        self.set_by.insert(slot, (c.name.clone(), value));
        let o = self.origin(key.name(), &c.name);
        self.note(service, key.name(), o);
    }

    /// Why a label value cannot be used, if it cannot.
    fn check_value(&self, key: Key, v: &str) -> Option<String> {
        match key {
            Key::Schedule => super::resolve::check_cron(v).err().map(|e| e.to_string()),
            Key::Profile => {
                if self.raw.profiles.contains_key(v) || self.raw.broken_profiles.contains(v) {
                    return None;
                }
                let names: Vec<&str> = self.raw.profiles.keys().map(String::as_str).collect();
                let hint = did_you_mean(v, &names).unwrap_or_else(|| {
                    if names.is_empty() {
                        format!("; add a `[profiles.{v}]` table")
                    } else {
                        format!("; defined profiles: {}", list(&names))
                    }
                });
                Some(format!("profile `{v}` is not defined{hint}"))
            }
            Key::Targets => {
                let names: Vec<&str> = self.raw.destinations.keys().map(String::as_str).collect();
                let t = split(v).into_iter().find(|t| {
                    !self.raw.destinations.contains_key(t)
                        && !self.raw.broken_destinations.contains(t)
                })?;
                let mut msg = format!("destination `{t}` is not defined");
                match did_you_mean(&t, &names) {
                    Some(hint) => msg.push_str(&hint),
                    None if names.is_empty() => {
                        msg.push_str(&format!("; add a `[destinations.{t}]` table"));
                    }
                    None => msg.push_str(&format!("; defined destinations: {}", list(&names))),
                }
                Some(msg)
            }
        }
    }

    fn volumes(&mut self, service: &str, c: &LabelledContainer) {
        let label = self.label("volumes");
        let (vols, explicit) = match c.labels.get("volumes") {
            Some(v) => (split(v), true),
            None => (c.volumes.clone(), false),
        };
        if explicit && vols.is_empty() {
            self.err(
                Some(service),
                format!(
                    "container `{}`: label `{label}` is empty; list volume names, or remove the label to back up all its named volumes",
                    c.name
                ),
            );
            return;
        }
        if vols.is_empty() {
            return;
        }
        if let Some((fv, at)) = self.file_config(service, "volumes", |c| c.volumes.clone()) {
            // The file chose the volumes: an implicit "all its named
            // volumes" gives way, an explicit list must agree.
            if explicit && let Some(extra) = vols.iter().find(|v| !fv.contains(v)) {
                let detail = format!("lists `volumes` without `{extra}`");
                let what = format!("{label}={}", c.labels.get("volumes").map_or("", |s| s));
                self.conflict(service, &at, &what, &c.name, &detail);
            }
            return;
        }
        let mut e = self.entry(service);
        let list = e
            .config
            .get_or_insert_with(ServiceConfigRaw::default)
            .volumes
            .get_or_insert_with(Vec::new);
        for v in vols {
            if !list.contains(&v) {
                list.push(v);
            }
        }
        self.store(service, e);
        let o = if explicit {
            self.origin("volumes", &c.name)
        } else {
            format!("named volumes of container {}", c.name)
        };
        self.note(service, "volumes", o);
    }

    fn stop(&mut self, service: &str, c: &LabelledContainer) {
        let label = self.label("stop");
        let stop = match c.labels.get("stop").map(|v| v.trim().to_ascii_lowercase()) {
            None => false,
            Some(v) if ["true", "yes", "1"].contains(&v.as_str()) => true,
            Some(v) if ["false", "no", "0"].contains(&v.as_str()) => false,
            Some(v) => {
                self.err(
                    Some(service),
                    format!(
                        "container `{}`: label `{label}={v}` must be `true` or `false`",
                        c.name
                    ),
                );
                return;
            }
        };
        if !stop {
            return;
        }
        if let Some((fs, at)) =
            self.file_config(service, "stop_containers", |c| c.stop_containers.clone())
        {
            if !fs.contains(&c.name) {
                let detail = "sets `stop_containers` without this container";
                self.conflict(service, &at, &format!("{label}=true"), &c.name, detail);
            }
            return;
        }
        let mut e = self.entry(service);
        let list = e
            .config
            .get_or_insert_with(ServiceConfigRaw::default)
            .stop_containers
            .get_or_insert_with(Vec::new);
        if !list.contains(&c.name) {
            list.push(c.name.clone());
        }
        self.store(service, e);
        let o = self.origin("stop", &c.name);
        self.note(service, "stop_containers", o);
    }

    fn dump(&mut self, service: &str, c: &LabelledContainer, kind: &str, value: &str) {
        let label = self.label(&format!("dump.{kind}"));
        if !DUMP_TYPES.contains(&kind) {
            let mut msg = format!(
                "container `{}`: label `{label}`: unknown dump type `{kind}`",
                c.name
            );
            // The hint names the whole label, the way the user wrote it.
            let near = suggest(kind, DUMP_TYPES).map(|s| self.label(&format!("dump.{s}")));
            msg.push_str(
                &did_you_mean_names(near)
                    .unwrap_or_else(|| format!("; valid types are {}", list(DUMP_TYPES))),
            );
            self.err(Some(service), msg);
            return;
        }
        let d = match parse_dump(kind, value, &c.name) {
            Ok(d) => d,
            Err(e) => {
                self.err(
                    Some(service),
                    format!("container `{}`: label `{label}`: {e}", c.name),
                );
                return;
            }
        };
        if let Some((fd, at)) = self.file_config(service, "dumps", |c| c.dumps.clone()) {
            let same = fd.iter().any(|x| {
                x.kind.as_deref() == Some(kind) && x.container.as_deref() == Some(c.name.as_str())
            });
            if !same {
                let detail = format!(
                    "sets `dumps` without a `{kind}` dump in container `{}`",
                    c.name
                );
                self.conflict(service, &at, &label, &c.name, &detail);
            }
            return;
        }
        if !c.running {
            self.m.report.warnings.push(format!(
                "container `{}` is not running; its dump (label `{label}`) runs inside it and fails until it is started",
                c.name
            ));
        }
        let mut e = self.entry(service);
        e.config
            .get_or_insert_with(ServiceConfigRaw::default)
            .dumps
            .get_or_insert_with(Vec::new)
            .push(d);
        self.store(service, e);
        let o = self.origin(&format!("dump.{kind}"), &c.name);
        self.note(service, "dumps", o);
    }

    /// Checks the services only labels define and appends them to the file's.
    fn finish(&mut self) {
        let born = std::mem::take(&mut self.born);
        for (name, s) in born {
            if self.broken.contains(&name) {
                continue;
            }
            let containers = self
                .m
                .containers
                .get(&name)
                .map(|c| {
                    c.iter()
                        .map(|x| format!("`{x}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_default();
            let prof = s.profile.as_ref().and_then(|p| self.raw.profiles.get(p));
            let targets = s.targets.is_some() || prof.is_some_and(|p| p.targets.is_some());
            let mut bad = false;
            if !targets {
                self.m.errors.push(self.loc.at(
                    "docker.discover",
                    format!(
                        "service `{name}` (labels on container {containers}) has no targets; add label `{}=DESTINATION` or `{}=PROFILE`",
                        self.label("targets"),
                        self.label("profile")
                    ),
                ));
                bad = true;
            }
            let cfg = s.config.clone().unwrap_or_default();
            let pcfg = prof.and_then(|p| p.config.clone()).unwrap_or_default();
            let sources = cfg.volumes.is_some()
                || cfg.dumps.is_some()
                || pcfg.paths.is_some()
                || pcfg.volumes.is_some()
                || pcfg.dumps.is_some();
            if !sources {
                self.m.errors.push(self.loc.at(
                    "docker.discover",
                    format!(
                        "service `{name}` (labels on container {containers}) has nothing to back up: no named volume is mounted and no `{}` label is set; mount a named volume, or add a dump label",
                        self.label("dump.TYPE")
                    ),
                ));
                bad = true;
            }
            if !bad {
                let mut s = s;
                if self.raw.array_form {
                    s.name = Some(name.clone());
                }
                // Errors resolution finds in it point at `[docker] discover`.
                self.raw
                    .services
                    .push((name, s, "docker.discover".to_string()));
            }
        }
    }
}

/// Why a dump label's value cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DumpLabelError {
    #[error("`{0}` is not `key=value`; write e.g. `database=wiki,user=wiki`")]
    NotKeyValue(String),
    #[error("`port={0}` is not a port number")]
    Port(String),
    #[error("`timeout_seconds={0}` is not a number")]
    Timeout(String),
    #[error(
        "unknown key `{0}`{hint}",
        hint = did_you_mean(.0, DUMP_LABEL_KEYS)
            .unwrap_or_else(|| format!("; valid keys are {}", list(DUMP_LABEL_KEYS)))
    )]
    UnknownKey(String),
    #[error(
        "a sqlite dump needs the database file's path inside the container, e.g. `/data/app.db`"
    )]
    SqliteNeedsPath,
}

/// A dump label's value: `key=value` pairs separated by commas, or just the
/// database (postgres, mariadb, mysql) or the file's path (sqlite).
fn parse_dump(kind: &str, value: &str, container: &str) -> Result<DumpRaw, DumpLabelError> {
    let mut d = DumpRaw {
        name: Some(format!("{container}-{kind}")),
        kind: Some(kind.to_string()),
        container: Some(container.to_string()),
        ..DumpRaw::default()
    };
    let value = value.trim();
    if value.contains('=') {
        for pair in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let Some((k, v)) = pair.split_once('=') else {
                return Err(DumpLabelError::NotKeyValue(pair.to_string()));
            };
            let (k, v) = (k.trim(), v.trim().to_string());
            match k {
                "name" => d.name = Some(v),
                "database" => d.database = Some(v),
                "user" => d.user = Some(v),
                "host" => d.host = Some(v),
                "port" => {
                    d.port = Some(v.parse().map_err(|_| DumpLabelError::Port(v.clone()))?);
                }
                "path" => d.path = Some(v),
                "filename" => d.filename = Some(v),
                "timeout_seconds" => {
                    d.timeout_seconds =
                        Some(v.parse().map_err(|_| DumpLabelError::Timeout(v.clone()))?);
                }
                other => return Err(DumpLabelError::UnknownKey(other.to_string())),
            }
        }
    } else if !value.is_empty() {
        if kind == "sqlite" {
            d.path = Some(value.to_string());
        } else {
            d.database = Some(value.to_string());
        }
    }
    if kind == "sqlite" && d.path.is_none() {
        return Err(DumpLabelError::SqliteNeedsPath);
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container(name: &str, labels: &[(&str, &str)], volumes: &[&str]) -> LabelledContainer {
        LabelledContainer {
            name: name.into(),
            running: true,
            labels: labels
                .iter()
                .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
                .collect(),
            volumes: volumes.iter().map(|v| (*v).to_string()).collect(),
        }
    }

    const HEAD: &str = "[global]\nrestic_password_file = \"/pw\"\n\n[docker]\ndiscover = true\n\n[destinations.local]\ntype = \"local\"\npath = \"/r\"\n\n[destinations.nas]\ntype = \"local\"\npath = \"/n\"\n\n[profiles.nightly]\ntargets = [\"nas\"]\nschedule = \"0 3 * * *\"\n";

    fn merged(extra: &str, found: Vec<LabelledContainer>) -> (RawConfig, Merged) {
        let text = format!("{HEAD}{extra}");
        let (mut raw, loc, errors) =
            super::super::load::parse_str(Path::new("/c.toml"), &text).unwrap();
        assert!(errors.is_empty(), "{errors:?}");
        let m = merge(&mut raw, &loc, &Discovery::Found(found));
        (raw, m)
    }

    fn messages(m: &Merged) -> Vec<String> {
        m.errors.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn a_labelled_container_makes_a_service() {
        let (raw, m) = merged(
            "",
            vec![container(
                "wiki-db",
                &[
                    ("service", "wiki"),
                    ("targets", "local, nas"),
                    ("stop", "true"),
                    ("schedule", "0 2 * * *"),
                ],
                &["wiki_data", "wiki_db"],
            )],
        );
        assert!(m.errors.is_empty(), "{:?}", messages(&m));
        let (name, s, path) = raw.services.last().expect("no service");
        assert_eq!((name.as_str(), path.as_str()), ("wiki", "docker.discover"));
        assert_eq!(s.targets, Some(vec!["local".into(), "nas".into()]));
        assert_eq!(s.schedule.as_deref(), Some("0 2 * * *"));
        let cfg = s.config.clone().unwrap_or_default();
        assert_eq!(
            cfg.volumes,
            Some(vec!["wiki_data".into(), "wiki_db".into()])
        );
        assert_eq!(cfg.stop_containers, Some(vec!["wiki-db".into()]));
        assert_eq!(
            m.origins["wiki"]["targets"],
            "label restic-manager.targets on container wiki-db"
        );
        assert_eq!(
            m.origins["wiki"]["volumes"],
            "named volumes of container wiki-db"
        );
    }

    #[test]
    fn labels_fill_what_the_file_leaves_unset() {
        let (raw, m) = merged(
            "\n[services.wiki]\ntargets = [\"local\"]\n\n[services.wiki.config]\npaths = [\"/srv/wiki\"]\n",
            vec![container(
                "wiki-db",
                &[
                    ("service", "wiki"),
                    ("targets", "local"),
                    ("schedule", "0 2 * * *"),
                    ("volumes", "a"),
                ],
                &["a", "b"],
            )],
        );
        assert!(m.errors.is_empty(), "{:?}", messages(&m));
        assert_eq!(raw.services.len(), 1);
        let s = &raw.services[0].1;
        assert_eq!(s.schedule.as_deref(), Some("0 2 * * *"));
        assert_eq!(
            s.config.as_ref().and_then(|c| c.volumes.clone()),
            Some(vec!["a".into()])
        );
        assert_eq!(m.origins["wiki"]["targets"], "file");
        assert_eq!(m.origins["wiki"]["service"], "file");
        // The same schedule written with other spacing agrees with the file.
        let (_, same) = merged(
            "\n[services.wiki]\ntargets = [\"local\"]\nschedule = \"0 2 * * *\"\nconfig = { paths = [\"/x\"] }\n",
            vec![container(
                "wiki-db",
                &[("service", "wiki"), ("schedule", " 0  2 * * * ")],
                &[],
            )],
        );
        assert!(same.errors.is_empty(), "{:?}", messages(&same));
        assert_eq!(
            m.origins["wiki"]["schedule"],
            "label restic-manager.schedule on container wiki-db"
        );
    }

    #[test]
    fn a_label_that_disagrees_with_the_file_is_an_error() {
        for (file, labels, want) in [
            (
                "targets = [\"local\"]\n",
                vec![("targets", "nas")],
                "/c.toml:20:1: service `wiki`: label `restic-manager.targets=nas` on container `wiki-db` conflicts with the file, which sets `targets` to `local`",
            ),
            (
                "profile = \"nightly\"\n",
                vec![("schedule", "0 1 * * *")],
                "/c.toml:17:1: service `wiki`: label `restic-manager.schedule=0 1 * * *` on container `wiki-db` conflicts with the file, which sets `schedule` to `0 3 * * *`",
            ),
            (
                "targets = [\"local\"]\nconfig = { stop_containers = [\"other\"], paths = [\"/x\"] }\n",
                vec![("stop", "true")],
                "service `wiki`: label `restic-manager.stop=true` on container `wiki-db` conflicts with the file, which sets `stop_containers` without this container",
            ),
        ] {
            let mut l = vec![("service", "wiki")];
            l.extend(labels);
            let (_, m) = merged(
                &format!("\n[services.wiki]\n{file}"),
                vec![container("wiki-db", &l, &[])],
            );
            let msgs = messages(&m);
            assert!(msgs.iter().any(|e| e.contains(want)), "{want}\n{msgs:#?}");
        }
    }

    #[test]
    fn bad_labels_name_the_container_and_the_label() {
        for (labels, want) in [
            (
                vec![("targets", "offsite")],
                "container `c1`: label `restic-manager.targets=offsite`: destination `offsite` is not defined",
            ),
            (
                vec![("targets", "local"), ("schedule", "daily")],
                "container `c1`: label `restic-manager.schedule=daily`: cron expression",
            ),
            (
                vec![("targets", "local"), ("stop", "maybe")],
                "label `restic-manager.stop=maybe` must be `true` or `false`",
            ),
            (
                vec![("targets", "local"), ("dump.postgress", "x")],
                "unknown dump type `postgress`; did you mean `restic-manager.dump.postgres`?",
            ),
            (
                vec![("targets", "local"), ("dump.sqlite", "")],
                "a sqlite dump needs the database file's path",
            ),
            (
                vec![("targets", "local"), ("dump.postgres", "db=wiki")],
                "unknown key `db`",
            ),
            (
                vec![("targets", "local"), ("target", "local")],
                "unknown label `restic-manager.target`; did you mean `restic-manager.targets`?",
            ),
            (
                vec![("profile", "weekly")],
                "profile `weekly` is not defined; defined profiles: `nightly`",
            ),
            (
                vec![("targets", "local"), ("volumes", " , ")],
                "label `restic-manager.volumes` is empty",
            ),
            (
                vec![],
                "service `wiki` (labels on container `c1`) has no targets",
            ),
        ] {
            let mut l = vec![("service", "wiki")];
            l.extend(labels);
            let (raw, m) = merged("", vec![container("c1", &l, &["v"])]);
            let msgs = messages(&m);
            assert!(msgs.iter().any(|e| e.contains(want)), "{want}\n{msgs:#?}");
            assert!(
                msgs.iter().all(|e| e.starts_with("/c.toml:5:1: ")),
                "{msgs:#?}"
            );
            assert!(
                raw.services.is_empty(),
                "a broken labelled service is left out"
            );
        }
    }

    #[test]
    fn containers_of_one_service_add_up_and_must_agree() {
        let (raw, m) = merged(
            "",
            vec![
                container(
                    "app",
                    &[
                        ("service", "wiki"),
                        ("profile", "nightly"),
                        ("stop", "true"),
                    ],
                    &["files"],
                ),
                container(
                    "db",
                    &[
                        ("service", "wiki"),
                        ("dump.postgres", "database=wiki,user=wiki"),
                        ("stop", "true"),
                    ],
                    &[],
                ),
            ],
        );
        assert!(m.errors.is_empty(), "{:?}", messages(&m));
        let cfg = raw.services[0].1.config.clone().unwrap_or_default();
        assert_eq!(cfg.stop_containers, Some(vec!["app".into(), "db".into()]));
        let dumps = cfg.dumps.unwrap_or_default();
        assert_eq!(dumps[0].container.as_deref(), Some("db"));
        assert_eq!(dumps[0].database.as_deref(), Some("wiki"));
        assert_eq!(dumps[0].name.as_deref(), Some("db-postgres"));
        assert_eq!(m.containers["wiki"], ["app", "db"]);

        let (_, m) = merged(
            "",
            vec![
                container("a", &[("service", "wiki"), ("targets", "local")], &["v"]),
                container("b", &[("service", "wiki"), ("targets", "nas")], &["w"]),
            ],
        );
        let msgs = messages(&m);
        assert!(
            msgs.iter().any(|e| e.contains(
                "containers `a` and `b` set label `restic-manager.targets` to different values"
            )),
            "{msgs:#?}"
        );
    }

    #[test]
    fn labelled_services_resolve_in_either_form_of_the_file() {
        for services in [
            "\n[services.files]\ntargets = [\"local\"]\nconfig = { paths = [\"/srv\"] }\n",
            "\n[[services]]\nname = \"files\"\ntargets = [\"local\"]\nconfig = { paths = [\"/srv\"] }\n",
        ] {
            let text = format!("{HEAD}{services}");
            let (mut raw, loc, _) =
                super::super::load::parse_str(Path::new("/c.toml"), &text).unwrap();
            let found = vec![container(
                "blog-db",
                &[("service", "blog"), ("profile", "nightly"), ("stop", "yes")],
                &["blog_db"],
            )];
            let m = merge(&mut raw, &loc, &Discovery::Found(found));
            assert!(m.errors.is_empty(), "{:?}", messages(&m));
            let env = crate::config::Env::default();
            let c = super::super::resolve::resolve(raw, &loc, &env)
                .unwrap_or_else(|e| panic!("{services}: {e:?}"));
            let blog = c.service("blog").expect("no blog");
            assert_eq!(blog.targets, ["nas"]);
            assert_eq!(blog.schedule.as_deref(), Some("0 3 * * *"));
            assert_eq!(blog.volumes, ["blog_db"]);
            assert_eq!(blog.stop_containers, ["blog-db"]);
        }
    }

    #[test]
    fn dump_label_values() {
        for (kind, value, name, database, user, path, port) in [
            (
                "postgres",
                "wiki",
                "c-postgres",
                Some("wiki"),
                None,
                None,
                None,
            ),
            ("postgres", "", "c-postgres", None, None, None, None),
            (
                "mariadb",
                "name=wiki-db, database=wiki ,user=app,port=3307",
                "wiki-db",
                Some("wiki"),
                Some("app"),
                None,
                Some(3307),
            ),
            (
                "sqlite",
                "/data/app.db",
                "c-sqlite",
                None,
                None,
                Some("/data/app.db"),
                None,
            ),
        ] {
            let d = parse_dump(kind, value, "c").unwrap_or_else(|e| panic!("{value}: {e}"));
            assert_eq!(d.name.as_deref(), Some(name), "{value}");
            assert_eq!(d.database.as_deref(), database, "{value}");
            assert_eq!(d.user.as_deref(), user, "{value}");
            assert_eq!(d.path.as_deref(), path, "{value}");
            assert_eq!(d.port, port, "{value}");
            assert_eq!(d.container.as_deref(), Some("c"));
            assert_eq!(d.kind.as_deref(), Some(kind));
        }
        for (kind, value, want) in [
            ("postgres", "port=x", "`port=x` is not a port number"),
            ("postgres", "database=a,oops", "`oops` is not `key=value`"),
            ("mysql", "usr=a", "unknown key `usr`; did you mean `user`?"),
        ] {
            let e =
                parse_dump(kind, value, "c").map_or_else(|e| e.to_string(), |d| panic!("{d:?}"));
            assert!(e.contains(want), "{e}");
        }
    }

    #[test]
    fn discovery_off_or_failed() {
        let text = HEAD.replace("discover = true", "discover = false");
        let (mut raw, loc, _) = super::super::load::parse_str(Path::new("/c.toml"), &text).unwrap();
        let m = merge(
            &mut raw,
            &loc,
            &Discovery::Found(vec![container("c", &[("service", "x")], &["v"])]),
        );
        assert!(!m.report.enabled && raw.services.is_empty());

        let (mut raw, loc, _) = super::super::load::parse_str(Path::new("/c.toml"), HEAD).unwrap();
        let m = merge(
            &mut raw,
            &loc,
            &Discovery::Failed("the Docker engine at `unix:///x.sock` cannot be reached".into()),
        );
        assert!(
            m.report
                .error
                .as_deref()
                .is_some_and(|e| e.contains("unix:///x.sock"))
        );
    }
}
