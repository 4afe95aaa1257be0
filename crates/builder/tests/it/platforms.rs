//! Builds for a platform (`--platform`): `FROM --platform`, the automatic
//! `TARGET*`/`BUILD*` args, bases picked by platform from the store (an
//! index, or a refusal saying what there is), and several platforms built
//! into one image index.

use std::collections::BTreeMap;
use std::path::Path;

use forge_builder::{
    base_reference, BaseResolver, BuildError, LocalResolver, NoInstaller, ParsedDockerfile, Workspace,
};
use forge_oci::{BlobStore, Image, Platform, Target};

use crate::{add_base, options, plugin_files, tree, BASE};

fn arm64() -> Platform {
    Platform::parse("linux/arm64").unwrap()
}

/// The base of `FROM` for `platform`, or the error's first line.
fn base_of(dockerfile: &str, platform: &Platform) -> Result<String, String> {
    let parsed = ParsedDockerfile::parse(dockerfile, Path::new("Dockerfile")).unwrap();
    let args = BTreeMap::from([("TARGETARCH".to_string(), "ignored".to_string())]);
    base_reference(&parsed, &args, platform)
        .map(|b| b.reference)
        .map_err(|e| e.to_string().lines().next().unwrap_or_default().to_string())
}

#[test]
fn from_platform_and_the_automatic_args() {
    let host = Platform::host();
    let by_arch = "ARG TARGETARCH\nFROM --platform=$TARGETPLATFORM img:${TARGETARCH}${TARGETVARIANT}\n";
    assert_eq!(base_of(by_arch, &arm64()).as_deref(), Ok("img:arm64"));
    assert_eq!(base_of(by_arch, &Platform::parse("linux/arm/v7").unwrap()).as_deref(), Ok("img:armv7"));
    assert_eq!(
        base_of("FROM img:$BUILDOS-$BUILDARCH\n", &arm64()),
        Ok(format!("img:linux-{}", host.architecture))
    );
    assert_eq!(base_of("FROM --platform=linux/arm64 img\n", &arm64()).as_deref(), Ok("img"));
    assert_eq!(
        base_of("FROM --platform=linux/amd64 img\n", &arm64()).unwrap_err(),
        "Dockerfile:1:17: FROM --platform=linux/amd64, but this build is for linux/arm64"
    );
    assert_eq!(
        base_of("ARG P=arm64\nFROM --platform=$P img\n", &arm64()).unwrap_err(),
        "Dockerfile:2:17: `--platform=arm64` is not a platform"
    );
}

/// A copy of the base image `BASE` made for `platform` (same layers).
fn base_for(store: &BlobStore, platform: &Platform) -> Image {
    let base = Image::load_ref(store, BASE).unwrap().unwrap();
    let mut config = base.config.clone();
    platform.set_on(&mut config);
    forge_oci::write_image(store, &config, base.manifest.layers(), &BTreeMap::new()).unwrap()
}

#[test]
fn a_base_is_resolved_for_the_platform_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open_or_create(dir.path()).unwrap();
    add_base(&store);
    let resolver = LocalResolver::default();
    let reference = format!("{BASE}:1.0.0");
    let err = resolver.resolve(&reference, &arm64(), &store).unwrap_err();
    assert!(matches!(err, BuildError::BaseNotFound { .. }), "{err:?}");
    assert!(
        err.to_string().ends_with(
            "the image found is for linux/amd64, and this build is for linux/arm64; import one for linux/arm64 (or build without --platform linux/arm64)"
        ),
        "{err}"
    );

    let amd = Image::load_ref(&store, BASE).unwrap().unwrap();
    let arm = base_for(&store, &arm64());
    forge_oci::set_platform_ref(&store, BASE, &arm).unwrap();
    assert!(matches!(Target::load_ref(&store, BASE).unwrap(), Some(Target::Index(_))));
    for (platform, expected) in [(Platform::default(), &amd), (arm64(), &arm)] {
        let found = resolver.resolve(&reference, &platform, &store).unwrap();
        assert_eq!(found.image.unwrap().manifest_digest, expected.manifest_digest, "{platform}");
        assert_eq!(found.platform, platform);
    }
}

#[test]
fn several_platforms_make_an_index_and_each_image_has_its_platform() {
    let dockerfile =
        "FROM --platform=$TARGETPLATFORM localhost:5000/base-py:1.0.0\nARG TARGETARCH\nARG BUILDARCH\n\
                      ENV ARCH=$TARGETARCH\nCOPY plugins/p/src /app/src\n";
    let files = plugin_files("plugins/p", dockerfile);
    let files: Vec<(&str, &str)> = files.iter().map(|(p, c)| (p.as_str(), *c)).collect();
    let repo = tree(&files);
    let store_dir = tempfile::tempdir().unwrap();
    let ws = Workspace::open(repo.path(), store_dir.path()).unwrap();
    add_base(ws.store());
    let arm = base_for(ws.store(), &arm64());
    forge_oci::set_platform_ref(ws.store(), BASE, &arm).unwrap();

    let mut options = options();
    options.platforms = vec![Platform::default(), arm64()];
    // The automatic args are not build args: this one changes nothing.
    options.extras.build_args.insert("TARGETARCH".into(), "s390x".into());
    let built = ws.build(Path::new("plugins/p"), &options, &LocalResolver::default(), &NoInstaller).unwrap();
    let index = built.index.as_ref().expect("an index");
    assert_eq!(
        ws.store().resolve_ref(&built.image).unwrap().unwrap().digest().to_string(),
        index.digest.to_string()
    );
    assert_eq!(built.digest(), &index.digest);
    let reports = forge_oci::validate::index(ws.store(), &index.digest).unwrap();
    assert_eq!(reports.len(), 2);
    let arches: Vec<(String, String)> = built
        .images()
        .iter()
        .map(|image| {
            let env = image.config.config().as_ref().unwrap().env().clone().unwrap_or_default();
            let arch = env.iter().find_map(|e| e.strip_prefix("ARCH=")).unwrap_or("").to_string();
            (Platform::of_config(&image.config).to_string(), arch)
        })
        .collect();
    assert_eq!(arches, [("linux/amd64".into(), "amd64".into()), ("linux/arm64".into(), "arm64".into())]);
    // The COPY layer is the same bytes for both: stored once.
    let top = |i: usize| built.images()[i].manifest.layers().last().unwrap().digest().to_string();
    assert_eq!(top(0), top(1));

    // The archive: the OCI index for OCI tools, this machine's image for `docker load`.
    let out = tempfile::tempdir().unwrap();
    let tarball = ws.export(&built, out.path()).unwrap();
    let listing = forge_testkit::run("tar", &["-xOf", tarball.to_str().unwrap(), "index.json"]);
    let listed: serde_json::Value = serde_json::from_str(&listing).unwrap();
    assert_eq!(listed["manifests"][0]["mediaType"], "application/vnd.oci.image.index.v1+json");
    assert_eq!(listed["manifests"][0]["digest"], index.digest.to_string());

    // One platform again: the tag names that image alone.
    options.platforms = vec![arm64()];
    let built = ws.build(Path::new("plugins/p"), &options, &LocalResolver::default(), &NoInstaller).unwrap();
    assert!(built.index.is_none());
    assert_eq!(Platform::of_config(&built.stored.config), arm64());
    forge_oci::validate::image(ws.store(), built.digest()).unwrap();
}
