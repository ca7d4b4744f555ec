//! `[password]` and `[policy.password]`: the rules a new password must meet,
//! its history and ageing, how history entries are hashed, and where the
//! strength checker and its word lists are.

use deadbolt_core::password::{Ageing, HashParams, PasswordRules, MAX_PASSWORD_BYTES};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The longest `max_length` accepted: deadbolt refuses passwords longer than
/// [`MAX_PASSWORD_BYTES`] bytes before judging or hashing them.
pub const MAX_LENGTH: u32 = MAX_PASSWORD_BYTES as u32;

/// The most former passwords `remember` may keep, as with pam_pwhistory.
/// Each one costs an argon2id run when a password changes.
pub const MAX_REMEMBER: u32 = 400;

/// The most tries `retry` may allow for one password change.
pub const MAX_RETRY: u32 = 10;

/// The highest zxcvbn score, and so the highest `min_strength`.
pub const MAX_STRENGTH: u8 = 4;

/// The largest `hash_memory_kib` accepted: 1 GiB. argon2id allows more,
/// but a number this size is far more likely a typo than a choice, and
/// every password change on every host would have to find the memory.
pub use deadbolt_core::password::MAX_HASH_MEMORY_KIB;

/// The largest `hash_iterations` and `hash_parallelism` accepted, and the
/// most work (`hash_memory_kib` × `hash_iterations`): the history ignores
/// entries beyond them, so that a crafted one cannot hang a password change.
pub use deadbolt_core::password::{MAX_HASH_ITERATIONS, MAX_HASH_PARALLELISM, MAX_HASH_WORK};

/// The KiB of memory argon2 needs for each lane (`hash_parallelism`).
pub const HASH_MEMORY_KIB_PER_LANE: u32 = 8;

/// The most word lists `lists` may name.
pub const MAX_LISTS: usize = 64;

/// The longest path accepted for `checker` and `lists`, in bytes (PATH_MAX).
pub const MAX_PATH_BYTES: usize = 4096;

/// Where the strength checker is installed unless `checker` says otherwise.
pub const DEFAULT_CHECKER: &str = "/usr/libexec/deadbolt/deadbolt-pwcheck";

/// The common-password list shipped with deadbolt.
pub const DEFAULT_LIST: &str = "/usr/share/deadbolt/common-passwords.txt";

/// `[password]`: the rules for users no `[[policy]]` matches, and the global
/// password settings (hashing, the checker and its lists).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PasswordSettings {
    /// Length, character classes, repeats and how many former passwords may
    /// not be reused (`remember`; 0 keeps no history at all).
    pub rules: PasswordRules,
    /// The lowest zxcvbn score (0 to [`MAX_STRENGTH`]) a new password needs.
    pub min_strength: u8,
    /// The rules bind root too: a change by root that breaks them is refused,
    /// where pam_pwquality would only warn.
    pub enforce_for_root: bool,
    /// Tries for a new password in one change, 1 to [`MAX_RETRY`].
    pub retry: u32,
    pub ageing: Ageing,
    /// argon2id parameters for the history. Global only, so every host
    /// hashes alike.
    pub hash: HashParams,
    /// The helper that estimates strength and looks the password up in
    /// `lists`; an absolute path.
    pub checker: PathBuf,
    /// Common-password lists, absolute paths, read by `checker`.
    pub lists: Vec<PathBuf>,
}

impl Default for PasswordSettings {
    /// The values of `config/deadbolt.toml`: the rules of
    /// [`PasswordRules::default`], score 3, root bound, 3 tries, no expiry,
    /// and OWASP's minimum for argon2id (19 MiB, 2 iterations, 1 lane).
    fn default() -> Self {
        PasswordSettings {
            rules: PasswordRules::default(),
            min_strength: 3,
            enforce_for_root: true,
            retry: 3,
            ageing: Ageing::default(),
            hash: HashParams::default(),
            checker: PathBuf::from(DEFAULT_CHECKER),
            lists: vec![PathBuf::from(DEFAULT_LIST)],
        }
    }
}

impl PasswordSettings {
    /// Lays the overrides that are set over these settings.
    pub(crate) fn apply(&mut self, overrides: &PasswordOverrides) {
        let PasswordOverrides {
            min_length,
            max_length,
            min_upper,
            min_lower,
            min_digits,
            min_special,
            min_classes,
            max_repeat,
            min_strength,
            remember,
            enforce_for_root,
            retry,
            min_age,
            max_age,
            warn_age,
        } = *overrides;
        let rules = &mut self.rules;
        for (value, field) in [
            (min_length, &mut rules.min_length),
            (max_length, &mut rules.max_length),
            (min_upper, &mut rules.min_upper),
            (min_lower, &mut rules.min_lower),
            (min_digits, &mut rules.min_digits),
            (min_special, &mut rules.min_special),
            (min_classes, &mut rules.min_classes),
            (max_repeat, &mut rules.max_repeat),
            (remember, &mut rules.remember),
            (retry, &mut self.retry),
        ] {
            if let Some(value) = value {
                *field = value;
            }
        }
        if let Some(min_strength) = min_strength {
            self.min_strength = min_strength;
        }
        if let Some(enforce_for_root) = enforce_for_root {
            self.enforce_for_root = enforce_for_root;
        }
        if let Some(min_age) = min_age {
            self.ageing.min_age = min_age;
        }
        if let Some(max_age) = max_age {
            self.ageing.max_age = max_age;
        }
        if let Some(warn_age) = warn_age {
            self.ageing.warn_age = warn_age;
        }
    }
}

