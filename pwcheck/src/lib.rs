//! deadbolt's password-strength check: a list of common passwords and the
//! zxcvbn strength estimate.
//!
//! This is the library behind the `deadbolt-pwcheck` program, which the PAM
//! module runs in the password phase, the way pam_unix runs unix_chkpwd. It
//! is a separate program because of its size: zxcvbn embeds large word lists
//! (about 4 MB and 12,000 relocations), and linked into `pam_deadbolt.so`
//! their load time would be paid by every login, not only by the rare one
//! that changes a password.
//!
//! What [`check`] does, in order:
//! 1. refuses an empty password, and one longer than [`MAX_PASSWORD_BYTES`];
//! 2. looks the password up, case-insensitively, in each list given (see
//!    [`list`] for the format); a list that cannot be read is reported in
//!    [`CheckVerdict::list_problems`] and never blocks the change;
//! 3. estimates its strength with zxcvbn, which is also told the user's login
//!    name and the words of his real name, so a password made of them scores
//!    low; a score under the minimum refuses the password.
//!
//! Messages start with "BAD PASSWORD:", as pam_pwquality's do.
#![forbid(unsafe_code)]

pub mod list;
pub mod protocol;
mod secret;

pub use secret::SecretBytes;

use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::PathBuf;
use zxcvbn::feedback::{Feedback, Suggestion};

/// The longest password judged, in bytes; longer ones are refused at once.
pub const MAX_PASSWORD_BYTES: usize = 4096;

/// How much of the password the strength estimate sees, in bytes (cut at a
/// character boundary). zxcvbn's work grows fast with the length and it looks
/// at the first 100 characters only anyway.
pub const MAX_ESTIMATE_BYTES: usize = 256;

/// The highest zxcvbn score: "more than 10^10 guesses".
pub const MAX_STRENGTH: u8 = 4;

/// Where the distribution package installs the common-password list; what
/// the program reads when it is given no `--list`.
pub const DEFAULT_LIST_PATH: &str = "/usr/share/deadbolt/common-passwords.txt";

/// The reason given when the password is on a list.
pub const COMMON_PASSWORD_REASON: &str =
    "BAD PASSWORD: it is one of the most commonly used passwords.";

/// The reason given for an empty password.
pub const EMPTY_PASSWORD_REASON: &str = "BAD PASSWORD: it is empty.";

/// How much of the user name and of the real name is used as hints, in bytes.
const MAX_HINT_BYTES: usize = 256;
/// How many words of the real name are used as hints.
const MAX_HINT_WORDS: usize = 16;
/// Hints shorter than this (in characters) are not reported as "contained"
/// in the password: two letters are in too many passwords by chance.
const MIN_REPORTED_HINT_CHARS: usize = 3;

/// What to check: the new password and who it is for.
pub struct CheckRequest<'a> {
    /// The new password, raw bytes as typed. Not necessarily UTF-8.
    pub password: &'a [u8],
    /// The login name.
    pub user: &'a str,
    /// The user's real name (the GECOS field will do: it is split into words
    /// at anything that is not a letter or a digit). May be empty.
    pub real_name: &'a str,
    /// The least zxcvbn score accepted, 0 to 4; more than 4 counts as 4.
    pub min_strength: u8,
    /// Lists of common or forbidden passwords, looked at in order: usually
    /// the shipped one, then optionally a site's own.
    pub lists: &'a [PathBuf],
}

impl fmt::Debug for CheckRequest<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CheckRequest")
            .field("password", &"<redacted>")
            .field("user", &self.user)
            .field("real_name", &self.real_name)
            .field("min_strength", &self.min_strength)
            .field("lists", &self.lists)
            .finish()
    }
}

/// The answer: accepted or not, and why, in words a user can read.
#[derive(Serialize, Deserialize, Debug, PartialEq, Eq, Clone)]
pub struct CheckVerdict {
    /// True when there is no reason to refuse the password.
    pub accepted: bool,
    /// zxcvbn's score, 0 to 4 (0 when the password was refused before the
    /// estimate: empty or too long).
    pub score: u8,
    /// Why the password is refused, each a full sentence starting
    /// "BAD PASSWORD:"; empty when it is accepted.
    pub reasons: Vec<String>,
    /// Lists that could not be read, each as "PATH: reason". These are for
    /// the administrator's log; they never refuse a password.
    pub list_problems: Vec<String>,
}

impl CheckVerdict {
    fn refused(reason: String) -> Self {
        CheckVerdict {
            accepted: false,
            score: 0,
            reasons: vec![reason],
            list_problems: Vec::new(),
        }
    }
}

