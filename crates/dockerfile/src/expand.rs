//! Variable substitution in Dockerfile words, with BuildKit's shell-word
//! semantics (its `shell.Lex`): quotes are removed, the escape character
//! applied, and `$VAR` / `${VAR...}` replaced by what `lookup` says.
//!
//! - `'...'`: taken literally, no expansion, no escapes.
//! - `"..."`: `$` expands; the escape character only escapes `"`, `$` and
//!   itself, and is kept before anything else.
//! - outside quotes, the escape character takes the next character
//!   literally (`\$HOME` is `$HOME`); at the end of the word it is dropped.
//! - `$NAME`, `${NAME}`: the value, or nothing when unset. A `$` not
//!   followed by a name or `{` is a literal `$`. Names are letters, digits
//!   and `_`; like BuildKit, `$1` (digits) and `$@ $* $# $? $- $$ $! $0`
//!   are special parameters, which are never set and expand to nothing.
//! - `${NAME:-word}` `word` when unset or empty; `${NAME-word}` only when
//!   unset. `${NAME:+word}` `word` when set and not empty; `${NAME+word}`
//!   when set. `${NAME:?msg}`/`${NAME?msg}` fail with `msg` (when unset or
//!   empty / when unset). `word` is itself expanded (nested `${..}`,
//!   quotes).
//! - `${NAME#pat}` `${NAME##pat}` `${NAME%pat}` `${NAME%%pat}`: remove the
//!   shortest/longest prefix/suffix matching the pattern (`*`, `?`, `\`
//!   escapes; like Go regexps in BuildKit, they do not match a newline).
//! - `${NAME/pat/rep}` and `${NAME//pat/rep}` are not supported: an error
//!   names the modifier.
//!
//! Errors carry the byte offset in the word they are about.
//!
//! Which instructions expand variables is Docker's choice, not the
//! syntax's: see [`expands`]. `ENV a=1 b=$a` expands both pairs with the
//! environment from before the instruction, as BuildKit does; that
//! sequencing is for the caller.

use crate::ast::RawWord;
use crate::keyword::Keyword;
use crate::Position;

/// How deeply `${..}` may nest in a default or alternative word.
const MAX_DEPTH: usize = 64;

/// The longest value an expansion may produce, in bytes: `ENV A=$A$A`
/// doubles a value per line, so without a bound forty lines ask for a
/// terabyte.
pub const MAX_EXPANDED: usize = 1 << 20;

/// Whether Docker substitutes variables in the arguments of `keyword`:
/// `ADD COPY ENV EXPOSE FROM LABEL STOPSIGNAL USER VOLUME WORKDIR` and the
/// defaults of `ARG`. `RUN`, `CMD`, `ENTRYPOINT` and `SHELL` are left to
/// the shell at run time; `HEALTHCHECK`, `ONBUILD` (expanded when the
/// trigger runs) and `MAINTAINER` are not expanded.
pub fn expands(keyword: Keyword) -> bool {
    match keyword {
        Keyword::Add
        | Keyword::Arg
        | Keyword::Copy
        | Keyword::Env
        | Keyword::Expose
        | Keyword::From
        | Keyword::Label
        | Keyword::Stopsignal
        | Keyword::User
        | Keyword::Volume
        | Keyword::Workdir => true,
        Keyword::Cmd
        | Keyword::Entrypoint
        | Keyword::Healthcheck
        | Keyword::Maintainer
        | Keyword::Onbuild
        | Keyword::Run
        | Keyword::Shell => false,
    }
}

/// A word that cannot be expanded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}")]
pub struct ExpandError {
    /// Byte offset in the word of what the error is about.
    pub offset: usize,
    /// What.
    pub kind: ExpandErrorKind,
}

/// The kinds of [`ExpandError`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExpandErrorKind {
    /// `'...` or `"...` without the closing quote.
    #[error("unterminated {}-quoted string", if *.0 == '\'' { "single" } else { "double" })]
    UnterminatedQuote(char),
    /// `${` without its `}`.
    #[error("missing `}}` to close `${{`")]
    MissingBrace,
    /// `${}`, `${:..}`, `${{..}`, `${NAME:}`; says what was expected.
    #[error("bad substitution: {0}")]
    BadSubstitution(&'static str),
    /// Something that is not a variable name after `${`.
    #[error("invalid variable name in `${{...}}`: {0}")]
    InvalidName(String),
    /// A modifier we do not support, such as `${NAME/a/b}` or `${NAME:=x}`.
    #[error("unsupported modifier `{0}` in substitution")]
    UnsupportedModifier(String),
    /// `${NAME?message}` or `${NAME:?message}` on an unset (or empty) variable.
    #[error("{name}: {message}")]
    Required {
        /// The variable.
        name: String,
        /// The message given, or a default one.
        message: String,
    },
    /// A `#`/`%` pattern that cannot be read.
    #[error("invalid pattern `{pattern}`: {reason}")]
    InvalidPattern {
        /// The pattern, after expansion.
        pattern: String,
        /// What is wrong.
        reason: String,
    },
    /// `${` nested deeper than we follow.
    #[error("substitutions nested more than {MAX_DEPTH} deep")]
    TooDeep,
    /// The expanded value would be longer than [`MAX_EXPANDED`] bytes.
    #[error("the expanded value is longer than {} MiB", MAX_EXPANDED >> 20)]
    TooLong,
}

