//! Errors of a build.

use std::io;
use std::path::PathBuf;

/// Why a plugin could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// A file or directory could not be read or written.
    #[error(transparent)]
    Io(#[from] forge_input::IoError),
    /// A file name (or link target) of a root filesystem is not UTF-8;
    /// layers keep names exactly, so it is refused rather than replaced.
    #[error(
        "`{path}` has a name that is not valid UTF-8; rename it (replacing bytes could merge two files)"
    )]
    NonUtf8Name {
        /// The path, its invalid bytes as `\xNN`.
        path: String,
    },
    /// The plugin's manifest files are not valid.
    #[error(transparent)]
    Manifest(#[from] forge_manifest::ManifestError),
    /// An instruction of the Dockerfile cannot be built; points at it.
    #[error("{}:{line}:{column}: {message}{}", file.display(), help.as_ref().map(|h| format!("\n  help: {h}")).unwrap_or_default())]
    Dockerfile {
        /// The Dockerfile, relative to the monorepo root.
        file: PathBuf,
        /// Line, from 1.
        line: u32,
        /// Column, from 1.
        column: u32,
        /// What is wrong.
        message: String,
        /// What to do.
        help: Option<String>,
    },
    /// An installing `RUN` could not be installed (resolution, download,
    /// a stale lock); points at the command it is about.
    #[error("{}:{line}:{column}: {message}{}", file.display(), help.as_ref().map(|h| format!("\n  help: {h}")).unwrap_or_default())]
    Install {
        /// The Dockerfile, relative to the monorepo root.
        file: PathBuf,
        /// Line, from 1.
        line: u32,
        /// Column, from 1.
        column: u32,
        /// The `RUN` instruction.
        instruction: String,
        /// What went wrong, with its causes.
        message: String,
        /// What to do.
        help: Option<String>,
    },
    /// A sandboxed `RUN` failed (a non-zero exit status, say) or could
    /// not run; points at it, with the last lines it wrote.
    #[error("{}:{line}:{column}: {message}{}{}", file.display(),
        output.iter().map(|l| format!("\n  | {l}")).collect::<String>(),
        help.as_ref().map(|h| format!("\n  help: {h}")).unwrap_or_default())]
    Run {
        /// The Dockerfile, relative to the monorepo root.
        file: PathBuf,
        /// Line, from 1.
        line: u32,
        /// Column, from 1.
        column: u32,
        /// What went wrong (naming the instruction).
        message: String,
        /// The last lines of its output.
        output: Vec<String>,
        /// What to do.
        help: Option<String>,
    },
    /// A planned layer could not be built (a file changed or went away
    /// since the plan was made, say); points at its instruction.
    #[error("{}:{line}:{column}: building the layer of `{instruction}`", file.display())]
    Layer {
        /// The Dockerfile, relative to the monorepo root.
        file: PathBuf,
        /// Line, from 1.
        line: u32,
        /// Column, from 1.
        column: u32,
        /// The instruction.
        instruction: String,
        /// The cause (boxed: it is large, and rare).
        #[source]
        source: Box<forge_oci::Error>,
    },
    /// A `.dockerignore` pattern is invalid.
    #[error("{}:{line}: {message}", file.display())]
    DockerIgnore {
        /// The file.
        file: PathBuf,
        /// Line, from 1.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// `--target` names no stage of the Dockerfile.
    #[error("{}: --target {target}: no stage has that name; its stages: {stages}", file.display())]
    UnknownTarget {
        /// The Dockerfile, relative to the monorepo root.
        file: PathBuf,
        /// The name given.
        target: String,
        /// The names there are.
        stages: String,
    },
    /// A plugin's plan has no platform to build for.
    #[error("{}: nothing to build: the plan has no platform", plugin.display())]
    NoPlatform {
        /// The plugin directory.
        plugin: PathBuf,
    },
    /// The base image named by `FROM` is not available.
    #[error("base image `{reference}` not found: {help}")]
    BaseNotFound {
        /// The reference, after substitution.
        reference: String,
        /// How to provide it.
        help: String,
    },
    /// The resolver could not provide the base image (a pull failed, say);
    /// `why` says what was tried and how to provide it instead.
    #[error("base image `{reference}` {why}")]
    BaseUnavailable {
        /// The reference.
        reference: String,
        /// What went wrong and what to do, after the reference.
        why: String,
        /// The cause (boxed: it comes from outside the builder, and is rare).
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Image assembly failed.
    #[error(transparent)]
    Oci(#[from] forge_oci::Error),
    /// A `--build-arg`, `--label` or `--tag` value is refused.
    #[error("{flag} {value}: {why}")]
    Flag {
        /// The flag.
        flag: &'static str,
        /// Its value.
        value: String,
        /// Why it is refused and what to do.
        why: String,
    },
}

impl BuildError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> BuildError {
        BuildError::Io(forge_input::IoError::new(op, path, source))
    }
}

impl From<forge_oci::DigestError> for BuildError {
    fn from(e: forge_oci::DigestError) -> BuildError {
        BuildError::Oci(e.into())
    }
}

/// A refusal found while planning an instruction, before it is tied to its
/// position in the Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// What is wrong.
    pub message: String,
    /// What to do.
    pub help: Option<String>,
    /// The index of the source (of those given to the planner) it is about,
    /// so that the error points at that word; `None` for the instruction.
    pub source: Option<usize>,
}

impl Refusal {
    pub(crate) fn new(message: impl Into<String>) -> Refusal {
        Refusal { message: message.into(), help: None, source: None }
    }

    /// The same refusal, about source `index`.
    pub(crate) fn about_source(mut self, index: usize) -> Refusal {
        self.source = Some(index);
        self
    }

    pub(crate) fn help(mut self, help: impl Into<String>) -> Refusal {
        self.help = Some(help.into());
        self
    }
}
