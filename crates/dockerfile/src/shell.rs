//! The POSIX `sh` subset real Dockerfiles use in a shell-form `RUN`, read
//! the way the shell in the container would read it, without running it.
//!
//! [`parse_script`] turns the text of a `RUN` into its simple commands, in
//! order: words with single quotes, double quotes (with the backslash
//! escapes `sh` knows there), backslash escapes, `$VAR`, `${VAR}`,
//! `${VAR:-default}`, `${VAR-default}`, `${VAR:+alt}` and `${VAR+alt}`
//! expanded (the unquoted results split into fields at blanks, as `sh`
//! does with the default `IFS`), `VAR=value` prefixes, `#` comments, and
//! the list operators `&&`, `;` and newlines.
//!
//! Everything else the shell treats specially is refused with its byte
//! offset ([`ShellErrorKind::Unsupported`]), never read some other way:
//! pipes, `||`, `&`, redirections, subshells, `{ }` groups and brace
//! expansion, command substitution (`$(...)` and backticks), arithmetic,
//! special and positional parameters, the other `${...}` operators,
//! compound commands (`if`, `for`, `while`, `case`, ...), `$'...'`, here
//! documents and tilde expansion.
//!
//! Commands run one after the other and each is assumed to succeed (an
//! installer that fails fails the build), so `;` and `&&` mean the same
//! here. The builtins that only change the shell itself are applied and
//! left out of the result: `set` with the options of [`ShellOptions`],
//! `true` and `:`. A command made only of assignments is kept (it sets
//! shell variables, which later expansions see, and changes the
//! environment of later commands for a variable that was exported).
//!
//! Pathname expansion (globbing) needs the file system, so it is not done:
//! a word records whether it had unquoted `*`, `?` or `[` ([`ShellWord::glob`]).

use std::collections::HashMap;
use std::fmt;

/// One word of a command after expansion and quote removal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShellWord {
    /// The text the command receives (when no glob matches).
    pub text: String,
    /// Byte offset in the script where the word starts (for a field split
    /// off an expansion, where that expansion starts).
    pub start: usize,
    /// When the word had unquoted glob characters (`*`, `?`, `[`) and
    /// globbing is on: the pattern, with the quoted characters that are
    /// special in a pattern (`*?[]\`) escaped by `\`. `None` for a word
    /// taken literally (`"pkg[extra]"`).
    pub glob: Option<String>,
}

/// A `NAME=value` word before a command (or alone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    /// The variable name.
    pub name: String,
    /// The value, expanded (never split or globbed, as `sh` does).
    pub value: String,
    /// Byte offset of the name in the script.
    pub start: usize,
}

/// A simple command: assignments, then the command name and arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimpleCommand {
    /// Byte offset in the script where the command starts.
    pub start: usize,
    /// `NAME=value` prefixes, in order.
    pub assignments: Vec<Assignment>,
    /// The command name and its arguments, after expansion and field
    /// splitting; empty for a command made only of assignments.
    pub words: Vec<ShellWord>,
}

/// The shell options that change how the text is read (`set -u`, `set -f`);
/// the others `set` and the shell's command line take (`-e`, `-x`, `-v`,
/// `-C`, `-o pipefail`) are accepted and change nothing here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ShellOptions {
    /// `-u` / `-o nounset`: expanding an unset variable is an error.
    pub nounset: bool,
    /// `-f` / `-o noglob`: no pathname expansion, so no word is a glob.
    pub noglob: bool,
}

/// The shells whose `-c` text [`parse_script`] reads.
pub const SHELLS: [&str; 3] = ["sh", "bash", "dash"];

