//! A suite's signed `InRelease` file, checked as apt checks it, and the
//! `Packages` index it vouches for.
//!
//! The signature is checked by `gpgv` against a keyring (Debian's archive
//! keyring by default), and only the text gpgv prints as signed is parsed:
//! anything around the signed part, or an unsigned file, never reaches the
//! parser. `Valid-Until`, when present, must be after the supplied "now".
//! The index is fetched by its digest from the Release (through
//! `by-hash/` when the archive offers it, as apt does, so a mirror update
//! during the download cannot mix two versions), verified, and decompressed.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use forge_digest::is_sha256_hex;

use crate::deb822::{self, value_lines};
use crate::error::{Error, Result};
use crate::fetch::Fetcher;

/// Debian's archive keyring, as the `debian-archive-keyring` package installs it.
pub const DEFAULT_KEYRING: &str = "/usr/share/keyrings/debian-archive-keyring.gpg";

/// One file listed in the `SHA256` field of a Release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEntry {
    /// Path relative to the suite's directory, e.g. `main/binary-amd64/Packages.xz`.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256, lowercase hex.
    pub sha256: String,
}

/// How an index file is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// `.xz`
    Xz,
    /// `.gz`
    Gz,
}

/// The fields of a Release file that we use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    /// `Suite`, e.g. `oldstable`.
    pub suite: Option<String>,
    /// `Codename`, e.g. `bookworm`.
    pub codename: Option<String>,
    /// `Date`, as written.
    pub date: String,
    /// `Valid-Until`, as written.
    pub valid_until: Option<String>,
    /// `Acquire-By-Hash: yes`.
    pub acquire_by_hash: bool,
    /// `Architectures`.
    pub architectures: Vec<String>,
    /// `Components`.
    pub components: Vec<String>,
    /// The `SHA256` list.
    pub sha256: Vec<FileEntry>,
}

impl Release {
    /// Parses a Release body (the verified text of an InRelease). `file`
    /// names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<Release> {
        let paragraphs = deb822::parse(text, file)?;
        let Some(p) = paragraphs.first() else {
            return Err(Error::Deb822 {
                file: file.to_owned(),
                line: 1,
                message: "empty Release file".to_owned(),
            });
        };
        let date = p
            .get("Date")
            .ok_or_else(|| Error::MissingField { file: file.to_owned(), line: p.line(), field: "Date" })?
            .to_owned();
        parse_date(&date)?;
        let valid_until = p.get("Valid-Until").map(str::to_owned);
        if let Some(v) = &valid_until {
            parse_date(v)?;
        }
        let mut sha256 = Vec::new();
        for line in value_lines(p.get("SHA256").unwrap_or("")) {
            let invalid = || Error::InvalidField {
                file: file.to_owned(),
                line: p.line(),
                field: "SHA256".to_owned(),
                value: line.to_owned(),
            };
            let mut words = line.split_whitespace();
            let (Some(hash), Some(size), Some(path), None) =
                (words.next(), words.next(), words.next(), words.next())
            else {
                return Err(invalid());
            };
            let size = size.parse().map_err(|_| invalid())?;
            if !is_sha256_hex(hash) {
                return Err(invalid());
            }
            sha256.push(FileEntry { path: path.to_owned(), size, sha256: hash.to_owned() });
        }
        let words = |f: &str| p.get(f).unwrap_or("").split_whitespace().map(str::to_owned).collect();
        Ok(Release {
            suite: p.get("Suite").map(str::to_owned),
            codename: p.get("Codename").map(str::to_owned),
            date,
            valid_until,
            acquire_by_hash: p.get("Acquire-By-Hash").is_some_and(|v| v.eq_ignore_ascii_case("yes")),
            architectures: words("Architectures"),
            components: words("Components"),
            sha256,
        })
    }

    /// Fails when `Valid-Until` is present and not after `now`.
    pub fn check_valid_until(&self, now: SystemTime) -> Result<()> {
        let Some(valid_until) = &self.valid_until else { return Ok(()) };
        let until = parse_date(valid_until)?;
        let now = match now.duration_since(UNIX_EPOCH) {
            Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
        };
        if now >= until {
            let suite = self.codename.clone().or_else(|| self.suite.clone()).unwrap_or_default();
            return Err(Error::Expired { suite, valid_until: valid_until.clone() });
        }
        Ok(())
    }

    /// The entry for `path` in the `SHA256` list.
    pub fn entry(&self, path: &str) -> Option<&FileEntry> {
        self.sha256.iter().find(|e| e.path == path)
    }

    /// The `Packages` index of `component` and `architecture`: `.xz` if
    /// listed, else `.gz`.
    pub fn packages_index(&self, component: &str, architecture: &str) -> Result<(&FileEntry, Compression)> {
        let base = format!("{component}/binary-{architecture}/Packages");
        for (ext, c) in [(".xz", Compression::Xz), (".gz", Compression::Gz)] {
            if let Some(e) = self.entry(&format!("{base}{ext}")) {
                return Ok((e, c));
            }
        }
        Err(Error::NoIndex { component: component.to_owned(), architecture: architecture.to_owned() })
    }
}

