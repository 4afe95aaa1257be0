//! Typed instructions: each lexer [`Instruction`] read into what it means
//! (`COPY` sources and destination, `FROM` image and stage name, exec or
//! shell form, ...), following BuildKit's per-instruction parsers.
//!
//! Values stay raw: quotes, escapes and `$VAR` are kept as written, because
//! what they expand to depends on the `ARG` and `ENV` state at build time
//! (see [`crate::expand`]). Every raw value carries its file position, so an
//! error found later (a bad expansion, a missing source) can point at it.
//!
//! Words are split with quotes respected ([`split_words`]) for every
//! instruction. BuildKit splits `COPY`, `ADD`, `EXPOSE` and `FROM` on plain
//! whitespace instead, so `COPY "a b" c` is an unterminated quote there and a
//! source `a b` here; nothing else differs for well-formed files.

use crate::heredoc::{heredoc_word, Heredoc};
use crate::keyword::{FlagKind, Keyword};
use crate::lexer::{Dockerfile, Instruction, SyntaxError, SyntaxErrorKind};
use crate::values::{parse_chmod, parse_port, validate_signal};
use crate::words::{split_words, unquote, Word};
use crate::Position;

/// A value with the position of the instruction it comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spanned<T> {
    /// The value.
    pub node: T,
    /// Where the instruction's keyword is.
    pub position: Position,
}

/// A piece of an instruction as written (quotes, escapes and variables
/// intact), with where it is in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawWord {
    /// The text as written; for a word of a JSON array, the decoded string.
    pub raw: String,
    /// Where it starts (for a JSON string, its opening quote).
    pub position: Position,
    /// (offset in `raw`, position) where counting characters restarts: the
    /// start, and every continuation line inside the word.
    breaks: Vec<(usize, Position)>,
}

impl RawWord {
    /// The text as written.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// The file position of byte `offset` of [`RawWord::raw`]. Exact for
    /// words taken verbatim from the file, also across continuation lines;
    /// for JSON strings with escapes, the position of the string's start.
    pub fn position_at(&self, offset: usize) -> Position {
        crate::lexer::position_in_pieces(&self.raw, &self.breaks, self.position, offset)
    }

    /// Bytes `start..end` of the instruction's arguments.
    fn verbatim(ins: &Instruction, start: usize, end: usize) -> RawWord {
        let mut breaks = vec![(0, ins.position_of(start))];
        breaks.extend(
            ins.continuation_offsets()
                .filter(|o| *o > start && *o < end)
                .map(|o| (o - start, ins.position_of(o))),
        );
        RawWord { raw: ins.args[start..end].to_string(), position: breaks[0].1, breaks }
    }

    /// A JSON string token at bytes `start..end` of the arguments, decoded.
    fn json(ins: &Instruction, start: usize, end: usize, decoded: String) -> RawWord {
        let position = ins.position_of(start);
        let inner = start + 1;
        let mut breaks = vec![(0, ins.position_of(inner))];
        if !ins.args[start..end].contains('\\') {
            // Decoded text is the token's inside, byte for byte.
            breaks.extend(
                ins.continuation_offsets()
                    .filter(|o| *o > inner && *o < end)
                    .map(|o| (o - inner, ins.position_of(o))),
            );
        }
        RawWord { raw: decoded, position, breaks }
    }
}

/// One instruction, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Instr {
    /// `ARG name[=default] ...`
    Arg(Vec<ArgDecl>),
    /// `FROM [--platform=..] image [AS name]`
    From(From),
    /// `COPY [flags] src... dest`
    Copy(Copy),
    /// `ADD [flags] src... dest`
    Add(Copy),
    /// `ENV k=v ...` or `ENV k v`
    Env(Vec<KeyValue>),
    /// `LABEL k=v ...` or `LABEL k v`
    Label(Vec<KeyValue>),
    /// `WORKDIR path`: the rest of the line, as Docker takes it.
    Workdir(RawWord),
    /// `RUN [--mount=..] command`
    Run(Run),
    /// `CMD command`
    Cmd(Command),
    /// `ENTRYPOINT command`
    Entrypoint(Command),
    /// `USER user[:group]`: the rest of the line; see [`split_user`](crate::split_user).
    User(RawWord),
    /// `EXPOSE port[/proto] ...`; see [`parse_port`].
    Expose(Vec<RawWord>),
    /// `STOPSIGNAL signal`
    Stopsignal(RawWord),
    /// `SHELL ["exe", "arg"...]`
    Shell(Vec<String>),
    /// `VOLUME path ...` or `VOLUME ["path", ...]`
    Volume(Vec<RawWord>),
    /// `HEALTHCHECK ...`, kept as written.
    Healthcheck(RawWord),
    /// `ONBUILD instruction`, kept as written.
    Onbuild(RawWord),
    /// `MAINTAINER name`, kept as written.
    Maintainer(RawWord),
}

