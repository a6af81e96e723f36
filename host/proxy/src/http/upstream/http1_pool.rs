//! Pooled HTTP/1 upstream connections. A downstream connection holds an
//! upstream connection only while one of its requests is in flight: when
//! the response body has been read to its end the connection goes back to
//! the pool of its endpoint, so thousands of idle kept-alive clients hold
//! no upstream connection (nor its buffers, task and socket). The next
//! request, on any downstream connection, takes the most recently parked
//! one: under sequential load the same connection serves again.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::{Response, StatusCode};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;

use crate::{BoxBody, lock};

/// How long a parked connection may wait for a request to take it.
const IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// Parked connections kept per endpoint; parking past it closes the one
/// parked longest.
const MAX_IDLE_PER_ENDPOINT: usize = 64;
/// How often every endpoint's parked connections are checked, so an
/// endpoint no longer used does not keep its connections.
const SWEEP_EVERY: Duration = Duration::from_secs(10);

/// A downstream connection's HTTP/1 upstream connection while a request is
/// in flight on it. Dropped with the downstream connection before its
/// response ended, the upstream connection is closed, not pooled.
pub struct HeldHttp1 {
    held: Mutex<Option<(SocketAddr, SendRequest<BoxBody>)>>,
    idle: Arc<IdleHttp1>,
}

impl HeldHttp1 {
    pub(super) fn new(idle: Arc<IdleHttp1>) -> Self {
        Self {
            held: Mutex::new(None),
            idle,
        }
    }

    /// The connection this downstream connection still holds, when it is to
    /// `addr` and open (see [`release`](Self::release)).
    pub(super) fn take(&self, addr: SocketAddr) -> Option<SendRequest<BoxBody>> {
        match lock(&self.held).take() {
            Some((held_addr, sender)) if held_addr == addr && !sender.is_closed() => Some(sender),
            _ => None,
        }
    }

    /// Holds `sender`, which answered `rsp`, until the response body ends
    /// ([`release`](Self::release)). A connection switched to another
    /// protocol is not HTTP any more: it is not kept.
    pub(super) fn put(
        &self,
        addr: SocketAddr,
        sender: SendRequest<BoxBody>,
        rsp: &Response<Incoming>,
    ) {
        if rsp.status() == StatusCode::SWITCHING_PROTOCOLS {
            return;
        }
        // One still held here was not taken for this request (closed, to
        // another endpoint, or its response never ended): dropped.
        *lock(&self.held) = Some((addr, sender));
    }

    /// Parks the held connection: its response has been read to the end,
    /// so it is ready for the next request, from any downstream connection.
    /// One not ready yet is still sending its request body (the upstream
    /// answered early): this downstream connection keeps it rather than
    /// have another client's request wait behind that body.
    pub fn release(&self) {
        let mut held = lock(&self.held);
        if held.as_ref().is_some_and(|(_, sender)| sender.is_ready())
            && let Some((addr, sender)) = held.take()
        {
            drop(held);
            self.idle.park(addr, sender);
        }
    }
}

/// HTTP/1 upstream connections no request is using.
#[derive(Default)]
pub(super) struct IdleHttp1 {
    pool: Mutex<Pool>,
}

#[derive(Default)]
struct Pool {
    /// Oldest first.
    by_endpoint: HashMap<SocketAddr, VecDeque<Parked>>,
    swept: Option<Instant>,
}

/// A parked connection and when it was parked.
type Parked = (SendRequest<BoxBody>, Instant);

/// Whether a parked connection is still open and has not waited too long.
fn usable((sender, since): &Parked, now: Instant) -> bool {
    !sender.is_closed() && now.saturating_duration_since(*since) < IDLE_TIMEOUT
}

impl IdleHttp1 {
    /// The most recently parked connection to `addr` still open.
    pub(super) fn take(&self, addr: SocketAddr) -> Option<SendRequest<BoxBody>> {
        let mut pool = lock(&self.pool);
        let parked = pool.by_endpoint.get_mut(&addr)?;
        while let Some((sender, _)) = parked.pop_back() {
            if !sender.is_closed() {
                return Some(sender);
            }
        }
        None
    }

    /// Keeps `sender`, whose response has ended, for a later request if it
    /// is open. Parking also drops connections that closed or waited too
    /// long.
    fn park(&self, addr: SocketAddr, sender: SendRequest<BoxBody>) {
        if sender.is_closed() {
            return;
        }
        let now = Instant::now();
        let mut pool = lock(&self.pool);
        if pool
            .swept
            .is_none_or(|swept| now.saturating_duration_since(swept) >= SWEEP_EVERY)
        {
            pool.swept = Some(now);
            pool.by_endpoint.retain(|_, parked| {
                parked.retain(|p| usable(p, now));
                !parked.is_empty()
            });
        }
        let parked = pool.by_endpoint.entry(addr).or_default();
        while parked.front().is_some_and(|p| !usable(p, now)) {
            parked.pop_front();
        }
        if parked.len() >= MAX_IDLE_PER_ENDPOINT {
            parked.pop_front();
        }
        parked.push_back((sender, now));
    }
}
