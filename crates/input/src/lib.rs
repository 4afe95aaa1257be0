//! Reading the small files a user gives us: manifests, Dockerfiles,
//! `.dockerignore`, lock files; [`StatStamp`], what tells one version of a
//! file from another; and the one I/O error shape, [`IoError`],
//! that every crate's error wraps, and [`error_chain`], the one way to
//! print an error with its causes as text; and [`Position`], where in such
//! a file something is.
//!
//! Each is read with a size limit and only when it is a regular file (a
//! symlink to one is fine). A FIFO would block the reader forever, a link to
//! `/dev/zero` would fill memory, a directory has no text: all are refused
//! with an error naming the file and what it is. The open itself never
//! blocks (`O_NONBLOCK`, checked on the opened handle, so a file swapped
//! for a FIFO between a check and the open is refused too).

use std::fs::{File, FileType, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

mod position;

pub use position::Position;

/// What tells one version of a file from another without reading it: its
/// inode, size, mtime and ctime, with nanoseconds. A file rewritten,
/// replaced or touched gets another stamp; what a process learnt by
/// reading a file (its digest, whether it is a key, whether a blob is
/// whole) is remembered by path and stamp, and found again with one `stat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StatStamp(pub [i64; 6]);

impl StatStamp {
    /// The stamp of the file `metadata` describes.
    pub fn of(metadata: &std::fs::Metadata) -> StatStamp {
        use std::os::unix::fs::MetadataExt;
        let m = metadata;
        StatStamp([m.ino() as i64, m.size() as i64, m.mtime(), m.mtime_nsec(), m.ctime(), m.ctime_nsec()])
    }

    /// The stamp of the file at `path`, links followed; `None` when it
    /// cannot be stat'ed.
    pub fn stat(path: &Path) -> Option<StatStamp> {
        std::fs::metadata(path).ok().as_ref().map(StatStamp::of)
    }
}

/// The limit for manifests (`plugin_info.json`, `VERSION`,
/// `predefined_run_configs.json`, `README.md`), Dockerfiles and
/// `.dockerignore`: 1 MiB, far above any real one.
pub const TEXT_LIMIT: u64 = 1 << 20;

/// The limit for lock files and base-image descriptions, which list
/// hundreds of packages: 64 MiB.
pub const LOCK_LIMIT: u64 = 64 << 20;

/// A file system operation failed: what was being done, to which path, and
/// why. Prints as `"{op} {path}"`; the cause is its
/// [`source`](std::error::Error::source), so a `{:#}` chain reads
/// `"{op} {path}: {cause}"`. Every crate's error has one variant that wraps
/// it (`#[error(transparent)] Io(#[from] IoError)`).
#[derive(Debug, thiserror::Error)]
#[error("{op} {}", path.display())]
pub struct IoError {
    /// What was being done, lowercase (`"reading"`, `"creating"`).
    pub op: &'static str,
    /// The file or directory it was done to (or a URL).
    pub path: PathBuf,
    /// The cause.
    #[source]
    pub source: io::Error,
}

impl IoError {
    /// `op` on `path` failed with `source`.
    pub fn new(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> IoError {
        IoError { op, path: path.into(), source }
    }
}

/// An error and its causes on one line, joined by `: `, as `{:#}` of an
/// `anyhow::Error` prints them: for messages that hold an error as text
/// (a validation problem, an installer's error, a JSON report).
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Names the operation and the path of an [`io::Result`]'s error:
/// `fs::read(&path).io("reading", &path)?`, the `?` converting the
/// [`IoError`] into the caller's error.
pub trait IoResultExt<T> {
    /// The error, if any, as an [`IoError`] of `op` on `path`.
    fn io(self, op: &'static str, path: impl AsRef<Path>) -> Result<T, IoError>;
}

impl<T> IoResultExt<T> for io::Result<T> {
    fn io(self, op: &'static str, path: impl AsRef<Path>) -> Result<T, IoError> {
        self.map_err(|source| IoError::new(op, path.as_ref(), source))
    }
}

/// Why a file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// The file exists but could not be opened or read (`op` is
    /// `"cannot read"`).
    #[error(transparent)]
    Io(IoError),
    /// The file is not a regular file.
    #[error("{} is {kind}, not a regular file", path.display())]
    NotRegular {
        /// The file.
        path: PathBuf,
        /// What it is instead: "a FIFO", "a directory", ...
        kind: &'static str,
    },
    /// The file is larger than its limit.
    #[error("{} is larger than {}, the limit for this file", path.display(), human(*limit))]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The limit, in bytes.
        limit: u64,
    },
}

impl InputError {
    /// The file the error is about.
    pub fn path(&self) -> &Path {
        match self {
            InputError::Io(IoError { path, .. })
            | InputError::NotRegular { path, .. }
            | InputError::TooLarge { path, .. } => path,
        }
    }

    /// What is wrong, after the file's name: "is a FIFO (named pipe), not a
    /// regular file" (for messages that name the file elsewhere).
    pub fn reason(&self) -> String {
        match self {
            InputError::Io(IoError { source, .. }) => format!("cannot be read: {source}"),
            InputError::NotRegular { kind, .. } => format!("is {kind}, not a regular file"),
            InputError::TooLarge { limit, .. } => {
                format!("is larger than {}, the limit for this file", human(*limit))
            }
        }
    }

    /// What to do about it.
    pub fn help(&self) -> &'static str {
        match self {
            InputError::Io(_) => "fix the file's permissions",
            InputError::NotRegular { .. } => "replace it with a regular file",
            InputError::TooLarge { .. } => "this file is read whole; keep it small",
        }
    }
}

