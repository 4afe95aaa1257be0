//! Archive export and the import of all three formats, round trips included.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use forge_oci::json::canonical_json;
use forge_oci::oci_spec::image::{Arch, ImageIndexBuilder, MediaType, Os, PlatformBuilder};
use forge_oci::{export_archive, import, validate, BlobStore, Digest, Error, Image};

use crate::{sample, Sample};

const TAG: &str = "registry.local:5000/forge/sample:1.0";

fn export(s: &Sample, name: &str) -> PathBuf {
    let out = s.dir.path().join(name);
    export_archive(&s.store, &s.image.manifest_digest, &[TAG.to_owned(), "sample:latest".into()], &out)
        .unwrap();
    out
}

fn fresh_store() -> (tempfile::TempDir, BlobStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open_or_create(dir.path().join("store")).unwrap();
    (dir, store)
}

/// (name, type flag, mode, uid, gid, mtime, content) of an archive member.
type Member = (String, u8, u32, u64, u64, u64, Vec<u8>);

fn members(archive: &Path) -> Vec<Member> {
    let mut out = Vec::new();
    let file = fs::File::open(archive).unwrap();
    for entry in tar::Archive::new(file).entries().unwrap() {
        let mut entry = entry.unwrap();
        let h = entry.header().clone();
        let mut content = Vec::new();
        entry.read_to_end(&mut content).unwrap();
        out.push((
            String::from_utf8(entry.path_bytes().into_owned()).unwrap(),
            h.entry_type().as_byte(),
            h.mode().unwrap(),
            h.uid().unwrap(),
            h.gid().unwrap(),
            h.mtime().unwrap(),
            content,
        ));
    }
    out
}

