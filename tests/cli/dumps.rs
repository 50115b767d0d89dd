//! Streamed dumps (`[[services.NAME.config.dumps]]`) against real
//! PostgreSQL, MariaDB and SQLite: a dump becomes one file in a snapshot
//! tagged `dump:NAME`, restores to the same rows, never shows its password
//! on a command line, and a dump that fails, is killed or runs out of time
//! leaves no snapshot in restic's own list.

use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::databases::{self, Mariadb, PASSWORD, Postgres};
use crate::harness::{
    Background, Done, Scenario, Service, output_ok, str_has, wait_until, watching_cmdlines,
};

/// The snapshots of `repo` carrying `tag`.
fn tagged(s: &Scenario, repo: &str, tag: &str) -> Vec<Value> {
    s.snapshots(repo)
        .into_iter()
        .filter(|v| {
            v["tags"]
                .as_array()
                .is_some_and(|t| t.iter().any(|x| x == tag))
        })
        .collect()
}

/// A scenario with the repository password, a database password file and
/// `services` as config; `setup` has created the repositories.
fn ready(services: &str) -> Scenario {
    let s = Scenario::new();
    s.write("pw", "repository password\n");
    s.write("dbpw", &format!("{PASSWORD}\n"));
    s.simple(services);
    s.run(&["setup"]).succeeds();
    s
}

/// Local destinations `first` at `{root}/repo1` and `second` at
/// `{root}/repo2`, and service `app` shaped by `f`.
fn two_repos(first: &str, second: &str, f: impl FnOnce(Service) -> Service) -> Scenario {
    Scenario::new()
        .file("pw", "repository password\n")
        .destination_local(first, "repo1")
        .destination_local(second, "repo2")
        .service("app", f)
}

/// `restic dump latest FILE` of `repo` as raw bytes.
fn restic_dump(s: &Scenario, repo: &str, file: &str) -> Vec<u8> {
    let mut dump = s.restic_command(repo);
    output_ok(
        dump.args(["dump", "latest", file]),
        &format!("restic dump {file}"),
    )
    .stdout
}

/// Restores dump `name` of `service` through the CLI with its preset's
/// restore command.
fn restore(s: &Scenario, service: &str, name: &str) -> Done {
    s.restore_latest(service, &["--dump", name, "--yes"])
}

/// One snapshot with the dump's tags and file, and a history row for it.
#[track_caller]
fn one_dump_snapshot(s: &Scenario, repo: &str, service: &str, name: &str, file: &str) {
    let snaps = tagged(s, repo, &format!("dump:{name}"));
    assert_eq!(snaps.len(), 1, "{snaps:?}");
    assert_eq!(snaps[0]["paths"], serde_json::json!([format!("/{file}")]));
    let tags = &snaps[0]["tags"];
    assert!(
        tags.as_array()
            .is_some_and(|t| t.iter().any(|x| x == &format!("service:{service}"))),
        "{tags}"
    );
}

#[test]
fn postgres_database_round_trip_without_the_password_on_a_command_line() {
    let Some(pg) = postgres_with("shop", SHOP_ITEMS) else {
        return;
    };
    let s = ready(&format!(
        "[services.shop]\ntargets = [\"local\"]\n\n[[services.shop.config.dumps]]\nname = \"shop\"\ntype = \"postgres\"\ndatabase = \"shop\"\n{}\npassword_file = \"{{root}}/dbpw\"\n",
        pg.toml()
    ));
    let (done, leaks) = watching_cmdlines(&[PASSWORD], || s.run(&["run", "--json"]));
    done.succeeds();
    assert!(leaks.is_empty(), "password on a command line: {leaks:?}");
    let report = done.json();
    let t = &report["services"][0]["targets"][0];
    assert_eq!(t["method"], "dump", "{report}");
    assert_eq!(t["dump"], "shop", "{report}");
    assert!(
        t["bytes_processed"].as_u64().is_some_and(|b| b > 10_000),
        "{t}"
    );
    one_dump_snapshot(&s, "repo/shop", "shop", "shop", "shop.pgdump");
    // PostgreSQL's custom format starts with PGDMP.
    assert!(restic_dump(&s, "repo/shop", "/shop.pgdump").starts_with(b"PGDMP"));
    assert_eq!(
        s.history()
            .query("SELECT dump, outcome, snapshot_id IS NOT NULL FROM run_targets"),
        ["shop|ok|1"]
    );

    pg.sql("postgres", "DROP DATABASE shop");
    restore(&s, "shop", "shop").succeeds();
    assert_eq!(
        pg.sql("shop", "SELECT count(*), sum(id) FROM items"),
        "5000|12502500"
    );
}

