//! Data-driven lint tests. Each `test_data/<case>.txt` describes a small
//! monorepo; the test writes it to a temporary directory, lints it and
//! compares the rendered diagnostics with `test_data/<case>.expected`
//! (refresh with `UPDATE_EXPECT=1 cargo test`).
//!
//! Fixture syntax, one directive per line:
//! - `//@ plugin DIR TYPE`: a complete, valid plugin of TYPE at DIR;
//! - `//- PATH`: a file whose content is the following lines, up to the
//!   next directive (it replaces a file of the same path);
//! - `//! rm PATH`: removes a file written by an earlier directive.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use expect_test::expect_file;
use forge_lint::render::{self, HumanOptions};
use forge_lint::{lint_root, rules, Level, LintConfig, Report, Severity};

fn test_data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("test_data")
}

fn valid_plugin(files: &mut BTreeMap<String, String>, dir: &str, plugin_type: &str) {
    let name = dir.rsplit('/').next().unwrap();
    let mut add = |path: &str, content: String| {
        files.insert(format!("{dir}/{path}"), content);
    };
    add(
        "plugin_info.json",
        format!("{{\n  \"title\": \"{name}\",\n  \"description\": \"A test plugin\",\n  \"type\": \"{plugin_type}\"\n}}\n"),
    );
    add("VERSION", format!("tests/{name}:1.0.0\n"));
    add("Dockerfile", forge_scaffold::dockerfile(plugin_type.parse().unwrap()));
    add("README.md", format!("# {name}\n"));
    add("LICENSE", "Apache License 2.0\n".to_string());
    if plugin_type == "architecture" {
        add("src/train.py", "print('train')\n".to_string());
        add("src/inference.py", "print('inference')\n".to_string());
    } else {
        add("src/main.py", "print('main')\n".to_string());
    }
}

/// Reads a fixture into a map from path to content.
fn read_fixture(text: &str) -> BTreeMap<String, String> {
    let mut files = BTreeMap::new();
    let mut current: Option<(String, String)> = None;
    for line in text.split_inclusive('\n') {
        let directive = line.trim_end_matches('\n');
        if directive.starts_with("//@ ") || directive.starts_with("//- ") || directive.starts_with("//! ") {
            if let Some((path, content)) = current.take() {
                files.insert(path, content);
            }
        }
        if let Some(rest) = directive.strip_prefix("//@ plugin ") {
            let (dir, plugin_type) = rest.split_once(' ').expect("`//@ plugin DIR TYPE`");
            valid_plugin(&mut files, dir, plugin_type);
        } else if let Some(path) = directive.strip_prefix("//- ") {
            current = Some((path.to_string(), String::new()));
        } else if let Some(rest) = directive.strip_prefix("//! chmod ") {
            // Applied by `materialize` after the files are written.
            let (mode, path) = rest.split_once(' ').expect("`//! chmod MODE PATH`");
            files.insert(format!("{CHMOD}{path}"), mode.to_string());
        } else if let Some(path) = directive.strip_prefix("//! rm ") {
            assert!(files.remove(path).is_some(), "`//! rm {path}`: no such file");
        } else if let Some((_, content)) = &mut current {
            content.push_str(line);
        }
    }
    if let Some((path, content)) = current {
        files.insert(path, content);
    }
    files
}

fn materialize(files: &BTreeMap<String, String>) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir_all(dir.path().join("plugins")).unwrap();
    // The shared SDK every plugin's Dockerfile copies (lint plans the build).
    fs::create_dir_all(dir.path().join("supervisely_lib")).unwrap();
    fs::write(dir.path().join("supervisely_lib/__init__.py"), "").unwrap();
    for (path, content) in files.iter().filter(|(p, _)| !p.starts_with(CHMOD)) {
        let path = dir.path().join(path);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, content).unwrap();
    }
    for (key, mode) in files.iter().filter(|(p, _)| p.starts_with(CHMOD)) {
        let mode = u32::from_str_radix(mode, 8).expect("an octal mode");
        let path = dir.path().join(&key[CHMOD.len()..]);
        fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(mode)).unwrap();
    }
    dir
}

/// Keys of a fixture's map that are `//! chmod` directives, not files.
const CHMOD: &str = "\0chmod ";

fn render_report(report: &Report) -> String {
    let options = HumanOptions { root: Path::new(""), color: false };
    let mut out = String::new();
    for (_, d) in report.diagnostics() {
        out += &render::human(d, options);
    }
    out + &render::summary(report, options)
}

fn lint_fixture(name: &str, config: &LintConfig) -> Report {
    let text = fs::read_to_string(test_data().join(format!("{name}.txt"))).unwrap();
    let dir = materialize(&read_fixture(&text));
    lint_root(dir.path(), config).unwrap()
}

/// The fixtures, `test_data/*.txt`, sorted.
fn fixture_files() -> Vec<PathBuf> {
    let mut cases: Vec<PathBuf> = fs::read_dir(test_data())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    cases.sort();
    assert!(!cases.is_empty());
    cases
}

