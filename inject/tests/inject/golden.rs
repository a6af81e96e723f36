//! `weft inject` on the fixtures, compared with `*.golden.yaml`: the report
//! it prints to stderr as comments, then the manifests it writes.

use serde_json::Value;
use weft_inject::{Outcome, Refusal};

use super::*;

fn render(output: &Output) -> String {
    let mut text = String::from("# weft inject:\n");
    for report in &output.reports {
        text.push_str(&format!("#   {report}\n"));
    }
    text.push_str(&output.yaml);
    text
}

#[test]
fn every_fixture_injects_as_its_golden() {
    let stale: Vec<PathBuf> = manifests()
        .iter()
        .filter_map(|path| {
            let stem = path.file_stem().and_then(|s| s.to_str()).expect("a name");
            let golden = path.with_file_name(format!("{stem}.golden.yaml"));
            check_golden(&golden, &render(&inject_fixture(path)))
        })
        .collect();
    assert!(stale.is_empty(), "goldens that differ: {stale:?}");
}

#[test]
fn reports_name_every_object_and_every_reason() {
    let lines = |fixture: &str| -> Vec<String> {
        inject_fixture(&fixtures().join(fixture))
            .reports
            .iter()
            .map(ToString::to_string)
            .collect()
    };
    assert_eq!(
        lines("namespace-annotated.yaml"),
        [
            r#"namespace "emojivoto" skipped"#,
            r#"serviceaccount "web" skipped"#,
            r#"service "web-svc" skipped"#,
            r#"deployment "web" injected"#,
            r#"deployment "vote-bot" skipped: injection is disabled by the pod annotation linkerd.io/inject: disabled"#,
            r#"deployment "elsewhere" skipped: neither the pod nor its namespace is annotated weft.io/inject: enabled"#,
        ]
    );
    assert_eq!(
        lines("host-network.yaml"),
        [r#"pod "node-exporter" skipped: the pod has hostNetwork: true"#]
    );
    assert_eq!(
        lines("already-injected.yaml"),
        [r#"pod "web" skipped: the pod already has a weft-proxy container"#]
    );
    assert_eq!(
        lines("list.yaml"),
        [
            r#"deployment "cart" injected"#,
            r#"statefulset "redis" injected"#,
            r#"daemonset "log-shipper" injected"#,
            r#"replicaset "legacy" injected"#,
            r#"service "cart" skipped"#,
        ]
    );
}

#[test]
fn refused_objects_pass_through_unchanged() {
    for fixture in ["host-network.yaml", "already-injected.yaml"] {
        let path = fixtures().join(fixture);
        let output = inject_fixture(&path);
        assert!(matches!(output.reports[0].outcome, Outcome::Refused(_)));
        let input: Value =
            serde_norway::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let written: Value = serde_norway::from_str(&output.yaml).unwrap();
        assert_eq!(written, input, "{fixture}");
    }
}

#[test]
fn annotations_on_the_template_configure_the_proxy() {
    let output = inject_fixture(&fixtures().join("config-annotations.yaml"));
    let deployment: Value = serde_norway::from_str(&output.yaml).unwrap();
    let pod = &deployment["spec"]["template"];
    let proxy = &pod["spec"]["containers"][0];
    assert_eq!(proxy["name"], "weft-proxy");
    assert_eq!(proxy["image"], "registry.example.com/mesh/weft-proxy:0.2.0");
    assert_eq!(
        proxy["resources"],
        serde_json::json!({
            "requests": {"cpu": "200m", "memory": "64Mi"},
            "limits": {"cpu": "1", "memory": "512Mi"},
        })
    );
    let env = |name: &str| {
        proxy["env"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == name)
            .map(|e| e["value"].clone())
    };
    assert_eq!(env("WEFT_LOG"), Some("debug".into()));
    assert_eq!(env("WEFT_PROXY_OPAQUE_PORTS"), Some("3306,5672".into()));
    assert_eq!(
        env("WEFT_PROXY_INBOUND_PORTS_REQUIRE_IDENTITY"),
        Some("7000".into())
    );
    assert_eq!(
        env("WEFT_PROXY_DEFAULT_INBOUND_POLICY"),
        Some("all-authenticated".into())
    );
    let init = &pod["spec"]["initContainers"];
    assert_eq!(init[0]["name"], "weft-init");
    assert_eq!(
        init[1]["name"], "migrate",
        "the app's init containers run after"
    );
    let args: Vec<&str> = init[0]["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    let after = |flag: &str| args[args.iter().position(|a| *a == flag).unwrap() + 1];
    assert_eq!(after("--inbound-ports-to-ignore"), "4190,4191,9090");
    assert_eq!(after("--outbound-ports-to-ignore"), "4222,6000-6010");
    assert_eq!(
        pod["metadata"]["labels"]["weft.io/proxy-deployment"],
        "books"
    );
    assert_eq!(pod["metadata"]["labels"]["weft.io/workload-ns"], "booksapp");
    assert_eq!(
        pod["metadata"]["annotations"]["weft.io/proxy-version"],
        "0.2.0"
    );
}

#[test]
fn cni_mode_adds_no_init_container() {
    let input = std::fs::read_to_string(fixtures().join("pod.json")).unwrap();
    let settings = weft_inject::Settings {
        cni: true,
        ..settings()
    };
    let output = weft_inject::inject_documents(&input, &settings, false).unwrap();
    let pod: Value = serde_norway::from_str(&output.yaml).unwrap();
    assert!(pod["spec"].get("initContainers").is_none());
    let volumes: Vec<&str> = pod["spec"]["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        volumes,
        [
            "weft-identity-token",
            "weft-identity-trust-roots",
            "weft-proxy-cache"
        ]
    );
}

#[test]
fn a_bad_annotation_refuses_with_its_name() {
    let input = r#"
apiVersion: v1
kind: Pod
metadata:
  name: p
  annotations:
    config.linkerd.io/proxy-memory-limit: a lot
spec:
  containers:
  - name: app
    image: app
"#;
    let output = weft_inject::inject_documents(input, &settings(), false).unwrap();
    let Outcome::Refused(Refusal::BadAnnotation { annotation, .. }) = &output.reports[0].outcome
    else {
        panic!("{:?}", output.reports)
    };
    assert_eq!(
        annotation,
        "pod annotation config.linkerd.io/proxy-memory-limit: a lot"
    );
}

#[test]
fn json_streams_and_bad_input() {
    let pod = std::fs::read_to_string(fixtures().join("pod.json")).unwrap();
    let two = format!("{pod}\n{pod}");
    let output = weft_inject::inject_documents(&two, &settings(), false).unwrap();
    assert_eq!(output.reports.len(), 2);
    assert_eq!(output.yaml.matches("\n---\n").count(), 1);

    let bad = "kind: Service\n---\nkind: [unclosed\n";
    let error = weft_inject::inject_documents(bad, &settings(), false).unwrap_err();
    assert!(
        error.to_string().starts_with("document 2: not YAML"),
        "{error}"
    );
    let error = weft_inject::inject_documents("{\"kind\": ", &settings(), false).unwrap_err();
    assert!(
        error.to_string().starts_with("document 1: not JSON"),
        "{error}"
    );
}
