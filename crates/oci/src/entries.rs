//! The one reader of tar entries: layers and the archives read into trees.
//!
//! Every walk over the entries of a tar goes through [`LayerReader`]:
//! [`read_tar`] (archives `ADD` extracts, the data of `.deb` packages), the
//! sandbox's unpacking of layers to disk and the merged view of a stored
//! image's layers ([`crate::files::ImageLayers`]). Each [`LayerEntry`] comes
//! with its kind, its name as stored and normalised ([`LayerEntry::path`]),
//! its link target, its OCI whiteout meaning ([`Marker`]: `.wh.NAME` hides
//! `NAME` of the layers below, `.wh..wh..opq` empties its directory of
//! them), its mode and owner, and content that reads as the file it was
//! made from: GNU and PAX (formats 0.1 and 1.0) sparse files are expanded;
//! global PAX headers are skipped.
//!
//! What a name may be stays with the caller, whose rules differ: [`read_tar`]
//! refuses names that are not UTF-8 (a [`Tree`](crate::Tree) keeps names as
//! given and must not merge two), the sandbox keeps a layer's bytes as they
//! are and refuses paths that leave its root.

use std::io::{self, Read};
use std::path::PathBuf;

use crate::files::normalize;
use crate::tree::{DeviceKind, Node, NodeKind, Spool, OPAQUE_MARKER, WHITEOUT_PREFIX};

/// Why [`read_tar`] stopped.
#[derive(Debug, thiserror::Error)]
pub enum TarError<E> {
    /// The archive could not be read (or is not a tar).
    #[error("reading the archive")]
    Read(#[source] io::Error),
    /// A spool file could not be written.
    #[error("spooling to {}", path.display())]
    Spool {
        /// The spool file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// An entry's name or link target is not UTF-8: layers keep names as
    /// given, and replacing bytes could merge two files into one.
    #[error("the archive has an entry named `{name}` that is not valid UTF-8")]
    NonUtf8 {
        /// The name with its invalid bytes as `\xNN`.
        name: String,
    },
    /// An entry of a kind we cannot extract faithfully (a multi-volume
    /// header, an old sparse format): refused rather than dropped.
    #[error("the archive's entry `{name}` is {what}, which cannot be extracted")]
    Unsupported {
        /// The entry's name.
        name: String,
        /// What it is.
        what: String,
    },
    /// The visitor refused an entry.
    #[error(transparent)]
    Visit(E),
}

impl TarError<std::convert::Infallible> {
    pub(crate) fn widen<E>(self) -> TarError<E> {
        match self {
            TarError::Read(e) => TarError::Read(e),
            TarError::Spool { path, source } => TarError::Spool { path, source },
            TarError::NonUtf8 { name } => TarError::NonUtf8 { name },
            TarError::Unsupported { name, what } => TarError::Unsupported { name, what },
            TarError::Visit(never) => match never {},
        }
    }
}

/// A tar stream read entry by entry; see the [module docs](self).
pub struct LayerReader<R: Read> {
    archive: tar::Archive<R>,
}

impl<R: Read> std::fmt::Debug for LayerReader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LayerReader").finish_non_exhaustive()
    }
}

impl<R: Read> LayerReader<R> {
    /// Reads the tar stream `reader`.
    pub fn new(reader: R) -> LayerReader<R> {
        LayerReader { archive: tar::Archive::new(reader) }
    }

    /// The entries, in archive order. Each must be used (or dropped) before
    /// the next is read; content not read is skipped.
    pub fn entries(&mut self) -> Result<LayerEntries<'_, R>, ReadError> {
        Ok(LayerEntries { inner: self.archive.entries().map_err(ReadError::Read)? })
    }

    /// The stream, positioned after the end-of-archive blocks (what follows
    /// them is padding, part of a layer's diff ID).
    pub fn into_inner(self) -> R {
        self.archive.into_inner()
    }
}

