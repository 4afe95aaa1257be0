//! Multi-stage builds: a builder stage whose artifact the final stage
//! copies (the final image holds it and nothing else of the builder,
//! checked by Python's tarfile and `umoci unpack`), `--target`, stages the
//! target does not need left alone (their bases not even resolved), ARG
//! scoping across stages, and the errors of Docker's rules.

use std::path::Path;

use expect_test::{expect, Expect};
use forge_builder::{BuildOptions, Built, Extras, LocalResolver, NoInstaller, Workspace};
use forge_testkit::{python_check_archive, require_tool, skopeo_check, umoci_unpack};

use crate::{add_base, options, outcome, plugin_repo, BASE};

const DOCKERFILE: &str = r#"ARG REGISTRY
ARG TAG
ARG VERSION=1.2.3
FROM ${REGISTRY}/base-py:${TAG} AS Builder
ARG VERSION
ARG MODULE_PATH
COPY ${MODULE_PATH}/src /build/src
COPY --chown=1000:1000 --chmod=0750 <<EOF /build/out/model.json
{"version": "${VERSION}"}
EOF
COPY <<EOF /build/out/README
built from $MODULE_PATH
EOF

# Never needed: its base cannot be resolved and its source does not exist.
FROM localhost:5000/not-there:1 AS unused
COPY no/such/file /x

FROM scratch AS notes
COPY <<EOF /notes.txt
[${VERSION}]
EOF

FROM ${REGISTRY}/base-py:${TAG}
ARG MODULE_PATH
COPY ${MODULE_PATH} /workdir
COPY --from=builder /build/out/ /workdir/model/
COPY --from=2 /notes.txt /workdir/
COPY --from=BUILDER --chown=7:8 /build/out/model.json /opt/model.json
ENV PYTHONPATH=/workdir:/workdir/src:/workdir/supervisely_lib/worker_proto
"#;

/// Builds `plugins/p` of `root` for `target` (`None`: the last stage).
fn build(
    root: &Path,
    store: &Path,
    target: Option<&str>,
) -> Result<(Workspace, Built), forge_builder::BuildError> {
    let ws = Workspace::open(root, store)?;
    if ws.store().resolve_ref(BASE).unwrap().is_none() {
        add_base(ws.store());
    }
    let options = BuildOptions {
        extras: Extras { target: target.map(str::to_string), ..Extras::default() },
        ..options()
    };
    let built = ws.build(Path::new("plugins/p"), &options, &LocalResolver::default(), &NoInstaller)?;
    Ok((ws, built))
}

/// Python's listing of the image's layers after the base's, and the
/// entries of its root file system as `umoci unpack` makes it whose paths
/// start with one of `paths`.
fn check_image(ws: &Workspace, built: &Built, paths: &[&str]) -> (String, Vec<String>) {
    forge_oci::validate::image(ws.store(), built.digest()).unwrap();
    let out = tempfile::tempdir().unwrap();
    let tarball = ws.export(built, out.path()).unwrap();
    let listing = python_check_archive(&tarball);
    let ours = listing.split("--\n").skip(1).collect::<Vec<_>>().join("--\n");
    let (_, layout) = skopeo_check(&tarball, out.path());
    let rootfs = umoci_unpack(&layout, "checked", out.path());
    let files = forge_testkit::rootfs_listing(&rootfs)
        .into_iter()
        .filter(|l| paths.iter().any(|p| l.split(' ').nth(2).is_some_and(|path| path.starts_with(p))))
        .collect();
    (ours, files)
}

