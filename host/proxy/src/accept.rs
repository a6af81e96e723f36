//! Accepting connections without spinning. An accept error (most often out
//! of file descriptors, `EMFILE`) usually persists for a while, and retrying
//! at once would burn the proxy's one core and flood its log; so each
//! listener backs off, doubling the pause up to a limit, and logs the errors
//! at most once per interval with a count of those it left out.

use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpStream};

const FIRST_PAUSE: Duration = Duration::from_millis(5);
const LAST_PAUSE: Duration = Duration::from_secs(1);
const LOG_INTERVAL: Duration = Duration::from_secs(10);

/// The next connection on `listener`; errors are logged and waited out.
pub async fn accept(
    listener: &TcpListener,
    name: &'static str,
    backoff: &mut Backoff,
) -> (TcpStream, SocketAddr) {
    accept_with(|| listener.accept(), name, backoff).await
}

async fn accept_with<T, F, Fut>(mut accept: F, name: &'static str, backoff: &mut Backoff) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = std::io::Result<T>>,
{
    loop {
        match accept().await {
            Ok(accepted) => {
                backoff.succeeded();
                return accepted;
            }
            Err(error) => {
                let failed = backoff.failed(Instant::now());
                if let Some(left_out) = failed.log {
                    tracing::warn!(
                        listener = name,
                        %error,
                        pause = ?failed.pause,
                        errors_not_logged = left_out,
                        "accept failed; pausing this listener"
                    );
                }
                tokio::time::sleep(failed.pause).await;
            }
        }
    }
}

/// One listener's accept errors: how long to pause, and when to log.
#[derive(Debug, Default)]
pub struct Backoff {
    /// Errors since the last accepted connection.
    failures: u32,
    last_logged: Option<Instant>,
    /// Errors since the last one logged.
    not_logged: u64,
}

/// What to do about one accept error.
#[derive(Debug, PartialEq, Eq)]
pub struct Failed {
    pub pause: Duration,
    /// `Some(n)` when this error should be logged; `n` were left out since
    /// the last one that was.
    pub log: Option<u64>,
}

impl Backoff {
    pub fn failed(&mut self, now: Instant) -> Failed {
        let pause = FIRST_PAUSE
            .saturating_mul(1 << self.failures.min(16))
            .min(LAST_PAUSE);
        self.failures = self.failures.saturating_add(1);
        let due = self
            .last_logged
            .is_none_or(|last| now.saturating_duration_since(last) >= LOG_INTERVAL);
        let log = if due {
            self.last_logged = Some(now);
            Some(std::mem::take(&mut self.not_logged))
        } else {
            self.not_logged += 1;
            None
        };
        Failed { pause, log }
    }

    /// A connection was accepted: the next error pauses briefly again. The
    /// log interval is kept, so errors that alternate with successes are
    /// still logged at most once per interval.
    pub fn succeeded(&mut self) {
        self.failures = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_double_up_to_a_limit_and_reset_after_a_success() {
        let (mut backoff, now) = (Backoff::default(), Instant::now());
        let pauses: Vec<u64> = (0..10)
            .map(|_| backoff.failed(now).pause.as_millis() as u64)
            .collect();
        assert_eq!(pauses, [5, 10, 20, 40, 80, 160, 320, 640, 1000, 1000]);
        for _ in 0..100 {
            assert_eq!(backoff.failed(now).pause, LAST_PAUSE);
        }
        backoff.succeeded();
        assert_eq!(backoff.failed(now).pause, FIRST_PAUSE);
    }

    #[test]
    fn errors_are_logged_once_per_interval_with_a_count_of_the_rest() {
        let (mut backoff, start) = (Backoff::default(), Instant::now());
        assert_eq!(backoff.failed(start).log, Some(0), "the first is logged");
        for i in 1..=3 {
            let now = start + LOG_INTERVAL / 4 * i;
            assert_eq!(backoff.failed(now).log, None, "within the interval");
        }
        backoff.succeeded();
        assert_eq!(backoff.failed(start + LOG_INTERVAL / 2).log, None);
        let next = backoff.failed(start + LOG_INTERVAL);
        assert_eq!(
            next.log,
            Some(4),
            "logged again, counting the four left out"
        );
        assert_eq!(backoff.failed(start + LOG_INTERVAL).log, None);
    }

    #[tokio::test]
    async fn the_loop_pauses_between_errors_and_returns_the_next_connection() {
        let mut results = vec![
            Ok("connection"),
            Err(std::io::Error::from_raw_os_error(24)), // EMFILE
            Err(std::io::Error::from_raw_os_error(24)),
            Err(std::io::Error::from_raw_os_error(24)),
        ];
        let mut attempts = 0;
        let mut backoff = Backoff::default();
        let started = tokio::time::Instant::now();
        let accepted = accept_with(
            || {
                attempts += 1;
                std::future::ready(results.pop().expect("no more attempts than results"))
            },
            "test",
            &mut backoff,
        )
        .await;
        assert_eq!(accepted, "connection");
        assert_eq!(attempts, 4);
        // Paused 5 + 10 + 20 ms at least: a spinning loop would not have.
        let paused = started.elapsed();
        assert!(paused >= Duration::from_millis(35), "{paused:?}");
        assert_eq!(backoff.failed(Instant::now()).pause, FIRST_PAUSE);
    }
}
