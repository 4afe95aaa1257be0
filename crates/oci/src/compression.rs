//! Layer compression: the one place that knows how layers are compressed,
//! told apart and read back.
//!
//! [`Compression`] names the compression of a layer media type (or of a
//! blob, sniffed from its first bytes); [`Encoder`] is what the layer
//! builder writes through and [`Decoder`] what every reader of a layer or
//! an archive reads through. [`UncompressedReader`] (from
//! [`BlobStore::open_uncompressed`](crate::BlobStore::open_uncompressed)) is
//! the one way to read a stored layer: decompressed, hashed for the diff ID,
//! the blob verified against its digest at the end.
//!
//! **Seam:** the compression of the layers we write is a parameter of the
//! layer builder; [`Compression::default`] (gzip) is the one place where it
//! is chosen for every build. gzip is written with no file name, mtime 0 and
//! the fixed [`GZIP_LEVEL`], so that the bytes depend only on the content.
//! zstd is recognised everywhere but neither written nor read yet.

use std::io::{self, Read, Write};

use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;
use flate2::GzBuilder;
use oci_spec::image::MediaType;

use crate::digest::{Digest, HashingReader};
use crate::image::{DOCKER_LAYER, DOCKER_LAYER_GZIP};
use crate::store::VerifyingReader;

/// The gzip level of every layer we write. Fixed, because the level changes
/// the bytes and so the digest.
pub const GZIP_LEVEL: u32 = 6;

const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
const ZSTD_MAGIC: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];

/// How a layer (or an archive) is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compression {
    /// A plain tar.
    None,
    /// gzip.
    Gzip,
    /// zstd (recognised, but this crate can neither write nor read it yet).
    Zstd,
}

impl Default for Compression {
    /// The compression of the layers we build: gzip, which every registry
    /// and runtime reads.
    fn default() -> Compression {
        Compression::Gzip
    }
}

impl Compression {
    /// The compression of an OCI or Docker layer media type; `None` for
    /// media types that are not layers.
    pub fn of_layer(media_type: &MediaType) -> Option<Compression> {
        match media_type {
            MediaType::ImageLayer | MediaType::ImageLayerNonDistributable => Some(Compression::None),
            MediaType::ImageLayerGzip | MediaType::ImageLayerNonDistributableGzip => Some(Compression::Gzip),
            MediaType::ImageLayerZstd | MediaType::ImageLayerNonDistributableZstd => Some(Compression::Zstd),
            MediaType::Other(other) if other == DOCKER_LAYER_GZIP => Some(Compression::Gzip),
            MediaType::Other(other) if other == DOCKER_LAYER => Some(Compression::None),
            _ => None,
        }
    }

    /// The compression of content starting with `magic` (its first bytes;
    /// four are enough): anything that is neither gzip nor zstd is plain.
    pub fn sniff(magic: &[u8]) -> Compression {
        if magic.starts_with(GZIP_MAGIC) {
            Compression::Gzip
        } else if magic.starts_with(ZSTD_MAGIC) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }

    /// The OCI media type of a layer with this compression (Docker media
    /// types become these when a base image's layers go into an OCI
    /// manifest).
    pub fn layer_media_type(self) -> MediaType {
        match self {
            Compression::None => MediaType::ImageLayer,
            Compression::Gzip => MediaType::ImageLayerGzip,
            Compression::Zstd => MediaType::ImageLayerZstd,
        }
    }

    /// Whether [`Decoder`] can read this compression.
    pub fn is_readable(self) -> bool {
        !matches!(self, Compression::Zstd)
    }

    /// A short name for messages: `gzip`, `zstd`, `uncompressed`.
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "uncompressed",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }
}

/// Compresses what is written into `W`.
#[derive(Debug)]
pub enum Encoder<W: Write> {
    /// Passes bytes through.
    None(W),
    /// Reproducible gzip: no name, mtime 0, OS "unknown", [`GZIP_LEVEL`].
    Gzip(Box<GzEncoder<W>>),
}

impl<W: Write> Encoder<W> {
    /// An encoder for `compression`; `None` when it cannot be written.
    pub fn new(inner: W, compression: Compression) -> Option<Encoder<W>> {
        match compression {
            Compression::None => Some(Encoder::None(inner)),
            Compression::Gzip => Some(Encoder::Gzip(Box::new(
                GzBuilder::new()
                    .mtime(0)
                    .operating_system(255)
                    .write(inner, flate2::Compression::new(GZIP_LEVEL)),
            ))),
            Compression::Zstd => None,
        }
    }

