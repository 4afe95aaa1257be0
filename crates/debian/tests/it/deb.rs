//! `.deb` files built here (ar + tar members in each compression) read back.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use forge_debian::deb::DebFile;
use forge_debian::Error;
use forge_testkit::deb::ar;

const CONTROL: &str =
    "Package: hello\nVersion: 1.0-1\nArchitecture: amd64\nDescription: greeting\n multi-line\n";

fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name, *data).unwrap();
    }
    b.into_inner().unwrap()
}

fn compress(ext: &str, data: &[u8]) -> Vec<u8> {
    match ext {
        "" => data.to_vec(),
        ".gz" => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(data).unwrap();
            e.finish().unwrap()
        }
        ".xz" => {
            let mut e = liblzma::write::XzEncoder::new(Vec::new(), 6);
            e.write_all(data).unwrap();
            e.finish().unwrap()
        }
        ".zst" => ruzstd::encoding::compress_to_vec(data, ruzstd::encoding::CompressionLevel::Fastest),
        ".bz2" => data.to_vec(),
        _ => unreachable!(),
    }
}

fn deb(control_ext: &str, data_ext: &str) -> Vec<u8> {
    let control = tar_of(&[
        ("./control", CONTROL.as_bytes()),
        ("./md5sums", b"d41d8cd98f00b204e9800998ecf8427e  usr/bin/hello\n"),
        ("./conffiles", b"/etc/hello.conf\n\n/etc/old.conf remove-on-upgrade\n"),
        ("./postinst", b"#!/bin/sh\nexit 0\n"),
    ]);
    let data = tar_of(&[("./usr/bin/hello", b"#!/bin/sh\necho hi\n"), ("./etc/hello.conf", b"x=1\n")]);
    ar(&[
        ("debian-binary", b"2.0\n".to_vec()),
        (&format!("control.tar{control_ext}"), compress(control_ext, &control)),
        (&format!("data.tar{data_ext}"), compress(data_ext, &data)),
    ])
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn every_compression_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    for (c, d) in [(".gz", ".xz"), (".xz", ".gz"), (".zst", ".zst"), ("", ""), (".xz", ".xz")] {
        let path = write(dir.path(), "hello.deb", &deb(c, d));
        let deb = DebFile::open(&path).unwrap_or_else(|e| panic!("{c} {d}: {e}"));
        let control = deb.control().unwrap();
        assert_eq!(control.control, CONTROL);
        assert_eq!(control.md5sums.as_deref(), Some("d41d8cd98f00b204e9800998ecf8427e  usr/bin/hello\n"));
        assert_eq!(control.conffiles, ["/etc/hello.conf", "/etc/old.conf remove-on-upgrade"]);
        assert_eq!(control.others, [("postinst".to_owned(), 0o644, b"#!/bin/sh\nexit 0\n".to_vec())]);
        let mut data = deb.data().unwrap();
        let mut seen = Vec::new();
        for entry in data.entries().unwrap() {
            let mut entry = entry.unwrap();
            let mut body = String::new();
            entry.read_to_string(&mut body).unwrap();
            seen.push(format!("{} {body:?}", entry.path().unwrap().display()));
        }
        assert_eq!(
            seen,
            ["usr/bin/hello \"#!/bin/sh\\necho hi\\n\"", "etc/hello.conf \"x=1\\n\""],
            "{c} {d}"
        );
        let names: Vec<&str> = deb.members().iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names[0], "debian-binary");
    }
}

#[test]
fn bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let good = deb(".gz", ".xz");
    let no_control = ar(&[("debian-binary", b"2.0\n".to_vec()), ("data.tar", tar_of(&[]))]);
    let no_control_file = ar(&[
        ("debian-binary", b"2.0\n".to_vec()),
        ("control.tar", tar_of(&[("./md5sums", b"")])),
        ("data.tar", tar_of(&[])),
    ]);
    let two_paragraphs = ar(&[
        ("debian-binary", b"2.0\n".to_vec()),
        ("control.tar", tar_of(&[("./control", b"A: 1\n\nB: 2\n")])),
        ("data.tar", tar_of(&[])),
    ]);
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty", vec![], "not a Debian package: no `!<arch>` header"),
        ("text", b"hello world, this is text".to_vec(), "not a Debian package: no `!<arch>` header"),
        ("magic only", b"!<arch>\n".to_vec(), "not a Debian package: empty archive"),
        (
            "truncated header",
            good[..40].to_vec(),
            "not a Debian package: truncated member header at offset 8",
        ),
        (
            "truncated member",
            good[..good.len() - 30].to_vec(),
            "not a Debian package: truncated: member `data.tar.xz` needs",
        ),
        (
            "wrong first",
            ar(&[("control.tar", vec![])]),
            "not a Debian package: first member is `control.tar`, not `debian-binary`",
        ),
        (
            "version 3",
            ar(&[("debian-binary", b"3.0\n".to_vec())]),
            "not a Debian package: unsupported format version `3.0`",
        ),
        ("no control", no_control, "not a Debian package: no control.tar member"),
        (
            "bad magic",
            [&good[..66], b"XX", &good[68..]].concat(),
            "not a Debian package: bad member header magic at offset 8",
        ),
        (
            "bad size",
            [&good[..56], b"zz", &good[58..]].concat(),
            "not a Debian package: bad size `zz` of member `debian-binary` at offset 8",
        ),
    ];
    for (what, bytes, expected) in cases {
        let path = write(dir.path(), "bad.deb", &bytes);
        let err = DebFile::open(&path).unwrap_err().to_string();
        assert!(err.contains(expected), "{what}: {err}");
    }

    let path = write(dir.path(), "bz2.deb", &deb(".gz", ".bz2"));
    let deb_file = DebFile::open(&path).unwrap();
    match deb_file.data() {
        Err(Error::UnsupportedCompression { member, .. }) => assert_eq!(member, "data.tar.bz2"),
        other => panic!("{:?}", other.err()),
    }
    let path = write(dir.path(), "nc.deb", &no_control_file);
    let err = DebFile::open(&path).unwrap().control().unwrap_err().to_string();
    assert!(err.ends_with("not a Debian package: no `control` file in control.tar"), "{err}");
    let path = write(dir.path(), "tp.deb", &two_paragraphs);
    let err = DebFile::open(&path).unwrap().control().unwrap_err().to_string();
    assert!(err.ends_with("control.tar/control:1: expected one paragraph, found 2"), "{err}");

    // Corrupt compressed data: an error while reading, not a panic.
    let mut corrupt = deb(".xz", ".gz");
    let len = corrupt.len();
    for b in &mut corrupt[len - 40..len - 20] {
        *b ^= 0x55;
    }
    let path = write(dir.path(), "corrupt.deb", &corrupt);
    let deb_file = DebFile::open(&path).unwrap();
    let mut data = deb_file.data().unwrap();
    let result: Result<Vec<_>, _> = data
        .entries()
        .unwrap()
        .map(|e| {
            e.and_then(|mut e| {
                let mut v = Vec::new();
                e.read_to_end(&mut v).map(|_| v)
            })
        })
        .collect();
    assert!(result.is_err());
}
