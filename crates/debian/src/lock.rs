//! The lock file (TOML, committed like `Cargo.lock`): the exact packages a
//! description resolved to, each pinned by pool path, size and SHA-256, with
//! the Release and index they came from.
//!
//! ```toml
//! version = 1
//! mirror = "http://deb.debian.org/debian"
//! suite = "bookworm"
//! architecture = "amd64"
//! release-date = "Sat, 11 Jul 2026 10:16:37 UTC"
//! packages-index = "dists/bookworm/main/binary-amd64/Packages.xz"
//! packages-sha256 = "9e0b..."
//! requested = ["dash", "python3"]
//! exclude = ["dpkg", "mailcap", "perl-base"]
//!
//! [[package]]
//! name = "dash"
//! version = "0.5.12-2"
//! ...
//! ```
//!
//! Written deterministically: fixed key order, packages sorted by name.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::description::{toml_error, Description};
use crate::error::{Error, Result};
use crate::fetch::Fetcher;
use crate::release::{self, ReleaseOptions};
use forge_digest::is_sha256_hex;

use crate::resolve::{self, Index, Package};
use crate::version::Version;

/// The lock file format version we write and read.
pub const LOCK_VERSION: u32 = 1;

/// The component whose index we resolve against.
const COMPONENT: &str = "main";

/// A lock file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Lock {
    /// Format version, [`LOCK_VERSION`].
    pub version: u32,
    /// The mirror the packages were resolved (and are fetched) from.
    pub mirror: String,
    /// The suite.
    pub suite: String,
    /// The architecture.
    pub architecture: String,
    /// The `Date` of the verified InRelease.
    pub release_date: String,
    /// The index used, relative to the mirror.
    pub packages_index: String,
    /// The SHA-256 of that (compressed) index file, as the Release lists it.
    pub packages_sha256: String,
    /// The description's `packages`, sorted: to tell whether the lock is current.
    pub requested: Vec<String>,
    /// The description's `exclude`, sorted.
    pub exclude: Vec<String>,
    /// The extra suites resolved with the main one, in the description's order.
    #[serde(rename = "extra-suite", default, skip_serializing_if = "Vec::is_empty")]
    pub extra_suites: Vec<LockedSuite>,
    /// The packages, sorted by name.
    #[serde(rename = "package", default)]
    pub packages: Vec<LockedPackage>,
}

/// An extra suite and the index it was resolved from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct LockedSuite {
    /// Its archive.
    pub mirror: String,
    /// The suite.
    pub suite: String,
    /// The `Date` of its verified InRelease.
    pub release_date: String,
    /// The index used, relative to `mirror`.
    pub packages_index: String,
    /// The SHA-256 of that index file, as the Release lists it.
    pub packages_sha256: String,
}

/// One pinned package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockedPackage {
    /// Package name.
    pub name: String,
    /// Version.
    pub version: String,
    /// Architecture (`all` or the lock's).
    pub architecture: String,
    /// Path of the .deb relative to the mirror.
    pub filename: String,
    /// Size of the .deb in bytes.
    pub size: u64,
    /// SHA-256 of the .deb.
    pub sha256: String,
    /// Source package (with its version when it differs), if the index says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The archive holding `filename` when it is not the lock's `mirror`
    /// (a package from an extra suite in another archive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mirror: Option<String>,
    /// The suite whose index listed it, where the lock records it (an
    /// `apt-get install` lock does; a base image lock does not).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suite: Option<String>,
}

impl LockedPackage {
    /// What is wrong with this entry of a lock file, if anything: its
    /// digest, version or pool path.
    pub fn check(&self) -> std::result::Result<(), String> {
        if !is_sha256_hex(&self.sha256) {
            return Err(format!("package {}: invalid sha256 `{}`", self.name, self.sha256));
        }
        Version::parse(&self.version).map_err(|e| format!("package {}: {e}", self.name))?;
        if self.filename.is_empty()
            || self.filename.starts_with('/')
            || self.filename.split('/').any(|c| c == "..")
        {
            return Err(format!("package {}: invalid filename `{}`", self.name, self.filename));
        }
        Ok(())
    }

    /// Downloads (or finds in the cache) this package's `.deb` from
    /// `fetcher`'s mirror (or the package's own, when it names one),
    /// verified by size and SHA-256.
    pub fn fetch(&self, fetcher: &Fetcher) -> Result<PathBuf> {
        match &self.mirror {
            Some(mirror) => {
                fetcher.with_mirror(mirror).fetch_verified(&self.filename, &self.sha256, self.size)
            }
            None => fetcher.fetch_verified(&self.filename, &self.sha256, self.size),
        }
    }
}

