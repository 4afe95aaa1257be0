//! `cargo xtask fuzz TARGET --seconds N`: one fuzz target of forge-fuzz run
//! for a time (the test suite runs each for a bounded number of inputs).
//! Prints executions, crashes and the slowest input; each crash input is
//! saved under `target/fuzz/crashes/TARGET/` (copy it to
//! `crates/fuzz/regressions/TARGET/` once fixed, where the suite replays
//! it), and the input in flight is kept in `target/fuzz/in-flight-TARGET`
//! so that one which aborts the process is not lost.
//!
//! `--write-seeds DIR` writes each target's seed corpus to `DIR/TARGET/`
//! instead, for the coverage-guided libFuzzer targets of
//! `crates/fuzz/fuzz` (`cargo +nightly fuzz run TARGET`), which start from
//! `crates/fuzz/fuzz/corpus/TARGET/`.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{anyhow, Context as _};
use forge_fuzz::{save_crash, Fuzzer, Target};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The target: dockerfile, manifest, dockerignore, shell, archive, deb or unpack (`all` runs each in turn).
    target: String,
    /// How long to run each target.
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// Seed of the input generator (a run reproduces from it).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Write the seed corpus of each target to DIR/TARGET/ (for `cargo fuzz`) instead of running.
    #[arg(long, value_name = "DIR")]
    write_seeds: Option<std::path::PathBuf>,
}

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let targets = if args.target == "all" {
        Target::ALL.to_vec()
    } else {
        let names: Vec<_> = Target::ALL.iter().map(|t| t.name()).collect();
        vec![Target::from_name(&args.target).ok_or_else(|| {
            anyhow!("unknown fuzz target `{}`; the targets are {}", args.target, names.join(", "))
        })?]
    };
    if let Some(dir) = &args.write_seeds {
        for target in targets {
            let dir = dir.join(target.name());
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            for (i, seed) in forge_fuzz::seeds(target).iter().enumerate() {
                let path = dir.join(format!("seed-{i}"));
                std::fs::write(&path, seed).with_context(|| format!("writing {}", path.display()))?;
            }
            println!("{target}: seeds in {}", dir.display());
        }
        return Ok(ExitCode::SUCCESS);
    }
    let out = crate::project_root().join("target/fuzz");
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let mut crashed = false;
    for target in targets {
        let mut fuzzer = Fuzzer::new(target, args.seed)?;
        fuzzer.save_in_flight(&out.join(format!("in-flight-{target}")));
        let report = fuzzer.run(u64::MAX, Duration::from_secs(args.seconds))?;
        println!(
            "{target}: {} executions in {} s, {} crashes, slowest input {} ms",
            report.executions,
            args.seconds,
            report.crashes.len(),
            report.slowest.as_millis()
        );
        for crash in &report.crashes {
            let path = save_crash(&out.join("crashes").join(target.name()), crash)?;
            println!("  crash: {} (input {})", crash.message, path.display());
            crashed = true;
        }
    }
    Ok(if crashed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}
