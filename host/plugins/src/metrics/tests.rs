//! Plugin metric families: registration, rendering and series limits.
use super::*;
use prometheus_client::registry::Registry;

#[test]
fn families_render_beside_the_proxys_own() {
    let metrics = Arc::new(PluginMetrics::default());
    let labels = vec!["direction".to_string()];
    let requests = metrics
        .register("request_total", "Requests", labels.clone(), None, 1)
        .unwrap();
    assert_eq!(
        metrics.register("request", "Requests", labels.clone(), None, 1),
        Ok(requests)
    );
    let latency = metrics
        .register(
            "response_latency_ms",
            "Latency",
            labels.clone(),
            Some(vec![1.0, 10.0]),
            1,
        )
        .unwrap();
    let inbound = metrics
        .series("m", 10, requests, vec!["inbound".into()])
        .unwrap();
    assert_eq!(
        metrics.series("m", 10, requests, vec!["inbound".into()]),
        Ok(inbound)
    );
    metrics.counter_add(inbound, 3);
    let slow = metrics
        .series("m", 10, latency, vec!["inbound".into()])
        .unwrap();
    metrics.histogram_observe(slow, 5.0);

    let mut registry = Registry::default();
    registry.register_collector(Box::new(metrics.clone()));
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    assert!(
        text.contains("request_total{direction=\"inbound\"} 3\n"),
        "{text}"
    );
    assert!(
        text.contains("response_latency_ms_bucket{le=\"10.0\",direction=\"inbound\"} 1\n"),
        "{text}"
    );
}

#[test]
fn bad_registrations_are_refused() {
    let metrics = PluginMetrics::default();
    assert!(metrics.register("tcp_open", "", vec![], None, 1).is_err());
    assert!(metrics.register("9lives", "", vec![], None, 1).is_err());
    assert!(
        metrics
            .register("h", "", vec![], Some(vec![2.0, 1.0]), 1)
            .is_err()
    );
    let id = metrics
        .register("c", "", vec!["a".into()], None, 1)
        .unwrap();
    assert!(metrics.series("m", 10, id, vec![]).is_err());
}

#[test]
fn a_newer_chain_may_define_a_family_anew_and_only_the_newest_renders() {
    let metrics = Arc::new(PluginMetrics::default());
    let (old, new) = (metrics.next_generation(), metrics.next_generation());
    let v1 = metrics
        .register("request", "", vec!["a".into()], None, old)
        .unwrap();
    let v2 = metrics
        .register("request", "", vec!["a".into(), "b".into()], None, new)
        .unwrap();
    assert_ne!(v1, v2);
    // The old chain, still finishing requests, registers again: it keeps
    // its own family and the new one stays rendered.
    assert_eq!(
        metrics.register("request", "", vec!["a".into()], None, old),
        Ok(v1)
    );
    let s1 = metrics.series("m", 10, v1, vec!["x".into()]).unwrap();
    let s2 = metrics
        .series("m", 10, v2, vec!["x".into(), "y".into()])
        .unwrap();
    metrics.counter_add(s1, 1);
    metrics.counter_add(s2, 2);
    let text = render(&metrics);
    assert_eq!(lines_starting(&text, "request_total{"), 1, "{text}");
    assert!(
        text.contains("request_total{a=\"x\",b=\"y\"} 2\n"),
        "{text}"
    );

    // A still newer chain going back to the first definition (a rollback).
    let rollback = metrics.next_generation();
    assert_eq!(
        metrics.register("request", "", vec!["a".into()], None, rollback),
        Ok(v1)
    );
    let text = render(&metrics);
    assert_eq!(lines_starting(&text, "request_total{"), 1, "{text}");
    assert!(text.contains("request_total{a=\"x\"} 1\n"), "{text}");
}

fn render(metrics: &Arc<PluginMetrics>) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(metrics.clone()));
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    text
}

fn lines_starting(text: &str, prefix: &str) -> usize {
    text.lines().filter(|l| l.starts_with(prefix)).count()
}

