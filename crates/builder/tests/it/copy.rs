//! COPY and ADD with Docker's rules, checked on the layers as Python's
//! tarfile reads them.

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use expect_test::expect;
use forge_testkit::{python_check_archive, require_tool};

use crate::{build, plugin_files, tree};

const DOCKERFILE: &str = r#"FROM localhost:5000/base-py:1.0.0
ARG MODULE_PATH
WORKDIR /app
# A directory copies its contents; .dockerignore applies.
COPY ${MODULE_PATH}/src src
# A file to a directory (trailing slash), and renamed.
COPY shared/one.txt /opt/
COPY shared/one.txt /opt/renamed.txt
# Globs and several sources need a directory destination.
COPY shared/*.cfg shared/one.txt conf/
COPY --chown=1000:1001 --chmod=0600 shared/one.txt owned.txt
# Symlinks and hard links inside a copied directory stay what they are.
COPY shared/links /links
ADD shared/bundle.tar.gz /bundle/
ADD shared/plain.txt /plain/
ENV PYTHONPATH=/app/src
"#;

/// Builds `plugins/p` of `root` into a fresh store, validates the image and
/// exports it: the output directory, the tarball, and Python's listing of
/// its layers.
fn build_and_list(root: &Path) -> (tempfile::TempDir, PathBuf, String) {
    let store = tempfile::tempdir().unwrap();
    let (ws, built) = build(root, store.path(), "plugins/p").unwrap();
    forge_oci::validate::image(ws.store(), built.digest()).unwrap();
    let out = tempfile::tempdir().unwrap();
    let tarball = ws.export(&built, out.path()).unwrap();
    let listing = python_check_archive(&tarball);
    (out, tarball, listing)
}

#[test]
fn copy_and_add_follow_docker_rules() {
    if !require_tool("python3") {
        return;
    }
    let mut files = plugin_files("plugins/p", DOCKERFILE);
    files.extend([
        ("plugins/p/src/pkg/mod.py".to_string(), "x = 1\n"),
        ("plugins/p/src/notes.log".to_string(), "ignored\n"),
        ("shared/one.txt".to_string(), "one\n"),
        ("shared/a.cfg".to_string(), "a\n"),
        ("shared/b.cfg".to_string(), "b\n"),
        ("shared/plain.txt".to_string(), "plain\n"),
        ("shared/links/target.txt".to_string(), "t\n"),
        (".dockerignore".to_string(), "**/*.log\n"),
    ]);
    let files: Vec<(&str, &str)> = files.iter().map(|(p, c)| (p.as_str(), *c)).collect();
    let repo = tree(&files);
    let root = repo.path();
    std::os::unix::fs::symlink("target.txt", root.join("shared/links/link")).unwrap();
    fs::hard_link(root.join("shared/links/target.txt"), root.join("shared/links/z-hard")).unwrap();
    fs::set_permissions(root.join("plugins/p/src/main.py"), fs::Permissions::from_mode(0o775)).unwrap();
    // A .tar.gz made by Python's tarfile, with its own owners and modes.
    let script = "import io,sys,tarfile\nt=tarfile.open(sys.argv[1],'w:gz')\nfor n,m in [('d/x.txt',0o640)]:\n d=b'x\\n';i=tarfile.TarInfo(n);i.size=len(d);i.mode=m;i.uid=7;i.gid=8;t.addfile(i,io.BytesIO(d))\nt.close()\n";
    forge_testkit::run("python3", &["-c", script, root.join("shared/bundle.tar.gz").to_str().unwrap()]);

    let (_out, _tarball, listing) = build_and_list(root);
    let ours: Vec<&str> = listing.split("--\n").skip(1).collect();
    expect![[r#"
        d 0755 0:0 0 app
        --
        d 0755 0:0 0 app
        d 0755 0:0 0 app/src
        f 0755 0:0 0 app/src/main.py
        d 0755 0:0 0 app/src/pkg
        f 0644 0:0 0 app/src/pkg/mod.py
        --
        d 0755 0:0 0 opt
        f 0644 0:0 0 opt/one.txt
        --
        d 0755 0:0 0 opt
        f 0644 0:0 0 opt/renamed.txt
        --
        d 0755 0:0 0 app
        d 0755 0:0 0 app/conf
        f 0644 0:0 0 app/conf/a.cfg
        f 0644 0:0 0 app/conf/b.cfg
        f 0644 0:0 0 app/conf/one.txt
        --
        d 0755 0:0 0 app
        f 0600 1000:1001 0 app/owned.txt
        --
        d 0755 0:0 0 links
        l 0777 0:0 0 links/link -> target.txt
        f 0644 0:0 0 links/target.txt
        h 0644 0:0 0 links/z-hard -> links/target.txt
        --
        d 0755 0:0 0 bundle
        d 0755 0:0 0 bundle/d
        f 0640 7:8 0 bundle/d/x.txt
        --
        d 0755 0:0 0 plain
        f 0644 0:0 0 plain/plain.txt
    "#]]
    .assert_eq(&ours.join("--\n"));
    let mut log = std::io::stderr();
    let _ = writeln!(log, "{listing}");
}

const HEREDOCS: &str = r#"FROM localhost:5000/base-py:1.0.0
ARG MODULE_PATH
ENV GREETING=hello
WORKDIR /app
COPY <<EOF greeting.txt
$GREETING "$MODULE_PATH" \$HOME
EOF
COPY --chmod=755 --chown=1000:1001 <<-"SH" /usr/local/bin/hi
	#!/bin/sh
	echo "$GREETING"
	SH
COPY <<one <<two ${MODULE_PATH}/src/main.py conf/
1
one
2
two
"#;

/// `COPY <<EOF`: one file per heredoc, 0644 unless `--chmod`, owned as
/// `--chown` says, named after the terminator in a directory destination;
/// the body expanded unless the terminator is quoted (quotes kept). The
/// layers read by Python's tarfile, the content by `umoci unpack`.
#[test]
fn copy_heredocs_become_files() {
    if !require_tool("python3") || !require_tool("skopeo") || !require_tool("umoci") {
        return;
    }
    let repo = crate::plugin_repo(HEREDOCS, &[]);
    let (out, tarball, listing) = build_and_list(repo.path());
    let ours: Vec<&str> = listing.split("--\n").skip(1).collect();
    expect![[r#"
        d 0755 0:0 0 app
        --
        d 0755 0:0 0 app
        f 0644 0:0 0 app/greeting.txt
        --
        d 0755 0:0 0 usr
        d 0755 0:0 0 usr/local
        d 0755 0:0 0 usr/local/bin
        f 0755 1000:1001 0 usr/local/bin/hi
        --
        d 0755 0:0 0 app
        d 0755 0:0 0 app/conf
        f 0644 0:0 0 app/conf/main.py
        f 0644 0:0 0 app/conf/one
        f 0644 0:0 0 app/conf/two
    "#]]
    .assert_eq(&ours.join("--\n"));
    let (_, layout) = forge_testkit::skopeo_check(&tarball, out.path());
    let rootfs = forge_testkit::umoci_unpack(&layout, "checked", out.path());
    let read = |path: &str| fs::read_to_string(rootfs.join(path)).unwrap();
    expect![[r#"
        hello "plugins/p" $HOME
        ---
        #!/bin/sh
        echo "$GREETING"
        ---
        1
        ---
        2
    "#]]
    .assert_eq(
        &["app/greeting.txt", "usr/local/bin/hi", "app/conf/one", "app/conf/two"].map(read).join("---\n"),
    );
}
