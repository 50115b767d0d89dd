//! What got faster still does what it did: retention costs one restic call
//! when it removes nothing, removes exactly the planned snapshots, runs
//! right after each destination's own backup or copy, and its guard still
//! refuses a plan that empties a group or removes too much.
//!
//! A wrapper in front of the real restic records every call (repository
//! and arguments) and can play two tricks: a backup that lands between the
//! plan and the removal, and a plan that keeps nothing.

use std::path::Path;

use crate::harness::Scenario;

/// `{root}/bin/restic`: logs `REPOSITORY|ARGS` to `{root}/calls`, then
/// runs the real restic. With `{root}/interloper`, a `forget` that removes
/// snapshots first makes one more backup of the service (once); with
/// `{root}/empty-plan`, a planning `forget` keeps only a tag nobody has;
/// with `{root}/slow-d3`, a backup to `d3` takes 3 s longer and logs
/// `backup-done` when it ends.
fn wrapper(s: &Scenario) {
    let root = s.root().display().to_string();
    let script = format!(
        r#"#!/bin/sh
printf '%s|%s\n' "$RESTIC_REPOSITORY" "$*" >> {root}/calls
if [ -e {root}/slow-d3 ] && [ "$1" = backup ] && [ "$RESTIC_REPOSITORY" = {root}/d3/docs ]; then
  sleep 3
  restic "$@"
  rc=$?
  printf '%s|backup-done\n' "$RESTIC_REPOSITORY" >> {root}/calls
  exit $rc
fi
case "$*" in
  forget*--dry-run*)
    if [ -e {root}/empty-plan ]; then
      set -- $(printf '%s' "$*" | sed 's/--keep-last [0-9]*/--keep-tag no-such-tag/')
    fi ;;
  forget*)
    if [ -e {root}/interloper ]; then
      rm -f {root}/interloper
      restic backup --quiet --json --host testhost --tag service:docs -- {root}/data/docs > {root}/interloper.json
    fi ;;
esac
exec restic "$@"
"#
    );
    let p = s.write("bin/restic", &script);
    let ok = std::process::Command::new("chmod")
        .arg("755")
        .arg(&p)
        .status()
        .is_ok_and(|st| st.success());
    assert!(ok, "chmod the wrapper");
}

/// `docs` backing up `{root}/data/docs` to `targets` (local repositories
/// `{root}/NAME`) through the wrapper, with `global` and `service` keys.
fn docs(s: Scenario, targets: &[&str], global: &str, service: &str) -> Scenario {
    wrapper(&s);
    let mut s = s.file("data/docs/a.txt", "alpha").global(&format!(
        "restic_binary = \"{{root}}/bin/restic\"\nhost = \"testhost\"\n{global}"
    ));
    for t in targets {
        s = s.destination_local(t, t);
    }
    let s = s.service("docs", |d| {
        d.targets(targets).keys(service).path("{root}/data/docs")
    });
    s.run(&["setup", "--no-schedule"]).succeeds();
    s
}

/// The calls recorded since the last [`clear`], as `DEST ARGS` with the
/// repository shortened to its destination folder.
fn calls(s: &Scenario) -> Vec<String> {
    let root = format!("{}/", s.root().display());
    std::fs::read_to_string(s.path("calls"))
        .unwrap_or_default()
        .lines()
        .map(|l| {
            let Some((repo, args)) = l.split_once('|') else {
                return l.to_string();
            };
            let dest = repo
                .strip_prefix(&root)
                .and_then(|r| r.split('/').next())
                .unwrap_or(repo);
            format!("{dest} {args}")
        })
        .collect()
}

/// A `run --json` after [`clear`], whose restic calls must be `steps`;
/// returns the retention report.
#[track_caller]
fn retention_run(s: &Scenario, want: &[&str]) -> serde_json::Value {
    clear(s);
    let d = s.run(&["run", "--json"]);
    d.succeeds();
    assert_eq!(steps(s), want, "{:?}", calls(s));
    d.json()["services"][0]["targets"][0]["retention"].clone()
}

fn clear(s: &Scenario) {
    let _ = std::fs::remove_file(s.path("calls"));
}

/// The restic command (first word of the arguments) of each call, with its
/// destination: `d1 backup`, `d1 forget-plan`, `d1 forget-ids`, `d2 copy`.
fn steps(s: &Scenario) -> Vec<String> {
    calls(s)
        .iter()
        .filter_map(|c| {
            let mut w = c.split_whitespace();
            let dest = w.next()?;
            let cmd = w.next()?;
            let step = match cmd {
                "forget" if c.contains("--dry-run") => "forget-plan",
                "forget" => "forget-ids",
                "backup" | "copy" | "prune" => cmd,
                _ => return None,
            };
            Some(format!("{dest} {step}"))
        })
        .collect()
}

