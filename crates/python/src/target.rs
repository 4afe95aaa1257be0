//! The Python a `RUN pip install` would install for, read from the image's
//! files alone (nothing from the image is executed): the interpreter and
//! the path pip would know it by, its version and ABI, the platform (the
//! architecture from the image config, the C library from the image's
//! files), the install scheme pip would use there, and the distributions
//! already installed on its `sys.path`.
//!
//! Paths in a [`Target`] are image paths without a leading `/`
//! (`usr/local/lib/python3.11/dist-packages`), as [`ImageFiles`] takes
//! them, except [`Target::executable`], which is the absolute path written
//! into shebangs.

use std::collections::BTreeMap;
use std::io;

use forge_oci::files::{self, ImageFiles};
use forge_oci::NodeKind;

use crate::dist::parse_metadata;
use crate::index::normalize_name;

/// The largest text file read for detection (a `METADATA`, a dpkg
/// `status`, a `pyvenv.cfg`).
const TEXT_LIMIT: u64 = 64 << 20;
/// The largest C library scanned for its `GLIBC_2.N` symbol versions.
const LIBC_LIMIT: u64 = 64 << 20;

/// Why the target could not be detected.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// No interpreter was found where pip's own would be.
    #[error("no Python interpreter in the image for `{program}`: looked for {looked_for} on PATH `{path}`")]
    NoInterpreter {
        /// The program of the `RUN` (`pip3`, `python3`).
        program: String,
        /// What was looked for (`python3.11, python3, python`).
        looked_for: String,
        /// The PATH searched.
        path: String,
    },
    /// The interpreter is named relative to an unknown working directory.
    #[error("the interpreter `{0}` is a relative path; name it by an absolute path or a name on PATH")]
    RelativeInterpreter(String),
    /// A file of the image could not be read.
    #[error("reading /{path} in the image")]
    Read {
        /// The image path.
        path: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The Python version could not be told from the image's files.
    #[error("cannot tell the Python version of /{interpreter}: looked for a `python3.N` name, {looked_for}")]
    UnknownVersion {
        /// The interpreter (resolved).
        interpreter: String,
        /// What was looked for.
        looked_for: String,
    },
    /// The interpreter is not CPython 3.
    #[error("/{interpreter} is Python {version}; only CPython 3 is supported")]
    UnsupportedPython {
        /// The interpreter (resolved).
        interpreter: String,
        /// The version found.
        version: String,
    },
    /// The image architecture has no Python platform tag we know.
    #[error("image architecture `{0}` is not supported for pip installs (supported: amd64, arm64, 386, arm/v7, ppc64le, s390x)")]
    Architecture(String),
    /// No C library was found.
    #[error("no C library in the image: looked for {looked_for}")]
    NoLibc {
        /// What was looked for.
        looked_for: String,
    },
    /// A musl image whose musl version could not be read.
    #[error("the image uses musl (/{loader}), but its version is not recorded in /lib/apk/db/installed (package `musl`); musllinux wheels cannot be chosen")]
    MuslVersion {
        /// The musl loader found.
        loader: String,
    },
    /// The interpreter's layout is none of those we know pip's scheme for.
    #[error("unknown Python layout for /{interpreter}: looked for {looked_for}")]
    UnknownLayout {
        /// The interpreter (resolved).
        interpreter: String,
        /// What was looked for.
        looked_for: String,
    },
}

fn read_error(path: &str) -> impl FnOnce(io::Error) -> TargetError + '_ {
    move |source| TargetError::Read { path: path.to_owned(), source }
}

/// A `3.N` Python version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PythonVersion {
    /// `3`.
    pub major: u32,
    /// `N`.
    pub minor: u32,
}

impl std::fmt::Display for PythonVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// The C library of the image, with its version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Libc {
    /// glibc `major.minor` (manylinux).
    Glibc {
        /// `2`.
        major: u32,
        /// `N` of `2.N`.
        minor: u32,
    },
    /// musl `major.minor` (musllinux).
    Musl {
        /// `1`.
        major: u32,
        /// `N` of `1.N`.
        minor: u32,
    },
}

