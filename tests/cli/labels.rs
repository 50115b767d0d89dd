//! Services from Docker labels (`[docker] discover = true`) against the
//! machine's real engine: containers started with `docker run --label` and
//! by `docker-compose`, backed up by the real restic; a label that
//! disagrees with the file; a container that disappears before its backup;
//! an engine that cannot be reached.
//!
//! Every test but the first uses its own `label_prefix`, so tests running
//! at once (and other labelled containers on the machine) do not see each
//! other's containers.

use std::process::Command;

use serde_json::json;

use crate::docker::{IDLE, IMAGE, Objects, detached, docker, engine, running, unique};
use crate::harness::Scenario;

/// The config: a local destination, discovery on with `prefix` (`None`:
/// the default), plus `extra` TOML.
fn config(s: &Scenario, prefix: Option<&str>, extra: &str) {
    let prefix = prefix.map_or_else(String::new, |p| format!("label_prefix = \"{p}\"\n"));
    s.simple(&format!(
        "[docker]\ndiscover = true\n{prefix}\n[destinations.nas]\ntype = \"local\"\npath = \"{{root}}/nas\"\n\n{extra}"
    ));
}

/// A long-running container with `labels` and `mounts` (`-v` values).
fn labelled(objs: &mut Objects, labels: &[(String, String)], mounts: &[String]) -> String {
    let c = unique("lbl");
    let mut args: Vec<String> = Vec::new();
    for (k, v) in labels {
        args.extend(["--label".into(), format!("{k}={v}")]);
    }
    for m in mounts {
        args.extend(["-v".into(), m.clone()]);
    }
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    detached(&c, &refs, IDLE).succeeds();
    objs.containers.push(c.clone());
    c
}

/// `setup` without installing schedules: labelled services have them, and
/// the crontab is the real user's, which only the schedule tests may
/// change (`schedule::crontab_lock`), and put back.
fn set_up(s: &Scenario) {
    s.run(&["setup", "--no-schedule"]).succeeds();
}

fn l(prefix: &str, key: &str, value: &str) -> (String, String) {
    (format!("{prefix}.{key}"), value.to_string())
}

/// Under a fresh prefix, a container labelled for `service` with `targets`
/// and a fresh volume at `/data`: (objects, volume, prefix, container).
/// `None` without an engine.
fn one_labelled(service: &str, targets: &str) -> Option<(Objects, String, String, String)> {
    let mut objs = Objects::if_engine()?;
    let vol = objs.volume(1, 1);
    let prefix = unique("rm");
    let c = labelled(
        &mut objs,
        &[
            l(&prefix, "service", service),
            l(&prefix, "targets", targets),
        ],
        &[format!("{vol}:/data")],
    );
    Some((objs, vol, prefix, c))
}

/// A database container like the official image's (`/bin/sh -c init`
/// with the host's `/usr`), named after `kind`, with `env` (`KEY=VALUE`),
/// labelled under a fresh prefix for service `service` (targets `local`)
/// with `dump.KIND=VALUE` from `dump`; ready when this returns:
/// (objects, prefix, container). `None` without an engine or the image.
fn database(
    kind: &str,
    env: &[&str],
    service: &str,
    dump: (&str, &str),
    init: &str,
) -> Option<(Objects, String, String)> {
    if !engine() || !crate::legacy::ready() {
        return None;
    }
    let mut objs = Objects::default();
    let prefix = unique("rm");
    let c = unique(kind);
    let labels = [
        format!("{prefix}.service={service}"),
        format!("{prefix}.targets=local"),
        format!("{prefix}.dump.{}={}", dump.0, dump.1),
    ];
    let mut args = vec!["run", "-d", "--name", &c, "-v", "/usr:/usr:ro"];
    for e in env {
        args.extend(["-e", e]);
    }
    for label in &labels {
        args.extend(["--label", label]);
    }
    args.extend([crate::legacy::IMAGE, "/bin/sh", "-c", init]);
    docker(&args).succeeds();
    objs.containers.push(c.clone());
    crate::legacy::wait_ready(&c);
    Some((objs, prefix, c))
}

