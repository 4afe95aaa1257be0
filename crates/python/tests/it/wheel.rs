//! Wheel installs of fixture wheels into a Debian target.

use forge_oci::{ImageFiles, NodeKind, Spool, Stack, Tree};
use forge_python::wheel::INSTALLER;
use forge_python::{detect, install_wheel, uninstall, Target, WheelError};

use crate::fixture::{content, debian, file, show, WheelSpec, PATH};

fn target() -> Target {
    detect(&debian(), "pip3", None, PATH, "amd64").unwrap()
}

struct Setup {
    dir: tempfile::TempDir,
    spool: Spool,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::new(&dir.path().join("spool")).unwrap();
    Setup { dir, spool }
}

fn install(
    setup: &mut Setup,
    spec: &WheelSpec,
    tree: &mut Tree,
) -> Result<forge_python::Installed, WheelError> {
    let wheel = spec.write(setup.dir.path());
    install_wheel(&wheel, &target(), tree, &mut setup.spool, true)
}

const SITE: &str = "usr/local/lib/python3.11/dist-packages";

#[test]
fn pure_wheel_with_entry_points() {
    let mut setup = setup();
    let spec = WheelSpec::new("demo-pkg", "1.0")
        .file("demo_pkg/__init__.py", "VALUE = 1\n")
        .file("demo_pkg/cli.py", "def main():\n    return 0\n")
        .executable("demo_pkg/tool.sh", "#!/bin/sh\n")
        .file(
            "demo_pkg-1.0.dist-info/entry_points.txt",
            "[console_scripts]\ndemo = demo_pkg.cli:main\ndemo-sub = demo_pkg.cli:Obj.run\n\n[gui_scripts]\ndemo-gui = demo_pkg.cli:main\n",
        );
    let mut tree = Tree::new();
    let installed = install(&mut setup, &spec, &mut tree).unwrap();
    assert_eq!(installed.name, "demo-pkg");
    assert_eq!(installed.version, "1.0");
    assert_eq!(installed.dist_info, format!("{SITE}/demo_pkg-1.0.dist-info"));
    let script = "#!/usr/bin/python3\n# -*- coding: utf-8 -*-\nimport re\nimport sys\nfrom demo_pkg.cli import main\nif __name__ == '__main__':\n    sys.argv[0] = re.sub(r'(-script\\.pyw|\\.exe)?$', '', sys.argv[0])\n    sys.exit(main())\n";
    assert_eq!(content(&tree, "usr/local/bin/demo"), script);
    assert_eq!(content(&tree, "usr/local/bin/demo-gui"), script);
    assert!(content(&tree, "usr/local/bin/demo-sub").contains("from demo_pkg.cli import Obj\n"));
    assert!(content(&tree, "usr/local/bin/demo-sub").contains("    sys.exit(Obj.run())\n"));
    let mode = |path: &str| tree.get(path).unwrap_or_else(|| panic!("{path}")).mode;
    assert_eq!(mode("usr/local/bin/demo"), 0o755);
    assert_eq!(mode(&format!("{SITE}/demo_pkg/tool.sh")), 0o755);
    assert_eq!(mode(&format!("{SITE}/demo_pkg/cli.py")), 0o644);
    assert_eq!(content(&tree, &format!("{SITE}/demo_pkg-1.0.dist-info/INSTALLER")), INSTALLER);
    assert_eq!(content(&tree, &format!("{SITE}/demo_pkg-1.0.dist-info/REQUESTED")), "");
    assert!(tree.iter().all(|(p, n)| !p.ends_with(".pyc") && n.uid == 0 && n.gid == 0));
    let record = content(&tree, &format!("{SITE}/demo_pkg-1.0.dist-info/RECORD"));
    let paths: Vec<&str> = record.lines().map(|l| l.split(',').next().unwrap()).collect();
    assert_eq!(
        paths,
        [
            "../../../bin/demo",
            "../../../bin/demo-gui",
            "../../../bin/demo-sub",
            "demo_pkg-1.0.dist-info/INSTALLER",
            "demo_pkg-1.0.dist-info/METADATA",
            "demo_pkg-1.0.dist-info/RECORD",
            "demo_pkg-1.0.dist-info/REQUESTED",
            "demo_pkg-1.0.dist-info/WHEEL",
            "demo_pkg-1.0.dist-info/entry_points.txt",
            "demo_pkg/__init__.py",
            "demo_pkg/cli.py",
            "demo_pkg/tool.sh",
        ]
    );
    assert!(record.ends_with("\r\n"));
    assert!(record.contains("demo_pkg-1.0.dist-info/RECORD,,\r\n"));
    assert!(record.contains(
        "demo_pkg-1.0.dist-info/REQUESTED,sha256=47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU,0\r\n"
    ));
    assert_eq!(installed.files.len(), 12);
}

