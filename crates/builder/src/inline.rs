//! The files of `COPY <<EOF /path` (and `ADD`): each heredoc becomes one
//! file of the layer, as BuildKit makes it: named after the heredoc's
//! terminator word inside a destination directory (`/dst/`), or the
//! destination itself; mode 0644 unless `--chmod`, owner 0:0 unless
//! `--chown`; the body with `<<-` tabs stripped and, when the word was not
//! quoted, variables expanded (quotes kept, `\` escaping).

use forge_dockerfile::{expand_heredoc, Heredoc, Position};
use forge_oci::{Node, Tree};

use crate::context::{join, layer_path, resolve, CopyOptions};

/// Why a heredoc file cannot be planned: where, what, and what to do.
pub(crate) struct InlineError {
    pub(crate) position: Position,
    pub(crate) message: String,
    pub(crate) help: Option<&'static str>,
}

/// The files `heredocs` make at `dest` (expanded; relative to `workdir`),
/// `others` being how many path sources the instruction also copies.
pub(crate) fn heredoc_files(
    heredocs: &[Heredoc],
    dest: &str,
    workdir: &str,
    options: CopyOptions,
    others: usize,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Tree, InlineError> {
    let dest_is_dir = dest.ends_with('/') || dest.ends_with("/.") || dest == ".";
    let dest_abs = layer_path(&resolve(workdir, dest));
    let mut tree = Tree::new();
    for heredoc in heredocs {
        if heredocs.len() + others > 1 && !dest_is_dir {
            return Err(InlineError {
                position: heredoc.position,
                message: format!(
                    "`{dest}` must be a directory ending in `/`: more than one source is copied"
                ),
                help: Some("write the destination with a trailing `/`"),
            });
        }
        let target = if dest_is_dir { join(&dest_abs, &heredoc.name) } else { dest_abs.clone() };
        if target.is_empty() || heredoc.name.contains('/') && dest_is_dir {
            return Err(InlineError {
                position: heredoc.position,
                message: format!("cannot copy the heredoc `{}` to `{dest}`", heredoc.word),
                help: Some("name a destination file, or use a terminator word without `/`"),
            });
        }
        let data = heredoc.data();
        let content = if heredoc.expand {
            expand_heredoc(&data, lookup).map_err(|e| InlineError {
                position: heredoc.body,
                message: format!("cannot expand the body of heredoc `{}`: {}", heredoc.word, e.kind),
                help: Some("quote the terminator (`<<\"EOF\"`) to copy the body without expanding it"),
            })?
        } else {
            data
        };
        let (uid, gid) = options.chown.unwrap_or((0, 0));
        tree.insert(target, Node::bytes(options.chmod.unwrap_or(0o644), content).owned_by(uid, gid));
    }
    Ok(tree)
}