/// Discovers the services labelled under `prefix`, sets up and runs them
/// with a watch on every command line for `password`; restic's `dump` of
/// `file` in the newest snapshot of `repo` holds `table` and the row `from
/// a label`.
#[track_caller]
fn dumps_without_leaking(prefix: &str, password: &str, repo: &str, file: &str, table: &str) {
    let s = Scenario::new();
    config(&s, Some(prefix), "");
    set_up(&s);
    let (d, leaks) = crate::harness::watching_cmdlines(&[password], || s.run(&["run", "--json"]));
    d.succeeds();
    assert!(leaks.is_empty(), "the password was in argv: {leaks:?}");
    let dumped = s.restic(repo, &["dump", "latest", file, "--no-lock"]);
    dumped.succeeds();
    assert!(
        dumped.stdout.contains(table) && dumped.stdout.contains("from a label"),
        "{}",
        dumped.stdout
    );
}

/// The files of the newest snapshot of `repo`.
fn files(s: &Scenario, repo: &str) -> Vec<String> {
    let d = s.restic(repo, &["ls", "latest", "--json", "--no-lock"]);
    d.succeeds();
    d.stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["type"] == "file")
        .filter_map(|v| v["path"].as_str().map(ToString::to_string))
        .collect()
}

#[test]
fn a_labelled_container_becomes_a_service_that_is_backed_up() {
    let Some(mut objs) = Objects::if_engine() else {
        return;
    };
    let vol = objs.volume(0, 0);
    objs.sh(&vol, "echo hello > /data/hello.txt");
    // The default namespace `restic-manager.*`.
    let svc = unique("wiki");
    let p = "restic-manager";
    let c = labelled(
        &mut objs,
        &[
            l(p, "service", &svc),
            l(p, "targets", "local"),
            l(p, "stop", "true"),
            l(p, "schedule", "15 3 * * *"),
        ],
        &[format!("{vol}:/data")],
    );
    let s = Scenario::new();
    config(&s, None, "");

    let d = s.run(&["validate", "--json"]);
    d.succeeds();
    let v = d.json();
    let found = v["discovery"]["services"]
        .as_array()
        .and_then(|a| a.iter().find(|x| x["service"] == svc.as_str()))
        .cloned()
        .unwrap_or_else(|| panic!("service `{svc}` not discovered: {v}"));
    assert_eq!(found["containers"], json!([c]));
    assert_eq!(
        found["origins"],
        json!({
            "service": format!("label restic-manager.service on container {c}"),
            "targets": format!("label restic-manager.targets on container {c}"),
            "schedule": format!("label restic-manager.schedule on container {c}"),
            "stop_containers": format!("label restic-manager.stop on container {c}"),
            "volumes": format!("named volumes of container {c}"),
        })
    );

    // `list`, `config show` and the schedule see it too.
    let d = s.run(&["list", "--json"]);
    d.succeeds();
    let listed = d.json();
    let entry = listed
        .as_array()
        .and_then(|a| a.iter().find(|x| x["name"] == svc.as_str()))
        .cloned()
        .unwrap_or_else(|| panic!("{listed}"));
    assert_eq!(entry["volumes"], json!([vol]));
    assert_eq!(entry["targets"], json!(["local"]));
    assert_eq!(entry["labelled_by"], json!([c]));
    s.run(&["list"]).succeeds().stdout_has(&format!(
        "{svc}: from label restic-manager.service on container {c}; Docker labels on {c}"
    ));
    let d = s.run(&["config", "show", "--json", "--service", &svc]);
    d.succeeds();
    assert_eq!(
        d.json()["services"][0]["origins"]["targets"],
        json!(format!("label restic-manager.targets on container {c}"))
    );
    s.run(&["config", "show", "--service", &svc])
        .succeeds()
        .stdout_has(&format!(
            "targets = \"label restic-manager.targets on container {c}\""
        ));
    s.run(&["schedule", "show", "--backend", "cron"])
        .succeeds()
        .stdout_has("15 3 * * *")
        .stdout_has(&format!("run --service {svc}"));
    // `schedule install` writes its timer (systemd is not PID 1 here: the
    // files are written into the scenario's unit folder).
    s.run(&["schedule", "install", "--backend", "systemd", "--user"])
        .succeeds();
    let timer = s.path(&format!(
        "home/.config/systemd/user/restic-manager-{svc}.timer"
    ));
    let text = std::fs::read_to_string(&timer).unwrap_or_default();
    assert!(text.contains("OnCalendar=*-*-* 03:15:00"), "{text}");

    // The backup: the volume's file is in the snapshot, the container was
    // stopped for it and runs again.
    set_up(&s);
    let d = s.run(&["run", "--json", "--service", &svc]);
    d.succeeds();
    assert_eq!(
        d.json()["services"][0]["containers_stopped"],
        json!([c]),
        "{}",
        d.stdout
    );
    assert!(running(&c), "the container runs again");
    let repo = format!("repo/{svc}");
    let in_snapshot = files(&s, &repo);
    assert!(
        in_snapshot
            .iter()
            .any(|f| f.ends_with(&format!("/{vol}/_data/hello.txt"))),
        "{in_snapshot:?}"
    );
    let r = s.restic(
        &repo,
        &["dump", "latest", in_snapshot[0].as_str(), "--no-lock"],
    );
    r.succeeds();
    assert_eq!(r.stdout, "hello\n");
}

