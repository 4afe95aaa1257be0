//! Fuzz targets over every parser that reads hostile input, and a
//! deterministic mutating generator that runs them on a stable toolchain.
//!
//! Each [`Target`] takes arbitrary bytes and drives one reader the way a
//! build does: the Dockerfile lexer, typed parser, expander and the build's
//! own planner; the plugin manifests and the Debian control formats; the
//! `.dockerignore` matcher; the shell reader and installer recognition of
//! `RUN`; tar archives read into a layer tree and base
//! images imported from archives; `.deb` (ar) files; and the layer unpacker
//! of the sandbox. A target *fails* when the code under it panics (an
//! error returned for bad input is the expected outcome); allocation
//! failures and stack overflows abort the process, which is why the runner
//! ([`Fuzzer`]) can save the input in flight before each execution.
//!
//! Inputs come from [`Fuzzer::next_input`]: a seed of the target's corpus
//! ([`seeds`]) with 1 to 8 stacked mutations (bit flips, interesting bytes,
//! deletions, duplications, splices with other seeds, dictionary tokens),
//! drawn from a fixed-seed generator so a run is reproducible from its seed
//! and execution number.
//!
//! [`Harness`] is the one entry point to a target: the generator runs it,
//! and so do the coverage-guided libFuzzer targets of `fuzz/` (`cargo
//! fuzz`, nightly only, outside the workspace). Tar inputs have their
//! header checksums recomputed there before the reader sees them, so that
//! mutations reach past the checksum test.
//!
//! The test suite runs each target for a bounded number of executions
//! (`tests/it`); `cargo xtask fuzz TARGET --seconds N` runs one for a time.

use std::fmt;
use std::io::Write;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use forge_testkit::rng::SplitMix64;

mod seeds;
mod targets;

pub use seeds::seeds;

/// One fuzz target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Target {
    /// Dockerfile lexer, typed parser, word splitter and expander, and the
    /// build's planner over a small context (no blobs written).
    Dockerfile,
    /// `plugin_info.json`, `config.json`, `VERSION`, the JSON span parser,
    /// and the Debian formats (deb822, `Release`, `Packages`, relations,
    /// versions, lock and description files).
    Manifest,
    /// `.dockerignore`: patterns, then (after a blank line) paths to match.
    Dockerignore,
    /// The text of a shell-form `RUN`: the `sh` reader, and the recognition
    /// of installer commands in it (also as a `RUN` of a Dockerfile).
    Shell,
    /// A tar archive read into a layer tree, and the same bytes imported
    /// as an oci-archive/docker-archive base image.
    Archive,
    /// A `.deb`: ar headers, control member and data member.
    Deb,
    /// A layer blob unpacked by the sandbox into a root filesystem.
    Unpack,
}

impl Target {
    /// Every target, in the order runs list them.
    pub const ALL: [Target; 7] = [
        Target::Dockerfile,
        Target::Manifest,
        Target::Dockerignore,
        Target::Shell,
        Target::Archive,
        Target::Deb,
        Target::Unpack,
    ];

