//! Nothing accepted that later breaks: bounded numbers that reach `run` and
//! `verify`, no control characters in generated files, the broken-config
//! corpus (`tests/corpus/`, see its README), mutations of the shipped
//! example, and a property test over the loader.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{Done, Scenario, spawn_piped};

/// How long one `validate` may take before the case counts as a hang.
const CASE_TIMEOUT: Duration = Duration::from_secs(20);

/// Runs `cmd` to completion or kills it after [`CASE_TIMEOUT`]; `None`
/// when it hung.
fn run_bounded(mut cmd: Command) -> Option<Done> {
    let mut child = spawn_piped(&mut cmd, Stdio::null(), "spawn");
    let mut out = child.stdout.take().expect("no stdout");
    let mut err = child.stderr.take().expect("no stderr");
    let reader = std::thread::spawn(move || {
        let (mut o, mut e) = (Vec::new(), Vec::new());
        let t = std::thread::spawn(move || {
            let _ = err.read_to_end(&mut e);
            e
        });
        let _ = out.read_to_end(&mut o);
        (o, t.join().unwrap_or_default())
    });
    let deadline = Instant::now() + CASE_TIMEOUT;
    let status = loop {
        if let Ok(Some(st)) = child.try_wait() {
            break Some(st);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let (o, e) = reader.join().unwrap_or_default();
    status.map(|st| Done {
        code: st.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o).into_owned(),
        stderr: String::from_utf8_lossy(&e).into_owned(),
    })
}

/// Runs `check` over `items` on two threads (the machines are shared);
/// returns every failure message.
fn in_parallel<T: Sync>(items: &[T], check: impl Fn(&T) -> Option<String> + Sync) -> Vec<String> {
    let half = items.len().div_ceil(2).max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .chunks(half)
            .map(|chunk| scope.spawn(|| chunk.iter().filter_map(&check).collect::<Vec<_>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| {
                h.join()
                    .unwrap_or_else(|_| vec!["a checker panicked".into()])
            })
            .collect()
    })
}

/// Every `error:` line names `file:LINE:COLUMN:`.
fn located(stderr: &str, file: &str) -> bool {
    let prefix = format!("error: {file}:");
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("error: "))
        .collect();
    !lines.is_empty()
        && lines.iter().all(|l| {
            l.strip_prefix(&prefix).is_some_and(|rest| {
                let mut parts = rest.splitn(3, ':');
                let line = parts.next().and_then(|n| n.parse::<usize>().ok());
                let col = parts.next().and_then(|n| n.parse::<usize>().ok());
                matches!((line, col), (Some(l), Some(c)) if l > 0 && c > 0)
            })
        })
}

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus")
}

/// Each file of `tests/corpus/` makes `validate` exit 2 with the message
/// on its first line (`# expect: LINE:COL: fragment`), at that place.
#[test]
fn every_corpus_file_is_refused_with_its_message() {
    let s = Scenario::new();
    let files = crate::harness::files_with_ext(&corpus_dir(), "toml");
    assert!(files.len() >= 150, "only {} corpus files", files.len());
    let failures = in_parallel(&files, |f| {
        let name = f.display().to_string();
        let bytes = std::fs::read(f).unwrap_or_default();
        let first = bytes.split(|b| *b == b'\n').next().unwrap_or_default();
        let first = String::from_utf8_lossy(first);
        let Some((place, fragment)) = first
            .strip_prefix("# expect: ")
            .and_then(|r| r.split_once(": "))
        else {
            return Some(format!(
                "{name}: first line is not `# expect: LINE:COL: fragment`"
            ));
        };
        let mut cmd = s.command();
        cmd.args(["--config", &name, "validate"]);
        let Some(d) = run_bounded(cmd) else {
            return Some(format!("{name}: validate hung"));
        };
        let want = format!("error: {name}:{place}: ");
        let hit = d
            .stderr
            .lines()
            .any(|l| l.starts_with(&want) && l.contains(fragment));
        if d.code != 2 || !hit || d.stderr.contains("panicked") {
            return Some(format!(
                "{name}: want exit 2 and `{want}…{fragment}…`, got exit {}:\n{}",
                d.code, d.stderr
            ));
        }
        None
    });
    assert!(
        failures.is_empty(),
        "{} of {} corpus files failed:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
}

/// xorshift64*: the same mutations on every machine and every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self, below: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let r = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33;
        usize::try_from(r).unwrap_or(0) % below.max(1)
    }
}

