//! The original restic-manager's own settings that have a modern form:
//! `strategy = "appwrite"` and `strategy = "immich"` (with their
//! `mariadb_*` / `postgres_*` / `library_path` / `*_repo_suffix` keys in
//! `[services.NAME.config]`), and `long_running_threshold_minutes` written in
//! `[notifications]`, as the original README shows it.
//!
//! The translation happens on the raw configuration, before resolution, so
//! the translated service is checked like any other. Each translation gives
//! one warning holding the same service in today's form, as TOML that can
//! replace the old tables; `validate` and `config show` print it.

use super::Diagnostic;
use super::load::{Locator, RawConfig, indent};
use super::schema::{DumpRaw, ServiceConfigRaw, ServiceRaw};

/// What translating found: warnings (the config loads) and errors.
#[derive(Debug, Default)]
pub struct Translated {
    pub warnings: Vec<Diagnostic>,
    pub errors: Vec<Diagnostic>,
}

/// The keys of each original strategy, for "belongs to" errors.
const APPWRITE_KEYS: &[&str] = &["mariadb_container", "mariadb_database", "mariadb_user"];
const IMMICH_KEYS: &[&str] = &[
    "postgres_container",
    "postgres_database",
    "postgres_user",
    "library_path",
    "database_repo_suffix",
    "library_repo_suffix",
];

/// The legacy keys set in a `config` table, in schema order.
fn set_keys(c: &ServiceConfigRaw) -> Vec<&'static str> {
    let mut out = Vec::new();
    macro_rules! chk {
        ($($f:ident),*) => { $( if c.$f.is_some() { out.push(stringify!($f)); } )* };
    }
    chk!(
        mariadb_container,
        mariadb_database,
        mariadb_user,
        postgres_container,
        postgres_database,
        postgres_user,
        library_path,
        database_repo_suffix,
        library_repo_suffix
    );
    out
}

fn clear_legacy(c: &mut ServiceConfigRaw) {
    c.mariadb_container = None;
    c.mariadb_database = None;
    c.mariadb_user = None;
    c.postgres_container = None;
    c.postgres_database = None;
    c.postgres_user = None;
    c.library_path = None;
    c.database_repo_suffix = None;
    c.library_repo_suffix = None;
}

/// Translates what has a modern form, in place.
pub fn translate(raw: &mut RawConfig, loc: &Locator) -> Translated {
    let mut out = Translated::default();
    notifications_threshold(raw, loc, &mut out);
    // A profile holds no database of its own: the original keys name one
    // service's containers.
    for (pname, p) in &raw.profiles {
        for key in p.config.as_ref().map(set_keys).unwrap_or_default() {
            out.errors.push(loc.at(
                &format!("profiles.{pname}.config.{key}"),
                format!(
                    "profile `{pname}`: `{key}` names one service's database or folder; move it to the `[services.NAME.config]` table of the service that uses it"
                ),
            ));
        }
    }
    let array_form = raw.array_form;
    for (name, s, path) in &mut raw.services {
        let strategy = s.strategy.clone().or_else(|| {
            s.profile
                .as_ref()
                .and_then(|p| raw.profiles.get(p))
                .and_then(|p| p.strategy.clone())
        });
        let strategy_at = if s.strategy.is_some() {
            format!("{path}.strategy")
        } else {
            path.clone()
        };
        match strategy.as_deref() {
            Some("appwrite") => appwrite(name, s, path, &strategy_at, array_form, loc, &mut out),
            Some("immich") => immich(name, s, path, &strategy_at, array_form, loc, &mut out),
            other => {
                // A generic (or unknown) strategy with the original keys.
                let Some(c) = s.config.as_ref() else { continue };
                for key in set_keys(c) {
                    let owner = if APPWRITE_KEYS.contains(&key) {
                        "appwrite"
                    } else {
                        "immich"
                    };
                    let now = other.unwrap_or("generic");
                    out.errors.push(loc.at(
                        &format!("{path}.config.{key}"),
                        format!(
                            "service `{name}`: `{key}` belongs to the original tool's `strategy = \"{owner}\"`, and this service's strategy is `{now}`; set `strategy = \"{owner}\"` to have it translated, or remove the key and describe the dump in `[[services.{name}.config.dumps]]`"
                        ),
                    ));
                }
            }
        }
    }
    out
}

