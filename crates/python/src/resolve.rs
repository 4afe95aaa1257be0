//! `pip install` requirements resolved for the image's interpreter, not
//! the host's: `uv pip compile` with the target's `--python-version` and
//! `--python-platform`, wheels only, in an isolated uv cache and without
//! uv's configuration files or `UV_*` variables of the caller.
//!
//! `uv pip compile` wants an interpreter even when told the target's
//! version and platform (it would build sdists with it; we never build).
//! We hand it a stand-in rather than whatever Python the host has: a
//! `/bin/sh` script that answers uv's interpreter query with a fixed
//! description of the target (CPython, its version, architecture and
//! libc). So no host Python is needed, none is run, and the markers uv
//! evaluates are the target's. The answer's shape is that of the pinned
//! [`crate::uv::UV_VERSION`]; another uv (`PLUGIN_FORGE_UV`) may refuse
//! it, and says so in the error.
//!
//! pip keeps an installed version that satisfies a requirement (unless
//! `--upgrade` names it): the image's installed distributions are given to
//! uv as preferences (an existing output lock), `--upgrade` becomes
//! `--upgrade-package` for each requirement named, and what is already
//! installed at the resolved version is left out of the result. uv's
//! `pylock.toml` (PEP 751) gives each package's wheel with URL, size and
//! SHA-256; where it lists several we take the one whose best tag ranks
//! first among the target's tags.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use forge_digest::Digest;
use serde::Deserialize;

use crate::index::{self, normalize_name, NewestWheel, Version, WheelName};
use crate::resolve_error::{MissingWheel, ResolveError};
use crate::target::Target;
use crate::uv::Uv;

/// The index pip uses when none is given.
pub const DEFAULT_INDEX: &str = "https://pypi.org/simple";

/// What a `pip install` asks for, with its files' contents already read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PipRequest {
    /// Requirement specifiers (`pkg`, `pkg==1.2`, `pillow<7`, `pkg[extra]`).
    pub requirements: Vec<String>,
    /// `-r FILE`: the path (for messages) and content of each file.
    pub requirement_files: Vec<(String, String)>,
    /// `-c FILE`: the path (for messages) and content of each file.
    pub constraint_files: Vec<(String, String)>,
    /// `--index-url`.
    pub index_url: Option<String>,
    /// `--extra-index-url`, in order.
    pub extra_index_urls: Vec<String>,
    /// `--find-links`.
    pub find_links: Vec<String>,
    /// `--no-index`.
    pub no_index: bool,
    /// `--pre`.
    pub pre: bool,
    /// `--no-deps`.
    pub no_deps: bool,
    /// `-U/--upgrade`.
    pub upgrade: bool,
    /// The distributions already in the image: name and version.
    pub installed: Vec<(String, String)>,
}

/// The interpreter the wheels are for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolveEnv {
    /// `3.11` (or `3.11.4`).
    pub python_version: String,
    /// uv's `--python-platform`: `x86_64-manylinux_2_36`, `aarch64-manylinux_2_36`.
    pub python_platform: String,
    /// The tags the interpreter takes, best first
    /// (`cp311-cp311-manylinux_2_36_x86_64`, ..., `py3-none-any`).
    pub tags: Vec<String>,
}

impl ResolveEnv {
    /// `CPython 3.11 on manylinux_2_36_x86_64`, for messages.
    pub fn describe(&self) -> String {
        let platform = self.tags.iter().find_map(|t| t.splitn(3, '-').nth(2).filter(|p| *p != "any"));
        format!("CPython {} on {}", self.python_version, platform.unwrap_or(&self.python_platform))
    }

    /// Whether the best tag's ABI is a free-threaded one (`cp313t`).
    fn is_free_threaded(&self) -> bool {
        let abi = self.tags.first().and_then(|t| t.split('-').nth(1));
        abi.is_some_and(|abi| abi.starts_with("cp") && abi.ends_with('t'))
    }

    /// The first few tags, for messages.
    fn tags_summary(&self) -> String {
        let mut summary = self.tags.iter().take(3).cloned().collect::<Vec<_>>().join(", ");
        if self.tags.len() > 3 {
            summary.push_str(", ...");
        }
        summary
    }
}

/// What pip would see as installed on `target`, for [`PipRequest::installed`].
pub fn installed_of(target: &Target) -> Vec<(String, String)> {
    target.installed.iter().map(|d| (d.name.clone(), d.version.clone())).collect()
}

/// One wheel a resolution chose.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct LockedWheel {
    /// The distribution's name, as the index spells it normalised (`pyyaml`).
    pub name: String,
    /// Its version.
    pub version: String,
    /// The wheel's file name.
    pub filename: String,
    /// Where it is downloaded from.
    pub url: String,
    /// Its SHA-256 (lowercase hex).
    pub sha256: String,
    /// Its size in bytes, when the index said.
    pub size: Option<u64>,
    /// Whether the request named it (not only a dependency of what it named).
    pub requested: bool,
}