#[test]
fn the_archive_is_reproducible_sorted_and_normalised() {
    let s = sample();
    let a = export(&s, "a.tar");
    let b = export(&s, "b.tar");
    assert_eq!(fs::read(&a).unwrap(), fs::read(&b).unwrap());

    let members = members(&a);
    let names: Vec<&str> = members.iter().map(|m| m.0.as_str()).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
    assert_eq!(&names[..2], &["blobs/", "blobs/sha256/"]);
    assert_eq!(&names[names.len() - 4..], &["index.json", "manifest.json", "oci-layout", "repositories"]);
    assert_eq!(names.len(), 2 + 4 + 4, "{names:?}"); // manifest, config, two layers
    for (name, kind, mode, uid, gid, mtime, _) in &members {
        assert_eq!((*uid, *gid, *mtime), (0, 0, 0), "{name}");
        let want = if *kind == b'5' { 0o755 } else { 0o644 };
        assert_eq!(*mode, want, "{name}");
    }
    let content = |n: &str| String::from_utf8(members.iter().find(|m| m.0 == n).unwrap().6.clone()).unwrap();
    let config = s.image.config_digest().unwrap();
    let [base, app] = [&s.layers[0], &s.layers[1]];
    assert_eq!(
        content("manifest.json"),
        format!(
            r#"[{{"Config":"blobs/sha256/{}","Layers":["blobs/sha256/{}","blobs/sha256/{}"],"RepoTags":["{TAG}","sample:latest"]}}]"#,
            config.hex(),
            base.digest.hex(),
            app.digest.hex()
        )
    );
    assert_eq!(
        content("repositories"),
        format!(
            r#"{{"registry.local:5000/forge/sample":{{"1.0":"{0}"}},"sample":{{"latest":"{0}"}}}}"#,
            app.diff_id.hex()
        )
    );
    assert_eq!(
        content("index.json"),
        format!(
            r#"{{"manifests":[{{"annotations":{{"io.containerd.image.name":"{TAG}","org.opencontainers.image.ref.name":"1.0"}},"digest":"{}","mediaType":"application/vnd.oci.image.manifest.v1+json","size":{}}}],"mediaType":"application/vnd.oci.image.index.v1+json","schemaVersion":2}}"#,
            s.image.manifest_digest, s.image.manifest_size
        )
    );
    assert_eq!(content("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#);
    let blob =
        |d: &Digest| members.iter().find(|m| m.0 == format!("blobs/sha256/{}", d.hex())).unwrap().6.clone();
    assert_eq!(blob(&base.digest), fs::read(s.store.path(&base.digest)).unwrap());
}

#[test]
fn a_failed_export_leaves_the_old_file_and_no_temp_file() {
    let s = sample();
    let out = export(&s, "image.tar");
    let before = fs::read(&out).unwrap();
    let layer = s.store.path(&s.layers[0].digest);
    let mut bytes = fs::read(&layer).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    fs::write(&layer, &bytes).unwrap();
    let err = export_archive(&s.store, &s.image.manifest_digest, &[TAG.into()], &out).unwrap_err();
    assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
    assert_eq!(fs::read(&out).unwrap(), before);
    let stray: Vec<_> = fs::read_dir(s.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".tmp"))
        .collect();
    assert_eq!(stray, Vec::<String>::new());
    assert!(matches!(
        export_archive(&s.store, &s.image.manifest_digest, &["bad tag".into()], &out),
        Err(Error::InvalidRepoTag { .. })
    ));
}

#[test]
fn oci_archive_round_trip() {
    let s = sample();
    // A name that says nothing: the content decides.
    let archive = export(&s, "image.data");
    let (_dir, store) = fresh_store();
    let image = import(&archive, None, &store).unwrap();
    assert_eq!(image, s.image);
    validate::image(&store, &image.manifest_digest).unwrap();

    // By tag, and a tag that is not there.
    let (_dir, store) = fresh_store();
    assert_eq!(import(&archive, Some("1.0"), &store).unwrap(), s.image);
    assert_eq!(import(&archive, Some(TAG), &store).unwrap(), s.image);
    let err = import(&archive, Some("2.0"), &store).unwrap_err();
    assert!(
        matches!(&err, Error::TagNotFound { available, .. } if available == &["1.0".to_owned()]),
        "{err}"
    );
    assert!(err.to_string().contains("available: 1.0"), "{err}");

    // Gzip-compressed archives are recognised too.
    let gz = s.dir.path().join("image.tgz");
    let mut enc = GzEncoder::new(fs::File::create(&gz).unwrap(), flate2::Compression::fast());
    enc.write_all(&fs::read(&archive).unwrap()).unwrap();
    enc.finish().unwrap();
    let (_dir, store) = fresh_store();
    assert_eq!(import(&gz, None, &store).unwrap(), s.image);
}

#[test]
fn oci_layout_directory_round_trip() {
    let s = sample();
    let archive = export(&s, "image.tar");
    let layout = s.dir.path().join("layout");
    tar::Archive::new(fs::File::open(&archive).unwrap()).unpack(&layout).unwrap();
    let (_dir, store) = fresh_store();
    let image = import(&layout, None, &store).unwrap();
    assert_eq!(image, s.image);
    validate::image(&store, &image.manifest_digest).unwrap();

    // A corrupted blob in the directory is refused and not stored.
    let layer = &s.layers[1].digest;
    let blob = layout.join("blobs/sha256").join(layer.hex());
    let mut bytes = fs::read(&blob).unwrap();
    bytes[20] ^= 1;
    fs::write(&blob, &bytes).unwrap();
    let (_dir, store) = fresh_store();
    let err = import(&layout, None, &store).unwrap_err();
    assert!(matches!(&err, Error::DigestMismatch { what, .. } if what.contains(layer.hex())), "{err}");
    assert!(!store.contains(layer));
}

#[test]
fn a_layout_with_several_images_needs_a_tag() {
    let s = sample();
    let other = forge_oci::write_image(&s.store, &s.image.config, &[], &[("x".into(), "y".into())].into());
    // Deliberately inconsistent (no layers): selection does not validate.
    let other = other.unwrap();
    s.store.set_ref("one", &s.image.manifest_descriptor()).unwrap();
    s.store.set_ref("two", &other.manifest_descriptor()).unwrap();
    let (_dir, store) = fresh_store();
    let err = import(s.store.root(), None, &store).unwrap_err();
    assert!(
        matches!(&err, Error::AmbiguousImage { available, .. } if available == &["one".to_owned(), "two".to_owned()])
    );
    assert!(err.to_string().contains("pass a tag to choose one of: one, two"), "{err}");
    assert_eq!(import(s.store.root(), Some("one"), &store).unwrap(), s.image);
    assert_eq!(import(s.store.root(), Some("two"), &store).unwrap().manifest_digest, other.manifest_digest);
    assert!(matches!(import(s.store.root(), Some("three"), &store), Err(Error::TagNotFound { .. })));
}

#[test]
fn a_nested_index_resolves_to_linux_amd64() {
    let s = sample();
    let mut arm = s.image.manifest_descriptor();
    arm.set_platform(Some(
        PlatformBuilder::default().architecture(Arch::ARM64).os(Os::Linux).build().unwrap(),
    ));
    let mut amd = s.image.manifest_descriptor();
    amd.set_platform(Some(
        PlatformBuilder::default().architecture(Arch::Amd64).os(Os::Linux).build().unwrap(),
    ));
    let index = ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageIndex)
        .manifests(vec![arm.clone(), amd])
        .build()
        .unwrap();
    let (digest, size) = s.store.put_bytes(&canonical_json(&index, "index").unwrap()).unwrap();
    s.store.set_ref("multi", &forge_oci::descriptor(MediaType::ImageIndex, &digest, size)).unwrap();
    let (_dir, store) = fresh_store();
    assert_eq!(import(s.store.root(), Some("multi"), &store).unwrap(), s.image);

    let index = ImageIndexBuilder::default().schema_version(2u32).manifests(vec![arm]).build().unwrap();
    let (digest, size) = s.store.put_bytes(&canonical_json(&index, "index").unwrap()).unwrap();
    s.store.set_ref("arm-only", &forge_oci::descriptor(MediaType::ImageIndex, &digest, size)).unwrap();
    let err = import(s.store.root(), Some("arm-only"), &store).unwrap_err();
    assert!(err.to_string().contains("without a linux/amd64 image (it has: linux/arm64)"), "{err}");
}

