//! Our images as real tools see them: Python's strict `tarfile`, `skopeo`
//! (which verifies every digest when copying) and `umoci` (whose unpacked
//! root file system must be exactly what we wrote).

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use forge_oci::{export_archive, import, validate, BlobStore};

use forge_testkit::{is_root, umoci_unpack};

use crate::{require_tool, run, sample, Expect, MTIME};

const PYTHON_LIST_LAYERS: &str = r#"
import json, sys, tarfile
out = []
for path in sys.argv[1:]:
    members = []
    with tarfile.open(path, "r:gz") as tf:
        for m in tf:
            if m.isfile():
                data = tf.extractfile(m).read()
                assert len(data) == m.size, m.name
            members.append([m.name, m.type.decode(), m.mode, m.uid, m.gid, m.mtime, m.linkname, m.uname, m.gname])
    out.append(members)
print(json.dumps(out))
"#;

/// name, type, mode, uid, gid, mtime, linkname, uname, gname.
type PyMember = (String, String, u32, u64, u64, u64, String, String, String);

#[test]
fn python_tarfile_reads_every_layer() {
    if !require_tool("python3") {
        return;
    }
    let s = sample();
    let paths: Vec<String> = s.layers.iter().map(|l| s.store.path(&l.digest).display().to_string()).collect();
    let mut args = vec!["-c", PYTHON_LIST_LAYERS];
    args.extend(paths.iter().map(String::as_str));
    let listing: Vec<Vec<PyMember>> = serde_json::from_str(&run("python3", &args)).unwrap();

    let base = &listing[0];
    let names: Vec<&str> = base.iter().map(|m| m.0.as_str()).collect();
    let mut want: Vec<&str> =
        s.expected.iter().map(|e| e.0.as_str()).filter(|p| *p != "opt/app/VERSION").collect();
    want.sort();
    assert_eq!(names, want);
    for (name, kind, mode, uid, gid, mtime, link, uname, gname) in base {
        let (_, expect, want_mode, want_uid, want_gid) = s.expected.iter().find(|e| &e.0 == name).unwrap();
        let want_kind = match expect {
            Expect::Dir => "5",
            Expect::Symlink(_) => "2",
            Expect::File(_) if name == "opt/app/run2" => "1",
            Expect::File(_) => "0",
        };
        assert_eq!(kind, want_kind, "{name}");
        assert_eq!((mode, uid, gid, mtime), (want_mode, want_uid, want_gid, &MTIME), "{name}");
        assert_eq!((uname.as_str(), gname.as_str()), ("", ""), "{name}");
        match expect {
            Expect::Symlink(target) => assert_eq!(link, target, "{name}"),
            Expect::File(_) if name == "opt/app/run2" => assert_eq!(link, "opt/app/run.sh"),
            _ => assert_eq!(link, "", "{name}"),
        }
    }
    assert_eq!(
        listing[1].iter().map(|m| m.0.as_str()).collect::<Vec<_>>(),
        ["opt", "opt/app", "opt/app/VERSION"]
    );
}

#[test]
fn skopeo_inspects_and_copies_the_archive_as_oci_and_as_docker() {
    if !require_tool("skopeo") {
        return;
    }
    let s = sample();
    let archive = s.dir.path().join("image.tar");
    export_archive(&s.store, &s.image.manifest_digest, &["forge/sample:1.0".into()], &archive).unwrap();
    let archive = archive.display().to_string();

    let inspect: serde_json::Value =
        serde_json::from_str(&run("skopeo", &["inspect", &format!("oci-archive:{archive}")])).unwrap();
    assert_eq!(inspect["Digest"], s.image.manifest_digest.to_string());
    assert_eq!(inspect["Architecture"], "amd64");
    assert_eq!(inspect["Os"], "linux");
    let layers: Vec<String> = s.layers.iter().map(|l| l.digest.to_string()).collect();
    assert_eq!(inspect["Layers"], serde_json::json!(layers));
    assert_eq!(inspect["Labels"]["org.opencontainers.image.title"], "sample");

    // `skopeo copy` verifies every blob against its digest.
    let oci = s.dir.path().join("copied");
    run(
        "skopeo",
        &[
            "--insecure-policy",
            "copy",
            &format!("oci-archive:{archive}"),
            &format!("oci:{}:copied", oci.display()),
        ],
    );
    let store = BlobStore::open_or_create(s.dir.path().join("reimported")).unwrap();
    let copied = import(&oci, Some("copied"), &store).unwrap();
    assert_eq!(copied.manifest_digest, s.image.manifest_digest);
    validate::image(&store, &copied.manifest_digest).unwrap();

    // The same file read as a docker-archive (`manifest.json`): skopeo
    // recomputes the diff IDs of the gzip layers from the config.
    let from_docker = s.dir.path().join("from-docker");
    run(
        "skopeo",
        &[
            "--insecure-policy",
            "copy",
            &format!("docker-archive:{archive}"),
            &format!("oci:{}:docker", from_docker.display()),
        ],
    );
    let image = import(&from_docker, Some("docker"), &store).unwrap();
    validate::image(&store, &image.manifest_digest).unwrap();
    assert_eq!(image.diff_ids().unwrap(), s.image.diff_ids().unwrap());
}

#[test]
fn umoci_unpacks_exactly_what_we_wrote() {
    if !require_tool("umoci") {
        return;
    }
    let s = sample();
    s.store.set_ref("sample", &s.image.manifest_descriptor()).unwrap();
    let rootfs = umoci_unpack(s.store.root(), "sample", s.dir.path());
    let bundle = s.dir.path().join("bundle");
    let root = is_root();
    let mut found = BTreeSet::new();
    walk(&rootfs, &rootfs, &mut found);
    let expected: BTreeSet<String> = s.expected.iter().map(|e| e.0.clone()).collect();
    assert_eq!(found, expected);
    for (path, expect, mode, uid, gid) in &s.expected {
        let full = rootfs.join(path);
        let meta = fs::symlink_metadata(&full).unwrap();
        match expect {
            Expect::Dir => assert!(meta.is_dir(), "{path}"),
            Expect::File(content) => {
                assert!(meta.is_file(), "{path}");
                assert_eq!(&fs::read(&full).unwrap(), content, "{path}");
                assert_eq!(meta.mtime() as u64, MTIME, "{path}");
            }
            Expect::Symlink(target) => {
                assert!(meta.file_type().is_symlink(), "{path}");
                assert_eq!(fs::read_link(&full).unwrap().display().to_string(), *target, "{path}");
            }
        }
        if !meta.file_type().is_symlink() {
            assert_eq!(meta.permissions().mode() & 0o7777, *mode, "{path}");
        }
        if root {
            assert_eq!((u64::from(meta.uid()), u64::from(meta.gid())), (*uid, *gid), "{path}");
        }
    }
    let ino = |p: &str| fs::metadata(rootfs.join(p)).unwrap().ino();
    assert_eq!(ino("opt/app/run.sh"), ino("opt/app/run2"), "hardlink");

    let config: serde_json::Value =
        serde_json::from_slice(&fs::read(bundle.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["process"]["cwd"], "/opt/app");
    assert_eq!(config["process"]["args"], serde_json::json!(["/opt/app/run.sh"]));
}

fn walk(dir: &Path, root: &Path, out: &mut BTreeSet<String>) {
    for entry in fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let path = entry.path();
        out.insert(path.strip_prefix(root).unwrap().to_string_lossy().into_owned());
        if entry.file_type().unwrap().is_dir() {
            walk(&path, root, out);
        }
    }
}
