//! User names that are safe to use as a file name and to log.
//!
//! Everything that reaches the store goes through [`UserName::parse`] first, so
//! a name like `../../etc/shadow` is refused before any path is built.

use std::fmt;

/// The longest user name accepted, in bytes. glibc accepts longer ones, but no
/// directory or login program we serve does.
///
/// The bound leaves room for the store's own file names under the kernel's
/// NAME_MAX (255 bytes per path component): the longest of them,
/// `.corrupt.<user>.<micros>`, adds at most 30 bytes to the name (`.corrupt.`,
/// a dot and a time of up to 20 characters), `.tmp.<user>.<pid>` 16 and
/// `<user>.state` 6. A bound near 255 would accept names whose files cannot
/// be created, and whose failures would then never be recorded.
pub const MAX_USER_NAME_LEN: usize = 200;

/// A user name checked to be usable as a single path component.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UserName(String);

/// Why a user name was refused. The refused text itself is never kept: it may
/// be a password typed into the login prompt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UserNameError {
    Empty,
    TooLong,
    NotUtf8,
    Slash,
    Dot,
    ControlCharacter,
    LeadingDash,
}

impl fmt::Display for UserNameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UserNameError::Empty => "the user name is empty",
            UserNameError::TooLong => "the user name is longer than 200 bytes",
            UserNameError::NotUtf8 => "the user name is not valid UTF-8",
            UserNameError::Slash => "the user name contains '/'",
            UserNameError::Dot => "the user name is '.' or '..' or starts with '.'",
            UserNameError::ControlCharacter => {
                "the user name contains a NUL, control or whitespace character"
            }
            UserNameError::LeadingDash => "the user name starts with '-'",
        })
    }
}

impl std::error::Error for UserNameError {}

impl UserName {
    /// Checks raw bytes, as they come from PAM or the command line.
    pub fn from_bytes(raw: &[u8]) -> Result<Self, UserNameError> {
        if raw.len() > MAX_USER_NAME_LEN {
            return Err(UserNameError::TooLong);
        }
        let text = std::str::from_utf8(raw).map_err(|_| UserNameError::NotUtf8)?;
        Self::parse(text)
    }

    pub fn parse(text: &str) -> Result<Self, UserNameError> {
        if text.is_empty() {
            return Err(UserNameError::Empty);
        }
        if text.len() > MAX_USER_NAME_LEN {
            return Err(UserNameError::TooLong);
        }
        if text.contains('/') {
            return Err(UserNameError::Slash);
        }
        // A leading dot covers `.` and `..` and keeps the store's own
        // temporary and quarantine files out of the user namespace.
        if text.starts_with('.') {
            return Err(UserNameError::Dot);
        }
        if text.starts_with('-') {
            return Err(UserNameError::LeadingDash);
        }
        if text.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(UserNameError::ControlCharacter);
        }
        Ok(UserName(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_names_pass() {
        for name in [
            "alice",
            "bob.smith",
            "x_1",
            "j-doe",
            "user@example.org",
            "émile",
        ] {
            assert_eq!(UserName::parse(name).unwrap().as_str(), name);
        }
    }

    #[test]
    fn hostile_names_are_refused() {
        let cases: &[(&[u8], UserNameError)] = &[
            (b"", UserNameError::Empty),
            (b"a/b", UserNameError::Slash),
            (b"../etc", UserNameError::Slash),
            (b"..", UserNameError::Dot),
            (b".", UserNameError::Dot),
            (b".hidden", UserNameError::Dot),
            (b"a\0b", UserNameError::ControlCharacter),
            (b"a\nb", UserNameError::ControlCharacter),
            (b"a\x1bb", UserNameError::ControlCharacter),
            (b"a b", UserNameError::ControlCharacter),
            (b"-rf", UserNameError::LeadingDash),
            (b"\xff\xfe", UserNameError::NotUtf8),
        ];
        for (raw, expected) in cases {
            assert_eq!(UserName::from_bytes(raw), Err(*expected), "{raw:?}");
        }
        assert_eq!(
            UserName::from_bytes(&[b'a'; MAX_USER_NAME_LEN + 1]),
            Err(UserNameError::TooLong)
        );
        assert_eq!(
            UserName::from_bytes(&[b'a'; 256]),
            Err(UserNameError::TooLong)
        );
        assert!(UserName::from_bytes(&[b'a'; MAX_USER_NAME_LEN]).is_ok());
        assert_eq!(MAX_USER_NAME_LEN, 200);
        assert_eq!(
            UserNameError::TooLong.to_string(),
            "the user name is longer than 200 bytes"
        );
        assert_eq!(
            UserName::from_bytes(&vec![b'a'; 10 * 1024]),
            Err(UserNameError::TooLong)
        );
    }
}
