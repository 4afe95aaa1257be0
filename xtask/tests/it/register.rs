//! What to register after `publish`: the title and full image name the
//! instance's "Add plugin" dialog asks for, in the summary, in the JSON
//! lines and as a Markdown table, for the sample plugins pushed to a real
//! registry.

use forge_testkit::registry::Registry;
use serde_json::Value;

use crate::{copy_dir, ok, project_root};

#[test]
fn publish_says_what_to_register_for_the_samples() {
    let Some(registry) = Registry::start(None) else { return };
    if !forge_testkit::require_tool("gpgv") {
        return;
    }
    let host = registry.host();
    let repo = tempfile::tempdir().unwrap();
    for part in ["plugins", "supervisely_lib", "base-images"] {
        copy_dir(&project_root().join(part), &repo.path().join(part));
    }
    let root = repo.path().to_str().unwrap();
    let docker_config = tempfile::tempdir().unwrap();
    let publish = |extra: &[&str]| {
        let mut args = vec!["publish", "--root", root, "--registry", &host];
        args.extend(extra);
        ok(&std::process::Command::new(env!("CARGO_BIN_EXE_xtask"))
            .args(&args)
            .env("DOCKER_CONFIG", docker_config.path())
            .output()
            .unwrap())
    };
    let samples = [
        ("plugins/import/csv-bboxes", "CSV bounding boxes", "supervisely/import-csv-bboxes:1.2.0"),
        (
            "plugins/nn/tiny-classifier",
            "Tiny nearest-centroid classifier",
            "supervisely/nn-tiny-classifier:0.3.1",
        ),
        ("plugins/tools/class-catalog", "Class catalog", "supervisely/class-catalog:0.1.0"),
        ("plugins/tools/dataset-stats", "Dataset stats", "supervisely/dataset-stats:0.1.0"),
        ("plugins/tools/shell-notes", "Shell notes", "supervisely/shell-notes:0.1.0"),
    ];

    let lines: Vec<Value> =
        publish(&["--format", "json"]).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), samples.len());
    for (line, (plugin, title, image)) in lines.iter().zip(samples) {
        assert_eq!(line["plugin"], plugin);
        assert_eq!(line["status"], "pushed", "{line}");
        assert_eq!(line["title"], title);
        assert_eq!(line["image"], format!("{host}/{image}"));
    }

    let human = publish(&[]);
    let summary = human
        .split("Register on the instance (Plugins > Add plugin):\n")
        .nth(1)
        .unwrap_or_else(|| panic!("{human}"));
    let rows: Vec<Vec<&str>> =
        summary.lines().map(|l| l.split("  ").filter(|c| !c.is_empty()).map(str::trim).collect()).collect();
    assert_eq!(rows[0], ["TITLE", "IMAGE"]);
    for (row, (_, title, image)) in rows[1..].iter().zip(samples) {
        assert_eq!(row, &[title.to_string(), format!("{host}/{image}")]);
    }
    assert_eq!(rows.len(), 1 + samples.len(), "{summary}");

    let markdown = publish(&["--format", "markdown"]);
    let mut expected = String::from("| Title | Image |\n|---|---|\n");
    for (_, title, image) in samples {
        expected.push_str(&format!("| {title} | {host}/{image} |\n"));
    }
    assert_eq!(markdown, expected);
}
