//! The native installer of a run: `RUN pip install` and `RUN apt-get
//! install` (with their clean-ups) for the image's own platform, without a
//! daemon, a runtime or anything executed from the image; the
//! [`Installer`] the builder's execute calls.
//!
//! [`NativeInstaller::resolve`] reads the recognised commands of a `RUN`
//! against the files of the image below it: apt's target (the release and
//! dpkg status of the image) and pip's (the interpreter, its tags and
//! scheme, the distributions installed). It takes the `RUN`'s entry from
//! the plugin's `Dockerfile.lock` when that was made from the same inputs,
//! and resolves otherwise ([`crate::locks`]). Its answer, the layer's cache
//! key, is a canonical TOML text: the lock entry, the state of the image it
//! was resolved over (the digest of the dpkg status, the installed
//! distributions), and what the clean-ups remove of the image below.
//! [`NativeInstaller::materialize`] turns that text into the layer's tree:
//! `.deb`s and wheels fetched (or taken from their caches) and verified by
//! SHA-256, unpacked and installed per command, in order, over what the
//! commands before installed.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::SystemTime;

use forge_baseimage::install as apt;
use forge_builder::run::{InstallKind, InstallOp, PipInstall};
use forge_builder::{InstallError, InstallRequest, Installer};
use forge_debian::fetch::Fetcher;
use forge_debian::release::ReleaseOptions;
use forge_input::error_chain;
use forge_oci::files::{self, ImageFiles, Stack};
use forge_oci::{Digest, NodeKind, Spool, Tree};
use serde::{Deserialize, Serialize};

use crate::locks::{LockMode, Locks, RunLock};

/// The largest requirements or constraints file read from an image.
const REQUIREMENTS_LIMIT: u64 = 4 << 20;
/// The largest dpkg status database read from an image.
const STATUS_LIMIT: u64 = 64 << 20;

/// The installer of a run; see the [module docs](self).
#[derive(Debug)]
pub struct NativeInstaller {
    locks: Locks,
    /// `~/.cache/plugin-forge`: uv, wheels, `.deb`s and indexes.
    cache: PathBuf,
    /// `--debian-mirror`: the mirror for Debian images whose sources are
    /// not in the image.
    debian_mirror: Option<String>,
    uv: OnceLock<Result<forge_python::uv::Uv, String>>,
}

/// The canonical text of a `RUN`'s resolution: the layer's cache key and
/// what [`NativeInstaller::materialize`] reads back.
#[derive(Debug, Serialize, Deserialize)]
struct Resolution {
    lock: RunLock,
    /// Per command, in order: what it depends on in the image below and
    /// what it removes of it.
    commands: Vec<Below>,
}

/// What one command's layer depends on in the image below the `RUN`.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Below {
    /// apt: the digest of `/var/lib/dpkg/status` (the layer rewrites it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    dpkg_status: Option<String>,
    /// pip: the distributions installed, `name==version` (an upgrade
    /// removes the old one's files).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    installed: Vec<String>,
    /// `rm`: the paths of the image below it removes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    removes: Vec<String>,
}

impl NativeInstaller {
    /// An installer with the lock files of the monorepo at `root`, caching
    /// downloads under `cache` (`~/.cache/plugin-forge`).
    pub fn new(
        root: &Path,
        mode: LockMode,
        cache: PathBuf,
        debian_mirror: Option<String>,
    ) -> NativeInstaller {
        NativeInstaller { locks: Locks::new(root, mode), cache, debian_mirror, uv: OnceLock::new() }
    }

    /// The lock files of this run.
    pub fn locks(&self) -> &Locks {
        &self.locks
    }

    fn uv(&self) -> Result<&forge_python::uv::Uv, InstallError> {
        self.uv
            .get_or_init(|| {
                forge_python::uv::Uv::ensure(&self.cache.join("tools")).map_err(|e| error_chain(&e))
            })
            .as_ref()
            .map_err(|e| {
                InstallError::new(format!("cannot set up uv, the resolver of pip requirements: {e}"))
            })
    }

