//! `--platform`: the sample plugin that installs from Debian and PyPI
//! (class-catalog) built for linux/arm64 on this (amd64) machine, from an
//! arm64 base with arm64 `.deb`s and wheels and no emulator, then for
//! linux/amd64,linux/arm64 as one image index; each image passes the
//! validator after `skopeo copy`, its `jq` and PyYAML's `_yaml*.so` are
//! ELF files of its architecture, and `Dockerfile.lock` pins the `RUN`s
//! for both platforms.
//!
//! Cost: the arm64 `.deb`s of the base (~19 MB) and of jq, and the arm64
//! PyYAML wheel, are downloaded once into `~/.cache/plugin-forge`; the
//! amd64 ones are usually there already from the other tests.

use std::path::Path;

use forge_oci::{files, BlobStore, ImageFiles, ImageLayers, Platform, Target};
use forge_testkit::{require_tool, run};
use serde_json::Value;

use crate::locks::require_network;
use crate::{copy_dir, ok, project_root, xtask};

const TARBALL: &str = "target/plugin-forge/images/supervisely/class-catalog_0.1.0.tar";
const LOCK: &str = "plugins/tools/class-catalog/Dockerfile.lock";
/// ELF `e_machine` of x86-64 and of AArch64.
const X86_64: u16 = 0x3E;
const AARCH64: u16 = 0xB7;

#[test]
fn class_catalog_builds_for_arm64_and_for_both_platforms_as_an_index() {
    if !(require_tool("skopeo")
        && require_network(&["deb.debian.org:80", "pypi.org:443", "files.pythonhosted.org:443"]))
    {
        return;
    }
    let repo = tempfile::tempdir().unwrap();
    for part in ["plugins/tools/class-catalog", "supervisely_lib", "base-images"] {
        copy_dir(&project_root().join(part), &repo.path().join(part));
    }
    let root = repo.path().to_str().unwrap();
    let tarball = repo.path().join(TARBALL);
    let scratch = tempfile::tempdir().unwrap();

    // One platform: the tag names the arm64 image itself.
    let build = |platform: &str| {
        let out = xtask(
            repo.path(),
            &["build", "class-catalog", "--root", root, "--platform", platform, "--format", "json"],
        );
        let line: Value = serde_json::from_str(ok(&out).trim()).unwrap();
        assert_eq!(line["status"], "built", "{line}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let stderr = build("linux/arm64");
    assert!(stderr.contains("base image localhost:5000/base-py is missing"), "{stderr}");
    let raw = raw_manifest(&tarball);
    assert_eq!(raw["mediaType"], "application/vnd.oci.image.manifest.v1+json", "{raw}");
    let images = copied_images(&tarball, &scratch.path().join("arm64"));
    assert_eq!(images, [("linux/arm64".to_string(), AARCH64, AARCH64)]);
    // The committed arm64 lock of the base was used, not resolved again.
    assert!(!stderr.contains("base-py.arm64.lock"), "{stderr}");

    // Two platforms: an index of both, each image for its own machine.
    build("linux/amd64,linux/arm64");
    let raw = raw_manifest(&tarball);
    assert_eq!(raw["mediaType"], "application/vnd.oci.image.index.v1+json", "{raw}");
    let listed: Vec<String> = raw["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let field = |name: &str| m["platform"][name].as_str().unwrap_or("?").to_string();
            format!("{}/{}", field("os"), field("architecture"))
        })
        .collect();
    assert_eq!(listed, ["linux/amd64", "linux/arm64"]);
    let images = copied_images(&tarball, &scratch.path().join("both"));
    assert_eq!(
        images,
        [("linux/amd64".to_string(), X86_64, X86_64), ("linux/arm64".to_string(), AARCH64, AARCH64)]
    );
    // What `docker load` reads: one image, this machine's.
    let docker = run("tar", &["-xOf", tarball.to_str().unwrap(), "manifest.json"]);
    let docker: Value = serde_json::from_str(&docker).unwrap();
    let config = docker[0]["Config"].as_str().unwrap().to_string();
    let config = run("tar", &["-xOf", tarball.to_str().unwrap(), &config]);
    let config: Value = serde_json::from_str(&config).unwrap();
    assert_eq!(config["architecture"], Platform::host().architecture.as_str());

    // Dockerfile.lock pins both RUNs for both platforms.
    let lock = std::fs::read_to_string(repo.path().join(LOCK)).unwrap();
    for platform in ["linux/amd64", "linux/arm64"] {
        let entries = lock.matches(&format!("platform = \"{platform}\"")).count();
        assert_eq!(entries, 2, "{platform} in {lock}");
    }
    assert!(lock.contains("aarch64"), "the arm64 wheels: {lock}");
}

/// `skopeo inspect --raw` of the archive.
fn raw_manifest(tarball: &Path) -> Value {
    let raw = run("skopeo", &["inspect", "--raw", &forge_testkit::oci_archive(tarball)]);
    serde_json::from_str(&raw).unwrap()
}

/// `skopeo copy --all` of the archive into a new OCI layout (every digest
/// verified on the way), then each image of it through our validator: its
/// platform and the ELF machines of `/usr/bin/jq` and PyYAML's extension.
fn copied_images(tarball: &Path, layout: &Path) -> Vec<(String, u16, u16)> {
    let source = forge_testkit::oci_archive(tarball);
    let dest = format!("oci:{}:checked", layout.display());
    run("skopeo", &["copy", "--all", "--quiet", &source, &dest]);
    let store = BlobStore::open_or_create(layout).unwrap();
    let target = Target::load_ref(&store, "checked").unwrap().expect("the copied ref");
    if let Target::Index(index) = &target {
        forge_oci::validate::index(&store, &index.digest).unwrap();
    }
    target
        .images()
        .iter()
        .map(|image| {
            forge_oci::validate::image(&store, &image.manifest_digest).unwrap();
            let files = ImageLayers::read(&store, image).unwrap();
            let dir = "usr/local/lib/python3.11/dist-packages/yaml";
            let ext = files.list(dir).into_iter().find(|n| n.starts_with("_yaml") && n.ends_with(".so"));
            let ext = format!("{dir}/{}", ext.unwrap_or_else(|| panic!("no _yaml*.so in /{dir}")));
            let platform = Platform::of_config(&image.config).to_string();
            (platform, elf_machine(&files, "usr/bin/jq"), elf_machine(&files, &ext))
        })
        .collect()
}

/// The `e_machine` of the ELF file at `path` in the image.
fn elf_machine(files: &ImageLayers, path: &str) -> u16 {
    let bytes = files::read(files, path, 1 << 26).unwrap().unwrap_or_else(|| panic!("no /{path}"));
    assert_eq!(&bytes[..4], b"\x7fELF", "/{path} is not ELF");
    u16::from_le_bytes([bytes[18], bytes[19]])
}
