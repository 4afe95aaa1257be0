//! Files that must never go into an image (`PF206`): secrets and
//! repository metadata, by [`forge_builder::secrets::classify`], the list
//! the build itself enforces. Files the build never sends are not
//! reported: those `.dockerignore` excludes, and our own output directory.

use std::path::Path;

use forge_builder::secrets::classify;
use forge_builder::Context;
use walkdir::WalkDir;

use crate::diagnostic::{Finding, Sink};
use crate::rules;

/// Reports every forbidden file inside the plugin `root/dir` that a build
/// would send.
pub(crate) fn check(root: &Path, dir: &Path, sink: &mut Sink<'_>) {
    // An invalid .dockerignore fails the build with its own error; here it
    // excludes nothing.
    let context = Context::open(root).ok();
    let mut walk = WalkDir::new(root.join(dir)).follow_links(false).sort_by_file_name().into_iter();
    while let Some(entry) = walk.next() {
        let entry = match entry {
            Ok(entry) => entry,
            Err(err) => {
                let path = err.path().map(|p| p.strip_prefix(root).unwrap_or(p).to_path_buf());
                let mut finding = Finding::new(format!("cannot read: {err}")).help("fix its permissions");
                finding.file = path;
                sink.report(rules::UNREADABLE, finding);
                continue;
            }
        };
        let rel = entry.path().strip_prefix(root).unwrap_or(entry.path());
        let rel_text = rel.to_string_lossy();
        if context.as_ref().is_some_and(|c| c.is_excluded(&rel_text)) {
            continue;
        }
        let ft = entry.file_type();
        if !ft.is_file() && !ft.is_dir() {
            continue;
        }
        let content = ft.is_file().then(|| entry.path());
        let Some(what) = classify(&rel_text, content) else { continue };
        if ft.is_dir() {
            walk.skip_current_dir();
        }
        sink.report(
            rules::FORBIDDEN_FILE,
            Finding::new(format!(
                "{} is {what}; it must never go into an image",
                entry.file_name().to_string_lossy()
            ))
            .in_file(rel)
            .help("delete it, move it out of the plugin directory, or exclude it in .dockerignore"),
        );
    }
}
