//! A keep-alive HTTP/1.1 connection for the fixed-rate load, reading each
//! response whole so the next request can follow on the same connection,
//! and which upstream instance gave it (`x-demo-name`).

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use anyhow::Context;

/// The header in which each `weft-demo` instance names itself.
const ANSWERED_BY: &str = "x-demo-name";

/// A keep-alive HTTP/1.1 connection and what it has read past the last
/// response.
pub struct Connection {
    addr: SocketAddr,
    /// For connecting, and for each read and write.
    timeout: Duration,
    stream: Option<TcpStream>,
    buffer: Vec<u8>,
}

impl Connection {
    pub fn open(addr: SocketAddr, timeout: Duration) -> anyhow::Result<Self> {
        let stream = connect(addr, timeout).with_context(|| format!("connecting to {addr}"))?;
        Ok(Self {
            addr,
            timeout,
            stream: Some(stream),
            buffer: Vec::with_capacity(4096),
        })
    }

    /// Drops the connection; the next exchange opens a new one.
    pub fn reopen(&mut self) {
        self.stream = None;
        self.buffer.clear();
    }

    /// Sends `request` and reads the whole response.
    pub fn exchange(&mut self, request: &[u8]) -> io::Result<Answer> {
        if self.stream.is_none() {
            self.stream = Some(connect(self.addr, self.timeout)?);
        }
        let stream = self.stream.as_mut().expect("connected above");
        stream.write_all(request)?;
        let mut chunk = [0; 4096];
        loop {
            if let Some(response) = parse_response(&self.buffer)? {
                self.buffer.drain(..response.len);
                if response.close {
                    self.reopen();
                }
                return Ok(Answer {
                    status: response.status,
                    from: response.from,
                });
            }
            let read = stream.read(&mut chunk)?;
            if read == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            self.buffer.extend_from_slice(&chunk[..read]);
        }
    }
}

fn connect(addr: SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
    let stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    Ok(stream)
}

/// What came back for a request.
pub struct Answer {
    pub status: u16,
    /// The upstream instance that answered, if it said.
    pub from: Option<String>,
}

/// A complete response at the start of a buffer.
#[derive(Debug, PartialEq)]
struct Response {
    status: u16,
    /// Head and body, in bytes.
    len: usize,
    /// The server will close the connection after it.
    close: bool,
    /// Its `x-demo-name`.
    from: Option<String>,
}

/// The response at the start of `buffer`, or `None` until it is complete.
/// Bodies are framed by Content-Length or chunked encoding: every target
/// here keeps connections alive, so nothing is delimited by a close.
fn parse_response(buffer: &[u8]) -> io::Result<Option<Response>> {
    let invalid = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_string());
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut head = httparse::Response::new(&mut headers);
    let head_len = match head.parse(buffer) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(error) => return Err(invalid(&error.to_string())),
    };
    let status = head.code.unwrap_or_default();
    let header = |name: &str| {
        head.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| String::from_utf8_lossy(h.value).trim().to_ascii_lowercase())
    };
    let close = header("connection").is_some_and(|value| value == "close");
    let from = head
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case(ANSWERED_BY))
        .map(|h| String::from_utf8_lossy(h.value).trim().to_string());
    let body = &buffer[head_len..];
    let body_len = if matches!(status, 204 | 304) {
        Some(0)
    } else if header("transfer-encoding").is_some_and(|value| value.ends_with("chunked")) {
        chunked_len(body)?
    } else {
        let length = header("content-length").ok_or_else(|| invalid("no body framing"))?;
        let length: usize = length.parse().map_err(|_| invalid("bad Content-Length"))?;
        (body.len() >= length).then_some(length)
    };
    Ok(body_len.map(|body_len| Response {
        status,
        len: head_len + body_len,
        close,
        from,
    }))
}

/// The length of a complete chunked body (trailers included) at the start
/// of `body`, or `None` until it is complete.
fn chunked_len(body: &[u8]) -> io::Result<Option<usize>> {
    let invalid = || io::Error::new(io::ErrorKind::InvalidData, "bad chunk size");
    let mut at = 0;
    loop {
        let Some(line_end) = find_crlf(&body[at..]) else {
            return Ok(None);
        };
        let line = std::str::from_utf8(&body[at..at + line_end]).map_err(|_| invalid())?;
        let size = line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size, 16).map_err(|_| invalid())?;
        at += line_end + 2;
        if size == 0 {
            return Ok(trailers_len(&body[at..]).map(|len| at + len));
        }
        at += size + 2;
        if body.len() < at {
            return Ok(None);
        }
    }
}

/// The trailer lines and the blank line ending them.
fn trailers_len(rest: &[u8]) -> Option<usize> {
    let mut at = 0;
    loop {
        let line_end = find_crlf(&rest[at..])?;
        at += line_end + 2;
        if line_end == 0 {
            return Some(at);
        }
    }
}

fn find_crlf(bytes: &[u8]) -> Option<usize> {
    bytes.windows(2).position(|pair| pair == b"\r\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_response_framed_by_length() {
        let text = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\nX-Demo-Name: b\r\n\r\nhelloHTTP/1.1";
        let response = parse_response(text).unwrap().unwrap();
        assert_eq!(
            response,
            Response {
                status: 200,
                len: text.len() - "HTTP/1.1".len(),
                close: false,
                from: Some("b".into()),
            }
        );
        assert_eq!(parse_response(&text[..40]).unwrap(), None);
        assert_eq!(parse_response(b"HTTP/1.1 200 OK\r\ncont").unwrap(), None);
    }

    #[test]
    fn reads_a_chunked_response_with_trailers() {
        let text = b"HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\n\
                     Connection: close\r\n\r\n5;x=y\r\nhello\r\n0\r\ngrpc-status: 0\r\n\r\n";
        let response = parse_response(text).unwrap().unwrap();
        assert_eq!(
            response,
            Response {
                status: 503,
                len: text.len(),
                close: true,
                from: None,
            }
        );
        for cut in 1..text.len() {
            assert_eq!(parse_response(&text[..cut]).unwrap(), None, "cut at {cut}");
        }
    }

    #[test]
    fn refuses_what_it_cannot_frame() {
        assert!(parse_response(b"HTTP/1.1 200 OK\r\n\r\nhello").is_err());
        assert!(parse_response(b"HTTP/1.1 200 OK\r\ncontent-length: x\r\n\r\n").is_err());
        assert!(parse_response(b"garbage\r\n\r\n").is_err());
        let chunked = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n";
        assert!(parse_response(chunked).is_err());
        assert_eq!(
            parse_response(b"HTTP/1.1 204 No Content\r\n\r\n").unwrap(),
            Some(Response {
                status: 204,
                len: 27,
                close: false,
                from: None,
            })
        );
    }
}