#[test]
fn the_final_stage_holds_only_what_it_copies_from_the_builder() {
    if !require_tool("python3") || !require_tool("skopeo") || !require_tool("umoci") {
        return;
    }
    let repo = plugin_repo(DOCKERFILE, &[("plugins/p/src/helper.py", "x = 1\n")]);
    let store = tempfile::tempdir().unwrap();

    let (ws, built) = build(repo.path(), store.path(), None).unwrap();
    let (layers, rootfs) = check_image(&ws, &built, &["workdir/model", "workdir/notes", "opt", "build"]);
    // One layer per COPY of the final stage over the base: nothing of the
    // builder's `/build`, its sources or its layers.
    expect![[r#"
        d 0755 0:0 0 workdir
        f 0644 0:0 0 workdir/Dockerfile
        f 0644 0:0 0 workdir/VERSION
        f 0644 0:0 0 workdir/plugin_info.json
        d 0755 0:0 0 workdir/src
        f 0644 0:0 0 workdir/src/helper.py
        f 0644 0:0 0 workdir/src/main.py
        --
        d 0755 0:0 0 workdir
        d 0755 0:0 0 workdir/model
        f 0644 0:0 0 workdir/model/README
        f 0750 1000:1000 0 workdir/model/model.json
        --
        d 0755 0:0 0 workdir
        f 0644 0:0 0 workdir/notes.txt
        --
        d 0755 0:0 0 opt
        f 0750 7:8 0 opt/model.json
    "#]]
    .assert_eq(&layers);
    expect![[r#"
        [
            "d 0755 opt",
            "f 0750 opt/model.json = {\"version\": \"1.2.3\"}\n",
            "d 0755 workdir/model",
            "f 0644 workdir/model/README = built from plugins/p\n",
            "f 0750 workdir/model/model.json = {\"version\": \"1.2.3\"}\n",
            "f 0644 workdir/notes.txt = []\n",
        ]
    "#]]
    .assert_debug_eq(&rootfs);
    assert_eq!(built.stored.manifest.layers().len(), 5, "the base's layer and the final stage's four");

    // --target: the builder stage's own image.
    let (ws, built) = build(repo.path(), store.path(), Some("BUILDER")).unwrap();
    let (layers, _) = check_image(&ws, &built, &[]);
    expect![[r#"
        d 0755 0:0 0 build
        d 0755 0:0 0 build/src
        f 0644 0:0 0 build/src/helper.py
        f 0644 0:0 0 build/src/main.py
        --
        d 0755 0:0 0 build
        d 0755 0:0 0 build/out
        f 0750 1000:1000 0 build/out/model.json
        --
        d 0755 0:0 0 build
        d 0755 0:0 0 build/out
        f 0644 0:0 0 build/out/README
    "#]]
    .assert_eq(&layers);

    // The stage nothing needs is never resolved: as a target, it fails.
    let err = build(repo.path(), store.path(), Some("unused")).unwrap_err();
    expect!["base image `localhost:5000/not-there:1` not found: import it with `cargo xtask image import SOURCE localhost:5000/not-there` (for every tag) or pass `--base-image localhost:5000/not-there:1=SOURCE`"].assert_eq(&err.to_string());
}

fn check_error(dockerfile: &str, target: Option<&str>, expect: Expect) {
    let repo = plugin_repo(dockerfile, &[]);
    let store = tempfile::tempdir().unwrap();
    expect.assert_eq(&outcome(build(repo.path(), store.path(), target)));
}

const FROM: &str = "FROM localhost:5000/base-py:1.0.0";

#[test]
fn docker_rules_for_stages() {
    check_error(
        &format!("{FROM} AS a\n{FROM} AS A\n"),
        None,
        expect![[r#"
        plugins/p/Dockerfile:2:38: duplicate stage name `a`: the stage at line 1 has it
          help: give every stage its own name (stage names are case-insensitive)"#]],
    );
    check_error(
        &format!("{FROM} AS a\nCOPY --from=a /etc /x\n"),
        None,
        expect![[r#"
        plugins/p/Dockerfile:2:13: COPY --from=a names its own stage (`a`)
          help: copy from an earlier stage; within a stage, the files are already there"#]],
    );
    check_error(
        &format!("{FROM}\nCOPY --from=0 /etc /x\n"),
        None,
        expect![[r#"
        plugins/p/Dockerfile:2:13: COPY --from=0 names its own stage (`0`)
          help: copy from an earlier stage; within a stage, the files are already there"#]],
    );
    check_error(
        &format!("{FROM} AS a\nCOPY --from=b /etc /x\n{FROM} AS b\n"),
        None,
        expect![[r#"
        plugins/p/Dockerfile:2:13: COPY --from=b names the stage `b` at line 3, which comes after this one
          help: move the stage it copies from before this one: a stage copies only from the stages before it"#]],
    );
    check_error(
        &format!("{FROM} AS a\nCOPY --from=1 /etc /x\n{FROM}\n"),
        Some("a"),
        expect![[r#"
        plugins/p/Dockerfile:2:13: COPY --from=1 names the stage `1` at line 3, which comes after this one
          help: move the stage it copies from before this one: a stage copies only from the stages before it"#]],
    );
    check_error(
        &format!("{FROM} AS a\n{FROM}\nCOPY --from=5 /etc /x\n"),
        None,
        expect![[r#"
        plugins/p/Dockerfile:3:13: COPY --from=5: there is no stage 5, the Dockerfile has 2
          help: stages are numbered from 0 in the order of their FROMs; or name the stage with `FROM image AS name`"#]],
    );
    check_error(
        &format!("{FROM} AS a\n{FROM}\nCOPY --from=nosuch /etc /x\n"),
        None,
        expect![[r#"
        plugins/p/Dockerfile:3:13: COPY --from=nosuch: no stage has that name (the stages are a), and it is no image either: base image `nosuch` not found: import it with `cargo xtask image import SOURCE nosuch` (for every tag) or pass `--base-image nosuch=SOURCE`
          help: name a stage of this Dockerfile (`FROM image AS name`), its index, or an image"#]],
    );
    check_error(
        &format!("{FROM} AS a\n{FROM}\nCOPY --from=a /missing /x\n"),
        None,
        expect![[r#"
        plugins/p/Dockerfile:3:15: `/missing` not found in stage `a`
          help: COPY --from sources are paths from the root of the stage or image it names"#]],
    );
    check_error(
        &format!("{FROM} AS a\n{FROM}\nCOPY --from=a /etc/passwd /usr/bin/tool /x\n"),
        None,
        expect![[r#"
        plugins/p/Dockerfile:3:1: `/x` must be a directory ending in `/`: more than one source file is copied
          help: write `/x/`"#]],
    );
    check_error(
        &format!("{FROM} AS a\n{FROM}\n"),
        Some("b"),
        expect!["plugins/p/Dockerfile: --target b: no stage has that name; its stages: a"],
    );
}

/// `FROM stage`: the stage's image is the base (its layers, `ENV`,
/// `WORKDIR`), and the target adds its own layers over it; `COPY --from`
/// an image (resolved as a `FROM` is) keeps modes and follows symlinks.
#[test]
fn a_stage_based_on_a_stage_continues_it() {
    if !require_tool("python3") || !require_tool("skopeo") || !require_tool("umoci") {
        return;
    }
    let dockerfile = format!("{FROM} AS a\nWORKDIR /w\nENV A=1\nCOPY <<EOF one\n$A\nEOF\nFROM a\nCOPY <<EOF two\n$A$A\nEOF\nCOPY --from=localhost:5000/base-py:1.0.0 /bin/tool /etc/passwd ./\n");
    let repo = plugin_repo(&dockerfile, &[]);
    let store = tempfile::tempdir().unwrap();
    let (ws, built) = build(repo.path(), store.path(), None).unwrap();
    let (layers, rootfs) = check_image(&ws, &built, &["w"]);
    expect![[r#"
        d 0755 0:0 0 w
        --
        d 0755 0:0 0 w
        f 0644 0:0 0 w/one
        --
        d 0755 0:0 0 w
        f 0644 0:0 0 w/two
        --
        d 0755 0:0 0 w
        f 0644 0:0 0 w/passwd
        f 0755 0:0 0 w/tool
    "#]]
    .assert_eq(&layers);
    expect![[r#"
        [
            "d 0755 w",
            "f 0644 w/one = 1\n",
            "f 0644 w/passwd = root:x:0:0:root:/root:/bin/sh\n",
            "f 0755 w/tool = #!/bin/sh\n",
            "f 0644 w/two = 11\n",
        ]
    "#]]
    .assert_debug_eq(&rootfs);
}
