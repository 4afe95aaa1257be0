//! From text to directives and instructions with positions.

use crate::heredoc::{heredocs_in, Heredoc};
use crate::keyword::Keyword;
use crate::Position;

/// A parsed Dockerfile: what could be read, and what could not.
#[derive(Debug, Clone, Default)]
pub struct Dockerfile {
    /// Parser directives from the top of the file, in order.
    pub directives: Vec<Directive>,
    /// The escape character: `\` unless `# escape=` says `` ` ``.
    pub escape: char,
    /// Instructions in order; lines that are not instructions are left out
    /// and reported in `errors`.
    pub instructions: Vec<Instruction>,
    /// Every problem, in file order. The parser goes on after each one.
    pub errors: Vec<SyntaxError>,
}

/// A parser directive such as `# escape=`` ` or `# syntax=docker/dockerfile:1`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    /// Lowercased name.
    pub name: String,
    /// The value, trimmed.
    pub value: String,
    /// Where the `#` is.
    pub position: Position,
}

/// One instruction, its continuation lines joined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instruction {
    /// What instruction.
    pub keyword: Keyword,
    /// Where its keyword starts.
    pub position: Position,
    /// Everything after the keyword and the whitespace after it, with
    /// continuation lines appended (escape character and newline removed,
    /// comment and blank lines inside dropped), trailing whitespace trimmed.
    pub args: String,
    /// The whole logical line, keyword included.
    line: String,
    /// Where `args` starts in `line`.
    args_start: usize,
    /// Where each piece of `line` came from: (offset in `line`, position of
    /// that byte in the file), ascending.
    pieces: Vec<(usize, Position)>,
    /// The heredocs its words open (`RUN`, `COPY` and `ADD` only), in
    /// order, each with its body.
    pub heredocs: Vec<Heredoc>,
}

/// The file position of byte `offset` of `text`, a text joined from
/// pieces of the file: `pieces` are (offset in `text`, file position of
/// that byte), ascending; before the first, `text` starts at `start`.
/// An offset past the end or inside a character is clamped to the
/// character boundary before it.
pub(crate) fn position_in_pieces(
    text: &str,
    pieces: &[(usize, Position)],
    start: Position,
    offset: usize,
) -> Position {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let (piece, at) = pieces.iter().rev().find(|(piece, _)| *piece <= offset).copied().unwrap_or((0, start));
    let skipped = text.get(piece..offset).map_or(0, |s| s.chars().count());
    Position { line: at.line, column: at.column.saturating_add(u32::try_from(skipped).unwrap_or(u32::MAX)) }
}

impl Instruction {
    /// The file position of byte `offset` of [`Instruction::args`].
    pub fn position_of(&self, offset: usize) -> Position {
        position_in_pieces(&self.line, &self.pieces, self.position, self.args_start + offset)
    }

    /// Where the arguments start.
    pub fn args_position(&self) -> Position {
        self.position_of(0)
    }

    /// Offsets in [`Instruction::args`] where a continuation line starts,
    /// ascending; a word spanning one of them cannot map offsets to columns
    /// by counting characters from its start.
    pub(crate) fn continuation_offsets(&self) -> impl Iterator<Item = usize> + '_ {
        self.pieces.iter().filter_map(|(start, _)| start.checked_sub(self.args_start)).filter(|o| *o > 0)
    }
}

/// Something in the file that is not valid Dockerfile syntax.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{position}: {kind}")]
pub struct SyntaxError {
    /// Where.
    pub position: Position,
    /// What.
    pub kind: SyntaxErrorKind,
}

