//! When an HTTP/2 connection has nothing in flight. A connection that never
//! completes a request (a client that sends the preface and then nothing,
//! or trickles a header block) or sits idle forever would otherwise hold
//! its socket and buffers for as long as the client likes; hyper's server
//! has no such limit for HTTP/2.

use std::time::Duration;

use tokio::sync::watch;

/// Requests in flight on one connection, and whether any has come yet.
#[derive(Clone)]
pub struct ConnectionActivity {
    state: watch::Sender<Activity>,
}

#[derive(Clone, Copy, Default)]
struct Activity {
    in_flight: usize,
    seen_a_request: bool,
}

/// One request's place on its connection; the connection is busy while one
/// is held.
pub struct Active {
    state: watch::Sender<Activity>,
}

impl Default for ConnectionActivity {
    fn default() -> Self {
        Self {
            state: watch::Sender::new(Activity::default()),
        }
    }
}

impl ConnectionActivity {
    pub fn enter(&self) -> Active {
        self.state.send_modify(|a| {
            a.in_flight += 1;
            a.seen_a_request = true;
        });
        Active {
            state: self.state.clone(),
        }
    }

    /// Resolves once the connection has had nothing in flight for `first`
    /// (before any request came) or `later` (after one did); `None` never
    /// ends that stretch.
    pub async fn idle(&self, first: Option<Duration>, later: Option<Duration>) {
        let mut changes = self.state.subscribe();
        loop {
            let now = *changes.borrow_and_update();
            let limit = if now.seen_a_request { later } else { first };
            match limit {
                Some(limit) if now.in_flight == 0 => {
                    tokio::select! {
                        _ = tokio::time::sleep(limit) => return,
                        _ = changes.changed() => {}
                    }
                }
                _ => {
                    if changes.changed().await.is_err() {
                        // Unreachable while `self` holds the sender.
                        std::future::pending::<()>().await;
                    }
                }
            }
        }
    }
}

impl Drop for Active {
    fn drop(&mut self) {
        self.state.send_modify(|a| a.in_flight -= 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn idle_counts_from_the_last_request_to_end() {
        let activity = ConnectionActivity::default();
        let (first, later) = (Duration::from_secs(1), Duration::from_secs(60));
        let started = tokio::time::Instant::now();
        activity.idle(Some(first), Some(later)).await;
        assert_eq!(started.elapsed(), first, "no request: the first limit");

        let active = activity.enter();
        let idle = activity.idle(Some(first), Some(later));
        tokio::pin!(idle);
        assert!(
            tokio::time::timeout(Duration::from_secs(3600), idle.as_mut())
                .await
                .is_err(),
            "never idle while a request is in flight"
        );
        drop(active);
        let ended = tokio::time::Instant::now();
        idle.await;
        assert_eq!(ended.elapsed(), later, "after a request: the later limit");
    }
}
