//! The peers plugin-forge is measured against, each found or started once
//! per benchmark and handed the same base image: buildah (vfs storage of
//! its own), a Docker engine (testkit's `Dockerd`, classic builder and
//! BuildKit), `docker-registry` with `skopeo`, and the `tar | pigz` and
//! `tar | gzip` floors. A peer that cannot run here is `None` with the
//! reason, which the report shows.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use forge_testkit::Dockerd;

use crate::measure;
use crate::workload::{BASE_REF, TAG};

/// Whether `program` is on the `PATH`.
pub fn has_program(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// `text` quoted for `sh`.
pub fn quote(text: impl AsRef<std::ffi::OsStr>) -> String {
    format!("'{}'", text.as_ref().to_string_lossy().replace('\'', r"'\''"))
}

/// Either a peer or why it cannot run.
pub type Peer<T> = Result<T, String>;

/// buildah with storage of its own (vfs, chroot isolation: no daemon, no
/// overlay mounts), the base image pulled into it.
#[derive(Debug)]
pub struct Buildah {
    flags: String,
}

impl Buildah {
    /// Sets up storage under `dir` and pulls `base` (an oci-archive) as
    /// [`BASE_REF`].
    pub fn start(dir: &Path, base: &Path) -> Peer<Buildah> {
        if !has_program("buildah") {
            return Err("buildah is not installed (apt-get install buildah)".into());
        }
        let flags = format!(
            "--root {} --runroot {} --storage-driver vfs",
            quote(dir.join("root")),
            quote(dir.join("run"))
        );
        std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        let buildah = Buildah { flags };
        let pull = format!(
            "id=$(buildah {f} pull -q oci-archive:{base}) && buildah {f} tag \"$id\" {BASE_REF}",
            f = buildah.flags,
            base = quote(base)
        );
        measure::run(&pull, &[], dir).map_err(|e| format!("buildah cannot pull the base image: {e}"))?;
        Ok(buildah)
    }

    /// `buildah bud` of every plugin, each then pushed to an oci-archive
    /// in `out`.
    pub fn build_all(&self, root: &Path, plugins: &[PathBuf], out: &Path) -> String {
        let f = &self.flags;
        per_plugin(root, plugins, out, |build, name, out| {
            format!(
                "buildah {f} bud --isolation chroot --pull-never -q {build} > /dev/null \
                 && buildah {f} push -q {name} oci-archive:{out}"
            )
        })
    }

    /// Removes the images [`Buildah::build_all`] made (for a cold run).
    pub fn forget(&self, plugins: &[PathBuf]) -> String {
        let names: Vec<String> = plugins.iter().map(|p| format!("localhost/{}", image_name(p))).collect();
        format!("buildah {} rmi -f {} > /dev/null 2>&1; true", self.flags, names.join(" "))
    }
}

/// The image name of a generated plugin (its `VERSION`).
pub fn image_name(plugin: &Path) -> String {
    format!("bench/{}:{TAG}", plugin.file_name().unwrap_or_default().to_string_lossy())
}

fn file_stem(plugin: &Path) -> String {
    plugin.file_name().unwrap_or_default().to_string_lossy().into_owned()
}

/// One command per plugin, joined by `&&`: `command(build, name, out)`
/// gets the arguments of a `docker build`-style build of the plugin
/// (`-f DOCKERFILE --build-arg MODULE_PATH=... -t NAME ROOT`), its image
/// name and the archive to write in `out`.
fn per_plugin(
    root: &Path,
    plugins: &[PathBuf],
    out: &Path,
    command: impl Fn(&str, &str, &str) -> String,
) -> String {
    plugins
        .iter()
        .map(|p| {
            let name = image_name(p);
            let build = format!(
                "-f {} --build-arg MODULE_PATH={} -t {name} {}",
                quote(root.join(p).join("Dockerfile")),
                quote(p),
                quote(root)
            );
            command(&build, &name, &quote(out.join(format!("{}.tar", file_stem(p)))))
        })
        .collect::<Vec<_>>()
        .join(" && ")
}

/// A Docker engine (the tests' `Dockerd`), the base loaded.
#[derive(Debug)]
pub struct Docker {
    engine: Dockerd,
    /// The CLI that drives BuildKit, or why there is none.
    buildkit: Peer<String>,
}

/// Docker's two builders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Builder {
    /// The classic builder (`DOCKER_BUILDKIT=0`).
    Classic,
    /// BuildKit (`DOCKER_BUILDKIT=1`).
    BuildKit,
}

