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
//! is chosen for every build (`--compression zstd` picks [`Compression::Zstd`]
//! instead). gzip is written with no file name, mtime 0 and the fixed
//! [`GZIP_LEVEL`], so that the bytes depend only on the content.
//!
//! **zstd** layers (`application/vnd.oci.image.layer.v1.tar+zstd`) are one
//! frame at the fixed [`ZSTD_LEVEL`] with a content checksum, always in
//! libzstd's multi-threaded mode ([`zstd_workers`] workers, at least one):
//! its output depends on the level and the job size (set by the level),
//! never on the number of workers, while the single-threaded mode's would
//! differ, so it is never used. Nothing may call `ZSTD_e_flush` mid-layer
//! (it would cut a job): [`Encoder::flush`] only flushes the writer below.
//! The bytes also depend on libzstd's version, pinned by `Cargo.lock`
//! (`zstd-sys` builds its bundled source).
//!
//! **Large layers** ([`Encoder::sized`] with at least [`LARGE_LAYER`]
//! bytes of file content) are gzip in independent blocks, as pigz writes
//! it ([`BlockGzip`]): the input is cut into [`GZIP_BLOCK`]-byte blocks,
//! each deflated on its own on a pool of every core, primed with the last
//! 32 KiB of the block before it as its dictionary (so matches still reach
//! back across a cut, and the output is within a fraction of a percent of
//! one stream's), ended by a sync flush (byte-aligned), and the blocks are
//! joined in order into one standard gzip member with the CRC-32 and size
//! of the whole input. Each block's bytes depend only on its input and the
//! 32 KiB before it, so the output is the same whatever the core count or
//! the order the pool finishes in. A block that would not compress (random
//! bytes, already compressed weights: [`incompressible`]) is written as
//! stored deflate blocks instead of being deflated for nothing. Layers below the threshold (every
//! sample image's, the 71 MiB Debian Python base included) keep the one
//! deflate stream, byte for byte.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::sync::mpsc::{self, Receiver};
use std::sync::OnceLock;

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

/// Layers with at least this many bytes of file content are gzip in
/// independent blocks ([`BlockGzip`]); see the [module docs](self). Fixed,
/// because it decides the bytes.
pub const LARGE_LAYER: u64 = 128 << 20;

/// The zstd level of every zstd layer we write: zstd's own default, which
/// compresses several times faster than gzip -6 into a smaller output;
/// higher levels cost much more time for a few percent. Fixed, because the
/// level changes the bytes and so the digest.
pub const ZSTD_LEVEL: i32 = 3;

/// The input block of [`BlockGzip`]. Fixed, because it decides the bytes.
pub const GZIP_BLOCK: usize = 1 << 20;

/// Deflate's window: what a block's dictionary holds of the block before.
const WINDOW: usize = 32 << 10;

const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
const ZSTD_MAGIC: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];

/// How a layer (or an archive) is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compression {
    /// A plain tar.
    None,
    /// gzip.
    Gzip,
    /// zstd, written at [`ZSTD_LEVEL`]: for runtimes that read it (Docker
    /// 23+, containerd, podman; not Docker 20.10).
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

    /// What names the encoding of a layer of `content` bytes of file
    /// content in its cache key: [`Compression::name`], and for gzip in
    /// blocks ([`LARGE_LAYER`]) a name of its own, so that a layer cached
    /// before that encoder existed is not taken for one it would write
    /// (`+stored`: incompressible blocks stored, not deflated); zstd names
    /// its level.
    pub fn key_name(self, content: u64) -> &'static str {
        match self {
            Compression::Gzip if content >= LARGE_LAYER => "gzip-blocks-1MiB+stored",
            Compression::Zstd => "zstd-3",
            _ => self.name(),
        }
    }

    /// The compression `--compression NAME` names: `gzip` or `zstd`.
    pub fn from_name(name: &str) -> Option<Compression> {
        match name {
            "gzip" => Some(Compression::Gzip),
            "zstd" => Some(Compression::Zstd),
            _ => None,
        }
    }

    /// Whether [`Decoder`] can read this compression (every one can).
    pub fn is_readable(self) -> bool {
        true
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
pub enum Encoder<W: Write> {
    /// Passes bytes through.
    None(W),
    /// Reproducible gzip: no name, mtime 0, OS "unknown", [`GZIP_LEVEL`].
    Gzip(Box<GzEncoder<W>>),
    /// The same gzip header, in independent blocks on every core.
    Blocks(Box<BlockGzip<W>>),
    /// One zstd frame at [`ZSTD_LEVEL`], multi-threaded; see the
    /// [module docs](self).
    Zstd(Box<zstd::stream::write::Encoder<'static, W>>),
}

impl<W: Write> std::fmt::Debug for Encoder<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = match self {
            Encoder::None(_) => "None",
            Encoder::Gzip(_) => "Gzip",
            Encoder::Blocks(blocks) => return f.debug_tuple("Blocks").field(blocks).finish(),
            Encoder::Zstd(_) => "Zstd",
        };
        f.debug_tuple(name).finish_non_exhaustive()
    }
}

