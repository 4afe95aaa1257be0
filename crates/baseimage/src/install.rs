//! `apt-get install` into an image, for the image's own Debian release and
//! architecture, without apt, dpkg or a chroot, and without running
//! anything from the image.
//!
//! Three steps, each a plain function:
//! - [`detect`] reads the image (through [`ImageFiles`]): the release from
//!   `/etc/os-release` (or `/etc/debian_version`), dpkg's status database,
//!   merged `/usr`, and the apt sources the image configures (deb822
//!   `.sources` and one-line `.list` files, in apt's order), or the
//!   release's defaults when it has none (our own base images have none).
//! - [`resolve`] fetches the signed indexes of those suites for the
//!   image's architecture and resolves the request as apt would
//!   (`forge_debian::resolve::resolve_request`: installed packages
//!   satisfy dependencies, `Recommends` unless `--no-install-recommends`,
//!   `pkg=version` pins) into an [`AptLock`].
//! - [`materialize`] fetches and verifies every `.deb` of the lock, then
//!   unpacks them with the code that builds base images into one [`Tree`]:
//!   the layer's files, dpkg's status database with the new packages, and
//!   what dpkg leaves in `/var/lib/dpkg/info` (`.list`, `.md5sums`,
//!   `.conffiles`, maintainer scripts), and apt's marks of what was
//!   installed only as a dependency (`/var/lib/apt/extended_states`),
//!   with the image's dpkg path filters applied. No apt lists, caches or logs: a
//!   `RUN apt-get update && apt-get install ... && rm -rf
//!   /var/lib/apt/lists/*` leaves none either.

use std::collections::{BTreeSet, HashMap};
use std::io::Read;
use std::path::Path;
use std::time::SystemTime;

use forge_debian::deb::DebFile;
use forge_debian::deb822;
use forge_debian::description::toml_error;
use forge_debian::fetch::Fetcher;
use forge_debian::lock::{combine, LockedPackage, LockedSuite};
use forge_debian::release::{self, ReleaseOptions};
use forge_debian::resolve::{resolve_request, Index, Request};
use forge_debian::status::StatusDb;
use forge_debian::version::Version;
use forge_oci::files::{self, ImageFiles};
use forge_oci::{Node, NodeKind, Spool, Tree};
use serde::{Deserialize, Serialize};

use crate::{install_path, status_paragraph, unpack_package, update_ca_certificates, Error};

/// The format version of [`AptLock`].
pub const APT_LOCK_VERSION: u32 = 1;

/// Debian's archive, where an image without apt sources gets its packages.
pub const DEBIAN_ARCHIVE: &str = "http://deb.debian.org/debian";
/// Debian's security archive.
pub const DEBIAN_SECURITY: &str = "http://deb.debian.org/debian-security";

/// The largest dpkg status database or apt source file we read.
const READ_LIMIT: u64 = 64 << 20;

/// Releases whose security suite is `SUITE/updates` (before bullseye).
const OLD_SECURITY_LAYOUT: [&str; 7] = ["buster", "stretch", "jessie", "wheezy", "squeeze", "lenny", "etch"];

/// Debian's major versions and their codenames, for `/etc/debian_version`.
const CODENAMES: [(&str, &str); 9] = [
    ("7", "wheezy"),
    ("8", "jessie"),
    ("9", "stretch"),
    ("10", "buster"),
    ("11", "bullseye"),
    ("12", "bookworm"),
    ("13", "trixie"),
    ("14", "forky"),
    ("15", "duke"),
];

/// One suite of an archive that apt would read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AptSource {
    /// The archive's base URL, without a trailing `/`.
    pub uri: String,
    /// The suite (`bookworm`, `bookworm-security`).
    pub suite: String,
    /// The components (`main`, `contrib`, ...).
    pub components: Vec<String>,
    /// Where it is configured (`etc/apt/sources.list.d/debian.sources:1`),
    /// or `the defaults of debian bookworm`.
    pub origin: String,
}

/// What [`detect`] found out about an image: everything resolution and
/// unpacking need.
#[derive(Debug, Clone)]
pub struct AptTarget {
    /// `ID` of `/etc/os-release` (`debian`, `ubuntu`).
    pub distribution: String,
    /// The release's codename (`bookworm`): the main suite.
    pub codename: String,
    /// dpkg's architecture (`amd64`, `arm64`, `armhf`, ...).
    pub architecture: String,
    /// Whether `/bin` is a link to `usr/bin`: packages' `/bin`, `/lib`,
    /// ... are then unpacked under `/usr`.
    pub merged_usr: bool,
    /// The suites to resolve against, in apt's order (the first of equal
    /// versions wins).
    pub sources: Vec<AptSource>,
    /// The image's dpkg status database.
    pub status: StatusDb,
    /// Package names that count as installed although dpkg's status does
    /// not list them (say, what a base image left out on purpose); empty
    /// from [`detect`].
    pub assume_installed: Vec<String>,
    /// dpkg's `path-exclude`/`path-include` rules of the image, in the
    /// order dpkg reads them (the last match wins).
    pub path_filters: PathFilters,
}

/// dpkg's `path-exclude` and `path-include` options (`/etc/dpkg/dpkg.cfg.d/*`,
/// then `/etc/dpkg/dpkg.cfg`): what the `-slim` Debian images use to leave
/// out documentation, man pages and locales. Patterns are shell globs whose
/// `*` also matches `/`; the last one that matches a path decides.
#[derive(Debug, Clone, Default)]
pub struct PathFilters {
    rules: Vec<(bool, String, globset::GlobMatcher)>,
}

impl PathFilters {
    /// Reads the options of one dpkg configuration file (`file` names it
    /// in errors); other options are ignored.
    pub fn add_config(&mut self, text: &str, file: &str) -> Result<(), Error> {
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            let (option, value) = line.split_once(['=', ' ', '\t']).unwrap_or((line, ""));
            let include = match option.trim_start_matches("--") {
                "path-exclude" => false,
                "path-include" => true,
                _ => continue,
            };
            let pattern = value.trim();
            let matcher = globset::GlobBuilder::new(pattern)
                .literal_separator(false)
                .backslash_escape(true)
                .build()
                .map_err(|e| Error::Sources {
                    origin: format!("{file}:{}", n + 1),
                    message: format!("invalid dpkg path filter `{pattern}`: {e}"),
                })?
                .compile_matcher();
            self.rules.push((include, pattern.to_owned(), matcher));
        }
        Ok(())
    }

    /// Whether dpkg leaves out `path` (absolute, as a `.list` has it).
    pub fn excludes(&self, path: &str) -> bool {
        self.rules.iter().rev().find(|(_, _, m)| m.is_match(path)).is_some_and(|(include, _, _)| !include)
    }

    /// The rules as written: `(include, pattern)`.
    pub fn rules(&self) -> impl Iterator<Item = (bool, &str)> {
        self.rules.iter().map(|(include, pattern, _)| (*include, pattern.as_str()))
    }
}