/// Reads the regular file at `path`, at most `limit` bytes; `Ok(None)` when
/// nothing is there (a dangling symlink included). Errors name `shown`, the
/// path as the user knows it (relative to the monorepo root, say).
pub fn read(path: &Path, shown: &Path, limit: u64) -> Result<Option<Vec<u8>>, InputError> {
    let Some(file) = open(path, shown)? else { return Ok(None) };
    let mut bytes = Vec::new();
    let io_error = |source| cannot_read(shown, source);
    file.take(limit + 1).read_to_end(&mut bytes).map_err(io_error)?;
    if bytes.len() as u64 > limit {
        return Err(InputError::TooLarge { path: shown.to_path_buf(), limit });
    }
    Ok(Some(bytes))
}

/// Opens the regular file at `path` without blocking; `None` when absent.
fn open(path: &Path, shown: &Path) -> Result<Option<File>, InputError> {
    let io_error = |source| cannot_read(shown, source);
    let file = match OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY).open(path)
    {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        // A socket cannot be opened (ENXIO): say what it is rather than why
        // the open failed.
        Err(e) => {
            return Err(match std::fs::metadata(path).ok().and_then(|m| kind(m.file_type())) {
                Some(kind) => InputError::NotRegular { path: shown.to_path_buf(), kind },
                None => io_error(e),
            })
        }
    };
    check_regular(&file, shown)?;
    Ok(Some(file))
}

/// Opens the regular file at `path` for streaming (no size limit: a file
/// a build copies), with the checks of [`read`]: the open never blocks,
/// and a FIFO, device, socket or directory in its place (one swapped in
/// since the file was planned, say) is [`InputError::NotRegular`]. A
/// missing file is [`InputError::Io`].
pub fn open_regular(path: &Path) -> Result<File, InputError> {
    open(path, path)?.ok_or_else(|| cannot_read(path, io::ErrorKind::NotFound.into()))
}

/// The first `n` bytes (or fewer) of the regular file at `path`, for
/// sniffing content; the same checks as [`read`], and no size limit
/// beyond `n`.
pub fn read_head(path: &Path, n: u64) -> Result<Vec<u8>, InputError> {
    let file = open_regular(path)?;
    let mut bytes = Vec::new();
    file.take(n).read_to_end(&mut bytes).map_err(|source| cannot_read(path, source))?;
    Ok(bytes)
}

/// The error of a file that exists but could not be opened or read.
fn cannot_read(path: &Path, source: io::Error) -> InputError {
    InputError::Io(IoError::new("cannot read", path, source))
}

fn check_regular(file: &File, shown: &Path) -> Result<(), InputError> {
    let meta = file.metadata().map_err(|source| cannot_read(shown, source))?;
    match kind(meta.file_type()) {
        None => Ok(()),
        Some(kind) => Err(InputError::NotRegular { path: shown.to_path_buf(), kind }),
    }
}

/// What a file is when it is not a regular one.
fn kind(ft: FileType) -> Option<&'static str> {
    if ft.is_dir() {
        Some("a directory")
    } else {
        special_kind(ft)
    }
}

/// What a path is when it is not a regular file, a directory or a symlink
/// (`None` for those), in the words of [`InputError::NotRegular`]: for
/// walkers that must refuse special files too.
pub fn special_kind(ft: FileType) -> Option<&'static str> {
    if ft.is_file() || ft.is_dir() || ft.is_symlink() {
        None
    } else if ft.is_fifo() {
        Some("a FIFO (named pipe)")
    } else if ft.is_char_device() {
        Some("a character device")
    } else if ft.is_block_device() {
        Some("a block device")
    } else if ft.is_socket() {
        Some("a socket")
    } else {
        Some("a special file")
    }
}

