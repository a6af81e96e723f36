use super::*;
use tokio::io::AsyncWriteExt;

const MAX: usize = 64 * 1024;

async fn detect_bytes(input: &[u8]) -> Detected {
    let mut io = input;
    detect(&mut io, Duration::from_secs(1), MAX).await.unwrap()
}

#[tokio::test]
async fn http2_prior_knowledge() {
    let mut input = H2_PREFACE.to_vec();
    input.extend_from_slice(b"\x00\x00\x00\x04\x00\x00\x00\x00\x00");
    match detect_bytes(&input).await {
        Detected::Http2(prefix) => assert_eq!(&prefix[..], &input[..]),
        other => panic!("expected HTTP/2, got {other:?}"),
    }
}

#[tokio::test]
async fn http1_request_keeps_every_byte() {
    let input = b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi";
    match detect_bytes(input).await {
        Detected::Http1(prefix) => assert_eq!(&prefix[..], &input[..]),
        other => panic!("expected HTTP/1, got {other:?}"),
    }
}

#[tokio::test]
async fn other_bytes_are_opaque() {
    for input in [
        &b"\x16\x03\x01\x02\x00\x01"[..],
        b"hello there\n",
        b"SSH-2.0-OpenSSH\r\n",
    ] {
        match detect_bytes(input).await {
            Detected::Opaque(prefix) => assert_eq!(&prefix[..], input),
            other => panic!("expected opaque for {input:?}, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_silent_client_times_out_as_opaque() {
    let (mut client, _server) = tokio::io::duplex(64);
    let detected = detect(&mut client, Duration::from_millis(20), MAX)
        .await
        .unwrap();
    assert!(matches!(detected, Detected::Opaque(b) if b.is_empty()));
}

#[tokio::test]
async fn a_request_line_trickled_past_the_timeout_is_still_http1() {
    let (mut client, mut server) = tokio::io::duplex(64);
    server.write_all(b"GET / HT").await.unwrap();
    let detected = detect(&mut client, Duration::from_millis(20), MAX)
        .await
        .unwrap();
    assert!(matches!(detected, Detected::Http1(b) if &b[..] == b"GET / HT"));

    let (mut client, mut server) = tokio::io::duplex(64);
    server.write_all(b"GETS").await.unwrap();
    let detected = detect(&mut client, Duration::from_millis(20), MAX)
        .await
        .unwrap();
    assert!(matches!(detected, Detected::Opaque(b) if &b[..] == b"GETS"));
}

#[tokio::test]
async fn malformed_heads_are_rejected_with_a_reason() {
    let cases: [(&[u8], &str); 4] = [
        (b"GET / HTTP/1.1\r\nbad header line\r\n\r\n", "malformed"),
        (
            b"POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
            "conflicting",
        ),
        (
            b"POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
            "both",
        ),
        (
            b"POST / HTTP/1.1\r\nContent-Length: x\r\n\r\n",
            "invalid content-length",
        ),
    ];
    for (input, why) in cases {
        match detect_bytes(input).await {
            Detected::Rejected(e @ ProxyError::MalformedRequest(_)) => {
                assert!(e.to_string().contains(why), "{e} should mention {why}")
            }
            other => panic!("expected a 400 for {input:?}, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn oversized_heads_are_rejected() {
    let mut input = b"GET / HTTP/1.1\r\nx-big: ".to_vec();
    input.resize(MAX + 10, b'a');
    match detect_bytes(&input).await {
        Detected::Rejected(ProxyError::HeadersTooLarge { limit }) => assert_eq!(limit, MAX),
        other => panic!("expected a 431, got {other:?}"),
    }
}