/// The newest run log of `docs`.
fn last_log(s: &Scenario) -> String {
    let dir = s.path("state/restic-manager/logs/docs");
    let mut logs: Vec<_> = std::fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .collect();
    logs.sort();
    logs.last()
        .map(|p| std::fs::read_to_string(p).unwrap_or_default())
        .unwrap_or_default()
}

fn ids(s: &Scenario, repo: &str) -> Vec<String> {
    s.snapshots(repo)
        .iter()
        .filter_map(|x| x["id"].as_str().map(str::to_string))
        .collect()
}

#[test]
fn retention_that_removes_nothing_costs_one_restic_call() {
    let s = docs(Scenario::new(), &["d1"], "retention_last = 3", "");
    for _ in 0..2 {
        let r = retention_run(&s, &["d1 backup", "d1 forget-plan"]);
        assert_eq!(
            (r["removed"].as_u64(), r["pruned"].as_bool()),
            (Some(0), Some(false)),
            "{r}"
        );
        let log = last_log(&s);
        assert_eq!(
            log.matches("calling `restic forget").count(),
            1,
            "the run log names the one retention call: {log}"
        );
        crate::harness::assert_has(
            &log,
            "calling `restic forget --dry-run --keep-last 3` on `d1`",
        );
    }
    assert_eq!(s.snapshots("d1/docs").len(), 2);
}

#[test]
fn retention_removes_exactly_the_planned_snapshots_even_when_a_backup_lands_in_between() {
    let s = docs(
        Scenario::new(),
        &["d1"],
        "retention_last = 1\nretention_max_remove_percent = 100",
        "",
    );
    s.run(&["run"]).succeeds();
    s.write("data/docs/a.txt", "beta");
    s.run(&["run"]).succeeds();
    let before = ids(&s, "d1/docs");
    assert_eq!(before.len(), 1, "keep-last 1 left one snapshot");

    // Between the plan and the removal another backup of the service
    // lands: it is newer than this run's snapshot, so evaluating the
    // policy again would remove this run's snapshot instead.
    s.write("data/docs/a.txt", "gamma");
    s.write("interloper", "");
    clear(&s);
    let d = s.run(&["run", "--json"]);
    d.succeeds();
    let v = d.json();
    let t = &v["services"][0]["targets"][0];
    assert_eq!(t["retention"]["removed"], 1, "{v}");
    assert_eq!(t["retention"]["pruned"], true, "{v}");
    let mine = t["snapshot_id"].as_str().unwrap_or_default().to_string();
    assert!(!s.path("interloper").exists(), "the interloper backup ran");
    assert_eq!(
        steps(&s),
        ["d1 backup", "d1 forget-plan", "d1 forget-ids"],
        "{:?}",
        calls(&s)
    );
    let removal = calls(&s)
        .into_iter()
        .find(|c| c.starts_with("d1 forget") && !c.contains("--dry-run"))
        .unwrap_or_default();
    assert_eq!(
        removal,
        format!("d1 forget --prune {}", before[0]),
        "the removal names the planned snapshot and evaluates no policy"
    );
    let after = ids(&s, "d1/docs");
    assert_eq!(
        after.len(),
        2,
        "this run's snapshot and the interloper: {after:?}"
    );
    assert!(!after.contains(&before[0]));
    assert!(
        after.iter().any(|i| i.starts_with(&mine)),
        "this run's snapshot {mine} is kept: {after:?}"
    );
}

#[test]
fn each_destination_gets_its_retention_right_after_its_own_backup() {
    let s = docs(
        Scenario::new(),
        &["d1", "d2", "d3"],
        "retention_last = 3\nmax_parallel_destinations = 1",
        "[[services.docs.config.post_backup_hooks]]\nname = \"mark\"\ncommand = \"echo post >> {root}/calls\"\n",
    );
    clear(&s);
    s.run(&["run"]).succeeds();
    assert_eq!(
        steps(&s),
        [
            "d1 backup",
            "d1 forget-plan",
            "d2 backup",
            "d2 forget-plan",
            "d3 backup",
            "d3 forget-plan"
        ],
        "{:?}",
        calls(&s)
    );
    let all = calls(&s);
    assert_eq!(
        all.last().map(String::as_str),
        Some("post"),
        "post hooks follow: {all:?}"
    );
}

