//! Hop-by-hop headers (RFC 9110 §7.6.1) belong to one connection and are
//! removed before a message is forwarded: `Connection` and every header it
//! names, plus the fixed list below. `te: trailers` survives, since gRPC
//! needs it end to end, and so does an upgrade the proxy is relaying.

use std::net::SocketAddr;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::uri::{Authority, Scheme};
use http::{Request, StatusCode, Uri, Version};

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
    // Of `te`, only `trailers` travels end to end; every line counts, and
    // the other codings it lists are this hop's.
    let trailers = headers
        .get_all(header::TE)
        .iter()
        .flat_map(|value| value.as_bytes().split(|b| *b == b','))
        .any(|token| {
            let coding = token.split(|b| *b == b';').next().unwrap_or_default();
            coding.trim_ascii().eq_ignore_ascii_case(b"trailers")
        });
    headers.remove(header::TE);
    if trailers {
        headers.insert(header::TE, HeaderValue::from_static("trailers"));
    }
    if keep_upgrade {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    } else {
        headers.remove(header::UPGRADE);
    }
}

/// The head of a response a plugin made. A status that is not a final one
/// (200–599) becomes 500: a 1xx would tell the client more is coming, and
/// 600–999 are no HTTP status. Invalid headers are dropped, and so are those
/// about the connection or framing, which hyper writes to match the body
/// (the same the plugin host refuses from `set-header`).
pub fn local_response_head(status: u16, fields: Vec<(String, String)>) -> (StatusCode, HeaderMap) {
    let status = match StatusCode::from_u16(status) {
        Ok(status) if (200..=599).contains(&status.as_u16()) => status,
        _ => {
            tracing::warn!(status, "plugin answered with no final status; 500 instead");
            StatusCode::INTERNAL_SERVER_ERROR
        }
    };
    let mut headers = HeaderMap::new();
    for (name, value) in fields {
        let (Ok(name), Ok(value)) = (HeaderName::try_from(name), HeaderValue::try_from(value))
        else {
            tracing::warn!("plugin answered with an invalid header; dropped");
            continue;
        };
        if is_connection_or_framing(&name) {
            tracing::warn!(%name, "plugin answered with a connection or framing header; dropped");
            continue;
        }
        headers.append(name, value);
    }
    (status, headers)
}

fn is_connection_or_framing(name: &HeaderName) -> bool {
    [
        header::CONNECTION,
        header::CONTENT_LENGTH,
        KEEP_ALIVE,
        PROXY_CONNECTION,
        header::TE,
        header::TRAILER,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
    ]
    .contains(name)
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
    fn only_trailers_survives_of_te_whatever_line_it_is_on() {
        for lines in [
            &["trailers", "gzip"][..],
            &["gzip", "Trailers"],
            &["gzip, trailers;q=1"],
        ] {
            let mut h = HeaderMap::new();
            for line in lines {
                h.append(header::TE, HeaderValue::from_static(line));
            }
            strip_hop_by_hop(&mut h, false);
            let te: Vec<_> = h.get_all(header::TE).iter().collect();
            assert_eq!(te, ["trailers"], "{lines:?}");
        }
        let mut h = headers(&[("te", "gzip, deflate")]);
        strip_hop_by_hop(&mut h, false);
        assert!(!h.contains_key("te"));
    }

    #[test]
    fn a_plugin_answer_has_a_final_status_and_no_framing_of_its_own() {
        for (given, sent) in [
            (403, 403),
            (599, 599),
            (101, 500),
            (100, 500),
            (0, 500),
            (999, 500),
        ] {
            assert_eq!(
                local_response_head(given, Vec::new()).0.as_u16(),
                sent,
                "{given}"
            );
        }
        let fields = [
            ("content-type", "text/plain"),
            ("Content-Length", "10"),
            ("transfer-encoding", "chunked"),
            ("connection", "x-a"),
            ("bad name", "x"),
            ("x-a", "bad\r\nvalue"),
            ("x-dup", "1"),
            ("x-dup", "2"),
        ];
        let fields = fields.map(|(n, v)| (n.to_string(), v.to_string())).to_vec();
        let (_, h) = local_response_head(200, fields);
        assert_eq!(h.len(), 3, "{h:?}");
        assert_eq!(h["content-type"], "text/plain");
        let dup: Vec<_> = h.get_all("x-dup").iter().collect();
        assert_eq!(dup, ["1", "2"]);
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