impl AptTarget {
    /// Replaces the archives of the sources: `debian` for every source
    /// whose URL ends in `/debian` (Debian's archive or a mirror of it),
    /// `security` for those ending in `/debian-security`. A mirror
    /// configured for the project wins over the image's sources.
    pub fn override_mirrors(&mut self, debian: Option<&str>, security: Option<&str>) {
        for source in &mut self.sources {
            let last = source.uri.rsplit('/').next().unwrap_or("");
            let replacement = match last {
                "debian" => debian,
                "debian-security" => security,
                _ => None,
            };
            if let Some(mirror) = replacement {
                source.uri = mirror.trim_end_matches('/').to_owned();
                source.origin = format!("{} (mirror override)", source.origin);
            }
        }
    }
}

/// What `apt-get install` was asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AptRequest {
    /// The packages in order: name and, for `pkg=version`, the version.
    pub packages: Vec<(String, Option<String>)>,
    /// Install `Recommends` (apt's default; `--no-install-recommends` turns it off).
    pub recommends: bool,
}

impl AptRequest {
    /// The request as apt's command line spells it (`jq`, `curl=7.88.1-10`),
    /// sorted and without duplicates: what a lock records.
    pub fn spelled(&self) -> Vec<String> {
        let set: BTreeSet<String> = self
            .packages
            .iter()
            .map(|(name, version)| match version {
                Some(v) => format!("{name}={v}"),
                None => name.clone(),
            })
            .collect();
        set.into_iter().collect()
    }

    /// The request as relations for the resolver (`curl (= 7.88.1-10)`).
    fn relations(&self) -> Result<Vec<String>, Error> {
        let bad = |package: &str, message: String| Error::BadRequest { package: package.to_owned(), message };
        let mut out = Vec::new();
        for (name, version) in &self.packages {
            if name.contains('/') {
                return Err(bad(name, "a target release (`pkg/suite`) is not supported".to_owned()));
            }
            if name.contains(':') {
                return Err(bad(name, "another architecture (`pkg:arch`) is not supported".to_owned()));
            }
            let valid = name.len() >= 2
                && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
                && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+-.".contains(c));
            if !valid {
                return Err(bad(
                    name,
                    "not a Debian package name (lowercase letters, digits, `+-.`)".to_owned(),
                ));
            }
            match version {
                Some(v) => {
                    Version::parse(v).map_err(|e| bad(name, e.to_string()))?;
                    out.push(format!("{name} (= {v})"));
                }
                None => out.push(name.clone()),
            }
        }
        Ok(out)
    }
}

/// The resolution of one `apt-get install`: every package to unpack,
/// pinned by pool path, size and SHA-256, with its archive and suite, and
/// the signed indexes it came from. TOML, written deterministically
/// (packages sorted by name); the build's lock file embeds it, keyed by
/// the `RUN` it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct AptLock {
    /// [`APT_LOCK_VERSION`].
    pub version: u32,
    /// The image's distribution (`debian`).
    pub distribution: String,
    /// Its release (`bookworm`).
    pub suite: String,
    /// dpkg's architecture.
    pub architecture: String,
    /// The request as apt spells it, sorted ([`AptRequest::spelled`]).
    pub requested: Vec<String>,
    /// Whether `Recommends` were installed.
    pub recommends: bool,
    /// The indexes resolved against, in apt's order.
    #[serde(rename = "index", default)]
    pub indexes: Vec<LockedSuite>,
    /// The packages, sorted by name; each names its `mirror` and `suite`.
    #[serde(rename = "package", default)]
    pub packages: Vec<LockedPackage>,
}

impl AptLock {
    /// The lock as TOML.
    pub fn to_toml(&self) -> String {
        let mut sorted = self.clone();
        sorted.packages.sort_by(|a, b| a.name.cmp(&b.name));
        // Strings, integers, booleans and arrays of tables: cannot fail.
        toml::to_string(&sorted).unwrap_or_else(|e| format!("# cannot serialize lock: {e}\n"))
    }

    /// Parses and checks a lock; `file` names it in errors.
    pub fn parse(text: &str, file: &Path) -> Result<AptLock, Error> {
        let lock: AptLock = toml::from_str(text).map_err(|e| toml_error(text, file, &e))?;
        lock.check().map_err(|message| forge_debian::Error::Invalid { file: file.to_owned(), message })?;
        Ok(lock)
    }

    /// What is wrong with the lock, if anything.
    pub fn check(&self) -> Result<(), String> {
        if self.version != APT_LOCK_VERSION {
            return Err(format!(
                "unsupported apt lock version {} (expected {APT_LOCK_VERSION})",
                self.version
            ));
        }
        for (i, p) in self.packages.iter().enumerate() {
            p.check()?;
            if p.mirror.is_none() {
                return Err(format!("package {}: no mirror", p.name));
            }
            if i > 0 && self.packages[i - 1].name >= p.name {
                return Err(format!("packages not sorted by name, or given twice, at `{}`", p.name));
            }
        }
        Ok(())
    }

    /// Whether this lock was made for `request` on an image like `target`
    /// (release, architecture, packages, recommends; not the mirrors,
    /// which may differ between machines).
    pub fn is_current_for(&self, target: &AptTarget, request: &AptRequest) -> bool {
        self.suite == target.codename
            && self.architecture == target.architecture
            && self.requested == request.spelled()
            && self.recommends == request.recommends
    }

    /// The total size of the `.deb`s in bytes.
    pub fn total_size(&self) -> u64 {
        self.packages.iter().map(|p| p.size).sum()
    }
}

/// dpkg's architecture for an OCI one (`amd64`, `arm64`, `arm/v7`,
/// `linux/arm64/v8`, ...); `None` for one Debian does not build.
pub fn dpkg_architecture(oci: &str) -> Option<&'static str> {
    let oci = oci.strip_prefix("linux/").unwrap_or(oci);
    let (arch, variant) = oci.split_once('/').unwrap_or((oci, ""));
    Some(match (arch, variant) {
        ("amd64", _) => "amd64",
        ("arm64", "" | "v8") => "arm64",
        ("arm", "" | "v7") => "armhf",
        ("arm", "v5" | "v6") => "armel",
        ("386", _) => "i386",
        ("ppc64le", _) => "ppc64el",
        ("s390x", _) => "s390x",
        ("riscv64", _) => "riscv64",
        ("mips64le", _) => "mips64el",
        ("loong64", _) => "loong64",
        _ => return None,
    })
}

/// The OCI platform of a dpkg architecture, the inverse of
/// [`dpkg_architecture`] (`armhf` is `linux/arm/v7`); `None` for one it
/// does not know.
pub fn oci_platform(dpkg: &str) -> Option<forge_oci::Platform> {
    let (architecture, variant) = match dpkg {
        "amd64" => ("amd64", None),
        "arm64" => ("arm64", None),
        "armhf" => ("arm", Some("v7")),
        "armel" => ("arm", Some("v5")),
        "i386" => ("386", None),
        "ppc64el" => ("ppc64le", None),
        "s390x" => ("s390x", None),
        "riscv64" => ("riscv64", None),
        "mips64el" => ("mips64le", None),
        "loong64" => ("loong64", None),
        _ => return None,
    };
    Some(forge_oci::Platform {
        os: "linux".into(),
        architecture: architecture.into(),
        variant: variant.map(str::to_owned),
    })
}

