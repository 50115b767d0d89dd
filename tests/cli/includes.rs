//! Drop-in files (`include = ["conf.d/*.toml"]`), the way an Ansible role
//! or a compose stack adds one service: what an included file may define,
//! its mistakes reported at its own `file:line:column`, names defined
//! twice, which file each service came from, and a real backup of an
//! included service.

use serde_json::{Value, json};

use crate::harness::Scenario;
use crate::receiver::Receiver;

/// The main file: password, destination `local` at `{root}/repo`, the
/// `include` and service `web`.
const MAIN: &str = r#"include = ["conf.d/*.toml"]

[global]
restic_password_file = "{root}/pw"

[destinations.local]
type = "local"
path = "{root}/repo"
# the service that included files sit next to
[services.web]
targets = ["local"]
[services.web.config]
paths = ["{root}/data/web"]
"#;

/// Drop-in service `wiki`, backing up `/srv/wiki` to `local`.
const WIKI: &str = r#"[services.wiki]
targets = ["local"]
[services.wiki.config]
paths = ["/srv/wiki"]
"#;

/// The folder of the scenario's config file.
fn conf_dir(s: &Scenario) -> String {
    s.config_path()
        .parent()
        .expect("config folder")
        .display()
        .to_string()
}

/// Writes `conf.d/NAME` next to the config file; `{root}` is replaced.
fn drop_in(s: &Scenario, name: &str, toml: &str) -> String {
    let text = toml.replace("{root}", &s.root().display().to_string());
    let rel = format!("home/.config/restic-manager/conf.d/{name}");
    s.write(&rel, &text).display().to_string()
}

/// Fields `a` and `b` of each element of a JSON list.
fn pairs(list: &Value, a: &str, b: &str) -> Vec<(Value, Value)> {
    list.as_array()
        .into_iter()
        .flatten()
        .map(|x| (x[a].clone(), x[b].clone()))
        .collect()
}

/// `validate` exits 2 with exactly the error lines `want`.
#[track_caller]
fn refused(s: &Scenario, want: &[String]) {
    let d = s.run(&["validate"]);
    let lines: Vec<String> = d
        .stderr
        .lines()
        .filter(|l| l.starts_with("error: "))
        .map(str::to_string)
        .collect();
    assert_eq!((d.code, lines), (2, want.to_vec()), "{}", d.stderr);
}

#[test]
fn included_service_is_backed_up_like_one_in_the_main_file() {
    let s = Scenario::new();
    s.write("pw", "correct horse battery staple");
    s.write("data/web/index.html", "<h1>web</h1>");
    s.write("data/wiki/page.md", "# wiki page");
    s.config(MAIN);
    // A destination with a relative path, taken from the drop-in's folder.
    drop_in(
        &s,
        "nas.toml",
        r#"[destinations.nas]
type = "local"
path = "repos/nas"
"#,
    );
    drop_in(
        &s,
        "wiki.toml",
        r#"# Dropped in by the wiki role.
[services.wiki]
targets = ["local", "nas"]
tags = ["role-wiki"]
[services.wiki.config]
paths = ["{root}/data/wiki"]
"#,
    );
    let nas = format!("{}/conf.d/repos/nas", conf_dir(&s));

    s.run(&["validate"]).succeeds().stdout_has(&format!(
        "  wiki → local: {root}/repo/wiki\n  wiki → nas: {nas}/wiki\n",
        root = s.root().display()
    ));
    let d = s.run(&["setup"]);
    d.succeeds();
    s.run(&["run", "--service", "wiki"]).succeeds();

    let nas_rel = "home/.config/restic-manager/conf.d/repos/nas/wiki";
    for repo in ["repo/wiki", nas_rel] {
        let snaps = s.snapshots(repo);
        assert_eq!(snaps.len(), 1, "{repo}: {snaps:?}");
        assert_eq!(
            snaps[0]["paths"],
            json!([s.path("data/wiki").display().to_string()])
        );
        let tags = snaps[0]["tags"].as_array().cloned().unwrap_or_default();
        assert!(tags.contains(&json!("service:wiki")), "{tags:?}");
        assert!(tags.contains(&json!("role-wiki")), "{tags:?}");
    }
    // Only `wiki` ran.
    assert_eq!(s.snapshots("repo/web").len(), 0);

    // `status` and the scheduler see the merged services.
    let st = s.run(&["status", "--json"]).json();
    let wiki = st
        .as_array()
        .and_then(|a| a.iter().find(|v| v["service"] == "wiki"))
        .cloned()
        .unwrap_or_else(|| panic!("no wiki in {st}"));
    let outcomes: Vec<_> = wiki["destinations"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|d| (d["destination"].clone(), d["last_outcome"].clone()))
        .collect();
    assert_eq!(
        outcomes,
        vec![(json!("local"), json!("ok")), (json!("nas"), json!("ok"))],
        "{st}"
    );
    s.config(&MAIN.replace(
        "[services.web]\n",
        "[services.web]\nschedule = \"0 1 * * *\"\n",
    ));
    drop_in(
        &s,
        "wiki.toml",
        "[services.wiki]\ntargets = [\"local\"]\nschedule = \"0 4 * * *\"\n[services.wiki.config]\npaths = [\"{root}/data/wiki\"]\n",
    );
    s.run(&["schedule", "show", "--backend", "cron"])
        .succeeds()
        .stdout_has("# service `web`\n0 1 * * * ")
        .stdout_has("# service `wiki`\n0 4 * * * ");
}

