//! Integration tests of forge-sandbox: images built with forge-oci's own API
//! (and hand-made hostile tars), unpacked and checked file by file, run
//! specs worked out from configs, and a real run under bubblewrap.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use forge_oci::image::{new_config, write_image};
use forge_oci::oci_spec::image::{Descriptor, MediaType};
use forge_oci::{
    descriptor, BlobStore, Digest, Entry, Image, LayerBuilder, LayerOptions, Node, RuntimeConfig, Tree,
};
use forge_sandbox::{
    bwrap_command, run_captured, unpack, unpack_cached, EntryError, Error, LayerKind, RootCache, RunOptions,
    RunSpec,
};
use forge_testkit::{raw_tar, rootfs_listing, RawEntry};

const MTIME: u64 = 1_600_000_000;

fn store() -> (tempfile::TempDir, BlobStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open_or_create(dir.path().join("store")).unwrap();
    (dir, store)
}

/// An image of layers built with `LayerBuilder`.
fn image(store: &BlobStore, layers: Vec<Vec<Entry>>, runtime: &RuntimeConfig) -> Image {
    let mut descs = Vec::new();
    let mut diff_ids = Vec::new();
    for entries in layers {
        let mut builder = LayerBuilder::new(store, LayerOptions { mtime: MTIME }).unwrap();
        for entry in entries {
            builder.append(entry).unwrap();
        }
        let layer = builder.finish().unwrap();
        descs.push(layer.descriptor());
        diff_ids.push(layer.diff_id);
    }
    image_of(store, descs, diff_ids, runtime)
}

fn image_of(
    store: &BlobStore,
    descs: Vec<Descriptor>,
    diff_ids: Vec<Digest>,
    runtime: &RuntimeConfig,
) -> Image {
    let config = new_config(0, runtime, &diff_ids, Vec::new()).unwrap();
    write_image(store, &config, &descs, &BTreeMap::new()).unwrap()
}

/// One entry of a hand-made tar: any name and link, as an attacker writes them.
enum Raw<'a> {
    File(&'a str, &'a [u8]),
    Dir(&'a str),
    Symlink(&'a str, &'a str),
    Hardlink(&'a str, &'a str),
}

