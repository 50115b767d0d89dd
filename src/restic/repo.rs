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
fn parse_sftp(url: &str) -> Option<(String, Option<u16>, String)> {
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
            let (t, p, _) = parse_sftp(u).unwrap_or_default();
            (t, p, join(u, service))
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
            ssh.push(format!("-i {i} -o IdentitiesOnly=yes"));
        }
        if let Some(k) = &d.known_hosts_file {
            ssh.push(format!(
                "-o UserKnownHostsFile={k} -o StrictHostKeyChecking=yes"
            ));
        }
        ssh.push(format!("-o BatchMode=yes {target} -s sftp"));
        options.push(format!("sftp.command={}", ssh.join(" ")));
    }
    location
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
                    u = format!("{}{user}@{}", &u[..i + 3], &u[i + 3..]);
                }
                format!("rest:{u}")
            }
            ("sftp", u) => sftp_location(d, u.as_deref(), service, &mut options),
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
                    options.push(format!("s3.region={r}"));
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
                    options.push(format!("rclone.program={b}"));
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
        })
    }

    /// Reads credential files into the environment restic will get.
    pub fn with_secrets(mut self) -> Result<Repository, RepoError> {
        for (var, key, file) in std::mem::take(&mut self.secret_files) {
            let value = read_secret(&self.destination, &key, &file)?;
            if var == REST_PASSWORD {
                // Into the location, which only travels in the child's
                // environment; `display` keeps the redacted form.
                if let Some(at) = self.url.find('@') {
                    let encoded: String = value
                        .bytes()
                        .map(|b| {
                            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                                char::from(b).to_string()
                            } else {
                                format!("%{b:02X}")
                            }
                        })
                        .collect();
                    self.url = format!("{}:{encoded}{}", &self.url[..at], &self.url[at..]);
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
            raw,
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
            (
                "local",
                DestinationRaw {
                    url: Some("/srv/backup".into()),
                    ..Default::default()
                },
                "/srv/backup/wiki",
            ),
            (
                "sftp",
                DestinationRaw {
                    url: Some("sftp://u@h:23/backups".into()),
                    ..Default::default()
                },
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
                DestinationRaw {
                    url: Some("s3:https://host/bucket".into()),
                    ..Default::default()
                },
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
            (
                "b2",
                DestinationRaw {
                    url: Some("b2:bucket:prefix".into()),
                    ..Default::default()
                },
                "b2:bucket:prefix/wiki",
            ),
            (
                "rest",
                DestinationRaw {
                    url: Some("http://h:8000/".into()),
                    ..Default::default()
                },
                "rest:http://h:8000/wiki",
            ),
            (
                "rest",
                DestinationRaw {
                    url: Some("rest:http://h:8000".into()),
                    ..Default::default()
                },
                "rest:http://h:8000/wiki",
            ),
            (
                "rclone",
                DestinationRaw {
                    remote: Some("remote:backups".into()),
                    ..Default::default()
                },
                "rclone:remote:backups/wiki",
            ),
        ];
        for (kind, raw, want) in cases {
            let r =
                Repository::new(&dest(kind, raw), "wiki", &pw).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(r.url, want, "{kind}");
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
