//! Distributed tracing through two proxies (the client's sidecar outbound,
//! the server's inbound, over mTLS) exporting to a real OTLP/gRPC collector:
//! a sampled request's spans link up across the hop; unsampled ones make
//! none.

use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use std::net::SocketAddr;

use weft_tests::controller::{RunningController, identity_name};
use weft_tests::http1::{self, Connection, Reply};
use weft_tests::mesh::Mesh;
use weft_tests::otlp::{Collector, ReceivedSpan, hex};
use weft_tests::proxy::RunningProxy;
use weft_tests::{Demo, Proxy, closed_port, eventually};

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER: &str = "00f067aa0ba902b7";

async fn get_with(conn: &mut Connection, host: &str, headers: &[(&str, &str)]) -> Reply {
    let mut req = http1::request("GET", host, "/headers", "");
    for (name, value) in headers {
        let name = http::HeaderName::from_bytes(name.as_bytes()).expect("a header name");
        req.headers_mut()
            .insert(name, value.parse().expect("a header value"));
    }
    conn.send(req).await
}

/// The value of `name` in the request the app saw (the demo's `/headers`).
fn seen(reply: &Reply, name: &str) -> Option<String> {
    let prefix = format!("{name}: ");
    reply
        .text()
        .lines()
        .find_map(|line| line.strip_prefix(&prefix).map(str::to_owned))
}

fn exported(proxy_metrics: &weft_tests::Metrics) -> f64 {
    proxy_metrics.sum("trace_spans_exported_total", &[])
}

async fn spans_of(collector: &Collector, trace: &str, n: usize) -> Vec<ReceivedSpan> {
    eventually(&format!("{n} spans of trace {trace}"), || async {
        let spans = collector.trace(trace);
        if spans.len() >= n {
            Ok(())
        } else {
            Err(format!("{spans:?}"))
        }
    })
    .await;
    collector.trace(trace)
}

/// The server's pod (its sidecar's inbound port named, so the client's
/// sidecar speaks mTLS to it) and the client's, both in `shop`.
fn workloads(server_inbound: SocketAddr) -> String {
    format!(
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n---\n\
         apiVersion: v1\nkind: Pod\nmetadata:\n  name: server-0\n  namespace: shop\n\
         spec:\n  serviceAccountName: server\n  containers:\n  - name: server\n    image: server\n  \
         - name: weft-proxy\n    image: weft-proxy\n    ports:\n    - name: weft-inbound\n      \
         containerPort: {}\n\
         status:\n  phase: Running\n  podIP: 127.0.0.1\n---\n\
         apiVersion: v1\nkind: Pod\nmetadata:\n  name: client-0\n  namespace: shop\n\
         spec:\n  serviceAccountName: client\n  containers:\n  - name: client\n    image: client\n",
        server_inbound.port()
    )
}

/// A certified sidecar of `shop/<name>-0` that exports spans to `collector`.
fn traced(mesh: &Mesh, controller: &RunningController, collector: &Collector, name: &str) -> Proxy {
    let workload = format!("shop/{name}-0");
    let proxy = Proxy::new()
        .env("WEFT_PROXY_CONTROLLER_ADDR", &controller.url())
        .env("WEFT_PROXY_WORKLOAD", &workload)
        .env(
            "WEFT_PROXY_PLUGIN_CACHE_DIR",
            mesh.cache().to_str().unwrap(),
        )
        .env("WEFT_PROXY_TRACE_COLLECTOR", &collector.addr.to_string());
    controller.with_identity(proxy, &workload, name)
}

