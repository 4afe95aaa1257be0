//! BuildKit's heredocs (`RUN <<EOF`, `COPY <<EOF /file`), as its parser
//! reads them: which words of an instruction open one, what the
//! terminator is, whether the body is expanded, and the body itself.
//!
//! A word opens a heredoc when it is `<<WORD` as a whole (BuildKit's
//! `^(\d*)<<(-?)([^<]*)$` over the word with its quotes kept), in the
//! shell form of `RUN`, `COPY` and `ADD` (never in a JSON array). `WORD`
//! with its quotes removed is the terminator; a quote anywhere in it
//! (`<<"EOF"`, `<<'EOF'`) turns expansion of the body off; `<<-` strips
//! leading tabs from the body's lines and lets the terminator line have
//! them. The bodies follow the instruction's (logical) line in the order
//! their words appear, each up to the first line that is its terminator.

use crate::words::{split_words, unquote};
use crate::Position;

/// One heredoc of an instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heredoc {
    /// The terminator, quotes removed: `EOF` of `<<-"EOF"`. For `COPY`, the
    /// name of the file it makes when the destination is a directory.
    pub name: String,
    /// The word as written: `<<-"EOF"`.
    pub word: String,
    /// Whether `$VAR` in the body is substituted (`COPY`/`ADD` only; the
    /// terminator had no quotes). A `RUN` body is the shell's to expand.
    pub expand: bool,
    /// `<<-`: leading tabs are stripped from every line of the body.
    pub strip_tabs: bool,
    /// The body as written: every line up to the terminator, each with its
    /// line ending (`\n`, or `\r\n` as in the file), tabs not stripped.
    pub content: String,
    /// Where the word is.
    pub position: Position,
    /// Where the body starts (column 1 of the line after the instruction,
    /// or of the line after the previous heredoc's terminator).
    pub body: Position,
    /// Byte offset of the word in the instruction's arguments.
    pub(crate) offset: usize,
}

impl Heredoc {
    /// The body as the file it stands for holds it: leading tabs removed
    /// from every line for `<<-` (BuildKit's `ChompHeredocContent`), else
    /// [`Heredoc::content`] as it is.
    pub fn data(&self) -> String {
        if !self.strip_tabs {
            return self.content.clone();
        }
        self.content.split_inclusive('\n').map(|line| line.trim_start_matches('\t')).collect()
    }

    /// Whether line `line` (without its line ending) ends this heredoc.
    pub(crate) fn is_terminator(&self, line: &str) -> bool {
        let line = line.trim_end_matches('\r');
        let line = if self.strip_tabs { line.trim_start_matches('\t') } else { line };
        line == self.name
    }
}

/// The heredoc a word opens, if it opens one: (terminator, expand, strip
/// tabs). BuildKit's `ParseHeredoc`.
pub(crate) fn heredoc_word(raw: &str, escape: char) -> Option<(String, bool, bool)> {
    let rest = raw.trim_start_matches(|c: char| c.is_ascii_digit());
    let rest = rest.strip_prefix("<<")?;
    let (strip_tabs, rest) = match rest.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, rest),
    };
    if rest.is_empty() || rest.contains('<') {
        return None;
    }
    // A word split on whitespace outside quotes: `<<EOF bash` as one text
    // is two words and opens nothing (the `RUN <<EOF bash` line itself is
    // split into `<<EOF` and `bash` first).
    if split_words(rest, escape).len() != 1 {
        return None;
    }
    let name = unquote(rest, escape);
    if name.is_empty() {
        return None;
    }
    let expand = !rest.contains(['"', '\'']);
    Some((name, expand, strip_tabs))
}

/// The heredocs the words of `args` open, without bodies yet, in order.
/// `args` are an instruction's arguments after its keyword; `position_of`
/// maps an offset in them to the file.
pub(crate) fn heredocs_in(args: &str, escape: char, position_of: impl Fn(usize) -> Position) -> Vec<Heredoc> {
    let words = split_words(args, escape);
    // Flags first (`--chmod=755`), then, when the rest is a JSON array, the
    // exec form, which holds no heredoc.
    let rest = words.iter().find(|w| !w.raw.starts_with("--")).map_or(args.len(), |w| w.start);
    if crate::ast::is_json_array(&args[rest..]) {
        return Vec::new();
    }
    words
        .iter()
        .filter_map(|w| {
            let (name, expand, strip_tabs) = heredoc_word(&w.raw, escape)?;
            Some(Heredoc {
                name,
                word: w.raw.clone(),
                expand,
                strip_tabs,
                content: String::new(),
                position: position_of(w.start),
                body: position_of(w.start),
                offset: w.start,
            })
        })
        .collect()
}
