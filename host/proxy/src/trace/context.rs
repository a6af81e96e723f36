//! Trace context in request headers: W3C `traceparent` (with `tracestate`
//! passed on untouched) and B3, as multiple `x-b3-*` headers or the single
//! `b3` header. Parsing is strict and anything malformed is ignored, so a
//! bad header never fails a request: it just yields no span.

use http::{HeaderMap, HeaderValue};

const TRACEPARENT: &str = "traceparent";
const B3: &str = "b3";
const B3_TRACE_ID: &str = "x-b3-traceid";
const B3_SPAN_ID: &str = "x-b3-spanid";
const B3_PARENT_SPAN_ID: &str = "x-b3-parentspanid";
const B3_SAMPLED: &str = "x-b3-sampled";
const B3_FLAGS: &str = "x-b3-flags";

/// Which header format a context came in, and so goes out in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `traceparent`, with its trace flags.
    W3c { flags: u8 },
    /// `x-b3-*`; `short` for a 64-bit trace id, written back as it came.
    B3Multi { short: bool },
    /// `b3: trace-span-state[-parent]`, with its sampling state (`1`, `d`).
    B3Single { short: bool, state: u8 },
}

/// A sampled incoming context: the trace and the span that sent the
/// request. Unsampled or deferred decisions are `None` from `extract`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Context {
    pub trace_id: [u8; 16],
    pub parent_span_id: [u8; 8],
    pub format: Format,
}

/// The sampled context a request carries, W3C first, then `b3`, then
/// `x-b3-*`; `None` when there is none, it is not sampled, or it is
/// malformed.
pub fn extract(headers: &HeaderMap) -> Option<Context> {
    if let Some(value) = headers.get(TRACEPARENT) {
        return traceparent(value.as_bytes());
    }
    if let Some(value) = headers.get(B3) {
        return b3_single(value.as_bytes());
    }
    if headers.contains_key(B3_TRACE_ID) {
        return b3_multi(headers);
    }
    None
}

/// Rewrites the context's headers so the next hop's parent is `span_id`;
/// everything else (the trace id, the sampling decision, `tracestate`)
/// goes on as it came.
pub fn inject(headers: &mut HeaderMap, context: &Context, span_id: [u8; 8]) {
    let trace = |short: bool| {
        if short {
            hex(&context.trace_id[8..])
        } else {
            hex(&context.trace_id)
        }
    };
    let header = |text: String| HeaderValue::from_str(&text).expect("hex is a valid header");
    match context.format {
        Format::W3c { flags } => {
            let text = format!(
                "00-{}-{}-{flags:02x}",
                hex(&context.trace_id),
                hex(&span_id)
            );
            headers.insert(TRACEPARENT, header(text));
        }
        Format::B3Multi { short } => {
            headers.insert(B3_TRACE_ID, header(trace(short)));
            headers.insert(B3_SPAN_ID, header(hex(&span_id)));
            headers.insert(B3_PARENT_SPAN_ID, header(hex(&context.parent_span_id)));
        }
        Format::B3Single { short, state } => {
            let text = format!(
                "{}-{}-{}-{}",
                trace(short),
                hex(&span_id),
                state as char,
                hex(&context.parent_span_id)
            );
            headers.insert(B3, header(text));
        }
    }
}

/// `version-traceid-parentid-flags`, as W3C Trace Context level 1 reads
/// it: version `00` is exactly that long, a later version may add fields
/// after another `-`, `ff` is invalid, and all-zero ids are invalid.
fn traceparent(text: &[u8]) -> Option<Context> {
    if text.len() < 55 {
        return None;
    }
    match lower_hex::<1>(&text[..2])?[0] {
        0xff => return None,
        0 if text.len() != 55 => return None,
        _ if text.len() > 55 && text[55] != b'-' => return None,
        _ => {}
    }
    if text[2] != b'-' || text[35] != b'-' || text[52] != b'-' {
        return None;
    }
    let trace_id = nonzero(lower_hex::<16>(&text[3..35])?)?;
    let parent_span_id = nonzero(lower_hex::<8>(&text[36..52])?)?;
    let flags = lower_hex::<1>(&text[53..55])?[0];
    (flags & 1 == 1).then_some(Context {
        trace_id,
        parent_span_id,
        // Only the sampled bit is defined; unknown flags are not passed on.
        format: Format::W3c { flags: 1 },
    })
}

/// `{trace}-{span}-{state}[-{parent}]`; the state alone (`0`, `1`, `d`)
/// and ids without a state carry no decision to follow.
fn b3_single(text: &[u8]) -> Option<Context> {
    let mut fields = text.split(|b| *b == b'-');
    let (trace, span, state) = (fields.next()?, fields.next()?, fields.next()?);
    if let Some(parent) = fields.next() {
        nonzero(lower_hex::<8>(parent)?)?;
    }
    if fields.next().is_some() {
        return None;
    }
    let state = match state {
        b"1" => b'1',
        b"d" => b'd',
        _ => return None,
    };
    let (trace_id, short) = b3_trace_id(trace)?;
    Some(Context {
        trace_id,
        parent_span_id: nonzero(lower_hex::<8>(span)?)?,
        format: Format::B3Single { short, state },
    })
}

/// `x-b3-traceid` and `x-b3-spanid`, sampled by `x-b3-sampled: 1` (or the
/// legacy `true`) or the debug flag `x-b3-flags: 1`.
fn b3_multi(headers: &HeaderMap) -> Option<Context> {
    let text = |name| headers.get(name).map(HeaderValue::as_bytes);
    let sampled =
        matches!(text(B3_SAMPLED), Some(b"1" | b"true")) || matches!(text(B3_FLAGS), Some(b"1"));
    if !sampled {
        return None;
    }
    let (trace_id, short) = b3_trace_id(text(B3_TRACE_ID)?)?;
    Some(Context {
        trace_id,
        parent_span_id: nonzero(lower_hex::<8>(text(B3_SPAN_ID)?)?)?,
        format: Format::B3Multi { short },
    })
}

/// A B3 trace id: 32 hex digits, or 16 for a 64-bit one (kept in the low
/// half, as OTLP takes 128 bits).
fn b3_trace_id(text: &[u8]) -> Option<([u8; 16], bool)> {
    if text.len() == 16 {
        let low = lower_hex::<8>(text)?;
        let mut id = [0; 16];
        id[8..].copy_from_slice(&low);
        Some((nonzero(id)?, true))
    } else {
        Some((nonzero(lower_hex::<16>(text)?)?, false))
    }
}

/// Exactly `2 * N` lowercase hex digits.
fn lower_hex<const N: usize>(digits: &[u8]) -> Option<[u8; N]> {
    if digits.len() != 2 * N {
        return None;
    }
    let digit = |d: u8| match d {
        b'0'..=b'9' => Some(d - b'0'),
        b'a'..=b'f' => Some(d - b'a' + 10),
        _ => None,
    };
    let mut out = [0; N];
    for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        *byte = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Some(out)
}

fn nonzero<const N: usize>(id: [u8; N]) -> Option<[u8; N]> {
    (id != [0; N]).then_some(id)
}

pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut out, b| {
            let _ = write!(out, "{b:02x}");
            out
        })
}

#[cfg(test)]
#[path = "context/tests.rs"]
mod tests;
