//! The local source across reads. A file that cannot be read whole (not
//! YAML, unreadable, an object without a kind or name) keeps the objects it
//! held at the last read, since nothing says which of them it still means;
//! an object whose document names it but does not read keeps its last
//! version. A file that vanishes, or is suddenly empty, keeps its objects
//! until it has stayed so for `GONE_AFTER_READS` reads in a row: editors
//! and `git checkout` replace files by deleting them first, while a file
//! deleted on purpose stays deleted and its objects then go.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

use super::document::{Object, ObjectKey};
use super::{Directory, ReadDirError, Reader};

/// Reads in a row a remembered file must be missing (or empty) before its
/// objects go: with the controller's 250 ms polls, half a second at least.
pub const GONE_AFTER_READS: u32 = 3;

/// Reads a directory again and again, keeping what each file last held.
pub struct DirectorySource {
    dir: PathBuf,
    /// Every object the last read gave, with the file it came from.
    last: BTreeMap<ObjectKey, (PathBuf, Object)>,
    /// Remembered files missing or empty, and for how many reads in a row.
    missing: BTreeMap<PathBuf, u32>,
}

/// Objects of one file kept from an earlier read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeptObjects {
    pub path: PathBuf,
    pub because: KeptBecause,
    pub objects: Vec<ObjectKey>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeptBecause {
    /// The file, or the objects' documents, did not read.
    Unreadable,
    /// The file is missing or empty, for this many reads in a row so far.
    Missing { reads: u32 },
}

impl DirectorySource {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        DirectorySource {
            dir: dir.into(),
            last: BTreeMap::new(),
            missing: BTreeMap::new(),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Reads the directory. An unreadable directory is an error and
    /// changes nothing this source remembers.
    pub fn read(&mut self) -> Result<Directory, ReadDirError> {
        let read = Reader::read(&self.dir)?;
        let kept = self.keep(&read);
        let mut last: BTreeMap<ObjectKey, (PathBuf, Object)> = read
            .objects
            .iter()
            .map(|(key, path, object)| (key.clone(), (path.clone(), object.clone())))
            .collect();
        let mut notes: BTreeMap<PathBuf, KeptObjects> = BTreeMap::new();
        let mut kept_objects = Vec::new();
        for (key, path, object, because) in kept {
            notes
                .entry(path.clone())
                .or_insert_with(|| KeptObjects {
                    path: path.clone(),
                    because,
                    objects: Vec::new(),
                })
                .objects
                .push(key.clone());
            kept_objects.push(object.clone());
            last.insert(key, (path, object));
        }
        self.missing
            .retain(|path, _| last.values().any(|(from, _)| from == path));
        self.last = last;
        Ok(read.finish(notes.into_values().collect(), kept_objects))
    }

    /// Whether a file is missing but its objects are still kept: read
    /// again soon, even if nothing changes, to let them go in time.
    pub fn settling(&self) -> bool {
        !self.missing.is_empty()
    }

    /// What the last read held that this one should keep.
    fn keep(&mut self, read: &Reader) -> Vec<(ObjectKey, PathBuf, Object, KeptBecause)> {
        let remembered: BTreeSet<&PathBuf> = self.last.values().map(|(path, _)| path).collect();
        for path in remembered {
            if read.files.contains(path) && !read.empty.contains(path) {
                self.missing.remove(path);
            } else {
                *self.missing.entry(path.clone()).or_default() += 1;
            }
        }
        let mut kept = Vec::new();
        for (key, (path, object)) in &self.last {
            if read.defined.contains_key(key) {
                continue; // defined again, maybe elsewhere: that one stands
            }
            let because = match self.missing.get(path) {
                Some(&reads) if reads < GONE_AFTER_READS => Some(KeptBecause::Missing { reads }),
                Some(_) => None,
                None if read.unknown.contains(path) || read.unreadable.contains(key) => {
                    Some(KeptBecause::Unreadable)
                }
                None => None,
            };
            if let Some(because) = because {
                kept.push((key.clone(), path.clone(), object.clone(), because));
            }
        }
        kept
    }
}

impl fmt::Display for KeptObjects {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let objects: Vec<String> = self.objects.iter().map(ToString::to_string).collect();
        let objects = objects.join(", ");
        match self.because {
            KeptBecause::Unreadable => write!(
                f,
                "{}: keeps {objects} as last read, until it reads again",
                self.path.display()
            ),
            KeptBecause::Missing { reads } => write!(
                f,
                "{}: missing or empty ({reads} of {GONE_AFTER_READS} reads); keeps {objects} \
                 until it stays so",
                self.path.display()
            ),
        }
    }
}