/// The workers of a zstd encoder: one per core (at least one; the output
/// is the same for any number).
pub fn zstd_workers() -> u32 {
    std::thread::available_parallelism().map_or(1, |n| u32::try_from(n.get()).unwrap_or(1))
}

/// A zstd encoder with `workers` workers (at least one); see the
/// [module docs](self).
fn zstd_encoder<W: Write>(inner: W, workers: u32) -> io::Result<zstd::stream::write::Encoder<'static, W>> {
    let mut encoder = zstd::stream::write::Encoder::new(inner, ZSTD_LEVEL)?;
    encoder.include_checksum(true)?;
    encoder.multithread(workers.max(1))?;
    Ok(encoder)
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
            // Fails only when libzstd cannot allocate or was built without
            // threads; the single-threaded mode would write other bytes.
            Compression::Zstd => zstd_encoder(inner, zstd_workers()).ok().map(|e| Encoder::Zstd(Box::new(e))),
        }
    }

    /// An encoder for a layer of `content` bytes of file content: gzip in
    /// blocks from [`LARGE_LAYER`] on, else as [`Encoder::new`].
    pub fn sized(inner: W, compression: Compression, content: u64) -> Option<Encoder<W>> {
        match compression {
            Compression::Gzip if content >= LARGE_LAYER => {
                Some(Encoder::Blocks(Box::new(BlockGzip::new(inner))))
            }
            _ => Encoder::new(inner, compression),
        }
    }

    /// Ends the compressed stream and returns the writer.
    pub fn finish(self) -> io::Result<W> {
        match self {
            Encoder::None(inner) => Ok(inner),
            Encoder::Gzip(gzip) => gzip.finish(),
            Encoder::Blocks(blocks) => blocks.finish(),
            Encoder::Zstd(zstd) => zstd.finish(),
        }
    }
}

impl<W: Write> Write for Encoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Encoder::None(inner) => inner.write(buf),
            Encoder::Gzip(gzip) => gzip.write(buf),
            Encoder::Blocks(blocks) => blocks.write(buf),
            Encoder::Zstd(zstd) => zstd.write(buf),
        }
    }

    /// Flushes what is compressed so far; never cuts a zstd job (which
    /// would change the bytes): the zstd frame's pending input stays.
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Encoder::None(inner) => inner.flush(),
            Encoder::Gzip(gzip) => gzip.flush(),
            Encoder::Blocks(blocks) => blocks.flush(),
            Encoder::Zstd(zstd) => zstd.get_mut().flush(),
        }
    }
}

/// gzip in independent blocks compressed on every core, joined into one
/// member; see the [module docs](self).
pub struct BlockGzip<W: Write> {
    inner: W,
    crc: flate2::Crc,
    /// The block being filled.
    block: Vec<u8>,
    /// The last [`WINDOW`] bytes of the block before it.
    dictionary: Vec<u8>,
    /// Blocks being compressed, oldest first.
    pending: VecDeque<Receiver<io::Result<Vec<u8>>>>,
    /// Whether the header is written.
    started: bool,
}

impl<W: Write> std::fmt::Debug for BlockGzip<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockGzip")
            .field("input", &self.crc.amount())
            .field("pending", &self.pending.len())
            .finish()
    }
}

/// The pool the blocks are compressed on (every core), apart from the
/// callers' pools: a build thread waiting for its blocks never holds up a
/// thread those blocks need.
fn block_pool() -> Option<&'static rayon::ThreadPool> {
    static POOL: OnceLock<Option<rayon::ThreadPool>> = OnceLock::new();
    POOL.get_or_init(|| rayon::ThreadPoolBuilder::new().thread_name(|i| format!("gzip-{i}")).build().ok())
        .as_ref()
}