/// Resolves `request` for `env` with `uv`; uv's cache and our
/// temporaries live under `cache_dir`. Returns the wheels to install
/// (sorted by name), leaving out what is installed at the resolved
/// version.
pub fn resolve(
    uv: &Uv,
    request: &PipRequest,
    env: &ResolveEnv,
    cache_dir: &Path,
) -> Result<Vec<LockedWheel>, ResolveError> {
    let python = index::parse_python_version(&env.python_version)?;
    if env.tags.is_empty() {
        return Err(ResolveError::Target { what: "tags".into(), problem: "none given".into() });
    }
    let mut platform = StandInPlatform::parse(&env.python_platform)?;
    platform.free_threaded = env.is_free_threaded();
    for requirement in &request.requirements {
        check_requirement(requirement)?;
    }
    let interpreter = stand_in_interpreter(cache_dir, &python, &platform)?;
    let work = work_dir(cache_dir)?;
    let files = write_inputs(work.path(), request)?;
    let mut command = Command::new(uv.path());
    command.current_dir(work.path()).args(["pip", "compile", "--color", "never", "--python"]);
    command.arg(&interpreter).args(["--python-version", &env.python_version]);
    command.args(["--python-platform", &env.python_platform]);
    command.args(["--only-binary", ":all:", "--no-header", "--no-annotate", "--format", "pylock.toml"]);
    // pip takes the best version across all its indexes, not the first
    // index that has the project.
    command.args(["--index-strategy", "unsafe-best-match"]);
    command.arg("--output-file").arg(&files.output);
    if let Some(url) = &request.index_url {
        command.args(["--index-url", url]);
    }
    for url in &request.extra_index_urls {
        command.args(["--extra-index-url", url]);
    }
    for link in &request.find_links {
        command.args(["--find-links", link]);
    }
    if request.no_index {
        command.arg("--no-index");
    }
    if request.pre {
        command.args(["--prerelease", "allow"]);
    }
    if request.no_deps {
        command.arg("--no-deps");
    }
    let requested = requested_names(request);
    if request.upgrade {
        for name in &requested {
            command.args(["--upgrade-package", name]);
        }
    }
    for constraint in &files.constraints {
        command.arg("--constraint").arg(constraint);
    }
    command.args(&files.requirements);
    isolate(&mut command, cache_dir);
    let output =
        command.output().map_err(|e| ResolveError::UvSpawn { uv: uv.path().to_path_buf(), source: e })?;
    if !output.status.success() {
        let stderr = files.map_paths(&String::from_utf8_lossy(&output.stderr));
        return Err(failure(request, env, &python, &stderr));
    }
    let text =
        fs::read_to_string(&files.output).map_err(|e| ResolveError::io("reading", &files.output, e))?;
    let locked = select_wheels(&text, env, &requested)?;
    Ok(without_installed(locked, &request.installed))
}

/// Refuses a requirement that would be read as more than one line or as
/// an option of the requirements file we write it to.
fn check_requirement(requirement: &str) -> Result<(), ResolveError> {
    let problem = if requirement.contains(['\n', '\r', '\0']) {
        "a line break inside a requirement"
    } else if requirement.trim_start().starts_with('-') {
        "an option, not a requirement (options are fields of the request)"
    } else if requirement.trim().is_empty() {
        "empty"
    } else {
        return Ok(());
    };
    Err(ResolveError::BadRequirement { requirement: requirement.to_owned(), problem: problem.to_owned() })
}

/// The PEP 503 names of what the request names itself, in order, once.
fn requested_names(request: &PipRequest) -> Vec<String> {
    let lines = request
        .requirements
        .iter()
        .map(String::as_str)
        .chain(request.requirement_files.iter().flat_map(|(_, content)| requirement_lines(content)));
    let mut seen = BTreeSet::new();
    lines.filter_map(requirement_name).filter(|name| seen.insert(name.clone())).collect()
}

/// The lines of a requirements file, trimmed, without comments, blank
/// lines and continuation lines.
fn requirement_lines(content: &str) -> Vec<&str> {
    // Continuations (`\` at the end) only split options or markers; the
    // name is on the first line, which is all `requirement_name` reads.
    let mut lines = Vec::new();
    let mut continued = false;
    for line in content.lines() {
        let was_continued = continued;
        continued = line.trim_end().ends_with('\\');
        if was_continued {
            continue;
        }
        let line = match line.find(" #") {
            Some(at) => &line[..at],
            None => line,
        };
        let line = line.trim();
        if !line.is_empty() && !line.starts_with('#') {
            lines.push(line);
        }
    }
    lines
}

/// The normalised name a requirement line starts with; `None` for an
/// option, a URL or a path.
fn requirement_name(line: &str) -> Option<String> {
    let line = line.trim();
    if line.starts_with('-') || line.contains("://") && !line.contains('@') {
        return None;
    }
    let end = line
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
        .unwrap_or(line.len());
    let name = &line[..end];
    let next = line[end..].trim_start().chars().next();
    let looks_like_name = !name.is_empty()
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && !name.ends_with(".whl")
        && !matches!(next, Some('/'));
    looks_like_name.then(|| normalize_name(name))
}

/// The platform a stand-in interpreter reports.
#[derive(Debug, Clone, PartialEq, Eq)]
struct StandInPlatform {
    arch: String,
    /// `manylinux` or `musllinux`.
    libc: &'static str,
    major: u32,
    minor: u32,
    /// A free-threaded build (ABI `cp313t`): uv takes the ABI of the
    /// tags it matches from the interpreter, not from `--python-version`.
    free_threaded: bool,
}

impl StandInPlatform {
    /// From uv's `--python-platform`: `x86_64-manylinux_2_36`,
    /// `aarch64-musllinux_1_2`, `x86_64-manylinux2014`.
    fn parse(text: &str) -> Result<StandInPlatform, ResolveError> {
        let bad = || ResolveError::Target {
            what: format!("platform {text:?}"),
            problem: "expected ARCH-manylinux_X_Y, ARCH-musllinux_X_Y or ARCH-unknown-linux-{gnu,musl} \
                      (uv's --python-platform)"
                .into(),
        };
        let (arch, os) = text.split_once('-').ok_or_else(bad)?;
        if arch.is_empty() || !arch.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(bad());
        }
        let (libc, version) = if let Some(v) = os.strip_prefix("manylinux_") {
            ("manylinux", v)
        } else if let Some(v) = os.strip_prefix("musllinux_") {
            ("musllinux", v)
        } else if os == "manylinux2014" {
            ("manylinux", "2_17")
        } else if os == "unknown-linux-gnu" {
            // What uv takes `ARCH-unknown-linux-gnu` for.
            ("manylinux", "2_28")
        } else if os == "unknown-linux-musl" {
            ("musllinux", "1_2")
        } else {
            return Err(bad());
        };
        let (major, minor) = version.split_once('_').ok_or_else(bad)?;
        Ok(StandInPlatform {
            arch: arch.to_owned(),
            libc,
            major: major.parse().map_err(|_| bad())?,
            minor: minor.parse().map_err(|_| bad())?,
            free_threaded: false,
        })
    }
}

