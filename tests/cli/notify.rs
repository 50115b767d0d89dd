//! Notifications against real receivers: an HTTP server written here (it
//! records every request and answers as each test scripts it) for
//! discord, webhook, ntfy and healthchecks, and aiosmtpd (PyPI, installed
//! by scripts/test-all.sh into target/test-venv) for email.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::{
    Background, Done, Scenario, free_port, output_ok, require_component, wait_until,
};
use crate::receiver::{Receiver, Reply};

/// The secret part of every URL: it must never be printed.
const TOKEN: &str = "SECRET-TOKEN-4711";

/// A config with every HTTP notifier pointing at `rx`, plus `services`.
fn config(s: &Scenario, rx: &Receiver, notifications: &str, services: &str) {
    s.write("ntfy-token", "tk_ntfy_secret\n");
    s.write("data/docs/a.txt", "hello");
    s.simple(&format!(
        r#"[notifications]
discord_webhook_url = "{discord}"
{notifications}

[notifiers.hook]
type = "webhook"
url = "{hook}"
headers = {{ Authorization = "Bearer hook-header-secret" }}
timeout_seconds = 2

[notifiers.phone]
type = "ntfy"
url = "{ntfy}"
token_file = "{{root}}/ntfy-token"

[notifiers.hc]
type = "healthchecks"
url = "{hc}"

{services}"#,
        discord = rx.url(&format!("/discord/{TOKEN}")),
        hook = rx.url(&format!("/hook/{TOKEN}")),
        ntfy = rx.url(&format!("/ntfy/{TOKEN}")),
        hc = rx.url(&format!("/hc/{TOKEN}")),
    ));
}

/// `docs`, whose source is `path`.
fn docs(path: &str) -> String {
    format!(
        "[services.docs]\ntargets = [\"local\"]\n[services.docs.config]\npaths = [\"{path}\"]\n"
    )
}

/// A scenario whose receiver answers as `script` says (empty: 200 to
/// everything), configured by [`config`].
fn notified(
    script: &[(&str, Vec<Reply>)],
    notifications: &str,
    services: &str,
) -> (Scenario, Receiver) {
    let s = Scenario::new();
    let rx = Receiver::start(script);
    config(&s, &rx, notifications, services);
    (s, rx)
}

/// The paths of the requests whose path starts with `prefix`.
fn paths(rx: &Receiver, prefix: &str) -> Vec<String> {
    rx.at(prefix).iter().map(|r| r.path.clone()).collect()
}

/// The time between the two requests to `prefix` (`why` there are two).
#[track_caller]
fn retry_gap(rx: &Receiver, prefix: &str, why: &str) -> Duration {
    let tries = rx.at(prefix);
    assert_eq!(tries.len(), 2, "{why}");
    tries[1].at.duration_since(tries[0].at)
}

fn no_secrets(d: &Done) {
    for secret in [TOKEN, "tk_ntfy_secret", "hook-header-secret"] {
        assert!(
            !d.stdout.contains(secret) && !d.stderr.contains(secret),
            "`{secret}` leaked:\n--- stdout:\n{}\n--- stderr:\n{}",
            d.stdout,
            d.stderr
        );
    }
}