fn read_text(files: &dyn ImageFiles, path: &str) -> Result<Option<String>, Error> {
    files::read_to_string(files, path, READ_LIMIT)
        .map_err(|source| Error::ImageRead { path: format!("/{path}"), source })
}

/// The `KEY=value` pairs of an os-release file, quotes and escapes removed.
fn os_release(text: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for line in text.lines() {
        let line = line.trim();
        let Some((key, value)) = line.split_once('=') else { continue };
        if line.starts_with('#') || key.is_empty() {
            continue;
        }
        let value = value.trim();
        let unquoted = match value.as_bytes().first() {
            Some(q @ (b'"' | b'\'')) if value.len() >= 2 && value.as_bytes()[value.len() - 1] == *q => {
                let inner = &value[1..value.len() - 1];
                if *q == b'"' {
                    let mut s = String::new();
                    let mut chars = inner.chars();
                    while let Some(c) = chars.next() {
                        if c == '\\' {
                            if let Some(next) = chars.next() {
                                s.push(next);
                            }
                        } else {
                            s.push(c);
                        }
                    }
                    s
                } else {
                    inner.to_owned()
                }
            }
            _ => value.to_owned(),
        };
        out.insert(key.to_owned(), unquoted);
    }
    out
}

/// Finds out what `apt-get install` would install into: see the [module
/// docs](self). `oci_arch` is the image config's architecture (with its
/// variant after a `/` where it matters: `arm/v7`).
pub fn detect(files: &dyn ImageFiles, oci_arch: &str) -> Result<AptTarget, Error> {
    let os_text = match read_text(files, "etc/os-release")? {
        Some(text) => Some(text),
        None => read_text(files, "usr/lib/os-release")?,
    };
    let debian_version = read_text(files, "etc/debian_version")?;
    let status_text = read_text(files, "var/lib/dpkg/status")?;
    let os = os_text.as_deref().map(os_release).unwrap_or_default();
    let id = os.get("ID").cloned().unwrap_or_default();
    let id_like: Vec<&str> = os.get("ID_LIKE").map(|s| s.split_whitespace().collect()).unwrap_or_default();
    let debian_like =
        id == "debian" || id_like.contains(&"debian") || (os.is_empty() && debian_version.is_some());
    let found = || {
        let os = match (&os_text, os.get("PRETTY_NAME")) {
            (Some(_), Some(name)) => format!("/etc/os-release says {name:?}"),
            (Some(_), None) => format!("/etc/os-release has ID={id:?}"),
            (None, _) => "no /etc/os-release".to_owned(),
        };
        let dpkg = if status_text.is_some() { "a dpkg status database" } else { "no /var/lib/dpkg/status" };
        format!("{os}, {dpkg}")
    };
    let Some(status_text) = status_text.as_deref().filter(|_| debian_like) else {
        return Err(Error::NotDebian { found: found() });
    };
    let status = StatusDb::parse(status_text, "/var/lib/dpkg/status")?;
    let codename = os
        .get("VERSION_CODENAME")
        .filter(|c| !c.is_empty())
        .cloned()
        .or_else(|| codename_of_debian_version(debian_version.as_deref()?))
        .ok_or_else(|| Error::UnknownRelease { found: found() })?;
    let distribution = if id.is_empty() { "debian".to_owned() } else { id };
    let architecture = dpkg_architecture(oci_arch)
        .ok_or_else(|| Error::UnsupportedArchitecture { architecture: oci_arch.to_owned() })?
        .to_owned();
    if let Some(dpkg) = native_architecture(files, &status)? {
        if dpkg != architecture {
            return Err(Error::ArchitectureMismatch {
                oci: oci_arch.to_owned(),
                dpkg,
                expected: architecture,
            });
        }
    }
    let merged_usr = matches!(
        files.node("bin").map(|n| n.kind),
        Some(NodeKind::Symlink { target }) if target.trim_start_matches('/') == "usr/bin"
    );
    let mut sources = image_sources(files, &architecture)?;
    if sources.is_empty() {
        sources = default_sources(&distribution, &codename)?;
    }
    Ok(AptTarget {
        distribution,
        codename,
        architecture,
        merged_usr,
        sources,
        status,
        assume_installed: Vec::new(),
        path_filters: dpkg_path_filters(files)?,
    })
}

/// The image's dpkg path filters: `/etc/dpkg/dpkg.cfg.d/*` by name (the
/// names dpkg reads: letters, digits, `_` and `-`), then `/etc/dpkg/dpkg.cfg`.
fn dpkg_path_filters(files: &dyn ImageFiles) -> Result<PathFilters, Error> {
    let mut filters = PathFilters::default();
    let dir = files::resolve(files, "etc/dpkg/dpkg.cfg.d");
    let names = dir.as_deref().map(|d| files.list(d)).unwrap_or_default();
    let config_name = |n: &&String| n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    let paths = names.iter().filter(config_name).map(|n| format!("etc/dpkg/dpkg.cfg.d/{n}"));
    for path in paths.chain(["etc/dpkg/dpkg.cfg".to_owned()]) {
        if let Some(text) = read_text(files, &path)? {
            filters.add_config(&text, &format!("/{path}"))?;
        }
    }
    Ok(filters)
}

/// The codename of a `/etc/debian_version` (`12.5` → bookworm,
/// `trixie/sid` → trixie).
fn codename_of_debian_version(text: &str) -> Option<String> {
    let text = text.trim();
    if let Some((name, _)) = text.split_once('/') {
        return Some(name.to_owned()).filter(|n| n.chars().all(|c| c.is_ascii_lowercase()) && !n.is_empty());
    }
    let major = text.split('.').next()?;
    CODENAMES.iter().find(|(v, _)| *v == major).map(|(_, name)| (*name).to_owned())
}

/// dpkg's native architecture as the image records it: `/var/lib/dpkg/arch`
/// (first line), else the architecture of the installed `libc6` or
/// `dpkg`, else of any installed package not `all`.
fn native_architecture(files: &dyn ImageFiles, status: &StatusDb) -> Result<Option<String>, Error> {
    if let Some(text) = read_text(files, "var/lib/dpkg/arch")? {
        if let Some(first) = text.lines().map(str::trim).find(|l| !l.is_empty()) {
            return Ok(Some(first.to_owned()));
        }
    }
    let arch_of = |name: &str| status.installed().find(|p| p.name == name).map(|p| p.architecture.clone());
    Ok(arch_of("dpkg")
        .or_else(|| arch_of("libc6"))
        .or_else(|| status.installed().find(|p| p.architecture != "all").map(|p| p.architecture.clone())))
}

