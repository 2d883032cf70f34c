//! Parse errors with a file/line/column location.

use thiserror::Error;

/// A flow-syntax error: where it is (file, 1-based line and column of the
/// offending token) and why.
///
/// Displays as `flows.txt:12: col 31: nw_src requires ip or arp`, or
/// `col 31: ...` for a single line parsed without a file name.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{}col {col}: {reason}", location(.file, *.line))]
pub struct ParseError {
    /// File name (empty for a line parsed on its own).
    pub file: String,
    /// 1-based line number.
    pub line: usize,
    /// 1-based column (in characters) of the offending token.
    pub col: usize,
    /// What is wrong.
    pub reason: String,
}

fn location(file: &str, line: usize) -> String {
    if file.is_empty() {
        String::new()
    } else {
        format!("{file}:{line}: ")
    }
}

/// Internal error: a byte offset into the line plus a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Perr {
    pub pos: usize,
    pub msg: String,
}

impl Perr {
    pub(crate) fn new(pos: usize, msg: impl Into<String>) -> Self {
        Perr {
            pos,
            msg: msg.into(),
        }
    }

    /// Attaches the location; `text` is the line the offset refers to.
    pub(crate) fn locate(self, file: &str, line: usize, text: &str) -> ParseError {
        let pos = self.pos.min(text.len());
        let col = match text.get(..pos) {
            Some(prefix) => prefix.chars().count() + 1,
            None => pos + 1,
        };
        ParseError {
            file: file.to_string(),
            line,
            col,
            reason: bounded_excerpt(self.msg),
        }
    }
}

/// Longest error reason kept: reasons quote the input, and a 10 MB token
/// must not come back as a 10 MB message.
pub const MAX_REASON_BYTES: usize = 300;

/// `msg` cut to [`MAX_REASON_BYTES`] (at a character boundary), saying how
/// much was cut.
fn bounded_excerpt(msg: String) -> String {
    if msg.len() <= MAX_REASON_BYTES {
        return msg;
    }
    let mut end = MAX_REASON_BYTES;
    while !msg.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}... ({} more bytes cut)", &msg[..end], msg.len() - end)
}

pub(crate) type PResult<T> = Result<T, Perr>;
