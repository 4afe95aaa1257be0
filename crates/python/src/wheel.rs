//! Installing a wheel into a layer [`Tree`] as `pip install` would, per
//! the wheel spec (binary distribution format, recording installed
//! projects), without running anything: and removing an installed
//! distribution's files (whiteouts) for an upgrade.
//!
//! What [`install_wheel`] does, in pip's words and order:
//! - checks `WHEEL` (`Wheel-Version` 1.x; its `Tag`s, one of which the
//!   target must accept; `Root-Is-Purelib` picks purelib or platlib for
//!   the wheel's root) and verifies every file against the
//!   wheel's `RECORD` (hash and size) while streaming it into the
//!   [`Spool`]; a file missing from `RECORD`, a `RECORD` row without its
//!   file, a wrong hash or size, an unsafe path (`..`, absolute, `\`) or a
//!   duplicate name refuses the whole wheel;
//! - installs the root into the lib directory, `<name>.data/<key>/` into
//!   the scheme's `purelib`, `platlib`, `scripts`, `headers` (below
//!   `include/<name>`) and `data`; a script whose first line starts with
//!   `#!python` gets `#!<target interpreter>` instead (the rest of that
//!   line dropped, as pip does); scripts that are setuptools' wrappers of
//!   an entry point are left out, as pip leaves them out;
//! - writes the `console_scripts` and `gui_scripts` entry points with
//!   the script text of the image's pip version ([`ScriptTemplate`]) and
//!   distlib's shebang, mode 0755; `pip` and
//!   `easy_install` get pip's versioned names (`pip`, `pip3`, `pip3.N`);
//! - writes `INSTALLER` (`pip`), `REQUESTED` when asked, and `RECORD`
//!   with every path relative to the lib directory (`../../../bin/x`), the
//!   wheel's hashes for unchanged files, new ones for rewritten and
//!   generated files, sorted, `RECORD`'s own row empty, `\r\n` rows.
//!
//! Modes are 0644, or 0755 for a regular file whose zip entry has an
//! execute bit (pip's `umask 022` result); owners root. No `.pyc` is
//! written (as `pip install --no-compile`; the bytes of a `.pyc` depend on
//! the compiling interpreter and the source mtime). Entries are installed
//! in path order, so the tree does not depend on the order of the zip.
//!
//! Kept differences from pip (see also the comparison test):
//! - a wheel whose `RECORD` misses a file, lists a file the zip lacks, or
//!   has two entries installing to the same path is refused (pip installs
//!   it, writing an empty hash or letting the later entry win);
//! - the headers directory is named after the wheel's `Name` metadata;
//!   pip names it after the requirement as the user typed it.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use forge_oci::files::{self, ImageFiles};
use forge_oci::{FileSource, Node, NodeKind, Spool, Stack, Tree};

use crate::dist::parse_metadata;
use crate::index::normalize_name;
use crate::record::{self, Hash, Row};
use crate::target::{installed_dists, join, InstalledDist, Target};

/// The largest metadata file of a wheel read into memory (`RECORD`,
/// `METADATA`, `WHEEL`, `entry_points.txt`).
const METADATA_LIMIT: u64 = 64 << 20;
/// The longest first line of a `.data/scripts/` file looked at for `#!python`.
const SHEBANG_LIMIT: u64 = 64 << 10;

/// What the pip `INSTALLER` file says. We write `pip`, not our own name:
/// the layer should hold what `docker build` with pip gives, and tools in
/// the image (`pip uninstall`, `pip list`) treat other installers'
/// distributions the same way anyway.
pub const INSTALLER: &str = "pip\n";