/// uv's interpreter query answered for the target, as uv
/// [`crate::uv::UV_VERSION`] reads it.
fn interpreter_info(python: &Version, platform: &StandInPlatform, prefix: &str, executable: &str) -> String {
    let release = python.release();
    let minor = release.get(1).copied().unwrap_or(0);
    let full = format!("3.{minor}.{}", release.get(2).copied().unwrap_or(0));
    let short = format!("3.{minor}");
    let lib = format!("{prefix}/lib/python{short}");
    serde_json::json!({
        "result": "success",
        "markers": {
            "implementation_name": "cpython",
            "implementation_version": full,
            "os_name": "posix",
            "platform_machine": platform.arch,
            "platform_python_implementation": "CPython",
            "platform_release": "",
            "platform_system": "Linux",
            "platform_version": "",
            "python_full_version": full,
            "python_version": short,
            "sys_platform": "linux",
        },
        "sys_base_prefix": prefix,
        "sys_base_exec_prefix": prefix,
        "sys_prefix": prefix,
        "sys_base_executable": executable,
        "sys_executable": executable,
        "sys_path": [lib],
        "site_packages": [format!("{lib}/site-packages")],
        "stdlib": lib,
        "extension_suffixes": [".so"],
        "standalone": false,
        "scheme": {
            "platlib": format!("{lib}/site-packages"),
            "purelib": format!("{lib}/site-packages"),
            "include": format!("{prefix}/include/python{short}"),
            "scripts": format!("{prefix}/bin"),
            "data": prefix,
        },
        "virtualenv": {
            "purelib": format!("lib/python{short}/site-packages"),
            "platlib": format!("lib/python{short}/site-packages"),
            "include": format!("include/site/python{short}"),
            "scripts": "bin",
            "data": "",
        },
        "os": { "name": platform.libc, "major": platform.major, "minor": platform.minor },
        "arch": platform.arch,
        "cpu_info": { "detected": { "kind": "flags", "flags": "" } },
        "manylinux_compatible": platform.libc == "manylinux",
        "gil_disabled": platform.free_threaded,
        "debug_enabled": false,
        "pointer_size": "64",
    })
    .to_string()
}

/// `text` quoted for `/bin/sh`.
fn sh_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// The stand-in interpreter for the target, made once under
/// `cache_dir/uv-interpreter/<sha256 of the target>/`.
fn stand_in_interpreter(
    cache_dir: &Path,
    python: &Version,
    platform: &StandInPlatform,
) -> Result<PathBuf, ResolveError> {
    let key = Digest::of(format!("{}|{python:?}|{platform:?}", crate::uv::UV_VERSION).as_bytes());
    let dir = cache_dir.join("uv-interpreter").join(&key.hex()[..16]);
    let script = dir.join("python3");
    if script.is_file() {
        return Ok(script);
    }
    let prefix = dir.join("prefix");
    fs::create_dir_all(&prefix).map_err(|e| ResolveError::io("creating directory", &prefix, e))?;
    let text = |p: &Path| p.to_string_lossy().into_owned();
    let info = interpreter_info(python, platform, &text(&prefix), &text(&script));
    // `printf` is a builtin: the script needs nothing on uv's PATH.
    let body = format!("#!/bin/sh\nprintf '%s\\n' {}\n", sh_quote(&info));
    let mut tmp = crate::fetch::temp_file_in(&dir)?;
    let tmp_path = tmp.path().to_owned();
    std::io::Write::write_all(&mut tmp, body.as_bytes())
        .map_err(|e| ResolveError::io("writing", &tmp_path, e))?;
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&tmp_path, fs::Permissions::from_mode(0o755))
        .map_err(|e| ResolveError::io("making executable", &tmp_path, e))?;
    tmp.persist(&script).map_err(|e| ResolveError::io("storing", &script, e.error))?;
    Ok(script)
}

/// A pid-named working directory under `cache_dir/tmp`, removed on drop.
fn work_dir(cache_dir: &Path) -> Result<tempfile::TempDir, ResolveError> {
    let parent = cache_dir.join("tmp");
    fs::create_dir_all(&parent).map_err(|e| ResolveError::io("creating directory", &parent, e))?;
    forge_oci::temp::register_dir(&parent);
    tempfile::Builder::new()
        .prefix(&forge_oci::temp::prefix(".tmp-"))
        .tempdir_in(&parent)
        .map_err(|e| ResolveError::io("creating a temporary directory in", &parent, e))
}

/// The files uv reads and writes, and what their paths stand for.
#[derive(Debug)]
struct Inputs {
    requirements: Vec<PathBuf>,
    constraints: Vec<PathBuf>,
    output: PathBuf,
    /// Our path and what it stands for in messages.
    names: Vec<(String, String)>,
}

impl Inputs {
    /// uv's stderr with our paths replaced by what they stand for, trimmed.
    fn map_paths(&self, stderr: &str) -> String {
        let mut text = stderr.to_owned();
        let mut names = self.names.clone();
        names.sort_by_key(|(ours, _)| std::cmp::Reverse(ours.len()));
        for (ours, theirs) in &names {
            text = text.replace(ours, theirs);
        }
        trim_message(&text)
    }
}

