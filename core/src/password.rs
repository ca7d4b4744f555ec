//! The password-change policy: quality rules, history and ageing.
//!
//! Strength estimation and word lists are not here: they cost every login
//! their load time, so they live in the `deadbolt-pwcheck` helper that only
//! the password phase runs. What is here is cheap and needs no data.

use crate::state::{PasswordRecord, UserState};
use crate::time::{days_from_civil, Timestamp};
use argon2::password_hash::phc::{Output, PasswordHash};
use argon2::password_hash::PasswordHasher;
use argon2::{Algorithm, Argon2, Block, Params, Version};
use std::fmt;
use std::time::Duration;
use zeroize::{Zeroize, Zeroizing};

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

/// Lower case with everything but letters removed: "Summer2024!" and
/// "summer2025" are both "summer". Zeroed when dropped, like every copy of a
/// password made here.
fn letters_only(text: &str) -> Zeroizing<String> {
    Zeroizing::new(
        text.chars()
            .filter(|c| c.is_alphabetic())
            .flat_map(char::to_lowercase)
            .collect(),
    )
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
        let text = Zeroizing::new(String::from_utf8_lossy(new).into_owned());
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
        let lowered = Zeroizing::new(text.to_lowercase());
        let user = ctx.user.to_lowercase();
        if user.chars().count() >= 3 && lowered.contains(&user) {
            failures.push(RuleFailure::ContainsUserName);
        }
        let name_part_used = ctx
            .real_name
            .split(|c: char| !c.is_alphanumeric())
            .filter(|part| part.chars().count() >= 3)
            .any(|part| lowered.contains(&part.to_lowercase()));
        if name_part_used {
            failures.push(RuleFailure::ContainsRealName);
        }
        if let Some(old) = ctx.old_password {
            if old == new {
                failures.push(RuleFailure::SameAsOld);
            } else if Self::similar(
                &Zeroizing::new(String::from_utf8_lossy(old).into_owned()),
                &text,
            ) {
                failures.push(RuleFailure::TooSimilarToOld);
            }
        }
        failures
    }

    /// Small variations: case, reversal, changed digits or symbols around
    /// the same letters, or a couple of characters edited.
    fn similar(old: &str, new: &str) -> bool {
        let old_lower = Zeroizing::new(old.to_lowercase());
        let new_lower = Zeroizing::new(new.to_lowercase());
        if old_lower == new_lower || old_lower.chars().rev().eq(new_lower.chars()) {
            return true;
        }
        let old_letters = letters_only(old);
        if old_letters.chars().count() >= 4 && old_letters == letters_only(new) {
            return true;
        }
        let a: Zeroizing<Vec<char>> = Zeroizing::new(old_lower.chars().collect());
        let b: Zeroizing<Vec<char>> = Zeroizing::new(new_lower.chars().collect());
        edit_distance(&a, &b) < 3
    }
}

/// argon2id parameters for the history.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HashParams {
    /// Memory in KiB.
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl Default for HashParams {
    /// OWASP's minimum for argon2id: 19 MiB, 2 iterations, 1 lane.
    fn default() -> Self {
        HashParams {
            memory_kib: Params::DEFAULT_M_COST,
            iterations: Params::DEFAULT_T_COST,
            parallelism: Params::DEFAULT_P_COST,
        }
    }
}

/// Why a password could not be hashed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HashError(String);

impl fmt::Display for HashError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "argon2id: {}", self.0)
    }
}

impl std::error::Error for HashError {}

impl HashParams {
    fn hasher(&self) -> Result<Argon2<'static>, HashError> {
        let params = Params::new(self.memory_kib, self.iterations, self.parallelism, None)
            .map_err(|e| HashError(e.to_string()))?;
        Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
    }

    /// An argon2id PHC string of `password` with a fresh random salt.
    pub fn hash(&self, password: &[u8]) -> Result<String, HashError> {
        if password.len() > MAX_PASSWORD_BYTES {
            return Err(HashError("the password is too long to hash".to_owned()));
        }
        self.hasher()?
            .hash_password(password)
            .map(|h| h.to_string())
            .map_err(|e| HashError(e.to_string()))
    }
}