/// Why a wheel could not be installed or a distribution uninstalled.
#[derive(Debug, thiserror::Error)]
pub enum WheelError {
    /// The wheel file could not be read.
    #[error("reading wheel {}", path.display())]
    Io {
        /// The wheel.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The file is not a zip we can read.
    #[error("wheel {} is not a readable zip archive", path.display())]
    Zip {
        /// The wheel.
        path: PathBuf,
        /// The cause.
        #[source]
        source: zip::result::ZipError,
    },
    /// The wheel breaks the wheel spec or lies about its content.
    #[error("wheel {}: {message}", path.display())]
    Invalid {
        /// The wheel.
        path: PathBuf,
        /// What is wrong, naming the file.
        message: String,
    },
    /// The wheel is not for the target's interpreter or platform.
    #[error("wheel {} is for {wheel_tags}, which this image's Python does not accept (its best tags: {target_tags})", path.display())]
    Incompatible {
        /// The wheel.
        path: PathBuf,
        /// The `Tag`s of its `WHEEL` file.
        wheel_tags: String,
        /// The target's first few tags.
        target_tags: String,
    },
    /// A spool file could not be written.
    #[error("spooling {name} of wheel {}", path.display())]
    Spool {
        /// The wheel.
        path: PathBuf,
        /// The member being spooled.
        name: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A file of the image could not be read (uninstalling).
    #[error("reading /{path} in the image")]
    Read {
        /// The image path.
        path: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// An installed distribution's files cannot be told.
    #[error("cannot uninstall {name} at /{location}: {reason}")]
    Uninstall {
        /// The distribution.
        name: String,
        /// Its metadata directory.
        location: String,
        /// Why.
        reason: String,
    },
}

/// What [`install_wheel`] installed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installed {
    /// The `Name` of the wheel's metadata.
    pub name: String,
    /// The `Version` of the wheel's metadata.
    pub version: String,
    /// The installed `.dist-info` directory (image path).
    pub dist_info: String,
    /// Every file put into the tree (image paths), sorted.
    pub files: Vec<String>,
    /// The rows of the `RECORD` written.
    pub record: Vec<Row>,
}

/// A member of the wheel, checked, and where it goes.
struct Member {
    /// The zip index.
    index: usize,
    /// The name in the zip (and in `RECORD`).
    name: String,
    /// The destination (image path).
    dest: String,
    /// Whether it is a `.data/scripts/` file (`#!python` rewritten).
    script: bool,
    /// The mode: 0755 when the zip entry is an executable regular file.
    mode: u32,
}

/// Installs `wheel` for `target` into `tree`, spooling its files into
/// `spool`; `requested` writes `REQUESTED` (the user asked for this
/// distribution, not a dependency). See the [module docs](self).
pub fn install_wheel(
    wheel: &Path,
    target: &Target,
    tree: &mut Tree,
    spool: &mut Spool,
    requested: bool,
) -> Result<Installed, WheelError> {
    let invalid = |message: String| WheelError::Invalid { path: wheel.to_owned(), message };
    let file = File::open(wheel).map_err(|source| WheelError::Io { path: wheel.to_owned(), source })?;
    let mut archive =
        zip::ZipArchive::new(file).map_err(|source| WheelError::Zip { path: wheel.to_owned(), source })?;
    if archive.has_duplicate_names() {
        return Err(invalid("the zip has two entries with the same name".to_owned()));
    }

    // Names, checked, and which are directories.
    let mut names: BTreeMap<String, (usize, u32)> = BTreeMap::new();
    for index in 0..archive.len() {
        let entry = archive
            .by_index_raw(index)
            .map_err(|source| WheelError::Zip { path: wheel.to_owned(), source })?;
        let name =
            entry.name().map_err(|source| WheelError::Zip { path: wheel.to_owned(), source })?.into_owned();
        check_member_name(&name).map_err(|why| invalid(format!("member `{name}`: {why}")))?;
        if entry.is_dir() || name.ends_with('/') {
            continue;
        }
        let unix = entry.external_attributes() >> 16;
        // pip's `zip_item_is_executable`: a regular file with an x bit.
        let executable = unix & 0o170000 == 0o100000 && unix & 0o111 != 0;
        names.insert(name, (index, if executable { 0o755 } else { 0o644 }));
    }

    let info_dir = dist_info_dir(&names).map_err(invalid)?;
    let mut read_member = |name: &str| -> Result<Option<String>, WheelError> {
        let Some(&(index, _)) = names.get(name) else { return Ok(None) };
        let entry =
            archive.by_index(index).map_err(|source| WheelError::Zip { path: wheel.to_owned(), source })?;
        let mut text = String::new();
        entry
            .take(METADATA_LIMIT + 1)
            .read_to_string(&mut text)
            .map_err(|source| WheelError::Io { path: wheel.to_owned(), source })?;
        if text.len() as u64 > METADATA_LIMIT {
            return Err(WheelError::Invalid {
                path: wheel.to_owned(),
                message: format!("{name} is larger than {METADATA_LIMIT} bytes"),
            });
        }
        Ok(Some(text))
    };
    let wheel_file = format!("{info_dir}/WHEEL");
    let wheel_text = read_member(&wheel_file)?.ok_or_else(|| invalid(format!("{wheel_file} is missing")))?;
    let (root_is_purelib, wheel_tags) =
        check_wheel_file(&wheel_text).map_err(|why| invalid(format!("{wheel_file}: {why}")))?;
    let supported = target.tags();
    if !wheel_tags.is_empty() && !wheel_tags.iter().any(|t| supported.contains(t)) {
        return Err(WheelError::Incompatible {
            path: wheel.to_owned(),
            wheel_tags: wheel_tags.join(", "),
            target_tags: supported.iter().take(3).cloned().collect::<Vec<_>>().join(", "),
        });
    }
    let metadata_file = format!("{info_dir}/METADATA");
    let metadata = parse_metadata(
        &read_member(&metadata_file)?.ok_or_else(|| invalid(format!("{metadata_file} is missing")))?,
    );
    let name = metadata.name.ok_or_else(|| invalid(format!("{metadata_file} has no Name")))?;
    let version = metadata.version.ok_or_else(|| invalid(format!("{metadata_file} has no Version")))?;
    let record_file = format!("{info_dir}/RECORD");
    let record_text =
        read_member(&record_file)?.ok_or_else(|| invalid(format!("{record_file} is missing")))?;
    let record_rows = record::parse(&record_text).map_err(|e| invalid(format!("{record_file} {e}")))?;
    let entry_points_file = format!("{info_dir}/entry_points.txt");
    let (console, gui) = match read_member(&entry_points_file)? {
        Some(text) => {
            parse_entry_points(&text).map_err(|why| invalid(format!("{entry_points_file}: {why}")))?
        }
        None => (Vec::new(), Vec::new()),
    };

    // Every member but the signatures and RECORD itself must be in RECORD
    // with its hash and size, and every row must name a member.
    let unhashed: BTreeSet<String> =
        ["RECORD", "RECORD.jws", "RECORD.p7s"].iter().map(|f| format!("{info_dir}/{f}")).collect();
    let mut expected: BTreeMap<String, (Hash, u64)> = BTreeMap::new();
    for row in &record_rows {
        if !names.contains_key(&row.path) {
            return Err(invalid(format!(
                "{record_file} lists `{}`, which the wheel does not have",
                row.path
            )));
        }
        if unhashed.contains(&row.path) && row.hash.is_empty() {
            continue;
        }
        let hash =
            Hash::parse(&row.hash).map_err(|why| invalid(format!("{record_file}, `{}`: {why}", row.path)))?;
        let size = row.size.parse::<u64>().map_err(|_| {
            invalid(format!("{record_file}, `{}`: size `{}` is not a number", row.path, row.size))
        })?;
        if expected.insert(row.path.clone(), (hash, size)).is_some() {
            return Err(invalid(format!("{record_file} lists `{}` twice", row.path)));
        }
    }
    if let Some(missing) = names.keys().find(|n| !unhashed.contains(*n) && !expected.contains_key(*n)) {
        return Err(invalid(format!("`{missing}` is not in {record_file} (its hash cannot be checked)")));
    }

    // Where each member goes.
    let lib_dir = target.lib_dir(root_is_purelib).to_owned();
    let wrappers: BTreeSet<&str> = console.iter().chain(&gui).map(|(n, _)| n.as_str()).collect();
    let mut members = Vec::new();
    for (member, &(index, mode)) in &names {
        let (top, rest) = member.split_once('/').unwrap_or((member, ""));
        if !top.ends_with(".data") || rest.is_empty() {
            members.push(Member {
                index,
                name: member.clone(),
                dest: join(&lib_dir, member),
                script: false,
                mode,
            });
            continue;
        }
        let Some((key, sub)) = rest.split_once('/') else {
            return Err(invalid(format!(
                "unexpected file `{member}`: .data directory contents should be named like `<scheme key>/<path>`"
            )));
        };
        let base = match key {
            "purelib" => target.scheme.purelib.clone(),
            "platlib" => target.scheme.platlib.clone(),
            "scripts" => target.scheme.scripts.clone(),
            "headers" => target.scheme.headers_for(&name),
            "data" => target.scheme.data.clone(),
            other => {
                return Err(invalid(format!(
                    "unknown scheme key `{other}` in `{member}` (valid: data, headers, platlib, purelib, scripts)"
                )))
            }
        };
        if key == "scripts" && is_entry_point_wrapper(sub, &wrappers) {
            continue;
        }
        members.push(Member {
            index,
            name: member.clone(),
            dest: join(&base, sub),
            script: key == "scripts",
            mode,
        });
    }
    let mut dests = BTreeSet::new();
    for member in &members {
        if !dests.insert(member.dest.clone()) {
            return Err(invalid(format!(
                "two files install to /{} (the later is `{}`)",
                member.dest, member.name
            )));
        }
    }

    // Stream, verify, spool.
    let mut installed: BTreeMap<String, String> = BTreeMap::new(); // member -> dest
    let mut changed: BTreeMap<String, (String, u64)> = BTreeMap::new(); // dest -> new hash
    let mut nodes: Vec<(String, Node)> = Vec::new();
    for member in &members {
        let entry = archive
            .by_index(member.index)
            .map_err(|source| WheelError::Zip { path: wheel.to_owned(), source })?;
        let expected_hash = expected.get(&member.name);
        // Never more than RECORD promises: a zip bomb stops at its size.
        let mut checking = CheckingReader {
            inner: entry,
            hasher: expected_hash.map(|(hash, _)| hash.algorithm.hasher()),
            size: 0,
            limit: expected_hash.map(|(_, size)| *size),
            exceeded: false,
        };
        let mut rewritten_hash = None;
        let spooled = if member.script {
            let mut reader = BufReader::new(&mut checking);
            let mut first = Vec::new();
            (&mut reader)
                .take(SHEBANG_LIMIT)
                .read_until(b'\n', &mut first)
                .map_err(|source| WheelError::Io { path: wheel.to_owned(), source })?;
            if first.starts_with(b"#!python") {
                // pip replaces the whole first line, arguments and all.
                if !first.ends_with(b"\n") {
                    reader
                        .skip_until(b'\n')
                        .map_err(|source| WheelError::Io { path: wheel.to_owned(), source })?;
                }
                first = format!("#!{}\n", target.executable).into_bytes();
                let mut rewritten = CheckingReader {
                    inner: io::Cursor::new(first).chain(&mut reader),
                    hasher: Some(record::Algorithm::Sha256.hasher()),
                    size: 0,
                    limit: None,
                    exceeded: false,
                };
                let result = spool.spool(&mut rewritten);
                rewritten_hash = rewritten
                    .hasher
                    .take()
                    .map(|h| record::hash_field(record::Algorithm::Sha256, &h.finish()));
                result
            } else {
                spool.spool(&mut io::Cursor::new(first).chain(&mut reader))
            }
        } else {
            spool.spool(&mut checking)
        };
        let (source, size) = spooled.map_err(|error| match error {
            forge_oci::TarError::Read(_) if checking.exceeded => invalid(format!(
                "`{}` is larger than the {} bytes {record_file} says",
                member.name,
                checking.limit.unwrap_or_default()
            )),
            forge_oci::TarError::Read(source) => WheelError::Io { path: wheel.to_owned(), source },
            forge_oci::TarError::Spool { source, .. } => {
                WheelError::Spool { path: wheel.to_owned(), name: member.name.clone(), source }
            }
            other => WheelError::Spool {
                path: wheel.to_owned(),
                name: member.name.clone(),
                source: io::Error::other(other.to_string()),
            },
        })?;
        if let Some((hash, expected_size)) = expected_hash {
            let found = checking.hasher.take().map(|h| h.finish()).unwrap_or_default();
            if found != hash.digest || checking.size != *expected_size {
                if let Some(path) = source.path() {
                    // The spool is the caller's temporary directory; a file
                    // that will not be used is removed at once all the same.
                    let _ = std::fs::remove_file(path);
                }
                return Err(invalid(format!(
                    "`{}` does not match {record_file}: {} bytes with hash {}, RECORD says {} bytes with {}",
                    member.name,
                    checking.size,
                    record::hash_field(hash.algorithm, &found),
                    expected_size,
                    hash.field(),
                )));
            }
        }
        if let Some(hash) = rewritten_hash {
            changed.insert(member.dest.clone(), (hash, size));
        }
        installed.insert(member.name.clone(), member.dest.clone());
        nodes.push((member.dest.clone(), file_node(member.mode, size, source)));
    }

    // Entry points, INSTALLER, REQUESTED.
    let mut generated: Vec<(String, Vec<u8>, u32)> = Vec::new();
    for (script, entry) in console_specs(&console, target) {
        generated.push((
            join(&target.scheme.scripts, &script),
            script_text(&entry, target).into_bytes(),
            0o755,
        ));
    }
    for (script, entry) in &gui {
        generated.push((
            join(&target.scheme.scripts, script),
            script_text(entry, target).into_bytes(),
            0o755,
        ));
    }
    let dest_info = join(&lib_dir, &info_dir);
    generated.push((format!("{dest_info}/INSTALLER"), INSTALLER.as_bytes().to_vec(), 0o644));
    if requested {
        generated.push((format!("{dest_info}/REQUESTED"), Vec::new(), 0o644));
    }

    // RECORD: the wheel's rows mapped to the installed paths, then the
    // generated files; sorted as pip sorts them.
    let mut rows = Vec::new();
    for row in &record_rows {
        let (path, hash, size) = match installed.get(&row.path) {
            Some(dest) => match changed.get(dest) {
                Some((hash, size)) => (relative(dest, &lib_dir), hash.clone(), size.to_string()),
                None => (relative(dest, &lib_dir), row.hash.clone(), row.size.clone()),
            },
            // A member not installed (an entry point wrapper) keeps its
            // row as the wheel has it, as pip keeps it.
            None => (row.path.clone(), row.hash.clone(), row.size.clone()),
        };
        rows.push(Row { path, hash, size });
    }
    for (dest, content, _) in &generated {
        rows.push(Row {
            path: relative(dest, &lib_dir),
            hash: record::hash_of(content),
            size: content.len().to_string(),
        });
    }
    rows.sort();
    let record_dest = format!("{dest_info}/RECORD");
    let record_bytes = record::write(&rows).into_bytes();

    for (dest, content, mode) in generated {
        nodes.push((dest, Node::bytes(mode, content)));
    }
    // The wheel's own RECORD is replaced by the rewritten one.
    nodes.retain(|(dest, _)| *dest != record_dest);
    nodes.push((record_dest, Node::bytes(0o644, record_bytes)));
    nodes.sort_by(|a, b| a.0.cmp(&b.0));
    let files: Vec<String> = nodes.iter().map(|(dest, _)| dest.clone()).collect();
    for (dest, node) in nodes {
        place(tree, &dest, node);
    }
    Ok(Installed { name, version, dist_info: dest_info, files, record: rows })
}

/// A regular-file node for spooled content.
fn file_node(mode: u32, size: u64, source: FileSource) -> Node {
    Node { kind: NodeKind::File { size, source }, mode, uid: 0, gid: 0 }
}

/// Puts `node` at `path`, undoing what an earlier [`uninstall`] in the same
/// tree hid there: a whiteout of the path itself goes (the new node hides
/// the lower one anyway), and a whiteout of a parent directory becomes an
/// opaque directory (the lower content stays hidden, the new file shows;
/// a layer must not hold a whiteout and a file below it).
fn place(tree: &mut Tree, path: &str, node: Node) {
    let mut prefix = String::new();
    let components: Vec<&str> = path.split('/').collect();
    for component in &components {
        let whiteout = whiteout_path(&prefix, component);
        let dir = if prefix.is_empty() { component.to_string() } else { format!("{prefix}/{component}") };
        if tree.remove(&whiteout).is_some() && dir != path {
            tree.opaque(&dir);
        }
        prefix = dir;
    }
    tree.insert(path, node);
}

fn whiteout_path(parent: &str, name: &str) -> String {
    if parent.is_empty() {
        format!("{}{name}", forge_oci::tree::WHITEOUT_PREFIX)
    } else {
        format!("{parent}/{}{name}", forge_oci::tree::WHITEOUT_PREFIX)
    }
}

/// Hashes and counts what passes through, failing past `limit` bytes.
struct CheckingReader<R> {
    inner: R,
    hasher: Option<record::Hasher>,
    size: u64,
    limit: Option<u64>,
    /// Whether a read went past `limit`.
    exceeded: bool,
}

impl<R: Read> Read for CheckingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if self.limit.is_some_and(|limit| self.size + n as u64 > limit) {
            self.exceeded = true;
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "the member is larger than the {} bytes its RECORD row says",
                    self.limit.unwrap_or_default()
                ),
            ));
        }
        if let Some(hasher) = &mut self.hasher {
            hasher.update(&buf[..n]);
        }
        self.size += n as u64;
        Ok(n)
    }
}

