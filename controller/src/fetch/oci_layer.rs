//! What a plugin image's layer holds, by media type: the module itself, or
//! (Istio's compatible image) a tar+gzip file system with `plugin.wasm`.

use std::io::Read;
use std::path::{Component, Path};

use super::{MAX_MODULE_BYTES, too_large};

/// Layers that are the module: Istio's, the Wasm OCI artifact's, and the
/// one `wasm-to-oci` and oci-client's own helpers push.
const WASM: [&str; 3] = [
    "application/vnd.module.wasm.content.layer.v1+wasm",
    "application/wasm",
    "application/vnd.wasm.content.layer.v1+wasm",
];
/// Layers that are a gzipped tar file system (OCI's and Docker's names).
const TAR_GZIP: [&str; 2] = [
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Layer {
    Wasm,
    TarGzip,
}

impl Layer {
    pub(super) fn of(media_type: &str) -> Result<Self, String> {
        if WASM.contains(&media_type) {
            Ok(Layer::Wasm)
        } else if TAR_GZIP.contains(&media_type) {
            Ok(Layer::TarGzip)
        } else {
            Err(format!(
                "layer media type {media_type:?} is not a Wasm module: expected {} or \
                 {} (a tar+gzip layer holding plugin.wasm)",
                WASM.join(", "),
                TAR_GZIP[0]
            ))
        }
    }

    /// The module in a layer's bytes.
    pub(super) fn module(self, layer: Vec<u8>) -> Result<Vec<u8>, String> {
        match self {
            Layer::Wasm => Ok(layer),
            Layer::TarGzip => plugin_wasm(&layer),
        }
    }
}

/// `plugin.wasm` at the root of a gzipped tar. Decompression stops past
/// twice the largest module, so a small layer cannot inflate without bound.
fn plugin_wasm(tar_gz: &[u8]) -> Result<Vec<u8>, String> {
    let unpacked = flate2::read::GzDecoder::new(tar_gz).take(2 * MAX_MODULE_BYTES);
    let mut archive = tar::Archive::new(unpacked);
    let broken = |e: std::io::Error| format!("the tar+gzip layer is not readable: {e}");
    for entry in archive.entries().map_err(broken)? {
        let mut entry = entry.map_err(broken)?;
        if !entry.header().entry_type().is_file() || !is_plugin_wasm(&entry.path().map_err(broken)?)
        {
            continue;
        }
        if entry.size() > MAX_MODULE_BYTES {
            return Err(too_large());
        }
        let mut module = Vec::new();
        entry.read_to_end(&mut module).map_err(broken)?;
        return Ok(module);
    }
    Err("the tar+gzip layer holds no plugin.wasm at its root".to_string())
}

/// `plugin.wasm` or `./plugin.wasm`.
fn is_plugin_wasm(path: &Path) -> bool {
    let mut parts = path.components().filter(|c| *c != Component::CurDir);
    parts.next() == Some(Component::Normal("plugin.wasm".as_ref())) && parts.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_gz(files: &[(&str, &[u8])]) -> Vec<u8> {
        let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let mut tar = tar::Builder::new(gz);
        for (path, data) in files {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            tar.append_data(&mut header, path, *data).unwrap();
        }
        tar.into_inner().unwrap().finish().unwrap()
    }

    #[test]
    fn module_layers_are_the_module() {
        for media_type in WASM {
            let layer = Layer::of(media_type).unwrap();
            assert_eq!(layer.module(b"\0asm".to_vec()), Ok(b"\0asm".to_vec()));
        }
    }

    #[test]
    fn tar_gzip_layers_give_their_plugin_wasm() {
        let layer = tar_gz(&[("README", b"hi"), ("./plugin.wasm", b"\0asm module")]);
        for media_type in TAR_GZIP {
            assert_eq!(
                Layer::of(media_type).unwrap().module(layer.clone()),
                Ok(b"\0asm module".to_vec())
            );
        }
    }

    #[test]
    fn layers_without_a_module_say_why() {
        let nested = tar_gz(&[("lib/plugin.wasm", b"\0asm")]);
        let err = Layer::TarGzip.module(nested).unwrap_err();
        assert!(err.contains("no plugin.wasm"), "{err}");
        let err = Layer::TarGzip.module(b"not gzip".to_vec()).unwrap_err();
        assert!(err.contains("not readable"), "{err}");
        let err = Layer::of("application/vnd.oci.image.layer.v1.tar").unwrap_err();
        assert!(err.contains("is not a Wasm module"), "{err}");
    }
}
