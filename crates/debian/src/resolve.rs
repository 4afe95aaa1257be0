//! Dependency resolution over one architecture's `Packages` index, without
//! a backtracking solver, the way a minimal image wants it.
//!
//! The closure follows `Pre-Depends` and `Depends`. For a clause, an
//! alternative already satisfied by a chosen, installed or excluded package
//! wins; otherwise the first alternative that some package satisfies is
//! taken, the highest version of a real package first, then providers of a
//! virtual package (by `Priority`, name, version). Excluded packages count
//! as satisfied whatever the version asked: the user says the image does
//! without them. `Conflicts` and `Breaks` are checked among the chosen set
//! afterwards and reported, not solved.
//!
//! On a system that has packages already ([`Request::installed`], from
//! dpkg's status), resolution is what `apt-get install` does: an installed
//! package satisfies a dependency when its version (or a `Provides`) does,
//! and is then left alone; one that does not is upgraded (a newer version
//! from the index is chosen). A requested package that is installed is
//! upgraded only when the index has a newer version matching the request,
//! as apt does. An installed package that an upgrade or a new package
//! would break (its `Depends` no longer hold, or a `Breaks`/`Conflicts`
//! hits it) is upgraded too, or the resolution fails naming it. With
//! [`Request::recommends`] (apt's default), the `Recommends` of every
//! newly chosen package are followed after its dependencies, each tried on
//! its own: one that cannot be installed (missing, unsatisfiable,
//! conflicting) is left out, as apt leaves it out. Nothing is chosen
//! because of its `Priority` or `Essential` flag alone: apt pulls only
//! what is asked for and depended on.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use forge_digest::is_sha256_hex;

use crate::deb822::{self, Paragraph};
use crate::error::{Error, Result};
use crate::relation::{self, Dependency, Relation, Relationships};
use crate::status::{parse_provides, InstalledPackage};
use crate::version::Version;

/// A binary package of an index: what resolution and the lock file need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Package {
    /// `Package`.
    pub name: String,
    /// `Version`.
    pub version: Version,
    /// `Architecture` (the index's, or `all`).
    pub architecture: String,
    /// `Filename`: the path of the .deb in the mirror's pool.
    pub filename: String,
    /// `Size` of the .deb in bytes.
    pub size: u64,
    /// `SHA256` of the .deb, lowercase hex.
    pub sha256: String,
    /// `Source`, as written (may carry a version: `glibc (2.36-9)`).
    pub source: Option<String>,
    /// `Priority`.
    pub priority: Option<String>,
    /// `Multi-Arch`.
    pub multi_arch: Option<String>,
    /// `Essential: yes`.
    pub essential: bool,
    /// `Provides`: virtual package names and their optional version.
    pub provides: Vec<(String, Option<Version>)>,
    /// The relationship fields as written, parsed when resolution reaches them.
    pub relationships: Relationships,
}

impl Package {
    /// Reads a paragraph of a `Packages` index. `file` names the index in errors.
    pub fn from_paragraph(p: &Paragraph<'_>, file: &str) -> Result<Package> {
        let required = |field: &'static str| {
            p.get(field).ok_or_else(|| Error::MissingField { file: file.to_owned(), line: p.line(), field })
        };
        let invalid = |field: &str, value: &str| Error::InvalidField {
            file: file.to_owned(),
            line: p.line(),
            field: field.to_owned(),
            value: value.to_owned(),
        };
        let name = required("Package")?.to_owned();
        let version_text = required("Version")?;
        let version = Version::parse(version_text).map_err(|_| invalid("Version", version_text))?;
        let size_text = required("Size")?;
        let size = size_text.parse().map_err(|_| invalid("Size", size_text))?;
        let sha256 = required("SHA256")?;
        if !is_sha256_hex(sha256) {
            return Err(invalid("SHA256", sha256));
        }
        let provides = parse_provides(p.get("Provides").unwrap_or(""), &name, version_text)?;
        Ok(Package {
            architecture: required("Architecture")?.to_owned(),
            filename: required("Filename")?.to_owned(),
            size,
            sha256: sha256.to_owned(),
            source: p.get("Source").map(str::to_owned),
            priority: p.get("Priority").map(str::to_owned),
            multi_arch: p.get("Multi-Arch").map(str::to_owned),
            essential: p.get("Essential").is_some_and(|e| e.eq_ignore_ascii_case("yes")),
            provides,
            relationships: Relationships::from_paragraph(p),
            name,
            version,
        })
    }

    /// The source package name (the `Source` field without its version, or
    /// the package's own name).
    pub fn source_name(&self) -> &str {
        self.source.as_deref().and_then(|s| s.split_whitespace().next()).unwrap_or(&self.name)
    }

    fn relations(&self, field: &'static str, host: &str) -> Result<Vec<Dependency>> {
        self.relationships.parse(field, host, &self.name, &self.version.to_string())
    }
}

