//! The resolver over `test_data/Packages`, a hand-written index.

use forge_debian::resolve::{resolve, resolve_request, Index, Request};

fn index() -> Index {
    let path = crate::test_data("Packages");
    let text = std::fs::read_to_string(&path).unwrap();
    Index::parse(&text, "Packages", "amd64").unwrap()
}

fn check(wanted: &[&str], excluded: &[&str]) -> String {
    match resolve(&index(), wanted, excluded) {
        Ok(packages) => {
            packages.iter().map(|p| format!("{} {}", p.name, p.version)).collect::<Vec<_>>().join(", ")
        }
        Err(e) => format!("error: {e}"),
    }
}

#[test]
fn table() {
    let cases: &[(&[&str], &[&str], &str)] = &[
        // Highest libc6 version; `awk` is virtual, mawk wins by Priority;
        // `mailcap | media-types` and `perl-base (>= 5.36)` are satisfied by
        // exclusion; the Pre-Depends on dpkg too.
        (
            &["app"],
            &["perl-base", "dpkg", "mailcap"],
            "app 1.0-1, gcc-12-base 12.2.0-14, libc6 2.36-9+deb12u4, libgcc-s1 12.2.0-14, mawk 1.3.4.20200120-3.1",
        ),
        // Without excluding mailcap, its dependency on perl fails, named
        // with the whole chain.
        (
            &["app"],
            &["perl-base", "dpkg"],
            "error: cannot satisfy perl:any needed by app -> mailcap -> perl: no package perl is available",
        ),
        // A missing package deeper down; alternatives are all reported.
        (
            &["broken-top"],
            &[],
            "error: cannot satisfy libgone (>= 1) | libgone2 needed by broken-top -> broken-mid -> libgone | libgone2: \
             libgone: no package libgone is available; libgone2: no package libgone2 is available",
        ),
        // A version constraint that the only version fails.
        (&["needs-new"], &[], "error: cannot satisfy libfoo (>= 2) needed by needs-new -> libfoo: only 1.0 is available"),
        // The first satisfiable alternative is taken (gawk), without
        // backtracking when gawk's own dependencies then fail.
        (
            &["tool"],
            &[],
            "error: cannot satisfy libmpfr6 needed by tool -> gawk -> libmpfr6: no package libmpfr6 is available",
        ),
        // An alternative already chosen is preferred (mawk over gawk), a
        // missing first alternative falls through to the second (zlib1g),
        // `python3:any` finds python3 and its chain.
        (
            &["mawk", "tool"],
            &[],
            "gcc-12-base 12.2.0-14, libc6 2.36-9+deb12u4, libgcc-s1 12.2.0-14, libpython3-stdlib 3.11.2-1+b1, \
             libpython3.11-stdlib 3.11.2-6+deb12u6, libssl3 3.0.17-1~deb12u2, mawk 1.3.4.20200120-3.1, \
             python3 3.11.2-1+b1, python3.11 3.11.2-6+deb12u6, tool 2.0-1, zlib1g 1:1.2.13.dfsg-1",
        ),
        // Versioned provides: only py-new provides pyabi (>= 2); an
        // unversioned provide never satisfies a versioned dependency.
        (&["libpyabi-consumer"], &[], "libpyabi-consumer 1.0, py-new 3.0"),
        // A virtual package requested directly.
        (&["pyabi (= 1)"], &[], "py-old 1.0"),
        // Conflicts and Breaks among the chosen set.
        (&["conf-a"], &[], "error: conf-b conflicts with conf-a (<< 2), but conf-a 1.0 is also chosen"),
        (
            &["oldapp"],
            &[],
            "error: libc6 breaks oldapp (<< 2), but oldapp 1.5 is also chosen",
        ),
        // A package conflicting with the virtual package it provides is fine.
        (&["wants-mta"], &[], "mta-a 1.0, wants-mta 1.0"),
        // Two packages pinning one library to incompatible versions.
        (
            &["both-pins"],
            &[],
            "error: cannot satisfy libfoo (>> 1.0) needed by both-pins -> pin-b -> libfoo: libfoo 1.0 is already chosen",
        ),
        // Requests: versioned, of another architecture, excluded.
        (&["libc6 (<< 2.36-9+deb12u1)"], &[], "libc6 2.36-9"),
        (&["i386-only"], &[], "error: cannot satisfy requested package i386-only: no package i386-only is available"),
        (&["libfoo (>= 2)"], &[], "error: cannot satisfy requested package libfoo (>= 2): only 1.0 is available"),
        (&["perl-base"], &["perl-base"], "error: package perl-base is both requested and excluded"),
        (&["zlib1g", "zlib1g"], &[], "gcc-12-base 12.2.0-14, libc6 2.36-9+deb12u4, libgcc-s1 12.2.0-14, zlib1g 1:1.2.13.dfsg-1"),
    ];
    for (wanted, excluded, expected) in cases {
        assert_eq!(check(wanted, excluded), *expected, "wanted {wanted:?} excluded {excluded:?}");
    }
}

