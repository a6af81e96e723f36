//! Transport metrics, named and labelled as Linkerd's proxy names them, so
//! dashboards and alerts written for Linkerd read Weft's `/metrics` as is.

use std::sync::Arc;
use std::time::Instant;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::{Family, MetricConstructor};
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::Direction;

mod process;
mod tls;

pub use process::ProcessCollector;
pub use tls::{NoTlsReason, Tls};

/// Which end of a proxied connection a metric describes: `src` is the client
/// that connected to the proxy, `dst` the upstream the proxy connected to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Peer {
    Src,
    Dst,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TransportLabels {
    pub direction: &'static str,
    pub peer: &'static str,
    /// `tls` and Linkerd's labels beside it (`client_id`, `no_tls_reason`).
    #[prometheus(flatten)]
    pub tls: Tls,
    pub target_addr: String,
}

impl TransportLabels {
    pub fn new(direction: Direction, peer: Peer, target_addr: String) -> Self {
        Self {
            direction: direction.as_str(),
            peer: match peer {
                Peer::Src => "src",
                Peer::Dst => "dst",
            },
            tls: Tls::Disabled,
            target_addr,
        }
    }
}

#[derive(Clone)]
struct DurationBuckets;

impl MetricConstructor<Histogram> for DurationBuckets {
    fn new_metric(&self) -> Histogram {
        // Linkerd's connection-duration buckets, in milliseconds.
        Histogram::new([
            1.0,
            10.0,
            100.0,
            1_000.0,
            10_000.0,
            100_000.0,
            1_000_000.0,
            10_000_000.0,
        ])
    }
}

/// Which protocol a refused connection or request spoke.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RefusalLabels {
    protocol: &'static str,
}

/// Which way a shed request was going.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DirectionLabels {
    direction: &'static str,
}

/// The `tcp_*` families, and the few request counters beside them,
/// registered once and shared by every listener.
pub struct TransportMetrics {
    refused_without_identity: Family<RefusalLabels, Counter>,
    requests_shed: Family<DirectionLabels, Counter>,
    open_total: Family<TransportLabels, Counter>,
    close_total: Family<TransportLabels, Counter>,
    open_connections: Family<TransportLabels, Gauge>,
    read_bytes_total: Family<TransportLabels, Counter>,
    write_bytes_total: Family<TransportLabels, Counter>,
    connection_duration_ms: Family<TransportLabels, Histogram, DurationBuckets>,
}

impl TransportMetrics {
    pub fn register(registry: &mut Registry) -> Arc<Self> {
        let this = Self {
            refused_without_identity: Family::default(),
            requests_shed: Family::default(),
            open_total: Family::default(),
            close_total: Family::default(),
            open_connections: Family::default(),
            read_bytes_total: Family::default(),
            write_bytes_total: Family::default(),
            connection_duration_ms: Family::new_with_constructor(DurationBuckets),
        };
        // prometheus-client appends `_total` to counters.
        registry.register("tcp_open", "Connections opened", this.open_total.clone());
        registry.register("tcp_close", "Connections closed", this.close_total.clone());
        registry.register(
            "tcp_open_connections",
            "Connections currently open",
            this.open_connections.clone(),
        );
        registry.register(
            "tcp_read_bytes",
            "Bytes read from the peer",
            this.read_bytes_total.clone(),
        );
        registry.register(
            "tcp_write_bytes",
            "Bytes written to the peer",
            this.write_bytes_total.clone(),
        );
        registry.register(
            "tcp_connection_duration_ms",
            "Connection lifetimes in milliseconds",
            this.connection_duration_ms.clone(),
        );
        registry.register(
            "inbound_identity_required_refused",
            "Plaintext or unauthenticated clients refused on ports that require a client identity",
            this.refused_without_identity.clone(),
        );
        registry.register(
            "http_requests_shed",
            "Requests answered 503 because the proxy had its limit of requests in flight",
            this.requests_shed.clone(),
        );
        Arc::new(this)
    }

    /// An unauthenticated client refused: an HTTP request (`http`) or an
    /// opaque connection (`tcp`).
    pub fn refused_without_identity(&self, protocol: &'static str) {
        self.refused_without_identity
            .get_or_create(&RefusalLabels { protocol })
            .inc();
    }

    /// A request refused at once because the proxy was at its in-flight limit.
    pub fn request_shed(&self, direction: Direction) {
        self.requests_shed
            .get_or_create(&DirectionLabels {
                direction: direction.as_str(),
            })
            .inc();
    }

    /// Records a connection as open and returns the meter that counts its
    /// bytes and records its close when dropped. The label lookups happen
    /// here, once per connection, not per read.
    pub fn open(&self, labels: TransportLabels) -> ConnectionMeter {
        self.open_since(labels, Instant::now())
    }

    /// As `open`, for a connection accepted at `opened` whose labels were
    /// known only later (inbound, once its TLS was read).
    pub fn open_since(&self, labels: TransportLabels, opened: Instant) -> ConnectionMeter {
        self.open_total.get_or_create(&labels).inc();
        let open = self.open_connections.get_or_create(&labels).clone();
        open.inc();
        ConnectionMeter {
            read: self.read_bytes_total.get_or_create(&labels).clone(),
            write: self.write_bytes_total.get_or_create(&labels).clone(),
            close: self.close_total.get_or_create(&labels).clone(),
            duration: self.connection_duration_ms.get_or_create(&labels).clone(),
            open,
            opened,
        }
    }
}

/// One connection's handles into the transport families.
#[derive(Debug)]
pub struct ConnectionMeter {
    read: Counter,
    write: Counter,
    close: Counter,
    open: Gauge,
    duration: Histogram,
    opened: Instant,
}

impl ConnectionMeter {
    pub fn read(&self, n: usize) {
        if n > 0 {
            self.read.inc_by(n as u64);
        }
    }

    pub fn wrote(&self, n: usize) {
        self.write.inc_by(n as u64);
    }
}

impl Drop for ConnectionMeter {
    fn drop(&mut self) {
        self.close.inc();
        self.open.dec();
        self.duration
            .observe(self.opened.elapsed().as_secs_f64() * 1_000.0);
    }
}

/// Asserts that `text` holds each `(family, value)` sample of `series`.
#[cfg(test)]
pub(crate) fn assert_samples(text: &str, series: &str, samples: &[(&str, u64)]) {
    for (family, value) in samples {
        let line = format!("{family}{series} {value}\n");
        assert!(text.contains(&line), "no `{}` in\n{text}", line.trim_end());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::encoding::text::encode;

    #[test]
    fn a_connection_is_counted_open_then_closed() {
        let mut registry = Registry::default();
        let metrics = TransportMetrics::register(&mut registry);
        let labels = TransportLabels::new(Direction::Inbound, Peer::Src, "127.0.0.1:80".into());
        let meter = metrics.open(labels);
        meter.read(10);
        meter.wrote(32);
        let mut text = String::new();
        encode(&mut text, &registry).unwrap();
        let series =
            r#"{direction="inbound",peer="src",tls="disabled",target_addr="127.0.0.1:80"}"#;
        assert_samples(
            &text,
            series,
            &[
                ("tcp_open_total", 1),
                ("tcp_open_connections", 1),
                ("tcp_read_bytes_total", 10),
                ("tcp_write_bytes_total", 32),
            ],
        );
        drop(meter);
        let mut text = String::new();
        encode(&mut text, &registry).unwrap();
        assert_samples(
            &text,
            series,
            &[("tcp_close_total", 1), ("tcp_open_connections", 0)],
        );
    }
}
