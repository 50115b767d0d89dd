//! Does a network destination answer at all? Asked once per destination
//! and command, before restic runs against it.
//!
//! restic ≥ 0.17 retries a destination that refuses connections for about
//! 15 minutes before it gives up, and has no option to stop sooner; 0.14
//! fails within a second. A TCP connection, then one HTTP request (REST,
//! S3, B2) or the SSH greeting (SFTP), with a short deadline, answer the
//! same question in milliseconds when the destination is up and within
//! `connect_timeout_seconds` when it is not. Nothing secret is sent: the
//! HTTP request carries no credentials, and any HTTP answer (401, 403,
//! 404 included) proves the server is there. rclone remotes have no
//! address we could know; they are left to the stall watchdog
//! (`process::StallMeter`).

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::time::Instant;

use super::Repository;
use crate::config::{Config, Destination};

/// A destination that did not answer.
#[derive(Debug, Clone)]
pub struct Unreachable {
    pub destination: String,
    /// `host:port` that was tried.
    pub address: String,
    /// What happened (`connection refused`, `no HTTP answer within 15s`).
    pub detail: String,
}

impl Unreachable {
    /// The message users see: destination, address, what happened, and
    /// what to do.
    pub fn message(&self) -> String {
        format!(
            "destination `{}` cannot be reached at {}: {}; restic was not started (it would retry for up to 15 minutes). Check that the server is running and reachable from this host; `connect_timeout_seconds` sets how long this check waits",
            self.destination, self.address, self.detail
        )
    }
}

/// What to ask a destination.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Check {
    /// TCP to `host:port`, then `HEAD url`: any HTTP status will do.
    Http {
        host: String,
        port: u16,
        url: String,
    },
    /// TCP to `host` (resolved by `ssh -G`), then the `SSH-` greeting.
    Ssh { target: String, port: Option<u16> },
}

/// `scheme://[user[:pw]@]host[:port]/path` → (scheme, host, port, path).
fn parse_http(url: &str) -> Option<(String, String, u16, String)> {
    let (scheme, rest) = url.split_once("://")?;
    let default_port = match scheme {
        "http" => 80,
        "https" => 443,
        _ => return None,
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let hostport = authority.rsplit('@').next().unwrap_or(authority);
    let (host, port) = match hostport.strip_prefix('[') {
        Some(r) => {
            let (h, tail) = r.split_once(']')?;
            let port = match tail.strip_prefix(':') {
                Some(p) => p.parse().ok()?,
                None => default_port,
            };
            (h.to_string(), port)
        }
        None => match hostport.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), p.parse().ok()?),
            None => (hostport.to_string(), default_port),
        },
    };
    if host.is_empty() {
        return None;
    }
    Some((scheme.to_string(), host, port, path.to_string()))
}

/// `host` as it goes into a URL.
fn url_host(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

/// What to check for a destination's repository; `None` when nothing can
/// be checked (local folders, rclone remotes, REST over a unix socket).
fn plan(kind: &str, repo: &Repository, port: Option<u16>) -> Option<Check> {
    let http = |url: &str| {
        let (scheme, host, port, path) = parse_http(url)?;
        Some(Check::Http {
            url: format!("{scheme}://{}:{port}{path}", url_host(&host)),
            host,
            port,
        })
    };
    match kind {
        "rest" => http(repo.url.strip_prefix("rest:").unwrap_or(&repo.url)),
        "s3" => {
            let loc = repo.url.strip_prefix("s3:").unwrap_or(&repo.url);
            // restic's S3 backend speaks HTTPS unless told `http://`.
            let loc = if loc.starts_with("http://") || loc.starts_with("https://") {
                loc.to_string()
            } else {
                format!("https://{loc}")
            };
            // The endpoint only: the bucket path may need credentials.
            let (scheme, host, port, _) = parse_http(&loc)?;
            Some(Check::Http {
                url: format!("{scheme}://{}:{port}/", url_host(&host)),
                host,
                port,
            })
        }
        "b2" => http("https://api.backblazeb2.com/"),
        "sftp" => {
            let (target, url_port, _) = super::repo::parse_sftp(&repo.url)?;
            Some(Check::Ssh {
                target,
                port: port.or(url_port),
            })
        }
        _ => None,
    }
}

/// An HTTP(S) proxy restic would go through: then only the HTTP request
/// (through the same proxy) is a fair check, not a direct TCP connection.
fn proxied() -> bool {
    [
        "HTTPS_PROXY",
        "https_proxy",
        "HTTP_PROXY",
        "http_proxy",
        "ALL_PROXY",
        "all_proxy",
    ]
    .iter()
    .any(|v| std::env::var_os(v).is_some_and(|s| !s.is_empty()))
}

fn secs(d: Duration) -> String {
    format!("{}s", d.as_secs_f64().ceil())
}

/// A TCP connection to `host:port` before `deadline`.
async fn connect(
    host: &str,
    port: u16,
    deadline: Instant,
    limit: Duration,
) -> Result<tokio::net::TcpStream, String> {
    let addrs = tokio::time::timeout_at(deadline, tokio::net::lookup_host((host, port)))
        .await
        .map_err(|_| format!("the name `{host}` did not resolve within {}", secs(limit)))?
        .map_err(|e| format!("the name `{host}` does not resolve: {e}"))?
        .collect::<Vec<_>>();
    let mut last = format!("the name `{host}` has no address");
    for a in addrs {
        match tokio::time::timeout_at(deadline, tokio::net::TcpStream::connect(a)).await {
            Ok(Ok(s)) => return Ok(s),
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                last = "connection refused (nothing listens on that port)".into();
            }
            Ok(Err(e)) => last = format!("cannot connect: {e}"),
            Err(_) => {
                return Err(format!(
                    "no answer to the TCP connection within {}",
                    secs(limit)
                ));
            }
        }
    }
    Err(last)
}

