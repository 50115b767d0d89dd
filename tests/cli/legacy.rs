//! The original restic-manager's own files load: its example configuration
//! (built-in `appwrite` and `immich` strategies, translated into dumps run
//! through `docker exec`), its README's full example (mixed `[[services]]`
//! and `[services.NAME.config]`, whose printed fix must validate), and one
//! rule for relative paths.
//!
//! The fixtures in `tests/fixtures/original/` have the keys and structure of
//! the original files, with our own values. The end-to-end test runs the
//! translated services against real MariaDB and PostgreSQL servers in
//! Docker containers. No image can be pulled here, so the image is a
//! `docker import`ed skeleton (folders, `/etc/passwd`, merged-`/usr`
//! symlinks) and each container gets the host's own `/usr`, read-only:
//! Debian's `mariadbd`/`postgres` and their dump tools run inside the
//! container, as in the official images, configured the same way
//! (`MARIADB_ROOT_PASSWORD`, `POSTGRES_PASSWORD`, trust on the local socket).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::{Done, Scenario, import_image, pg_bin, require_component, watching_cmdlines};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/original");

fn fixture(name: &str) -> String {
    let p = Path::new(FIXTURES).join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
}

/// The TOML blocks of a message: the lines indented by four spaces after
/// the blank line that follows `marker`, de-indented.
fn printed_toml(message: &str, marker: &str) -> String {
    let Some((_, rest)) = message.split_once(marker) else {
        panic!("no {marker:?} in:\n{message}")
    };
    let mut out = Vec::new();
    for l in rest.trim_start_matches('\n').lines() {
        if let Some(t) = l.strip_prefix("    ") {
            out.push(t);
        } else if l.is_empty() {
            out.push("");
        } else {
            break;
        }
    }
    format!("{}\n", out.join("\n").trim_end())
}

/// The `warning: ` (or `error: `) messages of `stderr`, each with its
/// continuation lines; the "N errors in" summary ends the last one.
/// A scenario whose config is [`Scenario::simple`]'s preamble (lines 1 to
/// 7) and `services`.
fn with_services(services: &str) -> Scenario {
    let s = Scenario::new();
    s.simple(services);
    s
}

/// `validate` refuses the scenario's config: its path, and the errors.
fn refused(s: &Scenario) -> (String, Vec<String>) {
    let d = s.run(&["validate"]);
    d.code(2);
    let file = s.config_path().display().to_string();
    (file, messages(&d.stderr, "error: "))
}

fn messages(stderr: &str, prefix: &str) -> Vec<String> {
    let mut out: Vec<Vec<&str>> = Vec::new();
    let mut open = false;
    for line in stderr.lines() {
        let summary = !line.starts_with(' ') && line.contains(" error") && line.contains(" in `");
        if line.starts_with("warning: ") || line.starts_with("error: ") {
            open = line.starts_with(prefix);
            if open {
                out.push(vec![line]);
            }
        } else if summary {
            open = false;
        } else if open && let Some(m) = out.last_mut() {
            m.push(line);
        }
    }
    out.into_iter()
        .map(|m| m.join("\n").trim_end().to_string())
        .collect()
}

/// Removes `[services.NAME]` and its sub-tables (up to the next table that
/// is not one of them) from `text`.
fn without_service(text: &str, name: &str) -> String {
    let own = |l: &str| {
        let l = l.trim_start_matches('[');
        l.starts_with(&format!("services.{name}]")) || l.starts_with(&format!("services.{name}."))
    };
    let mut out = Vec::new();
    let mut skipping = false;
    for l in text.lines() {
        if l.starts_with('[') {
            skipping = own(l);
        }
        if !skipping {
            out.push(l);
        }
    }
    format!("{}\n", out.join("\n"))
}

