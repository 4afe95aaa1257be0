//! `ADD` of a local tar archive: its entries are extracted into the
//! destination directory, keeping the archive's modes and owners (unless
//! `--chown`/`--chmod` say otherwise), as Docker does. Archives are
//! recognised by content: plain tar, or gzip-compressed tar; other
//! compressions are refused with a clear message rather than copied as
//! files. File contents are spooled to disk so memory stays constant.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use flate2::read::GzDecoder;
use sha2::{Digest as _, Sha256};

use crate::context::{CopyOptions, Item, ItemKind, Plan};
use crate::dockerignore::clean;
use crate::error::Refusal;

const GZIP: &[u8] = &[0x1f, 0x8b];
const OTHERS: [(&[u8], &str); 3] =
    [(b"BZh", "bzip2"), (&[0xfd, b'7', b'z', b'X', b'Z', 0], "xz"), (&[0x28, 0xb5, 0x2f, 0xfd], "zstd")];

/// Whether `path` holds a tar archive `ADD` must extract.
pub(crate) fn is_archive(path: &Path) -> Result<bool, Refusal> {
    let mut head = [0u8; 512];
    let n = read_head(path, &mut head)?;
    let head = &head[..n];
    if head.starts_with(GZIP) {
        let mut inner = [0u8; 512];
        let mut decoder = GzDecoder::new(File::open(path).map_err(|e| io_refusal(path, e))?);
        let got = read_full(&mut decoder, &mut inner).unwrap_or(0);
        return Ok(got == 512 && is_tar_header(&inner));
    }
    if let Some((_, name)) = OTHERS.iter().find(|(magic, _)| head.starts_with(magic)) {
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

fn read_head(path: &Path, buf: &mut [u8]) -> Result<usize, Refusal> {
    let mut file = File::open(path).map_err(|e| io_refusal(path, e))?;
    read_full(&mut file, buf).map_err(|e| io_refusal(path, e))
}

fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut total = 0;
    while total < buf.len() {
        match reader.read(&mut buf[total..])? {
            0 => break,
            n => total += n,
        }
    }
    Ok(total)
}

fn io_refusal(path: &Path, e: io::Error) -> Refusal {
    Refusal::new(format!("cannot read {}: {e}", path.display()))
}

/// Adds the entries of the archive at `path` under the absolute directory
/// `dest` to `plan`, spooling file contents into `spool`.
pub(crate) fn extract_into(
    path: &Path,
    dest: &str,
    options: CopyOptions,
    spool: &Path,
    plan: &mut Plan,
) -> Result<(), Refusal> {
    let mut head = [0u8; 2];
    let n = read_head(path, &mut head)?;
    let file = File::open(path).map_err(|e| io_refusal(path, e))?;
    let reader: Box<dyn Read> =
        if head[..n].starts_with(GZIP) { Box::new(GzDecoder::new(file)) } else { Box::new(file) };
    let mut archive = tar::Archive::new(reader);
    let bad = |e: io::Error| Refusal::new(format!("cannot read the archive {}: {e}", path.display()));
    let base = dest.trim_start_matches('/');
    let join = |name: &str| if base.is_empty() { name.to_string() } else { format!("{base}/{name}") };
    std::fs::create_dir_all(spool).map_err(|e| io_refusal(spool, e))?;
    for (index, entry) in archive.entries().map_err(bad)?.enumerate() {
        let mut entry = entry.map_err(bad)?;
        let header = entry.header().clone();
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let cleaned = clean(name.trim_start_matches('/'));
        if cleaned == ".." || cleaned.starts_with("../") {
            return Err(Refusal::new(format!(
                "archive {} has an entry `{name}` that leaves the destination",
                path.display()
            )));
        }
        if cleaned == "." {
            continue;
        }
        let (uid, gid) = match options.chown {
            Some(owner) => owner,
            None => (header.uid().map_err(bad)?, header.gid().map_err(bad)?),
        };
        let mode = options.chmod.unwrap_or(header.mode().map_err(bad)? & 0o7777);
        let target = join(&cleaned);
        let kind = match header.entry_type() {
            tar::EntryType::Directory => ItemKind::Dir,
            tar::EntryType::Symlink => ItemKind::Symlink {
                target: entry
                    .link_name()
                    .map_err(bad)?
                    .map(|l| l.to_string_lossy().into_owned())
                    .unwrap_or_default(),
            },
            tar::EntryType::Link => {
                let link = entry
                    .link_name()
                    .map_err(bad)?
                    .map(|l| l.to_string_lossy().into_owned())
                    .unwrap_or_default();
                ItemKind::Hardlink { target: join(&clean(link.trim_start_matches('/'))) }
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let spooled = spool.join(format!("{index}"));
                let mut out = Hashing {
                    inner: File::create(&spooled).map_err(|e| io_refusal(&spooled, e))?,
                    hash: Sha256::new(),
                };
                let size = io::copy(&mut entry, &mut out).map_err(bad)?;
                let stamp = format!("sha256:{:x}", out.hash.finalize());
                ItemKind::File { source: spooled, size, identity: (0, 0, 1), stamp }
            }
            // Devices, FIFOs and other special entries are left out.
            _ => continue,
        };
        plan.insert(target, Item { kind, mode, uid, gid });
    }
    Ok(())
}

/// Hashes what passes through, so a spooled file's cache stamp is its
/// content, not where it was spooled.
struct Hashing {
    inner: File,
    hash: Sha256,
}

impl io::Write for Hashing {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