/// Checks a clearsigned file with `gpgv --keyring KEYRING --output - FILE`
/// and returns the signed text. Refuses unsigned and badly signed files
/// (with gpgv's own words).
pub fn verify_inrelease(path: &Path, keyring: &Path) -> Result<String> {
    let output = Command::new("gpgv")
        .arg("--keyring")
        .arg(keyring)
        .args(["--output", "-"])
        .arg(path)
        .stdin(Stdio::null())
        // gpgv's messages end up in our errors: keep them untranslated.
        .env("LC_ALL", "C")
        .output()
        .map_err(|source| Error::GpgvSpawn { file: path.to_owned(), source })?;
    let stderr = String::from_utf8_lossy(&output.stderr).trim().to_owned();
    let bad =
        |stderr: String| Error::BadSignature { file: path.to_owned(), keyring: keyring.to_owned(), stderr };
    if !output.status.success() {
        return Err(bad(stderr));
    }
    if output.stdout.is_empty() {
        return Err(bad(format!("gpgv printed no signed text; {stderr}")));
    }
    String::from_utf8(output.stdout).map_err(|_| bad("the signed text is not UTF-8".to_owned()))
}

/// Parses an RFC 2822 date as Release files write it (`Sat, 11 Jul 2026
/// 10:16:37 UTC`; the weekday is optional; zones `UTC`, `GMT`, `Z` or
/// `+hhmm`) into seconds since the epoch.
pub fn parse_date(text: &str) -> Result<i64> {
    let err = || Error::Date(text.to_owned());
    let mut words: Vec<&str> = text.split_whitespace().collect();
    if words.first().is_some_and(|w| w.ends_with(',')) {
        words.remove(0);
    }
    let [day, month, year, time, zone] = words[..] else { return Err(err()) };
    let day: i64 = day.parse().map_err(|_| err())?;
    const MONTHS: [&str; 12] =
        ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];
    let month = MONTHS.iter().position(|m| m.eq_ignore_ascii_case(month)).ok_or_else(err)? as i64 + 1;
    let year: i64 = year.parse().map_err(|_| err())?;
    let hms: Vec<i64> = time.split(':').map(|p| p.parse().map_err(|_| err())).collect::<Result<_>>()?;
    let [h, m, s] = hms[..] else { return Err(err()) };
    if !(1..=31).contains(&day) || !(0..24).contains(&h) || !(0..60).contains(&m) || !(0..=60).contains(&s) {
        return Err(err());
    }
    let offset = match zone {
        "UTC" | "GMT" | "Z" | "UT" => 0,
        z if z.len() == 5 && (z.starts_with('+') || z.starts_with('-')) => {
            let n: i64 = z[1..].parse().map_err(|_| err())?;
            let secs = (n / 100) * 3600 + (n % 100) * 60;
            if z.starts_with('-') {
                -secs
            } else {
                secs
            }
        }
        _ => return Err(err()),
    };
    Ok(days_from_civil(year, month, day) * 86400 + h * 3600 + m * 60 + s - offset)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// Reads a compressed index completely into a string.
