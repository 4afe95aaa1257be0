//! The installed `plugin-forge` binary: the same commands as `cargo
//! xtask`, the monorepo around the working directory as default root, and
//! shell completions from the command line's definition.

use std::path::Path;
use std::process::{Command, Output};

use crate::xtask;

fn plugin_forge(cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_plugin-forge")).args(args).current_dir(cwd).output().unwrap()
}

fn stdout(out: &Output) -> String {
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn plugin_forge_works_in_any_monorepo_like_cargo_xtask() {
    let repo = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(repo.path().join("plugins/tools")).unwrap();
    // The shared SDK the scaffolded Dockerfile copies (lint plans the build).
    std::fs::create_dir_all(repo.path().join("supervisely_lib")).unwrap();
    std::fs::write(repo.path().join("supervisely_lib/__init__.py"), "").unwrap();
    let created = stdout(&plugin_forge(repo.path(), &["new", "tools/counter", "--type", "custom"]));
    assert!(
        created.starts_with("created plugins/tools/counter (custom plugin \"Counter\", image counter:0.1.0")
    );
    assert!(created.contains("next: plugin-forge lint, then plugin-forge run counter"), "{created}");

    // From a directory inside the monorepo, without --root: the same as `cargo xtask --root`.
    let inside = repo.path().join("plugins/tools/counter/src");
    let ours = plugin_forge(&inside, &["lint", "--format", "json"]);
    let theirs = xtask(repo.path(), &["lint", "--format", "json", "--root", repo.path().to_str().unwrap()]);
    assert_eq!(ours.status.code(), Some(0));
    assert_eq!(ours.stdout, theirs.stdout);
    assert_eq!(stdout(&ours), "");
    let listed = stdout(&plugin_forge(&inside, &["lint", "--list-rules"]));
    assert_eq!(listed, stdout(&xtask(repo.path(), &["lint", "--list-rules"])));

    let help = stdout(&plugin_forge(repo.path(), &["--help"]));
    assert!(help.contains("Usage: plugin-forge <COMMAND>"), "{help}");
    assert_eq!(
        stdout(&plugin_forge(repo.path(), &["--version"])),
        stdout(&xtask(repo.path(), &["--version"])).replace("cargo xtask", "plugin-forge")
    );
}

#[test]
fn completions_for_bash_zsh_and_fish() {
    let dir = tempfile::tempdir().unwrap();
    let bash = stdout(&xtask(dir.path(), &["completions", "bash"]));
    assert!(bash.contains("complete -F _plugin__forge"), "{bash}");
    for word in ["publish", "--dry-run", "--build-arg", "completions"] {
        assert!(bash.contains(word), "{word} in the bash completions");
    }
    let zsh = stdout(&plugin_forge(dir.path(), &["completions", "zsh"]));
    assert!(zsh.starts_with("#compdef plugin-forge\n"), "{zsh}");
    let fish = stdout(&xtask(dir.path(), &["completions", "fish"]));
    assert!(fish.contains("complete -c plugin-forge"), "{fish}");
    let bad = xtask(dir.path(), &["completions", "tcsh"]);
    assert_eq!(bad.status.code(), Some(2));
    if forge_testkit::require_tool("bash") {
        // The script loads in bash without errors.
        let script = dir.path().join("plugin-forge.bash");
        std::fs::write(&script, &bash).unwrap();
        let out = Command::new("bash")
            .args(["-c", &format!("source {} && complete -p plugin-forge", script.display())])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert!(String::from_utf8_lossy(&out.stdout).contains("_plugin__forge"));
    }
}
