//! Weighted traffic splitting as a Weft plugin, as SMI's TrafficSplit and
//! Gateway API's HTTPRoute `backendRefs` describe it: requests that match a
//! route go to one of its backends, chosen at random by weight.
//!
//! ```json
//! {
//!   "clusterDomain": "cluster.local",
//!   "routes": [
//!     {"name": "web-canary",
//!      "authority": "web.default.svc.cluster.local:8080",
//!      "pathPrefix": "/",
//!      "headers": {"x-canary": "true"},
//!      "backends": [
//!        {"backend": "127.0.0.1:9001", "weight": 900},
//!        {"name": "web-v2", "namespace": "default", "port": 8080, "weight": 100}
//!      ]}
//!   ]
//! }
//! ```
//!
//! - `routes` are tried in order and the first whose every given match holds
//!   takes the request; with none, the request goes on untouched. Matches:
//!   `authority` (compared exactly with the request's authority, so
//!   `web:8080` does not match a request for `web`), `pathPrefix` (whole
//!   segments: `/api` matches `/api/x` and `/api?q`, not `/apix`),
//!   `headers` (each named header's first value equals the given one
//!   exactly) and `match`, the SDK's shared request match (`methods`,
//!   `pathPrefix`, `pathRegex`, `authority`, `all`, `any`, `not`; see
//!   `weft_plugin_sdk::route_match`). `name` labels the route's metrics
//!   (default: its index).
//! - Each backend is `backend` (`host:port`) or Gateway API's `name` and
//!   `port` with an optional `namespace` (default `default`), meaning
//!   `name.namespace.svc.<clusterDomain>:port`; `clusterDomain` defaults to
//!   `cluster.local`. `weight` defaults to 1; 0 keeps a backend configured
//!   but unused. A route's weights must add up to between 1 and 2^32 - 1.
//!
//! The chosen backend is set with `set-backend`, where the proxy and later
//! plugins see it (`backend()`; the metrics plugin labels by it). Counter:
//! `{inbound,outbound}_split_requests_total{route, backend}`.

mod config;
mod route;
mod telemetry;

use weft_plugin_sdk::random::random_u64;
use weft_plugin_sdk::{Hooks, Plugin, Request, RequestAction, export_plugin};

use route::{RequestView, Route};
use telemetry::Telemetry;

struct Split {
    routes: Vec<Route>,
    telemetry: Telemetry,
}

impl Plugin for Split {
    fn init(config: &str) -> Result<Self, String> {
        Ok(Split {
            routes: config::parse(config)?,
            telemetry: Telemetry::register()?,
        })
    }

    fn hooks() -> Hooks {
        Hooks::REQUEST
    }

    /// With no routes every request goes where its authority says.
    fn configured_hooks(&self) -> Hooks {
        match self.routes.is_empty() {
            true => Hooks::empty(),
            false => Hooks::REQUEST,
        }
    }

    fn on_request(&self, req: &Request) -> RequestAction {
        let Some((route_index, route)) = route::select(&self.routes, req) else {
            return RequestAction::Continue;
        };
        let backend_index = route.choose(random_u64());
        let backend = &route.backends[backend_index].address;
        req.set_backend(backend);
        self.telemetry.record(
            req.direction(),
            (route_index, &route.name),
            (backend_index, backend),
        );
        weft_plugin_sdk::debug!("route `{}` sent the request to {backend}", route.name);
        RequestAction::Continue
    }
}

/// Headers cross from the proxy one at a time, when a route names them.
impl RequestView for Request<'_> {
    fn header(&self, name: &str) -> Option<String> {
        Request::header(self, name)
    }
}

export_plugin!(Split);
