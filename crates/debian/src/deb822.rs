//! RFC-822-style control data (deb822): `Packages` indexes, `Release` bodies,
//! `control` files and dpkg's `status`.
//!
//! A document is paragraphs separated by blank lines; a paragraph is fields
//! `Name: value`, a value going on over continuation lines that start with a
//! space or a tab. Field names compare case-insensitively. Everything borrows
//! from the input, and every paragraph keeps its raw text, because dpkg's
//! `status` file is written from the control paragraphs as they were.

use crate::error::{Error, Result};

/// One field of a paragraph.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field<'a> {
    /// The name as written.
    pub name: &'a str,
    /// The value: the rest of the first line without surrounding blanks,
    /// then the continuation lines as written (joined by `\n`, each still
    /// starting with its space or tab), without the final newline.
    pub value: &'a str,
}

/// One paragraph of a deb822 document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paragraph<'a> {
    raw: &'a str,
    line: usize,
    fields: Vec<Field<'a>>,
}

impl<'a> Paragraph<'a> {
    /// The value of the field `name` (case-insensitive), if present.
    pub fn get(&self, name: &str) -> Option<&'a str> {
        self.fields.iter().find(|f| f.name.eq_ignore_ascii_case(name)).map(|f| f.value)
    }

    /// The fields in their order.
    pub fn fields(&self) -> &[Field<'a>] {
        &self.fields
    }

    /// The paragraph as written, from its first line to its last, ending in a
    /// newline (comment lines inside it included).
    pub fn raw(&self) -> &'a str {
        self.raw
    }

    /// The 1-based line of the paragraph's first field.
    pub fn line(&self) -> usize {
        self.line
    }
}

/// The lines of a multi-line field value without their leading blank; the
/// `.` that stands for an empty line is kept as written.
pub fn value_lines(value: &str) -> impl Iterator<Item = &str> {
    value.split('\n').map(|l| l.trim()).filter(|l| !l.is_empty())
}

/// Parses a whole document. `file` names the input in errors.
///
/// Lines starting with `#` are comments and skipped. Fails on a line that is
/// neither a field nor a continuation, on a continuation line before any
/// field, and on a field given twice in one paragraph.
pub fn parse<'a>(text: &'a str, file: &str) -> Result<Vec<Paragraph<'a>>> {
    let err = |line: usize, message: String| Error::Deb822 { file: file.to_owned(), line, message };
    let mut paragraphs = Vec::with_capacity(text.len() / 1024 + 1);
    // Fields of the current paragraph; `start` is its first byte.
    let mut fields: Vec<Field<'a>> = Vec::with_capacity(32);
    let mut start = 0usize;
    let mut first_line = 0usize;
    // The current field: name, and the byte range of its value so far.
    let mut current: Option<(&'a str, usize, usize)> = None;
    let mut pos = 0usize;
    let mut line_no = 0usize;
    let bytes = text.as_bytes();

    let finish_field = |fields: &mut Vec<Field<'a>>, current: &mut Option<(&'a str, usize, usize)>| {
        if let Some((name, from, to)) = current.take() {
            fields.push(Field { name, value: text[from..to].trim_end() });
        }
    };

    while pos < text.len() {
        line_no += 1;
        let end = match memchr_newline(&bytes[pos..]) {
            Some(i) => pos + i,
            None => text.len(),
        };
        let next = (end + 1).min(text.len());
        let line = text[pos..end].strip_suffix('\r').unwrap_or(&text[pos..end]);
        if line.trim().is_empty() {
            finish_field(&mut fields, &mut current);
            if !fields.is_empty() {
                check_duplicates(&fields)
                    .map_err(|name| err(first_line, format!("field `{name}` given twice")))?;
                paragraphs.push(Paragraph {
                    raw: &text[start..pos],
                    line: first_line,
                    fields: std::mem::take(&mut fields),
                });
            }
            pos = next;
            continue;
        }
        if line.starts_with('#') {
            pos = next;
            continue;
        }
        if line.starts_with([' ', '\t']) {
            match current.as_mut() {
                Some((_, _, to)) => *to = pos + line.len(),
                None => return Err(err(line_no, "continuation line outside a field".to_owned())),
            }
            pos = next;
            continue;
        }
        let Some(colon) = line.find(':') else {
            return Err(err(line_no, format!("expected `Field: value`, found `{}`", shorten(line))));
        };
        let name = &line[..colon];
        if name.is_empty() || name.contains([' ', '\t']) {
            return Err(err(line_no, format!("invalid field name `{}`", shorten(name))));
        }
        finish_field(&mut fields, &mut current);
        if fields.is_empty() {
            start = pos;
            first_line = line_no;
        }
        let value_start = pos + colon + 1;
        let skipped = text[value_start..pos + line.len()].len()
            - text[value_start..pos + line.len()].trim_start_matches([' ', '\t']).len();
        current = Some((name, value_start + skipped, pos + line.len()));
        pos = next;
    }
    finish_field(&mut fields, &mut current);
    if !fields.is_empty() {
        check_duplicates(&fields).map_err(|name| err(first_line, format!("field `{name}` given twice")))?;
        paragraphs.push(Paragraph { raw: &text[start..], line: first_line, fields });
    }
    Ok(paragraphs)
}