/// Refuses member names that could land outside their directory.
fn check_member_name(name: &str) -> Result<(), &'static str> {
    if name.starts_with('/') {
        return Err("absolute path");
    }
    if name.contains('\\') {
        return Err("backslash in the path");
    }
    if name.contains('\0') {
        return Err("NUL in the path");
    }
    let trimmed = name.strip_suffix('/').unwrap_or(name);
    for component in trimmed.split('/') {
        match component {
            ".." => return Err("`..` in the path"),
            "" | "." => return Err("empty or `.` path component"),
            _ => {}
        }
    }
    if trimmed.split('/').next().is_some_and(|c| c.len() == 2 && c.ends_with(':')) {
        return Err("drive letter");
    }
    Ok(())
}

/// The one top-level `.dist-info` directory.
fn dist_info_dir(names: &BTreeMap<String, (usize, u32)>) -> Result<String, String> {
    let dirs: BTreeSet<&str> = names
        .keys()
        .filter_map(|n| n.split_once('/'))
        .map(|(top, _)| top)
        .filter(|t| t.ends_with(".dist-info"))
        .collect();
    match dirs.len() {
        0 => Err(".dist-info directory not found".to_owned()),
        1 => Ok(dirs.into_iter().next().unwrap_or_default().to_owned()),
        _ => Err(format!(
            "more than one .dist-info directory: {}",
            dirs.into_iter().collect::<Vec<_>>().join(", ")
        )),
    }
}

