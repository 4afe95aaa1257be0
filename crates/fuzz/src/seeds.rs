//! The seed corpus of each target: real-shaped inputs (the sample plugins'
//! files, the base-image descriptions, archives built here) that mutations
//! start from.

use crate::Target;

const SAMPLE_DOCKERFILE: &str = include_str!("../../../plugins/tools/dataset-stats/Dockerfile");
const SAMPLE_INFO: &str = include_str!("../../../plugins/tools/dataset-stats/plugin_info.json");
const SAMPLE_VERSION: &str = include_str!("../../../plugins/tools/dataset-stats/VERSION");
const BASE_TOML: &str = include_str!("../../../base-images/base-py.toml");
const BASE_LOCK: &str = include_str!("../../../base-images/base-py.lock");

/// The seeds of `target`; never empty.
pub fn seeds(target: Target) -> Vec<Vec<u8>> {
    let texts: Vec<String> = match target {
        Target::Dockerfile => dockerfiles(),
        Target::Manifest => manifests(),
        Target::Dockerignore => dockerignores(),
        Target::Shell => shell_scripts(),
        Target::Archive => return archives(),
        Target::Deb => return vec![deb(b"2.0\n"), deb(b"2.1\n")],
        Target::Unpack => return layers(),
    };
    texts.into_iter().map(String::into_bytes).collect()
}

fn dockerfiles() -> Vec<String> {
    vec![
        SAMPLE_DOCKERFILE.to_string(),
        "FROM scratch\nARG A=1\nENV B=${A:-x} C=\"q $A\" \\\n    D='$A'\nCOPY --chmod=0644 src/ /app/\nADD requirements.txt /r\nWORKDIR /app\nCMD [\"python\", \"-u\", \"main.py\"]\n".to_string(),
        "# escape=`\nFROM scratch\nENV P=C:`\\x `\n    Q=${P:+set}${Z:-${P}}\nLABEL a=b \"c d\"=e\nUSER 1000:1000\nEXPOSE 80/tcp 53/udp\nSTOPSIGNAL SIGTERM\nSHELL [\"/bin/bash\", \"-c\"]\nVOLUME [\"/data\"]\nENTRYPOINT python\n".to_string(),
        "ARG BASE=scratch\nFROM $BASE AS build\nRUN <<EOF\necho hi\nEOF\nCOPY --from=build /a /b\nCOPY --chown=abc:def src /s\nENV X=${Y:?needs Y}\nHEALTHCHECK CMD true\nONBUILD RUN x\nMAINTAINER me\n".to_string(),
        "FROM scratch\nENV A=x\nENV A=$A$A\nENV A=$A$A\nENV A=\"abc\nCOPY [\"src\", \"/x y/\"]\nADD --chmod=755 src/sub /d\nCOPY src/*.py src/s?b /g/\n".to_string(),
    ]
}

fn shell_scripts() -> Vec<String> {
    [
        "apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends jq curl=7.88 \\\n    && apt-get clean && rm -rf /var/lib/apt/lists/* /tmp/*",
        "set -eux; pip install --no-cache-dir -U pip && python3 -m pip install -r requirements.txt \"pillow<7\" 'a[b]>=1' $PKGS",
        "X=${UNSET:-\"a b\"} && pip install ${X:+$X} \"${HOME}/x\" -i https://m/simple --extra-index-url=https://e",
        "apt-get -o APT::Install-Recommends=0 -qqy install g++ && apt-get -y --purge autoremove # done",
        "pip install x | tee log || true > /dev/null 2>&1 & $(id) `id` ${#A} $? ~/x { a; } (b)",
    ]
    .map(str::to_string)
    .to_vec()
}

fn manifests() -> Vec<String> {
    vec![
        SAMPLE_INFO.to_string(),
        SAMPLE_VERSION.to_string(),
        "[{\"name\": \"default\", \"type\": \"train\", \"config\": {\"lr\": 0.1, \"a\": [1, 2, {\"b\": null}]}}]".to_string(),
        "example/img:1.0\n".to_string(),
        BASE_TOML.to_string(),
        BASE_LOCK.to_string(),
        "Package: libc6\nVersion: 2.36-9+deb12u4\nArchitecture: amd64\nDepends: libgcc-s1, foo (>= 1:2.0~rc1) | bar [amd64] <!nocheck>\nFilename: pool/main/g/glibc/libc6.deb\nSize: 123\nSHA256: 00\nDescription: x\n more\n .\n\nPackage: b\nVersion: 1\n".to_string(),
        "Origin: Debian\nSuite: stable\nDate: Sat, 09 Nov 2024 10:00:00 UTC\nValid-Until: Sat, 16 Nov 2024 10:00:00 UTC\nArchitectures: amd64\nComponents: main\nSHA256:\n 0123 456 main/binary-amd64/Packages.xz\n".to_string(),
    ]
}