#[test]
fn data_directories_and_shebangs() {
    let mut setup = setup();
    let spec = WheelSpec::new("Extra", "2.0")
        .file("extra/__init__.py", "")
        .executable("Extra-2.0.data/scripts/run-extra", "#!python -u\nprint('hi')\n")
        .executable("Extra-2.0.data/scripts/plain.sh", "#!/bin/sh\necho hi\n")
        .file("Extra-2.0.data/scripts/not-executable", "#!pythonw\npass\n")
        .file("Extra-2.0.data/data/share/extra/config.toml", "x = 1\n")
        .file("Extra-2.0.data/headers/extra.h", "int x;\n")
        .file("Extra-2.0.data/platlib/extra_native.py", "")
        .file("Extra-2.0.data/purelib/extra_pure.py", "")
        // setuptools' wrapper of an entry point: left out, the entry point wins.
        .file("Extra-2.0.data/scripts/ep", "#!python\nold wrapper\n")
        .file("Extra-2.0.dist-info/entry_points.txt", "[console_scripts]\nep = extra:main\n");
    let mut tree = Tree::new();
    install(&mut setup, &spec, &mut tree).unwrap();
    assert_eq!(content(&tree, "usr/local/bin/run-extra"), "#!/usr/bin/python3\nprint('hi')\n");
    assert_eq!(content(&tree, "usr/local/bin/plain.sh"), "#!/bin/sh\necho hi\n");
    assert_eq!(content(&tree, "usr/local/bin/not-executable"), "#!/usr/bin/python3\npass\n");
    assert_eq!(tree.get("usr/local/bin/run-extra").unwrap().mode, 0o755);
    assert_eq!(tree.get("usr/local/bin/not-executable").unwrap().mode, 0o644);
    assert!(content(&tree, "usr/local/bin/ep").contains("from extra import main"));
    assert_eq!(content(&tree, "usr/local/share/extra/config.toml"), "x = 1\n");
    assert_eq!(content(&tree, "usr/local/include/python3.11/Extra/extra.h"), "int x;\n");
    assert!(tree.contains(&format!("{SITE}/extra_native.py")));
    assert!(tree.contains(&format!("{SITE}/extra_pure.py")));
    let record = content(&tree, &format!("{SITE}/Extra-2.0.dist-info/RECORD"));
    let row = |path: &str| {
        record
            .lines()
            .find(|l| l.starts_with(&format!("{path},")))
            .unwrap_or_else(|| panic!("{path} in\n{record}"))
            .to_owned()
    };
    // Rewritten: hashed anew.
    let run_extra = row("../../../bin/run-extra");
    assert!(run_extra.ends_with(&format!(",{}", "#!/usr/bin/python3\nprint('hi')\n".len())), "{run_extra}");
    row("../../../share/extra/config.toml");
    row("../../../include/python3.11/Extra/extra.h");
    row("extra_native.py");
    // The left-out wrapper keeps its wheel row, as pip keeps it.
    row("Extra-2.0.data/scripts/ep");
}

#[test]
fn namespace_packages_from_two_wheels_share_the_directory() {
    let mut setup = setup();
    let a = WheelSpec::new("ns-a", "1").file("ns/a/__init__.py", "A = 1\n");
    let b = WheelSpec::new("ns-b", "1").file("ns/b/__init__.py", "B = 1\n");
    let mut tree = Tree::new();
    install(&mut setup, &a, &mut tree).unwrap();
    install(&mut setup, &b, &mut tree).unwrap();
    assert_eq!(content(&tree, &format!("{SITE}/ns/a/__init__.py")), "A = 1\n");
    assert_eq!(content(&tree, &format!("{SITE}/ns/b/__init__.py")), "B = 1\n");
    assert!(tree.node(&format!("{SITE}/ns")).is_some_and(|n| n.is_dir()));
}