/// Checks `WHEEL`; returns `Root-Is-Purelib` and the `Tag`s.
fn check_wheel_file(text: &str) -> Result<(bool, Vec<String>), String> {
    let mut version = None;
    let mut purelib = false;
    let mut tags = Vec::new();
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else { continue };
        let value = value.trim();
        if key.eq_ignore_ascii_case("Wheel-Version") {
            version = Some(value.to_owned());
        } else if key.eq_ignore_ascii_case("Root-Is-Purelib") {
            purelib = value.eq_ignore_ascii_case("true");
        } else if key.eq_ignore_ascii_case("Tag") {
            tags.push(value.to_owned());
        }
    }
    let version = version.ok_or("Wheel-Version is missing")?;
    let major = version.split('.').next().and_then(|m| m.parse::<u32>().ok());
    match major {
        Some(1) => Ok((purelib, tags)),
        Some(_) => Err(format!("Wheel-Version {version} is not supported (1.x is)")),
        None => Err(format!("invalid Wheel-Version `{version}`")),
    }
}

/// An entry point: `module:attr.sub [extras]`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct EntryPoint {
    /// `module`.
    module: String,
    /// `attr.sub`.
    attr: String,
}

/// `console_scripts` and `gui_scripts` of `entry_points.txt`, in order,
/// a later duplicate name replacing the earlier (as pip's dict does).
#[allow(clippy::type_complexity)]
fn parse_entry_points(text: &str) -> Result<(Vec<(String, EntryPoint)>, Vec<(String, EntryPoint)>), String> {
    let mut console: Vec<(String, EntryPoint)> = Vec::new();
    let mut gui: Vec<(String, EntryPoint)> = Vec::new();
    let mut section = String::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.trim().to_owned();
            continue;
        }
        let list = match section.as_str() {
            "console_scripts" => &mut console,
            "gui_scripts" => &mut gui,
            _ => continue,
        };
        let (name, value) = line
            .split_once('=')
            .ok_or_else(|| format!("line {}: `{line}` is not `name = value`", number + 1))?;
        let (name, value) = (name.trim(), value.trim());
        // `.` and `..` would be the scripts directory or its parent (pip 26.2
        // refuses them too).
        if name.is_empty()
            || name == "."
            || name == ".."
            || !name.chars().all(|c| c.is_alphanumeric() || "_-.+".contains(c))
        {
            return Err(format!("line {}: invalid script name `{name}`", number + 1));
        }
        let callable = value.split('[').next().unwrap_or(value).trim();
        let Some((module, attr)) = callable.split_once(':') else {
            return Err(format!(
                "line {}: invalid script entry point `{name} = {value}`: a callable suffix (`module:function`) is required",
                number + 1
            ));
        };
        let (module, attr) = (module.trim(), attr.trim());
        let dotted = |s: &str| {
            !s.is_empty()
                && s.split('.').all(|p| !p.is_empty() && p.chars().all(|c| c.is_alphanumeric() || c == '_'))
        };
        if !dotted(module) || !dotted(attr) {
            return Err(format!("line {}: invalid entry point `{value}`", number + 1));
        }
        let entry = EntryPoint { module: module.to_owned(), attr: attr.to_owned() };
        list.retain(|(n, _)| n != name);
        list.push((name.to_owned(), entry));
    }
    Ok((console, gui))
}