/// The release's default sources when the image configures none: only
/// Debian's are known.
fn default_sources(distribution: &str, codename: &str) -> Result<Vec<AptSource>, Error> {
    if distribution != "debian" {
        return Err(Error::NoSources {
            distribution: distribution.to_owned(),
            codename: codename.to_owned(),
        });
    }
    let origin = format!("the defaults of debian {codename}");
    let source = |uri: &str, suite: String| AptSource {
        uri: uri.to_owned(),
        suite,
        components: vec!["main".to_owned()],
        origin: origin.clone(),
    };
    let mut sources = vec![source(DEBIAN_ARCHIVE, codename.to_owned())];
    if codename != "sid" && codename != "unstable" {
        sources.push(source(DEBIAN_ARCHIVE, format!("{codename}-updates")));
        let security = if OLD_SECURITY_LAYOUT.contains(&codename) {
            format!("{codename}/updates")
        } else {
            format!("{codename}-security")
        };
        sources.push(source(DEBIAN_SECURITY, security));
    }
    Ok(sources)
}

/// The image's apt sources in the order apt reads them:
/// `/etc/apt/sources.list`, then `/etc/apt/sources.list.d/*.list` and
/// `*.sources` by name; only `deb` entries for `arch`.
fn image_sources(files: &dyn ImageFiles, arch: &str) -> Result<Vec<AptSource>, Error> {
    let mut sources = Vec::new();
    if let Some(text) = read_text(files, "etc/apt/sources.list")? {
        sources.extend(parse_sources_list(&text, "/etc/apt/sources.list", arch)?);
    }
    let dir = files::resolve(files, "etc/apt/sources.list.d");
    for name in dir.as_deref().map(|d| files.list(d)).unwrap_or_default() {
        let path = format!("etc/apt/sources.list.d/{name}");
        let shown = format!("/{path}");
        if name.ends_with(".list") {
            if let Some(text) = read_text(files, &path)? {
                sources.extend(parse_sources_list(&text, &shown, arch)?);
            }
        } else if name.ends_with(".sources") {
            if let Some(text) = read_text(files, &path)? {
                sources.extend(parse_deb822_sources(&text, &shown, arch)?);
            }
        }
    }
    // A suite configured twice is read once, with the components of both.
    let mut merged: Vec<AptSource> = Vec::new();
    for source in sources {
        match merged.iter_mut().find(|m| m.uri == source.uri && m.suite == source.suite) {
            Some(m) => {
                for c in source.components {
                    if !m.components.contains(&c) {
                        m.components.push(c);
                    }
                }
            }
            None => merged.push(source),
        }
    }
    Ok(merged)
}

/// The `deb` lines of a one-line `sources.list`.
pub fn parse_sources_list(text: &str, file: &str, arch: &str) -> Result<Vec<AptSource>, Error> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let origin = format!("{file}:{}", n + 1);
        let line = line.split('#').next().unwrap_or("").trim();
        let mut words = line.split_whitespace();
        match words.next() {
            Some("deb") => {}
            Some("deb-src") | None => continue,
            Some(other) => {
                return Err(Error::Sources { origin, message: format!("unknown entry type `{other}`") });
            }
        }
        let mut rest: Vec<&str> = words.collect();
        let mut arches: Option<Vec<String>> = None;
        if rest.first().is_some_and(|w| w.starts_with('[')) {
            let end = rest.iter().position(|w| w.ends_with(']')).ok_or_else(|| Error::Sources {
                origin: origin.clone(),
                message: "unclosed `[` of options".to_owned(),
            })?;
            let options: Vec<&str> = rest[..=end]
                .iter()
                .map(|w| w.trim_start_matches('[').trim_end_matches(']'))
                .filter(|w| !w.is_empty())
                .collect();
            for option in options {
                if let Some(list) = option.strip_prefix("arch=") {
                    arches = Some(list.split(',').map(str::to_owned).collect());
                }
            }
            rest.drain(..=end);
        }
        let [uri, suite, components @ ..] = &rest[..] else {
            return Err(Error::Sources {
                origin,
                message: "expected `deb URI SUITE COMPONENT...`".to_owned(),
            });
        };
        if arches.is_some_and(|a| !a.iter().any(|a| a == arch)) {
            continue;
        }
        let components: Vec<String> = components.iter().map(|c| (*c).to_owned()).collect();
        out.extend(source(uri, &[suite.to_string()], components, origin)?);
    }
    Ok(out)
}

/// The `deb` paragraphs of a deb822 `.sources` file.
pub fn parse_deb822_sources(text: &str, file: &str, arch: &str) -> Result<Vec<AptSource>, Error> {
    let mut out = Vec::new();
    for p in deb822::parse(text, file)? {
        let origin = format!("{file}:{}", p.line());
        let words = |field: &str| -> Vec<String> {
            p.get(field).map(|v| v.split_whitespace().map(str::to_owned).collect()).unwrap_or_default()
        };
        if !words("Types").iter().any(|t| t == "deb") {
            continue;
        }
        if p.get("Enabled").is_some_and(|e| e.trim().eq_ignore_ascii_case("no")) {
            continue;
        }
        let arches = words("Architectures");
        if !arches.is_empty() && !arches.iter().any(|a| a == arch) {
            continue;
        }
        let (uris, suites) = (words("URIs"), words("Suites"));
        if uris.is_empty() || suites.is_empty() {
            return Err(Error::Sources {
                origin,
                message: "a `deb` entry needs `URIs` and `Suites`".to_owned(),
            });
        }
        for uri in &uris {
            out.extend(source(uri, &suites, words("Components"), origin.clone())?);
        }
    }
    Ok(out)
}

/// The sources of one URI and its suites.
fn source(
    uri: &str,
    suites: &[String],
    components: Vec<String>,
    origin: String,
) -> Result<Vec<AptSource>, Error> {
    let mut out = Vec::new();
    for suite in suites {
        if suite.ends_with('/') || components.is_empty() {
            return Err(Error::Sources {
                origin,
                message: format!("`{uri} {suite}` is a flat repository, which is not supported"),
            });
        }
        out.push(AptSource {
            uri: uri.trim_end_matches('/').to_owned(),
            suite: suite.clone(),
            components: components.clone(),
            origin: origin.clone(),
        });
    }
    Ok(out)
}

/// Resolves `request` for `target` against the signed indexes of its
/// sources (see the [module docs](self)); `options` chooses the keyring
/// and whether cached `InRelease` files are fetched again, `now` checks
/// their `Valid-Until`.
pub fn resolve(
    target: &AptTarget,
    request: &AptRequest,
    fetcher: &Fetcher,
    options: &ReleaseOptions,
    now: SystemTime,
) -> Result<AptLock, Error> {
    let wanted = request.relations()?;
    let (indexes, sources) = fetch_indexes(target, fetcher, options, now)?;
    let (index, origins) = combine(sources, &target.architecture);
    let installed: Vec<_> = target.status.installed().cloned().collect();
    let chosen = resolve_request(
        &index,
        &Request {
            wanted: &wanted,
            excluded: &target.assume_installed,
            installed: &installed,
            recommends: request.recommends,
        },
    )?;
    let packages = chosen
        .iter()
        .map(|p| {
            let (mirror, suite) = origins.get(&p.filename).cloned().unwrap_or_default();
            LockedPackage { mirror: Some(mirror), suite: Some(suite), ..LockedPackage::from(p) }
        })
        .collect();
    Ok(AptLock {
        version: APT_LOCK_VERSION,
        distribution: target.distribution.clone(),
        suite: target.codename.clone(),
        architecture: target.architecture.clone(),
        requested: request.spelled(),
        recommends: request.recommends,
        indexes,
        packages,
    })
}