fn memchr_newline(bytes: &[u8]) -> Option<usize> {
    bytes.iter().position(|&b| b == b'\n')
}

fn check_duplicates<'a>(fields: &[Field<'a>]) -> Result<(), &'a str> {
    // Paragraphs are small: a quadratic check beats hashing here.
    for (i, a) in fields.iter().enumerate() {
        if fields[..i].iter().any(|b| b.name.eq_ignore_ascii_case(a.name)) {
            return Err(a.name);
        }
    }
    Ok(())
}

fn shorten(s: &str) -> String {
    let mut out: String = s.chars().take(60).collect();
    if out.len() < s.len() {
        out.push_str("...");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(text: &str) -> String {
        match parse(text, "t") {
            Ok(ps) => ps
                .iter()
                .map(|p| {
                    let fields: Vec<String> =
                        p.fields().iter().map(|f| format!("{}={:?}", f.name, f.value)).collect();
                    format!("@{} {} raw={:?}", p.line(), fields.join(" "), p.raw())
                })
                .collect::<Vec<_>>()
                .join("\n"),
            Err(e) => format!("error: {e}"),
        }
    }

    #[test]
    fn table() {
        let cases: &[(&str, &str)] = &[
            ("", ""),
            ("\n\n  \n", ""),
            ("A: 1\n", "@1 A=\"1\" raw=\"A: 1\\n\""),
            ("A: 1", "@1 A=\"1\" raw=\"A: 1\""),
            ("A:1\nB:   two words  \n", "@1 A=\"1\" B=\"two words\" raw=\"A:1\\nB:   two words  \\n\""),
            ("A: 1\n\nB: 2\n", "@1 A=\"1\" raw=\"A: 1\\n\"\n@3 B=\"2\" raw=\"B: 2\\n\""),
            ("A: 1\n \t\nB: 2\n", "@1 A=\"1\" raw=\"A: 1\\n\"\n@3 B=\"2\" raw=\"B: 2\\n\""),
            (
                "D: short\n long\n .\n more\nE: x\n",
                "@1 D=\"short\\n long\\n .\\n more\" E=\"x\" raw=\"D: short\\n long\\n .\\n more\\nE: x\\n\"",
            ),
            ("D:\n a\n b\n", "@1 D=\"\\n a\\n b\" raw=\"D:\\n a\\n b\\n\""),
            ("A: 1\r\nB: 2\r\n", "@1 A=\"1\" B=\"2\" raw=\"A: 1\\r\\nB: 2\\r\\n\""),
            ("# comment\nA: 1\n", "@2 A=\"1\" raw=\"A: 1\\n\""),
            ("A: x: y\n", "@1 A=\"x: y\" raw=\"A: x: y\\n\""),
            (" cont\n", "error: t:1: continuation line outside a field"),
            ("A: 1\nnonsense\n", "error: t:2: expected `Field: value`, found `nonsense`"),
            ("A: 1\n: x\n", "error: t:2: invalid field name ``"),
            ("A b: 1\n", "error: t:1: invalid field name `A b`"),
            ("A: 1\na: 2\n", "error: t:1: field `a` given twice"),
            (
                "-----BEGIN PGP SIGNED MESSAGE-----\n",
                "error: t:1: expected `Field: value`, found `-----BEGIN PGP SIGNED MESSAGE-----`",
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(render(input), *expected, "input {input:?}");
        }
    }

    #[test]
    fn get_is_case_insensitive() {
        let ps = parse("Package: foo\nPRE-depends: a\n", "t").unwrap();
        assert_eq!(ps[0].get("package"), Some("foo"));
        assert_eq!(ps[0].get("Pre-Depends"), Some("a"));
        assert_eq!(ps[0].get("Depends"), None);
    }

    #[test]
    fn value_lines_skip_blank_first_line() {
        let ps = parse("SHA256:\n abc 1 x\n def 2 y\n", "t").unwrap();
        let lines: Vec<&str> = value_lines(ps[0].get("sha256").unwrap()).collect();
        assert_eq!(lines, ["abc 1 x", "def 2 y"]);
    }
}