/// A word of an instruction that cannot be expanded, with its position in
/// the Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{position}: {error}")]
pub struct WordExpandError {
    /// Where in the file.
    pub position: Position,
    /// What.
    pub error: ExpandError,
}

/// Expands one word: removes quotes, applies the escape character and
/// substitutes variables, `lookup` saying the value of a variable (`None`
/// when unset, which is not the same as empty).
pub fn expand_word(
    raw: &str,
    escape: char,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, ExpandError> {
    let mut ex =
        Expander { src: raw, pos: 0, escape, lookup, raw_escapes: false, skip_quotes: false, depth: 0 };
    Ok(ex.until(None, false)?.0)
}

/// Expands the body of a `COPY <<EOF` heredoc (one whose terminator is not
/// quoted), as BuildKit's `ExpandRaw` does: variables are substituted and
/// `\` takes the next character literally (`\$HOME` is `$HOME`), but
/// quotes are text like any other (BuildKit's `SkipProcessQuotes`), so
/// `echo "$A"` keeps its quotes. The escape character is `\` whatever
/// `# escape=` says.
pub fn expand_heredoc(body: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, ExpandError> {
    let mut ex =
        Expander { src: body, pos: 0, escape: '\\', lookup, raw_escapes: false, skip_quotes: true, depth: 0 };
    Ok(ex.until(None, false)?.0)
}

/// Expands each of `words` on its own (the way `COPY`/`ADD` paths,
/// `EXPOSE` ports, `VOLUME` paths and `ENV`/`LABEL` keys and values are
/// expanded); the first failure is returned with its file position.
pub fn expand_words<'w>(
    words: impl IntoIterator<Item = &'w RawWord>,
    escape: char,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<String>, WordExpandError> {
    words
        .into_iter()
        .map(|w| {
            expand_word(&w.raw, escape, lookup)
                .map_err(|error| WordExpandError { position: w.position_at(error.offset), error })
        })
        .collect()
}

/// A cursor over a word being expanded.
struct Expander<'a> {
    src: &'a str,
    pos: usize,
    escape: char,
    lookup: &'a dyn Fn(&str) -> Option<String>,
    /// Keep escape characters in the output (in `#`/`%` patterns, where the
    /// pattern reader interprets them).
    raw_escapes: bool,
    /// Quotes are plain characters (heredoc bodies).
    skip_quotes: bool,
    depth: usize,
}

impl Expander<'_> {
    fn peek(&self) -> Option<char> {
        self.src[self.pos..].chars().next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    fn err<T>(&self, offset: usize, kind: ExpandErrorKind) -> Result<T, ExpandError> {
        Err(ExpandError { offset, kind })
    }

    /// Reads up to `stop` (consumed) or the end of the word; says whether
    /// `stop` was found.
    fn until(&mut self, stop: Option<char>, raw_escapes: bool) -> Result<(String, bool), ExpandError> {
        let saved = std::mem::replace(&mut self.raw_escapes, raw_escapes);
        let result = self.until_inner(stop);
        self.raw_escapes = saved;
        result
    }

    fn until_inner(&mut self, stop: Option<char>) -> Result<(String, bool), ExpandError> {
        let mut out = String::new();
        while let Some(c) = self.peek() {
            if Some(c) == stop {
                self.bump();
                return Ok((out, true));
            }
            let at = self.pos;
            match c {
                '$' => out += &self.dollar()?,
                '\'' if !self.skip_quotes => out += &self.single_quoted()?,
                '"' if !self.skip_quotes => out += &self.double_quoted()?,
                _ => {
                    self.bump();
                    if c == self.escape {
                        if self.raw_escapes {
                            out.push(c);
                        }
                        match self.bump() {
                            Some(next) => out.push(next),
                            None => break,
                        }
                    } else {
                        out.push(c);
                    }
                }
            }
            self.bounded(&out, at)?;
        }
        Ok((out, false))
    }

    /// Fails when `out`, the value being built, has outgrown
    /// [`MAX_EXPANDED`]; `at` is the offset of what made it so.
    fn bounded(&self, out: &str, at: usize) -> Result<(), ExpandError> {
        if out.len() > MAX_EXPANDED {
            return self.err(at, ExpandErrorKind::TooLong);
        }
        Ok(())
    }

    fn single_quoted(&mut self) -> Result<String, ExpandError> {
        let start = self.pos;
        self.bump();
        let mut out = String::new();
        loop {
            match self.bump() {
                None => return self.err(start, ExpandErrorKind::UnterminatedQuote('\'')),
                Some('\'') => return Ok(out),
                Some(c) => out.push(c),
            }
        }
    }

    fn double_quoted(&mut self) -> Result<String, ExpandError> {
        let start = self.pos;
        self.bump();
        let mut out = String::new();
        loop {
            let at = self.pos;
            self.bounded(&out, at)?;
            match self.peek() {
                None => return self.err(start, ExpandErrorKind::UnterminatedQuote('"')),
                Some('"') => {
                    self.bump();
                    return Ok(out);
                }
                Some('$') => out += &self.dollar()?,
                Some(_) => {
                    let mut c = self.bump().unwrap_or_default();
                    if c == self.escape {
                        if self.raw_escapes {
                            out.push(c);
                        }
                        match self.peek() {
                            None => continue,
                            Some(next) if next == '"' || next == '$' || next == self.escape => {
                                c = next;
                                self.bump();
                            }
                            Some(_) => {}
                        }
                    }
                    out.push(c);
                }
            }
        }
    }

    /// A variable name, BuildKit's `processName`: digits, one special
    /// parameter character, or letters, digits and `_`.
    fn name(&mut self) -> String {
        let start = self.pos;
        match self.peek() {
            Some(c) if c.is_ascii_digit() => {
                while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                    self.bump();
                }
            }
            Some('@' | '*' | '#' | '?' | '-' | '$' | '!') => {
                self.bump();
            }
            _ => {
                while self.peek().is_some_and(|c| c.is_alphanumeric() || c == '_') {
                    self.bump();
                }
            }
        }
        self.src[start..self.pos].to_string()
    }

    fn get(&self, name: &str) -> Option<String> {
        (self.lookup)(name)
    }

    fn dollar(&mut self) -> Result<String, ExpandError> {
        let start = self.pos;
        self.bump();
        if self.peek() != Some('{') {
            let name = self.name();
            return Ok(if name.is_empty() { "$".to_string() } else { self.get(&name).unwrap_or_default() });
        }
        if self.depth >= MAX_DEPTH {
            return self.err(start, ExpandErrorKind::TooDeep);
        }
        self.depth += 1;
        let result = self.braced(start);
        self.depth -= 1;
        result
    }

    /// `${...}`, the cursor after `${`; `start` is where the `$` is.
    fn braced(&mut self, start: usize) -> Result<String, ExpandError> {
        self.bump();
        match self.peek() {
            None => return self.err(start, ExpandErrorKind::MissingBrace),
            Some('{' | '}' | ':') => {
                return self.err(
                    self.pos,
                    ExpandErrorKind::BadSubstitution("`${` must be followed by a variable name"),
                )
            }
            Some(_) => {}
        }
        let name_at = self.pos;
        let name = self.name();
        let modifier_at = self.pos;
        let Some(c) = self.bump() else {
            return self.err(start, ExpandErrorKind::MissingBrace);
        };
        if name.is_empty() {
            return self.err(name_at, ExpandErrorKind::InvalidName(format!("unexpected `{c}`")));
        }
        let (null_is_unset, modifier) = match c {
            '}' => return Ok(self.get(&name).unwrap_or_default()),
            ':' => match self.bump() {
                None => return self.err(start, ExpandErrorKind::MissingBrace),
                Some('}') => {
                    return self.err(
                        modifier_at,
                        ExpandErrorKind::BadSubstitution("`:` must be followed by `-`, `+` or `?`"),
                    )
                }
                Some(m) => (true, m),
            },
            '+' | '-' | '?' | '#' | '%' => (false, c),
            '/' => {
                let modifier = if self.peek() == Some('/') { "//" } else { "/" };
                return self.err(modifier_at, ExpandErrorKind::UnsupportedModifier(modifier.into()));
            }
            c if (c.is_alphanumeric() || c == '_')
                && !name.starts_with(|n: char| n.is_alphabetic() || n == '_') =>
            {
                return self.err(
                    name_at,
                    ExpandErrorKind::InvalidName(format!("a name cannot start with `{name}`")),
                );
            }
            c => return self.err(modifier_at, ExpandErrorKind::UnsupportedModifier(c.to_string())),
        };
        if !matches!(modifier, '+' | '-' | '?' | '#' | '%') {
            return self.err(modifier_at, ExpandErrorKind::UnsupportedModifier(format!(":{modifier}")));
        }
        let (word, closed) = self.until(Some('}'), matches!(modifier, '#' | '%'))?;
        if !closed {
            return self.err(start, ExpandErrorKind::MissingBrace);
        }
        let value = self.get(&name);
        let missing = match &value {
            None => true,
            Some(v) => null_is_unset && v.is_empty(),
        };
        match modifier {
            '-' => Ok(if missing { word } else { value.unwrap_or_default() }),
            '+' => Ok(if missing { String::new() } else { word }),
            '?' if missing => {
                let message = match (&value, word.is_empty()) {
                    (_, false) => word,
                    (None, true) => "is not allowed to be unset".to_string(),
                    (Some(_), true) => "is not allowed to be empty".to_string(),
                };
                self.err(start, ExpandErrorKind::Required { name, message })
            }
            '?' => Ok(value.unwrap_or_default()),
            _ => {
                let value = value.unwrap_or_default();
                let (greedy, pattern) = match word.strip_prefix(modifier) {
                    Some(rest) => (true, rest),
                    None => (false, word.as_str()),
                };
                let tokens = compile(pattern).map_err(|reason| ExpandError {
                    offset: modifier_at,
                    kind: ExpandErrorKind::InvalidPattern { pattern: pattern.to_string(), reason },
                })?;
                Ok(if modifier == '#' {
                    trim_prefix(&tokens, &value, greedy)
                } else {
                    trim_suffix(&tokens, &value, greedy)
                })
            }
        }
    }
}

