//! Just enough of an HTTP/1.1 client for readiness and smoke checks, so
//! xtask needs neither an async runtime nor curl.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(5);

pub struct Reply {
    pub status: u16,
    pub body: String,
}

/// `GET path` on its own connection, closed after one response.
pub fn get(addr: SocketAddr, host: &str, path: &str) -> io::Result<Reply> {
    let mut stream = TcpStream::connect_timeout(&addr, TIMEOUT)?;
    stream.set_read_timeout(Some(TIMEOUT))?;
    stream.set_write_timeout(Some(TIMEOUT))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    parse(&raw)
}

fn parse(raw: &[u8]) -> io::Result<Reply> {
    let invalid = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_owned());
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| invalid("response ended inside its headers"))?;
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| invalid("no status code in the response"))?;
    let chunked = head.lines().any(|line| {
        line.to_ascii_lowercase()
            .replace(' ', "")
            .starts_with("transfer-encoding:chunked")
    });
    let body = if chunked {
        dechunk(body).ok_or_else(|| invalid("malformed chunked body"))?
    } else {
        body.to_owned()
    };
    Ok(Reply { status, body })
}

fn dechunk(mut rest: &str) -> Option<String> {
    let mut body = String::new();
    loop {
        let (size_line, after) = rest.split_once("\r\n")?;
        let size_hex = size_line.split(';').next()?.trim();
        let size = usize::from_str_radix(size_hex, 16).ok()?;
        if size == 0 {
            return Some(body);
        }
        body.push_str(after.get(..size)?);
        rest = after.get(size..)?.strip_prefix("\r\n")?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_sized_response() {
        let reply =
            parse(b"HTTP/1.1 200 OK\r\ncontent-length: 15\r\n\r\nhello from app\n").unwrap();
        assert_eq!(reply.status, 200);
        assert_eq!(reply.body, "hello from app\n");
    }

    #[test]
    fn reads_a_chunked_response() {
        let raw = b"HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\n\r\n\
                    6\r\nhello \r\na;ext=1\r\nfrom proxy\r\n0\r\n\r\n";
        let reply = parse(raw).unwrap();
        assert_eq!(reply.status, 503);
        assert_eq!(reply.body, "hello from proxy");
    }

    #[test]
    fn rejects_a_truncated_response() {
        assert!(parse(b"HTTP/1.1 200 OK\r\ncontent-le").is_err());
        assert!(parse(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nab").is_err());
    }
}
