//! `cargo xtask image`: the local image store that `FROM` resolves through
//! (`ROOT/target/plugin-forge/oci`, an OCI image layout).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use forge_builder::{image_from_rootfs, split_source};
use forge_oci::{BlobStore, Platform, Target};

#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// Import a base image into the store under NAME (`repo:tag`, or `repo`
    /// to stand for every tag). SOURCE is an OCI layout directory
    /// (`DIR:TAG` when it holds several images), an oci-archive or a
    /// docker-archive (`docker save`) file; every digest is verified.
    Import {
        /// The image to import.
        source: String,
        /// The name `FROM` will use.
        name: String,
        #[command(flatten)]
        root: Root,
    },
    /// Make a one-layer image from a root filesystem directory (as `docker
    /// import` does), for example a `debootstrap` tree, under NAME.
    FromRootfs {
        /// The root filesystem.
        dir: PathBuf,
        /// The name `FROM` will use.
        name: String,
        #[command(flatten)]
        root: Root,
    },
    /// Write an image of the store as a tarball that is both an OCI
    /// archive and a `docker save` archive.
    Export {
        /// The image name.
        name: String,
        /// The tarball to write.
        file: PathBuf,
        #[command(flatten)]
        root: Root,
    },
    /// List the images of the store.
    List {
        #[command(flatten)]
        root: Root,
    },
    /// Remove the blobs no image of the store refers to (layers only the
    /// layer cache remembers included) and every temporary killed runs
    /// left; refused while another run uses the store.
    Gc {
        #[command(flatten)]
        root: Root,
    },
    /// Print the SBOM (or the provenance) attached to an image of the
    /// store by the build that made it.
    Sbom {
        /// The image name.
        name: String,
        /// Which document.
        #[arg(long, value_enum, default_value_t = Document::Spdx)]
        format: Document,
        /// The image of this platform, when NAME is an index of several
        /// [default: the first].
        #[arg(long, value_name = "OS/ARCH")]
        platform: Option<String>,
        #[command(flatten)]
        root: Root,
    },
    /// Re-read an image of the store and check every digest, size and
    /// diff ID.
    Validate {
        /// The image name.
        name: String,
        #[command(flatten)]
        root: Root,
    },
}

/// The documents `image sbom` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Document {
    /// The SPDX 2.3 SBOM.
    Spdx,
    /// The CycloneDX 1.6 SBOM.
    Cyclonedx,
    /// The in-toto statement with the SLSA provenance.
    Provenance,
}

#[derive(Debug, clap::Args)]
pub(crate) struct Root {
    /// The monorepo root whose store to use [default: this repository]
    #[arg(long, value_name = "DIR")]
    root: Option<PathBuf>,
}

impl Root {
    fn store(&self) -> anyhow::Result<BlobStore> {
        let root = self.root.clone().unwrap_or_else(crate::project_root);
        Ok(forge_pipeline::open_store(&root)?)
    }
}

