//! `RECORD` files (the wheel spec's "recording installed projects"): CSV
//! rows `path,hash,size` as Python's `csv` module reads and writes them
//! (the `excel` dialect pip uses: `,` between fields, `"` quoting only
//! where needed with `""` for a quote, rows ending in `\r\n`), and their
//! `algorithm=urlsafe-base64-nopad` hashes.

use base64::Engine as _;
use sha2::Digest as _;

/// One row of a `RECORD`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Row {
    /// The path, `/`-separated, relative to the directory holding the
    /// `.dist-info` (may start with `../` for scripts and data).
    pub path: String,
    /// `sha256=<urlsafe base64 without padding>`, or empty.
    pub hash: String,
    /// The size in bytes as written, or empty.
    pub size: String,
}

/// Why a `RECORD` could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct RecordError {
    /// The 1-based line.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// Parses the CSV text of a `RECORD`; rows must have one to three fields
/// (pip reads more and ignores them with a warning; we refuse them).
pub fn parse(text: &str) -> Result<Vec<Row>, RecordError> {
    let mut rows = Vec::new();
    let mut fields: Vec<String> = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut in_quotes = false;
    let mut line = 1;
    let mut row_line = 1;
    let mut chars = text.chars().peekable();
    let mut finish_row = |fields: &mut Vec<String>, row_line: usize| -> Result<(), RecordError> {
        let taken = std::mem::take(fields);
        if taken.len() == 1 && taken[0].is_empty() {
            return Ok(());
        }
        if taken.len() > 3 {
            return Err(RecordError {
                line: row_line,
                message: format!("{} fields, expected at most 3", taken.len()),
            });
        }
        let mut taken = taken.into_iter();
        rows.push(Row {
            path: taken.next().unwrap_or_default(),
            hash: taken.next().unwrap_or_default(),
            size: taken.next().unwrap_or_default(),
        });
        Ok(())
    };
    while let Some(c) = chars.next() {
        if in_quotes {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => in_quotes = false,
                '\n' => {
                    line += 1;
                    field.push(c);
                }
                _ => field.push(c),
            }
            continue;
        }
        match c {
            '"' if field.is_empty() && !quoted => {
                quoted = true;
                in_quotes = true;
            }
            ',' => {
                fields.push(std::mem::take(&mut field));
                quoted = false;
            }
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' | '\r' => {
                fields.push(std::mem::take(&mut field));
                quoted = false;
                finish_row(&mut fields, row_line)?;
                line += 1;
                row_line = line;
            }
            _ if quoted => {
                return Err(RecordError { line, message: format!("`{c}` after a closing quote") });
            }
            _ => field.push(c),
        }
    }
    if in_quotes {
        return Err(RecordError { line, message: "unterminated quote".to_owned() });
    }
    if !field.is_empty() || quoted || !fields.is_empty() {
        fields.push(field);
        finish_row(&mut fields, row_line)?;
    }
    Ok(rows)
}

/// One field as Python's `csv.writer` (`QUOTE_MINIMAL`) writes it.
fn quote(field: &str) -> String {
    if field.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_owned()
    }
}

/// The text of a `RECORD` with `rows` in the order given, as pip writes it.
pub fn write(rows: &[Row]) -> String {
    let mut out = String::new();
    for row in rows {
        out.push_str(&quote(&row.path));
        out.push(',');
        out.push_str(&quote(&row.hash));
        out.push(',');
        out.push_str(&quote(&row.size));
        out.push_str("\r\n");
    }
    out
}

/// The hash algorithms a `RECORD` may use (the spec asks for sha256 or
/// stronger; md5 and sha1 are refused).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// `sha256`.
    Sha256,
    /// `sha384`.
    Sha384,
    /// `sha512`.
    Sha512,
}

impl Algorithm {
    /// The name a `RECORD` hash starts with.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha384 => "sha384",
            Algorithm::Sha512 => "sha512",
        }
    }

    /// A hasher of this algorithm.
    pub fn hasher(self) -> Hasher {
        match self {
            Algorithm::Sha256 => Hasher::Sha256(sha2::Sha256::new()),
            Algorithm::Sha384 => Hasher::Sha384(sha2::Sha384::new()),
            Algorithm::Sha512 => Hasher::Sha512(sha2::Sha512::new()),
        }
    }
}