impl ShellOptions {
    /// The options of a shell command line that runs a `RUN`'s text: the
    /// stage's `SHELL` (`["/bin/sh", "-c"]`, `["/bin/bash", "-o",
    /// "pipefail", "-c"]`, `["bash", "-euxc"]`), without the text Docker
    /// appends. The program must be `sh`, `bash` or `dash` (by name or
    /// path) and `-c` must be among the options; the error says what is
    /// wrong, in one line.
    pub fn from_shell(argv: &[String]) -> Result<ShellOptions, String> {
        let Some(program) = argv.first() else {
            return Err("the SHELL is empty".into());
        };
        let name = program.rsplit('/').next().unwrap_or(program);
        if !SHELLS.contains(&name) {
            return Err(format!(
                "the shell `{program}` is not sh, bash or dash, the shells whose command text can be read without running it"
            ));
        }
        let mut options = ShellOptions::default();
        let mut command = false;
        let mut args = argv[1..].iter();
        while let Some(arg) = args.next() {
            if matches!(arg.as_str(), "--posix" | "--norc" | "--noprofile") {
                continue;
            }
            let (on, flags) = match (arg.strip_prefix('-'), arg.strip_prefix('+')) {
                (Some(flags), _) if !flags.is_empty() && !flags.starts_with('-') => (true, flags),
                (_, Some(flags)) if !flags.is_empty() => (false, flags),
                _ if arg.starts_with('-') => return Err(format!("the shell option `{arg}` is not supported")),
                _ => {
                    return Err(format!(
                        "`{arg}` in the SHELL is not an option: the SHELL must end with `-c`, Docker appends the RUN's text after it"
                    ))
                }
            };
            for flag in flags.chars() {
                match flag {
                    'c' if on => command = true,
                    'o' => {
                        let Some(name) = args.next() else {
                            return Err(format!("`{arg}` needs an option name after it"));
                        };
                        if !options.named(name, on) {
                            return Err(format!("the shell option `-o {name}` is not supported"));
                        }
                    }
                    _ if options.flag(flag, on) => {}
                    _ => return Err(format!("the shell option `-{flag}` is not supported")),
                }
            }
        }
        if !command {
            return Err(format!(
                "the shell `{}` is not given `-c`, so it would not run the RUN's text",
                argv.join(" ")
            ));
        }
        Ok(options)
    }

    /// Sets or clears the one-letter option `flag`; `false` when it is not
    /// one this reader handles.
    fn flag(&mut self, flag: char, on: bool) -> bool {
        match flag {
            'u' => self.nounset = on,
            'f' => self.noglob = on,
            'e' | 'x' | 'v' | 'C' => {}
            _ => return false,
        }
        true
    }

    /// As [`ShellOptions::flag`] for a `-o NAME` option.
    fn named(&mut self, name: &str, on: bool) -> bool {
        match name {
            "nounset" => self.nounset = on,
            "noglob" => self.noglob = on,
            "errexit" | "xtrace" | "verbose" | "noclobber" | "pipefail" => {}
            _ => return false,
        }
        true
    }
}

/// Why a script could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShellError {
    /// Byte offset in the script of what could not be read.
    pub offset: usize,
    /// What.
    pub kind: ShellErrorKind,
}

/// The kinds of [`ShellError`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShellErrorKind {
    /// Something the shell would read that this reader does not emulate,
    /// described (``a pipe `|` ``).
    Unsupported(String),
    /// Text the shell itself would refuse (an unclosed quote, `&&` with
    /// no command after it).
    Syntax(String),
    /// `$NAME` with `NAME` unset while `set -u` is on: the shell stops.
    Unset(String),
}

impl fmt::Display for ShellErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ShellErrorKind::Unsupported(what) => write!(
                f,
                "{what} is not supported (only simple commands joined by `&&`, `;` or newlines are read without running a shell)"
            ),
            ShellErrorKind::Syntax(message) => write!(f, "shell syntax error: {message}"),
            ShellErrorKind::Unset(name) => {
                write!(f, "`${name}` is not set, and with `set -u` the shell stops there")
            }
        }
    }
}

impl fmt::Display for ShellError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.kind.fmt(f)
    }
}

impl std::error::Error for ShellError {}

/// Words that start a compound command (or change how one is run) when
/// they are the command name, unquoted.
const RESERVED: [&str; 20] = [
    "if", "then", "else", "elif", "fi", "do", "done", "case", "esac", "while", "until", "for", "in", "!",
    "[[", "]]", "function", "select", "time", "coproc",
];

