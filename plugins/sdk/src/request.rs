//! The request a hook sees. Every crossing into the proxy costs more than
//! most plugins' own work, and every string it hands back is an allocation
//! inside the plugin, so the facts plugins read most (direction, method,
//! authority, path, client address, local port, peer identity, TLS,
//! backend, attempt) arrive together, on the first read of any of them, in
//! one call returning one string; the rest (headers, destination labels)
//! cross when asked for. `attempt` and `replayable`, which a retry policy
//! often reads alone, cross alone until the facts are fetched.

use std::cell::{Cell, OnceCell};

use crate::bindings::weft::plugin::types::{self as wit, Direction, Method};

/// An HTTP request in flight, for the length of one hook call. In
/// `on_response` and `on_complete` it is what was sent upstream (after the
/// request hooks' edits).
pub struct Request<'a> {
    handle: &'a wit::Request,
    facts: OnceCell<Facts>,
    /// Set once this hook changed the backend: the facts no longer say it.
    backend_changed: Cell<bool>,
}

/// `request.facts` with its one string cut back into its six.
struct Facts {
    facts: wit::RequestFacts,
    method_name: (usize, usize),
    authority: (usize, usize),
    path: (usize, usize),
    client_addr: (usize, usize),
    peer_identity: (usize, usize),
    backend: (usize, usize),
}

impl Facts {
    fn new(facts: wit::RequestFacts) -> Self {
        let len = facts.text.len();
        let (a, b, c, d, e) = facts.ends;
        // Ends out of order or past the text would be a proxy bug; clamping
        // turns one into empty strings rather than a trap.
        let mut start = 0;
        let mut span = |end: u32| {
            let end = (end as usize).clamp(start, len);
            let span = (start, end);
            start = end;
            span
        };
        let method_name = span(a);
        let authority = span(b);
        let path = span(c);
        let client_addr = span(d);
        let peer_identity = span(e);
        let backend = span(len as u32);
        Facts {
            facts,
            method_name,
            authority,
            path,
            client_addr,
            peer_identity,
            backend,
        }
    }

    fn str(&self, (start, end): (usize, usize)) -> &str {
        // Cut at the proxy's offsets, which fall on character boundaries.
        self.facts.text.get(start..end).unwrap_or_default()
    }

    fn non_empty(&self, span: (usize, usize)) -> Option<&str> {
        Some(self.str(span)).filter(|s| !s.is_empty())
    }
}

impl<'a> Request<'a> {
    /// Wraps the handle a hook was given; nothing crosses yet.
    pub fn new(handle: &'a wit::Request) -> Self {
        Request {
            handle,
            facts: OnceCell::new(),
            backend_changed: Cell::new(false),
        }
    }

