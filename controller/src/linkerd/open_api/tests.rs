//! `weft profile --open-api` on the OpenAPI 2 and 3 petstores
//! (`tests/fixtures/openapi/`): the exact YAML, and that the controller
//! reads the profile back and compiles it into a client's retry and
//! metrics configs.

use std::path::PathBuf;

use serde_json::{Value, json};

use super::*;
use crate::index::{Event, Index, WorkloadRef};
use crate::linkerd::{TrafficObject, TrafficResource, read};
use crate::local::read_dir;

fn fixture(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn profile(spec: &str) -> String {
    let document: Value = serde_norway::from_str(&fixture(spec)).unwrap();
    let name = profile_name("petstore", "booksapp", &ClusterDomain::default());
    to_yaml(&profile_from_open_api(&document, &name, "booksapp").unwrap())
}

#[test]
fn openapi_2_and_3_give_linkerds_profile() {
    assert_eq!(
        profile("openapi/petstore-v2.json"),
        fixture("openapi/petstore-v2.profile.yaml")
    );
    assert_eq!(
        profile("openapi/petstore-v3.yaml"),
        fixture("openapi/petstore-v3.profile.yaml")
    );
    let text = fixture("openapi/petstore-v2.profile.yaml");
    for line in [
        "  name: petstore.booksapp.svc.cluster.local",
        "      pathRegex: /v1/pets/[^/]*",
        "    name: GET /v1/pets/{petId}",
        "    isRetryable: true",
        "    timeout: 2s",
    ] {
        assert!(text.lines().any(|l| l == line), "{line:?} in\n{text}");
    }
}

#[test]
fn paths_are_escaped_as_go_quotes_them() {
    assert_eq!(
        path_regex("/pets/{petId}/photo.jpg"),
        r"/pets/[^/]*/photo\.jpg"
    );
    assert_eq!(path_regex("/a-b/{x}{y}/c+d"), r"/a-b/[^/]*[^/]*/c\+d");
    assert_eq!(join("/v1/", "/pets/"), "/v1/pets");
    assert_eq!(join("", "/"), "/");
    assert_eq!(url_path("http://petstore.swagger.io/v1?x=1"), "/v1");
    assert_eq!(url_path("https://host"), "");
}

#[test]
fn a_document_that_is_not_openapi_is_refused() {
    let error = profile_from_open_api(&json!({"paths": {}}), "a.b.svc.cluster.local", "b");
    assert_eq!(
        error.unwrap_err(),
        "not an OpenAPI document: no \"swagger\" or \"openapi\" field"
    );
}

#[test]
fn the_controller_reads_the_profile_back_and_compiles_it() {
    let directory =
        read_dir(&PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/linkerd"))
            .unwrap();
    let mut index = Index::default();
    for event in directory.events() {
        index.apply(event);
    }
    let service: k8s_openapi::api::core::v1::Service = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "petstore", "namespace": "booksapp"},
        "spec": {"selector": {"app": "petstore"}, "ports": [{"port": 8080}]},
    }))
    .unwrap();
    index.apply(Event::from(service));
    let value: Value =
        serde_norway::from_str(&fixture("openapi/petstore-v3.profile.yaml")).unwrap();
    let object = TrafficObject::from_value(value).unwrap().unwrap();
    let Ok(TrafficResource::ServiceProfile(spec)) = read(&object) else {
        panic!("refused: {:?}", read(&object));
    };
    assert_eq!(spec.routes.len(), 4);
    index.apply(Event::from(object));
    assert_eq!(index.traffic_problems(), []);

    let chain = index
        .plugin_set(&WorkloadRef::new("booksapp", "webapp"))
        .unwrap();
    let config = |name: &str| {
        &chain
            .plugins
            .iter()
            .find(|p| p.name == name)
            .unwrap()
            .config
    };
    let retry = config("retry").to_string();
    assert!(
        retry.contains("petstore.booksapp/GET /v1/pets/{petId}"),
        "{retry}"
    );
    let metrics = config("metrics").to_string();
    assert!(
        metrics.contains("PUT /v1/pets/{petId}/photo.jpg"),
        "{metrics}"
    );
}