#[test]
fn zip_order_does_not_matter() {
    let mut setup = setup();
    let spec = || {
        WheelSpec::new("order", "1")
            .file("order/b.py", "b")
            .file("order/a.py", "a")
            .file("order-1.dist-info/entry_points.txt", "[console_scripts]\no = order.a:main\n")
    };
    let mut forward = Tree::new();
    install(&mut setup, &spec(), &mut forward).unwrap();
    let mut reversed_spec = spec();
    reversed_spec.reverse = true;
    let mut reversed = Tree::new();
    install(&mut setup, &reversed_spec, &mut reversed).unwrap();
    assert_eq!(show(&forward), show(&reversed));
}

fn refused(spec: WheelSpec) -> String {
    let mut setup = setup();
    let mut tree = Tree::new();
    let error = install(&mut setup, &spec, &mut tree).unwrap_err();
    assert!(tree.is_empty(), "nothing installed from a refused wheel");
    error.to_string()
}

#[test]
fn a_wheel_that_lies_is_refused() {
    let mut bad_hash = WheelSpec::new("liar", "1").file("liar.py", "honest\n");
    bad_hash.tamper_record = Some(Box::new(|r: String| {
        let line = r.lines().find(|l| l.starts_with("liar.py,")).unwrap().to_owned();
        let size = line.rsplit(',').next().unwrap().to_owned();
        r.replace(&line, &format!("liar.py,sha256=47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU,{size}"))
    }));
    let message = refused(bad_hash);
    assert!(
        message.contains("`liar.py` does not match liar-1.dist-info/RECORD: 7 bytes with hash sha256="),
        "{message}"
    );

    let mut bad_size = WheelSpec::new("liar", "1").file("liar.py", "honest\n");
    bad_size.tamper_record = Some(Box::new(|r: String| r.replace(",7\n", ",8\n")));
    assert!(refused(bad_size).contains("RECORD says 8 bytes"));

    let mut short = WheelSpec::new("liar", "1").file("liar.py", "honest\n");
    short.tamper_record = Some(Box::new(|r: String| r.replace(",7\n", ",3\n")));
    let message = refused(short);
    assert!(
        message.ends_with("`liar.py` is larger than the 3 bytes liar-1.dist-info/RECORD says"),
        "{message}"
    );

    let mut unlisted = WheelSpec::new("liar", "1").file("liar.py", "x");
    unlisted.unlisted.push(("sneaky.py".into(), b"import os".to_vec()));
    assert!(refused(unlisted).contains("`sneaky.py` is not in liar-1.dist-info/RECORD"));

    let mut phantom = WheelSpec::new("liar", "1").file("liar.py", "x");
    phantom.tamper_record = Some(Box::new(|r: String| {
        format!("{r}ghost.py,sha256=47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU,0\n")
    }));
    assert!(refused(phantom).contains("lists `ghost.py`, which the wheel does not have"));

    let mut md5 = WheelSpec::new("liar", "1").file("liar.py", "x");
    md5.tamper_record = Some(Box::new(|r: String| {
        let line = r.lines().find(|l| l.starts_with("liar.py,")).unwrap().to_owned();
        r.replace(&line, "liar.py,md5=XUFAKrxLKna5cZ2REBfFkg,1")
    }));
    assert!(refused(md5).contains("hash algorithm `md5` is not accepted"));
}

#[test]
fn unsafe_paths_are_refused() {
    for name in ["../../../../etc/cron.d/evil", "/etc/passwd", "pkg/../../evil.py"] {
        let spec = WheelSpec::new("evil", "1").file(name, "x");
        let message = refused(spec);
        assert!(message.contains(&format!("member `{name}`")), "{message}");
    }
    let spec = WheelSpec::new("evil", "1").file("evil-1.data/scripts/../../../../bin/x", "x");
    assert!(refused(spec).contains("`..` in the path"));
    let spec = WheelSpec::new("evil", "1").file("evil-1.data/nowhere/x", "x");
    assert!(refused(spec).contains("unknown scheme key `nowhere`"));
}

