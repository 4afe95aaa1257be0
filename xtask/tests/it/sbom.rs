//! The SBOM and provenance of the sample plugin that installs from Debian
//! and PyPI (class-catalog), checked by tools we did not write: the image
//! unpacked by `skopeo` and `umoci` holds exactly the Debian packages
//! (its `/var/lib/dpkg/status`) and Python distributions (its
//! `.dist-info` directories) the SBOM lists; both formats validate
//! against their official JSON schemas (PyPI's `jsonschema`, with the
//! schemas `lib4sbom` ships; `cargo xtask test` installs both into a venv
//! and sets `SBOM_PYTHON`); a build without cache gives the same SBOM and
//! provenance digests; `docker load` of the tarball loads just the image.
//! Called by the e2e test after its build.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::process::Command;

use forge_testkit::Dockerd;
use serde_json::Value;

use crate::{ok, xtask};

const IMAGE: &str = "localhost:5000/supervisely/class-catalog:0.1.0";
const TARBALL: &str = "target/plugin-forge/images/supervisely/class-catalog_0.1.0.tar";

/// Validates a document against the official schema of its format
/// (`spdx`: SPDX 2.3; `cyclonedx`: CycloneDX 1.6, with the SPDX license
/// list and JSF schemas it refers to); prints the errors, exits 1 on any.
const VALIDATE: &str = r#"
import json, pathlib, sys
import jsonschema, lib4sbom
from referencing import Registry, Resource
kind, path = sys.argv[1], sys.argv[2]
schemas = pathlib.Path(lib4sbom.__file__).parent / "schemas"
files = {"spdx": [schemas / "spdx" / "2.3-schema.json"],
         "cyclonedx": [schemas / "cyclonedx" / n for n in ("bom-1.6.schema.json", "spdx.schema.json", "jsf-0.82.schema.json")]}[kind]
loaded = [json.loads(f.read_text()) for f in files]
registry = Registry().with_resources((s["$id"], Resource.from_contents(s)) for s in loaded)
validator = jsonschema.Draft7Validator(loaded[0], registry=registry, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)
errors = list(validator.iter_errors(json.loads(pathlib.Path(path).read_text())))
for e in errors[:20]:
    print("/".join(map(str, e.path)), e.message[:300])
print(f"{kind}: {len(errors)} errors against {files[0].name}")
sys.exit(1 if errors else 0)
"#;

/// The Python with the validators: `$SBOM_PYTHON`, else `python3` if it
/// has them. `None` (skipping visibly) when there is none, which fails
/// under `CI=true`.
fn validators() -> Option<String> {
    let python = std::env::var("SBOM_PYTHON").unwrap_or_else(|_| "python3".into());
    let has = Command::new(&python)
        .args(["-c", "import jsonschema, lib4sbom"])
        .output()
        .is_ok_and(|o| o.status.success());
    if has {
        return Some(python);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{python} lacks jsonschema and lib4sbom, and CI=true requires them (`cargo xtask test` installs them)"
    );
    eprintln!("skipping the schema validation: {python} lacks jsonschema and lib4sbom (`cargo xtask test` installs them)");
    None
}

fn validate(python: &str, kind: &str, document: &[u8], scratch: &Path) {
    let path = scratch.join(format!("{kind}.json"));
    fs::write(&path, document).unwrap();
    let out = Command::new(python).args(["-c", VALIDATE, kind, path.to_str().unwrap()]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{kind} does not validate:\n{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains(&format!("{kind}: 0 errors")), "{text}");
}

/// A member of the tarball.
fn member(tarball: &Path, name: &str) -> Vec<u8> {
    let mut archive = tar::Archive::new(fs::File::open(tarball).unwrap());
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        if entry.path().unwrap().to_str() == Some(name) {
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut entry, &mut bytes).unwrap();
            return bytes;
        }
    }
    panic!("{} has no {name}", tarball.display())
}

fn blob(tarball: &Path, digest: &str) -> Vec<u8> {
    member(tarball, &format!("blobs/sha256/{}", digest.trim_start_matches("sha256:")))
}

/// `(name, version, architecture)` of every installed package of a dpkg
/// status file.
fn dpkg_installed(status: &str) -> BTreeSet<(String, String, String)> {
    let mut found = BTreeSet::new();
    for paragraph in status.split("\n\n") {
        let field = |name: &str| {
            paragraph
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{name}: ")).map(str::to_owned))
                .unwrap_or_default()
        };
        let state = field("Status");
        if state.ends_with(" installed")
            || state.ends_with(" triggers-pending")
            || state.ends_with(" triggers-awaited")
        {
            found.insert((field("Package"), field("Version"), field("Architecture")));
        }
    }
    found
}

