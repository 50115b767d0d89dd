//! Every configuration in `examples/` validates as shipped, with every
//! service it defines, so the manual never points a user at a file that
//! fails on their first `restic-manager validate`. The examples run as
//! shipped, from `examples/`: `validate` reads no password or key file
//! (restic-manager reads those just before restic starts), so the files
//! they name need not exist, and `~` is the scenario's temporary HOME.

use std::path::PathBuf;

use crate::harness::Scenario;

/// The examples, with the services each defines (in file order) and the
/// warnings `validate` must print for it.
const EXAMPLES: &[(&str, &[&str], usize)] = &[
    (
        "home-server.toml",
        &["nextcloud", "immich", "vaultwarden", "home-assistant"],
        0,
    ),
    ("database-host.toml", &["shop", "wiki", "notes", "ldap"], 0),
    ("offsite.toml", &["documents", "photos"], 0),
    // One warning per built-in strategy of the original tool (appwrite,
    // immich), each with the service in today's form.
    (
        "original.toml",
        &["appwrite", "immich", "chat-bot", "minecraft"],
        2,
    ),
];

fn example(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(name)
}

/// `[services.NAME]` headers of a file, in order.
fn services_in(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("[services.")?.strip_suffix(']'))
        .filter(|n| !n.contains('.'))
        .map(str::to_string)
        .collect()
}

#[test]
fn the_examples_folder_holds_exactly_the_tested_examples() {
    let mut found: Vec<String> = std::fs::read_dir(example(""))
        .expect("read examples/")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".toml"))
        .collect();
    found.sort();
    let mut tested: Vec<&str> = EXAMPLES.iter().map(|(f, _, _)| *f).collect();
    tested.sort_unstable();
    assert_eq!(
        found, tested,
        "every example in examples/ needs a test here"
    );
}

#[test]
fn every_example_validates_with_each_of_its_services() {
    let s = Scenario::new();
    for (file, services, warnings) in EXAMPLES {
        let path = example(file);
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        assert_eq!(
            services_in(&text),
            *services,
            "{file}: the services the test expects"
        );
        let config = path.display().to_string();

        let d = s.run(&["--config", &config, "validate"]);
        d.succeeds().stdout_has("is valid");
        for svc in *services {
            d.stdout_has(&format!("  {svc} → "));
        }
        assert_eq!(
            d.stderr.matches("warning: ").count(),
            *warnings,
            "{file}: warnings\n{}",
            d.stderr
        );

        let d = s.run(&["--config", &config, "validate", "--json"]);
        d.succeeds();
        let v = d.json();
        assert_eq!(v["valid"], true, "{file}");
        assert_eq!(v["services"], services.len(), "{file}");
        assert_eq!(v["enabled_services"], services.len(), "{file}");
        let listed: Vec<&str> = v["repositories"]
            .as_array()
            .map(|r| r.iter().filter_map(|r| r["service"].as_str()).collect())
            .unwrap_or_default();
        for svc in *services {
            assert!(
                listed.contains(svc),
                "{file}: service `{svc}` has no repository in {listed:?}"
            );
        }
        assert!(
            listed.iter().all(|l| services.contains(l)),
            "{file}: a repository of an unexpected service in {listed:?}"
        );
        assert_eq!(
            v["warnings"].as_array().map_or(0, Vec::len),
            *warnings,
            "{file}"
        );
    }
}
