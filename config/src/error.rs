//! Configuration errors that point at the offending text.

use std::fmt;
use std::ops::Range;

/// Why a configuration file was refused, and where.
///
/// Displayed as `PATH:LINE:COLUMN: message`, the form editors and compilers
/// use, so an administrator can jump straight to the mistake; `PATH: message`
/// when there is no position (the file cannot be read, or is too large).
/// Lines and columns count from 1; columns count characters, not bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    origin: String,
    position: Option<(usize, usize)>,
    message: String,
}

impl ConfigError {
    /// An error about the file as a whole.
    pub(crate) fn new(origin: &str, message: impl Into<String>) -> Self {
        ConfigError {
            origin: origin.to_owned(),
            position: None,
            message: one_line(message.into()),
        }
    }

    /// An error about the text starting at byte `offset` of `text`.
    pub(crate) fn at(origin: &str, text: &str, offset: usize, message: impl Into<String>) -> Self {
        ConfigError {
            origin: origin.to_owned(),
            position: Some(line_column(text, offset)),
            message: one_line(message.into()),
        }
    }

    /// An error about the text in `span`, or about the file when there is none.
    pub(crate) fn spanned(
        origin: &str,
        text: &str,
        span: Option<Range<usize>>,
        message: impl Into<String>,
    ) -> Self {
        match span {
            Some(span) => Self::at(origin, text, span.start, message),
            None => Self::new(origin, message),
        }
    }

    /// The file path, or the label given to [`Config::parse`](crate::Config::parse).
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The 1-based line of the mistake, when known.
    pub fn line(&self) -> Option<usize> {
        self.position.map(|(line, _)| line)
    }

    /// The 1-based column (in characters) of the mistake, when known.
    pub fn column(&self) -> Option<usize> {
        self.position.map(|(_, column)| column)
    }

    /// What was wrong and what is accepted, without the position.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.position {
            Some((line, column)) => write!(
                f,
                "{}:{line}:{column}: {}",
                self.origin.escape_debug(),
                self.message
            ),
            None => write!(f, "{}: {}", self.origin.escape_debug(), self.message),
        }
    }
}

impl std::error::Error for ConfigError {}

/// The 1-based line and column (in characters) of byte `offset` in `text`.
///
/// An offset past the end points just after the last character; one inside a
/// multi-byte character points at that character.
pub(crate) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text.as_bytes()[..offset.min(text.len())];
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |newline| newline + 1);
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    // Count characters by their first byte: UTF-8 continuation bytes are 10xxxxxx.
    let column = before[line_start..]
        .iter()
        .filter(|&&b| b & 0xC0 != 0x80)
        .count()
        + 1;
    (line, column)
}

/// Messages go to syslog one line each: a line break in one would let the
/// rest pass for a separate, forged log entry.
fn one_line(message: String) -> String {
    if message.contains(['\n', '\r']) {
        message
            .split(['\n', '\r'])
            .filter(|part| !part.trim().is_empty())
            .map(str::trim)
            .collect::<Vec<_>>()
            .join("; ")
    } else {
        message
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column_count_from_one() {
        let text = "ab\ncd\n\né=x";
        assert_eq!(line_column(text, 0), (1, 1));
        assert_eq!(line_column(text, 1), (1, 2));
        assert_eq!(line_column(text, 2), (1, 3));
        assert_eq!(line_column(text, 3), (2, 1));
        assert_eq!(line_column(text, 6), (3, 1));
        assert_eq!(line_column(text, 7), (4, 1));
        // `é` is two bytes: the `=` after it is the second character.
        assert_eq!(line_column(text, 9), (4, 2));
        assert_eq!(line_column(text, 1000), (4, 4));
    }

    #[test]
    fn display_forms() {
        let positioned = ConfigError::at("/etc/x.toml", "a\nbc", 3, "bad");
        assert_eq!(positioned.to_string(), "/etc/x.toml:2:2: bad");
        assert_eq!(positioned.line(), Some(2));
        assert_eq!(positioned.column(), Some(2));
        let whole = ConfigError::new("/etc/x.toml", "cannot read");
        assert_eq!(whole.to_string(), "/etc/x.toml: cannot read");
        assert_eq!(whole.line(), None);
    }

    #[test]
    fn messages_stay_on_one_line() {
        let error = ConfigError::new("f", "first\nsecond\r\n\nthird");
        assert_eq!(error.message(), "first; second; third");
        let error = ConfigError::new("evil\nname", "x");
        assert!(!error.to_string().contains('\n'));
    }
}
