//! The proxy's checks of request and response heads (`headers.rs`): hop-by-hop
//! stripping, and the rewrite of an HTTP/1 request into the HTTP/2 one that
//! carries it between proxies. The first byte picks the options (relay an
//! upgrade; the request's version); the rest is `name: value` lines, kept
//! when the `http` crate takes them, as hyper would have parsed them.

use std::collections::BTreeMap;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Request, Version};
use weft_proxy::headers;

/// Always removed (RFC 9110 §7.6.1, and the obsolete ones proxies still see).
const HOP_BY_HOP: [&str; 5] = [
    "keep-alive",
    "proxy-connection",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

pub fn http_head(data: &[u8]) {
    let Some((&options, text)) = data.split_first() else {
        return;
    };
    let keep_upgrade = options & 1 == 1;
    let version = match (options >> 1) & 3 {
        0 => Version::HTTP_10,
        1 => Version::HTTP_2,
        _ => Version::HTTP_11,
    };
    let mut map = HeaderMap::new();
    for line in text.split(|b| *b == b'\n') {
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        let (name, value) = (&line[..colon], line[colon + 1..].trim_ascii());
        if let (Ok(name), Ok(value)) =
            (HeaderName::from_bytes(name), HeaderValue::from_bytes(value))
        {
            map.append(name, value);
        }
    }
    strip(&map, keep_upgrade);
    mesh_h2(map, version);
}

/// Every header a `Connection` line names, and every hop-by-hop header, is
/// gone; `te` survives only as `trailers`; the rest is as it came: the same
/// values per name, in the same order (order across names carries no
/// meaning, RFC 9110 §5.3).
fn strip(before: &HeaderMap, keep_upgrade: bool) {
    let mut after = before.clone();
    headers::strip_hop_by_hop(&mut after, keep_upgrade);

    let named: Vec<String> = before
        .get_all(header::CONNECTION)
        .iter()
        .flat_map(|v| v.as_bytes().split(|b| *b == b','))
        .map(|t| String::from_utf8_lossy(t.trim_ascii()).to_ascii_lowercase())
        .collect();
    let relayed_upgrade = |name: &str| keep_upgrade && name == "upgrade";
    for name in &named {
        if !relayed_upgrade(name) {
            assert!(
                !after.contains_key(name.as_str()),
                "`{name}` named by Connection was kept: {after:?}"
            );
        }
    }
    for name in HOP_BY_HOP {
        if !relayed_upgrade(name) {
            assert!(!after.contains_key(name), "hop-by-hop `{name}` kept");
        }
    }
    for te in after.get_all(header::TE) {
        assert!(te == "trailers", "te `{te:?}` forwarded");
    }
    let connection: Vec<_> = after.get_all(header::CONNECTION).iter().collect();
    if keep_upgrade {
        assert_eq!(connection, ["upgrade"], "an upgrade relays as itself");
    } else {
        assert!(connection.is_empty(), "Connection forwarded");
    }

    let special = |name: &str| {
        name == "connection"
            || name == "te"
            || HOP_BY_HOP.contains(&name)
            || named.iter().any(|n| n == name)
    };
    let by_name = |map: &HeaderMap| -> BTreeMap<String, Vec<HeaderValue>> {
        map.keys()
            .filter(|name| !special(name.as_str()))
            .map(|name| {
                (
                    name.to_string(),
                    map.get_all(name).iter().cloned().collect(),
                )
            })
            .collect()
    };
    assert_eq!(
        by_name(before),
        by_name(&after),
        "end-to-end headers changed"
    );
}

/// An HTTP/1 request becomes HTTP/2 routed by its Host, or by the fallback
/// address without one; an invalid Host is refused; the far side restores
/// the version and removes the marker.
fn mesh_h2(map: HeaderMap, version: Version) {
    let fallback = "10.0.0.1:8080".parse().expect("an address");
    let mut req = Request::new(());
    *req.version_mut() = version;
    *req.headers_mut() = map;
    let host = req.headers().get(header::HOST).cloned();
    let converted = headers::to_mesh_h2(&mut req, fallback);
    if version == Version::HTTP_2 {
        converted.expect("HTTP/2 is left alone");
        assert_eq!(req.headers().get(header::HOST), host.as_ref());
        return;
    }
    let authority = host
        .as_ref()
        .map(|h| http::uri::Authority::try_from(h.as_bytes()));
    match (converted, authority) {
        (Err(_), Some(Err(_))) => return,
        (Err(e), _) => panic!("refused a request with a valid Host ({host:?}): {e}"),
        (Ok(()), Some(Err(_))) => panic!("accepted the invalid Host {host:?}"),
        (Ok(()), Some(Ok(authority))) => assert_eq!(req.uri().authority(), Some(&authority)),
        (Ok(()), None) => assert_eq!(req.uri().authority().unwrap(), "10.0.0.1:8080"),
    }
    assert_eq!(req.version(), Version::HTTP_2);
    assert!(
        !req.headers().contains_key(header::HOST),
        "Host beside :authority"
    );
    headers::from_mesh_h2(&mut req);
    assert_eq!(req.version(), version, "the version came back");
    assert!(!req.headers().contains_key("weft-orig-proto"));
}