fn write_inputs(dir: &Path, request: &PipRequest) -> Result<Inputs, ResolveError> {
    let write = |name: &str, content: &str| -> Result<PathBuf, ResolveError> {
        let path = dir.join(name);
        fs::write(&path, content).map_err(|e| ResolveError::io("writing", &path, e))?;
        Ok(path)
    };
    let mut inputs = Inputs {
        requirements: Vec::new(),
        constraints: Vec::new(),
        output: dir.join("pylock.toml"),
        names: Vec::new(),
    };
    for (i, (image_path, content)) in request.requirement_files.iter().enumerate() {
        let path = write(&format!("requirements-{i}.txt"), content)?;
        inputs.names.push((path.to_string_lossy().into_owned(), image_path.clone()));
        inputs.requirements.push(path);
    }
    if !request.requirements.is_empty() {
        let mut lines = request.requirements.join("\n");
        lines.push('\n');
        let path = write("requirements-args.txt", &lines)?;
        inputs.names.push((path.to_string_lossy().into_owned(), "the pip install arguments".into()));
        inputs.requirements.push(path);
    }
    for (i, (image_path, content)) in request.constraint_files.iter().enumerate() {
        let path = write(&format!("constraints-{i}.txt"), content)?;
        inputs.names.push((path.to_string_lossy().into_owned(), image_path.clone()));
        inputs.constraints.push(path);
    }
    if !request.installed.is_empty() {
        write("pylock.toml", &preferences(&request.installed))?;
    }
    inputs.names.push((dir.to_string_lossy().into_owned(), "<work>".into()));
    Ok(inputs)
}

/// The installed distributions as an existing output lock, which uv
/// reads as preferences.
fn preferences(installed: &[(String, String)]) -> String {
    let mut packages = toml::value::Array::new();
    for (name, version) in installed {
        let mut table = toml::Table::new();
        table.insert("name".into(), toml::Value::String(normalize_name(name)));
        table.insert("version".into(), toml::Value::String(version.clone()));
        packages.push(toml::Value::Table(table));
    }
    let mut document = toml::Table::new();
    document.insert("lock-version".into(), "1.0".into());
    document.insert("created-by".into(), "plugin-forge".into());
    document.insert("packages".into(), toml::Value::Array(packages));
    toml::to_string(&document).unwrap_or_default()
}

/// The environment of uv: none of the caller's `UV_*` settings (or an
/// active virtual environment), uv's configuration files ignored, its
/// cache ours, the system's certificates (as our own HTTP client uses).
fn isolate(command: &mut Command, cache_dir: &Path) {
    for (key, _) in std::env::vars_os() {
        let key_text = key.to_string_lossy();
        if key_text.starts_with("UV_") || key_text == "VIRTUAL_ENV" || key_text == "CONDA_PREFIX" {
            command.env_remove(&key);
        }
    }
    command
        .env("UV_NO_CONFIG", "1")
        .env("UV_CACHE_DIR", cache_dir.join("uv-cache"))
        .env("UV_PYTHON_DOWNLOADS", "never")
        .env("UV_SYSTEM_CERTS", "1")
        .env("NO_COLOR", "1");
}

/// At most 60 lines and 6000 bytes of a message, the middle cut.
fn trim_message(text: &str) -> String {
    let text = text.trim();
    let lines: Vec<&str> = text.lines().collect();
    let mut out = if lines.len() > 60 {
        format!("{}\n...\n{}", lines[..40].join("\n"), lines[lines.len() - 15..].join("\n"))
    } else {
        text.to_owned()
    };
    if out.len() > 6000 {
        let head_end = (0..=4000).rev().find(|i| out.is_char_boundary(*i)).unwrap_or(0);
        let tail_start =
            (out.len() - 1500..out.len()).find(|i| out.is_char_boundary(*i)).unwrap_or(out.len());
        out = format!("{}\n...\n{}", &out[..head_end], &out[tail_start..]);
    }
    out
}

/// The error for a failed `uv pip compile`: a missing wheel named with the
/// newest version that has one, anything else with uv's explanation.
fn failure(request: &PipRequest, env: &ResolveEnv, python: &Version, stderr: &str) -> ResolveError {
    let mut asked: Vec<String> = request.requirements.clone();
    asked.extend(request.requirement_files.iter().map(|(path, _)| format!("-r {path}")));
    let Some(name) = missing_wheel(stderr).into_iter().next() else {
        return ResolveError::UvFailed {
            requirements: asked.join(", "),
            target: env.describe(),
            stderr: stderr.to_owned(),
        };
    };
    let requirement = request
        .requirements
        .iter()
        .map(|r| r.trim().to_owned())
        .chain(
            request
                .requirement_files
                .iter()
                .flat_map(|(_, c)| requirement_lines(c))
                .map(|l| l.trim().to_owned()),
        )
        .find(|r| requirement_name(r).as_deref() == Some(name.as_str()))
        .unwrap_or_else(|| name.clone());
    let indexes: Vec<String> = if request.no_index {
        Vec::new()
    } else {
        std::iter::once(request.index_url.clone().unwrap_or_else(|| DEFAULT_INDEX.to_owned()))
            .chain(request.extra_index_urls.iter().cloned())
            .collect()
    };
    let newest = index::newest_with_wheel(&indexes, &name, &env.tags, python, request.pre);
    ResolveError::NoWheel(Box::new(MissingWheel {
        requirement,
        target: env.describe(),
        tags: env.tags_summary(),
        newest,
        uv_says: stderr.to_owned(),
    }))
}

/// The packages uv says lack a usable wheel, normalised, in order.
fn missing_wheel(stderr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut add = |name: Option<String>| {
        if let Some(name) = name {
            if !names.contains(&name) {
                names.push(name);
            }
        }
    };
    for line in stderr.lines() {
        if let Some(rest) = line.split("Wheels are required for `").nth(1) {
            add(rest.split('`').next().map(normalize_name));
        }
        for marker in [" has no usable wheels", " has no wheels with a matching"] {
            if let Some(before) = line.split(marker).next().filter(|_| line.contains(marker)) {
                let subject = before.rsplit(|c: char| c.is_whitespace()).next().unwrap_or("");
                add(requirement_name(subject));
            }
        }
    }
    names
}

/// uv's `pylock.toml`, as far as we read it.
#[derive(Debug, Deserialize)]
struct UvLock {
    #[serde(default)]
    packages: Vec<UvPackage>,
}

