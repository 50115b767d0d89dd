//! restic exit code + stderr → an error class with a human next step.
//!
//! restic 0.14–0.16 return 1 for "no repository", "locked" and "wrong
//! password" alike, so stderr text decides there; 0.17+ has codes 10–12.

use serde::Serialize;

/// What kind of failure happened. Stored in history and shown in `--json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    RepositoryMissing,
    WrongPassword,
    Locked,
    Unreachable,
    PermissionDenied,
    NoSpace,
    Interrupted,
    Timeout,
    SourceMissing,
    HookFailed,
    AlreadyRunning,
    ResticMissing,
    Config,
    Other,
}

impl ErrorClass {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::RepositoryMissing => "repository_missing",
            ErrorClass::WrongPassword => "wrong_password",
            ErrorClass::Locked => "locked",
            ErrorClass::Unreachable => "unreachable",
            ErrorClass::PermissionDenied => "permission_denied",
            ErrorClass::NoSpace => "no_space",
            ErrorClass::Interrupted => "interrupted",
            ErrorClass::Timeout => "timeout",
            ErrorClass::SourceMissing => "source_missing",
            ErrorClass::HookFailed => "hook_failed",
            ErrorClass::AlreadyRunning => "already_running",
            ErrorClass::ResticMissing => "restic_missing",
            ErrorClass::Config => "config",
            ErrorClass::Other => "other",
        }
    }
}

/// Classifies a failed restic call.
pub fn classify(code: i32, stderr: &str) -> ErrorClass {
    let e = stderr.to_ascii_lowercase();
    match code {
        10 => return ErrorClass::RepositoryMissing,
        11 => return ErrorClass::Locked,
        12 => return ErrorClass::WrongPassword,
        130 => return ErrorClass::Interrupted,
        _ => {}
    }
    let has = |needles: &[&str]| needles.iter().any(|n| e.contains(n));
    if has(&[
        "unable to open config file",
        "is there a repository at the following location",
    ]) {
        ErrorClass::RepositoryMissing
    } else if has(&[
        "wrong password or no key found",
        "resolving password failed",
        "reading password",
    ]) {
        ErrorClass::WrongPassword
    } else if has(&["repository is already locked", "unable to create lock"]) {
        ErrorClass::Locked
    } else if has(&["no space left on device", "disk quota exceeded"]) {
        ErrorClass::NoSpace
    } else if has(&[
        "connection refused",
        "no such host",
        "dial tcp",
        "i/o timeout",
        "network is unreachable",
        "host key verification failed",
        "unable to start the sftp session",
        "connection reset",
        "tls handshake",
        "ssh: connect",
    ]) {
        ErrorClass::Unreachable
    } else if has(&[
        "permission denied",
        "access denied",
        "accessdenied",
        "forbidden",
    ]) {
        ErrorClass::PermissionDenied
    } else {
        ErrorClass::Other
    }
}

/// The one-line message with the next step for a class, about `repo`.
pub fn explain(class: ErrorClass, repo: &str, stderr: &str) -> String {
    match class {
        ErrorClass::RepositoryMissing => {
            format!("repository `{repo}` does not exist; run `restic-manager setup`")
        }
        ErrorClass::WrongPassword => format!(
            "repository `{repo}` did not accept the password (or the password could not be read); check `restic_password_file` / `password_file`"
        ),
        ErrorClass::Locked => format!(
            "repository `{repo}` is locked by another restic process; wait for it to finish, or if none is running, run `restic unlock` on it"
        ),
        ErrorClass::Unreachable => format!(
            "repository `{repo}` cannot be reached: {}",
            last_line(stderr)
        ),
        ErrorClass::PermissionDenied => {
            format!("permission denied on `{repo}`: {}", last_line(stderr))
        }
        ErrorClass::NoSpace => {
            format!("no space left writing to `{repo}`; free space or prune old snapshots")
        }
        ErrorClass::Interrupted => format!("restic was interrupted while working on `{repo}`"),
        _ => format!("restic failed on `{repo}`: {}", last_line(stderr)),
    }
}

/// The most telling line of restic's stderr (a `Fatal:` line if there is
/// one, else the last non-empty non-JSON line).
pub fn last_line(stderr: &str) -> String {
    let lines: Vec<&str> = stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    lines
        .iter()
        .find(|l| l.starts_with("Fatal:"))
        .or_else(|| lines.iter().rev().find(|l| !l.starts_with('{')))
        .or_else(|| lines.last())
        .map_or_else(|| "no error output".to_string(), |l| (*l).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_restic_014_messages() {
        let cases = [
            (
                1,
                "Fatal: unable to open config file: stat /r/config: no such file or directory\nIs there a repository at the following location?\n/r",
                ErrorClass::RepositoryMissing,
            ),
            (
                1,
                "Fatal: wrong password or no key found",
                ErrorClass::WrongPassword,
            ),
            (
                1,
                "Resolving password failed: exit status 1",
                ErrorClass::WrongPassword,
            ),
            (
                1,
                "unable to create lock in backend: repository is already locked by PID 12 on h by root",
                ErrorClass::Locked,
            ),
            (
                1,
                "Fatal: unable to open repository: dial tcp 127.0.0.1:1: connect: connection refused",
                ErrorClass::Unreachable,
            ),
            (
                1,
                "Fatal: unable to save snapshot: write /r/data/x: no space left on device",
                ErrorClass::NoSpace,
            ),
            (
                1,
                "Fatal: create repository at /root/x failed: mkdir /root/x: permission denied",
                ErrorClass::PermissionDenied,
            ),
            (10, "", ErrorClass::RepositoryMissing),
            (11, "", ErrorClass::Locked),
            (12, "", ErrorClass::WrongPassword),
            (130, "", ErrorClass::Interrupted),
            (1, "something new", ErrorClass::Other),
        ];
        for (code, text, want) in cases {
            assert_eq!(classify(code, text), want, "{text}");
        }
    }

    #[test]
    fn picks_the_fatal_line() {
        assert_eq!(last_line("{\"json\":1}\nFatal: boom\nmore"), "Fatal: boom");
        assert_eq!(last_line("a\n\nb\n"), "b");
        assert_eq!(last_line(""), "no error output");
    }
}
