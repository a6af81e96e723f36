//! gRPC channels over the mesh's TLS: the controller's services are reached
//! over TLS 1.3, verified against the trust anchors and the identity the
//! server must have.

use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::ClientConfig;
use tokio_rustls::rustls::pki_types::ServerName;
use tonic::transport::{Channel, Endpoint, Uri};

/// A channel to `addr` (`host:port`) whose server must prove `identity`.
/// The client's own certificate, if any, is in `config`.
pub async fn channel(
    addr: String,
    identity: ServerName<'static>,
    config: Arc<ClientConfig>,
) -> Result<Channel, tonic::transport::Error> {
    endpoint()
        .connect_with_connector(connector(addr, identity, config))
        .await
}

/// The same channel, connecting when first used (and again after a
/// failure), so a caller can hold one before the server is up.
pub fn lazy_channel(
    addr: String,
    identity: ServerName<'static>,
    config: Arc<ClientConfig>,
) -> Channel {
    endpoint().connect_with_connector_lazy(connector(addr, identity, config))
}

// The URI is not dialled: the connector decides where to go.
fn endpoint() -> Endpoint {
    Endpoint::from_static("http://weft-controller")
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(10))
}

fn connector(
    addr: String,
    identity: ServerName<'static>,
    config: Arc<ClientConfig>,
) -> impl tower::Service<
    Uri,
    Response = TokioIo<tokio_rustls::client::TlsStream<TcpStream>>,
    Error = std::io::Error,
    Future = impl Send,
> + Clone
+ Send
+ 'static {
    tower::service_fn(move |_: Uri| {
        let (addr, identity, config) = (addr.clone(), identity.clone(), config.clone());
        async move {
            let tcp = TcpStream::connect(&addr).await?;
            let stream = TlsConnector::from(config).connect(identity, tcp).await?;
            Ok::<_, std::io::Error>(TokioIo::new(stream))
        }
    })
}
