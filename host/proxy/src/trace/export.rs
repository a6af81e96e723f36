//! Finished spans go to the collector over OTLP/gRPC from a background
//! task. Requests only ever `try_send` into a bounded queue: a full queue
//! drops the span and counts it, so a slow or absent collector never holds
//! a request up. A failed export drops its batch, logs once, and waits a
//! backoff before the next, while the queue sheds what arrives meanwhile.

use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use tokio::sync::mpsc;
use tonic::transport::{Channel, Endpoint};

/// Spans waiting for export; past this, new ones are dropped.
pub const QUEUE: usize = 2048;
/// Spans per export call, at most.
const BATCH: usize = 512;
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
const BACKOFF_MIN: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(60);

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DropLabels {
    /// `queue_full` or `export_failed` (including spans the collector refused).
    reason: &'static str,
}

/// `trace_spans_exported_total` and `trace_spans_dropped_total{reason}`.
#[derive(Clone, Default)]
pub struct SpanMetrics {
    exported: Counter,
    dropped: Family<DropLabels, Counter>,
}

impl SpanMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let this = Self::default();
        registry.register(
            "trace_spans_exported",
            "Spans the trace collector accepted",
            this.exported.clone(),
        );
        registry.register(
            "trace_spans_dropped",
            "Spans lost: the export queue was full, or the collector failed or refused them",
            this.dropped.clone(),
        );
        this
    }

    fn dropped(&self, reason: &'static str, n: usize) {
        self.dropped
            .get_or_create(&DropLabels { reason })
            .inc_by(n as u64);
    }
}

/// The requests' end of the queue.
#[derive(Clone)]
pub struct Queue {
    tx: mpsc::Sender<Span>,
    metrics: SpanMetrics,
}

impl Queue {
    /// Never waits: a full queue loses the span, and counts it.
    pub fn push(&self, span: Span) {
        if self.tx.try_send(span).is_err() {
            self.metrics.dropped("queue_full", 1);
        }
    }
}

/// The collector's channel (connected lazily, so an absent collector costs
/// nothing until spans are exported), and the queue feeding it; the
/// exporting task runs until the queue's senders are gone.
pub fn start(
    collector: &str,
    resource: Resource,
    metrics: SpanMetrics,
) -> Result<Queue, tonic::transport::Error> {
    let channel = Endpoint::from_shared(format!("http://{collector}"))?
        .connect_timeout(CONNECT_TIMEOUT)
        .connect_lazy();
    let (tx, rx) = mpsc::channel(QUEUE);
    tokio::spawn(export(
        collector.to_string(),
        TraceServiceClient::new(channel),
        rx,
        resource,
        metrics.clone(),
    ));
    Ok(Queue { tx, metrics })
}

async fn export(
    collector: String,
    mut client: TraceServiceClient<Channel>,
    mut rx: mpsc::Receiver<Span>,
    resource: Resource,
    metrics: SpanMetrics,
) {
    let scope = InstrumentationScope {
        name: "weft-proxy".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        ..Default::default()
    };
    let mut batch = Vec::with_capacity(BATCH);
    let mut backoff = BACKOFF_MIN;
    // Whatever is queued goes in one call: batches grow with the load.
    while rx.recv_many(&mut batch, BATCH).await > 0 {
        let n = batch.len();
        let request = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(resource.clone()),
                scope_spans: vec![ScopeSpans {
                    scope: Some(scope.clone()),
                    spans: std::mem::take(&mut batch),
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            }],
        };
        let error = match tokio::time::timeout(EXPORT_TIMEOUT, client.export(request)).await {
            Ok(Ok(response)) => {
                let rejected = response
                    .into_inner()
                    .partial_success
                    .map_or(0, |p| usize::try_from(p.rejected_spans).unwrap_or(0))
                    .min(n);
                metrics.exported.inc_by((n - rejected) as u64);
                metrics.dropped("export_failed", rejected);
                backoff = BACKOFF_MIN;
                continue;
            }
            Ok(Err(status)) => status.to_string(),
            Err(_) => format!("no answer in {EXPORT_TIMEOUT:?}"),
        };
        metrics.dropped("export_failed", n);
        tracing::warn!(%collector, %error, retry_in = ?backoff, "cannot export spans; dropping them");
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_queue_drops_and_counts_without_waiting() {
        let metrics = SpanMetrics::default();
        let (tx, mut rx) = mpsc::channel(2);
        let queue = Queue {
            tx,
            metrics: metrics.clone(),
        };
        for _ in 0..5 {
            queue.push(Span::default());
        }
        let full = DropLabels {
            reason: "queue_full",
        };
        assert_eq!(metrics.dropped.get_or_create(&full).get(), 3);
        assert!(rx.try_recv().is_ok() && rx.try_recv().is_ok());
    }
}
