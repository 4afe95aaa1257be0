//! The tar writer shared by layers and archives.
//!
//! We write tar headers ourselves rather than through `tar::Builder` because
//! reproducibility and strict readers need control over every byte: POSIX
//! ustar headers (Python's `tarfile`, GNU tar and Go's `archive/tar` all read
//! them), empty user and group names, no atime or ctime, and a PAX extended
//! header only when a value does not fit ustar (long or non-ASCII names and
//! link targets, huge sizes, ids or times). The PAX header's own name is a
//! constant, so it carries nothing from the machine that wrote it.

use std::io::{self, Read, Write};

pub(crate) const BLOCK: usize = 512;

/// The type of a tar entry we write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    File,
    Dir,
    Symlink,
    Hardlink,
    /// A device node or FIFO: its type flag, major and minor numbers.
    Device(u8, u32, u32),
}

impl Kind {
    fn typeflag(self) -> u8 {
        match self {
            Kind::File => b'0',
            Kind::Hardlink => b'1',
            Kind::Symlink => b'2',
            Kind::Dir => b'5',
            Kind::Device(typeflag, ..) => typeflag,
        }
    }
}

/// One tar header, as the caller wants it.
#[derive(Debug)]
pub(crate) struct Header<'a> {
    /// The full tar name: relative, `/`-separated, directories ending in `/`.
    pub name: &'a str,
    pub kind: Kind,
    /// Permission bits (at most 0o7777).
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    /// Content size; 0 for everything but files.
    pub size: u64,
    pub mtime: u64,
    /// Target of a symlink or hardlink.
    pub link: Option<&'a str>,
}

const NAME: std::ops::Range<usize> = 0..100;
const MODE: std::ops::Range<usize> = 100..108;
const UID: std::ops::Range<usize> = 108..116;
const GID: std::ops::Range<usize> = 116..124;
const SIZE: std::ops::Range<usize> = 124..136;
const MTIME: std::ops::Range<usize> = 136..148;
const CHKSUM: std::ops::Range<usize> = 148..156;
const TYPEFLAG: usize = 156;
const LINKNAME: std::ops::Range<usize> = 157..257;
const MAGIC: std::ops::Range<usize> = 257..265;
const DEVMAJOR: std::ops::Range<usize> = 329..337;
const DEVMINOR: std::ops::Range<usize> = 337..345;

/// Writes `header`, preceded by a PAX extended header if any value needs one.
/// The caller then writes exactly `header.size` bytes and the padding.
pub(crate) fn write_header(out: &mut impl Write, header: &Header<'_>) -> io::Result<()> {
    let mut records = Vec::new();
    if !fits_ustar_name(header.name) {
        pax_record(&mut records, "path", header.name);
    }
    if let Some(link) = header.link {
        if !fits_ustar_name(link) {
            pax_record(&mut records, "linkpath", link);
        }
    }
    for (key, value, width) in [
        ("size", header.size, SIZE.len()),
        ("uid", header.uid, UID.len()),
        ("gid", header.gid, GID.len()),
        ("mtime", header.mtime, MTIME.len()),
    ] {
        if !fits_octal(value, width) {
            pax_record(&mut records, key, &value.to_string());
        }
    }
    if !records.is_empty() {
        let pax = Header {
            name: "././@PaxHeader",
            kind: Kind::File,
            mode: 0o644,
            uid: 0,
            gid: 0,
            size: records.len() as u64,
            mtime: header.mtime.min(max_octal(MTIME.len())),
            link: None,
        };
        let mut block = encode(&pax);
        block[TYPEFLAG] = b'x';
        set_checksum(&mut block);
        out.write_all(&block)?;
        out.write_all(&records)?;
        write_padding(out, records.len() as u64)?;
    }
    out.write_all(&encode(header))
}

/// Zero bytes up to the next block boundary after `size` bytes of content.
pub(crate) fn write_padding(out: &mut impl Write, size: u64) -> io::Result<()> {
    let rest = (size % BLOCK as u64) as usize;
    if rest != 0 {
        out.write_all(&[0u8; BLOCK][..BLOCK - rest])?;
    }
    Ok(())
}

/// The end-of-archive marker: two zero blocks.
pub(crate) fn write_end(out: &mut impl Write) -> io::Result<()> {
    out.write_all(&[0u8; 2 * BLOCK])
}

/// What [`copy_exact`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Copied {
    Exact,
    /// The source ended after this many bytes.
    Short(u64),
    /// The source had more than the expected bytes.
    Long,
}

