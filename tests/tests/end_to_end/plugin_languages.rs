//! One header filter written in Rust, Python and JavaScript
//! (`plugins/examples/add-header*`): `weft plugin build` makes the Python
//! and JavaScript components, `weft plugin test` passes the same test file
//! with all three, and one proxy runs the three in a chain.
//!
//! The componentizers come from `cargo xtask test`, which installs them
//! pinned and names them in `WEFT_COMPONENTIZE_PY` and `WEFT_COMPONENTIZE_JS`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use weft_tests::http1::Connection;
use weft_tests::plugins::{self, ChainFile};
use weft_tests::{Demo, binaries};

#[tokio::test]
async fn one_filter_in_three_languages_passes_one_test_file_and_runs_in_the_proxy() {
    let scratch = scratch();
    // Shared with the proxy below, so it starts without compiling again.
    let cache = scratch.join("compiled");
    let python = project(&scratch, "add-header-python", "app.py");
    let js = project(&scratch, "add-header-js", "filter.js");
    // The two builds are mostly one core each: run them side by side.
    let builds = [&python, &js].map(|dir| {
        weft(&cache)
            .args(["plugin", "build", "--dir"])
            .arg(dir)
            .spawn()
            .expect("starting weft plugin build")
    });
    for (mut build, dir) in builds.into_iter().zip([&python, &js]) {
        let status = build.wait().unwrap();
        assert!(
            status.success(),
            "weft plugin build --dir {} failed ({status}); the componentizers come \
             from `cargo xtask test` (WEFT_COMPONENTIZE_PY, WEFT_COMPONENTIZE_JS)",
            dir.display()
        );
    }
    let modules = [
        ("rust", plugins::component("add_header")),
        ("python", python.join("target/add-header.wasm")),
        ("js", js.join("target/add-header.wasm")),
    ];

    let test_file = plugins::dir().join("examples/add-header/plugin-test.yaml");
    for (lang, module) in &modules {
        let out = run(weft(&cache)
            .args(["plugin", "test"])
            .arg(&test_file)
            .arg("--module")
            .arg(module));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("5 passed, 0 failed"),
            "the {lang} filter fails the test file:\n{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    let app = Demo::http("app").spawn().await;
    let chain = ChainFile::new(
        modules
            .iter()
            .map(|(lang, module)| {
                serde_json::json!({
                    "name": format!("add-header-{lang}"),
                    "module": module,
                    "config": {"name": format!("x-from-{lang}"), "value": lang},
                })
            })
            .collect(),
    );
    let proxy = chain
        .proxy()
        .env("WEFT_PROXY_PLUGIN_CACHE_DIR", cache.to_str().unwrap())
        .inbound_app(app.addr)
        .spawn()
        .await;
    let reply = Connection::open(proxy.inbound)
        .await
        .get("app.example", "/headers")
        .await;
    for (lang, _) in &modules {
        let header = format!("x-from-{lang}");
        assert_eq!(
            reply.header(&header),
            Some(*lang),
            "{header} on the response"
        );
        assert!(
            reply.text().contains(&format!("{header}: {lang}")),
            "the app saw {header}: {}",
            reply.text()
        );
    }
    let _ = std::fs::remove_dir_all(&scratch);
}

/// `weft`, with the proxy's compiled-plugin cache.
fn weft(cache: &Path) -> Command {
    let mut cmd = Command::new(binaries::path("weft"));
    cmd.env("WEFT_PROXY_PLUGIN_CACHE_DIR", cache);
    cmd
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("running weft")
}

/// A copy of example project `name` (its manifest, `source` and the test
/// file), built outside the source tree.
fn project(scratch: &Path, name: &str, source: &str) -> PathBuf {
    let from = plugins::dir().join("examples").join(name);
    let to = scratch.join(name);
    std::fs::create_dir_all(&to).unwrap();
    for file in ["weft-plugin.yaml", source] {
        std::fs::copy(from.join(file), to.join(file)).unwrap();
    }
    let test_file = plugins::dir().join("examples/add-header/plugin-test.yaml");
    std::fs::copy(test_file, to.join("plugin-test.yaml")).unwrap();
    to
}

fn scratch() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("weft-plugin-languages-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