/// `[notifications] long_running_threshold_minutes` means the `[global]` key.
fn notifications_threshold(raw: &mut RawConfig, loc: &Locator, out: &mut Translated) {
    let Some(v) = raw
        .notifications
        .as_ref()
        .and_then(|n| n.long_running_threshold_minutes)
    else {
        return;
    };
    let at = "notifications.long_running_threshold_minutes";
    match raw.global.long_running_threshold_minutes {
        Some(g) if g != v => out.errors.push(loc.at(
            at,
            format!(
                "`long_running_threshold_minutes` is {v} in `[notifications]` and {g} in `[global]`; keep one of them"
            ),
        )),
        Some(_) => {}
        None if v == 0 => out.errors.push(loc.at(
            at,
            "`long_running_threshold_minutes` must be greater than 0",
        )),
        None => raw.global.long_running_threshold_minutes = Some(v),
    }
}

/// Keys of the other strategy are errors.
fn foreign_keys(
    name: &str,
    path: &str,
    strategy: &str,
    foreign: &[&str],
    c: &ServiceConfigRaw,
    loc: &Locator,
    out: &mut Translated,
) {
    for key in set_keys(c).into_iter().filter(|k| foreign.contains(k)) {
        out.errors.push(loc.at(
            &format!("{path}.config.{key}"),
            format!(
                "service `{name}`: `{key}` does not apply to `strategy = \"{strategy}\"`; remove it"
            ),
        ));
    }
}

fn nonempty(v: Option<&String>, default: &str) -> String {
    v.filter(|s| !s.trim().is_empty())
        .map_or_else(|| default.to_string(), Clone::clone)
}

/// A dump named `NAME-db` unless the service already has one by that name.
fn dump_name(name: &str, c: &ServiceConfigRaw) -> String {
    let taken = |n: &str| {
        c.dumps
            .iter()
            .flatten()
            .any(|d| d.name.as_deref() == Some(n))
    };
    let base = format!("{name}-db");
    if !taken(&base) {
        return base;
    }
    (2..)
        .map(|i| format!("{base}{i}"))
        .find(|n| !taken(n))
        .unwrap_or(base)
}

fn appwrite(
    name: &str,
    s: &mut ServiceRaw,
    path: &str,
    strategy_at: &str,
    array_form: bool,
    loc: &Locator,
    out: &mut Translated,
) {
    let mut c = s.config.take().unwrap_or_default();
    foreign_keys(name, path, "appwrite", IMMICH_KEYS, &c, loc, out);
    let container = nonempty(c.mariadb_container.as_ref(), "appwrite-mariadb");
    let database = nonempty(c.mariadb_database.as_ref(), "appwrite");
    let user = nonempty(c.mariadb_user.as_ref(), "root");
    let dump = DumpRaw {
        name: Some(dump_name(name, &c)),
        kind: Some("mariadb".to_string()),
        container: Some(container.clone()),
        database: Some(database.clone()),
        user: Some(user.clone()),
        ..DumpRaw::default()
    };
    clear_legacy(&mut c);
    c.dumps.get_or_insert_with(Vec::new).push(dump);
    s.config = Some(c);
    s.strategy = Some("generic".to_string());
    let volumes = s
        .config
        .as_ref()
        .and_then(|c| c.volumes.as_ref())
        .map_or(0, Vec::len);
    let pw = if user == "root" {
        "`MARIADB_ROOT_PASSWORD` or `MYSQL_ROOT_PASSWORD`"
    } else {
        "`MARIADB_PASSWORD` or `MYSQL_PASSWORD` (for `MARIADB_USER` / `MYSQL_USER`)"
    };
    let vols = match volumes {
        0 => String::new(),
        1 => "; its volume is backed up as before".to_string(),
        n => format!("; its {n} volumes are backed up as before"),
    };
    let what = format!(
        "`strategy = \"appwrite\"` of the original tool is translated: database `{database}` is dumped with `mariadb-dump` run inside container `{container}` (docker exec) as user `{user}`, with the password from the container's own {pw}, and streamed into restic as dump `{}`{vols}",
        dump_name_of(s),
    );
    out.warnings
        .push(loc.at(strategy_at, modern(name, s, array_form, &what)));
}