#[test]
fn bad_wheel_metadata_is_refused() {
    let mut setup = setup();
    let spec = WheelSpec::new("v2", "1").file("v2.py", "");
    let wheel = spec.write(setup.dir.path());
    // Rewrite WHEEL as version 2 by building the zip by hand.
    let mut archive = zip::ZipArchive::new(std::fs::File::open(&wheel).unwrap()).unwrap();
    let out_path = setup.dir.path().join("v2-1-py3-none-any.whl.new");
    let mut out = zip::ZipWriter::new(std::fs::File::create(&out_path).unwrap());
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).unwrap();
        let name = entry.name().unwrap().into_owned();
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut bytes).unwrap();
        if name.ends_with("/WHEEL") {
            bytes = b"Wheel-Version: 2.0\nRoot-Is-Purelib: true\n".to_vec();
        }
        out.start_file(name, zip::write::SimpleFileOptions::default()).unwrap();
        std::io::Write::write_all(&mut out, &bytes).unwrap();
    }
    out.finish().unwrap();
    let error = install_wheel(&out_path, &target(), &mut Tree::new(), &mut setup.spool, false).unwrap_err();
    assert!(error.to_string().contains("Wheel-Version 2.0 is not supported"), "{error}");
    std::fs::write(setup.dir.path().join("junk.whl"), b"not a zip").unwrap();
    let error = install_wheel(
        &setup.dir.path().join("junk.whl"),
        &target(),
        &mut Tree::new(),
        &mut setup.spool,
        false,
    )
    .unwrap_err();
    assert!(matches!(error, WheelError::Zip { .. }), "{error}");
}

#[test]
fn root_is_purelib_false_goes_to_platlib() {
    let mut setup = setup();
    let mut spec = WheelSpec::new("native", "1").file("native.py", "");
    spec.root_is_purelib = false;
    let mut image = python_org_like_split();
    let target = detect(&image, "python3", Some("/opt/py/bin/python3.12"), PATH, "amd64").unwrap();
    let wheel = spec.write(setup.dir.path());
    let installed = install_wheel(&wheel, &target, &mut image, &mut setup.spool, false).unwrap();
    assert!(installed
        .files
        .iter()
        .all(|f| f.starts_with(&target.scheme.platlib) || f.starts_with("opt/py/bin")));
    assert!(!installed.files.iter().any(|f| f.ends_with("REQUESTED")));
}

/// A prefix Python (`/opt/py`), whose purelib and platlib are one directory.
fn python_org_like_split() -> Tree {
    let mut tree = Tree::new();
    crate::fixture::exe(&mut tree, "opt/py/bin/python3.12", "\x7fELF");
    file(&mut tree, "opt/py/lib/python3.12/os.py", "");
    file(&mut tree, "var/lib/dpkg/status", crate::fixture::DPKG_STATUS);
    tree
}