/// Why a [`LayerReader`] stopped.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The stream could not be read, is not a tar, or has an invalid sparse
    /// map.
    #[error("reading the archive")]
    Read(#[source] io::Error),
    /// A header field of the entry is not a number (its mode, owner, mtime
    /// or device numbers).
    #[error("entry `{name}`: unreadable tar header")]
    Header {
        /// The entry's name as stored, invalid UTF-8 replaced.
        name: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
}

impl ReadError {
    /// The cause, for callers that report every read failure alike.
    pub fn into_io(self) -> io::Error {
        match self {
            ReadError::Read(e) | ReadError::Header { source: e, .. } => e,
        }
    }
}

/// The entries of a [`LayerReader`].
pub struct LayerEntries<'a, R: 'a + Read> {
    inner: tar::Entries<'a, R>,
}

impl<R: Read> std::fmt::Debug for LayerEntries<'_, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LayerEntries").finish_non_exhaustive()
    }
}

impl<'a, R: Read> Iterator for LayerEntries<'a, R> {
    type Item = Result<LayerEntry<'a, R>, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let entry = match self.inner.next()? {
                Ok(entry) => entry,
                Err(e) => return Some(Err(ReadError::Read(e))),
            };
            match LayerEntry::new(entry) {
                Ok(Some(entry)) => return Some(Ok(entry)),
                Ok(None) => continue,
                Err(e) => return Some(Err(e)),
            }
        }
    }
}

/// What an entry is, by its tar type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// A directory.
    Dir,
    /// A regular file (or a GNU or PAX sparse file, expanded) of `size` bytes.
    File {
        /// The size of the content as read.
        size: u64,
    },
    /// A symbolic link ([`LayerEntry::link_bytes`] is the target).
    Symlink,
    /// A hard link to an earlier entry ([`LayerEntry::link_bytes`]).
    Hardlink,
    /// A device node or a FIFO.
    Device {
        /// Character or block device, or FIFO.
        kind: DeviceKind,
        /// The major number (0 for a FIFO).
        major: u32,
        /// The minor number (0 for a FIFO).
        minor: u32,
    },
    /// Any other type (a multi-volume header, a GNU dump directory), by its
    /// tar type flag: callers refuse or skip it, never take it for a file.
    Other(u8),
}

/// What an entry means as an OCI whiteout, by its last name component.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marker<'e> {
    /// `.wh.NAME`: deletes `NAME` from its directory in the layers below
    /// (the name as stored: empty, `.` or `..` in a hostile layer).
    Whiteout(&'e str),
    /// `.wh..wh..opq`: hides what the layers below have in its directory.
    Opaque,
}

/// One entry of a [`LayerReader`]: its header read, its content readable
/// (`Read`) as the file it was made from.
pub struct LayerEntry<'a, R: 'a + Read> {
    name: Vec<u8>,
    link: Option<Vec<u8>>,
    /// What the entry is.
    pub kind: EntryKind,
    content: Content<'a, R>,
}

