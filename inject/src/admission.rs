//! [`admission_review`]: the mutating webhook's answer. An AdmissionReview
//! v1 comes in as the API server sends it; the same review goes back with
//! a `response` that always allows the pod, carrying a JSON patch when the
//! pod was injected and the reason when it was not.

use k8s_openapi::ByteString;
use serde_json::{Value, json};

use crate::annotations::Annotations;
use crate::inject::{Injected, PodContext, inject};
use crate::owner::Owner;
use crate::patch::diff;
use crate::{Refusal, Settings};

pub const API_VERSION: &str = "admission.k8s.io/v1";
pub const KIND: &str = "AdmissionReview";

/// The webhook's answer, and what it decided, for logs and metrics.
#[derive(Clone, Debug, PartialEq)]
pub struct Answer {
    /// The AdmissionReview to send back.
    pub review: Value,
    /// `None` when the request was not the creation of a pod.
    pub outcome: Option<Result<Injected, Refusal>>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    #[error("not JSON: {0}")]
    NotJson(#[from] serde_json::Error),
    #[error("not an {API_VERSION} {KIND}: {0}")]
    NotAReview(&'static str),
}

/// Answers an AdmissionReview for a pod: injected when the pod or its
/// namespace (`namespace_annotations`, which the caller looks up by the
/// request's namespace) is annotated `weft.io/inject: enabled`. A pod is
/// never denied: a refusal answers `allowed` without a patch, with the
/// reason in `status.message`, and as a warning to whoever created the pod
/// when it had asked for a proxy.
pub fn admission_review(
    review: &[u8],
    namespace_annotations: &Annotations,
    settings: &Settings,
) -> Result<Answer, ReviewError> {
    let review: Value = serde_json::from_slice(review)?;
    if review.get("apiVersion").and_then(Value::as_str) != Some(API_VERSION)
        || review.get("kind").and_then(Value::as_str) != Some(KIND)
    {
        return Err(ReviewError::NotAReview("wrong apiVersion or kind"));
    }
    let request = review
        .get("request")
        .ok_or(ReviewError::NotAReview("no request"))?;
    let uid = request
        .get("uid")
        .and_then(Value::as_str)
        .ok_or(ReviewError::NotAReview("no request.uid"))?;
    let text = |field: &str| request.get(field).and_then(Value::as_str);
    let kind = request.pointer("/kind/kind").and_then(Value::as_str);
    let resource = request
        .pointer("/resource/resource")
        .and_then(Value::as_str);
    let (Some("Pod"), Some("pods"), Some("CREATE"), Some(pod)) = (
        kind,
        resource,
        text("operation"),
        request.get("object").filter(|o| o.is_object()),
    ) else {
        let response = json!({
            "uid": uid,
            "allowed": true,
            "status": {"code": 200, "message": "weft: not the creation of a pod, left alone"},
        });
        return Ok(Answer {
            review: answer(response),
            outcome: None,
        });
    };

    let owner = Owner::of_pod(pod);
    let context = PodContext {
        owner: owner.as_ref(),
        namespace: text("namespace"),
        namespace_annotations,
        require_annotation: true,
    };
    let mut injected = pod.clone();
    let outcome = inject(&mut injected, &context, settings);
    let response = match &outcome {
        Ok(_) => {
            let patch = serde_json::to_vec(&diff(pod, &injected))?;
            json!({
                "uid": uid,
                "allowed": true,
                "patchType": "JSONPatch",
                "patch": ByteString(patch),
            })
        }
        Err(refusal) => {
            let message = format!("weft: not injected: {refusal}");
            let mut response = json!({
                "uid": uid,
                "allowed": true,
                "status": {"code": 200, "message": message},
            });
            if !refusal.is_expected() {
                response["warnings"] = json!([message]);
            }
            response
        }
    };
    Ok(Answer {
        review: answer(response),
        outcome: Some(outcome),
    })
}

fn answer(response: Value) -> Value {
    json!({"apiVersion": API_VERSION, "kind": KIND, "response": response})
}