impl Instr {
    /// The instruction's keyword.
    pub fn keyword(&self) -> Keyword {
        match self {
            Instr::Arg(_) => Keyword::Arg,
            Instr::From(_) => Keyword::From,
            Instr::Copy(_) => Keyword::Copy,
            Instr::Add(_) => Keyword::Add,
            Instr::Env(_) => Keyword::Env,
            Instr::Label(_) => Keyword::Label,
            Instr::Workdir(_) => Keyword::Workdir,
            Instr::Run(_) => Keyword::Run,
            Instr::Cmd(_) => Keyword::Cmd,
            Instr::Entrypoint(_) => Keyword::Entrypoint,
            Instr::User(_) => Keyword::User,
            Instr::Expose(_) => Keyword::Expose,
            Instr::Stopsignal(_) => Keyword::Stopsignal,
            Instr::Shell(_) => Keyword::Shell,
            Instr::Volume(_) => Keyword::Volume,
            Instr::Healthcheck(_) => Keyword::Healthcheck,
            Instr::Onbuild(_) => Keyword::Onbuild,
            Instr::Maintainer(_) => Keyword::Maintainer,
        }
    }
}

/// One `name[=default]` of an `ARG`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgDecl {
    /// The name as written.
    pub name: RawWord,
    /// The default, raw; `None` without `=` (`ARG X=` has an empty default).
    pub default: Option<RawWord>,
}

/// `FROM`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct From {
    /// `--platform=` value.
    pub platform: Option<RawWord>,
    /// The base image reference, raw.
    pub image: RawWord,
    /// The name after `AS`.
    pub stage: Option<RawWord>,
}

/// `COPY` or `ADD`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copy {
    /// The heredoc sources (`COPY <<EOF /file`), in order: each is a file
    /// named [`Heredoc::name`] holding [`Heredoc::data`] (expanded when
    /// [`Heredoc::expand`]), copied like a source file.
    pub heredocs: Vec<Heredoc>,
    /// `--chown=user[:group]`.
    pub chown: Option<RawWord>,
    /// `--chmod=mode`; see [`parse_chmod`].
    pub chmod: Option<RawWord>,
    /// `--from=stage|image` (`COPY` only).
    pub from: Option<RawWord>,
    /// `--link`.
    pub link: bool,
    /// The path sources (the heredocs are in `heredocs`); together with
    /// `heredocs` at least one.
    pub sources: Vec<RawWord>,
    /// The destination.
    pub dest: RawWord,
    /// Whether the paths were given as a JSON array.
    pub json: bool,
}

/// One `key=value` of `ENV` or `LABEL`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    /// The key, raw.
    pub key: RawWord,
    /// The value, raw (for the legacy `KEY value` form, the rest of the line).
    pub value: RawWord,
}

/// `RUN`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    /// `--mount`, `--network`, `--security`, as given.
    pub flags: Vec<Flag>,
    /// What to run.
    pub command: Command,
    /// The heredocs of a shell-form command, in order, with their bodies;
    /// [`Run::script`] is what the shell is given.
    pub heredocs: Vec<Heredoc>,
}

