//! Splitting instruction arguments into words the way BuildKit does:
//! whitespace separates words except inside single or double quotes, and
//! the escape character protects the next character. Variables are left as
//! written; substitution is a later step.

/// One word of an instruction's arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    /// The word as written, quotes and escapes included.
    pub raw: String,
    /// The word with quotes removed and escapes applied.
    pub text: String,
    /// Byte offset of the word in the arguments.
    pub start: usize,
}

/// Splits `args` into words.
pub fn split_words(args: &str, escape: char) -> Vec<Word> {
    scan(args, escape, true)
}

/// Removes quotes and applies escapes, keeping whitespace as it is (a value
/// such as the rest of a legacy `ENV KEY value` line).
pub fn unquote(text: &str, escape: char) -> String {
    scan(text, escape, false).into_iter().next().map(|w| w.text).unwrap_or_default()
}

fn scan(args: &str, escape: char, split: bool) -> Vec<Word> {
    let mut words = Vec::new();
    let mut chars = args.char_indices().peekable();
    while let Some(&(start, c)) = chars.peek() {
        if split && c.is_whitespace() {
            chars.next();
            continue;
        }
        let mut text = String::new();
        let mut quote: Option<char> = None;
        let mut end = args.len();
        while let Some(&(i, c)) = chars.peek() {
            match quote {
                None if split && c.is_whitespace() => {
                    end = i;
                    break;
                }
                None if c == '"' || c == '\'' => quote = Some(c),
                Some(q) if c == q => quote = None,
                Some('\'') => text.push(c),
                _ if c == escape => {
                    chars.next();
                    match chars.peek() {
                        Some(&(_, next)) => text.push(next),
                        None => text.push(c),
                    }
                }
                _ => text.push(c),
            }
            chars.next();
        }
        words.push(Word { raw: args[start..end].to_string(), text, start });
    }
    words
}

/// One `KEY=value` of an `ENV` (or `LABEL`) instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvPair {
    /// The name.
    pub key: String,
    /// The value with quotes removed; variables not yet substituted.
    pub value: String,
    /// Byte offset of the key in the arguments.
    pub key_start: usize,
    /// Byte offset of the value in the arguments.
    pub value_start: usize,
}

/// Reads the arguments of `ENV`: either `KEY=value ...` pairs, or the older
/// `KEY value` form where the value is the rest of the line. The error is a
/// message and the byte offset it is about.
pub fn parse_env(args: &str, escape: char) -> Result<Vec<EnvPair>, (usize, String)> {
    let words = split_words(args, escape);
    let Some(first) = words.first() else {
        return Err((0, "missing variable name".into()));
    };
    if !first.raw.contains('=') {
        // Legacy form: `ENV KEY value with spaces`.
        let Some(second) = words.get(1) else {
            return Err((first.start, format!("`{}` has no value: write `{0}=value`", first.raw)));
        };
        let value = unquote(&args[second.start..], escape);
        return Ok(vec![EnvPair {
            key: first.raw.clone(),
            value,
            key_start: first.start,
            value_start: second.start,
        }]);
    }
    words
        .iter()
        .map(|word| {
            let Some((key, value)) = word.raw.split_once('=') else {
                return Err((word.start, format!("`{}` is not of the form `NAME=value`", word.raw)));
            };
            if key.is_empty() {
                return Err((word.start, "missing variable name before `=`".into()));
            }
            Ok(EnvPair {
                key: key.to_string(),
                value: unquote(value, escape),
                key_start: word.start,
                value_start: word.start + key.len() + 1,
            })
        })
        .collect()
}
