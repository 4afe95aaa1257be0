//! Planning a build: a Dockerfile read over a base image's config, the way
//! `docker build` would evaluate it, into a [`BuildPlan`] that
//! [`crate::execute`] turns into an image.
//!
//! Planning is pure with respect to the store: it reads the build context
//! (and spools the members of archives `ADD` extracts into a temporary
//! directory the plan owns), but writes no blob and sets no ref. Each
//! `COPY`/`ADD` (and a `WORKDIR` that creates its directory) becomes a step
//! with a [`Tree`]; every other instruction a step with the
//! [`ConfigChange`] it makes, both with the instruction's text (the
//! history's `created_by`) and its position in the Dockerfile, which every
//! error points at.
//!
//! The base images are resolved while planning, by the caller's
//! function ([`plan_target`]), only for the stages the target needs (see
//! [`crate::stages`]): the target's steps are the plan's, each stage it
//! needs is a [`StagePlan`] of its own, and a `COPY --from` a step with a
//! [`CopyFrom`] whose tree is made at execute time, from the image it reads.
//! [`base_reference`] says which image the default target's chain of
//! stages starts from.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use forge_dockerfile::{
    expand_word, parse_chmod, parse_instructions, parse_port, validate_signal, Command, Copy, Dockerfile,
    Instr, Position, Protocol, RawWord, RunScript, Spanned,
};
use forge_oci::{Compression, Node, Platform, RuntimeConfig, Spool, Tree};

use crate::archive;
use crate::context::{resolve, Context, CopyOptions};
use crate::copy_from::{CopyFrom, CopySource};
use crate::error::{BuildError, Refusal};
use crate::image::BaseImage;
use crate::run::{InstallRun, Unrecognized};
use crate::sandboxed::{read_flags, RunMount, SandboxRun};
use crate::stages::{Base, Graph};

/// A Dockerfile parsed into instructions, with its path for errors.
#[derive(Debug)]
pub struct ParsedDockerfile {
    path: PathBuf,
    file: Dockerfile,
    instrs: Vec<Spanned<Instr>>,
}

impl ParsedDockerfile {
    /// Parses `text`, the Dockerfile at `path` (relative to the monorepo
    /// root); the first syntax error, by position, is the error.
    pub fn parse(text: &str, path: &Path) -> Result<ParsedDockerfile, BuildError> {
        let file = forge_dockerfile::parse(text);
        let (instrs, errors) = parse_instructions(&file);
        if let Some(err) = file.errors.iter().chain(&errors).min_by_key(|e| e.position) {
            return Err(BuildError::Dockerfile {
                file: path.to_path_buf(),
                line: err.position.line,
                column: err.position.column,
                message: err.kind.to_string(),
                help: err.kind.help(),
            });
        }
        Ok(ParsedDockerfile { path: path.to_path_buf(), file, instrs })
    }

    /// The Dockerfile's path, relative to the monorepo root.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The escape character of the file.
    pub(crate) fn escape(&self) -> char {
        self.file.escape
    }

    /// The typed instructions, in order.
    pub(crate) fn instrs(&self) -> &[Spanned<Instr>] {
        &self.instrs
    }

    pub(crate) fn error(&self, at: Position, message: String, help: Option<&str>) -> BuildError {
        BuildError::Dockerfile {
            file: self.path.clone(),
            line: at.line,
            column: at.column,
            message,
            help: help.map(str::to_string),
        }
    }

    fn refused(&self, at: Position, refusal: Refusal) -> BuildError {
        BuildError::Dockerfile {
            file: self.path.clone(),
            line: at.line,
            column: at.column,
            message: refusal.message,
            help: refusal.help,
        }
    }
}

/// What planning needs besides the Dockerfile and the base.
#[derive(Debug, Clone, Copy)]
pub struct PlanInputs<'a> {
    /// The build context.
    pub context: &'a Context,
    /// `--build-arg` values: `MODULE_PATH`, `REGISTRY`, `TAG`.
    pub build_args: &'a BTreeMap<String, String>,
    /// `SOURCE_DATE_EPOCH`: every file's mtime, history entry and the image's time.
    pub epoch: u64,
    /// Where the plan's spool directory (for `ADD` archives) is created;
    /// on the same file system as the store, conventionally its root.
    pub spool_parent: &'a Path,
    /// `--preserve-modes`: copied files keep their modes from disk.
    pub preserve_modes: bool,
}

/// The image a Dockerfile's `FROM` names, after substitution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseReference {
    /// The reference (`scratch` for none).
    pub reference: String,
    /// Where the `FROM` is.
    pub position: Position,
}