#[test]
fn platform_manifests_listed_directly_in_index_json() {
    let s = sample();
    let platform = |arch| PlatformBuilder::default().architecture(arch).os(Os::Linux).build().unwrap();
    let mut arm = s.image.manifest_descriptor();
    arm.set_platform(Some(platform(Arch::ARM64)));
    let mut amd = s.image.manifest_descriptor();
    amd.set_platform(Some(platform(Arch::Amd64)));
    let index = ImageIndexBuilder::default().schema_version(2u32).manifests(vec![arm, amd]).build().unwrap();
    fs::write(s.store.root().join("index.json"), canonical_json(&index, "index").unwrap()).unwrap();
    let (_dir, store) = fresh_store();
    assert_eq!(import(s.store.root(), None, &store).unwrap(), s.image);
}

/// Writes a `docker save`-style archive of the sample by hand: uncompressed
/// `<id>/layer.tar` members (the second one a symlink to a third directory,
/// as old Dockers wrote for shared layers), `<id>/json`, `<id>/VERSION`,
/// `<config hex>.json`, `manifest.json` and `repositories`.
fn docker_archive(s: &Sample, out: &Path, corrupt_layer: bool) {
    let mut builder = tar::Builder::new(fs::File::create(out).unwrap());
    let mut add = |name: &str, data: &[u8]| {
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        builder.append_data(&mut h, name, data).unwrap();
    };
    let mut layer_paths = Vec::new();
    for (i, layer) in s.layers.iter().enumerate() {
        let mut tar = Vec::new();
        GzDecoder::new(fs::File::open(s.store.path(&layer.digest)).unwrap()).read_to_end(&mut tar).unwrap();
        if corrupt_layer && i == 0 {
            tar[600] ^= 1;
        }
        let id = format!("{:064x}", i + 1);
        let dir = if i == 1 { "shared".to_owned() } else { id.clone() };
        add(&format!("{dir}/layer.tar"), &tar);
        add(&format!("{id}/json"), b"{}");
        add(&format!("{id}/VERSION"), b"1.0");
        layer_paths.push(format!("{id}/layer.tar"));
    }
    let config = s.image.config_digest().unwrap();
    add(&format!("{}.json", config.hex()), &s.store.read_verified(&config).unwrap());
    let manifest = format!(
        r#"[{{"Config":"{}.json","RepoTags":["forge/sample:1.0"],"Layers":["{}","{}"]}}]"#,
        config.hex(),
        layer_paths[0],
        layer_paths[1]
    );
    add("manifest.json", manifest.as_bytes());
    add("repositories", b"{}");
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_size(0);
    h.set_mode(0o777);
    builder.append_link(&mut h, &layer_paths[1], "../shared/layer.tar").unwrap();
    builder.finish().unwrap();
}