/// A compose project, removed (with its volumes) when the test ends.
struct Compose {
    dir: std::path::PathBuf,
    project: String,
}

impl Compose {
    /// `docker compose` (v2) where present, else Debian's `docker-compose`.
    fn program() -> Command {
        let v2 = Command::new("docker")
            .args(["compose", "version"])
            .output()
            .is_ok_and(|o| o.status.success());
        if v2 {
            let mut c = Command::new("docker");
            c.arg("compose");
            c
        } else {
            Command::new("docker-compose")
        }
    }

    fn cmd(&self, args: &[&str]) -> crate::harness::Done {
        let out = Self::program()
            .arg("-p")
            .arg(&self.project)
            .arg("-f")
            .arg(self.dir.join("docker-compose.yml"))
            .args(args)
            .output()
            .expect("docker-compose (apt-get install docker-compose)");
        crate::harness::Done::from(out)
    }

    /// The container of compose service `service` (v1 and v2 name them
    /// differently).
    fn container(&self, service: &str) -> String {
        let d = docker(&[
            "ps",
            "-a",
            "--filter",
            &format!("label=com.docker.compose.project={}", self.project),
            "--filter",
            &format!("label=com.docker.compose.service={service}"),
            "--format",
            "{{.Names}}",
        ]);
        d.succeeds();
        d.stdout.trim().to_string()
    }
}

impl Drop for Compose {
    fn drop(&mut self) {
        let _ = self.cmd(&["down", "-v", "--timeout", "1"]);
    }
}