    /// The digest of what a resolution is made from: the installing
    /// commands' package requests after expansion (not how they were
    /// spelled, nor the clean-ups), the content of their requirements and
    /// constraints files, and the platform. Written out field by field, so
    /// that a new version of plugin-forge keeps the locks valid.
    fn inputs(&self, request: &InstallRequest<'_>) -> Result<String, InstallError> {
        let mut text = format!("forge-run-inputs-v1\nplatform {}\n", request.at.platform);
        let list = |items: &[String]| items.iter().map(|i| format!(" {i:?}")).collect::<String>();
        for op in &request.run.ops {
            match &op.kind {
                InstallKind::Pip(pip) => {
                    text.push_str(&format!(
                        "pip program {:?} python {:?}\nrequirements{}\nindex {:?} extra{} find-links{}\n\
                         upgrade {} no-deps {} pre {} no-index {}\n",
                        pip.program,
                        pip.python,
                        list(&pip.requirements),
                        pip.index_url,
                        list(&pip.extra_index_urls),
                        list(&pip.find_links),
                        pip.upgrade,
                        pip.no_deps,
                        pip.pre,
                        pip.no_index,
                    ));
                    for (what, paths) in
                        [("requirements", &pip.requirement_files), ("constraints", &pip.constraint_files)]
                    {
                        for path in paths {
                            let content = read_image_text(request.files, path, op)?;
                            text.push_str(&format!(
                                "{what} file {path:?} {}\n",
                                Digest::of(content.as_bytes())
                            ));
                        }
                    }
                }
                InstallKind::AptInstall(wanted) => {
                    let request = apt::AptRequest { packages: wanted.packages.clone(), recommends: false };
                    text.push_str(&format!(
                        "apt{} no-install-recommends {}\n",
                        list(&request.spelled()),
                        wanted.no_install_recommends
                    ));
                }
                InstallKind::AptUpdate | InstallKind::AptClean | InstallKind::Remove(_) => {}
            }
        }
        Ok(Digest::of(text.as_bytes()).to_string())
    }

    /// Resolves every command of the `RUN` afresh into a lock entry.
    fn resolve_fresh(&self, request: &InstallRequest<'_>, inputs: String) -> Result<RunLock, InstallError> {
        let mut commands = Vec::new();
        let mut outputs: Vec<Tree> = Vec::new();
        let spool_dir = self.scratch()?;
        let mut spool =
            Spool::new(spool_dir.path()).map_err(|e| InstallError::new(format!("spooling: {e}")))?;
        let ops = &request.run.ops;
        for (index, op) in ops.iter().enumerate() {
            let view = Stack::new(request.files, outputs.iter());
            let table = match &op.kind {
                InstallKind::AptInstall(wanted) => {
                    let target = self.apt_target(&view, request, op)?;
                    let wanted = apt::AptRequest {
                        packages: wanted.packages.clone(),
                        recommends: !wanted.no_install_recommends,
                    };
                    let fetcher = self.fetcher()?;
                    // As `apt-get update`: the suites' current indexes.
                    let options = ReleaseOptions { update: true, ..ReleaseOptions::default() };
                    let lock = apt::resolve(&target, &wanted, &fetcher, &options, SystemTime::now())
                        .map_err(|e| InstallError::new(error_chain(&e)).at(op.position))?;
                    // A later command sees what this one installs.
                    if ops[index + 1..].iter().any(needs_files) {
                        let tree = apt::materialize(&view, &target, &lock, &fetcher, &mut spool)
                            .map_err(|e| InstallError::new(error_chain(&e)).at(op.position))?;
                        outputs.push(tree);
                    }
                    Some(tagged("apt", to_table(&lock)?))
                }
                InstallKind::Pip(pip) => {
                    let target = self.pip_target(&view, request, op, pip)?;
                    let wanted = self.pip_request(&view, op, pip, &target)?;
                    let env = target.resolve_env().ok_or_else(|| {
                        InstallError::new(format!(
                            "uv cannot resolve for {} on {} ({:?}): it names no such platform",
                            target.executable, target.arch, target.libc
                        ))
                        .at(op.position)
                    })?;
                    let wheels =
                        forge_python::resolve::resolve(self.uv()?, &wanted, &env, &self.cache.join("python"))
                            .map_err(|e| InstallError::new(error_chain(&e)).at(op.position))?;
                    let lock = forge_python::lock::PipLock::new(&env, wheels);
                    if ops[index + 1..].iter().any(needs_files) {
                        let mut tree = Tree::new();
                        self.install_wheels(&view, &target, &lock, &mut tree, &mut spool, op)?;
                        outputs.push(tree);
                    }
                    let table = match lock.to_toml_value() {
                        toml::Value::Table(table) => table,
                        _ => toml::Table::new(),
                    };
                    Some(tagged("pip", table))
                }
                InstallKind::AptUpdate | InstallKind::AptClean | InstallKind::Remove(_) => None,
            };
            commands.extend(table);
        }
        Ok(RunLock {
            instruction: request.at.instruction.to_string(),
            platform: request.at.platform.to_string(),
            inputs,
            commands,
        })
    }

