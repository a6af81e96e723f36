//! `cargo xtask images`: the container images `weft-proxy` and
//! `weft-controller`, built from scratch (no base image): static musl
//! binaries in one deterministic layer, packed as OCI images, written as
//! image layouts and/or pushed to a registry and checked by digest.

mod binaries;
mod iptables;
mod layout;
mod pack;
mod push;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, ensure};
use weft_inject::Settings;

use pack::{Entry, Image, Layer, RunConfig};

#[derive(clap::Args)]
pub struct ImagesArgs {
    /// Pack the binaries found in DIR (weft-proxy, weft-controller, weft;
    /// static) instead of building them for musl.
    #[arg(long, value_name = "DIR")]
    binaries: Option<PathBuf>,
    /// Where the images go, HOST[:PORT]/PATH: `<registry>/weft-proxy:<tag>`
    /// and `<registry>/weft-controller:<tag>`. The default is the
    /// injector's (and the chart's).
    #[arg(long, default_value_t = Settings::default().registry)]
    registry: String,
    /// The images' tag; the default is the version the injector gives
    /// proxies.
    #[arg(long, default_value_t = Settings::default().proxy_version)]
    tag: String,
    /// Write OCI image layouts to DIR/weft-proxy and DIR/weft-controller.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Push the images (plain HTTP to a loopback registry, else HTTPS), then
    /// pull each manifest back and check its digest.
    #[arg(long)]
    push: bool,
    /// The images' `org.opencontainers.image.source` label (default: the
    /// URL of the git remote `origin`, when there is one).
    #[arg(long, value_name = "URL")]
    source: Option<String>,
    /// Leave the host's iptables out of the proxy image (then the init
    /// container running `weft-proxy init` needs an image that has it).
    #[arg(long)]
    no_iptables: bool,
}

/// What goes in one image.
pub struct ImageSpec {
    pub name: &'static str,
    /// The binaries, from the binaries directory to `/usr/bin/`; the first
    /// is the entrypoint.
    pub binaries: &'static [&'static str],
    pub user: u32,
}

pub const PROXY: ImageSpec = ImageSpec {
    name: "weft-proxy",
    binaries: &["weft-proxy"],
    // `weft-proxy init` exempts this UID's connections from the redirect.
    user: weft_inject::settings::PROXY_UID as u32,
};

pub const CONTROLLER: ImageSpec = ImageSpec {
    name: "weft-controller",
    binaries: &["weft-controller", "weft"],
    // nobody: the controller needs no identity on the node.
    user: 65534,
};

pub fn run(args: &ImagesArgs) -> anyhow::Result<()> {
    ensure!(
        args.push || args.out.is_some(),
        "say where the images go: --push (to {}), --out DIR, or both",
        args.registry
    );
    let dir = match &args.binaries {
        Some(dir) => dir.clone(),
        None => binaries::build_static()?,
    };
    for spec in [&PROXY, &CONTROLLER] {
        for binary in spec.binaries {
            binaries::ensure_static(&dir.join(binary))?;
        }
    }
    let labels = labels(&args.tag, args.source.clone().or_else(origin_url));
    let init_layers = match args.no_iptables {
        true => Vec::new(),
        false => vec![iptables::layer()?],
    };
    let images = vec![
        pack(&PROXY, &dir, &labels, init_layers)?,
        pack(&CONTROLLER, &dir, &labels, Vec::new())?,
    ];
    for image in &images {
        let layers: Vec<String> = image
            .layers
            .iter()
            .map(|layer| format!("{} ({} bytes)", layer.comment, layer.blob.bytes.len()))
            .collect();
        eprintln!(
            "{}: manifest {}, layers: {}",
            image.name,
            image.manifest.digest,
            layers.join(", ")
        );
    }
    if let Some(out) = &args.out {
        for image in &images {
            layout::write(&out.join(&image.name), image, &args.tag)?;
        }
        eprintln!("wrote OCI image layouts to {}", out.display());
    }
    if args.push {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting a runtime for the pushes")?;
        let registry = push::Registry::new(&args.registry)?;
        for image in &images {
            println!("{}", runtime.block_on(registry.push(image, &args.tag))?);
        }
    }
    Ok(())
}

/// Packs one image from the binaries in `dir`, with `more` layers above.
pub fn pack(
    spec: &ImageSpec,
    dir: &Path,
    labels: &BTreeMap<String, String>,
    more: Vec<Layer>,
) -> anyhow::Result<Image> {
    let mut files = BTreeMap::new();
    for binary in spec.binaries {
        let path = dir.join(binary);
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        files.insert(
            format!("usr/bin/{binary}"),
            Entry::File { bytes, mode: 0o755 },
        );
    }
    let comment = format!("/usr/bin/{}", spec.binaries.join(", /usr/bin/"));
    let mut layers = vec![Layer::pack(&files, &comment)?];
    layers.extend(more);
    let run = RunConfig {
        user: spec.user.to_string(),
        entrypoint: vec![format!("/usr/bin/{}", spec.binaries[0])],
        labels: labels.clone(),
    };
    Image::pack(spec.name, &run, layers)
}

/// The OCI annotations the images carry as labels.
pub fn labels(tag: &str, source: Option<String>) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::from([(
        "org.opencontainers.image.version".to_string(),
        tag.to_string(),
    )]);
    if let Some(source) = source {
        labels.insert("org.opencontainers.image.source".to_string(), source);
    }
    labels
}

/// `git remote get-url origin`, if the checkout has that remote.
fn origin_url() -> Option<String> {
    let output = std::process::Command::new("git")
        .args(["remote", "get-url", "origin"])
        .current_dir(crate::workspace::root())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    let url = String::from_utf8(output.stdout).ok()?.trim().to_string();
    (output.status.success() && !url.is_empty()).then_some(url)
}
