//! Hop-by-hop headers (RFC 9110 §7.6.1) belong to one connection and are
//! removed before a message is forwarded: `Connection` and every header it
//! names, plus the fixed list below. `te: trailers` survives, since gRPC
//! needs it end to end, and so does an upgrade the proxy is relaying.

use std::net::SocketAddr;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::uri::{Authority, Scheme};
use http::{Request, Uri, Version};

use crate::errors::ProxyError;

const KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
const PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");
/// Between proxies, HTTP/1 requests ride HTTP/2 and this header says which
/// version they were, so the far side restores it (Linkerd's
/// `l5d-orig-proto`).
const ORIG_PROTO: HeaderName = HeaderName::from_static("weft-orig-proto");

/// Makes an HTTP/1 request into the HTTP/2 one that carries it to a peer
/// proxy: the authority it is routed by moves into the URI (`:authority`);
/// one that names none gets the endpoint's address, `fallback`.
pub fn to_mesh_h2<B>(req: &mut Request<B>, fallback: SocketAddr) -> Result<(), ProxyError> {
    let orig = match req.version() {
        Version::HTTP_2 => return Ok(()),
        Version::HTTP_10 => "HTTP/1.0",
        _ => "HTTP/1.1",
    };
    let malformed = |e: http::Error| ProxyError::MalformedRequest(e.to_string());
    let authority = match super::authority(req)? {
        Some(authority) => authority,
        None => Authority::try_from(fallback.to_string()).map_err(|e| malformed(e.into()))?,
    };
    let scheme = req.uri().scheme().cloned().unwrap_or(Scheme::HTTP);
    let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
    *req.uri_mut() = Uri::builder()
        .scheme(scheme)
        .authority(authority)
        .path_and_query(path)
        .build()
        .map_err(malformed)?;
    req.headers_mut().remove(header::HOST);
    req.headers_mut()
        .insert(ORIG_PROTO, HeaderValue::from_static(orig));
    *req.version_mut() = Version::HTTP_2;
    Ok(())
}

/// The far side of [`to_mesh_h2`]: a request a peer proxy carried over
/// HTTP/2 becomes the HTTP/1 request it was.
pub fn from_mesh_h2<B>(req: &mut Request<B>) {
    if let Some(orig) = req.headers_mut().remove(ORIG_PROTO) {
        *req.version_mut() = match orig.as_bytes() {
            b"HTTP/1.0" => Version::HTTP_10,
            _ => Version::HTTP_11,
        };
    }
}

/// Whether an HTTP/1 request asks to switch protocols (e.g. WebSocket).
pub fn wants_upgrade<B>(req: &Request<B>) -> bool {
    req.version() <= Version::HTTP_11
        && req.headers().contains_key(header::UPGRADE)
        && connection_has(req.headers(), "upgrade")
}

pub fn strip_hop_by_hop(headers: &mut HeaderMap, keep_upgrade: bool) {
    // Every `Connection` line counts, not just the first (which is all
    // `HeaderMap::remove` returns), so the names are gathered before removal.
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .flat_map(|value| value.as_bytes().split(|b| *b == b','))
        .filter_map(|token| HeaderName::from_bytes(token.trim_ascii()).ok())
        .collect();
    headers.remove(header::CONNECTION);
    for name in named {
        if !(keep_upgrade && name == header::UPGRADE) {
            headers.remove(name);
        }
    }
    headers.remove(KEEP_ALIVE);
    headers.remove(PROXY_CONNECTION);
    headers.remove(header::TRAILER);
    headers.remove(header::TRANSFER_ENCODING);
    if headers.get(header::TE).is_some_and(|te| te != "trailers") {
        headers.remove(header::TE);
    }
    if keep_upgrade {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    } else {
        headers.remove(header::UPGRADE);
    }
}

fn connection_has(headers: &HeaderMap, token: &str) -> bool {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| (HeaderName::from_static(k), HeaderValue::from_static(v)))
            .collect()
    }

    #[test]
    fn connection_and_the_headers_it_names_are_removed() {
        let mut h = headers(&[
            ("connection", "keep-alive, x-secret"),
            ("keep-alive", "timeout=5"),
            ("x-secret", "1"),
            ("transfer-encoding", "chunked"),
            ("te", "gzip"),
            ("upgrade", "websocket"),
            ("x-app", "kept"),
        ]);
        strip_hop_by_hop(&mut h, false);
        assert_eq!(h.len(), 1, "{h:?}");
        assert_eq!(h["x-app"], "kept");
    }

    #[test]
    fn every_connection_line_names_headers_to_remove() {
        let mut h = HeaderMap::new();
        for (name, value) in [
            ("connection", "x-first"),
            ("connection", "keep-alive, X-Second"),
            ("x-first", "1"),
            ("x-second", "2"),
            ("x-app", "kept"),
        ] {
            h.append(
                HeaderName::from_static(name),
                HeaderValue::from_static(value),
            );
        }
        strip_hop_by_hop(&mut h, false);
        assert_eq!(h.len(), 1, "{h:?}");
        assert_eq!(h["x-app"], "kept");
    }

    #[test]
    fn http1_rides_http2_between_proxies_and_comes_back() {
        let mut req = Request::builder()
            .uri("/path?q=1")
            .header("host", "backend.demo:8080")
            .body(())
            .unwrap();
        to_mesh_h2(&mut req, "10.0.0.1:8080".parse().unwrap()).unwrap();
        assert_eq!(req.version(), Version::HTTP_2);
        assert_eq!(req.uri(), "http://backend.demo:8080/path?q=1");
        assert!(!req.headers().contains_key("host"));
        from_mesh_h2(&mut req);
        assert_eq!(req.version(), Version::HTTP_11);
        assert!(!req.headers().contains_key("weft-orig-proto"));

        let mut bare = Request::builder()
            .version(Version::HTTP_10)
            .uri("/")
            .body(())
            .unwrap();
        to_mesh_h2(&mut bare, "10.0.0.1:8080".parse().unwrap()).unwrap();
        assert_eq!(bare.uri(), "http://10.0.0.1:8080/");
        from_mesh_h2(&mut bare);
        assert_eq!(bare.version(), Version::HTTP_10);
    }

    #[test]
    fn te_trailers_survives_for_grpc() {
        let mut h = headers(&[("te", "trailers")]);
        strip_hop_by_hop(&mut h, false);
        assert_eq!(h["te"], "trailers");
    }

    #[test]
    fn an_upgrade_is_kept_when_relayed() {
        let req = Request::builder()
            .header("connection", "keep-alive, Upgrade")
            .header("upgrade", "websocket")
            .body(())
            .unwrap();
        assert!(wants_upgrade(&req));
        let mut h = req.headers().clone();
        strip_hop_by_hop(&mut h, true);
        assert_eq!(h["connection"], "upgrade");
        assert_eq!(h["upgrade"], "websocket");
    }
}