    fn scratch(&self) -> Result<tempfile::TempDir, InstallError> {
        let dir = self.cache.join("tmp");
        std::fs::create_dir_all(&dir)
            .map_err(|e| InstallError::new(format!("creating {}: {e}", dir.display())))?;
        forge_oci::temp::register_dir(&dir);
        tempfile::Builder::new()
            .prefix(&format!("{}install-", forge_oci::temp::prefix(".tmp-")))
            .tempdir_in(&dir)
            .map_err(|e| {
                InstallError::new(format!("creating a temporary directory in {}: {e}", dir.display()))
            })
    }

    /// The Debian download cache (shared with base images).
    fn fetcher(&self) -> Result<Fetcher, InstallError> {
        let mirror = self.debian_mirror.as_deref().unwrap_or(apt::DEBIAN_ARCHIVE);
        Fetcher::new(self.cache.join("debian"), mirror).map_err(|e| InstallError::new(error_chain(&e)))
    }

    fn apt_target(
        &self,
        view: &dyn ImageFiles,
        request: &InstallRequest<'_>,
        op: &InstallOp,
    ) -> Result<apt::AptTarget, InstallError> {
        let mut target = apt::detect(view, &oci_arch(request))
            .map_err(|e| InstallError::new(error_chain(&e)).at(op.position))?;
        target.override_mirrors(self.debian_mirror.as_deref(), None);
        Ok(target)
    }

    fn pip_target(
        &self,
        view: &dyn ImageFiles,
        request: &InstallRequest<'_>,
        op: &InstallOp,
        pip: &PipInstall,
    ) -> Result<forge_python::target::Target, InstallError> {
        let path = op_env(request, op, "PATH").unwrap_or_else(|| DEFAULT_PATH.to_string());
        let target = forge_python::target::detect(
            view,
            &pip.program,
            pip.python.as_deref(),
            &path,
            &oci_arch(request),
        )
        .map_err(|e| InstallError::new(error_chain(&e)).at(op.position))?;
        // PEP 668: pip refuses an externally managed interpreter (Debian's
        // python3) unless told, and so do we: the Dockerfile must build
        // with `docker build` too.
        if let Some(marker) = &target.externally_managed {
            if !pip.break_system_packages {
                return Err(InstallError::new(format!(
                    "{} is externally managed (/{marker} exists): pip refuses to install into it (PEP 668)",
                    target.executable
                ))
                .at(op.position)
                .help("add --break-system-packages (or ENV PIP_BREAK_SYSTEM_PACKAGES=1), or install into a virtual environment"));
            }
        }
        Ok(target)
    }

