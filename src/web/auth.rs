//! Who may use the dashboard: the holder of the token in `[web]
//! token_file`. Browsers log in once with it and get a random session id
//! in an HttpOnly, SameSite=Strict cookie (never the token itself); every
//! state-changing form also carries the session's CSRF token. Scripts send
//! `Authorization: Bearer TOKEN` and need no CSRF token: a browser never
//! adds that header by itself, so another site cannot forge it.

use std::collections::HashMap;
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use rand::RngCore;

use super::Shared;

/// The session cookie's name.
pub const COOKIE: &str = "rm_session";
/// A session ends after this long without a request.
const IDLE: Duration = Duration::from_secs(12 * 3600);
/// Most sessions kept at once (oldest dropped first).
const MAX_SESSIONS: usize = 1000;

/// Compares two secrets in time that depends only on their lengths.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `n` random bytes as hex.
pub fn random_hex(n: usize) -> String {
    let mut buf = vec![0u8; n];
    rand::rng().fill_bytes(&mut buf);
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

struct Session {
    csrf: String,
    last_seen: Instant,
}

/// The token and the live sessions.
pub struct Auth {
    token: String,
    sessions: Mutex<HashMap<String, Session>>,
    /// Wrong tokens per client address.
    pub strikes: Strikes,
}

/// The address a request came from (`0.0.0.0` when unknown).
pub fn peer_ip(req: &Request) -> IpAddr {
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::from([0, 0, 0, 0]), |c| c.0.ip())
}

/// A wrong token from an address waits before it is answered, longer with
/// every wrong token from there ([`penalty`]), one at a time per address,
/// so parallel guesses queue up instead of running side by side. The right
/// token is checked first and never waits: a guesser cannot lock the owner
/// out. An address is forgiven after [`FORGET`] without a wrong token, or
/// by a right one.
pub struct Strikes {
    by_ip: Mutex<HashMap<IpAddr, Strike>>,
}

struct Strike {
    count: u32,
    last: Instant,
    gate: Arc<tokio::sync::Mutex<()>>,
}

/// How long an address's wrong tokens are remembered.
const FORGET: Duration = Duration::from_secs(15 * 60);
/// Most addresses remembered (the oldest are forgotten first).
const MAX_ADDRESSES: usize = 10_000;

/// The wait before answering the `n`th wrong token in a row: 250 ms,
/// doubling each time, at most 8 s.
pub fn penalty(n: u32) -> Duration {
    let exp = n.saturating_sub(1).min(5);
    Duration::from_millis(250 << exp)
}

