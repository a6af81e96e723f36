//! The binaries the images carry: built static for musl, and checked to
//! need no loader, since a from-scratch image has no libc to load them with.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail, ensure};
use object::elf::{EM_X86_64, FileHeader64};
use object::read::elf::{FileHeader, ProgramHeader};

use crate::test::{apt_get, on_path};
use crate::workspace;

pub const MUSL_TARGET: &str = "x86_64-unknown-linux-musl";

/// Builds `weft-proxy`, `weft-controller` and `weft` static for musl and
/// returns the directory they are in.
pub fn build_static() -> anyhow::Result<PathBuf> {
    let rustup = std::process::Command::new("rustup")
        .args(["target", "add", MUSL_TARGET])
        .status()
        .context("running rustup")?;
    ensure!(
        rustup.success(),
        "rustup target add {MUSL_TARGET} failed ({rustup})"
    );
    install_musl_gcc()?;
    let started = Instant::now();
    let built = workspace::cargo()
        .args(["build", "--release", "--target", MUSL_TARGET])
        .args(["-p", "weft-proxy", "-p", "weft-controller"])
        .status()
        .context("running cargo build")?;
    ensure!(built.success(), "building the static binaries failed");
    eprintln!("built the static binaries in {:.0?}", started.elapsed());
    let target = workspace::debug_dir();
    let target = target
        .parent()
        .expect("the debug dir is inside the target dir");
    Ok(target.join(MUSL_TARGET).join("release"))
}

/// ring's C and assembly and wasmtime's C helpers are compiled by cc,
/// which for the musl target wants `musl-gcc` (Debian's musl-tools);
/// without it the build stops at ring.
fn install_musl_gcc() -> anyhow::Result<()> {
    if on_path("musl-gcc") {
        return Ok(());
    }
    if !nix::unistd::geteuid().is_root() || !on_path("apt-get") {
        bail!(
            "musl-gcc is missing, and ring needs it to build for {MUSL_TARGET}: \
             run `apt-get install -y musl-tools` as root (this command does it when run as root)"
        );
    }
    eprintln!("installing musl-tools with apt-get (ring needs musl-gcc for {MUSL_TARGET})");
    apt_get(&["update"])?;
    apt_get(&["install", "-y", "--no-install-recommends", "musl-tools"])
}

/// Refuses a binary that is not an x86-64 ELF, or that names an ELF
/// interpreter (a dynamic loader the image does not have).
pub fn ensure_static(path: &Path) -> anyhow::Result<()> {
    let data = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let elf = FileHeader64::<object::Endianness>::parse(data.as_slice())
        .with_context(|| format!("{} is not a 64-bit ELF file", path.display()))?;
    let endian = elf.endian()?;
    ensure!(
        elf.e_machine(endian) == EM_X86_64,
        "{} is not an x86-64 binary (ELF machine {}); the images are linux/amd64",
        path.display(),
        elf.e_machine(endian)
    );
    let headers = elf
        .program_headers(endian, data.as_slice())
        .with_context(|| format!("reading the program headers of {}", path.display()))?;
    for header in headers {
        if let Some(interpreter) = header.interpreter(endian, data.as_slice())? {
            bail!(
                "{} is dynamically linked (its ELF interpreter is {}): a from-scratch image \
                 has no loader or libc. Build it for {MUSL_TARGET} (cargo xtask images does)",
                path.display(),
                String::from_utf8_lossy(interpreter)
            );
        }
    }
    Ok(())
}
