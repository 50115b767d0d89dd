//! Destination → repository location, options and environment.
//!
//! One repository per (service, destination): `<destination base>/<service>`,
//! as in the original tool. The location goes to restic as
//! `RESTIC_REPOSITORY` in the child's environment, never as `-r`, because a
//! REST URL may carry credentials. Credentials read from files go into the
//! child's environment only.

use std::path::Path;

use crate::config::{Destination, PasswordSource};

/// Everything restic needs to open one repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repository {
    pub destination: String,
    /// The location restic opens (may contain credentials: never print).
    pub url: String,
    /// The location with any credentials replaced by `***`.
    pub display: String,
    pub password: PasswordSource,
    /// Extra `-o key=value` options (not secret).
    pub options: Vec<String>,
    /// Extra child environment (may hold secrets).
    pub env: Vec<(String, String)>,
    /// Credentials to read into the environment before restic runs:
    /// (variable, config key, file). Read late so that `validate` and
    /// `config show` never touch secrets.
    pub secret_files: Vec<(String, String, String)>,
    /// How long restic may retry this repository without progress before
    /// it is stopped (the destination's `stall_timeout_seconds`).
    pub stall: Option<std::time::Duration>,
}

/// Why a repository could not be described.
#[derive(Debug, thiserror::Error)]
#[error("destination `{destination}`: {detail}")]
pub struct RepoError {
    pub destination: String,
    pub detail: String,
}

fn read_secret(destination: &str, key: &str, file: &str) -> Result<String, RepoError> {
    std::fs::read_to_string(file)
        .map(|s| s.trim_end_matches(['\n', '\r']).to_string())
        .map_err(|e| RepoError {
            destination: destination.to_string(),
            detail: format!("cannot read `{key}` file `{file}`: {e}"),
        })
}

/// Marks the REST HTTP password among `secret_files`.
const REST_PASSWORD: &str = "\0rest-password";

fn join(base: &str, service: &str) -> String {
    format!("{}/{service}", base.trim_end_matches('/'))
}

/// Splits an sftp location into (`user@host`, port, path):
/// `sftp://user@host:23/path` or `sftp:user@host:/path`.
pub(crate) fn parse_sftp(url: &str) -> Option<(String, Option<u16>, String)> {
    if let Some(rest) = url.strip_prefix("sftp://") {
        let (hostport, path) = rest.split_once('/')?;
        let (target, port) = match hostport.rsplit_once(':') {
            Some((t, p)) if !t.ends_with(']') || p.parse::<u16>().is_ok() => {
                (t.to_string(), p.parse().ok())
            }
            _ => (hostport.to_string(), None),
        };
        return Some((target, port, format!("/{path}")));
    }
    let rest = url.strip_prefix("sftp:")?;
    let (target, path) = rest.split_once(':')?;
    Some((target.to_string(), None, path.to_string()))
}

/// A file name as ssh reads it in an `-o Key=value` option: `%` doubled
/// (ssh expands `%` tokens in file names), and quoted with ssh's own
/// rules when it holds spaces, quotes or backslashes (ssh splits such
/// values into words).
fn ssh_file(path: &str) -> String {
    let v = path.replace('%', "%%");
    if v.contains(|c: char| c.is_whitespace() || "'\"\\".contains(c)) {
        let escaped = v
            .replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\'', "\\'");
        format!("\"{escaped}\"")
    } else {
        v
    }
}

/// One word of an `sftp.command`. restic splits the command on whitespace
/// and backslashes outside quotes, keeps everything inside `'…'` as it is,
/// and does not end a quote at a `'` that follows a backslash — which is
/// how `ssh_file` writes every `'`.
fn sftp_word(value: &str) -> String {
    if value.contains(|c: char| c.is_whitespace() || "'\"\\".contains(c)) {
        format!("'{value}'")
    } else {
        value.to_string()
    }
}

/// An `-o` value as restic's flag parser reads it: as one CSV field, so a
/// value with `,` or `"` must be CSV-quoted or restic splits or rejects it.
fn restic_option(value: String) -> String {
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value
    }
}

