//! The build context: the monorepo root, as `build_plugin.sh` used it,
//! filtered by the root's `.dockerignore`, and the planning of `COPY`/`ADD`
//! with Docker's rules (directories copy their contents, globs, trailing-`/`
//! destinations, several sources need a directory destination).
//!
//! plugin-forge's own output directory ([`crate::TARGET_DIR`]: the store,
//! spool directories, tarballs) is never part of the context, whatever
//! `.dockerignore` says: an image must not hold earlier builds, and a build
//! must not read files a parallel build is writing. Nor is any
//! `Dockerfile.lock` ([`LOCK_FILE`]): the build itself writes it (after
//! resolving a `RUN`), so an image that held it would differ between the
//! build that wrote the lock and the next, and between platforms.
//!
//! Sources never leave the context: absolute paths, `..` and symlinks that
//! resolve outside are refused. Symlinks met inside a copied directory are
//! copied as symlinks. File modes are normalised to 0644, or 0755 when any
//! executable bit is set, and directories to 0755, so the umask of the
//! checkout never reaches the image (git itself only records the
//! executable bit).

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs::{self, Metadata};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use forge_oci::{Node, NodeKind, Tree};
use globset::{GlobBuilder, GlobMatcher};
use walkdir::WalkDir;

use crate::dockerignore::{clean, DockerIgnore};
use crate::error::{BuildError, Refusal};

/// The monorepo root as a build context.
#[derive(Debug, Clone)]
pub struct Context {
    root: PathBuf,
    ignore: DockerIgnore,
}

/// What `--chown`/`--chmod` asked for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CopyOptions {
    /// Owner of everything copied; root (0:0) otherwise.
    pub chown: Option<(u64, u64)>,
    /// Mode of every file and directory copied, instead of the normalised one.
    pub chmod: Option<u32>,
    /// `--preserve-modes`: keep each file's and directory's mode from disk
    /// (setuid, setgid and sticky bits included), as `docker build` does,
    /// instead of normalising to 0644/0755; `chmod` still wins.
    pub preserve_modes: bool,
}

/// Files with several links seen while planning, by path: `(dev, ino)`.
/// The second and later names in layer order become hard links.
type Links = BTreeMap<String, (u64, u64)>;

impl Context {
    /// Opens the context at `root` and reads its `.dockerignore`.
    pub fn open(root: &Path) -> Result<Context, BuildError> {
        let canonical =
            fs::canonicalize(root).map_err(|e| BuildError::io("resolving the build context", root, e))?;
        let ignore = DockerIgnore::load(&canonical)?;
        Ok(Context { root: canonical, ignore })
    }

    /// The canonical root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Whether `rel` is left out of the context: our own output directory,
    /// a `Dockerfile.lock`, or excluded by `.dockerignore`.
    pub fn is_excluded(&self, rel: &str) -> bool {
        is_own_output(rel) || is_lock(rel) || self.ignore.is_excluded(rel)
    }

    /// The context directory or file a `COPY`/`ADD` source (expanded)
    /// reads: cleaned, cut before the first component with a glob
    /// (`supervisely_lib/*.py` reads `supervisely_lib`); `""` is the whole
    /// context (`.`). What `--changed-since` and the image's revision
    /// compare with git.
    pub fn source_root(source: &str) -> String {
        let cleaned = clean(source.trim_start_matches('/'));
        let literal: Vec<&str> =
            cleaned.split('/').take_while(|c| !c.contains(['*', '?', '[', '\\'])).collect();
        match literal.join("/").as_str() {
            "." => String::new(),
            other => other.to_string(),
        }
    }

