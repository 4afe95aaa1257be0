//! The workloads W1–W8 in order, each ours and its peers in alternation
//! (run 1 of every tool, then run 2, ...), so that a machine getting
//! busier or quieter shifts every tool alike.
//!
//! Every workload starts from the same state for every tool: our store
//! holds only the base image (a copy of the seed store), the peers hold
//! only the base image (loaded once), and nobody has the layers.

use std::cell::RefCell;
use std::fs;
use std::path::{Path, PathBuf};

use forge_input::IoResultExt;
use forge_testkit::registry::Registry;

use crate::measure::{self, Run, Stats};
use crate::peers::{self, quote, Buildah, Builder, Docker, Peer};
use crate::report::{self, Report, Row, Status, Target};
use crate::workload::{self, Shape};
use crate::{Config, Error};

/// What makes one timed run: prepares what must be prepared (untimed) and
/// returns the script to time.
type Step<'a> = Box<dyn FnMut(usize) -> Result<String, Error> + 'a>;

/// One tool on one workload.
struct Contender<'a> {
    tool: String,
    ours: bool,
    runs: usize,
    /// What its wall times are multiplied by (a peer that built a part of
    /// the plugins, see [`Config::peer_plugins`]).
    scale: f64,
    env: Vec<(&'static str, String)>,
    step: Peer<Step<'a>>,
}

impl<'a> Contender<'a> {
    fn ours(runs: usize, step: impl FnMut(usize) -> Result<String, Error> + 'a) -> Contender<'a> {
        Contender {
            tool: "plugin-forge".into(),
            ours: true,
            runs,
            scale: 1.0,
            env: Vec::new(),
            step: Ok(Box::new(step)),
        }
    }

    fn peer(
        tool: &str,
        runs: usize,
        step: Peer<impl FnMut(usize) -> Result<String, Error> + 'a>,
    ) -> Contender<'a> {
        Contender {
            tool: tool.into(),
            ours: false,
            runs,
            scale: 1.0,
            env: Vec::new(),
            step: step.map(|s| Box::new(s) as Step<'a>),
        }
    }

    fn with_env(mut self, env: Vec<(&'static str, String)>) -> Contender<'a> {
        self.env = env;
        self
    }

    /// Built `part` of `all` plugins: its times are scaled to all.
    fn part(mut self, part: usize, all: usize) -> Contender<'a> {
        if part < all {
            self.scale = all as f64 / part.max(1) as f64;
            self.tool = format!("{} [{part} of {all} plugins, time ×{:.1}]", self.tool, self.scale);
        }
        self
    }
}

struct Suite<'c> {
    config: &'c Config,
    log: &'c mut dyn FnMut(&str),
    rows: Vec<Row>,
}

impl Suite<'_> {
    /// Runs the contenders in alternation; one row each. Returns each
    /// one's runs (empty when it did not run).
    fn alternate(
        &mut self,
        workload: &'static str,
        what: &str,
        mut contenders: Vec<Contender<'_>>,
    ) -> Vec<Vec<Run>> {
        (self.log)(&format!("{workload}: {what}"));
        let mut runs: Vec<Vec<Run>> = contenders.iter().map(|_| Vec::new()).collect();
        let mut status: Vec<Status> = contenders
            .iter()
            .map(|c| match &c.step {
                Ok(_) => Status::Measured,
                Err(why) => Status::Skipped(why.clone()),
            })
            .collect();
        let rounds = contenders.iter().map(|c| c.runs).max().unwrap_or(0);
        for round in 0..rounds {
            for (i, contender) in contenders.iter_mut().enumerate() {
                let Ok(step) = &mut contender.step else { continue };
                if round >= contender.runs || status[i] != Status::Measured {
                    continue;
                }
                let dir = &self.config.dir;
                match step(round).and_then(|script| measure::run(&script, &contender.env, dir)) {
                    Ok(mut run) => {
                        run.seconds *= contender.scale;
                        (self.log)(&format!("  {:<28} {:>9.3} s", contender.tool, run.seconds));
                        runs[i].push(run);
                    }
                    Err(e) => {
                        (self.log)(&format!("  {}: failed: {e}", contender.tool));
                        status[i] = Status::Failed(e.to_string());
                    }
                }
            }
        }
        for ((contender, runs), status) in contenders.iter().zip(&runs).zip(status) {
            if let Status::Skipped(why) = &status {
                (self.log)(&format!("  {}: skipped: {why}", contender.tool));
            }
            let stats = if status == Status::Measured { Stats::of(runs) } else { None };
            self.rows.push(Row {
                workload,
                what: what.to_owned(),
                tool: contender.tool.clone(),
                ours: contender.ours,
                status,
                stats,
                ratio: None,
                bytes: None,
            });
        }
        runs
    }

