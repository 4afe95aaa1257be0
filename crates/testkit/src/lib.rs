//! Test helpers shared by the crates' test suites (a dev-dependency, but
//! for the bench's engine starters and the fuzzer's and bench's generator).
//!
//! Every image we write is checked by tools we did not write. A test that
//! needs a tool calls [`require_tool`]: under `CI=true` a missing tool fails
//! the test; elsewhere the test is skipped with a visible message.
//! `cargo xtask test` installs the tools on a fresh machine.

pub mod deb;
pub mod monorepo;
pub mod registry;
pub mod rng;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Whether this is a CI run (`CI=true`), where nothing a test needs may be
/// missing and nothing unreachable is skipped.
pub fn ci() -> bool {
    std::env::var("CI").as_deref() == Ok("true")
}

/// Whether a test can run: `true` when what it needs is `present`;
/// otherwise panics under `CI=true` and elsewhere prints `skipping:
/// {missing}` and returns `false`. `missing` says what is missing and how
/// to get it.
pub fn prerequisite(present: bool, missing: &str) -> bool {
    if present {
        return true;
    }
    assert!(!ci(), "{missing}, and CI=true requires it");
    eprintln!("skipping: {missing}");
    false
}

/// Whether `name` can be run. Panics under `CI=true` when it cannot.
pub fn require_tool(name: &str) -> bool {
    let found =
        Command::new(name).arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok();
    prerequisite(found, &format!("{name} is not installed (`cargo xtask test` installs it)"))
}

/// The pid of a process that has ended: what a temporary left by a killed
/// run is named after.
pub fn dead_pid() -> u32 {
    let mut child = Command::new("true").spawn().unwrap();
    child.wait().unwrap();
    child.id()
}

/// The cases of a data-driven test file: each `//- NAME` line starts one,
/// whose text is every line up to the next (newlines kept). Before the
/// first case only blank lines and `//` comments may stand.
pub fn cases(text: &str) -> Vec<(String, String)> {
    let mut cases: Vec<(String, String)> = Vec::new();
    for line in text.split_inclusive('\n') {
        if let Some(name) = line.strip_prefix("//- ") {
            cases.push((name.trim().to_string(), String::new()));
        } else if let Some((_, body)) = cases.last_mut() {
            body.push_str(line);
        } else {
            assert!(
                line.trim().is_empty() || line.starts_with("//"),
                "text before the first `//- case`: {line}"
            );
        }
    }
    cases
}

/// The data-driven test of `dir/GROUP.txt`: each of its [`cases`] goes
/// through `run`, and `//- NAME` then what `run` gave, for every case in
/// order, must be `dir/GROUP.expected` (`UPDATE_EXPECT=1` rewrites it).
pub fn check_cases(dir: &Path, group: &str, run: impl Fn(&str) -> String) {
    let text = std::fs::read_to_string(dir.join(format!("{group}.txt")))
        .unwrap_or_else(|e| panic!("reading {}/{group}.txt: {e}", dir.display()));
    let mut out = String::new();
    for (name, case) in cases(&text) {
        out.push_str(&format!("//- {name}\n"));
        out.push_str(&run(&case));
    }
    expect_test::expect_file![dir.join(format!("{group}.expected"))].assert_eq(&out);
}

