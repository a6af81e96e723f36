//! The `request` and `response` handles plugins call. During a hook call the
//! proxy moves the request (or response) head into the plugin's store, so a
//! handle's methods read and edit it in place with no table lookups: the
//! store holds at most one of each, and the handle is that slot.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::header::{HeaderName, HeaderValue};
use wasmtime::component::Resource;

use crate::bindings::weft::plugin::types::{
    Direction, HostRequest, HostResponse, Method, RequestFacts,
};
use crate::host::State;

/// The type behind a `request` handle (the head lives in the store).
pub struct RequestSlot;
/// The type behind a `response` handle.
pub struct ResponseSlot;

/// A request head and what the proxy knows about it, as plugins see it.
#[derive(Debug)]
pub struct RequestView {
    pub parts: http::request::Parts,
    pub direction: Direction,
    pub client_addr: SocketAddr,
    /// The port the client connected to.
    pub local_port: u16,
    pub peer_identity: Option<String>,
    pub tls: bool,
    /// Set by routing or by a plugin's `set-backend`.
    pub backend: Option<String>,
    /// The `dst_*` labels of the service endpoint that answered.
    pub destination_labels: Arc<[(String, String)]>,
    /// Set by a plugin's `set-timeout-ms`.
    pub timeout: Option<Duration>,
    /// 1 for the first attempt, more after retries.
    pub attempt: u32,
    /// Whether the body is kept and the request can be sent again.
    pub replayable: bool,
}

/// Put in a response's extensions when no upstream answered and the proxy
/// made the response itself: why (the response hooks' `error`).
#[derive(Clone, Debug)]
pub struct UpstreamError(pub String);

impl RequestView {
    /// A copy of the request's head without its extensions: the proxy
    /// sends one upstream (or again, on a retry) and keeps the view.
    pub fn copy_head(&self) -> http::request::Parts {
        let mut parts = http::Request::new(()).into_parts().0;
        parts.method = self.parts.method.clone();
        parts.uri = self.parts.uri.clone();
        parts.version = self.parts.version;
        parts.headers = self.parts.headers.clone();
        parts
    }

    /// A copy for hooks that run after the request went upstream.
    pub fn snapshot(&self) -> Self {
        Self {
            parts: self.copy_head(),
            direction: self.direction,
            client_addr: self.client_addr,
            local_port: self.local_port,
            peer_identity: self.peer_identity.clone(),
            tls: self.tls,
            backend: self.backend.clone(),
            destination_labels: self.destination_labels.clone(),
            timeout: self.timeout,
            attempt: self.attempt,
            replayable: self.replayable,
        }
    }

    fn authority(&self) -> Option<String> {
        match self.parts.uri.authority() {
            Some(authority) => Some(authority.to_string()),
            None => header(&self.parts.headers, http::header::HOST.as_str()),
        }
    }

    /// Everything `request.facts` hands over, its six strings in one.
    fn facts(&self) -> RequestFacts {
        use std::fmt::Write;

        let mut text = String::with_capacity(128);
        let end = |text: &String| u32::try_from(text.len()).unwrap_or(u32::MAX);
        text.push_str(self.parts.method.as_str());
        let method_end = end(&text);
        match self.parts.uri.authority() {
            Some(authority) => text.push_str(authority.as_str()),
            None => {
                if let Some(host) = self.parts.headers.get(http::header::HOST) {
                    text.push_str(&String::from_utf8_lossy(host.as_bytes()));
                }
            }
        }
        let authority_end = end(&text);
        match self.parts.uri.path_and_query() {
            Some(path) => text.push_str(path.as_str()),
            None => text.push('/'),
        }
        let path_end = end(&text);
        let _ = write!(text, "{}", self.client_addr);
        let client_addr_end = end(&text);
        text.push_str(self.peer_identity.as_deref().unwrap_or_default());
        let peer_identity_end = end(&text);
        text.push_str(self.backend.as_deref().unwrap_or_default());
        RequestFacts {
            direction: self.direction,
            method: method(&self.parts.method),
            tls: self.tls,
            local_port: self.local_port,
            attempt: self.attempt,
            replayable: self.replayable,
            text,
            ends: (
                method_end,
                authority_end,
                path_end,
                client_addr_end,
                peer_identity_end,
            ),
        }
    }
}

/// The borrow handle passed to hooks; its rep is unused (one slot).
pub fn borrow<T: 'static>() -> Resource<T> {
    Resource::new_borrow(0)
}

fn header(headers: &http::HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
}