/// Every source's verified `Packages` indexes, in order, each with its
/// archive and suite.
type Indexes = (Vec<LockedSuite>, Vec<((String, String), Index)>);

fn fetch_indexes(
    target: &AptTarget,
    fetcher: &Fetcher,
    options: &ReleaseOptions,
    now: SystemTime,
) -> Result<Indexes, Error> {
    let arch = &target.architecture;
    let mut locked = Vec::new();
    let mut indexes = Vec::new();
    for source in &target.sources {
        if !(source.uri.starts_with("http://") || source.uri.starts_with("https://")) {
            return Err(Error::Sources {
                origin: source.origin.clone(),
                message: format!("`{}` is not an http(s) archive; give a mirror override", source.uri),
            });
        }
        let archive = fetcher.with_mirror(&source.uri);
        let rel = release::fetch_release(&archive, &source.suite, options, now).map_err(|e| match e {
            forge_debian::Error::HttpStatus { url, status: 404 } => Error::SuiteNotServed {
                url,
                suite: source.suite.clone(),
                origin: source.origin.clone(),
                help: if target.distribution == "debian" {
                    format!(
                        "if {} is a Debian release past its end of life, its packages are on \
                         http://archive.debian.org/debian (and debian-security): give that as the mirror override",
                        target.codename
                    )
                } else {
                    "give a mirror that serves it as the mirror override".to_owned()
                },
            },
            other => other.into(),
        })?;
        if !rel.architectures.is_empty() && !rel.architectures.iter().any(|a| a == arch) {
            return Err(Error::NoArchitecture {
                url: archive.url(&format!("dists/{}/InRelease", source.suite)),
                architecture: arch.clone(),
            });
        }
        for component in &source.components {
            // A component the release does not have (say non-free-firmware
            // before bookworm) is skipped, as apt skips it with a warning.
            // debian-security lists `updates/main` for `main`.
            let listed = |c: &String| c == component || c.rsplit('/').next() == Some(component.as_str());
            if !rel.components.is_empty() && !rel.components.iter().any(listed) {
                continue;
            }
            let file = release::fetch_packages(&archive, &source.suite, &rel, component, arch)?;
            let index = Index::parse(&file.text, &archive.url(&file.path), arch)?;
            locked.push(LockedSuite {
                mirror: archive.mirror().to_owned(),
                suite: source.suite.clone(),
                release_date: rel.date.clone(),
                packages_index: file.path,
                packages_sha256: file.entry.sha256,
            });
            indexes.push(((archive.mirror().to_owned(), source.suite.clone()), index));
        }
    }
    Ok((locked, indexes))
}

/// Unpacks the packages of `lock` over the image `files` (as [`detect`]
/// saw it in `target`) into the tree of one layer: see the [module
/// docs](self). Every `.deb` is fetched and verified before anything is
/// unpacked; file contents are spooled into `spool`. Packages the image
/// has installed at the locked version already are not unpacked again.
pub fn materialize(
    files: &dyn ImageFiles,
    target: &AptTarget,
    lock: &AptLock,
    fetcher: &Fetcher,
    spool: &mut Spool,
) -> Result<Tree, Error> {
    if lock.architecture != target.architecture || lock.suite != target.codename {
        return Err(Error::LockMismatch {
            lock: format!("{} {}", lock.suite, lock.architecture),
            image: format!("{} {}", target.codename, target.architecture),
        });
    }
    let wanted: Vec<&LockedPackage> =
        lock.packages
            .iter()
            .filter(|p| {
                target.status.installed_package(&p.name, &target.architecture).is_none_or(|installed| {
                    Version::parse(&p.version).ok().as_ref() != Some(&installed.version)
                })
            })
            .collect();
    // Every .deb verified first: a bad one stops before anything is unpacked.
    let debs = wanted
        .iter()
        .map(|p| {
            p.fetch(fetcher).map_err(|e| match e {
                forge_debian::Error::HttpStatus { url, status: 404 } => {
                    Error::Gone { package: format!("{} {}", p.name, p.version), url }
                }
                other => other.into(),
            })
        })
        .collect::<Result<Vec<_>, Error>>()?;
    let mut unpacked = Tree::new();
    let mut status = target.status.clone();
    let mut info = Tree::new();
    let mut replaced: Vec<(String, BTreeSet<String>)> = Vec::new();
    for (p, path) in wanted.iter().zip(debs) {
        let deb = DebFile::open(&path)?;
        let control = deb.control()?;
        let mut listed = unpack_package(&mut unpacked, spool, deb.data()?, &p.name, target.merged_usr)?;
        filter_paths(&mut unpacked, &mut listed, &target.path_filters, target.merged_usr);
        let conffiles = conffile_hashes(&unpacked, &control.conffiles, target.merged_usr)?;
        let paragraph = with_conffiles(&status_paragraph(&control.control), &conffiles);
        status.upsert(&paragraph, &target.architecture)?;
        let multi_arch_same = deb822::parse(&control.control, &p.name)?
            .first()
            .and_then(|c| c.get("Multi-Arch"))
            .is_some_and(|m| m == "same");
        let stem = if multi_arch_same { format!("{}:{}", p.name, p.architecture) } else { p.name.clone() };
        let at = |suffix: &str| format!("var/lib/dpkg/info/{stem}.{suffix}");
        let mut list = listed.join("\n");
        list.push('\n');
        info.insert(at("list"), Node::bytes(0o644, list));
        if let Some(md5sums) = &control.md5sums {
            info.insert(at("md5sums"), Node::bytes(0o644, md5sums.clone()));
        }
        if !control.conffiles.is_empty() {
            info.insert(at("conffiles"), Node::bytes(0o644, format!("{}\n", control.conffiles.join("\n"))));
        }
        for (name, mode, bytes) in &control.others {
            info.insert(at(name), Node::bytes(*mode, bytes.clone()));
        }
        if target.status.installed_package(&p.name, &target.architecture).is_some() {
            replaced.push((p.name.clone(), listed.into_iter().collect()));
        }
    }
    let mut tree = over_image(files, unpacked);
    if tree.iter().any(|(path, _)| path.starts_with("usr/share/ca-certificates/")) {
        update_ca_certificates(&mut tree)?;
    }
    for (name, new_paths) in &replaced {
        remove_old_files(files, &mut tree, &info, name, &target.architecture, new_paths, target.merged_usr)?;
    }
    tree.extend(info);
    tree.insert("var/lib/dpkg/status", Node::bytes(0o644, status.to_text()));
    let new: Vec<&LockedPackage> = wanted
        .iter()
        .copied()
        .filter(|p| target.status.installed_package(&p.name, &target.architecture).is_none())
        .collect();
    if let Some(states) = extended_states(files, lock, &new)? {
        tree.insert(EXTENDED_STATES, Node::bytes(0o644, states));
    }
    keep_image_parents(files, &mut tree);
    Ok(tree)
}

