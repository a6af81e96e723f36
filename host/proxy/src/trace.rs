//! Distributed tracing: one span per proxy hop, exported over OTLP/gRPC.
//!
//! With no collector configured the proxy has no `Tracer` and a request
//! costs one branch: headers are neither read nor touched. With one, a
//! request whose trace context is sampled (W3C `traceparent` or B3) gets a
//! span whose parent is the incoming span, and goes on carrying the new
//! span's id, so the next hop's span is its child. The decision is the
//! caller's: no context, or an unsampled one, means no span, and the
//! headers pass as they came.
//!
//! - `context`: reading and rewriting the headers;
//! - `export`: the bounded queue and the exporting task.

mod context;
mod export;

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use http::uri::Authority;
use http::{Request, StatusCode};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode as SpanStatus;
use opentelemetry_proto::tonic::trace::v1::{Span, Status};
use prometheus_client::registry::Registry;

use crate::Direction;
use crate::http::ConnectionInfo;
use crate::plugins::controller::Workload;

pub use export::SpanMetrics;

/// Makes this proxy's spans and hands them to the exporter.
pub struct Tracer {
    queue: export::Queue,
}

impl Tracer {
    /// Starts exporting to `collector` (`host:port`). The resource names
    /// this proxy's pod and namespace when it knows its workload.
    pub fn start(
        collector: &str,
        workload: Option<&Workload>,
        registry: &mut Registry,
    ) -> Result<Self, tonic::transport::Error> {
        let mut attributes = vec![attribute("service.name", "weft-proxy")];
        if let Some(workload) = workload {
            attributes.push(attribute("k8s.pod.name", &workload.pod));
            attributes.push(attribute("k8s.namespace.name", &workload.namespace));
        }
        let resource = Resource {
            attributes,
            ..Default::default()
        };
        let metrics = SpanMetrics::register(registry);
        let queue = export::start(collector, resource, metrics)?;
        Ok(Self { queue })
    }

    /// A span for this hop when the request's context is sampled; the
    /// request then carries the new span as the next hop's parent.
    pub fn start_span<B>(&self, req: &mut Request<B>, conn: &ConnectionInfo) -> Option<HopSpan> {
        let context = context::extract(req.headers())?;
        let span_id = new_span_id();
        context::inject(req.headers_mut(), &context, span_id);
        let mut attributes = vec![
            attribute("http.request.method", req.method().as_str()),
            attribute("url.path", req.uri().path()),
            attribute("direction", conn.direction.as_str()),
            attribute("client.address", &conn.client.ip().to_string()),
        ];
        let authority = req.uri().authority().cloned().or_else(|| {
            let host = req.headers().get(http::header::HOST)?;
            Authority::try_from(host.as_bytes()).ok()
        });
        if let Some(authority) = authority {
            attributes.push(attribute("server.address", authority.host()));
            if let Some(port) = authority.port_u16() {
                attributes.push(int_attribute("server.port", port.into()));
            }
        }
        if let Some(client_id) = &conn.client_id {
            attributes.push(attribute("tls.client.identity", client_id));
        }
        let (kind, name) = match conn.direction {
            Direction::Inbound => (SpanKind::Server, "inbound"),
            Direction::Outbound => (SpanKind::Client, "outbound"),
        };
        Some(HopSpan {
            queue: self.queue.clone(),
            span: Span {
                trace_id: context.trace_id.to_vec(),
                span_id: span_id.to_vec(),
                parent_span_id: context.parent_span_id.to_vec(),
                // The sampled flag, as received.
                flags: 1,
                name: format!("{name} {}", req.method()),
                kind: kind.into(),
                start_time_unix_nano: unix_nanos(SystemTime::now()),
                attributes,
                ..Default::default()
            },
        })
    }
}

/// A hop's span, from its request's arrival to its response's head.
pub struct HopSpan {
    queue: export::Queue,
    span: Span,
}

impl HopSpan {
    /// Ends the span with the response's status (and the proxy's reason
    /// when it answered an error itself) and queues it for export.
    pub fn finish(mut self, status: StatusCode, error: Option<&str>) {
        let span = &mut self.span;
        span.end_time_unix_nano = unix_nanos(SystemTime::now());
        span.attributes.push(int_attribute(
            "http.response.status_code",
            status.as_u16().into(),
        ));
        // OpenTelemetry's HTTP conventions: 5xx is a server's error, and
        // 4xx too for a client.
        let failed = status.is_server_error()
            || (status.is_client_error() && span.kind == i32::from(SpanKind::Client))
            || error.is_some();
        if failed {
            span.status = Some(Status {
                message: error.unwrap_or_default().to_string(),
                code: SpanStatus::Error.into(),
            });
        }
        self.queue.push(self.span);
    }
}

fn attribute(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
        ..Default::default()
    }
}

fn int_attribute(key: &str, value: i64) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::IntValue(value)),
        }),
        ..Default::default()
    }
}

fn unix_nanos(time: SystemTime) -> u64 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// A random, non-zero span id: a counter hashed under a key the standard
/// library draws from the OS once per process.
fn new_span_id() -> [u8; 8] {
    static KEY: OnceLock<RandomState> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    loop {
        let mut hasher = KEY.get_or_init(RandomState::new).build_hasher();
        hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
        let id = hasher.finish();
        if id != 0 {
            return id.to_be_bytes();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn span_ids_are_distinct_and_never_zero() {
        let ids: std::collections::HashSet<[u8; 8]> = (0..10_000).map(|_| new_span_id()).collect();
        assert_eq!(ids.len(), 10_000);
        assert!(!ids.contains(&[0; 8]));
    }
}
