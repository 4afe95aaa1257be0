//! The `RUN`s a native installer can take: `pip install` and `apt-get`
//! with their usual clean-ups, recognised from the shell text (or exec
//! form) of a `RUN` into an [`InstallRun`], each command with its position
//! in the Dockerfile. Nothing here executes or resolves anything: the plan
//! keeps the [`InstallRun`] as a step, and an [`Installer`] the caller
//! injects turns it into a layer at execute time.
//!
//! A `RUN` that is not entirely made of the commands below is refused with
//! the position of the first word that could not be taken, and why
//! ([`Unrecognized`]).

use forge_dockerfile::Position;

/// A `RUN` made only of commands a native installer takes, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstallRun {
    /// The commands, in the order the shell would run them.
    pub ops: Vec<InstallOp>,
}

/// One command of an [`InstallRun`], with where it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstallOp {
    /// Where the command's first word is in the Dockerfile.
    pub position: Position,
    /// `VAR=value` assignments before the command
    /// (`DEBIAN_FRONTEND=noninteractive apt-get ...`), expanded.
    pub assignments: Vec<(String, String)>,
    /// What it does.
    pub kind: InstallKind,
}

/// What an [`InstallOp`] does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InstallKind {
    /// `pip install ...` (any spelling of pip).
    Pip(PipInstall),
    /// `apt-get update` / `apt update`: the installer reads the indexes it
    /// needs anyway; the effect on the tree is none (the lists are not kept).
    AptUpdate,
    /// `apt-get install ...` / `apt install ...`.
    AptInstall(AptInstall),
    /// `apt-get clean`, `apt-get autoclean`, `apt-get autoremove`: nothing
    /// of apt's caches reaches our layers, so no effect on the tree.
    AptClean,
    /// `rm -rf PATH...` (`-r`, `-f`, `-rf`, `-fr`, `--recursive`,
    /// `--force`): the paths (absolute, or relative to the working
    /// directory, already joined; may hold `*`, `?` and `[...]` globs)
    /// are removed from what the step has installed and hidden (whiteouts)
    /// where the image below has them.
    Remove(Vec<String>),
}

/// `pip install`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PipInstall {
    /// The interpreter as named: `python3`, `/usr/bin/python3` for
    /// `python3 -m pip`, or `None` for a `pip`/`pip3`/`pip3.11` command
    /// (the `pip` program as named then is in `program`).
    pub python: Option<String>,
    /// The program word as written (`pip3`, `python3`, `/usr/bin/python3`).
    pub program: String,
    /// Requirement specifiers in order, as the shell gives them
    /// (`pillow<7`, `requests[socks]==2.31.0`, `pip`).
    pub requirements: Vec<String>,
    /// `-r FILE` / `--requirement FILE`, in order: absolute paths in the
    /// image (a relative path already joined with the working directory).
    pub requirement_files: Vec<String>,
    /// `-c FILE` / `--constraint FILE`, as `requirement_files`.
    pub constraint_files: Vec<String>,
    /// `-U` / `--upgrade`.
    pub upgrade: bool,
    /// `--no-deps`.
    pub no_deps: bool,
    /// `--pre`.
    pub pre: bool,
    /// `-i URL` / `--index-url URL`.
    pub index_url: Option<String>,
    /// `--extra-index-url URL`, in order.
    pub extra_index_urls: Vec<String>,
    /// `-f URL` / `--find-links URL`, in order.
    pub find_links: Vec<String>,
    /// `--no-index`.
    pub no_index: bool,
    /// `--compile`: write `.pyc` files (the default here, as for
    /// `--no-compile`, is to write none; see the README).
    pub compile: bool,
}

/// `apt-get install` / `apt install`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AptInstall {
    /// The packages in order: name and, for `pkg=version`, the version.
    pub packages: Vec<(String, Option<String>)>,
    /// `--no-install-recommends` (otherwise apt's default: Recommends are
    /// installed too).
    pub no_install_recommends: bool,
}

/// Why a `RUN` cannot be taken natively: the first word we could not take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unrecognized {
    /// Where that word is in the Dockerfile.
    pub position: Position,
    /// What it is and why it was not taken (``ls` is not a package
    /// installer command``, ``pip option `--user` is not supported``).
    pub message: String,
}