#[test]
fn failure_then_recovery_reach_every_http_notifier_with_the_documented_bodies() {
    let (s, rx) = notified(&[], "", &docs("{root}/data/missing"));

    // A source that does not exist fails the service before restic runs.
    let d = s.run(&["--json", "run"]);
    d.code(1);
    no_secrets(&d);

    assert_eq!(
        paths(&rx, "/hc/"),
        [format!("/hc/{TOKEN}/start"), format!("/hc/{TOKEN}/fail")]
    );
    let hc = rx.at("/hc/");
    assert!(hc.iter().all(|r| r.method == "POST"));
    assert!(hc[1].body.contains("source_missing"), "{}", hc[1].body);
    assert!(
        hc[1].body.contains("last lines of the log:") && hc[1].body.contains("outcome: failed"),
        "the log tail: {}",
        hc[1].body
    );

    let embed = &rx.one("/discord/")["embeds"][0];
    assert_eq!(embed["color"], 0xE7_4C_3C, "red");
    assert!(
        embed["title"]
            .as_str()
            .unwrap_or("")
            .contains("docs: backup failed")
    );

    let hook = rx.at("/hook/");
    assert_eq!(hook.len(), 1);
    assert_eq!(hook[0].header("authorization"), "Bearer hook-header-secret");
    assert_eq!(hook[0].header("content-type"), "application/json");
    let body = hook[0].json();
    assert_eq!(body["version"], 1);
    assert_eq!(body["event"], "failure");
    assert_eq!(body["kind"], "backup");
    assert_eq!(body["service"], "docs");
    assert_eq!(body["outcome"], "failed");
    assert_eq!(body["error_class"], "source_missing");
    assert_eq!(body["exit_code"], 1);
    assert!(body["host"].as_str().is_some_and(|h| !h.is_empty()));
    assert!(body["started_at"].is_string() && body["finished_at"].is_string());

    let ntfy = rx.at("/ntfy/");
    assert_eq!(ntfy.len(), 1);
    assert_eq!(ntfy[0].header("priority"), "5");
    assert_eq!(ntfy[0].header("authorization"), "Bearer tk_ntfy_secret");
    assert!(ntfy[0].header("title").contains("docs"));
    assert!(ntfy[0].body.contains("source_missing"));

    // The run's JSON says what each notifier did.
    let v = d.json();
    let sent: Vec<(String, String)> = v["notifications"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|n| (n["notifier"].to_string(), n["result"].to_string()))
        .collect();
    assert_eq!(
        sent.len(),
        5,
        "start + fail pings, discord, hook, phone: {sent:?}"
    );
    assert!(sent.iter().all(|(_, r)| r == "\"sent\""), "{sent:?}");

    // Fixed: a real backup succeeds, and the recovery is sent to everyone
    // who heard about the failure, though `success` is not in notify_on.
    rx.clear();
    s.run(&["setup", "--no-schedule"]).succeeds();
    config(&s, &rx, "", &docs("{root}/data/docs"));
    s.run(&["run"]).succeeds();
    assert_eq!(
        paths(&rx, "/hc/"),
        [format!("/hc/{TOKEN}/start"), format!("/hc/{TOKEN}")]
    );
    let embed = &rx.one("/discord/")["embeds"][0];
    assert_eq!(embed["color"], 0x2E_CC_71, "green");
    assert_eq!(embed["fields"][0]["name"], "local");
    let field = embed["fields"][0]["value"].as_str().unwrap_or("");
    assert!(
        field.contains("snapshot `") && field.contains("added ") && field.contains("duration "),
        "{field}"
    );
    let body = rx.one("/hook/");
    assert_eq!(body["event"], "recovery");
    assert_eq!(body["outcome"], "ok");
    assert_eq!(body["destinations"][0]["name"], "local");
    assert!(body["destinations"][0]["snapshot_id"].is_string());
    assert!(body["destinations"][0]["bytes_added"].is_u64());
    assert_eq!(rx.at("/ntfy/")[0].header("priority"), "3");

    // Another success is not news (`success` is not in notify_on); the
    // dead man's switch still gets its pings.
    rx.clear();
    s.run(&["run"]).succeeds();
    assert_eq!(rx.at("/hc/").len(), 2);
    assert!(
        rx.at("/discord/").is_empty() && rx.at("/hook/").is_empty() && rx.at("/ntfy/").is_empty()
    );
}

#[test]
fn a_repeated_failure_is_held_back_within_rate_limit_minutes() {
    let (s, rx) = notified(&[], "rate_limit_minutes = 30", &docs("{root}/data/missing"));
    s.run(&["run"]).code(1);
    assert_eq!(rx.at("/discord/").len(), 1);
    rx.clear();
    let d = s.run(&["--json", "run"]);
    d.code(1);
    assert!(rx.at("/discord/").is_empty(), "sent again: {:?}", rx.all());
    assert!(rx.at("/hook/").is_empty() && rx.at("/ntfy/").is_empty());
    // healthchecks is a state ping, never held back.
    assert_eq!(rx.at("/hc/").len(), 2);
    let v = d.json();
    let held: Vec<&Value> = v["notifications"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|n| n["result"] == "rate_limited")
        .collect();
    assert_eq!(held.len(), 3, "{v}");
    // The state is where `cache_file` says (default: the state folder).
    let state = std::fs::read_to_string(s.path("state/restic-manager/notifications.json"))
        .expect("state file");
    assert!(state.contains("failure:source_missing"), "{state}");
}

#[test]
fn a_refused_run_is_not_notified_and_a_repeated_hook_failure_is_held_back() {
    let (s, rx) = notified(
        &[],
        "",
        &format!(
            "{}\n[[services.docs.config.pre_backup_hooks]]\nname = \"gate\"\ncommand = \"touch {{root}}/started; while [ ! -e {{root}}/release ]; do sleep 0.1; done; exit 1\"\n",
            docs("{root}/data/docs")
        ),
    );
    let first = Background::start(&s, &["run"]);
    wait_until("the pre hook to start", Duration::from_secs(20), || {
        s.path("started").exists()
    });
    // A second run while the first holds the service's lock.
    s.run(&["run"]).code(1);
    s.write("release", "");
    first.finish().code(1);
    // The same hook failure again, within rate_limit_minutes.
    s.run(&["run"]).code(1);

    let classes: Vec<String> = rx
        .at("/hook/")
        .iter()
        .map(|r| r.json()["error_class"].as_str().unwrap_or("").to_string())
        .collect();
    // The refusal is not the service's outcome (a healthy run held the
    // lock): nothing is sent for it. The hook failure is, once; its repeat
    // within rate_limit_minutes is held back.
    assert_eq!(classes, ["hook_failed"], "the repeat is held back");
    let body = rx.at("/hook/")[0].json();
    assert!(
        body["error"]
            .as_str()
            .unwrap_or("")
            .contains("pre-backup hook `gate` failed"),
        "{body}"
    );
}