#[test]
fn include_that_matches_nothing_is_fine() {
    let s = Scenario::new().with_config(&MAIN.replace(
        r#"include = ["conf.d/*.toml"]"#,
        r#"include = ["conf.d/*.toml", "~/more.d/*.toml", "/nonexistent/*/x.toml"]"#,
    ));
    let d = s.run(&["validate"]);
    d.succeeds();
    assert_eq!(
        d.stdout,
        format!(
            "configuration `{file}` (user configuration) is valid\n  1 service (1 enabled), 1 destination, 1 repository\n  web → local: {root}/repo/web\n  files:\n    config.toml: services web; destinations local\n",
            file = s.config_path().display(),
            root = s.root().display()
        )
    );
    // An empty drop-in (a role with nothing to add yet) is fine too, and
    // the files an editor or Ansible leave behind are not read.
    drop_in(&s, "empty.toml", "# nothing yet\n");
    drop_in(&s, ".ansible_tmpk2x9wiki.toml", "not toml at all [");
    drop_in(&s, "wiki.toml~", "not toml at all [");
    s.run(&["validate"])
        .succeeds()
        .stdout_has("  files:\n    config.toml: services web; destinations local\n    conf.d/empty.toml: nothing\n");
}

#[test]
fn broken_included_file_is_reported_at_its_own_line_and_column() {
    let s = Scenario::new().with_config(MAIN);
    let wiki = drop_in(
        &s,
        "wiki.toml",
        r#"[services.wiki]
targets = ["local"]
paths = [/srv/wiki]
"#,
    );
    let d = s.run(&["validate"]);
    assert_eq!(
        d.stderr,
        format!(
            "error: {wiki}:3:10: invalid TOML: string values must be quoted, expected literal string\n1 error in `{}` and the files it includes (user configuration)\n",
            s.config_path().display()
        )
    );
    d.code(2);

    // A mistake found while resolving points into the drop-in as well,
    // next to the main file's own.
    drop_in(
        &s,
        "wiki.toml",
        r#"[services.wiki]
targets = ["locall"]
timeout_seconds = 0
[services.wiki.config]
paths = ["/srv/wiki"]
exclude = ["*.tmp"]
"#,
    );
    s.config(&MAIN.replace("targets = [\"local\"]", "targets = [\"local\", \"nas\"]"));
    let main = s.config_path().display().to_string();
    refused(
        &s,
        &[
            format!(
                "error: {main}:11:21: service `web` targets destination `nas`, which is not defined; defined destinations: `local`"
            ),
            format!(
                "error: {wiki}:2:12: service `wiki` targets destination `locall`, which is not defined; did you mean `local`?"
            ),
            format!(
                "error: {wiki}:3:1: service `wiki`: `timeout_seconds` must be greater than 0 (seconds a whole run may take)"
            ),
            format!(
                "error: {wiki}:6:1: unknown key `exclude` in `[services.wiki.config]`; did you mean `excludes`?"
            ),
        ],
    );

    // `run` refuses to start, like with a mistake in the main file.
    s.run(&["run"]).code(2).stderr_has(&format!(
        "{wiki}:2:12: service `wiki` targets destination `locall`"
    ));
}

