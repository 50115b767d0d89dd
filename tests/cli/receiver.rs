//! A local HTTP receiver for notifications (webhook, discord, ntfy,
//! healthchecks): records every request and answers as each test scripts
//! it. Used by the `notify` and `web` tests.

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

/// One request as the receiver saw it.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    /// Lower-case names.
    pub headers: HashMap<String, String>,
    pub body: String,
    /// When it arrived.
    pub at: Instant,
}

impl Request {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("body of {} is not JSON ({e}): {}", self.path, self.body))
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).map_or("", String::as_str)
    }
}

/// How the receiver answers one request.
#[derive(Debug, Clone)]
pub enum Reply {
    Status(u16, &'static str),
    /// Read the request, never answer (until the client gives up).
    Silent,
}

/// A local HTTP receiver: records requests, answers each path from its
/// script (then 200 with an empty body).
pub struct Receiver {
    port: u16,
    requests: Arc<Mutex<Vec<Request>>>,
}

impl Receiver {
    pub fn start(script: &[(&str, Vec<Reply>)]) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let script: HashMap<String, VecDeque<Reply>> = script
            .iter()
            .map(|(p, r)| ((*p).to_string(), r.iter().cloned().collect()))
            .collect();
        let script = Arc::new(Mutex::new(script));
        let recorded = Arc::clone(&requests);
        // Threads end with the test process; a silent reply holds its
        // connection for a while, then drops it.
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let recorded = Arc::clone(&recorded);
                let script = Arc::clone(&script);
                std::thread::spawn(move || serve(stream, &recorded, &script));
            }
        });
        Receiver { port, requests }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn all(&self) -> Vec<Request> {
        self.requests
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The body (JSON) of the one request whose path starts with `prefix`.
    #[track_caller]
    pub fn one(&self, prefix: &str) -> Value {
        let at = self.at(prefix);
        assert_eq!(at.len(), 1, "{:?}", self.all());
        at[0].json()
    }

    /// Requests whose path starts with `prefix`, in arrival order.
    pub fn at(&self, prefix: &str) -> Vec<Request> {
        self.all()
            .into_iter()
            .filter(|r| r.path.starts_with(prefix))
            .collect()
    }

    pub fn clear(&self) {
        self.requests
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
    }
}

fn serve(
    stream: TcpStream,
    recorded: &Mutex<Vec<Request>>,
    script: &Mutex<HashMap<String, VecDeque<Reply>>>,
) {
    let mut reader = BufReader::new(match stream.try_clone() {
        Ok(s) => s,
        Err(_) => return,
    });
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let path = parts.next().unwrap_or("").to_string();
    let mut headers = HashMap::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 {
            return;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let len: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let reply = script
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .get_mut(&path)
        .and_then(VecDeque::pop_front)
        .unwrap_or(Reply::Status(200, ""));
    recorded
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push(Request {
            method,
            path,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
            at: Instant::now(),
        });
    let mut stream = stream;
    match reply {
        Reply::Silent => std::thread::sleep(Duration::from_secs(20)),
        Reply::Status(code, text) => {
            let _ = write!(
                stream,
                "HTTP/1.1 {code} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
                text.len()
            );
        }
    }
}
