//! `--archive FILE`: one archive of every sample plugin's image, read by
//! tools we did not write (Python's `tarfile`, skopeo, `docker load`; the
//! samples are built once, by e2e.rs, which calls the check here);
//! outputs (tarballs and archive) that are the same bytes whatever `-j`,
//! the cache state or `--no-cache`; and warm runs that leave unchanged
//! outputs alone but write a deleted or edited one again.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use forge_testkit::{files_below, require_tool, Dockerd};
use serde_json::Value;

use crate::{ok, xtask};

/// `build-all --root REPO ARGS --format json`, which must succeed, as JSON lines.
fn build_all(repo: &Path, args: &[&str]) -> Vec<Value> {
    let mut argv = vec!["build-all", "--root", repo.to_str().unwrap(), "--format", "json"];
    argv.extend(args);
    ok(&xtask(repo, &argv)).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// Python's `tarfile` over a multi-image archive: every member once, every
/// blob its digest, every `index.json` entry and `manifest.json` entry
/// pointing at blobs that are there. Prints `ref NAME DIGEST` per named
/// entry, `load TAG CONFIG` per Docker tag, `blob DIGEST SIZE` per blob.
const CHECK: &str = r#"
import hashlib, json, sys, tarfile
outer = tarfile.open(sys.argv[1], "r:")
members = outer.getmembers()
names = [m.name for m in members]
assert len(names) == len(set(names)), "a member is there twice"
def read(name):
    return outer.extractfile(name).read()
blobs = {}
for m in members:
    if m.isfile() and m.name.startswith("blobs/sha256/"):
        hexd = m.name.rsplit("/", 1)[1]
        assert hashlib.sha256(read(m.name)).hexdigest() == hexd, m.name
        blobs["sha256:" + hexd] = m.size
def blob(d):
    assert d in blobs, "missing blob " + d
    return json.loads(read("blobs/sha256/" + d.split(":", 1)[1]))
assert json.loads(read("oci-layout")) == {"imageLayoutVersion": "1.0.0"}
out = []
for entry in json.loads(read("index.json"))["manifests"]:
    doc = blob(entry["digest"])
    images = [blob(m["digest"]) for m in doc["manifests"]] if "manifests" in doc else [doc]
    for image in images:
        blob(image["config"]["digest"])
        for layer in image["layers"]:
            assert layer["digest"] in blobs, "missing layer"
            assert blobs[layer["digest"]] == layer["size"], "layer size"
    ann = entry.get("annotations") or {}
    if "org.opencontainers.image.ref.name" in ann:
        assert ann["org.opencontainers.image.ref.name"] == ann["io.containerd.image.name"]
        out.append(f"ref {ann['org.opencontainers.image.ref.name']} {entry['digest']}")
    else:
        assert "subject" in doc, "an unnamed entry that is no referrer"
repositories = json.loads(read("repositories"))
for entry in json.loads(read("manifest.json")):
    assert entry["Config"] in names and all(l in names for l in entry["Layers"])
    for tag in entry["RepoTags"]:
        name, t = tag.rsplit(":", 1)
        assert t in repositories[name]
        out.append(f"load {tag} sha256:{entry['Config'].rsplit('/', 1)[1]}")
for d, size in blobs.items():
    out.append(f"blob {d} {size}")
print("\n".join(sorted(out)))
"#;

/// What every tool finds in `archive`, the `--archive` of the sample
/// plugins' `build-all` that printed `lines` (e2e.rs builds them): Python
/// finds each blob once and each image by its full name, skopeo picks each
/// one (and copies one, verifying every digest), and `engine` (when one
/// can start) loads them all from the one file.
pub(crate) fn samples_archive_is_read_by_every_tool(
    archive: &Path,
    lines: &[Value],
    engine: Option<&Dockerd>,
) {
    if !(require_tool("skopeo") && require_tool("python3")) {
        return;
    }
    let mut images = BTreeMap::new();
    for line in lines {
        assert_eq!(line["archive"]["file"], archive.to_str().unwrap(), "{line}");
        assert_eq!(line["archive"]["ref"], line["image"], "{line}");
        images
            .insert(line["image"].as_str().unwrap().to_owned(), line["digest"].as_str().unwrap().to_owned());
    }
    assert_eq!(images.len(), 5, "{lines:?}");

    let listing = forge_testkit::run("python3", &["-c", CHECK, archive.to_str().unwrap()]);
    let pairs = |prefix: &str| -> BTreeMap<String, String> {
        listing
            .lines()
            .filter_map(|l| l.strip_prefix(prefix))
            .map(|l| l.split_once(' ').map(|(n, d)| (n.to_owned(), d.to_owned())).unwrap())
            .collect()
    };
    assert_eq!(pairs("ref "), images);
    let blob_bytes: u64 =
        listing.lines().filter_map(|l| l.strip_prefix("blob ")?.split(' ').nth(1)?.parse::<u64>().ok()).sum();
    let sizes: Vec<u64> = lines.iter().map(|l| l["size"].as_u64().unwrap()).collect();
    // The base is most of every image, and in the archive once.
    let (largest, total) = (sizes.iter().max().copied().unwrap(), sizes.iter().sum::<u64>());
    assert!(blob_bytes >= largest && blob_bytes < total / 2, "{blob_bytes} bytes of blobs for {sizes:?}");
    let archive_bytes = fs::metadata(archive).unwrap().len();
    assert!(archive_bytes < blob_bytes + blob_bytes / 10, "{archive_bytes} for {blob_bytes} of blobs");

    // skopeo picks each image by its full name.
    let mut configs = BTreeMap::new();
    for (image, digest) in &images {
        let source = format!("oci-archive:{}:{image}", archive.display());
        let inspect: Value =
            serde_json::from_str(&forge_testkit::run("skopeo", &["inspect", &source])).unwrap();
        assert_eq!(inspect["Digest"], digest.as_str(), "{image}");
        let raw: Value =
            serde_json::from_str(&forge_testkit::run("skopeo", &["inspect", "--raw", &source])).unwrap();
        configs.insert(image.clone(), raw["config"]["digest"].as_str().unwrap().to_owned());
    }
    let scratch = tempfile::tempdir().unwrap();
    let catalog = images.keys().find(|i| i.contains("class-catalog")).unwrap();
    let dest = format!("oci:{}:checked", scratch.path().join("layout").display());
    let source = format!("oci-archive:{}:{catalog}", archive.display());
    forge_testkit::run("skopeo", &["copy", "--quiet", &source, &dest]);
    // Docker's manifest.json names every image with its config.
    assert_eq!(pairs("load "), configs);

    let Some(engine) = engine else { return };
    let loaded = engine.docker(&["load", "-i", archive.to_str().unwrap()]).unwrap();
    for (image, config) in &configs {
        assert!(loaded.contains(&format!("Loaded image: {image}\n")), "{image}: {loaded}");
        let id = engine.docker(&["image", "inspect", "--format", "{{.Id}}", image]).unwrap();
        assert_eq!(id.trim(), config, "{image}");
    }
}

/// (inode, mtime, ctime) of `path`, with nanoseconds.
fn stamp(path: &Path) -> [i64; 5] {
    let m = fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    [m.ino() as i64, m.mtime(), m.mtime_nsec(), m.ctime(), m.ctime_nsec()]
}

/// Every file below `dir` with its bytes.
fn contents(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    files_below(dir).into_iter().map(|f| (f.clone(), fs::read(dir.join(&f)).unwrap())).collect()
}

/// A generated monorepo of six plugins over the shared SDK.
fn generated() -> tempfile::TempDir {
    let repo = tempfile::tempdir().unwrap();
    forge_testkit::monorepo::generate(repo.path(), 6);
    repo
}

#[test]
fn outputs_are_the_same_bytes_whatever_jobs_and_cache_and_warm_runs_leave_them() {
    let scratch = tempfile::tempdir().unwrap();
    let base = format!("localhost:5000/base-py={}", crate::publish::base_tarball(scratch.path()).display());
    let (cold, other) = (generated(), generated());
    // A run killed while writing an archive left this; the next removes it.
    let stale = scratch.path().join(format!("runs/cold-j1/.tmp-{}-plugins", forge_testkit::dead_pid()));
    fs::create_dir_all(stale.parent().unwrap()).unwrap();
    fs::write(&stale, "half an archive").unwrap();
    // Each run writes tarballs and an archive into a directory of its own.
    let run = |repo: &Path, name: &str, args: &[&str]| -> BTreeMap<String, Vec<u8>> {
        let dir = scratch.path().join("runs").join(name);
        let (out, archive) = (dir.join("images"), dir.join("plugins.tar"));
        let mut argv = vec!["--base-image", &base, "--tarballs", "--out", out.to_str().unwrap()];
        argv.extend(["--archive", archive.to_str().unwrap()]);
        argv.extend(args);
        let lines = build_all(repo, &argv);
        assert_eq!(lines.len(), 6);
        for line in &lines {
            assert!(line["tarball"].is_string(), "{line}");
            assert_eq!(line["archive"]["ref"], line["image"], "{line}");
        }
        contents(&dir)
    };
    let first = run(cold.path(), "cold-j1", &["-j", "1"]);
    assert_eq!(first.len(), 7, "{:?}", first.keys());
    for (name, repo, args) in [
        ("cold-j2", other.path(), &["-j", "2"][..]),
        ("warm-j2", cold.path(), &["-j", "2"]),
        ("warm-j1", other.path(), &["-j", "1"]),
        ("no-cache-j2", cold.path(), &["-j", "2", "--no-cache"]),
    ] {
        let found = run(repo, name, args);
        assert_eq!(found.keys().collect::<Vec<_>>(), first.keys().collect::<Vec<_>>(), "{name}");
        for (file, bytes) in &found {
            assert!(bytes == &first[file], "{name}: {file} differs from the cold -j 1 run's");
        }
    }

    // --archive alone writes no tarball.
    let archive = scratch.path().join("default.tar");
    let lines = build_all(cold.path(), &["--base-image", &base, "--archive", archive.to_str().unwrap()]);
    assert!(lines.iter().all(|l| l["tarball"].is_null()), "{lines:?}");
    let images = cold.path().join("target/plugin-forge/images");
    assert!(!images.exists(), "{:?}", files_below(&images));

    // Warm runs into the default tarball directory and the same archive.
    let flags = ["--base-image", &base, "--tarballs", "--archive", archive.to_str().unwrap()];
    build_all(cold.path(), &flags);
    let mut outputs: Vec<_> = files_below(&images).into_iter().map(|f| images.join(f)).collect();
    assert_eq!(outputs.len(), 6, "{outputs:?}");
    outputs.push(archive.clone());
    let before: Vec<_> = outputs.iter().map(|p| (stamp(p), fs::read(p).unwrap())).collect();
    build_all(cold.path(), &flags);
    for (path, (stamp_before, _)) in outputs.iter().zip(&before) {
        assert_eq!(&stamp(path), stamp_before, "{} was written again", path.display());
    }

    // A deleted tarball comes back, an edited one (same size) and an edited
    // archive are written again, and the others stay as they were.
    fs::remove_file(&outputs[0]).unwrap();
    let mut edited = fs::read(&outputs[1]).unwrap();
    let last = edited.len() - 1;
    edited[last] ^= 1;
    fs::write(&outputs[1], &edited).unwrap();
    fs::write(&archive, b"not an archive").unwrap();
    build_all(cold.path(), &flags);
    for (i, (path, (stamp_before, bytes))) in outputs.iter().zip(&before).enumerate() {
        assert!(&fs::read(path).unwrap() == bytes, "{} is not what it was", path.display());
        let unchanged = stamp(path) == *stamp_before;
        assert_eq!(unchanged, (2..6).contains(&i), "{}", path.display());
    }

    // A run in which nothing built leaves the archive as it was.
    let plugin = forge_testkit::monorepo::plugin_path(0);
    forge_testkit::monorepo::write(
        cold.path(),
        &format!("{plugin}/Dockerfile"),
        "FROM scratch\nCOPY missing /\n",
    );
    let before = stamp(&archive);
    let root = cold.path().to_str().unwrap();
    let failed =
        xtask(cold.path(), &["build", &plugin, "--root", root, "--archive", archive.to_str().unwrap()]);
    assert_eq!(failed.status.code(), Some(1), "{}", String::from_utf8_lossy(&failed.stderr));
    assert_eq!(stamp(&archive), before);
}