impl Strikes {
    fn new() -> Strikes {
        Strikes {
            by_ip: Mutex::new(HashMap::new()),
        }
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, Strike>> {
        self.by_ip
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Counts a wrong token from `ip` and waits its penalty (queued behind
    /// the other wrong tokens from `ip`).
    pub async fn wrong(&self, ip: IpAddr) {
        let gate = {
            let mut m = self.map();
            let now = Instant::now();
            if m.len() >= MAX_ADDRESSES && !m.contains_key(&ip) {
                m.retain(|_, s| now.duration_since(s.last) < FORGET);
                if m.len() >= MAX_ADDRESSES
                    && let Some(oldest) = m.iter().min_by_key(|(_, s)| s.last).map(|(k, _)| *k)
                {
                    m.remove(&oldest);
                }
            }
            let s = m.entry(ip).or_insert_with(|| Strike {
                count: 0,
                last: now,
                gate: Arc::new(tokio::sync::Mutex::new(())),
            });
            if now.duration_since(s.last) >= FORGET {
                s.count = 0;
            }
            s.last = now;
            s.gate.clone()
        };
        let _turn = gate.lock().await;
        let n = {
            let mut m = self.map();
            let s = m.entry(ip).or_insert_with(|| Strike {
                count: 0,
                last: Instant::now(),
                gate: gate.clone(),
            });
            s.count = s.count.saturating_add(1);
            s.last = Instant::now();
            s.count
        };
        tokio::time::sleep(penalty(n)).await;
    }

    /// The right token from `ip`: its wrong ones are forgiven.
    pub fn right(&self, ip: IpAddr) {
        let mut m = self.map();
        if m.contains_key(&ip) {
            m.remove(&ip);
        }
    }
}

/// How a request proved itself; put into the request's extensions.
#[derive(Clone, Debug)]
pub enum Authed {
    Bearer,
    Session { id: String, csrf: String },
}

impl Authed {
    /// The CSRF token to put into forms (empty for Bearer clients).
    pub fn csrf(&self) -> &str {
        match self {
            Authed::Bearer => "",
            Authed::Session { csrf, .. } => csrf,
        }
    }

    /// Whether answers should be JSON (API clients) rather than pages.
    pub fn wants_json(&self) -> bool {
        matches!(self, Authed::Bearer)
    }
}

impl Auth {
    pub fn new(token: String) -> Auth {
        Auth {
            token,
            sessions: Mutex::new(HashMap::new()),
            strikes: Strikes::new(),
        }
    }

    fn sessions(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.sessions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn token_ok(&self, given: &str) -> bool {
        ct_eq(given.trim().as_bytes(), self.token.as_bytes())
    }

    /// The token itself, only to redact it from log text shown in pages.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// Starts a session; returns its id.
    pub fn login(&self) -> String {
        let id = random_hex(32);
        let mut s = self.sessions();
        let now = Instant::now();
        s.retain(|_, v| now.duration_since(v.last_seen) < IDLE);
        if s.len() >= MAX_SESSIONS
            && let Some(oldest) = s
                .iter()
                .min_by_key(|(_, v)| v.last_seen)
                .map(|(k, _)| k.clone())
        {
            s.remove(&oldest);
        }
        s.insert(
            id.clone(),
            Session {
                csrf: random_hex(32),
                last_seen: now,
            },
        );
        id
    }

    /// The CSRF token of a live session (and keeps it alive).
    fn session(&self, id: &str) -> Option<String> {
        let mut s = self.sessions();
        let now = Instant::now();
        match s.get_mut(id) {
            Some(v) if now.duration_since(v.last_seen) < IDLE => {
                v.last_seen = now;
                Some(v.csrf.clone())
            }
            Some(_) => {
                s.remove(id);
                None
            }
            None => None,
        }
    }

    pub fn logout(&self, id: &str) {
        self.sessions().remove(id);
    }
}

/// Reads the token, or creates it (48 random characters, mode 0600) when
/// `create` allows. Returns the token and whether it was created.
pub fn load_or_create_token(path: &Path, create: bool) -> Result<(String, bool), String> {
    match std::fs::read_to_string(path) {
        Ok(t) => {
            let t = t.trim().to_string();
            if t.len() < 16 {
                return Err(format!(
                    "the web token in `{}` is shorter than 16 characters; delete the file and run `restic-manager setup` to generate a strong one",
                    path.display()
                ));
            }
            if let Ok(m) = std::fs::metadata(path)
                && m.permissions().mode() & 0o077 != 0
            {
                crate::logging::warn(format!(
                    "the web token file `{}` is readable by other users; run `chmod 600 {}`",
                    path.display(),
                    path.display()
                ));
            }
            Ok((t, false))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => {
            write_token_file(path).map_err(|e| {
                format!("cannot create the web token file `{}`: {e}", path.display())
            })?;
            load_or_create_token(path, false).map(|(t, _)| (t, true))
        }
        Err(e) => Err(format!(
            "cannot read the web token file `{}`: {e}",
            path.display()
        )),
    }
}

/// Writes a new random token with mode 0600; never overwrites.
pub fn write_token_file(path: &Path) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    writeln!(f, "{}", crate::engine::setup::generate_password())?;
    f.sync_all()
}

fn cookie_session(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_string())
}

/// The credentials of `Authorization: Bearer TOKEN`; the scheme name is
/// case-insensitive (RFC 7235), so `bearer` and `BEARER` work too.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

/// A field of an `application/x-www-form-urlencoded` body, undecoded (the
/// CSRF token is hex, so it needs no decoding).
fn form_field<'a>(body: &'a [u8], name: &str) -> Option<&'a str> {
    std::str::from_utf8(body)
        .ok()?
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn unauthorized(message: &str) -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer")],
        super::respond::error_json(message),
    )
        .into_response()
}