#[test]
fn all_postgres_databases_through_pg_dumpall() {
    let Some(pg) = Postgres::start() else { return };
    pg.sql("postgres", "CREATE DATABASE a1");
    pg.sql("postgres", "CREATE DATABASE b2");
    pg.sql(
        "a1",
        "CREATE TABLE t (x int); INSERT INTO t VALUES (1), (2)",
    );
    pg.sql("b2", "CREATE TABLE u (y text); INSERT INTO u VALUES ('b')");
    let s = ready(&format!(
        "[services.pg]\ntargets = [\"local\"]\n\n[[services.pg.config.dumps]]\nname = \"all\"\ntype = \"postgres\"\n{}\npassword_file = \"{{root}}/dbpw\"\n",
        pg.toml()
    ));
    s.run(&["run"]).succeeds();
    one_dump_snapshot(&s, "repo/pg", "pg", "all", "all.sql");
    // A drill wants pg_dumpall's completion comment at the end.
    drill_ok(&s, "pg_dumpall_complete");
    let whole = restic_dump(&s, "repo/pg", "/all.sql");
    pg.sql("postgres", "DROP DATABASE a1");
    pg.sql("postgres", "DROP DATABASE b2");
    restore(&s, "pg", "all").succeeds();
    assert_eq!(pg.sql("a1", "SELECT sum(x) FROM t"), "3");
    assert_eq!(pg.sql("b2", "SELECT y FROM u"), "b");
    // Cut short: every statement before the cut is fine SQL, only the
    // missing comment tells.
    let text = String::from_utf8_lossy(&whole);
    let cut = text.find("CREATE TABLE").unwrap_or(text.len() / 2);
    store_dump(&s, "pg", "all", "all.sql", &whole[..cut]);
    s.run(&["verify", "--drill"])
        .code(1)
        .stdout_has("dump_damaged")
        .stderr_has("cluster dump complete");
}

#[test]
fn mariadb_database_round_trip_without_the_password_on_a_command_line() {
    let Some(db) = Mariadb::start() else { return };
    db.sql(
        "CREATE DATABASE shop; USE shop; CREATE TABLE items (id INT PRIMARY KEY, name TEXT) ENGINE=InnoDB; INSERT INTO items SELECT seq, CONCAT('item ', seq) FROM seq_1_to_3000;",
    );
    let s = ready(&format!(
        "[services.shop]\ntargets = [\"local\"]\n\n[[services.shop.config.dumps]]\nname = \"shop\"\ntype = \"mariadb\"\ndatabase = \"shop\"\n{}\npassword_file = \"{{root}}/dbpw\"\n",
        db.toml()
    ));
    let (done, leaks) = watching_cmdlines(&[PASSWORD], || s.run(&["run"]));
    done.succeeds();
    assert!(leaks.is_empty(), "password on a command line: {leaks:?}");
    one_dump_snapshot(&s, "repo/shop", "shop", "shop", "shop.sql");
    let text = restic_dump(&s, "repo/shop", "/shop.sql");
    assert!(
        String::from_utf8_lossy(&text).contains("CREATE DATABASE"),
        "the dump recreates the database"
    );

    db.sql("DROP DATABASE shop");
    restore(&s, "shop", "shop").succeeds();
    assert_eq!(
        db.sql("SELECT count(*), sum(id) FROM shop.items"),
        "3000\t4501500"
    );
    let _ = db.dir();
}