/// A change of the image configuration made by one instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigChange {
    /// `ENV`: variables set in order, replacing earlier values in place.
    Env(Vec<(String, String)>),
    /// `LABEL`.
    Labels(Vec<(String, String)>),
    /// `WORKDIR`, absolute.
    Workdir(String),
    /// `CMD`.
    Cmd(Vec<String>),
    /// `ENTRYPOINT`; `reset_cmd` when the `CMD` came from the base (Docker
    /// drops it then).
    Entrypoint {
        /// The new entry point.
        argv: Vec<String>,
        /// Whether an inherited `CMD` is dropped.
        reset_cmd: bool,
    },
    /// `USER`.
    User(String),
    /// `EXPOSE`, as `port/protocol`.
    ExposedPorts(Vec<String>),
    /// `STOPSIGNAL`.
    StopSignal(String),
    /// `VOLUME`.
    Volumes(Vec<String>),
    /// `MAINTAINER`: the config's `author`.
    Author(String),
}

impl ConfigChange {
    /// Applies the change to a runtime config and the config's author.
    pub fn apply(&self, runtime: &mut RuntimeConfig, author: &mut Option<String>) {
        match self {
            ConfigChange::Env(pairs) => {
                for (k, v) in pairs {
                    runtime.set_env(k, v);
                }
            }
            ConfigChange::Labels(pairs) => runtime.labels.extend(pairs.iter().cloned()),
            ConfigChange::Workdir(dir) => runtime.working_dir = Some(dir.clone()),
            ConfigChange::Cmd(argv) => runtime.cmd = Some(argv.clone()),
            ConfigChange::Entrypoint { argv, reset_cmd } => {
                runtime.entrypoint = Some(argv.clone());
                if *reset_cmd {
                    runtime.cmd = None;
                }
            }
            ConfigChange::User(user) => runtime.user = Some(user.clone()),
            ConfigChange::ExposedPorts(ports) => runtime.exposed_ports.extend(ports.iter().cloned()),
            ConfigChange::StopSignal(signal) => runtime.stop_signal = Some(signal.clone()),
            ConfigChange::Volumes(volumes) => runtime.volumes.extend(volumes.iter().cloned()),
            ConfigChange::Author(name) => *author = Some(name.clone()),
        }
    }
}

/// One instruction of the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// Where the instruction is in the Dockerfile.
    pub position: Position,
    /// Its text, for the history's `created_by` (and the layer cache key).
    pub created_by: String,
    /// The configuration it changes, if any.
    pub change: Option<ConfigChange>,
    /// The layer it adds, if any; otherwise it leaves an empty-layer
    /// history entry (unless it installs).
    pub layer: Option<Tree>,
    /// The installing `RUN` whose layer the [`crate::Installer`] makes at
    /// execute time.
    pub install: Option<InstallRun>,
    /// The `RUN` the [`crate::Runner`] executes in the sandbox at execute
    /// time (one no native installer takes).
    pub sandbox: Option<SandboxRun>,
    /// A `COPY --from`, whose tree is made at execute time from the image
    /// it reads.
    pub copy_from: Option<CopyFrom>,
}

/// Everything a build will do; see the [module docs](self).
#[derive(Debug)]
pub struct BuildPlan {
    /// The Dockerfile, relative to the monorepo root.
    pub dockerfile: PathBuf,
    /// The base image (resolved by the caller).
    pub base: BaseImage,
    /// `SOURCE_DATE_EPOCH`.
    pub epoch: u64,
    /// The compression of the layers built (`--compression`; gzip unless
    /// the caller sets another, as it sets the labels).
    pub compression: Compression,
    /// The steps after `FROM`, in order.
    pub steps: Vec<Step>,
    /// Labels set over the Dockerfile's (the Supervisely labels).
    pub labels: BTreeMap<String, String>,
    /// Manifest annotations.
    pub annotations: BTreeMap<String, String>,
    /// The context paths the `COPY`/`ADD` sources read
    /// ([`Context::source_root`]; `""`: the whole context).
    pub context_paths: BTreeSet<String>,
    /// The other stages the target needs (multi-stage builds), in
    /// Dockerfile order: each comes after the stages it needs. Empty for a
    /// single stage.
    pub stages: Vec<StagePlan>,
    /// The stage (by index) the target's `FROM` names: the target starts
    /// from that stage's image, and `base` is the image its chain starts from.
    pub base_stage: Option<usize>,
    /// Holds the spooled content of `ADD` archives until the plan is dropped.
    _spool: SpoolDir,
}

