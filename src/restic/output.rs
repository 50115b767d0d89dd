//! restic's JSON, parsed leniently: stdout only, non-JSON lines skipped,
//! optional fields optional, the 8- and 64-character snapshot ids both fine.
//! Both generations of messages are read: `message_type` (backup since
//! 0.14, everything since 0.17) and `struct_type` (`ls`, `snapshots`
//! before 0.17), and the JSON error lines restic prints on stderr under
//! `--json` (`error` since 0.14, `exit_error` since 0.18) become text.

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

/// A JSON line restic printed on stderr under `--json`.
#[derive(Debug, Deserialize)]
struct StderrMessage {
    message_type: String,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    code: Option<i32>,
    #[serde(default)]
    error: Option<serde_json::Value>,
    #[serde(default)]
    during: Option<String>,
    #[serde(default)]
    item: Option<String>,
}

/// One line of restic's stderr as text: an `exit_error` (0.18+) becomes
/// its message, an `error` (0.14+, `error.message` since 0.17.1) becomes
/// `error: MESSAGE (during …, item …)`; anything else is kept as it is.
/// An `exit_error`'s message may span several lines.
pub fn stderr_line(line: &str) -> String {
    let t = line.trim();
    if !t.starts_with('{') {
        return line.to_string();
    }
    let Ok(m) = serde_json::from_str::<StderrMessage>(t) else {
        return line.to_string();
    };
    match m.message_type.as_str() {
        "exit_error" => m
            .message
            .unwrap_or_else(|| format!("restic exited with code {}", m.code.unwrap_or(1))),
        "error" => {
            // 0.14 marshals the Go error: `{}` or `{"Op":…,"Path":…,"Err":13}`.
            let what = match &m.error {
                Some(serde_json::Value::Object(o)) => o
                    .get("message")
                    .and_then(|v| v.as_str())
                    .map(str::to_string)
                    .or_else(|| {
                        let op = o.get("Op").and_then(|v| v.as_str())?;
                        let path = o.get("Path").and_then(|v| v.as_str()).unwrap_or("");
                        let why = o
                            .get("Err")
                            .and_then(serde_json::Value::as_i64)
                            .and_then(|n| i32::try_from(n).ok())
                            .map_or_else(
                                || "failed".to_string(),
                                |n| std::io::Error::from_raw_os_error(n).to_string(),
                            );
                        Some(format!("{op} {path}: {why}"))
                    }),
                Some(serde_json::Value::String(s)) => Some(s.clone()),
                _ => None,
            };
            let mut text = format!(
                "error: {}",
                what.unwrap_or_else(|| "unreadable item".into())
            );
            match (m.during.as_deref(), m.item.as_deref()) {
                (Some(d), Some(i)) if !i.is_empty() && !text.contains(i) => {
                    text.push_str(&format!(" (during {d}, item {i})"));
                }
                (_, Some(i)) if !i.is_empty() && !text.contains(i) => {
                    text.push_str(&format!(" (item {i})"));
                }
                _ => {}
            }
            text
        }
        _ => line.to_string(),
    }
}

/// restic's stderr with its JSON error lines rendered as text.
pub fn stderr_text(stderr: &str) -> String {
    if !stderr.contains("\"message_type\"") {
        return stderr.to_string();
    }
    let mut out = String::with_capacity(stderr.len());
    for l in stderr.lines() {
        out.push_str(&stderr_line(l));
        out.push('\n');
    }
    out
}

/// restic's notes that it will try a backend request again
/// (`Stat(<config/>) returned error, retrying after 1m9s: …`, `Load(…)
/// … retrying after …`): chatter for the run log, not for the terminal.
pub fn is_retry_chatter(line: &str) -> bool {
    let l = line.trim();
    l.contains("returned error, retrying after") || l.contains("operation failed, retrying")
}

/// Whether a line of restic's stderr says the repository's bucket does not
/// exist (S3: `The specified bucket does not exist`, `NoSuchBucket`).
pub fn says_no_bucket(line: &str) -> bool {
    let l = line.to_ascii_lowercase();
    l.contains("specified bucket does not exist") || l.contains("nosuchbucket")
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
    fn stderr_json_of_both_generations_becomes_text() {
        let cases = [
            (
                r#"{"message_type":"exit_error","code":11,"message":"unable to create lock in backend: repository is already locked by PID 7 on vm by root\nthe `unlock` command can be used to remove stale locks"}"#,
                "unable to create lock in backend: repository is already locked by PID 7 on vm by root\nthe `unlock` command can be used to remove stale locks",
            ),
            (
                r#"{"message_type":"exit_error","code":12,"message":"Fatal: wrong password or no key found"}"#,
                "Fatal: wrong password or no key found",
            ),
            (
                r#"{"message_type":"error","error":{"message":"failed to save /x.sql: Fatal: command failed: exit status 7"},"during":"archival","item":"/x.sql"}"#,
                "error: failed to save /x.sql: Fatal: command failed: exit status 7",
            ),
            (
                r#"{"message_type":"error","error":{"Op":"open","Path":"/src/secret","Err":13},"during":"archival","item":"/src/secret"}"#,
                "error: open /src/secret: Permission denied (os error 13)",
            ),
            (
                r#"{"message_type":"error","error":{},"during":"scan","item":"/src/x"}"#,
                "error: unreadable item (during scan, item /src/x)",
            ),
            ("Fatal: plain text", "Fatal: plain text"),
            ("{not json", "{not json"),
        ];
        for (line, want) in cases {
            assert_eq!(stderr_line(line), want, "{line}");
        }
        assert_eq!(
            stderr_text(
                "a\n{\"message_type\":\"exit_error\",\"code\":10,\"message\":\"Fatal: repository does not exist\"}\n"
            ),
            "a\nFatal: repository does not exist\n"
        );
        assert!(is_retry_chatter(
            "Stat(<config/>) returned error, retrying after 1m9s: Head \"http://127.0.0.1:1/r/config\": dial tcp 127.0.0.1:1: connect: connection refused"
        ));
        assert!(!is_retry_chatter("Fatal: unable to open config file"));
        assert!(says_no_bucket(
            "Stat(<config/>) returned error, retrying after 784.655771ms: Stat: The specified bucket does not exist"
        ));
    }

    #[test]
    fn snapshots_and_empty_forget() {
        let list = snapshots("[{\"id\":\"abcdef0123\",\"time\":\"2026-01-01T00:00:00Z\",\"hostname\":\"h\",\"paths\":[\"/a\"],\"tags\":[\"service:x\"]}]").unwrap_or_default();
        assert_eq!(list[0].short(), "abcdef01");
        assert!(forget_groups("").is_empty());
    }
}