/// Password settings that replace those of `[password]` where set: a
/// `[policy.password]`, or the module arguments. The hashing parameters,
/// `checker` and `lists` are global and have no place here.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PasswordOverrides {
    pub min_length: Option<u32>,
    pub max_length: Option<u32>,
    pub min_upper: Option<u32>,
    pub min_lower: Option<u32>,
    pub min_digits: Option<u32>,
    pub min_special: Option<u32>,
    pub min_classes: Option<u32>,
    pub max_repeat: Option<u32>,
    pub min_strength: Option<u8>,
    pub remember: Option<u32>,
    pub enforce_for_root: Option<bool>,
    pub retry: Option<u32>,
    pub min_age: Option<Duration>,
    /// `Some(None)`: `"never"`, overriding a `max_age` of `[password]`.
    pub max_age: Option<Option<Duration>>,
    pub warn_age: Option<Duration>,
}

/// Everything the PAM module and the checker need to judge one user's new
/// password: the settings of the policy that applied, under its name. It
/// reads as those settings (`effective.rules`, `effective.checker`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EffectivePassword {
    /// [`DEFAULT_POLICY_NAME`](crate::DEFAULT_POLICY_NAME) or the name of the
    /// `[[policy]]` that applied.
    pub policy_name: String,
    pub settings: PasswordSettings,
}

impl std::ops::Deref for EffectivePassword {
    type Target = PasswordSettings;

    fn deref(&self) -> &PasswordSettings {
        &self.settings
    }
}

impl EffectivePassword {
    pub(crate) fn new(policy_name: String, mut settings: PasswordSettings) -> Self {
        // The file and the module arguments refuse a minimum above the
        // maximum; should the fields have been changed by hand since, the
        // minimum wins, so no password is accepted shorter than asked for.
        let rules = &mut settings.rules;
        rules.max_length = rules.max_length.max(rules.min_length);
        EffectivePassword {
            policy_name,
            settings,
        }
    }
}

/// An integer setting: its range and what it counts, for messages that say
/// what is accepted.
#[derive(Clone, Copy, Debug)]
pub(crate) struct IntegerKey {
    pub name: &'static str,
    pub min: u32,
    pub max: u32,
    /// What the number means, e.g. "characters".
    pub means: &'static str,
}

impl IntegerKey {
    /// "an integer from 1 to 512 (characters)".
    pub(crate) fn accepted(&self) -> String {
        format!(
            "an integer from {} to {} ({})",
            self.min, self.max, self.means
        )
    }

    /// `n` as a `u32` when in range; else what follows "min_length = 0 "
    /// in a message.
    pub(crate) fn check(&self, n: i64) -> Result<u32, String> {
        match u32::try_from(n) {
            Ok(n) if (self.min..=self.max).contains(&n) => Ok(n),
            _ => Err(format!("is out of range: write {}", self.accepted())),
        }
    }
}

