//! Target detection over small fake images.

use forge_oci::Tree;
use forge_python::target::{Layout, Libc, PythonVersion};
use forge_python::{detect, TargetError};

use crate::fixture::{self, debian, exe, file, link, python_org, PATH};

#[test]
fn debian_system_python() {
    let image = debian();
    let target = detect(&image, "pip3", None, PATH, "amd64").unwrap();
    // pip3's shebang names /usr/bin/python3: pip writes that, not python3.11.
    assert_eq!(target.executable, "/usr/bin/python3");
    assert_eq!(target.interpreter, "usr/bin/python3.11");
    assert_eq!(target.version, PythonVersion { major: 3, minor: 11 });
    assert_eq!(target.full_version.as_deref(), Some("3.11.2"));
    assert_eq!(target.layout, Layout::DebianSystem);
    assert_eq!(target.libc, Libc::Glibc { major: 2, minor: 36 });
    assert_eq!(target.arch, "x86_64");
    assert_eq!(target.scheme.purelib, "usr/local/lib/python3.11/dist-packages");
    assert_eq!(target.scheme.platlib, "usr/local/lib/python3.11/dist-packages");
    assert_eq!(target.scheme.scripts, "usr/local/bin");
    assert_eq!(target.scheme.data, "usr/local");
    assert_eq!(target.scheme.headers_for("greenlet"), "usr/local/include/python3.11/greenlet");
    assert_eq!(
        target.site_dirs,
        [
            "usr/local/lib/python3.11/dist-packages",
            "usr/lib/python3/dist-packages",
            "usr/lib/python3.11/dist-packages",
            "usr/lib/python3.11"
        ]
    );
    let installed: Vec<_> = target.installed.iter().map(|d| (d.name.as_str(), d.version.as_str())).collect();
    assert_eq!(installed, [("pip", "23.0.1"), ("six", "1.16.0")]);
    assert_eq!(target.externally_managed.as_deref(), Some("usr/lib/python3.11/EXTERNALLY-MANAGED"));
    assert_eq!(target.tags()[0], "cp311-cp311-manylinux_2_36_x86_64");
    assert_eq!(target.uv_python_platform().as_deref(), Some("x86_64-manylinux_2_36"));
    assert_eq!(target.marker_env()["python_full_version"], "3.11.2");
    assert_eq!(target.marker_env()["platform_machine"], "x86_64");
    let env = target.resolve_env().unwrap();
    assert_eq!(
        (env.python_version.as_str(), env.python_platform.as_str()),
        ("3.11.2", "x86_64-manylinux_2_36")
    );
    assert_eq!(env.tags, target.tags());
}

#[test]
fn python_m_pip_uses_the_interpreter_as_named() {
    let image = debian();
    // `python3 -m pip`: found on PATH, as the shell would.
    let target = detect(&image, "python3", Some("python3"), PATH, "amd64").unwrap();
    assert_eq!(target.executable, "/usr/bin/python3");
    let target = detect(&image, "/usr/bin/python3.11", Some("/usr/bin/python3.11"), PATH, "amd64").unwrap();
    assert_eq!(target.executable, "/usr/bin/python3.11");
    // Without pip in the image, `pip install` still finds python3.
    let mut no_pip = debian();
    no_pip.remove("usr/bin/pip3");
    let target = detect(&no_pip, "pip", None, PATH, "amd64").unwrap();
    assert_eq!(target.executable, "/usr/bin/python3");
    assert!(matches!(
        detect(&image, "python3", Some("./python3"), PATH, "amd64"),
        Err(TargetError::RelativeInterpreter(_))
    ));
}