enum Content<'a, R: 'a + Read> {
    Plain(tar::Entry<'a, R>),
    Sparse(SparseReader<tar::Entry<'a, R>>),
}

impl<R: Read> std::fmt::Debug for LayerEntry<'_, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LayerEntry")
            .field("name", &escape_name(&self.name))
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

impl<'a, R: Read> LayerEntry<'a, R> {
    /// Reads the header of `entry`; `None` for a global PAX header.
    fn new(mut entry: tar::Entry<'a, R>) -> Result<Option<LayerEntry<'a, R>>, ReadError> {
        let sparse = pax_sparse(&mut entry).map_err(ReadError::Read)?;
        let name = match &sparse {
            Some(PaxSparse { name: Some(real), .. }) => real.clone(),
            _ => entry.path_bytes().into_owned(),
        };
        let header = entry.header();
        let bad = |source| ReadError::Header { name: String::from_utf8_lossy(&name).into_owned(), source };
        let device = |kind| -> Result<EntryKind, ReadError> {
            let major = header.device_major().map_err(bad)?.unwrap_or(0);
            let minor = header.device_minor().map_err(bad)?.unwrap_or(0);
            Ok(EntryKind::Device { kind, major, minor })
        };
        let kind = match header.entry_type() {
            tar::EntryType::Directory => EntryKind::Dir,
            tar::EntryType::Symlink => EntryKind::Symlink,
            tar::EntryType::Link => EntryKind::Hardlink,
            tar::EntryType::Char => device(DeviceKind::Char)?,
            tar::EntryType::Block => device(DeviceKind::Block)?,
            tar::EntryType::Fifo => device(DeviceKind::Fifo)?,
            tar::EntryType::XGlobalHeader => return Ok(None),
            // The tar crate expands GNU sparse entries as they are read.
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                EntryKind::File { size: sparse.as_ref().map_or(entry.size(), |s| s.real_size) }
            }
            other => EntryKind::Other(other.as_byte()),
        };
        let link = match kind {
            EntryKind::Symlink | EntryKind::Hardlink => entry.link_name_bytes().map(|l| l.into_owned()),
            _ => None,
        };
        let content = match (kind, sparse) {
            (EntryKind::File { .. }, Some(sparse)) => {
                let shown = String::from_utf8_lossy(&name).into_owned();
                Content::Sparse(sparse.reader(entry, &shown)?)
            }
            _ => Content::Plain(entry),
        };
        Ok(Some(LayerEntry { name, link, kind, content }))
    }

    /// The name as stored (a PAX sparse file's real name), byte for byte.
    pub fn name_bytes(&self) -> &[u8] {
        &self.name
    }

    /// The target of a symlink or hard link as stored; `None` for other
    /// kinds and for a link without a target.
    pub fn link_bytes(&self) -> Option<&[u8]> {
        self.link.as_deref()
    }

    /// The name normalised: no leading or trailing `/`, no empty or `.`
    /// components (`./usr//bin/` is `usr/bin`, the root is `""`); `..` is
    /// kept for the caller to refuse. Invalid UTF-8 is replaced, so use
    /// [`Self::name_bytes`] where names must stay apart.
    pub fn path(&self) -> String {
        normalize(&String::from_utf8_lossy(&self.name))
    }

    /// Whether the content is stored as it reads (not a sparse file), so
    /// that it starts at the stream's position once the entry is read.
    pub(crate) fn is_stored_plain(&self) -> bool {
        matches!(&self.content, Content::Plain(entry) if entry.header().entry_type() != tar::EntryType::GNUSparse)
    }

    /// The permission bits, including setuid, setgid and sticky. Header
    /// fields are read when asked, so that a caller reads only those it
    /// uses.
    pub fn mode(&self) -> Result<u32, ReadError> {
        Ok(self.header().mode().map_err(|e| self.bad_header(e))? & 0o7777)
    }

    /// The numeric owner and group.
    pub fn owner(&self) -> Result<(u64, u64), ReadError> {
        let header = self.header();
        Ok((header.uid().map_err(|e| self.bad_header(e))?, header.gid().map_err(|e| self.bad_header(e))?))
    }

    /// The mtime.
    pub fn mtime(&self) -> Result<u64, ReadError> {
        self.header().mtime().map_err(|e| self.bad_header(e))
    }

    fn header(&self) -> &tar::Header {
        match &self.content {
            Content::Plain(entry) => entry.header(),
            Content::Sparse(sparse) => sparse.data.header(),
        }
    }

    fn bad_header(&self, source: io::Error) -> ReadError {
        ReadError::Header { name: String::from_utf8_lossy(&self.name).into_owned(), source }
    }

    /// What the entry means as a whiteout, by its last name component,
    /// whatever its type (as containerd and umoci read it).
    pub fn marker(&self) -> Option<Marker<'_>> {
        let last = self.name.split(|&b| b == b'/').rfind(|c| !c.is_empty() && *c != b".")?;
        let hidden = std::str::from_utf8(last).ok()?.strip_prefix(WHITEOUT_PREFIX)?;
        if last == OPAQUE_MARKER.as_bytes() {
            Some(Marker::Opaque)
        } else {
            Some(Marker::Whiteout(hidden))
        }
    }
}

impl<R: Read> Read for LayerEntry<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match &mut self.content {
            Content::Plain(entry) => entry.read(buf),
            Content::Sparse(sparse) => sparse.read(buf),
        }
    }
}