pub fn decompress(path: &Path, compression: Compression) -> Result<String> {
    let file = File::open(path).map_err(|e| Error::io("opening", path, e))?;
    let mut reader: Box<dyn Read> = match compression {
        Compression::Xz => Box::new(liblzma::read::XzDecoder::new(std::io::BufReader::new(file))),
        Compression::Gz => Box::new(flate2::read::MultiGzDecoder::new(std::io::BufReader::new(file))),
    };
    let mut text = String::new();
    reader.read_to_string(&mut text).map_err(|source| Error::Archive {
        path: path.to_owned(),
        member: "compressed index".to_owned(),
        source,
    })?;
    Ok(text)
}

/// What [`fetch_release`] needs besides the fetcher.
#[derive(Debug, Clone)]
pub struct ReleaseOptions {
    /// The keyring gpgv checks against.
    pub keyring: PathBuf,
    /// Fetch `InRelease` again even when cached (`--update`).
    pub update: bool,
}

impl Default for ReleaseOptions {
    fn default() -> Self {
        ReleaseOptions { keyring: PathBuf::from(DEFAULT_KEYRING), update: false }
    }
}

/// Fetches (or takes from the cache) `dists/SUITE/InRelease`, verifies its
/// signature and `Valid-Until`, and parses it. A cached copy that fails the
/// signature check is dropped from the cache.
pub fn fetch_release(
    fetcher: &Fetcher,
    suite: &str,
    options: &ReleaseOptions,
    now: SystemTime,
) -> Result<Release> {
    let path_on_mirror = format!("dists/{suite}/InRelease");
    let path = fetcher.fetch_mutable(&path_on_mirror, options.update)?;
    let text = match verify_inrelease(&path, &options.keyring) {
        Ok(text) => text,
        Err(e) => {
            fetcher.forget_mutable(&path_on_mirror)?;
            return Err(e);
        }
    };
    let release = Release::parse(&text, &fetcher.url(&path_on_mirror))?;
    release.check_valid_until(now)?;
    Ok(release)
}

/// A downloaded, verified and decompressed `Packages` index.
#[derive(Debug, Clone)]
pub struct PackagesIndex {
    /// The file fetched, relative to the mirror (`dists/SUITE/main/binary-amd64/Packages.xz`).
    pub path: String,
    /// Its entry in the Release (size and SHA-256 of the compressed file).
    pub entry: FileEntry,
    /// The decompressed text.
    pub text: String,
}

/// Downloads the `Packages` index of `component`/`architecture` that
/// `release` lists, verifies and decompresses it.
pub fn fetch_packages(
    fetcher: &Fetcher,
    suite: &str,
    release: &Release,
    component: &str,
    architecture: &str,
) -> Result<PackagesIndex> {
    let (entry, compression) = release.packages_index(component, architecture)?;
    let path = format!("dists/{suite}/{}", entry.path);
    let fetch_path = if release.acquire_by_hash {
        let dir = entry.path.rsplit_once('/').map_or("", |(d, _)| d);
        format!("dists/{suite}/{dir}/by-hash/SHA256/{}", entry.sha256)
    } else {
        path.clone()
    };
    let file = fetcher.fetch_verified(&fetch_path, &entry.sha256, entry.size)?;
    let text = decompress(&file, compression)?;
    Ok(PackagesIndex { path, entry: entry.clone(), text })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        let cases: &[(&str, Option<i64>)] = &[
            ("Thu, 01 Jan 1970 00:00:00 UTC", Some(0)),
            ("Sat, 11 Jul 2026 10:16:37 UTC", Some(1_783_764_997)),
            ("11 Jul 2026 10:16:37 GMT", Some(1_783_764_997)),
            ("Sat, 29 Feb 2020 23:59:59 +0000", Some(1_583_020_799)),
            ("Sat, 29 Feb 2020 23:59:59 +0100", Some(1_583_020_799 - 3600)),
            ("Sat, 29 Feb 2020 23:59:59 -0030", Some(1_583_020_799 + 1800)),
            ("Mon, 01 Mar 2100 00:00:00 UTC", Some(4_107_542_400)),
            ("Sat, 29 Feb 2020 23:59:59 CET", None),
            ("Sat, 29 Foo 2020 23:59:59 UTC", None),
            ("29 Feb 2020 25:00:00 UTC", None),
            ("29 Feb 2020 23:00 UTC", None),
            ("yesterday", None),
            ("", None),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_date(text).ok(), *expected, "{text:?}");
        }
    }

    const RELEASE: &str = "Origin: Debian
