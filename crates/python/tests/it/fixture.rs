//! Fixture wheels written with the zip crate, fake image trees, and a way
//! to look at a tree.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use forge_oci::{ImageFiles, Node, NodeKind, Tree};
use sha2::Digest as _;

/// A wheel to write: its files (name in the zip, content, mode).
pub struct WheelSpec {
    pub name: String,
    pub version: String,
    pub root_is_purelib: bool,
    pub files: Vec<(String, Vec<u8>, u32)>,
    /// Applied to the RECORD text before it is written.
    pub tamper_record: Option<Box<dyn Fn(String) -> String>>,
    /// Extra members not listed in RECORD.
    pub unlisted: Vec<(String, Vec<u8>)>,
    /// Write members in reverse order.
    pub reverse: bool,
    /// The `Tag` of `WHEEL`.
    pub tag: String,
}

impl WheelSpec {
    pub fn new(name: &str, version: &str) -> WheelSpec {
        WheelSpec {
            name: name.to_owned(),
            version: version.to_owned(),
            root_is_purelib: true,
            files: Vec::new(),
            tamper_record: None,
            unlisted: Vec::new(),
            reverse: false,
            tag: "py3-none-any".to_owned(),
        }
    }

    pub fn file(mut self, name: &str, content: &str) -> WheelSpec {
        self.files.push((name.to_owned(), content.as_bytes().to_vec(), 0o644));
        self
    }

    pub fn executable(mut self, name: &str, content: &str) -> WheelSpec {
        self.files.push((name.to_owned(), content.as_bytes().to_vec(), 0o755));
        self
    }

    pub fn dist_info(&self) -> String {
        format!("{}-{}.dist-info", self.name.replace('-', "_"), self.version)
    }

    /// Writes `dir/<name>-<version>-py3-none-any.whl`.
    pub fn write(&self, dir: &Path) -> PathBuf {
        let info = self.dist_info();
        let mut members = self.files.clone();
        members.push((
            format!("{info}/METADATA"),
            format!("Metadata-Version: 2.1\nName: {}\nVersion: {}\n", self.name, self.version).into_bytes(),
            0o644,
        ));
        members.push((
            format!("{info}/WHEEL"),
            format!(
                "Wheel-Version: 1.0\nGenerator: forge-test\nRoot-Is-Purelib: {}\nTag: {}\n",
                self.root_is_purelib, self.tag
            )
            .into_bytes(),
            0o644,
        ));
        let mut record = String::new();
        for (name, content, _) in &members {
            let digest = sha2::Sha256::digest(content);
            let hash = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest);
            record.push_str(&format!("{name},sha256={hash},{}\n", content.len()));
        }
        record.push_str(&format!("{info}/RECORD,,\n"));
        if let Some(tamper) = &self.tamper_record {
            record = tamper(record);
        }
        members.push((format!("{info}/RECORD"), record.into_bytes(), 0o644));
        for (name, content) in &self.unlisted {
            members.push((name.clone(), content.clone(), 0o644));
        }
        if self.reverse {
            members.reverse();
        }
        let path = dir.join(format!("{}-{}-{}.whl", self.name.replace('-', "_"), self.version, self.tag));
        let mut zip = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
        for (name, content, mode) in members {
            let options = zip::write::SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Deflated)
                .unix_permissions(mode);
            zip.start_file(name, options).unwrap();
            zip.write_all(&content).unwrap();
        }
        zip.finish().unwrap();
        path
    }
}

/// One line per node of `tree`: `MODE PATH` and the content or link.
pub fn show(tree: &Tree) -> String {
    let mut out = String::new();
    for (path, node) in tree.iter() {
        let what = match &node.kind {
            NodeKind::File { .. } => {
                let mut content = String::new();
                tree.open(path).unwrap().unwrap().read_to_string(&mut content).unwrap();
                format!("{content:?}")
            }
            NodeKind::Dir => "dir".to_owned(),
            NodeKind::Symlink { target } => format!("-> {target}"),
            NodeKind::Whiteout => "whiteout".to_owned(),
            NodeKind::Opaque => "opaque".to_owned(),
            other => format!("{other:?}"),
        };
        out.push_str(&format!("{:o} {path} {what}\n", node.mode));
    }
    out
}

