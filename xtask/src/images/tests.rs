//! The images packed from stand-in files: deterministic, laid out and
//! pushed to a real docker-registry on loopback, pulled back with
//! oci-client and checked by digest and by what the layers unpack to.

use std::io::Read;
use std::path::{Path, PathBuf};

use clap::Parser;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::manifest::{IMAGE_LAYER_GZIP_MEDIA_TYPE, OCI_IMAGE_MEDIA_TYPE};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use weft_tests::registry::RunningRegistry;

use super::pack::sha256_digest;
use super::*;

/// A directory of stand-in binaries, removed when dropped.
struct StandIns(PathBuf);

impl StandIns {
    fn new(test: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("weft-images-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for binary in PROXY.binaries.iter().chain(CONTROLLER.binaries) {
            std::fs::write(dir.join(binary), stand_in(binary)).unwrap();
        }
        StandIns(dir)
    }
}

impl Drop for StandIns {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn stand_in(binary: &str) -> Vec<u8> {
    format!("stand-in for {binary}\n").repeat(100).into_bytes()
}

fn labels() -> BTreeMap<String, String> {
    super::labels("0.1.0-test", Some("https://example.com/weft".into()))
}

/// One entry of an unpacked layer.
#[derive(Debug)]
struct Unpacked {
    path: String,
    kind: tar::EntryType,
    mode: u32,
    owner: (u64, u64),
    mtime: u64,
    bytes: Vec<u8>,
}

fn unpack(gzip: &[u8]) -> Vec<Unpacked> {
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(gzip));
    archive
        .entries()
        .unwrap()
        .map(|entry| {
            let mut entry = entry.unwrap();
            let header = entry.header().clone();
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).unwrap();
            Unpacked {
                path: entry.path().unwrap().display().to_string(),
                kind: header.entry_type(),
                mode: header.mode().unwrap(),
                owner: (header.uid().unwrap(), header.gid().unwrap()),
                mtime: header.mtime().unwrap(),
                bytes,
            }
        })
        .collect()
}

fn assert_holds_binaries(gzip: &[u8], spec: &ImageSpec) {
    let entries = unpack(gzip);
    let mut expected = vec![
        ("usr".to_string(), tar::EntryType::Directory, Vec::new()),
        ("usr/bin".to_string(), tar::EntryType::Directory, Vec::new()),
    ];
    let mut binaries = spec.binaries.to_vec();
    binaries.sort();
    for binary in binaries {
        let path = format!("usr/bin/{binary}");
        expected.push((path, tar::EntryType::Regular, stand_in(binary)));
    }
    let seen: Vec<_> = entries
        .iter()
        .map(|entry| (entry.path.clone(), entry.kind, entry.bytes.clone()))
        .collect();
    assert_eq!(seen, expected);
    for entry in &entries {
        assert_eq!(entry.mode, 0o755, "{}'s mode", entry.path);
        assert_eq!(entry.owner, (0, 0), "{}'s owner", entry.path);
        assert_eq!(entry.mtime, 0, "{}'s mtime", entry.path);
    }
}

#[test]
fn the_same_binaries_pack_to_the_same_digest() {
    let dir = StandIns::new("same-digest");
    for spec in [&PROXY, &CONTROLLER] {
        let first = pack(spec, &dir.0, &labels(), Vec::new()).unwrap();
        let second = pack(spec, &dir.0, &labels(), Vec::new()).unwrap();
        assert_eq!(first.manifest.bytes, second.manifest.bytes, "{}", spec.name);
        assert_eq!(first.layers[0].blob.bytes, second.layers[0].blob.bytes);
    }
    let before = pack(&PROXY, &dir.0, &labels(), Vec::new()).unwrap();
    std::fs::write(dir.0.join("weft-proxy"), b"another build").unwrap();
    let after = pack(&PROXY, &dir.0, &labels(), Vec::new()).unwrap();
    assert_ne!(before.manifest.digest, after.manifest.digest);
}