#[test]
fn deterministic_and_sorted() {
    let a = check(&["tool", "mawk", "app"], &["perl-base", "dpkg", "mailcap"]);
    let b = check(&["tool", "mawk", "app"], &["dpkg", "mailcap", "perl-base"]);
    assert_eq!(a, b);
    let names: Vec<&str> = a.split(", ").map(|p| p.split(' ').next().unwrap()).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
}

#[test]
fn index_keeps_host_and_all() {
    let index = index();
    assert_eq!(index.get("libc6").count(), 2, "the i386 libc6 is dropped");
    assert_eq!(index.get("libc6").next().unwrap().version.to_string(), "2.36-9+deb12u4");
    assert_eq!(index.get("i386-only").count(), 0);
    assert_eq!(index.get("mailcap").next().unwrap().architecture, "all");
    let python3 = index.get("python3").next().unwrap();
    assert_eq!(python3.source_name(), "python3-defaults");
    assert!(index.get("gawk").next().unwrap().filename.starts_with("pool/main/g/gawk/"));
}

#[test]
fn bad_index_paragraphs() {
    let cases: &[(&str, &str)] = &[
        ("Package: a\nVersion: 1\n", "P:1: paragraph has no `Architecture` field"),
        ("Package: a\nArchitecture: amd64\nVersion: 1\n", "P:1: paragraph has no `Size` field"),
        ("Package: a\nArchitecture: amd64\nVersion: x\n", "P:1: invalid `Version` value `x`"),
        (
            "Package: a\nArchitecture: amd64\nVersion: 1\nSize: 1\nSHA256: 00\nFilename: f\n",
            "P:1: invalid `SHA256` value `00`",
        ),
        (
            "\nPackage: a\nArchitecture: amd64\nVersion: 1\nSize: -1\nFilename: f\n",
            "P:2: invalid `Size` value `-1`",
        ),
        // Other architectures are skipped without being read.
        ("Package: a\nArchitecture: i386\nVersion: x\n", ""),
    ];
    for (text, expected) in cases {
        let got = Index::parse(text, "P", "amd64").err().map(|e| e.to_string()).unwrap_or_default();
        assert_eq!(got, *expected, "{text:?}");
    }
    let bad_depends = "Package: a\nArchitecture: amd64\nVersion: 1\nSize: 1\nFilename: f\nSHA256: "
        .to_owned()
        + &"0".repeat(64)
        + "\nDepends: b (>= )\n";
    let index = Index::parse(&bad_depends, "P", "amd64").unwrap();
    let err = resolve(&index, &["a"], &[] as &[&str]).unwrap_err();
    assert_eq!(err.to_string(), "package a 1: invalid `Depends` field");
    assert_eq!(
        std::error::Error::source(&err).unwrap().to_string(),
        "invalid relation `b (>= )`: invalid version ``: version string is empty"
    );
}

/// A `Packages` paragraph of `name` at `version` with more `fields`.
fn paragraph(name: &str, version: &str, fields: &str) -> String {
    format!(
        "Package: {name}\nVersion: {version}\nArchitecture: amd64\nFilename: pool/main/{name}_{version}.deb\n\
         Size: 1\nSHA256: {}\n{fields}\n",
        "ab".repeat(32)
    )
}

/// What an image with apt would have: a small index and a dpkg status.
fn apt_index() -> Index {
    let text = [
        paragraph("libc6", "2.36-9+deb12u10", "Depends: libgcc-s1\nPriority: optional"),
        paragraph("libgcc-s1", "12.2.0-14", ""),
        paragraph("libc-dev-bin", "2.36-9+deb12u10", "Depends: libc6 (= 2.36-9+deb12u10)"),
        paragraph("jq", "1.6-2.1", "Depends: libjq1 (= 1.6-2.1), libc6 (>= 2.34)"),
        paragraph("jq", "1.6-2.1+deb12u1", "Depends: libjq1 (= 1.6-2.1+deb12u1), libc6 (>= 2.34)"),
        paragraph("libjq1", "1.6-2.1", "Depends: libonig5 (>= 6.1.3), libc6 (>= 2.14)"),
        paragraph("libjq1", "1.6-2.1+deb12u1", "Depends: libonig5 (>= 6.1.3), libc6 (>= 2.14)"),
        paragraph("libonig5", "6.9.8-1", "Depends: libc6 (>= 2.14)"),
        paragraph("needs-new-libc", "1.0", "Depends: libc6 (>= 2.36-9+deb12u9)"),
        paragraph(
            "curl",
            "7.88.1-10",
            "Depends: libc6\nRecommends: ca-certificates, missing-thing | other-missing, gone-deps",
        ),
        paragraph("ca-certificates", "20230311", "Depends: openssl (>= 1.1.1)\nRecommends: cert-helper"),
        paragraph("openssl", "3.0.17-1", ""),
        paragraph("cert-helper", "1.0", ""),
        paragraph("gone-deps", "1.0", "Depends: libgone"),
        paragraph("needs-awk", "1.0", "Depends: awk"),
        paragraph("gawk", "5.2.1-2", "Provides: awk\nPriority: optional"),
        paragraph("newtool", "1.0", "Breaks: oldlib (<< 2)"),
        paragraph("oldlib", "2.0", ""),
        paragraph("breaker", "1.0", "Breaks: stuck (<< 9)"),
        paragraph("required-thing", "1.0", "Priority: required\nEssential: yes"),
        paragraph("rec-conflict", "1.0", "Recommends: conflicting"),
        paragraph("conflicting", "1.0", "Conflicts: libgcc-s1"),
    ]
    .join("\n");
    Index::parse(&text, "Packages", "amd64").unwrap()
}