/// Reads `script` as `sh -c` would, with `options` set on the command line
/// and `lookup` giving the variables of its environment (`None`: unset).
/// Returns the simple commands in order, without the builtins that only
/// change the shell (see the [module docs](self)).
pub fn parse_script(
    script: &str,
    options: ShellOptions,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<SimpleCommand>, ShellError> {
    if let Some(ifs) = lookup("IFS") {
        if ifs != " \t\n" {
            return Err(unsupported(0, "a custom `IFS` in the environment"));
        }
    }
    let mut reader = Reader {
        text: script,
        pos: 0,
        options,
        lookup,
        vars: HashMap::new(),
        prefix: HashMap::new(),
        in_assignment: false,
        skipping: 0,
    };
    reader.script()
}

fn unsupported(offset: usize, what: impl Into<String>) -> ShellError {
    ShellError { offset, kind: ShellErrorKind::Unsupported(what.into()) }
}

fn syntax(offset: usize, message: impl Into<String>) -> ShellError {
    ShellError { offset, kind: ShellErrorKind::Syntax(message.into()) }
}

/// What came last in a list, to check where operators may go.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Last {
    /// Nothing yet, or a newline.
    Start,
    /// A command.
    Command,
    /// `;`.
    Semicolon,
    /// `&&` at this offset: a command must follow.
    And(usize),
}

struct Reader<'a> {
    text: &'a str,
    pos: usize,
    options: ShellOptions,
    lookup: &'a dyn Fn(&str) -> Option<String>,
    /// Variables set by assignment-only commands so far.
    vars: HashMap<String, String>,
    /// The prefix assignments of the command being read, which the values
    /// of the assignments after them see.
    prefix: HashMap<String, String>,
    in_assignment: bool,
    /// Inside a `${...}` word that is not used: nothing is looked up for
    /// real (no `set -u` error).
    skipping: u32,
}

