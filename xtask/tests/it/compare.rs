//! The comparison test: for one `RUN apt-get install`, one `RUN pip
//! install` and one plain shell `RUN` (executed in our sandbox: a
//! directory, `echo`, a symlink, a whiteout, an opaque directory, as the
//! sample plugin shell-notes has), the files our layers add equal those
//! `docker build` adds for
//! the same Dockerfile over the same base image, apart from the
//! differences the README names ("Differences from `docker build`").
//!
//! The base image is built by our base-image code (with apt, dpkg and pip,
//! so that Docker can run the `RUN`s), loaded into a Docker engine of the
//! test's own, and the Dockerfile first copies an apt sources file into
//! `/etc/apt`, so both sides read the same archive. Docker reaches Debian
//! and PyPI through the host's network (`--network host`). Both images'
//! `RUN` layers are read member by member (path, type, mode, owner, link
//! target, SHA-256 of the content). Needs dockerd, gpgv and the network:
//! fails under `CI=true` without them, skips with a message elsewhere.
//!
//! A second test does the same for `COPY --from` (of a stage by name and
//! index, with `--chown`, and of an image) in a multi-stage build without
//! `RUN`s, over a small base made with `image from-rootfs`; it needs
//! dockerd only. (Heredocs are BuildKit's; the engine's own builder, all a
//! Docker without buildx has, cannot read them, so they are compared with
//! BuildKit's documented behaviour in the builder's tests instead.)

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::Path;
use std::time::Instant;

use forge_testkit::{require_tool, Dockerd};

use crate::{ok, xtask};

/// A base image with what Docker needs to run the `RUN`s: apt (with the
/// archive's keys) and dpkg with the essential tools their scripts call,
/// and pip for the interpreter.
const BASE: &str = r#"name = "base-apt"
suite = "bookworm"
architecture = "amd64"
packages = ["python3", "python3-pip", "apt", "dpkg", "perl-base", "debian-archive-keyring", "dash",
    "coreutils", "base-files", "ca-certificates", "libc-bin", "tar", "findutils", "sed", "grep",
    "diffutils", "gzip", "mawk"]
exclude = []

[[extra-suite]]
suite = "bookworm-updates"

[[extra-suite]]
suite = "bookworm-security"
mirror = "http://deb.debian.org/debian-security"
"#;

const SOURCES: &str = "deb http://deb.debian.org/debian bookworm main\n\
deb http://deb.debian.org/debian bookworm-updates main\n\
deb http://deb.debian.org/debian-security bookworm-security main\n";

/// `/usr/bin/awk`, which mawk's maintainer script would make with
/// update-alternatives (our base images do not run it); apt-key needs it.
const AWK: &str = "#!/bin/sh\nexec mawk \"$@\"\n";

const APT_RUN: &str = "RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y \
--no-install-recommends jq && apt-get clean && rm -rf /var/lib/apt/lists/*";
const PIP_RUN: &str = "RUN pip install --break-system-packages python-slugify==8.0.4 PyYAML==6.0.2";
const SHELL_RUN: &str = "RUN mkdir -p /opt/notes/templates && echo 'made by a sandboxed RUN' > /opt/notes/templates/banner.txt \
&& ln -s templates/banner.txt /opt/notes/banner && ln /opt/notes/templates/banner.txt /opt/notes/hard \
&& rm /etc/issue.net && rm -rf /etc/update-motd.d && mkdir /etc/update-motd.d \
&& printf '#!/bin/sh\\ncat /opt/notes/banner\\n' > /etc/update-motd.d/00-notes && chmod 755 /etc/update-motd.d/00-notes";

/// One layer member, as compared.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Member {
    kind: char,
    mode: u32,
    owner: (u64, u64),
    link: String,
    digest: String,
}

type Layer = BTreeMap<String, Member>;

/// What the README documents as not in our layers (or written otherwise),
/// for a path a layer of `docker build` holds.
fn documented(path: &str) -> Option<&'static str> {
    let name = path.rsplit('/').next().unwrap_or(path);
    if path.contains("/__pycache__/") || path.ends_with("/__pycache__") || name.ends_with(".pyc") {
        return Some("no .pyc files");
    }
    let apt_state = [
        "var/cache/apt",
        "var/cache/debconf",
        "var/log",
        "var/lib/dpkg/lock",
        "var/lib/dpkg/lock-frontend",
        "var/lib/dpkg/status-old",
        "var/lib/dpkg/triggers",
        "var/lib/dpkg/updates",
        "var/lib/dpkg/info/format",
        "root/.cache",
    ];
    apt_state
        .iter()
        .any(|p| path == *p || path.strip_prefix(p).is_some_and(|rest| rest.starts_with('/')))
        .then_some("no pip or apt caches, logs, locks or backups")
}