/// What a shell-form `RUN` with heredocs runs, as BuildKit's `dispatchRun`
/// makes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunScript {
    /// Text given to the shell as its command (`SHELL` + `[text]`): the body
    /// of a lone `RUN <<EOF` (tabs stripped for `<<-`), or, for anything
    /// else (`RUN <<EOF bash`, `RUN python3 <<EOF`, several heredocs), the
    /// command line followed by each heredoc's body as written and its
    /// terminator, for the shell to read as its own heredocs.
    Shell(String),
    /// A lone `RUN <<EOF` whose body starts with `#!`: BuildKit writes the
    /// body to a file of mode 0755 named [`Heredoc::name`] in a read-only
    /// mount at `/dev/pipes/`, and gives the shell its path as the command
    /// (`SHELL` + `["/dev/pipes/NAME"]`), so the interpreter of the
    /// shebang runs it.
    Executable {
        /// The file's name (the terminator word).
        name: String,
        /// The file's content.
        content: String,
    },
}

impl Run {
    /// What the shell runs when this `RUN` has heredocs; `None` without
    /// (the command is then [`Run::command`] as it is).
    pub fn script(&self) -> Option<RunScript> {
        let (Command::Shell(text), Some(first)) = (&self.command, self.heredocs.first()) else {
            return None;
        };
        if heredoc_word(text.as_str(), '\\').is_some() {
            let data = first.data();
            return Some(if data.starts_with("#!") {
                RunScript::Executable { name: first.name.clone(), content: data }
            } else {
                RunScript::Shell(data)
            });
        }
        let mut full = text.raw.clone();
        for heredoc in &self.heredocs {
            full.push('\n');
            full.push_str(&heredoc.content);
            full.push_str(&heredoc.name);
        }
        Some(RunScript::Shell(full))
    }
}

/// A `--name[=value]` flag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flag {
    /// The name, without `--`.
    pub name: String,
    /// The raw value after `=`.
    pub value: Option<RawWord>,
    /// Where the `--` is.
    pub position: Position,
}

/// The command of `RUN`, `CMD` or `ENTRYPOINT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Exec form: a JSON array of strings, run without a shell; each
    /// decoded, with the position of its opening quote. Never empty for
    /// `RUN`.
    Exec(Vec<RawWord>),
    /// Shell form: the text as written (continuation lines joined, comment
    /// lines inside dropped), given to the shell; see
    /// [`RawWord::position_at`] for the position of a byte of it.
    Shell(RawWord),
}

/// Reads every instruction of `file` into its typed form. Never fails: an
/// instruction that cannot be read is left out, and every problem is
/// returned, in file order, with the position of the word it is about.
/// The lexer's own errors ([`Dockerfile::errors`]) are not repeated.
pub fn parse_instructions(file: &Dockerfile) -> (Vec<Spanned<Instr>>, Vec<SyntaxError>) {
    let mut instrs = Vec::new();
    let mut errors = Vec::new();
    for ins in &file.instructions {
        let mut cx = Cx { ins, escape: file.escape, errors: &mut errors };
        if let Some(node) = cx.instruction() {
            instrs.push(Spanned { node, position: ins.position });
        }
    }
    (instrs, errors)
}

/// Reading one instruction.
struct Cx<'a> {
    ins: &'a Instruction,
    escape: char,
    errors: &'a mut Vec<SyntaxError>,
}

/// A JSON array at the start of some text.
enum Json {
    /// Not a JSON array: Docker reads the text another way.
    Not,
    /// A JSON array with something other than strings.
    NotStrings,
    /// The strings, each with the byte range of its token, and where text
    /// after the array starts, if there is some.
    Strings(Vec<(String, usize, usize)>, Option<usize>),
}