fn human(bytes: u64) -> String {
    if bytes >= 1 << 20 && bytes.is_multiple_of(1 << 20) {
        format!("{} MiB", bytes >> 20)
    } else if bytes >= 1 << 10 && bytes.is_multiple_of(1 << 10) {
        format!("{} KiB", bytes >> 10)
    } else {
        format!("{bytes} bytes")
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::net::UnixListener;

    use super::*;

    fn err(path: &Path, limit: u64) -> String {
        read(path, Path::new("shown"), limit).unwrap_err().to_string()
    }

    #[test]
    fn regular_files_within_the_limit_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, "12345").unwrap();
        assert_eq!(read(&file, &file, 5).unwrap().unwrap(), b"12345");
        assert_eq!(err(&file, 4), "shown is larger than 4 bytes, the limit for this file");
        std::os::unix::fs::symlink(&file, dir.path().join("link")).unwrap();
        assert_eq!(read(&dir.path().join("link"), &file, 5).unwrap().unwrap(), b"12345");
        assert!(read(&dir.path().join("missing"), &file, 5).unwrap().is_none());
        std::os::unix::fs::symlink("nowhere", dir.path().join("dangling")).unwrap();
        assert!(read(&dir.path().join("dangling"), &file, 5).unwrap().is_none());
    }

    #[test]
    fn io_errors_print_the_operation_and_path_and_keep_the_cause_as_source() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing");
        let err = std::fs::read(&missing).io("reading", &missing).unwrap_err();
        assert_eq!(err.to_string(), format!("reading {}", missing.display()));
        let cause = std::error::Error::source(&err).unwrap();
        assert_eq!(cause.to_string(), err.source.to_string());
        assert_eq!(err.source.kind(), io::ErrorKind::NotFound);
        let unreadable = cannot_read(Path::new("shown"), io::ErrorKind::PermissionDenied.into());
        assert_eq!(unreadable.to_string(), "cannot read shown");
        assert_eq!(unreadable.path(), Path::new("shown"));
    }

    #[test]
    fn an_error_chain_names_every_cause_once() {
        let err = IoError::new("writing", "x", io::Error::other("disk full"));
        assert_eq!(error_chain(&err), "writing x: disk full");
        assert_eq!(error_chain(&io::Error::other("alone")), "alone");
    }

    #[test]
    fn special_files_are_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        // A symlink to /dev/zero would otherwise fill memory.
        std::os::unix::fs::symlink("/dev/zero", dir.path().join("zero")).unwrap();
        assert_eq!(
            err(&dir.path().join("zero"), TEXT_LIMIT),
            "shown is a character device, not a regular file"
        );
        // A FIFO nobody writes to would otherwise block forever.
        let fifo = dir.path().join("fifo");
        let status = std::process::Command::new("mkfifo").arg(&fifo).status().unwrap();
        assert!(status.success());
        assert_eq!(err(&fifo, TEXT_LIMIT), "shown is a FIFO (named pipe), not a regular file");
        assert_eq!(err(dir.path(), TEXT_LIMIT), "shown is a directory, not a regular file");
        let socket = dir.path().join("socket");
        let _listener = UnixListener::bind(&socket).unwrap();
        assert_eq!(err(&socket, TEXT_LIMIT), "shown is a socket, not a regular file");
        assert_eq!(
            InputError::TooLarge { path: "p".into(), limit: TEXT_LIMIT }.to_string(),
            "p is larger than 1 MiB, the limit for this file"
        );
    }

    #[test]
    fn open_regular_streams_regular_files_and_refuses_the_rest_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("big");
        std::fs::write(&file, vec![7u8; 3 << 20]).unwrap();
        let mut bytes = Vec::new();
        open_regular(&file).unwrap().read_to_end(&mut bytes).unwrap();
        assert_eq!(bytes.len(), 3 << 20, "no size limit when streaming");
        let fifo = dir.path().join("fifo");
        assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
        let refused = open_regular(&fifo).unwrap_err().to_string();
        assert_eq!(refused, format!("{} is a FIFO (named pipe), not a regular file", fifo.display()));
        let missing = open_regular(&dir.path().join("missing")).unwrap_err().to_string();
        assert!(missing.starts_with("cannot read "), "{missing}");
    }
}
