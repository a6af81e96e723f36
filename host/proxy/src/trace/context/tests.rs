use http::HeaderMap;

use super::*;

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const SPAN: &str = "00f067aa0ba902b7";
const NEW: [u8; 8] = [0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88];

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    pairs
        .iter()
        .map(|(k, v)| {
            (
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_bytes(v.as_bytes()).unwrap(),
            )
        })
        .collect()
}

fn get<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers.get(name).unwrap().to_str().unwrap()
}

#[test]
fn a_sampled_traceparent_is_followed_and_gets_a_new_parent() {
    let mut h = headers(&[
        ("traceparent", &format!("00-{TRACE}-{SPAN}-01")),
        ("tracestate", "vendor=opaque,other=1"),
    ]);
    let context = extract(&h).expect("sampled");
    assert_eq!(hex(&context.trace_id), TRACE);
    assert_eq!(hex(&context.parent_span_id), SPAN);
    inject(&mut h, &context, NEW);
    assert_eq!(
        get(&h, "traceparent"),
        format!("00-{TRACE}-1122334455667788-01")
    );
    assert_eq!(get(&h, "tracestate"), "vendor=opaque,other=1");
}

#[test]
fn an_unsampled_or_malformed_traceparent_yields_nothing() {
    let cases = [
        format!("00-{TRACE}-{SPAN}-00"),
        format!("00-{}-{SPAN}-01", "0".repeat(32)),
        format!("00-{TRACE}-{}-01", "0".repeat(16)),
        format!("00-{}-{SPAN}-01", TRACE.to_uppercase()),
        format!("ff-{TRACE}-{SPAN}-01"),
        format!("00-{TRACE}-{SPAN}-01-extra"),
        format!("00_{TRACE}-{SPAN}-01"),
        format!("00-{TRACE}-{SPAN}-0"),
        format!("00-{TRACE}-{SPAN}-zz"),
        format!("00-{TRACE}-{}-01", "é".repeat(8)),
        String::new(),
        "garbage".into(),
    ];
    for case in cases {
        let h = headers(&[("traceparent", &case)]);
        assert_eq!(extract(&h), None, "{case}");
    }
}

#[test]
fn a_later_traceparent_version_is_read_by_its_known_fields() {
    let h = headers(&[("traceparent", &format!("01-{TRACE}-{SPAN}-03-more"))]);
    let context = extract(&h).expect("a future version with more fields");
    // Written back as the version this proxy speaks, with only the sampled flag.
    let mut out = HeaderMap::new();
    inject(&mut out, &context, NEW);
    assert_eq!(
        get(&out, "traceparent"),
        format!("00-{TRACE}-1122334455667788-01")
    );
    let bad = headers(&[("traceparent", &format!("01-{TRACE}-{SPAN}-03more"))]);
    assert_eq!(extract(&bad), None);
}

#[test]
fn b3_multi_headers_are_followed_keeping_a_short_trace_id_short() {
    let short = &TRACE[16..];
    let mut h = headers(&[
        ("x-b3-traceid", short),
        ("x-b3-spanid", SPAN),
        ("x-b3-parentspanid", "0000000000000001"),
        ("x-b3-sampled", "1"),
    ]);
    let context = extract(&h).expect("sampled");
    assert_eq!(hex(&context.trace_id), format!("{}{short}", "0".repeat(16)));
    inject(&mut h, &context, NEW);
    assert_eq!(get(&h, "x-b3-traceid"), short);
    assert_eq!(get(&h, "x-b3-spanid"), "1122334455667788");
    assert_eq!(get(&h, "x-b3-parentspanid"), SPAN);
    assert_eq!(get(&h, "x-b3-sampled"), "1");

    let debug = headers(&[
        ("x-b3-traceid", TRACE),
        ("x-b3-spanid", SPAN),
        ("x-b3-flags", "1"),
    ]);
    assert!(extract(&debug).is_some(), "the debug flag samples");
}

#[test]
fn b3_multi_without_a_yes_or_with_bad_ids_yields_nothing() {
    for (sampled, trace, span) in [
        (None, TRACE, SPAN),
        (Some("0"), TRACE, SPAN),
        (Some("yes"), TRACE, SPAN),
        (Some("1"), "abc", SPAN),
        (Some("1"), TRACE, "abc"),
        (Some("1"), TRACE, "0000000000000000"),
        (Some("1"), &"0".repeat(32), SPAN),
    ] {
        let mut pairs = vec![("x-b3-traceid", trace), ("x-b3-spanid", span)];
        pairs.extend(sampled.map(|s| ("x-b3-sampled", s)));
        assert_eq!(extract(&headers(&pairs)), None, "{pairs:?}");
    }
}

#[test]
fn the_single_b3_header_is_followed_with_its_state() {
    for (state, sent) in [("1", "1"), ("d", "d")] {
        let mut h = headers(&[("b3", &format!("{TRACE}-{SPAN}-{state}-0000000000000001"))]);
        let context = extract(&h).expect("sampled");
        inject(&mut h, &context, NEW);
        assert_eq!(
            get(&h, "b3"),
            format!("{TRACE}-1122334455667788-{sent}-{SPAN}")
        );
    }
    let short = &TRACE[16..];
    let mut h = headers(&[("b3", &format!("{short}-{SPAN}-1"))]);
    let context = extract(&h).expect("sampled, no parent");
    inject(&mut h, &context, NEW);
    assert_eq!(get(&h, "b3"), format!("{short}-1122334455667788-1-{SPAN}"));
}

#[test]
fn a_single_b3_header_without_a_yes_or_malformed_yields_nothing() {
    for case in [
        "1".to_string(),
        "0".into(),
        "d".into(),
        format!("{TRACE}-{SPAN}"),
        format!("{TRACE}-{SPAN}-0"),
        format!("{TRACE}-{SPAN}-1-bad"),
        format!("{TRACE}-{SPAN}-1-{SPAN}-extra"),
        format!("{TRACE}x-{SPAN}-1"),
        String::new(),
    ] {
        assert_eq!(extract(&headers(&[("b3", &case)])), None, "{case}");
    }
}

#[test]
fn w3c_wins_over_b3_and_no_header_means_no_trace() {
    let h = headers(&[
        ("traceparent", &format!("00-{TRACE}-{SPAN}-01")),
        ("b3", &format!("{TRACE}-{SPAN}-1")),
    ]);
    assert!(matches!(extract(&h).unwrap().format, Format::W3c { .. }));
    assert_eq!(extract(&HeaderMap::new()), None);
}
