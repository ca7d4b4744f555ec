//! How principle 3's state is written in the directory, value by value.
//!
//! Times are `YYYYMMDDhhmmss.ffffffZ` in UTC with exactly six fraction
//! digits, so that the text order of two values is their time order and a
//! directory administrator can read them. A failure is
//! `<time> <pid> <service> <source>`, its two free-text fields
//! percent-encoded so that a space, a `%` or a byte outside printable ASCII
//! can never split or forge a field. The host of a failure is not in the
//! value: it is the host record entry the value sits in.

use deadbolt_core::state::PasswordRecord;
use deadbolt_core::time::{civil_from_days, days_from_civil};
use deadbolt_core::{Failure, Timestamp};
use std::fmt;

/// The longest value of ours accepted from the directory, in bytes: the
/// schema's own bound on `deadboltFailure`.
pub const MAX_VALUE_LEN: usize = 1024;

/// Why a value read from the directory was not used. The value itself is
/// not kept: it is logged by its attribute and entry, never echoed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ValueError {
    TooLong,
    BadTime,
    BadField(&'static str),
}

impl fmt::Display for ValueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ValueError::TooLong => write!(f, "longer than {MAX_VALUE_LEN} bytes"),
            ValueError::BadTime => f.write_str("not a time of the form YYYYMMDDhhmmss.ffffffZ"),
            ValueError::BadField(which) => write!(f, "its {which} is not valid"),
        }
    }
}

impl std::error::Error for ValueError {}

/// `YYYYMMDDhhmmss.ffffffZ`.
pub fn format_time(t: Timestamp) -> String {
    let (date, sod, micros) = split(t);
    format!("{date}{}.{micros:06}Z", clock(sod))
}

/// `YYYYMMDDhhmmssZ`: ppolicy's `pwdAccountLockedTime`, to the second.
pub fn format_seconds(t: Timestamp) -> String {
    let (date, sod, _) = split(t);
    format!("{date}{}Z", clock(sod))
}

fn split(t: Timestamp) -> (String, i64, i64) {
    let micros = t.as_micros().clamp(0, MAX_MICROS);
    let secs = micros.div_euclid(1_000_000);
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    (
        format!("{y:04}{m:02}{d:02}"),
        secs.rem_euclid(86_400),
        micros.rem_euclid(1_000_000),
    )
}

fn clock(sod: i64) -> String {
    format!("{:02}{:02}{:02}", sod / 3600, (sod % 3600) / 60, sod % 60)
}

/// 9999-12-31T23:59:59.999999Z: the last instant four year digits hold.
const MAX_MICROS: i64 = 253_402_300_799_999_999;

/// Reads a GeneralizedTime in UTC: `YYYYMMDDhhmmss`, then an optional
/// fraction of one to six digits, then `Z`. This covers our own values,
/// ppolicy's (`20261202101500Z`) and `entryCSN`'s time part.
pub fn parse_time(text: &str) -> Result<Timestamp, ValueError> {
    let bytes = text.as_bytes();
    if bytes.len() < 15 || !bytes[..14].iter().all(u8::is_ascii_digit) {
        return Err(ValueError::BadTime);
    }
    let num = |range: std::ops::Range<usize>| -> i64 {
        text[range]
            .bytes()
            .fold(0, |n, b| n * 10 + i64::from(b - b'0'))
    };
    let (y, mo, d, h, mi, s) = (
        num(0..4),
        num(4..6),
        num(6..8),
        num(8..10),
        num(10..12),
        num(12..14),
    );
    let rest = &text[14..];
    let (fraction, zone) = match rest.strip_prefix('.') {
        Some(after) => {
            let digits = after.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 || digits > 6 {
                return Err(ValueError::BadTime);
            }
            (&after[..digits], &after[digits..])
        }
        None => ("", rest),
    };
    if zone != "Z" {
        return Err(ValueError::BadTime);
    }
    let days_in_month = match mo {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        _ => return Err(ValueError::BadTime),
    };
    if d < 1 || d > days_in_month || h > 23 || mi > 59 || s > 59 {
        return Err(ValueError::BadTime);
    }
    let days = days_from_civil(y, mo as u32, d as u32);
    let micros = fraction
        .bytes()
        .chain(std::iter::repeat(b'0'))
        .take(6)
        .fold(0, |n, b| n * 10 + i64::from(b - b'0'));
    let secs = days * 86_400 + h * 3600 + mi * 60 + s;
    Ok(Timestamp(secs * 1_000_000 + micros))
}