    /// Sets the bytes of the last row of `tool` on `workload`.
    fn set_bytes(&mut self, workload: &str, tool: &str, bytes: u64) {
        if let Some(row) = self.rows.iter_mut().rev().find(|r| r.workload == workload && r.tool == tool) {
            row.bytes = Some(bytes);
        }
    }
}

/// Paths of one benchmark directory.
struct Layout {
    seed: PathBuf,
    base_archive: PathBuf,
    monorepo: PathBuf,
    weights: PathBuf,
    pip: PathBuf,
    many: PathBuf,
    state: PathBuf,
}

impl Layout {
    fn new(dir: &Path) -> Layout {
        let generated = dir.join("workloads");
        Layout {
            seed: generated.join("seed"),
            base_archive: generated.join("base.tar"),
            monorepo: generated.join("monorepo"),
            weights: generated.join("weights"),
            pip: generated.join("pip"),
            many: generated.join("many"),
            state: dir.join("state"),
        }
    }
}

const STORE: &str = "target/plugin-forge";

/// What the generator makes besides the shapes: a workload stamped with
/// another generation is made again (the seed store is not).
const GENERATION: &str = "v2 (git repositories)";

/// Generates what is missing (a stamp per workload records its shape).
fn generate(layout: &Layout, config: &Config, log: &mut dyn FnMut(&str)) -> Result<Generated, Error> {
    let sizes = config.scale.sizes();
    let fresh = |dir: &Path, stamp: &str| -> Result<bool, Error> {
        let file = dir.join(".bench-stamp");
        if fs::read_to_string(&file).ok().as_deref() == Some(stamp) {
            return Ok(false);
        }
        if dir.exists() {
            fs::remove_dir_all(dir).io("removing", dir)?;
        }
        fs::create_dir_all(dir).io("creating", dir)?;
        Ok(true)
    };
    let stamp_of = |dir: &Path, stamp: &str| {
        let file = dir.join(".bench-stamp");
        fs::write(&file, stamp).io("writing", file)
    };
    let shape_stamp = |s: Shape| format!("{GENERATION} {s:?}");

    let plugins_of = |root: &Path, shape: Shape| -> Result<Vec<PathBuf>, Error> {
        Ok((0..shape.plugins)
            .map(|i| PathBuf::from(format!("plugins/g{}/p{i:03}", i % 5)))
            .filter(|p| root.join(p).is_dir())
            .collect())
    };
    for (dir, shape) in [(&layout.monorepo, sizes.monorepo), (&layout.many, sizes.many)] {
        let stamp = shape_stamp(shape);
        if fresh(dir, &stamp)? {
            log(&format!("generating {} ({} plugins)", dir.display(), shape.plugins));
            workload::monorepo(dir, shape)?;
            commit(dir)?;
            stamp_of(dir, &stamp)?;
        }
    }
    let stamp = format!("{GENERATION} weights {}", sizes.weights_bytes);
    if fresh(&layout.weights, &stamp)? {
        log(&format!(
            "generating {} ({} MiB of weights)",
            layout.weights.display(),
            sizes.weights_bytes >> 20
        ));
        workload::weights_plugin(&layout.weights, sizes.weights_bytes)?;
        commit(&layout.weights)?;
        stamp_of(&layout.weights, &stamp)?;
    }
    let stamp = format!("{GENERATION} pip {:?}", workload::PIP_PACKAGES);
    if fresh(&layout.pip, &stamp)? {
        workload::pip_plugin(&layout.pip)?;
        commit(&layout.pip)?;
        stamp_of(&layout.pip, &stamp)?;
    }
    // The seed: the Debian Python base in a store of its own, built once
    // from the project's lock (the .deb cache makes it offline), and
    // exported for the peers.
    let base_lock = fs::read(config.project_root.join("base-images/base-py.lock"))
        .io("reading", config.project_root.join("base-images/base-py.lock"))?;
    let stamp = format!(
        "seed {:x}",
        base_lock.iter().fold(0u64, |h, &b| h.wrapping_mul(1_099_511_628_211).wrapping_add(u64::from(b)))
    );
    if fresh(&layout.seed, &stamp)? {
        log("building the base image from base-images/base-py.lock");
        let images = layout.seed.join("base-images");
        fs::create_dir_all(&images).io("creating", &images)?;
        for file in ["base-py.toml", "base-py.lock"] {
            let from = config.project_root.join("base-images").join(file);
            fs::copy(&from, images.join(file)).io("copying", &from)?;
        }
        let bin = quote(&config.binary);
        let seed = quote(&layout.seed);
        let archive = quote(&layout.base_archive);
        measure::run(
            &format!(
                "{bin} base-image base-py --root {seed} > /dev/null && {bin} image export localhost:5000/base-py {archive} --root {seed} > /dev/null"
            ),
            &[],
            &config.dir,
        )?;
        stamp_of(&layout.seed, &stamp)?;
    }
    Ok(Generated {
        plugins: plugins_of(&layout.monorepo, sizes.monorepo)?,
        many: plugins_of(&layout.many, sizes.many)?,
    })
}

