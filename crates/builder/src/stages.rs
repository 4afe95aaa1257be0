//! The stage graph of a multi-stage Dockerfile: its global `ARG`s, each
//! `FROM`'s stage (its name, its base: an image or an earlier stage, its
//! instructions) and the stages and images its `COPY --from`s read, as
//! BuildKit reads them, so that planning takes only what the target needs.
//!
//! Docker's rules: stage names are case-insensitive and unique; a `FROM`
//! naming an earlier stage builds on that stage's image, any other name is
//! an image (a stage's own name or a later one's included, as in BuildKit).
//! `COPY --from=` takes a stage name, a stage index (`0` is the first
//! `FROM`) or an image reference; it must name a stage before its own (a
//! stage cannot copy from itself or from a later stage). `FROM` and
//! `--from` are expanded with the global `ARG`s (those before the first
//! `FROM`, and BuildKit's automatic platform args), and a stage sees a
//! global `ARG` only once it declares it again (`ARG NAME`).

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;

use forge_dockerfile::{Instr, Position, RawWord};
use forge_oci::Platform;

use crate::error::BuildError;
use crate::plan::{expand, global_args, ParsedDockerfile};

/// What a stage is based on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Base {
    /// An image reference, expanded (`scratch` for none).
    Image(String),
    /// The stage at this index.
    Stage(usize),
}

/// A stage of the Dockerfile.
#[derive(Debug, Clone)]
pub(crate) struct StageDef {
    /// The name after `AS`, lower-cased.
    pub(crate) name: Option<String>,
    /// Where its `FROM` is.
    pub(crate) position: Position,
    /// What it builds on.
    pub(crate) base: Base,
    /// Its instructions after the `FROM`, as indices of the parsed ones.
    pub(crate) instrs: Range<usize>,
    /// Its `COPY --from`s: the instruction's position, the `--from`
    /// value's, and what it names (a stage or an image).
    pub(crate) copies: Vec<(Position, Position, Base)>,
}

impl StageDef {
    /// How errors and the history name the stage: its name, or its index.
    pub(crate) fn label(&self, index: usize) -> String {
        self.name.clone().unwrap_or_else(|| index.to_string())
    }
}

/// The stages of a Dockerfile; see the [module docs](self).
#[derive(Debug)]
pub(crate) struct Graph {
    /// In Dockerfile order.
    pub(crate) stages: Vec<StageDef>,
}

impl Graph {
    /// Reads the stages of `dockerfile` for a build for `platform`.
    pub(crate) fn read(
        dockerfile: &ParsedDockerfile,
        build_args: &BTreeMap<String, String>,
        platform: &Platform,
    ) -> Result<Graph, BuildError> {
        let escape = dockerfile.escape();
        let instrs = dockerfile.instrs();
        let first_from = instrs.iter().position(|i| matches!(i.node, Instr::From(_)));
        if let Some(instr) =
            instrs[..first_from.unwrap_or(instrs.len())].iter().find(|i| !matches!(i.node, Instr::Arg(_)))
        {
            return Err(dockerfile.error(
                instr.position,
                format!("{} comes before FROM", instr.node.keyword()),
                Some("start the build stage with FROM; only ARG may come before it"),
            ));
        }
        let Some(first_from) = first_from else {
            return Err(dockerfile.error(
                Position { line: 1, column: 1 },
                "no FROM instruction".into(),
                None,
            ));
        };
        let global_args = global_args(dockerfile, build_args, platform)?;
        let global =
            |word: &RawWord| expand(dockerfile, escape, word, &|n| global_args.get(n).cloned().flatten());

        // The stages and their names first: `--from` may name any of them.
        let froms: Vec<usize> =
            (first_from..instrs.len()).filter(|&i| matches!(instrs[i].node, Instr::From(_))).collect();
        let mut stages: Vec<StageDef> = Vec::new();
        for (n, &at) in froms.iter().enumerate() {
            let Instr::From(from) = &instrs[at].node else { unreachable!("filtered above") };
            let position = instrs[at].position;
            if let Some(word) = &from.platform {
                check_platform(dockerfile, word, &global(word)?, platform)?;
            }
            let name =
                from.stage.as_ref().map(|w| (w, forge_dockerfile::unquote(&w.raw, escape).to_lowercase()));
            if let Some((word, name)) = &name {
                if let Some(earlier) = stages.iter().find(|s| s.name.as_ref() == Some(name)) {
                    return Err(dockerfile.error(
                        word.position,
                        format!(
                            "duplicate stage name `{name}`: the stage at line {} has it",
                            earlier.position.line
                        ),
                        Some("give every stage its own name (stage names are case-insensitive)"),
                    ));
                }
            }
            let reference = global(&from.image)?;
            if reference.is_empty() {
                return Err(dockerfile.error(
                    from.image.position,
                    format!("FROM `{}` expands to nothing", from.image.raw),
                    Some("set the ARG it uses before the first FROM, or pass --build-arg"),
                ));
            }
            let lower = reference.to_lowercase();
            let base = match stages.iter().position(|s| s.name.as_deref() == Some(lower.as_str())) {
                Some(earlier) => Base::Stage(earlier),
                None => Base::Image(reference),
            };
            let end = froms.get(n + 1).copied().unwrap_or(instrs.len());
            stages.push(StageDef {
                name: name.map(|(_, name)| name),
                position,
                base,
                instrs: at + 1..end,
                copies: Vec::new(),
            });
        }
        for index in 0..stages.len() {
            let mut copies = Vec::new();
            for instr in &instrs[stages[index].instrs.clone()] {
                let Instr::Copy(copy) = &instr.node else { continue };
                let Some(word) = &copy.from else { continue };
                let value = global(word)?;
                let source = copy_source(dockerfile, &stages, index, word, &value)?;
                copies.push((instr.position, word.position, source));
            }
            stages[index].copies = copies;
        }
        Ok(Graph { stages })
    }

