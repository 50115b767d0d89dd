//! A minimal Prometheus exposition for `GET /metrics`, built from history
//! only. Isolated: `metrics.rs` (the textfile collector and full metric
//! set) replaces it.

use std::fmt::Write;

use super::data::ServiceView;

fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn iso_to_secs(s: Option<&str>) -> Option<i64> {
    s.and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.timestamp())
}

/// The text exposition (format 0.0.4) of the overview.
pub fn render(services: &[ServiceView]) -> String {
    let mut out = String::new();
    let mut family = |name: &str, kind: &str, help: &str, rows: Vec<(String, String)>| {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for (labels, value) in rows {
            let _ = writeln!(out, "{name}{{{labels}}} {value}");
        }
    };
    let svc = |s: &ServiceView| format!("service=\"{}\"", label(&s.name));
    family(
        "restic_manager_service_health",
        "gauge",
        "1 for the service's current health state (ok, warning, failed, stale).",
        services
            .iter()
            .flat_map(|s| {
                ["ok", "warning", "failed", "stale"]
                    .into_iter()
                    .map(move |h| {
                        (
                            format!("{},state=\"{h}\"", svc(s)),
                            u8::from(s.health == h).to_string(),
                        )
                    })
            })
            .collect(),
    );
    family(
        "restic_manager_last_run_timestamp_seconds",
        "gauge",
        "When the newest run started (unix seconds).",
        services
            .iter()
            .filter_map(|s| {
                let r = s.last_run.as_ref()?;
                Some((svc(s), (r.started_at_ms / 1000).to_string()))
            })
            .collect(),
    );
    family(
        "restic_manager_last_run_success",
        "gauge",
        "1 when the newest finished run succeeded (ok or warning), else 0.",
        services
            .iter()
            .filter_map(|s| {
                let r = s.recent.last()?;
                Some((
                    svc(s),
                    u8::from(matches!(r.outcome.as_str(), "ok" | "warning")).to_string(),
                ))
            })
            .collect(),
    );
    family(
        "restic_manager_last_run_duration_seconds",
        "gauge",
        "How long the newest finished run took.",
        services
            .iter()
            .filter_map(|s| {
                let ms = s.recent.last()?.duration_ms?;
                #[allow(clippy::cast_precision_loss)]
                Some((svc(s), format!("{:.3}", ms as f64 / 1000.0)))
            })
            .collect(),
    );
    let dest_rows = |f: &dyn Fn(&super::data::DestView) -> Option<String>| {
        services
            .iter()
            .flat_map(|s| {
                s.destinations.iter().filter_map(move |d| {
                    Some((
                        format!("{},destination=\"{}\"", svc(s), label(&d.destination)),
                        f(d)?,
                    ))
                })
            })
            .collect::<Vec<_>>()
    };
    family(
        "restic_manager_snapshot_timestamp_seconds",
        "gauge",
        "When the newest snapshot on each destination was made (unix seconds).",
        dest_rows(&|d| iso_to_secs(d.snapshot_time.as_deref()).map(|t| t.to_string())),
    );
    family(
        "restic_manager_snapshot_added_bytes",
        "gauge",
        "Bytes the newest snapshot on each destination added to the repository.",
        dest_rows(&|d| d.bytes_added.map(|b| b.to_string())),
    );
    out
}
