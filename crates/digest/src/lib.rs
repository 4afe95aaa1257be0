//! sha256 content addresses.
//!
//! Every blob we write, every layer we cache and every Debian file we
//! download is named by the sha256 of its bytes, and that is the only
//! algorithm we accept: the OCI spec allows sha512 too, but no tool in our
//! path produces it, and one algorithm means one file name per content.
//! [`Digest`] is always valid once constructed (64 lowercase hex digits), so
//! it can be put into paths without further checks.
//!
//! [`HashingReader`] and [`HashingWriter`] are the one way content is
//! hashed while it streams: blobs on their way into the store, layers on
//! their way out of a decompressor (the diff ID), spooled archive members,
//! Debian downloads.
//!
//! This crate sits at the bottom of the dependency graph (below
//! `forge-reference`, `forge-oci` and `forge-debian`), so that the hex
//! encoding and the `sha256:` prefix are written once.

#![deny(missing_docs)]

use std::fmt;
use std::io::{self, Read, Write};
use std::str::FromStr;

pub use sha2::Sha256;
use sha2::{Digest as _, Sha256 as Hasher};

/// A string that is not a sha256 digest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid digest `{value}`: {reason}")]
pub struct DigestError {
    /// The text that was parsed.
    pub value: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

/// A validated `sha256:<64 lowercase hex>` digest.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    hex: String,
}

impl Digest {
    /// Parses `sha256:<64 lowercase hex digits>`.
    pub fn parse(text: &str) -> Result<Digest, DigestError> {
        let invalid = |reason| DigestError { value: text.to_owned(), reason };
        let Some((algorithm, hex)) = text.split_once(':') else {
            return Err(invalid("missing `sha256:` prefix"));
        };
        if algorithm != "sha256" {
            return Err(invalid("only sha256 digests are supported"));
        }
        Digest::from_hex(hex).map_err(|_| invalid("expected 64 lowercase hex digits after `sha256:`"))
    }

    /// Builds a digest from its 64 lowercase hex digits (no prefix).
    pub fn from_hex(hex: &str) -> Result<Digest, DigestError> {
        if is_sha256_hex(hex) {
            Ok(Digest { hex: hex.to_owned() })
        } else {
            Err(DigestError { value: hex.to_owned(), reason: "expected 64 lowercase hex digits" })
        }
    }

    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Digest {
        Digest::from_hasher(Hasher::new_with_prefix(bytes))
    }

    /// The digest of everything fed to `hasher`.
    pub fn from_hasher(hasher: Sha256) -> Digest {
        Digest { hex: hex(&hasher.finalize()) }
    }

    /// The 64 hex digits, without `sha256:`.
    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// The digest of a descriptor, rejecting algorithms other than sha256.
    #[cfg(feature = "oci-spec")]
    pub fn from_descriptor(descriptor: &oci_spec::image::Descriptor) -> Result<Digest, DigestError> {
        Digest::parse(descriptor.digest().as_ref())
    }

    /// The same digest as oci-spec's type.
    #[cfg(feature = "oci-spec")]
    pub fn to_oci(&self) -> oci_spec::image::Digest {
        // A `Digest` is always 64 lowercase hex digits, which oci-spec accepts.
        oci_spec::image::Digest::from_str(&self.to_string())
            .expect("a validated sha256 digest is a valid OCI digest")
    }
}

/// Whether `text` is 64 lowercase hex digits (a sha256 without prefix, as
/// Debian's indexes and locks write it).
pub fn is_sha256_hex(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Lowercase hex of `bytes`: the one hex encoder of the workspace.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    out
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest(sha256:{})", self.hex)
    }
}

impl FromStr for Digest {
    type Err = DigestError;

    fn from_str(s: &str) -> Result<Digest, DigestError> {
        Digest::parse(s)
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Digest, D::Error> {
        let text = String::deserialize(deserializer)?;
        Digest::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// Hashes (and counts) the bytes read through it from `inner`.
#[derive(Debug)]
pub struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    size: u64,
}

impl<R> HashingReader<R> {
    /// Starts hashing what is read from `inner`.
    pub fn new(inner: R) -> HashingReader<R> {
        HashingReader { inner, hasher: Hasher::new(), size: 0 }
    }

    /// Bytes read so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The digest of what was read so far.
    pub fn digest(&self) -> Digest {
        Digest::from_hasher(self.hasher.clone())
    }

    /// The reader being hashed.
    pub fn get_mut(&mut self) -> &mut R {
        &mut self.inner
    }

    /// The digest and size of everything read, and the reader.
    pub fn finish(self) -> (Digest, u64, R) {
        (Digest::from_hasher(self.hasher), self.size, self.inner)
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }
}

/// Hashes (and counts) the bytes written through it to `inner`.
#[derive(Debug)]
pub struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    size: u64,
}

impl<W> HashingWriter<W> {
    /// Starts hashing what is written to `inner`.
    pub fn new(inner: W) -> HashingWriter<W> {
        HashingWriter { inner, hasher: Hasher::new(), size: 0 }
    }