/// The kinds of [`SyntaxError`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SyntaxErrorKind {
    /// A line that does not start with an instruction keyword.
    #[error("unknown instruction `{word}`")]
    UnknownInstruction {
        /// The first word of the line.
        word: String,
        /// A known keyword it looks like a misspelling of.
        suggestion: Option<Keyword>,
    },
    /// An instruction with nothing after it.
    #[error("{0} needs arguments")]
    MissingArguments(Keyword),
    /// `# escape=` with something other than `\` or `` ` ``.
    #[error("invalid escape character `{0}`: use `\\` or `` ` ``")]
    InvalidEscape(String),
    /// The same directive twice.
    #[error("the `{0}` directive is given twice")]
    DuplicateDirective(String),
    /// A `--flag` the instruction does not take.
    #[error("{keyword} does not take the flag `--{flag}`")]
    UnknownFlag {
        /// The instruction.
        keyword: Keyword,
        /// The flag name, without `--`.
        flag: String,
    },
    /// A flag that needs `=value` given without one.
    #[error("`--{0}` needs a value: write `--{0}=<value>`")]
    FlagWithoutValue(String),
    /// The same flag twice on one instruction.
    #[error("`--{0}` is given twice")]
    DuplicateFlag(String),
    /// A flag with a value it cannot take.
    #[error("invalid value `{value}` for `--{flag}`: {reason}")]
    InvalidFlagValue {
        /// The flag name, without `--`.
        flag: String,
        /// The value as written.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A JSON array holding something other than strings, which Docker
    /// rejects rather than reading the line as shell form.
    #[error("{0}: a JSON array must hold only strings")]
    NotStringArray(Keyword),
    /// Text after a JSON (exec form) array, which Docker silently drops.
    #[error("{0}: text after the JSON array is ignored")]
    TextAfterJson(Keyword),
    /// A heredoc in an `ONBUILD` trigger (`ONBUILD RUN <<EOF`), which we
    /// do not keep; its body is skipped.
    #[error("ONBUILD {keyword} with a heredoc (`<<{word}`) is not supported")]
    Heredoc {
        /// The instruction after `ONBUILD`.
        keyword: Keyword,
        /// The terminator word.
        word: String,
    },
    /// A heredoc whose terminator line never comes.
    #[error("unterminated heredoc: no line `{word}` ends it")]
    UnterminatedHeredoc {
        /// The terminator word.
        word: String,
    },
    /// A NUL character, which no command line, environment variable or
    /// label can carry.
    #[error("a NUL character is not allowed in a Dockerfile")]
    NulCharacter,
    /// Arguments that do not have the shape the instruction needs.
    #[error("malformed {keyword}: {message}")]
    Malformed {
        /// The instruction.
        keyword: Keyword,
        /// What is wrong.
        message: String,
    },
}

impl SyntaxErrorKind {
    /// Advice for the user, when there is some.
    pub fn help(&self) -> Option<String> {
        match self {
            SyntaxErrorKind::UnknownInstruction { suggestion: Some(k), .. } => Some(format!("did you mean `{k}`?")),
            SyntaxErrorKind::UnknownInstruction { suggestion: None, .. } => Some(
                "if this line belongs to the instruction above, end the previous line with the escape character `\\`; otherwise remove it or make it a `#` comment"
                    .to_string(),
            ),
            SyntaxErrorKind::MissingArguments(k) => Some(format!("write the arguments of {k} on the same line")),
            SyntaxErrorKind::UnknownFlag { keyword: Keyword::Add, flag } if flag == "from" => {
                Some("ADD cannot copy from another stage or image: use `COPY --from=<stage>`".into())
            }
            SyntaxErrorKind::UnknownFlag { keyword, .. } => Some(match keyword.flags() {
                [] => format!("{keyword} takes no flags"),
                flags => format!(
                    "{keyword} takes {}",
                    flags.iter().map(|(f, _)| format!("`--{f}`")).collect::<Vec<_>>().join(", ")
                ),
            }),
            SyntaxErrorKind::NotStringArray(k) | SyntaxErrorKind::TextAfterJson(k) => {
                Some(format!("write `{k} [\"word\", \"word\"]` with every word a JSON string"))
            }
            SyntaxErrorKind::Malformed { keyword, .. } => Some(format!("write `{}`", keyword.usage())),
            SyntaxErrorKind::Heredoc { .. } => Some(
                "put the script or file into the build context and use it in the ONBUILD trigger".into(),
            ),
            SyntaxErrorKind::UnterminatedHeredoc { word } => Some(format!(
                "end the heredoc with a line holding only `{word}` (for `<<-{word}`, tabs may come before it)"
            )),
            SyntaxErrorKind::NulCharacter => Some("remove it (an editor or a bad copy put it there)".into()),
            _ => None,
        }
    }
}