/// Which kind of installation the interpreter is; it decides the scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Debian's or Ubuntu's `/usr/bin/python3.N` (with
    /// `/usr/lib/python3/dist-packages`): pip installs into `/usr/local`,
    /// `dist-packages` (Debian's `posix_local` scheme).
    DebianSystem,
    /// A self-contained prefix (`/usr/local` of the official `python`
    /// images, `/opt/conda`, `/usr` elsewhere): `site-packages` there.
    Prefix,
    /// A virtual environment (`pyvenv.cfg`).
    Venv,
}

/// Where `pip install` puts each kind of file (image paths, no leading `/`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scheme {
    /// Pure-Python modules.
    pub purelib: String,
    /// Modules with compiled extensions.
    pub platlib: String,
    /// Scripts and entry points.
    pub scripts: String,
    /// `.data/data/` files (a prefix: `share/...` below it).
    pub data: String,
    /// The directory each distribution's headers go below, in a
    /// sub-directory named after it (see [`Scheme::headers_for`]).
    pub include: String,
}

impl Scheme {
    /// The scheme of a layout whose pure and compiled modules share one
    /// site directory (every layout we know): `site`, then `scripts`,
    /// `data` and `include` as the fields.
    fn one_site(site: String, scripts: String, data: String, include: String) -> Scheme {
        Scheme { purelib: site.clone(), platlib: site, scripts, data, include }
    }

    /// Where the headers of the distribution `name` go: `include/<name>`,
    /// as pip's `get_scheme(dist_name)` gives them.
    pub fn headers_for(&self, name: &str) -> String {
        format!("{}/{name}", self.include)
    }
}

/// A distribution already installed on the interpreter's `sys.path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstalledDist {
    /// The name, PEP 503-normalised (`pyyaml`).
    pub name: String,
    /// The name as its metadata spells it (`PyYAML`).
    pub display_name: String,
    /// The version as its metadata gives it.
    pub version: String,
    /// Its `.dist-info` or `.egg-info` (directory or file), an image path.
    pub metadata_path: String,
}

impl InstalledDist {
    /// Whether it is a `.dist-info` (as pip installs) rather than an
    /// `.egg-info` (setuptools, distutils, Debian's packages).
    pub fn is_dist_info(&self) -> bool {
        self.metadata_path.ends_with(".dist-info")
    }

    /// The directory holding its metadata (the `sys.path` entry).
    pub fn site_dir(&self) -> &str {
        self.metadata_path.rsplit_once('/').map_or("", |(dir, _)| dir)
    }
}

/// The Python of the image that a `pip install` installs for; see the
/// [module docs](self).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The interpreter as `sys.executable` would name it (absolute, not
    /// resolved), what pip writes into shebangs: `/usr/bin/python3`.
    pub executable: String,
    /// The interpreter file, symlinks resolved: `usr/bin/python3.11`.
    pub interpreter: String,
    /// `3.N`.
    pub version: PythonVersion,
    /// The full version (`3.11.2`) when the image records it (a
    /// `patchlevel.h`, dpkg's status); `None` otherwise.
    pub full_version: Option<String>,
    /// A free-threaded build (`python3.13t`, ABI `cp313t`).
    pub free_threaded: bool,
    /// The architecture as Python's platform tags spell it (`x86_64`).
    pub arch: String,
    /// The C library and its version.
    pub libc: Libc,
    /// Which kind of installation the interpreter is.
    pub layout: Layout,
    /// Where pip would install.
    pub scheme: Scheme,
    /// The directories of `sys.path` searched for installed distributions,
    /// in `sys.path` order.
    pub site_dirs: Vec<String>,
    /// The distributions found there, sorted by normalised name; a name
    /// found twice keeps the first on `sys.path` (what `import` and pip see).
    pub installed: Vec<InstalledDist>,
    /// The `EXTERNALLY-MANAGED` marker (PEP 668) of the interpreter's
    /// standard library when there is one and the target is not a venv:
    /// pip refuses to install there without `--break-system-packages`.
    pub externally_managed: Option<String>,
    /// The version of the pip that would run the install: the image's
    /// (the `pip` distribution found above), `None` when the image has
    /// none. The entry point scripts written follow it
    /// ([`crate::wheel::ScriptTemplate`]); a caller whose `RUN` upgraded pip
    /// first sets the new version here.
    pub pip_version: Option<String>,
}