#[derive(Debug, Deserialize)]
struct UvPackage {
    name: String,
    version: Option<String>,
    #[serde(default)]
    wheels: Vec<UvWheel>,
}

#[derive(Debug, Deserialize)]
struct UvWheel {
    name: Option<String>,
    url: Option<String>,
    size: Option<u64>,
    #[serde(default)]
    hashes: BTreeMap<String, String>,
}

/// One wheel per package of uv's lock: the one whose best tag ranks
/// first in the target's tags.
fn select_wheels(
    text: &str,
    env: &ResolveEnv,
    requested: &[String],
) -> Result<Vec<LockedWheel>, ResolveError> {
    let lock: UvLock = toml::from_str(text).map_err(|e| ResolveError::UvOutput { problem: e.to_string() })?;
    let mut out = Vec::new();
    for package in lock.packages {
        let bad = |problem: String| ResolveError::UvOutput {
            problem: format!("package {}: {problem}", package.name),
        };
        let version = package
            .version
            .clone()
            .ok_or_else(|| bad("no version (a local directory or VCS checkout?)".into()))?;
        let candidates = package.wheels.iter().filter_map(|wheel| {
            let url = wheel.url.as_deref()?;
            let filename = wheel.name.clone().unwrap_or_else(|| file_name_of(url));
            let rank = WheelName::parse(&filename)?.rank(&env.tags)?;
            Some((rank, filename, url, wheel))
        });
        let best = candidates.min_by_key(|(rank, ..)| *rank);
        let Some((_, filename, url, wheel)) = best else {
            if package.wheels.is_empty() {
                return Err(bad("no wheel (only wheels are installed)".into()));
            }
            return Err(ResolveError::NoWheel(Box::new(MissingWheel {
                requirement: format!("{}=={version}", package.name),
                target: env.describe(),
                tags: env.tags_summary(),
                newest: NewestWheel::Unknown(format!(
                    "uv chose {}, none of which the target's tags take (uv's --python-platform and the tags disagree)",
                    wheel_names(&package.wheels)
                )),
                uv_says: String::new(),
            })));
        };
        let sha256 =
            wheel.hashes.get("sha256").cloned().ok_or_else(|| bad(format!("{filename} has no SHA-256")))?;
        let name = normalize_name(&package.name);
        out.push(LockedWheel {
            requested: requested.contains(&name),
            name,
            version,
            filename,
            url: url.to_owned(),
            sha256,
            size: wheel.size,
        });
    }
    out.sort();
    Ok(out)
}

fn wheel_names(wheels: &[UvWheel]) -> String {
    let names: Vec<String> = wheels
        .iter()
        .map(|w| w.name.clone().unwrap_or_else(|| w.url.as_deref().map(file_name_of).unwrap_or_default()))
        .collect();
    names.join(", ")
}

