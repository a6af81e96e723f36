use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use weft_api::tap::tap_event::Event;
use weft_api::tap::{Match, ObserveRequest, TapEvent};

use super::*;
use crate::{BoxBody, Direction};

fn conn() -> ConnectionInfo {
    ConnectionInfo {
        direction: Direction::Inbound,
        client: "127.0.0.1:5000".parse().unwrap(),
        target: Some("127.0.0.1:8080".parse().unwrap()),
        local_port: 8080,
        tls: true,
        client_id: Some("web.demo.serviceaccount.identity.weft-system.cluster.local".into()),
    }
}

fn get(path: &str) -> Request<()> {
    Request::get(path)
        .header("host", "app.demo:8080")
        .header("x-user", "ada")
        .body(())
        .unwrap()
}

fn response(status: u16, body: &'static str) -> Response<BoxBody> {
    let body = Full::new(Bytes::from(body))
        .map_err(|never| match never {})
        .boxed();
    Response::builder().status(status).body(body).unwrap()
}

/// Sends `rsp` through `recording` and reads its body to the end.
async fn complete(recording: Recording, rsp: Response<BoxBody>) {
    let rsp = recording.attach(rsp, None);
    rsp.into_body().collect().await.unwrap();
}

fn drain(rx: &mut mpsc::Receiver<TapEvent>) -> Vec<Event> {
    std::iter::from_fn(|| rx.try_recv().ok())
        .map(|e| e.event.unwrap())
        .collect()
}

#[tokio::test]
async fn with_no_tap_open_nothing_is_recorded() {
    let taps = Arc::new(Taps::default());
    assert!(taps.observe(&get("/"), &conn()).is_none());
    let (open, _rx) = taps.subscribe(ObserveRequest::default());
    assert_eq!(taps.open(), 1);
    drop(open);
    assert_eq!(taps.open(), 0, "the client went away: the tap is closed");
    assert!(taps.observe(&get("/"), &conn()).is_none());
}

#[tokio::test]
async fn a_tapped_request_is_seen_from_head_to_end() {
    let taps = Arc::new(Taps::default());
    let (_open, mut rx) = taps.subscribe(ObserveRequest::default());
    let recording = taps.observe(&get("/books?page=2"), &conn()).unwrap();
    complete(recording, response(200, "twelve bytes")).await;
    let first = drain(&mut rx);
    let [
        Event::RequestInit(init),
        Event::ResponseInit(rsp),
        Event::ResponseEnd(end),
    ] = &first[..]
    else {
        panic!("req, rsp, end: {first:?}");
    };
    assert_eq!(
        (
            init.method.as_str(),
            init.authority.as_str(),
            init.path.as_str()
        ),
        ("GET", "app.demo:8080", "/books?page=2")
    );
    assert!(
        init.headers
            .iter()
            .any(|h| h.name == "x-user" && h.value == "ada")
    );
    assert_eq!(rsp.status, 200);
    assert_eq!((end.status, end.response_bytes), (200, 12));
}

#[tokio::test]
async fn matches_narrow_what_is_tapped() {
    let taps = Arc::new(Taps::default());
    let filter = Match {
        method: "POST".into(),
        path_prefix: "/books".into(),
        ..Match::default()
    };
    let (_open, mut rx) = taps.subscribe(ObserveRequest {
        r#match: Some(filter),
        ..ObserveRequest::default()
    });
    assert!(taps.observe(&get("/books"), &conn()).is_none(), "a GET");
    let post = |path| Request::post(path).body(()).unwrap();
    assert!(taps.observe(&post("/authors"), &conn()).is_none());
    assert!(taps.observe(&post("/books/1"), &conn()).is_some());
    assert_eq!(drain(&mut rx).len(), 1, "one request's head");
}

#[tokio::test]
async fn a_status_match_sends_only_the_requests_whose_status_it_names() {
    let taps = Arc::new(Taps::default());
    let (_open, mut rx) = taps.subscribe(ObserveRequest {
        r#match: Some(Match {
            status_min: 500,
            status_max: 599,
            ..Match::default()
        }),
        ..ObserveRequest::default()
    });
    let ok = taps.observe(&get("/fine"), &conn()).unwrap();
    assert!(drain(&mut rx).is_empty(), "the head waits for the status");
    complete(ok, response(200, "")).await;
    assert!(drain(&mut rx).is_empty());
    let failing = taps.observe(&get("/broken"), &conn()).unwrap();
    complete(failing, response(503, "")).await;
    let events = drain(&mut rx);
    assert!(
        matches!(&events[..], [Event::RequestInit(i), Event::ResponseInit(_), Event::ResponseEnd(e)]
            if i.path == "/broken" && e.status == 503),
        "{events:?}"
    );
}

#[tokio::test]
async fn the_rate_cap_and_the_limit_bound_a_tap() {
    let taps = Arc::new(Taps::default());
    let (_open, _rx) = taps.subscribe(ObserveRequest {
        max_rps: 2,
        ..ObserveRequest::default()
    });
    let seen = (0..5)
        .filter(|_| taps.observe(&get("/"), &conn()).is_some())
        .count();
    assert_eq!(seen, 2, "two a second");

    let taps = Arc::new(Taps::default());
    let (_open, mut rx) = taps.subscribe(ObserveRequest {
        limit: 1,
        ..ObserveRequest::default()
    });
    let last = taps.observe(&get("/"), &conn()).unwrap();
    assert_eq!(taps.open(), 0, "its limit is reached");
    complete(last, response(200, "")).await;
    assert_eq!(drain(&mut rx).len(), 3);
    assert!(
        rx.recv().await.is_none(),
        "the stream ends after its last request"
    );
}

#[tokio::test]
async fn a_slow_reader_loses_events_and_is_told_how_many() {
    let taps = Arc::new(Taps::default());
    let (_open, mut rx) = taps.subscribe(ObserveRequest {
        max_rps: 10_000,
        ..ObserveRequest::default()
    });
    let requests = EVENTS_BUFFERED + 10;
    for _ in 0..requests {
        let _held = taps.observe(&get("/"), &conn()).unwrap();
    }
    let received = std::iter::from_fn(|| rx.try_recv().ok()).count();
    assert_eq!(received, EVENTS_BUFFERED, "never more than the buffer");
    let next = taps.observe(&get("/"), &conn()).unwrap();
    drop(next);
    let told = rx.try_recv().unwrap();
    assert_eq!(told.dropped, 10);
}