/// The `Conffiles` lines dpkg records for a package: ` PATH MD5 [FLAGS]`
/// for each of its conffiles that was unpacked into `tree` (one dpkg's
/// path filters left out, or a `remove-on-upgrade` one it does not ship,
/// is not recorded).
fn conffile_hashes(tree: &Tree, conffiles: &[String], merged: bool) -> Result<Vec<String>, Error> {
    let mut lines = Vec::new();
    for line in conffiles {
        let (path, flags) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        let Some(local) = install_path(path, merged) else { continue };
        let read_error = |source| Error::ImageRead { path: path.to_owned(), source };
        let Some(mut content) = tree.open(&local).map_err(read_error)? else { continue };
        let mut md5 = forge_debian::md5::Md5::default();
        let mut buf = vec![0u8; 64 << 10];
        loop {
            match content.read(&mut buf).map_err(read_error)? {
                0 => break,
                n => md5.update(&buf[..n]),
            }
        }
        let flags = flags.trim();
        let sep = if flags.is_empty() { "" } else { " " };
        lines.push(format!(" {path} {}{sep}{flags}", md5.hex()));
    }
    Ok(lines)
}

/// `paragraph` with a `Conffiles` field of `lines`, where dpkg puts it
/// (before `Description`, else last).
fn with_conffiles(paragraph: &str, lines: &[String]) -> String {
    if lines.is_empty() {
        return paragraph.to_owned();
    }
    let field = format!("Conffiles:\n{}\n", lines.join("\n"));
    match paragraph.find("\nDescription:") {
        Some(at) => format!("{}{field}{}", &paragraph[..=at], &paragraph[at + 1..]),
        None => format!("{paragraph}{field}"),
    }
}

/// apt's record of which packages were installed only as dependencies.
const EXTENDED_STATES: &str = "var/lib/apt/extended_states";

/// `/var/lib/apt/extended_states` as `apt-get install` leaves it: the
/// image's entries, the requested packages marked manual (their entries
/// dropped), every other newly installed package (`new`) marked
/// `Auto-Installed: 1`, sorted by name and architecture. `None` when there
/// is nothing to write.
fn extended_states(
    files: &dyn ImageFiles,
    lock: &AptLock,
    new: &[&LockedPackage],
) -> Result<Option<String>, Error> {
    let requested: BTreeSet<&str> =
        lock.requested.iter().map(|r| r.split_once('=').map_or(r.as_str(), |(name, _)| name)).collect();
    let old = read_text(files, EXTENDED_STATES)?;
    let mut entries: Vec<(String, String, String)> = Vec::new();
    for p in deb822::parse(old.as_deref().unwrap_or(""), "/var/lib/apt/extended_states")? {
        let name = p.get("Package").unwrap_or("").to_owned();
        if requested.contains(name.as_str()) {
            continue;
        }
        let mut raw = p.raw().trim_end().to_owned();
        raw.push('\n');
        entries.push((name, p.get("Architecture").unwrap_or("").to_owned(), raw));
    }
    for p in new.iter().filter(|p| !requested.contains(p.name.as_str())) {
        // apt files `Architecture: all` packages under the native architecture.
        let arch = if p.architecture == "all" { &lock.architecture } else { &p.architecture };
        entries.retain(|(name, a, _)| !(name == &p.name && a == arch));
        let raw = format!("Package: {}\nArchitecture: {arch}\nAuto-Installed: 1\n", p.name);
        entries.push((p.name.clone(), arch.clone(), raw));
    }
    if entries.is_empty() && old.is_none() {
        return Ok(None);
    }
    entries.sort();
    Ok(Some(entries.iter().map(|(_, _, raw)| format!("{raw}\n")).collect()))
}

/// Leaves out of `tree` and `listed` (one package's paths, as its `.list`
/// has them) what dpkg's path filters exclude; a directory stays while
/// something under it stays, as dpkg keeps it.
fn filter_paths(tree: &mut Tree, listed: &mut Vec<String>, filters: &PathFilters, merged: bool) {
    if filters.rules.is_empty() {
        return;
    }
    let kept: Vec<&String> = listed.iter().filter(|p| !filters.excludes(p)).collect();
    let needed = |dir: &str| {
        let prefix = if dir == "/." { "/".to_owned() } else { format!("{dir}/") };
        kept.iter().any(|k| k.starts_with(&prefix))
    };
    let is_dir = |path: &str| {
        install_path(path, merged).and_then(|l| tree.get(&l).cloned()).is_some_and(|n| n.is_dir())
    };
    let dropped: BTreeSet<String> =
        listed.iter().filter(|p| filters.excludes(p) && !(is_dir(p) && needed(p))).cloned().collect();
    for path in &dropped {
        if let Some(local) = install_path(path, merged).filter(|l| !l.is_empty()) {
            tree.remove(&local);
        }
    }
    listed.retain(|p| !dropped.contains(p));
}

/// The unpacked packages as a layer over the image: paths under a
/// directory the image has as a symlink go where the link points (dpkg
/// writes through the file system), a directory the image has keeps the
/// image's owner and mode (dpkg leaves existing directories alone), and
/// one the image has as a symlink to a directory stays that symlink.
fn over_image(files: &dyn ImageFiles, unpacked: Tree) -> Tree {
    let mut cache: HashMap<String, String> = HashMap::new();
    let mut tree = Tree::new();
    for (path, node) in unpacked.iter() {
        let real = image_path(files, path, &mut cache);
        let mut node = node.clone();
        if let NodeKind::Hardlink { target } = &mut node.kind {
            *target = image_path(files, target, &mut cache);
        }
        if node.is_dir() {
            match files.node(&real) {
                Some(existing) if existing.is_dir() => node = existing,
                Some(Node { kind: NodeKind::Symlink { .. }, .. })
                    if files::resolve(files, &real)
                        .is_some_and(|r| files.node(&r).is_some_and(|n| n.is_dir())) =>
                {
                    continue;
                }
                _ => {}
            }
        }
        tree.insert(real, node);
    }
    tree
}

/// Gives the directories the layer implies (parents of its entries that
/// it has no entry for) the image's owner and mode, as a diff of the file
/// system would have them.
fn keep_image_parents(files: &dyn ImageFiles, tree: &mut Tree) {
    let mut parents = BTreeSet::new();
    for (path, _) in tree.iter() {
        let mut at = path;
        while let Some((parent, _)) = at.rsplit_once('/') {
            parents.insert(parent.to_owned());
            at = parent;
        }
    }
    for parent in parents {
        if !tree.contains(&parent) {
            if let Some(existing) = files.node(&parent).filter(Node::is_dir) {
                tree.insert(parent, existing);
            }
        }
    }
}

