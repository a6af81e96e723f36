//! One proxy-wasm filter standing in for Weft's four shipped plugins, so
//! "Envoy + Wasm" does comparable work per request: read the method, path
//! and authority (what retry, authz and split match on), refuse `/admin`
//! (authz), pick a backend 900:100 and name it in a request header (split),
//! and count the response and its latency in metrics (metrics).

use std::cell::Cell;
use std::rc::Rc;
use std::time::SystemTime;

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel, MetricType};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Warn);
    proxy_wasm::set_root_context(|_| Box::new(Root::default()));
}}

/// Metric ids, defined once when the VM starts.
#[derive(Clone, Copy, Default)]
struct Metrics {
    requests: u32,
    failures: u32,
    latency_ms: u32,
}

#[derive(Default)]
struct Root {
    metrics: Metrics,
    /// Requests seen, shared with every request context: the split's
    /// deterministic stand-in for a weighted random pick.
    seen: Rc<Cell<u64>>,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_vm_start(&mut self, _: usize) -> bool {
        let define = |kind, name| hostcalls::define_metric(kind, name).unwrap_or_default();
        self.metrics = Metrics {
            requests: define(MetricType::Counter, "weft_bench_request_total"),
            failures: define(MetricType::Counter, "weft_bench_failure_total"),
            latency_ms: define(MetricType::Histogram, "weft_bench_response_latency_ms"),
        };
        true
    }

    fn create_http_context(&self, _: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Request {
            metrics: self.metrics,
            seen: self.seen.clone(),
            started: None,
            failed: true,
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Request {
    metrics: Metrics,
    seen: Rc<Cell<u64>>,
    started: Option<SystemTime>,
    /// No response, or a 5xx, counts as a failure, as Weft's metrics plugin
    /// classifies it.
    failed: bool,
}

impl Context for Request {}

impl HttpContext for Request {
    fn on_http_request_headers(&mut self, _: usize, _: bool) -> Action {
        self.started = Some(self.get_current_time());
        let method = self.get_http_request_header(":method").unwrap_or_default();
        let path = self.get_http_request_header(":path").unwrap_or_default();
        let authority = self
            .get_http_request_header(":authority")
            .unwrap_or_default();
        if path.starts_with("/admin") {
            self.send_http_response(403, vec![("x-weft-proxy-error", "unauthorized")], None);
            return Action::Pause;
        }
        let seen = self.seen.get();
        self.seen.set(seen.wrapping_add(1));
        let backend = if seen.is_multiple_of(10) { "v2" } else { "v1" };
        // Retry would only replay idempotent requests; the decision is the work.
        let replayable = matches!(method.as_str(), "GET" | "HEAD");
        if !authority.is_empty() && replayable {
            self.set_http_request_header("x-weft-backend", Some(backend));
        }
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _: usize, _: bool) -> Action {
        let status = self.get_http_response_header(":status").unwrap_or_default();
        self.failed = status.is_empty() || status.starts_with('5');
        Action::Continue
    }

    fn on_log(&mut self) {
        let _ = hostcalls::increment_metric(self.metrics.requests, 1);
        if self.failed {
            let _ = hostcalls::increment_metric(self.metrics.failures, 1);
        }
        let elapsed = self
            .started
            .and_then(|started| self.get_current_time().duration_since(started).ok());
        if let Some(elapsed) = elapsed {
            let ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
            let _ = hostcalls::record_metric(self.metrics.latency_ms, ms);
        }
    }
}
