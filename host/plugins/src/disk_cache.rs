//! Compiled components kept on disk by module sha256: a restarted proxy, or
//! a second proxy sharing the directory, loads machine code in milliseconds
//! instead of compiling for a second or more.
//!
//! The cache runs what it reads as machine code, so it trusts nothing it
//! did not write itself. The directory must be private to the proxy's user
//! (created 0700; refused when another user owns it or group or others may
//! write it), and each file is wasmtime's serialized component followed by
//! an HMAC-SHA256 over the module's sha256, the engine's identity and the
//! code, keyed by a secret created 0600 in the directory on first use. A
//! file that fails the MAC (planted, altered, torn, or filed under another
//! module's digest) is compiled again rather than run; wasmtime itself
//! refuses code from another version or engine configuration.

mod mac;
mod private_dir;

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

use hmac::Mac;
use mac::MAC_LEN;
pub use private_dir::DiskCacheError;
use private_dir::KEY_LEN;

/// Versions the MAC input, so a later layout cannot be mistaken for this one.
const DOMAIN: &[u8] = b"weft-plugin-cache-v1\0";

pub struct DiskCache {
    dir: PathBuf,
    key: [u8; KEY_LEN],
    engine_id: [u8; 32],
}

impl std::fmt::Debug for DiskCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("DiskCache").field("dir", &self.dir).finish()
    }
}

impl DiskCache {
    /// Opens the cache in `dir`, creating the directory and its key on first
    /// use, or says why the directory cannot be trusted.
    pub fn open(dir: PathBuf, engine: &Engine) -> Result<Self, DiskCacheError> {
        let uid = nix::unistd::geteuid().as_raw();
        private_dir::ensure_dir(&dir, uid)?;
        let key = private_dir::key(&dir, uid)?;
        Ok(Self {
            dir,
            key,
            engine_id: engine_id(engine),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, module_digest: &str) -> PathBuf {
        self.dir.join(format!("{module_digest}.cwasm"))
    }

    /// The MAC over this module's digest, this engine's identity and the
    /// code, ready to finalize (storing) or verify (loading).
    fn mac(&self, module_digest: &str, code: &[u8]) -> mac::HmacSha256 {
        let digest = module_digest.as_bytes();
        let digest_len = (digest.len() as u64).to_be_bytes();
        mac::keyed(
            &self.key,
            &[DOMAIN, &digest_len, digest, &self.engine_id, code],
        )
    }

    /// The component compiled from the module with this digest, if cached
    /// here by this proxy's user with this engine.
    pub fn load(&self, engine: &Engine, module_digest: &str) -> Option<Component> {
        let path = self.path(module_digest);
        let bytes = std::fs::read(&path).ok()?;
        let (code, mac) = bytes.split_at(bytes.len().checked_sub(MAC_LEN)?);
        // Constant time: no early exit tells a forger how much was right.
        if self.mac(module_digest, code).verify_slice(mac).is_err() {
            tracing::warn!(path = %path.display(), "compiled plugin in the cache fails its authentication; compiling again");
            return None;
        }
        // SAFETY: `Component::deserialize` runs the bytes as machine code.
        // They carry a MAC, under a key only this user can read, over this
        // module's digest, this engine's identity and the code: they are the
        // output of `Component::serialize` for this module, written by this
        // cache and unaltered since. wasmtime also rejects output of any
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
        let mac = self.mac(module_digest, &bytes).finalize().into_bytes();
        bytes.extend_from_slice(&mac);
        // Written aside and renamed: readers see a whole file or none.
        let path = self.path(module_digest);
        let partial = path.with_extension(format!("partial.{}", std::process::id()));
        std::fs::write(&partial, &bytes)?;
        std::fs::rename(&partial, &path)
    }
}

/// What wasmtime says code compiled by `engine` is compatible with (its
/// version and compilation settings), as a digest.
fn engine_id(engine: &Engine) -> [u8; 32] {
    struct Sha(Sha256);
    impl Hasher for Sha {
        fn write(&mut self, bytes: &[u8]) {
            self.0.update(bytes);
        }
        /// Unused: the digest is read instead.
        fn finish(&self) -> u64 {
            0
        }
    }
    let mut hasher = Sha(Sha256::new());
    engine.precompile_compatibility_hash().hash(&mut hasher);
    hasher.0.finalize().into()
}

#[cfg(test)]
mod tests;