#[test]
fn sqlite_dump_is_consistent_while_the_database_is_written() {
    let s = Scenario::new();
    let db = s.path("app.db");
    let sql = |args: &[&str]| {
        let out = Command::new("sqlite3")
            .arg(&db)
            .args(args)
            .output()
            .expect("sqlite3");
        assert!(out.status.success(), "sqlite3 {args:?}: {out:?}");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    sql(&["PRAGMA journal_mode=WAL; CREATE TABLE a (n INTEGER); CREATE TABLE b (n INTEGER);"]);
    // A writer adds a row to both tables in one transaction, all the time:
    // a consistent copy always has as many rows in `a` as in `b`.
    let mut writer = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "i=0; while true; do i=$((i+1)); sqlite3 {} \"PRAGMA busy_timeout=5000; BEGIN; INSERT INTO a VALUES ($i); INSERT INTO b VALUES ($i); COMMIT;\" || exit 1; done",
            db.display()
        ))
        .stdout(Stdio::null())
        .process_group(0)
        .spawn()
        .expect("writer");
    // The whole group: a sqlite3 of the loop must not outlive it.
    let stop_writer = |pid: u32| {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{pid}")])
            .status();
    };
    std::thread::sleep(std::time::Duration::from_millis(500));
    s.write("pw", "repository password\n");
    s.simple(
        "[services.app]\ntargets = [\"local\"]\n\n[[services.app.config.dumps]]\nname = \"app\"\ntype = \"sqlite\"\npath = \"{root}/app.db\"\n",
    );
    s.run(&["setup"]).succeeds();
    let done = s.run(&["run"]);
    stop_writer(writer.id());
    let _ = writer.wait();
    done.succeeds();
    one_dump_snapshot(&s, "repo/app", "app", "app", "app.sql");

    // Restore into a new file with the preset (sqlite3 reads the SQL).
    std::fs::rename(&db, s.path("app.db.old")).unwrap();
    let _ = std::fs::remove_file(s.path("app.db-wal"));
    let _ = std::fs::remove_file(s.path("app.db-shm"));
    restore(&s, "app", "app").succeeds();
    assert_eq!(sql(&["PRAGMA integrity_check"]), "ok");
    let counts = sql(&["SELECT (SELECT count(*) FROM a), (SELECT count(*) FROM b)"]);
    let (a, b) = counts.split_once('|').unwrap_or(("?", "!"));
    assert_eq!(a, b, "rows of one transaction were split");
    assert!(a.parse::<u64>().is_ok_and(|n| n > 0), "{counts}");
}

#[test]
fn a_command_dump_runs_once_into_two_targets() {
    let s = two_repos("one", "two", |a| {
        a.targets(&["one", "two"]).dump(
            "numbers",
            "command = \"echo ran >> {root}/runs; seq 1 200000\"\nfilename = \"export/numbers.txt\"",
        )
    });
    s.run(&["setup"]).succeeds();
    s.run(&["run", "--dry-run"])
        .succeeds()
        .stdout_has("dump      numbers (command) → /export/numbers.txt");
    assert!(!s.path("runs").exists(), "a dry run ran the dump");
    s.run(&["list"]).succeeds().stdout_has("dump:numbers");
    let done = s.run(&["run", "--json"]);
    done.succeeds();
    assert_eq!(
        std::fs::read_to_string(s.path("runs")).unwrap_or_default(),
        "ran\n",
        "the dump command ran once for both targets"
    );
    let want: String = (1..=200_000).map(|n| format!("{n}\n")).collect();
    for repo in ["repo1/app", "repo2/app"] {
        one_dump_snapshot(&s, repo, "app", "numbers", "export/numbers.txt");
        assert_eq!(
            String::from_utf8_lossy(&restic_dump(&s, repo, "/export/numbers.txt")),
            want
        );
    }
    assert_eq!(
        s.history()
            .query("SELECT destination, dump, outcome FROM run_targets ORDER BY destination"),
        ["one|numbers|ok", "two|numbers|ok"]
    );

    // A restore command that gives up is an error showing its stderr.
    let d = s.run(&[
        "restore",
        "--service",
        "app",
        "--destination",
        "two",
        "--snapshot",
        "latest",
        "--dump",
        "numbers",
        "--to-command",
        "head -c 10 >/dev/null; echo 'psql: FATAL: no such database' >&2; exit 4",
    ]);
    d.code(1);
    d.stderr_has("failed (exit code 4): psql: FATAL: no such database");
}