/// The time part of an `entryCSN` (`20261202101500.123456Z#000000#000#000000`):
/// when the directory server that made the change says it was made.
pub fn parse_csn_time(csn: &str) -> Result<Timestamp, ValueError> {
    parse_time(csn.split('#').next().unwrap_or(""))
}

/// A failure as a `deadboltFailure` value.
pub fn format_failure(failure: &Failure) -> String {
    format!(
        "{} {} {} {}",
        format_time(failure.time),
        failure.pid,
        escape(&failure.service),
        escape(&failure.source)
    )
}

/// Reads a `deadboltFailure` value found in the record of `host`.
pub fn parse_failure(value: &str, host: &str) -> Result<Failure, ValueError> {
    if value.len() > MAX_VALUE_LEN {
        return Err(ValueError::TooLong);
    }
    let mut fields = value.split(' ');
    let time = parse_our_time(fields.next().unwrap_or(""))?;
    let pid = fields
        .next()
        .filter(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|p| p.parse::<u32>().ok())
        .ok_or(ValueError::BadField("pid"))?;
    let service = unescape(fields.next().ok_or(ValueError::BadField("service"))?)
        .ok_or(ValueError::BadField("service"))?;
    let source = unescape(fields.next().ok_or(ValueError::BadField("source"))?)
        .ok_or(ValueError::BadField("source"))?;
    if fields.next().is_some() {
        return Err(ValueError::BadField("number of fields"));
    }
    Ok(Failure {
        time,
        host: host.to_owned(),
        source,
        service,
        pid,
    })
}

/// A time-valued attribute's value (`deadboltLogin`, `deadboltReactivated`...).
pub fn parse_time_value(value: &str) -> Result<Timestamp, ValueError> {
    if value.len() > MAX_VALUE_LEN {
        return Err(ValueError::TooLong);
    }
    parse_our_time(value)
}

/// A time in a value we write back: within what [`format_time`] writes.
/// Before 1970 it would be written back as 1970, a second value for the
/// same event that anti-entropy would then push as missing.
fn parse_our_time(text: &str) -> Result<Timestamp, ValueError> {
    parse_time(text).and_then(|t| {
        if t.as_micros() < 0 {
            Err(ValueError::BadTime)
        } else {
            Ok(t)
        }
    })
}

/// The longest `deadboltPassword` value: the schema's bound.
pub const MAX_PASSWORD_VALUE_LEN: usize = 512;

/// A former password as a `deadboltPassword` value: `<time> <PHC string>`.
/// `None` for a hash that could not be read back as one (a space or a byte
/// outside printable ASCII, or too long): it is not written at all.
pub fn format_password(record: &PasswordRecord) -> Option<String> {
    let value = format!("{} {}", format_time(record.changed_at), record.phc);
    let plain =
        record.phc.starts_with("$argon2") && record.phc.bytes().all(|b| b.is_ascii_graphic());
    (plain && value.len() <= MAX_PASSWORD_VALUE_LEN).then_some(value)
}

/// A `deadboltPassword` value. Only argon2 PHC strings are taken: the
/// history check verifies nothing else.
pub fn parse_password(value: &str) -> Result<PasswordRecord, ValueError> {
    if value.len() > MAX_PASSWORD_VALUE_LEN {
        return Err(ValueError::TooLong);
    }
    let (time, phc) = value.split_once(' ').ok_or(ValueError::BadField("hash"))?;
    let changed_at = parse_our_time(time)?;
    if !phc.starts_with("$argon2") || !phc.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ValueError::BadField("hash"));
    }
    Ok(PasswordRecord {
        changed_at,
        phc: phc.to_owned(),
    })
}

/// `shadowExpire` (days since 1970-01-01; `-1` or empty: never).
pub fn parse_shadow_expire(value: &str) -> Result<Option<i64>, ValueError> {
    match value.trim().parse::<i64>() {
        Ok(-1) => Ok(None),
        // Past 9999-12-31 is no date a person means.
        Ok(days) if (0..=2_932_896).contains(&days) => Ok(Some(days)),
        _ => Err(ValueError::BadField("number of days")),
    }
}

