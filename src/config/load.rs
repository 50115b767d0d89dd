//! Finding, reading and parsing the configuration file.
//!
//! Parsing goes section by section (`[global]`, each profile, each service,
//! each destination) so that `validate` can report an error in every section
//! at once instead of stopping at the first. Every error carries the file,
//! line and column, found through [`Locator`].

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::de::DeserializeOwned;
use toml::Spanned;
use toml::de::{DeTable, DeValue, ValueDeserializer};

use super::schema::{
    DestinationRaw, GlobalRaw, NotificationsRaw, NotifierRaw, SERVICE_CONFIG_KEYS, SERVICE_KEYS,
    ServiceRaw, TOP_LEVEL_KEYS,
};
use super::{Diagnostic, did_you_mean};

/// A parsed but not yet resolved configuration file.
#[derive(Debug, Clone, Default)]
pub struct RawConfig {
    pub file: PathBuf,
    pub global: GlobalRaw,
    pub profiles: BTreeMap<String, ServiceRaw>,
    /// Services in file order, with the dotted key path they were written
    /// under (`services.wiki` or `services.2`), for error locations.
    pub services: Vec<(String, ServiceRaw, String)>,
    pub destinations: BTreeMap<String, DestinationRaw>,
    pub notifications: Option<NotificationsRaw>,
    /// `[notifiers.NAME]` tables that parsed.
    pub notifiers: BTreeMap<String, NotifierRaw>,
    /// Notifiers that exist but could not be parsed (already reported).
    pub broken_notifiers: BTreeSet<String>,
    pub metrics: Option<super::schema::MetricsRaw>,
    pub web: Option<super::schema::WebRaw>,
    /// `[docker]`.
    pub docker: Option<super::schema::DockerRaw>,
    /// Whether services were written as `[[services]]`.
    pub array_form: bool,
    /// Profiles and destinations that exist in the file but could not be
    /// parsed (already reported): references to them are not errors again.
    pub broken_profiles: BTreeSet<String>,
    pub broken_destinations: BTreeSet<String>,
    /// Locator paths of tables that had unknown keys removed. A key reported
    /// as unknown is often a misspelt required one (`comand`), so resolution
    /// does not also call it missing.
    pub dropped_keys_in: BTreeSet<String>,
    /// The top-level `include` patterns (locator paths `include.N`); `None`
    /// when the file has no `include` key.
    pub include: Option<Vec<String>>,
    /// What each file defines, once `config::include` has merged the
    /// included files; `None` without `include`.
    pub files: Option<Vec<super::include::FileParts>>,
}

/// The key a span belongs to and the table header it is written under, as
/// the user sees it (`[services.wiki.config]`, `[[services]]`).
#[derive(Debug, Clone, Default)]
struct Owner {
    key: String,
    table: String,
    /// The table's locator path (`services.wiki.config`).
    path: String,
}

/// Maps dotted key paths (`services.wiki.config.paths`) to where they are
/// written, and byte offsets to line and column.
#[derive(Debug, Clone, Default)]
pub struct Locator {
    file: PathBuf,
    line_starts: Vec<usize>,
    spans: HashMap<String, Range<usize>>,
    /// Key span start → the key and its table.
    keys: HashMap<usize, Owner>,
    /// Value span start → the key holding the value and its table.
    values: HashMap<usize, Owner>,
    /// Sections merged in from included files: locator path prefix
    /// (`services.wiki`) → the prefix in that file and the file's locator.
    routes: HashMap<String, (String, Arc<Locator>)>,
}

impl Locator {
    fn new(file: &Path, source: &str) -> Self {
        let mut line_starts = vec![0];
        line_starts.extend(source.match_indices('\n').map(|(i, _)| i + 1));
        Self {
            file: file.to_path_buf(),
            line_starts,
            ..Self::default()
        }
    }

    /// Records every key of `table`, written at `prefix` (a locator path)
    /// under the dotted table name `name` shown to users as `header`.
    fn record(&mut self, prefix: &str, name: &str, header: &str, table: &DeTable<'_>) {
        for (key, value) in table {
            let k = key.get_ref();
            let path = join(prefix, k);
            self.spans.insert(path.clone(), key.span());
            let owner = Owner {
                key: k.to_string(),
                table: header.to_string(),
                path: prefix.to_string(),
            };
            self.keys.insert(key.span().start, owner.clone());
            self.values.insert(value.span().start, owner.clone());
            self.record_value(&path, &join(name, k), &owner, value);
        }
    }

