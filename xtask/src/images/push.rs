//! Pushing packed images with oci-client, then pulling each manifest back
//! to prove the registry holds exactly the bytes packed here.

use std::net::IpAddr;

use anyhow::{Context, ensure};
use http::HeaderValue;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};

use super::pack::{Image, sha256_digest};

/// A registry and the path under it, e.g. `localhost:5000/weft`.
pub struct Registry {
    client: Client,
    prefix: String,
}

impl Registry {
    /// Plain HTTP for a registry on loopback (a local or test registry),
    /// HTTPS for every other.
    pub fn new(prefix: &str) -> anyhow::Result<Self> {
        // oci-client is built without a default TLS crypto provider, as in
        // the controller: install ring's (an error means one is installed).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let prefix = prefix.trim_end_matches('/').to_string();
        let host = prefix.split('/').next().unwrap_or_default();
        let protocol = match is_loopback(host) {
            true => ClientProtocol::Http,
            false => ClientProtocol::Https,
        };
        let client = Client::try_from(ClientConfig {
            protocol,
            ..ClientConfig::default()
        })
        .context("building the OCI client")?;
        Ok(Registry { client, prefix })
    }

    /// `<registry>/<image>:<tag>`.
    pub fn reference(&self, image: &Image, tag: &str) -> String {
        format!("{}/{}:{tag}", self.prefix, image.name)
    }

    /// Pushes the image's blobs (those the registry lacks) and its manifest
    /// as `tag`, pulls the manifest back and checks its digest, and returns
    /// `REF@sha256:…`.
    pub async fn push(&self, image: &Image, tag: &str) -> anyhow::Result<String> {
        let name = self.reference(image, tag);
        let reference: Reference = name.parse().with_context(|| format!("parsing {name}"))?;
        // Anonymous: a registry that wants a login refuses with its reason.
        self.client
            .store_auth_if_needed(reference.resolve_registry(), &RegistryAuth::Anonymous)
            .await;
        for blob in image.blobs() {
            let present = self
                .client
                .blob_exists(&reference, &blob.digest)
                .await
                .with_context(|| format!("asking {name} for blob {}", blob.digest))?;
            if !present {
                self.client
                    .push_blob(&reference, blob.bytes.clone(), &blob.digest)
                    .await
                    .with_context(|| format!("pushing blob {} to {name}", blob.digest))?;
            }
        }
        let media_type = HeaderValue::from_static(image.manifest.media_type);
        self.client
            .push_manifest_raw(&reference, image.manifest.bytes.clone(), media_type)
            .await
            .with_context(|| format!("pushing the manifest of {name}"))?;
        let digest = self.pulled_manifest_digest(&reference).await?;
        ensure!(
            digest == image.manifest.digest,
            "{name} was pushed as {} but the registry serves {digest}",
            image.manifest.digest
        );
        Ok(format!("{name}@{digest}"))
    }

    /// Pulls a manifest and returns the digest of the bytes served, after
    /// checking it is the digest the registry names.
    pub async fn pulled_manifest_digest(&self, reference: &Reference) -> anyhow::Result<String> {
        let (bytes, named) = self
            .client
            .pull_manifest_raw(
                reference,
                &RegistryAuth::Anonymous,
                &[oci_client::manifest::OCI_IMAGE_MEDIA_TYPE],
            )
            .await
            .with_context(|| format!("pulling the manifest of {reference}"))?;
        let digest = sha256_digest(&bytes);
        ensure!(
            digest == named,
            "the registry names {reference}'s manifest {named} but its bytes are {digest}"
        );
        Ok(digest)
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