/// The architecture of Python's platform tags for an OCI architecture
/// (`amd64`, `arm64`, `386`, `arm/v7`, with or without a variant).
pub fn python_arch(oci_arch: &str) -> Result<&'static str, TargetError> {
    let (arch, variant) = oci_arch.split_once('/').unwrap_or((oci_arch, ""));
    Ok(match (arch, variant) {
        ("amd64", "" | "v1" | "v2" | "v3" | "v4") => "x86_64",
        ("arm64", "" | "v8") => "aarch64",
        ("386", "") => "i686",
        ("arm", "" | "v7") => "armv7l",
        ("ppc64le", "") => "ppc64le",
        ("s390x", "") => "s390x",
        _ => return Err(TargetError::Architecture(oci_arch.to_owned())),
    })
}

/// The Debian architecture of a Python platform architecture (for the
/// multiarch library directory and dpkg's status).
fn debian_arch(arch: &str) -> (&'static str, &'static str) {
    match arch {
        "x86_64" => ("amd64", "x86_64-linux-gnu"),
        "aarch64" => ("arm64", "aarch64-linux-gnu"),
        "i686" => ("i386", "i386-linux-gnu"),
        "armv7l" => ("armhf", "arm-linux-gnueabihf"),
        "ppc64le" => ("ppc64el", "powerpc64le-linux-gnu"),
        _ => ("s390x", "s390x-linux-gnu"),
    }
}