/// The innermost cause of a reqwest error (the useful part).
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

async fn http_check(
    host: &str,
    port: u16,
    url: &str,
    deadline: Instant,
    limit: Duration,
) -> Result<(), String> {
    if !proxied() {
        drop(connect(host, port, deadline, limit).await?);
    }
    let left = deadline.saturating_duration_since(Instant::now());
    // Only liveness is checked: a private CA or a self-signed certificate
    // (restic's `--cacert`) must not fail it, and nothing secret is sent.
    let client = reqwest::Client::builder()
        .timeout(left)
        .connect_timeout(left)
        .danger_accept_invalid_certs(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| format!("cannot make an HTTP client: {e}"))?;
    match client.head(url).send().await {
        Ok(_) => Ok(()),
        Err(e) if e.is_timeout() => Err(format!(
            "the server accepted the connection but sent no HTTP answer within {}",
            secs(limit)
        )),
        Err(e) => Err(format!("no HTTP answer: {}", root_cause(&e))),
    }
}

/// `ssh -G` says where ssh really connects (a `Host` alias in
/// `~/.ssh/config`, another port); `None` when ssh goes through a proxy
/// or cannot tell, and the destination is then not checked.
async fn ssh_address(target: &str, port: Option<u16>) -> Option<(String, u16)> {
    let mut spec = crate::process::Spec::new("ssh").arg("-G");
    if let Some(p) = port {
        spec = spec.arg("-p").arg(p.to_string());
    }
    spec = spec.arg(target);
    spec.timeout = Some(Duration::from_secs(5));
    let out = spec
        .run(&crate::process::Shutdown::never(), |_| {}, |_| {})
        .await
        .ok()
        .filter(|o| o.ended.success())?;
    let (mut host, mut port) = (None, 22u16);
    for line in out.stdout.lines() {
        let (k, v) = line.split_once(' ').unwrap_or((line, ""));
        match k {
            "hostname" => host = Some(v.trim().to_string()),
            "port" => port = v.trim().parse().ok()?,
            "proxycommand" | "proxyjump" if v.trim() != "none" => return None,
            _ => {}
        }
    }
    Some((host?, port))
}

async fn ssh_check(
    host: &str,
    port: u16,
    deadline: Instant,
    limit: Duration,
) -> Result<(), String> {
    let mut s = connect(host, port, deadline, limit).await?;
    let mut seen = Vec::new();
    let mut buf = [0u8; 256];
    while seen.len() < 4096 {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Err(_) => {
                return Err(format!(
                    "the server accepted the connection but sent no SSH greeting within {}",
                    secs(limit)
                ));
            }
            Ok(Ok(0)) => {
                return Err("the server closed the connection without an SSH greeting".into());
            }
            Ok(Err(e)) => return Err(format!("reading the SSH greeting failed: {e}")),
            Ok(Ok(n)) => {
                seen.extend_from_slice(&buf[..n]);
                if seen.windows(4).any(|w| w == b"SSH-") {
                    return Ok(());
                }
            }
        }
    }
    Err("the server answered, but not as an SSH server".into())
}