/// [`docker_archive`] of `s`, written to `name` in its directory, imported
/// into a fresh store.
fn import_docker_archive(
    s: &Sample,
    name: &str,
    corrupt_layer: bool,
) -> (tempfile::TempDir, BlobStore, Result<Image, Error>) {
    let archive = s.dir.path().join(name);
    docker_archive(s, &archive, corrupt_layer);
    let (dir, store) = fresh_store();
    let image = import(&archive, None, &store);
    (dir, store, image)
}

#[test]
fn docker_archive_import_keeps_uncompressed_layers() {
    let s = sample();
    let (_dir, store, image) = import_docker_archive(&s, "docker-save", false);
    let image = image.unwrap();
    let archive = s.dir.path().join("docker-save");
    validate::image(&store, &image.manifest_digest).unwrap();
    // The config is kept byte for byte; layers are stored uncompressed, with
    // the diff ID as their digest.
    assert_eq!(image.config_digest().unwrap(), s.image.config_digest().unwrap());
    let layers = image.manifest.layers();
    assert_eq!(layers.len(), 2);
    for (desc, built) in layers.iter().zip(&s.layers) {
        assert_eq!(desc.media_type(), &MediaType::ImageLayer);
        assert_eq!(Digest::from_descriptor(desc).unwrap(), built.diff_id);
    }
    assert_eq!(image.diff_ids().unwrap(), s.layers.iter().map(|l| l.diff_id.clone()).collect::<Vec<_>>());
    assert_eq!(Image::load(&store, &image.manifest_digest).unwrap(), image);

    // By tag or by tag part; a missing tag lists what there is.
    assert_eq!(import(&archive, Some("forge/sample:1.0"), &store).unwrap(), image);
    assert_eq!(import(&archive, Some("1.0"), &store).unwrap(), image);
    let err = import(&archive, Some("2.0"), &store).unwrap_err();
    assert!(err.to_string().contains("available: forge/sample:1.0"), "{err}");
    // Nothing but blobs landed: no temp files.
    for entry in fs::read_dir(store.root().join("blobs")).unwrap() {
        let name = entry.unwrap().file_name();
        assert_eq!(name, "sha256");
    }
}

#[test]
fn docker_archive_with_gzip_layers_is_our_own_export() {
    // Our export is a docker-archive too; strip the OCI parts and it must
    // still import, with gzip layers whose diff IDs are checked.
    let s = sample();
    let full = export(&s, "image.tar");
    let docker_only = s.dir.path().join("docker-only.tar");
    let mut builder = tar::Builder::new(fs::File::create(&docker_only).unwrap());
    for entry in tar::Archive::new(fs::File::open(&full).unwrap()).entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = String::from_utf8(entry.path_bytes().into_owned()).unwrap();
        if name == "oci-layout" || name == "index.json" {
            continue;
        }
        let mut header = entry.header().clone();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).unwrap();
        builder.append_data(&mut header, &name, &data[..]).unwrap();
    }
    builder.finish().unwrap();
    let (_dir, store) = fresh_store();
    let image = import(&docker_only, Some("sample:latest"), &store).unwrap();
    assert_eq!(image.manifest.layers(), s.image.manifest.layers());
    assert_eq!(image.config, s.image.config);
    validate::image(&store, &image.manifest_digest).unwrap();
}