/// A stage the target needs, planned as the target is.
#[derive(Debug)]
pub struct StagePlan {
    /// Its index in the Dockerfile (`0` is the first `FROM`).
    pub index: usize,
    /// Its name, or its index when it has none.
    pub label: String,
    /// The image its chain of stages starts from.
    pub base: BaseImage,
    /// The stage (by index) its `FROM` names, whose image it starts from.
    pub base_stage: Option<usize>,
    /// Its steps after `FROM`.
    pub steps: Vec<Step>,
}

/// A plan's spool directory, made by its first spooled file (most plans
/// spool nothing: a directory made and removed per plan was a cost of its
/// own), and removed with the plan. Its name is this process's
/// ([`forge_oci::temp::prefix`]), so a killed run's is removed by the next.
#[derive(Debug)]
pub(crate) struct SpoolDir(PathBuf);

impl SpoolDir {
    fn new(parent: &Path) -> SpoolDir {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        SpoolDir(parent.join(format!("{}{n}", forge_oci::temp::prefix("spool-"))))
    }
}

impl Drop for SpoolDir {
    fn drop(&mut self) {
        if self.0.exists() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// Which stage to build, for which platform.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// `--target`: the stage's name; `None` for the last stage.
    pub stage: Option<&'a str>,
    /// The platform the build is for (the automatic `TARGET*` args of the
    /// `FROM`s; each stage's own come from its base's platform).
    pub platform: &'a Platform,
}

/// The image the chain of stages of the last stage of `dockerfile` starts
/// from, for a build for `platform` (for one stage: its `FROM`).
pub fn base_reference(
    dockerfile: &ParsedDockerfile,
    build_args: &BTreeMap<String, String>,
    platform: &Platform,
) -> Result<BaseReference, BuildError> {
    let graph = Graph::read(dockerfile, build_args, platform)?;
    let mut index = graph.stages.len() - 1;
    loop {
        let stage = &graph.stages[index];
        match &stage.base {
            Base::Stage(parent) => index = *parent,
            Base::Image(reference) => {
                return Ok(BaseReference { reference: reference.clone(), position: stage.position })
            }
        }
    }
}

/// `BuildKit`'s automatic platform args: `TARGETPLATFORM`, `TARGETOS`,
/// `TARGETARCH`, `TARGETVARIANT` for `target`, and `BUILDPLATFORM`,
/// `BUILDOS`, `BUILDARCH`, `BUILDVARIANT` for the machine. As in
/// `BuildKit`, they are global: a `FROM` may use them as they are, the
/// stage after it once it declares them (`ARG TARGETARCH`), and a
/// `--build-arg` does not override them.
pub fn platform_args(target: &Platform) -> BTreeMap<String, String> {
    target.build_args("TARGET").into_iter().chain(Platform::host().build_args("BUILD")).collect()
}

/// Whether `name` is one of [`platform_args`].
pub(crate) fn is_platform_arg(name: &str) -> bool {
    let suffix = name.strip_prefix("TARGET").or_else(|| name.strip_prefix("BUILD"));
    matches!(suffix, Some("PLATFORM" | "OS" | "ARCH" | "VARIANT"))
}

/// Plans the build of the last stage of `dockerfile` with `base` as the
/// image of every `FROM` that names one (for one stage: the image
/// [`base_reference`] names; lint plans over `scratch`); see the [module
/// docs](self).
pub fn plan(
    dockerfile: &ParsedDockerfile,
    base: BaseImage,
    inputs: &PlanInputs<'_>,
) -> Result<BuildPlan, BuildError> {
    let platform = base.platform.clone();
    plan_target(dockerfile, &Target { stage: None, platform: &platform }, &mut |_| Ok(base.clone()), inputs)
}

/// Plans the build of `target`: the stages it needs, each image a `FROM`
/// or `COPY --from` names found by `resolve` (never called for `scratch`,
/// nor for the stages the target does not need); see the [module
/// docs](self).
pub fn plan_target(
    dockerfile: &ParsedDockerfile,
    target: &Target<'_>,
    resolve: &mut dyn FnMut(&str) -> Result<BaseImage, BuildError>,
    inputs: &PlanInputs<'_>,
) -> Result<BuildPlan, BuildError> {
    let graph = Graph::read(dockerfile, inputs.build_args, target.platform)?;
    let target_index = graph.target(dockerfile, target.stage)?;
    forge_oci::temp::register_dir(inputs.spool_parent);
    let spool_dir = SpoolDir::new(inputs.spool_parent);
    let mut spool = Some(Spool::lazy(spool_dir.0.clone()));
    let texts: HashMap<Position, String> = dockerfile
        .file
        .instructions
        .iter()
        .map(|i| (i.position, format!("{} {}", i.keyword, i.args)))
        .collect();
    let mut images: HashMap<String, BaseImage> = HashMap::new();
    let mut image = |reference: &str| -> Result<BaseImage, BuildError> {
        if reference == "scratch" {
            return Ok(BaseImage::scratch_for(target.platform.clone()));
        }
        if let Some(found) = images.get(reference) {
            return Ok(found.clone());
        }
        let found = resolve(reference)?;
        images.insert(reference.to_string(), found.clone());
        Ok(found)
    };
    let mut planned: BTreeMap<usize, (StagePlan, Start)> = BTreeMap::new();
    let mut context_paths = BTreeSet::new();
    for index in graph.needed(target_index) {
        let def = &graph.stages[index];
        let (base, base_stage, start) = match &def.base {
            Base::Image(reference) => {
                let base = image(reference)?;
                let start = Start::of(&base);
                (base, None, start)
            }
            Base::Stage(parent) => {
                let (parent_plan, end) = &planned[parent];
                (parent_plan.base.clone(), Some(*parent), end.clone())
            }
        };
        let mut copies = HashMap::new();
        for (position, word, source) in &def.copies {
            let source = match source {
                Base::Stage(stage) => {
                    CopySource::Stage { index: *stage, label: graph.stages[*stage].label(*stage) }
                }
                Base::Image(reference) => match image(reference)
                    .map_err(|e| copy_from_missing(dockerfile, &graph, *word, reference, &e))?
                    .image
                {
                    Some(found) => {
                        CopySource::Image { reference: reference.clone(), digest: found.manifest_digest }
                    }
                    None => {
                        return Err(dockerfile.error(
                            *word,
                            format!(
                                "COPY --from={reference} copies nothing: `{reference}` is the empty image"
                            ),
                            Some("name a stage or an image that has the files"),
                        ))
                    }
                },
            };
            copies.insert(*position, source);
        }
        let mut planner = Planner {
            dockerfile,
            inputs,
            texts: &texts,
            global_args: global_args(dockerfile, inputs.build_args, &base.platform)?,
            stage_args: BTreeMap::new(),
            runtime: start.runtime,
            shell: start.shell,
            created: start.created,
            cmd_set_here: false,
            spool: spool.take().expect("given back by every stage"),
            copies,
            steps: Vec::new(),
            context_paths: BTreeSet::new(),
        };
        for instr in &dockerfile.instrs[def.instrs.clone()] {
            planner.instruction(instr.position, &instr.node)?;
        }
        let end = Start { runtime: planner.runtime, shell: planner.shell, created: planner.created };
        spool = Some(planner.spool);
        context_paths.extend(planner.context_paths);
        let label = def.label(index);
        planned.insert(index, (StagePlan { index, label, base, base_stage, steps: planner.steps }, end));
    }
    let (target_plan, _) = planned.remove(&target_index).expect("the target is needed");
    Ok(BuildPlan {
        dockerfile: dockerfile.path.clone(),
        base: target_plan.base,
        epoch: inputs.epoch,
        compression: Compression::default(),
        steps: target_plan.steps,
        labels: BTreeMap::new(),
        annotations: BTreeMap::new(),
        context_paths,
        stages: planned.into_values().map(|(stage, _)| stage).collect(),
        base_stage: target_plan.base_stage,
        _spool: spool_dir,
    })
}

/// `COPY --from=REFERENCE` when no stage has that name and no image is
/// found by it either.
fn copy_from_missing(
    dockerfile: &ParsedDockerfile,
    graph: &Graph,
    at: Position,
    reference: &str,
    error: &BuildError,
) -> BuildError {
    let names: Vec<String> = graph.stages.iter().filter_map(|s| s.name.clone()).collect();
    let stages = if names.is_empty() {
        "no stage has a name".to_string()
    } else {
        format!("the stages are {}", names.join(", "))
    };
    dockerfile.error(
        at,
        format!(
            "COPY --from={reference}: no stage has that name ({stages}), and it is no image either: {error}"
        ),
        Some("name a stage of this Dockerfile (`FROM image AS name`), its index, or an image"),
    )
}

/// What a stage starts from: its base's config, or where the stage it is
/// based on left off (with its `SHELL` and the directories its layers made).
#[derive(Debug, Clone)]
struct Start {
    runtime: RuntimeConfig,
    shell: Vec<String>,
    created: BTreeSet<String>,
}

impl Start {
    fn of(base: &BaseImage) -> Start {
        Start {
            runtime: base.image.as_ref().map(|i| RuntimeConfig::from_config(&i.config)).unwrap_or_default(),
            shell: vec!["/bin/sh".to_string(), "-c".to_string()],
            created: BTreeSet::new(),
        }
    }
}

/// The global `ARG`s (those before the first `FROM`) with the automatic
/// platform args of `platform`, as a stage's `ARG NAME` sees them.
pub(crate) fn global_args(
    dockerfile: &ParsedDockerfile,
    build_args: &BTreeMap<String, String>,
    platform: &Platform,
) -> Result<BTreeMap<String, Option<String>>, BuildError> {
    let mut args: BTreeMap<String, Option<String>> =
        platform_args(platform).into_iter().map(|(k, v)| (k, Some(v))).collect();
    for instr in &dockerfile.instrs {
        let Instr::Arg(decls) = &instr.node else { break };
        for decl in decls {
            let name = decl.name.raw.clone();
            if is_platform_arg(&name) {
                continue;
            }
            let value = match build_args.get(&name) {
                Some(v) => Some(v.clone()),
                None => decl
                    .default
                    .as_ref()
                    .map(|d| {
                        expand(dockerfile, dockerfile.file.escape, d, &|n| args.get(n).cloned().flatten())
                    })
                    .transpose()?,
            };
            args.insert(name, value);
        }
    }
    Ok(args)
}

/// Expands `word` with `lookup`, errors pointing into the word.
pub(crate) fn expand(
    dockerfile: &ParsedDockerfile,
    escape: char,
    word: &RawWord,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, BuildError> {
    expand_word(&word.raw, escape, lookup).map_err(|e| {
        let at = word.position_at(e.offset);
        dockerfile.error(at, format!("cannot expand `{}`: {}", word.raw, e.kind), None)
    })
}

struct Planner<'a> {
    dockerfile: &'a ParsedDockerfile,
    inputs: &'a PlanInputs<'a>,
    /// `created_by` text of each instruction, by position.
    texts: &'a HashMap<Position, String>,
    global_args: BTreeMap<String, Option<String>>,
    stage_args: BTreeMap<String, Option<String>>,
    /// The runtime config as the next instruction sees it.
    runtime: RuntimeConfig,
    /// `SHELL`, for shell-form `CMD`/`ENTRYPOINT`.
    shell: Vec<String>,
    /// Directories our own layers created, so `WORKDIR` knows what exists.
    created: BTreeSet<String>,
    cmd_set_here: bool,
    /// Where `ADD` spools archive members, one counter for the whole build.
    spool: Spool,
    /// What each `COPY --from` of the stage reads, by position.
    copies: HashMap<Position, CopySource>,
    steps: Vec<Step>,
    /// What the `COPY`/`ADD` sources read, for [`BuildPlan::context_paths`].
    context_paths: BTreeSet<String>,
}

impl Planner<'_> {
    fn error(&self, at: Position, message: String, help: Option<&str>) -> BuildError {
        self.dockerfile.error(at, message, help)
    }

