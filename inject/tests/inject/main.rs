//! The injector on real manifests: golden files of `weft inject`'s output,
//! the webhook's AdmissionReview round trip, and every injected object
//! checked against the Kubernetes schemas.
//!
//! `WEFT_UPDATE_GOLDEN=1 cargo test -p weft-inject` rewrites the goldens.

mod admission;
mod golden;
mod schemas;

use std::path::{Path, PathBuf};

use weft_inject::{Output, Settings};

/// The chart's defaults, with the version pinned so that releases do not
/// rewrite the goldens.
fn settings() -> Settings {
    Settings {
        proxy_version: "0.1.0".into(),
        ..Settings::default()
    }
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// The manifests `weft inject` is tried on: `fixtures/*.yaml` and
/// `*.json`, except goldens and AdmissionReviews.
fn manifests() -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(fixtures())
        .expect("tests/fixtures")
        .map(|entry| entry.expect("a fixture").path())
        .filter(|path| {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            (name.ends_with(".yaml") || name.ends_with(".json"))
                && !name.contains(".golden.")
                && !name.starts_with("admission-")
        })
        .collect();
    paths.sort();
    paths
}

/// A fixture asks for the webhook's rule (inject only where annotated)
/// with a `# require_annotation` line.
fn inject_fixture(path: &Path) -> Output {
    let input = std::fs::read_to_string(path).expect("a fixture");
    let require_annotation = input.lines().any(|l| l.trim() == "# require_annotation");
    weft_inject::inject_documents(&input, &settings(), require_annotation)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Compares `actual` with the golden file, or writes it with
/// `WEFT_UPDATE_GOLDEN=1`. Returns the path when they differ.
fn check_golden(golden: &Path, actual: &str) -> Option<PathBuf> {
    if std::env::var_os("WEFT_UPDATE_GOLDEN").is_some_and(|v| v == "1") {
        std::fs::write(golden, actual).expect("writing a golden");
        return None;
    }
    let expected = std::fs::read_to_string(golden).unwrap_or_default();
    if expected == actual {
        return None;
    }
    eprintln!(
        "=== {} differs; got:\n{actual}\n=== (WEFT_UPDATE_GOLDEN=1 rewrites it)",
        golden.display()
    );
    Some(golden.to_path_buf())
}
