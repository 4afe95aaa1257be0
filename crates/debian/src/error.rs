//! The crate's error type: one enum with a structured variant per failure.

use std::path::{Path, PathBuf};

/// Everything that can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A lock or description file that is not a regular file or too large.
    #[error(transparent)]
    Input(#[from] forge_input::InputError),

    /// Control data (deb822) that cannot be read.
    #[error("{file}:{line}: {message}")]
    Deb822 {
        /// What the text came from (a path or a URL).
        file: String,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        message: String,
    },

    /// A Debian version string that is not one.
    #[error("invalid version `{version}`: {message}")]
    Version {
        /// The text given.
        version: String,
        /// What is wrong.
        message: String,
    },

    /// A relationship field (`Depends`, `Provides`, ...) that cannot be parsed.
    #[error("invalid relation `{text}`: {message}")]
    Relation {
        /// The field's value.
        text: String,
        /// What is wrong.
        message: String,
    },

    /// A paragraph (of an index or a Release) without a field we need.
    #[error("{file}:{line}: paragraph has no `{field}` field")]
    MissingField {
        /// What the index came from.
        file: String,
        /// 1-based line where the paragraph starts.
        line: usize,
        /// The missing field.
        field: &'static str,
    },

    /// A field whose value is malformed (e.g. a `Size` that is not a number).
    #[error("{file}:{line}: invalid `{field}` value `{value}`")]
    InvalidField {
        /// What the text came from.
        file: String,
        /// 1-based line where the paragraph starts.
        line: usize,
        /// The field.
        field: String,
        /// Its value.
        value: String,
    },

    /// A dependency that no available package satisfies.
    #[error("cannot satisfy {relation} needed by {}: {reason}", chain.join(" -> "))]
    Unsatisfiable {
        /// The relation as written, e.g. `libfoo (>= 2)`.
        relation: String,
        /// From the requested package to the missing one.
        chain: Vec<String>,
        /// Why, e.g. `only 1.0 is available`.
        reason: String,
    },

    /// A requested package that no available package satisfies.
    #[error("cannot satisfy requested package {relation}: {reason}")]
    NotAvailable {
        /// The request, e.g. `python3`.
        relation: String,
        /// Why.
        reason: String,
    },

    /// A field of a package that cannot be parsed.
    #[error("package {package} {version}: invalid `{field}` field")]
    PackageField {
        /// The package.
        package: String,
        /// Its version.
        version: String,
        /// The field.
        field: &'static str,
        /// Why.
        #[source]
        source: Box<Error>,
    },

    /// A requested package that is also excluded.
    #[error("package {name} is both requested and excluded")]
    RequestedAndExcluded {
        /// The package.
        name: String,
    },

    /// Two chosen packages that may not be installed together.
    #[error("{package} {field} {relation}, but {other} {other_version} is also chosen")]
    Conflict {
        /// The package declaring the conflict.
        package: String,
        /// `Conflicts` or `Breaks`.
        field: &'static str,
        /// The relation as written.
        relation: String,
        /// The chosen package it hits.
        other: String,
        /// That package's version.
        other_version: String,
    },

    /// An installed package that the resolution would break, and that no
    /// version in the index can replace.
    #[error(
        "the installed {package} {version} would break ({reason}), and the index has no newer version of it"
    )]
    BreaksInstalled {
        /// The installed package.
        package: String,
        /// Its version.
        version: String,
        /// What breaks it.
        reason: String,
    },

    /// `gpgv` could not be run at all.
    #[error("cannot run gpgv to verify {file}")]
    GpgvSpawn {
        /// The file to verify.
        file: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },

    /// `gpgv` refused the file: unsigned, badly signed, or signed by an unknown key.
    #[error("signature check of {file} with keyring {keyring} failed: {stderr}")]
    BadSignature {
        /// The file checked.
        file: PathBuf,
        /// The keyring used.
        keyring: PathBuf,
        /// What gpgv said.
        stderr: String,
    },

    /// The Release file is past its `Valid-Until`.
    #[error("the Release file of {suite} expired at {valid_until} (Valid-Until)")]
    Expired {
        /// The suite.
        suite: String,
        /// The `Valid-Until` value.
        valid_until: String,
    },

    /// A date in a Release file that is not RFC 2822.
    #[error("invalid date `{0}` in Release file")]
    Date(String),

    /// The Release file lists no usable index for the component and architecture.
    #[error("the Release file lists no {component}/binary-{architecture}/Packages(.xz|.gz)")]
    NoIndex {
        /// The component, e.g. `main`.
        component: String,
        /// The architecture.
        architecture: String,
    },

    /// A downloaded or cached file whose digest is wrong.
    #[error("sha256 mismatch for {url}: expected {expected}, found {found}")]
    DigestMismatch {
        /// Where it came from.
        url: String,
        /// The digest the index promised.
        expected: String,
        /// The digest of what we got.
        found: String,
    },

    /// A downloaded or cached file whose size is wrong.
    #[error("size mismatch for {url}: expected {expected} bytes, found {found}")]
    SizeMismatch {
        /// Where it came from.
        url: String,
        /// The size the index promised.
        expected: u64,
        /// The size of what we got.
        found: u64,
    },

    /// A digest that is not 64 lowercase hex digits.
    #[error("invalid sha256 digest `{0}`")]
    InvalidDigest(String),

    /// An HTTP request that failed (after retries, for transient failures).
    #[error("fetching {url} failed")]
    Http {
        /// The URL.
        url: String,
        /// Why.
        #[source]
        source: Box<ureq::Error>,
    },

    /// A locked package is no longer in the archive.
    #[error(
        "{package} is no longer in the archive ({url} answers 404): Debian removes superseded versions; \
         run `cargo xtask base-image --update` to lock the current ones"
    )]
    Gone {
        /// `name version`.
        package: String,
        /// Where it was.
        url: String,
    },
    /// An HTTP status that is not success.
    #[error("fetching {url} failed: HTTP status {status}")]
    HttpStatus {
        /// The URL.
        url: String,
        /// The status code.
        status: u16,
    },

    /// A file is not in the cache and we may not fetch.
    #[error("{url} is not in the cache {cache}, and fetching is off")]
    Offline {
        /// The URL wanted.
        url: String,
        /// The cache directory.
        cache: PathBuf,
    },

    /// A file operation that failed.
    #[error(transparent)]
    Io(#[from] forge_input::IoError),

    /// A TOML file (description or lock) that cannot be read.
    #[error("{file}:{line}:{column}: {message}")]
    Toml {
        /// The file.
        file: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column, in characters.
        column: usize,
        /// What is wrong.
        message: String,
    },

    /// A TOML file that parses but says something invalid.
    #[error("{file}: {message}")]
    Invalid {
        /// The file.
        file: PathBuf,
        /// What is wrong.
        message: String,
    },

    /// A file that is not a Debian binary package.
    #[error("{path}: not a Debian package: {message}")]
    NotADeb {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },

    /// A member of a .deb, or an index, compressed with a method we cannot read.
    #[error("{path}: unsupported compression of member `{member}`")]
    UnsupportedCompression {
        /// The file.
        path: PathBuf,
        /// The member name.
        member: String,
    },

    /// A .deb or index whose content cannot be decompressed or unpacked.
    #[error("{path}: reading {member} failed")]
    Archive {
        /// The file.
        path: PathBuf,
        /// The member or entry.
        member: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io(forge_input::IoError::new(op, path, source))
    }
}

/// Reads the TOML file at `path` (a lock or a description): a regular file
/// of at most [`forge_input::LOCK_LIMIT`] bytes, in UTF-8.
pub(crate) fn read_toml(path: &Path) -> Result<String, Error> {
    let not_found = || Error::io("reading", path, std::io::ErrorKind::NotFound.into());
    let bytes = forge_input::read(path, path, forge_input::LOCK_LIMIT)?.ok_or_else(not_found)?;
    String::from_utf8(bytes).map_err(|e| {
        Error::io("reading", path, std::io::Error::new(std::io::ErrorKind::InvalidData, e.utf8_error()))
    })
}