/// Judges a new password. Never panics, whatever the bytes.
///
/// A password that is not UTF-8 is estimated from its lossy conversion (each
/// invalid sequence becomes U+FFFD), since zxcvbn works on text; the list
/// look-up compares its bytes.
pub fn check(req: &CheckRequest) -> CheckVerdict {
    let min_strength = req.min_strength.min(MAX_STRENGTH);
    if req.password.is_empty() {
        return CheckVerdict::refused(EMPTY_PASSWORD_REASON.to_string());
    }
    if req.password.len() > MAX_PASSWORD_BYTES {
        return CheckVerdict::refused(too_long_reason());
    }

    let mut reasons = Vec::new();
    let folded = list::fold_case(req.password);
    let lookup = list::find_in_lists(&folded, req.lists);
    if lookup.found {
        reasons.push(COMMON_PASSWORD_REASON.to_string());
    }

    let hints = Hints::new(req.user, req.real_name);
    let estimate = estimate(req.password, &hints.words());
    if estimate.score < min_strength {
        reasons.push(strength_reason(
            estimate.score,
            min_strength,
            estimate.feedback.as_ref(),
            hints.found_in(&folded),
        ));
    }

    CheckVerdict {
        accepted: reasons.is_empty(),
        score: estimate.score,
        reasons,
        list_problems: lookup.problems,
    }
}

/// The reason given for a password longer than [`MAX_PASSWORD_BYTES`].
pub fn too_long_reason() -> String {
    format!("BAD PASSWORD: the password is longer than {MAX_PASSWORD_BYTES} bytes.")
}

struct Estimate {
    score: u8,
    feedback: Option<Feedback>,
}

fn estimate(password: &[u8], hints: &[&str]) -> Estimate {
    let text = SecretBytes::from(String::from_utf8_lossy(utf8_prefix(password)).into_owned());
    // `text` came from a `String`: valid UTF-8 by construction.
    let Ok(text) = std::str::from_utf8(&text) else {
        return Estimate {
            score: 0,
            feedback: None,
        };
    };
    // zxcvbn 3.1 overflows `u64::pow` on a keyboard walk with some thirty
    // turns (found by fuzzing: fuzz/corpus/checker/keyboard-walk). Release
    // builds wrap, after terms already past score 4; builds with overflow
    // checks panic. A password it cannot estimate is refused as weak.
    let Ok(entropy) = std::panic::catch_unwind(|| zxcvbn::zxcvbn(text, hints)) else {
        return Estimate {
            score: 0,
            feedback: None,
        };
    };
    Estimate {
        score: u8::from(entropy.score()).min(MAX_STRENGTH),
        feedback: entropy.feedback().cloned(),
    }
}

/// The first [`MAX_ESTIMATE_BYTES`] bytes of the password, without a UTF-8
/// character cut in two at the end (which would add a spurious U+FFFD).
fn utf8_prefix(password: &[u8]) -> &[u8] {
    let prefix = &password[..password.len().min(MAX_ESTIMATE_BYTES)];
    match std::str::from_utf8(prefix) {
        Err(err) if err.error_len().is_none() && prefix.len() < password.len() => {
            &prefix[..err.valid_up_to()]
        }
        _ => prefix,
    }
}

/// Words that say who the user is, lower case: passwords built from them
/// are easy to guess for anyone who knows him.
struct Hints {
    user: Vec<String>,
    real_name: Vec<String>,
}

impl Hints {
    fn new(user: &str, real_name: &str) -> Self {
        let user = truncate_str(user, MAX_HINT_BYTES).to_lowercase();
        let mut user_words = vec![user.clone()];
        user_words.extend(words(&user).map(str::to_string));

        let real_name = truncate_str(real_name, MAX_HINT_BYTES).to_lowercase();
        let mut name_words: Vec<String> = words(&real_name)
            .take(MAX_HINT_WORDS)
            .map(str::to_string)
            .collect();
        if name_words.len() > 1 {
            // "Alice B. Smith" also as "aliceb", "bsmith" and "alicebsmith".
            let pairs: Vec<String> = name_words.windows(2).map(|w| w.concat()).collect();
            let whole = name_words.concat();
            name_words.extend(pairs);
            name_words.push(whole);
        }

        for list in [&mut user_words, &mut name_words] {
            list.retain(|w| !w.is_empty());
            list.sort();
            list.dedup();
        }
        Hints {
            user: user_words,
            real_name: name_words,
        }
    }

    fn words(&self) -> Vec<&str> {
        self.user
            .iter()
            .chain(&self.real_name)
            .map(String::as_str)
            .collect()
    }

