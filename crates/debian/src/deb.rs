//! Reading a `.deb` without dpkg.
//!
//! A binary package is an `ar` archive: the global header `!<arch>\n`, then
//! members, each behind a 60-byte header (name 16, mtime 12, uid 6, gid 6,
//! mode 8, size 10, magic `` `\n ``) and padded to an even offset. The
//! members are `debian-binary` (`2.0\n`), `control.tar[.gz|.xz|.zst]` and
//! `data.tar[.gz|.xz|.zst]`. Members are decompressed as they are read, so a
//! large `data.tar` never sits in memory.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::deb822;
use crate::error::{Error, Result};

const AR_MAGIC: &[u8; 8] = b"!<arch>\n";
const HEADER_LEN: u64 = 60;

/// One member of the `ar` archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The member name (without GNU's trailing `/`).
    pub name: String,
    /// Offset of the content in the file.
    pub offset: u64,
    /// Size of the content.
    pub size: u64,
}

/// The control archive's files that an installer needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Control {
    /// `control`: the package's paragraph, as written.
    pub control: String,
    /// `md5sums`, if present.
    pub md5sums: Option<String>,
    /// The lines of `conffiles`, if present (absolute paths, possibly
    /// followed by flags such as `remove-on-upgrade`).
    pub conffiles: Vec<String>,
    /// The other regular files of the control archive (maintainer scripts
    /// `preinst`, `postinst`, `prerm`, `postrm`, and `triggers`, `shlibs`,
    /// `symbols`, `templates`, ...), which dpkg keeps as
    /// `/var/lib/dpkg/info/PACKAGE.NAME`: name, permission bits, content,
    /// sorted by name.
    pub others: Vec<(String, u32, Vec<u8>)>,
}

/// An opened `.deb`: its members, checked against the file's size.
#[derive(Debug, Clone)]
pub struct DebFile {
    path: PathBuf,
    members: Vec<Member>,
}

impl DebFile {
    /// Reads the archive's headers and checks the format: `ar`, a first
    /// member `debian-binary` of version 2.x, a control and a data member,
    /// every member within the file.
    pub fn open(path: &Path) -> Result<DebFile> {
        let not_deb = |message: String| Error::NotADeb { path: path.to_owned(), message };
        let mut file = File::open(path).map_err(|e| Error::io("opening", path, e))?;
        let len = file.metadata().map_err(|e| Error::io("reading", path, e))?.len();
        let mut magic = [0u8; 8];
        if len < 8 || file.read_exact(&mut magic).is_err() || &magic != AR_MAGIC {
            return Err(not_deb("no `!<arch>` header".to_owned()));
        }
        let mut members = Vec::new();
        let mut pos = 8u64;
        while pos < len {
            if len - pos < HEADER_LEN {
                return Err(not_deb(format!("truncated member header at offset {pos}")));
            }
            let mut header = [0u8; HEADER_LEN as usize];
            file.seek(SeekFrom::Start(pos)).map_err(|e| Error::io("reading", path, e))?;
            file.read_exact(&mut header).map_err(|e| Error::io("reading", path, e))?;
            if &header[58..60] != b"`\n" {
                return Err(not_deb(format!("bad member header magic at offset {pos}")));
            }
            let name = String::from_utf8_lossy(&header[..16]).trim_end().trim_end_matches('/').to_owned();
            let size_text = String::from_utf8_lossy(&header[48..58]).trim().to_owned();
            let size: u64 = size_text
                .parse()
                .map_err(|_| not_deb(format!("bad size `{size_text}` of member `{name}` at offset {pos}")))?;
            let offset = pos + HEADER_LEN;
            if size > len - offset {
                return Err(not_deb(format!(
                    "truncated: member `{name}` needs {size} bytes, {} are left",
                    len - offset
                )));
            }
            members.push(Member { name, offset, size });
            // Members are padded to an even offset; the last pad may be missing.
            pos = offset + size + (size % 2);
        }
        let first = members.first().ok_or_else(|| not_deb("empty archive".to_owned()))?;
        if first.name != "debian-binary" {
            return Err(not_deb(format!("first member is `{}`, not `debian-binary`", first.name)));
        }
        let mut version = vec![0u8; first.size.min(64) as usize];
        file.seek(SeekFrom::Start(first.offset)).map_err(|e| Error::io("reading", path, e))?;
        file.read_exact(&mut version).map_err(|e| Error::io("reading", path, e))?;
        if !version.starts_with(b"2.") {
            return Err(not_deb(format!(
                "unsupported format version `{}`",
                String::from_utf8_lossy(&version).trim()
            )));
        }
        let deb = DebFile { path: path.to_owned(), members };
        deb.member("control.tar")?;
        deb.member("data.tar")?;
        Ok(deb)
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The `ar` members in file order.
    pub fn members(&self) -> &[Member] {
        &self.members
    }

    /// The member `base` (`control.tar` or `data.tar`) with any compression suffix.
    fn member(&self, base: &str) -> Result<&Member> {
        self.members
            .iter()
            .find(|m| m.name == base || m.name.strip_prefix(base).is_some_and(|s| s.starts_with('.')))
            .ok_or_else(|| Error::NotADeb { path: self.path.clone(), message: format!("no {base} member") })
    }

    /// A decompressing reader over a member.
    fn open_member(&self, m: &Member) -> Result<Box<dyn Read + Send>> {
        let mut file = File::open(&self.path).map_err(|e| Error::io("opening", &self.path, e))?;
        file.seek(SeekFrom::Start(m.offset)).map_err(|e| Error::io("reading", &self.path, e))?;
        let raw = BufReader::new(file.take(m.size));
        let ext = m.name.rsplit_once(".tar").map_or("", |(_, ext)| ext);
        Ok(match ext {
            "" => Box::new(raw),
            ".gz" => Box::new(flate2::read::GzDecoder::new(raw)),
            ".xz" => Box::new(liblzma::read::XzDecoder::new(raw)),
            ".zst" => Box::new(ruzstd::decoding::StreamingDecoder::new(raw).map_err(|e| Error::Archive {
                path: self.path.clone(),
                member: m.name.clone(),
                source: std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()),
            })?),
            _ => {
                return Err(Error::UnsupportedCompression {
                    path: self.path.clone(),
                    member: m.name.clone(),
                });
            }
        })
    }