/// The sftp location, plus an `sftp.command` when port, key or known-hosts
/// file are configured, so they apply without touching `~/.ssh/config`.
fn sftp_location(
    d: &crate::config::schema::DestinationRaw,
    url: Option<&str>,
    service: &str,
    options: &mut Vec<String>,
) -> String {
    let (target, url_port, location) = match url {
        Some(u) => {
            // The original tool's locations always start with `sftp:`;
            // accept `user@host:/path` too rather than letting restic take
            // it for a local folder.
            let u = if u.starts_with("sftp:") {
                u.to_string()
            } else {
                format!("sftp:{u}")
            };
            let (t, p, _) = parse_sftp(&u).unwrap_or_default();
            (t, p, join(&u, service))
        }
        None => {
            let host = d.host.as_deref().unwrap_or_default();
            let path = d.path.as_deref().unwrap_or_default();
            let target = match &d.user {
                Some(u) => format!("{u}@{host}"),
                None => host.to_string(),
            };
            let loc = format!("sftp:{target}:{}", join(path, service));
            (target, None, loc)
        }
    };
    let port = d.port.or(url_port);
    if port.is_some() || d.identity_file.is_some() || d.known_hosts_file.is_some() {
        let mut ssh = vec!["ssh".to_string()];
        if let Some(p) = port {
            ssh.push(format!("-p {p}"));
        }
        if let Some(i) = &d.identity_file {
            // `-o IdentityFile`, not `-i`: ssh checks `-i`'s file before
            // expanding `%%`, so a name with `%` would be skipped.
            let file = sftp_word(&format!("IdentityFile={}", ssh_file(i)));
            ssh.push(format!("-o {file} -o IdentitiesOnly=yes"));
        }
        if let Some(k) = &d.known_hosts_file {
            let file = sftp_word(&format!("UserKnownHostsFile={}", ssh_file(k)));
            ssh.push(format!("-o {file} -o StrictHostKeyChecking=yes"));
        }
        ssh.push(format!("-o BatchMode=yes {} -s sftp", sftp_word(&target)));
        options.push(restic_option(format!("sftp.command={}", ssh.join(" "))));
    }
    location
}

