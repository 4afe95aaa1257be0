//! `cargo xtask bench`: whole-process timings of our commands side by side
//! with peers doing the same work in the same run, printed as ratios. Speed
//! and memory targets are judged here, never by timed unit tests.
//!
//! - layer: a one-layer image of a generated tree (`image from-rootfs`)
//!   against `tar | gzip | sha256sum` (the same single-stream work) and
//!   `tar | pigz | sha256sum` (the floor with both cores);
//! - build-all: the sample plugins, cold then warm;
//! - run: a warm start of a sample plugin as the agent starts it (image
//!   built, root unpacked), against `docker run --rm` of the same image
//!   with the agent's command when `dockerd` can be started;
//! - lint: 100 generated plugins.
//!
//! Wall time and peak memory (RSS) come from GNU `time`; the median of
//! `--runs` runs is shown.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context as _};
use xshell::{cmd, Shell};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Size of the generated tree for the layer benchmark, in MiB.
    #[arg(long, default_value_t = 128)]
    mib: u64,
    /// Runs of each command; the median is shown.
    #[arg(long, default_value_t = 3)]
    runs: usize,
}

struct Sample {
    seconds: f64,
    max_rss_kib: u64,
}

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let sh = Shell::new()?;
    let root = crate::project_root();
    for tool in ["pigz", "time"] {
        let path = if tool == "time" { "/usr/bin/time" } else { tool };
        if !crate::has_program(&sh, path) {
            bail!("`{tool}` is needed as a peer: apt-get install -y {tool}");
        }
    }
    cmd!(sh, "cargo build --release --quiet --package xtask").run().context("building the release binary")?;
    let bin = root.join("target/release/xtask");
    let scratch = tempfile::tempdir()?;
    let tree = scratch.path().join("tree");
    generate_tree(&tree, args.mib)?;
    let bench_root = scratch.path().join("repo");
    std::fs::create_dir_all(bench_root.join("plugins"))?;

    println!("layer of a {} MiB tree (median of {} runs)", args.mib, args.runs);
    let tree_s = tree.display().to_string();
    let root_s = bench_root.display().to_string();
    let ours = measure(
        &sh,
        args.runs,
        &format!("{} image from-rootfs {tree_s} bench --root {root_s}", bin.display()),
    )?;
    let gzip = measure(&sh, args.runs, &format!("tar -cf - -C {tree_s} . | gzip -6 | sha256sum"))?;
    let pigz = measure(&sh, args.runs, &format!("tar -cf - -C {tree_s} . | pigz -6 | sha256sum"))?;
    report("plugin-forge from-rootfs", &ours, &ours);
    report("tar | gzip | sha256sum", &gzip, &ours);
    report("tar | pigz | sha256sum", &pigz, &ours);

    println!("\nbuild-all of the sample plugins");
    let samples = scratch.path().join("samples");
    copy_samples(&root, &samples)?;
    let samples_s = samples.display().to_string();
    // The real base (the agent's command needs its python): from the lock
    // and the .deb cache.
    let base = measure(&sh, 1, &format!("{} base-image --root {samples_s}", bin.display()))?;
    report("base image from the lock", &base, &base);
    let build_all = format!("{} build-all --root {samples_s} --format json > /dev/null", bin.display());
    let cold = measure(&sh, 1, &format!("rm -rf {samples_s}/target/plugin-forge/images && {build_all}"))?;
    let warm = measure(&sh, args.runs, &build_all)?;
    report("build-all, cold", &cold, &cold);
    report("build-all, warm", &warm, &cold);

    warm_start(&sh, &bin, &samples, args.runs)?;

    println!("\nlint of 100 plugins");
    let many = scratch.path().join("many");
    for i in 0..100 {
        copy_dir(&root.join("plugins/import/csv-bboxes"), &many.join(format!("plugins/g{}/p{i}", i % 10)))?;
        std::fs::write(
            many.join(format!("plugins/g{}/p{i}/VERSION", i % 10)),
            format!("bench/p{i}:1.0.0\n"),
        )?;
    }
    let lint = measure(
        &sh,
        args.runs,
        &format!("{} lint --root {} --format json > /dev/null", bin.display(), many.display()),
    )?;
    report("lint", &lint, &lint);
    Ok(ExitCode::SUCCESS)
}

/// `run csv-bboxes` on its demo data: once cold (the root unpacked), then
/// warm, and the same container under `docker run --rm` when an engine
/// starts.
fn warm_start(sh: &Shell, bin: &Path, samples: &Path, runs: usize) -> anyhow::Result<()> {
    println!("\nrun of csv-bboxes as the agent starts it (median of {runs} runs)");
    let demo = samples.join("plugins/import/csv-bboxes/demo");
    let run = format!(
        "{} run csv-bboxes --root {} --config 'Skip invalid rows' --data {} --format json > /dev/null 2>&1",
        bin.display(),
        samples.display(),
        demo.display()
    );
    let roots = samples.join("target/plugin-forge/roots");
    let cold = measure(sh, 1, &format!("rm -rf {} && {run}", roots.display()))?;
    let warm = measure(sh, runs, &run)?;
    report("run, cold (unpack the root)", &cold, &warm);
    report("run, warm", &warm, &warm);

    let Some(engine) = Engine::start(sh)? else {
        println!("  docker run --rm: skipped, no Docker engine starts on this machine");
        return Ok(());
    };
    let tarball = samples.join("target/plugin-forge/images/supervisely/import-csv-bboxes_1.2.0.tar");
    let host = &engine.host;
    let tarball_s = tarball.display().to_string();
    cmd!(sh, "docker -H {host} load -i {tarball_s}").quiet().ignore_stdout().run()?;
    let task = tempfile::tempdir()?;
    std::fs::write(
        task.path().join("task_config.json"),
        r#"{"res_names": {"project": "street-boxes"}, "preset": "csv", "options": {"dataset_name": "ds0", "skip_invalid": true}}"#,
    )?;
    let docker = format!(
        "docker -H {host} run --rm --network none --entrypoint sh -v {}:/sly_task_data -v {}:/sly_task_data/data:ro \
         -e LOG_LEVEL=DEBUG -e LANG=C.UTF-8 -e PYTHONUNBUFFERED=1 -e PIP_ROOT_USER_ACTION=ignore \
         localhost:5000/supervisely/import-csv-bboxes:1.2.0 -c 'python -u /workdir/src/main.py' > /dev/null",
        task.path().display(),
        demo.display()
    );
    match measure(sh, runs, &docker) {
        Ok(sample) => report("docker run --rm", &sample, &warm),
        Err(e) => println!("  docker run --rm: skipped, the engine cannot start containers here: {e:#}"),
    }
    Ok(())
}

