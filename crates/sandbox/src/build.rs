//! A build's `RUN`s executed in the sandbox, each one's changes read as a
//! layer tree.
//!
//! A [`BuildRoot`] is the root file system of one build chain: made at the
//! first `RUN` that has to execute, from the verified root of the base's
//! layers that [`RootCache::root_of_layers`] unpacks once per base, then
//! grown in place by every later layer of the build
//! ([`crate::unpack::apply`]), so no `RUN` unpacks the base again.
//!
//! The chain's root starts as a hard-link farm of the cached root (`cp
//! -al`: a tenth of a second for a 90 MB Python base, where a copy takes
//! seconds). That is safe here, unlike for `cargo xtask run`, because
//! nothing ever writes into a file of it: a `RUN` writes to its overlay's
//! upper directory (a changed file is copied up first), and applying a
//! layer replaces a file (a new inode) rather than writing into it, and
//! sets metadata only on what it creates and on directories, which are
//! never shared. Each `RUN` gets a private overlay over it ([`RootCache::build_layer`]):
//! the command writes only to the overlay's upper directory, which
//! [`crate::diff::overlay_changes`] reads into the layer's tree; the
//! build's root itself changes only by applying the layer that results.
//!
//! The sandbox is `bwrap` as for `cargo xtask run` ([`crate::run`]): new
//! user, mount, pid, ipc, uts and cgroup namespaces, no network unless
//! asked, a fresh `/proc`, a minimal `/dev`, a tmpfs `/tmp`, the image's
//! environment only; nothing of the host is visible but the root, the
//! cache mounts and the bind mounts given.

use std::fs;
use std::io::{self, BufRead};
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use forge_oci::oci_spec::image::Descriptor;
use forge_oci::{BlobStore, Digest, FileSource, NodeKind, RuntimeConfig, Tree};

use crate::diff::{overlay_changes, rel, Owners};
use crate::error::{Error, Result};
use crate::rootcache::{copy_tree, LayerKind, RootCache};
use crate::run::{Bind, RunOptions};
use crate::spec::RunSpec;

/// How many of the last output lines a failure reports.
pub const OUTPUT_TAIL: usize = 20;

/// What one `RUN` executes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildCommand {
    /// The program and its arguments.
    pub argv: Vec<String>,
    /// The environment (Docker's `PATH` and `HOME` are added when missing).
    pub env: Vec<(String, String)>,
    /// The absolute working directory.
    pub workdir: String,
    /// `USER` (empty: root); names are looked up in the image's files.
    pub user: String,
    /// Cache and bind mounts.
    pub binds: Vec<Bind>,
    /// The host's network.
    pub network: bool,
}

/// How a `RUN` ended.
#[derive(Debug)]
pub struct BuildOutcome {
    /// The exit status (`None`: killed by a signal).
    pub code: Option<i32>,
    /// The last lines it wrote (stdout and stderr together), oldest first.
    pub tail: Vec<String>,
    /// Its changes, when it succeeded (empty otherwise).
    pub tree: Tree,
}

/// The root file system of one build chain; see the [module docs](self).
#[derive(Debug)]
pub struct BuildRoot {
    cache: RootCache,
    bwrap: PathBuf,
    /// The directory that holds `rootfs` (removed on drop), once made.
    dir: Option<PathBuf>,
    /// The diff IDs applied to it, in order.
    applied: Vec<Digest>,
}

impl BuildRoot {
    /// A chain whose roots live in `cache` (nothing is made yet); `bwrap`
    /// is the bubblewrap program.
    pub fn new(cache: RootCache, bwrap: PathBuf) -> BuildRoot {
        BuildRoot { cache, bwrap, dir: None, applied: Vec::new() }
    }

