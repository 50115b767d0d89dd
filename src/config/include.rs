//! Drop-in files: `include = ["conf.d/*.toml"]` in the main file.
//!
//! Ansible roles and compose stacks add one service by dropping a file into
//! a folder instead of editing a shared one. Each included file is parsed
//! on its own, with its own line numbers, and merged into the main file's
//! [`RawConfig`] before the legacy translation and resolution, so
//! everything after sees one configuration. The main file's [`Locator`]
//! sends the key paths of each merged section to the included file's
//! locator: an error in a drop-in points at the drop-in.
//!
//! Included files add named things (destinations, profiles, services,
//! notifiers); settings that exist once (`[global]`, `[metrics]`, ...) stay
//! in the main file, so no drop-in can change another one's behaviour
//! behind its back. A name is defined once across all files.
//!
//! A relative path in an included file is taken from that file's folder:
//! a drop-in is read the way it is written, and a role can ship a file and
//! its password next to each other. This module anchors those paths before
//! resolution, which anchors what is left at the main file's folder.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;
use toml::Spanned;
use toml::de::DeValue;

use super::Diagnostic;
use super::load::{Locator, Parsed, RawConfig};
use super::paths::{Env, from_config_dir};
use super::schema::{NotifierRaw, ServiceRaw, TOP_LEVEL_KEYS};

/// The top-level tables an included file may have.
pub const INCLUDABLE: &[&str] = &["destinations", "profiles", "services", "notifiers"];

/// What one configuration file defines (`validate`, `config show`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FileParts {
    /// Absolute.
    pub file: PathBuf,
    /// In file order.
    pub services: Vec<String>,
    pub destinations: Vec<String>,
    pub profiles: Vec<String>,
    pub notifiers: Vec<String>,
}

impl FileParts {
    /// The file as a user reads it: relative to the main file's folder
    /// when it lies below it.
    pub fn short(file: &Path, main: &Path) -> String {
        main.parent()
            .and_then(|d| file.strip_prefix(d).ok())
            .unwrap_or(file)
            .display()
            .to_string()
    }
}

impl RawConfig {
    /// The file that defines service `name`; `None` when the main file has
    /// no `include` (then every service is the main file's).
    pub fn service_file(&self, name: &str) -> Option<PathBuf> {
        self.files
            .as_ref()?
            .iter()
            .find(|p| p.services.iter().any(|s| s == name))
            .map(|p| p.file.clone())
    }
}

