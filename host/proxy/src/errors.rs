//! Why the proxy answered a request itself, and the one place that turns
//! each reason into an HTTP response (400/403/431/500/502/503/504): a status, a
//! short body, and an `x-weft-proxy-error` header naming the reason.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode};
use http_body_util::{BodyExt, Full};

use crate::BoxBody;

/// The header on every response the proxy makes up itself.
pub const ERROR_HEADER: &str = "x-weft-proxy-error";

#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("malformed HTTP request: {0}")]
    MalformedRequest(String),
    #[error("request head exceeds {limit} bytes or 100 headers")]
    HeadersTooLarge { limit: usize },
    #[error("request has no authority (URI or Host header) to route by")]
    MissingAuthority,
    #[error("cannot resolve {authority}: {source}")]
    Resolve {
        authority: String,
        source: std::io::Error,
    },
    #[error("no destination for this connection (no original destination and no app address)")]
    NoDestination,
    #[error("request to {addr} would loop back into the proxy")]
    Loop { addr: SocketAddr },
    #[error(transparent)]
    Connect(#[from] ConnectError),
    #[error("upstream {addr} did not respond within {timeout:?}")]
    ResponseTimeout { addr: SocketAddr, timeout: Duration },
    #[error("the request's deadline passed before it could be sent again")]
    DeadlineExceeded,
    #[error("upstream {addr} failed: {reason}")]
    Upstream { addr: SocketAddr, reason: String },
    #[error(transparent)]
    Plugin(#[from] weft_plugins::PluginFailure),
    #[error(
        "the proxy has no plugin chain yet: it waits for its workload's plugins from the controller"
    )]
    ChainPending,
    #[error("port {port} takes only mutually authenticated connections from meshed proxies")]
    IdentityRequired { port: u16 },
    #[error("the proxy already has {limit} requests in flight, its limit; try again later")]
    Overloaded { limit: usize },
    #[error("no endpoint of {authority} was ready within {waited:?}")]
    NoReadyEndpoint { authority: String, waited: Duration },
    #[error("balancing requests to {authority} failed: {reason}")]
    Balancer { authority: String, reason: String },
}

/// Connecting to an upstream failed: refusals and timeouts answer
/// differently from other failures.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("upstream {addr} refused the connection")]
    Refused { addr: SocketAddr },
    #[error("upstream {addr} did not accept a connection within {timeout:?}")]
    Timeout { addr: SocketAddr, timeout: Duration },
    #[error("connecting to {addr} failed: {source}")]
    Io {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("mTLS to {addr}, expected to be {identity}, failed: {source}")]
    Tls {
        addr: SocketAddr,
        identity: String,
        source: std::io::Error,
    },
}

impl ProxyError {
    /// An upstream connection failed after it was opened.
    pub fn upstream(addr: SocketAddr, error: &hyper::Error) -> Self {
        ProxyError::Upstream {
            addr,
            reason: error_chain(error),
        }
    }

    /// Whether the upstream failed to answer (rather than the request
    /// being refused before it was sent): response hooks see these.
    pub fn is_upstream(&self) -> bool {
        matches!(
            self,
            Self::Connect(_) | Self::ResponseTimeout { .. } | Self::Upstream { .. }
        )
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::MalformedRequest(_) | Self::MissingAuthority => StatusCode::BAD_REQUEST,
            Self::HeadersTooLarge { .. } => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Self::Connect(ConnectError::Timeout { .. })
            | Self::ResponseTimeout { .. }
            | Self::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
            Self::Plugin(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Self::ChainPending | Self::Overloaded { .. } | Self::NoReadyEndpoint { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::IdentityRequired { .. } => StatusCode::FORBIDDEN,
            Self::Resolve { .. }
            | Self::NoDestination
            | Self::Loop { .. }
            | Self::Connect(_)
            | Self::Upstream { .. }
            | Self::Balancer { .. } => StatusCode::BAD_GATEWAY,
        }
    }

    /// A stable, short name for the header and for logs.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::MalformedRequest(_) => "malformed request",
            Self::HeadersTooLarge { .. } => "request headers too large",
            Self::MissingAuthority => "missing authority",
            Self::Resolve { .. } => "unresolvable authority",
            Self::NoDestination => "no destination",
            Self::Loop { .. } => "loop detected",
            Self::Connect(ConnectError::Refused { .. }) => "upstream connection refused",
            Self::Connect(ConnectError::Timeout { .. }) => "upstream connect timeout",
            Self::Connect(ConnectError::Tls { .. }) => "upstream mTLS failed",
            Self::Connect(_) => "upstream connect failed",
            Self::ResponseTimeout { .. } => "upstream response timeout",
            Self::DeadlineExceeded => "request deadline exceeded",
            Self::Upstream { .. } => "upstream failed",
            Self::Plugin(_) => "plugin failed",
            Self::ChainPending => "plugin chain pending",
            Self::IdentityRequired { .. } => "client identity required",
            Self::Overloaded { .. } => "proxy overloaded",
            Self::NoReadyEndpoint { .. } => "no ready endpoint",
            Self::Balancer { .. } => "balancer failed",
        }
    }

    pub fn to_response(&self) -> Response<BoxBody> {
        let body = Full::new(Bytes::from(format!("{self}\n")))
            .map_err(|never| match never {})
            .boxed();
        let mut rsp = Response::new(body);
        *rsp.status_mut() = self.status();
        let headers = rsp.headers_mut();
        headers.insert(ERROR_HEADER, HeaderValue::from_static(self.reason()));
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain"),
        );
        rsp
    }

    /// The same response as raw HTTP/1.1 bytes, for requests rejected
    /// before hyper sees the connection. The connection is closed after it.
    pub fn to_http1_bytes(&self) -> Vec<u8> {
        let status = self.status();
        let body = format!("{self}\n");
        format!(
            "HTTP/1.1 {} {}\r\n{ERROR_HEADER}: {}\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            status.as_u16(),
            status.canonical_reason().unwrap_or(""),
            self.reason(),
            body.len(),
        )
        .into_bytes()
    }
}

/// `a: b: c` from an error and its causes, as one line.
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut out = error.to_string();
    let mut cause = error.source();
    while let Some(e) = cause {
        let text = e.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cause = e.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr() -> SocketAddr {
        "127.0.0.1:9".parse().unwrap()
    }

    #[test]
    fn each_failure_has_its_status() {
        let refused = ProxyError::Connect(ConnectError::Refused { addr: addr() });
        assert_eq!(refused.status(), StatusCode::BAD_GATEWAY);
        let timeout = ProxyError::ResponseTimeout {
            addr: addr(),
            timeout: Duration::from_secs(1),
        };
        assert_eq!(timeout.status(), StatusCode::GATEWAY_TIMEOUT);
        assert_eq!(
            ProxyError::MissingAuthority.status(),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            ProxyError::ChainPending.status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
    }

    #[test]
    fn raw_responses_are_valid_http() {
        let bytes = ProxyError::MalformedRequest("bad".into()).to_http1_bytes();
        let mut headers = [httparse::EMPTY_HEADER; 8];
        let mut rsp = httparse::Response::new(&mut headers);
        let httparse::Status::Complete(head) = rsp.parse(&bytes).unwrap() else {
            panic!("incomplete response");
        };
        assert_eq!(rsp.code, Some(400));
        let reason = rsp.headers.iter().find(|h| h.name == ERROR_HEADER).unwrap();
        assert_eq!(reason.value, b"malformed request");
        assert_eq!(&bytes[head..], b"malformed HTTP request: bad\n");
    }
}