/// Detects the target of a `pip install` in the image `files`; see the
/// [module docs](self).
///
/// `program` is the `RUN`'s program word (`pip3`, `/opt/venv/bin/pip`,
/// `python3`), `python` the interpreter when the `RUN` said `python3 -m
/// pip`, `path_env` the image's `PATH`, `oci_arch` the image config's
/// architecture (with its variant: `arm/v7`).
pub fn detect(
    files: &dyn ImageFiles,
    program: &str,
    python: Option<&str>,
    path_env: &str,
    oci_arch: &str,
) -> Result<Target, TargetError> {
    let arch = python_arch(oci_arch)?;
    let executable = find_interpreter(files, program, python, path_env)?;
    let interpreter = files::resolve(files, &executable).ok_or_else(|| TargetError::NoInterpreter {
        program: program.to_owned(),
        looked_for: executable.clone(),
        path: path_env.to_owned(),
    })?;
    let venv = find_venv(files, &executable)?;
    let real_bin = parent(&interpreter);
    let prefix = parent(real_bin).to_owned();
    let (version, free_threaded) = python_version(files, &interpreter, &prefix, venv.as_ref())?;
    let libdir = format!("python{version}{}", if free_threaded { "t" } else { "" });
    let stdlib = join(&prefix, &format!("lib/{libdir}"));
    let has_stdlib = is_file(files, &format!("{stdlib}/os.py"));
    let debian_site = "usr/lib/python3/dist-packages";
    let debian = prefix == "usr" && is_dir(files, debian_site);

    let (layout, scheme) = if let Some(venv) = &venv {
        let scheme = Scheme::one_site(
            format!("{}/lib/{libdir}/site-packages", venv.dir),
            format!("{}/bin", venv.dir),
            venv.dir.clone(),
            // pip's historical header path inside a virtual environment.
            format!("{}/include/site/python{version}", venv.dir),
        );
        (Layout::Venv, scheme)
    } else if debian {
        let scheme = Scheme::one_site(
            format!("usr/local/lib/python{version}/dist-packages"),
            "usr/local/bin".to_owned(),
            "usr/local".to_owned(),
            format!("usr/local/include/python{version}"),
        );
        (Layout::DebianSystem, scheme)
    } else if has_stdlib {
        let scheme = Scheme::one_site(
            format!("{stdlib}/site-packages"),
            join(&prefix, "bin"),
            prefix.clone(),
            join(&prefix, &format!("include/{libdir}")),
        );
        (Layout::Prefix, scheme)
    } else {
        return Err(TargetError::UnknownLayout {
            interpreter,
            looked_for: format!(
                "a pyvenv.cfg in /{dir} or /{up}, /{debian_site} (Debian's system Python), /{stdlib}/os.py (a Python prefix)",
                dir = parent(executable.trim_start_matches('/')),
                up = parent(parent(executable.trim_start_matches('/'))),
            ),
        });
    };
    let mut site_dirs = vec![scheme.purelib.clone()];
    // The rest of sys.path: the base installation's directories (for a
    // venv only when it includes the system site-packages), then the
    // standard library itself.
    let include_base = venv.as_ref().is_none_or(|v| v.system_site_packages);
    if include_base {
        if debian {
            site_dirs.extend([
                format!("usr/local/lib/python{version}/dist-packages"),
                debian_site.to_owned(),
                format!("usr/lib/python{version}/dist-packages"),
            ]);
        } else if has_stdlib {
            site_dirs.push(format!("{stdlib}/site-packages"));
        }
    }
    if has_stdlib {
        site_dirs.push(stdlib.clone());
    }
    let mut seen = std::collections::BTreeSet::new();
    site_dirs.retain(|d| seen.insert(d.clone()));

    let externally_managed = if venv.is_none() {
        Some(format!("{stdlib}/EXTERNALLY-MANAGED")).filter(|m| is_file(files, m))
    } else {
        None
    };
    let libc = detect_libc(files, arch)?;
    let full_version = full_version(files, &prefix, version, &libdir, debian_arch(arch).0)?;
    let installed = installed_dists(files, &site_dirs)?;
    let pip_version = installed.iter().find(|d| d.name == "pip").map(|d| d.version.clone());
    Ok(Target {
        executable,
        interpreter,
        version,
        full_version,
        free_threaded,
        arch: arch.to_owned(),
        libc,
        layout,
        scheme,
        site_dirs,
        installed,
        externally_managed,
        pip_version,
    })
}

impl Target {
    /// The installed distribution `name` (any spelling), if any.
    pub fn installed(&self, name: &str) -> Option<&InstalledDist> {
        let name = normalize_name(name);
        self.installed.iter().find(|d| d.name == name)
    }

    /// The directory a wheel's root goes to (`Root-Is-Purelib`).
    pub fn lib_dir(&self, root_is_purelib: bool) -> &str {
        if root_is_purelib {
            &self.scheme.purelib
        } else {
            &self.scheme.platlib
        }
    }
}

/// `base/rest` for image paths (`rest` alone below the root, `""`).
pub(crate) fn join(base: &str, rest: &str) -> String {
    if base.is_empty() {
        rest.to_owned()
    } else {
        format!("{base}/{rest}")
    }
}

/// The parent of an image path (`""` for a top-level name).
fn parent(path: &str) -> &str {
    path.trim_end_matches('/').rsplit_once('/').map_or("", |(dir, _)| dir)
}

fn is_file(files: &dyn ImageFiles, path: &str) -> bool {
    files::resolve(files, path)
        .and_then(|real| files.node(&real))
        .is_some_and(|n| matches!(n.kind, NodeKind::File { .. }))
}

fn is_dir(files: &dyn ImageFiles, path: &str) -> bool {
    files::resolve(files, path).and_then(|real| files.node(&real)).is_some_and(|n| n.is_dir())
}

fn is_executable_file(files: &dyn ImageFiles, path: &str) -> bool {
    files::resolve(files, path)
        .and_then(|real| files.node(&real))
        .is_some_and(|n| matches!(n.kind, NodeKind::File { .. }) && n.mode & 0o111 != 0)
}