/// Percent-encodes everything but printable ASCII other than space and `%`;
/// an empty field is `-` so that every field has at least one character,
/// and a field that is `-` itself is written `%2D`.
fn escape(text: &str) -> String {
    if text.is_empty() {
        return "-".to_owned();
    }
    if text == "-" {
        return "%2D".to_owned();
    }
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_graphic() && b != b'%' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn unescape(field: &str) -> Option<String> {
    if field == "-" {
        return Some(String::new());
    }
    if field.is_empty() {
        return None;
    }
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = field.get(i + 1..i + 3)?;
                if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return None;
                }
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b if b.is_ascii_graphic() => {
                out.push(b);
                i += 1;
            }
            _ => return None,
        }
    }
    String::from_utf8(out).ok()
}

/// Whether `name` may name a host: what `[host] name` accepts, so that it
/// is a plain RDN value and a plain word in a log line.
pub fn valid_host_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && !name.starts_with(['-', '.'])
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}

/// The sync cookie to send back to a provider: OpenLDAP's own
/// (`rid=NNN,sid=NNN,csn=...`) without its `sid`, any other as it came.
///
/// The `sid` a provider puts in a cookie is its own server ID, and a
/// consumer that sends one back claims to be that server: in multi-provider
/// replication the provider then never streams it the changes that server
/// made (it does not send a server's own changes back to it). A daemon
/// resuming with a cookie of the provider it talks to would miss every
/// change made there; one resuming on the other provider, every change
/// made on the first. A consumer that is no server sends no `sid`.
pub fn cookie_to_send(cookie: &[u8]) -> Vec<u8> {
    let Ok(text) = std::str::from_utf8(cookie) else {
        return cookie.to_vec();
    };
    if !text.starts_with("rid=") {
        return cookie.to_vec();
    }
    text.split(',')
        .filter(|part| !part.starts_with("sid="))
        .collect::<Vec<_>>()
        .join(",")
        .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn former_passwords_read_back_and_odd_ones_are_refused() {
        let record = PasswordRecord {
            changed_at: Timestamp(1_795_820_709_000_123),
            phc: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2g".to_owned(),
        };
        let value = format_password(&record).expect("a PHC string is written");
        assert_eq!(value, format!("20261127230509.000123Z {}", record.phc));
        assert_eq!(parse_password(&value), Ok(record.clone()));
        for bad in [
            "20261127230509.000123Z".to_owned(),
            "20261127230509.000123Z {SSHA}abc".to_owned(),
            "20261127230509.000123Z $argon2id$ with space".to_owned(),
            "soon $argon2id$v=19".to_owned(),
            format!("20261127230509.000123Z $argon2id${}", "a".repeat(600)),
        ] {
            assert!(parse_password(&bad).is_err(), "{bad:?} was taken");
        }
        let spaced = PasswordRecord {
            phc: "$argon2id$a b".to_owned(),
            ..record
        };
        assert_eq!(format_password(&spaced), None);
    }

    #[test]
    fn shadow_expire_is_a_day_or_never() {
        assert_eq!(parse_shadow_expire("20790"), Ok(Some(20790)));
        assert_eq!(parse_shadow_expire("-1"), Ok(None));
        for bad in ["", "x", "-2", "99999999999", "1.5"] {
            assert!(parse_shadow_expire(bad).is_err(), "{bad:?} was taken");
        }
    }

    #[test]
    fn times_read_back_and_sort_as_text() {
        let t = Timestamp(1_795_820_709_000_123);
        assert_eq!(format_time(t), "20261127230509.000123Z");
        assert_eq!(parse_time("20261127230509.000123Z"), Ok(t));
        assert_eq!(
            parse_time("20261127230509Z"),
            Ok(Timestamp(1_795_820_709_000_000))
        );
        assert_eq!(
            parse_time("20261127230509.5Z"),
            Ok(Timestamp(1_795_820_709_500_000))
        );
        assert_eq!(format_seconds(t), "20261127230509Z");
        assert_eq!(
            parse_csn_time("20261127230509.000123Z#000000#001#000000"),
            Ok(t)
        );
        // ppolicy's "locked for good" value has no seconds: not a time we
        // read, so the daemon dates such a lock by the entry's change.
        assert!(parse_time("000001010000Z").is_err());
        assert!(parse_time("00000101000000Z").is_ok());
    }

    /// Found by fuzzing (fuzz/corpus/directory/before-1970): a value of ours
    /// dated before 1970 was read, then written back as 1970.
    #[test]
    fn our_values_before_1970_are_refused() {
        let old = "19691231235959.999999Z";
        assert!(parse_time(old).is_ok());
        assert_eq!(parse_time_value(old), Err(ValueError::BadTime));
        assert_eq!(
            parse_failure(&format!("{old} 1 sshd tty1"), "web1"),
            Err(ValueError::BadTime)
        );
        assert_eq!(
            parse_password("00000101000000Z $argon2id$v=19$m=8,t=1,p=1$c2FsdA$aGFzaA"),
            Err(ValueError::BadTime)
        );
        assert_eq!(
            parse_time_value("19700101000000Z"),
            Ok(Timestamp(0)),
            "the epoch itself is written as it is read"
        );
    }

    #[test]
    fn hostile_times_are_refused() {
        for bad in [
            "",
            "2026",
            "20261127230509",
            "20261127230509.Z",
            "20261127230509.1234567Z",
            "20261327230509Z",
            "20260230230509Z",
            "20261127250509Z",
            "20261127230509+0100",
            "2026112723050９Z",
            "20261127230509.000123Z\0",
        ] {
            assert_eq!(parse_time(bad), Err(ValueError::BadTime), "{bad:?}");
        }
    }

    #[test]
    fn hostile_failures_are_refused() {
        for bad in [
            "20261127230509.000123Z",
            "20261127230509.000123Z 12",
            "20261127230509.000123Z 12 sshd",
            "20261127230509.000123Z x sshd 1.2.3.4",
            "20261127230509.000123Z 99999999999 sshd 1.2.3.4",
            "20261127230509.000123Z 12 sshd 1.2.3.4 extra",
            "20261127230509.000123Z 12  1.2.3.4",
            "20261127230509.000123Z 12 ss%G1 1.2.3.4",
            "20261127230509.000123Z 12 ss%C3 1.2.3.4",
            "20261127230509.000123Z 12 sshd é",
        ] {
            assert!(parse_failure(bad, "web1").is_err(), "{bad:?}");
        }
        let long = format!("20261127230509.000123Z 12 sshd {}", "a".repeat(2000));
        assert_eq!(parse_failure(&long, "web1"), Err(ValueError::TooLong));
    }

    #[test]
    fn host_names() {
        assert!(valid_host_name("web1.example.com"));
        assert!(valid_host_name("host_b-2"));
        for bad in [
            "",
            "-x",
            ".x",
            "a b",
            "a,b",
            "a=b",
            "a+b",
            "é",
            &"a".repeat(254),
        ] {
            assert!(!valid_host_name(bad), "{bad:?}");
        }
    }

    fn any_time() -> impl Strategy<Value = Timestamp> {
        (0i64..MAX_MICROS).prop_map(Timestamp)
    }

    proptest! {
        #[test]
        fn a_failure_reads_back_as_itself(
            time in any_time(),
            pid in any::<u32>(),
            service in ".{0,40}",
            source in ".{0,80}",
        ) {
            let failure = Failure { time, host: "web1".into(), source, service, pid };
            let value = format_failure(&failure);
            prop_assert_eq!(value.split(' ').count(), 4);
            prop_assert_eq!(parse_failure(&value, "web1"), Ok(failure));
        }

        #[test]
        fn time_text_order_is_time_order(a in any_time(), b in any_time()) {
            prop_assert_eq!(format_time(a).cmp(&format_time(b)), a.cmp(&b));
            prop_assert_eq!(parse_time(&format_time(a)), Ok(a));
        }

        #[test]
        fn arbitrary_text_never_panics(value in ".{0,120}") {
            let _ = parse_failure(&value, "web1");
            let _ = parse_time_value(&value);
            let _ = parse_csn_time(&value);
        }
    }

    #[test]
    fn a_cookie_goes_back_without_the_providers_server_id() {
        let sent = |c: &str| String::from_utf8(cookie_to_send(c.as_bytes())).unwrap();
        assert_eq!(
            sent("rid=000,sid=002,csn=20261203195549.845269Z#000000#001#000000;20261203195549.934453Z#000000#002#000000"),
            "rid=000,csn=20261203195549.845269Z#000000#001#000000;20261203195549.934453Z#000000#002#000000"
        );
        assert_eq!(
            sent("rid=000,csn=20261203195549.845269Z#000000#000#000000"),
            "rid=000,csn=20261203195549.845269Z#000000#000#000000"
        );
        // Another server's cookie is opaque: sent back untouched.
        assert_eq!(sent("sid=1;opaque"), "sid=1;opaque");
        assert_eq!(
            cookie_to_send(&[0xff, b's', b'i', b'd']),
            vec![0xff, b's', b'i', b'd']
        );
    }
}