fn set_header(headers: &mut http::HeaderMap, name: &str, value: &str) {
    match (HeaderName::try_from(name), HeaderValue::try_from(value)) {
        (Ok(header), _) if proxy_owned(&header) => {
            tracing::warn!(name, "plugin set a connection or framing header; ignored");
        }
        (Ok(name), Ok(value)) => {
            headers.insert(name, value);
        }
        // A plugin bug, not the client's: ignore the edit and say so.
        _ => tracing::warn!(name, "plugin set an invalid header; ignored"),
    }
}

/// Headers about the connection or the message's framing, which the proxy
/// and its HTTP stack write: a plugin's `content-length` the body does not
/// have, or a `transfer-encoding`, would make the message invalid or leave
/// its receiver waiting. Removing them is harmless and allowed.
fn proxy_owned(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "content-length"
            | "keep-alive"
            | "proxy-connection"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
    )
}

fn method(method: &http::Method) -> Method {
    match *method {
        http::Method::GET => Method::Get,
        http::Method::HEAD => Method::Head,
        http::Method::POST => Method::Post,
        http::Method::PUT => Method::Put,
        http::Method::DELETE => Method::Delete,
        http::Method::CONNECT => Method::Connect,
        http::Method::OPTIONS => Method::Options,
        http::Method::TRACE => Method::Trace,
        http::Method::PATCH => Method::Patch,
        _ => Method::Other,
    }
}

// === impl HostRequest ===

impl State {
    fn req(&self) -> Option<&RequestView> {
        self.request.as_ref()
    }
}

impl HostRequest for State {
    fn direction(&mut self, _: Resource<RequestSlot>) -> Direction {
        self.req().map_or(Direction::Inbound, |r| r.direction)
    }

    fn method(&mut self, _: Resource<RequestSlot>) -> Method {
        self.req()
            .map_or(Method::Other, |r| method(&r.parts.method))
    }

    fn method_name(&mut self, _: Resource<RequestSlot>) -> String {
        self.req()
            .map(|r| r.parts.method.to_string())
            .unwrap_or_default()
    }

    fn path(&mut self, _: Resource<RequestSlot>) -> String {
        self.req()
            .and_then(|r| r.parts.uri.path_and_query())
            .map_or_else(|| "/".to_string(), |p| p.to_string())
    }

    fn authority(&mut self, _: Resource<RequestSlot>) -> Option<String> {
        self.req().and_then(RequestView::authority)
    }

    fn header(&mut self, _: Resource<RequestSlot>, name: String) -> Option<String> {
        self.req().and_then(|r| header(&r.parts.headers, &name))
    }

