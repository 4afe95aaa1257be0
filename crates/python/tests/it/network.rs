//! Against PyPI itself: the uv bootstrap, resolutions for CPython 3.11 on
//! x86_64 and aarch64 manylinux_2_36, verified downloads through the
//! cache, installed distributions, and the missing-wheel message. Under
//! `CI=true` an unreachable PyPI fails these tests; elsewhere they are
//! skipped with a message.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::SystemTime;

use forge_python::index::{Version, WheelName};
use forge_python::{fetch, resolve, LockedWheel, PipLock, PipRequest, ResolveEnv, ResolveError, Uv};
use forge_testkit::ci;

fn cache_dir() -> PathBuf {
    // Kept across runs under target/, so uv and its index cache come once.
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("forge-python-cache")
}

/// Whether `e` says PyPI could not be reached (rather than that we are wrong).
fn unreachable(e: &ResolveError) -> bool {
    match e {
        // A certificate no retry can change is a failure, not a skip.
        ResolveError::Http { source, .. } => !forge_retry::is_tls_error(source),
        ResolveError::HttpStatus { status, .. } => !status.starts_with("404"),
        ResolveError::UvFailed { stderr, .. } => {
            ["Failed to fetch", "error sending request", "dns error", "Could not connect"]
                .iter()
                .any(|m| stderr.contains(m))
        }
        _ => false,
    }
}

/// `Some(value)`, or `None` after printing why the test is skipped; panics
/// on an unreachable PyPI under `CI=true` and on every other error.
fn or_skip<T>(result: Result<T, ResolveError>, what: &str) -> Option<T> {
    match result {
        Ok(value) => Some(value),
        Err(e) if unreachable(&e) && !ci() => {
            eprintln!("skipping: PyPI is unreachable ({what}): {e} ({:?})", std::error::Error::source(&e));
            None
        }
        Err(e) => panic!("{what}: {e} ({:?})", std::error::Error::source(&e)),
    }
}

/// The pinned uv, fetched once per test binary into the kept cache.
fn uv() -> Option<Uv> {
    static UV: OnceLock<Result<Uv, String>> = OnceLock::new();
    let uv = UV.get_or_init(|| match Uv::pinned_for_host(&cache_dir().join("tools")) {
        Ok(uv) => Ok(uv),
        Err(e) if unreachable(&e) && !ci() => Err(format!("{e} ({:?})", std::error::Error::source(&e))),
        Err(e) => panic!("fetching uv: {e} ({:?})", std::error::Error::source(&e)),
    });
    match uv {
        Ok(uv) => Some(uv.clone()),
        Err(e) => {
            eprintln!("skipping: PyPI is unreachable (fetching uv): {e}");
            None
        }
    }
}

/// The tags of CPython 3.11 on manylinux glibc 2.36, best first, in the
/// order `packaging.tags.sys_tags()` gives them.
fn cp311_tags(arch: &str) -> Vec<String> {
    let mut platforms: Vec<String> =
        (17..=36).rev().map(|minor| format!("manylinux_2_{minor}_{arch}")).collect();
    platforms.push(format!("manylinux2014_{arch}"));
    platforms.push(format!("linux_{arch}"));
    let mut tags = Vec::new();
    let mut add = |interpreter: &str, abi: &str| {
        tags.extend(platforms.iter().map(|p| format!("{interpreter}-{abi}-{p}")))
    };
    add("cp311", "cp311");
    add("cp311", "abi3");
    add("cp311", "none");
    for minor in (2..=10).rev() {
        add(&format!("cp3{minor}"), "abi3");
    }
    add("py311", "none");
    add("py3", "none");
    for minor in (0..=10).rev() {
        add(&format!("py3{minor}"), "none");
    }
    tags.extend(["cp311-none-any", "py311-none-any", "py3-none-any"].map(String::from));
    tags.extend((0..=10).rev().map(|minor| format!("py3{minor}-none-any")));
    tags
}

fn target(arch: &str) -> ResolveEnv {
    ResolveEnv {
        python_version: "3.11".into(),
        python_platform: format!("{arch}-manylinux_2_36"),
        tags: cp311_tags(arch),
    }
}

fn request(requirements: &[&str]) -> PipRequest {
    PipRequest { requirements: requirements.iter().map(|r| r.to_string()).collect(), ..PipRequest::default() }
}

fn find<'a>(wheels: &'a [LockedWheel], name: &str) -> &'a LockedWheel {
    wheels.iter().find(|w| w.name == name).unwrap_or_else(|| panic!("{name} not in {wheels:?}"))
}

