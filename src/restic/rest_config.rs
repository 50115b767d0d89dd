//! Telling a deleted REST repository from a wrong password.
//!
//! When a REST repository's folder is deleted on the server, restic (0.14
//! to 0.19, with rclone's `serve restic`) answers "wrong password or no key
//! found" (exit 12 on 0.17+), not "repository does not exist": the
//! server's listing cache still names the old files. Asking the server for
//! the repository's `config` tells the two apart: 404 means there is no
//! repository. A GET, not a HEAD: rclone answers HEAD from the same cache
//! (200 for a file that is gone), GET opens the file.

use std::time::Duration;

use super::Repository;

/// How long the one request may take; any failure leaves restic's answer.
const TIMEOUT: Duration = Duration::from_secs(10);

/// `<url>/config` of a `rest:` repository (credentials kept in the URL:
/// reqwest sends them as basic auth), or `None` for other repositories.
fn config_url(repo: &Repository) -> Option<String> {
    let u = repo.url.strip_prefix("rest:")?;
    if !(u.starts_with("http://") || u.starts_with("https://")) {
        return None;
    }
    Some(format!("{}/config", u.trim_end_matches('/')))
}

/// Whether the server of a `rest:` repository says its `config` does not
/// exist (HTTP 404). `false` for other repositories and whenever the
/// server cannot be asked.
pub async fn missing(repo: &Repository) -> bool {
    let Some(url) = config_url(repo) else {
        return false;
    };
    let Ok(client) = reqwest::Client::builder()
        .timeout(TIMEOUT)
        .connect_timeout(TIMEOUT)
        .build()
    else {
        return false;
    };
    client
        .get(&url)
        .send()
        .await
        .is_ok_and(|r| r.status() == reqwest::StatusCode::NOT_FOUND)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::PasswordSource;

    #[test]
    fn only_rest_repositories_are_asked() {
        let repo = |url: &str| Repository {
            destination: "d".into(),
            url: url.into(),
            display: url.into(),
            password: PasswordSource::Command("true".into()),
            options: Vec::new(),
            env: Vec::new(),
            secret_files: Vec::new(),
            stall: None,
        };
        assert_eq!(
            config_url(&repo("rest:http://u:p@h:8000/wiki/")).as_deref(),
            Some("http://u:p@h:8000/wiki/config")
        );
        assert_eq!(
            config_url(&repo("rest:https://h/a")).as_deref(),
            Some("https://h/a/config")
        );
        for other in ["/srv/r", "sftp:u@h:/r", "s3:h/b", "rest:http+unix:///s:/r"] {
            assert_eq!(config_url(&repo(other)), None, "{other}");
        }
    }
}
