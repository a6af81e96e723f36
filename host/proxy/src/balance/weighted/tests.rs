use std::convert::Infallible;
use std::time::Duration;

use futures_util::stream::{self, FuturesUnordered, StreamExt};
use tower::ServiceExt;
use tower::discover::Change;

use super::*;

/// An endpoint that answers with its index after 10 ms.
fn endpoint(
    index: usize,
) -> impl Service<(), Response = usize, Error = Infallible, Future: Send + 'static> + Send {
    tower::service_fn(move |()| async move {
        tokio::time::sleep(Duration::from_millis(10)).await;
        Ok::<_, Infallible>(index)
    })
}

/// How many of `picks` requests, 40 in flight at a time, tower's P2C sends
/// to each of two endpoints weighing `weights`, loaded as `wrap` says.
async fn shares<S>(
    weights: [u32; 2],
    picks: usize,
    wrap: impl Fn(usize, u32) -> Weighted<S>,
) -> [usize; 2]
where
    S: Service<(), Response = usize, Error = Infallible> + Send + 'static,
    S::Future: Send + 'static,
{
    let inserts: Vec<_> = weights
        .iter()
        .enumerate()
        .map(|(i, weight)| Ok::<_, Infallible>(Change::Insert(i, wrap(i, *weight))))
        .collect();
    let discover = Box::pin(stream::iter(inserts).chain(stream::pending()));
    let mut balancer = tower::balance::p2c::Balance::new(discover);
    let mut in_flight = FuturesUnordered::new();
    let mut counts = [0; 2];
    let mut sent = 0;
    while sent < picks || !in_flight.is_empty() {
        if sent < picks && in_flight.len() < 40 {
            let ready = balancer.ready().await.unwrap();
            in_flight.push(ready.call(()));
            sent += 1;
        } else if let Some(answered) = in_flight.next().await {
            counts[answered.unwrap()] += 1;
        }
    }
    counts
}

fn share_of_first(counts: [usize; 2]) -> f64 {
    counts[0] as f64 / (counts[0] + counts[1]) as f64
}

#[tokio::test(start_paused = true)]
async fn in_flight_load_divided_by_weight_gives_one_to_three() {
    let counts = shares([2_500, 7_500], 4_000, |i, weight| {
        Weighted::in_flight(endpoint(i), weight)
    })
    .await;
    let first = share_of_first(counts);
    assert!((0.20..=0.30).contains(&first), "{counts:?}");
}

#[tokio::test(start_paused = true)]
async fn peak_ewma_load_divided_by_weight_gives_one_to_three() {
    let counts = shares([2_500, 7_500], 4_000, |i, weight| {
        Weighted::peak_ewma(
            endpoint(i),
            weight,
            Duration::from_millis(30),
            Duration::from_secs(10),
        )
    })
    .await;
    let first = share_of_first(counts);
    assert!((0.20..=0.30).contains(&first), "{counts:?}");
}

#[tokio::test(start_paused = true)]
async fn equal_weights_share_evenly() {
    let counts = shares([10_000, 10_000], 4_000, |i, weight| {
        Weighted::peak_ewma(
            endpoint(i),
            weight,
            Duration::from_millis(30),
            Duration::from_secs(10),
        )
    })
    .await;
    let first = share_of_first(counts);
    assert!((0.45..=0.55).contains(&first), "{counts:?}");
}

#[tokio::test(start_paused = true)]
async fn a_request_in_flight_loads_its_endpoint_by_its_weight() {
    let mut heavy = Weighted::in_flight(endpoint(0), 20_000);
    assert_eq!(heavy.load(), 0.0);
    let answer = heavy.ready().await.unwrap().call(());
    assert_eq!(heavy.load(), 0.5, "one request, twice the default weight");
    answer.await.unwrap();
    assert_eq!(heavy.load(), 0.0);

    // Peak EWMA: latency times (in flight + 1), the latency jumping to a
    // slower answer at once.
    let mut slow = Weighted::peak_ewma(
        endpoint(0),
        DEFAULT_WEIGHT,
        Duration::from_millis(1),
        Duration::from_secs(10),
    );
    slow.ready().await.unwrap().call(()).await.unwrap();
    let ms = slow.load() / 1e6;
    assert!((9.9..=10.1).contains(&ms), "{ms} ms");
}
