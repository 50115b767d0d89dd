//! restic exit code + stderr → an error class with a human next step.
//!
//! restic 0.14–0.16 return 1 for "no repository", "locked" and "wrong
//! password" alike, so stderr text decides there; 0.17+ has codes 10–12,
//! which decide first (no older restic exits with them, so seeing one is
//! itself proof of a restic that has them: `Version::has_exit_codes`).
//! stderr reaches `classify` with restic's JSON error lines already
//! rendered as text (`output::stderr_text`), so the patterns match the
//! same words on every version.

pub use crate::model::ErrorClass;

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
    // Network failures first: restic 0.14 wraps a refused connection in
    // "unable to open config file … Is there a repository", which would
    // otherwise read as a missing repository. A refused login likewise.
    if has(&[
        "401 unauthorized",
        "403 forbidden",
        "invalidaccesskeyid",
        "signaturedoesnotmatch",
    ]) {
        ErrorClass::PermissionDenied
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
    } else if has(&["refusing to delete last snapshot"]) {
        // restic 0.17+ guards a group from being emptied by `forget` itself
        // (before, only our own guard did).
        ErrorClass::RetentionRefused
    } else if has(&[
        "repository contains errors",
        "ciphertext verification failed",
        "pack id does not match",
        "failed to download",
        "cannot dump file",
        "decrypting blob",
        "error for tree",
        "is damaged",
        "not found in index",
        "load(<data/",
    ]) {
        // What `check`, `restore` and `dump` (0.14 and later) say about a
        // missing or corrupt pack; checked before the generic I/O classes
        // because a missing pack also reads "no such file or directory".
        ErrorClass::RepositoryDamaged
    } else if has(&["no space left on device", "disk quota exceeded"]) {
        ErrorClass::NoSpace
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
        ErrorClass::Unreachable => match ssh_advice(repo, stderr) {
            Some(advice) => format!("repository `{repo}` cannot be reached: {advice}"),
            None => format!(
                "repository `{repo}` cannot be reached: {}",
                last_line(stderr)
            ),
        },
        ErrorClass::PermissionDenied if stderr.contains("401 Unauthorized") => format!(
            "the server of `{repo}` refused the login (HTTP 401 Unauthorized); check the destination's `username` and `password_file`"
        ),
        ErrorClass::PermissionDenied
            if stderr.contains("InvalidAccessKeyId")
                || stderr.contains("SignatureDoesNotMatch") =>
        {
            format!(
                "the S3 server of `{repo}` refused the credentials; check `access_key_id_file` and `secret_access_key_file` (or `AWS_*` in the destination's `env`): {}",
                last_line(stderr)
            )
        }
        ErrorClass::PermissionDenied => {
            format!("permission denied on `{repo}`: {}", last_line(stderr))
        }
        ErrorClass::NoSpace => {
            format!("no space left writing to `{repo}`; free space or prune old snapshots")
        }
        ErrorClass::Interrupted => format!("restic was interrupted while working on `{repo}`"),
        ErrorClass::RetentionRefused => format!(
            "refused by restic on `{repo}`: the policy would remove every snapshot of the group ({}); nothing was removed. Check the retention keys",
            last_line(stderr)
        ),
        ErrorClass::RepositoryDamaged => format!(
            "repository `{repo}` is damaged: {}; see `restic check --read-data` and restic's troubleshooting guide before the next prune",
            damage_line(stderr)
        ),
        _ => format!("restic failed on `{repo}`: {}", last_line(stderr)),
    }
}