/// pip's `get_console_script_specs`: `pip` and `easy_install` get the
/// versioned names of the target's Python instead of the wheel's.
fn console_specs(console: &[(String, EntryPoint)], target: &Target) -> Vec<(String, EntryPoint)> {
    let mut console: Vec<(String, EntryPoint)> = console.to_vec();
    let mut specs = Vec::new();
    let version = target.version;
    let take = |console: &mut Vec<(String, EntryPoint)>, name: &str| {
        let at = console.iter().position(|(n, _)| n == name)?;
        Some(console.remove(at).1)
    };
    if let Some(pip) = take(&mut console, "pip") {
        specs.push(("pip".to_owned(), pip.clone()));
        specs.push((format!("pip{}", version.major), pip.clone()));
        specs.push((format!("pip{version}"), pip));
        console.retain(|(n, _)| !is_versioned(n, "pip", ""));
    }
    if let Some(easy_install) = take(&mut console, "easy_install") {
        specs.push(("easy_install".to_owned(), easy_install.clone()));
        specs.push((format!("easy_install-{version}"), easy_install));
        console.retain(|(n, _)| !is_versioned(n, "easy_install", "-"));
    }
    specs.extend(console);
    specs
}

/// `pip(\d+(\.\d+)?)?` / `easy_install(-\d+\.\d+)?` as pip's regexes.
fn is_versioned(name: &str, base: &str, separator: &str) -> bool {
    let Some(rest) = name.strip_prefix(base) else { return false };
    if rest.is_empty() {
        return true;
    }
    let Some(rest) = rest.strip_prefix(separator) else { return false };
    let digits = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit());
    match rest.split_once('.') {
        Some((major, minor)) => digits(major) && digits(minor),
        None => separator.is_empty() && digits(rest),
    }
}

/// A file of `.data/scripts/` that is setuptools' wrapper of an entry
/// point (`EP`, `EP.exe`, `EP-script.py`, `EP.pya`): pip skips it.
fn is_entry_point_wrapper(path: &str, entry_points: &BTreeSet<&str>) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    let lower = name.to_lowercase();
    let stem = if lower.ends_with(".exe") || lower.ends_with(".pya") {
        &name[..name.len() - 4]
    } else if lower.ends_with("-script.py") {
        &name[..name.len() - 10]
    } else {
        name
    };
    entry_points.contains(stem)
}