fn immich(
    name: &str,
    s: &mut ServiceRaw,
    path: &str,
    strategy_at: &str,
    array_form: bool,
    loc: &Locator,
    out: &mut Translated,
) {
    let mut c = s.config.take().unwrap_or_default();
    foreign_keys(name, path, "immich", APPWRITE_KEYS, &c, loc, out);
    let container = nonempty(c.postgres_container.as_ref(), "immich_postgres");
    let database = nonempty(c.postgres_database.as_ref(), "immich");
    let user = nonempty(c.postgres_user.as_ref(), "postgres");
    let library = c.library_path.clone().filter(|l| !l.trim().is_empty());
    if library.is_none() && c.paths.as_ref().is_none_or(Vec::is_empty) {
        out.errors.push(loc.at(
            &format!("{path}.config"),
            format!(
                "service `{name}`: `strategy = \"immich\"` needs `library_path`, Immich's upload folder (its `UPLOAD_LOCATION`), e.g. `library_path = \"/srv/immich/library\"`"
            ),
        ));
    }
    // The original kept the database and the library in two repositories
    // (`<service><suffix>`). Here a service has one repository per
    // destination, and the dump's snapshots are told apart by their tag.
    let suffixes: Vec<&str> = [
        ("database_repo_suffix", &c.database_repo_suffix),
        ("library_repo_suffix", &c.library_repo_suffix),
    ]
    .into_iter()
    .filter(|(_, v)| v.is_some())
    .map(|(k, _)| k)
    .collect();
    if let Some(first) = suffixes.first() {
        let old_db = c.database_repo_suffix.as_deref().unwrap_or("");
        out.warnings.push(loc.at(
            &format!("{path}.config.{first}"),
            format!(
                "service `{name}`: {} ignored: the original tool kept the database and the library in two repositories (`{name}{old_db}` and `{name}{}`); now both go into the service's one repository per destination (`<destination>/{name}`), where the database dump's snapshots carry the tag `dump:{}` and the library's do not, so `snapshots`, retention (grouped by tags) and `restore --dump {}` keep them apart; snapshots already in the old repositories stay there, readable with restic; remove the key{} to silence this warning",
                suffixes
                    .iter()
                    .map(|k| format!("`{k}`"))
                    .collect::<Vec<_>>()
                    .join(" and "),
                c.library_repo_suffix.as_deref().unwrap_or(""),
                dump_name(name, &c),
                dump_name(name, &c),
                if suffixes.len() == 1 { "" } else { "s" },
            ),
        ));
    }
    let dump = DumpRaw {
        name: Some(dump_name(name, &c)),
        kind: Some("postgres".to_string()),
        container: Some(container.clone()),
        database: Some(database.clone()),
        user: Some(user.clone()),
        ..DumpRaw::default()
    };
    clear_legacy(&mut c);
    if let Some(l) = &library {
        let paths = c.paths.get_or_insert_with(Vec::new);
        if !paths.contains(l) {
            paths.push(l.clone());
        }
    }
    c.dumps.get_or_insert_with(Vec::new).push(dump);
    s.config = Some(c);
    s.strategy = Some("generic".to_string());
    let what = format!(
        "`strategy = \"immich\"` of the original tool is translated: database `{database}` is dumped with `pg_dump --format=custom` run inside container `{container}` (docker exec) as user `{user}` (a password, if one is needed, comes from the container's own `POSTGRES_PASSWORD`), and streamed into restic as dump `{}`{}",
        dump_name_of(s),
        library.map_or_else(String::new, |l| format!(
            "; `library_path` `{l}` is backed up as a path"
        )),
    );
    out.warnings
        .push(loc.at(strategy_at, modern(name, s, array_form, &what)));
}

/// The name of the dump a translation added (the last one).
fn dump_name_of(s: &ServiceRaw) -> String {
    s.config
        .as_ref()
        .and_then(|c| c.dumps.as_ref())
        .and_then(|d| d.last())
        .and_then(|d| d.name.clone())
        .unwrap_or_default()
}

