//! Properties of the password rules: they never panic, and every counting
//! rule agrees with a plain recount of the password.

use deadbolt_core::password::{ChangeContext, PasswordRules, RuleFailure, MAX_PASSWORD_BYTES};
use proptest::prelude::*;

fn rules() -> impl Strategy<Value = PasswordRules> {
    (
        1u32..20,
        0u32..40,
        0u32..4,
        0u32..4,
        0u32..4,
        0u32..4,
        0u32..=4,
        0u32..5,
    )
        .prop_map(
            |(min_length, extra, upper, lower, digits, special, classes, repeat)| PasswordRules {
                min_length,
                max_length: min_length + extra,
                min_upper: upper,
                min_lower: lower,
                min_digits: digits,
                min_special: special,
                min_classes: classes,
                max_repeat: repeat,
                remember: 0,
            },
        )
}

/// Passwords over a small alphabet with every class, so runs and class
/// boundaries are common.
fn password() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop::sample::select(vec!['a', 'b', 'Z', 'Y', '1', '2', '!', ' ', 'é', 'Ö']),
        1..40,
    )
    .prop_map(|chars| chars.into_iter().collect())
}

const CTX: ChangeContext<'static> = ChangeContext {
    user: "x",
    real_name: "",
    old_password: None,
};

proptest! {
    #[test]
    fn never_panics_on_any_bytes(
        bytes in proptest::collection::vec(any::<u8>(), 0..2048),
        old in proptest::collection::vec(any::<u8>(), 0..64),
        rules in rules(),
    ) {
        let ctx = ChangeContext { user: "alice", real_name: "Alice Liddell", old_password: Some(&old) };
        let failures = rules.check(&bytes, &ctx);
        if bytes.is_empty() {
            prop_assert_eq!(failures, vec![RuleFailure::Empty]);
        } else if bytes.len() > MAX_PASSWORD_BYTES {
            prop_assert_eq!(failures.len(), 1);
        }
    }

    #[test]
    fn counting_rules_match_a_plain_recount(rules in rules(), pw in password()) {
        let failures = rules.check(pw.as_bytes(), &CTX);
        let chars: Vec<char> = pw.chars().collect();
        let n = chars.len() as u32;
        let upper = chars.iter().filter(|c| c.is_uppercase()).count() as u32;
        let lower = chars.iter().filter(|c| c.is_lowercase()).count() as u32;
        let digits = chars.iter().filter(|c| c.is_ascii_digit()).count() as u32;
        let special = n - upper - lower - digits;
        let classes = [upper, lower, digits, special].iter().filter(|&&k| k > 0).count() as u32;
        let mut longest = 0;
        let mut run = 0;
        for (i, c) in chars.iter().enumerate() {
            run = if i > 0 && chars[i - 1] == *c { run + 1 } else { 1 };
            longest = longest.max(run);
        }
        let has = |f: &RuleFailure| failures.contains(f);
        prop_assert_eq!(has(&RuleFailure::TooShort { min: rules.min_length, actual: n }), n < rules.min_length);
        prop_assert_eq!(has(&RuleFailure::TooLong { max: rules.max_length }), n > rules.max_length);
        prop_assert_eq!(has(&RuleFailure::TooFewUpper(rules.min_upper)), upper < rules.min_upper);
        prop_assert_eq!(has(&RuleFailure::TooFewLower(rules.min_lower)), lower < rules.min_lower);
        prop_assert_eq!(has(&RuleFailure::TooFewDigits(rules.min_digits)), digits < rules.min_digits);
        prop_assert_eq!(has(&RuleFailure::TooFewSpecial(rules.min_special)), special < rules.min_special);
        prop_assert_eq!(
            has(&RuleFailure::TooFewClasses { min: rules.min_classes, actual: classes }),
            classes < rules.min_classes
        );
        prop_assert_eq!(
            has(&RuleFailure::Repeats(rules.max_repeat)),
            rules.max_repeat > 0 && longest > rules.max_repeat
        );
    }

    #[test]
    fn messages_never_quote_the_password(rules in rules(), pw in "[A-Za-z0-9]{6,30}") {
        for failure in rules.check(pw.as_bytes(), &CTX) {
            let text = failure.to_string();
            prop_assert!(text.starts_with("BAD PASSWORD: "));
            prop_assert!(!text.contains(&pw), "{}", text);
        }
    }
}
