//! How the dashboard answers, shared by its pages, its API, its actions
//! and its authentication: the page frame and error pages, `HttpFailure`,
//! `{"error": "..."}` for API clients, and percent-encoding for links.
//! It imports no other part of `web`, so every handler module can use it.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};
use serde::Serialize;

use crate::restore::listing;

/// The body of every JSON error.
#[derive(Debug, Serialize)]
pub struct ErrorBody<'a> {
    pub error: &'a str,
}

/// `{"error": message}`.
pub fn error_json(message: &str) -> Json<ErrorBody<'_>> {
    Json(ErrorBody { error: message })
}

/// An error answered as a page (or as JSON for API clients).
#[derive(Debug)]
pub struct HttpFailure {
    pub status: StatusCode,
    pub message: String,
    json: bool,
}

impl HttpFailure {
    pub fn new(status: StatusCode, message: impl Into<String>) -> HttpFailure {
        HttpFailure {
            status,
            message: message.into(),
            json: false,
        }
    }
    pub fn not_found(m: impl Into<String>) -> HttpFailure {
        HttpFailure::new(StatusCode::NOT_FOUND, m)
    }
    pub fn bad_request(m: impl Into<String>) -> HttpFailure {
        HttpFailure::new(StatusCode::BAD_REQUEST, m)
    }
    pub fn internal(m: impl Into<String>) -> HttpFailure {
        HttpFailure::new(StatusCode::INTERNAL_SERVER_ERROR, m)
    }
    pub fn history(e: crate::history::HistoryError) -> HttpFailure {
        HttpFailure::internal(e.to_string())
    }
    /// restic's "no such snapshot/path" is a 404; anything else a 502.
    pub fn from_read(e: listing::ReadError) -> HttpFailure {
        match e {
            listing::ReadError::NotFound(m) => HttpFailure::not_found(m),
            listing::ReadError::Failed(e) => HttpFailure::new(StatusCode::BAD_GATEWAY, e.message),
        }
    }
    #[must_use]
    pub fn json(mut self, json: bool) -> HttpFailure {
        self.json = json;
        self
    }
}

impl IntoResponse for HttpFailure {
    fn into_response(self) -> Response {
        if self.json {
            (self.status, error_json(&self.message)).into_response()
        } else {
            error_page(self.status, &self.message)
        }
    }
}

/// A plain error page.
pub fn error_page(status: StatusCode, message: &str) -> Response {
    let title = format!(
        "{} {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    );
    let body = layout(
        &title,
        None,
        false,
        html! {
            h1 { (title) }
            p.error { (message) }
            p { a href="/" { "Back to the overview" } }
        },
    );
    (status, Html(body.into_string())).into_response()
}

/// Percent-encodes everything but unreserved characters and `/`.
pub fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~/".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The frame of every page; `logout` is the session's CSRF token when the
/// page offers to log out (a browser session), and `refresh` reloads a page
/// without JavaScript every two seconds.
pub fn layout(title: &str, logout: Option<&str>, refresh: bool, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · restic-manager" }
                link rel="stylesheet" href="/static/style.css";
                @if refresh {
                    noscript { meta http-equiv="refresh" content="2"; }
                }
                script src="/static/app.js" defer {}
            }
            body {
                header {
                    a.brand href="/" { "restic-manager" }
                    @if let Some(csrf) = logout {
                        form.inline method="post" action="/logout" {
                            input type="hidden" name="csrf" value=(csrf);
                            button type="submit" { "Log out" }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}
