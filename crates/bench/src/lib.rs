//! The benchmark of `cargo xtask bench`: plugin-forge against buildah,
//! Docker (classic builder and BuildKit), skopeo and the hardware floor
//! (`tar | pigz -p2 | sha256sum`, `tar | gzip -6 | sha256sum`) on
//! generated workloads, every one a whole process, run in alternation in
//! one invocation. [`run`] returns a [`Report`]: a [`Row`] per workload and
//! tool (median, min–max, peak RSS, the ratio ours/peer) and the issue's
//! [`Target`]s, each met or not. The command line (xtask) only parses
//! flags and prints.
//!
//! Speed is judged here, never by timed unit tests: `--quick` is part of
//! the test suite only to show that every row can be measured.

mod measure;
pub mod peers;
mod report;
mod suite;
pub mod workload;

use std::path::PathBuf;

pub use measure::{Run, Stats};
pub use report::{Report, Row, Status, Target};
pub use suite::run;

/// How big the workloads are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scale {
    /// Every workload, small: under a minute, for the test suite.
    Quick,
    /// The sizes: 50 plugins on a 6 MB SDK, a 1 GB layer, 200
    /// plugins for W8.
    Full,
}

/// The sizes of one scale.
#[derive(Debug, Clone, Copy)]
pub struct Sizes {
    /// The monorepo of W1–W3 and W6.
    pub monorepo: workload::Shape,
    /// The weights of W4.
    pub weights_bytes: u64,
    /// The monorepo of W8.
    pub many: workload::Shape,
}

impl Scale {
    /// The workload sizes of this scale.
    pub fn sizes(self) -> Sizes {
        match self {
            Scale::Quick => Sizes {
                monorepo: workload::Shape { plugins: 2, sdk_files: 40, sdk_bytes: 600 << 10 },
                weights_bytes: 16 << 20,
                many: workload::Shape { plugins: 6, sdk_files: 40, sdk_bytes: 600 << 10 },
            },
            Scale::Full => Sizes {
                monorepo: workload::Shape { plugins: 50, sdk_files: 400, sdk_bytes: 6 << 20 },
                weights_bytes: 1 << 30,
                many: workload::Shape { plugins: 200, sdk_files: 400, sdk_bytes: 6 << 20 },
            },
        }
    }
}

/// What to run.
#[derive(Debug, Clone)]
pub struct Config {
    /// The plugin-forge binary measured (`xtask` or `plugin-forge`).
    pub binary: PathBuf,
    /// The project, for `base-images/base-py.*` (the Debian Python base).
    pub project_root: PathBuf,
    /// Where the generated workloads are kept between runs (generated once:
    /// W7's `Dockerfile.lock` and the base image are reused, so nothing is
    /// fetched after the first run) and where each run's state goes.
    pub dir: PathBuf,
    /// Sizes.
    pub scale: Scale,
    /// Runs of our commands and the floors.
    pub runs: usize,
    /// Runs of the slow peers (buildah, Docker, skopeo).
    pub peer_runs: usize,
    /// W1's slowest peers (buildah, Docker's classic builder) build only
    /// this many of the plugins, their time scaled to all of them (said in
    /// the row); `None`: all.
    pub peer_plugins: Option<usize>,
}

/// Why the benchmark could not run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file operation failed.
    #[error(transparent)]
    Io(#[from] forge_input::IoError),
    /// A script failed.
    #[error("`{script}` failed ({status}):\n{stderr}")]
    Failed {
        /// The script.
        script: String,
        /// Its exit status.
        status: String,
        /// The end of its stderr.
        stderr: String,
    },
    /// A tool the benchmark itself needs is missing.
    #[error("{0}")]
    Missing(String),
}