#[test]
fn the_original_example_file_loads_with_one_warning_per_translation() {
    let s = Scenario::new();
    let file = s.write("etc/config.toml", &fixture("config.example.toml"));
    let file_s = file.display().to_string();
    let d = s.run(&["--config", &file_s, "validate"]);
    d.succeeds()
        .stdout_has("is valid")
        .stdout_has("7 services (7 enabled), 2 destinations, 10 repositories");
    let warnings = messages(&d.stderr, "warning: ");
    assert_eq!(warnings.len(), 3, "{}", d.stderr);
    let appwrite = &warnings[0];
    assert!(
        appwrite.starts_with(&format!("warning: {file_s}:84:1: service `appwrite`: `strategy = \"appwrite\"` of the original tool is translated: database `appwrite` is dumped with `mariadb-dump` run inside container `appwrite-mariadb` (docker exec) as user `root`, with the password from the container's own `MARIADB_ROOT_PASSWORD` or `MYSQL_ROOT_PASSWORD`, and streamed into restic as dump `appwrite-db`; its 6 volumes are backed up as before.")),
        "{appwrite}"
    );
    let immich = &warnings[1];
    assert!(
        immich.contains("service `immich`: `strategy = \"immich\"` of the original tool is translated: database `immich` is dumped with `pg_dump --format=custom` run inside container `immich_postgres` (docker exec) as user `postgres`"),
        "{immich}"
    );
    assert!(
        immich.contains(
            "`library_path` `/home/alex/containers/immich/library` is backed up as a path"
        ),
        "{immich}"
    );
    let suffixes = &warnings[2];
    assert!(
        suffixes.starts_with(&format!("warning: {file_s}:113:1: service `immich`: `database_repo_suffix` and `library_repo_suffix` ignored: the original tool kept the database and the library in two repositories (`immich-database` and `immich`); now both go into the service's one repository per destination (`<destination>/immich`), where the database dump's snapshots carry the tag `dump:immich-db`")),
        "{suffixes}"
    );

    // The printed modern form is the exact TOML a user pastes in place of
    // the old tables; the result validates without any warning.
    let appwrite_toml = printed_toml(
        appwrite,
        "to replace `[services.appwrite]` and its sub-tables:",
    );
    let immich_toml = printed_toml(immich, "to replace `[services.immich]` and its sub-tables:");
    assert_eq!(
        appwrite_toml,
        r#"[services.appwrite]
enabled = true
profile = "production"
description = "Appwrite backend"
schedule = "0 2 * * *"
strategy = "generic"
timeout_seconds = 7200

[services.appwrite.config]
volumes = ["appwrite_appwrite-uploads", "appwrite_appwrite-functions", "appwrite_appwrite-builds", "appwrite_appwrite-cache", "appwrite_appwrite-certificates", "appwrite_appwrite-config"]

[[services.appwrite.config.dumps]]
name = "appwrite-db"
type = "mariadb"
container = "appwrite-mariadb"
database = "appwrite"
user = "root"
"#
    );
    assert!(
        immich_toml.contains("[services.immich.config]\npaths = [\"/home/alex/containers/immich/library\"]\n\n[[services.immich.config.dumps]]\nname = \"immich-db\"\ntype = \"postgres\"\ncontainer = \"immich_postgres\"\ndatabase = \"immich\"\nuser = \"postgres\"\n"),
        "{immich_toml}"
    );
    let modern = without_service(
        &without_service(&fixture("config.example.toml"), "appwrite"),
        "immich",
    );
    let pasted = s.write(
        "etc/modern.toml",
        &format!("{modern}\n{appwrite_toml}\n{immich_toml}"),
    );
    let d = s.run(&["--config", &pasted.display().to_string(), "validate"]);
    d.succeeds().stdout_has("7 services (7 enabled)");
    assert!(!d.stderr.contains("warning"), "{}", d.stderr);

    // `config show` prints the same warnings, and `--json` carries them.
    let d = s.run(&["--config", &file_s, "config", "show"]);
    d.succeeds().stdout_has("[services.appwrite]");
    assert_eq!(messages(&d.stderr, "warning: "), warnings);
    let d = s.run(&["--config", &file_s, "config", "show", "--json"]);
    let v = d.succeeds().json();
    let w = v["warnings"].as_array().unwrap_or_else(|| panic!("{v}"));
    assert_eq!(w.len(), 3);
    assert_eq!(w[0]["line"], 84);
    assert!(
        w[0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("[[services.appwrite.config.dumps]]"))
    );
    let immich = v["services"]
        .as_array()
        .and_then(|a| a.iter().find(|x| x["name"] == "immich"))
        .unwrap_or_else(|| panic!("{v}"));
    assert_eq!(immich["strategy"], "generic");
    assert_eq!(
        immich["paths"],
        serde_json::json!(["/home/alex/containers/immich/library"])
    );

    // Other commands say once that settings were translated.
    s.run(&["--config", &file_s, "list"])
        .succeeds()
        .stderr_has("uses settings of the original restic-manager that were translated (3 warnings); `restic-manager validate` shows today's form");
}

