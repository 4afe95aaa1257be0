//! The one error type of this crate.
//!
//! Messages say what the user can do about it (check the credentials, the
//! address); the registry's own explanation (`{"errors":[...]}`) is parsed
//! and kept, because "manifest invalid" alone does not say which blob is
//! missing. No variant ever holds a credential or a token.

use std::fmt;
use std::path::PathBuf;

use forge_oci::Digest;

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// One entry of a registry's `{"errors":[{"code","message","detail"}]}`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct RegistryError {
    /// `MANIFEST_INVALID`, `BLOB_UNKNOWN`, `UNAUTHORIZED`, ...
    #[serde(default)]
    pub code: String,
    /// The human-readable message.
    #[serde(default)]
    pub message: String,
}

/// The errors of a registry's error body, or the body itself (cut short)
/// when it is not that JSON.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RegistryErrors {
    /// The parsed entries.
    pub errors: Vec<RegistryError>,
    /// The raw body when it did not parse (at most 1000 characters).
    pub raw: String,
}

impl RegistryErrors {
    /// Parses an error body.
    pub fn parse(body: &[u8]) -> RegistryErrors {
        #[derive(serde::Deserialize)]
        struct Body {
            errors: Vec<RegistryError>,
        }
        match serde_json::from_slice::<Body>(body) {
            Ok(parsed) => RegistryErrors { errors: parsed.errors, raw: String::new() },
            Err(_) => {
                let text = String::from_utf8_lossy(body);
                RegistryErrors { errors: Vec::new(), raw: text.trim().chars().take(1000).collect() }
            }
        }
    }

    /// Whether any entry has `code`.
    pub fn has_code(&self, code: &str) -> bool {
        self.errors.iter().any(|e| e.code == code)
    }
}

impl fmt::Display for RegistryErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.errors.is_empty() {
            return if self.raw.is_empty() { f.write_str("(no details)") } else { f.write_str(&self.raw) };
        }
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{}: {}", e.code, e.message)?;
        }
        Ok(())
    }
}

/// Everything that can go wrong talking to a registry.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A reference does not follow the grammar.
    #[error("invalid image reference `{reference}`: {reason}")]
    InvalidReference {
        /// The text as given.
        reference: String,
        /// What is wrong with it.
        reason: String,
    },

    /// The registry refused our credentials (or wants some and we have none).
    #[error("unauthorized: {host} refused {source_used}; log in with `cargo xtask login {host}` (or check DOCKER_CONFIG)")]
    Unauthorized {
        /// The registry.
        host: String,
        /// Which credentials were sent, from where (never the secret):
        /// [`crate::CredentialSource::describe`].
        source_used: String,
    },

    /// Authenticated, but not allowed to do this.
    #[error("denied: {source_used} for {host} may not {action} {repository}: {errors}")]
    Denied {
        /// The registry.
        host: String,
        /// Which credentials were sent, from where (never the secret).
        source_used: String,
        /// The repository.
        repository: String,
        /// `pull from`, `push to`.
        action: &'static str,
        /// What the registry said.
        errors: Box<RegistryErrors>,
    },

    /// The registry could not be reached, after retries.
    #[error("registry {host} is unreachable ({url})")]
    Unreachable {
        /// The registry.
        host: String,
        /// The URL of the request that failed (no credentials in it).
        url: String,
        /// The cause.
        #[source]
        source: Box<ureq::Error>,
    },

    /// The TLS handshake failed: never retried, as no retry changes a
    /// certificate.
    #[error(
        "TLS with registry {host} failed ({url}): {problem}{}; looked for CA certificates in {}; help: {}",
        certificate.as_ref().map(|c| format!(" ({c})")).unwrap_or_default(),
        looked.join(", "),
        problem.help(crate::tls::authority(url))
    )]
    Tls {
        /// The registry.
        host: String,
        /// The URL of the request (no credentials in it).
        url: String,
        /// What kind of failure.
        problem: crate::tls::TlsProblem,
        /// The certificate the server presented, when it could be read.
        certificate: Option<Box<crate::tls::PeerCertificate>>,
        /// Every place a CA was looked for.
        looked: Vec<String>,
        /// The cause.
        #[source]
        source: Box<ureq::Error>,
    },

    /// A CA or client certificate file we were pointed at is unusable.
    #[error("{}: {reason}", path.display())]
    CertificateFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },

    /// An unexpected HTTP status.
    #[error("{method} {url} answered {status}: {errors}")]
    Status {
        /// The method.
        method: &'static str,
        /// The URL.
        url: String,
        /// The status code.
        status: u16,
        /// What the registry said.
        errors: RegistryErrors,
    },

    /// The registry does not have this image (or tag).
    #[error("{reference}: manifest not found in the registry")]
    ManifestNotFound {
        /// The reference.
        reference: String,
    },

    /// The registry refused the manifest we pushed.
    #[error("the registry rejected the manifest of {reference} ({status}): {errors}")]
    ManifestRejected {
        /// Where it was pushed.
        reference: String,
        /// The status code.
        status: u16,
        /// What the registry said.
        errors: RegistryErrors,
    },

    /// Content received does not hash to the digest it was asked for by.
    #[error("{what} does not match its digest: expected {expected}, found {found}")]
    DigestMismatch {
        /// Which content.
        what: String,
        /// The digest asked for.
        expected: Digest,
        /// The digest of the bytes received.
        found: Digest,
    },

    /// An image index has no manifest for the platform asked for.
    #[error("{reference} has no image for {platform}; available: {}", available.join(", "))]
    NoMatchingPlatform {
        /// The reference.
        reference: String,
        /// The platform asked for.
        platform: String,
        /// The platforms of the index.
        available: Vec<String>,
    },

    /// A manifest of a kind we do not handle (schema 1, artifacts).
    #[error("{reference}: unsupported manifest media type `{media_type}`")]
    UnsupportedMediaType {
        /// The reference.
        reference: String,
        /// The media type found.
        media_type: String,
    },

    /// The registry said something that breaks the protocol.
    #[error("{url}: {reason}")]
    Protocol {
        /// The request's URL.
        url: String,
        /// What was wrong.
        reason: String,
    },

    /// Docker's config file or a credential helper failed.
    #[error("credentials for {host}: {reason}")]
    Credentials {
        /// The registry.
        host: String,
        /// What failed (never the secret itself).
        reason: String,
    },

    /// A file could not be read.
    #[error(transparent)]
    Io(#[from] forge_input::IoError),

    /// The local store failed.
    #[error(transparent)]
    Store(#[from] forge_oci::Error),
}

impl From<forge_oci::DigestError> for Error {
    fn from(e: forge_oci::DigestError) -> Error {
        Error::Store(e.into())
    }
}

impl From<forge_reference::Error> for Error {
    fn from(e: forge_reference::Error) -> Error {
        Error::InvalidReference { reference: e.reference, reason: e.reason }
    }
}
