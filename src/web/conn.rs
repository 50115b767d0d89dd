//! Accepting connections so that hostile clients cannot starve the real
//! user: a header-read timeout (hyper closes a connection that has not sent
//! a whole request head in time, also between keep-alive requests, which
//! makes it the idle timeout too), a cap on open connections derived from
//! the open-file limit, and, at the cap, the oldest connection that never
//! sent a complete request is closed to make room. 1100 half-sent request
//! lines used to exhaust the 1024 file descriptors and freeze `serve`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, oneshot};
use tower::ServiceExt;

use crate::process::Shutdown;

/// A client must send a whole request head within this time, on a new
/// connection and between the requests of a kept-alive one.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Most connections served at once, whatever the open-file limit.
const MAX_CONNECTIONS: usize = 4096;
/// File descriptors kept free for everything else (restic's pipes, the
/// history database, log files).
const RESERVED_FDS: u64 = 256;
/// How long running requests may take to finish after a stop signal.
const DRAIN: Duration = Duration::from_secs(30);

/// Raises the soft open-file limit to the hard one (the usual soft limit
/// is 1024) and returns the connection cap that fits under it.
pub fn raise_fd_limit() -> (usize, Option<(u64, u64)>) {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return (1024 - usize::try_from(RESERVED_FDS).unwrap_or(256), None);
    };
    let now = if soft < hard && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
        hard
    } else {
        soft
    };
    let room = now.saturating_sub(RESERVED_FDS).max(16);
    let cap = usize::try_from(room).unwrap_or(MAX_CONNECTIONS);
    (cap.min(MAX_CONNECTIONS), Some((soft, now)))
}

struct Open {
    /// Set once the connection delivered a whole request head.
    served: Arc<AtomicBool>,
    close: Option<oneshot::Sender<()>>,
}

/// The open connections, oldest first.
#[derive(Default)]
struct Registry {
    next: u64,
    open: BTreeMap<u64, Open>,
}

impl Registry {
    /// Closes the oldest connection that has not sent a request yet.
    fn evict_one(&mut self) -> bool {
        let victim = self
            .open
            .iter_mut()
            .find(|(_, o)| !o.served.load(Ordering::Relaxed) && o.close.is_some());
        match victim {
            Some((_, o)) => {
                if let Some(tx) = o.close.take() {
                    let _ = tx.send(());
                }
                true
            }
            None => false,
        }
    }
}

fn registry(r: &Mutex<Registry>) -> std::sync::MutexGuard<'_, Registry> {
    r.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Serves `app` on `listener` until `shutdown` fires, then lets running
/// requests finish (at most [`DRAIN`]).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    cap: usize,
    shutdown: Shutdown,
) -> std::io::Result<()> {
    let permits = Arc::new(Semaphore::new(cap));
    let reg = Arc::new(Mutex::new(Registry::default()));
    let mut stop = shutdown.clone();
    loop {
        let (stream, peer) = tokio::select! {
            () = stop.wait() => break,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // Out of file descriptors or a connection reset before
                    // it was accepted: wait a little, never spin or exit.
                    crate::logging::notice(format!(
                        "restic-manager: accepting a connection failed: {e}"
                    ));
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let permit = match permits.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                // Full: make room by closing the oldest connection that never
                // sent a request; when every one is busy, wait for one to end.
                registry(&reg).evict_one();
                tokio::select! {
                    () = stop.wait() => break,
                    p = permits.clone().acquire_owned() => match p {
                        Ok(p) => p,
                        Err(_) => break,
                    },
                }
            }
        };
        let served = Arc::new(AtomicBool::new(false));
        let (close_tx, close_rx) = oneshot::channel();
        let id = {
            let mut r = registry(&reg);
            let id = r.next;
            r.next += 1;
            r.open.insert(
                id,
                Open {
                    served: served.clone(),
                    close: Some(close_tx),
                },
            );
            id
        };
        let app = app.clone();
        let reg = reg.clone();
        let mut stop = shutdown.clone();
        tokio::spawn(async move {
            let svc =
                hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    served.store(true, Ordering::Relaxed);
                    let mut req = req.map(axum::body::Body::new);
                    req.extensions_mut().insert(ConnectInfo(peer));
                    app.clone().oneshot(req)
                });
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT);
            let conn = builder.serve_connection(TokioIo::new(stream), svc);
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = close_rx => {}
                () = stop.wait() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(DRAIN, conn.as_mut()).await;
                }
            }
            registry(&reg).open.remove(&id);
            drop(permit);
        });
    }
    // Running requests finish (a download, a page being rendered).
    let all = u32::try_from(cap).unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(DRAIN + Duration::from_secs(1), permits.acquire_many(all)).await;
    Ok(())
}