/// The content as compared: a `RECORD` without its `.pyc` lines (pip
/// lists the files it compiled), dpkg's status and apt's extended states
/// as their paragraphs with their fields, both sorted (dpkg rewrites every
/// paragraph in its own field order, apt writes in its cache's order),
/// else the bytes.
fn canonical(path: &str, data: Vec<u8>) -> Vec<u8> {
    if path.ends_with(".dist-info/RECORD") {
        let text = String::from_utf8_lossy(&data);
        return text
            .lines()
            .filter(|l| !l.contains("__pycache__/"))
            .collect::<Vec<_>>()
            .join("\n")
            .into_bytes();
    }
    if path == "var/lib/dpkg/status" || path == "var/lib/apt/extended_states" {
        let text = String::from_utf8_lossy(&data);
        let mut paragraphs: Vec<Vec<String>> = Vec::new();
        for paragraph in text.split("\n\n").filter(|p| !p.trim().is_empty()) {
            let mut fields: Vec<String> = Vec::new();
            for line in paragraph.lines() {
                match fields.last_mut() {
                    Some(last) if line.starts_with([' ', '\t']) => {
                        last.push('\n');
                        last.push_str(line);
                    }
                    _ => fields.push(line.to_owned()),
                }
            }
            fields.sort();
            paragraphs.push(fields);
        }
        paragraphs.sort();
        return paragraphs.iter().map(|p| p.join("\n")).collect::<Vec<_>>().join("\n\n").into_bytes();
    }
    data
}

/// The layers of an archive with Docker's `manifest.json` (ours, and what
/// `docker save` writes), in order.
fn layers(archive: &Path) -> Vec<Layer> {
    let read_member = |wanted: &str| -> Vec<u8> {
        let mut outer = tar::Archive::new(fs::File::open(archive).unwrap());
        for entry in outer.entries().unwrap() {
            let mut entry = entry.unwrap();
            if entry.path().unwrap().to_str() == Some(wanted) {
                let mut data = Vec::new();
                entry.read_to_end(&mut data).unwrap();
                return data;
            }
        }
        panic!("{}: no {wanted}", archive.display())
    };
    let manifest: serde_json::Value = serde_json::from_slice(&read_member("manifest.json")).unwrap();
    let names: Vec<String> =
        manifest[0]["Layers"].as_array().unwrap().iter().map(|l| l.as_str().unwrap().to_owned()).collect();
    let mut found: BTreeMap<String, Layer> = BTreeMap::new();
    let mut outer = tar::Archive::new(fs::File::open(archive).unwrap());
    for entry in outer.entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().to_string_lossy().into_owned();
        if !names.contains(&name) || found.contains_key(&name) {
            continue;
        }
        let mut raw = Vec::new();
        entry.read_to_end(&mut raw).unwrap();
        let plain = if raw.starts_with(&[0x1f, 0x8b]) {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(&raw[..]).read_to_end(&mut out).unwrap();
            out
        } else {
            raw
        };
        found.insert(name, members(&plain));
    }
    names.iter().map(|n| found.remove(n).unwrap_or_else(|| panic!("{}: no {n}", archive.display()))).collect()
}

fn members(tar_bytes: &[u8]) -> Layer {
    let mut layer = Layer::new();
    let mut archive = tar::Archive::new(tar_bytes);
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path =
            entry.path().unwrap().to_string_lossy().trim_start_matches("./").trim_end_matches('/').to_owned();
        let header = entry.header();
        let kind = match header.entry_type() {
            tar::EntryType::Regular => 'f',
            tar::EntryType::Directory => 'd',
            tar::EntryType::Symlink => 'l',
            tar::EntryType::Link => 'h',
            other => panic!("{path}: unexpected entry type {other:?}"),
        };
        let whiteout = path.rsplit('/').next().is_some_and(|n| n.starts_with(".wh."));
        // Go's archive/tar keeps the file type bits in the mode; a
        // whiteout's mode means nothing.
        let mode = if whiteout { 0 } else { header.mode().unwrap() & 0o7777 };
        let owner = (header.uid().unwrap(), header.gid().unwrap());
        let link = entry.link_name().unwrap().map(|l| l.to_string_lossy().into_owned()).unwrap_or_default();
        let digest = if kind == 'f' {
            let mut data = Vec::new();
            entry.read_to_end(&mut data).unwrap();
            forge_digest::Digest::of(&canonical(&path, data)).to_string()
        } else {
            String::new()
        };
        layer.insert(path, Member { kind, mode, owner, link, digest });
    }
    layer
}