    /// The control archive's `control`, `md5sums` and `conffiles`.
    pub fn control(&self) -> Result<Control> {
        let m = self.member("control.tar")?;
        let archive_err = |source: std::io::Error| Error::Archive {
            path: self.path.clone(),
            member: m.name.clone(),
            source,
        };
        let mut archive = tar::Archive::new(self.open_member(m)?);
        let (mut control, mut md5sums, mut conffiles) = (None, None, None);
        let mut others = Vec::new();
        for entry in archive.entries().map_err(archive_err)? {
            let mut entry = entry.map_err(archive_err)?;
            let name =
                entry.path().map_err(archive_err)?.to_string_lossy().trim_start_matches("./").to_owned();
            let wanted = matches!(name.as_str(), "control" | "md5sums" | "conffiles")
                || (entry.header().entry_type().is_file() && !name.is_empty() && !name.contains('/'));
            if !wanted {
                continue;
            }
            let member = format!("{}/{name}", m.name);
            let read_error =
                |source| Error::Archive { path: self.path.clone(), member: member.clone(), source };
            let mode = entry.header().mode().map_err(archive_err)? & 0o7777;
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).map_err(read_error)?;
            let slot = match name.as_str() {
                "control" => &mut control,
                "md5sums" => &mut md5sums,
                "conffiles" => &mut conffiles,
                _ => {
                    others.push((name, mode, bytes));
                    continue;
                }
            };
            let text = String::from_utf8(bytes).map_err(|e| {
                read_error(std::io::Error::new(std::io::ErrorKind::InvalidData, e.utf8_error()))
            })?;
            *slot = Some(text);
        }
        let control = control.ok_or_else(|| Error::NotADeb {
            path: self.path.clone(),
            message: format!("no `control` file in {}", m.name),
        })?;
        let file = format!("{}:{}/control", self.path.display(), m.name);
        let paragraphs = deb822::parse(&control, &file)?;
        if paragraphs.len() != 1 {
            return Err(Error::Deb822 {
                file,
                line: 1,
                message: format!("expected one paragraph, found {}", paragraphs.len()),
            });
        }
        let conffiles = conffiles
            .unwrap_or_default()
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect();
        others.sort();
        Ok(Control { control, md5sums, conffiles, others })
    }

    /// The data archive, decompressed as it is read.
    pub fn data(&self) -> Result<tar::Archive<Box<dyn Read + Send>>> {
        let m = self.member("data.tar")?;
        Ok(tar::Archive::new(self.open_member(m)?))
    }
}
