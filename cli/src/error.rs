//! Why a command failed. Each error is shown as one line on stderr,
//! `deadboltctl: <reason>`, and the command exits 1.

use deadbolt_core::{StoreError, UserNameError};
use std::fmt;
use std::path::PathBuf;

#[derive(Debug)]
pub enum CliError {
    /// The USER argument is not a usable name. The name itself is never
    /// shown: it may be a password typed at the wrong prompt.
    InvalidUser(UserNameError),
    /// The value of `expire --on` is not a day of the calendar. The text is
    /// the reason, with the value only when it is safe to show.
    InvalidDate(String),
    /// `--config`, `DEADBOLT_CONFIG` or `check-config FILE` names a file
    /// that does not exist.
    ConfigMissing(PathBuf),
    /// The configuration does not parse or validate; the text is the config
    /// crate's `FILE:LINE:COLUMN: message`.
    Config(String),
    /// A change asked for by someone who may not make it.
    NeedsRoot(&'static str),
    /// Reading the state needs the rights of the state directory's owner.
    CannotRead {
        dir: PathBuf,
        owner: u32,
    },
    /// NSS does not know the user and the store has no state for him.
    NoSuchUser(String),
    Store(StoreError),
    /// Writing the output failed (other than a closed pipe).
    Output(std::io::Error),
    /// Acting through the directory did not work; the text says why.
    Directory(String),
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::InvalidUser(why) => write!(f, "invalid user name: {why}"),
            CliError::InvalidDate(why) => write!(f, "invalid date for --on: {why}"),
            CliError::ConfigMissing(path) => {
                write!(
                    f,
                    "{}: the configuration file does not exist",
                    path.display()
                )
            }
            CliError::Config(text) => f.write_str(text),
            CliError::Directory(text) => f.write_str(text),
            CliError::NeedsRoot(verb) => {
                write!(f, "{verb} needs root (the state directory is root's)")
            }
            CliError::CannotRead { owner: 0, .. } => {
                f.write_str("status needs root (the state directory is root's)")
            }
            CliError::CannotRead { dir, owner } => write!(
                f,
                "status needs the rights of uid {owner}, the owner of {}",
                dir.display()
            ),
            CliError::NoSuchUser(user) => write!(
                f,
                "no such user: {user} (NSS does not know him and he has no state)"
            ),
            CliError::Store(err) => write!(f, "{err}"),
            CliError::Output(err) => write!(f, "writing the output: {err}"),
        }
    }
}

impl std::error::Error for CliError {}

impl From<StoreError> for CliError {
    fn from(err: StoreError) -> Self {
        CliError::Store(err)
    }
}

impl From<UserNameError> for CliError {
    fn from(err: UserNameError) -> Self {
        CliError::InvalidUser(err)
    }
}

pub use deadboltctl::one_line;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_user_does_not_echo_the_name() {
        let err = CliError::InvalidUser(UserNameError::Slash);
        assert_eq!(
            err.to_string(),
            "invalid user name: the user name contains '/'"
        );
    }

    #[test]
    fn needs_root_names_the_verb() {
        assert_eq!(
            CliError::NeedsRoot("reactivate").to_string(),
            "reactivate needs root (the state directory is root's)"
        );
    }

    #[test]
    fn one_line_flattens_and_neutralises() {
        assert_eq!(one_line("a\n  b\r\nc\x1b[31m"), "a b c?[31m");
        assert_eq!(one_line("  plain  "), "plain");
    }
}
