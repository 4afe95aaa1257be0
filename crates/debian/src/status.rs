//! dpkg's status database (`/var/lib/dpkg/status`): what a system has
//! installed, read so that resolution can leave it out, and written back
//! with new packages the way dpkg writes it.
//!
//! Every paragraph is kept as written, whatever its state (a package
//! removed but not purged stays `deinstall ok config-files`), so writing
//! the database back changes only what was installed. A package counts as
//! installed (it satisfies dependencies) in the states dpkg itself accepts
//! for that: `installed`, `triggers-awaited` and `triggers-pending`.
//! dpkg writes the paragraphs sorted by package name, then architecture,
//! each followed by a blank line; [`StatusDb::to_text`] does the same.

use crate::deb822::{self, Paragraph};
use crate::error::{Error, Result};
use crate::relation::{self, Dependency, Relationships};
use crate::version::Version;

/// A package the system has installed: what resolution needs of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstalledPackage {
    /// `Package`.
    pub name: String,
    /// `Version`.
    pub version: Version,
    /// `Architecture` (`all`, the native one, or a foreign one).
    pub architecture: String,
    /// `Multi-Arch`.
    pub multi_arch: Option<String>,
    /// `Essential: yes`.
    pub essential: bool,
    /// `Provides`: virtual package names and their optional version.
    pub provides: Vec<(String, Option<Version>)>,
    /// The relationship fields as written.
    pub relationships: Relationships,
}

impl InstalledPackage {
    /// The clauses of a relationship field that apply on `host`.
    pub(crate) fn relations(&self, field: &'static str, host: &str) -> Result<Vec<Dependency>> {
        self.relationships.parse(field, host, &self.name, &self.version.to_string())
    }
}

/// One paragraph of the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusEntry {
    /// The paragraph as written, ending in one newline.
    pub raw: String,
    /// `Package`.
    pub name: String,
    /// `Architecture`, if the paragraph has one (a `not-installed` entry may not).
    pub architecture: Option<String>,
    /// The package when its state makes it installed.
    pub installed: Option<InstalledPackage>,
}

/// A parsed status database; see the [module docs](self).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatusDb {
    entries: Vec<StatusEntry>,
}

/// The `Provides` of a paragraph, for package `name` at `version` (named in errors).
pub(crate) fn parse_provides(
    text: &str,
    name: &str,
    version: &str,
) -> Result<Vec<(String, Option<Version>)>> {
    Ok(relation::parse(text)
        .map_err(|e| Error::PackageField {
            package: name.to_owned(),
            version: version.to_owned(),
            field: "Provides",
            source: Box::new(e),
        })?
        .into_iter()
        .flat_map(|clause| clause.alternatives)
        .map(|r| (r.name, r.version.map(|(_, v)| v)))
        .collect())
}

/// Whether a `Status` value (`want flag state`) makes the package installed.
fn is_installed(status: &str) -> bool {
    matches!(status.split_whitespace().nth(2), Some("installed" | "triggers-awaited" | "triggers-pending"))
}

impl StatusEntry {
    /// Reads one paragraph; `file` names the database in errors.
    pub fn from_paragraph(p: &Paragraph<'_>, file: &str) -> Result<StatusEntry> {
        let missing =
            |field: &'static str| Error::MissingField { file: file.to_owned(), line: p.line(), field };
        let name = p.get("Package").ok_or_else(|| missing("Package"))?.to_owned();
        let status = p.get("Status").ok_or_else(|| missing("Status"))?;
        let architecture = p.get("Architecture").map(str::to_owned);
        let installed = if is_installed(status) {
            let version_text = p.get("Version").ok_or_else(|| missing("Version"))?;
            let version = Version::parse(version_text).map_err(|_| Error::InvalidField {
                file: file.to_owned(),
                line: p.line(),
                field: "Version".to_owned(),
                value: version_text.to_owned(),
            })?;
            Some(InstalledPackage {
                provides: parse_provides(p.get("Provides").unwrap_or(""), &name, version_text)?,
                architecture: architecture.clone().ok_or_else(|| missing("Architecture"))?,
                multi_arch: p.get("Multi-Arch").map(str::to_owned),
                essential: p.get("Essential").is_some_and(|e| e.eq_ignore_ascii_case("yes")),
                relationships: Relationships::from_paragraph(p),
                name: name.clone(),
                version,
            })
        } else {
            None
        };
        let mut raw = p.raw().trim_end().to_owned();
        raw.push('\n');
        Ok(StatusEntry { raw, name, architecture, installed })
    }

    fn key(&self) -> (&str, &str) {
        (&self.name, self.architecture.as_deref().unwrap_or(""))
    }
}

