//! A resource file in the controller's local directory source (YAML or
//! JSON, several documents): it loads or is reported, never panics, and
//! every error names the file it came from. The bytes go through the public
//! `read_dir`, as the controller reads them, via one small file per thread.

use std::cell::RefCell;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A directory holding the one file under test; removed when its thread ends.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

thread_local! {
    static SCRATCH: RefCell<Option<Scratch>> = const { RefCell::new(None) };
}

fn scratch_dir() -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    SCRATCH.with_borrow_mut(|scratch| {
        scratch
            .get_or_insert_with(|| {
                let dir = std::env::temp_dir().join(format!(
                    "weft-fuzz-{}-{}",
                    std::process::id(),
                    NEXT.fetch_add(1, Ordering::Relaxed)
                ));
                std::fs::create_dir_all(&dir).expect("creating the scratch directory");
                Scratch(dir)
            })
            .0
            .clone()
    })
}

pub fn controller_yaml(data: &[u8]) {
    let dir = scratch_dir();
    let file = dir.join("resources.yaml");
    std::fs::write(&file, data).expect("writing the scratch file");
    let directory = weft_controller::local::read_dir(&dir).expect("the directory reads");
    for error in &directory.errors {
        assert!(
            error.path.ends_with("resources.yaml"),
            "{error} names no file"
        );
        assert!(!error.message.is_empty(), "{error} says nothing");
    }
    // Events are what the index sees; building them must not panic.
    let _ = directory.events();
}