    fn record_value(
        &mut self,
        path: &str,
        name: &str,
        owner: &Owner,
        value: &Spanned<DeValue<'_>>,
    ) {
        match value.get_ref() {
            DeValue::Table(t) => self.record(path, name, &format!("[{name}]"), t),
            DeValue::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    let p = format!("{path}.{i}");
                    self.spans.insert(p.clone(), item.span());
                    self.values
                        .entry(item.span().start)
                        .or_insert(owner.clone());
                    if let DeValue::Table(t) = item.get_ref() {
                        self.record(&p, name, &format!("[[{name}]]"), t);
                    } else {
                        self.record_value(&p, name, owner, item);
                    }
                }
            }
            _ => {}
        }
    }

    /// Line and column (1-based) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let line = self.line_starts.partition_point(|&s| s <= offset).max(1);
        let col = offset - self.line_starts[line - 1] + 1;
        (line, col)
    }

    /// Where a key path is written; falls back to the closest written parent
    /// (a missing key is reported at its table), then to the file's start.
    pub fn locate(&self, path: &str) -> (usize, usize) {
        let mut p = path;
        loop {
            if let Some(span) = self.spans.get(p) {
                return self.line_col(span.start);
            }
            match p.rfind('.') {
                Some(i) => p = &p[..i],
                None => return (1, 1),
            }
        }
    }

    /// The file this locator reads.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// Sends key paths under `prefix` to `other`, the locator of the
    /// included file that defines them there under `other_prefix`.
    pub(super) fn route(&mut self, prefix: String, other_prefix: String, other: Arc<Locator>) {
        self.routes.insert(prefix, (other_prefix, other));
    }

    /// The included file's locator and path for a key path it defines.
    fn routed(&self, path: &str) -> Option<(&Locator, String)> {
        if self.routes.is_empty() {
            return None;
        }
        let mut end = path.len();
        loop {
            let prefix = &path[..end];
            if let Some((theirs, loc)) = self.routes.get(prefix) {
                return Some((loc, format!("{theirs}{}", &path[end..])));
            }
            end = prefix.rfind('.')?;
        }
    }

    /// A diagnostic for a key path.
    pub fn at(&self, path: &str, message: impl Into<String>) -> Diagnostic {
        if let Some((loc, theirs)) = self.routed(path) {
            return loc.at(&theirs, message);
        }
        let (line, column) = self.locate(path);
        Diagnostic {
            file: self.file.clone(),
            line,
            column,
            message: message.into(),
        }
    }

    fn at_span(&self, span: Option<Range<usize>>, message: impl Into<String>) -> Diagnostic {
        let (line, column) = span.map_or((1, 1), |s| self.line_col(s.start));
        Diagnostic {
            file: self.file.clone(),
            line,
            column,
            message: message.into(),
        }
    }
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

/// A parsed file: the raw configuration, its locator, and the errors found
/// so far that still let resolution run (unknown keys, which are dropped,
/// and sections that could not be read, which are left out). Resolution's
/// own errors are added to these, so one `validate` shows both.
pub type Parsed = (RawConfig, Locator, Vec<Diagnostic>);

/// Reads and parses `file`. Returns `Err` when nothing sensible can be
/// resolved (unreadable file, invalid TOML, a broken `[global]`).
pub fn load_file(file: &Path) -> Result<Parsed, Vec<Diagnostic>> {
    let bytes = std::fs::read(file).map_err(|e| {
        vec![Diagnostic {
            file: file.to_path_buf(),
            line: 0,
            column: 0,
            message: format!("cannot read the configuration file: {e}"),
        }]
    })?;
    let source = super::checks::decode(file, bytes).map_err(|d| vec![d])?;
    parse_str(file, &source)
}

/// Parses configuration text; `file` is only used in messages.
pub fn parse_str(file: &Path, source: &str) -> Result<Parsed, Vec<Diagnostic>> {
    parse(file, source, false)
}

/// Parses a file named by the main file's `include`: only the sections
/// [`super::include::INCLUDABLE`] lists are read; the others are errors.
pub(super) fn parse_included(file: &Path, source: &str) -> Result<Parsed, Vec<Diagnostic>> {
    parse(file, source, true)
}

