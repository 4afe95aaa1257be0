//! Builds that cannot be done fail with an error naming the Dockerfile,
//! line and column, and what to do; nothing is half-written.

use expect_test::{expect, Expect};

use crate::{build, outcome, plugin_files, plugin_repo, tree};

fn check(dockerfile: &str, extra: &[(&str, &str)], expect: Expect) {
    let repo = plugin_repo(dockerfile, extra);
    std::os::unix::fs::symlink("/etc", repo.path().join("outside")).unwrap();
    let store = tempfile::tempdir().unwrap();
    expect.assert_eq(&outcome(build(repo.path(), store.path(), "plugins/p")));
}

const FROM: &str = "FROM localhost:5000/base-py:1.0.0\n";

#[test]
fn the_lock_the_build_writes_is_not_in_the_context() {
    // Named, it is refused at the COPY (context.rs tests that a copied
    // directory leaves it out).
    check(
        &format!("{FROM}COPY plugins/p/Dockerfile.lock /x\n"),
        &[("plugins/p/Dockerfile.lock", "version = 1\n")],
        expect![[r#"
            plugins/p/Dockerfile:2:6: `plugins/p/Dockerfile.lock` is a lock plugin-forge writes during the build, which is never part of the build context
              help: copy sources of the monorepo, not build outputs"#]],
    );
}

#[test]
fn a_run_no_installer_takes_needs_a_runner_and_names_its_first_word() {
    check(
        &format!("{FROM}COPY plugins/p /workdir\nRUN pip install numpy \\\n    && make -C /workdir\n"),
        &[],
        expect![[r#"
            plugins/p/Dockerfile:3:1: this RUN must be executed in the sandbox (no native installer takes it: `make` is not a package installer command at 4:8), and this build has none
              help: `cargo xtask build` runs such RUNs in a bubblewrap sandbox; or make the RUN a plain `pip install`/`apt-get install`"#]],
    );
}

#[test]
fn a_heredoc_run_goes_to_the_sandbox() {
    check(
        &format!("{FROM}RUN <<EOF\npip install numpy\nEOF\n"),
        &[],
        expect![[r#"
            plugins/p/Dockerfile:2:1: this RUN must be executed in the sandbox (no native installer takes it: a redirection is not supported (only simple commands joined by `&&`, `;` or newlines are read without running a shell) at 2:5), and this build has none
              help: `cargo xtask build` runs such RUNs in a bubblewrap sandbox; or make the RUN a plain `pip install`/`apt-get install`"#]],
    );
    check(
        &format!("{FROM}COPY <<EOF a b\nEOF\n"),
        &[],
        expect![[r#"
            plugins/p/Dockerfile:2:12: `a` not found in the build context
              help: sources are relative to the monorepo root, the build context"#]],
    );
    check(
        &format!("{FROM}COPY <<one <<two /x\none\ntwo\n"),
        &[],
        expect![[r#"
        plugins/p/Dockerfile:2:6: `/x` must be a directory ending in `/`: more than one source is copied
          help: write the destination with a trailing `/`"#]],
    );
}

#[test]
fn sources_stay_inside_the_context() {
    check(
        &format!("{FROM}COPY ../etc /x\n"),
        &[],
        expect![[r#"
        plugins/p/Dockerfile:2:6: `../etc` leaves the build context (the monorepo root)
          help: copy only files inside the monorepo"#]],
    );
    check(
        &format!("{FROM}COPY /etc/passwd /x\n"),
        &[],
        expect![[r#"
        plugins/p/Dockerfile:2:6: `/etc/passwd` is an absolute path
          help: sources are relative to the monorepo root, the build context"#]],
    );
    check(
        &format!("{FROM}COPY outside/passwd /x\n"),
        &[],
        expect![[r#"
        plugins/p/Dockerfile:2:6: `outside/passwd` resolves to /etc/passwd through a symlink, outside the build context
          help: copy only files inside the monorepo"#]],
    );
    check(
        &format!("{FROM}COPY missing.txt /x\n"),
        &[],
        expect![[r#"
        plugins/p/Dockerfile:2:6: `missing.txt` not found in the build context
          help: sources are relative to the monorepo root, the build context"#]],
    );
    check(
        &format!("{FROM}COPY secret.txt /x\n"),
        &[("secret.txt", "s"), (".dockerignore", "secret.*\n")],
        expect![[r#"
        plugins/p/Dockerfile:2:6: `secret.txt` is excluded by .dockerignore
          help: remove the pattern from .dockerignore or add a `!` exception"#]],
    );
}

#[test]
fn copy_rules() {
    check(
        &format!("{FROM}COPY a.txt b.txt /dest\n"),
        &[("a.txt", "a"), ("b.txt", "b")],
        expect![[r#"
        plugins/p/Dockerfile:2:1: `/dest` must be a directory ending in `/`: more than one source file is copied
          help: write `/dest/`"#]],
    );
    check(
        &format!("{FROM}COPY *.nothing /dest/\n"),
        &[],
        expect![[r#"
        plugins/p/Dockerfile:2:6: no file of the build context matches `*.nothing`"#]],
    );
    check(
        &format!("{FROM}COPY --chown=app a.txt /x\n"),
        &[("a.txt", "a")],
        expect![[r#"
        plugins/p/Dockerfile:2:14: --chown=app: only numeric ids are supported
          help: write --chown=UID:GID, for example --chown=1000:1000"#]],
    );
    check(
        &format!("{FROM}ADD https://example.com/x.tar.gz /x\n"),
        &[],
        expect![[r#"
        plugins/p/Dockerfile:2:5: ADD from a URL (`https://example.com/x.tar.gz`) is not supported: builds use only local files
          help: download the file into the monorepo and ADD or COPY it from there"#]],
    );
}

#[test]
fn stages_and_bases() {
    check(
        &format!("{FROM}COPY --from=0 /etc /x\n"),
        &[],
        expect![[r#"
            plugins/p/Dockerfile:2:13: COPY --from=0 names its own stage (`0`)
              help: copy from an earlier stage; within a stage, the files are already there"#]],
    );
    check("FROM localhost:5000/other:1\n", &[], expect![[
        "base image `localhost:5000/other:1` not found: import it with `cargo xtask image import SOURCE localhost:5000/other` (for every tag) or pass `--base-image localhost:5000/other:1=SOURCE`"
    ]]);
    check(
        "ARG REGISTRY\nARG TAG\nFROM ${REGISTRY}/base-py:${TAG}\nENV A=\"${UNSET:?must be set}\"\n",
        &[],
        expect![[r#"plugins/p/Dockerfile:4:8: cannot expand `"${UNSET:?must be set}"`: UNSET: must be set"#]],
    );
    check(
        "COPPY a b\nFROM x\n",
        &[],
        expect![[r#"
        plugins/p/Dockerfile:1:1: unknown instruction `COPPY`
          help: did you mean `COPY`?"#]],
    );
}

#[test]
fn build_args_are_those_of_build_plugin_sh() {
    // REGISTRY and TAG reach FROM; MODULE_PATH needs its ARG in the stage.
    check(
        "ARG REGISTRY\nARG TAG\nFROM ${REGISTRY}/base-py:${TAG}\nARG MODULE_PATH\nLABEL m=${MODULE_PATH}\nCOPY ${MODULE_PATH} /workdir\n",
        &[],
        expect![["built"]],
    );
}

#[test]
fn an_expansion_bomb_stops_at_its_line() {
    let bomb = "ENV A=$A$A\n".repeat(40);
    check(
        &format!("{FROM}ENV A=xxxxxxxxxxxxxxxx\n{bomb}COPY plugins/p /workdir\n"),
        &[],
        expect!["plugins/p/Dockerfile:19:9: cannot expand `$A$A`: the expanded value is longer than 1 MiB"],
    );
}

#[test]
fn secrets_anywhere_in_the_context_never_reach_an_image() {
    check(
        &format!("{FROM}COPY supervisely_lib /workdir/supervisely_lib\n"),
        &[("supervisely_lib/sdk.py", "x"), ("supervisely_lib/.env", "K=v\n")],
        expect![[r#"
            plugins/p/Dockerfile:2:1: `supervisely_lib/.env` is an environment file, which usually holds secrets; it must never go into an image
              help: delete it, or exclude it in .dockerignore so that no build sends it"#]],
    );
    check(
        &format!("{FROM}COPY . /workdir\n"),
        &[("home/.docker/config.json", "{}"), (".dockerignore", "**/.env\n")],
        expect![[r#"
            plugins/p/Dockerfile:2:1: `home/.docker/config.json` is a credentials file; it must never go into an image
              help: delete it, or exclude it in .dockerignore so that no build sends it"#]],
    );
    check(
        &format!("{FROM}COPY plugins/p /workdir\n"),
        &[("plugins/p/src/.ENV", "K=v\n")],
        expect![[r#"
            plugins/p/Dockerfile:2:1: `plugins/p/src/.ENV` is an environment file, which usually holds secrets; it must never go into an image
              help: delete it, or exclude it in .dockerignore so that no build sends it"#]],
    );
    // What .dockerignore excludes is never sent, so it does not block.
    check(
        &format!("{FROM}COPY supervisely_lib /workdir/supervisely_lib\n"),
        &[("supervisely_lib/sdk.py", "x"), ("supervisely_lib/.env", "K=v\n"), (".dockerignore", "**/.env\n")],
        expect![[r#"built"#]],
    );
}

#[test]
fn an_archive_entry_under_a_symlink_is_refused_at_the_add() {
    if !forge_testkit::require_tool("python3") {
        return;
    }
    let text = format!("{FROM}ADD plugins/p/t.tar /x/\n");
    let files = plugin_files("plugins/p", &text);
    let files: Vec<(&str, &str)> = files.iter().map(|(p, c)| (p.as_str(), *c)).collect();
    let repo = tree(&files);
    let script = "import io,sys,tarfile\nt=tarfile.open(sys.argv[1],'w')\ni=tarfile.TarInfo('x/l');i.type=tarfile.SYMTYPE;i.linkname='/etc';t.addfile(i)\nd=b'y';i=tarfile.TarInfo('x/l/f');i.size=1;t.addfile(i,io.BytesIO(d))\nt.close()\n";
    forge_testkit::run("python3", &["-c", script, repo.path().join("plugins/p/t.tar").to_str().unwrap()]);
    let store = tempfile::tempdir().unwrap();
    let err = match build(repo.path(), store.path(), "plugins/p") {
        Ok(_) => "built".to_string(),
        Err(e) => e.to_string(),
    };
    assert!(err.starts_with("plugins/p/Dockerfile:2:5: archive "), "{err}");
    assert!(
        err.contains("/plugins/p/t.tar has `x/l/f` under `x/l`, which is a symlink in the archive\n  help: "),
        "{err}"
    );
}

#[test]
fn a_source_swapped_for_a_fifo_after_the_plan_fails_without_blocking() {
    // Empty, the size the plan recorded matches the FIFO's; with content,
    // it does not. Either way the open must not block, and the error names
    // the file, what it is now and the instruction.
    for content in ["", "data\n"] {
        let dockerfile = format!("{FROM}COPY plugins/p/data.txt /data.txt\n");
        let mut files = plugin_files("plugins/p", &dockerfile);
        files.push(("plugins/p/data.txt".to_string(), content));
        let files: Vec<(&str, &str)> = files.iter().map(|(p, c)| (p.as_str(), *c)).collect();
        let repo = tree(&files);
        let store = tempfile::tempdir().unwrap();
        let ws = forge_builder::Workspace::open(repo.path(), store.path()).unwrap();
        crate::add_base(ws.store());
        let planned = ws
            .plan(
                std::path::Path::new("plugins/p"),
                &crate::options(),
                &forge_builder::LocalResolver::default(),
            )
            .unwrap();
        let data = repo.path().join("plugins/p/data.txt");
        std::fs::remove_file(&data).unwrap();
        assert!(std::process::Command::new("mkfifo").arg(&data).status().unwrap().success());
        let (done, outcome) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let result = ws.execute(&planned, ws.store(), &forge_builder::NoInstaller);
            done.send(result.map(|_| ()).map_err(|e| forge_input::error_chain(&e))).unwrap();
        });
        let outcome = outcome.recv_timeout(std::time::Duration::from_secs(60));
        let err = outcome.expect("the build blocked on the FIFO").unwrap_err();
        assert_eq!(
            err,
            format!(
                "plugins/p/Dockerfile:2:1: building the layer of `COPY plugins/p/data.txt /data.txt`: \
                 {} is a FIFO (named pipe), not a regular file",
                data.display()
            ),
            "content {content:?}"
        );
    }
}