/// Reads the tar stream `reader` and hands each entry to `visit` as a node
/// under its name (as in the archive: callers clean and map it, and the
/// targets of hard links; a name that is not UTF-8 is refused). Modes keep
/// their permission bits and owners are the archive's; regular files are
/// spooled into `spool` (constant memory, content digest known). Sparse
/// files (GNU, and PAX formats 0.1 and 1.0) are expanded; device nodes and
/// FIFOs are kept; global PAX headers are skipped; any other entry type is
/// refused ([`TarError::Unsupported`]), never dropped. Whiteouts are not
/// interpreted: a `.wh.` file is a file here.
pub fn read_tar<E>(
    reader: impl Read,
    spool: &mut Spool,
    mut visit: impl FnMut(String, Node) -> Result<(), E>,
) -> Result<(), TarError<E>> {
    let mut archive = LayerReader::new(reader);
    for entry in archive.entries().map_err(|e| TarError::Read(e.into_io()))? {
        let mut entry = entry.map_err(|e| TarError::Read(e.into_io()))?;
        let name = utf8(entry.name_bytes())?;
        let read = |e: ReadError| TarError::Read(e.into_io());
        let mode = entry.mode().map_err(read)?;
        let (uid, gid) = entry.owner().map_err(read)?;
        let link = |entry: &LayerEntry<'_, _>| utf8(entry.link_bytes().unwrap_or_default());
        let kind = match entry.kind {
            EntryKind::Dir => NodeKind::Dir,
            EntryKind::Symlink => NodeKind::Symlink { target: link(&entry)? },
            EntryKind::Hardlink => NodeKind::Hardlink { target: link(&entry)? },
            EntryKind::Device { kind, major, minor } => NodeKind::Device { kind, major, minor },
            EntryKind::File { .. } => {
                let (source, size) = spool.spool(&mut entry).map_err(TarError::widen)?;
                NodeKind::File { size, source }
            }
            EntryKind::Other(byte) => {
                let what = format!("a tar entry of type `{}`", char::from(byte).escape_default());
                return Err(TarError::Unsupported { name, what });
            }
        };
        let node = Node { kind, mode, uid, gid };
        visit(name, node).map_err(TarError::Visit)?;
    }
    Ok(())
}

/// A PAX sparse file (GNU tar's `--sparse --format=posix`): the real name
/// and size, and where the map of data segments is.
struct PaxSparse {
    /// `GNU.sparse.name`, the file's real name.
    name: Option<Vec<u8>>,
    /// `GNU.sparse.realsize` (or `GNU.sparse.size`), the expanded size.
    real_size: u64,
    /// Format 0.1's `GNU.sparse.map`; `None` for format 1.0, whose map
    /// starts the entry's data.
    map: Option<Vec<(u64, u64)>>,
}

/// The most segments a sparse map may list: beyond, the map is not a map.
const MAX_SPARSE_SEGMENTS: u64 = 1 << 20;

fn pax_sparse<R: Read>(entry: &mut tar::Entry<'_, R>) -> io::Result<Option<PaxSparse>> {
    let invalid =
        |what: &str| io::Error::new(io::ErrorKind::InvalidData, format!("invalid PAX sparse header: {what}"));
    let Some(extensions) = entry.pax_extensions()? else { return Ok(None) };
    let (mut major, mut minor, mut name, mut real_size, mut map, mut old_format) =
        (None, None, None, None, None, false);
    for extension in extensions {
        let extension = extension?;
        let value =
            || std::str::from_utf8(extension.value_bytes()).map_err(|_| invalid("a value is not UTF-8"));
        let number = || value()?.trim().parse::<u64>().map_err(|_| invalid("a number is not one"));
        match extension.key_bytes() {
            b"GNU.sparse.major" => major = Some(number()?),
            b"GNU.sparse.minor" => minor = Some(number()?),
            b"GNU.sparse.name" => name = Some(extension.value_bytes().to_vec()),
            b"GNU.sparse.realsize" | b"GNU.sparse.size" => real_size = Some(number()?),
            b"GNU.sparse.map" => {
                let numbers: Vec<u64> = value()?
                    .split(',')
                    .map(|n| n.trim().parse::<u64>().map_err(|_| invalid("the map has a bad number")))
                    .collect::<io::Result<_>>()?;
                if !numbers.len().is_multiple_of(2) {
                    return Err(invalid("the map has an odd count of numbers"));
                }
                map = Some(numbers.chunks(2).map(|c| (c[0], c[1])).collect());
            }
            b"GNU.sparse.offset" | b"GNU.sparse.numbytes" => old_format = true,
            _ => {}
        }
    }
    let Some(real_size) = real_size else { return Ok(None) };
    if old_format {
        return Err(invalid(
            "format 0.0 (GNU.sparse.offset) is not supported; repack with GNU tar 1.27 or later",
        ));
    }
    match (major, minor, &map) {
        (Some(1), Some(0), None) | (None | Some(0), None | Some(1), Some(_)) => {}
        _ => return Err(invalid("unknown format version")),
    }
    Ok(Some(PaxSparse { name, real_size, map }))
}