    /// The proxy's handle itself, for reading one fact alone without the
    /// others (each of its methods is a crossing).
    pub fn handle(&self) -> &'a wit::Request {
        self.handle
    }

    fn facts(&self) -> &Facts {
        self.facts.get_or_init(|| Facts::new(self.handle.facts()))
    }

    /// Which way the request flows relative to the app.
    pub fn direction(&self) -> Direction {
        self.facts().facts.direction
    }

    /// The method; [`Method::Other`] for extension methods (see
    /// [`Request::method_name`]).
    pub fn method(&self) -> Method {
        self.facts().facts.method
    }

    /// The method as sent, e.g. `GET` or `PROPFIND`.
    pub fn method_name(&self) -> &str {
        let facts = self.facts();
        facts.str(facts.method_name)
    }

    /// Path and query, e.g. `/api/users?page=2`.
    pub fn path(&self) -> &str {
        let facts = self.facts();
        facts.str(facts.path)
    }

    /// The authority from the URI or the `Host` header; `None` when there
    /// is none, or it is empty.
    pub fn authority(&self) -> Option<&str> {
        let facts = self.facts();
        facts.non_empty(facts.authority)
    }

    /// `ip:port` of the client.
    pub fn client_addr(&self) -> &str {
        let facts = self.facts();
        facts.str(facts.client_addr)
    }

    /// The port the client connected to (the original destination's).
    pub fn local_port(&self) -> u16 {
        self.facts().facts.local_port
    }

    /// The client's mesh identity, when it connected over mTLS.
    pub fn peer_identity(&self) -> Option<&str> {
        let facts = self.facts();
        facts.non_empty(facts.peer_identity)
    }

    /// Whether the client connected over TLS.
    pub fn tls(&self) -> bool {
        self.facts().facts.tls
    }

    /// The backend chosen so far, if any (by a plugin or by routing).
    pub fn backend(&self) -> Option<String> {
        if self.backend_changed.get() {
            return self.handle.backend();
        }
        let facts = self.facts();
        facts.non_empty(facts.backend).map(str::to_string)
    }

    /// Which attempt this is: 1 for the first, more after retries. From
    /// the facts once they are here; before, a call of its own, since a
    /// retry policy often reads it alone and a number costs less to cross
    /// than the facts' string.
    pub fn attempt(&self) -> u32 {
        match self.facts.get() {
            Some(facts) => facts.facts.attempt,
            None => self.handle.attempt(),
        }
    }

    /// Whether the proxy could send this request again (see the WIT); as
    /// [`Request::attempt`], a call of its own until the facts are here.
    pub fn replayable(&self) -> bool {
        match self.facts.get() {
            Some(facts) => facts.facts.replayable,
            None => self.handle.replayable(),
        }
    }

    /// The first value of a header (names are case-insensitive).
    pub fn header(&self, name: &str) -> Option<String> {
        self.handle.header(name)
    }

    /// Every header, in one crossing.
    pub fn headers(&self) -> Vec<(String, String)> {
        self.handle.headers()
    }

    /// Linkerd's `dst_*` labels of the service endpoint that answered,
    /// sorted by name; empty before a response and for plain addresses.
    pub fn destination_labels(&self) -> Vec<(String, String)> {
        self.handle.destination_labels()
    }

    /// Replaces a header's values (in `on_request` only).
    pub fn set_header(&self, name: &str, value: &str) {
        self.handle.set_header(name, value);
    }

    /// Removes a header (in `on_request` only).
    pub fn remove_header(&self, name: &str) {
        self.handle.remove_header(name);
    }

    /// Fail with 504 when the response headers take longer than this.
    pub fn set_timeout_ms(&self, ms: u32) {
        self.handle.set_timeout_ms(ms);
    }

    /// Sends the request to this backend (`host:port`) instead of the one
    /// its authority names.
    pub fn set_backend(&self, backend: &str) {
        self.handle.set_backend(backend);
        self.backend_changed.set(true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(text: &str, ends: (u32, u32, u32, u32, u32)) -> Facts {
        Facts::new(wit::RequestFacts {
            direction: Direction::Inbound,
            method: Method::Get,
            tls: false,
            local_port: 8080,
            attempt: 1,
            replayable: false,
            text: text.to_string(),
            ends,
        })
    }

    #[test]
    fn the_one_string_is_cut_back_into_six() {
        let text = "GETapp.example/a?b=110.0.0.7:41000spiffe://idback:80";
        let facts = facts(text, (3, 14, 20, 34, 45));
        assert_eq!(facts.str(facts.method_name), "GET");
        assert_eq!(facts.non_empty(facts.authority), Some("app.example"));
        assert_eq!(facts.str(facts.path), "/a?b=1");
        assert_eq!(facts.str(facts.client_addr), "10.0.0.7:41000");
        assert_eq!(facts.non_empty(facts.peer_identity), Some("spiffe://id"));
        assert_eq!(facts.non_empty(facts.backend), Some("back:80"));
    }

    #[test]
    fn empty_parts_read_as_absent() {
        let facts = facts("GET/10.0.0.7:1", (3, 3, 4, 14, 14));
        assert_eq!(facts.non_empty(facts.authority), None);
        assert_eq!(facts.str(facts.path), "/");
        assert_eq!(facts.non_empty(facts.peer_identity), None);
        assert_eq!(facts.non_empty(facts.backend), None);
    }

    #[test]
    fn bad_offsets_give_empty_strings_not_a_trap() {
        let facts = facts("GET/", (9, 2, 400, 1, 0));
        assert_eq!(facts.str(facts.method_name), "GET/");
        assert_eq!(facts.str(facts.path), "");
        assert_eq!(facts.non_empty(facts.backend), None);
    }
}