/// The content of the file at `path` of `files`.
pub fn content(files: &dyn ImageFiles, path: &str) -> String {
    forge_oci::files::read_to_string(files, path, 1 << 20)
        .unwrap()
        .unwrap_or_else(|| panic!("{path} missing"))
}

pub fn file(tree: &mut Tree, path: &str, content: &str) {
    tree.insert(path, Node::bytes(0o644, content));
}

pub fn exe(tree: &mut Tree, path: &str, content: &str) {
    tree.insert(path, Node::bytes(0o755, content));
}

pub fn link(tree: &mut Tree, path: &str, target: &str) {
    tree.insert(path, Node::symlink(target));
}

pub const DPKG_STATUS: &str = "\
Package: libc6
Status: install ok installed
Architecture: amd64
Version: 2.36-9+deb12u4

Package: libpython3.11-minimal
Status: install ok installed
Architecture: amd64
Version: 3.11.2-6+deb12u1
";

/// Debian bookworm with its python3 (3.11) and python3-pip.
pub fn debian() -> Tree {
    let mut tree = Tree::new();
    link(&mut tree, "bin", "usr/bin");
    link(&mut tree, "lib", "usr/lib");
    link(&mut tree, "usr/bin/python3", "python3.11");
    exe(&mut tree, "usr/bin/python3.11", "\x7fELF");
    exe(&mut tree, "usr/bin/pip3", "#!/usr/bin/python3\n# -*- coding: utf-8 -*-\nimport re\n");
    file(&mut tree, "usr/lib/python3.11/os.py", "# os\n");
    file(&mut tree, "usr/lib/python3.11/EXTERNALLY-MANAGED", "[externally-managed]\n");
    file(
        &mut tree,
        "usr/lib/python3/dist-packages/six-1.16.0.egg-info/PKG-INFO",
        "Name: six\nVersion: 1.16.0\n",
    );
    file(
        &mut tree,
        "usr/lib/python3/dist-packages/pip-23.0.1.dist-info/METADATA",
        "Metadata-Version: 2.1\nName: pip\nVersion: 23.0.1\n",
    );
    file(&mut tree, "usr/lib/x86_64-linux-gnu/libc.so.6", "GLIBC_2.2.5\0GLIBC_2.34\0");
    file(&mut tree, "var/lib/dpkg/status", DPKG_STATUS);
    tree
}

/// The official `python:3.12` image: Python built into /usr/local.
pub fn python_org() -> Tree {
    let mut tree = Tree::new();
    link(&mut tree, "bin", "usr/bin");
    link(&mut tree, "lib", "usr/lib");
    link(&mut tree, "usr/local/bin/python3", "python3.12");
    link(&mut tree, "usr/local/bin/python", "python3");
    exe(&mut tree, "usr/local/bin/python3.12", "\x7fELF");
    exe(&mut tree, "usr/local/bin/pip", "#!/usr/local/bin/python3\nimport re\n");
    file(&mut tree, "usr/local/lib/python3.12/os.py", "# os\n");
    file(
        &mut tree,
        "usr/local/include/python3.12/patchlevel.h",
        "#define PY_VERSION              \"3.12.7\"\n",
    );
    file(
        &mut tree,
        "usr/local/lib/python3.12/site-packages/pip-24.2.dist-info/METADATA",
        "Metadata-Version: 2.1\nName: pip\nVersion: 24.2\n",
    );
    file(
        &mut tree,
        "usr/local/lib/python3.12/site-packages/Foo_Bar-1.0.dist-info/METADATA",
        "Name: Foo_Bar\nVersion: 1.0\n",
    );
    // No dpkg status entry for libc6: the version comes from libc.so.6.
    file(
        &mut tree,
        "usr/lib/aarch64-linux-gnu/libc.so.6",
        "xxGLIBC_2.2.5\0GLIBC_2.36\0GLIBC_2.4\0GLIBC_PRIVATE\0",
    );
    tree
}

pub const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
