//! `weft plugin new`: a filter project outside this repository, in Rust,
//! Python or JavaScript. The example filter is the repository's own
//! `plugins/examples/add-header*` (built and tested in CI), with its test
//! file; the Rust one takes the SDK as a path or git dependency.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail, ensure};
use clap::Args;

use super::project::{DEFAULT_TEST_FILE, Lang, MANIFEST, Manifest, is_plugin_name};

const RUST_FILTER: &str = include_str!("../../../plugins/examples/add-header/src/lib.rs");
const PYTHON_FILTER: &str = include_str!("../../../plugins/examples/add-header-python/app.py");
const JS_FILTER: &str = include_str!("../../../plugins/examples/add-header-js/filter.js");
const TEST_FILE: &str = include_str!("../../../plugins/examples/add-header/plugin-test.yaml");

#[derive(Args)]
pub struct NewArgs {
    /// The plugin's name: lowercase letters, digits and `-`.
    name: String,
    #[arg(long, value_enum)]
    lang: Lang,
    /// Where to create it; `./NAME` when not given.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Rust: the SDK (`weft-plugin-sdk`) as a path or a git URL; this
    /// checkout's `plugins/sdk` when not given.
    #[arg(long, env = "WEFT_PLUGIN_SDK", value_name = "PATH|URL")]
    sdk: Option<String>,
}

pub fn run(args: &NewArgs) -> anyhow::Result<ExitCode> {
    ensure!(
        is_plugin_name(&args.name),
        "plugin name {:?} must be lowercase letters, digits and `-`, starting with a letter",
        args.name
    );
    let dir = args
        .dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(&args.name));
    if dir
        .read_dir()
        .is_ok_and(|mut entries| entries.next().is_some())
    {
        bail!("{} exists and is not empty", dir.display());
    }
    let files = project_files(&args.name, args.lang, args.sdk.as_deref())?;
    for (path, text) in &files {
        let path = dir.join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    println!(
        "created {} ({} filter): `weft plugin build --dir {0}`, then `weft plugin test --dir {0}`",
        dir.display(),
        args.lang
    );
    Ok(ExitCode::SUCCESS)
}

/// The project's files, by path within it.
fn project_files(
    name: &str,
    lang: Lang,
    sdk: Option<&str>,
) -> anyhow::Result<Vec<(&'static str, String)>> {
    let manifest = Manifest {
        name: name.to_string(),
        lang,
    };
    let mut files = vec![
        (
            MANIFEST,
            format!(
                "# A Weft filter project: `weft plugin build` writes target/{name}.wasm,\n\
                 # `weft plugin test` runs it against {DEFAULT_TEST_FILE}.\n{}",
                serde_norway::to_string(&manifest)?
            ),
        ),
        (DEFAULT_TEST_FILE, TEST_FILE.to_string()),
        (".gitignore", "/target\n".to_string()),
    ];
    match lang {
        Lang::Rust => {
            files.push(("Cargo.toml", cargo_toml(name, &sdk_dependency(sdk)?)));
            files.push(("src/lib.rs", RUST_FILTER.to_string()));
        }
        Lang::Python => files.push(("app.py", PYTHON_FILTER.to_string())),
        Lang::Js => files.push(("filter.js", JS_FILTER.to_string())),
    }
    Ok(files)
}

/// `weft-plugin-sdk`'s dependency line: git for a URL, else a path.
fn sdk_dependency(sdk: Option<&str>) -> anyhow::Result<String> {
    match sdk {
        Some(url) if url.contains("://") => Ok(format!("{{ git = {url:?} }}")),
        Some(path) => path_dependency(Path::new(path)),
        None => {
            let checkout = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/sdk");
            path_dependency(&checkout).context(
                "this weft was not built from a checkout: name the Rust SDK with --sdk PATH|URL",
            )
        }
    }
}

fn path_dependency(path: &Path) -> anyhow::Result<String> {
    let path = path
        .canonicalize()
        .with_context(|| format!("the Rust SDK at {}", path.display()))?;
    ensure!(
        path.join("Cargo.toml").is_file(),
        "{} is not the Rust SDK (no Cargo.toml)",
        path.display()
    );
    Ok(format!("{{ path = {:?} }}", path.display().to_string()))
}

fn cargo_toml(name: &str, sdk: &str) -> String {
    format!(
        r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2024"
publish = false

# A component the proxy loads: `weft plugin build` (cargo build --release
# --target wasm32-wasip2).
[lib]
crate-type = ["cdylib"]

[dependencies]
weft-plugin-sdk = {sdk}
serde = {{ version = "1", features = ["derive"] }}
serde_json = "1"

# Plugins ship as small components: optimise for size, and a panic is a trap
# the proxy reports, so there is nothing to unwind.
[profile.release]
opt-level = "s"
lto = true
codegen-units = 1
strip = true
panic = "abort"

# A project of its own, even when created inside another workspace.
[workspace]
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_language_gets_a_manifest_a_filter_and_the_test_file() {
        for (lang, filter) in [
            (Lang::Rust, "src/lib.rs"),
            (Lang::Python, "app.py"),
            (Lang::Js, "filter.js"),
        ] {
            let files = project_files("hello-header", lang, None).unwrap();
            let names: Vec<&str> = files.iter().map(|(path, _)| *path).collect();
            for expected in [MANIFEST, DEFAULT_TEST_FILE, filter] {
                assert!(names.contains(&expected), "{lang}: {names:?}");
            }
            let manifest: Manifest = serde_norway::from_str(&files[0].1).unwrap();
            assert_eq!(
                (manifest.name.as_str(), manifest.lang),
                ("hello-header", lang)
            );
        }
    }

    #[test]
    fn the_rust_sdk_comes_by_git_or_by_path() {
        assert_eq!(
            sdk_dependency(Some("https://example.com/weft.git")).unwrap(),
            r#"{ git = "https://example.com/weft.git" }"#
        );
        assert!(sdk_dependency(None).unwrap().contains("plugins/sdk"));
        assert!(sdk_dependency(Some("/nonexistent")).is_err());
    }
}
