//! The seam through which a `RUN` that no native installer takes (see
//! [`crate::run`]) is executed at build time: in a sandbox over the root
//! file system of the image so far, its changes captured as a layer.
//!
//! Planning keeps such a `RUN` as a step's [`SandboxRun`]: the argv (shell
//! form through the stage's `SHELL`, exec form as given), the environment
//! (the image's `ENV`, then the build args in scope, as `docker build`
//! passes them), the working directory, the user and the `--mount`s, all
//! decided from the Dockerfile alone. [`crate::execute`] keys the layer by
//! the parent layers' diff IDs and [`SandboxRun::key_text`] (with the
//! content of its bind mounts), and only on a cache miss asks the
//! [`Runner`] the caller injects to run it over the layers below
//! ([`RunChain::run`]): one chain per build, so the root file system is
//! made once and each new layer is applied to it in place.
//!
//! The builder executes nothing itself and does not know how the sandbox
//! works: forge-pipeline's runner drives forge-sandbox (bubblewrap).
//! [`NoRunner`] refuses every sandboxed `RUN` (lint, `--native-only`).

use std::path::Path;

use forge_dockerfile::{Flag, Position, RawWord};
use forge_oci::oci_spec::image::Descriptor;
use forge_oci::{Digest, Tree};

use crate::context::resolve;
use crate::install::RunAt;
use crate::run::Unrecognized;

/// A `RUN` executed in the sandbox, as planned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxRun {
    /// The program and its arguments: `SHELL` + the text for the shell
    /// form, the JSON array for the exec form.
    pub argv: Vec<String>,
    /// The environment, in order: the image's `ENV`, then the build args in
    /// scope that `ENV` does not set.
    pub env: Vec<(String, String)>,
    /// The absolute working directory.
    pub workdir: String,
    /// `USER` at the `RUN` (empty: root).
    pub user: String,
    /// `--mount`s, in order.
    pub mounts: Vec<RunMount>,
    /// `--network=none`: no network even with `--run-network`.
    pub no_network: bool,
    /// Why no native installer takes this `RUN` (for the refusals of
    /// [`NoRunner`]).
    pub not_native: Unrecognized,
}

/// A `RUN --mount`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunMount {
    /// `type=cache`: a directory kept between builds, outside the image.
    Cache {
        /// Where it is mounted (absolute).
        target: String,
        /// `id=` (default: the target), what names the directory.
        id: String,
        /// `ro`/`readonly`.
        read_only: bool,
    },
    /// `type=bind`: files of the build context, read-only unless `rw`
    /// (then writes are thrown away, as with `BuildKit`).
    Bind {
        /// Where it is mounted (absolute).
        target: String,
        /// `source=` as written (default: the context root).
        source: String,
        /// What is bound: the context's files as `COPY source target`
        /// would copy them (`.dockerignore` and the secrets list applied),
        /// with paths relative to the target.
        tree: Tree,
        /// `rw`/`readwrite`.
        read_write: bool,
    },
}

impl SandboxRun {
    /// The canonical text of everything but the bind mounts' content that
    /// decides what the `RUN` does: with the parents' diff IDs and the
    /// bind trees, its layer's cache key.
    pub fn key_text(&self) -> String {
        let mut text = String::from("forge-sandbox-run-v1\n");
        let mut field = |name: &str, value: &str| {
            text.push_str(&format!("{name} {} {value}\n", value.len()));
        };
        for arg in &self.argv {
            field("arg", arg);
        }
        for (k, v) in &self.env {
            field("env", &format!("{k}={v}"));
        }
        field("workdir", &self.workdir);
        field("user", &self.user);
        field("network", if self.no_network { "none" } else { "default" });
        for mount in &self.mounts {
            match mount {
                RunMount::Cache { target, id, read_only } => {
                    field("cache", &format!("{target}\0{id}\0{read_only}"));
                }
                RunMount::Bind { target, source, read_write, .. } => {
                    field("bind", &format!("{target}\0{source}\0{read_write}"));
                }
            }
        }
        text
    }

    /// The bind mounts' trees, each under `bind/INDEX/`, for the key.
    pub fn key_tree(&self) -> Tree {
        let mut tree = Tree::new();
        for (index, mount) in self.mounts.iter().enumerate() {
            if let RunMount::Bind { tree: bound, .. } = mount {
                tree.insert(format!("bind/{index}"), forge_oci::Node::dir(0o755));
                for (path, node) in bound.iter() {
                    tree.insert(format!("bind/{index}/{path}"), node.clone());
                }
            }
        }
        tree
    }
}

/// A layer below a `RUN`: its descriptor in the store and its diff ID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerBelow {
    /// The blob.
    pub descriptor: Descriptor,
    /// The uncompressed digest.
    pub diff_id: Digest,
}

