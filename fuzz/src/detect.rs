//! Protocol detection over bytes a client could send: whatever the proxy
//! decides, it hands back exactly the bytes it read, and an HTTP/1 head it
//! accepts is one httparse reads completely within the head limit.

use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, ReadBuf};
use weft_proxy::detect::Detected;

/// Small, so inputs a fuzzer makes reach the 431 paths.
const MAX_HEAD: usize = 1024;
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// The input, delivered a few bytes per read as a slow client would, then
/// end of stream: detection must decide on partial heads too. It is never
/// pending, so the timeout never decides.
struct Trickle<'a> {
    data: &'a [u8],
    chunk: usize,
}

impl AsyncRead for Trickle<'_> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let n = self.chunk.min(self.data.len()).min(buf.remaining());
        let (now, rest) = self.data.split_at(n);
        buf.put_slice(now);
        self.data = rest;
        Poll::Ready(Ok(()))
    }
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a current-thread runtime builds")
    })
}

pub fn detect(data: &[u8]) {
    // All at once, and in odd-sized pieces that split tokens and CRLFs.
    for chunk in [usize::MAX, 7] {
        let mut io = Trickle { data, chunk };
        let detected = runtime()
            .block_on(weft_proxy::detect::detect(
                &mut io,
                Duration::from_secs(60),
                MAX_HEAD,
            ))
            .expect("reading from memory cannot fail");
        let consumed = data.len() - io.data.len();
        check(&data[..consumed], detected);
    }
}

fn check(read: &[u8], detected: Detected) {
    match detected {
        Detected::Http2(bytes) => {
            assert_eq!(bytes, read, "HTTP/2 must hand back what it read");
            assert!(bytes.starts_with(H2_PREFACE), "HTTP/2 without the preface");
        }
        Detected::Http1(bytes) => {
            assert_eq!(bytes, read, "HTTP/1 must hand back what it read");
            let mut headers = [httparse::EMPTY_HEADER; 100];
            let mut request = httparse::Request::new(&mut headers);
            match request.parse(&bytes) {
                Ok(httparse::Status::Complete(head)) => {
                    assert!(head <= MAX_HEAD, "accepted a {head}-byte head");
                }
                other => panic!("accepted an HTTP/1 head httparse reads as {other:?}"),
            }
        }
        Detected::Opaque(bytes) => assert_eq!(bytes, read, "opaque must hand back what it read"),
        Detected::Rejected(_) => {}
    }
}
