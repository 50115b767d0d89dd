//! `status`: health per service and destination (ok, warning, failed,
//! stale, unverified), its reasons in words, the exit codes monitoring
//! relies on, and `--live` against the repositories themselves.

use serde_json::Value;

use crate::harness::Scenario;

const GLOBAL: &str = "[global]\nrestic_password_file = \"{root}/pw\"\nhost = \"test-host\"\n\n[destinations.local]\ntype = \"local\"\npath = \"{root}/repo\"\n\n";

/// A service backing up `{root}/data/NAME` to `local`, plus `extra` keys.
fn service(name: &str, extra: &str) -> String {
    format!(
        "[services.{name}]\ntargets = [\"local\"]\n{extra}\n[services.{name}.config]\npaths = [\"{{root}}/data/{name}\"]\n"
    )
}

fn scenario(services: &[String]) -> Scenario {
    let s = Scenario::new();
    s.write("pw", "status-test-password");
    for name in ["good", "shaky", "broken", "docs", "old", "weekday", "daily"] {
        s.write(&format!("data/{name}/file.txt"), name);
    }
    s.config(&format!("{GLOBAL}{}", services.concat()));
    s
}

/// `status --json`, keyed by service.
fn states(s: &Scenario, args: &[&str], code: i32) -> Value {
    let mut all = vec!["status", "--json"];
    all.extend(args);
    let d = s.run(&all);
    d.code(code);
    d.json()
}

fn find<'a>(v: &'a Value, service: &str) -> &'a Value {
    v.as_array()
        .and_then(|a| a.iter().find(|s| s["service"] == service))
        .unwrap_or_else(|| panic!("no service {service} in {v}"))
}

/// `status --json` exits with `code` and says `state` for `docs` on its
/// destination; returns the reasons.
#[track_caller]
fn docs_state(s: &Scenario, code: i32, state: &str) -> String {
    let v = states(s, &[], code);
    let d = &find(&v, "docs")["destinations"][0];
    assert_eq!(d["state"], state, "{d}");
    reasons(d)
}

