//! The test file `weft plugin test` reads: requests, the upstream's answer,
//! and what should come out, in YAML.
//!
//! ```yaml
//! config: {name: x-hello, value: world}   # the plugin's config, for every case
//! cases:
//!   - name: sets the header on requests
//!     request: {method: GET, path: /, headers: {host: app.example}}
//!     expect:
//!       requestHeaders: {x-hello: world}
//! ```

use std::collections::BTreeMap;

use serde::Deserialize;
use weft_plugins::{DEFAULT_MEMORY_LIMIT_BYTES, DEFAULT_TIMEOUT_MS};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TestFile {
    /// The plugin's configuration, as in the proxy's plugin file: a string
    /// as is, anything else as JSON.
    #[serde(default)]
    pub config: serde_json::Value,
    /// The limits the plugin runs under, as in the proxy's plugin file;
    /// the proxy's defaults when not given.
    pub timeout_ms: Option<u64>,
    pub memory_limit_bytes: Option<usize>,
    pub cases: Vec<Case>,
}

impl TestFile {
    pub fn limits(&self) -> Limits {
        Limits {
            timeout_ms: self.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS),
            memory_limit_bytes: self
                .memory_limit_bytes
                .unwrap_or(DEFAULT_MEMORY_LIMIT_BYTES),
        }
    }
}

/// What a plugin may spend, as the proxy enforces it.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct Limits {
    /// The most time one hook call may take.
    #[arg(long, default_value_t = DEFAULT_TIMEOUT_MS)]
    pub timeout_ms: u64,
    /// The most linear memory an instance may grow to.
    #[arg(long, default_value_t = DEFAULT_MEMORY_LIMIT_BYTES)]
    pub memory_limit_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            timeout_ms: DEFAULT_TIMEOUT_MS,
            memory_limit_bytes: DEFAULT_MEMORY_LIMIT_BYTES,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Case {
    pub name: String,
    /// This case's configuration instead of the file's.
    #[serde(default)]
    pub config: Option<serde_json::Value>,
    #[serde(default)]
    pub request: TestRequest,
    /// What upstream answers, when the request gets there.
    #[serde(default)]
    pub response: TestResponse,
    pub expect: Expect,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TestRequest {
    #[serde(default = "get")]
    pub method: String,
    #[serde(default = "root")]
    pub path: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub direction: TestDirection,
    /// The client's mesh identity; set means it came over mTLS.
    #[serde(default)]
    pub peer_identity: Option<String>,
    #[serde(default = "client_addr")]
    pub client_addr: String,
    #[serde(default = "local_port")]
    pub local_port: u16,
}

impl Default for TestRequest {
    fn default() -> Self {
        Self {
            method: get(),
            path: root(),
            headers: BTreeMap::new(),
            direction: TestDirection::default(),
            peer_identity: None,
            client_addr: client_addr(),
            local_port: local_port(),
        }
    }
}

#[derive(Debug, Default, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TestDirection {
    #[default]
    Inbound,
    Outbound,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TestResponse {
    #[serde(default = "ok")]
    pub status: u16,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

impl Default for TestResponse {
    fn default() -> Self {
        Self {
            status: ok(),
            headers: BTreeMap::new(),
        }
    }
}

/// What should come out; only what is written is checked.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Expect {
    /// The status the client gets: the plugin's own answer, upstream's, or
    /// 500 when the plugin failed.
    pub status: Option<u16>,
    /// The body of the plugin's own answer.
    pub body: Option<String>,
    /// Headers of the request as it goes upstream; `null` means absent.
    #[serde(default)]
    pub request_headers: BTreeMap<String, Option<String>>,
    /// Headers of the response the client gets; `null` means absent.
    #[serde(default)]
    pub response_headers: BTreeMap<String, Option<String>>,
    /// The backend the request was sent to (`set-backend`); `null`: none chosen.
    #[serde(default, deserialize_with = "some")]
    pub backend: Option<Option<String>>,
    /// Whether the plugin asked for the request to be sent again.
    pub retry: Option<bool>,
    /// Lines of the proxy's `/metrics` text that must be there once the
    /// case is done, e.g. `my_requests_total{status="200"} 1`. Metrics add
    /// up over the cases of a file, in order.
    #[serde(default)]
    pub metrics: Vec<String>,
    /// Part of the reason the plugin failed (trap, deadline, memory).
    pub failure: Option<String>,
}

/// `backend: null` is an expectation too (no backend chosen), unlike a
/// missing `backend`.
fn some<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

fn get() -> String {
    "GET".into()
}

fn root() -> String {
    "/".into()
}

fn client_addr() -> String {
    "10.0.0.7:41000".into()
}

fn local_port() -> u16 {
    8080
}

fn ok() -> u16 {
    200
}
