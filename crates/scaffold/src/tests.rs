//! Unit tests of planning and writing a new plugin.

use super::*;

fn request(path: &str, plugin_type: PluginType) -> Request {
    Request {
        path: PathBuf::from(path),
        plugin_type,
        title: None,
        description: None,
        license: License::default(),
        image: None,
        copyright: None,
        year: 2026,
    }
}

fn monorepo(plugins: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join(PLUGINS_DIR)).unwrap();
    for (path, version) in plugins {
        let plugin = dir.path().join(path);
        std::fs::create_dir_all(&plugin).unwrap();
        std::fs::write(plugin.join("plugin_info.json"), "{}").unwrap();
        std::fs::write(plugin.join("VERSION"), version).unwrap();
    }
    dir
}

fn names(scaffold: &Scaffold) -> Vec<String> {
    scaffold.files.iter().map(|f| f.path.display().to_string()).collect()
}

#[test]
fn an_import_plugin_has_every_file() {
    let repo = monorepo(&[]);
    let s = plan(repo.path(), &request("import/my-csv", PluginType::Import)).unwrap();
    assert_eq!(s.dir, PathBuf::from("plugins/import/my-csv"));
    assert_eq!(s.image.to_string(), "my-csv:0.1.0");
    assert_eq!(s.title, "My csv");
    assert_eq!(
        names(&s),
        [
            "src/main.py",
            "Dockerfile",
            "plugin_info.json",
            "predefined_run_configs.json",
            "README.md",
            "VERSION",
            "LICENSE"
        ]
    );
    let info: serde_json::Value = serde_json::from_str(&s.files[2].text).unwrap();
    assert_eq!(info["type"], "import");
    assert_eq!(info["title"], "My csv");
}

#[test]
fn an_architecture_plugin_has_train_and_inference_with_a_config_each() {
    let repo = monorepo(&[]);
    let s = plan(repo.path(), &request("plugins/nn/yolo", PluginType::Architecture)).unwrap();
    assert_eq!(&names(&s)[..2], ["src/train.py", "src/inference.py"]);
    let configs = &s.files.iter().find(|f| f.path.ends_with("predefined_run_configs.json")).unwrap().text;
    let configs: Vec<serde_json::Value> = serde_json::from_str(configs).unwrap();
    let types: Vec<&str> = configs.iter().map(|c| c["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["train", "inference"]);
}

#[test]
fn the_image_takes_the_monorepo_namespace_and_refuses_duplicates() {
    let repo = monorepo(&[("plugins/a", "team/a:1.0.0\n"), ("plugins/b", "team/b:2.0.0\n")]);
    let s = plan(repo.path(), &request("tools/c", PluginType::Custom)).unwrap();
    assert_eq!(s.image.to_string(), "team/c:0.1.0");
    let mut dup = request("tools/a2", PluginType::Custom);
    dup.image = Some("team/a:1.0.0".into());
    assert_eq!(
        plan(repo.path(), &dup).unwrap_err().to_string(),
        "image `team/a:1.0.0` is already built by plugins/a; give another with --image NAME:TAG"
    );
    let bad = plan(repo.path(), &request("tools/My Plugin", PluginType::Custom)).unwrap_err();
    assert!(bad.to_string().starts_with("image `team/My Plugin:0.1.0` is not a valid NAME:TAG"), "{bad}");
}

#[test]
fn paths_outside_plugins_and_nested_plugins_are_refused() {
    let repo = monorepo(&[("plugins/a", "a:1.0.0\n")]);
    let err = |p: &str| plan(repo.path(), &request(p, PluginType::Dtl)).unwrap_err().to_string();
    assert_eq!(
        err("../x"),
        "`../x` is not a plugin directory under plugins/: use a path inside plugins/ without `..`"
    );
    assert_eq!(err("plugins"), "`plugins` is not a plugin directory under plugins/: name the plugin's directory, e.g. import/my-plugin");
    assert_eq!(err("a/inner"), "plugins/a/inner is inside the plugin plugins/a; plugins cannot nest");
}

#[test]
fn writing_refuses_to_overwrite_and_changes_nothing() {
    let repo = monorepo(&[]);
    let s = plan(repo.path(), &request("import/x", PluginType::Import)).unwrap();
    write(repo.path(), &s).unwrap();
    let readme = repo.path().join("plugins/import/x/README.md");
    assert!(std::fs::read_to_string(&readme).unwrap().starts_with("# X\n"));
    // Planning again sees every file.
    let err = plan(repo.path(), &request("import/y", PluginType::Import)).map(|_| ());
    assert!(err.is_ok());
    let dir = repo.path().join("plugins/import/z");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("README.md"), "mine\n").unwrap();
    assert_eq!(
        plan(repo.path(), &request("import/z", PluginType::Import)).unwrap_err().to_string(),
        "plugins/import/z already exists (plugins/import/z/README.md); nothing was written: pick another path or remove them"
    );
    // `write` itself never replaces a file either.
    let mut racing = plan(repo.path(), &request("import/w", PluginType::Import)).unwrap();
    racing.dir = PathBuf::from("plugins/import/z");
    assert!(matches!(write(repo.path(), &racing), Err(ScaffoldError::Exists { .. })));
    assert_eq!(std::fs::read_to_string(dir.join("README.md")).unwrap(), "mine\n");
}

#[test]
fn the_license_is_the_chosen_text_with_the_copyright_line() {
    let repo = monorepo(&[]);
    let mut r = request("import/x", PluginType::Import);
    r.license = License::find("MIT").unwrap();
    r.copyright = Some("Ada Lovelace".into());
    let s = plan(repo.path(), &r).unwrap();
    let license = &s.files.last().unwrap().text;
    assert!(license.starts_with("MIT License\n\nCopyright (c) 2026 Ada Lovelace\n"), "{license}");
}

#[test]
fn years_of_unix_times() {
    assert_eq!(year_of(0), 1970);
    assert_eq!(year_of(951_782_400), 2000); // 2000-02-29
    assert_eq!(year_of(1_798_761_599), 2026); // 2026-12-31T23:59:59Z
    assert_eq!(year_of(1_798_761_600), 2027);
}
