//! The password-change policy: quality rules, history and ageing.
//!
//! Strength estimation and word lists are not here: they cost every login
//! their load time, so they live in the `deadbolt-pwcheck` helper that only
//! the password phase runs. What is here is cheap and needs no data.

use crate::state::UserState;
use crate::time::{days_from_civil, Timestamp};
use std::fmt;
use std::time::Duration;
use zeroize::Zeroizing;

pub mod generate;
mod history;

pub use history::{
    verify, HashError, HashParams, HistoryCheck, HistoryVerdict, PasswordHistory, Unusable,
    HISTORY_TIME_LIMIT, MAX_HASH_ITERATIONS, MAX_HASH_MEMORY_KIB, MAX_HASH_PARALLELISM,
    MAX_HASH_WORK,
};

/// The longest password deadbolt hashes or judges, in bytes. Longer ones are
/// refused before any work is done: no 1 MiB argon2 run.
pub const MAX_PASSWORD_BYTES: usize = 512;

/// The rules a new password must meet. Serialized under the names of the
/// configuration keys, for `deadboltctl check-config --json`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct PasswordRules {
    /// Characters, not bytes.
    pub min_length: u32,
    pub max_length: u32,
    pub min_upper: u32,
    pub min_lower: u32,
    pub min_digits: u32,
    pub min_special: u32,
    /// Of upper case, lower case, digits and special characters (0 to 4).
    pub min_classes: u32,
    /// The most times one character may repeat in a row; 0: no limit.
    pub max_repeat: u32,
    /// How many former passwords may not be reused; 0: no history at all.
    pub remember: u32,
}

impl Default for PasswordRules {
    fn default() -> Self {
        PasswordRules {
            min_length: 12,
            max_length: 128,
            min_upper: 0,
            min_lower: 0,
            min_digits: 0,
            min_special: 0,
            min_classes: 0,
            max_repeat: 3,
            remember: 5,
        }
    }
}

/// Who is changing his password, for the rules that compare against him.
#[derive(Clone, Copy, Debug)]
pub struct ChangeContext<'a> {
    pub user: &'a str,
    /// The real name from GECOS; may be empty.
    pub real_name: &'a str,
    /// The current password when the application gave it (a user's own
    /// change); absent when root sets a password or after a reset.
    pub old_password: Option<&'a [u8]>,
}

/// One rule a new password broke. Its text says which and what to do; it
/// never quotes the password.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RuleFailure {
    TooShort { min: u32, actual: u32 },
    TooLong { max: u32 },
    TooFewUpper(u32),
    TooFewLower(u32),
    TooFewDigits(u32),
    TooFewSpecial(u32),
    TooFewClasses { min: u32, actual: u32 },
    Repeats(u32),
    ContainsUserName,
    ContainsRealName,
    SameAsOld,
    TooSimilarToOld,
    Reused(u32),
    Empty,
}

impl fmt::Display for RuleFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BAD PASSWORD: ")?;
        match self {
            RuleFailure::Empty => write!(f, "it is empty."),
            RuleFailure::TooShort { min, actual } => write!(
                f,
                "it is {actual} characters long; at least {min} are required."
            ),
            RuleFailure::TooLong { max } => {
                write!(f, "it is longer than the {max} characters allowed.")
            }
            RuleFailure::TooFewUpper(n) => {
                write!(f, "it needs at least {n} upper-case letter{}.", plural(*n))
            }
            RuleFailure::TooFewLower(n) => {
                write!(f, "it needs at least {n} lower-case letter{}.", plural(*n))
            }
            RuleFailure::TooFewDigits(n) => write!(f, "it needs at least {n} digit{}.", plural(*n)),
            RuleFailure::TooFewSpecial(n) => write!(
                f,
                "it needs at least {n} special character{} (not a letter or digit).",
                plural(*n)
            ),
            RuleFailure::TooFewClasses { min, actual } => write!(
                f,
                "it uses {actual} of the 4 kinds of character (upper case, lower case, \
                 digits, others); at least {min} are required."
            ),
            RuleFailure::Repeats(n) => write!(
                f,
                "it repeats a character more than {n} time{} in a row.",
                plural(*n)
            ),
            RuleFailure::ContainsUserName => write!(f, "it contains the user name."),
            RuleFailure::ContainsRealName => write!(f, "it contains part of the real name."),
            RuleFailure::SameAsOld => write!(f, "it is the same as the current password."),
            RuleFailure::TooSimilarToOld => {
                write!(f, "it is too similar to the current password.")
            }
            RuleFailure::Reused(n) => write!(
                f,
                "it was used before; the last {n} password{} cannot be reused.",
                plural(*n)
            ),
        }
    }
}

