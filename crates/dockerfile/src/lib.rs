//! Dockerfile front end.
//!
//! Three layers, each on top of the previous one:
//! - [`parse`] (the lexer) turns the text of a Dockerfile into its parser
//!   directives and its instructions, each with the exact position of every
//!   piece, the way BuildKit's parser reads it: `# escape=` and `# syntax=`
//!   directives at the top, comment lines and blank lines skipped (also
//!   inside an instruction continued with the escape character), keywords
//!   case-insensitive; [`split_words`] splits arguments into words.
//! - [`parse_instructions`] reads each instruction into a typed [`Instr`]
//!   whose values stay raw (quotes and `$` intact), each with its position.
//! - [`expand_word`] substitutes variables in a raw word with BuildKit's
//!   shell-word rules, at build time, when the `ARG`/`ENV` state is known.
//!
//! Beside them, [`shell`] reads the text of a shell-form `RUN` the way the
//! `sh` in the container would (the POSIX subset Dockerfiles use), into
//! simple commands, refusing with its offset whatever it does not emulate.

mod ast;
mod expand;
mod heredoc;
mod keyword;
mod lexer;
pub mod shell;
mod values;
mod words;

pub use ast::{
    parse_instructions, ArgDecl, Command, Copy, Flag, From, Instr, KeyValue, RawWord, Run, RunScript, Spanned,
};
pub use expand::{
    expand_heredoc, expand_word, expand_words, expands, ExpandError, ExpandErrorKind, WordExpandError,
    MAX_EXPANDED,
};
pub use heredoc::Heredoc;
pub use keyword::Keyword;
pub use lexer::{parse, Directive, Dockerfile, Instruction, SyntaxError, SyntaxErrorKind};
pub use values::{parse_chmod, parse_port, split_user, validate_signal, PortSpec, Protocol, ValueError};
pub use words::{parse_env, split_words, unquote, EnvPair, Word};

/// A 1-based line and column (in characters) in a Dockerfile: the one
/// position type of every file we read.
pub use forge_input::Position;