#[test]
fn an_image_runs_its_binary_as_its_user() {
    let dir = StandIns::new("config");
    for (spec, user, entrypoint) in [
        (&PROXY, "2102", "/usr/bin/weft-proxy"),
        (&CONTROLLER, "65534", "/usr/bin/weft-controller"),
    ] {
        let image = pack(spec, &dir.0, &labels(), Vec::new()).unwrap();
        assert_holds_binaries(&image.layers[0].blob.bytes, spec);
        let config: serde_json::Value = serde_json::from_slice(&image.config.bytes).unwrap();
        assert_eq!(config["os"], "linux");
        assert_eq!(config["architecture"], "amd64");
        assert_eq!(config["config"]["User"], user);
        assert_eq!(
            config["config"]["Entrypoint"],
            serde_json::json!([entrypoint])
        );
        let labels = &config["config"]["Labels"];
        assert_eq!(labels["org.opencontainers.image.version"], "0.1.0-test");
        assert_eq!(
            labels["org.opencontainers.image.source"],
            "https://example.com/weft"
        );
        // The diff ID is the digest of the layer uncompressed.
        let mut tar = Vec::new();
        flate2::read::GzDecoder::new(image.layers[0].blob.bytes.as_slice())
            .read_to_end(&mut tar)
            .unwrap();
        assert_eq!(
            config["rootfs"],
            serde_json::json!({"type": "layers", "diff_ids": [sha256_digest(&tar)]})
        );
        let manifest: serde_json::Value = serde_json::from_slice(&image.manifest.bytes).unwrap();
        assert_eq!(manifest["mediaType"], OCI_IMAGE_MEDIA_TYPE);
        assert_eq!(manifest["config"]["digest"], image.config.digest);
        assert_eq!(
            manifest["layers"][0]["mediaType"],
            IMAGE_LAYER_GZIP_MEDIA_TYPE
        );
        assert_eq!(
            manifest["layers"][0]["digest"],
            sha256_digest(&image.layers[0].blob.bytes)
        );
    }
}

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: ImagesArgs,
}

#[test]
fn the_default_references_are_the_injectors() {
    let args = Cli::parse_from(["images", "--push"]).args;
    let settings = Settings::default();
    assert_eq!(args.registry, "localhost:5000/weft");
    assert_eq!(args.tag, env!("CARGO_PKG_VERSION"));
    let dir = StandIns::new("defaults");
    let image = pack(&PROXY, &dir.0, &labels(), Vec::new()).unwrap();
    let registry = push::Registry::new(&args.registry).unwrap();
    assert_eq!(
        registry.reference(&image, &args.tag),
        format!("{}:{}", settings.proxy_image(), settings.proxy_version)
    );
}

#[test]
fn layouts_name_every_blob_by_its_digest() {
    let dir = StandIns::new("layout");
    let image = pack(&CONTROLLER, &dir.0, &labels(), Vec::new()).unwrap();
    let out = dir.0.join("out");
    // Written twice: the second replaces the first.
    layout::write(&out, &image, "0.1.0-test").unwrap();
    layout::write(&out, &image, "0.1.0-test").unwrap();
    let read = |path: &str| std::fs::read(out.join(path)).unwrap();
    let oci_layout: serde_json::Value = serde_json::from_slice(&read("oci-layout")).unwrap();
    assert_eq!(oci_layout["imageLayoutVersion"], "1.0.0");
    let index: serde_json::Value = serde_json::from_slice(&read("index.json")).unwrap();
    let entry = &index["manifests"][0];
    assert_eq!(entry["digest"], image.manifest.digest);
    assert_eq!(entry["size"], image.manifest.bytes.len());
    assert_eq!(
        entry["annotations"]["org.opencontainers.image.ref.name"],
        "0.1.0-test"
    );
    let mut names = Vec::new();
    for file in std::fs::read_dir(out.join("blobs/sha256")).unwrap() {
        let file = file.unwrap();
        let name = file.file_name().into_string().unwrap();
        let bytes = std::fs::read(file.path()).unwrap();
        assert_eq!(sha256_digest(&bytes), format!("sha256:{name}"));
        names.push(name);
    }
    names.sort();
    let mut expected: Vec<String> = image
        .blobs()
        .chain([&image.manifest])
        .map(|blob| blob.hex().to_string())
        .collect();
    expected.sort();
    assert_eq!(names, expected);
}

#[test]
fn only_static_x86_64_binaries_are_packed() {
    let error = binaries::ensure_static(Path::new("/bin/ls"))
        .unwrap_err()
        .to_string();
    assert!(error.contains("dynamically linked"), "{error}");
    assert!(error.contains("ld-linux-x86-64.so.2"), "{error}");
    // Debian's glibc ships ldconfig static (static-pie), like a musl build.
    binaries::ensure_static(Path::new("/sbin/ldconfig")).unwrap();
    let dir = StandIns::new("static");
    let error = binaries::ensure_static(&dir.0.join("weft-proxy"))
        .unwrap_err()
        .to_string();
    assert!(error.contains("is not a 64-bit ELF file"), "{error}");
}

