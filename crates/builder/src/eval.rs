//! Evaluating a Dockerfile's instructions over a base image: the build
//! proper. Each `COPY`/`ADD` becomes one layer (reused from the layer cache
//! when its inputs are unchanged); every other instruction changes the
//! image configuration and leaves an empty-layer history entry, as
//! `docker build` does.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use forge_dockerfile::{
    expand_word, parse_chmod, parse_port, validate_signal, Command, Copy, Dockerfile, Instr, Position,
    Protocol, RawWord, Spanned,
};
use forge_oci::{BlobStore, Compression, FileSource, LayerOptions, Node, NodeKind, Spool, Tree};
use sha2::{Digest as _, Sha256};

use crate::archive;
use crate::context::{resolve, Context, CopyOptions};
use crate::error::{BuildError, Refusal};
use crate::image::{BaseImage, ImageState};
use crate::resolve::BaseResolver;

/// Everything an evaluation needs besides the Dockerfile.
pub(crate) struct Inputs<'a> {
    pub(crate) context: &'a Context,
    pub(crate) store: &'a BlobStore,
    pub(crate) resolver: &'a dyn BaseResolver,
    /// The Dockerfile, relative to the monorepo root, for error positions.
    pub(crate) dockerfile: &'a Path,
    /// `--build-arg` values: `MODULE_PATH`, `REGISTRY`, `TAG`.
    pub(crate) build_args: &'a BTreeMap<String, String>,
    /// Timestamp of every entry and history record.
    pub(crate) epoch: u64,
    /// Where `ADD` spools the content of archives it extracts.
    pub(crate) spool: &'a Path,
    /// Layers being built in this run, by cache key.
    pub(crate) layers: &'a crate::LayerSlots,
}

/// The outcome: the base, the new image state, and layer statistics.
pub(crate) struct Evaluated {
    pub(crate) base: BaseImage,
    pub(crate) state: ImageState,
    pub(crate) layers_built: usize,
    pub(crate) layers_cached: usize,
}

struct Eval<'a> {
    inputs: &'a Inputs<'a>,
    escape: char,
    /// `created_by` text of each instruction, by position.
    texts: HashMap<Position, String>,
    global_args: BTreeMap<String, Option<String>>,
    stage_args: BTreeMap<String, Option<String>>,
    /// Directories our own layers created, so `WORKDIR` knows what exists.
    created: BTreeSet<String>,
    cmd_set_here: bool,
    /// Where `ADD` spools archive members, one counter for the whole build.
    spool: Spool,
    built: usize,
    cached: usize,
}

pub(crate) fn evaluate(
    file: &Dockerfile,
    instrs: &[Spanned<Instr>],
    inputs: &Inputs<'_>,
) -> Result<Evaluated, BuildError> {
    let texts = file.instructions.iter().map(|i| (i.position, format!("{} {}", i.keyword, i.args))).collect();
    let mut eval = Eval {
        inputs,
        escape: file.escape,
        texts,
        global_args: BTreeMap::new(),
        stage_args: BTreeMap::new(),
        created: BTreeSet::new(),
        cmd_set_here: false,
        spool: Spool::new(inputs.spool)
            .map_err(|source| BuildError::Io { path: inputs.spool.to_path_buf(), source })?,
        built: 0,
        cached: 0,
    };
    let mut stage: Option<(BaseImage, ImageState)> = None;
    for instr in instrs {
        let at = instr.position;
        match (&instr.node, &mut stage) {
            (Instr::Arg(decls), None) => {
                for decl in decls {
                    let name = decl.name.raw.clone();
                    let value = match inputs.build_args.get(&name) {
                        Some(v) => Some(v.clone()),
                        None => decl.default.as_ref().map(|d| eval.expand(d, None)).transpose()?,
                    };
                    eval.global_args.insert(name, value);
                }
            }
            (Instr::From(from), None) => {
                if let Some(platform) = &from.platform {
                    let platform = eval.expand(platform, None)?;
                    if platform != "linux/amd64" {
                        return Err(eval.error(
                            at,
                            format!("platform `{platform}` is not supported"),
                            Some("this builder produces linux/amd64 images; drop --platform"),
                        ));
                    }
                }
                let reference = eval.expand(&from.image, None)?;
                let base = if reference == "scratch" {
                    BaseImage::scratch()
                } else {
                    inputs.resolver.resolve(&reference, inputs.store)?
                };
                let state = ImageState::from_base(&base, inputs.epoch);
                stage = Some((base, state));
            }
            (other, None) => {
                return Err(eval.error(
                    at,
                    format!("{} comes before FROM", other.keyword()),
                    Some("start the build stage with FROM; only ARG may come before it"),
                ));
            }
            (Instr::From(_), Some(_)) => {
                return Err(eval.error(
                    at,
                    "multi-stage builds are not supported yet: this is a second FROM".into(),
                    Some("build the plugin from a single stage"),
                ));
            }
            (node, Some((_, state))) => eval.instruction(at, node, state)?,
        }
    }
    let Some((base, state)) = stage else {
        return Err(eval.error(Position { line: 1, column: 1 }, "no FROM instruction".into(), None));
    };
    Ok(Evaluated { base, state, layers_built: eval.built, layers_cached: eval.cached })
}

