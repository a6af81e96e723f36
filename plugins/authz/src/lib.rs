//! Linkerd's authorization policy as a Weft plugin: rules allow or deny by
//! client identity, client network, port, path and method, and a default
//! policy decides what no rule matches.
//!
//! ```json
//! {
//!   "defaultPolicy": "cluster-authenticated",
//!   "portPolicies": {"9090": "deny"},
//!   "clusterNetworks": ["10.0.0.0/8", "100.64.0.0/10", "172.16.0.0/12", "192.168.0.0/16"],
//!   "rules": [
//!     {"name": "no-admin", "action": "deny", "pathPrefixes": ["/admin"]},
//!     {"name": "web-reads",
//!      "identities": ["web.default.serviceaccount.identity.weft.cluster.local",
//!                     "*.prod.serviceaccount.identity.weft.cluster.local"],
//!      "clientCidrs": ["10.1.0.0/16", "::1/128"],
//!      "clientCidrsExcept": ["10.1.2.0/24"],
//!      "ports": [8080],
//!      "pathPrefixes": ["/api"],
//!      "methods": ["GET", "HEAD"]}
//!   ]
//! }
//! ```
//!
//! - `defaultPolicy` (default `all-unauthenticated`): `all-unauthenticated`
//!   allows everyone; `all-authenticated` needs a mesh identity;
//!   `cluster-unauthenticated` needs a client in `clusterNetworks`;
//!   `cluster-authenticated` needs both; `deny` denies; `audit` allows but
//!   logs (info) and counts with `authz_kind="audit"`.
//! - `portPolicies` maps a port (the JSON key, `"9090"`) to the default
//!   policy of traffic to that port, in place of `defaultPolicy` (Linkerd's
//!   Server, whose port denies what no authorization allows).
//! - `clusterNetworks` defaults to Linkerd's list, as above.
//! - `rules` are tried in order and the first that matches decides. Each has
//!   a unique `name` and an `action` (`allow`, the default, or `deny`); it
//!   matches when every field it gives matches: `identities` (exact, `*` for
//!   any identity, or `*.suffix` for one or more leading labels),
//!   `clientCidrs` (IPv4 or IPv6) less `clientCidrsExcept`, `ports` (the port the client connected
//!   to), `pathPrefixes` (whole segments: `/api` matches `/api/x` and
//!   `/api?q`, not `/apix`) and `methods` (upper case).
//!
//! HTTP is decided per request: a denied request is answered 403 (or gRPC
//! `PERMISSION_DENIED`), and its connection stays up. Opaque TCP is decided
//! per connection, skipping rules with `pathPrefixes` or `methods`; a denied
//! connection is closed.
//!
//! Counters, as Linkerd's: `{inbound,outbound}_{http,tcp}_authz_{allow,deny}_total`
//! with labels `target_port`, `authz_kind` (`rule`, `default`, `audit`) and
//! `authz_name` (the rule's or the default policy's name).

mod cidr;
mod config;
mod matchers;
mod policy;
mod response;
mod telemetry;

use weft_plugin_sdk::log::{self, Level};
use weft_plugin_sdk::{
    Connection, ConnectionAction, Hooks, Plugin, Protocol, Request, RequestAction, export_plugin,
};

use policy::{Attributes, Authz, Decision, HttpAttributes, Policy};
use telemetry::{Telemetry, Traffic};

struct Authorization {
    policy: Policy,
    telemetry: Telemetry,
}

impl Plugin for Authorization {
    fn init(config: &str) -> Result<Self, String> {
        Ok(Authorization {
            policy: config::parse(config)?,
            telemetry: Telemetry::register()?,
        })
    }

    fn hooks() -> Hooks {
        Hooks::CONNECTION | Hooks::REQUEST
    }

    fn on_connection(&self, conn: &Connection) -> ConnectionAction {
        // HTTP waits for its requests, so that a denial is a 403 the client
        // can read rather than a dropped connection.
        if !matches!(conn.protocol, Protocol::Opaque) {
            return ConnectionAction::Allow;
        }
        let identity = conn.peer_identity.as_deref();
        let attrs = Attributes {
            client_ip: cidr::client_ip(&conn.client_addr),
            local_port: conn.local_port,
            identity,
            http: None,
        };
        let decision = self.policy.decide(&attrs);
        self.telemetry.record(
            &self.policy,
            conn.direction,
            Traffic::Tcp,
            conn.local_port,
            decision,
        );
        let describe = || {
            format!(
                "connection from {} (identity {}) to port {}",
                conn.client_addr,
                identity.unwrap_or("none"),
                conn.local_port
            )
        };
        self.log(decision, describe);
        match decision.allowed {
            true => ConnectionAction::Allow,
            false => ConnectionAction::Deny,
        }
    }

    fn on_request(&self, req: &Request) -> RequestAction {
        // One crossing brings all of these.
        let client_addr = req.client_addr();
        let identity = req.peer_identity();
        let local_port = req.local_port();
        let attrs = Attributes {
            client_ip: cidr::client_ip(client_addr),
            local_port,
            identity,
            http: Some(HttpAttributes {
                method: req.method_name(),
                path: req.path(),
            }),
        };
        let decision = self.policy.decide(&attrs);
        self.telemetry.record(
            &self.policy,
            req.direction(),
            Traffic::Http,
            local_port,
            decision,
        );
        let describe = || {
            format!(
                "{} {} from {client_addr} (identity {}) to port {local_port}",
                req.method_name(),
                req.path(),
                identity.unwrap_or("none"),
            )
        };
        self.log(decision, describe);
        if decision.allowed {
            return RequestAction::Continue;
        }
        let grpc = response::is_grpc(req.header("content-type").as_deref());
        RequestAction::Respond(response::forbidden(
            &self.policy.describe(decision.authz),
            grpc,
        ))
    }
}

impl Authorization {
    /// Logs denials (debug) and audited traffic (info). `traffic` describes
    /// the request or connection; it is only called when the line is written.
    fn log(&self, decision: Decision, traffic: impl FnOnce() -> String) {
        let level = match (decision.allowed, decision.authz) {
            (false, _) => Level::Debug,
            (true, Authz::Audit) => Level::Info,
            (true, _) => return,
        };
        if !log::enabled(level) {
            return;
        }
        let verdict = if decision.allowed {
            "audit: allowed"
        } else {
            "denied"
        };
        let message = format!(
            "{verdict} {} by `{}`",
            traffic(),
            self.policy.describe(decision.authz)
        );
        log::write(level, &message);
    }
}

export_plugin!(Authorization);
