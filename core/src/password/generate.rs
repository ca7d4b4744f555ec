//! Random passwords that meet the rules: the temporary password of a reset
//! or of a welcome kit.
//!
//! Pure code: the random bytes come from the caller (the OS random source
//! in `deadboltctl`, a fixed sequence in tests), so what is generated can be
//! checked without trusting chance. A generated password is judged by
//! [`PasswordRules::check`], the same check a change through PAM meets; one
//! that fails (a run of repeats, the user name by chance) is thrown away and
//! another is drawn.

use super::{ChangeContext, PasswordRules, MAX_PASSWORD_BYTES};
use std::fmt;
use zeroize::Zeroizing;

/// The length generated when the rules ask for less: about 95 bits from the
/// alphabets below.
pub const GENERATED_LENGTH: u32 = 16;

/// Draws before giving up; a policy a random password meets at all is met
/// within a few.
const MAX_DRAWS: usize = 64;

// Letters and digits that are easy to tell apart when read from a mail or
// copied by hand: no I, O, l, 0 or 1. The special characters need no
// quoting in a shell, a URL or a mail body.
const UPPER: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ";
const LOWER: &[u8] = b"abcdefghijkmnopqrstuvwxyz";
const DIGITS: &[u8] = b"23456789";
const SPECIAL: &[u8] = b"-_.!@#%+=?";

/// Why no password could be generated.
#[derive(Debug, PartialEq, Eq)]
pub enum GenerateError {
    /// The rules cannot be met by any password of at most `max_length`
    /// characters: the minimums per kind of character add up to more.
    Impossible { needed: u32, max_length: u32 },
    /// The random source failed.
    Random(String),
    /// Every draw broke a rule (the message of the last one).
    Rejected(String),
}

impl fmt::Display for GenerateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GenerateError::Impossible { needed, max_length } => write!(
                f,
                "no password meets the policy: its minimums need {needed} characters, more than \
                 its max_length of {max_length}"
            ),
            GenerateError::Random(why) => write!(f, "the random source failed: {why}"),
            GenerateError::Rejected(why) => write!(
                f,
                "{MAX_DRAWS} generated passwords were all refused by the policy, the last with: \
                 {why}"
            ),
        }
    }
}

impl std::error::Error for GenerateError {}

/// A random password for the user of `ctx` that `rules` accept (history
/// aside: a random password of this length is new). `random` fills a buffer
/// with uniformly random bytes.
pub fn generate(
    rules: &PasswordRules,
    ctx: &ChangeContext,
    random: &mut dyn FnMut(&mut [u8]) -> Result<(), String>,
) -> Result<Zeroizing<String>, GenerateError> {
    let length = length_for(rules)?;
    let mut last = String::new();
    for _ in 0..MAX_DRAWS {
        let candidate = draw(rules, length, random)?;
        match rules.check(candidate.as_bytes(), ctx).first() {
            None => return Ok(candidate),
            Some(failure) => last = failure.to_string(),
        }
    }
    Err(GenerateError::Rejected(last))
}

/// The length to draw: [`GENERATED_LENGTH`] or more when the rules ask,
/// within `max_length`.
fn length_for(rules: &PasswordRules) -> Result<u32, GenerateError> {
    let max_length = rules.max_length.min(MAX_PASSWORD_BYTES as u32);
    // Each kind gets at least one character, so `min_classes` is met too.
    let needed = [
        rules.min_upper,
        rules.min_lower,
        rules.min_digits,
        rules.min_special,
    ]
    .iter()
    .map(|&n| n.max(1))
    .fold(0u32, u32::saturating_add);
    let wanted = GENERATED_LENGTH.max(rules.min_length).max(needed);
    if wanted <= max_length {
        return Ok(wanted);
    }
    // A short maximum still leaves room when fewer kinds are demanded.
    let demanded = [
        rules.min_upper,
        rules.min_lower,
        rules.min_digits,
        rules.min_special,
    ]
    .iter()
    .fold(0u32, |sum, &n| sum.saturating_add(n))
    .max(rules.min_length)
    .max(rules.min_classes);
    if demanded <= max_length && max_length > 0 {
        return Ok(max_length);
    }
    Err(GenerateError::Impossible {
        needed: demanded,
        max_length,
    })
}

/// One candidate of `length` characters: the minimum of each kind (at
/// least one of each while room is left), the rest from every kind, in a
/// random order.
fn draw(
    rules: &PasswordRules,
    length: u32,
    random: &mut dyn FnMut(&mut [u8]) -> Result<(), String>,
) -> Result<Zeroizing<String>, GenerateError> {
    let length = length as usize;
    let everything: Vec<u8> = [UPPER, LOWER, DIGITS, SPECIAL].concat();
    // Allocated once at its final size: no reallocation leaves a copy.
    let mut bytes = Zeroizing::new(Vec::with_capacity(length));
    for (alphabet, minimum) in [
        (UPPER, rules.min_upper),
        (LOWER, rules.min_lower),
        (DIGITS, rules.min_digits),
        (SPECIAL, rules.min_special),
    ] {
        for _ in 0..minimum.max(1) {
            if bytes.len() < length {
                bytes.push(alphabet[uniform(alphabet.len(), random)?]);
            }
        }
    }
    while bytes.len() < length {
        bytes.push(everything[uniform(everything.len(), random)?]);
    }
    // Fisher-Yates, so the required characters are not always in front.
    for i in (1..bytes.len()).rev() {
        let j = uniform(i + 1, random)?;
        bytes.swap(i, j);
    }
    let mut text = Zeroizing::new(String::with_capacity(length));
    text.extend(bytes.iter().map(|&b| char::from(b)));
    Ok(text)
}