/// The warning: what was translated, then the service in today's form.
fn modern(name: &str, s: &ServiceRaw, array_form: bool, what: &str) -> String {
    let tables = if array_form {
        "its `[[services]]` entry and `[services.config]` table".to_string()
    } else {
        format!("`[services.{name}]` and its sub-tables")
    };
    format!(
        "service `{name}`: {what}. The same service in today's form, to replace {tables}:\n\n{}",
        indent(&render(name, s, array_form))
    )
}

/// The service as TOML, under its own table headers, keys in schema order.
pub fn render(name: &str, s: &ServiceRaw, array_form: bool) -> String {
    #[derive(serde::Serialize)]
    struct Named<'a> {
        services: std::collections::BTreeMap<&'a str, &'a ServiceRaw>,
    }
    #[derive(serde::Serialize)]
    struct Listed<'a> {
        services: [&'a ServiceRaw; 1],
    }
    let text = if array_form {
        let mut entry = s.clone();
        entry.name = Some(name.to_string());
        toml::to_string(&Listed { services: [&entry] })
    } else {
        toml::to_string(&Named {
            services: std::iter::once((name, s)).collect(),
        })
    };
    text.unwrap_or_else(|e| format!("# cannot show the service as TOML: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn translated(text: &str) -> (RawConfig, Translated) {
        let (mut raw, loc, errors) =
            super::super::load::parse_str(Path::new("/etc/rm/config.toml"), text).unwrap();
        assert!(errors.is_empty(), "{errors:?}");
        let t = translate(&mut raw, &loc);
        (raw, t)
    }

    #[test]
    fn appwrite_becomes_a_mariadb_dump_in_its_container_plus_volumes() {
        let (raw, t) = translated(
            "[services.appwrite]\nstrategy = \"appwrite\"\n[services.appwrite.config]\nmariadb_container = \"aw-db\"\nmariadb_database = \"aw\"\nmariadb_user = \"root\"\nvolumes = [\"aw_uploads\"]\n",
        );
        assert!(t.errors.is_empty(), "{:?}", t.errors);
        let s = &raw.services[0].1;
        assert_eq!(s.strategy.as_deref(), Some("generic"));
        let c = s.config.as_ref().expect("no config");
        assert_eq!(c.volumes.as_deref(), Some(&["aw_uploads".to_string()][..]));
        let d = &c.dumps.as_ref().expect("no dumps")[0];
        assert_eq!(
            (d.name.as_deref(), d.kind.as_deref(), d.container.as_deref()),
            (Some("appwrite-db"), Some("mariadb"), Some("aw-db"))
        );
        assert_eq!(
            (d.database.as_deref(), d.user.as_deref()),
            (Some("aw"), Some("root"))
        );
        assert!(c.mariadb_container.is_none());
        assert_eq!(t.warnings.len(), 1);
        let w = &t.warnings[0].message;
        assert!(w.contains("    [[services.appwrite.config.dumps]]"), "{w}");
        assert!(w.contains("MARIADB_ROOT_PASSWORD"), "{w}");
    }

    #[test]
    fn keys_of_the_other_strategy_are_refused() {
        let (_, t) = translated(
            "[services.a]\nstrategy = \"generic\"\n[services.a.config]\npaths = [\"/x\"]\nmariadb_container = \"c\"\n",
        );
        assert_eq!(t.errors.len(), 1);
        assert!(
            t.errors[0]
                .message
                .contains("belongs to the original tool's `strategy = \"appwrite\"`")
        );
        let (_, t) = translated(
            "[services.a]\nstrategy = \"immich\"\n[services.a.config]\nlibrary_path = \"/x\"\nmariadb_user = \"root\"\n",
        );
        assert_eq!(t.errors.len(), 1, "{:?}", t.errors);
        assert!(
            t.errors[0]
                .message
                .contains("does not apply to `strategy = \"immich\"`")
        );
    }

    #[test]
    fn notifications_threshold_fills_the_global_one() {
        let (raw, t) = translated("[notifications]\nlong_running_threshold_minutes = 90\n");
        assert!(t.errors.is_empty());
        assert_eq!(raw.global.long_running_threshold_minutes, Some(90));
        let (_, t) = translated(
            "[global]\nlong_running_threshold_minutes = 60\n[notifications]\nlong_running_threshold_minutes = 90\n",
        );
        assert!(t.errors[0].message.contains("keep one of them"));
    }
}
