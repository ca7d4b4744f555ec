//! deadboltctl's times: text in the administrator's zone, found as date(1)
//! finds it, and JSON in UTC whatever the zone.
//!
//! The built deadboltctl runs with TZ set (or unset) and each time it prints
//! is compared with what date(1) prints for the same instant and the same
//! TZ. The users have state but no NSS entry, which status and the changes
//! accept; what NSS says changes none of the times.

use deadbolt_core::Timestamp;
use deadbolt_tests::{deadboltctl_path, failures_at, minutes_ago, Outcome, PamEnv};
use std::process::{Command, Stdio};

/// 2025-01-15T12:00:00Z, in winter in both hemispheres' north.
const WINTER: i64 = 1_736_942_400;
/// 2025-07-15T12:00:00Z, in summer time in Paris and New York.
const SUMMER: i64 = 1_752_580_800;

/// The zones an administrator may have in TZ: names, the `:name` form,
/// POSIX rules, an offset without abbreviation; `None` leaves TZ unset
/// (then /etc/localtime decides, for date(1) as for deadboltctl).
const ZONES: [Option<&str>; 8] = [
    None,
    Some("Europe/Paris"),
    Some(":Europe/Paris"),
    Some("America/New_York"),
    Some("EST5EDT,M3.2.0,M11.1.0"),
    Some("UTC"),
    Some("<+03>-3"),
    Some("/usr/share/zoneinfo/Asia/Tokyo"),
];

