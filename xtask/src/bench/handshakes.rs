//! How many TLS handshakes the client proxy of a meshed pair has made, from
//! its own counters: read before and after each load, the difference says
//! how well connection reuse amortises the handshake.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

use anyhow::{Context, bail};

use crate::harness::HTTP_TIMEOUT;

/// Where a client proxy counts the mTLS connections it opened.
pub enum Handshakes {
    /// weft-proxy's admin `/metrics`: outbound `tcp_open_total` with
    /// `tls="true"`, every peer summed.
    Weft { admin: SocketAddr },
    /// Envoy's admin `/stats`: `cluster.<cluster>.ssl.handshake`.
    Envoy {
        admin: SocketAddr,
        cluster: &'static str,
    },
}

impl Handshakes {
    pub fn count(&self) -> anyhow::Result<u64> {
        match self {
            Self::Weft { admin } => Ok(weft_count(&get(*admin, "/metrics")?)),
            Self::Envoy { admin, cluster } => {
                let stats = get(*admin, "/stats?filter=ssl.handshake")?;
                envoy_count(&stats, cluster).with_context(|| {
                    format!("Envoy's /stats has no cluster.{cluster}.ssl.handshake:\n{stats}")
                })
            }
        }
    }
}

/// The outbound mTLS connections in a Prometheus exposition.
fn weft_count(metrics: &str) -> u64 {
    metrics
        .lines()
        .filter_map(|line| line.strip_prefix("tcp_open_total{"))
        .filter_map(|rest| rest.split_once("} "))
        .filter(|(labels, _)| {
            labels.contains(r#"direction="outbound""#) && labels.contains(r#"tls="true""#)
        })
        .filter_map(|(_, value)| value.trim().parse::<f64>().ok())
        .sum::<f64>() as u64
}

fn envoy_count(stats: &str, cluster: &str) -> Option<u64> {
    let name = format!("cluster.{cluster}.ssl.handshake");
    stats.lines().find_map(|line| {
        let (stat, value) = line.split_once(": ")?;
        (stat == name).then(|| value.trim().parse().ok())?
    })
}

/// The body of `GET path`, which must answer 200, on its own connection.
pub(super) fn get(addr: SocketAddr, path: &str) -> anyhow::Result<String> {
    let exchange = || -> std::io::Result<Vec<u8>> {
        let mut stream = TcpStream::connect_timeout(&addr, HTTP_TIMEOUT)?;
        stream.set_read_timeout(Some(HTTP_TIMEOUT))?;
        stream.set_write_timeout(Some(HTTP_TIMEOUT))?;
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
        )?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw)?;
        Ok(raw)
    };
    let raw = exchange().with_context(|| format!("GET http://{addr}{path}"))?;
    body(&raw).with_context(|| format!("GET http://{addr}{path}"))
}

/// A 200 response's body, sized by the connection's end or chunked.
fn body(raw: &[u8]) -> anyhow::Result<String> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut response = httparse::Response::new(&mut headers);
    let httparse::Status::Complete(head) = response.parse(raw)? else {
        bail!("the response ended inside its headers");
    };
    if response.code != Some(200) {
        bail!("answered {:?}, not 200", response.code);
    }
    let chunked = response.headers.iter().any(|header| {
        header.name.eq_ignore_ascii_case("transfer-encoding")
            && String::from_utf8_lossy(header.value)
                .to_ascii_lowercase()
                .contains("chunked")
    });
    let rest = &raw[head..];
    let bytes = if chunked {
        dechunk(rest).context("a malformed chunked body")?
    } else {
        rest.to_vec()
    };
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

fn dechunk(mut rest: &[u8]) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = rest.windows(2).position(|w| w == b"\r\n")?;
        let size_line = std::str::from_utf8(&rest[..line_end]).ok()?;
        let size = usize::from_str_radix(size_line.split(';').next()?.trim(), 16).ok()?;
        let after = &rest[line_end + 2..];
        if size == 0 {
            return Some(body);
        }
        body.extend_from_slice(after.get(..size)?);
        rest = after.get(size..)?.strip_prefix(b"\r\n")?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_weft_s_outbound_mtls_connections() {
        let metrics = "\
# TYPE tcp_open counter
tcp_open_total{direction=\"outbound\",peer=\"dst\",tls=\"true\",target_addr=\"127.0.0.1:4143\"} 2
tcp_open_total{direction=\"outbound\",peer=\"dst\",tls=\"true\",target_addr=\"127.0.0.1:4243\"} 1
tcp_open_total{direction=\"outbound\",peer=\"dst\",tls=\"disabled\",target_addr=\"127.0.0.1:80\"} 9
tcp_open_total{direction=\"inbound\",peer=\"src\",tls=\"true\",target_addr=\"127.0.0.1:4143\"} 5
tcp_open_connections{direction=\"outbound\",peer=\"dst\",tls=\"true\",target_addr=\"x\"} 7
";
        assert_eq!(weft_count(metrics), 3);
        assert_eq!(weft_count(""), 0);
    }

    #[test]
    fn reads_envoy_s_handshake_counter() {
        let stats = "cluster.server.ssl.handshake: 4\nlistener.x.ssl.handshake: 9\n";
        assert_eq!(envoy_count(stats, "server"), Some(4));
        assert_eq!(envoy_count(stats, "other"), None);
    }

    #[test]
    fn reads_sized_and_chunked_bodies() {
        let sized = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello";
        assert_eq!(body(sized).unwrap(), "hello");
        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
                        6\r\nhello \r\na;ext=1\r\nfrom proxy\r\n0\r\n\r\n";
        assert_eq!(body(chunked).unwrap(), "hello from proxy");
        assert!(body(b"HTTP/1.1 503 Service Unavailable\r\n\r\n").is_err());
        assert!(body(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nab").is_err());
    }
}