const STATUS: &str = "Package: libc6
Status: install ok installed
Architecture: amd64
Version: 2.36-9+deb12u7
Depends: libgcc-s1

Package: libgcc-s1
Status: install ok installed
Architecture: amd64
Version: 12.2.0-14

Package: libc-dev-bin
Status: install ok installed
Architecture: amd64
Version: 2.36-9+deb12u7
Depends: libc6 (= 2.36-9+deb12u7)

Package: mawk
Status: install ok installed
Architecture: amd64
Version: 1.3.4.20200120-3.1
Provides: awk

Package: oldlib
Status: install ok installed
Architecture: amd64
Version: 1.0

Package: stuck
Status: install ok installed
Architecture: amd64
Version: 1.0

Package: removed
Status: deinstall ok config-files
Architecture: amd64
Version: 1.0
";

fn check_apt(wanted: &[&str], recommends: bool) -> String {
    let status = forge_debian::status::StatusDb::parse(STATUS, "status").unwrap();
    let installed: Vec<_> = status.installed().cloned().collect();
    let wanted: Vec<String> = wanted.iter().map(|w| w.to_string()).collect();
    let request = Request { wanted: &wanted, excluded: &[], installed: &installed, recommends };
    match resolve_request(&apt_index(), &request) {
        Ok(packages) => {
            packages.iter().map(|p| format!("{} {}", p.name, p.version)).collect::<Vec<_>>().join(", ")
        }
        Err(e) => format!("error: {e}"),
    }
}

#[test]
fn installed_packages_and_recommends() {
    let cases: &[(&[&str], bool, &str)] = &[
        // The installed libc6 satisfies `libc6 (>= 2.34)`: not reinstalled,
        // not upgraded although the index has a newer one.
        (&["jq"], false, "jq 1.6-2.1+deb12u1, libjq1 1.6-2.1+deb12u1, libonig5 6.9.8-1"),
        // A pin picks that version, and the `=` dependency follows it.
        (&["jq (= 1.6-2.1)"], false, "jq 1.6-2.1, libjq1 1.6-2.1, libonig5 6.9.8-1"),
        // A dependency the installed version fails upgrades it, and the
        // installed package pinned to the old libc6 is upgraded with it.
        (&["needs-new-libc"], false, "libc-dev-bin 2.36-9+deb12u10, libc6 2.36-9+deb12u10, needs-new-libc 1.0"),
        // A requested package that is installed: upgraded when the index is
        // newer (libc6, pulling libc-dev-bin along), left alone otherwise.
        (&["libc6"], false, "libc-dev-bin 2.36-9+deb12u10, libc6 2.36-9+deb12u10"),
        (&["libgcc-s1"], false, ""),
        (&["libgcc-s1 (= 12.2.0-14)"], false, ""),
        // A virtual package an installed package provides.
        (&["needs-awk"], false, "needs-awk 1.0"),
        // Recommends: followed with apt's default, recursively; one that
        // is missing, has unsatisfiable dependencies, or conflicts with
        // what is installed is left out.
        (&["curl"], false, "curl 7.88.1-10"),
        (&["curl"], true, "ca-certificates 20230311, cert-helper 1.0, curl 7.88.1-10, openssl 3.0.17-1"),
        (&["rec-conflict"], true, "rec-conflict 1.0"),
        // A new package that breaks an installed one upgrades it, or fails
        // when no newer version exists.
        (&["newtool"], false, "newtool 1.0, oldlib 2.0"),
        (
            &["breaker"],
            false,
            "error: the installed stuck 1.0 would break (breaker 1.0 breaks stuck (<< 9)), and the index has no newer version of it",
        ),
        // Essential or required packages nobody depends on are not pulled in.
        (&["openssl"], true, "openssl 3.0.17-1"),
    ];
    for (wanted, recommends, expected) in cases {
        assert_eq!(check_apt(wanted, *recommends), *expected, "wanted {wanted:?} recommends {recommends}");
    }
}

#[test]
fn a_conflict_with_an_installed_package_is_named() {
    // `conflicting` conflicts with the installed libgcc-s1, which has no newer version.
    assert_eq!(
        check_apt(&["conflicting"], false),
        "error: the installed libgcc-s1 12.2.0-14 would break (conflicting 1.0 conflicts libgcc-s1), and the index has no newer version of it"
    );
}
