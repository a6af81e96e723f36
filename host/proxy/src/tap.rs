//! Tap (`weft tap`, `weft top`): the events of live requests, streamed to
//! the controller while it asks for them.
//!
//! With no tap open, a request costs one atomic load here and nothing is
//! recorded. With taps open, each request a tap's match admits (and its
//! rate cap and limit allow) gets a `Recording`, which sends the request's
//! head, its response's start and its end into that tap's bounded channel.
//! A tap that reads too slowly loses events (counted in `dropped`); it never
//! holds a request up.
//!
//! - `recording`: one request's events, and the body that reports its end;
//! - `server`: the mTLS listener, open only to the controller's identity.

mod recording;
mod server;

use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use http::Request;
use tokio::sync::mpsc;
use weft_api::tap::{Match, ObserveRequest, TapEvent};

pub use recording::Recording;
pub use server::serve;

use crate::http::ConnectionInfo;
use crate::lock;

/// Requests per second a tap observes unless it asks otherwise (Linkerd's).
pub const DEFAULT_MAX_RPS: u32 = 100;

/// Events a tap's channel holds before a slow reader loses them.
const EVENTS_BUFFERED: usize = 1024;

/// The plugin that answered a request itself, in the response's extensions.
#[derive(Clone, Debug)]
pub struct AnsweredBy(pub String);

/// The taps open on this proxy.
#[derive(Default)]
pub struct Taps {
    /// How many are open: all a request reads when it is zero.
    open: AtomicUsize,
    subscriptions: Mutex<Vec<Arc<Subscription>>>,
    next_id: AtomicU64,
}

impl Taps {
    /// A recording of `req` for every open tap that wants it; `None`, after
    /// a single atomic load, when no tap is open.
    #[inline]
    pub fn observe<B>(&self, req: &Request<B>, conn: &ConnectionInfo) -> Option<Recording> {
        if self.open.load(Ordering::Relaxed) == 0 {
            return None;
        }
        self.observe_open(req, conn)
    }

    fn observe_open<B>(&self, req: &Request<B>, conn: &ConnectionInfo) -> Option<Recording> {
        let authority = request_authority(req);
        let taking: Vec<Arc<Subscription>> = {
            let mut subscriptions = lock(&self.subscriptions);
            let taking = subscriptions
                .iter()
                .filter(|tap| tap.admits(req, authority) && tap.take())
                .cloned()
                .collect();
            // A tap whose limit is reached closes once its last request ends.
            subscriptions.retain(|tap| !tap.exhausted());
            self.open.store(subscriptions.len(), Ordering::Relaxed);
            taking
        };
        if taking.is_empty() {
            return None;
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        Some(Recording::start(id, req, authority, conn, taking))
    }

    /// Opens a tap: its events until the returned stream is dropped, or its
    /// limit is reached and its last request has ended.
    fn subscribe(self: &Arc<Self>, request: ObserveRequest) -> (OpenTap, mpsc::Receiver<TapEvent>) {
        let (tx, rx) = mpsc::channel(EVENTS_BUFFERED);
        let max_rps = match request.max_rps {
            0 => DEFAULT_MAX_RPS,
            n => n,
        };
        let subscription = Arc::new(Subscription {
            filter: request.r#match.unwrap_or_default(),
            tx,
            max_rps,
            window: Mutex::new((Instant::now(), 0)),
            remaining: (request.limit > 0).then(|| AtomicU32::new(request.limit)),
            dropped: AtomicU64::new(0),
        });
        let mut subscriptions = lock(&self.subscriptions);
        subscriptions.push(subscription.clone());
        self.open.store(subscriptions.len(), Ordering::Relaxed);
        let open = OpenTap {
            taps: Arc::downgrade(self),
            subscription: Arc::downgrade(&subscription),
        };
        (open, rx)
    }

    fn close(&self, subscription: &Weak<Subscription>) {
        let mut subscriptions = lock(&self.subscriptions);
        subscriptions.retain(|tap| !std::ptr::eq(Arc::as_ptr(tap), subscription.as_ptr()));
        self.open.store(subscriptions.len(), Ordering::Relaxed);
    }

    #[cfg(test)]
    fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }
}

/// Closes its tap when the stream that reads it is dropped (the client
/// went away).
pub struct OpenTap {
    taps: Weak<Taps>,
    subscription: Weak<Subscription>,
}

impl Drop for OpenTap {
    fn drop(&mut self) {
        if let Some(taps) = self.taps.upgrade() {
            taps.close(&self.subscription);
        }
    }
}

/// One open tap: what it matches, where its events go, and how many it may
/// still take.
pub struct Subscription {
    filter: Match,
    tx: mpsc::Sender<TapEvent>,
    max_rps: u32,
    /// The current one-second window and the requests taken in it.
    window: Mutex<(Instant, u32)>,
    /// `None` without a limit.
    remaining: Option<AtomicU32>,
    dropped: AtomicU64,
}

impl Subscription {
    /// Whether the request's head matches (the status is matched later).
    fn admits<B>(&self, req: &Request<B>, authority: Option<&str>) -> bool {
        let filter = &self.filter;
        (filter.method.is_empty() || req.method().as_str().eq_ignore_ascii_case(&filter.method))
            && (filter.authority.is_empty()
                || authority.is_some_and(|a| a.eq_ignore_ascii_case(&filter.authority)))
            && req.uri().path().starts_with(&filter.path_prefix)
    }

    /// Counts the request against the rate cap, and against the limit
    /// unless the status decides (then `count` does, once it is known).
    fn take(&self) -> bool {
        {
            let mut window = lock(&self.window);
            let now = Instant::now();
            if now.duration_since(window.0) >= Duration::from_secs(1) {
                *window = (now, 0);
            }
            if window.1 >= self.max_rps {
                return false;
            }
            window.1 += 1;
        }
        self.filters_status() || self.count()
    }

    /// Counts a request against the limit; false once it is reached.
    fn count(&self) -> bool {
        match &self.remaining {
            None => true,
            Some(remaining) => remaining
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                .is_ok(),
        }
    }

    fn exhausted(&self) -> bool {
        self.tx.is_closed()
            || self
                .remaining
                .as_ref()
                .is_some_and(|r| r.load(Ordering::Relaxed) == 0)
    }

    /// Whether a response's status is one this tap wants (and, when the
    /// status decides, the limit allows).
    fn wants_status(&self, status: u16) -> bool {
        let status = u32::from(status);
        let wanted = (self.filter.status_min == 0 || status >= self.filter.status_min)
            && (self.filter.status_max == 0 || status <= self.filter.status_max);
        wanted && (!self.filters_status() || self.count())
    }

    /// Matches on the status: its request's events wait for the response.
    fn filters_status(&self) -> bool {
        self.filter.status_min != 0 || self.filter.status_max != 0
    }

    /// Never waits: a full channel loses the event, and counts it.
    fn send(&self, mut event: TapEvent) {
        event.dropped = self.dropped.load(Ordering::Relaxed);
        if self.tx.try_send(event).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The URI's authority (HTTP/2, absolute-form HTTP/1), else the Host header.
fn request_authority<B>(req: &Request<B>) -> Option<&str> {
    req.uri()
        .authority()
        .map(|a| a.as_str())
        .or_else(|| req.headers().get(http::header::HOST)?.to_str().ok())
}

#[cfg(test)]
mod tests;