#[test]
fn fixtures() {
    for case in fixture_files() {
        let name = case.file_stem().unwrap().to_str().unwrap();
        let actual = render_report(&lint_fixture(name, &LintConfig::default()));
        expect_file![case.with_extension("expected")].assert_eq(&actual);
    }
}

/// Each rule has a fixture named after it whose output shows the rule.
#[test]
fn every_rule_has_a_fixture() {
    // Image rules are checked by the build (xtask's tests), not by lint.
    for rule in rules::ALL.iter().filter(|r| !rules::checked_on_image(r)) {
        let path = test_data().join(format!("{}.txt", rule.name));
        assert!(path.exists(), "no fixture {} for {}", path.display(), rule.code);
        let report = lint_fixture(rule.name, &LintConfig::default());
        assert!(
            report.diagnostics().any(|(_, d)| d.rule == *rule),
            "fixture {} does not trigger {}",
            path.display(),
            rule.code
        );
    }
}

#[test]
fn the_valid_fixture_is_clean() {
    let report = lint_fixture("valid", &LintConfig::default());
    assert_eq!(report.plugins.len(), 4);
    assert_eq!(report.diagnostics().count(), 0, "{}", render_report(&report));
}

#[test]
fn severities_can_be_overridden() {
    let mut config = LintConfig::default();
    config.set(rules::LICENSE_MISSING, Level::Deny);
    config.set(rules::README_MISSING, Level::Allow);
    config.set(rules::ENTRY_POINT_MISSING, Level::Warn);
    let report = lint_fixture("overrides", &config);
    let seen: Vec<(&str, Severity)> = report.diagnostics().map(|(_, d)| (d.rule.code, d.severity)).collect();
    assert_eq!(
        seen,
        [("PF205", Severity::Error), ("PF202", Severity::Warning)],
        "{}",
        render_report(&report)
    );
}

/// The sample plugins of this repository pass our own linter, warnings
/// included.
#[test]
fn sample_plugins_are_clean() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let report = lint_root(&root, &LintConfig::default()).unwrap();
    assert!(report.plugins.len() >= 3, "expected at least three sample plugins");
    assert_eq!(report.diagnostics().count(), 0, "{}", render_report(&report));
}

/// Well under a second for a hundred plugins (debug build included); the
/// real speed comparison belongs to `cargo xtask bench`, this only guards
/// against accidental quadratic work.
#[test]
fn a_hundred_plugins() {
    let mut files = BTreeMap::new();
    for i in 0..100 {
        valid_plugin(&mut files, &format!("plugins/group{}/p{i}", i % 7), "import");
    }
    files.insert("plugins/group1/p1/VERSION".into(), "Bad:1\n".into());
    let dir = materialize(&files);
    let report = lint_root(dir.path(), &LintConfig::default()).unwrap();
    assert_eq!(report.plugins.len(), 100);
    assert_eq!(report.count(Severity::Error), 1);
}

/// Plugins are linted in parallel; the report, its diagnostics' order and
/// the JSON lines `cargo xtask lint --format json` prints from it are
/// those of a lint on one thread, for every fixture and for a monorepo
/// where many plugins have findings and share images (whose diagnostics
/// list the others in discovery order).
#[test]
fn parallel_lint_reports_as_serial_lint_does() {
    let mut files = BTreeMap::new();
    for i in 0..40 {
        let dir = format!("plugins/group{}/p{i:02}", i % 3);
        valid_plugin(&mut files, &dir, "import");
        match i % 5 {
            0 => drop(files.insert(format!("{dir}/VERSION"), format!("tests/shared:{}\n", i % 2))),
            1 => drop(files.remove(&format!("{dir}/README.md"))),
            2 => {
                drop(files.insert(format!("{dir}/Dockerfile"), "FROM x\nCOPY missing /w\nRUN true\n".into()))
            }
            3 => drop(files.insert(format!("{dir}/plugin_info.json"), "{ not json".into())),
            _ => {}
        }
    }
    let mut roots = vec![materialize(&files)];
    roots.extend(
        fixture_files().iter().map(|case| materialize(&read_fixture(&fs::read_to_string(case).unwrap()))),
    );
    let lint_on = |threads: usize, root: &Path| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        let report = pool.install(|| lint_root(root, &LintConfig::default()).unwrap());
        let json: String = report.diagnostics().map(|(plugin, d)| render::json(plugin, d) + "\n").collect();
        (format!("{:?}", report.plugins), json)
    };
    for root in &roots {
        let serial = lint_on(1, root.path());
        for threads in [2, 5] {
            assert_eq!(lint_on(threads, root.path()), serial, "{} threads", threads);
        }
    }
    let (_, json) = lint_on(1, roots[0].path());
    for code in ["PF101", "PF204", "PF307", "PF002"] {
        assert!(json.contains(code), "the big monorepo has {code} findings:\n{json}");
    }
}

