//! `weft profile --open-api`: a ServiceProfile from an OpenAPI document, as
//! `linkerd profile --open-api` writes it. One route per path and method
//! (paths sorted, methods in Linkerd's order), named `METHOD /path`; the
//! `pathRegex` is the path with regex metacharacters escaped and each
//! `{param}` matching one segment (`[^/]*`); one response class per
//! numeric status the operation documents, a failure from 500 up;
//! `isRetryable` from Linkerd's `x-linkerd-retryable` extension and
//! `timeout` from `x-linkerd-timeout`. OpenAPI 2's `basePath` prefixes the
//! paths; OpenAPI 3 (which Linkerd does not read) is read the same way,
//! with the path of its first server's URL in `basePath`'s place.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use serde_json::{Map, Value, json};

use crate::index::ClusterDomain;

/// Linkerd's order of methods within one path.
const METHODS: [&str; 7] = ["delete", "get", "head", "options", "patch", "post", "put"];

#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["open_api", "template"])))]
pub struct ProfileArgs {
    /// The OpenAPI (2 or 3) document, JSON or YAML; `-` reads standard input.
    #[arg(long, value_name = "SPEC")]
    open_api: Option<PathBuf>,
    /// Prints a commented ServiceProfile to start from instead.
    #[arg(long)]
    template: bool,
    /// The Service the profile describes.
    service: String,
    /// The Service's namespace.
    #[arg(long, short, default_value = "default")]
    namespace: String,
    /// The cluster's DNS suffix, as the controller's `--cluster-domain`.
    #[arg(long, default_value = "cluster.local")]
    cluster_domain: ClusterDomain,
}

pub fn run(args: &ProfileArgs) -> anyhow::Result<ExitCode> {
    let name = profile_name(&args.service, &args.namespace, &args.cluster_domain);
    let Some(path) = &args.open_api else {
        print!("{}", template(&name, &args.namespace));
        return Ok(ExitCode::SUCCESS);
    };
    let text = match path.to_str() {
        Some("-") => std::io::read_to_string(std::io::stdin()).context("reading standard input")?,
        _ => {
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?
        }
    };
    let document: Value = serde_norway::from_str(&text)
        .with_context(|| format!("{} is neither JSON nor YAML", path.display()))?;
    let profile = profile_from_open_api(&document, &name, &args.namespace)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    print!("{}", to_yaml(&profile));
    Ok(ExitCode::SUCCESS)
}

/// `SERVICE.NS.svc.<cluster domain>`, the name a profile must have.
pub fn profile_name(service: &str, namespace: &str, domain: &ClusterDomain) -> String {
    format!("{service}.{namespace}.svc.{domain}")
}

/// The ServiceProfile `linkerd profile --open-api` makes of `document`.
pub fn profile_from_open_api(
    document: &Value,
    name: &str,
    namespace: &str,
) -> Result<Value, String> {
    let base = if document.get("swagger").is_some() {
        document["basePath"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    } else if document.get("openapi").is_some() {
        document["servers"][0]["url"]
            .as_str()
            .map(url_path)
            .unwrap_or_default()
    } else {
        return Err("not an OpenAPI document: no \"swagger\" or \"openapi\" field".into());
    };
    let paths = match &document["paths"] {
        Value::Object(paths) => paths.clone(),
        Value::Null => Map::new(),
        _ => return Err("paths is not an object".into()),
    };
    let mut relative: Vec<&String> = paths.keys().collect();
    relative.sort();
    let mut routes = Vec::new();
    for relative_path in relative {
        let path = join(&base, relative_path);
        let regex = path_regex(&path);
        let item = &paths[relative_path];
        for method in METHODS {
            let Some(operation) = item.get(method).filter(|o| o.is_object()) else {
                continue;
            };
            let method = method.to_uppercase();
            let mut route = Map::new();
            route.insert(
                "condition".into(),
                json!({"method": method, "pathRegex": regex}),
            );
            if operation["x-linkerd-retryable"].as_bool() == Some(true) {
                route.insert("isRetryable".into(), Value::Bool(true));
            }
            route.insert("name".into(), json!(format!("{method} {path}")));
            let classes = response_classes(&operation["responses"]);
            if !classes.is_empty() {
                route.insert("responseClasses".into(), Value::Array(classes));
            }
            if let Some(timeout) = operation["x-linkerd-timeout"].as_str() {
                route.insert("timeout".into(), json!(timeout));
            }
            routes.push(Value::Object(route));
        }
    }
    Ok(json!({
        "apiVersion": "linkerd.io/v1alpha2",
        "kind": "ServiceProfile",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"routes": routes},
    }))
}

/// One class per numeric status, in order; `default` and `2XX` are not
/// statuses.
fn response_classes(responses: &Value) -> Vec<Value> {
    let Some(responses) = responses.as_object() else {
        return Vec::new();
    };
    let mut statuses: Vec<u16> = responses.keys().filter_map(|s| s.parse().ok()).collect();
    statuses.sort_unstable();
    statuses
        .into_iter()
        .map(|status| {
            let mut class = json!({"condition": {"status": {"max": status, "min": status}}});
            if status >= 500 {
                class["isFailure"] = Value::Bool(true);
            }
            class
        })
        .collect()
}

/// The path of a server URL (`https://host/v1` or `/v1`), `""` for none.
fn url_path(url: &str) -> String {
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| {
        rest.find('/').map_or("", |slash| &rest[slash..])
    });
    after_scheme
        .split(['?', '#'])
        .next()
        .unwrap_or_default()
        .to_string()
}

/// `base` and `path` joined and cleaned as Go's `path.Join` does.
fn join(base: &str, path: &str) -> String {
    let segments: Vec<&str> = base
        .split('/')
        .chain(path.split('/'))
        .filter(|s| !s.is_empty() && *s != ".")
        .collect();
    format!("/{}", segments.join("/"))
}

/// The path escaped as Go's `regexp.QuoteMeta` does, each `{param}` one
/// segment.
pub fn path_regex(path: &str) -> String {
    let mut out = String::new();
    let mut rest = path;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}') else {
            break;
        };
        out += &quote_meta(&rest[..open]);
        out += "[^/]*";
        rest = &rest[open + close + 1..];
    }
    out += &quote_meta(rest);
    out
}

/// Go's `regexp.QuoteMeta`: only these are escaped, so `/pet-store` stays
/// as Linkerd writes it.
fn quote_meta(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if r"\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Kubernetes' YAML, keys in the order given.
pub fn to_yaml(profile: &Value) -> String {
    serde_norway::to_string(profile).expect("a profile serializes")
}

fn template(name: &str, namespace: &str) -> String {
    format!(
        r#"### ServiceProfile for {name} ###
apiVersion: linkerd.io/v1alpha2
kind: ServiceProfile
metadata:
  name: {name}
  namespace: {namespace}
spec:
  # Requests are counted per route (rt_route), retried and timed out by the
  # first route whose condition they match.
  routes:
  - name: 'GET /authors/{{id}}'
    # A condition: method and pathRegex (the whole path), or all, any, not.
    condition:
      method: GET
      pathRegex: '/authors/\d+'
    # How responses are classified; without classes, 5xx is a failure.
    responseClasses:
    - condition:
        status:
          min: 500
          max: 599
      isFailure: true
    # Retry failures of this route, within the budget below.
    isRetryable: true
    # Answer 504 past this, across every attempt.
    timeout: 300ms
  # Retries may add this share of requests, plus a floor per second.
  retryBudget:
    retryRatio: 0.2
    minRetriesPerSecond: 10
    ttl: 10s
"#
    )
}

#[cfg(test)]
mod tests;
