//! How the PAM module talks to the `deadbolt-pwcheck` program.
//!
//! ```text
//! deadbolt-pwcheck --user NAME [--real-name TEXT] --min-strength N [--list PATH... | --no-lists]
//! ```
//!
//! - The new password is read from standard input: raw bytes up to the end
//!   of input, no terminator, no trailing newline removed (from a shell, use
//!   `printf %s`, not `echo`). At most [`MAX_PASSWORD_BYTES`] are kept; a
//!   longer password is refused, and the rest of the input is read and
//!   thrown away (up to [`DRAIN_LIMIT`] bytes) so that the writer does not
//!   meet a closed pipe.
//! - One line of JSON, a [`CheckVerdict`](crate::CheckVerdict), is written
//!   to standard output.
//! - Exit status: [`EXIT_ACCEPTED`] (0), [`EXIT_REFUSED`] (1), or
//!   [`EXIT_USAGE`] (2) when no check was made: bad arguments, or standard
//!   input or output failed; a message is then on standard error and
//!   nothing on standard output. The verdict on standard output is what
//!   decides: a caller must treat no verdict (exit 2, a signal, garbage) as
//!   a refusal.
//! - Without `--list`, the list read is [`DEFAULT_LIST_PATH`]. Each `--list`
//!   adds one list, in order; the default is then not read unless named.
//! - The password is never written anywhere, and the buffer that held it is
//!   overwritten before the program exits.
//!
//! Options take their value as the next argument or after `=`
//! (`--user=jdoe`). The user name and real name are converted lossily if
//! they are not UTF-8: they are only hints for the estimate.

use crate::{SecretBytes, DEFAULT_LIST_PATH, MAX_PASSWORD_BYTES, MAX_STRENGTH};
use std::ffi::OsString;
use std::fmt;
use std::io::{self, Read};
use std::path::PathBuf;

/// Exit status: the password is accepted.
pub const EXIT_ACCEPTED: u8 = 0;
/// Exit status: the password is refused; the verdict says why.
pub const EXIT_REFUSED: u8 = 1;
/// Exit status: no check was made (bad arguments, or an I/O failure).
pub const EXIT_USAGE: u8 = 2;

/// The most input read past a too-long password before giving up on it.
pub const DRAIN_LIMIT: u64 = 16 * 1024 * 1024;

/// The program's help text.
pub const USAGE: &str = "\
Usage: deadbolt-pwcheck --user NAME [--real-name TEXT] --min-strength N [--list PATH... | --no-lists]

Judges a new password read from standard input (raw bytes up to the end of
input, at most 4096) and writes the verdict as one line of JSON.

  --user NAME          the login name (the password must not be built from it)
  --real-name TEXT     the user's real name or GECOS field (same)
  --min-strength N     the least zxcvbn score accepted, 0 to 4
  --no-lists           check no list at all, only the strength
  --list PATH          a list of common or forbidden passwords, one a line;
                       may be repeated; default: /usr/share/deadbolt/common-passwords.txt
  --help, --version

Exit status: 0 accepted, 1 refused, 2 no check made (usage or I/O error).
";

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Judge the password on standard input.
    Check(Options),
    /// Print [`USAGE`].
    Help,
    /// Print the version.
    Version,
}

/// The options of a check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    pub user: String,
    pub real_name: String,
    pub min_strength: u8,
    /// [`DEFAULT_LIST_PATH`] when no `--list` was given; empty only with
    /// `--no-lists`.
    pub lists: Vec<PathBuf>,
}

/// A command line that cannot be run, with a message for standard error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

fn usage(message: impl Into<String>) -> UsageError {
    UsageError(message.into())
}

