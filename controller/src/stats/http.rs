//! The stats API: JSON over HTTP, for the `weft` CLI and web pages alike.
//!
//! - `GET /api/v1/stat?kind=deploy[&name=N][&namespace=NS][&window=1m][&from=deploy/x][&to=svc/y]`
//!   → `{"rows": [StatRow…]}`
//! - `GET /api/v1/edges?kind=deploy[&namespace=NS][&window=1m]` → `{"edges": [Edge…]}`
//! - `GET /api/v1/routes?target=svc/N&namespace=NS[&window=1m][&to=svc/M][&to_namespace=NS2]`
//!   → `{"routes": [RouteRow…]}` (`to` only with a workload target)
//! - `GET /api/v1/workloads[?namespace=NS]` → `{"workloads": […], "plugins": […]}`:
//!   each pod's plugin chain and every WasmPlugin's verdict
//! - `GET /api/v1/tap?resource=deploy/N&namespace=NS[&path=][&method=][&authority=][&status=500-599][&max_rps=10][&limit=100]`
//!   → server-sent events, one per tap event (`crate::dashboard::tap`)
//! - `GET /`: the dashboard (`crate::dashboard`)
//!
//! A bad parameter is a 400 and a source that cannot answer a 502, each
//! with `{"error": "…"}`. Without `namespace`, `stat` and `edges` cover every
//! namespace and `routes` reads `default`. Requests whose `Host` is a name
//! other than `localhost` are refused (403), so that no web page can read
//! the mesh's figures or tap it through a browser on this machine.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt;
use http::{Method, Request, Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use serde::Serialize;
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::{
    EdgesQuery, MetricsSource, Resource, ResourceKind, RoutesQuery, ServiceRef, StatQuery, edges,
    parse_window, routes, stat,
};
use crate::dashboard;
use crate::index::PodSummary;
use crate::state::State;
use crate::tap::TapRelayApi;

/// The window when a request names none, as Linkerd's.
pub const DEFAULT_WINDOW: &str = "1m";

#[derive(Clone)]
pub struct StatsApi {
    source: Arc<dyn MetricsSource>,
    state: watch::Receiver<Arc<State>>,
    /// Serves `/api/v1/tap`; without it the dashboard has no live tap.
    tap: Option<TapRelayApi>,
}

/// A response body: JSON or a page in one piece, or a stream of events.
pub type Body = UnsyncBoxBody<Bytes, Infallible>;

impl StatsApi {
    pub fn new(source: Arc<dyn MetricsSource>, state: watch::Receiver<Arc<State>>) -> Self {
        StatsApi {
            source,
            state,
            tap: None,
        }
    }

    /// Serves the tap relay's streams at `/api/v1/tap` too.
    pub fn with_tap(mut self, tap: TapRelayApi) -> Self {
        self.tap = Some(tap);
        self
    }

    /// Serves connections from `listener` until the process ends.
    pub async fn serve(self, listener: TcpListener) {
        loop {
            let Ok((connection, _)) = listener.accept().await else {
                continue;
            };
            let api = self.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request| {
                    let api = api.clone();
                    async move { Ok::<_, Infallible>(api.respond(request).await) }
                });
                let served = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(connection), service)
                    .await;
                if let Err(error) = served {
                    tracing::debug!(%error, "stats API connection failed");
                }
            });
        }
    }

    pub async fn respond<B>(&self, request: Request<B>) -> Response<Body> {
        if request.method() != Method::GET {
            return error(StatusCode::METHOD_NOT_ALLOWED, "only GET".into());
        }
        let host = match request.headers().get(http::header::HOST) {
            Some(host) => host.to_str().ok(),
            None => request.uri().authority().map(|a| a.as_str()),
        };
        if !dashboard::local_host(host) {
            let message = "this API answers only to localhost or an IP address as the Host";
            return error(StatusCode::FORBIDDEN, message.into());
        }
        let path = request.uri().path();
        if let Some((content_type, body)) = dashboard::asset(path) {
            return page(content_type, body);
        }
        let params = params(request.uri().query().unwrap_or(""));
        let answer = match path {
            "/api/v1/stat" => self.stat(&params).await,
            "/api/v1/edges" => self.edges(&params).await,
            "/api/v1/routes" => self.routes(&params).await,
            "/api/v1/workloads" => Ok(self.workloads(&params)),
            "/api/v1/tap" => return self.tap(&params).await,
            _ => Err((StatusCode::NOT_FOUND, "not found".into())),
        };
        match answer {
            Ok(body) => json(StatusCode::OK, body),
            Err((status, message)) => error(status, message),
        }
    }

    async fn stat(&self, params: &Params) -> Answer {
        let query = stat_query(params).map_err(bad_request)?;
        let pods: Vec<PodSummary> = self.state.borrow().index.pod_summaries().collect();
        let rows = stat(self.source.as_ref(), Some(&pods), &query)
            .await
            .map_err(unanswered)?;
        Ok(serde_json::json!({ "rows": rows }))
    }

    async fn edges(&self, params: &Params) -> Answer {
        let query = edges_query(params).map_err(bad_request)?;
        let edges = edges(self.source.as_ref(), &query)
            .await
            .map_err(unanswered)?;
        Ok(serde_json::json!({ "edges": edges }))
    }

    fn workloads(&self, params: &Params) -> serde_json::Value {
        let state = self.state.borrow().clone();
        dashboard::workloads(&state, param(params, "namespace").unwrap_or(""))
    }

    async fn tap(&self, params: &Params) -> Response<Body> {
        let Some(relay) = &self.tap else {
            let message = "this controller has no tap relay";
            return error(StatusCode::NOT_FOUND, message.into());
        };
        let request = match dashboard::tap::request(params) {
            Ok(request) => request,
            Err(message) => return error(StatusCode::BAD_REQUEST, message),
        };
        match dashboard::tap::open(relay, request).await {
            Ok(events) => {
                let frames = events.map(|chunk| Ok(hyper::body::Frame::data(chunk)));
                Response::builder()
                    .header(http::header::CONTENT_TYPE, "text/event-stream")
                    .header(http::header::CACHE_CONTROL, "no-store")
                    .body(StreamBody::new(frames).boxed_unsync())
                    .expect("a valid response")
            }
            Err((status, message)) => error(status, message),
        }
    }

    async fn routes(&self, params: &Params) -> Answer {
        let query = routes_query(params).map_err(bad_request)?;
        let routes = routes(self.source.as_ref(), &query)
            .await
            .map_err(unanswered)?;
        Ok(serde_json::json!({ "routes": routes }))
    }
}