impl Reader<'_> {
    fn peek(&self) -> Option<char> {
        self.text[self.pos..].chars().next()
    }

    fn peek_second(&self) -> Option<char> {
        let mut chars = self.text[self.pos..].chars();
        chars.next();
        chars.next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    fn script(&mut self) -> Result<Vec<SimpleCommand>, ShellError> {
        let mut commands = Vec::new();
        let mut last = Last::Start;
        loop {
            self.blanks();
            let at = self.pos;
            match self.peek() {
                None => {
                    if let Last::And(at) = last {
                        return Err(syntax(at, "`&&` at the end, with no command after it"));
                    }
                    return Ok(commands);
                }
                Some('\n') => {
                    self.pos += 1;
                    if !matches!(last, Last::And(_)) {
                        last = Last::Start;
                    }
                }
                Some(';') if self.peek_second() == Some(';') => {
                    return Err(unsupported(at, "`;;` (a `case` branch)"));
                }
                Some(';') => {
                    if last != Last::Command {
                        return Err(syntax(at, "`;` with no command before it"));
                    }
                    self.pos += 1;
                    last = Last::Semicolon;
                }
                Some('&') if self.peek_second() == Some('&') => {
                    if last != Last::Command {
                        return Err(syntax(at, "`&&` with no command before it"));
                    }
                    self.pos += 2;
                    last = Last::And(at);
                }
                Some('&') => return Err(unsupported(at, "running a command in the background with `&`")),
                Some('|') if self.peek_second() == Some('|') => return Err(unsupported(at, "`||`")),
                Some('|') => return Err(unsupported(at, "a pipe `|`")),
                Some('<' | '>') => return Err(unsupported(at, "a redirection")),
                Some('(' | ')') => return Err(unsupported(at, "a subshell `( )`")),
                Some(_) => {
                    if let Some(command) = self.command()? {
                        commands.push(command);
                    }
                    last = Last::Command;
                }
            }
        }
    }

    /// Skips blanks, escaped newlines and a comment (up to the newline).
    fn blanks(&mut self) {
        loop {
            match self.peek() {
                Some(' ' | '\t') => self.pos += 1,
                Some('\\') if self.peek_second() == Some('\n') => self.pos += 2,
                Some('#') => {
                    let rest = &self.text[self.pos..];
                    self.pos += rest.find('\n').unwrap_or(rest.len());
                }
                _ => return,
            }
        }
    }

    /// One simple command, from its first word to the operator or newline
    /// after it; `None` for a builtin left out (`set`, `true`, `:`).
    fn command(&mut self) -> Result<Option<SimpleCommand>, ShellError> {
        let start = self.pos;
        let mut assignments = Vec::new();
        let mut words: Vec<ShellWord> = Vec::new();
        let mut named = false;
        self.prefix.clear();
        loop {
            self.blanks();
            match self.peek() {
                None | Some('\n' | ';' | '&' | '|' | '<' | '>' | '(' | ')') => break,
                Some(_) => {}
            }
            if !named {
                if let Some(assignment) = self.assignment()? {
                    self.prefix.insert(assignment.name.clone(), assignment.value.clone());
                    assignments.push(assignment);
                    continue;
                }
            }
            let word_start = self.pos;
            let (fields, plain) = self.word()?;
            if !named {
                named = true;
                if plain {
                    if let Some(reserved) = fields.first().filter(|w| RESERVED.contains(&w.text.as_str())) {
                        let what = format!("the shell keyword `{}`", reserved.text);
                        return Err(unsupported(word_start, what));
                    }
                }
            }
            words.extend(fields);
        }
        self.prefix.clear();
        match words.first().map(|w| w.text.as_str()) {
            None => {
                for a in &assignments {
                    self.vars.insert(a.name.clone(), a.value.clone());
                }
                Ok(Some(SimpleCommand { start, assignments, words }))
            }
            Some("set") => {
                self.set(&words[1..])?;
                Ok(None)
            }
            Some("true" | ":") => Ok(None),
            Some(_) => Ok(Some(SimpleCommand { start, assignments, words })),
        }
    }

    /// `set` with options: applied to [`Reader::options`].
    fn set(&mut self, args: &[ShellWord]) -> Result<(), ShellError> {
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            let (on, flags) = match (arg.text.strip_prefix('-'), arg.text.strip_prefix('+')) {
                (Some(flags), _) => (true, flags),
                (_, Some(flags)) => (false, flags),
                _ => return Err(unsupported(arg.start, "`set` with positional parameters")),
            };
            if flags.is_empty() || flags == "-" {
                return Err(unsupported(arg.start, format!("`set {}` (positional parameters)", arg.text)));
            }
            for flag in flags.chars() {
                if flag == 'o' {
                    let Some(name) = args.next() else {
                        return Err(unsupported(arg.start, "`set -o` without an option name"));
                    };
                    if !self.options.named(&name.text, on) {
                        return Err(unsupported(name.start, format!("the shell option `-o {}`", name.text)));
                    }
                } else if !self.options.flag(flag, on) {
                    return Err(unsupported(arg.start, format!("the shell option `-{flag}`")));
                }
            }
        }
        Ok(())
    }

    /// A `NAME=value` word at the current position, if there is one.
    fn assignment(&mut self) -> Result<Option<Assignment>, ShellError> {
        let start = self.pos;
        let Some(name_len) = assignment_name(&self.text[start..]) else {
            return Ok(None);
        };
        let name = self.text[start..start + name_len].to_string();
        if name == "IFS" {
            return Err(unsupported(start, "setting `IFS`"));
        }
        self.pos += name_len + 1;
        let mut buf = WordBuf::new(self.pos, false, false);
        buf.assignment = true;
        buf.after_equals = true;
        self.in_assignment = true;
        let read = self.chars(&mut buf, false);
        self.in_assignment = false;
        read?;
        Ok(Some(Assignment { name, value: buf.text, start }))
    }

    /// One word (maybe several fields, maybe none), and whether it was
    /// plain text (no quotes, escapes or expansions).
    fn word(&mut self) -> Result<(Vec<ShellWord>, bool), ShellError> {
        let mut buf = WordBuf::new(self.pos, true, !self.options.noglob);
        if assignment_name(&self.text[self.pos..]).is_some() {
            // Bash expands `~` after `=` in arguments that look like assignments.
            buf.assignment = true;
        }
        self.chars(&mut buf, false)?;
        let plain = buf.plain;
        Ok((buf.finish(), plain))
    }

    /// Unquoted word text into `buf`, up to a blank or an operator, or up
    /// to the `}` (not consumed) of a `${...}` when `in_brace`.
    fn chars(&mut self, buf: &mut WordBuf, in_brace: bool) -> Result<(), ShellError> {
        loop {
            let at = self.pos;
            let Some(c) = self.peek() else { return Ok(()) };
            match c {
                '}' if in_brace => return Ok(()),
                ' ' | '\t' | '\n' if in_brace => {
                    self.pos += 1;
                    buf.blank(c, self.pos);
                }
                ' ' | '\t' | '\n' | ';' | '&' | '|' | '<' | '>' | '(' | ')' if !in_brace => return Ok(()),
                ';' | '&' | '|' | '<' | '>' | '(' | ')' => {
                    return Err(unsupported(at, format!("`{c}` inside `${{...}}`")));
                }
                '~' if (buf.text.is_empty() && !buf.started) || (buf.assignment && buf.after_equals) => {
                    return Err(unsupported(at, "tilde expansion `~`"));
                }
                '{' | '}' => {
                    return Err(unsupported(at, format!("`{c}` (a command group or brace expansion)")))
                }
                '`' => return Err(unsupported(at, "command substitution with backticks")),
                '\'' => {
                    self.pos += 1;
                    let rest = &self.text[self.pos..];
                    let Some(len) = rest.find('\'') else {
                        return Err(syntax(at, "a single quote `'` is not closed"));
                    };
                    buf.quoted_text(&rest[..len]);
                    self.pos += len + 1;
                }
                '"' => {
                    self.pos += 1;
                    buf.mark_quoted();
                    self.quoted_chars(buf, '"')?;
                    if self.bump() != Some('"') {
                        return Err(syntax(at, "a double quote `\"` is not closed"));
                    }
                }
                '\\' => {
                    self.pos += 1;
                    buf.plain = false;
                    match self.bump() {
                        None => buf.lit('\\', true),
                        Some('\n') => {}
                        Some(escaped) => buf.lit(escaped, true),
                    }
                }
                '$' => self.dollar(buf, false)?,
                _ => {
                    self.pos += c.len_utf8();
                    buf.lit(c, false);
                }
            }
        }
    }

    /// Double-quoted text into `buf`, up to `end` (`"`, or the `}` of a
    /// `${...}` inside double quotes), not consumed.
    fn quoted_chars(&mut self, buf: &mut WordBuf, end: char) -> Result<(), ShellError> {
        loop {
            let at = self.pos;
            let Some(c) = self.peek() else { return Ok(()) };
            match c {
                _ if c == end => return Ok(()),
                '"' => return Err(unsupported(at, "a double quote inside `${...}` inside double quotes")),
                '`' => return Err(unsupported(at, "command substitution with backticks")),
                '\\' => {
                    self.pos += 1;
                    match self.peek() {
                        Some('\n') => self.pos += 1,
                        Some(e @ ('$' | '`' | '"' | '\\')) => {
                            self.pos += 1;
                            buf.lit(e, true);
                        }
                        Some('}') if end == '}' => {
                            self.pos += 1;
                            buf.lit('}', true);
                        }
                        _ => buf.lit('\\', true),
                    }
                }
                '$' => self.dollar(buf, true)?,
                _ => {
                    self.pos += c.len_utf8();
                    buf.lit(c, true);
                }
            }
        }
    }

    /// A `$` expansion at the current position, into `buf`.
    fn dollar(&mut self, buf: &mut WordBuf, quoted: bool) -> Result<(), ShellError> {
        let at = self.pos;
        self.pos += 1;
        buf.plain = false;
        match self.peek() {
            Some('{') => {
                self.pos += 1;
                self.braced(at, buf, quoted)
            }
            Some('(') if self.peek_second() == Some('(') => {
                Err(unsupported(at, "arithmetic expansion `$((...))`"))
            }
            Some('(') => Err(unsupported(at, "command substitution `$(...)`")),
            Some('[') => Err(unsupported(at, "arithmetic expansion `$[...]`")),
            Some('\'' | '"') if !quoted => Err(unsupported(at, "`$'...'` or `$\"...\"` quoting")),
            Some(c) if c.is_ascii_alphabetic() || c == '_' => {
                let name = self.name();
                let value = self.value(&name, at)?;
                buf.expanded(&value.unwrap_or_default(), quoted, at);
                Ok(())
            }
            Some(c) if c.is_ascii_digit() || "?$!#@*-".contains(c) => {
                Err(unsupported(at, format!("the special parameter `${c}`")))
            }
            _ => {
                buf.lit('$', quoted);
                Ok(())
            }
        }
    }

    /// The rest of a `${...}` after `${`.
    fn braced(&mut self, at: usize, buf: &mut WordBuf, quoted: bool) -> Result<(), ShellError> {
        let not_closed = || syntax(at, "`${` is not closed with `}`");
        match self.peek() {
            None => return Err(not_closed()),
            Some(c) if c.is_ascii_alphabetic() || c == '_' => {}
            Some('#') => return Err(unsupported(at, "the length `${#...}`")),
            Some('!') => return Err(unsupported(at, "indirect expansion `${!...}`")),
            Some(c) if c.is_ascii_digit() || "?$@*-".contains(c) => {
                return Err(unsupported(at, format!("the special parameter `${{{c}}}`")));
            }
            Some(_) => return Err(syntax(at, "bad substitution: `${` must be followed by a variable name")),
        }
        let name = self.name();
        let colon = self.peek() == Some(':');
        if colon {
            self.pos += 1;
        }
        let op = self.peek();
        match op {
            Some('}') if !colon => {
                self.pos += 1;
                let value = self.value(&name, at)?;
                buf.expanded(&value.unwrap_or_default(), quoted, at);
                return Ok(());
            }
            Some('-' | '+') => self.pos += 1,
            None => return Err(not_closed()),
            Some('=' | '?') => {
                return Err(unsupported(
                    at,
                    format!("`${{{name}{}{}...}}`", if colon { ":" } else { "" }, op.unwrap_or_default()),
                ))
            }
            Some('#' | '%') => {
                return Err(unsupported(at, "removing a prefix or suffix with `${VAR#...}`/`${VAR%...}`"))
            }
            Some('/' | '^' | ',' | '@') => return Err(unsupported(at, "a bash `${VAR...}` operator")),
            Some(_) if colon => return Err(unsupported(at, "a substring `${VAR:offset}`")),
            Some(_) => {
                return Err(syntax(
                    at,
                    format!("bad substitution: `${{{name}` must be followed by `}}` or an operator"),
                ))
            }
        }
        let value = self.lookup_raw(&name);
        let is_set = if colon { value.as_deref().is_some_and(|v| !v.is_empty()) } else { value.is_some() };
        let use_word = (op == Some('-')) != is_set;
        if use_word {
            self.brace_word(buf, quoted)?;
        } else {
            let mut skipped = WordBuf::new(self.pos, buf.split, buf.glob);
            self.skipping += 1;
            let read = self.brace_word(&mut skipped, quoted);
            self.skipping -= 1;
            read?;
            if op == Some('-') {
                buf.expanded(&value.unwrap_or_default(), quoted, at);
            }
        }
        if self.bump() != Some('}') {
            return Err(not_closed());
        }
        Ok(())
    }

    /// The word of `${VAR:-word}`, up to the closing `}` (not consumed).
    fn brace_word(&mut self, buf: &mut WordBuf, quoted: bool) -> Result<(), ShellError> {
        if quoted {
            return self.quoted_chars(buf, '}');
        }
        if self.peek() == Some('~') {
            // The word is tilde-expanded on its own.
            return Err(unsupported(self.pos, "tilde expansion `~`"));
        }
        self.chars(buf, true)
    }

    fn name(&mut self) -> String {
        let rest = &self.text[self.pos..];
        let len = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(rest.len());
        self.pos += len;
        rest[..len].to_string()
    }

    fn lookup_raw(&self, name: &str) -> Option<String> {
        if self.in_assignment {
            if let Some(value) = self.prefix.get(name) {
                return Some(value.clone());
            }
        }
        self.vars.get(name).cloned().or_else(|| (self.lookup)(name))
    }

    /// `$name`: its value, or the `set -u` error.
    fn value(&self, name: &str, at: usize) -> Result<Option<String>, ShellError> {
        let value = self.lookup_raw(name);
        if value.is_none() && self.options.nounset && self.skipping == 0 {
            return Err(ShellError { offset: at, kind: ShellErrorKind::Unset(name.to_string()) });
        }
        Ok(value)
    }
}

