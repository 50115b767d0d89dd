//! The fleet kit in `contrib/`: Prometheus alert rules (checked and unit
//! tested by the real `promtool`) and the Grafana dashboard, whose every
//! query and variable must use metrics and labels that a real run of the
//! tool exports.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::{Scenario, promtool_missing, require_component};

fn contrib(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("contrib")
        .join(rel)
}

/// Runs promtool; `None` (with the reason printed) when it is missing
/// outside CI, a failing test under `CI=true`.
fn promtool(args: &[&str], dir: &Path) -> Option<(bool, String)> {
    match Command::new("promtool")
        .args(args)
        .current_dir(dir)
        .output()
    {
        Ok(out) => Some((
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )),
        Err(e) => {
            require_component("promtool", Err(promtool_missing(&e)));
            None
        }
    }
}

#[test]
fn alert_rules_pass_promtool_check_and_their_unit_tests() {
    let dir = contrib("prometheus");
    let Some((ok, out)) = promtool(&["check", "rules", "restic-manager.rules.yml"], &dir) else {
        return;
    };
    assert!(ok, "promtool check rules:\n{out}");
    assert!(out.contains("SUCCESS: 7 rules found"), "{out}");
    let Some((ok, out)) = promtool(&["test", "rules", "restic-manager.rules.test.yml"], &dir)
    else {
        return;
    };
    assert!(ok, "promtool test rules:\n{out}");
    // Every rule has at least one test in which it fires.
    let rules = std::fs::read_to_string(dir.join("restic-manager.rules.yml")).expect("read rules");
    let tests = std::fs::read_to_string(dir.join("restic-manager.rules.test.yml"))
        .expect("read rule tests");
    for line in rules.lines() {
        if let Some(name) = line.trim().strip_prefix("- alert: ") {
            assert!(
                tests.contains(&format!(
                    "alertname: {name}\n        exp_alerts:\n          - "
                )),
                "alert {name} has no test in which it fires"
            );
        }
    }
}

/// The metric families of an exposition, each with the label names its
/// samples carry.
fn families(text: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            if let Some(name) = rest.split_whitespace().next() {
                out.entry(name.to_string()).or_default();
            }
            continue;
        }
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let (name, labels) = match line.split_once('{') {
            Some((n, rest)) => (n, rest.split_once('}').map_or("", |(l, _)| l)),
            None => (line.split_whitespace().next().unwrap_or(""), ""),
        };
        let set = out.entry(name.to_string()).or_default();
        for pair in labels.split("\",") {
            if let Some((k, _)) = pair.split_once("=\"") {
                set.insert(k.trim_start_matches(',').to_string());
            }
        }
    }
    out
}

/// A real exposition: a service run twice and verified, scraped once while
/// a third run is still going (so the in-progress family shows too), and
/// once after.
fn real_exposition() -> String {
    let s = Scenario::new();
    s.write("pw", "secret-pw\n");
    s.write("src/a.txt", "alpha\n");
    s.simple(
        "[services.wiki]\ntargets = [\"local\"]\n[services.wiki.config]\npaths = [\"{root}/src\"]\n\n\
         [[services.wiki.config.pre_backup_hooks]]\nname = \"slow\"\ncommand = \"test -e {root}/slow && sleep 4 || true\"\n",
    );
    s.run(&["setup"]).succeeds();
    s.run(&["run"]).succeeds();
    s.run(&["verify"]).succeeds();
    s.write("slow", "");
    let mut running = s
        .command()
        .arg("run")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn run");
    let start = Instant::now();
    let during = loop {
        let m = s.run(&["metrics"]);
        m.succeeds();
        if m.stdout
            .contains("restic_manager_run_started_timestamp_seconds{")
        {
            break m.stdout;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no in-progress run in the metrics:\n{}",
            m.stdout
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let st = running.wait().expect("wait run");
    assert!(st.success(), "the slow run failed: {st}");
    let after = s.run(&["metrics"]);
    after.succeeds();
    assert!(
        !after
            .stdout
            .contains("restic_manager_run_started_timestamp_seconds{"),
        "a finished run still shows as going on:\n{}",
        after.stdout
    );
    format!("{during}\n{}", after.stdout)
}

/// Removes quoted strings, label matchers `{…}`, ranges `[…]` and grouping
/// lists `by (…)`, `on (…)`, …, leaving metric names, functions, keywords
/// and numbers.
fn strip_promql(expr: &str) -> String {
    // Quoted strings may hold `}` or `]`, so they are skipped first, also
    // inside matchers.
    let mut out = String::new();
    let mut closer: Option<char> = None;
    let mut chars = expr.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                while let Some(d) = chars.next() {
                    if d == '\\' {
                        chars.next();
                    } else if d == '"' {
                        break;
                    }
                }
            }
            '{' if closer.is_none() => closer = Some('}'),
            '[' if closer.is_none() => closer = Some(']'),
            c if closer == Some(c) => closer = None,
            c if closer.is_none() => out.push(c),
            _ => {}
        }
    }
    let mut cleaned = String::new();
    let mut rest = out.as_str();
    let grouping = &NOT_METRICS[..GROUPING];
    while !rest.is_empty() {
        let word_end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(rest.len());
        if word_end == 0 {
            let c = rest.chars().next().unwrap_or(' ');
            cleaned.push(c);
            rest = &rest[c.len_utf8()..];
            continue;
        }
        let word = &rest[..word_end];
        cleaned.push_str(word);
        rest = &rest[word_end..];
        if grouping.contains(&word) {
            let trimmed = rest.trim_start();
            if let Some(inner) = trimmed.strip_prefix('(') {
                let close = inner.find(')').unwrap_or(inner.len());
                rest = inner.get(close + 1..).unwrap_or("");
            }
        }
    }
    cleaned
}

