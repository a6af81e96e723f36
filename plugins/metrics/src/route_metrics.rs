//! Linkerd's per-route metrics, for the routes a configuration names:
//! `route_request_total{direction, dst, rt_route}`,
//! `route_response_total{…, status_code, classification}` and
//! `route_response_latency_ms{…same…}`.

use weft_plugin_sdk::Direction;
use weft_plugin_sdk::metrics::{
    self, CounterFamily, CounterSeries, HistogramFamily, HistogramSeries, SeriesCache,
};
use weft_plugin_sdk::route_match::RequestFacts;

use crate::classification::{classification, status_code_label};
use crate::config::Route;
use crate::labels::RouteLabels;
use crate::response_class::is_failure;

const RESPONSE_LABELS: [&str; 5] = [
    "direction",
    "dst",
    "rt_route",
    "status_code",
    "classification",
];
const REQUEST_LABELS: &[&str] = RESPONSE_LABELS.split_at(3).0;

pub struct RouteMetrics {
    routes: Vec<Route>,
    requests: CounterFamily,
    responses: CounterFamily,
    latency: HistogramFamily,
    cache: SeriesCache<RouteLabels, Series>,
}

#[derive(Clone, Copy)]
struct Series {
    request: CounterSeries,
    response: CounterSeries,
    /// None when no response came.
    latency: Option<HistogramSeries>,
}

impl RouteMetrics {
    pub fn register(routes: Vec<Route>, buckets: &[f64]) -> Result<Self, String> {
        Ok(RouteMetrics {
            routes,
            requests: metrics::register_counter(
                "route_request",
                "Total count of HTTP requests, by route.",
                REQUEST_LABELS,
            )?,
            responses: metrics::register_counter(
                "route_response",
                "Total count of HTTP responses, by route.",
                &RESPONSE_LABELS,
            )?,
            latency: metrics::register_histogram(
                "route_response_latency_ms",
                "Elapsed times between a request's headers being received \
                 and its response's headers being sent, by route.",
                &RESPONSE_LABELS,
                buckets,
            )?,
            cache: SeriesCache::default(),
        })
    }

    /// Counts a completed request under the first route it takes, if any,
    /// and says whether it failed: by that route's response classes, or
    /// by 5xx when it took none.
    pub fn record(
        &self,
        req: &impl RequestFacts,
        direction: Direction,
        status: Option<u16>,
        latency_ms: f64,
    ) -> bool {
        let (route, failure) = classify(&self.routes, req, status);
        let Some(index) = route else { return failure };
        let labels = RouteLabels {
            direction: direction.as_str(),
            dst: req.authority().unwrap_or_default().to_string(),
            route: index,
            status,
            failure,
        };
        match self
            .cache
            .get_or_create(labels, |labels| self.series(labels))
        {
            Ok(series) => {
                let adds = [(series.request, 1), (series.response, 1)];
                match series.latency {
                    Some(latency) => metrics::record(&adds, &[(latency, latency_ms)]),
                    None => metrics::record(&adds, &[]),
                }
            }
            Err(err) => weft_plugin_sdk::warn!("route metric series refused: {err}"),
        }
        failure
    }

    fn series(&self, labels: &RouteLabels) -> Result<Series, String> {
        let status_code = status_code_label(labels.status);
        let values = [
            labels.direction,
            &labels.dst,
            &self.routes[labels.route].name,
            &status_code,
            classification(labels.failure),
        ];
        Ok(Series {
            request: self.requests.series(&values[..REQUEST_LABELS.len()])?,
            response: self.responses.series(&values)?,
            latency: match labels.status {
                Some(_) => Some(self.latency.series(&values)?),
                None => None,
            },
        })
    }
}

/// The first route `req` takes, and whether the request failed by that
/// route's response classes (by 5xx when it took none).
fn classify(
    routes: &[Route],
    req: &impl RequestFacts,
    status: Option<u16>,
) -> (Option<usize>, bool) {
    match routes.iter().position(|route| route.matcher.matches(req)) {
        Some(index) => (Some(index), is_failure(&routes[index].classes, status)),
        None => (None, is_failure(&[], status)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config;

    struct Get(&'static str);

    impl RequestFacts for Get {
        fn method(&self) -> &str {
            "GET"
        }

        fn authority(&self) -> Option<&str> {
            Some("books.ns.svc.cluster.local:8080")
        }

        fn path(&self) -> &str {
            self.0
        }
    }

    #[test]
    fn the_first_route_taken_classifies_the_response() {
        let routes = config::parse(
            r#"{"routes": [
                {"name": "GET /books/{id}", "match": {"pathRegex": "/books/[^/]+"},
                 "responseClasses": [{"condition": {"status": {"min": 404, "max": 404}},
                                      "isFailure": true},
                                     {"condition": {"status": {"min": 503, "max": 503}}}]},
                {"name": "books", "match": {"pathPrefix": "/books"}}
            ]}"#,
        )
        .unwrap();
        assert_eq!(
            classify(&routes, &Get("/books/7"), Some(404)),
            (Some(0), true)
        );
        assert_eq!(
            classify(&routes, &Get("/books/7"), Some(503)),
            (Some(0), false)
        );
        assert_eq!(
            classify(&routes, &Get("/books/7"), Some(500)),
            (Some(0), true)
        );
        assert_eq!(classify(&routes, &Get("/books/7"), None), (Some(0), true));
        assert_eq!(
            classify(&routes, &Get("/books"), Some(404)),
            (Some(1), false)
        );
        assert_eq!(
            classify(&routes, &Get("/authors"), Some(404)),
            (None, false)
        );
        assert_eq!(classify(&routes, &Get("/authors"), Some(502)), (None, true));
    }
}
