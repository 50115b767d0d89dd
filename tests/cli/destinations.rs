//! Every destination type end to end against real servers on loopback
//! (`servers.rs`): `setup` creates the repository, `run` backs up to it, and
//! the real restic — given the location and credentials by the test, not by
//! our code — lists the snapshot and restores it byte for byte. Plus the
//! failures a user meets first (an unknown SSH host key, a wrong REST
//! password) and a watch on every command line for leaked secrets.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::harness::{Done, Scenario, chmod, files_containing, watching_cmdlines};
use crate::servers::{self, Sshd};

/// The `docs` service's files (relative to `{root}/data/docs`).
const FILES: &[(&str, &str)] = &[
    ("a.txt", "alpha\n"),
    ("sub/b.txt", "beta, with ünïcödé\n"),
    ("sub/deeper/c.bin", "\u{0}\u{1}binary-ish\u{7f}"),
];

/// Writes the `docs` files and a config backing them up to destination
/// `name`, whose keys (TOML lines) are `dest`.
fn docs_to(s: Scenario, name: &str, dest: &str) -> Scenario {
    for (f, content) in FILES {
        s.write(&format!("data/docs/{f}"), content);
    }
    s.destination(name, dest)
        .service("docs", |d| d.targets(&[name]).path("{root}/data/docs"))
}

/// How the test itself opens a repository with restic: the location, `-o`
/// options and environment, written out independently of `src/restic`.
struct Remote {
    location: String,
    options: Vec<String>,
    env: Vec<(String, String)>,
}

impl Remote {
    fn new(location: impl Into<String>) -> Remote {
        Remote {
            location: location.into(),
            options: Vec::new(),
            env: Vec::new(),
        }
    }

    fn option(mut self, o: impl Into<String>) -> Remote {
        self.options.push(o.into());
        self
    }

    fn env(mut self, k: &str, v: &str) -> Remote {
        self.env.push((k.to_string(), v.to_string()));
        self
    }

    /// Real restic on this repository, password from `{root}/pw`.
    fn restic(&self, s: &Scenario, args: &[&str]) -> Done {
        let mut c = Command::new("restic");
        for o in &self.options {
            c.arg("-o").arg(o);
        }
        let out = c
            .args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", s.path("home"))
            .env("RESTIC_REPOSITORY", &self.location)
            .env("RESTIC_PASSWORD_FILE", s.path("pw"))
            .env("XDG_CACHE_HOME", s.path("verify-cache"))
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .output()
            .expect("restic");
        Done::from(out)
    }
}

/// `setup` creates the repository, `run --json` backs up to it, and restic
/// finds exactly that snapshot and restores the files unchanged. Returns
/// the `run --json` result (`repository` is what the user sees).
#[track_caller]
fn backs_up_and_restores(s: &Scenario, remote: &Remote) -> Done {
    s.run(&["setup"])
        .succeeds()
        .stdout_has("docs → ")
        .stdout_has(": initialised ");
    let run = s.run(&["run", "--json"]);
    run.succeeds();
    let report = run.json();
    assert_eq!(report["outcome"], "ok", "{}", run.stdout);
    let target = &report["services"][0]["targets"][0];
    assert_eq!(target["outcome"], "ok", "{}", run.stdout);
    let short = target["snapshot_id"]
        .as_str()
        .unwrap_or_default()
        .to_string();

    let listed = remote.restic(s, &["snapshots", "--json", "--no-lock"]);
    listed.succeeds();
    let snaps = listed.json();
    let snaps = snaps.as_array().cloned().unwrap_or_default();
    assert_eq!(snaps.len(), 1, "{}", listed.stdout);
    let id = snaps[0]["id"].as_str().unwrap_or_default();
    assert!(
        short.len() >= 8 && id.starts_with(&short),
        "run reported {short}, restic has {id}"
    );
    assert!(
        snaps[0]["tags"]
            .as_array()
            .is_some_and(|t| t.iter().any(|t| t == "service:docs")),
        "{}",
        listed.stdout
    );

    let restored = s.path("restored");
    let target_arg = restored.display().to_string();
    remote
        .restic(s, &["restore", "latest", "--target", &target_arg])
        .succeeds();
    let data = s.path("data/docs");
    let inside = restored.join(data.strip_prefix("/").unwrap_or(&data));
    for (f, content) in FILES {
        let p = inside.join(f);
        let got = std::fs::read(&p).unwrap_or_else(|e| panic!("restored {}: {e}", p.display()));
        assert_eq!(got, content.as_bytes(), "{f} restored differently");
    }
    run
}