    /// The value of variable `name` in the stage: its environment, then
    /// its arguments.
    fn var(&self, name: &str) -> Option<String> {
        self.runtime
            .env_var(name)
            .map(str::to_string)
            .or_else(|| self.stage_args.get(name).cloned().flatten())
    }

    /// Expands `word` with the stage's environment and arguments.
    fn expand(&self, word: &RawWord) -> Result<String, BuildError> {
        expand(self.dockerfile, self.dockerfile.file.escape, word, &|name| self.var(name))
    }

    fn push(&mut self, at: Position, change: Option<ConfigChange>, layer: Option<Tree>) {
        if let Some(change) = &change {
            change.apply(&mut self.runtime, &mut None);
        }
        if let Some(tree) = &layer {
            for (path, node) in tree.entries() {
                if node.is_dir() {
                    self.created.insert(path.to_owned());
                }
            }
        }
        self.steps.push(Step { change, layer, ..self.step(at) });
    }

    /// The step of the instruction at `at`, doing nothing yet.
    fn step(&self, at: Position) -> Step {
        let created_by = self.texts.get(&at).cloned().unwrap_or_default();
        Step {
            position: at,
            created_by,
            change: None,
            layer: None,
            install: None,
            sandbox: None,
            copy_from: None,
        }
    }