/// The most memory a history entry may ask for, in KiB (1 GiB), and so the
/// most the configuration may set for new entries. An entry asking for more
/// is not computed: it matches nothing. Verification runs in the process that
/// changes the password (passwd, sshd...), on up to four threads at once,
/// each with its own memory: a larger bound would let one entry ask for more
/// than a host can spare.
pub const MAX_HASH_MEMORY_KIB: u32 = 1024 * 1024;

/// Whether `password` matches the PHC string. A malformed entry matches
/// nothing (and is reported by the caller's status, not here).
pub fn verify(password: &[u8], phc: &str) -> bool {
    verify_reusing(password, phc, &mut MemoryBlocks::default())
}

/// argon2's working memory, kept between verifications: allocating (and
/// faulting in) 19 MiB afresh costs a third of each run. Zeroed on drop.
/// It only grows with `try_reserve_exact`: memory the system refuses makes
/// the entry match nothing instead of aborting the host process.
#[derive(Default)]
struct MemoryBlocks(Vec<Block>);

impl Drop for MemoryBlocks {
    fn drop(&mut self) {
        self.0.iter_mut().for_each(Zeroize::zeroize);
    }
}

fn verify_reusing(password: &[u8], phc: &str, memory: &mut MemoryBlocks) -> bool {
    if password.len() > MAX_PASSWORD_BYTES {
        return false;
    }
    let Ok(hash) = PasswordHash::new(phc) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (&hash.salt, &hash.hash) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(hash.algorithm.as_str()) else {
        return false;
    };
    let version = match hash.version.map(Version::try_from).transpose() {
        Ok(version) => version.unwrap_or_default(),
        Err(_) => return false,
    };
    let Ok(params) = Params::try_from(&hash) else {
        return false;
    };
    if params.m_cost() > MAX_HASH_MEMORY_KIB {
        return false;
    }
    let blocks = params.block_count();
    if memory.0.len() < blocks {
        // `resize` would abort the whole process (passwd, sshd) if the
        // memory cannot be had; asking first lets the entry fail alone.
        if memory.0.try_reserve_exact(blocks - memory.0.len()).is_err() {
            return false;
        }
        memory.0.resize(blocks, Block::default());
    }
    let mut computed = Zeroizing::new(vec![0u8; expected.len()]);
    Argon2::new(algorithm, version, params)
        .hash_password_into_with_memory(
            password,
            salt.as_ref(),
            &mut computed,
            &mut memory.0[..blocks],
        )
        .is_ok()
        // Output's comparison is constant-time.
        && Output::new(&computed).is_ok_and(|computed| computed == *expected)
}

/// The password history kept in a user's state.
#[derive(Debug)]
pub struct PasswordHistory;

impl PasswordHistory {
    /// The newest `remember` entries, newest first.
    pub fn recent(state: &UserState, remember: u32) -> impl Iterator<Item = &PasswordRecord> {
        state.password_history.iter().rev().take(remember as usize)
    }

    /// Whether `password` is one of the last `remember` passwords. Each
    /// entry costs a full argon2 run (about 20 ms at OWASP's parameters), so
    /// the entries are shared among the machine's cores, four at most.
    pub fn reused(state: &UserState, password: &[u8], remember: u32) -> bool {
        let entries: Vec<&str> = Self::recent(state, remember)
            .map(|record| record.phc.as_str())
            .collect();
        let workers = std::thread::available_parallelism()
            .map_or(1, usize::from)
            .clamp(1, 4);
        let any_in = |chunk: &[&str]| {
            let mut memory = MemoryBlocks::default();
            chunk
                .iter()
                .any(|phc| verify_reusing(password, phc, &mut memory))
        };
        if workers == 1 || entries.len() < 2 {
            return any_in(&entries);
        }
        let per_worker = entries.len().div_ceil(workers);
        std::thread::scope(|scope| {
            let handles: Vec<_> = entries
                .chunks(per_worker)
                .map(|chunk| scope.spawn(move || any_in(chunk)))
                .collect();
            // A worker that died cannot vouch for its entries: count the
            // password as reused rather than let it through unchecked.
            let answers: Vec<bool> = handles
                .into_iter()
                .map(|h| h.join().unwrap_or(true))
                .collect();
            answers.contains(&true)
        })
    }