impl PaxSparse {
    /// A reader of the expanded content of the sparse entry `data`.
    fn reader<R: Read>(self, mut data: R, name: &str) -> Result<SparseReader<R>, ReadError> {
        let invalid = |what: String| {
            ReadError::Read(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("sparse file `{name}`: {what}"),
            ))
        };
        let mut consumed = 0u64;
        let segments = match self.map {
            Some(map) => map,
            None => {
                // Format 1.0: decimal numbers, one a line (the count, then
                // offset and size pairs), padded to a 512-byte block.
                let mut line = |consumed: &mut u64| -> Result<u64, ReadError> {
                    let mut text = Vec::new();
                    loop {
                        let mut byte = [0u8];
                        data.read_exact(&mut byte).map_err(ReadError::Read)?;
                        *consumed += 1;
                        if byte[0] == b'\n' {
                            break;
                        }
                        if text.len() >= 20 || !byte[0].is_ascii_digit() {
                            return Err(invalid("the map is not decimal numbers".into()));
                        }
                        text.push(byte[0]);
                    }
                    String::from_utf8_lossy(&text)
                        .parse()
                        .map_err(|_| invalid("an empty line in the map".into()))
                };
                let count = line(&mut consumed)?;
                if count > MAX_SPARSE_SEGMENTS {
                    return Err(invalid(format!("{count} segments")));
                }
                let mut map = Vec::new();
                for _ in 0..count {
                    map.push((line(&mut consumed)?, line(&mut consumed)?));
                }
                let padding = (512 - consumed % 512) % 512;
                io::copy(&mut (&mut data).take(padding), &mut io::sink()).map_err(ReadError::Read)?;
                map
            }
        };
        let mut end = 0u64;
        for &(offset, size) in &segments {
            let segment_end =
                offset.checked_add(size).ok_or_else(|| invalid("a segment overflows".into()))?;
            if offset < end || segment_end > self.real_size {
                return Err(invalid("segments overlap, are out of order or pass the end".into()));
            }
            end = segment_end;
        }
        Ok(SparseReader {
            data,
            segments: segments.into_iter(),
            position: 0,
            current: None,
            real_size: self.real_size,
        })
    }
}

/// The expanded content of a sparse file: zeros between the data segments.
struct SparseReader<R> {
    data: R,
    segments: std::vec::IntoIter<(u64, u64)>,
    position: u64,
    /// The segment being read: its offset and size.
    current: Option<(u64, u64)>,
    real_size: u64,
}

impl<R: Read> Read for SparseReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            let (offset, size) = match self.current {
                Some(segment) => segment,
                None => match self.segments.next() {
                    Some(segment) => {
                        self.current = Some(segment);
                        segment
                    }
                    // After the last segment, zeros up to the real size.
                    None => (self.real_size, 0),
                },
            };
            if self.position < offset {
                let n = buf.len().min(usize::try_from(offset - self.position).unwrap_or(usize::MAX));
                buf[..n].fill(0);
                self.position += n as u64;
                return Ok(n);
            }
            let end = offset + size;
            if self.position < end {
                let want = buf.len().min(usize::try_from(end - self.position).unwrap_or(usize::MAX));
                let n = self.data.read(&mut buf[..want])?;
                if n == 0 {
                    return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "sparse file data ends early"));
                }
                self.position += n as u64;
                return Ok(n);
            }
            if self.current.take().is_none() {
                return Ok(0);
            }
        }
    }
}