/// [`backs_up_and_restores`] while watching every command line: none may
/// hold any of `secrets`.
#[track_caller]
fn backs_up_without_leaking(s: &Scenario, remote: &Remote, secrets: &[&str]) -> Done {
    let (run, leaks) = watching_cmdlines(secrets, || backs_up_and_restores(s, remote));
    assert_eq!(leaks, Vec::<String>::new(), "secret in a command line");
    run
}

/// The repository a `run --json` reports for its one service and target.
fn reported_repository(run: &Done) -> serde_json::Value {
    run.json()["services"][0]["targets"][0]["repository"].clone()
}

/// What restic needs to reach `{root}/sftp/docs` on the test sshd as the
/// test's user.
fn sftp_remote(sshd: &Sshd, s: &Scenario) -> Remote {
    let path = format!("{}/sftp/docs", s.root().display());
    Remote::new(format!("sftp:{}@127.0.0.1:{path}", sshd.user)).option(format!(
        "sftp.command=ssh -i {} -p {} -o UserKnownHostsFile={} -o StrictHostKeyChecking=yes -o BatchMode=yes {}@127.0.0.1 -s sftp",
        sshd.client_key.display(),
        sshd.server.port,
        sshd.known_hosts.display(),
        sshd.user
    ))
}

// ---- sftp -------------------------------------------------------------

/// The keys of an sftp destination at `{root}/sftp` on the test sshd, with
/// its explicit fields, logging in with `key` and checking the host key in
/// `known`.
fn sftp_fields(sshd: &Sshd, key: &Path, known: &Path) -> String {
    format!(
        r#"type = "sftp"
host = "127.0.0.1"
user = "{}"
port = {}
path = "{{root}}/sftp"
identity_file = "{}"
known_hosts_file = "{}""#,
        sshd.user,
        sshd.server.port,
        key.display(),
        known.display()
    )
}

#[test]
fn sftp_with_explicit_fields_backs_up_and_restores() {
    let s = Scenario::new();
    let sshd = Sshd::start(&s.path("sshd"));
    // Key and known-hosts file under a name that needs quoting for ssh,
    // for restic's command splitter and for restic's `-o` parser.
    let odd = s.path("my keys, it's 100%");
    std::fs::create_dir_all(&odd).expect("mkdir");
    let (key, known) = (odd.join("id %h"), odd.join("known hosts"));
    for (from, to) in [(&sshd.client_key, &key), (&sshd.known_hosts, &known)] {
        std::fs::copy(from, to).expect("copy");
    }
    let s = docs_to(s, "nas", &sftp_fields(&sshd, &key, &known));
    let remote = sftp_remote(&sshd, &s);
    let run = backs_up_and_restores(&s, &remote);
    assert_eq!(reported_repository(&run), remote.location);
    // The repository is really on the server's side of the connection.
    assert!(s.path("sftp/docs/config").is_file());
}

