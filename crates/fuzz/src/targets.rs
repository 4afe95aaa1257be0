//! The body of each fuzz target: bytes in, the reader under test driven the
//! way a build drives it, every error discarded (only a panic fails).

use std::collections::BTreeMap;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use forge_builder::{BaseImage, Context, DockerIgnore, ParsedDockerfile, PlanInputs};
use forge_dockerfile::{expand_word, parse, parse_instructions, split_words};
use forge_oci::image::new_config;
use forge_oci::oci_spec::image::MediaType;
use forge_oci::{descriptor, read_tar, write_image, BlobStore, RuntimeConfig, Spool};

use crate::Target;

/// The directories the targets work in, made once per fuzzer: a small
/// build context, a blob store, and a directory for per-input files.
#[derive(Debug)]
pub(crate) struct Scratch {
    dir: tempfile::TempDir,
    context: Context,
    store: BlobStore,
    runs: u64,
}

impl Scratch {
    pub(crate) fn new() -> io::Result<Scratch> {
        let dir = tempfile::Builder::new().prefix("forge-fuzz-").tempdir()?;
        let root = dir.path().join("context");
        std::fs::create_dir_all(root.join("src/sub"))?;
        std::fs::write(root.join("src/main.py"), "print(1)\n")?;
        std::fs::write(root.join("src/sub/a.txt"), "a\n")?;
        std::fs::write(root.join("requirements.txt"), "numpy\n")?;
        std::fs::write(root.join(".dockerignore"), "*.pyc\n")?;
        let context = Context::open(&root).map_err(io::Error::other)?;
        let store = BlobStore::open_or_create(dir.path().join("store")).map_err(io::Error::other)?;
        std::fs::create_dir_all(dir.path().join("work"))?;
        Ok(Scratch { dir, context, store, runs: 0 })
    }

    /// A path for this input's file or directory (removed by the next run).
    /// Every [`STORE_RUNS`] runs the blob store is emptied too, so that a
    /// long run's imported blobs do not fill the disk.
    fn fresh(&mut self, name: &str) -> PathBuf {
        self.runs += 1;
        if self.runs.is_multiple_of(STORE_RUNS) {
            let path = self.dir.path().join("store");
            let _ = std::fs::remove_dir_all(&path);
            if let Ok(store) = BlobStore::open_or_create(&path) {
                self.store = store;
            }
        }
        let work = self.dir.path().join("work");
        let _ = std::fs::remove_dir_all(&work);
        let _ = std::fs::create_dir_all(&work);
        work.join(format!("{}-{name}", self.runs))
    }
}

/// How many runs share one blob store (see [`Scratch::fresh`]).
const STORE_RUNS: u64 = 1000;

pub(crate) fn run(target: Target, scratch: &mut Scratch, input: &[u8]) {
    match target {
        Target::Dockerfile => dockerfile(scratch, input),
        Target::Manifest => manifest(input),
        Target::Dockerignore => dockerignore(input),
        Target::Shell => shell(input),
        Target::Archive => archive(scratch, input),
        Target::Deb => deb(scratch, input),
        Target::Unpack => unpack(scratch, input),
    }
}

fn dockerfile(scratch: &mut Scratch, input: &[u8]) {
    let text = String::from_utf8_lossy(input);
    let file = parse(&text);
    let _ = parse_instructions(&file);
    let lookup = |name: &str| match name {
        "UNSET" => None,
        "EMPTY" => Some(String::new()),
        _ => Some(format!("v{}", name.len())),
    };
    for instruction in &file.instructions {
        for word in split_words(&instruction.args, file.escape) {
            let _ = expand_word(&word.raw, file.escape, &lookup);
        }
    }
    let Ok(parsed) = ParsedDockerfile::parse(&text, Path::new("Dockerfile")) else { return };
    let build_args = BTreeMap::from([
        ("MODULE_PATH".to_string(), "src".to_string()),
        ("REGISTRY".to_string(), "example.com".to_string()),
        ("TAG".to_string(), "1.0".to_string()),
    ]);
    let spool_parent = scratch.fresh("spool");
    let _ = std::fs::create_dir_all(&spool_parent);
    let inputs = PlanInputs {
        context: &scratch.context,
        build_args: &build_args,
        epoch: 0,
        spool_parent: &spool_parent,
        preserve_modes: input.first().is_some_and(|b| b & 1 == 1),
    };
    let _ = forge_builder::plan(&parsed, BaseImage::scratch(), &inputs);
}

