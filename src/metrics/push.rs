//! Pushing the figures: Prometheus Pushgateway (HTTP PUT of the text
//! format, replacing this host's group) and InfluxDB (line protocol to the
//! v2 or v1 write API). Each request has a 10 s timeout; a failure is a
//! warning. The InfluxDB token is read from `token_file` when sending and
//! never printed.

use std::time::Duration;

use super::{Figures, influx_lines, prometheus};
use crate::config::{InfluxTarget, Influxdb, MetricsSettings, Pushgateway};
use crate::restic::repo::redact_url;

/// Per request.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// Pushes to every configured receiver at once; returns the warnings.
pub async fn push_all(m: &MetricsSettings, f: &Figures) -> Vec<String> {
    if m.pushgateway.is_none() && m.influxdb.is_none() {
        return Vec::new();
    }
    let client = match reqwest::Client::builder()
        .timeout(TIMEOUT)
        .connect_timeout(TIMEOUT)
        .build()
    {
        Ok(c) => c,
        Err(e) => return vec![format!("cannot set up the HTTP client: {e}")],
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

fn describe(e: reqwest::Error) -> String {
    if e.is_timeout() {
        format!("no answer within {} s", TIMEOUT.as_secs())
    } else if e.is_connect() {
        "cannot connect".to_string()
    } else {
        // Without the URL: it is printed by the caller, redacted.
        e.without_url().to_string()
    }
}

async fn send(what: &str, shown: &str, req: reqwest::RequestBuilder) -> Result<(), String> {
    match req.send().await {
        Err(e) => Err(format!("{what} `{shown}`: {}", describe(e))),
        Ok(resp) if resp.status().is_success() => Ok(()),
        Ok(resp) => {
            let status = resp.status();
            let body = resp.text().await.unwrap_or_default();
            let body: String = body.trim().chars().take(200).collect();
            Err(format!(
                "{what} `{shown}` answered HTTP {status}{}",
                if body.is_empty() {
                    String::new()
                } else {
                    format!(": {body}")
                }
            ))
        }
    }
}

/// The group URL: `<url>/metrics/job/<job>/host/<host>`, each value
/// percent-encoded as one path segment.
pub fn pushgateway_url(p: &Pushgateway, host: &str) -> Result<reqwest::Url, String> {
    let mut url = reqwest::Url::parse(&p.url)
        .map_err(|e| format!("pushgateway url `{}` is not valid: {e}", redact_url(&p.url)))?;
    url.path_segments_mut()
        .map_err(|()| {
            format!(
                "pushgateway url `{}` cannot take a path",
                redact_url(&p.url)
            )
        })?
        .pop_if_empty()
        .extend(["metrics", "job", &p.job, "host", host]);
    Ok(url)
}

async fn pushgateway(client: &reqwest::Client, p: &Pushgateway, f: &Figures) -> Result<(), String> {
    let url = pushgateway_url(p, &f.host)?;
    let shown = redact_url(url.as_str());
    // PUT replaces every metric of this host's group, so a service removed
    // from the configuration disappears from the Pushgateway too.
    let req = client
        .put(url)
        .header("Content-Type", "text/plain; version=0.0.4")
        .body(prometheus(f));
    send("pushgateway", &shown, req).await
}

async fn influxdb(client: &reqwest::Client, i: &Influxdb, f: &Figures) -> Result<(), String> {
    let base = reqwest::Url::parse(&i.url)
        .map_err(|e| format!("influxdb url `{}` is not valid: {e}", redact_url(&i.url)))?;
    let (path, query): (&str, Vec<(&str, &str)>) = match &i.target {
        InfluxTarget::V2 { org, bucket } => (
            "api/v2/write",
            vec![("org", org), ("bucket", bucket), ("precision", "s")],
        ),
        InfluxTarget::V1 { database } => ("write", vec![("db", database), ("precision", "s")]),
    };
    let mut url = base.clone();
    url.path_segments_mut()
        .map_err(|()| format!("influxdb url `{}` cannot take a path", redact_url(&i.url)))?
        .pop_if_empty()
        .extend(path.split('/'));
    url.query_pairs_mut().extend_pairs(query);
    let shown = redact_url(url.as_str());
    let mut req = client
        .post(url)
        .header("Content-Type", "text/plain; charset=utf-8")
        .body(influx_lines(f));
    if let Some(file) = &i.token_file {
        let token = std::fs::read_to_string(file).map_err(|e| {
            format!(
                "influxdb: cannot read `token_file` `{}`: {e}; nothing was sent",
                file.display()
            )
        })?;
        req = req.header("Authorization", format!("Token {}", token.trim()));
    }
    send("influxdb", &shown, req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_path_is_encoded() {
        let p = Pushgateway {
            url: "http://pg:9091/base/".into(),
            job: "restic manager".into(),
        };
        assert_eq!(
            pushgateway_url(&p, "h/1").map(|u| u.to_string()),
            Ok("http://pg:9091/base/metrics/job/restic%20manager/host/h%2F1".to_string())
        );
    }
}