/// Parses the arguments after the program name.
pub fn parse_args<I>(args: I) -> Result<Command, UsageError>
where
    I: IntoIterator<Item = OsString>,
{
    let mut args = args.into_iter();
    let mut user: Option<String> = None;
    let mut real_name: Option<String> = None;
    let mut min_strength: Option<u8> = None;
    let mut lists = Vec::new();
    let mut no_lists = false;

    while let Some(arg) = args.next() {
        let Some(text) = arg.to_str() else {
            return Err(usage(format!(
                "unexpected argument {}",
                arg.to_string_lossy()
            )));
        };
        let (name, inline) = match text.split_once('=') {
            Some((name, value)) if name.starts_with("--") => (name, Some(OsString::from(value))),
            _ => (text, None),
        };
        match name {
            "--help" | "-h" if inline.is_none() => return Ok(Command::Help),
            "--version" | "-V" if inline.is_none() => return Ok(Command::Version),
            // The configuration's `lists = []`: judge by strength alone.
            "--no-lists" if inline.is_none() => no_lists = true,
            "--user" | "--real-name" | "--min-strength" | "--list" => {
                let value = match inline {
                    Some(value) => value,
                    None => args
                        .next()
                        .ok_or_else(|| usage(format!("{name} needs a value")))?,
                };
                match name {
                    "--user" => set_once(&mut user, name, value.to_string_lossy().into_owned())?,
                    "--real-name" => {
                        set_once(&mut real_name, name, value.to_string_lossy().into_owned())?
                    }
                    "--min-strength" => set_once(&mut min_strength, name, parse_strength(&value)?)?,
                    _ => lists.push(PathBuf::from(value)),
                }
            }
            _ => return Err(usage(format!("unexpected argument {text}"))),
        }
    }

    let user = user.ok_or_else(|| usage("--user is required"))?;
    if user.is_empty() {
        return Err(usage("--user must not be empty"));
    }
    let min_strength = min_strength.ok_or_else(|| usage("--min-strength is required"))?;
    if no_lists && !lists.is_empty() {
        return Err(usage("--no-lists and --list exclude each other"));
    }
    if lists.is_empty() && !no_lists {
        lists.push(PathBuf::from(DEFAULT_LIST_PATH));
    }
    Ok(Command::Check(Options {
        user,
        real_name: real_name.unwrap_or_default(),
        min_strength,
        lists,
    }))
}

fn set_once<T>(slot: &mut Option<T>, name: &str, value: T) -> Result<(), UsageError> {
    if slot.is_some() {
        return Err(usage(format!("{name} is given twice")));
    }
    *slot = Some(value);
    Ok(())
}

fn parse_strength(value: &std::ffi::OsStr) -> Result<u8, UsageError> {
    value
        .to_str()
        .and_then(|v| v.parse::<u8>().ok())
        .filter(|n| *n <= MAX_STRENGTH)
        .ok_or_else(|| {
            usage(format!(
                "--min-strength must be a number from 0 to {MAX_STRENGTH}, not {}",
                value.to_string_lossy()
            ))
        })
}