impl<W: Write> BlockGzip<W> {
    /// Starts a member (the header is written with the first block).
    pub fn new(inner: W) -> BlockGzip<W> {
        BlockGzip {
            inner,
            crc: flate2::Crc::new(),
            block: Vec::with_capacity(GZIP_BLOCK),
            dictionary: Vec::new(),
            pending: VecDeque::new(),
            started: false,
        }
    }

    /// Hands the filled block to the pool (the last one ends the deflate
    /// stream); writes out finished blocks while too many are in flight.
    fn submit(&mut self, last: bool) -> io::Result<()> {
        if !self.started {
            // The header: mtime 0, no name, XFL 0 (level 6), OS 255
            // "unknown", as `Encoder::Gzip` writes it.
            self.inner.write_all(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255])?;
            self.started = true;
        }
        let block = std::mem::replace(&mut self.block, Vec::with_capacity(GZIP_BLOCK));
        let dictionary =
            std::mem::replace(&mut self.dictionary, block[block.len().saturating_sub(WINDOW)..].to_vec());
        let (send, receive) = mpsc::sync_channel(1);
        let job = move || {
            let _ = send.send(deflate_block(&block, &dictionary, last));
        };
        match block_pool() {
            Some(pool) => pool.spawn(job),
            None => job(),
        }
        self.pending.push_back(receive);
        // Enough to keep every core busy; memory stays a few blocks.
        let in_flight = 2 * block_pool().map_or(1, rayon::ThreadPool::current_num_threads) + 2;
        while self.pending.len() > in_flight {
            self.write_oldest()?;
        }
        Ok(())
    }

    fn write_oldest(&mut self) -> io::Result<()> {
        let Some(oldest) = self.pending.pop_front() else { return Ok(()) };
        let bytes = oldest.recv().map_err(|_| io::Error::other("a gzip block's compression stopped"))??;
        self.inner.write_all(&bytes)
    }

    /// Compresses what is left, writes the trailer (CRC-32 and size of the
    /// whole input) and returns the writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.submit(true)?;
        while !self.pending.is_empty() {
            self.write_oldest()?;
        }
        self.inner.write_all(&self.crc.sum().to_le_bytes())?;
        self.inner.write_all(&self.crc.amount().to_le_bytes())?;
        Ok(self.inner)
    }
}

impl<W: Write> Write for BlockGzip<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        // A full block is sent only once more input comes: the last block
        // must end the stream, and only `finish` knows which it is.
        if self.block.len() == GZIP_BLOCK {
            self.submit(false)?;
        }
        let n = buf.len().min(GZIP_BLOCK - self.block.len());
        self.block.extend_from_slice(&buf[..n]);
        self.crc.update(&buf[..n]);
        Ok(n)
    }

    /// Writes out the blocks compressed so far; the block being filled
    /// stays (cutting it would change the bytes).
    fn flush(&mut self) -> io::Result<()> {
        while self.pending.front().is_some() {
            self.write_oldest()?;
        }
        self.inner.flush()
    }
}

/// One block as raw deflate: stored when [`incompressible`], else at
/// [`GZIP_LEVEL`], primed with `dictionary`, ended by a sync flush (or, for
/// the last, the end of the stream).
fn deflate_block(input: &[u8], dictionary: &[u8], last: bool) -> io::Result<Vec<u8>> {
    if incompressible(input)? {
        return Ok(stored(input, last));
    }
    deflated(input, dictionary, last)
}

/// `input` as raw deflate at [`GZIP_LEVEL`]; see [`deflate_block`].
fn deflated(input: &[u8], dictionary: &[u8], last: bool) -> io::Result<Vec<u8>> {
    let mut deflate = flate2::Compress::new(flate2::Compression::new(GZIP_LEVEL), false);
    if !dictionary.is_empty() {
        deflate.set_dictionary(dictionary).map_err(io::Error::other)?;
    }
    let flush = if last { flate2::FlushCompress::Finish } else { flate2::FlushCompress::Sync };
    let mut out = Vec::with_capacity(input.len() + input.len() / 64 + 1024);
    loop {
        let consumed = deflate.total_in() as usize;
        let status = deflate.compress_vec(&input[consumed..], &mut out, flush).map_err(io::Error::other)?;
        let done = if last {
            status == flate2::Status::StreamEnd
        } else {
            // A flush is complete once output room is left over.
            deflate.total_in() as usize == input.len() && out.len() < out.capacity()
        };
        if done {
            return Ok(out);
        }
        out.reserve(64 << 10);
    }
}

/// The part of a block deflated to tell whether the block compresses.
const TRIAL: usize = 32 << 10;