/// A service with one `command` dump (and `extra` keys) into `local`.
fn command_dump(command: &str, extra: &str) -> Scenario {
    let s = Scenario::new();
    s.write("pw", "repository password\n");
    s.simple(&format!(
        "[services.app]\ntargets = [\"local\"]\n\n[[services.app.config.dumps]]\nname = \"data\"\ncommand = '''{command}'''\n{extra}\n"
    ));
    s.run(&["setup"]).succeeds();
    s
}

#[test]
fn a_dump_failing_halfway_leaves_no_snapshot() {
    // Megabytes reach restic before the failure: without the SIGINT it
    // would save them as a complete-looking snapshot.
    let s = command_dump(
        "head -c 20000000 /dev/urandom; echo 'pg_dump: error: connection lost' >&2; exit 1",
        "",
    );
    let done = s.run(&["run", "--json"]);
    done.code(1);
    let r = &done.json()["services"][0];
    assert_eq!(r["error_class"], "dump_failed", "{r}");
    let err = r["error"].as_str().unwrap_or("");
    assert!(err.contains("dump `data` failed (exit code 1)"), "{err}");
    assert!(err.contains("pg_dump: error: connection lost"), "{err}");
    assert!(s.snapshots("repo/app").is_empty(), "restic kept a snapshot");
    assert_eq!(
        s.history().query("SELECT outcome, error_class FROM runs"),
        ["failed|dump_failed"]
    );
    // The next run with a working dump is not blocked by a stale lock.
    std::fs::write(s.path("unused"), "").unwrap();
}

#[test]
fn a_killed_dump_leaves_no_snapshot() {
    let s = command_dump("head -c 20000000 /dev/zero; kill -9 $$", "");
    let done = s.run(&["run"]);
    done.code(1);
    done.stderr_has("dump `data` failed (killed by signal 9)");
    assert!(s.snapshots("repo/app").is_empty(), "restic kept a snapshot");
}

#[test]
fn a_dump_that_runs_out_of_time_leaves_no_snapshot() {
    let s = command_dump("head -c 5000000 /dev/zero; sleep 30", "timeout_seconds = 2");
    let started = std::time::Instant::now();
    let done = s.run(&["run"]);
    done.code(1);
    assert!(started.elapsed().as_secs() < 25, "the timeout was not kept");
    done.stderr_has("dump `data` ran out of time after 2s");
    assert!(s.snapshots("repo/app").is_empty(), "restic kept a snapshot");
}