/// Checks one destination; `Ok` also when it cannot be checked.
pub async fn check(
    dest: &Destination,
    repo: &Repository,
    limit: Duration,
) -> Result<(), Unreachable> {
    let Some(check) = plan(&dest.kind, repo, dest.raw.port) else {
        return Ok(());
    };
    let deadline = Instant::now() + limit;
    let fail = |address: String, detail: String| Unreachable {
        destination: dest.name.clone(),
        address,
        detail,
    };
    match check {
        Check::Http { host, port, url } => http_check(&host, port, &url, deadline, limit)
            .await
            .map_err(|d| fail(format!("{}:{port}", url_host(&host)), d)),
        Check::Ssh { target, port } => {
            let Some((host, port)) = ssh_address(&target, port).await else {
                return Ok(());
            };
            ssh_check(&host, port, deadline, limit)
                .await
                .map_err(|d| fail(format!("{}:{port}", url_host(&host)), d))
        }
    }
}

/// The destinations that did not answer, by name.
#[derive(Debug, Clone, Default)]
pub struct Probes {
    failed: BTreeMap<String, Unreachable>,
}

impl Probes {
    /// Why `destination` cannot be used now, if it cannot.
    pub fn failed(&self, destination: &str) -> Option<&Unreachable> {
        self.failed.get(destination)
    }
}

/// Checks each named destination once, all at the same time.
pub async fn check_all<'a>(config: &Config, names: impl IntoIterator<Item = &'a str>) -> Probes {
    let mut seen = std::collections::BTreeSet::new();
    let jobs = names
        .into_iter()
        .filter(|n| seen.insert(*n))
        .filter_map(|n| config.destinations.get(n))
        .filter_map(|d| Some((d, d.connect_timeout?)))
        .filter_map(|(d, limit)| {
            // The repository location without a service: only host and
            // port matter here.
            let repo = Repository::new(d, "", &config.settings.password).ok()?;
            Some(async move { check(d, &repo, limit).await.err() })
        });
    let failed = futures_util::future::join_all(jobs)
        .await
        .into_iter()
        .flatten()
        .map(|u| (u.destination.clone(), u))
        .collect();
    Probes { failed }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::PasswordSource;

    fn repo(url: &str) -> Repository {
        Repository {
            destination: "d".into(),
            url: url.into(),
            display: url.into(),
            password: PasswordSource::File("/pw".into()),
            options: Vec::new(),
            env: Vec::new(),
            secret_files: Vec::new(),
            stall: None,
        }
    }

    #[test]
    fn what_is_checked_per_location() {
        let http = |host: &str, port: u16, url: &str| {
            Some(Check::Http {
                host: host.into(),
                port,
                url: url.into(),
            })
        };
        let cases = [
            (
                "rest",
                "rest:http://u:p@10.0.0.5:8000/svc",
                http("10.0.0.5", 8000, "http://10.0.0.5:8000/svc"),
            ),
            (
                "rest",
                "rest:https://backup.example/svc",
                http("backup.example", 443, "https://backup.example:443/svc"),
            ),
            (
                "rest",
                "rest:http://[::1]:8000/svc",
                http("::1", 8000, "http://[::1]:8000/svc"),
            ),
            ("rest", "rest:http+unix:///run/rest.sock:/svc", None),
            (
                "s3",
                "s3:http://127.0.0.1:9000/bucket/svc",
                http("127.0.0.1", 9000, "http://127.0.0.1:9000/"),
            ),
            (
                "s3",
                "s3:s3.amazonaws.com/bucket/svc",
                http("s3.amazonaws.com", 443, "https://s3.amazonaws.com:443/"),
            ),
            (
                "b2",
                "b2:bucket:svc",
                http(
                    "api.backblazeb2.com",
                    443,
                    "https://api.backblazeb2.com:443/",
                ),
            ),
            (
                "sftp",
                "sftp:backup@nas:/srv/svc",
                Some(Check::Ssh {
                    target: "backup@nas".into(),
                    port: None,
                }),
            ),
            ("rclone", "rclone:remote:svc", None),
            ("local", "/srv/backup/svc", None),
        ];
        for (kind, url, want) in cases {
            assert_eq!(plan(kind, &repo(url), None), want, "{url}");
        }
        assert_eq!(
            plan("sftp", &repo("sftp://u@h:23//srv"), Some(2222)),
            Some(Check::Ssh {
                target: "u@h".into(),
                port: Some(2222)
            })
        );
    }
}
