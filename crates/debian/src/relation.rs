//! Relationship fields: `Depends`, `Pre-Depends`, `Provides`, `Conflicts`,
//! `Breaks` and the like.
//!
//! A field is comma-separated clauses; a clause is `|`-separated
//! alternatives; an alternative is a package name with an optional
//! architecture qualifier (`:any`, `:native`, `:amd64`), an optional
//! `(op version)`, an optional `[arch ...]` restriction list and any number
//! of `<profile ...>` restriction formulas. Restrictions appear in source
//! packages; binary indexes rarely carry them, but [`Dependency::for_host`]
//! evaluates them (with no build profile active) rather than choke on them.

use std::fmt;

use crate::error::{Error, Result};
use crate::version::{Op, Version};

/// One alternative of a clause: `name[:arch] [(op version)] [[archs]] [<profiles>]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relation {
    /// The package (or virtual package) name.
    pub name: String,
    /// The architecture qualifier after `:`, e.g. `any`.
    pub arch_qualifier: Option<String>,
    /// The version constraint.
    pub version: Option<(Op, Version)>,
    /// The `[...]` list: `(negated, architecture or wildcard)`.
    pub arches: Vec<(bool, String)>,
    /// The `<...>` formulas, any of which must hold; each is terms
    /// `(negated, profile)` that must all hold.
    pub profiles: Vec<Vec<(bool, String)>>,
}

/// One clause: alternatives of which one must hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dependency {
    /// The alternatives, in the order written (which is the order of preference).
    pub alternatives: Vec<Relation>,
}

impl Relation {
    /// Whether `version` satisfies the version constraint; `None` (an
    /// unversioned provide) satisfies only an unversioned relation.
    pub fn matches_version(&self, version: Option<&Version>) -> bool {
        match (&self.version, version) {
            (None, _) => true,
            (Some((op, reference)), Some(v)) => op.holds(v, reference),
            (Some(_), None) => false,
        }
    }

    /// Whether the architecture qualifier allows a package of `arch`
    /// (`Architecture: all` counts as the host's) on a host of `host`.
    pub fn matches_arch(&self, arch: &str, host: &str) -> bool {
        match self.arch_qualifier.as_deref() {
            None | Some("any") | Some("native") => true,
            Some(q) => q == arch || (arch == "all" && q == host),
        }
    }

    /// The relation without restrictions, as dpkg prints it: `name:arch (op version)`.
    fn fmt_plain(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        if let Some(q) = &self.arch_qualifier {
            write!(f, ":{q}")?;
        }
        if let Some((op, v)) = &self.version {
            write!(f, " ({op} {v})")?;
        }
        Ok(())
    }
}

impl fmt::Display for Relation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.fmt_plain(f)?;
        if !self.arches.is_empty() {
            let list: Vec<String> =
                self.arches.iter().map(|(neg, a)| format!("{}{a}", if *neg { "!" } else { "" })).collect();
            write!(f, " [{}]", list.join(" "))?;
        }
        for group in &self.profiles {
            let list: Vec<String> =
                group.iter().map(|(neg, p)| format!("{}{p}", if *neg { "!" } else { "" })).collect();
            write!(f, " <{}>", list.join(" "))?;
        }
        Ok(())
    }
}

impl fmt::Display for Dependency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, alt) in self.alternatives.iter().enumerate() {
            if i > 0 {
                f.write_str(" | ")?;
            }
            write!(f, "{alt}")?;
        }
        Ok(())
    }
}

impl Dependency {
    /// The clause with the alternatives whose `[arch]` and `<profile>`
    /// restrictions exclude `host` (with `profiles` active) removed; None
    /// when no alternative is left, which means the clause does not apply.
    pub fn for_host(&self, host: &str, profiles: &[&str]) -> Option<Dependency> {
        let alternatives: Vec<Relation> = self
            .alternatives
            .iter()
            .filter(|r| arch_list_allows(&r.arches, host) && profiles_allow(&r.profiles, profiles))
            .cloned()
            .collect();
        (!alternatives.is_empty()).then_some(Dependency { alternatives })
    }
}