#[test]
fn uv_is_fetched_verified_and_then_reused() {
    let tools = tempfile::tempdir().unwrap();
    let Some(uv) = or_skip(Uv::pinned_for_host(tools.path()), "fetching uv") else { return };
    let expected = tools.path().join(format!("uv-{}/uv", forge_python::uv::UV_VERSION));
    assert_eq!(uv.path(), expected);
    let output = std::process::Command::new(uv.path()).arg("--version").output().unwrap();
    let version = String::from_utf8_lossy(&output.stdout);
    assert!(version.starts_with(&format!("uv {} ", forge_python::uv::UV_VERSION)), "{version}");
    let names: Vec<String> = std::fs::read_dir(expected.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, ["uv"], "the wheel and temporaries are gone");
    let modified = |p: &std::path::Path| std::fs::metadata(p).unwrap().modified().unwrap();
    let before: SystemTime = modified(uv.path());
    let again = Uv::pinned_for_host(tools.path()).unwrap();
    assert_eq!((again.path(), modified(again.path())), (uv.path(), before), "the second call reuses it");
}

fn slugify_and_pyyaml(arch: &str) {
    let Some(uv) = uv() else { return };
    let env = target(arch);
    let cache = cache_dir();
    let Some(wheels) =
        or_skip(resolve(&uv, &request(&["python-slugify", "PyYAML"]), &env, &cache), "resolving")
    else {
        return;
    };
    let names: Vec<&str> = wheels.iter().map(|w| w.name.as_str()).collect();
    assert_eq!(names, ["python-slugify", "pyyaml", "text-unidecode"]);
    let yaml = find(&wheels, "pyyaml");
    let tags = WheelName::parse(&yaml.filename).unwrap().tags;
    assert!(
        tags.iter().any(|t| t.starts_with("cp311-cp311-manylinux") && t.ends_with(&format!("_{arch}"))),
        "{yaml:?}"
    );
    assert!(
        yaml.requested
            && find(&wheels, "python-slugify").requested
            && !find(&wheels, "text-unidecode").requested
    );
    assert!(find(&wheels, "text-unidecode").filename.ends_with("-none-any.whl"));
    for wheel in &wheels {
        assert!(wheel.url.starts_with("https://") && wheel.url.ends_with(&wheel.filename), "{wheel:?}");
        assert!(wheel.size.is_some(), "{wheel:?}");
    }
    println!("{arch}: {}", wheels.iter().map(|w| w.filename.as_str()).collect::<Vec<_>>().join(" "));

    // Fetched, verified; a second time from the cache alone (the URLs now
    // lead nowhere).
    let Some(paths) = or_skip(fetch(&wheels, &cache), "fetching wheels") else { return };
    for (wheel, path) in wheels.iter().zip(&paths) {
        assert_eq!(std::fs::metadata(path).unwrap().len(), wheel.size.unwrap());
        assert!(
            path.ends_with(format!("wheels/sha256/{}/{}", wheel.sha256, wheel.filename)),
            "{}",
            path.display()
        );
    }
    let offline: Vec<LockedWheel> = wheels
        .iter()
        .map(|w| LockedWheel { url: "unsupported-scheme://offline/".into(), ..w.clone() })
        .collect();
    assert_eq!(fetch(&offline, &cache).unwrap(), paths);

    // The lock of this resolution reads back the same.
    let lock = PipLock::new(&env, wheels.clone());
    assert_eq!(PipLock::parse(&lock.to_toml_string()).unwrap(), lock);
}

#[test]
fn slugify_and_pyyaml_for_x86_64() {
    slugify_and_pyyaml("x86_64");
}

#[test]
fn slugify_and_pyyaml_for_aarch64() {
    slugify_and_pyyaml("aarch64");
}

#[test]
fn an_installed_version_that_satisfies_is_kept_unless_upgraded() {
    let Some(uv) = uv() else { return };
    let env = target("x86_64");
    let installed =
        vec![("PyYAML".to_owned(), "6.0.1".to_owned()), ("requests".to_owned(), "2.0.0".to_owned())];
    let kept = PipRequest { installed: installed.clone(), ..request(&["pyyaml>=6"]) };
    let Some(wheels) = or_skip(resolve(&uv, &kept, &env, &cache_dir()), "resolving") else { return };
    assert_eq!(wheels, [], "PyYAML 6.0.1 satisfies pyyaml>=6 and is installed; requests is not asked for");
    let upgraded = PipRequest { upgrade: true, ..kept };
    let Some(wheels) = or_skip(resolve(&uv, &upgraded, &env, &cache_dir()), "resolving") else { return };
    let yaml = find(&wheels, "pyyaml");
    assert!(Version::parse(&yaml.version).unwrap() > Version::parse("6.0.1").unwrap(), "{yaml:?}");
    assert_eq!(wheels.len(), 1, "{wheels:?}");
}

