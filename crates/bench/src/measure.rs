//! Timing whole processes: a shell script run under GNU `time` (for the
//! peak RSS of the largest process it ran), its wall time taken by us, and
//! the statistics of several runs.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use serde::Serialize;

use crate::Error;

/// One run of a script.
#[derive(Debug, Clone)]
pub struct Run {
    /// Wall time.
    pub seconds: f64,
    /// The peak resident set of the largest process of the run, KiB.
    pub max_rss_kib: u64,
    /// What it printed on stdout.
    pub stdout: String,
}

/// Runs `sh -c script` with `env` set, in `dir`, under GNU time.
pub fn run(script: &str, env: &[(&str, String)], dir: &Path) -> Result<Run, Error> {
    let rss = tempfile::NamedTempFile::new()
        .map_err(|e| forge_input::IoError::new("creating", "a temporary file", e))?;
    let mut command = Command::new("/usr/bin/time");
    command.args(["-f", "%M", "-o"]).arg(rss.path()).args(["sh", "-c", script]).current_dir(dir);
    for (key, value) in env {
        command.env(key, value);
    }
    let started = Instant::now();
    let output = command
        .stdin(Stdio::null())
        .output()
        .map_err(|e| forge_input::IoError::new("running", "/usr/bin/time (apt-get install time)", e))?;
    let seconds = started.elapsed().as_secs_f64();
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(8).collect::<Vec<_>>().into_iter().rev().collect();
        return Err(Error::Failed {
            script: script.to_owned(),
            status: output.status.to_string(),
            stderr: tail.join("\n"),
        });
    }
    let text = std::fs::read_to_string(rss.path()).unwrap_or_default();
    let max_rss_kib = text.lines().last().and_then(|l| l.trim().parse().ok()).unwrap_or(0);
    Ok(Run { seconds, max_rss_kib, stdout: String::from_utf8_lossy(&output.stdout).into_owned() })
}

/// What several runs of one command came to.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Stats {
    /// Runs measured.
    pub runs: usize,
    /// Median wall time, seconds.
    pub median: f64,
    /// Fastest run.
    pub min: f64,
    /// Slowest run.
    pub max: f64,
    /// Peak RSS over all runs, KiB.
    pub max_rss_kib: u64,
}

impl Stats {
    /// The statistics of `runs` (at least one).
    pub fn of(runs: &[Run]) -> Option<Stats> {
        let mut seconds: Vec<f64> = runs.iter().map(|r| r.seconds).collect();
        seconds.sort_by(f64::total_cmp);
        let n = seconds.len();
        let median = match n {
            0 => return None,
            _ if n % 2 == 1 => seconds[n / 2],
            _ => (seconds[n / 2 - 1] + seconds[n / 2]) / 2.0,
        };
        Some(Stats {
            runs: n,
            median,
            min: seconds[0],
            max: seconds[n - 1],
            max_rss_kib: runs.iter().map(|r| r.max_rss_kib).max().unwrap_or(0),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: f64) -> Run {
        Run { seconds, max_rss_kib: (seconds * 10.0) as u64, stdout: String::new() }
    }

    #[test]
    fn medians_and_ranges() {
        let odd = Stats::of(&[at(3.0), at(1.0), at(2.0)]).unwrap();
        assert_eq!((odd.median, odd.min, odd.max, odd.max_rss_kib), (2.0, 1.0, 3.0, 30));
        let even = Stats::of(&[at(4.0), at(1.0), at(2.0), at(3.0)]).unwrap();
        assert_eq!(even.median, 2.5);
        assert_eq!(Stats::of(&[]), None);
    }

    #[test]
    fn scripts_are_timed_and_failures_named() {
        let dir = tempfile::tempdir().unwrap();
        let run = run("echo $GREETING; sleep 0.05", &[("GREETING", "hi".into())], dir.path()).unwrap();
        assert_eq!(run.stdout, "hi\n");
        assert!(run.seconds >= 0.05, "{}", run.seconds);
        assert!(run.max_rss_kib > 0);
        let err = super::run("echo oops >&2; exit 3", &[], dir.path()).unwrap_err().to_string();
        assert!(err.contains("exit 3") && err.contains("oops"), "{err}");
    }
}