fn parse(file: &Path, source: &str, included: bool) -> Result<Parsed, Vec<Diagnostic>> {
    let mut loc = Locator::new(file, source);
    let root = DeTable::parse(source).map_err(|e| {
        vec![loc.at_span(e.span(), format!("invalid TOML: {}", e.message().trim()))]
    })?;
    loc.record("", "", "", root.get_ref());
    let mut errors = Vec::new();
    // An empty drop-in (a role that has nothing to add yet) is fine.
    if !(included && root.get_ref().is_empty()) {
        super::checks::scan(file, &loc, root.get_ref(), &mut errors);
    }

    let mut raw = RawConfig {
        // Absolute, so that paths relative to the file's folder still hold
        // when restic or a hook runs in another working directory.
        file: super::paths::absolute(file),
        ..RawConfig::default()
    };
    let mut fatal = false;

    for (key, value) in root.into_inner() {
        let name = key.get_ref().to_string();
        if included && let Some(msg) = super::include::refused(&name) {
            errors.push(loc.at_span(Some(key.span()), msg));
            continue;
        }
        let top = Top {
            loc: &loc,
            source,
            key: key.span(),
        };
        if !top.section(&name, value, &mut raw, &mut errors) {
            fatal = true;
        }
    }

    errors.sort_by_key(|d| (d.line, d.column));
    if fatal {
        Err(errors)
    } else {
        Ok((raw, loc, errors))
    }
}

/// One top-level key of a file being parsed.
struct Top<'a> {
    loc: &'a Locator,
    source: &'a str,
    /// Where the key's name is, for "unknown section".
    key: Range<usize>,
}

impl Top<'_> {
    /// Reads the section `name` into `raw`. False when the file cannot be
    /// resolved sensibly without it (the caller stops after parsing).
    fn section(
        &self,
        name: &str,
        value: Spanned<DeValue<'_>>,
        raw: &mut RawConfig,
        errors: &mut Vec<Diagnostic>,
    ) -> bool {
        let loc = self.loc;
        let dropped = &mut raw.dropped_keys_in;
        match name {
            "include" => raw.include = super::include::patterns(loc, value, errors),
            "global" => match section::<GlobalRaw>(loc, "[global]", value, errors, dropped) {
                Some(g) => raw.global = g,
                // Without `[global]`, every path and default would be
                // guessed: stop here rather than report follow-on errors.
                None => return false,
            },
            "notifications" => {
                raw.notifications = section(loc, "[notifications]", value, errors, dropped);
            }
            "metrics" => raw.metrics = section(loc, "[metrics]", value, errors, dropped),
            "web" => raw.web = section(loc, "[web]", value, errors, dropped),
            "docker" => raw.docker = section(loc, "[docker]", value, errors, dropped),
            "notifiers" => {
                // A broken `notifiers` shape is reported; it is not worth
                // skipping every other check for.
                let named = named_sections::<NotifierRaw>(loc, "notifiers", value, errors, dropped);
                for (n, d) in named.into_iter().flatten() {
                    match d {
                        Some(d) => {
                            raw.notifiers.insert(n, d);
                        }
                        None => {
                            raw.broken_notifiers.insert(n);
                        }
                    }
                }
            }
            "profiles" => {
                let Some(named) =
                    named_sections::<ServiceRaw>(loc, "profiles", value, errors, dropped)
                else {
                    return false;
                };
                for (n, p) in named {
                    match p {
                        Some(p) => {
                            raw.profiles.insert(n, p);
                        }
                        None => {
                            // Whatever a service would inherit from it
                            // is unknown: no "missing" errors for that.
                            raw.dropped_keys_in.insert(format!("profiles.{n}"));
                            raw.broken_profiles.insert(n);
                        }
                    }
                }
            }
            "destinations" => {
                let Some(named) =
                    named_sections::<DestinationRaw>(loc, "destinations", value, errors, dropped)
                else {
                    return false;
                };
                for (n, d) in named {
                    match d {
                        Some(d) => {
                            raw.destinations.insert(n, d);
                        }
                        None => {
                            raw.broken_destinations.insert(n);
                        }
                    }
                }
            }
            "services" => return services(loc, self.source, value, raw, errors),
            other => errors.push(loc.at_span(Some(self.key.clone()), unknown_section(other))),
        }
        true
    }
}

