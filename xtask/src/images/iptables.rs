//! The proxy image's second layer: the host's iptables, for the init
//! container's `weft-proxy init`. A from-scratch image has no package
//! manager, so it carries Debian's `xtables-*-multi` binaries, the
//! `iptables*`/`ip6tables*` names as links to them, the extensions they
//! load (`-j REDIRECT`, `-m owner`, `-m multiport`), and exactly the
//! shared libraries and loader `ldd` lists for all of those; and `/run`,
//! where iptables-legacy takes its lock.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail, ensure};

use super::pack::{Entry, Layer};
use crate::test::{apt_get, on_path};

const SBIN: &str = "/usr/sbin";
/// Each dispatches on the name it was run as (`iptables`, `iptables-save`…).
const MULTI: [&str; 2] = ["xtables-nft-multi", "xtables-legacy-multi"];
/// Where libxtables looks for extensions (Debian's compiled-in XTABLES_LIBDIR).
const EXTENSIONS: &str = "/usr/lib/x86_64-linux-gnu/xtables";

/// Packs the host's iptables, installing it first when root and missing.
pub fn layer() -> anyhow::Result<Layer> {
    if !MULTI
        .iter()
        .any(|multi| Path::new(SBIN).join(multi).exists())
    {
        install()?;
    }
    let mut entries = BTreeMap::new();
    let mut elf_files = Vec::new();
    for multi in MULTI {
        let path = Path::new(SBIN).join(multi);
        if path.exists() {
            add_file(&mut entries, &path, &path)?;
            elf_files.push(path);
        }
    }
    for link in std::fs::read_dir(SBIN).with_context(|| format!("listing {SBIN}"))? {
        let link = link?.path();
        let name = file_name(&link);
        let is_link = link.symlink_metadata()?.file_type().is_symlink();
        if !is_link || !(name.starts_with("iptables") || name.starts_with("ip6tables")) {
            continue;
        }
        // Straight to the multi binary, through /etc/alternatives on the
        // host: the image has no alternatives to choose from.
        let Ok(target) = link.canonicalize() else {
            continue;
        };
        let target = file_name(&target);
        if MULTI.contains(&target.as_str()) {
            entries.insert(relative(&link), Entry::Symlink { target });
        }
    }
    if Path::new(EXTENSIONS).is_dir() {
        for extension in std::fs::read_dir(EXTENSIONS)? {
            let extension = extension?.path();
            if extension.extension().is_some_and(|ext| ext == "so") {
                add_file(&mut entries, &extension, &extension)?;
                elf_files.push(extension);
            }
        }
    }
    // iptables-legacy takes its lock at /run/xtables.lock, and a container
    // runtime mounts /dev and /proc but not /run.
    entries.insert("run".to_string(), Entry::Directory);
    for library in libraries(&elf_files)? {
        // At the path the loader is asked for (`/lib64/ld-linux-x86-64.so.2`
        // is written into every binary), as a file, whatever links lead to
        // it on the host.
        let resolved = library
            .canonicalize()
            .with_context(|| format!("resolving {}", library.display()))?;
        add_file(&mut entries, &library, &resolved)?;
    }
    Layer::pack(&entries, &format!("{} from the host", version()?))
}

fn install() -> anyhow::Result<()> {
    if !nix::unistd::geteuid().is_root() || !on_path("apt-get") {
        bail!(
            "iptables is not installed, and the proxy image carries the host's for \
             `weft-proxy init`: run `apt-get install -y iptables` as root (this command does \
             it when run as root), or pass --no-iptables"
        );
    }
    eprintln!("installing iptables with apt-get, for the proxy image's init layer");
    apt_get(&["update"])?;
    apt_get(&["install", "-y", "--no-install-recommends", "iptables"])
}

/// Every library and loader `ldd` lists for `files`, as listed.
fn libraries(files: &[PathBuf]) -> anyhow::Result<std::collections::BTreeSet<PathBuf>> {
    let mut libraries = std::collections::BTreeSet::new();
    for file in files {
        let output = Command::new("ldd")
            .arg(file)
            .output()
            .context("running ldd")?;
        let listing = String::from_utf8_lossy(&output.stdout);
        ensure!(
            output.status.success(),
            "ldd {} failed: {listing}{}",
            file.display(),
            String::from_utf8_lossy(&output.stderr)
        );
        for line in listing.lines() {
            ensure!(
                !line.contains("not found"),
                "{}: {}",
                file.display(),
                line.trim()
            );
            // `libc.so.6 => /lib/…/libc.so.6 (0x…)`, `/lib64/ld-linux-x86-64.so.2 (0x…)`;
            // the vDSO has no file.
            let path = match line.split_once("=>") {
                Some((_, right)) => right.split_whitespace().next(),
                None => line.split_whitespace().next(),
            };
            if let Some(path) = path.filter(|path| path.starts_with('/')) {
                libraries.insert(PathBuf::from(path));
            }
        }
    }
    Ok(libraries)
}

/// `at` in the layer, holding `from`'s bytes and permissions.
fn add_file(entries: &mut BTreeMap<String, Entry>, at: &Path, from: &Path) -> anyhow::Result<()> {
    let bytes = std::fs::read(from).with_context(|| format!("reading {}", from.display()))?;
    let mode = from.metadata()?.permissions().mode() & 0o7777;
    entries.insert(relative(at), Entry::File { bytes, mode });
    Ok(())
}

/// `iptables v1.8.9 (nf_tables)`: what the layer's history says it holds.
fn version() -> anyhow::Result<String> {
    let output = Command::new(Path::new(SBIN).join("iptables"))
        .arg("--version")
        .output()
        .context("running iptables --version")?;
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
}

fn relative(path: &Path) -> String {
    path.display()
        .to_string()
        .trim_start_matches('/')
        .to_string()
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default()
}