fn plural(n: u32) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

#[derive(Default)]
struct Counts {
    chars: u32,
    upper: u32,
    lower: u32,
    digits: u32,
    special: u32,
    longest_run: u32,
}

fn count(text: &str) -> Counts {
    let mut counts = Counts::default();
    let mut previous = None;
    let mut run = 0;
    for c in text.chars() {
        counts.chars += 1;
        if c.is_uppercase() {
            counts.upper += 1;
        } else if c.is_lowercase() {
            counts.lower += 1;
        } else if c.is_numeric() {
            counts.digits += 1;
        } else {
            counts.special += 1;
        }
        run = if previous == Some(c) { run + 1 } else { 1 };
        counts.longest_run = counts.longest_run.max(run);
        previous = Some(c);
    }
    counts
}

// Every copy of a password made here is zeroed when dropped, and is
// allocated once at its final size: a `String` or `Vec` that grows frees
// its former buffer as it is, password and all, where no `Zeroizing` can
// reach it.

/// The characters `chars()` yields, in a string allocated at its final size.
/// `chars` is called twice: once to measure, once to fill.
fn sized_string<I: Iterator<Item = char>>(chars: impl Fn() -> I) -> Zeroizing<String> {
    let len = chars().map(char::len_utf8).sum();
    let mut text = Zeroizing::new(String::with_capacity(len));
    text.extend(chars());
    text
}

/// `bytes` as text, each invalid sequence replaced by U+FFFD, as
/// `String::from_utf8_lossy` would (whose buffer grows at each
/// replacement).
fn lossy_text(bytes: &[u8]) -> Zeroizing<String> {
    let replaced = |chunk: &std::str::Utf8Chunk| {
        (!chunk.invalid().is_empty()).then_some(char::REPLACEMENT_CHARACTER)
    };
    sized_string(|| {
        bytes
            .utf8_chunks()
            .flat_map(move |chunk| chunk.valid().chars().chain(replaced(&chunk)))
    })
}

/// Lower case, character by character (`str::to_lowercase` grows its
/// buffer when a character's lower case is longer, as `İ`'s is). Used for
/// the names too, so that both sides of a comparison agree.
fn lowercase(text: &str) -> Zeroizing<String> {
    sized_string(|| text.chars().flat_map(char::to_lowercase))
}

/// The characters of `text`, for the edit distance.
fn chars_of(text: &str) -> Zeroizing<Vec<char>> {
    let mut chars = Zeroizing::new(Vec::with_capacity(text.chars().count()));
    chars.extend(text.chars());
    chars
}

/// Lower case with everything but letters removed: "Summer2024!" and
/// "summer2025" are both "summer".
fn letters_only(text: &str) -> Zeroizing<String> {
    sized_string(|| {
        text.chars()
            .filter(|c| c.is_alphabetic())
            .flat_map(char::to_lowercase)
    })
}