/// The lower image has `old 1.0` installed by pip (with `.pyc` files);
/// `pip install --upgrade old` removes it first, then installs 2.0.
#[test]
fn upgrade_removes_the_old_files_with_whiteouts() {
    let mut setup = setup();
    let mut lower = debian();
    let old = WheelSpec::new("old", "1.0")
        .file("old/__init__.py", "V = 1\n")
        .file("old/gone.py", "")
        .file("old_top.py", "")
        .file("old-1.0.dist-info/entry_points.txt", "[console_scripts]\nold = old:main\n");
    let wheel = old.write(setup.dir.path());
    install_wheel(&wheel, &target(), &mut lower, &mut setup.spool, true).unwrap();
    // What pip's compile step left, and files other packages put there.
    file(&mut lower, "usr/local/bin/other-tool", "");
    file(&mut lower, &format!("{SITE}/old/__pycache__/__init__.cpython-311.pyc"), "pyc");
    file(&mut lower, &format!("{SITE}/__pycache__/old_top.cpython-311.pyc"), "pyc");
    file(&mut lower, &format!("{SITE}/__pycache__/other.cpython-311.pyc"), "pyc");
    let target = detect(&lower, "pip3", None, PATH, "amd64").unwrap();
    assert_eq!(target.installed("old").map(|d| d.version.as_str()), Some("1.0"));

    let mut layer = Tree::new();
    let removed = uninstall(&lower, &target, "OLD", &mut layer).unwrap();
    assert_eq!(
        removed,
        [
            "usr/local/bin/old".to_owned(),
            format!("{SITE}/__pycache__/old_top.cpython-311.pyc"),
            format!("{SITE}/old"),
            format!("{SITE}/old-1.0.dist-info"),
            format!("{SITE}/old_top.py"),
        ]
    );
    let view = Stack::new(&lower, [&layer]);
    assert!(view.node(&format!("{SITE}/old/__init__.py")).is_none());
    assert!(view.node("usr/local/bin/old").is_none());
    assert!(view.node(&format!("{SITE}/__pycache__/other.cpython-311.pyc")).is_some());

    let new = WheelSpec::new("old", "2.0").file("old/__init__.py", "V = 2\n");
    let wheel = new.write(setup.dir.path());
    install_wheel(&wheel, &target, &mut layer, &mut setup.spool, true).unwrap();
    // The whiteout of `old/` became an opaque `old/`: 1.0's files stay hidden.
    let shown = show(&layer);
    assert!(shown.contains(&format!("{SITE}/old/.wh..wh..opq opaque")), "{shown}");
    assert!(!shown.contains(&format!("{SITE}/.wh.old whiteout")), "{shown}");
    let view = Stack::new(&lower, [&layer]);
    assert_eq!(content(&view, &format!("{SITE}/old/__init__.py")), "V = 2\n");
    assert!(view.node(&format!("{SITE}/old/gone.py")).is_none());
    assert!(view.node(&format!("{SITE}/old/__pycache__")).is_none());
    assert!(matches!(
        view.node(&format!("{SITE}/old-2.0.dist-info/RECORD")).map(|n| n.kind),
        Some(NodeKind::File { .. })
    ));

    // Uninstalling again in the same layer removes 2.0 from the layer
    // itself (no whiteout needed for what only the layer has).
    let removed = uninstall(&lower, &target, "old", &mut layer).unwrap();
    assert!(removed.contains(&format!("{SITE}/old-2.0.dist-info")), "{removed:?}");
    assert!(!show(&layer).contains("old-2.0.dist-info"));
    // Not installed: nothing to do.
    assert_eq!(uninstall(&lower, &target, "never-installed", &mut layer).unwrap(), Vec::<String>::new());
}

/// As pip's `compress_for_rename`: a directory all of whose files go is
/// removed whole, the scripts directory too when it held only them.
#[test]
fn a_directory_left_empty_goes_whole() {
    let mut setup = setup();
    let mut lower = debian();
    let spec = WheelSpec::new("solo", "1")
        .file("solo.py", "")
        .file("solo-1.dist-info/entry_points.txt", "[console_scripts]\nsolo = solo:main\n");
    let wheel = spec.write(setup.dir.path());
    install_wheel(&wheel, &target(), &mut lower, &mut setup.spool, true).unwrap();
    let target = detect(&lower, "pip3", None, PATH, "amd64").unwrap();
    let mut layer = Tree::new();
    let removed = uninstall(&lower, &target, "solo", &mut layer).unwrap();
    // dist-packages held only solo's files, so it goes whole as well.
    assert_eq!(removed, ["usr/local/bin", SITE]);
    assert!(show(&layer).contains("usr/local/.wh.bin whiteout"));
}

#[test]
fn debian_packages_are_not_uninstalled() {
    let image = debian();
    let target = detect(&image, "pip3", None, PATH, "amd64").unwrap();
    let mut layer = Tree::new();
    // six is Debian's, in /usr/lib/python3/dist-packages: pip leaves it.
    assert!(uninstall(&image, &target, "six", &mut layer).unwrap().is_empty());
    assert!(layer.is_empty());
}

