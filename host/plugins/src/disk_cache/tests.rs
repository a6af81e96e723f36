//! The disk cache refuses what it did not write: untrusted directories and
//! key files, and entries that fail their MAC, which are compiled again.

use std::os::unix::fs::{MetadataExt, PermissionsExt};

use super::mac::hmac_sha256;
use super::private_dir::{KEY_FILE, ensure_dir};
use super::*;
use crate::Runtime;

/// The smallest component: the preamble alone.
const EMPTY_COMPONENT: &[u8] = b"\0asm\x0d\0\x01\0";

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("weft-disk-cache-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().mode() & 0o7777
}

fn refusal(result: Result<DiskCache, DiskCacheError>) -> String {
    match result {
        Ok(cache) => panic!("{} was trusted", cache.dir().display()),
        Err(error) => error.to_string(),
    }
}

#[test]
fn the_directory_and_key_are_created_private_and_kept() {
    let tmp = TempDir::new("create");
    let dir = tmp.0.join("weft").join("plugins");
    let engine = Engine::default();
    let cache = DiskCache::open(dir.clone(), &engine).unwrap();
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&dir.join(KEY_FILE)), 0o600);
    // A restarted proxy reads the same key, so its entries stay valid.
    let again = DiskCache::open(dir.clone(), &engine).unwrap();
    assert_eq!(cache.key, again.key);
    assert_ne!(cache.key, [0; KEY_LEN]);
}

#[test]
fn a_directory_others_can_write_is_refused() {
    let tmp = TempDir::new("writable");
    let engine = Engine::default();
    DiskCache::open(tmp.0.clone(), &engine).unwrap();
    for writable in [0o770, 0o702, 0o777] {
        std::fs::set_permissions(&tmp.0, std::fs::Permissions::from_mode(writable)).unwrap();
        let error = refusal(DiskCache::open(tmp.0.clone(), &engine));
        assert!(error.contains("writable by group or others"), "{error}");
    }
    // Readable by others is not a way in: the key file itself is 0600.
    std::fs::set_permissions(&tmp.0, std::fs::Permissions::from_mode(0o755)).unwrap();
    DiskCache::open(tmp.0.clone(), &engine).unwrap();
}

#[test]
fn a_directory_owned_by_another_user_is_refused() {
    let tmp = TempDir::new("owner");
    std::fs::create_dir(&tmp.0).unwrap();
    let uid = nix::unistd::geteuid().as_raw();
    let error = ensure_dir(&tmp.0, uid + 1).unwrap_err().to_string();
    assert!(error.contains(&format!("owned by uid {uid}")), "{error}");
    if !nix::unistd::geteuid().is_root() {
        eprintln!("not root: chown to another user skipped");
        return;
    }
    std::os::unix::fs::chown(&tmp.0, Some(65534), None).unwrap();
    let error = refusal(DiskCache::open(tmp.0.clone(), &Engine::default()));
    assert!(error.contains("owned by uid 65534"), "{error}");
}

#[test]
fn a_key_others_can_read_or_another_user_owns_is_refused() {
    let tmp = TempDir::new("key");
    let engine = Engine::default();
    DiskCache::open(tmp.0.clone(), &engine).unwrap();
    let key = tmp.0.join(KEY_FILE);
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let error = refusal(DiskCache::open(tmp.0.clone(), &engine));
    assert!(error.contains("open to group or others"), "{error}");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    if nix::unistd::geteuid().is_root() {
        std::os::unix::fs::chown(&key, Some(65534), None).unwrap();
        let error = refusal(DiskCache::open(tmp.0.clone(), &engine));
        assert!(error.contains("owned by uid 65534"), "{error}");
    }
}

#[test]
fn entries_without_the_key_are_refused_and_compiled_again() {
    let tmp = TempDir::new("planted");
    let runtime = Runtime::new().unwrap().with_disk_cache(tmp.0.clone());
    let engine = &runtime.engine;
    let cache = runtime.disk_cache.as_ref().expect("a private directory");
    let digest = "a".repeat(64);
    let entry = cache.path(&digest);

    // A valid-looking file written without the key: serialized code with
    // the old layout's sha256 after it, and with a MAC under another key.
    let code = Component::new(engine, EMPTY_COMPONENT)
        .unwrap()
        .serialize()
        .unwrap();
    let mut sha_trailer = code.clone();
    sha_trailer.extend_from_slice(&Sha256::digest(&code));
    let mut other_key = code.clone();
    other_key.extend_from_slice(&hmac_sha256(&[7; KEY_LEN], &[DOMAIN, &code]));
    for planted in [sha_trailer, other_key] {
        std::fs::write(&entry, &planted).unwrap();
        assert!(cache.load(engine, &digest).is_none(), "planted code loaded");
        // Compiling stores a keyed entry over it, which then loads.
        let fresh = Runtime::new().unwrap().with_disk_cache(tmp.0.clone());
        fresh.compile(&digest, EMPTY_COMPONENT).unwrap();
        assert_ne!(std::fs::read(&entry).unwrap(), planted);
        assert!(cache.load(engine, &digest).is_some(), "own entry refused");
    }

    // An altered byte, or a whole entry filed under another module's
    // digest, fails the MAC too.
    let good = std::fs::read(&entry).unwrap();
    let mut altered = good.clone();
    altered[good.len() / 2] ^= 1;
    std::fs::write(&entry, &altered).unwrap();
    assert!(cache.load(engine, &digest).is_none(), "altered code loaded");
    let other = "b".repeat(64);
    std::fs::write(cache.path(&other), &good).unwrap();
    assert!(cache.load(engine, &other).is_none(), "moved entry loaded");
    std::fs::write(&entry, &good[..good.len() - 1]).unwrap();
    assert!(cache.load(engine, &digest).is_none(), "torn entry loaded");
}

#[test]
fn an_untrusted_directory_leaves_the_runtime_in_memory_only() {
    let tmp = TempDir::new("fallback");
    std::fs::create_dir(&tmp.0).unwrap();
    std::fs::set_permissions(&tmp.0, std::fs::Permissions::from_mode(0o777)).unwrap();
    let runtime = Runtime::new().unwrap().with_disk_cache(tmp.0.clone());
    assert_eq!(runtime.disk_cache_dir(), None);
    runtime.compile(&"c".repeat(64), EMPTY_COMPONENT).unwrap();
    let files: Vec<_> = std::fs::read_dir(&tmp.0).unwrap().collect();
    assert!(files.is_empty(), "wrote into it: {files:?}");
}
