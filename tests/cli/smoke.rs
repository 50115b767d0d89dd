//! The README's path: validate, setup, run, status, snapshots.

use crate::harness::Scenario;

#[test]
fn first_backup_end_to_end() {
    let s = Scenario::new();
    s.write("data/docs/a.txt", "hello");
    s.simple("[services.docs]\ntargets = [\"local\"]\n[services.docs.config]\npaths = [\"{root}/data/docs\"]\n");
    s.run(&["validate"]).succeeds().stdout_has("is valid");
    s.run(&["setup"]).succeeds().stdout_has("initialised");
    s.run(&["setup"]).succeeds().stdout_has("nothing to do");
    s.run(&["run"]).succeeds();
    let snaps = s.snapshots("repo/docs");
    assert_eq!(snaps.len(), 1);
    assert!(
        snaps[0]["tags"]
            .as_array()
            .is_some_and(|t| t.iter().any(|x| x == "service:docs"))
    );
    let st = s.run(&["status", "--json"]);
    st.succeeds();
    let v = st.json();
    assert_eq!(v[0]["last_run"]["outcome"], "ok");
    let id = snaps[0]["id"].as_str().unwrap_or_default();
    let recorded = v[0]["destinations"][0]["snapshot_id"]
        .as_str()
        .unwrap_or_default();
    assert!(
        !recorded.is_empty() && id.starts_with(recorded),
        "history has {recorded}, restic {id}"
    );
}

#[test]
fn progress_bars_on_a_terminal_and_silence_under_cron() {
    let s = Scenario::new();
    // Enough data that restic reports progress at least once.
    let blob: String = (0..400_000)
        .map(|i| char::from(b'a' + u8::try_from(i % 26).unwrap_or(0)))
        .collect();
    for i in 0..40 {
        s.write(&format!("data/docs/f{i}.txt"), &format!("{i}{blob}"));
    }
    s.simple("[services.docs]\ntargets = [\"local\"]\n[services.docs.config]\npaths = [\"{root}/data/docs\"]\n");
    s.run(&["setup"]).succeeds();

    // Not a terminal (cron, pipes): the table only, no progress noise.
    let plain = s.run(&["run"]);
    plain.succeeds();
    assert!(
        !plain.stderr.contains('%') && !plain.stderr.contains("eta"),
        "{}",
        plain.stderr
    );

    // A terminal, through `script` (util-linux): a live bar per backup.
    let bin = env!("CARGO_BIN_EXE_restic-manager");
    let user = s.command();
    let out = std::process::Command::new("script")
        .env_clear()
        .envs(user.get_envs().filter_map(|(k, v)| v.map(|v| (k, v))))
        .env("TERM", "xterm")
        .args(["-qec", &format!("{bin} run"), "/dev/null"])
        .current_dir(s.root())
        .output()
        .expect("script (util-linux)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("docs → local"), "{text}");
    assert!(
        text.contains('%') && text.contains("eta"),
        "no progress bar: {text}"
    );
    assert!(text.contains("docs → local ok"), "{text}");
}
