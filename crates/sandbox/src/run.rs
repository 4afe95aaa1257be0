//! A [`RunSpec`] started under bubblewrap, the closest thing to `docker run`
//! that needs no daemon and works unprivileged.
//!
//! The root filesystem is bind-mounted read-write as `/`, with a fresh
//! `/proc`, a minimal `/dev`, and a tmpfs `/tmp` only if the image has no
//! `/tmp` of its own. `--unshare-all` gives new user, mount, pid, ipc, uts,
//! cgroup and network namespaces (no network unless
//! [`RunOptions::network`]). `--unshare-user --uid U --gid G` are always
//! given, root included: `--unshare-all` only *tries* a user namespace, and
//! without `--uid 0` an unprivileged caller would run the image's root
//! process as itself (its uid is what bwrap maps by default).
//! `--die-with-parent` keeps no
//! orphan behind, and `--new-session` stops the sandboxed program from
//! injecting keystrokes into the caller's terminal (`TIOCSTI`); the
//! standard streams stay the caller's, so the output is simply printed.
//! The environment is exactly the spec's (`--clearenv` before the
//! `--setenv`s, as bwrap applies them in order).
//!
//! bubblewrap 0.8 (Debian 12) has no overlay mounts, so what a program
//! writes lands in the root filesystem given here; mount points that bwrap
//! needs (`/proc`, `/dev`, `/tmp`, binds) and a missing working directory
//! are created there too. [`crate::rootcache`] gives each run a private
//! layer over a shared root for that reason.

use std::ffi::OsString;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output, Stdio};

use crate::error::{Error, Result};
use crate::scope;
use crate::spec::RunSpec;

/// How to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOptions {
    /// The bubblewrap program, looked up in `PATH` unless it has a slash.
    pub bwrap: PathBuf,
    /// Keep the host's network (`--share-net`) instead of an empty network
    /// namespace.
    pub network: bool,
    /// Host directories bound into the sandbox, in order (a later bind
    /// inside an earlier one shadows that part of it, as with `docker run -v`).
    pub binds: Vec<Bind>,
}

impl Default for RunOptions {
    fn default() -> RunOptions {
        RunOptions { bwrap: PathBuf::from("bwrap"), network: false, binds: Vec::new() }
    }
}

/// A host directory (or file) seen at `dest` inside the sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bind {
    /// The host path.
    pub source: PathBuf,
    /// The absolute path inside the sandbox.
    pub dest: String,
    /// Read-only (`--ro-bind`) rather than read-write (`--bind`).
    pub read_only: bool,
}

/// Runs `spec` in `rootfs` with the caller's stdin, stdout and stderr, and
/// returns its exit status.
pub fn run(rootfs: &Path, spec: &RunSpec, opts: &RunOptions) -> Result<ExitStatus> {
    let mut command = prepare(rootfs, spec, opts)?;
    command.status().map_err(|e| spawn_error(opts, e))
}

/// Runs `spec` in `rootfs` with stdin from `/dev/null` and returns what it
/// wrote (for tests and for callers that want the output as data).
pub fn run_captured(rootfs: &Path, spec: &RunSpec, opts: &RunOptions) -> Result<Output> {
    let mut command = prepare(rootfs, spec, opts)?;
    command.stdin(Stdio::null()).output().map_err(|e| spawn_error(opts, e))
}

/// The `bwrap` command line for `spec` (nothing is created or started).
pub fn bwrap_command(rootfs: &Path, spec: &RunSpec, opts: &RunOptions) -> Command {
    let mut command = Command::new(&opts.bwrap);
    command.args(bwrap_args(rootfs, rootfs, spec, opts));
    command
}

/// `bwrap`'s arguments: `root` becomes `/`; `image_root` is where the
/// image's files can be looked at now (the same directory, or the lower
/// layer of an overlay that is mounted only when the run starts).
pub(crate) fn bwrap_args(root: &Path, image_root: &Path, spec: &RunSpec, opts: &RunOptions) -> Vec<OsString> {
    let mut command = Args(Vec::new());
    command.arg("--bind").arg(root).arg("/");
    command.args(["--proc", "/proc", "--dev", "/dev"]);
    // A symlink `/tmp` counts as the image's own.
    if fs::symlink_metadata(image_root.join("tmp")).is_err() {
        command.args(["--tmpfs", "/tmp"]);
    }
    for bind in &opts.binds {
        command.arg(if bind.read_only { "--ro-bind" } else { "--bind" }).arg(&bind.source).arg(&bind.dest);
    }
    command.arg("--unshare-all");
    if opts.network {
        command.arg("--share-net");
    }
    command.arg("--unshare-user");
    command.arg("--uid").arg(spec.uid.to_string());
    command.arg("--gid").arg(spec.gid.to_string());
    command.args(["--die-with-parent", "--new-session"]);
    command.arg("--chdir").arg(&spec.workdir);
    command.arg("--clearenv");
    for (key, value) in &spec.env {
        command.arg("--setenv").arg(key).arg(value);
    }
    command.arg("--").args(&spec.argv);
    command.0
}

/// An argument list with `Command`'s `arg`/`args` shape.
struct Args(Vec<OsString>);

impl Args {
    fn arg(&mut self, arg: impl AsRef<std::ffi::OsStr>) -> &mut Args {
        self.0.push(arg.as_ref().to_owned());
        self
    }

    fn args<I: IntoIterator<Item = S>, S: AsRef<std::ffi::OsStr>>(&mut self, args: I) -> &mut Args {
        for arg in args {
            self.arg(arg);
        }
        self
    }
}

pub(crate) fn prepare(rootfs: &Path, spec: &RunSpec, opts: &RunOptions) -> Result<Command> {
    // Docker creates a missing working directory; bwrap would fail on it.
    let workdir: Vec<OsString> =
        spec.workdir.split('/').filter(|part| !part.is_empty() && *part != ".").map(OsString::from).collect();
    if workdir.iter().any(|part| part == "..") {
        return Err(Error::io(
            "creating the working directory",
            &spec.workdir,
            io::Error::new(io::ErrorKind::InvalidInput, "`..` in the working directory"),
        ));
    }
    scope::resolve_dir(rootfs, &workdir).map_err(|e| {
        Error::io(
            "creating the working directory",
            rootfs.join(spec.workdir.trim_start_matches('/')),
            io::Error::other(e),
        )
    })?;
    Ok(bwrap_command(rootfs, spec, opts))
}

pub(crate) fn spawn_error(opts: &RunOptions, source: io::Error) -> Error {
    if source.kind() == io::ErrorKind::NotFound {
        Error::BwrapMissing { program: opts.bwrap.clone() }
    } else {
        Error::Spawn { program: opts.bwrap.clone(), source }
    }
}