/// The next line from `*index` on that is neither blank nor a comment
/// (those are skipped, also inside a continued instruction, as BuildKit
/// does): its number (1-based), the line and the line without its indent.
/// Moves `*index` past it.
fn next_content_line<'a>(lines: &[&'a str], index: &mut usize) -> Option<(usize, &'a str, &'a str)> {
    while let Some(&line) = lines.get(*index) {
        *index += 1;
        let trimmed = line.trim_start();
        if !(trimmed.is_empty() || trimmed.starts_with('#')) {
            return Some((*index, line, trimmed));
        }
    }
    None
}

/// Reads a Dockerfile. Never fails: problems are collected in
/// [`Dockerfile::errors`] and the parser goes on with the next instruction.
pub fn parse(src: &str) -> Dockerfile {
    let mut file = Dockerfile { escape: '\\', ..Dockerfile::default() };
    // Byte offset of every line start; lines keep no terminator ("\r\n" too).
    let lines: Vec<&str> = src.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l)).collect();
    let starts: Vec<usize> = std::iter::once(0).chain(src.match_indices('\n').map(|(i, _)| i + 1)).collect();
    let mut index = read_directives(&lines, &mut file);

    while let Some((line_no, line, trimmed)) = next_content_line(&lines, &mut index) {
        let indent = line.len() - trimmed.len();
        let start = pos(line, line_no, indent);
        if let Some(at) = line.find('\0') {
            file.errors
                .push(SyntaxError { position: pos(line, line_no, at), kind: SyntaxErrorKind::NulCharacter });
        }

        // Gather the logical line.
        let mut text = String::new();
        let mut pieces = vec![(0, start)];
        let (mut body, mut continued) = strip_escape(trimmed, file.escape);
        text.push_str(body);
        while continued {
            let Some((next_no, next, _)) = next_content_line(&lines, &mut index) else { break };
            pieces.push((text.len(), pos(next, next_no, 0)));
            (body, continued) = strip_escape(next, file.escape);
            text.push_str(body);
        }

        // Split off the keyword.
        let word_end = text.find(char::is_whitespace).unwrap_or(text.len());
        let word = &text[..word_end];
        let rest = &text[word_end..];
        let args_start = word_end + (rest.len() - rest.trim_start().len());
        let Some(keyword) = Keyword::from_word(word) else {
            file.errors.push(SyntaxError {
                position: start,
                kind: SyntaxErrorKind::UnknownInstruction {
                    word: word.to_string(),
                    suggestion: suggest(word),
                },
            });
            continue;
        };
        let args = text[args_start..].trim_end().to_string();
        let mut instruction = Instruction {
            keyword,
            position: start,
            args,
            line: text,
            args_start,
            pieces,
            heredocs: Vec::new(),
        };
        let (heredocs, nested) = match keyword {
            Keyword::Run | Keyword::Copy | Keyword::Add => {
                (heredocs_in(&instruction.args, file.escape, |o| instruction.position_of(o)), None)
            }
            Keyword::Onbuild => onbuild_heredocs(&instruction, file.escape),
            _ => (Vec::new(), None),
        };
        if !heredocs.is_empty() {
            // The bodies run to their terminator lines; read them whole so
            // that their lines are never taken for instructions.
            let mut complete = true;
            for mut heredoc in heredocs {
                heredoc.body = pos("", index + 1, 0);
                let mut terminated = false;
                while index < lines.len() {
                    let (body_line, raw) = (lines[index], raw_line(src, &starts, index));
                    index += 1;
                    if heredoc.is_terminator(body_line) {
                        terminated = true;
                        break;
                    }
                    if let Some(at) = body_line.find('\0') {
                        file.errors.push(SyntaxError {
                            position: pos(body_line, index, at),
                            kind: SyntaxErrorKind::NulCharacter,
                        });
                        complete = false;
                    }
                    heredoc.content.push_str(raw);
                }
                if !terminated {
                    let kind = SyntaxErrorKind::UnterminatedHeredoc { word: heredoc.name.clone() };
                    file.errors.push(SyntaxError { position: heredoc.position, kind });
                    complete = false;
                }
                instruction.heredocs.push(heredoc);
            }
            if let Some(nested) = nested {
                let first = &instruction.heredocs[0];
                let kind = SyntaxErrorKind::Heredoc { keyword: nested, word: first.name.clone() };
                file.errors.push(SyntaxError { position: first.position, kind });
                continue;
            }
            if !complete {
                continue;
            }
        }
        if instruction.args.is_empty() {
            file.errors
                .push(SyntaxError { position: start, kind: SyntaxErrorKind::MissingArguments(keyword) });
            continue;
        }
        file.instructions.push(instruction);
    }
    file
}