#[test]
fn a_requirement_without_a_wheel_names_the_newest_version_with_one() {
    let Some(uv) = uv() else { return };
    let env = target("x86_64");
    let err = match resolve(&uv, &request(&["numpy==1.16.0"]), &env, &cache_dir()) {
        Ok(wheels) => panic!("numpy 1.16.0 has no cp311 wheel, yet: {wheels:?}"),
        Err(e) if unreachable(&e) && !ci() => {
            eprintln!("skipping: PyPI is unreachable (resolving): {e}");
            return;
        }
        Err(e) => e,
    };
    let message = err.to_string();
    println!("{message}");
    let ResolveError::NoWheel(missing) = &err else { panic!("{message}") };
    assert_eq!(missing.requirement, "numpy==1.16.0");
    let forge_python::index::NewestWheel::Version(newest) = &missing.newest else {
        panic!("no newest version in {message}")
    };
    assert!(Version::parse(newest).unwrap() >= Version::parse("2.3.5").unwrap(), "{message}");
    let wanted = format!(
        "no wheel of numpy==1.16.0 for CPython 3.11 on manylinux_2_36_x86_64 (tags cp311-cp311-manylinux_2_36_x86_64, \
         cp311-cp311-manylinux_2_35_x86_64, cp311-cp311-manylinux_2_34_x86_64, ...); the newest version with such a wheel \
         is {newest}"
    );
    assert_eq!(message.lines().next().unwrap(), wanted);
}

#[test]
fn other_failures_carry_uvs_explanation() {
    let Some(uv) = uv() else { return };
    let result = resolve(&uv, &request(&["python-slugify==1.0"]), &target("x86_64"), &cache_dir());
    let err = match result {
        Err(e) if unreachable(&e) && !ci() => {
            eprintln!("skipping: PyPI is unreachable (resolving): {e}");
            return;
        }
        Err(e) => e,
        Ok(wheels) => panic!("python-slugify 1.0 does not exist, yet: {wheels:?}"),
    };
    let message = err.to_string();
    assert!(matches!(err, ResolveError::UvFailed { .. }), "{message}");
    assert!(
        message
            .starts_with("resolving python-slugify==1.0 for CPython 3.11 on manylinux_2_36_x86_64 failed:"),
        "{message}"
    );
    assert!(message.contains("there is no version of python-slugify==1.0"), "{message}");
    assert!(!message.contains("/.tmp-"), "our temporary paths are replaced: {message}");
}

#[test]
fn detected_images_resolve_for_their_own_interpreter_and_keep_what_they_have() {
    let Some(uv) = uv() else { return };
    // Debian's python3 3.11 with six 1.16.0 from python3-six, amd64.
    let image = crate::fixture::debian();
    let target = forge_python::detect(&image, "pip3", None, crate::fixture::PATH, "amd64").unwrap();
    let env = target.resolve_env().unwrap();
    assert_eq!(
        (env.python_version.as_str(), env.python_platform.as_str()),
        ("3.11.2", "x86_64-manylinux_2_36")
    );
    let with_installed =
        PipRequest { installed: forge_python::installed_of(&target), ..request(&["PyYAML", "six"]) };
    let Some(wheels) = or_skip(resolve(&uv, &with_installed, &env, &cache_dir()), "resolving") else {
        return;
    };
    let names: Vec<&str> = wheels.iter().map(|w| w.name.as_str()).collect();
    assert_eq!(names, ["pyyaml"], "six 1.16.0 is in the image and satisfies `six`");
    assert!(
        wheels[0].filename.contains("-cp311-cp311-manylinux") && wheels[0].filename.ends_with("_x86_64.whl")
    );

    // The official python:3.12 image for arm64.
    let image = crate::fixture::python_org();
    let target = forge_python::detect(&image, "pip", None, crate::fixture::PATH, "arm64").unwrap();
    let env = target.resolve_env().unwrap();
    let Some(wheels) = or_skip(resolve(&uv, &request(&["PyYAML"]), &env, &cache_dir()), "resolving") else {
        return;
    };
    let tags = WheelName::parse(&wheels[0].filename).unwrap().tags;
    assert!(
        tags.iter().any(|t| t.starts_with("cp312-cp312-manylinux") && t.ends_with("_aarch64")),
        "{:?}",
        wheels[0]
    );
    assert!(wheels[0].requested);
}

#[test]
fn a_free_threaded_interpreter_gets_free_threaded_wheels() {
    let Some(uv) = uv() else { return };
    let platforms: Vec<String> = (17..=36).rev().map(|minor| format!("manylinux_2_{minor}_x86_64")).collect();
    let mut tags: Vec<String> = platforms.iter().map(|p| format!("cp313-cp313t-{p}")).collect();
    tags.extend(platforms.iter().map(|p| format!("py3-none-{p}")));
    tags.push("py3-none-any".into());
    let env =
        ResolveEnv { python_version: "3.13".into(), python_platform: "x86_64-manylinux_2_36".into(), tags };
    let Some(wheels) = or_skip(resolve(&uv, &request(&["numpy==2.3.5"]), &env, &cache_dir()), "resolving")
    else {
        return;
    };
    assert!(find(&wheels, "numpy").filename.contains("-cp313-cp313t-manylinux"), "{wheels:?}");
}