/// The packages of one architecture (plus `Architecture: all`), by name and
/// by what they provide.
#[derive(Debug, Clone)]
pub struct Index {
    architecture: String,
    packages: Vec<Package>,
    by_name: HashMap<String, Vec<usize>>,
    providers: HashMap<String, Vec<usize>>,
}

impl Index {
    /// Reads a `Packages` index, keeping the packages of `architecture` and
    /// `all`. `file` names the index in errors.
    pub fn parse(text: &str, file: &str, architecture: &str) -> Result<Index> {
        let paragraphs = deb822::parse(text, file)?;
        let mut packages = Vec::with_capacity(paragraphs.len());
        for p in &paragraphs {
            match p.get("Architecture") {
                Some(a) if a == architecture || a == "all" => {
                    packages.push(Package::from_paragraph(p, file)?)
                }
                Some(_) => {}
                None => {
                    return Err(Error::MissingField {
                        file: file.to_owned(),
                        line: p.line(),
                        field: "Architecture",
                    })
                }
            }
        }
        Ok(Index::from_packages(packages, architecture))
    }

    /// An index over `packages` for a host of `architecture`.
    pub fn from_packages(packages: Vec<Package>, architecture: &str) -> Index {
        let mut by_name: HashMap<String, Vec<usize>> = HashMap::new();
        let mut providers: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, p) in packages.iter().enumerate() {
            by_name.entry(p.name.clone()).or_default().push(i);
            for (virt, _) in &p.provides {
                let list = providers.entry(virt.clone()).or_default();
                if list.last() != Some(&i) {
                    list.push(i);
                }
            }
        }
        for list in by_name.values_mut() {
            // Highest version first; equal versions keep index order.
            list.sort_by(|&a, &b| packages[b].version.cmp(&packages[a].version));
        }
        Index { architecture: architecture.to_owned(), packages, by_name, providers }
    }

    /// The host architecture.
    pub fn architecture(&self) -> &str {
        &self.architecture
    }

    /// Every package.
    pub fn packages(&self) -> &[Package] {
        &self.packages
    }

    /// The packages called `name`, highest version first.
    pub fn get(&self, name: &str) -> impl Iterator<Item = &Package> {
        self.by_name.get(name).into_iter().flatten().map(|&i| &self.packages[i])
    }

    fn versions(&self, name: &str) -> &[usize] {
        self.by_name.get(name).map_or(&[], Vec::as_slice)
    }

    fn providers(&self, name: &str) -> &[usize] {
        self.providers.get(name).map_or(&[], Vec::as_slice)
    }
}

fn priority_rank(p: &Package) -> u8 {
    match p.priority.as_deref() {
        Some("required") => 0,
        Some("important") => 1,
        Some("standard") => 2,
        Some("optional") => 3,
        Some("extra") => 4,
        _ => 5,
    }
}

/// The provided version of `virt` by `p`, if it provides it: `Some(None)`
/// for an unversioned provide.
fn provided_version<'a>(p: &'a Package, virt: &str) -> Vec<Option<&'a Version>> {
    p.provides.iter().filter(|(n, _)| n == virt).map(|(_, v)| v.as_ref()).collect()
}

/// What to resolve: the requested relations, and what the system has.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// Relations wanted: `python3`, `python3 (>= 3.11)`, `jq (= 1.6-2.1)`.
    pub wanted: &'a [String],
    /// Package (or virtual package) names that count as satisfied and are
    /// never chosen.
    pub excluded: &'a [String],
    /// The packages the system has installed (dpkg's status).
    pub installed: &'a [InstalledPackage],
    /// Follow `Recommends` of newly chosen packages (apt's default).
    pub recommends: bool,
}

/// The state of a resolution that a tentative step (a `Recommends`) may
/// have to undo.
#[derive(Clone)]
struct Chosen<'a> {
    chosen: BTreeMap<&'a str, usize>,
    parent: HashMap<&'a str, &'a str>,
    order: Vec<usize>,
}

