//! `cargo xtask bench`: plugin-forge against buildah, Docker, skopeo and
//! the `tar | pigz` floor on generated workloads (the work is forge-bench's
//! `run`; this module turns flags into its `Config` and prints the table
//! and the targets).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use forge_bench::{Config, Report, Row, Scale, Status};
use xshell::{cmd, Shell};

use crate::cli::Format;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Every workload, small, once: under a minute (the test suite runs it).
    #[arg(long)]
    quick: bool,
    /// Runs of our commands and the floors; the median is shown [default: 3, 1 with --quick]
    #[arg(long, value_name = "N")]
    runs: Option<usize>,
    /// Runs of the slow peers (buildah, Docker, skopeo) [default: 1]
    #[arg(long, value_name = "N", default_value_t = 1)]
    peer_runs: usize,
    /// W1's slowest peers (buildah, Docker classic) build only the first N
    /// plugins, their time scaled to all (the row says so) [default: all, 1 with --quick]
    #[arg(long, value_name = "N")]
    peer_plugins: Option<usize>,
    /// The plugin-forge binary to measure [default: this repository's, built with --release]
    #[arg(long, value_name = "FILE")]
    binary: Option<PathBuf>,
    /// Where the generated workloads are kept between runs [default: target/bench/SCALE]
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// Output format: the table (human, markdown for BENCHMARKS.md) or the report as JSON.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
}

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let root = crate::project_root();
    let scale = if args.quick { Scale::Quick } else { Scale::Full };
    let binary = match args.binary {
        Some(binary) => binary,
        None => {
            let sh = Shell::new()?;
            sh.change_dir(&root);
            cmd!(sh, "cargo build --release --quiet --package xtask")
                .run()
                .context("building the release binary")?;
            root.join("target/release/xtask")
        }
    };
    let name = if args.quick { "quick" } else { "full" };
    let config = Config {
        binary: std::path::absolute(&binary).with_context(|| format!("finding {}", binary.display()))?,
        dir: std::path::absolute(args.dir.unwrap_or_else(|| root.join("target/bench").join(name)))?,
        project_root: root,
        scale,
        runs: args.runs.unwrap_or(if args.quick { 1 } else { 3 }),
        peer_runs: args.peer_runs,
        peer_plugins: args.peer_plugins.or(args.quick.then_some(1)),
    };
    std::fs::create_dir_all(&config.dir).with_context(|| format!("creating {}", config.dir.display()))?;
    let report = forge_bench::run(&config, &mut |line| eprintln!("{line}"))?;
    match args.format {
        Format::Json => println!("{}", serde_json::to_string(&report)?),
        Format::Human => print_table(&report, false),
        Format::Markdown => print_table(&report, true),
    }
    let failed = report.rows.iter().any(|r| matches!(r.status, Status::Failed(_)));
    Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

fn seconds(row: &Row) -> [String; 3] {
    match (&row.stats, &row.status) {
        (Some(s), _) => [
            format!("{:.3}", s.median),
            format!("{:.3}–{:.3}", s.min, s.max),
            format!("{:.0}", s.max_rss_kib as f64 / 1024.0),
        ],
        (None, Status::Skipped(_)) => ["skipped".into(), String::new(), String::new()],
        (None, _) => ["failed".into(), String::new(), String::new()],
    }
}

fn print_table(report: &Report, markdown: bool) {
    let header = ["workload", "tool", "median s", "min–max s", "RSS MiB", "ours/peer", "bytes"];
    let mut rows: Vec<[String; 7]> = Vec::new();
    let mut notes = Vec::new();
    for row in &report.rows {
        let [median, range, rss] = seconds(row);
        if let Status::Skipped(why) | Status::Failed(why) = &row.status {
            notes.push(format!("{} {}: {why}", row.workload, row.tool));
        }
        rows.push([
            row.workload.to_owned(),
            row.tool.clone(),
            median,
            range,
            rss,
            row.ratio.map_or_else(String::new, |r| format!("{r:.3}")),
            row.bytes.map_or_else(String::new, crate::output::human_size),
        ]);
    }
    println!("{}\n", report.machine);
    let mut workloads: Vec<(&str, &str)> = Vec::new();
    for row in &report.rows {
        if !workloads.iter().any(|(w, _)| *w == row.workload) {
            workloads.push((row.workload, &row.what));
        }
    }
    for (workload, what) in &workloads {
        println!("- {workload}: {what}");
    }
    println!();
    table(&header, &rows, markdown);
    println!();
    let header = ["workload", "target", "found", "limit", "met"];
    let targets: Vec<[String; 5]> = report
        .targets
        .iter()
        .map(|t| {
            [
                t.workload.to_owned(),
                t.what.clone(),
                t.value.map_or_else(|| "not measured".into(), |v| format!("{v:.3} {}", t.unit)),
                format!("≤ {:.3} {}", t.limit, t.unit),
                match t.met {
                    Some(true) => "yes".into(),
                    Some(false) => "NO".into(),
                    None => "-".into(),
                },
            ]
        })
        .collect();
    table(&header, &targets, markdown);
    if !notes.is_empty() {
        println!();
        for note in notes {
            println!("note: {note}");
        }
    }
}

fn table<const N: usize>(header: &[&str; N], rows: &[[String; N]], markdown: bool) {
    if markdown {
        println!("| {} |", header.join(" | "));
        println!("|{}|", header.iter().map(|_| "---").collect::<Vec<_>>().join("|"));
        for row in rows {
            let cells: Vec<String> = row.iter().map(|cell| cell.replace('|', "\\|")).collect();
            println!("| {} |", cells.join(" | "));
        }
    } else {
        crate::output::table(header, rows);
    }
}
