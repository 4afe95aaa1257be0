//! A problem found in one manifest file: what is wrong, where, and what to do.

use crate::Position;

/// One thing wrong with a file's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// What is wrong, lowercase, no trailing period.
    pub message: String,
    /// Where in the file, when a position makes sense.
    pub position: Option<Position>,
    /// What to do about it.
    pub help: Option<String>,
}

impl Problem {
    /// A problem at `position`.
    pub fn at(position: Position, message: impl Into<String>) -> Problem {
        Problem { message: message.into(), position: Some(position), help: None }
    }

    /// A problem with the file as a whole.
    pub fn whole_file(message: impl Into<String>) -> Problem {
        Problem { message: message.into(), position: None, help: None }
    }

    /// Adds advice.
    pub fn with_help(mut self, help: impl Into<String>) -> Problem {
        self.help = Some(help.into());
        self
    }

    /// A JSON syntax or shape error from serde_json, positioned in `src`.
    pub(crate) fn from_json_error(src: &str, err: &serde_json::Error) -> Problem {
        let text = err.to_string();
        // serde_json appends " at line L column C"; we carry the position apart.
        let message = match text.rfind(" at line ") {
            Some(i) => text[..i].to_string(),
            None => text,
        };
        let position =
            (err.line() > 0).then(|| Position::from_line_byte_column(src, err.line(), err.column()));
        Problem { message: format!("invalid JSON: {message}"), position, help: None }
    }
}

/// What the parsers' tests compare: `ok` of what was parsed, or the
/// problems as `LINE:COL: message` (`-` for the whole file), one a line.
#[cfg(test)]
pub(crate) fn render<T>(parsed: Result<T, Vec<Problem>>, ok: impl FnOnce(T) -> String) -> String {
    let line = |p: &Problem| format!("{}: {}", p.position.map_or("-".into(), |p| p.to_string()), p.message);
    match parsed {
        Ok(value) => ok(value),
        Err(problems) => problems.iter().map(line).collect::<Vec<_>>().join("\n"),
    }
}
