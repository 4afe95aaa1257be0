//! Licenses as SPDX expressions, from what packages declare: the
//! machine-readable Debian `copyright` file (DEP-5, copyright-format 1.0)
//! and the core metadata of a Python distribution (`License-Expression`,
//! `License`, the `License ::` classifiers).
//!
//! Only declared licenses are read; nothing is guessed from license texts.
//! A `copyright` file that is not machine-readable gives no license (the
//! SBOM then says `NOASSERTION`). A license name SPDX does not list keeps
//! its name as a `LicenseRef-` identifier, which the documents declare
//! with where it was found.

use forge_debian::deb822;

/// The `Format:` of machine-readable copyright files.
const DEP5_FORMAT: &str = "debian.org/doc/packaging-manuals/copyright-format/1.0";

/// A declared license: an SPDX expression over SPDX list identifiers and
/// the `LicenseRef-` identifiers of [`License::references`].
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct License {
    /// The SPDX license expression (`GPL-2.0-or-later AND MIT`).
    pub expression: String,
    /// The `LicenseRef-` identifiers it uses, each with the name as the
    /// package wrote it.
    pub references: Vec<LicenseRef>,
}

/// A license name SPDX does not list, kept as `LicenseRef-NAME`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct LicenseRef {
    /// `LicenseRef-...`.
    pub id: String,
    /// The name as written by the package.
    pub name: String,
}

/// Debian short names and common spellings (lowercase) with their SPDX
/// identifiers; an SPDX identifier itself (any case) is found too.
const KNOWN: &[(&str, &str)] = &[
    ("gpl-1", "GPL-1.0-only"),
    ("gpl-1+", "GPL-1.0-or-later"),
    ("gpl-2", "GPL-2.0-only"),
    ("gpl-2+", "GPL-2.0-or-later"),
    ("gpl-2.0", "GPL-2.0-only"),
    ("gpl-2.0+", "GPL-2.0-or-later"),
    ("gpl-3", "GPL-3.0-only"),
    ("gpl-3+", "GPL-3.0-or-later"),
    ("gpl-3.0", "GPL-3.0-only"),
    ("gpl-3.0+", "GPL-3.0-or-later"),
    ("lgpl-2", "LGPL-2.0-only"),
    ("lgpl-2+", "LGPL-2.0-or-later"),
    ("lgpl-2.1", "LGPL-2.1-only"),
    ("lgpl-2.1+", "LGPL-2.1-or-later"),
    ("lgpl-3", "LGPL-3.0-only"),
    ("lgpl-3+", "LGPL-3.0-or-later"),
    ("agpl-3", "AGPL-3.0-only"),
    ("agpl-3+", "AGPL-3.0-or-later"),
    ("gfdl-1.2", "GFDL-1.2-only"),
    ("gfdl-1.2+", "GFDL-1.2-or-later"),
    ("gfdl-1.3", "GFDL-1.3-only"),
    ("gfdl-1.3+", "GFDL-1.3-or-later"),
    ("apache-2", "Apache-2.0"),
    ("apache 2.0", "Apache-2.0"),
    ("apache-2.0", "Apache-2.0"),
    ("apache license 2.0", "Apache-2.0"),
    ("apache license, version 2.0", "Apache-2.0"),
    ("artistic", "Artistic-1.0-Perl"),
    ("artistic-1.0-perl", "Artistic-1.0-Perl"),
    ("artistic-2.0", "Artistic-2.0"),
    ("bsd-2-clause", "BSD-2-Clause"),
    ("bsd-3-clause", "BSD-3-Clause"),
    ("bsd-4-clause", "BSD-4-Clause"),
    ("bsl-1.0", "BSL-1.0"),
    ("cc-by-3.0", "CC-BY-3.0"),
    ("cc-by-4.0", "CC-BY-4.0"),
    ("cc-by-sa-3.0", "CC-BY-SA-3.0"),
    ("cc-by-sa-4.0", "CC-BY-SA-4.0"),
    ("cc0", "CC0-1.0"),
    ("cc0-1.0", "CC0-1.0"),
    ("curl", "curl"),
    ("expat", "MIT"),
    ("fsfap", "FSFAP"),
    ("fsful", "FSFUL"),
    ("fsfullr", "FSFULLR"),
    ("icu", "ICU"),
    ("isc", "ISC"),
    ("latex2e", "Latex2e"),
    ("mit", "MIT"),
    ("mit license", "MIT"),
    ("mpl-1.1", "MPL-1.1"),
    ("mpl-2.0", "MPL-2.0"),
    ("ms-pl", "MS-PL"),
    ("ntp", "NTP"),
    ("openssl", "OpenSSL"),
    ("psf-2", "PSF-2.0"),
    ("psf-2.0", "PSF-2.0"),
    ("python-2.0", "Python-2.0"),
    ("sleepycat", "Sleepycat"),
    ("tcl", "TCL"),
    ("unicode-dfs-2016", "Unicode-DFS-2016"),
    ("unlicense", "Unlicense"),
    ("wtfpl", "WTFPL"),
    ("x11", "X11"),
    ("zlib", "Zlib"),
    ("0bsd", "0BSD"),
];