/// "unknown section", with a did-you-mean or the list of valid ones.
fn unknown_section(other: &str) -> String {
    let mut msg = format!("unknown section `{other}`");
    if let Some(hint) =
        did_you_mean(other, TOP_LEVEL_KEYS).or_else(|| did_you_mean(other, &["include"]))
    {
        msg.push_str(&hint);
    } else {
        msg.push_str(&format!("; valid sections are {}", list(TOP_LEVEL_KEYS)));
    }
    msg
}

/// `[KIND.NAME]` tables, each read by [`section`] (`None` for one that
/// could not be read). `None` when `KIND` is not a table of tables.
fn named_sections<T: DeserializeOwned>(
    loc: &Locator,
    kind: &str,
    value: Spanned<DeValue<'_>>,
    errors: &mut Vec<Diagnostic>,
    dropped: &mut BTreeSet<String>,
) -> Option<Vec<(String, Option<T>)>> {
    let tables = named_tables(loc, kind, value, errors)?;
    let mut out = Vec::with_capacity(tables.len());
    for (n, v) in tables {
        let header = format!("[{kind}.{n}]");
        let s = section::<T>(loc, &header, v, errors, dropped);
        out.push((n, s));
    }
    Some(out)
}

/// Backtick-quoted, comma-separated list of names.
pub fn list(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Deserializes one section. Unknown keys are reported and dropped, and
/// parsing goes on, so every misspelt key of a section is reported at once;
/// any other error ends the section (`None`).
fn section<T: DeserializeOwned>(
    loc: &Locator,
    header: &str,
    value: Spanned<DeValue<'_>>,
    errors: &mut Vec<Diagnostic>,
    dropped: &mut BTreeSet<String>,
) -> Option<T> {
    let mut value = value;
    // Each round removes one key, so this ends; the bound is a safety net.
    for _ in 0..1000 {
        let e = match T::deserialize(ValueDeserializer::from(value.clone())) {
            Ok(v) => return Some(v),
            Err(e) => e,
        };
        let span = e.span().unwrap_or_else(|| value.span());
        let unknown = unknown_field(e.message());
        let msg = match &unknown {
            Some((field, valid)) => explain_unknown(loc, header, &span, field, valid),
            None => explain_other(loc, header, &span, e.message()),
        };
        errors.push(loc.at_span(Some(span.clone()), msg));
        if unknown.is_none() || !remove_key_at(value.get_mut(), span.start) {
            return None;
        }
        if let Some(o) = loc.keys.get(&span.start) {
            dropped.insert(o.path.clone());
        }
    }
    None
}

/// Removes the key whose name starts at byte `start`, wherever it is nested.
fn remove_key_at(value: &mut DeValue<'_>, start: usize) -> bool {
    match value {
        DeValue::Table(t) => {
            let hit = t
                .iter()
                .find(|(k, _)| k.span().start == start)
                .map(|(k, _)| k.get_ref().to_string());
            if let Some(name) = hit {
                t.remove(name.as_str());
                return true;
            }
            t.iter_mut().any(|(_, v)| remove_key_at(v.get_mut(), start))
        }
        DeValue::Array(items) => items.iter_mut().any(|v| remove_key_at(v.get_mut(), start)),
        _ => false,
    }
}

/// serde's "unknown field `x`, expected one of `a`, `b`" as (`x`, [a, b]).
fn unknown_field(message: &str) -> Option<(String, Vec<String>)> {
    let rest = message.trim().strip_prefix("unknown field `")?;
    let (field, expected) = rest.split_once('`')?;
    let valid = expected
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    Some((field.to_string(), valid))
}

/// "unknown key" with a did-you-mean, or a pointer to the right table when
/// the key is valid one level up or down (`paths` in `[services.x]`).
fn explain_unknown(
    loc: &Locator,
    header: &str,
    span: &Range<usize>,
    field: &str,
    valid: &[String],
) -> String {
    let table = loc
        .keys
        .get(&span.start)
        .map_or(header, |o| o.table.as_str());
    let mut msg = format!("unknown key `{field}` in `{table}`");
    let valid: Vec<&str> = valid.iter().map(String::as_str).collect();
    let is_service = valid.contains(&"targets") && valid.contains(&"config");
    let is_service_config = valid.contains(&"paths") && valid.contains(&"pre_backup_hooks");
    let name = table.trim_matches(|c| c == '[' || c == ']');
    if field == "include" {
        msg.push_str(
            "; `include` is a top-level key: move it above the first `[table]` header of the file",
        );
    } else if let Some(hint) = did_you_mean(field, &valid) {
        msg.push_str(&hint);
    } else if is_service && SERVICE_CONFIG_KEYS.contains(&field) {
        msg.push_str(&format!(
            "; `{field}` belongs in the `[{name}.config]` table, below `{table}`"
        ));
    } else if is_service_config && SERVICE_KEYS.contains(&field) {
        let parent = name.strip_suffix(".config").unwrap_or(name);
        let parent = if parent == "services" {
            "[[services]]".to_string()
        } else {
            format!("[{parent}]")
        };
        msg.push_str(&format!(
            "; `{field}` is a setting of `{parent}`: move it above the `{table}` header (every key after a header belongs to that table)"
        ));
    } else if !valid.is_empty() {
        msg.push_str(&format!("; valid keys are {}", list(&valid)));
    }
    msg
}

/// Type errors ("invalid type: string \"7\", expected u32") in our words.
fn explain_other(loc: &Locator, header: &str, span: &Range<usize>, message: &str) -> String {
    let message = message.trim();
    let owner = loc.values.get(&span.start);
    let what = match owner {
        Some(o) => format!("`{}` in `{}`", o.key, o.table),
        None => format!("`{header}`"),
    };
    let parsed = message
        .strip_prefix("invalid type: ")
        .or_else(|| message.strip_prefix("invalid value: "))
        .and_then(|r| r.rsplit_once(", expected "));
    match parsed {
        Some((found, expected)) => format!(
            "{what} must be {}, not {}",
            human_expected(expected),
            human_found(found)
        ),
        None => format!("{what}: {message}"),
    }
}

fn human_expected(expected: &str) -> String {
    match expected {
        "u8" | "u16" | "u32" | "u64" | "usize" => {
            let max = match expected {
                "u8" => "255",
                "u16" => "65535",
                "u32" => "4294967295",
                _ => "",
            };
            if max.is_empty() {
                "a whole number (0 or more)".to_string()
            } else {
                format!("a whole number from 0 to {max}")
            }
        }
        "a boolean" => "`true` or `false`".to_string(),
        "a string" => "a quoted string".to_string(),
        "a sequence" => "a list, like `[\"a\", \"b\"]`".to_string(),
        e if e.starts_with("struct ") || e == "a map" => "a table".to_string(),
        e => e.to_string(),
    }
}

fn human_found(found: &str) -> String {
    // Integers beyond i64 come as "integer `N` as i128".
    let found = found
        .strip_suffix(" as i128")
        .or_else(|| found.strip_suffix(" as u128"))
        .unwrap_or(found);
    let inner = |p: &str| {
        found
            .strip_prefix(p)
            .map(|r| r.trim_matches('`').to_string())
    };
    if let Some(s) = found.strip_prefix("string ") {
        format!("the string {s}")
    } else if let Some(n) = inner("integer ").or_else(|| inner("floating point ")) {
        format!("the number {n}")
    } else if let Some(b) = inner("boolean ") {
        format!("`{b}`")
    } else if found == "sequence" {
        "a list".to_string()
    } else if found == "map" {
        "a table".to_string()
    } else {
        found.to_string()
    }
}

fn named_tables<'i>(
    loc: &Locator,
    path: &str,
    value: Spanned<DeValue<'i>>,
    errors: &mut Vec<Diagnostic>,
) -> Option<Vec<(String, Spanned<DeValue<'i>>)>> {
    let span = value.span();
    match value.into_inner() {
        DeValue::Table(t) => Some(
            t.into_iter()
                .map(|(k, v)| (k.get_ref().to_string(), v))
                .collect(),
        ),
        _ => {
            errors.push(loc.at_span(
                Some(span),
                format!("`{path}` must be a table of named entries, like `[{path}.NAME]`"),
            ));
            None
        }
    }
}

