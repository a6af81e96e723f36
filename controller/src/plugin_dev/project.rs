//! A filter project on disk: `weft-plugin.yaml` names it and its language;
//! everything else follows from those.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::ValueEnum;
use serde::{Deserialize, Serialize};

/// The file that makes a directory a filter project.
pub const MANIFEST: &str = "weft-plugin.yaml";
/// The test file `weft plugin test` reads when given none.
pub const DEFAULT_TEST_FILE: &str = "plugin-test.yaml";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    Rust,
    Python,
    Js,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Names the component (`target/NAME.wasm`) and the plugin in tests.
    pub name: String,
    pub lang: Lang,
}

pub struct Project {
    pub dir: PathBuf,
    pub manifest: Manifest,
}

impl Project {
    pub fn open(dir: &Path) -> anyhow::Result<Self> {
        let path = dir.join(MANIFEST);
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "{} is not a filter project: cannot read {} (`weft plugin new` makes one)",
                dir.display(),
                path.display()
            )
        })?;
        let manifest: Manifest =
            serde_norway::from_str(&text).with_context(|| format!("reading {}", path.display()))?;
        anyhow::ensure!(
            is_plugin_name(&manifest.name),
            "{}: name {:?} must be lowercase letters, digits and `-`, starting with a letter",
            path.display(),
            manifest.name
        );
        Ok(Self {
            dir: dir.to_path_buf(),
            manifest,
        })
    }

    /// Where `weft plugin build` writes the component.
    pub fn module(&self) -> PathBuf {
        self.dir
            .join("target")
            .join(format!("{}.wasm", self.manifest.name))
    }

    /// Scratch space for a build: the WIT, the SDK, the toolchain's output.
    pub fn build_dir(&self) -> PathBuf {
        self.dir.join("target").join("weft-build")
    }
}

/// A name that is a crate name, a Python module name (with `_`) and an npm
/// package name at once.
pub fn is_plugin_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_lowercase())
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.ends_with('-')
}
