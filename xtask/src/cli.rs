//! Flags that several commands share (`--root`, `--registry`, `--format`,
//! the push flags), and how they become the pipeline's options. No command
//! module imports another: what two commands share lives here or in
//! `output.rs`, `progress.rs` and `report.rs`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::ValueEnum;
use forge_builder::Extras;
use forge_lint::{rules, Level, LintConfig};
use forge_oci::{Compression, Platform};
use forge_pipeline::{
    AttestOptions, BatchOptions, CacheMode, CacheOptions, LockMode, Outputs, PushOptions, RunPolicy,
    Selection, SessionOptions, Shard, DEFAULT_REGISTRY,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    /// Progress on stderr, a summary table on stdout.
    Human,
    /// One JSON object per plugin per line on stdout.
    Json,
    /// Tables as Markdown on stdout, for a release note (`publish`: what
    /// to register); commands without a table print as `human`.
    Markdown,
}

#[derive(Debug, clap::Args)]
pub(crate) struct Common {
    /// The monorepo root, the directory that holds `plugins/` [default: this repository]
    #[arg(long, value_name = "DIR")]
    root: Option<PathBuf>,
    /// Registry prefix of image names (the `REGISTRY` build arg).
    #[arg(long, value_name = "REG", default_value = DEFAULT_REGISTRY)]
    registry: String,
    /// Use SOURCE (OCI layout dir[:TAG], oci-archive or docker-archive) for
    /// the base image REF (`repo:tag`, or `repo` for every tag); repeatable.
    #[arg(long = "base-image", value_name = "REF=SOURCE")]
    base_images: Vec<String>,
    /// Where tarballs go [default: ROOT/target/plugin-forge/images]
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Plugins built at once [default: all cores]
    #[arg(short = 'j', long, value_name = "N")]
    jobs: Option<usize>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub(crate) format: Format,
    #[command(flatten)]
    pub(crate) transport: Transport,
    /// Build even plugins the linter finds errors in (by default they fail
    /// with the lint errors, as they could not be built or run correctly).
    #[arg(long)]
    no_lint: bool,
    /// Do not check this rule (code or name), e.g. `-A PF401` for images
    /// the agent never starts; repeatable.
    #[arg(short = 'A', long = "allow", value_name = "RULE")]
    allow: Vec<String>,
    /// Report this rule as a warning only; repeatable.
    #[arg(short = 'W', long = "warn", value_name = "RULE")]
    warn: Vec<String>,
    /// Fail when a `RUN` that installs packages has no entry in its
    /// plugin's Dockerfile.lock, or one made from other inputs (for CI).
    #[arg(long, conflicts_with = "update_locks")]
    locked: bool,
    /// Resolve every installing `RUN` again and rewrite Dockerfile.lock.
    #[arg(long)]
    update_locks: bool,
    /// The Debian mirror for `RUN apt-get install` in images that name none
    /// in /etc/apt [default: http://deb.debian.org/debian].
    #[arg(long, value_name = "URL")]
    debian_mirror: Option<String>,
    /// Refuse every `RUN` that no native installer (pip, apt-get) takes,
    /// instead of running it in the sandbox (for fully reproducible CI).
    #[arg(long)]
    native_only: bool,
    /// Give sandboxed `RUN`s the host's network (the build then depends on
    /// what the network serves; by default they have none).
    #[arg(long, conflicts_with = "native_only")]
    run_network: bool,
    /// A layer cache in a registry repository, shared by CI runners:
    /// layers found there are not built again, layers built here are
    /// written to the first one (unless --cache-mode read); the others are
    /// read-only fallbacks, asked in order. Repeatable.
    #[arg(long = "cache", value_name = "REG/REPO")]
    caches: Vec<String>,
    /// Whether the first --cache is written to.
    #[arg(long, value_enum, default_value_t = CacheModeFlag::Readwrite)]
    cache_mode: CacheModeFlag,
    /// The SBOM attached to every image (in its tarball, the store and the
    /// registry): SPDX 2.3 JSON, CycloneDX 1.6 JSON, or none.
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = SbomFlag::Spdx)]
    sbom: SbomFlag,
    /// Attach no SLSA provenance statement to the images.
    #[arg(long)]
    no_provenance: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum CacheModeFlag {
    /// Only read the caches (pull requests, forks).
    Read,
    /// Read them, and write what is built to the first.
    Readwrite,
}

/// `--sbom`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum SbomFlag {
    /// SPDX 2.3 JSON.
    Spdx,
    /// CycloneDX 1.6 JSON.
    Cyclonedx,
    /// No SBOM.
    None,
}

impl SbomFlag {
    /// The format, `None` for none.
    pub(crate) fn format(self) -> Option<forge_sbom::Format> {
        match self {
            SbomFlag::Spdx => Some(forge_sbom::Format::Spdx),
            SbomFlag::Cyclonedx => Some(forge_sbom::Format::CycloneDx),
            SbomFlag::None => None,
        }
    }
}

impl Common {
    /// `--root`, or this repository.
    pub(crate) fn root(&self) -> PathBuf {
        self.root.clone().unwrap_or_else(crate::project_root)
    }

