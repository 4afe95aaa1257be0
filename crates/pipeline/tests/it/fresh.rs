//! Whole-plugin up-to-date checks: a second run of unchanged plugins
//! builds nothing and reports what the first did; every kind of change
//! rebuilds exactly the plugins it touches, into the images a run
//! without any cache makes; a file changed while its plugin builds leaves
//! no record behind.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use forge_input::StatStamp;
use forge_oci::Digest;
use forge_pipeline::{BatchOptions, Event, Observer, Quiet, Session, SessionOptions};

use crate::{monorepo, options, write};

const PLUGINS: [&str; 3] = ["plugins/a", "plugins/c", "plugins/group/b"];

/// [`monorepo`], and `plugins/c`, which copies `shared/` too, in a
/// context that leaves out `*.tmp`.
fn repo() -> tempfile::TempDir {
    let repo = monorepo();
    let root = repo.path();
    crate::plugin(root, "plugins/c", "team/c:1.0.0\n", true);
    let dockerfile = format!("{}COPY shared /workdir/shared\n", crate::DOCKERFILE);
    write(root, "plugins/c/Dockerfile", &dockerfile);
    write(root, "shared/lib.py", "def f():\n    return 1\n");
    write(root, ".dockerignore", "**/*.tmp\n");
    repo
}

/// Digest and SBOM by plugin.
type Images = BTreeMap<String, (String, String)>;

/// The plugins a run found up to date, and the events for `inner`.
struct UpToDate<'a>(Mutex<Vec<String>>, &'a dyn Observer);

impl Observer for UpToDate<'_> {
    fn event(&self, event: &Event<'_>) {
        if let Event::UpToDate { plugin } = event {
            self.0.lock().unwrap().push(plugin.display().to_string());
        }
        self.1.event(event);
    }
}

/// Builds `PLUGINS` with `options`: their images, and those up to date.
fn build_with(options: SessionOptions, observer: &dyn Observer) -> (Images, Vec<String>) {
    let root = options.root.clone();
    let session = Session::open(options, &Quiet).unwrap();
    let plugins: Vec<PathBuf> = PLUGINS.iter().map(PathBuf::from).collect();
    let seen = UpToDate(Mutex::default(), observer);
    let outcomes = session.build(&plugins, &BatchOptions { jobs: Some(2), lint: true }, &seen).unwrap();
    let mut found = BTreeMap::new();
    for outcome in outcomes {
        let artifact = outcome.result.unwrap_or_else(|e| panic!("{}: {e}", outcome.plugin.display()));
        let sbom = artifact.attestations[0].sbom.as_ref().unwrap().descriptor.digest().to_string();
        let tarball = artifact.tarball.unwrap();
        assert!(root.join(&tarball).is_file() || tarball.is_file(), "{}", tarball.display());
        found.insert(outcome.plugin.display().to_string(), (artifact.built.digest().to_string(), sbom));
    }
    let mut up_to_date = seen.0.into_inner().unwrap();
    up_to_date.sort();
    (found, up_to_date)
}

fn build(root: &Path) -> (Images, Vec<String>) {
    build_with(options(root), &Quiet)
}

/// The plugins of `PLUGINS` a run built (were not up to date).
fn built(up_to_date: &[String]) -> Vec<&'static str> {
    PLUGINS.iter().copied().filter(|p| !up_to_date.iter().any(|u| u == p)).collect()
}

/// What a run that reads and keeps no records and no layer cache makes.
fn clean_build(root: &Path) -> Images {
    let mut options = options(root);
    options.extras.no_cache = true;
    let (images, up_to_date) = build_with(options, &Quiet);
    assert!(up_to_date.is_empty(), "--no-cache found {up_to_date:?} up to date");
    images
}

/// The stamp of each plugin's record file.
fn records(root: &Path) -> BTreeMap<&'static str, Option<StatStamp>> {
    let cache = forge_pipeline::store_dir(root).join("cache");
    PLUGINS
        .iter()
        .map(|p| (*p, StatStamp::stat(&cache.join(Digest::of(format!("fresh/v1/{p}").as_bytes()).hex()))))
        .collect()
}