/// A uniform index below `n` (at most 256), without modulo bias: bytes
/// that would favour the low indexes are drawn again.
fn uniform(
    n: usize,
    random: &mut dyn FnMut(&mut [u8]) -> Result<(), String>,
) -> Result<usize, GenerateError> {
    debug_assert!((1..=256).contains(&n));
    let limit = 256 - 256 % n;
    loop {
        let mut byte = [0u8; 1];
        random(&mut byte).map_err(GenerateError::Random)?;
        let value = usize::from(byte[0]);
        if value < limit {
            return Ok(value % n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic stand-in for the OS source: xorshift.
    fn seeded(mut state: u64) -> impl FnMut(&mut [u8]) -> Result<(), String> {
        move |buf: &mut [u8]| {
            for b in buf.iter_mut() {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                *b = (state >> 24) as u8;
            }
            Ok(())
        }
    }

    fn ctx<'a>(user: &'a str) -> ChangeContext<'a> {
        ChangeContext {
            user,
            real_name: "Alice Liddell",
            old_password: None,
        }
    }

    #[test]
    fn generated_passwords_meet_the_rules_they_were_made_for() {
        let strict = PasswordRules {
            min_length: 20,
            min_upper: 3,
            min_lower: 3,
            min_digits: 3,
            min_special: 3,
            min_classes: 4,
            max_repeat: 1,
            ..PasswordRules::default()
        };
        for rules in [PasswordRules::default(), strict] {
            for seed in 1..200u64 {
                let mut random = seeded(seed);
                let pw = generate(&rules, &ctx("alice"), &mut random).unwrap();
                assert!(rules.check(pw.as_bytes(), &ctx("alice")).is_empty());
                assert!(pw.chars().count() >= rules.min_length as usize);
                assert!(pw.chars().count() >= GENERATED_LENGTH as usize);
                assert!(pw.bytes().all(|b| b.is_ascii_graphic()));
            }
        }
    }

    #[test]
    fn different_random_bytes_give_different_passwords() {
        let rules = PasswordRules::default();
        let a = generate(&rules, &ctx("alice"), &mut seeded(7)).unwrap();
        let b = generate(&rules, &ctx("alice"), &mut seeded(8)).unwrap();
        assert_ne!(*a, *b);
        // The same bytes, the same password: nothing else is consulted.
        let again = generate(&rules, &ctx("alice"), &mut seeded(7)).unwrap();
        assert_eq!(*a, *again);
    }

    #[test]
    fn every_kind_appears_and_the_order_is_shuffled() {
        let rules = PasswordRules::default();
        let mut first_kinds = std::collections::HashSet::new();
        for seed in 1..100u64 {
            let pw = generate(&rules, &ctx("bob"), &mut seeded(seed)).unwrap();
            for alphabet in [UPPER, LOWER, DIGITS, SPECIAL] {
                assert!(pw.bytes().any(|b| alphabet.contains(&b)), "{}", pw.len());
            }
            let first = pw.as_bytes()[0];
            first_kinds.insert(
                [UPPER, LOWER, DIGITS, SPECIAL]
                    .iter()
                    .position(|a| a.contains(&first)),
            );
        }
        assert_eq!(first_kinds.len(), 4);
    }

    #[test]
    fn rules_no_password_can_meet_are_said_so() {
        let rules = PasswordRules {
            min_length: 8,
            max_length: 10,
            min_upper: 4,
            min_lower: 4,
            min_digits: 4,
            ..PasswordRules::default()
        };
        let err = generate(&rules, &ctx("alice"), &mut seeded(1)).unwrap_err();
        assert!(
            matches!(err, GenerateError::Impossible { max_length: 10, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("max_length of 10"), "{err}");
    }

    #[test]
    fn a_short_maximum_is_honoured() {
        let rules = PasswordRules {
            min_length: 8,
            max_length: 10,
            ..PasswordRules::default()
        };
        let pw = generate(&rules, &ctx("alice"), &mut seeded(3)).unwrap();
        assert_eq!(pw.len(), 10);
    }

    #[test]
    fn a_failing_random_source_is_an_error_not_a_weak_password() {
        let mut broken = |_: &mut [u8]| Err("EIO".to_owned());
        let err = generate(&PasswordRules::default(), &ctx("alice"), &mut broken).unwrap_err();
        assert_eq!(err, GenerateError::Random("EIO".into()));
    }

    #[test]
    fn a_constant_source_is_rejected_rather_than_looping_for_ever() {
        // Every byte 0: always the same character of each kind, so the
        // repeat rule refuses every draw.
        let mut zeros = |buf: &mut [u8]| {
            buf.fill(0);
            Ok(())
        };
        let rules = PasswordRules {
            max_repeat: 1,
            ..PasswordRules::default()
        };
        let err = generate(&rules, &ctx("alice"), &mut zeros).unwrap_err();
        assert!(matches!(err, GenerateError::Rejected(_)), "{err}");
    }

    #[test]
    fn uniform_indexes_cover_the_range_without_bias() {
        let mut random = seeded(42);
        let mut counts = [0u32; 10];
        for _ in 0..20_000 {
            counts[uniform(10, &mut random).unwrap()] += 1;
        }
        for c in counts {
            assert!((1_700..2_300).contains(&c), "{counts:?}");
        }
    }
}