#[test]
fn the_original_keys_outside_their_strategy_are_refused() {
    let s = with_services(
        r#"[services.photos]
targets = ["local"]
strategy = "generic"

[services.photos.config]
paths = ["/srv/photos"]
postgres_container = "immich_postgres"

[services.app]
targets = ["local"]
strategy = "appwrite"

[services.app.config]
mariadb_container = "app-db"
library_path = "/srv/lib"

[profiles.db]
targets = ["local"]

[profiles.db.config]
mariadb_user = "root"
"#,
    );
    let (file, errors) = refused(&s);
    assert_eq!(
        errors,
        vec![
            format!(
                "error: {file}:14:1: service `photos`: `postgres_container` belongs to the original tool's `strategy = \"immich\"`, and this service's strategy is `generic`; set `strategy = \"immich\"` to have it translated, or remove the key and describe the dump in `[[services.photos.config.dumps]]`"
            ),
            format!(
                "error: {file}:22:1: service `app`: `library_path` does not apply to `strategy = \"appwrite\"`; remove it"
            ),
            format!(
                "error: {file}:28:1: profile `db`: `mariadb_user` names one service's database or folder; move it to the `[services.NAME.config]` table of the service that uses it"
            ),
        ]
    );
}

#[test]
fn long_running_threshold_is_accepted_under_notifications() {
    let s = Scenario::new();
    let cfg = |global: &str| {
        format!(
            "[global]\nrestic_password_file = \"{{root}}/pw\"\n{global}\n[notifications]\nnotify_on = [\"failure\", \"long_running\"]\nlong_running_threshold_minutes = 45\n\n[destinations.local]\ntype = \"local\"\npath = \"{{root}}/repo\"\n\n[services.web]\ntargets = [\"local\"]\n[services.web.config]\npaths = [\"/srv/web\"]\n"
        )
    };
    s.config(&cfg(""));
    let v = s.run(&["config", "show", "--json"]).succeeds().json();
    assert_eq!(v["global"]["long_running_threshold_minutes"], 45);
    s.config(&cfg("long_running_threshold_minutes = 45"));
    s.run(&["validate"]).succeeds();
    s.config(&cfg("long_running_threshold_minutes = 60"));
    let file = s.config_path().display().to_string();
    let d = s.run(&["validate"]);
    d.code(2).stderr_has(&format!(
        "error: {file}:6:1: `long_running_threshold_minutes` is 45 in `[notifications]` and 60 in `[global]`; keep one of them"
    ));
}