/// Most bytes of a form body read for the CSRF check.
const MAX_FORM: usize = 64 * 1024;

/// Lets a request through when it carries a valid Bearer token or session
/// cookie, and for a session's POST, the session's CSRF token (form field
/// `csrf` or header `X-CSRF-Token`).
pub async fn require(State(st): State<Shared>, req: Request, next: Next) -> Response {
    let headers = req.headers();
    let peer = peer_ip(&req);
    let authed = if let Some(t) = bearer(headers) {
        if !st.auth.token_ok(t) {
            st.auth.strikes.wrong(peer).await;
            return unauthorized("wrong token");
        }
        st.auth.strikes.right(peer);
        Authed::Bearer
    } else if let Some(csrf) =
        cookie_session(headers).and_then(|id| st.auth.session(&id).map(|csrf| (id, csrf)))
    {
        Authed::Session {
            id: csrf.0,
            csrf: csrf.1,
        }
    } else {
        let path = req.uri().path();
        let page = req.method() == Method::GET && !path.starts_with("/api/") && path != "/metrics";
        if page {
            let next = req
                .uri()
                .path_and_query()
                .map_or("/", axum::http::uri::PathAndQuery::as_str);
            let q = super::respond::url_encode(next);
            return Redirect::to(&format!("/login?next={q}")).into_response();
        }
        return unauthorized(
            "authentication required: send `Authorization: Bearer TOKEN` with the token from the file named by `[web] token_file`",
        );
    };
    let mut req = req;
    if req.method() != Method::GET
        && req.method() != Method::HEAD
        && let Authed::Session { csrf, .. } = &authed
    {
        let (parts, body) = req.into_parts();
        let Ok(bytes) = axum::body::to_bytes(body, MAX_FORM).await else {
            return (StatusCode::PAYLOAD_TOO_LARGE, "form too large").into_response();
        };
        let given = parts
            .headers
            .get("x-csrf-token")
            .and_then(|v| v.to_str().ok())
            .or_else(|| form_field(&bytes, "csrf"))
            .unwrap_or("");
        if !ct_eq(given.as_bytes(), csrf.as_bytes()) {
            return super::respond::error_page(
                StatusCode::FORBIDDEN,
                "missing or wrong CSRF token: reload the page and try again",
            );
        }
        req = Request::from_parts(parts, Body::from(bytes));
    }
    req.extensions_mut().insert(authed);
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_scheme_is_case_insensitive_and_needs_a_token() {
        let h = |v: &str| {
            let mut m = HeaderMap::new();
            if let Ok(v) = v.parse() {
                m.insert(header::AUTHORIZATION, v);
            }
            m
        };
        for (v, want) in [
            ("Bearer abc", Some("abc")),
            ("bearer abc", Some("abc")),
            ("BEARER  abc ", Some("abc")),
            ("Basic abc", None),
            ("Bearer", None),
            ("Bearerabc", None),
        ] {
            assert_eq!(bearer(&h(v)), want, "{v:?}");
        }
    }

    #[test]
    fn penalties_grow_and_stop_at_eight_seconds() {
        let ms: Vec<u128> = (1..=8).map(|n| penalty(n).as_millis()).collect();
        assert_eq!(ms, [250, 500, 1000, 2000, 4000, 8000, 8000, 8000]);
    }
}