/// Makes the generated monorepo at `dir` a git repository of its own with
/// one commit of everything, the same commit on every machine (fixed
/// author, committer and dates): git then answers for the monorepo, not
/// for a checkout around the bench directory (`target/bench` of this
/// project), so the images' revision and `--changed-since` are the
/// monorepo's, and a commit to the project during a run changes nothing.
fn commit(dir: &Path) -> Result<(), Error> {
    peers::program("git", "git").map_err(Error::Missing)?;
    measure::run(
        "git init -q -b main . && git add -A && git -c user.name=plugin-forge-bench \
         -c user.email=bench@plugin-forge.invalid -c commit.gpgsign=false commit -q -m 'generated workload'",
        &[
            ("GIT_AUTHOR_DATE", "2026-01-01T00:00:00Z".into()),
            ("GIT_COMMITTER_DATE", "2026-01-01T00:00:00Z".into()),
            ("GIT_CONFIG_GLOBAL", "/dev/null".into()),
            ("GIT_CONFIG_NOSYSTEM", "1".into()),
        ],
        dir,
    )?;
    Ok(())
}

struct Generated {
    plugins: Vec<PathBuf>,
    many: Vec<PathBuf>,
}

/// A script that empties `root`'s store but for the base image.
fn reset(layout: &Layout, root: &Path) -> Result<(), Error> {
    let target = root.join("target");
    if target.exists() {
        fs::remove_dir_all(&target).io("removing", &target)?;
    }
    let store = root.join(STORE);
    fs::create_dir_all(&store).io("creating", &store)?;
    let from = layout.seed.join(STORE).join("oci");
    measure::run(&format!("cp -a {} {}", quote(&from), quote(store.join("oci"))), &[], root)?;
    Ok(())
}

/// Bytes of the files below `dir` (0 when it does not exist).
fn bytes_below(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            match entry.file_type() {
                Ok(t) if t.is_dir() => stack.push(entry.path()),
                Ok(_) => total += entry.metadata().map_or(0, |m| m.len()),
                Err(_) => {}
            }
        }
    }
    total
}

/// The largest blob of `root`'s store that the seed store lacks (the
/// layer a build made).
fn largest_new_blob(layout: &Layout, root: &Path) -> u64 {
    let seed = layout.seed.join(STORE).join("oci/blobs/sha256");
    let blobs = root.join(STORE).join("oci/blobs/sha256");
    fs::read_dir(blobs).map_or(0, |entries| {
        entries
            .flatten()
            .filter(|e| !seed.join(e.file_name()).exists())
            .filter_map(|e| e.metadata().ok())
            .map(|m| m.len())
            .max()
            .unwrap_or(0)
    })
}