#[test]
fn rate_limits_and_server_errors_are_retried_and_a_dead_receiver_is_only_a_warning() {
    let (s, rx) = notified(
        &[
            (
                &format!("/discord/{TOKEN}"),
                vec![Reply::Status(
                    429,
                    r#"{"message": "You are being rate limited.", "retry_after": 0.3, "global": false}"#,
                )],
            ),
            (&format!("/ntfy/{TOKEN}"), vec![Reply::Status(500, "oops")]),
            (
                &format!("/hook/{TOKEN}"),
                vec![Reply::Silent, Reply::Silent, Reply::Silent],
            ),
        ],
        "",
        &docs("{root}/data/missing"),
    );
    let started = Instant::now();
    let d = s.run(&["run"]);
    // The backup's own outcome, nothing else.
    d.code(1);
    no_secrets(&d);
    let gap = retry_gap(&rx, "/discord/", "429, then the retry");
    assert!(
        gap >= Duration::from_millis(300),
        "retry_after not honoured: {gap:?}"
    );
    assert!(
        gap < Duration::from_millis(900),
        "waited the back-off, not retry_after: {gap:?}"
    );
    let gap = retry_gap(&rx, "/ntfy/", "500, then the retry");
    assert!(
        gap >= Duration::from_secs(1),
        "no back-off after a 500: {gap:?}"
    );
    assert_eq!(rx.at("/hook/").len(), 3, "three attempts");
    d.stderr_has("warning: notifier `hook` (webhook): failure of `docs` not delivered: no answer within 2 s (after 3 attempts)");
    assert!(
        !d.stderr.contains("notifier `discord`") && !d.stderr.contains("notifier `phone`"),
        "{}",
        d.stderr
    );
    // Three 2 s timeouts and 1 s + 2 s of back-off, not 20 s of silence.
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn a_dead_receiver_never_fails_a_good_backup() {
    let (s, rx) = notified(
        &[(&format!("/hook/{TOKEN}"), vec![Reply::Silent; 3])],
        "notify_on = [\"success\"]",
        &docs("{root}/data/docs"),
    );
    s.run(&["setup", "--no-schedule"]).succeeds();
    let d = s.run(&["run"]);
    d.succeeds();
    d.stderr_has(
        "warning: notifier `hook` (webhook): success of `docs` not delivered: no answer within 2 s",
    );
    no_secrets(&d);
    // The others got the success.
    assert_eq!(rx.at("/discord/").len(), 1);
    assert_eq!(rx.at("/ntfy/")[0].header("priority"), "2");
    // The run log tells the story too.
    let log = s
        .history()
        .query("SELECT log_file FROM runs ORDER BY id DESC LIMIT 1");
    let text = std::fs::read_to_string(log[0].trim()).unwrap_or_default();
    assert!(
        text.contains("notification `hook` (webhook) success: failed"),
        "{text}"
    );
    assert!(
        text.contains("notification `discord` (discord) success: sent (HTTP 200)"),
        "{text}"
    );
}

#[test]
fn a_service_can_pick_its_notifiers_and_unknown_names_are_config_errors() {
    let (s, rx) = notified(
        &[],
        "",
        "[services.docs]\ntargets = [\"local\"]\nnotifiers = [\"hook\"]\n[services.docs.config]\npaths = [\"{root}/data/missing\"]\n",
    );
    s.run(&["run"]).code(1);
    assert_eq!(rx.at("/hook/").len(), 1);
    assert!(
        rx.at("/discord/").is_empty() && rx.at("/hc/").is_empty() && rx.at("/ntfy/").is_empty()
    );

    config(
        &s,
        &rx,
        "",
        "[services.docs]\ntargets = [\"local\"]\nnotifiers = [\"hookk\"]\n[services.docs.config]\npaths = [\"{root}/data/docs\"]\n",
    );
    let d = s.run(&["validate"]);
    d.code(2);
    d.stderr_has(
        "service `docs` names notifier `hookk`, which is not defined; did you mean `hook`?",
    );
}

#[test]
fn a_broken_configuration_is_notified_when_its_notifiers_can_be_read() {
    let (s, rx) = notified(
        &[],
        "",
        "[services.docs]\ntargets = [\"local\"]\nschedul = \"0 3 * * *\"\n[services.docs.config]\npaths = [\"{root}/data/docs\"]\n",
    );
    let d = s.run(&["run"]);
    d.code(2);
    d.stderr_has("unknown key `schedul`");
    let body = rx.one("/hook/");
    assert_eq!(body["kind"], "config");
    assert_eq!(body["event"], "failure");
    assert_eq!(body["error_class"], "config");
    assert!(body["error"].as_str().unwrap_or("").contains("schedul"));
    assert_eq!(body["service"], Value::Null);
    assert_eq!(rx.at("/discord/").len(), 1);
}

#[test]
fn restic_missing_is_notified() {
    let (s, rx) = notified(&[], "", &docs("{root}/data/docs"));
    let empty = s.path("empty-bin");
    std::fs::create_dir_all(&empty).expect("mkdir");
    let d = s.run_env(&[("PATH", &empty.display().to_string())], &["run"]);
    d.code(1);
    let body = rx.at("/hook/")[0].json();
    assert_eq!(body["error_class"], "restic_missing");
    assert_eq!(body["service"], "docs");
    assert_eq!(
        rx.at("/hc/").last().map(|r| r.path.clone()),
        Some(format!("/hc/{TOKEN}/fail"))
    );
}

#[test]
fn a_service_that_never_backed_up_is_reported_stale_once_per_rate_limit() {
    let (s, rx) = notified(&[], "", &docs("{root}/data/docs"));
    let d = s.run(&["notify", "check"]);
    d.code(3);
    d.stdout_has("docs");
    let body = rx.one("/hook/");
    assert_eq!(body["event"], "stale");
    assert_eq!(body["service"], "docs");
    // Stale goes where failures go; not to the healthchecks ping.
    assert_eq!(rx.at("/discord/").len(), 1);
    assert!(rx.at("/hc/").is_empty());
    rx.clear();
    s.run(&["notify", "check"]).code(3);
    assert!(rx.all().is_empty(), "sent again: {:?}", rx.all());
}

#[test]
fn notify_test_reports_each_notifier_and_fails_when_one_does() {
    let (s, rx) = notified(
        &[(
            &format!("/ntfy/{TOKEN}"),
            vec![Reply::Status(403, "forbidden"); 3],
        )],
        "",
        &docs("{root}/data/docs"),
    );
    let d = s.run(&["notify", "test"]);
    d.code(1);
    no_secrets(&d);
    d.stdout_has("NOTIFIER")
        .stdout_has("HTTP 403: forbidden")
        .stdout_has("HTTP 200");
    assert_eq!(rx.at("/ntfy/").len(), 1, "a 403 is not retried");
    assert_eq!(
        paths(&rx, "/hc/"),
        [format!("/hc/{TOKEN}/log")],
        "a test must not look like a successful backup"
    );

    rx.clear();
    let d = s.run(&["--json", "notify", "test", "hook"]);
    d.succeeds();
    no_secrets(&d);
    let v = d.json();
    assert_eq!(v["notifiers"].as_array().map(Vec::len), Some(1));
    assert_eq!(v["notifiers"][0]["result"], "sent");
    assert_eq!(v["notifiers"][0]["detail"], "HTTP 200");
    assert_eq!(rx.at("/hook/")[0].json()["event"], "test");

    let d = s.run(&["notify", "test", "hok"]);
    d.code(2);
    d.stderr_has("unknown notifier `hok`; did you mean `hook`?");

    // `config show` names the notifiers with their secrets redacted.
    let d = s.run(&["--json", "config", "show"]);
    d.succeeds();
    no_secrets(&d);
}

#[test]
fn long_running_is_sent_while_the_run_is_still_going() {
    // The shortest threshold is one minute: the pre hook sleeps past it.
    let (s, rx) = notified(
        &[],
        "notify_on = [\"long_running\"]",
        &format!(
            "{}\n[[services.docs.config.pre_backup_hooks]]\nname = \"slow\"\ncommand = \"sleep 64\"\n",
            docs("{root}/data/missing")
        ),
    );
    let cfg = std::fs::read_to_string(s.config_path()).unwrap_or_default();
    s.config(&cfg.replacen(
        "[global]\n",
        "[global]\nlong_running_threshold_minutes = 1\n",
        1,
    ));
    let started = Instant::now();
    s.run(&["run"]).code(1);
    let finished = Instant::now();
    let hook = rx.at("/hook/");
    assert_eq!(hook.len(), 1, "only long_running is asked for: {hook:?}");
    let body = hook[0].json();
    assert_eq!(body["event"], "long_running");
    assert_eq!(body["outcome"], "running");
    assert_eq!(body["service"], "docs");
    let at = hook[0].at;
    assert!(
        at.duration_since(started) >= Duration::from_secs(59),
        "too early"
    );
    assert!(
        finished.duration_since(at) >= Duration::from_secs(2),
        "sent only after the run"
    );
    assert_eq!(rx.at("/ntfy/")[0].header("priority"), "3");
}

// ---------------------------------------------------------------------------
// Email through a real SMTP server

/// The Python of the test venv (aiosmtpd), or `None` locally when missing.
fn smtp_python() -> Option<PathBuf> {
    let py = crate::harness::venv_bin("RM_TEST_PYTHON", "python");
    let ok = Command::new(&py)
        .args(["-c", "import aiosmtpd"])
        .output()
        .is_ok_and(|o| o.status.success());
    let why = format!("not installed in {}", py.display());
    require_component("aiosmtpd", if ok { Ok(()) } else { Err(why) }).then_some(py)
}

/// aiosmtpd storing every message in a Maildir; killed on drop.
struct Smtp {
    child: Child,
    port: u16,
    maildir: PathBuf,
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Smtp {
    fn start(py: &Path, dir: &Path) -> Smtp {
        let port = free_port();
        let mut cmd = Command::new(py);
        cmd.args([
            "-m",
            "aiosmtpd",
            "-n",
            "-l",
            &format!("127.0.0.1:{port}"),
            "-c",
            "aiosmtpd.handlers.Mailbox",
        ])
        .arg(dir.join("maildir"));
        Smtp::launch(dir, port, cmd, |_| {
            TcpStream::connect(("127.0.0.1", port)).is_ok()
        })
    }

    /// Runs `cmd` with its output in `dir/smtp.log` until `listening` (of
    /// that log) holds; fails the test when it exits or takes 20 s.
    fn launch(dir: &Path, port: u16, mut cmd: Command, listening: impl Fn(&str) -> bool) -> Smtp {
        let maildir = dir.join("maildir");
        std::fs::create_dir_all(dir).expect("mkdir");
        let log = std::fs::File::create(dir.join("smtp.log")).expect("log");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("aiosmtpd");
        let mut smtp = Smtp {
            child,
            port,
            maildir,
        };
        let start = Instant::now();
        let log = || std::fs::read_to_string(dir.join("smtp.log")).unwrap_or_default();
        while !listening(&log()) {
            if let Ok(Some(st)) = smtp.child.try_wait() {
                panic!("aiosmtpd exited ({st}): {}", log());
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "aiosmtpd did not listen"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        smtp
    }

    fn messages(&self) -> Vec<String> {
        let mut out: Vec<String> = std::fs::read_dir(self.maildir.join("new"))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| std::fs::read_to_string(e.path()).ok())
            .collect();
        out.sort();
        out
    }
}

#[test]
fn email_arrives_with_subject_addresses_summary_and_log_tail() {
    let Some(py) = smtp_python() else { return };
    let s = Scenario::new();
    let smtp = Smtp::start(&py, &s.path("smtp"));
    s.write("smtp-pw", "smtp-password-secret\n");
    s.write("data/docs/a.txt", "hello");
    s.simple(&format!(
        r#"[notifiers.mail]
type = "email"
host = "127.0.0.1"
port = {port}
security = "none"
from = "Backups <backups@example.org>"
to = ["admin@example.org", "oncall@example.org"]

{docs}"#,
        port = smtp.port,
        docs = docs("{root}/data/missing")
    ));
    let d = s.run(&["run"]);
    d.code(1);
    let mails = smtp.messages();
    assert_eq!(mails.len(), 1, "{mails:?}");
    let m = &mails[0];
    let host = String::from_utf8_lossy(
        &Command::new("hostname")
            .output()
            .map(|o| o.stdout)
            .unwrap_or_default(),
    )
    .trim()
    .to_string();
    for want in [
        "From: Backups <backups@example.org>".to_string(),
        "To: admin@example.org, oncall@example.org".to_string(),
        format!("Subject: [restic-manager] docs on {host}: failed"),
        "Content-Type: text/plain; charset=utf-8".to_string(),
        "The backup of `docs` failed.".to_string(),
        "error (source_missing):".to_string(),
        "last lines of the log:".to_string(),
        "outcome: failed".to_string(),
    ] {
        assert!(m.contains(&want), "mail lacks {want:?}:\n{m}");
    }

    // `notify test` reports the SMTP answer.
    let d = s.run(&["notify", "test", "mail"]);
    d.succeeds();
    d.stdout_has("SMTP 250");
    assert_eq!(smtp.messages().len(), 2);

    // The server offers no login (aiosmtpd without authentication): the
    // notifier fails at once with lettre's reason, and the password read
    // from `password_file` is never shown.
    let cfg = std::fs::read_to_string(s.config_path()).unwrap_or_default();
    let cfg = cfg.replace(
        "security = \"none\"",
        "security = \"none\"\nusername = \"bob\"\npassword_file = \"{root}/smtp-pw\"",
    );
    s.config(&cfg);
    let d = s.run(&["--json", "notify", "test", "mail"]);
    d.code(1);
    let v = d.json();
    assert_eq!(v["notifiers"][0]["result"], "failed");
    assert_eq!(v["notifiers"][0]["attempts"], 1, "not retried");
    assert!(
        v["notifiers"][0]["detail"]
            .as_str()
            .unwrap_or("")
            .contains("No compatible authentication mechanism"),
        "{v}"
    );
    assert!(
        !d.stdout.contains("smtp-password-secret") && !d.stderr.contains("smtp-password-secret")
    );
    assert_eq!(smtp.messages().len(), 2);
}

#[test]
fn notifier_mistakes_are_configuration_errors_with_the_fix() {
    let s = Scenario::new()
        .service("docs", |d| d.path("/srv/docs"))
        .sections(
            r#"[notifiers.a]
type = "discrod"

[notifiers.b]
type = "ntfy"

[notifiers.c]
type = "webhook"
url = "ftp://example.com/x"
token_file = "/x"

[notifiers.d]
type = "email"
host = "smtp.example.com"
security = "ssl"
to = []

[notifiers.e]
type = "ntfy"
url = "https://ntfy.sh/t"
notify_on = ["stael"]
"#,
        );
    let d = s.run(&["validate"]);
    d.code(2).stderr_has_all(&[
        "notifier `a` has unknown type `discrod`; valid types are `discord`, `webhook`, `ntfy`, `healthchecks`, `email`; did you mean `discord`?",
        "ntfy notifier `b` needs `url` (or `url_file`, a file holding the URL): the topic URL, e.g. `https://ntfy.sh/my-backups`",
        "notifier `c`: `url` must start with https:// or http://",
        "notifier `c`: key `token_file` does not apply to type `webhook`",
        "notifier `d`: unknown `security` value `ssl`; valid values are `starttls`, `tls`, `none`",
        "email notifier `d` needs `from`",
        "email notifier `d` needs `to`",
        "notifier `e`: unknown `notify_on` event `stael`; did you mean `stale`?",
    ]);
    // The URL is not echoed: it may be a secret pasted in the wrong place.
    assert!(!d.stderr.contains("ftp://example.com/x"), "{}", d.stderr);
}

// ---------------------------------------------------------------------------
// Email over STARTTLS and implicit TLS, with a private CA and login

/// `openssl ARGS` in `dir`; panics with its output when it fails.
fn openssl(dir: &Path, args: &[&str]) {
    output_ok(
        Command::new("openssl").args(args).current_dir(dir),
        &format!("openssl {args:?} (Debian package `openssl`)"),
    );
}

/// A throwaway CA (`ca.pem`) and a certificate it signed for IP 127.0.0.1
/// and DNS localhost (`server.pem`, `server.key`), in `dir`.
fn make_ca(dir: &Path) {
    std::fs::create_dir_all(dir).expect("mkdir");
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"];
    let mut ca = vec!["req", "-x509", "-nodes", "-days", "2"];
    ca.extend(ec);
    ca.extend([
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-subj",
        "/CN=restic-manager test CA",
    ]);
    openssl(dir, &ca);
    let mut req = vec!["req", "-new", "-nodes"];
    req.extend(ec);
    req.extend([
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=localhost",
    ]);
    openssl(dir, &req);
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName = IP:127.0.0.1, DNS:localhost\nbasicConstraints = critical, CA:FALSE\nkeyUsage = critical, digitalSignature\nextendedKeyUsage = serverAuth\n",
    )
    .expect("server.ext");
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-set_serial",
            "2",
            "-days",
            "2",
            "-extfile",
            "server.ext",
            "-out",
            "server.pem",
        ],
    );
}

