//! Lists of common or forbidden passwords: plain text files, one password a
//! line, in lower case, read line by line without loading the whole file.
//!
//! Format, for the shipped list and for a site's own:
//! - one password a line, `\n` or `\r\n` line ends, the last line's end
//!   optional; empty lines are ignored;
//! - nothing else is stripped: a line is the password, spaces included, and
//!   there are no comments (a password may well start with `#`);
//! - a line is compared case-insensitively (entries are expected in lower
//!   case, but a site list written in mixed case works too);
//! - bytes that are not UTF-8 are allowed and compared as they are, apart
//!   from ASCII letters, which are compared without regard to case.

use crate::SecretBytes;
use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::{Path, PathBuf};

/// Lines longer than this cannot match any password the helper accepts
/// (4096 bytes, which lower-casing can at most triple) and are skipped
/// without being kept in memory.
const MAX_LINE_BYTES: usize = 16 * 1024;

/// The outcome of looking a password up in a set of lists.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ListLookup {
    /// The password is on one of the lists.
    pub found: bool,
    /// Lists that could not be read, each as "PATH: reason". A list that
    /// cannot be read is skipped: it never blocks a password change.
    pub problems: Vec<String>,
}

/// The form of a password that lists are compared with: lower case by
/// Unicode's rules when it is UTF-8, otherwise with only its ASCII letters
/// lowered.
pub fn fold_case(password: &[u8]) -> SecretBytes {
    match std::str::from_utf8(password) {
        Ok(text) => SecretBytes::from(text.to_lowercase()),
        Err(_) => SecretBytes::from(password.to_ascii_lowercase()),
    }
}

/// Looks `folded` (see [`fold_case`]) up in each list in turn, stopping at
/// the first list that has it. Lists after that one are not opened.
pub fn find_in_lists(folded: &[u8], lists: &[PathBuf]) -> ListLookup {
    let mut lookup = ListLookup::default();
    for path in lists {
        match list_file_contains(path, folded) {
            Ok(true) => {
                lookup.found = true;
                break;
            }
            Ok(false) => {}
            Err(err) => lookup
                .problems
                .push(format!("{}: {}", path.display(), io_message(&err))),
        }
    }
    lookup
}

fn list_file_contains(path: &Path, folded: &[u8]) -> io::Result<bool> {
    let file = File::open(path)?;
    list_contains(BufReader::new(file), folded)
}

/// Whether the list read from `reader` has a line equal to `folded` (see
/// [`fold_case`]), ignoring case. Reads one line at a time.
pub fn list_contains<R: BufRead>(mut reader: R, folded: &[u8]) -> io::Result<bool> {
    let mut line: Vec<u8> = Vec::with_capacity(64);
    let mut overlong = false;
    loop {
        let chunk = match reader.fill_buf() {
            Ok(chunk) => chunk,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err),
        };
        if chunk.is_empty() {
            // The end of the file: the last line may have no line end.
            return Ok(!overlong && line_matches(&line, folded));
        }
        let (part, line_ends, used) = match chunk.iter().position(|&b| b == b'\n') {
            Some(end) => (&chunk[..end], true, end + 1),
            None => (chunk, false, chunk.len()),
        };
        if !overlong {
            if line.len() + part.len() > MAX_LINE_BYTES {
                overlong = true;
                line.clear();
            } else {
                line.extend_from_slice(part);
            }
        }
        reader.consume(used);
        if line_ends {
            if !overlong && line_matches(&line, folded) {
                return Ok(true);
            }
            line.clear();
            overlong = false;
        }
    }
}

fn line_matches(line: &[u8], folded: &[u8]) -> bool {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.is_empty() {
        return false;
    }
    if line.is_ascii() {
        // `folded` is already in lower case, so this is lower(line) == folded.
        line.eq_ignore_ascii_case(folded)
    } else {
        *fold_case(line) == *folded
    }
}

/// An I/O error as the C library words it ("No such file or directory"),
/// without Rust's "(os error 2)" suffix.
fn io_message(err: &io::Error) -> String {
    let text = err.to_string();
    match text.find(" (os error ") {
        Some(at) if err.raw_os_error().is_some() => text[..at].to_string(),
        _ => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contains(list: &[u8], password: &[u8]) -> bool {
        list_contains(list, &fold_case(password)).expect("reading from memory")
    }

    #[test]
    fn exact_lines_match_ignoring_case() {
        let list = b"123456\npassword\nletmein\n";
        assert!(contains(list, b"password"));
        assert!(contains(list, b"PassWord"));
        assert!(contains(list, b"123456"));
        assert!(!contains(list, b"password1"), "not a prefix match");
        assert!(!contains(list, b"passwor"), "not a substring match");
        assert!(!contains(list, b"23456"));
    }

    #[test]
    fn crlf_and_a_missing_last_line_end() {
        let list = b"alpha\r\nBravo-Site\r\ncharlie";
        assert!(contains(list, b"alpha"));
        assert!(contains(list, b"bravo-site"));
        assert!(contains(list, b"BRAVO-SITE"));
        assert!(contains(list, b"charlie"));
        assert!(!contains(list, b"alpha\r"), "CR belongs to the line end");
    }

    #[test]
    fn empty_lines_never_match() {
        let list = b"\n\r\n\nword\n";
        assert!(!contains(list, b""));
        assert!(contains(list, b"word"));
    }

    #[test]
    fn spaces_are_part_of_the_line() {
        let list = b"open sesame\n";
        assert!(contains(list, b"Open Sesame"));
        assert!(!contains(list, b"opensesame"));
        assert!(!contains(list, b" open sesame"));
    }

    #[test]
    fn unicode_lines_fold_by_unicode_rules() {
        let list = "пароль\nstraße\n".as_bytes();
        assert!(contains(list, "ПАРОЛЬ".as_bytes()));
        assert!(contains(list, "Straße".as_bytes()));
    }

    #[test]
    fn non_utf8_lines_compare_bytes_with_ascii_case_folded() {
        let list = b"caf\xe9-latin1\n";
        assert!(contains(list, b"CAF\xe9-Latin1"));
        assert!(
            !contains(list, b"caf\xc9-latin1"),
            "only ASCII letters fold"
        );
    }

    #[test]
    fn overlong_lines_are_skipped_and_the_next_line_still_matches() {
        let mut list = vec![b'x'; MAX_LINE_BYTES + 10];
        list.extend_from_slice(b"\nshort\n");
        assert!(contains(&list, b"short"));
        assert!(!contains(&list, &vec![b'x'; MAX_LINE_BYTES + 10]));
    }

    #[test]
    fn a_line_split_across_reads_still_matches() {
        // A BufReader with a tiny buffer hands the line over in pieces.
        let list: &[u8] = b"first\nsplit-across-reads\nlast\n";
        let reader = BufReader::with_capacity(4, list);
        assert!(list_contains(reader, &fold_case(b"split-across-reads")).unwrap());
    }

    #[test]
    fn unreadable_lists_are_reported_and_skipped() {
        let lookup = find_in_lists(
            b"anything",
            &[
                PathBuf::from("/nonexistent/deadbolt/list.txt"),
                PathBuf::from("/"),
            ],
        );
        assert!(!lookup.found);
        assert_eq!(
            lookup.problems,
            vec![
                "/nonexistent/deadbolt/list.txt: No such file or directory".to_string(),
                "/: Is a directory".to_string(),
            ]
        );
    }
}