    /// Makes the root hold exactly `layers` (the first `base` of them are
    /// the base image's), applying in place what it lacks.
    pub fn sync(&mut self, store: &BlobStore, layers: &[(Descriptor, Digest)], base: usize) -> Result<&Path> {
        let prefix =
            self.applied.len() <= layers.len() && self.applied.iter().zip(layers).all(|(a, (_, id))| a == id);
        if self.dir.is_none() || !prefix {
            self.discard();
            let base = base.min(layers.len());
            let cached = self.cache.root_of_layers(store, &layers[..base])?;
            let dir = self.cache.chain_dir()?;
            copy_tree(&cached, &dir.join("rootfs"), true)?;
            self.dir = Some(dir);
            self.applied = layers[..base].iter().map(|(_, id)| id.clone()).collect();
        }
        let root = self.dir.as_ref().expect("made above").join("rootfs");
        let rest = &layers[self.applied.len()..];
        if !rest.is_empty() {
            crate::unpack::apply(store, rest, &root)?;
            self.applied.extend(rest.iter().map(|(_, id)| id.clone()));
        }
        Ok(self.dir.as_ref().expect("made above"))
    }

    /// Runs `command` over the root (after [`BuildRoot::sync`]); the
    /// changes' files are moved to `spool`.
    pub fn run(&mut self, command: &BuildCommand, spool: &Path) -> Result<BuildOutcome> {
        let dir = self.dir.clone().ok_or_else(|| {
            Error::io(
                "running a RUN in",
                PathBuf::from("(no root)"),
                io::Error::other("the root was not made"),
            )
        })?;
        let root = dir.join("rootfs");
        let config = RuntimeConfig {
            user: Some(command.user.clone()).filter(|u| !u.is_empty()),
            env: command.env.iter().map(|(k, v)| format!("{k}={v}")).collect(),
            entrypoint: Some(command.argv.clone()),
            working_dir: Some(command.workdir.clone()),
            ..RuntimeConfig::default()
        };
        let spec = RunSpec::from_image(&config, &[], &root)?;
        let mut binds = command.binds.clone();
        if command.network && Path::new("/etc/resolv.conf").is_file() {
            binds.push(Bind {
                source: "/etc/resolv.conf".into(),
                dest: "/etc/resolv.conf".into(),
                read_only: true,
            });
        }
        let opts = RunOptions { bwrap: self.bwrap.clone(), network: command.network, binds };
        let layer = self.cache.build_layer(&root)?;
        let mut cmd = layer.command(&spec, &opts)?;
        let (code, tail) = run_tail(&mut cmd, &opts)?;
        if code != Some(0) {
            return Ok(BuildOutcome { code, tail, tree: Tree::new() });
        }
        let owners = Owners { host: host_ids(), run: (spec.uid, spec.gid) };
        let mut skip: Vec<String> = ["proc", "dev", "tmp"].map(String::from).to_vec();
        skip.extend(opts.binds.iter().map(|b| rel(&b.dest)));
        skip.push(rel(&spec.workdir));
        let tree = match layer.changes() {
            (LayerKind::Overlay, upper) => overlay_changes(&root, &upper, owners, spool, &skip)?,
            (LayerKind::Copy, _) => {
                return Err(Error::io(
                    "mounting an overlay over",
                    &root,
                    io::Error::other(format!(
                        "a RUN's changes are read from an overlay, which this machine cannot mount ({}); use Linux 5.11 or newer with unprivileged overlayfs, or run as root",
                        layer.fallback_reason().unwrap_or("no reason given")
                    )),
                ))
            }
        };
        Ok(BuildOutcome { code, tail, tree })
    }

    fn discard(&mut self) {
        if let Some(dir) = self.dir.take() {
            let _ = crate::rootcache::remove_tree(&dir);
        }
        self.applied.clear();
    }
}

impl Drop for BuildRoot {
    fn drop(&mut self) {
        self.discard();
    }
}