#[test]
fn docker_archive_with_a_wrong_layer_is_refused() {
    let s = sample();
    let (_dir, _, image) = import_docker_archive(&s, "bad-docker.tar", true);
    let err = image.unwrap_err();
    assert!(matches!(err, Error::DiffIdMismatch { index: 0, .. }), "{err}");
    assert!(err.to_string().contains("layer.tar: layer 0 has diff ID"), "{err}");
}

#[test]
fn a_corrupted_blob_in_an_oci_archive_is_refused() {
    let s = sample();
    let full = export(&s, "image.tar");
    let bad = s.dir.path().join("bad.tar");
    let target = format!("blobs/sha256/{}", s.layers[0].digest.hex());
    let mut builder = tar::Builder::new(fs::File::create(&bad).unwrap());
    for entry in tar::Archive::new(fs::File::open(&full).unwrap()).entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = String::from_utf8(entry.path_bytes().into_owned()).unwrap();
        let mut header = entry.header().clone();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).unwrap();
        if name == target {
            data[100] ^= 1;
        }
        builder.append_data(&mut header, &name, &data[..]).unwrap();
    }
    builder.finish().unwrap();
    let (_dir, store) = fresh_store();
    let err = import(&bad, None, &store).unwrap_err();
    assert!(matches!(&err, Error::DigestMismatch { what, .. } if what.ends_with(&target)), "{err}");
    assert!(!store.contains(&s.layers[0].digest));
}

#[test]
fn things_that_are_not_images_are_refused_with_a_hint() {
    let dir = tempfile::tempdir().unwrap();
    let (_d, store) = fresh_store();
    let text = dir.path().join("image.tar");
    fs::write(&text, "hello, not a tar at all").unwrap();
    let err = import(&text, None, &store).unwrap_err();
    assert!(matches!(err, Error::NotAnImage { .. }), "{err}");
    assert!(err.to_string().contains("not a tar archive"), "{err}");

    let zstd = dir.path().join("image.tar.zst");
    fs::write(&zstd, [0x28, 0xb5, 0x2f, 0xfd, 0, 0, 0]).unwrap();
    assert!(matches!(import(&zstd, None, &store), Err(Error::Unsupported { .. })));

    let empty_dir = dir.path().join("empty");
    fs::create_dir(&empty_dir).unwrap();
    let err = import(&empty_dir, None, &store).unwrap_err();
    assert!(err.to_string().contains("has no `oci-layout` file"), "{err}");

    let plain_tar = dir.path().join("plain.tar");
    let mut builder = tar::Builder::new(fs::File::create(&plain_tar).unwrap());
    let mut h = tar::Header::new_ustar();
    h.set_size(2);
    builder.append_data(&mut h, "hello.txt", &b"hi"[..]).unwrap();
    builder.finish().unwrap();
    let err = import(&plain_tar, None, &store).unwrap_err();
    assert!(err.to_string().contains("neither `oci-layout` nor `manifest.json`"), "{err}");

    assert!(matches!(import(&dir.path().join("missing"), None, &store), Err(Error::Io(_))));
}

/// A second image over the sample's layers: another config (one label
/// more), the same blobs.
fn sibling(s: &Sample) -> Image {
    let mut config = s.image.config.clone();
    let mut runtime = config.config().clone().unwrap_or_default();
    let mut labels = runtime.labels().clone().unwrap_or_default();
    labels.insert("sibling".into(), "yes".into());
    runtime.set_labels(Some(labels));
    config.set_config(Some(runtime));
    forge_oci::write_image(&s.store, &config, s.image.manifest.layers(), &Default::default()).unwrap()
}