fn reasons(v: &Value) -> String {
    v["reasons"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default()
}

#[test]
fn ok_warning_and_failed_services_give_exit_codes_0_3_and_1() {
    let s = scenario(&[
        service("good", ""),
        // A post hook allowed to fail: the backup is kept, with a warning.
        service("shaky", "")
            + "[[services.shaky.config.post_backup_hooks]]\nname = \"ping\"\ncommand = \"exit 5\"\ncontinue_on_error = true\n",
        // A pre hook that fails stops the run before any backup.
        service("broken", "")
            + "[[services.broken.config.pre_backup_hooks]]\nname = \"dump\"\ncommand = \"echo dump failed >&2; exit 1\"\n",
    ]);
    s.run(&["setup"]).succeeds();
    s.run(&["run"]).code(1);

    let v = states(&s, &[], 1);
    assert_eq!(find(&v, "good")["state"], "ok", "{v}");
    assert_eq!(find(&v, "shaky")["state"], "warning", "{v}");
    assert_eq!(find(&v, "broken")["state"], "failed", "{v}");
    let broken = &find(&v, "broken")["destinations"][0];
    assert_eq!(broken["state"], "failed");
    assert!(
        reasons(broken).starts_with("last run failed ")
            && reasons(broken).contains(" ago: pre-backup hook `dump` failed"),
        "{broken}"
    );
    // Nothing was ever backed up, but it was configured just now: new,
    // in words (the failure decides its state).
    assert!(
        reasons(broken).contains("never backed up (configured "),
        "{broken}"
    );
    let shaky = &find(&v, "shaky")["destinations"][0];
    assert!(
        reasons(shaky).starts_with("last run finished with warnings"),
        "{shaky}"
    );
    // The good service's snapshot is the one restic holds.
    let id = s.snapshots("repo/good")[0]["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let recorded = find(&v, "good")["destinations"][0]["snapshot_id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        !recorded.is_empty() && id.starts_with(&recorded),
        "{recorded} vs {id}"
    );

    // The filter decides what counts.
    states(&s, &["--service", "good"], 0);
    states(&s, &["--service", "good", "--service", "shaky"], 3);
    states(&s, &["--service", "shaky", "--service", "broken"], 1);

    // The table says the same, with the reasons under it.
    let t = s.run(&["status"]);
    t.code(1)
        .stdout_has("SERVICE  HEALTH")
        .stdout_has("broken/local: last run failed ")
        .stdout_has(" ago: pre-backup hook `dump` failed")
        .stdout_line("good ", " ok ");
}

/// Service `docs` with `keys`, set up and backed up once.
fn backed_up(keys: &str) -> Scenario {
    let s = scenario(&[service("docs", keys)]);
    s.run(&["setup"]).succeeds();
    s.run(&["run"]).succeeds();
    s
}

#[test]
fn a_snapshot_older_than_max_age_is_stale() {
    let s = backed_up("max_age = \"2s\"");
    let v = states(&s, &[], 0);
    assert_eq!(find(&v, "docs")["destinations"][0]["max_age"], "2s");
    std::thread::sleep(std::time::Duration::from_millis(3100));
    let r = docs_state(&s, 3, "stale");
    assert!(
        r.starts_with("newest snapshot ") && r.ends_with("s ago, max_age 2s"),
        "{r}"
    );
    s.run(&["status"])
        .code(3)
        .stdout_has("docs/local: newest snapshot ")
        .stdout_has("s ago, max_age 2s\n");
}

/// Inserts a successful run of `service` that finished `hours` ago, the way
/// `run` records one.
fn old_run(s: &Scenario, service: &str, hours: i64) {
    let ms = format!("(CAST(strftime('%s','now') AS INTEGER) - {hours} * 3600) * 1000");
    s.history().query(&format!(
        "INSERT INTO runs (service, started_at, finished_at, outcome, trigger, pid, host)
         VALUES ('{service}', {ms}, {ms}, 'ok', 'cron', 1, 'test-host');
         INSERT INTO run_targets (run_id, destination, repository, outcome, snapshot_id, duration_ms, finished_at)
         VALUES (last_insert_rowid(), 'local', '{{root}}/repo/{service}', 'ok', 'abcdef12', 1000, {ms});"
    ));
}

#[test]
fn max_age_defaults_to_twice_the_schedule_interval_or_26_hours() {
    let s = scenario(&[
        service("daily", "schedule = \"0 3 * * *\""),
        // Weekdays only: the weekend gap (3 days) sets the limit, not 1 day.
        service("weekday", "schedule = \"0 2 * * 1-5\""),
        service("old", ""),
    ]);
    // Opening the history creates the schema.
    s.run(&["status"]).code(3);
    old_run(&s, "daily", 50);
    old_run(&s, "weekday", 60);
    old_run(&s, "old", 27);
    let v = states(&s, &[], 3);
    let daily = &find(&v, "daily")["destinations"][0];
    assert_eq!(daily["state"], "stale", "{daily}");
    assert_eq!(
        reasons(daily),
        "newest snapshot 2d 2h ago, max_age 2d (twice the schedule's interval)"
    );
    assert_eq!(daily["max_age_from"], "schedule");
    let weekday = &find(&v, "weekday")["destinations"][0];
    assert_eq!(weekday["state"], "ok", "{weekday}");
    assert_eq!(weekday["max_age"], "6d");
    let old = &find(&v, "old")["destinations"][0];
    assert_eq!(old["state"], "stale");
    assert_eq!(
        reasons(old),
        "newest snapshot 1d 3h ago, max_age 26h (default)"
    );
}

/// Records a verify of `service` on `local` that ended `secs` ago.
fn verified(s: &Scenario, service: &str, outcome: &str, secs: i64, message: &str) {
    let ms = format!("(CAST(strftime('%s','now') AS INTEGER) - {secs}) * 1000");
    s.history().query(&format!(
        "INSERT INTO verifies (service, destination, kind, trigger, started_at, finished_at, outcome, error_message)
         VALUES ('{service}', 'local', 'check', 'manual', {ms}, {ms}, '{outcome}', NULLIF('{message}', ''))"
    ));
}

#[test]
fn unverified_after_verify_max_age_without_a_successful_verify() {
    let s = backed_up("verify_max_age = \"2s\"");
    // Never verified, but the repository is younger than verify_max_age:
    // a new service is given that long for its first verify.
    let v = states(&s, &[], 0);
    assert_eq!(find(&v, "docs")["state"], "ok");
    std::thread::sleep(std::time::Duration::from_millis(3100));
    // Still fresh enough (max_age 26h), but never verified.
    let r = docs_state(&s, 3, "unverified");
    assert!(
        r.starts_with("never verified successfully, first snapshot ")
            && r.ends_with("s ago, verify_max_age 2s; run `restic-manager verify`"),
        "{r}"
    );
    // A successful verify just now: ok again.
    verified(&s, "docs", "ok", 0, "");
    let v = states(&s, &[], 0);
    assert!(
        find(&v, "docs")["destinations"][0]["last_successful_verify_at"].is_string(),
        "{v}"
    );
    // It ages out like a snapshot does.
    std::thread::sleep(std::time::Duration::from_millis(3100));
    let v = states(&s, &[], 3);
    let d = &find(&v, "docs")["destinations"][0];
    let r = reasons(d);
    assert!(
        r.starts_with("last successful verify ") && r.ends_with("s ago, verify_max_age 2s"),
        "{r}"
    );
    // A verify that found damage is a failure, whatever came before.
    verified(&s, "docs", "failed", 0, "pack 1234abcd is missing");
    let v = states(&s, &[], 1);
    let d = &find(&v, "docs")["destinations"][0];
    assert_eq!(d["state"], "failed");
    let why = reasons(d);
    assert!(why.contains("last verify failed "), "{d}");
    assert!(why.contains("s ago: pack 1234abcd is missing"), "{d}");
}

#[test]
fn verify_max_age_off_and_disabled_services_do_not_count() {
    let s = scenario(&[
        service("docs", "verify_max_age = \"off\"\nmax_age = \"off\""),
        service("old", "enabled = false"),
    ]);
    // Never backed up: stale even with `max_age = "off"`.
    s.run(&["status"]).code(3);
    old_run(&s, "docs", 24 * 400);
    // A year-old snapshot, never verified: both checks are off.
    let v = states(&s, &[], 0);
    assert_eq!(find(&v, "docs")["state"], "ok", "{v}");
    // `old` never ran and is stale, but disabled: exit 0 all the same.
    assert_eq!(find(&v, "old")["state"], "stale");
    assert_eq!(find(&v, "old")["enabled"], false);
    s.run(&["status"]).succeeds().stdout_has("old (disabled)");
    // Named explicitly, a disabled service is shown but still does not count.
    states(&s, &["--service", "old"], 0);
}

#[test]
fn a_bad_max_age_is_a_config_error_with_its_location() {
    let s = scenario(&[service("docs", "max_age = \"26\"")]);
    let d = s.run(&["status"]);
    d.code(2).stderr_has(&s.in_config(
        "11:1: service `docs`: `max_age`: `26` is not a duration; write a number with a unit: s, m (minutes), h, d or w, e.g. `26h`, `3d`, `1d12h`, or `off`",
    ));
}

#[test]
fn live_status_after_a_host_rebuild_trusts_the_repository() {
    let s = backed_up("");
    let id = s.snapshots("repo/docs")[0]["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();

    // The host is rebuilt: the history database is gone.
    for f in std::fs::read_dir(s.path("state/restic-manager"))
        .into_iter()
        .flatten()
        .flatten()
    {
        if f.file_name()
            .to_string_lossy()
            .starts_with("history.sqlite")
        {
            std::fs::remove_file(f.path()).expect("rm");
        }
    }
    // History alone now knows nothing.
    let v = states(&s, &[], 3);
    assert_eq!(
        reasons(&find(&v, "docs")["destinations"][0]),
        "no successful snapshot recorded"
    );
    // The repository knows better, and the disagreement is spelt out.
    let v = states(&s, &["--live"], 0);
    let d = &find(&v, "docs")["destinations"][0];
    assert_eq!(d["state"], "ok", "{d}");
    assert_eq!(d["snapshot_id"], id.as_str());
    assert_eq!(d["snapshot_source"], "repository");
    assert_eq!(d["snapshot_host"], "test-host");
    assert_eq!(d["snapshots_known"], 1);
    let dis = d["disagreements"][0].as_str().unwrap_or_default();
    assert!(
        dis.starts_with(&format!(
            "history records no snapshot here, but the repository has {} from ",
            &id[..8]
        )),
        "{d}"
    );
    s.run(&["status", "--live"])
        .succeeds()
        .stdout_has(" ago, repo)")
        .stdout_has("docs/local: history records no snapshot here");
}

#[test]
fn live_status_reports_a_missing_snapshot_and_an_unreadable_repository() {
    let s = backed_up("");
    s.run(&["run"]).succeeds();
    // Someone removes the newest snapshot behind restic-manager's back.
    let mut snaps = s.snapshots("repo/docs");
    snaps.sort_by_key(|v| v["time"].as_str().unwrap_or_default().to_string());
    let newest = snaps[1]["id"].as_str().unwrap_or_default().to_string();
    let older = snaps[0]["short_id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    s.restic("repo/docs", &["forget", &newest]).succeeds();
    let v = states(&s, &["--live"], 3);
    let d = &find(&v, "docs")["destinations"][0];
    assert_eq!(d["state"], "warning", "{d}");
    let r = reasons(d);
    assert!(
        r.starts_with(&format!(
            "history's newest snapshot {} is not in the repository (its newest is {older} from ",
            &newest[..8]
        )) && r.ends_with("it was removed, or the repository was replaced"),
        "{r}"
    );

    // The repository disappears (disk not mounted): failed, classified.
    std::fs::rename(s.path("repo"), s.path("repo-unmounted")).expect("mv");
    let v = states(&s, &["--live"], 1);
    let d = &find(&v, "docs")["destinations"][0];
    assert_eq!(d["state"], "failed", "{d}");
    assert!(
        reasons(d).starts_with(&format!(
            "repository cannot be read (repository_missing): repository `{}` does not exist",
            s.path("repo/docs").display()
        )),
        "{d}"
    );
}

#[test]
fn limits_are_inherited_global_then_profile_then_service() {
    let s = Scenario::new();
    s.write("pw", "status-test-password");
    s.config(
        "[global]\nrestic_password_file = \"{root}/pw\"\nmax_age = \"3d\"\nverify_max_age = \"2w\"\n\n\
         [destinations.local]\ntype = \"local\"\npath = \"{root}/repo\"\n\n\
         [profiles.hourly]\nmax_age = \"2h\"\nschedule = \"0 * * * *\"\n\n\
         [services.a]\ntargets = [\"local\"]\n[services.a.config]\npaths = [\"/srv/a\"]\n\n\
         [services.b]\nprofile = \"hourly\"\ntargets = [\"local\"]\n[services.b.config]\npaths = [\"/srv/b\"]\n\n\
         [services.c]\nprofile = \"hourly\"\nmax_age = \"1d12h\"\nverify_max_age = \"off\"\ntargets = [\"local\"]\n[services.c.config]\npaths = [\"/srv/c\"]\n",
    );
    let v = states(&s, &[], 3);
    for (svc, max_age, from, verify) in [
        ("a", "3d", "max_age", "14d"),
        ("b", "2h", "max_age", "14d"),
        ("c", "36h", "max_age", "off"),
    ] {
        let d = &find(&v, svc)["destinations"][0];
        assert_eq!(d["max_age"], max_age, "{svc}: {d}");
        assert_eq!(d["max_age_from"], from, "{svc}");
        assert_eq!(d["verify_max_age"], verify, "{svc}");
    }
}
