//! Discord: a webhook message with one embed, coloured by outcome, with one
//! field per destination. Discord answers 429 with `retry_after` (seconds)
//! in the body, which [`super::http`] honours.

use serde_json::{Value, json};

use super::{DeliveryError, Message, http};
use crate::config::notify::Notifier;
use crate::model::Outcome;

const GREEN: u32 = 0x2E_CC_71;
const YELLOW: u32 = 0xF1_C4_0F;
const RED: u32 = 0xE7_4C_3C;
/// Discord's limit for an embed description.
const MAX_DESCRIPTION: usize = 4000;
/// Discord allows 25 fields per embed.
const MAX_FIELDS: usize = 25;

pub async fn send(
    client: &reqwest::Client,
    n: &Notifier,
    url: &str,
    m: &Message,
) -> (Result<String, DeliveryError>, u32) {
    let body = body(m).to_string();
    http(n, || {
        client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.clone())
    })
    .await
}

/// The colour for an outcome: green, yellow or red.
pub fn colour(severity: Outcome) -> u32 {
    match severity {
        Outcome::Ok => GREEN,
        Outcome::Warning => YELLOW,
        Outcome::Failed | Outcome::Interrupted => RED,
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
    t.push('…');
    t
}

/// The webhook's JSON. A wire payload in the shape of Discord's documented
/// "Execute Webhook" body, not a `--json` document, so it stays a `json!`
/// literal that reads like Discord's reference (issue 16 types only the
/// documents the CLI and the dashboard print).
fn body(m: &Message) -> Value {
    let mut description = m.summary.clone();
    if let Some(e) = &m.error {
        description.push_str(&format!(
            "\n**Error**{}: {e}",
            m.error_class
                .as_deref()
                .map_or(String::new(), |c| format!(" (`{c}`)"))
        ));
    }
    for w in &m.warnings {
        description.push_str(&format!("\n**Warning**: {w}"));
    }
    if let Some(t) = &m.log_tail {
        // The tail's end matters most: keep what fits of it.
        let room = MAX_DESCRIPTION.saturating_sub(description.chars().count() + 40);
        if room > 200 {
            let chars: Vec<char> = t.chars().collect();
            let start = chars.len().saturating_sub(room);
            let tail: String = chars[start..].iter().collect();
            description.push_str(&format!(
                "\n**Log (end)**\n```\n{}\n```",
                tail.replace("```", "'''")
            ));
        }
    }
    let fields: Vec<Value> = m
        .destinations
        .iter()
        .take(MAX_FIELDS)
        .map(|d| {
            let mut lines = Vec::new();
            if d.outcome != Outcome::Ok {
                lines.push(format!("**{}**", d.outcome));
            }
            lines.push(format!(
                "snapshot `{}`",
                d.snapshot_id
                    .as_deref()
                    .map_or_else(|| "-".to_string(), |s| s.chars().take(8).collect())
            ));
            lines.push(format!(
                "added {}",
                d.bytes_added
                    .map_or_else(|| "-".to_string(), crate::output::bytes)
            ));
            lines.push(format!(
                "duration {}",
                crate::output::duration_ms((d.duration_seconds * 1000.0) as u64)
            ));
            if let Some(e) = &d.error {
                lines.push(truncate(e, 300));
            }
            json!({"name": truncate(&d.name, 256), "value": truncate(&lines.join("\n"), 1024), "inline": true})
        })
        .collect();
    json!({
        "username": "restic-manager",
        "embeds": [{
            "title": truncate(&m.title, 256),
            "description": truncate(&description, MAX_DESCRIPTION),
            "color": colour(m.event.severity()),
            "fields": fields,
            "footer": {"text": format!("restic-manager on {} · {}", m.host, m.event.as_str())},
            "timestamp": m.finished_at.or(m.started_at).map(|t| t.to_rfc3339()),
        }]
    })
}