    fn instruction(&mut self, at: Position, node: &Instr) -> Result<(), BuildError> {
        match node {
            Instr::Copy(copy) if copy.from.is_some() => {
                let copy_from = self.copy_from(at, copy)?;
                self.steps.push(Step { copy_from: Some(copy_from), ..self.step(at) });
            }
            Instr::Copy(copy) => {
                let tree = self.copy(at, copy, false)?;
                self.push(at, None, Some(tree));
            }
            Instr::Add(copy) => {
                let tree = self.copy(at, copy, true)?;
                self.push(at, None, Some(tree));
            }
            Instr::Workdir(word) => {
                let workdir = self.runtime.working_dir.clone().filter(|d| !d.is_empty());
                let dir = resolve(workdir.as_deref().unwrap_or("/"), &self.expand(word)?);
                let rel = dir.trim_start_matches('/').to_string();
                let layer = (!rel.is_empty() && !self.created.contains(&rel)).then(|| {
                    let mut tree = Tree::new();
                    tree.insert(rel, Node::dir(0o755));
                    tree
                });
                self.push(at, Some(ConfigChange::Workdir(dir)), layer);
            }
            Instr::Run(run) => {
                let (install, sandbox) = match self.run(at, run) {
                    Ok(install) => (Some(install), None),
                    Err(not_native) => (None, Some(self.sandbox_run(run, not_native)?)),
                };
                self.steps.push(Step { install, sandbox, ..self.step(at) });
            }
            Instr::Healthcheck(_) | Instr::Onbuild(_) => {
                return Err(self.error(
                    at,
                    format!(
                        "{} is not supported: OCI image configurations have no place for it",
                        node.keyword()
                    ),
                    Some("remove it; the Supervisely agent does not use it"),
                ));
            }
            other => {
                let change = self.config_change(other)?;
                self.push(at, change, None);
            }
        }
        Ok(())
    }

