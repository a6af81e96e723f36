//! Where a plugin's module comes from, parsed from a WasmPlugin's `url`.
//!
//! `file:///abs.wasm` and `/abs.wasm` are files on the proxy's filesystem;
//! `http(s)://…` is fetched; `oci://ref` and a scheme-less `ref` (Istio's
//! default) are OCI images. `./x` and `../x` are relative paths, which only
//! a local directory source can resolve: it rewrites them to `file://`
//! before the index sees them.

use std::path::PathBuf;

use serde::Serialize;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ModuleSource {
    File(PathBuf),
    /// The whole URL, scheme included.
    Http(String),
    /// The image reference without `oci://`.
    Oci(String),
}

/// When to fetch a module again.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum PullPolicy {
    IfNotPresent,
    Always,
}

/// Why a url is not a module source.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("url {url:?}: {reason}")]
pub struct InvalidUrl {
    pub url: String,
    pub reason: String,
}

impl ModuleSource {
    pub fn parse(url: &str) -> Result<Self, InvalidUrl> {
        let invalid = |reason: &str| InvalidUrl {
            url: url.to_string(),
            reason: reason.to_string(),
        };
        if url.trim() != url || url.is_empty() {
            return Err(invalid("must be non-empty, without surrounding spaces"));
        }
        if url.chars().any(|c| c.is_control() || c == ' ') {
            return Err(invalid("must not contain spaces or control characters"));
        }
        if url.starts_with("./") || url.starts_with("../") {
            return Err(invalid(
                "a relative path only works in a local directory source; use file:///absolute/path",
            ));
        }
        if url.starts_with('/') {
            return Ok(ModuleSource::File(PathBuf::from(url)));
        }
        let Some((scheme, rest)) = split_scheme(url) else {
            return parse_oci(url).map_err(|r| invalid(&r));
        };
        match scheme.to_ascii_lowercase().as_str() {
            "file" if rest.starts_with('/') => Ok(ModuleSource::File(PathBuf::from(rest))),
            "file" => Err(invalid(
                "a file url needs an absolute path: file:///path/to/plugin.wasm",
            )),
            "http" | "https" => {
                let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
                if authority.is_empty() {
                    return Err(invalid("names no host"));
                }
                Ok(ModuleSource::Http(url.to_string()))
            }
            "oci" => parse_oci(rest).map_err(|r| invalid(&r)),
            _ => Err(invalid(&format!(
                "unsupported scheme {scheme:?}: use file://, http://, https:// or oci://"
            ))),
        }
    }

    /// Istio's default: IfNotPresent, except Always for an OCI image tagged
    /// `latest` or not tagged (which means `latest`) and not pinned by digest.
    pub fn default_pull_policy(&self) -> PullPolicy {
        let ModuleSource::Oci(reference) = self else {
            return PullPolicy::IfNotPresent;
        };
        if reference.contains('@') {
            return PullPolicy::IfNotPresent;
        }
        match oci_tag(reference) {
            Some("latest") | None => PullPolicy::Always,
            Some(_) => PullPolicy::IfNotPresent,
        }
    }
}

/// `scheme://rest`, where the scheme is RFC 3986's `ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )`.
fn split_scheme(url: &str) -> Option<(&str, &str)> {
    let (scheme, rest) = url.split_once("://")?;
    let mut chars = scheme.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
    valid.then_some((scheme, rest))
}

/// `[host[:port]/]path[:tag][@algorithm:hex]`, checked the way registries
/// check it, so a typo is rejected here rather than at pull time.
fn parse_oci(reference: &str) -> Result<ModuleSource, String> {
    let (name_and_tag, digest) = match reference.split_once('@') {
        Some((name, digest)) => (name, Some(digest)),
        None => (reference, None),
    };
    if let Some(digest) = digest {
        let (algorithm, hex) = digest.split_once(':').unwrap_or(("", ""));
        let algorithm_ok = !algorithm.is_empty()
            && algorithm
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        let hex_ok = hex.len() >= 32
            && hex
                .chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase());
        if !algorithm_ok || !hex_ok {
            return Err(format!(
                "OCI digest {digest:?} is not algorithm:lowercase-hex"
            ));
        }
    }
    let (name, tag) = split_tag(name_and_tag);
    if let Some(tag) = tag {
        let valid = tag.len() <= 128
            && tag
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
            && tag
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
        if !valid {
            return Err(format!("OCI tag {tag:?} is not valid"));
        }
    }
    let mut components: Vec<&str> = name.split('/').collect();
    if components.len() > 1 && is_registry_host(components[0]) {
        components.remove(0);
    }
    if let Some(bad) = components.iter().find(|c| !is_repository_component(c)) {
        return Err(format!(
            "OCI repository component {bad:?} must be lowercase letters and digits separated by '.', '_' or '-'"
        ));
    }
    Ok(ModuleSource::Oci(reference.to_string()))
}

/// Splits a trailing `:tag`, which can only follow the last `/` (a `:`
/// before it is a registry port).
fn split_tag(name: &str) -> (&str, Option<&str>) {
    let last = name.rfind('/').map_or(0, |i| i + 1);
    match name[last..].find(':') {
        Some(i) => (&name[..last + i], Some(&name[last + i + 1..])),
        None => (name, None),
    }
}