/// Parses `services` in either form; `false` when its shape is so wrong that
/// resolving would only add confusing follow-on errors.
fn services(
    loc: &Locator,
    source: &str,
    value: Spanned<DeValue<'_>>,
    raw: &mut RawConfig,
    errors: &mut Vec<Diagnostic>,
) -> bool {
    let span = value.span();
    match value.into_inner() {
        DeValue::Table(t) => {
            // The table is sorted by name; services run in file order.
            let mut entries: Vec<_> = t.into_iter().collect();
            entries.sort_by_key(|(k, _)| k.span().start);
            for (k, v) in entries {
                let name = k.get_ref().to_string();
                let path = format!("services.{name}");
                let header = format!("[services.{name}]");
                if let Some(s) =
                    section::<ServiceRaw>(loc, &header, v, errors, &mut raw.dropped_keys_in)
                {
                    raw.services.push((name, s, path));
                }
            }
        }
        DeValue::Array(items) => {
            raw.array_form = true;
            let names: Vec<Option<String>> = items.iter().map(entry_name).collect();
            let mut mixed = false;
            for (i, item) in items.iter().enumerate() {
                let path = format!("services.{i}");
                let found = mixed_form(loc, source, &path, item, &items, &names);
                if !found.is_empty() {
                    mixed = true;
                    errors.extend(found);
                    continue;
                }
                if let Some(s) = section::<ServiceRaw>(
                    loc,
                    "[[services]]",
                    item.clone(),
                    errors,
                    &mut raw.dropped_keys_in,
                ) {
                    let name = s.name.clone().unwrap_or_default();
                    raw.services.push((name, s, path));
                }
            }
            return !mixed;
        }
        _ => {
            errors.push(loc.at_span(
                Some(span),
                "`services` must be `[services.NAME]` tables or `[[services]]` entries",
            ));
            return false;
        }
    }
    true
}

