//! The webhook: a real AdmissionReview in, and its patch applied by an
//! independent JSON patch implementation gives exactly what `inject` gives.

use k8s_openapi::ByteString;
use serde_json::{Value, json};
use weft_inject::{Annotations, Owner, PodContext, Refusal, admission_review, inject};

use super::*;

fn review() -> Value {
    let text = std::fs::read_to_string(fixtures().join("admission-review.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn annotated(value: &str) -> Annotations {
    Annotations::from([("linkerd.io/inject".to_string(), value.to_string())])
}

fn answer(review: &Value, namespace: &Annotations) -> weft_inject::Answer {
    admission_review(&serde_json::to_vec(review).unwrap(), namespace, &settings()).unwrap()
}

/// The pod the API server would store: the request's object, patched.
pub fn patched_pod() -> Value {
    let review = review();
    let answer = answer(&review, &annotated("enabled"));
    let patch: ByteString = serde_json::from_value(answer.review["response"]["patch"].clone())
        .expect("the patch is base64");
    let patch: json_patch::Patch = serde_json::from_slice(&patch.0).expect("an RFC 6902 patch");
    let mut pod = review["request"]["object"].clone();
    json_patch::patch(&mut pod, &patch).expect("the patch applies");
    pod
}

#[test]
fn the_patch_gives_exactly_what_inject_gives() {
    let review = review();
    let namespace = annotated("enabled");
    let answer = answer(&review, &namespace);
    let response = &answer.review["response"];
    assert_eq!(answer.review["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(answer.review["kind"], "AdmissionReview");
    assert_eq!(response["uid"], review["request"]["uid"]);
    assert_eq!(response["allowed"], true);
    assert_eq!(response["patchType"], "JSONPatch");
    assert!(matches!(answer.outcome, Some(Ok(_))));

    let object = &review["request"]["object"];
    let mut expected = object.clone();
    let owner = Owner::of_pod(object);
    let context = PodContext {
        owner: owner.as_ref(),
        namespace: Some("emojivoto"),
        namespace_annotations: &namespace,
        require_annotation: true,
    };
    inject(&mut expected, &context, &settings()).unwrap();
    let pod = patched_pod();
    assert_eq!(pod, expected);
    assert_eq!(pod["metadata"]["labels"]["weft.io/proxy-deployment"], "web");
    assert_eq!(
        pod["metadata"]["labels"]["weft.io/workload-ns"],
        "emojivoto"
    );
    let names: Vec<&str> = pod["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["weft-proxy", "web-svc"]);

    // Only additions: nothing the API server or other webhooks set is replaced.
    let patch: ByteString = serde_json::from_value(response["patch"].clone()).unwrap();
    let ops: Value = serde_json::from_slice(&patch.0).unwrap();
    assert!(ops.as_array().unwrap().iter().all(|op| op["op"] == "add"));
    let pretty = serde_json::to_string_pretty(&ops).unwrap() + "\n";
    let golden = fixtures().join("admission-review.patch.golden.json");
    assert_eq!(check_golden(&golden, &pretty), None);
}

#[test]
fn a_refused_pod_is_allowed_without_a_patch_and_with_the_reason() {
    let mut review = review();
    review["request"]["object"]["spec"]["hostNetwork"] = json!(true);
    let answer = answer(&review, &annotated("enabled"));
    let response = &answer.review["response"];
    assert_eq!(response["allowed"], true);
    assert!(response.get("patch").is_none() && response.get("patchType").is_none());
    let message = "weft: not injected: the pod has hostNetwork: true";
    assert_eq!(response["status"]["message"], message);
    assert_eq!(
        response["warnings"],
        json!([message]),
        "it asked for a proxy"
    );
    assert_eq!(answer.outcome, Some(Err(Refusal::HostNetwork)));
}

#[test]
fn a_pod_nobody_asked_to_inject_is_allowed_without_a_warning() {
    for namespace in [Annotations::new(), annotated("disabled")] {
        let answer = answer(&review(), &namespace);
        let response = &answer.review["response"];
        assert_eq!(response["allowed"], true);
        assert!(response.get("patch").is_none());
        assert!(response.get("warnings").is_none());
        assert!(matches!(answer.outcome, Some(Err(refusal)) if refusal.is_expected()));
    }
}

#[test]
fn the_pods_annotation_wins_over_its_namespaces() {
    let mut review = review();
    review["request"]["object"]["metadata"]["annotations"] = json!({"weft.io/inject": "enabled"});
    let answer = answer(&review, &annotated("disabled"));
    assert!(matches!(answer.outcome, Some(Ok(_))));
}

#[test]
fn anything_but_a_pod_creation_is_left_alone() {
    let mut update = review();
    update["request"]["operation"] = json!("UPDATE");
    let mut deployment = review();
    deployment["request"]["kind"] = json!({"group": "apps", "version": "v1", "kind": "Deployment"});
    for review in [update, deployment] {
        let answer = answer(&review, &annotated("enabled"));
        assert_eq!(answer.outcome, None);
        assert_eq!(answer.review["response"]["allowed"], true);
        assert!(answer.review["response"].get("patch").is_none());
    }
}

#[test]
fn what_is_not_a_review_is_an_error() {
    let settings = settings();
    let none = Annotations::new();
    assert!(admission_review(b"not json", &none, &settings).is_err());
    let v1beta1 = json!({"apiVersion": "admission.k8s.io/v1beta1", "kind": "AdmissionReview",
                         "request": {"uid": "1"}});
    let bytes = serde_json::to_vec(&v1beta1).unwrap();
    assert!(admission_review(&bytes, &none, &settings).is_err());
    let no_uid = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                        "request": {}});
    let bytes = serde_json::to_vec(&no_uid).unwrap();
    assert!(admission_review(&bytes, &none, &settings).is_err());
}