/// An uncompressed layer of raw entries, stored; returns its descriptor
/// (its diff ID is its digest).
fn raw_layer(store: &BlobStore, entries: &[Raw<'_>]) -> (Descriptor, Digest) {
    let entries: Vec<RawEntry<'_>> = entries
        .iter()
        .map(|entry| match *entry {
            Raw::File(name, data) => (name, tar::EntryType::Regular, "", data),
            Raw::Dir(name) => (name, tar::EntryType::Directory, "", &b""[..]),
            Raw::Symlink(name, target) => (name, tar::EntryType::Symlink, target, &b""[..]),
            Raw::Hardlink(name, target) => (name, tar::EntryType::Link, target, &b""[..]),
        })
        .collect();
    let (digest, size) = store.put_bytes(&raw_tar(&entries, MTIME)).unwrap();
    (descriptor(MediaType::ImageLayer, &digest, size), digest)
}

fn raw_image(store: &BlobStore, entries: &[Raw<'_>]) -> Image {
    let (desc, diff_id) = raw_layer(store, entries);
    image_of(store, vec![desc], vec![diff_id], &RuntimeConfig::default())
}

/// `TYPE MODE PATH [-> TARGET | = CONTENT]`, one line per entry under `root`.
fn tree(root: &Path) -> String {
    rootfs_listing(root).join("\n")
}

fn running_as_root() -> bool {
    let dir = tempfile::tempdir().unwrap();
    fs::metadata(dir.path()).unwrap().uid() == 0
}

#[test]
fn layers_are_applied_with_whiteouts_and_opaque_directories() {
    let (dir, store) = store();
    let layer1 = vec![
        Entry::dir("bin", 0o755),
        Entry::bytes("bin/tool", 0o4755, "tool"),
        Entry::hardlink("bin/tool-link", 0o4755, "bin/tool"),
        Entry::dir("etc", 0o755),
        Entry::bytes("etc/config", 0o644, "v1"),
        Entry::bytes("etc/gone", 0o600, "x"),
        Entry::symlink("etc/keep", "config"),
        Entry::bytes("etc/owned", 0o640, "mine").owned_by(1000, 1001),
        Entry::dir("gone-dir", 0o755),
        Entry::bytes("gone-dir/f", 0o644, "f"),
        Entry::symlink("lib", "usr/lib"),
        Entry::dir("opaque", 0o750),
        Entry::bytes("opaque/old", 0o644, "old"),
        Entry::dir("opaque/sub", 0o755),
        Entry::bytes("opaque/sub/deep", 0o644, "deep"),
        Entry::dir("ro", 0o555),
        Entry::bytes("ro/file", 0o444, "ro"),
        Entry::dir("shared", 0o1777),
        Entry::dir("usr", 0o755),
        Entry::dir("usr/lib", 0o755),
    ];
    // The upper layer as a `Tree` writes whiteouts and opaque directories.
    let mut upper = Tree::new();
    upper.whiteout("gone-dir");
    upper.insert("etc", Node::dir(0o755));
    upper.whiteout("etc/gone");
    upper.insert("etc/config", Node::bytes(0o644, "v2"));
    upper.insert("opaque", Node::dir(0o700));
    upper.opaque("opaque");
    upper.insert("opaque/new", Node::bytes(0o644, "new"));
    upper.insert("ro", Node::dir(0o555));
    upper.insert("ro/added", Node::bytes(0o644, "added"));
    let layer2 =
        upper.entries().map(|(path, node)| Entry { path: path.to_owned(), node: node.clone() }).collect();
    let image = image(&store, vec![layer1, layer2], &RuntimeConfig::default());
    let dest = dir.path().join("out/rootfs");
    unpack(&store, &image, &dest).unwrap();

    assert_eq!(
        tree(&dest),
        "\
d 0755 bin
f 4755 bin/tool = tool
f 4755 bin/tool-link = tool
d 0755 etc
f 0644 etc/config = v2
l etc/keep -> config
f 0640 etc/owned = mine
l lib -> usr/lib
d 0700 opaque
f 0644 opaque/new = new
d 0555 ro
f 0644 ro/added = added
f 0444 ro/file = ro
d 1777 shared
d 0755 usr
d 0755 usr/lib"
    );
    let tool = fs::metadata(dest.join("bin/tool")).unwrap();
    assert_eq!(tool.ino(), fs::metadata(dest.join("bin/tool-link")).unwrap().ino());
    assert_eq!(tool.mtime() as u64, MTIME);
    assert_eq!(fs::metadata(dest.join("ro")).unwrap().mtime() as u64, MTIME);
    assert_eq!(fs::metadata(&dest).unwrap().permissions().mode() & 0o7777, 0o755);
    let owned = fs::metadata(dest.join("etc/owned")).unwrap();
    if running_as_root() {
        assert_eq!((owned.uid(), owned.gid()), (1000, 1001));
    }
    // Nothing but the result is left next to it.
    let siblings: Vec<_> =
        fs::read_dir(dir.path().join("out")).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(siblings, ["rootfs"]);

    let err = unpack(&store, &image, &dest).unwrap_err();
    assert!(matches!(err, Error::DestinationExists { .. }), "{err}");
}

#[test]
fn unpack_cached_reuses_a_complete_rootfs() {
    let (dir, store) = store();
    let image = image(&store, vec![vec![Entry::bytes("hello", 0o644, "hi")]], &RuntimeConfig::default());
    let cache = dir.path().join("cache");
    let first = unpack_cached(&store, &image, &cache).unwrap();
    assert_eq!(first, cache.join(image.manifest_digest.hex()).join("rootfs"));
    assert_eq!(fs::read_to_string(first.join("hello")).unwrap(), "hi");
    fs::write(first.join("marker"), "kept").unwrap();
    let second = unpack_cached(&store, &image, &cache).unwrap();
    assert_eq!(second, first);
    assert_eq!(fs::read_to_string(second.join("marker")).unwrap(), "kept");
}

/// Unpacks a hostile layer, expecting a refusal that leaves neither the
/// destination nor a temporary directory nor anything next to them.
#[track_caller]
fn refused(entries: &[Raw<'_>]) -> EntryError {
    let (dir, store) = store();
    let image = raw_image(&store, entries);
    let dest = dir.path().join("a/b/rootfs");
    let err = unpack(&store, &image, &dest).unwrap_err();
    assert!(!dest.exists());
    assert_eq!(fs::read_dir(dir.path().join("a/b")).unwrap().count(), 0, "temporary files left behind");
    let names: BTreeSet<_> = fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, ["a", "store"].into_iter().map(Into::into).collect(), "something was written outside");
    match err {
        Error::Entry { source, .. } => source,
        other => panic!("expected an entry error, got {other}"),
    }
}

#[test]
fn hostile_entries_are_refused() {
    let dotdot = refused(&[Raw::File("../../../escape", b"x")]);
    assert!(matches!(dotdot, EntryError::UnsafePath { .. }), "{dotdot}");
    let nested = refused(&[Raw::Dir("ok/"), Raw::File("ok/../../../escape", b"x")]);
    assert!(matches!(nested, EntryError::UnsafePath { .. }), "{nested}");

    let victim = tempfile::tempdir().unwrap();
    let absolute = victim.path().join("abs");
    let err = refused(&[Raw::File(absolute.to_str().unwrap(), b"x")]);
    assert!(matches!(err, EntryError::UnsafePath { .. }), "{err}");
    assert!(!absolute.exists());

    let escaping =
        refused(&[Raw::Symlink("evil", "../../../../../../../.."), Raw::File("evil/escape", b"x")]);
    assert!(matches!(escaping, EntryError::EscapingSymlink { .. }), "{escaping}");
    let deeper = refused(&[
        Raw::Dir("d/"),
        Raw::Symlink("d/up", ".."),
        Raw::Symlink("d/evil", "up/.."),
        Raw::File("d/evil/escape", b"x"),
    ]);
    assert!(matches!(deeper, EntryError::EscapingSymlink { .. }), "{deeper}");

    for whiteout in [".wh.", "d/.wh..", "d/.wh..."] {
        let err = refused(&[Raw::Dir("d/"), Raw::File(whiteout, b"")]);
        assert!(matches!(err, EntryError::UnsafePath { .. }), "{whiteout}: {err}");
    }

    let hardlink = refused(&[Raw::Hardlink("passwd", "../../../../../../etc/passwd")]);
    assert!(matches!(hardlink, EntryError::UnsafePath { .. }), "{hardlink}");
    let hardlink = refused(&[Raw::Hardlink("passwd", "/etc/passwd")]);
    assert!(matches!(hardlink, EntryError::UnsafePath { .. }), "{hardlink}");
    // Inside the root, `/etc-of-host` does not exist.
    let through = refused(&[Raw::Symlink("etc", "/etc-of-host"), Raw::Hardlink("passwd", "etc/passwd")]);
    assert!(matches!(through, EntryError::BadHardlink { .. }), "{through}");
}

#[test]
fn absolute_symlinks_are_followed_inside_the_root() {
    let (dir, store) = store();
    let victim = tempfile::tempdir().unwrap();
    let target = victim.path().to_str().unwrap();
    let entries = [
        Raw::Symlink("abs", target),
        Raw::File("abs/pwned", b"inside"),
        Raw::Symlink("etc", "/real/etc"),
        Raw::File("etc/hosts", b"mine"),
        Raw::Symlink("loop", "/loop"),
        Raw::File("loop/x", b"never"),
    ];
    let image = raw_image(&store, &entries);
    let dest = dir.path().join("rootfs");
    let err = unpack(&store, &image, &dest).unwrap_err();
    assert!(matches!(err, Error::Entry { source: EntryError::SymlinkLoop, .. }), "{err}");
    let image = raw_image(&store, &entries[..4]);
    unpack(&store, &image, &dest).unwrap();
    assert_eq!(fs::read_dir(victim.path()).unwrap().count(), 0);
    let inside = dest.join(target.trim_start_matches('/')).join("pwned");
    assert_eq!(fs::read_to_string(inside).unwrap(), "inside");
    assert_eq!(fs::read_to_string(dest.join("real/etc/hosts")).unwrap(), "mine");
    assert!(fs::symlink_metadata(dest.join("etc")).unwrap().file_type().is_symlink());
}

#[test]
fn a_layer_that_does_not_match_its_diff_id_is_refused() {
    let (dir, store) = store();
    let (desc, _) = raw_layer(&store, &[Raw::File("a", b"a")]);
    let image = image_of(&store, vec![desc], vec![Digest::of(b"something else")], &RuntimeConfig::default());
    let dest = dir.path().join("rootfs");
    let err = unpack(&store, &image, &dest).unwrap_err();
    assert!(matches!(err, Error::DiffIdMismatch { .. }), "{err}");
    assert!(!dest.exists());
}

#[test]
fn a_corrupt_blob_is_refused() {
    let (dir, store) = store();
    let image = image(&store, vec![vec![Entry::bytes("a", 0o644, "content")]], &RuntimeConfig::default());
    let layer = Digest::from_descriptor(&image.manifest.layers()[0]).unwrap();
    // Same gzip stream with a byte of garbage after it.
    let path = store.path(&layer);
    let mut bytes = fs::read(&path).unwrap();
    bytes.push(0);
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    fs::write(&path, bytes).unwrap();
    let err = unpack(&store, &image, &dir.path().join("rootfs")).unwrap_err();
    assert!(matches!(err, Error::ReadLayer { .. }), "{err}");
    assert!(!dir.path().join("rootfs").exists());
}

fn spec_rootfs() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("etc")).unwrap();
    fs::write(
        dir.path().join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n",
    )
    .unwrap();
    fs::write(dir.path().join("etc/group"), "root:x:0:\nstaff:x:50:app\napp:x:1000:\n").unwrap();
    dir
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn argv_is_entrypoint_then_args_or_cmd() {
    let rootfs = spec_rootfs();
    let argv = |entrypoint: Option<&[&str]>, cmd: Option<&[&str]>, args: &[&str]| {
        let config = RuntimeConfig {
            entrypoint: entrypoint.map(strings),
            cmd: cmd.map(strings),
            ..RuntimeConfig::default()
        };
        RunSpec::from_image(&config, &strings(args), rootfs.path()).map(|spec| spec.argv)
    };
    assert_eq!(
        argv(Some(&["python3", "-m", "app"]), Some(&["--serve"]), &[]).unwrap(),
        ["python3", "-m", "app", "--serve"]
    );
    assert_eq!(
        argv(Some(&["python3", "-m", "app"]), Some(&["--serve"]), &["--check", "x"]).unwrap(),
        ["python3", "-m", "app", "--check", "x"]
    );
    assert_eq!(argv(None, Some(&["bash"]), &[]).unwrap(), ["bash"]);
    assert_eq!(argv(None, Some(&["bash"]), &["sh", "-c", "true"]).unwrap(), ["sh", "-c", "true"]);
    assert_eq!(argv(Some(&["tini"]), None, &[]).unwrap(), ["tini"]);
    let err = argv(None, None, &[]).unwrap_err();
    assert!(matches!(err, Error::NoCommand));
    assert_eq!(err.to_string(), "the image has no ENTRYPOINT or CMD; pass a command after --");
    assert!(matches!(argv(Some(&[]), Some(&[]), &[]), Err(Error::NoCommand)));
}

#[test]
fn environment_and_working_directory() {
    let rootfs = spec_rootfs();
    let mut config = RuntimeConfig { cmd: Some(strings(&["x"])), ..RuntimeConfig::default() };
    config.env = strings(&["LANG=C.UTF-8", "A=1", "EMPTY=", "A=2=3"]);
    let spec = RunSpec::from_image(&config, &[], rootfs.path()).unwrap();
    let env: Vec<String> = spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    assert_eq!(
        env,
        [
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "LANG=C.UTF-8",
            "A=2=3",
            "EMPTY=",
            "HOME=/root"
        ]
    );
    assert_eq!(spec.workdir, "/");
    assert_eq!((spec.uid, spec.gid), (0, 0));

    config.env = strings(&["PATH=/opt/bin", "HOME=/data"]);
    config.working_dir = Some("/app".into());
    config.user = Some("app".into());
    let spec = RunSpec::from_image(&config, &[], rootfs.path()).unwrap();
    assert_eq!(spec.env, [("PATH".into(), "/opt/bin".into()), ("HOME".into(), "/data".into())]);
    assert_eq!(spec.workdir, "/app");

    config.env.clear();
    let spec = RunSpec::from_image(&config, &[], rootfs.path()).unwrap();
    assert_eq!(spec.env[1], ("HOME".into(), "/home/app".into()));
}

#[test]
fn users_are_looked_up_in_the_image() {
    let rootfs = spec_rootfs();
    let user = |user: &str| {
        let config = RuntimeConfig {
            cmd: Some(strings(&["x"])),
            user: Some(user.to_owned()),
            ..RuntimeConfig::default()
        };
        RunSpec::from_image(&config, &[], rootfs.path()).map(|spec| (spec.uid, spec.gid))
    };
    assert_eq!(user("").unwrap(), (0, 0));
    assert_eq!(user("root").unwrap(), (0, 0));
    assert_eq!(user("app").unwrap(), (1000, 1000));
    assert_eq!(user("app:staff").unwrap(), (1000, 50));
    assert_eq!(user("app:7").unwrap(), (1000, 7));
    assert_eq!(user("1000").unwrap(), (1000, 1000));
    assert_eq!(user("1234").unwrap(), (1234, 0));
    assert_eq!(user("1234:staff").unwrap(), (1234, 50));
    let err = user("nobody").unwrap_err();
    assert_eq!(err.to_string(), "unknown user `nobody` (user `nobody`): not in the image's /etc/passwd");
    let err = user("app:wheel").unwrap_err();
    assert_eq!(err.to_string(), "unknown group `wheel` (user `app:wheel`): not in the image's /etc/group");
    assert!(matches!(user(":staff"), Err(Error::InvalidUser { .. })));
    assert!(matches!(user("app:"), Err(Error::InvalidUser { .. })));

    // No passwd at all: numbers still work, names cannot.
    let empty = tempfile::tempdir().unwrap();
    let config =
        RuntimeConfig { cmd: Some(strings(&["x"])), user: Some("app".into()), ..RuntimeConfig::default() };
    assert!(matches!(RunSpec::from_image(&config, &[], empty.path()), Err(Error::UnknownUser { .. })));
}

#[test]
fn bwrap_flags() {
    let spec = RunSpec {
        argv: strings(&["sh", "-c", "echo hi"]),
        env: vec![("PATH".into(), "/bin".into())],
        workdir: "/app".into(),
        uid: 1000,
        gid: 1000,
    };
    let rootfs = tempfile::tempdir().unwrap();
    let args = |spec: &RunSpec, opts: &RunOptions| {
        let command = bwrap_command(rootfs.path(), spec, opts);
        command.get_args().map(|a| a.to_str().unwrap().to_owned()).collect::<Vec<_>>().join(" ")
    };
    let root = rootfs.path().display();
    assert_eq!(
        args(&spec, &RunOptions::default()),
        format!(
            "--bind {root} / --proc /proc --dev /dev --tmpfs /tmp --unshare-all --unshare-user --uid 1000 \
             --gid 1000 --die-with-parent --new-session --chdir /app --clearenv --setenv PATH /bin -- sh -c echo hi"
        )
    );
    fs::create_dir(rootfs.path().join("tmp")).unwrap();
    let as_root = RunSpec { uid: 0, gid: 0, ..spec };
    assert_eq!(
        args(&as_root, &RunOptions { network: true, ..RunOptions::default() }),
        format!(
            "--bind {root} / --proc /proc --dev /dev --unshare-all --share-net --unshare-user --uid 0 --gid 0 \
             --die-with-parent --new-session --chdir /app --clearenv --setenv PATH /bin -- sh -c echo hi"
        )
    );
}

#[test]
fn a_missing_bwrap_is_reported() {
    let rootfs = tempfile::tempdir().unwrap();
    let spec = RunSpec { argv: strings(&["true"]), env: Vec::new(), workdir: "/".into(), uid: 0, gid: 0 };
    let opts = RunOptions { bwrap: "/nonexistent/bwrap".into(), ..RunOptions::default() };
    let err = run_captured(rootfs.path(), &spec, &opts).unwrap_err();
    assert!(matches!(err, Error::BwrapMissing { .. }), "{err}");
    assert!(err.to_string().contains("install bubblewrap"), "{err}");
}

/// An image of the host's `/bin/sh` with the libraries `ldd` lists (at the
/// paths it lists them), a passwd file and a script.
fn shell_image(store: &BlobStore, runtime: &RuntimeConfig) -> Image {
    let mut files: BTreeMap<String, PathBuf> = BTreeMap::new();
    files.insert("bin/sh".into(), fs::canonicalize("/bin/sh").unwrap());
    let ldd = forge_testkit::run("ldd", &["/bin/sh"]);
    for path in ldd.split_whitespace().filter(|word| word.starts_with('/')) {
        files.insert(path.trim_start_matches('/').to_owned(), fs::canonicalize(path).unwrap());
    }
    let script = "#!/bin/sh\n\
        echo \"hello from $GREETING in $(pwd) with args: $*\"\n\
        while read key value rest; do case $key in Uid:|Gid:) echo \"$key $value\";; esac; done < /proc/self/status\n\
        echo \"home=$HOME path=$PATH\"\n\
        echo scratch > /tmp/scratch && echo tmp-ok\n\
        echo to-stderr >&2\n\
        exit 3\n";
    let mut entries: BTreeMap<String, Entry> = BTreeMap::new();
    for (path, source) in &files {
        for ancestor in Path::new(path).ancestors().skip(1).filter(|p| !p.as_os_str().is_empty()) {
            let dir = ancestor.to_str().unwrap().to_owned();
            entries.insert(dir.clone(), Entry::dir(dir, 0o755));
        }
        let size = fs::metadata(source).unwrap().len();
        entries.insert(path.clone(), Entry::file(path.clone(), 0o755, size, source.clone()));
    }
    entries.insert("app".into(), Entry::dir("app", 0o755));
    entries.insert("app/run.sh".into(), Entry::bytes("app/run.sh", 0o755, script));
    entries.insert("etc".into(), Entry::dir("etc", 0o755));
    entries.insert(
        "etc/passwd".into(),
        Entry::bytes("etc/passwd", 0o644, "root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n"),
    );
    // BTreeMap<String> order is byte order, as the layer builder wants.
    image(store, vec![entries.into_values().collect()], runtime)
}

#[test]
fn runs_the_entry_point_under_bwrap() {
    if !forge_testkit::require_tool("bwrap") {
        return;
    }
    let (dir, store) = store();
    let mut runtime = RuntimeConfig {
        entrypoint: Some(strings(&["/bin/sh", "/app/run.sh"])),
        cmd: Some(strings(&["default-arg"])),
        working_dir: Some("/app".into()),
        user: Some("app".into()),
        ..RuntimeConfig::default()
    };
    runtime.set_env("GREETING", "forge");
    let image = shell_image(&store, &runtime);
    let rootfs = unpack_cached(&store, &image, &dir.path().join("cache")).unwrap();
    let spec = RunSpec::from_image(&runtime, &strings(&["one", "two words"]), &rootfs).unwrap();
    let output = run_captured(&rootfs, &spec, &RunOptions::default()).unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert_eq!(
        stdout,
        "hello from forge in /app with args: one two words\n\
         Uid: 1000\n\
         Gid: 1000\n\
         home=/home/app path=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n\
         tmp-ok\n"
    );
    assert_eq!(stderr, "to-stderr\n");
    // The image has no /tmp: the run got a tmpfs, not the cached rootfs.
    assert!(!rootfs.join("tmp/scratch").exists());

    // Without arguments, CMD; as root.
    runtime.user = None;
    let spec = RunSpec::from_image(&runtime, &[], &rootfs).unwrap();
    let output = run_captured(&rootfs, &spec, &RunOptions::default()).unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.starts_with("hello from forge in /app with args: default-arg\nUid: 0\nGid: 0\nhome=/root "),
        "{stdout}"
    );
}