#[test]
fn in_parallel_each_destination_gets_its_retention_without_waiting_for_the_slowest_backup() {
    let s = docs(
        Scenario::new(),
        &["d1", "d2", "d3"],
        "retention_last = 3\nmax_parallel_destinations = 3",
        "",
    );
    s.write("slow-d3", "");
    clear(&s);
    let d = s.run(&["run", "--json"]);
    d.succeeds();
    let all = calls(&s);
    let at = |dest: &str, what: &str| {
        all.iter()
            .position(|c| {
                c.starts_with(&format!("{dest} "))
                    && match what {
                        "plan" => c.contains(" forget ") && c.contains("--dry-run"),
                        w => c.split_whitespace().nth(1) == Some(w),
                    }
            })
            .unwrap_or_else(|| panic!("no `{dest} {what}` call: {all:?}"))
    };
    let d3_done = at("d3", "backup-done");
    for dest in ["d1", "d2"] {
        let plan = at(dest, "plan");
        assert!(
            at(dest, "backup") < plan && plan < d3_done,
            "{dest}'s retention follows its own backup, not the slow d3: {all:?}"
        );
    }
    assert!(at("d3", "plan") > d3_done, "{all:?}");
    let v = d.json();
    let targets = v["services"][0]["targets"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(targets.len(), 3, "{v}");
    for t in &targets {
        assert_eq!(t["retention"]["kept"], 1, "{t}");
    }
}

#[test]
fn a_scheduled_prune_runs_once_per_occurrence_and_alone_when_nothing_is_removed() {
    // Midnight on 1 January has passed: due on the first run, then not
    // again until next year.
    let s = docs(
        Scenario::new(),
        &["d1"],
        "retention_last = 5\nretention_max_remove_percent = 100\nprune = \"0 0 1 1 *\"",
        "",
    );
    // A due prune with nothing to forget is one `restic prune`.
    let r = retention_run(&s, &["d1 backup", "d1 forget-plan", "d1 prune"]);
    assert_eq!(
        (r["removed"].as_u64(), r["pruned"].as_bool()),
        (Some(0), Some(true)),
        "{r}"
    );
    assert!(last_log(&s).contains("calling `restic prune` on `d1`"));

    let r = retention_run(&s, &["d1 backup", "d1 forget-plan"]);
    assert_eq!(r["pruned"], false, "pruned once per occurrence: {r}");

    // Snapshots removed while no prune is due: forgotten, not pruned.
    let cfg = std::fs::read_to_string(s.config_path()).unwrap_or_default();
    std::fs::write(
        s.config_path(),
        cfg.replace("retention_last = 5", "retention_last = 1"),
    )
    .expect("write config");
    s.write("data/docs/a.txt", "beta");
    let r = retention_run(&s, &["d1 backup", "d1 forget-plan", "d1 forget-ids"]);
    assert!(r["removed"].as_u64() > Some(0), "{r}");
    assert_eq!(r["pruned"], false, "{r}");
    let removal = calls(&s)
        .into_iter()
        .find(|c| c.starts_with("d1 forget") && !c.contains("--dry-run"))
        .unwrap_or_default();
    assert!(!removal.contains("--prune"), "{removal}");
    assert_eq!(s.snapshots("d1/docs").len(), 1);
}

#[test]
fn in_copy_mode_each_copy_gets_its_retention_and_the_primary_after_the_copies() {
    let s = docs(
        Scenario::new(),
        &["d1", "d2", "d3"],
        "retention_last = 3\nmax_parallel_destinations = 1",
        "replication = \"copy\"\n",
    );
    clear(&s);
    let d = s.run(&["run", "--json"]);
    d.succeeds();
    assert_eq!(
        steps(&s),
        [
            "d1 backup",
            "d2 copy",
            "d2 forget-plan",
            "d3 copy",
            "d3 forget-plan",
            "d1 forget-plan"
        ],
        "{:?}",
        calls(&s)
    );
    let v = d.json();
    for t in v["services"][0]["targets"].as_array().into_iter().flatten() {
        assert_eq!(t["retention"]["kept"], 1, "{t}");
    }
}

#[test]
fn the_guard_still_refuses_a_plan_that_empties_a_group_or_removes_too_much() {
    let s = docs(
        Scenario::new(),
        &["d1"],
        "retention_last = 2\nretention_max_remove_percent = 100",
        "",
    );
    s.run(&["run"]).succeeds();
    s.run(&["run"]).succeeds();

    // A plan that keeps nothing of the group is refused even though 100 %
    // removal is allowed: by our guard on restic 0.14, which has none of
    // its own, and by restic's own on 0.17+; the same outcome either way.
    s.write("empty-plan", "");
    clear(&s);
    let d = s.run(&["run", "--json"]);
    d.code(1);
    let v = d.json();
    assert_eq!(v["services"][0]["error_class"], "retention_refused", "{v}");
    let msg = v["services"][0]["error"].as_str().unwrap_or_default();
    assert!(msg.contains("would remove every snapshot"), "{msg}");
    assert_eq!(
        steps(&s),
        ["d1 backup", "d1 forget-plan"],
        "nothing removed"
    );
    assert_eq!(s.snapshots("d1/docs").len(), 3);
    std::fs::remove_file(s.path("empty-plan")).expect("rm");

    // More than retention_max_remove_percent: refused, nothing removed.
    let cfg = std::fs::read_to_string(s.config_path()).unwrap_or_default();
    std::fs::write(
        s.config_path(),
        cfg.replace(
            "retention_last = 2\nretention_max_remove_percent = 100",
            "retention_last = 1\nretention_max_remove_percent = 50",
        ),
    )
    .expect("write config");
    clear(&s);
    let d = s.run(&["run", "--json"]);
    d.code(1);
    let msg = d.json()["services"][0]["error"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(msg.contains("would remove 3 of 4 snapshots"), "{msg}");
    assert_eq!(
        steps(&s),
        ["d1 backup", "d1 forget-plan"],
        "nothing removed"
    );
    assert_eq!(s.snapshots("d1/docs").len(), 4);
    assert!(Path::new(&s.path("d1/docs")).is_dir());
}

/// `docs` with `files` files of 50 KB in `d1`, backed up once.
fn drilled(files: usize, service: &str) -> Scenario {
    let s = docs(Scenario::new(), &["d1"], "", service);
    for i in 0..files {
        let data: String = (0..50_000)
            .map(|n| char::from(b'a' + ((n * 7 + i * 13) % 26) as u8))
            .collect();
        s.write(&format!("data/docs/f{i:02}.txt"), &data);
    }
    s.run(&["run"]).succeeds();
    s
}

/// The restic commands of the recorded calls, in order.
fn commands(s: &Scenario) -> Vec<String> {
    calls(s)
        .iter()
        .filter_map(|c| c.split_whitespace().nth(1).map(str::to_string))
        .collect()
}

#[test]
fn a_drill_of_a_sample_starts_restic_four_times_whatever_its_size_and_lists_during_check() {
    let s = drilled(12, "drill_sample_files = 10\n");
    clear(&s);
    let d = s.run(&["verify", "--drill", "--json", "-q"]);
    d.succeeds();
    let v = d.json();
    let detail = &v["verifies"][1]["detail"];
    assert_eq!(detail["files_checked"], 10, "{v}");
    assert_eq!(detail["sampled"], true, "{v}");
    assert_eq!(detail["live_identical"], 10, "{v}");
    assert_eq!(detail["mismatches"], 0, "{v}");
    // `snapshots` and `ls` take no lock and run while `check` does.
    let mut cmds = commands(&s);
    assert_eq!(cmds.last().map(String::as_str), Some("restore"), "{cmds:?}");
    cmds.sort();
    assert_eq!(
        cmds,
        ["check", "ls", "restore", "snapshots"],
        "one listing and one restore, no `restic dump` per file: {:?}",
        calls(&s)
    );
    let restore = calls(&s)
        .into_iter()
        .find(|c| c.starts_with("d1 restore"))
        .unwrap_or_default();
    assert_eq!(restore.matches("--include").count(), 10, "{restore}");
    assert!(restore.contains("--verify"), "{restore}");
}

#[test]
fn a_drill_confirms_a_source_mismatch_with_one_dump_of_that_file() {
    let s = drilled(6, "");
    // Bit rot: other content, same size and mtime.
    crate::harness::rot(&s.path("data/docs/f03.txt"), 100, 0x20);
    clear(&s);
    let d = s.run(&["verify", "--drill"]);
    d.code(1)
        .stdout_has("drill_mismatch")
        .stderr_has("f03.txt")
        .stderr_has("bit rot on the source disk");
    let dumps: Vec<String> = calls(&s)
        .into_iter()
        .filter(|c| c.starts_with("d1 dump"))
        .collect();
    assert_eq!(dumps.len(), 1, "{:?}", calls(&s));
    assert!(dumps[0].ends_with("/data/docs/f03.txt"), "{dumps:?}");
}
