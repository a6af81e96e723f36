//! Linkerd's golden HTTP metrics, with Linkerd's names and labels, so
//! existing dashboards and queries work unchanged:
//!
//! - `request_total{direction, authority, tls, client_id, dst_backend,
//!   dst_namespace, dst_service, dst_pod, dst_deployment, dst_serviceaccount}`
//! - `response_total{…same…, status_code, classification}`
//! - `response_latency_ms{…same…, status_code, classification}`
//!
//! `client_id` is the identity an inbound client proved with mTLS, empty
//! otherwise. `dst_backend` is the backend a plugin (such as the traffic
//! split) chose, empty when routing followed the authority. The other
//! `dst_*` labels name the endpoint of a discovered service that answered
//! an outbound request (empty inbound, and for plain addresses).
//!
//! Everything is counted in `on_complete`, once per request. A request that
//! got no response counts in `response_total` as a `failure` with an empty
//! `status_code`, so success rates see it; it has no latency to observe.
//!
//! With no configuration (or `{}`), that is all, and `classification` is
//! `failure` for 5xx. A configuration names routes, as a ServiceProfile's:
//!
//! ```json
//! {"routes": [{"name": "GET /books/{id}",
//!              "match": {"methods": ["GET"], "pathRegex": "/books/[^/]+"},
//!              "responseClasses": [{"condition": {"status": {"min": 500, "max": 599}},
//!                                   "isFailure": true}]}]}
//! ```
//!
//! A request counts under the first route whose `match` (the SDK's shared
//! request match) it fits, in Linkerd's per-route families
//! `route_request_total{direction, dst, rt_route}`,
//! `route_response_total{…, status_code, classification}` and
//! `route_response_latency_ms{…same…}`, with `dst` its authority. The
//! route's `responseClasses` decide `classification`, in these families
//! and in the golden ones: the first class whose `condition` (`status`
//! `{min, max}`, or `all`/`any`/`not` of conditions) holds says whether the
//! response failed (`isFailure`, default false); with none, 5xx fail.
//! Requests that take no route count in the golden families alone.
//!
//! `authority` is whatever `Host` a client sends, so the number of series
//! is bounded twice: the proxy keeps the plugin's first `metricSeriesLimit`
//! series per family and counts the rest as dropped, and the handles kept
//! here are a bounded [`SeriesCache`].

mod classification;
mod config;
mod labels;
mod response_class;
mod route_metrics;

use weft_plugin_sdk::metrics::{
    self, CounterFamily, CounterSeries, HistogramFamily, HistogramSeries, SeriesCache,
};
use weft_plugin_sdk::{Completion, Direction, Hooks, Plugin, Request, export_plugin};

use classification::{classification, status_code_label, tls_label};
use labels::{Destination, Labels};
use route_metrics::RouteMetrics;

/// Linkerd's response latency buckets, in milliseconds.
const LATENCY_BUCKETS_MS: [f64; 25] = [
    1.0, 2.0, 3.0, 4.0, 5.0, 10.0, 20.0, 30.0, 40.0, 50.0, 100.0, 200.0, 300.0, 400.0, 500.0,
    1000.0, 2000.0, 3000.0, 4000.0, 5000.0, 10000.0, 20000.0, 30000.0, 40000.0, 50000.0,
];

/// `response_total`'s and `response_latency_ms`'s labels; `request_total`
/// has all but the last two.
const RESPONSE_LABELS: [&str; 12] = [
    "direction",
    "authority",
    "tls",
    "client_id",
    "dst_backend",
    "dst_namespace",
    "dst_service",
    "dst_pod",
    "dst_deployment",
    "dst_serviceaccount",
    "status_code",
    "classification",
];
const REQUEST_LABELS: &[&str] = RESPONSE_LABELS.split_at(RESPONSE_LABELS.len() - 2).0;

struct GoldenMetrics {
    requests: CounterFamily,
    responses: CounterFamily,
    latency: HistogramFamily,
    cache: SeriesCache<Labels, Series>,
    /// None without configured routes: their families are not registered.
    routes: Option<RouteMetrics>,
}

/// The handles one completed request records into.
#[derive(Clone, Copy)]
struct Series {
    request: CounterSeries,
    response: CounterSeries,
    /// None when no response came: there is no latency to observe.
    latency: Option<HistogramSeries>,
}

impl Plugin for GoldenMetrics {
    fn init(config: &str) -> Result<Self, String> {
        let routes = config::parse(config)?;
        // Counter names without `_total`: the proxy's renderer appends it.
        Ok(GoldenMetrics {
            requests: metrics::register_counter(
                "request",
                "Total count of HTTP requests.",
                REQUEST_LABELS,
            )?,
            responses: metrics::register_counter(
                "response",
                "Total count of HTTP responses.",
                &RESPONSE_LABELS,
            )?,
            latency: metrics::register_histogram(
                "response_latency_ms",
                "Elapsed times between a request's headers being received \
                 and its response's headers being sent.",
                &RESPONSE_LABELS,
                &LATENCY_BUCKETS_MS,
            )?,
            cache: SeriesCache::default(),
            routes: match routes.is_empty() {
                true => None,
                false => Some(RouteMetrics::register(routes, &LATENCY_BUCKETS_MS)?),
            },
        })
    }

    fn hooks() -> Hooks {
        Hooks::COMPLETION
    }

    fn on_complete(&self, req: &Request, completion: &Completion) {
        let direction = req.direction();
        let status = completion.status;
        let latency_ms = completion.response_latency_us as f64 / 1000.0;
        let failure = match &self.routes {
            Some(routes) => routes.record(req, direction, status, latency_ms),
            None => response_class::is_failure(&[], status),
        };
        let destination = match direction {
            Direction::Outbound => Destination::from_labels(req.destination_labels()),
            Direction::Inbound => Destination::default(),
        };
        let labels = Labels {
            direction: direction.as_str(),
            authority: req.authority().unwrap_or_default().to_string(),
            tls: req.tls(),
            client_id: req.peer_identity().unwrap_or_default().to_string(),
            backend: req.backend().unwrap_or_default(),
            destination,
            status,
            failure,
        };
        match self
            .cache
            .get_or_create(labels, |labels| self.series(labels))
        {
            Ok(series) => record(series, latency_ms),
            Err(err) => weft_plugin_sdk::warn!("metric series refused: {err}"),
        }
    }
}

/// A request's counts and latency, in one crossing for the three.
fn record(series: Series, latency_ms: f64) {
    let adds = [(series.request, 1), (series.response, 1)];
    match series.latency {
        Some(latency) => metrics::record(&adds, &[(latency, latency_ms)]),
        None => metrics::record(&adds, &[]),
    }
}

impl GoldenMetrics {
    /// Looks the series for `labels` up in the proxy.
    fn series(&self, labels: &Labels) -> Result<Series, String> {
        let tls = tls_label(labels.tls);
        let status_code = status_code_label(labels.status);
        let [namespace, service, pod, deployment, serviceaccount] = &labels.destination.0;
        let response_labels = [
            labels.direction,
            &labels.authority,
            tls,
            &labels.client_id,
            &labels.backend,
            namespace,
            service,
            pod,
            deployment,
            serviceaccount,
            &status_code,
            classification(labels.failure),
        ];
        Ok(Series {
            request: self
                .requests
                .series(&response_labels[..REQUEST_LABELS.len()])?,
            response: self.responses.series(&response_labels)?,
            latency: match labels.status {
                Some(_) => Some(self.latency.series(&response_labels)?),
                None => None,
            },
        })
    }
}

export_plugin!(GoldenMetrics);