    /// The stage `--target` names (case-insensitive), or the last one.
    pub(crate) fn target(
        &self,
        dockerfile: &ParsedDockerfile,
        target: Option<&str>,
    ) -> Result<usize, BuildError> {
        let Some(target) = target else { return Ok(self.stages.len() - 1) };
        let lower = target.to_lowercase();
        self.stages.iter().position(|s| s.name.as_deref() == Some(lower.as_str())).ok_or_else(|| {
            let names: Vec<String> = self.stages.iter().filter_map(|s| s.name.clone()).collect();
            BuildError::UnknownTarget {
                file: dockerfile.path().to_path_buf(),
                target: target.to_string(),
                stages: if names.is_empty() {
                    "none is named (`FROM image AS name`)".into()
                } else {
                    names.join(", ")
                },
            }
        })
    }

    /// The stages `target` needs (its base stages and the stages its
    /// `COPY --from`s read, and theirs), `target` included, in Dockerfile
    /// order, which is an order every stage comes after what it needs.
    pub(crate) fn needed(&self, target: usize) -> Vec<usize> {
        let mut needed = BTreeSet::new();
        let mut pending = vec![target];
        while let Some(index) = pending.pop() {
            if !needed.insert(index) {
                continue;
            }
            let stage = &self.stages[index];
            pending.extend(
                std::iter::once(&stage.base)
                    .chain(stage.copies.iter().map(|(_, _, source)| source))
                    .filter_map(|b| match b {
                        Base::Stage(s) => Some(*s),
                        Base::Image(_) => None,
                    }),
            );
        }
        needed.into_iter().collect()
    }
}

/// What `COPY --from=VALUE` in stage `index` reads: a stage before it (by
/// name or index), or an image.
fn copy_source(
    dockerfile: &ParsedDockerfile,
    stages: &[StageDef],
    index: usize,
    word: &RawWord,
    value: &str,
) -> Result<Base, BuildError> {
    let lower = value.to_lowercase();
    let named = stages.iter().position(|s| s.name.as_deref() == Some(lower.as_str()));
    let found = match (named, value.parse::<usize>()) {
        (Some(stage), _) => stage,
        (None, Ok(number)) if number < stages.len() => number,
        (None, Ok(number)) => {
            return Err(dockerfile.error(
                word.position,
                format!("COPY --from={value}: there is no stage {number}, the Dockerfile has {}", stages.len()),
                Some("stages are numbered from 0 in the order of their FROMs; or name the stage with `FROM image AS name`"),
            ));
        }
        (None, Err(_)) if value.starts_with('-') && value[1..].parse::<u64>().is_ok() => {
            return Err(dockerfile.error(
                word.position,
                format!("COPY --from={value}: a stage index cannot be negative"),
                None,
            ));
        }
        (None, Err(_)) => return Ok(Base::Image(value.to_string())),
    };
    let label = stages[found].label(found);
    if found == index {
        return Err(dockerfile.error(
            word.position,
            format!("COPY --from={value} names its own stage (`{label}`)"),
            Some("copy from an earlier stage; within a stage, the files are already there"),
        ));
    }
    if found > index {
        return Err(dockerfile.error(
            word.position,
            format!(
                "COPY --from={value} names the stage `{label}` at line {}, which comes after this one",
                stages[found].position.line
            ),
            Some("move the stage it copies from before this one: a stage copies only from the stages before it"),
        ));
    }
    Ok(Base::Stage(found))
}

/// `FROM --platform=VALUE`: only the platform being built.
fn check_platform(
    dockerfile: &ParsedDockerfile,
    word: &RawWord,
    value: &str,
    platform: &Platform,
) -> Result<(), BuildError> {
    let asked = Platform::parse(value).ok_or_else(|| {
        dockerfile.error(
            word.position,
            format!("`--platform={value}` is not a platform"),
            Some("write OS/ARCH[/VARIANT], e.g. --platform=linux/arm64, or --platform=$TARGETPLATFORM"),
        )
    })?;
    if !asked.accepts(platform) && !platform.accepts(&asked) {
        return Err(dockerfile.error(
            word.position,
            format!("FROM --platform={value}, but this build is for {platform}"),
            Some("every stage is built for the platform of the build (a single-stage image is its base's platform): write --platform=$TARGETPLATFORM, or drop --platform from FROM, or build with --platform of the same value"),
        ));
    }
    Ok(())
}