/// A `dockerd` of the benchmark's own, stopped on drop.
struct Engine {
    child: std::process::Child,
    host: String,
    _dir: tempfile::TempDir,
}

impl Engine {
    fn start(sh: &Shell) -> anyhow::Result<Option<Engine>> {
        if !crate::has_program(sh, "dockerd") || !crate::has_program(sh, "docker") {
            return Ok(None);
        }
        let dir = tempfile::tempdir()?;
        let host = format!("unix://{}", dir.path().join("docker.sock").display());
        let child = std::process::Command::new("dockerd")
            .arg("--data-root")
            .arg(dir.path().join("data"))
            .arg("--exec-root")
            .arg(dir.path().join("exec"))
            .arg("--pidfile")
            .arg(dir.path().join("docker.pid"))
            .args(["-H", &host, "--bridge=none", "--iptables=false", "--ip6tables=false"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .context("starting dockerd")?;
        let mut engine = Engine { child, host, _dir: dir };
        for _ in 0..100 {
            let host = &engine.host;
            if cmd!(sh, "docker -H {host} version").quiet().ignore_stdout().ignore_stderr().run().is_ok() {
                return Ok(Some(engine));
            }
            if let Ok(Some(_)) = engine.child.try_wait() {
                return Ok(None);
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        Ok(None)
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        // SIGTERM lets dockerd clean up its mounts; then wait for it.
        let _ = std::process::Command::new("kill").arg(self.child.id().to_string()).status();
        for _ in 0..50 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn report(what: &str, sample: &Sample, reference: &Sample) {
    println!(
        "  {what:<28} {:>8.3} s  {:>6.2}x   {:>8} KiB max RSS",
        sample.seconds,
        sample.seconds / reference.seconds.max(1e-9),
        sample.max_rss_kib
    );
}

/// Runs `script` under GNU time `runs` times; the median wall time and the
/// largest RSS.
fn measure(sh: &Shell, runs: usize, script: &str) -> anyhow::Result<Sample> {
    let mut samples = Vec::new();
    for _ in 0..runs.max(1) {
        let format = "%e %M";
        let out = cmd!(sh, "/usr/bin/time -f {format} sh -c {script}")
            .quiet()
            .ignore_stdout()
            .output()
            .with_context(|| format!("running `{script}`"))?;
        if !out.status.success() {
            bail!("`{script}` failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        let last = stderr.lines().last().unwrap_or_default();
        let mut parts = last.split_whitespace();
        let seconds: f64 = parts.next().and_then(|s| s.parse().ok()).context("reading GNU time's output")?;
        let max_rss_kib: u64 = parts.next().and_then(|s| s.parse().ok()).unwrap_or(0);
        samples.push(Sample { seconds, max_rss_kib });
    }
    samples.sort_by(|a, b| a.seconds.total_cmp(&b.seconds));
    let rss = samples.iter().map(|s| s.max_rss_kib).max().unwrap_or(0);
    let median = &samples[samples.len() / 2];
    Ok(Sample { seconds: median.seconds, max_rss_kib: rss })
}

/// Files of mixed compressibility (text-like and random-like), in several
/// directories, `mib` MiB in all; deterministic.
fn generate_tree(dir: &Path, mib: u64) -> anyhow::Result<()> {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let file_size = 4 << 20;
    let files = (mib << 20) / file_size;
    for i in 0..files.max(1) {
        let sub = dir.join(format!("d{}", i % 8));
        std::fs::create_dir_all(&sub)?;
        let mut data = Vec::with_capacity(file_size as usize);
        while (data.len() as u64) < file_size {
            if next() % 2 == 0 {
                data.extend_from_slice(b"import numpy as np  # model weights follow\n");
            } else {
                data.extend_from_slice(&next().to_le_bytes());
            }
        }
        std::fs::write(sub.join(format!("f{i}.bin")), &data)?;
    }
    Ok(())
}

fn copy_samples(root: &Path, dest: &Path) -> anyhow::Result<()> {
    for part in ["plugins", "supervisely_lib", "base-images"] {
        copy_dir(&root.join(part), &dest.join(part))?;
    }
    Ok(())
}

fn copy_dir(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target: PathBuf = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            if entry.file_name() != "__pycache__" {
                copy_dir(&entry.path(), &target)?;
            }
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}
