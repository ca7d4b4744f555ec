//! Hostile user names (design principle 7): whatever arrives at the login
//! prompt, a name that is accepted is one safe path component.

use deadbolt_core::username::MAX_USER_NAME_LEN;
use deadbolt_core::{UserName, UserNameError};
use proptest::prelude::*;
use std::path::{Component, Path};

/// The longest path component Linux accepts, in bytes.
const NAME_MAX: usize = 255;

fn control_char() -> impl Strategy<Value = char> {
    prop_oneof![
        (0u32..0x20).prop_map(|c| char::from_u32(c).unwrap()),
        (0x7fu32..0xa0).prop_map(|c| char::from_u32(c).unwrap()),
    ]
}

/// Text that looks like user names most of the time, with anything at all
/// mixed in.
fn name_like() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z][a-z0-9._@-]{0,20}",
        "[.\\-/a-zé\\x00-\\x1f\\x7f ]{0,12}",
        ".{0,40}",
        "[a-z]{195,205}",
        "é{95,105}",
        "[a-z]{250,262}",
    ]
}

fn assert_safe(name: &UserName, text: &str) -> Result<(), TestCaseError> {
    let s = name.as_str();
    prop_assert_eq!(s, text);
    prop_assert!(!s.is_empty());
    prop_assert!(s.len() <= MAX_USER_NAME_LEN);
    prop_assert!(!s.contains('/'));
    prop_assert!(!s.contains('\0'));
    prop_assert!(!s.chars().any(char::is_control));
    prop_assert!(!s.chars().any(char::is_whitespace));
    prop_assert!(!s.starts_with('.'));
    prop_assert!(!s.starts_with('-'));
    // One normal path component, as is each of the store's file names built
    // from it, and each fits in NAME_MAX with the widest pid and time.
    for file in [
        s.to_owned(),
        format!("{s}.state"),
        format!("{s}.lock"),
        format!(".tmp.{s}.{}", u32::MAX),
        format!(".corrupt.{s}.{}", i64::MIN),
    ] {
        let parts: Vec<_> = Path::new(&file).components().collect();
        prop_assert_eq!(parts.len(), 1);
        prop_assert!(matches!(parts[0], Component::Normal(p) if p == file.as_str()));
        prop_assert!(file.len() <= NAME_MAX, "{} bytes", file.len());
    }
    prop_assert_eq!(name.to_string(), text);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn any_name_with_a_slash_is_refused(
        before in name_like(),
        after in name_like(),
    ) {
        let text = format!("{before}/{after}");
        prop_assert!(UserName::parse(&text).is_err());
        prop_assert!(UserName::from_bytes(text.as_bytes()).is_err());
    }

    #[test]
    fn any_name_with_a_control_character_is_refused(
        before in name_like(),
        c in control_char(),
        after in name_like(),
    ) {
        let text = format!("{before}{c}{after}");
        prop_assert!(UserName::parse(&text).is_err());
        prop_assert!(UserName::from_bytes(text.as_bytes()).is_err());
    }

    #[test]
    fn accepted_names_are_safe(text in name_like()) {
        match UserName::parse(&text) {
            Ok(name) => assert_safe(&name, &text)?,
            Err(UserNameError::TooLong) => prop_assert!(text.len() > MAX_USER_NAME_LEN),
            Err(_) => {}
        }
    }

    #[test]
    fn accepted_byte_strings_are_safe(raw in prop::collection::vec(any::<u8>(), 0..300)) {
        match UserName::from_bytes(&raw) {
            Ok(name) => {
                let text = std::str::from_utf8(&raw).unwrap();
                assert_safe(&name, text)?;
                prop_assert_eq!(UserName::parse(text), Ok(name));
            }
            Err(UserNameError::TooLong) => prop_assert!(raw.len() > MAX_USER_NAME_LEN),
            Err(UserNameError::NotUtf8) => prop_assert!(std::str::from_utf8(&raw).is_err()),
            Err(e) => {
                // Any other refusal is the same as for the text.
                let text = std::str::from_utf8(&raw).unwrap();
                prop_assert_eq!(UserName::parse(text), Err(e));
            }
        }
    }

    #[test]
    fn from_bytes_agrees_with_parse(text in name_like()) {
        prop_assert_eq!(UserName::from_bytes(text.as_bytes()), UserName::parse(&text));
    }
}

#[test]
fn the_length_bound_is_in_bytes() {
    assert_eq!(MAX_USER_NAME_LEN, 200);
    // 100 two-byte characters: exactly the limit.
    let at_limit = "é".repeat(100);
    assert_eq!(at_limit.len(), MAX_USER_NAME_LEN);
    assert!(UserName::parse(&at_limit).is_ok());
    // 101 characters: well under 200 characters, over 200 bytes.
    assert_eq!(
        UserName::parse(&"é".repeat(101)),
        Err(UserNameError::TooLong)
    );
    assert_eq!(
        UserName::parse(&"a".repeat(MAX_USER_NAME_LEN + 1)),
        Err(UserNameError::TooLong)
    );
    assert_eq!(
        UserName::parse(&"a".repeat(10 * 1024)),
        Err(UserNameError::TooLong)
    );
}

#[test]
fn path_tricks_are_refused() {
    for text in [
        "..",
        ".",
        "../../etc/shadow",
        "/etc/shadow",
        "alice/..",
        ".tmp.alice.1",
        ".corrupt.alice.1",
        "alice\0.state",
        "alice\n",
        "alice\r",
        "\u{85}alice",
        "alice\u{2028}",
        "-alice",
        "",
    ] {
        assert!(UserName::parse(text).is_err(), "{text:?} was accepted");
    }
}

#[test]
fn the_refused_text_is_not_in_the_error() {
    let secret = "hunter2/hunter2";
    let err = UserName::parse(secret).unwrap_err();
    assert!(!err.to_string().contains("hunter2"));
    assert!(!format!("{err:?}").contains("hunter2"));
}