#[test]
fn name_defined_twice_names_both_files() {
    let s = Scenario::new().with_config(MAIN);
    let main = s.config_path().display().to_string();
    let a = drop_in(
        &s,
        "a.toml",
        r#"[profiles.nightly]
schedule = "0 3 * * *"

[services.web]
targets = ["local"]
[services.web.config]
paths = ["/srv/other-web"]
"#,
    );
    let b = drop_in(
        &s,
        "b.toml",
        r#"[destinations.local]
type = "local"
path = "/srv/elsewhere"

[profiles.nightly]
schedule = "0 4 * * *"

[notifiers.ops]
type = "ntfy"
url = "https://ntfy.example/ops"
"#,
    );
    let c = drop_in(
        &s,
        "c.toml",
        r#"[notifiers.ops]
type = "ntfy"
url = "https://ntfy.example/other"
"#,
    );
    refused(
        &s,
        &[
            format!(
                "error: {a}:4:11: service `web` is already defined in `{main}` (line 10); a name may be defined once across the main file and its included files; rename or remove one"
            ),
            format!(
                "error: {b}:1:15: destination `local` is already defined in `{main}` (line 6); a name may be defined once across the main file and its included files; rename or remove one"
            ),
            format!(
                "error: {b}:5:11: profile `nightly` is already defined in `{a}` (line 1); a name may be defined once across the main file and its included files; rename or remove one"
            ),
            format!(
                "error: {c}:1:12: notifier `ops` is already defined in `{b}` (line 8); a name may be defined once across the main file and its included files; rename or remove one"
            ),
        ],
    );
}

#[test]
fn main_file_settings_are_refused_in_an_included_file() {
    let s = Scenario::new().with_config(MAIN);
    let wiki = drop_in(
        &s,
        "wiki.toml",
        &format!(
            r#"include = ["more/*.toml"]

[global]
restic_password_file = "/somewhere/else"

[metrics.pushgateway]
url = "http://pushgateway:9091"

{WIKI}"#
        ),
    );
    let only = "an included file may only define `[destinations.NAME]`, `[profiles.NAME]`, `[services.NAME]`, `[notifiers.NAME]`";
    refused(
        &s,
        &[
            format!(
                "error: {wiki}:1:1: an included file cannot include other files; list every pattern in the main file's `include`"
            ),
            format!(
                "error: {wiki}:3:2: `[global]` belongs in the main configuration file, not in an included file; move it there ({only})"
            ),
            format!(
                "error: {wiki}:6:2: `[metrics]` belongs in the main configuration file, not in an included file; move it there ({only})"
            ),
        ],
    );

    // `include` is a top-level key of the main file: written below a table
    // header, TOML puts it into that table.
    let s = Scenario::new().with_config(
        r#"[global]
restic_password_file = "{root}/pw"
include = ["conf.d/*.toml"]
"#,
    );
    refused(
        &s,
        &[format!(
            "error: {}:3:1: unknown key `include` in `[global]`; `include` is a top-level key: move it above the first `[table]` header of the file",
            s.config_path().display()
        )],
    );

    // A name without wildcards must exist; a folder is not a file.
    let s = Scenario::new().with_config(&MAIN.replace(
        r#"include = ["conf.d/*.toml"]"#,
        r#"include = ["conf.d/wiki.toml", "conf.d", 7]"#,
    ));
    drop_in(&s, "other.toml", "");
    let main = s.config_path().display().to_string();
    refused(
        &s,
        &[
            format!(
                "error: {main}:1:12: included file `{}/conf.d/wiki.toml` does not exist; fix the name, or write a pattern such as `conf.d/*.toml`, which may match nothing",
                conf_dir(&s)
            ),
            format!(
                "error: {main}:1:32: `conf.d` is a folder; to include the files in it, write `conf.d/*.toml`"
            ),
            format!(
                "error: {main}:1:42: `include` must be a list of file patterns, like `include = [\"conf.d/*.toml\"]`"
            ),
        ],
    );
}

