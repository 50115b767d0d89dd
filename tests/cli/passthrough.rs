//! `restic SERVICE -- ARGS`, `restic --list` and `env SERVICE`: real restic
//! on the service's repository, with what restic itself says compared to
//! what the test gets by opening the repository on its own.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::harness::{Done, Scenario, feed, spawn_piped, watching_cmdlines};
use crate::servers::{self, Sshd};

/// Two local destinations, `nas` (first) and `usb`, a service `wiki`
/// backed up once to both.
fn two_local() -> Scenario {
    let s = Scenario::new()
        .file("pw", "pass-Qx81\n")
        .file("data/wiki/page.txt", "hello\n")
        .file("data/wiki/sub/img.bin", "\u{1}\u{2}binary")
        .destination_local("nas", "nas")
        .destination_local("usb", "usb")
        .service("wiki", |w| {
            w.targets(&["nas", "usb"]).path("{root}/data/wiki")
        });
    s.run(&["setup", "--no-schedule"]).succeeds();
    s.run(&["run"]).succeeds();
    s
}

fn ids(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|s| s["id"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn snapshots_ls_stats_and_key_list_reach_the_services_repository() {
    let s = two_local();
    // Default: the first target, said on stderr (stdout stays restic's).
    let d = s.run(&["restic", "wiki", "--", "snapshots", "--json"]);
    d.succeeds().stderr_has(
        "using destination `nas` (the first target of `wiki`); choose another with --destination",
    );
    let ours = ids(&d.json());
    assert_eq!(
        ours,
        ids(&serde_json::Value::Array(s.snapshots("nas/wiki")))
    );
    assert_eq!(ours.len(), 1);

    let usb = s.run(&[
        "restic",
        "wiki",
        "--destination",
        "usb",
        "--",
        "snapshots",
        "--json",
    ]);
    usb.succeeds();
    assert!(!usb.stderr.contains("using destination"), "{}", usb.stderr);
    assert_eq!(
        ids(&usb.json()),
        ids(&serde_json::Value::Array(s.snapshots("usb/wiki")))
    );
    assert_ne!(ids(&usb.json()), ours, "two repositories, two snapshots");

    let ls = s.run(&["restic", "wiki", "-d", "nas", "--", "ls", "latest"]);
    ls.succeeds();
    let root = s.root().display().to_string();
    assert!(
        ls.stdout.contains(&format!("{root}/data/wiki/sub/img.bin")),
        "{}",
        ls.stdout
    );

    let stats = s.run(&["restic", "wiki", "--", "stats", "--json"]);
    stats.succeeds();
    let bare = s.restic("nas/wiki", &["stats", "--json"]);
    bare.succeeds();
    assert_eq!(stats.json(), bare.json());
    assert_eq!(stats.json()["snapshots_count"], 1, "{}", stats.stdout);

    let keys = s.run(&["restic", "wiki", "--", "key", "list", "--json"]);
    keys.succeeds();
    assert_eq!(
        keys.json().as_array().map(Vec::len),
        Some(1),
        "{}",
        keys.stdout
    );
}

#[test]
fn a_failing_restic_command_gives_restics_own_exit_code_and_words() {
    let s = two_local();
    // No such snapshot: compared with what bare restic says and returns.
    let bare = s.restic("nas/wiki", &["restore", "deadbeef", "--target", "x"]);
    assert_ne!(bare.code, 0);
    let ours = s.run(&[
        "restic", "wiki", "--", "restore", "deadbeef", "--target", "x",
    ]);
    assert_eq!(ours.code, bare.code, "{ours:?}");
    assert!(ours.stderr.contains("deadbeef"), "{}", ours.stderr);
    // A repository that does not exist (0.14: exit 1; 0.17+: exit 10).
    std::fs::rename(s.path("usb/wiki"), s.path("usb/gone")).unwrap();
    let bare = Command::new("restic")
        .args(["snapshots"])
        .env("RESTIC_REPOSITORY", s.path("usb/wiki"))
        .env("RESTIC_PASSWORD_FILE", s.path("pw"))
        .output()
        .map(Done::from)
        .expect("restic");
    let ours = s.run(&["restic", "wiki", "-d", "usb", "--", "snapshots"]);
    assert_ne!(ours.code, 0);
    assert_eq!(ours.code, bare.code, "{ours:?}");
    // stdin passes through: `backup --stdin` stores what we pipe in.
    let mut cmd = s.command();
    cmd.args([
        "restic",
        "wiki",
        "--",
        "backup",
        "--stdin",
        "--stdin-filename",
        "piped.txt",
    ]);
    let child = spawn_piped(&mut cmd, Stdio::piped(), "restic-manager restic");
    let out = feed(child, b"through the pipe\n", "restic-manager restic");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dumped = s.restic("nas/wiki", &["dump", "latest", "/piped.txt"]);
    dumped.succeeds();
    assert_eq!(dumped.stdout, "through the pipe\n");
}

#[test]
fn unknown_service_or_destination_is_a_usage_error_with_a_suggestion() {
    let s = two_local();
    s.run(&["restic", "wkii", "--", "snapshots"])
        .code(2)
        .stderr_has("unknown service `wkii`; did you mean `wiki`?");
    s.run(&["restic", "wiki", "-d", "nsa", "--", "snapshots"])
        .code(2)
        .stderr_has("service `wiki` has no target `nsa`; did you mean `nas`?");
    s.run(&["env", "wiki", "-d", "elsewhere"])
        .code(2)
        .stderr_has("its targets are");
}

#[test]
fn interactive_key_add_prompts_on_the_terminal() {
    use expectrl::{Eof, Expect, Session};
    let s = two_local();
    let mut cmd = s.command();
    cmd.env("TERM", "xterm")
        .args(["restic", "wiki", "--", "key", "add"]);
    let mut p = Session::spawn(cmd).expect("spawn in a pty");
    p.set_expect_timeout(Some(Duration::from_secs(60)));
    p.expect("enter new password").expect("restic's prompt");
    p.send("second-key-pw\r").expect("send");
    p.expect("enter password again").expect("second prompt");
    p.send("second-key-pw\r").expect("send");
    p.expect("saved new key").expect("saved");
    p.expect(Eof).expect("eof");
    // The new key opens the repository.
    let with_new = Command::new("restic")
        .args(["snapshots", "--json"])
        .env("RESTIC_REPOSITORY", s.path("nas/wiki"))
        .env("RESTIC_PASSWORD", "second-key-pw")
        .env("XDG_CACHE_HOME", s.path("cache"))
        .output()
        .map(Done::from)
        .expect("restic");
    with_new.succeeds();
}

/// An SFTP destination (options travel as `-o sftp.command=…`) and a REST
/// destination with basic auth (a credential read from a file).
fn remote_destinations() -> (Scenario, Sshd, servers::Server) {
    let s = Scenario::new();
    s.write("pw", "pass-Qx81\n");
    s.write("data/wiki/page.txt", "hello\n");
    let sshd = Sshd::start(&s.path("sshd"));
    let rest = servers::rclone_rest(&s.path("rest-server"), Some(("nas", REST_PW)));
    s.write("rest-pass", &format!("{REST_PW}\n"));
    let s = s
        .destination(
            "offsite",
            &format!(
                "type = \"sftp\"\nhost = \"127.0.0.1\"\nuser = \"{}\"\nport = {}\npath = \"{{root}}/sftp\"\nidentity_file = \"{}\"\nknown_hosts_file = \"{}\"",
                sshd.user,
                sshd.server.port,
                sshd.client_key.display(),
                sshd.known_hosts.display(),
            ),
        )
        .destination(
            "rest",
            &format!(
                "type = \"rest\"\nurl = \"rest:http://127.0.0.1:{}\"\nusername = \"nas\"\npassword_file = \"{{root}}/rest-pass\"",
                rest.port
            ),
        )
        .service("wiki", |w| {
            w.targets(&["offsite", "rest"]).path("{root}/data/wiki")
        });
    s.run(&["setup", "--no-schedule"]).succeeds();
    (s, sshd, rest)
}

const REST_PW: &str = "rest-Zq7-secret";

#[test]
fn no_secret_reaches_a_command_line_and_list_redacts() {
    let (s, _sshd, _rest) = remote_destinations();
    let root = s.root().display().to_string();
    let (done, leaks) = watching_cmdlines(&[REST_PW, "pass-Qx81"], || {
        s.run(&[
            "restic",
            "wiki",
            "-d",
            "rest",
            "--",
            "backup",
            "--json",
            &format!("{root}/data/wiki"),
        ])
    });
    done.succeeds();
    assert!(leaks.is_empty(), "secrets on a command line: {leaks:?}");

    let l = s.run(&["restic", "--list"]);
    l.succeeds();
    assert!(!l.stdout.contains(REST_PW), "{}", l.stdout);
    assert!(
        l.stdout.contains("rest:http://nas@127.0.0.1:"),
        "{}",
        l.stdout
    );
    assert!(l.stdout.contains("-o sftp.command=ssh"), "{}", l.stdout);
    assert!(
        l.stdout
            .contains(&format!("password_file={root}/rest-pass")),
        "{}",
        l.stdout
    );
    assert!(
        l.stdout.contains(&format!("file {root}/pw")),
        "{}",
        l.stdout
    );
    let j = s.run(&["--json", "restic", "--list"]);
    j.succeeds();
    assert!(!j.stdout.contains(REST_PW));
    let rows = j.json();
    let rows = rows.as_array().unwrap_or_else(|| panic!("{}", j.stdout));
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["destination"], "offsite");
    assert_eq!(rows[0]["default"], true);
    assert_eq!(rows[1]["credential_files"][0]["key"], "password_file");
    assert_eq!(rows[1]["environment"].as_array().map(Vec::len), Some(0));
}

/// `bash -c "eval \"$(restic-manager env …)\"; restic …"`.
fn in_env_shell(s: &Scenario, destination: &str, restic_args: &str) -> Done {
    let env = s.run(&["env", "wiki", "-d", destination]);
    env.succeeds();
    assert!(
        !env.stdout.contains(REST_PW),
        "a secret printed:\n{}",
        env.stdout
    );
    assert!(
        !env.stdout.contains("pass-Qx81"),
        "a secret printed:\n{}",
        env.stdout
    );
    let script = format!("{}\nrestic {restic_args}", env.stdout);
    Command::new("bash")
        .args(["-c", &script])
        .env("HOME", s.path("home"))
        .env("XDG_CACHE_HOME", s.path("cache"))
        // Inherited values the printed lines must override or unset.
        .env("RESTIC_PASSWORD", "wrong")
        .env("RESTIC_REPOSITORY", "/nowhere")
        .output()
        .map(Done::from)
        .expect("bash")
}

#[test]
fn env_lines_open_the_repository_in_the_users_own_shell() {
    let (s, _sshd, _rest) = remote_destinations();
    s.run(&["run"]).succeeds();
    let root = s.root().display().to_string();
    // SFTP: the options become a `restic` shell function.
    let env = s.run(&["env", "wiki"]);
    env.succeeds()
        .stdout_has("restic() { command restic -o 'sftp.command=ssh")
        .stdout_has(&format!("export RESTIC_PASSWORD_FILE='{root}/pw'"));
    let d = in_env_shell(&s, "offsite", "snapshots --json");
    d.succeeds();
    assert_eq!(d.json().as_array().map(Vec::len), Some(1), "{}", d.stdout);
    // REST with basic auth: the password is read from its file when the
    // lines are evaluated (restic 0.16.1+ reads RESTIC_REST_PASSWORD).
    let env = s.run(&["env", "wiki", "-d", "rest"]);
    env.succeeds()
        .stdout_has(&format!(
            "export RESTIC_REST_PASSWORD=\"$(cat '{root}/rest-pass')\""
        ))
        .stdout_has("export RESTIC_REST_USERNAME='nas'");
    let version = Command::new("restic")
        .arg("version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let new_enough = !version.starts_with("restic 0.14") && !version.starts_with("restic 0.15");
    if new_enough {
        let d = in_env_shell(&s, "rest", "snapshots --json");
        d.succeeds();
        assert_eq!(d.json().as_array().map(Vec::len), Some(1), "{}", d.stdout);
    } else {
        env.stdout_has("need restic 0.16.1 or newer");
    }
}