/// Whether deflate would gain (almost) nothing on `input`: random bytes,
/// already compressed weights or archives. Deflating those costs as much as
/// text and gains nothing (zlib ends up storing them), so such a block is
/// written as stored blocks, which is also no larger. Two cheap tests, in
/// integers so that the answer is the same on every machine: the byte
/// histogram of the whole block must be flat (its collision entropy, a
/// lower bound of the entropy, at least about 7.985 bits a byte: what a
/// Huffman code of the bytes could gain is under 0.2%), and deflating its
/// first [`TRIAL`] bytes (repeats within the block) must gain under 0.2%.
/// Blocks under twice the trial are always deflated.
fn incompressible(input: &[u8]) -> io::Result<bool> {
    if input.len() < 2 * TRIAL {
        return Ok(false);
    }
    // Four tables, so that consecutive equal bytes do not wait on each other.
    let mut counts = [[0u32; 256]; 4];
    let mut quads = input.chunks_exact(4);
    for quad in &mut quads {
        for (table, &byte) in counts.iter_mut().zip(quad) {
            table[usize::from(byte)] += 1;
        }
    }
    for &byte in quads.remainder() {
        counts[0][usize::from(byte)] += 1;
    }
    let squares: u128 = (0..256)
        .map(|b| {
            let c = u128::from(counts[0][b] + counts[1][b] + counts[2][b] + counts[3][b]);
            c * c
        })
        .sum();
    // Flat: the chance that two bytes are equal is at most 1.01/256 (a
    // random 1 MiB block is at 1.0002 ± 0.002).
    let n = input.len() as u128;
    if squares * 256 * 100 > n * n * 101 {
        return Ok(false);
    }
    let sample = &input[..TRIAL];
    let trial = deflated(sample, &[], true)?;
    Ok(trial.len() * 500 >= sample.len() * 499)
}

/// `input` as stored deflate blocks (at most 65,535 bytes each, the last
/// one final when `last`). The block before ended byte-aligned (a sync
/// flush or stored blocks), and so does this one.
fn stored(input: &[u8], last: bool) -> Vec<u8> {
    const MAX: usize = 0xffff;
    let mut out = Vec::with_capacity(input.len() + 5 * input.len().div_ceil(MAX).max(1));
    let count = input.len().div_ceil(MAX).max(1);
    for (i, chunk) in input.chunks(MAX).chain(input.is_empty().then_some(&[][..])).enumerate() {
        // BFINAL, BTYPE 00 (stored), padding to the byte: one byte.
        out.push(u8::from(last && i + 1 == count));
        let len = chunk.len() as u16;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(chunk);
    }
    out
}

/// Decompresses what is read from `R`. gzip is read as a multi-member
/// stream, as Go's reader and `gzip -d` do; zstd as every frame.
pub enum Decoder<R: Read> {
    /// Passes bytes through.
    None(R),
    /// gzip, every member.
    Gzip(Box<MultiGzDecoder<R>>),
    /// zstd, every frame.
    Zstd(Box<zstd::stream::read::Decoder<'static, io::BufReader<R>>>),
}

impl<R: Read> std::fmt::Debug for Decoder<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = match self {
            Decoder::None(_) => "None",
            Decoder::Gzip(_) => "Gzip",
            Decoder::Zstd(_) => "Zstd",
        };
        f.debug_tuple(name).finish_non_exhaustive()
    }
}

impl<R: Read> Decoder<R> {
    /// A decoder for `compression`; `None` when it cannot be read.
    pub fn new(inner: R, compression: Compression) -> Option<Decoder<R>> {
        match compression {
            Compression::None => Some(Decoder::None(inner)),
            Compression::Gzip => Some(Decoder::Gzip(Box::new(MultiGzDecoder::new(inner)))),
            // Fails only when libzstd cannot allocate its context.
            Compression::Zstd => {
                zstd::stream::read::Decoder::new(inner).ok().map(|d| Decoder::Zstd(Box::new(d)))
            }
        }
    }

    /// The compressed reader.
    pub fn into_inner(self) -> R {
        match self {
            Decoder::None(inner) => inner,
            Decoder::Gzip(gzip) => gzip.into_inner(),
            Decoder::Zstd(zstd) => zstd.finish().into_inner(),
        }
    }
}

impl<R: Read> Read for Decoder<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Decoder::None(inner) => inner.read(buf),
            Decoder::Gzip(gzip) => gzip.read(buf),
            Decoder::Zstd(zstd) => zstd.read(buf),
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