    /// Plans `COPY sources... dest` (sources and dest already expanded),
    /// `workdir` being the current working directory of the image.
    pub fn plan_copy(
        &self,
        sources: &[String],
        dest: &str,
        workdir: &str,
        options: CopyOptions,
    ) -> Result<Tree, Refusal> {
        let dest_is_dir = dest.ends_with('/') || dest.ends_with("/.") || dest == ".";
        let dest_abs = layer_path(&resolve(workdir, dest));
        let mut matches = Vec::new();
        for (index, source) in sources.iter().enumerate() {
            matches.extend(self.resolve_source(source).map_err(|r| r.about_source(index))?);
        }
        if matches.len() > 1 && !dest_is_dir {
            return Err(Refusal::new(format!(
                "`{dest}` must be a directory ending in `/`: more than one source file is copied"
            ))
            .help(format!("write `{dest}/`")));
        }
        let mut tree = Tree::new();
        let mut links = Links::new();
        for m in matches {
            if m.meta.is_dir() {
                if !dest_abs.is_empty() {
                    tree.insert(dest_abs.clone(), dir_node(options, &m.meta));
                }
                self.walk_dir(&m, &dest_abs, options, &mut tree, &mut links)?;
            } else {
                let target = if dest_is_dir {
                    let name = Path::new(&m.rel).file_name().map(|n| n.to_string_lossy().into_owned());
                    join(&dest_abs, &name.unwrap_or_default())
                } else {
                    dest_abs.clone()
                };
                if target.is_empty() {
                    return Err(Refusal::new("cannot copy a file onto `/`")
                        .help("name a destination file or directory"));
                }
                insert_file(&mut tree, &mut links, target, &m.abs, &m.meta, options);
            }
        }
        mark_hardlinks(&mut tree, &links);
        Ok(tree)
    }

    /// The canonical path of `source` when it names one regular file (no
    /// glob), for `ADD` to look inside; `None` otherwise.
    pub fn regular_file(&self, source: &str) -> Result<Option<PathBuf>, Refusal> {
        if source.contains(['*', '?', '[']) {
            return Ok(None);
        }
        let found = self.resolve_source(source)?;
        Ok(found.into_iter().next().filter(|m| m.meta.is_file()).map(|m| m.abs))
    }

    /// The files a source names: one, or the matches of a glob.
    fn resolve_source(&self, source: &str) -> Result<Vec<Match>, Refusal> {
        if source.contains("://") {
            return Err(Refusal::new(format!(
                "`{source}` is a URL; only files of the build context can be copied"
            ))
            .help("download the file into the monorepo and copy it from there"));
        }
        if source.starts_with('/') {
            return Err(Refusal::new(format!("`{source}` is an absolute path"))
                .help("sources are relative to the monorepo root, the build context"));
        }
        let cleaned = clean(source);
        if cleaned == ".." || cleaned.starts_with("../") {
            return Err(Refusal::new(format!("`{source}` leaves the build context (the monorepo root)"))
                .help("copy only files inside the monorepo"));
        }
        let rels = if cleaned.contains(['*', '?', '[']) {
            let found = self.glob(&cleaned)?;
            if found.is_empty() {
                return Err(Refusal::new(format!("no file of the build context matches `{source}`")));
            }
            found
        } else {
            vec![cleaned]
        };
        rels.into_iter().map(|rel| self.source(source, rel)).collect()
    }

    fn source(&self, written: &str, rel: String) -> Result<Match, Refusal> {
        let path = if rel == "." { self.root.clone() } else { self.root.join(&rel) };
        let not_found = || {
            Refusal::new(format!("`{written}` not found in the build context"))
                .help("sources are relative to the monorepo root, the build context")
        };
        if rel != "." && is_lock(&rel) {
            return Err(Refusal::new(format!(
                "`{written}` is a lock plugin-forge writes during the build, which is never part of the build context"
            ))
            .help("copy sources of the monorepo, not build outputs"));
        }
        if rel != "." && is_own_output(&rel) {
            return Err(Refusal::new(format!(
                "`{written}` is inside {}, plugin-forge's own output, which is never part of the build context",
                crate::TARGET_DIR
            ))
            .help("copy sources of the monorepo, not build outputs"));
        }
        if rel != "." && self.ignore.is_excluded(&rel) && !self.includes_below(&path, &rel) {
            return Err(Refusal::new(format!("`{written}` is excluded by .dockerignore"))
                .help("remove the pattern from .dockerignore or add a `!` exception"));
        }
        if path.as_os_str().len() >= 4096 {
            return Err(Refusal::new(format!(
                "`{written}` is longer than the system allows (4096 bytes a path)"
            ))
            .help("shorten the path"));
        }
        let abs = fs::canonicalize(&path).map_err(|e| match e.raw_os_error() {
            // ELOOP
            Some(40) => {
                Refusal::new(format!("`{written}` is a symlink loop (or a chain of more than 40 symlinks)"))
                    .help("make the symlink point at a file or directory")
            }
            // ENAMETOOLONG
            Some(36) => Refusal::new(format!(
                "`{written}` is longer than the system allows (4096 bytes a path, 255 a name)"
            ))
            .help("shorten the path"),
            _ if e.kind() == std::io::ErrorKind::NotFound => not_found(),
            _ => Refusal::new(format!("cannot resolve `{written}` in the build context: {e}"))
                .help("check the path and its permissions"),
        })?;
        if !abs.starts_with(&self.root) {
            return Err(Refusal::new(format!(
                "`{written}` resolves to {} through a symlink, outside the build context",
                abs.display()
            ))
            .help("copy only files inside the monorepo"));
        }
        let meta = fs::metadata(&abs).map_err(|_| not_found())?;
        if let Some(kind) = forge_input::special_kind(meta.file_type()) {
            return Err(special_file(written, kind));
        }
        Ok(Match { rel, abs, meta })
    }