/// `lint_some` gives a picked plugin the report `lint_root` gives it, and an
/// unpicked one only the findings of the rule across plugins (two plugins
/// with one image), which still sees the unpicked plugins' images.
#[test]
fn lint_some_reports_the_picked_plugins_as_lint_root_does() {
    let mut files = BTreeMap::new();
    for i in 0..12 {
        let dir = format!("plugins/p{i:02}");
        valid_plugin(&mut files, &dir, "import");
        match i % 4 {
            0 => drop(files.insert(format!("{dir}/VERSION"), "tests/shared:1\n".into())),
            1 => drop(files.remove(&format!("{dir}/README.md"))),
            2 => drop(files.insert(format!("{dir}/plugin_info.json"), "{ not json".into())),
            _ => {}
        }
    }
    let root = materialize(&files);
    let all = lint_root(root.path(), &LintConfig::default()).unwrap();
    let picked = |dir: &Path| dir.to_string_lossy().ends_with(['1', '4', '7']);
    let some = forge_lint::lint_some(root.path(), &LintConfig::default(), &picked).unwrap();
    assert_eq!(some.plugins.len(), all.plugins.len());
    let mut duplicates = 0;
    for (full, part) in all.plugins.iter().zip(&some.plugins) {
        assert_eq!(full.dir, part.dir);
        if picked(&full.dir) {
            assert_eq!(part.diagnostics, full.diagnostics, "{}", full.dir.display());
        } else {
            let across: Vec<_> = full
                .diagnostics
                .iter()
                .filter(|d| d.rule.code == rules::DUPLICATE_IMAGE.code)
                .cloned()
                .collect();
            duplicates += across.len();
            assert_eq!(part.diagnostics, across, "{}", full.dir.display());
        }
    }
    assert!(duplicates > 0, "unpicked plugins share an image: {all:?}");
}

/// Lints `root` in a thread: a reader that blocks on a FIFO fails the test
/// instead of hanging it.
fn lint_within_seconds(root: &Path) -> Report {
    let root = root.to_path_buf();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(lint_root(&root, &LintConfig::default()).unwrap()));
    rx.recv_timeout(std::time::Duration::from_secs(60)).expect("lint hung on a special file")
}

fn mkfifo(path: &Path) {
    fs::remove_file(path).ok();
    let status = std::process::Command::new("mkfifo").arg(path).status().unwrap();
    assert!(status.success());
}

/// Manifest files that are FIFOs, devices or huge are refused by name,
/// without hanging or reading without end.
#[test]
fn special_and_huge_manifest_files_are_refused() {
    let mut files = BTreeMap::new();
    for p in ["zero", "fifo", "docker", "readme", "big"] {
        valid_plugin(&mut files, &format!("plugins/{p}"), "import");
    }
    let dir = materialize(&files);
    let plugins = dir.path().join("plugins");
    fs::remove_file(plugins.join("zero/VERSION")).unwrap();
    std::os::unix::fs::symlink("/dev/zero", plugins.join("zero/VERSION")).unwrap();
    mkfifo(&plugins.join("fifo/plugin_info.json"));
    mkfifo(&plugins.join("docker/Dockerfile"));
    mkfifo(&plugins.join("readme/README.md"));
    let big =
        fs::File::options().write(true).truncate(true).open(plugins.join("big/plugin_info.json")).unwrap();
    big.set_len((1 << 20) + 1).unwrap();
    let report = lint_within_seconds(dir.path());
    let seen: Vec<String> =
        report.diagnostics().map(|(_, d)| format!("{:?} {}", d.file, d.message)).collect();
    let expected = [
        "\"plugins/big/plugin_info.json\") this file is larger than 1 MiB, the limit for this file",
        "\"plugins/docker/Dockerfile\") this file is a FIFO (named pipe), not a regular file",
        "\"plugins/fifo/plugin_info.json\") this file is a FIFO (named pipe), not a regular file",
        "\"plugins/readme/README.md\") this file is a FIFO (named pipe), not a regular file",
        "\"plugins/zero/VERSION\") this file is a character device, not a regular file",
    ];
    for message in expected {
        assert!(
            seen.iter().any(|s| s.ends_with(message) && s.starts_with("Some(")),
            "no `{message}` in {seen:#?}"
        );
    }
}

/// A path that is not UTF-8 is printed lossily in JSON, never replaced by
/// an error object.
#[test]
fn non_utf8_paths_are_printed_lossily_in_json() {
    use std::os::unix::ffi::OsStrExt;
    let mut files = BTreeMap::new();
    valid_plugin(&mut files, "plugins/p", "import");
    let dir = materialize(&files);
    let odd = dir.path().join("plugins/p/src").join(std::ffi::OsStr::from_bytes(b"c\xff"));
    fs::create_dir_all(&odd).unwrap();
    fs::write(odd.join(".env"), "K=v\n").unwrap();
    let report = lint_root(dir.path(), &LintConfig::default()).unwrap();
    let lines: Vec<String> = report.diagnostics().map(|(plugin, d)| render::json(plugin, d)).collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    let value: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(value["code"], "PF206", "{value}");
    assert_eq!(value["file"], "plugins/p/src/c\u{FFFD}/.env", "{value}");
}