/// The length of `NAME` when `text` starts with `NAME=` (a valid name).
fn assignment_name(text: &str) -> Option<usize> {
    let len = text.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))?;
    let first = text.chars().next()?;
    (len > 0 && (first.is_ascii_alphabetic() || first == '_') && text[len..].starts_with('=')).then_some(len)
}

/// A word being built: its fields so far and the current one.
struct WordBuf {
    /// Split unquoted expansions into fields (not in assignments).
    split: bool,
    /// Globbing is on (not in assignments, not with `set -f`).
    glob: bool,
    fields: Vec<ShellWord>,
    text: String,
    pattern: String,
    globbed: bool,
    /// The current field exists even if empty (`""`).
    started: bool,
    start: usize,
    /// No quoting, escape or expansion so far.
    plain: bool,
    /// An assignment or a word that looks like one: `~` after `=`/`:` is
    /// a tilde prefix.
    assignment: bool,
    /// The last character was an unquoted `=` or `:` (or the value starts).
    after_equals: bool,
}

impl WordBuf {
    fn new(start: usize, split: bool, glob: bool) -> WordBuf {
        WordBuf {
            split,
            glob,
            fields: Vec::new(),
            text: String::new(),
            pattern: String::new(),
            globbed: false,
            started: false,
            start,
            plain: true,
            assignment: false,
            after_equals: false,
        }
    }

