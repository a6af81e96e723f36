//! The body of `/bytes/{n}`: `n` copies of `x`, handed out 64 KiB at a time
//! from one static chunk. Tests ask for gigabytes; the demo must stream them
//! without ever holding them.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};

const CHUNK_LEN: usize = 64 * 1024;
static CHUNK: [u8; CHUNK_LEN] = [b'x'; CHUNK_LEN];

pub struct RepeatedBytes {
    remaining: u64,
}

impl RepeatedBytes {
    pub fn new(len: u64) -> Self {
        Self { remaining: len }
    }
}

impl Body for RepeatedBytes {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.remaining == 0 {
            return Poll::Ready(None);
        }
        let len = usize::try_from(self.remaining).map_or(CHUNK_LEN, |r| r.min(CHUNK_LEN));
        self.remaining -= len as u64;
        Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(&CHUNK[..len])))))
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

#[cfg(test)]
mod tests {
    use std::task::Waker;

    use super::*;

    fn chunk_lens(mut body: RepeatedBytes) -> Vec<usize> {
        let mut cx = Context::from_waker(Waker::noop());
        let mut lens = Vec::new();
        while let Poll::Ready(Some(frame)) = Pin::new(&mut body).poll_frame(&mut cx) {
            let data = frame.unwrap().into_data().unwrap();
            assert!(data.iter().all(|&b| b == b'x'));
            lens.push(data.len());
        }
        assert!(body.is_end_stream());
        lens
    }

    #[test]
    fn streams_exactly_n_bytes_in_64k_chunks() {
        assert_eq!(
            chunk_lens(RepeatedBytes::new(150_000)),
            [65_536, 65_536, 18_928]
        );
        assert_eq!(chunk_lens(RepeatedBytes::new(65_536)), [65_536]);
        assert!(chunk_lens(RepeatedBytes::new(0)).is_empty());
    }

    #[test]
    fn announces_its_exact_length() {
        assert_eq!(
            RepeatedBytes::new(1 << 30).size_hint().exact(),
            Some(1 << 30)
        );
    }
}