/// A dump command that leaves something running in the background on its
/// stdout (issue 13, item 1): the dump ends when the command does, not
/// when its timeout runs out, and what it left is stopped.
#[test]
fn a_dump_whose_background_child_holds_its_output_ends_with_the_command() {
    let s = command_dump(
        "printf 'dumped\\n'; sleep 1011 & exit 0",
        "timeout_seconds = 60",
    );
    let started = std::time::Instant::now();
    let done = s.run(&["run"]);
    let took = started.elapsed();
    done.succeeds();
    assert!(took.as_secs() < 20, "the dump held the run for {took:?}");
    assert_eq!(s.snapshots("repo/app").len(), 1, "the dump snapshot");
    let left = std::process::Command::new("pgrep")
        .args(["-f", "sleep 1011"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    assert!(left.trim().is_empty(), "left running: {left}");
}

#[test]
fn postgres_dump_failing_halfway_leaves_no_snapshot_and_the_files_are_still_backed_up() {
    let Some(pg) = postgres_with(
        "big",
        "CREATE TABLE t AS SELECT g AS id, md5(g::text) AS h FROM generate_series(1, 200000) g",
    ) else {
        return;
    };
    let command = format!(
        "command = \"PGPASSWORD=$(cat {{root}}/dbpw) pg_dump -h 127.0.0.1 -p {} -U postgres big; exit 1\"",
        pg.port
    );
    let s = Scenario::new()
        .file("pw", "repository password\n")
        .file("dbpw", &format!("{PASSWORD}\n"))
        .file("files/a.txt", "a file next to the database")
        .service("db", |d| d.path("{root}/files").dump("big", &command));
    s.run(&["setup"]).succeeds();
    let done = s.run(&["run"]);
    done.code(1);
    done.stderr_has("dump `big` failed (exit code 1)");
    assert!(tagged(&s, "repo/db", "dump:big").is_empty());
    // The file snapshot does not depend on the dump and was made.
    assert_eq!(s.snapshots("repo/db").len(), 1);
}

#[test]
fn a_service_with_only_dumps_is_valid_and_dump_mistakes_are_located() {
    let s = Scenario::new().file("pw", "x").service("app", |a| {
        a.dump("db", "type = \"postgres\"\ndatabase = \"app\"")
    });
    s.run(&["validate"]).succeeds();
    s.simple(
        "[services.app]\ntargets = [\"local\"]\n\n[[services.app.config.dumps]]\nname = \"db\"\ntype = \"postgress\"\n\n[[services.app.config.dumps]]\nname = \"x\"\ncommand = \"true\"\ndatabse = \"a\"\n",
    );
    let d = s.run(&["validate"]);
    d.code(2);
    d.stderr_has("unknown dump type `postgress`; valid types are postgres, mariadb, mysql, sqlite; did you mean `postgres`?");
    d.stderr_has("databse");
    let _ = databases::PASSWORD;
}

#[test]
fn a_target_that_fails_does_not_stop_the_dump_into_the_other() {
    let s = two_repos("one", "gone", |a| {
        a.targets(&["gone", "one"])
            .dump("numbers", "command = \"seq 1 500000\"")
    });
    s.run(&["setup"]).succeeds();
    std::fs::remove_dir_all(s.path("repo2/app")).unwrap();
    let done = s.run(&["run", "--json"]);
    done.code(1);
    let r = &done.json()["services"][0];
    assert_eq!(r["error_class"], "repository_missing", "{r}");
    assert_eq!(tagged(&s, "repo1/app", "dump:numbers").len(), 1);
    assert_eq!(
        s.history()
            .query("SELECT destination, outcome FROM run_targets ORDER BY destination"),
        ["gone|failed", "one|ok"]
    );
}

/// A container removed when the test ends (also when it fails).
struct Container(String);

impl Drop for Container {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rm", "-f", &self.0]).output();
    }
}

#[test]
fn a_dump_runs_inside_a_container_and_restores_into_it() {
    if !crate::docker::engine() {
        return;
    }
    let c = Container(format!("rmt-dump-{}", std::process::id()));
    let idle = format!("seq 1 100000 > /tmp/data; {}", crate::docker::IDLE);
    crate::docker::detached(&c.0, &[], &idle).succeeds();
    let s = Scenario::new();
    s.write("pw", "repository password\n");
    s.write("dbpw", "in-the-exec-environment\n");
    s.simple(&format!(
        "[services.app]\ntargets = [\"local\"]\n\n[[services.app.config.dumps]]\nname = \"data\"\ncontainer = \"{}\"\ncommand = \"sleep 1; cat /tmp/data\"\nrestore_command = \"cat > /tmp/restored\"\n\n[[services.app.config.dumps]]\nname = \"broken\"\ncontainer = \"{}\"\ncommand = \"head -c 3000000 /dev/zero; exit 3\"\n",
        c.0, c.0
    ));
    s.run(&["setup"]).succeeds();
    let done = s.run(&["run"]);
    done.code(1);
    done.stderr_has("dump `broken` failed (exit code 3)");
    assert!(tagged(&s, "repo/app", "dump:broken").is_empty());
    let want: String = (1..=100_000).map(|n| format!("{n}\n")).collect();
    assert_eq!(
        String::from_utf8_lossy(&restic_dump(&s, "repo/app", "/data.dump")),
        want
    );

    // Restored through the dump's restore_command, inside the container.
    restore(&s, "app", "data").succeeds();
    let back = Command::new("docker")
        .args(["exec", &c.0, "cat", "/tmp/restored"])
        .output()
        .expect("docker exec");
    assert_eq!(String::from_utf8_lossy(&back.stdout), want);

    // A container that does not exist is a classified error.
    s.simple(
        "[services.app]\ntargets = [\"local\"]\n\n[[services.app.config.dumps]]\nname = \"data\"\ncontainer = \"rmt-no-such-container\"\ncommand = \"true\"\n",
    );
    let done = s.run(&["run", "--json"]);
    done.code(1);
    assert_eq!(
        done.json()["services"][0]["error_class"],
        "container_missing"
    );
}

#[test]
fn a_dump_interrupted_by_sigterm_leaves_no_snapshot() {
    let s = command_dump(
        "head -c 5000000 /dev/zero; echo started > {root}/started; sleep 60",
        "",
    );
    let child = Background::start(&s, &["run"]);
    let start = std::time::Instant::now();
    wait_until(
        "the dump to start",
        std::time::Duration::from_secs(30),
        || s.path("started").exists(),
    );
    child.signal("TERM");
    let done = child.finish();
    done.code(143);
    done.stderr_has("dump `data` interrupted by signal 15");
    assert!(
        start.elapsed().as_secs() < 30,
        "the interrupt took too long"
    );
    assert!(s.snapshots("repo/app").is_empty(), "restic kept a snapshot");
    // Nothing of the dump is left running.
    let ps = Command::new("pgrep")
        .args(["-f", &format!("echo started > {}", s.root().display())])
        .output()
        .expect("pgrep");
    assert!(ps.stdout.is_empty(), "the dump still runs");
}

#[test]
fn a_snapshot_that_still_appears_for_a_failed_dump_is_forgotten() {
    // The safety net behind the SIGINT: here the "dump" itself saves a
    // snapshot tagged like the dump's before failing, standing in for a
    // restic that managed to save one.
    let s = Scenario::new()
        .file("pw", "repository password\n")
        .global("host = \"dumphost\"")
        .service("app", |a| {
            a.dump("data", "command = \"echo partial | RESTIC_REPOSITORY={root}/repo/app RESTIC_PASSWORD_FILE={root}/pw XDG_CACHE_HOME={root}/cache restic backup --quiet --host dumphost --tag dump:data --stdin --stdin-filename data.dump >&2; seq 1 1000; exit 1\"")
        });
    s.run(&["setup"]).succeeds();
    // An older snapshot of the same dump must survive.
    let old = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "echo old | RESTIC_REPOSITORY={0}/repo/app RESTIC_PASSWORD_FILE={0}/pw XDG_CACHE_HOME={0}/cache restic backup --quiet --host dumphost --tag dump:data --stdin --stdin-filename data.dump",
            s.root().display()
        ))
        .status()
        .is_ok_and(|st| st.success());
    assert!(old, "the older snapshot");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let done = s.run(&["run", "--json"]);
    done.code(1);
    let log = done.json()["services"][0]["log_file"]
        .as_str()
        .map(|p| std::fs::read_to_string(p).unwrap_or_default())
        .unwrap_or_default();
    assert!(
        log.contains("made from the failed dump"),
        "no safety-net line in the log:\n{log}"
    );
    let left = tagged(&s, "repo/app", "dump:data");
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(
        String::from_utf8_lossy(&restic_dump(&s, "repo/app", "/data.dump")),
        "old\n"
    );
}

