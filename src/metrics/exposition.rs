//! The two text formats: Prometheus exposition (version 0.0.4) and InfluxDB
//! line protocol.

use std::fmt::Write as _;

use super::{Figures, Row};
use crate::health::State;
use crate::model::Outcome;

/// A label value: `\`, `"` and newlines escaped.
fn label(v: &str) -> String {
    v.replace('\\', r"\\")
        .replace('"', "\\\"")
        .replace('\n', r"\n")
}

fn secs(ms: i64) -> String {
    #[allow(clippy::cast_precision_loss)]
    let s = ms as f64 / 1000.0;
    format!("{s:.3}")
}

struct Family<'a> {
    out: &'a mut String,
}

impl Family<'_> {
    fn header(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.out, "# HELP {name} {help}");
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: &str) {
        let l: Vec<String> = labels
            .iter()
            .map(|(k, v)| format!("{k}=\"{}\"", label(v)))
            .collect();
        let _ = writeln!(self.out, "{name}{{{}}} {value}", l.join(","));
    }
}

type Getter = fn(&Row, i64) -> Option<String>;

/// The per-destination gauge families: name, type, help, value.
fn families() -> Vec<(&'static str, &'static str, &'static str, Getter)> {
    vec![
        (
            "restic_manager_last_run_timestamp_seconds",
            "gauge",
            "When the newest finished run of the service ended (unix time).",
            |r, _| r.last_run_ms.map(secs),
        ),
        (
            "restic_manager_last_success_timestamp_seconds",
            "gauge",
            "When the newest successful backup to this destination finished (unix time).",
            |r, _| r.last_success_ms.map(secs),
        ),
        (
            "restic_manager_last_run_duration_seconds",
            "gauge",
            "How long the newest run's backup to this destination took.",
            |r, _| {
                r.duration_ms
                    .map(|d| secs(i64::try_from(d).unwrap_or(i64::MAX)))
            },
        ),
        (
            "restic_manager_last_run_added_bytes",
            "gauge",
            "Data the newest run added to the repository (restic's data_added).",
            |r, _| r.bytes_added.map(|v| v.to_string()),
        ),
        (
            "restic_manager_last_run_new_files",
            "gauge",
            "Files the newest run found new.",
            |r, _| r.files_new.map(|v| v.to_string()),
        ),
        (
            "restic_manager_last_run_changed_files",
            "gauge",
            "Files the newest run found changed.",
            |r, _| r.files_changed.map(|v| v.to_string()),
        ),
        (
            "restic_manager_snapshots",
            "gauge",
            "Snapshots of the service in the repository, as last seen (after retention or status --live).",
            |r, _| r.snapshots.map(|v| v.to_string()),
        ),
        (
            "restic_manager_snapshots_created_total",
            "counter",
            "Snapshots the recorded runs made in this repository.",
            |r, _| Some(r.snapshots_created.to_string()),
        ),
        (
            "restic_manager_newest_snapshot_timestamp_seconds",
            "gauge",
            "When the newest snapshot was made (unix time).",
            |r, _| r.newest_snapshot_ms.map(secs),
        ),
        (
            "restic_manager_newest_snapshot_age_seconds",
            "gauge",
            "Age of the newest snapshot when the metrics were written.",
            |r, now| r.newest_snapshot_ms.map(|t| secs((now - t).max(0))),
        ),
        (
            "restic_manager_repository_size_bytes",
            "gauge",
            "Size of the repository's files (local repositories only).",
            |r, _| r.repository_size_bytes.map(|v| v.to_string()),
        ),
        (
            "restic_manager_last_verify_timestamp_seconds",
            "gauge",
            "When the newest finished verify of the repository ended (unix time).",
            |r, _| r.last_verify_ms.map(secs),
        ),
        (
            "restic_manager_last_successful_verify_timestamp_seconds",
            "gauge",
            "When the newest successful verify of the repository ended (unix time).",
            |r, _| r.last_successful_verify_ms.map(secs),
        ),
    ]
}

/// The Prometheus text exposition of `f`.
pub fn prometheus(f: &Figures) -> String {
    let mut out = String::new();
    let mut fam = Family { out: &mut out };
    restic_info(&mut fam, f);
    health(&mut fam, f);
    outcomes(&mut fam, f);
    gauges(&mut fam, f);
    runs(&mut fam, f);
    out
}

/// The restic binary and this program's version.
fn restic_info(fam: &mut Family<'_>, f: &Figures) {
    let host = f.host.as_str();
    fam.header(
        "restic_manager_restic_info",
        "gauge",
        "The restic binary restic-manager runs (value 1; the version is a label).",
    );
    fam.sample(
        "restic_manager_restic_info",
        &[
            ("host", host),
            ("version", f.restic_version.as_deref().unwrap_or("unknown")),
            ("manager_version", env!("CARGO_PKG_VERSION")),
        ],
        "1",
    );
}