    /// Ends the compressed stream and returns the writer.
    pub fn finish(self) -> io::Result<W> {
        match self {
            Encoder::None(inner) => Ok(inner),
            Encoder::Gzip(gzip) => gzip.finish(),
        }
    }
}

impl<W: Write> Write for Encoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Encoder::None(inner) => inner.write(buf),
            Encoder::Gzip(gzip) => gzip.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Encoder::None(inner) => inner.flush(),
            Encoder::Gzip(gzip) => gzip.flush(),
        }
    }
}

/// Decompresses what is read from `R`. gzip is read as a multi-member
/// stream, as Go's reader and `gzip -d` do.
#[derive(Debug)]
pub enum Decoder<R: Read> {
    /// Passes bytes through.
    None(R),
    /// gzip, every member.
    Gzip(Box<MultiGzDecoder<R>>),
}

impl<R: Read> Decoder<R> {
    /// A decoder for `compression`; `None` when it cannot be read.
    pub fn new(inner: R, compression: Compression) -> Option<Decoder<R>> {
        match compression {
            Compression::None => Some(Decoder::None(inner)),
            Compression::Gzip => Some(Decoder::Gzip(Box::new(MultiGzDecoder::new(inner)))),
            Compression::Zstd => None,
        }
    }

    /// The compressed reader.
    pub fn into_inner(self) -> R {
        match self {
            Decoder::None(inner) => inner,
            Decoder::Gzip(gzip) => gzip.into_inner(),
        }
    }
}

impl<R: Read> Read for Decoder<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Decoder::None(inner) => inner.read(buf),
            Decoder::Gzip(gzip) => gzip.read(buf),
        }
    }
}

/// A stored layer's uncompressed content, hashed while read; see the
/// [module docs](self).
#[derive(Debug)]
pub struct UncompressedReader {
    inner: HashingReader<Decoder<VerifyingReader>>,
}

/// What reading a layer to its end found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uncompressed {
    /// The digest of the uncompressed content.
    pub diff_id: Digest,
    /// The size of the uncompressed content.
    pub size: u64,
    /// The size of the blob as stored.
    pub blob_size: u64,
}

impl UncompressedReader {
    pub(crate) fn new(blob: VerifyingReader, compression: Compression) -> Option<UncompressedReader> {
        Some(UncompressedReader { inner: HashingReader::new(Decoder::new(blob, compression)?) })
    }

    /// Reads what is left (a tar parser stops at the end-of-archive blocks;
    /// the padding after them is part of the diff ID) and the rest of the
    /// blob, which verifies its digest. A corrupt blob is an `io::Error`
    /// that [`Error`](crate::Error) conversions turn into
    /// [`Error::DigestMismatch`](crate::Error::DigestMismatch).
    pub fn finish(mut self) -> io::Result<Uncompressed> {
        io::copy(&mut self.inner, &mut io::sink())?;
        let (diff_id, size, decoder) = self.inner.finish();
        let blob_size = decoder.into_inner().finish()?;
        Ok(Uncompressed { diff_id, size, blob_size })
    }
}

impl Read for UncompressedReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf)
    }
}

/// Reads until `buf` is full or the input ends; returns the bytes read.
pub fn read_up_to(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match reader.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffing_and_media_types_agree() {
        let mut gz = Encoder::new(Vec::new(), Compression::Gzip).unwrap();
        gz.write_all(b"layer").unwrap();
        let bytes = gz.finish().unwrap();
        assert_eq!(Compression::sniff(&bytes), Compression::Gzip);
        assert_eq!(Compression::sniff(ZSTD_MAGIC), Compression::Zstd);
        assert_eq!(Compression::sniff(b"ustar"), Compression::None);
        assert_eq!(Compression::sniff(b""), Compression::None);
        for c in [Compression::None, Compression::Gzip, Compression::Zstd] {
            assert_eq!(Compression::of_layer(&c.layer_media_type()), Some(c));
        }
        assert_eq!(Compression::of_layer(&MediaType::ImageConfig), None);
        let mut out = Vec::new();
        Decoder::new(&bytes[..], Compression::Gzip).unwrap().read_to_end(&mut out).unwrap();
        assert_eq!(out, b"layer");
        assert!(Decoder::new(&bytes[..], Compression::Zstd).is_none());
        assert!(Encoder::new(Vec::new(), Compression::Zstd).is_none());
    }
}