#[test]
fn an_unchanged_plugin_is_not_built_again_and_its_outcome_is_the_same() {
    let repo = repo();
    let root = repo.path();
    let (first, up_to_date) = build(root);
    assert!(up_to_date.is_empty());
    let stamps = records(root);
    assert!(stamps.values().all(Option::is_some), "{stamps:?}");
    let index = root.join("target/plugin-forge/oci/index.json");
    let index_before = StatStamp::stat(&index);
    assert_eq!(build(root), (first.clone(), PLUGINS.map(String::from).to_vec()));
    // Nothing was built: no ref set again, no record written.
    assert_eq!(StatStamp::stat(&index), index_before);
    assert_eq!(records(root), stamps);
    assert_eq!(clean_build(root), first);
    // A deleted tarball comes back from an up-to-date plugin.
    let tarball = root.join("target/plugin-forge/images/team/a_1.0.0.tar");
    std::fs::remove_file(&tarball).unwrap();
    assert_eq!(build(root), (first, PLUGINS.map(String::from).to_vec()));
    assert!(tarball.is_file());
}

/// What is changed, how, and the plugins that must be built again.
type Change = (&'static str, Box<dyn Fn(&Path)>, Vec<&'static str>);

#[test]
fn each_change_rebuilds_the_plugins_it_touches_into_what_a_clean_run_makes() {
    let repo = repo();
    let root = repo.path().to_path_buf();
    build(&root);
    let a = "plugins/a";
    let all = PLUGINS.to_vec();
    let set_mtime = |path: &Path, time: SystemTime| {
        std::fs::File::options().write(true).open(path).unwrap().set_modified(time).unwrap();
    };
    let changes: Vec<Change> = vec![
        ("an edited source", Box::new(|r| write(r, "plugins/a/src/main.py", "print(2)\n")), vec![a]),
        ("a new file", Box::new(|r| write(r, "plugins/a/src/util.py", "x = 1\n")), vec![a]),
        (
            "a removed file",
            Box::new(|r| std::fs::remove_file(r.join("plugins/a/src/util.py")).unwrap()),
            vec![a],
        ),
        (
            "a mode",
            Box::new(|r| {
                let p = r.join("plugins/a/src/main.py");
                std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
            }),
            vec![a],
        ),
        (
            "a symlink",
            Box::new(|r| std::os::unix::fs::symlink("main.py", r.join("plugins/a/src/l")).unwrap()),
            vec![a],
        ),
        (
            "a symlink pointed elsewhere",
            Box::new(|r| {
                std::fs::remove_file(r.join("plugins/a/src/l")).unwrap();
                std::os::unix::fs::symlink("gone.py", r.join("plugins/a/src/l")).unwrap();
            }),
            vec![a],
        ),
        (
            "the same size and mtime, other bytes",
            Box::new(move |r| {
                let p = r.join("plugins/group/b/src/main.py");
                let mtime = std::fs::metadata(&p).unwrap().modified().unwrap();
                write(r, "plugins/group/b/src/main.py", "print(9)\n");
                set_mtime(&p, mtime);
            }),
            vec!["plugins/group/b"],
        ),
        (
            "a shared file",
            Box::new(|r| write(r, "shared/lib.py", "def f():\n    return 2\n")),
            vec!["plugins/c"],
        ),
        ("a file the context leaves out", Box::new(|r| write(r, "shared/notes.tmp", "x\n")), vec![]),
        ("a .dockerignore", Box::new(|r| write(r, ".dockerignore", "**/*.tmp\n**/*.pyc\n")), all.clone()),
        (
            "the base image",
            Box::new(|r| {
                let store = forge_pipeline::open_store(r).unwrap();
                let rootfs = tempfile::tempdir().unwrap();
                for exe in ["bin/sh", "usr/bin/python", "usr/bin/other"] {
                    write(rootfs.path(), exe, "stand-in\n");
                    let mode = std::fs::Permissions::from_mode(0o755);
                    std::fs::set_permissions(rootfs.path().join(exe), mode).unwrap();
                }
                let base = forge_builder::image_from_rootfs(&store, rootfs.path(), 0).unwrap();
                store.set_ref("localhost:5000/base-py", &base.manifest_descriptor()).unwrap();
            }),
            all.clone(),
        ),
        ("nothing", Box::new(|_| {}), vec![]),
    ];
    for (what, change, expected) in changes {
        let (digests, up_to_date) = build(&root);
        assert_eq!(up_to_date.len(), PLUGINS.len(), "{what}: all up to date before the change");
        change(&root);
        // Changes within a second of the build must be seen too.
        let (after, up_to_date) = build(&root);
        assert_eq!(built(&up_to_date), expected, "{what}");
        assert_eq!(after, clean_build(&root), "{what}");
        if !expected.is_empty() && what != "a .dockerignore" {
            assert_ne!(after, digests, "{what}: the change should change an image");
        }
    }
}

/// Changes a plugin's source when its image is made and about to be
/// exported: after the build read it.
struct EditWhileExporting(PathBuf);