    fn lit(&mut self, c: char, quoted: bool) {
        self.started = true;
        if !quoted && self.glob && matches!(c, '*' | '?' | '[') {
            self.globbed = true;
        } else if (quoted || !self.glob) && matches!(c, '*' | '?' | '[' | ']' | '\\') {
            self.pattern.push('\\');
        }
        self.pattern.push(c);
        self.text.push(c);
        self.after_equals = !quoted && matches!(c, '=' | ':');
    }

    fn mark_quoted(&mut self) {
        self.started = true;
        self.plain = false;
        self.after_equals = false;
    }

    fn quoted_text(&mut self, text: &str) {
        self.mark_quoted();
        for c in text.chars() {
            self.lit(c, true);
        }
    }

    /// An unquoted blank that ends the current field (inside `${...}`, or
    /// from an expansion); `next` is where a following field starts.
    fn blank(&mut self, c: char, next: usize) {
        if self.split {
            self.end_field(next);
        } else {
            self.lit(c, true);
        }
    }

    /// The value of an expansion starting at `at`.
    fn expanded(&mut self, value: &str, quoted: bool, at: usize) {
        if quoted {
            self.started = true;
        }
        for c in value.chars() {
            if !quoted && matches!(c, ' ' | '\t' | '\n') {
                self.blank(c, at);
            } else {
                self.lit(c, quoted);
            }
        }
        self.after_equals = false;
    }

    fn end_field(&mut self, next: usize) {
        if self.started {
            let glob = self.globbed.then(|| std::mem::take(&mut self.pattern));
            self.fields.push(ShellWord { text: std::mem::take(&mut self.text), start: self.start, glob });
        }
        self.text.clear();
        self.pattern.clear();
        self.globbed = false;
        self.started = false;
        self.start = next;
    }

    fn finish(mut self) -> Vec<ShellWord> {
        self.end_field(0);
        self.fields
    }
}