/// Trove classifiers (after `License :: OSI Approved :: `) with one SPDX
/// meaning.
const CLASSIFIERS: &[(&str, &str)] = &[
    ("MIT License", "MIT"),
    ("ISC License (ISCL)", "ISC"),
    ("Python Software Foundation License", "PSF-2.0"),
    ("Mozilla Public License 2.0 (MPL 2.0)", "MPL-2.0"),
    ("GNU General Public License v2 (GPLv2)", "GPL-2.0-only"),
    ("GNU General Public License v2 or later (GPLv2+)", "GPL-2.0-or-later"),
    ("GNU General Public License v3 (GPLv3)", "GPL-3.0-only"),
    ("GNU General Public License v3 or later (GPLv3+)", "GPL-3.0-or-later"),
    ("GNU Lesser General Public License v2 or later (LGPLv2+)", "LGPL-2.0-or-later"),
    ("GNU Lesser General Public License v3 (LGPLv3)", "LGPL-3.0-only"),
    ("GNU Lesser General Public License v3 or later (LGPLv3+)", "LGPL-3.0-or-later"),
    ("The Unlicense (Unlicense)", "Unlicense"),
    ("Apache Software License 2.0", "Apache-2.0"),
    ("Zope Public License", "ZPL-2.1"),
];

/// The SPDX identifier of a license name, when it is one SPDX lists.
fn known(name: &str) -> Option<&'static str> {
    let lower = name.trim().to_ascii_lowercase();
    KNOWN.iter().find(|(k, v)| *k == lower || v.eq_ignore_ascii_case(&lower)).map(|(_, v)| *v)
}

/// Builds expressions, collecting the `LicenseRef-`s they use.
#[derive(Default)]
struct Builder {
    references: Vec<LicenseRef>,
}

impl Builder {
    /// The identifier for one license name: SPDX's, or a `LicenseRef-`.
    fn id(&mut self, name: &str) -> String {
        if let Some(id) = known(name) {
            return id.to_owned();
        }
        let id = format!("LicenseRef-{}", sanitize(name));
        if !self.references.iter().any(|r| r.id == id) {
            self.references.push(LicenseRef { id: id.clone(), name: name.trim().to_owned() });
        }
        id
    }

    /// A Debian (or SPDX) license expression: names joined by `or`/`and`
    /// (any case, `,` before them allowed); a `with ... exception` term is
    /// kept whole as one `LicenseRef-`.
    fn expression(&mut self, text: &str) -> String {
        let mut out: Vec<String> = Vec::new();
        let mut term: Vec<&str> = Vec::new();
        let flush = |term: &mut Vec<&str>, out: &mut Vec<String>, this: &mut Builder| {
            if !term.is_empty() {
                out.push(this.id(&term.join(" ")));
                term.clear();
            }
        };
        for word in text.split_whitespace() {
            let word = word.trim_end_matches(',');
            match word.to_ascii_lowercase().as_str() {
                "or" | "and" => {
                    flush(&mut term, &mut out, self);
                    out.push(word.to_ascii_uppercase());
                }
                "" => {}
                _ => term.push(word),
            }
        }
        flush(&mut term, &mut out, self);
        // Dangling operators (`GPL-2+ or`) are dropped.
        while out.last().is_some_and(|w| w == "OR" || w == "AND") {
            out.pop();
        }
        while out.first().is_some_and(|w| w == "OR" || w == "AND") {
            out.remove(0);
        }
        out.join(" ")
    }

    fn finish(self, parts: Vec<String>) -> Option<License> {
        let mut unique: Vec<String> = Vec::new();
        for part in parts.into_iter().filter(|p| !p.is_empty()) {
            if !unique.contains(&part) {
                unique.push(part);
            }
        }
        let expression = match unique.len() {
            0 => return None,
            1 => unique.remove(0),
            _ => unique
                .iter()
                .map(|p| if p.contains(' ') { format!("({p})") } else { p.clone() })
                .collect::<Vec<_>>()
                .join(" AND "),
        };
        let mut references = self.references;
        references.retain(|r| expression.contains(&r.id));
        Some(License { expression, references })
    }
}

/// `LicenseRef-` idstrings allow letters, digits, `.` and `-`.
fn sanitize(name: &str) -> String {
    let mut out: String =
        name.trim().chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' { c } else { '-' }).collect();
    while out.contains("--") {
        out = out.replace("--", "-");
    }
    let out = out.trim_matches('-').to_owned();
    if out.is_empty() {
        "unnamed".to_owned()
    } else {
        out
    }
}