struct Resolver<'a> {
    index: &'a Index,
    excluded: HashSet<&'a str>,
    chosen: BTreeMap<&'a str, usize>,
    parent: HashMap<&'a str, &'a str>,
    /// Chosen packages in the order they were chosen.
    order: Vec<usize>,
    installed: &'a [InstalledPackage],
    installed_by_name: HashMap<&'a str, Vec<usize>>,
    installed_providers: HashMap<&'a str, Vec<usize>>,
}

impl<'a> Resolver<'a> {
    fn new(index: &'a Index, excluded: &'a [String], installed: &'a [InstalledPackage]) -> Resolver<'a> {
        let mut installed_by_name: HashMap<&str, Vec<usize>> = HashMap::new();
        let mut installed_providers: HashMap<&str, Vec<usize>> = HashMap::new();
        for (i, p) in installed.iter().enumerate() {
            installed_by_name.entry(p.name.as_str()).or_default().push(i);
            for (virt, _) in &p.provides {
                installed_providers.entry(virt.as_str()).or_default().push(i);
            }
        }
        Resolver {
            index,
            excluded: excluded.iter().map(String::as_str).collect(),
            chosen: BTreeMap::new(),
            parent: HashMap::new(),
            order: Vec::new(),
            installed,
            installed_by_name,
            installed_providers,
        }
    }

    fn host(&self) -> &'a str {
        &self.index.architecture
    }