/// Regression: the fix printed for the original README's full example
/// added `targets = ["..."]` although the profile supplies them, and left
/// `paths` / `volumes` inside the hook table they were written under;
/// pasted, it gave 8 errors.
#[test]
fn the_printed_fix_for_mixed_services_validates_when_pasted() {
    let s = Scenario::new();
    let text = fixture("readme-full.toml");
    let file = s.write("etc/config.toml", &text);
    let d = s.run(&["--config", &file.display().to_string(), "validate"]);
    d.code(2).stderr_has("2 errors in");
    let errors = messages(&d.stderr, "error: ");
    assert_eq!(errors.len(), 2, "{}", d.stderr);
    let marker = "write the service as named tables:";
    let fixes: Vec<String> = errors.iter().map(|e| printed_toml(e, marker)).collect();
    assert_eq!(
        fixes[0],
        r#"[services.postgres]
enabled = true
profile = "production"
schedule = "0 2 * * *"
strategy = "generic"
timeout_seconds = 7200

[services.postgres.config]
paths = ["/tmp/postgres-dump.sql"]
volumes = ["postgres_data"]

[[services.postgres.config.pre_backup_hooks]]
name = "Dump the database"
command = "docker exec postgres pg_dump -U postgres mydb > /tmp/postgres-dump.sql"
timeout_seconds = 600

[[services.postgres.config.post_backup_hooks]]
name = "Remove the dump"
command = "rm -f /tmp/postgres-dump.sql"
continue_on_error = true
"#
    );
    // Each entry has its own fix, so neither message sends the user to
    // rewrite "the other entries" by hand.
    assert!(
        errors
            .iter()
            .all(|e| !e.contains("write the other entries")),
        "{errors:?}"
    );
    let head = &text[..text.find("\n[[services]]").unwrap_or(text.len())];
    let pasted = s.write("etc/fixed.toml", &format!("{head}\n{}", fixes.join("\n")));
    let d = s.run(&["--config", &pasted.display().to_string(), "validate"]);
    d.succeeds()
        .stdout_has("2 services (2 enabled), 3 destinations, 4 repositories")
        .stdout_has("appwrite → local: /backup/repos/appwrite");
    let v = s
        .run(&[
            "--config",
            &pasted.display().to_string(),
            "config",
            "show",
            "--json",
        ])
        .succeeds()
        .json();
    let pg = &v["services"][0];
    assert_eq!(pg["paths"], serde_json::json!(["/tmp/postgres-dump.sql"]));
    assert_eq!(pg["volumes"], serde_json::json!(["postgres_data"]));
    assert_eq!(pg["targets"], serde_json::json!(["local", "remote"]));
}

/// One rule: a relative path is taken from the configuration file's folder,
/// `docker_base` and local repositories included; service `paths` from
/// `docker_base`. Run from another working directory with a relative
/// `--config`, the backup lands where the file says.
#[test]
fn relative_paths_are_taken_from_the_config_folder() {
    let s = Scenario::new();
    s.write("site/pw", "relative-rule-password\n");
    s.write("site/docker/app/data.txt", "app data\n");
    s.write(
        "site/config.toml",
        r#"[global]
restic_password_file = "pw"
docker_base = "docker"
state_directory = "state"

[destinations]
near = { type = "local", path = "repos" }
far = { type = "local", url = "local:../far" }

[services.app]
targets = ["near", "far"]

[services.app.config]
paths = ["app"]
"#,
    );
    s.write("elsewhere/.keep", "");
    let run = |args: &[&str]| -> Done {
        let out = s
            .command()
            .current_dir(s.path("elsewhere"))
            .args(["--config", "../site/config.toml"])
            .args(args)
            .output()
            .expect("spawn");
        Done::from(out)
    };
    let site = s.path("site");
    let site_s = site.display().to_string();
    run(&["validate"])
        .succeeds()
        .stdout_has(&format!("app → near: {site_s}/repos/app"))
        .stdout_has(&format!("app → far: {site_s}/../far/app"))
        .stdout_has("configuration `../site/config.toml` (--config) is valid");
    let v = run(&["config", "show", "--json"]).succeeds().json();
    assert_eq!(v["global"]["docker_base"], format!("{site_s}/docker"));
    assert_eq!(v["global"]["password"]["file"], format!("{site_s}/pw"));
    assert_eq!(v["global"]["state_directory"], format!("{site_s}/state"));
    assert_eq!(
        v["services"][0]["paths"],
        serde_json::json!([format!("{site_s}/docker/app")])
    );
    run(&["setup", "--no-schedule"]).succeeds();
    run(&["run"]).succeeds();
    for repo in ["site/repos/app", "far/app"] {
        let out = s
            .restic_with_password(repo, "site/pw")
            .args(["snapshots", "--json", "--no-lock"])
            .output()
            .expect("restic");
        let snaps: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{repo}: {e}: {}", String::from_utf8_lossy(&out.stderr)));
        assert_eq!(snaps.as_array().map(Vec::len), Some(1), "{repo}: {snaps}");
        assert_eq!(
            snaps[0]["paths"],
            serde_json::json!([format!("{site_s}/docker/app")]),
            "{repo}"
        );
    }
}

// ---------------------------------------------------------------------------
// The translated strategies against real database containers.

pub(crate) const IMAGE: &str = "restic-manager-test-hostusr:1";