/// `ssh-keyscan` for ssh's own `[host]:port` or `host` (port 22), or for
/// an sftp location (`sftp://user@host:port/…`, `sftp:user@host:/…`), whose
/// port may live in the `sftp.command` instead: then it reads `-p PORT`.
fn keyscan(target: &str) -> String {
    let (hostport, default_port) = match target.strip_prefix("sftp://") {
        Some(rest) => (rest.split('/').next().unwrap_or(rest), "PORT"),
        None => match target.strip_prefix("sftp:") {
            Some(rest) => (rest.split(':').next().unwrap_or(rest), "PORT"),
            None => (target, "22"),
        },
    };
    let hostport = hostport.rsplit('@').next().unwrap_or(hostport);
    let (host, port) = match hostport.strip_prefix('[') {
        Some(t) => t
            .split_once("]:")
            .unwrap_or((t.trim_end_matches(']'), default_port)),
        // A bare IPv6 address has no port.
        None if hostport.matches(':').count() > 1 => (hostport, default_port),
        None => hostport
            .rsplit_once(':')
            .unwrap_or((hostport, default_port)),
    };
    if port == "22" {
        format!("ssh-keyscan {host} >> FILE")
    } else {
        format!("ssh-keyscan -p {port} {host} >> FILE")
    }
}

/// What to do when ssh could not open the session of an sftp repository.
/// ssh's own lines (`No ED25519 host key is known for [h]:p and you have
/// requested strict checking.`, `Host key for h has changed and …`) name
/// the cause, but restic 0.14 copies ssh's stderr in the background and
/// sometimes exits before it has: then only "unable to start the sftp
/// session" is left, and the advice covers the likely causes.
fn ssh_advice(repo: &str, stderr: &str) -> Option<String> {
    const FILE: &str =
        "the destination's `known_hosts_file` (`~/.ssh/known_hosts` when it has none)";
    let unknown = |l: &str| {
        let (_, rest) = l.split_once(" host key is known for ")?;
        rest.split_whitespace().next().map(str::to_string)
    };
    let changed = |l: &str| {
        let (_, rest) = l.split_once("Host key for ")?;
        rest.split_once(" has changed").map(|(h, _)| h.to_string())
    };
    if let Some(target) = stderr.lines().find_map(unknown) {
        return Some(format!(
            "the SSH host key of `{target}` is not known; check its fingerprint with the server's administrator, then add it to {FILE}: `{}`",
            keyscan(&target)
        ));
    }
    if let Some(target) = stderr.lines().find_map(changed) {
        return Some(format!(
            "the SSH host key of `{target}` has CHANGED since it was recorded (a reinstalled server, or someone in between); if the change is expected, remove the old key from {FILE} with `ssh-keygen -R '{target}' -f FILE`, then add the new one: `{}`",
            keyscan(&target)
        ));
    }
    // From the location alone: the port may be unknown.
    let scan = keyscan(repo);
    let port = if scan.contains("-p PORT") {
        " (PORT: the destination's `port`, or 22)"
    } else {
        ""
    };
    if stderr.contains("Host key verification failed") {
        return Some(format!(
            "ssh did not accept the server's host key; check its fingerprint, then add it to {FILE}: `{scan}`{port}"
        ));
    }
    if repo.starts_with("sftp:") && stderr.contains("unable to start the sftp session") {
        return Some(format!(
            "ssh could not open an SFTP session (restic did not pass on ssh's reason); if the server's host key is not known yet, check its fingerprint and add it to {FILE}: `{scan}`{port}; otherwise check that the server is up and accepts the destination's `identity_file`"
        ));
    }
    None
}

/// The line of restic's stderr that names the damage (a pack, a tree, a
/// blob), else the most telling line.
fn damage_line(stderr: &str) -> String {
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    let Some(i) = lines.iter().position(|l| {
        let lc = l.trim().to_ascii_lowercase();
        (lc.starts_with("pack ") && !lc.contains("retrying"))
            || lc.starts_with("error for tree")
            || lc.contains("ciphertext verification failed")
            || lc.contains("cannot dump file")
    }) else {
        return last_line(stderr);
    };
    let head = lines[i].trim();
    if !head.ends_with(':') {
        return head.to_string();
    }
    // `error for tree 7cdf4289:` names nothing by itself: restic puts what
    // is wrong (the file, the blob) on the indented lines after it.
    let mut detail: Vec<&str> = lines[i + 1..]
        .iter()
        .take_while(|l| l.starts_with(char::is_whitespace))
        .map(|l| l.trim())
        .collect();
    if detail.is_empty()
        && let Some(next) = lines.get(i + 1).map(|l| l.trim())
        && !next.starts_with("Fatal:")
        && !next.starts_with('[')
    {
        detail.push(next);
    }
    match detail.split_first() {
        None => head.trim_end_matches(':').to_string(),
        Some((first, [])) => format!("{head} {first}"),
        Some((first, rest)) => format!("{head} {first} (and {} more)", rest.len()),
    }
}

