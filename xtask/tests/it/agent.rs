//! Images as the Supervisely agent starts them: the build's check of what
//! its command needs (rule PF401), and `cargo xtask run` in the agent's
//! way (task directory, config, results).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use serde_json::Value;

use crate::{write_tree, xtask};

const DOCKERFILE: &str = "ARG REGISTRY\nARG TAG\nFROM ${REGISTRY}/base-py:${TAG}\nARG MODULE_PATH\n\
COPY ${MODULE_PATH} /workdir\nENV PYTHONPATH=/workdir:/workdir/src:/workdir/supervisely_lib/worker_proto\n";

#[test]
fn an_image_without_python_fails_the_build_with_pf401() {
    let repo = write_tree(&[
        ("plugins/p/plugin_info.json", r#"{"title": "t", "description": "d", "type": "architecture"}"#),
        ("plugins/p/VERSION", "team/p:1.0.0\n"),
        ("plugins/p/src/train.py", "print(1)\n"),
        ("plugins/p/src/inference.py", "print(1)\n"),
        ("plugins/p/Dockerfile", DOCKERFILE),
    ]);
    // A base with a shell and python3, but no `python`.
    let rootfs = write_tree(&[("bin/sh", "stand-in\n"), ("usr/bin/python3", "stand-in\n")]);
    for exe in ["bin/sh", "usr/bin/python3"] {
        fs::set_permissions(rootfs.path().join(exe), fs::Permissions::from_mode(0o755)).unwrap();
    }
    let root = repo.path().to_str().unwrap();
    let out = xtask(
        repo.path(),
        &["image", "from-rootfs", rootfs.path().to_str().unwrap(), "localhost:5000/base-py", "--root", root],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let out = xtask(repo.path(), &["build", "p", "--root", root]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(
            "error[PF401]: localhost:5000/team/p:1.0.0: the image has no `python` on its PATH \
             (/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin), only `python3`"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("--> plugins/p/Dockerfile"), "{stderr}");
    assert!(stderr.contains("help: install Debian's `python-is-python3`"), "{stderr}");
    assert!(!repo.path().join("target/plugin-forge/images/team/p_1.0.0.tar").exists());

    // As a warning the image is built; allowed, nothing is said.
    let out = xtask(repo.path(), &["build", "p", "--root", root, "-W", "PF401"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("warning[PF401]"), "{stderr}");
    let out = xtask(repo.path(), &["build", "p", "--root", root, "-A", "agent-start"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("PF401"), "{stderr}");
}

/// What one `cargo xtask run` did.
pub(crate) struct Run {
    pub(crate) code: Option<i32>,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl Run {
    /// The JSON log records of stdout (other lines skipped).
    pub(crate) fn records(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(Value::is_object)
            .collect()
    }

    /// The record with this message.
    #[track_caller]
    pub(crate) fn record(&self, message: &str) -> Value {
        self.records().into_iter().find(|r| r["message"] == message).unwrap_or_else(|| {
            panic!("no record {message:?}\nstdout:\n{}\nstderr:\n{}", self.stdout, self.stderr)
        })
    }

    #[track_caller]
    pub(crate) fn ok(self) -> Run {
        assert_eq!(self.code, Some(0), "stdout:\n{}\nstderr:\n{}", self.stdout, self.stderr);
        self
    }
}

/// `cargo xtask run PLUGIN --root REPO ARGS...`.
pub(crate) fn run(repo: &Path, plugin: &str, args: &[&str]) -> Run {
    let mut argv = vec!["run", plugin, "--root", repo.to_str().unwrap()];
    argv.extend(args);
    let out = xtask(repo, &argv);
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Relative paths of the files under `dir`, sorted.
pub(crate) fn files(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                out.push(path.strip_prefix(root).unwrap().display().to_string());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

pub(crate) fn json(path: &Path) -> Value {
    serde_json::from_str(&fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
        .unwrap()
}

/// Runs `plugin` with `args` and its results in a fresh directory outside
/// the monorepo; returns the run and that directory.
fn run_to(repo: &Path, plugin: &str, args: &[&str]) -> (Run, tempfile::TempDir) {
    let results = tempfile::tempdir().unwrap();
    let mut argv = args.to_vec();
    argv.extend(["--results", results.path().to_str().unwrap(), "--format", "json"]);
    (run(repo, plugin, &argv).ok(), results)
}

/// Every sample plugin, every mode and predefined config, on its demo
/// data: the results, by content.
pub(crate) fn every_mode_and_config_gives_its_results(repo: &Path) {
    let csv_demo = repo.join("plugins/import/csv-bboxes/demo");
    let csv_demo = csv_demo.to_str().unwrap();
    for (title, dataset) in
        [("Skip invalid rows", "ds0"), ("Strict: stop on the first invalid row", "strict")]
    {
        let (out, results) = run_to(repo, "csv-bboxes", &["--config", title, "--data", csv_demo]);
        let mut expected: Vec<String> = (1..=3)
            .map(|i| format!("{dataset}/ann/street_00{i}.jpg.json"))
            .chain(["meta.json".into()])
            .collect();
        expected.sort();
        assert_eq!(files(results.path()), expected);
        let meta = json(&results.path().join("meta.json"));
        let classes: Vec<&str> =
            meta["classes"].as_array().unwrap().iter().map(|c| c["title"].as_str().unwrap()).collect();
        assert_eq!(classes, ["bicycle", "car", "person"]);
        let ann = json(&results.path().join(format!("{dataset}/ann/street_001.jpg.json")));
        assert_eq!(ann["size"], serde_json::json!({"height": 480, "width": 640}));
        assert_eq!(ann["objects"][0]["classTitle"], "car");
        assert_eq!(ann["objects"][0]["points"]["exterior"], serde_json::json!([[12, 40], [180, 150]]));
        let done = out.record("import finished");
        assert_eq!(done["event_type"], "EventType.IMPORT_APPLIED");
        assert_eq!(done["project"], "street-boxes");
    }

    let nn = repo.join("plugins/nn/tiny-classifier/demo");
    let (data, model) = (nn.join("data"), nn.join("model"));
    let (data, model) = (data.to_str().unwrap(), model.to_str().unwrap());
    for (title, metric) in
        [("Train (euclidean distance)", "euclidean"), ("Train (manhattan distance)", "manhattan")]
    {
        let (out, results) = run_to(repo, "tiny-classifier", &["--config", title, "--data", data]);
        assert_eq!(files(results.path()), ["checkpoint_000/config.json", "checkpoint_000/model.json"]);
        let trained = json(&results.path().join("checkpoint_000/model.json"));
        assert_eq!(trained["metric"], metric);
        assert_eq!(trained["counts"], serde_json::json!({"forest": 2, "sea": 2, "sunset": 3}));
        let checkpoint = out.record("checkpoint");
        assert_eq!(checkpoint["event_type"], "EventType.CHECKPOINT");
        assert_eq!(checkpoint["subdir"], "checkpoint_000");
    }
    for (title, snow) in
        [("Inference", serde_json::json!("sea")), ("Inference, rejecting far samples", Value::Null)]
    {
        let (out, results) =
            run_to(repo, "tiny-classifier", &["--config", title, "--data", data, "--model", model]);
        assert_eq!(files(results.path()), ["predictions.json"]);
        let labels: Vec<Value> = json(&results.path().join("predictions.json"))
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["label"].clone())
            .collect();
        assert_eq!(labels, [serde_json::json!("sea"), "sunset".into(), "forest".into(), snow]);
        assert_eq!(out.record("model applied")["event_type"], "EventType.MODEL_APPLIED");
    }
    // Deploy answers requests on stdin (none here: the agent opens none) and writes no results.
    let (out, results) = run_to(repo, "tiny-classifier", &["--mode", "deploy", "--model", model]);
    assert_eq!(
        out.record("model deployed; reading requests from stdin")["event_type"],
        "EventType.TASK_DEPLOYED"
    );
    assert_eq!(out.record("deploy stopped")["answered"], 0);
    assert_eq!(files(results.path()), Vec::<String>::new());

    let stats_demo = repo.join("plugins/tools/dataset-stats/demo");
    let (out, results) = run_to(repo, "dataset-stats", &["--data", stats_demo.to_str().unwrap()]);
    assert_eq!(files(results.path()), ["stats.json"]);
    let stats = json(&results.path().join("stats.json"));
    assert_eq!(stats["streets"]["total"], serde_json::json!({"bicycle": 0, "car": 2, "person": 2}));
    assert_eq!(stats["streets"]["datasets"]["day"]["images"], 2);
    assert_eq!(out.record("project stats")["datasets"], 2);

    // Natively installed packages at work: jq checks the annotations,
    // python-slugify and PyYAML write the catalog.
    let catalog_demo = repo.join("plugins/tools/class-catalog/demo");
    let (out, results) = run_to(repo, "class-catalog", &["--data", catalog_demo.to_str().unwrap()]);
    assert_eq!(files(results.path()), ["catalog.yaml"]);
    let catalog = fs::read_to_string(results.path().join("catalog.yaml")).unwrap();
    assert!(catalog.contains("slug: car") && catalog.contains("invalid_annotations: []"), "{catalog}");
    assert_eq!(out.record("catalog")["classes"], 3);
}

/// The task directory and environment, as the agent makes them; errors
/// that name what is wrong; the readable display.
pub(crate) fn runs_look_like_the_agents(repo: &Path) {
    let script =
        "cat /sly_task_data/task_config.json; ls /sly_task_data; echo HOST_TASK_DIR=$HOST_TASK_DIR; \
                  echo LOG_LEVEL=$LOG_LEVEL PIP=$PIP_ROOT_USER_ACTION FOO=$FOO";
    let out =
        run(repo, "tiny-classifier", &["--config", "Inference", "-e", "FOO=bar", "--", "sh", "-c", script])
            .ok();
    assert!(out.stdout.starts_with("{\n  \"max_distance\": null\n}\n"), "{}", out.stdout);
    assert!(
        out.stdout.contains("data\nmodel\nresults\ntask_config.json\ntask_settings.json\n"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("LOG_LEVEL=DEBUG PIP=ignore FOO=bar"), "{}", out.stdout);
    let results_line = out.stderr.lines().find_map(|l| l.strip_prefix("results in ")).unwrap();
    let runs = repo.join("target/plugin-forge/runs/tiny-classifier");
    assert!(Path::new(results_line).starts_with(&runs), "{results_line}");
    let task_dir = Path::new(results_line).parent().unwrap();
    assert!(out.stdout.contains(&format!("HOST_TASK_DIR={}", task_dir.display())), "{}", out.stdout);

    // --entrypoint with its arguments, --config-file, --env-file (later -e wins).
    let files = tempfile::tempdir().unwrap();
    let (config, env) = (files.path().join("config.json"), files.path().join("env"));
    fs::write(&config, r#"{"max_distance": 0.5}"#).unwrap();
    fs::write(&env, "# comment\nFROM_FILE=yes\n\nBOTH=file\n").unwrap();
    let out = run(
        repo,
        "tiny-classifier",
        &[
            "--mode",
            "inference",
            "--config-file",
            config.to_str().unwrap(),
            "--env-file",
            env.to_str().unwrap(),
            "-e",
            "BOTH=flag",
            "--entrypoint",
            "sh",
            "--",
            "-c",
            "cat /sly_task_data/task_config.json; echo $FROM_FILE $BOTH",
        ],
    )
    .ok();
    assert_eq!(out.stdout, "{\n  \"max_distance\": 0.5\n}\nyes flag\n", "{}", out.stderr);

    // The human display: level, aligned message, fields, events.
    let csv_demo = repo.join("plugins/import/csv-bboxes/demo");
    let out =
        run(repo, "csv-bboxes", &["--config", "Skip invalid rows", "--data", csv_demo.to_str().unwrap()])
            .ok();
    let line = out.stdout.lines().find(|l| l.contains("import finished")).unwrap();
    assert!(
        line.ends_with("INFO  [IMPORT_APPLIED] import finished dataset=ds0 project=street-boxes"),
        "{line}"
    );

    let out = run(repo, "csv-bboxes", &["--data", "/nonexistent/demo"]);
    assert_eq!(out.code, Some(1));
    assert_eq!(out.stderr.trim(), "error: --data /nonexistent/demo: no such directory");
    let out = run(repo, "csv-bboxes", &["--config", "Nope"]);
    assert_eq!(out.code, Some(1));
    assert!(out.stderr.contains("no predefined run config titled `Nope`; the titles are: `Skip invalid rows`, `Strict: stop on the first invalid row`"), "{}", out.stderr);
    let out = run(repo, "csv-bboxes", &["--mode", "train"]);
    assert!(out.stderr.contains("plugin has no mode `train`; its MODES are: main"), "{}", out.stderr);
    // The program's exit status is the run's.
    assert_eq!(run(repo, "csv-bboxes", &["--", "sh", "-c", "exit 7"]).code, Some(7));
}

/// Writes into the image's files (new files, files changed in place,
/// deletions) stay in their run, on the overlay and on a copy.
pub(crate) fn writes_do_not_reach_the_next_run(repo: &Path) {
    for layer in ["overlay", "copy"] {
        let write =
            "echo leaked > /etc/leak && echo changed >> /etc/os-release && rm /etc/passwd && echo done";
        let out = run(repo, "dataset-stats", &["--layer", layer, "--", "sh", "-c", write]).ok();
        assert_eq!(out.stdout, "done\n", "{layer}: {}", out.stderr);
        let check =
            "ls /etc/leak 2>&1; case $(cat /etc/os-release) in *changed*) echo 1;; *) echo 0;; esac; \
                     test -f /etc/passwd && echo passwd";
        let out = run(repo, "dataset-stats", &["--layer", layer, "--", "sh", "-c", check]);
        assert_eq!(
            out.stdout, "ls: cannot access '/etc/leak': No such file or directory\n0\npasswd\n",
            "{layer}: {}",
            out.stderr
        );
    }
    // Nothing is left of the runs' layers.
    let runs = repo.join("target/plugin-forge/roots/.runs");
    assert_eq!(fs::read_dir(&runs).unwrap().count(), 0);
}

/// The agent's `docker run`, in a real engine, against our run: the same
/// results for every sample plugin and mode.
pub(crate) fn docker_gives_the_same_results(repo: &Path, engine: &forge_testkit::Dockerd) {
    let images = repo.join("target/plugin-forge/images/supervisely");
    for tarball in [
        "import-csv-bboxes_1.2.0.tar",
        "nn-tiny-classifier_0.3.1.tar",
        "dataset-stats_0.1.0.tar",
        "class-catalog_0.1.0.tar",
    ] {
        engine.docker(&["load", "-i", images.join(tarball).to_str().unwrap()]).unwrap();
    }
    let demo = |p: &str| repo.join("plugins").join(p).to_str().unwrap().to_owned();
    let cases: [(&str, &str, &str, &[&str]); 5] = [
        (
            "csv-bboxes",
            "import-csv-bboxes:1.2.0",
            "main",
            &["--config", "Skip invalid rows", "--data", &demo("import/csv-bboxes/demo")],
        ),
        (
            "tiny-classifier",
            "nn-tiny-classifier:0.3.1",
            "train",
            &["--config", "Train (manhattan distance)", "--data", &demo("nn/tiny-classifier/demo/data")],
        ),
        (
            "tiny-classifier",
            "nn-tiny-classifier:0.3.1",
            "inference",
            &[
                "--config",
                "Inference",
                "--data",
                &demo("nn/tiny-classifier/demo/data"),
                "--model",
                &demo("nn/tiny-classifier/demo/model"),
            ],
        ),
        ("dataset-stats", "dataset-stats:0.1.0", "main", &["--data", &demo("tools/dataset-stats/demo")]),
        ("class-catalog", "class-catalog:0.1.0", "main", &["--data", &demo("tools/class-catalog/demo")]),
    ];
    for (plugin, image, mode, args) in cases {
        let (ours, our_results) = run_to(repo, plugin, args);
        let our_task = ours.stderr.lines().find_map(|l| l.strip_prefix("task directory ")).unwrap();

        // The agent's task directory: its config files, its subdirectories.
        let task = tempfile::tempdir().unwrap();
        for name in ["task_config.json", "task_settings.json"] {
            fs::copy(Path::new(our_task).join(name), task.path().join(name)).unwrap();
        }
        for dir in ["data", "model", "results", "tmp"] {
            fs::create_dir(task.path().join(dir)).unwrap();
        }
        let task_dir = task.path().to_str().unwrap();
        let mut argv: Vec<String> =
            ["run", "--rm", "--network", "none", "--entrypoint", "sh"].map(String::from).to_vec();
        argv.extend(["-v".into(), format!("{task_dir}:/sly_task_data")]);
        for (flag, dest) in [("--data", "data"), ("--model", "model")] {
            if let Some(i) = args.iter().position(|a| *a == flag) {
                argv.extend(["-v".into(), format!("{}:/sly_task_data/{dest}:ro", args[i + 1])]);
            }
        }
        // task_dockerized.py's spawn_container, in its order.
        let env = [
            "LOG_LEVEL=DEBUG".to_owned(),
            "LANG=C.UTF-8".into(),
            "PYTHONUNBUFFERED=1".into(),
            "HTTP_PROXY=".into(),
            "HTTPS_PROXY=".into(),
            format!("HOST_TASK_DIR={task_dir}"),
            "NO_PROXY=".into(),
            "http_proxy=".into(),
            "https_proxy=".into(),
            "no_proxy=".into(),
            "PIP_ROOT_USER_ACTION=ignore".into(),
        ];
        for e in env {
            argv.extend(["-e".into(), e]);
        }
        argv.extend([
            format!("localhost:5000/supervisely/{image}"),
            "-c".into(),
            format!("python -u /workdir/src/{mode}.py"),
        ]);
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        match engine.docker(&argv) {
            Ok(_) => {}
            Err(e) if e.contains("cgroup") || e.contains("OCI runtime") => {
                eprintln!(
                    "skipping the docker comparison: this machine's engine cannot start containers: {e}"
                );
                return;
            }
            Err(e) => panic!("docker run of {image} {mode} failed: {e}"),
        }
        let docker_results = task.path().join("results");
        assert_eq!(files(&docker_results), files(our_results.path()), "{plugin} {mode}");
        assert!(!files(&docker_results).is_empty(), "{plugin} {mode}");
        for file in files(&docker_results) {
            assert_eq!(
                fs::read(docker_results.join(&file)).unwrap(),
                fs::read(our_results.path().join(&file)).unwrap(),
                "{plugin} {mode}: {file}"
            );
        }
    }
}
