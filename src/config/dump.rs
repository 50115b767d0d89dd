//! `[[services.NAME.config.dumps]]`: the resolved, checked form of a dump.
//!
//! A dump is a program whose stdout is one file in a snapshot. Presets know
//! how to dump and restore PostgreSQL, MariaDB/MySQL and SQLite; `command`
//! takes any shell command. Checking happens here so that nothing starts
//! before every dump of every service is known to make sense.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::schema::{DUMP_TYPES, DumpRaw};
use super::{Env, ValueError};

/// Which MariaDB-family client set to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Flavor {
    /// `mariadb-dump` / `mariadb`.
    Mariadb,
    /// `mysqldump` / `mysql`.
    Mysql,
}

/// How to reach a database server. The password is only ever a file name
/// here: its content goes to the dump's environment, never to argv.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Connection {
    pub user: Option<String>,
    pub host: Option<String>,
    pub port: Option<u16>,
    pub password_file: Option<PathBuf>,
}

/// What produces the dump.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum DumpSource {
    /// `pg_dump --format=custom DATABASE`, or `pg_dumpall` (plain SQL)
    /// when no database is named.
    Postgres {
        database: Option<String>,
        connection: Connection,
    },
    /// `mariadb-dump` / `mysqldump --single-transaction`, one database or all.
    Mariadb {
        flavor: Flavor,
        database: Option<String>,
        connection: Connection,
    },
    /// `sqlite3 PATH .dump`: SQL text read inside one transaction.
    Sqlite { path: PathBuf },
    /// `sh -c COMMAND`.
    Command { command: String },
}

/// One dump of a service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Dump {
    pub name: String,
    pub source: DumpSource,
    /// The path of the dump inside the snapshot, without the leading `/`.
    pub filename: String,
    /// Run the dump inside this container (Docker Engine API exec).
    pub container: Option<String>,
    /// Replaces the preset's restore command (`sh -c`, dump on stdin).
    pub restore_command: Option<String>,
    /// Limit for this dump alone; the service's remaining time otherwise.
    pub timeout_seconds: Option<u64>,
    /// Replaces the preset's drill check (`sh -c`, dump on stdin).
    pub verify_command: Option<String>,
    /// Drills load the dump into this database on the same server (dropped
    /// and recreated first, dropped afterwards); postgres/mariadb/mysql.
    pub verify_scratch_database: Option<String>,
}

impl Dump {
    /// A dump no longer in the configuration, known only by its name: no
    /// command, file name, restore or verify command of its own.
    pub fn unconfigured(name: &str) -> Self {
        Dump {
            name: name.to_string(),
            source: DumpSource::Command {
                command: String::new(),
            },
            filename: String::new(),
            container: None,
            restore_command: None,
            timeout_seconds: None,
            verify_command: None,
            verify_scratch_database: None,
        }
    }

    /// The restic tag that marks this dump's snapshots.
    pub fn tag(&self) -> String {
        format!("dump:{}", self.name)
    }

    /// The preset's name, or `command`.
    pub fn kind(&self) -> &'static str {
        match &self.source {
            DumpSource::Postgres { .. } => "postgres",
            DumpSource::Mariadb {
                flavor: Flavor::Mariadb,
                ..
            } => "mariadb",
            DumpSource::Mariadb {
                flavor: Flavor::Mysql,
                ..
            } => "mysql",
            DumpSource::Sqlite { .. } => "sqlite",
            DumpSource::Command { .. } => "command",
        }
    }
}

/// A dump name: also part of a restic tag (no commas) and of messages.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

/// The default file name in the snapshot for a preset.
fn default_filename(name: &str, source: &DumpSource) -> String {
    match source {
        DumpSource::Postgres {
            database: Some(_), ..
        } => format!("{name}.pgdump"),
        DumpSource::Postgres { database: None, .. }
        | DumpSource::Mariadb { .. }
        | DumpSource::Sqlite { .. } => format!("{name}.sql"),
        DumpSource::Command { .. } => format!("{name}.dump"),
    }
}

/// Keys that belong to one preset only, for "key X does not apply" errors.
const SERVER_KEYS: &[&str] = &["database", "user", "host", "port", "password_file"];