#[test]
fn each_run_writes_to_its_own_layer() {
    if !forge_testkit::require_tool("bwrap") {
        return;
    }
    let (dir, store) = store();
    let runtime = RuntimeConfig { working_dir: Some("/made/by/run".into()), ..RuntimeConfig::default() };
    let image = shell_image(&store, &runtime);
    let cache = RootCache::new(dir.path().join("roots"));
    let root = cache.root(&store, &image, "shell:1").unwrap();
    let before = tree(&root);
    let script = |s: &str| RunSpec {
        argv: strings(&["/bin/sh", "-c", s]),
        env: vec![("PATH".into(), "/bin".into())],
        workdir: "/made/by/run".into(),
        uid: 0,
        gid: 0,
    };
    for kind in [LayerKind::Overlay, LayerKind::Copy] {
        let layer = cache.layer(&root, kind).unwrap();
        if let Some(reason) = layer.fallback_reason() {
            eprintln!("overlay unavailable here, a copy instead: {reason}");
        }
        // A new file, files changed in place (appended, truncated), a directory made.
        let write = "echo new > /app/new && echo more >> /app/run.sh && : > /etc/passwd && pwd";
        let out = layer.run_captured(&script(write), &RunOptions::default()).unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "/made/by/run\n", "{kind:?}: {out:?}");
        drop(layer);
        let layer = cache.layer(&root, kind).unwrap();
        let check = "test -e /app/new || echo no-new; read -r line < /etc/passwd && echo passwd; \
                     while read -r line; do last=$line; done < /app/run.sh; echo \"$last\"";
        let out = layer.run_captured(&script(check), &RunOptions::default()).unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "no-new\npasswd\nexit 3\n", "{kind:?}: {out:?}");
    }
    assert_eq!(tree(&root), before, "the cached root was written");
    assert_eq!(fs::read_dir(dir.path().join("roots/.runs")).unwrap().count(), 0, "run layers left behind");

    // A new build of the same image: the old root goes, unless a run uses it.
    let runtime = RuntimeConfig { working_dir: Some("/app".into()), ..RuntimeConfig::default() };
    let newer = shell_image(&store, &runtime);
    let newer_root = cache.root(&store, &newer, "shell:1").unwrap();
    let running = cache.layer(&root, LayerKind::Copy).unwrap();
    assert_eq!(cache.prune(&newer_root, "shell:1").unwrap(), 0);
    drop(running);
    assert_eq!(cache.prune(&newer_root, "other:1").unwrap(), 0);
    assert_eq!(cache.prune(&newer_root, "shell:1").unwrap(), 1);
    assert!(!root.exists() && newer_root.is_dir());
}