fn docker(args: &[&str]) -> Done {
    let out = Command::new("docker")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("docker {args:?}: {e}"));
    Done::from(out)
}

/// Whether the engine, the host's MariaDB and PostgreSQL, and the image
/// are there; in CI their absence fails the test.
pub(crate) fn ready() -> bool {
    static UP: OnceLock<Result<(), String>> = OnceLock::new();
    let up = UP.get_or_init(|| {
        if docker(&["info", "--format", "{{.ServerVersion}}"]).code != 0 {
            return Err("the Docker engine does not answer".into());
        }
        if !Path::new("/usr/sbin/mariadbd").exists() {
            return Err("`mariadbd` is missing: `apt-get install mariadb-server`".into());
        }
        if !pg_bin().is_some_and(|b| b.join("initdb").exists()) {
            return Err("PostgreSQL is missing: `apt-get install postgresql`".into());
        }
        build_image()
    });
    require_component("a database container component", up.clone())
}

/// A skeleton root filesystem: merged-`/usr` symlinks (the host's `/usr`
/// is mounted at run time), users `mysql` (999) and `postgres` (998), and
/// their socket folders.
fn build_image() -> Result<(), String> {
    if docker(&["image", "inspect", IMAGE]).code == 0 {
        return Ok(());
    }
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let root = dir.path().join("root");
    let e = |e: std::io::Error| e.to_string();
    for d in [
        "etc",
        "tmp",
        "usr",
        "var/tmp",
        "run/mysqld",
        "run/postgresql",
        "proc",
        "sys",
        "dev",
    ] {
        std::fs::create_dir_all(root.join(d)).map_err(e)?;
    }
    for t in ["tmp", "var/tmp"] {
        std::fs::set_permissions(root.join(t), std::fs::Permissions::from_mode(0o1777))
            .map_err(e)?;
    }
    for (link, to) in [
        ("bin", "usr/bin"),
        ("sbin", "usr/sbin"),
        ("lib", "usr/lib"),
        ("lib64", "usr/lib64"),
        ("var/run", "../run"),
    ] {
        std::os::unix::fs::symlink(to, root.join(link)).map_err(e)?;
    }
    std::fs::write(
        root.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nmysql:x:999:999::/tmp:/bin/sh\npostgres:x:998:998::/tmp:/bin/sh\n",
    )
    .map_err(e)?;
    std::fs::write(
        root.join("etc/group"),
        "root:x:0:\nmysql:x:999:\npostgres:x:998:\n",
    )
    .map_err(e)?;
    // The init scripts give the socket folders to the server users.
    import_image(&root, &["--owner=0", "--group=0"], &[], IMAGE)
}

/// Containers and volumes of the test, removed at the end (also on failure).
struct Objects {
    containers: Vec<String>,
    volumes: Vec<String>,
}

impl Drop for Objects {
    fn drop(&mut self) {
        for c in &self.containers {
            let _ = docker(&["rm", "-f", c]);
        }
        for v in &self.volumes {
            let _ = docker(&["volume", "rm", "-f", v]);
        }
    }
}

/// MariaDB configured like the official image: root's password from
/// `MARIADB_ROOT_PASSWORD`, required on the local socket.
pub(crate) const MARIADB_INIT: &str = r#"set -e
chown mysql:mysql /run/mysqld
mariadb-install-db --no-defaults --user=mysql --datadir=/tmp/db --auth-root-authentication-method=normal --skip-test-db >/tmp/install.log 2>&1
su_exec() { setpriv --reuid=999 --regid=999 --clear-groups "$@"; }
su_exec mariadbd --no-defaults --datadir=/tmp/db --socket=/run/mysqld/mysqld.sock --skip-networking --pid-file=/tmp/db/pid &
for i in $(seq 300); do [ -S /run/mysqld/mysqld.sock ] && break; sleep 0.1; done
mariadb --no-defaults -uroot -e "SET PASSWORD FOR root@localhost = PASSWORD('$MARIADB_ROOT_PASSWORD'); CREATE DATABASE appwrite;"
echo READY
wait
"#;

