//! Each fuzz target, bounded: a fixed number of generated inputs from a
//! fixed seed (so a failure reproduces), and every saved crash input under
//! `regressions/TARGET/` replayed. `cargo xtask fuzz TARGET --seconds N`
//! runs the same targets for longer.

mod hadolint;

use std::path::Path;
use std::time::Duration;

use forge_fuzz::{replay, Fuzzer, Target};

fn fuzz(target: Target, executions: u64) {
    let mut fuzzer = Fuzzer::new(target, 0x5eed).unwrap();
    let report = fuzzer.run(executions, Duration::from_secs(120)).unwrap();
    assert!(report.executions > 0, "{target}: nothing ran");
    let crashes: Vec<_> = report.crashes.iter().map(|c| &c.message).collect();
    assert!(crashes.is_empty(), "{target}: crashes after {} executions: {crashes:#?}", report.executions);
}

/// How many generated inputs a target gets here: fewer for the targets
/// that build archives per input.
fn executions(target: Target) -> u64 {
    match target {
        Target::Dockerfile | Target::Manifest | Target::Dockerignore | Target::Shell => 3000,
        Target::Deb => 1000,
        Target::Archive | Target::Unpack => 500,
    }
}

/// Every target (so that a new one is fuzzed here without being listed),
/// each on its own thread, as separate tests would run.
#[test]
fn every_target_survives_its_generated_inputs() {
    std::thread::scope(|scope| {
        for target in Target::ALL {
            scope.spawn(move || fuzz(target, executions(target)));
        }
    });
}

#[test]
fn seeds_are_accepted_where_they_should_be() {
    // The generator starts from these; a seed the reader rejects outright
    // would make every mutation of it test only the first check.
    let seeds = forge_fuzz::seeds(Target::Deb);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.deb");
    std::fs::write(&path, &seeds[0]).unwrap();
    let deb = forge_debian::deb::DebFile::open(&path).unwrap();
    assert!(deb.control().is_ok());
}

#[test]
fn saved_crashes_stay_fixed() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("regressions");
    for target in Target::ALL {
        let Ok(entries) = std::fs::read_dir(dir.join(target.name())) else { continue };
        for entry in entries {
            let path = entry.unwrap().path();
            let input = std::fs::read(&path).unwrap();
            let outcome = replay(target, &input).unwrap();
            assert!(outcome.is_ok(), "{}: {:?}", path.display(), outcome);
        }
    }
}