impl RootCache {
    /// A fresh directory for a build chain's root (named after this
    /// process, so a killed build's goes with the next).
    fn chain_dir(&self) -> Result<PathBuf> {
        let chains = self.dir().join(".chains");
        fs::create_dir_all(&chains).map_err(|e| Error::io("creating", &chains, e))?;
        forge_oci::temp::remove(&chains, forge_oci::temp::Scope::Stale);
        forge_oci::temp::register_dir(&chains);
        Ok(tempfile::Builder::new()
            .prefix(&format!("{}chain-", forge_oci::temp::prefix(".tmp-")))
            .tempdir_in(&chains)
            .map_err(|e| Error::io("creating a build root in", &chains, e))?
            .keep())
    }
}

/// Runs `cmd` with stdin from `/dev/null`, stdout and stderr into one
/// pipe; the exit code and the last [`OUTPUT_TAIL`] lines.
fn run_tail(cmd: &mut Command, opts: &RunOptions) -> Result<(Option<i32>, Vec<String>)> {
    let (reader, writer) = io::pipe().map_err(|e| Error::Spawn { program: opts.bwrap.clone(), source: e })?;
    let writer2 = writer.try_clone().map_err(|e| Error::Spawn { program: opts.bwrap.clone(), source: e })?;
    cmd.stdin(std::process::Stdio::null()).stdout(writer).stderr(writer2);
    let mut child = cmd.spawn().map_err(|e| crate::run::spawn_error(opts, e))?;
    // The command's copies of the pipe's write end must go, or the read
    // below never ends.
    cmd.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null());
    let mut tail = std::collections::VecDeque::with_capacity(OUTPUT_TAIL);
    let mut reader = io::BufReader::new(reader);
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) => break,
            Ok(_) => {
                if tail.len() == OUTPUT_TAIL {
                    tail.pop_front();
                }
                tail.push_back(String::from_utf8_lossy(&line).trim_end_matches(['\n', '\r']).to_string());
            }
            Err(e) => return Err(Error::Spawn { program: opts.bwrap.clone(), source: e }),
        }
    }
    let status = child.wait().map_err(|e| Error::Spawn { program: opts.bwrap.clone(), source: e })?;
    Ok((status.code(), tail.into()))
}

fn host_ids() -> (u32, u32) {
    fs::metadata("/proc/self").map_or((0, 0), |m| (m.uid(), m.gid()))
}

/// Writes `tree` (paths relative to `dest`) as plain files under `dest`,
/// for a bind mount: regular files, directories, symlinks (hard links
/// become copies; whiteouts and devices are not part of a context).
pub fn materialize(tree: &Tree, dest: &Path) -> Result<()> {
    fs::create_dir_all(dest).map_err(|e| Error::io("creating", dest, e))?;
    let mut dirs = Vec::new();
    for (path, node) in tree.entries() {
        let at = dest.join(path);
        match &node.kind {
            NodeKind::Dir => {
                fs::create_dir_all(&at).map_err(|e| Error::io("creating", &at, e))?;
                dirs.push((at, node.mode));
            }
            NodeKind::File { source, .. } => {
                match source {
                    FileSource::Path(p) | FileSource::Spooled { path: p, .. } => {
                        fs::copy(p, &at).map_err(|e| Error::io("copying", p, e))?;
                    }
                    FileSource::Bytes(bytes) => {
                        fs::write(&at, bytes).map_err(|e| Error::io("writing", &at, e))?
                    }
                    FileSource::Layer { .. } => continue,
                };
                fs::set_permissions(&at, fs::Permissions::from_mode(node.mode))
                    .map_err(|e| Error::io("setting the mode of", &at, e))?;
            }
            NodeKind::Symlink { target } => {
                symlink(target, &at).map_err(|e| Error::io("creating", &at, e))?
            }
            NodeKind::Hardlink { target } => {
                fs::copy(dest.join(target), &at).map_err(|e| Error::io("copying", &at, e))?;
            }
            _ => {}
        }
    }
    for (dir, mode) in dirs.into_iter().rev() {
        fs::set_permissions(&dir, fs::Permissions::from_mode(mode))
            .map_err(|e| Error::io("setting the mode of", &dir, e))?;
    }
    Ok(())
}