pub(crate) fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Import { source, name, root } => {
            let store = root.store()?;
            let (path, tag) = split_source(&source);
            let image = forge_oci::import(&path, tag.as_deref(), &store)
                .with_context(|| format!("importing {source}"))?;
            store.set_ref(&name, &image.manifest_descriptor())?;
            println!("{name} {}", image.manifest_digest);
        }
        Command::FromRootfs { dir, name, root } => {
            let store = root.store()?;
            let epoch = forge_pipeline::source_date_epoch()?;
            let image = image_from_rootfs(&store, &dir, epoch)?;
            store.set_ref(&name, &image.manifest_descriptor())?;
            println!("{name} {}", image.manifest_digest);
        }
        Command::Export { name, file, root } => {
            let store = root.store()?;
            // An image, or an index of images (one per platform).
            let target =
                store.resolve_ref(&name)?.with_context(|| format!("no image `{name}` in the store"))?;
            let digest = forge_oci::Digest::from_descriptor(&target)?;
            forge_oci::export_archive(&store, &digest, std::slice::from_ref(&name), &file)
                .with_context(|| format!("writing {}", file.display()))?;
            println!("{}", file.display());
        }
        Command::Sbom { name, format, platform, root } => {
            let store = root.store()?;
            let target = Target::load_ref(&store, &name)?
                .with_context(|| format!("no image `{name}` in the store"))?;
            let image = match &platform {
                Some(p) => {
                    let wanted = Platform::parse(p)
                        .with_context(|| format!("`{p}` is not a platform (OS/ARCH[/VARIANT])"))?;
                    target
                        .image_for(&wanted)
                        .with_context(|| format!("`{name}` has no image for {wanted}"))?
                }
                None => &target.images()[0],
            };
            let (media_type, flag) = match format {
                Document::Spdx => (forge_sbom::SPDX_MEDIA_TYPE, "--sbom spdx"),
                Document::Cyclonedx => (forge_sbom::CYCLONEDX_MEDIA_TYPE, "--sbom cyclonedx"),
                Document::Provenance => (forge_sbom::IN_TOTO_MEDIA_TYPE, "provenance (no --no-provenance)"),
            };
            let document = forge_pipeline::stored_document(&store, &image.manifest_digest, media_type)?
                .with_context(|| {
                    format!(
                        "the store has no {media_type} document about `{name}` ({}); build it with {flag}",
                        image.manifest_digest
                    )
                })?;
            // The document's bytes as stored (its digest is the artifact layer's).
            use std::io::Write as _;
            std::io::stdout().lock().write_all(&document).context("writing to stdout")?;
        }
        Command::Gc { root } => {
            let root = root.root.clone().unwrap_or_else(crate::project_root);
            let images = root.join(forge_builder::TARGET_DIR).join("images");
            let collected = forge_oci::gc(&forge_pipeline::store_dir(&root), &[images])?;
            println!(
                "removed {} unreferenced blobs ({} bytes) and {} temporaries ({} bytes)",
                collected.blobs, collected.blob_bytes, collected.temporaries, collected.temporary_bytes
            );
        }
        Command::List { root } => {
            let store = root.store()?;
            for (name, desc) in store.refs()? {
                println!("{name}  {}  {}", desc.digest(), desc.size());
            }
        }
        Command::Validate { name, root } => {
            let store = root.store()?;
            let names = names_of(&store, &name)?;
            if names.is_empty() {
                anyhow::bail!("no image `{name}` in the store; `cargo xtask image list` lists them");
            }
            for name in names {
                let target = Target::load_ref(&store, &name)?
                    .with_context(|| format!("no image `{name}` in the store"))?;
                let reports = match &target {
                    Target::Image(image) => vec![forge_oci::validate::image(&store, &image.manifest_digest)?],
                    Target::Index(index) => forge_oci::validate::index(&store, &index.digest)?,
                };
                for (image, report) in target.images().iter().zip(&reports) {
                    let bytes: u64 = report.layers.iter().map(|l| l.size).sum();
                    let entries: u64 = report.layers.iter().map(|l| l.entries).sum();
                    // The platform is named only for an index's images.
                    let platform = match &target {
                        Target::Index(_) => format!(" ({})", Platform::of_config(&image.config)),
                        Target::Image(_) => String::new(),
                    };
                    println!(
                        "{name}{platform} {}: valid ({} layers, {bytes} bytes, {entries} entries)",
                        image.manifest_digest,
                        report.layers.len()
                    );
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The refs `name` stands for: itself when it has a tag (or digest), else
/// every `name:TAG` of the store, as the README says.
fn names_of(store: &BlobStore, name: &str) -> anyhow::Result<Vec<String>> {
    let last = name.rsplit('/').next().unwrap_or(name);
    if last.contains(':') || name.contains('@') {
        return Ok(vec![name.to_string()]);
    }
    let prefix = format!("{name}:");
    Ok(store.refs()?.into_iter().map(|(n, _)| n).filter(|n| n.starts_with(&prefix)).collect())
}
