//! Noticing that the directory changed, by polling: the files' names, sizes
//! and modification times, as the proxy watches its plugin file. Polling
//! needs no platform API and no thread of its own; the caller asks every
//! second or so and reads the directory again when the answer is yes.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::resource_files;

pub struct DirectoryWatch {
    dir: PathBuf,
    last: Option<Stamp>,
}

/// What a read would see, cheaply: `None` when the directory is unreadable.
#[derive(PartialEq)]
struct Stamp(Option<Vec<(PathBuf, Option<SystemTime>, u64)>>);

impl DirectoryWatch {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            last: None,
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// True on the first call, then whenever a file was added, removed or
    /// rewritten (or the directory appeared or vanished) since the last one.
    pub fn changed(&mut self) -> bool {
        let now = stamp(&self.dir);
        let changed = self.last.as_ref() != Some(&now);
        self.last = Some(now);
        changed
    }
}

fn stamp(dir: &Path) -> Stamp {
    let files = resource_files(dir).ok().map(|files| {
        files
            .into_iter()
            .map(|path| {
                let metadata = std::fs::metadata(&path).ok();
                let modified = metadata.as_ref().and_then(|m| m.modified().ok());
                let len = metadata.map_or(0, |m| m.len());
                (path, modified, len)
            })
            .collect()
    });
    Stamp(files)
}