/// `path` with its parent directories as the image has them: a parent
/// that is a symlink to a directory in the image is followed.
fn image_path(files: &dyn ImageFiles, path: &str, cache: &mut HashMap<String, String>) -> String {
    match path.rsplit_once('/') {
        Some((parent, name)) => {
            let real = real_dir(files, parent, cache);
            if real.is_empty() {
                name.to_owned()
            } else {
                format!("{real}/{name}")
            }
        }
        None => path.to_owned(),
    }
}

fn real_dir(files: &dyn ImageFiles, dir: &str, cache: &mut HashMap<String, String>) -> String {
    if let Some(real) = cache.get(dir) {
        return real.clone();
    }
    let (parent, name) = dir.rsplit_once('/').unwrap_or(("", dir));
    let base = if parent.is_empty() { String::new() } else { real_dir(files, parent, cache) };
    let here = if base.is_empty() { name.to_owned() } else { format!("{base}/{name}") };
    let real = match files.node(&here).map(|n| n.kind) {
        Some(NodeKind::Symlink { .. }) => match files::resolve(files, &here) {
            Some(target) if files.node(&target).is_some_and(|n| n.is_dir()) => target,
            _ => here,
        },
        _ => here,
    };
    cache.insert(dir.to_owned(), real.clone());
    real
}

