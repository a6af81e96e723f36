//! Packing an OCI image (image-spec v1) in memory: gzip'd tar layers, the
//! image config and the manifest, each a content-addressed blob. Everything
//! is deterministic — entries sorted, mtime 0, owner 0:0, fixed gzip
//! settings, JSON with a fixed key order — so the same files always give
//! the same manifest digest.

use std::collections::BTreeMap;
use std::io::Write;

use anyhow::Context;
use flate2::{Compression, GzBuilder};
use oci_client::manifest::{
    IMAGE_CONFIG_MEDIA_TYPE, IMAGE_LAYER_GZIP_MEDIA_TYPE, OCI_IMAGE_MEDIA_TYPE, OciDescriptor,
    OciImageManifest,
};
use sha2::{Digest, Sha256};

/// Bytes with their media type and `sha256:` digest.
#[derive(Clone, Debug)]
pub struct Blob {
    pub media_type: &'static str,
    pub bytes: Vec<u8>,
    pub digest: String,
}

impl Blob {
    pub fn new(media_type: &'static str, bytes: Vec<u8>) -> Self {
        let digest = sha256_digest(&bytes);
        Blob {
            media_type,
            bytes,
            digest,
        }
    }

    pub fn descriptor(&self) -> OciDescriptor {
        OciDescriptor {
            media_type: self.media_type.to_string(),
            digest: self.digest.clone(),
            size: i64::try_from(self.bytes.len()).expect("a blob under 8 EiB"),
            ..OciDescriptor::default()
        }
    }

    /// The hex after `sha256:`, the blob's file name in an image layout.
    pub fn hex(&self) -> &str {
        self.digest.trim_start_matches("sha256:")
    }
}

/// `sha256:` and the lowercase hex of the bytes' SHA-256.
pub fn sha256_digest(bytes: &[u8]) -> String {
    let hex: String = Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256:{hex}")
}

/// What a layer holds at a path (relative to `/`, without a leading slash).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entry {
    File {
        bytes: Vec<u8>,
        mode: u32,
    },
    Symlink {
        target: String,
    },
    /// An empty directory (mode 0755, as every directory a layer holds).
    Directory,
}

/// A gzip'd tar layer and its diff ID (the digest of the uncompressed tar,
/// which the image config lists).
#[derive(Clone, Debug)]
pub struct Layer {
    pub blob: Blob,
    pub diff_id: String,
    /// One line for the image's history, e.g. what the layer adds.
    pub comment: String,
}

impl Layer {
    /// Packs `entries` with their parent directories (mode 0755), sorted by
    /// path, all owned by 0:0 with mtime 0.
    pub fn pack(entries: &BTreeMap<String, Entry>, comment: &str) -> anyhow::Result<Self> {
        let mut builder = tar::Builder::new(Vec::new());
        for path in directories(entries) {
            let mut header = header(tar::EntryType::Directory, 0o755, 0);
            builder
                .append_data(&mut header, &path, std::io::empty())
                .with_context(|| format!("adding directory {path}"))?;
        }
        for (path, entry) in entries {
            match entry {
                Entry::File { bytes, mode } => {
                    let mut header = header(tar::EntryType::Regular, *mode, bytes.len() as u64);
                    builder.append_data(&mut header, path, bytes.as_slice())
                }
                Entry::Symlink { target } => {
                    let mut header = header(tar::EntryType::Symlink, 0o777, 0);
                    builder.append_link(&mut header, path, target)
                }
                // Packed with the parent directories.
                Entry::Directory => Ok(()),
            }
            .with_context(|| format!("adding {path}"))?;
        }
        let tar = builder.into_inner().context("finishing the tar")?;
        let diff_id = sha256_digest(&tar);
        // No file name, mtime 0 and a fixed OS byte in the gzip header, and
        // one fixed level: the same tar always compresses to the same bytes.
        let mut gzip = GzBuilder::new()
            .mtime(0)
            .operating_system(255)
            .write(Vec::new(), Compression::best());
        gzip.write_all(&tar).context("compressing the layer")?;
        let gzip = gzip.finish().context("compressing the layer")?;
        Ok(Layer {
            blob: Blob::new(IMAGE_LAYER_GZIP_MEDIA_TYPE, gzip),
            diff_id,
            comment: comment.to_string(),
        })
    }
}

fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(kind);
    header.set_mode(mode);
    header.set_size(size);
    header.set_mtime(0);
    header.set_uid(0);
    header.set_gid(0);
    header
}

/// Every directory entry and directory above an entry, parents first
/// (BTreeSet order puts `usr` before `usr/bin`).
fn directories(entries: &BTreeMap<String, Entry>) -> std::collections::BTreeSet<String> {
    let mut directories = std::collections::BTreeSet::new();
    for (path, entry) in entries {
        if *entry == Entry::Directory {
            directories.insert(path.clone());
        }
        let mut parent = path.as_str();
        while let Some((dir, _)) = parent.rsplit_once('/') {
            directories.insert(dir.to_string());
            parent = dir;
        }
    }
    directories
}

/// How an image runs: its user, entrypoint and labels.
#[derive(Clone, Debug)]
pub struct RunConfig {
    pub user: String,
    pub entrypoint: Vec<String>,
    pub labels: BTreeMap<String, String>,
}

/// A packed image: its layers, config and manifest.
#[derive(Clone, Debug)]
pub struct Image {
    /// The repository name under the registry, e.g. `weft-proxy`.
    pub name: String,
    pub layers: Vec<Layer>,
    pub config: Blob,
    pub manifest: Blob,
}

impl Image {
    /// A linux/amd64 image of `layers` (bottom first).
    pub fn pack(name: &str, run: &RunConfig, layers: Vec<Layer>) -> anyhow::Result<Self> {
        // serde_json's map keeps keys sorted (or, with preserve_order, in
        // the order written here): either way the same bytes every time.
        let config = serde_json::json!({
            "architecture": "amd64",
            "os": "linux",
            "config": {
                "User": run.user,
                "Entrypoint": run.entrypoint,
                "Labels": run.labels,
            },
            "rootfs": {
                "type": "layers",
                "diff_ids": layers.iter().map(|layer| &layer.diff_id).collect::<Vec<_>>(),
            },
            "history": layers.iter().map(|layer| serde_json::json!({
                "created_by": "cargo xtask images",
                "comment": layer.comment,
            })).collect::<Vec<_>>(),
        });
        let config = Blob::new(IMAGE_CONFIG_MEDIA_TYPE, serde_json::to_vec(&config)?);
        let manifest = OciImageManifest {
            schema_version: 2,
            media_type: Some(OCI_IMAGE_MEDIA_TYPE.to_string()),
            config: config.descriptor(),
            layers: layers.iter().map(|layer| layer.blob.descriptor()).collect(),
            subject: None,
            artifact_type: None,
            annotations: None,
        };
        let manifest = Blob::new(OCI_IMAGE_MEDIA_TYPE, serde_json::to_vec(&manifest)?);
        Ok(Image {
            name: name.to_string(),
            layers,
            config,
            manifest,
        })
    }

    /// The blobs the manifest points at: layers, then the config.
    pub fn blobs(&self) -> impl Iterator<Item = &Blob> {
        self.layers
            .iter()
            .map(|layer| &layer.blob)
            .chain([&self.config])
    }
}