    /// The configuration change of an instruction that adds no layer.
    fn config_change(&mut self, node: &Instr) -> Result<Option<ConfigChange>, BuildError> {
        let change = match node {
            Instr::Arg(decls) => {
                for decl in decls {
                    let name = decl.name.raw.clone();
                    let given = self.inputs.build_args.get(&name).filter(|_| !is_platform_arg(&name));
                    let value = match given {
                        Some(v) => Some(v.clone()),
                        None => match &decl.default {
                            Some(d) => Some(self.expand(d)?),
                            None => self.global_args.get(&name).cloned().flatten(),
                        },
                    };
                    self.stage_args.insert(name, value);
                }
                return Ok(None);
            }
            Instr::Env(pairs) => ConfigChange::Env(self.pairs(pairs)?),
            Instr::Label(pairs) => ConfigChange::Labels(self.pairs(pairs)?),
            Instr::Cmd(command) => {
                self.cmd_set_here = true;
                ConfigChange::Cmd(self.command(command))
            }
            // As Docker: an ENTRYPOINT resets a CMD inherited from the base.
            Instr::Entrypoint(command) => {
                ConfigChange::Entrypoint { argv: self.command(command), reset_cmd: !self.cmd_set_here }
            }
            Instr::User(word) => ConfigChange::User(self.expand(word)?),
            Instr::Expose(words) => {
                let mut ports = Vec::new();
                for word in words {
                    let value = self.expand(word)?;
                    let spec =
                        parse_port(&value).map_err(|e| self.error(word.position, e.to_string(), None))?;
                    let proto = match spec.protocol {
                        Protocol::Tcp => "tcp",
                        other => other.as_str(),
                    };
                    ports.extend((spec.start..=spec.end).map(|port| format!("{port}/{proto}")));
                }
                ConfigChange::ExposedPorts(ports)
            }
            Instr::Stopsignal(word) => {
                let signal = self.expand(word)?;
                validate_signal(&signal).map_err(|e| self.error(word.position, e.to_string(), None))?;
                ConfigChange::StopSignal(signal)
            }
            Instr::Shell(shell) => {
                self.shell = shell.clone();
                return Ok(None);
            }
            Instr::Volume(words) => {
                ConfigChange::Volumes(words.iter().map(|w| self.expand(w)).collect::<Result<_, _>>()?)
            }
            Instr::Maintainer(word) => ConfigChange::Author(word.raw.clone()),
            // Layer instructions and refusals are handled by `instruction`.
            _ => return Ok(None),
        };
        Ok(Some(change))
    }

    /// `KEY=VALUE` pairs, expanded against the state before the instruction.
    fn pairs(&self, pairs: &[forge_dockerfile::KeyValue]) -> Result<Vec<(String, String)>, BuildError> {
        pairs.iter().map(|kv| Ok((self.expand(&kv.key)?, self.expand(&kv.value)?))).collect()
    }

    fn command(&self, command: &Command) -> Vec<String> {
        match command {
            Command::Exec(args) => args.iter().map(|a| a.raw.clone()).collect(),
            Command::Shell(text) => {
                let mut argv = self.shell.clone();
                argv.push(text.raw.clone());
                argv
            }
        }
    }