/// `name` looked up on `path_env` as `execvp` would: the first directory
/// holding an executable file of that name. Returns the path as found
/// (absolute, symlinks not resolved), as the shell would pass it on.
fn which(files: &dyn ImageFiles, name: &str, path_env: &str) -> Option<String> {
    path_env
        .split(':')
        .filter(|dir| dir.starts_with('/'))
        .map(|dir| format!("{}/{name}", dir.trim_end_matches('/')))
        .find(|candidate| is_executable_file(files, candidate))
}

/// The interpreter's `sys.executable`; see [`detect`].
///
/// Python sets `sys.executable` from `argv[0]` without resolving symlinks:
/// the path as written when it has a `/`, the first match on `PATH`
/// otherwise. A `pip` script is started by the kernel through its
/// shebang, which passes the shebang's path as `argv[0]`; so pip running
/// from `#!/usr/bin/python3` writes `#!/usr/bin/python3` into the scripts
/// it installs, even though `/usr/bin/python3` is a symlink to
/// `python3.11`. We mimic exactly that.
fn find_interpreter(
    files: &dyn ImageFiles,
    program: &str,
    python: Option<&str>,
    path_env: &str,
) -> Result<String, TargetError> {
    let lookup = |name: &str| -> Result<Option<String>, TargetError> {
        if name.starts_with('/') {
            Ok(Some(files::normalize(name)).filter(|p| is_file(files, p)).map(|p| format!("/{p}")))
        } else if name.contains('/') {
            Err(TargetError::RelativeInterpreter(name.to_owned()))
        } else {
            Ok(which(files, name, path_env))
        }
    };
    let not_found = |looked_for: String| TargetError::NoInterpreter {
        program: program.to_owned(),
        looked_for,
        path: path_env.to_owned(),
    };
    if let Some(python) = python {
        return lookup(python)?.ok_or_else(|| not_found(python.to_owned()));
    }
    if let Some(pip) = lookup(program)? {
        if let Some(interpreter) = shebang_interpreter(files, &pip)? {
            if let Some(found) = lookup(&interpreter)? {
                return Ok(found);
            }
        }
    }
    let base = program.rsplit('/').next().unwrap_or(program);
    let mut candidates = Vec::new();
    if let Some(version) = base.strip_prefix("pip").filter(|v| v.starts_with("3.")) {
        candidates.push(format!("python{version}"));
    }
    candidates.extend(["python3".to_owned(), "python".to_owned()]);
    for candidate in &candidates {
        if let Some(found) = lookup(candidate)? {
            return Ok(found);
        }
    }
    Err(not_found(format!("the shebang of `{program}`, {}", candidates.join(", "))))
}

/// The interpreter a script's shebang names: `#!/usr/bin/python3`,
/// `#!/usr/bin/env python3` (the name then), or distlib's `/bin/sh`
/// trampoline for long paths (`'''exec' /long/path/python "$0" "$@"`).
fn shebang_interpreter(files: &dyn ImageFiles, script: &str) -> Result<Option<String>, TargetError> {
    let Some(real) = files::resolve(files, script) else { return Ok(None) };
    let Some(reader) = files.open(&real).map_err(read_error(&real))? else { return Ok(None) };
    let mut head = Vec::new();
    io::Read::read_to_end(&mut io::Read::take(reader, 1024), &mut head).map_err(read_error(&real))?;
    let text = String::from_utf8_lossy(&head);
    let mut lines = text.lines();
    let Some(first) = lines.next().and_then(|l| l.strip_prefix("#!")) else { return Ok(None) };
    let mut words = first.split_whitespace();
    let Some(program) = words.next() else { return Ok(None) };
    if program == "/bin/sh" {
        let exec = lines.next().and_then(|l| l.strip_prefix("'''exec' "));
        return Ok(exec.and_then(|rest| rest.split_whitespace().next()).map(str::to_owned));
    }
    if program.ends_with("/env") {
        return Ok(words.find(|w| !w.starts_with('-')).map(str::to_owned));
    }
    Ok(Some(program.to_owned()))
}

