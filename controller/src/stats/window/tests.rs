//! Rates and quantiles over real scrapes of backend's sidecar, taken 10 s
//! apart: 17 successes, then 42, then 42 and the first 5 failures.

use std::time::{Duration, Instant};

use super::super::scrape::parse;
use super::super::{Labels, Matcher, Selector};
use super::Window;

const SCRAPES: [&str; 3] = [
    include_str!("../fixtures/backend-1.txt"),
    include_str!("../fixtures/backend-2.txt"),
    include_str!("../fixtures/backend-3.txt"),
];

fn pod(name: &str) -> Labels {
    [
        ("namespace", "demo"),
        ("pod", name),
        ("deployment", "backend"),
    ]
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .into()
}

/// The window after `count` scrapes, 10 s apart from `start`.
fn window(start: Instant, count: usize) -> Window {
    let mut window = Window::new(Duration::from_secs(60));
    for (i, text) in SCRAPES.iter().cycle().take(count).enumerate() {
        let at = start + Duration::from_secs(10 * i as u64);
        window.record("127.0.0.1:4291", pod("backend"), at, parse(text));
    }
    window
}

fn responses(classification: &str) -> Selector {
    Selector::new(
        "response_total",
        vec![
            Matcher::eq("direction", "inbound"),
            Matcher::eq("classification", classification),
        ],
    )
}

#[test]
fn a_rate_is_the_increase_over_the_time_between_samples_grouped_by_pod_labels() {
    let start = Instant::now();
    let window = window(start, 2);
    let now = start + Duration::from_secs(10);
    let rates = window.rate(
        &responses("success"),
        &["deployment"],
        Duration::from_secs(60),
        now,
    );
    assert_eq!(rates.len(), 1, "{rates:?}");
    assert_eq!(
        rates[0].labels,
        [("deployment".to_string(), "backend".to_string())].into()
    );
    assert_eq!(rates[0].value, 2.5, "25 more successes in 10 s");
}

#[test]
fn a_series_first_seen_has_no_rate_yet_and_a_drop_is_a_counter_reset() {
    let start = Instant::now();
    // Scrapes at 0, 10, 20 s; then the proxy restarted: 17 again at 30 s.
    let window = window(start, 4);
    let now = start + Duration::from_secs(30);
    let all = Duration::from_secs(60);
    let failures = window.rate(&responses("failure"), &[], all, now);
    assert!(
        failures.is_empty(),
        "5 failures, seen once, then gone: {failures:?}"
    );
    let successes = window.rate(&responses("success"), &[], all, now);
    // 17 → 42 → 42 → (reset) 17: 25 + 0 + 17 over 30 s.
    assert_eq!(successes[0].value, 42.0 / 30.0);
    // A window that starts after the first scrape leaves it out.
    let last_20s = window.rate(&responses("success"), &[], Duration::from_secs(20), now);
    assert_eq!(last_20s[0].value, 17.0 / 20.0);
}

#[test]
fn latency_quantiles_interpolate_the_increase_of_the_buckets() {
    let start = Instant::now();
    let window = window(start, 2);
    let now = start + Duration::from_secs(10);
    let latency = Selector::new(
        "response_latency_ms",
        vec![Matcher::eq("direction", "inbound")],
    );
    let q = |q| {
        let series = window.quantile(q, &latency, &["pod"], Duration::from_secs(60), now);
        assert_eq!(series.len(), 1, "{series:?}");
        series[0].value
    };
    // 25 responses: 23 under 1 ms, one under 5 ms, one under 10 ms.
    assert!((q(0.5) - 12.5 / 23.0).abs() < 1e-9, "{}", q(0.5));
    assert!((q(0.99) - 8.75).abs() < 1e-9, "{}", q(0.99));
    // A window with a single scrape has no increase, so no quantile.
    let none = window.quantile(0.5, &latency, &["pod"], Duration::from_secs(5), now);
    assert!(none.is_empty(), "{none:?}");
}

#[test]
fn latest_sums_gauges_and_targets_no_longer_live_are_forgotten() {
    let start = Instant::now();
    let mut window = window(start, 1);
    window.record("127.0.0.1:4491", pod("backend-1"), start, parse(SCRAPES[1]));
    let open = Selector::new(
        "tcp_open_connections",
        vec![
            Matcher::eq("direction", "inbound"),
            Matcher::eq("peer", "src"),
        ],
    );
    let by_pod = window.latest(&open, &["pod"]);
    assert_eq!(by_pod.len(), 2, "{by_pod:?}");
    assert_eq!(window.latest(&open, &["deployment"])[0].value, 2.0);
    window.retain(&["127.0.0.1:4491".to_string()].into());
    assert_eq!(window.latest(&open, &["deployment"])[0].value, 1.0);
}
