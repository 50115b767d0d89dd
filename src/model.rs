//! The words every layer shares about finished work: how a run, target or
//! verify ended ([`Outcome`], [`RunStatus`]), why it failed
//! ([`ErrorClass`], and [`Failure`], the error that carries it) and what a
//! verify read ([`VerifyKind`]).
//!
//! They sit below the engine, history, health, notify, metrics and the web
//! so that all of them speak them without importing each other. Each type
//! has exactly one text mapping, written once in [`text_enum!`]: the text
//! history stores, `--json` prints and `FromStr` reads back. Existing
//! history databases hold these texts, so a shipped one never changes
//! (the tests below pin them).

use std::collections::BTreeSet;
use std::sync::Mutex;

use rusqlite::types::{FromSql, FromSqlResult, ToSql, ToSqlOutput, ValueRef};

/// A text that names no variant of a [`text_enum!`] type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} `{text}`")]
pub struct UnknownText {
    pub what: &'static str,
    pub text: String,
}

/// A stored text this version does not know (a newer restic-manager wrote
/// it, or someone edited the database): said once per text on stderr, and
/// read as `fallback` so `status` still reports instead of failing.
fn read_unknown(e: &UnknownText, fallback: &str) {
    static SEEN: Mutex<BTreeSet<(&str, String)>> = Mutex::new(BTreeSet::new());
    let first = SEEN
        .lock()
        .map(|mut seen| seen.insert((e.what, e.text.clone())))
        .unwrap_or(true);
    if first {
        crate::logging::warn(format!(
            "history: {e} (written by a newer restic-manager?) is read as `{fallback}`"
        ));
    }
}

/// Defines a field-less enum with its one text mapping: `as_str`,
/// `FromStr`, `Display`, `Serialize` and the SQLite conversion all come
/// from the same table. Reading a stored text that names no variant gives
/// `fallback` (with a warning), never an error.
macro_rules! text_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident ($what:literal, fallback $fallback:ident) {
            $( $(#[$vmeta:meta])* $variant:ident => $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The text history stores and `--json` prints.
            pub fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => $text, )+
                }
            }
        }

        impl std::str::FromStr for $name {
            type Err = UnknownText;

            fn from_str(s: &str) -> Result<Self, UnknownText> {
                match s {
                    $( $text => Ok($name::$variant), )+
                    _ => Err(UnknownText {
                        what: $what,
                        text: s.to_string(),
                    }),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }

        impl ToSql for $name {
            fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
                Ok(ToSqlOutput::from(self.as_str()))
            }
        }

        impl FromSql for $name {
            fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
                let text = value.as_str()?;
                Ok(text.parse().unwrap_or_else(|e| {
                    read_unknown(&e, $name::$fallback.as_str());
                    $name::$fallback
                }))
            }
        }
    };
}

text_enum! {
    /// The outcome of a service, a target or a whole command, from best to
    /// worst (`Ord` is that order).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
    pub enum Outcome ("outcome", fallback Failed) {
        Ok => "ok",
        Warning => "warning",
        Failed => "failed",
        Interrupted => "interrupted",
    }
}

impl Outcome {
    /// The worse of two outcomes.
    #[must_use]
    pub fn worst(self, other: Outcome) -> Outcome {
        self.max(other)
    }

    /// The process exit code for this outcome (docs/architecture.md, "Invariants").
    pub fn exit_code(self) -> i32 {
        Exit::from(self).code()
    }

    /// Whether a backup ended with a usable snapshot (`ok` or `warning`).
    pub fn succeeded(self) -> bool {
        matches!(self, Outcome::Ok | Outcome::Warning)
    }
}

/// How a command ended. Commands return it and `main` turns it into the
/// process exit code: [`Exit::code`] is the one place that knows the numbers
/// (docs/errors.md, "Exit codes").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Everything done: 0.
    Ok,
    /// Done, with something to look at (a warning, a service that needs
    /// attention, a newer restic): 3.
    Warning,
    /// Something failed: 1.
    Failed,
    /// Bad usage or an invalid configuration: 2.
    Invalid,
    /// Stopped by this signal: 128 + its number; 130 (SIGINT) when the
    /// signal is not known.
    Interrupted(Option<i32>),
}

impl Exit {
    /// The process exit code.
    pub fn code(self) -> i32 {
        match self {
            Exit::Ok => 0,
            Exit::Warning => 3,
            Exit::Failed => 1,
            Exit::Invalid => 2,
            Exit::Interrupted(sig) => 128 + sig.unwrap_or(2),
        }
    }

    /// [`Exit::Failed`] when `failed`, else [`Exit::Ok`].
    pub fn failed_if(failed: bool) -> Exit {
        if failed { Exit::Failed } else { Exit::Ok }
    }
}

impl From<Outcome> for Exit {
    fn from(o: Outcome) -> Exit {
        match o {
            Outcome::Ok => Exit::Ok,
            Outcome::Warning => Exit::Warning,
            Outcome::Failed => Exit::Failed,
            Outcome::Interrupted => Exit::Interrupted(None),
        }
    }
}