fn shell(input: &[u8]) {
    use forge_dockerfile::shell::{parse_script, ShellOptions};
    let text = String::from_utf8_lossy(input);
    let lookup = |name: &str| match name {
        "UNSET" => None,
        "EMPTY" => Some(String::new()),
        "SPACED" => Some(" a  b ".to_string()),
        _ => Some(format!("v{}", name.len())),
    };
    let _ = parse_script(&text, ShellOptions::default(), &lookup);
    let _ = parse_script(&text, ShellOptions { nounset: true, noglob: true }, &lookup);
    // The same text as the RUN of a Dockerfile, with continuation lines
    // and comments in it, under a few shells.
    let file = parse(&format!("RUN {text}\nRUN [\"sh\", \"-c\", {}]\n", json_string(&text)));
    let shells: [&[&str]; 3] =
        [&["/bin/sh", "-c"], &["/bin/bash", "-euxo", "pipefail", "-c"], &["zsh", "-c"]];
    for instr in parse_instructions(&file).0 {
        if let forge_dockerfile::Instr::Run(run) = &instr.node {
            for shell in shells {
                let shell: Vec<String> = shell.iter().map(|s| s.to_string()).collect();
                let _ = forge_builder::run::recognize(run, &shell, "/app", &lookup);
            }
        }
    }
}

/// `text` as a JSON string literal.
fn json_string(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn manifest(input: &[u8]) {
    use forge_debian::{deb822, description, lock, relation, release, resolve, version};
    let text = String::from_utf8_lossy(input);
    let _ = forge_manifest::PluginInfo::parse(&text);
    let _ = forge_manifest::RunConfig::parse_file(&text);
    let _ = forge_manifest::ImageRef::parse_version_file(&text);
    let _ = forge_manifest::json_span::parse(&text);
    let _ = deb822::parse(&text, "Packages");
    let _ = release::Release::parse(&text, "InRelease");
    let _ = release::parse_date(&text);
    let _ = resolve::Index::parse(&text, "Packages", "amd64");
    let _ = relation::parse(&text);
    let _ = relation::parse_for_host(&text, "amd64");
    let _ = version::Version::parse(&text);
    let _ = lock::Lock::parse(&text, Path::new("base.lock"));
    let _ = description::Description::parse(&text, Path::new("base.toml"));
}

fn dockerignore(input: &[u8]) {
    let text = String::from_utf8_lossy(input);
    let (patterns, paths) = text.split_once("\n\n").unwrap_or((&text, "src/main.py\nsrc\na/b/c\n.git/x"));
    let Ok(ignore) = DockerIgnore::parse(patterns, Path::new(".dockerignore")) else { return };
    let _ = ignore.has_exceptions();
    for path in paths.lines() {
        let _ = ignore.is_excluded(path);
    }
}

fn archive(scratch: &mut Scratch, input: &[u8]) {
    let spool_dir = scratch.fresh("spool");
    if let Ok(mut spool) = Spool::new(&spool_dir) {
        let _ = read_tar::<io::Error>(input, &mut spool, |_, _| Ok(()));
    }
    let path = scratch.fresh("archive.tar");
    if std::fs::write(&path, input).is_ok() {
        let _ = forge_oci::import(&path, None, &scratch.store);
        let _ = forge_oci::import(&path, Some("latest"), &scratch.store);
    }
}

fn deb(scratch: &mut Scratch, input: &[u8]) {
    let path = scratch.fresh("package.deb");
    if std::fs::write(&path, input).is_err() {
        return;
    }
    let Ok(deb) = forge_debian::deb::DebFile::open(&path) else { return };
    let _ = deb.control();
    if let Ok(mut data) = deb.data() {
        if let Ok(entries) = data.entries() {
            for entry in entries.take(10_000) {
                let Ok(mut entry) = entry else { break };
                let _ = entry.path_bytes();
                let _ = io::copy(&mut (&mut entry).take(1 << 20), &mut io::sink());
            }
        }
    }
}

fn unpack(scratch: &mut Scratch, input: &[u8]) {
    let Ok((digest, size)) = scratch.store.put_bytes(input) else { return };
    let Ok(config) = new_config(0, &RuntimeConfig::default(), std::slice::from_ref(&digest), Vec::new())
    else {
        return;
    };
    let layer = descriptor(MediaType::ImageLayer, &digest, size);
    let Ok(image) = write_image(&scratch.store, &config, &[layer], &BTreeMap::new()) else { return };
    let dest = scratch.fresh("rootfs");
    let _ = forge_sandbox::unpack(&scratch.store, &image, &dest);
}
