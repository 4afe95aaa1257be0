//! Source positions (1-based line and column, columns counted in characters
//! like rustc does) and the conversion from byte offsets: the one position
//! type of manifests, Dockerfiles and lint diagnostics.

use std::fmt;

/// A 1-based line and column in a text file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    /// Line number, starting at 1.
    pub line: u32,
    /// Column number in characters, starting at 1.
    pub column: u32,
}

impl Position {
    /// The start of a file.
    pub const START: Position = Position { line: 1, column: 1 };

    /// The position of byte `offset` in `src`. Offsets past the end or inside
    /// a multi-byte character are clamped to the previous character boundary.
    pub fn of_offset(src: &str, offset: usize) -> Position {
        let mut offset = offset.min(src.len());
        while !src.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &src[..offset];
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let line = before.matches('\n').count() + 1;
        let column = before[line_start..].chars().count() + 1;
        Position { line: saturating_u32(line), column: saturating_u32(column) }
    }

    /// Converts serde_json's line and byte column (1-based) to a character
    /// column, so that positions in lines with non-ASCII text are right.
    pub fn from_line_byte_column(src: &str, line: usize, byte_column: usize) -> Position {
        let Some(text) = src.split('\n').nth(line.saturating_sub(1)) else {
            return Position { line: saturating_u32(line), column: saturating_u32(byte_column.max(1)) };
        };
        let mut end = byte_column.saturating_sub(1).min(text.len());
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        Position {
            line: saturating_u32(line.max(1)),
            column: saturating_u32(text[..end].chars().count() + 1),
        }
    }
}

fn saturating_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_count_characters() {
        let src = "ab\nçd\n";
        assert_eq!(Position::of_offset(src, 0), Position { line: 1, column: 1 });
        assert_eq!(Position::of_offset(src, 3), Position { line: 2, column: 1 });
        // 'd' is at byte 5 (ç is two bytes) but column 2.
        assert_eq!(Position::of_offset(src, 5), Position { line: 2, column: 2 });
        assert_eq!(Position::of_offset(src, 99), Position { line: 3, column: 1 });
    }

    #[test]
    fn serde_columns_become_character_columns() {
        let src = "{\"é\": x}";
        // serde_json reports the byte column of 'x': 8.
        assert_eq!(Position::from_line_byte_column(src, 1, 8), Position { line: 1, column: 7 });
    }
}