/// What dpkg removes when it upgrades `name`: the files of the installed
/// version (its `.list` in the image) that the new one does not ship, and
/// its info files the new one does not have; hidden by whiteouts.
fn remove_old_files(
    files: &dyn ImageFiles,
    tree: &mut Tree,
    info: &Tree,
    name: &str,
    arch: &str,
    new_paths: &BTreeSet<String>,
    merged: bool,
) -> Result<(), Error> {
    let info_dir = "var/lib/dpkg/info";
    let stems = [format!("{name}:{arch}."), format!("{name}.")];
    let mut cache = HashMap::new();
    for file in files.list(info_dir) {
        let Some(stem) = stems.iter().find(|s| file.starts_with(s.as_str())) else { continue };
        let path = format!("{info_dir}/{file}");
        if file == format!("{stem}list") {
            let old = read_text(files, &path)?.unwrap_or_default();
            for line in old.lines().filter(|l| !l.is_empty() && !new_paths.contains(*l)) {
                let Some(local) = install_path(line, merged).filter(|p| !p.is_empty()) else { continue };
                let real = image_path(files, &local, &mut cache);
                let is_file = files.node(&real).is_some_and(|n| !n.is_dir());
                if is_file && !tree.contains(&real) {
                    tree.whiteout(&real);
                }
            }
        }
        if !info.contains(&path) && !tree.contains(&path) {
            tree.whiteout(&path);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const OS_RELEASE: &str = "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\n\
        VERSION_ID=\"12\"\nVERSION=\"12 (bookworm)\"\nVERSION_CODENAME=bookworm\nID=debian\n";

    const STATUS: &str = "Package: libc6\nStatus: install ok installed\nArchitecture: amd64\n\
        Multi-Arch: same\nVersion: 2.36-9+deb12u7\n";

    fn image(entries: &[(&str, &str)]) -> Tree {
        let mut tree = Tree::new();
        for (path, content) in entries {
            match content.strip_prefix("->") {
                Some(target) => tree.insert(*path, Node::symlink(target)),
                None => tree.insert(*path, Node::bytes(0o644, *content)),
            };
        }
        tree
    }

    fn bookworm() -> Tree {
        image(&[
            ("etc/os-release", "->../usr/lib/os-release"),
            ("usr/lib/os-release", OS_RELEASE),
            ("var/lib/dpkg/status", STATUS),
            ("bin", "->usr/bin"),
        ])
    }

    fn show(sources: &[AptSource]) -> Vec<String> {
        sources
            .iter()
            .map(|s| format!("{} {} {} ({})", s.uri, s.suite, s.components.join(","), s.origin))
            .collect()
    }

    #[test]
    fn detects_bookworm_with_default_sources() {
        let target = detect(&bookworm(), "amd64").unwrap();
        assert_eq!(
            (target.distribution.as_str(), target.codename.as_str(), target.architecture.as_str()),
            ("debian", "bookworm", "amd64")
        );
        assert!(target.merged_usr);
        assert_eq!(target.status.installed().count(), 1);
        assert_eq!(
            show(&target.sources),
            [
                "http://deb.debian.org/debian bookworm main (the defaults of debian bookworm)",
                "http://deb.debian.org/debian bookworm-updates main (the defaults of debian bookworm)",
                "http://deb.debian.org/debian-security bookworm-security main (the defaults of debian bookworm)",
            ]
        );
        let mut overridden = target.clone();
        overridden.override_mirrors(Some("http://archive.debian.org/debian/"), None);
        assert_eq!(overridden.sources[0].uri, "http://archive.debian.org/debian");
        assert_eq!(overridden.sources[2].uri, "http://deb.debian.org/debian-security");
    }

    #[test]
    fn detects_the_release_from_debian_version_and_old_security_layout() {
        let tree = image(&[("etc/debian_version", "10.13\n"), ("var/lib/dpkg/status", STATUS)]);
        let target = detect(&tree, "amd64").unwrap();
        assert_eq!(target.codename, "buster");
        assert!(!target.merged_usr);
        assert_eq!(target.sources[2].suite, "buster/updates");
        let sid = image(&[("etc/debian_version", "trixie/sid\n"), ("var/lib/dpkg/status", STATUS)]);
        assert_eq!(detect(&sid, "amd64").unwrap().codename, "trixie");
    }

    #[test]
    fn refuses_what_is_not_debian() {
        let cases: &[(Tree, &str, &str)] = &[
            (
                image(&[("etc/os-release", "ID=alpine\nPRETTY_NAME=\"Alpine Linux v3.20\"\n")]),
                "amd64",
                "the image is not Debian-based (/etc/os-release says \"Alpine Linux v3.20\", no /var/lib/dpkg/status)",
            ),
            (image(&[]), "amd64", "the image is not Debian-based (no /etc/os-release, no /var/lib/dpkg/status)"),
            (
                image(&[("etc/os-release", OS_RELEASE)]),
                "amd64",
                "the image is not Debian-based (/etc/os-release says \"Debian GNU/Linux 12 (bookworm)\", no /var/lib/dpkg/status)",
            ),
            (
                image(&[("etc/os-release", "ID=debian\n"), ("var/lib/dpkg/status", STATUS)]),
                "amd64",
                "cannot tell the Debian release of the image (/etc/os-release has ID=\"debian\", a dpkg status database)",
            ),
            (bookworm(), "sparc", "the image's architecture sparc is not one Debian builds"),
            (
                bookworm(),
                "arm64",
                "the image config says arm64 (dpkg arm64), but its dpkg database is for amd64",
            ),
        ];
        for (tree, arch, expected) in cases {
            let err = detect(tree, arch).unwrap_err().to_string();
            assert!(err.starts_with(expected), "got {err:?}, expected {expected:?}");
        }
    }

    #[test]
    fn reads_the_images_sources() {
        let deb822 = "Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm bookworm-updates\n\
            Components: main contrib\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n\
            Types: deb-src\nURIs: http://deb.debian.org/debian\nSuites: bookworm\nComponents: main\n\n\
            Types: deb\nURIs: http://deb.debian.org/debian-security\nSuites: bookworm-security\nComponents: main\n\n\
            Types: deb\nURIs: http://example.org/arm\nSuites: x\nComponents: main\nArchitectures: arm64\n\n\
            Types: deb\nURIs: http://example.org/off\nSuites: x\nComponents: main\nEnabled: no\n";
        let list = "# comment\ndeb http://mirror.example/debian/ bookworm main non-free # trailing\n\
            deb http://mirror.example/debian bookworm contrib main\n\
            deb-src http://mirror.example/debian bookworm main\n\
            deb [ arch=arm64,armhf signed-by=/k.gpg ] http://ports.example/debian bookworm main\n\
            deb [arch=amd64] http://amd.example/debian bookworm main\n";
        let mut tree = bookworm();
        tree.insert("etc/apt/sources.list", Node::bytes(0o644, list));
        tree.insert("etc/apt/sources.list.d/debian.sources", Node::bytes(0o644, deb822));
        tree.insert("etc/apt/sources.list.d/ignored.txt", Node::bytes(0o644, "nonsense"));
        let target = detect(&tree, "amd64").unwrap();
        assert_eq!(
            show(&target.sources),
            [
                "http://mirror.example/debian bookworm main,non-free,contrib (/etc/apt/sources.list:2)",
                "http://amd.example/debian bookworm main (/etc/apt/sources.list:6)",
                "http://deb.debian.org/debian bookworm main,contrib (/etc/apt/sources.list.d/debian.sources:1)",
                "http://deb.debian.org/debian bookworm-updates main,contrib (/etc/apt/sources.list.d/debian.sources:1)",
                "http://deb.debian.org/debian-security bookworm-security main (/etc/apt/sources.list.d/debian.sources:12)",
            ]
        );
        let errors: &[(&str, &str)] = &[
            ("deb http://x/debian\n", "/l:1: expected `deb URI SUITE COMPONENT...`"),
            ("deb [arch=amd64 http://x/debian b main\n", "/l:1: unclosed `[` of options"),
            (
                "deb http://x/repo ./\n",
                "/l:1: `http://x/repo ./` is a flat repository, which is not supported",
            ),
            ("rpm http://x/ b main\n", "/l:1: unknown entry type `rpm`"),
        ];
        for (text, expected) in errors {
            let err = parse_sources_list(text, "/l", "amd64").unwrap_err().to_string();
            assert_eq!(err, format!("apt source {expected}"));
        }
        let err = parse_deb822_sources("Types: deb\nSuites: b\n", "/s", "amd64").unwrap_err().to_string();
        assert_eq!(err, "apt source /s:1: a `deb` entry needs `URIs` and `Suites`");
    }

    #[test]
    fn architectures() {
        let cases = [
            ("amd64", Some("amd64")),
            ("arm64", Some("arm64")),
            ("linux/arm64/v8", Some("arm64")),
            ("arm/v7", Some("armhf")),
            ("arm", Some("armhf")),
            ("arm/v5", Some("armel")),
            ("386", Some("i386")),
            ("ppc64le", Some("ppc64el")),
            ("s390x", Some("s390x")),
            ("sparc", None),
        ];
        for (oci, dpkg) in cases {
            assert_eq!(dpkg_architecture(oci), dpkg, "{oci}");
        }
        for dpkg in ["amd64", "arm64", "armhf", "armel", "i386", "ppc64el", "s390x", "riscv64", "loong64"] {
            let platform = oci_platform(dpkg).unwrap();
            assert_eq!(dpkg_architecture(&platform.to_string()), Some(dpkg), "{platform}");
        }
        assert_eq!(oci_platform("arm64").unwrap().to_string(), "linux/arm64");
        assert_eq!(oci_platform("sparc"), None);
    }

    #[test]
    fn requests_and_lock_round_trip() {
        let request = AptRequest {
            packages: vec![
                ("jq".into(), None),
                ("curl".into(), Some("7.88.1-10".into())),
                ("jq".into(), None),
            ],
            recommends: false,
        };
        assert_eq!(request.spelled(), ["curl=7.88.1-10", "jq"]);
        assert_eq!(request.relations().unwrap(), ["jq", "curl (= 7.88.1-10)", "jq"]);
        for (name, version, expected) in [
            ("jq:i386", None, "apt-get install jq:i386: another architecture (`pkg:arch`) is not supported"),
            (
                "jq/bookworm-backports",
                None,
                "apt-get install jq/bookworm-backports: a target release (`pkg/suite`) is not supported",
            ),
            ("Jq", None, "apt-get install Jq: not a Debian package name (lowercase letters, digits, `+-.`)"),
            (
                "jq",
                Some("x"),
                "apt-get install jq: invalid version `x`: version number does not start with digit",
            ),
        ] {
            let bad =
                AptRequest { packages: vec![(name.into(), version.map(str::to_owned))], recommends: true };
            assert_eq!(bad.relations().unwrap_err().to_string(), expected);
        }
        let package = LockedPackage {
            name: "jq".into(),
            version: "1.6-2.1".into(),
            architecture: "amd64".into(),
            filename: "pool/main/j/jq/jq_1.6-2.1_amd64.deb".into(),
            size: 64_000,
            sha256: "ab".repeat(32),
            source: None,
            mirror: Some(DEBIAN_ARCHIVE.into()),
            suite: Some("bookworm".into()),
        };
        let lock = AptLock {
            version: APT_LOCK_VERSION,
            distribution: "debian".into(),
            suite: "bookworm".into(),
            architecture: "amd64".into(),
            requested: request.spelled(),
            recommends: false,
            indexes: vec![LockedSuite {
                mirror: DEBIAN_ARCHIVE.into(),
                suite: "bookworm".into(),
                release_date: "Sat, 11 Jul 2026 10:16:37 UTC".into(),
                packages_index: "dists/bookworm/main/binary-amd64/Packages.xz".into(),
                packages_sha256: "cd".repeat(32),
            }],
            packages: vec![package],
        };
        let text = lock.to_toml();
        assert_eq!(AptLock::parse(&text, Path::new("x.lock")).unwrap(), lock);
        assert!(text.starts_with("version = 1\ndistribution = \"debian\"\nsuite = \"bookworm\"\n"), "{text}");
        assert!(text.contains("\n[[package]]\nname = \"jq\"\n"), "{text}");
        let target = detect(&bookworm(), "amd64").unwrap();
        assert!(lock.is_current_for(&target, &request));
        assert!(!lock.is_current_for(&target, &AptRequest { recommends: true, ..request.clone() }));
        let mut without_mirror = lock.clone();
        without_mirror.packages[0].mirror = None;
        assert_eq!(without_mirror.check().unwrap_err(), "package jq: no mirror");
        let err =
            AptLock::parse(&text.replace("version = 1\n", "version = 7\n"), Path::new("x.lock")).unwrap_err();
        assert_eq!(err.to_string(), "x.lock: unsupported apt lock version 7 (expected 1)");
    }
}