    /// Bytes written so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The writer being hashed.
    pub fn get_ref(&self) -> &W {
        &self.inner
    }

    /// The digest and size of everything written, and the writer.
    pub fn finish(self) -> (Digest, u64, W) {
        (Digest::from_hasher(self.hasher), self.size, self.inner)
    }
}

/// Which side of [`HashingWriter::copy_from`] failed.
#[derive(Debug)]
pub enum CopyError {
    /// Reading the source (a download, an archive entry).
    Read(io::Error),
    /// Writing the destination (a cache or spool file).
    Write(io::Error),
}

impl<W: Write> HashingWriter<W> {
    /// Writes everything `reader` gives into this writer, in 64 KiB reads,
    /// keeping a read failure apart from a write failure (callers name the
    /// source for the one and their file for the other); returns the bytes
    /// copied. Interrupted reads are retried.
    pub fn copy_from(&mut self, reader: &mut dyn Read) -> Result<u64, CopyError> {
        let mut buf = vec![0u8; 64 << 10];
        let mut copied = 0;
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => return Ok(copied),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(CopyError::Read(e)),
            };
            self.write_all(&buf[..n]).map_err(CopyError::Write)?;
            copied += n as u64;
        }
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn copy_from_hashes_and_tells_the_failing_side() {
        let content = vec![7u8; 200_000];
        let mut out = HashingWriter::new(Vec::new());
        assert_eq!(out.copy_from(&mut &content[..]).unwrap(), 200_000);
        let (digest, size, written) = out.finish();
        assert_eq!((digest, size, written == content), (Digest::of(&content), 200_000, true));

        struct Failing;
        impl Read for Failing {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::other("source"))
            }
        }
        impl Write for Failing {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::Error::other("destination"))
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let mut out = HashingWriter::new(Vec::new());
        assert!(matches!(out.copy_from(&mut Failing), Err(CopyError::Read(_))));
        let mut out = HashingWriter::new(Failing);
        assert!(matches!(out.copy_from(&mut &b"x"[..]), Err(CopyError::Write(_))));
    }

    #[test]
    fn digest_of_empty_input() {
        let digest = Digest::of(b"");
        assert_eq!(digest.to_string(), EMPTY);
        assert_eq!(digest.hex(), &EMPTY[7..]);
        assert_eq!(Digest::parse(EMPTY).unwrap(), digest);
        let mut hasher = Sha256::default();
        sha2::Digest::update(&mut hasher, b"");
        assert_eq!(Digest::from_hasher(hasher), digest);
    }

    #[test]
    fn hex_encodes_every_byte_value() {
        assert_eq!(hex(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
        assert_eq!(hex(&[]), "");
    }

    #[test]
    fn parse_rejects_everything_but_sha256_hex() {
        for bad in [
            "",
            "sha256:",
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "sha512:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85",
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b8555",
            "sha256:../../etc/passwd",
        ] {
            assert!(Digest::parse(bad).is_err(), "{bad:?} was accepted");
        }
        assert!(!is_sha256_hex(&EMPTY[8..]));
        assert!(is_sha256_hex(&EMPTY[7..]));
    }

    #[test]
    fn round_trips_through_serde() {
        let digest = Digest::parse(EMPTY).unwrap();
        let json = serde_json::to_string(&digest).unwrap();
        assert_eq!(json, format!("\"{EMPTY}\""));
        assert_eq!(serde_json::from_str::<Digest>(&json).unwrap(), digest);
        assert!(serde_json::from_str::<Digest>("\"sha256:00\"").is_err());
    }

    #[cfg(feature = "oci-spec")]
    #[test]
    fn round_trips_through_oci_spec() {
        let digest = Digest::parse(EMPTY).unwrap();
        let desc =
            oci_spec::image::Descriptor::new(oci_spec::image::MediaType::ImageConfig, 0, digest.to_oci());
        assert_eq!(Digest::from_descriptor(&desc).unwrap(), digest);
    }

    #[test]
    fn hashing_reader_and_writer_agree_with_of() {
        let data = b"some layer bytes";
        let mut reader = HashingReader::new(&data[..]);
        let mut out = HashingWriter::new(Vec::new());
        io::copy(&mut reader, &mut out).unwrap();
        let (read_digest, read_size, _) = reader.finish();
        let (written_digest, written_size, bytes) = out.finish();
        assert_eq!((read_digest.clone(), read_size), (Digest::of(data), data.len() as u64));
        assert_eq!((written_digest, written_size), (read_digest, read_size));
        assert_eq!(bytes, data);
    }
}
