//! The Kubernetes schema check every manifest test shares: the
//! `kubernetes-validate` package (PyPI; `cargo xtask test` installs it),
//! strict, so unknown fields fail. Without it the check fails rather than
//! skips: a skipped schema check would let CI pass on manifests a cluster
//! rejects.

use std::path::PathBuf;
use std::process::Command;

/// k8s-openapi's `v1_33` feature: the API the objects are built against.
pub const KUBERNETES_VERSION: &str = "1.33.0";

/// Validates `files` (YAML or JSON, `objects` objects in all): `Err` with
/// the validator's output unless every object passed.
pub fn kubernetes_validate(files: &[PathBuf], objects: usize) -> Result<(), String> {
    let missing = "the Kubernetes schema check needs the kubernetes-validate package: \
                   `cargo xtask test` installs it, or `python3 -m pip install kubernetes-validate`";
    let run = Command::new("python3")
        .args([
            "-m",
            "kubernetes_validate",
            "--strict",
            "-k",
            KUBERNETES_VERSION,
        ])
        .args(files)
        .output()
        .map_err(|e| format!("cannot run python3 ({e}); {missing}"))?;
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    if stderr.contains("No module named kubernetes_validate") {
        return Err(missing.into());
    }
    let passed = stdout.matches(" passed for resource ").count();
    if run.status.success()
        && !stdout.contains("WARN")
        && !stdout.contains("ERROR")
        && passed == objects
    {
        Ok(())
    } else {
        Err(format!(
            "{} ({passed} of {objects} objects passed):\n{stdout}{stderr}",
            run.status
        ))
    }
}
