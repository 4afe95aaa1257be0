//! Dockerfile front end.
//!
//! This first layer turns the text of a Dockerfile into its parser
//! directives and its instructions, each with the exact position of every
//! piece, the way BuildKit's parser reads it: `# escape=` and `# syntax=`
//! directives at the top, comment lines and blank lines skipped (also inside
//! an instruction continued with the escape character), keywords
//! case-insensitive. Typed instructions are built on top of it.

mod lexer;
mod words;

pub use lexer::{parse, Directive, Dockerfile, Instruction, Keyword, SyntaxError, SyntaxErrorKind};
pub use words::{parse_env, split_words, unquote, EnvPair, Word};

/// A 1-based line and column (in characters) in a Dockerfile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    /// Line, from 1.
    pub line: u32,
    /// Column in characters, from 1.
    pub column: u32,
}

impl std::fmt::Display for Position {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}
