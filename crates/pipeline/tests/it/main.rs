//! A session over a small monorepo in a temporary directory: the base image
//! made from a root filesystem into the session's store, plugins built one
//! and many at a time behind the lint gate, pushes of what built.

mod cache;
mod fresh;
mod run;
mod stages;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use forge_lint::LintConfig;
use forge_pipeline::{BatchOptions, Error, Event, PushOptions, Session, SessionOptions};

const DOCKERFILE: &str = "ARG REGISTRY\nARG TAG\nFROM ${REGISTRY}/base-py:${TAG}\nARG MODULE_PATH\n\
COPY ${MODULE_PATH} /workdir\nENV PYTHONPATH=/workdir:/workdir/src:/workdir/supervisely_lib/worker_proto\n";

fn write(root: &Path, path: &str, content: &str) {
    let path = root.join(path);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
}

fn plugin(root: &Path, dir: &str, version: &str, with_src: bool) {
    write(
        root,
        &format!("{dir}/plugin_info.json"),
        r#"{"title": "t", "description": "d", "type": "import"}"#,
    );
    write(root, &format!("{dir}/VERSION"), version);
    write(root, &format!("{dir}/Dockerfile"), DOCKERFILE);
    if with_src {
        write(root, &format!("{dir}/src/main.py"), "print(1)\n");
    }
}

