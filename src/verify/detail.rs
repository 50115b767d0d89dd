//! What a verification read or compared: the `detail` of a
//! [`super::VerifyReport`], printed by `verify --json` and stored as JSON
//! text in the history column `verifies.detail`.
//!
//! The JSON was once built with `json!` maps, whose keys serde_json sorts;
//! fields are declared in alphabetical order so the text stays the same,
//! byte for byte, for readers of old and new history rows alike.

use serde::Serialize;

use crate::model::Outcome;

/// The detail of one verification, by kind.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Detail {
    /// Nothing was read: the verification failed before it could use the
    /// repository (`{}`).
    Empty {},
    /// `restic check` (structure, all data or a subset).
    Check(CheckDetail),
    /// A restore drill.
    Drill(DrillDetail),
}

impl Detail {
    /// Records how long the verification took and its warnings (not for
    /// [`Detail::Empty`], which a verification that ran never has).
    pub fn finish(&mut self, duration_ms: u64, warnings: &[String]) {
        let (d, w) = match self {
            Detail::Empty {} => return,
            Detail::Check(c) => (&mut c.duration_ms, &mut c.warnings),
            Detail::Drill(c) => (&mut c.duration_ms, &mut c.warnings),
        };
        *d = duration_ms;
        *w = warnings.to_vec();
    }
}

/// What a `restic check` read.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CheckDetail {
    pub duration_ms: u64,
    /// What restic reported, when the check succeeded.
    #[serde(flatten)]
    pub packs: Option<Packs>,
    /// `all`, `none` or the subset read, e.g. `3/10`.
    pub read: String,
    pub restic_version: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// The pack counts and remarks of a successful `restic check` (their keys
/// sort together, between `duration_ms` and `read`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Packs {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// `null` when restic did not say.
    pub packs_read: Option<u64>,
    pub packs_total: Option<u64>,
}

/// What a restore drill restored and compared. A key is absent for a step
/// the drill did not reach (or, for the files, did not do: a service with
/// dumps only).
#[derive(Debug, Clone, Default, Serialize)]
pub struct DrillDetail {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes_restored: Option<u64>,
    /// One entry per dump checked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dumps: Option<Vec<DumpDetail>>,
    pub duration_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub files_checked: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub files_in_snapshot: Option<u64>,
    /// Restored files whose source changed since the snapshot.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub live_changed_since: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub live_identical: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub live_missing: Option<u64>,
    /// The first mismatches (the count in `mismatches` is complete).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mismatched_files: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mismatches: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sampled: Option<bool>,
    /// The snapshot whose files were restored: absent when only dumps were
    /// checked, `null` when the service had no snapshot at all.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<Option<String>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// How one dump was checked in a drill.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DumpDetail {
    /// Bytes read back (checks that read the dump themselves).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    /// The check's name, e.g. `pg_restore` or `read_back`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub name: String,
    /// `ok` when the check passed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
    /// The dump's file in the snapshot.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    pub snapshot: String,
    /// Whether a configured `verify_command` ran (not its text: a command
    /// line may hold a secret).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verify_command: Option<bool>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(d: &Detail) -> String {
        crate::output::assert_sorted_keys(d);
        serde_json::to_string(d).unwrap()
    }

    #[test]
    fn check_detail_text() {
        let mut d = Detail::Check(CheckDetail {
            read: "3/10".into(),
            restic_version: "0.17.3".into(),
            packs: Some(Packs {
                notes: vec!["2 packs not referenced".into()],
                packs_read: Some(4),
                packs_total: None,
            }),
            ..CheckDetail::default()
        });
        d.finish(1234, &["slow".to_string()]);
        assert_eq!(
            text(&d),
            r#"{"duration_ms":1234,"notes":["2 packs not referenced"],"packs_read":4,"packs_total":null,"read":"3/10","restic_version":"0.17.3","warnings":["slow"]}"#
        );
        // A failed check has no pack counts; no warnings, no key.
        let mut d = Detail::Check(CheckDetail {
            read: "none".into(),
            restic_version: "0.14.0".into(),
            ..CheckDetail::default()
        });
        d.finish(5, &[]);
        assert_eq!(
            text(&d),
            r#"{"duration_ms":5,"read":"none","restic_version":"0.14.0"}"#
        );
    }

    #[test]
    fn drill_detail_text() {
        let mut d = Detail::Drill(DrillDetail {
            bytes_restored: Some(2048),
            dumps: Some(vec![
                DumpDetail {
                    bytes: Some(99),
                    check: Some("pg_dumpall_complete"),
                    name: "db".into(),
                    outcome: Some(Outcome::Ok),
                    path: Some("/db.sql".into()),
                    snapshot: "abcd1234".into(),
                    verify_command: Some(false),
                    ..DumpDetail::default()
                },
                DumpDetail {
                    error: Some("dump `x`: snapshot ef01 holds no file".into()),
                    name: "x".into(),
                    snapshot: "ef012345".into(),
                    ..DumpDetail::default()
                },
            ]),
            files_checked: Some(3),
            files_in_snapshot: Some(7),
            live_changed_since: Some(1),
            live_identical: Some(1),
            live_missing: Some(0),
            mismatched_files: Some(vec!["`/a`: size differs".into()]),
            mismatches: Some(1),
            sampled: Some(true),
            snapshot: Some(Some("0123abcd".into())),
            ..DrillDetail::default()
        });
        d.finish(77, &[]);
        assert_eq!(
            text(&d),
            concat!(
                r#"{"bytes_restored":2048,"dumps":[{"bytes":99,"check":"pg_dumpall_complete","name":"db","outcome":"ok","path":"/db.sql","snapshot":"abcd1234","verify_command":false},"#,
                r#"{"error":"dump `x`: snapshot ef01 holds no file","name":"x","snapshot":"ef012345"}],"#,
                r#""duration_ms":77,"files_checked":3,"files_in_snapshot":7,"live_changed_since":1,"live_identical":1,"live_missing":0,"#,
                r#""mismatched_files":["`/a`: size differs"],"mismatches":1,"sampled":true,"snapshot":"0123abcd"}"#
            )
        );
        // No snapshot at all: `null`; a drill that stopped early: no key.
        let mut d = Detail::Drill(DrillDetail {
            snapshot: Some(None),
            ..DrillDetail::default()
        });
        d.finish(3, &["no snapshot".to_string()]);
        assert_eq!(
            text(&d),
            r#"{"duration_ms":3,"snapshot":null,"warnings":["no snapshot"]}"#
        );
        let mut d = Detail::Drill(DrillDetail::default());
        d.finish(3, &[]);
        assert_eq!(text(&d), r#"{"duration_ms":3}"#);
        assert_eq!(text(&Detail::Empty {}), "{}");
    }
}
