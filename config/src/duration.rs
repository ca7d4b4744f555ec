//! Durations as administrators write them: an integer and a unit.
//!
//! One integer and one unit, nothing else: `90s`, `15m`, `2h`, `7d`, `500ms`,
//! or a bare `0`. No fractions, no sums like `1h30m`, no signs, no spaces:
//! each of those has more than one plausible reading, and a lockout setting
//! that means something other than what its author thought is worse than one
//! that is refused with a clear message.

use std::time::Duration;

/// What every duration error ends with, so the administrator sees what is accepted.
const ACCEPTED: &str = "write an integer and a unit (ms, s, m, h or d), e.g. \"90s\", \"15m\", \"2h\", \"7d\" or \"500ms\"; a bare \"0\" means zero";

/// Longest part of the refused text repeated in a message: the text may be a
/// megabyte of garbage, and the message goes to syslog.
const ECHO_LIMIT: usize = 40;

/// Parses a duration such as `"90s"`, `"15m"`, `"2h"`, `"7d"`, `"500ms"` or `"0"`.
///
/// Refuses the empty string, signs, fractions, spaces, a number without a unit
/// (other than zero), unknown units, and anything that does not fit a
/// [`Duration`]. The error says what was wrong and what is accepted.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    if text.is_empty() {
        return Err(format!("the duration is empty: {ACCEPTED}"));
    }
    let shown = echo(text);
    if text.starts_with('-') {
        return Err(format!(
            "`{shown}` is negative: durations cannot be negative; {ACCEPTED}"
        ));
    }
    if text.chars().any(char::is_whitespace) {
        return Err(format!("`{shown}` contains a space: {ACCEPTED}"));
    }
    let digits_end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(digits_end);
    if digits.is_empty() {
        return Err(format!(
            "`{shown}` does not start with a number: {ACCEPTED}"
        ));
    }
    if unit.starts_with(['.', ',']) {
        return Err(format!(
            "`{shown}` has a fraction: use a whole number of a smaller unit (\"90m\", not \"1.5h\")"
        ));
    }
    let too_large = || {
        format!(
            "`{shown}` is too large: the longest duration is {}s",
            u64::MAX
        )
    };
    let value: u64 = digits.parse().map_err(|_| too_large())?;
    let duration = match unit {
        "" if value == 0 => Duration::ZERO,
        "" => {
            return Err(format!(
                "`{shown}` has no unit: write \"{value}s\", \"{value}m\" or similar; {ACCEPTED}"
            ))
        }
        "ms" => Duration::from_millis(value),
        "s" => Duration::from_secs(value),
        "m" => Duration::from_secs(value.checked_mul(60).ok_or_else(too_large)?),
        "h" => Duration::from_secs(value.checked_mul(3600).ok_or_else(too_large)?),
        "d" => Duration::from_secs(value.checked_mul(86_400).ok_or_else(too_large)?),
        _ => {
            return Err(format!(
                "`{shown}` has an unknown unit `{}`: {ACCEPTED}",
                echo(unit)
            ))
        }
    };
    Ok(duration)
}

/// Writes a duration the way [`parse_duration`] reads it, in the largest unit
/// that represents it exactly (`900s` becomes `"15m"`), so that the command
/// line shows the configuration in the words of the file.
///
/// Every duration [`parse_duration`] returns comes back unchanged through
/// this; a finer duration is rounded down to whole milliseconds.
pub fn format_duration(duration: Duration) -> String {
    if duration.subsec_millis() != 0 {
        return format!("{}ms", duration.as_millis());
    }
    let secs = duration.as_secs();
    if secs == 0 {
        return "0".to_owned();
    }
    for (unit, size) in [("d", 86_400), ("h", 3600), ("m", 60)] {
        if secs % size == 0 {
            return format!("{}{unit}", secs / size);
        }
    }
    format!("{secs}s")
}

