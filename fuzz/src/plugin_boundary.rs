//! The plugin boundary: what a plugin hands back to the proxy. The input is
//! a script for the `scripted` test plugin (`plugins/test-plugins/scripted`):
//! header edits with any names and values, a local answer with any status,
//! headers and body, any backend text, deadlines, retries. One real proxy
//! (in this process, on loopback) runs that plugin; each input is one request
//! through it, carrying its script, to a loopback upstream that records what
//! arrived. What must hold:
//!
//! - the proxy answers, with a response that is valid HTTP/1.1: a final
//!   status, one framing that matches the body, no hop-by-hop headers;
//! - what upstream receives is a valid request whose body framing holds;
//! - valid edits are applied, invalid ones are ignored (the proxy logs them)
//!   without disturbing the rest; a local answer with a status that is not a
//!   final one (200–599) becomes a 500; an invalid backend is a 400 and a
//!   deadline may give a 504, each with the proxy's error header.

#[path = "../../plugins/test-plugins/scripted/src/script.rs"]
#[allow(dead_code)]
mod script;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use clap::{Args, FromArgMatches};
use http::{HeaderName, HeaderValue};
use script::Action;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

use crate::components::component;

/// The header the script travels in (the plugin's `SCRIPT_HEADER`).
const SCRIPT_HEADER: &str = "x-weft-script";
/// Upstream's answer: it names `x-up-hop` as hop-by-hop, for the proxy to drop.
const UPSTREAM_RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nx-upstream: yes\r\n\
connection: x-up-hop\r\nx-up-hop: 1\r\nkeep-alive: timeout=60\r\n\r\nok";
/// Headers whose meaning is the connection's or the message's framing; the
/// proxy and hyper own them, so the model does not predict them.
const MANAGED: [&str; 11] = [
    "connection",
    "content-length",
    "host",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "x-up-hop",
    SCRIPT_HEADER,
];
/// Never in what the proxy sends a client (it answers `connection: close`
/// to the harness's `connection: close`).
const HOP_BY_HOP: [&str; 6] = [
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "upgrade",
    "x-up-hop",
];
/// Generous: a busy machine must not fail an input; a proxy that never
/// answers does.
const ANSWER_WITHIN: Duration = Duration::from_secs(60);

/// What upstream received for one request.
#[derive(Debug)]
struct Received {
    headers: Vec<(String, Vec<u8>)>,
    /// `Err` says how the request's framing failed.
    body: Result<Vec<u8>, String>,
}

struct Harness {
    runtime: tokio::runtime::Runtime,
    proxy: SocketAddr,
    upstream: SocketAddr,
    received: Arc<Mutex<HashMap<u64, Vec<Received>>>>,
}

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(Harness::start)
}

impl Harness {
    fn start() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime");
        let received = Arc::default();
        let upstream = runtime.block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0")
                .await
                .expect("upstream binds");
            let addr = listener.local_addr().expect("an address");
            tokio::spawn(upstream(listener, Arc::clone(&received)));
            addr
        });

        let dir = std::env::temp_dir().join(format!("weft-fuzz-boundary-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a scratch directory");
        let chain = serde_json::json!({"plugins": [{
            "name": "scripted",
            "module": component("scripted"),
            "timeoutMs": 5000,
        }]});
        let chain_file = dir.join("plugins.json");
        std::fs::write(&chain_file, chain.to_string()).expect("writing the chain");

        let [inbound, outbound, admin, tap] = free_ports();
        let matches =
            <weft_proxy::config::Config as Args>::augment_args(clap::Command::new("fuzz"))
                .get_matches_from(["fuzz"]);
        let mut config =
            weft_proxy::config::Config::from_arg_matches(&matches).expect("the default config");
        config.inbound_listen_addr = inbound;
        config.outbound_listen_addr = outbound;
        config.admin_listen_addr = admin;
        config.tap_listen_addr = tap;
        config.inbound_app_addr = Some(upstream);
        config.plugins_config = Some(chain_file);
        config.plugin_cache_dir = PathBuf::from(&dir).join("cache");
        config.controller_addr = None;
        runtime.spawn(async move {
            if let Err(error) = weft_proxy::run(config, std::future::pending()).await {
                panic!("the proxy stopped: {error}");
            }
        });
        runtime.block_on(ready(admin));
        Harness {
            runtime,
            proxy: inbound,
            upstream,
            received,
        }
    }
}