    /// A sentence saying which hint the (case-folded) password contains.
    fn found_in(&self, folded: &[u8]) -> Option<&'static str> {
        let contains = |hints: &[String]| {
            hints.iter().any(|h| {
                h.chars().count() >= MIN_REPORTED_HINT_CHARS
                    && folded.windows(h.len()).any(|w| w == h.as_bytes())
            })
        };
        if contains(&self.user) {
            Some("It contains your user name.")
        } else if contains(&self.real_name) {
            Some("It contains your name.")
        } else {
            None
        }
    }
}

/// The words of a name: runs of letters and digits, two characters or more.
fn words(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.chars().count() >= 2)
}

fn truncate_str(text: &str, max_bytes: usize) -> &str {
    if text.len() <= max_bytes {
        return text;
    }
    let mut end = max_bytes;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

fn strength_reason(
    score: u8,
    min_strength: u8,
    feedback: Option<&Feedback>,
    personal: Option<&str>,
) -> String {
    let mut reason = format!(
        "BAD PASSWORD: it is too easy to guess (strength {score} of {MAX_STRENGTH}, \
         at least {min_strength} required)."
    );
    let mut sentences: Vec<String> = Vec::new();
    if let Some(warning) = feedback.and_then(Feedback::warning) {
        sentences.push(warning.to_string());
    }
    if let Some(personal) = personal {
        sentences.push(personal.to_string());
    }
    let suggestions = feedback.map(Feedback::suggestions).unwrap_or_default();
    if suggestions.is_empty() {
        sentences.push(suggestion_sentence(Suggestion::AddAnotherWordOrTwo));
    }
    sentences.extend(suggestions.iter().map(|s| suggestion_sentence(*s)));
    for sentence in sentences {
        reason.push(' ');
        reason.push_str(&sentence);
    }
    reason
}

/// zxcvbn's suggestions are sentences already; the one that is two is made one.
fn suggestion_sentence(suggestion: Suggestion) -> String {
    match suggestion {
        Suggestion::AddAnotherWordOrTwo => {
            "Add another word or two; uncommon words are better.".to_string()
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    const SHIPPED_LIST: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/data/common-passwords.txt");
    /// Random words, no pattern: zxcvbn gives it 4.
    const STRONG: &str = "quartz-Nimbus-falcon-Tepid-41";

    fn shipped() -> Vec<PathBuf> {
        vec![PathBuf::from(SHIPPED_LIST)]
    }

    fn run(password: &[u8], min_strength: u8, lists: &[PathBuf]) -> CheckVerdict {
        check(&CheckRequest {
            password,
            user: "jdoe",
            real_name: "Jane Doe",
            min_strength,
            lists,
        })
    }

    /// A file in the system's temporary directory, removed on drop.
    struct TempList(PathBuf);

    impl TempList {
        fn new(name: &str, contents: &[u8]) -> Self {
            let path = std::env::temp_dir().join(format!(
                "deadbolt-pwcheck-{}-{name}.txt",
                std::process::id()
            ));
            std::fs::write(&path, contents).expect("writing a temporary list");
            TempList(path)
        }
    }

    impl Drop for TempList {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    #[test]
    fn the_shipped_list_is_well_formed() {
        let text = std::fs::read_to_string(SHIPPED_LIST).expect("the vendored list");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 19_640, "the count in data/README.md");
        assert!(text.ends_with('\n'));
        assert!(!text.contains('\r'));
        for line in &lines {
            assert!(!line.is_empty());
            assert_eq!(*line, line.to_lowercase(), "not lower case: {line:?}");
        }
        for common in ["password", "password1", "qwerty123", "letmein", "123456"] {
            assert!(lines.contains(&common), "{common} is in the list");
        }
    }

    #[test]
    fn a_common_password_is_refused_whatever_its_case() {
        for password in ["password1", "PassWord1", "PASSWORD1", "LetMeIn"] {
            // Strength 0 required: only the list can refuse it.
            let verdict = run(password.as_bytes(), 0, &shipped());
            assert!(!verdict.accepted, "{password}");
            assert_eq!(verdict.reasons, vec![COMMON_PASSWORD_REASON.to_string()]);
            assert!(verdict.list_problems.is_empty());
        }
    }

    #[test]
    fn a_common_password_is_refused_for_both_reasons_at_strength_3() {
        let verdict = run(b"PassWord1", 3, &shipped());
        assert!(!verdict.accepted);
        assert_eq!(verdict.reasons.len(), 2, "{:?}", verdict.reasons);
        assert_eq!(verdict.reasons[0], COMMON_PASSWORD_REASON);
        assert!(verdict.reasons[1].starts_with("BAD PASSWORD: it is too easy to guess (strength"));
        assert!(verdict.score < 3);
    }

    #[test]
    fn only_exact_entries_match() {
        // "password" is on the list, this is not.
        let verdict = run(b"password-not-on-any-list-xq", 0, &shipped());
        assert!(verdict.accepted, "{verdict:?}");
    }

    #[test]
    fn a_strong_passphrase_is_accepted_at_strength_3() {
        let verdict = run(STRONG.as_bytes(), 3, &shipped());
        assert_eq!(
            verdict,
            CheckVerdict {
                accepted: true,
                score: 4,
                reasons: vec![],
                list_problems: vec![],
            }
        );
    }

    #[test]
    fn the_user_name_as_password_scores_low() {
        let lists = shipped();
        let request = |user: &'static str| CheckRequest {
            password: b"kowalczyk-ops",
            user,
            real_name: "",
            min_strength: 3,
            lists: &lists,
        };
        let as_user = check(&request("kowalczyk-ops"));
        let as_other = check(&request("someone"));
        assert!(as_user.score <= 1, "{as_user:?}");
        assert!(
            as_user.score < as_other.score,
            "{as_user:?} vs {as_other:?}"
        );
        assert!(!as_user.accepted);
        assert!(
            as_user.reasons[0].contains("It contains your user name."),
            "{:?}",
            as_user.reasons
        );
    }

    #[test]
    fn the_real_name_as_password_scores_low() {
        let lists = shipped();
        let request = |real_name: &'static str| CheckRequest {
            password: b"WojciechowskaPrzybylska",
            user: "aw",
            real_name,
            min_strength: 3,
            lists: &lists,
        };
        let named = check(&request("Agnieszka Wojciechowska-Przybylska,Room 12,,"));
        let other = check(&request("Someone Else"));
        assert!(named.score < 3, "{named:?}");
        assert!(named.score < other.score, "{named:?} vs {other:?}");
        assert!(named.reasons[0].contains("It contains your name."));
    }

    #[test]
    fn reasons_are_sentences_with_zxcvbn_advice() {
        let verdict = run(b"qwertyuiop", 3, &[]);
        assert!(!verdict.accepted);
        let reason = &verdict.reasons[0];
        assert!(
            reason.starts_with(&format!(
                "BAD PASSWORD: it is too easy to guess (strength {} of 4, at least 3 required). ",
                verdict.score
            )),
            "{reason}"
        );
        assert!(reason.contains("Add another word or two; uncommon words are better."));
        assert!(reason.ends_with('.'), "{reason}");
    }

    #[test]
    fn a_missing_list_is_reported_and_does_not_refuse_a_strong_password() {
        let lists = vec![PathBuf::from("/nonexistent/deadbolt/common-passwords.txt")];
        let verdict = run(STRONG.as_bytes(), 3, &lists);
        assert!(verdict.accepted);
        assert!(verdict.reasons.is_empty());
        assert_eq!(
            verdict.list_problems,
            vec!["/nonexistent/deadbolt/common-passwords.txt: No such file or directory"]
        );
    }

    #[test]
    fn a_missing_list_does_not_hide_a_weak_password() {
        let lists = vec![PathBuf::from("/nonexistent/list")];
        let verdict = run(b"password", 3, &lists);
        assert!(!verdict.accepted);
        assert_eq!(verdict.list_problems.len(), 1);
    }

    #[test]
    fn a_crlf_site_list_after_the_shipped_one() {
        let site = TempList::new(
            "crlf",
            b"Acme-Widgets-Portland-1987\r\nzebra-Lamp-Voyage-22\r\n",
        );
        let lists = vec![PathBuf::from(SHIPPED_LIST), site.0.clone()];
        for banned in ["acme-widgets-portland-1987", "ZEBRA-LAMP-VOYAGE-22"] {
            let verdict = run(banned.as_bytes(), 0, &lists);
            assert!(!verdict.accepted, "{banned}");
            assert_eq!(verdict.reasons, vec![COMMON_PASSWORD_REASON.to_string()]);
        }
        assert!(run(STRONG.as_bytes(), 3, &lists).accepted);
    }

    #[test]
    fn non_utf8_passwords_are_judged_without_panicking() {
        let mut password = b"\xff\xfe\x80".to_vec();
        password.extend_from_slice(STRONG.as_bytes());
        password.push(0xc3); // a cut-off two-byte sequence
        let verdict = run(&password, 3, &shipped());
        assert!(verdict.accepted, "{verdict:?}");

        let weak = run(b"\xff\xff\xff", 3, &shipped());
        assert!(!weak.accepted);

        let site = TempList::new("latin1", b"caf\xe9-cr\xe8me\n");
        let verdict = run(b"CAF\xe9-CR\xe8ME", 0, std::slice::from_ref(&site.0));
        assert_eq!(verdict.reasons, vec![COMMON_PASSWORD_REASON.to_string()]);
    }

    #[test]
    fn the_empty_password_is_refused() {
        let verdict = run(b"", 0, &shipped());
        assert_eq!(
            verdict,
            CheckVerdict {
                accepted: false,
                score: 0,
                reasons: vec![EMPTY_PASSWORD_REASON.to_string()],
                list_problems: vec![],
            }
        );
    }

    #[test]
    fn too_long_passwords_are_refused_before_any_work() {
        let long = vec![b'a'; MAX_PASSWORD_BYTES + 1];
        let verdict = run(&long, 0, &[PathBuf::from("/nonexistent/list")]);
        assert!(!verdict.accepted);
        assert_eq!(
            verdict.reasons,
            vec!["BAD PASSWORD: the password is longer than 4096 bytes.".to_string()]
        );
        assert!(verdict.list_problems.is_empty(), "no list was read");
    }

    #[test]
    fn long_passwords_up_to_the_limit_are_estimated_on_a_prefix() {
        let mut long = STRONG.repeat(200).into_bytes();
        long.truncate(MAX_PASSWORD_BYTES);
        let started = std::time::Instant::now();
        let verdict = run(&long, 3, &shipped());
        assert!(verdict.accepted, "{verdict:?}");
        assert!(started.elapsed() < std::time::Duration::from_secs(5));

        // 4 KiB of multi-byte characters: the 256-byte cut falls inside one.
        let accents = "é".repeat(MAX_PASSWORD_BYTES / 2);
        assert_eq!(utf8_prefix(accents.as_bytes()).len(), 256);
        let euros = "€".repeat(1000);
        let prefix = utf8_prefix(euros.as_bytes());
        assert_eq!(prefix.len(), 255);
        assert!(std::str::from_utf8(prefix).is_ok());
    }

    #[test]
    fn strengths_above_4_count_as_4() {
        let verdict = run(STRONG.as_bytes(), 200, &[]);
        assert!(verdict.accepted, "{verdict:?}");
    }

    #[test]
    fn debug_of_a_request_hides_the_password() {
        let request = CheckRequest {
            password: b"s3cr3t-horse",
            user: "jdoe",
            real_name: "",
            min_strength: 3,
            lists: &[],
        };
        let shown = format!("{request:?}");
        assert!(!shown.contains("s3cr3t"), "{shown}");
        assert!(shown.contains("jdoe"));
    }

    #[test]
    fn the_verdict_is_json_with_the_documented_fields() {
        let verdict = run(b"password", 3, &[Path::new("/nonexistent/x").to_path_buf()]);
        let json = serde_json::to_value(&verdict).unwrap();
        let mut keys: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        assert_eq!(keys, ["accepted", "list_problems", "reasons", "score"]);
        let back: CheckVerdict = serde_json::from_value(json).unwrap();
        assert_eq!(back, verdict);
    }

    /// Found by fuzzing: zxcvbn's estimate of this keyboard walk overflows.
    #[test]
    fn a_long_keyboard_walk_gets_a_verdict() {
        let verdict = check(&CheckRequest {
            password: b"alice#23e#23e#23e#23e#23e#23e#23e#23e#234",
            user: "alice",
            real_name: "Alice Liddell",
            min_strength: 2,
            lists: &[],
        });
        assert_eq!(verdict.accepted, verdict.reasons.is_empty(), "{verdict:?}");
        assert!(verdict.score <= MAX_STRENGTH, "{verdict:?}");
    }

    mod never_panics {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            // zxcvbn is slow without optimisation: 64 cases unless
            // PROPTEST_CASES asks for more.
            #![proptest_config(ProptestConfig::with_cases(
                std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(64),
            ))]

            #[test]
            fn on_any_bytes(
                password in proptest::collection::vec(any::<u8>(), 0..=1024),
                user in ".{0,40}",
                real_name in ".{0,80}",
                min_strength in 0u8..=6,
            ) {
                let lists = shipped();
                let verdict = check(&CheckRequest {
                    password: &password,
                    user: &user,
                    real_name: &real_name,
                    min_strength,
                    lists: &lists,
                });
                prop_assert!(verdict.score <= MAX_STRENGTH);
                prop_assert_eq!(verdict.accepted, verdict.reasons.is_empty());
                prop_assert!(verdict.list_problems.is_empty());
                if password.is_empty() {
                    prop_assert!(!verdict.accepted);
                }
            }
        }
    }
}
