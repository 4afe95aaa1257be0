//! `ADD` of a local tar archive: its entries are extracted into the
//! destination directory, keeping the archive's modes and owners (unless
//! `--chown`/`--chmod` say otherwise), as Docker does. Archives are
//! recognised by content: plain tar, or gzip-compressed tar; other
//! compressions are refused with a clear message rather than copied as
//! files. File contents are spooled to disk so memory stays constant.

use std::fs::File;
use std::io;
use std::path::Path;

use forge_oci::compression::{read_up_to, Compression, Decoder};
use forge_oci::{read_tar, NodeKind, Spool, TarError, Tree};

use crate::context::CopyOptions;
use crate::dockerignore::clean;
use crate::error::Refusal;

/// Whether `path` holds a tar archive `ADD` must extract.
pub(crate) fn is_archive(path: &Path) -> Result<bool, Refusal> {
    let mut head = [0u8; 512];
    let n = read_head(path, &mut head)?;
    let head = &head[..n];
    let other = match Compression::sniff(head) {
        Compression::Gzip => {
            let mut inner = [0u8; 512];
            let mut decoder = open(path, Compression::Gzip)?;
            let got = read_up_to(&mut decoder, &mut inner).unwrap_or(0);
            return Ok(got == 512 && is_tar_header(&inner));
        }
        Compression::Zstd => Some("zstd"),
        Compression::None => OTHERS.iter().find(|(magic, _)| head.starts_with(magic)).map(|(_, name)| *name),
    };
    if let Some(name) = other {
        return Err(Refusal::new(format!(
            "{} is compressed with {name}, which ADD does not extract here",
            path.display()
        ))
        .help("use a .tar or .tar.gz archive, or COPY the file as it is"));
    }
    Ok(n == 512 && is_tar_header(head))
}

fn is_tar_header(block: &[u8]) -> bool {
    // "ustar" magic (POSIX and GNU) at offset 257.
    block.len() >= 263 && &block[257..262] == b"ustar"
}

/// Compressions `ADD` recognises but does not extract, besides zstd.
const OTHERS: [(&[u8], &str); 2] = [(b"BZh", "bzip2"), (&[0xfd, b'7', b'z', b'X', b'Z', 0], "xz")];

fn read_head(path: &Path, buf: &mut [u8]) -> Result<usize, Refusal> {
    let mut file = File::open(path).map_err(|e| io_refusal(path, e))?;
    read_up_to(&mut file, buf).map_err(|e| io_refusal(path, e))
}

/// The archive at `path`, decompressed.
fn open(path: &Path, compression: Compression) -> Result<Decoder<File>, Refusal> {
    let file = File::open(path).map_err(|e| io_refusal(path, e))?;
    Decoder::new(file, compression).ok_or_else(|| {
        Refusal::new(format!(
            "{} is compressed with {}, which ADD does not extract here",
            path.display(),
            compression.name()
        ))
    })
}

fn io_refusal(path: &Path, e: io::Error) -> Refusal {
    Refusal::new(format!("cannot read {}: {e}", path.display()))
}

/// Adds the entries of the archive at `path` under the absolute directory
/// `dest` to `tree`, spooling file contents into `spool`.
pub(crate) fn extract_into(
    path: &Path,
    dest: &str,
    options: CopyOptions,
    spool: &mut Spool,
    tree: &mut Tree,
) -> Result<(), Refusal> {
    let mut head = [0u8; 4];
    let n = read_head(path, &mut head)?;
    let reader = open(path, Compression::sniff(&head[..n]))?;
    let base = dest.trim_start_matches('/');
    let join = |name: &str| if base.is_empty() { name.to_string() } else { format!("{base}/{name}") };
    let read = read_tar(reader, spool, |name, mut node| {
        let cleaned = clean(name.trim_start_matches('/'));
        if cleaned == ".." || cleaned.starts_with("../") {
            return Err(Refusal::new(format!(
                "archive {} has an entry `{name}` that leaves the destination",
                path.display()
            )));
        }
        if cleaned == "." {
            return Ok(());
        }
        if let Some((uid, gid)) = options.chown {
            (node.uid, node.gid) = (uid, gid);
        }
        if let Some(mode) = options.chmod {
            node.mode = mode;
        }
        if let NodeKind::Hardlink { target } = &mut node.kind {
            *target = join(&clean(target.trim_start_matches('/')));
        }
        // A layer cannot hold an entry under a symlink or a file: say so
        // here, at the ADD, instead of when the layer is written.
        let target = join(&cleaned);
        let mut ancestor = target.as_str();
        while let Some((parent, _)) = ancestor.rsplit_once('/') {
            if let Some(found) = tree.get(parent).filter(|n| !n.is_dir()) {
                let what =
                    if matches!(found.kind, NodeKind::Symlink { .. }) { "a symlink" } else { "a file" };
                let inside = parent.strip_prefix(&format!("{base}/")).unwrap_or(parent);
                return Err(Refusal::new(format!(
                    "archive {} has `{name}` under `{inside}`, which is {what} in the archive",
                    path.display()
                ))
                .help("rebuild the archive with a directory there, or without the entries under it"));
            }
            ancestor = parent;
        }
        tree.insert(target, node);
        Ok(())
    });
    read.map_err(|e| match e {
        TarError::Visit(refusal) => refusal,
        TarError::Read(e) => Refusal::new(format!("cannot read the archive {}: {e}", path.display())),
        TarError::Spool { path: spooled, source } => io_refusal(&spooled, source),
        TarError::Unsupported { name, what } => Refusal::new(format!(
            "archive {} has an entry `{name}` that is {what}, which ADD cannot extract",
            path.display()
        ))
        .help("repack the archive without it (GNU tar 1.27 or later, or `bsdtar`)"),
        TarError::NonUtf8 { name } => Refusal::new(format!(
            "archive {} has an entry named `{name}` that is not valid UTF-8",
            path.display()
        ))
        .help("rename the entry: plugin-forge keeps names exactly and refuses to replace bytes"),
    })
}