/// The start of `text`, cut at a character boundary and marked when cut.
pub(crate) fn echo(text: &str) -> String {
    let mut shown: String = text.chars().take(ECHO_LIMIT).collect();
    if shown.len() < text.len() {
        shown.push('…');
    }
    shown.escape_debug().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepted_forms() {
        let table: &[(&str, Duration)] = &[
            ("0", Duration::ZERO),
            ("00", Duration::ZERO),
            ("0s", Duration::ZERO),
            ("0ms", Duration::ZERO),
            ("500ms", Duration::from_millis(500)),
            ("1ms", Duration::from_millis(1)),
            ("90s", Duration::from_secs(90)),
            ("15m", Duration::from_secs(900)),
            ("2h", Duration::from_secs(7200)),
            ("7d", Duration::from_secs(7 * 86_400)),
            ("007s", Duration::from_secs(7)),
            ("18446744073709551615s", Duration::from_secs(u64::MAX)),
            ("18446744073709551615ms", Duration::from_millis(u64::MAX)),
        ];
        for (text, expected) in table {
            assert_eq!(parse_duration(text), Ok(*expected), "{text}");
        }
    }

    #[test]
    fn refused_forms_say_why() {
        let table: &[(&str, &str)] = &[
            ("", "empty"),
            ("-5m", "negative"),
            ("-0", "negative"),
            ("+5m", "does not start with a number"),
            ("5", "no unit"),
            ("15", "no unit"),
            ("m", "does not start with a number"),
            ("never", "does not start with a number"),
            ("1.5h", "fraction"),
            ("1,5h", "fraction"),
            ("5 m", "space"),
            (" 5m", "space"),
            ("5m ", "space"),
            ("5x", "unknown unit `x`"),
            ("5M", "unknown unit `M`"),
            ("5min", "unknown unit `min`"),
            ("1h30m", "unknown unit `h30m`"),
            ("5us", "unknown unit `us`"),
            ("99999999999999999999d", "too large"),
            ("18446744073709551616s", "too large"),
            ("18446744073709551615m", "too large"),
            ("307445734561825861h", "too large"),
            ("213503982334602d", "too large"),
            ("5m\0", "unknown unit"),
            ("٣s", "does not start with a number"),
        ];
        for (text, needle) in table {
            let message = parse_duration(text).expect_err(text);
            assert!(message.contains(needle), "{text:?}: {message}");
        }
    }

    #[test]
    fn every_message_says_what_is_accepted() {
        for text in ["", "-5m", "5", "abc", "5x", "5 m"] {
            let message = parse_duration(text).unwrap_err();
            assert!(message.contains("e.g. \"90s\""), "{text:?}: {message}");
        }
    }

    #[test]
    fn largest_units_that_fit() {
        assert!(parse_duration("213503982334602d").is_err());
        assert_eq!(
            parse_duration("213503982334601d"),
            Ok(Duration::from_secs(213_503_982_334_601 * 86_400))
        );
    }

    #[test]
    fn huge_garbage_is_not_echoed_whole() {
        let text = "x".repeat(1 << 20);
        let message = parse_duration(&text).unwrap_err();
        assert!(message.len() < 400, "{}", message.len());
    }

    #[test]
    fn formats_in_the_largest_exact_unit() {
        let table: &[(Duration, &str)] = &[
            (Duration::ZERO, "0"),
            (Duration::from_millis(500), "500ms"),
            (Duration::from_millis(1500), "1500ms"),
            (Duration::from_secs(90), "90s"),
            (Duration::from_secs(900), "15m"),
            (Duration::from_secs(7200), "2h"),
            (Duration::from_secs(86_400 * 7), "7d"),
            (Duration::from_nanos(1_999_999), "1ms"),
            (Duration::from_nanos(999), "0"),
        ];
        for (duration, text) in table {
            assert_eq!(format_duration(*duration), *text);
        }
    }

    proptest! {
        #[test]
        fn never_panics(text in any::<String>()) {
            let _ = parse_duration(&text);
        }

        #[test]
        fn never_panics_on_duration_like_text(text in "[-+0-9]{0,25}(ms|s|m|h|d|x|\\.5h)?") {
            let _ = parse_duration(&text);
        }

        #[test]
        fn parsed_durations_round_trip(
            value in prop_oneof![0u64..100_000, any::<u64>()],
            unit in prop::sample::select(vec!["ms", "s", "m", "h", "d"]),
        ) {
            let text = format!("{value}{unit}");
            if let Ok(parsed) = parse_duration(&text) {
                let formatted = format_duration(parsed);
                prop_assert_eq!(parse_duration(&formatted), Ok(parsed), "{} -> {}", text, formatted);
            }
        }

        #[test]
        fn millisecond_durations_round_trip(millis in any::<u64>()) {
            let duration = Duration::from_millis(millis);
            prop_assert_eq!(parse_duration(&format_duration(duration)), Ok(duration));
        }

        #[test]
        fn second_durations_round_trip(secs in any::<u64>()) {
            let duration = Duration::from_secs(secs);
            prop_assert_eq!(parse_duration(&format_duration(duration)), Ok(duration));
        }
    }
}