#[test]
fn series_past_a_plugins_limit_are_dropped_and_counted() {
    let metrics = Arc::new(PluginMetrics::default());
    let requests = metrics
        .register("request", "Requests", vec!["authority".into()], None, 1)
        .unwrap();
    let latency = metrics
        .register(
            "latency_ms",
            "Latency",
            vec!["authority".into()],
            Some(vec![1.0]),
            1,
        )
        .unwrap();
    let mut kept = Vec::new();
    let mut overflow = Vec::new();
    for n in 0..9 {
        let values = vec![format!("host-{n}.example")];
        let counter = metrics.series("m", 3, requests, values.clone()).unwrap();
        let histogram = metrics.series("m", 3, latency, values).unwrap();
        metrics.counter_add(counter, 5);
        metrics.histogram_observe(histogram, 0.5);
        if n < 3 { &mut kept } else { &mut overflow }.push((counter, histogram));
    }
    overflow.dedup();
    assert_eq!(overflow.len(), 1, "one overflow handle per family");
    assert!(!kept.contains(&overflow[0]));
    // Label sets created before the limit keep their own series.
    assert_eq!(
        metrics.series("m", 3, requests, vec!["host-0.example".into()]),
        Ok(kept[0].0)
    );

    let text = render(&metrics);
    assert_eq!(lines_starting(&text, "request_total{"), 3, "{text}");
    assert_eq!(lines_starting(&text, "latency_ms_count{"), 3, "{text}");
    assert!(text.contains("request_total{authority=\"host-0.example\"} 5\n"));
    assert!(!text.contains("host-3.example"), "{text}");
    // Six samples each: counted once per sample, whatever the value.
    assert!(
        text.contains(
            "weft_plugin_metric_series_dropped_total{plugin=\"m\",family=\"request_total\"} 6\n"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "weft_plugin_metric_series_dropped_total{plugin=\"m\",family=\"latency_ms\"} 6\n"
        ),
        "{text}"
    );
    assert!(
        text.contains("# HELP weft_plugin_metric_series_dropped Samples plugins recorded"),
        "{text}"
    );
}

#[test]
fn limits_are_per_plugin_and_existing_series_are_shared() {
    let metrics = Arc::new(PluginMetrics::default());
    let family = metrics
        .register("request", "", vec!["authority".into()], None, 1)
        .unwrap();
    let first = metrics.series("a", 1, family, vec!["x".into()]).unwrap();
    let a_overflow = metrics.series("a", 1, family, vec!["y".into()]).unwrap();
    assert_ne!(first, a_overflow);
    // Plugin b has its own budget, and finds a's series without spending it.
    assert_eq!(metrics.series("b", 1, family, vec!["x".into()]), Ok(first));
    let b_own = metrics.series("b", 1, family, vec!["y".into()]).unwrap();
    assert_ne!(b_own, a_overflow);
    assert_eq!(metrics.series("a", 1, family, vec!["y".into()]), Ok(b_own));
    let b_overflow = metrics.series("b", 1, family, vec!["z".into()]).unwrap();
    assert_ne!(b_overflow, a_overflow);
    metrics.counter_add(b_overflow, 1);
    let text = render(&metrics);
    assert!(
        text.contains(
            "weft_plugin_metric_series_dropped_total{plugin=\"b\",family=\"request_total\"} 1\n"
        ),
        "{text}"
    );
    assert_eq!(lines_starting(&text, "request_total{"), 2, "{text}");
}

#[test]
fn overlong_label_values_are_dropped_not_kept() {
    let metrics = Arc::new(PluginMetrics::default());
    let family = metrics
        .register("request", "", vec!["authority".into()], None, 1)
        .unwrap();
    let long = "h".repeat(MAX_SERIES_LABEL_BYTES + 1);
    let series = metrics.series("m", 100, family, vec![long]).unwrap();
    metrics.counter_add(series, 1);
    let text = render(&metrics);
    assert_eq!(lines_starting(&text, "request_total{"), 0, "{text}");
    assert!(
        text.contains(
            "weft_plugin_metric_series_dropped_total{plugin=\"m\",family=\"request_total\"} 1\n"
        ),
        "{text}"
    );
    // The label text alone did not use up the budget.
    let short = metrics.series("m", 1, family, vec!["x".into()]).unwrap();
    assert_ne!(short, series);
}

#[test]
fn the_proxys_own_names_are_reserved() {
    let metrics = PluginMetrics::default();
    let err = metrics
        .register("weft_plugin_metric_series_dropped", "", vec![], None, 1)
        .unwrap_err();
    assert!(err.contains("reserved"), "{err}");
}