/// Runs every workload; see the [crate docs](crate).
pub fn run(config: &Config, log: &mut dyn FnMut(&str)) -> Result<Report, Error> {
    peers::program("/usr/bin/time", "time").map_err(Error::Missing)?;
    let machine = report::machine();
    let layout = Layout::new(&config.dir);
    let generated = generate(&layout, config, log)?;
    if layout.state.exists() {
        fs::remove_dir_all(&layout.state).io("removing", &layout.state)?;
    }
    fs::create_dir_all(&layout.state).io("creating", &layout.state)?;

    log("starting the peers");
    let buildah = Buildah::start(&layout.state.join("buildah"), &layout.base_archive);
    let docker = Docker::start(&layout.base_archive);
    let registry: Peer<()> = peers::program("docker-registry", "docker-registry");
    let skopeo = registry.clone().and(peers::program("skopeo", "skopeo"));
    let pigz = peers::program("pigz", "pigz");

    let mut suite = Suite { config, log, rows: Vec::new() };
    let bin = quote(&config.binary);
    let (runs, peer_runs) = (config.runs.max(1), config.peer_runs.max(1));
    let mono = &layout.monorepo;
    let plugins = &generated.plugins;
    let n = plugins.len();
    let out = |tool: &str| -> Result<PathBuf, Error> {
        let dir = layout.state.join("out").join(tool);
        fs::create_dir_all(&dir).io("creating", &dir)?;
        Ok(dir)
    };

    // W1: cold build-all.
    let sdk_and = |p: &PathBuf| vec![PathBuf::from("supervisely_lib"), p.clone()];
    let groups: Vec<Vec<PathBuf>> = plugins.iter().map(sdk_and).collect();
    let build_all = format!("{bin} build-all --root {} --format json > /dev/null", quote(mono));
    let (buildah_out, classic_out, buildkit_out) = (out("buildah")?, out("classic")?, out("buildkit")?);
    let w1 = format!("cold build-all of {n} plugins, tarballs written");
    // The slow peers may build only the first plugins (their time scaled).
    let k = config.peer_plugins.unwrap_or(n).clamp(1, n.max(1));
    let some = &plugins[..k.min(n)];
    suite.alternate(
        "W1",
        &w1,
        cold_with_floors(&layout, mono, &build_all, &groups, &pigz, [runs, runs])
            .into_iter()
            .chain([
                Contender::peer(
                    "buildah bud + push",
                    peer_runs,
                    buildah
                        .as_ref()
                        .map(|b| {
                            |_| {
                                measure::run(&b.forget(some), &[], mono)?;
                                Ok(b.build_all(mono, some, &buildah_out))
                            }
                        })
                        .map_err(Clone::clone),
                )
                .part(k, n),
                docker_contender(
                    "docker build + save (classic)",
                    peer_runs,
                    &docker,
                    Builder::Classic,
                    false,
                    mono,
                    some,
                    &classic_out,
                    None,
                )
                .part(k, n),
                docker_contender(
                    "docker build + save (BuildKit)",
                    peer_runs,
                    &docker,
                    Builder::BuildKit,
                    false,
                    mono,
                    some,
                    &buildkit_out,
                    None,
                )
                .part(k, n),
            ])
            .collect(),
    );
    let w1_bytes = bytes_below(&mono.join(STORE).join("images"));
    suite.set_bytes("W1", "plugin-forge", w1_bytes);

    // W2: nothing changed; W3: one source file changed.
    let edits = RefCell::new(0usize);
    let edit = || -> Result<(), Error> {
        let mut k = edits.borrow_mut();
        *k += 1;
        workload::change(mono, *k)?;
        Ok(())
    };
    let edit: &dyn Fn() -> Result<(), Error> = &edit;
    for (workload, what, edit) in [
        ("W2", format!("warm build-all of {n} plugins, nothing changed"), None),
        ("W3", format!("build-all of {n} plugins, one source file changed"), Some(edit)),
    ] {
        suite.alternate(
            workload,
            &what,
            vec![
                Contender::ours(runs, |_| {
                    if let Some(edit) = edit {
                        edit()?;
                    }
                    Ok(build_all.clone())
                }),
                // The plugins W1 built (their cache is warm); W3's change
                // is in the first of them, so its scaled time counts the
                // change n/k times: an upper bound for BuildKit.
                docker_contender(
                    "docker build + save (BuildKit, cached)",
                    peer_runs,
                    &docker,
                    Builder::BuildKit,
                    true,
                    mono,
                    some,
                    &buildkit_out,
                    edit,
                )
                .part(k, n),
            ],
        );
    }

    // W6: publish to an empty registry, then again to a full one; skopeo
    // copies our W1 tarballs (the same images).
    let registries: RefCell<Vec<Registry>> = RefCell::default();
    let start_registry = || -> Result<String, Error> {
        let registry =
            Registry::start(None).ok_or_else(|| Error::Missing("docker-registry does not start".into()))?;
        let host = format!("127.0.0.1:{}", registry.port);
        registries.borrow_mut().push(registry);
        Ok(host)
    };
    let publish =
        |host: &str| format!("{bin} publish --root {} --registry {host} --format json", quote(mono));
    let copies = out("ours")?;
    let mut tarballs = Vec::new();
    for p in plugins {
        let name = p.file_name().unwrap_or_default().to_string_lossy().into_owned();
        let from = mono.join(STORE).join("images").join(format!("bench/{name}_{}.tar", workload::TAG));
        let to = copies.join(format!("{name}.tar"));
        if from.exists() {
            fs::copy(&from, &to).io("copying", &from)?;
        }
        tarballs.push(to);
    }
    let skopeo = skopeo.map(|()| &tarballs);
    suite.alternate(
        "W6 cold",
        &format!("publish of {n} images to an empty docker-registry"),
        vec![
            Contender::ours(runs, |_| Ok(publish(&start_registry()?))),
            Contender::peer(
                "skopeo copy",
                peer_runs,
                skopeo.clone().map(|t| |_| Ok(peers::skopeo_publish(t, &start_registry()?))),
            ),
        ],
    );
    let noop = suite.alternate(
        "W6 no-op",
        &format!("publish of the same {n} images again"),
        vec![
            Contender::ours(runs, |_| {
                let host = start_registry()?;
                measure::run(&publish(&host), &[], mono)?;
                Ok(publish(&host))
            }),
            Contender::peer(
                "skopeo copy",
                peer_runs,
                skopeo.clone().map(|t| {
                    |_| {
                        let host = start_registry()?;
                        measure::run(&peers::skopeo_publish(t, &host), &[], mono)?;
                        Ok(peers::skopeo_publish(t, &host))
                    }
                }),
            ),
        ],
    );
    if let Some(run) = noop[0].iter().max_by_key(|r| uploaded(&r.stdout)) {
        suite.set_bytes("W6 no-op", "plugin-forge", uploaded(&run.stdout));
    }
    registries.borrow_mut().clear();

    // W4: the big layer, cold.
    let big = &layout.weights;
    let weights = [vec![PathBuf::from("plugins/big/weights")]];
    let build_big = format!("{bin} build weights --root {} --format json > /dev/null", quote(big));
    suite.alternate(
        "W4",
        &format!(
            "cold build of one plugin with {} MiB of weights in one layer",
            config.scale.sizes().weights_bytes >> 20
        ),
        cold_with_floors(&layout, big, &build_big, &weights, &pigz, [runs, peer_runs]).into(),
    );
    suite.set_bytes("W4", "plugin-forge", largest_new_blob(&layout, big));
    if pigz.is_ok() {
        let size = measure::run(
            &format!("cd {} && tar -cf - plugins/big/weights | pigz -p2 -6 | wc -c", quote(big)),
            &[],
            big,
        )?;
        suite.set_bytes("W4", "tar | pigz -p2 | sha256sum", size.stdout.trim().parse().unwrap_or(0));
    }

    // W7: RUN pip install, cold and warm. The first build resolves the
    // lock and fetches the wheels (untimed; kept for the next runs).
    let pip = &layout.pip;
    let build_pip = format!("{bin} build installer --root {} --format json > /dev/null", quote(pip));
    reset(&layout, pip)?;
    let warmup = measure::run(&build_pip, &[], pip).map(drop).map_err(|e| e.to_string());
    let why_no_peers =
        "the peers would need pip in the base image (ours installs without it) and network in RUN";
    for (workload, cold) in [("W7 cold", true), ("W7 warm", false)] {
        let what = format!(
            "build of a plugin with `RUN pip install` of five packages, {}",
            if cold { "cold" } else { "warm" }
        );
        let warmup = &warmup;
        suite.alternate(
            workload,
            &what,
            vec![
                Contender::ours(runs, |_| {
                    warmup.clone().map_err(|e| Error::Missing(format!("resolving the RUN failed: {e}")))?;
                    if cold {
                        reset(&layout, pip)?;
                    }
                    Ok(build_pip.clone())
                }),
                Contender::peer(
                    "docker build + save",
                    1,
                    Err::<fn(usize) -> Result<String, Error>, _>(why_no_peers.into()),
                ),
            ],
        );
    }

    // W8: many plugins, cold and warm, into one archive (every blob once).
    let many = &layout.many;
    let m = generated.many.len();
    let archive = many.join(STORE).join("plugins.tar");
    let build_many = format!(
        "{bin} build-all --root {} --archive {} --format json > /dev/null",
        quote(many),
        quote(&archive)
    );
    for (workload, cold) in [("W8 cold", true), ("W8 warm", false)] {
        suite.alternate(
            workload,
            &format!("{} build-all --archive of {m} plugins", if cold { "cold" } else { "warm" }),
            vec![Contender::ours(runs, |_| {
                if cold {
                    reset(&layout, many)?;
                }
                Ok(build_many.clone())
            })],
        );
        suite.set_bytes(workload, "plugin-forge", fs::metadata(&archive).map_or(0, |m| m.len()));
    }
    let store_bytes = bytes_below(&many.join(STORE).join("oci/blobs"));

    let Suite { mut rows, .. } = suite;
    report::fill_ratios(&mut rows);
    let mut report = Report { scale: config.scale, machine, rows, targets: Vec::new() };
    report.targets = targets(&report, n, m, store_bytes);
    Ok(report)
}