    fn headers(&mut self, _: Resource<RequestSlot>) -> Vec<(String, String)> {
        self.req().map_or_else(Vec::new, |r| {
            r.parts
                .headers
                .iter()
                .map(|(k, v)| {
                    (
                        k.to_string(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect()
        })
    }

    fn client_addr(&mut self, _: Resource<RequestSlot>) -> String {
        self.req()
            .map(|r| r.client_addr.to_string())
            .unwrap_or_default()
    }

    fn local_port(&mut self, _: Resource<RequestSlot>) -> u16 {
        self.req().map_or(0, |r| r.local_port)
    }

    fn attempt(&mut self, _: Resource<RequestSlot>) -> u32 {
        self.req().map_or(1, |r| r.attempt)
    }

    fn replayable(&mut self, _: Resource<RequestSlot>) -> bool {
        self.req().is_some_and(|r| r.replayable)
    }

    fn peer_identity(&mut self, _: Resource<RequestSlot>) -> Option<String> {
        self.req().and_then(|r| r.peer_identity.clone())
    }

    fn tls(&mut self, _: Resource<RequestSlot>) -> bool {
        self.req().is_some_and(|r| r.tls)
    }

    fn backend(&mut self, _: Resource<RequestSlot>) -> Option<String> {
        self.req().and_then(|r| r.backend.clone())
    }

    fn destination_labels(&mut self, _: Resource<RequestSlot>) -> Vec<(String, String)> {
        self.req()
            .map(|r| r.destination_labels.to_vec())
            .unwrap_or_default()
    }

    fn facts(&mut self, _: Resource<RequestSlot>) -> RequestFacts {
        self.req().map_or_else(
            || RequestFacts {
                direction: Direction::Inbound,
                method: Method::Other,
                tls: false,
                local_port: 0,
                attempt: 1,
                replayable: false,
                text: "/".to_string(),
                ends: (0, 0, 1, 1, 1),
            },
            RequestView::facts,
        )
    }

    fn set_header(&mut self, _: Resource<RequestSlot>, name: String, value: String) {
        if let Some(r) = self.request.as_mut() {
            set_header(&mut r.parts.headers, &name, &value);
        }
    }

    fn remove_header(&mut self, _: Resource<RequestSlot>, name: String) {
        if let Some(r) = self.request.as_mut() {
            r.parts.headers.remove(name.as_str());
        }
    }

    fn set_timeout_ms(&mut self, _: Resource<RequestSlot>, ms: u32) {
        if let Some(r) = self.request.as_mut() {
            r.timeout = Some(Duration::from_millis(ms.into()));
        }
    }

    fn set_backend(&mut self, _: Resource<RequestSlot>, backend: String) {
        if let Some(r) = self.request.as_mut() {
            r.backend = Some(backend);
        }
    }

    fn drop(&mut self, _: Resource<RequestSlot>) -> wasmtime::Result<()> {
        Ok(())
    }
}

// === impl HostResponse ===

impl HostResponse for State {
    fn status(&mut self, _: Resource<ResponseSlot>) -> u16 {
        self.response.as_ref().map_or(0, |r| r.status.as_u16())
    }

    fn error(&mut self, _: Resource<ResponseSlot>) -> Option<String> {
        self.response
            .as_ref()
            .and_then(|r| r.extensions.get::<UpstreamError>())
            .map(|e| e.0.clone())
    }

    fn header(&mut self, _: Resource<ResponseSlot>, name: String) -> Option<String> {
        self.response
            .as_ref()
            .and_then(|r| header(&r.headers, &name))
    }

    fn set_header(&mut self, _: Resource<ResponseSlot>, name: String, value: String) {
        if let Some(r) = self.response.as_mut() {
            set_header(&mut r.headers, &name, &value);
        }
    }

    fn remove_header(&mut self, _: Resource<ResponseSlot>, name: String) {
        if let Some(r) = self.response.as_mut() {
            r.headers.remove(name.as_str());
        }
    }

    fn drop(&mut self, _: Resource<ResponseSlot>) -> wasmtime::Result<()> {
        Ok(())
    }
}

impl crate::bindings::weft::plugin::types::Host for State {}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(uri: &str, host: Option<&str>) -> RequestView {
        let mut builder = http::Request::builder().method("PROPFIND").uri(uri);
        if let Some(host) = host {
            builder = builder.header("host", host);
        }
        RequestView {
            parts: builder.body(()).unwrap().into_parts().0,
            direction: Direction::Outbound,
            client_addr: "[::1]:5000".parse().unwrap(),
            local_port: 4140,
            peer_identity: Some("id.ns".to_string()),
            tls: true,
            backend: Some("10.1.2.3:80".to_string()),
            destination_labels: Default::default(),
            timeout: None,
            attempt: 3,
            replayable: true,
        }
    }

    /// The six strings `facts` packs, cut at its ends.
    fn strings(facts: &RequestFacts) -> [&str; 6] {
        let (a, b, c, d, e) = facts.ends;
        let t = &facts.text;
        let [a, b, c, d, e] = [a, b, c, d, e].map(|end| end as usize);
        [&t[..a], &t[a..b], &t[b..c], &t[c..d], &t[d..e], &t[e..]]
    }

    #[test]
    fn facts_pack_what_the_accessors_return() {
        let view = view("/x/y?z=1", Some("books.ns:8080"));
        let facts = view.facts();
        assert_eq!(
            strings(&facts),
            [
                "PROPFIND",
                "books.ns:8080",
                "/x/y?z=1",
                "[::1]:5000",
                "id.ns",
                "10.1.2.3:80"
            ]
        );
        assert_eq!(view.authority().as_deref(), Some("books.ns:8080"));
        assert_eq!(facts.direction, Direction::Outbound);
        assert_eq!(facts.method, Method::Other);
        assert!(facts.tls && facts.replayable);
        assert_eq!((facts.local_port, facts.attempt), (4140, 3));
    }

    #[test]
    fn facts_take_the_uri_authority_first_and_leave_absent_ones_empty() {
        let mut view = view("http://uri.example/", Some("host.example"));
        view.peer_identity = None;
        view.backend = None;
        assert_eq!(
            strings(&view.facts()),
            ["PROPFIND", "uri.example", "/", "[::1]:5000", "", ""]
        );
        let view = super::tests::view("*", None);
        assert_eq!(strings(&view.facts())[1], "");
    }
}

#[cfg(test)]
mod set_header_tests {
    use super::*;

    #[test]
    fn a_plugin_cannot_set_connection_or_framing_headers() {
        let mut headers = http::HeaderMap::new();
        for (name, value) in [
            ("Content-Length", "5"),
            ("transfer-encoding", "chunked"),
            ("connection", "close"),
            ("upgrade", "websocket"),
            ("te", "gzip"),
            ("bad name", "x"),
            ("x-ok", "bad\r\nvalue"),
            ("x-set", "kept"),
        ] {
            set_header(&mut headers, name, value);
        }
        assert_eq!(headers.len(), 1, "{headers:?}");
        assert_eq!(headers["x-set"], "kept");
    }
}