/// The relationship fields of a package (from an index, a `.deb` or
/// dpkg's status) as written, parsed when resolution reaches them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Relationships {
    /// `Pre-Depends`.
    pub pre_depends: String,
    /// `Depends`.
    pub depends: String,
    /// `Recommends`.
    pub recommends: String,
    /// `Conflicts`.
    pub conflicts: String,
    /// `Breaks`.
    pub breaks: String,
}

impl Relationships {
    /// The fields of paragraph `p` (missing ones empty).
    pub fn from_paragraph(p: &crate::deb822::Paragraph<'_>) -> Relationships {
        let owned = |field: &str| p.get(field).unwrap_or("").to_owned();
        Relationships {
            pre_depends: owned("Pre-Depends"),
            depends: owned("Depends"),
            recommends: owned("Recommends"),
            conflicts: owned("Conflicts"),
            breaks: owned("Breaks"),
        }
    }

    /// The clauses of `field` (`Pre-Depends`, `Depends`, `Recommends`,
    /// `Conflicts` or `Breaks`) that apply
    /// on `host`; `package` and `version` name the package in errors.
    pub fn parse(
        &self,
        field: &'static str,
        host: &str,
        package: &str,
        version: &str,
    ) -> Result<Vec<Dependency>> {
        let text = match field {
            "Pre-Depends" => &self.pre_depends,
            "Depends" => &self.depends,
            "Recommends" => &self.recommends,
            "Conflicts" => &self.conflicts,
            _ => &self.breaks,
        };
        parse_for_host(text, host).map_err(|e| Error::PackageField {
            package: package.to_owned(),
            version: version.to_owned(),
            field,
            source: Box::new(e),
        })
    }
}

/// Parses a relationship field. An empty (or blank) field has no clauses.
pub fn parse(text: &str) -> Result<Vec<Dependency>> {
    let err = |message: String| Error::Relation { text: text.trim().to_owned(), message };
    let mut clauses = Vec::new();
    if text.trim().is_empty() {
        return Ok(clauses);
    }
    for clause in text.split(',') {
        let mut alternatives = Vec::new();
        for alt in clause.split('|') {
            alternatives.push(parse_relation(alt).map_err(err)?);
        }
        clauses.push(Dependency { alternatives });
    }
    Ok(clauses)
}

/// Parses a field and keeps what applies on `host` with no build profile
/// active (see [`Dependency::for_host`]).
pub fn parse_for_host(text: &str, host: &str) -> Result<Vec<Dependency>> {
    Ok(parse(text)?.iter().filter_map(|d| d.for_host(host, &[])).collect())
}

fn is_name_char(c: char) -> bool {
    !c.is_whitespace() && !"(),|[]<>:!".contains(c)
}

fn parse_relation(text: &str) -> std::result::Result<Relation, String> {
    let mut s = text.trim_start();
    let name_len = s.find(|c: char| !is_name_char(c)).unwrap_or(s.len());
    if name_len == 0 {
        return Err(match s.chars().next() {
            None => "missing package name (empty alternative)".to_owned(),
            Some(c) => format!("missing package name before `{c}`"),
        });
    }
    let name = s[..name_len].to_owned();
    s = &s[name_len..];
    let mut arch_qualifier = None;
    if let Some(rest) = s.strip_prefix(':') {
        let len = rest.find(|c: char| !is_name_char(c)).unwrap_or(rest.len());
        if len == 0 {
            return Err(format!("missing architecture after `{name}:`"));
        }
        arch_qualifier = Some(rest[..len].to_owned());
        s = &rest[len..];
    }
    s = s.trim_start();
    let mut version = None;
    if let Some(rest) = s.strip_prefix('(') {
        let close = rest.find(')').ok_or_else(|| format!("unclosed `(` after `{name}`"))?;
        let inner = rest[..close].trim();
        let op_len = inner.find(|c: char| !"<>=".contains(c)).unwrap_or(inner.len());
        let op = Op::parse(&inner[..op_len])
            .ok_or_else(|| format!("invalid or missing operator `{}` in `({inner})`", &inner[..op_len]))?;
        let v = Version::parse(inner[op_len..].trim()).map_err(|e| e.to_string())?;
        version = Some((op, v));
        s = rest[close + 1..].trim_start();
    }
    let mut arches = Vec::new();
    if let Some(rest) = s.strip_prefix('[') {
        let close = rest.find(']').ok_or_else(|| format!("unclosed `[` after `{name}`"))?;
        for word in rest[..close].split_whitespace() {
            match word.strip_prefix('!') {
                Some(a) if !a.is_empty() => arches.push((true, a.to_owned())),
                Some(_) => return Err(format!("empty negated architecture in `[{}]`", &rest[..close])),
                None => arches.push((false, word.to_owned())),
            }
        }
        if arches.is_empty() {
            return Err(format!("empty architecture list after `{name}`"));
        }
        if arches.iter().any(|(n, _)| *n) && arches.iter().any(|(n, _)| !*n) {
            return Err(format!("architecture list `[{}]` mixes negated and plain entries", &rest[..close]));
        }
        s = rest[close + 1..].trim_start();
    }
    let mut profiles = Vec::new();
    while let Some(rest) = s.strip_prefix('<') {
        let close = rest.find('>').ok_or_else(|| format!("unclosed `<` after `{name}`"))?;
        let group: Vec<(bool, String)> = rest[..close]
            .split_whitespace()
            .map(|w| match w.strip_prefix('!') {
                Some(p) => (true, p.to_owned()),
                None => (false, w.to_owned()),
            })
            .collect();
        if group.is_empty() || group.iter().any(|(_, p)| p.is_empty()) {
            return Err(format!("empty build profile in `<{}>`", &rest[..close]));
        }
        profiles.push(group);
        s = rest[close + 1..].trim_start();
    }
    if let Some(c) = s.chars().next() {
        return Err(format!("unexpected `{c}` after `{name}`"));
    }
    Ok(Relation { name, arch_qualifier, version, arches, profiles })
}

