//! Debian versions (`[epoch:]upstream[-revision]`), compared exactly as dpkg
//! does, and the relations `<<`, `<=`, `=`, `>=`, `>>` between them.
//!
//! Equality is dpkg's: `1.0`, `0:1.0` and `1.0-0` are the same version, so
//! [`Version`] implements `Eq`/`Ord` but not `Hash`; [`Version::as_str`]
//! keeps the text as written.

use std::cmp::Ordering;
use std::fmt;

use crate::error::{Error, Result};

/// A parsed Debian version.
#[derive(Debug, Clone)]
pub struct Version {
    text: String,
    epoch: u32,
    // Byte ranges of `text`.
    upstream: (usize, usize),
    revision: (usize, usize),
}

impl Version {
    /// Parses a version with dpkg's rules: an optional numeric epoch before
    /// the first `:`, a revision after the last `-`, an upstream part that
    /// starts with a digit, and only the characters dpkg allows.
    pub fn parse(text: &str) -> Result<Version> {
        let err = |message: &str| Error::Version { version: text.to_owned(), message: message.to_owned() };
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(err("version string is empty"));
        }
        if trimmed.contains(char::is_whitespace) {
            return Err(err("version string has embedded spaces"));
        }
        let (epoch, rest_start) = match trimmed.find(':') {
            Some(colon) => {
                let e = &trimmed[..colon];
                if e.is_empty() {
                    return Err(err("epoch in version is empty"));
                }
                if !e.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(err("epoch in version is not number"));
                }
                let epoch: u32 = e
                    .parse()
                    .ok()
                    .filter(|&n| n <= i32::MAX as u32)
                    .ok_or_else(|| err("epoch in version is too big"))?;
                if colon + 1 == trimmed.len() {
                    return Err(err("nothing after colon in version number"));
                }
                (epoch, colon + 1)
            }
            None => (0, 0),
        };
        let rest = &trimmed[rest_start..];
        let (up, rev) = match rest.rfind('-') {
            Some(dash) => {
                if dash + 1 == rest.len() {
                    return Err(err("revision number is empty"));
                }
                ((rest_start, rest_start + dash), (rest_start + dash + 1, trimmed.len()))
            }
            None => ((rest_start, trimmed.len()), (trimmed.len(), trimmed.len())),
        };
        let upstream = &trimmed[up.0..up.1];
        if upstream.is_empty() {
            return Err(err("version number is empty"));
        }
        if !upstream.starts_with(|c: char| c.is_ascii_digit()) {
            return Err(err("version number does not start with digit"));
        }
        if !upstream.chars().all(|c| c.is_ascii_alphanumeric() || ".-+~:".contains(c)) {
            return Err(err("invalid character in version number"));
        }
        if !trimmed[rev.0..rev.1].chars().all(|c| c.is_ascii_alphanumeric() || ".+~".contains(c)) {
            return Err(err("invalid character in revision number"));
        }
        let text = trimmed.to_owned();
        Ok(Version { text, epoch, upstream: up, revision: rev })
    }

    /// The version as written (without surrounding blanks).
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The epoch, 0 when absent.
    pub fn epoch(&self) -> u32 {
        self.epoch
    }

    /// The upstream part.
    pub fn upstream(&self) -> &str {
        &self.text[self.upstream.0..self.upstream.1]
    }

    /// The Debian revision, empty when absent.
    pub fn revision(&self) -> &str {
        &self.text[self.revision.0..self.revision.1]
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::str::FromStr for Version {
    type Err = Error;
    fn from_str(s: &str) -> Result<Version> {
        Version::parse(s)
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Version) -> Ordering {
        self.epoch
            .cmp(&other.epoch)
            .then_with(|| verrevcmp(self.upstream(), other.upstream()))
            .then_with(|| verrevcmp(self.revision(), other.revision()))
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Version) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Version {
    fn eq(&self, other: &Version) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Version {}

/// dpkg's `order()`: `~` first, then the end of the string and digits,
/// then letters, then everything else.
fn order(c: u8) -> i32 {
    match c {
        b'~' => -1,
        0 => 0,
        c if c.is_ascii_digit() => 0,
        c if c.is_ascii_alphabetic() => i32::from(c),
        c => i32::from(c) + 256,
    }
}

/// dpkg's `verrevcmp()` over one part (upstream or revision).
fn verrevcmp(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let at = |s: &[u8], i: usize| s.get(i).copied().unwrap_or(0);
    let (mut i, mut j) = (0usize, 0usize);
    while i < a.len() || j < b.len() {
        let mut first_diff = 0i32;
        while (i < a.len() && !a[i].is_ascii_digit()) || (j < b.len() && !b[j].is_ascii_digit()) {
            let (ac, bc) = (order(at(a, i)), order(at(b, j)));
            if ac != bc {
                return ac.cmp(&bc);
            }
            i += 1;
            j += 1;
        }
        while at(a, i) == b'0' {
            i += 1;
        }
        while at(b, j) == b'0' {
            j += 1;
        }
        while at(a, i).is_ascii_digit() && at(b, j).is_ascii_digit() {
            if first_diff == 0 {
                first_diff = i32::from(a[i]) - i32::from(b[j]);
            }
            i += 1;
            j += 1;
        }
        if at(a, i).is_ascii_digit() {
            return Ordering::Greater;
        }
        if at(b, j).is_ascii_digit() {
            return Ordering::Less;
        }
        if first_diff != 0 {
            return first_diff.cmp(&0);
        }
    }
    Ordering::Equal
}

/// A version relation operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// `<<`: strictly earlier.
    Lt,
    /// `<=` (and the obsolete `<`).
    Le,
    /// `=`.
    Eq,
    /// `>=` (and the obsolete `>`).
    Ge,
    /// `>>`: strictly later.
    Gt,
}

impl Op {
    /// Parses an operator; the obsolete `<` and `>` mean `<=` and `>=`, as
    /// in dpkg.
    pub fn parse(s: &str) -> Option<Op> {
        Some(match s {
            "<<" => Op::Lt,
            "<=" | "<" => Op::Le,
            "=" => Op::Eq,
            ">=" | ">" => Op::Ge,
            ">>" => Op::Gt,
            _ => return None,
        })
    }

    /// The canonical spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Lt => "<<",
            Op::Le => "<=",
            Op::Eq => "=",
            Op::Ge => ">=",
            Op::Gt => ">>",
        }
    }

    /// Whether `version OP reference` holds.
    pub fn holds(self, version: &Version, reference: &Version) -> bool {
        let o = version.cmp(reference);
        match self {
            Op::Lt => o == Ordering::Less,
            Op::Le => o != Ordering::Greater,
            Op::Eq => o == Ordering::Equal,
            Op::Ge => o != Ordering::Less,
            Op::Gt => o == Ordering::Greater,
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap_or_else(|e| panic!("{e}"))
    }

    /// From dpkg's `lib/dpkg/t/t-version.c` and APT's comparison tests
    /// (`test/libapt/compareversion_test.cc`), which dpkg agrees with.
    #[test]
    fn compare_table() {
        use Ordering::*;
        let cases: &[(&str, &str, Ordering)] = &[
            ("0:0-0", "0:0-0", Equal),
            ("0:0-00", "0:00-0", Equal),
            ("1:2-3", "1:2-3", Equal),
            ("0:0-0", "1:0-0", Less),
            ("0:1-0", "0:2-0", Less),
            ("0:1-1", "0:1-2", Less),
            ("1:0-0", "0:0-0", Greater),
            ("0:2-0", "0:1-0", Greater),
            ("0:1-2", "0:1-1", Greater),
            ("0:0a", "0:0a", Equal),
            ("1.0", "1.0", Equal),
            ("7.6p2-4", "7.6-0", Greater),
            ("1.0.3-3", "1.0-1", Greater),
            ("1.3", "1.2.2-2", Greater),
            ("1.3", "1.2.2", Greater),
            ("0-pre", "0-pre", Equal),
            ("0-pre", "0-pree", Less),
            ("1.1.6r2-2", "1.1.6r-1", Greater),
            ("2.6b2-1", "2.6b-2", Greater),
            ("98.1p5-1", "98.1-pre2-b6-2", Less),
            ("0.4a6-2", "0.4-1", Greater),
            ("1:3.0.5-2", "1:3.0.5.1", Less),
            ("3.0~rc1-1", "3.0-1", Less),
            ("1.0", "1.0-0", Equal),
            ("0.2", "1.0-0", Less),
            ("1.0", "1.0-0+b1", Less),
            ("1.0", "1.0-0~", Greater),
            ("0:0-0-0", "0-0", Greater),
            ("0", "0", Equal),
            ("0", "00", Equal),
            ("1.2.3", "1.2.3", Equal),
            ("4.4.3-2", "4.4.3-2", Equal),
            ("1:2ab:5", "1:2ab:5", Equal),
            ("7:1-a:b-5", "7:1-a:b-5", Equal),
            ("57:1.2.3abYZ+~-4-5", "57:1.2.3abYZ+~-4-5", Equal),
            ("1.2.3", "0:1.2.3", Equal),
            ("1.2.3", "1.2.3-0", Equal),
            ("009", "9", Equal),
            ("009ab5", "9ab5", Equal),
            ("1.2.3", "1.2.3-1", Less),
            ("1.2.3", "1.2.4", Less),
            ("1.2.4", "1.2.3", Greater),
            ("1.2.24", "1.2.3", Greater),
            ("0.10.0", "0.8.7", Greater),
            ("3.2", "2.3", Greater),
            ("1.3.2a", "1.3.2", Greater),
            ("0.5.0~git", "0.5.0~git2", Less),
            ("2a", "21", Less),
            ("1.3.2a", "1.3.2b", Less),
            ("1:1.2.3", "1.2.4", Greater),
            ("1:1.2.3", "1:1.2.4", Less),
            ("1.2a+~bCd3", "1.2a++", Less),
            ("1.2a+~bCd3", "1.2a+~", Greater),
            ("5:2", "304-2", Greater),
            ("5:2", "304:2", Less),
            ("25:2", "3:2", Greater),
            ("1:2:123", "1:12:4", Less),
            ("1.2-5", "1.2-3-5", Less),
            ("5.10.0", "5.005", Greater),
            ("3a9.8", "3.10.2", Less),
            ("3a9.8", "3~10", Greater),
            ("1.4+OOo3.0.0~", "1.4+OOo3.0.0-4", Less),
            ("2.4.7-1", "2.4.7-z", Less),
            ("1.002-1+b2", "1.00", Greater),
            // `~` sorts before the end of the string, even before nothing.
            ("1.0~rc1", "1.0", Less),
            ("1.0~~", "1.0~", Less),
            ("1.0~~a", "1.0~~", Greater),
            ("1.0~", "1.0", Less),
            ("1.0a", "1.0", Greater),
            ("1.0+", "1.0", Greater),
            ("1.0+", "1.0a", Greater),
            ("1.0.", "1.0+", Greater),
            ("3.11.2-6+deb12u1", "3.11.2-6", Greater),
            ("3.11.2-6+deb12u1", "3.11.2-6+deb12u10", Less),
            ("2.36-9+deb12u10", "2.36-9+deb12u9", Greater),
            ("1:2.0", "2:1.0", Less),
        ];
        for (a, b, expected) in cases {
            assert_eq!(v(a).cmp(&v(b)), *expected, "{a} vs {b}");
            assert_eq!(v(b).cmp(&v(a)), expected.reverse(), "{b} vs {a}");
        }
    }

    #[test]
    fn parts() {
        let cases: &[(&str, u32, &str, &str)] = &[
            ("1.0", 0, "1.0", ""),
            ("2:1.0-3", 2, "1.0", "3"),
            ("1.0-2-3", 0, "1.0-2", "3"),
            ("1:2:3-4", 1, "2:3", "4"),
            ("  1.0  ", 0, "1.0", ""),
        ];
        for (text, epoch, up, rev) in cases {
            let ver = v(text);
            assert_eq!((ver.epoch(), ver.upstream(), ver.revision()), (*epoch, *up, *rev), "{text}");
        }
    }

    /// The parse errors of dpkg's `t-version.c`.
    #[test]
    fn parse_errors() {
        let cases: &[(&str, &str)] = &[
            ("", "version string is empty"),
            ("   ", "version string is empty"),
            ("0:0 0-1", "version string has embedded spaces"),
            ("a:0-0", "epoch in version is not number"),
            ("-1:0-1", "epoch in version is not number"),
            (":1.0", "epoch in version is empty"),
            ("999999999999999999999:0-0", "epoch in version is too big"),
            ("0:", "nothing after colon in version number"),
            ("0:0-", "revision number is empty"),
            ("0:-1", "version number is empty"),
            ("0:abc3-0", "version number does not start with digit"),
            ("0:0@-0", "invalid character in version number"),
            ("0:0!-0", "invalid character in version number"),
            ("0:0-0@", "invalid character in revision number"),
            ("0:0-0:1", "invalid character in revision number"),
        ];
        for (text, message) in cases {
            match Version::parse(text) {
                Err(Error::Version { message: m, .. }) => assert_eq!(m, *message, "{text:?}"),
                other => panic!("{text:?}: expected an error, got {other:?}"),
            }
        }
    }

    #[test]
    fn relations() {
        let cases: &[(&str, &str, &str, bool)] = &[
            ("1.0", "<<", "1.1", true),
            ("1.1", "<<", "1.1", false),
            ("1.1", "<=", "1.1", true),
            ("1.2", "<=", "1.1", false),
            ("1.1", "<", "1.1", true),
            ("1.0", "<", "1.1", true),
            ("1.1", "=", "1.1-0", true),
            ("1.1", "=", "1.1-1", false),
            ("1.1", ">=", "1.1", true),
            ("1.0", ">=", "1.1", false),
            ("1.1", ">", "1.1", true),
            ("1.2", ">", "1.1", true),
            ("1.2", ">>", "1.1", true),
            ("1.1", ">>", "1.1", false),
            ("1.0~rc1", ">=", "1.0", false),
            ("1.0~rc1", ">=", "1.0~", true),
        ];
        for (a, op, b, expected) in cases {
            let op = Op::parse(op).unwrap();
            assert_eq!(op.holds(&v(a), &v(b)), *expected, "{a} {op} {b}");
        }
        assert_eq!(Op::parse("=="), None);
        assert_eq!(Op::parse("<").unwrap().as_str(), "<=");
    }
}
