//! Times for people, in the administrator's zone; JSON uses RFC 3339 in
//! UTC (`Timestamp::to_rfc3339`).

use crate::error::CliError;
use deadbolt_core::password::parse_date;
use deadbolt_core::Timestamp;
use jiff::tz::TimeZone;
use std::ffi::OsStr;
use std::time::Duration;

/// The zone in which text shows times.
#[derive(Debug, Clone)]
pub struct Zone(TimeZone);

impl Zone {
    pub fn utc() -> Zone {
        Zone(TimeZone::UTC)
    }

    /// The administrator's zone, found as date(1) finds it: TZ (a zone
    /// name, `:Europe/Paris`, a file, a POSIX rule such as
    /// `EST5EDT,M3.2.0,M11.1.0`), else /etc/localtime, else UTC.
    ///
    /// A TZ that names no zone is taken as UTC, as date(1) takes it, and
    /// the note returned says so: times are then never passed off as local
    /// when they are not. The note does not quote TZ, which may hold
    /// anything.
    pub fn of_system() -> (Zone, Option<&'static str>) {
        match TimeZone::try_system() {
            Ok(zone) => (Zone(zone), None),
            Err(_) if std::env::var_os("TZ").is_some() => (
                Zone::utc(),
                Some("TZ names no time zone known here; times are shown in UTC"),
            ),
            // No TZ and no readable /etc/localtime: the system runs on UTC.
            Err(_) => (Zone::utc(), None),
        }
    }

    /// A zone of the system's database by name, whatever the machine's own
    /// zone is.
    #[cfg(test)]
    pub fn named(name: &str) -> Zone {
        Zone(TimeZone::get(name).unwrap())
    }
}

/// `2026-11-28 00:05:09 CET`: to the second, in `zone`, with its
/// abbreviation (or offset, such as `+03`) as date(1) prints it.
pub fn clock(zone: &Zone, t: Timestamp) -> String {
    match jiff::Timestamp::from_microsecond(t.as_micros()) {
        Ok(at) => at
            .to_zoned_datetime(zone.0.clone())
            .strftime("%Y-%m-%d %H:%M:%S %Z")
            .to_string(),
        // Beyond the years 9999 either way, which only a damaged state
        // holds: shown as it is stored.
        Err(_) => t.to_rfc3339(),
    }
}
/// `in 9 minutes`, `in less than a minute`, `3 hours ago`: `t` seen from `now`.
pub fn relative(now: Timestamp, t: Timestamp) -> String {
    if t >= now {
        format!("in {}", span(now.until(t), Round::Up))
    } else {
        format!("{} ago", span(t.until(now), Round::Down))
    }
}

/// `clock` followed by `relative` in parentheses.
pub fn clock_and_relative(zone: &Zone, now: Timestamp, t: Timestamp) -> String {
    format!("{} ({})", clock(zone, t), relative(now, t))
}

/// What `--on` takes, for the messages.
const WANTED: &str = "(write YYYY-MM-DD, such as 2027-03-31)";

/// The day given to `expire --on`, in days since 1970-01-01: `YYYY-MM-DD`,
/// a day of the calendar. The text is quoted back only when it is short and
/// printable; anything else may be a secret typed in the wrong place.
pub fn parse_day(text: &OsStr) -> Result<i64, CliError> {
    let shown = text
        .to_str()
        .filter(|t| !t.is_empty() && t.len() <= 32 && t.bytes().all(|b| b.is_ascii_graphic()));
    let Some(text) = shown else {
        return Err(CliError::InvalidDate(format!(
            "the value is not a date {WANTED}"
        )));
    };
    let shaped = text.len() == 10
        && text.bytes().enumerate().all(|(i, b)| match i {
            4 | 7 => b == b'-',
            _ => b.is_ascii_digit(),
        });
    parse_date(text).map_err(|_| {
        CliError::InvalidDate(if shaped {
            format!("{text} is not a day of the calendar {WANTED}")
        } else {
            format!("`{text}` is not a date {WANTED}")
        })
    })
}