#[test]
fn temporaries_of_killed_runs_go_with_the_next_run() {
    let (dir, store) = store();
    let image = image(&store, vec![vec![Entry::bytes("hello", 0o644, "hi")]], &RuntimeConfig::default());
    let roots = dir.path().join("roots");
    let dead = forge_testkit::dead_pid();
    let unpacking = roots.join(image.manifest_digest.hex());
    let stale_unpack = unpacking.join(format!(".tmp-{dead}-unpack-x"));
    let live_unpack = unpacking.join(".tmp-1-unpack-x");
    let stale_run = roots.join(".runs").join(format!(".tmp-{dead}-run-x"));
    for d in [&stale_unpack, &live_unpack, &stale_run] {
        fs::create_dir_all(d.join("etc")).unwrap();
        fs::write(d.join("etc/passwd"), "x").unwrap();
    }
    fs::write(stale_run.join("lower"), "/somewhere").unwrap();

    let cache = RootCache::new(&roots);
    let root = cache.root(&store, &image, "t:1").unwrap();
    assert!(!stale_unpack.exists(), "the unpacking of a killed run stays");
    assert!(live_unpack.exists(), "the unpacking of a running process was removed");
    let layer = cache.layer(&root, LayerKind::Copy).unwrap();
    assert!(!stale_run.exists(), "the layer of a killed run stays");
    let runs: Vec<String> = fs::read_dir(roots.join(".runs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(runs.len(), 1);
    assert!(runs[0].starts_with(&format!(".tmp-{}-run-", std::process::id())), "{runs:?}");
    drop(layer);
    assert_eq!(fs::read_dir(roots.join(".runs")).unwrap().count(), 0);
}