text_enum! {
    /// What kind of failure happened. Stored in history and shown in
    /// `--json`; `restic::error::classify` derives it from restic's exit
    /// code and stderr.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub enum ErrorClass ("error class", fallback Other) {
        RepositoryMissing => "repository_missing",
        WrongPassword => "wrong_password",
        Locked => "locked",
        Unreachable => "unreachable",
        PermissionDenied => "permission_denied",
        NoSpace => "no_space",
        Interrupted => "interrupted",
        Timeout => "timeout",
        SourceMissing => "source_missing",
        HookFailed => "hook_failed",
        AlreadyRunning => "already_running",
        RetentionRefused => "retention_refused",
        ResticMissing => "restic_missing",
        Config => "config",
        Other => "other",
        /// `check` found damage, or data could not be read back (missing or
        /// corrupt pack, failed decryption).
        RepositoryDamaged => "repository_damaged",
        /// A restore drill read back data that differs from what it should
        /// be (restic's own metadata, `restic dump`, or the unchanged live
        /// file).
        DrillMismatch => "drill_mismatch",
        /// A dump drill's `verify_command` rejected the dump.
        VerifyCommandFailed => "verify_command_failed",
        /// The Docker engine cannot be reached (daemon down, bad
        /// `DOCKER_HOST`).
        DockerUnavailable => "docker_unavailable",
        /// A container named in the configuration does not exist.
        ContainerMissing => "container_missing",
        /// A Docker operation failed (stop/start, helper container, image).
        DockerFailed => "docker_failed",
        /// A streamed dump's command failed or timed out; its snapshot was
        /// discarded.
        DumpFailed => "dump_failed",
        /// A dump drill's preset check (`pg_restore --list`, the completion
        /// line, a load into a scratch database) found the stored dump
        /// unusable.
        DumpDamaged => "dump_damaged",
    }
}

/// Work that failed (a restic call, a dump, a restore), with its class and
/// the next step for the user: what history records and what the command
/// prints, the same text for every layer. `Display` is the message.
///
/// `usage` marks a choice that cannot work (a snapshot that does not
/// exist, a target folder that is not empty): exit 2; the rest are
/// failures: exit 1 ([`Failure::exit`]).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct Failure {
    pub class: ErrorClass,
    /// The one-line message with the next step.
    pub message: String,
    /// The tail of the failing child's stderr (restic, a dump), for the
    /// log and the report; empty when there was no child.
    pub stderr: String,
    /// A usage error (exit 2) rather than a failure (exit 1).
    pub usage: bool,
}

impl Failure {
    /// A failure of class `class` (exit 1).
    pub fn new(class: ErrorClass, message: impl Into<String>) -> Self {
        Failure {
            class,
            message: message.into(),
            stderr: String::new(),
            usage: false,
        }
    }

    /// A choice that cannot work (class `config`, exit 2).
    pub fn usage(message: impl Into<String>) -> Self {
        Failure {
            usage: true,
            ..Failure::new(ErrorClass::Config, message)
        }
    }

    /// The same failure, with the failing child's stderr.
    #[must_use]
    pub fn with_stderr(self, stderr: impl Into<String>) -> Self {
        Failure {
            stderr: stderr.into(),
            ..self
        }
    }

    /// How a command that stops on this failure ends.
    pub fn exit(&self) -> Exit {
        if self.usage {
            Exit::Invalid
        } else {
            Exit::Failed
        }
    }
}

text_enum! {
    /// What one verification read: the structure (`check`), every pack
    /// (`read-data`), a part of them (`subset`), or a restore drill.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub enum VerifyKind ("verify kind", fallback Check) {
        Check => "check",
        ReadData => "read-data",
        Subset => "subset",
        Drill => "drill",
    }
}

/// A history row's `outcome` column: `running` until the run or verify
/// ends, then its [`Outcome`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RunStatus {
    Running,
    Finished(Outcome),
}

impl RunStatus {
    /// The text history stores: `running` or the outcome's.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Finished(o) => o.as_str(),
        }
    }

    /// The outcome, once finished.
    pub fn finished(self) -> Option<Outcome> {
        match self {
            RunStatus::Running => None,
            RunStatus::Finished(o) => Some(o),
        }
    }
}

impl From<Outcome> for RunStatus {
    fn from(o: Outcome) -> RunStatus {
        RunStatus::Finished(o)
    }
}

impl std::str::FromStr for RunStatus {
    type Err = UnknownText;

    fn from_str(s: &str) -> Result<Self, UnknownText> {
        match s {
            "running" => Ok(RunStatus::Running),
            _ => s.parse().map(RunStatus::Finished),
        }
    }
}

