//! Compiled components kept on disk by module sha256: a restarted proxy, or
//! a second proxy sharing the directory, loads machine code in milliseconds
//! instead of compiling for a second or more.
//!
//! Each file is wasmtime's serialized component followed by the sha256 of
//! those bytes. Loading checks the digest first, so a torn or corrupted file
//! is recompiled instead of run; wasmtime itself refuses code from another
//! version or engine configuration.

use std::path::PathBuf;

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

const DIGEST_LEN: usize = 32;

#[derive(Clone, Debug)]
pub struct DiskCache {
    dir: PathBuf,
}

impl DiskCache {
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    fn path(&self, module_digest: &str) -> PathBuf {
        self.dir.join(format!("{module_digest}.cwasm"))
    }

    /// The component compiled from the module with this digest, if cached.
    pub fn load(&self, engine: &Engine, module_digest: &str) -> Option<Component> {
        let path = self.path(module_digest);
        let bytes = std::fs::read(&path).ok()?;
        let split = bytes.len().checked_sub(DIGEST_LEN)?;
        let (code, digest) = bytes.split_at(split);
        if Sha256::digest(code).as_slice() != digest {
            tracing::warn!(path = %path.display(), "corrupt compiled plugin in the cache; recompiling");
            return None;
        }
        // SAFETY: `Component::deserialize` runs the bytes as machine code.
        // They are the output of `Component::serialize` (the digest written
        // with them matches, so they are whole and unaltered since), in a
        // directory only the proxy writes; wasmtime rejects output of any
        // other version or engine configuration.
        #[allow(unsafe_code)]
        let loaded = unsafe { Component::deserialize(engine, code) };
        match loaded {
            Ok(component) => Some(component),
            Err(error) => {
                tracing::debug!(path = %path.display(), error = %format!("{error:#}"), "cached plugin not loadable; recompiling");
                None
            }
        }
    }

    /// Keeps `component` for next time. Failing to is not an error: the
    /// proxy only compiles again later.
    pub fn store(&self, module_digest: &str, component: &Component) {
        if let Err(error) = self.try_store(module_digest, component) {
            tracing::warn!(dir = %self.dir.display(), %error, "cannot cache a compiled plugin");
        }
    }

    fn try_store(&self, module_digest: &str, component: &Component) -> std::io::Result<()> {
        let mut bytes = component.serialize().map_err(std::io::Error::other)?;
        let digest = Sha256::digest(&bytes);
        bytes.extend_from_slice(&digest);
        std::fs::create_dir_all(&self.dir)?;
        // Written aside and renamed: readers see a whole file or none.
        let path = self.path(module_digest);
        let partial = path.with_extension(format!("partial.{}", std::process::id()));
        std::fs::write(&partial, &bytes)?;
        std::fs::rename(&partial, &path)
    }
}