pub(crate) const MIN_LENGTH: IntegerKey = IntegerKey {
    name: "min_length",
    min: 1,
    max: MAX_LENGTH,
    means: "characters",
};
pub(crate) const MAX_LENGTH_KEY: IntegerKey = IntegerKey {
    name: "max_length",
    min: 1,
    max: MAX_LENGTH,
    means: "characters; deadbolt refuses any password over 512 bytes",
};
pub(crate) const MIN_UPPER: IntegerKey = IntegerKey {
    name: "min_upper",
    min: 0,
    max: MAX_LENGTH,
    means: "upper-case letters",
};
pub(crate) const MIN_LOWER: IntegerKey = IntegerKey {
    name: "min_lower",
    min: 0,
    max: MAX_LENGTH,
    means: "lower-case letters",
};
pub(crate) const MIN_DIGITS: IntegerKey = IntegerKey {
    name: "min_digits",
    min: 0,
    max: MAX_LENGTH,
    means: "digits",
};
pub(crate) const MIN_SPECIAL: IntegerKey = IntegerKey {
    name: "min_special",
    min: 0,
    max: MAX_LENGTH,
    means: "characters that are not letters or digits",
};
pub(crate) const MIN_CLASSES: IntegerKey = IntegerKey {
    name: "min_classes",
    min: 0,
    max: 4,
    means: "of the 4 kinds of character: upper case, lower case, digits, others",
};
pub(crate) const MAX_REPEAT: IntegerKey = IntegerKey {
    name: "max_repeat",
    min: 0,
    max: MAX_LENGTH,
    means: "the same character in a row; 0 for no limit",
};
pub(crate) const MIN_STRENGTH: IntegerKey = IntegerKey {
    name: "min_strength",
    min: 0,
    max: MAX_STRENGTH as u32,
    means: "a zxcvbn score: 0 accepts any, 4 only the very hardest to guess",
};
pub(crate) const REMEMBER: IntegerKey = IntegerKey {
    name: "remember",
    min: 0,
    max: MAX_REMEMBER,
    means: "former passwords that may not be reused; 0 keeps no history",
};
pub(crate) const RETRY: IntegerKey = IntegerKey {
    name: "retry",
    min: 1,
    max: MAX_RETRY,
    means: "tries for a new password in one change",
};
pub(crate) const HASH_MEMORY_KIB: IntegerKey = IntegerKey {
    name: "hash_memory_kib",
    min: HASH_MEMORY_KIB_PER_LANE,
    max: MAX_HASH_MEMORY_KIB,
    means: "KiB; OWASP's minimum for argon2id is 19456",
};
pub(crate) const HASH_ITERATIONS: IntegerKey = IntegerKey {
    name: "hash_iterations",
    min: 1,
    max: MAX_HASH_ITERATIONS,
    means: "argon2id passes; OWASP's minimum is 2 with 19456 KiB",
};
pub(crate) const HASH_PARALLELISM: IntegerKey = IntegerKey {
    name: "hash_parallelism",
    min: 1,
    max: MAX_HASH_PARALLELISM,
    means: "argon2id lanes",
};

/// Every integer setting of the password tables.
pub(crate) const INTEGER_KEYS: &[IntegerKey] = &[
    MIN_LENGTH,
    MAX_LENGTH_KEY,
    MIN_UPPER,
    MIN_LOWER,
    MIN_DIGITS,
    MIN_SPECIAL,
    MIN_CLASSES,
    MAX_REPEAT,
    MIN_STRENGTH,
    REMEMBER,
    RETRY,
    HASH_MEMORY_KIB,
    HASH_ITERATIONS,
    HASH_PARALLELISM,
];

/// The fewest characters a password meeting `rules` can have: each class
/// minimum, plus one character for each further kind `min_classes` asks for.
pub(crate) fn shortest_possible(rules: &PasswordRules) -> u64 {
    let mins = [
        rules.min_upper,
        rules.min_lower,
        rules.min_digits,
        rules.min_special,
    ];
    let sum: u64 = mins.iter().map(|&n| u64::from(n)).sum();
    let kinds = mins.iter().filter(|&&n| n > 0).count() as u64;
    sum + u64::from(rules.min_classes).saturating_sub(kinds)
}

/// Which of the rules contradict each other.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Conflict {
    /// `min_length` is more than `max_length`.
    Lengths,
    /// The class minimums need more than `max_length` characters.
    Classes,
}

/// Why `rules` contradict themselves, if they do, and which check failed,
/// for the caller to point at a key that caused it.
pub(crate) fn rules_conflict(rules: &PasswordRules) -> Option<(Conflict, String)> {
    if rules.min_length > rules.max_length {
        return Some((
            Conflict::Lengths,
            format!(
                "min_length ({}) is more than max_length ({}): no password could be both; \
                 lower min_length or raise max_length",
                rules.min_length, rules.max_length
            ),
        ));
    }
    let shortest = shortest_possible(rules);
    if shortest > u64::from(rules.max_length) {
        return Some((
            Conflict::Classes,
            format!(
                "min_upper, min_lower, min_digits, min_special and min_classes together need \
                 at least {shortest} characters, more than max_length ({}): no password could \
                 meet them; lower them or raise max_length",
                rules.max_length
            ),
        ));
    }
    None
}

/// Why `ageing` contradicts itself, if it does.
pub(crate) fn ageing_conflict(ageing: &Ageing) -> Option<String> {
    let max_age = ageing.max_age?;
    (ageing.min_age >= max_age).then(|| {
        format!(
            "min_age ({}) is not shorter than max_age ({}): the password could not be changed \
             before it expires; shorten min_age or lengthen max_age",
            crate::format_duration(ageing.min_age),
            crate::format_duration(max_age)
        )
    })
}

/// Checks a path for `checker` or `lists`: absolute, a file rather than a
/// directory, no longer than PATH_MAX, and free of characters that would
/// garble a log line.
pub(crate) fn file_path(path: &str, example: &str) -> Result<(), String> {
    crate::args::absolute_path(path, example)?;
    if path.len() > MAX_PATH_BYTES {
        Err(format!(
            "path is longer than {MAX_PATH_BYTES} bytes: write an absolute path such as \"{example}\""
        ))
    } else if path.ends_with('/') || Path::new(path).file_name().is_none() {
        Err(format!(
            "path `{}` names a directory: write the path of a file, such as \"{example}\"",
            crate::duration::echo(path)
        ))
    } else {
        Ok(())
    }
}