impl UncompressedReader {
    /// The same content, not hashed for the diff ID: for a reader that
    /// needs only the entries and the blob verified (an image's merged
    /// view), which would otherwise hash a large layer's content for a
    /// digest it throws away. Call it before reading.
    pub fn without_diff_id(self) -> LayerContent {
        let (_, _, decoder) = self.inner.finish();
        LayerContent { inner: decoder }
    }
}

/// A stored layer's uncompressed content whose blob is verified at the end
/// ([`UncompressedReader::without_diff_id`]).
#[derive(Debug)]
pub struct LayerContent {
    inner: Decoder<VerifyingReader>,
}

impl LayerContent {
    /// Reads what is left and the rest of the blob, which verifies its
    /// digest (a corrupt blob is an `io::Error`, as for
    /// [`UncompressedReader::finish`]); returns the blob's size.
    pub fn finish(mut self) -> io::Result<u64> {
        io::copy(&mut self.inner, &mut io::sink())?;
        self.inner.into_inner().finish()
    }
}

impl Read for LayerContent {
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
        let mut zstd = Encoder::new(Vec::new(), Compression::Zstd).unwrap();
        zstd.write_all(b"layer").unwrap();
        let bytes = zstd.finish().unwrap();
        assert_eq!(Compression::sniff(&bytes), Compression::Zstd);
        let mut out = Vec::new();
        Decoder::new(&bytes[..], Compression::Zstd).unwrap().read_to_end(&mut out).unwrap();
        assert_eq!(out, b"layer");
        for c in [Compression::Gzip, Compression::Zstd] {
            assert_eq!(Compression::from_name(c.name()), Some(c));
        }
        assert_eq!(Compression::from_name("xz"), None);
        assert_eq!(Compression::Zstd.key_name(0), format!("zstd-{ZSTD_LEVEL}"));
    }

    /// Text-like input that compresses (and has matches across blocks).
    fn text(len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(len + 64);
        let mut i = 0u64;
        while out.len() < len {
            i = i.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            out.extend_from_slice(
                format!("def f{}(x):\n    return x * {}\n", i >> 54, (i >> 40) % 97).as_bytes(),
            );
        }
        out.truncate(len);
        out
    }

    fn blocks(input: &[u8], chunk: usize) -> Vec<u8> {
        let mut gz = BlockGzip::new(Vec::new());
        for part in input.chunks(chunk.max(1)) {
            gz.write_all(part).unwrap();
        }
        gz.finish().unwrap()
    }

    #[test]
    fn block_gzip_is_one_standard_member() {
        for len in [0, 1, 1000, GZIP_BLOCK, GZIP_BLOCK + 1, 3 * GZIP_BLOCK + GZIP_BLOCK / 2] {
            let input = text(len);
            let bytes = blocks(&input, 100_000);
            // flate2's single-member reader: one member holds everything.
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(&bytes[..]).read_to_end(&mut out).unwrap();
            assert!(out == input, "length {len}: decoded {} bytes", out.len());
            assert_eq!(&bytes[..10], &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255]);
        }
    }

    #[test]
    fn block_gzip_bytes_depend_only_on_the_input() {
        let input = text(2 * GZIP_BLOCK + 12345);
        let expected = {
            // The blocks one after the other on this thread: what any
            // number of cores must give.
            let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];
            let cuts: Vec<&[u8]> = input.chunks(GZIP_BLOCK).collect();
            for (i, block) in cuts.iter().enumerate() {
                let dictionary = if i == 0 { &[][..] } else { &cuts[i - 1][cuts[i - 1].len() - WINDOW..] };
                out.extend(deflate_block(block, dictionary, i + 1 == cuts.len()).unwrap());
            }
            let mut crc = flate2::Crc::new();
            crc.update(&input);
            out.extend(crc.sum().to_le_bytes());
            out.extend(crc.amount().to_le_bytes());
            out
        };
        // However the writes are cut.
        for chunk in [1 << 20, 7777, 128 << 10] {
            assert!(blocks(&input, chunk) == expected, "writes of {chunk}");
        }
        // Close to one deflate stream's size.
        let mut one = Encoder::new(Vec::new(), Compression::Gzip).unwrap();
        one.write_all(&input).unwrap();
        let one = one.finish().unwrap();
        assert!(expected.len() as f64 <= one.len() as f64 * 1.01, "{} against {}", expected.len(), one.len());
    }

    /// Bytes no deflate compresses (a xorshift stream).
    fn random(len: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        let mut out = Vec::with_capacity(len + 8);
        while out.len() < len {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            out.extend_from_slice(&x.to_le_bytes());
        }
        out.truncate(len);
        out
    }

    #[test]
    fn incompressible_blocks_are_told_apart() {
        assert!(incompressible(&random(GZIP_BLOCK, 1)).unwrap());
        assert!(!incompressible(&text(GZIP_BLOCK)).unwrap());
        // Flat bytes that repeat (deflate finds the matches): compressed.
        assert!(!incompressible(&random(16 << 10, 2).repeat(64)).unwrap());
        // A tenth of zeros makes the histogram uneven.
        let mut zeros = random(GZIP_BLOCK, 3);
        zeros[..GZIP_BLOCK / 10].fill(0);
        assert!(!incompressible(&zeros).unwrap());
        // Too short to tell: deflated.
        assert!(!incompressible(&random(2 * TRIAL - 1, 4)).unwrap());
    }

    #[test]
    fn incompressible_blocks_are_stored_in_the_one_member() {
        // Random, text, random, then a random tail: stored blocks between
        // deflated ones, the last one stored and final.
        let mut input = random(GZIP_BLOCK, 5);
        input.extend(text(GZIP_BLOCK));
        input.extend(random(GZIP_BLOCK + GZIP_BLOCK / 2, 6));
        let bytes = blocks(&input, 128 << 10);
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&bytes[..]).read_to_end(&mut out).unwrap();
        assert!(out == input, "decoded {} bytes of {}", out.len(), input.len());
        // Stored: the random 2.5 MiB cost 5 bytes per 64 KiB, no more.
        let text_alone = blocks(&text(GZIP_BLOCK), 128 << 10).len();
        let random_bytes = input.len() - GZIP_BLOCK;
        assert!(bytes.len() <= text_alone + random_bytes + random_bytes / 10_000 + 64, "{}", bytes.len());
        // What zlib writes for the same input is no smaller.
        let mut one = Encoder::new(Vec::new(), Compression::Gzip).unwrap();
        one.write_all(&input).unwrap();
        let one = one.finish().unwrap();
        assert!(bytes.len() <= one.len() + one.len() / 100, "{} against {}", bytes.len(), one.len());
        // A stored last block alone, and an empty stored block, decode too.
        let stored_alone = stored(b"abc", true);
        assert_eq!(stored_alone, [1, 3, 0, 0xfc, 0xff, b'a', b'b', b'c']);
        assert_eq!(stored(b"", true), [1, 0, 0, 0xff, 0xff]);
    }

    #[test]
    fn zstd_bytes_do_not_depend_on_the_workers_or_the_writes() {
        // More than two of libzstd's jobs at level 3 (8 MiB each), so that
        // several workers really share the frame.
        let mut input = text(10 << 20);
        input.extend(random(4 << 20, 7));
        input.extend(text(6 << 20));
        let encode = |workers: u32, chunk: usize| {
            let mut encoder = zstd_encoder(Vec::new(), workers).unwrap();
            for part in input.chunks(chunk) {
                encoder.write_all(part).unwrap();
            }
            encoder.finish().unwrap()
        };
        let expected = encode(1, 1 << 20);
        for (workers, chunk) in [(2, 1 << 20), (4, 7777), (3, 128 << 10)] {
            assert!(encode(workers, chunk) == expected, "{workers} workers, writes of {chunk}");
        }
        // And the layer encoder (every core) writes the same.
        let mut layer = Encoder::sized(Vec::new(), Compression::Zstd, input.len() as u64).unwrap();
        for part in input.chunks(128 << 10) {
            layer.write_all(part).unwrap();
            layer.flush().unwrap();
        }
        assert!(layer.finish().unwrap() == expected);
        let mut out = Vec::new();
        Decoder::new(&expected[..], Compression::Zstd).unwrap().read_to_end(&mut out).unwrap();
        assert!(out == input);
        assert!(expected.len() < input.len() / 2, "{} of {}", expected.len(), input.len());
    }

    #[test]
    fn only_large_gzip_layers_are_in_blocks() {
        assert!(matches!(
            Encoder::sized(Vec::new(), Compression::Gzip, LARGE_LAYER - 1),
            Some(Encoder::Gzip(_))
        ));
        assert!(matches!(
            Encoder::sized(Vec::new(), Compression::Gzip, LARGE_LAYER),
            Some(Encoder::Blocks(_))
        ));
        assert!(matches!(Encoder::sized(Vec::new(), Compression::None, LARGE_LAYER), Some(Encoder::None(_))));
    }
}