/// The shebang distlib writes for the target's interpreter: `#!<exe>`, or
/// the `/bin/sh` trampoline when the path has a space or the line would be
/// longer than 127 bytes (Linux's limit).
fn shebang(executable: &str) -> String {
    let quoted = if executable.contains(' ') && !executable.starts_with('"') {
        format!("\"{executable}\"")
    } else {
        executable.to_owned()
    };
    if !quoted.contains(' ') && quoted.len() + 3 <= 127 {
        format!("#!{quoted}\n")
    } else {
        format!("#!/bin/sh\n'''exec' {quoted} \"$0\" \"$@\"\n' '''\n")
    }
}

/// The script text pip writes for an entry point, which changed with pip's
/// versions (each checked against that pip's source).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScriptTemplate {
    /// pip before 25.2: distlib's template (`import re`, a coding line).
    Distlib,
    /// pip 25.2 and 25.3: pip's own, without `re`, `endswith('.exe')`.
    Pip25,
    /// pip 26.0 and later: pip's own, `removesuffix('.exe')`.
    Pip26,
}

impl ScriptTemplate {
    /// The template the pip of `version` writes; the newest for `None` or
    /// a version that does not parse (a fresh pip).
    pub fn for_pip(version: Option<&str>) -> ScriptTemplate {
        let parsed = version.and_then(|v| {
            let mut parts = v.split('.');
            let major: u32 = parts.next()?.parse().ok()?;
            let minor: u32 =
                parts.next()?.chars().take_while(char::is_ascii_digit).collect::<String>().parse().ok()?;
            Some((major, minor))
        });
        match parsed {
            Some(v) if v < (25, 2) => ScriptTemplate::Distlib,
            Some(v) if v < (26, 0) => ScriptTemplate::Pip25,
            _ => ScriptTemplate::Pip26,
        }
    }

    /// The script below the shebang for `from module import name`, calling
    /// `func` (`name` or `name.attr`).
    fn body(self, module: &str, name: &str, func: &str) -> String {
        match self {
            ScriptTemplate::Distlib => format!(
                "# -*- coding: utf-8 -*-\nimport re\nimport sys\nfrom {module} import {name}\nif __name__ == '__main__':\n    sys.argv[0] = re.sub(r'(-script\\.pyw|\\.exe)?$', '', sys.argv[0])\n    sys.exit({func}())\n"
            ),
            ScriptTemplate::Pip25 => format!(
                "import sys\nfrom {module} import {name}\nif __name__ == '__main__':\n    if sys.argv[0].endswith('.exe'):\n        sys.argv[0] = sys.argv[0][:-4]\n    sys.exit({func}())\n"
            ),
            ScriptTemplate::Pip26 => format!(
                "import sys\nfrom {module} import {name}\nif __name__ == '__main__':\n    sys.argv[0] = sys.argv[0].removesuffix('.exe')\n    sys.exit({func}())\n"
            ),
        }
    }
}

/// The text of an entry point script as the target's pip (its
/// `ScriptMaker`) writes it.
fn script_text(entry: &EntryPoint, target: &Target) -> String {
    let import_name = entry.attr.split('.').next().unwrap_or(&entry.attr);
    let template = ScriptTemplate::for_pip(target.pip_version.as_deref());
    format!("{}{}", shebang(&target.executable), template.body(&entry.module, import_name, &entry.attr))
}

/// `path` relative to the directory `base` (both image paths), as
/// `os.path.relpath` gives it.
fn relative(path: &str, base: &str) -> String {
    let path: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
    let base: Vec<&str> = base.split('/').filter(|c| !c.is_empty()).collect();
    let common = path.iter().zip(&base).take_while(|(a, b)| a == b).count();
    let mut parts: Vec<&str> = std::iter::repeat_n("..", base.len() - common).collect();
    parts.extend(&path[common..]);
    parts.join("/")
}

/// `base` joined with a `RECORD` path (`../../../bin/x`, or absolute),
/// `..` applied; `None` when it would leave the image root.
fn record_to_image_path(base: &str, record_path: &str) -> Option<String> {
    let mut parts: Vec<&str> = if record_path.starts_with('/') {
        Vec::new()
    } else {
        base.split('/').filter(|c| !c.is_empty()).collect()
    };
    for component in record_path.split('/') {
        match component {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            other => parts.push(other),
        }
    }
    Some(parts.join("/"))
}