/// The last path segment of a URL, percent-decoded (`%2B` is `+`).
fn file_name_of(url: &str) -> String {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let segment = path.rsplit('/').next().unwrap_or(path);
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `locked` less what `installed` already has at the same version.
fn without_installed(locked: Vec<LockedWheel>, installed: &[(String, String)]) -> Vec<LockedWheel> {
    let installed: BTreeMap<String, &str> =
        installed.iter().map(|(n, v)| (normalize_name(n), v.as_str())).collect();
    let same = |a: &str, b: &str| match (Version::parse(a), Version::parse(b)) {
        (Some(a), Some(b)) => a == b,
        _ => a == b,
    };
    locked.into_iter().filter(|w| !installed.get(&w.name).is_some_and(|v| same(v, &w.version))).collect()
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn env_x86() -> ResolveEnv {
        ResolveEnv {
            python_version: "3.11".into(),
            python_platform: "x86_64-manylinux_2_36".into(),
            tags: [
                "cp311-cp311-manylinux_2_36_x86_64",
                "cp311-cp311-manylinux_2_28_x86_64",
                "cp311-cp311-manylinux_2_17_x86_64",
                "cp311-abi3-manylinux_2_17_x86_64",
                "py3-none-manylinux_2_17_x86_64",
                "cp311-none-any",
                "py3-none-any",
            ]
            .map(String::from)
            .into(),
        }
    }

    const UV_LOCK: &str = r#"
lock-version = "1.0"
created-by = "uv"
requires-python = ">=3.11"

[[packages]]
name = "PyYAML"
version = "6.0.4"
wheels = [
  { url = "https://files.example/pyyaml-6.0.4-cp311-cp311-manylinux_2_17_x86_64.whl", size = 3, hashes = { sha256 = "1111111111111111111111111111111111111111111111111111111111111111" } },
  { url = "https://files.example/pyyaml-6.0.4-cp311-cp311-manylinux_2_28_x86_64.whl", size = 2, hashes = { sha256 = "2222222222222222222222222222222222222222222222222222222222222222" } },
  { url = "https://files.example/pyyaml-6.0.4-cp311-cp311-manylinux_2_28_aarch64.whl", size = 1, hashes = { sha256 = "3333333333333333333333333333333333333333333333333333333333333333" } },
  { url = "https://files.example/pyyaml-6.0.4-cp312-cp312-manylinux_2_36_x86_64.whl", size = 1, hashes = { sha256 = "4444444444444444444444444444444444444444444444444444444444444444" } },
]

[[packages]]
name = "python-slugify"
version = "9.2.0"
wheels = [{ url = "https://files.example/python_slugify-9.2.0-py3-none-any.whl", upload-time = 2026-11-16T19:48:48Z, size = 17169, hashes = { sha256 = "7298dcfc65e9ccdf834b3c398f163af0d09a9a8fc1ee6a7b2dffd8d38bfb756e" } }]

[[packages]]
name = "text-unidecode"
version = "1.3"
wheels = [{ name = "text_unidecode-1.3-py2.py3-none-any.whl", url = "https://files.example/t%2Bu.whl", hashes = { sha256 = "1311f10e8b895935241623731c2ba64f4c455287888b18189350b67134a822e8" } }]
"#;

    #[test]
    fn the_wheel_whose_tag_ranks_best_is_chosen() {
        let requested = vec!["pyyaml".to_owned(), "python-slugify".to_owned()];
        let wheels = select_wheels(UV_LOCK, &env_x86(), &requested).unwrap();
        let picked: Vec<(&str, &str, &str, bool)> = wheels
            .iter()
            .map(|w| (w.name.as_str(), w.version.as_str(), w.filename.as_str(), w.requested))
            .collect();
        assert_eq!(
            picked,
            [
                ("python-slugify", "9.2.0", "python_slugify-9.2.0-py3-none-any.whl", true),
                ("pyyaml", "6.0.4", "pyyaml-6.0.4-cp311-cp311-manylinux_2_28_x86_64.whl", true),
                ("text-unidecode", "1.3", "text_unidecode-1.3-py2.py3-none-any.whl", false),
            ]
        );
        assert_eq!(wheels[1].sha256, "2".repeat(64));
        assert_eq!(wheels[1].size, Some(2));
        assert_eq!(wheels[2].size, None);

        // For aarch64 only the aarch64 wheel of PyYAML fits.
        let aarch64 = ResolveEnv {
            python_platform: "aarch64-manylinux_2_36".into(),
            tags: env_x86().tags.iter().map(|t| t.replace("x86_64", "aarch64")).collect(),
            ..env_x86()
        };
        let wheels = select_wheels(UV_LOCK, &aarch64, &requested).unwrap();
        assert_eq!(wheels[1].filename, "pyyaml-6.0.4-cp311-cp311-manylinux_2_28_aarch64.whl");

        // No wheel the target takes: the requirement, the target, its tags.
        let cp312 = ResolveEnv { tags: vec!["cp312-cp312-manylinux_2_17_aarch64".into()], ..aarch64 };
        let err = select_wheels(UV_LOCK, &cp312, &requested).unwrap_err().to_string();
        assert!(
            err.starts_with("no wheel of PyYAML==6.0.4 for CPython 3.11 on manylinux_2_17_aarch64"),
            "{err}"
        );
    }

    #[test]
    fn uv_output_that_is_no_wheel_lock_is_an_error_not_a_panic() {
        let env = env_x86();
        for (text, wanted) in [
            ("packages = 1", "reading uv's pylock.toml"),
            ("[[packages]]\nname = \"x\"\n", "no version"),
            ("[[packages]]\nname = \"x\"\nversion = \"1\"\nsdist = { url = \"u\" }\n", "no wheel (only wheels"),
            (
                "[[packages]]\nname = \"x\"\nversion = \"1\"\nwheels = [{ url = \"https://e/x-1-py3-none-any.whl\" }]\n",
                "has no SHA-256",
            ),
            ("\u{0}\u{1}garbage", "reading uv's pylock.toml"),
        ] {
            let err = select_wheels(text, &env, &[]).unwrap_err().to_string();
            assert!(err.contains(wanted), "{wanted:?} not in {err:?}");
        }
        assert_eq!(select_wheels("lock-version = \"1.0\"\n", &env, &[]).unwrap(), []);
    }

    #[test]
    fn requirement_names() {
        let cases = [
            ("PyYAML", Some("pyyaml")),
            ("pillow<7", Some("pillow")),
            ("Pillow >= 6, <7 ; python_version > '3'", Some("pillow")),
            ("requests[socks,security]==2.31", Some("requests")),
            ("python_slugify~=8.0", Some("python-slugify")),
            ("foo @ https://example.com/foo-1.0-py3-none-any.whl", Some("foo")),
            ("-r other.txt", None),
            ("--index-url https://x", None),
            ("https://example.com/foo-1.0-py3-none-any.whl", None),
            ("./local/dir", None),
            ("foo-1.0-py3-none-any.whl", None),
            ("", None),
        ];
        for (line, name) in cases {
            assert_eq!(requirement_name(line).as_deref(), name, "{line}");
        }
        let file = "# pinned\nPyYAML==6.0.1  # yaml\n\n--extra-index-url https://x\nnumpy \\\n  >=1.0\n-r more.txt\n";
        assert_eq!(
            requirement_lines(file),
            ["PyYAML==6.0.1", "--extra-index-url https://x", "numpy \\", "-r more.txt"]
        );
        let request = PipRequest {
            requirements: vec!["python-slugify".into(), "pyyaml>=6".into()],
            requirement_files: vec![("/app/requirements.txt".into(), file.into())],
            ..PipRequest::default()
        };
        assert_eq!(requested_names(&request), ["python-slugify", "pyyaml", "numpy"]);
    }

    #[test]
    fn requirements_cannot_smuggle_options_or_lines() {
        for bad in ["foo\n--index-url http://evil", "-e .", "--pre", " ", "a\rb"] {
            assert!(matches!(check_requirement(bad), Err(ResolveError::BadRequirement { .. })), "{bad:?}");
        }
        check_requirement("pillow<7").unwrap();
    }

    #[test]
    fn missing_wheels_are_read_from_uv_messages() {
        let stderr = "error: No solution found when resolving dependencies\n  cause: Because numpy==1.16.0 has no usable wheels and you require numpy==1.16.0, we can conclude that your requirements are unsatisfiable.\n\nhint: Wheels are required for `numpy` because building from source is disabled for all packages (i.e., with `--no-build`)";
        assert_eq!(missing_wheel(stderr), ["numpy"]);
        let abi =
            "  cause: Because Some_Pkg==1.0 has no wheels with a matching Python ABI tag (e.g., `cp311`)";
        assert_eq!(missing_wheel(abi), ["some-pkg"]);
        let other =
            "  cause: Because there is no version of python-slugify==1.0 and you require python-slugify==1.0";
        assert_eq!(missing_wheel(other), Vec::<String>::new());
    }

    fn debian_target(arch: &str, libc: crate::target::Libc, free_threaded: bool) -> Target {
        use crate::target::{InstalledDist, Layout, PythonVersion, Scheme};
        let dir = "usr/local/lib/python3.11/dist-packages".to_owned();
        Target {
            executable: "/usr/bin/python3".into(),
            interpreter: "usr/bin/python3.11".into(),
            version: PythonVersion { major: 3, minor: 11 },
            full_version: None,
            free_threaded,
            arch: arch.into(),
            libc,
            layout: Layout::DebianSystem,
            scheme: Scheme {
                purelib: dir.clone(),
                platlib: dir.clone(),
                scripts: "usr/local/bin".into(),
                data: "usr/local".into(),
                include: "usr/local/include/python3.11".into(),
            },
            site_dirs: vec![dir.clone()],
            installed: vec![InstalledDist {
                name: "pyyaml".into(),
                display_name: "PyYAML".into(),
                version: "6.0.1".into(),
                metadata_path: format!("{dir}/PyYAML-6.0.1.dist-info"),
            }],
            externally_managed: None,
            pip_version: None,
        }
    }

    #[test]
    fn a_detected_target_gives_the_resolution_env() {
        use crate::target::Libc;
        let target = debian_target("aarch64", Libc::Glibc { major: 2, minor: 36 }, false);
        let env = target.resolve_env().unwrap();
        assert_eq!(
            (env.python_version.as_str(), env.python_platform.as_str()),
            ("3.11", "aarch64-manylinux_2_36")
        );
        assert_eq!(env.tags[0], "cp311-cp311-manylinux_2_36_aarch64");
        assert_eq!(env.describe(), "CPython 3.11 on manylinux_2_36_aarch64");
        assert!(!env.is_free_threaded());
        assert_eq!(installed_of(&target), [("pyyaml".to_owned(), "6.0.1".to_owned())]);
        let full = Target { full_version: Some("3.11.2".into()), ..target.clone() };
        assert_eq!(full.resolve_env().unwrap().python_version, "3.11.2");
        let musl = debian_target("x86_64", Libc::Musl { major: 1, minor: 2 }, false);
        let env = musl.resolve_env().unwrap();
        StandInPlatform::parse(&env.python_platform).unwrap();
        let old = debian_target("x86_64", Libc::Glibc { major: 2, minor: 12 }, false);
        assert_eq!(old.resolve_env(), None);
        let ft = debian_target("x86_64", Libc::Glibc { major: 2, minor: 36 }, true);
        assert!(ft.resolve_env().unwrap().is_free_threaded());
    }

    #[test]
    fn platforms_for_the_stand_in() {
        let p = StandInPlatform::parse("x86_64-manylinux_2_36").unwrap();
        assert_eq!((p.arch.as_str(), p.libc, p.major, p.minor), ("x86_64", "manylinux", 2, 36));
        let p = StandInPlatform::parse("aarch64-musllinux_1_2").unwrap();
        assert_eq!((p.arch.as_str(), p.libc, p.major, p.minor), ("aarch64", "musllinux", 1, 2));
        assert_eq!(StandInPlatform::parse("x86_64-manylinux2014").unwrap().minor, 17);
        assert_eq!(StandInPlatform::parse("aarch64-unknown-linux-gnu").unwrap().minor, 28);
        assert_eq!(StandInPlatform::parse("x86_64-unknown-linux-musl").unwrap().libc, "musllinux");
        for bad in [
            "x86_64",
            "linux",
            "-manylinux_2_36",
            "x86_64-windows",
            "x86_64-manylinux_2",
            "x 86-manylinux_2_3",
        ] {
            assert!(StandInPlatform::parse(bad).is_err(), "{bad}");
        }
        let info = interpreter_info(&Version::parse("3.11").unwrap(), &p, "/p'x", "/p/python3");
        let info: serde_json::Value = serde_json::from_str(&info).unwrap();
        assert_eq!(info["markers"]["python_full_version"], "3.11.0");
        assert_eq!(info["markers"]["platform_machine"], "aarch64");
        assert_eq!(info["os"]["name"], "musllinux");
        assert_eq!(sh_quote("a'b"), r"'a'\''b'");
    }

    #[test]
    fn messages_are_trimmed_on_char_boundaries() {
        let long: String = (0..200).map(|i| format!("línea {i}\n")).collect();
        let trimmed = trim_message(&long);
        assert!(trimmed.lines().count() <= 56 && trimmed.contains("\n...\n"), "{trimmed}");
        let wide = "é".repeat(5000);
        assert!(trim_message(&wide).len() <= 6000);
        assert_eq!(trim_message("  short \n"), "short");
        assert_eq!(
            file_name_of("https://e/a/numpy-1.0%2Bcpu-py3-none-any.whl?x=1#sha256=00"),
            "numpy-1.0+cpu-py3-none-any.whl"
        );
        assert_eq!(file_name_of("https://e/%zz%4"), "%zz%4");
    }

    #[test]
    fn what_is_installed_at_the_resolved_version_is_left_out() {
        let wheels = select_wheels(UV_LOCK, &env_x86(), &[]).unwrap();
        let installed =
            [("PyYAML".to_owned(), "6.0.4.0".to_owned()), ("text_unidecode".to_owned(), "1.2".to_owned())];
        let left: Vec<String> = without_installed(wheels, &installed).into_iter().map(|w| w.name).collect();
        assert_eq!(left, ["python-slugify", "text-unidecode"]);
        let prefs: toml::Table = toml::from_str(&preferences(&installed)).unwrap();
        assert_eq!(prefs["packages"][0]["name"].as_str(), Some("pyyaml"));
        assert_eq!(prefs["packages"][1]["version"].as_str(), Some("1.2"));
    }

    /// A stand-in uv: records its arguments and environment, writes
    /// `UV_LOCK` (or fails as `numpy==1.16.0` does) to `--output-file`.
    fn fake_uv(dir: &Path, fail: bool) -> Uv {
        let script = dir.join("uv");
        let log = dir.join("log");
        let lock = dir.join("lock.toml");
        fs::write(&lock, UV_LOCK).unwrap();
        let body = if fail {
            "echo \"error: Because numpy==1.16.0 has no usable wheels\" >&2\necho \"hint: Wheels are required for \\`numpy\\` ($REQ)\" >&2\nexit 1"
                .to_owned()
        } else {
            format!("cp {} \"$OUT\"", lock.display())
        };
        let text = format!(
            "#!/bin/sh\necho \"$@\" > {log}\necho \"UV_NO_CONFIG=$UV_NO_CONFIG UV_INDEX=$UV_INDEX\" >> {log}\n\
             cat \"$PWD\"/pylock.toml >> {log} 2>/dev/null\n\
             OUT=; REQ=; while [ $# -gt 0 ]; do case \"$1\" in --output-file) OUT=$2; shift;; *requirements-0.txt) REQ=$1;; esac; shift; done\n{body}\n",
            log = log.display()
        );
        fs::write(&script, text).unwrap();
        fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
        Uv::at(script).unwrap()
    }

    #[test]
    fn the_command_line_and_the_result() {
        let dir = tempfile::tempdir().unwrap();
        let uv = fake_uv(dir.path(), false);
        let request = PipRequest {
            requirements: vec!["python-slugify".into()],
            requirement_files: vec![("/app/requirements.txt".into(), "PyYAML\n".into())],
            constraint_files: vec![("/app/c.txt".into(), "pyyaml<7\n".into())],
            index_url: Some("https://mirror.example/simple".into()),
            extra_index_urls: vec!["https://extra.example/simple".into()],
            find_links: vec!["https://links.example/".into()],
            pre: true,
            no_deps: true,
            upgrade: true,
            installed: vec![("text-unidecode".into(), "1.3".into())],
            ..PipRequest::default()
        };
        let cache = dir.path().join("cache");
        let wheels = resolve(&uv, &request, &env_x86(), &cache).unwrap();
        let names: Vec<(&str, bool)> = wheels.iter().map(|w| (w.name.as_str(), w.requested)).collect();
        assert_eq!(names, [("python-slugify", true), ("pyyaml", true)], "text-unidecode 1.3 is installed");
        let log = fs::read_to_string(dir.path().join("log")).unwrap();
        let work = cache.join("tmp");
        let log = log.replace(work.to_str().unwrap(), "TMP").replace(cache.to_str().unwrap(), "CACHE");
        let args = log.lines().next().unwrap();
        let args: Vec<&str> = args
            .split(' ')
            .map(|a| a.split_once("/.tmp-").map_or(a, |(_, rest)| rest.split_once('/').map_or(a, |r| r.1)))
            .collect();
        let interpreter = args[5].to_owned();
        assert!(
            interpreter.starts_with("CACHE/uv-interpreter/") && interpreter.ends_with("/python3"),
            "{interpreter}"
        );
        assert_eq!(
            args.join(" ").replace(&interpreter, "STANDIN"),
            "pip compile --color never --python STANDIN --python-version 3.11 --python-platform x86_64-manylinux_2_36 \
             --only-binary :all: --no-header --no-annotate --format pylock.toml --index-strategy unsafe-best-match \
             --output-file pylock.toml --index-url https://mirror.example/simple --extra-index-url https://extra.example/simple \
             --find-links https://links.example/ --prerelease allow --no-deps --upgrade-package python-slugify \
             --upgrade-package pyyaml --constraint constraints-0.txt requirements-0.txt requirements-args.txt"
        );
        assert!(log.contains("UV_NO_CONFIG=1 UV_INDEX=\n"), "{log}");
        assert!(log.contains("name = \"text-unidecode\"\nversion = \"1.3\""), "preferences: {log}");
        // The stand-in interpreter answers uv's query with the target.
        let standin = cache.join(interpreter.strip_prefix("CACHE/").unwrap());
        let answer =
            Command::new(&standin).args(["-I", "-B", "-c", "import sys"]).env_clear().output().unwrap();
        let answer: serde_json::Value = serde_json::from_slice(&answer.stdout).unwrap();
        assert_eq!(answer["markers"]["python_version"], "3.11");
        assert_eq!(answer["arch"], "x86_64");
        // Nothing is left in the work directory's parent.
        assert_eq!(fs::read_dir(&work).unwrap().count(), 0);
    }

    #[test]
    fn a_failure_names_the_requirement_and_maps_our_paths() {
        let dir = tempfile::tempdir().unwrap();
        let uv = fake_uv(dir.path(), true);
        let request = PipRequest {
            requirement_files: vec![("/app/requirements.txt".into(), "numpy==1.16.0\n".into())],
            no_index: true,
            ..PipRequest::default()
        };
        let err = resolve(&uv, &request, &env_x86(), &dir.path().join("cache")).unwrap_err();
        let ResolveError::NoWheel(missing) = &err else { panic!("{err}") };
        assert_eq!(missing.requirement, "numpy==1.16.0");
        assert_eq!(missing.newest, NewestWheel::Unknown("no index to ask (--no-index)".into()));
        assert!(missing.uv_says.contains("(/app/requirements.txt)"), "{}", missing.uv_says);
        assert_eq!(
            err.to_string(),
            "no wheel of numpy==1.16.0 for CPython 3.11 on manylinux_2_36_x86_64 (tags cp311-cp311-manylinux_2_36_x86_64, \
             cp311-cp311-manylinux_2_28_x86_64, cp311-cp311-manylinux_2_17_x86_64, ...); which version has one is unknown: no \
             index to ask (--no-index)"
        );
        let bad_env = ResolveEnv { python_version: "two".into(), ..env_x86() };
        assert!(matches!(resolve(&uv, &request, &bad_env, dir.path()), Err(ResolveError::Target { .. })));
    }
}