/// A virtual environment around the interpreter.
struct Venv {
    /// Its directory (holding `pyvenv.cfg`).
    dir: String,
    /// `include-system-site-packages = true`.
    system_site_packages: bool,
    /// `version = 3.N.M` / `version_info = 3.N.M...`.
    version: Option<String>,
}

/// `pyvenv.cfg` next to the executable or one directory up, as Python's
/// `getpath` looks for it (from the executable as invoked, not resolved).
fn find_venv(files: &dyn ImageFiles, executable: &str) -> Result<Option<Venv>, TargetError> {
    let bin = parent(executable.trim_start_matches('/'));
    for dir in [bin, parent(bin)] {
        let cfg = if dir.is_empty() { "pyvenv.cfg".to_owned() } else { format!("{dir}/pyvenv.cfg") };
        let Some(text) = files::read_to_string(files, &cfg, TEXT_LIMIT).map_err(read_error(&cfg))? else {
            continue;
        };
        let mut venv = Venv { dir: dir.to_owned(), system_site_packages: false, version: None };
        for line in text.lines() {
            let Some((key, value)) = line.split_once('=') else { continue };
            let (key, value) = (key.trim(), value.trim());
            match key {
                "include-system-site-packages" => {
                    venv.system_site_packages = value.eq_ignore_ascii_case("true")
                }
                "version" | "version_info" if venv.version.is_none() => venv.version = Some(value.to_owned()),
                _ => {}
            }
        }
        return Ok(Some(venv));
    }
    Ok(None)
}

/// `3.N` (and `t`) from `python3.N[t]`.
fn parse_python_name(name: &str) -> Option<(PythonVersion, bool)> {
    let rest = name.strip_prefix("python")?;
    let (rest, free_threaded) = match rest.strip_suffix('t') {
        Some(rest) => (rest, true),
        None => (rest, false),
    };
    let (major, minor) = rest.split_once('.')?;
    let version = PythonVersion { major: major.parse().ok()?, minor: minor.parse().ok()? };
    Some((version, free_threaded))
}

/// The version from the interpreter's name, else from the standard
/// library directory or `libpython3.N` of its prefix, else a venv's
/// `pyvenv.cfg`.
fn python_version(
    files: &dyn ImageFiles,
    interpreter: &str,
    prefix: &str,
    venv: Option<&Venv>,
) -> Result<(PythonVersion, bool), TargetError> {
    let name = interpreter.rsplit('/').next().unwrap_or(interpreter);
    let lib = if prefix.is_empty() { "lib".to_owned() } else { format!("{prefix}/lib") };
    let found = parse_python_name(name)
        .or_else(|| {
            // One standard library in the prefix (`lib/python3.N/os.py`).
            let versions: Vec<_> = files
                .list(&files::resolve(files, &lib).unwrap_or_else(|| lib.clone()))
                .iter()
                .filter(|entry| is_file(files, &format!("{lib}/{entry}/os.py")))
                .filter_map(|entry| parse_python_name(entry))
                .collect();
            (versions.len() == 1).then(|| versions[0])
        })
        .or_else(|| {
            let versions: Vec<_> = files
                .list(&files::resolve(files, &lib).unwrap_or_else(|| lib.clone()))
                .iter()
                .filter_map(|entry| entry.strip_prefix("lib").and_then(|e| e.split(".so").next()))
                .filter_map(parse_python_name)
                .collect();
            (versions.len() == 1).then(|| versions[0])
        })
        .or_else(|| {
            let version = venv?.version.as_deref()?;
            let mut parts = version.split('.');
            let major = parts.next()?.parse().ok()?;
            let minor = parts.next()?.parse().ok()?;
            Some((PythonVersion { major, minor }, false))
        });
    let Some((version, free_threaded)) = found else {
        return Err(TargetError::UnknownVersion {
            interpreter: interpreter.to_owned(),
            looked_for: format!("/{lib}/python3.N/os.py, /{lib}/libpython3.N.so, a pyvenv.cfg `version`"),
        });
    };
    if version.major != 3 {
        return Err(TargetError::UnsupportedPython {
            interpreter: interpreter.to_owned(),
            version: version.to_string(),
        });
    }
    Ok((version, free_threaded))
}

