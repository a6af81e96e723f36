//! OCI image layouts on disk (`oci-layout`, `index.json`,
//! `blobs/sha256/…`), one directory per image, which `skopeo copy oci:DIR`,
//! `crane push` or `ctr import` can take from there.

use std::path::Path;

use anyhow::Context;
use oci_client::manifest::OCI_IMAGE_INDEX_MEDIA_TYPE;

use super::pack::{Blob, Image};

/// Writes `image` as an image layout in `dir`, replacing what was there,
/// its manifest named `tag` in the index.
pub fn write(dir: &Path, image: &Image, tag: &str) -> anyhow::Result<()> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).with_context(|| format!("emptying {}", dir.display()))?;
    }
    let blobs = dir.join("blobs").join("sha256");
    std::fs::create_dir_all(&blobs).with_context(|| format!("creating {}", blobs.display()))?;
    for blob in image.blobs().chain([&image.manifest]) {
        write_file(&blobs.join(blob.hex()), &blob.bytes)?;
    }
    write_file(
        &dir.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )?;
    write_file(&dir.join("index.json"), &index(&image.manifest, tag)?)
}

fn index(manifest: &Blob, tag: &str) -> anyhow::Result<Vec<u8>> {
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_IMAGE_INDEX_MEDIA_TYPE,
        "manifests": [{
            "mediaType": manifest.media_type,
            "digest": manifest.digest,
            "size": manifest.bytes.len(),
            "platform": {"architecture": "amd64", "os": "linux"},
            "annotations": {"org.opencontainers.image.ref.name": tag},
        }],
    });
    Ok(serde_json::to_vec_pretty(&index)?)
}

fn write_file(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
}
