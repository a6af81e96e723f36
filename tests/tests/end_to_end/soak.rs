//! A short soak for CI (`cargo xtask reliability` runs the long one): a
//! steady load through a proxy whose plugin chain is swapped under it.
//! Requests in flight during a swap finish on the chain they started with,
//! so not one may fail, and the proxy never restarts.

use std::time::Duration;

use serde_json::json;
use tokio::time::Instant;
use weft_tests::http1::Connection;
use weft_tests::plugins::{ChainFile, entry};
use weft_tests::{Demo, PATIENCE, eventually};

const SOAK: Duration = Duration::from_secs(30);
const SWAP_EVERY: Duration = Duration::from_secs(10);
const CONNECTIONS: usize = 4;
/// Each connection's pace: about 400 requests a second in all.
const PACE: Duration = Duration::from_millis(10);

#[tokio::test]
async fn a_steady_load_survives_plugin_chain_swaps_without_a_failure() {
    let app = Demo::http("app").spawn().await;
    let authz = json!({
        "defaultPolicy": "all-unauthenticated",
        "rules": [{"name": "no-admin", "action": "deny", "pathPrefixes": ["/admin"]}],
    });
    let sets = [
        json!([
            entry("authz", "authz", authz.clone()),
            entry("metrics", "metrics", json!({}))
        ]),
        json!([entry("authz", "authz", authz)]),
    ];
    let chain = ChainFile::new(sets[0].clone());
    let mut proxy = chain.proxy().inbound_app(app.addr).spawn().await;
    let pid = proxy.pid();
    let loaded = |proxy: &weft_tests::proxy::RunningProxy| {
        proxy.logs().matches("plugin chain loaded").count()
    };
    let loaded_at_start = loaded(&proxy);

    let end = Instant::now() + SOAK;
    let load: Vec<_> = (0..CONNECTIONS)
        .map(|_| {
            let inbound = proxy.inbound;
            tokio::spawn(async move {
                let mut conn = Connection::open(inbound).await;
                let (mut answered, mut failed) = (0u32, Vec::new());
                while Instant::now() < end {
                    let rsp = conn.get("app", "/").await;
                    match rsp.status.as_u16() {
                        200 => answered += 1,
                        status => failed.push(format!("{status}: {}", rsp.text())),
                    }
                    tokio::time::sleep(PACE).await;
                }
                (answered, failed)
            })
        })
        .collect();

    let mut swaps = 0;
    while Instant::now() + SWAP_EVERY < end {
        tokio::time::sleep(SWAP_EVERY).await;
        swaps += 1;
        chain.write(sets[swaps % 2].clone());
        let wanted = loaded_at_start + swaps;
        eventually("the swapped chain loaded", || {
            let seen = loaded(&proxy);
            async move {
                (seen >= wanted)
                    .then_some(())
                    .ok_or(format!("{seen} loads"))
            }
        })
        .await;
    }

    let mut answered = 0;
    for connection in load {
        let (ok, failed) = tokio::time::timeout(PATIENCE, connection)
            .await
            .expect("the load ends")
            .expect("a load task");
        assert!(failed.is_empty(), "failed requests: {failed:?}");
        answered += ok;
    }
    assert!(swaps >= 2, "only {swaps} swaps");
    assert!(answered > 1000, "only {answered} requests answered");
    assert!(proxy.is_running(), "{}", proxy.logs());
    assert_eq!(proxy.pid(), pid);
    let admin = weft_tests::http1::get(proxy.inbound, "app", "/admin").await;
    assert_eq!(admin.status, 403, "the last chain, with authz, serves");
}
