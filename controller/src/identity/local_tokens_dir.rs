//! The local mesh's counterpart of a projected ServiceAccount token: for
//! every pod in the directory, the controller writes a token for the pod's
//! service account to `<state-dir>/tokens/<namespace>/<pod>` (0600), where
//! the pod's proxy is pointed.

use std::path::{Path, PathBuf};

use weft_identity::ServiceAccount;

use super::LocalTokens;
use crate::Index;

/// Writes (or rewrites, when it changed) each pod's token; returns how
/// many files were written.
pub fn write_pod_tokens(dir: &Path, tokens: &LocalTokens, index: &Index) -> std::io::Result<usize> {
    let mut written = 0;
    for (pod, account) in index.service_accounts() {
        let Ok(account) = ServiceAccount::new(&pod.namespace, account) else {
            tracing::warn!(%pod, account, "no token: the service account is not a DNS label");
            continue;
        };
        let path = token_path(dir, &pod.namespace, &pod.name);
        let token = tokens.issue(&account);
        if std::fs::read_to_string(&path).is_ok_and(|old| old == token) {
            continue;
        }
        write_private(&path, &token)?;
        written += 1;
    }
    Ok(written)
}

pub fn token_path(dir: &Path, namespace: &str, pod: &str) -> PathBuf {
    dir.join("tokens").join(namespace).join(pod)
}

/// Written to a temporary name and renamed, so a proxy never reads half a
/// token.
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let parent = path.parent().expect("a token path has a parent");
    std::fs::create_dir_all(parent)?;
    let temporary = parent.join(format!(".{}.tmp", std::process::id()));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&temporary)?;
    file.write_all(contents.as_bytes())?;
    std::fs::rename(&temporary, path)
}