fn expand(p: &str, env: &Env, docker_base: Option<&Path>) -> Result<PathBuf, ValueError> {
    let pb = match (p.strip_prefix("~/"), env.home.as_ref()) {
        (Some(rest), Some(home)) => home.join(rest),
        _ => PathBuf::from(p),
    };
    if pb.is_absolute() {
        return Ok(pb);
    }
    match docker_base {
        Some(b) => Ok(b.join(pb)),
        None => Err(ValueError::RelativePath(p.to_string())),
    }
}

/// Why `verify_scratch_database` cannot be used, if it cannot.
fn scratch_problem(scratch: &str, d: &DumpRaw, source: &DumpSource) -> Option<String> {
    let database = match source {
        DumpSource::Postgres { database, .. } | DumpSource::Mariadb { database, .. } => database,
        _ => {
            return Some(
                "`verify_scratch_database` applies only to `type = \"postgres\"`, `\"mariadb\"` or `\"mysql\"`".into(),
            );
        }
    };
    if scratch.is_empty()
        || scratch.len() > 63
        || !scratch
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return Some(format!(
            "`verify_scratch_database` `{scratch}` may only contain letters, digits and `_` (at most 63)"
        ));
    }
    let Some(db) = database else {
        return Some(
            "`verify_scratch_database` needs `database`: a dump of all databases cannot be loaded into one scratch database".into(),
        );
    };
    if db.eq_ignore_ascii_case(scratch) {
        return Some(format!(
            "`verify_scratch_database` is `{scratch}`, the dumped database itself; a drill drops and recreates it, so name another, e.g. `{db}_drill`"
        ));
    }
    if d.container.is_some() {
        return Some(
            "`verify_scratch_database` is not supported for a dump that runs inside a `container`; use `verify_command` instead".into(),
        );
    }
    if d.verify_command.is_some() {
        return Some(
            "`verify_scratch_database` and `verify_command` are both set; a drill runs one check, so keep one".into(),
        );
    }
    None
}

/// Where one dump entry's errors go: its config path and the service name
/// that prefixes every message.
struct Errors<'a> {
    service: &'a str,
    at: String,
    errors: &'a mut Vec<(String, String)>,
}

impl Errors<'_> {
    fn err(&mut self, key: Option<&str>, msg: String) {
        let path = key.map_or_else(|| self.at.clone(), |k| format!("{}.{k}", self.at));
        self.errors
            .push((path, format!("service `{}`: {msg}", self.service)));
    }
}

/// What resolving one entry needs besides the entry itself.
struct Inputs<'a> {
    docker_base: Option<&'a Path>,
    env: &'a Env,
}

/// Resolves a service's dump entries. `base` is the config path of the
/// list (e.g. `services.db.config.dumps`) for error locations; errors come
/// back as (config path, message) pairs.
pub fn resolve(
    service: &str,
    raw: &[DumpRaw],
    base: &str,
    docker_base: Option<&Path>,
    env: &Env,
) -> (Vec<Dump>, Vec<(String, String)>) {
    let mut out: Vec<Dump> = Vec::new();
    let mut errors = Vec::new();
    let inputs = Inputs { docker_base, env };
    for (i, d) in raw.iter().enumerate() {
        let mut e = Errors {
            service,
            at: format!("{base}.{i}"),
            errors: &mut errors,
        };
        if let Some(dump) = entry(i, d, &out, &inputs, &mut e) {
            out.push(dump);
        }
    }
    let mut files: Vec<&str> = out.iter().map(|d| d.filename.as_str()).collect();
    files.sort_unstable();
    if let Some(w) = files.windows(2).find(|w| w[0] == w[1]) {
        errors.push((
            base.to_string(),
            format!(
                "service `{service}`: two dumps store the same `filename` `{}`; give each its own",
                w[0]
            ),
        ));
    }
    (out, errors)
}

