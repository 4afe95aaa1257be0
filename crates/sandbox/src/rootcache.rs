//! Fast starts: one unpacked, verified root filesystem per image, shared
//! by every run of that image, and a private writable layer per run, so
//! that no run's writes reach the next one (or the cache).
//!
//! The root is unpacked once into `DIR/<manifest hex>/rootfs` by
//! [`unpack_cached`] (every layer checked against its diff ID, renamed into
//! place only when complete) and never written afterwards. Each run gets a
//! writable view of it, the way a container runtime stacks a container
//! layer on the image's layers:
//!
//! - **overlay** (the default): an overlayfs mount with the cached root as
//!   its read-only lower directory and a fresh per-run upper directory,
//!   mounted inside a private mount namespace (`unshare --mount`, plus
//!   `--user --map-root-user` when we are not root: Linux allows overlay
//!   mounts in user namespaces since 5.11) right before `bwrap` starts, so
//!   the mount disappears with the run. Writes, deletions (whiteouts) and
//!   in-place changes to existing files (copy-up) all land in the upper
//!   directory, which is deleted when the run ends. Starting costs a mount,
//!   whatever the size of the image. bubblewrap 0.8 (Debian 12) cannot
//!   mount overlays itself; later versions' `--overlay` would do the same.
//! - **copy** (the fallback, when the overlay cannot be mounted: an old
//!   kernel, user namespaces without overlay, a path overlayfs options
//!   cannot carry, a host filesystem that cannot be an upper directory):
//!   a full copy of the cached root (`cp -a --reflink=auto`, so a CoW
//!   filesystem shares the blocks), deleted after the run. Slower, equally
//!   private. The reason is reported ([`RunLayer::fallback_reason`]).
//!
//! A hard-link farm was rejected: a program that opens an existing file
//! for writing (not replacing it) would change the cached inode itself.
//!
//! Every build of a changed plugin is a new image, so [`RootCache::prune`]
//! drops the roots of older builds of the same image name that no run is
//! using.

use std::ffi::OsString;
use std::fs;
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output, Stdio};

use forge_oci::{BlobStore, Image};

use crate::error::{Error, Result};
use crate::run::{bwrap_args, prepare, spawn_error, RunOptions};
use crate::spec::RunSpec;
use crate::unpack::unpack_cached;

/// Beside a cached root: the image reference it was unpacked for.
const NAME_FILE: &str = "image";
/// In a run's directory: the root it runs on.
const LOWER_FILE: &str = "lower";

/// Unpacked root filesystems, one per image manifest, under one directory.
#[derive(Debug, Clone)]
pub struct RootCache {
    dir: PathBuf,
}

/// How a run's writable layer is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerKind {
    /// An overlayfs mount over the cached root.
    Overlay,
    /// A private copy of the cached root.
    Copy,
}

impl RootCache {
    /// The cache in `dir` (created when first used).
    pub fn new(dir: impl Into<PathBuf>) -> RootCache {
        RootCache { dir: dir.into() }
    }

    /// The cache's directory.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// The verified root of `image`, unpacked now if it is not there yet.
    /// `name` (the image's reference) is remembered beside it, so that
    /// [`RootCache::prune`] can drop the roots of older builds of it.
    pub fn root(&self, store: &BlobStore, image: &Image, name: &str) -> Result<PathBuf> {
        let root = unpack_cached(store, image, &self.dir)?;
        let label = self.dir.join(image.manifest_digest.hex()).join(NAME_FILE);
        if fs::read_to_string(&label).ok().as_deref() != Some(name) {
            fs::write(&label, name).map_err(|e| Error::io("writing", &label, e))?;
        }
        Ok(root)
    }

