//! `cargo xtask bench --quick`: every workload, small, with every peer this
//! machine can run, so that the harness cannot rot. It checks that every
//! row was measured (or its peer skipped, saying why), never a timing.

use forge_testkit::require_tool;

use crate::{ok, project_root};

#[test]
fn quick_bench_measures_every_row() {
    // The peers' tools: required under CI=true (`cargo xtask test`
    // installs them), skipped rows elsewhere.
    for tool in ["pigz", "buildah", "skopeo", "docker-registry", "dockerd"] {
        require_tool(tool);
    }
    // Kept between test runs, as `cargo xtask bench` keeps its own: the
    // workloads, the base image and W7's lock are made once.
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("bench-quick");
    std::fs::create_dir_all(&dir).unwrap();
    let binary = env!("CARGO_BIN_EXE_xtask");
    let out = crate::xtask(
        &project_root(),
        &["bench", "--quick", "--binary", binary, "--dir", dir.to_str().unwrap(), "--format", "json"],
    );
    let report: serde_json::Value = serde_json::from_str(&ok(&out)).expect("the report is JSON");
    let rows = report["rows"].as_array().unwrap();
    let workloads: Vec<&str> = rows.iter().map(|r| r["workload"].as_str().unwrap()).collect();
    for w in ["W1", "W2", "W3", "W4", "W6 cold", "W6 no-op", "W7 cold", "W7 warm", "W8 cold", "W8 warm"] {
        assert!(workloads.contains(&w), "no row of {w}: {workloads:?}");
    }
    let ci = std::env::var("CI").as_deref() == Ok("true");
    for row in rows {
        let what = format!("{} {}", row["workload"], row["tool"]);
        match row["status"].as_str().unwrap() {
            "measured" => {
                let stats = &row["stats"];
                assert!(stats["median"].as_f64().unwrap() > 0.0, "{what}: {row}");
                assert!(stats["min"].as_f64() <= stats["max"].as_f64(), "{what}: {row}");
            }
            "skipped" => {
                let why = row["reason"].as_str().unwrap();
                eprintln!("note: {what} skipped: {why}");
                assert!(row["ours"] == false, "{what}: our row was skipped: {why}");
                // Under CI every tool is installed; only an engine that
                // cannot start here (or a peer that cannot do W7) may skip.
                assert!(!ci || why.contains("cannot start") || why.contains("pip"), "{what}: {why}");
            }
            other => panic!("{what}: {other}: {}", row["reason"]),
        }
    }
    // W6's no-op publish uploads nothing (a count, not a timing).
    let targets = report["targets"].as_array().unwrap();
    let noop = targets.iter().find(|t| t["what"] == "bytes uploaded by the no-op publish").unwrap();
    assert_eq!(noop["value"], 0.0, "{noop}");
}