/// The receiver: aiosmtpd with a login (user `bob`, the password in the
/// file given) that it requires before any mail, over STARTTLS (required)
/// or TLS from the first byte, storing mail in a Maildir.
const TLS_RECEIVER: &str = r#"
import logging, ssl, sys, time, warnings
# aiosmtpd warns about AUTH without STARTTLS even on a TLS-only port.
warnings.simplefilter("ignore")
logging.disable(logging.WARNING)
from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Mailbox
from aiosmtpd.smtp import AuthResult, LoginPassword

mode, port, cert, key, maildir, pwfile = sys.argv[1:7]
password = open(pwfile).read().strip()
ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
ctx.load_cert_chain(cert, key)

def authenticate(server, session, envelope, mechanism, data):
    ok = (isinstance(data, LoginPassword) and data.login == b"bob"
          and data.password.decode() == password)
    tls = server.transport.get_extra_info("ssl_object") is not None
    print("AUTH", mechanism, "ok" if ok else "denied", "tls" if tls else "plain", flush=True)
    return AuthResult(success=ok)

common = dict(hostname="127.0.0.1", port=int(port), authenticator=authenticate, auth_required=True)
if mode == "starttls":
    c = Controller(Mailbox(maildir), tls_context=ctx, require_starttls=True,
                   auth_require_tls=True, **common)
