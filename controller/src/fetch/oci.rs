//! Anonymous pulls of Wasm plugin images, Istio's way: an image whose one
//! layer is the module, or a tar+gzip layer holding `plugin.wasm`.

use std::net::IpAddr;

use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use tokio_stream::StreamExt;

use super::oci_layer::Layer;
use super::{CONNECT_TIMEOUT, FETCH_TIMEOUT, MAX_MODULE_BYTES, causes, too_large};

pub(super) struct Registries {
    https: Client,
    /// For registries on loopback, which serve plain HTTP (a registry in a
    /// test, or a node-local cache); every other registry is HTTPS only.
    plain: Client,
}

impl Registries {
    pub(super) fn new() -> Result<Self, String> {
        let client = |protocol| {
            Client::try_from(ClientConfig {
                protocol,
                connect_timeout: Some(CONNECT_TIMEOUT),
                read_timeout: Some(FETCH_TIMEOUT),
                ..ClientConfig::default()
            })
            .map_err(|e| causes(&e))
        };
        Ok(Registries {
            https: client(ClientProtocol::Https)?,
            plain: client(ClientProtocol::Http)?,
        })
    }

    pub(super) async fn pull(&self, image: &str) -> Result<Vec<u8>, String> {
        let reference: Reference = image.parse().map_err(|e| causes(&e))?;
        let client = if is_loopback(reference.resolve_registry()) {
            &self.plain
        } else {
            &self.https
        };
        let (manifest, _digest) = client
            .pull_image_manifest(&reference, &RegistryAuth::Anonymous)
            .await
            .map_err(|e| causes(&e))?;
        let [descriptor] = manifest.layers.as_slice() else {
            return Err(format!(
                "the image has {} layers; a Wasm plugin image has exactly one",
                manifest.layers.len()
            ));
        };
        let layer = Layer::of(&descriptor.media_type)?;
        if u64::try_from(descriptor.size).map_or(true, |size| size > MAX_MODULE_BYTES) {
            return Err(too_large());
        }
        // oci-client checks the bytes against the layer's digest as they come.
        let mut stream = client
            .pull_blob_stream(&reference, descriptor)
            .await
            .map_err(|e| causes(&e))?;
        let mut bytes = Vec::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| format!("reading layer {}: {e}", descriptor.digest))?;
            if (bytes.len() + chunk.len()) as u64 > MAX_MODULE_BYTES {
                return Err(too_large());
            }
            bytes.extend_from_slice(&chunk);
        }
        layer.module(bytes)
    }
}

/// `127.0.0.1:5000`, `localhost`, `[::1]:5000`.
fn is_loopback(registry: &str) -> bool {
    let host = match registry.rsplit_once(':') {
        Some((host, port)) if port.chars().all(|c| c.is_ascii_digit()) => host,
        _ => registry,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::is_loopback;

    #[test]
    fn only_loopback_registries_are_plain_http() {
        for registry in [
            "127.0.0.1:5000",
            "127.0.0.1",
            "localhost:5000",
            "[::1]:5000",
            "127.3.2.1",
        ] {
            assert!(is_loopback(registry), "{registry}");
        }
        for registry in [
            "ghcr.io",
            "index.docker.io",
            "10.0.0.1:5000",
            "localhost.example.com",
        ] {
            assert!(!is_loopback(registry), "{registry}");
        }
    }
}