/// Removes the installed distribution `name` (any spelling) for a
/// reinstall, as `pip install --upgrade` removes it first: every file its
/// `RECORD` (or an `.egg-info`'s `installed-files.txt`) lists, with the
/// `.pyc` files of its `.py` files, and each directory all of whose files
/// go. What `tree` installed goes from `tree`; what the image below
/// (`files`) has gets a whiteout. Returns the paths removed (files, and
/// directories removed whole), sorted; none when it is not installed.
///
/// As pip, only distributions in the install scheme's lib directories are
/// removed: one elsewhere on `sys.path` (Debian's
/// `/usr/lib/python3/dist-packages`, a venv's system site-packages) is
/// left in place and shadowed by the new install ("not uninstalling ...
/// outside environment").
pub fn uninstall(
    files: &dyn ImageFiles,
    target: &Target,
    name: &str,
    tree: &mut Tree,
) -> Result<Vec<String>, WheelError> {
    let view = Stack::new(files, [&*tree]);
    let dists = installed_dists(&view, &target.site_dirs).map_err(|e| match e {
        crate::target::TargetError::Read { path, source } => WheelError::Read { path, source },
        other => WheelError::Read { path: other.to_string(), source: io::ErrorKind::InvalidData.into() },
    })?;
    let wanted = normalize_name(name);
    let Some(dist) = dists.into_iter().find(|d| d.name == wanted) else { return Ok(Vec::new()) };
    let site = dist.site_dir().to_owned();
    if site != target.scheme.purelib && site != target.scheme.platlib {
        return Ok(Vec::new());
    }
    let listed = listed_files(&view, &dist, &target.scheme.scripts)?;
    let mut paths: BTreeSet<String> = BTreeSet::new();
    let cache_tag = format!("cpython-{}{}", target.version.major, target.version.minor);
    for path in listed {
        if let Some(stem) = path.strip_suffix(".py") {
            let (dir, file) = stem.rsplit_once('/').unwrap_or(("", stem));
            paths.insert(format!("{stem}.pyc"));
            paths.insert(format!("{stem}.pyo"));
            paths.insert(join(dir, &format!("__pycache__/{file}.{cache_tag}.pyc")));
        }
        paths.insert(path);
    }
    // pip removes only what exists.
    paths.retain(|p| view.node(p).is_some());

    // pip's `compress_for_rename`: a directory all of whose files go is
    // removed whole (with its empty sub-directories and caches of the
    // same files); a path below another removed path is not named again.
    let goes = |path: &str| {
        let mut at = path;
        loop {
            if paths.contains(at) {
                return true;
            }
            match at.rsplit_once('/') {
                Some((up, _)) => at = up,
                None => return false,
            }
        }
    };
    let mut removed: BTreeSet<String> = paths.clone();
    let mut parents: Vec<String> =
        paths.iter().map(|p| parent_of(p).to_owned()).collect::<BTreeSet<_>>().into_iter().collect();
    parents.sort_by_key(|p| p.len());
    for dir in parents {
        if dir.is_empty() || removed.iter().any(|r| dir.starts_with(&format!("{r}/"))) {
            continue;
        }
        let mut all = Vec::new();
        walk_files(&view, &dir, &mut all);
        if all.iter().all(|f| goes(f)) {
            removed.insert(dir);
        }
    }
    let minimal: Vec<String> = removed
        .iter()
        .filter(|p| !removed.iter().any(|r| p.starts_with(&format!("{r}/"))))
        .cloned()
        .collect();
    drop(view);
    for path in &minimal {
        hide(files, tree, path);
    }
    Ok(minimal)
}

fn parent_of(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(dir, _)| dir)
}

/// Every non-directory below `dir` in `view` (symlinks not followed).
fn walk_files(view: &dyn ImageFiles, dir: &str, out: &mut Vec<String>) {
    for name in view.list(dir) {
        let path = join(dir, &name);
        match view.node(&path) {
            Some(node) if node.is_dir() => walk_files(view, &path, out),
            Some(_) => out.push(path),
            None => {}
        }
    }
}

/// Removes `path` (and what is below it) from `tree`, and whites it out
/// when the image below has it.
fn hide(files: &dyn ImageFiles, tree: &mut Tree, path: &str) {
    let below = format!("{path}/");
    let inserted: Vec<String> = tree
        .iter()
        .map(|(p, _)| p)
        .filter(|p| *p == path || p.starts_with(&below))
        .map(str::to_owned)
        .collect();
    for p in inserted {
        tree.remove(&p);
    }
    if files.node(path).is_some() {
        tree.whiteout(path);
    }
}

/// The files an installed distribution lists, as image paths.
/// For an `.egg-info`, pip adds its entry points' scripts in `scripts`
/// (a `RECORD` lists them already).
fn listed_files(
    view: &dyn ImageFiles,
    dist: &InstalledDist,
    scripts: &str,
) -> Result<Vec<String>, WheelError> {
    let site = dist.site_dir();
    let uninstallable = |reason: String| WheelError::Uninstall {
        name: dist.display_name.clone(),
        location: dist.metadata_path.clone(),
        reason,
    };
    let (list_file, base, csv) = if dist.is_dist_info() {
        (format!("{}/RECORD", dist.metadata_path), site.to_owned(), true)
    } else {
        if view.node(&dist.metadata_path).is_some_and(|n| !n.is_dir()) {
            return Err(uninstallable(
                "it is a distutils installed project (an .egg-info file), which lists no files".to_owned(),
            ));
        }
        (format!("{}/installed-files.txt", dist.metadata_path), dist.metadata_path.clone(), false)
    };
    let text = files::read_to_string(view, &list_file, METADATA_LIMIT)
        .map_err(|source| WheelError::Read { path: list_file.clone(), source })?;
    let text = match text {
        Some(text) => text,
        None if !csv => return top_level_files(view, dist, scripts, &list_file),
        None => return Err(uninstallable(format!("/{list_file} not found, so its files cannot be told"))),
    };
    let entries: Vec<String> = if csv {
        record::parse(&text)
            .map_err(|e| uninstallable(format!("/{list_file} {e}")))?
            .into_iter()
            .map(|r| r.path)
            .collect()
    } else {
        text.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_owned).collect()
    };
    let mut paths = Vec::new();
    for entry in entries {
        let path = record_to_image_path(&base, &entry)
            .ok_or_else(|| uninstallable(format!("/{list_file} lists `{entry}`, outside the image")))?;
        paths.push(path);
    }
    if !csv {
        paths.extend(egg_info_extras(view, dist, scripts)?);
    }
    Ok(paths)
}

/// An `.egg-info` directory itself and its entry points' scripts, which
/// pip removes with the files it lists.
fn egg_info_extras(
    view: &dyn ImageFiles,
    dist: &InstalledDist,
    scripts: &str,
) -> Result<Vec<String>, WheelError> {
    let mut paths = vec![dist.metadata_path.clone()];
    let entry_points = format!("{}/entry_points.txt", dist.metadata_path);
    let text = files::read_to_string(view, &entry_points, METADATA_LIMIT)
        .map_err(|source| WheelError::Read { path: entry_points.clone(), source })?;
    if let Some(text) = text {
        let (console, gui) = parse_entry_points(&text).map_err(|why| WheelError::Uninstall {
            name: dist.display_name.clone(),
            location: dist.metadata_path.clone(),
            reason: format!("/{entry_points}: {why}"),
        })?;
        paths.extend(console.iter().chain(&gui).map(|(name, _)| join(scripts, name)));
    }
    Ok(paths)
}