/// Resolves entry `i`; `None` when it has an error that stops it.
fn entry(
    i: usize,
    d: &DumpRaw,
    taken: &[Dump],
    inputs: &Inputs<'_>,
    e: &mut Errors<'_>,
) -> Option<Dump> {
    let name = entry_name(i, d, taken, e)?;
    let what = format!("dump `{name}`");
    if d.timeout_seconds == Some(0) {
        e.err(
            Some("timeout_seconds"),
            format!("{what}: `timeout_seconds` must be greater than 0"),
        );
    }
    let source = source(d, &what, inputs, e)?;
    let filename = filename(d, &name, &source, &what, e)?;
    check_optional(d, &source, &what, e);
    Some(Dump {
        name,
        source,
        filename,
        container: d.container.clone(),
        restore_command: d.restore_command.clone(),
        timeout_seconds: d.timeout_seconds,
        verify_command: d.verify_command.clone(),
        verify_scratch_database: d.verify_scratch_database.clone(),
    })
}

/// The entry's `name`: present, well-formed and not taken.
fn entry_name(i: usize, d: &DumpRaw, taken: &[Dump], e: &mut Errors<'_>) -> Option<String> {
    let Some(name) = d.name.clone().filter(|n| !n.trim().is_empty()) else {
        e.err(
            None,
            format!(
                "dump #{} has no `name`; add one, e.g. `name = \"app-db\"` (it becomes the snapshot tag `dump:NAME`)",
                i + 1
            ),
        );
        return None;
    };
    if !valid_name(&name) {
        e.err(
            Some("name"),
            format!(
                "dump name `{name}` may only contain letters, digits, `-`, `_` and `.` (at most 64)"
            ),
        );
        return None;
    }
    if taken.iter().any(|o| o.name == name) {
        e.err(
            Some("name"),
            format!("dump name `{name}` is used twice; names must be unique within a service"),
        );
        return None;
    }
    Some(name)
}

/// The server keys (`database`, `user`, …) the entry sets.
fn set_server_keys(d: &DumpRaw) -> Vec<&'static str> {
    SERVER_KEYS
        .iter()
        .copied()
        .filter(|k| match *k {
            "database" => d.database.is_some(),
            "user" => d.user.is_some(),
            "host" => d.host.is_some(),
            "port" => d.port.is_some(),
            _ => d.password_file.is_some(),
        })
        .collect()
}

/// What produces the dump: a preset (`type`) or a `command`.
fn source(d: &DumpRaw, what: &str, inputs: &Inputs<'_>, e: &mut Errors<'_>) -> Option<DumpSource> {
    match (d.kind.as_deref(), &d.command) {
        (Some(_), Some(_)) => {
            e.err(
                Some("command"),
                format!(
                    "{what} has both `type` and `command`; use a preset (`type`) or your own `command`, not both"
                ),
            );
            None
        }
        (None, None) => {
            e.err(
                None,
                format!(
                    "{what} needs `type` (one of {}) or a `command` whose output is the dump",
                    DUMP_TYPES.join(", ")
                ),
            );
            None
        }
        (None, Some(c)) => command_source(d, c, what, e),
        (Some(kind @ ("postgres" | "mariadb" | "mysql")), None) => {
            server_source(d, kind, what, inputs, e)
        }
        (Some("sqlite"), None) => sqlite_source(d, what, inputs, e),
        (Some(other), None) => {
            let hint = super::did_you_mean(other, DUMP_TYPES).unwrap_or_default();
            e.err(
                Some("type"),
                format!(
                    "{what}: unknown dump type `{other}`; valid types are {}{hint}",
                    DUMP_TYPES.join(", ")
                ),
            );
            None
        }
    }
}

/// A `command` dump: the preset keys do not apply.
fn command_source(d: &DumpRaw, c: &str, what: &str, e: &mut Errors<'_>) -> Option<DumpSource> {
    if c.trim().is_empty() {
        e.err(Some("command"), format!("{what}: `command` is empty"));
        return None;
    }
    let server_keys = set_server_keys(d);
    if let Some(k) = server_keys.first().or(d.path.as_ref().map(|_| &"path")) {
        e.err(
            Some(k),
            format!(
                "{what}: `{k}` applies only to a preset (`type`); a `command` dump gets its settings from the command itself"
            ),
        );
    }
    Some(DumpSource::Command {
        command: c.to_string(),
    })
}