impl From<&Package> for LockedPackage {
    fn from(p: &Package) -> LockedPackage {
        LockedPackage {
            name: p.name.clone(),
            version: p.version.to_string(),
            architecture: p.architecture.clone(),
            filename: p.filename.clone(),
            size: p.size,
            sha256: p.sha256.clone(),
            source: p.source.clone(),
            mirror: None,
            suite: None,
        }
    }
}

/// One index over the packages of several archives (the main suite's
/// first), and the archive each `.deb` (by its pool path) comes from (as
/// the caller names it: a mirror URL, or a mirror and suite). Equal
/// versions keep the first archive, so the same `.deb` in two suites is
/// fetched from the main one.
pub fn combine<O: Clone>(sources: Vec<(O, Index)>, architecture: &str) -> (Index, HashMap<String, O>) {
    let mut origins: HashMap<String, O> = HashMap::new();
    let mut packages: Vec<Package> = Vec::new();
    for (mirror, index) in sources {
        for p in index.packages() {
            origins.entry(p.filename.clone()).or_insert_with(|| mirror.clone());
            packages.push(p.clone());
        }
    }
    (Index::from_packages(packages, architecture), origins)
}

impl Lock {
    /// Resolves `description` against the signed index of its suite with
    /// the default keyring, using cached InRelease files when present.
    pub fn resolve(description: &Description, fetcher: &Fetcher, now: SystemTime) -> Result<Lock> {
        Lock::resolve_with(description, fetcher, now, &ReleaseOptions::default())
    }

    /// [`Lock::resolve`] with a chosen keyring and `--update` behaviour.
    pub fn resolve_with(
        description: &Description,
        fetcher: &Fetcher,
        now: SystemTime,
        options: &ReleaseOptions,
    ) -> Result<Lock> {
        let suite = &description.suite;
        let arch = &description.architecture;
        let rel = release::fetch_release(fetcher, suite, options, now)?;
        let index_file = release::fetch_packages(fetcher, suite, &rel, COMPONENT, arch)?;
        let index = Index::parse(&index_file.text, &fetcher.url(&index_file.path), arch)?;
        let mut sources = vec![(fetcher.mirror().to_owned(), index)];
        let mut extra_suites = Vec::new();
        for extra in &description.extra_suites {
            let extra_fetcher = match &extra.mirror {
                Some(mirror) => fetcher.with_mirror(mirror),
                None => fetcher.with_mirror(fetcher.mirror()),
            };
            let rel = release::fetch_release(&extra_fetcher, &extra.suite, options, now)?;
            let file = release::fetch_packages(&extra_fetcher, &extra.suite, &rel, COMPONENT, arch)?;
            sources.push((
                extra_fetcher.mirror().to_owned(),
                Index::parse(&file.text, &extra_fetcher.url(&file.path), arch)?,
            ));
            extra_suites.push(LockedSuite {
                mirror: extra_fetcher.mirror().to_owned(),
                suite: extra.suite.clone(),
                release_date: rel.date.clone(),
                packages_index: file.path,
                packages_sha256: file.entry.sha256,
            });
        }
        let (index, origins) = combine(sources, arch);
        let closure = resolve::resolve(&index, &description.packages, &description.exclude)?;
        let mut lock = Lock {
            version: LOCK_VERSION,
            mirror: fetcher.mirror().to_owned(),
            suite: suite.clone(),
            architecture: arch.clone(),
            release_date: rel.date.clone(),
            packages_index: index_file.path,
            packages_sha256: index_file.entry.sha256,
            requested: sorted(&description.packages),
            exclude: sorted(&description.exclude),
            extra_suites,
            packages: closure
                .iter()
                .map(|p| LockedPackage {
                    mirror: origins.get(&p.filename).filter(|m| *m != fetcher.mirror()).cloned(),
                    ..LockedPackage::from(p)
                })
                .collect(),
        };
        lock.packages.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(lock)
    }

    /// Whether this lock was made for what `description` asks now (suite,
    /// architecture, packages and excludes; not the mirror, which may
    /// differ between machines).
    pub fn is_current_for(&self, description: &Description) -> bool {
        let same_extras = self.extra_suites.len() == description.extra_suites.len()
            && self.extra_suites.iter().zip(&description.extra_suites).all(|(locked, wanted)| {
                locked.suite == wanted.suite
                    && wanted.mirror.as_deref().is_none_or(|m| m.trim_end_matches('/') == locked.mirror)
            });
        same_extras
            && self.suite == description.suite
            && self.architecture == description.architecture
            && self.requested == sorted(&description.packages)
            && self.exclude == sorted(&description.exclude)
    }