/// One series per health state and service on each destination.
fn health(fam: &mut Family<'_>, f: &Figures) {
    let host = f.host.as_str();
    fam.header(
        "restic_manager_health",
        "gauge",
        "Health of the service on the destination: 1 for the current state, 0 for the others.",
    );
    for r in &f.rows {
        for s in State::ALL {
            fam.sample(
                "restic_manager_health",
                &[
                    ("service", &r.service),
                    ("destination", &r.destination),
                    ("host", host),
                    ("state", s.as_str()),
                ],
                if r.state == s { "1" } else { "0" },
            );
        }
    }
}

/// The newest run's and verify's outcome, one series per outcome.
fn outcomes(fam: &mut Family<'_>, f: &Figures) {
    let host = f.host.as_str();
    for (name, help, pick) in [
        (
            "restic_manager_last_run_outcome",
            "Outcome of the newest finished run on the destination: 1 for the outcome, 0 for the others.",
            (|r: &Row| r.last_outcome) as fn(&Row) -> Option<Outcome>,
        ),
        (
            "restic_manager_last_verify_outcome",
            "Outcome of the newest finished verify of the repository: 1 for the outcome, 0 for the others.",
            |r: &Row| r.last_verify_outcome,
        ),
    ] {
        if !f.rows.iter().any(|r| pick(r).is_some()) {
            continue;
        }
        fam.header(name, "gauge", help);
        for r in &f.rows {
            let Some(o) = pick(r) else { continue };
            // Every outcome is a series of the enum-style family.
            for each in Outcome::ALL {
                fam.sample(
                    name,
                    &[
                        ("service", &r.service),
                        ("destination", &r.destination),
                        ("host", host),
                        ("outcome", each.as_str()),
                    ],
                    if o == *each { "1" } else { "0" },
                );
            }
        }
    }
}

/// The per-destination gauges of [`families`].
fn gauges(fam: &mut Family<'_>, f: &Figures) {
    let host = f.host.as_str();
    for (name, kind, help, get) in families() {
        let values: Vec<(&Row, String)> = f
            .rows
            .iter()
            .filter_map(|r| get(r, f.generated_ms).map(|v| (r, v)))
            .collect();
        if values.is_empty() {
            continue;
        }
        fam.header(name, kind, help);
        for (r, v) in values {
            fam.sample(
                name,
                &[
                    ("service", &r.service),
                    ("destination", &r.destination),
                    ("host", host),
                ],
                &v,
            );
        }
    }
}

/// The long-running threshold, the runs still going and the run counts.
fn runs(fam: &mut Family<'_>, f: &Figures) {
    let host = f.host.as_str();
    fam.header(
        "restic_manager_long_running_threshold_seconds",
        "gauge",
        "long_running_threshold_minutes in seconds (0: off); the fleet alert compares runs with it.",
    );
    fam.sample(
        "restic_manager_long_running_threshold_seconds",
        &[("host", host)],
        &f.long_running_threshold_s.to_string(),
    );
    if !f.running.is_empty() {
        fam.header(
            "restic_manager_run_started_timestamp_seconds",
            "gauge",
            "When the service's run that is still going started (unix time); absent when none runs.",
        );
        for (service, since) in &f.running {
            fam.sample(
                "restic_manager_run_started_timestamp_seconds",
                &[("service", service), ("host", host)],
                &secs(*since),
            );
        }
    }

    if !f.runs.is_empty() {
        fam.header(
            "restic_manager_runs_total",
            "counter",
            "Finished runs of the service recorded in history, by outcome.",
        );
        for (service, outcome, n) in &f.runs {
            fam.sample(
                "restic_manager_runs_total",
                &[
                    ("service", service),
                    ("host", host),
                    ("outcome", outcome.as_str()),
                ],
                &n.to_string(),
            );
        }
    }
}

/// A tag key or value, or the measurement: `,`, `=` and spaces escaped.
fn tag(v: &str) -> String {
    v.replace('\\', r"\\")
        .replace(',', r"\,")
        .replace('=', r"\=")
        .replace(' ', r"\ ")
        .replace('\n', r"\n")
}

/// A string field value, quoted.
fn string_field(v: &str) -> String {
    format!("\"{}\"", v.replace('\\', r"\\").replace('"', "\\\""))
}