Suite: stable
Codename: bookworm
Date: Sat, 11 Jul 2026 10:16:37 UTC
Valid-Until: Sat, 18 Jul 2026 10:16:37 UTC
Acquire-By-Hash: yes
Architectures: all amd64
Components: main contrib
MD5Sum:
 0ed6d4c8891eb86358b94bb35d9e4da4  1484322 contrib/Contents-all
SHA256:
 515e692f2c4121c6fcec444ef100cc18f79a991910615f3a88c8b7becfc94d2f 50060337 main/binary-amd64/Packages
 6777ea16514725f9427f48c240d92e0a6b8496138e37a1491d8597e66774e309 12084798 main/binary-amd64/Packages.gz
 9e0b5aabb2465b3d2e7a7fe27f9913846277833f7a2826e7767acccff5b588c5  8790396 main/binary-amd64/Packages.xz
 6777ea16514725f9427f48c240d92e0a6b8496138e37a1491d8597e66774e309 12084798 main/binary-i386/Packages.gz
";

    #[test]
    fn parse_release() {
        let r = Release::parse(RELEASE, "Release").unwrap();
        assert_eq!(r.codename.as_deref(), Some("bookworm"));
        assert!(r.acquire_by_hash);
        assert_eq!(r.architectures, ["all", "amd64"]);
        assert_eq!(r.sha256.len(), 4);
        let (e, c) = r.packages_index("main", "amd64").unwrap();
        assert_eq!(
            (e.path.as_str(), e.size, c),
            ("main/binary-amd64/Packages.xz", 8_790_396, Compression::Xz)
        );
        let (e, c) = r.packages_index("main", "i386").unwrap();
        assert_eq!((e.path.as_str(), c), ("main/binary-i386/Packages.gz", Compression::Gz));
        let err = r.packages_index("contrib", "amd64").unwrap_err().to_string();
        assert_eq!(err, "the Release file lists no contrib/binary-amd64/Packages(.xz|.gz)");
    }

    #[test]
    fn valid_until() {
        let r = Release::parse(RELEASE, "Release").unwrap();
        let at = |secs: u64| UNIX_EPOCH + std::time::Duration::from_secs(secs);
        assert!(r.check_valid_until(at(1_783_764_997)).is_ok());
        let err = r.check_valid_until(at(1_783_764_997 + 7 * 86400)).unwrap_err().to_string();
        assert_eq!(
            err,
            "the Release file of bookworm expired at Sat, 18 Jul 2026 10:16:37 UTC (Valid-Until)"
        );
        let without =
            Release::parse(&RELEASE.replace("Valid-Until: Sat, 18 Jul 2026 10:16:37 UTC\n", ""), "R")
                .unwrap();
        assert!(without.check_valid_until(at(4_000_000_000)).is_ok());
    }

    #[test]
    fn malformed_release() {
        let cases: &[(&str, &str)] = &[
            ("", "R:1: empty Release file"),
            ("Suite: x\n", "R:1: paragraph has no `Date` field"),
            ("Date: soon\n", "invalid date `soon` in Release file"),
            ("Date: 11 Jul 2026 10:16:37 UTC\nSHA256:\n abc 12 x\n", "R:1: invalid `SHA256` value `abc 12 x`"),
            (
                "Date: 11 Jul 2026 10:16:37 UTC\nSHA256:\n 9e0b5aabb2465b3d2e7a7fe27f9913846277833f7a2826e7767acccff5b588c5 big x\n",
                "R:1: invalid `SHA256` value `9e0b5aabb2465b3d2e7a7fe27f9913846277833f7a2826e7767acccff5b588c5 big x`",
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(Release::parse(text, "R").unwrap_err().to_string(), *expected, "{text:?}");
        }
    }
}
