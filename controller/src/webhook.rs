//! The mutating admission webhook (`weft-controller --webhook-listen`):
//! HTTPS, `POST /inject` answers an AdmissionReview v1 with
//! [`weft_inject::admission_review`], given the annotations the index holds
//! for the pod's namespace; `GET /live` and `GET /ready` are the Deployment's
//! probes. `/ready` waits for the controller's first state: before it, every
//! namespace would look unannotated and pods would go without a proxy.
//!
//! - `certificate`: the serving certificate, reloaded when its files change.

mod certificate;
#[cfg(test)]
mod tests;

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use futures_util::StreamExt;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Body;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::rustls::ServerConfig;
use weft_inject::{Owner, Settings, admission_review};

use crate::identity::accept_tls;
use crate::state::State;

pub use certificate::{CertificateError, CertificateFiles, ServingCertificate};

/// The largest AdmissionReview read (413 past it). The API server sends at
/// most its own request limit, 3 MiB; anything larger is not from it.
pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// Answers the webhook's routes from the controller's current state.
#[derive(Clone)]
pub struct Webhook {
    settings: Arc<Settings>,
    state: watch::Receiver<Arc<State>>,
    ready: Arc<AtomicBool>,
}

impl Webhook {
    /// Ready at once: `state` already holds a first state (the directory
    /// source reads the directory before anything is served).
    pub fn new(settings: Settings, state: watch::Receiver<Arc<State>>) -> Self {
        Self {
            settings: Arc::new(settings),
            state,
            ready: Arc::new(AtomicBool::new(true)),
        }
    }

    /// Not ready until `state` publishes once more: the Kubernetes source
    /// starts from an empty placeholder and publishes its first state only
    /// when every kind has been listed.
    pub fn ready_after_first_publish(self) -> Self {
        self.ready.store(false, Ordering::Release);
        let (mut state, ready) = (self.state.clone(), self.ready.clone());
        tokio::spawn(async move {
            if state.changed().await.is_ok() {
                ready.store(true, Ordering::Release);
                tracing::info!("webhook ready: the first state is in");
            }
        });
        self
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// Serves HTTPS connections from `listener` until the process ends.
    pub async fn serve(self, listener: TcpListener, tls: Arc<ServerConfig>) {
        let mut connections = std::pin::pin!(accept_tls(listener, tls));
        while let Some(connection) = connections.next().await {
            let Ok(connection) = connection else { continue };
            let webhook = self.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request| {
                    let webhook = webhook.clone();
                    async move { Ok::<_, Infallible>(webhook.respond(request).await) }
                });
                let served = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(connection), service)
                    .await;
                if let Err(error) = served {
                    tracing::debug!(%error, "webhook connection failed");
                }
            });
        }
    }

    /// One request's answer.
    pub async fn respond<B>(&self, request: Request<B>) -> Response<Full<Bytes>>
    where
        B: Body<Data = Bytes>,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        match (request.method(), request.uri().path()) {
            (&Method::GET, "/live") => text(StatusCode::OK, "live"),
            (&Method::GET, "/ready") if self.is_ready() => text(StatusCode::OK, "ready"),
            (&Method::GET, "/ready") => text(
                StatusCode::SERVICE_UNAVAILABLE,
                "waiting for the controller's first state",
            ),
            (&Method::POST, "/inject") => {
                match Limited::new(request.into_body(), MAX_BODY_BYTES)
                    .collect()
                    .await
                {
                    Ok(body) => self.review(&body.to_bytes()),
                    Err(error) if error.downcast_ref::<LengthLimitError>().is_some() => text(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        &format!("an AdmissionReview is at most {MAX_BODY_BYTES} bytes"),
                    ),
                    Err(error) => text(
                        StatusCode::BAD_REQUEST,
                        &format!("cannot read the body: {error}"),
                    ),
                }
            }
            _ => text(StatusCode::NOT_FOUND, "not found"),
        }
    }

    /// The AdmissionReview's answer, logged.
    fn review(&self, body: &[u8]) -> Response<Full<Bytes>> {
        let about = Reviewed::read(body);
        // A namespace the index does not know yet has no annotations: only
        // the pod's own can ask for a proxy.
        let annotations = self
            .state
            .borrow()
            .index
            .injection_annotations(&about.namespace)
            .cloned()
            .unwrap_or_default();
        let answer = match admission_review(body, &annotations, &self.settings) {
            Ok(answer) => answer,
            Err(error) => {
                tracing::info!(%error, "webhook request refused: not an AdmissionReview");
                return text(StatusCode::BAD_REQUEST, &error.to_string());
            }
        };
        let Reviewed {
            namespace,
            pod,
            owner,
        } = about;
        match &answer.outcome {
            Some(Ok(injected)) => {
                tracing::info!(%namespace, %pod, %owner, image = %injected.image, "pod injected")
            }
            Some(Err(refusal)) => tracing::info!(
                %namespace, %pod, %owner, reason = refusal.label(), %refusal, "pod not injected"
            ),
            None => tracing::info!(%namespace, "not the creation of a pod, left alone"),
        }
        let body = serde_json::to_vec(&answer.review).expect("a JSON value serializes");
        Response::builder()
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body)))
            .expect("a valid response")
    }
}

/// What the logs say about a review: the request's namespace, the pod's
/// name (or `generateName` and `*`, since the API server names a
/// ReplicaSet's pods after the webhooks ran) and its workload.
struct Reviewed {
    namespace: String,
    pod: String,
    owner: String,
}

impl Reviewed {
    fn read(body: &[u8]) -> Self {
        let review: Value = serde_json::from_slice(body).unwrap_or_default();
        let text = |pointer: &str| review.pointer(pointer).and_then(Value::as_str);
        let pod = match (
            text("/request/object/metadata/name"),
            text("/request/object/metadata/generateName"),
        ) {
            (Some(name), _) => name.to_string(),
            (None, Some(prefix)) => format!("{prefix}*"),
            (None, None) => "-".to_string(),
        };
        let owner = review
            .pointer("/request/object")
            .and_then(Owner::of_pod)
            .map_or_else(|| "-".to_string(), |o| format!("{}/{}", o.kind, o.name));
        Self {
            namespace: text("/request/namespace").unwrap_or_default().to_string(),
            pod,
            owner,
        }
    }
}

fn text(status: StatusCode, message: &str) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(Full::new(Bytes::from(format!("{message}\n"))))
        .expect("a valid response")
}
