//! restic's JSON, parsed leniently: stdout only, non-JSON lines skipped,
//! optional fields optional, the 8- and 64-character snapshot ids both fine.

use serde::{Deserialize, Serialize};

/// One line of `restic backup --json`.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "message_type", rename_all = "snake_case")]
pub enum BackupMessage {
    Status(BackupStatus),
    Summary(BackupSummary),
    #[serde(other)]
    Other,
}

/// Progress of a running backup.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct BackupStatus {
    pub percent_done: f64,
    pub total_files: u64,
    pub files_done: u64,
    pub total_bytes: u64,
    pub bytes_done: u64,
    pub error_count: u64,
    pub seconds_elapsed: u64,
}

/// The final summary of a backup.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(default)]
pub struct BackupSummary {
    pub files_new: u64,
    pub files_changed: u64,
    pub files_unmodified: u64,
    pub dirs_new: u64,
    pub dirs_changed: u64,
    pub data_added: u64,
    pub total_files_processed: u64,
    pub total_bytes_processed: u64,
    pub total_duration: f64,
    pub snapshot_id: Option<String>,
}

/// Parses one stdout line; `None` for anything that is not a known message.
pub fn backup_line(line: &str) -> Option<BackupMessage> {
    let line = line.trim();
    if !line.starts_with('{') {
        return None;
    }
    serde_json::from_str(line).ok()
}

/// The last summary in a captured stdout.
pub fn backup_summary(stdout: &str) -> Option<BackupSummary> {
    stdout.lines().rev().find_map(|l| match backup_line(l) {
        Some(BackupMessage::Summary(s)) => Some(s),
        _ => None,
    })
}

/// One snapshot from `restic snapshots --json`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct Snapshot {
    pub id: String,
    #[serde(default)]
    pub short_id: Option<String>,
    pub time: String,
    #[serde(default)]
    pub hostname: String,
    #[serde(default)]
    pub paths: Vec<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    /// For a copied snapshot, the id it was copied from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original: Option<String>,
}

impl Snapshot {
    pub fn short(&self) -> &str {
        self.short_id
            .as_deref()
            .unwrap_or_else(|| &self.id[..self.id.len().min(8)])
    }
}

/// Parses `restic snapshots --json` (a single array; tolerant of stray lines).
pub fn snapshots(stdout: &str) -> Result<Vec<Snapshot>, String> {
    let start = stdout
        .find('[')
        .ok_or_else(|| "restic printed no snapshot list".to_string())?;
    let mut de = serde_json::Deserializer::from_str(&stdout[start..]);
    Vec::<Snapshot>::deserialize(&mut de)
        .map_err(|e| format!("cannot parse restic's snapshot list: {e}"))
}

/// One group from `restic forget --json`.
#[derive(Debug, Clone, Deserialize)]
pub struct ForgetGroup {
    #[serde(default)]
    pub keep: Option<Vec<Snapshot>>,
    #[serde(default)]
    pub remove: Option<Vec<Snapshot>>,
}

/// Parses `restic forget --json` output; restic 0.14 prints nothing at all
/// when no group matches.
pub fn forget_groups(stdout: &str) -> Vec<ForgetGroup> {
    stdout
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with('['))
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_from_014_and_later() {
        let out = "not json\n{\"message_type\":\"status\",\"percent_done\":0.5}\n{\"message_type\":\"summary\",\"files_new\":2,\"files_changed\":1,\"data_added\":1234,\"snapshot_id\":\"1a2b3c4d\"}\n";
        let s = backup_summary(out).unwrap_or_default();
        assert_eq!((s.files_new, s.files_changed, s.data_added), (2, 1, 1234));
        assert_eq!(s.snapshot_id.as_deref(), Some("1a2b3c4d"));
        let long = format!(
            "{{\"message_type\":\"summary\",\"snapshot_id\":\"{}\",\"data_added_packed\":9}}",
            "a".repeat(64)
        );
        assert_eq!(
            backup_summary(&long)
                .and_then(|s| s.snapshot_id)
                .map(|s| s.len()),
            Some(64)
        );
        assert!(backup_summary("").is_none());
    }

    #[test]
    fn snapshots_and_empty_forget() {
        let list = snapshots("[{\"id\":\"abcdef0123\",\"time\":\"2026-01-01T00:00:00Z\",\"hostname\":\"h\",\"paths\":[\"/a\"],\"tags\":[\"service:x\"]}]").unwrap_or_default();
        assert_eq!(list[0].short(), "abcdef01");
        assert!(forget_groups("").is_empty());
    }
}