/// Reads the password: everything up to the end of `input`, keeping at most
/// `MAX_PASSWORD_BYTES + 1` bytes, so that a password that is too long
/// stays too long for [`check`](crate::check) to refuse. What follows is
/// read and thrown away, up to [`DRAIN_LIMIT`] bytes.
pub fn read_password<R: Read>(mut input: R) -> io::Result<SecretBytes> {
    // Allocated once at its full size: no reallocation leaves a copy behind.
    let mut buffer = SecretBytes::from(vec![0u8; MAX_PASSWORD_BYTES + 1]);
    let mut filled = 0;
    while filled < buffer.len() {
        match input.read(&mut buffer[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    if filled > MAX_PASSWORD_BYTES {
        // Refused anyway: a failure while draining changes nothing.
        let _ = drain(&mut input);
    }
    buffer.truncate(filled);
    Ok(buffer)
}

fn drain<R: Read>(input: &mut R) -> io::Result<()> {
    let mut scratch = SecretBytes::from(vec![0u8; 8192]);
    let mut seen: u64 = 0;
    while seen < DRAIN_LIMIT {
        match input.read(&mut scratch) {
            Ok(0) => break,
            Ok(n) => seen += n as u64,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Command, UsageError> {
        parse_args(args.iter().map(OsString::from))
    }

    fn options(args: &[&str]) -> Options {
        match parse(args) {
            Ok(Command::Check(options)) => options,
            other => panic!("{args:?}: {other:?}"),
        }
    }

    #[test]
    fn a_full_command_line() {
        let got = options(&[
            "--user",
            "jdoe",
            "--real-name",
            "Jane Doe",
            "--min-strength",
            "3",
            "--list",
            "/a.txt",
            "--list=/b.txt",
        ]);
        assert_eq!(
            got,
            Options {
                user: "jdoe".into(),
                real_name: "Jane Doe".into(),
                min_strength: 3,
                lists: vec![PathBuf::from("/a.txt"), PathBuf::from("/b.txt")],
            }
        );
    }

    #[test]
    fn without_list_the_default_path_is_read() {
        let got = options(&["--user=jdoe", "--min-strength=0"]);
        assert_eq!(got.lists, vec![PathBuf::from(DEFAULT_LIST_PATH)]);
        let Command::Check(none) =
            parse_args(["--user", "u", "--min-strength", "1", "--no-lists"].map(OsString::from))
                .unwrap()
        else {
            panic!("not a check");
        };
        assert!(none.lists.is_empty());
        assert!(parse_args(
            [
                "--user",
                "u",
                "--min-strength",
                "1",
                "--no-lists",
                "--list",
                "/x"
            ]
            .map(OsString::from)
        )
        .is_err());
        assert_eq!(got.real_name, "");
    }

    #[test]
    fn an_equals_sign_inside_a_value_is_kept() {
        let got = options(&["--user", "a=b", "--real-name=x=y", "--min-strength", "1"]);
        assert_eq!(got.user, "a=b");
        assert_eq!(got.real_name, "x=y");
    }

    #[test]
    fn usage_errors() {
        let cases: &[(&[&str], &str)] = &[
            (&[], "--user is required"),
            (&["--user", "jdoe"], "--min-strength is required"),
            (&["--min-strength", "3"], "--user is required"),
            (
                &["--user", "", "--min-strength", "3"],
                "--user must not be empty",
            ),
            (
                &["--user", "jdoe", "--min-strength", "5"],
                "--min-strength must be a number from 0 to 4, not 5",
            ),
            (
                &["--user", "jdoe", "--min-strength", "-1"],
                "--min-strength must be a number from 0 to 4, not -1",
            ),
            (
                &["--user", "jdoe", "--min-strength"],
                "--min-strength needs a value",
            ),
            (
                &["--user", "a", "--user", "b", "--min-strength", "3"],
                "--user is given twice",
            ),
            (
                &["--user", "jdoe", "--min-strength", "3", "hunter2"],
                "unexpected argument hunter2",
            ),
            (&["--colour"], "unexpected argument --colour"),
            (&["--help=yes"], "unexpected argument --help=yes"),
        ];
        for (args, message) in cases {
            assert_eq!(
                parse(args),
                Err(UsageError(message.to_string())),
                "{args:?}"
            );
        }
    }

    #[test]
    fn help_and_version() {
        assert_eq!(parse(&["--help"]), Ok(Command::Help));
        assert_eq!(parse(&["--user", "x", "-h"]), Ok(Command::Help));
        assert_eq!(parse(&["--version"]), Ok(Command::Version));
        assert!(USAGE.contains(DEFAULT_LIST_PATH));
    }

    #[test]
    fn reading_stops_one_byte_past_the_limit_and_drains_the_rest() {
        let exact = vec![b'a'; MAX_PASSWORD_BYTES];
        assert_eq!(read_password(&exact[..]).unwrap().len(), MAX_PASSWORD_BYTES);

        let huge = vec![b'a'; 1 << 20];
        let mut cursor = io::Cursor::new(huge);
        let read = read_password(&mut cursor).unwrap();
        assert_eq!(read.len(), MAX_PASSWORD_BYTES + 1);
        assert_eq!(cursor.position(), 1 << 20, "the rest was read and dropped");

        assert_eq!(&*read_password(&b"pa\nss\0"[..]).unwrap(), b"pa\nss\0");
        assert!(read_password(io::empty()).unwrap().is_empty());
    }

    /// A reader that hands over one byte at a time and is interrupted in
    /// between, as a pipe may be.
    struct Trickle<'a> {
        data: &'a [u8],
        interrupt: bool,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.interrupt = !self.interrupt;
            if self.interrupt {
                return Err(io::Error::from(io::ErrorKind::Interrupted));
            }
            let Some((first, rest)) = self.data.split_first() else {
                return Ok(0);
            };
            buf[0] = *first;
            self.data = rest;
            Ok(1)
        }
    }

    #[test]
    fn short_and_interrupted_reads_are_retried() {
        let reader = Trickle {
            data: b"slow-pipe",
            interrupt: false,
        };
        assert_eq!(&*read_password(reader).unwrap(), b"slow-pipe");
    }

    #[test]
    fn a_read_error_is_returned() {
        struct Broken;
        impl Read for Broken {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::other("broken"))
            }
        }
        assert!(read_password(Broken).is_err());
    }
}