/// Our cold `script` over `root` (its store reset first), and the
/// `tar | pigz -p2` and `tar | gzip -6` floors over `groups` of paths of
/// `root` (`runs` of each floor).
fn cold_with_floors<'a>(
    layout: &'a Layout,
    root: &'a Path,
    script: &'a str,
    groups: &'a [Vec<PathBuf>],
    pigz: &Peer<()>,
    runs: [usize; 2],
) -> [Contender<'a>; 3] {
    let floor = move |compressor: &'static str| {
        move |_| Ok(format!("cd {} && {}", quote(root), peers::floor(compressor, groups)))
    };
    [
        Contender::ours(runs[0], move |_| {
            reset(layout, root)?;
            Ok(script.to_owned())
        }),
        Contender::peer("tar | pigz -p2 | sha256sum", runs[0], pigz.clone().map(|()| floor("pigz -p2 -6"))),
        Contender::peer("tar | gzip -6 | sha256sum", runs[1], Ok(floor("gzip -6"))),
    ]
}

/// A Docker contender (skipped without an engine); `edit` runs before
/// each run (W3).
#[allow(clippy::too_many_arguments)]
fn docker_contender<'a>(
    tool: &str,
    runs: usize,
    docker: &'a Peer<Docker>,
    builder: Builder,
    cached: bool,
    root: &'a Path,
    plugins: &'a [PathBuf],
    out: &'a Path,
    edit: Option<&'a dyn Fn() -> Result<(), Error>>,
) -> Contender<'a> {
    let env = docker.as_ref().map(Docker::env).unwrap_or_default();
    let usable = docker.as_ref().map_err(Clone::clone).and_then(|d| match builder {
        Builder::BuildKit => d.buildkit().map(|()| d),
        Builder::Classic => Ok(d),
    });
    let step = usable.map(|d| {
        move |_| {
            if let Some(edit) = edit {
                edit()?;
            }
            if !cached {
                measure::run(&d.forget(plugins), &d.env(), root)?;
            }
            Ok(d.build_all(builder, cached, root, plugins, out))
        }
    });
    Contender::peer(tool, runs, step).with_env(env)
}

