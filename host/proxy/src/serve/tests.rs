use std::mem::size_of;

use super::*;

/// The size of the future `f` returns, without calling it.
fn future_size<A, B, C, D, F: Future>(_: impl Fn(A, B, C, D) -> F) -> usize {
    size_of::<F>()
}

/// A connection's task holds its `serve` future for as long as the
/// connection lives, idle or not (13 KB when every protocol's serving was
/// inline in it): each protocol's serving is boxed, so the task holds only
/// what its own protocol needs.
#[test]
fn a_connection_task_holds_only_its_own_protocol() {
    let task = future_size(serve);
    assert!(task <= 3 * 1024, "serve's future is {task} bytes");
    let detected = future_size(serve_detected::<MeteredIo<TcpStream>>);
    assert!(
        detected <= 1024,
        "serve_detected's future is {detected} bytes"
    );
}