/// Why a top-level key of an included file is refused; `None` when it is
/// allowed, or unknown (reported as an unknown section).
pub fn refused(key: &str) -> Option<String> {
    if INCLUDABLE.contains(&key) {
        return None;
    }
    if key == "include" {
        return Some(
            "an included file cannot include other files; list every pattern in the main file's `include`"
                .to_string(),
        );
    }
    TOP_LEVEL_KEYS.contains(&key).then(|| {
        format!(
            "`[{key}]` belongs in the main configuration file, not in an included file; move it there (an included file may only define {})",
            INCLUDABLE
                .iter()
                .map(|t| format!("`[{t}.NAME]`"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    })
}

/// The main file's `include` value: a list of patterns. Problems are
/// reported; the patterns that can be used are kept.
pub fn patterns(
    loc: &Locator,
    value: Spanned<DeValue<'_>>,
    errors: &mut Vec<Diagnostic>,
) -> Option<Vec<String>> {
    let usage = "`include` must be a list of file patterns, like `include = [\"conf.d/*.toml\"]`";
    let DeValue::Array(items) = value.into_inner() else {
        errors.push(loc.at("include", usage));
        return Some(Vec::new());
    };
    let mut out = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        match item.into_inner() {
            DeValue::String(s) if !s.trim().is_empty() => out.push(s.to_string()),
            _ => errors.push(loc.at(&format!("include.{i}"), usage)),
        }
    }
    Some(out)
}

/// Sorts diagnostics by place: the main file's first, then each included
/// file's, each by line and column.
pub fn by_place(found: &mut [Diagnostic], main: &Path) {
    found.sort_by(|a, b| {
        (a.file != main, &a.file, a.line, a.column).cmp(&(
            b.file != main,
            &b.file,
            b.line,
            b.column,
        ))
    });
}

/// Reads every file the main file's `include` names and merges it in.
/// `Err` when a file cannot be read or parsed at all: resolving without it
/// would only add follow-on errors (its services' targets, ...).
pub fn merge(parsed: Parsed, env: &Env) -> Result<Parsed, Vec<Diagnostic>> {
    let ((raw, loc, mut errors), fatal) = merge_all(parsed, env);
    if fatal {
        by_place(&mut errors, loc.file());
        Err(errors)
    } else {
        Ok((raw, loc, errors))
    }
}

/// Like [`merge`], keeping whatever could be read (notifying about a broken
/// configuration).
pub fn merge_lenient(parsed: Parsed, env: &Env) -> Parsed {
    merge_all(parsed, env).0
}

fn merge_all(parsed: Parsed, env: &Env) -> (Parsed, bool) {
    let (mut raw, mut loc, mut errors) = parsed;
    let Some(patterns) = raw.include.clone() else {
        return ((raw, loc, errors), false);
    };
    let base = raw
        .file
        .parent()
        .map_or_else(|| PathBuf::from("/"), Path::to_path_buf);
    let main_real = std::fs::canonicalize(&raw.file).ok();
    let mut seen = BTreeSet::new();
    let mut files = Vec::new();
    for (i, pattern) in patterns.iter().enumerate() {
        match expand(pattern, &base, env) {
            Ok(found) => {
                for f in found {
                    let real = std::fs::canonicalize(&f).unwrap_or_else(|_| f.clone());
                    // `*.toml` next to the main file matches the main file.
                    if main_real.as_ref() != Some(&real) && seen.insert(real) {
                        files.push(f);
                    }
                }
            }
            Err(msg) => errors.push(loc.at(&format!("include.{i}"), msg)),
        }
    }

    let mut defs = Defs::of_main(&raw, &loc);
    let mut parts = vec![FileParts {
        file: raw.file.clone(),
        services: raw.services.iter().map(|(n, _, _)| n.clone()).collect(),
        destinations: names(raw.destinations.keys(), &raw.broken_destinations),
        profiles: names(raw.profiles.keys(), &raw.broken_profiles),
        notifiers: names(raw.notifiers.keys(), &raw.broken_notifiers),
    }];
    let mut fatal = false;
    for f in files {
        match read(&f).and_then(|text| super::load::parse_included(&f, &text)) {
            Ok((inc, iloc, found)) => {
                errors.extend(found);
                let number = parts.len();
                let part = absorb(
                    &mut raw,
                    &mut loc,
                    &mut defs,
                    (inc, iloc, number),
                    env,
                    &mut errors,
                );
                parts.push(part);
            }
            Err(found) => {
                errors.extend(found);
                fatal = true;
            }
        }
    }
    raw.files = Some(parts);
    ((raw, loc, errors), fatal)
}

fn names<'a>(
    parsed: impl Iterator<Item = &'a String>,
    broken: &'a BTreeSet<String>,
) -> Vec<String> {
    parsed
        .chain(broken)
        .cloned()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

fn read(file: &Path) -> Result<String, Vec<Diagnostic>> {
    let bytes = std::fs::read(file).map_err(|e| {
        vec![Diagnostic {
            file: file.to_path_buf(),
            line: 0,
            column: 0,
            message: format!("cannot read this included file: {e}"),
        }]
    })?;
    super::checks::decode(file, bytes).map_err(|d| vec![d])
}

/// Where each name is first defined, to report a second definition.
struct Defs(BTreeMap<(&'static str, String), Diagnostic>);

impl Defs {
    fn of_main(raw: &RawConfig, loc: &Locator) -> Defs {
        let mut d = Defs(BTreeMap::new());
        for (name, _, path) in &raw.services {
            d.first("service", name, loc.at(path, ""));
        }
        for (kind, table, list) in [
            (
                "destination",
                "destinations",
                names(raw.destinations.keys(), &raw.broken_destinations),
            ),
            (
                "profile",
                "profiles",
                names(raw.profiles.keys(), &raw.broken_profiles),
            ),
            (
                "notifier",
                "notifiers",
                names(raw.notifiers.keys(), &raw.broken_notifiers),
            ),
        ] {
            for name in list {
                d.first(kind, &name, loc.at(&format!("{table}.{name}"), ""));
            }
        }
        // `[notifications] discord_webhook_url` is the notifier `discord`.
        if raw
            .notifications
            .as_ref()
            .is_some_and(|n| n.discord_webhook_url.is_some())
        {
            d.first(
                "notifier",
                super::notify::LEGACY_DISCORD,
                loc.at("notifications.discord_webhook_url", ""),
            );
        }
        d
    }

    fn first(&mut self, kind: &'static str, name: &str, at: Diagnostic) {
        self.0.entry((kind, name.to_string())).or_insert(at);
    }

    /// Records a definition at `at`; the error when the name is taken.
    fn define(&mut self, kind: &'static str, name: &str, at: Diagnostic) -> Option<Diagnostic> {
        let Some(first) = self.0.get(&(kind, name.to_string())) else {
            self.first(kind, name, at);
            return None;
        };
        let message = if first.file == at.file {
            format!(
                "{kind} `{name}` is defined twice in this file (first at line {}); rename or remove one",
                first.line
            )
        } else {
            format!(
                "{kind} `{name}` is already defined in `{}` (line {}); a name may be defined once across the main file and its included files; rename or remove one",
                first.file.display(),
                first.line
            )
        };
        Some(Diagnostic { message, ..at })
    }
}

/// Merges included file `number` (1: the first) into `raw`; returns what
/// it defined.
fn absorb(
    raw: &mut RawConfig,
    loc: &mut Locator,
    defs: &mut Defs,
    (inc, iloc, number): (RawConfig, Locator, usize),
    env: &Env,
    errors: &mut Vec<Diagnostic>,
) -> FileParts {
    let dir = inc
        .file
        .parent()
        .map_or_else(|| PathBuf::from("/"), Path::to_path_buf);
    let mut m = Merge {
        raw,
        loc,
        defs,
        iloc: Arc::new(iloc),
        dir,
        env,
        number,
        errors,
        taken: Vec::new(),
        part: FileParts {
            file: inc.file.clone(),
            ..FileParts::default()
        },
    };
    m.destinations(&inc);
    m.profiles(&inc);
    m.notifiers(&inc);
    m.services(inc.services, inc.array_form);
    m.dropped(&inc.dropped_keys_in);
    m.part
}

/// One included file being merged into the main file's configuration.
struct Merge<'a> {
    raw: &'a mut RawConfig,
    loc: &'a mut Locator,
    defs: &'a mut Defs,
    /// The included file's locator.
    iloc: Arc<Locator>,
    /// The included file's folder, which its relative paths start from.
    dir: PathBuf,
    env: &'a Env,
    number: usize,
    errors: &'a mut Vec<Diagnostic>,
    /// (prefix in the included file, prefix in the merged configuration)
    taken: Vec<(String, String)>,
    part: FileParts,
}

impl Merge<'_> {
    /// Makes a relative path absolute from the included file's folder.
    fn anchor(&self, p: &mut Option<String>) {
        if let Some(v) = p.as_mut() {
            *v = from_config_dir(v, &self.dir, self.env)
                .to_string_lossy()
                .into_owned();
        }
    }

    fn anchor_dumps(&self, s: &mut ServiceRaw) {
        for d in s
            .config
            .iter_mut()
            .flat_map(|c| c.dumps.iter_mut().flatten())
        {
            self.anchor(&mut d.password_file);
        }
    }

    /// Records `[table.name]`; false (and an error) when the name is taken.
    fn named(&mut self, kind: &'static str, table: &str, name: &str) -> bool {
        let path = format!("{table}.{name}");
        if let Some(e) = self.defs.define(kind, name, self.iloc.at(&path, "")) {
            self.errors.push(e);
            return false;
        }
        self.loc
            .route(path.clone(), path.clone(), Arc::clone(&self.iloc));
        self.taken.push((path.clone(), path));
        true
    }

    fn destinations(&mut self, inc: &RawConfig) {
        for name in names(inc.destinations.keys(), &inc.broken_destinations) {
            if !self.named("destination", "destinations", &name) {
                continue;
            }
            match inc.destinations.get(&name) {
                Some(d) => {
                    let d = super::resolve::expand_destination(d, &self.dir, self.env);
                    self.raw.destinations.insert(name.clone(), d);
                }
                None => {
                    self.raw.broken_destinations.insert(name.clone());
                }
            }
            self.part.destinations.push(name);
        }
    }

    fn profiles(&mut self, inc: &RawConfig) {
        for name in names(inc.profiles.keys(), &inc.broken_profiles) {
            if !self.named("profile", "profiles", &name) {
                continue;
            }
            match inc.profiles.get(&name) {
                Some(p) => {
                    let mut p = p.clone();
                    self.anchor_dumps(&mut p);
                    self.raw.profiles.insert(name.clone(), p);
                }
                None => {
                    self.raw.broken_profiles.insert(name.clone());
                }
            }
            self.part.profiles.push(name);
        }
    }

    fn notifiers(&mut self, inc: &RawConfig) {
        for name in names(inc.notifiers.keys(), &inc.broken_notifiers) {
            if !self.named("notifier", "notifiers", &name) {
                continue;
            }
            match inc.notifiers.get(&name) {
                Some(n) => {
                    let mut n: NotifierRaw = n.clone();
                    for f in [
                        &mut n.url_file,
                        &mut n.token_file,
                        &mut n.password_file,
                        &mut n.ca_file,
                    ] {
                        self.anchor(f);
                    }
                    self.raw.notifiers.insert(name.clone(), n);
                }
                None => {
                    self.raw.broken_notifiers.insert(name.clone());
                }
            }
            self.part.notifiers.push(name);
        }
    }

    fn services(&mut self, services: Vec<(String, ServiceRaw, String)>, array_form: bool) {
        let iloc = Arc::clone(&self.iloc);
        for (name, mut s, path) in services {
            if array_form && s.name.is_none() {
                self.errors
                    .push(iloc.at(&path, "a `[[services]]` entry needs a `name` key"));
                continue;
            }
            if let Some(e) = self.defs.define("service", &name, iloc.at(&path, "")) {
                self.errors.push(e);
                continue;
            }
            // The main file decides the form the resolver checks; an included
            // service is made to look written in that form.
            let merged = if self.raw.array_form {
                if !array_form {
                    if s.name.is_some() {
                        self.errors.push(iloc.at(
                            &format!("{path}.name"),
                            format!("service `{name}` sets `name`; in the `[services.NAME]` form the table header is the name, so remove the `name` key"),
                        ));
                    }
                    s.name = Some(name.clone());
                }
                // Not `services.N`: the main file's entries that did not parse
                // left gaps in its numbering, so any `N` may still be taken.
                format!("included.{}.{path}", self.number)
            } else {
                if array_form {
                    s.name = None;
                }
                format!("services.{name}")
            };
            self.anchor_dumps(&mut s);
            self.loc
                .route(merged.clone(), path.clone(), Arc::clone(&iloc));
            self.taken.push((path, merged.clone()));
            self.raw.services.push((name.clone(), s, merged));
            self.part.services.push(name);
        }
    }

    /// Tables that lost an unknown key, under their merged names.
    fn dropped(&mut self, dropped_keys_in: &BTreeSet<String>) {
        for d in dropped_keys_in {
            for (theirs, ours) in &self.taken {
                if let Some(rest) = d.strip_prefix(theirs.as_str())
                    && (rest.is_empty() || rest.starts_with('.'))
                {
                    self.raw.dropped_keys_in.insert(format!("{ours}{rest}"));
                }
            }
        }
    }
}

/// The files a pattern matches, sorted. `~/` is the home folder and a
/// relative pattern is taken from `base` (the main file's folder). `*`,
/// `?` and `[abc]` match within one path component and not a leading `.`
/// (editors' and Ansible's temporary files are hidden). A folder that does
/// not exist matches nothing; a name without wildcards must exist.
pub fn expand(pattern: &str, base: &Path, env: &Env) -> Result<Vec<PathBuf>, String> {
    let full = from_config_dir(pattern, base, env);
    let wild = |s: &str| s.contains(['*', '?', '[']);
    if !wild(&full.to_string_lossy()) {
        return if full.is_file() {
            Ok(vec![full])
        } else if full.is_dir() {
            Err(format!(
                "`{pattern}` is a folder; to include the files in it, write `{}/*.toml`",
                pattern.trim_end_matches('/')
            ))
        } else {
            Err(format!(
                "included file `{}` does not exist; fix the name, or write a pattern such as `conf.d/*.toml`, which may match nothing",
                full.display()
            ))
        };
    }
    let mut found = vec![PathBuf::new()];
    for part in full.components() {
        let part = part.as_os_str().to_string_lossy();
        if !wild(&part) {
            for f in &mut found {
                f.push(part.as_ref());
            }
            continue;
        }
        let pat: Vec<char> = part.chars().collect();
        let mut next = Vec::new();
        for dir in &found {
            let entries = match std::fs::read_dir(dir) {
                Ok(e) => e,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) if e.raw_os_error() == Some(nix::libc::ENOTDIR) => continue,
                Err(e) => {
                    return Err(format!(
                        "cannot read folder `{}` for `{pattern}`: {e}",
                        dir.display()
                    ));
                }
            };
            for e in entries {
                let e = e.map_err(|e| {
                    format!(
                        "cannot read folder `{}` for `{pattern}`: {e}",
                        dir.display()
                    )
                })?;
                let name: Vec<char> = e.file_name().to_string_lossy().chars().collect();
                if name.first() == Some(&'.') && pat.first() != Some(&'.') {
                    continue;
                }
                if matches(&pat, &name) {
                    next.push(dir.join(e.file_name()));
                }
            }
        }
        found = next;
    }
    let mut files: Vec<PathBuf> = found.into_iter().filter(|f| f.is_file()).collect();
    files.sort();
    Ok(files)
}

/// Shell-style matching of one name: `*`, `?`, `[abc]`, `[a-z]`, `[!a]`.
fn matches(pat: &[char], name: &[char]) -> bool {
    let (mut p, mut n) = (0, 0);
    // The last `*` seen and the name position it is tried at.
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        let step = match pat.get(p) {
            Some('*') => {
                star = Some((p, n));
                p += 1;
                continue;
            }
            Some('?') => Some(p + 1),
            Some('[') => class(pat, p, name[n]),
            Some(c) if *c == name[n] => Some(p + 1),
            _ => None,
        };
        match (step, star) {
            (Some(next), _) => {
                p = next;
                n += 1;
            }
            (None, Some((sp, sn))) => {
                p = sp + 1;
                n = sn + 1;
                star = Some((sp, sn + 1));
            }
            (None, None) => return false,
        }
    }
    pat[p..].iter().all(|c| *c == '*')
}