impl Eval<'_> {
    fn error(&self, at: Position, message: String, help: Option<&str>) -> BuildError {
        BuildError::Dockerfile {
            file: self.inputs.dockerfile.to_path_buf(),
            line: at.line,
            column: at.column,
            message,
            help: help.map(str::to_string),
        }
    }

    fn refused(&self, at: Position, refusal: Refusal) -> BuildError {
        BuildError::Dockerfile {
            file: self.inputs.dockerfile.to_path_buf(),
            line: at.line,
            column: at.column,
            message: refusal.message,
            help: refusal.help,
        }
    }

    /// Expands `word` with the stage's environment and arguments, or with
    /// the global arguments only before `FROM` (`state` is `None`).
    fn expand(&self, word: &RawWord, state: Option<&ImageState>) -> Result<String, BuildError> {
        let lookup = |name: &str| -> Option<String> {
            match state {
                Some(state) => state
                    .runtime
                    .env_var(name)
                    .map(str::to_string)
                    .or_else(|| self.stage_args.get(name).cloned().flatten()),
                None => self.global_args.get(name).cloned().flatten(),
            }
        };
        expand_word(&word.raw, self.escape, &lookup).map_err(|e| {
            let at = word.position_at(e.offset);
            self.error(at, format!("cannot expand `{}`: {}", word.raw, e.kind), None)
        })
    }

    fn instruction(&mut self, at: Position, node: &Instr, state: &mut ImageState) -> Result<(), BuildError> {
        let text = self.texts.get(&at).cloned().unwrap_or_default();
        match node {
            Instr::Arg(decls) => {
                for decl in decls {
                    let name = decl.name.raw.clone();
                    let value = match self.inputs.build_args.get(&name) {
                        Some(v) => Some(v.clone()),
                        None => match &decl.default {
                            Some(d) => Some(self.expand(d, Some(state))?),
                            None => self.global_args.get(&name).cloned().flatten(),
                        },
                    };
                    self.stage_args.insert(name, value);
                }
                state.record(&text);
            }
            Instr::Env(pairs) => {
                let mut expanded = Vec::new();
                for kv in pairs {
                    expanded.push((self.expand(&kv.key, Some(state))?, self.expand(&kv.value, Some(state))?));
                }
                for (k, v) in expanded {
                    state.runtime.set_env(&k, &v);
                }
                state.record(&text);
            }
            Instr::Label(pairs) => {
                for kv in pairs {
                    let (k, v) = (self.expand(&kv.key, Some(state))?, self.expand(&kv.value, Some(state))?);
                    state.runtime.labels.insert(k, v);
                }
                state.record(&text);
            }
            Instr::Workdir(word) => {
                let dir = resolve(&state.workdir_or_root(), &self.expand(word, Some(state))?);
                state.runtime.working_dir = Some(dir.clone());
                let rel = dir.trim_start_matches('/').to_string();
                if rel.is_empty() || self.created.contains(&rel) {
                    state.record(&text);
                } else {
                    let mut tree = Tree::new();
                    tree.insert(rel, Node::dir(0o755));
                    self.add_layer(tree, state, &text)?;
                }
            }
            Instr::Copy(copy) => self.copy(at, copy, state, &text, false)?,
            Instr::Add(copy) => self.copy(at, copy, state, &text, true)?,
            Instr::Run(_) => {
                return Err(self.error(
                    at,
                    "RUN is not supported yet: this builder does not execute commands".into(),
                    Some("put what RUN installs into the base image, or copy prebuilt files with COPY"),
                ));
            }
            Instr::Cmd(command) => {
                state.runtime.cmd = Some(self.command(command, state));
                self.cmd_set_here = true;
                state.record(&text);
            }
            Instr::Entrypoint(command) => {
                state.runtime.entrypoint = Some(self.command(command, state));
                // As Docker: an ENTRYPOINT resets a CMD inherited from the base.
                if !self.cmd_set_here {
                    state.runtime.cmd = None;
                }
                state.record(&text);
            }
            Instr::User(word) => {
                state.runtime.user = Some(self.expand(word, Some(state))?);
                state.record(&text);
            }
            Instr::Expose(words) => {
                for word in words {
                    let value = self.expand(word, Some(state))?;
                    let spec = parse_port(&value).map_err(|m| self.error(word.position, m, None))?;
                    let proto = match spec.protocol {
                        Protocol::Tcp => "tcp",
                        other => other.as_str(),
                    };
                    for port in spec.start..=spec.end {
                        state.runtime.exposed_ports.insert(format!("{port}/{proto}"));
                    }
                }
                state.record(&text);
            }
            Instr::Stopsignal(word) => {
                let signal = self.expand(word, Some(state))?;
                validate_signal(&signal).map_err(|m| self.error(word.position, m, None))?;
                state.runtime.stop_signal = Some(signal);
                state.record(&text);
            }
            Instr::Shell(shell) => {
                state.shell = shell.clone();
                state.record(&text);
            }
            Instr::Volume(words) => {
                for word in words {
                    state.runtime.volumes.insert(self.expand(word, Some(state))?);
                }
                state.record(&text);
            }
            Instr::Maintainer(word) => {
                state.author = Some(word.raw.clone());
                state.record(&text);
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
            // `evaluate` handles FROM itself, before calling this.
            Instr::From(_) => {}
        }
        Ok(())
    }

    fn command(&self, command: &Command, state: &ImageState) -> Vec<String> {
        match command {
            Command::Exec(args) => args.clone(),
            Command::Shell(text) => {
                let mut argv = state.shell.clone();
                argv.push(text.clone());
                argv
            }
        }
    }

    fn copy(
        &mut self,
        at: Position,
        copy: &Copy,
        state: &mut ImageState,
        text: &str,
        add: bool,
    ) -> Result<(), BuildError> {
        if let Some(from) = &copy.from {
            return Err(self.error(
                from.position,
                "COPY --from is not supported yet: it needs multi-stage builds".into(),
                Some("copy files from the build context instead"),
            ));
        }
        let mut options = CopyOptions::default();
        if let Some(chown) = &copy.chown {
            let value = self.expand(chown, Some(state))?;
            options.chown = Some(numeric_owner(&value).ok_or_else(|| {
                self.error(
                    chown.position,
                    format!("--chown={value}: only numeric ids are supported"),
                    Some("write --chown=UID:GID, for example --chown=1000:1000"),
                )
            })?);
        }
        if let Some(chmod) = &copy.chmod {
            let value = self.expand(chmod, Some(state))?;
            options.chmod = Some(parse_chmod(&value).map_err(|m| self.error(chmod.position, m, None))?);
        }
        let dest = self.expand(&copy.dest, Some(state))?;
        let workdir = state.workdir_or_root();
        let mut tree = Tree::new();
        let mut plain = Vec::new();
        for source in &copy.sources {
            let value = self.expand(source, Some(state))?;
            if add {
                if value.contains("://") || value.starts_with("git@") {
                    return Err(self.error(
                        source.position,
                        format!("ADD from a URL (`{value}`) is not supported: builds use only local files"),
                        Some("download the file into the monorepo and ADD or COPY it from there"),
                    ));
                }
                if let Some(path) =
                    self.inputs.context.regular_file(&value).map_err(|r| self.refused(source.position, r))?
                {
                    if archive::is_archive(&path).map_err(|r| self.refused(source.position, r))? {
                        let dest_dir = resolve(&workdir, &dest);
                        archive::extract_into(&path, &dest_dir, options, &mut self.spool, &mut tree)
                            .map_err(|r| self.refused(source.position, r))?;
                        continue;
                    }
                }
            }
            plain.push((value, source.position));
        }
        if !plain.is_empty() {
            let sources: Vec<String> = plain.iter().map(|(s, _)| s.clone()).collect();
            let copied = self.inputs.context.plan_copy(&sources, &dest, &workdir, options).map_err(|r| {
                // Point at the source the refusal names, if any.
                let at =
                    plain.iter().find(|(s, _)| r.message.contains(&format!("`{s}`"))).map_or(at, |(_, p)| *p);
                self.refused(at, r)
            })?;
            tree.extend(copied);
        }
        self.add_layer(tree, state, text)
    }

    /// Builds (or reuses) the layer for `tree` and appends it to the image.
    fn add_layer(&mut self, tree: Tree, state: &mut ImageState, text: &str) -> Result<(), BuildError> {
        for (path, node) in tree.entries() {
            if node.is_dir() {
                self.created.insert(path.to_owned());
            }
        }
        let key = cache_key(&tree, self.inputs.epoch);
        let store = self.inputs.store;
        let slot = self.inputs.layers.slot(&key);
        let mut slot = slot.lock().unwrap_or_else(|e| e.into_inner());
        let layer = match slot.clone().or_else(|| forge_oci::layer::cached_layer(store, &key)) {
            Some(layer) => {
                self.cached += 1;
                layer
            }
            None => {
                let layer = tree.write_layer(
                    store,
                    LayerOptions { mtime: self.inputs.epoch },
                    Compression::default(),
                )?;
                forge_oci::layer::cache_layer(store, &key, &layer)?;
                self.built += 1;
                layer
            }
        };
        *slot = Some(layer.clone());
        drop(slot);
        state.push_layer(layer, text);
        Ok(())
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

/// A key that changes whenever the layer's bytes could: paths, kinds,
/// owners, modes, link targets, and for files of the context their source
/// path with size, mtime, ctime and inode (like `make`, not content:
/// reading every file to hash it would cost as much as building the
/// layer); spooled and in-memory content by its digest. A different
/// checkout gets different keys and rebuilds, giving the same bytes.
fn cache_key(tree: &Tree, epoch: u64) -> String {
    let mut h = Sha256::new();
    h.update(format!("forge-layer-v2\0{epoch}\0"));
    for (path, node) in tree.entries() {
        h.update(format!("{path}\0{:o}\0{}\0{}\0", node.mode, node.uid, node.gid));
        match &node.kind {
            NodeKind::Dir => h.update(b"d\0"),
            NodeKind::File { source, size } => {
                let stamp = match source {
                    FileSource::Path(source) => match std::fs::metadata(source) {
                        Ok(m) => format!(
                            "{}:{}:{}.{}:{}.{}:{}:{}",
                            source.display(),
                            m.len(),
                            m.mtime(),
                            m.mtime_nsec(),
                            m.ctime(),
                            m.ctime_nsec(),
                            m.dev(),
                            m.ino()
                        ),
                        // Unreadable now: building the layer will say why.
                        Err(_) => format!("{}:?", source.display()),
                    },
                    other => other.known_digest().map(|d| d.to_string()).unwrap_or_default(),
                };
                h.update(format!("f\0{size}\0{stamp}\0"));
            }
            NodeKind::Symlink { target } => h.update(format!("l\0{target}\0")),
            NodeKind::Hardlink { target } => h.update(format!("h\0{target}\0")),
            NodeKind::Whiteout => h.update(b"w\0"),
            NodeKind::Opaque => h.update(b"o\0"),
        }
    }
    format!("layer:{:x}", h.finalize())
}