    /// The lock file's text.
    pub fn to_toml(&self) -> String {
        let mut sorted = self.clone();
        sorted.packages.sort_by(|a, b| a.name.cmp(&b.name));
        let body = toml::to_string(&sorted).unwrap_or_else(|e| {
            // Only strings, integers and arrays of tables: cannot fail.
            format!("# cannot serialize lock: {e}\n")
        });
        format!("# Generated by plugin-forge from a description file; do not edit.\n{body}")
    }

    /// Parses and checks a lock file; `file` names it in errors.
    pub fn parse(text: &str, file: &Path) -> Result<Lock> {
        let lock: Lock = toml::from_str(text).map_err(|e| toml_error(text, file, &e))?;
        let invalid = |message: String| Error::Invalid { file: file.to_owned(), message };
        if lock.version != LOCK_VERSION {
            return Err(invalid(format!(
                "unsupported lock version {} (expected {LOCK_VERSION})",
                lock.version
            )));
        }
        if !is_sha256_hex(&lock.packages_sha256) {
            return Err(invalid(format!("invalid packages-sha256 `{}`", lock.packages_sha256)));
        }
        for (i, p) in lock.packages.iter().enumerate() {
            p.check().map_err(invalid)?;
            if i > 0 && lock.packages[i - 1].name >= p.name {
                return Err(invalid(format!("packages not sorted by name, or given twice, at `{}`", p.name)));
            }
        }
        Ok(lock)
    }

    /// Reads and checks a lock file.
    pub fn load(path: &Path) -> Result<Lock> {
        let text = crate::error::read_toml(path)?;
        Lock::parse(&text, path)
    }

    /// Writes the lock file atomically (a temporary file renamed into place).
    pub fn write(&self, path: &Path) -> Result<()> {
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let mut tmp = tempfile::NamedTempFile::new_in(dir)
            .map_err(|e| Error::io("creating temporary file in", dir, e))?;
        std::io::Write::write_all(&mut tmp, self.to_toml().as_bytes())
            .map_err(|e| Error::io("writing", tmp.path(), e))?;
        // A committed file: readable by all, like any other in the repository
        // (temporary files are created private).
        fs::set_permissions(tmp.path(), std::os::unix::fs::PermissionsExt::from_mode(0o644))
            .map_err(|e| Error::io("setting the mode of", tmp.path(), e))?;
        tmp.persist(path).map_err(|e| Error::io("writing", path, e.error))?;
        Ok(())
    }

    /// Downloads (or finds in the cache) every package's .deb, verified;
    /// returns the cached paths in the lock's order.
    pub fn fetch_debs(&self, fetcher: &Fetcher) -> Result<Vec<PathBuf>> {
        self.packages
            .iter()
            .map(|p| {
                p.fetch(fetcher).map_err(|e| match e {
                    // Debian drops superseded versions from the archive at point releases.
                    Error::HttpStatus { url, status: 404 } => {
                        Error::Gone { package: format!("{} {}", p.name, p.version), url }
                    }
                    other => other,
                })
            })
            .collect()
    }

    /// The total size of the .debs in bytes.
    pub fn total_size(&self) -> u64 {
        self.packages.iter().map(|p| p.size).sum()
    }
}

