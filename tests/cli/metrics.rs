//! Metrics: the Prometheus text file after a run (checked by `promtool`),
//! the `metrics` command, and pushes to a Pushgateway and InfluxDB, each a
//! local HTTP receiver that records the exact requests. A receiver that
//! fails or never answers must not fail the backup.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::harness::{Scenario, promtool_missing, require_component};

/// One request as the receiver saw it.
#[derive(Debug, Clone)]
struct Request {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: String,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// How the receiver answers.
#[derive(Clone, Copy)]
enum Answer {
    Status(u16),
    /// Accept the connection, read the request, never answer.
    Never,
}

/// A tiny HTTP/1.1 receiver on a free loopback port.
struct Receiver {
    port: u16,
    requests: Arc<Mutex<Vec<Request>>>,
    stop: Arc<AtomicBool>,
}

fn read_request(stream: &TcpStream) -> Option<Request> {
    let mut r = BufReader::new(stream.try_clone().ok()?);
    let mut line = String::new();
    r.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let path = parts.next()?.to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        r.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let len = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    r.read_exact(&mut body).ok()?;
    Some(Request {
        method,
        path,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

impl Receiver {
    fn start(answer: Answer) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a receiver");
        let port = listener.local_addr().expect("local_addr").port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (reqs, stopping) = (requests.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for stream in listener.incoming() {
                if stopping.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(mut stream) = stream else { continue };
                let Some(req) = read_request(&stream) else {
                    continue;
                };
                reqs.lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push(req);
                match answer {
                    Answer::Status(code) => {
                        let body = if code >= 400 { "receiver says no" } else { "" };
                        let _ = write!(
                            stream,
                            "HTTP/1.1 {code} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                            body.len()
                        );
                    }
                    // Keep the connection open and silent.
                    Answer::Never => held.push(stream),
                }
            }
        });
        Receiver {
            port,
            requests,
            stop,
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn requests(&self) -> Vec<Request> {
        self.requests
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the accept loop so the thread ends.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// `promtool check metrics` on `text`; `None` (with the reason printed)
/// when promtool is missing outside CI.
pub fn promtool(text: &str) -> Option<String> {
    let child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let child = match child {
        Ok(c) => c,
        Err(e) => {
            require_component("promtool", Err(promtool_missing(&e)));
            return None;
        }
    };
    let out = crate::harness::feed(child, text.as_bytes(), "promtool");
    assert!(
        out.status.success(),
        "promtool rejected the metrics:\n{}{}\n--- metrics:\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn scenario(global_extra: &str, rest: &str) -> Scenario {
    let s = Scenario::new()
        .file("pw", "metrics-test-password")
        .file("data/docs/a.txt", "some data worth keeping")
        .file("data/docs/b.txt", "more data")
        .global("host = \"test-host\"")
        .global(global_extra)
        .service("docs", |d| d.path("{root}/data/docs"))
        .sections(rest);
    s.run(&["setup"]).succeeds();
    s
}

/// The value of the one sample that starts with `series` (name and labels).
fn sample(text: &str, series: &str) -> f64 {
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .collect();
    assert_eq!(lines.len(), 1, "one sample {series} in:\n{text}");
    lines[0][series.len() + 1..]
        .parse()
        .unwrap_or_else(|e| panic!("value of {series}: {e}"))
}

fn labels(name: &str, extra: &str) -> String {
    format!("{name}{{service=\"docs\",destination=\"local\",host=\"test-host\"{extra}}}")
}

#[test]
fn metrics_file_is_written_after_a_run_and_passes_promtool() {
    let s = scenario("metrics_file = \"{root}/textfile/restic-manager.prom\"", "");
    let before = chrono::Utc::now().timestamp();
    s.run(&["run"]).succeeds();
    let file = s.path("textfile/restic-manager.prom");
    let text = std::fs::read_to_string(&file).expect("metrics file");
    promtool(&text);
    // Only the file: the temporary one was renamed into place.
    let names: Vec<String> = std::fs::read_dir(s.path("textfile"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["restic-manager.prom"]);

    let restic_version = String::from_utf8_lossy(
        &Command::new("restic")
            .arg("version")
            .output()
            .expect("restic version")
            .stdout,
    )
    .split_whitespace()
    .nth(1)
    .unwrap_or_default()
    .to_string();
    assert!(
        text.contains(&format!(
            "restic_manager_restic_info{{host=\"test-host\",version=\"{restic_version}\",manager_version=\""
        )),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            &labels("restic_manager_last_run_outcome", ",outcome=\"ok\"")
        ),
        1.0
    );
    assert_eq!(
        sample(
            &text,
            &labels("restic_manager_last_run_outcome", ",outcome=\"failed\"")
        ),
        0.0
    );
    assert_eq!(
        sample(&text, &labels("restic_manager_health", ",state=\"ok\"")),
        1.0
    );
    assert_eq!(
        sample(&text, &labels("restic_manager_snapshots_created_total", "")),
        1.0
    );
    assert_eq!(
        sample(&text, &labels("restic_manager_last_run_new_files", "")),
        2.0
    );
    assert!(sample(&text, &labels("restic_manager_last_run_added_bytes", "")) > 0.0);
    assert!(sample(&text, &labels("restic_manager_repository_size_bytes", "")) > 1000.0);
    let last = sample(
        &text,
        &labels("restic_manager_last_success_timestamp_seconds", ""),
    );
    #[allow(clippy::cast_precision_loss)]
    let window = (before as f64 - 1.0)..(chrono::Utc::now().timestamp() as f64 + 1.0);
    assert!(window.contains(&last), "{last} not in {window:?}");
    assert!(
        sample(
            &text,
            &labels("restic_manager_newest_snapshot_age_seconds", "")
        ) < 60.0
    );
    assert_eq!(
        sample(
            &text,
            "restic_manager_runs_total{service=\"docs\",host=\"test-host\",outcome=\"ok\"}"
        ),
        1.0
    );
    // Never verified: no verify series at all rather than a fake zero.
    assert!(!text.contains("verify"), "{text}");

    // A verify recorded in history shows up at the next write, and the
    // `metrics` command prints the same families.
    s.history().query(
        "INSERT INTO verifies (service, destination, kind, trigger, started_at, finished_at, outcome)
         VALUES ('docs', 'local', 'check', 'manual', 1700000000000, 1700000060000, 'ok')",
    );
    let m = s.run(&["metrics"]);
    m.succeeds();
    promtool(&m.stdout);
    assert_eq!(
        sample(
            &m.stdout,
            &labels("restic_manager_last_verify_outcome", ",outcome=\"ok\"")
        ),
        1.0
    );
    assert_eq!(
        sample(
            &m.stdout,
            &labels(
                "restic_manager_last_successful_verify_timestamp_seconds",
                ""
            )
        ),
        1_700_000_060.0
    );
    for family in text.lines().filter(|l| l.starts_with("# TYPE ")) {
        assert!(m.stdout.contains(family), "{family} missing from `metrics`");
    }
}

#[test]
fn metrics_command_without_a_run_and_with_an_unwritable_file() {
    // metrics_file in a folder that cannot be created (a file is in the way).
    let s = scenario("metrics_file = \"{root}/blocker/m.prom\"", "");
    s.write("blocker", "not a folder");
    // The backup succeeds; the metrics problem is a warning.
    let d = s.run(&["run"]);
    d.succeeds().stderr_has(&format!(
        "warning: metrics: cannot write `metrics_file` `{}`",
        s.path("blocker/m.prom").display()
    ));
    // `metrics --push` reports the same problem with exit 3.
    s.run(&["metrics", "--push"])
        .code(3)
        .stderr_has("warning: metrics: cannot write `metrics_file`")
        .stdout_has("# TYPE restic_manager_health gauge");
}

#[test]
fn pushgateway_and_influxdb_receive_the_figures_after_a_run() {
    let pg = Receiver::start(Answer::Status(200));
    let v2 = Receiver::start(Answer::Status(204));
    let s = scenario(
        "",
        &format!(
            "[metrics.pushgateway]\nurl = \"{}\"\njob = \"backups\"\n\n[metrics.influxdb]\nurl = \"{}/\"\norg = \"home lab\"\nbucket = \"backups\"\ntoken_file = \"{{root}}/influx-token\"\n",
            pg.url(),
            v2.url()
        ),
    );
    s.write("influx-token", "s3cr3t-influx-token\n");
    let d = s.run(&["run"]);
    d.succeeds();
    assert!(!d.stderr.contains("warning"), "{}", d.stderr);

    let pushes = pg.requests();
    assert_eq!(pushes.len(), 1, "{pushes:?}");
    let p = &pushes[0];
    assert_eq!(p.method, "PUT");
    assert_eq!(p.path, "/metrics/job/backups/host/test-host");
    assert_eq!(p.header("content-type"), Some("text/plain; version=0.0.4"));
    promtool(&p.body);
    assert_eq!(
        sample(&p.body, &labels("restic_manager_health", ",state=\"ok\"")),
        1.0
    );

    let writes = v2.requests();
    assert_eq!(writes.len(), 1, "{writes:?}");
    let w = &writes[0];
    assert_eq!(w.method, "POST");
    assert_eq!(
        w.path,
        "/api/v2/write?org=home+lab&bucket=backups&precision=s"
    );
    assert_eq!(w.header("authorization"), Some("Token s3cr3t-influx-token"));
    let lines: Vec<&str> = w.body.lines().collect();
    assert_eq!(lines.len(), 2, "{}", w.body);
    assert!(
        lines[0].starts_with("restic_manager_restic,host=test-host version=\"0."),
        "{}",
        lines[0]
    );
    let docs = lines[1];
    assert!(
        docs.starts_with(
            "restic_manager,host=test-host,service=docs,destination=local state=\"ok\",added_bytes="
        ),
        "{docs}"
    );
    for field in [
        ",new_files=2i,",
        ",changed_files=0i,",
        ",snapshots_created=1i,",
        ",last_outcome=\"ok\"",
    ] {
        assert!(docs.contains(field), "{field} in {docs}");
    }
    // The token is never shown.
    for out in [&d.stdout, &d.stderr] {
        assert!(!out.contains("s3cr3t"), "token leaked: {out}");
    }

    // InfluxDB 1: the database API, no token.
    let v1 = Receiver::start(Answer::Status(204));
    let s = s.without_sections().sections(&format!(
        "[metrics.influxdb]\nurl = \"{}\"\ndatabase = \"backups\"\n",
        v1.url()
    ));
    s.run(&["metrics", "--push"]).succeeds();
    let writes = v1.requests();
    assert_eq!(writes.len(), 1, "{writes:?}");
    assert_eq!(writes[0].path, "/write?db=backups&precision=s");
    assert_eq!(writes[0].header("authorization"), None);
}

#[test]
fn a_failing_or_silent_receiver_does_not_fail_the_backup() {
    let failing = Receiver::start(Answer::Status(500));
    let silent = Receiver::start(Answer::Never);
    let s = scenario(
        "metrics_file = \"{root}/m.prom\"",
        &format!(
            "[metrics.pushgateway]\nurl = \"{}\"\n\n[metrics.influxdb]\nurl = \"{}\"\norg = \"o\"\nbucket = \"b\"\ntoken_file = \"{{root}}/influx-token\"\n",
            failing.url(),
            silent.url()
        ),
    );
    s.write("influx-token", "never-printed-token");
    let start = Instant::now();
    let d = s.run(&["run"]);
    let took = start.elapsed();
    d.succeeds()
        .stderr_has(&format!(
            "warning: metrics: pushgateway `{}/metrics/job/restic-manager/host/test-host` answered HTTP 500 Internal Server Error: receiver says no",
            failing.url()
        ))
        .stderr_has(&format!(
            "warning: metrics: influxdb `{}/api/v2/write?org=o&bucket=b&precision=s`: no answer within 10 s",
            silent.url()
        ));
    assert!(!d.stderr.contains("never-printed-token"), "{}", d.stderr);
    // Both waited at once, and the timeout held.
    assert!(
        took < Duration::from_secs(25),
        "the run took {took:?} with a silent receiver"
    );
    assert_eq!(failing.requests().len(), 1);
    assert_eq!(silent.requests().len(), 1);
    // The backup itself is recorded as ok, and the file was still written.
    assert_eq!(s.history().query("SELECT outcome FROM runs"), ["ok"]);
    assert!(Path::new(&s.path("m.prom")).is_file());
    assert_eq!(s.snapshots("repo/docs").len(), 1);
}

#[test]
fn a_real_verify_turns_unverified_into_ok_and_rewrites_the_metrics_file() {
    let s = scenario(
        "metrics_file = \"{root}/m.prom\"\nverify_max_age = \"1s\"",
        "",
    );
    s.run(&["run"]).succeeds();
    std::thread::sleep(Duration::from_millis(2100));
    // Backed up, never verified, past verify_max_age.
    let st = s.run(&["status", "--json"]);
    st.code(3);
    assert_eq!(st.json()[0]["state"], "unverified", "{}", st.stdout);
    s.run(&["verify"]).succeeds();
    // `verify` rewrote the metrics file: the verify is in it.
    let text = std::fs::read_to_string(s.path("m.prom")).unwrap();
    promtool(&text);
    assert_eq!(
        sample(
            &text,
            &labels("restic_manager_last_verify_outcome", ",outcome=\"ok\"")
        ),
        1.0
    );
    assert_eq!(
        sample(&text, &labels("restic_manager_health", ",state=\"ok\"")),
        1.0
    );
    let st = s.run(&["status", "--json"]);
    st.succeeds();
    assert!(st.json()[0]["destinations"][0]["last_successful_verify_at"].is_string());
}

#[test]
fn metrics_receivers_are_checked_with_the_configuration() {
    let s = Scenario::new()
        .global("host = \"test-host\"")
        .service("docs", |d| d.path("{root}/data"))
        .sections("[metrics.pushgateway]\nurl = \"pushgateway:9091\"\n\n[metrics.influxdb]\nurl = \"http://influx:8086\"\norg = \"home\"\nbucket = \"b\"\ndatabase = \"backups\"\ntoken = \"inline\"\n");
    let d = s.run(&["validate"]);
    d.code(2);
    for msg in [
        "`[metrics.pushgateway] url` must be an http:// or https:// URL, e.g. `http://pushgateway:9091`",
        "`[metrics.influxdb]` needs either `org` and `bucket` (InfluxDB 2 API) or `database` (InfluxDB 1 API), not both or neither",
        "unknown key `token`",
    ] {
        assert!(
            d.stderr.contains(msg) || d.stdout.contains(msg),
            "{msg}\n{d:?}"
        );
    }
}
