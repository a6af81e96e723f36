//! The names the chart gives the control plane's objects (the contract
//! between the chart and the controller), as the checks look for them.

pub use weft_inject::settings::{PROXY_CONTAINER, TRUST_ROOTS_CONFIG_MAP, TRUST_ROOTS_KEY};

pub const CRD: &str = "wasmplugins.weft.io";
pub const CONTROLLER: &str = "weft-controller";
pub const CONTROLLER_LABEL_SELECTOR: &str = "app.kubernetes.io/name=weft-controller";
/// The control plane's version: the controller's image tag.
pub const VERSION_LABEL: &str = "app.kubernetes.io/version";
pub const ISSUER_SECRET: &str = "weft-identity-issuer";
pub const WEBHOOK_SECRET: &str = "weft-webhook-tls";
pub const WEBHOOK_CONFIGURATION: &str = "weft-proxy-injector";
/// The name the API server checks the webhook's certificate against.
pub const WEBHOOK_DNS_NAME: &str = "weft-webhook.weft-system.svc";