/// Copies exactly `size` bytes and checks that the source ends there. On
/// [`Copied::Short`] fewer bytes were written; the tar stream is then
/// broken and must be abandoned.
pub(crate) fn copy_exact(source: &mut impl Read, out: &mut impl Write, size: u64) -> io::Result<Copied> {
    let mut buf = vec![0u8; 128 << 10];
    let mut left = size;
    while left > 0 {
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = match source.read(&mut buf[..want]) {
            Ok(0) => return Ok(Copied::Short(size - left)),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        out.write_all(&buf[..n])?;
        left -= n as u64;
    }
    loop {
        match source.read(&mut buf[..1]) {
            Ok(0) => return Ok(Copied::Exact),
            Ok(_) => return Ok(Copied::Long),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}

fn fits_ustar_name(name: &str) -> bool {
    name.len() <= NAME.len() && name.bytes().all(|b| b.is_ascii() && b != 0)
}

fn max_octal(width: usize) -> u64 {
    // width - 1 octal digits and a NUL.
    (1u64 << (3 * (width as u32 - 1))) - 1
}

fn fits_octal(value: u64, width: usize) -> bool {
    value <= max_octal(width)
}

fn encode(header: &Header<'_>) -> [u8; BLOCK] {
    let mut block = [0u8; BLOCK];
    put_name(&mut block[NAME], header.name);
    put_number(&mut block[MODE], u64::from(header.mode));
    put_number(&mut block[UID], header.uid);
    put_number(&mut block[GID], header.gid);
    put_number(&mut block[SIZE], header.size);
    put_number(&mut block[MTIME], header.mtime);
    block[TYPEFLAG] = header.kind.typeflag();
    if let Some(link) = header.link {
        put_name(&mut block[LINKNAME], link);
    }
    block[MAGIC].copy_from_slice(b"ustar\x0000");
    let (major, minor) = match header.kind {
        Kind::Device(_, major, minor) => (major, minor),
        _ => (0, 0),
    };
    put_number(&mut block[DEVMAJOR], u64::from(major));
    put_number(&mut block[DEVMINOR], u64::from(minor));
    set_checksum(&mut block);
    block
}

/// The name itself when it fits; otherwise (the PAX record carries the real
/// one) its ASCII characters, cut to the field, as Go's archive/tar does.
fn put_name(field: &mut [u8], name: &str) {
    let ascii = name.bytes().filter(|b| b.is_ascii() && *b != 0);
    for (slot, b) in field.iter_mut().zip(ascii) {
        *slot = b;
    }
}

/// Octal with a trailing NUL when it fits, else base-256 (GNU), which every
/// reader we care about understands; the PAX record has the exact value.
fn put_number(field: &mut [u8], value: u64) {
    let width = field.len();
    if fits_octal(value, width) {
        let text = format!("{value:0w$o}", w = width - 1);
        field[..width - 1].copy_from_slice(text.as_bytes());
        field[width - 1] = 0;
    } else {
        let bits = 8 * (width as u32 - 1);
        let value = if bits >= 64 { value } else { value.min((1u64 << bits) - 1) };
        field[0] = 0x80;
        for (i, byte) in field[1..].iter_mut().rev().enumerate() {
            *byte = if i < 8 { (value >> (8 * i)) as u8 } else { 0 };
        }
    }
}

fn set_checksum(block: &mut [u8; BLOCK]) {
    block[CHKSUM].fill(b' ');
    let sum: u32 = block.iter().map(|&b| u32::from(b)).sum();
    let text = format!("{sum:06o}\0 ");
    block[CHKSUM].copy_from_slice(text.as_bytes());
}

fn pax_record(records: &mut Vec<u8>, key: &str, value: &str) {
    // "<len> <key>=<value>\n", where <len> counts the whole record, itself too.
    let rest = key.len() + value.len() + 3;
    let mut len = rest + 1;
    while len != rest + len.to_string().len() {
        len = rest + len.to_string().len();
    }
    records.extend_from_slice(format!("{len} {key}={value}\n").as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(name: &str) -> Header<'_> {
        Header { name, kind: Kind::File, mode: 0o644, uid: 0, gid: 0, size: 0, mtime: 0, link: None }
    }

    fn read_back(bytes: &[u8]) -> Vec<(String, u64, u64)> {
        let mut archive = tar::Archive::new(bytes);
        archive
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let path = e.path().unwrap().to_string_lossy().into_owned();
                (path, e.header().uid().unwrap(), e.header().mtime().unwrap())
            })
            .collect()
    }

    #[test]
    fn pax_record_length_counts_itself() {
        let mut out = Vec::new();
        pax_record(&mut out, "path", "a");
        assert_eq!(out, b"9 path=a\n");
        let mut out = Vec::new();
        let long = "x".repeat(95);
        pax_record(&mut out, "path", &long);
        // 95 + 4 + 3 = 102 plus three digits.
        assert_eq!(out.len(), 105);
        assert!(out.starts_with(b"105 path="));
    }

    #[test]
    fn short_ascii_names_need_no_pax_header() {
        let mut out = Vec::new();
        write_header(&mut out, &header("usr/bin/")).unwrap();
        assert_eq!(out.len(), BLOCK);
        assert_eq!(&out[..9], b"usr/bin/\0");
        assert_eq!(&out[257..265], b"ustar\x0000");
    }

    #[test]
    fn long_and_non_ascii_names_and_large_numbers_round_trip() {
        let long = format!("{}/file", "d".repeat(150));
        let mut out = Vec::new();
        for name in [long.as_str(), "caf\u{e9}/\u{65e5}\u{672c}"] {
            write_header(&mut out, &Header { uid: 1 << 40, mtime: 1 << 40, ..header(name) }).unwrap();
        }
        write_end(&mut out).unwrap();
        let entries = read_back(&out);
        assert_eq!(
            entries,
            vec![
                (long.clone(), 1 << 40, 1 << 40),
                ("caf\u{e9}/\u{65e5}\u{672c}".to_owned(), 1 << 40, 1 << 40)
            ]
        );
    }

    #[test]
    fn copy_exact_detects_short_and_long_sources() {
        let mut sink = Vec::new();
        assert_eq!(copy_exact(&mut &b"abc"[..], &mut sink, 3).unwrap(), Copied::Exact);
        assert_eq!(copy_exact(&mut &b"ab"[..], &mut sink, 3).unwrap(), Copied::Short(2));
        assert_eq!(copy_exact(&mut &b"abcd"[..], &mut sink, 3).unwrap(), Copied::Long);
    }
}