/// One element of a `#`/`%` pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok {
    /// `*`: any run of characters.
    Star,
    /// `?`: one character.
    Any,
    /// Itself.
    Lit(char),
}

/// Reads a pattern as BuildKit's `convertShellPatternToRegex` does: `\`
/// makes `*`, `?` and `\` literal, and is dropped before `}` and `/`.
fn compile(pattern: &str) -> Result<Vec<Tok>, String> {
    let mut tokens = Vec::new();
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        tokens.push(match c {
            '*' => Tok::Star,
            '?' => Tok::Any,
            '\\' => match chars.next() {
                Some(c @ ('*' | '?' | '\\' | '}' | '/')) => Tok::Lit(c),
                Some(c) => return Err(format!("invalid escape `\\{c}`")),
                None => return Err("it ends with `\\`".into()),
            },
            c => Tok::Lit(c),
        });
    }
    Ok(tokens)
}

/// The lengths of the prefixes of `text` that `tokens` match as a whole,
/// ascending. The pattern is run as an NFA, so this is linear in `text`
/// for a given pattern.
fn matching_prefixes(tokens: &[Tok], text: &[char]) -> Vec<usize> {
    let n = tokens.len();
    let close = |states: &mut Vec<bool>| {
        for j in 0..n {
            if states[j] && tokens[j] == Tok::Star {
                states[j + 1] = true;
            }
        }
    };
    let mut states = vec![false; n + 1];
    states[0] = true;
    close(&mut states);
    let mut ends = Vec::new();
    for (i, &c) in text.iter().enumerate() {
        if states[n] {
            ends.push(i);
        }
        let mut next = vec![false; n + 1];
        for j in (0..n).filter(|j| states[*j]) {
            match tokens[j] {
                Tok::Star if c != '\n' => next[j] = true,
                Tok::Any if c != '\n' => next[j + 1] = true,
                Tok::Lit(l) if l == c => next[j + 1] = true,
                _ => {}
            }
        }
        close(&mut next);
        if !next.contains(&true) {
            return ends;
        }
        states = next;
    }
    if states[n] {
        ends.push(text.len());
    }
    ends
}

/// `${NAME#pattern}` (shortest) and `${NAME##pattern}` (longest).
fn trim_prefix(tokens: &[Tok], value: &str, greedy: bool) -> String {
    let chars: Vec<char> = value.chars().collect();
    let ends = matching_prefixes(tokens, &chars);
    match if greedy { ends.last() } else { ends.first() } {
        Some(&cut) => chars[cut..].iter().collect(),
        None => value.to_string(),
    }
}

/// `${NAME%pattern}` (shortest) and `${NAME%%pattern}` (longest): a prefix
/// match of the reversed pattern on the reversed value.
fn trim_suffix(tokens: &[Tok], value: &str, greedy: bool) -> String {
    let reversed: Vec<Tok> = tokens.iter().rev().copied().collect();
    let chars: Vec<char> = value.chars().rev().collect();
    let ends = matching_prefixes(&reversed, &chars);
    match if greedy { ends.last() } else { ends.first() } {
        Some(&cut) => chars[cut..].iter().rev().collect(),
        None => value.to_string(),
    }
}
