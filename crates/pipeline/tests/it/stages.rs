//! Multi-stage builds through a session, with sandboxed `RUN`s: builder
//! stages that write artifacts (and junk) under bubblewrap, a final stage
//! that copies only the artifacts, a stage nobody needs over a base that
//! does not exist, and `--target`. The image is read by Python's tarfile
//! and unpacked by `umoci`.

use std::path::Path;

use forge_builder::Extras;
use forge_pipeline::{RunPolicy, Session, SessionOptions};

use super::options;
use super::run::monorepo;

const DOCKERFILE: &str = "FROM ${REGISTRY}/base-py:${TAG} AS builder
RUN mkdir -p /out /junk && echo artifact > /out/model.bin && echo junk > /junk/file && rm /etc/gone

# Nobody needs it: its base is never resolved, its RUN never runs.
FROM localhost:5000/nowhere:1 AS unused
RUN false

FROM ${REGISTRY}/base-py:${TAG} AS other
RUN mkdir /other && echo other > /other/file

FROM ${REGISTRY}/base-py:${TAG}
ARG MODULE_PATH
COPY ${MODULE_PATH} /workdir
COPY --from=builder /out/model.bin /workdir/model.bin
COPY --from=other /other/ /workdir/other/
ENV PYTHONPATH=/workdir:/workdir/src:/workdir/supervisely_lib/worker_proto
";

/// A session building `target` (the last stage if `None`); a stage other
/// than the last is no plugin the agent could start, so PF401 is allowed.
fn session_for(repo: &Path, target: Option<&str>) -> Session {
    let extras = Extras { target: target.map(str::to_string), ..Extras::default() };
    let mut options = SessionOptions { extras, run: RunPolicy::default(), ..options(repo) };
    if target.is_some() {
        options.lint.set(forge_lint::rules::AGENT_START, forge_lint::Level::Allow);
    }
    Session::open(options, &forge_pipeline::Quiet).unwrap()
}

/// The layers after the base's, as Python's tarfile lists them.
fn layers(tarball: &Path) -> String {
    let listing = forge_testkit::python_check_archive(tarball);
    listing.split("--\n").skip(1).collect::<Vec<_>>().join("--\n")
}

#[test]
fn the_final_image_holds_the_builders_artifact_and_nothing_else_of_it() {
    if !forge_testkit::require_tool("bwrap")
        || !forge_testkit::require_tool("skopeo")
        || !forge_testkit::require_tool("umoci")
    {
        return;
    }
    let repo = monorepo(&format!("ARG REGISTRY\nARG TAG\n{DOCKERFILE}"));
    let session = session_for(repo.path(), None);
    let built = session.build_one(Path::new("plugins/r"), &forge_pipeline::Quiet).unwrap();
    assert_eq!(
        layers(built.tarball.as_ref().unwrap()),
        "d 0755 0:0 0 workdir
f 0644 0:0 0 workdir/Dockerfile
f 0644 0:0 0 workdir/VERSION
f 0644 0:0 0 workdir/plugin_info.json
d 0755 0:0 0 workdir/src
f 0644 0:0 0 workdir/src/main.py
--
d 0755 0:0 0 workdir
f 0644 0:0 0 workdir/model.bin
--
d 0755 0:0 0 workdir
d 0755 0:0 0 workdir/other
f 0644 0:0 0 workdir/other/file
"
    );
    // Two builder RUNs, the final stage's three COPYs.
    assert_eq!(built.built.layers_built, 5);
    let scratch = tempfile::tempdir().unwrap();
    let (_, layout) = forge_testkit::skopeo_check(built.tarball.as_ref().unwrap(), scratch.path());
    let rootfs = forge_testkit::umoci_unpack(&layout, "checked", scratch.path());
    assert_eq!(std::fs::read_to_string(rootfs.join("workdir/model.bin")).unwrap(), "artifact\n");
    assert_eq!(std::fs::read_to_string(rootfs.join("workdir/other/file")).unwrap(), "other\n");
    assert_eq!(
        std::fs::read_to_string(rootfs.join("etc/gone")).unwrap(),
        "old\n",
        "the builder's rm is not here"
    );
    for absent in ["out", "junk", "other"] {
        assert!(!rootfs.join(absent).exists(), "/{absent} of a builder stage is in the image");
    }

    // Again: nothing runs, nothing is built.
    let again = session.build_one(Path::new("plugins/r"), &forge_pipeline::Quiet).unwrap();
    assert_eq!(again.built.digest(), built.built.digest());
    assert_eq!(again.built.layers_built, 0);

    // --target builder: that stage's image, its RUN's layer last.
    let builder = session_for(repo.path(), Some("builder"))
        .build_one(Path::new("plugins/r"), &forge_pipeline::Quiet)
        .unwrap();
    assert_eq!(
        layers(builder.tarball.as_ref().unwrap()),
        "d 0755 0:0 0 etc
f 0000 0:0 0 etc/.wh.gone
d 0755 0:0 0 junk
f 0644 0:0 0 junk/file
d 0755 0:0 0 out
f 0644 0:0 0 out/model.bin
"
    );
    assert_eq!(builder.built.layers_built, 0, "the builder stage's layer is the one built above");
}