/// PromQL words that are not metric names; the first [`GROUPING`] take a
/// list of labels in parentheses.
const NOT_METRICS: &[&str] = &[
    "by",
    "on",
    "without",
    "ignoring",
    "group_left",
    "group_right",
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    // Aggregations, which may be followed by `by (…)` rather than `(`.
    "sum",
    "min",
    "max",
    "avg",
    "count",
    "group",
    "stddev",
    "stdvar",
    "topk",
    "bottomk",
    "quantile",
    "count_values",
];

/// How many of [`NOT_METRICS`] group by labels.
const GROUPING: usize = 6;

/// Metric names an expression reads.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let stripped = strip_promql(expr);
    let mut names = BTreeSet::new();
    let mut rest = stripped.as_str();
    while !rest.is_empty() {
        let start = rest
            .find(|c: char| c.is_ascii_alphabetic() || c == '_')
            .unwrap_or(rest.len());
        // A number like 1e9 is not a name.
        let before_digit = start > 0 && rest.as_bytes()[start - 1].is_ascii_digit();
        rest = &rest[start..];
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(rest.len());
        let word = &rest[..end];
        rest = &rest[end..];
        let is_call = rest.trim_start().starts_with('(');
        if !word.is_empty() && !is_call && !before_digit && !NOT_METRICS.contains(&word) {
            names.insert(word.to_string());
        }
    }
    names
}

/// Every `expr` in the dashboard, with where it is.
fn dashboard_queries(dash: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for p in dash["panels"].as_array().into_iter().flatten() {
        for t in p["targets"].as_array().into_iter().flatten() {
            let expr = t["expr"]
                .as_str()
                .unwrap_or_else(|| panic!("panel {} has a target without expr", p["title"]));
            out.push((format!("panel {}", p["title"]), expr.to_string()));
        }
    }
    out
}

/// The dashboard's variables, each checked: defined once, its query reads
/// an exported metric with the label it asks for.
fn dashboard_variables(
    dash: &Value,
    exported: &BTreeMap<String, BTreeSet<String>>,
) -> BTreeSet<String> {
    let mut defined = BTreeSet::new();
    for v in dash["templating"]["list"].as_array().into_iter().flatten() {
        let name = v["name"].as_str().expect("variable without name");
        assert!(defined.insert(name.to_string()), "variable {name} twice");
        if v["type"] == "datasource" {
            assert_eq!(v["query"], "prometheus", "{name}");
            continue;
        }
        let q = v["query"]["query"]
            .as_str()
            .unwrap_or_else(|| panic!("variable {name} has no query"));
        let inner = q
            .strip_prefix("label_values(")
            .and_then(|r| r.strip_suffix(')'))
            .unwrap_or_else(|| panic!("variable {name}: not label_values(metric, label): {q}"));
        let (metric_part, label) = inner
            .rsplit_once(',')
            .unwrap_or_else(|| panic!("variable {name}: {q}"));
        let metric = metric_part.split('{').next().unwrap_or("").trim();
        let labels = exported.get(metric).unwrap_or_else(|| {
            panic!("variable {name} reads {metric}, which the tool does not export")
        });
        assert!(
            labels.contains(label.trim()),
            "variable {name}: {metric} has no label {label} (it has {labels:?})"
        );
    }
    defined
}