#[test]
fn egg_info_without_a_file_list_cannot_be_uninstalled() {
    let mut image = crate::fixture::python_org();
    file(
        &mut image,
        "usr/local/lib/python3.12/site-packages/legacy-1.0.egg-info",
        "Name: legacy\nVersion: 1.0\n",
    );
    file(
        &mut image,
        "usr/local/lib/python3.12/site-packages/eggy-2.0.egg-info/PKG-INFO",
        "Name: eggy\nVersion: 2.0\n",
    );
    let target = detect(&image, "pip", None, PATH, "arm64").unwrap();
    let error = uninstall(&image, &target, "legacy", &mut Tree::new()).unwrap_err();
    assert!(error.to_string().contains("distutils installed project"), "{error}");
    let error = uninstall(&image, &target, "eggy", &mut Tree::new()).unwrap_err();
    assert!(error.to_string().contains("neither /usr/local/lib/python3.12/site-packages/eggy-2.0.egg-info/installed-files.txt nor top_level.txt"), "{error}");
    file(
        &mut image,
        "usr/local/lib/python3.12/site-packages/eggy-2.0.egg-info/installed-files.txt",
        "../eggy.py\nPKG-INFO\n",
    );
    file(&mut image, "usr/local/lib/python3.12/site-packages/eggy.py", "");
    let mut layer = Tree::new();
    let removed = uninstall(&image, &target, "eggy", &mut layer).unwrap();
    assert_eq!(
        removed,
        [
            "usr/local/lib/python3.12/site-packages/eggy-2.0.egg-info".to_owned(),
            "usr/local/lib/python3.12/site-packages/eggy.py".to_owned(),
        ]
    );
    // Without installed-files.txt, top_level.txt names what goes.
    let mut image = crate::fixture::python_org();
    let site = "usr/local/lib/python3.12/site-packages";
    file(&mut image, &format!("{site}/topper-1.0.egg-info/PKG-INFO"), "Name: topper\nVersion: 1.0\n");
    file(&mut image, &format!("{site}/topper-1.0.egg-info/top_level.txt"), "topper\nshared_ns\n");
    file(&mut image, &format!("{site}/topper-1.0.egg-info/namespace_packages.txt"), "shared_ns\n");
    file(&mut image, &format!("{site}/topper/__init__.py"), "");
    file(&mut image, &format!("{site}/shared_ns/__init__.py"), "");
    let target = detect(&image, "pip", None, PATH, "arm64").unwrap();
    let removed = uninstall(&image, &target, "topper", &mut Tree::new()).unwrap();
    assert_eq!(removed, [format!("{site}/topper"), format!("{site}/topper-1.0.egg-info")]);
}

#[test]
fn a_wheel_for_another_platform_is_refused() {
    let mut spec = WheelSpec::new("native", "1").file("native.so", "ELF");
    spec.tag = "cp311-cp311-manylinux_2_17_aarch64".to_owned();
    assert_eq!(
        refused(spec).rsplit_once(": ").map(|(_, rest)| rest.to_owned()).unwrap_or_default(),
        "cp311-cp311-manylinux_2_36_x86_64, cp311-cp311-manylinux_2_35_x86_64, cp311-cp311-manylinux_2_34_x86_64)"
    );
    let mut spec = WheelSpec::new("native", "1").file("native.so", "ELF");
    spec.tag = "cp311-cp311-manylinux_2_17_x86_64".to_owned();
    let mut setup = setup();
    install(&mut setup, &spec, &mut Tree::new()).unwrap();
    let target = target();
    assert_eq!(target.wheel_priority("native-1-cp311-cp311-manylinux_2_36_x86_64.whl"), Some(0));
    assert!(
        target.wheel_priority("x-1-py3-none-any.whl")
            > target.wheel_priority("x-1-cp311-abi3-manylinux_2_17_x86_64.whl")
    );
    assert_eq!(target.wheel_priority("x-1-cp312-cp312-manylinux_2_17_x86_64.whl"), None);
    assert_eq!(target.wheel_priority("x-1-cp311-cp311-musllinux_1_2_x86_64.whl"), None);
}
