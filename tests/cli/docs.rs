//! The manual's links work: every relative Markdown link in README.md,
//! docs/, examples/README.md and bench/README.md names a file that exists, and every `#anchor`
//! a heading of its target, by GitHub's rules. A moved section or a renamed
//! heading fails here instead of leaving a reader at a dead end.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The Markdown files whose links are checked.
fn manual() -> Vec<PathBuf> {
    let mut files = vec![
        root().join("README.md"),
        root().join("bench/README.md"),
        root().join("examples/README.md"),
    ];
    files.extend(crate::harness::files_with_ext(&root().join("docs"), "md"));
    files
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// The lines of a Markdown file outside fenced code blocks, numbered from 1.
fn prose(text: &str) -> Vec<(usize, &str)> {
    let mut fenced = false;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let t = line.trim_start();
        if t.starts_with("```") || t.starts_with("~~~") {
            fenced = !fenced;
        } else if !fenced {
            out.push((i + 1, line));
        }
    }
    out
}

/// GitHub's anchor for a heading: lower case, punctuation dropped except
/// `-` and `_`, each space a `-`.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | ' '))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// Every anchor of a file; a repeated heading gets `-1`, `-2`, … as on
/// GitHub.
fn anchors(text: &str) -> Vec<String> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut out = Vec::new();
    for (_, line) in prose(text) {
        let hashes = line.chars().take_while(|c| *c == '#').count();
        if !(1..=6).contains(&hashes) || !line[hashes..].starts_with(' ') {
            continue;
        }
        let s = slug(&line[hashes..]);
        let n = seen.entry(s.clone()).or_insert(0);
        out.push(if *n == 0 {
            s.clone()
        } else {
            format!("{s}-{n}")
        });
        *n += 1;
    }
    out
}

/// The targets of the inline links `[text](target)` of one line, code
/// spans left out.
fn links(line: &str) -> Vec<String> {
    let mut text = String::new();
    let mut in_code = false;
    for c in line.chars() {
        if c == '`' {
            in_code = !in_code;
        } else if !in_code {
            text.push(c);
        }
    }
    let mut out = Vec::new();
    let mut rest = text.as_str();
    while let Some(at) = rest.find("](") {
        let after = &rest[at + 2..];
        let Some(end) = after.find(')') else { break };
        out.push(after[..end].trim().to_string());
        rest = &after[end..];
    }
    out
}

/// What is wrong with one link of `file`, if anything.
fn broken(file: &Path, target: &str, cache: &mut HashMap<PathBuf, Vec<String>>) -> Option<String> {
    // An absolute URL (https:, mailto:) is not ours to check.
    if target.split_once(':').is_some_and(|(scheme, _)| {
        !scheme.is_empty() && scheme.chars().all(|c| c.is_ascii_alphabetic())
    }) {
        return None;
    }
    let (path, anchor) = match target.split_once('#') {
        Some((p, a)) => (p, Some(a)),
        None => (target, None),
    };
    let dest = if path.is_empty() {
        file.to_path_buf()
    } else {
        file.parent().unwrap_or(Path::new(".")).join(path)
    };
    if !dest.exists() {
        return Some(format!("`{target}`: `{}` does not exist", dest.display()));
    }
    let anchor = anchor?;
    if dest.extension().is_none_or(|x| x != "md") {
        return Some(format!(
            "`{target}`: an anchor into a file that is not Markdown"
        ));
    }
    let known = cache
        .entry(dest.clone())
        .or_insert_with(|| anchors(&read(&dest)));
    if known.iter().any(|a| a == anchor) {
        None
    } else {
        Some(format!(
            "`{target}`: `{}` has no heading with the anchor `{anchor}`",
            dest.display()
        ))
    }
}

#[test]
fn every_relative_link_of_the_manual_points_at_a_file_and_heading_that_exist() {
    let mut cache = HashMap::new();
    let mut problems = Vec::new();
    let mut checked = 0;
    for file in manual() {
        let text = read(&file);
        for (n, line) in prose(&text) {
            for target in links(line) {
                checked += 1;
                if let Some(p) = broken(&file, &target, &mut cache) {
                    let shown = file.strip_prefix(root()).unwrap_or(&file);
                    problems.push(format!("{}:{n}: {p}", shown.display()));
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{} broken links:\n{}",
        problems.len(),
        problems.join("\n")
    );
    assert!(
        checked > 100,
        "only {checked} links found: is the parser broken?"
    );
}

#[test]
fn anchors_follow_githubs_rules() {
    for (heading, want) in [
        ("Drop-in files (`include`)", "drop-in-files-include"),
        ("Output and `-q`", "output-and--q"),
        ("Restore drills (`--drill`)", "restore-drills---drill"),
        (
            "Keys of a `[[services.NAME.config.dumps]]` entry",
            "keys-of-a-servicesnameconfigdumps-entry",
        ),
        ("Health, `status` and metrics", "health-status-and-metrics"),
        ("restic 0.14 to 0.19", "restic-014-to-019"),
        ("snake_case keys", "snake_case-keys"),
    ] {
        assert_eq!(slug(heading), want, "{heading}");
    }
    assert_eq!(
        anchors("# A\n```\n# not a heading\n```\n## A\n#hashtag\n"),
        ["a", "a-1"]
    );
}

#[test]
fn the_readme_starts_with_the_two_commands_and_stays_a_front_page() {
    let readme = read(&root().join("README.md"));
    let first_block = readme
        .split("```sh\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .unwrap_or_default();
    let commands: Vec<&str> = first_block
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(
        commands,
        ["./scripts/quickstart.sh", "./scripts/test-all.sh"],
        "README.md must open with the quickstart and the test commands"
    );
    assert!(
        readme.len() <= 20_000,
        "README.md is {} bytes; the manual belongs in docs/",
        readme.len()
    );
}