impl std::fmt::Display for RunStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for RunStatus {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl FromSql for RunStatus {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        let text = value.as_str()?;
        Ok(text.parse().unwrap_or_else(|e| {
            read_unknown(&e, Outcome::Failed.as_str());
            RunStatus::Finished(Outcome::Failed)
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_ending_has_its_documented_exit_code() {
        let outcomes: Vec<i32> = [Outcome::Ok, Outcome::Warning, Outcome::Failed]
            .into_iter()
            .map(|o| Exit::from(o).code())
            .collect();
        assert_eq!(outcomes, [0, 3, 1]);
        assert_eq!(Exit::Invalid.code(), 2);
        assert_eq!(Exit::Interrupted(None).code(), 130);
        assert_eq!(Exit::Interrupted(Some(15)).code(), 143);
        assert_eq!(Exit::failed_if(true), Exit::Failed);
        assert_eq!(Exit::failed_if(false), Exit::Ok);
    }

    #[test]
    fn a_failure_shows_its_message_and_ends_by_its_kind() {
        let usage = Failure::usage("snapshot `abc` not found");
        assert_eq!(
            (usage.to_string(), usage.class, usage.exit().code()),
            (
                "snapshot `abc` not found".to_string(),
                ErrorClass::Config,
                2
            )
        );
        let failed = Failure::new(ErrorClass::Locked, "repository `r` is locked")
            .with_stderr("unable to create lock");
        assert_eq!(
            (failed.to_string(), failed.class, failed.exit().code()),
            (
                "repository `r` is locked".to_string(),
                ErrorClass::Locked,
                1
            )
        );
        assert_eq!(failed.stderr, "unable to create lock");
        assert!(usage.stderr.is_empty() && !failed.usage);
    }

    /// The texts existing history databases hold: never change one.
    #[test]
    fn stored_texts_are_the_shipped_ones() {
        let outcomes: Vec<&str> = Outcome::ALL.iter().map(|o| o.as_str()).collect();
        assert_eq!(outcomes, ["ok", "warning", "failed", "interrupted"]);
        let kinds: Vec<&str> = VerifyKind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(kinds, ["check", "read-data", "subset", "drill"]);
        let classes: Vec<&str> = ErrorClass::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(
            classes,
            [
                "repository_missing",
                "wrong_password",
                "locked",
                "unreachable",
                "permission_denied",
                "no_space",
                "interrupted",
                "timeout",
                "source_missing",
                "hook_failed",
                "already_running",
                "retention_refused",
                "restic_missing",
                "config",
                "other",
                "repository_damaged",
                "drill_mismatch",
                "verify_command_failed",
                "docker_unavailable",
                "container_missing",
                "docker_failed",
                "dump_failed",
                "dump_damaged",
            ]
        );
        assert_eq!(RunStatus::Running.as_str(), "running");
    }

    #[test]
    fn every_text_reads_back_as_itself_and_json_prints_it() {
        for o in Outcome::ALL {
            assert_eq!(o.as_str().parse::<Outcome>(), Ok(*o));
            assert_eq!(o.as_str().parse::<RunStatus>(), Ok(RunStatus::Finished(*o)));
            assert_eq!(
                serde_json::to_value(o).ok(),
                Some(serde_json::json!(o.as_str()))
            );
        }
        for c in ErrorClass::ALL {
            assert_eq!(c.as_str().parse::<ErrorClass>(), Ok(*c));
            assert_eq!(
                serde_json::to_value(c).ok(),
                Some(serde_json::json!(c.as_str()))
            );
        }
        for k in VerifyKind::ALL {
            assert_eq!(k.as_str().parse::<VerifyKind>(), Ok(*k));
        }
        assert_eq!("running".parse::<RunStatus>(), Ok(RunStatus::Running));
        assert_eq!(
            "skipped".parse::<Outcome>(),
            Err(UnknownText {
                what: "outcome",
                text: "skipped".into()
            })
        );
    }

    #[test]
    fn outcomes_order_from_best_to_worst() {
        assert!(Outcome::Ok < Outcome::Warning);
        assert!(Outcome::Warning < Outcome::Failed);
        assert!(Outcome::Failed < Outcome::Interrupted);
        assert_eq!(Outcome::Warning.worst(Outcome::Failed), Outcome::Failed);
    }

    /// A text this version does not know reads as the fallback instead of
    /// failing the query (a newer restic-manager may have written it).
    #[test]
    fn unknown_stored_text_reads_as_the_fallback() -> rusqlite::Result<()> {
        let db = rusqlite::Connection::open_in_memory()?;
        let read = |sql: &str| -> rusqlite::Result<(RunStatus, ErrorClass, VerifyKind)> {
            db.query_row(sql, [], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        };
        assert_eq!(
            read("SELECT 'skipped', 'cosmic_rays', 'deep-scan'")?,
            (
                RunStatus::Finished(Outcome::Failed),
                ErrorClass::Other,
                VerifyKind::Check
            )
        );
        assert_eq!(
            read("SELECT 'running', 'hook_failed', 'read-data'")?,
            (
                RunStatus::Running,
                ErrorClass::HookFailed,
                VerifyKind::ReadData
            )
        );
        let stored: String = db.query_row("SELECT ?1", [Outcome::Interrupted], |r| r.get(0))?;
        assert_eq!(stored, "interrupted");
        Ok(())
    }
}