#[test]
fn an_archive_of_many_images_names_each_by_its_reference_and_holds_each_blob_once() {
    use forge_oci::{write_archive, ArchiveImage, RefNames};
    let s = sample();
    let other = sibling(&s);
    let images = [
        ArchiveImage {
            manifest: s.image.manifest_digest.clone(),
            repo_tags: vec![TAG.into(), "registry.local:5000/forge/sample:latest".into()],
            referrers: Vec::new(),
        },
        ArchiveImage {
            manifest: other.manifest_digest.clone(),
            repo_tags: vec!["registry.local:5000/forge/other:2.0".into()],
            referrers: Vec::new(),
        },
    ];
    let a = s.dir.path().join("a.tar");
    write_archive(&s.store, &images, RefNames::Reference, &a).unwrap();
    // The order given does not matter.
    let b = s.dir.path().join("b.tar");
    let reversed = [images[1].clone(), images[0].clone()];
    write_archive(&s.store, &reversed, RefNames::Reference, &b).unwrap();
    assert_eq!(fs::read(&a).unwrap(), fs::read(&b).unwrap());

    let members = members(&a);
    let names: Vec<&str> = members.iter().map(|m| m.0.as_str()).collect();
    let mut unique = names.clone();
    unique.dedup();
    assert_eq!(unique, names, "sorted, each once");
    // Two manifests, two configs, the two shared layers.
    assert_eq!(names.iter().filter(|n| n.starts_with("blobs/sha256/") && n.len() > 14).count(), 6);
    let index = forge_testkit::archive_index(&a);
    let refs: Vec<(&str, &str, &str)> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let ann = &m["annotations"];
            let name = ann["org.opencontainers.image.ref.name"].as_str().unwrap();
            assert_eq!(ann["io.containerd.image.name"], name);
            (name, m["digest"].as_str().unwrap(), m["mediaType"].as_str().unwrap())
        })
        .collect();
    let (one, two) = (s.image.manifest_digest.to_string(), other.manifest_digest.to_string());
    let manifest = MediaType::ImageManifest.to_string();
    assert_eq!(
        refs,
        [
            ("registry.local:5000/forge/other:2.0", two.as_str(), manifest.as_str()),
            (TAG, one.as_str(), manifest.as_str()),
            ("registry.local:5000/forge/sample:latest", one.as_str(), manifest.as_str()),
        ]
    );
    let docker = members.iter().find(|m| m.0 == "manifest.json").unwrap();
    let docker: serde_json::Value = serde_json::from_slice(&docker.6).unwrap();
    let tags: Vec<&serde_json::Value> = docker.as_array().unwrap().iter().map(|e| &e["RepoTags"]).collect();
    assert_eq!(
        tags,
        [
            &serde_json::json!(["registry.local:5000/forge/other:2.0"]),
            &serde_json::json!([TAG, "registry.local:5000/forge/sample:latest"])
        ]
    );

    // A name given to two images is refused, and nothing is written.
    let clash = [images[0].clone(), ArchiveImage { repo_tags: vec![TAG.into()], ..images[1].clone() }];
    let c = s.dir.path().join("c.tar");
    let err = write_archive(&s.store, &clash, RefNames::Reference, &c).unwrap_err();
    assert!(matches!(&err, Error::DuplicateRefName { name } if name == TAG), "{err}");
    assert!(!c.exists());
}