/// A PostgreSQL or MariaDB/MySQL preset.
fn server_source(
    d: &DumpRaw,
    kind: &str,
    what: &str,
    inputs: &Inputs<'_>,
    e: &mut Errors<'_>,
) -> Option<DumpSource> {
    if d.path.is_some() {
        e.err(
            Some("path"),
            format!(
                "{what}: `path` applies only to `type = \"sqlite\"`; a {kind} dump is set with `database`, `user`, `host`, `port`"
            ),
        );
    }
    let password_file = match &d.password_file {
        Some(p) => match expand(p, inputs.env, inputs.docker_base) {
            Ok(p) => Some(p),
            Err(msg) => {
                e.err(
                    Some("password_file"),
                    format!("{what}: `password_file` {msg}"),
                );
                return None;
            }
        },
        None => None,
    };
    let connection = Connection {
        user: d.user.clone(),
        host: d.host.clone(),
        port: d.port,
        password_file,
    };
    if d.database.as_ref().is_some_and(|x| x.trim().is_empty()) {
        e.err(
            Some("database"),
            format!(
                "{what}: `database` is empty; name a database, or remove the key to dump all of them"
            ),
        );
    }
    let database = d.database.clone();
    Some(match kind {
        "postgres" => DumpSource::Postgres {
            database,
            connection,
        },
        "mysql" => DumpSource::Mariadb {
            flavor: Flavor::Mysql,
            database,
            connection,
        },
        _ => DumpSource::Mariadb {
            flavor: Flavor::Mariadb,
            database,
            connection,
        },
    })
}

/// A SQLite preset: a database file, not a server.
fn sqlite_source(
    d: &DumpRaw,
    what: &str,
    inputs: &Inputs<'_>,
    e: &mut Errors<'_>,
) -> Option<DumpSource> {
    if let Some(k) = set_server_keys(d).first() {
        e.err(
            Some(k),
            format!(
                "{what}: `{k}` does not apply to `type = \"sqlite\"`; set `path` to the database file"
            ),
        );
    }
    let Some(p) = d.path.as_deref().filter(|p| !p.trim().is_empty()) else {
        e.err(
            None,
            format!(
                "{what}: `type = \"sqlite\"` needs `path`, the database file, e.g. `path = \"/srv/app/app.db\"`"
            ),
        );
        return None;
    };
    // Inside a container the path is the container's own.
    let path = if d.container.is_some() {
        Ok(PathBuf::from(p))
    } else {
        expand(p, inputs.env, inputs.docker_base)
    };
    match path {
        Ok(path) => Some(DumpSource::Sqlite { path }),
        Err(msg) => {
            e.err(Some("path"), format!("{what}: `path` {msg}"));
            None
        }
    }
}

/// The file name the dump gets in the snapshot.
fn filename(
    d: &DumpRaw,
    name: &str,
    source: &DumpSource,
    what: &str,
    e: &mut Errors<'_>,
) -> Option<String> {
    let Some(f) = &d.filename else {
        return Some(default_filename(name, source));
    };
    let f = f.trim_start_matches('/');
    if f.is_empty()
        || f.ends_with('/')
        || f.split('/').any(|c| c.is_empty() || c == "." || c == "..")
    {
        e.err(
            Some("filename"),
            format!(
                "{what}: `filename` `{f}` is not a file path; use a name like `app.sql` or `db/app.sql`"
            ),
        );
        return None;
    }
    Some(f.to_string())
}