fn utf8<E>(bytes: &[u8]) -> Result<String, TarError<E>> {
    std::str::from_utf8(bytes).map(str::to_owned).map_err(|_| TarError::NonUtf8 { name: escape_name(bytes) })
}

/// A file name for messages: valid UTF-8 as it is, every other byte as
/// `\xNN`, so two names that differ only in invalid bytes stay apart.
pub fn escape_name(bytes: &[u8]) -> String {
    let mut out = String::new();
    for chunk in bytes.utf8_chunks() {
        out.push_str(chunk.valid());
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::os::unix::ffi::OsStrExt;

    use super::*;
    use crate::digest::Digest;
    use crate::tree::FileSource;

    /// A ustar header: `kind`, `mode`, owner `uid`:0, `size` bytes.
    pub(super) fn header(kind: tar::EntryType, mode: u32, uid: u64, size: u64) -> tar::Header {
        let mut header = tar::Header::new_ustar();
        header.set_entry_type(kind);
        header.set_mode(mode);
        header.set_uid(uid);
        header.set_gid(0);
        header.set_size(size);
        header
    }

    #[test]
    fn tar_entries_become_nodes_with_spooled_content() {
        let mut tar = tar::Builder::new(Vec::new());
        let mut file = header(tar::EntryType::Regular, 0o100755, 7, 5);
        tar.append_data(&mut file, "./bin/tool", &b"hello"[..]).unwrap();
        let mut link = header(tar::EntryType::Link, 0o644, 0, 0);
        tar.append_link(&mut link, "bin/again", "/bin/tool").unwrap();
        let bytes = tar.into_inner().unwrap();

        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::new(&dir.path().join("spool")).unwrap();
        let mut seen = Vec::new();
        read_tar::<()>(&bytes[..], &mut spool, |name, node| {
            seen.push((name, node));
            Ok(())
        })
        .unwrap();
        assert_eq!(seen.len(), 2);
        assert_eq!(seen[0].0, "bin/tool");
        assert_eq!((seen[0].1.mode, seen[0].1.uid), (0o755, 7));
        let NodeKind::File { size: 5, source: FileSource::Spooled { path, digest } } = &seen[0].1.kind else {
            panic!("{:?}", seen[0].1)
        };
        assert_eq!(std::fs::read(path).unwrap(), b"hello");
        assert_eq!(*digest, Digest::of(b"hello"));
        assert_eq!(seen[1].1.kind, NodeKind::Hardlink { target: "/bin/tool".into() });
        // Names that are not UTF-8 are refused, never replaced.
        let mut odd = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_size(3);
        header.set_mode(0o644);
        header.set_cksum();
        odd.append_data(&mut header, std::ffi::OsStr::from_bytes(b"src/c\xff"), &b"one"[..]).unwrap();
        let odd = odd.into_inner().unwrap();
        let err = read_tar::<()>(&odd[..], &mut spool, |_, _| Ok(())).unwrap_err();
        assert!(matches!(&err, TarError::NonUtf8 { name } if name == "src/c\\xff"), "{err:?}");
        let refused = read_tar(&bytes[..], &mut spool, |_, _| Err("no"));
        assert!(matches!(refused, Err(TarError::Visit("no"))));
        assert!(matches!(
            read_tar::<()>(&b"not a tar at all"[..], &mut spool, |_, _| Ok(())),
            Err(TarError::Read(_))
        ));
    }
    #[test]
    fn layer_entries_name_kinds_links_and_whiteouts() {
        use tar::EntryType as T;
        let bytes = forge_testkit::raw_tar(
            &[
                ("pax_global_header", T::XGlobalHeader, "", b"6 a=b\n"),
                ("./usr//bin/", T::Directory, "", b""),
                ("./usr/bin/tool", T::Regular, "", b"hello"),
                ("usr/bin/again", T::Link, "./usr/bin/tool", b""),
                ("usr/sbin", T::Symlink, "bin", b""),
                ("etc/.wh.gone", T::Regular, "", b""),
                ("opt/.wh..wh..opq", T::Regular, "", b""),
                ("var/.wh./", T::Directory, "", b""),
                ("vol", T::new(b'V'), "", b""),
            ],
            7,
        );
        let mut reader = LayerReader::new(&bytes[..]);
        let mut seen = Vec::new();
        for entry in reader.entries().unwrap() {
            let mut entry = entry.unwrap();
            let mut content = String::new();
            entry.read_to_string(&mut content).unwrap();
            let link = entry.link_bytes().map(|l| String::from_utf8_lossy(l).into_owned());
            assert_eq!(
                (entry.mode().unwrap(), entry.owner().unwrap(), entry.mtime().unwrap()),
                (if entry.kind == EntryKind::Dir { 0o755 } else { 0o644 }, (0, 0), 7)
            );
            seen.push((entry.path(), entry.kind, link, format!("{:?}", entry.marker()), content));
        }
        let none = || "None".to_string();
        assert_eq!(
            seen,
            [
                ("usr/bin".into(), EntryKind::Dir, None, none(), String::new()),
                ("usr/bin/tool".into(), EntryKind::File { size: 5 }, None, none(), "hello".into()),
                (
                    "usr/bin/again".into(),
                    EntryKind::Hardlink,
                    Some("./usr/bin/tool".into()),
                    none(),
                    String::new()
                ),
                ("usr/sbin".into(), EntryKind::Symlink, Some("bin".into()), none(), String::new()),
                (
                    "etc/.wh.gone".into(),
                    EntryKind::File { size: 0 },
                    None,
                    "Some(Whiteout(\"gone\"))".into(),
                    String::new()
                ),
                (
                    "opt/.wh..wh..opq".into(),
                    EntryKind::File { size: 0 },
                    None,
                    "Some(Opaque)".into(),
                    String::new()
                ),
                ("var/.wh.".into(), EntryKind::Dir, None, "Some(Whiteout(\"\"))".into(), String::new()),
                ("vol".into(), EntryKind::Other(b'V'), None, none(), String::new()),
            ]
        );
        assert!(matches!(
            LayerReader::new(&b"not a tar at all"[..]).entries().unwrap().next(),
            Some(Err(ReadError::Read(_)))
        ));
    }
}

#[cfg(test)]
mod special_entries {
    use std::fs::File;
    use std::io::Write;
    use std::process::Command;

    use super::tests::header;
    use super::*;
    use crate::compression::Compression;
    use crate::layer::LayerOptions;
    use crate::store::BlobStore;
    use crate::tree::Tree;

    fn read_all(archive: &[u8], spool: &mut Spool) -> Result<Vec<(String, Node)>, TarError<()>> {
        let mut seen = Vec::new();
        read_tar::<()>(archive, spool, |name, node| {
            seen.push((name, node));
            Ok(())
        })?;
        Ok(seen)
    }

    fn content(node: &Node) -> Vec<u8> {
        let NodeKind::File { source, size } = &node.kind else { panic!("{node:?}") };
        let bytes = std::fs::read(source.path().unwrap()).unwrap();
        assert_eq!(bytes.len() as u64, *size);
        bytes
    }

    /// GNU tar's sparse formats come out as the file they were made from.
    #[test]
    fn sparse_files_are_expanded() {
        let dir = tempfile::tempdir().unwrap();
        let mut sparse = File::create(dir.path().join("s")).unwrap();
        use std::io::{Seek, SeekFrom};
        sparse.seek(SeekFrom::Start(1 << 20)).unwrap();
        sparse.write_all(b"hello").unwrap();
        sparse.seek(SeekFrom::Start(3 << 20)).unwrap();
        sparse.write_all(b"end").unwrap();
        drop(sparse);
        let original = std::fs::read(dir.path().join("s")).unwrap();
        let mut spool = Spool::new(&dir.path().join("spool")).unwrap();
        for (archive, args) in [
            ("gnu.tar", &["--format=gnu"][..]),
            ("pax1.tar", &["--format=posix"][..]),
            ("pax01.tar", &["--format=posix", "--sparse-version=0.1"][..]),
            ("pax00.tar", &["--format=posix", "--sparse-version=0.0"][..]),
        ] {
            let made = Command::new("tar")
                .current_dir(dir.path())
                .args(["--sparse", "-cf", archive])
                .args(args)
                .arg("s")
                .status();
            if !made.is_ok_and(|s| s.success()) {
                eprintln!("skipped {archive}: GNU tar cannot make it here");
                continue;
            }
            let bytes = std::fs::read(dir.path().join(archive)).unwrap();
            let read = read_all(&bytes, &mut spool);
            if archive == "pax00.tar" {
                let err = read.unwrap_err();
                assert!(format!("{:?}", err).contains("format 0.0"), "{err:?}");
                continue;
            }
            let seen = read.unwrap_or_else(|e| panic!("{archive}: {e:?}"));
            assert_eq!(seen.len(), 1, "{archive}: {seen:?}");
            assert_eq!(seen[0].0, "s", "{archive}");
            assert!(content(&seen[0].1) == original, "{archive}: content differs");
        }
    }

    #[test]
    fn devices_and_fifos_are_kept_and_unknown_entries_refused() {
        let mut tar = tar::Builder::new(Vec::new());
        for (name, kind, major, minor) in [
            ("dev/null", tar::EntryType::Char, 1, 3),
            ("dev/sda", tar::EntryType::Block, 8, 0),
            ("run/fifo", tar::EntryType::Fifo, 0, 0),
        ] {
            let mut device = header(kind, 0o666, 0, 0);
            device.set_device_major(major).unwrap();
            device.set_device_minor(minor).unwrap();
            tar.append_data(&mut device, name, io::empty()).unwrap();
        }
        let bytes = tar.into_inner().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::new(&dir.path().join("spool")).unwrap();
        let seen = read_all(&bytes, &mut spool).unwrap();
        let kinds: Vec<(&str, &NodeKind)> = seen.iter().map(|(n, node)| (n.as_str(), &node.kind)).collect();
        assert_eq!(
            kinds,
            [
                ("dev/null", &NodeKind::Device { kind: DeviceKind::Char, major: 1, minor: 3 }),
                ("dev/sda", &NodeKind::Device { kind: DeviceKind::Block, major: 8, minor: 0 }),
                ("run/fifo", &NodeKind::Device { kind: DeviceKind::Fifo, major: 0, minor: 0 }),
            ]
        );

        // Written into a layer, they read back the same.
        let tree: Tree = seen.into_iter().collect();
        let store = BlobStore::open_or_create(dir.path().join("store")).unwrap();
        let layer = tree.write_layer(&store, LayerOptions { mtime: 0 }, Compression::None).unwrap();
        let mut layer_tar = tar::Archive::new(File::open(store.path(&layer.digest)).unwrap());
        let entries: Vec<(String, u8, Option<u32>, Option<u32>)> = layer_tar
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let h = e.header();
                let name = String::from_utf8_lossy(&e.path_bytes()).into_owned();
                (name, h.entry_type().as_byte(), h.device_major().unwrap(), h.device_minor().unwrap())
            })
            .collect();
        assert_eq!(entries[1], ("dev/null".to_string(), b'3', Some(1), Some(3)));
        assert_eq!(entries[2], ("dev/sda".to_string(), b'4', Some(8), Some(0)));
        assert_eq!(entries[4], ("run/fifo".to_string(), b'6', Some(0), Some(0)));

        let mut tar = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::new(b'V'));
        header.set_size(0);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mode(0o644);
        tar.append_data(&mut header, "volume", io::empty()).unwrap();
        let bytes = tar.into_inner().unwrap();
        let err = read_all(&bytes, &mut spool).unwrap_err();
        assert!(matches!(&err, TarError::Unsupported { name, .. } if name == "volume"), "{err:?}");
    }
}