// ---------------------------------------------------------------------
// Restore drills of dumps: each dump is streamed into its preset's check.

/// Stores `content` as a newer snapshot of dump `name` of `service`, the
/// way the dump source does (one file from stdin, the same tags): a
/// damaged dump for the drill to find.
fn store_dump(s: &Scenario, service: &str, name: &str, file: &str, content: &[u8]) {
    let (svc, dump) = (format!("service:{service}"), format!("dump:{name}"));
    s.restic_stdin(
        &format!("repo/{service}"),
        &[
            "--quiet",
            "--stdin-filename",
            file,
            "--tag",
            &svc,
            "--tag",
            &dump,
        ],
        content,
    );
}

/// `verify --drill --json` and the drill's entry for the service's first
/// dump.
fn drill(s: &Scenario) -> (Done, Value) {
    let d = s.run(&["verify", "--drill", "--json", "-q"]);
    let v = d.json();
    let entry = v["verifies"]
        .as_array()
        .and_then(|a| a.iter().find(|x| x["kind"] == "drill"))
        .map(|x| x["detail"]["dumps"][0].clone())
        .unwrap_or(Value::Null);
    (d, entry)
}

/// The drill's error class in history, newest first.
fn drill_classes(s: &Scenario) -> Vec<String> {
    s.history().query(
        "SELECT outcome || '|' || coalesce(error_class, '') FROM verifies WHERE kind = 'drill' ORDER BY id DESC",
    )
}