/// The bytes uploaded that `publish --format json` reports, summed.
fn uploaded(stdout: &str) -> u64 {
    stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v.get("bytes_uploaded")?.as_u64())
        .sum()
}

/// The targets over the report.
fn targets(report: &Report, plugins: usize, many: usize, store_bytes: u64) -> Vec<Target> {
    let ours = |w: &str| report.median(w, "plugin-forge");
    // A peer's row may carry the part of the plugins it built.
    let peer_median = |w: &str, peer: &str| {
        report
            .rows
            .iter()
            .find(|r| r.workload == w && r.tool.starts_with(peer))
            .and_then(|r| Some(r.stats.as_ref()?.median))
    };
    let ratio = |w: &str, peer: &str| Some(ours(w)? / peer_median(w, peer)?);
    let row_bytes = |w: &str, tool: &str| report.row(w, tool).and_then(|r| r.bytes);
    let rss_mib =
        |w: &str| report.row(w, "plugin-forge")?.stats.as_ref().map(|s| s.max_rss_kib as f64 / 1024.0);
    let per_plugin_floor = "tar | pigz -p2 | sha256sum";
    let mut targets = vec![
        Target::at_most("W1", "ours/buildah", ratio("W1", "buildah bud + push"), 1.0 / 30.0, "x"),
        Target::at_most(
            "W1",
            "ours/Docker classic",
            ratio("W1", "docker build + save (classic)"),
            1.0 / 30.0,
            "x",
        ),
        Target::at_most(
            "W1",
            "ours/BuildKit",
            ratio("W1", "docker build + save (BuildKit)"),
            1.0 / 10.0,
            "x",
        ),
        Target::at_most(
            "W1",
            format!("ours/sum of {plugins} per-plugin pigz floors"),
            ratio("W1", per_plugin_floor),
            1.0,
            "x",
        ),
        Target::at_most("W2", "W2/W1", ours("W2").and_then(|w2| Some(w2 / ours("W1")?)), 0.05, "x"),
        Target::at_most("W3", "W3/W1", ours("W3").and_then(|w3| Some(w3 / ours("W1")?)), 0.10, "x"),
        Target::at_most("W4", "ours/tar | pigz -p2 | sha256sum", ratio("W4", per_plugin_floor), 1.0, "x"),
        Target::at_most(
            "W4",
            "our layer/pigz's output",
            row_bytes("W4", "plugin-forge")
                .zip(row_bytes("W4", per_plugin_floor))
                .map(|(a, b)| a as f64 / b.max(1) as f64),
            1.0,
            "x",
        ),
        Target::at_most("W5", "peak RSS of W4", rss_mib("W4"), 100.0, "MiB"),
        Target::at_most("W5", "peak RSS of W1", rss_mib("W1"), 100.0, "MiB"),
        Target::at_most(
            "W6",
            "bytes uploaded by the no-op publish",
            row_bytes("W6 no-op", "plugin-forge").map(|b| b as f64),
            0.0,
            "bytes",
        ),
        Target::at_most(
            "W6",
            "no-op/cold publish",
            ours("W6 no-op").and_then(|a| Some(a / ours("W6 cold")?)),
            0.10,
            "x",
        ),
        Target::at_most(
            "W8",
            "cold per plugin",
            ours("W8 cold").map(|s| s * 1000.0 / many.max(1) as f64),
            25.0,
            "ms",
        ),
    ];
    targets.push(Target::at_most(
        "W8",
        "bytes written/store size",
        row_bytes("W8 cold", "plugin-forge").map(|b| b as f64 / store_bytes.max(1) as f64),
        1.10,
        "x",
    ));
    targets
}