type Params = HashMap<String, String>;
type Answer = Result<serde_json::Value, (StatusCode, String)>;

fn params(query: &str) -> Params {
    reqwest::Url::parse(&format!("http://stats/?{query}"))
        .map(|url| url.query_pairs().into_owned().collect())
        .unwrap_or_default()
}

fn param<'a>(params: &'a Params, name: &str) -> Option<&'a str> {
    params
        .get(name)
        .map(String::as_str)
        .filter(|v| !v.is_empty())
}

fn window(params: &Params) -> Result<std::time::Duration, String> {
    parse_window(param(params, "window").unwrap_or(DEFAULT_WINDOW))
}

fn resource(params: &Params, name: &str) -> Result<Option<Resource>, String> {
    param(params, name)
        .map(|text| text.parse().map_err(|e| format!("{name}: {e}")))
        .transpose()
}

pub fn stat_query(params: &Params) -> Result<StatQuery, String> {
    let kind: ResourceKind = param(params, "kind").ok_or("kind is required")?.parse()?;
    Ok(StatQuery {
        kind,
        name: param(params, "name").map(String::from),
        namespace: param(params, "namespace").map(String::from),
        window: window(params)?,
        from: resource(params, "from")?,
        to: resource(params, "to")?,
    })
}

pub fn edges_query(params: &Params) -> Result<EdgesQuery, String> {
    Ok(EdgesQuery {
        kind: param(params, "kind").ok_or("kind is required")?.parse()?,
        namespace: param(params, "namespace").map(String::from),
        window: window(params)?,
    })
}

pub fn routes_query(params: &Params) -> Result<RoutesQuery, String> {
    let target = resource(params, "target")?.ok_or("target is required, e.g. svc/web")?;
    let namespace = param(params, "namespace").unwrap_or("default").to_string();
    let to = match resource(params, "to")? {
        None => None,
        Some(_) if target.kind == ResourceKind::Service => {
            return Err(
                "to: a Service's routes are already those to it; give a workload, e.g. deploy/web"
                    .into(),
            );
        }
        Some(to) if to.kind != ResourceKind::Service => {
            return Err(format!(
                "to: routes are to a Service, e.g. svc/books, not `{}`",
                to.kind
            ));
        }
        Some(to) => Some(ServiceRef {
            name: to.name,
            namespace: param(params, "to_namespace")
                .unwrap_or(&namespace)
                .to_string(),
        }),
    };
    Ok(RoutesQuery {
        target,
        namespace,
        window: window(params)?,
        to,
    })
}

fn bad_request(message: String) -> (StatusCode, String) {
    (StatusCode::BAD_REQUEST, message)
}

fn unanswered(error: super::SourceError) -> (StatusCode, String) {
    (StatusCode::BAD_GATEWAY, error.to_string())
}

fn json(status: StatusCode, body: impl Serialize) -> Response<Body> {
    let body = serde_json::to_vec(&body).expect("JSON of plain values");
    Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body)).boxed_unsync())
        .expect("a valid response")
}

fn page(content_type: &'static str, body: &'static str) -> Response<Body> {
    Response::builder()
        .header(http::header::CONTENT_TYPE, content_type)
        // The page reads the API from its own origin only.
        .header(
            http::header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; frame-ancestors 'none'",
        )
        .body(Full::new(Bytes::from_static(body.as_bytes())).boxed_unsync())
        .expect("a valid response")
}

fn error(status: StatusCode, message: String) -> Response<Body> {
    json(status, serde_json::json!({ "error": message }))
}