#[test]
fn an_unchanged_archive_is_not_written_again_and_a_changed_file_is() {
    use forge_oci::{update_archive, ArchiveImage, RefNames, Written};
    use std::os::unix::fs::MetadataExt;
    let s = sample();
    let image = ArchiveImage {
        manifest: s.image.manifest_digest.clone(),
        repo_tags: vec![TAG.into()],
        referrers: Vec::new(),
    };
    let out = s.dir.path().join("out.tar");
    let update =
        |image: &ArchiveImage| update_archive(&s.store, std::slice::from_ref(image), RefNames::Tag, &out);
    let stamp = || {
        let m = fs::metadata(&out).unwrap();
        (m.ino(), m.mtime_nsec(), m.ctime_nsec())
    };
    assert_eq!(update(&image).unwrap(), Written::Wrote);
    let (bytes, first) = (fs::read(&out).unwrap(), stamp());
    assert_eq!(update(&image).unwrap(), Written::Unchanged);
    assert_eq!(stamp(), first);
    // Another name is other bytes.
    let renamed = ArchiveImage { repo_tags: vec!["forge/sample:2".into()], ..image.clone() };
    assert_eq!(update(&renamed).unwrap(), Written::Wrote);
    assert_eq!(update(&image).unwrap(), Written::Wrote);
    assert_eq!(fs::read(&out).unwrap(), bytes);
    // Edited in place (same size), or deleted: written again.
    let mut edited = bytes.clone();
    edited[0] ^= 1;
    fs::write(&out, &edited).unwrap();
    assert_eq!(update(&image).unwrap(), Written::Wrote);
    assert_eq!(fs::read(&out).unwrap(), bytes);
    fs::remove_file(&out).unwrap();
    assert_eq!(update(&image).unwrap(), Written::Wrote);
    assert_eq!(fs::read(&out).unwrap(), bytes);
    assert_eq!(update(&image).unwrap(), Written::Unchanged);
}

#[test]
fn an_image_of_several_platforms_is_its_index_in_an_archive_of_many_and_the_hosts_for_docker() {
    use forge_oci::{write_archive, write_index, ArchiveImage, Platform, RefNames};
    let s = sample();
    let for_platform = |name: &str| {
        let mut config = s.image.config.clone();
        Platform::parse(name).unwrap().set_on(&mut config);
        forge_oci::write_image(&s.store, &config, s.image.manifest.layers(), &Default::default()).unwrap()
    };
    let (arm, amd) = (for_platform("linux/arm64"), for_platform("linux/amd64"));
    let index = write_index(&s.store, &[arm.clone(), amd.clone()], &Default::default()).unwrap();
    let multi = ArchiveImage {
        manifest: index.digest.clone(),
        repo_tags: vec!["forge/multi:1".into()],
        referrers: Vec::new(),
    };
    let plain = ArchiveImage {
        manifest: s.image.manifest_digest.clone(),
        repo_tags: vec![TAG.into()],
        referrers: Vec::new(),
    };
    let out = s.dir.path().join("all.tar");
    write_archive(&s.store, &[plain, multi], RefNames::Reference, &out).unwrap();
    let entries = forge_testkit::archive_index(&out)["manifests"].clone();
    assert_eq!(entries[0]["annotations"]["org.opencontainers.image.ref.name"], "forge/multi:1");
    assert_eq!(entries[0]["digest"], index.digest.to_string());
    assert_eq!(entries[0]["mediaType"], MediaType::ImageIndex.to_string());
    let members = members(&out);
    let docker = &members.iter().find(|m| m.0 == "manifest.json").unwrap().6;
    let docker: serde_json::Value = serde_json::from_slice(docker).unwrap();
    let host = if Platform::host() == Platform::parse("linux/arm64").unwrap() { &arm } else { &amd };
    let config = host.manifest.config().digest().to_string();
    assert_eq!(docker[0]["Config"], format!("blobs/sha256/{}", config.trim_start_matches("sha256:")));
    assert_eq!(docker[0]["RepoTags"], serde_json::json!(["forge/multi:1"]));
    // Both platforms' manifests and configs are in it, the shared layers once.
    for image in [&arm, &amd] {
        for digest in [image.manifest_digest.to_string(), image.manifest.config().digest().to_string()] {
            let name = format!("blobs/sha256/{}", digest.trim_start_matches("sha256:"));
            assert_eq!(members.iter().filter(|m| m.0 == name).count(), 1, "{name}");
        }
    }
}