    fn pip_request(
        &self,
        view: &dyn ImageFiles,
        op: &InstallOp,
        pip: &PipInstall,
        target: &forge_python::target::Target,
    ) -> Result<forge_python::resolve::PipRequest, InstallError> {
        let read = |paths: &[String]| -> Result<Vec<(String, String)>, InstallError> {
            paths.iter().map(|p| Ok((p.clone(), read_image_text(view, p, op)?))).collect()
        };
        Ok(forge_python::resolve::PipRequest {
            requirements: pip.requirements.clone(),
            requirement_files: read(&pip.requirement_files)?,
            constraint_files: read(&pip.constraint_files)?,
            index_url: pip.index_url.clone(),
            extra_index_urls: pip.extra_index_urls.clone(),
            find_links: pip.find_links.clone(),
            no_index: pip.no_index,
            pre: pip.pre,
            no_deps: pip.no_deps,
            upgrade: pip.upgrade,
            installed: target.installed.iter().map(|d| (d.name.clone(), d.version.clone())).collect(),
        })
    }

    /// Installs the wheels of `lock` into `tree` over `view`: fetched and
    /// verified, an installed other version of each removed first.
    fn install_wheels(
        &self,
        view: &dyn ImageFiles,
        target: &forge_python::target::Target,
        lock: &forge_python::lock::PipLock,
        tree: &mut Tree,
        spool: &mut Spool,
        op: &InstallOp,
    ) -> Result<(), InstallError> {
        let at = |e: &dyn std::error::Error| InstallError::new(error_chain(e)).at(op.position);
        let paths =
            forge_python::fetch::fetch(&lock.packages, &self.cache.join("python")).map_err(|e| at(&e))?;
        for (wheel, path) in lock.packages.iter().zip(paths) {
            if target.installed(&wheel.name).is_some() {
                forge_python::wheel::uninstall(view, target, &wheel.name, tree).map_err(|e| at(&e))?;
            }
            forge_python::wheel::install_wheel(&path, target, tree, spool, wheel.requested)
                .map_err(|e| at(&e))?;
        }
        Ok(())
    }
}

/// `PATH` of an image that sets none, as Docker's default.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The value of `name` for the command `op`: its own `VAR=value` prefix,
/// else the image's environment.
fn op_env(request: &InstallRequest<'_>, op: &InstallOp, name: &str) -> Option<String> {
    op.assignments
        .iter()
        .rev()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
        .or_else(|| request.env_var(name).map(str::to_string))
}

/// Whether a command reads the image's files (so the commands before it
/// in the same `RUN` must be materialised while resolving).
fn needs_files(op: &InstallOp) -> bool {
    matches!(op.kind, InstallKind::Pip(_) | InstallKind::AptInstall(_))
}

fn tagged(kind: &str, mut table: toml::Table) -> toml::Table {
    table.insert("kind".into(), kind.into());
    table
}

/// An installer's lock as a table of the lock file.
fn to_table<T: Serialize>(lock: &T) -> Result<toml::Table, InstallError> {
    toml::Table::try_from(lock).map_err(|e| InstallError::new(format!("writing a lock entry: {e}")))
}

/// The next command's table of a lock entry, of `kind`, as the installer's
/// lock type.
fn from_table<T: serde::de::DeserializeOwned>(
    table: Option<&toml::Table>,
    kind: &str,
    op: &InstallOp,
) -> Result<T, InstallError> {
    let mut table = table.cloned().ok_or_else(|| stale_resolution(op))?;
    if table.remove("kind").and_then(|k| k.as_str().map(str::to_owned)).as_deref() != Some(kind) {
        return Err(stale_resolution(op));
    }
    table.try_into().map_err(|e| stale_resolution(op).help(format!("{e}; build with --update-locks")))
}

/// The image's architecture as OCI spells it with its variant (`arm/v7`).
fn oci_arch(request: &InstallRequest<'_>) -> String {
    match &request.at.platform.variant {
        Some(variant) if request.at.platform.architecture == "arm" => format!("arm/{variant}"),
        _ => request.at.platform.architecture.clone(),
    }
}

