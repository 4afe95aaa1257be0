//! Recognising the installing `RUN`s, data-driven: each
//! `test_data/run/<group>.txt` holds cases (`//- name` then a small
//! Dockerfile); every `RUN` of a case is read with the stage's `ENV`,
//! `ARG` defaults, `WORKDIR` and `SHELL` as the build would give them
//! (plus `HOME` and `PATH`, which Docker sets), and the ops it is made of,
//! or the refusal with its line:column (in the case), are compared with
//! `test_data/run/<group>.expected` (refresh with `UPDATE_EXPECT=1`).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::{Path, PathBuf};

use forge_builder::run::{recognize, InstallKind, InstallOp, PipInstall};
use forge_dockerfile::{expand_word, parse, parse_instructions, Instr};

fn test_data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("test_data/run")
}

fn list(items: &[String]) -> String {
    format!("[{}]", items.join(", "))
}

fn dump_pip(p: &PipInstall) -> String {
    let value = |name: &str, value: &Option<String>| value.as_ref().map(|v| format!(" {name}={v}"));
    let items =
        |name: &str, items: &[String]| (!items.is_empty()).then(|| format!(" {name}={}", list(items)));
    let flag = |name: &str, set: bool| set.then(|| format!(" {name}"));
    let parts = [
        value("python", &p.python),
        items("requirements", &p.requirements),
        items("-r", &p.requirement_files),
        items("-c", &p.constraint_files),
        flag("upgrade", p.upgrade),
        flag("no-deps", p.no_deps),
        flag("pre", p.pre),
        flag("no-index", p.no_index),
        flag("compile", p.compile),
        value("index", &p.index_url),
        items("extra-index", &p.extra_index_urls),
        items("find-links", &p.find_links),
    ];
    let options: String = parts.into_iter().flatten().collect();
    format!("pip program={}{options}", p.program)
}

fn dump_op(op: &InstallOp) -> String {
    let kind = match &op.kind {
        InstallKind::Pip(p) => dump_pip(p),
        InstallKind::AptUpdate => "apt-update".to_string(),
        InstallKind::AptInstall(a) => {
            let packages: Vec<String> = a.spelled().collect();
            let recommends = if a.no_install_recommends { " no-recommends" } else { "" };
            format!("apt-install {}{recommends}", list(&packages))
        }
        InstallKind::AptClean => "apt-clean".to_string(),
        InstallKind::Remove(paths) => format!("remove {}", list(paths)),
    };
    let env: String = op.assignments.iter().map(|(k, v)| format!(" {k}={v:?}")).collect();
    let env = if env.is_empty() { String::new() } else { format!(" with{env}") };
    format!("  {} {kind}{env}\n", op.position)
}

/// Every `RUN` of `dockerfile`, recognised.
fn run_case(dockerfile: &str) -> String {
    let file = parse(dockerfile);
    let (instrs, errors) = parse_instructions(&file);
    let mut out = String::new();
    for e in file.errors.iter().chain(&errors) {
        writeln!(out, "  dockerfile error {e}").unwrap();
    }
    let mut vars: BTreeMap<String, String> =
        [("HOME", "/root"), ("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
    let mut workdir = "/".to_string();
    let mut shell = vec!["/bin/sh".to_string(), "-c".to_string()];
    let lines: Vec<&str> = dockerfile.lines().collect();
    for instr in &instrs {
        let lookup = |name: &str| vars.get(name).cloned();
        let expand = |raw: &str| expand_word(raw, file.escape, &lookup).expect("the fixture's values expand");
        match &instr.node {
            Instr::Env(pairs) => {
                let values: Vec<(String, String)> =
                    pairs.iter().map(|kv| (expand(&kv.key.raw), expand(&kv.value.raw))).collect();
                vars.extend(values);
            }
            Instr::Arg(decls) => {
                let values: Vec<(String, String)> = decls
                    .iter()
                    .filter_map(|d| d.default.as_ref().map(|v| (d.name.raw.clone(), expand(&v.raw))))
                    .collect();
                vars.extend(values);
            }
            Instr::Workdir(dir) => {
                let dir = expand(&dir.raw);
                workdir = if dir.starts_with('/') {
                    dir
                } else {
                    format!("{}/{dir}", workdir.trim_end_matches('/'))
                };
            }
            Instr::Shell(argv) => shell = argv.clone(),
            Instr::Run(run) => {
                let line = lines[instr.position.line as usize - 1].trim();
                writeln!(out, "{} {line}", instr.position).unwrap();
                match recognize(run, &shell, &workdir, &lookup) {
                    Ok(install) if install.ops.is_empty() => out += "  (no ops)\n",
                    Ok(install) => install.ops.iter().for_each(|op| out += &dump_op(op)),
                    Err(e) => writeln!(out, "  error {}: {}", e.position, e.message).unwrap(),
                }
            }
            _ => {}
        }
    }
    out
}

fn check(group: &str) {
    forge_testkit::check_cases(&test_data(), group, run_case);
}

#[test]
fn pip() {
    check("pip");
}

#[test]
fn apt() {
    check("apt");
}

#[test]
fn rm() {
    check("rm");
}

#[test]
fn shell() {
    check("shell");
}