/// The full version from `include/python3.N/patchlevel.h` of the prefix,
/// else from dpkg's status (`libpython3.N-minimal`, `python3.N-minimal`).
fn full_version(
    files: &dyn ImageFiles,
    prefix: &str,
    version: PythonVersion,
    libdir: &str,
    deb_arch: &str,
) -> Result<Option<String>, TargetError> {
    let include = if prefix.is_empty() { "include".to_owned() } else { format!("{prefix}/include") };
    for dir in [format!("{include}/{libdir}"), format!("usr/local/include/{libdir}")] {
        let header = format!("{dir}/patchlevel.h");
        let Some(text) = files::read_to_string(files, &header, TEXT_LIMIT).map_err(read_error(&header))?
        else {
            continue;
        };
        let defined = text.lines().find_map(|l| {
            let rest = l.trim().strip_prefix("#define")?.trim_start().strip_prefix("PY_VERSION")?;
            rest.trim().strip_prefix('"')?.split('"').next().map(str::to_owned)
        });
        if defined.is_some() {
            return Ok(defined);
        }
    }
    let packages = [format!("libpython{version}-minimal"), format!("python{version}-minimal")];
    for package in &packages {
        if let Some(upstream) = dpkg_upstream(files, package, deb_arch)? {
            // `3.11.2`, without a `~rc1` or `+dfsg` suffix.
            let upstream = upstream.split(['~', '+']).next().unwrap_or(&upstream);
            if upstream.starts_with(&format!("{version}.")) {
                return Ok(Some(upstream.to_owned()));
            }
        }
    }
    Ok(None)
}

const DPKG_STATUS: &str = "var/lib/dpkg/status";

/// The upstream version of the package `name` (of `arch` or `all`) that
/// dpkg's status has installed.
fn dpkg_upstream(files: &dyn ImageFiles, name: &str, arch: &str) -> Result<Option<String>, TargetError> {
    let Some(text) =
        files::read_to_string(files, DPKG_STATUS, TEXT_LIMIT).map_err(read_error(DPKG_STATUS))?
    else {
        return Ok(None);
    };
    // A status file the parser refuses is treated as having no answer: the
    // other sources of the same fact are tried next.
    let Ok(status) = forge_debian::status::StatusDb::parse(&text, DPKG_STATUS) else { return Ok(None) };
    Ok(status.installed_package(name, arch).map(|p| p.version.upstream().to_owned()))
}

