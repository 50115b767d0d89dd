//! A generic webhook: the [`Message`] as JSON (schema version 1, documented
//! in docs/notifications.md), POSTed with the configured extra headers.

use std::collections::BTreeMap;

use super::{DeliveryError, Message, http};
use crate::config::notify::Notifier;

pub async fn send(
    client: &reqwest::Client,
    n: &Notifier,
    url: &str,
    headers: &BTreeMap<String, String>,
    m: &Message,
) -> (Result<String, DeliveryError>, u32) {
    let mut map = reqwest::header::HeaderMap::new();
    for (k, v) in headers {
        let name = reqwest::header::HeaderName::from_bytes(k.as_bytes());
        let value = reqwest::header::HeaderValue::from_str(v);
        match (name, value) {
            (Ok(name), Ok(value)) => {
                map.insert(name, value);
            }
            // The value is not shown: it may be a token.
            _ => return (Err(DeliveryError::Header(k.clone())), 0),
        }
    }
    let body = match serde_json::to_string(m) {
        Ok(b) => b,
        Err(e) => return (Err(DeliveryError::Encode(e)), 0),
    };
    http(n, || {
        client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .headers(map.clone())
            .body(body.clone())
    })
    .await
}