/// Percent-encodes a URL user-info part (RFC 3986 unreserved characters
/// stay as they are).
fn encode_userinfo(value: &str) -> String {
    value
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// `location` with the backend's `prefix:` added when the user left it out
/// (a bare `bucket/path` would otherwise be a local folder to restic).
fn with_scheme(location: &str, scheme: &str) -> String {
    if location.starts_with(scheme) {
        location.to_string()
    } else {
        format!("{scheme}{location}")
    }
}

/// Hides `user:password@` in a URL.
pub fn redact_url(url: &str) -> String {
    if let Some(scheme_end) = url.find("://") {
        let rest = &url[scheme_end + 3..];
        let host_end = rest.find('/').unwrap_or(rest.len());
        if let Some(at) = rest[..host_end].rfind('@') {
            let userinfo = &rest[..at];
            let user = userinfo.split(':').next().unwrap_or("");
            if userinfo.contains(':') {
                return format!("{}{user}:***{}", &url[..scheme_end + 3], &rest[at..]);
            }
        }
    }
    url.to_string()
}

impl Repository {
    /// Describes the repository of `service` on `dest`; `global` is the
    /// password source when the destination has none of its own.
    pub fn new(
        dest: &Destination,
        service: &str,
        global: &PasswordSource,
    ) -> Result<Repository, RepoError> {
        let d = &dest.raw;
        let name = dest.name.as_str();
        let err = |detail: String| RepoError {
            destination: name.to_string(),
            detail,
        };
        let mut options = Vec::new();
        let mut env: Vec<(String, String)> = Vec::new();
        let url = match (dest.kind.as_str(), &d.url) {
            ("local", Some(u)) => join(u.strip_prefix("local:").unwrap_or(u), service),
            ("rest", Some(u)) => {
                let u = u.strip_prefix("rest:").unwrap_or(u);
                let mut u = join(u, service);
                // The HTTP password is added by `with_secrets`, into the
                // location that only travels in restic's environment.
                if let (Some(user), Some(i)) = (&d.username, u.find("://")) {
                    u = format!("{}{}@{}", &u[..i + 3], encode_userinfo(user), &u[i + 3..]);
                }
                format!("rest:{u}")
            }
            ("sftp", u) => sftp_location(d, u.as_deref(), service, &mut options),
            ("s3", Some(u)) => join(&with_scheme(u, "s3:"), service),
            ("b2", Some(u)) => join(&with_scheme(u, "b2:"), service),
            ("rclone", Some(u)) => {
                if let Some(b) = &d.rclone_binary {
                    options.push(restic_option(format!("rclone.program={b}")));
                }
                join(&with_scheme(u, "rclone:"), service)
            }
            (_, Some(u)) => join(u, service),
            ("local", None) => join(d.path.as_deref().unwrap_or_default(), service),
            ("s3", None) => {
                let endpoint = d.endpoint.as_deref().unwrap_or("s3.amazonaws.com");
                let mut base = format!(
                    "{}/{}",
                    endpoint.trim_end_matches('/'),
                    d.bucket.as_deref().unwrap_or_default()
                );
                if let Some(p) = d.prefix.as_deref().filter(|p| !p.is_empty()) {
                    base = join(&base, p.trim_matches('/'));
                }
                if let Some(r) = &d.region {
                    options.push(restic_option(format!("s3.region={r}")));
                }
                format!("s3:{}", join(&base, service))
            }
            ("b2", None) => {
                let prefix = d.prefix.as_deref().unwrap_or("").trim_matches('/');
                let path = if prefix.is_empty() {
                    service.to_string()
                } else {
                    join(prefix, service)
                };
                format!("b2:{}:{path}", d.bucket.as_deref().unwrap_or_default())
            }
            ("rclone", None) => {
                if let Some(b) = &d.rclone_binary {
                    options.push(restic_option(format!("rclone.program={b}")));
                }
                format!(
                    "rclone:{}",
                    join(d.remote.as_deref().unwrap_or_default(), service)
                )
            }
            (kind, None) => return Err(err(format!("type `{kind}` needs `url`"))),
        };
        let mut secret_files = Vec::new();
        for (var, key, file) in [
            (
                "AWS_ACCESS_KEY_ID",
                "access_key_id_file",
                &d.access_key_id_file,
            ),
            (
                "AWS_SECRET_ACCESS_KEY",
                "secret_access_key_file",
                &d.secret_access_key_file,
            ),
            ("B2_ACCOUNT_ID", "account_id_file", &d.account_id_file),
            ("B2_ACCOUNT_KEY", "account_key_file", &d.account_key_file),
        ] {
            if let Some(f) = file {
                secret_files.push((var.to_string(), key.to_string(), f.clone()));
            }
        }
        if let Some(extra) = &d.env {
            env.extend(extra.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        // A REST destination with `username` uses `password_file` for HTTP
        // basic auth; its repository password then comes from
        // `repository_password_*` or the global one.
        let rest_auth = dest.kind == "rest" && d.username.is_some();
        if rest_auth && let Some(f) = &d.password_file {
            secret_files.push((
                REST_PASSWORD.to_string(),
                "password_file".to_string(),
                f.clone(),
            ));
        }
        let own_file = if rest_auth {
            None
        } else {
            d.password_file.as_ref()
        };
        let password = match (
            d.repository_password_file.as_ref().or(own_file),
            d.repository_password_command
                .as_ref()
                .or(d.password_command.as_ref()),
        ) {
            (Some(f), _) => PasswordSource::File(Path::new(f).to_path_buf()),
            (_, Some(c)) => PasswordSource::Command(c.clone()),
            _ => global.clone(),
        };
        Ok(Repository {
            destination: name.to_string(),
            display: redact_url(&url),
            url,
            password,
            options,
            env,
            secret_files,
            stall: dest.stall_timeout,
        })
    }

    /// The repository of `service` on `dest` with its credential files
    /// read: what every restic call needs. [`Repository::new`] alone is for
    /// showing and validating, which must not read secrets.
    pub fn open(
        dest: &Destination,
        service: &str,
        global: &PasswordSource,
    ) -> Result<Repository, RepoError> {
        Repository::new(dest, service, global)?.with_secrets()
    }

    /// Reads credential files into the environment restic will get.
    pub fn with_secrets(mut self) -> Result<Repository, RepoError> {
        for (var, key, file) in std::mem::take(&mut self.secret_files) {
            let value = read_secret(&self.destination, &key, &file)?;
            if var == REST_PASSWORD {
                // Into the location, which only travels in the child's
                // environment; `display` keeps the redacted form.
                // The user name was encoded, so the first `@` ends it.
                if let Some(at) = self.url.find('@') {
                    self.url = format!(
                        "{}:{}{}",
                        &self.url[..at],
                        encode_userinfo(&value),
                        &self.url[at..]
                    );
                }
            } else {
                self.env.push((var, value));
            }
        }
        Ok(self)
    }

    /// For local repositories, the folder; `None` for remote ones.
    pub fn local_path(&self) -> Option<&Path> {
        let u = self.url.strip_prefix("local:").unwrap_or(&self.url);
        Path::new(u).is_absolute().then(|| Path::new(u))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Retention;
    use crate::config::schema::DestinationRaw;
    use std::path::PathBuf;

    fn dest(kind: &str, raw: DestinationRaw) -> Destination {
        Destination {
            name: "d".into(),
            kind: kind.into(),
            description: None,
            retention: Retention::default(),
            connect_timeout: None,
            stall_timeout: None,
            raw,
        }
    }

    /// A destination given by its `url` only.
    fn url(u: &str) -> DestinationRaw {
        DestinationRaw {
            url: Some(u.into()),
            ..Default::default()
        }
    }

    #[test]
    fn repository_locations_per_type() {
        let pw = PasswordSource::File(PathBuf::from("/pw"));
        let cases = [
            (
                "local",
                DestinationRaw {
                    path: Some("/srv/backup/".into()),
                    ..Default::default()
                },
                "/srv/backup/wiki",
            ),
            ("local", url("/srv/backup"), "/srv/backup/wiki"),
            (
                "sftp",
                url("sftp://u@h:23/backups"),
                "sftp://u@h:23/backups/wiki",
            ),
            (
                "sftp",
                DestinationRaw {
                    host: Some("h".into()),
                    user: Some("u".into()),
                    path: Some("/b".into()),
                    ..Default::default()
                },
                "sftp:u@h:/b/wiki",
            ),
            (
                "s3",
                DestinationRaw {
                    endpoint: Some("http://127.0.0.1:9000".into()),
                    bucket: Some("bk".into()),
                    prefix: Some("p/".into()),
                    ..Default::default()
                },
                "s3:http://127.0.0.1:9000/bk/p/wiki",
            ),
            (
                "s3",
                url("s3:https://host/bucket"),
                "s3:https://host/bucket/wiki",
            ),
            (
                "b2",
                DestinationRaw {
                    bucket: Some("bk".into()),
                    prefix: Some("hosts/a".into()),
                    ..Default::default()
                },
                "b2:bk:hosts/a/wiki",
            ),
            ("b2", url("b2:bucket:prefix"), "b2:bucket:prefix/wiki"),
            ("rest", url("http://h:8000/"), "rest:http://h:8000/wiki"),
            ("rest", url("rest:http://h:8000"), "rest:http://h:8000/wiki"),
            (
                "rclone",
                DestinationRaw {
                    remote: Some("remote:backups".into()),
                    ..Default::default()
                },
                "rclone:remote:backups/wiki",
            ),
            // The port goes into `sftp.command`, not the location.
            (
                "sftp",
                DestinationRaw {
                    host: Some("h".into()),
                    user: Some("u".into()),
                    port: Some(2222),
                    path: Some("/b".into()),
                    ..Default::default()
                },
                "sftp:u@h:/b/wiki",
            ),
            // The backend prefix is added when a `url` lacks it.
            ("sftp", url("u@h:/b"), "sftp:u@h:/b/wiki"),
            (
                "s3",
                url("s3.amazonaws.com/bucket"),
                "s3:s3.amazonaws.com/bucket/wiki",
            ),
            ("b2", url("bucket:prefix"), "b2:bucket:prefix/wiki"),
            ("rclone", url("rclone:remote:x"), "rclone:remote:x/wiki"),
            (
                "rest",
                DestinationRaw {
                    url: Some("https://h/".into()),
                    username: Some("n@s".into()),
                    ..Default::default()
                },
                "rest:https://n%40s@h/wiki",
            ),
        ];
        for (kind, raw, want) in cases {
            let r = Repository::new(&dest(kind, raw), "wiki", &pw).unwrap();
            assert_eq!(r.url, want, "{kind}");
        }
    }

    /// A credential file in a temporary folder.
    fn secret(dir: &tempfile::TempDir, name: &str, content: &str) -> String {
        let p = dir.path().join(name);
        std::fs::write(&p, content).unwrap();
        p.display().to_string()
    }

    #[test]
    fn b2_location_and_credentials_from_files() {
        // B2 cannot be reached from the test machines: the location and
        // environment restic gets are what can be checked.
        let dir = tempfile::tempdir().unwrap();
        let id = secret(&dir, "id", "0012345abcdef0000000001\n");
        let key = secret(&dir, "key", "K001secretKeyValue/+=\r\n");
        let raw = DestinationRaw {
            bucket: Some("my-b2-bucket".into()),
            prefix: Some("/hosts/nas/".into()),
            account_id_file: Some(id.clone()),
            account_key_file: Some(key.clone()),
            ..Default::default()
        };
        let pw = PasswordSource::File(PathBuf::from("/pw"));
        let r = Repository::new(&dest("b2", raw), "wiki", &pw).unwrap();
        assert_eq!(r.url, "b2:my-b2-bucket:hosts/nas/wiki");
        assert_eq!(r.display, r.url);
        assert!(r.options.is_empty());
        // Nothing is read before `with_secrets` (`validate`, `config show`).
        assert!(r.env.is_empty());
        assert_eq!(
            r.secret_files,
            [
                ("B2_ACCOUNT_ID".into(), "account_id_file".into(), id),
                ("B2_ACCOUNT_KEY".into(), "account_key_file".into(), key),
            ]
        );
        let r = r.with_secrets().unwrap();
        assert_eq!(
            r.env,
            [
                ("B2_ACCOUNT_ID".into(), "0012345abcdef0000000001".into()),
                ("B2_ACCOUNT_KEY".into(), "K001secretKeyValue/+=".into()),
            ]
        );
        assert_eq!(r.url, "b2:my-b2-bucket:hosts/nas/wiki");
        assert_eq!(r.password, pw);
    }

    #[test]
    fn a_missing_credential_file_names_the_key_and_file() {
        let raw = DestinationRaw {
            bucket: Some("bk".into()),
            account_id_file: Some("/nonexistent/b2-id".into()),
            ..Default::default()
        };
        let pw = PasswordSource::File(PathBuf::from("/pw"));
        let e = Repository::new(&dest("b2", raw), "wiki", &pw)
            .and_then(Repository::with_secrets)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            e.starts_with(
                "destination `d`: cannot read `account_id_file` file `/nonexistent/b2-id`: "
            ),
            "{e}"
        );
    }

    #[test]
    fn s3_credentials_and_env_table_reach_only_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let raw = DestinationRaw {
            bucket: Some("bk".into()),
            region: Some("eu-central-1".into()),
            access_key_id_file: Some(secret(&dir, "id", "AKIA1\n")),
            secret_access_key_file: Some(secret(&dir, "secret", "s3cret\n")),
            env: Some([("AWS_SESSION_TOKEN".to_string(), "tok".to_string())].into()),
            ..Default::default()
        };
        let pw = PasswordSource::File(PathBuf::from("/pw"));
        let r = Repository::new(&dest("s3", raw), "wiki", &pw)
            .and_then(Repository::with_secrets)
            .unwrap();
        assert_eq!(r.url, "s3:s3.amazonaws.com/bk/wiki");
        assert_eq!(r.options, ["s3.region=eu-central-1"]);
        let mut env = r.env.clone();
        env.sort();
        assert_eq!(
            env,
            [
                ("AWS_ACCESS_KEY_ID".into(), "AKIA1".into()),
                ("AWS_SECRET_ACCESS_KEY".into(), "s3cret".into()),
                ("AWS_SESSION_TOKEN".into(), "tok".into()),
            ]
        );
    }

    #[test]
    fn rest_password_goes_into_the_location_only_after_with_secrets() {
        let dir = tempfile::tempdir().unwrap();
        let raw = DestinationRaw {
            url: Some("rest:http://h:8000/".into()),
            username: Some("nas".into()),
            password_file: Some(secret(&dir, "http", "p@ss w/rd:%\n")),
            repository_password_file: Some("/repo-pw".into()),
            ..Default::default()
        };
        let pw = PasswordSource::File(PathBuf::from("/pw"));
        let r = Repository::new(&dest("rest", raw), "wiki", &pw).unwrap();
        assert_eq!(r.url, "rest:http://nas@h:8000/wiki");
        let r = r.with_secrets().unwrap();
        assert_eq!(r.url, "rest:http://nas:p%40ss%20w%2Frd%3A%25@h:8000/wiki");
        assert_eq!(r.display, "rest:http://nas@h:8000/wiki");
        assert!(r.env.is_empty());
        // `password_file` is the HTTP password; the repository's is apart.
        assert_eq!(r.password, PasswordSource::File(PathBuf::from("/repo-pw")));
    }

    #[test]
    fn sftp_command_carries_port_key_and_known_hosts() {
        let pw = PasswordSource::File(PathBuf::from("/pw"));
        let cases = [
            (
                DestinationRaw {
                    host: Some("nas.lan".into()),
                    user: Some("backup".into()),
                    port: Some(2222),
                    path: Some("/volume1/restic".into()),
                    identity_file: Some("/home/me/.ssh/id_backup".into()),
                    known_hosts_file: Some("/home/me/.ssh/known_hosts".into()),
                    ..Default::default()
                },
                "sftp.command=ssh -p 2222 -o IdentityFile=/home/me/.ssh/id_backup -o IdentitiesOnly=yes -o UserKnownHostsFile=/home/me/.ssh/known_hosts -o StrictHostKeyChecking=yes -o BatchMode=yes backup@nas.lan -s sftp",
            ),
            // The port of a `url`; odd file names quoted for ssh, then for
            // restic's command splitter, then as a CSV field for `-o`.
            (
                DestinationRaw {
                    url: Some("sftp://u@h:23//srv".into()),
                    identity_file: Some("/my keys/id%1".into()),
                    known_hosts_file: Some("/k,it's".into()),
                    ..Default::default()
                },
                r#""sftp.command=ssh -p 23 -o 'IdentityFile=""/my keys/id%%1""' -o IdentitiesOnly=yes -o 'UserKnownHostsFile=""/k,it\'s""' -o StrictHostKeyChecking=yes -o BatchMode=yes u@h -s sftp""#,
            ),
        ];
        for (raw, want) in cases {
            let r = Repository::new(&dest("sftp", raw), "wiki", &pw).unwrap();
            assert_eq!(r.options, [want]);
        }
        // Without port, key or known-hosts file, ssh's own settings apply.
        let r = Repository::new(
            &dest(
                "sftp",
                DestinationRaw {
                    url: Some("sftp:u@h:/srv".into()),
                    ..Default::default()
                },
            ),
            "wiki",
            &pw,
        )
        .unwrap();
        assert!(r.options.is_empty());
    }

    #[test]
    fn rclone_binary_becomes_rclone_program() {
        let pw = PasswordSource::File(PathBuf::from("/pw"));
        for raw in [
            DestinationRaw {
                remote: Some("gdrive:restic".into()),
                rclone_binary: Some("/opt/rclone/rclone".into()),
                ..Default::default()
            },
            DestinationRaw {
                url: Some("rclone:gdrive:restic".into()),
                rclone_binary: Some("/opt/rclone/rclone".into()),
                ..Default::default()
            },
        ] {
            let r = Repository::new(&dest("rclone", raw), "wiki", &pw).unwrap();
            assert_eq!(r.url, "rclone:gdrive:restic/wiki");
            assert_eq!(r.options, ["rclone.program=/opt/rclone/rclone"]);
        }
    }

    #[test]
    fn credentials_are_redacted() {
        assert_eq!(
            redact_url("rest:https://user:secret@host:8000/repo"),
            "rest:https://user:***@host:8000/repo"
        );
        assert_eq!(
            redact_url("rest:http://host:8000/repo"),
            "rest:http://host:8000/repo"
        );
    }
}