impl Cx<'_> {
    fn keyword(&self) -> Keyword {
        self.ins.keyword
    }

    fn error_at(&mut self, offset: usize, kind: SyntaxErrorKind) {
        self.errors.push(SyntaxError { position: self.ins.position_of(offset), kind });
    }

    fn malformed(&mut self, offset: usize, message: impl Into<String>) {
        let kind = SyntaxErrorKind::Malformed { keyword: self.keyword(), message: message.into() };
        self.error_at(offset, kind);
    }

    /// A malformed instruction, at `word`.
    fn malformed_word(&mut self, word: &RawWord, message: String) {
        let kind = SyntaxErrorKind::Malformed { keyword: self.keyword(), message };
        self.errors.push(SyntaxError { position: word.position, kind });
    }

    fn word(&self, w: &Word) -> RawWord {
        RawWord::verbatim(self.ins, w.start, w.start + w.raw.len())
    }

    /// Everything from `start` to the end of the arguments.
    fn rest(&self, start: usize) -> RawWord {
        RawWord::verbatim(self.ins, start, self.ins.args.len())
    }

    fn instruction(&mut self) -> Option<Instr> {
        let keyword = self.keyword();
        match keyword {
            Keyword::Healthcheck => return Some(Instr::Healthcheck(self.rest(0))),
            Keyword::Maintainer => return Some(Instr::Maintainer(self.rest(0))),
            Keyword::Onbuild => return self.onbuild(),
            _ => {}
        }
        let words = split_words(&self.ins.args, self.escape);
        let errors_before = self.errors.len();
        let (flags, first) = self.flags(&words);
        let words = &words[first..];
        let start = words.first().map_or(self.ins.args.len(), |w| w.start);
        if words.is_empty() {
            // A lone bad flag (`CMD --help`) is reported once.
            if self.errors.len() == errors_before {
                self.malformed(start, "nothing after the flags");
            }
            return None;
        }
        let node = match keyword {
            Keyword::Arg => Instr::Arg(self.arg(words)?),
            Keyword::From => Instr::From(self.from(flags, words)?),
            Keyword::Copy => Instr::Copy(self.copy(flags, start, words)?),
            Keyword::Add => Instr::Add(self.copy(flags, start, words)?),
            Keyword::Env => Instr::Env(self.key_values(start, words)?),
            Keyword::Label => Instr::Label(self.key_values(start, words)?),
            Keyword::Workdir => Instr::Workdir(self.rest(start)),
            Keyword::User => Instr::User(self.rest(start)),
            Keyword::Stopsignal => {
                let signal = self.rest(start);
                if let Some(text) = literal(&signal, self.escape) {
                    if let Err(e) = validate_signal(&text) {
                        self.malformed(start, e.to_string());
                    }
                }
                Instr::Stopsignal(signal)
            }
            Keyword::Run => {
                let command = self.command(start)?;
                if matches!(&command, Command::Exec(argv) if argv.is_empty()) {
                    self.malformed(start, "the JSON array is empty: it names no program to run");
                    return None;
                }
                let heredocs = match command {
                    Command::Shell(_) => self.ins.heredocs.clone(),
                    Command::Exec(_) => Vec::new(),
                };
                Instr::Run(Run { flags, command, heredocs })
            }
            Keyword::Cmd => Instr::Cmd(self.command(start)?),
            Keyword::Entrypoint => Instr::Entrypoint(self.command(start)?),
            Keyword::Expose => Instr::Expose(self.expose(words)),
            Keyword::Shell => Instr::Shell(self.shell(start)?),
            Keyword::Volume => Instr::Volume(self.volume(start, words)?),
            // Read whole above.
            Keyword::Healthcheck | Keyword::Maintainer | Keyword::Onbuild => return None,
        };
        Some(node)
    }

    /// Leading `--name[=value]` words (up to the first other word, or a
    /// lone `--`, which is dropped), checked against what the instruction
    /// takes. Returns the valid flags and the index of the first other word.
    fn flags(&mut self, words: &[Word]) -> (Vec<Flag>, usize) {
        let allowed = self.keyword().flags();
        let mut flags: Vec<Flag> = Vec::new();
        for (index, w) in words.iter().enumerate() {
            if w.raw == "--" {
                return (flags, index + 1);
            }
            let Some(body) = w.raw.strip_prefix("--") else {
                return (flags, index);
            };
            let (name, value) = match body.split_once('=') {
                Some((name, value)) => (name, Some(value)),
                None => (body, None),
            };
            let Some(&(_, kind)) = allowed.iter().find(|(n, _)| *n == name) else {
                let kind = SyntaxErrorKind::UnknownFlag { keyword: self.keyword(), flag: name.to_string() };
                self.error_at(w.start, kind);
                continue;
            };
            if kind != FlagKind::Repeated && flags.iter().any(|f| f.name == name) {
                self.error_at(w.start, SyntaxErrorKind::DuplicateFlag(name.to_string()));
                continue;
            }
            let value_start = w.start + 2 + name.len() + 1;
            let value = value.map(|v| RawWord::verbatim(self.ins, value_start, value_start + v.len()));
            match (kind, &value) {
                (FlagKind::Value | FlagKind::Repeated, None) => {
                    self.error_at(w.start, SyntaxErrorKind::FlagWithoutValue(name.to_string()));
                    continue;
                }
                (FlagKind::Value | FlagKind::Repeated, Some(v)) if v.raw.is_empty() => {
                    self.flag_error(value_start, name, "", "the value is empty");
                    continue;
                }
                (FlagKind::Bool, Some(v)) if parse_bool(&v.raw).is_none() => {
                    self.flag_error(value_start, name, &v.raw, "use `true` or `false`");
                    continue;
                }
                _ => {}
            }
            flags.push(Flag { name: name.to_string(), value, position: self.ins.position_of(w.start) });
        }
        (flags, words.len())
    }

    fn flag_error(&mut self, offset: usize, flag: &str, value: &str, reason: &str) {
        let kind = SyntaxErrorKind::InvalidFlagValue {
            flag: flag.to_string(),
            value: value.to_string(),
            reason: reason.to_string(),
        };
        self.error_at(offset, kind);
    }

    fn arg(&mut self, words: &[Word]) -> Option<Vec<ArgDecl>> {
        let mut decls = Vec::new();
        for w in words {
            let name_len = w.raw.find('=').unwrap_or(w.raw.len());
            if name_len == 0 {
                self.malformed(w.start, format!("`{}` has no name before `=`", w.raw));
                continue;
            }
            let name = RawWord::verbatim(self.ins, w.start, w.start + name_len);
            let default = (name_len < w.raw.len())
                .then(|| RawWord::verbatim(self.ins, w.start + name_len + 1, w.start + w.raw.len()));
            decls.push(ArgDecl { name, default });
        }
        (!decls.is_empty()).then_some(decls)
    }

    fn from(&mut self, flags: Vec<Flag>, words: &[Word]) -> Option<From> {
        let platform = flags.into_iter().find(|f| f.name == "platform").and_then(|f| f.value);
        let image = self.word(&words[0]);
        let stage = match words {
            [_] => None,
            [_, as_, name] if as_.raw.eq_ignore_ascii_case("as") => {
                let stage = self.word(name);
                if let Some(text) = literal(&stage, self.escape) {
                    if !is_stage_name(&text) {
                        self.malformed(
                            name.start,
                            format!(
                                "invalid stage name `{text}`: start with a letter, then letters, digits, `-`, `_` or `.`"
                            ),
                        );
                    }
                }
                Some(stage)
            }
            [_, as_] if as_.raw.eq_ignore_ascii_case("as") => {
                self.malformed(as_.start, "`AS` needs a stage name after it");
                return None;
            }
            [_, second, ..] if !second.raw.eq_ignore_ascii_case("as") => {
                self.malformed(
                    second.start,
                    format!("expected `AS <name>` after the image, found `{}`", second.raw),
                );
                return None;
            }
            [.., extra] => {
                self.malformed(extra.start, format!("unexpected `{}` after the stage name", extra.raw));
                return None;
            }
            [] => return None,
        };
        Some(From { platform, image, stage })
    }

    fn copy(&mut self, flags: Vec<Flag>, start: usize, words: &[Word]) -> Option<Copy> {
        let mut chown = None;
        let mut chmod = None;
        let mut from = None;
        let mut link = false;
        for flag in flags {
            match (flag.name.as_str(), flag.value) {
                ("chown", value) => chown = value,
                ("chmod", Some(value)) => {
                    if let Some(text) = literal(&value, self.escape) {
                        if let Err(e) = parse_chmod(&text) {
                            self.errors.push(SyntaxError {
                                position: value.position,
                                kind: SyntaxErrorKind::InvalidFlagValue {
                                    flag: "chmod".into(),
                                    value: value.raw.clone(),
                                    reason: e.to_string(),
                                },
                            });
                        }
                    }
                    chmod = Some(value);
                }
                ("from", value) => from = value,
                ("link", value) => link = value.as_ref().and_then(|v| parse_bool(&v.raw)).unwrap_or(true),
                _ => {}
            }
        }
        let (mut paths, json) = match self.json(start)? {
            Some(strings) => (strings, true),
            None => (words.iter().map(|w| self.word(w)).collect::<Vec<_>>(), false),
        };
        let Some(dest) = paths.pop() else {
            self.malformed(start, "needs a source and a destination");
            return None;
        };
        if !json && !paths.is_empty() && heredoc_at(self.ins, &dest).is_some() {
            self.malformed_word(&dest, format!("a heredoc (`{}`) cannot be the destination", dest.raw));
            return None;
        }
        let mut heredocs = Vec::new();
        if !json {
            paths.retain(|source| match heredoc_at(self.ins, source) {
                Some(heredoc) => {
                    heredocs.push(heredoc.clone());
                    false
                }
                None => true,
            });
        }
        if paths.is_empty() && heredocs.is_empty() {
            self.malformed_word(
                &dest,
                format!("needs a source and a destination, only `{}` is given", dest.raw),
            );
            return None;
        }
        Some(Copy { chown, chmod, from, link, heredocs, sources: paths, dest, json })
    }

    /// `ENV`/`LABEL` pairs, in either form (BuildKit's `parseNameVal`).
    fn key_values(&mut self, start: usize, words: &[Word]) -> Option<Vec<KeyValue>> {
        let keyword = self.keyword();
        let first = &words[0];
        if !first.raw.contains('=') {
            // Legacy form: `ENV KEY value with spaces`.
            let Some(second) = words.get(1) else {
                self.malformed(start, format!("`{}` has no value: write `{0}=<value>`", first.raw));
                return None;
            };
            return Some(vec![KeyValue { key: self.word(first), value: self.rest(second.start) }]);
        }
        let mut pairs = Vec::new();
        for w in words {
            let Some(key_len) = w.raw.find('=') else {
                self.malformed(w.start, format!("`{}` is not of the form `<key>=<value>`", w.raw));
                continue;
            };
            if key_len == 0 {
                let what = if keyword == Keyword::Env { "variable name" } else { "label key" };
                self.malformed(w.start, format!("missing {what} before `=`"));
                continue;
            }
            let key = RawWord::verbatim(self.ins, w.start, w.start + key_len);
            let value = RawWord::verbatim(self.ins, w.start + key_len + 1, w.start + w.raw.len());
            pairs.push(KeyValue { key, value });
        }
        (!pairs.is_empty()).then_some(pairs)
    }

    /// Exec form or shell form, as BuildKit's `parseMaybeJSON`.
    fn command(&mut self, start: usize) -> Option<Command> {
        match self.json(start)? {
            Some(words) => Some(Command::Exec(words)),
            None => Some(Command::Shell(self.rest(start))),
        }
    }

    fn expose(&mut self, words: &[Word]) -> Vec<RawWord> {
        let ports: Vec<RawWord> = words.iter().map(|w| self.word(w)).collect();
        for (port, w) in ports.iter().zip(words) {
            if let Some(text) = literal(port, self.escape) {
                if let Err(reason) = parse_port(&text) {
                    self.malformed(w.start, format!("invalid port `{}`: {reason}", port.raw));
                }
            }
        }
        ports
    }

    fn shell(&mut self, start: usize) -> Option<Vec<String>> {
        match self.json(start)? {
            Some(words) if words.is_empty() => {
                self.malformed(start, "the JSON array is empty");
                None
            }
            Some(words) => Some(words.into_iter().map(|w| w.raw).collect()),
            None => {
                self.malformed(start, "needs a JSON array such as [\"/bin/sh\", \"-c\"]");
                None
            }
        }
    }

    fn volume(&mut self, start: usize, words: &[Word]) -> Option<Vec<RawWord>> {
        let paths = match self.json(start)? {
            Some(paths) => paths,
            None => words.iter().map(|w| self.word(w)).collect(),
        };
        if paths.is_empty() {
            self.malformed(start, "needs at least one path");
            return None;
        }
        for path in &paths {
            if path.raw.is_empty() {
                self.errors.push(SyntaxError {
                    position: path.position,
                    kind: SyntaxErrorKind::Malformed {
                        keyword: Keyword::Volume,
                        message: "a volume path is empty".into(),
                    },
                });
            }
        }
        Some(paths)
    }

    fn onbuild(&mut self) -> Option<Instr> {
        let args = &self.ins.args;
        let word = args.split(char::is_whitespace).next().unwrap_or_default();
        match Keyword::from_word(word) {
            None => self.malformed(0, format!("unknown instruction `{word}` after ONBUILD")),
            Some(k @ (Keyword::Onbuild | Keyword::From | Keyword::Maintainer)) => {
                self.malformed(0, format!("{k} is not allowed after ONBUILD"));
            }
            Some(_) if args[word.len()..].trim().is_empty() => {
                self.malformed(0, format!("{} needs arguments", word.to_ascii_uppercase()));
            }
            Some(_) => return Some(Instr::Onbuild(self.rest(0))),
        }
        None
    }

    /// The JSON array of strings starting at `start`: `Some(None)` when the
    /// text is not a JSON array (Docker reads it another way), `None` after
    /// reporting a JSON array that holds something other than strings.
    fn json(&mut self, start: usize) -> Option<Option<Vec<RawWord>>> {
        let text = &self.ins.args[start..];
        match json_strings(text) {
            Json::Not => Some(None),
            Json::NotStrings => {
                self.error_at(start, SyntaxErrorKind::NotStringArray(self.keyword()));
                None
            }
            Json::Strings(strings, trailing) => {
                if let Some(at) = trailing {
                    self.error_at(start + at, SyntaxErrorKind::TextAfterJson(self.keyword()));
                }
                let ins = self.ins;
                let words = strings
                    .into_iter()
                    .map(|(decoded, s, e)| RawWord::json(ins, start + s, start + e, decoded))
                    .collect();
                Some(Some(words))
            }
        }
    }
}

