//! The plugins Weft ships — retry, authz, split, metrics — each running in
//! the real proxy from a plain chain file, and a chain swapped while traffic
//! flows.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use weft_tests::http1::{self, Connection, request};
use weft_tests::plugins::{ChainFile, entry};
use weft_tests::proxy::RunningProxy;
use weft_tests::{Demo, PATIENCE, closed_port, eventually};

fn metrics_plugin() -> serde_json::Value {
    entry("metrics", "metrics", json!({}))
}

/// Bytes that differ along their length, so a replay that reorders or
/// truncates them shows.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

#[tokio::test]
async fn retries_recover_failures_within_the_limit_and_replay_bodies() {
    let app = Demo::http("app").spawn().await;
    let retry = json!({"routes": [{"name": "all", "retryOn": ["5xx"], "limit": 2}]});
    let chain = ChainFile::new(json!([entry("retry", "retry", retry), metrics_plugin()]));
    let proxy = chain.proxy().inbound_app(app.addr).spawn().await;
    let mut conn = Connection::open(proxy.inbound).await;

    let rsp = conn.get("app", "/flaky/2/get").await;
    assert_eq!(rsp.status, 200, "two failures, then the third attempt");
    assert_eq!(rsp.header("x-demo-attempt"), Some("3"));

    let rsp = conn.get("app", "/flaky/3/over-limit").await;
    assert_eq!(rsp.status, 503, "a third failure is past the limit of 2");
    assert_eq!(rsp.header("x-demo-attempt"), Some("3"));

    let body = pattern(10_000);
    let rsp = conn
        .send(request("POST", "app", "/flaky/1/small", body.clone()))
        .await;
    assert_eq!(rsp.status, 200);
    assert_eq!(rsp.header("x-demo-attempt"), Some("2"));
    assert!(rsp.body == body, "the replayed body arrived whole");

    let rsp = conn
        .send(request(
            "POST",
            "app",
            "/flaky/1/large",
            pattern(100 * 1024),
        ))
        .await;
    assert_eq!(rsp.status, 503, "a body over 64 KiB is not kept to replay");
    assert_eq!(rsp.header("x-demo-attempt"), Some("1"));

    let metrics = proxy.metrics().await;
    let all = [("direction", "inbound"), ("route", "all")];
    assert_eq!(
        metrics.sum("retry_requests_total", &all),
        5.0,
        "{}",
        metrics.text
    );
    let skipped = |reason| {
        metrics.sum(
            "retry_skipped_total",
            &[("route", "all"), ("reason", reason)],
        )
    };
    assert_eq!(skipped("limit"), 1.0, "{}", metrics.text);
    assert_eq!(skipped("not_replayable"), 1.0, "{}", metrics.text);
    assert_eq!(
        metrics.sum("response_total", &[("status_code", "200")]),
        2.0,
        "a retried request counts once in the golden metrics: {}",
        metrics.text
    );
}

#[tokio::test]
async fn connect_failures_are_retried_and_a_timeout_bounds_every_attempt() {
    let retry = json!({"routes": [{"name": "all", "retryOn": ["connect-failure"], "limit": 3}]});
    let chain = ChainFile::new(json!([entry("retry", "retry", retry)]));
    let proxy = chain.proxy().inbound_app(closed_port()).spawn().await;
    let rsp = http1::get(proxy.inbound, "app", "/").await;
    assert_eq!(rsp.status, 502);
    assert_eq!(
        rsp.header("x-weft-proxy-error"),
        Some("upstream connection refused")
    );
    let metrics = proxy.metrics().await;
    assert_eq!(
        metrics.sum("retry_requests_total", &[("route", "all")]),
        3.0,
        "{}",
        metrics.text
    );

    let app = Demo::http("app").spawn().await;
    let retry = json!({"routes": [{
        "name": "slow",
        "match": {"pathPrefix": "/delay"},
        "retryOn": ["timeout"],
        "limit": 5,
        "timeoutMs": 300,
    }]});
    let chain = ChainFile::new(json!([entry("retry", "retry", retry)]));
    let proxy = chain.proxy().inbound_app(app.addr).spawn().await;
    let started = Instant::now();
    let rsp = http1::get(proxy.inbound, "app", "/delay/5000").await;
    assert_eq!(rsp.status, 504);
    assert_eq!(
        rsp.header("x-weft-proxy-error"),
        Some("upstream response timeout")
    );
    // The timeout is the request's, not each attempt's: six attempts of
    // 300 ms each would take 1.8 s.
    assert!(started.elapsed() < std::time::Duration::from_millis(1500));
    let metrics = proxy.metrics().await;
    let past_deadline = [("route", "slow"), ("reason", "not_replayable")];
    assert_eq!(
        metrics.sum("retry_skipped_total", &past_deadline),
        1.0,
        "no retry once the deadline passed: {}",
        metrics.text
    );
    assert_eq!(http1::get(proxy.inbound, "app", "/").await.status, 200);
}