fn oci_tag(reference: &str) -> Option<&str> {
    split_tag(reference).1
}

/// The first component is a registry when it looks like a host: it has a
/// dot or a port, or is `localhost` (Docker's rule).
fn is_registry_host(component: &str) -> bool {
    (component.contains('.') || component.contains(':') || component == "localhost")
        && component
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-:".contains(c))
}

fn is_repository_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    let is_separator = |b: &u8| matches!(b, b'.' | b'_' | b'-');
    !bytes.is_empty()
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || is_separator(b))
        && !is_separator(&bytes[0])
        && !is_separator(&bytes[bytes.len() - 1])
}

/// A module digest as the proxy checks it: 64 hex digits, lowercased.
pub fn parse_sha256(sha256: &str) -> Option<String> {
    (sha256.len() == 64 && sha256.chars().all(|c| c.is_ascii_hexdigit()))
        .then(|| sha256.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oci(reference: &str) -> ModuleSource {
        ModuleSource::Oci(reference.to_string())
    }

    #[test]
    fn files_are_absolute_paths() {
        assert_eq!(
            ModuleSource::parse("file:///opt/weft/metrics.wasm"),
            Ok(ModuleSource::File("/opt/weft/metrics.wasm".into()))
        );
        assert_eq!(
            ModuleSource::parse("/opt/weft/metrics.wasm"),
            Ok(ModuleSource::File("/opt/weft/metrics.wasm".into()))
        );
        for relative in ["file://metrics.wasm", "./metrics.wasm", "../m/metrics.wasm"] {
            let err = ModuleSource::parse(relative).unwrap_err();
            assert!(
                err.reason.contains("absolute") || err.reason.contains("relative"),
                "{err}"
            );
        }
    }

    #[test]
    fn http_urls_need_a_host() {
        let url = "https://plugins.example.com/authz-1.2.wasm";
        assert_eq!(ModuleSource::parse(url), Ok(ModuleSource::Http(url.into())));
        assert_eq!(
            ModuleSource::parse("HTTP://example.com:8080/x.wasm"),
            Ok(ModuleSource::Http("HTTP://example.com:8080/x.wasm".into()))
        );
        assert!(ModuleSource::parse("https:///x.wasm").is_err());
    }

    #[test]
    fn oci_references_with_and_without_scheme() {
        assert_eq!(
            ModuleSource::parse("oci://ghcr.io/weft/metrics:0.1.0"),
            Ok(oci("ghcr.io/weft/metrics:0.1.0"))
        );
        // Istio's default scheme.
        assert_eq!(
            ModuleSource::parse("ghcr.io/weft/metrics:0.1.0"),
            Ok(oci("ghcr.io/weft/metrics:0.1.0"))
        );
        assert_eq!(
            ModuleSource::parse("localhost:5000/metrics"),
            Ok(oci("localhost:5000/metrics"))
        );
        let pinned = format!("registry.local/weft/authz@sha256:{}", "a".repeat(64));
        assert_eq!(
            ModuleSource::parse(&format!("oci://{pinned}")),
            Ok(oci(&pinned))
        );
    }

    #[test]
    fn malformed_urls_say_what_is_wrong() {
        let cases = [
            ("", "non-empty"),
            (" oci://a/b", "surrounding spaces"),
            ("oci://a b/c", "spaces"),
            ("ftp://example.com/x.wasm", "unsupported scheme \"ftp\""),
            ("oci://ghcr.io/Weft/metrics", "\"Weft\""),
            ("oci://ghcr.io/weft/metrics:bad/tag", "repository component"),
            ("oci://ghcr.io/weft/metrics:-x", "tag \"-x\""),
            ("oci://ghcr.io/weft/metrics@sha256:XYZ", "digest"),
            ("oci://ghcr.io//metrics", "\"\""),
        ];
        for (url, expected) in cases {
            let err = ModuleSource::parse(url).unwrap_err();
            assert!(err.to_string().contains(expected), "{url}: {err}");
        }
    }

    #[test]
    fn pull_policy_defaults_follow_istio() {
        let policy = |url: &str| ModuleSource::parse(url).unwrap().default_pull_policy();
        assert_eq!(policy("oci://ghcr.io/weft/metrics"), PullPolicy::Always);
        assert_eq!(
            policy("oci://ghcr.io/weft/metrics:latest"),
            PullPolicy::Always
        );
        assert_eq!(
            policy("oci://ghcr.io/weft/metrics:0.1"),
            PullPolicy::IfNotPresent
        );
        assert_eq!(policy("localhost:5000/metrics"), PullPolicy::Always);
        let pinned = format!("oci://ghcr.io/weft/metrics@sha256:{}", "0".repeat(64));
        assert_eq!(policy(&pinned), PullPolicy::IfNotPresent);
        assert_eq!(
            policy("https://example.com/m.wasm"),
            PullPolicy::IfNotPresent
        );
        assert_eq!(policy("/m.wasm"), PullPolicy::IfNotPresent);
    }

    #[test]
    fn sha256_is_64_hex_digits_lowercased() {
        let upper = "AB".repeat(32);
        assert_eq!(parse_sha256(&upper), Some("ab".repeat(32)));
        assert_eq!(parse_sha256(&"a".repeat(63)), None);
        assert_eq!(parse_sha256(&"g".repeat(64)), None);
    }
}