impl StatusDb {
    /// Parses a status database; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<StatusDb> {
        let entries = deb822::parse(text, file)?
            .iter()
            .map(|p| StatusEntry::from_paragraph(p, file))
            .collect::<Result<Vec<_>>>()?;
        Ok(StatusDb { entries })
    }

    /// Every paragraph, in the database's order.
    pub fn entries(&self) -> &[StatusEntry] {
        &self.entries
    }

    /// The installed packages.
    pub fn installed(&self) -> impl Iterator<Item = &InstalledPackage> {
        self.entries.iter().filter_map(|e| e.installed.as_ref())
    }

    /// The installed package `name` of architecture `arch` (or `all`), if any.
    pub fn installed_package(&self, name: &str, arch: &str) -> Option<&InstalledPackage> {
        self.installed().find(|p| p.name == name && (p.architecture == arch || p.architecture == "all"))
    }

    /// Adds the paragraph `raw` (a package's status paragraph), replacing
    /// the entry of the same package and architecture, or, for a package
    /// that changes between `all` and an architecture on upgrade, the
    /// entry of the same name that is of `all` or `arch`.
    pub fn upsert(&mut self, raw: &str, arch: &str) -> Result<()> {
        let paragraphs = deb822::parse(raw, "status paragraph")?;
        let [p] = &paragraphs[..] else {
            return Err(Error::Deb822 {
                file: "status paragraph".to_owned(),
                line: 1,
                message: format!("expected one paragraph, found {}", paragraphs.len()),
            });
        };
        let entry = StatusEntry::from_paragraph(p, "status paragraph")?;
        let same = |e: &StatusEntry| {
            e.name == entry.name
                && (e.architecture == entry.architecture
                    || matches!(
                        (e.architecture.as_deref(), entry.architecture.as_deref()),
                        (Some(a), Some(b)) if (a == "all" && b == arch) || (a == arch && b == "all")
                    ))
        };
        self.entries.retain(|e| !same(e));
        self.entries.push(entry);
        Ok(())
    }

    /// The database as dpkg writes it: paragraphs sorted by package name,
    /// then architecture, each followed by a blank line.
    pub fn to_text(&self) -> String {
        let mut sorted: Vec<&StatusEntry> = self.entries.iter().collect();
        sorted.sort_by(|a, b| a.key().cmp(&b.key()));
        let mut out = String::new();
        for e in sorted {
            out.push_str(&e.raw);
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str = "Package: zlib1g
Status: install ok installed
Priority: optional
Architecture: amd64
Multi-Arch: same
Version: 1:1.2.13.dfsg-1
Depends: libc6 (>= 2.14)
Provides: libz1
Description: compression library - runtime

Package: libc6
Status: install ok installed
Architecture: amd64
Version: 2.36-9+deb12u7
Depends: libgcc-s1

Package: oldpkg
Status: deinstall ok config-files
Architecture: amd64
Version: 1.0

Package: gone
Status: purge ok not-installed
Priority: optional
";

    #[test]
    fn installed_entries_and_the_rest() {
        let db = StatusDb::parse(STATUS, "status").unwrap();
        assert_eq!(db.entries().len(), 4);
        let names: Vec<&str> = db.installed().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["zlib1g", "libc6"]);
        let z = db.installed_package("zlib1g", "amd64").unwrap();
        assert_eq!(z.version.to_string(), "1:1.2.13.dfsg-1");
        assert_eq!(z.provides, [("libz1".to_owned(), None)]);
        assert_eq!(z.multi_arch.as_deref(), Some("same"));
        assert!(db.installed_package("oldpkg", "amd64").is_none());
        assert!(db.installed_package("zlib1g", "arm64").is_none());
    }

    #[test]
    fn written_back_sorted_with_replacements() {
        let mut db = StatusDb::parse(STATUS, "status").unwrap();
        db.upsert(
            "Package: libc6\nStatus: install ok installed\nArchitecture: amd64\nVersion: 2.36-9+deb12u10\n",
            "amd64",
        )
        .unwrap();
        db.upsert(
            "Package: jq\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1.6-2.1\n",
            "amd64",
        )
        .unwrap();
        let text = db.to_text();
        let order: Vec<&str> = text.lines().filter_map(|l| l.strip_prefix("Package: ")).collect();
        assert_eq!(order, ["gone", "jq", "libc6", "oldpkg", "zlib1g"]);
        assert!(text.contains("Version: 2.36-9+deb12u10\n"));
        assert!(!text.contains("deb12u7"));
        assert!(text.ends_with("Description: compression library - runtime\n\n"), "{text}");
        // Read back, the same.
        assert_eq!(StatusDb::parse(&text, "status").unwrap().to_text(), text);
    }

    #[test]
    fn errors() {
        let cases: &[(&str, &str)] = &[
            ("Status: install ok installed\n", "s:1: paragraph has no `Package` field"),
            ("Package: a\n", "s:1: paragraph has no `Status` field"),
            (
                "Package: a\nStatus: install ok installed\nArchitecture: all\n",
                "s:1: paragraph has no `Version` field",
            ),
            (
                "Package: a\nStatus: install ok installed\nArchitecture: all\nVersion: x\n",
                "s:1: invalid `Version` value `x`",
            ),
            (
                "Package: a\nStatus: install ok installed\nVersion: 1\n",
                "s:1: paragraph has no `Architecture` field",
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(StatusDb::parse(text, "s").unwrap_err().to_string(), *expected, "{text:?}");
        }
    }
}