else:
    # The whole connection is TLS: login needs no STARTTLS first.
    c = Controller(Mailbox(maildir), ssl_context=ctx, auth_require_tls=False, **common)
c.start()
print("listening", mode, flush=True)
while True:
    time.sleep(3600)
"#;

impl Smtp {
    /// [`TLS_RECEIVER`] in `mode` (`starttls` or `tls`) with the
    /// certificate [`make_ca`] wrote to `ca`, the password in `pwfile`.
    fn start_tls(py: &Path, dir: &Path, mode: &str, ca: &Path, pwfile: &Path) -> Smtp {
        let port = free_port();
        std::fs::create_dir_all(dir).expect("mkdir");
        std::fs::write(dir.join("receiver.py"), TLS_RECEIVER).expect("receiver.py");
        let mut cmd = Command::new(py);
        cmd.arg(dir.join("receiver.py"))
            .args([mode, &port.to_string()])
            .args([
                ca.join("server.pem"),
                ca.join("server.key"),
                dir.join("maildir"),
            ])
            .arg(pwfile);
        Smtp::launch(dir, port, cmd, |log| log.contains("listening"))
    }
}

/// `[notifiers.NAME]` for an email receiver on 127.0.0.1 with login,
/// plus `extra` lines.
fn tls_notifier(name: &str, security: &str, port: u16, extra: &str) -> String {
    format!(
        r#"[notifiers.{name}]
type = "email"
host = "127.0.0.1"
port = {port}
security = "{security}"
username = "bob"
password_file = "{{root}}/smtp-pw"
from = "Backups <backups@example.org>"
to = ["admin@example.org"]
{extra}
"#
    )
}