/// `in 124 days`, `today`, `3 days ago`: a day seen from `now`, counting
/// whole UTC days.
pub fn relative_day(now: Timestamp, days: i64) -> String {
    let today = now.as_micros().div_euclid(86_400 * 1_000_000);
    match days.saturating_sub(today) {
        0 => "today".to_owned(),
        1 => "tomorrow".to_owned(),
        -1 => "yesterday".to_owned(),
        n if n > 0 => format!("in {n} days"),
        n => format!("{} days ago", n.unsigned_abs()),
    }
}

#[derive(Clone, Copy)]
enum Round {
    /// For what is still to come: "1 more minute" is never said at 1m59s.
    Up,
    Down,
}

fn plural(n: u64, unit: &str) -> String {
    if n == 1 {
        format!("1 {unit}")
    } else {
        format!("{n} {unit}s")
    }
}

fn span(d: Duration, round: Round) -> String {
    let secs = d.as_secs();
    if secs < 60 {
        return "less than a minute".to_owned();
    }
    let div = |n: u64, unit: u64| match round {
        Round::Up => n.div_ceil(unit),
        Round::Down => n / unit,
    };
    let minutes = div(secs, 60);
    if minutes < 120 {
        return plural(minutes, "minute");
    }
    let hours = div(secs, 3600);
    if hours < 48 {
        return plural(hours, "hour");
    }
    plural(div(secs, 86_400), "day")
}

#[cfg(test)]
mod tests {
    use super::*;
    use deadbolt_core::password::day_start;