/// The shipped example with lines flipped (swapped with the next one, or
/// commented in/out), deleted and duplicated. Every mutant ends in exit 0,
/// or exit 2 with every error at `file:line:column`; none panics or hangs.
/// An accepted one also writes a crontab block with one line per job.
#[test]
fn mutations_of_the_example_end_in_0_or_a_located_2() {
    const MUTANTS: usize = 300;
    let example =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config.example.toml"))
            .expect("config.example.toml");
    let lines: Vec<&str> = example.lines().collect();
    let mut rng = Rng(0x5eed_c0ff_ee00_0013);
    let mut mutants = Vec::new();
    for i in 0..MUTANTS {
        let mut l: Vec<String> = lines.iter().map(|s| (*s).to_string()).collect();
        // One to three edits each.
        for _ in 0..=rng.next(3) {
            let at = rng.next(l.len());
            match rng.next(4) {
                0 => {
                    l.remove(at);
                }
                1 => l.insert(at, l[at].clone()),
                2 if at + 1 < l.len() => l.swap(at, at + 1),
                _ => {
                    l[at] = match l[at].strip_prefix("# ") {
                        Some(rest) => rest.to_string(),
                        None => format!("# {}", l[at]),
                    }
                }
            }
        }
        mutants.push((i, l.join("\n") + "\n"));
    }
    let s = Scenario::new();
    let accepted = std::sync::atomic::AtomicUsize::new(0);
    let failures = in_parallel(&mutants, |(i, text)| {
        let file = s.write(&format!("mutants/{i}.toml"), text);
        let name = file.display().to_string();
        let mut cmd = s.command();
        cmd.args(["--config", &name, "validate"]);
        let Some(d) = run_bounded(cmd) else {
            return Some(format!("mutant {i}: validate hung"));
        };
        match d.code {
            0 => {
                accepted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                crontab_problem(&s, &name).map(|p| format!("mutant {i} ({name}): {p}"))
            }
            2 if located(&d.stderr, &name) => None,
            _ => Some(format!(
                "mutant {i} (tests write it to {name}): exit {}:\n{}",
                d.code, d.stderr
            )),
        }
    });
    assert!(
        failures.is_empty(),
        "{} of {MUTANTS} mutants failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    let accepted = accepted.into_inner();
    eprintln!(
        "{MUTANTS} mutants: {accepted} accepted, {} refused with a location",
        MUTANTS - accepted
    );
    assert!(
        accepted > 0 && accepted < MUTANTS,
        "the mutations prove nothing: {accepted} accepted"
    );
}

/// The value a numeric key gets in [`numeric_config`] (`None`: unset).
type ValueOf = dyn Fn(&str) -> Option<String>;

/// What an accepted config's crontab block gets wrong, if anything: one
/// job line per `# service` comment, each starting with a 5-field cron
/// expression (a value with a line break would add a line).
fn crontab_problem(s: &Scenario, config: &str) -> Option<String> {
    let mut cmd = s.command();
    cmd.args(["--config", config, "schedule", "show", "--backend", "cron"]);
    let Some(d) = run_bounded(cmd) else {
        return Some("`schedule show` hung".into());
    };
    if d.code != 0 {
        return Some(format!("`schedule show` exit {}:\n{}", d.code, d.stderr));
    }
    let block: Vec<&str> = d
        .stdout
        .lines()
        .skip_while(|l| !l.starts_with("# BEGIN restic-manager"))
        .skip(1)
        .take_while(|l| !l.starts_with("# END restic-manager"))
        .collect();
    let comments = block.iter().filter(|l| l.starts_with("# ")).count();
    let jobs: Vec<&&str> = block.iter().filter(|l| !l.starts_with("# ")).collect();
    let bad = jobs.iter().find(|l| {
        let fields: Vec<&str> = l.split_whitespace().take(6).collect();
        // After the five schedule fields comes the first `NAME=value`.
        fields.len() < 6 || !fields[5].contains('=')
    });
    if comments != jobs.len() || bad.is_some() {
        return Some(format!("broken crontab block:\n{}", block.join("\n")));
    }
    None
}

/// A config whose every numeric key is `v(key)`: global, service, hook,
/// dump, notifier and notification keys. Lines: the global keys start on 2.
fn numeric_config(v: &ValueOf) -> String {
    let mut g = String::from("[global]\nrestic_password_file = \"{root}/pw\"\n");
    let mut svc = String::from("\n[services.web]\ntargets = [\"local\"]\n");
    let put = |out: &mut String, key: &str| {
        if let Some(val) = v(key) {
            let bare = key.rsplit('.').next().unwrap_or(key);
            out.push_str(&format!("{bare} = {val}\n"));
        }
    };
    for key in [
        "default_timeout_seconds",
        "hook_timeout_seconds",
        "lock_wait_seconds",
        "long_running_threshold_minutes",
        "log_max_files",
        "log_max_size_mb",
        "max_parallel_services",
        "max_parallel_destinations",
        "retention_max_remove_percent",
        "schedule_jitter",
        "verify_rotation",
        "drill_sample_files",
        "retention_last",
        "retention_daily",
    ] {
        put(&mut g, key);
    }
    for key in [
        "timeout_seconds",
        "verify_rotation",
        "drill_sample_files",
        "retention_hourly",
        "retention_weekly",
        "retention_monthly",
        "retention_yearly",
    ] {
        put(&mut svc, key);
    }
    // Each table with the key that `put` sets in it.
    let [hook, dump, notif, notifier, sftp] = [
        (
            "\n[[services.web.config.pre_backup_hooks]]\nname = \"prepare\"\ncommand = \"true\"\n",
            "hook.timeout_seconds",
        ),
        (
            "\n[[services.web.config.dumps]]\nname = \"notes\"\ncommand = \"echo notes\"\n",
            "dump.timeout_seconds",
        ),
        (
            "\n[notifications]\nnotify_on = [\"failure\"]\n",
            "rate_limit_minutes",
        ),
        (
            "\n[notifiers.hook]\ntype = \"webhook\"\nurl = \"http://127.0.0.1:9/\"\nnotify_on = [\"failure\"]\n",
            "notifier.timeout_seconds",
        ),
        (
            "\n[destinations.nas]\ntype = \"sftp\"\nhost = \"127.0.0.1\"\npath = \"/backup\"\n",
            "port",
        ),
    ]
    .map(|(table, key)| {
        let mut text = String::from(table);
        put(&mut text, key);
        text
    });
    format!(
        "{g}\n[destinations.local]\ntype = \"local\"\npath = \"{{root}}/repo\"\n{sftp}{svc}\n[services.web.config]\npaths = [\"{{root}}/src\"]\n{hook}{dump}{notif}{notifier}"
    )
}

/// The largest value each key accepts.
fn max_of(key: &str) -> Option<String> {
    let v = match key.rsplit('.').next().unwrap_or(key) {
        "timeout_seconds"
        | "default_timeout_seconds"
        | "hook_timeout_seconds"
        | "lock_wait_seconds" => "2592000",
        "long_running_threshold_minutes" | "rate_limit_minutes" => "43200",
        "log_max_files" => "10000",
        "log_max_size_mb" => "102400",
        "max_parallel_services" | "max_parallel_destinations" => "256",
        "retention_max_remove_percent" => "100",
        "schedule_jitter" => "86400",
        "verify_rotation" => "256",
        "drill_sample_files" => "100000",
        "port" => "65535",
        _ => "4294967295",
    };
    Some(v.to_string())
}

/// Keys that accept 0 (a retention rule off, no lock wait, no jitter, no
/// rate limit); every other key refuses it.
const ZERO_OK: &[&str] = &[
    "lock_wait_seconds",
    "schedule_jitter",
    "rate_limit_minutes",
    "retention_last",
    "retention_daily",
    "retention_hourly",
    "retention_weekly",
    "retention_monthly",
    "retention_yearly",
];

/// Validate, set up, back up and verify with a config; each must succeed
/// and the backup must be in history.
#[track_caller]
fn validate_run_verify(s: &Scenario, toml: &str) {
    s.config(toml);
    s.run(&["validate"]).succeeds();
    s.run(&["setup"]).succeeds();
    s.run(&["run", "-s", "web"]).succeeds();
    s.run(&["verify", "-s", "web"]).succeeds();
    assert_eq!(
        s.history()
            .query("SELECT outcome FROM runs WHERE service = 'web' ORDER BY id DESC LIMIT 1"),
        ["ok"]
    );
}

/// Every numeric key at its maximum goes through `validate`, `run` and
/// `verify`; one beyond it, or the largest TOML integer, is refused with
/// the maximum named. At 0 a key is either refused with a located message
/// or works end to end. Before the bounds, 9223372036854775807 validated
/// and `run` panicked (exit 101, no history row).
#[test]
fn numeric_keys_at_their_limits_validate_then_run() {
    let s = Scenario::new();
    s.write("pw", "secret\n");
    s.write("src/a.txt", "hello\n");
    let file = s.config_path().display().to_string();

    validate_run_verify(&s, &numeric_config(&max_of));

    // One beyond the maximum, and i64::MAX: refused, each key named.
    let one_over = |k: &str| max_of(k).map(|m| (m.parse::<u64>().unwrap_or(0) + 1).to_string());
    // Only the u64 keys: a u32 key would stop `[global]` at serde's error.
    let i64_max = |k: &str| {
        (k.ends_with("_seconds") || k.ends_with("_minutes") || k == "log_max_size_mb")
            .then(|| i64::MAX.to_string())
    };
    let beyond: [&ValueOf; 2] = [&one_over, &i64_max];
    for (i, over) in beyond.into_iter().enumerate() {
        s.config(&numeric_config(over));
        let d = s.run(&["validate"]);
        d.code(2);
        assert!(located(&d.stderr, &file), "{}", d.stderr);
        for key in [
            "default_timeout_seconds",
            "hook_timeout_seconds",
            "lock_wait_seconds",
            "long_running_threshold_minutes",
            "rate_limit_minutes",
            "log_max_size_mb",
        ] {
            d.stderr_has(&format!("`{key}` in `["));
        }
        d.stderr_has("`timeout_seconds` in `[services.web]` must be at most 2592000 (30 days)");
        d.stderr_has(
            "`timeout_seconds` in `[services.web.config.pre_backup_hooks]` must be at most 2592000",
        );
        d.stderr_has("`timeout_seconds` in `[services.web.config.dumps]` must be at most 2592000");
        d.stderr_has("`timeout_seconds` in `[notifiers.hook]` must be at most 2592000");
        if i == 0 {
            for key in [
                "log_max_files",
                "max_parallel_services",
                "max_parallel_destinations",
                "drill_sample_files",
            ] {
                d.stderr_has(&format!("`{key}` in `["));
            }
        }
        // `run` refuses the same config before doing anything: no panic.
        let r = s.run(&["run", "-s", "web"]);
        r.code(2);
        assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
    }

    // Everything at 0: the keys that refuse it say so, at their line.
    s.config(&numeric_config(&|_| Some("0".into())));
    let d = s.run(&["validate"]);
    d.code(2);
    assert!(located(&d.stderr, &file), "{}", d.stderr);
    let errors = d
        .stderr
        .lines()
        .filter(|l| l.starts_with("error: "))
        .count();
    for key in ZERO_OK {
        assert!(
            !d.stderr.contains(&format!("`{key}`")),
            "{key} = 0 must be accepted:\n{}",
            d.stderr
        );
    }
    // 12 global/service keys, 4 `timeout_seconds`, `port`.
    assert_eq!(errors, 17, "{}", d.stderr);

    // The keys that accept 0 work at 0, end to end.
    validate_run_verify(
        &s,
        &numeric_config(&|k: &str| {
            let bare = k.rsplit('.').next().unwrap_or(k);
            if ZERO_OK.contains(&bare) {
                Some("0".into())
            } else {
                max_of(k)
            }
        }),
    );
}

/// `schedule = "0\n0 * * *"` used to validate and write a crontab line
/// `0` followed by a broken job line (and a two-line systemd Description).
#[test]
fn a_newline_never_reaches_the_crontab_or_a_unit() {
    let s = Scenario::new();
    s.simple(
        "[services.web]\ntargets = [\"local\"]\nschedule = \"0\\n0 * * *\"\ndescription = \"web\\nExecStartPre=/bin/false\"\n[services.web.config]\npaths = [\"/srv/web\"]\n",
    );
    let file = s.config_path().display().to_string();
    let d = s.run(&["validate"]);
    d.code(2);
    assert_eq!(
        d.stderr
            .lines()
            .filter(|l| l.starts_with("error: "))
            .collect::<Vec<_>>(),
        [
            format!(
                "error: {file}:10:12: `schedule` in `[services.web]` contains a newline (U+000A) at character 2; remove it (values outside commands end up in crontab lines, systemd units and restic's arguments, where a line break or control character would split or corrupt them)"
            ),
            format!(
                "error: {file}:11:15: `description` in `[services.web]` contains a newline (U+000A) at character 4; remove it (values outside commands end up in crontab lines, systemd units and restic's arguments, where a line break or control character would split or corrupt them)"
            ),
        ]
    );
    for backend in ["cron", "systemd"] {
        let d = s.run(&["schedule", "show", "--backend", backend]);
        d.code(2);
        assert!(!d.stdout.contains("ExecStartPre"), "{}", d.stdout);
        assert!(!d.stdout.contains("0 * * * "), "{}", d.stdout);
    }
}

/// A 10 MB value comes back as a few hundred bytes, not 10 MB of stderr.
#[test]
fn a_ten_megabyte_value_is_not_repeated() {
    let s = Scenario::new();
    let huge = "x".repeat(10 * 1024 * 1024);
    s.simple(&format!(
        "[services.web]\ntargets = [\"local\"]\nschedule = \"{huge}\"\n[services.web.config]\npaths = [\"/srv/web\"]\n"
    ));
    let d = s.run(&["validate"]);
    d.code(2);
    assert!(d.stderr.len() < 2000, "{} bytes of stderr", d.stderr.len());
    d.stderr_has("cron expression `xxxxxxxxxx");
    d.stderr_has("…[10485660 characters]…");
}

mod property {
    //! The loader never panics, and what it accepts holds no value that
    //! breaks later; what it refuses is located. In-process through the
    //! library's `Config::from_str`, a few hundred cases (seconds).

    use std::path::Path;

    use proptest::prelude::*;
    use restic_manager::config::{Config, Env};

    /// Values a user (or an editor) might put in a string: printable text,
    /// control characters, quotes, very long runs.
    fn text() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-z0-9 */,:.-]{0,12}",
            "\\PC{0,8}",
            any::<String>().prop_map(|s| s.chars().take(12).collect()),
            Just("0\n0 * * *".to_string()),
            Just("0 0 31 2 *".to_string()),
            Just(" 1d".to_string()),
        ]
    }

    fn number() -> impl Strategy<Value = String> {
        prop_oneof![
            (0u64..=3).prop_map(|n| n.to_string()),
            any::<i64>().prop_map(|n| n.to_string()),
            Just(i64::MAX.to_string()),
            Just("2592000".to_string()),
            Just("2592001".to_string()),
            Just("1.5".to_string()),
        ]
    }

    const STRING_KEYS: &[&str] = &[
        "schedule",
        "description",
        "max_age",
        "verify_schedule",
        "prune",
        "retention_within",
    ];
    const NUMBER_KEYS: &[&str] = &[
        "timeout_seconds",
        "retention_daily",
        "drill_sample_files",
        "verify_rotation",
    ];

    /// A valid file with a few keys of `[services.web]` set to generated
    /// values, or one generated line inserted anywhere.
    fn config() -> impl Strategy<Value = String> {
        let keys = prop::collection::vec(
            prop_oneof![
                (prop::sample::select(STRING_KEYS), text()).prop_map(|(k, v)| {
                    let quoted = toml::Value::String(v).to_string();
                    format!("{k} = {quoted}")
                }),
                (prop::sample::select(NUMBER_KEYS), number())
                    .prop_map(|(k, v)| format!("{k} = {v}")),
            ],
            0..4,
        );
        let stray = prop::option::of((0usize..16, "\\PC{0,30}"));
        (keys, stray).prop_map(|(mut keys, stray)| {
            keys.sort();
            keys.dedup_by(|a, b| a.split(' ').next() == b.split(' ').next());
            let mut lines: Vec<String> = [
                "[global]",
                "restic_password_file = \"/etc/rm/pw\"",
                "[destinations.local]",
                "type = \"local\"",
                "path = \"/srv/backup\"",
                "[services.web]",
                "targets = [\"local\"]",
            ]
            .iter()
            .map(|s| (*s).to_string())
            .chain(keys)
            .chain([
                "[services.web.config]".into(),
                "paths = [\"/srv/web\"]".into(),
            ])
            .collect();
            if let Some((at, line)) = stray {
                let at = at.min(lines.len());
                lines.insert(at, line);
            }
            lines.join("\n")
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 400, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn the_loader_accepts_only_what_works_and_locates_the_rest(text in config()) {
            let file = Path::new("/etc/restic-manager/config.toml");
            match Config::from_str(file, &text, &Env::default()) {
                Ok(c) => {
                    for s in &c.services {
                        prop_assert!(s.timeout_seconds >= 1 && s.timeout_seconds <= 2_592_000);
                        prop_assert!(std::time::Instant::now().checked_add(s.timeout()).is_some());
                        for v in s.schedule.iter().chain(s.description.iter()).chain(s.tags.iter()) {
                            prop_assert!(!v.chars().any(char::is_control), "{v:?}");
                        }
                        if let Some(sched) = &s.schedule {
                            prop_assert!(restic_manager::config::checks::never_fires(sched).is_none());
                        }
                    }
                }
                Err(errors) => {
                    prop_assert!(!errors.is_empty());
                    for e in errors {
                        prop_assert!(e.line >= 1 && e.column >= 1, "{e}");
                        prop_assert!(e.message.len() < 20_000);
                    }
                }
            }
        }
    }
}
