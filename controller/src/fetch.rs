//! Module bytes from the network: `http(s)://` URLs and OCI registries.
//!
//! Fetches run on the calling thread (the directory follower's, or the
//! startup read's before the API listens) on a small runtime of their own,
//! so a slow server delays the next state, never the API. Every fetch is
//! bounded in size and in time, and its error names the cause.

mod http;
mod oci;
mod oci_layer;

use std::time::Duration;

/// The largest module the controller fetches; proxies keep every module
/// they run in memory, so this bounds them too.
pub const MAX_MODULE_BYTES: u64 = 64 << 20;
/// One whole fetch: connect, headers and body (for OCI, manifest and layer).
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Fetches modules over http(s) and pulls them from OCI registries.
pub struct Fetcher {
    /// Refuses every fetch: unit tests must not reach the network.
    offline: bool,
    runtime: tokio::runtime::Runtime,
    http: reqwest::Client,
    registries: oci::Registries,
}

#[derive(Debug, thiserror::Error)]
pub enum FetcherError {
    #[error("starting the fetcher's runtime: {0}")]
    Runtime(#[source] std::io::Error),
    #[error("building the {what} client: {reason}")]
    Client { what: &'static str, reason: String },
}

impl Fetcher {
    pub fn new() -> Result<Self, FetcherError> {
        // reqwest and oci-client are built without a default TLS crypto
        // provider (ring builds faster than aws-lc-rs): install ring's. An
        // error only means one is installed already.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(FetcherError::Runtime)?;
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(FETCH_TIMEOUT)
            .build()
            .map_err(|e| FetcherError::Client {
                what: "HTTP",
                reason: causes(&e),
            })?;
        let registries = oci::Registries::new().map_err(|reason| FetcherError::Client {
            what: "OCI",
            reason,
        })?;
        Ok(Fetcher {
            offline: false,
            runtime,
            http,
            registries,
        })
    }

    /// A fetcher that refuses every fetch, for tests of what a refused
    /// module does.
    #[cfg(test)]
    pub fn offline() -> Self {
        Fetcher {
            offline: true,
            ..Fetcher::new().expect("a fetcher")
        }
    }

    fn refuse_offline(&self) -> Result<(), String> {
        match self.offline {
            true => Err("not fetched: this fetcher is offline".to_string()),
            false => Ok(()),
        }
    }

    /// The bytes at an `http://` or `https://` URL.
    pub fn http(&self, url: &str) -> Result<Vec<u8>, String> {
        self.refuse_offline()
            .map_err(|reason| format!("fetching {url}: {reason}"))?;
        self.runtime
            .block_on(http::fetch(&self.http, url))
            .map_err(|reason| format!("fetching {url}: {reason}"))
    }

    /// The module in OCI image `image` (a reference without `oci://`).
    /// Registry credentials are not read yet, so a pull secret is refused
    /// rather than ignored.
    pub fn oci(&self, image: &str, pull_secret: Option<&str>) -> Result<Vec<u8>, String> {
        self.refuse_offline()
            .map_err(|reason| format!("pulling oci://{image}: {reason}"))?;
        let pull = async {
            if let Some(secret) = pull_secret {
                return Err(format!(
                    "imagePullSecret {secret:?} is not supported yet: only anonymous pulls work"
                ));
            }
            match tokio::time::timeout(FETCH_TIMEOUT, self.registries.pull(image)).await {
                Ok(pulled) => pulled,
                Err(_) => Err(format!("no answer within {FETCH_TIMEOUT:?}")),
            }
        };
        self.runtime
            .block_on(pull)
            .map_err(|reason| format!("pulling oci://{image}: {reason}"))
    }
}

/// An error and its sources, `: `-separated: the last one usually says
/// what went wrong (`Connection refused`), the first where.
fn causes(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        // Some errors repeat their source in their own message.
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

fn too_large() -> String {
    format!("the module is larger than {} MiB", MAX_MODULE_BYTES >> 20)
}