    /// Whether the excluded directory `path` (`rel` in the context) still
    /// holds a path a `!` exception re-includes: Docker then sends that
    /// path and its parents, so a `COPY` of the directory copies it.
    fn includes_below(&self, path: &Path, rel: &str) -> bool {
        if !self.ignore.may_include_below(rel) || !fs::symlink_metadata(path).is_ok_and(|m| m.is_dir()) {
            return false;
        }
        let mut walk = WalkDir::new(path).follow_links(false).min_depth(1).into_iter();
        while let Some(Ok(entry)) = walk.next() {
            let inner =
                entry.path().strip_prefix(path).unwrap_or(entry.path()).to_string_lossy().into_owned();
            let context_rel = format!("{rel}/{inner}");
            if !self.is_excluded(&context_rel) {
                return true;
            }
            if entry.file_type().is_dir() && !self.ignore.may_include_below(&context_rel) {
                walk.skip_current_dir();
            }
        }
        false
    }

    /// Context paths matching a glob, one path component at a time (`*`
    /// never crosses `/`), sorted, without excluded paths.
    fn glob(&self, pattern: &str) -> Result<Vec<String>, Refusal> {
        let mut current = vec![String::new()];
        for component in pattern.split('/') {
            let mut next = Vec::new();
            let matcher = component_matcher(component, pattern)?;
            for dir in &current {
                match &matcher {
                    None => {
                        let candidate = join(dir, component);
                        if fs::symlink_metadata(self.root.join(&candidate)).is_ok() {
                            next.push(candidate);
                        }
                    }
                    Some(matcher) => {
                        let Ok(entries) = fs::read_dir(self.root.join(dir)) else { continue };
                        let mut names: Vec<OsString> =
                            entries.filter_map(|e| e.ok()).map(|e| e.file_name()).collect();
                        names.sort();
                        for name in names.iter().filter(|n| matcher.is_match(Path::new(n))) {
                            let rel = Path::new(dir).join(name);
                            match name.to_str() {
                                Some(name) => next.push(join(dir, name)),
                                None if self.is_excluded(&rel.to_string_lossy()) => {}
                                None => return Err(non_utf8(&rel)),
                            }
                        }
                    }
                }
            }
            current = next;
        }
        current.retain(|rel| !self.is_excluded(rel) || self.includes_below(&self.root.join(rel), rel));
        Ok(current)
    }