    fn snapshot(&self) -> Chosen<'a> {
        Chosen { chosen: self.chosen.clone(), parent: self.parent.clone(), order: self.order.clone() }
    }

    fn restore(&mut self, c: Chosen<'a>) {
        self.chosen = c.chosen;
        self.parent = c.parent;
        self.order = c.order;
    }

    /// Whether the installed package `p` satisfies `rel`: architecture as
    /// dpkg sees it (a foreign package only through `Multi-Arch`), then
    /// name and version, or a provide.
    fn installed_satisfies(&self, p: &InstalledPackage, rel: &Relation) -> bool {
        let host = self.host();
        let native = p.architecture == host || p.architecture == "all";
        let arch_ok = match rel.arch_qualifier.as_deref() {
            None | Some("native") => native || p.multi_arch.as_deref() == Some("foreign"),
            Some("any") => native || matches!(p.multi_arch.as_deref(), Some("allowed" | "foreign")),
            Some(q) => q == p.architecture || (p.architecture == "all" && q == host),
        };
        arch_ok
            && ((p.name == rel.name && rel.matches_version(Some(&p.version)))
                || p.provides.iter().any(|(n, v)| *n == rel.name && rel.matches_version(v.as_ref())))
    }

    /// Whether a chosen package takes the place of the installed `p` (an upgrade).
    fn replaced(&self, p: &InstalledPackage) -> bool {
        self.chosen.get(p.name.as_str()).is_some_and(|&i| {
            let arch = &self.index.packages[i].architecture;
            *arch == p.architecture || arch == "all" || p.architecture == "all"
        })
    }

    /// The installed packages that may satisfy `name` (by name or provide).
    fn installed_for(&self, name: &str) -> impl Iterator<Item = &'a InstalledPackage> + '_ {
        let by_name = self.installed_by_name.get(name).into_iter().flatten();
        let provs = self.installed_providers.get(name).into_iter().flatten();
        by_name.chain(provs).map(|&i| &self.installed[i])
    }

    /// Whether an installed package that stays satisfies `rel`.
    fn installed_keeps(&self, rel: &Relation) -> bool {
        self.installed_for(&rel.name).any(|p| !self.replaced(p) && self.installed_satisfies(p, rel))
    }

    /// Whether the chosen package `i` satisfies `rel`, by name or by a provide.
    fn package_satisfies(&self, i: usize, rel: &Relation) -> bool {
        let p = &self.index.packages[i];
        if !rel.matches_arch(&p.architecture, self.host()) {
            return false;
        }
        if p.name == rel.name && rel.matches_version(Some(&p.version)) {
            return true;
        }
        provided_version(p, &rel.name).into_iter().any(|v| rel.matches_version(v))
    }

    fn satisfied_already(&self, rel: &Relation) -> bool {
        if self.excluded.contains(rel.name.as_str()) || self.installed_keeps(rel) {
            return true;
        }
        if let Some(&i) = self.chosen.get(rel.name.as_str()) {
            if self.package_satisfies(i, rel) {
                return true;
            }
        }
        self.index.providers(&rel.name).iter().any(|&i| {
            self.chosen.get(self.index.packages[i].name.as_str()) == Some(&i)
                && self.package_satisfies(i, rel)
        })
    }

    /// The packages that could satisfy `rel`, best first, and whether one
    /// of them is excluded (which satisfies it).
    fn candidates(&self, rel: &Relation) -> Vec<usize> {
        let idx = self.index;
        let mut out: Vec<usize> =
            idx.versions(&rel.name).iter().copied().filter(|&i| self.package_satisfies(i, rel)).collect();
        let mut provs: Vec<usize> = idx
            .providers(&rel.name)
            .iter()
            .copied()
            .filter(|&i| idx.packages[i].name != rel.name && self.package_satisfies(i, rel))
            .collect();
        provs.sort_by(|&a, &b| {
            let (pa, pb) = (&idx.packages[a], &idx.packages[b]);
            priority_rank(pa)
                .cmp(&priority_rank(pb))
                .then_with(|| pa.name.cmp(&pb.name))
                .then_with(|| pb.version.cmp(&pa.version))
        });
        out.extend(provs);
        // A package whose name is already chosen at another version cannot be taken.
        out.retain(|&i| {
            let name = idx.packages[i].name.as_str();
            self.chosen.get(name).is_none_or(|&c| c == i)
        });
        out
    }

    /// Why nothing satisfies `rel`.
    fn reason(&self, rel: &Relation) -> String {
        let idx = self.index;
        if let Some(&c) = self.chosen.get(rel.name.as_str()) {
            let p = &idx.packages[c];
            return format!("{} {} is already chosen", p.name, p.version);
        }
        let versions: Vec<String> = idx
            .versions(&rel.name)
            .iter()
            .filter(|&&i| rel.matches_arch(&idx.packages[i].architecture, self.host()))
            .map(|&i| idx.packages[i].version.to_string())
            .collect();
        let provs: Vec<String> = idx
            .providers(&rel.name)
            .iter()
            .map(|&i| {
                let p = &idx.packages[i];
                let v = provided_version(p, &rel.name);
                match v.first().copied().flatten() {
                    Some(v) => format!("{} {} (as {} {v})", p.name, p.version, rel.name),
                    None => format!("{} {} (unversioned)", p.name, p.version),
                }
            })
            .collect();
        match (versions.len(), provs.is_empty()) {
            (0, true) if idx.versions(&rel.name).is_empty() => {
                format!("no package {} is available", rel.name)
            }
            (0, true) => {
                format!("{} is not available for {}", rel.name, rel.arch_qualifier.as_deref().unwrap_or(""))
            }
            (0, false) => format!("it is only provided by {}", provs.join(", ")),
            (1, true) => format!("only {} is available", versions[0]),
            (_, true) => format!("only {} are available", versions.join(", ")),
            (_, false) => format!(
                "only {} are available, and it is provided by {}",
                versions.join(", "),
                provs.join(", ")
            ),
        }
    }

    fn chain(&self, from: &'a str) -> Vec<String> {
        let mut chain = vec![from.to_owned()];
        let mut at = from;
        while let Some(&p) = self.parent.get(at) {
            chain.push(p.to_owned());
            at = p;
            if chain.len() > self.chosen.len() + 1 {
                break; // cannot happen: parents form a tree
            }
        }
        chain.reverse();
        chain
    }

    /// Satisfies one clause; returns the newly chosen package, if any.
    fn satisfy(&mut self, clause: &Dependency) -> std::result::Result<Option<usize>, String> {
        if clause.alternatives.iter().any(|r| self.satisfied_already(r)) {
            return Ok(None);
        }
        for rel in &clause.alternatives {
            if let Some(&i) = self.candidates(rel).first() {
                let name = self.index.packages[i].name.as_str();
                if self.excluded.contains(name) {
                    return Ok(None);
                }
                return Ok(Some(i));
            }
        }
        let reasons: Vec<String> = clause
            .alternatives
            .iter()
            .map(|r| {
                if clause.alternatives.len() == 1 {
                    self.reason(r)
                } else {
                    format!("{}: {}", r.name, self.reason(r))
                }
            })
            .collect();
        Err(reasons.join("; "))
    }

    fn choose(&mut self, i: usize, parent: Option<&'a str>, queue: &mut VecDeque<usize>) {
        let name = self.index.packages[i].name.as_str();
        self.chosen.insert(name, i);
        if let Some(parent) = parent {
            self.parent.insert(name, parent);
        }
        self.order.push(i);
        queue.push_back(i);
    }

    /// A request that an installed package satisfies is left alone, as
    /// apt leaves it, unless the index has a newer version that matches
    /// the request too: then that version (an upgrade).
    fn upgrade_for_request(&self, clause: &Dependency) -> Option<usize> {
        let [rel] = &clause.alternatives[..] else { return None };
        let installed = self
            .installed_by_name
            .get(rel.name.as_str())
            .into_iter()
            .flatten()
            .map(|&i| &self.installed[i])
            .find(|p| !self.replaced(p) && self.installed_satisfies(p, rel))?;
        let best =
            self.index.versions(&rel.name).iter().copied().find(|&i| self.package_satisfies(i, rel))?;
        let newer = self.index.packages[best].version > installed.version;
        (newer && !self.chosen.contains_key(rel.name.as_str())).then_some(best)
    }

    /// Follows `Pre-Depends` and `Depends` of everything queued.
    fn close(&mut self, queue: &mut VecDeque<usize>) -> Result<()> {
        let index = self.index;
        while let Some(i) = queue.pop_front() {
            let p = &index.packages[i];
            let host = index.architecture();
            for field in ["Pre-Depends", "Depends"] {
                for clause in p.relations(field, host)? {
                    match self.satisfy(&clause) {
                        Ok(Some(c)) => self.choose(c, Some(p.name.as_str()), queue),
                        Ok(None) => {}
                        Err(reason) => {
                            let mut chain = self.chain(&p.name);
                            let names: Vec<&str> =
                                clause.alternatives.iter().map(|a| a.name.as_str()).collect();
                            chain.push(names.join(" | "));
                            return Err(Error::Unsatisfiable { relation: clause.to_string(), chain, reason });
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Follows the `Recommends` of the packages chosen from `order[*done..]`
    /// on, each one tried on its own and undone when it cannot be
    /// installed; advances `done`.
    fn recommends(&mut self, done: &mut usize) -> Result<()> {
        let index = self.index;
        while *done < self.order.len() {
            let p = &index.packages[self.order[*done]];
            *done += 1;
            for clause in p.relations("Recommends", index.architecture())? {
                if clause.alternatives.iter().any(|r| self.satisfied_already(r)) {
                    continue;
                }
                let before = self.snapshot();
                let mut queue = VecDeque::new();
                if let Ok(Some(c)) = self.satisfy(&clause) {
                    self.choose(c, Some(p.name.as_str()), &mut queue);
                    let works = self.close(&mut queue).is_ok()
                        && check_conflicts(self).is_ok()
                        && self.broken_installed().is_ok_and(|fixes| fixes.is_empty());
                    if !works {
                        self.restore(before);
                    }
                }
            }
        }
        Ok(())
    }

    /// The installed packages that what is chosen would break, each with
    /// the newer version that replaces it; an error for one that no
    /// version in the index can replace.
    fn broken_installed(&self) -> Result<Vec<usize>> {
        let index = self.index;
        let host = index.architecture();
        let mut fixes = Vec::new();
        for p in self.installed {
            if self.replaced(p) {
                continue;
            }
            let mut why = None;
            for field in ["Pre-Depends", "Depends"] {
                for clause in p.relations(field, host)? {
                    let now = clause.alternatives.iter().any(|r| self.satisfied_already(r));
                    // Only what held before: an image that was broken already stays so.
                    let before = clause
                        .alternatives
                        .iter()
                        .any(|r| self.installed_for(&r.name).any(|q| self.installed_satisfies(q, r)));
                    if !now && before && why.is_none() {
                        why = Some(format!("its {field} {clause} would no longer hold"));
                    }
                }
            }
            for &c in self.chosen.values() {
                let q = &index.packages[c];
                for field in ["Conflicts", "Breaks"] {
                    for clause in q.relations(field, host)? {
                        for rel in &clause.alternatives {
                            if why.is_none() && rel.name != q.name && self.installed_satisfies(p, rel) {
                                why =
                                    Some(format!("{} {} {} {rel}", q.name, q.version, field.to_lowercase()));
                            }
                        }
                    }
                    for clause in p.relations(field, host)? {
                        for rel in &clause.alternatives {
                            if why.is_none() && rel.name != p.name && self.package_satisfies(c, rel) {
                                why = Some(format!("it {} {rel}", field.to_lowercase()));
                            }
                        }
                    }
                }
            }
            let Some(why) = why else { continue };
            let newer = index.versions(&p.name).iter().copied().find(|&i| {
                let q = &index.packages[i];
                q.version > p.version && (q.architecture == p.architecture || q.architecture == "all")
            });
            match newer {
                Some(i) => fixes.push(i),
                None => {
                    return Err(Error::BreaksInstalled {
                        package: p.name.clone(),
                        version: p.version.to_string(),
                        reason: why,
                    })
                }
            }
        }
        Ok(fixes)
    }
}

/// Computes the closure of `wanted` over `Pre-Depends` and `Depends`,
/// sorted by name. Each wanted entry is a relation (`python3`, or
/// `python3 (>= 3.11)`); `excluded` are package (or virtual package) names
/// that count as satisfied and are never chosen. Nothing is installed and
/// `Recommends` are not followed: a base image's resolution.
pub fn resolve<S: AsRef<str>, T: AsRef<str>>(
    index: &Index,
    wanted: &[S],
    excluded: &[T],
) -> Result<Vec<Package>> {
    let wanted: Vec<String> = wanted.iter().map(|w| w.as_ref().to_owned()).collect();
    let excluded: Vec<String> = excluded.iter().map(|x| x.as_ref().to_owned()).collect();
    resolve_request(
        index,
        &Request { wanted: &wanted, excluded: &excluded, installed: &[], recommends: false },
    )
}

/// Resolves `request` against `index` (see the [module docs](self)): the
/// packages to unpack, new ones and upgrades of installed ones, sorted by
/// name. Installed packages that stay are not in the result.
pub fn resolve_request(index: &Index, request: &Request<'_>) -> Result<Vec<Package>> {
    let mut r = Resolver::new(index, request.excluded, request.installed);
    let mut queue = VecDeque::new();
    for text in request.wanted {
        let clauses = relation::parse_for_host(text, index.architecture())?;
        for clause in &clauses {
            if let Some(rel) = clause.alternatives.iter().find(|rel| r.excluded.contains(rel.name.as_str())) {
                return Err(Error::RequestedAndExcluded { name: rel.name.clone() });
            }
            if let Some(i) = r.upgrade_for_request(clause) {
                r.choose(i, None, &mut queue);
                continue;
            }
            match r.satisfy(clause) {
                Ok(Some(i)) => r.choose(i, None, &mut queue),
                Ok(None) => {}
                Err(reason) => return Err(Error::NotAvailable { relation: clause.to_string(), reason }),
            }
        }
    }
    let mut recommended = 0;
    loop {
        r.close(&mut queue)?;
        if request.recommends {
            r.recommends(&mut recommended)?;
        }
        let fixes = r.broken_installed()?;
        if fixes.is_empty() {
            break;
        }
        for i in fixes {
            r.choose(i, None, &mut queue);
        }
    }
    check_conflicts(&r)?;
    Ok(r.chosen.values().map(|&i| index.packages[i].clone()).collect())
}

fn check_conflicts(r: &Resolver<'_>) -> Result<()> {
    let idx = r.index;
    for &i in r.chosen.values() {
        let p = &idx.packages[i];
        for field in ["Conflicts", "Breaks"] {
            for clause in p.relations(field, idx.architecture())? {
                for rel in &clause.alternatives {
                    let by_name = r.chosen.get(rel.name.as_str()).copied().into_iter();
                    let by_provide = idx
                        .providers(&rel.name)
                        .iter()
                        .copied()
                        .filter(|&j| r.chosen.get(idx.packages[j].name.as_str()) == Some(&j));
                    for j in by_name.chain(by_provide) {
                        // A package may conflict with what it provides itself (the
                        // usual pattern for exclusive virtual packages).
                        if j == i || !r.package_satisfies(j, rel) {
                            continue;
                        }
                        let other = &idx.packages[j];
                        return Err(Error::Conflict {
                            package: p.name.clone(),
                            field: if field == "Conflicts" { "conflicts with" } else { "breaks" },
                            relation: rel.to_string(),
                            other: other.name.clone(),
                            other_version: other.version.to_string(),
                        });
                    }
                }
            }
        }
    }
    Ok(())
}
