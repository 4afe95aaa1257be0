//! The run's [`Runner`]: the builder's sandboxed `RUN`s executed by
//! forge-sandbox under bubblewrap.
//!
//! One [`BuildRoot`] per build chain (made at the first `RUN` that misses
//! the layer cache), roots under `ROOT/target/plugin-forge/roots` (shared
//! with `cargo xtask run`), cache mounts under
//! `ROOT/target/plugin-forge/run-cache/<digest of the id>`, bind mounts
//! written from the context's files (as `COPY` reads them) into a
//! temporary directory per `RUN`. `--native-only` refuses every sandboxed
//! `RUN`; `--run-network` gives them the host's network.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use forge_builder::{RunChain, RunError, RunMount, RunRequest, Runner, TARGET_DIR};
use forge_input::error_chain;
use forge_oci::{BlobStore, Digest, Platform, Tree};
use forge_sandbox::{Bind, BuildCommand, BuildRoot, RootCache};

/// How sandboxed `RUN`s run, from the command line.
#[derive(Debug, Clone, Default)]
pub struct RunPolicy {
    /// `--native-only`: refuse every `RUN` no native installer takes.
    pub native_only: bool,
    /// `--run-network`: sandboxed `RUN`s get the host's network (the build
    /// then depends on what the network serves).
    pub network: bool,
}

/// forge-sandbox behind the builder's [`Runner`] seam.
#[derive(Debug)]
pub struct SandboxRunner {
    store: BlobStore,
    roots: RootCache,
    mounts: PathBuf,
    bwrap: PathBuf,
    policy: RunPolicy,
    /// Whether bubblewrap can make a user namespace here (probed once).
    usable: OnceLock<Result<(), String>>,
}

impl SandboxRunner {
    /// The runner of the monorepo at `root` with its store.
    pub fn new(root: &Path, store: BlobStore, policy: RunPolicy) -> SandboxRunner {
        let target = root.join(TARGET_DIR);
        SandboxRunner {
            store,
            roots: RootCache::new(target.join("roots")),
            mounts: target.join("run-cache"),
            bwrap: PathBuf::from("bwrap"),
            policy,
            usable: OnceLock::new(),
        }
    }

    /// Whether `bwrap` runs and can make the namespaces a `RUN` needs.
    fn probe(&self) -> Result<(), String> {
        let output = Command::new(&self.bwrap)
            .args([
                "--ro-bind",
                "/",
                "/",
                "--unshare-all",
                "--unshare-user",
                "--uid",
                "0",
                "--gid",
                "0",
                "true",
            ])
            .stdin(Stdio::null())
            .output();
        match output {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err("bubblewrap (`bwrap`) is not installed".to_string())
            }
            Err(e) => Err(format!("`bwrap` could not be started: {e}")),
            Ok(out) if out.status.success() => Ok(()),
            Ok(out) => Err(format!(
                "`bwrap` cannot make the sandbox's namespaces here: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )),
        }
    }
}

impl Runner for SandboxRunner {
    fn check(&self, request: &RunRequest<'_>) -> Result<(), RunError> {
        let why = &request.run.not_native;
        if self.policy.native_only {
            return Err(RunError::new(format!(
                "--native-only refuses this RUN: no native installer takes it ({} at {}), so it would run in the sandbox",
                why.message, why.position
            ))
            .help("build without --native-only, or make the RUN a plain `pip install`/`apt-get install`"));
        }
        let host = Platform::host();
        if !request.at.platform.accepts(&host) && !host.accepts(request.at.platform) {
            return Err(RunError::new(format!(
                "this RUN must execute in the sandbox, and the image is for {}, which this {host} machine cannot run",
                request.at.platform
            ))
            .help("build this plugin for the machine's platform, or make the RUN one a native installer takes"));
        }
        self.usable.get_or_init(|| self.probe()).clone().map_err(|why| {
            RunError::new(format!("this RUN must execute in the sandbox, and no sandbox can run here: {why}"))
                .help("install bubblewrap (`apt-get install bubblewrap`) and allow unprivileged user namespaces (`sysctl kernel.unprivileged_userns_clone=1`, or on Ubuntu `kernel.apparmor_restrict_unprivileged_userns=0`); or build with --native-only to refuse such RUNs")
        })
    }

    fn chain(&self) -> Box<dyn RunChain + '_> {
        Box::new(Chain { runner: self, root: BuildRoot::new(self.roots.clone(), self.bwrap.clone()) })
    }
}

struct Chain<'a> {
    runner: &'a SandboxRunner,
    root: BuildRoot,
}

impl RunChain for Chain<'_> {
    fn run(&mut self, request: &RunRequest<'_>, spool: &Path) -> Result<Tree, RunError> {
        let sandbox =
            |e: forge_sandbox::Error| RunError::new(format!("the sandbox failed: {}", error_chain(&e)));
        let run = request.run;
        let layers: Vec<_> =
            request.below.iter().map(|l| (l.descriptor.clone(), l.diff_id.clone())).collect();
        self.root.sync(&self.runner.store, &layers, request.base_layers).map_err(sandbox)?;
        let scratch = tempfile::Builder::new()
            .prefix(&forge_oci::temp::prefix(".tmp-"))
            .tempdir_in(spool)
            .map_err(|e| RunError::new(format!("creating a directory in {}: {e}", spool.display())))?;
        let mut binds = Vec::new();
        for (index, mount) in run.mounts.iter().enumerate() {
            match mount {
                RunMount::Cache { target, id, read_only } => {
                    let dir = self.runner.mounts.join(Digest::of(id.as_bytes()).hex());
                    std::fs::create_dir_all(&dir).map_err(|e| {
                        RunError::new(format!("creating the cache mount {}: {e}", dir.display()))
                    })?;
                    binds.push(Bind { source: dir, dest: target.clone(), read_only: *read_only });
                }
                RunMount::Bind { target, tree, read_write, .. } => {
                    let dir = scratch.path().join(format!("bind-{index}"));
                    forge_sandbox::build::materialize(tree, &dir).map_err(sandbox)?;
                    binds.push(Bind { source: dir, dest: target.clone(), read_only: !read_write });
                }
            }
        }
        let command = BuildCommand {
            argv: run.argv.clone(),
            env: run.env.clone(),
            workdir: run.workdir.clone(),
            user: run.user.clone(),
            binds,
            network: self.runner.policy.network && !run.no_network,
        };
        let outcome = self.root.run(&command, spool).map_err(sandbox)?;
        match outcome.code {
            Some(0) => Ok(outcome.tree),
            code => {
                let status =
                    code.map_or("was killed by a signal".to_string(), |c| format!("exited with status {c}"));
                let mut error = RunError::new(format!("`{}` {status}", request.at.instruction));
                error.output = outcome.tail;
                if !command.network {
                    error.help = Some("sandboxed RUNs have no network; `--run-network` gives them the host's (the build then depends on what it serves)".into());
                }
                Err(error)
            }
        }
    }
}
