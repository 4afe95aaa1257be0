//! Where a run's time goes, by phase, for profiling the per-plugin fixed
//! costs: with `PLUGIN_FORGE_TIMINGS=1` each phase of a build (lint gate,
//! plan, revision, execute, image check, attest, export) adds its wall
//! time and count here, and the command line prints [`summary`] to stderr
//! at the end. Off (the default) a phase costs one check of a flag.
//!
//! Times of phases that run in parallel (the builds of `-j N`) add up, so
//! their sum can exceed the run's wall time.

use std::sync::{Mutex, OnceLock};
use std::time::Instant;

/// The environment variable that turns the timings on.
pub const TIMINGS_VAR: &str = "PLUGIN_FORGE_TIMINGS";

static ON: OnceLock<bool> = OnceLock::new();
static PHASES: Mutex<Vec<(&'static str, u64, u64)>> = Mutex::new(Vec::new());

/// Whether timings are taken (`PLUGIN_FORGE_TIMINGS=1`, read once).
pub fn enabled() -> bool {
    *ON.get_or_init(|| std::env::var(TIMINGS_VAR).is_ok_and(|v| v.trim() == "1"))
}

/// Runs `work` as (part of) the phase `name`.
pub fn phase<R>(name: &'static str, work: impl FnOnce() -> R) -> R {
    if !enabled() {
        return work();
    }
    let started = Instant::now();
    let result = work();
    let nanos = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
    let mut phases = PHASES.lock().unwrap_or_else(|e| e.into_inner());
    match phases.iter_mut().find(|(n, _, _)| *n == name) {
        Some((_, total, count)) => {
            *total += nanos;
            *count += 1;
        }
        None => phases.push((name, nanos, 1)),
    }
    result
}

/// The phases so far, in the order they first ran: one line each (total
/// seconds, count); empty when timings are off.
pub fn summary() -> String {
    if !enabled() {
        return String::new();
    }
    let phases = PHASES.lock().unwrap_or_else(|e| e.into_inner());
    phases
        .iter()
        .map(|(name, nanos, count)| {
            format!("timing: {name:<12} {:>9.3} s {count:>5}×\n", *nanos as f64 / 1e9)
        })
        .collect()
}