/// Ports free a moment ago, for the proxy's listeners.
fn free_ports() -> [SocketAddr; 4] {
    let listeners: Vec<_> = (0..4)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("a free port"))
        .collect();
    std::array::from_fn(|i| listeners[i].local_addr().expect("an address"))
}

/// Until the admin server says the chain is in.
async fn ready(admin: SocketAddr) {
    for _ in 0..600 {
        if let Ok(mut conn) = TcpStream::connect(admin).await {
            let ask = b"GET /ready HTTP/1.1\r\nhost: admin\r\nconnection: close\r\n\r\n";
            let mut answer = Vec::new();
            if conn.write_all(ask).await.is_ok()
                && conn.read_to_end(&mut answer).await.is_ok()
                && answer.starts_with(b"HTTP/1.1 200")
            {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the proxy was not ready within a minute");
}

/// Records each request by the id in its path (`/fuzz/<id>`) and answers it.
async fn upstream(listener: TcpListener, received: Arc<Mutex<HashMap<u64, Vec<Received>>>>) {
    loop {
        let Ok((conn, _)) = listener.accept().await else {
            continue;
        };
        let received = Arc::clone(&received);
        tokio::spawn(async move {
            let mut conn = BufReader::new(conn);
            while let Some((id, got)) = read_request(&mut conn).await {
                let framed = got.body.is_ok();
                received.lock().unwrap().entry(id).or_default().push(got);
                if !framed || conn.get_mut().write_all(UPSTREAM_RESPONSE).await.is_err() {
                    return;
                }
            }
        });
    }
}

/// One request's head and body; `None` at the end of the connection.
async fn read_request<R: AsyncRead + Unpin>(conn: &mut R) -> Option<(u64, Received)> {
    let head = read_head(conn).await?;
    let mut fields = [httparse::EMPTY_HEADER; 256];
    let mut req = httparse::Request::new(&mut fields);
    let parsed = req.parse(&head);
    let path = req.path.unwrap_or_default();
    let id = path.strip_prefix("/fuzz/").and_then(|id| id.parse().ok());
    let Some(id) = id.filter(|_| matches!(parsed, Ok(httparse::Status::Complete(_)))) else {
        panic!(
            "upstream got a request it cannot read ({parsed:?}): {:?}",
            String::from_utf8_lossy(&head)
        );
    };
    let headers: Vec<(String, Vec<u8>)> = req
        .headers
        .iter()
        .map(|h| (h.name.to_ascii_lowercase(), h.value.to_vec()))
        .collect();
    let body = read_body(conn, &headers).await;
    Some((id, Received { headers, body }))
}

async fn read_head<R: AsyncRead + Unpin>(conn: &mut R) -> Option<Vec<u8>> {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        assert!(head.len() < 1 << 20, "a head over 1 MiB");
        match conn.read_u8().await {
            Ok(byte) => head.push(byte),
            Err(_) if head.is_empty() => return None,
            Err(e) => panic!(
                "a head cut short ({e}): {:?}",
                String::from_utf8_lossy(&head)
            ),
        }
    }
    Some(head)
}

/// The body as the message's framing says (RFC 9112 §6.3), or why it cannot be read.
async fn read_body<R: AsyncRead + Unpin>(
    conn: &mut R,
    headers: &[(String, Vec<u8>)],
) -> Result<Vec<u8>, String> {
    let values = |name: &str| -> Vec<&[u8]> {
        headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
            .collect()
    };
    let (lengths, codings) = (values("content-length"), values("transfer-encoding"));
    if !codings.is_empty() {
        if !lengths.is_empty() {
            return Err("both Content-Length and Transfer-Encoding".into());
        }
        let last = codings
            .last()
            .unwrap()
            .rsplit(|b| *b == b',')
            .next()
            .unwrap();
        if !last.trim_ascii().eq_ignore_ascii_case(b"chunked") {
            return Err(format!(
                "transfer-encoding {codings:?} does not end in chunked"
            ));
        }
        return read_chunked(conn).await;
    }
    let Some(first) = lengths.first() else {
        return Ok(Vec::new());
    };
    if lengths.iter().any(|l| l != first) {
        return Err(format!("conflicting content-length {lengths:?}"));
    }
    let length: usize = std::str::from_utf8(first)
        .ok()
        .and_then(|l| l.parse().ok())
        .ok_or_else(|| format!("content-length {:?}", String::from_utf8_lossy(first)))?;
    let mut body = vec![0; length.min(1 << 20)];
    conn.read_exact(&mut body)
        .await
        .map_err(|e| format!("a {length}-byte body cut short: {e}"))?;
    Ok(body)
}

async fn read_chunked<R: AsyncRead + Unpin>(conn: &mut R) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    loop {
        let line = read_line(conn).await?;
        let size = line.split(|b| *b == b';').next().unwrap_or_default();
        let size = std::str::from_utf8(size)
            .ok()
            .and_then(|s| usize::from_str_radix(s.trim(), 16).ok())
            .ok_or_else(|| format!("chunk size {:?}", String::from_utf8_lossy(&line)))?;
        if size == 0 {
            // Trailers, then the empty line.
            while !read_line(conn).await?.is_empty() {}
            return Ok(body);
        }
        let start = body.len();
        body.resize(start + size.min(1 << 20), 0);
        conn.read_exact(&mut body[start..])
            .await
            .map_err(|e| format!("a chunk cut short: {e}"))?;
        if !read_line(conn).await?.is_empty() {
            return Err("no CRLF after a chunk".into());
        }
    }
}

async fn read_line<R: AsyncRead + Unpin>(conn: &mut R) -> Result<Vec<u8>, String> {
    let mut line = Vec::new();
    while !line.ends_with(b"\r\n") {
        line.push(
            conn.read_u8()
                .await
                .map_err(|e| format!("a chunked body cut short: {e}"))?,
        );
    }
    line.truncate(line.len() - 2);
    Ok(line)
}

/// The script as the input reads (lines that do not parse are skipped),
/// with two edits that keep the run on loopback and its bookkeeping whole: a
/// backend that is a valid authority becomes upstream's address (the test
/// must not resolve or reach other hosts), and edits of the script's own
/// header are dropped (the response hook reads it).
fn script(data: &[u8], upstream: SocketAddr) -> Vec<Action> {
    String::from_utf8_lossy(data)
        .lines()
        .filter_map(|line| script::parse_line(line).ok())
        .filter_map(|action| match action {
            Action::Backend(text) if http::uri::Authority::try_from(text.as_str()).is_ok() => {
                Some(Action::Backend(upstream.to_string()))
            }
            Action::ReqSet(name, _) | Action::ReqRemove(name)
                if name.eq_ignore_ascii_case(SCRIPT_HEADER) =>
            {
                None
            }
            other => Some(other),
        })
        .collect()
}

pub fn plugin_boundary(data: &[u8]) {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let harness = harness();
    let actions = script(data, harness.upstream);
    let id = NEXT.fetch_add(1, Ordering::Relaxed);
    let request = format!(
        "GET /fuzz/{id} HTTP/1.1\r\nhost: app.test\r\nx-client: original\r\n\
         {SCRIPT_HEADER}: {}\r\nconnection: close\r\n\r\n",
        script::to_hex(&script::write(&actions))
    );
    let answer = harness.runtime.block_on(async {
        let exchange = async {
            let mut conn = TcpStream::connect(harness.proxy).await?;
            conn.write_all(request.as_bytes()).await?;
            let mut answer = Vec::new();
            conn.read_to_end(&mut answer).await?;
            std::io::Result::Ok(answer)
        };
        tokio::time::timeout(ANSWER_WITHIN, exchange)
            .await
            .unwrap_or_else(|_| panic!("no answer within {ANSWER_WITHIN:?} to {actions:?}"))
            .expect("the proxy answers")
    });
    let received = harness.received.lock().unwrap().remove(&id);
    check(&actions, &answer, received.as_deref());
}

/// A response as the client read it.
struct Answer {
    status: u16,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
}

impl Answer {
    fn values(&self, name: &str) -> Vec<&[u8]> {
        self.headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
            .collect()
    }
}

/// The response must be one valid HTTP/1.1 message, framed as it says.
fn parse_answer(bytes: &[u8]) -> Answer {
    let shown = || String::from_utf8_lossy(bytes).into_owned();
    let mut fields = [httparse::EMPTY_HEADER; 256];
    let mut rsp = httparse::Response::new(&mut fields);
    let head = match rsp.parse(bytes) {
        Ok(httparse::Status::Complete(head)) => head,
        other => panic!(
            "the proxy answered what is not HTTP ({other:?}): {:?}",
            shown()
        ),
    };
    let status = rsp.code.expect("a parsed status");
    assert!(
        (200..=599).contains(&status),
        "the proxy answered status {status}, not a final one: {:?}",
        shown()
    );
    let headers: Vec<(String, Vec<u8>)> = rsp
        .headers
        .iter()
        .map(|h| (h.name.to_ascii_lowercase(), h.value.to_vec()))
        .collect();
    let mut rest = &bytes[head..];
    let body = harness()
        .runtime
        .block_on(read_body(&mut rest, &headers))
        .unwrap_or_else(|e| panic!("the response's framing fails ({e}): {:?}", shown()));
    assert!(rest.is_empty(), "bytes after the response: {:?}", shown());
    if status == 204 || status == 304 {
        assert!(body.is_empty(), "a {status} with a body: {:?}", shown());
    }
    Answer {
        status,
        headers,
        body,
    }
}

/// What a sequence of set and remove edits leaves of each (valid, not
/// managed) header name they touch: `None` when removed.
fn edits<'a>(
    actions: impl Iterator<Item = (&'a str, Option<&'a str>)>,
) -> HashMap<HeaderName, Option<HeaderValue>> {
    let mut result = HashMap::new();
    for (name, value) in actions {
        let Ok(header) = HeaderName::try_from(name) else {
            continue;
        };
        if MANAGED.contains(&header.as_str()) {
            continue;
        }
        match value.map(HeaderValue::try_from) {
            None => {
                result.insert(header, None);
            }
            Some(Ok(value)) => {
                result.insert(header, Some(value));
            }
            // Refused: the header stays as it was.
            Some(Err(_)) => {}
        }
    }
    result
}

