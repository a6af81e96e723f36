//! Protocol detection: read a connection's first bytes and decide whether it
//! speaks HTTP/2 (prior knowledge), HTTP/1.x, or something we forward as
//! opaque TCP. The bytes read are handed back so nothing is lost.
//!
//! For HTTP/1 the whole first request head is read and checked here, so a
//! malformed or oversized first request gets the proxy's own 400/431 with a
//! reason, and request-smuggling framing (conflicting `Content-Length`, or
//! `Content-Length` with `Transfer-Encoding`) never reaches an upstream.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::errors::ProxyError;

const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// hyper's own limit; more headers than this are refused with 431.
const MAX_HEADERS: usize = 100;

#[derive(Debug)]
pub enum Detected {
    Http1(Bytes),
    Http2(Bytes),
    /// Not HTTP, or the client sent nothing before the timeout. The bytes
    /// may be empty (the client closed, or speaks second).
    Opaque(Bytes),
    /// HTTP/1 that must not be forwarded.
    Rejected(ProxyError),
}

enum Verdict {
    NeedMore,
    Done(fn(Bytes) -> Detected),
    Reject(ProxyError),
}

/// The first bytes the client sends within `timeout` (none if it sends
/// nothing or closes): enough to tell a TLS ClientHello from the rest on
/// a port whose protocol is not detected.
pub async fn first_bytes<I: AsyncRead + Unpin>(
    io: &mut I,
    timeout: Duration,
) -> std::io::Result<Bytes> {
    let mut buf = BytesMut::with_capacity(4096);
    match tokio::time::timeout(timeout, io.read_buf(&mut buf)).await {
        Ok(read) => read.map(|_| buf.freeze()),
        Err(_elapsed) => Ok(Bytes::new()),
    }
}

/// Reads from `io` until the protocol is known, the peer stops sending, or
/// `timeout` passes.
pub async fn detect<I: AsyncRead + Unpin>(
    io: &mut I,
    timeout: Duration,
    max_head: usize,
) -> std::io::Result<Detected> {
    let mut buf = BytesMut::with_capacity(4096);
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let read = tokio::time::timeout_at(deadline, io.read_buf(&mut buf)).await;
        let n = match read {
            Ok(n) => n?,
            // A timed-out partial HTTP/1 head goes on to hyper, which will
            // answer it or time it out; so does a request line still being
            // trickled (slowloris), lest it be relayed to the app as bytes
            // with no limit. Anything else is forwarded as bytes.
            Err(_elapsed) if is_http1_request_line(&buf) || starts_with_http_method(&buf) => {
                return Ok(Detected::Http1(buf.freeze()));
            }
            Err(_elapsed) => return Ok(Detected::Opaque(buf.freeze())),
        };
        match classify(&buf, max_head) {
            Verdict::Done(kind) => return Ok(kind(buf.freeze())),
            Verdict::Reject(error) => return Ok(Detected::Rejected(error)),
            Verdict::NeedMore if n == 0 => return Ok(Detected::Opaque(buf.freeze())),
            Verdict::NeedMore => {
                if buf.capacity() == buf.len() {
                    buf.reserve(buf.len());
                }
            }
        }
    }
}

fn classify(buf: &[u8], max_head: usize) -> Verdict {
    if buf.len() >= H2_PREFACE.len() && buf.starts_with(H2_PREFACE) {
        return Verdict::Done(Detected::Http2);
    }
    if H2_PREFACE.starts_with(buf) {
        return Verdict::NeedMore;
    }
    let Some(line_end) = buf.iter().position(|&b| b == b'\n') else {
        // Still reading what may be a request line.
        return if buf.len() < max_head && looks_like_method_prefix(buf) {
            Verdict::NeedMore
        } else {
            Verdict::Done(Detected::Opaque)
        };
    };
    if !is_http1_request_line(&buf[..=line_end]) {
        return Verdict::Done(Detected::Opaque);
    }
    check_http1_head(buf, max_head)
}

/// `METHOD SP target SP HTTP/1.x` — enough to call the connection HTTP/1.
fn is_http1_request_line(buf: &[u8]) -> bool {
    let line_end = buf.iter().position(|&b| b == b'\n').unwrap_or(buf.len());
    let line = buf[..line_end]
        .strip_suffix(b"\r")
        .unwrap_or(&buf[..line_end]);
    let Some(method_end) = line.iter().position(|&b| b == b' ') else {
        return false;
    };
    method_end > 0
        && line[..method_end].iter().all(|&b| is_tchar(b))
        && (line.ends_with(b" HTTP/1.1") || line.ends_with(b" HTTP/1.0"))
}

/// A standard method and a space: the start of an HTTP/1 request line.
fn starts_with_http_method(buf: &[u8]) -> bool {
    const METHODS: [&[u8]; 9] = [
        b"GET ",
        b"HEAD ",
        b"POST ",
        b"PUT ",
        b"DELETE ",
        b"CONNECT ",
        b"OPTIONS ",
        b"TRACE ",
        b"PATCH ",
    ];
    METHODS.iter().any(|method| buf.starts_with(method))
}

fn looks_like_method_prefix(buf: &[u8]) -> bool {
    match buf.iter().position(|&b| b == b' ') {
        Some(end) => end > 0 && buf[..end].iter().all(|&b| is_tchar(b)),
        None => buf.iter().all(|&b| is_tchar(b)),
    }
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn check_http1_head(buf: &[u8], max_head: usize) -> Verdict {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(buf) {
        Ok(httparse::Status::Complete(head_len)) if head_len > max_head => {
            Verdict::Reject(ProxyError::HeadersTooLarge { limit: max_head })
        }
        Ok(httparse::Status::Complete(_)) => match check_framing(req.headers) {
            Ok(()) => Verdict::Done(Detected::Http1),
            Err(error) => Verdict::Reject(error),
        },
        Ok(httparse::Status::Partial) if buf.len() >= max_head => {
            Verdict::Reject(ProxyError::HeadersTooLarge { limit: max_head })
        }
        Ok(httparse::Status::Partial) => Verdict::NeedMore,
        Err(httparse::Error::TooManyHeaders) => {
            Verdict::Reject(ProxyError::HeadersTooLarge { limit: max_head })
        }
        Err(e) => Verdict::Reject(ProxyError::MalformedRequest(e.to_string())),
    }
}

/// Refuses the framings that let a request be read two ways (RFC 9112 §6.3).
fn check_framing(headers: &[httparse::Header<'_>]) -> Result<(), ProxyError> {
    let malformed = |why: &str| Err(ProxyError::MalformedRequest(why.to_string()));
    let mut length: Option<&[u8]> = None;
    let mut chunked = false;
    for h in headers {
        if h.name.eq_ignore_ascii_case("content-length") {
            if h.value.is_empty() || !h.value.iter().all(u8::is_ascii_digit) {
                return malformed("invalid content-length");
            }
            if length.is_some_and(|l| l != h.value) {
                return malformed("conflicting content-length headers");
            }
            length = Some(h.value);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = true;
        }
    }
    if chunked && length.is_some() {
        return malformed("both content-length and transfer-encoding");
    }
    Ok(())
}

#[cfg(test)]
mod tests;