    fn walk_dir(
        &self,
        m: &Match,
        dest: &str,
        options: CopyOptions,
        tree: &mut Tree,
        links: &mut Links,
    ) -> Result<(), Refusal> {
        let mut walk = WalkDir::new(&m.abs).follow_links(false).sort_by_file_name().min_depth(1).into_iter();
        while let Some(entry) = walk.next() {
            let entry = entry.map_err(|e| Refusal::new(format!("cannot read the build context: {e}")))?;
            let inner_path = entry.path().strip_prefix(&m.abs).unwrap_or(entry.path());
            let inner = inner_path.to_string_lossy().into_owned();
            let context_rel = if m.rel == "." { inner.clone() } else { format!("{}/{inner}", m.rel) };
            if is_own_output(&context_rel) || (is_lock(&context_rel) && !entry.file_type().is_dir()) {
                if entry.file_type().is_dir() {
                    walk.skip_current_dir();
                }
                continue;
            }
            if self.ignore.is_excluded(&context_rel) {
                if entry.file_type().is_dir() && !self.ignore.may_include_below(&context_rel) {
                    walk.skip_current_dir();
                }
                continue;
            }
            if inner_path.to_str().is_none() {
                let rel =
                    if m.rel == "." { inner_path.to_path_buf() } else { Path::new(&m.rel).join(inner_path) };
                return Err(non_utf8(&rel));
            }
            let target = join(dest, &inner);
            let ft = entry.file_type();
            if ft.is_dir() {
                let meta = entry
                    .metadata()
                    .map_err(|e| Refusal::new(format!("cannot read {}: {e}", entry.path().display())))?;
                tree.insert(target, dir_node(options, &meta));
            } else if ft.is_symlink() {
                let link = fs::read_link(entry.path())
                    .map_err(|e| Refusal::new(format!("cannot read link {}: {e}", entry.path().display())))?;
                let Some(link) = link.to_str() else {
                    return Err(Refusal::new(format!(
                        "the symlink `{context_rel}` points at `{}`, which is not valid UTF-8",
                        forge_oci::escape_name(link.as_os_str().as_bytes())
                    ))
                    .help(NON_UTF8_HELP));
                };
                let (uid, gid) = options.chown.unwrap_or((0, 0));
                tree.insert(target, Node::symlink(link).owned_by(uid, gid));
            } else if ft.is_file() {
                let meta = entry
                    .metadata()
                    .map_err(|e| Refusal::new(format!("cannot read {}: {e}", entry.path().display())))?;
                insert_file(tree, links, target, entry.path(), &meta, options);
            } else if let Some(kind) = forge_input::special_kind(ft) {
                // Docker copies FIFOs and devices and skips sockets; none
                // has a place in a plugin image, and reading a FIFO blocks.
                return Err(special_file(&context_rel, kind));
            }
        }
        Ok(())
    }
}

struct Match {
    /// Path relative to the context root ("." for the root itself).
    rel: String,
    /// Canonical path.
    abs: PathBuf,
    /// Metadata, symlinks followed.
    meta: Metadata,
}

const NON_UTF8_HELP: &str =
    "rename it, or exclude it in .dockerignore: layers keep names exactly, and replacing bytes could merge two files";

/// The context path `rel` has a name that is not UTF-8.
fn non_utf8(rel: &Path) -> Refusal {
    Refusal::new(format!(
        "`{}` has a name that is not valid UTF-8",
        forge_oci::escape_name(rel.as_os_str().as_bytes())
    ))
    .help(NON_UTF8_HELP)
}

fn special_file(rel: &str, kind: &str) -> Refusal {
    Refusal::new(format!("`{rel}` is {kind}; only regular files, directories and symlinks can be copied"))
        .help(format!("remove it, or exclude `{rel}` in .dockerignore"))
}

/// A directory of the layer: mode 0755 (or as on disk with
/// `--preserve-modes`) unless `--chmod`.
fn dir_node(options: CopyOptions, meta: &Metadata) -> Node {
    let (uid, gid) = options.chown.unwrap_or((0, 0));
    let mode = if options.preserve_modes { meta.mode() & 0o7777 } else { 0o755 };
    Node::dir(options.chmod.unwrap_or(mode)).owned_by(uid, gid)
}

/// Plans the file at `path` as `target`, its mode normalised to 0644 or
/// 0755 (any executable bit; as on disk with `--preserve-modes`) unless
/// `--chmod`.
fn insert_file(
    tree: &mut Tree,
    links: &mut Links,
    target: String,
    path: &Path,
    meta: &Metadata,
    options: CopyOptions,
) {
    let (uid, gid) = options.chown.unwrap_or((0, 0));
    let normalised = if options.preserve_modes {
        meta.mode() & 0o7777
    } else if meta.mode() & 0o111 != 0 {
        0o755
    } else {
        0o644
    };
    if meta.nlink() > 1 {
        links.insert(target.clone(), (meta.dev(), meta.ino()));
    } else {
        links.remove(&target);
    }
    let node = Node::file(options.chmod.unwrap_or(normalised), meta.len(), path).owned_by(uid, gid);
    tree.insert(target, node);
}