/// The licenses a machine-readable Debian `copyright` file declares for
/// its files (every `Files` paragraph's `License`, in order, joined with
/// `AND`); `None` for any other file.
pub fn from_copyright(text: &str) -> Option<License> {
    let paragraphs = deb822::parse(text, "copyright").ok()?;
    let header = paragraphs.first()?;
    let format = header.get("Format")?;
    if !format.contains(DEP5_FORMAT) && !format.contains("dep5") {
        return None;
    }
    let mut builder = Builder::default();
    let parts: Vec<String> = paragraphs
        .iter()
        .filter(|p| p.get("Files").is_some())
        .filter_map(|p| p.get("License"))
        .map(|value| {
            let short = value.lines().next().unwrap_or_default();
            builder.expression(short)
        })
        .collect();
    builder.finish(parts)
}

/// The license a Python distribution's `METADATA` declares: its
/// `License-Expression` (PEP 639), else a `License` field that names one
/// license, else its `License :: OSI Approved ::` classifiers (any of
/// them: `OR`), else the `License` field as a name.
pub fn from_metadata(text: &str) -> Option<License> {
    // The headers end at the first blank line; the description follows.
    let headers = text.split("\n\n").next().unwrap_or_default();
    let mut expression = None;
    let mut license = None;
    let mut classifiers = Vec::new();
    for line in headers.lines() {
        let Some((name, value)) = line.split_once(':') else { continue };
        let value = value.trim();
        match name.to_ascii_lowercase().as_str() {
            "license-expression" => expression = Some(value.to_owned()),
            "license" if !value.is_empty() && license.is_none() => license = Some(value.to_owned()),
            "classifier" => {
                if let Some(rest) = value.strip_prefix("License :: OSI Approved :: ") {
                    classifiers.push(rest.to_owned());
                }
            }
            _ => {}
        }
    }
    let mut builder = Builder::default();
    if let Some(expression) = expression {
        let text = builder.expression(&expression);
        return builder.finish(vec![text]);
    }
    if let Some(id) = license.as_deref().and_then(known) {
        return builder.finish(vec![id.to_owned()]);
    }
    if !classifiers.is_empty() {
        let ids: Vec<String> = classifiers
            .iter()
            .map(|c| match CLASSIFIERS.iter().find(|(k, _)| k == c) {
                Some((_, id)) => (*id).to_owned(),
                None => builder.id(c),
            })
            .collect();
        let mut unique: Vec<String> = Vec::new();
        for id in ids {
            if !unique.contains(&id) {
                unique.push(id);
            }
        }
        return builder.finish(vec![unique.join(" OR ")]);
    }
    // A one-line name (not a whole license text pasted into the field).
    let name = license.filter(|l| l.len() <= 80)?;
    let id = builder.id(&name);
    builder.finish(vec![id])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn show(license: Option<License>) -> String {
        match license {
            None => "none".to_owned(),
            Some(l) => {
                let refs: Vec<String> =
                    l.references.iter().map(|r| format!("{}={:?}", r.id, r.name)).collect();
                format!("{} {}", l.expression, refs.join(" ")).trim_end().to_owned()
            }
        }
    }

    #[test]
    fn dep5_files_paragraphs_are_joined() {
        let text = "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\
                    Upstream-Name: jq\n\nFiles: *\nCopyright: 2012 Stephen Dolan\nLicense: Expat\n\n\
                    Files: src/decNumber/*\nLicense: ICU\n\nFiles: debian/*\nLicense: GPL-2+ or Artistic\n\n\
                    Files: other/*\nLicense: Expat\n\nLicense: ICU\n Permission is hereby granted...\n";
        assert_eq!(show(from_copyright(text)), "MIT AND ICU AND (GPL-2.0-or-later OR Artistic-1.0-Perl)");
    }

    #[test]
    fn dep5_exceptions_and_unreadable_files() {
        let text = "Format: http://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\n\
                    Files: *\nLicense: GPL-2+ with OpenSSL exception\n";
        assert_eq!(
            show(from_copyright(text)),
            r#"LicenseRef-GPL-2-with-OpenSSL-exception LicenseRef-GPL-2-with-OpenSSL-exception="GPL-2+ with OpenSSL exception""#
        );
        assert_eq!(show(from_copyright("This is the Debian prepackaged version of foo.\n")), "none");
        assert_eq!(show(from_copyright("")), "none");
    }

    #[test]
    fn python_metadata() {
        let pep639 =
            "Metadata-Version: 2.4\nName: x\nLicense-Expression: mit OR Apache-2.0\n\nLicense: body\n";
        assert_eq!(show(from_metadata(pep639)), "MIT OR Apache-2.0");
        let field = "Metadata-Version: 2.1\nName: PyYAML\nLicense: MIT\nClassifier: License :: OSI Approved :: MIT License\n";
        assert_eq!(show(from_metadata(field)), "MIT");
        let classifiers = "Name: t\nLicense: Artistic License\n\
                           Classifier: License :: OSI Approved :: Artistic License\n\
                           Classifier: License :: OSI Approved :: GNU General Public License v2 or later (GPLv2+)\n";
        assert_eq!(
            show(from_metadata(classifiers)),
            r#"LicenseRef-Artistic-License OR GPL-2.0-or-later LicenseRef-Artistic-License="Artistic License""#
        );
        assert_eq!(show(from_metadata("Name: bare\n")), "none");
    }
}