/// Levenshtein distance, bounded inputs only (passwords are capped).
fn edit_distance(a: &[char], b: &[char]) -> usize {
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

impl PasswordRules {
    /// Every rule `new` breaks, in a stable order; empty when it is
    /// acceptable by these rules. History is checked separately
    /// ([`PasswordHistory`]) because it costs an argon2 run per entry.
    pub fn check(&self, new: &[u8], ctx: &ChangeContext) -> Vec<RuleFailure> {
        let mut failures = Vec::new();
        if new.is_empty() {
            failures.push(RuleFailure::Empty);
            return failures;
        }
        if new.len() > MAX_PASSWORD_BYTES {
            failures.push(RuleFailure::TooLong {
                max: self.max_length.min(MAX_PASSWORD_BYTES as u32),
            });
            return failures;
        }
        // Bytes that are not UTF-8 still count, as special characters.
        let text = lossy_text(new);
        let counts = count(&text);
        if counts.chars < self.min_length {
            failures.push(RuleFailure::TooShort {
                min: self.min_length,
                actual: counts.chars,
            });
        }
        if counts.chars > self.max_length {
            failures.push(RuleFailure::TooLong {
                max: self.max_length,
            });
        }
        if counts.upper < self.min_upper {
            failures.push(RuleFailure::TooFewUpper(self.min_upper));
        }
        if counts.lower < self.min_lower {
            failures.push(RuleFailure::TooFewLower(self.min_lower));
        }
        if counts.digits < self.min_digits {
            failures.push(RuleFailure::TooFewDigits(self.min_digits));
        }
        if counts.special < self.min_special {
            failures.push(RuleFailure::TooFewSpecial(self.min_special));
        }
        let classes = [counts.upper, counts.lower, counts.digits, counts.special]
            .iter()
            .filter(|&&n| n > 0)
            .count() as u32;
        if classes < self.min_classes {
            failures.push(RuleFailure::TooFewClasses {
                min: self.min_classes,
                actual: classes,
            });
        }
        if self.max_repeat > 0 && counts.longest_run > self.max_repeat {
            failures.push(RuleFailure::Repeats(self.max_repeat));
        }
        let lowered = lowercase(&text);
        let user = lowercase(ctx.user);
        if user.chars().count() >= 3 && lowered.contains(user.as_str()) {
            failures.push(RuleFailure::ContainsUserName);
        }
        let name_part_used = ctx
            .real_name
            .split(|c: char| !c.is_alphanumeric())
            .filter(|part| part.chars().count() >= 3)
            .any(|part| lowered.contains(lowercase(part).as_str()));
        if name_part_used {
            failures.push(RuleFailure::ContainsRealName);
        }
        if let Some(old) = ctx.old_password {
            if old == new {
                failures.push(RuleFailure::SameAsOld);
            } else if Self::similar(&lossy_text(old), &text) {
                failures.push(RuleFailure::TooSimilarToOld);
            }
        }
        failures
    }

    /// Small variations: case, reversal, changed digits or symbols around
    /// the same letters, or a couple of characters edited.
    fn similar(old: &str, new: &str) -> bool {
        let old_lower = lowercase(old);
        let new_lower = lowercase(new);
        if old_lower == new_lower || old_lower.chars().rev().eq(new_lower.chars()) {
            return true;
        }
        let old_letters = letters_only(old);
        if old_letters.chars().count() >= 4 && old_letters == letters_only(new) {
            return true;
        }
        edit_distance(&chars_of(&old_lower), &chars_of(&new_lower)) < 3
    }
}

/// Password ageing and account expiry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ageing {
    /// No change before this much time since the last one, unless a change
    /// is required.
    pub min_age: Duration,
    /// A change is required this long after the last one; `None`: never.
    pub max_age: Option<Duration>,
    /// Warn this long before `max_age` is reached.
    pub warn_age: Duration,
    /// A password set by someone else (a reset, the welcome kit) works this
    /// long (by default 7 days, `[welcome] temporary_valid_for`); then the
    /// account is refused until it is set again. `None`: until it is
    /// changed.
    pub temporary_valid_for: Option<Duration>,
}

impl Default for Ageing {
    fn default() -> Self {
        Ageing {
            min_age: Duration::ZERO,
            max_age: None,
            warn_age: Duration::from_secs(7 * 86_400),
            temporary_valid_for: Some(Duration::from_secs(7 * 86_400)),
        }
    }
}