/// Runs `program args`, returns its stdout; panics with stderr on failure.
pub fn run(program: &str, args: &[&str]) -> String {
    let output =
        Command::new(program).args(args).output().unwrap_or_else(|e| panic!("running {program}: {e}"));
    assert!(
        output.status.success(),
        "{program} {args:?} failed with {}:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("utf-8 output")
}

/// Runs git in `dir` as a fixed author, without the user's global
/// configuration; returns its stdout, trimmed. Panics with stderr on failure.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .envs([
            ("GIT_AUTHOR_NAME", "t"),
            ("GIT_AUTHOR_EMAIL", "t@example.com"),
            ("GIT_COMMITTER_NAME", "t"),
            ("GIT_COMMITTER_EMAIL", "t@example.com"),
            ("GIT_CONFIG_GLOBAL", "/dev/null"),
        ])
        .output()
        .expect("running git");
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Python's strict `tarfile` over an image archive of ours: the outer tar,
/// its `index.json`, the manifest, every layer (gzip, every member read to
/// the end), and Docker's `manifest.json` pointing at existing blobs with
/// matching diff IDs. Returns one line per layer member: `TYPE MODE UID:GID
/// PATH [-> LINK]`, layers separated by `--`.
pub fn python_check_archive(archive: &Path) -> String {
    const SCRIPT: &str = r#"
import hashlib, io, json, sys, tarfile
outer = tarfile.open(sys.argv[1], "r:")
names = outer.getnames()
def blob(d):
    return outer.extractfile("blobs/sha256/" + d.split(":", 1)[1]).read()
index = json.loads(outer.extractfile("index.json").read())
assert json.loads(outer.extractfile("oci-layout").read())["imageLayoutVersion"] == "1.0.0"
manifest_desc = index["manifests"][0]
data = blob(manifest_desc["digest"])
assert "sha256:" + hashlib.sha256(data).hexdigest() == manifest_desc["digest"]
manifest = json.loads(data)
config = json.loads(blob(manifest["config"]["digest"]))
docker = json.loads(outer.extractfile("manifest.json").read())
assert docker[0]["Config"] == "blobs/sha256/" + manifest["config"]["digest"].split(":")[1]
assert len(docker[0]["Layers"]) == len(manifest["layers"])
outer.extractfile("repositories").read()
kinds = {tarfile.REGTYPE: "f", tarfile.DIRTYPE: "d", tarfile.SYMTYPE: "l", tarfile.LNKTYPE: "h"}
for i, layer in enumerate(manifest["layers"]):
    raw = blob(layer["digest"])
    assert len(raw) == layer["size"], "size"
    assert "sha256:" + hashlib.sha256(raw).hexdigest() == layer["digest"], "digest"
    assert docker[0]["Layers"][i] in names
    inner = tarfile.open(fileobj=io.BytesIO(raw), mode="r:gz")
    plain = hashlib.sha256()
    import gzip
    plain.update(gzip.decompress(raw))
    assert "sha256:" + plain.hexdigest() == config["rootfs"]["diff_ids"][i], "diff_id"
    if i: print("--")
    for m in inner:
        if m.isfile():
            inner.extractfile(m).read()
        link = " -> " + m.linkname if m.linkname else ""
        print(f"{kinds.get(m.type, '?')} {m.mode:04o} {m.uid}:{m.gid} {m.mtime} {m.name}{link}")
"#;
    run("python3", &["-c", SCRIPT, archive.to_str().expect("utf-8 path")])
}

/// The `index.json` of an archive (a tar that is an OCI layout).
pub fn archive_index(archive: &Path) -> serde_json::Value {
    let file = std::fs::File::open(archive).expect("the archive");
    let mut tar = tar::Archive::new(file);
    for entry in tar.entries().expect("a tar") {
        let entry = entry.expect("a tar entry");
        if entry.path().expect("a path").as_os_str() == "index.json" {
            return serde_json::from_reader(entry).expect("index.json is JSON");
        }
    }
    panic!("{} has no index.json", archive.display())
}

/// skopeo's `oci-archive:` name of the image of `archive`: with its ref
/// name when `index.json` lists more than the image (the SBOM and
/// provenance that refer to it), since skopeo then wants one.
pub fn oci_archive(archive: &Path) -> String {
    let index = archive_index(archive);
    let manifests = index["manifests"].as_array().cloned().unwrap_or_default();
    let named = manifests.iter().find_map(|m| m["annotations"]["org.opencontainers.image.ref.name"].as_str());
    match named {
        Some(name) if manifests.len() > 1 => format!("oci-archive:{}:{name}", archive.display()),
        _ => format!("oci-archive:{}", archive.display()),
    }
}

/// `skopeo inspect` of the archive (JSON), then `skopeo copy` into a new
/// OCI layout (which verifies every digest); returns the inspect output and
/// the layout directory, tagged `checked`.
pub fn skopeo_check(archive: &Path, scratch: &Path) -> (serde_json::Value, PathBuf) {
    let source = oci_archive(archive);
    let inspect: serde_json::Value =
        serde_json::from_str(&run("skopeo", &["inspect", &source])).expect("inspect json");
    let layout = scratch.join("skopeo-layout");
    let dest = format!("oci:{}:checked", layout.display());
    run("skopeo", &["copy", "--quiet", &source, &dest]);
    (inspect, layout)
}