    /// Deletes the roots of other builds of image `name` than `keep`
    /// (each is some 100 MB, and every change of a plugin makes a new
    /// image), except those a run is using. Returns how many went.
    pub fn prune(&self, keep: &Path, name: &str) -> Result<usize> {
        forge_oci::temp::remove(&self.dir.join(".runs"), forge_oci::temp::Scope::Stale);
        let in_use: Vec<PathBuf> = fs::read_dir(self.dir.join(".runs"))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|run| fs::read_to_string(run.path().join(LOWER_FILE)).ok())
            .map(PathBuf::from)
            .collect();
        let mut removed = 0;
        let entries = fs::read_dir(&self.dir).map_err(|e| Error::io("listing", &self.dir, e))?;
        for entry in entries.flatten() {
            let dir = entry.path();
            let root = dir.join("rootfs");
            let same_image = fs::read_to_string(dir.join(NAME_FILE)).is_ok_and(|n| n == name);
            if same_image && root != keep && !in_use.contains(&root) {
                remove_tree(&dir).map_err(|e| Error::io("removing", &dir, e))?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// A fresh private writable layer over `root` (a directory of this
    /// cache) for one run; `prefer` is the kind to try first.
    pub fn layer(&self, root: &Path, prefer: LayerKind) -> Result<RunLayer> {
        self.make_layer(root, prefer, false)
    }

    /// As [`RootCache::layer`], for a build's `RUN` whose changes are read
    /// afterwards ([`RunLayer::changes`]): the overlay is mounted with
    /// `userxattr`, so that the opaque directories in its upper directory
    /// are marked by `user.overlay.opaque` whoever mounted it.
    pub fn build_layer(&self, root: &Path) -> Result<RunLayer> {
        self.make_layer(root, LayerKind::Overlay, true)
    }

    /// The verified root of the layers `layers` (blobs with diff IDs, in
    /// order), unpacked once into `DIR/layers-<digest of the diff IDs>`.
    pub fn root_of_layers(
        &self,
        store: &BlobStore,
        layers: &[(forge_oci::oci_spec::image::Descriptor, forge_oci::Digest)],
    ) -> Result<PathBuf> {
        let ids: String = layers.iter().map(|(_, id)| format!("{id}\n")).collect();
        let key = forge_oci::Digest::of(ids.as_bytes());
        let rootfs = self.dir.join(format!("layers-{}", key.hex())).join("rootfs");
        if rootfs.is_dir() {
            return Ok(rootfs);
        }
        match crate::unpack::unpack_layers_to(store, layers, &rootfs) {
            // Another process finished the same layers first: theirs is as good.
            Ok(()) | Err(Error::DestinationExists { .. }) => Ok(rootfs),
            Err(err) => Err(err),
        }
    }

    fn make_layer(&self, root: &Path, prefer: LayerKind, diffable: bool) -> Result<RunLayer> {
        let runs = self.dir.join(".runs");
        fs::create_dir_all(&runs).map_err(|e| Error::io("creating", &runs, e))?;
        // Named after this process (forge_oci::temp): the layer of a run
        // killed with `kill -9` goes with the next run (and stops marking
        // its root as in use), SIGTERM removes it at once.
        forge_oci::temp::remove(&runs, forge_oci::temp::Scope::Stale);
        forge_oci::temp::register_dir(&runs);
        let scratch = tempfile::Builder::new()
            .prefix(&format!("{}run-", forge_oci::temp::prefix(".tmp-")))
            .tempdir_in(&runs)
            .map_err(|e| Error::io("creating a run directory in", &runs, e))?
            .keep();
        // Marks the root as in use for `prune`.
        let marker = scratch.join(LOWER_FILE);
        fs::write(&marker, root.as_os_str().as_encoded_bytes())
            .map_err(|e| Error::io("writing", &marker, e))?;
        let mut layer = RunLayer {
            lower: root.to_owned(),
            scratch,
            kind: LayerKind::Overlay,
            fallback_reason: None,
            userxattr: prefer == LayerKind::Overlay && diffable,
        };
        if prefer == LayerKind::Overlay {
            match layer.probe_overlay() {
                Ok(()) => return Ok(layer),
                Err(reason) => layer.fallback_reason = Some(reason),
            }
        }
        layer.kind = LayerKind::Copy;
        layer.make_copy()?;
        Ok(layer)
    }
}

/// One run's writable view of a cached root; deleted when dropped.
#[derive(Debug)]
pub struct RunLayer {
    lower: PathBuf,
    scratch: PathBuf,
    kind: LayerKind,
    fallback_reason: Option<String>,
    /// Mount the overlay with `userxattr` (a build's `RUN`).
    userxattr: bool,
}

impl RunLayer {
    /// Where the run's changes are after it ended: the overlay's upper
    /// directory, or the whole copy.
    pub fn changes(&self) -> (LayerKind, PathBuf) {
        match self.kind {
            LayerKind::Overlay => (LayerKind::Overlay, self.scratch.join("upper")),
            LayerKind::Copy => (LayerKind::Copy, self.copy_root()),
        }
    }

    /// Overlay or copy.
    pub fn kind(&self) -> LayerKind {
        self.kind
    }

    /// Why the overlay could not be used, when this is a copy.
    pub fn fallback_reason(&self) -> Option<&str> {
        self.fallback_reason.as_deref()
    }

    /// The image's files as they were unpacked (read them, never write).
    pub fn image_root(&self) -> &Path {
        &self.lower
    }

    /// The command that runs `spec` on this layer (nothing started yet).
    pub fn command(&self, spec: &RunSpec, opts: &RunOptions) -> Result<Command> {
        match self.kind {
            LayerKind::Copy => prepare(&self.copy_root(), spec, opts),
            LayerKind::Overlay => {
                let merged = self.scratch.join("merged");
                let mut args = bwrap_args(&merged, &self.lower, spec, opts);
                // Docker creates a missing working directory; in the
                // overlay, so that the cached root stays untouched.
                let chdir = args.iter().position(|a| a == "--chdir").unwrap_or(args.len());
                args.splice(chdir..chdir, [OsString::from("--dir"), OsString::from(&spec.workdir)]);
                let mut command = self.overlay_command();
                command.arg(&opts.bwrap).args(args);
                Ok(command)
            }
        }
    }

    /// Runs `spec` with the caller's stdin, stdout and stderr.
    pub fn run(&self, spec: &RunSpec, opts: &RunOptions) -> Result<ExitStatus> {
        self.command(spec, opts)?.status().map_err(|e| spawn_error(opts, e))
    }

    /// Runs `spec` with stdin from `/dev/null` and returns what it wrote.
    pub fn run_captured(&self, spec: &RunSpec, opts: &RunOptions) -> Result<Output> {
        self.command(spec, opts)?.stdin(Stdio::null()).output().map_err(|e| spawn_error(opts, e))
    }

    /// Runs `spec` with stdout read line by line into `on_line` (stdin and
    /// stderr stay the caller's).
    pub fn run_lines(
        &self,
        spec: &RunSpec,
        opts: &RunOptions,
        on_line: &mut dyn FnMut(&str),
    ) -> Result<ExitStatus> {
        let mut command = self.command(spec, opts)?;
        let mut child = command.stdout(Stdio::piped()).spawn().map_err(|e| spawn_error(opts, e))?;
        if let Some(stdout) = child.stdout.take() {
            let mut reader = io::BufReader::new(stdout);
            let mut line = Vec::new();
            loop {
                line.clear();
                match io::BufRead::read_until(&mut reader, b'\n', &mut line) {
                    Ok(0) => break,
                    Ok(_) => on_line(String::from_utf8_lossy(&line).trim_end_matches(['\n', '\r'])),
                    Err(e) => return Err(Error::Spawn { program: opts.bwrap.clone(), source: e }),
                }
            }
        }
        child.wait().map_err(|e| Error::Spawn { program: opts.bwrap.clone(), source: e })
    }

    fn copy_root(&self) -> PathBuf {
        self.scratch.join("rootfs")
    }

    fn make_copy(&self) -> Result<()> {
        copy_tree(&self.lower, &self.copy_root(), false)
    }

    /// `unshare ... sh -c 'mount overlay; exec "$@"' ...`, waiting for
    /// the program to append.
    fn overlay_command(&self) -> Command {
        let mut command = Command::new("unshare");
        if !running_as_root() {
            command.args(["--user", "--map-root-user"]);
        }
        command.args(["--mount", "--propagation", "private", "--", "sh", "-c"]);
        let extra = if self.userxattr { ",userxattr" } else { "" };
        command.arg(format!(
            "mount -t overlay overlay -o \"lowerdir=$1,upperdir=$2,workdir=$3{extra}\" \"$4\" || exit 125; \
             shift 4; exec \"$@\""
        ));
        command.arg("forge-overlay").arg(&self.lower);
        for part in ["upper", "work", "merged"] {
            command.arg(self.scratch.join(part));
        }
        command
    }

    /// Mounts the overlay once in a throw-away namespace, to know whether
    /// the real run can.
    fn probe_overlay(&self) -> std::result::Result<(), String> {
        for path in [&self.lower, &self.scratch] {
            let text = path.to_string_lossy();
            if text.contains([',', ':', '\\']) {
                return Err(format!("overlayfs options cannot name {text} (`,`, `:` or `\\` in the path)"));
            }
        }
        for part in ["upper", "work", "merged"] {
            let dir = self.scratch.join(part);
            fs::create_dir(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        }
        let mut probe = self.overlay_command();
        probe.arg("true");
        match probe.stdin(Stdio::null()).output() {
            Ok(out) if out.status.success() => Ok(()),
            Ok(out) => Err(format!(
                "mounting an overlay failed: {}",
                String::from_utf8_lossy(&out.stderr).trim().lines().last().unwrap_or("no message")
            )),
            Err(e) => Err(format!("running `unshare`: {e}")),
        }
    }
}

impl Drop for RunLayer {
    fn drop(&mut self) {
        // Best effort: a leftover run directory only takes space.
        let _ = remove_tree(&self.scratch);
    }
}

/// `cp -a --reflink=auto SRC DEST`: a copy of a root file system (sharing
/// blocks on a CoW file system); with `hard_links`, `cp -al`: directories
/// made anew, files hard-linked (only for a root nothing writes into).
pub(crate) fn copy_tree(src: &Path, dest: &Path, hard_links: bool) -> Result<()> {
    let output = Command::new("cp")
        .args(if hard_links { ["-al", "--"].as_slice() } else { ["-a", "--reflink=auto", "--"].as_slice() })
        .arg(src)
        .arg(dest)
        .output()
        .map_err(|e| Error::io("running `cp -a` to copy", src, e))?;
    if !output.status.success() {
        return Err(Error::io(
            "copying the root filesystem to",
            dest,
            io::Error::other(String::from_utf8_lossy(&output.stderr).trim().to_owned()),
        ));
    }
    Ok(())
}

fn running_as_root() -> bool {
    fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// `rm -rf`, making directories writable first (overlay's work directory
/// and read-only directories a program made would stop `remove_dir_all`).
pub(crate) fn remove_tree(path: &Path) -> io::Result<()> {
    if fs::remove_dir_all(path).is_ok() {
        return Ok(());
    }
    for entry in walk_dirs(path) {
        let _ = fs::set_permissions(&entry, fs::Permissions::from_mode(0o700));
    }
    fs::remove_dir_all(path)
}

fn walk_dirs(path: &Path) -> Vec<PathBuf> {
    let mut dirs = vec![path.to_owned()];
    let mut i = 0;
    while i < dirs.len() {
        let _ = fs::set_permissions(&dirs[i], fs::Permissions::from_mode(0o700));
        if let Ok(children) = fs::read_dir(&dirs[i]) {
            for child in children.flatten() {
                if child.file_type().is_ok_and(|t| t.is_dir()) {
                    dirs.push(child.path());
                }
            }
        }
        i += 1;
    }
    dirs
}