/// The password and account status at one instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AgeStatus {
    /// The account's departure date has come.
    pub account_expired: bool,
    /// The password must change now: an administrator reset it, or it is
    /// older than `max_age`.
    pub must_change: bool,
    /// Why it must change: the reset, rather than age.
    pub reset_by_admin: bool,
    /// When the password expires by age, if it does.
    pub password_expires_at: Option<Timestamp>,
    /// Set when within `warn_age` of expiring: the time left.
    pub expires_soon: Option<Duration>,
    /// A change now would break `min_age`.
    pub too_soon_to_change: bool,
    /// The password was set by someone else longer than
    /// `temporary_valid_for` ago and never changed: refused.
    pub temporary_expired: bool,
}

/// Midnight UTC at the start of `days` since the epoch.
pub fn day_start(days: i64) -> Timestamp {
    Timestamp::from_secs(days.saturating_mul(86_400))
}

/// Parses `YYYY-MM-DD` into days since 1970-01-01.
pub fn parse_date(text: &str) -> Result<i64, String> {
    let bad = || format!("'{text}' is not a date in the form YYYY-MM-DD");
    let mut parts = text.split('-');
    let (Some(y), Some(m), Some(d), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    if y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return Err(bad());
    }
    let y: i64 = y.parse().map_err(|_| bad())?;
    let m: u32 = m.parse().map_err(|_| bad())?;
    let d: u32 = d.parse().map_err(|_| bad())?;
    if !(1..=12).contains(&m) || d == 0 {
        return Err(bad());
    }
    let days = days_from_civil(y, m, d);
    // Reject 2026-02-30 and friends: the round trip must land on the same day.
    if crate::time::civil_from_days(days) != (y, m, d) {
        return Err(format!("{text} is not a day of the calendar"));
    }
    Ok(days)
}

/// `YYYY-MM-DD` of days since 1970-01-01.
pub fn format_date(days: i64) -> String {
    let (y, m, d) = crate::time::civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}")
}