#[tokio::test]
async fn pushed_images_pull_back_with_the_same_digests() {
    let registry = RunningRegistry::spawn().await;
    let prefix = format!("{}/weft", registry.addr);
    let dir = StandIns::new("push");
    let pusher = push::Registry::new(&prefix).unwrap();
    let puller = Client::try_from(ClientConfig {
        protocol: ClientProtocol::Http,
        ..ClientConfig::default()
    })
    .unwrap();
    for spec in [&PROXY, &CONTROLLER] {
        let image = pack(spec, &dir.0, &labels(), Vec::new()).unwrap();
        let pushed = pusher.push(&image, "0.1.0-test").await.unwrap();
        let name = format!("{prefix}/{}:0.1.0-test", spec.name);
        assert_eq!(pushed, format!("{name}@{}", image.manifest.digest));
        // Pushing again finds every blob there and changes nothing.
        assert_eq!(pusher.push(&image, "0.1.0-test").await.unwrap(), pushed);

        let reference: Reference = name.parse().unwrap();
        let (manifest, digest) = puller
            .pull_image_manifest(&reference, &RegistryAuth::Anonymous)
            .await
            .unwrap();
        assert_eq!(digest, image.manifest.digest);
        let [layer] = manifest.layers.as_slice() else {
            panic!("{} layers", manifest.layers.len())
        };
        let mut bytes = Vec::new();
        puller
            .pull_blob(&reference, layer, &mut bytes)
            .await
            .unwrap();
        assert_eq!(sha256_digest(&bytes), layer.digest);
        assert_eq!(layer.digest, image.layers[0].blob.digest);
        assert_holds_binaries(&bytes, spec);

        let mut config = Vec::new();
        puller
            .pull_blob(&reference, &manifest.config, &mut config)
            .await
            .unwrap();
        assert_eq!(sha256_digest(&config), image.config.digest);
    }
}

#[test]
fn the_proxy_images_iptables_runs_in_a_root_of_its_own() {
    let root = nix::unistd::geteuid().is_root();
    if !root && !Path::new("/usr/sbin/iptables").exists() {
        eprintln!("skipped: iptables is not installed and only root may install it");
        return;
    }
    let layer = iptables::layer().unwrap();
    assert_eq!(
        iptables::layer().unwrap().blob.digest,
        layer.blob.digest,
        "the same host's iptables packs the same way"
    );
    let entries = unpack(&layer.blob.bytes);
    for entry in &entries {
        assert_eq!((entry.owner, entry.mtime), ((0, 0), 0), "{}", entry.path);
    }
    let find = |wanted: &str| {
        entries
            .iter()
            .find(|entry| entry.path == wanted)
            .unwrap_or_else(|| panic!("{wanted} is not in the layer"))
    };
    assert_eq!(find("usr/sbin/iptables").kind, tar::EntryType::Symlink);
    assert_eq!(find("run").kind, tar::EntryType::Directory);
    let loader = find("lib64/ld-linux-x86-64.so.2");
    assert_eq!(loader.kind, tar::EntryType::Regular);
    let multis: Vec<_> = entries
        .iter()
        .filter(|entry| entry.path.starts_with("usr/sbin/xtables-"))
        .collect();
    assert!(!multis.is_empty());
    for multi in multis {
        let seen = (multi.kind, multi.mode);
        assert_eq!(seen, (tar::EntryType::Regular, 0o755), "{}", multi.path);
    }

    let dir = StandIns::new("iptables");
    let image = pack(&PROXY, &dir.0, &labels(), vec![layer.clone()]).unwrap();
    let config: serde_json::Value = serde_json::from_slice(&image.config.bytes).unwrap();
    assert_eq!(
        config["rootfs"]["diff_ids"][1], layer.diff_id,
        "iptables is the proxy image's second layer"
    );

    let rootfs = dir.0.join("rootfs");
    for layer in &image.layers {
        tar::Archive::new(flate2::read::GzDecoder::new(layer.blob.bytes.as_slice()))
            .unpack(&rootfs)
            .unwrap();
    }
    assert!(rootfs.join("usr/bin/weft-proxy").is_file());
    if !root {
        eprintln!("skipped running iptables in the unpacked image: chroot needs root");
        return;
    }
    let chroot = |args: &[&str]| {
        let output = std::process::Command::new("chroot")
            .arg(&rootfs)
            .args(args)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{args:?}: {stdout}{stderr}");
        stdout
    };
    let version = chroot(&["/usr/sbin/iptables", "--version"]);
    assert!(version.starts_with("iptables v"), "{version}");
    // The extensions weft-proxy init's rules use load from the image.
    let help = chroot(&[
        "/usr/sbin/iptables",
        "-m",
        "owner",
        "-m",
        "multiport",
        "-j",
        "REDIRECT",
        "-h",
    ]);
    for options in [
        "owner match options",
        "multiport match options",
        "REDIRECT target options",
    ] {
        assert!(help.contains(options), "{options}: {help}");
    }
}