#[test]
fn sftp_with_the_original_url_form_backs_up_and_restores() {
    let s = Scenario::new();
    let sshd = Sshd::start(&s.path("sshd"));
    // `sftp://user@host:port//abs/path`: the port comes from the URL, key
    // and known-hosts file from the explicit keys.
    let s = docs_to(
        s,
        "offsite",
        &format!(
            r#"type = "sftp"
url = "sftp://{}@127.0.0.1:{}/{{root}}/sftp"
identity_file = "{}"
known_hosts_file = "{}""#,
            sshd.user,
            sshd.server.port,
            sshd.client_key.display(),
            sshd.known_hosts.display()
        ),
    );
    let remote = sftp_remote(&sshd, &s);
    backs_up_and_restores(&s, &remote);
    assert!(s.path("sftp/docs/config").is_file());
}

#[test]
fn unknown_ssh_host_key_says_how_to_add_it() {
    let s = Scenario::new();
    let sshd = Sshd::start(&s.path("sshd"));
    let empty = s.write("empty_known_hosts", "");
    let s = docs_to(s, "nas", &sftp_fields(&sshd, &sshd.client_key, &empty));
    let repo = format!(
        "sftp:{}@127.0.0.1:{}/sftp/docs",
        sshd.user,
        s.root().display()
    );
    let file = "the destination's `known_hosts_file` (`~/.ssh/known_hosts` when it has none)";
    let port = sshd.server.port;
    // ssh names the cause, but restic 0.14 sometimes exits before passing
    // ssh's words on (about one time in six here); then the advice is
    // the same with the port left to the user.
    let exact = format!(
        "repository `{repo}` cannot be reached: the SSH host key of `[127.0.0.1]:{port}` is not known; check its fingerprint with the server's administrator, then add it to {file}: `ssh-keyscan -p {port} 127.0.0.1 >> FILE`"
    );
    let fallback = format!(
        "repository `{repo}` cannot be reached: ssh could not open an SFTP session (restic did not pass on ssh's reason); if the server's host key is not known yet, check its fingerprint and add it to {file}: `ssh-keyscan -p PORT 127.0.0.1 >> FILE` (PORT: the destination's `port`, or 22); otherwise check that the server is up and accepts the destination's `identity_file`"
    );
    let setup = s.run(&["setup"]);
    setup.code(1);
    assert!(
        [&exact, &fallback]
            .iter()
            .any(|m| setup.stdout.contains(&format!("docs → nas: FAILED: {m}\n"))),
        "{}",
        setup.stdout
    );
    let run = s.run(&["run", "--json"]);
    run.code(1);
    let target = &run.json()["services"][0]["targets"][0];
    assert_eq!(target["error_class"], "unreachable", "{}", run.stdout);
    let msg = target["error"].as_str().unwrap_or_default();
    assert!(msg == exact || msg == fallback, "{msg}");
    // Nothing was written on the server: ssh stopped before logging in.
    assert!(!s.path("sftp").exists());
    // Following the advice makes it work.
    let known = std::fs::read_to_string(&sshd.known_hosts).unwrap_or_default();
    std::fs::write(&empty, known).expect("write");
    s.run(&["setup"]).succeeds();
    s.run(&["run"]).succeeds();
}

// ---- s3 ---------------------------------------------------------------

const AWS_KEY_ID: &str = "AKIATESTKEYID0000001";
const AWS_SECRET: &str = "s3-secret/Do+Not+Leak-7f3a9c";