/// The heredocs of `ONBUILD RUN|COPY|ADD ...`, and that nested keyword:
/// BuildKit reads their bodies too; we refuse them (see
/// [`SyntaxErrorKind::Heredoc`]) after skipping the bodies.
fn onbuild_heredocs(ins: &Instruction, escape: char) -> (Vec<Heredoc>, Option<Keyword>) {
    let word_end = ins.args.find(char::is_whitespace).unwrap_or(ins.args.len());
    let nested = Keyword::from_word(&ins.args[..word_end]);
    if !matches!(nested, Some(Keyword::Run | Keyword::Copy | Keyword::Add)) {
        return (Vec::new(), None);
    }
    let rest = &ins.args[word_end..];
    let heredocs = heredocs_in(rest, escape, |o| ins.position_of(word_end + o));
    (heredocs, nested)
}

/// Line `index` of `src` with its line ending, as a heredoc body keeps it.
fn raw_line<'s>(src: &'s str, starts: &[usize], index: usize) -> &'s str {
    let end = starts.get(index + 1).copied().unwrap_or(src.len());
    &src[starts[index]..end]
}

/// Reads the parser directives at the top of the file and returns the index
/// of the first line after them.
fn read_directives(lines: &[&str], file: &mut Dockerfile) -> usize {
    let mut index = 0;
    while let Some(line) = lines.get(index) {
        let Some((name, value)) = directive(line) else {
            break;
        };
        let position = pos(line, index + 1, line.len() - line.trim_start().len());
        if !matches!(name.as_str(), "escape" | "syntax" | "check") {
            // Unknown directives are comments, and end the directive section.
            break;
        }
        if file.directives.iter().any(|d| d.name == name) {
            file.errors
                .push(SyntaxError { position, kind: SyntaxErrorKind::DuplicateDirective(name.clone()) });
        } else if name == "escape" {
            match value.as_str() {
                "\\" => file.escape = '\\',
                "`" => file.escape = '`',
                _ => file
                    .errors
                    .push(SyntaxError { position, kind: SyntaxErrorKind::InvalidEscape(value.clone()) }),
            }
        }
        file.directives.push(Directive { name, value, position });
        index += 1;
    }
    index
}

/// `# name=value`, as BuildKit recognises it.
fn directive(line: &str) -> Option<(String, String)> {
    let rest = line.trim_start().strip_prefix('#')?;
    let (name, value) = rest.split_once('=')?;
    let name = name.trim();
    let valid_name = !name.is_empty()
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric());
    valid_name.then(|| (name.to_ascii_lowercase(), value.trim().to_string()))
}

/// Removes a trailing escape character (followed by optional blanks) and
/// says whether the instruction continues on the next line.
fn strip_escape(line: &str, escape: char) -> (&str, bool) {
    let trimmed = line.trim_end_matches([' ', '\t']);
    match trimmed.strip_suffix(escape) {
        Some(body) => (body, true),
        None => (line, false),
    }
}

fn pos(line: &str, line_no: usize, byte_col: usize) -> Position {
    let column = line.get(..byte_col).map_or(byte_col, |s| s.chars().count()) + 1;
    Position {
        line: u32::try_from(line_no).unwrap_or(u32::MAX),
        column: u32::try_from(column).unwrap_or(u32::MAX),
    }
}

/// The keyword that `word` is most likely a typo of.
fn suggest(word: &str) -> Option<Keyword> {
    let upper = word.to_ascii_uppercase();
    Keyword::ALL
        .into_iter()
        .map(|k| (edit_distance(&upper, k.as_str()), k))
        .filter(|(d, k)| *d <= 2 && *d < k.as_str().len() / 2 + 1)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}
