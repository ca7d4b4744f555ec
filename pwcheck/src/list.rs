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
//!
//! A list is read only if root alone can have written it and every
//! directory above it (`deadbolt_config::check_trusted`); otherwise it is
//! reported in [`ListLookup::problems`] and skipped, as an unreadable list
//! is. The path must be absolute.

use crate::SecretBytes;
use deadbolt_config::check_trusted;
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
            Err(problem) => lookup
                .problems
                .push(format!("{}: {problem}", path.display())),
        }
    }
    lookup
}

/// Whether the list at `path` has `folded`; the reason, when it cannot be
/// read or must not be.
fn list_file_contains(path: &Path, folded: &[u8]) -> Result<bool, String> {
    let readable = match check_trusted(path) {
        // The path reached without links: what was checked is what is read.
        Ok(resolved) => resolved,
        // Opened anyway, for the C library's words on why it is missing.
        Err(why) if why.is_missing() => path.to_owned(),
        Err(why) => {
            return Err(format!(
                "not read: someone other than root could have written it: {why}"
            ))
        }
    };
    File::open(&readable)
        .and_then(|file| list_contains(BufReader::new(file), folded))
        .map_err(|err| io_message(&err))
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
    fn a_list_others_could_write_is_reported_and_skipped() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("site.txt");
        std::fs::write(&path, "banned-word\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let lists = [path.clone()];
        let trusted = find_in_lists(b"banned-word", &lists);
        if !trusted.problems.is_empty() {
            // Not root, or a temporary directory root does not own.
            eprintln!("skipped: {:?}", trusted.problems);
            return;
        }
        assert!(trusted.found);

        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
        let lookup = find_in_lists(b"banned-word", &lists);
        assert!(!lookup.found, "the list was read");
        assert_eq!(
            lookup.problems,
            [format!(
                "{0}: not read: someone other than root could have written it: {0}: writable \
                 by group and others (mode 0666)",
                path.display()
            )]
        );
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
