//! Where things are in a JSON document.
//!
//! serde_json validates a file and tells where it is malformed, but a valid
//! document loses its positions once deserialized. Diagnostics such as "this
//! run config's `type` does not fit the plugin" must point at the offending
//! value, so this module re-reads an already validated document and records
//! the byte span of every value and object key. It assumes its input is valid
//! JSON (callers run serde_json first) and gives up quietly otherwise.

use std::ops::Range;

/// A JSON value with the byte range it occupies in the source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// Bytes of the whole value, from its first to its last character.
    pub span: Range<usize>,
    /// What kind of value, with children for containers.
    pub kind: NodeKind,
}

/// The shape of a [`Node`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeKind {
    /// An object: keys (decoded), their spans, and values in source order.
    Object(Vec<Member>),
    /// An array's elements in order.
    Array(Vec<Node>),
    /// A string, number, boolean or null.
    Scalar,
}

/// One `"key": value` pair of an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The decoded key.
    pub key: String,
    /// Bytes of the key including its quotes.
    pub key_span: Range<usize>,
    /// The value.
    pub value: Node,
}

impl Node {
    /// The value of `key` when this node is an object holding it (the last
    /// one wins for duplicate keys, as serde_json does).
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.member(key).map(|m| &m.value)
    }

    /// The member for `key` when this node is an object holding it.
    pub fn member(&self, key: &str) -> Option<&Member> {
        match &self.kind {
            NodeKind::Object(members) => members.iter().rev().find(|m| m.key == key),
            _ => None,
        }
    }

    /// Element `index` when this node is an array.
    pub fn at(&self, index: usize) -> Option<&Node> {
        match &self.kind {
            NodeKind::Array(items) => items.get(index),
            _ => None,
        }
    }
}

/// Parses `src`, which must be valid JSON; `None` when it is not.
pub fn parse(src: &str) -> Option<Node> {
    let mut p = Parser { src: src.as_bytes(), pos: 0 };
    p.skip_ws();
    let node = p.value(0)?;
    p.skip_ws();
    (p.pos == p.src.len()).then_some(node)
}

/// Nesting deeper than this is refused rather than risking the stack; serde_json
/// refuses at 128 already, so valid input never gets here.
const MAX_DEPTH: usize = 256;

struct Parser<'a> {
    src: &'a [u8],
    pos: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.src.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn eat(&mut self, byte: u8) -> Option<()> {
        self.skip_ws();
        (self.peek()? == byte).then(|| self.pos += 1)
    }

    /// The members of an object or the items of an array, its opening byte
    /// eaten, up to and including `close`: `item` reads one, and a `,` or
    /// `close` must follow it.
    fn list<T>(&mut self, close: u8, mut item: impl FnMut(&mut Self) -> Option<T>) -> Option<Vec<T>> {
        let mut items = Vec::new();
        self.skip_ws();
        if self.peek()? == close {
            self.pos += 1;
            return Some(items);
        }
        loop {
            items.push(item(self)?);
            self.skip_ws();
            match self.peek()? {
                b',' => self.pos += 1,
                byte if byte == close => {
                    self.pos += 1;
                    return Some(items);
                }
                _ => return None,
            }
        }
    }

    fn value(&mut self, depth: usize) -> Option<Node> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.skip_ws();
        let start = self.pos;
        let kind = match self.peek()? {
            b'{' => {
                self.pos += 1;
                let members = self.list(b'}', |p| {
                    p.skip_ws();
                    let key_start = p.pos;
                    let key = p.string()?;
                    let key_span = key_start..p.pos;
                    p.eat(b':')?;
                    let value = p.value(depth + 1)?;
                    Some(Member { key, key_span, value })
                })?;
                NodeKind::Object(members)
            }
            b'[' => {
                self.pos += 1;
                NodeKind::Array(self.list(b']', |p| p.value(depth + 1))?)
            }
            b'"' => {
                self.string()?;
                NodeKind::Scalar
            }
            _ => {
                while matches!(self.peek(), Some(b) if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'+' | b'.'))
                {
                    self.pos += 1;
                }
                if self.pos == start {
                    return None;
                }
                NodeKind::Scalar
            }
        };
        Some(Node { span: start..self.pos, kind })
    }

    /// Reads a string starting at the current `"` and decodes it.
    fn string(&mut self) -> Option<String> {
        if self.peek()? != b'"' {
            return None;
        }
        let start = self.pos;
        self.pos += 1;
        loop {
            match self.peek()? {
                b'\\' => self.pos += 2,
                b'"' => {
                    self.pos += 1;
                    break;
                }
                _ => self.pos += 1,
            }
        }
        let raw = std::str::from_utf8(self.src.get(start..self.pos)?).ok()?;
        serde_json::from_str(raw).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_nested_values() {
        let src = r#" [ {"title": "a", "type": "train", "config": {"x": [1, 2.5e3]}}, {"ty\"pe": null} ] "#;
        let doc = parse(src).unwrap();
        let first = doc.at(0).unwrap();
        let ty = first.get("type").unwrap();
        assert_eq!(&src[ty.span.clone()], "\"train\"");
        let config = first.get("config").unwrap();
        assert_eq!(&src[config.span.clone()], r#"{"x": [1, 2.5e3]}"#);
        let second = doc.at(1).unwrap();
        assert_eq!(second.member("ty\"pe").map(|m| &src[m.key_span.clone()]), Some(r#""ty\"pe""#));
        assert!(doc.at(2).is_none());
    }

    #[test]
    fn duplicate_keys_resolve_to_the_last() {
        let src = r#"{"a": 1, "a": 2}"#;
        let doc = parse(src).unwrap();
        assert_eq!(&src[doc.get("a").unwrap().span.clone()], "2");
    }

    #[test]
    fn invalid_input_gives_none() {
        assert!(parse("{").is_none());
        assert!(parse("[1,]").is_none());
        assert!(parse("1 2").is_none());
    }
}