const SMTP_SECRET: &str = "tls-smtp-password-9931";

/// No output and no run log holds the SMTP password.
fn no_smtp_password(s: &Scenario, d: &Done) {
    assert!(
        !d.stdout.contains(SMTP_SECRET) && !d.stderr.contains(SMTP_SECRET),
        "password leaked:\n{}\n{}",
        d.stdout,
        d.stderr
    );
    for log in s.history().query("SELECT log_file FROM runs") {
        let text = std::fs::read_to_string(log.trim()).unwrap_or_default();
        assert!(!text.contains(SMTP_SECRET), "password in {log}:\n{text}");
    }
}

/// A CA, the SMTP password, and two receivers with its certificate: STARTTLS
/// in `smtp587`, TLS in `smtp465`. `None` where aiosmtpd is missing.
fn tls_receivers() -> Option<(Scenario, Smtp, Smtp)> {
    let py = smtp_python()?;
    let s = Scenario::new();
    let ca = s.path("ca");
    make_ca(&ca);
    let pw = s.write("smtp-pw", &format!("{SMTP_SECRET}\n"));
    let starttls = Smtp::start_tls(&py, &s.path("smtp587"), "starttls", &ca, &pw);
    let tls = Smtp::start_tls(&py, &s.path("smtp465"), "tls", &ca, &pw);
    s.write("data/docs/a.txt", "hello");
    Some((s, starttls, tls))
}