/// `major.minor` at the start of an upstream version (`2.36`, `1.2.4_git2023`).
fn major_minor(version: &str) -> Option<(u32, u32)> {
    let mut parts = version.split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// The image's C library: musl when its loader is there (version from
/// Alpine's package database), else glibc (version from dpkg's `libc6`,
/// else the highest `GLIBC_2.N` symbol version in `libc.so.6`).
fn detect_libc(files: &dyn ImageFiles, arch: &str) -> Result<Libc, TargetError> {
    let musl_arch = match arch {
        "i686" => "i386",
        "armv7l" => "armhf",
        other => other,
    };
    let loader = format!("lib/ld-musl-{musl_arch}.so.1");
    if files::resolve(files, &loader).is_some() {
        let db = "lib/apk/db/installed";
        let text = files::read_to_string(files, db, TEXT_LIMIT).map_err(read_error(db))?.unwrap_or_default();
        let version = text.split("\n\n").find_map(|entry| {
            let mut lines = entry.lines();
            lines.clone().any(|l| l == "P:musl").then(|| lines.find_map(|l| l.strip_prefix("V:")))?
        });
        return match version.and_then(major_minor) {
            Some((major, minor)) => Ok(Libc::Musl { major, minor }),
            None => Err(TargetError::MuslVersion { loader }),
        };
    }
    let (deb_arch, triplet) = debian_arch(arch);
    if let Some((major, minor)) = dpkg_upstream(files, "libc6", deb_arch)?.as_deref().and_then(major_minor) {
        return Ok(Libc::Glibc { major, minor });
    }
    let candidates = [
        format!("lib/{triplet}/libc.so.6"),
        format!("usr/lib/{triplet}/libc.so.6"),
        "lib64/libc.so.6".to_owned(),
        "usr/lib64/libc.so.6".to_owned(),
        "lib/libc.so.6".to_owned(),
        "usr/lib/libc.so.6".to_owned(),
    ];
    for candidate in &candidates {
        let Some(bytes) = files::read(files, candidate, LIBC_LIMIT).map_err(read_error(candidate))? else {
            continue;
        };
        if let Some((major, minor)) = highest_glibc_version(&bytes) {
            return Ok(Libc::Glibc { major, minor });
        }
    }
    Err(TargetError::NoLibc {
        looked_for: format!(
            "/{loader} (musl), package libc6 in /{DPKG_STATUS}, `GLIBC_2.N` in {}",
            candidates.iter().map(|c| format!("/{c}")).collect::<Vec<_>>().join(", ")
        ),
    })
}

/// The highest `GLIBC_2.N` symbol version named in a `libc.so.6`.
fn highest_glibc_version(bytes: &[u8]) -> Option<(u32, u32)> {
    let needle = b"GLIBC_2.";
    let mut best: Option<(u32, u32)> = None;
    let mut at = 0;
    while let Some(found) = bytes[at..].windows(needle.len()).position(|w| w == needle) {
        let start = at + found + needle.len();
        let digits = bytes[start..].iter().take_while(|b| b.is_ascii_digit()).count();
        // The version string ends there (`GLIBC_2.36\0`), not inside a
        // longer name like `GLIBC_2.3.4` (which still counts as 2.3).
        if let Some(minor) =
            std::str::from_utf8(&bytes[start..start + digits]).ok().and_then(|d| d.parse().ok())
        {
            best = best.max(Some((2, minor)));
        }
        at = start;
    }
    best
}

/// The distributions in `site_dirs`, first on `sys.path` winning.
pub(crate) fn installed_dists(
    files: &dyn ImageFiles,
    site_dirs: &[String],
) -> Result<Vec<InstalledDist>, TargetError> {
    let mut found: BTreeMap<String, InstalledDist> = BTreeMap::new();
    for dir in site_dirs {
        let Some(real) = files::resolve(files, dir) else { continue };
        for entry in files.list(&real) {
            let (stem, metadata_file) = if let Some(stem) = entry.strip_suffix(".dist-info") {
                (stem, "METADATA")
            } else if let Some(stem) = entry.strip_suffix(".egg-info") {
                (stem, "PKG-INFO")
            } else {
                continue;
            };
            let path = format!("{dir}/{entry}");
            let metadata =
                if is_dir(files, &path) { format!("{path}/{metadata_file}") } else { path.clone() };
            let text = files::read_to_string(files, &metadata, TEXT_LIMIT).map_err(read_error(&metadata))?;
            let parsed = text.as_deref().map(parse_metadata);
            // The directory name (`name-version`) when the metadata lacks them.
            let (stem_name, stem_version) = stem.split_once('-').unwrap_or((stem, ""));
            let display_name =
                parsed.as_ref().and_then(|m| m.name.clone()).unwrap_or_else(|| stem_name.to_owned());
            let version =
                parsed.as_ref().and_then(|m| m.version.clone()).unwrap_or_else(|| stem_version.to_owned());
            let name = normalize_name(&display_name);
            found.entry(name.clone()).or_insert(InstalledDist {
                name,
                display_name,
                version,
                metadata_path: path,
            });
        }
    }
    Ok(found.into_values().collect())
}
