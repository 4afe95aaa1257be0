//! The instructions Docker knows, and the grammar table of each: its
//! flags and how it is written. The lexer (for help on syntax errors) and
//! the typed reader (for flag checks) both read this table, so neither
//! calls into the other.

use std::fmt;

/// The instructions Docker knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum Keyword {
    Add,
    Arg,
    Cmd,
    Copy,
    Entrypoint,
    Env,
    Expose,
    From,
    Healthcheck,
    Label,
    Maintainer,
    Onbuild,
    Run,
    Shell,
    Stopsignal,
    User,
    Volume,
    Workdir,
}

impl Keyword {
    /// Every instruction, alphabetically.
    pub const ALL: [Keyword; 18] = [
        Keyword::Add,
        Keyword::Arg,
        Keyword::Cmd,
        Keyword::Copy,
        Keyword::Entrypoint,
        Keyword::Env,
        Keyword::Expose,
        Keyword::From,
        Keyword::Healthcheck,
        Keyword::Label,
        Keyword::Maintainer,
        Keyword::Onbuild,
        Keyword::Run,
        Keyword::Shell,
        Keyword::Stopsignal,
        Keyword::User,
        Keyword::Volume,
        Keyword::Workdir,
    ];

    /// The upper-case spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Keyword::Add => "ADD",
            Keyword::Arg => "ARG",
            Keyword::Cmd => "CMD",
            Keyword::Copy => "COPY",
            Keyword::Entrypoint => "ENTRYPOINT",
            Keyword::Env => "ENV",
            Keyword::Expose => "EXPOSE",
            Keyword::From => "FROM",
            Keyword::Healthcheck => "HEALTHCHECK",
            Keyword::Label => "LABEL",
            Keyword::Maintainer => "MAINTAINER",
            Keyword::Onbuild => "ONBUILD",
            Keyword::Run => "RUN",
            Keyword::Shell => "SHELL",
            Keyword::Stopsignal => "STOPSIGNAL",
            Keyword::User => "USER",
            Keyword::Volume => "VOLUME",
            Keyword::Workdir => "WORKDIR",
        }
    }

    /// The keyword spelled `word`, in any case.
    pub fn from_word(word: &str) -> Option<Keyword> {
        Keyword::ALL.into_iter().find(|k| k.as_str().eq_ignore_ascii_case(word))
    }
}

impl fmt::Display for Keyword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a flag takes its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FlagKind {
    /// `--name=value`, value required.
    Value,
    /// As `Value`, and may be given more than once (`RUN --mount`).
    Repeated,
    /// `--name` or `--name=true|false`.
    Bool,
}

impl Keyword {
    /// The flags this instruction accepts (those we can build; Docker knows a few
    /// more, such as `ADD --checksum`, which are rejected as unknown).
    pub(crate) fn flags(self) -> &'static [(&'static str, FlagKind)] {
        match self {
            Keyword::From => &[("platform", FlagKind::Value)],
            Keyword::Copy => &[
                ("chown", FlagKind::Value),
                ("chmod", FlagKind::Value),
                ("from", FlagKind::Value),
                ("link", FlagKind::Bool),
            ],
            Keyword::Add => {
                &[("chown", FlagKind::Value), ("chmod", FlagKind::Value), ("link", FlagKind::Bool)]
            }
            Keyword::Run => {
                &[("mount", FlagKind::Repeated), ("network", FlagKind::Value), ("security", FlagKind::Value)]
            }
            _ => &[],
        }
    }

    /// How the instruction is written, for help messages.
    pub(crate) fn usage(self) -> &'static str {
        match self {
            Keyword::Add => "ADD [--chown=<user>:<group>] [--chmod=<mode>] <src>... <dest>",
            Keyword::Arg => "ARG <name>[=<default>]",
            Keyword::Cmd => "CMD [\"executable\", \"arg\"...]` or `CMD command",
            Keyword::Copy => {
                "COPY [--from=<stage>] [--chown=<user>:<group>] [--chmod=<mode>] <src>... <dest>"
            }
            Keyword::Entrypoint => "ENTRYPOINT [\"executable\", \"arg\"...]` or `ENTRYPOINT command",
            Keyword::Env => "ENV <key>=<value> ...",
            Keyword::Expose => "EXPOSE <port>[/<protocol>] ...",
            Keyword::From => "FROM [--platform=<platform>] <image> [AS <name>]",
            Keyword::Healthcheck => "HEALTHCHECK [options] CMD command` or `HEALTHCHECK NONE",
            Keyword::Label => "LABEL <key>=<value> ...",
            Keyword::Maintainer => "MAINTAINER <name>",
            Keyword::Onbuild => "ONBUILD <instruction>",
            Keyword::Run => "RUN command` or `RUN [\"executable\", \"arg\"...]",
            Keyword::Shell => "SHELL [\"executable\", \"parameters\"]",
            Keyword::Stopsignal => "STOPSIGNAL <signal>",
            Keyword::User => "USER <user>[:<group>]",
            Keyword::Volume => "VOLUME <path> ...` or `VOLUME [\"<path>\", ...]",
            Keyword::Workdir => "WORKDIR <path>",
        }
    }
}
