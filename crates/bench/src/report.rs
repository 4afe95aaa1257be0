//! What a benchmark run found: one [`Row`] per workload and tool, and the
//! issue's [`Target`]s judged over them.

use serde::Serialize;

use crate::measure::Stats;
use crate::Scale;

/// Whether a row was measured.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "lowercase", tag = "status", content = "reason")]
pub enum Status {
    /// Every run of it finished.
    Measured,
    /// The tool cannot run on this machine (why).
    Skipped(String),
    /// It ran and failed (the error).
    Failed(String),
}

/// One tool on one workload.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// `W1` … `W8`.
    pub workload: &'static str,
    /// What the workload is.
    pub what: String,
    /// The tool: `plugin-forge` or a peer.
    pub tool: String,
    /// Whether this is our row (the others are compared with it).
    pub ours: bool,
    /// Measured, skipped or failed.
    #[serde(flatten)]
    pub status: Status,
    /// Timings, when measured.
    pub stats: Option<Stats>,
    /// Our median over this row's (peer rows of a workload with ours).
    pub ratio: Option<f64>,
    /// Bytes the row is about (uploaded, written), when it counts some.
    pub bytes: Option<u64>,
}

/// One of the targets.
#[derive(Debug, Clone, Serialize)]
pub struct Target {
    /// The workload it is about.
    pub workload: &'static str,
    /// What is compared, e.g. `ours/buildah`.
    pub what: String,
    /// The value found (`None`: a row it needs was not measured).
    pub value: Option<f64>,
    /// `value` must be at most this.
    pub limit: f64,
    /// The unit of value and limit (`x`, `MiB`, `ms`, `bytes`).
    pub unit: &'static str,
    /// Whether it is met (`None`: not measured).
    pub met: Option<bool>,
}

impl Target {
    /// `value ≤ limit`.
    pub fn at_most(
        workload: &'static str,
        what: impl Into<String>,
        value: Option<f64>,
        limit: f64,
        unit: &'static str,
    ) -> Target {
        Target { workload, what: what.into(), value, limit, unit, met: value.map(|v| v <= limit) }
    }
}

/// Everything one run found.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The scale it ran at.
    pub scale: Scale,
    /// The machine: CPU model, cores, memory, load average at the start.
    pub machine: String,
    /// The rows, in the order they ran.
    pub rows: Vec<Row>,
    /// The targets.
    pub targets: Vec<Target>,
}

impl Report {
    /// The row of `tool` on `workload`.
    pub fn row(&self, workload: &str, tool: &str) -> Option<&Row> {
        self.rows.iter().find(|r| r.workload == workload && r.tool == tool)
    }

    /// The median of `tool` on `workload`, when measured.
    pub fn median(&self, workload: &str, tool: &str) -> Option<f64> {
        self.row(workload, tool)?.stats.as_ref().map(|s| s.median)
    }
}

/// The machine, for the report: CPU model, cores, memory, load.
pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpu
        .lines()
        .find_map(|l| l.strip_prefix("model name").map(|m| m.trim_start_matches([' ', '\t', ':']).to_owned()))
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let memory = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("MemTotal:").map(|m| m.trim().trim_end_matches(" kB").parse::<u64>().unwrap_or(0))
        })
        .map_or_else(String::new, |kib| format!(", {} GiB RAM", kib >> 20));
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load: Vec<&str> = load.split_whitespace().take(3).collect();
    format!("{model}, {cores} cores{memory}, load average {} at the start", load.join(" "))
}

/// Our row's median over each peer's, in place.
pub(crate) fn fill_ratios(rows: &mut [Row]) {
    let ours: Vec<(&'static str, f64)> =
        rows.iter().filter(|r| r.ours).filter_map(|r| Some((r.workload, r.stats.as_ref()?.median))).collect();
    for row in rows.iter_mut().filter(|r| !r.ours) {
        let Some(&(_, mine)) = ours.iter().find(|(w, _)| *w == row.workload) else { continue };
        row.ratio = row.stats.as_ref().map(|s| mine / s.median.max(1e-9));
    }
}
