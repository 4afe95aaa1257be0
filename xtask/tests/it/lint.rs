//! `cargo xtask lint` through its command line: exit codes, JSON lines,
//! human output, severity flags, rule explanations.

use serde_json::Value;

use crate::{project_root, write_tree, xtask};

const DOCKERFILE: &str = "FROM python:3.11\nARG MODULE_PATH\nCOPY ${MODULE_PATH} /workdir\n\
ENV PYTHONPATH=/workdir:/workdir/src:/workdir/supervisely_lib/worker_proto\n";

fn plugin<'a>(dir: &str, version: &'a str, info: &'a str) -> Vec<(String, &'a str)> {
    vec![
        (format!("{dir}/plugin_info.json"), info),
        (format!("{dir}/VERSION"), version),
        (format!("{dir}/Dockerfile"), DOCKERFILE),
        (format!("{dir}/README.md"), "# plugin\n"),
        (format!("{dir}/LICENSE"), "MIT\n"),
        (format!("{dir}/src/main.py"), "print(1)\n"),
    ]
}

const INFO: &str = r#"{"title": "t", "description": "d", "type": "import"}"#;

fn broken_monorepo() -> tempfile::TempDir {
    let mut files = Vec::new();
    files.extend(plugin("plugins/good", "t/good:1\n", INFO));
    files.extend(plugin("plugins/group/bad-version", "t/Bad:1\n", INFO));
    files.extend(plugin("plugins/group/bad-info", "t/bad-info:1\n", "{\n  \"title\": \"x\",\n}\n"));
    files.push(("plugins/orphan/Dockerfile".into(), "FROM x\n"));
    let files: Vec<(&str, &str)> = files.iter().map(|(p, c)| (p.as_str(), *c)).collect();
    write_tree(&files)
}

#[test]
fn json_has_one_object_per_diagnostic() {
    let repo = broken_monorepo();
    let root = repo.path().to_str().unwrap();
    let out = xtask(repo.path(), &["lint", "--root", root, "--format", "json"]);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<Value> =
        String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let brief: Vec<String> = lines
        .iter()
        .map(|d| {
            format!(
                "{} {} {} {} {}:{}:{}",
                d["plugin"].as_str().unwrap(),
                d["severity"].as_str().unwrap(),
                d["code"].as_str().unwrap(),
                d["name"].as_str().unwrap(),
                d["file"].as_str().unwrap(),
                d["line"],
                d["column"],
            )
        })
        .collect();
    assert_eq!(
        brief,
        [
            "plugins/group/bad-info error PF101 plugin-info-invalid plugins/group/bad-info/plugin_info.json:3:1",
            "plugins/group/bad-version error PF104 version-invalid plugins/group/bad-version/VERSION:1:3",
            "plugins/orphan error PF001 plugin-info-missing plugins/orphan/Dockerfile:null:null",
        ]
    );
    for d in &lines {
        assert!(d["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
}

#[test]
fn human_output_names_files_and_ends_with_a_summary() {
    let repo = broken_monorepo();
    let out = xtask(repo.path(), &["lint", "--root", "."]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(!stderr.contains('\x1b'), "no colours when stderr is not a terminal: {stderr}");
    assert!(
        stderr.contains(
            "error[PF104]: uppercase letter `B` in image name\n --> plugins/group/bad-version/VERSION:1:3\n"
        ),
        "{stderr}"
    );
    assert!(stderr.ends_with("lint: 4 plugins checked, 3 with errors; 3 errors, 0 warnings\n"), "{stderr}");
    assert!(stderr.contains("  ok plugins/good\n"), "{stderr}");
}

#[test]
fn severity_flags_change_the_exit_code() {
    let repo = broken_monorepo();
    let root = repo.path().to_str().unwrap();
    let allow_all = ["lint", "--root", root, "-A", "PF104", "--allow", "plugin-info-invalid", "-A", "PF001"];
    assert_eq!(xtask(repo.path(), &allow_all).status.code(), Some(0));
    // Later flags win: deny then warn gives a warning.
    let warn_last = ["lint", "--root", root, "-A", "PF101", "-A", "PF001", "-D", "PF104", "-W", "PF104"];
    assert_eq!(xtask(repo.path(), &warn_last).status.code(), Some(0));
    let deny_last = ["lint", "--root", root, "-A", "PF101", "-A", "PF001", "-W", "PF104", "-D", "PF104"];
    assert_eq!(xtask(repo.path(), &deny_last).status.code(), Some(1));
    // Raising a warning to an error fails a clean monorepo.
    let clean = write_tree(&[("plugins/p/plugin_info.json", INFO)]);
    let croot = clean.path().to_str().unwrap();
    let out = xtask(
        clean.path(),
        &["lint", "--root", croot, "-A", "PF103", "-A", "PF201", "-A", "PF203", "-A", "PF204"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let out = xtask(
        clean.path(),
        &[
            "lint",
            "--root",
            croot,
            "-A",
            "PF103",
            "-A",
            "PF201",
            "-A",
            "PF203",
            "-A",
            "PF204",
            "-D",
            "license-missing",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn usage_and_io_problems_exit_2() {
    let empty = tempfile::tempdir().unwrap();
    let root = empty.path().to_str().unwrap();
    let out = xtask(empty.path(), &["lint", "--root", root]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("has no `plugins/` directory"));
    let out = xtask(empty.path(), &["lint", "--root", root, "-D", "PF999"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown lint rule `PF999`"));
    assert_eq!(xtask(empty.path(), &["lint", "--format", "yaml"]).status.code(), Some(2));
}

#[test]
fn explain_and_list_rules() {
    let out = xtask(&project_root(), &["lint", "--explain", "version-invalid"]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.starts_with("PF104 (version-invalid, error by default)\n\n`VERSION` must be one line"),
        "{text}"
    );
    let out = xtask(&project_root(), &["lint", "--list-rules"]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.lines().count(), forge_lint::rules::ALL.len());
    assert!(text.contains("PF205  warning  license-missing\n"), "{text}");
}

/// The README's main command on this repository: the sample plugins are clean.
#[test]
fn sample_plugins_pass_from_the_repository_root() {
    let out = xtask(&project_root(), &["lint"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("0 errors, 0 warnings"), "{stderr}");
}
