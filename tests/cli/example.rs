//! The shipped example configuration loads and validates as written.

use crate::harness::Scenario;

#[test]
fn example_config_validates() {
    let s = Scenario::new();
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/config.example.toml");
    let d = s.run(&["--config", example, "validate", "--json"]);
    d.succeeds();
    let v = d.json();
    assert_eq!(v["valid"], true);
    assert_eq!(v["services"], 3);
    assert_eq!(v["destinations"], 7);
    let repos = v["repositories"].as_array().map_or(0, Vec::len);
    assert_eq!(repos, 5, "nextcloud→2, documents→2, legacy→1");
}

#[test]
fn example_config_resolves_profile_and_docker_base() {
    let s = Scenario::new();
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/config.example.toml");
    let d = s.run(&[
        "--config",
        example,
        "config",
        "show",
        "--service",
        "nextcloud",
        "--json",
    ]);
    d.succeeds();
    let v = d.json();
    let svc = &v["services"][0];
    assert_eq!(svc["paths"][0], "/opt/docker/nextcloud/data");
    assert_eq!(svc["retention"]["daily"], 14, "profile overrides global");
    assert_eq!(svc["retention"]["weekly"], 4, "global fills the rest");
    assert_eq!(svc["timeout_seconds"], 7200);
    assert!(!d.stdout.contains("TOKEN"), "webhook URL must be redacted");
    assert!(
        !d.stdout.contains("10\""),
        "hook env values must be redacted"
    );
}
