//! End to end on a fresh copy of this repository: the Python base image
//! from Debian packages (pinned by the committed lock; `.deb` files come
//! from the archive or the cache), every sample plugin built on it and run
//! in the sandbox, their archive read by skopeo, Python and `docker load`,
//! and one image loaded and run in a real Docker engine.

use std::path::Path;

use forge_testkit::{require_tool, Dockerd};

use crate::{copy_dir, ok, project_root, xtask};

#[test]
fn sample_plugins_build_on_the_debian_base_and_run() {
    if !(require_tool("bwrap") && require_tool("gpgv")) {
        return;
    }
    let repo = tempfile::tempdir().unwrap();
    for part in ["plugins", "supervisely_lib", "base-images"] {
        copy_dir(&project_root().join(part), &repo.path().join(part));
    }
    let root = repo.path().to_str().unwrap();

    // build-all builds the missing base image by itself; the tarballs, and
    // one archive of every image.
    let archive = repo.path().join("dist/plugins.tar");
    let out = xtask(
        repo.path(),
        &[
            "build-all",
            "--root",
            root,
            "--tarballs",
            "--archive",
            archive.to_str().unwrap(),
            "--format",
            "json",
        ],
    );
    let lines = ok(&out);
    assert_eq!(lines.lines().count(), 5, "{lines}");
    assert!(lines.lines().all(|l| l.contains("\"status\":\"built\"")), "{lines}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("base image localhost:5000/base-py is missing"), "{stderr}");

    // The same lock gives the same base image, byte for byte.
    let list = |dir: &Path| -> String {
        let out = xtask(dir, &["image", "list", "--root", dir.to_str().unwrap()]);
        ok(&out).lines().find(|l| l.starts_with("localhost:5000/base-py ")).unwrap().to_string()
    };
    let other = tempfile::tempdir().unwrap();
    copy_dir(&project_root().join("base-images"), &other.path().join("base-images"));
    ok(&xtask(other.path(), &["base-image", "--root", other.path().to_str().unwrap()]));
    assert_eq!(list(repo.path()), list(other.path()));

    // As `docker run` would start them (ENTRYPOINT + CMD, no task directory).
    let checks: [(&str, &[&str], &str); 5] = [
        ("csv-bboxes", &[], "predefined run configs: 2 in /workdir/predefined_run_configs.json"),
        ("tiny-classifier", &[], "\"message\": \"inference finished\""),
        (
            "tiny-classifier",
            &["python3", "-u", "/workdir/src/train.py"],
            "\"message\": \"training finished\"",
        ),
        ("dataset-stats", &[], "\"message\": \"project stats\""),
        ("shell-notes", &[], "\"banner\": \"made by a sandboxed RUN\""),
    ];
    // class-catalog's RUNs installed jq from Debian, python-slugify (with
    // its dependency) and PyYAML (a compiled extension) from PyPI, pinned
    // by its committed Dockerfile.lock, which the build left unchanged.
    let lock = "plugins/tools/class-catalog/Dockerfile.lock";
    assert_eq!(
        std::fs::read(repo.path().join(lock)).unwrap(),
        std::fs::read(project_root().join(lock)).unwrap(),
        "the build changed {lock}"
    );
    let script = "import slugify, text_unidecode, yaml, subprocess; \
        print(slugify.slugify('Straße Ampel (rot)'), yaml.__with_libyaml__, yaml.safe_dump({'k': [1]}).strip()); \
        print(subprocess.run(['jq', '-c', '.a'], input='{\"a\": [1, 2]}', capture_output=True, text=True).stdout.strip())";
    let out = ok(&xtask(
        repo.path(),
        &["run", "class-catalog", "--root", root, "--format", "json", "--", "python3", "-c", script],
    ));
    assert!(out.contains("strasse-ampel-rot True k:\n- 1\n[1,2]"), "{out}");

    // Another plugin with the same RUNs over the same base shares their
    // layers: only its own files are a new layer.
    let copy = repo.path().join("plugins/tools/catalog-two");
    copy_dir(&repo.path().join("plugins/tools/class-catalog"), &copy);
    std::fs::write(copy.join("VERSION"), "supervisely/catalog-two:0.1.0\n").unwrap();
    let out = ok(&xtask(repo.path(), &["build", "catalog-two", "--root", root, "--format", "json"]));
    let line: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!((line["layers_built"].as_u64(), line["layers_cached"].as_u64()), (Some(1), Some(4)), "{line}");
    std::fs::remove_dir_all(&copy).unwrap();
    for (plugin, args, expected) in checks {
        let mut argv = vec!["run", plugin, "--root", root, "--docker-semantics", "--format", "json"];
        if !args.is_empty() {
            argv.push("--");
            argv.extend(args);
        }
        let out = ok(&xtask(repo.path(), &argv));
        assert!(out.starts_with("python 3.11"), "{plugin}: {out}");
        assert!(out.contains("supervisely_lib 0.2.0"), "{plugin}: {out}");
        assert!(out.contains(expected), "{plugin}: {out}");
    }

    // As the agent starts them.
    crate::agent::every_mode_and_config_gives_its_results(repo.path());
    crate::agent::runs_look_like_the_agents(repo.path());
    crate::agent::writes_do_not_reach_the_next_run(repo.path());

    // Python's default TLS context trusts the CA bundle built for
    // ca-certificates (plugins call the web instance over HTTPS).
    let script = "import ssl; print('ca certs:', len(ssl.create_default_context().get_ca_certs()))";
    let out = ok(&xtask(
        repo.path(),
        &["run", "tiny-classifier", "--root", root, "--format", "json", "--", "python3", "-c", script],
    ));
    let count: usize = out.trim().strip_prefix("ca certs: ").and_then(|n| n.parse().ok()).unwrap_or(0);
    assert!(count > 100, "{out}");

    // shell-notes' sandboxed RUN: the same tree under umoci, runc and
    // cargo xtask run (and docker, below).
    crate::sandboxed::shell_notes_is_the_same_everywhere(repo.path());

    // class-catalog's SBOM lists what its image holds; docker load takes the image only.
    let engine = Dockerd::start();
    let catalog: serde_json::Value = lines
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .find(|l: &serde_json::Value| l["plugin"] == "plugins/tools/class-catalog")
        .unwrap();
    crate::sbom::class_catalog_sbom_is_exact(repo.path(), &catalog, engine.as_ref());

    // The archive: every blob once, each image for skopeo and docker load.
    let built: Vec<serde_json::Value> = lines.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    crate::archive::samples_archive_is_read_by_every_tool(&archive, &built, engine.as_ref());

    // A real Docker engine loads and runs them, plainly and as the agent does.
    let Some(engine) = engine else { return };
    let tarball = repo.path().join("target/plugin-forge/images/supervisely/import-csv-bboxes_1.2.0.tar");
    engine.docker(&["load", "-i", tarball.to_str().unwrap()]).unwrap();
    match engine.docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "localhost:5000/supervisely/import-csv-bboxes:1.2.0",
    ]) {
        Ok(out) => assert!(out.contains("supervisely_lib 0.2.0") && out.contains("import finished"), "{out}"),
        Err(e) if e.contains("cgroup") || e.contains("OCI runtime") => {
            eprintln!("skipping docker run: this machine's engine cannot start containers: {e}");
            return;
        }
        Err(e) => panic!("docker run failed: {e}"),
    }
    crate::agent::docker_gives_the_same_results(repo.path(), &engine);
    // class-catalog's natively installed packages, under docker and runc.
    crate::runtimes::class_catalog_behaves_the_same_in_real_runtimes(repo.path(), Some(&engine));
    crate::sandboxed::shell_notes_under_docker(repo.path(), &engine);
}