impl Docker {
    /// Starts an engine and loads `base` as [`BASE_REF`].
    pub fn start(base: &Path) -> Peer<Docker> {
        if !has_program("dockerd") || !has_program("docker") {
            return Err("docker.io is not installed".into());
        }
        let engine = Dockerd::start().ok_or("a Docker engine cannot start on this machine")?;
        let base = base.to_str().ok_or("the base archive's path is not UTF-8")?;
        let loaded = engine.docker(&["load", "-q", "-i", base]).map_err(|e| format!("docker load: {e}"))?;
        let name = loaded.trim().rsplit("Loaded image: ").next().unwrap_or_default().trim().to_owned();
        engine.docker(&["tag", &name, BASE_REF]).map_err(|e| format!("docker tag {name}: {e}"))?;
        Ok(Docker { engine, buildkit: buildkit_cli() })
    }

    /// Why BuildKit cannot run, if it cannot.
    pub fn buildkit(&self) -> Peer<()> {
        self.buildkit.clone().map(drop)
    }

    /// `DOCKER_HOST` for scripts.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![("DOCKER_HOST", self.engine.host())]
    }

    /// `docker build` of every plugin (`cached`: with the build cache)
    /// and `docker save` of each into `out`.
    pub fn build_all(
        &self,
        builder: Builder,
        cached: bool,
        root: &Path,
        plugins: &[PathBuf],
        out: &Path,
    ) -> String {
        let (buildkit, cli) = match builder {
            Builder::Classic => (0, "docker"),
            Builder::BuildKit => (1, self.buildkit.as_deref().unwrap_or("docker")),
        };
        let no_cache = if cached { "" } else { "--no-cache " };
        per_plugin(root, plugins, out, |build, name, out| {
            format!(
                "DOCKER_BUILDKIT={buildkit} {cli} build {no_cache}-q {build} > /dev/null && docker save -o {out} {name}"
            )
        })
    }

    /// Removes the built images and the build cache (for a cold run).
    pub fn forget(&self, plugins: &[PathBuf]) -> String {
        let names: Vec<String> = plugins.iter().map(|p| image_name(p)).collect();
        format!(
            "docker rmi -f {} > /dev/null 2>&1; docker builder prune -af > /dev/null 2>&1; true",
            names.join(" ")
        )
    }
}

/// The Docker CLI that runs BuildKit builds: `docker` when it has buildx
/// (CLIs from 23 on need it), else Debian's `docker.io` 20.10 CLI, which
/// has BuildKit built in.
fn buildkit_cli() -> Peer<String> {
    let works = |cli: &str, args: &[&str]| {
        Command::new(cli)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if works("docker", &["buildx", "version"]) {
        return Ok("docker".into());
    }
    let debian = "/usr/bin/docker";
    let version = Command::new(debian)
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned());
    match version {
        Ok(v) if v.contains(" 20.10.") => Ok(debian.into()),
        _ => Err("the docker CLI has no buildx (needed for BuildKit from Docker 23 on)".into()),
    }
}

/// `skopeo copy` of each tarball to `registry` (plain HTTP). The source
/// names the image by its ref name (the tag): our tarballs' `index.json`
/// also lists the image's SBOM and provenance, and skopeo refuses an
/// archive of several manifests without one.
pub fn skopeo_publish(tarballs: &[PathBuf], registry: &str) -> String {
    tarballs
        .iter()
        .map(|t| {
            let name = t.file_stem().unwrap_or_default().to_string_lossy();
            format!(
                "skopeo copy -q --dest-tls-verify=false oci-archive:{}:{TAG} docker://{registry}/bench/{name}:{TAG}",
                quote(t)
            )
        })
        .collect::<Vec<_>>()
        .join(" && ")
}

/// A floor: `tar` of `paths` (relative to `root`) piped through
/// `compressor` and `sha256sum`, once per group of paths.
pub fn floor(compressor: &str, groups: &[Vec<PathBuf>]) -> String {
    groups
        .iter()
        .map(|paths| {
            let paths: Vec<String> = paths.iter().map(quote).collect();
            format!("tar -cf - {} | {compressor} | sha256sum > /dev/null", paths.join(" "))
        })
        .collect::<Vec<_>>()
        .join(" && ")
}

/// The peers' requirements that are plain programs, with why they are
/// missing.
pub fn program(name: &str, package: &str) -> Peer<()> {
    if has_program(name) {
        Ok(())
    } else {
        Err(format!("{name} is not installed (apt-get install {package})"))
    }
}
