//! The cache directory and its key, private to the proxy's user. Compiled
//! code in the cache is run as machine code, so a directory someone else
//! owns or may write into is refused, and so is a key file anyone else may
//! read or that belongs to someone else.

use std::fs::{self, DirBuilder, OpenOptions, Permissions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

pub const KEY_FILE: &str = "cache.key";
pub const KEY_LEN: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum DiskCacheError {
    #[error("plugin cache {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("refusing plugin cache {path}: {reason}")]
    Insecure { path: PathBuf, reason: String },
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> DiskCacheError + '_ {
    move |source| DiskCacheError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn insecure(path: &Path, reason: String) -> DiskCacheError {
    DiskCacheError::Insecure {
        path: path.to_path_buf(),
        reason,
    }
}

/// Creates `dir` (mode 0700) if it is missing; refuses it unless it is a
/// directory owned by `uid` that neither group nor others can write.
pub fn ensure_dir(dir: &Path, uid: u32) -> Result<(), DiskCacheError> {
    let meta = match fs::metadata(dir) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(io_error(dir))?;
            // Exactly 0700, whatever the umask.
            fs::set_permissions(dir, Permissions::from_mode(0o700)).map_err(io_error(dir))?;
            fs::metadata(dir).map_err(io_error(dir))?
        }
        Err(e) => return Err(io_error(dir)(e)),
    };
    if !meta.is_dir() {
        return Err(insecure(dir, "not a directory".into()));
    }
    check_owner(dir, &meta, uid)?;
    if meta.mode() & 0o022 != 0 {
        return Err(insecure(
            dir,
            format!(
                "writable by group or others (mode {:o}); make it 0700",
                meta.mode() & 0o7777
            ),
        ));
    }
    Ok(())
}

/// The key in `dir`, created on first use. Several proxies may share the
/// directory: the key is written aside and linked into place, so the first
/// to link wins and the others read its key, never a half-written one.
pub fn key(dir: &Path, uid: u32) -> Result<[u8; KEY_LEN], DiskCacheError> {
    let path = dir.join(KEY_FILE);
    match read_key(&path, uid) {
        Err(DiskCacheError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {}
        read => return read,
    }
    let mut key = [0u8; KEY_LEN];
    fs::File::open("/dev/urandom")
        .and_then(|mut random| random.read_exact(&mut key))
        .map_err(io_error(Path::new("/dev/urandom")))?;
    let partial = dir.join(format!("{KEY_FILE}.{}.partial", std::process::id()));
    let _ = fs::remove_file(&partial);
    let written = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&partial)
        .and_then(|mut file| {
            file.write_all(&key)?;
            file.sync_all()
        })
        .and_then(|()| fs::hard_link(&partial, &path));
    let _ = fs::remove_file(&partial);
    match written {
        Ok(()) => Ok(key),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => read_key(&path, uid),
        Err(e) => Err(io_error(&path)(e)),
    }
}

fn read_key(path: &Path, uid: u32) -> Result<[u8; KEY_LEN], DiskCacheError> {
    let mut file = OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(path)
        .map_err(io_error(path))?;
    let meta = file.metadata().map_err(io_error(path))?;
    if !meta.is_file() {
        return Err(insecure(path, "the key is not a regular file".into()));
    }
    check_owner(path, &meta, uid)?;
    if meta.mode() & 0o077 != 0 {
        return Err(insecure(
            path,
            format!(
                "the key is open to group or others (mode {:o}); make it 0600",
                meta.mode() & 0o7777
            ),
        ));
    }
    if meta.len() != KEY_LEN as u64 {
        return Err(insecure(
            path,
            format!("the key is {} bytes, not {KEY_LEN}", meta.len()),
        ));
    }
    let mut key = [0u8; KEY_LEN];
    file.read_exact(&mut key).map_err(io_error(path))?;
    Ok(key)
}

fn check_owner(path: &Path, meta: &fs::Metadata, uid: u32) -> Result<(), DiskCacheError> {
    if meta.uid() != uid {
        return Err(insecure(
            path,
            format!("owned by uid {}, not this proxy's uid {uid}", meta.uid()),
        ));
    }
    Ok(())
}