impl Observer for EditWhileExporting {
    fn event(&self, event: &Event<'_>) {
        if let Event::Exporting { plugin } = event {
            if *plugin == Path::new("plugins/a") {
                std::thread::sleep(Duration::from_millis(5));
                write(&self.0, "plugins/a/src/main.py", "print('edited while built')\n");
            }
        }
    }
}

#[test]
fn a_file_changed_while_its_plugin_builds_leaves_no_record() {
    let repo = repo();
    let root = repo.path();
    let (first, _) = build_with(options(root), &EditWhileExporting(root.to_path_buf()));
    let stamps = records(root);
    assert!(stamps["plugins/a"].is_none(), "a record of what was read before the edit");
    assert!(stamps["plugins/c"].is_some() && stamps["plugins/group/b"].is_some());
    // The next run builds it from what is there now.
    let (next, up_to_date) = build(root);
    assert_eq!(built(&up_to_date), ["plugins/a"]);
    assert_ne!(next["plugins/a"], first["plugins/a"]);
    assert_eq!(next, clean_build(root));
    assert!(records(root).values().all(Option::is_some));
}

#[test]
fn a_stale_plugin_taking_the_image_of_a_fresh_one_fails_both_at_the_gate() {
    let repo = repo();
    let root = repo.path();
    build(root);
    write(root, "plugins/c/VERSION", "team/a:1.0.0\n");
    let session = Session::open(options(root), &Quiet).unwrap();
    let plugins: Vec<PathBuf> = PLUGINS.iter().map(PathBuf::from).collect();
    let outcomes = session.build(&plugins, &BatchOptions { jobs: Some(2), lint: true }, &Quiet).unwrap();
    let failed: Vec<String> = outcomes
        .iter()
        .filter_map(|o| match &o.result {
            Err(forge_pipeline::Error::LintRejected(why)) => {
                Some(format!("{} {}", o.plugin.display(), why.code))
            }
            _ => None,
        })
        .collect();
    assert_eq!(failed, ["plugins/a PF002", "plugins/c PF002"]);
    assert!(outcomes.iter().any(|o| o.plugin == Path::new("plugins/group/b") && o.result.is_ok()));
}

#[test]
fn the_same_options_given_again_keep_plugins_fresh() {
    let repo = repo();
    let root = repo.path();
    // Built anew for each run, as each process parses its flags.
    let with_levels = || {
        let mut options = options(root);
        for rule in [forge_lint::rules::UNKNOWN_PLUGIN_TYPE, forge_lint::rules::VERSION_MISSING] {
            options.lint.set(rule, forge_lint::Level::Warn);
        }
        options.lint.set(forge_lint::rules::AGENT_START, forge_lint::Level::Deny);
        options.extras.build_args.insert("B".into(), "2".into());
        options.extras.build_args.insert("A".into(), "1".into());
        options
    };
    let (first, _) = build_with(with_levels(), &Quiet);
    for _ in 0..3 {
        let (again, up_to_date) = build_with(with_levels(), &Quiet);
        assert_eq!(again, first);
        assert!(built(&up_to_date).is_empty(), "built again: {:?}", built(&up_to_date));
    }
    // Other options are another key: built again (into the same images).
    let (other, up_to_date) = build(root);
    assert_eq!(other, first);
    assert!(up_to_date.is_empty());
}

#[test]
fn a_plugin_from_scratch_stays_fresh() {
    let repo = monorepo();
    let root = repo.path();
    crate::plugin(root, "plugins/s", "team/s:1.0.0\n", true);
    let dockerfile = "FROM scratch\nARG MODULE_PATH\nCOPY ${MODULE_PATH} /workdir\nENV PYTHONPATH=/workdir\n";
    write(root, "plugins/s/Dockerfile", dockerfile);
    let run = || {
        let mut options = options(root);
        // No `sh` or `python` in it: allowed here.
        options.lint.set(forge_lint::rules::AGENT_START, forge_lint::Level::Allow);
        let session = Session::open(options, &Quiet).unwrap();
        let plugins = [PathBuf::from("plugins/s")];
        let seen = UpToDate(Mutex::default(), &Quiet);
        let outcome = session.build(&plugins, &BatchOptions::default(), &seen).unwrap().remove(0);
        (outcome.result.unwrap().built.digest().to_string(), seen.0.into_inner().unwrap())
    };
    let (first, up_to_date) = run();
    assert!(up_to_date.is_empty());
    assert_eq!(run(), (first, vec!["plugins/s".to_string()]));
}