fn check(actions: &[Action], bytes: &[u8], received: Option<&[Received]>) {
    let answer = parse_answer(bytes);
    let context = || {
        format!(
            "script {actions:?}, answer {:?}",
            String::from_utf8_lossy(bytes)
        )
    };
    for name in HOP_BY_HOP {
        assert!(
            answer.values(name).is_empty(),
            "`{name}` reached the client: {}",
            context()
        );
    }
    let proxy_error = !answer.values("x-weft-proxy-error").is_empty();

    // The request hook's answer: the last `respond`, with every `respond-header`.
    let local = actions.iter().fold(None, |local, action| match action {
        Action::Respond(status, body) => Some((*status, body.as_str())),
        Action::RespondHeader(..) => local.or(Some((200, ""))),
        _ => local,
    });
    if let Some((status, body)) = local {
        assert!(
            received.is_none(),
            "a local answer went upstream: {}",
            context()
        );
        if (200..=599).contains(&status) {
            assert_eq!(answer.status, status, "{}", context());
            if status != 204 && status != 304 {
                assert_eq!(answer.body, body.as_bytes(), "{}", context());
            }
        } else {
            assert_eq!(
                answer.status,
                500,
                "status {status} was sent: {}",
                context()
            );
        }
        let mut expected: HashMap<HeaderName, Vec<HeaderValue>> = HashMap::new();
        for action in actions {
            if let Action::RespondHeader(name, value) = action
                && let (Ok(name), Ok(value)) = (
                    HeaderName::try_from(name.as_str()),
                    HeaderValue::try_from(value.as_str()),
                )
                && !MANAGED.contains(&name.as_str())
                && name != "date"
            {
                expected.entry(name).or_default().push(value);
            }
        }
        if (200..=599).contains(&status) {
            for (name, values) in expected {
                let got = answer.values(name.as_str());
                assert_eq!(
                    got,
                    values.iter().map(HeaderValue::as_bytes).collect::<Vec<_>>(),
                    "the answer's `{name}`: {}",
                    context()
                );
            }
        }
        return;
    }

    let invalid_backend = actions.iter().any(
        |a| matches!(a, Action::Backend(b) if http::uri::Authority::try_from(b.as_str()).is_err()),
    );
    let deadline = actions.iter().any(|a| matches!(a, Action::Timeout(_)));
    let host_edit = actions.iter().any(|a| {
        matches!(a,
        Action::ReqSet(n, _) | Action::ReqRemove(n) if n.eq_ignore_ascii_case("host"))
    });
    let Some(received) = received.filter(|r| !r.is_empty()) else {
        // Nothing went upstream: the proxy must have said why.
        assert!(
            proxy_error,
            "no request upstream and no error: {}",
            context()
        );
        let explained = (invalid_backend && answer.status == 400)
            || (deadline && answer.status == 504)
            || (host_edit && answer.status == 400);
        assert!(
            explained,
            "answered {} without asking upstream: {}",
            answer.status,
            context()
        );
        return;
    };
    for got in received {
        if let Err(e) = &got.body {
            panic!(
                "upstream got a request whose framing fails ({e}): {got:?}, {}",
                context()
            );
        }
        let expected = edits(actions.iter().filter_map(|a| match a {
            Action::ReqSet(n, v) => Some((n.as_str(), Some(v.as_str()))),
            Action::ReqRemove(n) => Some((n.as_str(), None)),
            _ => None,
        }));
        for (name, value) in &expected {
            let got: Vec<&[u8]> = got
                .headers
                .iter()
                .filter(|(n, _)| n == name.as_str())
                .map(|(_, v)| v.as_slice())
                .collect();
            let want: Vec<&[u8]> = value.iter().map(HeaderValue::as_bytes).collect();
            assert_eq!(got, want, "upstream's `{name}`: {}", context());
        }
        if !expected.keys().any(|name| name == "x-client") {
            assert!(
                got.headers
                    .iter()
                    .any(|(n, v)| n == "x-client" && v == b"original"),
                "an untouched header was lost: {got:?}, {}",
                context()
            );
        }
    }
    if proxy_error {
        // Upstream answered, yet the proxy failed the request: only a
        // deadline that passed meanwhile may do that.
        assert!(deadline && answer.status == 504, "{}", context());
        return;
    }
    assert_eq!(answer.status, 200, "{}", context());
    assert_eq!(answer.body, b"ok", "{}", context());
    let expected = edits(actions.iter().filter_map(|a| match a {
        Action::RspSet(n, v) => Some((n.as_str(), Some(v.as_str()))),
        Action::RspRemove(n) => Some((n.as_str(), None)),
        _ => None,
    }));
    for (name, value) in &expected {
        let want: Vec<&[u8]> = value.iter().map(HeaderValue::as_bytes).collect();
        assert_eq!(
            answer.values(name.as_str()),
            want,
            "the response's `{name}`: {}",
            context()
        );
    }
    if !expected.keys().any(|name| name == "x-upstream") {
        assert_eq!(answer.values("x-upstream"), [b"yes"], "{}", context());
    }
}