#[test]
fn validate_and_config_show_name_the_file_of_each_service() {
    let s = Scenario::new().with_config(MAIN);
    let wiki = drop_in(&s, "wiki.toml", WIKI);
    let db = drop_in(
        &s,
        "db.toml",
        r#"[profiles.db]
schedule = "0 2 * * *"

[services.db]
profile = "db"
targets = ["local"]
[services.db.config]
paths = ["/srv/db"]
"#,
    );
    let main = s.config_path().display().to_string();

    let v = s.run(&["validate", "--json"]).succeeds().json();
    assert_eq!(
        v["files"],
        json!([
            {"file": main, "services": ["web"], "destinations": ["local"], "profiles": [], "notifiers": []},
            {"file": db, "services": ["db"], "destinations": [], "profiles": ["db"], "notifiers": []},
            {"file": wiki, "services": ["wiki"], "destinations": [], "profiles": [], "notifiers": []},
        ])
    );
    let by_file = vec![
        (json!("web"), json!(main)),
        (json!("db"), json!(db)),
        (json!("wiki"), json!(wiki)),
    ];
    assert_eq!(pairs(&v["repositories"], "service", "file"), by_file);
    s.run(&["validate"]).succeeds().stdout_has(
        "  files:\n    config.toml: services web; destinations local\n    conf.d/db.toml: services db; profiles db\n    conf.d/wiki.toml: services wiki\n",
    );

    let v = s.run(&["config", "show", "--json"]).succeeds().json();
    assert_eq!(v["global"]["included"], json!([db, wiki]));
    assert_eq!(pairs(&v["services"], "name", "file"), by_file);
    let d = s.run(&["config", "show"]);
    d.succeeds()
        .stdout_has("\n[services.web]  # from config.toml\n")
        .stdout_has("\n[services.db]  # from conf.d/db.toml\n")
        .stdout_has("\n[services.wiki]  # from conf.d/wiki.toml\n");

    // Everything else sees the merged services.
    let list = s.run(&["list", "--json"]).succeeds().json();
    let names: Vec<_> = pairs(&list, "name", "name")
        .into_iter()
        .map(|p| p.0)
        .collect();
    assert_eq!(names, vec![json!("web"), json!("db"), json!("wiki")]);
    assert_eq!(list[1]["schedule"], json!("0 2 * * *"));
}

#[test]
fn without_include_the_output_has_no_file_keys() {
    let s = Scenario::new().with_config(&MAIN.replace("include = [\"conf.d/*.toml\"]\n", ""));
    drop_in(&s, "wiki.toml", "[services.wiki]\ntargets = [\"local\"]\n");
    let v = s.run(&["validate", "--json"]).succeeds().json();
    assert_eq!(v.get("files"), None);
    assert_eq!(v["repositories"][0].get("file"), None);
    assert_eq!(
        v["services"],
        json!(1),
        "conf.d is only read through `include`"
    );
    let v = s.run(&["config", "show", "--json"]).succeeds().json();
    assert_eq!(v["global"].get("included"), None);
    assert_eq!(v["services"][0].get("file"), None);
    let d = s.run(&["config", "show"]);
    d.succeeds().stdout_has("\n[services.web]\n");
}

#[test]
fn broken_drop_in_is_notified_through_a_notifier_of_another_drop_in() {
    let rx = Receiver::start(&[]);
    let s = Scenario::new().with_config(MAIN);
    drop_in(
        &s,
        "ops.toml",
        &format!(
            "[notifiers.ops]\ntype = \"webhook\"\nurl = \"{}\"\ntimeout_seconds = 2\n",
            rx.url("/ops/hook")
        ),
    );
    drop_in(
        &s,
        "wiki.toml",
        "[services.wiki]\ntargets = [\"local\"]\nschedul = \"0 3 * * *\"\n[services.wiki.config]\npaths = [\"/srv/wiki\"]\n",
    );
    let d = s.run(&["run"]);
    d.code(2).stderr_has("wiki.toml:3:1: unknown key `schedul`");
    let got = rx.at("/ops/");
    assert_eq!(got.len(), 1, "{got:?}");
    let body = got[0].json();
    assert_eq!(body["kind"], "config");
    assert!(
        body["error"].as_str().unwrap_or("").contains("schedul"),
        "{body}"
    );
}