/// PostgreSQL like the official image: trust on the local socket,
/// `POSTGRES_PASSWORD` for the superuser over TCP.
pub(crate) const POSTGRES_INIT: &str = r#"set -e
chown postgres:postgres /run/postgresql
echo "$POSTGRES_PASSWORD" > /tmp/pwfile
chown postgres /tmp/pwfile
as_pg() { setpriv --reuid=998 --regid=998 --clear-groups "$@"; }
as_pg initdb -D /tmp/pg -U postgres --auth-local=trust --auth-host=scram-sha-256 --pwfile=/tmp/pwfile >/tmp/initdb.log 2>&1
as_pg postgres -D /tmp/pg -k /run/postgresql -c listen_addresses='' &
for i in $(seq 300); do [ -S /run/postgresql/.s.PGSQL.5432 ] && break; sleep 0.1; done
sleep 0.5
as_pg createdb -U postgres immich
echo READY
wait
"#;

fn start(name: &str, env: &[&str], init: &str, path: &str) {
    let mut args: Vec<String> = ["run", "-d", "--name", name, "-v", "/usr:/usr:ro", "-e"]
        .iter()
        .map(ToString::to_string)
        .collect();
    args.push(format!("PATH={path}"));
    for e in env {
        args.push("-e".into());
        args.push((*e).to_string());
    }
    args.extend([
        IMAGE.to_string(),
        "/bin/sh".into(),
        "-c".into(),
        init.to_string(),
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    docker(&args).succeeds();
}

pub(crate) fn wait_ready(name: &str) {
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(90) {
        let logs = docker(&["logs", name]);
        if logs.stdout.contains("READY") {
            return;
        }
        if docker(&["inspect", "-f", "{{.State.Running}}", name])
            .stdout
            .trim()
            != "true"
        {
            panic!("container {name} stopped:\n{}{}", logs.stdout, logs.stderr);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("container {name} not ready within 90 s");
}

/// `sh -c SCRIPT` inside a container, as the user the container runs as.
fn exec(name: &str, script: &str) -> String {
    let d = docker(&["exec", name, "sh", "-c", script]);
    d.succeeds();
    d.stdout
}

const MARIADB_ROOT_PASSWORD: &str = "aw-root-Qx81";

fn maria(name: &str, sql: &str) -> String {
    exec(
        name,
        &format!("MYSQL_PWD=\"$MARIADB_ROOT_PASSWORD\" mariadb -uroot --batch -e \"{sql}\""),
    )
}

fn psql(name: &str, sql: &str) -> String {
    exec(
        name,
        &format!(
            "setpriv --reuid=998 --regid=998 --clear-groups psql -U postgres -d immich -At -c \"{sql}\""
        ),
    )
}

#[test]
fn the_original_example_backs_up_mariadb_and_postgres_containers_and_restores_the_dumps() {
    if !ready() {
        return;
    }
    let s = Scenario::new();
    let root = s.root().display().to_string();
    let u = format!("rmt-legacy-{}", std::process::id());
    let mut objs = Objects {
        containers: Vec::new(),
        volumes: Vec::new(),
    };
    let (maria_c, pg_c) = (
        format!("{u}-appwrite-mariadb"),
        format!("{u}_immich_postgres"),
    );
    objs.containers.extend([maria_c.clone(), pg_c.clone()]);
    let _ = docker(&["rm", "-f", &maria_c]);
    let _ = docker(&["rm", "-f", &pg_c]);
    let pg_path = format!(
        "{}:/usr/local/bin:/usr/bin:/usr/sbin",
        pg_bin().unwrap_or_default().display()
    );
    start(
        &maria_c,
        &[&format!("MARIADB_ROOT_PASSWORD={MARIADB_ROOT_PASSWORD}")],
        MARIADB_INIT,
        "/usr/local/bin:/usr/bin:/usr/sbin",
    );
    start(
        &pg_c,
        &["POSTGRES_PASSWORD=pg-Hn27c"],
        POSTGRES_INIT,
        &pg_path,
    );

    // The six Appwrite volumes, each with a file (written from a
    // container, so the test needs no access to Docker's folders).
    let volumes = [
        "uploads",
        "functions",
        "builds",
        "cache",
        "certificates",
        "config",
    ];
    let mut args: Vec<String> = ["run", "--rm", "-v", "/usr:/usr:ro"]
        .iter()
        .map(ToString::to_string)
        .collect();
    for v in volumes {
        let name = format!("{u}_appwrite-{v}");
        objs.volumes.push(name.clone());
        docker(&["volume", "create", &name]).succeeds();
        args.extend(["-v".to_string(), format!("{name}:/v/{v}")]);
    }
    args.extend([
        IMAGE.to_string(),
        "/bin/sh".into(),
        "-c".into(),
        "for d in /v/*; do echo \"appwrite ${d#/v/}\" > \"$d/${d#/v/}.txt\"; done".into(),
    ]);
    docker(&args.iter().map(String::as_str).collect::<Vec<_>>()).succeeds();
    // Immich's library.
    s.write(
        "alex/containers/immich/library/2024/IMG_0001.jpg",
        "not really a photo\n",
    );
    s.write("alex/backup-password", "legacy-e2e-password\n");

    // The fixture, pointed at this machine: local repositories instead of
    // the two SFTP hosts, the test's containers and volumes, and only the
    // two services with built-in strategies.
    let text = fixture("config.example.toml");
    let text = &text[..text.find("# ---- services: generic").unwrap_or(text.len())];
    let text = text
        .replace("/home/alex", &format!("{root}/alex"))
        .replace(
            "type = \"sftp\"\nurl = \"sftp://alex@nas.home.example//srv/usb-disk\"",
            &format!("type = \"local\"\nurl = \"{root}/nas\""),
        )
        .replace(
            "type = \"sftp\"\nurl = \"sftp://u10001@u10001.your-storagebox.de:23/restic\"",
            &format!("type = \"local\"\nurl = \"{root}/box\""),
        )
        .replace(
            "https://discord.com/api/webhooks/0000/example",
            "http://127.0.0.1:9/webhook",
        )
        .replace("\"appwrite-mariadb\"", &format!("\"{maria_c}\""))
        .replace("\"immich_postgres\"", &format!("\"{pg_c}\""))
        .replace("\"appwrite_appwrite-", &format!("\"{u}_appwrite-"));
    let file = s.write("alex/restic-manager.toml", &text);
    let cfg = file.display().to_string();

    wait_ready(&maria_c);
    wait_ready(&pg_c);
    maria(
        &maria_c,
        "CREATE TABLE appwrite.docs (id INT PRIMARY KEY, body TEXT); INSERT INTO appwrite.docs VALUES (1, 'hello'), (2, 'grüße ☃'), (3, REPEAT('x', 5000));",
    );
    psql(
        &pg_c,
        "CREATE TABLE assets (id int primary key, path text); INSERT INTO assets SELECT g, 'upload/' || g || '.jpg' FROM generate_series(1, 500) g;",
    );
    let maria_before = maria(
        &maria_c,
        "SELECT id, MD5(body) FROM appwrite.docs ORDER BY id",
    );
    let pg_before = psql(
        &pg_c,
        "SELECT count(*), md5(string_agg(path, ',' ORDER BY id)) FROM assets",
    );
    assert_eq!(maria_before.lines().count(), 4, "{maria_before}");

    s.run(&["--config", &cfg, "setup", "--no-schedule"])
        .succeeds();
    // The root password lives in the container's environment only: it
    // never appears on a command line.
    let (d, leaks) = watching_cmdlines(&[MARIADB_ROOT_PASSWORD], || {
        s.run(&["--config", &cfg, "run", "--json"])
    });
    d.succeeds();
    assert!(leaks.is_empty(), "password on a command line: {leaks:?}");
    let v = d.json();
    let mut dumps: Vec<String> = v["services"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|svc| svc["targets"].as_array().cloned().unwrap_or_default())
        .filter(|t| t["method"] == "dump")
        .map(|t| t["dump"].as_str().unwrap_or_default().to_string())
        .collect();
    dumps.sort();
    assert_eq!(
        dumps,
        ["appwrite-db", "appwrite-db", "immich-db", "immich-db"],
        "one dump per service and destination: {v}"
    );

    // restic's own view: the dump is a snapshot tagged dump:NAME in the
    // service's repository, next to the file snapshot of volumes/library.
    let repo = |r: &str| -> Vec<Value> {
        let out = s
            .restic_with_password(r, "alex/backup-password")
            .args(["snapshots", "--json", "--no-lock"])
            .output()
            .expect("restic");
        match serde_json::from_slice(&out.stdout) {
            Ok(Value::Array(a)) => a,
            other => panic!("{r}: {other:?} {}", String::from_utf8_lossy(&out.stderr)),
        }
    };
    for r in ["nas/appwrite", "box/appwrite", "nas/immich", "box/immich"] {
        let snaps = repo(r);
        assert_eq!(snaps.len(), 2, "{r}: {snaps:?}");
        let svc = r.split('/').nth(1).unwrap_or_default();
        assert!(
            snaps.iter().any(|x| x["tags"]
                .as_array()
                .is_some_and(|t| t.contains(&Value::from(format!("dump:{svc}-db"))))),
            "{r}: {snaps:?}"
        );
    }
    // The file snapshot holds Immich's library.
    let files: Vec<Value> = repo("nas/immich")
        .into_iter()
        .filter(|x| !x["tags"].to_string().contains("dump:"))
        .collect();
    assert_eq!(
        files[0]["paths"],
        serde_json::json!([format!("{root}/alex/containers/immich/library")])
    );

    // And Appwrite's file snapshot holds its six volumes.
    let aw = repo("nas/appwrite")
        .into_iter()
        .find(|x| !x["tags"].to_string().contains("dump:"))
        .expect("no file snapshot of appwrite");
    let ls = Command::new("restic")
        .args(["ls", "--no-lock", aw["id"].as_str().unwrap_or_default()])
        .env("RESTIC_REPOSITORY", s.path("nas/appwrite"))
        .env("RESTIC_PASSWORD_FILE", s.path("alex/backup-password"))
        .env("XDG_CACHE_HOME", s.path("cache"))
        .output()
        .expect("restic ls");
    let listing = String::from_utf8_lossy(&ls.stdout);
    for v in volumes {
        assert!(listing.contains(&format!("/{v}.txt")), "{v}: {listing}");
    }

    // Lose both databases, then restore them from the dumps with the
    // presets' restore commands, run inside the containers.
    maria(&maria_c, "DROP DATABASE appwrite");
    psql(&pg_c, "DROP TABLE assets");
    s.run(&[
        "--config",
        &cfg,
        "restore",
        "--service",
        "appwrite",
        "--snapshot",
        "latest",
        "--dump",
        "appwrite-db",
        "--yes",
    ])
    .succeeds();
    s.run(&[
        "--config",
        &cfg,
        "restore",
        "--service",
        "immich",
        "--snapshot",
        "latest",
        "--dump",
        "immich-db",
        "--yes",
    ])
    .succeeds();
    assert_eq!(
        maria(
            &maria_c,
            "SELECT id, MD5(body) FROM appwrite.docs ORDER BY id"
        ),
        maria_before
    );
    assert_eq!(
        psql(
            &pg_c,
            "SELECT count(*), md5(string_agg(path, ',' ORDER BY id)) FROM assets"
        ),
        pg_before
    );
}

/// Service data without `docker_base`: a relative hook folder is refused
/// with the same message as a relative service path, instead of being
/// taken from wherever the command happens to run.
#[test]
fn relative_service_data_needs_docker_base() {
    let s = with_services(
        r#"[services.app]
targets = ["local"]

[services.app.config]
paths = ["data"]

[[services.app.config.pre_backup_hooks]]
name = "flush"
command = "sync"
working_dir = "app"
"#,
    );
    let (file, errors) = refused(&s);
    let want = vec![
        format!(
            "error: {file}:12:10: service `app`: path `data` is relative, and relative paths are taken from `docker_base`, which is not set; set `[global] docker_base` or write an absolute path"
        ),
        format!(
            "error: {file}:17:1: service `app`: hook `flush`: `working_dir` `app` is relative, and relative paths are taken from `docker_base`, which is not set; set `[global] docker_base` or write an absolute path"
        ),
    ];
    assert_eq!(errors, want);
}
