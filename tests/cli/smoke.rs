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
