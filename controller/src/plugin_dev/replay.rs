//! `weft plugin test --replay FILE`: requests recorded by `weft tap -o json`
//! go through the plugin again, each with the status upstream gave it then,
//! and the plugin's decision is printed beside what the mesh answered when
//! it was recorded — a new version of a policy tried on real traffic before
//! it ships.
//!
//! A tap line is one event of one request (`requestInit`, `responseInit`,
//! `responseEnd`), keyed by the proxy and the request's id; a request whose
//! `requestInit` was not recorded (the tap opened mid-request) is skipped.

use std::collections::BTreeMap;

use anyhow::{Context, bail};
use serde::Deserialize;

use super::test_file::{Case, Expect, TestDirection, TestRequest, TestResponse};
use super::test_run::Outcome;

/// One recorded request: the case to run, and what the mesh answered.
#[derive(Debug)]
pub struct Recorded {
    pub case: Case,
    pub authority: String,
    /// The status the client got then; none if the request never ended.
    pub status: Option<u16>,
    /// The plugin that answered then instead of upstream, if one did.
    pub answered_by: Option<String>,
}

/// The fields of a tap line replay reads; the rest are ignored.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Line {
    proxy: String,
    id: u64,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    direction: String,
    #[serde(default)]
    source: String,
    #[serde(default)]
    destination: String,
    #[serde(default)]
    tls: bool,
    #[serde(default)]
    peer_identity: String,
    #[serde(default)]
    method: String,
    #[serde(default)]
    authority: String,
    #[serde(default)]
    path: String,
    #[serde(default)]
    headers: Vec<Header>,
    #[serde(default)]
    status: u32,
    #[serde(default)]
    answered_by: String,
}

#[derive(Debug, Deserialize)]
struct Header {
    name: String,
    value: String,
}

/// The requests in `text` (JSON lines from `weft tap -o json`), in the order
/// they started.
pub fn read(text: &str) -> anyhow::Result<Vec<Recorded>> {
    let mut requests: BTreeMap<(String, u64), (usize, Recorded)> = BTreeMap::new();
    for (number, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let line: Line = serde_json::from_str(line)
            .with_context(|| format!("line {}: not a `weft tap -o json` event", number + 1))?;
        let key = (line.proxy.clone(), line.id);
        match line.kind.as_str() {
            "requestInit" => {
                let recorded =
                    recorded(&line).with_context(|| format!("line {}: the request", number + 1))?;
                requests.insert(key, (number, recorded));
            }
            "responseInit" | "responseEnd" => {
                if let Some((_, recorded)) = requests.get_mut(&key) {
                    if line.status != 0 {
                        recorded.status = u16::try_from(line.status).ok();
                    }
                    if !line.answered_by.is_empty() {
                        recorded.answered_by = Some(line.answered_by);
                    }
                }
            }
            _ => {}
        }
    }
    if requests.is_empty() {
        bail!("no request in it: a `weft tap -o json` line of type `requestInit` starts one");
    }
    let mut requests: Vec<(usize, Recorded)> = requests.into_values().collect();
    requests.sort_by_key(|(number, _)| *number);
    Ok(requests
        .into_iter()
        .map(|(_, mut recorded)| {
            // Upstream answers again what it answered then; a request a
            // plugin answered has no upstream answer to replay.
            if recorded.answered_by.is_none()
                && let Some(status) = recorded.status
            {
                recorded.case.response.status = status;
            }
            recorded
        })
        .collect())
}

fn recorded(line: &Line) -> anyhow::Result<Recorded> {
    let direction = match line.direction.as_str() {
        "outbound" => TestDirection::Outbound,
        _ => TestDirection::Inbound,
    };
    let mut headers: BTreeMap<String, String> = BTreeMap::new();
    for header in &line.headers {
        // A repeated header is joined as one line, as HTTP allows.
        headers
            .entry(header.name.to_ascii_lowercase())
            .and_modify(|value| {
                value.push_str(", ");
                value.push_str(&header.value);
            })
            .or_insert_with(|| header.value.clone());
    }
    // Over HTTP/2 the authority is no header: the plugin reads it as Host.
    if !line.authority.is_empty() {
        headers
            .entry("host".into())
            .or_insert_with(|| line.authority.clone());
    }
    let local_port = line
        .destination
        .parse::<std::net::SocketAddr>()
        .map(|addr| addr.port())
        .with_context(|| format!("destination {:?}", line.destination))?;
    let request = TestRequest {
        method: line.method.clone(),
        path: line.path.clone(),
        headers,
        direction,
        peer_identity: (line.tls && !line.peer_identity.is_empty())
            .then(|| line.peer_identity.clone()),
        client_addr: line.source.clone(),
        local_port,
    };
    Ok(Recorded {
        case: Case {
            name: format!("{} {}{}", line.method, line.authority, line.path),
            config: None,
            request,
            response: TestResponse::default(),
            expect: Expect::default(),
        },
        authority: line.authority.clone(),
        status: None,
        answered_by: None,
    })
}