#[tokio::test]
async fn the_retry_budget_holds_across_concurrent_requests() {
    let app = Demo::http("app").spawn().await;
    // No ratio: the budget is the reserve alone, 1/s over 10 s.
    let retry = json!({
        "routes": [{"name": "all", "retryOn": ["5xx"], "limit": 1}],
        "budget": {"retryRatio": 0.0, "minRetriesPerSecond": 1, "ttlSeconds": 10},
    });
    let chain = ChainFile::new(json!([entry("retry", "retry", retry)]));
    let proxy = chain
        .proxy()
        .env("WEFT_PROXY_CORES", "2")
        .inbound_app(app.addr)
        .spawn()
        .await;
    let clients: Vec<_> = (0..50)
        .map(|_| tokio::spawn(http1::get(proxy.inbound, "app", "/status/503")))
        .collect();
    for client in clients {
        assert_eq!(client.await.unwrap().status, 503);
    }
    let metrics = proxy.metrics().await;
    let retries = metrics.sum("retry_requests_total", &[("route", "all")]);
    let refused = metrics.sum(
        "retry_skipped_total",
        &[("route", "all"), ("reason", "budget")],
    );
    assert_eq!(
        (retries, refused),
        (10.0, 40.0),
        "10 retries in the budget: {}",
        metrics.text
    );
}

#[tokio::test]
async fn an_authority_with_a_budget_of_its_own_spends_only_that() {
    let app = Demo::http("app").spawn().await;
    // Books may retry twice in the window; everything else, 100 times.
    let retry = json!({
        "routes": [{"name": "all", "retryOn": ["5xx"], "limit": 1}],
        "budgets": [{"authority": "books.ns.svc.cluster.local", "retryRatio": 0.0,
                     "minRetriesPerSecond": 0.2, "ttlSeconds": 10}],
    });
    let chain = ChainFile::new(json!([entry("retry", "retry", retry)]));
    let proxy = chain.proxy().inbound_app(app.addr).spawn().await;
    let mut conn = Connection::open(proxy.inbound).await;
    let mut books = 0;
    for key in 0..6 {
        // The budget's host alone takes every port, in any case.
        books += usize::from(recovered(&mut conn, "books.ns.svc.cluster.local:8080", key).await);
        books += usize::from(recovered(&mut conn, "BOOKS.ns.svc.cluster.local", key).await);
    }
    let mut others = 0;
    for key in 0..6 {
        others += usize::from(recovered(&mut conn, "authors.ns.svc.cluster.local:8080", key).await);
    }
    assert_eq!((books, others), (2, 6), "retries recovered per authority");
    let metrics = proxy.metrics().await;
    let refused = [("route", "all"), ("reason", "budget")];
    assert_eq!(
        metrics.sum("retry_skipped_total", &refused),
        10.0,
        "{}",
        metrics.text
    );
}

/// Whether a retry recovered a request for a key of the demo's that fails
/// once: a retry answers 200, no retry leaves the 503.
async fn recovered(conn: &mut Connection, authority: &str, key: usize) -> bool {
    let path = format!("/flaky/1/{authority}-{key}");
    conn.get(authority, &path).await.status == 200
}

