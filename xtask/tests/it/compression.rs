//! `--compression zstd`: the layers built are
//! `application/vnd.oci.image.layer.v1.tar+zstd`, read by tools we did not
//! write (`skopeo copy` into an OCI layout, and into a gzip copy that
//! `umoci unpack`s, Python's `tarfile` after `zstd -d`), with the same
//! digest whatever the core count, and cached apart from the gzip layers
//! of the same plugin.

use std::path::Path;

use serde_json::Value;

use crate::{ok, xtask};

const ZSTD_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+zstd";

/// Lists the last layer of the image `checked` of an OCI layout: its
/// media type, then, decompressed by `zstd -d`, its diff ID checked against
/// the config and every member read by `tarfile` (`NAME SIZE`).
const PYTHON_ZSTD_LAYER: &str = r#"
import hashlib, io, json, subprocess, sys, tarfile
layout = sys.argv[1]
def blob(d):
    return open(layout + "/blobs/sha256/" + d.split(":", 1)[1], "rb").read()
index = json.load(open(layout + "/index.json"))
manifest = json.loads(blob(index["manifests"][0]["digest"]))
config = json.loads(blob(manifest["config"]["digest"]))
layer = manifest["layers"][-1]
print(layer["mediaType"])
raw = blob(layer["digest"])
assert "sha256:" + hashlib.sha256(raw).hexdigest() == layer["digest"], "digest"
tar = subprocess.run(["zstd", "-d", "-c", "-q"], input=raw, capture_output=True, check=True).stdout
assert "sha256:" + hashlib.sha256(tar).hexdigest() == config["rootfs"]["diff_ids"][-1], "diff_id"
with tarfile.open(fileobj=io.BytesIO(tar), mode="r:") as tf:
    for m in tf:
        if m.isfile():
            assert len(tf.extractfile(m).read()) == m.size, m.name
        print(m.name, m.size)
"#;

/// Bytes that take several of libzstd's 8 MiB jobs, so that the workers
/// really share the frame: text with repeats, and noise.
fn data(len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 64);
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        if (out.len() >> 20) % 3 == 2 {
            out.extend_from_slice(&x.to_le_bytes());
        } else {
            out.extend_from_slice(format!("weight_{} = {}\n", x % 5000, x % 977).as_bytes());
        }
    }
    out.truncate(len);
    out
}

fn builds(stdout: &str) -> Vec<Value> {
    stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn zstd_images_are_read_by_other_tools_and_keep_their_digest_on_any_core_count() {
    for tool in ["skopeo", "umoci", "zstd", "python3", "taskset"] {
        if !forge_testkit::require_tool(tool) {
            return;
        }
    }
    let scratch = tempfile::tempdir().unwrap();
    let base = format!("localhost:5000/base-py={}", crate::publish::base_tarball(scratch.path()).display());
    let repo = crate::docker_flags::monorepo();
    let weights = data(20 << 20);
    std::fs::write(repo.path().join("plugins/w/weights.bin"), &weights).unwrap();
    let root = repo.path().to_str().unwrap();
    let build = |taskset: bool, extra: &[&str]| {
        let mut args = vec!["build", "w", "--root", root, "--base-image", &base, "--format", "json"];
        args.extend(extra);
        let out = if taskset {
            // One core: libzstd gets one worker.
            let mut command = std::process::Command::new("taskset");
            command.args(["-c", "0", env!("CARGO_BIN_EXE_xtask")]).args(&args).current_dir(repo.path());
            command.env_remove("CARGO_MANIFEST_DIR").output().unwrap()
        } else {
            xtask(repo.path(), &args)
        };
        builds(&ok(&out)).remove(0)
    };

    let gzip = build(false, &[]);
    let zstd = build(false, &["--compression", "zstd"]);
    assert_ne!(zstd["digest"], gzip["digest"]);
    // Not taken from the gzip layer's cache entry.
    assert!(zstd["layers_built"].as_u64().unwrap() >= 1, "{zstd}");
    assert_eq!(build(false, &["--compression", "zstd"])["status"], "cached");
    let one_core = build(true, &["--compression", "zstd", "--no-cache"]);
    assert_eq!(one_core["digest"], zstd["digest"], "one core and every core give one image");

    // skopeo copies it into an OCI layout (verifying every digest), umoci
    // unpacks it, Python's tarfile reads the layer `zstd -d` decompressed.
    let tarball = zstd["tarball"].as_str().unwrap_or_else(|| panic!("{zstd}"));
    let image = forge_testkit::oci_archive(Path::new(tarball));
    let manifest: Value =
        serde_json::from_str(&forge_testkit::run("skopeo", &["inspect", "--raw", &image])).unwrap();
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.last().unwrap()["mediaType"], ZSTD_LAYER, "{manifest}");
    assert_ne!(layers[0]["mediaType"], ZSTD_LAYER, "the base's layers stay as they are: {manifest}");
    let (_, layout) = forge_testkit::skopeo_check(Path::new(tarball), scratch.path());
    // umoci 0.4 reads no zstd: skopeo (Go's zstd) decompresses our layer
    // into a gzip copy for it.
    let gzipped = scratch.path().join("gzipped");
    let dest = format!("oci:{}:checked", gzipped.display());
    let args = ["copy", "--quiet", "--dest-compress-format", "gzip", &image, &dest];
    forge_testkit::run("skopeo", &args);
    let rootfs = forge_testkit::umoci_unpack(&gzipped, "checked", scratch.path());
    assert_eq!(std::fs::read(rootfs.join("workdir/src/main.py")).unwrap(), b"print(1)\n");
    assert!(std::fs::read(rootfs.join("workdir/weights.bin")).unwrap() == weights, "weights.bin unpacked");
    let listing = forge_testkit::run("python3", &["-c", PYTHON_ZSTD_LAYER, layout.to_str().unwrap()]);
    let mut lines = listing.lines();
    assert_eq!(lines.next(), Some(ZSTD_LAYER));
    let members: Vec<&str> = lines.collect();
    assert!(members.contains(&"workdir/src/main.py 9"), "{listing}");
    assert!(members.contains(&format!("workdir/weights.bin {}", weights.len()).as_str()), "{listing}");

    // The same plugin in gzip again: its own cache entries, its own image.
    assert_eq!(build(false, &[])["digest"], gzip["digest"], "gzip is still gzip, cached apart");
}
