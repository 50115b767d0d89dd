//! ntfy: the text as the body of a POST to the topic URL, with a title,
//! a priority and tags by event, and an optional access token (from a
//! file) as a bearer token.

use std::path::Path;

use super::{DeliveryError, Event, Message, http};
use crate::config::notify::{Notifier, Secret};

/// ntfy priorities: 1 min … 5 max (urgent).
pub fn priority(e: Event) -> u8 {
    match e {
        Event::Success => 2,
        Event::Recovery | Event::Test | Event::Start | Event::LongRunning => 3,
        Event::Warning | Event::Stale => 4,
        Event::Failure => 5,
    }
}

fn tags(e: Event) -> &'static str {
    match e {
        Event::Success | Event::Recovery | Event::Start => "white_check_mark",
        Event::Test => "bell",
        Event::Warning => "warning",
        Event::LongRunning => "hourglass",
        Event::Stale => "zzz",
        Event::Failure => "rotating_light",
    }
}

/// Header values must be visible ASCII.
fn ascii(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect()
}

pub async fn send(
    client: &reqwest::Client,
    n: &Notifier,
    url: &str,
    token_file: Option<&Path>,
    m: &Message,
) -> (Result<String, DeliveryError>, u32) {
    let token = match token_file {
        Some(f) => match Secret::File(f.to_path_buf()).read() {
            Ok(t) if !t.is_empty() => Some(t),
            Ok(_) => return (Err(DeliveryError::EmptyToken(f.to_path_buf())), 0),
            Err(e) => return (Err(DeliveryError::Token(e)), 0),
        },
        None => None,
    };
    let mut text = m.text(m.event != Event::Success);
    if text.len() > 3900 {
        let mut cut = 3900;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push('…');
    }
    let title = ascii(&m.title);
    http(n, || {
        let mut r = client
            .post(url)
            .header("Title", title.as_str())
            .header("Priority", priority(m.event).to_string())
            .header("Tags", tags(m.event))
            .body(text.clone());
        if let Some(t) = &token {
            r = r.bearer_auth(t);
        }
        r
    })
    .await
}