/// The keys that only refine a dump: set but empty is an error.
fn check_optional(d: &DumpRaw, source: &DumpSource, what: &str, e: &mut Errors<'_>) {
    if let Some(c) = &d.container
        && c.trim().is_empty()
    {
        e.err(Some("container"), format!("{what}: `container` is empty"));
    }
    if let Some(c) = &d.restore_command
        && c.trim().is_empty()
    {
        e.err(
            Some("restore_command"),
            format!("{what}: `restore_command` is empty; remove it to use the preset's"),
        );
    }
    if let Some(c) = &d.verify_command
        && c.trim().is_empty()
    {
        e.err(
            Some("verify_command"),
            format!("{what}: `verify_command` is empty; remove it to use the preset's check"),
        );
    }
    if let Some(scratch) = &d.verify_scratch_database
        && let Some(msg) = scratch_problem(scratch, d, source)
    {
        e.err(Some("verify_scratch_database"), format!("{what}: {msg}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(toml_text: &str) -> DumpRaw {
        toml::from_str(toml_text).unwrap()
    }

    fn one(d: DumpRaw) -> Result<Dump, String> {
        let (mut v, e) = resolve(
            "svc",
            &[d],
            "services.svc.config.dumps",
            None,
            &Env::default(),
        );
        match e.into_iter().next() {
            Some((_, m)) => Err(m),
            None => Ok(v.remove(0)),
        }
    }

    #[test]
    fn presets_get_their_default_file_names() {
        for (text, file) in [
            ("name='a'\ntype='postgres'\ndatabase='shop'", "a.pgdump"),
            ("name='a'\ntype='postgres'", "a.sql"),
            ("name='a'\ntype='mariadb'\ndatabase='shop'", "a.sql"),
            ("name='a'\ntype='sqlite'\npath='/x/a.db'", "a.sql"),
            ("name='a'\ncommand='echo hi'", "a.dump"),
            (
                "name='a'\ncommand='echo hi'\nfilename='/db/x.txt'",
                "db/x.txt",
            ),
        ] {
            assert_eq!(
                one(raw(text)).map(|d| d.filename),
                Ok(file.into()),
                "{text}"
            );
        }
    }

    #[test]
    fn mistakes_are_explained() {
        for (text, want) in [
            ("type='postgres'", "has no `name`"),
            ("name='a b'\ntype='postgres'", "may only contain"),
            ("name='a'", "needs `type`"),
            (
                "name='a'\ntype='postgres'\ncommand='x'",
                "both `type` and `command`",
            ),
            ("name='a'\ntype='postgress'", "did you mean `postgres`"),
            ("name='a'\ntype='sqlite'", "needs `path`"),
            (
                "name='a'\ntype='sqlite'\npath='/a'\nuser='u'",
                "`user` does not apply",
            ),
            (
                "name='a'\ncommand='x'\ndatabase='d'",
                "applies only to a preset",
            ),
            ("name='a'\ntype='mysql'\npath='/a'", "`path` applies only"),
            ("name='a'\ntype='sqlite'\npath='rel.db'", "docker_base"),
            (
                "name='a'\ncommand='x'\nfilename='../x'",
                "is not a file path",
            ),
            ("name='a'\ncommand='x'\ntimeout_seconds=0", "greater than 0"),
            (
                "name='a'\ncommand='x'\nverify_command=' '",
                "`verify_command` is empty",
            ),
            (
                "name='a'\ntype='postgres'\ndatabase='shop'\nverify_scratch_database='shop'",
                "the dumped database itself",
            ),
            (
                "name='a'\ntype='mariadb'\nverify_scratch_database='s'",
                "needs `database`",
            ),
            (
                "name='a'\ntype='sqlite'\npath='/a'\nverify_scratch_database='s'",
                "applies only to",
            ),
            (
                "name='a'\ntype='postgres'\ndatabase='d'\nverify_scratch_database='a;b'",
                "may only contain",
            ),
        ] {
            match one(raw(text)) {
                Ok(d) => panic!("{text}: accepted as {d:?}"),
                Err(m) => assert!(m.contains(want), "{text}: {m}"),
            }
        }
    }

    #[test]
    fn duplicate_names_and_files_are_refused() {
        let a = raw("name='a'\ncommand='x'\nfilename='f'");
        let b = raw("name='b'\ncommand='x'\nfilename='f'");
        let (_, e) = resolve("s", &[a.clone(), a.clone()], "d", None, &Env::default());
        assert!(e[0].1.contains("used twice"), "{e:?}");
        let (_, e) = resolve("s", &[a, b], "d", None, &Env::default());
        assert!(e[0].1.contains("same `filename`"), "{e:?}");
    }
}