#[test]
fn a_compose_stack_says_what_to_back_up() {
    if !engine() {
        return;
    }
    let s = Scenario::new();
    let prefix = unique("rm");
    let project = unique("stack").replace('-', "");
    // Two containers of one service: the app with its files (only the
    // `files` volume of it) and a database stopped for the snapshot (its
    // named volume, not the anonymous one), a schedule and targets given
    // once.
    let yml = format!(
        r#"version: "3.7"
services:
  app:
    image: {IMAGE}
    pull_policy: never
    network_mode: none
    command: ["sh", "-c", "echo app > /files/app.txt; echo cache > /cache/c.txt; trap 'exit 0' TERM; while :; do sleep 1 & wait $$!; done"]
    volumes: ["files:/files", "cache:/cache"]
    labels:
      {prefix}.service: "blog"
      {prefix}.volumes: "{project}_files"
      {prefix}.targets: "local,nas"
  db:
    image: {IMAGE}
    pull_policy: never
    network_mode: none
    command: ["sh", "-c", "echo rows > /db/rows.txt; trap 'exit 0' TERM; while :; do sleep 1 & wait $$!; done"]
    volumes: ["db:/db", "/anonymous"]
    labels:
      {prefix}.service: "blog"
      {prefix}.stop: "true"
      {prefix}.schedule: "0 4 * * *"
volumes:
  files:
  cache:
  db:
"#
    );
    s.write("stack/docker-compose.yml", &yml);
    let stack = Compose {
        dir: s.path("stack"),
        project: project.clone(),
    };
    stack.cmd(&["up", "-d"]).succeeds();
    // Wait until both wrote their files.
    for (vol, file) in [("files", "app.txt"), ("db", "rows.txt")] {
        let v = format!("{project}_{vol}");
        let start = std::time::Instant::now();
        while !docker(&[
            "run",
            "--rm",
            "--network",
            "none",
            "-v",
            &format!("{v}:/v"),
            IMAGE,
            "cat",
            &format!("/v/{file}"),
        ])
        .stdout
        .contains(|c: char| c.is_alphabetic())
        {
            assert!(start.elapsed().as_secs() < 30, "{v}/{file} never written");
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
    let app = stack.container("app");
    let db = stack.container("db");
    config(&s, Some(&prefix), "");

    let d = s.run(&["validate", "--json"]);
    d.succeeds();
    let v = d.json();
    assert_eq!(v["discovery"]["containers"], json!([app, db]), "{v}");
    let origins = &v["discovery"]["services"][0]["origins"];
    assert_eq!(
        origins["volumes"],
        json!(format!(
            "label {prefix}.volumes on container {app}; named volumes of container {db}"
        ))
    );
    assert_eq!(
        origins["stop_containers"],
        json!(format!("label {prefix}.stop on container {db}"))
    );

    let d = s.run(&["config", "show", "--json"]);
    d.succeeds();
    let svc = &d.json()["services"][0];
    assert_eq!(svc["name"], "blog");
    assert_eq!(svc["targets"], json!(["local", "nas"]));
    assert_eq!(svc["schedule"], "0 4 * * *");
    assert_eq!(
        svc["volumes"],
        json!([format!("{project}_files"), format!("{project}_db")])
    );

    set_up(&s);
    let d = s.run(&["run", "--json"]);
    d.succeeds();
    assert_eq!(d.json()["services"][0]["containers_stopped"], json!([db]));
    assert!(running(&db) && running(&app));
    for repo in ["repo/blog", "nas/blog"] {
        let f = files(&s, repo);
        assert!(
            f.iter().any(|p| p.ends_with("/_data/app.txt")),
            "{repo}: {f:?}"
        );
        assert!(
            f.iter().any(|p| p.ends_with("/_data/rows.txt")),
            "{repo}: {f:?}"
        );
        assert!(
            !f.iter().any(|p| p.ends_with("/_data/c.txt")),
            "the cache volume is not listed in `volumes`: {f:?}"
        );
    }
}

#[test]
fn a_label_that_disagrees_with_the_file_is_a_validation_error() {
    let Some((_objs, _, prefix, c)) = one_labelled("wiki", "nas") else {
        return;
    };
    let s = Scenario::new();
    config(
        &s,
        Some(&prefix),
        "[services.wiki]\ntargets = [\"local\"]\n",
    );
    let d = s.run(&["validate"]);
    d.code(2).stderr_has(&format!(
        "config.toml:17:1: service `wiki`: label `{prefix}.targets=nas` on container `{c}` conflicts with the file, which sets `targets` to `local`; the file wins: remove the label, or the key from the file"
    ));
    // Nothing runs with an invalid configuration.
    s.run(&["run"]).code(2);

    // The same value is no conflict, and the label fills what the file
    // leaves unset (here: the volumes).
    config(&s, Some(&prefix), "[services.wiki]\ntargets = [\"nas\"]\n");
    let d = s.run(&["validate", "--json"]);
    d.succeeds();
    let origins = &d.json()["discovery"]["services"][0]["origins"];
    assert_eq!(origins["service"], "file");
    assert_eq!(origins["targets"], "file");
    assert_eq!(
        origins["volumes"],
        json!(format!("named volumes of container {c}"))
    );
}

#[test]
fn a_container_that_disappears_before_its_backup_is_reported() {
    let Some((mut objs, vol, prefix, c)) = one_labelled("app", "local") else {
        return;
    };
    let s = Scenario::new();
    // The file adds a pre hook that removes the container: labels were
    // read when `run` started; the volume is still there.
    let hook = format!(
        "[services.app.config]\npre_backup_hooks = [{{ name = \"remove\", command = \"docker rm -f {c}\" }}]\n"
    );
    config(&s, Some(&prefix), &hook);
    set_up(&s);
    let d = s.run(&["run", "--json"]);
    d.code(3);
    let svc = &d.json()["services"][0];
    assert_eq!(svc["outcome"], "warning");
    assert_eq!(
        svc["warnings"],
        json!([format!(
            "container `{c}`, whose labels define this service, no longer exists (it was there when the labels were read)"
        )])
    );
    assert_eq!(s.snapshots("repo/app").len(), 1, "the volume was backed up");

    // One that is to be stopped fails the service, naming it.
    let c2 = labelled(
        &mut objs,
        &[
            l(&prefix, "service", "app"),
            l(&prefix, "targets", "local"),
            l(&prefix, "stop", "true"),
        ],
        &[format!("{vol}:/data")],
    );
    let hook = format!(
        "[services.app.config]\npre_backup_hooks = [{{ name = \"remove\", command = \"docker rm -f {c2}\" }}]\n"
    );
    config(&s, Some(&prefix), &hook);
    let d = s.run(&["run"]);
    d.code(1)
        .stderr_has(&format!("error: app: container `{c2}` does not exist"));
    assert_eq!(s.snapshots("repo/app").len(), 1);
}

#[test]
fn an_unreachable_engine_is_never_silent() {
    let s = Scenario::new();
    config(&s, Some("rm-none"), "");
    let sock = s.path("no-docker.sock");
    let dead = format!("unix://{}", sock.display());
    let env = [("DOCKER_HOST", dead.as_str())];
    s.run_env(&env, &["validate"]).code(2).stderr_has(&format!(
        "services from Docker labels were not discovered: the Docker engine at `{dead}` cannot be reached"
    ));
    let d = s.run_env(&env, &["run"]);
    d.code(1).stderr_has(&format!(
        "error: services from Docker labels were not discovered: the Docker engine at `{dead}`"
    ));
    s.run_env(&env, &["list"])
        .succeeds()
        .stderr_has("warning: services from Docker labels were not discovered");

    // The file's own services still run; the run fails all the same.
    config(
        &s,
        Some("rm-none"),
        "[services.files]\ntargets = [\"local\"]\n\n[services.files.config]\npaths = [\"{root}/data\"]\n",
    );
    s.write("data/f.txt", "x");
    set_up(&s);
    let d = s.run_env(&env, &["run", "--json"]);
    d.code(1);
    let v = d.json();
    assert_eq!(v["services"][0]["outcome"], "ok");
    assert!(
        v["discovery_error"].as_str().is_some_and(
            |e| e.contains(&format!("the Docker engine at `{dead}` cannot be reached"))
        ),
        "{v}"
    );
    assert_eq!(s.snapshots("repo/files").len(), 1);
    let d = s.run_env(&env, &["config", "show", "--json"]);
    d.succeeds();
    assert_eq!(
        d.json()["services"][0]["origins"],
        json!({"service": "file"})
    );

    // Discovery off (the default): Docker is not asked at all; a socket
    // that listens but never answers sees no connection.
    s.simple("[services.files]\ntargets = [\"local\"]\n\n[services.files.config]\npaths = [\"{root}/data\"]\n");
    let spy_path = s.path("spy.sock");
    let spy = std::os::unix::net::UnixListener::bind(&spy_path)
        .unwrap_or_else(|e| panic!("bind {}: {e}", spy_path.display()));
    spy.set_nonblocking(true).expect("nonblocking");
    let spy_host = format!("unix://{}", spy_path.display());
    let d = s.run_env(&[("DOCKER_HOST", spy_host.as_str())], &["validate"]);
    d.succeeds();
    assert!(!d.stderr.contains("Docker"), "{}", d.stderr);
    s.run_env(&[("DOCKER_HOST", spy_host.as_str())], &["list"])
        .succeeds();
    match spy.accept() {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        other => panic!("the engine was contacted with discovery off: {other:?}"),
    }

    // With discovery on, an engine that never answers is given up on.
    config(&s, Some("rm-none"), "");
    let start = std::time::Instant::now();
    s.run_env(&[("DOCKER_HOST", spy_host.as_str())], &["validate"])
        .code(2)
        .stderr_has(&format!(
            "services from Docker labels were not discovered: the Docker engine at `{spy_host}` did not answer within 20 s"
        ));
    assert!(start.elapsed().as_secs() < 40, "{:?}", start.elapsed());
    assert!(spy.accept().is_ok(), "it was asked");
}

#[test]
fn a_dump_label_dumps_the_database_inside_its_container() {
    // The image with the host's `/usr` (sqlite3) that the legacy
    // strategies' tests use.
    if !engine() || !crate::legacy::ready() {
        return;
    }
    let mut objs = Objects::default();
    let vol = objs.volume(0, 0);
    let prefix = unique("rm");
    let c = unique("db");
    docker(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        &c,
        "-e",
        "PATH=/usr/bin:/bin",
        "-v",
        "/usr:/usr:ro",
        "-v",
        &format!("{vol}:/data"),
        "--label",
        &format!("{prefix}.service=notes"),
        "--label",
        &format!("{prefix}.targets=local"),
        "--label",
        &format!("{prefix}.volumes={vol}"),
        "--label",
        &format!("{prefix}.dump.sqlite=/data/notes.db"),
        crate::legacy::IMAGE,
        "sh",
        "-c",
        "sqlite3 /data/notes.db \"CREATE TABLE IF NOT EXISTS note(t TEXT); INSERT INTO note VALUES ('from a label');\" && exec sleep 600",
    ])
    .succeeds();
    objs.containers.push(c.clone());
    let s = Scenario::new();
    config(&s, Some(&prefix), "");
    let start = std::time::Instant::now();
    while objs.sh(&vol, "ls /data").trim() != "notes.db" {
        assert!(
            start.elapsed().as_secs() < 30,
            "the database never appeared"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }

    let d = s.run(&["config", "show", "--json"]);
    d.succeeds();
    let svc = &d.json()["services"][0];
    assert_eq!(
        svc["origins"]["dumps"],
        json!(format!("label {prefix}.dump.sqlite on container {c}"))
    );
    s.run(&["list"])
        .succeeds()
        .stdout_has(&format!("dump:{c}-sqlite"));

    // Stopped, its dump cannot run: `validate` says so before a run fails.
    docker(&["kill", &c]).succeeds();
    s.run(&["validate"]).succeeds().stderr_has(&format!(
        "warning: container `{c}` is not running; its dump (label `{prefix}.dump.sqlite`) runs inside it and fails until it is started"
    ));
    docker(&["start", &c]).succeeds();

    set_up(&s);
    let d = s.run(&["run", "--json"]);
    d.succeeds();
    let dumped = s.restic(
        "repo/notes",
        &[
            "dump",
            "--tag",
            &format!("dump:{c}-sqlite"),
            "latest",
            &format!("/{c}-sqlite.sql"),
            "--no-lock",
        ],
    );
    dumped.succeeds();
    assert!(
        dumped
            .stdout
            .contains("INSERT INTO note VALUES('from a label');"),
        "{}",
        dumped.stdout
    );
}

#[test]
fn a_postgres_dump_label_uses_the_containers_own_password() {
    let path = format!(
        "{}:/usr/local/bin:/usr/bin:/usr/sbin",
        crate::harness::pg_bin().unwrap_or_default().display()
    );
    // PostgreSQL like the official image (POSTGRES_PASSWORD for TCP); the
    // service has only the dump, every key of it from labels.
    let Some((_objs, prefix, c)) = database(
        "pg",
        &[&format!("PATH={path}"), "POSTGRES_PASSWORD=pg-Lb93x"],
        "photos",
        ("postgres", "user=postgres,host=127.0.0.1"),
        &crate::legacy::POSTGRES_INIT
            .replace("listen_addresses=''", "listen_addresses='127.0.0.1'"),
    ) else {
        return;
    };
    docker(&[
        "exec",
        &c,
        "psql",
        "-U",
        "postgres",
        "-h",
        "/run/postgresql",
        "-d",
        "immich",
        "-c",
        "CREATE TABLE note(t text); INSERT INTO note VALUES ('from a label');",
    ])
    .succeeds();

    dumps_without_leaking(
        &prefix,
        "pg-Lb93x",
        "repo/photos",
        &format!("/{c}-postgres.sql"),
        "CREATE TABLE public.note",
    );
}

#[test]
fn a_mariadb_dump_label_uses_the_containers_own_password() {
    // MariaDB like the official image (root's password from
    // MARIADB_ROOT_PASSWORD, required on the socket); the dump's database
    // is the label's whole value.
    let Some((_objs, prefix, c)) = database(
        "maria",
        &[
            "PATH=/usr/local/bin:/usr/bin:/usr/sbin",
            "MARIADB_ROOT_PASSWORD=mdb-Kp27v",
        ],
        "shop",
        ("mariadb", "appwrite"),
        crate::legacy::MARIADB_INIT,
    ) else {
        return;
    };
    docker(&[
        "exec",
        &c,
        "sh",
        "-c",
        "MYSQL_PWD=\"$MARIADB_ROOT_PASSWORD\" mariadb -uroot appwrite -e \"CREATE TABLE note(t text); INSERT INTO note VALUES ('from a label');\"",
    ])
    .succeeds();

    dumps_without_leaking(
        &prefix,
        "mdb-Kp27v",
        "repo/shop",
        &format!("/{c}-mariadb.sql"),
        "CREATE TABLE `note`",
    );
}