fn deadboltctl_in(env: &PamEnv, tz: Option<&str>, args: &[&str]) -> Outcome {
    let mut cmd = Command::new(deadboltctl_path());
    cmd.arg("--config")
        .arg(env.config_path())
        .args(args)
        .env_remove("DEADBOLT_CONFIG")
        .current_dir(env.root())
        .stdin(Stdio::null());
    with_tz(&mut cmd, tz);
    let out = cmd.output().expect("run deadboltctl");
    Outcome {
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn with_tz(cmd: &mut Command, tz: Option<&str>) {
    match tz {
        Some(tz) => cmd.env("TZ", tz),
        None => cmd.env_remove("TZ"),
    };
}

/// What `date` prints for `instant` (anything `date -d` reads) in `tz`.
fn date_in(tz: Option<&str>, instant: &str) -> String {
    let mut cmd = Command::new("date");
    cmd.arg("-d").arg(instant).arg("+%Y-%m-%d %H:%M:%S %Z");
    with_tz(&mut cmd, tz);
    let out = cmd.output().expect("run date");
    assert!(out.status.success(), "date -d {instant}: {out:?}");
    String::from_utf8(out.stdout).unwrap().trim_end().to_owned()
}

/// alice: two old failures (one in winter, one in summer) and three a
/// minute ago, so locked for some minutes more.
fn locked_alice() -> PamEnv {
    let env = PamEnv::builder().build();
    let mut times = vec![Timestamp::from_secs(WINTER), Timestamp::from_secs(SUMMER)];
    times.extend(failures_at(minutes_ago(1), 3));
    env.seed_failures("alice", &times);
    env
}

fn status_json(env: &PamEnv, tz: Option<&str>) -> serde_json::Value {
    let out = deadboltctl_in(env, tz, &["status", "alice", "--json"]);
    assert!(out.succeeded(), "{out}");
    assert_eq!(out.stderr, "", "{out}");
    serde_json::from_str(&out.stdout).expect("JSON")
}

/// Every clock time of `status alice` and `status` in `out_tz` is what
/// date(1) shows in `date_tz`.
fn assert_status_times(
    env: &PamEnv,
    locked_until: &str,
    out_tz: Option<&str>,
    date_tz: Option<&str>,
) {
    let label = format!("TZ={out_tz:?}");
    let out = deadboltctl_in(env, out_tz, &["status", "alice"]);
    assert!(out.succeeded(), "{label}: {out}");
    let until = date_in(date_tz, locked_until);
    assert!(
        out.stdout
            .lines()
            .next()
            .is_some_and(|l| l.contains(&format!("until {until} (in "))),
        "{label}: the lock's end should read {until}\n{out}"
    );
    for old in [WINTER, SUMMER] {
        let time = date_in(date_tz, &format!("@{old}"));
        assert!(
            out.stdout
                .lines()
                .any(|l| l.starts_with(&format!("    {time} "))
                    && l.contains("  seeded-host  seeded  ")),
            "{label}: no failure row at {time}\n{out}"
        );
    }
    let listing = deadboltctl_in(env, out_tz, &["status"]);
    assert!(listing.succeeded(), "{label}: {listing}");
    assert!(
        listing.stdout.contains(&format!("  {until} (in ")),
        "{label}: {listing}"
    );
}

fn locked_until(json: &serde_json::Value) -> String {
    let until = json["locked_until"].as_str().expect("a timed lock");
    assert!(until.ends_with('Z'), "{json}");
    until.to_owned()
}

#[test]
fn status_text_is_in_the_zone_of_tz_and_json_in_utc() {
    let env = locked_alice();
    let utc_json = status_json(&env, Some("UTC"));
    let until = locked_until(&utc_json);
    for tz in ZONES {
        // The same JSON, byte for byte, whatever the zone.
        assert_eq!(status_json(&env, tz), utc_json, "TZ={tz:?}");
        assert_status_times(&env, &until, tz, tz);
        // Nothing to say about a zone that is known.
        let out = deadboltctl_in(&env, tz, &["status", "alice"]);
        assert_eq!(out.stderr, "", "TZ={tz:?}: {out}");
    }
    // The zones differ, so the comparisons above tell them apart.
    let summer = format!("@{SUMMER}");
    assert_eq!(
        date_in(Some("Europe/Paris"), &summer),
        "2025-07-15 14:00:00 CEST"
    );
    assert_eq!(
        date_in(Some("America/New_York"), &summer),
        "2025-07-15 08:00:00 EDT"
    );
    assert_eq!(date_in(Some("UTC"), &summer), "2025-07-15 12:00:00 UTC");
}

#[test]
fn an_unknown_tz_shows_utc_and_says_so_once() {
    let env = locked_alice();
    let utc_json = status_json(&env, Some("UTC"));
    let until = locked_until(&utc_json);
    for tz in [
        "Not/AZone",
        "garbage",
        "../../etc/shadow",
        "hunter2\n\x1b[31mred",
        "::",
    ] {
        let label = format!("TZ={tz:?}");
        // As date(1) shows it with TZ=UTC.
        assert_status_times(&env, &until, Some(tz), Some("UTC"));
        let out = deadboltctl_in(&env, Some(tz), &["status", "alice"]);
        assert_eq!(
            out.stderr, "deadboltctl: TZ names no time zone known here; times are shown in UTC\n",
            "{label}"
        );
        assert!(!out.stderr.contains("hunter2") && !out.stdout.contains("hunter2"));
        // JSON does not look at the zone: nothing to say.
        assert_eq!(status_json(&env, Some(tz)), utc_json, "{label}");
    }
}

#[test]
fn change_confirmations_are_in_the_zone_of_tz() {
    let env = locked_alice();
    let until = locked_until(&status_json(&env, None));
    let paris = Some("Europe/Paris");

    let out = deadboltctl_in(&env, paris, &["reactivate", "alice"]);
    assert!(out.succeeded(), "{out}");
    let until = date_in(paris, &until);
    assert!(
        out.stdout
            .starts_with(&format!("alice reactivated (was locked until {until}); ")),
        "{out}"
    );

    // The account's day begins at 00:00 UTC: the evening before in New York.
    let out = deadboltctl_in(
        &env,
        Some("America/New_York"),
        &["expire", "alice", "--on", "2099-03-31"],
    );
    assert!(out.succeeded(), "{out}");
    assert!(
        out.stdout
            .contains(": from 2099-03-30 20:00:00 EDT every login is refused"),
        "{out}"
    );
    assert_eq!(status_json(&env, paris)["expires_on"], "2099-03-31");
    let out = deadboltctl_in(&env, paris, &["status", "alice"]);
    assert!(
        out.stdout.contains("  account expires:   2099-03-31 (in "),
        "{out}"
    );
    assert!(
        out.stdout.contains("), from 2099-03-31 02:00:00 CEST\n"),
        "{out}"
    );
}