/// Every panel query is valid PromQL: promtool parses them as recording
/// rules, the variables replaced by what "All" sends.
fn check_promql(dash: &Value) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut yaml = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (i, (_, expr)) in dashboard_queries(dash).iter().enumerate() {
        let e = expr
            .replace("$host", ".*")
            .replace("$service", ".*")
            .replace("$destination", ".*");
        let quoted = serde_json::to_string(&e).unwrap();
        yaml.push_str(&format!(
            "      - record: dashboard_query_{i}\n        expr: {quoted}\n"
        ));
    }
    std::fs::write(tmp.path().join("dash.yml"), &yaml).unwrap();
    if let Some((ok, out)) = promtool(&["check", "rules", "dash.yml"], tmp.path()) {
        assert!(ok, "a dashboard query is not valid PromQL:\n{out}\n{yaml}");
    }
}

/// The `expr:` of each alert rule in `rules` (YAML), joined into one line.
fn rule_exprs(rules: &str) -> Vec<String> {
    let mut exprs = Vec::new();
    let mut current: Option<String> = None;
    for line in rules.lines() {
        let t = line.trim();
        if let Some(e) = t.strip_prefix("expr:") {
            if let Some(c) = current.take() {
                exprs.push(c);
            }
            current = Some(e.trim().trim_start_matches('>').to_string());
        } else if current.is_some() && (t.starts_with("labels:") || t.starts_with("for:")) {
            exprs.extend(current.take());
        } else if let Some(c) = current.as_mut() {
            c.push(' ');
            c.push_str(t);
        }
    }
    exprs.extend(current);
    exprs
}

#[test]
fn the_grafana_dashboard_reads_only_what_the_tool_exports() {
    let text =
        std::fs::read_to_string(contrib("grafana/restic-manager.json")).expect("read dashboard");
    let dash: Value = serde_json::from_str(&text).expect("not JSON");
    let exported = families(&real_exposition());
    assert!(
        exported.contains_key("restic_manager_health")
            && exported.contains_key("restic_manager_last_verify_outcome"),
        "the real run exported too little: {exported:?}"
    );

    // Variables: each is defined once, its query reads an exported metric
    // with the label it asks for, and every `$name` used anywhere exists.
    let defined = dashboard_variables(&dash, &exported);
    let mut used = BTreeSet::new();
    let mut queries = dashboard_queries(&dash);
    queries.extend(
        dash["templating"]["list"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v["query"]["query"].as_str())
            .map(|q| ("variable".to_string(), q.to_string())),
    );
    assert!(queries.len() >= 10, "too few queries: {queries:?}");
    for (place, expr) in &queries {
        for part in expr.split('$').skip(1) {
            let name: String = part
                .trim_start_matches('{')
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.starts_with("__") {
                used.insert(name);
            }
        }
        if place == "variable" {
            // label_values(metric, label): checked above.
            continue;
        }
        for m in metric_names(expr) {
            if m == "vector" {
                continue;
            }
            assert!(
                exported.contains_key(&m),
                "{place} reads `{m}`, which the tool does not export: {expr}\nexported: {:?}",
                exported.keys()
            );
        }
    }
    for name in &used {
        assert!(defined.contains(name), "`${name}` is used but not defined");
    }
    for want in ["host", "service", "destination"] {
        assert!(
            used.contains(want),
            "the dashboard never filters by ${want}"
        );
    }
    // What the fleet view must show.
    let all: String = queries.iter().map(|(_, q)| q.as_str()).collect();
    let shown = [
        "restic_manager_health",
        "restic_manager_last_success_timestamp_seconds",
        "restic_manager_last_run_duration_seconds",
        "restic_manager_last_run_added_bytes",
    ];
    let missing: Vec<&str> = shown.into_iter().filter(|m| !all.contains(m)).collect();
    assert!(
        missing.is_empty(),
        "the dashboard does not show {missing:?}"
    );

    check_promql(&dash);

    // The alert rules read exported metrics too (and the Pushgateway's own
    // push_time_seconds).
    let rules = std::fs::read_to_string(contrib("prometheus/restic-manager.rules.yml"))
        .expect("read rules");
    let exprs = rule_exprs(&rules);
    assert_eq!(exprs.len(), 7, "{exprs:?}");
    for e in &exprs {
        for m in metric_names(e) {
            if m == "push_time_seconds" || m == "time" {
                continue;
            }
            assert!(
                exported.contains_key(&m),
                "a rule reads `{m}`, not exported: {e}"
            );
        }
    }
}

#[test]
fn promql_names_are_found_and_labels_ignored() {
    let n = metric_names(
        r#"max by (host, service) (time() - foo_seconds{a="b{c}"} > on (host) group_left () bar[5m]) or vector(0) and 1e9 < baz"#,
    );
    let want: BTreeSet<String> = ["foo_seconds", "bar", "baz"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(n, want);
}
