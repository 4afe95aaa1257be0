//! A generated monorepo: N plugins in the Supervisely layout over a shared
//! SDK (`sdk/`, which every plugin's Dockerfile copies), for the tests of
//! sharding, `--changed-since` and the shared layer cache. Content is a
//! function of the plugin's number, so two runs generate the same bytes.

use std::fs;
use std::path::Path;

/// The Dockerfile of a generated plugin: the base `REGISTRY/base-py:TAG`
/// (tests override it with `--base-image`), the SDK, then the plugin.
pub const DOCKERFILE: &str = "ARG REGISTRY\nARG TAG\nFROM ${REGISTRY}/base-py:${TAG}\nARG MODULE_PATH\n\
COPY sdk /workdir/sdk\nCOPY ${MODULE_PATH} /workdir\n\
ENV PYTHONPATH=/workdir:/workdir/src:/workdir/supervisely_lib/worker_proto\n";

/// The same without the SDK.
pub const DOCKERFILE_WITHOUT_SDK: &str =
    "ARG REGISTRY\nARG TAG\nFROM ${REGISTRY}/base-py:${TAG}\nARG MODULE_PATH\n\
COPY ${MODULE_PATH} /workdir\nENV PYTHONPATH=/workdir:/workdir/src:/workdir/supervisely_lib/worker_proto\n";

/// The path of plugin `i`, relative to the root (four groups).
pub fn plugin_path(i: usize) -> String {
    format!("plugins/group-{}/plugin-{i:02}", i % 4)
}

/// Writes the SDK (`sdk/`, with `sdk/tests/` excluded by `.dockerignore`)
/// and plugins `0..plugins` under `root`.
pub fn generate(root: &Path, plugins: usize) {
    write(root, ".dockerignore", "sdk/tests\n");
    write(root, "sdk/__init__.py", "VERSION = '1.0'\n");
    write(root, "sdk/data.txt", &filler("sdk", 256 << 10));
    write(root, "sdk/tests/test_sdk.py", "def test():\n    pass\n");
    for i in 0..plugins {
        add_plugin(root, i);
    }
}

/// Writes plugin `i` (`team/plugin-NN:1.0.0`, about 64 KiB of its own).
pub fn add_plugin(root: &Path, i: usize) {
    let dir = plugin_path(i);
    write(
        root,
        &format!("{dir}/plugin_info.json"),
        &format!(r#"{{"title": "Plugin {i}", "description": "generated plugin {i}", "type": "import"}}"#),
    );
    write(root, &format!("{dir}/VERSION"), &format!("team/plugin-{i:02}:1.0.0\n"));
    write(root, &format!("{dir}/src/main.py"), &format!("print('plugin {i}')\n"));
    write(root, &format!("{dir}/src/data.txt"), &filler(&dir, 64 << 10));
    write(root, &format!("{dir}/README.md"), &format!("# Plugin {i}\n"));
    write(root, &format!("{dir}/LICENSE"), "MIT\n");
    write(root, &format!("{dir}/Dockerfile"), DOCKERFILE);
}

/// Writes `content` to `root/path`, creating its directory.
pub fn write(root: &Path, path: &str, content: &str) {
    let path = root.join(path);
    fs::create_dir_all(path.parent().expect("a relative path")).unwrap();
    fs::write(path, content).unwrap();
}

/// `size` bytes of text that differ with `seed` and compress like code
/// (lines of a simple pseudo-random generator's numbers).
fn filler(seed: &str, size: usize) -> String {
    let mut state =
        seed.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    let mut text = String::with_capacity(size + 32);
    while text.len() < size {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        text.push_str(&format!("value_{:x} = {}\n", state >> 48, state % 100_000));
    }
    text
}