/// What `layer` changes over `below` (the layers under it, merged), with
/// the documented differences left out: no directory entry that repeats
/// the directory below (a runtime records the parents of what it
/// touched), no opaque marker on a directory that is new.
fn changes(below: &Layer, layer: &Layer) -> Layer {
    layer
        .iter()
        .filter(|(path, member)| {
            if let Some(dir) = path.strip_suffix("/.wh..wh..opq") {
                return below.contains_key(dir);
            }
            !(member.kind == 'd' && below.get(*path) == Some(member)) && documented(path).is_none()
        })
        .map(|(p, m)| (p.clone(), m.clone()))
        .collect()
}

/// The changes of the last three layers (the `RUN`s) of `archive`, and the
/// paths in them that [`documented`] leaves out.
fn run_layers(archive: &Path) -> ([Layer; 3], Vec<String>) {
    let all = layers(archive);
    assert!(all.len() >= 4, "{}: {} layers", archive.display(), all.len());
    let runs = &all[all.len() - 3..];
    let left_out = runs.iter().flat_map(|l| l.keys()).filter(|p| documented(p).is_some()).cloned().collect();
    let mut below = Layer::new();
    for layer in &all[..all.len() - 3] {
        below.extend(layer.clone());
    }
    let mut changed = Vec::new();
    for run in runs {
        changed.push(changes(&below, run));
        below.extend(run.clone());
    }
    (changed.try_into().expect("three layers"), left_out)
}

impl std::fmt::Display for Member {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Member { kind, mode, owner: (uid, gid), link, digest } = self;
        write!(f, "{kind} {mode:04o} {uid}:{gid}")?;
        if !link.is_empty() {
            write!(f, " -> {link}")?;
        }
        if !digest.is_empty() {
            write!(f, " {digest}")?;
        }
        Ok(())
    }
}

/// `docker build` of `plugins/cmp` in the monorepo at `repo` with the build
/// args our build gives it (and `extra` flags), saved; returns the archive.
fn docker_build(engine: &Dockerd, repo: &Path, extra: &[&str]) -> std::path::PathBuf {
    let dockerfile = repo.join("plugins/cmp/Dockerfile");
    let mut args = vec!["build"];
    args.extend_from_slice(extra);
    args.extend([
        "-f",
        dockerfile.to_str().unwrap(),
        "--build-arg",
        "REGISTRY=localhost:5000",
        "--build-arg",
        "TAG=1.0.0",
        "--build-arg",
        "MODULE_PATH=plugins/cmp",
        "-t",
        "cmp-docker",
        repo.to_str().unwrap(),
    ]);
    engine.docker(&args).unwrap_or_else(|e| panic!("docker build failed:\n{e}"));
    let saved = repo.join("docker.tar");
    engine.docker(&["save", "-o", saved.to_str().unwrap(), "cmp-docker"]).unwrap();
    saved
}

/// One line per difference.
fn differences(ours: &Layer, docker: &Layer) -> Vec<String> {
    let mut out = Vec::new();
    for path in ours.keys().chain(docker.keys().filter(|p| !ours.contains_key(*p))) {
        match (ours.get(path), docker.get(path)) {
            (Some(a), Some(b)) if a != b => out.push(format!("{path}: ours {a}, docker's {b}")),
            (Some(a), None) => out.push(format!("{path}: only ours: {a}")),
            (None, Some(b)) => out.push(format!("{path}: only docker's: {b}")),
            _ => {}
        }
    }
    out
}