/// A parsed `RECORD` hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hash {
    /// The algorithm.
    pub algorithm: Algorithm,
    /// The digest bytes.
    pub digest: Vec<u8>,
}

impl Hash {
    /// Parses `sha256=<urlsafe base64, no padding>`.
    pub fn parse(text: &str) -> Result<Hash, String> {
        let (name, encoded) =
            text.split_once('=').ok_or_else(|| format!("hash `{text}` has no `algorithm=`"))?;
        let algorithm = match name {
            "sha256" => Algorithm::Sha256,
            "sha384" => Algorithm::Sha384,
            "sha512" => Algorithm::Sha512,
            other => {
                return Err(format!("hash algorithm `{other}` is not accepted (sha256, sha384, sha512)"))
            }
        };
        let digest = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(encoded.trim_end_matches('='))
            .map_err(|e| format!("hash `{text}` is not urlsafe base64: {e}"))?;
        let expected = match algorithm {
            Algorithm::Sha256 => 32,
            Algorithm::Sha384 => 48,
            Algorithm::Sha512 => 64,
        };
        if digest.len() != expected {
            return Err(format!("hash `{text}` has {} bytes, expected {expected}", digest.len()));
        }
        Ok(Hash { algorithm, digest })
    }

    /// The hash as a `RECORD` writes it.
    pub fn field(&self) -> String {
        hash_field(self.algorithm, &self.digest)
    }
}

/// A running hash of one of the [`Algorithm`]s.
#[derive(Debug, Clone)]
pub enum Hasher {
    /// sha256.
    Sha256(sha2::Sha256),
    /// sha384.
    Sha384(sha2::Sha384),
    /// sha512.
    Sha512(sha2::Sha512),
}

impl Hasher {
    /// Adds bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(bytes),
            Hasher::Sha384(h) => h.update(bytes),
            Hasher::Sha512(h) => h.update(bytes),
        }
    }

    /// The digest bytes.
    pub fn finish(self) -> Vec<u8> {
        match self {
            Hasher::Sha256(h) => h.finalize().to_vec(),
            Hasher::Sha384(h) => h.finalize().to_vec(),
            Hasher::Sha512(h) => h.finalize().to_vec(),
        }
    }
}

/// `<algorithm>=<urlsafe base64 without padding>` of a digest.
pub fn hash_field(algorithm: Algorithm, digest: &[u8]) -> String {
    format!("{}={}", algorithm.name(), base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest))
}

/// The `RECORD` hash and size of `content` (sha256, as pip writes them).
pub fn hash_of(content: &[u8]) -> String {
    hash_field(Algorithm::Sha256, &sha2::Sha256::digest(content))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_python_csv() {
        let text = "a/b.py,sha256=x,3\r\n\"c,d.py\",,\n\"e\"\"f\",sha256=y,1\na.dist-info/RECORD,,";
        let rows = parse(text).unwrap();
        assert_eq!(rows.len(), 4);
        assert_eq!(rows[1].path, "c,d.py");
        assert_eq!(rows[2].path, "e\"f");
        assert_eq!(
            rows[3],
            Row { path: "a.dist-info/RECORD".into(), hash: String::new(), size: String::new() }
        );
        assert!(parse("a,b,c,d\n").is_err());
        assert!(parse("\"a\n").is_err());
    }

    #[test]
    fn writes_what_it_reads() {
        let rows = vec![
            Row { path: "../../../bin/x".into(), hash: "sha256=abc".into(), size: "10".into() },
            Row { path: "we,ird\"name".into(), hash: String::new(), size: String::new() },
        ];
        let text = write(&rows);
        assert_eq!(text, "../../../bin/x,sha256=abc,10\r\n\"we,ird\"\"name\",,\r\n");
        assert_eq!(parse(&text).unwrap(), rows);
    }

    #[test]
    fn hashes() {
        let digest = sha2::Sha256::digest(b"hello").to_vec();
        let field = hash_of(b"hello");
        assert_eq!(field, "sha256=LPJNul-wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ");
        assert_eq!(Hash::parse(&field).unwrap().digest, digest);
        assert!(Hash::parse("md5=XUFAKrxLKna5cZ2REBfFkg").is_err());
        assert!(Hash::parse("sha256=abc").is_err());
    }
}