/// Second and later names of a file with several links become hard links
/// to the first name in layer order.
fn mark_hardlinks(tree: &mut Tree, links: &Links) {
    let mut first: BTreeMap<(u64, u64), String> = BTreeMap::new();
    for (path, node) in tree.iter_mut() {
        let Some(identity) = links.get(path) else { continue };
        if !matches!(node.kind, NodeKind::File { .. }) {
            continue;
        }
        match first.get(identity) {
            Some(target) => node.kind = NodeKind::Hardlink { target: target.clone() },
            None => {
                first.insert(*identity, path.to_owned());
            }
        }
    }
}

/// Whether the context path `rel` (cleaned) is our own output directory or
/// inside it.
/// The name of the lock of a Dockerfile's installing `RUN`s, beside it.
pub const LOCK_FILE: &str = "Dockerfile.lock";

/// Whether `rel` is a `Dockerfile.lock` (see the [module docs](self)).
fn is_lock(rel: &str) -> bool {
    rel.rsplit('/').next() == Some(LOCK_FILE)
}

fn is_own_output(rel: &str) -> bool {
    rel.strip_prefix(crate::TARGET_DIR).is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// The matcher of one path component of a `COPY` source pattern (Go's
/// `filepath.Match`: `*` and `?` never cross `/`, `\` escapes), or `None`
/// when the component has no glob characters.
pub(crate) fn component_matcher(component: &str, pattern: &str) -> Result<Option<GlobMatcher>, Refusal> {
    if !component.contains(['*', '?', '[']) {
        return Ok(None);
    }
    let glob = GlobBuilder::new(component)
        .literal_separator(true)
        .backslash_escape(true)
        .build()
        .map_err(|e| Refusal::new(format!("invalid pattern `{pattern}`: {}", e.kind())))?;
    Ok(Some(glob.compile_matcher()))
}

/// `path` resolved against the absolute directory `cwd`, cleaned.
pub(crate) fn resolve(cwd: &str, path: &str) -> String {
    if path.starts_with('/') {
        clean(path)
    } else {
        clean(&format!("{cwd}/{path}"))
    }
}

/// An absolute image path as a layer path: no leading `/`, "" for the root.
pub(crate) fn layer_path(abs: &str) -> String {
    abs.trim_start_matches('/').to_string()
}

pub(crate) fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_roots_are_the_literal_part_of_a_source() {
        for (source, root) in [
            ("supervisely_lib", "supervisely_lib"),
            ("./plugins/a/", "plugins/a"),
            ("plugins//a/src/*.py", "plugins/a/src"),
            ("plugins/a/[ab]/x", "plugins/a"),
            ("*.txt", ""),
            (".", ""),
            ("./", ""),
            ("plugins/a/../b", "plugins/b"),
        ] {
            assert_eq!(Context::source_root(source), root, "{source}");
        }
    }

    fn context(files: &[&str]) -> (tempfile::TempDir, Context) {
        let dir = tempfile::tempdir().unwrap();
        for file in files {
            let path = dir.path().join(file);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, file).unwrap();
        }
        let context = Context::open(dir.path()).unwrap();
        (dir, context)
    }

    fn copied(context: &Context, source: &str) -> Result<Vec<String>, String> {
        let tree = context
            .plan_copy(&[source.to_string()], "/w/", "/", CopyOptions::default())
            .map_err(|r| r.message)?;
        Ok(tree.iter().map(|(p, _)| p.to_string()).collect())
    }

    #[test]
    fn own_output_is_never_in_the_context() {
        let (_dir, context) = context(&[
            "src/a.py",
            "target/plugin-forge/oci/index.json",
            "target/plugin-forge/images/x.tar",
            "target/plugin-forge-other/kept",
            "target/other/kept",
            // `!` exceptions cannot bring it back.
            ".dockerignore",
        ]);
        fs::write(context.root().join(".dockerignore"), "nothing\n!target/plugin-forge/oci\n").unwrap();
        let context = Context::open(context.root()).unwrap();
        let paths = copied(&context, ".").unwrap();
        assert!(paths.iter().all(|p| !p.starts_with("w/target/plugin-forge/")), "{paths:?}");
        assert!(paths.contains(&"w/target/plugin-forge-other/kept".to_string()), "{paths:?}");
        assert!(paths.contains(&"w/target/other/kept".to_string()), "{paths:?}");
        assert!(context.is_excluded("target/plugin-forge"));
        let err = copied(&context, "target/plugin-forge/oci/index.json").unwrap_err();
        assert!(err.contains("plugin-forge's own output"), "{err}");
        assert!(copied(&context, "target/*/oci").unwrap_err().contains("no file"));
    }

    #[test]
    fn locks_are_never_in_the_context() {
        let (_dir, context) =
            context(&["plugins/p/Dockerfile", "plugins/p/Dockerfile.lock", "plugins/p/Dockerfile.lock.d/x"]);
        let paths = copied(&context, "plugins/p").unwrap();
        assert_eq!(paths, ["w", "w/Dockerfile", "w/Dockerfile.lock.d", "w/Dockerfile.lock.d/x"]);
        assert!(context.is_excluded("plugins/p/Dockerfile.lock"));
        let err = copied(&context, "plugins/p/Dockerfile.lock").unwrap_err();
        assert!(err.contains("a lock plugin-forge writes"), "{err}");
    }

    #[test]
    fn special_files_are_refused_by_name() {
        let (dir, context) = context(&["src/a.py"]);
        let status = std::process::Command::new("mkfifo").arg(dir.path().join("src/pipe")).status().unwrap();
        assert!(status.success());
        let (tx, rx) = std::sync::mpsc::channel();
        let root = context.root().to_path_buf();
        std::thread::spawn(move || {
            let context = Context::open(&root).unwrap();
            tx.send((copied(&context, "src/pipe"), copied(&context, "src"), copied(&context, "."))).unwrap();
        });
        let (file, inside, whole) =
            rx.recv_timeout(std::time::Duration::from_secs(60)).expect("planning hung");
        // A FIFO as .dockerignore is refused when the context is opened.
        let ignore = dir.path().join(".dockerignore");
        assert!(std::process::Command::new("mkfifo").arg(&ignore).status().unwrap().success());
        let err = Context::open(dir.path()).unwrap_err().to_string();
        assert_eq!(err, ".dockerignore is a FIFO (named pipe), not a regular file");
        fs::remove_file(&ignore).unwrap();
        assert_eq!(
            file.unwrap_err(),
            "`src/pipe` is a FIFO (named pipe); only regular files, directories and symlinks can be copied"
        );
        assert!(inside.unwrap_err().starts_with("`src/pipe` is a FIFO"));
        assert!(whole.unwrap_err().starts_with("`src/pipe` is a FIFO"));
        fs::write(dir.path().join(".dockerignore"), "src/pipe\n").unwrap();
        let context = Context::open(dir.path()).unwrap();
        assert_eq!(copied(&context, "src").unwrap(), ["w", "w/a.py"]);
    }

    #[test]
    fn names_that_are_not_utf8_are_refused_not_replaced() {
        use std::ffi::OsStr;
        let (dir, context) = context(&["src/a.py"]);
        fs::write(dir.path().join("src").join(OsStr::from_bytes(b"c\xff")), "one").unwrap();
        fs::write(dir.path().join("src").join(OsStr::from_bytes(b"c\xfe")), "two").unwrap();
        let err = context.plan_copy(&["src".into()], "/w/", "/", CopyOptions::default()).unwrap_err();
        assert_eq!(err.message, "`src/c\\xfe` has a name that is not valid UTF-8");
        assert_eq!(
            copied(&context, "src/c*").unwrap_err(),
            "`src/c\\xfe` has a name that is not valid UTF-8"
        );
        assert_eq!(copied(&context, "src/*.py").unwrap(), ["w/a.py"]);
        std::os::unix::fs::symlink(OsStr::from_bytes(b"x\xff"), dir.path().join("src/link")).unwrap();
        fs::write(dir.path().join(".dockerignore"), "src/c*\n").unwrap();
        let context = Context::open(dir.path()).unwrap();
        assert_eq!(
            copied(&context, "src").unwrap_err(),
            "the symlink `src/link` points at `x\\xff`, which is not valid UTF-8"
        );
    }

    #[test]
    fn an_exception_inside_an_excluded_directory_is_copied() {
        let (_dir, context) = context(&[
            "supervisely_lib/__init__.py",
            "supervisely_lib/api.py",
            "supervisely_lib/sub/x.py",
            "other/a",
        ]);
        fs::write(
            context.root().join(".dockerignore"),
            "supervisely_lib\n!supervisely_lib/__init__.py\nother\n",
        )
        .unwrap();
        let context = Context::open(context.root()).unwrap();
        // As Docker: the directory is sent with only the re-included file.
        assert_eq!(copied(&context, "supervisely_lib").unwrap(), ["w", "w/__init__.py"]);
        assert_eq!(copied(&context, "supervisely_*").unwrap(), ["w", "w/__init__.py"]);
        // A directory nothing re-includes stays excluded.
        assert!(copied(&context, "other").unwrap_err().contains("excluded by .dockerignore"));
    }

    #[test]
    fn excluded_directories_are_entered_only_for_an_exception_written_into_them() {
        // What Docker 20.10 sends (tests/it/docker.rs checks the table on a real engine).
        let (_dir, context) = context(&["src/a", "src/x/keep", "src/x/y/keep", "keep", "lib/b/keep"]);
        fs::write(context.root().join(".dockerignore"), "src/**\n!src/**/keep\nlib\n!lib/b/keep\n").unwrap();
        let context = Context::open(context.root()).unwrap();
        let paths = copied(&context, ".").unwrap();
        assert!(
            paths.contains(&"w/keep".to_string()) && paths.contains(&"w/lib/b/keep".to_string()),
            "{paths:?}"
        );
        assert!(!paths.iter().any(|p| p.starts_with("w/src/x")), "{paths:?}");
    }

    #[test]
    fn modes_are_normalised_unless_preserved() {
        use std::os::unix::fs::PermissionsExt;
        let (dir, context) = context(&["d/secret", "d/run.sh", "d/ro", "d/tmp/x"]);
        for (path, mode) in [("d/secret", 0o600), ("d/run.sh", 0o700), ("d/ro", 0o444), ("d/tmp", 0o1777)] {
            fs::set_permissions(dir.path().join(path), fs::Permissions::from_mode(mode)).unwrap();
        }
        let modes = |preserve_modes: bool| -> Vec<(String, u32)> {
            let options = CopyOptions { preserve_modes, ..CopyOptions::default() };
            let tree = context.plan_copy(&["d".to_string()], "/w/", "/", options).unwrap();
            tree.iter()
                .filter(|(p, _)| *p != "w" && *p != "w/tmp/x")
                .map(|(p, n)| (p.to_string(), n.mode))
                .collect()
        };
        let owned = |v: &[(&str, u32)]| v.iter().map(|(p, m)| (p.to_string(), *m)).collect::<Vec<_>>();
        assert_eq!(
            modes(false),
            owned(&[("w/ro", 0o644), ("w/run.sh", 0o755), ("w/secret", 0o644), ("w/tmp", 0o755)])
        );
        assert_eq!(
            modes(true),
            owned(&[("w/ro", 0o444), ("w/run.sh", 0o700), ("w/secret", 0o600), ("w/tmp", 0o1777)])
        );
    }

    #[test]
    fn a_symlink_loop_and_an_overlong_path_say_what_they_are() {
        let (dir, context) = context(&["src/a.py"]);
        std::os::unix::fs::symlink("loop", dir.path().join("loop")).unwrap();
        assert!(copied(&context, "loop").unwrap_err().starts_with("`loop` is a symlink loop"));
        let long = format!("src/{}", "x/".repeat(2100));
        let err = copied(&context, &long).unwrap_err();
        assert!(err.contains("is longer than the system allows"), "{err}");
    }
}