/// What a [`RunChain`] is asked to run.
#[derive(Debug)]
pub struct RunRequest<'a> {
    /// The `RUN`.
    pub at: RunAt<'a>,
    /// What to run.
    pub run: &'a SandboxRun,
    /// Every layer of the image below the `RUN`, the base's first.
    pub below: &'a [LayerBelow],
    /// How many of [`RunRequest::below`] are the base image's.
    pub base_layers: usize,
}

/// Why a sandboxed `RUN` failed or could not run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunError {
    /// What went wrong (`the command exited with status 2`).
    pub message: String,
    /// The last lines the command wrote (stdout and stderr), oldest first.
    pub output: Vec<String>,
    /// What to do.
    pub help: Option<String>,
}

impl RunError {
    /// An error with a message only.
    pub fn new(message: impl Into<String>) -> RunError {
        RunError { message: message.into(), output: Vec::new(), help: None }
    }

    /// The same error with a hint.
    pub fn help(mut self, help: impl Into<String>) -> RunError {
        self.help = Some(help.into());
        self
    }
}

/// Executes sandboxed `RUN`s; see the [module docs](self).
pub trait Runner: Sync {
    /// Whether `request` can run here at all (checked before the cache is
    /// looked at, so that `--native-only` and a missing sandbox fail the
    /// same way whatever the cache holds).
    fn check(&self, request: &RunRequest<'_>) -> Result<(), RunError>;

    /// A new chain for one build: nothing is made until it first runs.
    fn chain(&self) -> Box<dyn RunChain + '_>;
}

/// The root file system of one build, kept across its `RUN`s.
pub trait RunChain {
    /// Runs `request` over the image made of `request.below` (applying to
    /// the chain's root what it lacks of them) and returns the changes as
    /// a layer tree, its files under `spool` (a directory that outlives
    /// the layer's writing).
    fn run(&mut self, request: &RunRequest<'_>, spool: &Path) -> Result<Tree, RunError>;
}

/// The runner of a build that has none: every sandboxed `RUN` is refused.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoRunner;

impl Runner for NoRunner {
    fn check(&self, request: &RunRequest<'_>) -> Result<(), RunError> {
        let why = &request.run.not_native;
        Err(RunError::new(format!(
            "this RUN must be executed in the sandbox (no native installer takes it: {} at {}), and this build has none",
            why.message, why.position
        ))
        .help("`cargo xtask build` runs such RUNs in a bubblewrap sandbox; or make the RUN a plain `pip install`/`apt-get install`"))
    }

    fn chain(&self) -> Box<dyn RunChain + '_> {
        Box::new(NoChain)
    }
}

struct NoChain;

impl RunChain for NoChain {
    fn run(&mut self, _: &RunRequest<'_>, _: &Path) -> Result<Tree, RunError> {
        Err(RunError::new("this build runs no sandboxed RUN"))
    }
}

/// A `RUN` flag refused or misread, with its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FlagError {
    pub position: Position,
    pub message: String,
    pub help: &'static str,
}

/// What the flags of a sandboxed `RUN` ask for, read as `BuildKit` reads
/// them (binds are resolved by the planner, which owns the context).
#[derive(Debug, Default)]
pub(crate) struct Flags {
    pub caches: Vec<(usize, RunMount)>,
    /// `(index, target, source, read_write, position of the flag)`.
    pub binds: Vec<(usize, String, String, bool, Position)>,
    pub no_network: bool,
}

const MOUNT_HELP: &str =
    "write --mount=type=cache,target=DIR[,id=ID][,ro] or --mount=type=bind[,source=PATH],target=DIR[,rw]";

