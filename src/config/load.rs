//! Finding, reading and parsing the configuration file.
//!
//! Parsing goes section by section (`[global]`, each profile, each service,
//! each destination) so that `validate` can report an error in every section
//! at once instead of stopping at the first. Every error carries the file,
//! line and column, found through [`Locator`].

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use toml::Spanned;
use toml::de::{DeTable, DeValue, ValueDeserializer};

use super::schema::{DestinationRaw, GlobalRaw, NotificationsRaw, ServiceRaw, TOP_LEVEL_KEYS};
use super::{Diagnostic, suggest};

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
    /// Whether services were written as `[[services]]`.
    pub array_form: bool,
}

/// Maps dotted key paths (`services.wiki.config.paths`) to where they are
/// written, and byte offsets to line and column.
#[derive(Debug, Clone, Default)]
pub struct Locator {
    file: PathBuf,
    line_starts: Vec<usize>,
    spans: HashMap<String, Range<usize>>,
}

impl Locator {
    fn new(file: &Path, source: &str) -> Self {
        let mut line_starts = vec![0];
        line_starts.extend(source.match_indices('\n').map(|(i, _)| i + 1));
        Self {
            file: file.to_path_buf(),
            line_starts,
            spans: HashMap::new(),
        }
    }

    fn record(&mut self, prefix: &str, table: &DeTable<'_>) {
        for (key, value) in table {
            let path = join(prefix, key.get_ref());
            self.spans.insert(path.clone(), key.span());
            self.record_value(&path, value);
        }
    }