#[tokio::test]
async fn a_sampled_request_gets_linked_spans_from_both_proxies_and_an_unsampled_one_none() {
    let collector = Collector::start().await;
    let mesh = Mesh::new("tracing");
    let server_inbound = closed_port();
    mesh.write("workloads.yaml", &workloads(server_inbound));
    let controller = mesh.controller().await;
    let app = Demo::http("app").spawn().await;
    let server: RunningProxy = traced(&mesh, &controller, &collector, "server")
        .inbound_app(app.addr)
        .env(
            "WEFT_PROXY_INBOUND_LISTEN_ADDR",
            &server_inbound.to_string(),
        )
        .spawn()
        .await;
    let client = traced(&mesh, &controller, &collector, "client")
        .spawn()
        .await;
    let server_host = server.inbound.to_string();
    let mut conn = Connection::open(client.outbound).await;

    // Unsampled, and untraced: headers go on untouched, no span is made.
    let unsampled = format!("00-{}-{CALLER}-00", "a".repeat(32));
    let reply = get_with(&mut conn, &server_host, &[("traceparent", &unsampled)]).await;
    assert_eq!(reply.status, 200);
    assert_eq!(seen(&reply, "traceparent"), Some(unsampled.clone()));
    assert_eq!(get_with(&mut conn, &server_host, &[]).await.status, 200);

    let sampled = format!("00-{TRACE}-{CALLER}-01");
    let reply = get_with(
        &mut conn,
        &server_host,
        &[("traceparent", &sampled), ("tracestate", "shop=1")],
    )
    .await;
    assert_eq!(reply.status, 200);

    let spans = spans_of(&collector, TRACE, 2).await;
    assert_eq!(spans.len(), 2, "one span per hop: {spans:?}");
    let by_kind = |kind: SpanKind| {
        spans
            .iter()
            .find(|s| s.span.kind == i32::from(kind))
            .unwrap_or_else(|| panic!("a {kind:?} span in {spans:?}"))
    };
    let (outbound, inbound) = (by_kind(SpanKind::Client), by_kind(SpanKind::Server));

    // The chain: caller -> client's outbound hop -> server's inbound hop -> app.
    assert_eq!(hex(&outbound.span.parent_span_id), CALLER);
    assert_eq!(inbound.span.parent_span_id, outbound.span.span_id);
    assert_ne!(inbound.span.span_id, outbound.span.span_id);
    let app_saw = seen(&reply, "traceparent").expect("the app gets a traceparent");
    assert_eq!(
        app_saw,
        format!("00-{TRACE}-{}-01", hex(&inbound.span.span_id)),
        "the app's parent is the inbound hop's span"
    );
    assert_eq!(seen(&reply, "tracestate").as_deref(), Some("shop=1"));
    assert_eq!(
        inbound.attribute("tls.client.identity"),
        Some(identity_name("shop", "client")),
        "the hop was mTLS, and the inbound span names the caller's proxy"
    );

    for (span, direction, pod) in [
        (outbound, "outbound", "client-0"),
        (inbound, "inbound", "server-0"),
    ] {
        assert_eq!(span.attribute("direction").as_deref(), Some(direction));
        assert_eq!(
            span.attribute("http.request.method").as_deref(),
            Some("GET")
        );
        assert_eq!(span.attribute("url.path").as_deref(), Some("/headers"));
        assert_eq!(
            span.attribute("http.response.status_code").as_deref(),
            Some("200")
        );
        assert_eq!(
            span.attribute("server.port"),
            Some(server.inbound.port().to_string())
        );
        assert_eq!(
            span.resource_attribute("k8s.pod.name").as_deref(),
            Some(pod)
        );
        assert_eq!(
            span.resource_attribute("k8s.namespace.name").as_deref(),
            Some("shop")
        );
        assert!(span.span.end_time_unix_nano >= span.span.start_time_unix_nano);
    }

    // Each proxy exports in order, so the unsampled requests, sent first,
    // would be in by now: there is nothing but the sampled trace.
    let all = collector.spans();
    assert_eq!(all.len(), 2, "only the sampled request's spans: {all:?}");
    for proxy in [&client, &server] {
        eventually("the span counted as exported", || async {
            let metrics = proxy.metrics().await;
            if exported(&metrics) == 1.0 {
                Ok(())
            } else {
                Err(metrics.text)
            }
        })
        .await;
    }
}

#[tokio::test]
async fn b3_is_followed_and_an_absent_collector_costs_only_dropped_spans() {
    let app = Demo::http("app").spawn().await;
    let proxy = Proxy::new()
        .inbound_app(app.addr)
        .env("WEFT_PROXY_TRACE_COLLECTOR", &closed_port().to_string())
        .spawn()
        .await;
    let mut conn = Connection::open(proxy.inbound).await;
    let b3 = format!("{TRACE}-{CALLER}-1");
    let reply = get_with(&mut conn, "app", &[("b3", &b3)]).await;
    assert_eq!(
        reply.status, 200,
        "the request does not wait for the collector"
    );
    let forwarded = seen(&reply, "b3").expect("b3 goes on");
    let fields: Vec<&str> = forwarded.split('-').collect();
    assert_eq!(fields.len(), 4, "{forwarded}");
    assert_eq!((fields[0], fields[2], fields[3]), (TRACE, "1", CALLER));
    assert_ne!(fields[1], CALLER, "a new span id for this hop");

    eventually(
        "the span dropped, counted and the failure logged",
        || async {
            let metrics = proxy.metrics().await;
            let dropped = metrics.sum("trace_spans_dropped_total", &[("reason", "export_failed")]);
            if dropped != 1.0 {
                return Err(metrics.text);
            }
            proxy.logged("cannot export spans")
        },
    )
    .await;

    // Tracing off: the headers are the caller's own.
    let untraced = Proxy::new().inbound_app(app.addr).spawn().await;
    let mut conn = Connection::open(untraced.inbound).await;
    let sampled = format!("00-{TRACE}-{CALLER}-01");
    let reply = get_with(&mut conn, "app", &[("traceparent", &sampled), ("b3", &b3)]).await;
    assert_eq!(seen(&reply, "traceparent"), Some(sampled));
    assert_eq!(seen(&reply, "b3"), Some(b3));
}