/// Table `items` of database `shop`: 5000 rows.
const SHOP_ITEMS: &str = "CREATE TABLE items (id int PRIMARY KEY, name text); INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 5000) g";

/// A PostgreSQL server with database `db` made by `sql`; `None` (the test
/// returns) where PostgreSQL is missing outside CI.
fn postgres_with(db: &str, sql: &str) -> Option<Postgres> {
    let pg = Postgres::start()?;
    pg.sql("postgres", &format!("CREATE DATABASE {db}"));
    pg.sql(db, sql);
    Some(pg)
}

/// The config of service `shop` with a `kind` dump of database `shop`
/// (connection settings `conn`) and `extra` keys.
fn shop_config(kind: &'static str, conn: String) -> impl Fn(&str) -> String {
    move |extra| {
        format!(
            "[services.shop]\ntargets = [\"local\"]\n\n[[services.shop.config.dumps]]\nname = \"shop\"\ntype = \"{kind}\"\ndatabase = \"shop\"\n{conn}\npassword_file = \"{{root}}/dbpw\"\n{extra}\n"
        )
    }
}

/// A drill that succeeds with `check`.
#[track_caller]
fn drill_ok(s: &Scenario, check: &str) {
    let (d, entry) = drill(s);
    d.succeeds();
    assert_eq!(entry["check"], check, "{entry}");
    assert_eq!(entry["outcome"], "ok", "{entry}");
}

#[test]
fn postgres_dump_drills_read_the_whole_archive_load_a_scratch_copy_and_catch_a_cut_dump() {
    let Some(pg) = postgres_with("shop", SHOP_ITEMS) else {
        return;
    };
    let config = shop_config("postgres", pg.toml());
    let s = ready(&config(""));
    s.run(&["run"]).succeeds();

    // The preset: pg_restore reads the whole archive.
    drill_ok(&s, "pg_restore");
    s.run(&["verify", "--drill"])
        .succeeds()
        .stdout_has("dump shop (pg_restore)");

    // A scratch load: into `shop_drill`, dropped afterwards; the real
    // database is untouched.
    s.simple(&config("verify_scratch_database = \"shop_drill\""));
    drill_ok(&s, "scratch_load");
    let scratch = "SELECT count(*) FROM pg_database WHERE datname = 'shop_drill'";
    assert_eq!(
        pg.sql("postgres", scratch),
        "0",
        "the scratch database was left"
    );
    assert_eq!(pg.sql("shop", "SELECT count(*) FROM items"), "5000");

    // A dump cut short after its table of contents (which `pg_restore
    // --list` alone would accept).
    let whole = restic_dump(&s, "repo/shop", "/shop.pgdump");
    store_dump(&s, "shop", "shop", "shop.pgdump", &whole[..whole.len() / 2]);
    let (d, entry) = drill(&s);
    d.code(1);
    assert_eq!(entry["check"], "scratch_load", "{entry}");
    str_has(&entry["error"], "the `scratch_load` check failed");
    assert_eq!(
        pg.sql("postgres", scratch),
        "0",
        "the scratch database was left"
    );
    s.simple(&config(""));
    s.run(&["verify", "--drill"])
        .code(1)
        .stdout_has("dump_damaged")
        .stderr_has("dump `shop`")
        .stderr_has("pg_restore");
    assert_eq!(
        drill_classes(&s)[..2],
        ["failed|dump_damaged", "failed|dump_damaged"]
    );

    // A dump's own verify_command replaces the preset (and the service's).
    s.simple(&config("verify_command = 'test \"$RESTIC_MANAGER_DUMP\" = shop && head -c 5 | grep -q PGDMP && cat >/dev/null'").replace(
        "targets = [\"local\"]\n",
        "targets = [\"local\"]\nverify_command = \"exit 9\"\n",
    ));
    let (d, entry) = drill(&s);
    d.succeeds();
    assert_eq!(entry["check"], "verify_command", "{entry}");
    assert_eq!(entry["verify_command"], true, "{entry}");
}