#[test]
fn python_org_image() {
    let image = python_org();
    let target = detect(&image, "pip", None, PATH, "arm64").unwrap();
    assert_eq!(target.executable, "/usr/local/bin/python3");
    assert_eq!(target.interpreter, "usr/local/bin/python3.12");
    assert_eq!(target.layout, Layout::Prefix);
    assert_eq!(target.full_version.as_deref(), Some("3.12.7"));
    assert_eq!(target.libc, Libc::Glibc { major: 2, minor: 36 }, "from GLIBC_2.N in libc.so.6");
    assert_eq!(target.arch, "aarch64");
    assert_eq!(target.scheme.purelib, "usr/local/lib/python3.12/site-packages");
    assert_eq!(target.scheme.scripts, "usr/local/bin");
    assert_eq!(target.scheme.data, "usr/local");
    assert_eq!(target.scheme.headers_for("x"), "usr/local/include/python3.12/x");
    assert_eq!(target.externally_managed, None);
    assert_eq!(target.installed("foo-bar").map(|d| d.display_name.as_str()), Some("Foo_Bar"));
    assert_eq!(target.installed("PIP").map(|d| d.version.as_str()), Some("24.2"));
    assert_eq!(target.tags()[0], "cp312-cp312-manylinux_2_36_aarch64");
    assert_eq!(target.uv_python_platform().as_deref(), Some("aarch64-manylinux_2_36"));
}

#[test]
fn venv_on_path() {
    let mut image = python_org();
    link(&mut image, "opt/venv/bin/python", "/usr/local/bin/python3");
    link(&mut image, "opt/venv/bin/python3", "python");
    exe(&mut image, "opt/venv/bin/pip", "#!/opt/venv/bin/python3\n");
    file(
        &mut image,
        "opt/venv/pyvenv.cfg",
        "home = /usr/local/bin\ninclude-system-site-packages = false\nversion = 3.12.7\n",
    );
    file(
        &mut image,
        "opt/venv/lib/python3.12/site-packages/attrs-23.1.0.dist-info/METADATA",
        "Name: attrs\nVersion: 23.1.0\n",
    );
    let path = format!("/opt/venv/bin:{PATH}");
    let target = detect(&image, "pip", None, &path, "arm64").unwrap();
    assert_eq!(target.executable, "/opt/venv/bin/python3");
    assert_eq!(target.interpreter, "usr/local/bin/python3.12");
    assert_eq!(target.layout, Layout::Venv);
    assert_eq!(target.scheme.purelib, "opt/venv/lib/python3.12/site-packages");
    assert_eq!(target.scheme.scripts, "opt/venv/bin");
    assert_eq!(target.scheme.data, "opt/venv");
    assert_eq!(target.scheme.headers_for("x"), "opt/venv/include/site/python3.12/x");
    // Without the system site-packages, the base's pip is not seen.
    let names: Vec<_> = target.installed.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["attrs"]);
    file(&mut image, "opt/venv/pyvenv.cfg", "home = /usr/local/bin\ninclude-system-site-packages = true\n");
    let target = detect(&image, "pip", None, &path, "arm64").unwrap();
    let names: Vec<_> = target.installed.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["attrs", "foo-bar", "pip"]);
}

#[test]
fn alpine_musl() {
    let mut image = Tree::new();
    file(&mut image, "lib/ld-musl-aarch64.so.1", "\x7fELF");
    file(
        &mut image,
        "lib/apk/db/installed",
        "C:Q1x\nP:busybox\nV:1.36.1-r15\n\nC:Q1y\nP:musl\nV:1.2.4_git20230717-r4\nA:aarch64\n\n",
    );
    link(&mut image, "usr/bin/python3", "python3.11");
    exe(&mut image, "usr/bin/python3.11", "\x7fELF");
    file(&mut image, "usr/lib/python3.11/os.py", "");
    let target = detect(&image, "pip3", None, PATH, "arm64/v8").unwrap();
    assert_eq!(target.libc, Libc::Musl { major: 1, minor: 2 });
    assert_eq!(target.layout, Layout::Prefix);
    assert_eq!(target.scheme.purelib, "usr/lib/python3.11/site-packages");
    assert_eq!(target.scheme.scripts, "usr/bin");
    assert_eq!(target.tags()[0], "cp311-cp311-musllinux_1_2_aarch64");
    assert_eq!(target.uv_python_platform().as_deref(), Some("aarch64-unknown-linux-musl"));
    // Without the apk database the musl version is unknown: refused.
    image.remove("lib/apk/db/installed");
    let error = detect(&image, "pip3", None, PATH, "arm64").unwrap_err();
    assert!(matches!(error, TargetError::MuslVersion { .. }), "{error}");
}