/// Matches `c` against the class starting at `pat[open] == '['`; the
/// position after the class when it matches. An unclosed `[` is a plain
/// character.
fn class(pat: &[char], open: usize, c: char) -> Option<usize> {
    let mut i = open + 1;
    let negate = matches!(pat.get(i), Some('!' | '^'));
    if negate {
        i += 1;
    }
    let start = i;
    let mut hit = false;
    while let Some(&ch) = pat.get(i) {
        if ch == ']' && i > start {
            return (hit != negate).then_some(i + 1);
        }
        if pat.get(i + 1) == Some(&'-') && pat.get(i + 2).is_some_and(|e| *e != ']') {
            hit |= (ch..=pat[i + 2]).contains(&c);
            i += 3;
        } else {
            hit |= ch == c;
            i += 1;
        }
    }
    (c == '[').then_some(open + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_like_a_shell() {
        for (pat, name, want) in [
            ("*.toml", "wiki.toml", true),
            ("*.toml", "wiki.toml~", false),
            ("*.toml", ".toml", true),
            ("*", "", true),
            ("a*b*c", "axxbyyc", true),
            ("a*b*c", "axxbyy", false),
            ("?.toml", "a.toml", true),
            ("?.toml", "ab.toml", false),
            ("[0-9]*-x", "10-x", true),
            ("[!0-9]*", "10", false),
            ("[!0-9]*", "a0", true),
            ("[ab].t", "b.t", true),
            ("[ab].t", "c.t", false),
            ("[]x].t", "].t", true),
            ("[x", "[x", true),
            ("[x", "x", false),
        ] {
            let p: Vec<char> = pat.chars().collect();
            let n: Vec<char> = name.chars().collect();
            assert_eq!(matches(&p, &n), want, "{pat} vs {name}");
        }
    }

    #[test]
    fn main_only_sections_are_refused_with_a_reason() {
        assert_eq!(refused("services"), None);
        assert_eq!(refused("notifiers"), None);
        assert_eq!(refused("backup"), None);
        for key in ["global", "metrics", "web", "notifications"] {
            let msg = refused(key).unwrap_or_default();
            assert!(
                msg.starts_with(&format!("`[{key}]` belongs in the main configuration file")),
                "{msg}"
            );
        }
        assert!(refused("include").is_some_and(|m| m.contains("cannot include")));
    }

    #[test]
    fn patterns_expand_sorted_and_skip_hidden_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        for f in [
            "conf.d/b.toml",
            "conf.d/a.toml",
            "conf.d/.a.toml.tmp",
            "conf.d/.x.toml",
            "conf.d/c.txt",
            "site/1/x.toml",
            "site/2/x.toml",
        ] {
            let p = d.join(f);
            std::fs::create_dir_all(p.parent().unwrap_or(d)).unwrap();
            std::fs::write(&p, "").unwrap();
        }
        std::fs::create_dir_all(d.join("conf.d/sub.toml")).unwrap();
        let env = Env::default();
        let rel = |v: Vec<PathBuf>| -> Vec<String> {
            v.iter()
                .map(|p| FileParts::short(p, &d.join("config.toml")))
                .collect()
        };
        let got = expand("conf.d/*.toml", d, &env).unwrap();
        assert_eq!(rel(got), ["conf.d/a.toml", "conf.d/b.toml"]);
        let got = expand("site/*/x.toml", d, &env).unwrap();
        assert_eq!(rel(got), ["site/1/x.toml", "site/2/x.toml"]);
        assert_eq!(expand("missing.d/*.toml", d, &env), Ok(Vec::new()));
        assert_eq!(expand("conf.d/a.toml/*", d, &env), Ok(Vec::new()));
        let got = expand(
            &format!("{}/conf.d/a.*", d.display()),
            Path::new("/nowhere"),
            &env,
        )
        .unwrap();
        assert_eq!(rel(got), ["conf.d/a.toml"]);
        let err = expand("conf.d/none.toml", d, &env)
            .err()
            .unwrap_or_default();
        assert!(err.contains("does not exist"), "{err}");
        let err = expand("conf.d", d, &env).err().unwrap_or_default();
        assert!(err.contains("write `conf.d/*.toml`"), "{err}");
    }

    /// Writes `files` (path, text) under a new folder; loads `config.toml`.
    fn load(
        files: &[(&str, &str)],
    ) -> (
        tempfile::TempDir,
        Result<super::super::Config, Vec<Diagnostic>>,
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        for (rel, text) in files {
            let p = dir.path().join(rel);
            std::fs::create_dir_all(p.parent().unwrap_or(dir.path())).unwrap();
            let text = text.replace("{dir}", &dir.path().display().to_string());
            std::fs::write(&p, text).unwrap();
        }
        let env = Env {
            home: Some(dir.path().join("home")),
            ..Env::default()
        };
        let c = super::super::Config::load(&dir.path().join("config.toml"), &env);
        (dir, c)
    }

    const MAIN: &str = "include = [\"conf.d/*.toml\"]\n[global]\nrestic_password_file = \"pw\"\n[destinations.local]\ntype = \"local\"\npath = \"repo\"\n";

    #[test]
    fn relative_paths_of_an_included_file_are_taken_from_its_folder() {
        let (dir, c) = load(&[
            ("config.toml", MAIN),
            (
                "conf.d/wiki.toml",
                r#"[destinations.nas]
type = "local"
url = "local:repos/nas"
password_file = "~/nas.pw"

[notifiers.ops]
type = "ntfy"
url = "https://ntfy.example/ops"
token_file = "ntfy.token"

[profiles.pg]
[[profiles.pg.config.dumps]]
name = "db"
type = "postgres"
container = "pg"
password_file = "pg.pw"

[services.wiki]
profile = "pg"
targets = ["nas", "local"]
[services.wiki.config]
paths = ["/srv/wiki"]
"#,
            ),
        ]);
        let c = c.unwrap();
        let d = dir.path();
        let nas = &c.destinations["nas"].raw;
        assert_eq!(
            nas.url.as_deref(),
            Some(d.join("conf.d/repos/nas").to_str().unwrap_or("?"))
        );
        assert_eq!(
            nas.password_file.as_deref(),
            Some(d.join("home/nas.pw").to_str().unwrap_or("?"))
        );
        // The main file's own destination still follows the main file.
        assert_eq!(
            c.destinations["local"].raw.path.as_deref(),
            Some(d.join("repo").to_str().unwrap_or("?"))
        );
        let dumps = serde_json::to_string(&c.services[0].dumps).unwrap_or_default();
        assert!(
            dumps.contains(&format!("\"{}\"", d.join("conf.d/pg.pw").display())),
            "{dumps}"
        );
        match &c.notify.notifiers[0].kind {
            super::super::notify::NotifierKind::Ntfy { token_file, .. } => {
                assert_eq!(
                    token_file.as_deref(),
                    Some(d.join("conf.d/ntfy.token").as_path())
                );
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            c.services[0].file.as_deref(),
            Some(d.join("conf.d/wiki.toml").as_path())
        );
    }

    #[test]
    fn either_service_form_mixes_with_the_other_across_files() {
        let array_main = "include = [\"conf.d/*.toml\"]\n[global]\nrestic_password_file = \"pw\"\n[destinations.local]\ntype = \"local\"\npath = \"repo\"\n[[services]]\nname = \"web\"\ntargets = [\"local\"]\n[services.config]\npaths = [\"/srv/web\"]\n";
        let table = "[services.wiki]\ntargets = [\"local\"]\n[services.wiki.config]\npaths = [\"/srv/wiki\"]\n";
        let array = "[[services]]\nname = \"db\"\ntargets = [\"local\"]\n[services.config]\npaths = [\"/srv/db\"]\n";
        for main in [MAIN, array_main] {
            let (_dir, c) = load(&[
                ("config.toml", main),
                ("conf.d/a.toml", array),
                ("conf.d/b.toml", table),
            ]);
            let c = c.unwrap();
            let names: Vec<&str> = c.services.iter().map(|s| s.name.as_str()).collect();
            let want: &[&str] = if main == MAIN {
                &["db", "wiki"]
            } else {
                &["web", "db", "wiki"]
            };
            assert_eq!(names, want);
        }
        // An error in an included `[[services]]` entry points at that entry.
        let (dir, c) = load(&[
            ("config.toml", array_main),
            (
                "conf.d/a.toml",
                "[[services]]\nname = \"db\"\ntargets = [\"nope\"]\n[services.config]\npaths = [\"/srv/db\"]\n\n[[services]]\ntargets = [\"local\"]\n",
            ),
        ]);
        let errors: Vec<String> = c
            .err()
            .unwrap_or_default()
            .iter()
            .map(ToString::to_string)
            .collect();
        let a = dir.path().join("conf.d/a.toml");
        assert_eq!(
            errors,
            [
                format!(
                    "{}:3:12: service `db` targets destination `nope`, which is not defined; defined destinations: `local`",
                    a.display()
                ),
                format!(
                    "{}:7:1: a `[[services]]` entry needs a `name` key",
                    a.display()
                ),
            ]
        );
    }

    #[test]
    fn errors_of_array_form_services_stay_in_their_own_files() {
        // The main file's first entry does not parse: its second entry
        // keeps the locator path `services.1` all the same.
        let main = "include = [\"conf.d/*.toml\"]\n[global]\nrestic_password_file = \"pw\"\n[destinations.local]\ntype = \"local\"\npath = \"repo\"\n\n[[services]]\nname = \"broken\"\ntargets = 5\n\n[[services]]\nname = \"web\"\ntargets = [\"nope1\"]\n[services.config]\npaths = [\"/srv/web\"]\n";
        let entry = |name: &str, target: &str| {
            format!(
                "[[services]]\nname = \"{name}\"\ntargets = [\"{target}\"]\n[services.config]\npaths = [\"/srv/x\"]\n"
            )
        };
        let (dir, c) = load(&[
            ("config.toml", main),
            ("conf.d/a.toml", &entry("db", "nope2")),
            ("conf.d/b.toml", &entry("mail", "nope3")),
        ]);
        let errors: Vec<String> = c
            .err()
            .unwrap_or_default()
            .iter()
            .map(|d| format!("{}:{}: {}", d.file.display(), d.line, d.message))
            .collect();
        let at = |f: &str| dir.path().join(f).display().to_string();
        let undefined = |svc: &str, t: &str| {
            format!(
                "service `{svc}` targets destination `{t}`, which is not defined; defined destinations: `local`"
            )
        };
        assert_eq!(
            errors,
            [
                format!(
                    "{}:10: `targets` in `[[services]]` must be a list, like `[\"a\", \"b\"]`, not the number 5",
                    at("config.toml")
                ),
                format!("{}:14: {}", at("config.toml"), undefined("web", "nope1")),
                format!("{}:3: {}", at("conf.d/a.toml"), undefined("db", "nope2")),
                format!("{}:3: {}", at("conf.d/b.toml"), undefined("mail", "nope3")),
            ]
        );
    }

    #[test]
    fn each_file_is_read_once_and_the_main_file_never_again() {
        let main = MAIN.replace(
            "include = [\"conf.d/*.toml\"]",
            "include = [\"*.toml\", \"conf.d/*.toml\", \"conf.d/a.toml\"]",
        );
        let svc =
            "[services.a]\ntargets = [\"local\"]\n[services.a.config]\npaths = [\"/srv/a\"]\n";
        let (dir, c) = load(&[("config.toml", &main), ("conf.d/a.toml", svc)]);
        let c = c.unwrap();
        let files: Vec<PathBuf> = c
            .files
            .unwrap_or_default()
            .into_iter()
            .map(|f| f.file)
            .collect();
        assert_eq!(
            files,
            [
                dir.path().join("config.toml"),
                dir.path().join("conf.d/a.toml")
            ]
        );
    }

    #[test]
    fn the_legacy_discord_webhook_is_the_notifier_discord() {
        let main =
            format!("{MAIN}[notifications]\ndiscord_webhook_url = \"https://discord.example/x\"\n");
        let (dir, c) = load(&[
            ("config.toml", &main),
            (
                "conf.d/n.toml",
                "[notifiers.discord]\ntype = \"discord\"\nurl = \"https://discord.example/y\"\n",
            ),
        ]);
        let errors: Vec<String> = c
            .err()
            .unwrap_or_default()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            errors,
            [format!(
                "{}:1:12: notifier `discord` is already defined in `{}` (line 8); a name may be defined once across the main file and its included files; rename or remove one",
                dir.path().join("conf.d/n.toml").display(),
                dir.path().join("config.toml").display()
            )]
        );
    }
}