#[test]
fn email_over_starttls_and_tls_trusts_the_ca_in_ca_file_and_logs_in() {
    let Some((s, starttls, tls)) = tls_receivers() else {
        return;
    };
    let ca_file = "ca_file = \"{root}/ca/ca.pem\"";
    s.simple(&format!(
        "{}{}{}",
        tls_notifier("submission", "starttls", starttls.port, ca_file),
        tls_notifier("smtps", "tls", tls.port, ca_file),
        docs("{root}/data/missing")
    ));
    let d = s.run(&["run"]);
    d.code(1);
    no_smtp_password(&s, &d);
    assert!(!d.stderr.contains("not delivered"), "{}", d.stderr);
    for (smtp, mode) in [(&starttls, "smtp587"), (&tls, "smtp465")] {
        let mails = smtp.messages();
        assert_eq!(mails.len(), 1, "{mode}: {mails:?}");
        for want in [
            "From: Backups <backups@example.org>",
            "To: admin@example.org",
            "Subject: [restic-manager] docs on ",
            ": failed",
            "The backup of `docs` failed.",
            "error (source_missing):",
        ] {
            assert!(
                mails[0].contains(want),
                "{mode} mail lacks {want:?}:\n{}",
                mails[0]
            );
        }
        // aiosmtpd requires the login, and saw it inside TLS.
        let log = std::fs::read_to_string(s.path(mode).join("smtp.log")).unwrap_or_default();
        assert!(log.contains("AUTH PLAIN ok tls"), "{mode}: {log}");
        assert!(!log.contains("denied"), "{mode}: {log}");
    }

    // `notify test` reports the SMTP answer of each.
    let d = s.run(&["--json", "notify", "test"]);
    d.succeeds();
    no_smtp_password(&s, &d);
    let v = d.json();
    for (i, name) in ["smtps", "submission"].into_iter().enumerate() {
        let n = &v["notifiers"][i];
        assert_eq!(n["notifier"], name, "{v}");
        assert_eq!(n["result"], "sent", "{v}");
        assert!(
            n["detail"].as_str().unwrap_or("").starts_with("SMTP 250"),
            "{v}"
        );
    }
    assert_eq!(starttls.messages().len(), 2);
    assert_eq!(tls.messages().len(), 2);
    // `config show` names the CA file, never the password.
    let d = s.run(&["--json", "config", "show"]);
    d.succeeds();
    no_smtp_password(&s, &d);
    d.stdout_has("ca/ca.pem");
}