fn sorted(items: &[String]) -> Vec<String> {
    let mut v = items.to_vec();
    v.sort();
    v.dedup();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Lock {
        let p = |name: &str, source: Option<&str>| LockedPackage {
            name: name.to_owned(),
            version: "1.0-1".to_owned(),
            architecture: "amd64".to_owned(),
            filename: format!("pool/main/x/{name}/{name}_1.0-1_amd64.deb"),
            size: 1234,
            sha256: "ab".repeat(32),
            source: source.map(str::to_owned),
            mirror: None,
            suite: None,
        };
        Lock {
            version: 1,
            mirror: "http://deb.debian.org/debian".to_owned(),
            suite: "bookworm".to_owned(),
            architecture: "amd64".to_owned(),
            release_date: "Sat, 11 Jul 2026 10:16:37 UTC".to_owned(),
            packages_index: "dists/bookworm/main/binary-amd64/Packages.xz".to_owned(),
            packages_sha256: "cd".repeat(32),
            requested: vec!["dash".to_owned()],
            exclude: vec![],
            extra_suites: vec![],
            packages: vec![p("zlib1g", Some("zlib")), p("dash", None)],
        }
    }

    #[test]
    fn round_trip_is_sorted_and_stable() {
        let lock = sample();
        let text = lock.to_toml();
        let parsed = Lock::parse(&text, Path::new("x.lock")).unwrap();
        assert_eq!(parsed.packages[0].name, "dash");
        assert_eq!(parsed.to_toml(), text);
        // The golden file, written out: the whole format is visible there.
        assert_eq!(text, include_str!("../test_data/sample.lock"));
    }

    #[test]
    fn errors() {
        let good = sample().to_toml();
        let cases: &[(String, &str)] = &[
            (
                good.replace("size = 1234\nsha256 = \"abab", "size = \"big\"\nsha256 = \"abab"),
                "x.lock:17:8: invalid type: string \"big\", expected u64",
            ),
            (
                good.replace("version = 1\n", "version = 2\n"),
                "x.lock: unsupported lock version 2 (expected 1)",
            ),
            (good.replace("mirror =", "mirrors ="), "x.lock:3:1: unknown field `mirrors`"),
            (good.replacen(&"ab".repeat(32), "abc", 1), "x.lock: package dash: invalid sha256 `abc`"),
            (
                good.replacen("version = \"1.0-1\"", "version = \"x\"", 1),
                "x.lock: package dash: invalid version `x`",
            ),
            (
                good.replacen("filename = \"pool", "filename = \"../pool", 1),
                "x.lock: package dash: invalid filename",
            ),
            (
                good.replacen("name = \"dash\"", "name = \"zz\"", 1),
                "x.lock: packages not sorted by name, or given twice, at `zlib1g`",
            ),
            ("version = [\n".to_owned(), "x.lock:1:12: unclosed array"),
        ];
        for (text, expected) in cases {
            let err = Lock::parse(text, Path::new("x.lock")).unwrap_err().to_string();
            assert!(err.starts_with(expected), "got {err:?}, expected {expected:?}");
        }
    }

    fn index(text: &str) -> Index {
        Index::parse(text, "Packages", "amd64").unwrap()
    }

    const PACKAGE: &str = "Package: libfoo\nVersion: VERSION\nArchitecture: amd64\n\
        Filename: pool/main/f/foo/libfoo_VERSION_amd64.deb\nSize: 1\nSHA256: DIGEST\n";

    fn entry(version: &str) -> String {
        PACKAGE.replace("VERSION", version).replace("DIGEST", &"ab".repeat(32))
    }

    #[test]
    fn security_updates_win_and_remember_their_archive() {
        let main = index(&entry("1.0-1"));
        let security = index(&format!("{}\n{}", entry("1.0-1+deb12u1"), entry("1.0-1")));
        let (combined, origins) = combine::<String>(
            vec![
                ("http://deb.debian.org/debian".into(), main),
                ("http://deb.debian.org/debian-security".into(), security),
            ],
            "amd64",
        );
        let chosen = resolve::resolve(&combined, &["libfoo"], &[] as &[&str]).unwrap();
        assert_eq!(chosen[0].version.to_string(), "1.0-1+deb12u1");
        assert_eq!(origins[&chosen[0].filename], "http://deb.debian.org/debian-security");
        // The same .deb in both archives comes from the first (main) one.
        assert_eq!(origins["pool/main/f/foo/libfoo_1.0-1_amd64.deb"], "http://deb.debian.org/debian");
    }

    #[test]
    fn extra_suites_make_a_lock_stale_until_resolved_with_them() {
        let text = "name = \"b\"\nsuite = \"bookworm\"\narchitecture = \"amd64\"\npackages = [\"dash\"]\n";
        let plain = Description::parse(text, Path::new("b.toml")).unwrap();
        let with_security = Description::parse(
            &format!("{text}[[extra-suite]]\nsuite = \"bookworm-security\"\nmirror = \"http://deb.debian.org/debian-security\"\n"),
            Path::new("b.toml"),
        )
        .unwrap();
        let mut lock = sample();
        lock.requested = vec!["dash".into()];
        lock.exclude = vec![];
        assert!(lock.is_current_for(&plain));
        assert!(!lock.is_current_for(&with_security));
        lock.extra_suites.push(LockedSuite {
            mirror: "http://deb.debian.org/debian-security".into(),
            suite: "bookworm-security".into(),
            release_date: "Sat, 11 Jul 2026 10:16:37 UTC".into(),
            packages_index: "dists/bookworm-security/main/binary-amd64/Packages.xz".into(),
            packages_sha256: "cd".repeat(32),
        });
        assert!(lock.is_current_for(&with_security));
        assert!(!lock.is_current_for(&plain));
        // And it survives the round trip through its file.
        let again = Lock::parse(&lock.to_toml(), Path::new("b.lock")).unwrap();
        lock.packages.sort_by(|a, b| a.name.cmp(&b.name));
        assert_eq!(again, lock);
    }
}