/// Whether a Debian architecture (or wildcard) `pattern` covers `host`.
fn arch_matches(pattern: &str, host: &str) -> bool {
    if pattern == host || pattern == "any" {
        return true;
    }
    // Plain names (`amd64`) are Linux; others are `os-cpu` (`kfreebsd-amd64`).
    let (os, cpu) = host.split_once('-').unwrap_or(("linux", host));
    match pattern.split_once('-') {
        Some((p_os, "any")) => p_os == os || p_os == format!("gnu-{os}") || p_os == "any",
        Some(("any", p_cpu)) => p_cpu == cpu,
        _ => false,
    }
}

fn arch_list_allows(list: &[(bool, String)], host: &str) -> bool {
    if list.is_empty() {
        return true;
    }
    if list[0].0 {
        !list.iter().any(|(_, a)| arch_matches(a, host))
    } else {
        list.iter().any(|(_, a)| arch_matches(a, host))
    }
}

fn profiles_allow(groups: &[Vec<(bool, String)>], active: &[&str]) -> bool {
    groups.is_empty()
        || groups.iter().any(|group| group.iter().all(|(neg, p)| active.contains(&p.as_str()) != *neg))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(text: &str) -> String {
        match parse(text) {
            Ok(clauses) => clauses
                .iter()
                .map(|c| c.alternatives.iter().map(|r| format!("{r:?}")).collect::<Vec<_>>().join(" | "))
                .collect::<Vec<_>>()
                .join(", "),
            Err(e) => format!("error: {e}"),
        }
    }

    #[test]
    fn round_trip_display() {
        let cases: &[(&str, &str)] = &[
            ("", ""),
            ("libc6", "libc6"),
            ("libc6 (>= 2.34)", "libc6 (>= 2.34)"),
            ("libc6(>=2.34)", "libc6 (>= 2.34)"),
            ("libc6 ( >= 2.34 )", "libc6 (>= 2.34)"),
            ("libc6 (< 2)", "libc6 (<= 2)"),
            ("libc6 (> 2)", "libc6 (>= 2)"),
            ("a | b (<< 3), c", "a | b (<< 3), c"),
            ("python3:any (>= 3.11~)", "python3:any (>= 3.11~)"),
            ("libfoo:native", "libfoo:native"),
            ("libfoo:amd64 (= 1:2.0-1)", "libfoo:amd64 (= 1:2.0-1)"),
            ("foo [amd64 i386]", "foo [amd64 i386]"),
            ("foo [!hurd-any !kfreebsd-any]", "foo [!hurd-any !kfreebsd-any]"),
            ("foo <!nocheck>", "foo <!nocheck>"),
            (
                "foo (>= 1) [linux-any] <!nocheck !cross> <stage1>",
                "foo (>= 1) [linux-any] <!nocheck !cross> <stage1>",
            ),
            ("a,\n b,\n c | d\n", "a, b, c | d"),
            ("libgcc-s1 (>= 3.0), libc6 (>= 2.34)", "libgcc-s1 (>= 3.0), libc6 (>= 2.34)"),
        ];
        for (input, expected) in cases {
            let clauses = parse(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
            let shown: Vec<String> = clauses.iter().map(|c| c.to_string()).collect();
            assert_eq!(shown.join(", "), *expected, "input {input:?}");
        }
    }

    #[test]
    fn errors() {
        let cases: &[(&str, &str)] = &[
            ("a,", "error: invalid relation `a,`: missing package name (empty alternative)"),
            ("a | | b", "error: invalid relation `a | | b`: missing package name (empty alternative)"),
            ("(>= 1)", "error: invalid relation `(>= 1)`: missing package name before `(`"),
            ("a (>= 1", "error: invalid relation `a (>= 1`: unclosed `(` after `a`"),
            ("a (1.0)", "error: invalid relation `a (1.0)`: invalid or missing operator `` in `(1.0)`"),
            ("a (=> 1.0)", "error: invalid relation `a (=> 1.0)`: invalid or missing operator `=>` in `(=> 1.0)`"),
            ("a (>= )", "error: invalid relation `a (>= )`: invalid version ``: version string is empty"),
            ("a (>= x)", "error: invalid relation `a (>= x)`: invalid version `x`: version number does not start with digit"),
            ("a b", "error: invalid relation `a b`: unexpected `b` after `a`"),
            ("a:", "error: invalid relation `a:`: missing architecture after `a:`"),
            ("a [amd64 !i386]", "error: invalid relation `a [amd64 !i386]`: architecture list `[amd64 !i386]` mixes negated and plain entries"),
            ("a []", "error: invalid relation `a []`: empty architecture list after `a`"),
            ("a <>", "error: invalid relation `a <>`: empty build profile in `<>`"),
            ("a <x", "error: invalid relation `a <x`: unclosed `<` after `a`"),
        ];
        for (input, expected) in cases {
            assert_eq!(render(input), *expected, "input {input:?}");
        }
    }

    #[test]
    fn host_filtering() {
        let cases: &[(&str, &str)] = &[
            ("a [amd64] | b", "a | b"),
            ("a [i386] | b", "b"),
            ("a [!amd64] | b", "b"),
            ("a [!i386] | b", "a | b"),
            ("a [linux-any]", "a"),
            ("a [any-amd64]", "a"),
            ("a [any-i386]", ""),
            ("a [hurd-any]", ""),
            ("a [!hurd-any]", "a"),
            ("a <!nocheck>", "a"),
            ("a <nocheck>", ""),
            ("a <stage1> <!nocheck>", "a"),
            ("a <!stage1 nocheck>", ""),
            ("x, a [i386], y", "x, y"),
        ];
        for (input, expected) in cases {
            let shown: Vec<String> =
                parse_for_host(input, "amd64").unwrap().iter().map(|c| c.to_string()).collect();
            let plain: Vec<String> = shown
                .iter()
                .map(|s| {
                    s.split(" | ").map(|a| a.split(' ').next().unwrap_or("")).collect::<Vec<_>>().join(" | ")
                })
                .collect();
            assert_eq!(plain.join(", "), *expected, "input {input:?}");
        }
        let with_profile = parse("a <nocheck>").unwrap()[0].for_host("amd64", &["nocheck"]);
        assert!(with_profile.is_some());
    }

    #[test]
    fn matching() {
        let r = &parse("foo (>= 2)").unwrap()[0].alternatives[0];
        let v = |s: &str| Version::parse(s).unwrap();
        assert!(r.matches_version(Some(&v("2.0"))));
        assert!(!r.matches_version(Some(&v("1.9"))));
        assert!(!r.matches_version(None));
        let q = &parse("foo:amd64").unwrap()[0].alternatives[0];
        assert!(q.matches_arch("amd64", "amd64"));
        assert!(q.matches_arch("all", "amd64"));
        assert!(!q.matches_arch("i386", "amd64"));
        let any = &parse("foo:any").unwrap()[0].alternatives[0];
        assert!(any.matches_arch("i386", "amd64"));
    }
}
