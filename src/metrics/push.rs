//! Pushing the figures: Prometheus Pushgateway (HTTP PUT of the text
//! format, replacing this host's group) and InfluxDB (line protocol to the
//! v2 or v1 write API). Each request has a 10 s timeout; a failure is a
//! warning. The InfluxDB token is read from `token_file` when sending and
//! never printed.

use std::path::PathBuf;
use std::time::Duration;

use super::{Figures, influx_lines, prometheus};
use crate::config::{InfluxTarget, Influxdb, MetricsSettings, Pushgateway};
use crate::restic::repo::redact_url;

/// Per request.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// Why the figures did not reach a receiver. URLs are shown redacted; the
/// InfluxDB token never.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error("cannot set up the HTTP client: {0}")]
    Client(reqwest::Error),
    /// `receiver` is `pushgateway` or `influxdb`; `url` is redacted.
    #[error("{receiver} url `{url}` is not valid: {problem}")]
    BadUrl {
        receiver: &'static str,
        url: String,
        problem: String,
    },
    #[error("{receiver} url `{url}` cannot take a path")]
    NoPath { receiver: &'static str, url: String },
    #[error("influxdb: cannot read `token_file` `{}`: {source}; nothing was sent", .path.display())]
    TokenFile {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The request got no answer; `source` is without its URL.
    #[error("{receiver} `{url}`: {}", describe(.source))]
    Request {
        receiver: &'static str,
        url: String,
        source: reqwest::Error,
    },
    /// An answer other than success, with the start of its body.
    #[error("{receiver} `{url}` answered HTTP {status}{}", colon(.body))]
    Status {
        receiver: &'static str,
        url: String,
        status: reqwest::StatusCode,
        body: String,
    },
}

/// `: body`, or nothing for an empty body.
fn colon(body: &str) -> String {
    if body.is_empty() {
        String::new()
    } else {
        format!(": {body}")
    }
}

/// Pushes to every configured receiver at once; returns the failures.
pub async fn push_all(m: &MetricsSettings, f: &Figures) -> Vec<PushError> {
    if m.pushgateway.is_none() && m.influxdb.is_none() {
        return Vec::new();
    }
    let client = match reqwest::Client::builder()
        .timeout(TIMEOUT)
        .connect_timeout(TIMEOUT)
        .build()
    {
        Ok(c) => c,
        Err(e) => return vec![PushError::Client(e)],
    };
    let pg = async {
        match &m.pushgateway {
            Some(p) => pushgateway(&client, p, f).await.err(),
            None => None,
        }
    };
    let influx = async {
        match &m.influxdb {
            Some(i) => influxdb(&client, i, f).await.err(),
            None => None,
        }
    };
    let (a, b) = tokio::join!(pg, influx);
    a.into_iter().chain(b).collect()
}

fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        format!("no answer within {} s", TIMEOUT.as_secs())
    } else if e.is_connect() {
        "cannot connect".to_string()
    } else {
        e.to_string()
    }
}

async fn send(
    receiver: &'static str,
    url: String,
    req: reqwest::RequestBuilder,
) -> Result<(), PushError> {
    match req.send().await {
        Err(e) => Err(PushError::Request {
            receiver,
            url,
            // Without the URL: the error shows it redacted.
            source: e.without_url(),
        }),
        Ok(resp) if resp.status().is_success() => Ok(()),
        Ok(resp) => {
            let status = resp.status();
            let body = resp.text().await.unwrap_or_default();
            Err(PushError::Status {
                receiver,
                url,
                status,
                body: body.trim().chars().take(200).collect(),
            })
        }
    }
}

/// The group URL: `<url>/metrics/job/<job>/host/<host>`, each value
/// percent-encoded as one path segment.
pub fn pushgateway_url(p: &Pushgateway, host: &str) -> Result<reqwest::Url, PushError> {
    let mut url = parse("pushgateway", &p.url)?;
    url.path_segments_mut()
        .map_err(|()| PushError::NoPath {
            receiver: "pushgateway",
            url: redact_url(&p.url),
        })?
        .pop_if_empty()
        .extend(["metrics", "job", &p.job, "host", host]);
    Ok(url)
}