    /// The session over the monorepo at `root`.
    pub(crate) fn session(&self, root: PathBuf) -> anyhow::Result<SessionOptions> {
        self.session_from(root, Extras::default(), Vec::new())
    }

    /// The session over the monorepo at `root`, with the `docker build`
    /// flags.
    pub(crate) fn session_with(&self, root: PathBuf, docker: &DockerFlags) -> anyhow::Result<SessionOptions> {
        self.session_from(root, docker.extras()?, docker.platforms()?)
    }

    fn session_from(
        &self,
        root: PathBuf,
        extras: Extras,
        platforms: Vec<Platform>,
    ) -> anyhow::Result<SessionOptions> {
        Ok(SessionOptions {
            platforms,
            extras,
            root,
            registry: self.registry.clone(),
            base_images: self.base_images.clone(),
            out: self.out.clone(),
            insecure_registries: self.transport.insecure_registries.clone(),
            ca_certs: self.transport.ca_certs.clone(),
            lint: lint_config(&self.allow, &self.warn)?,
            locks: if self.locked {
                LockMode::Locked
            } else if self.update_locks {
                LockMode::Update
            } else {
                LockMode::Normal
            },
            debian_mirror: self.debian_mirror.clone(),
            run: RunPolicy { native_only: self.native_only, network: self.run_network },
            cache: CacheOptions {
                repositories: self.caches.clone(),
                mode: match self.cache_mode {
                    CacheModeFlag::Read => CacheMode::Read,
                    CacheModeFlag::Readwrite => CacheMode::ReadWrite,
                },
            },
            attest: AttestOptions { sbom: self.sbom.format(), provenance: !self.no_provenance },
            outputs: Outputs::default(),
        })
    }

    /// How many plugins build at once, and whether behind the lint gate.
    pub(crate) fn batch(&self) -> BatchOptions {
        BatchOptions { jobs: self.jobs, lint: !self.no_lint }
    }
}

/// What `build`, `build-all` and `publish` write besides the store.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct OutputFlags {
    /// Write one archive of every image built to FILE, every blob once: an
    /// OCI layout naming each image by its full name (`skopeo copy
    /// oci-archive:FILE:REGISTRY/NAME:TAG`) and a Docker manifest.json of
    /// them all (`docker load -i FILE` loads every one). Per-plugin
    /// tarballs are then not written, unless --tarballs.
    #[arg(long, value_name = "FILE")]
    archive: Option<PathBuf>,
    /// Write each plugin's tarball under --out even where --archive,
    /// --push or publish make them unnecessary (and do not write them by
    /// default).
    #[arg(long)]
    tarballs: bool,
}

impl OutputFlags {
    /// What a run writes; `pushed`: the images go to a registry.
    pub(crate) fn outputs(&self, pushed: bool) -> Outputs {
        let needed = !pushed && self.archive.is_none();
        Outputs { tarballs: self.tarballs || needed, archive: self.archive.clone() }
    }
}

/// How registries are reached: shared by the commands that talk to one.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct Transport {
    /// Talk plain HTTP to this registry (loopback registries always are); repeatable.
    #[arg(long = "insecure-registry", value_name = "HOST")]
    pub(crate) insecure_registries: Vec<String>,
    /// Trust the CA certificates of this PEM file for every registry, for
    /// this run (on top of the system's and /etc/docker/certs.d/HOST:PORT/*.crt); repeatable.
    #[arg(long = "ca-cert", value_name = "FILE")]
    pub(crate) ca_certs: Vec<PathBuf>,
}

/// The severity overrides of `-A`/`-W` flags (codes or names); `-A` wins.
fn lint_config(allow: &[String], warn: &[String]) -> anyhow::Result<LintConfig> {
    let mut config = LintConfig::default();
    for (names, level) in [(warn, Level::Warn), (allow, Level::Allow)] {
        for name in names {
            let rule = rules::lookup(name).ok_or_else(|| {
                anyhow::anyhow!("unknown lint rule `{name}`; `cargo xtask lint --list-rules` lists them")
            })?;
            config.set(rule, level);
        }
    }
    Ok(config)
}