    /// The commands of an installing `RUN`, or the first word no native
    /// installer takes (then the `RUN` goes to the sandbox).
    fn run(&self, at: Position, run: &forge_dockerfile::Run) -> Result<InstallRun, Unrecognized> {
        if let Some(user) = self.runtime.user.as_deref().filter(|u| !matches!(*u, "" | "root" | "0" | "0:0"))
        {
            return Err(Unrecognized {
                position: at,
                message: format!(
                    "packages are installed natively as root only, and this RUN is for USER `{user}`"
                ),
            });
        }
        let workdir = self.workdir();
        crate::run::recognize(run, &self.shell, &workdir, &|name| self.var(name))
    }

    /// The working directory the next instruction sees (absolute).
    fn workdir(&self) -> String {
        self.runtime.working_dir.clone().filter(|d| !d.is_empty()).unwrap_or_else(|| "/".into())
    }

    /// A `RUN` for the sandbox: argv through `SHELL` (shell form) or as
    /// given (exec form), the image's `ENV` and the build args in scope,
    /// the working directory, the user and the mounts (bind sources read
    /// from the context as `COPY` reads them).
    fn sandbox_run(
        &self,
        run: &forge_dockerfile::Run,
        not_native: Unrecognized,
    ) -> Result<SandboxRun, BuildError> {
        let workdir = self.workdir();
        let flags =
            read_flags(&run.flags, &workdir).map_err(|e| self.error(e.position, e.message, Some(e.help)))?;
        let mut mounts: Vec<(usize, RunMount)> = flags.caches;
        for (index, target, source, read_write, at) in flags.binds {
            let refused = |r| self.dockerfile.refused(at, r);
            if self.inputs.context.regular_file(&source).map_err(refused)?.is_some() {
                return Err(self.error(
                    at,
                    format!("`--mount=type=bind,source={source}` names a file; only directories are bound"),
                    Some("bind the directory that holds it (source=DIR,target=DIR)"),
                ));
            }
            let options = CopyOptions { preserve_modes: true, ..CopyOptions::default() };
            let tree = self
                .inputs
                .context
                .plan_copy(std::slice::from_ref(&source), "/", "/", options)
                .map_err(|r| self.dockerfile.refused(at, r))?;
            if let Some((path, what)) = crate::secrets::find(&tree, self.inputs.context.root()) {
                return Err(self.error(
                    at,
                    format!("`{path}` is {what}; it must never reach a build"),
                    Some("delete it, or exclude it in .dockerignore so that no build sends it"),
                ));
            }
            mounts.push((index, RunMount::Bind { target, source, tree, read_write }));
        }
        let mut env: Vec<(String, String)> = Vec::new();
        for entry in &self.runtime.env {
            let (k, v) = entry.split_once('=').unwrap_or((entry, ""));
            match env.iter_mut().find(|(name, _)| name == k) {
                Some(found) => found.1 = v.to_string(),
                None => env.push((k.to_string(), v.to_string())),
            }
        }
        for (name, value) in &self.stage_args {
            if let Some(value) = value {
                if !env.iter().any(|(k, _)| k == name) {
                    env.push((name.clone(), value.clone()));
                }
            }
        }
        let argv = match (&run.command, run.script()) {
            (_, Some(RunScript::Shell(text))) => self.shell.iter().cloned().chain([text]).collect(),
            // As BuildKit: the script in a read-only mount at /dev/pipes,
            // its path given to the shell.
            (_, Some(RunScript::Executable { name, content })) => {
                let mut tree = Tree::new();
                tree.insert(name.clone(), Node::bytes(0o755, content));
                mounts.push((
                    usize::MAX,
                    RunMount::Bind {
                        target: "/dev/pipes".into(),
                        source: format!("<<{name}"),
                        tree,
                        read_write: false,
                    },
                ));
                self.shell.iter().cloned().chain([format!("/dev/pipes/{name}")]).collect()
            }
            (Command::Exec(args), None) => args.iter().map(|a| a.raw.clone()).collect(),
            (Command::Shell(text), None) => self.shell.iter().cloned().chain([text.raw.clone()]).collect(),
        };
        mounts.sort_by_key(|(index, _)| *index);
        Ok(SandboxRun {
            argv,
            env,
            workdir,
            user: self.runtime.user.clone().unwrap_or_default(),
            mounts: mounts.into_iter().map(|(_, m)| m).collect(),
            no_network: flags.no_network,
            not_native,
        })
    }