/// `umoci unpack` of `layout:tag` into `scratch/bundle` (`--rootless`
/// unless we are root); returns its rootfs.
pub fn umoci_unpack(layout: &Path, tag: &str, scratch: &Path) -> PathBuf {
    let bundle = scratch.join("bundle");
    let image = format!("{}:{tag}", layout.display());
    let mut args = vec!["unpack"];
    if !is_root() {
        args.push("--rootless");
    }
    args.extend(["--image", &image, bundle.to_str().expect("utf-8 path")]);
    run("umoci", &args);
    bundle.join("rootfs")
}

/// Whether this process runs as root (owners are applied only then).
pub fn is_root() -> bool {
    std::fs::metadata("/proc/self").map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0).unwrap_or(false)
}

/// A Docker engine of our own, started for a test and stopped on drop.
#[derive(Debug)]
pub struct Dockerd {
    child: std::process::Child,
    socket: PathBuf,
    _dir: tempfile::TempDir,
}

impl Dockerd {
    /// Starts `dockerd` with its state in a temporary directory and no
    /// networking (the flags `../shared/docs/machine-notes.md` gives), and
    /// waits for it to answer. `None`, with a visible message, when this
    /// machine does not let an engine start (the tool itself is required:
    /// see [`require_tool`]).
    pub fn start() -> Option<Dockerd> {
        if !require_tool("dockerd") || !require_tool("docker") {
            return None;
        }
        let dir = tempfile::tempdir().ok()?;
        let socket = dir.path().join("docker.sock");
        let log = std::fs::File::create(dir.path().join("dockerd.log")).ok()?;
        let child = Command::new("dockerd")
            .arg("--data-root")
            .arg(dir.path().join("data"))
            .arg("--exec-root")
            .arg(dir.path().join("exec"))
            .arg("--pidfile")
            .arg(dir.path().join("docker.pid"))
            .arg("-H")
            .arg(format!("unix://{}", socket.display()))
            .args([
                "--bridge=none",
                "--iptables=false",
                "--ip6tables=false",
                "--ip-forward=false",
                "--ip-masq=false",
            ])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .ok()?;
        let mut engine = Dockerd { child, socket, _dir: dir };
        for _ in 0..100 {
            if engine.docker(&["version"]).is_ok() {
                return Some(engine);
            }
            if let Ok(Some(_)) = engine.child.try_wait() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        let log = std::fs::read_to_string(engine._dir.path().join("dockerd.log")).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(5).collect();
        eprintln!("skipping: a Docker engine cannot start on this machine: {}", tail.join(" | "));
        None
    }

    /// The engine's address, for `DOCKER_HOST`.
    pub fn host(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    /// Runs `docker ARGS` against this engine.
    pub fn docker(&self, args: &[&str]) -> Result<String, String> {
        let output = Command::new("docker")
            .args(args)
            .env("DOCKER_HOST", self.host())
            .output()
            .map_err(|e| e.to_string())?;
        if output.status.success() {
            Ok(String::from_utf8_lossy(&output.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&output.stderr).into_owned())
        }
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        // SIGTERM lets dockerd unmount and clean up; then wait for it.
        let _ = Command::new("kill").arg(self.child.id().to_string()).status();
        let mut stopped = false;
        for _ in 0..50 {
            if let Ok(Some(_)) = self.child.try_wait() {
                stopped = true;
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        if !stopped {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        // dockerd leaves its default network namespace mounted in its exec
        // root, which would keep the temporary directory (and the images
        // in it) from being removed.
        let netns = self._dir.path().join("exec/netns/default");
        if netns.exists() {
            let _ = Command::new("umount").arg(&netns).stderr(Stdio::null()).status();
        }
    }
}

/// One entry of a hand-made tar: name, type, link target, content.
pub type RawEntry<'a> = (&'a str, tar::EntryType, &'a str, &'a [u8]);

/// A tar of `entries` with their names and link targets written straight
/// into the header fields, as an attacker (or an odd tool) writes them:
/// `..`, absolute paths, no parents, whiteouts of any kind. Directories are
/// 0755, everything else 0644, owned by 0:0, with `mtime`.
pub fn raw_tar(entries: &[RawEntry<'_>], mtime: u64) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for &(name, kind, link, data) in entries {
        let mut header = tar::Header::new_gnu();
        // `set_path` would refuse what these tests are about.
        header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        header.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
        header.set_entry_type(kind);
        header.set_mode(if kind.is_dir() { 0o755 } else { 0o644 });
        header.set_size(data.len() as u64);
        header.set_mtime(mtime);
        header.set_uid(0);
        header.set_gid(0);
        header.set_cksum();
        builder.append(&header, data).expect("appending to a Vec");
    }
    builder.into_inner().expect("finishing a Vec")
}

/// Every entry below `root`, one line each in path order:
/// `d MODE PATH`, `f MODE PATH = CONTENT` (invalid UTF-8 replaced) or
/// `l PATH -> TARGET`, modes in octal, so that a test can compare an
/// unpacked root file system with what it expects in one assertion.
pub fn rootfs_listing(root: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        use std::os::unix::fs::PermissionsExt;
        let mut children: Vec<PathBuf> =
            std::fs::read_dir(dir).expect("listing").map(|e| e.expect("listing").path()).collect();
        children.sort();
        for path in children {
            let meta = std::fs::symlink_metadata(&path).expect("reading metadata");
            let rel = path.strip_prefix(root).expect("below the root").display().to_string();
            let mode = meta.permissions().mode() & 0o7777;
            if meta.file_type().is_symlink() {
                out.push(format!(
                    "l {rel} -> {}",
                    std::fs::read_link(&path).expect("reading a link").display()
                ));
            } else if meta.is_dir() {
                out.push(format!("d {mode:04o} {rel}"));
                walk(root, &path, out);
            } else {
                let content = String::from_utf8_lossy(&std::fs::read(&path).expect("reading")).into_owned();
                out.push(format!("f {mode:04o} {rel} = {content}"));
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out
}

/// The regular files below `dir`, relative to it, sorted (what a test
/// that checks "nothing was left behind" or "these files were sent"
/// compares).
pub fn files_below(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).expect("listing") {
            let path = entry.expect("listing").path();
            let kind = std::fs::symlink_metadata(&path).expect("reading metadata").file_type();
            if kind.is_dir() {
                walk(root, &path, out);
            } else if kind.is_file() {
                out.push(path.strip_prefix(root).expect("below the root").to_string_lossy().into_owned());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// Copies the host's `programs` (looked up in `PATH`) into the root file
/// system `root` at `usr/bin/NAME`, with the shared libraries `ldd` lists
/// for them at their host paths, and `bin`, `lib`, `lib64` as merged-`/usr`
/// links: a small real userland for tests that execute commands in an
/// image (a sandboxed `RUN`) without building a Debian base. `sh` is the
/// host's `/bin/sh`.
pub fn host_userland(root: &Path, programs: &[&str]) {
    use std::os::unix::fs::symlink;
    let usr_bin = root.join("usr/bin");
    std::fs::create_dir_all(&usr_bin).expect("creating usr/bin");
    for dir in ["bin", "lib", "lib64", "sbin"] {
        std::fs::create_dir_all(root.join("usr").join(dir)).expect("creating usr dirs");
        if std::fs::symlink_metadata(root.join(dir)).is_err() {
            symlink(format!("usr/{dir}"), root.join(dir)).expect("linking a merged /usr directory");
        }
    }
    for program in programs {
        let host = run("sh", &["-c", &format!("command -v {program}")]).trim().to_string();
        let host = std::fs::canonicalize(&host).unwrap_or_else(|e| panic!("finding {program}: {e}"));
        std::fs::copy(&host, usr_bin.join(program)).unwrap_or_else(|e| panic!("copying {program}: {e}"));
        let ldd = Command::new("ldd").arg(&host).output().expect("running ldd");
        for line in String::from_utf8_lossy(&ldd.stdout).lines() {
            // `libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)`, or the
            // loader as `/lib64/ld-linux-x86-64.so.2 (0x...)`.
            let path = match line.split_once("=>") {
                Some((_, rest)) => rest.split_whitespace().next(),
                None => line.split_whitespace().next().filter(|p| p.starts_with('/')),
            };
            let Some(path) = path.filter(|p| p.starts_with('/')) else { continue };
            let rel = Path::new(path).strip_prefix("/").expect("absolute");
            // Into /usr, where the merged links lead.
            let rel = if rel.starts_with("usr") { rel.to_path_buf() } else { Path::new("usr").join(rel) };
            let dest = root.join(rel);
            std::fs::create_dir_all(dest.parent().expect("a parent")).expect("creating a library directory");
            if !dest.exists() {
                std::fs::copy(path, &dest).unwrap_or_else(|e| panic!("copying {path}: {e}"));
            }
        }
    }
}