/// One line of the report: what was recorded and what the plugin does now.
pub fn report(recorded: &Recorded, outcome: &Outcome) -> (String, bool) {
    let then = match (recorded.status, &recorded.answered_by) {
        (Some(status), Some(plugin)) => format!("{status} by {plugin}"),
        (Some(status), None) => status.to_string(),
        (None, _) => "no response".into(),
    };
    let mut now = if outcome.failure.is_some() {
        format!("{} (plugin failed)", outcome.status)
    } else if outcome.body.is_some() {
        format!("{} by the plugin", outcome.status)
    } else {
        outcome.status.to_string()
    };
    if let Some(backend) = &outcome.backend {
        now += &format!(", backend {backend}");
    }
    if outcome.retry {
        now += ", retry asked";
    }
    let changed = recorded.status != Some(outcome.status);
    let mark = if changed { "CHANGED" } else { "same" };
    let line = format!(
        "{mark:<8}{} {}{}: then {then}, now {now}",
        recorded.case.request.method, recorded.authority, recorded.case.request.path
    );
    let line = match &outcome.failure {
        Some(failure) => format!("{line}\n        {failure}"),
        None => line,
    };
    (line, changed)
}

#[cfg(test)]
mod tests {
    use weft_api::tap::tap_event::Event;
    use weft_api::tap::{Header, RequestInit, ResponseEnd, ResponseInit};

    use super::*;
    use crate::tap::cli::{inbound_event, json};

    fn event(id: u64, kind: Event) -> String {
        json(&inbound_event(id, kind)).to_string()
    }

    fn init(path: &str) -> Event {
        Event::RequestInit(RequestInit {
            method: "POST".into(),
            scheme: "http".into(),
            authority: "web.demo:8080".into(),
            path: path.into(),
            headers: vec![
                Header {
                    name: "x-user".into(),
                    value: "ada".into(),
                },
                Header {
                    name: "x-user".into(),
                    value: "bob".into(),
                },
            ],
        })
    }

    fn end(status: u32, answered_by: &str) -> Event {
        Event::ResponseEnd(ResponseEnd {
            status,
            answered_by: answered_by.into(),
            ..Default::default()
        })
    }

    #[test]
    fn tap_lines_become_requests_in_the_order_they_started() {
        let lines = [
            event(2, init("/b")),
            event(1, init("/a")),
            event(
                1,
                Event::ResponseInit(ResponseInit {
                    status: 503,
                    ..Default::default()
                }),
            ),
            event(1, end(503, "")),
            event(2, end(403, "authz")),
            // A request whose start the tap did not see.
            event(3, end(200, "")),
        ]
        .join("\n");
        let requests = read(&lines).unwrap();
        assert_eq!(requests.len(), 2);
        let (b, a) = (&requests[0], &requests[1]);
        assert_eq!(b.case.request.path, "/b");
        assert_eq!(
            (b.status, b.answered_by.as_deref()),
            (Some(403), Some("authz"))
        );
        assert_eq!((a.status, a.answered_by.as_deref()), (Some(503), None));
        let request = &a.case.request;
        assert_eq!(request.method, "POST");
        assert_eq!(request.headers["x-user"], "ada, bob");
        assert_eq!(request.headers["host"], "web.demo:8080");
        assert_eq!(request.local_port, 8080);
        assert_eq!(request.client_addr, "10.0.0.1:5000");
        assert!(
            request
                .peer_identity
                .as_deref()
                .unwrap()
                .starts_with("app.demo.")
        );
        assert_eq!(a.case.response.status, 503, "upstream answers as then");
        assert_eq!(
            b.case.response.status, 200,
            "authz answered: no upstream answer"
        );
    }

    #[test]
    fn lines_that_are_not_tap_events_are_refused_by_number() {
        let err = read("{\"proxy\": \"p\"}").unwrap_err();
        assert!(format!("{err:#}").contains("line 1"), "{err:#}");
        let err = read(&event(1, end(200, ""))).unwrap_err();
        assert!(err.to_string().contains("no request"), "{err}");
    }

    #[test]
    fn the_report_marks_a_changed_decision() {
        let requests = read(&[event(1, init("/a")), event(1, end(200, ""))].join("\n")).unwrap();
        let recorded = &requests[0];
        let denied = Outcome {
            status: 403,
            body: Some("denied".into()),
            ..Outcome::default()
        };
        let (line, changed) = report(recorded, &denied);
        assert!(changed);
        assert_eq!(
            line,
            "CHANGED POST web.demo:8080/a: then 200, now 403 by the plugin"
        );
        let passed = Outcome {
            status: 200,
            ..Outcome::default()
        };
        assert_eq!(
            report(recorded, &passed),
            (
                "same    POST web.demo:8080/a: then 200, now 200".into(),
                false
            )
        );
    }
}
