//! The plugin API over a real gRPC connection on loopback.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, Pod};
use serde_json::json;
use tokio::sync::watch;
use tokio_stream::wrappers::TcpListenerStream;
use weft_api::plugins::WatchChainRequest;
use weft_api::plugins::plugins_client::PluginsClient;

use super::PluginApi;
use crate::index::Index;
use crate::modules::Modules;
use crate::state::State;

/// Far beyond what any step here takes; only keeps a broken build from
/// hanging the test run.
const NEVER: Duration = Duration::from_secs(60);

/// Namespace `demo` with pod `app`, which runs no plugins.
fn state() -> State {
    let namespace: Namespace = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "demo"},
    }))
    .unwrap();
    let pod: Pod = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"namespace": "demo", "name": "app"},
    }))
    .unwrap();
    let mut index = Index::default();
    index.apply(namespace.into());
    index.apply(pod.into());
    State {
        index,
        modules: Modules::default(),
    }
}

#[tokio::test]
async fn a_stream_ends_when_its_client_goes_away_without_a_state_change() {
    // The sender stays alive and silent: no new state wakes the stream.
    let (_publish, receiver) = watch::channel(Arc::new(state()));
    let api = PluginApi::new(receiver);
    let mut live = api.live_streams();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(api.into_service())
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );

    let mut client = PluginsClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    let request = WatchChainRequest {
        namespace: "demo".into(),
        pod: "app".into(),
    };
    let mut stream = client.watch_chain(request).await.unwrap().into_inner();
    let first = stream.message().await.unwrap().expect("the first chain");
    assert!(first.plugins.is_empty());
    assert_eq!(*live.borrow_and_update(), 1);

    drop(stream);
    drop(client);
    let ended = tokio::time::timeout(NEVER, live.wait_for(|n| *n == 0)).await;
    assert!(ended.is_ok(), "the stream outlived its client");
}