#[test]
fn mariadb_dump_drills_need_the_completion_line_and_load_a_scratch_copy() {
    let Some(db) = Mariadb::start() else { return };
    db.sql(
        "CREATE DATABASE shop; USE shop; CREATE TABLE items (id INT PRIMARY KEY, name TEXT) ENGINE=InnoDB; INSERT INTO items SELECT seq, CONCAT('item ', seq) FROM seq_1_to_3000;",
    );
    let config = shop_config("mariadb", db.toml());
    let s = ready(&config(""));
    s.run(&["run"]).succeeds();
    drill_ok(&s, "mariadb_dump_complete");

    // The load goes into the scratch database only: rows deleted from the
    // live one since the dump stay deleted.
    db.sql("DELETE FROM shop.items WHERE id > 1000");
    s.simple(&config("verify_scratch_database = \"shop_drill\""));
    let (d, entry) = drill(&s);
    d.succeeds();
    assert_eq!(entry["check"], "scratch_load", "{entry}");
    assert_eq!(db.sql("SHOW DATABASES LIKE 'shop_drill'"), "");
    assert_eq!(db.sql("SELECT count(*) FROM shop.items"), "1000");

    // Cut at a statement boundary, so every statement still loads: only
    // the missing completion line tells.
    let whole = restic_dump(&s, "repo/shop", "/shop.sql");
    let text = String::from_utf8_lossy(&whole);
    let cut = text.find("INSERT INTO").unwrap_or(text.len() / 2);
    store_dump(&s, "shop", "shop", "shop.sql", &whole[..cut]);
    let (d, entry) = drill(&s);
    d.code(1);
    assert!(
        entry["error"]
            .as_str()
            .is_some_and(|e| e.contains("failed")),
        "{entry}"
    );
    assert_eq!(db.sql("SHOW DATABASES LIKE 'shop_drill'"), "");
    s.simple(&config(""));
    s.run(&["verify", "--drill"])
        .code(1)
        .stdout_has("dump_damaged")
        .stderr_has("-- Dump completed");
    assert_eq!(
        drill_classes(&s)[..2],
        ["failed|dump_damaged", "failed|dump_damaged"]
    );
    assert_eq!(db.sql("SELECT count(*) FROM shop.items"), "1000");
}

#[test]
fn sqlite_dump_drills_load_it_into_memory_and_check_its_integrity() {
    let s = Scenario::new();
    let db = s.path("app.db");
    let out = Command::new("sqlite3")
        .arg(&db)
        .arg("CREATE TABLE a (n INTEGER, t TEXT); WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 2000) INSERT INTO a SELECT x, 'row ' || x FROM c;")
        .output()
        .expect("sqlite3");
    assert!(out.status.success(), "{out:?}");
    s.write("pw", "repository password\n");
    s.simple(
        "[services.app]\ntargets = [\"local\"]\n\n[[services.app.config.dumps]]\nname = \"app\"\ntype = \"sqlite\"\npath = \"{root}/app.db\"\n",
    );
    s.run(&["setup"]).succeeds();
    s.run(&["run"]).succeeds();
    drill_ok(&s, "sqlite_load");

    // Cut between two statements: each still loads, but the transaction
    // never commits.
    let whole = restic_dump(&s, "repo/app", "/app.sql");
    let cut = whole[..whole.len() / 2]
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(0, |i| i + 1);
    store_dump(&s, "app", "app", "app.sql", &whole[..cut]);
    s.run(&["verify", "--drill"])
        .code(1)
        .stdout_has("dump_damaged")
        .stderr_has("does not end with COMMIT;");
    // Cut inside a statement: the load itself fails.
    store_dump(&s, "app", "app", "app.sql", &whole[..cut + 10]);
    s.run(&["verify", "--drill"])
        .code(1)
        .stdout_has("dump_damaged")
        .stderr_has("sqlite_load")
        .stderr_has("rror near line");
}