    /// Records a completed change: the hash joins the history, which is
    /// trimmed to `remember` entries (so lowering `remember` frees old
    /// passwords), and the change time is set.
    pub fn record_change(
        state: &mut UserState,
        phc: Option<String>,
        remember: u32,
        now: Timestamp,
    ) {
        if let Some(phc) = phc {
            state.password_history.insert(PasswordRecord {
                changed_at: now,
                phc,
            });
        }
        Self::trim(state, remember);
        state.last_password_change = Some(state.last_password_change.map_or(now, |t| t.max(now)));
    }

    /// Keeps only the newest `remember` entries.
    pub fn trim(state: &mut UserState, remember: u32) {
        while state.password_history.len() > remember as usize {
            state.password_history.pop_first();
        }
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
}

impl Default for Ageing {
    fn default() -> Self {
        Ageing {
            min_age: Duration::ZERO,
            max_age: None,
            warn_age: Duration::from_secs(7 * 86_400),
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
        let must_change = reset_by_admin || aged_out;
        let too_soon_to_change = !must_change
            && state
                .last_password_change
                .is_some_and(|changed| now < changed.saturating_add(self.min_age));
        AgeStatus {
            account_expired,
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
        assert!(HashParams::default().hash(&huge).is_err());
        assert!(!verify(
            &huge,
            "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaA"
        ));
        // Not UTF-8: judged, not refused for it.
        assert_eq!(rules.check(b"\xff\xfe\xfd-quite-long-one", &ctx()), vec![]);
        assert!(!verify(b"x", "not a phc string"));
        // An entry asking for 8 GiB, or just over 1 GiB, is not computed
        // (it would be allocated).
        assert_eq!(MAX_HASH_MEMORY_KIB, 1_048_576);
        for m in [8_388_608, 4_194_304, 1_048_577] {
            assert!(!verify(
                b"x",
                &format!(
                    "$argon2id$v=19$m={m},t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaA"
                )
            ));
        }
        let phc = cheap().hash(b"right").unwrap();
        assert!(verify(b"right", &phc));
        // Whatever field is damaged, the entry matches nothing.
        for damaged in [
            phc.replace("argon2id", "argon2x"),
            phc.replace("v=19", "v=99"),
            phc.replace("t=1", "t=0"),
            phc[..phc.len() - 4].to_owned(),
        ] {
            assert!(!verify(b"right", &damaged), "{damaged}");
        }
    }

    fn cheap() -> HashParams {
        HashParams {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
        }
    }

    #[test]
    fn history_refuses_reuse_and_trims_when_remember_drops() {
        let mut state = UserState::default();
        for (i, pw) in ["first-pass", "second-pass", "third-pass"]
            .iter()
            .enumerate()
        {
            let phc = cheap().hash(pw.as_bytes()).unwrap();
            assert!(phc.starts_with("$argon2id$v=19$m=64,t=1,p=1$"));
            assert!(!phc.contains(pw));
            PasswordHistory::record_change(&mut state, Some(phc), 3, Timestamp(i as i64 + 1));
        }
        assert!(PasswordHistory::reused(&state, b"first-pass", 3));
        assert!(!PasswordHistory::reused(&state, b"first-pass", 2));
        assert!(!PasswordHistory::reused(&state, b"never-used", 3));
        PasswordHistory::trim(&mut state, 1);
        assert_eq!(state.password_history.len(), 1);
        assert!(PasswordHistory::reused(&state, b"third-pass", 3));
        assert!(!PasswordHistory::reused(&state, b"second-pass", 3));
        PasswordHistory::record_change(&mut state, None, 0, Timestamp(10));
        assert!(state.password_history.is_empty());
        assert_eq!(state.last_password_change, Some(Timestamp(10)));
    }

    #[test]
    fn default_hash_uses_owasp_minimum() {
        let phc = HashParams::default().hash(b"pw").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(verify(b"pw", &phc));
    }

    #[test]
    fn ageing_reset_expiry_and_warnings() {
        let day: i64 = 86_400;
        let days = |n: i64| Duration::from_secs((n * day) as u64);
        let ageing = Ageing {
            min_age: days(1),
            max_age: Some(days(90)),
            warn_age: days(7),
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