/// restic's view of the S3 repository `s3:http://127.0.0.1:PORT/PATH`,
/// with the test's credentials.
fn s3_remote(port: u16, path: &str) -> Remote {
    Remote::new(format!("s3:http://127.0.0.1:{port}/{path}"))
        .env("AWS_ACCESS_KEY_ID", AWS_KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", AWS_SECRET)
}

#[test]
fn s3_with_explicit_fields_backs_up_and_restores_without_leaking_the_secret() {
    let s = Scenario::new();
    let moto = servers::moto(&s.path("moto"));
    let id_file = s.write("aws-key-id", &format!("{AWS_KEY_ID}\n"));
    let secret_file = s.write("aws-secret", &format!("{AWS_SECRET}\n"));
    let s = docs_to(
        s,
        "cloud",
        &format!(
            r#"type = "s3"
endpoint = "http://127.0.0.1:{}"
bucket = "rm-test-bucket"
prefix = "hosts/nas"
access_key_id_file = "{}"
secret_access_key_file = "{}""#,
            moto.port,
            id_file.display(),
            secret_file.display()
        ),
    );
    let remote = s3_remote(moto.port, "rm-test-bucket/hosts/nas/docs");
    let run = backs_up_without_leaking(&s, &remote, &[AWS_SECRET]);
    assert_eq!(reported_repository(&run), remote.location);
    no_secret_outside(&s, AWS_SECRET, &[&secret_file], &run);
}

#[test]
fn s3_with_the_url_form_and_env_credentials_backs_up_and_restores() {
    let s = Scenario::new();
    let moto = servers::moto(&s.path("moto"));
    let s = docs_to(
        s,
        "cloud",
        &format!(
            r#"type = "s3"
url = "s3:http://127.0.0.1:{}/rm-url-bucket"
env = {{ AWS_ACCESS_KEY_ID = "{AWS_KEY_ID}", AWS_SECRET_ACCESS_KEY = "{AWS_SECRET}" }}"#,
            moto.port
        ),
    );
    let remote = s3_remote(moto.port, "rm-url-bucket/docs");
    let run = backs_up_without_leaking(&s, &remote, &[AWS_SECRET]);
    // The secret is in the config file (the user put it there), nowhere else.
    no_secret_outside(&s, AWS_SECRET, &[&s.config_path()], &run);
}

// ---- rest -------------------------------------------------------------

#[test]
fn rest_without_auth_backs_up_and_restores() {
    let s = Scenario::new();
    let server = servers::rclone_rest(&s.path("rest-server"), None);
    // Without restic's `rest:` prefix, as the original tool's users wrote it.
    let s = docs_to(
        s,
        "rest",
        &format!(
            "type = \"rest\"\nurl = \"http://127.0.0.1:{}/\"",
            server.port
        ),
    );
    let remote = Remote::new(format!("rest:http://127.0.0.1:{}/docs", server.port));
    backs_up_and_restores(&s, &remote);
    assert!(s.path("rest-server/docs/config").is_file());
}

/// A password with every character that needs encoding in a URL.
const REST_PASSWORD: &str = "rest pw/with:odd@chars%+?#-91c2";

/// Percent-encoding for URL user info, written separately from the code
/// under test.
fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[test]
fn rest_with_basic_auth_backs_up_and_restores_without_leaking_the_password() {
    let s = Scenario::new();
    let server = servers::rclone_rest(&s.path("rest-server"), Some(("nas", REST_PASSWORD)));
    let pass_file = s.write("rest-pass", &format!("{REST_PASSWORD}\n"));
    let s = docs_to(
        s,
        "rest",
        &format!(
            r#"type = "rest"
url = "rest:http://127.0.0.1:{}"
username = "nas"
password_file = "{}""#,
            server.port,
            pass_file.display()
        ),
    );
    let remote = Remote::new(format!(
        "rest:http://nas:{}@127.0.0.1:{}/docs",
        url_encode(REST_PASSWORD),
        server.port
    ));
    let encoded = url_encode(REST_PASSWORD);
    let run = backs_up_without_leaking(&s, &remote, &[REST_PASSWORD, &encoded]);
    assert_eq!(
        reported_repository(&run),
        format!("rest:http://nas@127.0.0.1:{}/docs", server.port)
    );
    no_secret_outside(&s, REST_PASSWORD, &[&pass_file], &run);
    no_secret_outside(&s, &encoded, &[], &run);
}

#[test]
fn rest_with_a_wrong_password_fails_with_a_clear_message() {
    let s = Scenario::new();
    let server = servers::rclone_rest(&s.path("rest-server"), Some(("nas", REST_PASSWORD)));
    s.write("rest-pass", "not the password\n");
    let s = docs_to(
        s,
        "rest",
        &format!(
            "type = \"rest\"\nurl = \"http://127.0.0.1:{}\"\nusername = \"nas\"\npassword_file = \"{{root}}/rest-pass\"",
            server.port
        ),
    );
    let refused = format!(
        "the server of `rest:http://nas@127.0.0.1:{}/docs` refused the login (HTTP 401 Unauthorized); check the destination's `username` and `password_file`",
        server.port
    );
    let setup = s.run(&["setup"]);
    setup.code(1);
    says(&setup, &format!("docs → rest: FAILED: {refused}"));
    assert!(!setup.stderr.contains("panicked"), "{}", setup.stderr);
    let run = s.run(&["run", "--json"]);
    run.code(1);
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    let target = &run.json()["services"][0]["targets"][0];
    assert_eq!(target["error_class"], "permission_denied", "{}", run.stdout);
    assert_eq!(target["error"], refused.as_str());
    // The server has no repository: nothing was created with the bad login.
    assert!(!s.path("rest-server/docs").exists());
}

// ---- rclone -----------------------------------------------------------

#[test]
fn rclone_with_a_local_remote_backs_up_and_restores() {
    let s = Scenario::new();
    // `rclone_binary` is honoured: a wrapper notes each call.
    let wrapper = s.write(
        "bin/rclone-wrapper",
        "#!/bin/sh\necho called >> \"$(dirname \"$0\")/../rclone-calls\"\nexec rclone \"$@\"\n",
    );
    chmod(&wrapper, 0o755);
    // The remote is defined in the destination's environment, the way
    // rclone reads `RCLONE_CONFIG_<NAME>_<KEY>`.
    let s = docs_to(
        s,
        "drive",
        &format!(
            r#"type = "rclone"
remote = "mylocal:{{root}}/rclone"
rclone_binary = "{}"
env = {{ RCLONE_CONFIG_MYLOCAL_TYPE = "local" }}"#,
            wrapper.display()
        ),
    );
    let remote = Remote::new(format!("rclone:mylocal:{}/rclone/docs", s.root().display()))
        .env("RCLONE_CONFIG_MYLOCAL_TYPE", "local");
    let run = backs_up_and_restores(&s, &remote);
    assert_eq!(reported_repository(&run), remote.location);
    assert!(s.path("rclone/docs/config").is_file());
    assert!(s.path("rclone-calls").is_file(), "rclone_binary not used");
}

/// The user sees `line` (`setup` reports per repository on stdout; an
/// error may also go to stderr).
#[track_caller]
fn says(d: &Done, line: &str) {
    assert!(
        d.stdout.contains(line) || d.stderr.contains(line),
        "output lacks {line:?}\n--- stdout:\n{}\n--- stderr:\n{}",
        d.stdout,
        d.stderr
    );
}

// ---- secrets ----------------------------------------------------------

/// `secret` is in none of: the `run --json` output, `config show` (human
/// and JSON), and any file under the scenario (logs, history, state, cache)
/// except `allowed`.
#[track_caller]
fn no_secret_outside(s: &Scenario, secret: &str, allowed: &[&Path], run: &Done) {
    assert!(
        !run.stdout.contains(secret) && !run.stderr.contains(secret),
        "secret in `run --json` output"
    );
    for args in [&["config", "show"][..], &["config", "show", "--json"]] {
        let d = s.run(args);
        d.succeeds();
        assert!(
            !d.stdout.contains(secret) && !d.stderr.contains(secret),
            "secret in `{}`:\n{}",
            args.join(" "),
            d.stdout
        );
    }
    let log = s.run(&["status"]);
    assert!(!log.stdout.contains(secret), "secret in `status`");
    assert_eq!(
        files_containing(s.root(), secret.as_bytes(), allowed),
        Vec::<PathBuf>::new(),
        "secret written to disk"
    );
}