/// The `name` of a `[[services]]` entry.
fn entry_name(item: &Spanned<DeValue<'_>>) -> Option<String> {
    let DeValue::Table(t) = item.get_ref() else {
        return None;
    };
    t.iter()
        .find(|(k, _)| k.get_ref() == "name")
        .and_then(|(_, v)| match v.get_ref() {
            DeValue::String(s) => Some(s.to_string()),
            _ => None,
        })
}

/// Detects the original tool's documented mistake: `[[services]]` followed by
/// `[services.NAME.config]` (or `[services.NAME]`), which TOML silently nests
/// inside the last array element as a key `NAME` holding a table. The
/// message shows the service rewritten as named tables, with the user's own
/// values.
fn mixed_form(
    loc: &Locator,
    source: &str,
    path: &str,
    item: &Spanned<DeValue<'_>>,
    items: &[Spanned<DeValue<'_>>],
    names: &[Option<String>],
) -> Vec<Diagnostic> {
    let DeValue::Table(t) = item.get_ref() else {
        return Vec::new();
    };
    let mut nested: Vec<_> = t
        .iter()
        .filter(|(k, v)| k.get_ref() != "config" && v.get_ref().is_table())
        .collect();
    nested.sort_by_key(|(k, _)| k.span().start);
    nested
        .into_iter()
        .filter_map(|(k, v)| match v.get_ref() {
            DeValue::Table(inner) => {
                let msg = mixed_message(source, k.get_ref(), inner, items, names);
                Some(loc.at(&format!("{path}.{}", k.get_ref()), msg))
            }
            _ => None,
        })
        .collect()
}

/// The explanation for one nested `[services.KEY…]` table, with the service
/// rewritten as named tables.
fn mixed_message(
    source: &str,
    key: &str,
    nested: &DeTable<'_>,
    items: &[Spanned<DeValue<'_>>],
    names: &[Option<String>],
) -> String {
    let nested_config = nested.iter().find_map(|(k, v)| match v.get_ref() {
        DeValue::Table(c) if k.get_ref() == "config" => Some(c),
        _ => None,
    });
    let written = if nested_config.is_some() && nested.len() == 1 {
        format!("[services.{key}.config]")
    } else {
        format!("[services.{key}]")
    };

    // The entry the user meant: the one named `key`, else a placeholder.
    let owner = names
        .iter()
        .position(|n| n.as_deref() == Some(key))
        .and_then(|i| match items[i].get_ref() {
            DeValue::Table(o) => Some(o),
            _ => None,
        });
    let mut main = Vec::new();
    if let Some(o) = owner {
        scalars(source, o, &["name"], &mut main);
    }
    scalars(source, nested, &[], &mut main);
    // A profile usually supplies `targets`; a placeholder would then be
    // an error of its own when the fix is pasted.
    if !main
        .iter()
        .any(|l| l.starts_with("targets ") || l.starts_with("profile "))
    {
        main.push("targets = [\"...\"]".to_string());
    }
    let mut fixed = format!("[services.{key}]\n{}\n", main.join("\n"));
    let config = nested_config.or_else(|| {
        owner.and_then(|o| {
            o.iter().find_map(|(k, v)| match v.get_ref() {
                DeValue::Table(c) if k.get_ref() == "config" => Some(c),
                _ => None,
            })
        })
    });
    if let Some(c) = config {
        render_config(source, &format!("services.{key}.config"), c, &mut fixed);
    }
    let fixed = indent(&fixed);

    // A service written as a nested table gets a fix of its own; the
    // other entries the user rewrites the same way.
    let fixed_elsewhere: BTreeSet<String> = items.iter().flat_map(nested_names).collect();
    let others: Vec<String> = names
        .iter()
        .flatten()
        .filter(|n| n.as_str() != key && !fixed_elsewhere.contains(n.as_str()))
        .map(|n| format!("`[services.{n}]`"))
        .collect();
    let rest = if others.is_empty() {
        String::new()
    } else {
        format!(
            "\n\nand write the other entries the same way ({}), since one file cannot use both forms",
            others.join(", ")
        )
    };
    format!(
        "`{written}` follows a `[[services]]` entry, so TOML nests it inside that entry \
         instead of creating service `{key}`; do not mix `[[services]]` with \
         `[services.NAME]` tables; write the service as named tables:\n\n{fixed}{rest}"
    )
}

/// The `NAME`s of the `[services.NAME…]` tables nested in an entry.
fn nested_names(item: &Spanned<DeValue<'_>>) -> Vec<String> {
    match item.get_ref() {
        DeValue::Table(t) => t
            .iter()
            .filter(|(k, v)| k.get_ref() != "config" && v.get_ref().is_table())
            .map(|(k, _)| k.get_ref().to_string())
            .collect(),
        _ => Vec::new(),
    }
}

/// `key = value` lines (as written in the file) for the non-table keys.
fn scalars(source: &str, t: &DeTable<'_>, skip: &[&str], out: &mut Vec<String>) {
    scalars_where(source, t, |k| !skip.contains(&k), out);
}

/// `key = value` lines for the non-table keys that `keep` accepts.
fn scalars_where(
    source: &str,
    t: &DeTable<'_>,
    keep: impl Fn(&str) -> bool,
    out: &mut Vec<String>,
) {
    for (k, v) in in_file_order(t) {
        let name = k.get_ref();
        if !keep(name.as_ref()) || is_table_like(v.get_ref()) {
            continue;
        }
        let text = source.get(v.span()).unwrap_or("...");
        out.push(format!("{name} = {text}"));
    }
}

/// A table's entries in the order they are written (the table is sorted).
fn in_file_order<'a, 'i>(
    t: &'a DeTable<'i>,
) -> Vec<(
    &'a Spanned<toml::de::DeString<'i>>,
    &'a Spanned<DeValue<'i>>,
)> {
    let mut v: Vec<_> = t.iter().collect();
    v.sort_by_key(|(k, _)| k.span().start);
    v
}

fn is_table_like(v: &DeValue<'_>) -> bool {
    match v {
        DeValue::Table(_) => true,
        DeValue::Array(a) => !a.is_empty() && a.iter().all(|i| i.get_ref().is_table()),
        _ => false,
    }
}

/// Renders a service's `config` table. Keys of the config table written
/// below a hook's `[[...pre_backup_hooks]]` header (the original README
/// puts `paths` and `volumes` there) belong to the config table: TOML put
/// them into the hook, so they are moved back up.
fn render_config(source: &str, name: &str, c: &DeTable<'_>, out: &mut String) {
    let hooks = ["pre_backup_hooks", "post_backup_hooks"];
    let misplaced = |k: &str| SERVICE_CONFIG_KEYS.contains(&k);
    let mut lines = Vec::new();
    scalars(source, c, &[], &mut lines);
    for (k, v) in in_file_order(c) {
        if let (true, DeValue::Array(items)) = (hooks.contains(&k.get_ref().as_ref()), v.get_ref())
        {
            for item in items {
                if let DeValue::Table(t) = item.get_ref() {
                    scalars_where(source, t, misplaced, &mut lines);
                }
            }
        }
    }
    out.push_str(&format!("\n[{name}]\n"));
    for l in lines {
        out.push_str(&l);
        out.push('\n');
    }
    for (k, v) in in_file_order(c) {
        let sub = format!("{name}.{}", k.get_ref());
        let hook = hooks.contains(&k.get_ref().as_ref());
        match v.get_ref() {
            DeValue::Table(inner) => render_table(source, &sub, inner, out),
            DeValue::Array(a) if is_table_like(v.get_ref()) => {
                for item in a.iter() {
                    if let DeValue::Table(inner) = item.get_ref() {
                        let skip: &[&str] = if hook { SERVICE_CONFIG_KEYS } else { &[] };
                        let mut own = Vec::new();
                        scalars(source, inner, skip, &mut own);
                        out.push_str(&format!("\n[[{sub}]]\n"));
                        for l in own {
                            out.push_str(&l);
                            out.push('\n');
                        }
                        for (k2, v2) in in_file_order(inner) {
                            if let DeValue::Table(t2) = v2.get_ref() {
                                render_table(source, &format!("{sub}.{}", k2.get_ref()), t2, out);
                            }
                        }
                    }
                }
            }
            _ => {}
        }
    }
}

/// Renders a table (and its sub-tables and arrays of tables) as TOML text
/// with headers, reusing the source text of each value.
fn render_table(source: &str, name: &str, t: &DeTable<'_>, out: &mut String) {
    render_header(source, &format!("[{name}]"), t, out);
    for (k, v) in in_file_order(t) {
        let sub = format!("{name}.{}", k.get_ref());
        match v.get_ref() {
            DeValue::Table(inner) => render_table(source, &sub, inner, out),
            DeValue::Array(a) if is_table_like(v.get_ref()) => {
                for item in a.iter() {
                    if let DeValue::Table(inner) = item.get_ref() {
                        render_header(source, &format!("[[{sub}]]"), inner, out);
                    }
                }
            }
            _ => {}
        }
    }
}

fn render_header(source: &str, header: &str, t: &DeTable<'_>, out: &mut String) {
    let mut lines = Vec::new();
    scalars(source, t, &[], &mut lines);
    out.push_str(&format!("\n{header}\n"));
    for l in lines {
        out.push_str(&l);
        out.push('\n');
    }
}

/// A TOML block shown inside a message: four spaces before each line (none
/// on an empty one), trailing blank lines dropped.
pub(super) fn indent(text: &str) -> String {
    text.trim_end()
        .lines()
        .map(|l| {
            if l.is_empty() {
                String::new()
            } else {
                format!("    {l}")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::schema::{SERVICE_CONFIG_KEYS, SERVICE_KEYS, ServiceConfigRaw};

    /// The field list serde knows for `T`, from its unknown-field error.
    fn serde_fields<T: DeserializeOwned + std::fmt::Debug>() -> Vec<String> {
        let err = toml::from_str::<T>("zz_probe = 0")
            .map_or_else(|e| e.to_string(), |v| panic!("probe parsed: {v:?}"));
        let line = err
            .lines()
            .find(|l| l.contains("unknown field"))
            .unwrap_or_default()
            .to_string();
        unknown_field(&line).map(|(_, v)| v).unwrap_or_default()
    }

    #[test]
    fn key_lists_match_the_schema() {
        assert_eq!(serde_fields::<ServiceRaw>(), SERVICE_KEYS);
        assert_eq!(serde_fields::<ServiceConfigRaw>(), SERVICE_CONFIG_KEYS);
    }

    #[test]
    fn type_errors_in_plain_words() {
        for (expected, found, want) in [
            (
                "u32",
                "string \"7\"",
                "a whole number from 0 to 4294967295, not the string \"7\"",
            ),
            (
                "u16",
                "integer `70000`",
                "a whole number from 0 to 65535, not the number 70000",
            ),
            (
                "a sequence",
                "string \"x\"",
                "a list, like `[\"a\", \"b\"]`, not the string \"x\"",
            ),
            (
                "a boolean",
                "integer `1`",
                "`true` or `false`, not the number 1",
            ),
        ] {
            assert_eq!(
                format!("{}, not {}", human_expected(expected), human_found(found)),
                want
            );
        }
    }
}
