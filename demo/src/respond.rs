//! Answering each test route. Every answer names the service in
//! `x-demo-name`, so a test can tell which upstream the proxy picked.

use std::collections::HashMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderMap, HeaderValue};
use hyper::{Method, Request, Response, StatusCode, Version};

use crate::repeated_body::RepeatedBytes;
use crate::route::Route;

/// Unsync because hyper's `Incoming` (echoed back as is) is not `Sync`.
pub type DemoBody = UnsyncBoxBody<Bytes, hyper::Error>;

/// The service: its name, the same as a header value (checked once at
/// startup), and what `/flaky` remembers.
pub struct Service {
    pub name: String,
    pub header: HeaderValue,
    pub flaky: Mutex<HashMap<String, u32>>,
    /// Added before every answer: a slow replica.
    pub delay: Duration,
}

pub async fn respond(req: Request<Incoming>, service: &Service) -> Response<DemoBody> {
    if !service.delay.is_zero() {
        tokio::time::sleep(service.delay).await;
    }
    let mut rsp = match Route::parse(req.uri().path()) {
        Route::Hello => text(StatusCode::OK, format!("hello from {}\n", service.name)),
        // The body goes back as it arrives: echoing a large upload must not
        // buffer it.
        Route::Echo => Response::new(req.into_body().boxed_unsync()),
        Route::Headers => text(
            StatusCode::OK,
            describe_request(req.method(), req.uri().path(), req.version(), req.headers()),
        ),
        Route::Status(status) if forbids_content(status) => text(status, String::new()),
        Route::Status(status) => text(status, format!("status {}\n", status.as_u16())),
        Route::Delay(delay) => {
            tokio::time::sleep(delay).await;
            text(StatusCode::OK, format!("waited {}ms\n", delay.as_millis()))
        }
        Route::Bytes(len) => {
            let body = RepeatedBytes::new(len).map_err(|never| match never {});
            let mut rsp = Response::new(body.boxed_unsync());
            rsp.headers_mut().insert(CONTENT_LENGTH, len.into());
            rsp
        }
        Route::Flaky { failures, key } => {
            let seen = {
                let mut flaky = service.flaky.lock().unwrap_or_else(|p| p.into_inner());
                let seen = flaky.entry(key).or_default();
                *seen += 1;
                *seen
            };
            let mut rsp = if seen <= failures {
                // Read the request first, as a server that failed while
                // handling it would have.
                let _ = req.into_body().collect().await;
                text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("failure {seen} of {failures}\n"),
                )
            } else {
                Response::new(req.into_body().boxed_unsync())
            };
            rsp.headers_mut().insert("x-demo-attempt", seen.into());
            rsp
        }
        Route::BadRequest(reason) => text(StatusCode::BAD_REQUEST, format!("{reason}\n")),
        Route::NotFound => text(StatusCode::NOT_FOUND, "not found\n".to_owned()),
    };
    rsp.headers_mut()
        .insert("x-demo-name", service.header.clone());
    rsp
}

/// Responses that must not carry content: HTTP/2 peers reset the stream
/// if one does.
fn forbids_content(status: StatusCode) -> bool {
    matches!(status.as_u16(), 204 | 205 | 304)
}

fn text(status: StatusCode, body: String) -> Response<DemoBody> {
    let body = Full::new(Bytes::from(body)).map_err(|never| match never {});
    let mut rsp = Response::new(body.boxed_unsync());
    *rsp.status_mut() = status;
    rsp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    rsp
}

/// The request line, then headers sorted by name so tests can compare
/// whole bodies; repeated headers keep their order (the sort is stable).
fn describe_request(method: &Method, path: &str, version: Version, headers: &HeaderMap) -> String {
    let mut out = format!("{method} {path} {version:?}\n");
    let mut sorted: Vec<_> = headers.iter().collect();
    sorted.sort_by_key(|(name, _)| name.as_str());
    for (name, value) in sorted {
        let _ = writeln!(out, "{name}: {}", String::from_utf8_lossy(value.as_bytes()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_request_line_and_sorted_headers() {
        let mut headers = HeaderMap::new();
        headers.insert("user-agent", HeaderValue::from_static("curl/8"));
        headers.append("x-b", HeaderValue::from_static("2"));
        headers.append("x-b", HeaderValue::from_static("1"));
        headers.insert("host", HeaderValue::from_static("app"));
        assert_eq!(
            describe_request(&Method::GET, "/headers", Version::HTTP_11, &headers),
            "GET /headers HTTP/1.1\nhost: app\nuser-agent: curl/8\nx-b: 2\nx-b: 1\n"
        );
        assert_eq!(
            describe_request(
                &Method::POST,
                "/headers",
                Version::HTTP_2,
                &HeaderMap::new()
            ),
            "POST /headers HTTP/2.0\n"
        );
    }
}
