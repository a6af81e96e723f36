//! `GET /api/v1/tap?resource=deploy/NAME&namespace=NS`: a resource's live
//! requests as server-sent events, one `data:` line per tap event in `weft
//! tap -o json`'s shape, from the same relay the CLI uses.
//!
//! The page cannot ask for more than a person can read: at most
//! [`MAX_RPS`] requests a second from each proxy and [`MAX_LIMIT`] in all
//! (defaults [`DEFAULT_RPS`] and [`DEFAULT_LIMIT`]). The stream ends with
//! an `end` event after the limit, and as soon as the page goes away: a
//! comment every [`KEEP_ALIVE`] finds a closed connection even when no
//! request comes, and dropping the stream closes every proxy's tap.

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use tonic::Code;
use weft_api::tap::tap_relay_server::TapRelay;
use weft_api::tap::{Match, TapRequest};

use crate::tap::TapRelayApi;

pub const DEFAULT_RPS: u32 = 10;
pub const MAX_RPS: u32 = 100;
pub const DEFAULT_LIMIT: u32 = 100;
pub const MAX_LIMIT: u32 = 1000;
pub const KEEP_ALIVE: Duration = Duration::from_secs(10);

/// Why a tap was not opened: an HTTP status and a message.
pub type Refusal = (http::StatusCode, String);

/// The relay's request for `params`, or why the parameters are wrong.
pub fn request(params: &HashMap<String, String>) -> Result<TapRequest, String> {
    let get = |name: &str| {
        params
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    };
    let number = |name: &str, default: u32, max: u32| -> Result<u32, String> {
        match get(name) {
            None => Ok(default),
            Some(text) => match text.parse::<u32>() {
                Ok(n) if (1..=max).contains(&n) => Ok(n),
                _ => Err(format!(
                    "{name} must be a number from 1 to {max}, not `{text}`"
                )),
            },
        }
    };
    let resource = get("resource").ok_or("resource is required, e.g. deploy/web")?;
    let (status_min, status_max) = match get("status") {
        None => (0, 0),
        Some(range) => status_range(range)?,
    };
    Ok(TapRequest {
        resource: resource.to_string(),
        namespace: get("namespace").unwrap_or("default").to_string(),
        r#match: Some(Match {
            method: get("method").unwrap_or_default().to_string(),
            authority: get("authority").unwrap_or_default().to_string(),
            path_prefix: get("path").unwrap_or_default().to_string(),
            status_min,
            status_max,
        }),
        limit: number("limit", DEFAULT_LIMIT, MAX_LIMIT)?,
        max_rps: number("max_rps", DEFAULT_RPS, MAX_RPS)?,
    })
}

/// `500-599` or `404`.
fn status_range(text: &str) -> Result<(u32, u32), String> {
    let status = |s: &str| {
        s.trim()
            .parse::<u32>()
            .ok()
            .filter(|n| (100..=599).contains(n))
            .ok_or_else(|| format!("status: `{text}` is not a status or a range like 500-599"))
    };
    let (min, max) = match text.split_once('-') {
        Some((min, max)) => (status(min)?, status(max)?),
        None => (status(text)?, status(text)?),
    };
    if min > max {
        return Err(format!("status: `{text}` is an empty range"));
    }
    Ok((min, max))
}

/// Opens the tap and returns its events as the chunks of an event stream.
pub async fn open(
    relay: &TapRelayApi,
    request: TapRequest,
) -> Result<impl Stream<Item = Bytes> + Send + 'static, Refusal> {
    let merged = relay
        .tap(tonic::Request::new(request))
        .await
        .map_err(|status| {
            let code = match status.code() {
                Code::InvalidArgument => http::StatusCode::BAD_REQUEST,
                Code::NotFound => http::StatusCode::NOT_FOUND,
                _ => http::StatusCode::BAD_GATEWAY,
            };
            (code, status.message().to_string())
        })?
        .into_inner();
    let mut keep_alive = tokio::time::interval(KEEP_ALIVE);
    keep_alive.reset();
    let stream = futures_util::stream::unfold(Some((merged, keep_alive)), |open| async move {
        let (mut merged, mut keep_alive) = open?;
        let chunk = tokio::select! {
            event = merged.next() => match event {
                Some(Ok(event)) => format!("data: {}\n\n", crate::tap::cli::json(&event)),
                Some(Err(status)) => {
                    let error = serde_json::json!({ "error": status.message() });
                    format!("event: error\ndata: {error}\n\n")
                }
                None => return Some((Bytes::from_static(b"event: end\ndata: {}\n\n"), None)),
            },
            _ = keep_alive.tick() => ": keep-alive\n\n".to_string(),
        };
        Some((Bytes::from(chunk), Some((merged, keep_alive))))
    });
    Ok(stream)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_tap_is_bounded_by_default_and_never_beyond_the_caps() {
        let request = request(&params(&[("resource", "deploy/web")])).unwrap();
        assert_eq!(request.namespace, "default");
        assert_eq!(
            (request.max_rps, request.limit),
            (DEFAULT_RPS, DEFAULT_LIMIT)
        );
        let filtered = super::request(&params(&[
            ("resource", "deploy/web"),
            ("namespace", "shop"),
            ("status", "500-599"),
            ("path", "/api"),
            ("max_rps", "100"),
            ("limit", "1000"),
        ]))
        .unwrap();
        let matched = filtered.r#match.unwrap();
        assert_eq!((matched.status_min, matched.status_max), (500, 599));
        assert_eq!(matched.path_prefix, "/api");
        assert_eq!((filtered.max_rps, filtered.limit), (100, 1000));
        for bad in [
            vec![],
            vec![("resource", "deploy/web"), ("max_rps", "101")],
            vec![("resource", "deploy/web"), ("limit", "0")],
            vec![("resource", "deploy/web"), ("limit", "1001")],
            vec![("resource", "deploy/web"), ("limit", "lots")],
            vec![("resource", "deploy/web"), ("status", "599-500")],
            vec![("resource", "deploy/web"), ("status", "5xx")],
        ] {
            assert!(super::request(&params(&bad)).is_err(), "{bad:?}");
        }
    }
}