    /// The name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Target::Dockerfile => "dockerfile",
            Target::Manifest => "manifest",
            Target::Dockerignore => "dockerignore",
            Target::Shell => "shell",
            Target::Archive => "archive",
            Target::Deb => "deb",
            Target::Unpack => "unpack",
        }
    }

    /// The target called `name`.
    pub fn from_name(name: &str) -> Option<Target> {
        Target::ALL.into_iter().find(|t| t.name() == name)
    }

    /// Whether inputs are tar archives (their header checksums are fixed
    /// after mutation).
    fn is_tar(self) -> bool {
        matches!(self, Target::Archive | Target::Unpack)
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Errors of the fuzz runner itself (never of a target: those are crashes).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The scratch directories of a target could not be made.
    #[error("cannot prepare the scratch directory of the fuzz target")]
    Scratch(#[source] std::io::Error),
    /// The input in flight or a crash could not be saved.
    #[error("cannot write {path}")]
    Save {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// A panic of a target on one input.
#[derive(Debug, Clone)]
pub struct Crash {
    /// The input.
    pub input: Vec<u8>,
    /// The panic message with its location.
    pub message: String,
}

/// What a run did.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Inputs executed.
    pub executions: u64,
    /// Distinct crashes (by message), the first input of each.
    pub crashes: Vec<Crash>,
    /// The slowest execution.
    pub slowest: Duration,
}

/// One target with the scratch directories it works in, run on inputs a
/// driver brings: the generator below, or libFuzzer (`fuzz/`). A panic of
/// the code under test propagates to the caller.
#[derive(Debug)]
pub struct Harness {
    target: Target,
    scratch: targets::Scratch,
}

impl Harness {
    /// A harness of `target`, with fresh scratch directories (under the
    /// system's temporary directory, removed when it is dropped).
    pub fn new(target: Target) -> Result<Harness, Error> {
        Ok(Harness { target, scratch: targets::Scratch::new().map_err(Error::Scratch)? })
    }

    /// The target.
    pub fn target(&self) -> Target {
        self.target
    }

    /// Runs the target on `input`. Tar inputs have their header checksums
    /// recomputed first.
    pub fn run(&mut self, input: &[u8]) {
        if self.target.is_tar() {
            let mut fixed = input.to_vec();
            fix_tar_checksums(&mut fixed);
            targets::run(self.target, &mut self.scratch, &fixed);
        } else {
            targets::run(self.target, &mut self.scratch, input);
        }
    }
}

/// Runs one target on generated inputs.
#[derive(Debug)]
pub struct Fuzzer {
    harness: Harness,
    rng: SplitMix64,
    corpus: Vec<Vec<u8>>,
    in_flight: Option<PathBuf>,
}

/// Bytes a mutation may insert: the tokens the parsers branch on.
const DICTIONARY: &[&[u8]] = &[
    b"$",
    b"${",
    b"}",
    b":-",
    b":+",
    b":?",
    b"\\",
    b"`",
    b"\"",
    b"'",
    b"\n",
    b"\r\n",
    b"\\\n",
    b"#",
    b"# escape=`\n",
    b"FROM ",
    b"COPY ",
    b"ADD ",
    b"ENV ",
    b"ARG ",
    b"RUN ",
    b"--from=",
    b"--chown=",
    b"--chmod=",
    b"<<EOF\n",
    b"[",
    b"]",
    b"{",
    b"\":",
    b",",
    b"null",
    b"**",
    b"*",
    b"?",
    b"!",
    b"/",
    b"../",
    b"./",
    b"\0",
    b"\xff",
    b"\xef\xbb\xbf",
    b"ustar\0",
    b"././@LongLink",
    b"PaxHeader",
    b"GNUSparseFile.0",
    b"path=",
    b".wh.",
    b".wh..wh..opq",
    b"debian-binary",
    b"control.tar",
    b"data.tar",
    b"!<arch>\n",
    b"Package: ",
    b"Version: ",
    b"Depends: ",
    b" (>= ",
    b"|",
    b"&&",
    b";",
    b"$(",
    b">",
    b"~",
    b"=",
    b"pip install ",
    b"python3 -m pip ",
    b"apt-get install -y ",
    b"rm -rf ",
    b"-r ",
    b"--",
    b"set -u; ",
    b"9999999999999999999999",
];

impl Fuzzer {
    /// A fuzzer of `target` whose inputs are drawn from `seed`.
    pub fn new(target: Target, seed: u64) -> Result<Fuzzer, Error> {
        Ok(Fuzzer {
            harness: Harness::new(target)?,
            rng: SplitMix64::new(seed),
            corpus: seeds(target),
            in_flight: None,
        })
    }

    /// Saves each input to `path` before running it, so that an input
    /// that aborts the process (rather than panicking) is kept.
    pub fn save_in_flight(&mut self, path: &Path) {
        self.in_flight = Some(path.to_path_buf());
    }

    /// The next generated input.
    pub fn next_input(&mut self) -> Vec<u8> {
        let mut input = self.corpus[self.rng.below(self.corpus.len())].clone();
        let rounds = 1 + self.rng.below(8);
        for _ in 0..rounds {
            self.mutate(&mut input);
        }
        input.truncate(1 << 20);
        input
    }

    fn mutate(&mut self, input: &mut Vec<u8>) {
        let len = input.len();
        match self.rng.below(8) {
            0 if len > 0 => {
                let at = self.rng.below(len);
                input[at] ^= 1 << self.rng.below(8);
            }
            1 if len > 0 => {
                let at = self.rng.below(len);
                const INTERESTING: [u8; 8] = [0, 0xff, 0x7f, 0x80, b'0', b'7', b' ', b'\n'];
                input[at] = INTERESTING[self.rng.below(INTERESTING.len())];
            }
            2 if len > 0 => {
                let at = self.rng.below(len);
                let n = 1 + self.rng.below((len - at).min(64));
                input.drain(at..at + n);
            }
            3 if len > 0 => {
                let at = self.rng.below(len);
                let n = 1 + self.rng.below((len - at).min(512));
                let chunk = input[at..at + n].to_vec();
                let to = self.rng.below(len + 1);
                let times = 1 + self.rng.below(4);
                for _ in 0..times {
                    input.splice(to..to, chunk.iter().copied());
                }
            }
            4 => {
                let other = &self.corpus[self.rng.below(self.corpus.len())];
                if !other.is_empty() {
                    let at = self.rng.below(other.len());
                    let n = 1 + self.rng.below((other.len() - at).min(1024));
                    let chunk = other[at..at + n].to_vec();
                    let to = self.rng.below(len + 1);
                    input.splice(to..to, chunk);
                }
            }
            5 if len > 0 => {
                // Overwrite a header-sized window with a number (sizes,
                // modes, offsets are octal or decimal text).
                let at = self.rng.below(len);
                let text = format!("{:o}", self.rng.next_u64() >> self.rng.below(64));
                for (i, b) in text.bytes().enumerate() {
                    if let Some(slot) = input.get_mut(at + i) {
                        *slot = b;
                    }
                }
            }
            _ => {
                let token = DICTIONARY[self.rng.below(DICTIONARY.len())];
                let to = self.rng.below(len + 1);
                input.splice(to..to, token.iter().copied());
            }
        }
    }

    /// Runs the target on `input`: `Err` with the panic message when it
    /// panicked.
    pub fn execute(&mut self, input: &[u8]) -> Result<Result<(), String>, Error> {
        if let Some(path) = &self.in_flight {
            std::fs::write(path, input).map_err(|source| Error::Save { path: path.clone(), source })?;
        }
        Ok(run_caught(|| self.harness.run(input)))
    }

    /// Runs generated inputs until `executions` ran or `time` passed,
    /// whichever comes first.
    pub fn run(&mut self, executions: u64, time: Duration) -> Result<Report, Error> {
        let start = Instant::now();
        let mut report = Report::default();
        while report.executions < executions && start.elapsed() < time {
            let input = self.next_input();
            let began = Instant::now();
            let outcome = self.execute(&input)?;
            report.slowest = report.slowest.max(began.elapsed());
            report.executions += 1;
            if let Err(message) = outcome {
                if !report.crashes.iter().any(|c| c.message == message) {
                    report.crashes.push(Crash { input, message });
                }
            }
        }
        Ok(report)
    }
}

/// Runs one target on one input (a regression input, say): `Err` with the
/// panic message when it panicked.
pub fn replay(target: Target, input: &[u8]) -> Result<Result<(), String>, Error> {
    let mut harness = Harness::new(target)?;
    Ok(run_caught(|| harness.run(input)))
}

thread_local! {
    /// The panic message of the target running on this thread, when one
    /// is running (the hook below records it instead of printing it).
    static CAUGHT: std::cell::RefCell<Option<Option<String>>> = const { std::cell::RefCell::new(None) };
}

/// Installs, once, a panic hook that records the panics of targets (on
/// the threads running one) and leaves every other panic to the hook
/// that was there: tests running beside a fuzzer keep their messages.
fn install_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            let recorded = CAUGHT.with(|caught| {
                let mut caught = caught.borrow_mut();
                let Some(slot) = caught.as_mut() else { return false };
                let text = info
                    .payload()
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| info.payload().downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                let at = info.location().map(|l| format!("{}:{}", l.file(), l.line())).unwrap_or_default();
                *slot = Some(format!("{text} at {at}"));
                true
            });
            if !recorded {
                previous(info);
            }
        }));
    });
}