/// A text file of the image (a requirements file), or an error at `op`.
fn read_image_text(files: &dyn ImageFiles, path: &str, op: &InstallOp) -> Result<String, InstallError> {
    match files::read_to_string(files, path, REQUIREMENTS_LIMIT) {
        Ok(Some(text)) => Ok(text),
        Ok(None) => Err(InstallError::new(format!("{path} is not in the image"))
            .at(op.position)
            .help("COPY it into the image before this RUN")),
        Err(e) => Err(InstallError::new(format!("reading {path} in the image: {e}")).at(op.position)),
    }
}

impl Installer for NativeInstaller {
    fn resolve(&self, request: &InstallRequest<'_>) -> Result<String, InstallError> {
        let inputs = self.inputs(request)?;
        let platform = request.at.platform.to_string();
        let lock_file = Locks::path_of(request.at.dockerfile);
        let existing = self
            .locks
            .get(request.at.dockerfile, request.at.instruction, &platform)
            .map_err(|e| InstallError::new(error_chain(&e)))?;
        let lock = match (self.locks.mode(), existing) {
            (LockMode::Normal | LockMode::Locked, Some(lock)) if lock.inputs == inputs => lock,
            (LockMode::Locked, found) => {
                let why = if found.is_some() {
                    "was made from other inputs (the command, its ENV or a requirements file changed)"
                } else {
                    "has no entry for it"
                };
                return Err(InstallError::new(format!(
                    "{} {why} on {platform}, and --locked forbids resolving it again",
                    lock_file.display()
                ))
                .help("build once without --locked (or with --update-locks) and commit the lock"));
            }
            _ => self.resolve_fresh(request, inputs)?,
        };
        self.locks
            .record(request.at.dockerfile, lock.clone())
            .map_err(|e| InstallError::new(error_chain(&e)))?;
        let commands = self.below(request)?;
        toml::to_string(&Resolution { lock, commands })
            .map_err(|e| InstallError::new(format!("writing the resolution: {e}")))
    }

    fn materialize(
        &self,
        request: &InstallRequest<'_>,
        resolution: &str,
        spool_dir: &Path,
    ) -> Result<Tree, InstallError> {
        let resolution: Resolution = toml::from_str(resolution)
            .map_err(|e| InstallError::new(format!("reading the resolution: {e}")))?;
        let mut spool = Spool::new(spool_dir).map_err(|e| InstallError::new(format!("spooling: {e}")))?;
        let mut layer = Tree::new();
        let mut locked = resolution.lock.commands.iter();
        for (op, below) in request.run.ops.iter().zip(&resolution.commands) {
            let mut out = Tree::new();
            {
                let view = Stack::new(request.files, [&layer]);
                match &op.kind {
                    InstallKind::AptInstall(_) => {
                        let lock: apt::AptLock = from_table(locked.next(), "apt", op)?;
                        lock.check().map_err(|e| stale_resolution(op).help(e))?;
                        let target = self.apt_target(&view, request, op)?;
                        out = apt::materialize(&view, &target, &lock, &self.fetcher()?, &mut spool)
                            .map_err(|e| InstallError::new(error_chain(&e)).at(op.position))?;
                    }
                    InstallKind::Pip(pip) => {
                        let table: toml::Table = from_table(locked.next(), "pip", op)?;
                        let lock = forge_python::lock::PipLock::from_toml_value(&toml::Value::Table(table))
                            .map_err(|e| {
                            stale_resolution(op).help(format!("{e}; build with --update-locks"))
                        })?;
                        let target = self.pip_target(&view, request, op, pip)?;
                        self.install_wheels(&view, &target, &lock, &mut out, &mut spool, op)?;
                    }
                    InstallKind::Remove(patterns) => {
                        remove(&mut layer, patterns);
                        for path in &below.removes {
                            out.whiteout(path);
                        }
                    }
                    InstallKind::AptUpdate | InstallKind::AptClean => {}
                }
            }
            merge(&mut layer, out);
        }
        Ok(layer)
    }
}