#[tokio::test]
async fn authz_answers_http_with_403_and_counts_its_decisions() {
    let app = Demo::http("app").spawn().await;
    let authz = json!({
        "defaultPolicy": "deny",
        "rules": [{
            "name": "local-reads",
            "clientCidrs": ["127.0.0.0/8"],
            "pathPrefixes": ["/headers"],
            "methods": ["GET"],
        }],
    });
    let chain = ChainFile::new(json!([entry("authz", "authz", authz)]));
    let proxy = chain.proxy().inbound_app(app.addr).spawn().await;
    let mut conn = Connection::open(proxy.inbound).await;

    let rsp = conn.get("app", "/headers").await;
    assert_eq!(rsp.status, 200);
    assert_eq!(rsp.header("x-demo-name"), Some("app"), "it reached the app");

    for (method, path) in [("POST", "/headers"), ("GET", "/headersx"), ("GET", "/")] {
        let rsp = conn.send(request(method, "app", path, "")).await;
        assert_eq!(rsp.status, 403, "{method} {path}");
        assert_eq!(rsp.header("x-weft-proxy-error"), Some("unauthorized"));
        assert_eq!(rsp.header("x-demo-name"), None, "nothing reached the app");
        assert!(rsp.text().contains("default:deny"), "{}", rsp.text());
    }

    let mut grpc = request("POST", "app", "/grpc.health.v1.Health/Check", "");
    grpc.headers_mut()
        .insert("content-type", "application/grpc".parse().unwrap());
    let rsp = conn.send(grpc).await;
    assert_eq!(
        rsp.status, 200,
        "gRPC clients read the status from grpc-status"
    );
    assert_eq!(rsp.header("grpc-status"), Some("7"), "PERMISSION_DENIED");

    let metrics = proxy.metrics().await;
    let allowed = [("authz_kind", "rule"), ("authz_name", "local-reads")];
    assert_eq!(
        metrics.sum("inbound_http_authz_allow_total", &allowed),
        1.0,
        "{}",
        metrics.text
    );
    let denied = [("authz_kind", "default"), ("authz_name", "deny")];
    assert_eq!(
        metrics.sum("inbound_http_authz_deny_total", &denied),
        4.0,
        "{}",
        metrics.text
    );
}

#[tokio::test]
async fn authz_closes_denied_tcp_connections() {
    let echo = Demo::tcp_echo().spawn().await;
    let port = echo.addr.port().to_string();
    let policy = |cidr: &str| {
        json!({"defaultPolicy": "deny", "rules": [{
            "name": "echo",
            "ports": [echo.addr.port()],
            "clientCidrs": [cidr],
        }]})
    };

    let elsewhere = ChainFile::new(json!([entry("authz", "authz", policy("10.0.0.0/8"))]));
    let proxy = elsewhere
        .proxy()
        .env("WEFT_PROXY_OPAQUE_PORTS", &port)
        .inbound_app(echo.addr)
        .spawn()
        .await;
    let mut stream = tokio::net::TcpStream::connect(proxy.inbound).await.unwrap();
    let _ = stream.write_all(b"ping").await;
    let mut reply = Vec::new();
    let read = tokio::time::timeout(PATIENCE, stream.read_to_end(&mut reply)).await;
    assert!(read.is_ok(), "the connection is closed");
    assert!(reply.is_empty(), "nothing was echoed: {reply:?}");
    eventually("the denial is counted", || async {
        let metrics = proxy.metrics().await;
        match metrics.sum("inbound_tcp_authz_deny_total", &[("target_port", &port)]) {
            1.0 => Ok(()),
            _ => Err(metrics.text),
        }
    })
    .await;

    let local = ChainFile::new(json!([entry("authz", "authz", policy("127.0.0.1/32"))]));
    let proxy = local
        .proxy()
        .env("WEFT_PROXY_OPAQUE_PORTS", &port)
        .inbound_app(echo.addr)
        .spawn()
        .await;
    let mut stream = tokio::net::TcpStream::connect(proxy.inbound).await.unwrap();
    stream.write_all(b"ping").await.unwrap();
    stream.shutdown().await.unwrap();
    let mut reply = Vec::new();
    tokio::time::timeout(PATIENCE, stream.read_to_end(&mut reply))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reply, b"ping", "an allowed connection is relayed");
    let metrics = proxy.metrics().await;
    let allowed = [("authz_kind", "rule"), ("authz_name", "echo")];
    assert_eq!(
        metrics.sum("inbound_tcp_authz_allow_total", &allowed),
        1.0,
        "{}",
        metrics.text
    );
}