/// The most telling line of restic's stderr (a `Fatal:` line if there is
/// one, else the last non-empty non-JSON line). restic's notes that it
/// retries a request are never it: they belong in the run log.
pub fn last_line(stderr: &str) -> String {
    let lines: Vec<&str> = stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !super::output::is_retry_chatter(l))
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
    fn restics_own_refusal_to_empty_a_group_is_a_retention_refusal() {
        let stderr =
            "refusing to delete last snapshot of snapshot group \"host h, tags [service:a]\"\n";
        let class = classify(1, stderr);
        assert_eq!(class, ErrorClass::RetentionRefused);
        let msg = explain(class, "/srv/repo", stderr);
        assert!(msg.contains("would remove every snapshot"), "{msg}");
        assert!(msg.contains("host h, tags [service:a]"), "{msg}");
    }

    #[test]
    fn a_damage_header_carries_its_detail_lines() {
        let check = "using temporary cache in /tmp/x\nerror for tree 26bee7c5:\n  tree 26bee7c5: file \"big\" blob 6daf66b9 not found in index\n  tree 26bee7c5: file \"small\" blob 4c47b3e8 not found in index\nFatal: repository contains errors\n";
        assert_eq!(
            damage_line(check),
            "error for tree 26bee7c5: tree 26bee7c5: file \"big\" blob 6daf66b9 not found in index (and 1 more)"
        );
        assert_eq!(
            damage_line("pack 3870627: does not exist\nFatal: repository contains errors"),
            "pack 3870627: does not exist"
        );
    }

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
            (
                1,
                "pack 3870627: does not exist\nFatal: repository contains errors",
                ErrorClass::RepositoryDamaged,
            ),
            (
                1,
                "Pack ID does not match, want 7a82, got dcf4\nFatal: repository contains errors",
                ErrorClass::RepositoryDamaged,
            ),
            (
                1,
                "ignoring error for /src/f2: ciphertext verification failed\nFatal: There were 2 errors",
                ErrorClass::RepositoryDamaged,
            ),
            (
                2,
                "cannot dump file: decrypting blob 8774 failed: ciphertext verification failed",
                ErrorClass::RepositoryDamaged,
            ),
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

    /// restic 0.14's words when a remote server refuses the login or the
    /// SSH host key: the login is not a missing repository although restic
    /// asks "Is there a repository…".
    #[test]
    fn classifies_refused_logins_and_host_keys() {
        let cases = [
            (
                "Fatal: unable to open config file: unexpected HTTP response (401): 401 Unauthorized\nIs there a repository at the following location?\nrest:http://nas@127.0.0.1:8000/docs/",
                ErrorClass::PermissionDenied,
            ),
            (
                "Fatal: create repository at rest:http://nas:***@127.0.0.1:8000/docs/ failed: Fatal: server response unexpected: 401 Unauthorized (401)",
                ErrorClass::PermissionDenied,
            ),
            (
                "Fatal: unable to open config file: Stat: The AWS Access Key Id you provided does not exist in our records. (InvalidAccessKeyId)\nIs there a repository at the following location?",
                ErrorClass::PermissionDenied,
            ),
            (
                "subprocess ssh: Host key verification failed.\nFatal: unable to open repository at sftp:u@h:/r: unable to start the sftp session, error: EOF",
                ErrorClass::Unreachable,
            ),
            (
                "Fatal: unable to open repository at sftp:u@h:/r: unable to start the sftp session, error: EOF",
                ErrorClass::Unreachable,
            ),
        ];
        for (text, want) in cases {
            assert_eq!(classify(1, text), want, "{text}");
        }
    }

    #[test]
    fn explains_ssh_host_key_failures_with_the_command_to_fix_them() {
        let fatal = "Fatal: unable to open repository at sftp://u@h:2222//r: unable to start the sftp session, error: EOF";
        let file = "the destination's `known_hosts_file` (`~/.ssh/known_hosts` when it has none)";
        let cases = [
            (
                "sftp://u@127.0.0.1:2222//r",
                format!(
                    "subprocess ssh: No ED25519 host key is known for [127.0.0.1]:2222 and you have requested strict checking.\nsubprocess ssh: Host key verification failed.\n{fatal}"
                ),
                format!(
                    "repository `sftp://u@127.0.0.1:2222//r` cannot be reached: the SSH host key of `[127.0.0.1]:2222` is not known; check its fingerprint with the server's administrator, then add it to {file}: `ssh-keyscan -p 2222 127.0.0.1 >> FILE`"
                ),
            ),
            (
                "sftp:u@nas.lan:/r",
                format!(
                    "subprocess ssh: Host key for nas.lan has changed and you have requested strict checking.\nsubprocess ssh: Host key verification failed.\n{fatal}"
                ),
                format!(
                    "repository `sftp:u@nas.lan:/r` cannot be reached: the SSH host key of `nas.lan` has CHANGED since it was recorded (a reinstalled server, or someone in between); if the change is expected, remove the old key from {file} with `ssh-keygen -R 'nas.lan' -f FILE`, then add the new one: `ssh-keyscan nas.lan >> FILE`"
                ),
            ),
            (
                "sftp:u@nas.lan:/r",
                format!("subprocess ssh: Host key verification failed.\n{fatal}"),
                format!(
                    "repository `sftp:u@nas.lan:/r` cannot be reached: ssh did not accept the server's host key; check its fingerprint, then add it to {file}: `ssh-keyscan -p PORT nas.lan >> FILE` (PORT: the destination's `port`, or 22)"
                ),
            ),
            // restic exited before passing on ssh's lines.
            (
                "sftp://u@[::1]:2222//r",
                fatal.to_string(),
                format!(
                    "repository `sftp://u@[::1]:2222//r` cannot be reached: ssh could not open an SFTP session (restic did not pass on ssh's reason); if the server's host key is not known yet, check its fingerprint and add it to {file}: `ssh-keyscan -p 2222 ::1 >> FILE`; otherwise check that the server is up and accepts the destination's `identity_file`"
                ),
            ),
            (
                "sftp:u@nas.lan:/r",
                fatal.to_string(),
                format!(
                    "repository `sftp:u@nas.lan:/r` cannot be reached: ssh could not open an SFTP session (restic did not pass on ssh's reason); if the server's host key is not known yet, check its fingerprint and add it to {file}: `ssh-keyscan -p PORT nas.lan >> FILE` (PORT: the destination's `port`, or 22); otherwise check that the server is up and accepts the destination's `identity_file`"
                ),
            ),
        ];
        for (repo, stderr, want) in cases {
            assert_eq!(explain(classify(1, &stderr), repo, &stderr), want);
        }
    }

    #[test]
    fn explains_refused_logins() {
        let repo = "rest:http://nas@h:8000/docs";
        let stderr = "Fatal: unable to open config file: unexpected HTTP response (401): 401 Unauthorized\nIs there a repository at the following location?";
        assert_eq!(
            explain(classify(1, stderr), repo, stderr),
            "the server of `rest:http://nas@h:8000/docs` refused the login (HTTP 401 Unauthorized); check the destination's `username` and `password_file`"
        );
    }
}