impl NativeInstaller {
    /// What each command's layer depends on in the image below the `RUN`.
    fn below(&self, request: &InstallRequest<'_>) -> Result<Vec<Below>, InstallError> {
        let mut all = Vec::new();
        for op in &request.run.ops {
            let mut below = Below::default();
            match &op.kind {
                InstallKind::AptInstall(_) => {
                    let status =
                        files::read(request.files, "var/lib/dpkg/status", STATUS_LIMIT).map_err(|e| {
                            InstallError::new(format!("reading /var/lib/dpkg/status: {e}")).at(op.position)
                        })?;
                    below.dpkg_status = status.map(|s| Digest::of(&s).to_string());
                }
                InstallKind::Pip(pip) => {
                    let target = self.pip_target(request.files, request, op, pip)?;
                    below.installed =
                        target.installed.iter().map(|d| format!("{}=={}", d.name, d.version)).collect();
                }
                InstallKind::Remove(patterns) => below.removes = matches(request.files, patterns),
                InstallKind::AptUpdate | InstallKind::AptClean => {}
            }
            all.push(below);
        }
        Ok(all)
    }
}

fn stale_resolution(op: &InstallOp) -> InstallError {
    InstallError::new("the lock entry of this RUN does not match its commands")
        .at(op.position)
        .help("build with --update-locks to resolve it again")
}

/// The paths of `files` that `patterns` (absolute, with `*`, `?` and
/// `[...]` globs in any component) name, relative, sorted; a match's
/// children are not listed (its whiteout hides them).
fn matches(files: &dyn ImageFiles, patterns: &[String]) -> Vec<String> {
    let mut found = std::collections::BTreeSet::new();
    for pattern in patterns {
        let components: Vec<&str> = pattern.split('/').filter(|c| !c.is_empty() && *c != ".").collect();
        let mut frontier = vec![String::new()];
        for component in &components {
            let mut next = Vec::new();
            for dir in &frontier {
                if is_glob(component) {
                    for name in files.list(dir) {
                        if glob_match(component, &name) {
                            next.push(join(dir, &name));
                        }
                    }
                } else {
                    let path = join(dir, component);
                    if files.node(&path).is_some() {
                        next.push(path);
                    }
                }
            }
            // Follow symlinked directories in the middle of the pattern.
            frontier = next
                .into_iter()
                .map(|p| match files.node(&p).map(|n| n.kind) {
                    Some(NodeKind::Symlink { .. }) => files::resolve(files, &p).unwrap_or(p),
                    _ => p,
                })
                .collect();
        }
        if !components.is_empty() {
            found.extend(frontier);
        }
    }
    // A path under another match is hidden with it.
    let all: Vec<String> = found.into_iter().collect();
    all.iter().filter(|p| !all.iter().any(|q| q != *p && p.starts_with(&format!("{q}/")))).cloned().collect()
}

/// Removes what `patterns` name from the layer made so far.
fn remove(layer: &mut Tree, patterns: &[String]) {
    let names: Vec<String> = layer.iter().map(|(p, _)| p.to_string()).collect();
    for pattern in patterns {
        let pattern = files::normalize(pattern);
        for path in &names {
            let hit = path_glob_match(&pattern, path)
                || path.match_indices('/').any(|(i, _)| path_glob_match(&pattern, &path[..i]));
            if hit {
                layer.remove(path);
            }
        }
    }
}