/// `(name, version)` of every `.dist-info` directory in a `*-packages`
/// directory under `root` (symlinks not followed).
fn dist_infos(root: &Path, dir: &Path, found: &mut BTreeSet<(String, String)>) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    for entry in entries {
        let entry = entry.unwrap();
        let path = entry.path();
        if !entry.file_type().unwrap().is_dir() || path.starts_with(root.join("proc")) {
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        let in_site = dir.file_name().is_some_and(|d| d.to_string_lossy().ends_with("-packages"));
        if in_site && name.ends_with(".dist-info") {
            let metadata = fs::read_to_string(path.join("METADATA")).unwrap();
            let header = |key: &str| {
                metadata.lines().find_map(|l| l.strip_prefix(&format!("{key}: ")).map(str::to_owned)).unwrap()
            };
            found.insert((header("Name"), header("Version")));
        } else {
            dist_infos(root, &path, found);
        }
    }
}

/// The checks of the module docs, on the monorepo `repo` whose
/// `build-all --format json` printed `built` for class-catalog.
pub(crate) fn class_catalog_sbom_is_exact(repo: &Path, built: &Value, engine: Option<&Dockerd>) {
    let started = std::time::Instant::now();
    let root = repo.to_str().unwrap();
    let tarball = repo.join(TARBALL);
    let index: Value = serde_json::from_slice(&member(&tarball, "index.json")).unwrap();
    let manifests = index["manifests"].as_array().unwrap();
    assert_eq!(manifests.len(), 3, "the image, its SBOM and its provenance: {index}");
    let image = &manifests[0];
    assert_eq!(image["digest"], built["digest"]);
    assert_eq!(image["annotations"]["org.opencontainers.image.ref.name"], "0.1.0");
    let kinds: Vec<&str> = manifests[1..].iter().map(|m| m["artifactType"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["application/spdx+json", "application/vnd.in-toto+json"]);
    assert_eq!(manifests[1]["digest"], built["sbom"]);
    assert_eq!(manifests[2]["digest"], built["provenance"]);
    let mut documents = Vec::new();
    for artifact in &manifests[1..] {
        let manifest: Value =
            serde_json::from_slice(&blob(&tarball, artifact["digest"].as_str().unwrap())).unwrap();
        assert_eq!(manifest["subject"]["digest"], image["digest"], "{manifest}");
        assert_eq!(manifest["subject"]["mediaType"], "application/vnd.oci.image.manifest.v1+json");
        assert_eq!(manifest["artifactType"], artifact["artifactType"]);
        assert_eq!(manifest["config"]["mediaType"], "application/vnd.oci.empty.v1+json");
        documents.push(blob(&tarball, manifest["layers"][0]["digest"].as_str().unwrap()));
    }
    let (spdx_bytes, provenance_bytes) = (&documents[0], &documents[1]);

    // `image sbom` prints the same bytes.
    let printed = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["image", "sbom", IMAGE, "--root", root])
        .current_dir(repo)
        .output()
        .unwrap();
    assert!(printed.status.success(), "{}", String::from_utf8_lossy(&printed.stderr));
    assert_eq!(&printed.stdout, spdx_bytes, "image sbom prints the tarball's SBOM");

    // The packages the unpacked image holds, and those the SBOM lists.
    let scratch = tempfile::tempdir().unwrap();
    let (_, layout) = forge_testkit::skopeo_check(&tarball, scratch.path());
    let rootfs = forge_testkit::umoci_unpack(&layout, "checked", scratch.path());
    let debs = dpkg_installed(&fs::read_to_string(rootfs.join("var/lib/dpkg/status")).unwrap());
    let mut wheels = BTreeSet::new();
    dist_infos(&rootfs, &rootfs, &mut wheels);
    let spdx: Value = serde_json::from_slice(spdx_bytes).unwrap();
    let packages = spdx["packages"].as_array().unwrap();
    let listed = |prefix: &'static str| {
        packages.iter().filter(move |p| p["SPDXID"].as_str().unwrap().starts_with(prefix))
    };
    let sbom_debs: BTreeSet<(String, String, String)> = listed("SPDXRef-deb-")
        .map(|p| {
            let purl = p["externalRefs"][0]["referenceLocator"].as_str().unwrap();
            let arch = purl.split("arch=").nth(1).unwrap().split('&').next().unwrap();
            (p["name"].as_str().unwrap().into(), p["versionInfo"].as_str().unwrap().into(), arch.into())
        })
        .collect();
    let sbom_wheels: BTreeSet<(String, String)> = listed("SPDXRef-python-")
        .map(|p| (p["name"].as_str().unwrap().into(), p["versionInfo"].as_str().unwrap().into()))
        .collect();
    assert_eq!(sbom_debs, debs, "the SBOM's Debian packages are dpkg's");
    assert_eq!(sbom_wheels, wheels, "the SBOM's Python distributions are the image's .dist-info");
    assert!(debs.iter().any(|(name, ..)| name == "jq") && debs.len() > 40, "{debs:?}");
    assert!(wheels.iter().any(|(name, _)| name == "PyYAML"), "{wheels:?}");
    // What the build knows: every .deb and wheel with its SHA-256 (our base and our RUNs installed them all).
    for package in listed("SPDXRef-deb-").chain(listed("SPDXRef-python-")) {
        let sha = package["checksums"][0]["checksumValue"].as_str().unwrap_or_default();
        assert_eq!(sha.len(), 64, "no SHA-256 for {package}");
    }
    let jq = listed("SPDXRef-deb-").find(|p| p["name"] == "jq").unwrap();
    assert_eq!(jq["licenseDeclared"], "MIT AND CC-BY-3.0 AND GPL-2.0-or-later", "jq's DEP-5 copyright");
    let kinds: Vec<&str> = ["SPDXRef-Image", "SPDXRef-Plugin", "SPDXRef-Base"]
        .into_iter()
        .filter(|id| packages.iter().any(|p| p["SPDXID"] == *id))
        .collect();
    assert_eq!(kinds.len(), 3, "the image, the plugin and the base are described");
    let plugin = packages.iter().find(|p| p["SPDXID"] == "SPDXRef-Plugin").unwrap();
    assert_eq!(
        (&plugin["name"], &plugin["versionInfo"]),
        (&Value::from("supervisely/class-catalog"), &Value::from("0.1.0"))
    );
    eprintln!(
        "class-catalog's SBOM: {} Debian packages, {} Python distributions, the plugin, the base image",
        sbom_debs.len(),
        sbom_wheels.len()
    );

    // The provenance names the inputs by digest.
    let provenance: Value = serde_json::from_slice(provenance_bytes).unwrap();
    assert_eq!(provenance["_type"], "https://in-toto.io/Statement/v1");
    assert_eq!(provenance["predicateType"], "https://slsa.dev/provenance/v1");
    assert_eq!(
        format!("sha256:{}", provenance["subject"][0]["digest"]["sha256"].as_str().unwrap()),
        image["digest"].as_str().unwrap()
    );
    let definition = &provenance["predicate"]["buildDefinition"];
    assert_eq!(definition["internalParameters"]["SOURCE_DATE_EPOCH"], "0");
    assert_eq!(definition["externalParameters"]["buildArgs"]["MODULE_PATH"], "plugins/tools/class-catalog");
    let sha = |path: &str| forge_digest::Digest::of(&fs::read(repo.join(path)).unwrap()).hex().to_owned();
    for (uri, path) in [
        ("file:plugins/tools/class-catalog/Dockerfile", "plugins/tools/class-catalog/Dockerfile"),
        ("file:plugins/tools/class-catalog/Dockerfile.lock", "plugins/tools/class-catalog/Dockerfile.lock"),
        ("file:base-images/base-py.lock", "base-images/base-py.lock"),
    ] {
        let dependency =
            definition["resolvedDependencies"].as_array().unwrap().iter().find(|d| d["uri"] == uri);
        assert_eq!(dependency.map(|d| d["digest"]["sha256"].clone()), Some(Value::from(sha(path))), "{uri}");
    }

    // The official schemas, with a validator we did not write; CycloneDX from a build that asks for it.
    if let Some(python) = validators() {
        validate(&python, "spdx", spdx_bytes, scratch.path());
        let line: Value = serde_json::from_str(
            ok(&xtask(
                repo,
                &["build", "class-catalog", "--root", root, "--sbom", "cyclonedx", "--format", "json"],
            ))
            .trim(),
        )
        .unwrap();
        assert_eq!(line["digest"], built["digest"], "the SBOM format does not change the image");
        let printed = Command::new(env!("CARGO_BIN_EXE_xtask"))
            .args(["image", "sbom", IMAGE, "--format", "cyclonedx", "--root", root])
            .output()
            .unwrap();
        assert!(printed.status.success(), "{}", String::from_utf8_lossy(&printed.stderr));
        let cyclonedx: Value = serde_json::from_slice(&printed.stdout).unwrap();
        let libraries =
            cyclonedx["components"].as_array().unwrap().iter().filter(|c| c["type"] == "library").count();
        assert_eq!(libraries, debs.len() + wheels.len());
        validate(&python, "cyclonedx", &printed.stdout, scratch.path());
    }

    // Built again from nothing: the same documents, byte for byte.
    let again: Value = serde_json::from_str(
        ok(&xtask(repo, &["build", "class-catalog", "--root", root, "--no-cache", "--format", "json"]))
            .trim(),
    )
    .unwrap();
    assert_eq!(again["layers_cached"], 0, "{again}");
    for field in ["digest", "sbom", "provenance"] {
        assert_eq!(again[field], built[field], "{field} after a build without cache");
    }
    assert_eq!(member(&tarball, "index.json"), serde_json::to_vec(&index).unwrap());

    // docker load takes the image only.
    if let Some(engine) = engine {
        let loaded = engine.docker(&["load", "-i", tarball.to_str().unwrap()]).unwrap();
        let lines: Vec<&str> = loaded.lines().filter(|l| l.starts_with("Loaded")).collect();
        assert_eq!(lines, [format!("Loaded image: {IMAGE}")], "{loaded}");
        let images = engine.docker(&["image", "ls", "--format", "{{.Repository}}:{{.Tag}}"]).unwrap();
        assert!(!images.contains("<none>"), "{images}");
    }
    eprintln!("class-catalog's SBOM and provenance checked in {:.1}s", started.elapsed().as_secs_f64());
}