#[test]
fn errors_say_what_was_looked_for() {
    let error = detect(&Tree::new(), "pip", None, PATH, "amd64").unwrap_err();
    assert_eq!(
        error.to_string(),
        format!("no Python interpreter in the image for `pip`: looked for the shebang of `pip`, python3, python on PATH `{PATH}`")
    );
    let error = detect(&debian(), "pip", None, PATH, "mips64le").unwrap_err();
    assert!(error.to_string().contains("`mips64le` is not supported"), "{error}");
    // An interpreter in a layout we do not know.
    let mut odd = Tree::new();
    exe(&mut odd, "srv/python3.11", "\x7fELF");
    file(&mut odd, "var/lib/dpkg/status", fixture::DPKG_STATUS);
    let error = detect(&odd, "python3", Some("/srv/python3.11"), PATH, "amd64").unwrap_err();
    assert!(matches!(error, TargetError::UnknownLayout { .. }), "{error}");
    assert!(error.to_string().contains("/lib/python3.11/os.py"), "{error}");
    // No C library.
    let mut no_libc = debian();
    no_libc.remove("var/lib/dpkg/status");
    no_libc.remove("usr/lib/x86_64-linux-gnu/libc.so.6");
    let error = detect(&no_libc, "pip3", None, PATH, "amd64").unwrap_err();
    assert!(
        error.to_string().starts_with("no C library in the image: looked for /lib/ld-musl-x86_64.so.1"),
        "{error}"
    );
}

#[test]
fn pip_shebangs_of_every_form() {
    // `#!/usr/bin/env python3`: the name then, looked up on PATH.
    let mut image = python_org();
    exe(&mut image, "usr/local/bin/pip", "#!/usr/bin/env python3\n");
    let target = detect(&image, "pip", None, PATH, "arm64").unwrap();
    assert_eq!(target.executable, "/usr/local/bin/python3");
    // distlib's /bin/sh trampoline for a long or spaced interpreter path.
    let long = format!("/opt/{}/bin/python3.12", "p".repeat(120));
    exe(&mut image, long.trim_start_matches('/'), "\x7fELF");
    file(&mut image, &format!("opt/{}/lib/python3.12/os.py", "p".repeat(120)), "");
    exe(&mut image, "usr/local/bin/pip", &format!("#!/bin/sh\n'''exec' {long} \"$0\" \"$@\"\n' '''\n"));
    let target = detect(&image, "pip", None, PATH, "arm64").unwrap();
    assert_eq!(target.executable, long);
    assert_eq!(target.layout, Layout::Prefix);
    // pip3.12 without a pip script: python3.12 on PATH.
    let target = detect(&python_org(), "pip3.12", None, PATH, "arm64").unwrap();
    assert_eq!(target.executable, "/usr/local/bin/python3.12");
}

#[test]
fn glibc_from_symbol_versions() {
    let mut image = python_org();
    // 2.3.4 counts as 2.3; the highest wins, in any order.
    file(
        &mut image,
        "usr/lib/aarch64-linux-gnu/libc.so.6",
        "GLIBC_2.3.4\0GLIBC_2.28\0GLIBC_2.17\0GLIBC_2.\0",
    );
    let target = detect(&image, "pip", None, PATH, "arm64").unwrap();
    assert_eq!(target.libc, Libc::Glibc { major: 2, minor: 28 });
    assert_eq!(target.uv_python_platform().as_deref(), Some("aarch64-manylinux_2_28"));
    // glibc older than any manylinux uv names: no uv platform, tags still.
    file(&mut image, "usr/lib/aarch64-linux-gnu/libc.so.6", "GLIBC_2.12\0");
    let target = detect(&image, "pip", None, PATH, "arm64").unwrap();
    assert_eq!(target.uv_python_platform(), None);
    assert_eq!(target.tags()[0], "cp312-cp312-linux_aarch64");
}
