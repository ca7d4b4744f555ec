//! Times for people; JSON uses RFC 3339 (`Timestamp::to_rfc3339`).

use deadbolt_core::Timestamp;
use std::time::Duration;

/// `2026-11-27 23:05:09 UTC`: to the second, in UTC, as every host of a
/// fleet sees it.
pub fn clock(t: Timestamp) -> String {
    let rfc = t.to_rfc3339();
    let (date, rest) = rfc.split_once('T').unwrap_or((rfc.as_str(), ""));
    let time = rest.split('.').next().unwrap_or(rest);
    format!("{date} {time} UTC")
}

/// `in 9 minutes`, `in less than a minute`, `3 hours ago`: `t` seen from `now`.
pub fn relative(now: Timestamp, t: Timestamp) -> String {
    if t >= now {
        format!("in {}", span(now.until(t), Round::Up))
    } else {
        format!("{} ago", span(t.until(now), Round::Down))
    }
}

/// `clock(t)` followed by `relative` in parentheses.
pub fn clock_and_relative(now: Timestamp, t: Timestamp) -> String {
    format!("{} ({})", clock(t), relative(now, t))
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

    const NOW: Timestamp = Timestamp(1_795_820_709_000_123); // 2026-11-27T23:05:09.000123Z

    #[test]
    fn clock_is_utc_to_the_second() {
        assert_eq!(clock(NOW), "2026-11-27 23:05:09 UTC");
        assert_eq!(clock(Timestamp(0)), "1970-01-01 00:00:00 UTC");
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
            clock_and_relative(NOW, later(600)),
            "2026-11-27 23:15:09 UTC (in 10 minutes)"
        );
    }
}