/// The flags authors know from `docker build`, on `build`, `build-all`
/// and `publish`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct DockerFlags {
    /// Set a build arg, the value of an `ARG` (`MODULE_PATH`, `REGISTRY`
    /// and `TAG` are set by plugin-forge); repeatable. An `ARG` without
    /// default and without --build-arg is empty, as in Docker.
    #[arg(long = "build-arg", value_name = "KEY=VALUE")]
    build_args: Vec<String>,
    /// Set a label on the image, over the Dockerfile's; repeatable.
    #[arg(long = "label", value_name = "KEY=VALUE")]
    labels: Vec<String>,
    /// Another tag of the same image (`latest`, the git short SHA), stored
    /// and pushed after the VERSION tag; repeatable.
    #[arg(short = 't', long = "tag", value_name = "TAG")]
    tags: Vec<String>,
    /// Build every layer again instead of taking it from the cache (the
    /// image is the same: builds are reproducible).
    #[arg(long)]
    no_cache: bool,
    /// Keep each copied file's and directory's mode from disk (0600, 0700,
    /// setuid, sticky), as `docker build` does, instead of 0644/0755 (any
    /// executable bit), which gives the same image whatever the umask.
    #[arg(long)]
    preserve_modes: bool,
    /// Build this stage of a multi-stage Dockerfile (`FROM image AS
    /// STAGE`) and the stages it needs, instead of the last stage.
    #[arg(long, value_name = "STAGE")]
    target: Option<String>,
    /// Print only the image names (and errors), like `docker build -q`.
    #[arg(short = 'q', long)]
    pub(crate) quiet: bool,
    /// Build for these platforms (`linux/arm64`, or a comma-separated
    /// list, an image index of them, `linux/amd64,linux/arm64`), from a
    /// base for each platform, with its wheels and .debs, no emulator
    /// [default: linux/amd64]
    #[arg(long, value_name = "OS/ARCH[,...]")]
    platform: Option<String>,
    /// Compress the layers built with gzip (every runtime reads it) or
    /// zstd (smaller and faster; Docker 23+, containerd and podman read
    /// it, Docker 20.10 does not) [possible values: gzip, zstd]
    #[arg(long, value_name = "ALGORITHM", default_value = "gzip", value_parser = compression)]
    compression: Compression,
}

/// The value of `--compression`.
fn compression(text: &str) -> Result<Compression, String> {
    Compression::from_name(text).ok_or_else(|| format!("`{text}` is not a layer compression: gzip or zstd"))
}

impl DockerFlags {
    /// The build args, labels, tags and cache policy, checked.
    pub(crate) fn extras(&self) -> anyhow::Result<Extras> {
        let extras = Extras::from_flags(&self.build_args, &self.labels, &self.tags, self.no_cache)?;
        Ok(Extras {
            preserve_modes: self.preserve_modes,
            target: self.target.clone(),
            compression: self.compression,
            ..extras
        })
    }

    /// The platforms of `--platform`, checked (none: the default).
    pub(crate) fn platforms(&self) -> anyhow::Result<Vec<Platform>> {
        match &self.platform {
            Some(text) => {
                Platform::parse_list(text).map_err(|why| anyhow::anyhow!("--platform {text}: {why}"))
            }
            None => Ok(Vec::new()),
        }
    }

    /// `format`, unless `-q` says to print only names.
    pub(crate) fn output(&self, format: Format) -> Output {
        if self.quiet {
            Output::Names
        } else {
            Output::Format(format)
        }
    }
}

/// What a build or publish prints on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Output {
    /// As `--format` says.
    Format(Format),
    /// Only the image names (`-q`).
    Names,
}

impl Output {
    /// The format progress is shown for: none but errors with `-q`.
    pub(crate) fn progress_format(self) -> Format {
        match self {
            Output::Format(format) => format,
            Output::Names => Format::Json,
        }
    }
}

/// Which plugins `build-all` and `publish` take, for CI runners that
/// split the work or build only what a commit changed.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct SelectFlags {
    /// Only shard K of N (1-based), by a hash of the plugin's path: N
    /// runners with K = 1..N build every plugin once, and adding a plugin
    /// moves no other to another shard.
    #[arg(long, value_name = "K/N")]
    shard: Option<Shard>,
    /// Only the plugins whose build inputs differ from this commit (files
    /// under the plugin, what its COPY/ADDs read, .dockerignore, its base
    /// image's description and locks).
    #[arg(long, value_name = "GITREF")]
    changed_since: Option<String>,
    /// Print the plugins selected (plugin, image, shard) and build nothing.
    #[arg(long)]
    list: bool,
}

impl SelectFlags {
    /// The plugins of `plugins` selected, in their order; with `--list`,
    /// they are printed (nothing is built) and the exit status is the `Err`.
    pub(crate) fn apply(
        &self,
        root: &Path,
        options: &SessionOptions,
        plugins: Vec<PathBuf>,
        format: Format,
    ) -> anyhow::Result<Result<Vec<PathBuf>, ExitCode>> {
        let selection = Selection { shard: self.shard, changed_since: self.changed_since.clone() };
        let plugins = selection.apply(options, plugins)?;
        if !self.list {
            return Ok(Ok(plugins));
        }
        let shards = self.shard.map(|s| s.count);
        Ok(Err(crate::report::list(root, &plugins, &options.registry, shards, format)))
    }
}

#[derive(Debug, Clone, clap::Args)]
pub(crate) struct PushFlags {
    /// Images uploaded at once, across all plugins.
    #[arg(long, value_name = "N", default_value_t = 4)]
    max_uploads: usize,
    /// Upload blobs larger than this many MiB in chunks (for proxies that
    /// limit request bodies) [default: never]
    #[arg(long, value_name = "MIB")]
    chunk_size: Option<u64>,
}

impl PushFlags {
    pub(crate) fn options(&self) -> PushOptions {
        PushOptions {
            max_uploads: self.max_uploads,
            chunk_size: self.chunk_size.map_or(u64::MAX, |mib| mib.saturating_mul(1 << 20)),
        }
    }
}
