//! One tap event as a line: Linkerd's `req`/`rsp`/`end` format, the same
//! with pods and identities (`wide`), or a JSON object with every field.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use weft_api::tap::tap_event::Event;
use weft_api::tap::{Direction, TapEvent};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Wide,
    Json,
}

/// Numbers the proxies in the order they are first seen, for short ids
/// (`id=PROXY:REQUEST`, as Linkerd's).
#[derive(Default)]
pub struct ProxyNames(BTreeMap<String, usize>);

impl ProxyNames {
    fn number(&mut self, proxy: &str) -> usize {
        let next = self.0.len();
        *self.0.entry(proxy.to_string()).or_insert(next)
    }
}

pub fn line(event: &TapEvent, format: Format, names: &mut ProxyNames) -> String {
    match format {
        Format::Json => json(event).to_string(),
        Format::Table | Format::Wide => text(event, format == Format::Wide, names),
    }
}

fn direction(event: &TapEvent) -> &'static str {
    match event.direction() {
        Direction::Inbound => "in",
        Direction::Outbound => "out",
        Direction::Unspecified => "-",
    }
}

fn text(event: &TapEvent, wide: bool, names: &mut ProxyNames) -> String {
    let Some(kind) = &event.event else {
        return String::new();
    };
    let id = format!("{}:{}", names.number(&event.proxy), event.request_id);
    let mut out = String::new();
    let mut head = |tag: &str| {
        out = format!(
            "{tag} id={id} proxy={:<3} src={} dst={} tls={}",
            direction(event),
            event.source,
            event.destination,
            event.tls
        );
        if wide {
            out += &format!(" pod={}", event.proxy);
            if !event.peer_identity.is_empty() {
                out += &format!(" client_id={}", event.peer_identity);
            }
        }
    };
    match kind {
        Event::RequestInit(init) => {
            head("req");
            out += &format!(
                " :method={} :authority={} :path={}",
                init.method, init.authority, init.path
            );
        }
        Event::ResponseInit(rsp) => {
            head("rsp");
            out += &format!(
                " :status={} latency={}µs",
                rsp.status, rsp.since_request_init_us
            );
        }
        Event::ResponseEnd(end) => {
            head("end");
            if let Some(grpc) = end.grpc_status {
                out += &format!(" grpc-status={grpc}");
            }
            out += &format!(
                " duration={}µs response-length={}B",
                end.since_request_init_us, end.response_bytes
            );
            if !end.answered_by.is_empty() {
                out += &format!(" plugin={}", end.answered_by);
            }
            if !end.error.is_empty() {
                out += &format!(" error={}", end.error);
            }
        }
        Event::Error(error) => out = format!("err proxy={} {}", event.proxy, error.message),
    }
    if event.dropped > 0 {
        out += &format!(" dropped={}", event.dropped);
    }
    out
}

/// Every field, camelCase, so a request can be replayed from its `req` line.
pub fn json(event: &TapEvent) -> Value {
    let mut object = json!({
        "proxy": event.proxy,
        "id": event.request_id,
        "direction": match event.direction() {
            Direction::Inbound => "inbound",
            Direction::Outbound => "outbound",
            Direction::Unspecified => "",
        },
        "source": event.source,
        "destination": event.destination,
        "tls": event.tls,
        "peerIdentity": event.peer_identity,
        "dropped": event.dropped,
    });
    let details = match &event.event {
        Some(Event::RequestInit(init)) => json!({
            "type": "requestInit",
            "method": init.method,
            "scheme": init.scheme,
            "authority": init.authority,
            "path": init.path,
            "headers": init.headers.iter()
                .map(|h| json!({"name": h.name, "value": h.value}))
                .collect::<Vec<_>>(),
        }),
        Some(Event::ResponseInit(rsp)) => json!({
            "type": "responseInit",
            "status": rsp.status,
            "sinceRequestInitUs": rsp.since_request_init_us,
        }),
        Some(Event::ResponseEnd(end)) => json!({
            "type": "responseEnd",
            "status": end.status,
            "grpcStatus": end.grpc_status,
            "sinceRequestInitUs": end.since_request_init_us,
            "responseBytes": end.response_bytes,
            "answeredBy": end.answered_by,
            "error": end.error,
        }),
        Some(Event::Error(error)) => json!({"type": "error", "message": error.message}),
        None => json!({}),
    };
    if let (Value::Object(object), Value::Object(details)) = (&mut object, details) {
        object.extend(details);
    }
    object
}

/// An event of request `request_id` that `demo/web`'s proxy saw inbound
/// from an mTLS client, for tests of what reads tap's output.
#[cfg(test)]
pub(crate) fn inbound_event(request_id: u64, kind: Event) -> TapEvent {
    TapEvent {
        request_id,
        proxy: "demo/web".into(),
        direction: Direction::Inbound as i32,
        source: "10.0.0.1:5000".into(),
        destination: "10.0.0.2:8080".into(),
        tls: true,
        peer_identity: "app.demo.serviceaccount.identity.weft-system.cluster.local".into(),
        event: Some(kind),
        dropped: 0,
    }
}

#[cfg(test)]
mod tests {
    use weft_api::tap::{Header, RequestInit, ResponseEnd};

    use super::*;

    fn event(kind: Event) -> TapEvent {
        inbound_event(7, kind)
    }

    #[test]
    fn lines_read_like_linkerds() {
        let mut names = ProxyNames::default();
        let req = event(Event::RequestInit(RequestInit {
            method: "GET".into(),
            scheme: "http".into(),
            authority: "web.demo".into(),
            path: "/books".into(),
            headers: vec![Header {
                name: "x-user".into(),
                value: "ada".into(),
            }],
        }));
        assert_eq!(
            line(&req, Format::Table, &mut names),
            "req id=0:7 proxy=in  src=10.0.0.1:5000 dst=10.0.0.2:8080 tls=true \
             :method=GET :authority=web.demo :path=/books"
        );
        let wide = line(&req, Format::Wide, &mut names);
        assert!(wide.contains(" pod=demo/web client_id=app.demo."), "{wide}");
        let json: Value = serde_json::from_str(&line(&req, Format::Json, &mut names)).unwrap();
        assert_eq!(json["type"], "requestInit");
        assert_eq!(json["headers"][0]["value"], "ada");
        assert_eq!(json["proxy"], "demo/web");

        let end = event(Event::ResponseEnd(ResponseEnd {
            status: 403,
            since_request_init_us: 310,
            response_bytes: 9,
            answered_by: "authz".into(),
            ..ResponseEnd::default()
        }));
        assert_eq!(
            line(&end, Format::Table, &mut names),
            "end id=0:7 proxy=in  src=10.0.0.1:5000 dst=10.0.0.2:8080 tls=true \
             duration=310µs response-length=9B plugin=authz"
        );
    }
}