    fn record_value(&mut self, path: &str, value: &Spanned<DeValue<'_>>) {
        match value.get_ref() {
            DeValue::Table(t) => self.record(path, t),
            DeValue::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    let p = format!("{path}.{i}");
                    self.spans.insert(p.clone(), item.span());
                    self.record_value(&p, item);
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

    /// A diagnostic for a key path.
    pub fn at(&self, path: &str, message: impl Into<String>) -> Diagnostic {
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

/// Reads and parses `file`. Returns the raw configuration and its locator, or
/// every error found.
pub fn load_file(file: &Path) -> Result<(RawConfig, Locator), Vec<Diagnostic>> {
    let source = std::fs::read_to_string(file).map_err(|e| {
        vec![Diagnostic {
            file: file.to_path_buf(),
            line: 0,
            column: 0,
            message: format!("cannot read the configuration file: {e}"),
        }]
    })?;
    parse_str(file, &source)
}

/// Parses configuration text; `file` is only used in messages.
pub fn parse_str(file: &Path, source: &str) -> Result<(RawConfig, Locator), Vec<Diagnostic>> {
    let mut loc = Locator::new(file, source);
    let root = DeTable::parse(source).map_err(|e| {
        vec![loc.at_span(e.span(), format!("invalid TOML: {}", e.message().trim()))]
    })?;
    loc.record("", root.get_ref());

    let mut raw = RawConfig {
        file: file.to_path_buf(),
        ..RawConfig::default()
    };
    let mut errors = Vec::new();

    for (key, value) in root.into_inner() {
        let name = key.get_ref().to_string();
        match name.as_str() {
            "global" => {
                if let Some(g) = section::<GlobalRaw>(&loc, "global", value, &mut errors) {
                    raw.global = g;
                }
            }
            "notifications" => {
                raw.notifications =
                    section::<NotificationsRaw>(&loc, "notifications", value, &mut errors);
            }
            "profiles" => {
                for (n, v) in named_tables(&loc, "profiles", value, &mut errors) {
                    let path = format!("profiles.{n}");
                    if let Some(p) = section::<ServiceRaw>(&loc, &path, v, &mut errors) {
                        raw.profiles.insert(n, p);
                    }
                }
            }
            "destinations" => {
                for (n, v) in named_tables(&loc, "destinations", value, &mut errors) {
                    let path = format!("destinations.{n}");
                    if let Some(d) = section::<DestinationRaw>(&loc, &path, v, &mut errors) {
                        raw.destinations.insert(n, d);
                    }
                }
            }
            "services" => services(&loc, value, &mut raw, &mut errors),
            other => {
                let mut msg = format!("unknown section `{other}`");
                if let Some(s) = suggest(other, TOP_LEVEL_KEYS) {
                    msg.push_str(&format!("; did you mean `{s}`?"));
                } else {
                    msg.push_str(&format!("; valid sections are {}", list(TOP_LEVEL_KEYS)));
                }
                errors.push(loc.at_span(Some(key.span()), msg));
            }
        }
    }

    if errors.is_empty() {
        Ok((raw, loc))
    } else {
        Err(errors)
    }
}

/// Backtick-quoted, comma-separated list of names.
pub fn list(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn section<T: DeserializeOwned>(
    loc: &Locator,
    path: &str,
    value: Spanned<DeValue<'_>>,
    errors: &mut Vec<Diagnostic>,
) -> Option<T> {
    let span = value.span();
    match T::deserialize(ValueDeserializer::from(value)) {
        Ok(v) => Some(v),
        Err(e) => {
            let msg = explain_serde(path, e.message());
            errors.push(loc.at_span(e.span().or(Some(span)), msg));
            None
        }
    }
}

/// Rewrites serde's messages into ours, adding a did-you-mean to unknown keys.
fn explain_serde(path: &str, message: &str) -> String {
    let message = message.trim();
    if let Some(rest) = message.strip_prefix("unknown field `")
        && let Some((field, expected)) = rest.split_once('`')
    {
        let valid: Vec<&str> = expected
            .split('`')
            .skip(1)
            .step_by(2)
            .filter(|s| !s.is_empty())
            .collect();
        let mut msg = format!("unknown key `{field}` in `[{path}]`");
        if let Some(s) = suggest(field, &valid) {
            msg.push_str(&format!("; did you mean `{s}`?"));
        } else if !valid.is_empty() {
            msg.push_str(&format!("; valid keys are {}", list(&valid)));
        }
        return msg;
    }
    format!("in `[{path}]`: {message}")
}

fn named_tables<'i>(
    loc: &Locator,
    path: &str,
    value: Spanned<DeValue<'i>>,
    errors: &mut Vec<Diagnostic>,
) -> Vec<(String, Spanned<DeValue<'i>>)> {
    let span = value.span();
    match value.into_inner() {
        DeValue::Table(t) => t
            .into_iter()
            .map(|(k, v)| (k.get_ref().to_string(), v))
            .collect(),
        _ => {
            errors.push(loc.at_span(
                Some(span),
                format!("`{path}` must be a table of named entries, like `[{path}.NAME]`"),
            ));
            Vec::new()
        }
    }
}

fn services(
    loc: &Locator,
    value: Spanned<DeValue<'_>>,
    raw: &mut RawConfig,
    errors: &mut Vec<Diagnostic>,
) {
    let span = value.span();
    match value.into_inner() {
        DeValue::Table(t) => {
            for (k, v) in t {
                let name = k.get_ref().to_string();
                let path = format!("services.{name}");
                if let Some(s) = section::<ServiceRaw>(loc, &path, v, errors) {
                    raw.services.push((name, s, path));
                }
            }
        }
        DeValue::Array(items) => {
            raw.array_form = true;
            for (i, item) in items.into_iter().enumerate() {
                let path = format!("services.{i}");
                if let Some(d) = mixed_form(loc, &path, &item) {
                    errors.push(d);
                    continue;
                }
                if let Some(s) = section::<ServiceRaw>(loc, &path, item, errors) {
                    let name = s.name.clone().unwrap_or_default();
                    raw.services.push((name, s, path));
                }
            }
        }
        _ => errors.push(loc.at_span(
            Some(span),
            "`services` must be `[services.NAME]` tables or `[[services]]` entries",
        )),
    }
}

/// Detects the original tool's documented mistake: `[[services]]` followed by
/// `[services.NAME.config]`, which TOML silently nests inside the last array
/// element as a key `NAME` holding a `config` table.
fn mixed_form(loc: &Locator, path: &str, item: &Spanned<DeValue<'_>>) -> Option<Diagnostic> {
    let DeValue::Table(t) = item.get_ref() else {
        return None;
    };
    for (k, v) in t {
        let key = k.get_ref();
        if key == "config" {
            continue;
        }
        if let DeValue::Table(inner) = v.get_ref()
            && inner.iter().any(|(ik, _)| ik.get_ref() == "config")
        {
            let elem_name = t
                .iter()
                .find(|(ek, _)| ek.get_ref() == "name")
                .and_then(|(_, ev)| match ev.get_ref() {
                    DeValue::String(s) => Some(s.to_string()),
                    _ => None,
                })
                .unwrap_or_else(|| key.to_string());
            let msg = format!(
                "`[services.{key}.config]` follows a `[[services]]` entry, so TOML nests it \
                     inside that entry instead of creating service `{key}`. Do not mix the two \
                     forms; write each service as a named table:\n\n    \
                     [services.{elem_name}]\n    targets = [\"...\"]\n\n    \
                     [services.{elem_name}.config]\n    paths = [\"...\"]\n\n\
                     or keep `[[services]]` and write its settings as `[services.config]` \
                     directly after it."
            );
            return Some(loc.at(&format!("{path}.{key}"), msg));
        }
    }
    None
}