/// pip's fallback for an `.egg-info` without `installed-files.txt`: the
/// packages and modules `top_level.txt` names (less the namespace
/// packages), with their `.pyc`/`.pyo`.
fn top_level_files(
    view: &dyn ImageFiles,
    dist: &InstalledDist,
    scripts: &str,
    list_file: &str,
) -> Result<Vec<String>, WheelError> {
    let read = |name: &str| {
        let path = format!("{}/{name}", dist.metadata_path);
        files::read_to_string(view, &path, METADATA_LIMIT).map_err(|source| WheelError::Read { path, source })
    };
    let Some(top_level) = read("top_level.txt")? else {
        return Err(WheelError::Uninstall {
            name: dist.display_name.clone(),
            location: dist.metadata_path.clone(),
            reason: format!("neither /{list_file} nor top_level.txt beside it, so its files cannot be told"),
        });
    };
    let namespaces = read("namespace_packages.txt")?.unwrap_or_default();
    let namespaces: BTreeSet<&str> = namespaces.lines().collect();
    let mut paths = Vec::new();
    for module in top_level.lines().filter(|l| !l.is_empty() && !namespaces.contains(l)) {
        let path = join(dist.site_dir(), module);
        paths.extend([format!("{path}.py"), format!("{path}.pyc"), format!("{path}.pyo"), path]);
    }
    paths.extend(egg_info_extras(view, dist, scripts)?);
    Ok(paths)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_as_os_path_relpath() {
        let lib = "usr/local/lib/python3.11/dist-packages";
        assert_eq!(relative("usr/local/bin/x", lib), "../../../bin/x");
        assert_eq!(relative("usr/local/lib/python3.11/dist-packages/a/b.py", lib), "a/b.py");
        assert_eq!(
            relative("usr/local/include/python3.11/foo/f.h", lib),
            "../../../include/python3.11/foo/f.h"
        );
        assert_eq!(record_to_image_path(lib, "../../../bin/x").as_deref(), Some("usr/local/bin/x"));
        assert_eq!(record_to_image_path(lib, "/etc/x").as_deref(), Some("etc/x"));
        assert_eq!(record_to_image_path("a", "../../x"), None);
    }

    #[test]
    fn member_names() {
        assert!(check_member_name("a/b.py").is_ok());
        assert!(check_member_name("a/").is_ok());
        for bad in ["/etc/passwd", "../x", "a/../../x", "a\\b", "C:/x", "a//b"] {
            assert!(check_member_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn versioned_pip_names() {
        assert!(is_versioned("pip", "pip", ""));
        assert!(is_versioned("pip3", "pip", ""));
        assert!(is_versioned("pip3.11", "pip", ""));
        assert!(!is_versioned("pipx", "pip", ""));
        assert!(is_versioned("easy_install-3.8", "easy_install", "-"));
        assert!(!is_versioned("easy_install3", "easy_install", "-"));
    }

    #[test]
    fn long_interpreter_paths_get_the_sh_trampoline() {
        assert_eq!(shebang("/usr/bin/python3"), "#!/usr/bin/python3\n");
        let long = format!("/{}/python", "x".repeat(130));
        assert!(shebang(&long).starts_with("#!/bin/sh\n'''exec' /x"));
        assert_eq!(shebang("/a b/python"), "#!/bin/sh\n'''exec' \"/a b/python\" \"$0\" \"$@\"\n' '''\n");
    }

    #[test]
    fn entry_points_need_a_callable() {
        let (console, gui) =
            parse_entry_points("[console_scripts]\nfoo = pkg.cli:main\nbar=pkg:obj.run [extra]\n[gui_scripts]\ng = pkg.gui:run\n[other]\nx = y\n").unwrap();
        assert_eq!(console.len(), 2);
        assert_eq!(console[1].1, EntryPoint { module: "pkg".into(), attr: "obj.run".into() });
        assert_eq!(gui[0].0, "g");
        assert!(parse_entry_points("[console_scripts]\nfoo = pkg.cli\n").is_err());
        assert!(parse_entry_points("[console_scripts]\n.. = pkg.cli:main\n").is_err());
        assert!(parse_entry_points("[console_scripts]\na/b = pkg.cli:main\n").is_err());
    }

    #[test]
    fn script_templates_follow_pips_version() {
        assert_eq!(ScriptTemplate::for_pip(Some("23.0.1")), ScriptTemplate::Distlib);
        assert_eq!(ScriptTemplate::for_pip(Some("25.1.1")), ScriptTemplate::Distlib);
        assert_eq!(ScriptTemplate::for_pip(Some("25.2")), ScriptTemplate::Pip25);
        assert_eq!(ScriptTemplate::for_pip(Some("25.3")), ScriptTemplate::Pip25);
        assert_eq!(ScriptTemplate::for_pip(Some("26.0b1")), ScriptTemplate::Pip26);
        assert_eq!(ScriptTemplate::for_pip(None), ScriptTemplate::Pip26);
        assert_eq!(
            ScriptTemplate::Pip26.body("pkg.cli", "Obj", "Obj.run"),
            "import sys\nfrom pkg.cli import Obj\nif __name__ == '__main__':\n    sys.argv[0] = sys.argv[0].removesuffix('.exe')\n    sys.exit(Obj.run())\n"
        );
        assert!(ScriptTemplate::Pip25
            .body("m", "f", "f")
            .contains("    if sys.argv[0].endswith('.exe'):\n        sys.argv[0] = sys.argv[0][:-4]\n"));
    }
}