    /// What a `COPY --from` copies, from what; its tree is made at execute
    /// time.
    fn copy_from(&self, at: Position, copy: &Copy) -> Result<CopyFrom, BuildError> {
        if let Some(heredoc) = copy.heredocs.first() {
            return Err(self.error(
                heredoc.position,
                "COPY --from with a heredoc is not supported".into(),
                Some("copy the heredoc in a COPY of its own"),
            ));
        }
        let source = self.copies.get(&at).cloned().ok_or_else(|| {
            self.error(at, "COPY --from outside a stage".into(), Some("start the stage with FROM"))
        })?;
        let options = self.copy_options(copy)?;
        let dest = self.expand(&copy.dest)?;
        let sources = copy
            .sources
            .iter()
            .map(|s| Ok((self.expand(s)?, s.position)))
            .collect::<Result<Vec<_>, BuildError>>()?;
        let workdir = self.workdir();
        Ok(CopyFrom { source, sources, dest, workdir, options })
    }

    /// The tree of a `COPY` (or `ADD`, which also extracts local archives).
    fn copy(&mut self, at: Position, copy: &Copy, add: bool) -> Result<Tree, BuildError> {
        let options = self.copy_options(copy)?;
        let dest = self.expand(&copy.dest)?;
        let workdir = self.workdir();
        let context = self.inputs.context;
        let mut tree = Tree::new();
        let mut plain = Vec::new();
        for source in &copy.sources {
            let value = self.expand(source)?;
            self.context_paths.insert(Context::source_root(&value));
            if add {
                if value.contains("://") || value.starts_with("git@") {
                    return Err(self.error(
                        source.position,
                        format!("ADD from a URL (`{value}`) is not supported: builds use only local files"),
                        Some("download the file into the monorepo and ADD or COPY it from there"),
                    ));
                }
                let refused = |r| self.dockerfile.refused(source.position, r);
                if let Some(path) = context.regular_file(&value).map_err(refused)? {
                    if archive::is_archive(&path).map_err(refused)? {
                        let dest_dir = resolve(&workdir, &dest);
                        archive::extract_into(&path, &dest_dir, options, &mut self.spool, &mut tree)
                            .map_err(|r| self.dockerfile.refused(source.position, r))?;
                        continue;
                    }
                }
            }
            plain.push((value, source.position));
        }
        if !plain.is_empty() {
            let sources: Vec<String> = plain.iter().map(|(s, _)| s.clone()).collect();
            let copied = context.plan_copy(&sources, &dest, &workdir, options).map_err(|r| {
                // Point at the source the refusal is about, if any.
                let at = r.source.and_then(|i| plain.get(i)).map_or(at, |(_, p)| *p);
                self.dockerfile.refused(at, r)
            })?;
            tree.extend(copied);
        }
        if !copy.heredocs.is_empty() {
            let files = crate::inline::heredoc_files(
                &copy.heredocs,
                &dest,
                &workdir,
                options,
                copy.sources.len(),
                &|name| self.var(name),
            )
            .map_err(|e| self.error(e.position, e.message, e.help))?;
            tree.extend(files);
        }
        if let Some((path, what)) = crate::secrets::find(&tree, context.root()) {
            return Err(self.error(
                at,
                format!("`{path}` is {what}; it must never go into an image"),
                Some("delete it, or exclude it in .dockerignore so that no build sends it"),
            ));
        }
        Ok(tree)
    }

    fn copy_options(&self, copy: &Copy) -> Result<CopyOptions, BuildError> {
        let mut options =
            CopyOptions { preserve_modes: self.inputs.preserve_modes, ..CopyOptions::default() };
        if let Some(chown) = &copy.chown {
            let value = self.expand(chown)?;
            options.chown = Some(numeric_owner(&value).ok_or_else(|| {
                self.error(
                    chown.position,
                    format!("--chown={value}: only numeric ids are supported"),
                    Some("write --chown=UID:GID, for example --chown=1000:1000"),
                )
            })?);
        }
        if let Some(chmod) = &copy.chmod {
            let value = self.expand(chmod)?;
            options.chmod =
                Some(parse_chmod(&value).map_err(|e| self.error(chmod.position, e.to_string(), None))?);
        }
        Ok(options)
    }
}

/// `UID[:GID]` with numbers; the group defaults to the user id, as Docker.
fn numeric_owner(spec: &str) -> Option<(u64, u64)> {
    let (user, group) = spec.split_once(':').map_or((spec, None), |(u, g)| (u, Some(g)));
    let uid = user.parse().ok()?;
    let gid = match group {
        Some(g) => g.parse().ok()?,
        None => uid,
    };
    Some((uid, gid))
}