    const NOW: Timestamp = Timestamp(1_795_820_709_000_123); // 2026-11-27T23:05:09.000123Z

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_secs(secs)
    }

    #[test]
    fn clock_in_utc_to_the_second() {
        let utc = Zone::utc();
        assert_eq!(clock(&utc, NOW), "2026-11-27 23:05:09 UTC");
        assert_eq!(clock(&utc, Timestamp(0)), "1970-01-01 00:00:00 UTC");
        assert_eq!(clock(&Zone::named("UTC"), NOW), "2026-11-27 23:05:09 UTC");
    }

    #[test]
    fn clock_in_paris_winter_and_summer() {
        let paris = Zone::named("Europe/Paris");
        // Past midnight there: the day changes too.
        assert_eq!(clock(&paris, NOW), "2026-11-28 00:05:09 CET");
        // 2026-07-01T12:00:00Z
        assert_eq!(clock(&paris, at(1_782_907_200)), "2026-07-01 14:00:00 CEST");
    }

    #[test]
    fn clock_in_new_york_across_its_dst_changes() {
        let new_york = Zone::named("America/New_York");
        // 2026-03-08: at 07:00Z clocks jump from 02:00 EST to 03:00 EDT.
        assert_eq!(
            clock(&new_york, at(1_772_953_199)),
            "2026-03-08 01:59:59 EST"
        );
        assert_eq!(
            clock(&new_york, at(1_772_953_200)),
            "2026-03-08 03:00:00 EDT"
        );
        // 2026-11-01: at 06:00Z they fall back from 02:00 EDT to 01:00 EST,
        // so 01:xx is seen twice; the abbreviation tells which.
        assert_eq!(
            clock(&new_york, at(1_793_512_799)),
            "2026-11-01 01:59:59 EDT"
        );
        assert_eq!(
            clock(&new_york, at(1_793_512_800)),
            "2026-11-01 01:00:00 EST"
        );
        // The same rules written as TZ may give them, without the database.
        let rule = Zone(TimeZone::posix("EST5EDT,M3.2.0,M11.1.0").unwrap());
        for secs in [1_772_953_199, 1_772_953_200, 1_793_512_799, 1_793_512_800] {
            assert_eq!(clock(&rule, at(secs)), clock(&new_york, at(secs)));
        }
    }

    #[test]
    fn clock_shows_an_offset_where_the_zone_has_no_abbreviation() {
        let plus_three = Zone(TimeZone::posix("<+03>-3").unwrap());
        assert_eq!(clock(&plus_three, NOW), "2026-11-28 02:05:09 +03");
    }

    #[test]
    fn clock_beyond_the_calendar_shows_the_stored_form() {
        let paris = Zone::named("Europe/Paris");
        for t in [Timestamp(i64::MAX), Timestamp(i64::MIN)] {
            assert_eq!(clock(&paris, t), t.to_rfc3339());
        }
    }

    #[test]
    fn days_for_expire() {
        let day = |text: &str| parse_day(OsStr::new(text));
        assert_eq!(day("1970-01-01").unwrap(), 0);
        assert_eq!(day("2027-03-31").unwrap(), 20_908);
        assert_eq!(day("2028-02-29").unwrap(), 21_243);
        assert_eq!(
            day("2026-02-30").unwrap_err().to_string(),
            "invalid date for --on: 2026-02-30 is not a day of the calendar \
             (write YYYY-MM-DD, such as 2027-03-31)"
        );
        assert_eq!(
            day("tomorrow").unwrap_err().to_string(),
            "invalid date for --on: `tomorrow` is not a date (write YYYY-MM-DD, such as 2027-03-31)"
        );
        for bad in [
            "26-1-1",
            "2026-1-1",
            "2026-13-01",
            "2026-00-10",
            "2026-01-00",
            "2026-04-31",
            "2027-02-29",
            "+2026-01-01",
            "2026-01-01T00:00:00Z",
            "2026/01/01",
            " 2026-01-01",
            "-2026-01-01",
            "",
        ] {
            let err = day(bad).unwrap_err().to_string();
            assert!(err.starts_with("invalid date for --on: "), "{bad}: {err}");
            assert!(!err.contains('\n'));
        }
        // Long or unprintable values are not quoted back.
        let secret = format!("hunter2-{}", "x".repeat(40));
        let err = day(&secret).unwrap_err().to_string();
        assert!(!err.contains("hunter2"), "{err}");
        let err = day("2026-01-01\n2027").unwrap_err().to_string();
        assert!(!err.contains('\n'), "{err}");
        use std::os::unix::ffi::OsStrExt;
        assert!(parse_day(OsStr::from_bytes(b"2026-01-0\xff")).is_err());
    }

    #[test]
    fn days_seen_from_now() {
        // NOW is 2026-11-27.
        let today = parse_date("2026-11-27").unwrap();
        assert_eq!(day_start(today), Timestamp::from_secs(today * 86_400));
        assert!(day_start(today) <= NOW && NOW < day_start(today + 1));
        assert_eq!(relative_day(NOW, today), "today");
        assert_eq!(relative_day(NOW, today + 1), "tomorrow");
        assert_eq!(relative_day(NOW, today - 1), "yesterday");
        assert_eq!(relative_day(NOW, today + 124), "in 124 days");
        assert_eq!(relative_day(NOW, today - 3), "3 days ago");
    }

    #[test]
    fn relative_rounds_what_is_to_come_up() {
        let later = |secs: u64| NOW.saturating_add(Duration::from_secs(secs));
        assert_eq!(relative(NOW, later(0)), "in less than a minute");
        assert_eq!(relative(NOW, later(59)), "in less than a minute");
        assert_eq!(relative(NOW, later(60)), "in 1 minute");
        assert_eq!(relative(NOW, later(61)), "in 2 minutes");
        assert_eq!(relative(NOW, later(9 * 60 - 1)), "in 9 minutes");
        assert_eq!(relative(NOW, later(3 * 3600)), "in 3 hours");
        assert_eq!(relative(NOW, later(3 * 86_400)), "in 3 days");
        let earlier = NOW.saturating_sub(Duration::from_secs(3 * 60 + 30));
        assert_eq!(relative(NOW, earlier), "3 minutes ago");
        assert_eq!(
            clock_and_relative(&Zone::utc(), NOW, later(600)),
            "2026-11-27 23:15:09 UTC (in 10 minutes)"
        );
        assert_eq!(
            clock_and_relative(&Zone::named("Europe/Paris"), NOW, later(600)),
            "2026-11-28 00:15:09 CET (in 10 minutes)"
        );
    }
}
