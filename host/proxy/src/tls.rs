//! Mutual TLS between proxies. Inbound, a connection that opens with a TLS
//! ClientHello naming this proxy's identity is terminated here, and its
//! client's identity is read from the certificate it presented; any other
//! TLS (the app's own) passes through untouched. Outbound, a connection to
//! an endpoint the controller names as meshed is originated with this
//! proxy's certificate and verifies the server against the identity
//! expected there.
//!
//! Opaque TCP between proxies negotiates the ALPN protocol
//! [`TRANSPORT_ALPN`] and opens with a small header naming the port the
//! client meant, so the server's proxy knows where to relay it.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ServerConfig};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_rustls::{TlsAcceptor, TlsConnector, client, server};

use crate::identity::Identity;
use crate::io::PrefixedIo;

/// ALPN for opaque TCP carried between proxies, with its transport header.
pub const TRANSPORT_ALPN: &[u8] = b"transport.weft.io/v1";
/// The transport header: this magic, then the target port (big-endian).
const TRANSPORT_MAGIC: &[u8; 4] = b"WFT1";
/// A ClientHello larger than this is not one a proxy sent.
const MAX_CLIENT_HELLO: usize = 64 * 1024;

/// The TLS configurations of a proxy with an identity, built once.
pub struct MeshTls {
    local_name: String,
    server: Arc<ServerConfig>,
    http_client: Arc<ClientConfig>,
    transport_client: Arc<ClientConfig>,
}

/// How an inbound connection that began with TLS goes on.
pub enum ClientHello {
    /// For this proxy: terminate it.
    ForUs(Bytes),
    /// For someone else (the app's own TLS, or not quite TLS): relay these
    /// bytes and the rest untouched.
    NotForUs(Bytes),
}

/// A terminated inbound connection and what its handshake said.
pub struct Terminated<I> {
    pub stream: server::TlsStream<PrefixedIo<I>>,
    /// The first DNS SAN of the client's certificate, when it sent one.
    pub client_id: Option<Arc<str>>,
    /// The client carries opaque TCP behind a transport header.
    pub transport: bool,
}

impl MeshTls {
    pub fn new(identity: &Identity) -> Result<Self, weft_identity::TlsError> {
        let credentials = || identity.credentials.clone();
        Ok(Self {
            local_name: identity.name.clone(),
            server: weft_identity::server_config(
                credentials(),
                &identity.anchors,
                &[TRANSPORT_ALPN],
            )?,
            http_client: weft_identity::client_config(Some(credentials()), &identity.anchors, &[])?,
            transport_client: weft_identity::client_config(
                Some(credentials()),
                &identity.anchors,
                &[TRANSPORT_ALPN],
            )?,
        })
    }

    /// Reads on from `prefix` (bytes detection already read, starting with
    /// a TLS record) until the whole ClientHello is in, and says whether it
    /// names this proxy. Every byte read is handed back.
    pub async fn read_client_hello<I: AsyncRead + Unpin>(
        &self,
        prefix: Bytes,
        io: &mut I,
        timeout: Duration,
    ) -> io::Result<ClientHello> {
        let mut buf = BytesMut::from(prefix);
        let mut acceptor = rustls::server::Acceptor::default();
        let mut fed = 0;
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let mut unread = &buf[fed..];
            while !unread.is_empty() {
                let before = unread.len();
                // More than a ClientHello's worth that rustls will not take
                // is not a ClientHello.
                if acceptor.read_tls(&mut unread).is_err() || unread.len() == before {
                    return Ok(ClientHello::NotForUs(buf.freeze()));
                }
                fed += before - unread.len();
            }
            match acceptor.accept() {
                Ok(Some(accepted)) => {
                    let for_us =
                        accepted.client_hello().server_name() == Some(self.local_name.as_str());
                    let buf = buf.freeze();
                    return Ok(if for_us {
                        ClientHello::ForUs(buf)
                    } else {
                        ClientHello::NotForUs(buf)
                    });
                }
                Ok(None) => {}
                Err(_) => return Ok(ClientHello::NotForUs(buf.freeze())),
            }
            if buf.len() >= MAX_CLIENT_HELLO {
                return Ok(ClientHello::NotForUs(buf.freeze()));
            }
            let read = tokio::time::timeout_at(deadline, io.read_buf(&mut buf)).await;
            match read {
                Ok(Ok(0)) | Err(_) => return Ok(ClientHello::NotForUs(buf.freeze())),
                Ok(Ok(_)) => {}
                Ok(Err(error)) => return Err(error),
            }
        }
    }

    /// Completes the handshake whose ClientHello is in `hello`.
    pub async fn terminate<I: AsyncRead + AsyncWrite + Unpin>(
        &self,
        hello: Bytes,
        io: I,
    ) -> io::Result<Terminated<I>> {
        let stream = TlsAcceptor::from(self.server.clone())
            .accept(PrefixedIo::new(hello, io))
            .await?;
        let connection = stream.get_ref().1;
        let client_id = connection
            .peer_certificates()
            .and_then(|chain| chain.first())
            .and_then(weft_identity::peer_identity)
            .map(Arc::from);
        let transport = connection.alpn_protocol() == Some(TRANSPORT_ALPN);
        Ok(Terminated {
            stream,
            client_id,
            transport,
        })
    }

    /// Originates mTLS to a peer proxy expected to prove `server`; with
    /// `transport_port`, for opaque TCP to that port.
    pub async fn originate<I: AsyncRead + AsyncWrite + Unpin>(
        &self,
        io: I,
        server: ServerName<'static>,
        transport_port: Option<u16>,
    ) -> io::Result<client::TlsStream<I>> {
        let config = match transport_port {
            Some(_) => &self.transport_client,
            None => &self.http_client,
        };
        let mut stream = TlsConnector::from(config.clone())
            .connect(server, io)
            .await?;
        if let Some(port) = transport_port {
            stream.write_all(&transport_header(port)).await?;
        }
        Ok(stream)
    }
}

fn transport_header(port: u16) -> [u8; 6] {
    let mut header = [0; 6];
    header[..4].copy_from_slice(TRANSPORT_MAGIC);
    header[4..].copy_from_slice(&port.to_be_bytes());
    header
}

/// Reads the transport header: the port the client meant.
pub async fn read_transport_header<I: AsyncRead + Unpin>(
    io: &mut I,
    timeout: Duration,
) -> io::Result<u16> {
    let mut header = [0; 6];
    tokio::time::timeout(timeout, io.read_exact(&mut header))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no transport header in time"))??;
    if &header[..4] != TRANSPORT_MAGIC {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "not a Weft transport header",
        ));
    }
    Ok(u16::from_be_bytes([header[4], header[5]]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_transport_header_names_the_port() {
        let header = transport_header(5432);
        let port = read_transport_header(&mut &header[..], Duration::from_secs(1))
            .await
            .unwrap();
        assert_eq!(port, 5432);
        let error = read_transport_header(&mut &b"HTTP/1"[..], Duration::from_secs(1))
            .await
            .unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
    }
}
