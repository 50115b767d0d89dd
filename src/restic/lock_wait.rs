//! Waiting out another restic's repository lock. restic 0.14 has no
//! `--retry-lock`, so a run and a verify both retry a locked operation
//! here, with the same back-off and the same give-up message.

use std::future::Future;
use std::time::{Duration, Instant};

use super::ErrorClass;
use crate::model::Failure;
use crate::process::Shutdown;

/// Runs `op`; while it fails because the repository is locked, calls
/// `before_retry` with the coming delay (the caller removes stale locks
/// there and says that it waits), then retries after 0.2 s, 5 s, 10 s …
/// (at most 60 s).
///
/// It gives up when `lock_wait` (`lock_wait_seconds`) has passed, or the
/// time `budget` returns (read on every round, e.g. what is left of the
/// service's timeout) is used up, with the lock error and how long it
/// waited; on shutdown it returns the lock error at once. Any other result
/// of `op` is returned as it is.
pub async fn retry_while_locked<T, Op, OpFut, Retry, RetryFut>(
    lock_wait: Duration,
    budget: impl Fn() -> Duration,
    shutdown: &Shutdown,
    mut op: Op,
    mut before_retry: Retry,
) -> Result<T, Failure>
where
    Op: FnMut() -> OpFut,
    OpFut: Future<Output = Result<T, Failure>>,
    Retry: FnMut(Duration) -> RetryFut,
    RetryFut: Future<Output = ()>,
{
    let started = Instant::now();
    let mut attempt: u32 = 0;
    loop {
        match op().await {
            Err(mut e) if e.class == ErrorClass::Locked => {
                let waited = started.elapsed();
                let left = lock_wait.min(budget()).saturating_sub(waited);
                if left.is_zero() {
                    e.message = format!(
                        "{} (gave up after waiting {}s; `lock_wait_seconds` is {})",
                        e.message,
                        waited.as_secs(),
                        lock_wait.as_secs()
                    );
                    return Err(e);
                }
                let delay = if attempt == 0 {
                    Duration::from_millis(200)
                } else {
                    Duration::from_secs(5u64 << (attempt - 1).min(4)).min(Duration::from_secs(60))
                }
                .min(left);
                attempt += 1;
                before_retry(delay).await;
                let mut sd = shutdown.clone();
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    () = sd.wait() => return Err(e),
                }
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::{Cell, RefCell};

    use super::*;

    /// An operation that fails as locked `locked` times, then succeeds,
    /// and the delays it was retried after.
    async fn retried(
        locked: u32,
        lock_wait: Duration,
    ) -> (Result<u32, Failure>, u32, Vec<Duration>) {
        let calls = Cell::new(0);
        let delays = RefCell::new(Vec::new());
        let res = retry_while_locked(
            lock_wait,
            || Duration::MAX,
            &Shutdown::never(),
            || {
                calls.set(calls.get() + 1);
                let n = calls.get();
                async move {
                    if n <= locked {
                        Err(Failure::new(ErrorClass::Locked, "repository is locked"))
                    } else {
                        Ok(n)
                    }
                }
            },
            |d| {
                delays.borrow_mut().push(d);
                async {}
            },
        )
        .await;
        (res, calls.get(), delays.into_inner())
    }

    #[tokio::test]
    async fn a_lock_that_goes_away_is_waited_out() {
        let (res, calls, delays) = retried(2, Duration::from_secs(2)).await;
        assert_eq!(res.ok(), Some(3));
        assert_eq!(calls, 3);
        assert_eq!(delays.len(), 2);
        assert_eq!(delays[0], Duration::from_millis(200));
        // The second wait (5 s) is cut to what is left of the 2 s.
        assert!(delays[1] < Duration::from_secs(2), "{delays:?}");
    }

    #[tokio::test]
    async fn a_lock_that_stays_gives_up_with_how_long_it_waited() {
        let (res, calls, delays) = retried(u32::MAX, Duration::ZERO).await;
        let e = res.expect_err("should give up");
        assert_eq!(e.class, ErrorClass::Locked);
        assert_eq!(
            e.message,
            "repository is locked (gave up after waiting 0s; `lock_wait_seconds` is 0)"
        );
        assert_eq!((calls, delays.len()), (1, 0));
    }

    #[tokio::test]
    async fn other_results_are_returned_at_once() {
        let calls = Cell::new(0);
        let res: Result<(), Failure> = retry_while_locked(
            Duration::from_secs(60),
            || Duration::MAX,
            &Shutdown::never(),
            || {
                calls.set(calls.get() + 1);
                async { Err(Failure::new(ErrorClass::Unreachable, "no route")) }
            },
            |_| async { panic!("no retry for an unreachable repository") },
        )
        .await;
        assert_eq!(
            res.map_err(|e| e.class).err(),
            Some(ErrorClass::Unreachable)
        );
        assert_eq!(calls.get(), 1);
    }

    #[tokio::test]
    async fn shutdown_ends_the_wait_with_the_lock_error() {
        let (trigger, shutdown) = Shutdown::new();
        trigger.fire(2);
        let res: Result<(), Failure> = retry_while_locked(
            Duration::from_secs(3600),
            || Duration::MAX,
            &shutdown,
            || async { Err(Failure::new(ErrorClass::Locked, "repository is locked")) },
            |_| async {},
        )
        .await;
        let e = res.expect_err("should stop");
        assert_eq!(e.message, "repository is locked");
    }
}
