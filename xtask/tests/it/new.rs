//! `cargo xtask new`: a plugin of each type, created in a fresh monorepo,
//! lints with zero diagnostics, builds on the Debian base, and runs each
//! of its entry points in the sandbox; a second `new` changes nothing.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};

use forge_testkit::require_tool;

use crate::{copy_dir, ok, project_root, xtask};

/// Every file under `dir` with its content.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path.strip_prefix(dir).unwrap().display().to_string();
                files.insert(rel, std::fs::read(&path).unwrap());
            }
        }
    }
    files
}

#[test]
fn new_plugins_of_every_type_lint_clean_build_and_run() {
    if !(require_tool("bwrap") && require_tool("gpgv")) {
        return;
    }
    let repo = tempfile::tempdir().unwrap();
    for part in ["supervisely_lib", "base-images"] {
        copy_dir(&project_root().join(part), &repo.path().join(part));
    }
    std::fs::create_dir_all(repo.path().join("plugins")).unwrap();
    let root = repo.path().to_str().unwrap();

    let cases = [
        ("import", "import/my-import", "MIT", "Permission is hereby granted, free of charge"),
        (
            "architecture",
            "nn/my-net",
            "Apache-2.0",
            "TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION",
        ),
        ("dtl", "plugins/dtl/my-dtl", "BSD-3-Clause", "3. Neither the name of the copyright holder"),
        ("custom", "tools/my-tool", "MPL-2.0", "Mozilla Public License Version 2.0"),
    ];
    for (plugin_type, path, license, phrase) in cases {
        let out = xtask(
            repo.path(),
            &["new", path, "--type", plugin_type, "--license", license, "--copyright", "Ada", "--root", root],
        );
        let printed = ok(&out);
        let dir = Path::new("plugins").join(path.trim_start_matches("plugins/"));
        assert!(printed.starts_with(&format!("created {}", dir.display())), "{printed}");
        let text = std::fs::read_to_string(repo.path().join(&dir).join("LICENSE")).unwrap();
        assert!(text.contains(phrase), "{license}: {text}");
        if license != "Apache-2.0" && license != "MPL-2.0" {
            assert!(text.contains(" Ada\n"), "{license}: {text}");
        }
    }

    // Zero diagnostics, warnings included.
    let lint = xtask(repo.path(), &["lint", "--root", root, "--format", "json"]);
    assert_eq!(ok(&lint), "", "{}", String::from_utf8_lossy(&lint.stderr));

    let built = ok(&xtask(repo.path(), &["build-all", "--root", root, "--format", "json"]));
    assert_eq!(built.lines().filter(|l| l.contains("\"status\":\"built\"")).count(), 4, "{built}");

    // Each mode with its predefined config, as the agent starts it, and as `docker run` would.
    let runs: [(&str, &[&str], &str); 7] = [
        ("my-import", &["--docker-semantics"], "no task config; nothing to import"),
        ("my-import", &["--config", "Import into ds0"], "import finished"),
        ("my-net", &["--docker-semantics"], "no task config; the predictions are not saved"),
        ("my-net", &["--mode", "train", "--config", "Train"], "checkpoint"),
        ("my-net", &["--mode", "inference", "--config", "Inference"], "model applied"),
        ("my-dtl", &["--config", "Copy the projects"], "dtl finished"),
        ("my-tool", &["--config", "Default"], "task finished"),
    ];
    for (plugin, args, expected) in runs {
        let mut argv = vec!["run", plugin, "--root", root];
        argv.extend(args);
        let stdout = ok(&xtask(repo.path(), &argv));
        assert!(stdout.contains("supervisely_lib "), "{plugin}: {stdout}");
        assert!(stdout.contains(expected), "{plugin} {args:?}: {stdout}");
    }

    // A second `new` on the same path fails, says what exists, and changes nothing.
    let before = snapshot(repo.path().join("plugins").as_path());
    let again = xtask(repo.path(), &["new", "import/my-import", "--type", "custom", "--root", root]);
    assert_eq!(again.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(
        stderr.contains("plugins/import/my-import already exists (plugins/import/my-import/src/main.py, "),
        "{stderr}"
    );
    assert!(stderr.contains("nothing was written"), "{stderr}");
    assert_eq!(before, snapshot(repo.path().join("plugins").as_path()));
}

#[test]
fn new_without_a_type_off_a_terminal_asks_nothing_and_fails() {
    let repo = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(repo.path().join("plugins")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["new", "x", "--root", repo.path().to_str().unwrap()])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no --type given: pass --type import|architecture|dtl|custom"), "{stderr}");
    assert!(!repo.path().join("plugins/x").exists());
    let unknown = xtask(
        repo.path(),
        &["new", "x", "--type", "custom", "--license", "WTFPL", "--root", repo.path().to_str().unwrap()],
    );
    assert!(String::from_utf8_lossy(&unknown.stderr)
        .contains("unknown license `WTFPL`; known SPDX ids: Apache-2.0, MIT, BSD-3-Clause, MPL-2.0"));
}