#[tokio::test]
async fn split_weights_traffic_and_sends_canaries_by_header() {
    let v1 = Demo::http("v1").spawn().await;
    let v2 = Demo::http("v2").spawn().await;
    let (v1_addr, v2_addr) = (v1.addr.to_string(), v2.addr.to_string());
    let split = json!({"routes": [
        {"name": "canary", "authority": "web.test", "headers": {"x-canary": "yes"},
         "backends": [{"backend": v2_addr}]},
        {"name": "weighted", "authority": "web.test",
         "backends": [{"backend": v1_addr, "weight": 900}, {"backend": v2_addr, "weight": 100}]},
    ]});
    let chain = ChainFile::new(json!([entry("split", "split", split), metrics_plugin()]));
    let proxy = chain.proxy().spawn().await;
    let mut conn = Connection::open(proxy.outbound).await;

    let mut v2_count = 0;
    for _ in 0..1000 {
        let rsp = conn.get("web.test", "/").await;
        assert_eq!(rsp.status, 200);
        match rsp.header("x-demo-name") {
            Some("v1") => {}
            Some("v2") => v2_count += 1,
            other => panic!("unexpected backend {other:?}"),
        }
    }
    // 100 expected; 50 is five standard deviations away.
    assert!((50..=150).contains(&v2_count), "v2 got {v2_count} of 1000");

    for _ in 0..20 {
        let mut canary = request("GET", "web.test", "/", "");
        canary
            .headers_mut()
            .insert("x-canary", "yes".parse().unwrap());
        assert_eq!(conn.send(canary).await.header("x-demo-name"), Some("v2"));
    }

    let metrics = proxy.metrics().await;
    assert_eq!(
        metrics.sum("response_total", &[("dst_backend", &v2_addr)]),
        f64::from(v2_count + 20),
        "the metrics plugin sees the chosen backend: {}",
        metrics.text
    );
    assert_eq!(
        metrics.sum(
            "outbound_split_requests_total",
            &[("route", "canary"), ("backend", &v2_addr)]
        ),
        20.0,
        "{}",
        metrics.text
    );
}