/// InfluxDB line protocol, one line per service and destination (measurement
/// `restic_manager`) and one for the restic version (`restic_manager_restic`),
/// timestamps in seconds (write with `precision=s`).
pub fn influx_lines(f: &Figures) -> String {
    let ts = f.generated_ms / 1000;
    let host = tag(&f.host);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "restic_manager_restic,host={host} version={} {ts}",
        string_field(f.restic_version.as_deref().unwrap_or("unknown"))
    );
    for r in &f.rows {
        let mut fields = vec![format!("state={}", string_field(r.state.as_str()))];
        let mut int = |k: &str, v: Option<u64>| {
            if let Some(v) = v {
                fields.push(format!("{k}={v}i"));
            }
        };
        int("added_bytes", r.bytes_added);
        int("new_files", r.files_new);
        int("changed_files", r.files_changed);
        int("snapshots", r.snapshots);
        int("snapshots_created", Some(r.snapshots_created));
        int("repository_size_bytes", r.repository_size_bytes);
        int("duration_ms", r.duration_ms);
        let to_s = |ms: Option<i64>| ms.map(|m| u64::try_from(m / 1000).unwrap_or(0));
        int("last_run_timestamp", to_s(r.last_run_ms));
        int("last_success_timestamp", to_s(r.last_success_ms));
        int("newest_snapshot_timestamp", to_s(r.newest_snapshot_ms));
        int(
            "newest_snapshot_age_seconds",
            r.newest_snapshot_ms
                .map(|t| u64::try_from((f.generated_ms - t).max(0) / 1000).unwrap_or(0)),
        );
        int("last_verify_timestamp", to_s(r.last_verify_ms));
        int(
            "last_successful_verify_timestamp",
            to_s(r.last_successful_verify_ms),
        );
        if let Some(o) = &r.last_outcome {
            fields.push(format!("last_outcome={}", string_field(o.as_str())));
        }
        if let Some(o) = &r.last_verify_outcome {
            fields.push(format!("last_verify_outcome={}", string_field(o.as_str())));
        }
        let _ = writeln!(
            out,
            "restic_manager,host={host},service={},destination={} {} {ts}",
            tag(&r.service),
            tag(&r.destination),
            fields.join(",")
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row() -> Row {
        Row {
            service: "we\"b".into(),
            destination: "off site".into(),
            state: State::Stale,
            last_run_ms: Some(1_700_000_000_500),
            last_outcome: Some(Outcome::Ok),
            last_success_ms: Some(1_700_000_000_500),
            duration_ms: Some(1500),
            bytes_added: Some(42),
            files_new: Some(3),
            files_changed: None,
            snapshots: None,
            snapshots_created: 7,
            newest_snapshot_ms: Some(1_700_000_000_000),
            repository_size_bytes: None,
            last_verify_ms: None,
            last_verify_outcome: None,
            last_successful_verify_ms: None,
        }
    }

    fn figures() -> Figures {
        Figures {
            host: "h\\1".into(),
            generated_ms: 1_700_000_060_000,
            restic_version: Some("0.14.0".into()),
            rows: vec![row()],
            runs: vec![("we\"b".into(), Outcome::Ok, 5)],
            running: vec![("we\"b".into(), 1_700_000_000_000)],
            long_running_threshold_s: 3600,
        }
    }

    #[test]
    fn label_values_are_escaped_and_unknown_figures_left_out() {
        let text = prometheus(&figures());
        assert!(text.contains(
            "restic_manager_health{service=\"we\\\"b\",destination=\"off site\",host=\"h\\\\1\",state=\"stale\"} 1\n"
        ), "{text}");
        assert!(text.contains("restic_manager_newest_snapshot_age_seconds{service=\"we\\\"b\",destination=\"off site\",host=\"h\\\\1\"} 60.000\n"), "{text}");
        assert!(text.contains("restic_manager_last_run_duration_seconds{service=\"we\\\"b\",destination=\"off site\",host=\"h\\\\1\"} 1.500\n"), "{text}");
        // No value, no family: an absent figure is not a zero.
        assert!(!text.contains("changed_files"), "{text}");
        assert!(!text.contains("verify"), "{text}");
        assert!(text.contains("# TYPE restic_manager_runs_total counter\n"));
        assert!(
            text.contains("restic_manager_run_started_timestamp_seconds{service=\"we\\\"b\",host=\"h\\\\1\"} 1700000000.000\n"),
            "{text}"
        );
        assert!(
            text.contains("restic_manager_long_running_threshold_seconds{host=\"h\\\\1\"} 3600\n"),
            "{text}"
        );
    }

    #[test]
    fn line_protocol_escapes_tags_and_strings() {
        let text = influx_lines(&figures());
        assert!(
            text.starts_with("restic_manager_restic,host=h\\\\1 version=\"0.14.0\" 1700000060\n"),
            "{text}"
        );
        assert!(
            text.contains("restic_manager,host=h\\\\1,service=we\"b,destination=off\\ site state=\"stale\",added_bytes=42i,new_files=3i,snapshots_created=7i,duration_ms=1500i,last_run_timestamp=1700000000i,"),
            "{text}"
        );
        assert!(text.contains("newest_snapshot_age_seconds=60i"), "{text}");
        assert!(text.contains(",last_outcome=\"ok\" 1700000060\n"), "{text}");
    }
}