fn dockerignores() -> Vec<String> {
    vec![
        "supervisely_lib\n!supervisely_lib/__init__.py\n\nsupervisely_lib/__init__.py\nsupervisely_lib/x.py\n".to_string(),
        "**/*.pyc\n/target/\n../x\n!**/keep\n# comment\n  spaced  \n\na.pyc\nsrc/b/keep\ntarget/x\n".to_string(),
        "*\n!src\nsrc/**/secret[0-9]\n\\!literal\n{a,b}\n\nsrc/x/secret1\n!literal\na\n".to_string(),
    ]
}

/// A tar archive of `entries`: (path, type, content or link target, mode).
fn tar_of(entries: &[(&str, tar::EntryType, &[u8], u32)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, kind, data, mode) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(*kind);
        header.set_mode(*mode);
        header.set_mtime(0);
        let result = if matches!(kind, tar::EntryType::Symlink | tar::EntryType::Link) {
            header.set_size(0);
            builder.append_link(&mut header, path, String::from_utf8_lossy(data).as_ref())
        } else {
            header.set_size(data.len() as u64);
            builder.append_data(&mut header, path, *data)
        };
        // Seeds are built from constants; a refusal would only drop a seed.
        let _ = result;
    }
    builder.into_inner().unwrap_or_default()
}

fn layers() -> Vec<Vec<u8>> {
    use tar::EntryType::{Directory, Link, Regular, Symlink};
    let long = format!("{}/f", "d".repeat(150));
    vec![
        tar_of(&[
            ("etc/", Directory, b"", 0o755),
            ("etc/passwd", Regular, b"root:x:0:0::/root:/bin/sh\n", 0o644),
            ("etc/link", Symlink, b"passwd", 0o777),
            ("etc/hard", Link, b"etc/passwd", 0o644),
            ("bin/", Directory, b"", 0o555),
            ("bin/sh", Regular, b"\x7fELF", 0o4755),
        ]),
        tar_of(&[
            ("a/", Directory, b"", 0o700),
            ("a/.wh.b", Regular, b"", 0o644),
            ("a/.wh..wh..opq", Regular, b"", 0o644),
            ("a/c", Regular, b"c", 0o600),
            (long.as_str(), Regular, b"long", 0o644),
            ("x", Symlink, b"../../etc", 0o777),
            ("x/y", Regular, b"through the link", 0o644),
        ]),
    ]
}

fn archives() -> Vec<Vec<u8>> {
    use tar::EntryType::{Directory, Regular};
    let layer = layers().remove(0);
    let config = br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:0000000000000000000000000000000000000000000000000000000000000000"]},"config":{}}"#;
    let docker = tar_of(&[
        (
            "manifest.json",
            Regular,
            br#"[{"Config":"c.json","RepoTags":["example/a:latest"],"Layers":["l/layer.tar"]}]"#,
            0o644,
        ),
        ("c.json", Regular, config, 0o644),
        ("l/", Directory, b"", 0o755),
        ("l/layer.tar", Regular, &layer, 0o644),
    ]);
    let oci = tar_of(&[
        ("oci-layout", Regular, br#"{"imageLayoutVersion":"1.0.0"}"#, 0o644),
        ("index.json", Regular, br#"{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:1111111111111111111111111111111111111111111111111111111111111111","size":2,"annotations":{"org.opencontainers.image.ref.name":"latest"}}]}"#, 0o644),
        ("blobs/sha256/1111111111111111111111111111111111111111111111111111111111111111", Regular, b"{}", 0o644),
    ]);
    vec![layer, docker, oci]
}

fn ar_member(out: &mut Vec<u8>, name: &str, data: &[u8]) {
    out.extend_from_slice(
        format!("{name:<16}{:<12}{:<6}{:<6}{:<8}{:<10}`\n", 0, 0, 0, 100644, data.len()).as_bytes(),
    );
    out.extend_from_slice(data);
    if data.len() % 2 == 1 {
        out.push(b'\n');
    }
}

fn deb(version: &[u8]) -> Vec<u8> {
    use tar::EntryType::{Directory, Regular};
    let control = tar_of(&[
        ("./", Directory, b"", 0o755),
        ("./control", Regular, b"Package: x\nVersion: 1.0\nArchitecture: amd64\nDescription: d\n", 0o644),
        ("./md5sums", Regular, b"00  usr/bin/x\n", 0o644),
        ("./conffiles", Regular, b"/etc/x.conf\n", 0o644),
    ]);
    let data = tar_of(&[("./usr/", Directory, b"", 0o755), ("./usr/bin/x", Regular, b"#!/bin/sh\n", 0o755)]);
    let mut out = b"!<arch>\n".to_vec();
    ar_member(&mut out, "debian-binary", version);
    ar_member(&mut out, "control.tar", &control);
    ar_member(&mut out, "data.tar", &data);
    out
}