#[tokio::test]
async fn metrics_routes_count_per_route_and_their_classes_decide_failures() {
    let app = Demo::http("app").spawn().await;
    let metrics = json!({"routes": [{
        "name": "GET /status/{code}",
        "match": {"methods": ["GET"], "pathRegex": "/status/\\d+"},
        "responseClasses": [
            {"condition": {"status": {"min": 404, "max": 404}}, "isFailure": true}
        ],
    }]});
    let chain = ChainFile::new(json!([entry("metrics", "metrics", metrics)]));
    let proxy = chain.proxy().inbound_app(app.addr).spawn().await;
    let mut conn = Connection::open(proxy.inbound).await;
    for (path, status) in [
        ("/status/404", 404),
        ("/status/404", 404),
        ("/status/200", 200),
        ("/nope", 404),
    ] {
        assert_eq!(conn.get("app", path).await.status, status, "{path}");
    }
    let post = conn
        .send(request("POST", "app", "/status/404", Vec::new()))
        .await;
    assert_eq!(post.status, 404);

    let metrics = proxy.metrics().await;
    let route = [
        ("direction", "inbound"),
        ("dst", "app"),
        ("rt_route", "GET /status/{code}"),
    ];
    let route_with = |extra: &[(&'static str, &'static str)]| {
        let mut labels = route.to_vec();
        labels.extend_from_slice(extra);
        labels
    };
    assert_eq!(
        metrics.sum("route_request_total", &route),
        3.0,
        "{}",
        metrics.text
    );
    let not_found = route_with(&[("status_code", "404"), ("classification", "failure")]);
    assert_eq!(
        metrics.sum("route_response_total", &not_found),
        2.0,
        "the route's class makes 404 a failure: {}",
        metrics.text
    );
    let ok = route_with(&[("status_code", "200"), ("classification", "success")]);
    assert_eq!(
        metrics.sum("route_response_total", &ok),
        1.0,
        "{}",
        metrics.text
    );
    assert_eq!(
        metrics.sum("route_response_latency_ms_count", &not_found),
        2.0,
        "{}",
        metrics.text
    );
    // The golden families count every request, classified as the route
    // says for those that took it, by 5xx for the rest.
    assert_eq!(metrics.sum("request_total", &[("authority", "app")]), 5.0);
    let golden = |classification| {
        metrics.sum(
            "response_total",
            &[("status_code", "404"), ("classification", classification)],
        )
    };
    assert_eq!(
        (golden("failure"), golden("success")),
        (2.0, 2.0),
        "{}",
        metrics.text
    );
}

#[tokio::test]
async fn a_chain_swapped_under_steady_load_fails_no_request() {
    let app = Demo::http("app").spawn().await;
    let stamp = |value: &str| {
        entry(
            "stamp",
            "add_header",
            json!({"name": "x-weft-example", "value": value}),
        )
    };
    let chain = ChainFile::new(json!([stamp("0"), metrics_plugin()]));
    let proxy = chain
        .proxy()
        .env("WEFT_PROXY_CORES", "2")
        .inbound_app(app.addr)
        .spawn()
        .await;

    // Four keep-alive clients, each bounded in requests; any failed request
    // panics its task and fails the test.
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let stop = stop.clone();
            let addr = proxy.inbound;
            tokio::spawn(async move {
                let mut conn = Connection::open(addr).await;
                let mut seen = BTreeSet::new();
                for _ in 0..50_000 {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let rsp = conn.get("app", "/").await;
                    assert_eq!(rsp.status, 200, "{}", rsp.text());
                    seen.insert(rsp.header("x-weft-example").unwrap_or("-").to_string());
                }
                seen
            })
        })
        .collect();

    for version in 1..=5 {
        let version = version.to_string();
        chain.write(json!([stamp(&version), metrics_plugin()]));
        new_chain_serves(&proxy, &version).await;
    }
    stop.store(true, Ordering::Relaxed);
    let mut seen = BTreeSet::new();
    for client in clients {
        seen.extend(client.await.expect("a client failed a request"));
    }
    assert!(!seen.contains("-"), "every response went through a chain");
    assert!(
        seen.contains("5"),
        "the clients saw the last chain: {seen:?}"
    );
    assert!(!proxy.logs().contains("plugin failed"), "{}", proxy.logs());
}

/// Waits for a response stamped by chain `version`: the proxy reads the file
/// every second, so that normally takes a second or two. A rejected chain
/// fails at once, with the proxy's reason.
async fn new_chain_serves(proxy: &RunningProxy, version: &str) {
    // Only a safety net that turns a missed change into a failure rather
    // than a hang; generous, because a reload on a loaded 2-core machine
    // running debug builds has taken several seconds.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let rsp = http1::get(proxy.inbound, "app", "/").await;
        let stamp = rsp.header("x-weft-example");
        if stamp == Some(version) {
            return;
        }
        assert!(
            !proxy.logs().contains("plugin configuration rejected"),
            "chain {version} was rejected: {}",
            proxy.logs()
        );
        assert!(
            Instant::now() < deadline,
            "chain {version} never served; last saw: {stamp:?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}