fn parse(receiver: &'static str, url: &str) -> Result<reqwest::Url, PushError> {
    reqwest::Url::parse(url).map_err(|e| PushError::BadUrl {
        receiver,
        url: redact_url(url),
        problem: e.to_string(),
    })
}

async fn pushgateway(
    client: &reqwest::Client,
    p: &Pushgateway,
    f: &Figures,
) -> Result<(), PushError> {
    let url = pushgateway_url(p, &f.host)?;
    let shown = redact_url(url.as_str());
    // PUT replaces every metric of this host's group, so a service removed
    // from the configuration disappears from the Pushgateway too.
    let req = client
        .put(url)
        .header("Content-Type", "text/plain; version=0.0.4")
        .body(prometheus(f));
    send("pushgateway", shown, req).await
}

async fn influxdb(client: &reqwest::Client, i: &Influxdb, f: &Figures) -> Result<(), PushError> {
    let base = parse("influxdb", &i.url)?;
    let (path, query): (&str, Vec<(&str, &str)>) = match &i.target {
        InfluxTarget::V2 { org, bucket } => (
            "api/v2/write",
            vec![("org", org), ("bucket", bucket), ("precision", "s")],
        ),
        InfluxTarget::V1 { database } => ("write", vec![("db", database), ("precision", "s")]),
    };
    let mut url = base.clone();
    url.path_segments_mut()
        .map_err(|()| PushError::NoPath {
            receiver: "influxdb",
            url: redact_url(&i.url),
        })?
        .pop_if_empty()
        .extend(path.split('/'));
    url.query_pairs_mut().extend_pairs(query);
    let shown = redact_url(url.as_str());
    let mut req = client
        .post(url)
        .header("Content-Type", "text/plain; charset=utf-8")
        .body(influx_lines(f));
    if let Some(file) = &i.token_file {
        let token = std::fs::read_to_string(file).map_err(|source| PushError::TokenFile {
            path: file.clone(),
            source,
        })?;
        req = req.header("Authorization", format!("Token {}", token.trim()));
    }
    send("influxdb", shown, req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_errors_read_as_before() {
        let p = Pushgateway {
            url: "pg:9091".into(),
            job: "j".into(),
        };
        let Err(e) = pushgateway_url(&p, "h") else {
            panic!("`pg:9091` has no path to extend")
        };
        assert_eq!(
            e.to_string(),
            "pushgateway url `pg:9091` cannot take a path"
        );
        let Err(e) = parse("influxdb", "http://user:pw@[::1") else {
            panic!("a broken URL was parsed")
        };
        assert_eq!(
            e.to_string(),
            format!(
                "influxdb url `{}` is not valid: invalid IPv6 address",
                redact_url("http://user:pw@[::1")
            )
        );
        let io = std::io::Error::from(std::io::ErrorKind::NotFound);
        let gone = io.to_string();
        assert_eq!(
            PushError::TokenFile {
                path: "/run/t".into(),
                source: io,
            }
            .to_string(),
            format!("influxdb: cannot read `token_file` `/run/t`: {gone}; nothing was sent")
        );
        for (body, want) in [
            (
                "",
                "pushgateway `http://pg/***` answered HTTP 400 Bad Request",
            ),
            (
                "bad line",
                "pushgateway `http://pg/***` answered HTTP 400 Bad Request: bad line",
            ),
        ] {
            let e = PushError::Status {
                receiver: "pushgateway",
                url: "http://pg/***".into(),
                status: reqwest::StatusCode::BAD_REQUEST,
                body: body.into(),
            };
            assert_eq!(e.to_string(), want);
        }
    }

    #[test]
    fn group_path_is_encoded() {
        let p = Pushgateway {
            url: "http://pg:9091/base/".into(),
            job: "restic manager".into(),
        };
        assert_eq!(
            pushgateway_url(&p, "h/1")
                .map(|u| u.to_string())
                .map_err(|e| e.to_string()),
            Ok("http://pg:9091/base/metrics/job/restic%20manager/host/h%2F1".to_string())
        );
    }
}