/// Plugins `plugins/a` and `plugins/group/b`, `plugins/d` without `src/`
/// (a lint error), and `localhost:5000/base-py` in the store, with the `sh`
/// and `python` the agent needs.
fn monorepo() -> tempfile::TempDir {
    let repo = tempfile::tempdir().unwrap();
    plugin(repo.path(), "plugins/a", "team/a:1.0.0\n", true);
    plugin(repo.path(), "plugins/group/b", "team/b:2.0.0\n", true);
    plugin(repo.path(), "plugins/d", "team/d:1.0.0\n", false);
    let rootfs = tempfile::tempdir().unwrap();
    for exe in ["bin/sh", "usr/bin/python"] {
        write(rootfs.path(), exe, "stand-in\n");
        std::fs::set_permissions(rootfs.path().join(exe), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let store = forge_pipeline::open_store(repo.path()).unwrap();
    let base = forge_builder::image_from_rootfs(&store, rootfs.path(), 0).unwrap();
    store.set_ref("localhost:5000/base-py", &base.manifest_descriptor()).unwrap();
    repo
}

fn options(root: &Path) -> SessionOptions {
    SessionOptions {
        root: root.to_path_buf(),
        registry: "localhost:5000".into(),
        base_images: Vec::new(),
        out: None,
        insecure_registries: Vec::new(),
        ca_certs: Vec::new(),
        lint: LintConfig::default(),
        extras: Default::default(),
        locks: Default::default(),
        debian_mirror: None,
        platforms: Vec::new(),
        run: Default::default(),
        cache: Default::default(),
        attest: Default::default(),
        outputs: Default::default(),
    }
}

/// The events of a run, as short strings.
#[derive(Default)]
struct Recorder(Mutex<Vec<String>>);

impl forge_pipeline::Observer for Recorder {
    fn event(&self, event: &Event<'_>) {
        let line = match event {
            Event::LintRejected { plugin, .. } => format!("rejected {}", plugin.display()),
            Event::BuildStarted { plugin } => format!("started {}", plugin.display()),
            Event::Exporting { plugin } => format!("exporting {}", plugin.display()),
            Event::BuildFinished { plugin, result, .. } => {
                format!("finished {} {}", plugin.display(), if result.is_ok() { "ok" } else { "failed" })
            }
            Event::PushStarted { image, .. } => format!("pushing {image}"),
            Event::PushFinished { plugin, ok } => format!("pushed {} {ok}", plugin.display()),
            _ => return,
        };
        self.0.lock().unwrap().push(line);
    }
}

impl Recorder {
    fn sorted(self) -> Vec<String> {
        let mut lines = self.0.into_inner().unwrap();
        lines.sort();
        lines
    }
}

#[test]
fn a_batch_builds_behind_the_lint_gate_in_the_order_asked() {
    let repo = monorepo();
    let all = forge_pipeline::discover(repo.path()).unwrap();
    assert_eq!(all, [PathBuf::from("plugins/a"), "plugins/d".into(), "plugins/group/b".into()]);
    let recorder = Recorder::default();
    let session = Session::open(options(repo.path()), &recorder).unwrap();
    let wanted = [PathBuf::from("plugins/group/b"), "plugins/d".into(), "plugins/a".into()];
    let outcomes = session.build(&wanted, &BatchOptions { jobs: Some(2), lint: true }, &recorder).unwrap();

    let order: Vec<&Path> = outcomes.iter().map(|o| o.plugin.as_path()).collect();
    assert_eq!(order, wanted.iter().map(PathBuf::as_path).collect::<Vec<_>>());
    let b = outcomes[0].result.as_ref().unwrap();
    assert_eq!(b.built.image, "localhost:5000/team/b:2.0.0");
    let tarball = b.tarball.as_ref().expect("build writes tarballs by default");
    assert!(tarball.starts_with(repo.path().join("target/plugin-forge/images")), "{tarball:?}");
    assert!(tarball.is_file());
    match &outcomes[1].result {
        Err(e @ Error::LintRejected(rejection)) => {
            assert_eq!(rejection.code, "PF201", "{e}");
            assert!(e.to_string().ends_with("run `cargo xtask lint`, or build anyway with --no-lint"), "{e}");
        }
        other => panic!("plugins/d was not rejected: {other:?}"),
    }
    assert!(outcomes[2].result.is_ok());
    assert_eq!(
        recorder.sorted(),
        [
            "exporting plugins/a",
            "exporting plugins/group/b",
            "finished plugins/a ok",
            "finished plugins/group/b ok",
            "rejected plugins/d",
            "started plugins/a",
            "started plugins/group/b",
        ]
    );

    // One at a time gives the same image as the batch.
    let again = session.build_one(Path::new("plugins/group/b"), &forge_pipeline::Quiet).unwrap();
    assert_eq!(again.built.digest(), b.built.digest());
    assert_eq!(again.built.status, forge_builder::Status::Cached);
    let ungated =
        session.build(&wanted[1..2], &BatchOptions { jobs: None, lint: false }, &forge_pipeline::Quiet);
    // Without the gate the plugin is built.
    let ungated = ungated.unwrap();
    assert_eq!(ungated[0].result.as_ref().unwrap().built.image, "localhost:5000/team/d:1.0.0");
}

#[test]
fn what_did_not_build_is_not_pushed() {
    let repo = monorepo();
    // Nothing listens on port 1: the push of the image that builds fails.
    let store = forge_pipeline::open_store(repo.path()).unwrap();
    let base = store.resolve_ref("localhost:5000/base-py").unwrap().unwrap();
    store.set_ref("127.0.0.1:1/base-py", &base).unwrap();
    let unreachable = SessionOptions { registry: "127.0.0.1:1".into(), ..options(repo.path()) };
    let session = Session::open(unreachable, &forge_pipeline::Quiet).unwrap();
    let wanted = [PathBuf::from("plugins/d"), "plugins/a".into()];
    let outcomes = session.build(&wanted, &BatchOptions::default(), &forge_pipeline::Quiet).unwrap();
    let recorder = Recorder::default();
    let pushed =
        session.publish(outcomes, &PushOptions { max_uploads: 2, chunk_size: u64::MAX }, &recorder).unwrap();
    assert_eq!(pushed.len(), 2);
    match &pushed[0].result {
        Err(e @ Error::NotBuilt { source }) => {
            assert!(pushed[0].image.is_none());
            assert_eq!(e.to_string(), "build failed");
            assert!(matches!(**source, Error::LintRejected(_)), "{source:?}");
        }
        other => panic!("plugins/d was pushed: {other:?}"),
    }
    assert_eq!(pushed[1].image.as_deref(), Some("127.0.0.1:1/team/a:1.0.0"));
    assert!(matches!(pushed[1].result, Err(Error::Registry(_))), "{:?}", pushed[1].result);
    assert_eq!(recorder.sorted(), ["pushed plugins/a false", "pushing 127.0.0.1:1/team/a:1.0.0"]);
}

#[test]
fn bad_options_fail_before_anything_is_built() {
    let repo = monorepo();
    let err = Session::open(
        SessionOptions { base_images: vec!["no-equals-sign".into()], ..options(repo.path()) },
        &forge_pipeline::Quiet,
    )
    .unwrap_err();
    assert_eq!(err.to_string(), "`no-equals-sign` is not REF=SOURCE");
    let err = forge_pipeline::select(repo.path(), &forge_pipeline::discover(repo.path()).unwrap(), "zzz")
        .unwrap_err();
    assert!(err.to_string().starts_with("no plugin `zzz` under "), "{err}");
}

#[test]
fn images_the_agent_cannot_start_fail_unless_the_rule_says_otherwise() {
    let repo = monorepo();
    // A base without `python`, under another registry name.
    let rootfs = tempfile::tempdir().unwrap();
    write(rootfs.path(), "bin/sh", "stand-in\n");
    std::fs::set_permissions(rootfs.path().join("bin/sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let store = forge_pipeline::open_store(repo.path()).unwrap();
    let base = forge_builder::image_from_rootfs(&store, rootfs.path(), 0).unwrap();
    store.set_ref("no-python.test/base-py", &base.manifest_descriptor()).unwrap();
    let session_with = |lint: LintConfig| {
        let options = SessionOptions { registry: "no-python.test".into(), lint, ..options(repo.path()) };
        Session::open(options, &forge_pipeline::Quiet).unwrap()
    };
    let plugin = Path::new("plugins/a");

    let err = session_with(LintConfig::default()).build_one(plugin, &forge_pipeline::Quiet).unwrap_err();
    match &err {
        Error::ImageRejected(rejection) => {
            assert_eq!(rejection.dockerfile, Path::new("plugins/a/Dockerfile"));
            assert!(
                err.to_string().starts_with("the agent could not start this image:\nerror[PF401]: "),
                "{err}"
            );
        }
        other => panic!("not rejected by the image checks: {other:?}"),
    }
    assert!(!repo.path().join("target/plugin-forge/images/team/a_1.0.0.tar").exists());

    let mut warn = LintConfig::default();
    warn.set(forge_lint::rules::AGENT_START, forge_lint::Level::Warn);
    let warnings = Mutex::new(Vec::new());
    let observer = |event: &Event<'_>| {
        if let Event::ImageWarnings { warnings: found, .. } = event {
            warnings.lock().unwrap().extend(found.iter().map(|d| d.rule.code));
        }
    };
    session_with(warn).build_one(plugin, &observer).unwrap();
    let warnings = warnings.into_inner().unwrap();
    assert!(!warnings.is_empty() && warnings.iter().all(|code| *code == "PF401"), "{warnings:?}");

    let mut allow = LintConfig::default();
    allow.set(forge_lint::rules::AGENT_START, forge_lint::Level::Allow);
    session_with(allow).build_one(plugin, &forge_pipeline::Quiet).unwrap();
}