impl Ageing {
    pub fn evaluate(&self, state: &UserState, now: Timestamp) -> AgeStatus {
        let account_expired = state
            .expires_on
            .as_ref()
            .and_then(|e| e.value)
            .is_some_and(|day| now >= day_start(day));
        // A reset counts until a change happened after it.
        let reset_by_admin = match (state.last_admin_reset, state.last_password_change) {
            (Some(reset), Some(changed)) => reset >= changed,
            (Some(_), None) => true,
            (None, _) => false,
        };
        let password_expires_at = match (self.max_age, state.last_password_change) {
            (Some(max), Some(changed)) => Some(changed.saturating_add(max)),
            _ => None,
        };
        let aged_out = password_expires_at.is_some_and(|at| now >= at);
        let expires_soon = password_expires_at
            .filter(|&at| now < at && now.until(at) <= self.warn_age)
            .map(|at| now.until(at));
        let temporary_expired_at = match (reset_by_admin, state.last_admin_reset) {
            (true, Some(reset)) => self.temporary_valid_for.map(|v| reset.saturating_add(v)),
            _ => None,
        };
        let temporary_expired = temporary_expired_at.is_some_and(|at| now >= at);
        let must_change = reset_by_admin || aged_out;
        let too_soon_to_change = !must_change
            && state
                .last_password_change
                .is_some_and(|changed| now < changed.saturating_add(self.min_age));
        AgeStatus {
            account_expired,
            temporary_expired,
            must_change,
            reset_by_admin,
            password_expires_at,
            expires_soon,
            too_soon_to_change,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::Stamped;

    fn ctx() -> ChangeContext<'static> {
        ChangeContext {
            user: "alice",
            real_name: "Alice Liddell,Room 1",
            old_password: None,
        }
    }

    fn strict() -> PasswordRules {
        PasswordRules {
            min_length: 10,
            max_length: 20,
            min_upper: 2,
            min_lower: 2,
            min_digits: 2,
            min_special: 1,
            min_classes: 4,
            max_repeat: 2,
            remember: 3,
        }
    }

    #[test]
    fn each_rule_at_its_boundary() {
        let rules = strict();
        assert_eq!(rules.check(b"ABcd12!xyz", &ctx()), vec![]);
        assert_eq!(
            rules.check(b"ABcd12!xy", &ctx()),
            vec![RuleFailure::TooShort { min: 10, actual: 9 }]
        );
        assert_eq!(rules.check(b"ABcd12!xyzabcdefghij", &ctx()), vec![]);
        assert_eq!(
            rules.check(b"ABcd12!xyzabcdefghijk", &ctx()),
            vec![RuleFailure::TooLong { max: 20 }]
        );
        assert_eq!(
            rules.check(b"Abcd12!xyz", &ctx()),
            vec![RuleFailure::TooFewUpper(2)]
        );
        assert_eq!(
            rules.check(b"ABCd12!XYZ", &ctx()),
            vec![RuleFailure::TooFewLower(2)]
        );
        assert_eq!(
            rules.check(b"ABcd1x!xyz", &ctx()),
            vec![RuleFailure::TooFewDigits(2)]
        );
        assert_eq!(
            rules.check(b"ABcd12wxyz", &ctx()),
            vec![
                RuleFailure::TooFewSpecial(1),
                RuleFailure::TooFewClasses { min: 4, actual: 3 }
            ]
        );
        assert_eq!(rules.check(b"ABcd12!xxz", &ctx()), vec![]);
        assert_eq!(
            rules.check(b"ABcd12!xxx", &ctx()),
            vec![RuleFailure::Repeats(2)]
        );
    }

    #[test]
    fn length_counts_characters_not_bytes() {
        let rules = PasswordRules {
            min_length: 4,
            ..PasswordRules::default()
        };
        assert!(rules
            .check("ééé".as_bytes(), &ctx())
            .contains(&RuleFailure::TooShort { min: 4, actual: 3 }));
        assert_eq!(rules.check("éèéè".as_bytes(), &ctx()), vec![]);
    }

    #[test]
    fn names_and_the_old_password_are_refused() {
        let rules = PasswordRules::default();
        assert!(rules
            .check(b"xxALICExx-long-enough", &ctx())
            .contains(&RuleFailure::ContainsUserName));
        assert!(rules
            .check(b"liddell-is-my-name", &ctx())
            .contains(&RuleFailure::ContainsRealName));
        let old = b"Tangerine-Harbour-42";
        let with_old = ChangeContext {
            old_password: Some(old),
            ..ctx()
        };
        assert_eq!(rules.check(old, &with_old), vec![RuleFailure::SameAsOld]);
        for variant in [
            &b"tangerine-harbour-42"[..],
            b"24-ruobrah-eniregnat",
            b"Tangerine-Harbour-43",
            b"Tangerine!Harbour!2025",
        ] {
            assert_eq!(
                rules.check(variant, &with_old),
                vec![RuleFailure::TooSimilarToOld],
                "{}",
                String::from_utf8_lossy(variant)
            );
        }
        assert_eq!(rules.check(b"Velvet-Compass-Orbit", &with_old), vec![]);
    }

    #[test]
    fn hostile_passwords() {
        let rules = PasswordRules::default();
        assert_eq!(rules.check(b"", &ctx()), vec![RuleFailure::Empty]);
        let huge = vec![b'a'; 1 << 20];
        assert_eq!(
            rules.check(&huge, &ctx()),
            vec![RuleFailure::TooLong { max: 128 }]
        );
        // Not UTF-8: judged, not refused for it.
        assert_eq!(rules.check(b"\xff\xfe\xfd-quite-long-one", &ctx()), vec![]);
    }

    proptest::proptest! {
        /// The copies agree with the standard library's and fill exactly
        /// what was allocated for them: nothing grew on the way.
        #[test]
        fn copies_are_allocated_at_their_final_size(bytes in proptest::collection::vec(
            proptest::prelude::any::<u8>(), 0..64)
        ) {
            let text = lossy_text(&bytes);
            proptest::prop_assert_eq!(text.as_str(), String::from_utf8_lossy(&bytes));
            proptest::prop_assert_eq!(text.capacity(), text.len());
            let lower = lowercase(&text);
            let expected: String = text.chars().flat_map(char::to_lowercase).collect();
            proptest::prop_assert_eq!(lower.as_str(), expected.as_str());
            proptest::prop_assert_eq!(lower.capacity(), lower.len());
            let letters = letters_only(&text);
            let expected: String = text
                .chars()
                .filter(|c| c.is_alphabetic())
                .flat_map(char::to_lowercase)
                .collect();
            proptest::prop_assert_eq!(letters.as_str(), expected.as_str());
            proptest::prop_assert_eq!(letters.capacity(), letters.len());
            let chars = chars_of(&text);
            proptest::prop_assert_eq!(chars.capacity(), chars.len());
        }
    }

    #[test]
    fn lower_case_longer_than_the_original() {
        // İ (2 bytes) becomes i + a combining dot (3 bytes).
        let lower = lowercase("xİİ");
        assert_eq!(lower.as_str(), "xi\u{307}i\u{307}");
        assert_eq!(lower.capacity(), 7);
    }

    #[test]
    fn ageing_reset_expiry_and_warnings() {
        let day: i64 = 86_400;
        let days = |n: i64| Duration::from_secs((n * day) as u64);
        let ageing = Ageing {
            min_age: days(1),
            max_age: Some(days(90)),
            warn_age: days(7),
            temporary_valid_for: Some(days(7)),
        };
        let mut state = UserState {
            last_password_change: Some(Timestamp::from_secs(0)),
            ..UserState::default()
        };
        let at = |secs: i64| ageing.evaluate(&state, Timestamp::from_secs(secs));
        assert!(at(day - 1).too_soon_to_change);
        assert!(!at(day).too_soon_to_change);
        assert_eq!(at(83 * day - 1).expires_soon, None);
        assert_eq!(at(83 * day).expires_soon, Some(days(7)));
        assert!(!at(90 * day - 1).must_change);
        assert!(at(90 * day).must_change);
        state.last_admin_reset = Some(Timestamp::from_secs(10));
        let status = ageing.evaluate(&state, Timestamp::from_secs(11));
        assert!(status.must_change && status.reset_by_admin && !status.too_soon_to_change);
        assert!(!status.temporary_expired);
        let expired = |secs: i64| {
            ageing
                .evaluate(&state, Timestamp::from_secs(secs))
                .temporary_expired
        };
        assert!(!expired(10 + 7 * day - 1));
        assert!(expired(10 + 7 * day));
        state.last_password_change = Some(Timestamp::from_secs(12));
        assert!(
            !ageing
                .evaluate(&state, Timestamp::from_secs(13))
                .must_change
        );
        state.expires_on = Some(Stamped {
            set_at: Timestamp(1),
            value: Some(parse_date("1970-01-03").unwrap()),
        });
        assert!(
            !ageing
                .evaluate(&state, Timestamp::from_secs(2 * day - 1))
                .account_expired
        );
        assert!(
            ageing
                .evaluate(&state, Timestamp::from_secs(2 * day))
                .account_expired
        );
    }

    #[test]
    fn dates() {
        assert_eq!(parse_date("1970-01-01"), Ok(0));
        assert_eq!(format_date(parse_date("2027-03-31").unwrap()), "2027-03-31");
        assert_eq!(
            parse_date("2024-02-29").map(format_date).as_deref(),
            Ok("2024-02-29")
        );
        for bad in [
            "2026-02-30",
            "2026-13-01",
            "26-01-01",
            "2026-1-1",
            "",
            "2026-01-01x",
            "a-b-c",
        ] {
            assert!(parse_date(bad).is_err(), "{bad}");
        }
    }
}