#[test]
fn an_untrusted_smtp_certificate_is_a_warning_that_points_to_ca_file() {
    let Some((s, starttls, tls)) = tls_receivers() else {
        return;
    };
    // No `ca_file`: only the public roots are trusted.
    s.simple(&format!(
        "[notifications]\nnotify_on = [\"success\"]\n\n{}{}{}",
        tls_notifier("submission", "starttls", starttls.port, ""),
        tls_notifier("smtps", "tls", tls.port, ""),
        docs("{root}/data/docs")
    ));
    s.run(&["setup", "--no-schedule"]).succeeds();
    let d = s.run(&["run"]);
    d.succeeds();
    no_smtp_password(&s, &d);
    for name in ["submission", "smtps"] {
        d.stderr_has(&format!(
            "warning: notifier `{name}` (email): success of `docs` not delivered"
        ));
    }
    d.stderr_has(
        "the server's TLS certificate was refused (invalid peer certificate: UnknownIssuer)",
    )
    .stderr_has("set `ca_file` to that CA's PEM certificate");
    assert!(starttls.messages().is_empty() && tls.messages().is_empty());
    assert_eq!(
        s.snapshots("repo/docs").len(),
        1,
        "the backup itself is not affected"
    );

    // `notify test` says the same, at once (a certificate does not get
    // better by trying again).
    let d = s.run(&["--json", "notify", "test"]);
    d.code(1);
    no_smtp_password(&s, &d);
    let v = d.json();
    for n in v["notifiers"].as_array().into_iter().flatten() {
        assert_eq!(n["result"], "failed", "{v}");
        assert_eq!(n["attempts"], 1, "{v}");
        let detail = n["detail"].as_str().unwrap_or("");
        assert!(detail.contains("UnknownIssuer"), "{v}");
        assert!(detail.contains("ca_file"), "{v}");
    }
    // A `ca_file` with another CA does not help, and the message says
    // which file was used.
    make_ca(&s.path("other"));
    let cfg = std::fs::read_to_string(s.config_path()).unwrap_or_default();
    s.config(&cfg.replace(
        "to = [\"admin@example.org\"]",
        "to = [\"admin@example.org\"]\nca_file = \"{root}/other/ca.pem\"",
    ));
    let d = s.run(&["notify", "test", "smtps"]);
    d.code(1);
    no_smtp_password(&s, &d);
    // Same CA name, other key: rustls says `BadSignature`.
    d.stdout_has("the server's TLS certificate was refused (invalid peer certificate: ")
        .stdout_has(&format!(
            "it must be signed by a CA in `{}` or a public one",
            s.path("other/ca.pem").display()
        ));
    assert!(tls.messages().is_empty());

    // Neither server saw a login: the password never left.
    for mode in ["smtp587", "smtp465"] {
        let log = std::fs::read_to_string(s.path(mode).join("smtp.log")).unwrap_or_default();
        assert!(!log.contains("AUTH"), "{mode}: {log}");
    }
}

#[test]
fn a_ca_file_that_is_missing_or_holds_no_certificate_is_a_config_error() {
    let s = Scenario::new().file("not-a-cert.pem", "hello\n").file(
        "broken.pem",
        "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n",
    );
    s.simple(&format!(
        "{}{}{}{}{}",
        tls_notifier("a", "starttls", 587, "ca_file = \"{root}/missing.pem\""),
        tls_notifier("b", "tls", 465, "ca_file = \"{root}/not-a-cert.pem\""),
        tls_notifier("c", "tls", 465, "ca_file = \"{root}/broken.pem\""),
        tls_notifier("d", "none", 25, "ca_file = \"{root}/broken.pem\""),
        docs("{root}/data/docs")
    ));
    let d = s.run(&["validate"]);
    d.code(2);
    let cfg = s.config_path().display().to_string();
    let root = s.root().display().to_string();
    for (line, want) in [
        (
            17,
            format!("notifier `a`: `ca_file` `{root}/missing.pem` cannot be read: No such file"),
        ),
        (
            27,
            format!(
                "notifier `b`: `ca_file` `{root}/not-a-cert.pem` contains no certificate; it must hold the CA certificate(s) in PEM form"
            ),
        ),
        (
            37,
            format!(
                "notifier `c`: `ca_file` `{root}/broken.pem` holds a certificate that cannot be used"
            ),
        ),
        (
            47,
            "notifier `d`: `ca_file` only applies to encrypted connections".to_string(),
        ),
    ] {
        d.stderr_has(&format!("{cfg}:{line}:"));
        d.stderr_has(&want);
    }
}