/// Reads `--mount`, `--network` and `--security` of a sandboxed `RUN`;
/// `workdir` makes relative targets absolute.
pub(crate) fn read_flags(flags: &[Flag], workdir: &str) -> Result<Flags, FlagError> {
    let mut out = Flags::default();
    for (index, flag) in flags.iter().enumerate() {
        let at = flag.position;
        let err = |message: String, help: &'static str| FlagError { position: at, message, help };
        let value = flag.value.as_ref().map_or("", RawWord::as_str);
        match flag.name.as_str() {
            "network" => {
                match value {
                    "none" => out.no_network = true,
                    "default" => {}
                    other => return Err(err(
                        format!("`RUN --network={other}` is not supported (only `none` and `default`)"),
                        "drop the flag; `--run-network` on the command line gives RUNs the host's network",
                    )),
                }
            }
            "security" => {
                return Err(err(
                    format!(
                        "`RUN --security={value}` is not supported: sandboxed RUNs never get more privileges"
                    ),
                    "drop the flag",
                ))
            }
            "mount" => {
                let mut kind = "bind".to_string();
                let mut target = None;
                let mut source = None;
                let mut id = None;
                let mut read_only = None;
                for field in value.split(',').filter(|f| !f.is_empty()) {
                    let (key, val) = match field.split_once('=') {
                        Some((k, v)) => (k.trim(), Some(v.trim())),
                        None => (field.trim(), None),
                    };
                    match (key, val) {
                        ("type", Some(v)) => kind = v.to_string(),
                        ("target" | "dst" | "destination", Some(v)) => target = Some(v.to_string()),
                        ("source" | "src", Some(v)) => source = Some(v.to_string()),
                        ("id", Some(v)) => id = Some(v.to_string()),
                        ("ro" | "readonly", None | Some("true")) => read_only = Some(true),
                        ("ro" | "readonly", Some("false")) => read_only = Some(false),
                        ("rw" | "readwrite", None | Some("true")) => read_only = Some(false),
                        ("rw" | "readwrite", Some("false")) => read_only = Some(true),
                        // Accepted as BuildKit's defaults say: one cache
                        // directory, shared by the builds of this machine.
                        ("sharing", Some("shared" | "locked" | "private")) => {}
                        ("mode" | "uid" | "gid", Some(_)) if kind == "cache" => {}
                        _ => {
                            return Err(err(
                                format!("`--mount` option `{field}` is not supported"),
                                MOUNT_HELP,
                            ))
                        }
                    }
                }
                let Some(target) = target.filter(|t| !t.is_empty()) else {
                    return Err(err("`--mount` needs `target=DIR`".into(), MOUNT_HELP));
                };
                let target = resolve(workdir, &target);
                if target == "/" {
                    return Err(err("a `--mount` cannot cover `/`".into(), MOUNT_HELP));
                }
                match kind.as_str() {
                    "cache" => {
                        if source.is_some() {
                            return Err(err(
                                "`--mount=type=cache,source=...` (a cache from another stage) is not supported".into(),
                                MOUNT_HELP,
                            ));
                        }
                        let id = id.unwrap_or_else(|| target.clone());
                        let read_only = read_only.unwrap_or(false);
                        out.caches.push((index, RunMount::Cache { target, id, read_only }));
                    }
                    "bind" => {
                        if id.is_some() {
                            return Err(err("`id=` is for cache mounts".into(), MOUNT_HELP));
                        }
                        let source = source.unwrap_or_else(|| ".".to_string());
                        out.binds.push((index, target, source, read_only == Some(false), at));
                    }
                    other => {
                        return Err(err(
                            format!("`RUN --mount=type={other}` is not supported (only `cache` and `bind`)"),
                            "secrets and ssh agents never reach a build: COPY what the RUN needs, or bind it from the context",
                        ))
                    }
                }
            }
            other => {
                return Err(err(format!("`RUN --{other}` is not a RUN flag"), "RUN takes --mount, --network"))
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(text: &str) -> Result<Flags, FlagError> {
        let file = forge_dockerfile::parse(text);
        let (instrs, errors) = forge_dockerfile::parse_instructions(&file);
        assert!(errors.is_empty(), "{errors:?}");
        let forge_dockerfile::Instr::Run(run) = &instrs[1].node else { panic!("not a RUN") };
        read_flags(&run.flags, "/work")
    }

    #[test]
    fn mounts_are_read_as_buildkit_reads_them() {
        let f = flags("FROM x\nRUN --mount=type=cache,target=cache,id=pip --mount=source=src,target=/s,rw --network=none true\n").unwrap();
        assert_eq!(
            f.caches,
            [(0, RunMount::Cache { target: "/work/cache".into(), id: "pip".into(), read_only: false })]
        );
        assert_eq!(f.binds.len(), 1);
        assert_eq!((f.binds[0].1.as_str(), f.binds[0].2.as_str(), f.binds[0].3), ("/s", "src", true));
        assert!(f.no_network);
        let f = flags("FROM x\nRUN --mount=type=cache,target=/c true\n").unwrap();
        assert_eq!(f.caches[0].1, RunMount::Cache { target: "/c".into(), id: "/c".into(), read_only: false });
    }

    #[test]
    fn other_mounts_and_security_are_refused_at_their_flag() {
        for (text, column, says) in [
            ("FROM x\nRUN --mount=type=secret,id=x,target=/s true\n", 5, "type=secret"),
            ("FROM x\nRUN true\nRUN  --security=insecure true\n", 6, "--security=insecure"),
            ("FROM x\nRUN --mount=type=cache true\n", 5, "target=DIR"),
            ("FROM x\nRUN --mount=type=cache,target=/c,bogus=1 true\n", 5, "bogus=1"),
            ("FROM x\nRUN --network=host true\n", 5, "--network=host"),
        ] {
            let file = forge_dockerfile::parse(text);
            let (instrs, _) = forge_dockerfile::parse_instructions(&file);
            let forge_dockerfile::Instr::Run(run) = &instrs.last().unwrap().node else { panic!() };
            let err = read_flags(&run.flags, "/").unwrap_err();
            assert_eq!(err.position.column, column, "{text}");
            assert!(err.message.contains(says), "{text}: {}", err.message);
        }
    }
}
