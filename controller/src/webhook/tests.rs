//! The webhook's routes, answered from a state built in the test: the
//! namespace's annotations come from the index, readiness from the first
//! published state. The HTTPS server around them is tested in `tests/`.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::json;

use super::*;
use crate::index::{Event, Index, Resource};
use crate::modules::Modules;

fn state(namespaces: &[(&str, &[(&str, &str)])]) -> Arc<State> {
    let mut index = Index::default();
    for (name, annotations) in namespaces {
        let annotations: BTreeMap<String, String> = annotations
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        index.apply(Event::Applied(Resource::Namespace(Box::new(Namespace {
            metadata: ObjectMeta {
                name: Some(name.to_string()),
                annotations: Some(annotations),
                ..Default::default()
            },
            ..Default::default()
        }))));
    }
    Arc::new(State {
        index,
        modules: Modules::default(),
    })
}

fn webhook(state: Arc<State>) -> (watch::Sender<Arc<State>>, Webhook) {
    let (publish, state) = watch::channel(state);
    (publish, Webhook::new(Settings::default(), state))
}

/// The AdmissionReview the API server sends for a ReplicaSet's pod in
/// `emojivoto`.
fn review() -> Vec<u8> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../inject/tests/fixtures/admission-review.json"
    );
    std::fs::read(path).unwrap()
}

async fn call(webhook: &Webhook, method: Method, path: &str, body: Vec<u8>) -> (StatusCode, Value) {
    let request = Request::builder()
        .method(method)
        .uri(path)
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    let response = webhook.respond(request).await;
    let status = response.status();
    let json = response.headers()[header::CONTENT_TYPE] == "application/json";
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let body = match json {
        true => serde_json::from_slice(&body).unwrap(),
        false => Value::String(String::from_utf8(body.to_vec()).unwrap()),
    };
    (status, body)
}

#[tokio::test]
async fn a_pod_in_an_annotated_namespace_gets_a_patch() {
    let (_publish, webhook) = webhook(state(&[("emojivoto", &[("weft.io/inject", "enabled")])]));
    let (status, answer) = call(&webhook, Method::POST, "/inject", review()).await;
    assert_eq!(status, StatusCode::OK);
    let response = &answer["response"];
    assert_eq!(response["uid"], "0df28fbd-5f5f-11e8-bc74-36e6bb280816");
    assert_eq!(response["allowed"], true);
    assert_eq!(response["patchType"], "JSONPatch");
}

#[tokio::test]
async fn only_the_pods_own_namespace_counts_and_an_unknown_one_has_no_annotations() {
    let others = state(&[
        ("emojivoto", &[("weft.io/inject", "disabled")]),
        ("other", &[("weft.io/inject", "enabled")]),
    ]);
    for state in [others, state(&[])] {
        let (_publish, webhook) = webhook(state);
        let (status, answer) = call(&webhook, Method::POST, "/inject", review()).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(answer["response"]["allowed"], true);
        assert!(answer["response"].get("patch").is_none(), "{answer}");
    }
}

#[tokio::test]
async fn a_new_state_changes_the_answer() {
    let (publish, webhook) = webhook(state(&[("emojivoto", &[])]));
    let (_, answer) = call(&webhook, Method::POST, "/inject", review()).await;
    assert!(answer["response"].get("patch").is_none());
    publish.send_replace(state(&[("emojivoto", &[("linkerd.io/inject", "enabled")])]));
    let (_, answer) = call(&webhook, Method::POST, "/inject", review()).await;
    assert_eq!(answer["response"]["patchType"], "JSONPatch");
}

#[tokio::test]
async fn what_is_not_a_review_is_a_bad_request_and_too_much_is_too_large() {
    let (_publish, webhook) = webhook(state(&[]));
    let (status, body) = call(&webhook, Method::POST, "/inject", b"{\"kind\":".to_vec()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.as_str().unwrap().starts_with("not JSON: "), "{body}");
    let v1beta1 = json!({"apiVersion": "admission.k8s.io/v1beta1", "kind": "AdmissionReview"});
    let (status, body) = call(
        &webhook,
        Method::POST,
        "/inject",
        v1beta1.to_string().into(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body.as_str().unwrap().contains("wrong apiVersion or kind"),
        "{body}"
    );
    let huge = vec![b' '; MAX_BODY_BYTES + 1];
    let (status, _) = call(&webhook, Method::POST, "/inject", huge).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn probes_and_unknown_routes() {
    let (_publish, webhook) = webhook(state(&[]));
    for (method, path, status) in [
        (Method::GET, "/live", StatusCode::OK),
        (Method::GET, "/ready", StatusCode::OK),
        (Method::GET, "/inject", StatusCode::NOT_FOUND),
        (Method::POST, "/mutate", StatusCode::NOT_FOUND),
        (Method::GET, "/", StatusCode::NOT_FOUND),
    ] {
        let (got, _) = call(&webhook, method.clone(), path, Vec::new()).await;
        assert_eq!(got, status, "{method} {path}");
    }
}

#[tokio::test]
async fn not_ready_until_the_first_state_is_published() {
    let (publish, webhook) = webhook(state(&[]));
    let webhook = webhook.ready_after_first_publish();
    let (status, _) = call(&webhook, Method::GET, "/ready", Vec::new()).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let (status, _) = call(&webhook, Method::GET, "/live", Vec::new()).await;
    assert_eq!(status, StatusCode::OK, "alive all the same");

    publish.send_replace(state(&[]));
    for _ in 0..100 {
        if webhook.is_ready() {
            break;
        }
        tokio::task::yield_now().await;
    }
    let (status, _) = call(&webhook, Method::GET, "/ready", Vec::new()).await;
    assert_eq!(status, StatusCode::OK);
}