fn run_caught(f: impl FnOnce()) -> Result<(), String> {
    install_hook();
    CAUGHT.with(|caught| *caught.borrow_mut() = Some(None));
    let outcome = panic::catch_unwind(AssertUnwindSafe(f));
    let message = CAUGHT.with(|caught| caught.borrow_mut().take().flatten());
    match outcome {
        Ok(()) => Ok(()),
        Err(_) => Err(message.unwrap_or_else(|| "panic".to_string())),
    }
}

/// Recomputes the checksum of every 512-byte block that looks like a tar
/// header (`ustar` magic), so that a mutated header is still read.
fn fix_tar_checksums(input: &mut [u8]) {
    for block in input.chunks_exact_mut(512) {
        if &block[257..262] != b"ustar" {
            continue;
        }
        block[148..156].fill(b' ');
        let sum: u32 = block.iter().map(|&b| u32::from(b)).sum();
        let text = format!("{sum:06o}\0 ");
        block[148..156].copy_from_slice(text.as_bytes());
    }
}

/// Writes `crash` as `dir/NAME` (named by a hash of the input) and returns
/// the path.
pub fn save_crash(dir: &Path, crash: &Crash) -> Result<PathBuf, Error> {
    let hash = crash
        .input
        .iter()
        .fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    let path = dir.join(format!("crash-{hash:016x}"));
    let save = |path: &Path| -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        std::fs::File::create(path)?.write_all(&crash.input)
    };
    save(&path).map_err(|source| Error::Save { path: path.clone(), source })?;
    Ok(path)
}