/// The heredoc that `word`, a word of the arguments of `ins`, opens.
fn heredoc_at<'i>(ins: &'i Instruction, word: &RawWord) -> Option<&'i Heredoc> {
    ins.heredocs.iter().find(|h| ins.position_of(h.offset) == word.position && h.word == word.raw)
}

/// Whether `text` is a JSON array of strings (exec form), as the lexer
/// needs to know before it looks for heredocs.
pub(crate) fn is_json_array(text: &str) -> bool {
    matches!(json_strings(text), Json::Strings(..))
}

/// Reads a JSON array of strings at the start of `text`, the way BuildKit
/// does: the first JSON value is decoded and anything after it ignored.
fn json_strings(text: &str) -> Json {
    if !text.starts_with('[') {
        return Json::Not;
    }
    let mut stream = serde_json::Deserializer::from_str(text).into_iter::<serde_json::Value>();
    let Some(Ok(serde_json::Value::Array(items))) = stream.next() else {
        return Json::Not;
    };
    let end = stream.byte_offset();
    let strings: Option<Vec<String>> = items
        .into_iter()
        .map(|v| match v {
            serde_json::Value::String(s) => Some(s),
            _ => None,
        })
        .collect();
    let Some(strings) = strings else {
        return Json::NotStrings;
    };
    // The array is valid JSON holding only strings: every `"` outside a
    // string opens one, in order.
    let mut tokens = Vec::new();
    let mut open: Option<usize> = None;
    let mut escaped = false;
    for (i, c) in text[..end].char_indices() {
        match open {
            None if c == '"' => open = Some(i),
            Some(_) if escaped => escaped = false,
            Some(_) if c == '\\' => escaped = true,
            Some(s) if c == '"' => {
                tokens.push((s, i + 1));
                open = None;
            }
            _ => {}
        }
    }
    let rest = &text[end..];
    let trailing = (!rest.trim().is_empty()).then(|| end + (rest.len() - rest.trim_start().len()));
    let words = strings.into_iter().zip(tokens).map(|(s, (a, b))| (s, a, b)).collect();
    Json::Strings(words, trailing)
}

/// The text of `word` when it has no variables to expand yet: quotes
/// removed, escapes applied. `None` when it must wait for expansion.
fn literal(word: &RawWord, escape: char) -> Option<String> {
    (!word.raw.contains('$')).then(|| unquote(&word.raw, escape))
}

/// Go's `strconv.ParseBool`.
fn parse_bool(text: &str) -> Option<bool> {
    match text {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// BuildKit's rule for stage names: `[a-z][a-z0-9-_.]*`, any case.
fn is_stage_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}
