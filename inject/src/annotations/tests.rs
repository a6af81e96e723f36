use super::*;

fn annotations(pairs: &[(&str, &str)]) -> Annotations {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn the_pod_wins_over_its_namespace_and_weft_over_linkerd() {
    let pod = annotations(&[
        ("config.linkerd.io/proxy-log-level", "debug"),
        ("config.linkerd.io/opaque-ports", "3306"),
        ("config.weft.io/opaque-ports", "5432"),
    ]);
    let namespace = annotations(&[
        ("config.weft.io/proxy-log-level", "trace"),
        ("config.weft.io/proxy-cpu-request", "50m"),
    ]);
    let lookup = Lookup {
        pod: &pod,
        namespace: &namespace,
    };
    let found = |key| lookup.config(key).map(|f| (f.value, f.place));
    assert_eq!(found("proxy-log-level"), Some(("debug".into(), Place::Pod)));
    assert_eq!(found("opaque-ports"), Some(("5432".into(), Place::Pod)));
    assert_eq!(
        found("proxy-cpu-request"),
        Some(("50m".into(), Place::Namespace))
    );
    assert_eq!(found("proxy-memory-limit"), None);
}

#[test]
fn linkerds_image_is_never_taken_for_the_proxy() {
    let pod = annotations(&[
        ("config.linkerd.io/proxy-image", "cr.l5d.io/linkerd/proxy"),
        ("config.linkerd.io/proxy-version", "edge-24.11.8"),
    ]);
    let lookup = Lookup {
        pod: &pod,
        namespace: &Annotations::new(),
    };
    let settings = Settings::default();
    let config = PodConfig::read(&lookup, &settings, &BTreeMap::new()).unwrap();
    assert_eq!(config.image, settings.proxy_image());
    assert_eq!(config.version, settings.proxy_version);
}

#[test]
fn settings_fill_in_what_no_annotation_sets() {
    let (pod, namespace) = (Annotations::new(), Annotations::new());
    let lookup = Lookup {
        pod: &pod,
        namespace: &namespace,
    };
    let settings = Settings::default();
    let config = PodConfig::read(&lookup, &settings, &BTreeMap::new()).unwrap();
    assert_eq!(config.image, "localhost:5000/weft/weft-proxy");
    assert_eq!(config.version, env!("CARGO_PKG_VERSION"));
    assert_eq!(config.opaque_ports, settings.opaque_ports);
    assert_eq!(config.resources, settings.resources);
    assert_eq!(config.default_inbound_policy, "all-unauthenticated");
}

#[test]
fn bad_values_refuse_the_pod_naming_the_annotation() {
    let refusal = |pairs: &[(&str, &str)]| {
        let pod = annotations(pairs);
        let lookup = Lookup {
            pod: &pod,
            namespace: &Annotations::new(),
        };
        PodConfig::read(&lookup, &Settings::default(), &BTreeMap::new())
            .unwrap_err()
            .to_string()
    };
    assert_eq!(
        refusal(&[("config.linkerd.io/proxy-cpu-request", "lots")]),
        "the pod annotation config.linkerd.io/proxy-cpu-request: lots cannot be used: \
         expected a quantity like 100m, 0.5 or 64Mi"
    );
    assert!(refusal(&[("config.weft.io/skip-outbound-ports", "70000")]).contains("70000"));
    assert!(refusal(&[("config.weft.io/opaque-ports", "mysql")]).contains("named `mysql`"));
    assert!(refusal(&[("config.weft.io/default-inbound-policy", "open")]).contains("deny"));
    assert!(refusal(&[("config.weft.io/proxy-image", "a b")]).contains("without spaces"));
}

#[test]
fn port_lists_take_ranges_and_container_port_names() {
    let named = BTreeMap::from([("mysql".to_string(), 3306)]);
    assert_eq!(
        port_list(" 25, mysql ,5000-5010,", &named).as_deref(),
        Ok("25,3306,5000-5010")
    );
    assert_eq!(port_list("", &named).as_deref(), Ok(""));
    assert!(port_list("0", &named).is_err());
    assert!(port_list("90-80", &named).is_err());
}

#[test]
fn quantities_are_kubernetes_quantities() {
    for good in ["100m", "0.5", "1", "64Mi", "1Gi", "2e3", "1.5G", "+1"] {
        assert!(is_quantity(good), "{good}");
    }
    for bad in ["", "m", "lots", "1.2.3", "64MB", "1e", "1 Gi"] {
        assert!(!is_quantity(bad), "{bad}");
    }
}

#[test]
fn the_trace_collector_is_read_under_both_names_and_checked() {
    let read = |pairs: &[(&str, &str)]| {
        let pod = annotations(pairs);
        let lookup = Lookup {
            pod: &pod,
            namespace: &Annotations::new(),
        };
        PodConfig::read(&lookup, &Settings::default(), &BTreeMap::new())
    };
    assert_eq!(read(&[]).unwrap().trace_collector, None);
    let linkerd = [(
        "config.linkerd.io/trace-collector",
        "collector.linkerd-jaeger:55678",
    )];
    assert_eq!(
        read(&linkerd).unwrap().trace_collector.as_deref(),
        Some("collector.linkerd-jaeger:55678")
    );
    let weft = [("config.weft.io/trace-collector", "otel.tracing.svc:4317")];
    assert_eq!(
        read(&weft).unwrap().trace_collector.as_deref(),
        Some("otel.tracing.svc:4317")
    );
    for bad in [
        "collector",
        "collector:",
        ":4317",
        "http://c:4317",
        "c:0",
        "c:4317/x",
    ] {
        let refused = read(&[("config.weft.io/trace-collector", bad)]);
        assert!(
            matches!(&refused, Err(Refusal::BadAnnotation { annotation, .. }) if annotation.contains("trace-collector")),
            "{bad}: {refused:?}"
        );
    }
}