#[test]
fn run_layers_add_what_docker_build_adds() {
    if !(require_tool("gpgv")
        && crate::locks::require_network(&[
            "deb.debian.org:80",
            "pypi.org:443",
            "files.pythonhosted.org:443",
        ]))
    {
        return;
    }
    let Some(engine) = Dockerd::start() else { return };
    let started = Instant::now();
    let repo = tempfile::tempdir().unwrap();
    let dir = repo.path().join("plugins/cmp");
    fs::create_dir_all(dir.join("src")).unwrap();
    fs::create_dir_all(repo.path().join("base-images")).unwrap();
    fs::write(repo.path().join("base-images/base-apt.toml"), BASE).unwrap();
    fs::write(dir.join("plugin_info.json"), r#"{"title": "cmp", "description": "d", "type": "custom"}"#)
        .unwrap();
    fs::write(dir.join("VERSION"), "team/cmp:1.0.0\n").unwrap();
    fs::write(dir.join("src/main.py"), "print(1)\n").unwrap();
    fs::write(dir.join("sources.list"), SOURCES).unwrap();
    fs::write(dir.join("awk"), AWK).unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(dir.join("awk"), fs::Permissions::from_mode(0o755)).unwrap();
    let mut dockerfile = String::from(
        "ARG REGISTRY\nARG TAG\nFROM ${REGISTRY}/base-apt:${TAG}\nARG MODULE_PATH\n\
         COPY ${MODULE_PATH}/sources.list /etc/apt/sources.list\n\
         COPY ${MODULE_PATH}/awk /usr/bin/awk\n",
    );
    // pip in Docker checks TLS against the image's CA bundle: the host's,
    // which trusts what the host's network needs (ours uses the host's).
    let host_ca = Path::new("/etc/ssl/certs/ca-certificates.crt");
    if host_ca.is_file() {
        fs::copy(host_ca, dir.join("ca-certificates.crt")).unwrap();
        dockerfile.push_str("COPY ${MODULE_PATH}/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt\n");
    }
    dockerfile.push_str(&format!("{APT_RUN}\n{PIP_RUN}\n{SHELL_RUN}\n"));
    fs::write(dir.join("Dockerfile"), dockerfile).unwrap();
    fs::write(repo.path().join(".dockerignore"), "target\n").unwrap();
    let root = repo.path().to_str().unwrap();

    // Ours.
    let out = ok(&xtask(repo.path(), &["build", "cmp", "--root", root, "--no-lint", "-A", "PF401"]));
    let ours = repo.path().join("target/plugin-forge/images/team/cmp_1.0.0.tar");
    assert!(ours.is_file(), "{out}");
    let ours_done = started.elapsed();

    // Docker's, over the same base image.
    let base = repo.path().join("base.tar");
    ok(&xtask(
        repo.path(),
        &["image", "export", "localhost:5000/base-apt", base.to_str().unwrap(), "--root", root],
    ));
    engine.docker(&["load", "-i", base.to_str().unwrap()]).unwrap();
    engine.docker(&["tag", "localhost:5000/base-apt:latest", "localhost:5000/base-apt:1.0.0"]).unwrap();
    let theirs = docker_build(&engine, repo.path(), &["--network", "host"]);
    fs::remove_file(&base).unwrap();

    let ([our_apt, our_pip, our_shell], ours_left_out) = run_layers(&ours);
    let ([docker_apt, docker_pip, docker_shell], docker_left_out) = run_layers(&theirs);
    // The differences allowed are Docker's extras, never ours; and Docker
    // did run apt and pip.
    assert!(ours_left_out.is_empty(), "our layers hold {ours_left_out:?}");
    for path in [
        "var/log/dpkg.log",
        "usr/local/lib/python3.11/dist-packages/yaml/__pycache__/__init__.cpython-311.pyc",
    ] {
        assert!(
            docker_left_out.iter().any(|p| p == path),
            "{path} not in Docker's layers: {docker_left_out:?}"
        );
    }
    // What is compared is there.
    for (layer, path) in [
        (&our_apt, "usr/bin/jq"),
        (&our_apt, "usr/lib/x86_64-linux-gnu/libonig.so.5"),
        (&our_apt, "var/lib/dpkg/info/jq.md5sums"),
        (&our_apt, "var/lib/dpkg/status"),
        (&our_apt, "var/lib/apt/lists/.wh.partial"),
        (&our_pip, "usr/local/bin/slugify"),
        (&our_pip, "usr/local/lib/python3.11/dist-packages/PyYAML-6.0.2.dist-info/RECORD"),
        (&our_shell, "opt/notes/banner"),
        (&our_shell, "opt/notes/hard"),
        (&our_shell, "etc/.wh.issue.net"),
        (&our_shell, "etc/update-motd.d/.wh..wh..opq"),
    ] {
        assert!(layer.contains_key(path), "{path} not in our layer: {:?}", layer.keys().collect::<Vec<_>>());
    }
    let mut found = differences(&our_apt, &docker_apt);
    found.extend(differences(&our_pip, &docker_pip));
    found.extend(differences(&our_shell, &docker_shell));
    eprintln!(
        "compared {} + {} + {} members: ours built in {:.1}s, all done in {:.1}s",
        our_apt.len(),
        our_pip.len(),
        our_shell.len(),
        ours_done.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    assert!(found.is_empty(), "{} differences from docker build:\n{}", found.len(), found.join("\n"));
}

const STAGES: &str = "ARG REGISTRY
ARG TAG
FROM ${REGISTRY}/base-mini:${TAG} AS builder
ARG MODULE_PATH
COPY --chown=1000:1001 ${MODULE_PATH}/out /build/out
COPY ${MODULE_PATH}/junk /build/junk
FROM ${REGISTRY}/base-mini:${TAG}
ARG MODULE_PATH
COPY ${MODULE_PATH}/src /workdir/src
COPY --from=builder /build/out/ /workdir/model/
COPY --from=builder /build/out/a.txt /opt/
COPY --from=0 --chown=7:8 /build/out /srv/out
COPY --from=localhost:5000/base-mini:1.0.0 /etc/passwd /etc/copied
";

/// `COPY --from` a stage (by name and index, `--chown`) and from an
/// image: the final image's layers equal those of `docker build` (the
/// engine's own builder, which runs no `RUN` here) member by member, the
/// builder stage's files in neither. Needs dockerd only.
#[test]
fn copy_from_copies_what_docker_build_copies() {
    let Some(engine) = Dockerd::start() else { return };
    use std::os::unix::fs::PermissionsExt;
    let repo = tempfile::tempdir().unwrap();
    let root = repo.path().to_str().unwrap();
    let rootfs = repo.path().join("rootfs");
    fs::create_dir_all(rootfs.join("etc")).unwrap();
    fs::write(rootfs.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    let dir = repo.path().join("plugins/cmp");
    for (path, content, mode) in [
        ("plugin_info.json", r#"{"title": "cmp", "description": "d", "type": "custom"}"#, 0o644),
        ("VERSION", "team/cmp:1.0.0\n", 0o644),
        ("Dockerfile", STAGES, 0o644),
        ("src/main.py", "print(1)\n", 0o644),
        ("out/a.txt", "artifact\n", 0o644),
        ("out/bin/tool", "#!/bin/sh\n", 0o755),
        ("junk/x", "junk\n", 0o644),
    ] {
        let path = dir.join(path);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, content).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
    }
    std::os::unix::fs::symlink("../a.txt", dir.join("out/bin/link")).unwrap();
    fs::write(repo.path().join(".dockerignore"), "target\nrootfs\n").unwrap();
    let rootfs_arg = rootfs.to_str().unwrap();
    ok(&xtask(
        repo.path(),
        &["image", "from-rootfs", rootfs_arg, "localhost:5000/base-mini:1.0.0", "--root", root],
    ));
    let out = ok(&xtask(repo.path(), &["build", "cmp", "--root", root, "--no-lint", "-A", "PF401"]));
    let ours = repo.path().join("target/plugin-forge/images/team/cmp_1.0.0.tar");
    assert!(ours.is_file(), "{out}");

    let base = repo.path().join("base.tar");
    ok(&xtask(
        repo.path(),
        &["image", "export", "localhost:5000/base-mini:1.0.0", base.to_str().unwrap(), "--root", root],
    ));
    engine.docker(&["load", "-i", base.to_str().unwrap()]).unwrap();
    let theirs = docker_build(&engine, repo.path(), &[]);

    let (ours, theirs) = (layers(&ours), layers(&theirs));
    assert_eq!(ours.len(), theirs.len(), "the base's layer and the final stage's five");
    let (mut found, mut compared) = (Vec::new(), 0);
    let (mut our_below, mut their_below) = (ours[0].clone(), theirs[0].clone());
    for (our_layer, their_layer) in ours.iter().zip(&theirs).skip(1) {
        let ours = changes(&our_below, our_layer);
        compared += ours.len();
        found.extend(differences(&ours, &changes(&their_below, their_layer)));
        our_below.extend(our_layer.clone());
        their_below.extend(their_layer.clone());
    }
    for path in ["workdir/model/bin/link", "srv/out/bin/tool", "opt/a.txt", "etc/copied"] {
        assert!(our_below.contains_key(path), "{path} not in our image");
    }
    assert!(!our_below.keys().any(|p| p.starts_with("build")), "the builder stage's files are in our image");
    eprintln!("compared {compared} members of {} layers", ours.len() - 1);
    assert!(found.is_empty(), "{} differences from docker build:\n{}", found.len(), found.join("\n"));
}