/// Puts `upper` (one command's output) over `layer` (what the commands
/// before made): a whiteout removes what `layer` has at and below its
/// path (and stays, for the image below); a new node replaces a whiteout
/// of its own path (a directory then becomes opaque).
fn merge(layer: &mut Tree, upper: Tree) {
    let mut reopened = Vec::new();
    for (path, node) in upper.iter() {
        if let NodeKind::Whiteout = node.kind {
            let (parent, name) = path.rsplit_once('/').map_or(("", path), |(p, n)| (p, n));
            let hidden = join(parent, name.trim_start_matches(forge_oci::tree::WHITEOUT_PREFIX));
            let doomed: Vec<String> = layer
                .iter()
                .map(|(p, _)| p.to_string())
                .filter(|p| *p == hidden || p.starts_with(&format!("{hidden}/")))
                .collect();
            for p in doomed {
                layer.remove(&p);
            }
        } else {
            let (parent, name) = path.rsplit_once('/').map_or(("", path), |(p, n)| (p, n));
            let whiteout = join(parent, &format!("{}{name}", forge_oci::tree::WHITEOUT_PREFIX));
            // A directory made again where one was removed must not show
            // the old one's content: it becomes opaque.
            if layer.remove(&whiteout).is_some() && node.is_dir() {
                reopened.push(path.to_string());
            }
        }
    }
    layer.extend(upper);
    for dir in reopened {
        layer.opaque(&dir);
    }
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

fn is_glob(component: &str) -> bool {
    component.contains(['*', '?', '['])
}

/// A whole path against a pattern, component by component.
fn path_glob_match(pattern: &str, path: &str) -> bool {
    let p: Vec<&str> = pattern.split('/').collect();
    let q: Vec<&str> = path.split('/').collect();
    p.len() == q.len() && p.iter().zip(&q).all(|(a, b)| glob_match(a, b))
}

/// `sh` glob matching of one component: `*`, `?`, `[abc]`, `[a-z]`,
/// `[!a]`; a leading `.` is matched only by a literal `.`, as the shell does.
fn glob_match(pattern: &str, name: &str) -> bool {
    if name.starts_with('.') && !pattern.starts_with('.') {
        return false;
    }
    fn go(p: &[char], n: &[char]) -> bool {
        match p.first() {
            None => n.is_empty(),
            Some('*') => (0..=n.len()).any(|i| go(&p[1..], &n[i..])),
            Some('?') => !n.is_empty() && go(&p[1..], &n[1..]),
            Some('[') => {
                let Some(end) = p.iter().skip(1).position(|c| *c == ']').map(|i| i + 1) else {
                    return n.first() == Some(&'[') && go(&p[1..], &n[1..]);
                };
                let Some(c) = n.first() else { return false };
                let (negate, set) = match p[1] {
                    '!' | '^' => (true, &p[2..end]),
                    _ => (false, &p[1..end]),
                };
                let mut hit = false;
                let mut i = 0;
                while i < set.len() {
                    if i + 2 < set.len() && set[i + 1] == '-' {
                        hit |= set[i] <= *c && *c <= set[i + 2];
                        i += 3;
                    } else {
                        hit |= set[i] == *c;
                        i += 1;
                    }
                }
                hit != negate && go(&p[end + 1..], &n[1..])
            }
            Some(c) => n.first() == Some(c) && go(&p[1..], &n[1..]),
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    go(&p, &n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use forge_builder::RunAt;
    use forge_oci::Node;

    #[test]
    fn inputs_are_the_package_requests_and_the_requirements() {
        use forge_builder::run::{InstallOp, InstallRun};
        use forge_dockerfile::Position;
        let cache = tempfile::tempdir().unwrap();
        let installer =
            NativeInstaller::new(cache.path(), LockMode::Normal, cache.path().to_path_buf(), None);
        let op = |kind: InstallKind, assignments: Vec<(String, String)>| InstallOp {
            position: Position { line: 3, column: 5 },
            assignments,
            kind,
        };
        let pip = |requirements: &[&str]| PipInstall {
            program: "pip3".into(),
            requirements: requirements.iter().map(|r| r.to_string()).collect(),
            requirement_files: vec!["/tmp/requirements.txt".into()],
            ..PipInstall::default()
        };
        let inputs = |ops: Vec<InstallOp>, requirements: &str| {
            let mut files = Tree::new();
            files.insert("tmp/requirements.txt", Node::bytes(0o644, requirements));
            let run = InstallRun { ops };
            let platform = forge_oci::Platform::default();
            let at = RunAt {
                dockerfile: Path::new("plugins/p/Dockerfile"),
                position: Position { line: 3, column: 1 },
                instruction: "RUN ...",
                platform: &platform,
            };
            let request = InstallRequest { at, run: &run, files: &files, env: &[] };
            installer.inputs(&request).unwrap()
        };
        let base = inputs(vec![op(InstallKind::Pip(pip(&["pyyaml"])), vec![])], "slugify\n");
        // Clean-ups and environment prefixes do not change what resolves.
        let cleaned = inputs(
            vec![
                op(
                    InstallKind::Pip(pip(&["pyyaml"])),
                    vec![("DEBIAN_FRONTEND".into(), "noninteractive".into())],
                ),
                op(InstallKind::Remove(vec!["/tmp/*".into()]), vec![]),
                op(InstallKind::AptClean, vec![]),
            ],
            "slugify\n",
        );
        assert_eq!(base, cleaned);
        assert_ne!(base, inputs(vec![op(InstallKind::Pip(pip(&["pyyaml"])), vec![])], "slugify==8\n"));
        assert_ne!(base, inputs(vec![op(InstallKind::Pip(pip(&["pyyaml<6"])), vec![])], "slugify\n"));
        // The digest of this request is part of committed locks: it must
        // not change when the code does.
        assert_eq!(base, "sha256:a3591ee3320dabd08cacc5947a676939b26f9394b4b8281aec6bbe3ebb5ba8f6");
    }

    #[test]
    fn globs_as_the_shell() {
        assert!(glob_match("*", "lists"));
        assert!(!glob_match("*", ".hidden"));
        assert!(glob_match(".*", ".hidden"));
        assert!(glob_match("*.log", "dpkg.log"));
        assert!(glob_match("lib[0-9]?", "lib3x"));
        assert!(!glob_match("[!a]b", "ab"));
        assert!(glob_match("[!a]b", "cb"));
    }

    #[test]
    fn clean_ups_remove_from_below_and_from_the_layer() {
        let mut below = Tree::new();
        below.insert("var/lib/apt/lists/deb.debian.org_InRelease", Node::bytes(0o644, "x"));
        below.insert("var/lib/apt/lists/partial", Node::dir(0o700));
        below.insert("var/lib/apt/lists/.keep", Node::bytes(0o644, ""));
        below.insert("tmp/requirements.txt", Node::bytes(0o644, "x"));
        below.insert("lib", Node::symlink("usr/lib"));
        below.insert("usr/lib/x/y", Node::bytes(0o644, "y"));
        let found = matches(
            &below,
            &[
                "/var/lib/apt/lists/*".into(),
                "/tmp/requirements.txt".into(),
                "/lib/x".into(),
                "/nothing".into(),
            ],
        );
        assert_eq!(
            found,
            vec![
                "tmp/requirements.txt",
                "usr/lib/x",
                "var/lib/apt/lists/deb.debian.org_InRelease",
                "var/lib/apt/lists/partial"
            ]
        );

        let mut layer = Tree::new();
        layer.insert("usr/share/doc/jq/copyright", Node::bytes(0o644, "c"));
        layer.insert("usr/bin/jq", Node::bytes(0o755, "elf"));
        remove(&mut layer, &["/usr/share/doc/*".into()]);
        assert_eq!(layer.iter().map(|(p, _)| p).collect::<Vec<_>>(), vec!["usr/bin/jq"]);
    }

    #[test]
    fn merge_applies_whiteouts_to_what_came_before() {
        let mut layer = Tree::new();
        layer.insert("usr/local/lib/python3.11/dist-packages/pip/__init__.py", Node::bytes(0o644, "old"));
        let mut upper = Tree::new();
        upper.whiteout("usr/local/lib/python3.11/dist-packages/pip");
        merge(&mut layer, upper);
        assert_eq!(
            layer.iter().map(|(p, _)| p).collect::<Vec<_>>(),
            vec!["usr/local/lib/python3.11/dist-packages/.wh.pip"]
        );
        let mut again = Tree::new();
        again.insert("usr/local/lib/python3.11/dist-packages/pip", Node::dir(0o755));
        merge(&mut layer, again);
        assert_eq!(
            layer.iter().map(|(p, _)| p).collect::<Vec<_>>(),
            vec![
                "usr/local/lib/python3.11/dist-packages/pip",
                "usr/local/lib/python3.11/dist-packages/pip/.wh..wh..opq"
            ]
        );
    }
}
